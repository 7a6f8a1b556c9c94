"""The whole face BiDRN-18 at 192x192 on the engine RTL: one frame in Verilator, bit-exact against the exact reference.

    python benchmarks/engine_face_sim.py [--cache /tmp/bhpe_paper] [--device NAME] [--stall P] [--stage TENSOR]
                                         [--json FILE]

The face encoder (built-in ``bidrn-18-face``, seeded weights) is lowered from its QONNX, compiled for the engine
(``compile.engine.compile_program``, sized by ``--device``, default the ECP5-85F defaults), and one seeded random
frame runs through ``hw/rtl/engine/bhpe_engine.sv`` in Verilator with the C++ DRAM model (``sim/engine.py``). The
output integers are compared with the exact reference of the QONNX graph (``compile.reference.check_frames``:
float64, every tensor) and with the numpy model of the descriptors (``compile.engine.run_model``); the measured
cycles, per layer and in total, are printed beside the cycle model (``compile.engine.cycle_model``).
``--stage TENSOR`` ends the network at that hardware tensor (``HwGraph.stage``). CI runs one stage of it
(tests/test_rtl_engine.py); this script runs the whole frame.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default="/tmp/bhpe_paper")
    ap.add_argument("--device", default=None)
    ap.add_argument("--stall", type=float, default=0.0, help="stall probability on every AXI channel")
    ap.add_argument("--stage", default=None, help="end the network at this hardware tensor")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from engine_figures import face_graph

    from binaryhpe.compile.devices import load_device
    from binaryhpe.compile.engine import EngineConfig, compile_program, cycle_model, run_model
    from binaryhpe.compile.engine_build import measured_layer_cycles, print_layer_errors
    from binaryhpe.compile.reference import check_frames
    from binaryhpe.compile.worstcase import simulation_frames
    from binaryhpe.sim.engine import build_engine, run_engine

    t0 = time.time()
    g, _, mw = face_graph(pathlib.Path(a.cache))
    if a.stage:
        g = g.stage(a.stage)
    cfg = EngineConfig.for_device(load_device(a.device)) if a.device else EngineConfig()
    prog = compile_program(g, cfg)
    cm = cycle_model(prog, cfg)
    print(f"face BiDRN-18 192x192: {len(prog.ops)} engine ops, DRAM image {len(prog.image):,} B, model "
          f"{cm['total']['cycles']:,} cycles/frame ({time.time() - t0:.0f} s)", flush=True)
    frames = simulation_frames(g, seed=a.seed, random=1)
    name, x = next(iter(frames.items()))
    chk = check_frames(g, mw, [x])
    assert not chk["mismatching_frames"], chk["mismatching_frames"]
    q, ref = chk["inputs"][0], chk["outputs"][0]
    img = prog.write_input(bytearray(prog.image), q)
    t = time.time()
    model_out = prog.read_output(run_model(prog, bytearray(img)))
    t_model = time.time() - t
    exe = build_engine(cfg.rtl_params(), pathlib.Path(a.cache) / "engine_sim")
    t = time.time()
    r = run_engine(exe, img, prog.desc_addr, stall_prob=a.stall, seed=a.seed + 1, latency=cfg.dram_latency,
                   beats_per_cycle=cfg.dram_beats_per_cycle, max_cycles=2_000_000_000)
    t_sim = time.time() - t
    out = prog.read_output(r.dram)
    bad_rtl = int(np.count_nonzero(out != ref))
    bad_model = int(np.count_nonzero(model_out != ref))
    meas = measured_layer_cycles(r.layer_starts, r.cycles)
    worst = print_layer_errors(cm["layers"], meas, "layer", 44)
    total_err = r.cycles / cm["total"]["cycles"] - 1
    print(f"frame {name!r}: output {ref.shape}, {ref.size} integers; RTL mismatches {bad_rtl}, numpy model "
          f"mismatches {bad_model}; measured {r.cycles:,} cycles, model {cm['total']['cycles']:,} "
          f"({total_err:+.2%}); simulation {t_sim:.0f} s ({r.cycles / max(t_sim, 1e-9) / 1e3:.0f}k cycles/s), "
          f"numpy model {t_model:.1f} s; stall probability {a.stall}")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps({
            "ops": len(prog.ops), "frame": name, "rtl_mismatches": bad_rtl, "model_mismatches": bad_model,
            "cycles": r.cycles, "model_cycles": cm["total"]["cycles"], "total_error": total_err,
            "worst_layer_error": worst, "sim_s": t_sim, "stall": a.stall, "config": cfg.rtl_params()}, indent=1))
    return 0 if bad_rtl == 0 and bad_model == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
