"""Passes over the hardware graph, each with one job (qonnx/FINN style: ``apply(g) -> changed``).

- ``RemoveIdentityRequant``: a Requant that neither shifts nor saturates nor clamps (a power-of-two Mul
  becomes a format change and leaves one behind) is removed.
- ``FuseRequant``: an exact-width producer (MulShift, AddConst, JoinAdd, Requant) followed by its only
  consumer, a Requant, becomes one layer (floor shifts compose; the producer never saturated).
- ``InsertForks``: a tensor read by several layers gets a tree of 1->2 forks.
- ``SetFolding`` / ``LegalizeLanes`` / ``InsertFifos``: folding, lane widths with converters, FIFO depths.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

from binaryhpe import BinaryHPEError
from binaryhpe.compile.graph import HwGraph, TensorInfo
from binaryhpe.compile.kinds.elementwise import AddConst, JoinAdd, MulShift, Requant
from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
from binaryhpe.compile.kinds.plumbing import Concat, Dwc, Fifo, Fork, Split
from binaryhpe.compile.kinds.pool import Pool
from binaryhpe.compile.kinds.swg import SlidingWindow


class Pass:
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
    g.tensors.pop(name, None)
    for k in [k for k, v in g.onnx_names.items() if v == name]:
        del g.onnx_names[k]


def _is_exact(lay) -> bool:
    """True when the layer's output width holds every result without saturating."""
    if isinstance(lay, MulShift):
        return lay.shift == 0 and lay.out_w >= lay.in_w + lay.const_w
    if isinstance(lay, AddConst):
        return lay.out_w >= max(lay.in_w, lay.const_w) + 1
    if isinstance(lay, JoinAdd):
        return lay.out_w >= max(lay.in_w + lay.shift_a, lay.in_b_w + lay.shift_b) + 1
    if isinstance(lay, Requant):
        return not lay.relu and lay.out_w >= lay.in_w - lay.shift
    return False


class RemoveIdentityRequant(Pass):
    """Drop Requants that neither shift nor saturate nor clamp; a power-of-two scale leaves one behind that
    only changes the format, which moves onto the source tensor when nobody else reads it."""

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
            if sf.frac != df.frac:
                if len(cmap.get(src, [])) != 1 or src == g.input:
                    continue
                g.tensors[src] = dataclasses.replace(g.tensors[src], fmt=dataclasses.replace(df, bits=sf.bits))
            for c in cmap.get(dst, []):
                c.inputs = [src if t == dst else t for t in c.inputs]
            cmap[src] = [c for c in cmap.get(src, []) if c is not lay] + cmap.pop(dst, [])
            for k, v in list(g.onnx_names.items()):
                if v == dst:
                    g.onnx_names[k] = src
            g.tensors.pop(dst, None)
            g.layers.remove(lay)
            changed = True
        return changed


class FuseRequant(Pass):
    def apply(self, g: HwGraph) -> bool:
        cmap = g.consumer_map()
        removed = set()
        for lay in g.layers:
            if id(lay) in removed or not _is_exact(lay) or lay.outputs[0] == g.output:
                continue
            cons = cmap.get(lay.outputs[0], [])
            if len(cons) != 1 or not isinstance(cons[0], Requant) or cons[0].relu or id(cons[0]) in removed:
                continue
            rq = cons[0]
            if isinstance(lay, MulShift):
                lay.shift = rq.shift
            elif isinstance(lay, Requant):
                lay.shift = lay.shift + rq.shift
            elif rq.shift != 0:
                continue  # AddConst / JoinAdd have no output shift
            lay.out_w = rq.out_w
            _drop_tensor(g, lay.outputs[0])
            lay.outputs = list(rq.outputs)
            removed.add(id(rq))
        if removed:
            g.layers = [lay for lay in g.layers if id(lay) not in removed]
        return bool(removed)


def _elem_w(info: TensorInfo) -> int:
    return 1 if info.fmt.bipolar else info.fmt.bits


