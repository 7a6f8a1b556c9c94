"""fmax of the dataflow design on the ECP5-85F through the open flow (Yosys ``synth_ecp5`` -> nextpnr-ecp5 ->
ecppack): the whole tiny BiDRN, or each distinct layer configuration alone (``--layers``, the quick loop for
finding what limits the clock). Prints fmax, the critical path (its first and last cell, logic / routing
delay, the RTL lines it runs through), Yosys's LUT/FF/EBR/DSP, cycles a frame and frames/s at fmax.

    .venv/bin/python benchmarks/ecp5_fmax.py [-o OUT] [--model tiny-bidrn] [--sim] [--router router2]
    .venv/bin/python benchmarks/ecp5_fmax.py --report OUT/report.json   # the figures of a finished build
    .venv/bin/python benchmarks/ecp5_fmax.py --layers [-o OUT] [--kinds FxpMvu,Mul_epi]

The whole design is ``binaryhpe build MODEL -o OUT --bitstream`` (``--sim``: the Verilator simulation as well,
at the same folding: the measured cycles a frame and bit-exactness). ``--layers`` folds the model for the
device as the build does and places and routes each distinct (module, parameters) configuration inside a
wrapper whose ports are its streams (``compile.synth.wrap_layer``): a lone layer places in seconds to a minute,
but its fmax is an upper bound of the whole design's, whose routing is longer. nextpnr's router:
``--router`` or ``BINARYHPE_NEXTPNR_ROUTER`` (router2 by default, ``compile.bitstream``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import subprocess
import time


def _fmt_path(cp: dict | None) -> list[str]:
    if not cp:
        return ["  critical path: (none in the report)"]
    lines = [f"  critical path: {cp['delay_ns']} ns = {cp['logic_ns']} ns logic (cells, clock-to-out, setup) "
             f"+ {cp['routing_ns']} ns routing, {cp['steps']} steps",
             f"    from {cp['from_cell']} (net {cp['from_net']})",
             f"    to   {cp['to_cell']} (net {cp['to_net']})"]
    if cp.get("sources"):
        lines.append("    through " + ", ".join(cp["sources"][:8]) + (" ..." if len(cp["sources"]) > 8 else ""))
    return lines


def print_report(rep: dict) -> None:
    pnr = rep.get("pnr") or {}
    timing = rep.get("timing") or pnr.get("timing") or {}
    syn = pnr.get("synth") or rep.get("synth") or {}
    util = pnr.get("utilisation", {})
    comb = util.get("TRELLIS_COMB", {})
    print(f"design {rep.get('model')} on {pnr.get('part')} ({pnr.get('package')}), nextpnr {pnr.get('router', '?')}, "
          f"constraint {pnr.get('clock_mhz')} MHz")
    print(f"  fmax {rep.get('fmax_mhz')} MHz ({'met' if rep.get('timing_met') else 'NOT met'})")
    for line in _fmt_path(timing.get("critical_path")):
        print(line)
    print(f"  Yosys synth_ecp5: {syn.get('lut')} LUT4, {syn.get('ff')} FF, {syn.get('bram18')} EBR, "
          f"{syn.get('dsp')} MULT18X18D")
    if comb:
        print(f"  nextpnr: {comb.get('used')} / {comb.get('available')} comb cells "
              f"({comb.get('used', 0) / max(1, comb.get('available', 1)):.0%})")
    cyc = rep.get("cycles_per_frame") or rep.get("predicted_cycles_per_frame")
    src = "measured (Verilator)" if rep.get("cycles_per_frame") else "predicted (cycle model)"
    print(f"  cycles/frame {cyc} {src}; bit-exact {rep.get('bit_exact')}")
    if rep.get("fmax_mhz") and cyc:
        print(f"  frames/s at fmax: {rep['fmax_mhz'] * 1e6 / cyc:,.0f} ({cyc} cycles at {rep['fmax_mhz']} MHz); "
              f"report's fps_at_fmax {rep.get('fps_at_fmax')}")
    w = pnr.get("wall_s") or {}
    print(f"  wall: synth {w.get('synth')} s, place & route {w.get('pnr')} s, ecppack {w.get('pack')} s")


def whole(a) -> None:
    from binaryhpe.compile.flow import build

    t0 = time.time()
    rep = build(a.model, a.out, sim=a.sim, bitstream=True, device=a.device)
    print(f"binaryhpe build {a.model} -o {a.out} --bitstream{' --sim' if a.sim else ''}: {time.time() - t0:.0f} s")
    print_report(rep)


def layers(a) -> None:
    from binaryhpe.compile import flow
    from binaryhpe.compile.bitstream import _tool, nextpnr_router, part_options, timing_summary
    from binaryhpe.compile.devices import load_device
    from binaryhpe.compile.rtlgen import module_and_params
    from binaryhpe.compile.synth import rtl_library, run_yosys, wrap_layer

    out = pathlib.Path(a.out)
    (out / "build").mkdir(parents=True, exist_ok=True)
    dev = load_device(a.device)
    flag, pkg, speed = part_options(dev)
    router = nextpnr_router(a.router)
    s = flow.BuildState(model=a.model, out=out / "build", opts=flow.BuildOptions(device=a.device), dev=dev)
    s = flow.run_steps_quiet([st for st in flow.FPGA_STEPS
                              if st.name in ("export", "lower", "optimize", "fold", "storage")], s)
    groups: dict[str, list] = {}
    for lay in s.g.layers:
        mod, params = module_and_params(lay)
        groups.setdefault(mod + json.dumps({k: v for k, v in sorted(params.items()) if not isinstance(v, str)},
                                           default=str), []).append(lay)
    kinds = set(a.kinds.split(",")) if a.kinds else None
    nextpnr = _tool("nextpnr-ecp5")
    rows = []
    for lays in groups.values():
        lay = lays[0]
        if kinds and type(lay).__name__ not in kinds and not any(k in lay.name for k in kinds):
            continue
        d = out / re.sub(r"[^A-Za-z0-9_]", "_", lay.name)
        d.mkdir(parents=True, exist_ok=True)
        top, mod = wrap_layer(lay, d)
        t0 = time.time()
        syn = run_yosys([top] + rtl_library(), "wrap", "ecp5", d, json_out=d / "net.json")
        cmd = [nextpnr, flag, "--package", pkg, "--speed", speed, "--json", "net.json", "--report", "rep.json",
               "--freq", f"{dev.clock_mhz:g}", "--timing-allow-fail", "--router", router,
               "--lpf-allow-unconstrained", "--threads", "1", "--log", "nextpnr.log"]
        p = subprocess.run(cmd, cwd=d, capture_output=True, text=True)
        if p.returncode:
            print(f"{lay.name}: nextpnr failed ({d / 'nextpnr.log'})")
            continue
        t = timing_summary(json.loads((d / "rep.json").read_text()), (d / "nextpnr.log").read_text(errors="replace"))
        rows.append((t["fmax_mhz"] or 0.0, lay, len(lays), syn, t))
        print(f"{t['fmax_mhz']:7.1f} MHz  {type(lay).__name__:13} x{len(lays):<3} {lay.name} "
              f"({syn['lut']} LUT, {syn['ff']} FF, {syn['dsp']} DSP; {time.time() - t0:.0f} s)", flush=True)
        for line in _fmt_path(t["critical_path"]):
            print("  " + line)
    print("\nslowest first:")
    for fm, lay, n, _, t in sorted(rows, key=lambda r: r[0]):
        cp = t["critical_path"] or {}
        print(f"{fm:7.1f} MHz  {type(lay).__name__:13} x{n:<3} {lay.name}  "
              f"({cp.get('logic_ns')} ns logic + {cp.get('routing_ns')} ns routing)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="out_ecp5_fmax")
    ap.add_argument("--model", default="tiny-bidrn")
    ap.add_argument("--device", default="ecp5-85f")
    ap.add_argument("--sim", action="store_true", help="simulate the built design too (measured cycles/frame)")
    ap.add_argument("--router", default=None, help="nextpnr router (router1 / router2; default router2)")
    ap.add_argument("--report", help="print the figures of a finished build's report.json and stop")
    ap.add_argument("--layers", action="store_true", help="each distinct layer configuration alone")
    ap.add_argument("--kinds", default=None, help="with --layers: only these kinds, or layers whose name holds "
                    "one of these strings (comma separated)")
    a = ap.parse_args()
    if a.report:
        print_report(json.loads(pathlib.Path(a.report).read_text()))
    elif a.layers:
        layers(a)
    else:
        if a.router:
            import os

            os.environ["BINARYHPE_NEXTPNR_ROUTER"] = a.router
        whole(a)


if __name__ == "__main__":
    main()
