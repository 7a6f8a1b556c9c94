"""The FINN backend (issue 8): FINN's own lowering and python-mode execution against our integer reference.

Needs FINN's environment .venv-finn (made by .ci/setup-finn); without it every test fails saying so.

(1) BNN-PYNQ-style nets end to end: FINN's execution equals HwGraph.execute element for element, and also
    equals qonnx's execute_onnx of the QONNX (a second reference, computed here); FINN's cycle estimates for
    the same folding equal our MVU cycle model where both count the same thing (PE/SIMD folding);
(2) the comparison can fail: zero-padded binary convolutions handed to FINN unchanged come out wrong (FINN's
    one-bit streams pad with -1), and the per-stage check pins it on the XNOR conversion;
(3) a layer FINN's streamlining cannot take (a BiDRN module's full-precision residual datapath) gets one
    error naming the layer and "finn"; a missing .venv-finn says to run .ci/setup-finn;
(4) the hw_graph flow (FINN HW layers written from our graph, finn_graph.py): a hand-built graph with every
    kind, the BNN-PYNQ nets and a BiDRN module execute in FINN equal to our reference on every output and
    every intermediate tensor, and a wrong mapping is caught. The tiny BiDRN: test_backend_finn_tiny.py.
"""

import json

import numpy as np
import pytest
import torch

import bnn_pynq_models as M
from binaryhpe import BinaryHPEError
from binaryhpe.compile.backends import finn_backend, run_backend
from binaryhpe.compile.lower import load_qonnx, lower
from binaryhpe.compile.passes import optimize
from binaryhpe.train.export import export_qonnx

MODELS = {
    # 8-bit input (FINN: quantized MVAU, INT8 thresholds), max pool, FC with a bias, per-tensor output scale
    "cnv8": ("cnv", dict(fc_bias=True, out_scale=0.375), (1, 3, 16, 16)),
    # binary input, zero-padded 3x3 convs (FMPadding), max pool, x.view(N, -1), plain MatMul head
    "cnv_bin_pad": ("cnv", dict(binary_input=True, pad=1, ch=(8, 8, 16), size=12, reshape=True), (1, 3, 12, 12)),
}


def _need_finn():
    py = finn_backend.REPO / ".venv-finn" / "bin" / "python"
    if not py.is_file():
        pytest.fail(f"FINN's environment is missing ({py}): run .ci/setup-finn")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("finn_models")
    cache = {}

    def get(name):
        if name not in cache:
            kind, kw, shape = MODELS[name]
            model = M.build(kind, 0, **kw)
            x = torch.from_numpy(np.random.RandomState(0).rand(*shape).astype(np.float32) * 2 - 1)
            path = export_qonnx(model, x, root / f"{name}.onnx", verbose=False)
            cache[name] = (path, optimize(lower(load_qonnx(path))))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def built(exported, tmp_path_factory):
    _need_finn()
    cache = {}

    def get(name, **kw):
        key = (name, tuple(sorted(kw.items())))
        if key not in cache:
            path, g = exported(name)
            out = tmp_path_factory.mktemp(f"finn_{name}")
            rep = (run_backend("finn", path, g, out, sim=True, seed=0) if not kw
                   else finn_backend.build(path, g, out, sim=True, seed=0, **kw))
            cache[key] = (rep, out, path, g)
        return cache[key]

    return get


def _qonnx_outputs(path, xs):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    mw = ModelWrapper(str(path))
    return [execute_onnx(mw, {mw.graph.input[0].name: x})[mw.graph.output[0].name] for x in xs]


