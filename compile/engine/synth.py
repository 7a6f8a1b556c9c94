"""The engine's hardware outputs: its RTL sources, Yosys synthesis and the ECP5 bitstream.

- :func:`engine_sources` -- the files of ``bhpe_engine`` in compile order: ``hw/rtl/engine/*.sv`` and the
  library modules of ``hw/rtl`` they instantiate (``bhpe_fifo``, ``bhpe_popcount``, ...), packages first.
- :func:`engine_wrapper` -- a top level that instantiates ``bhpe_engine`` with an :class:`EngineConfig`'s
  parameters (``EngineConfig.rtl_params()``). ``pins="all"`` passes every port through (synthesis counts);
  ``pins="ecp5"`` leaves the debug layer number unconnected and drives only the low 32 bits of the two AXI
  addresses, so that the ports fit the 365 user I/Os of an ECP5-85F in CABGA756 (the whole engine has about
  400; on a board the AXI ports meet a DRAM controller on chip, not pins).
- :func:`synth_engine` -- Yosys counts (``compile.synth.run_yosys``: the project's fixed ``synth_ecp5`` /
  ``synth_xilinx`` options and counting rules) of the engine for a configuration.
- :func:`engine_bitstream` -- the engine through ``compile.bitstream.build_bitstream`` (Yosys ``synth_ecp5``,
  nextpnr-ecp5 with a clock constraint at the device's clock, ecppack): the ``.bit`` file, nextpnr's fmax and
  the utilisation.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import tempfile

from binaryhpe import BinaryHPEError
from binaryhpe.compile.bitstream import critical_path  # noqa: F401 (the nextpnr log's worst path, for callers here)
from binaryhpe.sim.toolchain import library_order, rtl_dir, rtl_library

ENGINE_TOP = "bhpe_engine"
#: the generated top level that sets the engine's parameters
WRAPPER_TOP = "bhpe_engine_top"
#: address bits driven to pins by the ``ecp5`` wrapper (the DRAM of ECP5 boards is far below 4 GiB)
ECP5_PIN_ADDR_BITS = 32

_INST = re.compile(r"^\s*(bhpe_\w+)\s*(?:#|u_\w+\s*\()", re.M)
_PORT = re.compile(r"^\s*(input|output)\s+logic\s*(?:\[([^\]]+):0\])?\s*(\w+)\s*,?\s*(?://.*)?$", re.M)


def engine_dir() -> pathlib.Path:
    """``hw/rtl/engine``."""
    return rtl_dir() / "engine"


def engine_sources() -> list[pathlib.Path]:
    """Every file of ``hw/rtl/engine`` plus the library modules (and packages) they need, transitively, in
    compile order: packages first, every engine module after the engine modules it instantiates."""
    eng = sorted(engine_dir().glob("*.sv"))
    if not (engine_dir() / f"{ENGINE_TOP}.sv").is_file():
        raise BinaryHPEError(f"the engine RTL is incomplete: {engine_dir() / (ENGINE_TOP + '.sv')} is missing")
    lib = {f.stem: f for f in rtl_library()}
    need: dict[str, pathlib.Path] = {}
    todo = list(eng)
    while todo:
        text = todo.pop().read_text()
        names = set(_INST.findall(text)) | ({"bhpe_pkg"} if "bhpe_pkg::" in text else set())
        for n in sorted(names):
            if n in lib and n not in need:
                need[n] = lib[n]
                todo.append(lib[n])
    # packages first, then every engine module after the engine modules it instantiates: a module file includes
    # those (include-guarded, by their path under hw/rtl, so that the file lints alone), and in this order every
    # such include is skipped, so the list also builds from a flat copy of the files (Vivado's src/, rtl/lib/)
    ordered = library_order([*eng, *need.values()])
    pkgs = [f for f in ordered if f.name.endswith("_pkg.sv")]
    mods = {f.stem: f for f in ordered if f not in pkgs}
    done: list[pathlib.Path] = []

    def visit(f: pathlib.Path, path: tuple = ()) -> None:
        if f in done:
            return
        if f.stem in path:
            raise BinaryHPEError(f"{f}: the engine modules instantiate each other in a cycle: {' -> '.join(path)}")
        for n in sorted(set(_INST.findall(f.read_text()))):
            if n in mods and n != f.stem and f.parent == engine_dir():
                visit(mods[n], (*path, f.stem))
        done.append(f)

    for f in mods.values():
        visit(f)
    return pkgs + done


def _eval_width(expr: str, params: dict) -> int:
    """The value of a port's ``[expr:0]`` bound with the parameters substituted (+ - * / and parentheses)."""
    e = re.sub(r"\b[A-Za-z_]\w*\b", lambda m: str(params[m.group(0)]) if m.group(0) in params else m.group(0),
               expr)
    if not re.fullmatch(r"[\d\s+\-*/()]+", e):
        raise BinaryHPEError(f"{ENGINE_TOP}.sv: cannot evaluate the port width [{expr}:0]")
    return int(eval(e.replace("/", "//"))) + 1  # noqa: S307 (digits and operators only, checked above)


