"""Resource model of the layer-sequential engine (``bhpe_engine``): LUT, FF, BRAM18 and DSP as a function of
its parameters (:class:`~binaryhpe.compile.engine.config.EngineConfig`), for ECP5 (LUT4) and Xilinx (LUT6).

It is an estimate, built from Yosys runs of the engine's own RTL (``compile.engine.synth.synth_engine``, the
project's fixed ``synth_ecp5`` / ``synth_xilinx`` options and counting rules of ``compile.synth``):

- **Block RAM** is counted, not fitted: the five buffers as simple dual-port RAMs of 18 Kb blocks (512 x 36,
  1K x 18, ... the cheapest shape: ``EngineConfig.buffer_bram18``; the weight and constant buffers are written
  whole words, so Yosys uses the parity bits too). The whole engine at the default configuration maps to
  exactly that count (100 DP16KD).
- **LUT, FF, DSP** are per unit. The units that grow with the array are linear in the sizes they scale with,
  ``PE`` (XNOR rows, epilogue lanes) and ``MUL = 8 * PEF`` (the MAC array's multipliers): the XNOR array, the
  pool reducer and the epilogue ``c0 + c_pe * PE``, the MAC array ``c0 + c_pe * PE + c_mul * MUL``, each
  fitted to Yosys runs of that module alone at the sizes in :data:`CALIBRATION`. The rest of the engine
  (control, AXI masters, loader, store, the compute unit's walker and packer, the buffers' glue) is one
  constant: the flattened Yosys run of the whole engine at the default configuration less the units there.
  ``benchmarks/engine_ecp5.py --calibrate`` re-measures the table.
- ``tests/test_engine_hw.py`` checks the model against a flattened Yosys run of the whole engine at a
  configuration that is no calibration point, with the tolerance it states.
"""

from __future__ import annotations

import math

import numpy as np

from binaryhpe import BinaryHPEError

RES = ("lut", "ff", "dsp")
#: the array units: model unit -> (RTL module, the sizes it is linear in)
UNITS = {"xnor": ("bhpe_eng_xnor_array", ("pe",)), "pool": ("bhpe_eng_pool", ("pe",)),
         "mac": ("bhpe_eng_mac_array", ("pe", "mul")), "epilogue": ("bhpe_eng_epilogue", ("pe",))}
#: the unit sizes measured: model unit -> [(PE, PEF)]
UNIT_POINTS = {"xnor": [(8, 1), (16, 1)], "pool": [(8, 1), (16, 1)], "mac": [(8, 1), (8, 4), (16, 4)],
               "epilogue": [(8, 1), (16, 1)]}

#: Yosys counts (``benchmarks/engine_ecp5.py --calibrate FAMILY`` prints them): family -> {"units": {unit:
#: [{lut, ff, dsp} at each of UNIT_POINTS[unit]]}, "engine": {"pe", "pef", "lut", "ff", "dsp"} (the whole engine,
#: flattened, at the default EngineConfig), "rtl": the commit of hw/rtl/engine measured}
CALIBRATION: dict[str, dict] = {
    "ecp5": {
        "units": {
            "xnor": [{"lut": 3547, "ff": 398, "dsp": 0}, {"lut": 6969, "ff": 782, "dsp": 0}],
            "pool": [{"lut": 4190, "ff": 621, "dsp": 0}, {"lut": 6671, "ff": 959, "dsp": 0}],
            "mac": [{"lut": 1609, "ff": 735, "dsp": 8}, {"lut": 3065, "ff": 1797, "dsp": 32}, {"lut": 4094, "ff": 2056, "dsp": 32}],
            "epilogue": [{"lut": 37389, "ff": 1550, "dsp": 49}, {"lut": 69295, "ff": 3022, "dsp": 97}],
        },
        "engine": {"pe": 16, "pef": 4, "lut": 100710, "ff": 13091, "dsp": 152},
        "rtl": "hw/rtl/engine of 05:37 (045e1d8, whole engine) and 05:55-06:06 UTC (units; 0ac87d1..3ffb943)",
    },
}


