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

from binaryhpe import BinaryHPEError
from binaryhpe.compile.graph import Fmt, HwGraph, TensorInfo
from binaryhpe.compile.kinds.base import clog2
from binaryhpe.compile.kinds.elementwise import AddConst, JoinAdd, MulShift, Prelu, Requant, Sign
from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
from binaryhpe.compile.kinds.plumbing import Concat, Split
from binaryhpe.compile.kinds.pool import Pool
from binaryhpe.compile.kinds.swg import SlidingWindow

MAX_CONST_BITS = 16
MAX_WIDTH = 32


class LoweringError(BinaryHPEError):
    pass


def _err(node, reason: str) -> LoweringError:
    return LoweringError(f"cannot map node {node.name!r} (op type {node.op_type}): {reason}")


class NameUnnamedNodes:
    """Give a node without a name ``<OpType>_<index>``; named nodes keep the names the user's file has,
    so that errors point at what the user can find (qonnx's GiveUniqueNodeNames renames every node)."""

    def apply(self, model):
        seen = {n.name for n in model.graph.node if n.name}
        for i, n in enumerate(model.graph.node):
            if not n.name:
                name = f"{n.op_type}_{i}"
                while name in seen:
                    name += "_"
                n.name = name
                seen.add(name)
        return model, False


def load_qonnx(path):
    """Load a QONNX file and clean it with qonnx's passes (the ones of qonnx.util.cleanup, keeping node
    names), then infer shapes."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import RemoveStaticGraphInputs
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

    p = pathlib.Path(path)
    if not p.is_file():
        raise BinaryHPEError(f"QONNX file not found: {p}")
    try:
        mw = ModelWrapper(str(p))
    except Exception as e:  # noqa: BLE001 - onnx raises many kinds
        raise BinaryHPEError(f"{p}: not a readable ONNX/QONNX file ({e})") from None
    for n in mw.graph.node:  # qonnx's cleanup does the same: its custom ops live in its domain
        if n.op_type in ("Quant", "BipolarQuant", "Trunc"):
            n.domain = "qonnx.custom_op.general"
    # the passes of qonnx.util.cleanup that this graph needs (each is quadratic in the graph size, so only
    # when there is something for it to do), keeping node names
    inits = {i.name for i in mw.graph.initializer}
    if len(mw.graph.input) > 1:
        mw = mw.transform(RemoveStaticGraphInputs(), make_deepcopy=False)
    if any(n.op_type not in ("Quant", "BipolarQuant") and n.input and all(i in inits for i in n.input if i)
           for n in mw.graph.node):
        mw = mw.transform(FoldConstants(exclude_op_types=["Quant", "BipolarQuant", "QuantizeLinear",
                                                          "DequantizeLinear"]), make_deepcopy=False)
    if any(n.op_type == "Transpose" for n in mw.graph.node):
        mw = mw.transform(FoldTransposeIntoQuantInit(), make_deepcopy=False)
    mw = mw.transform(NameUnnamedNodes(), make_deepcopy=False)
    mw = mw.transform(InferShapes(), make_deepcopy=False)
    return mw


def fixed_point(values: np.ndarray, max_bits: int = MAX_CONST_BITS) -> tuple[np.ndarray, int, int]:
    """Exact representation ``values = q * 2^-frac`` with the smallest ``frac``; returns (q, frac, bits)."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("constant is not finite")
    for frac in range(-16, 48):
        q = v * 2.0**frac
        if np.array_equal(q, np.round(q)):
            q = q.astype(np.int64)
            amax = int(np.max(np.abs(q))) if q.size else 0
            bits = max(2, amax.bit_length() + 1)
            if bits > max_bits:
                break
            return q, frac, bits
    raise ValueError(f"constant is not a fixed-point value of at most {max_bits} bits")


