"""QONNX -> hardware graph.

Input is the QONNX file, never the PyTorch object. The ModelWrapper is cleaned up and shape-inferred with
qonnx's own passes; then each node is lowered by the function registered for its op type (hls4ml-style
match/transform), one node (or one node with the Quant that completes it) at a time. Every value in the graph
has a fixed-point ``Fmt``; a node that cannot be mapped exactly raises one error naming the node, its op type
and the reason. Fusion, forks/FIFOs and folding are later passes (compile.passes).
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

from binaryhpe.compile.graph import Fmt, HwGraph, TensorInfo
from binaryhpe.compile.kinds.base import clog2
from binaryhpe.compile.kinds.elementwise import AddConst, JoinAdd, MulShift, Prelu, Requant, Sign
from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
from binaryhpe.compile.kinds.plumbing import Concat, PhaseShuffle, Split
from binaryhpe.compile.kinds.pool import Pool
from binaryhpe.compile.kinds.swg import SlidingWindow
from binaryhpe.compile.lower_base import (  # noqa: F401 - the lowering framework, public here as before
    LOWERINGS,
    MAX_CONST_BITS,
    MAX_WIDTH,
    Lowerer,
    LoweringError,
    NameUnnamedNodes,
    _align_up,
    _attrs,
    _err,
    _scale_epilogue,
    fixed_point,
    load_qonnx,
    lowers,
)


def _legacy_requant(L: Lowerer, node) -> bool:
    """True when the hardware-mode requantizer applies: a dyadic, unscaled input, a per-tensor power-of-two
    scale, zero point 0, not narrow, and FLOOR wherever the requantization shifts right (anything else goes to
    the exact chain solver, compile/lower_quant.py)."""
    from binaryhpe.compile.lower_quant import is_float

    if node.input[0] == L.iname or is_float(L, node.input[0]):
        return node.input[0] == L.iname
    vals = [L.const(n) for n in node.input[1:4]]
    if any(v is None for v in vals) or np.size(vals[0]) != 1 or np.any(np.asarray(vals[1]) != 0):
        return False
    s = float(np.asarray(vals[0]).reshape(-1)[0])
    if not s > 0 or -math.log2(s) != round(-math.log2(s)):
        return False
    a = _attrs(node)
    mode = a.get("rounding_mode", b"ROUND")
    mode = (mode.decode() if isinstance(mode, bytes) else mode).upper()
    if int(a.get("narrow", 0)) or int(np.asarray(vals[2]).reshape(-1)[0]) < 2:
        return False
    if node.input[0] not in L.env:
        return True  # the legacy path names the missing producer
    src = L.g.tensors[L.env[node.input[0]]]
    if src.fmt.bipolar:
        return True
    return src.fmt.frac - int(round(-math.log2(s))) <= 0 or mode == "FLOOR"


@lowers("Quant")
def _quant(L: Lowerer, node):
    if L.const(node.input[0]) is not None:
        return  # a weight quantizer: read by its consumer
    if not _legacy_requant(L, node):
        from binaryhpe.compile.lower_quant import quantize_chain

        quantize_chain(L, node, node.input[0])
        return
    if node.input[0] == L.iname:
        _input_quant(L, node)
        return
    scale, zp, bw = (L.const(n) for n in node.input[1:4])
    if scale is None or zp is None or bw is None:
        raise _err(node, "scale, zero point and bit width must be constants")
    a = _attrs(node)
    if np.size(scale) != 1 or np.any(zp != 0):
        raise _err(node, "activation quantizers must be per-tensor with zero point 0")
    s = float(np.asarray(scale).reshape(-1)[0])
    f = -math.log2(s)
    if f != round(f):
        raise _err(node, f"scale {s} is not a power of two")
    f, bits = int(round(f)), int(np.asarray(bw).reshape(-1)[0])
    signed, narrow = int(a.get("signed", 1)), int(a.get("narrow", 0))
    mode = a.get("rounding_mode", b"ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if narrow:
        raise _err(node, "narrow-range quantizers are not supported")
    out_fmt = Fmt(bits, f, signed=bool(signed))
    shape = L.shape_hwc(node.output[0])
    src = L.info(node.input[0])
    if src.fmt.bipolar:
        raise _err(node, "requantizing a bipolar tensor is not supported")
    shift = src.fmt.frac - f
    if shift > 0 and mode not in ("FLOOR",):
        raise _err(node, f"rounding mode {mode} would need rounding on a right shift; hardware mode uses FLOOR")
    out_w = bits if signed else bits + 1
    name = L.new_tensor(node.output[0], shape, out_fmt)
    L.add(Requant(name=L.g.unique(node.name), inputs=[src.name], outputs=[name], c=shape[2],
                  pixels=shape[0] * shape[1], in_w=src.fmt.bits, out_w=out_w, shift=shift,
                  relu=not signed))
    if not signed:
        L.g.tensors[name].fmt = Fmt(out_w, f, signed=True)


def _input_quant(L: Lowerer, node):
    """The network input's quantizer: the host quantizes (compile/frames.quantize), hardware sees integers. Any
    positive scale (a power of two goes into the format, another is the tensor's scale), any rounding mode,
    narrow or not; zero point 0."""
    from binaryhpe.compile.lower_quant import quant_spec, set_scale

    qs = quant_spec(L, node)
    if qs.zp != 0:
        raise _err(node, "the input quantizer must have zero point 0")
    shape = L.shape_hwc(node.output[0])
    if qs.bipolar:
        L.g.input = L.new_tensor(node.output[0], shape, Fmt(1, 0, signed=False, bipolar=True))
        L.g.input_quant = {"bipolar": True}
        return
    name = L.new_tensor(node.output[0], shape, Fmt(qs.bits, 0, signed=qs.signed))
    set_scale(L.g.tensors[name], qs.scale)
    L.g.input = name
    L.g.input_quant = {"scale": float(qs.scale), "bits": qs.bits, "signed": int(qs.signed),
                       "rounding_mode": qs.mode, "narrow": int(qs.narrow)}


@lowers("BipolarQuant")
def _bipolar(L: Lowerer, node):
    from binaryhpe.compile.lower_quant import is_float, quantize_chain

    if L.const(node.input[0]) is not None:
        return
    sc = L.const(node.input[1])
    if node.input[0] != L.iname and (is_float(L, node.input[0]) or sc is None or np.any(np.asarray(sc) != 1.0)):
        quantize_chain(L, node, node.input[0])
        return
    scale = L.const(node.input[1])
    if scale is None or np.any(np.asarray(scale) != 1.0):
        raise _err(node, "binary activations must have scale 1 (alpha belongs to the weights or an epilogue)")
    shape = L.shape_hwc(node.output[0])
    if node.input[0] == L.iname:
        L.g.input = L.new_tensor(node.output[0], shape, Fmt(1, 0, signed=False, bipolar=True))
        L.g.input_quant = {"bipolar": True}
        return
    src = L.info(node.input[0])
    name = L.new_tensor(node.output[0], shape, Fmt(1, 0, signed=False, bipolar=True))
    L.add(Sign(name=L.g.unique(node.name), inputs=[src.name], outputs=[name], c=shape[2],
               pixels=shape[0] * shape[1], in_w=src.fmt.bits))


def _swg(L: Lowerer, node, src: TensorInfo, k: int, s: int, pad: int) -> str:
    h, w, c = src.shape
    win_name = L.g.unique(f"{node.name}_windows")
    elem_w = src.fmt.width
    try:
        swg = SlidingWindow(name=L.g.unique(f"{node.name}_swg"), inputs=[src.name], outputs=[win_name], h=h, w=w,
                            c=c, k=k, s=s, pad=pad, elem_w=elem_w, signed=not src.fmt.bipolar)
    except ValueError as e:
        raise _err(node, str(e)) from None
    L.g.tensors[win_name] = TensorInfo(win_name, (swg.oh, swg.ow, k * k * c), src.fmt, windowed=True)
    L.add(swg)
    return win_name


def _conv_geometry(node, a) -> tuple[int, int, int]:
    ks = a.get("kernel_shape")
    strides = a.get("strides", [1, 1])
    pads = a.get("pads", [0, 0, 0, 0])
    if a.get("group", 1) != 1:
        raise _err(node, "grouped/depthwise convolutions are not supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise _err(node, "dilated convolutions are not supported")
    if ks is None or ks[0] != ks[1] or strides[0] != strides[1] or len(set(pads)) != 1:
        raise _err(node, f"only square kernels, equal strides and symmetric padding (kernel {ks}, "
                         f"strides {strides}, pads {pads})")
    return int(ks[0]), int(strides[0]), int(pads[0])


@lowers("Conv")
def _conv(L: Lowerer, node):
    a = _attrs(node)
    k, s, pad = _conv_geometry(node, a)
    src = L.info(node.input[0])
    q, wscale, wbits, bipolar_w = L.weight_of(node)
    if np.ndim(q) != 4 or tuple(np.shape(q)[1:]) != (src.shape[2], k, k):
        raise _err(node, f"weights of shape {tuple(np.shape(q))} do not fit a {k}x{k} kernel over {src.shape[2]} "
                         f"input channels (expected (Cout, {src.shape[2]}, {k}, {k})): fix the exported model")
    out = _conv_mvu(L, node, src, _swg(L, node, src, k, s, pad), q, wscale, bipolar_w)
    if len(node.input) > 2 and node.input[2]:
        from binaryhpe.compile.lower_quant import add_bias, bias_of

        out = add_bias(L, node, out, bias_of(L, node, node.input[2], q.shape[0]))
        if not out:
            return  # a pending chain: the next quantizer absorbs the bias
    L.env[node.output[0]] = out
    L.g.onnx_names[node.output[0]] = out


def _conv_mvu(L: Lowerer, node, src: TensorInfo, win: str, q, wscale, bipolar_w: bool) -> str:
    """The MVU (and its weight-scale epilogue) of a convolution with integer weights ``q`` (Cout, Cin, K, K)
    over the windows ``win`` of ``src``; returns the output tensor."""
    from binaryhpe.compile.lower_quant import scale_accumulator, weight_scale_per_out

    cout = q.shape[0]
    wsc = weight_scale_per_out(node, wscale, tuple(np.shape(q)), 0)
    # (Cout, Cin, K, K) -> (Cout, K*K*Cin) in the SWG's (ky, kx, c) order
    wmat = np.transpose(q, (0, 2, 3, 1)).reshape(cout, -1).astype(np.int64)
    oh, ow, n = L.g.tensors[win].shape
    out_shape = (oh, ow, cout)
    acc_name = L.g.unique(f"{node.name}_acc")
    if src.fmt.bipolar and bipolar_w:
        mvu = XnorMvu(name=L.g.unique(node.name), inputs=[win], outputs=[acc_name], n=n, cout=cout,
                      weights=wmat, pixels=oh * ow)
        L.g.tensors[acc_name] = TensorInfo(acc_name, out_shape, Fmt(mvu.acc_w, 0))
        L.add(mvu)
        return scale_accumulator(L, node, acc_name, src, wsc)
    if not src.fmt.bipolar and not bipolar_w:
        wq, wfrac, wb = fixed_point(np.asarray(q, dtype=np.float64), MAX_CONST_BITS)
        wmat = np.transpose(wq, (0, 2, 3, 1)).reshape(cout, -1)
        mvu = FxpMvu(name=L.g.unique(node.name), inputs=[win], outputs=[acc_name], n=n, cout=cout,
                     weights=wmat, pixels=oh * ow, in_w=src.fmt.bits, w_w=max(wb, 2))
        if mvu.acc_w > MAX_WIDTH:
            raise _err(node, f"accumulator needs {mvu.acc_w} bits (> {MAX_WIDTH})")
        L.g.tensors[acc_name] = TensorInfo(acc_name, out_shape, Fmt(mvu.acc_w, src.fmt.frac + wfrac))
        L.add(mvu)
        return scale_accumulator(L, node, acc_name, src, wsc)
    if not src.fmt.bipolar and bipolar_w:
        # fixed-point input, binary weights (an 8-bit first layer of a BNN-PYNQ CNV): +-1 as 2-bit integers
        mvu = FxpMvu(name=L.g.unique(node.name), inputs=[win], outputs=[acc_name], n=n, cout=cout,
                     weights=wmat, pixels=oh * ow, in_w=src.fmt.bits, w_w=2)
        if mvu.acc_w > MAX_WIDTH:
            raise _err(node, f"accumulator needs {mvu.acc_w} bits (> {MAX_WIDTH})")
        L.g.tensors[acc_name] = TensorInfo(acc_name, out_shape, Fmt(mvu.acc_w, src.fmt.frac))
        L.add(mvu)
        return scale_accumulator(L, node, acc_name, src, wsc)
    raise _err(node, "binary (BipolarQuant) inputs need binary weights")


def deconv_phases(k: int, s: int, p: int) -> list[tuple[int, list[int]]]:
    """Polyphase decomposition of a 1-D transposed convolution (kernel ``k``, stride ``s``, padding ``p``,
    output ``s`` times the input): for each phase ``r`` (outputs ``o = s*m + r``), ``(pad_r, taps)`` such that
    ``out[s*m + r] = sum_t x[m - pad_r + t] * w[taps[t]]`` for ``t < k // s`` (ONNX ConvTranspose: input ``i``
    and tap ``kk`` reach output ``i*s - p + kk``)."""
    kp = k // s
    out = []
    for r in range(s):
        c = (r + p) // s
        out.append((kp - 1 - c, [(r + p) % s + s * (kp - 1 - t) for t in range(kp)]))
    return out


@lowers("ConvTranspose")
def _conv_transpose(L: Lowerer, node):
    """A transposed convolution as ``s*s`` stride-1 convolutions (one a phase) sharing one window generator and
    one MVU with ``s*s*Cout`` outputs, then a ``PhaseShuffle`` that interleaves the phases. No zero insertion:
    a binary input has no 0 to insert (docs/paper-scale.md; the engine side: docs/engine.md, "The compiler side")."""
    a = _attrs(node)
    ks, st = a.get("kernel_shape"), a.get("strides", [1, 1])
    pads = a.get("pads", [0, 0, 0, 0])
    if a.get("group", 1) != 1:
        raise _err(node, "grouped transposed convolutions are not supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])) or any(v != 0 for v in a.get("output_padding", [0, 0])):
        raise _err(node, "dilated transposed convolutions or output_padding are not supported")
    if a.get("output_shape") or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise _err(node, "output_shape / auto_pad are not supported (give kernel, strides and pads)")
    if ks is None or ks[0] != ks[1] or st[0] != st[1] or len(set(pads)) != 1:
        raise _err(node, f"only square kernels, equal strides and symmetric padding (kernel {ks}, strides {st}, "
                         f"pads {pads})")
    k, s, p = int(ks[0]), int(st[0]), int(pads[0])
    if k % s or k - 2 * p != s:
        raise _err(node, f"kernel {k}, stride {s}, pad {p}: the hardware takes kernel = stride * n and "
                         f"kernel - 2 * pad = stride (output exactly stride x the input), e.g. 4, 2, 1")
    phases = deconv_phases(k, s, p)
    kp = k // s
    if any(not 0 <= pr <= kp - 1 for pr, _ in phases):
        raise _err(node, f"kernel {k}, stride {s}, pad {p}: a phase would need padding outside [0, {kp - 1}]")
    if len(node.input) > 2 and node.input[2]:
        raise _err(node, "transposed convolution bias is not supported (export without bias; epilogues add "
                         "constants)")
    src = L.info(node.input[0])
    q, wscale, wbits, bipolar_w = L.weight_of(node)  # (Cin, Cout, k, k)
    cin, cout = q.shape[0], q.shape[1]
    if cin != src.shape[2]:
        raise _err(node, f"weights have {cin} input channels, the input {src.shape[2]}")
    # the phase convolutions' weights, (s*s*Cout, Cin, kp, kp): channel (ry*s + rx)*Cout + co
    qc = np.empty((s * s * cout, cin, kp, kp), dtype=np.asarray(q).dtype)
    for ry, (_, ty) in enumerate(phases):
        for rx, (_, tx) in enumerate(phases):
            ph = ry * s + rx
            qc[ph * cout:(ph + 1) * cout] = np.transpose(q[:, :, ty][:, :, :, tx], (1, 0, 2, 3))
    if wscale is not None and np.size(wscale) > 1:
        sc = np.asarray(wscale, dtype=np.float64).reshape(-1)
        if sc.size != cout:
            raise _err(node, f"weight scale of {sc.size} values for {cout} output channels")
        wscale = np.tile(sc, s * s)
    big_p = max(pr for pr, _ in phases)
    win = _swg(L, node, src, kp, 1, big_p)
    acc = _conv_mvu(L, node, src, win, qc, wscale, bipolar_w)
    info = L.g.tensors[acc]
    h, w = src.shape[0], src.shape[1]
    out = L.new_tensor(node.output[0], (s * h, s * w, cout), info.fmt)
    try:
        L.add(PhaseShuffle(name=L.g.unique(f"{node.name}_shuffle"), inputs=[acc], outputs=[out], h=info.shape[0],
                           w=info.shape[1], c=cout, s=s, oh=s * h, ow=s * w,
                           off=tuple(big_p - pr for pr, _ in phases), elem_w=info.fmt.width,
                           signed=not info.fmt.bipolar))
    except ValueError as e:
        raise _err(node, str(e)) from None


def _per_channel(node, c, cout: int) -> np.ndarray:
    v = np.asarray(c, dtype=np.float64)
    if v.size == 1:
        return np.full(cout, float(v.reshape(-1)[0]))
    # per channel in NCHW broadcasting: (C,), (C, 1, 1) or (1, C, 1, 1)
    if v.size == cout and (v.ndim == 1 or (v.ndim == 3 and v.shape[0] == cout) or (v.ndim == 4 and v.shape[1] == cout)):
        return v.reshape(-1)
    raise _err(node, f"constant of shape {v.shape} is not per-tensor or per-channel for {cout} channels")


def _tensor_operands(L: Lowerer, node):
    ins = [L.const(n) for n in node.input[:2]]
    if ins[0] is not None and ins[1] is not None:
        raise _err(node, "both operands are constants (constant folding should have removed this node)")
    if ins[0] is not None:
        return L.info(node.input[1]), ins[0], True
    if ins[1] is not None:
        return L.info(node.input[0]), ins[1], False
    return None, None, None


def _float_operand(L: Lowerer, node):
    """(tensor input, constant) of a binary op whose stream operand is float-valued (a pending chain or a tensor
    with a float scale), or None."""
    from binaryhpe.compile.lower_quant import is_float

    c0, c1 = (L.const(n) for n in node.input[:2])
    if (c0 is None) == (c1 is None):
        return None
    t, c = (node.input[1], c0) if c0 is not None else (node.input[0], c1)
    return (t, c, c0 is not None) if is_float(L, t) else None


def _chain_op(L: Lowerer, node, t: str, c, const_first: bool) -> None:
    """Mul / Div / Add / Sub of a float-valued tensor by a constant: a step of its chain (lower_quant)."""
    from fractions import Fraction

    from binaryhpe.compile.lower_quant import chain_of, extend, per_channel_fr

    cout = chain_of(L, t).c
    v = per_channel_fr(node, c, cout)
    one, zero = [Fraction(1)] * cout, [Fraction(0)] * cout
    op = node.op_type
    if op == "Mul":
        step = ("affine", v, zero)
    elif op == "Div":
        if const_first:
            raise _err(node, "constant divided by a stream is not supported")
        if any(x == 0 for x in v):
            raise _err(node, "division by zero")
        step = ("affine", [1 / x for x in v], zero)
    elif op == "Add":
        step = ("affine", one, v)
    else:  # Sub
        step = ("affine", [-x for x in one], v) if const_first else ("affine", one, [-x for x in v])
    extend(L, node, t, step)


def _chain_step(L: Lowerer, node, fixed_bits: int) -> bool:
    """Mul / Add / Sub of a stream and a constant as a step of a float chain (``_chain_op``) when the stream is
    float-valued or the constant is not a fixed-point value of ``fixed_bits`` bits; True when it was."""
    fo = _float_operand(L, node)
    if fo is None:
        c = L.const(node.input[1]) if L.const(node.input[1]) is not None else L.const(node.input[0])
        if c is not None and not _is_fixed(c, fixed_bits):
            t = node.input[0] if L.const(node.input[1]) is not None else node.input[1]
            fo = (t, c, t == node.input[1])
    if fo is None:
        return False
    if fo[0] not in L.chains:
        L.info(fo[0])  # a hardware value (names its producer otherwise)
    _chain_op(L, node, *fo)
    return True


def _is_fixed(v, bits: int = MAX_CONST_BITS) -> bool:
    try:
        fixed_point(np.asarray(v, dtype=np.float64), bits)
        return True
    except ValueError:
        return False


@lowers("Trunc")
def _trunc(L: Lowerer, node):
    """qonnx's Trunc (v2: x, scale, zero point, input bits, output scale, output bits; Brevitas' TruncAvgPool2d):
    ``clamp(mode(round(x / scale + zp) / T)) * output_scale`` with ``T = 2^round(log2(output_scale / scale))``: the
    chain's steps (an inner half-even rounding, then the division by T) and a quantizer with the output scale."""
    from fractions import Fraction

    from binaryhpe.compile.lower_quant import QuantSpec, chain_of, quantize_chain_spec

    vals = [L.const(n) for n in node.input[1:6]]
    if len(node.input) != 6 or any(v is None for v in vals):
        raise _err(node, "only qonnx's Trunc v2 with constant scale, zero point, bit widths and output scale is "
                         "supported (export with a current Brevitas)")
    s, zp, _in_bw, out_s, out_bw = (float(np.asarray(v).reshape(-1)[0]) for v in vals)
    if np.size(vals[0]) != 1 or np.size(vals[3]) != 1:
        raise _err(node, "the scales must be per tensor")
    if zp != 0 or not s > 0 or not out_s > 0:
        raise _err(node, "zero point 0 and positive scales are supported")
    a = _attrs(node)
    mode = a.get("rounding_mode", b"FLOOR")
    mode = (mode.decode() if isinstance(mode, bytes) else mode).upper()
    t = Fraction(2) ** int(np.round(np.log2(out_s / s)))
    if node.input[0] not in L.chains:
        L.info(node.input[0])
    c = chain_of(L, node.input[0]).c
    one, zero = [Fraction(1)] * c, [Fraction(0)] * c
    ch = chain_of(L, node.input[0])
    ch = ch.then(("affine", [1 / Fraction(s)] * c, zero), node).then(("round", "HALF_EVEN"), node)
    ch = ch.then(("affine", [Fraction(out_s) / t] * c, zero), node)  # the quantizer divides by out_s again
    del one
    qs = QuantSpec(scale=Fraction(out_s), bits=int(out_bw), signed=bool(a.get("signed", 1)),
                   narrow=bool(a.get("narrow", 0)), mode=mode)
    quantize_chain_spec(L, node, ch, qs)


