"""The exact reference of a QONNX graph, and the comparisons of the hardware graph against it.

Reference semantics (docs/numerics.md, "The reference"): the meaning of a QONNX graph is the real-number
value of each node applied to exact inputs. Every value of a graph that obeys the numerics contract is an
integer times a power of two, so that meaning is computed exactly by a **float64** execution of the graph
as long as every value, and every partial sum inside a Conv / ConvTranspose / MatMul / Gemm, needs at most 53
significant bits. ``exact_reference`` (and ``onnx_context``, which the comparisons use) runs that execution:

- ``ToFloat64`` makes a copy of the graph in which every FLOAT initializer, value_info, graph input and
  output, ``Constant`` and ``Cast`` is DOUBLE;
- the graph is executed node by node (qonnx's per-node execution): qonnx's custom ops (``Quant``,
  ``BipolarQuant``, ``Trunc``) are numpy code and keep float64 (Quant through qonnx's ``int_quant``: its
  ``execute_node`` casts to float32); ``Conv``, ``ConvTranspose`` (a direct scatter, not the lowering's
  polyphase split), ``MatMul``, ``Gemm``, ``PRelu``,
  ``AveragePool`` and ``GlobalAveragePool`` run in this module's numpy kernels in float64 (onnxruntime has no
  double kernel for Conv, PRelu or the average pools); every other standard op runs in onnxruntime on DOUBLE
  tensors, or, where onnxruntime has no double kernel, in ``onnx.reference``;
- the execution measures, for every tensor and every Conv/MatMul/Gemm partial sum, how many significant bits
  it needs (``ExactRun.widths``): above 53 the frame is marked not exact (``ExactRun.float64_exact`` is False;
  the comparisons report it and the flow fails), above 24 it records that a float32 execution (PyTorch, onnxruntime, qonnx ``execute_onnx``) cannot hold that frame (``ExactRun.float32_exact``
  is False); such float32 executions are reported as such, never used as the reference.

qonnx's float32 ``execute_onnx`` stays available as ``onnx_context(..., exact=False)`` (what a user of qonnx
gets) and ``float32_context``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.graph import HwGraph

#: significant bits a float32 / float64 holds exactly
FLOAT32_BITS = 24
FLOAT64_BITS = 53
#: the name of this reference in reports (report.json ``simulation.reference``)
REFERENCE_NAME = "qonnx graph in float64 (binaryhpe.compile.reference.exact_reference)"


# --- the float64 copy of a graph ------------------------------------------------------------------
class ToFloat64:
    """A qonnx-style transformation (``model.transform(ToFloat64())`` or ``ToFloat64().apply(model)``): every
    FLOAT tensor of the graph becomes DOUBLE (initializers, value_info, inputs, outputs, ``Constant`` values,
    ``Cast`` targets). Integer tensors (shapes, indices) are left alone. Returns ``(model, False)``."""

    def apply(self, model):
        from onnx import TensorProto, numpy_helper

        g = model.graph
        for init in g.initializer:
            if init.data_type == TensorProto.FLOAT:
                init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float64), init.name))
        for vi in list(g.value_info) + list(g.input) + list(g.output):
            if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
                vi.type.tensor_type.elem_type = TensorProto.DOUBLE
        for node in g.node:
            for a in node.attribute:
                if node.op_type == "Constant" and a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float64), a.t.name))
                if node.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                    a.i = TensorProto.DOUBLE
        return model, False


def float64_model(mw):
    """A float64 copy of a qonnx ModelWrapper, cached on the wrapper together with a digest of the graph it
    was made from (a changed graph gets a new copy)."""
    import hashlib

    from qonnx.core.modelwrapper import ModelWrapper

    digest = hashlib.sha1(mw.model.SerializeToString()).hexdigest()
    cached = getattr(mw, "_bhpe_float64", None)
    if cached is not None and cached[0] == digest:
        return cached[1]
    m64 = ModelWrapper(copy.deepcopy(mw.model))
    ToFloat64().apply(m64)
    try:
        mw._bhpe_float64 = (digest, m64)
    except AttributeError:
        pass
    return m64


# --- bit widths of float values --------------------------------------------------------------------
def lsb_exponent(v: np.ndarray) -> int | None:
    """The exponent of the largest power of two that divides every value of ``v`` (None if all are 0)."""
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    v = v[v != 0]
    if v.size == 0:
        return None
    if not np.all(np.isfinite(v)):
        raise BinaryHPEError("non-finite value in the float64 execution")
    m, e = np.frexp(np.abs(v))
    mi = (m * 2.0**FLOAT64_BITS).astype(np.int64)
    low = mi & -mi
    tz = np.log2(low.astype(np.float64)).astype(np.int64)
    return int(np.min(e.astype(np.int64) - FLOAT64_BITS + tz))


def significant_bits(v: np.ndarray, lsb_exp: int | None = None) -> int:
    """Bits of the largest magnitude of ``v`` counted in units of its grid (``2^lsb_exp``, by default the
    finest power of two that divides every value): the width a float needs to hold ``v`` exactly."""
    v = np.asarray(v, dtype=np.float64)
    if lsb_exp is None:
        lsb_exp = lsb_exponent(v)
    if lsb_exp is None:
        return 0
    mx = float(np.max(np.abs(v)))
    return 0 if mx == 0 else math.frexp(mx)[1] - lsb_exp


# --- numpy kernels in float64 --------------------------------------------------------------------------
def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _conv(x, w, b, at, absolute=False):
    """ONNX Conv (2-D, NCHW, groups, pads, strides, dilations) in float64 as one matrix product per tap."""
    if x.ndim != 4:
        raise BinaryHPEError(f"Conv: only 2-D convolutions are supported by the exact reference, got rank {x.ndim}")
    if at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise BinaryHPEError("Conv: auto_pad is not supported by the exact reference")
    if absolute:
        x, w = np.abs(x), np.abs(w)
        b = None if b is None else np.abs(b)
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    grp = int(at.get("group", 1))
    sh, sw = at.get("strides", [1, 1])
    dh, dw = at.get("dilations", [1, 1])
    pt, pl, pb, pr = at.get("pads", [0, 0, 0, 0])
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, m, oh, ow), dtype=np.float64)
    mg = m // grp
    for i in range(kh):
        for j in range(kw):
            xs = xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
            for gi in range(grp):
                xg = xs[:, gi * cg:(gi + 1) * cg]
                wg = w[gi * mg:(gi + 1) * mg, :, i, j]
                out[:, gi * mg:(gi + 1) * mg] += np.einsum("nchw,mc->nmhw", xg, wg, optimize=True)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def _conv_transpose(x, w, b, at, absolute=False):
    """ONNX ConvTranspose (2-D, NCHW, group 1) in float64 by scattering each tap: input pixel ``i`` and kernel
    tap ``kk`` reach output ``i * stride - pad + kk`` (no polyphase decomposition: independent of the lowering)."""
    if x.ndim != 4:
        raise BinaryHPEError(f"ConvTranspose: only 2-D is supported by the exact reference, got rank {x.ndim}")
    if int(at.get("group", 1)) != 1 or any(d != 1 for d in at.get("dilations", [1, 1])):
        raise BinaryHPEError("ConvTranspose: groups and dilations are not supported by the exact reference")
    if at.get("output_shape") or at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise BinaryHPEError("ConvTranspose: output_shape / auto_pad are not supported by the exact reference")
    if absolute:
        x, w = np.abs(x), np.abs(w)
        b = None if b is None else np.abs(b)
    n, c, h, wd = x.shape
    _, m, kh, kw = w.shape
    sh, sw = at.get("strides", [1, 1])
    pt, pl, pb, pr = at.get("pads", [0, 0, 0, 0])
    oph, opw = at.get("output_padding", [0, 0])
    full = np.zeros((n, m, (h - 1) * sh + kh + oph, (wd - 1) * sw + kw + opw), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            full[:, :, i:i + sh * (h - 1) + 1:sh, j:j + sw * (wd - 1) + 1:sw] += np.einsum(
                "nchw,cm->nmhw", x, w[:, :, i, j], optimize=True)
    out = full[:, :, pt:full.shape[2] - pb, pl:full.shape[3] - pr]
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(out)


def _gemm(a, b, c, at, absolute=False):
    if at.get("transA", 0):
        a = a.T
    if at.get("transB", 0):
        b = b.T
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    if absolute:
        a, b, c, alpha, beta = np.abs(a), np.abs(b), None if c is None else np.abs(c), abs(alpha), abs(beta)
    y = alpha * (a @ b)
    return y if c is None else y + beta * c


def _avgpool(x, at, global_pool=False):
    if global_pool:
        return x.sum(axis=(2, 3), keepdims=True) / (x.shape[2] * x.shape[3])
    kh, kw = at["kernel_shape"]
    sh, sw = at.get("strides", [1, 1])
    pt, pl, pb, pr = at.get("pads", [0, 0, 0, 0])
    if at.get("ceil_mode", 0) or at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise BinaryHPEError("AveragePool: ceil_mode / auto_pad are not supported by the exact reference")
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    ones = np.pad(np.ones(x.shape[2:]), ((pt, pb), (pl, pr)))
    n, c, h, w = x.shape
    oh, ow = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    s = np.zeros((n, c, oh, ow))
    cnt = np.zeros((oh, ow))
    for i in range(kh):
        for j in range(kw):
            s += xp[:, :, i: i + sh * (oh - 1) + 1: sh, j: j + sw * (ow - 1) + 1: sw]
            cnt += ones[i: i + sh * (oh - 1) + 1: sh, j: j + sw * (ow - 1) + 1: sw]
    if at.get("count_include_pad", 0):
        cnt = np.full_like(cnt, kh * kw)
    return s / cnt


def _quant(node, ctx) -> np.ndarray:
    """qonnx's ``Quant`` function (``int_quant``) on float64 tensors: qonnx's ``execute_node`` of Quant casts
    its result to float32, which would round an output wider than 24 bits."""
    from qonnx.custom_op.general.intquant import int_quant

    at = _attrs(node)
    mode = at.get("rounding_mode", b"ROUND")
    x, scale, zp, bw = (ctx[i] for i in node.input[:4])
    y = int_quant(x, scale, zp, bw, int(at.get("signed", 1)), int(at.get("narrow", 0)),
                  mode.decode() if isinstance(mode, bytes) else mode)
    return np.asarray(y, dtype=np.float64)


def _prelu(x, slope):
    return np.where(x < 0, x * slope, x)


# --- float-scaled values: scaled-exact tensors, certified decisions ------------------------------------------
#: unit roundoff of float64
_U = 2.0 ** -53
#: elementwise ops with constants whose float64 error the tracker bounds and whose exact value it can recompute
_CHAIN_OPS = {"Mul", "Div", "Add", "Sub", "BatchNormalization", "Relu", "PRelu", "Clip"}
#: ops that move values without arithmetic (a scaled-exact tensor stays one)
_MOVE_OPS = {"Reshape", "Flatten", "Identity", "MaxPool", "Transpose", "Squeeze", "Unsqueeze"}


def _frac(v) -> "Fraction":
    from fractions import Fraction

    return Fraction(float(v))


class _Sq:
    """An exact real ``p + r * sqrt(d)`` for the reference's recheck of one element (``p``, ``r``, ``d``
    Fractions); written for the reference alone (the compiler's solver has its own, compile/lower_quant.py)."""

    def __init__(self, p, r=0, d=0):
        from fractions import Fraction

        self.p, self.r, self.d = Fraction(p), Fraction(r), Fraction(d)

    def minus(self, c) -> int:
        """The sign of ``self - c``."""
        p = self.p - c
        if self.r == 0:
            return (p > 0) - (p < 0)
        rs = 1 if self.r > 0 else -1
        if p == 0 or (p > 0) == (rs > 0):
            return rs if p == 0 else (1 if p > 0 else -1)
        lhs, rhs = p * p, self.r * self.r * self.d
        if lhs == rhs:
            return 0
        return (1 if p > 0 else -1) if lhs > rhs else rs


class FloatTracker:
    """Follows the float-scaled values of one float64 execution (``exact_reference``):

    - **scaled-exact** tensors ``I * P``: a quantizer's output (integers ``I`` times its scale ``P``), and a Conv /
      Gemm / MatMul of two such tensors (the integer sum in float64, exact below 2^53, times the product of the
      scales, itself exact in float64), a bias on the same grid, max pooling, reshapes. Their float64 value is
      replaced by ``I * P`` rounded once, so it no longer depends on the order of a float64 sum.
    - everything computed from them by ``_CHAIN_OPS`` has a bound on its float64 error (``err``) and its recipe
      (``path``: the scaled-exact root and the ops after it);
    - a quantizer reading such a value decides each element where the bound keeps the float64 value away from
      every rounding boundary (certified); the others are recomputed exactly (``_recheck``: Fractions, a
      BatchNormalization's square root compared by squaring) and the float64 output is corrected where it was
      wrong. A value whose error is unknown reaching a quantizer, or an inexact value reaching anything else
      than ``_CHAIN_OPS``, a quantizer or the graph output, makes the frame not exact (``problems``).
    """

    def __init__(self, graph):
        self.scaled: dict = {}
        self.err: dict = {}
        self.path: dict = {}
        self.stats = {"quantizers": 0, "elements": 0, "rechecked": 0, "corrected": 0}
        self.problems: list = []
        self.replaced: set = set()
        self.outputs = {o.name for o in graph.output}
        self.consts = {i.name for i in graph.initializer} | {
            o for n in graph.node if n.op_type == "Constant" for o in n.output}

    # -- helpers --------------------------------------------------------------------------------------------
    def _exact_of(self, name, ctx):
        """(I, P) of an exact tensor: its scaled-exact pair, or an exact dyadic float64 array as integers times a
        power of two; None otherwise."""
        if name in self.scaled:
            I, P, div = self.scaled[name]
            return (I, P) if div == 1 else None
        if name in self.err or name not in ctx:
            return None
        v = np.asarray(ctx[name])
        if v.dtype.kind != "f":
            return None
        e = lsb_exponent(v)
        if e is None:
            return np.zeros_like(v), np.float64(1.0)
        if significant_bits(v, e) > FLOAT64_BITS:
            return None
        return v * 2.0 ** (-e), np.float64(2.0**e)

    @staticmethod
    def _exact_product(a, b) -> bool:
        from fractions import Fraction

        a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
        return all(Fraction(float(x)) * Fraction(float(y)) == Fraction(float(x) * float(y))
                   for x in np.unique(a) for y in np.unique(b))

    def _inexact_inputs(self, node) -> list:
        return [i for i in node.input if i in self.err]

    # -- after each node ----------------------------------------------------------------------------------------
    def after(self, node, ctx, entry: dict) -> None:
        """Follow ``node`` (just executed; ``entry`` its widths record, which this may mark ``scaled`` or
        ``tracked``)."""
        op = node.op_type
        if op in ("Quant", "BipolarQuant"):
            if self._is_const(node.input[0], ctx):  # a weight quantizer: integers times its (per-channel) scale
                y = np.asarray(ctx[node.output[0]], dtype=np.float64)
                sc = np.asarray(ctx[node.input[1]], dtype=np.float64)
                if np.all(sc > 0):
                    I = np.round(y / sc)
                    if np.array_equal(I * sc, y):
                        self.scaled[node.output[0]] = (I, sc, 1)
                return
            self._quant(node, ctx)
            return
        if op in ("Conv", "Gemm", "MatMul") and node.domain in ("", "ai.onnx"):
            if self._matmul(node, ctx, entry):
                return
        x = node.input[0] if node.input else ""
        if op == "Trunc" and len(node.input) == 6:  # a quantizer too: integers times its output scale
            if x in self.err:
                self.problems.append(f"node {node.name} (Trunc) reads a float value that is not exact in float64")
                return
            osc = np.asarray(ctx[node.input[4]], dtype=np.float64)
            if osc.size == 1 and osc.reshape(-1)[0] > 0:
                self.scaled[node.output[0]] = (np.round(np.asarray(ctx[node.output[0]]) / osc.reshape(-1)[0]),
                                               np.float64(osc.reshape(-1)[0]), 1)
            return
        if op in _MOVE_OPS and x in self.scaled:
            I, P, div = self.scaled[x]
            if (np.size(P) == 1 or op in ("MaxPool", "Identity")) and (div == 1 or op == "Identity"):
                self.scaled[node.output[0]] = (I if op == "Identity" else np.asarray(ctx[node.output[0]]) / P, P, div)
                return
        if op in ("AveragePool", "GlobalAveragePool") and x in self.scaled and self._avg(node, ctx, entry):
            return
        tracked_in = [i for i in node.input if i in self.err]
        wide = entry["bits"] > FLOAT64_BITS or entry.get("non_dyadic")
        if not tracked_in and not wide:
            return  # exact in float64
        if op in _CHAIN_OPS and tracked_in in ([], [x]) and all(
                i == x or self._is_const(i, ctx) for i in node.input if i):
            self._chain(node, ctx)
            entry["tracked"] = True
            return
        if op == "MaxPool" and tracked_in == [x]:
            out = node.output[0]
            self.err[out] = np.full(np.shape(ctx[out]), float(np.max(self.err[x])) if np.size(self.err[x]) else 0.0)
            self.path[out] = None
            entry["tracked"] = True
            return  # a monotone selection: the bound carries over, the recipe does not
        if not tracked_in:
            return  # a wide dyadic value: ExactRun.max_bits reports it
        for o in node.output:
            self.err[o] = np.full(np.shape(ctx[o]), np.inf)
            self.path[o] = None
        entry["tracked"] = True
        if not (set(node.output) <= self.outputs):
            self.problems.append(f"node {node.name} ({op}) reads a float value that is not exact in float64")

    def _is_const(self, name, ctx) -> bool:
        return bool(name) and name in self.consts

    def _matmul(self, node, ctx, widths_entry) -> bool:
        x, w = self._exact_of(node.input[0], ctx), self._exact_of(node.input[1], ctx)
        if x is None or w is None or np.size(x[1]) != 1:
            return False
        Ix, Px = x
        Iw, Pw = w
        op = node.op_type
        at = _attrs(node)
        pw = np.asarray(Pw, dtype=np.float64)
        if op == "Conv":
            if pw.size > 1:
                pw = pw.reshape(-1)
                if pw.size != Iw.shape[0]:
                    return False
            I = _conv(Ix, Iw, None, at)
            bound = _conv(Ix, Iw, None, at, absolute=True)
            P = (Px * pw).reshape(1, -1, 1, 1) if pw.size > 1 else np.float64(Px * pw.reshape(-1)[0])
        else:
            a2 = at if op == "Gemm" else {}
            if pw.size > 1:  # one scale an output column: the weights' rows (transB) or columns
                pw2 = np.broadcast_to(pw, Iw.shape)
                pw2 = pw2.T if a2.get("transB", 0) else pw2
                if not np.all(pw2 == pw2[:1, :]):
                    return False
                pw = pw2[0]
            I = _gemm(Ix, Iw, None, a2)
            bound = _gemm(Ix, Iw, None, a2, absolute=True)
            P = (Px * pw).reshape(1, -1) if pw.size > 1 else np.float64(Px * pw.reshape(-1)[0])
            if float(a2.get("alpha", 1.0)) != 1.0:
                return False
        if float(np.max(bound, initial=0.0)) >= 2.0**FLOAT64_BITS or not self._exact_product(Px, pw):
            return False
        out = node.output[0]
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if bias is not None:
            if op == "Gemm" and float(at.get("beta", 1.0)) != 1.0:
                return False
            b = np.asarray(ctx[bias], dtype=np.float64)
            bshape = (1, -1, 1, 1) if op == "Conv" else (1, -1)
            bq = b.reshape(bshape) / P
            if np.all(bq == np.round(bq)) and np.all(np.abs(b.reshape(bshape)) == np.abs(bq * P)):
                I = I + bq
                bias = None
        if float(np.max(np.abs(I), initial=0.0)) >= 2.0**FLOAT64_BITS:
            return False
        if bias is None:
            self.scaled[out] = (I, P, 1)
            ctx[out] = I * P
            self.replaced.add(out)
        else:  # a bias off the accumulator's grid: the exact root without it, the bias a chain step
            root = out + "#nobias"
            self.scaled[root] = (I, P, 1)
            b = np.asarray(ctx[bias], dtype=np.float64).reshape((1, -1, 1, 1) if op == "Conv" else (1, -1))
            v = I * P + b
            ctx[out] = v
            self.err[out] = (np.abs(I * P) + np.abs(v)) * _U
            self.path[out] = (root, [("Add", b)])
        mx = float(np.max(bound, initial=0.0))
        widths_entry["bits"] = math.frexp(mx)[1] if mx else 0  # the partial sums of the integer sum
        widths_entry["scaled"] = True
        if not all(_is_pow2(float(v)) for v in np.asarray(P, dtype=np.float64).reshape(-1)):
            widths_entry["float_scale"] = True  # I * P is not a float32 value: float32 executions round it
        return True

    def _avg(self, node, ctx, entry) -> bool:
        """An average pool of a scaled-exact tensor: the window sums of its integers (exact in float64) over the
        window size, a scaled-exact value with a divisor; its float64 value is within a few roundings."""
        I, P, div = self.scaled[node.input[0]]
        at = _attrs(node)
        glob = node.op_type == "GlobalAveragePool"
        if div != 1 or (not glob and any(at.get("pads", [0, 0, 0, 0])) and not at.get("count_include_pad", 0)):
            return False
        cnt = I.shape[2] * I.shape[3] if glob else int(np.prod(at["kernel_shape"]))
        S = np.round(_avgpool(I, at, global_pool=glob) * cnt)
        if float(np.max(np.abs(S), initial=0.0)) >= 2.0**50:
            return False
        out = node.output[0]
        if cnt & (cnt - 1) == 0 and np.array_equal(np.asarray(ctx[out], dtype=np.float64), S * (P / cnt)):
            self.scaled[out] = (S, np.asarray(P, dtype=np.float64) / cnt, 1)  # exact in float64
            return True
        self.scaled[out] = (S, P, cnt)
        self.err[out] = 4 * _U * np.abs(np.asarray(ctx[out], dtype=np.float64))
        self.path[out] = (out, [])
        entry["tracked"] = True
        return True

    def _chain(self, node, ctx) -> None:
        """A _CHAIN_OPS node on a value with an error bound: the output's bound and recipe."""
        op = node.op_type
        x, out = node.input[0], node.output[0]
        v, y = np.asarray(ctx[x], dtype=np.float64), np.asarray(ctx[out], dtype=np.float64)
        e = self.err[x] if x in self.err else np.zeros_like(v)  # an exact input (scaled-exact or dyadic)
        consts = [np.asarray(ctx[i], dtype=np.float64) if i else None for i in node.input[1:]]
        at = _attrs(node)
        if op == "Mul":
            c = consts[0]
            e2, step = np.abs(c) * e + 2 * _U * np.abs(y), ("Mul", c)
        elif op == "Div":
            c = consts[0]
            e2, step = e / np.abs(c) + 2 * _U * np.abs(y), ("Div", c)
        elif op in ("Add", "Sub"):
            e2, step = e + 2 * _U * np.abs(y), (op, consts[0])
        elif op == "BatchNormalization":
            g, b, m, var = consts[:4]
            eps = float(np.float32(at.get("epsilon", 1e-5)))
            shp = (1, -1, 1, 1) if v.ndim == 4 else (1, -1)
            g, b, m, var = (a.reshape(shp) for a in (g, b, m, var))
            k = np.abs(g) / np.sqrt(var + eps)
            e2 = k * e * (1 + 16 * _U) + 16 * _U * (k * (np.abs(v) + np.abs(m)) + np.abs(b) + np.abs(y))
            step = ("BatchNormalization", g, b, m, var, eps)
        elif op == "Relu":
            e2, step = e, ("Relu",)
        elif op == "PRelu":
            c = consts[0]
            e2, step = np.maximum(1.0, np.abs(c)) * e + 2 * _U * np.abs(y), ("PRelu", c)
        else:  # Clip
            lo = consts[0] if len(consts) > 0 and consts[0] is not None else at.get("min")
            hi = consts[1] if len(consts) > 1 and consts[1] is not None else at.get("max")
            e2, step = e, ("Clip", lo, hi)
        self.err[out] = np.broadcast_to(e2, y.shape).copy()
        if x in self.err:
            p = self.path.get(x)
            self.path[out] = None if p is None else (p[0], p[1] + [step])
        else:  # an exact input is the root of the recipe
            self.path[out] = (x, [step])

    def _quant(self, node, ctx) -> None:
        """A quantizer: certify its float64 decisions, recheck the others exactly, record its scaled-exact output."""
        x, out = node.input[0], node.output[0]
        at = _attrs(node)
        y = np.asarray(ctx[out], dtype=np.float64)
        scale = np.asarray(ctx[node.input[1]], dtype=np.float64)
        if x in self.err or (node.op_type == "Quant" and not all(_is_pow2(float(v)) for v in scale.reshape(-1))):
            self._decide(node, ctx, at)
            y = np.asarray(ctx[out], dtype=np.float64)
        self.err.pop(out, None)
        if scale.size == 1 or node.op_type == "BipolarQuant":
            sc = np.float64(scale.reshape(-1)[0]) if scale.size == 1 else scale
            if np.size(sc) == 1 and sc > 0:
                self.scaled[out] = (np.round(y / sc), sc, 1)
        elif np.all(scale > 0):
            self.scaled[out] = (np.round(y / scale), scale, 1)

    def _decide(self, node, ctx, at) -> None:
        x, out = node.input[0], node.output[0]
        if ctx.get(x) is None:
            return
        v = np.asarray(ctx[x], dtype=np.float64)
        e = self.err.get(x, np.zeros_like(v))
        if node.op_type == "BipolarQuant":
            s, zp, mode = 1.0, 0.0, "SIGN"
        else:
            s = np.asarray(ctx[node.input[1]], dtype=np.float64)
            zp = np.asarray(ctx[node.input[2]], dtype=np.float64)
            if s.size != 1 or zp.size != 1:
                self.problems.append(f"node {node.name} (Quant): a per-channel quantizer of a float value")
                return
            s, zp = float(s.reshape(-1)[0]), float(zp.reshape(-1)[0])
            mode = at.get("rounding_mode", b"ROUND")
            mode = (mode.decode() if isinstance(mode, bytes) else mode).upper()
            at = dict(at, _bw=int(np.asarray(ctx[node.input[3]]).reshape(-1)[0]))
            if at["_bw"] == 1 and int(at.get("signed", 1)):
                mode = "SIGN"
        u = v / s + zp
        eu = np.asarray(e) / s + 4 * _U * np.abs(u)
        if mode == "SIGN":
            dist = np.abs(u)
        elif mode in ("ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN"):
            dist = np.abs(u - np.floor(u) - 0.5)
        else:
            dist = np.minimum(u - np.floor(u), np.ceil(u) - u)
        unsure = ~(dist > eu)
        self.stats["quantizers"] += 1
        self.stats["elements"] += int(v.size)
        if not unsure.any():
            return
        idx = np.argwhere(unsure)
        p = self.path.get(x) if x in self.err else (x, [])  # an exact input: its own value, only the division rounds
        if p is None:
            self.problems.append(f"node {node.name} ({node.op_type}): {len(idx)} decision(s) within the float64 "
                                 f"error bound, and the value's recipe is not recomputable exactly")
            return
        y = np.asarray(ctx[out], dtype=np.float64).copy()
        for ix in idx:
            ix = tuple(int(i) for i in ix)
            val = self._recheck(p, ix, ctx, x)
            q = _quant_decision(val, node.op_type, s, zp, at)
            self.stats["rechecked"] += 1
            if q != y[ix]:
                self.stats["corrected"] += 1
                y[ix] = q
        ctx[out] = y

    def _recheck(self, p, ix, ctx, x) -> _Sq:
        """The exact value of element ``ix`` of ``x``: its scaled-exact root times its scale, then the recipe's
        ops one by one in exact arithmetic."""
        root, ops = p
        if root in self.scaled:
            I, P, div = self.scaled[root]
            Pb = np.broadcast_to(P, I.shape)
            val = _Sq(_frac(I[ix]) * _frac(Pb[ix]) / div)
        else:  # an exact float64 tensor
            val = _Sq(_frac(np.asarray(ctx[root])[ix]))
        ch = ix[1] if len(ix) > 1 else 0

        def at_(c):
            c = np.asarray(c, dtype=np.float64)
            if c.size == 1:
                return _frac(c.reshape(-1)[0])
            full = np.broadcast_to(c, np.shape(ctx[x])) if c.ndim == len(ix) else None
            return _frac(full[ix]) if full is not None else _frac(c.reshape(-1)[ch])

        from fractions import Fraction

        for step in ops:
            k = step[0]
            if k in ("Mul", "Div", "Add", "Sub"):
                c = at_(step[1])
                if k == "Mul":
                    val = _Sq(val.p * c, val.r * c, val.d)
                elif k == "Div":
                    val = _Sq(val.p / c, val.r / c, val.d)
                elif k == "Add":
                    val = _Sq(val.p + c, val.r, val.d)
                else:
                    val = _Sq(val.p - c, val.r, val.d)
            elif k == "BatchNormalization":
                g, b, m, var, eps = at_(step[1]), at_(step[2]), at_(step[3]), at_(step[4]), Fraction(step[5])
                if val.r != 0:
                    raise BinaryHPEError("two BatchNormalizations on one exact recipe")
                d = var + eps
                val = _Sq(b, g * (val.p - m) / d, d)  # g (v - m) / sqrt(d) = g (v - m) sqrt(d) / d
            elif k == "Relu":
                if val.minus(0) < 0:
                    val = _Sq(0)
            elif k == "PRelu":
                if val.minus(0) < 0:
                    c = at_(step[1])
                    val = _Sq(val.p * c, val.r * c, val.d)
            elif k == "Clip":
                lo, hi = step[1], step[2]
                if lo is not None and val.minus(_frac(np.asarray(lo).reshape(-1)[0])) < 0:
                    val = _Sq(_frac(np.asarray(lo).reshape(-1)[0]))
                if hi is not None and val.minus(_frac(np.asarray(hi).reshape(-1)[0])) > 0:
                    val = _Sq(_frac(np.asarray(hi).reshape(-1)[0]))
        return val


def _is_pow2(s: float) -> bool:
    return s > 0 and math.frexp(s)[0] == 0.5


def _quant_decision(val: _Sq, op: str, s: float, zp: float, at: dict) -> float:
    """What a Quant (or BipolarQuant) outputs for the exact value ``val`` (qonnx's int_quant, exactly)."""
    from fractions import Fraction

    if op == "BipolarQuant":
        return 1.0 if val.minus(0) >= 0 else -1.0
    sf, z = Fraction(s), Fraction(zp)
    u = _Sq(val.p / sf + z, val.r / sf, val.d)  # v / s + zp
    mode = at.get("rounding_mode", b"ROUND")
    mode = (mode.decode() if isinstance(mode, bytes) else mode).upper()
    est = math.floor(float(u.p) + (float(u.r) * math.sqrt(float(u.d)) if u.r else 0.0))
    while u.minus(est) < 0:
        est -= 1
    while u.minus(est + 1) >= 0:
        est += 1
    fl = est  # floor(u)
    is_int = u.minus(fl) == 0
    half = u.minus(Fraction(2 * fl + 1, 2))
    sgn = u.minus(0)
    if mode == "FLOOR":
        n = fl
    elif mode == "CEIL":
        n = fl if is_int else fl + 1
    elif mode in ("DOWN", "ROUND_TO_ZERO"):
        n = fl if (sgn >= 0 or is_int) else fl + 1
    elif mode == "UP":
        n = fl if is_int else (fl + 1 if sgn > 0 else fl)
    elif half != 0:
        n = fl + 1 if half > 0 else fl
    elif mode in ("ROUND", "HALF_EVEN"):
        n = fl if fl % 2 == 0 else fl + 1
    elif mode == "HALF_UP":
        n = fl + 1 if sgn > 0 else fl
    else:  # HALF_DOWN
        n = fl if sgn > 0 else fl + 1
    signed, narrow = int(at.get("signed", 1)), int(at.get("narrow", 0))
    bw = at["_bw"]
    if signed and bw == 1:  # qonnx's int_quant: a 1-bit signed quantizer is a sign (+1 for v / s + zp >= 0)
        return float((Fraction(1 if u.minus(0) >= 0 else -1) - z) * sf)
    lo = -(2 ** (bw - 1)) + narrow if signed else 0
    hi = 2 ** (bw - 1) - 1 if signed else 2**bw - 1 - narrow
    n = min(max(n, lo), hi)
    return float((n - z) * sf)


# --- the exact execution -----------------------------------------------------------------------------
@dataclass
class ExactRun:
    """One frame through the float64 execution of a QONNX graph."""

    context: dict
    output: np.ndarray
    #: per node: {"node", "op", "bits"}: the significant bits its outputs (and, for Conv/MatMul/Gemm, its
    #: partial sums) need, measured on this frame
    widths: list = field(default_factory=list)
    #: the float-scaled values of this frame (``FloatTracker``): scaled-exact tensors, certified and rechecked
    #: quantizer decisions, and what could not be decided exactly (``tracker.problems``)
    tracker: object = None

    @property
    def decisions_exact(self) -> bool:
        """True when every quantizer reading a float value decided exactly (certified by the float64 error
        bound, or recomputed exactly) and no inexact float value reached anything but a quantizer, a tracked
        float op or the graph output."""
        return self.tracker is None or not self.tracker.problems

    @property
    def max_bits(self) -> int:
        """The widest value or partial sum of the dyadic nodes (those whose exact value is a float; a
        scaled-exact product counts its integer sum, a tracked float value not at all)."""
        return max((w["bits"] for w in self.widths if not w.get("non_dyadic") and not w.get("tracked")),
                   default=0)

    @property
    def non_dyadic_nodes(self) -> list[str]:
        """Nodes with no exact float value on this frame (``NON_DYADIC_OPS`` on off-grid values, e.g. a
        BatchNormalization with float parameters): their meaning reaches the integers only through the
        quantizer after them (see ``compare_with_onnx``)."""
        return [w["node"] for w in self.widths if w.get("non_dyadic")]

    @property
    def float64_exact(self) -> bool:
        """True when every value and partial sum of this frame fits float64's 53 bits (a float-scaled product
        counted by its integer sum) and every quantizer of a float value decided exactly (``decisions_exact``):
        the execution is the exact value of the graph at every integer. False where a node's values are not on
        one power-of-two grid within 53 bits (a wider sum, or a non-dyadic op such as a transcendental
        function): see ``wide_nodes(53)``."""
        return self.max_bits <= FLOAT64_BITS and self.decisions_exact

    @property
    def float32_exact(self) -> bool:
        """True when a float32 execution holds every value and partial sum of this frame exactly (never with a
        float-scaled product: integers times a non-power-of-two scale are rounded in float32)."""
        return self.max_bits <= FLOAT32_BITS and not any(w.get("float_scale") for w in self.widths)

    def wide_nodes(self, limit: int = FLOAT32_BITS) -> list[dict]:
        """The nodes whose values or partial sums need more than ``limit`` bits on this frame."""
        return [w for w in self.widths if w["bits"] > limit]


_KERNELS = {"Conv", "ConvTranspose", "MatMul", "Gemm", "PRelu", "AveragePool", "GlobalAveragePool"}

#: ops whose value is in general not on any power-of-two grid (a float affine map with arbitrary parameters,
#: a division, a transcendental): past 53 bits such a node is non-dyadic, not a width problem. The ops of the
#: numerics contract (sums, products, quantizers) are never in it: past 53 bits they make the frame not exact.
NON_DYADIC_OPS = {"BatchNormalization", "Div", "Sqrt", "Reciprocal", "Exp", "Log", "Pow", "Erf", "Tanh",
                  "Sigmoid", "Softplus", "Softmax", "LogSoftmax", "Mul", "InstanceNormalization"}
#: quantizers: the consumers through which a non-dyadic value reaches the integers
QUANTIZERS = {"Quant", "BipolarQuant", "MultiThreshold"}


def _run_node_numpy(node, ctx) -> tuple[list[np.ndarray], int | None]:
    """Execute one of ``_KERNELS`` in float64; returns (outputs, partial-sum bits or None)."""
    ins = [ctx[i] if i else None for i in node.input]
    at = _attrs(node)
    op = node.op_type
    if op in ("Conv", "ConvTranspose"):
        x, w = ins[0], ins[1]
        b = ins[2] if len(ins) > 2 else None
        fn = _conv if op == "Conv" else _conv_transpose
        y = fn(x, w, b, at)
        bound = fn(x, w, b, at, absolute=True)
        grid = [lsb_exponent(x), lsb_exponent(w)]
    elif op in ("MatMul", "Gemm"):
        a, b = ins[0], ins[1]
        c = ins[2] if len(ins) > 2 else None
        at = at if op == "Gemm" else {}
        y = _gemm(a, b, c, at)
        bound = _gemm(a, b, c, at, absolute=True)
        grid = [lsb_exponent(a), lsb_exponent(b)]
    elif op == "PRelu":
        return [_prelu(ins[0], ins[1])], None
    else:
        return [_avgpool(ins[0], at, global_pool=(op == "GlobalAveragePool"))], None
    if None in grid:  # an all-zero operand: every partial sum is the bias
        return [y], None
    lsb = grid[0] + grid[1]
    if len(ins) > 2 and ins[2] is not None:
        lb = lsb_exponent(ins[2])
        lsb = lsb if lb is None else min(lsb, lb)
    return [y], significant_bits(bound, lsb)


def _run_node_standard(node, ctx, graph, opset) -> None:
    from qonnx.core.onnx_exec import execute_node

    try:
        execute_node(node, ctx, graph, opset)
    except Exception as e:  # onnxruntime has no double kernel for this op: onnx's own numpy reference
        if "NOT_IMPLEMENTED" not in str(e):
            raise BinaryHPEError(f"node {node.name} ({node.op_type}): float64 execution failed: {e}") from None
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        outs = ReferenceEvaluator(helper.make_model(helper.make_graph(
            [node], "n", [helper.make_tensor_value_info(i, 11, None) for i in node.input if i],
            [helper.make_tensor_value_info(o, 11, None) for o in node.output]),
            opset_imports=[helper.make_opsetid("", opset)])).run(None, {i: ctx[i] for i in node.input if i})
        for o, v in zip(node.output, outs):
            ctx[o] = v


def exact_reference(mw, x: np.ndarray) -> ExactRun:
    """The exact value of the QONNX graph ``mw`` (a qonnx ModelWrapper) on one input ``x`` (the graph input's
    own layout and scale): a float64 execution, node by node, that measures whether it stays exact (see
    module doc; ``ExactRun.float64_exact``)."""
    import qonnx.core.execute_custom_node as ex_cu_node
    from qonnx.custom_op.registry import is_custom_op
    from qonnx.util.basic import get_preferred_qonnx_opset

    from binaryhpe.train.export import _quiet

    m64 = float64_model(mw)
    graph = m64.graph
    ctx = m64.make_empty_exec_context()
    iname = graph.input[0].name
    x = np.asarray(x, dtype=np.float64)
    if tuple(ctx[iname].shape) != x.shape:
        raise BinaryHPEError(f"input {iname!r}: frame shape {x.shape} differs from the graph's "
                             f"{tuple(ctx[iname].shape)}")
    ctx[iname] = x
    opsets = m64.get_opset_imports()
    widths = []
    tracker = FloatTracker(graph)
    with _quiet():
        for node in graph.node:
            opset = opsets.get(node.domain, get_preferred_qonnx_opset())
            psum = None
            if node.op_type == "Quant" and is_custom_op(node.domain, node.op_type):
                ctx[node.output[0]] = _quant(node, ctx)
            elif is_custom_op(node.domain, node.op_type):
                ex_cu_node.execute_custom_node(node, ctx, graph, onnx_opset_version=opset)
            elif node.op_type in _KERNELS and node.domain in ("", "ai.onnx"):
                outs, psum = _run_node_numpy(node, ctx)
                for o, v in zip(node.output, outs):
                    ctx[o] = v
            else:
                _run_node_standard(node, ctx, graph, opset)
            bits = psum or 0
            for o in node.output:
                v = ctx[o]
                if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                    if v.dtype != np.float64:
                        raise BinaryHPEError(f"node {node.name} ({node.op_type}) produced {v.dtype}, not float64")
                    try:
                        bits = max(bits, significant_bits(v))
                    except BinaryHPEError as e:
                        raise BinaryHPEError(f"node {node.name} ({node.op_type}): {e}") from None
            nd = bits > FLOAT64_BITS and node.op_type in NON_DYADIC_OPS
            entry = {"node": node.name, "op": node.op_type, "bits": int(bits), "non_dyadic": bool(nd)}
            _track(tracker, node, ctx, entry)
            widths.append(entry)
    return ExactRun(context=ctx, output=ctx[graph.output[0].name], widths=widths, tracker=tracker)


def _track(tracker: "FloatTracker", node, ctx, entry: dict) -> None:
    """Let the tracker follow ``node``."""
    tracker.after(node, ctx, entry)


def float32_context(mw, x: np.ndarray) -> dict:
    """qonnx's own ``execute_onnx`` in float32 (what PyTorch and onnxruntime compute): not a reference where
    ``exact_reference(...).float32_exact`` is False."""
    from qonnx.core.onnx_exec import execute_onnx

    from binaryhpe.train.export import _quiet

    with _quiet():
        return execute_onnx(mw, {mw.graph.input[0].name: np.asarray(x, dtype=np.float32)},
                            return_full_exec_context=True)


# --- comparisons with the hardware graph ----------------------------------------------------------------
def nchw_to_hwc(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v)
    if v.ndim == 4:
        return v[0].transpose(1, 2, 0)
    if v.ndim == 2:
        return v.reshape(1, 1, -1)
    raise ValueError(f"unsupported rank {v.ndim}")


def onnx_context(mw, x: np.ndarray, exact: bool = True) -> dict:
    """Every tensor of the QONNX graph on input ``x``: the exact (float64) execution by default,
    qonnx's float32 ``execute_onnx`` with ``exact=False``."""
    return exact_reference(mw, x).context if exact else float32_context(mw, x)


def hw_input(g: HwGraph, ctx: dict) -> np.ndarray:
    """The integers the hardware receives: the input quantizer's output in the QONNX execution."""
    onnx_in = next(k for k, v in g.onnx_names.items() if v == g.input)
    info = g.tensors[g.input]
    v = nchw_to_hwc(ctx[onnx_in])
    if info.scale is not None:  # q * scale is exact in float64 (a quantizer's output), so is the quotient
        v = v / float(info.scale)
    return info.fmt.from_real(v)


def compare_with_onnx(g: HwGraph, mw, x: np.ndarray) -> dict:
    """Run the compiler's integer reference and the exact reference of the QONNX graph on one frame; return
    per-tensor mismatch counts, the first tensor that differs (None if exact), and whether float32 executions
    hold this frame (``float32_exact``; ``wide_nodes`` lists the nodes past 24 bits)."""
    run = exact_reference(mw, x)
    ctx = run.context
    tr = run.tracker
    decisions = {"nodes": run.non_dyadic_nodes, **tr.stats, "problems": tr.problems[:4], "agree": run.decisions_exact}
    env = g.execute(hw_input(g, ctx))
    checked, first_bad, total = 0, None, 0
    for onnx_name, hw_name in g.onnx_names.items():
        info = g.tensors[hw_name]
        if info.windowed or onnx_name not in ctx or hw_name not in env:
            continue
        ref = nchw_to_hwc(ctx[onnx_name])
        bad = _mismatches(info, env[hw_name], onnx_name, ref, tr)
        checked += 1
        total += ref.size
        if bad and first_bad is None:
            first_bad = {"onnx_tensor": onnx_name, "hw_tensor": hw_name, "mismatches": bad, "elements": ref.size,
                         "producer": getattr(g.producer(hw_name), "name", None)}
    oname = output_onnx_name(g, mw)
    out_ref = nchw_to_hwc(ctx[oname])
    out_bad = _mismatches(g.tensors[g.output], env[g.output], oname, out_ref, tr)
    return {"tensors_checked": checked, "elements_checked": total, "first_mismatch": first_bad,
            "output_exact": out_bad == 0, "reference": REFERENCE_NAME,
            "max_bits": run.max_bits, "float32_exact": run.float32_exact,
            "float64_exact": run.float64_exact, "non_dyadic": decisions,
            "wide_nodes": [w["node"] for w in run.wide_nodes()][:8], "env": env, "ctx": ctx}


def _mismatches(info, q: np.ndarray, onnx_name: str, ref: np.ndarray, tr: "FloatTracker") -> int:
    """Elements where the hardware tensor (integers ``q``, format and scale of ``info``) differs from the reference
    value ``ref`` (HWC): exactly, as integers, where the reference holds the tensor as integers times a scale
    (``FloatTracker.scaled``); within the certified float64 error bound where the reference value is a tracked
    float (a float-scaled value the hardware carries exactly); else as float64 values (exact dyadic values)."""
    from fractions import Fraction

    q = np.asarray(q, dtype=np.int64)
    if tr is not None and onnx_name in tr.scaled and info.scale is not None:
        if info.fmt.bipolar:  # bits 0/1 stand for -1/+1 (times the scale)
            q = 2 * q - 1
        I, P, div = tr.scaled[onnx_name]
        I = nchw_to_hwc(np.asarray(I))
        c = q.shape[-1]
        pc = np.broadcast_to(np.asarray(P, dtype=np.float64).reshape(-1), (c,)) if np.size(P) in (1, c) else None
        if pc is None or I.shape != q.shape:
            return int(np.count_nonzero(ref != info.to_real(q)))
        unit = Fraction(2) ** (-info.fmt.frac) if not info.fmt.bipolar else Fraction(1)
        sc = info.scale if isinstance(info.scale, tuple) else (info.scale,) * c
        bad = 0
        for ch in range(c):
            k = unit * Fraction(sc[ch]) * div / Fraction(float(pc[ch]))  # q * k must be I
            a, b = q[..., ch], I[..., ch]
            if k.numerator < 2**20 and k.denominator < 2**20:
                bad += int(np.count_nonzero(a * k.numerator != b.astype(np.int64) * k.denominator))
            else:
                bad += sum(int(x) * k.numerator != int(y) * k.denominator for x, y in zip(a.reshape(-1), b.reshape(-1)))
        return bad
    got = info.to_real(q)
    if tr is not None and onnx_name in tr.err:
        e = nchw_to_hwc(np.broadcast_to(tr.err[onnx_name], np.shape(tr.err[onnx_name])))
        return int(np.count_nonzero(~(np.abs(got - ref) <= e)))
    return int(np.count_nonzero(ref != got))


def output_onnx_name(g: HwGraph, mw) -> str:
    """The QONNX tensor the hardware graph's output stands for: the graph output, or, for a stage of a network
    (``HwGraph.stage``), the QONNX tensor of the stage's output."""
    names = [k for k, v in g.onnx_names.items() if v == g.output]
    outs = [o.name for o in mw.graph.output]
    if not names or outs[0] in names:
        return outs[0]
    return names[0]


def _non_dyadic_decisions(mw, x: np.ndarray, run: ExactRun) -> dict:
    """A non-dyadic node (``ExactRun.non_dyadic_nodes``: a BatchNormalization with float parameters, ...) has
    no exact float value; what the graph means by it is the output of the quantizer that reads it. That
    output is the reference only when it is unambiguous: the float64 execution and the graph's own float32
    execution (qonnx ``execute_onnx``, on a frame float32 holds, ``ExactRun.float32_exact``) must give the
    same quantized values. Returns ``{"nodes", "quantizers_checked", "agree"}``; ``agree`` is False when a
    decision differs, when float32 does not hold the frame, or when a non-dyadic value reaches anything but
    a quantizer or another non-dyadic node."""
    nodes = run.non_dyadic_nodes
    if not nodes:
        return {"nodes": [], "quantizers_checked": 0, "agree": True}
    names = set(nodes)
    nd_tensors = {o for n in mw.graph.node if n.name in names for o in n.output}
    quant = [n for n in mw.graph.node if any(i in nd_tensors for i in n.input) and n.name not in names]
    if not run.float32_exact or any(n.op_type not in QUANTIZERS for n in quant):
        return {"nodes": nodes, "quantizers_checked": 0, "agree": False}
    ctx32 = float32_context(mw, x)
    agree = all(np.array_equal(np.asarray(ctx32[n.output[0]], dtype=np.float64), run.context[n.output[0]])
                for n in quant)
    return {"nodes": nodes, "quantizers_checked": len(quant), "agree": bool(agree)}


def check_frames(g: HwGraph, mw, frames) -> dict:
    """``compare_with_onnx`` on every frame (float arrays in the QONNX input's layout): the number of frames
    checked, the frames that differ, and how many need more than float32 holds. Returns also the hardware
    input integers and reference outputs of every frame (``inputs``, ``outputs``) for the simulations."""
    bad, wide, ins, outs, max_bits = [], 0, [], [], 0
    for i, x in enumerate(frames):
        r = compare_with_onnx(g, mw, x)
        if r["first_mismatch"] is not None or not r["output_exact"] or not r["float64_exact"]:
            bad.append({"frame": i, **{k: v for k, v in r.items()
                                       if k in ("first_mismatch", "output_exact", "float64_exact")}})
        wide += int(not r["float32_exact"])
        max_bits = max(max_bits, r["max_bits"])
        ins.append(hw_input(g, r["ctx"]))
        outs.append(r["env"][g.output])
    return {"reference": REFERENCE_NAME, "frames_checked": len(ins), "mismatching_frames": bad,
            "frames_beyond_float32": wide, "max_bits": max_bits, "inputs": ins, "outputs": outs}
