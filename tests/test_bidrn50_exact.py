"""BiDRN-50 (the paper's body encoder): PyTorch hardware mode, the exact reference of the QONNX graph and the
compiler's integer reference agree, stage by stage.

1. At the real input size, 256x192, on a random input: each stage (the stem and the 16 BiDRBs) is exported as
   its own QONNX graph, fed the exact tensor the previous stage produced, and PyTorch equals the exact
   reference (``compile.reference.exact_reference``, float64) element for element; the composition is the
   whole encoder. (Exporting the 2,400-node graph in one piece takes 15 minutes here: torch's TorchScript
   exporter is superlinear in graph size; ``benchmarks/compile_bidrn50.py`` does it whole.)
2. On worst-case frames (``compile.worstcase``) with full-scale test weights, at reduced spatial size (the
   stages are convolutional: their numerics do not depend on H x W): the stem, every stage transition (a
   Block Residual convolution, stride 2; the last one has 2048 output channels) are lowered; on every frame the
   compiler's integer reference equals the exact reference on every tensor, every first-level accumulator
   reaches both of its bounds, and the 16-bit formats saturate. ``benchmarks/worstcase_bidrn50.py`` runs all
   17 stages (``--full`` at the real sizes).
"""

import importlib.util
import pathlib

import numpy as np
import pytest
import torch
from qonnx.core.modelwrapper import ModelWrapper

from binaryhpe.compile.reference import exact_reference
from binaryhpe.train.export import export_qonnx
from binaryhpe.train.hardware import to_hardware
from binaryhpe.train.models import build_model

BENCH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "worstcase_bidrn50.py"


def _bench():
    spec = importlib.util.spec_from_file_location("worstcase_bidrn50", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
        run = exact_reference(ModelWrapper(str(path)), cur.numpy())  # the file as exported, no clean-up
        assert run.float32_exact, f"{name}: {run.wide_nodes()} need more than float32 holds"
        out = run.output
        assert out.shape == ref.shape
        bad = int(np.count_nonzero(out != ref.numpy()))
        assert bad == 0, f"{name}: {bad} of {ref.numel()} elements differ"
        cur = ref
    assert tuple(cur.shape) == (1, 2048, 8, 6)
    # and the composition is the model: the chained stages give the full forward's output
    with torch.no_grad():
        assert torch.equal(model(x), cur)


#: the stem and the four stage transitions (Block Residual 1x1 conv, 64/256/512/1024 inputs, 256..2048 outputs)
CI_STAGES = ["stem", "0", "3", "7", "13"]


@pytest.fixture(scope="module")
def bench_model():
    bench = _bench()
    return bench, bench.body_in_hardware_mode()


@pytest.mark.parametrize("stage", CI_STAGES)
def test_bidrn50_stage_worst_case(bench_model, stage, tmp_path):
    bench, model = bench_model
    r = bench.check_stage(model, stage, tmp_path)
    assert r["frames"] >= 6
    assert r["mismatching_frames"] == [], r["mismatching_frames"][:2]
    # every first-level accumulator reaches the largest and the smallest sum its weights allow
    assert r["first_level"] >= 1 and r["first_level_both_bounds"] == r["first_level"]
    if stage in ("stem", "0", "3", "7", "13"):  # a fixed-point convolution: its exact bound is reached
        assert r["fxp_acc_max"] == r["fxp_acc_bound"] > 0
    # the widest BiDRN-50 sum (Block Residual, 1024 inputs) stays within 2^24: float32 holds every frame ...
    assert r["frames_beyond_float32"] == 0 and r["max_bits"] <= 24
    assert r["fxp_acc_bound"] <= 2**24
    # ... so PyTorch's float32 hardware mode equals the exact reference too
    assert r["torch_mismatches"] == 0
    # saturation of the 16-bit formats is reached at the top and at the bottom
    assert r["sat_hi"] > 0 and r["sat_lo"] > 0