@lowers("Div")
def _div(L: Lowerer, node):
    fo = _float_operand(L, node)
    if fo is None:
        c = L.const(node.input[1])
        if c is None or L.const(node.input[0]) is not None:
            raise _err(node, "only a stream divided by a constant is supported")
        fo = (node.input[0], c, False)
        L.info(node.input[0])  # a hardware value (names its producer otherwise)
    _chain_op(L, node, *fo)


@lowers("Clip")
def _clip(L: Lowerer, node):
    """Clip / Hardtanh (QuantHardTanh's Clip before its Quant): a step of the chain to the next quantizer."""
    from fractions import Fraction

    from binaryhpe.compile.lower_quant import extend

    a = _attrs(node)
    lo = L.const(node.input[1]) if len(node.input) > 1 and node.input[1] else a.get("min")
    hi = L.const(node.input[2]) if len(node.input) > 2 and node.input[2] else a.get("max")
    for name, v in (("min", node.input[1] if len(node.input) > 1 else ""),
                    ("max", node.input[2] if len(node.input) > 2 else "")):
        if v and L.const(v) is None:
            raise _err(node, f"the {name} bound must be a constant")
    b = [None if v is None else Fraction(float(np.asarray(v).reshape(-1)[0])) for v in (lo, hi)]
    if b[0] is not None and b[1] is not None and b[0] > b[1]:
        raise _err(node, f"min {b[0]} > max {b[1]}")
    if node.input[0] not in L.chains:
        L.info(node.input[0])
    extend(L, node, node.input[0], ("clip", b[0], b[1]))


