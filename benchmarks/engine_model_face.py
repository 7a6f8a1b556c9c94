"""The whole face BiDRN-18 at 192x192 on the engine's golden model, checked against the exact reference.

Builds the face BiDRN-18 (seeded, hardware mode), exports it to QONNX, lowers it, compiles the engine program
(compile.engine.compile_program, the ECP5-85F configuration unless ``--device``), runs the descriptors on the
DRAM image in numpy (compile.engine.run_model) for a few frames (seeded random ones and worst-case ones from
compile.worstcase) and compares the output with the exact float64 execution of the QONNX graph
(compile.reference.exact_reference). Prints the per-layer cycle model (compile.engine.cycle_model), the
totals, the DRAM layout and traffic, and the roofline. Exits 1 if any output element differs.

    .venv/bin/python benchmarks/engine_model_face.py [--device ecp5-85f] [--frames 2] [--worst 1] [-o OUT.json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="ecp5-85f")
    ap.add_argument("--frames", type=int, default=2, help="seeded random frames")
    ap.add_argument("--worst", type=int, default=1, help="worst-case frames (compile.worstcase), first N")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", help="write the numbers as JSON here")
    args = ap.parse_args(argv)

    from binaryhpe.compile.engine import EngineConfig, compile_program, cycle_model, roofline, run_model
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import run_passes, standard_passes
    from binaryhpe.compile.reference import exact_reference, hw_input, nchw_to_hwc
    from binaryhpe.compile.worstcase import worst_case_frames
    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.hardware import to_hardware
    from binaryhpe.train.models import build_model

    t0 = time.time()
    model, x = build_model("bidrn-18-face", seed=args.seed)
    to_hardware(model)
    work = pathlib.Path(tempfile.mkdtemp(prefix="bhpe_engine_face_"))
    path = export_qonnx(model, x, work / "face.onnx", verbose=False)
    mw = load_qonnx(path)
    g = run_passes(lower(mw), standard_passes(), stop="forks")
    t_build = time.time() - t0
    cfg = EngineConfig.for_device(args.device)
    t = time.time()
    prog = compile_program(g, cfg)
    t_compile = time.time() - t
    print(f"face BiDRN-18 192x192: {len(g.layers)} hardware layers -> {len(prog.ops)} engine ops "
          f"(export + lower {t_build:.1f} s, compile {t_compile:.2f} s); engine {cfg.rtl_params()} "
          f"at {cfg.clock_mhz:g} MHz, {cfg.dram_bytes_per_cycle:g} DRAM bytes/cycle, latency {cfg.dram_latency}")

    shape = [d.dim_value for d in mw.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(args.seed)
    frames = {f"random{i}": rng.uniform(-1, 1, shape).astype(np.float32) for i in range(args.frames)}
    wc = worst_case_frames(g, seed=args.seed, random_frames=0)
    for k in list(wc)[:args.worst]:
        frames[k] = np.asarray(wc[k], dtype=np.float32)
    out_fmt = g.tensors[g.output].fmt
    bad_total, model_s = 0, []
    for name, f in frames.items():
        run = exact_reference(mw, f)
        q = hw_input(g, run.context)
        img = prog.write_input(prog.fresh_image(), q)
        t = time.time()
        after = run_model(prog, img)
        model_s.append(time.time() - t)
        got = out_fmt.to_real(prog.read_output(after))
        ref = nchw_to_hwc(run.output)
        bad = int(np.count_nonzero(got != ref))
        bad_total += bad
        print(f"frame {name:28s}: run_model {model_s[-1]:5.2f} s, {bad} of {ref.size} output elements differ from "
              f"the exact reference (float64 exact: {run.float64_exact})")

    cm = cycle_model(prog, cfg)
    rf = roofline(prog, cfg)
    head = f"{'#':>3s} {'layer':44s} {'mode':8s} {'out HxWxC':>12s} {'tiles':>5s} {'strips':>6s} " \
           f"{'compute':>10s} {'cycles':>10s} {'DRAM rd B':>10s} {'DRAM wr B':>10s}"
    print(head)
    print("-" * len(head))
    for i, (op, r) in enumerate(zip(prog.ops, cm["layers"])):
        h = op.header
        print(f"{i:3d} {op.name[-44:]:44s} {r['mode']:8s} {h['oh']:>4d}x{h['ow']:<3d}x{h['cout']:<4d}"
              f"{h['n_ct']:5d} {h['n_strips']:6d} {r['compute_cycles']:10d} {r['cycles']:10d} "
              f"{r['dram_read_bytes']:10d} {r['dram_write_bytes']:10d}")
    tot = cm["total"]
    print("-" * len(head))
    print(f"total: {tot['cycles']:,} cycles ({tot['compute_cycles']:,} compute) = {tot['fps']:.2f} fps at "
          f"{cfg.clock_mhz:g} MHz; DRAM {tot['dram_bytes']:,} bytes/frame (read {tot['dram_read_bytes']:,}, "
          f"write {tot['dram_write_bytes']:,})")
    lay = prog.layout
    print(f"DRAM image {lay['image_bytes']:,} bytes: descriptors {lay['descriptor_bytes']:,}, constants "
          f"{lay['constant_bytes']:,}, weights {lay['weight_bytes']:,}, activations {lay['activation_bytes']:,} "
          f"({lay['activation_bytes_without_reuse']:,} without reuse)")
    print(f"roofline: compute bound {rf['compute_bound_cycles']:,} cycles ({rf['binary_ops']:,} binary + "
          f"{rf['fixed_ops']:,} fixed-point ops), bandwidth bound {rf['memory_bound_cycles']:,} cycles; "
          f"{rf['bound']}-bound, the model reaches {100 * rf['fraction']:.1f}% of it")
    print(f"run_model: {np.mean(model_s):.2f} s a frame; {len(frames)} frames, "
          f"{'all bit-exact' if bad_total == 0 else f'{bad_total} elements differ'}; total {time.time() - t0:.0f} s")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps({
            "device": args.device, "config": cfg.to_dict(), "frames": list(frames), "mismatches": bad_total,
            "total": tot, "roofline": rf, "layout": lay, "layers": cm["layers"]}, indent=1))
    return 1 if bad_total else 0


if __name__ == "__main__":
    sys.exit(main())
