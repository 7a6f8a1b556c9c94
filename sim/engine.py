"""Simulation of the layer-sequential engine (hw/rtl/engine, docs/engine.md): Verilator builds ``bhpe_engine`` with a
C++ harness (sim/engine_harness.cpp) that plays the DRAM (an AXI4 slave with latency, bandwidth, random stalls on
every channel and injectable faults) and the host (AXI-Lite: DESC_ADDR, CTRL.start, STATUS polls).

    exe = build_engine(cfg.rtl_params(), out_dir)
    run = run_engine(exe, image, desc_addr, stall_prob=0.2, seed=3)
    run.dram, run.cycles, run.layer_starts, run.stats

A run that does not finish is a failure, never a hang: a timeout (no done within ``max_cycles``, or no AXI
handshake for ``idle_limit`` cycles), an AXI protocol violation, a failed assertion and a non-zero ERROR register all
raise :class:`BinaryHPEError` with one line naming the reason (and the layer being run where there is one).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import tempfile
import time

from binaryhpe import BinaryHPEError
from binaryhpe.sim.buildcache import cached_build, key_of, make_flags, sv_closure, verilate
from binaryhpe.sim.toolchain import library_order, rtl_dir, setup_verilator

#: the engine's parameters (bhpe_engine) and their defaults
DEFAULT_PARAMS = {"PE": 16, "PEF": 4, "LbDepth": 4096, "WbDepth": 1024, "CbDepth": 512, "BbDepth": 1024,
                  "ObDepth": 2048, "AddrW": 40, "IdW": 1}

HARNESS = pathlib.Path(__file__).with_name("engine_harness.cpp")

#: the harness's exit codes (sim/engine_harness.cpp)
EXIT_TIMEOUT, EXIT_ENGINE_ERROR, EXIT_PROTOCOL, EXIT_FINISH = 3, 4, 5, 6


def engine_sources() -> list[pathlib.Path]:
    """The files of a bhpe_engine build: the library's package, FIFO and stream checker, then hw/rtl/engine."""
    lib = rtl_dir()
    return library_order([lib / "bhpe_pkg.sv", lib / "bhpe_fifo.sv", lib / "bhpe_stream_assert.sv",
                          *(lib / "engine").glob("*.sv")])


def build_engine(params: dict | None, out_dir, *, sources=None, waves: bool = False, verbose: bool = True
                 ) -> pathlib.Path:
    """Verilate and compile bhpe_engine with ``params`` (keys of :data:`DEFAULT_PARAMS`; missing ones take the
    defaults) and the DRAM harness into ``Veng``, kept in the shared cache of compiled models (sim/buildcache.py)
    under a hash of the sources, the harness, the parameters, the flags and the toolchain. ``sources``: the RTL
    files (default :func:`engine_sources`)."""
    setup_verilator()
    p = dict(DEFAULT_PARAMS)
    for k, v in (params or {}).items():
        if k not in DEFAULT_PARAMS:
            raise BinaryHPEError(f"build_engine: unknown bhpe_engine parameter {k!r} (known: {sorted(DEFAULT_PARAMS)})")
        p[k] = int(v)
    srcs = library_order(pathlib.Path(s).resolve() for s in (sources or engine_sources()))
    # --assert: the stream / AXI checkers are live; --x-initial unique / --x-assign unique: the initial value of
    # every register is chosen at run time by +verilator+rand+reset (run_engine: random), so a missing reset shows
    cmd = ["verilator", "--cc", "--exe", "--build", "-O2", "-j", str(os.cpu_count() or 2), "--top-module",
           "bhpe_engine", "--prefix", "Vbhpe_engine", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--assert",
           "--x-assign", "unique", "--x-initial", "unique", f"-I{rtl_dir()}", f"-I{rtl_dir() / 'engine'}",
           "-o", "Veng", *make_flags(opt_fast="-O1", opt_global="-Os")]
    cmd += [f"-G{k}={v}" for k, v in sorted(p.items())]
    if waves:
        cmd += ["--trace-fst"]
    cmd += [str(s) for s in srcs] + [str(HARNESS)]
    # the binary comes from the shared cache of compiled models (sim/buildcache.py) when one was built from the
    # same sources, harness, parameters and flags; ``out_dir`` is kept for the callers (runs write their own files)
    pathlib.Path(out_dir).mkdir(parents=True, exist_ok=True)
    key = key_of([json.dumps(cmd)], [*sv_closure(srcs, [rtl_dir(), rtl_dir() / "engine"]), HARNESS])

    def run(tmp: pathlib.Path) -> None:
        verilate([*cmd, "-Mdir", str(tmp)], tmp, tmp / "Veng", "bhpe_engine", "engine",
                 f"bhpe_engine ({len(srcs)} files, {p})", verbose)

    exe = cached_build(key, "Veng", run, tag="engine-")
    if verbose:
        print(f"[engine] model {exe}", flush=True)
    return exe


@dataclasses.dataclass
class EngineRun:
    """One run of the engine: the DRAM after it, the CYCLES register (start to done), the cycle at which each
    descriptor started ``[(layer_id, cycle)]`` and the DRAM model's counters (bursts, beats, bytes)."""
    dram: bytes
    cycles: int
    layer_starts: list
    stats: dict


