"""FPGA device descriptions: what a design may use and how fast it may run.

Each device is one JSON file in ``compile/devices/`` (or any file a user points at) with:

=============  ===================================================================================
key            meaning
=============  ===================================================================================
name           short name used on the command line (``--device zu3eg``)
part, board    the vendor part number (used by the Vivado / nextpnr flows) and a typical board
family         ``ecp5``, ``zynq7``, ``zynqmp`` or ``ultrascale+`` (selects the synthesis flow)
lut            look-up tables (LUT4 on ECP5, LUT6 on Xilinx parts)
lut_inputs     4 or 6
ff             flip-flops
bram18         18 Kb block RAMs (a Xilinx BRAM36 counts as 2; an ECP5 EBR as 1)
uram           288 Kb UltraRAMs (0 where the part has none)
dsp            DSP slices (DSP48E1/E2, or ECP5 MULT18X18D)
clock_mhz      a typical clock for a streaming dataflow design on the part
dram_gbps      external DRAM bandwidth usable by the fabric, GB/s (10^9 bytes/s)
=============  ===================================================================================

The resource models of the layer kinds count LUT6s; on a LUT4 part ``lut_scale`` (LUT4 per LUT6 for
this project's RTL, measured with Yosys ``synth_ecp5`` vs ``synth_xilinx`` on the same layers, see
``docs/estimates.md``) converts them.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import asdict, dataclass

from binaryhpe import BinaryHPEError

DEVICE_DIR = pathlib.Path(__file__).resolve().parent / "devices"

#: LUT4 per LUT6 of the resource models on ECP5: the tiny BiDRN folded for ECP5-85F synthesizes (Yosys
#: synth_ecp5) to 24,501 LUT4 where the models give 20,146 LUT6 (1.22); single layers range 1.0-1.7
#: (benchmarks/estimates_vs_yosys.py prints the synth_ecp5 / synth_xilinx ratio per kind)
LUT4_PER_LUT6 = 1.25

REQUIRED = ("name", "part", "family", "lut", "lut_inputs", "ff", "bram18", "dsp", "clock_mhz", "dram_gbps")


@dataclass(frozen=True)
class Device:
    name: str
    part: str
    family: str
    lut: int
    lut_inputs: int
    ff: int
    bram18: int
    dsp: int
    clock_mhz: float
    dram_gbps: float
    uram: int = 0
    board: str = ""
    notes: str = ""
    #: the CPU that runs the host part of a whole-model frame (compile/wholebody_build.py) and its clock
    host_cpu: str = "Cortex-A53 (external host)"
    host_cpu_mhz: float = 1200.0

    @property
    def lut_scale(self) -> float:
        """Device LUTs per LUT6 of the resource models."""
        return 1.0 if self.lut_inputs >= 6 else LUT4_PER_LUT6

    @property
    def vendor(self) -> str:
        return "lattice" if self.family == "ecp5" else "xilinx"

    def budget(self) -> dict:
        return {"lut": self.lut, "ff": self.ff, "bram18": self.bram18, "uram": self.uram, "dsp": self.dsp}

    def to_dict(self) -> dict:
        return asdict(self)


def device_names() -> list[str]:
    return sorted(p.stem for p in DEVICE_DIR.glob("*.json"))


def _from_dict(d: dict, where: str) -> Device:
    if not isinstance(d, dict):
        raise BinaryHPEError(f"{where}: a device file must hold one JSON object")
    missing = [k for k in REQUIRED if k not in d]
    if missing:
        raise BinaryHPEError(f"{where}: device description lacks {', '.join(missing)} (needs {', '.join(REQUIRED)})")
    fields = set(Device.__dataclass_fields__)
    kw = {k: v for k, v in d.items() if k in fields}
    for k in ("lut", "lut_inputs", "ff", "bram18", "dsp", "uram"):
        if k in kw and (not isinstance(kw[k], int) or kw[k] < 0):
            raise BinaryHPEError(f"{where}: {k} must be a non-negative integer, got {kw[k]!r}")
    for k in ("clock_mhz", "dram_gbps"):
        if not isinstance(kw[k], (int, float)) or kw[k] <= 0:
            raise BinaryHPEError(f"{where}: {k} must be a positive number, got {kw[k]!r}")
    if kw["lut_inputs"] not in (4, 6):
        raise BinaryHPEError(f"{where}: lut_inputs must be 4 or 6")
    return Device(**kw)


def load_device(name_or_path) -> Device:
    """A built-in device by name (case-insensitive, ``-``/``_`` alike), or a JSON device file by path."""
    if isinstance(name_or_path, Device):
        return name_or_path
    s = str(name_or_path)
    p = pathlib.Path(s)
    if p.suffix == ".json" or p.exists():
        if not p.is_file():
            raise BinaryHPEError(f"device file not found: {p}")
        try:
            d = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise BinaryHPEError(f"{p}: not valid JSON ({e})") from None
        return _from_dict(d, str(p))
    key = s.lower().replace("_", "-")
    aliases = {"pynq-z2": "zynq-7020", "xc7z020": "zynq-7020", "ultra96": "zu3eg", "zcu104": "zu7ev",
               "u250": "alveo-u250", "lfe5u-25f": "ecp5-25f", "lfe5u-85f": "ecp5-85f"}
    key = aliases.get(key, key)
    f = DEVICE_DIR / f"{key}.json"
    if not f.is_file():
        raise BinaryHPEError(f"unknown device {s!r}; known devices: {', '.join(device_names())} "
                             f"(or a path to a device JSON file with keys {', '.join(REQUIRED)})")
    return _from_dict(json.loads(f.read_text()), str(f))


def all_devices() -> list[Device]:
    return [load_device(n) for n in device_names()]