@pytest.mark.parametrize("name", list(MODELS))
def test_finn_end_to_end_equals_reference(built, name):
    rep, out, path, g = built(name)
    proj = out / "finn"
    assert rep["backend"] == "finn" and rep["project"] == str(proj)
    # element for element against HwGraph.execute: every output element of 7 frames (3 random, 4 extreme)
    assert rep["compared_elements"] == 7 * 10, rep["compared_elements"]
    assert rep["mismatches"] == 0 and rep["bit_exact"] is True, rep
    # a second, independent reference: qonnx's execution of the QONNX itself, against FINN's outputs on disk
    xs = np.load(proj / "inputs.npy")
    ys = np.load(proj / "finn_outputs.npy")
    for x, y, q in zip(xs, ys, _qonnx_outputs(path, xs)):
        assert np.array_equal(y.reshape(q.shape), q)
    assert len({y.tobytes() for y in ys}) >= 5  # the frames give different outputs: the equality is not vacuous
    assert rep["finn_stage_checks_vs_qonnx"] == {"finn_tidy": 0, "finn_streamlined": 0, "finn_hw": 0}
    # the project: FINN ONNX at every stage, the folded partition, a build configuration FINN accepts
    for f in ("finn_tidy.onnx", "finn_streamlined.onnx", "finn_hw.onnx", "finn_dataflow_parent.onnx",
              "finn_dataflow_partition.onnx", "folding_config.json", "dataflow_build_config.json", "build.py"):
        assert (proj / f).is_file(), f
    cfg = json.loads((proj / "dataflow_build_config.json").read_text())
    assert cfg["fpga_part"] == finn_backend.FPGA_PART and cfg["steps"][0] == "step_specialize_layers"
    # FINN's own code generation (HLS C++ / RTL) ran for every layer of the partition
    assert rep["finn_codegen"]["layers"] == rep["finn_codegen"]["of"] == rep["finn_layers"] > 0
    assert "step_synthesize_bitfile" in cfg["steps"]
    folding = json.loads((proj / "folding_config.json").read_text())
    # our folding went to FINN: every MVU's PE/SIMD appears on one of FINN's MVAUs, in order
    from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu

    ours = [(lay.pe, lay.simd) for lay in g.layers if isinstance(lay, (XnorMvu, FxpMvu))]
    finn = [(v["PE"], v["SIMD"]) for k, v in folding.items() if k.startswith("MVAU")]
    assert finn == ours, (finn, ours)
    # estimates side by side: FINN's exp_cycles of an MVAU = pixels * (MH/PE) * (MW/SIMD), as our cycle model
    est = rep["estimates"]
    mvau_rows = [r for r in est["layers"] if r["finn_node"].startswith("MVAU")]
    assert len(mvau_rows) == len(ours)
    for r in mvau_rows:
        assert r["finn_cycles"] == r["our_cycles"] > 0, r
        assert r["finn_lut"] > 0 and r["our_lut"] > 0, r
        f = est["finn"][r["finn_node"]]
        assert {"cycles", "lut", "bram_18k", "dsp"} <= set(f), f
        assert all(n in est["ours"] for n in r["ours"])


def test_finn_zero_padding_without_rewrite_is_caught(built):
    """FINN's XNOR MVAU reads the zeros of its padding as -1: handed the zero-padded binary convs unchanged,
    FINN's execution differs from ours, and the stage checks show it starting at the XNOR conversion."""
    rep, *_ = built("cnv_bin_pad", int2_padding=False)
    assert rep["bit_exact"] is False and rep["mismatches"] > 0, rep
    checks = rep["finn_stage_checks_vs_qonnx"]
    assert checks["finn_tidy"] == 0 and checks["finn_streamlined"] > 0, checks


def test_finn_unsupported_layer_is_named(tmp_path):
    """A BiDRN Base LCR (binary conv, alpha, RPReLU, residual add of full-precision values): FINN's
    streamlining leaves its first full-precision node outside FINN's HW layers."""
    _need_finn()
    from test_train_exact import CASES, NC

    from binaryhpe.train.bidrn import randomize
    from binaryhpe.train.hardware import to_hardware

    make, c, hw = CASES["base_lcr_3x3"]
    torch.manual_seed(0)
    m = to_hardware(randomize(make(), seed=3), NC)
    path = export_qonnx(m, torch.rand(1, c, hw, hw) * 2 - 1, tmp_path / "lcr.onnx", verbose=False)
    g = optimize(lower(load_qonnx(path)))
    with pytest.raises(BinaryHPEError) as ei:
        finn_backend.build(path, g, tmp_path / "out", sim=False, flow="streamline")
    msg = str(ei.value)
    assert msg.startswith("finn cannot take ") and msg.count("finn cannot take") == 1, msg
    # it names a node of the user's QONNX file: the activation quantizer whose output feeds both the binary
    # branch and the full-precision residual add, which FINN's streamlining cannot absorb
    import onnx

    names = {n.name for n in onnx.load(str(path)).graph.node}
    named = msg.split("'")[1]
    assert named in names, msg
    add = next(n for n in onnx.load(str(path)).graph.node if n.op_type == "Add" and len(
        [i for i in n.input if not i.startswith("mod.")]) == 2)  # the residual add: two activation inputs
    assert add.name in msg, msg
    # the default flow sees the residual kinds and writes FINN's HW layers from our graph instead: exact
    rep = run_backend("finn", path, g, tmp_path / "out_auto", sim=True)
    assert rep["finn_flow"] == "hw_graph" and rep["bit_exact"] is True, rep
    assert rep["traced_mismatches"] == 0 and rep["traced_elements"] > 10 * rep["compared_elements"]


