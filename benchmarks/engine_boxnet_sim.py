"""The whole-body model's BoxNet (three transposed convolutions) on the engine RTL: one frame in Verilator, bit-exact
against the exact reference.

    python benchmarks/engine_boxnet_sim.py [--config binaryhpe|tiny-wholebody] [--device NAME] [--stall P]
                                           [--seed N] [--json FILE]

The BoxNet part (``train.heads_hw.export_part(model, "boxnet")``: the body feature in, the last Deconv's activation
and the centre logits out; seeded random weights) is lowered from its QONNX (each ``ConvTranspose`` by polyphase
decomposition into one window generator, one MVU and a ``PhaseShuffle``), compiled for the engine
(``compile.engine.compile_program``: each shuffle becomes one descriptor a phase, writing the shuffled tensor in
place; sized by ``--device``, default ``EngineConfig()``), and one seeded random frame runs through
``hw/rtl/engine/bhpe_engine.sv`` in Verilator with the C++ DRAM model (``sim/engine.py``). The output integers are
compared with the exact reference of the QONNX graph (``compile.reference.check_frames``) and with the numpy model
of the descriptors (``compile.engine.run_model``); the measured cycles, per descriptor and in total, are printed
beside the cycle model (``compile.engine.cycle_model``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="binaryhpe", help="whole-body configuration (binaryhpe, tiny-wholebody)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--stall", type=float, default=0.0, help="stall probability on every AXI channel")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--build", default="sim_build", help="folder of the Verilator build (cached)")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    import torch

    from binaryhpe.compile.devices import load_device
    from binaryhpe.compile.engine import EngineConfig, compile_program, cycle_model, run_model
    from binaryhpe.compile.engine_build import measured_layer_cycles, print_layer_errors
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import run_passes, standard_passes
    from binaryhpe.compile.reference import check_frames
    from binaryhpe.compile.worstcase import simulation_frames
    from binaryhpe.sim.engine import build_engine, run_engine
    from binaryhpe.train.bidrn import randomize
    from binaryhpe.train.heads_hw import export_part
    from binaryhpe.train.wholebody import build_wholebody

    t0 = time.time()
    torch.manual_seed(a.seed)
    m = build_wholebody(a.config).eval()
    randomize(m.boxnet, seed=a.seed + 3)
    randomize(m.body_position_net, seed=a.seed + 3)
    with tempfile.TemporaryDirectory() as d:
        e = export_part(m, "boxnet", d, check=True)
        mw = load_qonnx(e["path"])
    g = run_passes(lower(mw), standard_passes(), stop="forks")
    cfg = EngineConfig.for_device(load_device(a.device)) if a.device else EngineConfig()
    prog = compile_program(g, cfg)
    cm = cycle_model(prog, cfg)
    phases = sum(op.phase is not None for op in prog.ops)
    print(f"BoxNet ({a.config}) in {e['input_shape']} out {e['output_shape']}: {len(prog.ops)} engine ops ({phases} "
          f"transposed-convolution phases), DRAM image {len(prog.image):,} B, model {cm['total']['cycles']:,} "
          f"cycles/frame ({time.time() - t0:.0f} s)", flush=True)
    frames = simulation_frames(g, seed=a.seed, random=1)
    name, x = next(iter(frames.items()))
    chk = check_frames(g, mw, [x])
    assert not chk["mismatching_frames"], chk["mismatching_frames"]
    q, ref = chk["inputs"][0], chk["outputs"][0]
    img = prog.write_input(bytearray(prog.image), q)
    t = time.time()
    model_img = run_model(prog, bytearray(img))
    t_model = time.time() - t
    model_out = prog.read_output(model_img)
    exe = build_engine(cfg.rtl_params(), pathlib.Path(a.build).resolve() / "engine")
    t = time.time()
    r = run_engine(exe, img, prog.desc_addr, stall_prob=a.stall, seed=a.seed + 1, latency=cfg.dram_latency,
                   beats_per_cycle=cfg.dram_beats_per_cycle, max_cycles=2_000_000_000)
    t_sim = time.time() - t
    out = prog.read_output(r.dram)
    bad_rtl = int(np.count_nonzero(out != ref))
    bad_model = int(np.count_nonzero(model_out != ref))
    same_image = r.dram == bytes(model_img)
    meas = measured_layer_cycles(r.layer_starts, r.cycles)
    worst = print_layer_errors(cm["layers"], meas, "op", 52)
    total_err = r.cycles / cm["total"]["cycles"] - 1
    print(f"frame {name!r}: output {ref.shape}, {ref.size:,} integers; RTL mismatches {bad_rtl}, numpy model "
          f"mismatches {bad_model}, DRAM image after the frame equal to the model's: {same_image}; measured "
          f"{r.cycles:,} cycles, model {cm['total']['cycles']:,} ({total_err:+.2%}); simulation {t_sim:.0f} s "
          f"({r.cycles / max(t_sim, 1e-9) / 1e3:.0f}k cycles/s), numpy model {t_model:.1f} s; stall probability "
          f"{a.stall}; engine {cfg.rtl_params()}")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps({
            "config": a.config, "ops": len(prog.ops), "phases": phases, "frame": name, "rtl_mismatches": bad_rtl,
            "model_mismatches": bad_model, "same_image": same_image, "integers": int(ref.size),
            "cycles": r.cycles, "model_cycles": cm["total"]["cycles"], "total_error": total_err,
            "worst_op_error": worst, "sim_s": t_sim, "stall": a.stall, "engine": cfg.rtl_params()}, indent=1))
    return 0 if bad_rtl == 0 and bad_model == 0 and same_image else 1


if __name__ == "__main__":
    raise SystemExit(main())