def engine_ports(params: dict) -> list[tuple[str, int, str]]:
    """The ports of ``bhpe_engine`` as ``(direction, width, name)``, read from its ANSI port list, widths for
    ``params`` (``EngineConfig.rtl_params()``)."""
    text = (engine_dir() / f"{ENGINE_TOP}.sv").read_text()
    m = re.search(rf"module\s+{ENGINE_TOP}\s*#\s*\(.*?\)\s*\((.*?)\);", text, re.S)
    if not m:
        raise BinaryHPEError(f"{engine_dir() / (ENGINE_TOP + '.sv')}: no ANSI port list found")
    ports = [(d, _eval_width(w, params) if w else 1, n) for d, w, n in _PORT.findall(m.group(1))]
    if not ports:
        raise BinaryHPEError(f"{engine_dir() / (ENGINE_TOP + '.sv')}: no ports parsed")
    return ports


def engine_wrapper(cfg, name: str = WRAPPER_TOP, pins: str = "all") -> str:
    """SystemVerilog of a top ``name`` instantiating ``bhpe_engine`` with ``cfg``'s parameters (see the module
    docstring for ``pins``)."""
    if pins not in ("all", "ecp5"):
        raise BinaryHPEError(f"engine wrapper: pins must be 'all' or 'ecp5', not {pins!r}")
    params = cfg.rtl_params()
    decl, conns, body = [], [], []
    for d, w, n in engine_ports(params):
        rng = f"[{w - 1}:0] " if w > 1 else ""
        if pins == "ecp5" and n == "dbg_layer_o":
            conns.append(f".{n}()")
            continue
        if pins == "ecp5" and d == "output" and n in ("m_axi_araddr", "m_axi_awaddr") and w > ECP5_PIN_ADDR_BITS:
            body.append(f"  logic [{w - 1}:0] {n}_full;")
            body.append(f"  assign {n} = {n}_full[{ECP5_PIN_ADDR_BITS - 1}:0];")
            decl.append(f"  output logic [{ECP5_PIN_ADDR_BITS - 1}:0] {n}")
            conns.append(f".{n}({n}_full)")
            continue
        decl.append(f"  {d:6} logic {rng}{n}")
        conns.append(f".{n}({n})")
    plist = ", ".join(f".{k}({v})" for k, v in params.items())
    note = ("" if pins == "all" else
            f"// Pins of an ECP5 part: dbg_layer_o is left open and the AXI addresses drive their low "
            f"{ECP5_PIN_ADDR_BITS} bits only.\n")
    return (f"// {name}: bhpe_engine with the parameters {json.dumps(params)} (generated by "
            f"binaryhpe.compile.engine.synth: do not edit).\n{note}"
            f"module {name} (\n" + ",\n".join(decl) + "\n);\n" + "".join(f"{b}\n" for b in body)
            + f"  {ENGINE_TOP} #({plist}) u_engine (\n    " + ",\n    ".join(conns) + "\n  );\nendmodule\n")


def write_engine_rtl(cfg, rtl, top: str = WRAPPER_TOP, pins: str = "all") -> pathlib.Path:
    """A design folder as ``compile.synth.synth_design`` reads it: ``rtl/<top>.sv`` (the wrapper) and
    ``rtl/lib/`` (:func:`engine_sources`). Returns ``rtl``."""
    rtl = pathlib.Path(rtl)
    lib = rtl / "lib"
    if lib.exists():
        shutil.rmtree(lib)
    lib.mkdir(parents=True)
    for f in engine_sources():
        shutil.copyfile(f, lib / f.name)
    (rtl / f"{top}.sv").write_text(engine_wrapper(cfg, top, pins))
    return rtl


