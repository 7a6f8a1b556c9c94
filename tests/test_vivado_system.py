"""The engine in a Zynq system (compile/vivado.py write_engine_system_project / engine_system_project).

Vivado is not installed here, so the script is checked two independent ways: by its text (the PS IP, its
configuration, the connections, the clock and the constraint period, the engine's sources), and by running it in
tclsh with the Vivado commands replaced by stubs that record their arguments: the block design's connections are
then read from what the script really calls (through its variables, control flow and the sourced IP script), and
checked as a graph (engine m_axi reaches the HP port through a SmartConnect, the GP master reaches s_axil, done_o
drives the PS interrupt, one clock everywhere). The second way needs tclsh (Debian package tcl, installed by
`.ci/setup`); without it the tests fail rather than skip.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from binaryhpe import BinaryHPEError
from binaryhpe.compile.devices import load_device
from binaryhpe.compile.engine import synth as ES
from binaryhpe.compile.engine.config import EngineConfig
from binaryhpe.compile.vivado import engine_system_project, write_engine_system_project

ZYNQ = {  # device -> (PS IP, PS cell, HP port, GP master, interrupt, PL clock, HP enable flag, clock flag)
    "zynq-7020": ("processing_system7", "ps7", "S_AXI_HP0", "M_AXI_GP0", "IRQ_F2P", "FCLK_CLK0",
                  "PCW_USE_S_AXI_HP0", "PCW_FPGA0_PERIPHERAL_FREQMHZ"),
    "zu3eg": ("zynq_ultra_ps_e", "ps8", "S_AXI_HP0_FPD", "M_AXI_HPM0_FPD", "pl_ps_irq0", "pl_clk0",
              "PSU__USE__S_AXI_GP2", "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"),
    "zu7ev": ("zynq_ultra_ps_e", "ps8", "S_AXI_HP0_FPD", "M_AXI_HPM0_FPD", "pl_ps_irq0", "pl_clk0",
              "PSU__USE__S_AXI_GP2", "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"),
}


@pytest.mark.parametrize("dev", sorted(ZYNQ))
def test_system_tcl_text(tmp_path, dev):
    ip, cell, hp, gp, irq, clk, hp_flag, clk_flag = ZYNQ[dev]
    d = load_device(dev)
    cfg = EngineConfig.for_device(d)
    r = engine_system_project(tmp_path / "sys", dev, cfg)
    assert r["path"] == str(tmp_path / "sys")
    assert "\n" not in r["note"] and "not run" in r["note"] and r["tcl"] in r["note"]
    tcl = (tmp_path / "sys" / "system.tcl").read_text()
    assert f"create_project -force bhpe_system $sys_dir/project -part {d.part}" in tcl
    assert f"create_bd_cell -type ip -vlnv xilinx.com:ip:{ip} {cell}]" in tcl
    other = {"processing_system7", "zynq_ultra_ps_e"} - {ip}
    assert not any(f"xilinx.com:ip:{o}" in tcl for o in other)
    # the PS configuration: HP port on, clock at the device's clock
    cfg_line = [ln for ln in tcl.splitlines() if ln.startswith("set_property -dict") and f"CONFIG.{hp_flag}" in ln]
    assert len(cfg_line) == 1, cfg_line
    assert f"CONFIG.{hp_flag} {{1}}" in cfg_line[0]
    assert f"CONFIG.{clk_flag} {{{d.clock_mhz:g}}}" in cfg_line[0]
    # the connections
    assert "connect_bd_intf_net [get_bd_intf_pins engine/m_axi] [get_bd_intf_pins smc_mem/S00_AXI]" in tcl
    assert f"connect_bd_intf_net [get_bd_intf_pins smc_mem/M00_AXI] [get_bd_intf_pins {cell}/{hp}]" in tcl
    assert f"connect_bd_intf_net [get_bd_intf_pins {cell}/{gp}] [get_bd_intf_pins smc_ctrl/S00_AXI]" in tcl
    assert "connect_bd_intf_net [get_bd_intf_pins smc_ctrl/M00_AXI] [get_bd_intf_pins engine/s_axil]" in tcl
    assert f"connect_bd_net [get_bd_pins engine/done_o] [get_bd_pins {cell}/{irq}]" in tcl
    assert f"connect_bd_net [get_bd_pins {cell}/{clk}] [get_bd_pins engine/clk_i]" in tcl
    for step in ("validate_bd_design", "make_wrapper -files $sys_bd -top", "launch_runs synth_1",
                 "launch_runs impl_1 -to_step write_bitstream"):
        assert step in tcl, step
    # the runs only with a step
    runs = tcl.index("launch_runs synth_1")
    assert tcl.rfind("if {$sys_step in {synth impl bitstream}}", 0, runs) > tcl.index("validate_bd_design")
    # the constraint: the PL clock at 1000 / clock_MHz ns
    xdc = (tmp_path / "sys" / "system.xdc").read_text()
    m = re.search(r"create_clock -period ([\d.]+) ", xdc)
    assert m and float(m.group(1)) == pytest.approx(1000.0 / d.clock_mhz, abs=5e-4)
    assert "$sys_dir/system.xdc" in tcl
    # the engine IP: every RTL file of the engine copied and listed in its packaging script
    iptcl = (tmp_path / "sys" / "engine_ip" / "project.tcl").read_text()
    listed = re.search(r"foreach f \{([^}]*)\}", iptcl).group(1).split()
    srcs = ES.engine_sources()
    assert sorted(listed) == sorted(f.name for f in srcs)
    # independently of engine_sources: every file of hw/rtl/engine, and the library package it imports
    from binaryhpe.sim.toolchain import rtl_dir

    assert {f.name for f in (rtl_dir() / "engine").glob("*.sv")} <= set(listed)
    assert "bhpe_engine.sv" in listed
    for f in srcs:
        assert (tmp_path / "sys" / "engine_ip" / "src" / f.name).read_text() == f.read_text()
    assert "source $sys_dir/engine_ip/project.tcl" in tcl
    assert f"PE={cfg.pe} PEF={cfg.pef}" in iptcl


@pytest.mark.parametrize("dev", ["ecp5-85f", "ecp5-25f", "alveo-u250"])
def test_non_zynq_refused_in_one_line(tmp_path, dev):
    with pytest.raises(BinaryHPEError) as e:
        engine_system_project(tmp_path / "s", dev)
    msg = str(e.value)
    assert "\n" not in msg and dev in msg and "Zynq" in msg
    assert not (tmp_path / "s" / "system.tcl").exists()


def test_axil_base_outside_the_gp_window_refused(tmp_path):
    with pytest.raises(BinaryHPEError, match="0x80000000"):
        write_engine_system_project(tmp_path / "s", "zynq-7020", axil_base=0x8000_0000)
    with pytest.raises(BinaryHPEError, match="4 KiB"):
        write_engine_system_project(tmp_path / "s", "zu3eg", axil_base=0xA000_0010)
    m = write_engine_system_project(tmp_path / "s", "zu3eg", axil_base=0xA001_0000)
    assert "-offset 0xA0010000 -range 0x1000" in (tmp_path / "s" / "system.tcl").read_text()
    assert m["axil_base"] == 0xA001_0000


# --- the script run in tclsh with recording stubs of the Vivado commands -------------------------------------

STUBS = r"""
set ::calls [list]
proc rec {args} { lappend ::calls $args }
proc unknown {args} { rec {*}$args; return "" }
foreach c {get_bd_pins get_bd_intf_pins get_bd_cells get_bd_addr_spaces get_bd_addr_segs get_files get_runs} {
  proc $c {args} "rec $c {*}\$args; return \[lindex \$args end\]"
}
proc create_bd_cell {args} { rec create_bd_cell {*}$args; return [lindex $args end] }
proc get_board_parts {args} { rec get_board_parts {*}$args; return $::stub_board }
proc get_property {args} {
  rec get_property {*}$args
  if {[lindex $args 0] eq "CONFIG.FREQ_HZ"} { return $::stub_hz }
  if {[lindex $args 0] eq "PROGRESS"} { return "100%" }
  return ""
}
"""


def _run_stubbed(tcl_path, step: str, board: str = "", hz: str = ""):
    """Run ``tcl_path`` in tclsh under the stubs; return (the recorded calls, the script's own output)."""
    drv, rec = tcl_path.parent / "stub_driver.tcl", tcl_path.parent / "stub_calls.txt"
    drv.write_text(STUBS + f"set ::stub_board {{{board}}}\nset ::stub_hz {{{hz}}}\n"
                   f"set argv [list {step}]\nset argc {1 if step else 0}\nsource {{{tcl_path}}}\n"
                   f"set fh [open {{{rec}}} w]\n"
                   "foreach c $::calls { puts -nonewline $fh [join $c \"\\x1f\"]; puts -nonewline $fh \"\\x1e\" }\n"
                   "close $fh\n")
    p = subprocess.run(["tclsh", str(drv)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [c.split("\x1f") for c in rec.read_text().split("\x1e") if c], p.stdout


def _graph(calls):
    """Interface connections and nets from the recorded connect_bd_* calls (the stubs return the object names)."""
    intf = [tuple(c[1:]) for c in calls if c[0] == "connect_bd_intf_net"]
    nets = [c[1:] for c in calls if c[0] == "connect_bd_net"]
    return intf, nets


def _reaches(intf, src, dst):
    """``src`` interface pin connects to ``dst`` through one cell whose S00_AXI / M00_AXI it enters and leaves
    (the SmartConnect), or directly."""
    adj = {}
    for a, b in intf:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    for mid in adj.get(src, ()):
        if mid == dst:
            return "direct"
        cell, port = mid.split("/")
        if port == "S00_AXI" and dst in adj.get(f"{cell}/M00_AXI", ()):
            return cell
    return None


@pytest.mark.parametrize("dev", sorted(ZYNQ))
def test_system_tcl_runs_with_vivado_stubs(tmp_path, dev):
    ip, cell, hp, gp, irq, clk, hp_flag, clk_flag = ZYNQ[dev]
    d = load_device(dev)
    write_engine_system_project(tmp_path / "sys", dev)
    tcl = tmp_path / "sys" / "system.tcl"
    hz = str(int(d.clock_mhz * 1e6))
    calls, _ = _run_stubbed(tcl, "", hz=hz)
    names = [c[0] for c in calls]
    # no step: project, IP, block design, wrapper; no runs
    assert "launch_runs" not in names and "write_hw_platform" not in names
    assert names.count("create_project") == 2  # the engine IP's packaging project, then the system's
    sysproj = [c for c in calls if c[0] == "create_project"][1]
    assert sysproj[sysproj.index("-part") + 1] == d.part
    assert "ipx::package_project" in names and "ipx::save_core" in names
    cells = {c[-1]: c[c.index("-vlnv") + 1] for c in calls if c[0] == "create_bd_cell"}
    assert cells[cell] == f"xilinx.com:ip:{ip}"
    assert cells["engine"] == "binaryhpe.org:user:bhpe_engine"
    assert cells["smc_mem"] == cells["smc_ctrl"] == "xilinx.com:ip:smartconnect"
    assert cells["rst_pl"] == "xilinx.com:ip:proc_sys_reset"
    # the PS's configuration as set on its cell
    conf = {}
    for c in calls:
        if c[0] == "set_property" and c[1] == "-dict" and c[-1] == cell:
            w = c[2].split()
            for k, v in zip(w[0::2], w[1::2]):
                conf[k.removeprefix("CONFIG.")] = v.strip("{}")
    assert conf[hp_flag] == "1" and float(conf[clk_flag]) == d.clock_mhz
    # the block design's graph
    intf, nets = _graph(calls)
    assert _reaches(intf, "engine/m_axi", f"{cell}/{hp}") == "smc_mem"
    assert _reaches(intf, f"{cell}/{gp}", "engine/s_axil") == "smc_ctrl"
    clock_net = [n for n in nets if f"{cell}/{clk}" in n]
    assert len(clock_net) == 1
    for p in ("engine/clk_i", "smc_mem/aclk", "smc_ctrl/aclk", "rst_pl/slowest_sync_clk"):
        assert p in clock_net[0], p
    assert ["engine/done_o", f"{cell}/{irq}"] in nets
    rst_net = [n for n in nets if "rst_pl/peripheral_aresetn" in n][0]
    assert {"engine/rst_ni", "smc_mem/aresetn", "smc_ctrl/aresetn"} <= set(rst_net)
    # every port the PS needs clocked is on the clock net
    aclks = {"ps7": ("M_AXI_GP0_ACLK", "S_AXI_HP0_ACLK"), "ps8": ("maxihpm0_fpd_aclk", "saxihp0_fpd_aclk")}[cell]
    for a in aclks:
        assert f"{cell}/{a}" in clock_net[0]
    # addresses: the registers at the stated base for the PS's data space, DDR in the engine's space
    addr = [c for c in calls if c[0] == "assign_bd_address"]
    regs = [c for c in addr if c[-2] == "engine/s_axil/regs"]
    assert len(regs) == 1 and regs[0][regs[0].index("-target_address_space") + 1] == f"{cell}/Data"
    base = {"ps7": "0x43C00000", "ps8": "0xA0000000"}[cell]
    assert regs[0][regs[0].index("-offset") + 1] == base
    ddr = [c[-2] for c in addr if c[c.index("-target_address_space") + 1] == "engine/m_axi"]
    assert ddr and all(s.startswith(f"{cell}/") and "DDR" in s for s in ddr)
    # order: connections and addresses before validate, validate before the wrapper
    assert names.index("validate_bd_design") > max(i for i, n in enumerate(names) if n == "assign_bd_address")
    assert names.index("make_wrapper") > names.index("validate_bd_design")
    # no FREQ_HZ warning when the PS makes the requested clock; the runs with a step
    calls_b, out_b = _run_stubbed(tcl, "bitstream", hz=hz)
    nb = [c[0] for c in calls_b]
    impl = [c for c in calls_b if c[0] == "launch_runs" and c[1] == "impl_1"]
    assert "synth_1" in [c[1] for c in calls_b if c[0] == "launch_runs"] and impl
    assert "write_bitstream" in impl[0] and "write_hw_platform" in nb
    assert "WARNING" not in out_b.replace("WARNING: no board files", "")
    # the IP script was sourced without the step: it does not launch its own runs
    assert sum(1 for c in calls_b if c[0] == "launch_runs") == 2


def test_system_tcl_board_preset_and_clock_warning(tmp_path):
    write_engine_system_project(tmp_path / "sys", "zynq-7020")
    tcl = tmp_path / "sys" / "system.tcl"
    # no board files: the PYNQ-Z2's DDR set on the PS, automation without the preset
    calls, out = _run_stubbed(tcl, "", board="", hz="100000000")
    assert "WARNING: no board files" not in out  # the PYNQ-Z2's DDR is known
    ps_dicts = [c[2] for c in calls if c[0] == "set_property" and c[1] == "-dict" and c[-1] == "ps7"]
    assert any("PCW_UIPARAM_DDR_PARTNO {MT41J256M16 RE-125}" in d for d in ps_dicts)
    auto = [c for c in calls if c[0] == "apply_bd_automation"]
    assert len(auto) == 1 and 'apply_board_preset "0"' in auto[0][auto[0].index("-config") + 1]
    assert 'make_external "FIXED_IO, DDR"' in auto[0][auto[0].index("-config") + 1]
    assert not [c for c in calls if c[:2] == ["set_property", "board_part"]]
    # board files installed: the board part set and the preset applied, no DDR override
    calls, out = _run_stubbed(tcl, "", board="tul.com.tw:pynq-z2:part0:1.0", hz="100000000")
    assert [c[2] for c in calls if c[:2] == ["set_property", "board_part"]] == ["tul.com.tw:pynq-z2:part0:1.0"]
    auto = [c for c in calls if c[0] == "apply_bd_automation"]
    assert len(auto) == 1 and 'apply_board_preset "1"' in auto[0][auto[0].index("-config") + 1]
    ps_dicts = [c[2] for c in calls if c[0] == "set_property" and c[1] == "-dict" and c[-1] == "ps7"]
    assert not any("PCW_UIPARAM_DDR_PARTNO" in d for d in ps_dicts)
    assert "WARNING" not in out
    # a PL clock off the request: warned, and the engine's clock pin given the real frequency
    calls, out = _run_stubbed(tcl, "", hz="99999001")
    assert "WARNING: FCLK_CLK0 runs at 99999001 Hz, not the requested 100000000 Hz" in out
    fix = [c for c in calls if c[:2] == ["set_property", "CONFIG.FREQ_HZ"]]
    assert len(fix) == 1 and fix[0][2] == "99999001" and fix[0][-1] == "engine/clk_i"


def test_system_tcl_zynqmp_without_board_files_warns(tmp_path):
    write_engine_system_project(tmp_path / "sys", "zu7ev")
    calls, out = _run_stubbed(tmp_path / "sys" / "system.tcl", "", board="", hz="200000000")
    assert "WARNING: no board files (zcu104) for zu7ev" in out
    assert not [c for c in calls if c[0] == "apply_bd_automation"]
    calls, out = _run_stubbed(tmp_path / "sys" / "system.tcl", "", board="xilinx.com:zcu104:part0:1.1",
                              hz="200000000")
    auto = [c for c in calls if c[0] == "apply_bd_automation"]
    assert len(auto) == 1 and auto[0][auto[0].index("-rule") + 1] == "xilinx.com:bd_rule:zynq_ultra_ps_e"
    # the board's preset first, then this design's PS settings over it
    names = [c[0] + (c[-1] if c[0] == "set_property" else "") for c in calls]
    assert names.index("apply_bd_automation") < names.index("set_propertyps8")
