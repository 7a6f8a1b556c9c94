"""The whole BinaryHPE model on one device (``binaryhpe build binaryhpe --arch {dataflow,engine,auto} --device NAME``).

The model is cut into its hardware parts at the one boundary the toolkit has, QONNX (``train.wholebody.
export_wholebody`` writes them): the three encoders (the hand encoder runs twice a frame, one crop each), the
binarized BoxNet and the heads' convolutions; what stays on the host (resize, soft-argmax, box crops, RoI align,
feature sampling, the Linear layers, 6D -> axis-angle, SMPL-X) is listed by the export with its size and timed by
the Cortex-A53 model (``compile.host.a53``).

Per part, two designs are evaluated on the device: the layer-sequential engine (``compile.engine``: the part's
program and its cycle model, for every engine configuration the device holds) and the dataflow design
(``compile.folding.fold_for_device``: one hardware layer a layer, folded as fast as fits; a part with a kind the
dataflow RTL lacks, such as BoxNet's transposed convolutions, cannot). A *design* assigns each part to the
engine or to a dataflow region beside it; the frame time is the sum of the parts' times (each times its runs a
frame) plus the host's: the parts depend on each other within a frame, and no overlap between frames is counted.
``--arch engine`` takes the fastest all-engine design that fits, ``--arch dataflow`` the all-dataflow one (refused
in one line when a part cannot be, or the parts side by side do not fit), ``--arch auto`` the fastest of all
(engine, dataflow, hybrids: one engine plus the parts that fit beside it as dataflow), and the report shows the
candidates, why the choice won, and the Pareto front (fps against LUT, BRAM, DSP and DRAM bandwidth).
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import time
from dataclasses import dataclass, field

from binaryhpe import BinaryHPEError


def _log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


#: encoders of the whole model and their runs a frame (the hand encoder runs on the two hand crops)
ENCODER_RUNS = {"body_encoder": 1, "hand_encoder": 2, "face_encoder": 1}
RESOURCES = ("lut", "ff", "bram18", "uram", "dsp")


@dataclass
class Part:
    """One hardware part: its QONNX, runs a frame, the lowered graph and both designs' figures."""

    name: str
    qonnx: pathlib.Path
    runs: int = 1
    mw: object = None
    g: object = None  # lowered, fused to epilogues (what the engine compiles)
    g_prepared: object = None  # lowered, the stages before folding (what the dataflow folds)
    engine: dict = field(default_factory=dict)  # config key -> {"cycles", "dram_bytes", "compute_bound", ...}
    program: object = None  # the engine program at the chosen configuration


# ---------------------------------------------------------------------------------------------------------
# export


def export_parts(model: str, out: pathlib.Path, seed: int = 0, check: bool = True) -> dict:
    """Build the whole-body model ``model`` (a built-in name or JSON config; seeded random weights), freeze and
    export its parts to ``out/parts/`` (``export_wholebody``; ``check``: each part's qonnx execution against the
    PyTorch hardware mode); returns the manifest."""
    import torch

    from binaryhpe.train.bidrn import randomize
    from binaryhpe.train.wholebody import build_wholebody, export_wholebody

    torch.manual_seed(seed)
    net = randomize(build_wholebody(model), seed=seed).eval()
    t = time.time()
    _log(f"exporting the parts of {model} to {out / 'parts'}" +
         (" (each checked: qonnx == PyTorch hardware mode) ..." if check else " (unchecked) ..."))
    man = export_wholebody(net, out / "parts", check=check, verbose=True)  # a line a part: minutes at paper scale
    _log(f"export: {time.time() - t:.0f} s")
    return man


def parts_of(manifest: dict) -> list[Part]:
    """The hardware parts a manifest lists (exported encoders and the heads' parts), in frame order."""
    parts = []
    for key, runs in ENCODER_RUNS.items():
        e = manifest.get("encoders", {}).get(key)
        if e is None or not e.get("exported"):
            why = (e or {}).get("reason", "not in the manifest")
            raise BinaryHPEError(f"{key}: not exported ({why}); the whole model needs every encoder in hardware")
        parts.append(Part(key, pathlib.Path(e["path"]), runs))
    for name, p in manifest.get("parts", {}).items():
        if not p.get("exported", True):
            raise BinaryHPEError(f"{name}: not exported ({p.get('reason', 'no reason given')}); the whole model needs "
                                 "every part in hardware")
        parts.append(Part(name, pathlib.Path(p["path"]), int(p.get("runs_per_frame", 1))))
    order = {"body_encoder": 0, "body_heads": 1, "boxnet": 2, "hand_encoder": 3, "hand_heads": 4, "face_encoder": 5}
    return sorted(parts, key=lambda p: order.get(p.name, 9))


