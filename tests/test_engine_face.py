"""One stage of the paper-scale face encoder (BiDRN-18 at its paper input size 192x192) on the engine RTL.

The stage is the stem (7x7/2 fixed-point convolution, 3x3/2 max pool) and the first BiDRB block (two binary 3x3
convolutions at 48x48x64 with their RPReLU/BatchNorm epilogues and the residual joins), ended with
``HwGraph.stage``. One seeded random frame runs in Verilator with the C++ DRAM model; every output integer must
equal the exact reference of the QONNX graph (float64), and the measured cycles must be within 5% of the cycle
model. The whole frame is ``benchmarks/engine_face_sim.py`` (its figures are in docs/engine.md).
"""

from __future__ import annotations

import numpy as np
import pytest

STAGE_END = "/blocks/blocks.1/pre.0/qa/act_quant/export_handler/Quant_output_0"


@pytest.fixture(scope="module")
def face_stage(tmp_path_factory):
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import run_passes, standard_passes
    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.hardware import to_hardware
    from binaryhpe.train.models import build_model

    model, x = build_model("bidrn-18-face", seed=0)
    to_hardware(model)
    q = export_qonnx(model, x, tmp_path_factory.mktemp("face") / "face.onnx", verbose=False)
    mw = load_qonnx(q)
    g = lower(mw, source=q.name)
    run_passes(g, standard_passes(), stop="forks")
    return g.stage(STAGE_END), mw, tmp_path_factory.mktemp("face_sim")


def test_face_stage_is_bit_exact_on_the_engine(face_stage):
    from binaryhpe.compile.engine import EngineConfig, compile_program, cycle_model, run_model
    from binaryhpe.compile.reference import check_frames
    from binaryhpe.compile.worstcase import simulation_frames
    from binaryhpe.sim.engine import build_engine, run_engine

    g, mw, work = face_stage
    assert g.tensors[g.input].shape == (192, 192, 3)
    assert g.tensors[g.output].shape == (48, 48, 64)
    cfg = EngineConfig()
    prog = compile_program(g, cfg)
    assert {"mac", "xnor", "pool_max"} <= {op.mode for op in prog.ops}  # every array of the engine runs
    x = next(iter(simulation_frames(g, seed=3, random=1).values()))
    chk = check_frames(g, mw, [x])
    assert not chk["mismatching_frames"]
    q, ref = chk["inputs"][0], chk["outputs"][0]
    img = prog.write_input(bytearray(prog.image), q)
    assert np.array_equal(prog.read_output(run_model(prog, bytearray(img))), ref)
    exe = build_engine(cfg.rtl_params(), work)
    r = run_engine(exe, img, prog.desc_addr, latency=cfg.dram_latency, beats_per_cycle=cfg.dram_beats_per_cycle,
                   max_cycles=200_000_000)
    out = prog.read_output(r.dram)
    assert np.array_equal(out, ref), f"{int(np.count_nonzero(out != ref))} of {ref.size} integers differ"
    pred = cycle_model(prog, cfg)["total"]["cycles"]
    assert abs(r.cycles / pred - 1.0) <= 0.05, (r.cycles, pred)
