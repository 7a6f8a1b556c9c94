"""hls4ml backend (issue 8): the hardware graph as an hls4ml Vitis HLS project, checked by hls4ml's own
bit-accurate C simulation (compiled with g++) against the compiler's integer reference, element for element.

(1) BNN-PYNQ-style nets (plain Brevitas, tests/bnn_pynq_models.py) through ``binaryhpe build --backend hls4ml``'s
    flow: the C simulation equals HwGraph.execute (itself equal to execute_onnx, checked here too) on the output
    and on every traced intermediate layer, including zero-padded binary convolutions (hls4ml's own XNOR path
    pads them with -1);
(2) one hand-built graph holding every other layer kind the backend takes (Prelu, JoinAdd with unequal
    exponents, Concat, Split, sum pooling, Requant with ReLU and saturation, MulShift, AddConst, Fork, Fifo,
    Dwc) with constants that saturate, compared the same way;
(3) a kind hls4ml cannot take (MultiThreshold) gives one error naming the layer and hls4ml;
(4) the project folder holds what a Vitis HLS user needs, with the precisions and reuse factors derived from
    the numerics and the folding.

Each C simulation is one g++ build (about 20 s of CPU here); three in this file.
"""

import json
import math
import re

import numpy as np
import pytest
import torch

import bnn_pynq_models as M
from binaryhpe import BinaryHPEError
from binaryhpe.compile.backends import hls4ml_backend as H
from binaryhpe.compile.graph import Fmt, HwGraph, TensorInfo
from binaryhpe.compile.kinds.elementwise import (AddConst, JoinAdd, MulShift, MultiThreshold, Prelu, Requant,
                                                 Sign, Threshold)
from binaryhpe.compile.kinds.mvu import FcXnorMvu, FxpMvu, XnorMvu
from binaryhpe.compile.kinds.plumbing import Concat, Dwc, Fifo, Fork, Split
from binaryhpe.compile.kinds.pool import Pool
from binaryhpe.compile.kinds.swg import SlidingWindow
from binaryhpe.compile.lower import load_qonnx
from binaryhpe.compile.reference import compare_with_onnx
from binaryhpe.train.export import export_qonnx

#: name -> (model kind, constructor arguments, input shape), as in tests/test_bnn_pynq.py
NETS = {
    # 8-bit input (fixed-point first conv), max pool, Gemm with a bias, per-tensor output scale
    "cnv8": ("cnv", dict(fc_bias=True, out_scale=0.375), (1, 3, 16, 16)),
    # binary input, zero-padded binary convolutions (the -1 padding case), Reshape, plain MatMul head
    "cnv_bin_pad": ("cnv", dict(binary_input=True, pad=1, ch=(8, 8, 16), size=12, reshape=True), (1, 3, 12, 12)),
}


def _export(name, tmp_path):
    kind, kw, shape = NETS[name]
    model = M.build(kind, 0, **kw)
    return export_qonnx(model, torch.rand(*shape) * 2 - 1, tmp_path / f"{name}.onnx", verbose=False), shape


@pytest.mark.parametrize("name", list(NETS))
def test_bnn_pynq_csim_equals_reference(name, tmp_path):
    from binaryhpe.compile.flow import build_backend

    path, shape = _export(name, tmp_path)
    out = tmp_path / "out"
    rep = build_backend(str(path), out, "hls4ml", sim=True, seed=0)
    # the integer reference is the one execute_onnx agrees with (independent of hls4ml)
    g = H_graph(out)
    mw = load_qonnx(path)
    x = np.random.RandomState(5).rand(*shape).astype(np.float32) * 2 - 1
    r = compare_with_onnx(g, mw, x)
    assert r["first_mismatch"] is None and r["output_exact"]
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["backend"] == "hls4ml"
    for k in ("bit_exact", "mismatches", "compared_elements", "project", "layers", "estimates"):
        assert k in on_disk, k
    assert rep["bit_exact"] is True, rep.get("first_mismatch") or rep.get("layers_with_mismatches")
    assert rep["mismatches"] == 0 and rep["traced_mismatches"] == 0
    n_out = 10
    assert rep["compared_elements"] == rep["frames"] * n_out == 6 * n_out
    # every binary and fixed-point layer was traced: far more elements than the outputs
    assert rep["traced_elements"] > 20 * rep["compared_elements"]
    kinds = {row["kind"] for row in rep["layers"]}
    assert {"XnorMvu", "FcXnorMvu", "Threshold", "Pool"} <= kinds, kinds
    if name == "cnv_bin_pad":
        convs = [row for row in rep["layers"] if row["kind"] == "XnorMvu"]
        assert len(convs) == 3
    print(f"{name}: {rep['compared_elements']} output and {rep['traced_elements']} traced elements exact, "
          f"C simulation {rep['csim_compile_and_run_s']} s")