# ---------------------------------------------------------------------------------------------------------
# per-part evaluation


def lower_part(part: Part) -> None:
    """Lower the part's QONNX once; keep the engine's graph (epilogues fused) and the dataflow's (before folding)."""
    from binaryhpe.compile.lower import load_qonnx
    from binaryhpe.compile.partition import partition_host
    from binaryhpe.compile.passes import FOLDING_STAGE, run_passes, standard_passes

    t = time.time()
    hp = partition_host(load_qonnx(part.qonnx), source=part.qonnx.name)  # a user's network: its hardware region
    part.mw, g = hp.hw, hp.lowered
    part.g_prepared = run_passes(g.copy(), standard_passes(), stop=FOLDING_STAGE)
    part.g = run_passes(g, standard_passes(), stop="forks")
    _log(f"{part.name}: lowered, {len(part.g.layers)} layers ({time.time() - t:.0f} s)")


def engine_figures(part: Part, cfg) -> dict:
    """The part's engine program at ``cfg``: modelled cycles, DRAM bytes and the roofline's bounds, per run."""
    from binaryhpe.compile.engine import compile_program, roofline

    prog = compile_program(part.g, cfg)
    rf = roofline(prog, cfg)  # (runs the cycle model once: cycles, DRAM bytes and both bounds)
    return {"cycles": rf["cycles"], "dram_bytes": rf["dram_bytes"],
            "compute_bound_cycles": rf["compute_bound_cycles"], "memory_bound_cycles": rf["memory_bound_cycles"],
            "ops": rf["binary_ops"] + rf["fixed_ops"], "descriptors": len(prog.ops)}


def dataflow_figures(part: Part, dev) -> dict:
    """The part as a dataflow design alone on ``dev`` (or a budget left by the engine), folded as fast as fits."""
    from binaryhpe.compile.folding import fold_for_device
    from binaryhpe.compile.rtlgen import check_rtl_kinds

    try:
        check_rtl_kinds(part.g_prepared)
    except BinaryHPEError as e:
        return {"fits": False, "why": str(e)}
    _, est = fold_for_device(part.g_prepared, dev, "max", None, progress=False)
    res = {k: int(est["totals"].get(k, 0)) for k in RESOURCES}
    if not est["fits"]:
        over = ", ".join(f"{k} {est['utilisation'][k]:.0%}" for k in est["over"])
        return {"fits": False, "why": f"even the slowest folding needs {over} of {dev.name}", "resources": res}
    return {"fits": True, "fps": est["fps"] / part.runs, "bound": est["bound"], "resources": res,
            "dram_bytes": int(est.get("dram_bytes_per_frame", 0)) * part.runs}


def _budget_left(dev, used: dict):
    """``dev`` with what ``used`` takes subtracted (the room a dataflow region has beside the engine)."""
    return dataclasses.replace(dev, **{k: max(0, int(getattr(dev, k) - used.get(k, 0))) for k in RESOURCES
                                       if hasattr(dev, k)})


# ---------------------------------------------------------------------------------------------------------
# designs


def _cfg_key(cfg) -> str:
    return (f"PE{cfg.pe}/PEF{cfg.pef}/LB{cfg.lb_depth}/WB{cfg.wb_depth}/CB{cfg.cb_depth}/BB{cfg.bb_depth}/"
            f"OB{cfg.ob_depth}")


