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
# ModelWrapper's initializer ValueInfos and qonnx's InferShapes on indices (shared with train/export.py)
from binaryhpe.qonnx_passes import InferShapesIndexed as _InferShapes
from binaryhpe.qonnx_passes import add_initializer_value_info as _add_initializer_value_info

MAX_CONST_BITS = 16
MAX_WIDTH = 32


class LoweringError(BinaryHPEError):
    pass


#: the float-chain functions of compile/lower_quant.py, registered there when it is imported (it imports this
#: module; a pending chain exists only after one of its functions made it): "materialize", "float_tail_error"
CHAIN_HOOKS: dict = {}


def _err(node, reason: str) -> LoweringError:
    e = LoweringError(f"cannot map node {node.name!r} (op type {node.op_type}): {reason}")
    e.node, e.op_type = node.name, node.op_type  # compile/partition.py moves a refused tail to the host
    return e


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


def load_qonnx(path, qonnx_passes: bool = False):
    """Load a QONNX file and clean it with qonnx's passes (the ones of qonnx.util.cleanup, keeping node
    names), then infer shapes.

    The result is the model that qonnx's ``ModelWrapper(path)``, ``ModelWrapper.transform`` (with its
    ``cleanup``) and ``InferShapes`` give, byte for byte (the same random names for duplicated parameters
    given the same ``random`` state), built with indices: qonnx looks each tensor up by a scan of the graph,
    which made loading a BiDRN-50 (2,369 nodes) take about two minutes. ``qonnx_passes=True`` runs qonnx's
    own passes instead (the reference the fast ones are checked against; benchmarks/compile_bidrn50.py)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import RemoveStaticGraphInputs
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

    p = pathlib.Path(path)
    if not p.is_file():
        raise BinaryHPEError(f"QONNX file not found: {p}")
    try:
        mw = ModelWrapper(str(p), fix_missing_initializer_valueinfo=qonnx_passes)
    except Exception as e:  # noqa: BLE001 - onnx raises many kinds
        raise BinaryHPEError(f"{p}: not a readable ONNX/QONNX file ({e})") from None
    if not qonnx_passes:
        _add_initializer_value_info(mw)  # what ModelWrapper(path) does by default, without its per-tensor scans
    transform = (lambda m, t: m.transform(t, make_deepcopy=False)) if qonnx_passes else _transform
    for n in mw.graph.node:  # qonnx's cleanup does the same: its custom ops live in its domain
        if n.op_type in ("Quant", "BipolarQuant", "Trunc"):
            n.domain = "qonnx.custom_op.general"
    # the passes of qonnx.util.cleanup that this graph needs (only when there is something for them to do),
    # keeping node names; each followed by qonnx's cleanup as ModelWrapper.transform runs it
    try:  # a graph these library passes cannot take is a malformed file: one line, not their traceback
        inits = {i.name for i in mw.graph.initializer}
        if len(mw.graph.input) > 1:
            mw = transform(mw, RemoveStaticGraphInputs())
        if any(n.op_type not in ("Quant", "BipolarQuant") and n.input and all(i in inits for i in n.input if i)
               for n in mw.graph.node):
            mw = transform(mw, FoldConstants(exclude_op_types=["Quant", "BipolarQuant", "QuantizeLinear",
                                                             "DequantizeLinear"]))
        if any(n.op_type == "Transpose" for n in mw.graph.node):
            mw = transform(mw, FoldTransposeIntoQuantInit())
        mw = transform(mw, NameUnnamedNodes())
        mw = transform(mw, InferShapes() if qonnx_passes else _InferShapes())
    except BinaryHPEError:
        raise
    except Exception as e:  # noqa: BLE001 - onnx and qonnx raise many kinds on malformed graphs
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")[:300]
        raise BinaryHPEError(f"{p}: qonnx's cleaning and ONNX shape inference fail on this graph "
                             f"({type(e).__name__}: {first}); check it with onnx.checker.check_model and import "
                             "the opset of every domain it uses") from None
    return mw


def _transform(mw, transformation):
    """``mw.transform(transformation, make_deepcopy=False)`` with qonnx's cleanup done by ``_CleanPasses``."""
    mw = mw.transform(transformation, make_deepcopy=False, cleanup=False)
    _CleanPasses(mw).run()
    return mw


