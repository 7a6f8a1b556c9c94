"""User frames: ``binaryhpe build MODEL -o OUT --sim --inputs FRAMES.npy`` simulates the user's frames (N x the
QONNX input shape without its batch dimension, the float values the QONNX graph takes) after the built-in ones
and writes ``OUT/outputs.npy`` (N x the QONNX output shape without its batch dimension, in its scale). For the
RTL, the C (``--target mcu:NAME``, QEMU) and the backends (hls4ml, FINN), ``outputs.npy`` must equal the QONNX
graph's own execution of the same frames, element for element (the exact float64 execution of
``compile/reference.py``; qonnx's float32 ``execute_onnx`` too where the frame fits float32). A bad frame file
is one error naming the file and what is expected, before anything slow runs.

Models: the tiny BiDRN (conftest's ``tiny_qonnx``; input quantizer FLOOR, 4-D output) and a BNN-PYNQ-style CNV
net (``tests/bnn_pynq_models.py``: 8-bit input, a Gemm head with a per-tensor output scale: a 2-D output).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from binaryhpe import BinaryHPEError
from binaryhpe.cli import main
from binaryhpe.compile.flow import build, build_backend, step_lower
from binaryhpe.compile.frames import io_shapes, load_frames, quantize
from binaryhpe.compile.reference import REFERENCE_NAME, exact_reference, float32_context, hw_input

N_USER = 3


def _user_frames(shape, seed: int) -> np.ndarray:
    """N_USER frames (N x shape): values inside and beyond the input range, on and between the input grid's
    points and exactly halfway between two (the rounding mode decides those)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, size=(N_USER, *shape))
    x[1] = np.round(x[1] * 128) / 128  # on the Q(8,7) grid
    x[2] = (np.floor(x[2] * 128) + 0.5) / 128  # halfway between grid points
    return x.astype(np.float32)


def _qonnx(mw, xs: np.ndarray) -> np.ndarray:
    """The QONNX graph's exact output of each frame (float64 execution), without the batch dimension."""
    return np.stack([exact_reference(mw, x[None]).output[0] for x in xs])


@pytest.fixture(scope="module")
def cnv_qonnx(tmp_path_factory):
    import bnn_pynq_models as M

    from binaryhpe.train.export import export_qonnx

    model = M.build("cnv", 0, fc_bias=True, out_scale=0.375)
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, 3, 16, 16)).astype(np.float32))
    return export_qonnx(model, x, tmp_path_factory.mktemp("cnv") / "cnv8.onnx", verbose=False)


@pytest.fixture(scope="module")
def lowered(tiny_qonnx, cnv_qonnx):
    return {"tiny": step_lower(tiny_qonnx), "cnv": step_lower(cnv_qonnx)}


def _write(tmp_path, name, arr) -> str:
    p = tmp_path / name
    np.save(p, arr)
    return str(p)


# --- the frame file ----------------------------------------------------------------------------------------
def test_bad_frame_files_are_one_clear_error(tmp_path):
    shape = (1, 3, 16, 16)
    good = np.zeros((2, 3, 16, 16), np.float32)
    assert load_frames(_write(tmp_path, "good.npy", good), shape).shape == (2, 3, 16, 16)
    # float64 values that float32 holds exactly are taken as they are
    assert load_frames(_write(tmp_path, "f64.npy", good.astype(np.float64) + 0.25), shape).dtype == np.float32
    nan = good.copy()
    nan[1, 2, 3, 4] = np.nan
    cases = {
        "shape.npy": (np.zeros((2, 3, 16, 15), np.float32), r"shape \(2, 3, 16, 15\); expected .*\(N, 3, 16, 16\)"),
        "batch.npy": (np.zeros((1, 1, 3, 16, 16), np.float32), r"shape \(1, 1, 3, 16, 16\); expected"),
        "empty.npy": (np.zeros((0, 3, 16, 16), np.float32), r"shape \(0, 3, 16, 16\); expected"),
        "ints.npy": (np.zeros((2, 3, 16, 16), np.int64), r"dtype int64; expected .*float32"),
        "f64.npy": (good.astype(np.float64) + 1e-12, r"dtype float64 with values float32 cannot hold exactly"),
        "nan.npy": (nan, r"1 non-finite value\(s\), the first nan at index \(1, 2, 3, 4\)"),
        "inf.npy": (np.full((1, 3, 16, 16), np.inf, np.float32), r"768 non-finite value\(s\)"),
    }
    for name, (arr, msg) in cases.items():
        path = _write(tmp_path, name, arr)
        with pytest.raises(BinaryHPEError, match=msg) as e:
            load_frames(path, shape)
        assert str(e.value).startswith(f"--inputs {path}: ") and "\n" not in str(e.value), name
    (tmp_path / "text.npy").write_text("not an array")
    with pytest.raises(BinaryHPEError, match=r"text.npy: not a readable .npy file"):
        load_frames(tmp_path / "text.npy", shape)
    with pytest.raises(BinaryHPEError, match=r"missing.npy: no such file; expected"):
        load_frames(tmp_path / "missing.npy", shape)


