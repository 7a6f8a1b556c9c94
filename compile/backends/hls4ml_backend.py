"""hls4ml backend: the hardware graph, layer by layer, as an hls4ml project for its Vitis HLS backend.

``binaryhpe build [MODEL] --backend hls4ml -o OUT [--sim]`` writes the project under ``OUT/hls4ml/`` (the HLS
C++ in ``firmware/``, ``build_prj.tcl`` and ``vivado_synth.tcl`` for Vitis HLS, the test bench, weights) and,
with ``--sim``, compiles hls4ml's bit-accurate C simulation with g++ and compares every output element with
the compiler's integer reference (``HwGraph.execute``), and every traced intermediate layer as well.

Why from the hardware graph and not through hls4ml's QONNX front end (``convert_from_onnx_model``): the front end
converts the BNN-PYNQ-style QONNX, but what it builds does not compute our integers (docs/backends.md, "hls4ml"):
it merges BatchNorm + BipolarQuant into ``BatchNormalizationQuantizedTanh`` with a float threshold
``-bias/scale`` (division by zero for a zero BN scale, wrong direction for a negative one), its binary layers
use the XNOR encoding ``ap_uint<1>`` (0 <-> -1) so that the zero padding of a binary convolution becomes -1, and
the float BatchNorm runs in a default ``ap_fixed<16,6>``. Here every hardware layer is handed to hls4ml as
layers whose fixed-point arithmetic is exact by construction:

=================  ==============================================================================
our kind           hls4ml layers (values: hls = integer * 2^-e, e per tensor; bipolar: +-1)
=================  ==============================================================================
SWG + XnorMvu      Conv2D, +-1 data and weights in ``ap_fixed<2,2>`` (0 pads exactly), no XNOR types
SWG + FxpMvu       Conv2D, integer weights, exact accumulator ``ap_fixed<acc_w, acc_w - e>``
Fc*Mvu             Reshape (flatten, channels last) + Dense
Sign               Activation ``binary_tanh`` (``x >= 0 ? 1 : -1``)
Threshold          BatchNormalization (scale +-1, bias -+T) + ``binary_tanh``
Requant            Activation ``linear`` / ``relu`` into ``ap_fixed<..., AP_TRN, AP_SAT>`` (floor, saturate)
MulShift           BatchNormalization (scale m, bias 0), result ``AP_TRN, AP_SAT``
AddConst           BatchNormalization (scale 1, bias b), result ``AP_SAT``
Prelu              PReLU (alpha = beta * 2^-shift), result ``AP_TRN, AP_SAT``
JoinAdd            Merge ``add`` (after an exact power-of-two rescale where the exponents differ)
Concat             Concatenate (channels)
Split              two 1x1 Conv2D with 0/1 selection weights (hls4ml has no Split layer)
Pool max / sum     Pooling2D Max (pads with the type minimum) / Average times k*k (pad 0 only)
Fifo, Fork, Dwc    nothing (io_parallel arrays; a tensor may feed several layers)
Epilogue           its operations, each as above (``build`` maps ``backends.unfused(g)``: the traced
                   comparison covers every intermediate tensor of the fused chain)
MultiThreshold     not taken: BinaryHPEError naming the layer and hls4ml
=================  ==============================================================================

hls4ml's own optimizer passes that would change these numerics are skipped (``SKIP_OPTIMIZERS``).
Reuse factors come from the folding: an MVU with ``PE x SIMD`` synapses a cycle over ``cout x N`` weights reuses
each multiplier ``NF * SF = (cout/PE) * (N/SIMD)`` times (hls4ml may move it to the nearest value it accepts;
``layers`` in the report holds both).
"""

from __future__ import annotations

import math
import pathlib
import shutil
import time
from dataclasses import dataclass

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.graph import HwGraph
from binaryhpe.compile.backends.emitters import Registry
from binaryhpe.compile.kinds.elementwise import (AddConst, JoinAdd, MulShift, MultiThreshold, Prelu, Requant,
                                                 Sign, Threshold)
from binaryhpe.compile.kinds.epilogue import Epilogue
from binaryhpe.compile.kinds.mvu import FcFxpMvu, FcXnorMvu, FxpMvu, XnorMvu
from binaryhpe.compile.kinds.plumbing import Concat, Dwc, Fifo, Fork, PhaseShuffle, Split
from binaryhpe.compile.kinds.pool import Pool
from binaryhpe.compile.kinds.swg import SlidingWindow

