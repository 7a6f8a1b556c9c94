"""hls4ml backend figures (printed, not asserted): ``binaryhpe build MODEL --backend hls4ml --sim`` on the tiny
BiDRN (default) or a QONNX file, with the C simulation compared element for element (outputs and every traced
layer) and the time of each step. Too heavy for the CI test file (the 260-layer C simulation alone is minutes of
g++ on 2 cores); tests/test_backend_hls4ml.py covers every kind on small graphs.

Usage: python benchmarks/hls4ml_figures.py [MODEL] [-o OUT]
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="tiny-bidrn")
    ap.add_argument("-o", "--out", default=None)
    a = ap.parse_args()
    from binaryhpe.compile.flow import build_backend

    out = pathlib.Path(a.out or tempfile.mkdtemp(prefix="hls4ml_fig_"))
    t0 = time.time()
    rep = build_backend(a.model, out, "hls4ml", sim=True, seed=0)
    wall = time.time() - t0
    kinds = collections.Counter(r["kind"] for r in rep["layers"])
    classes = collections.Counter(r["hls4ml_class"] for r in rep["layers"])
    print(f"model {a.model}: project {rep['project']}")
    print(f"hls4ml layers {len(rep['layers'])}: {dict(classes)}")
    print(f"from our kinds: {dict(kinds)}")
    print(f"bit-exact {rep['bit_exact']}: {rep['mismatches']} mismatches in {rep['compared_elements']} output "
          f"elements, {rep['traced_mismatches']} in {rep['traced_elements']} traced elements ({rep['frames']} frames)")
    if rep.get("layers_with_mismatches"):
        print("first layers that differ:", rep["layers_with_mismatches"][:5])
    print(f"convert + write {rep['convert_s']} s, C simulation compile + run {rep['csim_compile_and_run_s']} s, "
          f"whole build {wall:.0f} s")
    print("QONNX front end:", rep.get("qonnx_frontend"))


if __name__ == "__main__":
    main()
