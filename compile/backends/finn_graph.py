"""Our hardware graph as FINN HW layers: the FINN backend's lowering for residual networks.

FINN's own flow (streamlining, in ``finn_job.lower``) absorbs scales and biases into thresholds. That works for
the BNN-PYNQ nets. It cannot absorb the full-precision residual datapath of a BiDRN: RPReLU, residual adds, and
the 16-bit X format, whose requantizers would become 65,535 thresholds a channel. Here each layer of our
hardware graph becomes FINN HW layers (the abstract ``finn.custom_op.fpgadataflow`` ops that FINN's
``SpecializeLayers`` turns into HLS or RTL), with one exactness argument a kind. The mapping lives in
``_Builder``, one method a kind, registered in ``EMITTERS`` (``@EMITTERS.emits(Kind)``). An ``Epilogue`` is
mapped through its ops (``Epilogue.unfuse``), each as below.

Tensors hold our integers (``Fmt`` mantissas), channels last, ``(1, H, W, C)``. FINN's python execution keeps
them in float32, so every node's arithmetic is checked to stay below 2^24 (``_f32_exact``). Binary
activations travel as INT2 values -1/+1, not as BIPOLAR bits: FINN's ``FMPadding`` then pads with a real
0, as zero padding must (docs/backends.md, rewrite 2). So a binary convolution is an INT2 x bipolar MVAU.

==============  ==========================================================================================
our kind        FINN HW layers, and why they compute the contract's integers
==============  ==========================================================================================
SlidingWindow   ``FMPadding`` (zeros, when ``pad``) + ``ConvolutionInputGenerator``: the same (ky, kx, c)
                window order as ours
XnorMvu         ``MVAU`` (INT2 x BIPOLAR, ``noActivation``): sum of +-1 products over the real taps = p
FxpMvu          ``MVAU`` (INT x INT, ``noActivation``): the exact accumulator
Sign            ``Thresholding``: thresholds (0, 0), ``ActVal`` -1: x >= 0 -> +1, else -1 (INT2)
Threshold       ``Thresholding``: (T, T), ``ActVal`` -1; FINN's thresholds only rise, so channels with
                ``x <= T`` are negated first (``Requant``, scale -1 on them): ``-x >= -T``
MultiThreshold  ``Thresholding`` with our thresholds, ``ActVal`` = offset: the same count of thresholds passed
Requant         ``Requant``, scale 2^-shift, bias -(1/2 - 2^-(shift+1)): FINN rounds x*scale + bias to the
                nearest integer (python: floor(v + 1/2); its HLS variant: ``lrint``, ties to even; its RTL:
                a rounding constant). x*scale is a multiple of 2^-shift, so v is never a tie and its
                nearest integer is floor(x*scale) under every tie rule. ``relu`` clips to UINT(out_w - 1)
MulShift        ``Requant``, scale m_c * 2^-shift per channel, the same bias
AddConst        ``Requant``, scale 1, bias b_c (the sum is an integer: rounding does nothing)
Prelu           ``DuplicateStreams`` -> ``Requant`` (beta_c * 2^-shift, the negative side) and
                ``ElementwiseMax`` with x: max(x, floor(beta x)) is x for x > 0 and floor(beta x) for
                x <= 0 exactly when every beta_c * 2^-shift <= 1 (RPReLU slopes are); then a saturating
                ``Requant`` where x is wider than the output. With a slope above 1:
                relu(x) + floor(beta * (x - relu(x))), relu being a ``Requant`` that clips to UINT, with
                ``ElementwiseSub`` / ``ElementwiseAdd`` (one term is always 0)
JoinAdd         ``Requant`` (scale 2^shift) on a shifted input, ``ElementwiseAdd``, a saturating
                ``Requant``
Concat / Split  ``StreamingConcat`` / ``StreamingSplit`` (channel order, no arithmetic)
Fork            ``DuplicateStreams``
Pool            ``ConvolutionInputGenerator`` (depthwise) + ``Pool`` (``AccPool`` for sum, ``MaxPool``);
                FMPadding's 0 must never win a max, so a padded max pool of signed values pools x - min
                (>= 0, a ``Requant`` adding -min) and adds min back
FcXnorMvu,      ``MVAU`` over one pixel: the flattened (H, W, C) frame is the stream's raster order
FcFxpMvu
Fifo, Dwc       nothing: FINN's build inserts its own (``InsertFIFO``, ``InsertDWC``)
Epilogue        its operations, each as above (``finn_backend.build`` maps ``backends.unfused(g)``, so every
                intermediate tensor of the fused chain is compared too)
==============  ==========================================================================================

Folding is ours: every FINN layer gets the PE/SIMD of the layer of ours it stands for.
"""

