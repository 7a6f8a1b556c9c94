"""The lowering framework: the ``Lowerer`` that walks a cleaned QONNX graph, the registry of per-op lowerings
(``@lowers("OpType")``, ``LOWERINGS``), and the helpers the lowering modules share (``compile/lower.py``: the
generic ops; ``compile/lower_bnn.py``: BatchNorm, thresholds, fully connected layers). Both import this
module, neither imports the other's internals.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.graph import Fmt, HwGraph, TensorInfo
from binaryhpe.compile.kinds.elementwise import MulShift, Requant

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


