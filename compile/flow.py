"""The build flow, a named list of steps over one output folder (FINN's builder idea):

model -> QONNX (export + check) -> hardware graph (lower, optimize) -> RTL (generate) -> simulation -> report.
``binaryhpe build [MODEL] -o OUT [--sim]`` runs it.
"""

from __future__ import annotations

import json
import math
import pathlib
import shutil
import time

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.graph import HwGraph


def _log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


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


def step_lower(qonnx: pathlib.Path, target_cycles=None, folding=None) -> tuple[HwGraph, object]:
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import optimize

    mw = load_qonnx(qonnx)
    g = optimize(lower(mw, source=str(qonnx.name)), target_cycles=target_cycles, folding=folding)
    return g, mw


def predicted_cycles(g: HwGraph) -> dict:
    """Frame interval = the slowest layer's ii (from the per-layer cycle models).

    Latency, a streaming estimate: every tensor has a start time (its first beat) and a duration (first to
    last beat, the slowest ii upstream). A layer starts ``latency - ii`` after its input starts (its pipeline),
    except a window generator, which must first receive the input rows of its first window: it starts
    ``(K - Pad) / H`` of its input's duration later. Latency = output start + output duration."""
    from binaryhpe.compile.kinds.pool import Pool
    from binaryhpe.compile.kinds.swg import SlidingWindow

    ii = max(lay.cycles()["ii"] for lay in g.layers)
    start: dict[str, float] = {g.input: 0.0}
    dur: dict[str, float] = {g.input: float(math.prod(g.tensors[g.input].shape) // g.tensors[g.input].lanes)}
    for lay in g.layers:
        c = lay.cycles()
        s0 = max(start[t] for t in lay.inputs)
        d0 = max(dur[t] for t in lay.inputs)
        lead = max(0, c["latency"] - c["ii"])
        if isinstance(lay, (SlidingWindow, Pool)):
            lead += d0 * min(1.0, (lay.k - lay.pad) / lay.h)
        for t in lay.outputs:
            start[t] = s0 + lead
            dur[t] = max(d0, float(c["ii"]))
    return {"ii": int(ii), "latency": int(round(start[g.output] + dur[g.output]))}


def layer_table(g: HwGraph) -> list[dict]:
    rows = []
    for lay in g.layers:
        info = g.tensors[lay.outputs[0]]
        fold = {k: getattr(lay, k) for k in ("pe", "simd", "lanes", "depth") if hasattr(lay, k)}
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


def step_rtl(g: HwGraph, out: pathlib.Path) -> pathlib.Path:
    from binaryhpe.compile.rtlgen import generate, rtl_library

    rtl = out / "rtl"
    generate(g, rtl)
    lib = rtl / "lib"
    lib.mkdir(exist_ok=True)
    for f in rtl_library():
        shutil.copyfile(f, lib / f.name)
    return rtl


def step_simulate(g: HwGraph, mw, rtl: pathlib.Path, seed: int, frames: int = 3, waves: bool = False) -> dict:
    """Whole-network simulation: random and extreme frames, without and with random stalls; every output
    integer must equal the integer reference (which equals execute_onnx, checked first)."""
    from binaryhpe.compile.reference import compare_with_onnx, hw_input, onnx_context
    from binaryhpe.sim import netsim

    shape = mw.get_tensor_shape(mw.graph.input[0].name)
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(-1, 1, size=shape).astype(np.float32) for _ in range(frames)]
    xs += [np.ones(shape, np.float32), -np.ones(shape, np.float32), np.full(shape, 4.0, np.float32)]
    cmp = compare_with_onnx(g, mw, xs[0])
    ins, refs = [], []
    for x in xs:
        xi = hw_input(g, onnx_context(mw, x))
        ins.append(xi)
        refs.append(g.execute(xi)[g.output])
    exe = netsim.build(rtl, sorted((rtl / "lib").glob("*.sv")), waves=waves)
    runs = []
    for stall in (0.0, 0.3):
        r = netsim.simulate(g, exe, rtl, ins, stall_in=stall, stall_out=stall, seed=seed + 1,
                            waves=str(rtl / "waves.fst") if (waves and stall == 0.0) else None)
        bad = sum(int(np.count_nonzero(a != b)) for a, b in zip(r["outputs"], refs))
        runs.append({"stall": stall, "mismatches": bad, "total_cycles": r["total_cycles"],
                     "latency_cycles": r["latency_cycles"], "ii_cycles": r.get("ii_cycles"),
                     "sim_cycles_per_s": round(r["cycles_per_second"])})
        _log(f"simulation, stall probability {stall}: {len(ins)} frames, {bad} mismatching integers, "
             f"{r['total_cycles']} cycles ({r['cycles_per_second'] / 1e3:.0f}k cycles/s)")
    return {"bit_exact": all(r["mismatches"] == 0 for r in runs) and cmp["first_mismatch"] is None
            and cmp["output_exact"], "reference_vs_qonnx": {k: v for k, v in cmp.items() if k not in ("env", "ctx")},
            "runs": runs, "frames": len(ins)}


def build(model: str, out, sim: bool = False, seed: int = 0, folding_file=None, target_cycles=None,
          waves: bool = False, device=None, fps=None, bitstream: bool = False, synth=False) -> dict:
    from binaryhpe.compile.estimate import apply_device_options, apply_storage, build_device, build_folding, plan_storage
    from binaryhpe.compile.passes import load_folding

    out = pathlib.Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    folding = load_folding(folding_file) if folding_file else None
    _log(f"model {model} -> {out}")
    qonnx, check = step_model_to_qonnx(model, out, seed)
    folding = build_folding(qonnx, device, fps, bitstream, folding)
    g, mw = step_lower(qonnx, target_cycles, folding)
    dev = build_device(device, bitstream)
    if dev is not None:  # MVUs whose weights the device's block RAM cannot hold get a weight-stream port
        streamed = apply_storage(g, plan_storage(g, dev))
        if streamed:
            _log(f"{len(streamed)} MVU(s) stream their weights from DRAM on {dev.name}: " + ", ".join(streamed[:4])
                 + (" ..." if len(streamed) > 4 else ""))
    (out / "hwgraph.json").write_text(g.to_json())
    _log(f"hardware graph: {len(g.layers)} layers")
    rtl = step_rtl(g, out)
    _log(f"RTL: {rtl / 'bhpe_top.sv'}")
    pred = predicted_cycles(g)
    rows = layer_table(g)
    report = {"model": model, "qonnx": str(qonnx), "export_check": check, "bit_exact": None,
              "cycles_per_frame": None, "predicted_cycles_per_frame": pred["ii"],
              "predicted_latency_cycles": pred["latency"], "layers": rows}
    if sim:
        s = step_simulate(g, mw, rtl, seed, waves=waves)
        report["bit_exact"] = s["bit_exact"]
        steady = s["runs"][0]
        report["cycles_per_frame"] = steady["ii_cycles"]
        report["latency_cycles"] = steady["latency_cycles"]
        report["simulation"] = s
    report["wall_s"] = round(time.time() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    # device keys (device, resources, fps, synth, bitstream, fmax_mhz) and report.md / report.html
    report = apply_device_options(report, g, out, device=device, fps=fps, bitstream=bitstream, synth=synth)
    print(format_table(rows, limit=40))
    print(f"predicted cycles/frame {pred['ii']}, latency {pred['latency']}"
          + (f"; measured cycles/frame {report['cycles_per_frame']}, latency {report.get('latency_cycles')}, "
             f"bit-exact: {report['bit_exact']}" if sim else ""))
    return report


def build_mcu_target(model: str, out, target: str, sim: bool, seed: int = 0) -> dict:
    """``--target mcu:NAME``: the same hardware graph, as C for a microcontroller (sim/mcu.py)."""
    from binaryhpe.sim.mcu import build_mcu

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _log(f"model {model} -> {out} for {target}")
    qonnx, _ = step_model_to_qonnx(model, out, seed)
    g, _ = step_lower(qonnx)
    rep = build_mcu(g, out, target, sim=sim)
    _log(f"{rep['target']}: flash {rep['flash_bytes']} B, RAM {rep['ram_bytes']} B, predicted cycles/frame "
         f"{rep['predicted_cycles_per_frame']}" + (f", bit-exact: {rep['bit_exact']}" if sim else ""))
    return rep


def build_backend(model: str, out, backend: str, sim: bool = False, seed: int = 0, folding_file=None,
                  target_cycles=None, **backend_options) -> dict:
    """``--backend hls4ml|finn``: the same QONNX and hardware graph (its folding included), handed to that tool;
    its project goes under ``OUT/<backend>/`` and ``OUT/report.json`` holds ``backend`` and ``bit_exact``."""
    from binaryhpe.compile.backends import run_backend
    from binaryhpe.compile.passes import load_folding

    out = pathlib.Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    _log(f"model {model} -> {out} (backend {backend})")
    qonnx, check = step_model_to_qonnx(model, out, seed)
    g, _ = step_lower(qonnx, target_cycles, load_folding(folding_file) if folding_file else None)
    (out / "hwgraph.json").write_text(g.to_json())
    _log(f"hardware graph: {len(g.layers)} layers")
    rep = run_backend(backend, qonnx, g, out, sim=sim, seed=seed, **backend_options)
    report = {"model": model, "qonnx": str(qonnx), "export_check": check, "backend": backend, "bit_exact": None,
              **rep, "wall_s": round(time.time() - t0, 1)}
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    _log(f"{backend}: report {out / 'report.json'}" + (f", bit-exact: {report['bit_exact']}" if sim else ""))
    return report


def build_command(args) -> int:
    backend = getattr(args, "backend", "rtl") or "rtl"
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
                            folding_file=args.folding, target_cycles=args.target_cycles, **opts)
        if args.sim and not rep["bit_exact"]:
            print(f"binaryhpe: the {backend} execution is NOT bit-exact against the reference", flush=True)
            return 1
        return 0
    if args.target and args.target != "fpga":
        if not args.target.startswith("mcu:"):
            raise BinaryHPEError(f"--target {args.target!r}: expected 'fpga' or 'mcu:NAME'")
        rep = build_mcu_target(args.model, args.output, args.target, args.sim, args.seed)
        return 1 if (args.sim and not rep["bit_exact"]) else 0
    rep = build(args.model, args.output, sim=args.sim, seed=args.seed, folding_file=args.folding,
                target_cycles=args.target_cycles, waves=args.waves, device=args.device, fps=args.fps,
                bitstream=args.bitstream, synth=args.synth)
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