PROJECT = "bhpe_hls4ml"
#: g++ optimization of the C simulation library (see compile_csim)
CSIM_OPT = "-O0"
#: the hls4ml version this backend was written and tested against (``pip install hls4ml==1.3.0``)
HLS4ML_VERSION = "1.3.0"
#: the QONNX front end is tried (convert only) on files of at most this many nodes
QONNX_FRONTEND_MAX_NODES = 150
#: kind -> the _Builder method that hands it to hls4ml (registered next to each method; docs/backends.md's
#: table is generated from it)
EMITTERS = Registry("hls4ml")
EMITTERS.refuse(PhaseShuffle, "not implemented: a transposed convolution's phase interleave has no layer here "
                             "(the layer-sequential engine and the C backend take it)")
EMITTERS.refuse(MultiThreshold, "not implemented: hls4ml 1.3.0 has no multi-threshold layer, and no exact "
                                "composition of its layers is written here")
#: hls4ml passes that rewrite numerics we set exactly (BN+tanh -> float threshold and XNOR types, BN folding
#: into convolutions, removal of the casting ``linear`` activations, precision rewrites)
SKIP_OPTIMIZERS = (
    "merge_batch_norm_quantized_tanh", "quantize_dense_output", "fuse_consecutive_batch_normalization",
    "xnor_pooling", "fuse_batch_normalization", "eliminate_linear_activation", "merge_linear_activation",
    "remove_nop_batch_normalization", "bit_exact", "fix_input_precision", "output_rounding_saturation_mode",
    "replace_multidimensional_dense_with_conv", "remove_final_reshape",
)


def _err(layer, why: str) -> BinaryHPEError:
    return BinaryHPEError(f"hls4ml backend: layer {layer.name!r} ({type(layer).__name__}) {why}")


@dataclass
class _Var:
    """An hls4ml tensor standing for one of ours: hls value = integer * 2^-e (bipolar: 2q - 1)."""

    var: str
    e: int
    bits: int
    signed: bool = True
    bipolar: bool = False
    shape: tuple = ()

    def prec(self) -> str:
        return _fixed(self.bits, self.e, self.signed) if not self.bipolar else "fixed<2,2,TRN,SAT>"

    def to_hls(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=np.float64)
        return (2 * q - 1) if self.bipolar else q * 2.0 ** (-self.e)


def _fixed(bits: int, e: int, signed: bool = True) -> str:
    """``ap_fixed<bits, bits - e>`` with floor (AP_TRN) and saturation: the contract's requantization."""
    return f"{'' if signed else 'u'}fixed<{bits},{bits - e},TRN,SAT>"


