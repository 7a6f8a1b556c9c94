"""Lowerings for BNN-PYNQ-style binary networks written in Brevitas (CNV, SFC/TFC-like).

Registered into ``compile.lower.LOWERINGS`` (``compile/lower.py`` imports this module at its end):

- ``BatchNormalization`` + ``BipolarQuant`` (BN then sign) -> one ``Threshold`` layer: ``y = x >= T_c`` (or
  ``x <= T_c`` for a negative BN scale). ``T_c`` is found by running the *actual* QONNX BN and BipolarQuant
  nodes (qonnx ``execute_onnx``, i.e. onnxruntime's float32) over every integer value the BN input can take,
  so the decision is bit-identical to the QONNX execution. The decision must be monotone in ``x``; a channel
  whose decision is constant gets a threshold beyond the range. BN feeding anything else is an error.
- ``MatMul`` / ``Gemm`` (fully connected) -> ``XnorMvu`` (binary inputs and weights) or ``FxpMvu``
  (fixed-point inputs: binary weights as 2-bit integers) over one 1x1 "pixel" with ``n`` = all inputs. The
  stream is channels-last (H, W, C) while ONNX's Flatten is (C, H, W): the weight columns are permuted.
  The MVU reads its producer's stream directly (``FcXnorMvu``/``FcFxpMvu``, mask tied to ones).
  A Gemm bias becomes an ``AddConst`` (exact fixed-point constants only).
- ``Flatten`` / ``Reshape`` (constant shape, to (1, n)) -> a view, no layer; only MatMul/Gemm may read it.
"""

from __future__ import annotations

import numpy as np

from binaryhpe.compile.graph import Fmt, TensorInfo
from binaryhpe.compile.kinds.base import clog2
from binaryhpe.compile.kinds.elementwise import AddConst, Threshold
from binaryhpe.compile.kinds.mvu import FcFxpMvu, FcXnorMvu
from binaryhpe.compile.lower_base import (
    MAX_WIDTH,
    Lowerer,
    _align_up,
    _attrs,
    _err,
    _scale_epilogue,
    fixed_point,
    lowers,
)

#: largest number of accumulator values evaluated per BatchNormalization (all channels at once)
MAX_THRESHOLD_SWEEP = 1 << 22



# ---------------------------------------------------------------------------------------------------------
# fully connected MVUs: the same kinds and RTL modules, reading a (H, W, C) stream as one 1x1 pixel

# ---------------------------------------------------------------------------------------------------------
# value ranges (for the threshold sweep)

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


# ---------------------------------------------------------------------------------------------------------
# BatchNormalization + BipolarQuant -> Threshold