class Lowerer:
    def __init__(self, mw, source: str = ""):
        self.mw = mw
        self.g = HwGraph(source=source)
        self.env: dict[str, str] = {}  # onnx tensor -> hw tensor
        self.views: dict[str, dict] = {}  # onnx tensor -> flattening view info (before MatMul/Gemm)
        self.skip: set[str] = set()  # nodes consumed by a fused lowering

    # --- helpers -----------------------------------------------------------------------------------
    def const(self, name: str):
        if not hasattr(self, "_inits"):
            from onnx import numpy_helper

            self._inits = {i.name: i for i in self.mw.graph.initializer}
            self._arrays = {}
            self._np = numpy_helper
        if name not in self._inits:
            return None
        if name not in self._arrays:
            self._arrays[name] = self._np.to_array(self._inits[name])
        return self._arrays[name]

    def info(self, onnx_name: str) -> TensorInfo:
        if onnx_name not in self.env:
            raise BinaryHPEError(f"tensor {onnx_name!r} has no hardware value (unsupported producer)")
        return self.g.tensors[self.env[onnx_name]]

    def new_tensor(self, onnx_name: str, shape, fmt: Fmt, windowed: bool = False) -> str:
        name = self.g.unique(onnx_name)
        self.g.tensors[name] = TensorInfo(name, tuple(int(s) for s in shape), fmt, windowed=windowed)
        self.env[onnx_name] = name
        self.g.onnx_names[onnx_name] = name
        return name

    def add(self, layer) -> None:
        self.g.layers.append(layer)

    def single_consumer(self, node, op_type: str | None = None):
        cons = self.mw.find_consumers(node.output[0]) or []
        if len(cons) != 1:
            return None
        if op_type is not None and cons[0].op_type != op_type:
            return None
        return cons[0]

    def weight_of(self, node, idx: int = 1):
        """Integer weights and their frac of a Conv/MatMul/Gemm input: a (Bipolar)Quant of an initializer."""
        from qonnx.custom_op.general.quant import quant

        name = node.input[idx]
        init = self.const(name)
        if init is not None:
            try:
                q, frac, bits = fixed_point(init, MAX_CONST_BITS)
            except ValueError:
                raise _err(node, "weights are full-precision floats: quantize them (Quant/BipolarQuant)") from None
            return q, frac, bits, False
        prod = self.mw.find_producer(name)
        if prod is None or prod.op_type not in ("Quant", "BipolarQuant") or self.const(prod.input[0]) is None:
            raise _err(node, "weights must be an initializer quantized by Quant or BipolarQuant")
        w = self.const(prod.input[0]).astype(np.float64)
        scale = self.const(prod.input[1])
        if prod.op_type == "BipolarQuant":
            q = np.where(w >= 0, 1, -1).astype(np.int64)
            return q, scale, 1, True
        zp, bw = self.const(prod.input[2]), self.const(prod.input[3])
        attrs = {a.name: a for a in prod.attribute}
        if np.any(zp != 0):
            raise _err(prod, "weight zero point must be 0")
        signed = attrs["signed"].i if "signed" in attrs else 1
        narrow = attrs["narrow"].i if "narrow" in attrs else 0
        mode = attrs["rounding_mode"].s.decode() if "rounding_mode" in attrs else "ROUND"
        qv = quant(w, scale, zp, bw, signed, narrow, mode)
        return qv, None, int(bw), False

    # --- driver ------------------------------------------------------------------------------------
    def run(self) -> HwGraph:
        g = self.mw.graph
        if len(g.input) != 1 or len(g.output) != 1:
            raise BinaryHPEError("the hardware flow takes graphs with exactly one input and one output")
        iname = g.input[0].name
        self.iname = iname
        shape = self.mw.get_tensor_shape(iname)
        if len(shape) != 4 or shape[0] != 1:
            raise BinaryHPEError(f"graph input {iname!r} must be (1, C, H, W); got {shape}")
        for node in g.node:
            if node.name in self.skip:
                continue
            fn = LOWERINGS.get(node.op_type)
            if fn is None:
                raise _err(node, "no hardware layer kind implements this op type "
                                 f"(supported: {', '.join(sorted(LOWERINGS))})")
            fn(self, node)
        oname = g.output[0].name
        if oname not in self.env:
            raise BinaryHPEError(f"graph output {oname!r} was not produced by a hardware layer")
        self.g.output = self.env[oname]
        self.g.toposort()
        return self.g

    def shape_hwc(self, onnx_name: str) -> tuple:
        if not hasattr(self, "_shapes"):
            g = self.mw.graph
            self._shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
                            for vi in [*g.input, *g.output, *g.value_info]}
        s = self._shapes.get(onnx_name) or self.mw.get_tensor_shape(onnx_name)
        if len(s) == 4:
            return (s[2], s[3], s[1])
        if len(s) == 2:
            return (1, 1, s[1])
        raise BinaryHPEError(f"tensor {onnx_name!r}: unsupported rank-{len(s)} shape {s}")


# ---------------------------------------------------------------------------------------------------------
# lowering functions, one per op type

LOWERINGS = {}


def lowers(*ops):
    def deco(fn):
        for op in ops:
            LOWERINGS[op] = fn
        return fn
    return deco


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


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
    elem_w = 1 if src.fmt.bipolar else src.fmt.bits
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


def _scale_epilogue(L: Lowerer, node, acc_name: str, scale, cout: int) -> str:
    """Apply a (per-channel) weight scale to an integer accumulator: a format change for a power of two,
    else a MulShift with the exact fixed-point mantissas."""
    sc = np.asarray(scale, dtype=np.float64).reshape(-1)
    if sc.size == 1:
        sc = np.full(cout, sc[0])
    acc = L.g.tensors[acc_name]
    if np.all(sc == sc[0]) and sc[0] > 0 and math.log2(sc[0]) == round(math.log2(sc[0])):
        acc.fmt = Fmt(acc.fmt.bits, acc.fmt.frac - int(round(math.log2(sc[0]))))
        return acc_name
    try:
        m, frac, mbits = fixed_point(sc)
    except ValueError:
        raise _err(node, "per-channel weight scale is not an exact fixed-point constant") from None
    out = L.g.unique(f"{node.name}_scaled")
    L.g.tensors[out] = TensorInfo(out, acc.shape, Fmt(acc.fmt.bits + mbits, acc.fmt.frac + frac))
    L.add(MulShift(name=L.g.unique(f"{node.name}_scale"), inputs=[acc_name], outputs=[out], c=cout,
                   pixels=acc.shape[0] * acc.shape[1], in_w=acc.fmt.bits, out_w=acc.fmt.bits + mbits,
                   const_w=mbits, m=m, shift=0))
    return out


