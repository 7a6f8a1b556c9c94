"""Bring your own Brevitas network: the networks of docs/byo-brevitas.md built and simulated from the command line.

    python benchmarks/byo_brevitas.py [--nets mlp,vgg,...] [--out /tmp/bhpe_byo] [--device ecp5-85f]
                                      [--markdown FILE]

For each network (``tests/user_brevitas_models.py``: three networks written with Brevitas' stock quantizers and
Brevitas' published BNN-PYNQ examples, untrained, seeded, random BatchNorm statistics) it exports QONNX with
``brevitas.export.export_qonnx``, runs ``binaryhpe build FILE.onnx -o OUT --sim --device DEV`` as a subprocess
(the command a user types) and prints one table row from OUT/report.json: the host nodes, the hardware layer
kinds, the float-scaled epilogue kinds the compiler chose, the cycles per frame measured in Verilator and by the
cycle model, the resource estimate and whether the whole graph (host part included) was bit-exact on every
simulated frame. CI runs the same builds one network per test (tests/test_user_brevitas.py).
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import user_brevitas_models as U  # noqa: E402

NETS = ["mlp", "vgg", "resnet", "tfc_1w1a", "tfc_2w2a", "cnv_1w1a", "cnv_2w2a"]
#: layer kinds that carry no arithmetic (the stream plumbing)
PLUMBING = {"Fifo", "Fork", "Dwc", "SlidingWindow"}


def export(name: str, out: pathlib.Path) -> pathlib.Path:
    if name in U.BNN_PYNQ:
        model, shape = U.bnn_pynq(name), U.BNN_PYNQ[name]
    else:
        model, shape = U.build_user(name), U.INPUT_SHAPES[name]
    path = out / f"{name}.onnx"
    U.export(model, shape, path)
    return path


def row(name: str, rep: dict, wall: float) -> dict:
    kinds = collections.Counter(layer["kind"] for layer in rep["layers"] if layer["kind"] not in PLUMBING)
    res = rep.get("resources") or {}
    sim = rep.get("simulation") or {}
    whole = sim.get("whole_graph") or {}
    return {
        "network": name,
        "host_nodes": rep.get("host_nodes", []),
        "kinds": dict(sorted(kinds.items())),
        "cycles_per_frame": rep.get("cycles_per_frame"),
        "predicted_cycles_per_frame": rep.get("predicted_cycles_per_frame"),
        "lut": res.get("lut"),
        "bram18": res.get("bram18"),
        "dsp": res.get("dsp"),
        "frames": sim.get("frames"),
        "whole_graph_frames": whole.get("frames_checked", 0),
        "bit_exact": rep.get("bit_exact"),
        "wall_s": round(wall, 1),
    }


def markdown(rows: list[dict], device: str) -> str:
    lines = [f"| network | host nodes | hardware kinds (without plumbing) | cycles/frame (RTL / model) | "
             f"LUT / BRAM18 / DSP ({device}, estimate) | frames (whole graph) | bit-exact | build s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        host = ", ".join(r["host_nodes"]) or "none"
        kinds = ", ".join(f"{k} x{v}" for k, v in r["kinds"].items())
        cyc = f"{r['cycles_per_frame']:,} / {r['predicted_cycles_per_frame']:,}" if r["cycles_per_frame"] else "-"
        res = f"{r['lut']:,} / {r['bram18']} / {r['dsp']}" if r["lut"] is not None else "-"
        lines.append(f"| {r['network']} | {host} | {kinds} | {cyc} | {res} | {r['frames']} ({r['whole_graph_frames']})"
                     f" | {r['bit_exact']} | {r['wall_s']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", default=",".join(NETS))
    ap.add_argument("--out", default="/tmp/bhpe_byo")
    ap.add_argument("--device", default="ecp5-85f")
    ap.add_argument("--markdown", default=None, help="also write the table to this file")
    a = ap.parse_args(argv)
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, failed = [], []
    for name in a.nets.split(","):
        t = time.time()
        path = export(name, out)
        cmd = [str(ROOT / ".venv" / "bin" / "binaryhpe"), "build", str(path), "-o", str(out / name), "--sim",
               "--device", a.device]
        print("$", " ".join(cmd), flush=True)
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.time() - t
        if p.returncode != 0:
            print(p.stdout[-2000:], p.stderr[-2000:], flush=True)
            failed.append(name)
            continue
        rows.append(row(name, json.loads((out / name / "report.json").read_text()), wall))
        print(json.dumps(rows[-1]), flush=True)
    table = markdown(rows, a.device)
    print(table)
    if a.markdown:
        pathlib.Path(a.markdown).write_text(table + "\n")
    if failed:
        print("FAILED:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