def H_graph(out):
    """The hardware graph of the build: lowered again from the QONNX file the flow wrote."""
    from binaryhpe.compile.flow import step_lower

    g, _ = step_lower(out / "model.onnx")
    return g


def test_padded_binary_conv_hls4ml_xnor_path_would_differ():
    """The reason for the +-1 encoding: with hls4ml's XNOR encoding (1 bit, 0 <-> -1) a padding tap, whose
    stored bit is 0, counts as -1; the contract says it contributes 0. Closed form on a 3x3 all-+1 input with
    all-+1 weights, pad 1: the corner sums 4 real taps (+4), the XNOR-padded version adds 5 taps of -1*+1."""
    x = np.ones((3, 3, 1), dtype=np.int64)
    swg = SlidingWindow("swg", h=3, w=3, c=1, k=3, s=1, pad=1, elem_w=1, signed=False)
    mvu = XnorMvu("mvu", n=9, cout=1, weights=np.ones((1, 9), dtype=np.int64), pixels=9)
    ref = mvu.execute([swg.execute([x])[0], swg.execute_mask([x])])[0]
    assert ref[0, 0, 0] == 4 and ref[1, 1, 0] == 9 and ref[0, 1, 0] == 6
    win = swg.execute([x])[0]  # padding taps hold bit 0
    xnor_padded = (2 * win - 1) @ np.ones(9)  # what an unmasked XNOR-popcount computes
    assert xnor_padded[0, 0] == 4 - 5 and xnor_padded[1, 1] == 9


# ---------------------------------------------------------------------------------------------------------
# (2) every other kind, on one hand-built graph