class _CleanPasses:
    """``ModelWrapper.cleanup`` (RemoveUnusedTensors, RemoveStaticGraphInputs, SortGraph,
    SortCommutativeInputsInitializerLast, GiveUniqueParameterTensors, each as qonnx runs it) with the producer,
    initializer and ValueInfo lookups from indices instead of a scan of the graph each; the same model out,
    the same random parameter names drawn from qonnx's ``random_string`` in the same order."""

    def __init__(self, mw):
        self.mw = mw
        self.g = mw.graph

    def run(self) -> None:
        from qonnx.transformation.general import RemoveStaticGraphInputs

        self.remove_unused()
        self.mw.transform(RemoveStaticGraphInputs(), make_deepcopy=False, cleanup=False)  # scans the inputs only
        self.sort_graph()
        self.commutative_inits_last()
        self.unique_parameters()

    def _init_names(self) -> set:
        return {i.name for i in self.g.initializer}

    def remove_unused(self) -> None:
        used = {t for n in self.g.node for t in [*n.input, *n.output]}
        for container, field in ((self.g.initializer, "name"), (self.g.value_info, "name"),
                                 (self.g.quantization_annotation, "tensor_name")):
            for i in reversed(range(len(container))):
                if getattr(container[i], field) not in used:
                    del container[i]

    def sort_graph(self) -> None:
        from toposort import toposort_flatten

        nodes = list(self.g.node)
        if len(nodes) == 1:
            return
        producer: dict[str, int] = {}
        for idx, n in enumerate(nodes):
            for o in n.output:
                producer.setdefault(o, idx)
        sources = self._init_names() | {i.name for i in self.g.input}
        deps: dict[int, set] = {}
        for idx, n in enumerate(nodes):
            preds = [producer[i] for i in n.input if i in producer]
            if preds:
                deps[idx] = set(preds)
            elif any(i in sources for i in n.input):
                deps[idx] = set()
            # a node fed by nothing is dropped (unless another node reads it), as SortGraph does
        order = toposort_flatten(deps)
        if order == list(range(len(nodes))):
            return
        del self.g.node[:]
        self.g.node.extend(nodes[i] for i in order)

    def commutative_inits_last(self) -> None:
        inits = self._init_names()
        for n in self.g.node:
            if n.op_type in ("Add", "Mul", "And", "Or", "Xor", "Sum"):
                ordered = [i for i in n.input if i not in inits] + [i for i in n.input if i in inits]
                for k, name in enumerate(ordered):
                    if n.input[k] != name:
                        n.input[k] = name

    def unique_parameters(self) -> None:
        from onnx import TensorAnnotation, StringStringEntryProto, TensorProto, helper, numpy_helper
        from qonnx.core.datatype import DataType
        from qonnx.util.basic import random_string

        g = self.g
        inits = {}
        for init in g.initializer:
            inits.setdefault(init.name, init)
        names = {vi.name for vi in [*g.value_info, *g.input, *g.output]}
        vis = {}
        for vi in [*g.input, *g.output, *g.value_info]:
            vis.setdefault(vi.name, vi)
        annotations = {}
        for qa in g.quantization_annotation:
            annotations.setdefault(qa.tensor_name, qa)
        seen = set()
        for n in g.node:
            for idx, name in enumerate(list(n.input)):
                if name not in inits:
                    continue
                if name not in seen:
                    seen.add(name)
                    continue
                new = random_string()
                while new in names:
                    new = random_string()
                # ModelWrapper.set_initializer(new, get_initializer(name))
                proto = numpy_helper.from_array(numpy_helper.to_array(inits[name]))
                proto.name = new
                if new in inits:
                    g.initializer.remove(inits[new])
                g.initializer.append(proto)
                inits[new] = g.initializer[len(g.initializer) - 1]
                vi = helper.make_tensor_value_info(new, proto.data_type, list(proto.dims))
                g.value_info.append(vi)
                names.add(new)
                vis[new] = g.value_info[len(g.value_info) - 1]
                # set_tensor_datatype(new, get_tensor_datatype(name))
                dt = None
                qa = annotations.get(name)
                if qa is not None:
                    entry = next((e for e in qa.quant_parameter_tensor_names if e.key == "finn_datatype"), None)
                    if entry is not None:
                        dt = DataType[entry.value]
                if dt is None:
                    old_vi = vis.get(name)
                    elem = old_vi.type.tensor_type.elem_type if old_vi is not None else inits[name].data_type
                    dt = DataType[{TensorProto.FLOAT: "FLOAT32", TensorProto.FLOAT16: "FLOAT16"}.get(elem, "FLOAT32")]
                qa = annotations.get(new)
                if qa is None:
                    qa = TensorAnnotation()
                    qa.tensor_name = new
                    g.quantization_annotation.append(qa)
                    qa = annotations[new] = g.quantization_annotation[len(g.quantization_annotation) - 1]
                entry = next((e for e in qa.quant_parameter_tensor_names if e.key == "finn_datatype"), None)
                if entry is None:
                    entry = StringStringEntryProto()
                    entry.key, entry.value = "finn_datatype", dt.name
                    qa.quant_parameter_tensor_names.append(entry)
                else:
                    entry.value = dt.name
                n.input[idx] = new


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
        #: onnx tensor -> a pending float chain to the next quantizer (compile/lower_quant.py)
        self.chains: dict = {}
        self._producers: dict | None = None  # the graph index, built on first use (_index)

    # --- the QONNX graph, looked up through one index built once (qonnx's lookups scan the graph each) ----
    def _index(self) -> None:
        g = self.mw.graph
        self._producers, self._consumers, self._shapes = {}, {}, {}
        for n in g.node:
            for t in n.output:
                self._producers.setdefault(t, n)
            for t in n.input:
                self._consumers.setdefault(t, []).append(n)
        for vi in [*g.input, *g.output, *g.value_info]:
            self._shapes.setdefault(vi.name, [d.dim_value for d in vi.type.tensor_type.shape.dim])

    def producer(self, tensor: str):
        """The first node writing ``tensor`` (``ModelWrapper.find_producer``)."""
        if self._producers is None:
            self._index()
        return self._producers.get(tensor)

    def consumers(self, tensor: str) -> list:
        """The nodes reading ``tensor`` in graph order, once per input that reads it
        (``ModelWrapper.find_consumers``)."""
        if self._producers is None:
            self._index()
        return list(self._consumers.get(tensor, []))

    def tensor_shape(self, tensor: str) -> list | None:
        """The shape of ``tensor`` from its ValueInfo, else its initializer's (``ModelWrapper.get_tensor_shape``);
        None when it has neither."""
        if self._producers is None:
            self._index()
        s = self._shapes.get(tensor)
        if s is not None:
            return list(s)
        init = self.const(tensor)
        return None if init is None else list(init.shape)

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
        if onnx_name in self.chains:  # a float chain read by a layer that is not a quantizer
            return CHAIN_HOOKS["materialize"](self, onnx_name)
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
        cons = self.consumers(node.output[0])
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
        prod = self.producer(name)
        if prod is None or prod.op_type not in ("Quant", "BipolarQuant") or self.const(prod.input[0]) is None:
            raise _err(node, "weights must be an initializer quantized by Quant or BipolarQuant")
        w = self.const(prod.input[0]).astype(np.float64)
        if not np.all(np.isfinite(w)):
            raise _err(node, f"weights {prod.input[0]!r} hold non-finite values (NaN/inf): fix the trained model")
        scale = self.const(prod.input[1])
        if prod.op_type == "BipolarQuant":
            q = np.where(w >= 0, 1, -1).astype(np.int64)
            return q, scale, 1, True
        zp, bw = self.const(prod.input[2]), self.const(prod.input[3])
        attrs = {a.name: a for a in prod.attribute}
        if scale is None or zp is None or bw is None:
            raise _err(prod, "weight scale, zero point and bit width must be constants")
        if np.any(zp != 0):
            raise _err(prod, "weight zero point must be 0")
        signed = attrs["signed"].i if "signed" in attrs else 1
        narrow = attrs["narrow"].i if "narrow" in attrs else 0
        mode = attrs["rounding_mode"].s.decode() if "rounding_mode" in attrs else "ROUND"
        sc = np.asarray(scale, dtype=np.float64)
        if np.all(sc > 0) and np.all(np.exp2(np.round(np.log2(sc))) == sc):
            qv = quant(w, scale, zp, bw, signed, narrow, mode)  # power-of-two scales: exact fixed-point weights
            return qv, None, int(bw), False
        # a float scale (per tensor or per output channel): the integers, and the scale kept exactly
        # (w / scale in float64 is the exact quotient's correctly rounded value; ROUND's ties are exact quotients)
        if not np.all(np.isfinite(sc)) or not np.all(sc > 0):
            raise _err(prod, "weight scales must be positive and finite")
        qi = quant(w, scale, zp, bw, signed, narrow, mode) / sc
        qi = np.round(qi).astype(np.int64)
        if int(bw) > MAX_CONST_BITS:
            raise _err(prod, f"{int(bw)}-bit weights are wider than {MAX_CONST_BITS} bits")
        return qi, sc, int(bw), False  # sc broadcasts to the weights (the consumer takes its per-output part)

    # --- driver ------------------------------------------------------------------------------------
    def run(self) -> HwGraph:
        g = self.mw.graph
        if len(g.input) != 1 or len(g.output) != 1:
            raise BinaryHPEError("the hardware flow takes graphs with exactly one input and one output")
        iname = g.input[0].name
        self.iname = iname
        shape = self.tensor_shape(iname)
        if shape is None or len(shape) not in (2, 4) or shape[0] != 1:
            raise BinaryHPEError(f"graph input {iname!r} must be (1, C, H, W) or (1, N); got {shape}")
        for node in g.node:
            if node.name in self.skip:
                continue
            fn = LOWERINGS.get(node.op_type)
            if fn is None:
                raise _err(node, "no hardware layer kind implements this op type "
                                 f"(supported: {', '.join(sorted(LOWERINGS))})")
            try:
                fn(self, node)
            except BinaryHPEError as e:  # the node being lowered is the one at fault (compile/partition.py)
                if getattr(e, "node", None) is None:
                    e.node, e.op_type = node.name, node.op_type
                raise
        oname = g.output[0].name
        if oname in self.chains:  # float ops after the last integer tensor: post-processing for the host
            raise CHAIN_HOOKS["float_tail_error"](self, oname)
        if oname not in self.env:
            e = BinaryHPEError(f"graph output {oname!r} was not produced by a hardware layer")
            prod = self.producer(oname)
            e.node, e.op_type = (prod.name, prod.op_type) if prod is not None else (None, None)
            raise e
        self.g.output = self.env[oname]
        self.g.toposort()
        return self.g

    def shape_hwc(self, onnx_name: str) -> tuple:
        s = self.tensor_shape(onnx_name)
        if s is None:
            raise BinaryHPEError(f"tensor {onnx_name!r} has no shape (no ValueInfo after shape inference)")
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


# ---------------------------------------------------------------------------------------------------------
# value ranges (the thresholds' search range)

def _int_range(L: Lowerer, tensor: str) -> tuple[int, int]:
    """A bound [lo, hi] on the integers a hardware tensor can hold: its producer's ``value_range`` (an
    accumulator over n binary synapses lies in [-n, n]; an AddConst shifts its input's range; ...) given
    its inputs' ranges, within the format's range; the format's range where the kind knows nothing tighter."""
    info = L.g.tensors[tensor]
    lo, hi = -(1 << (info.fmt.bits - 1)), (1 << (info.fmt.bits - 1)) - 1
    prod = L.g.producer(tensor)
    if prod is None:
        return lo, hi
    r = prod.value_range(_Ranges(L, prod.inputs))
    if r is None:
        return lo, hi
    return max(lo, r[0]), min(hi, r[1])


class _Ranges:
    """The input ranges of a layer, computed when a kind asks for one (most kinds never do)."""

    def __init__(self, L: Lowerer, inputs: list[str]):
        self.L, self.inputs = L, inputs

    def __getitem__(self, i: int) -> tuple[int, int]:
        return _int_range(self.L, self.inputs[i])

    def __len__(self) -> int:
        return len(self.inputs)
