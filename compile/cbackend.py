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

    @property
    def cw(self) -> int:
        return -(-self.c // 32)

    @property
    def nbytes(self) -> int:
        return self.h * self.w * (self.cw * 4 if self.packed else self.c * self.elem_bytes)

    def rd(self, pix: str, ch: str) -> str:
        """C expression (int32_t) of element ``ch`` of pixel ``pix``."""
        if self.packed:
            return f"((int32_t)(({self.cname}[({pix}) * {self.cw} + (({ch}) >> 5)] >> (({ch}) & 31)) & 1u))"
        return f"((int32_t){self.cname}[({pix}) * {self.c} + ({ch})])"


def _storage(info: TensorInfo, cname: str) -> Storage:
    h, w, c = info.shape
    if info.fmt.bipolar:
        return Storage(info.name, cname, h, w, c, True, "uint32_t", 4, False)
    t, n = ctype_for(info.fmt.bits, info.fmt.signed)
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


def analyze(g: HwGraph) -> CModel:
    """Aliases, windows, storage and the memory plan."""
    cm = CModel(g)
    cm.root[g.input] = g.input
    uses: dict[str, list[int]] = {}
    step = 0
    defs: dict[str, int] = {}
    if g.tensors[g.input].fmt.bipolar:  # 0/1 bytes from the caller, packed into the arena by step 0
        defs[g.input] = 0
        cm.steps.append(PACK_INPUT)
        step = 1
    for lay in g.layers:
        role = EMITTERS.entry(lay).role  # raises, naming the layer, for a kind C neither maps nor refuses
        if role == "alias":
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
        for t in lay.inputs:
            if t not in cm.root:
                raise CBackendError(f"layer {lay.name!r}: input {t!r} is not produced before it")
            uses.setdefault(cm.root[t], []).append(step)
        for o in lay.outputs:
            cm.root[o] = o
            defs[o] = step
        cm.steps.append(lay.name)
        step += 1
    nsteps = step
    out_root = cm.root[g.output]
    uses.setdefault(out_root, []).append(nsteps)  # copied out after the last layer
    bufs = []
    for i, (name, st) in enumerate(defs.items()):
        s = _storage(g.tensors[name], f"T{i}")
        cm.storage[name] = s
        end = max(uses.get(name, [st]))
        bufs.append(memplan.Buffer(name, s.nbytes, st, max(end, st)))
    if g.input not in cm.storage:
        cm.storage[g.input] = _storage(g.tensors[g.input], "IN")
    else:
        h, w, c = g.tensors[g.input].shape
        cm.raw_input = Storage(g.input, "IN", h, w, c, False, "int8_t", 1)
    cm.plan = memplan.plan(bufs, nsteps + 1)
    for lay in g.layers:
        if lay.name in cm.steps:
            cm.layer_ram[lay.name] = sum(cm.storage[o].nbytes for o in lay.outputs)
    if PACK_INPUT in cm.steps:
        cm.layer_ram[PACK_INPUT] = cm.storage[g.input].nbytes
    ins, outs = cm.input_storage, cm.storage[out_root]
    out_t, out_b = ctype_for(g.tensors[g.output].fmt.bits if not outs.packed else 2)
    cm.io_bytes = ins.nbytes + outs.h * outs.w * outs.c * out_b
    return cm


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
    v = np.asarray(values, dtype=np.int64)
    amax = int(max(abs(int(v.min())), abs(int(v.max())))) if v.size else 0
    return ctype_for(max(min_bits, amax.bit_length() + 1))


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


class _Emitter:
    def __init__(self, cm: CModel):
        self.cm = cm
        self.g = cm.g
        self.weights: list[str] = []  # definitions for weights.c
        self.decls: list[str] = []  # extern declarations
        self.funcs: list[str] = []
        self.owner: str | None = None  # the layer whose flash a constant counts to (an Epilogue's, for its ops)

    def const(self, lay, suffix: str, values, ctype: str | None = None) -> str:
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

    def _out_store(self, o: Storage, idx: str, val: str) -> str:
        return f"{o.cname}[{idx}] = ({o.ctype})({val});"

    def _conv_head(self, win: Window) -> list[str]:
        return [
            f"  for (int oy = 0; oy < {win.oh}; oy++) {{",
            f"    for (int ox = 0; ox < {win.ow}; ox++) {{",
            f"      int32_t toff[{win.kh * win.kw}], woff[{win.kh * win.kw}], nt = 0;",
            f"      for (int ky = 0; ky < {win.kh}; ky++) {{",
            f"        const int iy = oy * {win.s} - {win.pad} + ky;",
            f"        if (iy < 0 || iy >= {win.h}) continue;",
            f"        for (int kx = 0; kx < {win.kw}; kx++) {{",
            f"          const int ix = ox * {win.s} - {win.pad} + kx;",
            f"          if (ix < 0 || ix >= {win.w}) continue;",
        ]

    @EMITTERS.emits(XnorMvu, FcXnorMvu, note="XOR + popcount loop")
    def xnor(self, lay: XnorMvu) -> str:
        """packed words, XOR + popcount over the valid taps"""
        win = self._window(lay)
        src = self.cm.storage[win.src]
        if not src.packed:
            raise CBackendError(f"layer {lay.name!r}: a binary MVU needs a bipolar input")
        o = self.st(lay.outputs[0])
        cw, taps = src.cw, win.kh * win.kw
        w = (np.asarray(lay.weights) > 0).astype(np.uint64).reshape(lay.cout, taps, win.c)
        packed = np.zeros((lay.cout, taps, cw), dtype=np.uint64)
        for c in range(win.c):
            packed[:, :, c // 32] |= w[:, :, c] << np.uint64(c % 32)
        wn = self.const(lay, "w", packed, "uint32_t")
        L = self._conv_head(win)
        L += [f"          toff[nt] = (iy * {win.w} + ix) * {cw}; woff[nt] = (ky * {win.kw} + kx) * {cw}; nt++;",
              "        }", "      }",
              f"      const int32_t base = {win.c} * nt;",
              f"      {o.ctype} *op = &{o.cname}[(oy * {win.ow} + ox) * {lay.cout}];",
              f"      for (int co = 0; co < {lay.cout}; co++) {{",
              f"        const uint32_t *wr = &{wn}[co * {taps * cw}];",
              "        int32_t d = 0;",
              "        for (int t = 0; t < nt; t++) {",
              f"          const uint32_t *a = &{src.cname}[toff[t]], *b = &wr[woff[t]];",
              f"          for (int k = 0; k < {cw}; k++) d += __builtin_popcount(a[k] ^ b[k]);",
              "        }",
              f"        op[co] = ({o.ctype})(base - 2 * d);",
              "      }", "    }", "  }"]
        return "\n".join(L)

    @EMITTERS.emits(FxpMvu, FcFxpMvu, note="multiply-accumulate loop")
    def fxp(self, lay: FxpMvu) -> str:
        """int32 multiply-accumulate over the valid taps"""
        win = self._window(lay)
        src = self.cm.storage[win.src]
        if src.packed:
            raise CBackendError(f"layer {lay.name!r}: a fixed-point MVU needs a fixed-point input")
        o = self.st(lay.outputs[0])
        if lay.acc_w > 32:
            raise CBackendError(f"layer {lay.name!r}: accumulator of {lay.acc_w} bits > 32")
        taps = win.kh * win.kw
        wn = self.const(lay, "w", np.asarray(lay.weights).reshape(lay.cout, taps * win.c))
        L = self._conv_head(win)
        L += [f"          toff[nt] = (iy * {win.w} + ix) * {win.c}; woff[nt] = (ky * {win.kw} + kx) * {win.c}; nt++;",
              "        }", "      }",
              f"      {o.ctype} *op = &{o.cname}[(oy * {win.ow} + ox) * {lay.cout}];",
              f"      for (int co = 0; co < {lay.cout}; co++) {{",
              f"        const {self._wtype(wn)} *wr = &{wn}[co * {taps * win.c}];",
              "        int32_t acc = 0;",
              "        for (int t = 0; t < nt; t++) {",
              f"          const {src.ctype} *a = &{src.cname}[toff[t]];",
              f"          const {self._wtype(wn)} *b = &wr[woff[t]];",
              f"          for (int k = 0; k < {win.c}; k++) acc += (int32_t)a[k] * (int32_t)b[k];",
              "        }",
              f"        op[co] = ({o.ctype})acc;",
              "      }", "    }", "  }"]
        return "\n".join(L)

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
        L = [f"  for (int oy = 0; oy < {win.oh}; oy++) {{",
             f"    for (int ox = 0; ox < {win.ow}; ox++) {{",
             f"      const int32_t op = oy * {win.ow} + ox;"]
        if o.packed:
            L.append(f"      for (int k = 0; k < {o.cw}; k++) {o.cname}[op * {o.cw} + k] = 0u;")
        L += [f"      for (int c = 0; c < {lay.c}; c++) {{",
              f"        int32_t r = {lo if lay.mode == 'max' else 0};",
              f"        for (int ky = 0; ky < {lay.k}; ky++) {{",
              f"          const int iy = oy * {lay.s} - {lay.pad} + ky;",
              f"          if (iy < 0 || iy >= {lay.h}) continue;",
              f"          for (int kx = 0; kx < {lay.k}; kx++) {{",
              f"            const int ix = ox * {lay.s} - {lay.pad} + kx;",
              f"            if (ix < 0 || ix >= {lay.w}) continue;",
              f"            const int32_t v = {src.rd(f'iy * {lay.w} + ix', 'c')};",
              "            " + ("if (v > r) r = v;" if lay.mode == "max" else "r += v;"),
              "          }", "        }",
              "        " + self._store(o, "op", "c", "r"),
              "      }", "    }", "  }"]
        return "\n".join(L)

    def _store(self, o: Storage, pix: str, ch: str, val: str) -> str:
        if o.packed:
            return f"if ({val}) {o.cname}[({pix}) * {o.cw} + (({ch}) >> 5)] |= 1u << (({ch}) & 31);"
        return f"{o.cname}[({pix}) * {o.c} + ({ch})] = ({o.ctype})({val});"

    def _pix_loop(self, pixels: int, *outs: Storage) -> list[str]:
        """Open the loop over pixels ``p``, clearing each packed output's words of the pixel first."""
        L = [f"  for (int32_t p = 0; p < {pixels}; p++) {{"]
        for o in outs:
            if o.packed:
                L.append(f"    for (int k = 0; k < {o.cw}; k++) {o.cname}[p * {o.cw} + k] = 0u;")
        return L

    @EMITTERS.emits(Concat, note="channel copy")
    def concat(self, lay: Concat) -> str:
        """channel copy"""
        a, b, o = self.st(lay.inputs[0]), self.st(lay.inputs[1]), self.st(lay.outputs[0])
        L = self._pix_loop(lay.h * lay.w, o)
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
        L += self._pix_loop(lay.oh * lay.ow, o)
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
        L = self._pix_loop(lay.h * lay.w, a, b)
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
    # is the same text either way).

    def elementwise(self, lay, fn) -> str:
        x, o = self.st(lay.inputs[0]), self.st(lay.outputs[0])
        vb = self.st(lay.inputs[1]).rd("p", "c") if len(lay.inputs) > 1 else None
        body, y = fn(self, lay, x.rd("p", "c"), vb, 0)
        return "\n".join(self._elem_loop(x.h * x.w, lay.c, o, body, y))

    def _elem_loop(self, pixels: int, c: int, o: Storage, body: list[str], y: str) -> list[str]:
        """Per pixel and channel ``body`` (computing ``y``), then one store of ``y``; a bit-packed output is
        built in a register word and stored once per 32 channels."""
        L = [f"  for (int32_t p = 0; p < {pixels}; p++) {{"]
        if not o.packed:
            L += [f"    for (int c = 0; c < {c}; c++) {{", *[f"      {s}" for s in body],
                  f"      {self._store(o, 'p', 'c', y)}", "    }", "  }"]
            return L
        L += [f"    for (int k = 0; k < {o.cw}; k++) {{", "      uint32_t word = 0u;",
              f"      const int cend = k * 32 + 32 < {c} ? k * 32 + 32 : {c};",
              "      for (int c = k * 32; c < cend; c++) {", *[f"        {s}" for s in body],
              f"        word |= (uint32_t)({y} != 0) << (c & 31);", "      }",
              f"      {o.cname}[p * {o.cw} + k] = word;", "    }", "  }"]
        return L

    @EMITTERS.emits(Epilogue, note="one fused loop")
    def epilogue(self, lay: Epilogue) -> str:
        """one fused loop: one load, every op's arithmetic in locals, one store"""
        x, o = self.st(lay.inputs[0]), self.st(lay.outputs[0])
        vb = self.st(lay.inputs[1]).rd("p", "c") if len(lay.inputs) > 1 else None
        body, v = [], x.rd("p", "c")
        self.owner = lay.name
        try:
            for i, op in enumerate(lay.ops):
                e = EMITTERS.entry(op)
                if e.role != "op":
                    raise CBackendError(f"layer {lay.name!r}: op {op.name!r} ({type(op).__name__}) is not an "
                                        "elementwise operation of the C backend")
                lines, v = e.fn(self, op, v, vb if isinstance(op, JoinAdd) else None, i)
                body += [f"/* {type(op).__name__} {op.name} */", *lines]
        finally:
            self.owner = None
        return "\n".join(self._elem_loop(x.h * x.w, lay.c, o, body, v))

    @EMITTERS.emits(Requant, role="op", note="elementwise loop")
    def requant(self, lay: Requant, v: str, vb, i: int):
        """shift, saturate (relu)"""
        wide = _wide(lay.in_w + max(0, -lay.shift) + 1)
        return [f"const {wide} x{i} = ({wide})({v});",
                f"const {wide} s{i} = {_sat(_shift(f'x{i}', lay.shift, wide), lay.out_w, wide)};",
                f"const {wide} y{i} = {f'(s{i} < 0 ? 0 : s{i})' if lay.relu else f's{i}'};"], f"y{i}"

    @EMITTERS.emits(MulShift, role="op", note="elementwise loop")
    def mulshift(self, lay: MulShift, v: str, vb, i: int):
        """multiply by the channel's constant, shift, saturate"""
        wide = _wide(lay.in_w + lay.const_w + max(0, -lay.shift))
        m = self.const(lay, "m", lay.m)
        return [f"const {wide} x{i} = ({wide})({v});",
                f"const {wide} s{i} = {_shift(f'x{i} * ({wide}){m}[c]', lay.shift, wide)};",
                f"const {wide} y{i} = {_sat(f's{i}', lay.out_w, wide)};"], f"y{i}"

    @EMITTERS.emits(AddConst, role="op", note="elementwise loop")
    def addconst(self, lay: AddConst, v: str, vb, i: int):
        """add the channel's constant, saturate"""
        wide = _wide(max(lay.in_w, lay.const_w) + 1)
        bn = self.const(lay, "b", lay.b)
        return [f"const {wide} x{i} = ({wide})({v});",
                f"const {wide} s{i} = x{i} + ({wide}){bn}[c];",
                f"const {wide} y{i} = {_sat(f's{i}', lay.out_w, wide)};"], f"y{i}"

    @EMITTERS.emits(Prelu, role="op", note="elementwise loop")
    def prelu(self, lay: Prelu, v: str, vb, i: int):
        """x > 0 ? saturate(x) : saturate(shift(beta_c x))"""
        wide = _wide(max(lay.in_w + lay.const_w + max(0, -lay.shift), lay.in_w + 1))
        bn = self.const(lay, "beta", lay.beta)
        neg = _sat(_shift(f"x{i} * ({wide}){bn}[c]", lay.shift, wide), lay.out_w, wide)
        return [f"const {wide} x{i} = ({wide})({v});",
                f"const {wide} y{i} = x{i} > 0 ? {_sat(f'x{i}', lay.out_w, wide)} : {neg};"], f"y{i}"

    @EMITTERS.emits(JoinAdd, role="op", note="elementwise loop")
    def joinadd(self, lay: JoinAdd, v: str, vb: str, i: int):
        """two shifted inputs added, saturate"""
        if vb is None:
            raise CBackendError(f"layer {lay.name!r}: a JoinAdd needs its second input")
        wide = _wide(max(lay.in_w + lay.shift_a, lay.in_b_w + lay.shift_b) + 1)
        ea, eb = f"({wide})({v})", f"({wide})({vb})"
        return [f"const {wide} s{i} = {_shift(ea, -lay.shift_a, wide)} + {_shift(eb, -lay.shift_b, wide)};",
                f"const {wide} y{i} = {_sat(f's{i}', lay.out_w, wide)};"], f"y{i}"

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
        nthr = (1 << lay.out_w) - 1
        ctype = "int64_t" if wide == "int64_t" else None
        tn = self.const(lay, "t", lay.thresholds, ctype)
        return [f"const {wide} x{i} = ({wide})({v});", f"const {self._wtype(tn)} *tc{i} = &{tn}[c * {nthr}];",
                f"int32_t y{i} = 0;", f"for (int j = 0; j < {nthr}; j++) y{i} += x{i} >= ({wide})tc{i}[j];"], f"y{i}"


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


def generate(g: HwGraph) -> CModel:
    """Generate the C library of ``g``; ``CModel.files`` maps file names to their text."""
    cm = analyze(g)
    em = _Emitter(cm)
    ins = cm.input_storage
    out_root = cm.root[g.output]
    outs = cm.storage[out_root]
    ofmt = g.tensors[g.output].fmt
    out_t, _ = ctype_for(2 if outs.packed else ofmt.bits, True if outs.packed else ofmt.signed)
    body = []
    calls = []
    if cm.raw_input is not None:
        p = cm.storage[g.input]
        code = "\n".join(em._pix_loop(p.h * p.w, p) + [
            f"    for (int c = 0; c < {p.c}; c++) {{ const int32_t v = {cm.raw_input.rd('p', 'c')}; "
            f"{em._store(p, 'p', 'c', 'v != 0')} }}", "  }"])
        body.append(f"/* 0: pack the bipolar input (0/1 bytes) into 32 channels a word */\n"
                    f"static void layer_000(void) {{\n{code}\n}}\n")
        calls.append("  layer_000(); BHPE_LAYER_HOOK(0);")
    for lay in g.layers:
        if lay.name not in cm.steps:
            continue
        i = cm.steps.index(lay.name)
        fn = f"layer_{i:03d}"
        code = em.layer(lay)
        body.append(f"/* {i}: {type(lay).__name__} {lay.name}: {', '.join(lay.inputs)} -> "
                    f"{', '.join(lay.outputs)} */\nstatic void {fn}(void) {{\n{code}\n}}\n")
        calls.append(f"  {fn}(); BHPE_LAYER_HOOK({i});")
    macros = []
    for name, s in cm.storage.items():
        if name == g.input and cm.raw_input is None:
            continue
        off = cm.plan.buffers[name].offset
        macros.append(f"#define {s.cname} ((({s.ctype} *)(void *)(bhpe_arena + {off})))  /* {name}: "
                      f"{s.h}x{s.w}x{s.c} {'packed' if s.packed else s.ctype}, {s.nbytes} B */")
    n_out = outs.h * outs.w * outs.c
    copy_out = f"  for (int32_t i = 0; i < {n_out}; i++) out[i] = (bhpe_out_t){outs.rd(f'i / {outs.c}', f'i % {outs.c}')};" \
        if outs.packed else f"  for (int32_t i = 0; i < {n_out}; i++) out[i] = (bhpe_out_t){outs.cname}[i];"
    model_c = "\n".join([
        f"/* Generated by binaryhpe (compile/cbackend.py) from {g.source or 'a hardware graph'}. Do not edit. */",
        "#include <stdint.h>",
        '#include "model.h"',
        '#include "weights.h"',
        "",
        "/* floor(x / 2^s) is written x >> s: this needs >> of a negative signed int to be an arithmetic shift",
        " * (implementation-defined in C99; arithmetic on gcc, clang and arm-none-eabi-gcc). Checked here: */",
        "typedef char bhpe_arithmetic_shift_check[(((int32_t)-3) >> 1) == -2 ? 1 : -1];",
        "#define BHPE_SAT(x, lo, hi) ((x) < (lo) ? (lo) : ((x) > (hi) ? (hi) : (x)))",
        "/* BHPE_SSAT(x, n, lo, hi): x (int32_t) saturated to n signed bits = [lo, hi] (lo = -2^(n-1), hi = 2^(n-1) - 1):",
        " * ACLE's __ssat (one SSAT instruction) where the core has it, else the portable compare. */",
        "#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT",
        "#include <arm_acle.h>",
        "#define BHPE_SSAT(x, n, lo, hi) ((int32_t)__ssat((x), (n)))",
        "#else",
        "#define BHPE_SSAT(x, n, lo, hi) BHPE_SAT((x), (lo), (hi))",
        "#endif",
        "#ifndef BHPE_LAYER_HOOK",
        "#define BHPE_LAYER_HOOK(i) ((void)0)",
        "#endif",
        "",
        f"/* One static activation arena ({cm.plan.peak} B; {cm.plan.naive} B without buffer reuse). */",
        f"static uint32_t bhpe_arena_words[{max(1, cm.plan.peak // 4)}];",
        "#define bhpe_arena ((uint8_t *)(void *)bhpe_arena_words)",
        f"static const {ins.ctype} *IN;",
        *macros,
        "",
        *body,
        "void bhpe_model_run(const bhpe_in_t *in, bhpe_out_t *out) {",
        "  IN = in;",
        *calls,
        copy_out,
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
    # stack: the per-pixel tap offset arrays of the largest window plus a frame of locals
    taps = max([w.kh * w.kw for w in cm.windows.values()] + [1])
    cm.stack_bytes = 8 * taps + 64
    return cm


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


__all__ = ["CBackendError", "CModel", "analyze", "generate", "write", "layer_memory", "largest", "ctype_for"]