class _Builder:
    """Walks the hardware graph and collects hls4ml layer dicts and their per-layer configuration."""

    def __init__(self, g: HwGraph):
        self.g = g
        self.layers: list[dict] = []
        self.cfg: dict[str, dict] = {}
        self.vars: dict[str, object] = {}  # our tensor -> _Var, or ("window", SlidingWindow, source _Var)
        self.table: list[dict] = []
        self._names: set[str] = set()

    # --- helpers -----------------------------------------------------------------------------------
    def name(self, base: str) -> str:
        n = "".join(ch if ch.isalnum() else "_" for ch in base)
        n = ("l_" + n) if not n[:1].isalpha() else n
        cand, i = n, 0
        while cand in self._names:
            i += 1
            cand = f"{n}_{i}"
        self._names.add(cand)
        return cand

    def add(self, ours, d: dict, prec: dict, rf: int | None = None, out: _Var | None = None,
            folding_rf: int | None = None) -> None:
        self.layers.append(d)
        c = {"Precision": prec, "Trace": True}
        if rf is not None:
            c["ReuseFactor"] = int(rf)
            c["Strategy"] = "Latency" if rf == 1 else "Resource"
        self.cfg[d["name"]] = c
        self.table.append({"layer": ours.name, "kind": type(ours).__name__, "hls4ml_layer": d["name"],
                           "hls4ml_class": d["class_name"], "precision": prec.get("result"),
                           "reuse_factor": rf, "folding_reuse_factor": folding_rf,
                           "exponent": None if out is None or out.bipolar else out.e})

    def src(self, lay, i: int = 0) -> _Var:
        v = self.vars[lay.inputs[i]]
        if not isinstance(v, _Var):
            raise _err(lay, "reads a window stream that only a matrix-vector unit can take in hls4ml")
        return v

    def rescale(self, ours, v: _Var, e: int) -> _Var:
        """The same integers under the exponent ``e >= v.e`` (hls value times 2^(v.e - e), exact): a
        BatchNormalization with the power-of-two scale 2^-(e - v.e) and no bias."""
        if e == v.e:
            return v
        d = e - v.e
        if d < 0:
            raise _err(ours, "would need its inputs' exponents lowered")
        name = self.name(f"{ours.name}_align_{v.var}")
        out = _Var(name, e, v.bits, v.signed, False, v.shape)
        c = v.shape[-1]
        self.add(ours, {"name": name, "class_name": "BatchNormalization", "inputs": [v.var],
                        "n_in": int(np.prod(v.shape)), "n_filt": c, "scale_data": np.full(c, 2.0 ** -d),
                        "bias_data": np.zeros(c), "data_format": "channels_last"},
                 {"scale": f"ufixed<1,{1 - d}>", "bias": "fixed<2,2>", "result": out.prec()}, out=out)
        return out

    # --- the walk ----------------------------------------------------------------------------------
    def run(self) -> tuple[str, _Var]:
        g = self.g
        ti = g.tensors[g.input]
        fmt = ti.fmt
        name = self.name("bhpe_in")
        inp = _Var(name, fmt.frac if not fmt.bipolar else 0, fmt.bits, fmt.signed, fmt.bipolar, tuple(ti.shape))
        self.layers.append({"name": name, "class_name": "InputLayer", "input_shape": list(ti.shape), "inputs": []})
        self.cfg[name] = {"Precision": {"result": inp.prec()}, "Trace": True}
        self.vars[g.input] = inp
        for lay in g.layers:
            EMITTERS.entry(lay).fn(self, lay)  # raises, naming the layer, for a kind hls4ml does not take
        out = self.vars[g.output]
        if not isinstance(out, _Var):
            raise BinaryHPEError(f"hls4ml backend: the graph output {g.output!r} is a window stream")
        return name, out

    # plumbing
    @EMITTERS.emits(Fifo, Dwc, note="nothing (io_parallel arrays)")
    def _k_Fifo(self, lay):
        self.vars[lay.outputs[0]] = self.vars[lay.inputs[0]]

    @EMITTERS.emits(Fork, note="nothing (a tensor may feed several layers)")
    def _k_Fork(self, lay):
        for t in lay.outputs:
            self.vars[t] = self.vars[lay.inputs[0]]

    @EMITTERS.emits(SlidingWindow, note="the window of the Conv2D that reads it")
    def _k_SlidingWindow(self, lay: SlidingWindow):
        self.vars[lay.outputs[0]] = ("window", lay, self.src(lay))

    # matrix-vector units
    def _mvu(self, lay, binary: bool):
        v = self.vars[lay.inputs[0]]
        rf = lay.nf * lay.sf
        w = np.asarray(lay.weights, dtype=np.float64)  # (cout, n)
        wprec = "fixed<2,2>" if binary else f"fixed<{lay.w_w},{lay.w_w}>"
        name = self.name(lay.name)
        if isinstance(v, tuple):  # SWG + MVU = convolution
            _, swg, x = v
            if binary and not x.bipolar:
                raise _err(lay, "is a binary unit fed by a non-binary tensor")
            e = 0 if binary else x.e
            out = _Var(name, e, lay.acc_w, True, False, (swg.oh, swg.ow, lay.cout))
            k, c = swg.k, swg.c
            wk = w.reshape(lay.cout, k, k, c).transpose(1, 2, 3, 0)  # keras (kh, kw, cin, cout)
            d = {"name": name, "class_name": "Conv2D", "inputs": [x.var], "data_format": "channels_last",
                 "in_height": swg.h, "in_width": swg.w, "n_chan": c, "out_height": swg.oh, "out_width": swg.ow,
                 "n_filt": lay.cout, "filt_height": k, "filt_width": k, "stride_height": swg.s,
                 "stride_width": swg.s, "pad_top": swg.pad, "pad_bottom": self._pad_end(swg.h, swg),
                 "pad_left": swg.pad, "pad_right": self._pad_end(swg.w, swg),
                 "weight_data": wk, "bias_data": np.zeros(lay.cout)}
        else:
            x = v
            if binary and not x.bipolar:
                raise _err(lay, "is a binary unit fed by a non-binary tensor")
            e = 0 if binary else x.e
            n = int(np.prod(x.shape))
            if n != lay.n:
                raise _err(lay, f"reads {n} elements but has N = {lay.n} synapses")
            if len(x.shape) > 1 and int(np.prod(x.shape[:-1])) > 1:
                if not isinstance(lay, (FcXnorMvu, FcFxpMvu)) and lay.pixels > 1:
                    raise _err(lay, "is a per-pixel unit without a window generator")
                flat = self.name(f"{lay.name}_flatten")
                self.layers.append({"name": flat, "class_name": "Reshape", "inputs": [x.var], "target_shape": [n]})
                self.cfg[flat] = {"Precision": {"result": x.prec()}}
                x = _Var(flat, x.e, x.bits, x.signed, x.bipolar, (n,))
            out = _Var(name, e, lay.acc_w, True, False, (lay.cout,))
            d = {"name": name, "class_name": "Dense", "inputs": [x.var], "n_in": n, "n_out": lay.cout,
                 "weight_data": w.T.copy(), "bias_data": np.zeros(lay.cout)}
        prec = {"weight": wprec, "bias": "fixed<2,2>", "result": out.prec(), "accum": out.prec()}
        use_rf = rf
        if d["class_name"] == "Conv2D" and rf > lay.n:
            # hls4ml 1.3.0's io_parallel Resource convolution computes wrong sums when the reuse factor exceeds
            # the synapses a pixel (its DenseResource_rf_gt_nin kernels inside conv_2d_resource_cl; a 1x1 conv
            # with 8 inputs, 16 outputs and RF 128 or 16 differs on every output in its C simulation, RF 8
            # is exact): cap it at N and say so in the report
            use_rf = lay.n
        self.add(lay, d, prec, rf=use_rf, out=out, folding_rf=rf)
        self.vars[lay.outputs[0]] = out

    @staticmethod
    def _pad_end(n: int, swg: SlidingWindow) -> int:
        """Padding after the last row/column that the windows actually reach (floor-mode output size)."""
        o = (n + 2 * swg.pad - swg.k) // swg.s + 1
        return max(0, (o - 1) * swg.s + swg.k - n - swg.pad)

    @EMITTERS.emits(XnorMvu, FcXnorMvu, note="Conv2D / Dense, +-1 in `ap_fixed<2,2>`")
    def _k_XnorMvu(self, lay):
        self._mvu(lay, True)

    @EMITTERS.emits(FxpMvu, FcFxpMvu, note="Conv2D / Dense, exact accumulator")
    def _k_FxpMvu(self, lay):
        self._mvu(lay, False)

    # elementwise
    def _act(self, lay, x: _Var, activation: str, out: _Var):
        d = {"name": out.var, "class_name": "Activation", "activation": activation, "inputs": [x.var],
             "n_in": int(np.prod(x.shape))}
        self.add(lay, d, {"result": out.prec()}, out=out)
        self.vars[lay.outputs[0]] = out

    def _bn(self, lay, x: _Var, scale, bias, sprec: str, bprec: str, out: _Var):
        c = x.shape[-1]
        d = {"name": out.var, "class_name": "BatchNormalization", "inputs": [x.var], "n_in": int(np.prod(x.shape)),
             "n_filt": c, "scale_data": np.asarray(scale, np.float64), "bias_data": np.asarray(bias, np.float64),
             "data_format": "channels_last"}
        self.add(lay, d, {"scale": sprec, "bias": bprec, "result": out.prec()}, out=out)
        self.vars[lay.outputs[0]] = out

    @EMITTERS.emits(Sign, note="Activation `binary_tanh`")
    def _k_Sign(self, lay: Sign):
        x = self.src(lay)
        if x.bipolar:
            raise _err(lay, "takes a binary tensor")
        self._act(lay, x, "binary_tanh", _Var(self.name(lay.name), 0, 1, False, True, x.shape))

    @EMITTERS.emits(Threshold, note="BatchNormalization +-1 + `binary_tanh`")
    def _k_Threshold(self, lay: Threshold):
        x = self.src(lay)
        if x.bipolar:
            raise _err(lay, "takes a binary tensor")
        s = np.where(lay.neg.astype(bool), -1.0, 1.0)
        t = np.asarray(lay.thresholds, np.float64)
        wb = max(x.bits, lay.thr_w) + 2
        mid = _Var(self.name(f"{lay.name}_diff"), x.e, wb, True, False, x.shape)
        # x >= T  <=>  x - T >= 0 ; x <= T  <=>  T - x >= 0 ; then binary_tanh (>= 0 -> +1)
        self._bn(lay, x, s, -s * t * 2.0 ** (-x.e), "fixed<2,2>", _fixed(lay.thr_w + 1, x.e), mid)
        self._act(lay, mid, "binary_tanh", _Var(self.name(lay.name), 0, 1, False, True, x.shape))

    @EMITTERS.emits(Requant, note="Activation `linear` / `relu`, floor + saturate")
    def _k_Requant(self, lay: Requant):
        x = self.src(lay)
        out = _Var(self.name(lay.name), x.e - lay.shift, lay.out_w, True, False, x.shape)
        self._act(lay, x, "relu" if lay.relu else "linear", out)

    @EMITTERS.emits(MulShift, note="BatchNormalization (scale m)")
    def _k_MulShift(self, lay: MulShift):
        x = self.src(lay)
        out = _Var(self.name(lay.name), x.e - lay.shift, lay.out_w, True, False, x.shape)
        self._bn(lay, x, lay.m, np.zeros(lay.c), f"fixed<{lay.const_w},{lay.const_w}>", "fixed<2,2>", out)

    @EMITTERS.emits(AddConst, note="BatchNormalization (bias b)")
    def _k_AddConst(self, lay: AddConst):
        x = self.src(lay)
        out = _Var(self.name(lay.name), x.e, lay.out_w, True, False, x.shape)
        self._bn(lay, x, np.ones(lay.c), np.asarray(lay.b) * 2.0 ** (-x.e), "fixed<2,2>",
                 _fixed(lay.const_w, x.e), out)

    @EMITTERS.emits(Prelu, note="PReLU")
    def _k_Prelu(self, lay: Prelu):
        x = self.src(lay)
        out = _Var(self.name(lay.name), x.e, lay.out_w, True, False, x.shape)
        pixels = int(np.prod(x.shape[:-1]))
        alpha = np.tile(np.asarray(lay.beta, np.float64) * 2.0 ** (-lay.shift), pixels)
        d = {"name": out.var, "class_name": "PReLU", "activation": "prelu", "inputs": [x.var],
             "n_in": int(np.prod(x.shape)), "param_data": alpha}
        self.add(lay, d, {"param": _fixed(lay.const_w, lay.shift), "result": out.prec()}, out=out)
        self.vars[lay.outputs[0]] = out

    @EMITTERS.emits(JoinAdd, note="Merge `add`")
    def _k_JoinAdd(self, lay: JoinAdd):
        a, b = self.src(lay, 0), self.src(lay, 1)
        if a.bipolar or b.bipolar:
            raise _err(lay, "adds binary tensors")
        # y = a*2^sa + b*2^sb: in hls values both terms need the exponent e = e_a + s_a = e_b + s_b
        e = max(a.e + lay.shift_a, b.e + lay.shift_b)
        a = self.rescale(lay, a, e - lay.shift_a)
        b = self.rescale(lay, b, e - lay.shift_b)
        out = _Var(self.name(lay.name), e, lay.out_w, True, False, a.shape)
        d = {"name": out.var, "class_name": "Merge", "op": "add", "inputs": [a.var, b.var]}
        self.add(lay, d, {"result": out.prec()}, out=out)
        self.vars[lay.outputs[0]] = out

    @EMITTERS.emits(Epilogue, note="its ops, each as above")
    def _k_Epilogue(self, lay: Epilogue):
        """its ops one after the other (``Epilogue.unfuse``), each as its own hls4ml layers"""
        for op in lay.unfuse():
            EMITTERS.entry(op).fn(self, op)

    @EMITTERS.emits(Concat, note="Concatenate")
    def _k_Concat(self, lay: Concat):
        a, b = self.src(lay, 0), self.src(lay, 1)
        if a.bipolar != b.bipolar:
            raise _err(lay, "concatenates a binary and a fixed-point tensor")
        if a.bipolar:
            out = _Var(self.name(lay.name), 0, 1, False, True, (lay.h, lay.w, lay.c1 + lay.c2))
        else:
            e = max(a.e, b.e)
            a, b = self.rescale(lay, a, e), self.rescale(lay, b, e)
            out = _Var(self.name(lay.name), e, max(a.bits, b.bits), a.signed or b.signed, False,
                       (lay.h, lay.w, lay.c1 + lay.c2))
        d = {"name": out.var, "class_name": "Concatenate", "op": f"concatenate{len(out.shape)}d", "axis": -1,
             "inputs": [a.var, b.var]}
        self.add(lay, d, {"result": out.prec()}, out=out)
        self.vars[lay.outputs[0]] = out

    @EMITTERS.emits(Split, note="two 1x1 Conv2D selections")
    def _k_Split(self, lay: Split):
        x = self.src(lay)
        c = lay.c1 + lay.c2
        for t, (lo, n) in zip(lay.outputs, ((0, lay.c1), (lay.c1, lay.c2))):
            name = self.name(f"{lay.name}_{'a' if lo == 0 else 'b'}")
            out = _Var(name, x.e, x.bits, x.signed, x.bipolar, (lay.h, lay.w, n))
            sel = np.zeros((1, 1, c, n))
            sel[0, 0, lo + np.arange(n), np.arange(n)] = 1.0
            d = {"name": name, "class_name": "Conv2D", "inputs": [x.var], "data_format": "channels_last",
                 "in_height": lay.h, "in_width": lay.w, "n_chan": c, "out_height": lay.h, "out_width": lay.w,
                 "n_filt": n, "filt_height": 1, "filt_width": 1, "stride_height": 1, "stride_width": 1,
                 "pad_top": 0, "pad_bottom": 0, "pad_left": 0, "pad_right": 0,
                 "weight_data": sel, "bias_data": np.zeros(n)}
            acc = _fixed(x.bits + 1, x.e, True) if not x.bipolar else "fixed<3,3>"
            self.add(lay, d, {"weight": "fixed<2,2>", "bias": "fixed<2,2>", "result": out.prec(), "accum": acc},
                     out=out)
            self.vars[t] = out

    @EMITTERS.emits(Pool, note="MaxPooling2D / AveragePooling2D")
    def _k_Pool(self, lay: Pool):
        x = self.src(lay)
        taps = lay.k * lay.k
        common = {"inputs": [x.var], "data_format": "channels_last", "in_height": lay.h, "in_width": lay.w,
                  "n_filt": lay.c, "out_height": lay.oh, "out_width": lay.ow, "pool_height": lay.k,
                  "pool_width": lay.k, "stride_height": lay.s, "stride_width": lay.s, "pad_top": lay.pad,
                  "pad_left": lay.pad, "pad_bottom": self._pad_end(lay.h, lay), "pad_right": self._pad_end(lay.w, lay),
                  "count_pad": False}
        if lay.mode == "max":
            out = _Var(self.name(lay.name), x.e, x.bits, x.signed, x.bipolar, (lay.oh, lay.ow, lay.c))
            d = {"name": out.var, "class_name": "MaxPooling2D", **common}
            self.add(lay, d, {"result": out.prec(), "accum": out.prec()}, out=out)
        else:
            lg = int(round(math.log2(taps)))
            if lay.pad or (1 << lg) != taps or x.bipolar:
                raise _err(lay, "is a sum pooling that hls4ml's average pooling cannot give exactly "
                                "(it needs no padding and a power-of-two window)")
            # hls4ml averages (sum / k*k): the exact sum is the average with lg more fraction bits
            out = _Var(self.name(lay.name), x.e + lg, lay.out_w, True, False, (lay.oh, lay.ow, lay.c))
            d = {"name": out.var, "class_name": "AveragePooling2D", **common}
            # the accumulator holds the sum before the division: out_w integer bits plus lg fraction bits
            self.add(lay, d, {"result": out.prec(), "accum": _fixed(lay.out_w + lg + 1, x.e + lg)}, out=out)
        self.vars[lay.outputs[0]] = out


