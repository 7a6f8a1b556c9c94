"""Open ECP5 flow: Yosys + nextpnr-ecp5 + ecppack produce a real bitstream of a small design (~1 min)."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from binaryhpe import BinaryHPEError
from binaryhpe.compile.bitstream import parse_nextpnr_report, part_options
from binaryhpe.compile.devices import load_device
from binaryhpe.compile.flow import apply_device_options
from example_graphs import example_graph
from binaryhpe.compile.rtlgen import generate, rtl_library


def test_part_options():
    assert part_options(load_device("ecp5-25f")) == ("--25k", "CABGA381", "6")
    assert part_options(load_device("ecp5-85f")) == ("--85k", "CABGA756", "8")
    with pytest.raises(BinaryHPEError, match="ECP5"):
        part_options(load_device("zynq-7020"))


def test_parse_nextpnr_report_takes_the_slowest_clock():
    rep = {"fmax": {"a": {"achieved": 120.5, "constraint": 100.0}, "b": {"achieved": 88.123, "constraint": 50.0}},
           "utilization": {"TRELLIS_COMB": {"used": 10, "available": 24288}, "DP16KD": {"used": 0, "available": 56}}}
    p = parse_nextpnr_report(rep)
    assert p["fmax_mhz"] == 88.12 and p["utilisation"] == {"TRELLIS_COMB": {"used": 10, "available": 24288}}


def test_ecp5_bitstream_of_a_small_design(tmp_path):
    g = example_graph()
    out = tmp_path / "out"
    rtl = out / "rtl"
    generate(g, rtl)
    (rtl / "lib").mkdir()
    for f in rtl_library():
        shutil.copyfile(f, rtl / "lib" / f.name)
    rep = apply_device_options({"model": "example"}, g, out, device="ecp5-25f", bitstream=True)
    bit = pathlib.Path(rep["bitstream"])
    data = bit.read_bytes()
    assert bit.suffix == ".bit" and len(data) > 10_000
    assert b"\xff\xff\xbd\xb3" in data[:64]  # ECP5 preamble
    assert rep["fmax_mhz"] is not None and 5 < rep["fmax_mhz"] < 500
    util = rep["pnr"]["utilisation"]
    assert 0 < util["TRELLIS_COMB"]["used"] <= util["TRELLIS_COMB"]["available"] == 24288
    assert util["TRELLIS_FF"]["used"] >= rep["synth"]["ff"] > 0
    assert set(rep["synth"]) >= {"lut", "ff", "bram18", "dsp"}
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["bitstream"] == str(bit) and on_disk["fmax_mhz"] == rep["fmax_mhz"]
    assert "fmax" in (out / "report.md").read_text()
    # the placed design's rate: the compute-bound estimate at min(fmax, device clock)
    clk = min(rep["fmax_mhz"], rep["pnr"]["clock_mhz"])
    assert rep["timing_met"] == (rep["fmax_mhz"] >= rep["pnr"]["clock_mhz"])
    assert abs(rep["fps_at_fmax"] - min(rep["estimate"]["fps_compute"] * clk / rep["pnr"]["clock_mhz"],
                                        rep["estimate"]["fps_memory"])) < 1e-6 * rep["fps_at_fmax"]
    assert on_disk["fps_at_fmax"] == rep["fps_at_fmax"] and "fps at fmax" in (out / "report.md").read_text()