def _kinds_graph(seed: int = 0) -> HwGraph:
    """x -> 3x3 fixed-point conv (pad 1) -> fifo -> requant (saturating) -> fork ->
    [sign -> dwc -> 3x3 binary conv (pad 1) -> mulshift -> addconst -> prelu] + [fork -> requant << 1] ->
    joinadd (unequal exponents) -> requant relu -> concat -> split -> [max pool pad 1 | sum pool] -> concat ->
    threshold (both directions, one constant) -> binary FC."""
    rng = np.random.default_rng(seed)
    g = HwGraph(source="hand-built")
    H_, W_, C = 6, 6, 4
    bip = Fmt(1, 0, False, True)

    def t(name, shape, fmt=Fmt(16, 0), windowed=False):
        g.tensors[name] = TensorInfo(name, tuple(shape), fmt, windowed=windowed)
        return name

    px = (H_, W_, 8)
    g.input = t("x", (H_, W_, C), Fmt(8, 7))
    g.layers = [
        SlidingWindow("swg0", ["x"], [t("w0", (H_, W_, 9 * C), windowed=True)], h=H_, w=W_, c=C, k=3, s=1, pad=1,
                      elem_w=8),
        FxpMvu("conv0", ["w0"], [t("a0", px)], n=9 * C, cout=8, pe=2, simd=4,
               weights=rng.integers(-8, 8, size=(8, 9 * C)), pixels=H_ * W_, in_w=8, w_w=4),
        Fifo("fifo0", ["a0"], [t("a0f", px)], elem_w=18, lanes=2, depth=4, beats=144),
        Requant("rq0", ["a0f"], [t("r0", px)], c=8, pixels=36, in_w=18, out_w=8, shift=4),
        Fork("fork0", ["r0"], [t("r0a", px), t("r0b", px)], h=H_, w=W_, c=8),
        Sign("sign0", ["r0a"], [t("s0", px, bip)], c=8, pixels=36, in_w=8),
        Dwc("dwc0", ["s0"], [t("s0d", px, bip)], h=H_, w=W_, c=8, elem_w=1, in_lanes=1, out_lanes=2, signed=False),
        SlidingWindow("swg1", ["s0d"], [t("w1", (H_, W_, 72), bip, True)], h=H_, w=W_, c=8, k=3, s=1, pad=1,
                      elem_w=1, lanes=2, signed=False),
        XnorMvu("xconv1", ["w1"], [t("a1", px)], n=72, cout=8, pe=4, simd=8,
                weights=rng.choice([-1, 1], size=(8, 72)), pixels=36),
        MulShift("mul1", ["a1"], [t("m1", px)], c=8, pixels=36, in_w=8, out_w=10, const_w=6,
                 m=rng.integers(-32, 32, size=8), shift=2),
        AddConst("add1", ["m1"], [t("b1", px)], c=8, pixels=36, in_w=10, out_w=10, const_w=10,
                 b=rng.integers(-500, 500, size=8)),
        Prelu("prelu1", ["b1"], [t("p1", px)], c=8, pixels=36, in_w=10, out_w=12, const_w=6,
              beta=rng.integers(-32, 32, size=8), shift=3),
        Fork("fork1", ["r0b"], [t("r0c", px), t("r0d", px)], h=H_, w=W_, c=8),
        # y = (p1 << 6) + r0c: in hls4ml values the exponents differ (-2 + 6 vs 3): an exact rescale of r0c
        JoinAdd("join1", ["p1", "r0c"], [t("j1", px)], c=8, pixels=36, in_w=12, in_b_w=8, out_w=16, shift_a=6,
                shift_b=0),
        Requant("rq1", ["j1"], [t("r1", px)], c=8, pixels=36, in_w=16, out_w=8, shift=4, relu=True),
        Requant("rq2", ["r0d"], [t("r2", px)], c=8, pixels=36, in_w=8, out_w=8, shift=-1),
        Concat("cat1", ["r1", "r2"], [t("c1", (H_, W_, 16))], h=H_, w=W_, c1=8, c2=8),
        Split("split1", ["c1"], [t("sa", (H_, W_, 6)), t("sb", (H_, W_, 10))], h=H_, w=W_, c1=6, c2=10, lanes=2),
        Pool("maxp", ["sa"], [t("pm", (3, 3, 6))], h=H_, w=W_, c=6, k=3, s=2, pad=1, mode="max"),
        Pool("sump", ["sb"], [t("ps", (3, 3, 10))], h=H_, w=W_, c=10, k=2, s=2, pad=0, mode="sum", out_w=10),
        Concat("cat2", ["pm", "ps"], [t("c2", (3, 3, 16))], h=3, w=3, c1=6, c2=10),
    ]
    thr = rng.integers(-200, 200, size=16)
    thr[0] = 1 << 12  # beyond the range: a constant decision
    neg = (np.arange(16) % 3 == 0).astype(np.int64)
    g.layers += [
        Threshold("thr2", ["c2"], [t("q2", (3, 3, 16), bip)], c=16, pixels=9, in_w=10, thr_w=14, thresholds=thr,
                  neg=neg),
        FcXnorMvu("fc3", ["q2"], [t("y", (1, 1, 5))], n=144, cout=5, pe=1, simd=16,
                  weights=rng.choice([-1, 1], size=(5, 144))),
    ]
    g.output = "y"
    g.toposort()
    return g


def _frames(g, n=5, seed=1):
    rng = np.random.default_rng(seed)
    shape = g.tensors[g.input].shape
    fr = [rng.integers(-128, 128, size=shape) for _ in range(n)]
    return fr + [np.full(shape, 127), np.full(shape, -128), np.zeros(shape, dtype=np.int64)]


