"""The build flow: a named list of steps over one build state (FINN's builder idea).

Each step is a function ``(BuildState) -> BuildState`` with a name; :func:`run_flow` runs a list of them,
prints ``[build] step i/n name ...`` and records each step's time (``report.json`` key ``steps``). The flows:

- ``binaryhpe build`` (RTL, :data:`FPGA_STEPS`): export -> lower -> [frames] -> optimize -> fold -> storage ->
  hwgraph -> rtl -> [simulate] -> report -> device;
- ``--target mcu:NAME`` (:data:`MCU_STEPS`): export -> lower -> [frames] -> optimize -> fold -> mcu;
- ``--backend hls4ml|finn`` (:data:`BACKEND_STEPS`): export -> lower -> [frames] -> optimize -> fold -> hwgraph
  -> backend.

``frames`` runs with ``--inputs FRAMES.npy`` (a user's frames, checked against the QONNX input first); each flow
then simulates them after its own frames and writes their outputs to ``OUT/outputs.npy`` (compile/frames.py).

The QONNX file is lowered once per build (``lower``); ``optimize`` runs the standard pass list
(``compile.passes.standard_passes``) up to folding, and ``fold`` runs the rest of it, either at the build's
target or, with a device, inside the device-aware folding search (``compile.folding``) on the same graph.
"""

from __future__ import annotations

import json
import math
import pathlib
import shutil
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.devices import load_device
from binaryhpe.compile.estimate import estimate, predicted_cycles  # noqa: F401 - predicted_cycles: public here too
from binaryhpe.compile.folding import fold_for_device
from binaryhpe.compile.graph import HwGraph
from binaryhpe.compile.passes import folding_passes, load_folding, prepare_passes
from binaryhpe.compile.report import write_engine_reports, write_reports
from binaryhpe.compile.storage import apply_storage, plan_storage


def _log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------------------
# the build state and the step runner


@dataclass
class BuildOptions:
    """What ``binaryhpe build`` was asked for (the command-line flags)."""

    sim: bool = False
    seed: int = 0
    folding_file: str | None = None
    target_cycles: int | None = None
    waves: bool = False
    device: object = None
    fps: object = None
    bitstream: bool = False
    synth: object = False
    target: str = "fpga"
    backend: str = "rtl"
    backend_options: dict = field(default_factory=dict)
    inputs: str | None = None  # --inputs FRAMES.npy: a user's frames to simulate too (compile/frames.py)
    arch: str = "dataflow"  # --arch: "dataflow" (a hardware layer per layer) or "engine" (compile/engine_build.py)


@dataclass
class BuildState:
    """Everything a build knows, handed from step to step."""

    model: str
    out: pathlib.Path
    opts: BuildOptions = field(default_factory=BuildOptions)
    qonnx: pathlib.Path | None = None
    export_check: dict | None = None
    mw: object = None  # the QONNX ModelWrapper of the hardware region (lowered once; the whole model when no
    #                    node stays on the host)
    partition: object = None  # compile.partition.HostPartition: host pre / hardware region / host post
    g: HwGraph | None = None  # the hardware graph: unfolded after "optimize", folded after "fold"
    dev: object = None  # the target Device (None: device-free)
    folding: dict | None = None  # the user's --folding overrides
    fold_estimate: dict | None = None  # the device-aware folding's estimate
    streamed: list = field(default_factory=list)  # MVUs whose weights stream from DRAM
    engine_cfg: object = None  # --arch engine: the engine's parameters (compile.engine.EngineConfig)
    program: object = None  # --arch engine: the compiled engine program (compile.engine.compile_program)
    rtl: pathlib.Path | None = None
    simulation: dict | None = None
    user_frames: np.ndarray | None = None  # the --inputs frames (float32, N x the QONNX input without batch)
    host_frames: dict | None = None  # with host nodes: frames of the full input and their hardware-region frames
    report: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)  # [{"name", "seconds"}] of the steps run so far
    t0: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[BuildState], BuildState]
    #: the step runs only when this holds for the state (None: always)
    when: Callable[[BuildState], bool] | None = None


def run_flow(steps: list[Step], state: BuildState) -> BuildState:
    """Run the steps that apply to ``state`` in order, with a progress line and the time of each."""
    todo = [s for s in steps if s.when is None or s.when(state)]
    for i, step in enumerate(todo, 1):
        _log(f"step {i}/{len(todo)} {step.name} ...")
        t = time.time()
        state = step.run(state)
        state.steps.append({"name": step.name, "seconds": round(time.time() - t, 2)})
    return state


# ---------------------------------------------------------------------------------------------------------
# helpers the steps use (public: tests, benchmarks and the notebook call them too)


def step_params_ops(net, x, name: str) -> dict:
    """Params / OPs of the (float-mode) model by the paper's convention, printed as a table."""
    from binaryhpe.train.opcount import count, format_table

    rep = count(net, (x,))
    print(format_table(f"Params / OPs of {name} (Params_b/32 + Params_f, OPs_b/64 + OPs_f)", rep), flush=True)
    return {"params_m": rep.params_m, "ops_g": rep.ops_g}


def step_model_to_qonnx(model: str, out: pathlib.Path, seed: int) -> tuple[pathlib.Path, dict | None]:
    """A QONNX file given by path is used as is; a built-in name is built, frozen and exported."""
    p = pathlib.Path(model)
    if p.suffix == ".onnx" or p.exists():
        if not p.is_file():
            raise BinaryHPEError(f"QONNX file not found: {p}")
        dst = out / "model.onnx"
        if p.resolve() != dst.resolve():
            shutil.copyfile(p, dst)
        return dst, None
    from binaryhpe.train.export import check_export, export_qonnx
    from binaryhpe.train.hardware import to_hardware
    from binaryhpe.train.models import build_model

    net, x = build_model(model, seed=seed)
    params_ops = step_params_ops(net, x, model)
    to_hardware(net)
    path = export_qonnx(net, x, out / "model.onnx")
    check = check_export(net, path, x)
    check["params_ops"] = params_ops
    _log(f"QONNX check vs PyTorch hardware mode: {check['mismatches']} mismatches in {check['elements']} elements")
    if check["mismatches"]:
        raise BinaryHPEError(f"{path}: QONNX execution differs from PyTorch on {check['mismatches']} elements")
    return path, check


