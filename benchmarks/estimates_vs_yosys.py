"""Estimate vs Yosys, per layer kind, and the wall time of synthesis / place-and-route of the tiny BiDRN.

    python benchmarks/estimates_vs_yosys.py [--qonnx OUT/model.onnx] [--work DIR] [--no-pnr] [--quick]

1. XNOR-popcount unit (XnorMvu) over a PE/SIMD sweep: model LUTs vs Yosys ``synth_xilinx`` LUTs, and
   FINN's published MVAU LUT model (Umuroglu et al., FINN-R / finn ``MVAU.lut_estimation``) for the same
   PE/SIMD, W = A = 1.
2. Every other kind: the instances of the tiny BiDRN's hardware graph (one or two per kind, at the build's
   folding), model vs Yosys synth_xilinx and synth_ecp5 (LUT4 / LUT6 ratio too).
3. The whole tiny BiDRN, folded for ECP5-85F: Yosys synth_ecp5 + nextpnr-ecp5 + ecppack, wall time and fmax.
Yosys options: ``binaryhpe.compile.synth.XILINX_SYNTH`` / ``ECP5_SYNTH`` (fixed; printed).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import pathlib
import sys
import time

import numpy as np

from binaryhpe.compile.kinds.mvu import XnorMvu
from binaryhpe.compile.synth import ECP5_SYNTH, XILINX_SYNTH, synth_layer

#: (N, Cout, PE, SIMD): the calibration points of XnorMvu.resources()
SWEEP = [(72, 16, 1, 8), (72, 16, 4, 8), (144, 32, 4, 16), (288, 32, 8, 32), (288, 64, 16, 16),
         (576, 64, 8, 64), (1152, 128, 16, 32), (72, 8, 8, 72), (144, 16, 4, 16), (2304, 64, 8, 64),
         (144, 16, 8, 16), (8, 8, 1, 2)]
QUICK = [(72, 16, 4, 8), (288, 32, 8, 32), (1152, 128, 16, 32)]


def finn_mvau_luts(pe: int, simd: int, mw: int, w: int = 1, a: int = 1, wmem_luts: int = 0) -> int:
    """FINN's MVAU LUT model (finn-hlslib / finn ``MVAU.lut_estimation``, from FINN-R, Blott et al. 2018):
    300 + 1.1 * PE * (SIMD*(2*ceil((W+A)/6)-1)*(W+A) + (W+A)*(2*SIMD-1) + acc_bits) (+ LUT weight memory)."""
    mult = simd * (2 * math.ceil((w + a) / 6) - 1) * (w + a)
    tree = (w + a) * (2 * simd - 1)
    alpha = math.log2(mw) + w + a - 1
    acc = math.ceil(alpha + math.log2(1 + 2 ** -alpha) + 1)
    return int(300 + 1.1 * pe * (mult + tree + acc) + wmem_luts)


def err(est: float, syn: float) -> float:
    return (est - syn) / syn * 100 if syn else float("nan")


def xnor_sweep(work: pathlib.Path, cfgs) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    print(f"\n== XNOR-popcount unit (XnorMvu): model vs Yosys `{XILINX_SYNTH}` vs FINN's model ==")
    print(f"{'N':>5} {'Cout':>5} {'PE':>3} {'SIMD':>4} {'yosys LUT':>9} {'model':>6} {'err%':>6} "
          f"{'FINN':>6} {'FINN err%':>9} {'yosys FF':>8} {'model FF':>8} {'BRAM y/m':>8}")
    for n, cout, pe, simd in cfgs:
        lay = XnorMvu(name="x", n=n, cout=cout, pe=pe, simd=simd, pixels=1,
                      weights=rng.choice([-1, 1], size=(cout, n)))
        r = synth_layer(lay, "xilinx", work / f"xnor_{n}_{cout}_{pe}_{simd}")
        m = lay.resources()
        depth = (cout // pe) * (n // simd)
        # FINN adds P*Q*W*ceil(depth/64) LUTs when the weights sit in LUTs (here: where Yosys put them)
        f = finn_mvau_luts(pe, simd, n, wmem_luts=pe * simd * math.ceil(depth / 64) if r["bram18"] == 0 else 0)
        row = {"n": n, "cout": cout, "pe": pe, "simd": simd, "yosys": r, "model": m, "finn_lut": f,
               "err_lut": err(m["lut"], r["lut"]), "err_finn": err(f, r["lut"])}
        rows.append(row)
        print(f"{n:5d} {cout:5d} {pe:3d} {simd:4d} {r['lut']:9d} {m['lut']:6d} {row['err_lut']:6.1f} {f:6d} "
              f"{row['err_finn']:9.1f} {r['ff']:8d} {m['ff']:8d} {r['bram18']:>4}/{m['bram18']:<3}", flush=True)
    e = [abs(r["err_lut"]) for r in rows]
    ef = [abs(r["err_finn"]) for r in rows]
    print(f"XnorMvu LUT error: mean |err| {np.mean(e):.1f}%, max {max(e):.1f}%  (FINN's model: mean "
          f"{np.mean(ef):.1f}%, max {max(ef):.1f}%)")
    return rows


def per_kind(g, work: pathlib.Path, per: int = 2, ecp5: bool = True) -> dict:
    """Model vs Yosys for ``per`` instances of each kind of ``g`` (the largest and a mid-sized one)."""
    by = collections.defaultdict(list)
    for lay in g.layers:
        by[type(lay).__name__].append(lay)
    out = {}
    print(f"\n== per kind (tiny BiDRN instances): model vs Yosys `{XILINX_SYNTH}` / `{ECP5_SYNTH}` ==")
    print(f"{'kind':14s} {'layer':30s} {'LUT y':>6} {'LUT m':>6} {'err%':>6} {'FF y':>5} {'FF m':>5} {'err%':>6} "
          f"{'BRAM y/m':>8} {'DSP y/m':>7} {'LUT4 ecp5':>9} {'LUT4/LUT6':>9}")
    for kind, lays in sorted(by.items()):
        lays = sorted(lays, key=lambda lay: -lay.resources()["lut"])
        pick = [lays[0]] + ([lays[len(lays) // 2]] if per > 1 and len(lays) > 2 else [])
        rows = []
        for lay in pick:
            d = work / f"{kind}_{lay.name}".replace("/", "_")
            x = synth_layer(lay, "xilinx", d / "x")
            e5 = synth_layer(lay, "ecp5", d / "e") if ecp5 else None
            m = lay.resources()
            row = {"layer": lay.name, "yosys": x, "ecp5": e5, "model": m, "err_lut": err(m["lut"], x["lut"]),
                   "err_ff": err(m["ff"], x["ff"]), "lut4_per_lut6": (e5["lut"] / x["lut"]) if e5 and x["lut"] else None}
            rows.append(row)
            print(f"{kind:14s} {lay.name[:30]:30s} {x['lut']:6d} {m['lut']:6d} {row['err_lut']:6.1f} {x['ff']:5d} "
                  f"{m['ff']:5d} {row['err_ff']:6.1f} {x['bram18']:>4}/{m['bram18']:<3} {x['dsp']:>3}/{m['dsp']:<3} "
                  f"{(e5 or {}).get('lut', '-'):>9} {row['lut4_per_lut6'] or float('nan'):9.2f}", flush=True)
        out[kind] = rows
    print("\nper-kind LUT error (model vs synth_xilinx), mean |err| over the instances above:")
    for kind, rows in sorted(out.items()):
        print(f"  {kind:14s} {np.mean([abs(r['err_lut']) for r in rows]):6.1f}%   "
              f"FF {np.mean([abs(r['err_ff']) for r in rows]):6.1f}%")
    return out


def tiny_pnr(qonnx: pathlib.Path, work: pathlib.Path, device: str = "ecp5-85f") -> dict:
    from binaryhpe.compile.bitstream import build_bitstream
    from binaryhpe.compile.estimate import estimate
    from binaryhpe.compile.flow import step_lower, step_rtl

    print(f"\n== tiny BiDRN on {device}: fold, Yosys, nextpnr-ecp5, ecppack ==")
    t0 = time.time()
    g, _ = step_lower(qonnx, device=device)  # the build's lower / optimize / fold steps, device-aware
    rtl = step_rtl(g, work / "tiny")
    e = estimate(g, device)
    print(f"folding for {device}: ii {e['ii_cycles']} cycles, estimate {e['totals']} ({time.time() - t0:.0f} s)")
    b = build_bitstream(rtl, work / "tiny" / "bit", device)
    print(f"tiny BiDRN: synth {b['wall_s']['synth']} s, place & route {b['wall_s']['pnr']} s, pack "
          f"{b['wall_s']['pack']} s; fmax {b['fmax_mhz']} MHz; Yosys {b['synth']['lut']} LUT4 {b['synth']['ff']} FF "
          f"{b['synth']['bram18']} EBR {b['synth']['dsp']} MULT18 vs estimate {e['totals']}; {b['bitstream']}")
    return {"estimate": e["totals"], "pnr": b, "fps_at_fmax": (b["fmax_mhz"] or 0) * 1e6 / e["ii_cycles"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qonnx", help="QONNX of the tiny BiDRN (default: export it into --work)")
    ap.add_argument("--work", default="/tmp/bhpe_est_vs_yosys")
    ap.add_argument("--no-pnr", action="store_true", help="skip the whole-design place and route")
    ap.add_argument("--no-xnor", action="store_true", help="skip the XnorMvu sweep")
    ap.add_argument("--no-kinds", action="store_true", help="skip the per-kind comparison")
    ap.add_argument("--quick", action="store_true", help="3-point XnorMvu sweep, one instance per kind")
    ap.add_argument("--json", help="write all figures to this JSON file")
    a = ap.parse_args(argv)
    work = pathlib.Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"Yosys options: xilinx `{XILINX_SYNTH}`, ecp5 `{ECP5_SYNTH}` (read_slang frontend)")
    res = {} if a.no_xnor else {"xnor": xnor_sweep(work, QUICK if a.quick else SWEEP)}
    qonnx = pathlib.Path(a.qonnx) if a.qonnx else None
    if not a.no_kinds or not a.no_pnr:
        if qonnx is None:
            from binaryhpe.compile.flow import step_model_to_qonnx

            qonnx = work / "model.onnx"
            if not qonnx.exists():
                step_model_to_qonnx("tiny-bidrn", work, 0)
    if not a.no_kinds:
        from binaryhpe.compile.flow import step_lower

        g, _ = step_lower(qonnx)
        res["kinds"] = per_kind(g, work, per=1 if a.quick else 2)
    if not a.no_pnr:
        res["tiny"] = tiny_pnr(qonnx, work)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
