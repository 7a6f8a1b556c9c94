"""The export's ModelWrapper + InferShapes on indices (train/export.infer_shapes_file, binaryhpe.qonnx_passes)
write the same file as qonnx's own passes, byte for byte, and ``export_qonnx`` (without torch's graph lint)
writes that file, the raw export having run with the lint; a BiDRN traced at a small input and given the input's
shapes writes the file of the full-size trace."""

import shutil

import pytest
from brevitas.export import export_qonnx as brevitas_export

from binaryhpe.train.export import _quiet, export_qonnx, infer_shapes_file, no_jit_lint
from binaryhpe.train.hardware import to_hardware
from binaryhpe.train.models import build_model


def test_indexed_shape_inference_writes_qonnx_bytes(tmp_path):
    model, x = build_model("tiny-bidrn", seed=3)
    to_hardware(model)
    raw = tmp_path / "raw.onnx"
    with _quiet():
        brevitas_export(model.eval(), x, str(raw), dynamo=False)
    fast, ref = tmp_path / "fast.onnx", tmp_path / "ref.onnx"
    shutil.copyfile(raw, fast)
    shutil.copyfile(raw, ref)
    infer_shapes_file(fast)
    mw = infer_shapes_file(ref, qonnx_passes=True)
    assert len(mw.graph.value_info) > len(mw.graph.node)  # shapes were inferred (every node output, initializers)
    assert fast.read_bytes() == ref.read_bytes()
    assert fast.read_bytes() != raw.read_bytes()
    # and export_qonnx, which skips torch's graph lint, writes exactly this file (Brevitas' export is deterministic)
    assert export_qonnx(model, x, tmp_path / "model.onnx", verbose=False).read_bytes() == ref.read_bytes()


def test_export_without_jit_lint_restores_it():
    import torch

    lint = torch._C._jit_pass_lint
    with no_jit_lint():
        assert torch._C._jit_pass_lint is not lint
    assert torch._C._jit_pass_lint is lint


@pytest.mark.parametrize("name", ["tiny-bidrn", "bidrn-18-face"])
def test_small_trace_writes_the_full_size_file(tmp_path, monkeypatch, name):
    """A BiDRN traced at one downsampling factor square and given the input's shapes (retarget_input) is the file
    the trace at the full input writes, byte for byte after the export's shape inference."""
    from binaryhpe.train import export as ex

    model, x = build_model(name, seed=1)
    to_hardware(model)
    f = model.cfg.downsampling()
    assert tuple(ex.small_trace_input(model, x).shape) == (1, x.shape[1], f, f)
    real, retargeted = ex.retarget_input, []

    def spy(path, shape):
        retargeted.append(real(path, shape))
        return retargeted[-1]

    monkeypatch.setattr(ex, "retarget_input", spy)
    fast = export_qonnx(model, x, tmp_path / "fast.onnx", verbose=False)
    assert retargeted == [True]  # the small trace was used, not the fallback to the full one
    ref = export_qonnx(model, x, tmp_path / "ref.onnx", verbose=False, small_trace=False)
    assert retargeted == [True]  # the reference traced at the full input
    assert fast.read_bytes() == ref.read_bytes()


def test_retarget_refuses_a_graph_that_may_read_the_size(tmp_path):
    """A graph with an op outside SIZE_FREE_OPS (a Reshape's target shape may come from the input's size) is left
    as it is; a model other than a BiDRN is traced at its own input."""
    import onnx
    import torch
    from onnx import TensorProto, helper

    from binaryhpe.train.export import retarget_input, small_trace_input

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1, 32])
    g = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "g", [x], [y], [shape])
    path = tmp_path / "reshape.onnx"
    onnx.save(helper.make_model(g), str(path))
    before = path.read_bytes()
    assert retarget_input(path, (1, 2, 8, 8)) is False
    assert path.read_bytes() == before
    assert small_trace_input(torch.nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 64, 64)) is None