from __future__ import annotations

import re

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.backends.emitters import Registry
from binaryhpe.compile.graph import Fmt, HwGraph
from binaryhpe.compile.kinds.elementwise import (AddConst, JoinAdd, MulShift, MultiThreshold, Prelu, Requant,
                                                 Sign, Threshold)
from binaryhpe.compile.kinds.epilogue import Epilogue
from binaryhpe.compile.kinds.mvu import FcFxpMvu, FcXnorMvu, FxpMvu, XnorMvu
from binaryhpe.compile.kinds.plumbing import Concat, Dwc, Fifo, Fork, PhaseShuffle, Split
from binaryhpe.compile.kinds.pool import Pool
from binaryhpe.compile.kinds.swg import SlidingWindow

DOMAIN = "finn.custom_op.fpgadataflow"
#: kind -> the _Builder method that writes its FINN HW layers (registered next to each method)
EMITTERS = Registry("finn")
EMITTERS.refuse(PhaseShuffle, "not implemented: a transposed convolution's phase interleave has no layer here "
                             "(the layer-sequential engine and the C backend take it)")
#: float32 holds every integer below 2^24 exactly
F32_BITS = 24


def _int_dt(bits: int, signed: bool = True) -> str:
    return f"{'INT' if signed else 'UINT'}{bits}"


def _dt_range(dt: str) -> tuple[int, int]:
    m = re.fullmatch(r"(U?)INT(\d+)", dt)
    if not m:
        raise ValueError(dt)
    b = int(m.group(2))
    return (0, (1 << b) - 1) if m.group(1) else (-(1 << (b - 1)), (1 << (b - 1)) - 1)


def _max_abs(dt: str) -> int:
    lo, hi = _dt_range(dt)
    return max(-lo, hi)


def _fit_dt(lo: int, hi: int) -> str:
    """The narrowest INT/UINT datatype holding [lo, hi]."""
    if lo >= 0:
        return _int_dt(max(1, int(hi).bit_length()), signed=False)
    b = max(int(-lo - 1).bit_length(), int(hi).bit_length()) + 1
    return _int_dt(b)