def test_cli_refuses_bad_frames_before_building(tiny_qonnx, tmp_path, capsys):
    bad = _write(tmp_path, "bad.npy", np.zeros((2, 16, 16, 3), np.float32))  # NHWC, not the QONNX's NCHW
    out = tmp_path / "out"
    assert main(["build", str(tiny_qonnx), "-o", str(out), "--inputs", bad]) == 2
    assert f"--inputs {bad}: the frames are simulated; add --sim" in capsys.readouterr().err
    rc = main(["build", str(tiny_qonnx), "-o", str(out), "--sim", "--inputs", bad])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0
    assert f"--inputs {bad}: shape (2, 16, 16, 3); expected" in err and "(N, 3, 16, 16)" in err
    assert not (out / "rtl").exists() and not (out / "outputs.npy").exists()  # refused before the RTL step


# --- the conversions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["tiny", "cnv"])
def test_input_quantizer_is_the_qonnx_graphs(lowered, model):
    # the host's float -> integer conversion (g.input_quant) equals the input Quant node's output in the QONNX
    # execution, on values inside and beyond the range and exactly on rounding ties
    g, mw = lowered[model]
    in_shape, _ = io_shapes(mw)
    xs = _user_frames(in_shape[1:], seed=3)
    for x in xs:  # qonnx's own execution of the Quant node (float32 holds these frames' values exactly)
        assert np.array_equal(quantize(g, x), hw_input(g, float32_context(mw, x[None])))


@pytest.mark.parametrize("mode", ["ROUND", "HALF_EVEN", "FLOOR", "CEIL", "UP", "DOWN", "HALF_UP", "HALF_DOWN"])
@pytest.mark.parametrize("bits, signed", [(8, 1), (4, 0), (3, 1)])
def test_quantize_follows_qonnx_int_quant(mode, bits, signed):
    # every rounding mode qonnx's Quant knows, signed and unsigned, on values inside, beyond and exactly halfway
    # between the grid's points: the same integers as qonnx's own int_quant
    import types

    from qonnx.custom_op.general.intquant import int_quant

    from binaryhpe.compile.graph import Fmt, TensorInfo

    scale = 2.0**-3
    g = types.SimpleNamespace(input="x", source="t", input_quant={"scale": scale, "bits": bits, "signed": signed,
                                                                   "rounding_mode": mode},
                              tensors={"x": TensorInfo("x", (4, 5, 6), Fmt(bits, 3, signed=bool(signed)))})
    rng = np.random.default_rng(bits)
    x = rng.uniform(-3, 3, (6, 4, 5))
    x[0] = (np.round(x[0] * 8) + 0.5) / 8  # ties
    x[1] = np.round(x[1] * 8) / 8  # on the grid
    x = x.astype(np.float32)
    want = int_quant(x[None], np.float32(scale), np.float32(0), np.float32(bits), signed, 0, mode)[0] / scale
    assert np.array_equal(quantize(g, x), want.transpose(1, 2, 0))


# --- the RTL -----------------------------------------------------------------------------------------------
def _assert_reference(rep, bad, model):
    """``bad``: the frames the reference check flagged: none, on either net. A BNN-PYNQ net's BatchNorm has
    float parameters (a non-dyadic node, docs/numerics.md): its frames are exact when the quantizer after it
    decides the same in float64 and in the graph's float32 execution, which the check asserts."""
    assert not bad, bad
    assert rep["bit_exact"] is True


def _check_outputs(out, mw, xs):
    got = np.load(out / "outputs.npy")
    _, out_shape = io_shapes(mw)
    assert got.shape == (len(xs), *out_shape[1:]) and got.dtype == np.float64
    want = _qonnx(mw, xs)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} outputs differ from the QONNX execution"
    # qonnx's float32 execute_onnx (what a qonnx user runs) agrees too
    assert np.array_equal(got[0], float32_context(mw, xs[0][None])[mw.graph.output[0].name][0])
    assert len({o.tobytes() for o in got}) == len(xs)  # distinct frames, distinct outputs