@lowers("Mul")
def _mul(L: Lowerer, node):
    if _chain_step(L, node, MAX_CONST_BITS):
        return
    src, c, _ = _tensor_operands(L, node)
    if src is None:
        raise _err(node, "multiplying two streams is not supported")
    if src.fmt.bipolar:
        raise _err(node, "scaling a bipolar tensor: put the scale into an epilogue after the convolution")
    cout = src.shape[2]
    v = _per_channel(node, c, cout)
    if np.all(v == v[0]) and v[0] > 0 and math.log2(v[0]) == round(math.log2(v[0])):
        # a power of two: only the format changes
        L.env[node.output[0]] = src.name
        new = L.g.unique(node.output[0])
        L.g.tensors[new] = TensorInfo(new, src.shape, Fmt(src.fmt.bits, src.fmt.frac - int(round(math.log2(v[0])))))
        L.add(Requant(name=L.g.unique(node.name), inputs=[src.name], outputs=[new], c=cout,
                      pixels=src.shape[0] * src.shape[1], in_w=src.fmt.bits, out_w=src.fmt.bits, shift=0))
        L.env[node.output[0]] = new
        L.g.onnx_names[node.output[0]] = new
        return
    try:
        m, frac, mbits = fixed_point(v)
    except ValueError as e:
        raise _err(node, f"the multiplier {e}") from None
    out_w = src.fmt.bits + mbits
    if out_w > MAX_WIDTH:
        raise _err(node, f"product needs {out_w} bits (> {MAX_WIDTH})")
    name = L.new_tensor(node.output[0], src.shape, Fmt(out_w, src.fmt.frac + frac))
    L.add(MulShift(name=L.g.unique(node.name), inputs=[src.name], outputs=[name], c=cout,
                   pixels=src.shape[0] * src.shape[1], in_w=src.fmt.bits, out_w=out_w, const_w=mbits, m=m,
                   shift=0))


