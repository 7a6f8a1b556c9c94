"""The engine's hardware outputs: its source list and parameter wrapper, the resource model against Yosys on the
real RTL, the Vivado IP script, nextpnr's critical-path summary.

The model (compile/engine/resources.py) is an estimate: the array units linear in PE and 8*PEF, fitted to Yosys
runs of each unit alone, the rest of the engine a constant from one flattened run of the whole engine; BRAM18
counted from the buffers' shapes. Here: the block count against Yosys, and the MAC array at a size it was not
fitted to (LUT/FF within the stated tolerance, DSP exact). The whole engine at full size against the model is
benchmarks/engine_ecp5.py (a whole-engine synthesis takes tens of minutes, too long for CI).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace

import pytest

from binaryhpe import BinaryHPEError
from binaryhpe.compile.engine import resources as R
from binaryhpe.compile.engine import synth as ES
from binaryhpe.compile.engine.config import EngineConfig
from binaryhpe.sim.toolchain import rtl_dir, setup_verilator

#: a configuration smaller than the default
SMALL = replace(EngineConfig(), pe=8, pef=2, lb_depth=2048, wb_depth=512, cb_depth=256, bb_depth=512,
                ob_depth=1024)
#: the model's stated accuracy against Yosys (LUT, FF) at a unit size it was not fitted to; DSP and BRAM18 exact
LUT_TOL, FF_TOL = 0.15, 0.15


def test_engine_sources_are_the_engine_and_what_it_instantiates():
    srcs = ES.engine_sources()
    names = [f.name for f in srcs]
    engine = sorted(f.name for f in (rtl_dir() / "engine").glob("*.sv"))
    assert set(engine) <= set(names)
    # packages first, then the library modules the engine instantiates, and nothing it does not use
    assert names[:2] == sorted(n for n in names if n.endswith("_pkg.sv"))
    lib = [n for n in names if n not in engine]
    text = "".join(f.read_text() for f in srcs)
    for n in lib:
        stem = n[:-3]
        assert stem == "bhpe_pkg" or re.search(rf"^\s*{stem}\s*(#|u_)", text, re.M), f"{n} is listed but unused"
    for m in re.findall(r"^\s*(bhpe_\w+)\s*(?:#|u_\w+\s*\()", text, re.M):
        assert f"{m}.sv" in names, f"{m} is instantiated but not listed"


def test_wrapper_ports_and_lint(tmp_path):
    cfg = EngineConfig()
    ports = ES.engine_ports(cfg.rtl_params())
    by_name = {n: (d, w) for d, w, n in ports}
    assert by_name["m_axi_araddr"] == ("output", cfg.addr_w) and by_name["m_axi_rdata"] == ("input", 64)
    assert by_name["s_axil_awaddr"] == ("input", 8) and by_name["clk_i"] == ("input", 1)
    full = ES.engine_wrapper(cfg, "w_all", "all")
    pins = ES.engine_wrapper(cfg, "w_ecp5", "ecp5")
    assert all(f".{n}({n})" in full for n in by_name)
    assert f".PE({cfg.pe})" in full and f".WbDepth({cfg.wb_depth})" in full
    # the ECP5 wrapper fits the 365 user I/Os of an LFE5U-85F in CABGA756
    decl = re.findall(r"^\s*(input|output)\s+logic\s*(?:\[(\d+):0\])?\s*(\w+)", pins, re.M)
    bits = sum(int(w) + 1 if w else 1 for _, w, _ in decl)
    assert bits <= 365 < sum(w for _, w, _ in ports)
    assert ".dbg_layer_o()" in pins and "output logic [31:0] m_axi_araddr" in pins
    setup_verilator()
    (tmp_path / "w_all.sv").write_text(full)
    r = subprocess.run(["verilator", "--lint-only", "-Wall", f"-I{rtl_dir()}",
                        "--top-module", "w_all", str(tmp_path / "w_all.sv"), *map(str, ES.engine_sources())],
                       capture_output=True, text=True)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]


def test_engine_sources_build_from_a_flat_copy(tmp_path):
    # Vivado's src/ and synth's rtl/lib/ hold the files flat: an engine file includes its package and the engine
    # modules it instantiates by their path under hw/rtl (engine/...), which a flat folder lacks; in the order of
    # engine_sources every such include is skipped (its guard is already defined), so the flat copy builds
    setup_verilator()
    srcs = ES.engine_sources()
    for f in srcs:
        (tmp_path / f.name).write_text(f.read_text())

    def lint(names):
        return subprocess.run(["verilator", "--lint-only", "-Wall", f"-I{tmp_path}", "--top-module", "bhpe_engine",
                               *names], capture_output=True, text=True, cwd=tmp_path)

    r = lint([f.name for f in srcs])
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    # the order matters: the top level first reaches the includes, which the flat folder cannot resolve
    r = lint(["bhpe_eng_pkg.sv", "bhpe_pkg.sv", "bhpe_engine.sv"] + [f.name for f in srcs if "pkg" not in f.name
                                                                     and f.name != "bhpe_engine.sv"])
    assert r.returncode != 0 and "engine/bhpe_eng" in r.stdout + r.stderr


@pytest.mark.parametrize("depth", [4096, 1024])
def test_buffer_block_count_matches_yosys(tmp_path, depth):
    # the one part of the model that is counted, not fitted: a 64-bit buffer RAM (byte enables live, as the
    # output buffer's) on ECP5 block RAM
    from binaryhpe.compile.engine.resources import block_bram18 as _bram18
    from binaryhpe.compile.synth import run_yosys

    srcs = [rtl_dir() / "bhpe_pkg.sv", rtl_dir() / "engine" / "bhpe_eng_ram.sv"]
    r = run_yosys(srcs, "bhpe_eng_ram", "ecp5", tmp_path, read_opts=f"-G Width=64 -G Depth={depth}")
    assert r["bram18"] == _bram18(64, depth) == depth // 256, r


def test_model_shape():
    small, big = R.engine_resources(SMALL, "ecp5"), R.engine_resources(EngineConfig(), "ecp5")
    assert all(big[k] > small[k] > 0 for k in ("lut", "ff", "bram18", "dsp"))
    assert big["bram18"] == sum(b["bram18"] for b in big["buffers"].values()) == EngineConfig().buffer_bram18()
    assert sum(u["lut"] for u in big["units"].values()) == big["lut"]
    x = R.engine_resources(EngineConfig(), "zu3eg")
    assert x["family"] == "xilinx" and ("calibrated" in x)
    with pytest.raises(BinaryHPEError):
        R.unit_resources("mac", 8, 2, "nope")


@pytest.mark.parametrize("family", ["ecp5", "xilinx"])
def test_mac_array_model_at_a_size_it_was_not_fitted_to(tmp_path, family):
    # the MAC array is linear in PE and 8*PEF, fitted at (PE, PEF) = (8, 1), (8, 4), (16, 4): check (8, 2)
    from binaryhpe.compile.synth import run_yosys

    assert (8, 2) not in R.UNIT_POINTS["mac"]
    est = R.unit_resources("mac", 8, 2, family)
    got = run_yosys(ES.engine_sources(), "bhpe_eng_mac_array", family, tmp_path, read_opts="-G Pe=8 -G Pef=2")
    assert got["dsp"] == est["dsp"] == 16, (got, est)
    assert abs(est["lut"] - got["lut"]) <= LUT_TOL * got["lut"], (est["lut"], got["lut"])
    assert abs(est["ff"] - got["ff"]) <= FF_TOL * got["ff"], (est["ff"], got["ff"])


def test_vivado_engine_ip_script(tmp_path):
    from binaryhpe.compile.vivado import write_engine_ip_project

    cfg = EngineConfig.for_device("zu3eg")
    m = write_engine_ip_project(tmp_path / "viv", "zu3eg", cfg)
    tcl = (tmp_path / "viv" / "project.tcl").read_text()
    assert "create_project -force bhpe_engine $proj_dir -part $part" in tcl and "set part xczu3eg-sbva484-1-i" in tcl
    # every RTL file of the engine is copied and added
    for f in ES.engine_sources():
        assert (tmp_path / "viv" / "src" / f.name).read_text() == f.read_text()
        assert re.search(rf"foreach f {{[^}}]*\b{re.escape(f.name)}\b", tcl), f.name
    assert set(m["files"]) == {f"src/{f.name}" for f in ES.engine_sources()} | {"constraints.xdc"}
    # the two bus interfaces, each port of the engine with its prefix mapped to its AXI name
    ports = [n for _, _, n in ES.engine_ports(cfg.rtl_params())]
    for busif, mode in (("m_axi", "master"), ("s_axil", "slave")):
        assert f"set bi [ipx::add_bus_interface {busif} $core]" in tcl
        blk = tcl.split(f"ipx::add_bus_interface {busif} $core]")[1].split("ipx::add_bus_interface")[0]
        assert f"set_property interface_mode {mode} $bi" in blk and "aximm_rtl:1.0" in blk
        mine = [n for n in ports if n.startswith(busif + "_")]
        assert len(mine) == {"m_axi": 29, "s_axil": 17}[busif]
        for n in mine:
            assert f"set_property physical_name {n} [ipx::add_port_map {n[len(busif) + 1:].upper()} $bi]" in blk
        assert f"ipx::associate_bus_interfaces -busif {busif} -clock clk $core" in tcl
    assert "set_property physical_name clk_i [ipx::add_port_map CLK $bi]" in tcl
    assert "set_property value ACTIVE_LOW [ipx::add_bus_parameter POLARITY $bi]" in tcl
    assert f"PE={cfg.pe} PEF={cfg.pef}" in tcl
    assert "create_clock -period 5.000 -name clk [get_ports clk_i]" in (tmp_path / "viv" / "constraints.xdc").read_text()
    with pytest.raises(BinaryHPEError, match="Xilinx"):
        write_engine_ip_project(tmp_path / "e", "ecp5-85f")


NEXTPNR_LOG = """Info: Critical path report for clock 'clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.40  0.40 Source u_engine.u_a.q_TRELLIS_FF_Q.Q
Info:    routing  1.00  1.40 Net u_engine.u_a.q (1,1) -> (2,2)
Info:                          Sink u_engine.u_b.x_CCU2C.A0
Info:                          Defined in:
Info:                               _src/bhpe_eng_a.sv:29.16
Info:      logic  3.00  4.40 Source u_engine.u_b.x_CCU2C.S0
Info:    routing  2.00  6.40 Net u_engine.u_b.s (2,2) -> (3,3)
Info:                          Sink u_engine.u_c.y_TRELLIS_FF_Q.DI
Info:                          Defined in:
Info:                               _src/bhpe_eng_b.sv:298.49-298.85
Info:                               /share/lattice/arith_map_ccu2c.v:74.7-80.4
Info: 3.40 ns logic, 3.00 ns routing

Warning: Max frequency for clock 'clk': 156.25 MHz (PASS at 100.00 MHz)
"""


def test_critical_path_summary():
    p = ES.critical_path(NEXTPNR_LOG)
    assert p["fmax_mhz"] == 156.25 and p["delay_ns"] == 6.4
    assert p["sources"] == ["bhpe_eng_a.sv:29", "bhpe_eng_b.sv:298"]
    assert p["from"] == "u_engine.u_a.q_TRELLIS_FF_Q.Q" and p["to"] == "u_engine.u_c.y_TRELLIS_FF_Q.DI"
