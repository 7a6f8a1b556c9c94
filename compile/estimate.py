"""Resource, rate and roofline estimates of a hardware graph on a device, and device-aware folding.

Everything here is read from the layer kinds themselves (``HwLayer.resources()`` and ``HwLayer.cycles()``,
next to each kind's numerics and RTL); this module only adds them up, places the weight memories
(block RAM, UltraRAM or DRAM) and chooses the folding.

- :func:`estimate` -- per-layer and total LUT/FF/BRAM18/URAM/DSP, cycles, fps and latency at the device
  clock, DRAM traffic and the roofline (compute bound from LUTs/DSPs at the clock, memory bound from the
  DRAM bandwidth).
- :func:`fold_for_device` -- PE/SIMD per matrix-vector unit so that the design fits the device and runs at
  a target frame rate, or as fast as fits (``fps="max"``): the slowest layer sets the rate.
- :func:`device_folding` -- the same from a QONNX file, returned as a ``--folding``-style override dict
  (``{layer: {"pe": .., "simd": ..}}``) for :func:`binaryhpe.compile.flow.step_lower`.
- :func:`apply_device_options` -- the ``report.json`` keys of ``binaryhpe build --device/--fps/--bitstream``.

Weights that do not fit on chip are streamed from DRAM and their bandwidth is part of the estimate: the
streamed MVU (``bhpe_mvu_wstream``) re-reads its whole weight matrix for every output pixel, so it costs
exactly its weight port's beats, ``pixels * NF * SF`` words of ``PE * SIMD * w_bits`` bits padded to whole
bytes (= ``pixels * N * Cout * w_bits`` bits when the word is a whole number of bytes), a frame
(``XnorMvu/FxpMvu.wstream_bytes_per_frame``). :func:`apply_storage` turns a placement's ``"dram"`` layers into
streamed MVUs (``weight_source = "stream"``) so that the generated RTL has their ``w_<layer>`` ports.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import pathlib
import time

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.devices import Device, load_device
from binaryhpe.compile.graph import HwGraph
from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
from binaryhpe.compile.kinds.plumbing import _bram18

RES_KEYS = ("lut", "ff", "bram18", "dsp")
#: fraction of each device resource a design may use and still be called "fits" (routing headroom)
UTIL_LIMIT = {"lut": 0.85, "ff": 0.85, "bram18": 0.95, "uram": 0.95, "dsp": 0.95}


def _log(msg: str) -> None:
    print(f"[estimate] {msg}", flush=True)


def _is_mvu(lay) -> bool:
    return isinstance(lay, (XnorMvu, FxpMvu))


def weight_bits(lay) -> int:
    """Bits of an MVU's weight matrix (0 for other kinds)."""
    if isinstance(lay, XnorMvu):
        return lay.n * lay.cout
    if isinstance(lay, FxpMvu):
        return lay.n * lay.cout * lay.w_w
    return 0


def _rom_shape(lay) -> tuple[int, int]:
    """(width, depth) of an MVU's weight ROM."""
    wb = 1 if isinstance(lay, XnorMvu) else lay.w_w
    return lay.pe * lay.simd * wb, lay.nf * lay.sf


def _rom_bram(lay) -> int:
    """BRAM18 of an MVU's weight ROM as its kind's resource model places it (0: in logic / LUT RAM, or no
    ROM: streamed weights)."""
    from binaryhpe.compile.kinds.mvu import xnor_rom_bram18

    if lay.streamed:
        return 0
    width, depth = _rom_shape(lay)
    return xnor_rom_bram18(width, depth) if isinstance(lay, XnorMvu) else _bram18(width, depth)


def _streamed_resources(lay) -> dict:
    """Resources of ``lay`` as a streamed-weight MVU (its kind's model with ``weight_source = "stream"``)."""
    if lay.streamed:
        return lay.resources()
    s = copy.copy(lay)  # shallow: the weights are shared, not copied
    s.weight_source = "stream"
    return s.resources()


