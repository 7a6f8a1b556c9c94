"""The FINN backend (``binaryhpe build --backend finn``): the cleaned QONNX and our hardware graph's folding,
handed to FINN (PyPI ``finn-plus`` 1.6.1) in its own environment ``.venv-finn`` (made by ``.ci/setup-finn``).

Two flows (``report.json``: ``finn_flow``). ``streamline``: FINN's own transformations take the QONNX to HW
layers (the BNN-PYNQ nets). ``hw_graph``: for residual networks (RPReLU, residual adds, concat/split, forks),
which FINN's streamlining cannot absorb into thresholds, ``finn_graph.py`` writes FINN's HW layers from our
hardware graph, one exact mapping a kind; FINN partitions, specializes, estimates and executes them.
``auto`` picks ``hw_graph`` when the graph holds a residual kind.

This module runs in the main environment; ``finn_job.py`` runs FINN in a subprocess (paths and JSON in,
``result.json`` and ``.npy`` out). It writes ``OUT/finn/``: the FINN ONNX at every stage (tidy, streamlined,
HW layers, the dataflow parent and the folded dataflow partition), ``folding_config.json`` (our PE/SIMD on
FINN's node names), ``dataflow_build_config.json`` and ``build.py`` that take the partition to a bitstream
with Vivado. With ``sim`` it executes FINN's graph (python mode of FINN's HW layers, no vendor tool) on random
and extreme frames and compares every output element with our integer reference (``HwGraph.execute``).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.graph import HwGraph

REPO = pathlib.Path(__file__).resolve().parents[2]
JOB = pathlib.Path(__file__).resolve().with_name("finn_job.py")
#: the board and part the build configuration targets (BNN-PYNQ's board), and its clock
BOARD, FPGA_PART, CLK_NS = "Pynq-Z1", "xc7z020clg400-1", 10.0
JOB_TIMEOUT_S = 1800


def finn_python() -> pathlib.Path:
    """The interpreter of FINN's environment (``BINARYHPE_FINN_PYTHON`` overrides ``.venv-finn``)."""
    p = pathlib.Path(os.environ.get("BINARYHPE_FINN_PYTHON", REPO / ".venv-finn" / "bin" / "python"))
    if not p.is_file():
        raise BinaryHPEError(f"finn: FINN's environment is missing ({p} not found): run .ci/setup-finn")
    return p


def folding_of(g: HwGraph) -> list[dict]:
    """Our layers that FINN's layers correspond to, in graph order, with their folding: every MVU (with the
    Threshold it feeds through single-consumer requant/bias/width-converter layers, which FINN absorbs into
    its MVAU), window generators, thresholds and pools."""
    from binaryhpe.compile.kinds.elementwise import AddConst, MulShift, Requant, Threshold
    from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
    from binaryhpe.compile.kinds.plumbing import Dwc, Fifo
    from binaryhpe.compile.kinds.pool import Pool
    from binaryhpe.compile.kinds.swg import SlidingWindow

    cons = g.consumer_map()
    rows = []
    for lay in g.layers:
        if isinstance(lay, (XnorMvu, FxpMvu)):
            row = {"kind": "mvu", "name": lay.name, "n": lay.n, "cout": lay.cout, "pe": lay.pe, "simd": lay.simd,
                   "between": []}
            t = lay.outputs[0]
            while len(cons.get(t, [])) == 1:
                nxt = cons[t][0]
                if isinstance(nxt, Threshold):
                    row["threshold"] = nxt.name
                    break
                if not isinstance(nxt, (Requant, AddConst, MulShift, Dwc, Fifo)):
                    break
                row["between"].append(nxt.name)
                t = nxt.outputs[0]
            rows.append(row)
        elif isinstance(lay, SlidingWindow):
            rows.append({"kind": "swg", "name": lay.name, "lanes": lay.lanes,
                         "pool": any(isinstance(c, Pool) for c in cons.get(lay.outputs[0], []))})
        elif isinstance(lay, Threshold):
            rows.append({"kind": "threshold", "name": lay.name, "lanes": lay.lanes})
        elif isinstance(lay, Pool):
            rows.append({"kind": "pool", "name": lay.name, "lanes": lay.lanes})
    return rows


#: kinds FINN's streamlining cannot take (docs/backends.md): with any of them, ``auto`` uses the hw_graph flow
RESIDUAL_KINDS = ("Prelu", "JoinAdd", "Concat", "Split", "Fork")
FLOWS = ("auto", "streamline", "hw_graph")


