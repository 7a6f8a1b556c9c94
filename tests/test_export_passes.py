"""The export's ModelWrapper + InferShapes on indices (train/export.infer_shapes_file, binaryhpe.qonnx_passes)
write the same file as qonnx's own passes, byte for byte, and ``export_qonnx`` (without torch's graph lint)
writes that file, the raw export having run with the lint."""

import shutil

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