@lowers("Add", "Sub")
def _add(L: Lowerer, node):
    if _chain_step(L, node, 24):
        return
    src, c, const_first = _tensor_operands(L, node)
    if src is None:  # two streams
        a, b = L.info(node.input[0]), L.info(node.input[1])
        if a.scale is not None or b.scale is not None:
            from binaryhpe.compile.lower_quant import add_streams, add_then_quant

            q = L.single_consumer(node, "Quant")
            if node.op_type == "Add" and q is not None and add_then_quant(L, node, q, a, b):
                return  # the add and its quantizer as one exact multiply-add-shift of both operands
            add_streams(L, node, a, b)
            return
        if node.op_type == "Sub":
            raise _err(node, "subtracting two streams is not supported")
        if a.shape != b.shape:
            raise _err(node, f"operand shapes differ: {a.shape} vs {b.shape}")
        if a.fmt.bipolar or b.fmt.bipolar:
            raise _err(node, "adding bipolar tensors is not supported")
        frac = max(a.fmt.frac, b.fmt.frac)
        sa, sb = frac - a.fmt.frac, frac - b.fmt.frac
        out_w = max(a.fmt.bits + sa, b.fmt.bits + sb) + 1
        name = L.new_tensor(node.output[0], a.shape, Fmt(out_w, frac))
        L.add(JoinAdd(name=L.g.unique(node.name), inputs=[a.name, b.name], outputs=[name], c=a.shape[2],
                      pixels=a.shape[0] * a.shape[1], in_w=a.fmt.bits, in_b_w=b.fmt.bits, out_w=out_w,
                      shift_a=sa, shift_b=sb))
        return
    cout = src.shape[2]
    v = _per_channel(node, c, cout)
    if node.op_type == "Sub":
        v = -v if not const_first else v
        if const_first:
            raise _err(node, "constant minus stream is not supported")
    try:
        q, frac, cbits = fixed_point(v, 24)
    except ValueError as e:
        raise _err(node, f"the constant {e}") from None
    src = _align_up(L, node, src, frac)
    q = q << (src.fmt.frac - frac)
    cbits = max(2, int(np.max(np.abs(q))).bit_length() + 1)
    out_w = max(src.fmt.bits, cbits) + 1
    name = L.new_tensor(node.output[0], src.shape, Fmt(out_w, src.fmt.frac))
    L.add(AddConst(name=L.g.unique(node.name), inputs=[src.name], outputs=[name], c=cout,
                   pixels=src.shape[0] * src.shape[1], in_w=src.fmt.bits, out_w=out_w, const_w=cbits, b=q))


