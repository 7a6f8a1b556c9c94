"""FINN backend figures (printed, not asserted): ``binaryhpe build MODEL --backend finn --sim`` on the tiny BiDRN
(default) or a QONNX file: FINN's execution against ours (outputs and every traced tensor), the FINN layers it
took, which Requants FINN's RTL variant refuses, and FINN's estimates next to ours, summed per layer type of ours.

Usage: python benchmarks/finn_figures.py [MODEL] [-o OUT] [--flow auto|streamline|hw_graph]
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="tiny-bidrn")
    ap.add_argument("-o", "--out", default=None)
    ap.add_argument("--flow", default="auto", choices=["auto", "streamline", "hw_graph"])
    a = ap.parse_args()
    from binaryhpe.compile.backends import finn_backend
    from binaryhpe.compile.flow import step_lower, step_model_to_qonnx

    out = pathlib.Path(a.out or tempfile.mkdtemp(prefix="finn_fig_"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    qonnx, _ = step_model_to_qonnx(a.model, out, 0)
    g, _ = step_lower(qonnx)
    t1 = time.time()
    rep = finn_backend.build(qonnx, g, out, sim=True, seed=0, flow=a.flow)
    t2 = time.time()
    rows = rep["estimates"]["layers"]
    ops = collections.Counter(op for r in rows for op in r["op_types"])
    print(f"model {a.model}: {len(g.layers)} layers of ours -> {rep['finn_layers']} FINN layers "
          f"(flow {rep['finn_flow']}), project {rep['project']}")
    print("FINN layers:", dict(ops.most_common()))
    print(f"bit-exact {rep['bit_exact']}: {rep['mismatches']} mismatches in {rep['compared_elements']} output "
          f"elements ({rep['frames']} frames)" + (f", {rep['traced_mismatches']} in {rep['traced_elements']} "
                                                   "traced elements" if "traced_elements" in rep else ""))
    if rep.get("finn_requant_impl"):
        print(f"Requant implementations: {rep['finn_requant_impl']} (RTL refusals, first: "
              f"{json.dumps(rep['finn_requant_hls_reasons'])})")
    kind = {lay.name: type(lay).__name__ for lay in g.layers}
    agg = collections.defaultdict(lambda: collections.Counter())
    for r in rows:
        k = "+".join(sorted({kind.get(n, "?") for n in r["ours"]})) or "(FINN only)"
        c = agg[k]
        c["rows"] += 1
        c["finn_lut"] += r["finn_lut"] or 0
        c["our_lut"] += r["our_lut"] or 0
        c["finn_bram18"] += r["finn_bram18"] or 0
        c["our_bram18"] += r["our_bram18"] or 0
        c["finn_cycles_max"] = max(c["finn_cycles_max"], r["finn_cycles"] or 0)
        c["our_cycles_max"] = max(c["our_cycles_max"], r["our_cycles"] or 0)
    print(f"\n{'our kind':<16}{'layers':>7}{'FINN LUT':>10}{'our LUT':>9}{'FINN BRAM18':>12}{'our BRAM18':>11}"
          f"{'FINN max cyc':>13}{'our max cyc':>12}")
    for k, c in sorted(agg.items(), key=lambda kv: -kv[1]["our_lut"]):
        print(f"{k:<16}{c['rows']:>7}{c['finn_lut']:>10.0f}{c['our_lut']:>9.0f}{c['finn_bram18']:>12.0f}"
              f"{c['our_bram18']:>11.0f}{c['finn_cycles_max']:>13}{c['our_cycles_max']:>12}")
    tot = {k: sum(c[k] for c in agg.values()) for k in ("finn_lut", "our_lut", "finn_bram18", "our_bram18")}
    print(f"{'total':<16}{sum(c['rows'] for c in agg.values()):>7}{tot['finn_lut']:>10.0f}{tot['our_lut']:>9.0f}"
          f"{tot['finn_bram18']:>12.0f}{tot['our_bram18']:>11.0f}")
    fest = rep["estimates"]["finn"]
    spec = collections.Counter(f.get("op_type") for f in fest.values())
    zero = collections.Counter(f.get("op_type") for f in fest.values() if not (f.get("lut") or 0))
    print("FINN's specialized layers:", dict(spec.most_common()))
    print("of which FINN estimates 0 LUT (no model):", dict(zero.most_common()))
    print(f"\nexport + lowering {t1 - t0:.0f} s, FINN backend {t2 - t1:.0f} s (FINN job {rep['finn_wall_s']} s)")


if __name__ == "__main__":
    main()
