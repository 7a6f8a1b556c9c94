"""Microcontroller target descriptions: core, clock, flash, RAM (and how to emulate the core under QEMU).

Built-in targets are the JSON files of ``compile/mcu_targets/`` (``stm32f4``: Cortex-M4, ``stm32h7``:
Cortex-M7, ``mps2-an505``: Cortex-M33, ``mps3-an547``: Cortex-M55). A user target is a JSON file given by
path (``--target mcu:path/to/part.json``) with the same keys; ``qemu`` is only needed for ``--sim``.

Required keys: ``name``, ``core`` (one of :data:`CORES`), ``clock_hz``, ``flash_bytes``, ``ram_bytes``,
``gcc_cpu`` (arm-none-eabi-gcc ``-mcpu``). ``ram_bytes`` is the one contiguous RAM block the arena, stack and
I/O buffers must share.
"""

from __future__ import annotations

import json
import pathlib

from binaryhpe import BinaryHPEError

HERE = pathlib.Path(__file__).resolve().parent / "mcu_targets"
CORES = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
REQUIRED = ("name", "core", "clock_hz", "flash_bytes", "ram_bytes", "gcc_cpu")


class TargetError(BinaryHPEError):
    pass


def builtin_targets() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.json"))


def load_target(name: str) -> dict:
    """A built-in target by name (``stm32h7`` or ``mcu:stm32h7``) or a user JSON file by path."""
    name = name[4:] if name.startswith("mcu:") else name
    p = pathlib.Path(name)
    if p.suffix == ".json" or p.exists():
        if not p.is_file():
            raise TargetError(f"target file not found: {p}")
    else:
        p = HERE / f"{name}.json"
        if not p.is_file():
            raise TargetError(f"unknown microcontroller target {name!r}: built-in targets are "
                              f"{', '.join(builtin_targets())}, or give a JSON file path")
    try:
        t = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise TargetError(f"{p}: not valid JSON ({e})") from None
    missing = [k for k in REQUIRED if k not in t]
    if missing:
        raise TargetError(f"{p}: target description lacks {', '.join(missing)}")
    if t["core"] not in CORES:
        raise TargetError(f"{p}: core {t['core']!r} is not one of {', '.join(CORES)}")
    for k in ("clock_hz", "flash_bytes", "ram_bytes"):
        if not isinstance(t[k], int) or t[k] <= 0:
            raise TargetError(f"{p}: {k} must be a positive integer")
    t["file"] = str(p)
    return t


#: bytes of code per emitted layer function (arm-none-eabi-size of the tiny BiDRN's model.o, -O2 Thumb-2:
#: 17.9 KB of .text for 213 layer functions, ~84 B each) and of the fixed part (run function, copy-out)
CODE_PER_LAYER = 100
CODE_FIXED = 512


def check_fit(cm, target: dict) -> dict:
    """Flash = weights + code estimate; RAM = arena + I/O buffers + stack estimate. Raises one error naming
    the shortfall and the largest tensor / weight set when the network does not fit."""
    from binaryhpe.compile.cbackend import largest

    code = CODE_FIXED + CODE_PER_LAYER * len(cm.steps)
    flash = cm.flash_data_bytes + code
    ram = cm.plan.peak + cm.io_bytes + cm.stack_bytes
    big = largest(cm)
    errs = []
    if flash > target["flash_bytes"]:
        errs.append(f"flash: needs {flash} B, has {target['flash_bytes']} B (short by "
                    f"{flash - target['flash_bytes']} B); the largest weight set is {big['weights']} "
                    f"({big['weight_bytes']} B)")
    if ram > target["ram_bytes"]:
        errs.append(f"RAM: needs {ram} B (arena {cm.plan.peak} B + I/O {cm.io_bytes} B + stack "
                    f"{cm.stack_bytes} B), has {target['ram_bytes']} B (short by {ram - target['ram_bytes']} B); "
                    f"the largest tensor is {big['tensor']} ({big['tensor_bytes']} B)")
    if errs:
        raise TargetError(f"the network does not fit target {target['name']}: " + "; ".join(errs))
    return {"flash_bytes": flash, "ram_bytes": ram, "code_bytes": code}