def _prelu_chain(L: Lowerer, node) -> bool:
    """PRelu as a step of the chain to the next quantizer, unless it is the hardware-mode RPReLU slope (a
    fixed-point slope and a FLOOR Quant keeping the input's format after it)."""
    from binaryhpe.compile.lower_quant import chain_of, extend, is_float, per_channel_fr

    slope = L.const(node.input[1])
    if slope is None:
        raise _err(node, "the slope must be a constant")
    if not is_float(L, node.input[0]):
        src = L.info(node.input[0])
        q = L.single_consumer(node, "Quant")
        if _is_fixed(slope) and q is not None and L.const(q.input[1]) is not None and np.size(L.const(q.input[1])) == 1:
            qs = float(np.asarray(L.const(q.input[1])).reshape(-1)[0])
            if qs > 0 and -math.log2(qs) == src.fmt.frac and \
                    _attrs(q).get("rounding_mode", b"ROUND") in (b"FLOOR", "FLOOR"):
                return False
    sl = per_channel_fr(node, slope, chain_of(L, node.input[0]).c)
    extend(L, node, node.input[0], ("prelu", sl))
    return True


@lowers("PRelu")
def _prelu(L: Lowerer, node):
    if _prelu_chain(L, node):
        return
    src = L.info(node.input[0])
    slope = L.const(node.input[1])
    cout = src.shape[2]
    v = _per_channel(node, slope, cout)
    try:
        m, frac, mbits = fixed_point(v)
    except ValueError as e:
        raise _err(node, f"the slope {e}") from None
    q = L.single_consumer(node, "Quant")
    if q is None:
        raise _err(node, "PRelu must be followed by exactly one Quant (the contract requantizes x * beta)")
    qs = float(np.asarray(L.const(q.input[1])).reshape(-1)[0])
    qbits = int(np.asarray(L.const(q.input[3])).reshape(-1)[0])
    if -math.log2(qs) != src.fmt.frac or _attrs(q).get("rounding_mode", b"ROUND") not in (b"FLOOR", "FLOOR"):
        raise _err(node, "the Quant after PRelu must keep the input's format and floor")
    name = L.new_tensor(q.output[0], src.shape, Fmt(qbits, src.fmt.frac))
    L.skip.add(q.name)
    L.add(Prelu(name=L.g.unique(node.name), inputs=[src.name], outputs=[name], c=cout,
                pixels=src.shape[0] * src.shape[1], in_w=src.fmt.bits, out_w=qbits, const_w=mbits, beta=m,
                shift=frac))


