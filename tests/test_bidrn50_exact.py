"""BiDRN-50 (the paper's body encoder) at its real input size, 256x192: hardware-mode Brevitas and qonnx's
execute_onnx agree on every element.

The whole network is checked stage by stage: the stem and each of the 16 BiDRBs are exported as their own
QONNX graph, fed the exact tensor the previous stage produced, and compared element for element. Because each
stage's QONNX output equals PyTorch's exactly and is the next stage's input, the composition (the whole
encoder) is equal too. (Exporting the 2,400-node graph in one piece takes 15 minutes here: torch's TorchScript
exporter is superlinear in graph size; `benchmarks/compile_bidrn50.py` does it whole.)
"""

import numpy as np
import torch

from binaryhpe.train.export import execute_qonnx, export_qonnx
from binaryhpe.train.hardware import to_hardware
from binaryhpe.train.models import build_model


def test_bidrn50_body_exact_at_256x192(tmp_path):
    model, x = build_model("bidrn-50-body", seed=0)
    assert tuple(x.shape) == (1, 3, 256, 192)
    to_hardware(model)
    stages = [("stem", model.stem)] + [(f"block{i}", b) for i, b in enumerate(model.blocks)]
    assert len(stages) == 17
    cur = x
    for name, stage in stages:
        with torch.no_grad():
            ref = stage(cur)
        path = export_qonnx(stage, cur, tmp_path / f"{name}.onnx", verbose=False)
        out = execute_qonnx(path, cur.numpy())
        assert out.shape == ref.shape
        bad = int(np.count_nonzero(out != ref.numpy()))
        assert bad == 0, f"{name}: {bad} of {ref.numel()} elements differ"
        cur = ref
    assert tuple(cur.shape) == (1, 2048, 8, 6)
    # and the composition is the model: the chained stages give the full forward's output
    with torch.no_grad():
        assert torch.equal(model(x), cur)