def to_hls4ml(g: HwGraph, out_dir: pathlib.Path, part: str = "xczu3eg-sbva484-1-e", clock_period: float = 5.0):
    """Build the hls4ml ``ModelGraph`` of ``g`` (Vitis backend, io_parallel) with its output in ``out_dir``.

    Returns ``(hls_model, output _Var, builder)`` (``builder.table``: the layer table of the report); raises
    BinaryHPEError for a kind hls4ml cannot take, naming the layer."""
    from binaryhpe.compile.backends import unfused

    b = _Builder(unfused(g))  # one hls4ml layer (or a few) an operation: every Epilogue through its ops
    inp, outv = b.run()  # raises before hls4ml is imported, so that the error does not need it
    try:
        import hls4ml
        from hls4ml.model.graph import ModelGraph
    except ImportError as e:
        raise BinaryHPEError(f"hls4ml backend: hls4ml does not import ({e}); install it with "
                             f"pip install hls4ml=={HLS4ML_VERSION}") from e

    cfg = hls4ml.utils.config.create_config(output_dir=str(out_dir), project_name=PROJECT, backend="Vitis",
                                            part=part, clock_period=clock_period, io_type="io_parallel")
    cfg["HLSConfig"] = {"Model": {"Precision": "fixed<16,6>", "ReuseFactor": 1, "Strategy": "Latency"},
                        "LayerName": b.cfg, "Flows": [_exact_flow()]}
    with _quiet():
        model = ModelGraph.from_layer_list(cfg, b.layers, inputs=[inp], outputs=[outv.var])
    # the writer flow requires vitis:ip; our copy of it has run (without the skipped passes): mark it applied so
    # that write() / compile() / trace() do not run the original one on top
    model._applied_flows.append({"vitis:ip": set()})
    # the reuse factor hls4ml settled on (it moves an invalid one to the nearest valid value)
    by_name = {lay.name: lay for lay in model.get_layers()}
    for row in b.table:
        h = by_name.get(row["hls4ml_layer"])
        if h is not None and row["reuse_factor"] is not None:
            row["reuse_factor"] = int(h.get_attr("reuse_factor", row["reuse_factor"]))
    return model, outv, b