class InsertForks(Pass):
    """A tensor read by n > 1 layers gets a chain of n - 1 two-way forks (one sweep)."""

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
                first.inputs = [outs[0] if t == name else t for t in first.inputs]
                cur = outs[1]
            last = cons[-1]
            last.inputs = [cur if t == name else t for t in last.inputs]
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
    """Smallest PE*SIMD with cycles <= target (SIMD | Cin so windows split on channel boundaries)."""
    best = None
    for pe in _divisors(lay.cout):
        for simd in _divisors(cin):
            cyc = lay.pixels * (lay.cout // pe) * (lay.n // simd)
            cost = pe * simd
            if cyc <= target and (best is None or cost < best[0] or (cost == best[0] and cyc < best[1])):
                best = (cost, cyc, pe, simd)
    if best is None:  # fully parallel is the fastest there is
        return lay.cout, cin
    return best[2], best[3]


class SetFolding(Pass):
    """PE/SIMD per matrix-vector unit for a cycles-per-frame target (default: the largest tensor's beat
    count, so that no MVU is slower than the elementwise stream); a user override file wins."""

    def __init__(self, target: int | None = None, overrides: dict | None = None):
        self.target, self.overrides = target, overrides or {}

    def apply(self, g: HwGraph) -> bool:
        target = self.target or stream_beats(g)
        for lay in g.layers:
            if not isinstance(lay, (XnorMvu, FxpMvu)):
                continue
            swg = g.producer(lay.inputs[0])
            # SIMD splits windows on channel boundaries; a fully connected layer reads its producer's stream
            cin = swg.c if isinstance(swg, SlidingWindow) else g.tensors[lay.inputs[0]].shape[2]
            if lay.name in self.overrides:
                o = self.overrides[lay.name]
                pe, simd = int(o.get("pe", 1)), int(o.get("simd", 1))
                if lay.cout % pe or cin % simd:
                    raise BinaryHPEError(f"folding override for {lay.name}: PE {pe} must divide Cout {lay.cout} "
                                         f"and SIMD {simd} must divide Cin {cin}")
            else:
                pe, simd = choose_folding(lay, cin, target)
            lay.pe, lay.simd = pe, simd
            if isinstance(swg, SlidingWindow):
                swg.lanes = simd
            g.tensors[lay.outputs[0]].lanes = pe
            if isinstance(swg, SlidingWindow):
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


def _out_lanes(lay, g: HwGraph) -> int:
    if isinstance(lay, (XnorMvu, FxpMvu)):
        return lay.pe
    if isinstance(lay, Dwc):
        return lay.out_lanes
    return getattr(lay, "lanes", 1)


class LegalizeLanes(Pass):
    """Every layer takes the lanes its input stream has where it can (gcd with its channel count); a
    data-width converter goes where producer and consumer disagree."""

    def apply(self, g: HwGraph) -> bool:
        g.toposort()
        for lay in list(g.layers):
            if isinstance(lay, (XnorMvu, FxpMvu)):
                info = g.tensors[lay.inputs[0]]
                if not info.windowed and info.lanes != lay.simd:  # a fully connected layer on a plain stream
                    self._dwc(g, lay, info.name, lay.simd)
                g.tensors[lay.outputs[0]].lanes = lay.pe
                continue
            if isinstance(lay, Dwc):
                continue
            ins = [g.tensors[t] for t in lay.inputs]
            if isinstance(lay, SlidingWindow):
                want = [lay.lanes]
            elif isinstance(lay, (Concat,)):
                lanes = math.gcd(ins[0].lanes, lay.c1, lay.c2)
                lay.lanes, want = lanes, [lanes, lanes]
            elif isinstance(lay, (Split,)):
                lanes = math.gcd(ins[0].lanes, lay.c1, lay.c2)
                lay.lanes, want = lanes, [lanes]
            elif isinstance(lay, JoinAdd):
                lanes = math.gcd(ins[0].lanes, ins[1].lanes, lay.c)
                lay.lanes, want = lanes, [lanes, lanes]
            elif isinstance(lay, (Fork, Fifo)):
                lay.lanes, want = ins[0].lanes, [ins[0].lanes]
            else:
                c = getattr(lay, "c")
                lanes = math.gcd(ins[0].lanes, c)
                lay.lanes, want = lanes, [lanes]
            for t, wl in zip(list(lay.inputs), want):
                info = g.tensors[t]
                if info.lanes != wl:
                    self._dwc(g, lay, t, wl)
            for t in lay.outputs:
                g.tensors[t].lanes = lay.lanes
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
        lay.inputs = [new if x == info.name else x for x in lay.inputs]
        g.toposort()


def stream_capacity(g: HwGraph, lay) -> int:
    """Beats (counted on the layer's input stream) a layer can take in before it must emit: its buffers."""
    if isinstance(lay, SlidingWindow):
        return lay.rows * lay.w * (lay.c // lay.lanes) + 4
    if isinstance(lay, Pool):
        return (lay.k + lay.s) * lay.w * (lay.c // lay.lanes) + 4
    if isinstance(lay, (XnorMvu, FxpMvu)):
        return 2 * (lay.n // lay.simd) + 8
    if isinstance(lay, Fifo):
        return lay.depth
    if isinstance(lay, Dwc):
        return max(lay.in_lanes, lay.out_lanes) // min(lay.in_lanes, lay.out_lanes) + 4
    return 4  # a registered pipeline stage or two (plus skid)


class InsertFifos(Pass):
    """A FIFO on each fork output, deep enough for how far the other branch can run ahead.

    Model: a fork stalls when one output is full. Along a path, every layer can absorb ``stream_capacity``
    beats (its line buffer, input buffer, pipeline registers) before it must emit; rescaled to beats of
    the fork's stream by the tensor sizes along the way, and summed, this is the most a branch can take in
    before the data that a later join needs comes out of it. For every layer J that both branches reach
    (a reconvergence point, possibly several blocks on), the shorter branch must buffer the difference of
    the two accumulated capacities. This is a worst-case bound from the buffer model, not from
    simulation; the whole-network simulation with random stalls checks it, and a too-shallow FIFO shows
    as a deadlock failure there.
    """

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
            for c_ in cons:
                c_.inputs = [new if x == o else x for x in c_.inputs]
            g.layers.append(fifo)
        g.toposort()
        return False


def optimize(g: HwGraph, target_cycles: int | None = None, folding: dict | None = None,
             fifo_scale: float = 1.0) -> HwGraph:
    """The standard pass list after lowering."""
    run_to_fixpoint(g, [RemoveIdentityRequant(), FuseRequant()])
    run_to_fixpoint(g, [InsertForks()])
    SetFolding(target_cycles, folding).apply(g)
    LegalizeLanes().apply(g)
    InsertFifos(scale=fifo_scale).apply(g)
    g.toposort()
    return g
