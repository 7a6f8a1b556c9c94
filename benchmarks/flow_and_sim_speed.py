"""Benchmark: wall time of the whole flow on the tiny BiDRN (export, compile, RTL, Verilator build,
simulation) and the Verilator simulation speed in cycles per second; the time of each step of the flow
(report.json ``steps``), and of a device-aware build (``--device ecp5-85f``: one lowering, then the folding
search on that graph). Prints its figures.

Simulation speed before and after, in one run: the same frames through the model built as before (the harness
of commit ``BEFORE_COMMIT`` with its flags: three evaluations a cycle, C++ at -O1; and its stream protocol checker,
concurrent assertions) and as now (sim/netsim.py, hw/rtl/bhpe_stream_assert.sv),
``--repeat`` runs each, alternating, so that both see the same machine load. Three rates: the report's
``sim_cycles_per_s`` (every simulated cycle over the run's wall time); as the report had it before, the cycles up
to the last output over the same wall time (the drain after it was simulated but not counted); and every
simulated cycle per CPU second of the simulator process, which depends less on what else the machine runs. The
profile-guided build (``netsim.build(pgo=True)``) runs beside them unless ``--no-pgo``.

    .venv/bin/python benchmarks/flow_and_sim_speed.py [--repeat=N] [--no-before] [--no-pgo] [--no-device]
"""

import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from binaryhpe.compile.flow import build, step_lower
from binaryhpe.compile.frames import reference_frames

#: the harness and flags before the simulation-speed work (issue 19)
BEFORE_COMMIT = "d69edfd"
BEFORE_FLAGS = ["-O2", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--assert", "--x-assign", "unique", "--x-initial",
                "unique", "-MAKEFLAGS", "OPT_FAST=-O1 OPT_SLOW=-O0 CFG_CXXFLAGS_PCH_I=-include"]


def build_before(rtl: pathlib.Path, work: pathlib.Path) -> tuple[pathlib.Path, float]:
    """The model as ``BEFORE_COMMIT`` built it (its harness.cpp, flags and stream protocol checker; the design's
    other modules as generated now), uncached; returns (binary, seconds)."""
    from binaryhpe.sim.toolchain import library_order, setup_verilator

    setup_verilator()
    repo = pathlib.Path(__file__).resolve().parent.parent

    def before(path: str) -> str:
        return subprocess.run(["git", "show", f"{BEFORE_COMMIT}:{path}"], cwd=repo, capture_output=True, text=True,
                              check=True).stdout

    harness = work / "harness.cpp"
    harness.write_text(before("sim/harness.cpp"))
    lib = work / "lib"
    lib.mkdir()
    for f in (rtl / "lib").glob("*.sv"):
        (lib / f.name).write_text(f.read_text())
    (lib / "bhpe_stream_assert.sv").write_text(before("hw/rtl/bhpe_stream_assert.sv"))
    srcs = [*library_order(lib.glob("*.sv")), rtl / "bhpe_top.sv"]
    obj = work / "obj_before"
    cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", "--top-module", "bhpe_top", "--prefix", "Vbhpe_top",
           *BEFORE_FLAGS, "-Mdir", str(obj), "-o", "Vsim", *map(str, srcs), str(harness)]
    t = time.time()
    subprocess.run(cmd, cwd=rtl, capture_output=True, text=True, check=True)
    return obj / "Vsim", time.time() - t