class _Builder:
    """Walks our graph in order and emits FINN nodes. ``t`` maps our tensor names to FINN tensor names,
    ``dtypes`` a FINN tensor to its FINN datatype name, ``layers`` each FINN node to our layer and folding."""

    def __init__(self, g: HwGraph):
        self.g = g
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}
        self.shapes: dict[str, list[int]] = {}
        self.dtypes: dict[str, str] = {}
        self.t: dict[str, str] = {}  # our tensor -> FINN tensor
        self.layers: list[dict] = []  # FINN node -> our layer, folding
        self._cur = None

    # --- helpers -----------------------------------------------------------------------------------
    def err(self, msg: str) -> BinaryHPEError:
        lay = self._cur
        return BinaryHPEError(f"finn cannot take layer {lay.name!r} ({type(lay).__name__}): {msg}")

    def tensor(self, base: str, shape, dt: str) -> str:
        name = f"{base}_{len(self.shapes)}"
        self.shapes[name] = [int(s) for s in shape]
        self.dtypes[name] = dt
        return name

    def src(self, ours: str) -> str:
        return self.t[ours]

    def node(self, op: str, inputs: list[str], outputs: list[str], fold: dict, **attrs) -> None:
        from onnx import helper

        name = f"{op}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=DOMAIN, backend="fpgadataflow",
                                           **fold, **attrs))
        self.layers.append({"finn_node": name, "op_type": op, "ours": [self._cur.name], "folding": fold})

    def init(self, base: str, value: np.ndarray) -> str:
        name = f"{base}_{len(self.inits)}"
        self.inits[name] = np.asarray(value, dtype=np.float32)
        return name

    def hw(self, t: str) -> tuple[int, int, int]:
        return tuple(self.shapes[t][1:])

    def _f32_exact(self, bound: int, what: str) -> None:
        if bound >= 1 << F32_BITS:
            raise self.err(f"{what} reaches {bound} >= 2^{F32_BITS}, which FINN's float32 python execution "
                           "cannot hold exactly")

    def requant(self, x: str, out_dt: str, lanes: int, m=1, shift: int = 0, b=0) -> str:
        """``clip(floor(x * m_c * 2^-shift) + b_c)`` to ``out_dt`` as one FINN Requant (see the module doc)."""
        h, w, c = self.hw(x)
        m = np.broadcast_to(np.asarray(m, dtype=np.int64), (c,))
        b = np.broadcast_to(np.asarray(b, dtype=np.int64), (c,))
        u = shift + 1 if shift > 0 else 1  # every value below is a multiple of 2^-u
        self._f32_exact(_max_abs(self.dtypes[x]) * int(np.abs(m).max()) * (1 << (u - shift))
                        + int(np.abs(b).max()) * (1 << u) + (1 << u), "a requantizer's x*scale + bias + 1/2")
        scale = m.astype(np.float64) * 2.0 ** (-shift)
        bias = b.astype(np.float64) - ((0.5 - 2.0 ** (-shift - 1)) if shift > 0 else 0.0)
        if not (np.array_equal(scale.astype(np.float32), scale) and np.array_equal(bias.astype(np.float32), bias)):
            raise self.err("a requantizer constant is not exact in float32")
        y = self.tensor("requant", [1, h, w, c], out_dt)
        self.node("Requant", [x, self.init("scale", scale), self.init("bias", bias)], [y], {"PE": lanes},
                  NumChannels=c, inputDataType=self.dtypes[x], outputDataType=out_dt, numInputVectors=[1, h, w],
                  narrow=0)
        return y

    def dup(self, x: str, n: int, lanes: int) -> list[str]:
        h, w, c = self.hw(x)
        ys = [self.tensor("dup", [1, h, w, c], self.dtypes[x]) for _ in range(n)]
        self.node("DuplicateStreams", [x], ys, {"PE": lanes}, NumChannels=c, NumOutputStreams=n,
                  inputDataType=self.dtypes[x], numInputVectors=[1, h, w])
        return ys

    def binop(self, op: str, a: str, b: str, out_dt: str, lanes: int) -> str:
        shape = self.shapes[a]
        y = self.tensor(op.lower(), shape, out_dt)
        self.node(op, [a, b], [y], {"PE": lanes}, lhs_dtype=self.dtypes[a], rhs_dtype=self.dtypes[b],
                  out_dtype=out_dt, lhs_shape=shape, rhs_shape=shape, out_shape=shape)
        return y

    def saturate(self, x: str, out_w: int, lanes: int) -> str:
        """Where ``x``'s datatype is wider than ``out_w`` signed bits, a saturating Requant (scale 1)."""
        lo, hi = _dt_range(self.dtypes[x])
        olo, ohi = _dt_range(_int_dt(out_w))
        return x if (lo >= olo and hi <= ohi) else self.requant(x, _int_dt(out_w), lanes)

    def windows(self, x: str, k: int, s: int, pad: int, lanes: int, depthwise: int) -> str:
        h, w, c = self.hw(x)
        dt = self.dtypes[x]
        if pad:
            xp = self.tensor("padded", [1, h + 2 * pad, w + 2 * pad, c], dt)
            self.node("FMPadding", [x], [xp], {"SIMD": lanes}, ImgDim=[h, w], Padding=[pad] * 4, NumChannels=c,
                      inputDataType=dt, numInputVectors=1)
            x, h, w = xp, h + 2 * pad, w + 2 * pad
        oh, ow = (h - k) // s + 1, (w - k) // s + 1
        y = self.tensor("windows", [1, oh, ow, k * k * c], dt)
        self.node("ConvolutionInputGenerator", [x], [y], {"SIMD": lanes}, ConvKernelDim=[k, k], IFMChannels=c,
                  IFMDim=[h, w], OFMDim=[oh, ow], Stride=[s, s], Dilation=[1, 1], inputDataType=dt,
                  outputDataType=dt, depthwise=depthwise)
        return y

    # --- one method a kind -------------------------------------------------------------------------
    @EMITTERS.emits(SlidingWindow, note="`FMPadding` + `ConvolutionInputGenerator`")
    def SlidingWindow(self, lay):  # noqa: N802 - named after the kind
        return [self.windows(self.src(lay.inputs[0]), lay.k, lay.s, lay.pad, lay.lanes, depthwise=0)]

    def _mvu(self, lay, wdt: str, fc: bool = False):
        """An MVAU without activation: its output is our accumulator. A fully connected layer (``fc``) reads the
        whole (H, W, C) frame as one vector in raster order, which is the stream order: an MVAU over one pixel
        (FINN's python execution reshapes its input to (1, N))."""
        x = self.src(lay.inputs[0])
        n = int(np.prod(self.hw(x))) if fc else self.hw(x)[2]
        if n != lay.n:
            raise self.err(f"its input has {n} elements a pixel, the layer takes {lay.n}")
        oh, ow = (1, 1) if fc else self.hw(x)[:2]
        acc = _int_dt(lay.acc_w)
        y = self.tensor("acc", [1, oh, ow, lay.cout], acc)
        extra = {"mem_mode": "external"} if getattr(lay, "streamed", False) else {}
        self.node("MVAU", [x, self.init("weights", np.asarray(lay.weights).T)], [y],
                  {"PE": lay.pe, "SIMD": lay.simd}, MW=lay.n, MH=lay.cout, inputDataType=self.dtypes[x],
                  weightDataType=wdt, outputDataType=acc, accDataType=acc, noActivation=1, binaryXnorMode=0,
                  numInputVectors=[1, oh, ow], **extra)
        self._f32_exact(_max_abs(self.dtypes[x]) * _max_abs(wdt if wdt != "BIPOLAR" else "INT2") * lay.n,
                        "the accumulator")
        return [y]

    @EMITTERS.emits(XnorMvu, note="`MVAU` (INT2 x BIPOLAR)")
    def XnorMvu(self, lay):  # noqa: N802
        return self._mvu(lay, "BIPOLAR")

    @EMITTERS.emits(FxpMvu, note="`MVAU` (INT x INT)")
    def FxpMvu(self, lay):  # noqa: N802
        return self._mvu(lay, _int_dt(lay.w_w))

    @EMITTERS.emits(FcXnorMvu, note="`MVAU` over one pixel")
    def FcXnorMvu(self, lay):  # noqa: N802
        return self._mvu(lay, "BIPOLAR", fc=True)

    @EMITTERS.emits(FcFxpMvu, note="`MVAU` over one pixel")
    def FcFxpMvu(self, lay):  # noqa: N802
        return self._mvu(lay, _int_dt(lay.w_w), fc=True)

    def thresholding(self, x: str, t: np.ndarray, out_dt: str, act_val: int, lanes: int) -> str:
        """FINN's Thresholding: ``act_val + sum_i (x >= t[c, i])`` per channel ``c`` (``t``: (C, steps))."""
        h, w, c = self.hw(x)
        t = np.asarray(t, dtype=np.int64)
        lo, hi = _dt_range(self.dtypes[x])
        y = self.tensor("thr", [1, h, w, c], out_dt)
        self.node("Thresholding", [x, self.init("thresholds", t)], [y], {"PE": lanes}, NumChannels=c,
                  numSteps=t.shape[1], inputDataType=self.dtypes[x],
                  weightDataType=_fit_dt(min(lo, int(t.min())), max(hi, int(t.max()))), outputDataType=out_dt,
                  ActVal=act_val, numInputVectors=[1, h, w])
        return y

    def _pm1(self, x: str, t: np.ndarray, lanes: int) -> list[str]:
        """+1 where ``x >= t_c``, else -1 (INT2): thresholds (t_c, t_c) and ``ActVal`` -1."""
        return [self.thresholding(x, np.repeat(np.asarray(t, dtype=np.int64)[:, None], 2, axis=1), "INT2", -1, lanes)]

    @EMITTERS.emits(Sign, note="`Thresholding`")
    def Sign(self, lay):  # noqa: N802
        return self._pm1(self.src(lay.inputs[0]), np.zeros(lay.c, dtype=np.int64), lay.lanes)

    @EMITTERS.emits(Threshold, note="`Thresholding` (+ `Requant` -1)")
    def Threshold(self, lay):  # noqa: N802
        x = self.src(lay.inputs[0])
        if not np.any(lay.neg):
            return self._pm1(x, lay.thresholds, lay.lanes)
        # x <= T  <=>  -x >= -T: FINN's thresholds only rise, so the channels with a negative BatchNorm scale
        # are negated first (an exact Requant with scale -1 on them, +1 on the others)
        lo, hi = _dt_range(self.dtypes[x])
        sign = np.where(lay.neg.astype(bool), -1, 1)
        nx = self.requant(x, _fit_dt(min(lo, -hi), max(hi, -lo)), lay.lanes, m=sign)
        return self._pm1(nx, sign * np.asarray(lay.thresholds, dtype=np.int64), lay.lanes)

    @EMITTERS.emits(MultiThreshold, note="`Thresholding`")
    def MultiThreshold(self, lay):  # noqa: N802
        return [self.thresholding(self.src(lay.inputs[0]), lay.thresholds, _int_dt(lay.out_w, signed=lay.signed),
                                  int(lay.offset), lay.lanes)]

    @EMITTERS.emits(Requant, note="`Requant`")
    def Requant(self, lay):  # noqa: N802
        out = _int_dt(lay.out_w - 1, signed=False) if lay.relu else _int_dt(lay.out_w)
        return [self.requant(self.src(lay.inputs[0]), out, lay.lanes, shift=int(lay.shift))]

    @EMITTERS.emits(MulShift, note="`Requant`")
    def MulShift(self, lay):  # noqa: N802
        return [self.requant(self.src(lay.inputs[0]), _int_dt(lay.out_w), lay.lanes, m=lay.m, shift=int(lay.shift))]

    @EMITTERS.emits(AddConst, note="`Requant`")
    def AddConst(self, lay):  # noqa: N802
        return [self.requant(self.src(lay.inputs[0]), _int_dt(lay.out_w), lay.lanes, b=lay.b)]

    @EMITTERS.emits(Prelu, note="`DuplicateStreams`, `Requant`, `ElementwiseMax`")
    def Prelu(self, lay):  # noqa: N802
        x = self.src(lay.inputs[0])
        out = _int_dt(lay.out_w)
        slope = np.asarray(lay.beta, dtype=np.float64) * 2.0 ** (-int(lay.shift))
        if np.all(slope <= 1):  # max(x, floor(beta x)): x for x > 0, floor(beta x) for x <= 0 (module doc)
            pos, neg = self.dup(x, 2, lay.lanes)
            nq = self.requant(neg, out, lay.lanes, m=lay.beta, shift=int(lay.shift))
            (alo, ahi), (blo, bhi) = _dt_range(self.dtypes[pos]), _dt_range(self.dtypes[nq])
            y = self.binop("ElementwiseMax", pos, nq, _fit_dt(min(alo, blo), max(ahi, bhi)), lay.lanes)
            return [self.saturate(y, lay.out_w, lay.lanes)]
        # any slope: relu(x) + floor(beta * min(x, 0)), one term always 0; relu is a Requant clipping to
        # UINT, min(x, 0) = x - relu(x)
        lo, hi = _dt_range(self.dtypes[x])
        a, b = self.dup(x, 2, lay.lanes)
        r1, r2 = self.dup(self.requant(a, _fit_dt(0, hi), lay.lanes), 2, lay.lanes)
        n = self.binop("ElementwiseSub", b, r1, _fit_dt(lo, 0), lay.lanes)
        nq = self.requant(n, out, lay.lanes, m=lay.beta, shift=int(lay.shift))
        olo, ohi = _dt_range(out)
        y = self.binop("ElementwiseAdd", r2, nq, _fit_dt(olo, hi + ohi), lay.lanes)
        return [self.saturate(y, lay.out_w, lay.lanes)]

    @EMITTERS.emits(JoinAdd, note="`Requant`, `ElementwiseAdd`")
    def JoinAdd(self, lay):  # noqa: N802
        ins = []
        for t, sh in zip(lay.inputs, (lay.shift_a, lay.shift_b)):
            x = self.src(t)
            if sh:
                lo, hi = _dt_range(self.dtypes[x])
                x = self.requant(x, _fit_dt(lo << sh, hi << sh), lay.lanes, shift=-int(sh))
            ins.append(x)
        (alo, ahi), (blo, bhi) = (_dt_range(self.dtypes[v]) for v in ins)
        y = self.binop("ElementwiseAdd", ins[0], ins[1], _fit_dt(alo + blo, ahi + bhi), lay.lanes)
        return [self.saturate(y, lay.out_w, lay.lanes)]

    @EMITTERS.emits(Concat, note="`StreamingConcat`")
    def Concat(self, lay):  # noqa: N802
        a, b = (self.src(t) for t in lay.inputs)
        h, w, _ = self.hw(a)
        probe = [_dt_range(self.dtypes[a]), _dt_range(self.dtypes[b])]
        y = self.tensor("concat", [1, h, w, lay.c1 + lay.c2],
                        _fit_dt(min(p[0] for p in probe), max(p[1] for p in probe)))
        self.node("StreamingConcat", [a, b], [y], {"SIMD": lay.lanes}, ChannelsPerStream=[lay.c1, lay.c2],
                  inputDataTypes=[self.dtypes[a], self.dtypes[b]], numInputVectors=[1, h, w])
        return [y]

    @EMITTERS.emits(Split, note="`StreamingSplit`")
    def Split(self, lay):  # noqa: N802
        x = self.src(lay.inputs[0])
        h, w, _ = self.hw(x)
        ys = [self.tensor("split", [1, h, w, c], self.dtypes[x]) for c in (lay.c1, lay.c2)]
        self.node("StreamingSplit", [x], ys, {"SIMD": lay.lanes}, ChannelsPerStream=[lay.c1, lay.c2],
                  inputDataType=self.dtypes[x], numInputVectors=[1, h, w])
        return ys

    @EMITTERS.emits(Fork, note="`DuplicateStreams`")
    def Fork(self, lay):  # noqa: N802
        return self.dup(self.src(lay.inputs[0]), len(lay.outputs), lay.lanes)

    @EMITTERS.emits(Pool, note="`ConvolutionInputGenerator` + `Pool`")
    def Pool(self, lay):  # noqa: N802
        x = self.src(lay.inputs[0])
        dt = self.dtypes[x]
        lo, hi = _dt_range(dt)
        offset = -lo if (lay.mode == "max" and lay.pad and lo < 0) else 0
        if offset:  # FMPadding's 0 must never beat a real tap: pool x - lo >= 0, then add lo back
            x = self.requant(x, _fit_dt(0, hi - lo), lay.lanes, b=offset)
            dt = self.dtypes[x]
        win = self.windows(x, lay.k, lay.s, lay.pad, lay.lanes, depthwise=1)
        oh, ow, _ = self.hw(win)
        if lay.mode == "sum":
            lo, hi = _dt_range(dt)
            odt = _fit_dt(lo * lay.k * lay.k, hi * lay.k * lay.k)
        else:
            odt = dt
        y = self.tensor("pool", [1, oh, ow, lay.c], odt)
        self.node("Pool", [win], [y], {"PE": lay.lanes}, Channels=lay.c, KernelSize=[lay.k, lay.k],
                  Function="AccPool" if lay.mode == "sum" else "MaxPool", OutImgDims=[oh, ow], InputDataType=dt,
                  OutputDataType=odt, BatchSize=1)
        return [self.requant(y, _int_dt(lay.elem_w, lay.signed), lay.lanes, b=-offset) if offset else y]

    @EMITTERS.emits(Fifo, Dwc, note="nothing (FINN inserts its own)")
    def Fifo(self, lay):  # noqa: N802
        return [self.src(lay.inputs[0])]

    @EMITTERS.emits(Epilogue, note="its ops, each as above")
    def Epilogue(self, lay):  # noqa: N802
        """its ops one after the other (``Epilogue.unfuse``), each through its own exact mapping"""
        outs = None
        for op in lay.unfuse():
            outs = self.emit(op)
        return outs

    def emit(self, lay) -> list[str]:
        """FINN nodes for our layer ``lay``; maps its output tensors (an error names a kind FINN does not take)."""
        prev, self._cur = self._cur, lay
        try:
            fn = EMITTERS.entry(lay).fn
            outs = fn(self, lay)
            for ours, theirs in zip(lay.outputs, outs):
                self.t[ours] = theirs
        finally:
            self._cur = prev
        return outs


