"""The default tiny BiDRN through ``binaryhpe build --backend hls4ml --sim``: hls4ml's bit-accurate C
simulation (g++) equals our integer reference on every output and every traced layer, and the project and
report carry what the contract promises. About 2-3 minutes of g++ on 2 cores."""

from __future__ import annotations

import json
import pathlib

from binaryhpe.compile.flow import build_backend


def test_tiny_bidrn_hls4ml_csim_is_bit_exact(tiny_qonnx, tmp_path):
    out = tmp_path / "out"
    rep = build_backend(str(tiny_qonnx), out, "hls4ml", sim=True, seed=0)
    assert rep["backend"] == "hls4ml" and rep["bit_exact"] is True
    assert rep["mismatches"] == 0 and rep["compared_elements"] >= 12_288
    assert rep["traced_mismatches"] == 0 and rep["traced_elements"] > 100 * rep["compared_elements"]
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["backend"] == "hls4ml" and on_disk["bit_exact"] is True
    proj = pathlib.Path(rep["project"])
    assert proj.is_dir() and str(proj).startswith(str(out / "hls4ml"))
    assert any(proj.rglob("*.cpp")) and any(proj.rglob("*.tcl"))
    # every layer of our graph that computes is accounted for in the hls4ml model, with its precision
    assert len(rep["layers"]) > 50 and all(r.get("precision") for r in rep["layers"])