def lower_once(qonnx: pathlib.Path) -> tuple[HwGraph, object]:
    """Load a QONNX file, cut off what stays on the host (``compile.partition``), lower the hardware region (the
    one lowering of a build) and run the passes before folding; returns the graph and the region's model."""
    from binaryhpe.compile.lower import load_qonnx
    from binaryhpe.compile.partition import partition_host

    p = partition_host(load_qonnx(qonnx), source=str(pathlib.Path(qonnx).name))
    return prepare_passes(p.lowered), p.hw


def step_lower(qonnx: pathlib.Path, target_cycles=None, folding=None, device=None, fps=None) -> tuple[HwGraph, object]:
    """The build's ``lower``, ``optimize`` and ``fold`` steps (the device-aware folding with ``device``): the
    folded hardware graph and the QONNX model."""
    q = pathlib.Path(qonnx)
    s = BuildState(model=str(q), out=q.parent, opts=BuildOptions(target_cycles=target_cycles, fps=fps), qonnx=q,
                   folding=folding, dev=load_device(device) if device is not None else None)
    s = run_steps_quiet([LOWER, OPTIMIZE, FOLD], s)
    return s.g, s.mw


def run_steps_quiet(steps: list[Step], state: BuildState) -> BuildState:
    """Run ``steps`` without progress lines (a helper inside another flow)."""
    for step in steps:
        if step.when is None or step.when(state):
            state = step.run(state)
    return state


def layer_table(g: HwGraph) -> list[dict]:
    rows = []
    for lay in g.layers:
        info = g.tensors[lay.outputs[0]]
        fold = lay.folding()
        c = lay.cycles()
        rows.append({"name": lay.name, "kind": type(lay).__name__, "module": lay.rtl_module,
                     "shape": list(info.shape), "format": str(info.fmt), "folding": fold,
                     "cycles": int(c["ii"]), "latency": int(c["latency"])})
    return rows


def format_table(rows: list[dict], limit: int | None = None) -> str:
    head = f"{'layer':34s} {'kind':14s} {'shape (HxWxC)':>14s} {'format':>10s} {'folding':>18s} {'cycles':>8s}"
    lines = [head, "-" * len(head)]
    for r in rows[:limit]:
        fold = ",".join(f"{k}={v}" for k, v in r["folding"].items())
        shape = "x".join(str(s) for s in r["shape"])
        lines.append(f"{r['name'][:34]:34s} {r['kind']:14s} {shape:>14s} {r['format']:>10s} {fold:>18s} {r['cycles']:8d}")
    if limit and len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more layers in report.json")
    return "\n".join(lines)


def format_engine_table(rows: list[dict], limit: int | None = None) -> str:
    """The ``--arch engine`` layer table: one row per engine op (descriptor)."""
    head = f"{'#':>3s} {'layer':40s} {'mode':10s} {'compute':>10s} {'DRAM B':>10s} {'model cyc':>10s} {'measured':>10s}"
    lines = [head, "-" * len(head)]
    for i, r in enumerate(rows[:limit]):
        dram = (r.get("dram_read_bytes") or 0) + (r.get("dram_write_bytes") or 0)
        meas = r.get("measured_cycles")
        lines.append(f"{i:3d} {str(r.get('name', ''))[-40:]:40s} {str(r.get('mode', '')):10s} "
                     f"{r.get('compute_cycles') or 0:10,d} {dram:10,d} {r.get('cycles') or 0:10,d} "
                     f"{meas if meas is not None else '-':>10}")
    if limit and len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more engine ops in report.json")
    return "\n".join(lines)


def step_rtl(g: HwGraph, out: pathlib.Path) -> pathlib.Path:
    from binaryhpe.compile.rtlgen import generate, rtl_library

    rtl = out / "rtl"
    generate(g, rtl)
    lib = rtl / "lib"
    lib.mkdir(exist_ok=True)
    for f in rtl_library():
        shutil.copyfile(f, lib / f.name)
    return rtl


def step_simulate(g: HwGraph, mw, rtl: pathlib.Path, seed: int, frames: int = 3, waves: bool = False,
                  user_frames=None) -> dict:
    """Whole-network simulation: random frames and the worst-case frames of ``compile.worstcase`` (truly
    saturating, accumulator extremes), without and with random stalls. Every frame is checked first: the
    compiler's integer reference must equal the exact reference of the QONNX graph (``compile.reference``,
    float64) on every tensor; then every simulated output integer must equal the integer reference.

    ``user_frames`` (``--inputs``: float frames in the QONNX input's layout without the batch dimension) are
    checked and simulated after those; their integers come from the graph's own input quantizer
    (``compile.frames.quantize``, which must equal the QONNX Quant's output) and the simulated outputs of them
    (no stalls) are returned as ``user_outputs``."""
    from binaryhpe.compile.frames import reference_frames
    from binaryhpe.sim import netsim

    named, chk = reference_frames(g, mw, seed, frames, user_frames)
    _log(f"reference: {chk['frames_checked']} frames, compiler reference vs exact QONNX reference: "
         f"{len(chk['mismatching_frames'])} frames differ ({chk['frames_beyond_float32']} beyond float32)")
    ins, refs = chk["inputs"], chk["outputs"]
    exe = netsim.build(rtl, sorted((rtl / "lib").glob("*.sv")), waves=waves)
    runs, user_outputs = [], None
    for stall in (0.0, 0.3):
        r = netsim.simulate(g, exe, rtl, ins, stall_in=stall, stall_out=stall, seed=seed + 1,
                            waves=str(rtl / "waves.fst") if (waves and stall == 0.0) else None)
        if user_outputs is None:
            user_outputs = r["outputs"][len(named):]
        bad = sum(int(np.count_nonzero(a != b)) for a, b in zip(r["outputs"], refs))
        runs.append({"stall": stall, "mismatches": bad, "total_cycles": r["total_cycles"],
                     "latency_cycles": r["latency_cycles"], "ii_cycles": r.get("ii_cycles"),
                     "sim_cycles_per_s": round(r["cycles_per_second"])})
        _log(f"simulation, stall probability {stall}: {len(ins)} frames, {bad} mismatching integers, "
             f"{r['total_cycles']} cycles ({r['cycles_per_second'] / 1e3:.0f}k cycles/s)")
    ref_ok = not chk["mismatching_frames"]
    return {"bit_exact": all(r["mismatches"] == 0 for r in runs) and ref_ok,
            "reference": chk["reference"], "frames_checked": chk["frames_checked"],
            "reference_vs_qonnx": {"frames_checked": chk["frames_checked"], "exact": ref_ok,
                                   "mismatching_frames": chk["mismatching_frames"],
                                   "frames_beyond_float32": chk["frames_beyond_float32"],
                                   "max_bits": chk["max_bits"]},
            "runs": runs, "frames": len(ins), "frame_names": list(named),
            **({"user_outputs": user_outputs} if user_frames is not None else {})}