def _exact_flow(root: str = "vitis:ip") -> str:
    """A copy of hls4ml's flow ``root`` and everything it requires, without ``SKIP_OPTIMIZERS``; returns its
    name. (hls4ml 1.3.0 parses the ``SkipOptimizers`` configuration key but no flow reads it.)"""
    from hls4ml.model.flow.flow import flow_map, get_flow, register_flow

    name = f"bhpe_exact:{root}"
    if name in flow_map:
        return name
    flow = get_flow(root)
    reqs = [_exact_flow(r) for r in flow.requires]
    opts = [o for o in flow.optimizers if o.split(":")[-1] not in SKIP_OPTIMIZERS]
    register_flow(name, opts, requires=reqs)
    return name


class _quiet:
    """hls4ml prints per-layer lines while converting; keep them out of the build log."""

    def __enter__(self):
        import contextlib
        import io
        import warnings

        self._cm = contextlib.redirect_stdout(io.StringIO())
        self._cm.__enter__()
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self._w.__exit__(*exc)
        self._cm.__exit__(*exc)


def _frames(g: HwGraph, mw, seed: int, frames: int = 3):
    """The flow's simulation frames: random ones and the extremes (all +1, all -1, saturating)."""
    from binaryhpe.compile.reference import hw_input, onnx_context

    shape = mw.get_tensor_shape(mw.graph.input[0].name)
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(-1, 1, size=shape).astype(np.float32) for _ in range(frames)]
    xs += [np.ones(shape, np.float32), -np.ones(shape, np.float32), np.full(shape, 4.0, np.float32)]
    return [hw_input(g, onnx_context(mw, x)) for x in xs]