def choose_flow(g: HwGraph, flow: str = "auto") -> str:
    if flow not in FLOWS:
        raise BinaryHPEError(f"finn: unknown flow {flow!r}: choose one of {', '.join(FLOWS)}")
    if flow != "auto":
        return flow
    return "hw_graph" if any(type(lay).__name__ in RESIDUAL_KINDS for lay in g.layers) else "streamline"


def test_frames(shape, seed: int, n_random: int = 3) -> np.ndarray:
    """Random frames on [-1, 1) and the extremes: all +1, all -1, saturating (|x| = 8, random signs), zeros."""
    rng = np.random.default_rng(seed)
    xs = [rng.uniform(-1, 1, size=shape) for _ in range(n_random)]
    xs += [np.ones(shape), -np.ones(shape), np.where(rng.random(shape) < 0.5, -8.0, 8.0), np.zeros(shape)]
    return np.stack(xs).astype(np.float32)


def _layer_of(g: HwGraph, info: dict) -> str | None:
    """Our layer that a QONNX node's output tensors became (None when the node has no layer of its own)."""
    for t in info.get("qonnx_outputs", []):
        hw = g.onnx_names.get(t)
        lay = g.producer(hw) if hw else None
        if lay is not None:
            return lay.name
    return None


def _our_estimates(g: HwGraph, names: list[str]) -> dict:
    out = {}
    for name in names:
        lay = g.layer(name)
        d = {"kind": type(lay).__name__, "cycles": int(lay.cycles()["ii"])}
        if hasattr(lay, "resources"):
            d.update(lay.resources())
        out[name] = d
    return out


def _compare_traced(g: HwGraph, tmap: dict, names: list[str], npz, envs: list[dict]) -> dict:
    """Our reference's every (non-window) tensor (``envs``: ``HwGraph.execute`` of each frame) against the FINN
    tensor that stands for it."""
    idx = {n: i for i, n in enumerate(names)}
    bad = total = 0
    first, layers_bad = None, []
    for ours, theirs in tmap.items():
        got = npz[f"t{idx[theirs]}"]
        fmt = g.tensors[ours].fmt
        for f, env in enumerate(envs):
            ref = np.asarray(env[ours], dtype=np.int64)
            ref = 2 * ref - 1 if fmt.bipolar else ref  # FINN's binary activations are -1/+1 (INT2)
            y = np.asarray(got[f], dtype=np.float64).reshape(ref.shape)
            n = int(np.count_nonzero(y != ref))
            bad, total = bad + n, total + ref.size
            if n and first is None:
                first = {"tensor": ours, "finn_tensor": theirs, "frame": f}
            if n and ours not in layers_bad:
                layers_bad.append(ours)
    return {"traced_mismatches": bad, "traced_elements": total, "first_mismatch": first,
            "tensors_with_mismatches": layers_bad[:20]}