# ---------------------------------------------------------------------------------------------------------
# device options (the report keys of --device / --fps / --bitstream / --synth)


def _json_safe(o):
    if isinstance(o, dict):
        return {k: _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    return o


#: the device of ``binaryhpe build --bitstream`` without ``--device``
DEFAULT_BITSTREAM_DEVICE = "ecp5-85f"


def build_device(device=None, bitstream: bool = False):
    """The device a build targets: ``device``; with ``bitstream`` and no device, ECP5-85F; a bitstream for
    a Xilinx device is an error (those get a Vivado project)."""
    dev = load_device(device) if device is not None else None
    if bitstream:
        if dev is None:
            dev = load_device(DEFAULT_BITSTREAM_DEVICE)
        elif dev.family != "ecp5":
            raise BinaryHPEError(f"--bitstream runs the open ECP5 flow; {dev.name} is a {dev.family} part (its "
                                 "build writes a Vivado project instead: drop --bitstream, or use --device "
                                 "ecp5-25f / ecp5-85f)")
    return dev


def build_folding(qonnx, device=None, fps=None, bitstream: bool = False, folding: dict | None = None):
    """The folding overrides a build with these options uses (for callers outside the flow): None without a
    device (the default folding, or ``folding`` as is); with a device the device-aware folding for ``fps``
    (default: as fast as fits), the user's per-layer overrides winning."""
    from binaryhpe.compile.folding import folding_of

    dev = build_device(device, bitstream)
    if dev is None:
        if fps is not None:
            raise BinaryHPEError("--fps needs --device (the frame rate is counted at the device's clock)")
        return folding
    g0, _ = lower_once(pathlib.Path(qonnx))
    g, _ = _device_fold(g0, dev, fps, folding)
    return folding_of(g)


def _device_fold(g0: HwGraph, dev, fps, overrides):
    g, est = fold_for_device(g0, dev, "max" if fps is None else fps, overrides)
    if not est["fits"]:
        over = ", ".join(f"{k} {est['utilisation'][k]:.0%}" for k in est["over"])
        raise BinaryHPEError(f"the design does not fit {dev.name} even at the slowest folding: {over}")
    _log(f"{dev.name}: folded for {'as fast as fits' if fps is None else f'{fps:g} fps'}: "
         f"{est['fps']:.1f} fps estimated ({est['bound']} bound)")
    return g, est


def apply_device_options(report: dict, g: HwGraph, out_dir, device=None, fps=None, bitstream=False,
                         synth=False) -> dict:
    """Add the device keys of the ``binaryhpe build`` contract to ``report`` and write the readable reports.

    - ``device``: the device description (None without ``--device``: the estimate is then device-free);
    - ``resources``: estimated ``lut``, ``ff``, ``bram18``, ``dsp`` (``uram`` too) of ``g`` as built;
    - ``fps``: estimated frames/s at the device clock (None without a device), ``fps_target``;
    - ``estimate``: per-layer rows, utilisation, roofline;
    - ``synth``: Yosys counts of the whole design (``synth=True``, or from the ECP5 run with ``bitstream``);
      ``synth="layers"`` also synthesizes each distinct layer configuration (``synth_layers``: the
      per-layer "synthesized" columns of the report; minutes for a whole BiDRN);
    - ``bitstream``, ``fmax_mhz``, ``timing`` (``compile.bitstream.timing_summary``), ``pnr``, ``fps_at_fmax``,
      ``timing_met``: with ``bitstream=True`` (ECP5
      devices; default ecp5-85f); ``fps_at_fmax`` is the estimate at min(fmax, device clock).
    Writes ``OUT/report.json``, ``OUT/report.md`` and ``OUT/report.html``. ``g`` is the graph the RTL was
    generated from (``OUT/rtl``)."""
    out = pathlib.Path(out_dir)
    dev = build_device(device, bitstream)
    storage = plan_storage(g, dev) if dev else {}
    est = estimate(g, dev, storage)
    report["device"] = dev.to_dict() if dev else None
    report["resources"] = {k: est["totals"][k] for k in ("lut", "ff", "bram18", "dsp", "uram")}
    report["fps"] = est.get("fps")
    report["fps_target"] = fps
    report["estimate"] = est
    rom_in_rtl = [r["name"] for r in est["layers"] if r["weights"] == "dram" and not g.layer(r["name"]).streamed]
    if rom_in_rtl:
        report["estimate_note"] = (f"{len(rom_in_rtl)} layer(s) ({', '.join(rom_in_rtl[:3])}"
                                   f"{', ...' if len(rom_in_rtl) > 3 else ''}) stream their weights from DRAM in this "
                                   "estimate but keep a ROM in the generated RTL (estimate.apply_storage before "
                                   "the RTL is generated gives them weight ports)")
    rtl = out / "rtl"
    if synth:
        from binaryhpe.compile.synth import synth_design, synth_distinct_layers

        fam = "ecp5" if (dev and dev.vendor == "lattice") else "xilinx"
        report["synth"] = synth_design(rtl, family=fam)
        if synth == "layers":
            report["synth_layers"] = synth_distinct_layers(g, fam, out / "synth_layers")
    if bitstream:
        from binaryhpe.compile.bitstream import build_bitstream

        b = build_bitstream(rtl, out / "bitstream", device=dev)
        report["bitstream"] = b["bitstream"]
        report["fmax_mhz"] = b["fmax_mhz"]
        report["timing"] = b["timing"]  # fmax, the critical path's ends and its logic / routing split
        report["pnr"] = b
        if b["fmax_mhz"] and est.get("fps_compute"):
            # the placed design's own rate: the compute bound scales with the clock it reaches, DRAM does not
            clk = min(b["fmax_mhz"], b["clock_mhz"])
            report["fps_at_fmax"] = min(est["fps_compute"] * clk / b["clock_mhz"], est["fps_memory"])
            report["timing_met"] = b["fmax_mhz"] >= b["clock_mhz"]
        report.setdefault("synth", b.get("synth"))
    if dev is not None and dev.vendor == "xilinx" and rtl.is_dir():
        from binaryhpe.compile.vivado import write_vivado_project

        report["vivado"] = write_vivado_project(rtl, out / "vivado", dev, g)["tcl"]
    report = _json_safe(report)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    write_reports(report, out)
    return report


# ---------------------------------------------------------------------------------------------------------
# the steps


def _export(s: BuildState) -> BuildState:
    s.qonnx, s.export_check = step_model_to_qonnx(s.model, s.out, s.opts.seed)
    return s


def _lower(s: BuildState) -> BuildState:
    """Load the QONNX, cut off the host parts (``compile.partition.partition_host``: the float pre-processing
    before the first activation quantizer and the float tail after the last tensor the hardware maps exactly)
    and lower the hardware region; with host nodes the region is also written to ``OUT/hw_region.onnx``."""
    from binaryhpe.compile.lower import load_qonnx
    from binaryhpe.compile.partition import partition_host

    try:
        full = load_qonnx(s.qonnx)
    except BinaryHPEError as e:  # name the user's file, not its copy in OUT
        if s.model != str(s.qonnx) and str(s.qonnx) in str(e) and pathlib.Path(s.model).is_file():
            raise BinaryHPEError(str(e).replace(str(s.qonnx), s.model)) from None
        raise
    s.partition = partition_host(full, source=str(s.qonnx.name))
    s.mw = s.partition.hw
    s.g = s.partition.lowered
    _log(s.partition.summary())
    if s.partition.host_nodes:
        s.partition.hw.save(str(s.out / "hw_region.onnx"))
    return s


def _full_model(s: BuildState):
    """The whole QONNX model (the hardware region's model when the build was not partitioned)."""
    return s.partition.full if s.partition is not None else s.mw


def _has_host(s: BuildState) -> bool:
    return s.partition is not None and bool(s.partition.host_nodes)


#: with host nodes, ``--sim`` also runs these frames of the full graph's input (pre on the host, the hardware
#: region, post on the host), before the user's: uniform on [0, 1) (an image) and on [-1, 1)
HOST_RANDOM_FRAMES = ((0.0, 1.0), (-1.0, 1.0))


def _sim_frames(s: BuildState) -> dict:
    """The frames of the full graph's input a simulation checks end to end, and the hardware region's frames of
    them (the host's pre-processing by the exact reference's executor). Without host nodes: the user's frames
    only (the hardware region is the whole graph). Returns ``{"full", "hw", "random"}`` (``random``: how many of
    the first are built-in random frames) or None when there are none."""
    user = [] if s.user_frames is None else [np.asarray(x) for x in s.user_frames]
    if not _has_host(s):
        return None if s.user_frames is None else {"full": user, "hw": list(s.user_frames), "random": 0}
    if s.host_frames is None:
        shape = tuple(s.partition.full.get_tensor_shape(s.partition.full_input))[1:]
        rng = np.random.default_rng(s.opts.seed + 7)
        rnd = [rng.uniform(lo, hi, size=shape).astype(np.float32) for lo, hi in HOST_RANDOM_FRAMES]
        full = rnd + user
        s.host_frames = {"full": full, "hw": [s.partition.hw_frame(x[None])[0] for x in full], "random": len(rnd)}
    return s.host_frames


def _full_outputs(s: BuildState, ints: list) -> list:
    """The full graph's outputs (its layout and scale, without the batch dimension, float64) of the hardware
    region's simulated output integers ``ints``: the region's output in its QONNX scale, then the host's
    post-processing (exact reference's executor)."""
    from binaryhpe.compile.frames import io_shapes, to_qonnx_output

    hw_shape = io_shapes(s.mw)[1]
    outs = [to_qonnx_output(s.g, q, hw_shape) for q in ints]
    if not _has_host(s) or s.partition.post is None:
        return outs
    return [s.partition.run_post({s.partition.hw_output: y[None]})[0] for y in outs]


def _whole_graph_check(s: BuildState, frames: dict, ints: list) -> dict:
    """With host nodes: every frame of ``frames["full"]`` through host pre, the simulated hardware region
    (``ints``, its output integers) and host post must equal the whole graph's exact reference."""
    from binaryhpe.compile.reference import REFERENCE_NAME

    if len(ints) != len(frames["full"]):
        raise BinaryHPEError(f"{len(ints)} simulated output frames for {len(frames['full'])} frames of the full input")
    got = _full_outputs(s, ints)
    bad = [i for i, (x, y) in enumerate(zip(frames["full"], got))
           if not np.array_equal(s.partition.run_full(x[None])[0], y)]
    return {"reference": f"the whole graph, host nodes included: {REFERENCE_NAME}", "frames_checked": len(got),
            "random_frames": frames["random"], "mismatching_frames": bad, "exact": not bad,
            "host_nodes": s.partition.host_nodes}


def _finish_sim(s: BuildState, sim: dict, outs: list | None) -> dict:
    """Add the whole-graph check (with host nodes) and the user's ``outputs.npy`` to a simulation's result from
    the simulated outputs ``outs`` of ``_sim_frames(s)["hw"]``."""
    frames = _sim_frames(s)
    if frames is None:
        return sim
    if _has_host(s):
        sim["whole_graph"] = _whole_graph_check(s, frames, outs)
        if "bit_exact" in sim:
            sim["bit_exact"] = bool(sim["bit_exact"]) and sim["whole_graph"]["exact"]
        _log(f"whole graph (host pre, hardware, host post) vs its exact reference: {sim['whole_graph']['frames_checked']} "
             f"frames, {len(sim['whole_graph']['mismatching_frames'])} differ")
    if s.user_frames is not None:
        sim["user_frames"] = _user_outputs(s, outs[frames["random"]:])
    return sim


def _user_frames(s: BuildState) -> BuildState:
    """``--inputs FRAMES.npy``: read the user's frames and check them against the QONNX input (compile/frames.py),
    before anything slow runs."""
    from binaryhpe.compile.frames import io_shapes, load_frames

    if not s.opts.sim:
        raise BinaryHPEError(f"--inputs {s.opts.inputs}: the frames are simulated; add --sim")
    s.user_frames = load_frames(s.opts.inputs, io_shapes(_full_model(s))[0])
    _log(f"--inputs {s.opts.inputs}: {len(s.user_frames)} frames of shape {s.user_frames.shape[1:]}")
    return s


def _user_outputs(s: BuildState, ints: list) -> dict:
    """Write ``OUT/outputs.npy``: the simulated outputs ``ints`` (the hardware output's integers, one frame
    each) of the user's frames, in the QONNX output's layout and scale (compile/frames.py)."""
    from binaryhpe.compile.frames import io_shapes, write_outputs

    if len(ints) != len(s.user_frames):
        raise BinaryHPEError(f"--inputs {s.opts.inputs}: {len(ints)} simulated output frames for "
                             f"{len(s.user_frames)} input frames")
    out_shape = io_shapes(_full_model(s))[1]
    path = write_outputs(s.out / "outputs.npy", _full_outputs(s, ints))
    _log(f"outputs of the {len(ints)} --inputs frames: {path} (shape {(len(ints), *out_shape[1:])})")
    return {"file": str(s.opts.inputs), "frames": len(ints), "outputs": str(path)}


def _check_user_frames(s: BuildState) -> dict:
    """The user's frames through the exact reference (compile/reference.check_frames): the compiler's reference
    must equal the QONNX graph on each (the MCU and backend flows; the RTL flow checks them in simulate)."""
    from binaryhpe.compile.reference import check_frames

    chk = check_frames(s.g, s.mw, [x[None] for x in _sim_frames(s)["hw"]])
    return {k: chk[k] for k in ("reference", "frames_checked", "mismatching_frames", "frames_beyond_float32")}


def _optimize(s: BuildState) -> BuildState:
    if s.opts.target == "fpga" and s.opts.backend == "rtl":
        from binaryhpe.compile.rtlgen import check_rtl_kinds

        check_rtl_kinds(s.g)  # before anything slow: a kind the dataflow RTL lacks is refused in one line
    prepare_passes(s.g)
    return s


def _fold(s: BuildState) -> BuildState:
    if s.dev is not None:  # the device-aware search over trial foldings of this graph
        s.g, s.fold_estimate = _device_fold(s.g, s.dev, s.opts.fps, s.folding)
    else:
        folding_passes(s.g, s.opts.target_cycles, s.folding)
    return s


def _storage(s: BuildState) -> BuildState:
    """MVUs whose weights the device's block RAM cannot hold get a weight-stream port."""
    s.streamed = apply_storage(s.g, plan_storage(s.g, s.dev))
    if s.streamed:
        _log(f"{len(s.streamed)} MVU(s) stream their weights from DRAM on {s.dev.name}: "
             + ", ".join(s.streamed[:4]) + (" ..." if len(s.streamed) > 4 else ""))
    return s


def _hwgraph(s: BuildState) -> BuildState:
    (s.out / "hwgraph.json").write_text(s.g.to_json())
    _log(f"hardware graph: {len(s.g.layers)} layers")
    return s


def _rtl(s: BuildState) -> BuildState:
    s.rtl = step_rtl(s.g, s.out)
    _log(f"RTL: {s.rtl / 'bhpe_top.sv'}")
    return s


def _simulate(s: BuildState) -> BuildState:
    frames = _sim_frames(s)
    s.simulation = step_simulate(s.g, s.mw, s.rtl, s.opts.seed, waves=s.opts.waves,
                                 user_frames=None if frames is None else frames["hw"])
    # with host nodes the whole graph's frames end to end; OUT/outputs.npy: the outputs of the user's frames
    s.simulation = _finish_sim(s, s.simulation, s.simulation.pop("user_outputs", None))
    return s


def _report(s: BuildState) -> BuildState:
    pred = predicted_cycles(s.g)
    rows = layer_table(s.g)
    s.report = {"model": s.model, "qonnx": str(s.qonnx), "export_check": s.export_check, "bit_exact": None,
                "cycles_per_frame": None, "predicted_cycles_per_frame": pred["ii"],
                "predicted_latency_cycles": pred["latency"], "layers": rows, "host_nodes": _host_nodes(s)}
    if s.simulation is not None:
        sim = s.simulation
        s.report["bit_exact"] = sim["bit_exact"]
        steady = sim["runs"][0]
        s.report["cycles_per_frame"] = steady["ii_cycles"]
        s.report["latency_cycles"] = steady["latency_cycles"]
        s.report["simulation"] = sim
    s.report["wall_s"] = round(time.time() - s.t0, 1)
    (s.out / "report.json").write_text(json.dumps(s.report, indent=1))
    return s


def _host_nodes(s: BuildState) -> list:
    """``report.json`` ``host_nodes``: the names of the nodes that run on the host, pre then post."""
    return list(s.partition.host_nodes) if s.partition is not None else []


def _device(s: BuildState) -> BuildState:
    """The device keys (device, resources, fps, synth, bitstream, fmax_mhz) and report.md / report.html."""
    o = s.opts
    s.report = apply_device_options(s.report, s.g, s.out, device=o.device, fps=o.fps, bitstream=o.bitstream,
                                    synth=o.synth)
    return s


def _mcu(s: BuildState) -> BuildState:
    """``--target mcu:NAME``: the same hardware graph, as C for a microcontroller (sim/mcu.py)."""
    from binaryhpe.compile.frames import quantize
    from binaryhpe.compile.mcu_build import build_mcu

    frames = _sim_frames(s) if s.opts.sim else None
    extra = None if frames is None else [quantize(s.g, x) for x in frames["hw"]]
    s.report = build_mcu(s.g, s.out, s.opts.target, sim=s.opts.sim, extra_frames=extra)
    s.report["host_nodes"] = _host_nodes(s)  # the hardware region is the C; these stay with the caller
    if extra is not None:  # the C outputs (QEMU) of these frames, and the frames against the reference
        sim = _finish_sim(s, _check_user_frames(s), s.report.pop("user_outputs"))
        s.report["simulation"] = sim
        s.report["bit_exact"] = (bool(s.report["bit_exact"]) and not sim["mismatching_frames"]
                                 and sim.get("whole_graph", {}).get("exact", True))
    (s.out / "report.json").write_text(json.dumps(_json_safe(s.report), indent=1))
    return s


def _backend(s: BuildState) -> BuildState:
    """``--backend hls4ml|finn``: the same QONNX and hardware graph (its folding included), handed to that tool;
    its project goes under ``OUT/<backend>/``."""
    from binaryhpe.compile.backends import run_backend

    frames = _sim_frames(s) if s.opts.sim else None
    extra = {} if frames is None else {"extra_frames": np.stack(frames["hw"])}
    # with host nodes the backend takes the hardware region (OUT/hw_region.onnx), not the whole graph
    qonnx = s.out / "hw_region.onnx" if _has_host(s) else s.qonnx
    rep = run_backend(s.opts.backend, qonnx, s.g, s.out, sim=s.opts.sim, seed=s.opts.seed,
                      **s.opts.backend_options, **extra)
    s.report = {"model": s.model, "qonnx": str(s.qonnx), "export_check": s.export_check,
                "backend": s.opts.backend, "bit_exact": None, "host_nodes": _host_nodes(s), **rep,
                "wall_s": round(time.time() - s.t0, 1)}
    if extra:  # the backend's outputs of these frames, and the frames against the reference
        sim = _finish_sim(s, _check_user_frames(s), s.report.pop("user_outputs"))
        s.report["simulation"] = sim
        s.report["bit_exact"] = (bool(s.report["bit_exact"]) and not sim["mismatching_frames"]
                                 and sim.get("whole_graph", {}).get("exact", True))
    return s


def _fuse(s: BuildState) -> BuildState:
    """--arch engine: the pass list up to the epilogue fusion (the engine has no streams: no forks, folding,
    lanes or FIFOs)."""
    from binaryhpe.compile.passes import run_passes, standard_passes

    run_passes(s.g, standard_passes(), stop="forks")
    return s


def _program(s: BuildState) -> BuildState:
    """--arch engine: engine ops, DRAM layout, tiling and descriptors; ``OUT/engine/``."""
    from binaryhpe.compile.engine import compile_program
    from binaryhpe.compile.engine_build import engine_config, write_program

    s.engine_cfg = engine_config(s.dev)
    s.program = compile_program(s.g, s.engine_cfg)
    files = write_program(s.program, s.engine_cfg, s.out)
    s.report["engine"] = {"config": s.engine_cfg.rtl_params(), **files}
    _log(f"engine program: {len(s.program.ops)} descriptors, DRAM image {len(s.program.image):,} bytes: {files['dir']}")
    return s


def _engine_simulate(s: BuildState) -> BuildState:
    from binaryhpe.compile.engine_build import simulate_engine

    frames = _sim_frames(s)
    s.simulation = simulate_engine(s.g, s.mw, s.program, s.engine_cfg, s.out, seed=s.opts.seed,
                                   user_frames=None if frames is None else frames["hw"])
    outs = s.simulation.pop("outputs")
    if frames is not None:
        s.simulation = _finish_sim(s, s.simulation, outs[len(outs) - len(frames["hw"]):])
    return s


def _engine_report(s: BuildState) -> BuildState:
    from binaryhpe.compile.engine_build import engine_report

    rep = {"model": s.model, "qonnx": str(s.qonnx), "export_check": s.export_check, "bit_exact": None,
           "cycles_per_frame": None, "host_nodes": _host_nodes(s), **s.report}
    if s.simulation is not None:
        rep["bit_exact"] = s.simulation["bit_exact"]
        rep["cycles_per_frame"] = s.simulation["cycles_per_frame"]
        rep["simulation"] = s.simulation
    s.report = _json_safe(engine_report(rep, s.program, s.engine_cfg, s.dev, s.out, bitstream=s.opts.bitstream))
    (s.out / "report.json").write_text(json.dumps(s.report, indent=1, default=str))
    write_engine_reports(s.report, s.out)
    return s


EXPORT = Step("export", _export)
LOWER = Step("lower", _lower)
FRAMES = Step("frames", _user_frames, when=lambda s: s.opts.inputs is not None)
OPTIMIZE = Step("optimize", _optimize)
FOLD = Step("fold", _fold)
STORAGE = Step("storage", _storage, when=lambda s: s.dev is not None)
HWGRAPH = Step("hwgraph", _hwgraph)
RTL = Step("rtl", _rtl)
SIMULATE = Step("simulate", _simulate, when=lambda s: s.opts.sim)
REPORT = Step("report", _report)
DEVICE = Step("device", _device)
MCU = Step("mcu", _mcu)
BACKEND = Step("backend", _backend)

FUSE = Step("fuse", _fuse)
PROGRAM = Step("program", _program)
ENGINE_SIMULATE = Step("simulate", _engine_simulate, when=lambda s: s.opts.sim)
ENGINE_REPORT = Step("report", _engine_report)

#: ``binaryhpe build`` (the RTL backend)
FPGA_STEPS = [EXPORT, LOWER, FRAMES, OPTIMIZE, FOLD, STORAGE, HWGRAPH, RTL, SIMULATE, REPORT, DEVICE]
#: ``binaryhpe build --arch engine`` (compile/engine_build.py)
ENGINE_STEPS = [EXPORT, LOWER, FRAMES, FUSE, PROGRAM, ENGINE_SIMULATE, ENGINE_REPORT]
#: ``binaryhpe build --target mcu:NAME``
MCU_STEPS = [EXPORT, LOWER, FRAMES, OPTIMIZE, FOLD, MCU]
#: ``binaryhpe build --backend hls4ml|finn``
BACKEND_STEPS = [EXPORT, LOWER, FRAMES, OPTIMIZE, FOLD, HWGRAPH, BACKEND]


def _finish(s: BuildState) -> dict:
    """Add the step times to the report and write it once more."""
    s.report["steps"] = s.steps
    s.report["wall_s"] = round(time.time() - s.t0, 1)
    (s.out / "report.json").write_text(json.dumps(_json_safe(s.report), indent=1, default=str))
    return s.report


# ---------------------------------------------------------------------------------------------------------
# the builds


def build(model: str, out, sim: bool = False, seed: int = 0, folding_file=None, target_cycles=None,
          waves: bool = False, device=None, fps=None, bitstream: bool = False, synth=False, inputs=None) -> dict:
    """``binaryhpe build MODEL -o OUT``: :data:`FPGA_STEPS`; returns the report (``OUT/report.json``).
    ``inputs``: a .npy file of the user's frames (``--inputs``; with ``sim``), outputs to ``OUT/outputs.npy``."""
    out = pathlib.Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    opts = BuildOptions(sim=sim, seed=seed, folding_file=folding_file, target_cycles=target_cycles, waves=waves,
                        device=device, fps=fps, bitstream=bitstream, synth=synth, inputs=inputs)
    dev = build_device(device, bitstream)
    if dev is None and fps is not None:
        raise BinaryHPEError("--fps needs --device (the frame rate is counted at the device's clock)")
    s = BuildState(model=model, out=out, opts=opts, dev=dev,
                   folding=load_folding(folding_file) if folding_file else None)
    _log(f"model {model} -> {out}")
    s = run_flow(FPGA_STEPS, s)
    report = _finish(s)
    pred_ii, pred_lat = report["predicted_cycles_per_frame"], report["predicted_latency_cycles"]
    print(format_table(report["layers"], limit=40))
    print(f"predicted cycles/frame {pred_ii}, latency {pred_lat}"
          + (f"; measured cycles/frame {report['cycles_per_frame']}, latency {report.get('latency_cycles')}, "
             f"bit-exact: {report['bit_exact']}" if sim else ""))
    return report


def build_engine(model: str, out, sim: bool = False, seed: int = 0, device=None, bitstream: bool = False,
                 inputs=None) -> dict:
    """``binaryhpe build MODEL --arch engine -o OUT``: :data:`ENGINE_STEPS`, the model as a program of the
    layer-sequential engine (compile/engine_build.py, docs/engine.md); returns the report."""
    out = pathlib.Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    opts = BuildOptions(sim=sim, seed=seed, device=device, bitstream=bitstream, inputs=inputs, arch="engine")
    s = BuildState(model=model, out=out, opts=opts, dev=build_device(device, bitstream))
    _log(f"model {model} -> {out} (arch engine)")
    s = run_flow(ENGINE_STEPS, s)
    report = _finish(s)
    print(format_engine_table(report["layers"], limit=40))
    _log(f"engine: predicted cycles/frame {report['predicted_cycles_per_frame']:,}, DRAM bytes/frame "
         f"{report['dram_bytes_per_frame']:,}, roofline fraction {report['roofline_fraction']:.2f}"
         + (f"; measured cycles/frame {report['cycles_per_frame']:,}, bit-exact: {report['bit_exact']}" if sim else ""))
    return report


def build_mcu_target(model: str, out, target: str, sim: bool, seed: int = 0, inputs=None) -> dict:
    """``--target mcu:NAME``: :data:`MCU_STEPS`, the same hardware graph as C for a microcontroller; ``inputs``
    as for :func:`build` (the C outputs, under QEMU)."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _log(f"model {model} -> {out} for {target}")
    s = run_flow(MCU_STEPS, BuildState(model=model, out=out,
                                       opts=BuildOptions(sim=sim, seed=seed, target=target, inputs=inputs)))
    rep = s.report
    _log(f"{rep['target']}: flash {rep['flash_bytes']} B, RAM {rep['ram_bytes']} B, predicted cycles/frame "
         f"{rep['predicted_cycles_per_frame']}" + (f", bit-exact: {rep['bit_exact']}" if sim else ""))
    return rep


def build_backend(model: str, out, backend: str, sim: bool = False, seed: int = 0, folding_file=None,
                  target_cycles=None, inputs=None, **backend_options) -> dict:
    """``--backend hls4ml|finn``: :data:`BACKEND_STEPS`; ``OUT/report.json`` holds ``backend`` and ``bit_exact``;
    ``inputs`` as for :func:`build` (the backend's own execution)."""
    out = pathlib.Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _log(f"model {model} -> {out} (backend {backend})")
    opts = BuildOptions(sim=sim, seed=seed, folding_file=folding_file, target_cycles=target_cycles,
                        backend=backend, backend_options=backend_options, inputs=inputs)
    s = BuildState(model=model, out=out, opts=opts, folding=load_folding(folding_file) if folding_file else None)
    s = run_flow(BACKEND_STEPS, s)
    report = _finish(s)
    _log(f"{backend}: report {out / 'report.json'}" + (f", bit-exact: {report['bit_exact']}" if sim else ""))
    return report


def _auto_arch(args, backend: str) -> tuple[str, str]:
    """``--arch auto`` for one network: export it once, let ``wholebody_build.choose_arch`` pick the design on
    ``--device``; returns the arch and the QONNX path the build then uses."""
    from binaryhpe.compile.wholebody_build import choose_arch

    if args.device is None:
        raise BinaryHPEError("--arch auto needs --device (the design is chosen per device)")
    if backend != "rtl" or (getattr(args, "target", None) or "fpga") != "fpga":
        raise BinaryHPEError("--arch auto chooses between our RTL designs; drop --backend / --target")
    if args.folding or args.target_cycles or args.fps or args.waves or args.synth:
        raise BinaryHPEError("--arch auto chooses the design itself: drop --folding / --target-cycles / --fps / "
                             "--waves / --synth (or name --arch dataflow)")
    out = pathlib.Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    qonnx, _ = step_model_to_qonnx(args.model, out, args.seed)
    arch, _ = choose_arch(qonnx, args.device, out)
    return arch, str(qonnx)


def build_command(args) -> int:
    backend = getattr(args, "backend", "rtl") or "rtl"
    inputs = getattr(args, "inputs", None)
    if inputs and not args.sim:
        raise BinaryHPEError(f"--inputs {inputs}: the frames are simulated; add --sim")
    from binaryhpe.train.wholebody import WHOLEBODY_NAMES

    arch = getattr(args, "arch", None)
    if args.model in WHOLEBODY_NAMES:  # the whole model: its parts, the host part, the design chosen per device
        from binaryhpe.compile.wholebody_build import build_whole, check_whole_options

        check_whole_options(args, backend)
        rep = build_whole(args.model, args.output, arch=arch or "auto", device=args.device, seed=args.seed,
                          sim=args.sim)
        if args.sim and rep["bit_exact"] is False:
            print("binaryhpe: an engine simulation of a part is NOT bit-exact", flush=True)
            return 1
        return 0
    if arch == "auto":
        arch, args.model = _auto_arch(args, backend)
    if arch == "engine":
        from binaryhpe.compile.engine_build import check_engine_options

        check_engine_options(BuildOptions(sim=args.sim, folding_file=args.folding, target_cycles=args.target_cycles,
                                          fps=args.fps, waves=args.waves, synth=args.synth, backend=backend,
                                          target=args.target or "fpga"))
        rep = build_engine(args.model, args.output, sim=args.sim, seed=args.seed, device=args.device,
                           bitstream=args.bitstream, inputs=inputs)
        if args.sim and not rep["bit_exact"]:
            print("binaryhpe: the engine simulation is NOT bit-exact", flush=True)
            return 1
        return 0
    if backend != "rtl":
        if args.target and args.target != "fpga":
            raise BinaryHPEError(f"--backend {backend} builds for an FPGA; it cannot be combined with --target {args.target}")
        for flag in ("device", "fps", "bitstream", "synth", "waves"):
            if getattr(args, flag, None):
                raise BinaryHPEError(f"--{flag} belongs to the rtl backend; --backend {backend} does not take it")
        opts = {}
        if getattr(args, "finn_flow", "auto") != "auto":
            if backend != "finn":
                raise BinaryHPEError(f"--finn-flow belongs to --backend finn, not --backend {backend}")
            opts["flow"] = args.finn_flow
        rep = build_backend(args.model, args.output, backend, sim=args.sim, seed=args.seed,
                            folding_file=args.folding, target_cycles=args.target_cycles, inputs=inputs, **opts)
        if args.sim and not rep["bit_exact"]:
            print(f"binaryhpe: the {backend} execution is NOT bit-exact against the reference", flush=True)
            return 1
        return 0
    if args.target and args.target != "fpga":
        if not args.target.startswith("mcu:"):
            raise BinaryHPEError(f"--target {args.target!r}: expected 'fpga' or 'mcu:NAME'")
        rep = build_mcu_target(args.model, args.output, args.target, args.sim, args.seed, inputs=inputs)
        return 1 if (args.sim and not rep["bit_exact"]) else 0
    rep = build(args.model, args.output, sim=args.sim, seed=args.seed, folding_file=args.folding,
                target_cycles=args.target_cycles, waves=args.waves, device=args.device, fps=args.fps,
                bitstream=args.bitstream, synth=args.synth, inputs=inputs)
    if args.sim and not rep["bit_exact"]:
        print("binaryhpe: simulation is NOT bit-exact", flush=True)
        return 1
    return 0


CHECKED_IN = pathlib.Path(__file__).resolve().parent.parent / "hw" / "generated" / "tiny_bidrn"


def generated_files(rtl: pathlib.Path) -> dict[str, str]:
    """The generated (not library) RTL files of a build: top level, manifest and ROM images."""
    files = {"bhpe_top.sv": (rtl / "bhpe_top.sv").read_text(), "manifest.json": (rtl / "manifest.json").read_text()}
    for f in sorted((rtl / "mem").glob("*.hex")):
        files[f"mem/{f.name}"] = f.read_text()
    return files


def refresh_checked_in(work: pathlib.Path, dest: pathlib.Path = CHECKED_IN) -> None:
    """Regenerate the checked-in RTL of the default tiny BiDRN (hw/generated/tiny_bidrn)."""
    build("tiny-bidrn", work, sim=False)
    if dest.exists():
        shutil.rmtree(dest)
    for name, text in generated_files(work / "rtl").items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_text(text)
    (dest / "README.md").write_text(
        "Generated RTL of the default tiny BiDRN (`binaryhpe build -o OUT`, seed 0): the stitched top level\n"
        "`bhpe_top.sv` instantiates the hand-written modules of `hw/rtl/`; `mem/` holds the weight and constant\n"
        "ROM images. Do not edit: `python -c \"import pathlib; from binaryhpe.compile.flow import "
        "refresh_checked_in; refresh_checked_in(pathlib.Path('/tmp/tiny'))\"` regenerates it, and\n"
        "`tests/test_generated_rtl.py` fails when it is stale.\n")
