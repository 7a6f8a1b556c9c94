"""The tutorial notebook (notebooks/tutorial.ipynb) runs from top to bottom and shows what it claims.

``test_tutorial_executes`` runs a fresh copy with nbclient in a temporary folder (about three minutes on an idle
2-core machine: the Verilator build of the tiny BiDRN and an ECP5 place and route of one layer are most of it)
and checks its figures against independent facts: the simulation verdict, the measured frame interval equal to
the cycle model's, the estimated fps equal to clock / cycles for a compute-bound design, an ECP5 bitstream on
disk with the ECP5 preamble, and the pictures. The other tests check the committed, executed notebook.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import xml.etree.ElementTree as ET

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks" / "tutorial.ipynb"


def _images(nb) -> list[tuple[str, str]]:
    out = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            for mime in ("image/png", "image/svg+xml"):
                if mime in o.get("data", {}):
                    out.append((mime, o["data"][mime]))
    return out


def _text(nb) -> str:
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            parts.append(o.get("text", "") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain", ""))
    return "".join(p if isinstance(p, str) else "".join(p) for p in parts)


def _check_images(nb) -> None:
    imgs = _images(nb)
    # training loss curve (png), roofline, resource breakdown at the default folding and device-aware (svg)
    assert sum(m == "image/png" for m, _ in imgs) >= 1
    svgs = [d for m, d in imgs if m == "image/svg+xml"]
    assert len(svgs) >= 3
    for s in svgs:
        root = ET.fromstring(s if isinstance(s, str) else "".join(s))
        assert root.tag.endswith("svg") and len(list(root.iter())) > 20


def test_committed_notebook_is_current_and_executed():
    spec = importlib.util.spec_from_file_location("make_tutorial", ROOT / "notebooks" / "make_tutorial.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    nb = nbformat.read(NB, as_version=4)
    want = [src for _, src in mk.CELLS]
    assert [c.source for c in nb.cells] == want, "notebooks/tutorial.ipynb is stale: run notebooks/make_tutorial.py --execute"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("outputs") for c in code[1:]), "every cell after the imports keeps its output"
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
    text = _text(nb)
    assert "bit-exact: True" in text and "0 mismatching elements" in text
    assert "nextpnr fmax" in text and ".bit" in text
    _check_images(nb)


def test_tutorial_executes(tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(NB, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    s = json.loads((tmp_path / "tutorial_out" / "summary.json").read_text())
    assert s["train_steps"] == 40 and s["loss_after"] < s["loss_before"]
    assert s["export_mismatches"] == 0
    assert s["bit_exact"] is True
    # Verilator's measured frame interval equals the compiler's cycle model
    assert s["cycles_per_frame"] == s["predicted_cycles_per_frame"] > 0
    # a compute-bound design runs at clock / cycles per frame
    assert s["bound"] == "compute"
    assert abs(s["fps"] - s["clock_mhz"] * 1e6 / s["predicted_cycles_per_frame"]) < 1e-6 * s["fps"]
    # device-aware folding, as fast as fits: fits, and runs at clock / its slowest layer's cycles
    for name, f in s["device_folded"].items():
        assert f["fits"] is True, name
        if f["bound"] == "compute":
            assert abs(f["fps"] - f["clock_mhz"] * 1e6 / f["ii_cycles"]) < 1e-6 * f["fps"], name
    # the default folding fits the Zynq-7020, so the fastest that fits is at least as fast (binary-search slack 5%)
    assert s["device_folded"]["zynq-7020"]["fps"] >= 0.95 * s["fps"]
    bit = tmp_path / s["bitstream"]
    data = bit.read_bytes()
    assert bit.suffix == ".bit" and len(data) > 10_000 and b"\xff\xff\xbd\xb3" in data[:64]  # ECP5 preamble
    assert 5 < s["fmax_mhz"] < 500
    report = json.loads((tmp_path / "tutorial_out" / "report.json").read_text())
    assert report["device"]["name"] == "zynq-7020" and report["bit_exact"] is True
    assert "<svg" in (tmp_path / "tutorial_out" / "report.html").read_text()
    # section 7: a user's Brevitas network with stock quantizers, its float head on the host, bit-exact end to end
    byo = json.loads((tmp_path / "tutorial_out" / "mynet" / "report.json").read_text())
    assert s["byo_bit_exact"] is True and byo["bit_exact"] is True
    assert byo["simulation"]["whole_graph"]["frames_checked"] > 0
    assert s["byo_host_nodes"] == byo["host_nodes"] and byo["host_nodes"][-1] == "node_linear"
    assert "MultiThreshold" in s["byo_epilogue_ops"]  # 4-bit ReLU outputs: BN + ReLU + quantizer as thresholds
    _check_images(nb)
    assert "bit-exact: True" in _text(nb)
