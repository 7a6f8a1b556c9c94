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
  constant: a flattened Yosys run of the whole engine (``CALIBRATION[...]["engine"]``) less the units there.
  ``benchmarks/engine_ecp5.py --calibrate`` re-measures the table. On Xilinx the units are measured with
  ``synth_xilinx``; the rest has no Xilinx run of the whole engine yet (tens of minutes) and is the ECP5 rest
  with LUT4 / ``compile.devices.LUT4_PER_LUT6`` -- the ``model`` string of :func:`engine_resources` says so. (Unit
  by unit the two families differ far more than that ratio: the epilogue at PE 8 is 37,389 LUT4 but 15,565
  LUT6, the XNOR array 3,547 LUT4 but 1,855 LUT6.)
- ``tests/test_engine_hw.py`` checks the block count and the MAC array at a size it was not fitted to against
  Yosys; ``benchmarks/engine_ecp5.py --check`` the whole engine at PE 8, PEF 2 with small buffers (no
  calibration point). Run once with the previous calibration (RTL of 06:17 UTC, before the epilogue's area cut,
  rest from the whole engine at PE 16 / PEF 4; 1,142 s): model 60,901 LUT4, 9,930 FF, 37 BRAM18, 88 DSP, Yosys
  58,994 LUT4, 10,762 FF, 37 BRAM18, 92 MULT18X18D (+3.2%, -7.7%, exact, -4 DSP). The current rest is from the
  release run (PE 8, PEF 2, the ECP5-85F buffers) and has not been checked at another size yet.
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
            "epilogue": [{"lut": 31180, "ff": 1856, "dsp": 49}, {"lut": 61019, "ff": 3584, "dsp": 97}],
        },
        "engine": {"pe": 8, "pef": 2, "lut": 52061, "ff": 10563, "dsp": 92},
        "rtl": "hw/rtl/engine 65a2110 (whole engine, epilogue); XNOR/pool/MAC of 05:56 UTC (0ac87d1)",
    },
    "xilinx": {
        "units": {
            "xnor": [{"lut": 1855, "ff": 902, "dsp": 0}, {"lut": 3615, "ff": 1726, "dsp": 0}],
            "pool": [{"lut": 1814, "ff": 621, "dsp": 0}, {"lut": 3462, "ff": 959, "dsp": 0}],
            "mac": [{"lut": 1086, "ff": 507, "dsp": 8}, {"lut": 1709, "ff": 885, "dsp": 32}, {"lut": 2291, "ff": 1144, "dsp": 32}],
            "epilogue": [{"lut": 15565, "ff": 1857, "dsp": 33}, {"lut": 29426, "ff": 3585, "dsp": 65}],
        },
        "rtl": "hw/rtl/engine of 06:18-06:44 UTC (units; 3cd2005..b21e481)",
    },
}


def block_bram18(width: int, depth: int) -> int:
    """BRAM18 of a simple dual-port memory of ``depth`` words of ``width`` bits (512 x 36 / 1024 x 18 ...)."""
    best = None
    for w, d in ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)):
        n = math.ceil(width / w) * math.ceil(depth / d)
        best = n if best is None else min(best, n)
    return best


def buffers(cfg) -> dict:
    """The five buffers of ``cfg``: name -> ``(width, depth, bram18)`` (``EngineConfig.buffer_bram18``'s rule)."""
    shapes = {"line": (64, cfg.lb_depth), "weight": (cfg.pe * 64, cfg.wb_depth),
              "const": (cfg.pe * 32, cfg.cb_depth), "b": (64, cfg.bb_depth), "out": (64, cfg.ob_depth)}
    return {k: (w, d, block_bram18(w, d)) for k, (w, d) in shapes.items()}


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
    if "ecp5" not in CALIBRATION:
        raise BinaryHPEError("the engine resource model has no calibration (run benchmarks/engine_ecp5.py "
                             "--calibrate ecp5)")
    from binaryhpe.compile.devices import LUT4_PER_LUT6

    ecp = CALIBRATION["ecp5"]
    own = CALIBRATION.get(fam, {})

    def rest_of(cal: dict) -> dict:
        at = _unit_counts(cal, cal["engine"]["pe"], cal["engine"]["pef"])
        return {k: cal["engine"][k] - sum(u[k] for u in at.values()) for k in RES}

    def lut6(r: dict) -> dict:
        # an ECP5 count on a Xilinx part: LUT4 / LUT4_PER_LUT6 (compile.devices), FFs as they are, MULT18X18D
        # pieces (18x18; a DSP48's 25x18 needs at most as many)
        return {**r, "lut": int(round(r["lut"] / LUT4_PER_LUT6))}

    conv = lut6 if fam != "ecp5" else (lambda r: r)
    if "units" in own:
        units = _unit_counts(own, cfg.pe, cfg.pef)
        src_units = fam
    else:
        units = {k: conv(v) for k, v in _unit_counts(ecp, cfg.pe, cfg.pef).items()}
        src_units = "ecp5"
    if "engine" in own:
        units["rest"], src_rest, rest_cal = rest_of(own), fam, own
    else:
        units["rest"], src_rest, rest_cal = conv(rest_of(ecp)), "ecp5", ecp
    bufs = buffers(cfg)
    tot = {k: sum(u[k] for u in units.values()) for k in RES}
    tot["bram18"] = sum(b[2] for b in bufs.values())
    lut = "LUT4 (+2 per carry cell, +4 per LUT-RAM cell)" if fam == "ecp5" else "LUT6 (+LUT-RAM/SRL)"
    how = (f"the XNOR/MAC/pool/epilogue units linear in PE and 8*PEF (Yosys {src_units} of each unit alone, RTL "
           f"{(own if 'units' in own else ecp).get('rtl', '?')}), the rest constant (Yosys {src_rest} of the whole "
           f"engine at PE {rest_cal['engine']['pe']}, PEF {rest_cal['engine']['pef']} less the units)")
    if fam != "ecp5" and "ecp5" in (src_units, src_rest):
        how += (f"; ECP5 figures converted for Xilinx: LUT4 / {LUT4_PER_LUT6} (compile.devices.LUT4_PER_LUT6), FF "
                "and MULT18X18D counts as they are (an upper bound on DSP48s)")
    return {**tot, "family": fam, "units": units, "calibrated": fam == src_units == src_rest,
            "buffers": {k: {"width": w, "depth": d, "bram18": n} for k, (w, d, n) in bufs.items()},
            "model": f"{lut}, FF, DSP: {how}; BRAM18: the five buffers' block shapes"}


def calibrate(family: str, work, cfg, engine: dict | None = None, progress: bool = True) -> dict:
    """Measure a :data:`CALIBRATION` entry for ``family``: Yosys of each array unit alone at
    :data:`UNIT_POINTS`, and (unless ``engine`` gives its counts) of the whole engine, flattened, at the default
    configuration ``cfg`` (an ``EngineConfig``: the caller's, so that this module does not import the config,
    which imports it)."""
    import pathlib
    import subprocess

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
        r = synth_engine(cfg, family, work / f"{family}_engine")
        engine = {"pe": cfg.pe, "pef": cfg.pef, **{k: r[k] for k in RES}}
    rev = subprocess.run(["git", "log", "-1", "--format=%h", "--", "."], cwd=engine_dir(), capture_output=True,
                         text=True).stdout.strip()
    return {"units": units, "engine": engine, "rtl": rev or "?"}


# the ECP5 bitstream of the engine lives with its synthesis (compile.engine.synth); the build flow imports it here
from binaryhpe.compile.engine.synth import engine_bitstream  # noqa: E402,F401