def evaluate_design(parts: list[Part], assign: dict, cfg, dev, host_ms: float, dataflow: dict) -> dict:
    """Frame time, resources and DRAM traffic of one design (``assign``: part -> "engine" / "dataflow")."""
    from binaryhpe.compile.engine.resources import engine_resources

    clk = dev.clock_mhz * 1e6
    eng = [p for p in parts if assign[p.name] == "engine"]
    res = {k: 0 for k in RESOURCES}
    if eng:
        er = engine_resources(cfg, dev)
        for k in RESOURCES:
            res[k] += int(er.get(k, 0))
    per_part, hw_s, dram, cyc, bound, dev_bound = [], 0.0, 0, 0, 0.0, 0.0
    board_bytes_per_cycle = dev.dram_gbps * 1e9 / clk
    for p in parts:
        if assign[p.name] == "engine":
            f = p.engine[_cfg_key(cfg)]
            s = f["cycles"] * p.runs / clk
            cyc += f["cycles"] * p.runs
            # the engine's roofline (its arrays and its 64-bit DRAM port), and the device's (the same arrays and
            # the board's DRAM bandwidth)
            bound += max(f["compute_bound_cycles"], f["memory_bound_cycles"]) * p.runs
            dev_bound += max(f["compute_bound_cycles"], f["dram_bytes"] / board_bytes_per_cycle) * p.runs
            dram += f["dram_bytes"] * p.runs
            per_part.append({"part": p.name, "runs": p.runs, "on": "engine", "ms": 1e3 * s,
                             "cycles_per_run": f["cycles"], "dram_bytes": f["dram_bytes"] * p.runs})
        else:
            d = dataflow[p.name]
            s = 1.0 / d["fps"]
            dram += d.get("dram_bytes", 0)
            for k in RESOURCES:
                res[k] += d["resources"].get(k, 0)
            per_part.append({"part": p.name, "runs": p.runs, "on": "dataflow", "ms": 1e3 * s,
                             "dram_bytes": d.get("dram_bytes", 0)})
        hw_s += s
    frame_s = hw_s + host_ms / 1e3
    budget = dev.budget()
    util = {k: res[k] / budget[k] for k in RESOURCES if budget.get(k)}
    return {"assign": dict(assign), "engine": _cfg_key(cfg) if eng else None, "engine_config": cfg if eng else None,
            "dataflow_used": {p.name: dataflow[p.name] for p in parts if assign[p.name] == "dataflow"},
            "fps": 1.0 / frame_s, "latency_ms": 1e3 * frame_s, "hardware_ms": 1e3 * hw_s, "host_ms": host_ms,
            "fps_host_overlapped": 1.0 / max(hw_s, host_ms / 1e3),
            "resources": res, "utilisation": util, "dram_bytes_per_frame": int(dram),
            "dram_gbps_needed": dram / frame_s / 1e9, "engine_cycles_per_frame": int(cyc),
            "roofline_fraction": bound / cyc if cyc else None,
            "roofline_fraction_board": dev_bound / cyc if cyc else None, "parts": per_part}


def pareto(points: list[dict]) -> list[dict]:
    """The designs no other beats on fps while using no more LUT, BRAM, DSP and DRAM bandwidth."""
    keys = lambda d: (d["resources"]["lut"], d["resources"]["bram18"] + 4 * d["resources"].get("uram", 0),  # noqa: E731
                      d["resources"]["dsp"], d["dram_gbps_needed"])
    front = []
    for d in points:
        kd = keys(d)
        if not any(o is not d and o["fps"] >= d["fps"] and all(a <= b for a, b in zip(keys(o), kd))
                   and (o["fps"] > d["fps"] or keys(o) != kd) for o in points):
            front.append(d)
    return sorted(front, key=lambda d: d["fps"])


