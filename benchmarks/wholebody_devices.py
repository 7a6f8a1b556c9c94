"""The whole paper-scale BinaryHPE on each listed device: the design ``--arch auto`` chooses, its frame rate with
the host part, latency, resources, DRAM traffic, roofline fraction, beside the all-engine and dataflow-only
figures (and published Vitis AI DPU figures on the ZCU104, read from their page: ``DPU_ZCU104``).

    python benchmarks/wholebody_devices.py [--model binaryhpe] [--cache /tmp/bhpe_whole] [--devices a,b]
                                           [--markdown FILE] [--json FILE]
    python benchmarks/wholebody_devices.py --from-json FILE --markdown FILE    # re-render, no search

The parts are exported once (``compile.wholebody_build.export_parts``, seeded random weights: every figure
here depends on shapes, not values; ``--no-check`` skips the qonnx-vs-PyTorch check of each part, which the
build itself always runs) and lowered once (pickled beside the QONNX files); then per device
``compile.wholebody_build.search`` evaluates every design (the engine at each configuration that fits, the
dataflow where a part can be, hybrids) with the host part timed by ``compile.host.a53``. Every figure is an
estimate from the toolkit's models (engine cycle and resource models, dataflow folding, the A53 model); none
was measured on a board. ``--model tiny-wholebody`` runs the same path in seconds (CI runs it).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import pickle
import sys
import time

ORDER = ["ecp5-25f", "ecp5-85f", "zynq-7020", "zu3eg", "zu7ev", "alveo-u250"]


def load_parts(model: str, cache: pathlib.Path, check: bool):
    from binaryhpe.compile.wholebody_build import export_parts, lower_part, parts_of

    cache.mkdir(parents=True, exist_ok=True)
    man_path = cache / "parts" / "export.json"
    if man_path.exists():
        manifest = json.loads(man_path.read_text())
        print(f"parts: cached in {cache / 'parts'}", flush=True)
    else:
        t = time.time()
        manifest = export_parts(model, cache, seed=0, check=check)
        print(f"export: {time.time() - t:.0f} s", flush=True)
    parts = parts_of(manifest)
    for p in parts:
        pk = p.qonnx.with_suffix(".lowered.pkl")
        if pk.exists():
            p.mw, p.g, p.g_prepared = None, *pickle.loads(pk.read_bytes())
            continue
        lower_part(p)
        pk.write_bytes(pickle.dumps((p.g, p.g_prepared)))
    return manifest, parts


def run(model: str, cache: pathlib.Path, devices: list[str], check: bool) -> dict:
    from binaryhpe.compile.devices import load_device
    from binaryhpe.compile.wholebody_build import host_figures, search, why

    manifest, parts = load_parts(model, cache, check)
    from binaryhpe.train.wholebody import build_wholebody, host_nodes

    manifest["host"] = host_nodes(build_wholebody(model))  # the host part of this code (the cache keeps parts only)
    rows = []
    for name in devices:
        dev = load_device(name)
        t = time.time()
        host = host_figures(manifest, dev)
        row = {"device": dev.name, "board": dev.board, "clock_mhz": dev.clock_mhz, "dram_gbps": dev.dram_gbps,
               "host_cpu": dev.host_cpu, "host_ms": host["ms_per_frame"], "host_model": host["model"]}
        row["host_ms_without_smplx"] = host["ms_per_frame_without_smplx"]
        try:
            search(parts, dev, host["ms_per_frame"], "dataflow")
            row["dataflow"] = "fits"
        except Exception as e:  # noqa: BLE001 - the reason is the figure
            row["dataflow"] = str(e)
        for arch in ("auto", "engine"):
            try:
                ch = search(parts, dev, host["ms_per_frame"], arch)
            except Exception as e:  # noqa: BLE001 - a device on which nothing fits is a row, not a crash
                row[arch] = {"fits": False, "why": str(e)}
                continue
            b = ch["chosen"]
            row[arch] = {"fits": True, "fps": b["fps"], "latency_ms": b["latency_ms"], "engine": b["engine"],
                         "assign": b["assign"], "resources": b["resources"], "utilisation": b["utilisation"],
                         "dram_mb": b["dram_bytes_per_frame"] / 1e6, "dram_gbps_needed": b["dram_gbps_needed"],
                         "roofline_fraction": b["roofline_fraction"], "hardware_ms": b["hardware_ms"],
                         "roofline_fraction_board": b["roofline_fraction_board"],
                         "host_share": b["host_ms"] / b["latency_ms"], "why": why(ch, arch),
                         "fps_without_smplx": 1e3 / (b["hardware_ms"] + row["host_ms_without_smplx"]),
                         "fps_host_overlapped": b["fps_host_overlapped"],
                         "pareto_points": len(ch["pareto"]), "parts": b["parts"]}
        row["search_s"] = round(time.time() - t, 1)
        print(f"{dev.name}: auto {row['auto'].get('fps', 0):.2f} fps, engine {row['engine'].get('fps', 0):.2f} fps "
              f"({row['search_s']} s)", flush=True)
        rows.append(row)
    ops = {p.name: p.engine and next(iter(p.engine.values()))["ops"] * p.runs for p in parts}
    return {"model": model, "rows": rows, "ops_per_frame": ops}


#: Vitis AI DPU on the ZCU104 (two DPUCZDX8G B4096 at 300 MHz, INT8), published end-to-end figures (Vitis AI
#: Library, the multi-thread count not stated there), read from the Vitis AI 2.0 Model Zoo README, section
#: "Performance on ZCU104" (tag v2.0, commit d02dcb6; G ops = the float model's operations a frame, from its name)
DPU_SOURCE = "https://github.com/Xilinx/Vitis-AI/blob/v2.0/models/AI-Model-Zoo/README.md (Performance on ZCU104)"
DPU_ZCU104: list[dict] = [
    {"model": "cf_resnet50_imagenet_224_224_7.7G", "gops": 7.7, "fps_1t": 85.6, "fps_mt": 166.2},
    {"model": "cf_hourglass_mpii_256_256_10.2G (pose)", "gops": 10.2, "fps_1t": 18.6, "fps_mt": 73.7},
    {"model": "dk_yolov2_voc_448_448_34G", "gops": 34, "fps_1t": 27.9, "fps_mt": 57.2},
    {"model": "dk_yolov3_voc_416_416_65.42G", "gops": 65.42, "fps_1t": 13.4, "fps_mt": 26.9},
    {"model": "cf_openpose_aichallenger_368_368_0.3_189.7G (pose)", "gops": 189.7, "fps_1t": 4.0, "fps_mt": 11.0},
]


def _short(why: str) -> str:
    """The gist of a refusal: the parts that cannot be dataflow, or what the slowest folding needs."""
    if "cannot be dataflow" in why:
        return "no: " + why[why.index("no all-dataflow design:") + len("no all-dataflow design: "):].split(";")[0]
    return "no: " + why.split(": ", 1)[-1][:90]


def markdown(res: dict) -> str:
    tops = sum(v or 0 for v in res["ops_per_frame"].values())
    lines = [f"Whole {res['model']}: {tops / 1e9:.1f} G ops a frame on the hardware (a MAC = 2 ops, binary and "
             "fixed-point; the hand parts counted twice), one device each, the design `--arch auto` chooses. *host*: "
             "the host part (compile/host/a53.py, the A53 model, on the board's CPU named in its device file, one "
             "core), added to the frame time: *fps* = 1 / (hardware + host). *no mesh*: the same without the "
             "SMPL-X mesh (the model's SMPL-X parameters only); *overlapped*: the host part of one frame overlapped "
             "with the hardware of the next (1 / max(hardware, host)). Estimates from the toolkit's models, not "
             "board measurements.", "",
             "| device | board | design | fps | latency (ms) | host ms (share) | fps, no mesh | fps, overlapped | "
             "LUT | BRAM18 | DSP | DRAM MB/frame (GB/s needed / board) | engine roofline (port / board) | "
             "all-engine fps | "
             "dataflow only |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        a, e = r["auto"], r["engine"]
        df = "yes" if r.get("dataflow") == "fits" else _short(r.get("dataflow", ""))
        if not a.get("fits"):
            lines.append(f"| {r['device']} | {r['board']} | - | - | | | | | | | | | | | "
                         f"no design fits: {a['why'].split(': ', 1)[-1][:100]} |")
            continue
        kinds = sorted(set(a["assign"].values()))
        design = ("hybrid: " + ", ".join(k for k, v in a["assign"].items() if v == "dataflow") + " as dataflow"
                  if len(kinds) > 1 else kinds[0]) + f" ({a['engine'] or ''})"
        rf, rfb = a["roofline_fraction"], a.get("roofline_fraction_board") or 0.0
        u = a["utilisation"]
        lines.append(
            f"| {r['device']} | {r['board']} | {design} | **{a['fps']:.2f}** | {a['latency_ms']:.1f} | "
            f"{r['host_ms']:.1f} ({a['host_share']:.0%}) | {a['fps_without_smplx']:.2f} | "
            f"{a['fps_host_overlapped']:.2f} | {a['resources']['lut']:,} ({u.get('lut', 0):.0%}) | "
            f"{a['resources']['bram18']:,} ({u.get('bram18', 0):.0%}) | {a['resources']['dsp']:,} ({u.get('dsp', 0):.0%}) | "
            f"{a['dram_mb']:.1f} ({a['dram_gbps_needed']:.2f} / {r['dram_gbps']:g}) | "
            f"{'-' if rf is None else f'{rf:.0%} / {rfb:.0%}'} | "
            + (f"{e['fps']:.2f}" if e.get("fits") else "no") + f" | {df} |")
    if DPU_ZCU104:
        lines += ["", "Published Vitis AI DPU figures on the ZCU104 (the vendor's INT8 overlay, two B4096 at 300 MHz, "
                  f"end to end, Vitis AI 2.0; {DPU_SOURCE}):", "",
                  "| network | G ops a frame | fps (1 thread) | fps (multi-thread) |", "|---|---|---|---|"]
        lines += [f"| {d['model']} | {d['gops']} | {d['fps_1t']} | {d['fps_mt']} |" for d in DPU_ZCU104]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="binaryhpe")
    ap.add_argument("--cache", default="/tmp/bhpe_whole")
    ap.add_argument("--devices", default=",".join(ORDER))
    ap.add_argument("--no-check", action="store_true", help="skip the qonnx-vs-PyTorch check of each exported part")
    ap.add_argument("--markdown")
    ap.add_argument("--json")
    ap.add_argument("--from-json")
    a = ap.parse_args(argv)
    if a.from_json:
        res = json.loads(pathlib.Path(a.from_json).read_text())
    else:
        t = time.time()
        res = run(a.model, pathlib.Path(a.cache) / a.model, a.devices.split(","), not a.no_check)
        res["wall_s"] = round(time.time() - t, 1)
        if a.json:
            pathlib.Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    md = markdown(res)
    print(md)
    if a.markdown:
        pathlib.Path(a.markdown).write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