@lowers("Relu")
def _relu(L: Lowerer, node):
    from binaryhpe.compile.lower_quant import extend, is_float

    if is_float(L, node.input[0]):
        extend(L, node, node.input[0], ("relu",))
        return
    src = L.info(node.input[0])
    name = L.new_tensor(node.output[0], src.shape, src.fmt)
    L.add(Requant(name=L.g.unique(node.name), inputs=[src.name], outputs=[name], c=src.shape[2],
                  pixels=src.shape[0] * src.shape[1], in_w=src.fmt.bits, out_w=src.fmt.bits, shift=0, relu=True))


@lowers("MaxPool", "AveragePool")
def _pool(L: Lowerer, node):
    a = _attrs(node)
    src = L.info(node.input[0])
    ks, st = a.get("kernel_shape"), a.get("strides", [1, 1])
    pads = a.get("pads", [0, 0, 0, 0])
    if ks[0] != ks[1] or st[0] != st[1] or len(set(pads)) != 1 or a.get("ceil_mode", 0):
        raise _err(node, "only square windows, equal strides, symmetric padding and floor mode")
    k, s, pad = int(ks[0]), int(st[0]), int(pads[0])
    h, w, c = src.shape
    mode = "max" if node.op_type == "MaxPool" else "sum"
    if mode == "sum" and pad:
        raise _err(node, "average pooling must be unpadded (a padded window divides by a varying count)")
    elem_w = src.fmt.width
    try:
        pool = Pool(name=L.g.unique(node.name), inputs=[src.name], outputs=[], h=h, w=w, c=c, k=k, s=s, pad=pad,
                    mode=mode, elem_w=elem_w, signed=not src.fmt.bipolar)
    except ValueError as e:
        raise _err(node, str(e)) from None
    scale = src.scale
    if mode == "max":
        fmt = src.fmt
    elif k & (k - 1) == 0:
        sh = int(math.log2(k * k))
        fmt = Fmt(pool.out_w if pool.out_w else elem_w + clog2(k * k), src.fmt.frac + sh)
    else:  # the exact sum, its value divided by k*k: a scale
        from fractions import Fraction

        fmt = Fmt(pool.out_w if pool.out_w else elem_w + clog2(k * k), src.fmt.frac)
        d = Fraction(1, k * k)
        scale = tuple(s * d for s in scale) if isinstance(scale, tuple) else (d if scale is None else scale * d)
    name = L.new_tensor(node.output[0], L.shape_hwc(node.output[0]), fmt)
    L.g.tensors[name].scale = scale
    pool.outputs = [name]
    L.add(pool)


