"""FINN side of the FINN backend: run by ``.venv-finn/bin/python finn_job.py JOB.json`` in a subprocess.

It must not import binaryhpe (FINN lives in its own environment, .ci/setup-finn): everything comes in as
paths and JSON and goes back as ``result.json`` plus ``.npy`` files in the job's output folder.

Job keys: ``qonnx`` (the cleaned QONNX the main environment exported), ``out`` (OUT/finn), ``inputs`` (an .npy
of float input frames, NCHW, one per row; absent without simulation), ``folding`` (our MVU / window / threshold
/ pool layers in graph order with their PE/SIMD/lanes), ``fpga_part``, ``board``, ``clk_ns``.

The lowering is FINN's own, in the order of its BNN-PYNQ end-to-end flow: qonnx cleanup,
ConvertQONNXtoFINN, tidy-up, streamlining (Streamline = ConvertSignToThres, the move/absorb/collapse passes;
LowerConvsToMatMul, MakeMaxPoolNHWC, AbsorbTransposeIntoMultiThreshold, ConvertBipolarMatMulToXnorPopcount,
Streamline again, RoundAndClipThresholds), conversion to HW layers (InferBinaryMatrixVectorActivation,
InferQuantizedMatrixVectorActivation, InferThresholdingLayer, InferConvInpGen, InferPool,
RemoveCNVtoFCFlatten), CreateDataflowPartition. Every node carries its QONNX origin in ``doc_string`` so
that a node FINN cannot take is reported by the name the user's file has.

With ``hw_onnx`` instead (the ``hw_graph`` flow, for residual networks FINN's streamlining cannot take), the
main environment has already written FINN's HW layers, folded (``finn_graph.py``); the job starts at
CreateDataflowPartition. ``pairs`` then names our layer behind every FINN node, and ``inputs`` holds our
integer input frames, NHWC.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import sys
import time
import traceback
import warnings

import numpy as np

HW_DOMAIN = "finn.custom_op.fpgadataflow"
#: FINN HW op types that carry a folding, and the attribute(s) our layers set
MVU_OPS = ("MVAU", "VVAU")


class Unsupported(Exception):
    def __init__(self, node, stage: str, reason: str, model=None):
        super().__init__(reason)
        self.node, self.stage, self.reason, self.model = node, stage, reason, model


class TrackingFilter:
    """ConvertQONNXtoFINN's filter (FINN's default: Quant nodes up to 8 bits become MultiThresholds) that
    remembers the last node it let through: the one being converted when a handler raises."""

    def __init__(self, base):
        self.base, self.last, self.rejected = base, None, []

    def __call__(self, model, node):
        ok = self.base(model, node)
        if ok:
            self.last = node
        else:
            self.rejected.append(node)
        return ok


def origin(node) -> dict:
    try:
        return json.loads(node.doc_string) if node.doc_string else {}
    except ValueError:
        return {}


def tag_origins(model) -> None:
    for n in model.graph.node:
        n.doc_string = json.dumps({"qonnx_node": n.name, "op_type": n.op_type, "outputs": list(n.output)})


def retag_converted(model, orig_out: dict) -> None:
    """Tag the nodes ConvertQONNXtoFINN made (MultiThreshold, scale Mul, bias Add of a quantizer) with the QONNX
    node whose output tensor they lead to (the conversion keeps the quantizer's output tensor name)."""
    cons: dict[str, list] = {}
    for n in model.graph.node:
        for t in n.input:
            cons.setdefault(t, []).append(n)
    for n in model.graph.node:
        if n.doc_string:
            continue
        todo, seen = list(n.output), set()
        while todo:
            t = todo.pop(0)
            if t in orig_out:
                n.doc_string = orig_out[t]
                break
            for c in cons.get(t, []):
                if c.name not in seen and not c.doc_string:
                    seen.add(c.name)
                    todo.extend(c.output)


def is_hw(node) -> bool:
    return node.domain.startswith(HW_DOMAIN)


def node_info(node, model=None) -> dict:
    """FINN node -> its QONNX origin; a node FINN made itself borrows the origin of its nearest tagged
    ancestor (``qonnx_origin_of_ancestor``)."""
    o, near = origin(node), False
    if not o and model is not None:
        seen, todo = set(), list(node.input)
        while todo and not o:
            p = model.find_producer(todo.pop(0))
            if p is None or p.name in seen:
                continue
            seen.add(p.name)
            o, near = origin(p), True
            todo.extend(p.input)
    return {"qonnx_origin_of_ancestor": near and bool(o), "finn_node": node.name, "finn_op_type": node.op_type, "qonnx_node": o.get("qonnx_node"),
            "qonnx_op_type": o.get("op_type"), "qonnx_outputs": o.get("outputs", [])}


def run_stage(model, name: str, transforms, log: list):
    t0 = time.time()
    for tr in transforms:
        try:
            model = model.transform(tr)
        except Exception as e:  # noqa: BLE001 - a FINN pass that fails names no node: report the pass
            raise RuntimeError(f"FINN pass {type(tr).__name__} (stage {name}) failed: "
                               f"{type(e).__name__}: {e}") from e
    log.append({"stage": name, "nodes": len(model.graph.node), "s": round(time.time() - t0, 2)})
    return model


#: the shift that pins a zero-scale BatchNorm channel to its constant decision (beyond any accumulator here)
PIN = float(1 << 22)


class PinZeroScaleBatchNorm:
    """Our one rewrite of what FINN is handed (a qonnx Transformation): a BatchNormalization channel with
    scale 0 outputs its shift ``B_c`` for every input, so the MultiThreshold after it makes a constant
    decision. FINN's streamlining mishandles it: FactorOutMulSignMagnitude labels ``sign(0) = 0`` BIPOLAR,
    Absorb1BitMulIntoMatMul then refuses the (-1, 0, +1) sign vector and leaves a Mul between the MVAUs (and
    AbsorbMulIntoMultiThreshold divides the threshold by 0). Such a channel is given scale 1, mean 0, variance
    1 - eps and shift ``+-PIN``: the same decision for every accumulator ``|x| < PIN``. Only when every
    threshold of the channel decides the same way (always, for a sign activation)."""

    def apply(self, model):
        for n in model.graph.node:
            if n.op_type != "BatchNormalization":
                continue
            cons = model.find_consumers(n.output[0])
            if len(cons) != 1 or cons[0].op_type != "MultiThreshold":
                continue
            scale, bias, mean, var = (model.get_initializer(i) for i in n.input[1:5])
            thr = model.get_initializer(cons[0].input[1])
            if any(v is None for v in (scale, bias, mean, var, thr)) or not np.any(scale == 0):
                continue
            eps = next((a.f for a in n.attribute if a.name == "epsilon"), 1e-5)
            scale, bias, mean, var = (np.array(v, dtype=np.float32) for v in (scale, bias, mean, var))
            for c in np.flatnonzero(scale == 0):
                t = thr[c] if thr.shape[0] > 1 else thr[0]
                decide = bias[c] >= t
                if not (np.all(decide) or not np.any(decide)):
                    continue
                scale[c], mean[c], var[c] = 1.0, 0.0, np.float32(1.0 - eps)
                bias[c] = PIN if np.all(decide) else -PIN
            for i, v in zip(n.input[1:5], (scale, bias, mean, var)):
                model.set_initializer(i, v)
        return model, False

    def applies_to(self, model) -> int:
        return sum(1 for n in model.graph.node if n.op_type == "BatchNormalization"
                   and model.get_initializer(n.input[1]) is not None and np.any(model.get_initializer(n.input[1]) == 0))


class ZeroPadBipolarAsInt2:
    """Our second rewrite of what FINN is handed, for zero-padded binary convolutions: FINN streams a BIPOLAR
    tensor as one bit a value (0 <-> -1), so the zeros its padding (Im2Col ``pad_amount`` / FMPadding) inserts
    read as -1 once ConvertBipolarMatMulToXnorPopcount has turned the MatMul into XNOR-popcount: every border
    window then sums -w over its padded taps instead of 0 (the mismatch this backend measures without the
    rewrite). Zero padding has no +-1 code. The MultiThreshold that makes the activation is rewritten to give
    INT2 values -1/+1 (thresholds [LOW, T, T] with out_bias -2, FINN's ActVal = INT2's min): the same values,
    a real 0 in the padding, and the MatMul becomes a quantized MVAU (INT2 x bipolar weights) instead of an
    XNOR one. Run after LowerConvsToMatMul, before ConvertBipolarMatMulToXnorPopcount."""

    LOW = -float(1 << 30)

    def __init__(self):
        self.rewritten = []

    def apply(self, model):
        from qonnx.core.datatype import DataType
        from qonnx.custom_op.registry import getCustomOp

        for n in list(model.graph.node):
            if n.op_type != "Im2Col" or not any(getCustomOp(n).get_nodeattr("pad_amount")):
                continue
            t = n.input[0]
            if model.get_tensor_datatype(t) != DataType["BIPOLAR"]:
                continue
            prod = model.find_producer(t)
            while prod is not None and prod.op_type in ("MaxPoolNHWC", "MaxPool", "Transpose", "Reshape"):
                prod = model.find_producer(prod.input[0])
            if prod is None or prod.op_type != "MultiThreshold":
                continue
            mt = getCustomOp(prod)
            thr = model.get_initializer(prod.input[1])
            if thr is None or thr.shape[-1] != 1 or mt.get_nodeattr("out_dtype") != "BIPOLAR":
                continue
            new = np.concatenate([np.full_like(thr, self.LOW), thr, thr], axis=-1)
            model.set_initializer(prod.input[1], new.astype(np.float32))
            mt.set_nodeattr("out_dtype", "INT2")
            mt.set_nodeattr("out_scale", 1.0)
            mt.set_nodeattr("out_bias", -2.0)
            model.set_tensor_datatype(prod.output[0], DataType["INT2"])
            self.rewritten.append(prod.name)
        return model, False


def lower(model, log: list, out: pathlib.Path, int2_padding: bool = True):
    from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (
        InferBinaryMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
        InferQuantizedMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
    from finn.transformation.move_reshape import RemoveCNVtoFCFlatten
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    from finn.transformation.qonnx.quant_act_to_multithreshold import default_filter_function_generator
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline import absorb
    from finn.transformation.streamline.reorder import MakeMaxPoolNHWC
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
    from finn.transformation.streamline.sign_to_thres import ConvertSignToThres
    from qonnx.transformation.bipolar_to_xnor import ConvertBipolarMatMulToXnorPopcount
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (
        GiveReadableTensorNames,
        GiveUniqueNodeNames,
        RemoveStaticGraphInputs,
        RemoveUnusedTensors,
        SortGraph,
    )
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul
    from qonnx.util.cleanup import cleanup_model

    t0 = time.time()
    model = cleanup_model(model)
    log.append({"stage": "qonnx_cleanup", "nodes": len(model.graph.node), "s": round(time.time() - t0, 2)})
    tidy = [InferShapes(), FoldConstants(), GiveUniqueNodeNames(), GiveReadableTensorNames(), InferDataTypes(),
            RemoveStaticGraphInputs()]
    orig_out = {t: n.doc_string for n in model.graph.node for t in n.output}
    flt = TrackingFilter(default_filter_function_generator(max_multithreshold_bit_width=8))
    try:
        model = model.transform(ConvertQONNXtoFINN(filter_function=flt))
    except (ValueError, RuntimeError, AssertionError, KeyError) as e:
        if flt.last is None:
            raise RuntimeError(f"FINN pass ConvertQONNXtoFINN failed: {type(e).__name__}: {e}") from e
        pred = model.find_producer(flt.last.input[0])
        after = f" (its input comes from a {pred.op_type} node)" if pred is not None else ""
        why = f"FINN's ConvertQONNXtoFINN cannot turn this quantizer{after} into a MultiThreshold: {e}"
        order = {n.name: i for i, n in enumerate(model.graph.node)}
        first = min([flt.last] + flt.rejected, key=lambda n: order.get(n.name, len(order)))
        if first is not flt.last:  # an earlier quantizer FINN keeps as a Quant node: no HW layer takes it
            why = (f"a quantizer over 8 bits, which ConvertQONNXtoFINN keeps as a Quant node that no FINN HW "
                   f"layer takes (the conversion then fails at {origin(flt.last).get('qonnx_node')!r}: {why})")
        raise Unsupported(first, "qonnx_to_finn", why, model) from None
    retag_converted(model, orig_out)
    model = run_stage(model, "qonnx_to_finn", tidy, log)
    pinned = PinZeroScaleBatchNorm().applies_to(model)
    model = model.transform(PinZeroScaleBatchNorm())
    log.append({"stage": "pin_zero_scale_batchnorm", "batchnorms": pinned})
    model.save(str(out / "finn_tidy.onnx"))
    streamline = [absorb.AbsorbScalarBiasIntoMultiThreshold(), ConvertSignToThres(), Streamline(), LowerConvsToMatMul(),
                  MakeMaxPoolNHWC(), absorb.AbsorbTransposeIntoMultiThreshold(), MakeMaxPoolNHWC(),
                  absorb.AbsorbConsecutiveTransposes()]
    model = run_stage(model, "streamline", streamline, log)
    if int2_padding:
        zp = ZeroPadBipolarAsInt2()
        model = model.transform(zp).transform(InferDataTypes())
        log.append({"stage": "zero_pad_bipolar_as_int2", "multithresholds": zp.rewritten})
    streamline2 = [ConvertBipolarMatMulToXnorPopcount(), Streamline(), RoundAndClipThresholds(), InferDataLayouts(),
                   RemoveUnusedTensors()]
    model = run_stage(model, "streamline_xnor", streamline2, log)
    model.save(str(out / "finn_streamlined.onnx"))
    to_hw = [InferBinaryMatrixVectorActivation(), InferQuantizedMatrixVectorActivation(),
             InferThresholdingLayer(), InferPool(), InferConvInpGen(), RemoveCNVtoFCFlatten(),
             absorb.AbsorbConsecutiveTransposes(), SortGraph(), GiveUniqueNodeNames(), InferDataLayouts(),
             InferDataTypes(), InferShapes()]
    model = run_stage(model, "convert_to_hw", to_hw, log)
    model.save(str(out / "finn_hw.onnx"))
    return model


#: what FINN may leave outside its HW layers, at the graph's ends only: layout changes at the input, the
#: final scale/bias of the accumulator at the output
HOST_GLUE = {"Transpose", "Reshape", "Flatten", "Mul", "Add", "Identity", "Squeeze", "Unsqueeze"}
LAYOUT = {"Transpose", "Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze"}


def check_supported(model) -> None:
    """Raise Unsupported for the first node (in graph order) FINN did not turn into a HW layer that either
    lies between HW layers (FINN's dataflow partition must be one contiguous piece) or is not host-side glue.
    FINN's own ``unsupported_layers`` analysis must agree."""
    from finn.analysis.fpgadataflow.unsupported_layers import unsupported_layers

    nodes = list(model.graph.node)
    if not any(is_hw(n) for n in nodes):
        raise Unsupported(nodes[0] if nodes else None, "convert_to_hw", "FINN turned no node into a HW layer")
    prod = {t: n for n in nodes for t in n.output}
    cons: dict[str, list] = {}
    for n in nodes:
        for t in n.input:
            cons.setdefault(t, []).append(n)
    hw_above: dict[str, bool] = {}
    for n in nodes:  # graph order is topological (SortGraph)
        hw_above[n.name] = any(t in prod and (is_hw(prod[t]) or hw_above[prod[t].name]) for t in n.input)
    hw_below: dict[str, bool] = {}
    for n in reversed(nodes):
        hw_below[n.name] = any(is_hw(c) or hw_below[c.name] for t in n.output for c in cons.get(t, []))
    bad = [n for n in nodes if not is_hw(n) and ((hw_above[n.name] and hw_below[n.name]) or n.op_type not in HOST_GLUE)]
    if bad:  # the first one that computes something (a layout Transpose FINN inserted says little)
        n = next((b for b in bad if b.op_type not in LAYOUT), bad[0])
        feeds = sorted({f"{c.name} ({c.op_type}{', QONNX ' + origin(c)['qonnx_node'] if origin(c) else ''})"
                        for t in n.output for c in cons.get(t, [])})
        where = ("it lies between FINN HW layers (a dataflow partition must be one contiguous piece)"
                 if hw_above[n.name] and hw_below[n.name] else "it is not host-side glue at the graph's ends")
        raise Unsupported(n, "convert_to_hw", f"FINN has no HW layer for it and {where}; it feeds "
                          f"{', '.join(feeds) or 'the graph output'}", model)
    ok, bad = model.analysis(unsupported_layers)
    if not ok:
        raise Unsupported(bad, "create_dataflow_partition", "FINN's unsupported_layers analysis rejects it", model)


def partition(model, log: list, out: pathlib.Path):
    from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    t0 = time.time()
    parent = model.transform(CreateDataflowPartition(partition_model_dir=str(out / "partitions")))
    sdp = [n for n in parent.graph.node if n.op_type == "StreamingDataflowPartition"]
    if len(sdp) != 1:
        raise RuntimeError(f"CreateDataflowPartition made {len(sdp)} partitions, expected 1")
    child_path = getCustomOp(sdp[0]).get_nodeattr("model")
    log.append({"stage": "create_dataflow_partition", "nodes": len(parent.graph.node), "s": round(time.time() - t0, 2)})
    return parent, ModelWrapper(child_path), child_path


def apply_folding(child, folding: list) -> list:
    """Set PE/SIMD on FINN's layers from our layers of the same kind, matched in graph order (and checked on
    their shapes): MVAU <- our MVU (PE, SIMD; with the Threshold FINN absorbed into it), a window generator
    <- our window generator (SIMD = lanes) or, when it feeds a pool, our Pool (FINN builds a max pool as
    window generator + Pool), Thresholding / Pool <- our Threshold / Pool (PE = lanes). Returns the pairs
    [FINN node, our layer names, folding]."""
    from qonnx.custom_op.registry import getCustomOp

    queue = {k: [f for f in folding if f["kind"] == k] for k in ("mvu", "swg", "threshold", "pool")}
    absorbed = {f.get("threshold") for f in queue["mvu"]}
    pairs = []

    def take(kind, node):
        if not queue[kind]:
            raise RuntimeError(f"FINN's {node.op_type} {node.name} has no counterpart among our {kind} layers")
        return queue[kind].pop(0)

    for n in child.graph.node:
        inst = getCustomOp(n)
        if n.op_type in MVU_OPS:
            f = take("mvu", n)
            mw, mh = inst.get_nodeattr("MW"), inst.get_nodeattr("MH")
            if (mw, mh) != (f["n"], f["cout"]):
                raise RuntimeError(f"FINN {n.name} is MW={mw} x MH={mh}, our {f['name']} is N={f['n']} x "
                                   f"Cout={f['cout']}: the graphs do not line up")
            fold = {"PE": f["pe"], "SIMD": f["simd"]}
            names = [f["name"]] + f.get("between", [])
            if inst.get_nodeattr("noActivation") == 0 and f.get("threshold"):
                names.append(f["threshold"])
        elif n.op_type == "ConvolutionInputGenerator":
            cons = child.find_consumers(n.output[0]) or []
            if any(c.op_type == "Pool" for c in cons):
                if not queue["pool"]:
                    raise RuntimeError(f"FINN's {n.name} feeds a Pool that has no counterpart among ours")
                f, names = queue["pool"][0], []
            else:
                f = take("swg", n)
                names = [f["name"]]
            fold = {"SIMD": f["lanes"]}
        elif n.op_type in ("Thresholding", "Pool"):
            kind = "pool" if n.op_type == "Pool" else "threshold"
            while kind == "threshold" and queue[kind] and queue[kind][0]["name"] in absorbed:
                queue[kind].pop(0)
            if kind == "threshold" and not queue[kind]:
                pairs.append({"finn_node": n.name, "op_type": n.op_type, "ours": [], "folding": {}})
                continue  # the input quantizer: the host does it in our flow
            f = take(kind, n)
            fold, names = {"PE": f["lanes"]}, [f["name"]]
        else:
            pairs.append({"finn_node": n.name, "op_type": n.op_type, "ours": [], "folding": {}})
            continue
        for k, v in fold.items():
            inst.set_nodeattr(k, int(v))
        pairs.append({"finn_node": n.name, "op_type": n.op_type, "ours": names, "folding": fold})
    return pairs


def choose_requant_impl(child, fpga_part: str) -> dict:
    """FINN's RTL Requant derives fixed-point parameters from the float scale and bias and refuses ranges it
    cannot hold ("Bias ... overflows the output range", "Scale ... too small"), but only when it generates
    hardware. Run that derivation (FINN's own ``decompose_params``) now, and give the Requants it refuses
    ``preferred_impl_style = "hls"``, so that the build a user runs does not stop there. Returns the counts
    and the first refusals."""
    from finn.custom_op.fpgadataflow.rtl.requant_rtl import Requant_rtl
    from qonnx.custom_op.registry import getCustomOp

    counts, reasons = {"rtl": 0, "hls": 0}, {}
    for n in child.graph.node:
        if n.op_type != "Requant":
            continue
        probe = Requant_rtl(n)
        try:
            probe.decompose_params(child, probe._resolve_dsp_version(fpga_part))
            counts["rtl"] += 1
        except ValueError as e:
            getCustomOp(n).set_nodeattr("preferred_impl_style", "hls")
            counts["hls"] += 1
            if len(reasons) < 5:
                reasons[n.name] = str(e)
    return {"requant_impl": counts, "requant_hls_reasons": reasons}


def specialize(child, fpga_part: str):
    """FINN's specialize-layers step (HLS or RTL variant of each HW layer for the part; the first step of the
    build), on a copy: its node names are the ones the folding file must use, and FINN's cycle and resource
    estimates exist only for specialized layers. Returns (model, {HW node name: specialized name})."""

    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    spec = copy.deepcopy(child).transform(SpecializeLayers(fpga_part)).transform(GiveUniqueNodeNames())
    a, b = list(child.graph.node), list(spec.graph.node)
    if len(a) != len(b) or any(not y.op_type.startswith(x.op_type) for x, y in zip(a, b)):
        raise RuntimeError("SpecializeLayers changed the layer sequence: "
                           f"{[n.op_type for n in a]} -> {[n.op_type for n in b]}")
    return spec, {x.name: y.name for x, y in zip(a, b)}


def estimates(spec, fpga_part: str) -> dict:
    """FINN's own estimates per (specialized) layer: ``exp_cycles_per_layer`` and ``res_estimation``."""
    from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer
    from finn.analysis.fpgadataflow.res_estimation import res_estimation

    cyc = spec.analysis(exp_cycles_per_layer)
    res = res_estimation(spec, fpga_part)
    est = {}
    for n in spec.graph.node:
        d = {"op_type": n.op_type, "cycles": int(cyc[n.name]) if n.name in cyc else None}
        for k, v in (res.get(n.name) or {}).items():
            d[k.lower()] = float(v) if isinstance(v, (float, np.floating)) else v
        est[n.name] = d
    return est


def codegen(spec, fpga_part: str, clk_ns: float) -> dict:
    """FINN's code generation for every specialized layer (``PrepareIP``: the HLS C++ and tcl, or the RTL, that
    the build's ``step_hw_codegen`` writes), on a copy. It needs no vendor tool, so a layer FINN cannot
    generate fails here rather than in the user's Vivado build. Synthesizing the code needs Vitis HLS."""
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from qonnx.custom_op.registry import getCustomOp

    t0 = time.time()
    gen = copy.deepcopy(spec).transform(PrepareIP(fpga_part, clk_ns))
    done = [n.name for n in gen.graph.node
            if any(pathlib.Path(getCustomOp(n).get_nodeattr("code_gen_dir_ipgen") or "/nonexistent").glob("*"))]
    return {"layers": len(done), "of": len(gen.graph.node), "s": round(time.time() - t0, 2)}


def write_build_config(spec, job: dict, out: pathlib.Path) -> dict:
    """The build a FINN user with Vivado runs: from the dataflow partition (already converted to HW layers
    and folded) to a bitstream. The folding file names FINN's specialized layers (the build specializes
    first, with the same part, so the names agree)."""
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType, ShellFlowType
    from qonnx.custom_op.registry import getCustomOp

    folding = {"Defaults": {}}
    for n in spec.graph.node:
        inst = getCustomOp(n)
        attrs = {}
        for a in ("PE", "SIMD"):
            try:
                attrs[a] = int(inst.get_nodeattr(a))
            except Exception:  # noqa: BLE001 - not every layer has both (FINN raises AttributeError)
                pass
        if attrs:
            folding[n.name] = attrs
    (out / "folding_config.json").write_text(json.dumps(folding, indent=1))
    steps = ["step_specialize_layers", "step_apply_folding_config", "step_minimize_bit_width",
             "step_generate_estimate_reports", "step_generate_hardware", "step_create_stitched_ip",
             "step_measure_rtlsim_performance", "step_out_of_context_synthesis", "step_prepare_synthesis",
             "step_synthesize_bitfile", "step_make_driver", "step_deployment_package"]
    cfg = {"output_dir": "build_output", "synth_clk_period_ns": job["clk_ns"], "board": job["board"],
           "fpga_part": job["fpga_part"], "shell_flow_type": "vivado_zynq",
           "folding_config_file": "folding_config.json", "auto_fifo_depths": True,
           "generate_outputs": ["estimate_reports", "stitched_ip", "bitfile", "pynq_driver",
                                "deployment_package"],
           "steps": steps}
    # validate against FINN's own config class (raises on a bad key or value)
    DataflowBuildConfig(**{**cfg, "shell_flow_type": ShellFlowType(cfg["shell_flow_type"]),
                           "generate_outputs": [DataflowOutputType(x) for x in cfg["generate_outputs"]]})
    (out / "dataflow_build_config.json").write_text(json.dumps(cfg, indent=1))
    (out / "build.py").write_text(BUILD_PY)
    return {"folding_config": folding, "build_config": cfg}


BUILD_PY = '''"""Build the FINN dataflow partition in this folder to a bitstream (needs FINN with Vivado/Vitis HLS).

Written by binaryhpe's FINN backend: finn_dataflow_partition.onnx is already lowered to FINN's HW layers
(by FINN's streamlining, or for residual networks written from binaryhpe's hardware graph: see report.json's
finn_flow) and folded; the steps start at step_specialize_layers. finn_dataflow_parent.onnx holds the
host-side nodes around it.

    python build.py        (or: finn build dataflow_build_config.json finn_dataflow_partition.onnx)
"""
import json
import pathlib

from finn.builder.build_dataflow import build_dataflow_cfg
from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType, ShellFlowType

here = pathlib.Path(__file__).resolve().parent
cfg = json.loads((here / "dataflow_build_config.json").read_text())
cfg["shell_flow_type"] = ShellFlowType(cfg["shell_flow_type"])
cfg["generate_outputs"] = [DataflowOutputType(x) for x in cfg["generate_outputs"]]
cfg["output_dir"] = str(here / cfg["output_dir"])
cfg["folding_config_file"] = str(here / cfg["folding_config_file"])
build_dataflow_cfg(str(here / "finn_dataflow_partition.onnx"), DataflowBuildConfig(**cfg))
'''


def execute(parent, xs: np.ndarray) -> list[np.ndarray]:
    """FINN's own node execution (python mode of its HW layers; no vendor tool) of the parent graph, whose
    StreamingDataflowPartition node runs the folded child model."""
    from finn.core.onnx_exec import execute_onnx

    iname, oname = parent.graph.input[0].name, parent.graph.output[0].name
    return [np.asarray(execute_onnx(parent, {iname: np.asarray(x, dtype=np.float32)})[oname]) for x in xs]


def execute_traced(child, xs: np.ndarray, names: list[str]) -> tuple[list[np.ndarray], dict]:
    """The hw_graph flow: the dataflow partition is the whole graph, so run it directly (same python node
    execution) with FINN's full execution context, and keep the tensors ``names`` (ours' counterparts)."""
    from finn.core.onnx_exec import execute_onnx

    iname, oname = child.graph.input[0].name, child.graph.output[0].name
    ys, traced = [], {n: [] for n in names}
    for x in xs:
        ctx = execute_onnx(child, {iname: np.asarray(x, dtype=np.float32)}, return_full_exec_context=True)
        ys.append(np.asarray(ctx[oname]))
        for n in names:
            traced[n].append(np.asarray(ctx[n]))
    return ys, {n: np.stack(v) for n, v in traced.items()}


def stage_checks(qonnx_model, out: pathlib.Path, xs: np.ndarray) -> dict:
    """Where FINN departs from the QONNX: each saved stage's output vs qonnx's execution of the QONNX
    (mismatching elements over ``xs``), to tell a FINN lowering step apart from the rest."""
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.modelwrapper import ModelWrapper

    def run(m, x):
        return np.asarray(execute_onnx(m, {m.graph.input[0].name: np.asarray(x, np.float32)})[m.graph.output[0].name])

    refs = [run(qonnx_model, x) for x in xs]
    checks = {}
    for stage in ("finn_tidy", "finn_streamlined", "finn_hw"):
        m = ModelWrapper(str(out / f"{stage}.onnx"))
        checks[stage] = int(sum(np.count_nonzero(run(m, x).reshape(r.shape) != r) for x, r in zip(xs, refs)))
    return checks


def main(job_path: str) -> int:
    job = json.loads(pathlib.Path(job_path).read_text())
    out = pathlib.Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {"ok": False, "stages": []}
    t0 = time.time()
    try:
        warnings.filterwarnings("ignore")
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.custom_op.registry import getCustomOp

        if job.get("hw_onnx"):  # the hw_graph flow: FINN's HW layers, folded, from our hardware graph
            model, qonnx_model = ModelWrapper(job["hw_onnx"]), None
            check_supported(model)
            parent, child, child_path = partition(model, res["stages"], out)
            res["pairs"] = job["pairs"]
            res.update(choose_requant_impl(child, job["fpga_part"]))
        else:
            model = ModelWrapper(job["qonnx"])
            for n in model.graph.node:
                if n.op_type in ("Quant", "BipolarQuant", "Trunc"):
                    n.domain = "qonnx.custom_op.general"
            tag_origins(model)
            qonnx_model = copy.deepcopy(model)
            model = lower(model, res["stages"], out, int2_padding=job.get("int2_padding", True))
            check_supported(model)
            parent, child, child_path = partition(model, res["stages"], out)
            res["pairs"] = apply_folding(child, job.get("folding", []))
        child.save(child_path)
        child.save(str(out / "finn_dataflow_partition.onnx"))
        for n in parent.graph.node:
            if n.op_type == "StreamingDataflowPartition":
                getCustomOp(n).set_nodeattr("model", str(out / "finn_dataflow_partition.onnx"))
        parent.save(str(out / "finn_dataflow_parent.onnx"))
        res["nodes"] = [{"name": n.name, "op_type": n.op_type, "hw": is_hw(n)} for n in child.graph.node]
        res["host_nodes"] = [{"name": n.name, "op_type": n.op_type} for n in parent.graph.node
                             if n.op_type != "StreamingDataflowPartition"]
        spec, names = specialize(child, job["fpga_part"])
        for p in res["pairs"]:
            p["finn_hw_node"], p["finn_node"] = p["finn_node"], names[p["finn_node"]]
        res["estimates"] = estimates(spec, job["fpga_part"])
        res["codegen"] = codegen(spec, job["fpga_part"], job["clk_ns"])
        res.update(write_build_config(spec, job, out))
        if job.get("inputs"):
            t1 = time.time()
            xs = np.load(job["inputs"])
            if job.get("trace"):
                ys, traced = execute_traced(child, xs, job["trace"])
                np.savez(out / "finn_traced.npz", **{f"t{i}": traced[n] for i, n in enumerate(job["trace"])})
                res["traced"] = str(out / "finn_traced.npz")
            else:
                ys = execute(parent, xs)
            if qonnx_model is not None:
                res["stage_checks"] = stage_checks(qonnx_model, out, xs[:2])
            np.save(out / "finn_outputs.npy", np.stack(ys))
            res["outputs"] = str(out / "finn_outputs.npy")
            res["stages"].append({"stage": "execute", "frames": len(xs), "s": round(time.time() - t1, 2)})
        res["ok"] = True
    except Unsupported as e:
        res["unsupported"] = {"stage": e.stage, "reason": e.reason,
                              **(node_info(e.node, e.model) if e.node is not None else {})}
    except Exception as e:  # noqa: BLE001 - everything else goes back to the main process as text
        res["error"] = f"{type(e).__name__}: {e}"
        res["traceback"] = traceback.format_exc()[-4000:]
    res["wall_s"] = round(time.time() - t0, 1)
    (out / "result.json").write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("FINN_BUILD_DIR", str(pathlib.Path(sys.argv[1]).resolve().parent / "finn_tmp"))
    os.makedirs(os.environ["FINN_BUILD_DIR"], exist_ok=True)
    sys.exit(main(sys.argv[1]))
