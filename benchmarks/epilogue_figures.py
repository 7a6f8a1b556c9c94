"""Issue 13's hardware figures of the fused epilogue for the current code: the tiny BiDRN's hardware layers (and
how many are Epilogue units, with their op chains), the predicted (and with --sim the measured) frame interval,
and Yosys ``synth_ecp5`` LUT / FF / DSP of the whole generated design.

    python benchmarks/epilogue_figures.py [--work DIR] [--sim] [--no-synth]

It runs ``binaryhpe build`` of the default tiny BiDRN (seed 0) into ``DIR`` and synthesizes ``DIR/rtl`` as one
flat ECP5 netlist (about 3-5 minutes on a 2-core machine). The same script runs against an older checkout
(``PYTHONPATH=<dir holding binaryhpe> python benchmarks/epilogue_figures.py``) for the before figures.
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/bhpe_epilogue_figures")
    ap.add_argument("--sim", action="store_true", help="also simulate the RTL (measured frame interval)")
    ap.add_argument("--no-synth", action="store_true", help="skip the Yosys run")
    a = ap.parse_args(argv)

    import binaryhpe
    from binaryhpe.compile.flow import build
    from binaryhpe.compile.synth import synth_design

    out = pathlib.Path(a.work)
    print(f"binaryhpe from {pathlib.Path(binaryhpe.__file__).parent}", flush=True)
    t0 = time.time()
    build("tiny-bidrn", out, sim=a.sim)
    rep = json.loads((out / "report.json").read_text())
    hw = json.loads((out / "hwgraph.json").read_text())
    kinds = collections.Counter(lay["kind"] for lay in hw["layers"])
    print(f"hardware layers: {len(hw['layers'])} ({', '.join(f'{k} {n}' for k, n in kinds.most_common())})")
    chains = collections.Counter("->".join(op["kind"] for op in lay["ops"]) for lay in hw["layers"]
                                 if lay["kind"] == "Epilogue")
    for chain, n in chains.most_common():
        print(f"  {n:3d} x Epilogue {chain}")
    print(f"predicted cycles/frame: {rep['predicted_cycles_per_frame']}")
    if a.sim:
        print(f"measured cycles/frame: {rep['cycles_per_frame']}, bit-exact: {rep['bit_exact']}")
    if not a.no_synth:
        r = synth_design(out / "rtl", family="ecp5")
        print(f"Yosys {r['options']}: {r['lut']} LUT, {r['ff']} FF, {r['dsp']} DSP, {r['bram18']} BRAM18 "
              f"({r['wall_s']:.0f} s)")
    print(f"done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