@lowers("GlobalAveragePool")
def _global_avg(L: Lowerer, node):
    """A global average pool is an average pool whose window is the whole (square) image."""
    from onnx import helper

    src = L.info(node.input[0])
    h, w, _ = src.shape
    if h != w:
        raise _err(node, f"global average pooling of a non-square {h}x{w} image is not supported")
    n2 = helper.make_node("AveragePool", list(node.input), list(node.output), name=node.name, kernel_shape=[h, w],
                          strides=[1, 1])
    _pool(L, n2)


@lowers("Concat")
def _concat(L: Lowerer, node):
    if _attrs(node).get("axis") != 1:
        raise _err(node, "only channel concatenation (axis 1)")
    parts = [L.info(n) for n in node.input]
    fmts = {p.fmt for p in parts}
    scales = {str(p.scale) for p in parts}
    if len(fmts) != 1 or len(scales) != 1:
        _concat_scaled(L, node, parts)
        return
    fmt = parts[0].fmt
    elem_w = fmt.width
    cur = parts[0]
    for i, p in enumerate(parts[1:], 1):
        last = i == len(parts) - 1
        shape = (cur.shape[0], cur.shape[1], cur.shape[2] + p.shape[2])
        name = L.new_tensor(node.output[0], shape, fmt) if last else L.g.unique(f"{node.name}_part{i}")
        if not last:
            L.g.tensors[name] = TensorInfo(name, shape, fmt)
        L.g.tensors[name].scale = parts[0].scale
        L.add(Concat(name=L.g.unique(node.name), inputs=[cur.name, p.name], outputs=[name], h=shape[0],
                     w=shape[1], c1=cur.shape[2], c2=p.shape[2], elem_w=elem_w, signed=not fmt.bipolar))
        cur = L.g.tensors[name]


