"""The face BiDRN-18 at 192x192 on the layer-sequential engine, on each listed device, beside the dataflow design.

    python benchmarks/engine_figures.py [--cache /tmp/bhpe_paper] [--devices a,b] [--markdown FILE] [--json FILE]
                                        [--no-dataflow]

For each device: the engine sized for it (``compile.engine.EngineConfig.for_device``), the program compiled from
the face encoder's hardware graph, and by the models: cycles/frame (``compile.engine.cycle_model``), fps at the
device clock, DRAM bytes/frame, the fraction of the device's roofline reached (``compile.engine.roofline``: the
engine's compute bound and the board's DRAM bandwidth bound for this model), the engine's resources
(``compile.engine.resources.engine_resources``, an estimate) against the device. Beside it the dataflow design's
estimate for the face encoder alone on the same device (``compile.folding.fold_for_device``: the fastest folding
that fits), or "does not fit". All figures are model estimates; the engine's cycle model is checked against
Verilator in tests/test_engine_build.py and benchmarks/engine_face_sim.py.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

from binaryhpe.compile.devices import load_device

ORDER = ["ecp5-25f", "ecp5-85f", "zynq-7020", "zu3eg", "zu7ev", "alveo-u250"]
MODEL = "bidrn-18-face"


def face_graph(cache: pathlib.Path):
    """The face encoder's QONNX (cached) lowered, and the engine's view of it (requantizers and epilogues fused)."""
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from paper_scale_devices import qonnx_of

    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import run_passes, standard_passes

    q = qonnx_of(MODEL, cache)
    mw = load_qonnx(q)
    g = lower(mw, source=q.name)
    g0 = g.copy()
    run_passes(g, standard_passes(), stop="forks")
    return g, g0, mw


def engine_row(g, dev) -> dict:
    from binaryhpe.compile.engine import EngineConfig, compile_program, cycle_model, roofline
    from binaryhpe.compile.engine.resources import engine_resources

    from binaryhpe import BinaryHPEError

    cfg = EngineConfig.for_device(dev)
    t = time.time()
    try:
        prog = compile_program(g, cfg)
    except BinaryHPEError as e:  # the engine sized for this device cannot take a layer: reported, not fatal
        return {"device": dev.name, "config": cfg.rtl_params(), "refused": str(e)}
    cm = cycle_model(prog, cfg)
    rf = roofline(prog, cfg)
    res = engine_resources(cfg, dev.family)
    cyc = cm["total"]["cycles"]
    util = {k: res[k] / getattr(dev, k) for k in ("lut", "bram18", "dsp") if getattr(dev, k, 0)}
    return {"device": dev.name, "config": cfg.rtl_params(), "cycles": cyc, "fps": dev.clock_mhz * 1e6 / cyc,
            "latency_ms": cyc / (dev.clock_mhz * 1e3),
            "dram_bytes": cm["total"]["dram_read_bytes"] + cm["total"]["dram_write_bytes"],
            "roofline_fraction": rf["fraction"], "roofline": rf, "resources": res,
            "fits": all(v <= 1.0 for v in util.values()), "utilisation": util, "compile_s": round(time.time() - t, 1)}


def dataflow_row(g0, dev) -> dict:
    from binaryhpe.compile.folding import fold_for_device
    from binaryhpe.compile.passes import prepare_passes

    g = g0.copy()
    prepare_passes(g)
    try:
        _, est = fold_for_device(g, dev, "max", None)
    except Exception as e:  # noqa: BLE001 - a search that finds nothing is reported, not fatal
        return {"fits": False, "why": str(e).splitlines()[0]}
    if not est["fits"]:
        return {"fits": False, "why": ", ".join(f"{k} {est['utilisation'][k]:.0%}" for k in est["over"])}
    return {"fits": True, "fps": est["fps"], "lut": est["totals"]["lut"], "bram18": est["totals"]["bram18"],
            "dsp": est["totals"]["dsp"]}


def markdown(rows: list[dict]) -> str:
    head = ("| device | engine (PE, PEF) | cycles/frame | fps (engine) | DRAM MB/frame | of roofline | engine LUT / "
            "BRAM18 / DSP (estimate) | fits | dataflow fps |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        e, d = r["engine"], r.get("dataflow")
        if "refused" in e:
            lines.append(f"| {e['device']} | {e['config'].get('PE')}, {e['config'].get('PEF')} | - | - | - | - | - | "
                         f"no: {e['refused']} | - |")
            continue
        res = e["resources"]
        df = "-" if d is None else (f"{d['fps']:.1f}" if d["fits"] else f"does not fit ({d['why']})")
        lines.append(f"| {e['device']} | {e['config'].get('PE')}, {e['config'].get('PEF')} | {e['cycles']:,} | "
                     f"{e['fps']:.1f} | {e['dram_bytes'] / 1e6:.2f} | {e['roofline_fraction']:.0%} | "
                     f"{res.get('lut', 0):,} / {res.get('bram18', 0):,} / {res.get('dsp', 0):,} | "
                     f"{'yes' if e['fits'] else 'no'} | {df} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default="/tmp/bhpe_paper")
    ap.add_argument("--devices", default=",".join(ORDER))
    ap.add_argument("--markdown")
    ap.add_argument("--json")
    ap.add_argument("--no-dataflow", action="store_true", help="skip the dataflow design's folding search")
    a = ap.parse_args(argv)
    t = time.time()
    g, g0, _ = face_graph(pathlib.Path(a.cache))
    print(f"face BiDRN-18 192x192 lowered in {time.time() - t:.0f} s", flush=True)
    rows = []
    for name in a.devices.split(","):
        dev = load_device(name)
        row = {"engine": engine_row(g, dev)}
        if not a.no_dataflow:
            row["dataflow"] = dataflow_row(g0, dev)
        rows.append(row)
        e = row["engine"]
        if "refused" in e:
            print(f"{name:12s} engine refused: {e['refused']}", flush=True)
            continue
        print(f"{name:12s} engine {e['fps']:8.1f} fps, {e['cycles']:>12,} cycles, roofline {e['roofline_fraction']:.0%},"
              f" fits {e['fits']}" + (f"; dataflow {row['dataflow']}" if "dataflow" in row else ""), flush=True)
    md = markdown(rows)
    print(md)
    if a.markdown:
        pathlib.Path(a.markdown).write_text(md + "\n")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