def run_engine(exe, dram, desc_addr: int, *, latency: int = 20, beats_per_cycle: float = 1.0,
               stall_prob: float = 0.0, seed: int = 0, max_cycles: int = 500_000_000, idle_limit: int = 1_000_000,
               fault: dict | None = None, rand_reset: int = 2, waves: str | None = None, work_dir=None,
               verbose: bool = True) -> EngineRun:
    """Run the descriptor program at ``desc_addr`` of the DRAM image ``dram`` (bytes from address 0) on the
    simulated engine ``exe`` (:func:`build_engine`).

    ``max_cycles``: the run fails when the engine is not done after this many cycles (the default only bounds a
    runaway: a hang shows sooner as ``idle_limit`` cycles without any AXI handshake, about 4 s of simulation);
    ``latency``: cycles from a read request to its first beat (and from a write burst's last beat to its response);
    ``beats_per_cycle``: the DRAM's 64-bit beats a cycle, reads and writes together (<= 1); ``stall_prob``: on every
    AXI channel, the probability that the DRAM model withholds its ready or its next beat in a cycle (seeded by
    ``seed``); ``fault``: ``{"kind": "corrupt_read", "addr": A}`` (every bit of the word at A read back inverted) or
    ``{"kind": "stall_forever", "channel": "ar" | "r" | "aw" | "w" | "b"}``. ``rand_reset``: Verilator's
    +verilator+rand+reset (2: every register starts random, seeded by ``seed``).

    Raises BinaryHPEError (one line) on a timeout, an AXI protocol violation, a failed assertion or an engine error.
    """
    exe = pathlib.Path(exe)
    if not exe.exists():
        raise BinaryHPEError(f"run_engine: no simulator at {exe} (build it with build_engine)")
    tmp = tempfile.TemporaryDirectory(prefix="bhpe_engine_") if work_dir is None else None
    wd = pathlib.Path(work_dir or tmp.name)
    wd.mkdir(parents=True, exist_ok=True)
    try:
        fin, fout, fjson = wd / "dram_in.bin", wd / "dram_out.bin", wd / "run.json"
        fin.write_bytes(bytes(dram))
        for f in (fout, fjson):
            f.unlink(missing_ok=True)
        cmd = [str(exe), "--dram-in", str(fin), "--dram-out", str(fout), "--json", str(fjson),
               "--desc-addr", str(int(desc_addr)), "--latency", str(int(latency)),
               "--bpc", repr(float(beats_per_cycle)),
               "--stall", repr(float(stall_prob)), "--seed", str(int(seed)), "--max-cycles", str(int(max_cycles)),
               "--idle-limit", str(int(idle_limit))]
        if fault:
            kind = fault.get("kind")
            if kind == "corrupt_read":
                cmd += ["--corrupt-read", str(int(fault["addr"]))]
            elif kind == "stall_forever":
                cmd += ["--stall-forever", str(fault["channel"])]
            else:
                raise BinaryHPEError(f"run_engine: unknown fault {fault!r} (corrupt_read or stall_forever)")
        if waves:
            cmd += ["--waves", str(waves)]
        if rand_reset not in (0, 1, 2):
            raise BinaryHPEError(f"run_engine: rand_reset must be 0, 1 or 2, not {rand_reset}")
        cmd += [f"+verilator+rand+reset+{rand_reset}", f"+verilator+seed+{int(seed) % 2**31 + 1}"]
        t0 = time.time()
        if verbose:
            print(f"[engine] running {len(dram)} B DRAM image, latency {latency}, {beats_per_cycle} beats/cycle, "
                  f"stall {stall_prob}, seed {seed}" + (f", fault {fault}" if fault else ""), flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True)
        lines = (r.stdout + r.stderr).strip().splitlines()
        if r.returncode != 0:
            if r.returncode == EXIT_TIMEOUT:
                reason = next((ln for ln in lines if ln.startswith("TIMEOUT")), lines[-1] if lines else "")
            elif r.returncode == EXIT_ENGINE_ERROR:
                reason = next((ln for ln in lines if ln.startswith("ENGINE ERROR")), lines[-1] if lines else "")
            elif r.returncode == EXIT_PROTOCOL:
                reason = next((ln for ln in lines if ln.startswith("AXI protocol")), lines[-1] if lines else "")
            else:
                errs = [ln for ln in lines if "%Error" in ln or "Assertion" in ln or "error" in ln.lower()]
                reason = errs[0] if errs else (lines[-1] if lines else f"exit code {r.returncode}")
            raise BinaryHPEError(f"engine simulation failed (exit {r.returncode}): {reason.strip()}")
        res = json.loads(fjson.read_text())
        if verbose:
            print(f"[engine] done: {res['cycles']} cycles, {len(res['layer_starts'])} layers, "
                  f"{time.time() - t0:.1f} s wall", flush=True)
        stats = dict(res["stats"])
        stats["harness_cycles"] = res["harness_cycles"]
        stats["wall_s"] = round(time.time() - t0, 3)
        return EngineRun(dram=fout.read_bytes(), cycles=int(res["cycles"]),
                         layer_starts=[(int(a), int(b)) for a, b in res["layer_starts"]], stats=stats)
    finally:
        if tmp is not None:
            tmp.cleanup()