def build(qonnx: pathlib.Path, g: HwGraph, out: pathlib.Path, sim: bool, seed: int = 0,
          int2_padding: bool = True, flow: str = "auto", frames: list | None = None, extra_frames=None) -> dict:
    """Run FINN on ``qonnx`` with ``g``'s folding; see the module doc. ``int2_padding=False`` hands FINN the
    zero-padded binary convolutions unchanged (to measure FINN's -1 padding; see finn_job.ZeroPadBipolarAsInt2).
    ``flow``: ``auto``, ``streamline`` or ``hw_graph`` (module doc). ``frames``: the hw_graph flow's integer
    input frames (H, W, C) instead of the QONNX's test frames (``qonnx`` may then be None: a hand-built graph).
    ``extra_frames``: a user's float frames (``--inputs``, the QONNX input's layout without the batch dimension),
    run after the test frames; FINN's outputs of them come back as ``user_outputs`` (our integers, H x W x C).
    FINN takes one node an operation: a graph with Epilogues is handled as a copy with them unfused
    (``backends.unfused``), which the folding, the FINN nodes and the traced comparison all read."""
    from binaryhpe.compile.backends import unfused

    py = finn_python()
    g = unfused(g)
    flow = choose_flow(g, flow)
    if frames is not None and flow != "hw_graph":
        raise BinaryHPEError("finn: integer frames are for the hw_graph flow; the streamline flow runs the QONNX")
    qonnx = pathlib.Path(qonnx).resolve() if qonnx is not None else None
    proj = pathlib.Path(out).resolve() / "finn"
    proj.mkdir(parents=True, exist_ok=True)
    for stale in ("result.json", "finn_outputs.npy", "finn_hw.onnx", "finn_tidy.onnx", "finn_streamlined.onnx"):
        (proj / stale).unlink(missing_ok=True)
    job = {"qonnx": str(qonnx) if qonnx else None, "out": str(proj),
           "folding": folding_of(g) if flow == "streamline" else [], "fpga_part": FPGA_PART,
           "board": BOARD, "clk_ns": CLK_NS, "inputs": None, "int2_padding": int2_padding}
    if flow == "hw_graph":
        from binaryhpe.compile.backends import finn_graph

        model, job["pairs"], tmap = finn_graph.build_model(g)
        model.save(str(proj / "finn_hw.onnx"))
        job["hw_onnx"] = str(proj / "finn_hw.onnx")
    if sim:
        from binaryhpe.compile.lower import load_qonnx
        from binaryhpe.compile.reference import hw_input, onnx_context

        from binaryhpe.compile.frames import quantize

        if frames is None:
            mw = load_qonnx(qonnx)
            xs = test_frames(mw.get_tensor_shape(mw.graph.input[0].name), seed)
            n_test = len(xs)
            if extra_frames is not None:
                xs = np.concatenate([xs, np.asarray(extra_frames, dtype=np.float32)[:, None]])
        elif extra_frames is not None:
            raise BinaryHPEError("finn: a user's float frames go with the QONNX's test frames, not integer frames")

        def host_ints():  # test frames: the QONNX execution's input quantizer; a user's: g.input_quant
            return ([hw_input(g, onnx_context(mw, x)) for x in xs[:n_test]]
                    + [quantize(g, x[0]) for x in xs[n_test:]])

        if flow == "hw_graph":  # FINN's graph starts at our integers (the host quantizes the input)
            ints = ([np.asarray(f, dtype=np.int64) for f in frames] if frames is not None else host_ints())
            fin = np.stack(ints)[:, None]
            if g.tensors[g.input].fmt.bipolar:  # binary values reach FINN as -1/+1 (INT2)
                fin = 2 * fin - 1
            np.save(proj / "inputs.npy", fin.astype(np.float32))
            n_frames = len(ints)
            job["trace"] = sorted(set(tmap.values()))
        else:
            np.save(proj / "inputs.npy", xs)
            n_frames = len(xs)
        job["inputs"] = str(proj / "inputs.npy")
    (proj / "job.json").write_text(json.dumps(job, indent=1))
    what = (f"{len(job['pairs'])} FINN HW layers written from the hardware graph" if flow == "hw_graph"
            else "FINN's streamlining of the QONNX")
    print(f"[finn] {flow} flow: {what}; running FINN in {py.parent.parent.name} (partition, specialize, "
          f"estimates, code generation{f', python execution of {n_frames} frames' if sim else ''})"
          f", log {proj / 'finn_job.log'}", flush=True)
    t0 = time.time()
    with open(proj / "finn_job.log", "w") as log:
        try:
            subprocess.run([str(py), str(JOB), str(proj / "job.json")], stdout=log, stderr=subprocess.STDOUT,
                           cwd=proj, timeout=JOB_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise BinaryHPEError(f"finn: FINN's job ran past {JOB_TIMEOUT_S} s (log: {proj / 'finn_job.log'})") from None
    rfile = proj / "result.json"
    if not rfile.is_file():
        tail = (proj / "finn_job.log").read_text()[-1500:]
        raise BinaryHPEError(f"finn: FINN's job wrote no result (log: {proj / 'finn_job.log'}):\n{tail}")
    res = json.loads(rfile.read_text())
    if "unsupported" in res:
        u = res["unsupported"]
        layer = _layer_of(g, u)
        src = "a node FINN made after QONNX node" if u.get("qonnx_origin_of_ancestor") else "QONNX node"
        what = (f"layer {layer!r} ({src} {u.get('qonnx_node')!r}, op type {u.get('qonnx_op_type')})"
                if layer else f"{src} {u.get('qonnx_node')!r} (op type {u.get('qonnx_op_type')})")
        raise BinaryHPEError(f"finn cannot take {what}: {u['reason']} (FINN node {u.get('finn_node')!r}, "
                             f"{u.get('finn_op_type')}, after {u['stage']})")
    if not res.get("ok"):
        raise BinaryHPEError(f"finn: {res.get('error')} (log: {proj / 'finn_job.log'})")
    print(f"[finn] FINN took the network in {time.time() - t0:.0f} s: {len(res.get('nodes', []))} layers in its "
          f"dataflow partition, code generated for {(res.get('codegen') or {}).get('layers')}", flush=True)
    report = {"backend": "finn", "finn_flow": flow, "project": str(proj), "bit_exact": None, "mismatches": None,
              "compared_elements": None, "finn_stages": res["stages"], "finn_wall_s": round(time.time() - t0, 1),
              "finn_layers": len(res.get("nodes", [])), "finn_codegen": res.get("codegen"),
              "build_config": str(proj / "dataflow_build_config.json"),
              "folding_config": str(proj / "folding_config.json"), "fpga_part": FPGA_PART, "board": BOARD}
    if "requant_impl" in res:
        report["finn_requant_impl"] = res["requant_impl"]
        report["finn_requant_hls_reasons"] = res["requant_hls_reasons"]
    if sim:  # our reference, only now that FINN took the whole network
        fmt = g.tensors[g.output].fmt
        if flow == "hw_graph":
            envs = [g.execute(x) for x in ints]
            refs = [2 * e[g.output] - 1 if fmt.bipolar else e[g.output] for e in envs]
        else:  # FINN's graph ends in the QONNX's real values
            refs = [fmt.to_real(g.execute(q, keep_all=False)[g.output]) for q in host_ints()]
        got = np.load(res["outputs"])
        bad = total = 0
        ours = []  # FINN's outputs as our integers (bipolar 0/1), for a user's frames
        for y, ref in zip(got, refs):
            y = np.asarray(y, dtype=np.float64)
            if flow == "hw_graph":
                y = y.reshape(ref.shape)
            else:
                y = y.reshape(ref.shape) if y.ndim == 2 else y[0].transpose(1, 2, 0)
            bad += int(np.count_nonzero(y != ref))
            total += ref.size
            ours.append((y + 1) / 2 if fmt.bipolar else y if flow == "hw_graph" else y * 2.0**fmt.frac)
        if extra_frames is not None:
            report["user_outputs"] = ours[n_test:]
        if res.get("traced"):  # every FINN tensor standing for one of ours, on every frame
            report.update(_compare_traced(g, tmap, job["trace"], np.load(res["traced"]), envs))
        report.update({"bit_exact": bad == 0 and total > 0 and not report.get("traced_mismatches"),
                       "mismatches": bad, "compared_elements": total,
                       "frames": len(refs), "finn_stage_checks_vs_qonnx": res.get("stage_checks")})
    finn_est, ours_est, rows, row_of = {}, {}, [], {}
    for p in res["pairs"]:  # one row per layer (or layers) of ours; FINN nodes standing for it are summed
        f = res["estimates"].get(p["finn_node"], {})
        finn_est[p["finn_node"]] = {"op_type": p["op_type"], **f}
        key = tuple(p["ours"]) or (p["finn_node"],)
        if key not in row_of:
            o = _our_estimates(g, p["ours"])
            ours_est.update(o)
            row_of[key] = {"finn_nodes": [], "op_types": [], "ours": p["ours"], "folding": p["folding"],
                           "finn_cycles": None, "our_cycles": max((v["cycles"] for v in o.values()), default=None),
                           "finn_lut": 0.0, "our_lut": sum(v.get("lut", 0) for v in o.values()),
                           "finn_bram18": 0.0, "our_bram18": sum(v.get("bram18", 0) for v in o.values())}
            rows.append(row_of[key])
        r = row_of[key]
        r["finn_nodes"].append(p["finn_node"])
        r["op_types"].append(p["op_type"])
        if f.get("cycles") is not None:
            r["finn_cycles"] = max(r["finn_cycles"] or 0, f["cycles"])
        r["finn_lut"] += float(f.get("lut") or 0)
        r["finn_bram18"] += float(f.get("bram_18k") or 0)
    for r in rows:
        r["finn_node"] = r["finn_nodes"][0]
    for name, f in res["estimates"].items():  # FINN layers with no counterpart of ours (none expected)
        finn_est.setdefault(name, f)
    report["estimates"] = {"finn": finn_est, "ours": ours_est, "layers": rows}
    return report