def synth_engine(cfg, family: str = "ecp5", work=None, flatten: bool = True) -> dict:
    """Yosys counts of the engine with ``cfg``'s parameters: ``{lut, ff, bram18, dsp, uram, lutram, family,
    options, wall_s}`` (``compile.synth.run_yosys``). ``flatten=False`` keeps the hierarchy and adds
    ``modules``: the counts of each module (``stat`` per module, for the resource model's per-unit fit)."""
    from binaryhpe.compile.synth import run_yosys

    tmp = None
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="bhpe_engine_synth_")
        work = tmp.name
    work = pathlib.Path(work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        (work / f"{WRAPPER_TOP}.sv").write_text(engine_wrapper(cfg, WRAPPER_TOP, "all"))
        extra = "" if flatten else " -noflatten"
        if not flatten and family == "xilinx":
            raise BinaryHPEError("synth_engine: the per-module breakdown is for ecp5 (synth_xilinx is run with "
                                 "-flatten in this project)")
        r = run_yosys([work / f"{WRAPPER_TOP}.sv", *engine_sources()], WRAPPER_TOP, family, work, extra=extra,
                      read_opts="" if flatten else "--keep-hierarchy")
        out = {k: r[k] for k in ("lut", "ff", "bram18", "dsp", "uram", "lutram", "family", "options", "wall_s")}
        if not flatten:
            out["options"] += extra
            out["modules"] = module_counts((work / "stat.txt").read_text(), family)
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()


def module_counts(stat: str, family: str) -> dict:
    """Per-module counts of a hierarchical Yosys ``stat`` report (``=== module ===`` sections; local cells,
    submodules not included) -> ``{module name: {lut, ff, bram18, dsp, ...}}``."""
    from binaryhpe.compile.synth import parse_stat

    res = {}
    parts = re.split(r"^=== (\S+) ===\s*$", stat, flags=re.M)
    for name, body in zip(parts[1::2], parts[2::2]):
        body = body.split("=== design hierarchy ===")[0]
        try:
            r = parse_stat(body, family)
        except BinaryHPEError:
            continue  # a module without cells
        res[name] = {k: r[k] for k in ("lut", "ff", "bram18", "dsp", "lutram")}
    return res


def engine_bitstream(cfg, out_dir, device="ecp5-85f", seed: int = 1, timeout: int = 3 * 3600) -> dict:
    """The engine sized by ``cfg`` through Yosys + nextpnr-ecp5 + ecppack (``compile.bitstream.build_bitstream``,
    clock constraint at the device's clock) into ``out_dir``.

    Returns ``{"bitstream", "fmax_mhz", "clock_mhz", "timing_met", "luts", "ffs", "brams", "dsps",
    "utilisation", "synth", "params", "device", "log", "wall_s"}``: ``luts`` / ``ffs`` / ``brams`` / ``dsps``
    are Yosys's counts (``compile.synth`` rules: LUT4 + 2 per carry cell + 4 per LUT-RAM cell, TRELLIS_FF,
    DP16KD, MULT18X18D); ``utilisation`` is nextpnr's cell table of the placed design; ``log`` the nextpnr log."""
    from binaryhpe.compile.bitstream import build_bitstream

    out = pathlib.Path(out_dir)
    rtl = write_engine_rtl(cfg, out / "rtl", WRAPPER_TOP, pins="ecp5")
    r = build_bitstream(rtl, out, device, top=WRAPPER_TOP, seed=seed, timeout=timeout)
    s = r["synth"]
    res = {"bitstream": r["bitstream"], "fmax_mhz": r["fmax_mhz"], "clock_mhz": r["clock_mhz"],
           "timing_met": r["fmax_mhz"] is not None and r["fmax_mhz"] >= r["clock_mhz"],
           "luts": s["lut"], "ffs": s["ff"], "brams": s["bram18"], "dsps": s["dsp"],
           "utilisation": r["utilisation"], "synth": s, "params": cfg.rtl_params(), "device": r["device"],
           "part": r["part"], "log": str(out / "nextpnr.log"), "wall_s": r["wall_s"]}
    (out / "engine_bitstream.json").write_text(json.dumps(res, indent=1))
    return res

