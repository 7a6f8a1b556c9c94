"""BiDRN-50 body (the paper's encoder) stage by stage on worst-case frames: the compiler's integer reference
equals the exact QONNX reference (float64, compile/reference.py) on every tensor of every frame.

Each stage (the stem and the 16 BiDRBs) is exported on its own with full-scale test weights (every conv
weight ``sign(w) * U(0.75, 1)``: fixed-point sums near their bounds, large alphas), lowered, and driven with
``compile.worstcase.worst_case_frames``. Prints, per stage: frames checked, mismatching frames, the widest
value in bits (exact reference), frames beyond float32, which first-level accumulators reach both bounds, and
which saturating ops reach their format's ends.

    python benchmarks/worstcase_bidrn50.py                 # every stage, reduced spatial size (fast)
    python benchmarks/worstcase_bidrn50.py --full          # the real 256x192 input's stage sizes
    python benchmarks/worstcase_bidrn50.py --stages stem 13
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np
import torch

from binaryhpe.compile import reference as R
from binaryhpe.compile import worstcase as W
from binaryhpe.compile.lower import load_qonnx, lower
from binaryhpe.compile.passes import optimize
from binaryhpe.train.export import export_qonnx
from binaryhpe.train.hardware import to_hardware
from binaryhpe.train.models import build_model

#: input channels and full-size spatial shape of each stage of the body at 256x192
STAGE_IN = {"stem": (3, 256, 192)}
for _i, (_c, _h, _w) in enumerate([(64, 64, 48)] + [(256, 64, 48)] * 3 + [(512, 32, 24)] * 4
                                  + [(1024, 16, 12)] * 6 + [(2048, 8, 6)] * 2):
    STAGE_IN[str(_i)] = (_c, _h, _w)
#: reduced spatial size: enough for every window (3x3, stride 2) to have interior positions
REDUCED = {"stem": (32, 24)}


def full_scale_weights(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Test weights: every conv / linear weight ``sign(w) * U(0.75, 1)``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() > 1:
                p.copy_(torch.sign(p) * (0.75 + 0.25 * torch.rand(p.shape, generator=g)))
    return model


def body_in_hardware_mode(seed: int = 0):
    model, _ = build_model("bidrn-50-body", seed=seed)
    return to_hardware(full_scale_weights(model, seed))


def stage_module(model, name: str):
    return model.stem if name == "stem" else model.blocks[int(name)]


def check_stage(model, name: str, work: pathlib.Path, full: bool = False, random_frames: int = 1) -> dict:
    c, h, w = STAGE_IN[name]
    if not full:
        h, w = REDUCED.get(name, (4, 4))
    stage = stage_module(model, name)
    t0 = time.time()
    mw = load_qonnx(export_qonnx(stage, torch.zeros(1, c, h, w), work / f"{name}.onnx", verbose=False))
    g = optimize(lower(mw))
    frames = W.worst_case_frames(g, random_frames=random_frames)
    bad, wide, max_bits, pt_bad = [], 0, 0, 0
    for fname, x in frames.items():
        cmp = R.compare_with_onnx(g, mw, x)
        if cmp["first_mismatch"] is not None or not cmp["output_exact"]:
            bad.append((fname, cmp["first_mismatch"]))
        wide += int(not cmp["float32_exact"])
        max_bits = max(max_bits, cmp["max_bits"])
        with torch.no_grad():  # PyTorch hardware mode (float32) against the exact reference
            ref = cmp["ctx"][mw.graph.output[0].name]
            pt_bad += int(np.count_nonzero(stage(torch.tensor(x)).numpy() != ref))
    rows = W.reach(g, W.worst_case_int_frames(g, random_frames=random_frames))
    first = [lay.name for lay, _ in W.first_level_mvus(g)]
    fl = [r for r in rows if r["layer"] in first]
    sat = [r for r in rows if r["kind"] in W.SATURATING]
    return {"stage": name, "shape": (c, h, w), "frames": len(frames), "mismatching_frames": bad,
            "torch_mismatches": pt_bad, "max_bits": max_bits, "frames_beyond_float32": wide,
            "first_level": len(fl), "first_level_both_bounds": sum(r["hit_lo"] and r["hit_hi"] for r in fl),
            "fxp_acc_max": max((max(-r["min"], r["max"]) for r in rows if r["kind"] == "FxpMvu"), default=0),
            "fxp_acc_bound": max((max(-r["lo"], r["hi"]) for r in rows if r["kind"] == "FxpMvu"), default=0),
            "saturating_ops": len(sat), "sat_hi": sum(r["hit_hi"] for r in sat),
            "sat_lo": sum(r["hit_lo"] for r in sat), "rows": rows, "seconds": round(time.time() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="stages at the real 256x192 input's sizes")
    ap.add_argument("--stages", nargs="*", default=list(STAGE_IN), help="stem and/or block indices 0..15")
    args = ap.parse_args(argv)
    model = body_in_hardware_mode()
    ok = True
    print(f"{'stage':>5s} {'C,H,W':>14s} {'frames':>6s} {'bad':>3s} {'torch':>5s} {'bits':>4s} {'>f32':>4s} "
          f"{'1st-lvl both':>12s} {'fxp acc max / bound':>22s} {'sat hi/lo of':>13s} {'s':>6s}")
    with tempfile.TemporaryDirectory() as d:
        for name in args.stages:
            r = check_stage(model, name, pathlib.Path(d), full=args.full)
            ok &= not r["mismatching_frames"] and r["first_level_both_bounds"] == r["first_level"]
            print(f"{name:>5s} {','.join(map(str, r['shape'])):>14s} {r['frames']:6d} {len(r['mismatching_frames']):3d} "
                  f"{r['torch_mismatches']:5d} {r['max_bits']:4d} {r['frames_beyond_float32']:4d} "
                  f"{r['first_level_both_bounds']:>5d} of {r['first_level']:<3d} "
                  f"{r['fxp_acc_max']:>10d} / {r['fxp_acc_bound']:<9d} "
                  f"{r['sat_hi']:>3d}/{r['sat_lo']:<3d} of {r['saturating_ops']:<3d} {r['seconds']:6.1f}", flush=True)
    print("all stages: compiler reference == exact reference on every worst-case frame" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
