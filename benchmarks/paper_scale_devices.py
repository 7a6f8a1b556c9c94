"""Paper-scale BinaryHPE on each listed device: which fit, at what frame rate.

    python benchmarks/paper_scale_devices.py [--cache /tmp/bhpe_paper] [--devices a,b] [--markdown FILE] [--json FILE]
    python benchmarks/paper_scale_devices.py --from-json FILE --markdown TABLE.md   # re-render saved results

The system: the body encoder BiDRN-50 at 256x192, the hand encoder BiDRN-50 at 256x256 run twice a frame
(two hand crops), the face encoder BiDRN-18 at 192x192 (built-in models bidrn-50-body, bidrn-50-hand,
bidrn-18-face), side by side on one device. For each device :func:`binaryhpe.compile.folding.fold_system`
finds the highest common frame rate at which all three fit (PE/SIMD per MVU; weights in BRAM, URAM, or
streamed from DRAM through the MVUs' weight ports), with the roofline figures.

Not in the hardware graph: the binarized BoxNet and the heads (position / rotation nets, face regressor).
There is no lowering for them yet; :func:`not_lowered` measures their share with ``binaryhpe params binaryhpe``'s
counter (``binaryhpe.train.variants.measure``): the table's fps is for the encoders only, and its caption says
how much of the model's OPs / MACs is left out.

``--markdown FILE`` writes the caption and the table (what the README and docs/paper-scale.md show);
``--json FILE`` the full results, which ``--from-json FILE`` renders again without recomputing. ``--alone`` adds
a second table: each encoder alone on each device. Lowered graphs are cached as pickles beside the QONNX files.

Exporting a BiDRN-50 to QONNX takes several minutes; the QONNX files are cached in ``--cache``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import pickle
import sys
import time

from binaryhpe.compile.devices import device_names, load_device
from binaryhpe.compile.folding import fold_system, prepare

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


def not_lowered() -> dict:
    """Share of the BinaryHPE model outside the hardware graph (BoxNet and heads), by the paper's OP convention
    (``OPs_b / 64 + OPs_f``) and by plain multiply-accumulates, from ``binaryhpe params binaryhpe``'s counter."""
    from binaryhpe.train.variants import measure

    rep = measure("binaryhpe")
    enc = [n for n in rep.parts if n.endswith("_encoder")]
    rest = [n for n in rep.parts if n not in enc]

    def tot(names, f):
        return sum(f(rep.parts[n]) for n in names)

    ops = tot(rep.parts, lambda c: c.ops)
    macs = tot(rep.parts, lambda c: c.ops_b + c.ops_f)
    return {"parts": rest, "ops_g": tot(rest, lambda c: c.ops) / 1e9, "total_ops_g": ops / 1e9,
            "macs_g": tot(rest, lambda c: c.ops_b + c.ops_f) / 1e9, "total_macs_g": macs / 1e9,
            "fp_macs_g": tot(rest, lambda c: c.ops_f) / 1e9, "total_fp_macs_g": tot(rep.parts, lambda c: c.ops_f) / 1e9}