def search(parts: list[Part], dev, host_ms: float, arch: str) -> dict:
    """Every design of ``arch`` that fits ``dev``: all-engine at each configuration the device holds, all-dataflow,
    and (``auto``) hybrids; returns the chosen one, the candidates and the Pareto front."""
    from binaryhpe.compile.engine import EngineConfig

    fitting = [c for c in EngineConfig.candidates(dev) if c.fits(dev)]
    designs, notes, cfgs, refused = [], [], [], []
    if arch in ("engine", "auto"):
        if not fitting:
            notes.append(f"no engine configuration fits {dev.name} by the engine's resource model")
        for c in fitting:  # a configuration whose buffers cannot hold some layer of some part is no candidate
            try:
                for p in parts:
                    if _cfg_key(c) not in p.engine:
                        p.engine[_cfg_key(c)] = engine_figures(p, c)
            except BinaryHPEError as e:
                refused.append(f"{_cfg_key(c)}: {p.name}: {e}")
                continue
            cfgs.append(c)
            designs.append(evaluate_design(parts, {p.name: "engine" for p in parts}, c, dev, host_ms, {}))
        if fitting and not cfgs:
            notes.append(f"none of the {len(fitting)} engine configurations that fit {dev.name} takes every part "
                         f"(the largest: {refused[0]})")
    alone = {}
    if arch in ("dataflow", "auto"):
        for p in parts:
            alone[p.name] = dataflow_figures(p, dev)
        bad = [p.name for p in parts if not alone[p.name]["fits"]]
        if not bad:
            d = evaluate_design(parts, {p.name: "dataflow" for p in parts}, cfgs[0] if cfgs else None, dev,
                                host_ms, alone)
            if all(v <= 1.0 for v in d["utilisation"].values()):
                designs.append(d)
            else:
                notes.append("all parts as dataflow side by side need " + ", ".join(
                    f"{k} {v:.0%}" for k, v in d["utilisation"].items() if v > 1.0))
        else:
            notes.append(f"no all-dataflow design: {', '.join(bad)} cannot be dataflow")
    if arch == "auto" and cfgs:
        # hybrids: one part as a dataflow region beside the engine (folded into what the engine leaves)
        from binaryhpe.compile.engine.resources import engine_resources

        front = pareto(designs) if designs else []
        for d in front[-4:]:
            c = d["engine_config"]
            if c is None:
                continue
            left = _budget_left(dev, engine_resources(c, dev))
            for p in parts:
                if not alone.get(p.name, {}).get("fits"):
                    continue
                df = dataflow_figures(p, left)
                if not df["fits"]:
                    continue
                assign = {q.name: ("dataflow" if q is p else "engine") for q in parts}
                designs.append(evaluate_design(parts, assign, c, dev, host_ms, {p.name: df}))
    if arch == "auto" and cfgs and designs:
        # grow the best hybrid: more dataflow regions while they fit beside the engine and gain
        best_h = max(designs, key=lambda d: d["fps"])
        c = best_h["engine_config"]
        while c is not None and any(v == "engine" for v in best_h["assign"].values()):
            used = {k: v for k, v in best_h["resources"].items()}
            left = _budget_left(dev, used)
            gains = []
            for p in parts:
                if best_h["assign"][p.name] != "engine" or not alone.get(p.name, {}).get("fits"):
                    continue
                df = dataflow_figures(p, left)
                if df["fits"]:
                    assign = dict(best_h["assign"], **{p.name: "dataflow"})
                    dfs = {q: _df_of(best_h, q) for q, v in best_h["assign"].items() if v == "dataflow"}
                    gains.append(evaluate_design(parts, assign, c, dev, host_ms, {**dfs, p.name: df}))
            better = [d for d in gains if d["fps"] > best_h["fps"]]
            if not better:
                break
            best_h = max(better, key=lambda d: d["fps"])
            designs.append(best_h)
    if not designs:
        raise BinaryHPEError(f"no {arch} design of the whole model fits {dev.name}: " + "; ".join(notes))
    best = max(designs, key=lambda d: d["fps"])
    by_kind = {}
    for d in designs:
        k = _kind_of(d)
        by_kind[k] = max(by_kind.get(k, 0.0), d["fps"])
    return {"chosen": best, "candidates": len(designs), "pareto": pareto(designs), "notes": notes,
            "engine_configs_fitting": len(fitting), "engine_configs_used": len(cfgs),
            "engine_configs_refused": refused, "dataflow_alone": alone, "best_fps_by_design": by_kind}


def _kind_of(d: dict) -> str:
    kinds = set(d["assign"].values())
    return "hybrid" if len(kinds) > 1 else next(iter(kinds))


def _df_of(design: dict, part: str) -> dict:
    """The dataflow figures a design used for ``part`` (kept in its per-part rows and resources)."""
    return design["dataflow_used"][part]


