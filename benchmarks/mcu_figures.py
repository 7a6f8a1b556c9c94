"""Microcontroller backend figures (printed, not asserted).

1. Host: time per frame of the generated C (gcc -O2) vs the PyTorch hardware-mode model (Brevitas, eval,
   no_grad), both on the tiny BiDRN, one thread each, in one run; the ratio is the figure to quote.
2. Per target (built-in JSON files): flash, RAM, predicted cycles and ms per frame of the tiny BiDRN, and
   whether it fits; with ``--qemu``, QEMU's instruction count next to the model's.
3. ``--paper DEPTH H W``: a BiDRN-DEPTH at a reduced input size H x W is exported, lowered and compiled to C;
   flash (weights: independent of the input size) is exact, RAM and cycles are measured at H x W and scaled
   by the pixel count to the paper's input size (activations and work are proportional to H*W at a fixed
   architecture), which gives the paper-scale figures per target and the largest square input that fits each
   target's RAM and runs at 1 frame/s by the cycle model.

With ``--unfused`` the C is generated from the graph with its Epilogues unfused (one loop and one buffer an
elementwise operation, as before the fused epilogue), for the per-frame instruction comparison.

Usage: python benchmarks/mcu_figures.py [--qemu] [--unfused] [--paper 18 64 64 --paper-size 192 192] [--frames 50]
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import tempfile
import time

import numpy as np


def tiny_graph(work: pathlib.Path):
    from binaryhpe.compile.flow import step_lower
    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.hardware import to_hardware
    from binaryhpe.train.models import build_model

    net, x = build_model("tiny-bidrn", seed=0)
    to_hardware(net)
    path = export_qonnx(net, x, work / "model.onnx", verbose=False)
    g, mw = step_lower(path)
    return net, x, g, mw


def host_timing(net, x, g, mw, work: pathlib.Path, frames: int) -> dict:
    import torch

    from binaryhpe.compile import cbackend
    from binaryhpe.compile.reference import hw_input, onnx_context
    from binaryhpe.sim import mcu

    torch.set_num_threads(1)
    xi = hw_input(g, onnx_context(mw, x.numpy()))
    d = cbackend.write(cbackend.generate(g), work / "c")
    exe = mcu.host_build(d)
    c_s = mcu.host_time(exe, xi, reps=frames)
    net.eval()
    with torch.no_grad():
        net(x)
        t0 = time.perf_counter()
        for _ in range(max(3, frames // 10)):
            net(x)
        pt_s = (time.perf_counter() - t0) / max(3, frames // 10)
    return {"c_ms_per_frame": 1e3 * c_s, "pytorch_hw_ms_per_frame": 1e3 * pt_s, "speedup": pt_s / c_s}


def per_kind(layers: list[dict]) -> dict:
    """Predicted and (under QEMU) measured instructions summed per layer kind."""
    out: dict = {}
    for row in layers:
        k = out.setdefault(row["kind"], {"layers": 0, "predicted": 0, "measured": 0})
        k["layers"] += 1
        k["predicted"] += row["predicted_instructions"]
        k["measured"] += row.get("measured_instructions") or 0
    return out


def per_target(g, work: pathlib.Path, qemu: bool) -> list[dict]:
    from binaryhpe import BinaryHPEError
    from binaryhpe.compile import mcu_build, mcu_targets

    rows = []
    for name in mcu_targets.builtin_targets():
        try:
            r = mcu_build.build_mcu(g, work / name, name, sim=qemu)
            rows.append({"target": name, "core": r["core"], "fits": True, "flash_bytes": r["flash_bytes"],
                         "ram_bytes": r["ram_bytes"], "arena_bytes": r["arena_bytes"],
                         "naive_arena_bytes": r["naive_arena_bytes"],
                         "predicted_cycles": r["predicted_cycles_per_frame"],
                         "predicted_ms": r["predicted_ms_per_frame"],
                         "predicted_instructions": r["predicted_instructions_per_frame"],
                         "qemu_instructions": r["instructions_per_frame"], "bit_exact": r["bit_exact"],
                         "code_text_bytes": (r.get("target_code_size") or {}).get("text"),
                         "per_kind": per_kind(r["layers"])})
        except BinaryHPEError as e:
            rows.append({"target": name, "fits": False, "error": str(e)})
    return rows


def paper_scale(depth: int, h: int, w: int, size: tuple[int, int], work: pathlib.Path) -> dict:
    from binaryhpe.compile import cbackend, mcu_cycles, mcu_targets
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.train.bidrn import BiDRN, example_input, randomize
    from binaryhpe.train.config import bidrn_config
    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.hardware import to_hardware

    cfg = bidrn_config(depth, (h, w))
    m = randomize(BiDRN(cfg), seed=0).eval()
    to_hardware(m)
    path = export_qonnx(m, example_input(cfg, seed=0), work / f"bidrn{depth}_{h}x{w}.onnx", verbose=False)
    g = lower(load_qonnx(path))
    cm = cbackend.generate(g)
    scale = size[0] * size[1] / (h * w)
    out = {"depth": depth, "built_at": [h, w], "paper_size": list(size), "weights_bytes": cm.flash_data_bytes,
           "arena_bytes_built": cm.plan.peak, "naive_bytes_built": cm.plan.naive, "targets": []}
    for name in mcu_targets.builtin_targets():
        t = mcu_targets.load_target(name)
        pred = mcu_cycles.predict(cm, t)
        flash = cm.flash_data_bytes + mcu_targets.CODE_FIXED + mcu_targets.CODE_PER_LAYER * len(cm.steps)
        ram_px = (cm.plan.peak + cm.io_bytes) / (h * w)
        ram = ram_px * size[0] * size[1] + cm.stack_bytes
        cyc = pred["cycles"] * scale
        # the largest square input (multiple of 32) that fits RAM and runs at >= 1 frame/s
        px_ram = (t["ram_bytes"] - cm.stack_bytes) / ram_px
        px_fps = t["clock_hz"] / (pred["cycles"] / (h * w))
        side = int(math.sqrt(min(px_ram, px_fps)) // 32 * 32)
        out["targets"].append({"target": name, "flash_bytes": flash, "flash_fits": flash <= t["flash_bytes"],
                               "ram_bytes_paper": int(ram), "ram_fits": ram <= t["ram_bytes"],
                               "cycles_paper": int(cyc), "s_per_frame_paper": round(cyc / t["clock_hz"], 2),
                               "largest_square_input_1fps": side if flash <= t["flash_bytes"] else 0})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--qemu", action="store_true", help="also run every target under QEMU")
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--paper", type=int, nargs=3, metavar=("DEPTH", "H", "W"))
    ap.add_argument("--paper-size", type=int, nargs=2, default=(192, 192))
    ap.add_argument("--unfused", action="store_true",
                    help="C of the graph with its Epilogues unfused (one loop an operation, for comparison)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        net, x, g, mw = tiny_graph(work)
        if a.unfused:
            from binaryhpe.compile.passes import UnfuseEpilogues

            UnfuseEpilogues().apply(g)
        res = {"host": host_timing(net, x, g, mw, work, a.frames), "targets": per_target(g, work, a.qemu)}
        h = res["host"]
        print(f"host, tiny BiDRN, one thread: generated C {h['c_ms_per_frame']:.3f} ms/frame, PyTorch hardware "
              f"mode {h['pytorch_hw_ms_per_frame']:.1f} ms/frame: C is {h['speedup']:.0f}x faster")
        print(f"{'target':12s} {'core':11s} {'flash B':>8s} {'RAM B':>7s} {'arena B':>8s} {'naive B':>8s} "
              f"{'pred cyc':>10s} {'pred ms':>8s} {'pred instr':>10s} {'QEMU instr':>10s} {'exact':>5s}")
        for r in res["targets"]:
            if not r["fits"]:
                print(f"{r['target']:12s} does not fit: {r['error']}")
                continue
            print(f"{r['target']:12s} {r['core']:11s} {r['flash_bytes']:8d} {r['ram_bytes']:7d} {r['arena_bytes']:8d} "
                  f"{r['naive_arena_bytes']:8d} {r['predicted_cycles']:10d} {r['predicted_ms']:8.2f} "
                  f"{r['predicted_instructions']:10d} {str(r['qemu_instructions']):>10s} {str(r['bit_exact']):>5s}")
            print("  per kind (layers, predicted / measured instructions): " + ", ".join(
                f"{k} {v['layers']}: {v['predicted']} / {v['measured']}" for k, v in r["per_kind"].items()))
        if a.paper:
            p = paper_scale(*a.paper, tuple(a.paper_size), work)
            res["paper"] = p
            print(f"BiDRN-{p['depth']} built at {p['built_at']}, scaled to {p['paper_size']}: weights "
                  f"{p['weights_bytes']} B; arena at the built size {p['arena_bytes_built']} B "
                  f"(naive {p['naive_bytes_built']} B)")
            for t in p["targets"]:
                print(f"  {t['target']:12s} flash {t['flash_bytes']:9d} B fits={t['flash_fits']!s:5s} RAM "
                      f"{t['ram_bytes_paper']:10d} B fits={t['ram_fits']!s:5s} {t['s_per_frame_paper']:8.2f} s/frame; "
                      f"largest square input at 1 fps that fits: {t['largest_square_input_1fps']}")
        print(json.dumps(res, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))


if __name__ == "__main__":
    main()
