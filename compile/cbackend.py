"""The microcontroller backend: portable C99 generated from the hardware graph (never from the PyTorch object).

``generate(g)`` turns an :class:`~binaryhpe.compile.graph.HwGraph` into a self-contained C library:

* ``model.h``: one inference function ``bhpe_model_run(const bhpe_in_t *in, bhpe_out_t *out)``, the input and
  output shapes and formats, the arena size;
* ``model.c``: one ``static`` function a layer, called in the hardware graph's (topological) order, and one
  static activation arena ``bhpe_arena`` whose buffers are placed by :mod:`binaryhpe.compile.memplan`;
* ``weights.c``: every weight and per-channel constant as a ``const`` array (flash on a microcontroller).

No dynamic allocation, no floating point, no library call other than ``__builtin_popcount``.

Data layout. Tensors are ``(H, W, C)`` in raster order, channel fastest, as the hardware streams. A bipolar
(binary) tensor is bit-packed: ``CW = ceil(C/32)`` ``uint32_t`` words a pixel, channel ``c`` at bit ``c % 32``
of word ``c / 32`` (1 = +1), unused high bits 0. Other tensors use the smallest of ``int8_t``/``int16_t``/
``int32_t`` holding their format. Binary weights are packed the same way a tap: ``[cout][K*K][CW]``.

Numerics (``docs/numerics.md``, each kind's ``execute`` to the bit):

* binary convolution: for each *valid* tap ``t`` (inside the image; padding taps contribute 0, exactly the
  SWG's valid mask), ``d_t = sum_words popcount(x ^ w)`` counts the disagreeing channels, and
  ``p = sum_t (C - 2 d_t) = C * valid_taps - 2 * sum_t d_t``, which equals ``2*popcount(xnor & valid) -
  popcount(valid)`` because unused bits are 0 in both activations and weights (their XOR is 0);
* fixed-point convolution: ``acc = sum over valid taps of w * x`` in ``int32_t`` (the compiler guarantees
  ``acc_w <= 32``);
* ``floor(x * 2^-s)`` is ``x >> s`` on a signed integer. ISO C99 leaves ``>>`` of a negative value
  implementation-defined; gcc, clang and arm-none-eabi-gcc define it as an arithmetic shift, and
  ``model.c`` refuses to compile where it is not (a negative-size array check). Left shifts are written as
  multiplications by ``2^s`` (a left shift of a negative value is undefined in C99);
* intermediates use ``int32_t`` when the widest intermediate of a layer fits 32 bits, else ``int64_t``;
  saturation is a compare against the format's range.

Plumbing: Fork, Fifo and Dwc outputs alias their input buffer (no code); a SlidingWindow is fused into the
convolution that consumes it (the convolution loops over the SWG's geometry and reads the SWG input buffer);
Concat and Split copy channels; Pool max/sum runs over the valid taps of its window.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile import memplan
from binaryhpe.compile.backends.emitters import Registry
from binaryhpe.compile.graph import HwGraph, TensorInfo
from binaryhpe.compile.kinds.elementwise import (AddConst, JoinAdd, MulShift, MultiThreshold, Prelu, Requant,
                                                 Sign, Threshold)
from binaryhpe.compile.kinds.epilogue import Epilogue
from binaryhpe.compile.kinds.mvu import FcFxpMvu, FcXnorMvu, FxpMvu, XnorMvu
from binaryhpe.compile.kinds.plumbing import Concat, Dwc, Fifo, Fork, PhaseShuffle, Split
from binaryhpe.compile.kinds.pool import Pool
from binaryhpe.compile.kinds.swg import SlidingWindow

PACK_INPUT = "<pack bipolar input>"

#: kind -> C emitter (roles: "layer" a function of its own, "op" an elementwise operation, "alias" no code, the
#: outputs alias the input buffer, "window" fused into the convolution or pool that reads it)
EMITTERS = Registry("c")


class CBackendError(BinaryHPEError):
    pass


# ---------------------------------------------------------------------------------------------------------
# storage


def ctype_for(bits: int, signed: bool = True) -> tuple[str, int]:
    """Smallest C container of a ``bits``-bit integer: (type name, bytes)."""
    need = bits if signed else bits + 1
    for t, n in (("int8_t", 1), ("int16_t", 2), ("int32_t", 4)):
        if need <= 8 * n:
            return t, n
    raise CBackendError(f"a {bits}-bit tensor does not fit the C backend's 32-bit containers")


@dataclass
class Storage:
    """How one materialized tensor is held in C."""

    name: str  # hardware tensor name
    cname: str  # C identifier of its pointer macro
    h: int
    w: int
    c: int
    packed: bool
    ctype: str
    elem_bytes: int
    signed: bool = True
    base: str = ""  # C variable holding the first image row the buffer holds (a tile's band); "" = row 0
    rows: int = 0  # image rows the buffer holds (0: all ``h``)

    @property
    def cw(self) -> int:
        return -(-self.c // 32)

    @property
    def held(self) -> int:
        return self.rows or self.h

    @property
    def pix_bytes(self) -> int:
        return self.cw * 4 if self.packed else self.c * self.elem_bytes

    @property
    def nbytes(self) -> int:
        return self.held * self.w * self.pix_bytes

    def at(self, pix: str) -> str:
        """Buffer pixel index of image pixel ``pix`` (row-major over the image)."""
        return f"(({pix}) - {self.base} * {self.w})" if self.base else f"({pix})"

    def rd(self, pix: str, ch: str) -> str:
        """C expression (int32_t) of element ``ch`` of image pixel ``pix``."""
        q = self.at(pix)
        if self.packed:
            return f"((int32_t)(({self.cname}[{q} * {self.cw} + (({ch}) >> 5)] >> (({ch}) & 31)) & 1u))"
        return f"((int32_t){self.cname}[{q} * {self.c} + ({ch})])"


def _storage(info: TensorInfo, cname: str) -> Storage:
    h, w, c = info.shape
    if info.fmt.bipolar:
        return Storage(info.name, cname, h, w, c, True, "uint32_t", 4, False)
    try:
        t, n = ctype_for(info.fmt.bits, info.fmt.signed)
    except CBackendError as e:
        raise CBackendError(f"tensor {info.name!r}: {e}") from None
    return Storage(info.name, cname, h, w, c, False, t, n, info.fmt.signed)


@dataclass
class Window:
    """The geometry a convolution or pool walks over its source buffer."""

    src: str  # root buffer tensor
    h: int
    w: int
    c: int
    kh: int
    kw: int
    s: int
    pad: int

    @property
    def oh(self) -> int:
        return (self.h + 2 * self.pad - self.kh) // self.s + 1

    @property
    def ow(self) -> int:
        return (self.w + 2 * self.pad - self.kw) // self.s + 1

    def valid_taps(self) -> int:
        """Sum over output pixels of the taps inside the image (separable: rows x columns)."""
        def axis(n, k, o):
            return sum(sum(1 for j in range(k) if 0 <= i * self.s - self.pad + j < n) for i in range(o))
        return axis(self.h, self.kh, self.oh) * axis(self.w, self.kw, self.ow)


# ---------------------------------------------------------------------------------------------------------
# graph analysis


@dataclass
class CModel:
    g: HwGraph
    files: dict[str, str] = field(default_factory=dict)
    storage: dict[str, Storage] = field(default_factory=dict)
    root: dict[str, str] = field(default_factory=dict)  # tensor -> buffer tensor it lives in
    windows: dict[str, Window] = field(default_factory=dict)  # windowed tensor -> geometry
    plan: memplan.MemPlan | None = None
    layer_flash: dict[str, int] = field(default_factory=dict)  # const bytes a layer
    layer_ram: dict[str, int] = field(default_factory=dict)  # bytes the layer writes
    weight_sets: dict[str, int] = field(default_factory=dict)  # C array -> bytes
    io_bytes: int = 0
    raw_input: Storage | None = None  # the caller's 0/1 bytes when the network input is bipolar
    stack_bytes: int = 0
    steps: list[str] = field(default_factory=list)  # layers that emit code, in order
    step_io: dict[str, tuple] = field(default_factory=dict)  # step -> (input tensors, output tensors)
    fused: dict = field(default_factory=dict)  # MVU name -> the Epilogue run in its output loop
    fused_acc: set = field(default_factory=set)  # accumulators of fused MVUs (registers only, no buffer)
    in_place: dict = field(default_factory=dict)  # output buffer -> the input buffer its step overwrites
    defs: dict[str, int] = field(default_factory=dict)  # buffer -> step that writes it
    uses: dict[str, list] = field(default_factory=dict)  # buffer -> steps that read it
    tiling: object = None  # memplan.Tiling or None
    banks: list | None = None  # the target's RAM banks (memplan.Bank), fastest first; None: one arena

    @property
    def flash_data_bytes(self) -> int:
        return sum(self.weight_sets.values())

    @property
    def input_storage(self) -> Storage:
        """How the caller passes the input (``bhpe_in_t`` elements in raster order)."""
        return self.raw_input or self.storage[self.g.input]

    @property
    def arena_bytes(self) -> int:
        return self.plan.peak if self.plan else 0


def fusable_epilogues(g: HwGraph) -> dict:
    """MVU name -> the Epilogue that the C computes inside that MVU's output loop (the accumulator never
    reaches memory): an Epilogue whose chain input is an MVU output read by nothing else (not the network
    output), whose JoinAdd operand (if any) is produced before the MVU runs."""
    consumers: dict[str, list] = {}
    producer: dict[str, int] = {}
    for i, lay in enumerate(g.layers):
        for t in lay.inputs:
            consumers.setdefault(t, []).append(lay)
        alias = isinstance(lay, (Fork, Fifo, Dwc, SlidingWindow))
        for o in lay.outputs:  # an alias's data is its input's: produced where that was
            producer[o] = producer.get(lay.inputs[0], -1) if alias else i
    out = {}
    for i, lay in enumerate(g.layers):
        if not isinstance(lay, (XnorMvu, FxpMvu)):
            continue
        t = lay.outputs[0]
        cs = consumers.get(t, [])
        while len(cs) == 1 and isinstance(cs[0], (Fifo, Dwc)) and t != g.output:  # plumbing without data change
            t = cs[0].outputs[0]
            cs = consumers.get(t, [])
        if t == g.output or lay.outputs[0] == g.output or len(cs) != 1 or not isinstance(cs[0], Epilogue) or cs[0].inputs[0] != t:
            continue
        epi = cs[0]
        if any(b == t or producer.get(b, -1) > i for b in epi.inputs[1:]):
            continue
        out[lay.name] = epi
    return out


def analyze(g: HwGraph, tiling=None, banks=None) -> CModel:
    """Aliases, windows, MVU + Epilogue fusion, storage and the memory plan (``tiling``: a
    :class:`memplan.Tiling` whose region's buffers hold one band of rows)."""
    cm = CModel(g)
    cm.root[g.input] = g.input
    cm.fused = fusable_epilogues(g)
    skip = {e.name for e in cm.fused.values()}
    alias_of = {o: lay.inputs[0] for lay in g.layers if isinstance(lay, (Fork, Fifo, Dwc)) for o in lay.outputs}
    uses: dict[str, list[int]] = {}
    step = 0
    defs: dict[str, int] = {}
    if g.tensors[g.input].fmt.bipolar:  # 0/1 bytes from the caller, packed into the arena by step 0
        defs[g.input] = 0
        cm.steps.append(PACK_INPUT)
        cm.step_io[PACK_INPUT] = ([], [g.input])
        step = 1
    for lay in g.layers:
        if lay.name in skip:
            continue
        role = EMITTERS.entry(lay).role  # raises, naming the layer, for a kind C neither maps nor refuses
        if role == "alias":
            if lay.inputs[0] in cm.fused_acc:  # plumbing between an MVU and its fused Epilogue: no data
                cm.fused_acc.update(lay.outputs)
                continue
            for o in lay.outputs:
                cm.root[o] = cm.root[lay.inputs[0]]
                if lay.inputs[0] in cm.windows:
                    cm.windows[o] = cm.windows[lay.inputs[0]]
            continue
        if role == "window":
            o = lay.outputs[0]
            cm.windows[o] = Window(cm.root[lay.inputs[0]], lay.h, lay.w, lay.c, lay.k, lay.k, lay.s, lay.pad)
            cm.root[o] = cm.root[lay.inputs[0]]
            continue
        ins, outs = list(lay.inputs), list(lay.outputs)
        if lay.name in cm.fused:
            cm.fused_acc.add(lay.outputs[0])
            ins += cm.fused[lay.name].inputs[1:]
            outs = list(cm.fused[lay.name].outputs)
        for t in ins:
            u = t
            while u not in cm.root and u in alias_of:  # a fused JoinAdd operand reached through a later Fifo
                u = alias_of[u]
            if u in cm.root:
                cm.root[t] = cm.root[u]
            if t not in cm.root:
                raise CBackendError(f"layer {lay.name!r}: input {t!r} is not produced before it")
            uses.setdefault(cm.root[t], []).append(step)
        for o in outs:
            cm.root[o] = o
            defs[o] = step
        cm.steps.append(lay.name)
        cm.step_io[lay.name] = (ins, outs)
        step += 1
    nsteps = step
    out_root = cm.root[g.output]
    uses.setdefault(out_root, []).append(nsteps)  # copied out after the last layer
    cm.defs, cm.uses = defs, uses
    for i, name in enumerate(defs):
        cm.storage[name] = _storage(g.tensors[name], f"T{i}")
    if g.input not in cm.storage:
        cm.storage[g.input] = _storage(g.tensors[g.input], "IN")
    else:
        h, w, c = g.tensors[g.input].shape
        cm.raw_input = Storage(g.input, "IN", h, w, c, False, "int8_t", 1)
    cm.tiling = tiling
    cm.banks = banks
    if tiling is not None:
        tiling.apply(cm)  # band buffers, row bases, lifetimes stretched over the region
    cm.in_place = _in_place(cm, out_root)
    base = {}
    for o, x in cm.in_place.items():
        base[o] = base.get(x, x)
    life = {}
    for name, st in defs.items():
        end = max(uses.get(name, [st]))
        start = st
        if tiling is not None:
            start, end = tiling.lifetime(cm, name, start, end)
        life[name] = (start, max(end, start))
    bufs = []
    for name in defs:
        if name in base:
            continue
        start, end = life[name]
        end = max([end] + [life[o][1] for o, b in base.items() if b == name])
        bufs.append(memplan.Buffer(name, cm.storage[name].nbytes, start, end, heat=_heat(cm, name)))
    cm.plan = memplan.plan(bufs, nsteps + 1, getattr(cm, "banks", None))
    for o, b in base.items():  # an in-place output: at its input's place (never larger: _in_place checks)
        pb = cm.plan.buffers[b]
        cm.plan.buffers[o] = memplan.Buffer(o, cm.storage[o].nbytes, *life[o], offset=pb.offset, heat=0.0,
                                            bank=pb.bank, in_place_of=b)
    for name in cm.steps:
        cm.layer_ram[name] = sum(cm.storage[o].nbytes for o in cm.step_io[name][1])
    ins, outs = cm.input_storage, cm.storage[out_root]
    out_t, out_b = ctype_for(g.tensors[g.output].fmt.bits if not outs.packed else 2)
    cm.io_bytes = cm.raw_input.nbytes if cm.raw_input else ins.h * ins.w * ins.pix_bytes
    cm.io_bytes += outs.h * outs.w * outs.c * out_b
    cm.stack_bytes = stack_bytes(cm)
    return cm


def _in_place(cm: CModel, out_root: str) -> dict[str, str]:
    """Output buffer -> the input buffer it overwrites: an elementwise step (a stand-alone Epilogue or op) whose
    chain input is read by no later step writes its output over it: same shape and element size, neither
    bit-packed, so a forward loop reads each element before it writes it (a narrower output would be safe too,
    but it would keep the wider buffer's bytes for its own lifetime: more RAM, not less). Not inside a tiled
    region (a band buffer's rows follow its own consumers)."""
    from binaryhpe.compile.kinds.elementwise import _Elementwise

    by_name = {lay.name: lay for lay in cm.g.layers}
    t = cm.tiling
    out = {}
    for i, name in enumerate(cm.steps):
        lay = by_name.get(name)
        if not isinstance(lay, (Epilogue, _Elementwise)) or (t is not None and t.start <= i <= t.end):
            continue
        ins, outs = cm.step_io[name]
        x, o = cm.root[ins[0]], outs[0]
        if x not in cm.defs or x == out_root or max(cm.uses.get(x, [i])) != i or len(outs) != 1:
            continue
        if any(cm.root[b] == x for b in ins[1:]):
            continue
        sx, so = cm.storage[x], cm.storage[o]
        if (sx.h, sx.w, sx.c) != (so.h, so.w, so.c) or sx.packed or sx.rows or so.rows:
            continue
        if not so.packed and so.elem_bytes == sx.elem_bytes:  # a narrower output would hold the wider place
            out[o] = x
    return out


def _heat(cm: CModel, name: str) -> float:
    """Accesses per byte of a buffer over a frame (reads by each consumer step + the write): the planner puts
    the hottest buffers in the fastest RAM bank."""
    return float(1 + len(cm.uses.get(name, [])))


# ---------------------------------------------------------------------------------------------------------
# C emission helpers


def _arr(values, ctype: str, per_line: int = 16) -> str:
    vals = [int(v) for v in np.asarray(values).ravel()]
    if ctype == "uint32_t":
        items = [f"0x{v & 0xFFFFFFFF:08x}u" for v in vals]
    elif ctype == "int32_t":
        items = [str(v) if v != -(1 << 31) else "(-2147483647-1)" for v in vals]
    elif ctype == "int64_t":
        items = [f"INT64_C({v})" for v in vals]
    else:
        items = [str(v) for v in vals]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "{\n  " + ",\n  ".join(lines) + "\n}" if lines else "{0}"


def _smallest(values, min_bits: int = 2) -> tuple[str, int]:
    """Smallest C type of a constant array: int8/16/32, or int64 for a constant wider than 32 bits (a
    float-scaled chain's multiplier; the ops that use it compute in int64_t)."""
    v = np.asarray(values, dtype=np.int64)
    amax = int(max(abs(int(v.min())), abs(int(v.max())))) if v.size else 0
    bits = max(min_bits, amax.bit_length() + 1)
    return ("int64_t", 8) if bits > 32 else ctype_for(bits)


def _range(bits: int, signed: bool = True) -> tuple[int, int]:
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _lit(v: int, wide: str) -> str:
    if wide == "int64_t":
        return f"INT64_C({v})"
    return str(v) if v != -(1 << 31) else "(-2147483647-1)"


def _wide(bits: int) -> str:
    if bits <= 32:
        return "int32_t"
    if bits <= 64:
        return "int64_t"
    raise CBackendError(f"an intermediate of {bits} bits does not fit 64 bits")


def _shift(expr: str, sh: int, wide: str) -> str:
    """floor(expr * 2^-sh): arithmetic right shift, or an exact multiplication by 2^-sh."""
    if sh > 0:
        return f"(({expr}) >> {sh})"
    if sh < 0:
        return f"(({expr}) * ({wide})({_lit(1 << -sh, wide)}))"
    return f"({expr})"


def _sat(expr: str, bits: int, wide: str, signed: bool = True) -> str:
    """Saturate ``expr`` to ``bits`` (signed or unsigned). On 32-bit values to fewer than 32 signed bits this is
    ``BHPE_SSAT``: one SSAT instruction where the compiler has ACLE's saturation intrinsic (``__ssat``, every
    Cortex-M with the DSP extension), else the same compare as ``BHPE_SAT`` (identical results either way)."""
    lo, hi = _range(bits, signed)
    if wide == "int32_t" and signed and bits < 32:
        return f"BHPE_SSAT({expr}, {bits}, {_lit(lo, wide)}, {_lit(hi, wide)})"
    return f"BHPE_SAT({expr}, {_lit(lo, wide)}, {_lit(hi, wide)})"


def fmt_range(g: HwGraph, tensor: str, c: int) -> tuple[list, list]:
    """Per channel, the integer range of a tensor's format (what the C reads from its buffer)."""
    from binaryhpe.compile.worstcase import fmt_bounds

    lo, hi = fmt_bounds(g.tensors[tensor].fmt)
    return [lo] * c, [hi] * c


def acc_range(g: HwGraph, lay) -> tuple[list, list]:
    """Per output channel, the range of an MVU's accumulator (``worstcase.mvu_bounds``): an XNOR-popcount's
    ``+-sum |w|`` (its +-1 products, a padding tap adding 0), a fixed-point one's from its weights on its input
    format's range (a padding zero inside it)."""
    from binaryhpe.compile.worstcase import fmt_bounds, mvu_bounds

    lo, hi = fmt_bounds(g.tensors[lay.inputs[0]].fmt)
    alo, ahi = mvu_bounds(lay, (min(lo, 0), max(hi, 0)))
    return [int(v) for v in alo], [int(v) for v in ahi]


def free_saturations(g: HwGraph, epi, mvu=None) -> int:
    """How many of an Epilogue's (or one elementwise op's) saturations the C leaves out (``op_ranges``), its input
    the accumulator of ``mvu`` when it runs fused into that MVU."""
    ops = epi.ops if isinstance(epi, Epilogue) else [epi]
    rng = acc_range(g, mvu) if mvu is not None else fmt_range(g, epi.inputs[0], epi.c)
    brng = fmt_range(g, epi.inputs[1], epi.c) if len(epi.inputs) > 1 else None
    n = 0
    for op in ops:
        free, rng = op_ranges(op, rng, brng)
        n += len(free)
    return n


def op_ranges(op, rng, brng=None) -> tuple[set, tuple]:
    """Interval arithmetic of one elementwise op, per channel (Python integers, exact): from the range
    ``rng = (lo[], hi[])`` of its input (``brng``: a JoinAdd's second input) to (the op's saturation sites whose
    value provably stays inside the output range for every channel, the output's range). Each step is monotone
    in its input (floor shifts, products with a channel's constant taken at both ends), so the bounds are sound;
    a site is kept whenever a bound reaches past the range. An op of another kind (a user's, registered with
    ``EMITTERS``), or an unknown input range (None), proves nothing: no site, output range None."""
    if isinstance(op, (Sign, Threshold)):
        return set(), ([0] * op.c, [1] * op.c)
    if isinstance(op, MultiThreshold):
        return set(), ([int(op.offset)] * op.c, [int(op.offset) + op.n] * op.c)
    if rng is None or not isinstance(op, (Requant, MulShift, AddConst, Prelu, JoinAdd)) or \
            (isinstance(op, JoinAdd) and brng is None):
        return set(), None
    lo, hi = list(rng[0]), list(rng[1])
    n = len(lo)

    def shift(v: int, sh: int) -> int:
        return v >> sh if sh >= 0 else v * (1 << -sh)

    def mul(a, b, k):  # per channel [a, b] * k
        ps = [(x * kk, y * kk) for x, y, kk in zip(a, b, k)]
        return [min(p) for p in ps], [max(p) for p in ps]

    def clip(a, b, bits):
        rlo, rhi = _range(bits)
        free = all(x >= rlo for x in a) and all(y <= rhi for y in b)
        return free, [min(max(x, rlo), rhi) for x in a], [min(max(y, rlo), rhi) for y in b]

    def const(v):
        arr = np.asarray(v, dtype=np.int64).ravel()
        return [int(arr[0])] * n if arr.size == 1 else [int(x) for x in arr]

    free: set = set()
    if isinstance(op, Requant):
        ok, lo, hi = clip([shift(x, op.shift) for x in lo], [shift(y, op.shift) for y in hi], op.out_w)
        if ok:
            free.add("y")
        if op.relu:
            lo, hi = [max(x, 0) for x in lo], [max(y, 0) for y in hi]
    elif isinstance(op, MulShift):
        a, b = mul(lo, hi, const(op.m))
        ok, lo, hi = clip([shift(x, op.shift) for x in a], [shift(y, op.shift) for y in b], op.out_w)
        if ok:
            free.add("y")
    elif isinstance(op, AddConst):
        k = const(op.b)
        ok, lo, hi = clip([x + kk for x, kk in zip(lo, k)], [y + kk for y, kk in zip(hi, k)], op.out_w)
        if ok:
            free.add("y")
    elif isinstance(op, Prelu):  # x > 0: sat(x); x <= 0: sat(floor(beta x 2^-shift))
        plo, phi = [max(x, 1) for x in lo], hi
        ok_p, plo, phi = clip(plo, phi, op.out_w)
        nlo, nhi = lo, [min(y, 0) for y in hi]
        a, b = mul(nlo, nhi, const(op.beta))
        ok_n, nlo, nhi = clip([shift(x, op.shift) for x in a], [shift(y, op.shift) for y in b], op.out_w)
        pos_any = [y > 0 for y in hi]
        neg_any = [x <= 0 for x in lo]
        if ok_p or not any(pos_any):
            free.add("pos")
        if ok_n or not any(neg_any):
            free.add("neg")
        lo = [min([p] * pa + [q] * na) for p, q, pa, na in zip(plo, nlo, pos_any, neg_any)]
        hi = [max([p] * pa + [q] * na) for p, q, pa, na in zip(phi, nhi, pos_any, neg_any)]
    else:  # JoinAdd
        blo, bhi = brng
        ok, lo, hi = clip([shift(x, -op.shift_a) + shift(z, -op.shift_b) for x, z in zip(lo, blo)],
                          [shift(y, -op.shift_a) + shift(z, -op.shift_b) for y, z in zip(hi, bhi)], op.out_w)
        if ok:
            free.add("y")
    return free, (lo, hi)


#: a pool of more channels runs taps outside, channels inside (one bounds check a tap, the window's maxima or
#: sums in a local array); fewer keep the channel-outside loop (gcc unrolls its constant-bound taps)
POOL_CHANNELS_INSIDE = 16

#: a stand-alone elementwise step over at most this many channels is written out channel by channel
ELEM_UNROLL = 16

#: words of a dot product written straight-line; longer ones loop over 8-word blocks
XDOT_UNROLL = 160


def _harley_seal(n: int) -> str:
    """``bhpe_xdot_n`` (``n >= 8``) as a Harley-Seal carry-save adder: per 8-word block seven carry-save adders
    (``u = l ^ p; h = (l & p) | (u & q); l = u ^ q``: ``l + p + q = l' + 2 h``) add the block's XORed words into
    the running ``ones`` / ``twos`` / ``fours`` words and give one ``eights`` word, whose popcount goes into byte
    sums (``t8``, at most 8 a byte a block: ``BHPE_BYTESUM`` adds the bytes into a 32-bit sum); the words left
    after the blocks go in pairs through one adder into ``ones`` and half adders into ``twos`` and ``fours``.
    The count is ``8 t8 + popcount(fours) * 4 + popcount(twos) * 2 + popcount(ones)`` (the last three as 4-bit
    then 8-bit field sums: at most 12 a nibble, 56 a byte)."""
    def pair(p: str, k: int) -> list[str]:
        return [f"BHPE_LDRD(x{p}, {4 * k}, xa, xb); BHPE_LDRD(w{p}, {4 * k}, wa, wb); a0 = xa ^ wa; a1 = xb ^ wb;"]

    def csa(h: str, lo: str, p: str, q: str) -> list[str]:
        return [f"u = {lo} ^ {p}; {h} = ({lo} & {p}) | (u & {q}); {lo} = u ^ {q};"]

    def block(p: str, k0: int) -> list[str]:
        L = []
        for j in range(0, 8, 2):
            L += pair(p, k0 + j) + csa("ta" if j % 4 == 0 else "tb", "ones", "a0", "a1")
            if j % 4 == 2:
                L += csa("fa" if j == 2 else "fb", "twos", "ta", "tb")
        return L + csa("e", "fours", "fa", "fb") + ["t8 = BHPE_BYTESUM(bhpe_pc8(bhpe_pc4(e)), t8);"]

    nb = n // 8
    body = []
    if n <= XDOT_UNROLL:
        for b in range(nb):
            body += block("", 8 * b)
        p, i = "", 8 * nb
    else:
        body += ["const uint32_t *xp = x, *wp = w;", f"for (int j = 0; j < {nb}; j++, xp += 8, wp += 8) {{",
                 *["  " + ln for ln in block("p", 0)], "}"]
        p, i = "p", 0
    rest = n - 8 * nb
    while rest > 0:  # the words after the blocks: a pair (or the last word) into ones, carries up half adders
        if rest >= 2:
            body += pair(p, i) + csa("ta", "ones", "a0", "a1")
            i, rest = i + 2, rest - 2
        else:
            body.append(f"a0 = x{p}[{i}] ^ w{p}[{i}]; ta = ones & a0; ones ^= a0;")
            i, rest = i + 1, rest - 1
        body.append("fa = twos & ta; twos ^= ta; e = fours & fa; fours ^= fa; "
                    "t8 = BHPE_BYTESUM(bhpe_pc8(bhpe_pc4(e)), t8);")
    body.append("t = 8u * t8 + BHPE_BYTESUM(bhpe_pc8(bhpe_pc4(ones) + 2u * bhpe_pc4(twos)) + "
                "4u * bhpe_pc8(bhpe_pc4(fours)), 0u);")
    return "\n".join([
        f"BHPE_INLINE uint32_t bhpe_xdot_{n}(const uint32_t *x, const uint32_t *w) {{",
        "  uint32_t t = 0u;",
        "#if BHPE_POPCOUNT_IMPL == BHPE_POPCOUNT_SWAR",
        "  uint32_t ones = 0u, twos = 0u, fours = 0u, t8 = 0u, ta, tb = 0u, fa, fb = 0u, e, u, a0, a1 = 0u, "
        "xa = 0u, xb = 0u, wa = 0u, wb = 0u;",
        "  (void)tb; (void)fb; (void)a1; (void)xa; (void)xb; (void)wa; (void)wb;",
        *["  " + ln for ln in body],
        "#else",
        f"  for (int i = 0; i < {n}; i++) t += BHPE_POPCOUNT32(x[i] ^ w[i]);",
        "#endif",
        "  return t;", "}", ""])



class _Emitter:
    def __init__(self, cm: CModel):
        self.cm = cm
        self.g = cm.g
        self.weights: list[str] = []  # definitions for weights.c
        self.decls: list[str] = []  # extern declarations
        self.funcs: list[str] = []
        self.owner: str | None = None  # the layer whose flash a constant counts to (an Epilogue's, for its ops)
        self.helpers: dict[str, str] = {}  # static inline helpers (dot products), by name
        self.pack: list | None = None  # while emitting an Epilogue's ops: its per-channel constants, by column
        self.free: set = set()  # while emitting an op: its saturation sites the value ranges prove never clip

    def _satr(self, site: str, expr: str, bits: int, wide: str) -> str:
        """``_sat`` at an op's saturation ``site``, or ``expr`` itself where ``op_ranges`` proved that the value
        stays inside the ``bits``-bit range for every channel (the saturation would never clip)."""
        return f"({expr})" if site in self.free else _sat(expr, bits, wide)

    def const(self, lay, suffix: str, values, ctype: str | None = None) -> str:
        if self.pack is not None and ctype is None and np.asarray(values).ndim == 1 \
                and not isinstance(lay, MultiThreshold):  # its thresholds are indexed c * n + j
            self.pack.append(np.asarray(values, dtype=np.int64))  # one per-channel column of the Epilogue's array
            return f"@K{len(self.pack) - 1}@"
        name = f"W_{_ident(lay.name)}_{suffix}"
        if ctype is None:
            ctype, _ = _smallest(values)
        n = int(np.asarray(values).size)
        self.weights.append(f"const {ctype} {name}[{max(n, 1)}] = {_arr(values, ctype)};")
        self.decls.append(f"extern const {ctype} {name}[{max(n, 1)}];")
        nbytes = max(n, 1) * {"int8_t": 1, "int16_t": 2, "int32_t": 4, "uint32_t": 4, "int64_t": 8}[ctype]
        self.cm.weight_sets[name] = nbytes
        key = self.owner or lay.name
        self.cm.layer_flash[key] = self.cm.layer_flash.get(key, 0) + nbytes
        return name

    def st(self, tensor: str) -> Storage:
        return self.cm.storage[self.cm.root[tensor]]

    # --- per kind: the emitters, registered in EMITTERS -----------------------------------------------
    def layer(self, lay) -> str:
        e = EMITTERS.entry(lay)
        if e.role == "op":
            return self.elementwise(lay, e.fn)
        if e.role != "layer":
            raise CBackendError(f"layer {lay.name!r}: a {type(lay).__name__} emits no code of its own ({e.role})")
        return e.fn(self, lay)

    @EMITTERS.emits(Fork, Fifo, Dwc, role="alias", note="nothing (aliases its input buffer)")
    def alias(self, lay) -> str:
        """no code: the outputs alias the input buffer"""
        return ""

    @EMITTERS.emits(SlidingWindow, role="window", note="fused into its convolution / pool")
    def window(self, lay) -> str:
        """no code: fused into the convolution or pool that reads it (which walks the window)"""
        return ""

    def _window(self, lay) -> Window:
        t = lay.inputs[0]
        if t in self.cm.windows:
            win = self.cm.windows[t]
        else:  # a fully connected MVU over a whole frame (FcXnorMvu / FcFxpMvu): one window = the frame
            s = self.st(t)
            win = Window(self.cm.root[t], s.h, s.w, s.c, s.h, s.w, 1, 0)
        if win.kh * win.kw * win.c != lay.n:
            raise CBackendError(f"layer {lay.name!r}: window {win.kh}x{win.kw}x{win.c} != N = {lay.n}")
        return win

    # --- convolutions: XNOR-popcount and fixed-point MVUs ----------------------------------------------
    # Per output pixel the window is gathered once into a contiguous local array (zero words / zeros for the
    # padding taps, skipped by nothing: a zero input adds 0 to a fixed-point sum, and a padded tap's XOR with
    # the weights is corrected below), then per output channel one straight-line dot product over the whole
    # window (``bhpe_xdot_N`` / ``bhpe_fdot_N``, N compile-time) with the accumulator in a register, and the
    # fused Epilogue (if any) on the accumulator in registers, one store of the result.

    def _helper(self, name: str, code: str) -> str:
        self.helpers.setdefault(name, code)
        return name

    def _xdot(self, n: int) -> str:
        """``uint32_t bhpe_xdot_n(x, w)``: sum over ``n`` words of popcount(x ^ w), straight-line (a loop over
        8-word blocks beyond ``XDOT_UNROLL`` words). SWAR: ``n >= 8`` a Harley-Seal carry-save adder over 8-word
        blocks (ones, twos, fours words; each block's eights word counted into byte sums, ``BHPE_BYTESUM``), the
        three words counted once at the end; ``n < 8`` groups of three words through one carry-save adder. Words
        are loaded in pairs (``BHPE_LDRD``: one LDRD on Thumb-2)."""
        if n >= 8:
            return self._helper(f"bhpe_xdot_{n}", _harley_seal(n))
        def chunk(base: str, m: int) -> list[str]:
            L = ["b = 0u;"]
            for g0 in range(0, m, 3):
                if g0 + 3 <= m:  # a carry-save adder: the three words' bits as ones + 2 * twos
                    a = [f"(x[{base}{i}] ^ w[{base}{i}])" for i in range(g0, g0 + 3)]
                    L.append(f"a0 = {a[0]}; a1 = {a[1]}; a2 = {a[2]}; u = a0 ^ a1; "
                             "b += bhpe_pc8(bhpe_pc4(u ^ a2) + 2u * bhpe_pc4((a0 & a1) | (u & a2)));")
                else:
                    terms = [f"bhpe_pc4(x[{base}{i}] ^ w[{base}{i}])" for i in range(g0, m)]
                    L.append(f"b += bhpe_pc8({' + '.join(terms)});")
            L.append("t = BHPE_BYTESUM(b, t);")
            return L
        code = "\n".join([
            f"BHPE_INLINE uint32_t bhpe_xdot_{n}(const uint32_t *x, const uint32_t *w) {{",
            "  uint32_t t = 0u;",
            "#if BHPE_POPCOUNT_IMPL == BHPE_POPCOUNT_SWAR",
            "  uint32_t b, a0, a1, a2, u;" if n >= 3 else "  uint32_t b;",
            *["  " + ln for ln in chunk("", n)],
            "#else",
            f"  for (int i = 0; i < {n}; i++) t += BHPE_POPCOUNT32(x[i] ^ w[i]);",
            "#endif",
            "  return t;", "}", ""])
        return self._helper(f"bhpe_xdot_{n}", code)

    def _fdot(self, n: int, pairs: bool, wtype: str) -> str:
        """``int32_t bhpe_fdot*_n(x, w)``: a fixed-point dot product of ``n`` elements (``pairs``: ``n``
        words of two 16-bit halves each, one SMLAD a word on a core with the DSP extension)."""
        if pairs:
            name = f"bhpe_fdot2_{n}"
            body = [f"  acc = BHPE_SMLAD(x[{j}], w[{j}], acc);" for j in range(n)] if n <= 128 else \
                [f"  for (int j = 0; j < {n}; j++) acc = BHPE_SMLAD(x[j], w[j], acc);"]
            code = "\n".join([f"BHPE_INLINE int32_t {name}(const uint32_t *x, const uint32_t *w) {{",
                               "  int32_t acc = 0;", *body, "  return acc;", "}", ""])
        else:
            name = f"bhpe_fdot_{wtype}_{n}"
            code = "\n".join([f"BHPE_INLINE int32_t {name}(const int32_t *x, const {wtype} *w) {{",
                               "  int32_t acc = 0;",
                               f"  for (int j = 0; j < {n}; j++) acc += x[j] * (int32_t)w[j];",
                               "  return acc;", "}", ""])
        return self._helper(name, code)

    def _int8_pairs(self, win: Window, src: Storage) -> tuple[list, list[str]]:
        """The 16-bit pairs of an int8 window and the C that fills ``xp[]`` with them. A window row (``kw * c``
        elements, contiguous in the source; the whole window when it is contiguous) is read a word of four
        elements ``e0..e3`` at a time into two pairs, ``(e0, e2)`` and ``(e1, e3)`` (``BHPE_SXTB16``: one SXTB16
        each on the DSP extension), the row's last one to three elements as pairs of neighbours; the weights are
        paired the same way (``plist``: window element indices, -1 a zero). A window that reaches over the
        image border (padding) is gathered element by element with zeros, then paired by the same list."""
        c, n = win.c, win.kh * win.kw * win.c
        segs = [(0, n)] if self._contiguous(win) else [(r * win.kw * c, win.kw * c) for r in range(win.kh)]
        plist, fast = [], []
        for r, (e0, ln) in enumerate(segs):
            if self._contiguous(win):
                base = src.at(f"oy * {win.s} * {win.w} + ox * {win.s}")
            else:
                base = src.at(f"(iy0 + {r}) * {win.w} + ix0")
            fast.append(f"s = &{src.cname}[{base} * {c}];")
            for q in range(ln // 4):
                j = len(plist)
                plist += [(e0 + 4 * q, e0 + 4 * q + 2), (e0 + 4 * q + 1, e0 + 4 * q + 3)]
                fast.append(f"memcpy(&v, s + {4 * q}, 4); xp[{j}] = BHPE_SXTB16(v); xp[{j + 1}] = BHPE_SXTB16(v >> 8);")
            for t in range(4 * (ln // 4), ln, 2):
                j = len(plist)
                hi = t + 1 < ln
                plist.append((e0 + t, e0 + t + 1 if hi else -1))
                fast.append(f"xp[{j}] = (uint32_t)(s[{t}] & 0xFFFF)"
                            + (f" | ((uint32_t)(s[{t + 1}] & 0xFFFF) << 16);" if hi else ";"))
        npair = len(plist)
        L = [f"      uint32_t xp[{npair}], v = 0u;", f"      const {src.ctype} *s;", "      (void)v;"]
        if self._contiguous(win) or win.pad == 0:
            if not self._contiguous(win):
                L.append(f"      const int32_t iy0 = oy * {win.s}, ix0 = ox * {win.s};")
            return plist, L + [f"      {x}" for x in fast]
        pa = ", ".join(str(a) for a, _ in plist)
        pb = ", ".join(str(b if b >= 0 else n) for _, b in plist)
        L += [f"      const int32_t iy0 = oy * {win.s} - {win.pad}, ix0 = ox * {win.s} - {win.pad};",
              f"      if ((uint32_t)iy0 <= {win.h - win.kh}u && (uint32_t)ix0 <= {win.w - win.kw}u) {{",
              *[f"        {x}" for x in fast], "      } else {",
              f"        static const int16_t pa[{npair}] = {{{pa}}}, pb[{npair}] = {{{pb}}};",
              f"        int32_t xv[{n + 1}];", f"        xv[{n}] = 0;"]
        L += ["  " + ln.replace("xv_t *", "int32_t *") for ln in self._gather(win, src, "xv", c, "0", False)]
        L += [f"        for (int j = 0; j < {npair}; j++) xp[j] = (uint32_t)(uint16_t)xv[pa[j]] | "
              "((uint32_t)(uint16_t)xv[pb[j]] << 16);", "        (void)s;", "      }"]
        return plist, L

    def _fdot_group(self, n: int, g: int) -> str:
        """``void bhpe_fdot2g<g>_<n>(x, w, acc)``: ``g`` output channels' dot products over ``n`` words of two
        16-bit inputs (``w``: a word's ``g`` channels side by side), one SMLAD a (word, channel): each input word
        is loaded once for the ``g`` channels, and the words two at a time (``BHPE_LDRD``), the pointers moved
        every 32 words (LDRD's offset reaches 1020 bytes)."""
        name = f"bhpe_fdot2g{g}_{n}"
        L = [f"BHPE_INLINE void {name}(const uint32_t *x, const uint32_t *w, int32_t *acc) {{",
             "  int32_t " + ", ".join(f"a{k} = 0" for k in range(g)) + ";",
             "  uint32_t xa, xb = 0u, " + ", ".join(f"w{k}" for k in range(g)) + ";", "  (void)xb;"]
        for j0 in range(0, n, 32):
            if j0:
                L.append(f"  x += 32; w += {32 * g};")
            m = min(32, n - j0)
            for j in range(0, m, 2):
                if j + 1 < m:
                    L.append(f"  BHPE_LDRD(x, {4 * j}, xa, xb);")
                else:
                    L.append(f"  xa = x[{j}];")
                for xv, jj in (("xa", j), ("xb", j + 1)):
                    if jj >= m:
                        continue
                    for k in range(0, g, 2):
                        L.append(f"  BHPE_LDRD(w, {4 * (jj * g + k)}, w{k}, w{k + 1});")
                    L.append("  " + " ".join(f"a{k} = BHPE_SMLAD({xv}, w{k}, a{k});" for k in range(g)))
        L += ["  " + " ".join(f"acc[{k}] = a{k};" for k in range(g)), "}", ""]
        return self._helper(name, "\n".join(L))

    def _gather(self, win: Window, src: Storage, dst: str, per_tap: int, zero: str, track_pad: bool,
                copy=None) -> list[str]:
        """Gather the window of output pixel (oy, ox) into ``dst`` (``per_tap`` elements a tap, ``zero`` for a
        padding tap; with ``track_pad`` the padding taps' indices go to ``pl[np++]``)."""
        cw = per_tap
        L = [f"      for (int ky = 0; ky < {win.kh}; ky++) {{",
             f"        const int32_t iy = oy * {win.s} - {win.pad} + ky;",
             f"        for (int kx = 0; kx < {win.kw}; kx++) {{",
             f"          const int32_t ix = ox * {win.s} - {win.pad} + kx;",
             f"          {dst.split('[')[0]}_t *d = &{dst}[(ky * {win.kw} + kx) * {cw}];"]
        rd = f"&{src.cname}[{src.at(f'iy * {win.w} + ix')} * {cw}]"
        if win.pad:
            L += [f"          if (iy < 0 || iy >= {win.h} || ix < 0 || ix >= {win.w}) {{",
                  f"            for (int k = 0; k < {cw}; k++) d[k] = {zero};"]
            if track_pad:
                L.append(f"            pl[np++] = ky * {win.kw} + kx;")
            L += ["            continue;", "          }"]
        L += [f"          const {src.ctype} *s = {rd};",
              f"          for (int k = 0; k < {cw}; k++) d[k] = {copy or 's[k]'};", "        }", "      }"]
        return L

    def _out_loop(self, lay, o: Storage, acc_lines: list[str], ow: int, group: int = 1) -> list[str]:
        """Per output channel ``c``: ``acc_lines`` (computing ``acc``), the fused Epilogue's ops, one store. With
        ``group`` > 1, ``acc_lines`` run once for the channels ``cg .. cg + group - 1`` (into ``accs[]``)."""
        epi = self.cm.fused.get(lay.name)
        body, v = [], "acc"
        if epi is not None:
            vb = self.st(epi.inputs[1]).rd(f"oy * {ow} + ox", "c") if len(epi.inputs) > 1 else None
            self.owner = lay.name
            try:
                body, v = self._ops(epi, v, vb, acc_range(self.g, lay))
            finally:
                self.owner = None
        cout = lay.cout
        L = [f"      const int32_t opix = {o.at(f'oy * {ow} + ox')};"]
        if o.packed:
            L += ["      uint32_t word = 0u;"]
        if group > 1:
            L += [f"      for (int cg = 0; cg < {cout}; cg += {group}) {{", f"      int32_t accs[{group}];",
                  *[f"      {x}" for x in acc_lines], f"      for (int c = cg; c < cg + {group}; c++) {{",
                  "        const int32_t acc = accs[c - cg];", *[f"        {x}" for x in body]]
        else:
            L += [f"      for (int c = 0; c < {cout}; c++) {{", *[f"        {x}" for x in acc_lines],
                  *[f"        {x}" for x in body]]
        if o.packed:
            L += [f"        word |= (uint32_t)({v} != 0) << (c & 31);",
                  f"        if ((c & 31) == 31 || c == {cout - 1}) {{ {o.cname}[opix * {o.cw} + (c >> 5)] = word; "
                  "word = 0u; }"]
        else:
            L += [f"        {o.cname}[opix * {cout} + c] = ({o.ctype})({v});"]
        L += ["      }"] + (["      }"] if group > 1 else []) + ["    }", "  }"]
        return L

    def _contiguous(self, win: Window) -> bool:
        """The window is one contiguous run of the source (1x1 without padding, or a whole frame)."""
        return win.pad == 0 and ((win.kh == 1 and win.kw == 1) or (win.kh == win.h and win.kw == win.w))

    @EMITTERS.emits(XnorMvu, FcXnorMvu, note="gathered window, straight-line XOR + popcount")
    def xnor(self, lay: XnorMvu) -> str:
        """gathered window words, one XOR-popcount dot product an output channel, fused Epilogue"""
        win = self._window(lay)
        src = self.cm.storage[win.src]
        if not src.packed:
            raise CBackendError(f"layer {lay.name!r}: a binary MVU needs a bipolar input")
        o = self.st(self.cm.step_io[lay.name][1][0])
        cw, taps = src.cw, win.kh * win.kw
        n = taps * cw
        w = (np.asarray(lay.weights) > 0).astype(np.uint64).reshape(lay.cout, taps, win.c)
        packed = np.zeros((lay.cout, taps, cw), dtype=np.uint64)
        for c in range(win.c):
            packed[:, :, c // 32] |= w[:, :, c] << np.uint64(c % 32)
        L = [f"  for (int32_t oy = row0; oy < row1; oy++) {{", f"    for (int32_t ox = 0; ox < {win.ow}; ox++) {{"]
        if cw == 1 and win.c < 32 and taps > 1:  # dense: the taps' C bits back to back, ceil(taps*C/32) words
            return self._xnor_dense(lay, win, src, o, w, L)
        wn = self.const(lay, "w", packed, "uint32_t")
        dot = self._xdot(n)
        if self._contiguous(win):
            L.append(f"      const uint32_t *x = &{src.cname}[{src.at(f'oy * {win.s} * {win.w} + ox * {win.s}')}"
                     f" * {cw}];")
            acc = [f"const int32_t acc = {win.c * taps} - 2 * (int32_t){dot}(x, &{wn}[c * {n}]);"]
        else:
            L += [f"      uint32_t xw[{n}];"]
            if win.pad:
                L += [f"      int32_t pl[{taps}], np = 0;"]
            L += [ln.replace("xw_t *", "uint32_t *") for ln in self._gather(win, src, "xw", cw, "0u", bool(win.pad))]
            L.append("      const uint32_t *x = xw;")
            pc = None
            if win.pad:
                pc = np.array([[sum(bin(int(v)).count("1") for v in packed[co, t]) for t in range(taps)]
                               for co in range(lay.cout)])
            acc = self._xnor_acc(lay, L, dot, wn, n, win.c, taps, pc)
        return "\n".join(L + self._out_loop(lay, o, acc, win.ow))

    def _xnor_dense(self, lay, win: Window, src: Storage, o: Storage, w, L: list[str]) -> str:
        """A binary window of fewer than 32 channels: tap ``t``'s ``C`` bits at bit ``t*C`` of one dense bit
        vector (the gathering unrolled over the taps with constant shifts), so the dot product runs over
        ``ceil(taps*C/32)`` words instead of one word a tap; a padding tap is a zero field, corrected by its
        weight popcount as in the sparse layout."""
        c, taps = win.c, win.kh * win.kw
        nw = -(-taps * c // 32)
        bits = np.zeros((lay.cout, nw * 32), dtype=np.uint64)
        bits[:, :taps * c] = w.reshape(lay.cout, taps * c)
        words = np.zeros((lay.cout, nw), dtype=np.uint64)
        for b in range(32):
            words |= bits[:, b::32] << np.uint64(b)
        wn = self.const(lay, "w", words, "uint32_t")
        dot = self._xdot(nw)
        L += [f"      uint32_t x[{nw}] = {{0u}};"]
        if win.pad:
            L += [f"      int32_t pl[{taps}], np = 0;"]

        def gather(checked: bool, ind: str) -> list[str]:
            out = []
            for t in range(taps):
                ky, kx = divmod(t, win.kw)
                wd, sh = divmod(t * c, 32)
                out += [f"{ind}{{", f"{ind}  const int32_t iy = oy * {win.s} - {win.pad} + {ky}, "
                        f"ix = ox * {win.s} - {win.pad} + {kx};"]
                rd = f"{src.cname}[{src.at(f'iy * {win.w} + ix')}]"
                if checked:
                    out += [f"{ind}  uint32_t v = 0u;",
                            f"{ind}  if ((uint32_t)iy < {win.h}u && (uint32_t)ix < {win.w}u) v = {rd}; "
                            f"else pl[np++] = {t};"]
                else:
                    out += [f"{ind}  const uint32_t v = {rd};"]
                out.append(f"{ind}  x[{wd}] |= v << {sh};" if sh else f"{ind}  x[{wd}] |= v;")
                if sh + c > 32:
                    out.append(f"{ind}  x[{wd + 1}] |= v >> {32 - sh};")
                out.append(f"{ind}}}")
            return out
        if win.pad:  # a window inside the image (most pixels) skips the bounds checks
            L += [f"      if ((uint32_t)(oy * {win.s} - {win.pad}) <= {win.h - win.kh}u && "
                  f"(uint32_t)(ox * {win.s} - {win.pad}) <= {win.w - win.kw}u) {{",
                  *gather(False, "        "), "      } else {", *gather(True, "        "), "      }"]
        else:
            L += gather(False, "      ")
        pc = np.asarray(w, dtype=np.int64).reshape(lay.cout, taps, c).sum(axis=2) if win.pad else None
        acc = self._xnor_acc(lay, L, dot, wn, nw, c, taps, pc)
        return "\n".join(L + self._out_loop(lay, o, acc, win.ow))

    def _xnor_acc(self, lay, L: list[str], dot: str, wn: str, nwords: int, c: int, taps: int, pc) -> list[str]:
        """The accumulator of one output channel from the XNOR-popcount dot product ``dot`` over the gathered
        ``nwords`` words: ``C * taps - 2 * popcount``; with padding (``pc``: each channel's weight popcount a tap,
        None without padding) the zero fields of the ``np`` padding taps in ``pl`` are taken out of the count and
        of the taps (its ``base`` line is appended to ``L``)."""
        if pc is None:
            return [f"const int32_t acc = {c * taps} - 2 * (int32_t){dot}(x, &{wn}[c * {nwords}]);"]
        pn = self.const(lay, "pc", pc)
        L.append(f"      const int32_t base = {c} * ({taps} - np);")
        return [f"int32_t d = (int32_t){dot}(x, &{wn}[c * {nwords}]);",
                f"for (int j = 0; j < np; j++) d -= (int32_t){pn}[c * {taps} + pl[j]];",
                "const int32_t acc = base - 2 * d;"]

    @EMITTERS.emits(FxpMvu, FcFxpMvu, note="gathered window, straight-line multiply-accumulate (SMLAD pairs)")
    def fxp(self, lay: FxpMvu) -> str:
        """gathered window, one dot product an output channel (two 16-bit MACs an SMLAD), fused Epilogue"""
        win = self._window(lay)
        src = self.cm.storage[win.src]
        if src.packed:
            raise CBackendError(f"layer {lay.name!r}: a fixed-point MVU needs a fixed-point input")
        o = self.st(self.cm.step_io[lay.name][1][0])
        if lay.acc_w > 32:
            raise CBackendError(f"layer {lay.name!r}: accumulator of {lay.acc_w} bits > 32")
        taps = win.kh * win.kw
        n = taps * win.c
        wts = np.asarray(lay.weights, dtype=np.int64).reshape(lay.cout, n)
        pairs = src.elem_bytes <= 2 and lay.w_w <= 16
        L = [f"  for (int32_t oy = row0; oy < row1; oy++) {{", f"    for (int32_t ox = 0; ox < {win.ow}; ox++) {{"]
        if pairs:
            if src.elem_bytes == 1:  # int8 rows read a word at a time, two pairs a word (_int8_pairs)
                plist, gather = self._int8_pairs(win, src)
            else:
                plist, gather = [(2 * j, 2 * j + 1 if 2 * j + 1 < n else -1) for j in range(-(-n // 2))], None
            npair = len(plist)
            wz = np.concatenate([wts, np.zeros((lay.cout, 1), dtype=np.int64)], axis=1)  # index -1: 0
            words = (wz[:, [a for a, _ in plist]] & 0xFFFF) | ((wz[:, [b for _, b in plist]] & 0xFFFF) << 16)
            group = 4 if lay.cout % 4 == 0 else 2 if lay.cout % 2 == 0 else 1
            if group > 1:  # [cout / group][pair][group]: a pair's words of the group's channels side by side
                words = words.reshape(lay.cout // group, group, npair).transpose(0, 2, 1)
            wn = self.const(lay, "w", words, "uint32_t")
            dot = self._fdot_group(npair, group) if group > 1 else self._fdot(npair, True, "")
            if gather is not None:
                L += gather
            else:
                L += [f"      int32_t xv[{2 * npair}];"]
                if 2 * npair > n:
                    L.append(f"      xv[{n}] = 0;")
                if self._contiguous(win):
                    L += [f"      const {src.ctype} *s = &{src.cname}"
                          f"[{src.at(f'oy * {win.s} * {win.w} + ox * {win.s}')} * {win.c}];",
                          f"      for (int k = 0; k < {n}; k++) xv[k] = s[k];"]
                else:
                    L += [ln.replace("xv_t *", "int32_t *") for ln in self._gather(win, src, "xv", win.c, "0", False)]
                L += [f"      uint32_t xp[{npair}];",
                      f"      for (int j = 0; j < {npair}; j++) xp[j] = (uint32_t)(uint16_t)xv[2 * j] | "
                      "((uint32_t)(uint16_t)xv[2 * j + 1] << 16);"]
            if group > 1:
                return "\n".join(L + self._out_loop(lay, o, [f"{dot}(xp, &{wn}[cg * {npair}], accs);"], win.ow, group))
            acc = [f"const int32_t acc = {dot}(xp, &{wn}[c * {npair}]);"]
        else:
            wn = self.const(lay, "w", wts)
            wt = self._wtype(wn)
            dot = self._fdot(n, False, wt)
            L += [f"      int32_t xv[{n}];"]
            if self._contiguous(win):
                L += [f"      const {src.ctype} *s = &{src.cname}[{src.at(f'oy * {win.s} * {win.w} + ox * {win.s}')}"
                      f" * {win.c}];", f"      for (int k = 0; k < {n}; k++) xv[k] = s[k];"]
            else:
                L += [ln.replace("xv_t *", "int32_t *") for ln in self._gather(win, src, "xv", win.c, "0", False)]
            acc = [f"const int32_t acc = {dot}(xv, &{wn}[c * {n}]);"]
        return "\n".join(L + self._out_loop(lay, o, acc, win.ow))

    def _wtype(self, name: str) -> str:
        for d in self.decls:
            if f" {name}[" in d:
                return d.split()[2]
        raise KeyError(name)

    @EMITTERS.emits(Pool, note="max / sum loop")
    def pool(self, lay: Pool) -> str:
        """max / sum over the valid taps of each window"""
        src = self.st(lay.inputs[0])
        o = self.st(lay.outputs[0])
        win = Window(self.cm.root[lay.inputs[0]], lay.h, lay.w, lay.c, lay.k, lay.k, lay.s, lay.pad)
        lo = -(1 << (lay.elem_w - 1)) if lay.signed else 0
        if not src.packed and not o.packed and lay.c > POOL_CHANNELS_INSIDE:  # taps outside, channels inside
            up = "if (v > r[c]) r[c] = v;" if lay.mode == "max" else "r[c] += v;"
            return "\n".join([
                f"  for (int32_t oy = row0; oy < row1; oy++) {{",
                f"    for (int32_t ox = 0; ox < {win.ow}; ox++) {{",
                f"      int32_t r[{lay.c}];",
                f"      for (int c = 0; c < {lay.c}; c++) r[c] = {lo if lay.mode == 'max' else 0};",
                f"      for (int ky = 0; ky < {lay.k}; ky++) {{",
                f"        const int32_t iy = oy * {lay.s} - {lay.pad} + ky;",
                f"        if (iy < 0 || iy >= {lay.h}) continue;",
                f"        for (int kx = 0; kx < {lay.k}; kx++) {{",
                f"          const int32_t ix = ox * {lay.s} - {lay.pad} + kx;",
                f"          if (ix < 0 || ix >= {lay.w}) continue;",
                f"          const {src.ctype} *s = &{src.cname}[{src.at(f'iy * {lay.w} + ix')} * {lay.c}];",
                f"          for (int c = 0; c < {lay.c}; c++) {{ const int32_t v = s[c]; {up} }}",
                "        }", "      }",
                f"      {o.ctype} *d = &{o.cname}[{o.at(f'oy * {win.ow} + ox')} * {lay.c}];",
                f"      for (int c = 0; c < {lay.c}; c++) d[c] = ({o.ctype})r[c];",
                "    }", "  }"])
        L = [f"  for (int32_t oy = row0; oy < row1; oy++) {{",
             f"    for (int32_t ox = 0; ox < {win.ow}; ox++) {{",
             f"      const int32_t op = oy * {win.ow} + ox;"]
        if o.packed:
            L.append(f"      for (int k = 0; k < {o.cw}; k++) {o.cname}[{o.at('op')} * {o.cw} + k] = 0u;")
        L += [f"      for (int c = 0; c < {lay.c}; c++) {{",
              f"        int32_t r = {lo if lay.mode == 'max' else 0};",
              f"        for (int ky = 0; ky < {lay.k}; ky++) {{",
              f"          const int32_t iy = oy * {lay.s} - {lay.pad} + ky;",
              f"          if (iy < 0 || iy >= {lay.h}) continue;",
              f"          for (int kx = 0; kx < {lay.k}; kx++) {{",
              f"            const int32_t ix = ox * {lay.s} - {lay.pad} + kx;",
              f"            if (ix < 0 || ix >= {lay.w}) continue;",
              f"            const int32_t v = {src.rd(f'iy * {lay.w} + ix', 'c')};",
              "            " + ("if (v > r) r = v;" if lay.mode == "max" else "r += v;"),
              "          }", "        }",
              "        " + self._store(o, "op", "c", "r"),
              "      }", "    }", "  }"]
        return "\n".join(L)

    def _store(self, o: Storage, pix: str, ch: str, val: str) -> str:
        if o.packed:
            return f"if ({val}) {o.cname}[{o.at(pix)} * {o.cw} + (({ch}) >> 5)] |= 1u << (({ch}) & 31);"
        return f"{o.cname}[{o.at(pix)} * {o.c} + ({ch})] = ({o.ctype})({val});"

    def _pix_loop(self, w: int, *outs: Storage) -> list[str]:
        """Open the loop over the image pixels ``p`` of rows [row0, row1) (``w`` pixels a row), clearing each packed
        output's words of the pixel first."""
        L = [f"  for (int32_t p = row0 * {w}; p < row1 * {w}; p++) {{"]
        for o in outs:
            if o.packed:
                L.append(f"    for (int k = 0; k < {o.cw}; k++) {o.cname}[{o.at('p')} * {o.cw} + k] = 0u;")
        return L

    @staticmethod
    def _same_elems(*st: Storage) -> bool:
        """Neither bit-packed and one C type: a channel copy is a byte copy."""
        return not any(s.packed for s in st) and len({s.ctype for s in st}) == 1

    def _pix_copy(self, w: int, runs) -> list[str]:
        """Per pixel of rows [row0, row1), each run ``(dst, dst_ch, src, src_ch, n)`` copies ``n`` channels by one
        ``memcpy`` of constant size (inlined as word loads and stores)."""
        L = [f"  for (int32_t p = row0 * {w}; p < row1 * {w}; p++) {{"]
        for d, dc, s, sc, n in runs:
            L.append(f"    memcpy(&{d.cname}[{d.at('p')} * {d.c} + {dc}], &{s.cname}[{s.at('p')} * {s.c} + {sc}], "
                     f"{n * d.elem_bytes});")
        return L + ["  }"]

    @EMITTERS.emits(Concat, note="channel copy")
    def concat(self, lay: Concat) -> str:
        """channel copy"""
        a, b, o = self.st(lay.inputs[0]), self.st(lay.inputs[1]), self.st(lay.outputs[0])
        if self._same_elems(a, b, o):
            return "\n".join(self._pix_copy(lay.w, [(o, 0, a, 0, lay.c1), (o, lay.c1, b, 0, lay.c2)]))
        L = self._pix_loop(lay.w, o)
        L += [f"    for (int c = 0; c < {lay.c1}; c++) {{ const int32_t v = {a.rd('p', 'c')}; "
              f"{self._store(o, 'p', 'c', 'v')} }}",
              f"    for (int c = 0; c < {lay.c2}; c++) {{ const int32_t v = {b.rd('p', 'c')}; "
              f"{self._store(o, 'p', f'c + {lay.c1}', 'v')} }}", "  }"]
        return "\n".join(L)

    @EMITTERS.emits(PhaseShuffle, note="phase interleave (gather)")
    def phase_shuffle(self, lay: PhaseShuffle) -> str:
        """phase interleave: out[s*m + ry, s*n + rx, co] = in[m + off[ry], n + off[rx], (ry*s + rx)*c + co]"""
        x, o = self.st(lay.inputs[0]), self.st(lay.outputs[0])
        offs = ", ".join(str(v) for v in lay.off)
        L = [f"  static const int32_t off[{lay.s}] = {{{offs}}};"]
        L += self._pix_loop(lay.ow, o)
        L += [f"    const int32_t oy = p / {lay.ow}, ox = p % {lay.ow};",
              f"    const int32_t ry = oy % {lay.s}, rx = ox % {lay.s};",
              f"    const int32_t q = (oy / {lay.s} + off[ry]) * {lay.w} + ox / {lay.s} + off[rx];",
              f"    const int32_t c0 = (ry * {lay.s} + rx) * {lay.c};",
              f"    for (int c = 0; c < {lay.c}; c++) {{ const int32_t v = {x.rd('q', 'c0 + c')}; "
              f"{self._store(o, 'p', 'c', 'v')} }}", "  }"]
        return "\n".join(L)

    @EMITTERS.emits(Split, note="channel copy")
    def split(self, lay: Split) -> str:
        """channel copy"""
        x, a, b = self.st(lay.inputs[0]), self.st(lay.outputs[0]), self.st(lay.outputs[1])
        if self._same_elems(x, a, b):
            return "\n".join(self._pix_copy(lay.w, [(a, 0, x, 0, lay.c1), (b, 0, x, lay.c1, lay.c2)]))
        L = self._pix_loop(lay.w, a, b)
        L += [f"    for (int c = 0; c < {lay.c1}; c++) {{ const int32_t v = {x.rd('p', 'c')}; "
              f"{self._store(a, 'p', 'c', 'v')} }}",
              f"    for (int c = 0; c < {lay.c2}; c++) {{ const int32_t v = {x.rd('p', f'c + {lay.c1}')}; "
              f"{self._store(b, 'p', 'c', 'v')} }}", "  }"]
        return "\n".join(L)

    # --- elementwise operations -------------------------------------------------------------------
    # Each "op" emitter returns the C statements that compute one element of the operation from the value
    # ``v`` (a C expression of its input, and ``vb`` of the second input of a JoinAdd) into locals suffixed
    # ``i``, and the name of the local holding the result. A stand-alone layer loads, runs one op and stores;
    # an Epilogue runs all its ops on one load (the arithmetic of each op, intermediate saturation included,
    # is the same text either way), and an Epilogue fused into an MVU runs them on the accumulator register.

    def elementwise(self, lay, fn) -> str:
        x, o = self.st(lay.inputs[0]), self.st(lay.outputs[0])
        if isinstance(lay, Sign) and self._sign_words(x, o, lay.c):
            return "\n".join(self._sign_pack(x, o, lay.c))
        vb = self.st(lay.inputs[1]).rd("p", "c") if len(lay.inputs) > 1 else None
        self.free = op_ranges(lay, fmt_range(self.g, lay.inputs[0], lay.c),
                              fmt_range(self.g, lay.inputs[1], lay.c) if len(lay.inputs) > 1 else None)[0]
        try:
            body, y = fn(self, lay, x.rd("p", "c"), vb, 0)
        finally:
            self.free = set()
        return "\n".join(self._elem_loop(x.w, lay.c, o, body, y))

    @staticmethod
    def _sign_words(x: Storage, o: Storage, c: int) -> int:
        """Channels a word of ``x`` when a Sign from ``x`` to the bit-packed ``o`` can run a word at a time (8- or
        16-bit elements, whole words a pixel), else 0."""
        per = {1: 4, 2: 2}.get(x.elem_bytes, 0) if o.packed and not x.packed else 0
        return per if per and c % per == 0 else 0

    def _sign_pack(self, x: Storage, o: Storage, c: int) -> list[str]:
        """Sign (``x >= 0``) into bit-packed words, a word of elements at a time: the elements' sign bits
        (``~v & 0x80808080``, two's complement, little-endian) gathered by one multiply into the top bits (the
        partial products land on distinct bits, no carries) and shifted to channel ``c``'s bit: about 5
        instructions for 4 int8 channels instead of 5 an element."""
        per = self._sign_words(x, o, c)
        mask, mul, sh = ("0x80808080u", "0x00204081u", 28) if per == 4 else ("0x80008000u", "0x00008001u", 30)
        L = [f"  for (int32_t p = row0 * {x.w}; p < row1 * {x.w}; p++) {{",
             f"    const uint8_t *s = (const uint8_t *)&{x.cname}[{x.at('p')} * {c}];",
             f"    uint32_t *d = &{o.cname}[{o.at('p')} * {o.cw}];"]

        def word(k: str, n: int) -> list[str]:
            out = ["uint32_t word = 0u, v;"]
            for gi in range(n // per):
                out.append(f"memcpy(&v, s + {k}{gi * per * x.elem_bytes}, 4); "
                           f"word |= ((~v & {mask}) * {mul}) >> {sh}{f' << {gi * per}' if gi else ''};")
            return out
        full, tail = divmod(c, 32)
        step = 32 * x.elem_bytes
        if full:
            L += [f"    for (int k = 0; k < {full}; k++) {{",
                  *[f"      {ln}" for ln in word(f"k * {step} + ", 32)], "      d[k] = word;", "    }"]
        if tail:
            L += ["    {", *[f"      {ln}" for ln in word(f"{full * step} + " if full else "", tail)],
                  f"      d[{full}] = word;", "    }"]
        return L + ["  }"]

    def _elem_loop(self, w: int, c: int, o: Storage, body: list[str], y: str) -> list[str]:
        """Per pixel of rows [row0, row1) and channel ``body`` (computing ``y``), then one store of ``y``; a
        bit-packed output is built in a register word and stored once per 32 channels."""
        L = [f"  for (int32_t p = row0 * {w}; p < row1 * {w}; p++) {{"]
        if c <= ELEM_UNROLL:  # the channels written out: constant indices and offsets, no channel loop
            if not o.packed:
                L.append(f"    {o.ctype} *op = &{o.cname}[{o.at('p')} * {c}];")
                for k in range(c):
                    L += [f"    {{ const int c = {k};", *[f"      {s}" for s in body],
                          f"      op[c] = ({o.ctype})({y}); }}"]
                return L + ["  }"]
            L.append("    uint32_t word = 0u;")
            for k in range(c):
                L += [f"    {{ const int c = {k};", *[f"      {s}" for s in body],
                      f"      word |= (uint32_t)({y} != 0) << {k}; }}"]
            return L + [f"    {o.cname}[{o.at('p')}] = word;", "  }"]
        if not o.packed:
            L += [f"    {o.ctype} *op = &{o.cname}[{o.at('p')} * {c}];",
                  f"    for (int c = 0; c < {c}; c++) {{", *[f"      {s}" for s in body],
                  f"      op[c] = ({o.ctype})({y});", "    }", "  }"]
            return L
        L += [f"    for (int k = 0; k < {o.cw}; k++) {{", "      uint32_t word = 0u;",
              f"      const int cend = k * 32 + 32 < {c} ? k * 32 + 32 : {c};",
              "      for (int c = k * 32; c < cend; c++) {", *[f"        {s}" for s in body],
              f"        word |= (uint32_t)({y} != 0) << (c & 31);", "      }",
              f"      {o.cname}[{o.at('p')} * {o.cw} + k] = word;", "    }", "  }"]
        return L

    def _ops(self, lay: Epilogue, v: str, vb, rng=None):
        """The C of an Epilogue's ops on the value ``v`` (channel ``c``): (statements, result local). The ops'
        per-channel constants are the columns of one array ``[c][k]`` (one pointer ``kc`` a channel, instead of
        a pointer an op that the compiler keeps in registers or spills). ``rng``: per channel the range of ``v``
        (default: its tensor's format), carried through the ops (``op_ranges``) so that a saturation that
        cannot clip is not emitted."""
        body = []
        self.pack = []
        if rng is None:
            rng = fmt_range(self.g, lay.inputs[0], lay.c)
        brng = fmt_range(self.g, lay.inputs[1], lay.c) if len(lay.inputs) > 1 else None
        try:
            for i, op in enumerate(lay.ops):
                e = EMITTERS.entry(op)
                if e.role != "op":
                    raise CBackendError(f"layer {lay.name!r}: op {op.name!r} ({type(op).__name__}) is not an "
                                        "elementwise operation of the C backend")
                self.free, rng = op_ranges(op, rng, brng)
                lines, v = e.fn(self, op, v, vb if isinstance(op, JoinAdd) else None, i)
                body += [f"/* {type(op).__name__} {op.name} */", *lines]
            cols = self.pack
        finally:
            self.pack = None
            self.free = set()
        if cols:
            k = np.stack(cols, axis=1)  # (c, columns)
            name = self.const(lay, "k", k.ravel())
            body = [f"const {self._wtype(name)} *kc = &{name}[c * {k.shape[1]}];"] + \
                [_unpack(ln, len(cols)) for ln in body]
        return body, v

    @EMITTERS.emits(Epilogue, note="one fused loop")
    def epilogue(self, lay: Epilogue) -> str:
        """one fused loop: one load, every op's arithmetic in locals, one store"""
        x, o = self.st(lay.inputs[0]), self.st(lay.outputs[0])
        if len(lay.ops) == 1 and isinstance(lay.ops[0], Sign) and self._sign_words(x, o, lay.c):
            return "\n".join(self._sign_pack(x, o, lay.c))
        vb = self.st(lay.inputs[1]).rd("p", "c") if len(lay.inputs) > 1 else None
        self.owner = lay.name
        try:
            body, v = self._ops(lay, x.rd("p", "c"), vb)
        finally:
            self.owner = None
        return "\n".join(self._elem_loop(x.w, lay.c, o, body, v))

    @EMITTERS.emits(Requant, role="op", note="elementwise loop")
    def requant(self, lay: Requant, v: str, vb, i: int):
        """shift, saturate (relu)"""
        wide = _wide(lay.in_w + max(0, -lay.shift) + 1)
        return [f"const {wide} x{i} = ({wide})({v});",
                f"const {wide} s{i} = {self._satr('y', _shift(f'x{i}', lay.shift, wide), lay.out_w, wide)};",
                f"const {wide} y{i} = {f'(s{i} < 0 ? 0 : s{i})' if lay.relu else f's{i}'};"], f"y{i}"

    @EMITTERS.emits(MulShift, role="op", note="elementwise loop")
    def mulshift(self, lay: MulShift, v: str, vb, i: int):
        """multiply by the channel's constant, shift, saturate"""
        wide = _wide(lay.in_w + lay.const_w + max(0, -lay.shift))
        m = self.const(lay, "m", lay.m)
        return [f"const {wide} x{i} = ({wide})({v});",
                f"const {wide} s{i} = {_shift(f'x{i} * ({wide}){m}[c]', lay.shift, wide)};",
                f"const {wide} y{i} = {self._satr('y', f's{i}', lay.out_w, wide)};"], f"y{i}"

    @EMITTERS.emits(AddConst, role="op", note="elementwise loop")
    def addconst(self, lay: AddConst, v: str, vb, i: int):
        """add the channel's constant, saturate"""
        wide = _wide(max(lay.in_w, lay.const_w) + 1)
        bn = self.const(lay, "b", lay.b)
        return [f"const {wide} x{i} = ({wide})({v});",
                f"const {wide} s{i} = x{i} + ({wide}){bn}[c];",
                f"const {wide} y{i} = {self._satr('y', f's{i}', lay.out_w, wide)};"], f"y{i}"

    @EMITTERS.emits(Prelu, role="op", note="elementwise loop")
    def prelu(self, lay: Prelu, v: str, vb, i: int):
        """x > 0 ? saturate(x) : saturate(shift(beta_c x))"""
        wide = _wide(max(lay.in_w + lay.const_w + max(0, -lay.shift), lay.in_w + 1))
        bn = self.const(lay, "beta", lay.beta)
        neg = self._satr("neg", _shift(f"x{i} * ({wide}){bn}[c]", lay.shift, wide), lay.out_w, wide)
        return [f"const {wide} x{i} = ({wide})({v});",
                f"const {wide} y{i} = x{i} > 0 ? {self._satr('pos', f'x{i}', lay.out_w, wide)} : {neg};"], f"y{i}"

    @EMITTERS.emits(JoinAdd, role="op", note="elementwise loop")
    def joinadd(self, lay: JoinAdd, v: str, vb: str, i: int):
        """two shifted inputs added, saturate"""
        if vb is None:
            raise CBackendError(f"layer {lay.name!r}: a JoinAdd needs its second input")
        wide = _wide(max(lay.in_w + lay.shift_a, lay.in_b_w + lay.shift_b) + 1)
        ea, eb = f"({wide})({v})", f"({wide})({vb})"
        return [f"const {wide} s{i} = {_shift(ea, -lay.shift_a, wide)} + {_shift(eb, -lay.shift_b, wide)};",
                f"const {wide} y{i} = {self._satr('y', f's{i}', lay.out_w, wide)};"], f"y{i}"

    @EMITTERS.emits(Sign, role="op", note="elementwise loop")
    def sign(self, lay: Sign, v: str, vb, i: int):
        """x >= 0"""
        wide = _wide(lay.in_w)
        return [f"const {wide} x{i} = ({wide})({v});", f"const int32_t y{i} = x{i} >= 0;"], f"y{i}"

    @EMITTERS.emits(Threshold, role="op", note="elementwise loop")
    def threshold(self, lay: Threshold, v: str, vb, i: int):
        """x >= T_c (x <= T_c where neg_c)"""
        wide = _wide(max(lay.in_w, lay.thr_w))
        tn = self.const(lay, "t", lay.thresholds)
        ng = np.asarray(lay.neg)
        if ng.any():
            nn = self.const(lay, "neg", ng, "int8_t")
            cond = f"({nn}[c] ? x{i} <= ({wide}){tn}[c] : x{i} >= ({wide}){tn}[c])"
        else:
            cond = f"(x{i} >= ({wide}){tn}[c])"
        return [f"const {wide} x{i} = ({wide})({v});", f"const int32_t y{i} = {cond};"], f"y{i}"

    @EMITTERS.emits(MultiThreshold, role="op", note="elementwise loop")
    def multithreshold(self, lay: MultiThreshold, v: str, vb, i: int):
        """count of the channel's thresholds passed"""
        wide = _wide(max(lay.in_w, lay.thr_w))
        nthr = lay.n
        ctype = "int64_t" if wide == "int64_t" else None
        tn = self.const(lay, "t", lay.thresholds, ctype)
        return [f"const {wide} x{i} = ({wide})({v});", f"const {self._wtype(tn)} *tc{i} = &{tn}[c * {nthr}];",
                f"int32_t y{i} = {int(lay.offset)};",
                f"for (int j = 0; j < {nthr}; j++) y{i} += x{i} >= ({wide})tc{i}[j];"], f"y{i}"


def _unpack(line: str, n: int) -> str:
    for j in range(n):
        line = line.replace(f"@K{j}@[c]", f"kc[{j}]")
    if "@K" in line:
        raise CBackendError(f"an Epilogue op indexes a per-channel constant other than by the channel: {line!r}")
    return line


def _ident(name: str) -> str:
    s = "".join(ch if ch.isalnum() else "_" for ch in name)
    return s if s and not s[0].isdigit() else f"_{s}"


# ---------------------------------------------------------------------------------------------------------
# generation


HEADER = """/* Generated by binaryhpe (compile/cbackend.py) from the hardware graph {source!r}. Do not edit.
 * Bit-exact to the hardware graph's integer reference (HwGraph.execute). Portable C99, no malloc, no float.
 * Input: {in_shape} (H, W, C) raster order, channel fastest, integers of format {in_fmt}{in_note}.
 * Output: {out_shape} (H, W, C) raster order, integers of format {out_fmt}{out_note}.
 */
#ifndef BHPE_MODEL_H
#define BHPE_MODEL_H
#include <stdint.h>

#define BHPE_IN_H {ih}
#define BHPE_IN_W {iw}
#define BHPE_IN_C {ic}
#define BHPE_IN_SIZE {isize}
#define BHPE_OUT_H {oh}
#define BHPE_OUT_W {ow}
#define BHPE_OUT_C {oc}
#define BHPE_OUT_SIZE {osize}
#define BHPE_IN_FRAC {in_frac}
#define BHPE_OUT_FRAC {out_frac}
#define BHPE_ARENA_BYTES {arena}
#define BHPE_LAYERS {nlayers}

typedef {in_t} bhpe_in_t;
typedef {out_t} bhpe_out_t;

/* One inference: reads BHPE_IN_SIZE inputs, writes BHPE_OUT_SIZE outputs. Not reentrant (one static arena). */
void bhpe_model_run(const bhpe_in_t *in, bhpe_out_t *out);

#endif
"""


POPCOUNT_C = r"""/* Popcount of the XNOR-popcount dot products, chosen per core (override with -DBHPE_POPCOUNT_IMPL=n):
 * 1 SWAR: windows of 8 words or more through a Harley-Seal carry-save adder (8-word blocks into ones / twos /
 *   fours words, each block's eights word counted into byte sums), shorter ones three words through one
 *   carry-save adder then 2-bit and 4-bit field sums; byte sums added by BHPE_BYTESUM (no core here has a scalar
 *   popcount instruction; __builtin_popcount is a call to libgcc's __popcountsi2 on Thumb-2); the default
 *   wherever the core has Thumb-2's shifted operands (M3/M4/M7/M33/M55) and on the host;
 * 2 __builtin_popcount a word;
 * 3 a 256-entry byte table (ARMv6-M, Cortex-M0/M0+/M23: no shifted operands, and a SWAR step costs more). */
#define BHPE_POPCOUNT_SWAR 1
#define BHPE_POPCOUNT_BUILTIN 2
#define BHPE_POPCOUNT_TABLE 3
#ifndef BHPE_POPCOUNT_IMPL
#if defined(__ARM_ARCH_6M__) || defined(__ARM_ARCH_8M_BASE__)
#define BHPE_POPCOUNT_IMPL BHPE_POPCOUNT_TABLE
#else
#define BHPE_POPCOUNT_IMPL BHPE_POPCOUNT_SWAR
#endif
#endif
#if BHPE_POPCOUNT_IMPL == BHPE_POPCOUNT_TABLE
static const uint8_t bhpe_pc_table[256] = {
#define BHPE_B2(n) n, n + 1, n + 1, n + 2
#define BHPE_B4(n) BHPE_B2(n), BHPE_B2(n + 1), BHPE_B2(n + 1), BHPE_B2(n + 2)
#define BHPE_B6(n) BHPE_B4(n), BHPE_B4(n + 1), BHPE_B4(n + 1), BHPE_B4(n + 2)
  BHPE_B6(0), BHPE_B6(1), BHPE_B6(1), BHPE_B6(2)};
#define BHPE_POPCOUNT32(v) ((uint32_t)bhpe_pc_table[(v) & 255u] + bhpe_pc_table[((v) >> 8) & 255u] + \
                            bhpe_pc_table[((v) >> 16) & 255u] + bhpe_pc_table[(v) >> 24])
#elif BHPE_POPCOUNT_IMPL == BHPE_POPCOUNT_BUILTIN
#define BHPE_POPCOUNT32(v) ((uint32_t)__builtin_popcount(v))
#else
/* per 4-bit field of v: its count of ones (<= 4); three words go through a carry-save adder first (ones and
 * twos words: u = a0 ^ a1, ones = u ^ a2, twos = (a0 & a1) | (u & a2)), so two counts give three words' */
static inline uint32_t bhpe_pc4(uint32_t v) {
  v -= (v >> 1) & 0x55555555u;
  return (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
}
/* nibble sums (<= 12) to byte sums (<= 24) */
static inline uint32_t bhpe_pc8(uint32_t q) { return (q & 0x0F0F0F0Fu) + ((q >> 4) & 0x0F0F0F0Fu); }
#endif
/* BHPE_BYTESUM(v, acc): acc + the sum of v's four bytes: one USADA8 (sum of absolute differences from 0) on
 * a core with the DSP extension (M4, M7, M33, M55), else two 16-bit sums and one multiply (bytes <= 255). */
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#define BHPE_BYTESUM(v, acc) ((uint32_t)__usada8((v), 0u, (acc)))
#else
#define BHPE_BYTESUM(v, acc) ((acc) + (((((v) & 0x00FF00FFu) + (((v) >> 8) & 0x00FF00FFu)) * 0x00010001u) >> 16))
#endif
/* BHPE_LDRD(p, k, lo, hi): the two words at byte offset k (a literal) of p: one LDRD on Thumb-2 (word aligned
 * is enough on ARMv7-M / ARMv8-M; gcc does not pair these loads itself), else two loads. The "m" operands
 * tell the compiler which words the instruction reads (it must not move it above their stores). */
#if defined(__GNUC__) && defined(__thumb2__)
#define BHPE_LDRD(p, k, lo, hi) __asm__("ldrd %0, %1, [%2, #" #k "]" : "=r"(lo), "=r"(hi) : \
                                        "r"(p), "m"((p)[(k) / 4]), "m"((p)[(k) / 4 + 1]))
#else
#define BHPE_LDRD(p, k, lo, hi) ((lo) = (p)[(k) / 4], (hi) = (p)[(k) / 4 + 1])
#endif
/* BHPE_SMLAD(x, w, acc): acc + lo(x) lo(w) + hi(x) hi(w), two signed 16-bit halves a word: one SMLAD
 * (the DSP extension: M4, M7, M33, M55) or the portable form; the sum modulo 2^32 is the same, and the
 * accumulator of a layer fits 32 bits (the compiler's acc_w), so either is exact. */
#define BHPE_LO(p) (((int32_t)((p) & 0xFFFFu) ^ 0x8000) - 0x8000)
#define BHPE_HI(p) (((int32_t)((p) >> 16) ^ 0x8000) - 0x8000)
/* BHPE_SXTB16(v): bytes 0 and 2 of v sign-extended into the two 16-bit halves (one SXTB16 on the DSP
 * extension, else the portable form: (b ^ 0x80) - 0x80 sign-extends a byte, modulo 2^16 a half) */
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#define BHPE_SXTB16(v) ((uint32_t)__sxtb16((int32_t)(v)))
#else
#define BHPE_SXTB16(v) ((((((v) & 0xFFu) ^ 0x80u) - 0x80u) & 0xFFFFu) | \
                        ((((((v) >> 16) & 0xFFu) ^ 0x80u) - 0x80u) << 16))
#endif
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#define BHPE_SMLAD(x, w, acc) ((int32_t)__smlad((int32_t)(x), (int32_t)(w), (acc)))
#else
#define BHPE_SMLAD(x, w, acc) ((acc) + BHPE_LO(x) * BHPE_LO(w) + BHPE_HI(x) * BHPE_HI(w))
#endif
"""


def _step_rows(cm: CModel, name: str) -> int:
    """Image rows of a step's output (the ``row1`` of an untiled call)."""
    return cm.storage[cm.step_io[name][1][0]].h


def _tiled_calls(cm: CModel) -> tuple[list[str], list[str]]:
    """The run function's calls with the tiled region unrolled band by band: before a step writes a band buffer,
    the buffer's row base ``R_<buffer>`` is set to the first row the band holds."""
    t = cm.tiling
    region = t.steps(cm)
    calls = []
    for i, name in enumerate(cm.steps):
        if t.start < i <= t.end:
            continue
        if i != t.start:
            calls.append(f"  layer_{i:03d}(0, {_step_rows(cm, name)}); BHPE_LAYER_HOOK({i});")
            continue
        for b, (band, lo) in enumerate(zip(t.bands, t.band_lo)):
            calls.append(f"  /* band {b + 1} of {len(t.bands)} of the tiled region */")
            for s in region:
                y0, y1 = band[s]
                if y0 >= y1:
                    continue
                j = cm.steps.index(s)
                sets = " ".join(f"P_{cm.storage[o].base} = {lo[o]};" for o in cm.step_io[s][1] if o in t.held)
                calls.append(f"  {sets + ' ' if sets else ''}layer_{j:03d}({y0}, {y1}); BHPE_LAYER_HOOK({j});")
    bases = [f"static int32_t P_{cm.storage[o].base};  /* first row of {o} held in its band buffer */"
             for o in t.held]
    return calls, bases


def _hoist(cm: CModel, code: str) -> str:
    """Local copies of the file-scope buffer pointers ``P_<name>`` (and tiled row bases) that ``code`` uses, as
    the names it uses: a store through an ``int8_t`` pointer may alias any object, so the compiler reloads a
    file-scope pointer after every such store; a local ``const`` copy stays in a register."""
    import re

    used = set(re.findall(r"\b(T\d+|IN|R_T\d+)\b", code))
    decl = {"IN": f"const {cm.input_storage.ctype} *const IN = P_IN;"}
    for st in cm.storage.values():
        decl.setdefault(st.cname, f"{st.ctype} *const {st.cname} = P_{st.cname};")
        if st.base:
            decl[st.base] = f"const int32_t {st.base} = P_{st.base};"
    return "".join(f"  {decl[n]}\n" for n in sorted(used) if n in decl)


def generate(g: HwGraph, tiling=None, banks=None) -> CModel:
    """Generate the C library of ``g``; ``CModel.files`` maps file names to their text. ``tiling`` (a
    :class:`memplan.Tiling`) runs its region band by band; ``banks`` (:class:`memplan.Bank`, fastest first)
    splits the arena over RAM banks (one arena when None)."""
    cm = analyze(g, tiling, banks)
    em = _Emitter(cm)
    ins = cm.input_storage
    out_root = cm.root[g.output]
    outs = cm.storage[out_root]
    ofmt = g.tensors[g.output].fmt
    out_t, _ = ctype_for(2 if outs.packed else ofmt.bits, True if outs.packed else ofmt.signed)
    body = []
    if cm.raw_input is not None:
        p = cm.storage[g.input]
        code = "\n".join(em._pix_loop(p.w, p) + [
            f"    for (int c = 0; c < {p.c}; c++) {{ const int32_t v = {cm.raw_input.rd('p', 'c')}; "
            f"{em._store(p, 'p', 'c', 'v != 0')} }}", "  }"])
        body.append(f"/* 0: pack the bipolar input (0/1 bytes) into 32 channels a word */\n"
                    f"static void layer_000(int32_t row0, int32_t row1) {{\n{_hoist(cm, code)}{code}\n}}\n")
    for lay in g.layers:
        if lay.name not in cm.step_io:
            continue
        i = cm.steps.index(lay.name)
        code = em.layer(lay)
        ins_, outs_ = cm.step_io[lay.name]
        fused = f" + Epilogue {cm.fused[lay.name].name}" if lay.name in cm.fused else ""
        body.append(f"/* {i}: {type(lay).__name__} {lay.name}{fused}: {', '.join(ins_)} -> "
                    f"{', '.join(outs_)} */\nstatic void layer_{i:03d}(int32_t row0, int32_t row1) {{\n"
                    f"{_hoist(cm, code)}{code}\n}}\n")
    if tiling is not None:
        calls, base_vars = _tiled_calls(cm)
    else:
        calls = [f"  layer_{i:03d}(0, {_step_rows(cm, n)}); BHPE_LAYER_HOOK({i});" for i, n in enumerate(cm.steps)]
        base_vars = []
    macros, inits = [], []
    for name, s in cm.storage.items():
        if name == g.input and cm.raw_input is None:
            continue
        b = cm.plan.buffers[name]
        macros.append(f"static {s.ctype} *P_{s.cname};  /* {name}: {s.held}x{s.w}x{s.c} "
                      f"{'packed' if s.packed else s.ctype}, {s.nbytes} B{f', rows from {s.base}' if s.base else ''} */")
        inits.append(f"  P_{s.cname} = ({s.ctype} *)(void *)({memplan.arena_name(b.bank)} + {b.offset});")
    arenas = []
    for bank, size in cm.plan.bank_peak.items():
        if size == 0 and bank:
            continue  # no buffer in this bank
        sec = memplan.section_attr(bank)
        arenas += [f"static uint32_t {memplan.arena_name(bank)}_words[{max(1, size // 4)}]{sec};",
                   f"#define {memplan.arena_name(bank)} ((uint8_t *)(void *){memplan.arena_name(bank)}_words)"]
    n_out = outs.h * outs.w * outs.c
    copy_out = f"  for (int32_t i = 0; i < {n_out}; i++) out[i] = (bhpe_out_t){outs.rd(f'i / {outs.c}', f'i % {outs.c}')};" \
        if outs.packed else f"  for (int32_t i = 0; i < {n_out}; i++) out[i] = (bhpe_out_t){outs.cname}[i];"
    model_c = "\n".join([
        f"/* Generated by binaryhpe (compile/cbackend.py) from {g.source or 'a hardware graph'}. Do not edit. */",
        "#include <stdint.h>",
        "#include <string.h>  /* memcpy of one word (an unaligned-safe load; compiled to one LDR) */",
        '#include "model.h"',
        '#include "weights.h"',
        "",
        "/* floor(x / 2^s) is written x >> s: this needs >> of a negative signed int to be an arithmetic shift",
        " * (implementation-defined in C99; arithmetic on gcc, clang and arm-none-eabi-gcc). Checked here: */",
        "typedef char bhpe_arithmetic_shift_check[(((int32_t)-3) >> 1) == -2 ? 1 : -1];",
        "/* the packed Sign reads four int8 (two int16) elements as one little-endian word */",
        "#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__",
        "#error \"model.c assumes a little-endian target\"",
        "#endif",
        "#define BHPE_SAT(x, lo, hi) ((x) < (lo) ? (lo) : ((x) > (hi) ? (hi) : (x)))",
        "/* BHPE_SSAT(x, n, lo, hi): x (int32_t) saturated to n signed bits = [lo, hi] (lo = -2^(n-1), hi = 2^(n-1) - 1):",
        " * ACLE's __ssat (one SSAT instruction) where the core has it, else the portable compare. */",
        "#if (defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT) || (defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32)",
        "#include <arm_acle.h>",
        "#endif",
        "#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT",
        "#define BHPE_SSAT(x, n, lo, hi) ((int32_t)__ssat((x), (n)))",
        "#else",
        "#define BHPE_SSAT(x, n, lo, hi) BHPE_SAT((x), (lo), (hi))",
        "#endif",
        "#ifndef BHPE_LAYER_HOOK",
        "#define BHPE_LAYER_HOOK(i) ((void)0)",
        "#endif",
        "#if defined(__GNUC__)",
        "#define BHPE_SECTION(s) __attribute__((section(s)))  /* a RAM bank's arena (the linker script places it) */",
        "#define BHPE_INLINE static inline __attribute__((always_inline))  /* the dot products: into the loop */",
        "#else",
        "#define BHPE_SECTION(s)",
        "#define BHPE_INLINE static inline",
        "#endif",
        POPCOUNT_C,
        f"/* Static activation arena ({cm.plan.peak} B; {cm.plan.naive} B without buffer reuse)"
        f"{', over RAM banks ' + ', '.join(f'{k} {v} B' for k, v in cm.plan.bank_peak.items()) if banks else ''}. */",
        *arenas,
        f"static const {ins.ctype} *P_IN;",
        *macros,
        *base_vars,
        "",
        *em.helpers.values(),
        *body,
        "void bhpe_model_run(const bhpe_in_t *in, bhpe_out_t *out) {",
        "  P_IN = in;",
        "  /* the buffers' places in the arena: pointers set here, not constant addresses (gcc 12.2 -O1/-O2 on",
        "   * x86-64 miscompiled fused loops storing through constant arena addresses: points-to analysis after",
        "   * ivopts' negated-base rewrite; -fno-tree-pta cured it) */",
        *inits,
        *calls,
        _hoist(cm, copy_out) + copy_out,
        "}",
        ""])
    weights_c = "\n".join([f"/* Generated by binaryhpe: weights and constants ({cm.flash_data_bytes} B, flash). */",
                           "#include <stdint.h>", '#include "weights.h"', "", *em.weights, ""])
    weights_h = "\n".join(["#ifndef BHPE_WEIGHTS_H", "#define BHPE_WEIGHTS_H", "#include <stdint.h>",
                           *em.decls, "#endif", ""])
    ih, iw, ic = g.tensors[g.input].shape
    oh, ow, oc = g.tensors[g.output].shape
    model_h = HEADER.format(
        source=g.source, in_shape=f"{ih}x{iw}x{ic}", in_fmt=g.tensors[g.input].fmt,
        in_note=" (bipolar: 1 = +1, 0 = -1, one byte each)" if cm.raw_input is not None else "",
        out_shape=f"{oh}x{ow}x{oc}", out_fmt=ofmt, out_note=" (bipolar: 1 = +1, 0 = -1)" if outs.packed else "",
        ih=ih, iw=iw, ic=ic, isize=ih * iw * ic, oh=oh, ow=ow, oc=oc, osize=oh * ow * oc,
        in_frac=0 if cm.raw_input is not None else g.tensors[g.input].fmt.frac, out_frac=0 if outs.packed else ofmt.frac, arena=cm.plan.peak,
        nlayers=len(cm.steps), in_t=ins.ctype, out_t=out_t)
    cm.files = {"model.h": model_h, "model.c": model_c, "weights.c": weights_c, "weights.h": weights_h}
    return cm


def stack_bytes(cm: CModel) -> int:
    """Stack estimate: the largest MVU's gathered window (words, or inputs and their 16-bit pairs) and padding
    list, plus a frame of locals."""
    most = 0
    by_name = {lay.name: lay for lay in cm.g.layers}
    for name in cm.steps:
        lay = by_name.get(name)
        if not isinstance(lay, (XnorMvu, FxpMvu)):
            continue
        t = lay.inputs[0]
        win = cm.windows.get(t)
        if win is None:
            continue  # a whole-frame window is read in place
        taps = win.kh * win.kw
        if isinstance(lay, XnorMvu):
            most = max(most, 4 * taps * -(-win.c // 32) + 4 * taps)
        else:
            most = max(most, 4 * taps * win.c + 2 * taps * win.c + 8)
    return most + 96


def write(cm: CModel, out_dir) -> pathlib.Path:
    d = pathlib.Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    for name, text in cm.files.items():
        (d / name).write_text(text)
    return d


def layer_memory(cm: CModel) -> list[dict]:
    """Per layer: bytes of constants (flash) and bytes of the buffers it writes (RAM)."""
    return [{"layer": n, "flash_bytes": cm.layer_flash.get(n, 0), "ram_bytes": cm.layer_ram.get(n, 0)}
            for n in cm.steps]


def largest(cm: CModel) -> dict:
    """The largest activation buffer and the largest weight set (for the does-not-fit error)."""
    bt = max(cm.plan.buffers.values(), key=lambda b: b.size, default=None)
    ws = max(cm.weight_sets.items(), key=lambda kv: kv[1], default=(None, 0))
    return {"tensor": bt.name if bt else None, "tensor_bytes": bt.size if bt else 0,
            "weights": ws[0], "weight_bytes": ws[1]}


__all__ = ["CBackendError", "CModel", "analyze", "generate", "write", "layer_memory", "largest", "ctype_for",
           "fusable_epilogues", "stack_bytes"]
