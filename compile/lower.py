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


@lowers("Quant")
def _quant(L: Lowerer, node):
    if L.const(node.input[0]) is not None:
        return  # a weight quantizer: read by its consumer
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
    if node.input[0] == L.iname:  # the network input: the host quantizes, hardware sees integers
        name = L.new_tensor(node.output[0], shape, out_fmt)
        L.g.input = name
        L.g.input_quant = {"scale": s, "bits": bits, "signed": signed, "rounding_mode": mode}
        return
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


@lowers("BipolarQuant")
def _bipolar(L: Lowerer, node):
    if L.const(node.input[0]) is not None:
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
    if len(node.input) > 2 and node.input[2]:
        raise _err(node, "convolution bias is not supported (export without bias; BN/epilogues add constants)")
    out = _conv_mvu(L, node, src, _swg(L, node, src, k, s, pad), q, wscale, bipolar_w)
    L.env[node.output[0]] = out
    L.g.onnx_names[node.output[0]] = out


def _conv_mvu(L: Lowerer, node, src: TensorInfo, win: str, q, wscale, bipolar_w: bool) -> str:
    """The MVU (and its weight-scale epilogue) of a convolution with integer weights ``q`` (Cout, Cin, K, K)
    over the windows ``win`` of ``src``; returns the output tensor."""
    cout = q.shape[0]
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
        return _scale_epilogue(L, node, acc_name, wscale, cout)
    if not src.fmt.bipolar and not bipolar_w:
        wq, wfrac, wb = fixed_point(np.asarray(q, dtype=np.float64), MAX_CONST_BITS)
        wmat = np.transpose(wq, (0, 2, 3, 1)).reshape(cout, -1)
        mvu = FxpMvu(name=L.g.unique(node.name), inputs=[win], outputs=[acc_name], n=n, cout=cout,
                     weights=wmat, pixels=oh * ow, in_w=src.fmt.bits, w_w=max(wb, 2))
        if mvu.acc_w > MAX_WIDTH:
            raise _err(node, f"accumulator needs {mvu.acc_w} bits (> {MAX_WIDTH})")
        L.g.tensors[acc_name] = TensorInfo(acc_name, out_shape, Fmt(mvu.acc_w, src.fmt.frac + wfrac))
        L.add(mvu)
        return acc_name
    if not src.fmt.bipolar and bipolar_w:
        # fixed-point input, binary weights (an 8-bit first layer of a BNN-PYNQ CNV): +-1 as 2-bit integers
        mvu = FxpMvu(name=L.g.unique(node.name), inputs=[win], outputs=[acc_name], n=n, cout=cout,
                     weights=wmat, pixels=oh * ow, in_w=src.fmt.bits, w_w=2)
        if mvu.acc_w > MAX_WIDTH:
            raise _err(node, f"accumulator needs {mvu.acc_w} bits (> {MAX_WIDTH})")
        L.g.tensors[acc_name] = TensorInfo(acc_name, out_shape, Fmt(mvu.acc_w, src.fmt.frac))
        L.add(mvu)
        return _scale_epilogue(L, node, acc_name, wscale, cout)
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


@lowers("Mul")
def _mul(L: Lowerer, node):
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
    src, c, const_first = _tensor_operands(L, node)
    if src is None:  # two streams
        a, b = L.info(node.input[0]), L.info(node.input[1])
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


@lowers("PRelu")
def _prelu(L: Lowerer, node):
    src = L.info(node.input[0])
    slope = L.const(node.input[1])
    if slope is None:
        raise _err(node, "the slope must be a constant")
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
    if mode == "sum" and (pad or k & (k - 1)):
        raise _err(node, "average pooling must be unpadded with a power-of-two window (sum and shift)")
    elem_w = src.fmt.width
    try:
        pool = Pool(name=L.g.unique(node.name), inputs=[src.name], outputs=[], h=h, w=w, c=c, k=k, s=s, pad=pad,
                    mode=mode, elem_w=elem_w, signed=not src.fmt.bipolar)
    except ValueError as e:
        raise _err(node, str(e)) from None
    if mode == "max":
        fmt = src.fmt
    else:
        sh = int(math.log2(k * k))
        fmt = Fmt(pool.out_w if pool.out_w else elem_w + clog2(k * k), src.fmt.frac + sh)
    name = L.new_tensor(node.output[0], L.shape_hwc(node.output[0]), fmt)
    pool.outputs = [name]
    L.add(pool)


@lowers("Concat")
def _concat(L: Lowerer, node):
    if _attrs(node).get("axis") != 1:
        raise _err(node, "only channel concatenation (axis 1)")
    parts = [L.info(n) for n in node.input]
    fmts = {p.fmt for p in parts}
    if len(fmts) != 1:
        raise _err(node, f"operands have different formats {sorted(map(str, fmts))}")
    fmt = parts[0].fmt
    elem_w = fmt.width
    cur = parts[0]
    for i, p in enumerate(parts[1:], 1):
        last = i == len(parts) - 1
        shape = (cur.shape[0], cur.shape[1], cur.shape[2] + p.shape[2])
        name = L.new_tensor(node.output[0], shape, fmt) if last else L.g.unique(f"{node.name}_part{i}")
        if not last:
            L.g.tensors[name] = TensorInfo(name, shape, fmt)
        L.add(Concat(name=L.g.unique(node.name), inputs=[cur.name, p.name], outputs=[name], h=shape[0],
                     w=shape[1], c1=cur.shape[2], c2=p.shape[2], elem_w=elem_w, signed=not fmt.bipolar))
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