def _fuse(g: HwGraph) -> HwGraph:
    """``g`` with its elementwise chains fused into Epilogues (as the standard passes leave a graph)."""
    from binaryhpe.compile.kinds.epilogue import Epilogue
    from binaryhpe.compile.passes import FuseEpilogue

    FuseEpilogue().apply(g)
    epis = [lay for lay in g.layers if isinstance(lay, Epilogue)]
    assert len(epis) >= 4 and max(len(e.ops) for e in epis) >= 4, epis
    return g


@pytest.mark.parametrize("fused", [False, True], ids=["per_op", "epilogues"])
def test_every_kind_csim_equals_reference(tmp_path, fused):
    g = _kinds_graph()
    frames = _frames(g)
    env = [g.execute(f) for f in frames]
    # the graph exercises saturation, both signs of the PReLU and both threshold directions
    assert np.any(np.abs(env[0]["r0"]) == 127) or np.any(env[0]["r0"] == -128)
    assert np.any(env[0]["b1"] < 0) and np.any(env[0]["b1"] > 0)
    assert any(np.any(e["j1"] == 2 ** 15 - 1) or np.any(e["j1"] == -2 ** 15) for e in env)  # the join saturates
    if fused:  # hls4ml maps each Epilogue through its ops; the traced comparison still covers m1, b1, p1, j1
        g = _fuse(g)
    model, outv, b = H.to_hls4ml(g, tmp_path / "hls4ml")
    rep = H.compare(g, model, outv, b, frames)
    assert rep["bit_exact"], (rep["first_mismatch"], rep["layers_with_mismatches"])
    assert rep["compared_elements"] == 5 * len(frames)
    kinds = {row["kind"] for row in b.table}
    assert {"FxpMvu", "XnorMvu", "FcXnorMvu", "Requant", "Sign", "MulShift", "AddConst", "Prelu", "JoinAdd",
            "Concat", "Split", "Pool", "Threshold"} <= kinds, kinds
    # every hls4ml tensor standing for one of ours was traced and compared: all of them except the
    # plumbing aliases
    ours = ("a0", "r0", "s0", "a1", "m1", "b1", "p1", "j1", "r1", "r2", "c1", "sa", "sb", "pm", "ps", "c2", "q2")
    assert rep["traced_elements"] >= sum(int(np.prod(b.g.tensors[t].shape)) for t in ours) * len(frames)
    assert set(ours) <= set(b.g.tensors)  # (fused: the builder mapped the graph with its Epilogues unfused)
    # hand check of one element, independent of both: the first output channel of the first pixel of conv0
    x = frames[0]
    xp = np.zeros((8, 8, 4), dtype=np.int64)
    xp[1:7, 1:7] = x
    assert env[0]["a0"][0, 0, 0] == int(np.sum(xp[0:3, 0:3].reshape(-1) * g.layer("conv0").weights[0]))
    print(f"kinds graph: {rep['compared_elements']} output, {rep['traced_elements']} traced elements exact")


# ---------------------------------------------------------------------------------------------------------
# (3) a kind hls4ml cannot take

def test_unsupported_kind_names_layer_and_backend(tmp_path):
    g = HwGraph()
    g.tensors["x"] = TensorInfo("x", (2, 2, 4), Fmt(8, 0))
    g.tensors["y"] = TensorInfo("y", (2, 2, 4), Fmt(2, 0, signed=False))
    g.input, g.output = "x", "y"
    g.layers.append(MultiThreshold("act_multi_7", ["x"], ["y"], c=4, pixels=4, in_w=8, thr_w=8, out_w=2,
                                   thresholds=np.tile(np.array([-10, 0, 10]), (4, 1))))
    with pytest.raises(BinaryHPEError) as ei:
        H.build(None, g, tmp_path, sim=False)
    msg = str(ei.value)
    assert "'act_multi_7'" in msg and "hls4ml" in msg and "MultiThreshold" in msg, msg
    assert not (tmp_path / "hls4ml").exists()