def compile_csim(model, trace: bool = True, opt: str = CSIM_OPT) -> None:
    """Write the project and compile hls4ml's C simulation library with g++ ``opt`` (hls4ml's own
    ``build_lib.sh``, with its ``-O3`` replaced: the ap_fixed arithmetic is exact at any optimization level, and
    ``-O0`` compiles in about half the time of ``-O3`` here). With ``trace``, every layer's output is kept."""
    import subprocess

    model.config.trace_output = bool(trace)
    model.write()
    prj = pathlib.Path(model.config.get_output_dir())
    script = prj / "build_lib.sh"
    text = script.read_text()
    if "-O3 -fPIC" not in text:
        raise BinaryHPEError(f"hls4ml backend: {script} does not hold the expected g++ flags (-O3 -fPIC)")
    csim = prj / "build_lib_csim.sh"
    csim.write_text(text.replace("-O3 -fPIC", f"{opt} -fPIC"))
    r = subprocess.run(["bash", str(csim)], cwd=prj, capture_output=True, text=True)
    if r.returncode:
        errs = [ln for ln in r.stderr.splitlines() if "error" in ln][:5] or r.stderr.splitlines()[-5:]
        raise BinaryHPEError(f"hls4ml backend: g++ failed on the C simulation of {prj}: " + " | ".join(errs))
    import re

    stamp = re.search(r"^LIB_STAMP=(\w+)", text, re.M)
    lib = prj / "firmware" / f"{PROJECT}-{stamp.group(1) if stamp else ''}.so"
    import ctypes

    model._top_function_lib = ctypes.cdll.LoadLibrary(str(lib))
    model.compile = lambda: None  # trace() recompiles with -O3 otherwise; the library above is traced already


