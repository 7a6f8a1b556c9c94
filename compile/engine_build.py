"""The engine build (``binaryhpe build --arch engine``): the hardware graph as a program for the layer-sequential
engine (``compile/engine``: engine ops, DRAM layout, descriptors, cycle model; ``hw/rtl/engine``: the RTL;
``sim/engine.py``: Verilator with a C++ DRAM model). Documented in docs/engine.md.

The steps (``compile.flow.ENGINE_STEPS``) are: export -> lower -> [frames] -> fuse (the pass list up to the
epilogue fusion: the engine has no streams, so no forks, folding, lanes or FIFOs) -> program (``OUT/engine/``:
``descriptors.bin``, ``dram.bin``, ``program.json``) -> [simulate] -> report (with the device keys).
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from binaryhpe import BinaryHPEError


def _log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def engine_config(dev):
    """The engine's parameters for ``dev`` (None: the defaults, sized for an ECP5-85F)."""
    from binaryhpe.compile.engine import EngineConfig

    return EngineConfig.for_device(dev) if dev is not None else EngineConfig()


def write_program(program, cfg, out: pathlib.Path) -> dict:
    """``OUT/engine/``: the descriptor stream, the DRAM image (descriptors, constants, weights; tensors zero), a
    JSON description of the ops and the DRAM layout, and ``host.txt`` for the C host runtime. Returns the paths."""
    d = out / "engine"
    d.mkdir(parents=True, exist_ok=True)
    (d / "descriptors.bin").write_bytes(bytes(program.descriptors))
    (d / "dram.bin").write_bytes(bytes(program.image))
    desc = program.describe() if hasattr(program, "describe") else {}
    (d / "program.json").write_text(json.dumps({"rtl_params": cfg.rtl_params(), **desc}, indent=1, default=str))
    from binaryhpe.compile.host.program import write_host_header

    host = write_host_header(program, d)  # host.txt: what the C host runtime's loader reads (docs/host.md)
    return {"dir": str(d), "descriptors": str(d / "descriptors.bin"), "dram_image": str(d / "dram.bin"),
            "program": str(d / "program.json"), "host_header": str(host)}


def layer_rows(model_rows: list[dict], measured: dict | None = None) -> list[dict]:
    """The report's ``layers``: the cycle model's row of each engine op, with the measured cycles where a
    simulation ran (``measured``: layer index -> cycles)."""
    rows = []
    for i, r in enumerate(model_rows):
        row = dict(r)
        if measured is not None:
            row["measured_cycles"] = measured.get(i)
        rows.append(row)
    return rows


def measured_layer_cycles(layer_starts: list, total: int) -> dict:
    """Cycles of each layer from the simulation's layer-start events (the last layer ends at ``total``)."""
    out = {}
    for k, (lid, cyc) in enumerate(layer_starts):
        end = layer_starts[k + 1][1] if k + 1 < len(layer_starts) else total
        out[int(lid)] = int(end - cyc)
    return out


def print_layer_errors(model_rows: list[dict], measured: dict, label: str = "layer", width: int = 44) -> float:
    """Print each engine op's modelled and measured cycles and their error (a table); returns the worst |error|
    over the ops that were measured."""
    print(f"{'#':>3s} {label:{width}s} {'model':>12s} {'measured':>12s} {'error':>8s}")
    worst = 0.0
    for i, row in enumerate(model_rows):
        m = measured.get(i)
        err = (m / row["cycles"] - 1) if m and row["cycles"] else float("nan")
        worst = max(worst, abs(err)) if m else worst
        print(f"{i:3d} {str(row['name'])[-width:]:{width}s} {row['cycles']:12,} {m if m is not None else '-':>12} "
              f"{err:+8.1%}")
    return worst


def simulate_engine(g, mw, program, cfg, out: pathlib.Path, seed: int = 0, frames: int = 2,
                    user_frames=None, stalls=(0.0, 0.3)) -> dict:
    """Run the engine RTL (Verilator, C++ DRAM model) on random and worst-case frames, without and with random
    stalls on every AXI channel, and compare every output integer with the exact reference of the QONNX graph
    (``compile.reference.check_frames``: the compiler's integer reference must first equal the exact float64
    QONNX execution on every tensor). The cycles of the first frame without stalls are the measured
    cycles/frame; the per-layer cycles come from the engine's layer-start events."""
    from binaryhpe.compile.engine import run_model
    from binaryhpe.compile.frames import reference_frames
    from binaryhpe.sim.engine import build_engine, run_engine

    named, chk = reference_frames(g, mw, seed, frames, user_frames)
    ins, refs = chk["inputs"], chk["outputs"]
    _log(f"reference: {chk['frames_checked']} frames, compiler reference vs exact QONNX reference: "
         f"{len(chk['mismatching_frames'])} frames differ")
    exe = build_engine(cfg.rtl_params(), out / "engine" / "sim")
    runs, outputs, layer_cycles = [], None, None
    model_bad = 0
    for stall in stalls:
        bad, cycles, outs = 0, [], []
        for i, q in enumerate(ins):
            img = bytearray(program.image)
            program.write_input(img, q)
            if stall == stalls[0]:  # the golden model of the descriptors, on the same image
                model_bad += int(np.count_nonzero(program.read_output(run_model(program, bytearray(img))) != refs[i]))
            r = run_engine(exe, img, program.desc_addr, stall_prob=stall, seed=seed + 17 * i + 1,
                           latency=cfg.dram_latency, beats_per_cycle=cfg.dram_beats_per_cycle)
            y = program.read_output(r.dram)
            outs.append(y)
            bad += int(np.count_nonzero(y != refs[i]))
            cycles.append(r.cycles)
            if stall == stalls[0] and i == 0:
                layer_cycles = measured_layer_cycles(r.layer_starts, r.cycles)
        if outputs is None:
            outputs = outs
        runs.append({"stall": stall, "mismatches": bad, "frames": len(ins), "cycles_per_frame": cycles})
        _log(f"engine simulation, stall probability {stall}: {len(ins)} frames, {bad} mismatching integers, "
             f"cycles/frame {cycles}")
    ref_ok = not chk["mismatching_frames"]
    return {"bit_exact": ref_ok and model_bad == 0 and all(r["mismatches"] == 0 for r in runs),
            "reference": chk["reference"], "frames_checked": chk["frames_checked"],
            "reference_vs_qonnx": {"exact": ref_ok, "mismatching_frames": chk["mismatching_frames"],
                                   "frames_beyond_float32": chk["frames_beyond_float32"]},
            "model_mismatches": model_bad, "runs": runs, "frame_names": list(named),
            "cycles_per_frame": runs[0]["cycles_per_frame"][0], "layer_cycles": layer_cycles,
            "outputs": outputs}