def buffers(cfg) -> dict:
    """The five buffers of ``cfg``: name -> ``(width, depth, bram18)`` (``EngineConfig.buffer_bram18``'s rule)."""
    from binaryhpe.compile.engine.config import _bram18

    shapes = {"line": (64, cfg.lb_depth), "weight": (cfg.pe * 64, cfg.wb_depth),
              "const": (cfg.pe * 32, cfg.cb_depth), "b": (64, cfg.bb_depth), "out": (64, cfg.ob_depth)}
    return {k: (w, d, _bram18(w, d)) for k, (w, d) in shapes.items()}


def _drivers(unit: str, pe: int, pef: int) -> list[float]:
    return [1.0] + [float(pe if d == "pe" else 8 * pef) for d in UNITS[unit][1]]


def _unit_fit(unit: str, points: list[dict]) -> dict:
    """Least-squares coefficients of one unit (exact where there are as many points as coefficients)."""
    a = np.array([_drivers(unit, pe, pef) for pe, pef in UNIT_POINTS[unit]])
    return {k: np.linalg.lstsq(a, np.array([float(p[k]) for p in points]), rcond=None)[0] for k in RES}


def _unit_counts(cal: dict, pe: int, pef: int) -> dict:
    out = {}
    for unit, points in cal["units"].items():
        c, x = _unit_fit(unit, points), np.array(_drivers(unit, pe, pef))
        out[unit] = {k: max(0, int(round(float(c[k] @ x)))) for k in RES}
    return out


def unit_resources(unit: str, pe: int, pef: int, device="ecp5") -> dict:
    """The model's ``{lut, ff, dsp}`` of one array unit (``xnor``, ``pool``, ``mac``, ``epilogue``) alone."""
    fam = _family(device)
    if fam not in CALIBRATION:
        raise BinaryHPEError(f"the engine resource model has no {fam} calibration (run benchmarks/engine_ecp5.py "
                             f"--calibrate {fam})")
    return _unit_counts({"units": {unit: CALIBRATION[fam]["units"][unit]}}, pe, pef)[unit]


def _family(device_or_family) -> str:
    """``"ecp5"`` or ``"xilinx"`` of a device, a device name or a family (``ecp5``, ``zynq7``, ``zynqmp``,
    ``ultrascale+``, ``xilinx``)."""
    from binaryhpe.compile.devices import Device, load_device

    if isinstance(device_or_family, Device):
        return "ecp5" if device_or_family.family == "ecp5" else "xilinx"
    if device_or_family in ("ecp5", "xilinx", "zynq7", "zynqmp", "ultrascale+"):
        return "ecp5" if device_or_family == "ecp5" else "xilinx"
    return _family(load_device(device_or_family))


