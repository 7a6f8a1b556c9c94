"""Microcontroller backend figures (printed, not asserted).

1. Host: time per frame of the generated C (gcc -O2) vs the PyTorch hardware-mode model (Brevitas, eval,
   no_grad), both on the tiny BiDRN, one thread each, in one run; the ratio is the figure to quote.
2. Per target (built-in JSON files): flash, RAM, predicted cycles and ms per frame of the tiny BiDRN, and
   whether it fits; with ``--qemu``, QEMU's instruction count next to the model's.
3. ``--face SIZE``: the face encoder (BiDRN-18, the paper's 192x192 input by default) exported, lowered and built
   for the STM32H7 (``compile/mcu_build.build_mcu``: RAM banks, the tiled region the planner chooses), run on
   the host (gcc) and, with ``--qemu``, under QEMU (Cortex-M7): flash, RAM per bank, tiling, predicted time,
   QEMU's instruction count per layer kind next to the model's, bit-exactness; host time per frame of the C.

With ``--unfused`` the C is generated from the graph with its Epilogues unfused (one loop and one buffer an
elementwise operation, as before the fused epilogue), for the per-frame instruction comparison.

Usage: python benchmarks/mcu_figures.py [--qemu] [--unfused] [--face 192] [--frames 50]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile
import time

import numpy as np


#: issue 20's speed targets on the STM32H7 (by the cycle model): tiny BiDRN ms a frame, face BiDRN-18 frames a second
TINY_MS_TARGET = 2.0
FACE_FPS_TARGET = 1.0


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


def face_encoder(size: int, work: pathlib.Path, qemu: bool, frames: int) -> dict:
    """BiDRN-18 at size x size built for the STM32H7 (banks, tiling), host (and QEMU) checked."""
    from binaryhpe.compile import mcu_build
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import optimize
    from binaryhpe.sim import mcu
    from binaryhpe.train.bidrn import BiDRN, example_input, randomize
    from binaryhpe.train.config import bidrn_config
    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.hardware import to_hardware

    t0 = time.perf_counter()
    cfg = bidrn_config(18, (size, size))
    m = randomize(BiDRN(cfg), seed=0).eval()
    to_hardware(m)
    path = export_qonnx(m, example_input(cfg, seed=0), work / f"face{size}.onnx", verbose=False)
    g = optimize(lower(load_qonnx(path)))
    t_export = time.perf_counter() - t0
    xs = mcu_build.test_frames(g, n_random=1)[:2]
    t0 = time.perf_counter()
    r = mcu_build.build_mcu(g, work / "face", "stm32h7", sim=qemu, frames=xs)
    t_build = time.perf_counter() - t0
    exe = mcu.host_build(work / "face" / "c", work / "face_host")
    host = mcu.host_run(exe, xs, g.tensors[g.output].shape)
    host_exact = all(np.array_equal(a, g.execute(x)[g.output]) for a, x in zip(host, xs))
    c_s = mcu.host_time(exe, xs[0], reps=max(1, frames // 25))
    return {"size": size, "export_s": round(t_export, 1), "build_s": round(t_build, 1),
            "flash_bytes": r["flash_bytes"], "weights_bytes": r["weights_bytes"], "ram_bytes": r["ram_bytes"],
            "arena_bytes": r["arena_bytes"], "naive_arena_bytes": r["naive_arena_bytes"],
            "ram_banks": r["ram_banks"], "tiling": r["tiling"], "predicted_ms": r["predicted_ms_per_frame"],
            "predicted_instructions": r["predicted_instructions_per_frame"],
            "qemu_instructions": r["instructions_per_frame"], "bit_exact_qemu": r.get("bit_exact_target"),
            "bit_exact_host": host_exact, "host_c_ms_per_frame": 1e3 * c_s,
            "code_text_bytes": (r.get("target_code_size") or {}).get("text"), "per_kind": per_kind(r["layers"])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--qemu", action="store_true", help="also run every target under QEMU")
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--face", type=int, metavar="SIZE", help="the face BiDRN-18 at SIZE x SIZE (paper: 192)")
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
        h7 = next((r for r in res["targets"] if r["target"] == "stm32h7" and r["fits"]), None)
        if h7:
            print(f"issue 20 target, tiny BiDRN on stm32h7: {h7['predicted_ms']:.3f} ms/frame by the model (<= "
                  f"{TINY_MS_TARGET} ms: {'met' if h7['predicted_ms'] <= TINY_MS_TARGET else 'missed'})"
                  + (f"; QEMU's count at the model's CPI: "
                     f"{h7['predicted_ms'] * h7['qemu_instructions'] / h7['predicted_instructions']:.3f} ms"
                     if h7["qemu_instructions"] else ""))
        if a.face:
            f = face_encoder(a.face, work, a.qemu, a.frames)
            res["face"] = f
            til = f["tiling"]
            print(f"face BiDRN-18 at {f['size']}x{f['size']} on stm32h7: flash {f['flash_bytes']} B (weights "
                  f"{f['weights_bytes']} B, arm-none-eabi-size .text {f['code_text_bytes']}), RAM {f['ram_bytes']} B "
                  f"(arena {f['arena_bytes']} B, naive {f['naive_arena_bytes']} B)")
            print("  banks: " + ", ".join(f"{k} {v['bytes']} B of {v['capacity']}" for k, v in f["ram_banks"].items()))
            if til:
                print(f"  tiled region {til['region']['first']} .. {til['region']['last']} ({til['region']['steps']} "
                      f"steps), {til['bands']} bands of {til['tile_rows']} rows of {til['reference_tensor']}, halo "
                      f"overhead {100 * til['halo_overhead_rows']:.1f} % of the region's rows")
            print(f"  predicted {f['predicted_instructions']} instructions, {f['predicted_ms']:.1f} ms/frame "
                  f"({1e3 / f['predicted_ms']:.2f} frames/s); QEMU {f['qemu_instructions']} instructions; bit-exact "
                  f"host {f['bit_exact_host']}, QEMU {f['bit_exact_qemu']}; host C {f['host_c_ms_per_frame']:.1f} ms/frame")
            print("  per kind (layers, predicted / measured instructions): " + ", ".join(
                f"{k} {v['layers']}: {v['predicted']} / {v['measured']}" for k, v in f["per_kind"].items()))
            fps = 1e3 / f["predicted_ms"]
            print(f"issue 20 target, face BiDRN-18 at {f['size']}x{f['size']} on stm32h7: {fps:.2f} frames/s by the "
                  f"model (>= {FACE_FPS_TARGET}: {'met' if fps >= FACE_FPS_TARGET else 'missed'})")
        print(json.dumps(res, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))


if __name__ == "__main__":
    main()