def compare(g: HwGraph, model, outv: _Var, b: _Builder, frames: list[np.ndarray], trace: bool = True,
            opt: str = CSIM_OPT) -> dict:
    """Compile hls4ml's C simulation (g++) and compare it with ``g.execute`` element for element: the output,
    and (``trace``) every hls4ml layer that stands for one of our tensors. The reference is the graph the
    builder mapped (``b.g``: ``g`` with its Epilogues unfused), so the epilogues' intermediate tensors are
    compared as well."""
    g = b.g
    inv = b.vars[g.input]
    x = np.ascontiguousarray(np.stack([inv.to_hls(f) for f in frames]).astype(np.float64))
    t0 = time.time()
    with _quiet():
        compile_csim(model, trace=trace, opt=opt)
        if trace:
            y, tr = model.trace(x)
        else:
            y, tr = model.predict(x), {}
    sim_s = time.time() - t0
    y = np.asarray(y).reshape(len(frames), -1)
    refs = [g.execute(f) for f in frames]
    exp = np.stack([outv.to_hls(r[g.output]).ravel() for r in refs])
    bad = int(np.count_nonzero(y != exp))
    first = None
    if bad:
        i = int(np.flatnonzero((y != exp).ravel())[0])
        first = {"frame": i // exp.shape[1], "index": i % exp.shape[1], "hls4ml": float(y.ravel()[i]),
                 "reference": float(exp.ravel()[i])}
    per_layer, layer_bad, layer_el = [], 0, 0
    if trace:
        for t, v in b.vars.items():
            if not isinstance(v, _Var) or v.var not in tr or t == g.input:
                continue
            got = np.asarray(tr[v.var]).reshape(len(frames), -1)
            ref = np.stack([v.to_hls(r[t]).ravel() for r in refs])
            if got.shape != ref.shape:
                per_layer.append({"tensor": t, "hls4ml_layer": v.var, "error": f"shape {got.shape} vs {ref.shape}"})
                layer_bad += ref.size
                continue
            nb = int(np.count_nonzero(got != ref))
            layer_bad += nb
            layer_el += ref.size
            if nb:
                per_layer.append({"tensor": t, "hls4ml_layer": v.var, "mismatches": nb, "elements": ref.size})
    return {"bit_exact": bad == 0 and layer_bad == 0, "mismatches": bad, "compared_elements": int(exp.size),
            "first_mismatch": first, "frames": len(frames), "traced_elements": layer_el,
            "traced_mismatches": layer_bad, "layers_with_mismatches": per_layer[:20],
            "csim_compile_and_run_s": round(sim_s, 1),
            # hls4ml's output of every frame as our integers (H, W, C; bipolar 0/1), for --inputs
            "outputs": [((r + 1) / 2 if outv.bipolar else r * 2.0**outv.e).reshape(g.tensors[g.output].shape)
                        for r in y]}