def test_finn_missing_environment_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("BINARYHPE_FINN_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(BinaryHPEError) as ei:
        run_backend("finn", tmp_path / "m.onnx", None, tmp_path, sim=False)
    assert "finn" in str(ei.value) and ".ci/setup-finn" in str(ei.value)


# ---------------------------------------------------------------------------------------------------------
# (4) the hw_graph flow

@pytest.mark.parametrize("fused", [False, True], ids=["per_op", "epilogues"])
def test_every_kind_hw_graph_flow_equals_reference(tmp_path, fused):
    """The hls4ml suite's hand-built graph (saturation, PReLU slopes of both signs and above 1, joins with
    shifts, both threshold directions, padded max pool of signed values, sum pool, concat/split, binary FC),
    executed by FINN layer by layer; fused, FINN takes each Epilogue through its ops, and every intermediate
    tensor that fusion removed is still compared."""
    _need_finn()
    from test_backend_hls4ml import _frames, _fuse, _kinds_graph

    g = _kinds_graph()
    frames = _frames(g)
    # every tensor of ours but the windows is compared, on every frame (of the per-op graph: fused as well)
    plain = {t: int(np.prod(info.shape)) for t, info in g.tensors.items() if not info.windowed}
    if fused:
        g = _fuse(g)
        assert len(g.tensors) < len(plain) + 3
    rep = finn_backend.build(None, g, tmp_path, sim=True, frames=frames)
    assert rep["finn_flow"] == "hw_graph"
    assert rep["bit_exact"] is True and rep["mismatches"] == 0, rep.get("first_mismatch")
    assert rep["compared_elements"] == 5 * len(frames)
    assert rep["traced_mismatches"] == 0
    assert rep["traced_elements"] == sum(plain.values()) * len(frames)
    ops = {op for row in rep["estimates"]["layers"] for op in row["op_types"]}
    assert {"MVAU", "Requant", "Thresholding", "ElementwiseAdd", "ElementwiseSub", "DuplicateStreams",
            "StreamingConcat", "StreamingSplit", "Pool", "FMPadding", "ConvolutionInputGenerator"} <= ops, ops
    impl = rep["finn_requant_impl"]
    assert impl["rtl"] + impl["hls"] == sum(row["op_types"].count("Requant") for row in rep["estimates"]["layers"])
    assert rep["finn_codegen"]["layers"] == rep["finn_codegen"]["of"] == rep["finn_layers"]


def test_hw_graph_flow_catches_a_wrong_mapping(tmp_path, monkeypatch):
    """Round half up instead of floor (the bias FINN's Requant would need without our -1/2 correction): the
    comparison fails, and the traced check names the first tensor that differs."""
    _need_finn()
    from test_backend_hls4ml import _frames, _kinds_graph

    from binaryhpe.compile.backends import finn_graph

    real = finn_graph._Builder.requant

    def round_half_up(self, x, out_dt, lanes, m=1, shift=0, b=0):
        y = real(self, x, out_dt, lanes, m=m, shift=shift, b=b)
        bias = self.nodes[-1].input[2]
        self.inits[bias] = np.round(self.inits[bias])  # drops the -(1/2 - 2^-(shift+1)) correction
        return y

    monkeypatch.setattr(finn_graph._Builder, "requant", round_half_up)
    g = _kinds_graph()
    rep = finn_backend.build(None, g, tmp_path, sim=True, frames=_frames(g))
    assert rep["bit_exact"] is False and rep["traced_mismatches"] > 0
    assert rep["first_mismatch"]["tensor"] == "r0", rep["first_mismatch"]  # conv0's requant, shift 4


@pytest.mark.parametrize("name", list(MODELS))
def test_bnn_pynq_hw_graph_flow_equals_reference(exported, name, tmp_path):
    """The same nets through the other flow: FINN's layers from our graph instead of its streamlining."""
    _need_finn()
    path, g = exported(name)
    rep = finn_backend.build(path, g, tmp_path, sim=True, flow="hw_graph")
    assert rep["bit_exact"] is True and rep["compared_elements"] == 7 * 10, rep
    assert rep["traced_mismatches"] == 0 and rep["traced_elements"] > 100 * rep["compared_elements"]
    from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu

    mvus = [lay for lay in g.layers if isinstance(lay, (XnorMvu, FxpMvu))]
    rows = [r for r in rep["estimates"]["layers"] if "MVAU" in r["op_types"]]
    assert [r["ours"] for r in rows] == [[lay.name] for lay in mvus]
    for r, lay in zip(rows, mvus):
        assert r["folding"] == {"PE": lay.pe, "SIMD": lay.simd}
        assert r["finn_cycles"] == r["our_cycles"] == lay.cycles()["ii"], r


def test_cli_finn_flow_option(exported, tmp_path, capsys):
    """``binaryhpe build QONNX --backend finn --finn-flow hw_graph --sim``: the flow a user forces is the one
    run (auto would take FINN's streamlining for this net), and report.json says so; the option belongs to the
    FINN backend only."""
    _need_finn()
    from binaryhpe.cli import main

    path, _ = exported("cnv8")
    out = tmp_path / "out"
    assert main(["build", str(path), "--backend", "finn", "--finn-flow", "hw_graph", "--sim", "-o", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["backend"] == "finn" and rep["finn_flow"] == "hw_graph" and rep["bit_exact"] is True
    assert (out / "finn" / "finn_hw.onnx").is_file() and not (out / "finn" / "finn_streamlined.onnx").exists()
    capsys.readouterr()
    assert main(["build", str(path), "--backend", "hls4ml", "--finn-flow", "hw_graph", "-o", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--finn-flow" in err[0] and "hls4ml" in err[0], err