# ---------------------------------------------------------------------------------------------------------
# (4) the project a Vitis HLS user gets

def test_project_files_precisions_reuse(tmp_path):
    g = _kinds_graph()
    rep = H.build(None, g, tmp_path, sim=False)
    prj = tmp_path / "hls4ml"
    assert rep["project"] == str(prj)
    for f in ("build_prj.tcl", "vivado_synth.tcl", "hls4ml_config.yml", f"firmware/{H.PROJECT}.cpp",
              f"firmware/{H.PROJECT}.h", "firmware/parameters.h", "firmware/defines.h",
              f"{H.PROJECT}_test.cpp", "firmware/ap_types/ap_fixed.h", "firmware/nnet_utils/nnet_conv2d.h"):
        assert (prj / f).is_file(), f
    tcl = (prj / "build_prj.tcl").read_text() + (prj / "project.tcl").read_text()
    assert H.PROJECT in tcl and "xczu3eg" in tcl
    assert any(p.suffix == ".h" for p in (prj / "firmware" / "weights").iterdir())
    defines = (prj / "firmware" / "defines.h").read_text()
    params = (prj / "firmware" / "parameters.h").read_text()
    # conv0: acc_w = w_w + in_w + clog2(N) = 4 + 8 + 6 = 18 bits, exponent 7 (input Q(8,7))
    conv0 = next(r for r in rep["layers"] if r["layer"] == "conv0")
    assert conv0["precision"] == f"fixed<{4 + 8 + math.ceil(math.log2(36))},{18 - 7},TRN,SAT>"
    assert "ap_fixed<18,11,AP_TRN,AP_SAT" in defines
    # reuse factor = NF * SF = (cout / PE) * (N / SIMD), from the folding
    assert conv0["reuse_factor"] == conv0["folding_reuse_factor"] == (8 // 2) * (36 // 4)
    xc = next(r for r in rep["layers"] if r["layer"] == "xconv1")
    assert xc["reuse_factor"] == (8 // 4) * (72 // 8)
    assert f"reuse_factor = {(8 // 2) * (36 // 4)};" in params
    # binary layers use +-1 in 2-bit two's complement, never hls4ml's XNOR (ap_uint<1>) types
    assert not re.search(r"typedef ap_uint<1> (?!\w*_index;)\w+;", defines), defines
    assert "both_binary" not in params and "data_binary" not in params
    # no C simulation was asked for
    assert rep["bit_exact"] is None and rep["estimates"] is None


# ---------------------------------------------------------------------------------------------------------
# (5) a BiDRN block from the model side (the kinds as the compiler lowers them, not built by hand)

def test_bidrn_block_csim_equals_reference(tmp_path):
    """A whole basic BiDRB with down-sampling (binary convs with alpha and RPReLU, residual adds, Block
    Residual) from binaryhpe.train, exported in hardware mode, through the hls4ml backend's flow."""
    from binaryhpe.compile.flow import build_backend
    from binaryhpe.train.bidrn import BiDRB, randomize
    from binaryhpe.train.config import TINY, NumericsConfig
    from binaryhpe.train.hardware import to_hardware

    torch.manual_seed(0)
    m = to_hardware(randomize(BiDRB("basic", 8, 16, 2, TINY), seed=3), NumericsConfig())
    path = export_qonnx(m, torch.rand(1, 8, 6, 6) * 2 - 1, tmp_path / "bidrb.onnx", verbose=False)
    rep = build_backend(str(path), tmp_path / "out", "hls4ml", sim=True, seed=0)
    assert rep["bit_exact"] is True, rep.get("first_mismatch") or rep.get("layers_with_mismatches")
    kinds = {row["kind"] for row in rep["layers"]}
    assert {"XnorMvu", "MulShift", "Prelu", "JoinAdd"} <= kinds, kinds
    assert rep["traced_mismatches"] == 0 and rep["traced_elements"] > rep["compared_elements"] > 0