def _concat_scaled(L: Lowerer, node, parts: list) -> None:
    """Concatenation of tensors with different steps (scales or formats): the output keeps every channel's own step
    as a per-channel scale (``TensorInfo.scale``), the integers are widened (exactly) to one width."""
    from binaryhpe.compile.lower_quant import base_of

    if any(p.fmt.bipolar for p in parts):
        raise _err(node, "binary operands can only be concatenated with binary operands of the same scale")
    bits = max(p.fmt.bits for p in parts)
    units, wide = [], []
    for i, p in enumerate(parts):
        units += base_of(p)
        if p.fmt.bits < bits:
            name = L.g.unique(f"{node.name}_widen{i}")
            L.g.tensors[name] = TensorInfo(name, p.shape, Fmt(bits, p.fmt.frac), scale=p.scale)
            L.add(Requant(name=L.g.unique(f"{node.name}_widen{i}"), inputs=[p.name], outputs=[name], c=p.shape[2],
                          pixels=p.shape[0] * p.shape[1], in_w=p.fmt.bits, out_w=bits, shift=0))
            p = L.g.tensors[name]
        wide.append(p)
    cur = wide[0]
    for i, p in enumerate(wide[1:], 1):
        last = i == len(wide) - 1
        shape = (cur.shape[0], cur.shape[1], cur.shape[2] + p.shape[2])
        name = L.new_tensor(node.output[0], shape, Fmt(bits, 0)) if last else L.g.unique(f"{node.name}_part{i}")
        if not last:
            L.g.tensors[name] = TensorInfo(name, shape, Fmt(bits, 0))
        L.g.tensors[name].scale = tuple(units[:shape[2]])
        L.add(Concat(name=L.g.unique(node.name), inputs=[cur.name, p.name], outputs=[name], h=shape[0],
                     w=shape[1], c1=cur.shape[2], c2=p.shape[2], elem_w=bits, signed=True))
        cur = L.g.tensors[name]


@lowers("Split")
def _split(L: Lowerer, node):
    a = _attrs(node)
    if a.get("axis") != 1:
        raise _err(node, "only channel splits (axis 1)")
    src = L.info(node.input[0])
    sizes = [L.shape_hwc(o)[2] for o in node.output]
    fmt = src.fmt
    elem_w = fmt.width
    cur = src
    for i, o in enumerate(node.output[:-1]):
        rest = cur.shape[2] - sizes[i]
        a_name = L.new_tensor(o, (src.shape[0], src.shape[1], sizes[i]), fmt)
        last = i == len(node.output) - 2
        if last:
            b_name = L.new_tensor(node.output[-1], (src.shape[0], src.shape[1], rest), fmt)
        else:
            b_name = L.g.unique(f"{node.name}_rest{i}")
            L.g.tensors[b_name] = TensorInfo(b_name, (src.shape[0], src.shape[1], rest), fmt)
        L.add(Split(name=L.g.unique(node.name), inputs=[cur.name], outputs=[a_name, b_name], h=src.shape[0],
                    w=src.shape[1], c1=sizes[i], c2=rest, elem_w=elem_w, signed=not fmt.bipolar))
        cur = L.g.tensors[b_name]


@lowers("Identity")
def _identity(L: Lowerer, node):
    L.env[node.output[0]] = L.env[node.input[0]]
    L.g.onnx_names[node.output[0]] = L.env[node.input[0]]


def lower(path_or_model, source: str = "") -> HwGraph:
    """QONNX file (or cleaned ModelWrapper) -> hardware graph (1:1 lowering, before fusion and folding)."""
    mw = load_qonnx(path_or_model) if isinstance(path_or_model, (str, pathlib.Path)) else path_or_model
    return Lowerer(mw, source=str(path_or_model) if not source else source).run()


from binaryhpe.compile import lower_bnn  # noqa: E402,F401  (registers lowerings)
