"""Passes over the hardware graph, each with one job (qonnx/FINN style: ``apply(g) -> changed``).

- ``RemoveIdentityRequant``: a Requant that neither shifts nor saturates nor clamps (a power-of-two Mul
  becomes a format change and leaves one behind) is removed.
- ``FuseRequant``: an exact-width producer (MulShift, AddConst, JoinAdd, Requant) followed by its only
  consumer, a Requant, becomes one layer (floor shifts compose; the producer never saturated).
- ``HoistOverShuffle``: a one-input elementwise layer after a ``PhaseShuffle`` (a transposed convolution's
  interleave) moves in front of it, its per-channel constants repeated per phase, so that it fuses into the
  convolution's epilogue.
- ``FuseEpilogue``: every chain of elementwise layers becomes one ``Epilogue`` (``UnfuseEpilogues`` undoes it).
- ``InsertForks``: a tensor read by several layers gets a tree of 1->2 forks.
- ``SetFolding`` / ``LegalizeLanes`` / ``InsertFifos``: folding, lane widths with converters, FIFO depths.

Every per-kind fact comes from the kind (``compile/kinds/base.py``: ``exact``, ``fuse_requant``, ``foldable``,
``steps_at``, ``assign_lanes``, ``out_lanes``, ``stream_capacity``); a kind that lacks one is an error naming
the layer and kind. The passes edit the graph through ``HwGraph.rewire`` / ``insert_after`` /
``remove_layer``. Each pass declares ``idempotent``: a second run over its own result changes nothing.
:func:`standard_passes` is the one pass list (optimisation and device folding both run it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.graph import HwGraph, TensorInfo
from binaryhpe.compile.kinds.elementwise import KINDS as ELEMENTWISE_KINDS
from binaryhpe.compile.kinds.elementwise import JoinAdd, Requant
from binaryhpe.compile.kinds.epilogue import MAX_OPS, Epilogue, op_out_w, rtl_op_count
from binaryhpe.compile.kinds.plumbing import Dwc, Fifo, Fork, PhaseShuffle


class Pass:
    """``apply(g)`` changes ``g`` in place and returns whether it changed anything."""

    #: True when running the pass again over its own result changes nothing (tests/test_compile.py checks it)
    idempotent: bool

    def apply(self, g: HwGraph) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


def run_to_fixpoint(g: HwGraph, passes) -> HwGraph:
    changed = True
    while changed:
        changed = False
        for p in passes:
            while p.apply(g):
                changed = True
    g.toposort()
    return g


def _drop_tensor(g: HwGraph, name: str) -> None:
    g.drop_tensor(name)


def _reads_width_field(layer, tensor: str) -> str | None:
    """The field holding the width of ``layer``'s input port that reads ``tensor`` (``in_w``, or a JoinAdd's
    ``in_b_w``) for the elementwise kinds, whose RTL takes that width as a parameter; None for other kinds, and
    when the layer reads ``tensor`` on more than one port."""
    if not isinstance(layer, tuple(ELEMENTWISE_KINDS.values())) or layer.inputs.count(tensor) != 1:
        return None
    return ("in_w", "in_b_w")[layer.inputs.index(tensor)] if layer.inputs.index(tensor) < 2 else None


class RemoveIdentityRequant(Pass):
    """Drop Requants that neither shift nor saturate nor clamp; a power-of-two scale leaves one behind that
    only changes the format, which moves onto the source tensor when nobody else reads it."""

    idempotent = True

    def apply(self, g: HwGraph) -> bool:
        cmap = g.consumer_map()
        changed = False
        for lay in list(g.layers):
            if not (isinstance(lay, Requant) and lay.shift == 0 and not lay.relu and lay.out_w >= lay.in_w):
                continue
            src, dst = lay.inputs[0], lay.outputs[0]
            if dst == g.output:
                continue
            sf, df = g.tensors[src].fmt, g.tensors[dst].fmt
            if g.tensors[src].scale != g.tensors[dst].scale:
                continue  # a float scale is the tensor's meaning (compile/lower_quant.py materialize): keep it
            cons = cmap.get(dst, [])
            if lay.out_w > lay.in_w and not all(_reads_width_field(c, dst) for c in cons):
                continue  # a widening Requant stays before a kind whose input port width it sets
            if sf.frac != df.frac:
                if len(cmap.get(src, [])) != 1 or src == g.input:
                    continue
                g.tensors[src] = dataclasses.replace(g.tensors[src], fmt=dataclasses.replace(df, bits=sf.bits))
            if lay.out_w > lay.in_w:  # the consumers now read the narrower source stream: their ports follow
                for c in cons:
                    setattr(c, _reads_width_field(c, dst), lay.in_w)
            g.rewire(dst, src, cmap.get(dst, []))
            cmap[src] = [c for c in cmap.get(src, []) if c is not lay] + cmap.pop(dst, [])
            for k, v in list(g.onnx_names.items()):
                if v == dst:
                    g.onnx_names[k] = src
            g.tensors.pop(dst, None)
            g.remove_layer(lay)
            changed = True
        return changed


class FuseRequant(Pass):
    """An exact layer (``kind.exact``) whose only consumer is a Requant absorbs it where its kind can
    (``kind.fuse_requant``: the output width, and the shift where the kind has one)."""

    idempotent = True

    def apply(self, g: HwGraph) -> bool:
        cmap = g.consumer_map()
        removed = []
        for lay in list(g.layers):
            if any(lay is r for r in removed) or not lay.exact or lay.outputs[0] == g.output:
                continue
            cons = cmap.get(lay.outputs[0], [])
            if len(cons) != 1 or not isinstance(cons[0], Requant) or cons[0].relu or any(cons[0] is r for r in removed):
                continue
            rq = cons[0]
            if not lay.fuse_requant(rq):
                continue
            _drop_tensor(g, lay.outputs[0])
            lay.outputs = list(rq.outputs)
            removed.append(rq)
        for rq in removed:
            g.remove_layer(rq)
        return bool(removed)


class HoistOverShuffle(Pass):
    """``PhaseShuffle -> E`` becomes ``E' -> PhaseShuffle`` for a one-input elementwise ``E`` that is the
    shuffle's only consumer: ``E'`` runs on the ``s*s*c``-channel phase grid with every per-channel constant
    repeated for each phase (elementwise per-channel operations commute with moving pixels: exact). Grid
    positions the shuffle drops are computed and dropped. Never across the graph output or a tensor read twice."""

    idempotent = True

    def apply(self, g: HwGraph) -> bool:
        cmap = g.consumer_map()
        for sh in g.layers:
            if not isinstance(sh, PhaseShuffle):
                continue
            t = sh.outputs[0]
            cons = cmap.get(t, [])
            if t == g.output or len(cons) != 1:
                continue
            e = cons[0]
            if not isinstance(e, tuple(ELEMENTWISE_KINDS.values())) or len(e.inputs) != 1 or e.c != sh.c:
                continue
            reps = sh.s * sh.s
            fields = {}
            for f in dataclasses.fields(e):
                v = getattr(e, f.name)
                if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == e.c:
                    fields[f.name] = np.concatenate([v] * reps, axis=0)
            grid_in = sh.inputs[0]
            gi = g.tensors[grid_in]
            mid = g.unique(f"{e.outputs[0]}_phases")
            g.tensors[mid] = TensorInfo(mid, gi.shape, g.tensors[e.outputs[0]].fmt)
            e2 = dataclasses.replace(e, inputs=[grid_in], outputs=[mid], c=sh.c * reps, pixels=sh.h * sh.w,
                                     lanes=1, **fields)
            out = e.outputs[0]
            sh2 = dataclasses.replace(sh, inputs=[mid], outputs=[out], elem_w=g.tensors[out].fmt.width,
                                      signed=not g.tensors[out].fmt.bipolar)
            idx = g.layers.index(sh)
            g.layers = [x for x in g.layers if x is not sh and x is not e]
            g.layers[idx:idx] = [e2, sh2]
            g.drop_tensor(t)
            g.toposort()
            return True
        return False


class FuseEpilogue(Pass):
    """Every maximal chain of elementwise layers becomes one ``Epilogue`` (a lone one a one-op Epilogue), so
    that no bare elementwise kind is left. A chain goes on from a layer to the only consumer of its output,
    never through the graph output, a tensor with several consumers, an unsigned (Sign, Threshold,
    MultiThreshold) output, a width mismatch, or into a second JoinAdd; a JoinAdd joined through its ``b``
    operand gets its operands swapped (addition commutes: exact). Removed intermediate tensors leave
    ``g.tensors`` and ``g.onnx_names`` and are kept in ``Epilogue.mids``."""

    idempotent = True

    ELEMENTWISE = tuple(ELEMENTWISE_KINDS.values())

    def _next(self, g: HwGraph, cmap, cur, chain, taken):
        t = cur.outputs[0]
        cons = cmap.get(t, [])
        if t == g.output or len(cons) != 1 or not cur.out_streams()[0].signed:
            return None
        nxt = cons[0]
        if not isinstance(nxt, self.ELEMENTWISE) or id(nxt) in taken or nxt.in_w != op_out_w(cur):
            return None
        if rtl_op_count(chain + [nxt]) > MAX_OPS:
            return None  # one unit holds MAX_OPS RTL ops; the rest of the chain starts the next unit
        if (nxt.c, nxt.pixels, nxt.lanes) != (cur.c, cur.pixels, cur.lanes):
            return None
        if isinstance(nxt, JoinAdd):
            if nxt.inputs[0] == nxt.inputs[1] or any(isinstance(op, JoinAdd) for op in chain):
                return None
            if nxt.inputs[1] == t:  # normalise: the chain value is operand a
                if nxt.in_b_w != op_out_w(cur):
                    return None
                nxt.inputs = [nxt.inputs[1], nxt.inputs[0]]
                nxt.in_w, nxt.in_b_w = nxt.in_b_w, nxt.in_w
                nxt.shift_a, nxt.shift_b = nxt.shift_b, nxt.shift_a
        return nxt

    def apply(self, g: HwGraph) -> bool:
        g.toposort()
        cmap = g.consumer_map()
        taken: set[int] = set()
        fused = []
        for lay in g.layers:
            if not isinstance(lay, self.ELEMENTWISE) or id(lay) in taken:
                continue
            chain = [lay]
            taken.add(id(lay))
            while (nxt := self._next(g, cmap, chain[-1], chain, taken)) is not None:
                chain.append(nxt)
                taken.add(id(nxt))
            fused.append(chain)
        if not fused:
            return False
        replace = {}
        for chain in fused:
            mids = [g.tensors[op.outputs[0]] for op in chain[:-1]]
            join = next((op for op in chain if isinstance(op, JoinAdd)), None)
            inputs = [chain[0].inputs[0]] + ([join.inputs[1]] if join is not None else [])
            epi = Epilogue(name=g.unique(f"{chain[0].name}_epi"), inputs=inputs, outputs=list(chain[-1].outputs),
                           ops=chain, mids=mids)
            for m in mids:
                _drop_tensor(g, m.name)
            replace[id(chain[0])] = epi
        g.layers = [replace.get(id(lay), lay) for lay in g.layers if id(lay) not in taken or id(lay) in replace]
        g.toposort()
        return True


class UnfuseEpilogues(Pass):
    """The inverse of ``FuseEpilogue``: every Epilogue becomes its ops again, the intermediate tensors
    restored from ``mids`` (for backends that need one node an operation, on a copy of the graph)."""

    idempotent = True

    def apply(self, g: HwGraph) -> bool:
        out, changed = [], False
        for lay in g.layers:
            if isinstance(lay, Epilogue):
                for m in lay.mids:
                    g.tensors[m.name] = dataclasses.replace(m, lanes=lay.lanes)
                out.extend(lay.unfuse())
                changed = True
            else:
                out.append(lay)
        g.layers = out
        return changed


def _elem_w(info: TensorInfo) -> int:
    return info.fmt.width


class InsertForks(Pass):
    """A tensor read by n > 1 layers gets a chain of n - 1 two-way forks (one sweep)."""

    idempotent = True

    def apply(self, g: HwGraph) -> bool:
        cmap = g.consumer_map()
        changed = False
        for name, cons in cmap.items():
            info = g.tensors[name]
            if len(cons) < 2 or info.windowed:
                continue
            h, w, c = info.shape
            cur = name
            for i, first in enumerate(cons[:-1]):
                outs = []
                for j in range(2):
                    t = g.unique(f"{name}_f{i}{j}")
                    g.tensors[t] = dataclasses.replace(info, name=t)
                    outs.append(t)
                g.layers.append(Fork(name=g.unique(f"fork_{name}_{i}"), inputs=[cur], outputs=outs, h=h, w=w,
                                     c=c, elem_w=_elem_w(info), lanes=info.lanes, signed=not info.fmt.bipolar))
                g.rewire(name, outs[0], [first])
                cur = outs[1]
            g.rewire(name, cur, [cons[-1]])
            changed = True
        if changed:
            g.toposort()
        return changed


# ---------------------------------------------------------------------------------------------------------
# folding


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def stream_beats(g: HwGraph) -> int:
    """Beats of the largest activation tensor at one lane: the rate the elementwise layers set."""
    return max(math.prod(t.shape) for t in g.tensors.values() if not t.windowed)


def choose_folding(lay, cin: int, target: int) -> tuple[int, int]:
    """Smallest PE*SIMD with cycles (``kind.steps_at``) <= target (SIMD | Cin so windows split on channel
    boundaries)."""
    best = None
    for pe in _divisors(lay.cout):
        for simd in _divisors(cin):
            cyc = lay.steps_at(pe, simd)
            cost = pe * simd
            if cyc <= target and (best is None or cost < best[0] or (cost == best[0] and cyc < best[1])):
                best = (cost, cyc, pe, simd)
    if best is None:  # fully parallel is the fastest there is
        return lay.cout, cin
    return best[2], best[3]


class SetFolding(Pass):
    """PE/SIMD per matrix-vector unit for a cycles-per-frame target (default: the largest tensor's beat
    count, so that no MVU is slower than the elementwise stream); a user override file wins."""

    idempotent = True

    def __init__(self, target: int | None = None, overrides: dict | None = None):
        self.target, self.overrides = target, overrides or {}

    def apply(self, g: HwGraph) -> bool:
        target = self.target or stream_beats(g)
        for lay in g.layers:
            if not lay.foldable:
                continue
            # SIMD splits windows on channel boundaries; a fully connected layer reads its producer's stream
            windowed = g.tensors[lay.inputs[0]].windowed
            swg = g.producer(lay.inputs[0]) if windowed else None
            cin = g.tensors[swg.inputs[0]].shape[2] if windowed else g.tensors[lay.inputs[0]].shape[2]
            if lay.name in self.overrides:
                o = self.overrides[lay.name]
                pe, simd = int(o.get("pe", 1)), int(o.get("simd", 1))
                if lay.cout % pe or cin % simd:
                    raise BinaryHPEError(f"folding override for {lay.name}: PE {pe} must divide Cout {lay.cout} "
                                         f"and SIMD {simd} must divide Cin {cin}")
            else:
                pe, simd = choose_folding(lay, cin, target)
            lay.pe, lay.simd = pe, simd
            if windowed:  # the window generator delivers SIMD elements a beat
                swg.lanes = simd
            g.tensors[lay.outputs[0]].lanes = pe
            if windowed:
                g.tensors[lay.inputs[0]].lanes = simd
        unknown = set(self.overrides) - {lay.name for lay in g.layers}
        if unknown:
            raise BinaryHPEError(f"folding override names unknown layer {sorted(unknown)[0]!r}")
        return False


def load_folding(path) -> dict:
    p = pathlib.Path(path)
    if not p.is_file():
        raise BinaryHPEError(f"folding file not found: {p}")
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise BinaryHPEError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(d, dict) or not all(isinstance(v, dict) for v in d.values()):
        raise BinaryHPEError(f"{p}: expected {{layer name: {{'pe': int, 'simd': int}}}}")
    return d


class LegalizeLanes(Pass):
    """Every layer takes the lanes its kind can run at given its inputs' lanes (``kind.assign_lanes``: the
    gcd with its channel count for most); a data-width converter goes where producer and consumer disagree."""

    idempotent = True

    def apply(self, g: HwGraph) -> bool:
        g.toposort()
        for lay in list(g.layers):
            want = lay.assign_lanes([g.tensors[t].lanes for t in lay.inputs])
            for t, wl in zip(list(lay.inputs), want):
                info = g.tensors[t]
                if info.lanes != wl:
                    if info.windowed:
                        raise BinaryHPEError(f"layer {lay.name} ({type(lay).__name__}) wants {wl} lanes of the "
                                             f"window stream {t}, which has {info.lanes}")
                    self._dwc(g, lay, t, wl)
            for t in lay.outputs:
                g.tensors[t].lanes = lay.out_lanes
        return False

    @staticmethod
    def _dwc(g: HwGraph, lay, t: str, lanes: int) -> None:
        info = g.tensors[t]
        h, w, c = info.shape
        new = g.unique(f"{t}_l{lanes}")
        g.tensors[new] = dataclasses.replace(info, name=new, lanes=lanes)
        a, b = info.lanes, lanes
        if max(a, b) % min(a, b):  # go through one lane
            mid = g.unique(f"{t}_l1")
            g.tensors[mid] = dataclasses.replace(info, name=mid, lanes=1)
            g.layers.append(Dwc(name=g.unique(f"dwc_{t}_1"), inputs=[t], outputs=[mid], h=h, w=w, c=c,
                                elem_w=_elem_w(info), in_lanes=a, out_lanes=1, signed=not info.fmt.bipolar))
            t, a = mid, 1
        g.layers.append(Dwc(name=g.unique(f"dwc_{t}"), inputs=[t], outputs=[new], h=h, w=w, c=c,
                            elem_w=_elem_w(info), in_lanes=a, out_lanes=lanes, signed=not info.fmt.bipolar))
        g.rewire(info.name, new, [lay])
        g.toposort()


def stream_capacity(g: HwGraph, lay) -> int:
    """Beats (counted on the layer's input stream) a layer can take in before it must emit: its buffers
    (``kind.stream_capacity``; a kind without one is an error naming it)."""
    return lay.stream_capacity()


class InsertFifos(Pass):
    """A FIFO on each fork output, deep enough for how far the other branch can run ahead.

    Model: a fork stalls when one output is full. Along a path, every layer can absorb ``stream_capacity``
    beats (its line buffer, input buffer, pipeline registers) before it must emit; rescaled to beats of
    the fork's stream by the tensor sizes along the way, and summed, this is the most a branch can take in
    before the data that a later join needs comes out of it. For every layer J that both branches reach
    (a reconvergence point, possibly several blocks on), the shorter branch must buffer the difference of
    the two accumulated capacities. This is a worst-case bound from the buffer model, not from
    simulation; the whole-network simulation with random stalls checks it, and a too-shallow FIFO shows
    as a deadlock failure there. Not idempotent: a second run puts a second FIFO on every fork output.
    """

    idempotent = False

    def __init__(self, margin: int = 8, scale: float = 1.0):
        self.margin, self.scale = margin, scale

    @staticmethod
    def _reach(g: HwGraph, start: str) -> dict[str, int]:
        """Longest accumulated capacity (in beats of ``start``) from tensor ``start`` to each layer's input."""
        base = max(1, math.prod(g.tensors[start].shape) // max(1, g.tensors[start].lanes))
        at_tensor = {start: 0}
        at_layer: dict[str, int] = {}
        for lay in g.layers:  # topological order
            reached = [at_tensor[t] for t in lay.inputs if t in at_tensor]
            if not reached:
                continue
            at_layer[lay.name] = max(reached)
            t_in = next(t for t in lay.inputs if t in at_tensor)
            beats = max(1, math.prod(g.tensors[t_in].shape) // max(1, g.tensors[t_in].lanes))
            own = math.ceil(stream_capacity(g, lay) * base / beats)
            for t in lay.outputs:
                at_tensor[t] = max(at_tensor.get(t, 0), at_layer[lay.name] + own)
        return at_layer

    def apply(self, g: HwGraph) -> bool:
        g.toposort()
        plan = []
        for fork in [lay for lay in g.layers if isinstance(lay, Fork)]:
            reach = [self._reach(g, o) for o in fork.outputs]
            for i, o in enumerate(fork.outputs):
                lead = 0
                for j, other in enumerate(reach):
                    if j == i:
                        continue
                    for name, cap in other.items():
                        if name in reach[i]:
                            lead = max(lead, cap - reach[i][name])
                plan.append((o, max(2, int(math.ceil(lead * self.scale)) + self.margin)))
        for o, depth in plan:
            cons = g.consumers(o)
            info = g.tensors[o]
            h, w, c = info.shape
            new = g.unique(f"{o}_q")
            g.tensors[new] = dataclasses.replace(info, name=new)
            fifo = Fifo(name=g.unique(f"fifo_{o}"), inputs=[o], outputs=[new], elem_w=_elem_w(info),
                        lanes=info.lanes, depth=depth, beats=h * w * c // info.lanes, signed=not info.fmt.bipolar)
            g.insert_after(o, fifo, cons)
        g.toposort()
        return False


#: the stage at which folding starts: ``prepare`` runs the stages before it once per build, the device-folding
#: search runs it and the stages after it on a copy for each trial folding
FOLDING_STAGE = "folding"


def standard_passes(target_cycles: int | None = None, folding: dict | None = None,
                    fifo_scale: float = 1.0) -> list[tuple[str, list[Pass]]]:
    """THE pass list after lowering, in order, as ``(stage, passes)``: the passes of a stage run together to a
    fixpoint. :func:`optimize` runs all of it; device folding (``compile.folding``) runs the stages before
    ``FOLDING_STAGE`` once and the rest for each trial. A new pass is one line here."""
    return [
        ("shuffle", [HoistOverShuffle()]),
        ("requant", [RemoveIdentityRequant(), FuseRequant()]),
        ("epilogue", [FuseEpilogue()]),
        ("forks", [InsertForks()]),
        (FOLDING_STAGE, [SetFolding(target_cycles, folding)]),
        ("lanes", [LegalizeLanes()]),
        ("fifos", [InsertFifos(scale=fifo_scale)]),
    ]


def run_passes(g: HwGraph, stages: list[tuple[str, list[Pass]]], start: str | None = None,
               stop: str | None = None) -> HwGraph:
    """Run ``stages`` (from :func:`standard_passes`) from stage ``start`` (default: the first) up to but not
    including stage ``stop`` (default: to the end); the graph ends topologically sorted."""
    names = [n for n, _ in stages]
    for n in (start, stop):
        if n is not None and n not in names:
            raise BinaryHPEError(f"no pass stage {n!r} (stages: {', '.join(names)})")
    i0 = names.index(start) if start else 0
    i1 = names.index(stop) if stop else len(stages)
    for _, passes in stages[i0:i1]:
        run_to_fixpoint(g, passes)
    g.toposort()
    return g


def optimize(g: HwGraph, target_cycles: int | None = None, folding: dict | None = None,
             fifo_scale: float = 1.0) -> HwGraph:
    """The standard pass list (:func:`standard_passes`) after lowering."""
    return run_passes(g, standard_passes(target_cycles, folding, fifo_scale))


def prepare_passes(g: HwGraph) -> HwGraph:
    """The stages before folding (the start of every folding: requantizers fused, forks inserted)."""
    return run_passes(g, standard_passes(), stop=FOLDING_STAGE)


def folding_passes(g: HwGraph, target_cycles: int | None = None, folding: dict | None = None,
                   fifo_scale: float = 1.0) -> HwGraph:
    """The stages from folding on (folding, lanes, FIFOs) of the standard pass list."""
    return run_passes(g, standard_passes(target_cycles, folding, fifo_scale), start=FOLDING_STAGE)
