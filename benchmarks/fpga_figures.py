"""Issue 5's figures in one run: estimate vs Yosys per layer kind (and the XNOR-popcount sweep against FINN's
model), the paper-scale frame-rate table per device, and the wall time of synthesis and place-and-route of the
tiny BiDRN.

    python benchmarks/fpga_figures.py [--work DIR] [--cache /tmp/bhpe_paper] [--quick] [--no-pnr]

It runs ``estimates_vs_yosys.main`` then ``paper_scale_devices.main`` in one process (see each script for its
options). Expect hours on a 2-core machine: place and route of the tiny BiDRN alone took 54 min, exporting and
lowering the paper-scale encoders about an hour (both cached after the first run).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import estimates_vs_yosys  # noqa: E402
import paper_scale_devices  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/bhpe_fpga_figures")
    ap.add_argument("--cache", default="/tmp/bhpe_paper", help="cached paper-scale QONNX exports")
    ap.add_argument("--quick", action="store_true", help="short XNOR sweep, one instance per kind")
    ap.add_argument("--no-pnr", action="store_true", help="skip the tiny BiDRN's place and route")
    a = ap.parse_args(argv)
    work = pathlib.Path(a.work)
    t0 = time.time()
    print("== 1. estimate vs Yosys per layer kind; 3. synthesis and place-and-route of the tiny BiDRN ==", flush=True)
    ev = ["--work", str(work / "est"), "--json", str(work / "estimates_vs_yosys.json")]
    rc = estimates_vs_yosys.main(ev + (["--quick"] if a.quick else []) + (["--no-pnr"] if a.no_pnr else []))
    print(f"\n== 2. paper-scale frame rate per device ({time.time() - t0:.0f} s so far) ==", flush=True)
    rc |= paper_scale_devices.main(["--cache", a.cache, "--markdown", str(work / "paper_scale.md"),
                                    "--json", str(work / "paper_scale.json")])
    print(f"\nall figures in {time.time() - t0:.0f} s; JSON and Markdown under {work}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