def in_dtype(fmt: Fmt) -> str:
    if fmt.bipolar:
        return "INT2"
    return _int_dt(fmt.bits, fmt.signed)


def build_model(g: HwGraph):
    """FINN's HW-layer ONNX for ``g`` (a qonnx ``ModelWrapper``), the rows [FINN node, our layer, folding], and
    our tensor -> the FINN tensor holding the same integers (window tensors left out: ours carry a mask)."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    b = _Builder(g)
    fin = g.tensors[g.input]
    x = b.tensor("input", [1, *fin.shape], in_dtype(fin.fmt))
    b.t[g.input] = x
    for lay in g.layers:
        b.emit(lay)
    y = b.t[g.output]

    def vi(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, b.shapes[name])

    graph = helper.make_graph(b.nodes, "binaryhpe_finn", [vi(x)], [vi(y)],
                              value_info=[vi(n) for n in b.shapes if n not in (x, y)])
    mw = ModelWrapper(qonnx_make_model(graph, producer_name="binaryhpe"))
    for name, v in b.inits.items():
        mw.set_initializer(name, v)
    for name, dt in b.dtypes.items():
        mw.set_tensor_datatype(name, DataType[dt])
    # (an Epilogue's intermediate tensors are not ours to compare unless the graph was unfused first)
    tmap = {ours: theirs for ours, theirs in b.t.items() if ours in g.tensors and not g.tensors[ours].windowed}
    return mw, b.layers, tmap


#: our kinds this lowering takes (the others raise an error naming the layer)
KINDS = sorted(k.__name__ for k in EMITTERS.entries)