def engine_report(report: dict, program, cfg, dev, out: pathlib.Path, bitstream: bool = False) -> dict:
    """The ``--arch engine`` keys of ``report.json``: ``arch``, ``predicted_cycles_per_frame``, ``layers``,
    ``dram_bytes_per_frame``, ``roofline_fraction``, ``device``, ``resources``, ``fps``, ``bitstream``,
    ``fmax_mhz`` (the last two with ``bitstream``), ``engine`` (the configuration and where its files are)."""
    from binaryhpe.compile.engine import cycle_model, roofline
    from binaryhpe.compile.engine.resources import engine_resources

    cm = cycle_model(program, cfg)
    rf = roofline(program, cfg, cm)
    measured = (report.get("simulation") or {}).get("layer_cycles")
    report["arch"] = "engine"
    report["predicted_cycles_per_frame"] = cm["total"]["cycles"]
    report["layers"] = layer_rows(cm["layers"], measured)
    report["dram_bytes_per_frame"] = cm["total"]["dram_read_bytes"] + cm["total"]["dram_write_bytes"]
    report["roofline"] = rf
    report["roofline_fraction"] = rf["fraction"]
    report["device"] = dev.to_dict() if dev is not None else None
    family = dev.family if dev is not None else "ecp5"
    report["resources"] = engine_resources(cfg, family)
    if dev is not None:  # the engine's estimate against the device: what a user must see before a synthesis run
        util = {k: report["resources"][k] / getattr(dev, k) for k in ("lut", "ff", "bram18", "dsp")
                if getattr(dev, k, 0) and k in report["resources"]}
        report["utilisation"] = util
        report["fits"] = all(v <= 1.0 for v in util.values())
        if not report["fits"]:
            over = ", ".join(f"{k} {v:.0%}" for k, v in util.items() if v > 1.0)
            _log(f"WARNING: the engine as configured for {dev.name} does not fit it by the resource model: {over}")
    clock = dev.clock_mhz if dev is not None else cfg.clock_mhz
    report["fps"] = clock * 1e6 / cm["total"]["cycles"] if dev is not None else None
    report["bitstream"], report["fmax_mhz"] = None, None
    if bitstream:
        from binaryhpe.compile.engine.resources import engine_bitstream

        b = engine_bitstream(cfg, out / "bitstream", device=dev)
        report["bitstream"], report["fmax_mhz"], report["pnr"] = b["bitstream"], b["fmax_mhz"], b
    if dev is not None and dev.vendor == "xilinx":
        from binaryhpe.compile.vivado import write_engine_ip_project

        report["vivado"] = write_engine_ip_project(out / "vivado", dev, cfg)["tcl"]
        report["vivado_system"] = zynq_system(out, dev, cfg)
    if report.get("cycles_per_frame") and cm["total"]["cycles"]:
        report["cycle_model_error"] = report["cycles_per_frame"] / cm["total"]["cycles"] - 1.0
    return report


def zynq_system(out: pathlib.Path, dev, cfg) -> dict | None:
    """On a Zynq device, the Vivado project of the engine in a system with the processing system and its DDR
    (``compile.vivado.engine_system_project``; generated, not run here); None on other devices."""
    from binaryhpe.compile.vivado import engine_system_project, zynq_family

    if zynq_family(dev) is None:
        return None
    sysp = engine_system_project(out / "vivado_system", dev, cfg)
    _log(sysp["note"])
    return sysp


def check_engine_options(opts) -> None:
    """Flags of ``binaryhpe build`` that belong to the dataflow design are refused with ``--arch engine``."""
    bad = [f for f, v in (("folding", opts.folding_file), ("target-cycles", opts.target_cycles),
                          ("fps", opts.fps), ("waves", opts.waves), ("synth", opts.synth)) if v]
    if bad:
        raise BinaryHPEError(f"--{bad[0]} belongs to --arch dataflow; the engine is sized by --device "
                             "(compile.engine.config.EngineConfig.for_device)")
    if opts.backend != "rtl" or opts.target != "fpga":
        raise BinaryHPEError("--arch engine builds the engine RTL for an FPGA; it cannot be combined with "
                             f"--backend {opts.backend} / --target {opts.target}")
