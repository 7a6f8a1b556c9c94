"""The MCU build (``binaryhpe build --target mcu:NAME``): the hardware graph as C for a microcontroller
(``compile/cbackend.py``), its fit and cycle model (``compile/mcu_targets.py``, ``compile/mcu_cycles.py``) and,
with ``sim``, the C run on the host and on the emulated core (the runners of ``sim/mcu.py``), every output
integer compared with the integer reference. Documented in docs/mcu.md."""

from __future__ import annotations

import json
import pathlib

import numpy as np

from binaryhpe.compile import cbackend, mcu_cycles, mcu_targets, memplan
from binaryhpe.sim.mcu import cross_build, host_build, host_run, qemu_run


def test_frames(g, n_random: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Random frames over the input format's full range (0/1 for a bipolar input) plus the extremes (min, max,
    zero)."""
    info = g.tensors[g.input]
    if info.fmt.bipolar:  # bits: 1 = +1, 0 = -1
        lo, hi = 0, 1
    elif info.fmt.signed:
        lo, hi = -(1 << (info.fmt.bits - 1)), (1 << (info.fmt.bits - 1)) - 1
    else:
        lo, hi = 0, (1 << info.fmt.bits) - 1
    rng = np.random.default_rng(seed)
    xs = [rng.integers(lo, hi + 1, size=info.shape) for _ in range(n_random)]
    xs += [np.full(info.shape, lo), np.full(info.shape, hi), np.zeros(info.shape, dtype=np.int64)]
    return [x.astype(np.int64) for x in xs]


#: tile heights (output rows of the region's last tensor a band) the planner tries
TILE_ROWS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


def _fits(cm, target: dict) -> bool:
    try:
        mcu_targets.check_fit(cm, target)
    except mcu_targets.TargetError:
        return False
    return True


def plan_for_target(g, target: dict, tiling: memplan.Tiling | None = None):
    """The C of ``g`` for ``target``: buffers over the target's RAM banks (if it lists them); when the whole-frame
    plan does not fit the RAM, the early part of the schedule runs tiled: among the regions that start at the
    first step and end at any later step of row-local kinds (not the last), and the tile heights of
    ``TILE_ROWS``, the one that fits with the fewest predicted cycles (halo recomputation counted), fewer bands
    on a tie. ``tiling`` forces one."""
    cm0 = cbackend.analyze(g)
    banks = mcu_targets.banks_for_plan(target, cm0.stack_bytes, cm0.io_bytes)
    if tiling is not None:
        return cbackend.generate(g, tiling=tiling, banks=banks)
    cm = cbackend.analyze(g, banks=banks)
    if _fits(cm, target):
        return cbackend.generate(g, banks=banks)
    best = None
    by_name = {lay.name: lay for lay in g.layers}
    for end in range(len(cm0.steps) - 1):
        if not memplan.tileable(by_name.get(cm0.steps[end])):
            break
        ref_h = cm0.storage[cm0.step_io[cm0.steps[end]][1][0]].h
        for rows in TILE_ROWS:
            if rows >= ref_h:
                break
            try:
                cmt = cbackend.analyze(g, memplan.Tiling(0, end, rows), banks)
            except memplan.TilingError:
                break
            if not _fits(cmt, target):
                continue
            cyc = mcu_cycles.predict(cmt, target)["cycles"]
            key = (cyc, len(cmt.tiling.bands))
            if best is None or key < best[0]:
                best = (key, end, rows)
    if best is None:
        return cbackend.generate(g, banks=banks)  # check_fit names the shortfall of the untiled plan
    return cbackend.generate(g, tiling=memplan.Tiling(0, best[1], best[2]), banks=banks)


def bank_report(cm, target: dict) -> dict:
    """Bytes of the arena in each RAM bank (the one arena as ``arena`` when the target lists no banks), with
    the stack and the caller's I/O buffers where ``banks_for_plan`` reserves them."""
    raw = target.get("ram_banks")
    if not raw:
        return {"arena": {"bytes": cm.plan.peak, "capacity": target["ram_bytes"]}}
    banks = mcu_targets.banks_for_plan(target, cm.stack_bytes, cm.io_bytes)
    cap = {b["name"]: b["bytes"] for b in raw}
    out = {}
    for i, b in enumerate(banks):
        out[b.name] = {"bytes": cm.plan.bank_peak.get(b.name, 0), "capacity": cap[b.name],
                       "wait_states": b.wait_states, "reserved": cap[b.name] - b.bytes if cap[b.name] >= b.bytes else 0}
    return out