def qonnx_frontend_attempt(qonnx: pathlib.Path, out_dir: pathlib.Path) -> dict:
    """Try hls4ml's own QONNX front end on the same file (convert only, nothing compiled): the report says
    whether it converts and which hls4ml layers it makes; the project is built from the hardware graph
    either way (module docstring, docs/backends.md)."""
    import onnx

    n = len(onnx.load(str(qonnx), load_external_data=False).graph.node)
    if n > QONNX_FRONTEND_MAX_NODES:
        return {"converts": None, "used": False,
                "note": f"not tried: {n} QONNX nodes; this side check (qonnx cleanup, channels-last conversion, "
                        f"hls4ml's front end) is tried up to {QONNX_FRONTEND_MAX_NODES} nodes"}
    try:
        import hls4ml
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
        from qonnx.transformation.gemm_to_matmul import GemmToMatMul
        from qonnx.util.cleanup import cleanup_model

        with _quiet():
            mw = cleanup_model(ModelWrapper(str(qonnx)))
            mw = mw.transform(ConvertToChannelsLastAndClean())
            mw = cleanup_model(mw.transform(GemmToMatMul()))
            cfg = hls4ml.utils.config.config_from_onnx_model(mw, granularity="name", backend="Vitis")
            m = hls4ml.converters.convert_from_onnx_model(mw, output_dir=str(out_dir), io_type="io_parallel",
                                                          backend="Vitis", hls_config=cfg)
        kinds = sorted({lay.class_name for lay in m.get_layers()})
        return {"converts": True, "hls4ml_layers": kinds, "used": False,
                "why_not_used": "merges BN+sign into a float threshold and XNOR ap_uint<1> types (binary conv "
                                "padding becomes -1); see docs/backends.md"}
    except Exception as e:  # noqa: BLE001 - any failure of the external front end is reported, not raised
        return {"converts": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
                "used": False}


def build(qonnx: pathlib.Path, g: HwGraph, out: pathlib.Path, sim: bool, seed: int = 0,
          qonnx_frontend: bool = True, extra_frames=None) -> dict:
    """Write ``OUT/hls4ml/`` (the Vitis HLS project) and, with ``sim``, compare hls4ml's C simulation with the
    integer reference. Returns the report keys of the hls4ml backend. ``extra_frames``: a user's float frames
    (``--inputs``, the QONNX input's layout without the batch dimension), simulated after the test frames;
    hls4ml's outputs of them come back as ``user_outputs`` (our integers, H x W x C)."""
    out = pathlib.Path(out)
    prj = out / "hls4ml"
    if prj.exists():
        shutil.rmtree(prj)
    t0 = time.time()
    model, outv, b = to_hls4ml(g, prj)
    with _quiet():
        model.write()
    rep = {"backend": "hls4ml", "hls4ml_version": _version(), "project": str(prj),
           "project_files": sorted(str(p.relative_to(prj)) for p in prj.rglob("*") if p.is_file()
                                   and p.parent.name != "weights")[:60],
           "io_type": "io_parallel", "hls_backend": "Vitis", "bit_exact": None, "mismatches": None,
           "compared_elements": 0, "layers": b.table,
           "estimates": None,
           "estimates_note": "hls4ml gives no latency or resource estimate without Vitis HLS (its report "
                             "parser reads the csynth reports of build_prj.tcl); none here",
           "convert_s": round(time.time() - t0, 1)}
    if qonnx_frontend and qonnx is not None and pathlib.Path(qonnx).is_file():
        rep["qonnx_frontend"] = qonnx_frontend_attempt(pathlib.Path(qonnx), out / "hls4ml_qonnx_frontend")
        shutil.rmtree(out / "hls4ml_qonnx_frontend", ignore_errors=True)
    if sim:
        from binaryhpe.compile.lower import load_qonnx

        frames = _frames(g, load_qonnx(pathlib.Path(qonnx)), seed)
        n_test = len(frames)
        if extra_frames is not None:  # a user's --inputs: float frames through the graph's input quantizer
            from binaryhpe.compile.frames import quantize

            frames += [quantize(g, x) for x in extra_frames]
        rep.update(compare(g, model, outv, b, frames))
        outs = rep.pop("outputs")
        if extra_frames is not None:
            rep["user_outputs"] = outs[n_test:]
    return rep


def _version() -> str:
    try:
        import hls4ml

        return hls4ml.__version__
    except Exception:  # noqa: BLE001
        return "unknown"
