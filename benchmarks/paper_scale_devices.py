"""Paper-scale BinaryHPE on each listed device: which fit, at what frame rate.

    python benchmarks/paper_scale_devices.py [--cache /tmp/bhpe_paper] [--devices a,b] [--markdown FILE]

The system: the body encoder BiDRN-50 at 256x192, the hand encoder BiDRN-50 at 256x256 run twice a frame
(two hand crops), the face encoder BiDRN-18 at 192x192 (built-in models bidrn-50-body, bidrn-50-hand,
bidrn-18-face), side by side on one device. For each device :func:`binaryhpe.compile.estimate.fold_system`
finds the highest common frame rate at which all three fit (PE/SIMD per MVU; weights in BRAM, URAM, or
streamed from DRAM, estimated only), with the roofline figures.

Not in the hardware graph: the binarized BoxNet and the heads (position / rotation nets, face regressor).
There is no lowering for them yet; by the paper's OP convention (``binaryhpe params hand4whole``) they are
1.84 G of the 17.85 G MACs of the full-precision Hand4Whole (10%): the table's fps is for the encoders.

Exporting a BiDRN-50 to QONNX takes several minutes; the QONNX files are cached in ``--cache``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

from binaryhpe.compile.devices import device_names, load_device
from binaryhpe.compile.estimate import fold_system, prepare

PARTS = [("body BiDRN-50 256x192", "bidrn-50-body", 1), ("hand BiDRN-50 256x256 (x2)", "bidrn-50-hand", 2),
         ("face BiDRN-18 192x192", "bidrn-18-face", 1)]
ORDER = ["ecp5-25f", "ecp5-85f", "zynq-7020", "zu3eg", "zu7ev", "alveo-u250"]


def qonnx_of(name: str, cache: pathlib.Path) -> pathlib.Path:
    p = cache / f"{name}.onnx"
    if p.exists():
        return p
    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.hardware import to_hardware
    from binaryhpe.train.models import build_model

    cache.mkdir(parents=True, exist_ok=True)
    t = time.time()
    print(f"exporting {name} to {p} (several minutes) ...", flush=True)
    net, x = build_model(name, seed=0)
    to_hardware(net)
    tmp = p.with_suffix(".tmp.onnx")
    export_qonnx(net, x, tmp)
    tmp.rename(p)
    print(f"  {time.time() - t:.0f} s", flush=True)
    return p


def fmt_row(dev, e) -> str:
    if not e["fits"]:
        u = ", ".join(f"{k} {100 * e['utilisation'][k]:.0f}%" for k in e["over"])
        return f"| {dev.name} | {dev.board} | - | no (slowest folding needs {u}) | | | | | | |"
    t, ut = e["totals"], e["utilisation"]
    parts = " / ".join(f"{p['fps']:.1f}" for p in e["parts"])
    stream = f"{e['streamed_weight_bits'] / 8e6:.1f} MB" if e["streamed_weight_bits"] else "-"
    return (f"| {dev.name} | {dev.board} | **{e['fps']:.1f}** | yes ({e['bound']} bound) | {parts} | "
            f"{e['latency_ms']:.1f} | {t['lut']:,} ({100 * ut['lut']:.0f}%) | {t['bram18']:,} ({100 * ut['bram18']:.0f}%)"
            f"{' + ' + str(t['uram']) + ' URAM' if t['uram'] else ''} | {t['dsp']:,} ({100 * ut['dsp']:.0f}%) | "
            f"{stream} | {100 * e['fraction_of_roof']:.0f}% |")


HEAD = ("| device | board | fps | fits | body / hand / face alone (fps) | latency (ms) | LUT | BRAM18 | DSP | "
        "weights streamed | of roofline |\n|---|---|---|---|---|---|---|---|---|---|---|")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default="/tmp/bhpe_paper", help="folder of cached QONNX exports")
    ap.add_argument("--devices", default=",".join(n for n in ORDER if n in device_names()))
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--json", help="write the full results to this file")
    a = ap.parse_args(argv)
    cache = pathlib.Path(a.cache)
    parts = []
    for label, name, n in PARTS:
        q = qonnx_of(name, cache)
        t = time.time()
        g0 = prepare(q)
        print(f"{label}: {len(g0.layers)} layers lowered in {time.time() - t:.0f} s", flush=True)
        parts.append((label, g0, n))
    rows, res = [], {}
    for name in a.devices.split(","):
        dev = load_device(name)
        t = time.time()
        e = fold_system(parts, dev, "max", progress=True)
        print(f"{dev.name}: {'fits' if e['fits'] else 'does not fit'}, {e['fps']:.2f} fps "
              f"({time.time() - t:.0f} s search)", flush=True)
        rows.append(fmt_row(dev, e))
        res[dev.name] = e
    table = "\n".join([HEAD] + rows)
    print("\nPaper-scale BinaryHPE encoders (body + 2 x hand + face), fastest folding that fits each device, "
          "clock from the device file:\n")
    print(table)
    if a.markdown:
        pathlib.Path(a.markdown).write_text(table + "\n")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