def compare_speed(out: pathlib.Path, repeat: int, pgo: bool = True) -> None:
    from binaryhpe.sim import netsim

    rtl = out / "rtl"
    g, mw = step_lower(out / "model.onnx")
    named, chk = reference_frames(g, mw, 0, 3, None)
    ins = chk["inputs"]
    t = time.time()
    after = netsim.build(rtl, sorted((rtl / "lib").glob("*.sv")), verbose=False)
    t_after = time.time() - t
    before, t_before = build_before(rtl, pathlib.Path(tempfile.mkdtemp(prefix="bhpe_before_")))
    models = [("before", before), ("after", after)]
    print(f"\n== simulation speed, before and after ({len(ins)} frames, {repeat} runs each, alternating) ==")
    print(f"model build: before {t_before:.1f} s (uncached); after {t_after:.1f} s (from the cache when the flow "
          "above built it)")
    if pgo:
        t = time.time()
        models.append(("pgo", netsim.build(rtl, sorted((rtl / "lib").glob("*.sv")), verbose=False, pgo=True)))
        print(f"profile-guided build (netsim.build(pgo=True), BINARYHPE_SIM_PGO=1): {time.time() - t:.1f} s "
              "(from the cache when built before)")
    for stall in (0.0, 0.3):
        rates = {name: [] for name, _ in models}
        done_rates = {name: [] for name, _ in models}
        cpu_rates = {name: [] for name, _ in models}
        for _ in range(repeat):
            for name, exe in models:
                ru = resource.getrusage(resource.RUSAGE_CHILDREN)
                r = netsim.simulate(g, exe, rtl, ins, stall_in=stall, stall_out=stall, seed=1)
                ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime
                bad = sum(int((a != b).sum()) for a, b in zip(r["outputs"], chk["outputs"]))
                if bad:
                    raise SystemExit(f"{name}: {bad} integers differ from the reference")
                sim = r["simulated_cycles"] or r["total_cycles"]
                rates[name].append(sim / r["wall_s"])
                done_rates[name].append(r["total_cycles"] / r["wall_s"])
                cpu_rates[name].append(sim / max(cpu, 1e-6))
        b, a = statistics.median(rates["before"]), statistics.median(rates["after"])
        bd, ad = statistics.median(done_rates["before"]), statistics.median(done_rates["after"])
        print(f"stall {stall:.1f}: before {b:,.0f} cycles/s, after {a:,.0f} cycles/s ({a / b:.2f}x); counted to "
              f"the last output as the report did before: before {bd:,.0f}, after {ad:,.0f} (medians; outputs "
              "bit-exact in every run)")
        bc, ac = statistics.median(cpu_rates["before"]), statistics.median(cpu_rates["after"])
        print(f"           per CPU second of the simulator (less sensitive to the machine's load): before {bc:,.0f}, "
              f"after {ac:,.0f} ({ac / bc:.2f}x)")
        if pgo:
            pw, pc = statistics.median(rates["pgo"]), statistics.median(cpu_rates["pgo"])
            print(f"           profile-guided build: {pw:,.0f} cycles/s, {pc:,.0f} per CPU second ({pc / bc:.2f}x "
                  "before)")


def main(argv: list[str]) -> None:
    repeat = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--repeat=")), 5)
    out = pathlib.Path(tempfile.mkdtemp(prefix="bhpe_flow_"))
    t = time.time()
    rep = build("tiny-bidrn", out, sim=True)
    wall = time.time() - t
    runs = rep["simulation"]["runs"]
    print("\n== flow and simulation speed (tiny BiDRN) ==")
    print(f"whole flow (export, compile, RTL, Verilator build, 2 simulations): {wall:.1f} s")
    print(f"layers: {len(rep['layers'])}; bit-exact: {rep['bit_exact']}")
    for r in runs:
        print(f"stall {r['stall']:.2f}: {r['total_cycles']} cycles for {rep['simulation']['frames']} frames, "
              f"{r['sim_cycles_per_s']:,} cycles/s, frame interval {r['ii_cycles']}, latency {r['latency_cycles']}")
    print(f"predicted: frame interval {rep['predicted_cycles_per_frame']}, latency {rep['predicted_latency_cycles']}")
    print("steps: " + ", ".join(f"{s['name']} {s['seconds']:.2f} s" for s in rep["steps"]))
    if "--no-before" not in argv:
        compare_speed(out, repeat, pgo="--no-pgo" not in argv)
    if "--no-device" not in argv:
        t = time.time()
        dev = build(str(out / "model.onnx"), out / "device", device="ecp5-85f")
        print(f"\n== device-aware build (ecp5-85f, no simulation): {time.time() - t:.1f} s, "
              f"{dev['fps']:.0f} fps estimated ==")
        print("steps: " + ", ".join(f"{s['name']} {s['seconds']:.2f} s" for s in dev["steps"]))


if __name__ == "__main__":
    main(sys.argv[1:])