@lowers("Conv")
def _conv(L: Lowerer, node):
    a = _attrs(node)
    k, s, pad = _conv_geometry(node, a)
    src = L.info(node.input[0])
    q, wscale, wbits, bipolar_w = L.weight_of(node)
    cout = q.shape[0]
    if len(node.input) > 2 and node.input[2]:
        raise _err(node, "convolution bias is not supported (export without bias; BN/epilogues add constants)")
    # (Cout, Cin, K, K) -> (Cout, K*K*Cin) in the SWG's (ky, kx, c) order
    wmat = np.transpose(q, (0, 2, 3, 1)).reshape(cout, -1).astype(np.int64)
    win = _swg(L, node, src, k, s, pad)
    oh, ow, n = L.g.tensors[win].shape
    out_shape = (oh, ow, cout)
    acc_name = L.g.unique(f"{node.name}_acc")
    if src.fmt.bipolar and bipolar_w:
        mvu = XnorMvu(name=L.g.unique(node.name), inputs=[win], outputs=[acc_name], n=n, cout=cout,
                      weights=wmat, pixels=oh * ow)
        L.g.tensors[acc_name] = TensorInfo(acc_name, out_shape, Fmt(mvu.acc_w, 0))
        L.add(mvu)
        out = _scale_epilogue(L, node, acc_name, wscale, cout)
    elif not src.fmt.bipolar and not bipolar_w:
        wq, wfrac, wb = fixed_point(np.asarray(q, dtype=np.float64), MAX_CONST_BITS)
        wmat = np.transpose(wq, (0, 2, 3, 1)).reshape(cout, -1)
        mvu = FxpMvu(name=L.g.unique(node.name), inputs=[win], outputs=[acc_name], n=n, cout=cout,
                     weights=wmat, pixels=oh * ow, in_w=src.fmt.bits, w_w=max(wb, 2))
        if mvu.acc_w > MAX_WIDTH:
            raise _err(node, f"accumulator needs {mvu.acc_w} bits (> {MAX_WIDTH})")
        L.g.tensors[acc_name] = TensorInfo(acc_name, out_shape, Fmt(mvu.acc_w, src.fmt.frac + wfrac))
        L.add(mvu)
        out = acc_name
    elif not src.fmt.bipolar and bipolar_w:
        # fixed-point input, binary weights (an 8-bit first layer of a BNN-PYNQ CNV): +-1 as 2-bit integers
        mvu = FxpMvu(name=L.g.unique(node.name), inputs=[win], outputs=[acc_name], n=n, cout=cout,
                     weights=wmat, pixels=oh * ow, in_w=src.fmt.bits, w_w=2)
        if mvu.acc_w > MAX_WIDTH:
            raise _err(node, f"accumulator needs {mvu.acc_w} bits (> {MAX_WIDTH})")
        L.g.tensors[acc_name] = TensorInfo(acc_name, out_shape, Fmt(mvu.acc_w, src.fmt.frac))
        L.add(mvu)
        out = _scale_epilogue(L, node, acc_name, wscale, cout)
    else:
        raise _err(node, "binary (BipolarQuant) inputs need binary weights")
    L.env[node.output[0]] = out
    L.g.onnx_names[node.output[0]] = out


def _per_channel(node, c, cout: int) -> np.ndarray:
    v = np.asarray(c, dtype=np.float64)
    if v.size == 1:
        return np.full(cout, float(v.reshape(-1)[0]))
    # per channel in NCHW broadcasting: (C,), (C, 1, 1) or (1, C, 1, 1)
    if v.size == cout and (v.ndim == 1 or (v.ndim == 3 and v.shape[0] == cout) or (v.ndim == 4 and v.shape[1] == cout)):
        return v.reshape(-1)
    raise _err(node, f"constant of shape {v.shape} is not per-tensor or per-channel for {cout} channels")


def _align_up(L: Lowerer, node, src: TensorInfo, frac: int) -> TensorInfo:
    """Exact left shift of ``src`` to ``frac`` fraction bits (no-op when already there)."""
    if frac <= src.fmt.frac:
        return src
    d = frac - src.fmt.frac
    name = L.g.unique(f"{node.name}_align")
    L.g.tensors[name] = TensorInfo(name, src.shape, Fmt(src.fmt.bits + d, frac))
    L.add(Requant(name=L.g.unique(f"{node.name}_align"), inputs=[src.name], outputs=[name], c=src.shape[2],
                  pixels=src.shape[0] * src.shape[1], in_w=src.fmt.bits, out_w=src.fmt.bits + d, shift=-d))
    return L.g.tensors[name]


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
    elem_w = 1 if src.fmt.bipolar else src.fmt.bits
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
    elem_w = 1 if fmt.bipolar else fmt.bits
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
    elem_w = 1 if fmt.bipolar else fmt.bits
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