def build_mcu(g, out_dir, target_name: str, sim: bool = False, frames: list[np.ndarray] | None = None,
              seed: int = 0, extra_frames: list[np.ndarray] | None = None, tiling=None) -> dict:
    """``binaryhpe build [MODEL] --target mcu:NAME -o OUT [--sim]``: write OUT/c/ and return the report.

    ``extra_frames`` (integer input frames, H x W x C: a user's ``--inputs``) run after the test frames and are
    checked the same way; the target's (QEMU) outputs of them come back as ``report["user_outputs"]`` (integer
    arrays; the caller takes them out before the report is written anywhere else).

    Raises ``BinaryHPEError`` (one clear message) for an unknown target, a network that does not fit the
    target, or (with ``sim``) a missing cross toolchain. The caller exits non-zero when ``sim`` and
    ``report["bit_exact"]`` is false.
    """
    out_dir = pathlib.Path(out_dir)
    target = mcu_targets.load_target(target_name)
    cm = plan_for_target(g, target, tiling)
    c_dir = cbackend.write(cm, out_dir / "c")
    if target.get("ram_banks"):
        (c_dir / "bhpe_banks.ld").write_text(mcu_targets.bank_linker_script(cm, target))
    fit = mcu_targets.check_fit(cm, target)  # raises when it does not fit
    pred = mcu_cycles.predict(cm, target)
    report = {"target": target["name"], "core": target["core"], "clock_hz": target["clock_hz"],
              "flash_bytes": fit["flash_bytes"], "ram_bytes": fit["ram_bytes"],
              "flash_capacity": target["flash_bytes"], "ram_capacity": target["ram_bytes"],
              "arena_bytes": cm.plan.peak, "naive_arena_bytes": cm.plan.naive,
              "arena_lower_bound_bytes": cm.plan.lower_bound, "weights_bytes": cm.flash_data_bytes,
              "code_bytes_estimate": fit["code_bytes"], "stack_bytes_estimate": cm.stack_bytes,
              "io_bytes": cm.io_bytes,
              "predicted_cycles_per_frame": pred["cycles"], "predicted_instructions_per_frame": pred["instructions"],
              "predicted_ms_per_frame": round(1e3 * pred["cycles"] / target["clock_hz"], 3),
              "ram_banks": bank_report(cm, target), "tiling": cm.tiling.report(cm) if cm.tiling else None,
              "cycle_model": pred["model"], "c_dir": str(c_dir),
              "layers": [dict(m, **p) for m, p in zip(cbackend.layer_memory(cm), pred["layers"])],
              "bit_exact": None, "instructions_per_frame": None}
    if sim:
        xs = list(frames if frames is not None else test_frames(g, seed=seed))
        n_test = len(xs)
        xs += [np.asarray(x, dtype=np.int64) for x in (extra_frames or [])]
        refs = [g.execute(x)[g.output] for x in xs]
        exe = host_build(c_dir, out_dir / "host_model")
        got = host_run(exe, xs, g.tensors[g.output].shape)
        host_bad = sum(int(np.count_nonzero(a != b)) for a, b in zip(got, refs))
        cb = cross_build(c_dir, target, xs, cm.storage[g.input].ctype, out_dir / "qemu")
        # QEMU runs some 10-100 M guest instructions a second here: allow for the slowest
        qr = qemu_run(cb["elf"], target, g.tensors[g.output].shape,
                      timeout=300 + pred["instructions"] * len(xs) / 5e6)
        tgt_bad = sum(int(np.count_nonzero(a != b)) for a, b in zip(qr["outputs"], refs)) \
            if len(qr["outputs"]) == len(refs) else -1
        meas = qr["instructions"][0]
        report.update({
            "bit_exact": host_bad == 0 and tgt_bad == 0,
            "bit_exact_host": host_bad == 0, "bit_exact_target": tgt_bad == 0,
            "mismatches": {"host": host_bad, "target": tgt_bad}, "frames": len(xs),
            "instructions_per_frame": int(round(meas)),
            "instructions_note": "QEMU -icount instruction count (QEMU is not cycle-accurate)",
            "target_code_size": cb["lib_size"], "qemu_command": qr["command"],
        })
        for row, n in zip(report["layers"], qr["layer_instructions"][0]):
            row["measured_instructions"] = int(round(n))
        if extra_frames is not None:
            report["user_outputs"] = qr["outputs"][n_test:]
    (out_dir / "report.json").write_text(json.dumps({k: v for k, v in report.items() if k != "user_outputs"},
                                                    indent=1))
    return report
