"""Open ECP5 flow: Yosys + nextpnr-ecp5 + ecppack produce a real bitstream of a small design (~1 min)."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from binaryhpe import BinaryHPEError
from binaryhpe.compile.bitstream import (nextpnr_router, nextpnr_router_args, parse_nextpnr_report, part_options,
                                         report_critical_path, timing_summary)
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


def _step(kind, delay, frm, to, net=None):
    return {"type": kind, "delay": delay, "from": {"cell": frm, "port": "Q"}, "to": {"cell": to, "port": "DI"},
            "net": net}


def test_critical_path_of_the_slowest_clock_with_its_logic_routing_split():
    # two clocks: the path of the slower one ("b") is the critical path; clock-to-out, cells and setup are
    # logic, the wires routing
    slow = [_step("clk-to-q", 0.4, "u.a_q", "u.a_q"), _step("routing", 1.5, "u.a_q", "u.lut", "u.a"),
            _step("logic", 3.0, "u.mul", "u.mul"), _step("routing", 2.0, "u.mul", "u.s.sum_q", "u.p"),
            _step("setup", 0.1, "u.s.sum_q", "u.s.sum_q")]
    fast = [_step("clk-to-q", 0.4, "v.x", "v.x"), _step("routing", 0.5, "v.x", "v.y", "v.n")]
    rep = {"fmax": {"posedge a": {"achieved": 150.0, "constraint": 100}, "posedge b": {"achieved": 142.0,
                                                                                       "constraint": 100}},
           "critical_paths": [{"from": "posedge a", "to": "posedge a", "path": fast},
                              {"from": "posedge b", "to": "posedge b", "path": slow}]}
    cp = report_critical_path(rep)
    assert cp["from_cell"] == "u.a_q" and cp["to_cell"] == "u.s.sum_q"
    assert cp["from_net"] == "u.a" and cp["to_net"] == "u.p" and cp["steps"] == 5
    assert cp["routing_ns"] == 3.5 and cp["logic_ns"] == 3.5 and cp["setup_ns"] == 0.1 and cp["delay_ns"] == 7.0
    assert cp["modules"] == ["u", "u.s"]
    t = timing_summary(rep)
    assert t["fmax_mhz"] == 142.0 and t["constraint_mhz"] == 100 and t["critical_path"] == cp
    assert report_critical_path({"fmax": {}}) is None and timing_summary({})["critical_path"] is None


def test_nextpnr_router_choice(monkeypatch):
    monkeypatch.delenv("BINARYHPE_NEXTPNR_ROUTER", raising=False)
    assert nextpnr_router() == "router2" and nextpnr_router("router1") == "router1"
    monkeypatch.setenv("BINARYHPE_NEXTPNR_ROUTER", "router1")
    assert nextpnr_router() == "router1" and nextpnr_router("router2") == "router2"
    monkeypatch.setenv("BINARYHPE_NEXTPNR_ROUTER", "router9")
    with pytest.raises(BinaryHPEError, match="router9"):
        nextpnr_router()
    # router2 routes with its timing-driven rip-up (it closed the tiny BiDRN at 100 MHz), router1 without
    assert nextpnr_router_args("router2") == ["--router", "router2", "--tmg-ripup"]
    assert nextpnr_router_args("router1") == ["--router", "router1"]


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
    # the timing key: fmax and the critical path between two cells of the design, its delay = 1000 / fmax
    t = on_disk["timing"]
    assert t["fmax_mhz"] == rep["fmax_mhz"] and t["constraint_mhz"] == 100
    cp = t["critical_path"]
    assert cp["from_cell"] and cp["to_cell"] and cp["logic_ns"] > 0 and cp["routing_ns"] > 0
    assert abs(cp["delay_ns"] - 1000 / rep["fmax_mhz"]) < 0.05 * cp["delay_ns"]
    assert any(src.startswith("bhpe_") for src in cp["sources"]) and "critical path" in (out / "report.md").read_text()
    # the placed design's rate: the compute-bound estimate at min(fmax, device clock)
    clk = min(rep["fmax_mhz"], rep["pnr"]["clock_mhz"])
    assert rep["timing_met"] == (rep["fmax_mhz"] >= rep["pnr"]["clock_mhz"])
    assert abs(rep["fps_at_fmax"] - min(rep["estimate"]["fps_compute"] * clk / rep["pnr"]["clock_mhz"],
                                        rep["estimate"]["fps_memory"])) < 1e-6 * rep["fps_at_fmax"]
    assert on_disk["fps_at_fmax"] == rep["fps_at_fmax"] and "fps at fmax" in (out / "report.md").read_text()
