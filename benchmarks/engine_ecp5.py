"""The engine sized for an ECP5-85F (``EngineConfig()`` defaults) through the open flow: Yosys ``synth_ecp5``,
nextpnr-ecp5 at the device's 100 MHz, ecppack. Prints the bitstream, Yosys's LUT/FF/BRAM18/DSP, nextpnr's fmax
and its worst path (the RTL lines it runs through), beside the resource model's estimate.

    .venv/bin/python benchmarks/engine_ecp5.py [-o OUT] [--device ecp5-85f] [--seed 1]
    .venv/bin/python benchmarks/engine_ecp5.py --calibrate ecp5|xilinx [-o OUT]
    .venv/bin/python benchmarks/engine_ecp5.py --check [-o OUT]

``--check`` compares the resource model with a flattened Yosys run of the whole engine at PE 8, PEF 2 and
small buffers (no calibration point; about 20 minutes on two busy cores).

``--calibrate`` re-measures the resource model's calibration table (``compile.engine.resources.CALIBRATION``)
and prints it as Python to paste there. Place and route runs in YoWASP's WebAssembly nextpnr, one thread:
expect tens of minutes.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

from binaryhpe import BinaryHPEError
from binaryhpe.compile.engine.config import EngineConfig
from binaryhpe.compile.engine.resources import calibrate, engine_resources
from binaryhpe.compile.engine.synth import critical_path, engine_bitstream


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="out_engine_ecp5")
    ap.add_argument("--device", default="ecp5-85f")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--calibrate", choices=("ecp5", "xilinx"))
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    if a.check:
        from dataclasses import replace

        from binaryhpe.compile.engine.synth import synth_engine

        cfg = replace(EngineConfig(), pe=8, pef=2, lb_depth=2048, wb_depth=512, cb_depth=256, bb_depth=512,
                      ob_depth=1024)
        est = engine_resources(cfg, "ecp5")
        got = synth_engine(cfg, "ecp5", out / "check")
        print(f"engine {json.dumps(cfg.rtl_params())}, synth_ecp5 flattened ({got['wall_s']} s)")
        for k in ("lut", "ff", "bram18", "dsp"):
            print(f"  {k:6} model {est[k]:7,}  Yosys {got[k]:7,}  ({(est[k] - got[k]) / got[k]:+.1%})")
        return
    if a.calibrate:
        print(f"{a.calibrate!r}: {json.dumps(calibrate(a.calibrate, out / 'calibrate', EngineConfig()))},")
        return
    cfg = EngineConfig()
    t0 = time.time()
    r = engine_bitstream(cfg, out, a.device, seed=a.seed)
    try:
        est = engine_resources(cfg, "ecp5")
    except BinaryHPEError as e:
        est = {k: f"- ({e})" for k in ("lut", "ff", "bram18", "dsp")}
    path = critical_path(pathlib.Path(r["log"]).read_text(errors="replace"))
    print(f"engine {json.dumps(r['params'])} on {r['device']} ({r['part']})")
    print(f"bitstream: {r['bitstream']}")
    print(f"fmax (nextpnr): {r['fmax_mhz']} MHz at a {r['clock_mhz']:g} MHz constraint "
          f"({'met' if r['timing_met'] else 'NOT met'}), seed {a.seed}")
    print(f"Yosys synth_ecp5: {r['luts']} LUT4, {r['ffs']} FF, {r['brams']} BRAM18 (DP16KD), {r['dsps']} DSP "
          f"(MULT18X18D)")
    print(f"model estimate:   {est['lut']} LUT4, {est['ff']} FF, {est['bram18']} BRAM18, {est['dsp']} DSP")
    util = r["utilisation"]
    print("nextpnr cells: " + ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in sorted(util.items())))
    if path:
        print(f"worst path: {path['delay_ns']} ns ({path['logic_ns']} logic, {path['routing_ns']} routing), "
              f"{path['from']} -> {path['to']}")
        print("  through " + ", ".join(path["sources"]))
    print(f"wall: {json.dumps(r['wall_s'])} s, total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
