"""Microcontroller target descriptions: core, clock, flash, RAM (and how to emulate the core under QEMU).

Built-in targets are the JSON files of ``compile/mcu_targets/`` (``stm32f4``: Cortex-M4, ``stm32h7``:
Cortex-M7, ``mps2-an505``: Cortex-M33, ``mps3-an547``: Cortex-M55). A user target is a JSON file given by
path (``--target mcu:path/to/part.json``) with the same keys; ``qemu`` is only needed for ``--sim``.

Required keys: ``name``, ``core`` (one of :data:`CORES`), ``clock_hz``, ``flash_bytes``, ``ram_bytes``,
``gcc_cpu`` (arm-none-eabi-gcc ``-mcpu``). ``ram_bytes`` is the one contiguous RAM block the arena, stack and
I/O buffers must share, unless the target lists ``ram_banks``: then the data RAM is those banks (each
``{"name", "bytes", "wait_states", "origin"}``; ``wait_states`` orders them, fastest first, ties in the listed
order): the memory planner places buffers across them (the hottest in the fastest), the stack goes to the
fastest bank, the caller's input and output buffers to the largest, and ``bank_linker_script`` writes the
part's linker script.
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
    banks = t.get("ram_banks")
    if banks is not None:
        if not isinstance(banks, list) or not banks:
            raise TargetError(f"{p}: ram_banks must be a non-empty list of banks")
        names = set()
        for i, b in enumerate(banks):
            if not isinstance(b, dict) or not isinstance(b.get("name"), str) or not b.get("name"):
                raise TargetError(f"{p}: ram_banks[{i}] needs a name")
            if b["name"] in names:
                raise TargetError(f"{p}: ram_banks: bank {b['name']!r} listed twice")
            names.add(b["name"])
            if not isinstance(b.get("bytes"), int) or b["bytes"] <= 0:
                raise TargetError(f"{p}: ram_banks {b['name']!r}: bytes must be a positive integer")
            if not isinstance(b.get("wait_states", 0), int) or b.get("wait_states", 0) < 0:
                raise TargetError(f"{p}: ram_banks {b['name']!r}: wait_states must be a non-negative integer")
    t["file"] = str(p)
    return t


def ram_total(target: dict) -> int:
    """All data RAM: the banks' sum, or ``ram_bytes``."""
    banks = target.get("ram_banks")
    return sum(b["bytes"] for b in banks) if banks else target["ram_bytes"]


def banks_for_plan(target: dict, stack_bytes: int, io_bytes: int):
    """The target's banks as :class:`memplan.Bank` (fastest first) with the room the arena may use: the stack
    reserved in the fastest bank, the caller's input / output buffers in the largest; None without banks."""
    from binaryhpe.compile.memplan import Bank

    raw = target.get("ram_banks")
    if not raw:
        return None
    order = sorted(range(len(raw)), key=lambda i: (raw[i].get("wait_states", 0), i))
    big = max(range(len(raw)), key=lambda i: (raw[i]["bytes"], -i))
    out = []
    for i in order:
        b = raw[i]
        room = b["bytes"] - (stack_bytes if i == order[0] else 0) - (io_bytes if i == big else 0)
        out.append(Bank(b["name"], max(0, room), b.get("wait_states", 0), b.get("origin", "")))
    return out


#: bytes of code per emitted layer function (arm-none-eabi-size of the tiny BiDRN's model.o, -O2 Thumb-2, Cortex-M7:
#: 13.7 KB of .text besides the constants for 67 layer functions (gathered windows, inlined straight-line dot
#: products, fused Epilogues), ~200 B each) and of the fixed part (run function, copy-out)
CODE_PER_LAYER = 200
CODE_FIXED = 512


def check_fit(cm, target: dict) -> dict:
    """Flash = weights + code estimate; RAM = arena + I/O buffers + stack estimate (with ``ram_banks``: every
    bank's arena within its room). Raises one error naming the shortfall and the largest tensor / weight set
    when the network does not fit."""
    from binaryhpe.compile.cbackend import largest

    code = CODE_FIXED + CODE_PER_LAYER * len(cm.steps)
    flash = cm.flash_data_bytes + code
    ram = cm.plan.peak + cm.io_bytes + cm.stack_bytes
    cap = ram_total(target)
    big = largest(cm)
    errs = []
    if flash > target["flash_bytes"]:
        errs.append(f"flash: needs {flash} B, has {target['flash_bytes']} B (short by "
                    f"{flash - target['flash_bytes']} B); the largest weight set is {big['weights']} "
                    f"({big['weight_bytes']} B)")
    over = dict(cm.plan.overflow)
    if ram > cap or over:
        where = f" (banks over their room: {', '.join(f'{k} by {v} B' for k, v in over.items())})" if over else ""
        errs.append(f"RAM: needs {ram} B (arena {cm.plan.peak} B + I/O {cm.io_bytes} B + stack "
                    f"{cm.stack_bytes} B), has {cap} B (short by {max(0, ram - cap)} B){where}; "
                    f"the largest tensor is {big['tensor']} ({big['tensor_bytes']} B)")
    if errs:
        raise TargetError(f"the network does not fit target {target['name']}: " + "; ".join(errs))
    return {"flash_bytes": flash, "ram_bytes": ram, "code_bytes": code}


def bank_linker_script(cm, target: dict) -> str:
    """A GNU ld script for the real part: code and constants in flash, each bank's arena section
    (``.bss.bhpe.<bank>``, NOLOAD) in its bank, .data / .bss / stack in the fastest bank."""
    from binaryhpe.compile.memplan import section_name

    banks = target.get("ram_banks") or []
    fast = min(range(len(banks)), key=lambda i: (banks[i].get("wait_states", 0), i))
    mem = [f"  FLASH (rx) : ORIGIN = {target.get('flash_origin', '0x08000000')}, LENGTH = {target['flash_bytes']}"]
    mem += [f"  {b['name'].upper()} (rw) : ORIGIN = {b.get('origin', '0')}, LENGTH = {b['bytes']}" for b in banks]
    secs = [f"  .bhpe_{b['name']} (NOLOAD) : {{ . = ALIGN(4); *({section_name(b['name'])}) }} > {b['name'].upper()}"
            for b in banks if cm.plan.bank_peak.get(b["name"])]
    fr = banks[fast]["name"].upper()
    return "\n".join([
        f"/* Generated by binaryhpe for {target['name']}: the arena over the RAM banks "
        f"({', '.join(f'{k} {v} B' for k, v in cm.plan.bank_peak.items())}). */",
        "MEMORY {", *mem, "}", "SECTIONS {",
        "  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) } > FLASH",
        *secs,
        f"  .data : {{ *(.data*) }} > {fr} AT > FLASH",
        f"  .bss (NOLOAD) : {{ *(.bss*) *(COMMON) }} > {fr}",
        f"  __stack_top = ORIGIN({fr}) + LENGTH({fr});",
        "}", ""])