def why(choice: dict, arch: str) -> str:
    """One paragraph: what won and against what."""
    b = choice["chosen"]
    kind = _kind_of(b)
    s = (f"{kind} design ({b['engine'] or 'no engine'}; " +
         ", ".join(f"{p['part']} on the {p['on']}" for p in b["parts"]) +
         f") is the fastest of {choice['candidates']} {arch} candidates that fit: {b['fps']:.2f} fps")
    others = [f"best {k} {v:.2f} fps" for k, v in sorted(choice["best_fps_by_design"].items()) if k != kind]
    if others:
        s += " (" + ", ".join(others) + ")"
    df = [f"{n}: {d['why']}" for n, d in choice["dataflow_alone"].items() if not d.get("fits")]
    if df:
        s += "; not as dataflow: " + "; ".join(df)
    if choice["notes"]:
        s += "; " + "; ".join(choice["notes"])
    return s


# ---------------------------------------------------------------------------------------------------------
# the build


def _design_row(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in ("engine_config", "dataflow_used")}


def host_figures(manifest: dict, dev) -> dict:
    """The host part's time per frame on the board's CPU (``Device.host_cpu`` at ``host_cpu_mhz``), by the
    Cortex-A53 model ``compile.host.a53.host_time``."""
    from binaryhpe.compile.host.a53 import host_time

    nodes = manifest.get("host")
    if not isinstance(nodes, list):  # an older manifest: names and reasons only, no sizes
        raise BinaryHPEError("the export manifest lists the host part without sizes (re-export the model)")
    t = host_time(nodes, dev.host_cpu_mhz * 1e6, dram_bytes_per_s=dev.dram_gbps * 1e9)
    mesh = sum(r["ms"] for r in t.get("per_node", []) if str(r.get("name", "")).startswith("smplx"))
    return {"nodes": [n["name"] for n in nodes], "ms_per_frame": t["ms_per_frame"], "model": t["model"],
            "cpu": dev.host_cpu, "cpu_mhz": dev.host_cpu_mhz, "smplx_ms": mesh,
            "ms_per_frame_without_smplx": t["ms_per_frame"] - mesh, "per_node": t.get("per_node", [])}


def build_whole(model: str, out, arch: str = "auto", device=None, seed: int = 0, sim: bool = False) -> dict:
    """``binaryhpe build WHOLE_MODEL --arch ARCH --device NAME -o OUT``: export, lower every part, search the
    designs, write ``OUT/report.json`` (and ``report.md`` / ``report.html``); with ``sim`` every part's engine
    program runs in Verilator against the exact reference (small models: a paper-scale part takes minutes)."""
    from binaryhpe.compile.devices import load_device
    from binaryhpe.compile.engine import compile_program
    from binaryhpe.compile.engine_build import simulate_engine, write_program
    from binaryhpe.compile.report import write_wholebody_reports

    out = pathlib.Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if device is None:
        raise BinaryHPEError(f"building the whole model {model} needs --device (the design is chosen per device)")
    dev = load_device(device)
    t0 = time.time()
    _log(f"whole model {model} -> {out} (arch {arch}, device {dev.name})")
    manifest = export_parts(model, out, seed)
    parts = parts_of(manifest)
    for p in parts:
        lower_part(p)
    host = host_figures(manifest, dev)
    _log(f"host part: {host['ms_per_frame']:.2f} ms a frame ({host['model']})")
    choice = search(parts, dev, host["ms_per_frame"], arch)
    best = choice["chosen"]
    cfg = best["engine_config"]
    _log(f"chosen: {why(choice, arch)}")
    report = {"model": model, "arch": _kind_of(best), "arch_requested": arch,
              "device": dev.to_dict(), "fps": best["fps"], "latency_ms": best["latency_ms"],
              "fps_host_overlapped": best["fps_host_overlapped"],
              "fps_without_smplx_mesh": 1e3 / (best["hardware_ms"] + host["ms_per_frame_without_smplx"]),
              "predicted_cycles_per_frame": best["engine_cycles_per_frame"],
              "dram_bytes_per_frame": best["dram_bytes_per_frame"], "dram_gbps_needed": best["dram_gbps_needed"],
              "dram_gbps_device": dev.dram_gbps, "roofline_fraction": best["roofline_fraction"],
              "roofline_fraction_board": best["roofline_fraction_board"],
              "resources": best["resources"], "utilisation": best["utilisation"],
              "fits": all(v <= 1.0 for v in best["utilisation"].values()),
              "host": host, "parts": best["parts"], "engine": {"config": cfg.to_dict() if cfg else None},
              "choice": {"why": why(choice, arch), "candidates": choice["candidates"], "notes": choice["notes"],
                         "dataflow_alone": choice["dataflow_alone"]},
              "pareto": [_design_row(d) for d in choice["pareto"]], "export": {k: v for k, v in manifest.items()
                                                                               if k in ("config", "parts")},
              "bit_exact": None}
    if cfg is not None:  # the engine programs of the chosen configuration, one directory a part
        for p in parts:
            if best["assign"][p.name] != "engine":
                continue
            p.program = compile_program(p.g, cfg)  # (the search keeps figures, not the programs)
            files = write_program(p.program, cfg, out / "parts" / p.name)
            next(r for r in report["parts"] if r["part"] == p.name)["engine_files"] = files["dir"]
    if cfg is not None and dev.vendor == "xilinx":
        from binaryhpe.compile.engine_build import zynq_system

        report["vivado_system"] = zynq_system(out, dev, cfg)
    if sim:
        sims = {}
        for p in parts:
            if best["assign"][p.name] != "engine":
                continue
            _log(f"{p.name}: engine simulation ...")
            r = simulate_engine(p.g, p.mw, p.program, cfg, out, seed=seed, frames=1)  # one Verilator build for all
            r.pop("outputs", None)
            sims[p.name] = {k: r[k] for k in ("bit_exact", "runs", "cycles_per_frame", "model_mismatches",
                                               "reference_vs_qonnx")}
            row = next(x for x in report["parts"] if x["part"] == p.name)
            row["measured_cycles_per_run"] = r["cycles_per_frame"]
            row["bit_exact"] = r["bit_exact"]
        report["simulation"] = sims
        report["bit_exact"] = all(s["bit_exact"] for s in sims.values()) if sims else None
    report["wall_s"] = round(time.time() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=_jsonable))
    write_wholebody_reports(json.loads((out / "report.json").read_text()), out)
    _log(f"{dev.name}: {report['fps']:.2f} fps (latency {report['latency_ms']:.1f} ms, host {host['ms_per_frame']:.1f} ms)"
         f" -> {out / 'report.json'}")
    return report