@pytest.mark.parametrize("model", ["tiny", "cnv"])
def test_rtl_outputs_npy_equals_qonnx(tiny_qonnx, cnv_qonnx, lowered, tmp_path, model):
    path = {"tiny": tiny_qonnx, "cnv": cnv_qonnx}[model]
    _, mw = lowered[model]
    xs = _user_frames(io_shapes(mw)[0][1:], seed=5)
    out = tmp_path / "out"
    rep = build(str(path), out, sim=True, inputs=_write(tmp_path, "frames.npy", xs))
    sim = rep["simulation"]
    assert all(r["mismatches"] == 0 for r in sim["runs"])  # the RTL equals the compiler reference, every frame
    _assert_reference(rep, sim["reference_vs_qonnx"]["mismatching_frames"], model)
    assert sim["reference"] == REFERENCE_NAME
    assert sim["frames_checked"] == sim["frames"] == len(sim["frame_names"]) + N_USER
    assert sim["user_frames"]["frames"] == N_USER and sim["user_frames"]["outputs"] == str(out / "outputs.npy")
    assert json.loads((out / "report.json").read_text())["simulation"]["frames_checked"] == sim["frames_checked"]
    _check_outputs(out, mw, xs)


# --- the C under QEMU ------------------------------------------------------------------------------------------
def test_mcu_outputs_npy_equals_qonnx(tiny_qonnx, lowered, tmp_path):
    _, mw = lowered["tiny"]
    xs = _user_frames(io_shapes(mw)[0][1:], seed=6)
    out = tmp_path / "out"
    f = _write(tmp_path, "frames.npy", xs)
    assert main(["build", str(tiny_qonnx), "-o", str(out), "--target", "mcu:mps2-an505", "--sim", "--inputs", f]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["bit_exact"] and rep["bit_exact_target"] and "user_outputs" not in rep
    assert rep["simulation"]["reference"] == REFERENCE_NAME and rep["simulation"]["frames_checked"] == N_USER
    assert rep["frames"] > N_USER and rep["simulation"]["user_frames"]["frames"] == N_USER
    _check_outputs(out, mw, xs)


# --- the backends ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend, opts", [("hls4ml", {}), ("finn", {}), ("finn", {"flow": "hw_graph"})],
                         ids=["hls4ml", "finn-streamline", "finn-hw_graph"])
def test_backend_outputs_npy_equals_qonnx(cnv_qonnx, lowered, tmp_path, backend, opts):
    if backend == "finn":
        from binaryhpe.compile.backends import finn_backend

        py = finn_backend.REPO / ".venv-finn" / "bin" / "python"
        if not py.is_file():
            pytest.fail(f"FINN's environment is missing ({py}): run .ci/setup-finn")
    _, mw = lowered["cnv"]
    xs = _user_frames(io_shapes(mw)[0][1:], seed=7)
    out = tmp_path / "out"
    rep = build_backend(str(cnv_qonnx), out, backend, sim=True, inputs=_write(tmp_path, "frames.npy", xs), **opts)
    assert "user_outputs" not in rep and rep["compared_elements"] > 0
    if backend == "finn" and not opts:
        # FINN's streamlining replaces the input quantizer (ROUND, ties to even) with its own thresholds, which
        # do not round exact ties the same way: on the frame of ties (xs[2]) FINN's outputs differ from the
        # QONNX graph's, outputs.npy holds FINN's, and the report says it is not bit-exact
        got, want = np.load(out / "outputs.npy"), _qonnx(mw, xs)
        assert np.array_equal(got[:2], want[:2]) and not np.array_equal(got[2], want[2])
        assert rep["bit_exact"] is False and rep["mismatches"] == np.count_nonzero(got[2] != want[2])
        return
    assert rep["mismatches"] == 0
    _assert_reference(rep, rep["simulation"]["mismatching_frames"], "cnv")
    if opts:
        assert rep["finn_flow"] == opts["flow"]
    assert rep["simulation"]["reference"] == REFERENCE_NAME and rep["simulation"]["frames_checked"] == N_USER
    assert rep["frames"] > N_USER
    _check_outputs(out, mw, xs)