def _wstream_bytes(lay) -> int:
    """DRAM bytes a frame of a streamed MVU: the beats of its weight port (words padded to whole bytes)."""
    if lay.streamed:
        return lay.wstream_bytes_per_frame
    s = copy.copy(lay)
    s.weight_source = "stream"
    return s.wstream_bytes_per_frame


def apply_storage(g: HwGraph, storage: dict) -> list[str]:
    """Make every MVU that ``storage`` places in ``"dram"`` a streamed-weight MVU (``weight_source =
    "stream"``: RTL ``bhpe_mvu_wstream`` with a top-level ``w_<layer>`` weight port); returns their names.
    Call it on the graph before the RTL is generated (``uram`` placements keep their ROM)."""
    names = []
    for lay in g.layers:
        if _is_mvu(lay) and storage.get(lay.name) == "dram":
            lay.weight_source = "stream"
            names.append(lay.name)
    return names


def _uram(width: int, depth: int) -> int:
    """UltraRAMs (4K x 72) of a width x depth memory."""
    return -(-width // 72) * -(-depth // 4096)


def layer_ops(lay) -> dict:
    """Operations a frame (a multiply-accumulate counts 2): ``binary`` (XNOR-popcount), ``fixed``."""
    if isinstance(lay, XnorMvu):
        return {"binary": 2 * lay.n * lay.cout * lay.pixels, "fixed": 0}
    if isinstance(lay, FxpMvu):
        return {"binary": 0, "fixed": 2 * lay.n * lay.cout * lay.pixels}
    return {"binary": 0, "fixed": 0}


def _fold(lay) -> dict:
    return {k: int(getattr(lay, k)) for k in ("pe", "simd", "lanes") if hasattr(lay, k)}


# ---------------------------------------------------------------------------------------------------------
# roofline peaks


def binary_lut_per_mac() -> float:
    """Marginal LUT6 per XNOR-popcount synapse (one PE x SIMD lane) of the XnorMvu resource model."""
    def luts(pe, simd):
        lay = XnorMvu(name="r", n=simd * 16, cout=pe, pe=pe, simd=simd,
                      weights=np.ones((pe, simd * 16), dtype=np.int64))
        return lay.resources()["lut"]
    return (luts(32, 64) - luts(16, 32)) / (32 * 64 - 16 * 32)


def peaks(dev: Device) -> dict:
    """Compute roof of the device: every LUT spent on XNOR-popcount lanes plus every DSP doing one
    fixed-point MAC a cycle, at the device clock (ops/s, a MAC = 2 ops)."""
    clk = dev.clock_mhz * 1e6
    lut6 = dev.lut / dev.lut_scale
    b = 2 * lut6 / binary_lut_per_mac() * clk
    f = 2 * dev.dsp * clk
    return {"binary_ops": b, "fixed_ops": f, "ops": b + f, "dram_bytes": dev.dram_gbps * 1e9}


# ---------------------------------------------------------------------------------------------------------
# estimate


def estimate(g: HwGraph, device=None, storage: dict | None = None) -> dict:
    """Per-layer and total estimates of ``g``; with a device also utilisation, fps, latency and roofline.

    ``storage``: layer name -> ``"uram"`` or ``"dram"`` for MVUs whose weights leave block RAM (see
    :func:`plan_storage`); the rest stay where ``resources()`` puts them (LUT RAM or BRAM18)."""
    from binaryhpe.compile.flow import predicted_cycles

    dev = load_device(device) if device is not None else None
    storage = dict(storage or {})
    scale = dev.lut_scale if dev else 1.0
    rows = []
    tot = {"lut": 0, "ff": 0, "bram18": 0, "uram": 0, "dsp": 0}
    ops = {"binary": 0, "fixed": 0}
    stream_bytes = 0
    for lay in g.layers:
        r = {k: int(v) for k, v in lay.resources().items()}
        r.setdefault("uram", 0)
        c = lay.cycles()
        where = "-"
        wport = None
        if _is_mvu(lay):
            width, depth = _rom_shape(lay)
            s = "dram" if lay.streamed else storage.get(lay.name)
            rom_b = 0 if lay.streamed else _rom_bram(lay)
            where = "bram" if rom_b else "lutram"
            if s == "dram":  # the streamed unit (no ROM) and its weight port's beats
                r = {k: int(v) for k, v in _streamed_resources(lay).items()}
                r.setdefault("uram", 0)
                stream_bytes += _wstream_bytes(lay)
                wport = {"words_per_frame": lay.pixels * lay.nf * lay.sf, "bytes_per_frame": _wstream_bytes(lay)}
                where = s
            elif s == "uram" and rom_b:
                r["bram18"] -= rom_b
                r["uram"] += _uram(width, depth)
                where = s
        r["lut"] = int(round(r["lut"] * scale))
        o = layer_ops(lay)
        for k in ops:
            ops[k] += o[k]
        for k in tot:
            tot[k] += r[k]
        out = g.tensors[lay.outputs[0]]
        rows.append({"name": lay.name, "kind": type(lay).__name__, "shape": list(out.shape), "folding": _fold(lay),
                     "ii": int(c["ii"]), "latency": int(c["latency"]), **{k: r[k] for k in tot},
                     "weights": where, "weight_bits": weight_bits(lay), "ops": o["binary"] + o["fixed"],
                     **({"weight_stream": wport} if wport else {})})
    pred = predicted_cycles(g)
    inp, outp = g.tensors[g.input], g.tensors[g.output]
    io_bits = (math.prod(inp.shape) * (1 if inp.fmt.bipolar else inp.fmt.bits)
               + math.prod(outp.shape) * (1 if outp.fmt.bipolar else outp.fmt.bits))
    dram_bytes = io_bits / 8 + stream_bytes
    res = {"layers": rows, "totals": tot, "ii_cycles": pred["ii"], "latency_cycles": pred["latency"],
           "ops_per_frame": ops["binary"] + ops["fixed"], "binary_ops_per_frame": ops["binary"],
           "fixed_ops_per_frame": ops["fixed"], "dram_bytes_per_frame": dram_bytes,
           "weight_bits": sum(r["weight_bits"] for r in rows),
           "streamed_weight_bits": sum(r["weight_bits"] for r in rows if r["weights"] == "dram"),
           "weight_stream_bytes_per_frame": stream_bytes,
           "storage": storage, "lut_scale": scale}
    slowest = max(rows, key=lambda r: r["ii"])
    res["slowest_layer"] = slowest["name"]
    if dev is None:
        return res
    clk = dev.clock_mhz * 1e6
    budget = dev.budget()
    util = {k: (tot[k] / budget[k] if budget[k] else (math.inf if tot[k] else 0.0)) for k in tot}
    over = [k for k in tot if util[k] > UTIL_LIMIT[k]]
    fps_compute = clk / pred["ii"]
    fps_memory = dev.dram_gbps * 1e9 / dram_bytes
    fps = min(fps_compute, fps_memory)
    pk = peaks(dev)
    ai = res["ops_per_frame"] / dram_bytes
    roof = min(pk["ops"], pk["dram_bytes"] * ai)
    achieved = res["ops_per_frame"] * fps
    res.update({
        "device": dev.to_dict(), "utilisation": util, "fits": not over, "over": over,
        "fps_compute": fps_compute, "fps_memory": fps_memory, "fps": fps,
        "bound": "memory" if fps_memory < fps_compute else "compute",
        "latency_ms": pred["latency"] / clk * 1e3 + (0.0 if fps_memory >= fps_compute else 1e3 / fps_memory),
        "roofline": {"peak_ops": pk["ops"], "peak_binary_ops": pk["binary_ops"], "peak_fixed_ops": pk["fixed_ops"],
                     "dram_bytes_per_s": pk["dram_bytes"], "intensity_ops_per_byte": ai,
                     "roof_ops": roof, "achieved_ops": achieved, "fraction_of_roof": achieved / roof if roof else 0.0,
                     "ridge_ops_per_byte": pk["ops"] / pk["dram_bytes"]},
    })
    return res


def plan_storage(g: HwGraph, device) -> dict:
    """Move MVU weight ROMs out of block RAM until the BRAM18 budget holds: first to UltraRAM (where the
    device has it), then to DRAM, taking first the layers that save the most BRAM per DRAM bit a frame
    (large matrices used at few pixels: the deep layers)."""
    return plan_storage_multi([g], device)[0]


def plan_storage_multi(graphs: list, device, rates: list | None = None) -> list[dict]:
    """:func:`plan_storage` for several graphs sharing one device (``rates``: passes a frame of each)."""
    dev = load_device(device)
    rates = rates or [1] * len(graphs)
    storages: list[dict] = [{} for _ in graphs]
    limit = {k: int(dev.budget()[k] * UTIL_LIMIT[k]) for k in ("bram18", "uram")}
    bram = uram = 0
    cands = []
    for i, g in enumerate(graphs):
        t = estimate(g, None)["totals"]
        bram, uram = bram + t["bram18"], uram + t["uram"]
        for lay in g.layers:
            if _is_mvu(lay):
                b = _rom_bram(lay)
                if b:
                    cands.append((b / (weight_bits(lay) * lay.pixels * rates[i]), b, i, lay))
    if bram <= limit["bram18"]:
        return storages
    # UltraRAM: biggest memories first (best packing)
    for _, b, i, lay in sorted(cands, key=lambda t: -t[1]):
        if bram <= limit["bram18"]:
            break
        u = _uram(*_rom_shape(lay))
        if uram + u <= limit["uram"]:
            storages[i][lay.name] = "uram"
            bram, uram = bram - b, uram + u
    for _, b, i, lay in sorted(cands, key=lambda t: -t[0]):
        if bram <= limit["bram18"]:
            break
        if lay.name not in storages[i]:
            storages[i][lay.name] = "dram"
            bram -= b
    return storages


# ---------------------------------------------------------------------------------------------------------
# device-aware folding


def prepare(qonnx) -> HwGraph:
    """A lowered graph before folding (requantizers fused, forks inserted): the start of every folding."""
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import InsertForks, FuseRequant, RemoveIdentityRequant, run_to_fixpoint

    qonnx = pathlib.Path(qonnx)
    g = lower(load_qonnx(qonnx), source=str(qonnx.name))
    run_to_fixpoint(g, [RemoveIdentityRequant(), FuseRequant()])
    run_to_fixpoint(g, [InsertForks()])
    return g


def _copy(g0: HwGraph) -> HwGraph:
    memo = {}
    for lay in g0.layers:  # constants are shared, not copied
        for f in dataclasses.fields(lay):
            v = getattr(lay, f.name)
            if isinstance(v, np.ndarray):
                memo[id(v)] = v
    return copy.deepcopy(g0, memo)


def fold_at(g0: HwGraph, target: int, overrides: dict | None = None) -> HwGraph:
    """A copy of the unfolded graph ``g0`` folded for ``target`` cycles a frame (lanes legalized, FIFOs)."""
    from binaryhpe.compile.passes import InsertFifos, LegalizeLanes, SetFolding

    g = _copy(g0)
    SetFolding(max(1, int(target)), overrides).apply(g)
    LegalizeLanes().apply(g)
    InsertFifos().apply(g)
    g.toposort()
    return g


def _mvu_max_cycles(g0: HwGraph) -> int:
    return max([lay.pixels * lay.n * lay.cout for lay in g0.layers if _is_mvu(lay)] + [1])


def _trial(g0, dev, target, overrides):
    g = fold_at(g0, target, overrides)
    storage = plan_storage(g, dev)
    est = estimate(g, dev, storage)
    return g, est


def fold_for_device(g0: HwGraph, device, fps="max", overrides: dict | None = None,
                    progress: bool = True) -> tuple[HwGraph, dict]:
    """Fold the unfolded graph ``g0`` (from :func:`prepare`) for ``device``.

    ``fps`` a number: the cheapest folding whose slowest layer reaches that frame rate at the device clock
    (error if it does not fit or the rate is out of reach); ``"max"`` (or None): the fastest folding that
    fits. Returns the folded graph and its estimate (with ``storage``, ``target_cycles`` and ``search``)."""
    dev = load_device(device)
    clk = dev.clock_mhz * 1e6
    t0 = time.time()
    lo_t, hi_t = 1, max(_mvu_max_cycles(g0), 1)
    trials = []

    def run(target):
        g, est = _trial(g0, dev, target, overrides)
        trials.append({"target_cycles": int(target), "ii": est["ii_cycles"], "fits": est["fits"],
                       "fps": est["fps"], "lut": est["totals"]["lut"], "bram18": est["totals"]["bram18"]})
        if progress:
            _log(f"{dev.name}: target {target} cycles/frame -> ii {est['ii_cycles']}, "
                 f"{'fits' if est['fits'] else 'over ' + ','.join(est['over'])}, {est['fps']:.2f} fps "
                 f"({time.time() - t0:.0f} s)")
        return g, est

    if fps not in (None, "max"):
        fps = float(fps)
        if fps <= 0:
            raise BinaryHPEError(f"target fps must be positive, got {fps}")
        target = int(clk // fps)
        if target < 1:
            raise BinaryHPEError(f"{fps} fps is more than one frame a cycle at {dev.clock_mhz} MHz")
        g, est = run(target)
        if not est["fits"] or est["fps"] < fps * (1 - 1e-9):
            gm, em = fold_for_device(g0, dev, "max", overrides, progress=False)
            why = (f"it needs {_over(est)} of the device"
                   if not est["fits"] else f"the slowest layer ({est['slowest_layer']}) reaches {est['fps']:.2f} fps "
                   f"({est['bound']} bound)")
            raise BinaryHPEError(f"target {fps:g} fps does not fit {dev.name}: {why}; the fastest folding that "
                                 f"fits reaches {em['fps']:.2f} fps" if em["fits"] else
                                 f"target {fps:g} fps does not fit {dev.name}: {why}; even the slowest folding "
                                 f"needs {_over(em)}")
        est["target_cycles"], est["search"] = target, trials
        return g, est

    # as fast as fits: binary search on the target cycles (resources fall as the target rises)
    g_hi, e_hi = run(hi_t)
    if not e_hi["fits"]:
        e_hi["target_cycles"], e_hi["search"] = hi_t, trials
        return g_hi, e_hi  # the caller sees fits = False
    best = (hi_t, g_hi, e_hi)
    lo = lo_t
    hi = hi_t
    while hi / lo > 1.05 and hi - lo > 1:
        mid = int(math.sqrt(lo * hi))
        g, est = run(mid)
        if est["fits"]:
            hi = mid
            if est["fps"] >= best[2]["fps"]:
                best = (mid, g, est)
        else:
            lo = mid
    target, g, est = best
    est["target_cycles"], est["search"] = target, trials
    return g, est


def system_estimate(parts: list, device, fps_target: float) -> dict:
    """Several encoders side by side on one device, each folded for ``fps_target`` frames/s times its
    passes a frame. ``parts``: ``[(label, unfolded graph, passes a frame)]``. The system's rate is the
    slowest part's (``clock / ii / passes``) and the DRAM bandwidth all parts share."""
    dev = load_device(device)
    clk = dev.clock_mhz * 1e6
    graphs = [fold_at(g0, max(1, int(clk / (fps_target * n)))) for _, g0, n in parts]
    rates = [n for _, _, n in parts]
    storages = plan_storage_multi(graphs, dev, rates)
    ests = [estimate(g, dev, st) for g, st in zip(graphs, storages)]
    tot = {k: sum(e["totals"][k] for e in ests) for k in ("lut", "ff", "bram18", "uram", "dsp")}
    budget = dev.budget()
    util = {k: (tot[k] / budget[k] if budget[k] else (math.inf if tot[k] else 0.0)) for k in tot}
    over = [k for k in tot if util[k] > UTIL_LIMIT[k]]
    fps_c = min(clk / e["ii_cycles"] / n for e, n in zip(ests, rates))
    dram = sum(e["dram_bytes_per_frame"] * n for e, n in zip(ests, rates))
    fps_m = dev.dram_gbps * 1e9 / dram
    ops = sum(e["ops_per_frame"] * n for e, n in zip(ests, rates))
    fps = min(fps_c, fps_m)
    pk = peaks(dev)
    ai = ops / dram
    roof = min(pk["ops"], pk["dram_bytes"] * ai)
    lat = max(e["latency_cycles"] * (n if n > 1 else 1) for e, n in zip(ests, rates)) / clk * 1e3
    return {"device": dev.name, "fps_target": fps_target, "fits": not over, "over": over, "totals": tot,
            "utilisation": util, "fps": fps, "fps_compute": fps_c, "fps_memory": fps_m,
            "bound": "memory" if fps_m < fps_c else "compute", "latency_ms": lat,
            "ops_per_frame": ops, "dram_bytes_per_frame": dram, "intensity_ops_per_byte": ai,
            "peak_ops": pk["ops"], "roof_ops": roof, "achieved_ops": ops * fps,
            "fraction_of_roof": ops * fps / roof if roof else 0.0,
            "streamed_weight_bits": sum(e["streamed_weight_bits"] for e in ests),
            "weight_bits": sum(e["weight_bits"] for e in ests),
            "parts": [{"label": lab, "passes": n, "ii_cycles": e["ii_cycles"], "fps": clk / e["ii_cycles"] / n,
                       "totals": e["totals"], "storage": e["storage"], "slowest_layer": e["slowest_layer"]}
                      for (lab, _, n), e in zip(parts, ests)]}


def fold_system(parts: list, device, fps="max", progress: bool = True) -> dict:
    """Fastest common frame rate (``fps="max"``) at which all ``parts`` fit ``device`` together, or the
    estimate at a given ``fps``. Binary search on the frame rate (resources grow with it)."""
    dev = load_device(device)
    clk = dev.clock_mhz * 1e6
    t0 = time.time()

    def run(f):
        e = system_estimate(parts, dev, f)
        if progress:
            _log(f"{dev.name}: {f:.4g} fps target -> {e['fps']:.4g} fps, "
                 f"{'fits' if e['fits'] else 'over ' + ','.join(e['over'])} ({time.time() - t0:.0f} s)")
        return e

    if fps not in (None, "max"):
        return run(float(fps))
    worst = max(_mvu_max_cycles(g0) * n for _, g0, n in parts)
    lo = clk / worst  # every MVU at PE = SIMD = 1
    e_lo = run(lo)
    if not e_lo["fits"]:
        return e_lo
    best, hi = e_lo, clk / max(n for _, _, n in parts)
    while hi / lo > 1.15:
        mid = math.sqrt(lo * hi)
        e = run(mid)
        if e["fits"]:
            lo = mid
            if e["fps"] >= best["fps"]:
                best = e
        else:
            hi = mid
    return best


def _over(est: dict) -> str:
    return ", ".join(f"{k} {est['utilisation'][k]:.0%}" for k in est["over"])


def folding_of(g: HwGraph) -> dict:
    """``{mvu name: {"pe", "simd"}}`` of a folded graph (the ``--folding`` file format)."""
    return {lay.name: {"pe": int(lay.pe), "simd": int(lay.simd)} for lay in g.layers if _is_mvu(lay)}


def device_folding(qonnx, device, fps="max", overrides: dict | None = None) -> tuple[dict, dict]:
    """Folding overrides for ``step_lower(qonnx, folding=...)`` that make the design fit ``device`` at
    ``fps`` (or as fast as fits); returns (overrides, estimate). User ``overrides`` win per layer."""
    g0 = prepare(qonnx)
    g, est = fold_for_device(g0, device, fps, overrides)
    if not est["fits"]:
        raise BinaryHPEError(f"the design does not fit {load_device(device).name} even at the slowest folding: "
                             f"{_over(est)}")
    return folding_of(g), est


# ---------------------------------------------------------------------------------------------------------
# report.json


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
    """The folding overrides ``binaryhpe build`` passes to ``step_lower``: None without a device (the
    build's default folding, or the user's ``--folding`` file as is); with ``--device``/``--bitstream`` the
    device-aware folding for ``fps`` (default: as fast as fits), the user's per-layer overrides winning."""
    dev = build_device(device, bitstream)
    if dev is None:
        if fps is not None:
            raise BinaryHPEError("--fps needs --device (the frame rate is counted at the device's clock)")
        return folding
    fold, est = device_folding(qonnx, dev, "max" if fps is None else fps, overrides=folding)
    _log(f"{dev.name}: folded for {'as fast as fits' if fps is None else f'{fps:g} fps'}: "
         f"{est['fps']:.1f} fps estimated ({est['bound']} bound)")
    return fold


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
    - ``bitstream``, ``fmax_mhz``, ``pnr``, ``fps_at_fmax``, ``timing_met``: with ``bitstream=True`` (ECP5
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
    from binaryhpe.compile.report import write_reports

    write_reports(report, out)
    return report


# ---------------------------------------------------------------------------------------------------------
# a small example design (tests, docs, the bitstream smoke run)


def example_graph(h: int = 8, w: int = 8, c: int = 8, cout: int = 8, pe: int = 2, simd: int = 4,
                  seed: int = 0) -> HwGraph:
    """A three-layer binary conv: 3x3 window generator -> XNOR-popcount MVU -> requantizer (8 -> 4 bits),
    ``h x w x c`` bipolar input, ``cout`` outputs; PE/SIMD as given (SetFolding may change them)."""
    from binaryhpe.compile.graph import Fmt, TensorInfo
    from binaryhpe.compile.kinds.elementwise import Requant
    from binaryhpe.compile.kinds.swg import SlidingWindow

    rng = np.random.default_rng(seed)
    n = 9 * c
    g = HwGraph(input="x", output="y", source="example")
    g.tensors["x"] = TensorInfo("x", (h, w, c), Fmt(1, bipolar=True), lanes=simd)
    g.tensors["win"] = TensorInfo("win", (h, w, n), Fmt(1, bipolar=True), lanes=simd, windowed=True)
    acc_w = XnorMvu(name="t", n=n, cout=1, weights=np.ones((1, n), dtype=np.int64)).acc_w
    g.tensors["acc"] = TensorInfo("acc", (h, w, cout), Fmt(acc_w), lanes=pe)
    g.tensors["y"] = TensorInfo("y", (h, w, cout), Fmt(4), lanes=pe)
    g.layers = [
        SlidingWindow(name="swg", inputs=["x"], outputs=["win"], h=h, w=w, c=c, k=3, s=1, pad=1, elem_w=1,
                      lanes=simd, signed=False),
        XnorMvu(name="mvu", inputs=["win"], outputs=["acc"], n=n, cout=cout, pe=pe, simd=simd, pixels=h * w,
                weights=rng.choice([-1, 1], size=(cout, n))),
        Requant(name="rq", inputs=["acc"], outputs=["y"], c=cout, lanes=pe, pixels=h * w, in_w=acc_w, out_w=4,
                shift=2)]
    return g