def _jsonable(o):
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, float) and math.isinf(o):
        return None
    return str(o)


def check_whole_options(args, backend: str) -> None:
    """Flags of ``binaryhpe build`` a whole-model build does not take, refused in one line."""
    bad = [f for f in ("folding", "target_cycles", "fps", "waves", "synth", "bitstream", "inputs")
           if getattr(args, f, None)]
    if bad:
        raise BinaryHPEError(f"--{bad[0].replace('_', '-')} is not taken by a whole-model build ({args.model}): "
                             "build one part's QONNX (OUT/parts/*.onnx) for it")
    if backend != "rtl" or (getattr(args, "target", None) or "fpga") != "fpga":
        raise BinaryHPEError(f"the whole model {args.model} builds for an FPGA with our RTL (--backend rtl, "
                             "--target fpga)")
    if args.device is None:
        raise BinaryHPEError(f"building the whole model {args.model} needs --device (the design is chosen per device)")


def choose_arch(qonnx, device, out) -> tuple[str, str]:
    """``--arch auto`` for one network (``qonnx``): evaluate the dataflow design (folded as fast as fits) and the
    engine (every configuration that fits) on ``device``; returns the faster one that fits and why (also written
    to ``OUT/arch_choice.json``)."""
    from binaryhpe.compile.devices import load_device

    dev = load_device(device)
    part = Part("model", pathlib.Path(qonnx), 1)
    lower_part(part)
    choice = search([part], dev, 0.0, "auto")
    arch = choice["chosen"]["assign"]["model"]
    text = why(choice, "auto")
    _log(f"--arch auto on {dev.name}: {arch} ({text})")
    (pathlib.Path(out) / "arch_choice.json").write_text(json.dumps({"arch": arch, "why": text, "pareto": [
        _design_row(d) for d in choice["pareto"]], "dataflow_alone": choice["dataflow_alone"]}, indent=1,
        default=_jsonable))
    return arch, text


__all__ = ["ENCODER_RUNS", "Part", "build_whole", "check_whole_options", "choose_arch", "dataflow_figures",
           "engine_figures", "evaluate_design", "export_parts", "host_figures", "lower_part", "pareto", "parts_of",
           "search", "why"]