def _eval_bn_sign(L: Lowerer, bn, bq, values: np.ndarray, c: int, rank: int) -> np.ndarray:
    """Run the QONNX BN and BipolarQuant nodes on ``values`` (float32, the BN input's real values) for every
    channel; return (len(values), c) booleans (True = +1)."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    m = values.size
    if rank == 4:
        shape = [1, c, m, 1]
        x = np.broadcast_to(values.reshape(1, 1, m, 1), shape)
    elif rank == 2:
        shape = [m, c]
        x = np.broadcast_to(values.reshape(m, 1), shape)
    else:
        raise _err(bn, f"BatchNormalization on a rank-{rank} tensor is not supported")
    inits = [n for n in list(bn.input[1:]) + list(bq.input[1:]) if n]
    graph = helper.make_graph(
        [bn, bq], "bn_sign_sweep",
        [helper.make_tensor_value_info(bn.input[0], TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(bq.output[0], TensorProto.FLOAT, shape)],
        value_info=[helper.make_tensor_value_info(bn.output[0], TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=list(L.mw.model.opset_import))
    sub = ModelWrapper(model)
    for n in inits:
        sub.set_initializer(n, L.const(n))
    y = execute_onnx(sub, {bn.input[0]: np.ascontiguousarray(x, dtype=np.float32)})[bq.output[0]]
    y = np.asarray(y).reshape(shape)
    y = y[0, :, :, 0].T if rank == 4 else y
    if not np.all((y == 1) | (y == -1)):
        raise _err(bq, "BipolarQuant after BatchNormalization must produce +-1 (scale 1)")
    return y > 0


@lowers("BatchNormalization")
def _batchnorm(L: Lowerer, node):
    bq = L.single_consumer(node, "BipolarQuant")
    if bq is None:
        cons = L.consumers(node.output[0])
        what = ", ".join(f"{c.name} ({c.op_type})" for c in cons) or "the graph output"
        raise _err(node, f"BatchNormalization must feed exactly one BipolarQuant (BN + sign become thresholds); "
                         f"it feeds {what}: fold it into a preceding layer or quantize it with BipolarQuant")
    scale = L.const(bq.input[1])
    if scale is None or np.any(np.asarray(scale) != 1.0):
        raise _err(bq, "binary activations must have scale 1")
    if any(L.const(n) is None for n in node.input[1:5]):
        raise _err(node, "BatchNormalization parameters must be constants")
    if _attrs(node).get("training_mode", 0):
        raise _err(node, "training-mode BatchNormalization is not supported")
    src = L.info(node.input[0])
    if src.fmt.bipolar:
        raise _err(node, "BatchNormalization of a bipolar tensor: put it after the matrix product")
    h, w, c = src.shape
    rank = len(L.tensor_shape(node.input[0]))
    lo, hi = _int_range(L, src.name)
    if (hi - lo + 1) * c > MAX_THRESHOLD_SWEEP:
        raise _err(node, f"input range {lo}..{hi} ({src.fmt}) is too wide to find thresholds by sweeping")
    ints = np.arange(lo, hi + 1, dtype=np.int64)
    vals = src.fmt.to_real(ints).astype(np.float32)
    if not np.array_equal(vals.astype(np.float64), src.fmt.to_real(ints)):
        raise _err(node, f"input values {src.fmt} are not exact in float32")
    dec = _eval_bn_sign(L, node, bq, vals, c, rank)  # (values, c)
    thr = np.zeros(c, dtype=np.int64)
    neg = np.zeros(c, dtype=np.int64)
    for ch in range(c):
        d = dec[:, ch]
        if d.all():
            thr[ch] = lo - 1  # always +1: a threshold below the range
            continue
        if not d.any():
            thr[ch] = hi + 1  # always -1: a threshold above the range
            continue
        steps = np.flatnonzero(d[1:] != d[:-1])
        if steps.size != 1:
            raise _err(node, f"channel {ch}: BN + sign is not monotone in the input ({steps.size} changes)")
        k = int(steps[0])  # decision changes between ints[k] and ints[k+1]
        if d[k + 1]:  # 0...0 1...1: x >= T
            thr[ch] = ints[k + 1]
        else:  # 1...1 0...0: x <= T (negative BN scale)
            thr[ch] = ints[k]
            neg[ch] = 1
    thr_w = max(clog2(max(abs(lo - 1), hi + 2)) + 1, 2)
    out = L.new_tensor(bq.output[0], (h, w, c), Fmt(1, 0, signed=False, bipolar=True))
    L.skip.add(bq.name)
    L.add(Threshold(name=L.g.unique(node.name), inputs=[src.name], outputs=[out], c=c, pixels=h * w,
                    in_w=src.fmt.bits, thr_w=thr_w, thresholds=thr, neg=neg))


# ---------------------------------------------------------------------------------------------------------
# Flatten / Reshape: a view read by MatMul/Gemm

def _view(L: Lowerer, node):
    src_name = node.input[0]
    if src_name in L.views:  # a view of a view
        base = L.views[src_name]["src"]
    else:
        base = src_name
    shp = L.tensor_shape(node.output[0])
    if shp is None or len(shp) != 2 or shp[0] != 1:
        raise _err(node, f"only flattening to (1, n) is supported (output shape {shp})")
    info = L.info(base)
    if int(np.prod(info.shape)) != int(shp[1]):
        raise _err(node, f"flattening {info.shape} to {shp} changes the element count")
    cons = L.consumers(node.output[0])
    bad = [c for c in cons if c.op_type not in ("MatMul", "Gemm", "Flatten", "Reshape")]
    if not cons or bad:
        what = ", ".join(f"{c.name} ({c.op_type})" for c in bad) or "the graph output"
        raise _err(node, f"a flattened tensor must be read only by MatMul/Gemm (fully connected layers); "
                         f"it is read by {what}")
    L.views[node.output[0]] = {"src": base}


@lowers("Flatten")
def _flatten(L: Lowerer, node):
    axis = _attrs(node).get("axis", 1)
    if axis != 1:
        raise _err(node, f"only Flatten with axis 1 is supported (axis {axis})")
    _view(L, node)


@lowers("Reshape")
def _reshape(L: Lowerer, node):
    if L.const(node.input[1]) is None:
        raise _err(node, "the target shape must be a constant")
    _view(L, node)


# ---------------------------------------------------------------------------------------------------------
# MatMul / Gemm -> fully connected MVU

def _fc_input(L: Lowerer, node) -> tuple[TensorInfo, np.ndarray]:
    """The hardware tensor feeding a fully connected layer and the permutation taking the stream's
    (H, W, C) element order to ONNX's flattened (C, H, W) order."""
    name = node.input[0]
    if name in L.views:
        src = L.info(L.views[name]["src"])
    else:
        shp = L.tensor_shape(name)
        if shp is None or len(shp) != 2 or shp[0] != 1:
            raise _err(node, f"the input must be a (1, n) vector (flatten it first); shape {shp}")
        src = L.info(name)
    h, w, c = src.shape
    perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
    return src, perm