def caption(nl: dict, res: dict) -> str:
    clocks = ", ".join(f"{n} {load_device(n).clock_mhz:g} MHz" for n in res)
    return (
        "Paper-scale BinaryHPE encoders on one device each: body BiDRN-50 at 256x192, hand BiDRN-50 at 256x256 "
        "run twice a frame (two hand crops), face BiDRN-18 at 192x192, side by side; the fastest common frame "
        "rate at which all three fit (estimate: each layer kind's resource and cycle model, at most 85% of the "
        "LUTs/FFs and 95% of the BRAM/URAM/DSPs; weights in BRAM, URAM or streamed from DRAM). "
        "*body / hand / face alone*: the rate each encoder's own folding reaches (the hand's counts its two "
        "passes). *Weights streamed*: size of the weight matrices placed in DRAM and read through the "
        "MVUs' weight-stream ports (once per output pixel). **Not included**: the binarized BoxNet and the heads "
        f"({', '.join(nl['parts'])}) have no lowering to the hardware graph yet; they are "
        f"{nl['ops_g']:.2f} G of the model's {nl['total_ops_g']:.2f} G OPs by the paper's convention "
        f"({100 * nl['ops_g'] / nl['total_ops_g']:.0f}%; OPs_b/64 + OPs_f), {nl['macs_g']:.2f} G of its "
        f"{nl['total_macs_g']:.2f} G multiply-accumulates ({100 * nl['macs_g'] / nl['total_macs_g']:.0f}%), and "
        f"{nl['fp_macs_g']:.2f} G of its {nl['total_fp_macs_g']:.2f} G full-precision MACs "
        f"({100 * nl['fp_macs_g'] / nl['total_fp_macs_g']:.0f}%), so the fps shown is an upper bound for the "
        f"whole model. Clocks from the device files: {clocks}.")


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
    ap.add_argument("--from-json", help="render the table of results saved by --json (no lowering, no search)")
    ap.add_argument("--alone", action="store_true", help="also fold each encoder alone on each device (second table)")
    a = ap.parse_args(argv)
    if a.from_json:
        fj = pathlib.Path(a.from_json)
        aj = fj.with_suffix(".alone.json")
        return render(json.loads(fj.read_text()), a.markdown, json.loads(aj.read_text()) if aj.exists() else None)
    alone: dict = {}
    cache = pathlib.Path(a.cache)
    parts = []
    for label, name, n in sorted(PARTS, key=lambda p: p[1] != "bidrn-18-face"):  # the small face encoder first
        parts.append((label, lowered(name, cache), n))
        if a.alone:  # each encoder alone on each device, as soon as it is lowered
            for dname in a.devices.split(","):
                t = time.time()
                e = fold_system([parts[-1]], load_device(dname), "max", progress=False)
                alone.setdefault(dname, {})[label] = e
                print(f"alone {label} on {dname}: {'fits' if e['fits'] else 'does not fit'}, {e['fps']:.2f} fps "
                      f"({time.time() - t:.0f} s search)", flush=True)
                if a.json:
                    pathlib.Path(a.json).with_suffix(".alone.json").write_text(json.dumps(alone, indent=1, default=str))
    parts.sort(key=lambda p: [x[0] for x in PARTS].index(p[0]))
    res = {}
    for name in a.devices.split(","):
        dev = load_device(name)
        t = time.time()
        e = fold_system(parts, dev, "max", progress=True)
        print(f"{dev.name}: {'fits' if e['fits'] else 'does not fit'}, {e['fps']:.2f} fps "
              f"({time.time() - t:.0f} s search)", flush=True)
        res[dev.name] = e
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    return render(json.loads(json.dumps(res, default=str)), a.markdown,
                  json.loads(json.dumps(alone, default=str)) if alone else None)


def lowered(name: str, cache: pathlib.Path):
    """The unfolded hardware graph of a built-in model (:func:`prepare`), cached as a pickle beside its QONNX."""
    q = qonnx_of(name, cache)
    pkl = cache / f"{name}.hwgraph.pkl"
    t = time.time()
    if pkl.exists() and pkl.stat().st_mtime >= q.stat().st_mtime:
        with open(pkl, "rb") as f:
            g0 = pickle.load(f)
        print(f"{name}: {len(g0.layers)} layers, lowered graph read from {pkl}", flush=True)
        return g0
    g0 = prepare(q)
    print(f"{name}: {len(g0.layers)} layers lowered in {time.time() - t:.0f} s", flush=True)
    with open(pkl.with_suffix(".tmp"), "wb") as f:
        pickle.dump(g0, f, protocol=pickle.HIGHEST_PROTOCOL)
    pkl.with_suffix(".tmp").rename(pkl)
    return g0


ALONE_HEAD = ("| device | encoder | fps | fits | latency (ms) | LUT | BRAM18 | DSP | weights streamed |\n"
              "|---|---|---|---|---|---|---|---|---|")


def fmt_alone(dev, label, e) -> str:
    if not e["fits"]:
        u = ", ".join(f"{k} {100 * e['utilisation'][k]:.0f}%" for k in e["over"])
        return f"| {dev.name} | {label} | - | no (slowest folding needs {u}) | | | | | |"
    t, ut = e["totals"], e["utilisation"]
    stream = f"{e['streamed_weight_bits'] / 8e6:.1f} MB" if e["streamed_weight_bits"] else "-"
    return (f"| {dev.name} | {label} | **{e['fps']:.1f}** | yes ({e['bound']} bound) | {e['latency_ms']:.1f} | "
            f"{t['lut']:,} ({100 * ut['lut']:.0f}%) | {t['bram18']:,} ({100 * ut['bram18']:.0f}%)"
            f"{' + ' + str(t['uram']) + ' URAM' if t['uram'] else ''} | {t['dsp']:,} ({100 * ut['dsp']:.0f}%) | {stream} |")


def render(res: dict, markdown=None, alone: dict | None = None) -> int:
    """Print (and with ``markdown`` write) the caption and the table of ``{device name: fold_system result}``,
    and with ``alone`` (``{device: {encoder label: result}}``) the table of each encoder alone."""
    rows = [fmt_row(load_device(name), e) for name, e in res.items()]
    text = caption(not_lowered(), res) + "\n\n" + "\n".join([HEAD] + rows) + "\n"
    if alone:
        arows = [fmt_alone(load_device(d), lab, e) for d, per in alone.items() for lab, e in per.items()]
        text += ("\nEach encoder alone on the device (the same search with one part; the hand encoder's rate counts "
                 "its two passes a frame):\n\n" + "\n".join([ALONE_HEAD] + arows) + "\n")
    print("\n" + text)
    if markdown:
        pathlib.Path(markdown).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
