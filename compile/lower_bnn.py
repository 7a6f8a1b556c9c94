"""Lowerings for BNN-PYNQ-style binary networks written in Brevitas (CNV, SFC/TFC-like).

Registered into ``compile.lower.LOWERINGS`` (``compile/lower.py`` imports this module at its end):

- ``BatchNormalization`` -> a step of the chain to the next quantizer (``compile/lower_quant.py``): BN + sign
  becomes one ``Threshold`` layer, BN + a multi-bit Quant a ``MultiThreshold`` (or an exact multiply-add-shift),
  computed exactly (rational arithmetic, the square root compared by squaring), never by sampling.
- ``MatMul`` / ``Gemm`` (fully connected) -> ``XnorMvu`` (binary inputs and weights) or ``FxpMvu``
  (fixed-point inputs: binary weights as 2-bit integers) over one 1x1 "pixel" with ``n`` = all inputs. The
  stream is channels-last (H, W, C) while ONNX's Flatten is (C, H, W): the weight columns are permuted.
  The MVU reads its producer's stream directly (``FcXnorMvu``/``FcFxpMvu``, mask tied to ones).
  A Gemm bias becomes an ``AddConst`` where it is on the accumulator's grid, else a step of the chain.
- ``Flatten`` / ``Reshape`` (constant shape, to (1, n)) -> a view, no layer; only MatMul/Gemm may read it.
"""

from __future__ import annotations

import numpy as np

from binaryhpe.compile.graph import Fmt, TensorInfo
from binaryhpe.compile.kinds.elementwise import AddConst
from binaryhpe.compile.kinds.mvu import FcFxpMvu, FcXnorMvu
from binaryhpe.compile.lower_base import (  # noqa: F401 - _int_range: the value ranges, public here as before
    MAX_WIDTH,
    _int_range,
    Lowerer,
    _align_up,
    _attrs,
    _err,
    fixed_point,
    lowers,
)

#: largest number of accumulator values evaluated per BatchNormalization (all channels at once)
MAX_THRESHOLD_SWEEP = 1 << 22



# ---------------------------------------------------------------------------------------------------------
# fully connected MVUs: the same kinds and RTL modules, reading a (H, W, C) stream as one 1x1 pixel

# ---------------------------------------------------------------------------------------------------------
# value ranges (for the threshold sweep)

# ---------------------------------------------------------------------------------------------------------
# BatchNormalization + BipolarQuant -> Threshold

@lowers("BatchNormalization")
def _batchnorm(L: Lowerer, node):
    """Inference BatchNormalization ``gamma (x - mean) / sqrt(var + eps) + beta``: a step of the chain to the next
    quantizer (compile/lower_quant.py), with its parameters as exact rationals and the square root kept exact."""
    from fractions import Fraction

    from binaryhpe.compile.lower_quant import chain_of, extend, per_channel_fr

    if any(L.const(n) is None for n in node.input[1:5]):
        raise _err(node, "BatchNormalization parameters must be constants")
    if _attrs(node).get("training_mode", 0):
        raise _err(node, "training-mode BatchNormalization is not supported")
    if node.input[0] not in L.chains:
        src = L.info(node.input[0])
        if src.fmt.bipolar:
            raise _err(node, "BatchNormalization of a bipolar tensor: put it after the matrix product")
    c = chain_of(L, node.input[0]).c
    gamma, beta, mean, var = (per_channel_fr(node, L.const(n), c) for n in node.input[1:5])
    eps = Fraction(float(np.float32(_attrs(node).get("epsilon", 1e-5))))
    d = [v + eps for v in var]
    if any(x <= 0 for x in d):
        raise _err(node, "variance + epsilon must be positive")
    extend(L, node, node.input[0], ("bn", gamma, mean, d, beta))


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
    from binaryhpe.compile.lower_quant import add_bias, bias_of, scale_accumulator, weight_scale_per_out

    trans = node.op_type == "Gemm" and a.get("transB", 0)
    wsc = weight_scale_per_out(node, wscale, tuple(q.shape), 0 if trans else 1)
    if src.fmt.bipolar and bipolar_w:
        mvu = xnor_kind(name=L.g.unique(node.name), inputs=[mvu_in], outputs=[acc_name], n=n, cout=cout,
                        weights=wmat.astype(np.int64), pixels=1)
        L.g.tensors[acc_name] = TensorInfo(acc_name, (1, 1, cout), Fmt(mvu.acc_w, 0))
        L.add(mvu)
        out = scale_accumulator(L, node, acc_name, src, wsc)
    elif not src.fmt.bipolar:
        if bipolar_w or wscale is not None:
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
        out = scale_accumulator(L, node, acc_name, src, wsc)
    else:
        raise _err(node, "binary (bipolar) inputs need binary (BipolarQuant) weights")
    if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
        if L.g.tensors[out].scale is None and L.const(node.input[2]) is not None \
                and _fixed_bias(L.const(node.input[2])):
            out = _fc_bias(L, node, out, cout)
        else:
            out = add_bias(L, node, out, bias_of(L, node, node.input[2], cout))
            if not out:
                return  # a pending chain: the next quantizer absorbs the bias
    L.env[node.output[0]] = out
    L.g.onnx_names[node.output[0]] = out


def _fixed_bias(b) -> bool:
    try:
        _q, frac, _ = fixed_point(np.asarray(b, dtype=np.float64).reshape(-1), 24)
    except ValueError:
        return False
    return frac <= 16


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