@lowers("MatMul", "Gemm")
def _fc(L: Lowerer, node):
    if L.const(node.input[0]) is not None:
        raise _err(node, "the first operand must be the activation stream (constant x stream is not supported)")
    a = _attrs(node)
    if node.op_type == "Gemm":
        if a.get("transA", 0):
            raise _err(node, "transA = 1 is not supported")
        if float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
            raise _err(node, "alpha and beta must be 1 (put scales into the weight quantizer or a Mul)")
    src, perm = _fc_input(L, node)
    q, wscale, _wbits, bipolar_w = L.weight_of(node)
    q = np.asarray(q)
    if q.ndim != 2:
        raise _err(node, f"weights must be a matrix; shape {q.shape}")
    wmat = q.T if not (node.op_type == "Gemm" and a.get("transB", 0)) else q  # (cout, n) in ONNX order
    cout, n = wmat.shape
    if n != perm.size:
        raise _err(node, f"weight matrix has {n} inputs but the stream has {perm.size} elements")
    wmat = np.asarray(wmat)[:, perm]  # columns in stream (H, W, C) order
    # The MVU reads the whole (H, W, C) frame as one input vector, in stream order (no window generator;
    # lane legalization puts a width converter in front when the producer's lanes differ from SIMD).
    mvu_in = src.name
    xnor_kind, fxp_kind = FcXnorMvu, FcFxpMvu
    acc_name = L.g.unique(f"{node.name}_acc")
    if src.fmt.bipolar and bipolar_w:
        mvu = xnor_kind(name=L.g.unique(node.name), inputs=[mvu_in], outputs=[acc_name], n=n, cout=cout,
                        weights=wmat.astype(np.int64), pixels=1)
        L.g.tensors[acc_name] = TensorInfo(acc_name, (1, 1, cout), Fmt(mvu.acc_w, 0))
        L.add(mvu)
        out = _scale_epilogue(L, node, acc_name, wscale, cout)
    elif not src.fmt.bipolar:
        if bipolar_w:
            wq, wfrac = wmat.astype(np.int64), 0
        else:
            try:
                wq, wfrac, _ = fixed_point(np.asarray(wmat, dtype=np.float64))
            except ValueError as e:
                raise _err(node, f"the weights: {e}") from None
        wb = max(2, int(np.max(np.abs(wq))).bit_length() + 1) if wq.size else 2
        mvu = fxp_kind(name=L.g.unique(node.name), inputs=[mvu_in], outputs=[acc_name], n=n, cout=cout,
                       weights=wq, pixels=1, in_w=src.fmt.bits, w_w=wb)
        if mvu.acc_w > MAX_WIDTH:
            raise _err(node, f"accumulator needs {mvu.acc_w} bits (> {MAX_WIDTH})")
        L.g.tensors[acc_name] = TensorInfo(acc_name, (1, 1, cout), Fmt(mvu.acc_w, src.fmt.frac + wfrac))
        L.add(mvu)
        out = _scale_epilogue(L, node, acc_name, wscale, cout) if bipolar_w else acc_name
    else:
        raise _err(node, "binary (bipolar) inputs need binary (BipolarQuant) weights")
    if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
        out = _fc_bias(L, node, out, cout)
    L.env[node.output[0]] = out
    L.g.onnx_names[node.output[0]] = out


def _fc_bias(L: Lowerer, node, acc: str, cout: int) -> str:
    b = L.const(node.input[2])
    if b is None:
        raise _err(node, "the bias must be a constant")
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if b.size == 1:
        b = np.full(cout, b[0])
    if b.size != cout:
        raise _err(node, f"bias of {b.size} values for {cout} outputs")
    info = L.g.tensors[acc]
    try:
        q, frac, _ = fixed_point(b, 24)
    except ValueError as e:
        raise _err(node, f"the bias {e}: quantize it to a fixed-point value") from None
    if frac > 16:
        raise _err(node, f"the bias needs {frac} fraction bits: quantize it to a coarser fixed-point grid")
    info = _align_up(L, node, info, frac)  # an exact left shift of the accumulator where the bias needs it
    acc = info.name
    q = q << (info.fmt.frac - frac)
    cbits = max(2, int(np.max(np.abs(q))).bit_length() + 1)
    out_w = max(info.fmt.bits, cbits) + 1
    if out_w > MAX_WIDTH:
        raise _err(node, f"biased accumulator needs {out_w} bits (> {MAX_WIDTH})")
    name = L.g.unique(f"{node.name}_biased")
    L.g.tensors[name] = TensorInfo(name, info.shape, Fmt(out_w, info.fmt.frac))
    L.add(AddConst(name=L.g.unique(f"{node.name}_bias"), inputs=[acc], outputs=[name], c=cout, pixels=1,
                   in_w=info.fmt.bits, out_w=out_w, const_w=cbits, b=q))
    return name