def engine_resources(cfg, device="ecp5") -> dict:
    """Estimated ``{lut, ff, bram18, dsp}`` of ``bhpe_engine`` with ``cfg``'s parameters on ``device`` (a device
    name, a ``Device``, or ``"ecp5"`` / ``"xilinx"``); ``units`` splits LUT/FF/DSP by unit (ECP5: the engine's
    units; Xilinx: the whole engine), ``buffers`` the block RAMs, ``model`` says what the figures rest on."""
    fam = _family(device)
    # Xilinx without a calibration of its own: the ECP5 model, LUT4 converted with the project's LUT4-per-LUT6
    # ratio (compile.devices.LUT4_PER_LUT6), FFs as they are, and the ECP5 multiplier count (18x18 pieces; a
    # DSP48's 25x18 needs at most as many)
    src = fam if fam in CALIBRATION else "ecp5"
    if src not in CALIBRATION:
        raise BinaryHPEError(f"the engine resource model has no {fam} calibration (run benchmarks/engine_ecp5.py "
                             f"--calibrate {fam})")
    cal = CALIBRATION[src]
    units = _unit_counts(cal, cfg.pe, cfg.pef)
    at_default = _unit_counts(cal, cal["engine"]["pe"], cal["engine"]["pef"])
    units["rest"] = {k: cal["engine"][k] - sum(u[k] for u in at_default.values()) for k in RES}
    converted = src != fam
    if converted:
        from binaryhpe.compile.devices import LUT4_PER_LUT6

        for u in units.values():
            u["lut"] = int(round(u["lut"] / LUT4_PER_LUT6))
    bufs = buffers(cfg)
    tot = {k: sum(u[k] for u in units.values()) for k in RES}
    tot["bram18"] = sum(b[2] for b in bufs.values())
    lut = "LUT4 (+2 per carry cell, +4 per LUT-RAM cell)" if fam == "ecp5" else "LUT6 (+LUT-RAM/SRL)"
    how = (f"the XNOR/MAC/pool/epilogue units linear in PE and 8*PEF (Yosys {src} of each unit alone), the rest "
           f"constant (Yosys {src} of the whole engine at PE {cal['engine']['pe']}, PEF {cal['engine']['pef']} less "
           f"the units), RTL {cal.get('rtl', '?')}")
    if converted:
        how += (f"; not calibrated on Xilinx: ECP5 LUT4 / {LUT4_PER_LUT6} (compile.devices.LUT4_PER_LUT6), "
                "ECP5 FF and MULT18X18D counts (an upper bound on DSP48s)")
    return {**tot, "family": fam, "units": units, "calibrated": not converted,
            "buffers": {k: {"width": w, "depth": d, "bram18": n} for k, (w, d, n) in bufs.items()},
            "model": f"{lut}, FF, DSP: {how}; BRAM18: the five buffers' block shapes"}


def calibrate(family: str, work, engine: dict | None = None, progress: bool = True) -> dict:
    """Measure a :data:`CALIBRATION` entry for ``family``: Yosys of each array unit alone at
    :data:`UNIT_POINTS`, and (unless ``engine`` gives its counts) of the whole engine, flattened, at the default
    configuration."""
    import pathlib
    import subprocess

    from binaryhpe.compile.engine.config import EngineConfig
    from binaryhpe.compile.engine.synth import engine_dir, engine_sources, synth_engine
    from binaryhpe.compile.synth import run_yosys

    work = pathlib.Path(work)
    srcs = engine_sources()
    units: dict[str, list[dict]] = {}
    for unit, (mod, drivers) in UNITS.items():
        for pe, pef in UNIT_POINTS[unit]:
            g = f"-G Pe={pe}" + (f" -G Pef={pef}" if "mul" in drivers else "")
            w = work / f"{family}_{mod}_{pe}_{pef}"
            w.mkdir(parents=True, exist_ok=True)
            r = run_yosys(srcs, mod, family, w, read_opts=g)
            units.setdefault(unit, []).append({k: r[k] for k in RES})
            if progress:
                print(f"[engine resources] {family} {mod} PE={pe} PEF={pef}: {r['lut']} LUT {r['ff']} FF "
                      f"{r['dsp']} DSP ({r['wall_s']} s)", flush=True)
    if engine is None:
        cfg = EngineConfig()
        r = synth_engine(cfg, family, work / f"{family}_engine")
        engine = {"pe": cfg.pe, "pef": cfg.pef, **{k: r[k] for k in RES}}
    rev = subprocess.run(["git", "log", "-1", "--format=%h", "--", "."], cwd=engine_dir(), capture_output=True,
                         text=True).stdout.strip()
    return {"units": units, "engine": engine, "rtl": rev or "?"}


# the ECP5 bitstream of the engine lives with its synthesis (compile.engine.synth); the build flow imports it here
from binaryhpe.compile.engine.synth import engine_bitstream  # noqa: E402,F401
