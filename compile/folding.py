"""Device-aware folding: PE/SIMD per matrix-vector unit so that a design fits a device and runs at a target
frame rate, or as fast as fits. It runs the standard pass list (``compile.passes.standard_passes``): the
stages before folding once (:func:`prepare`, or the build's own lowered graph), the rest on a copy for each
trial (:func:`fold_at`), and reads every figure from ``compile.estimate`` and ``compile.storage``.

- :func:`fold_for_device` -- the cheapest folding that reaches ``fps``, or the fastest that fits
  (``fps="max"``): the slowest layer sets the rate.
- :func:`device_folding` -- the same from a QONNX file, as a ``--folding``-style override dict
  (``{layer: {"pe": .., "simd": ..}}``).
- :func:`fold_system` / :func:`system_estimate` -- several encoders side by side on one device.
"""

from __future__ import annotations

import math
import pathlib
import time

from binaryhpe import BinaryHPEError
from binaryhpe.compile.devices import load_device
from binaryhpe.compile.estimate import UTIL_LIMIT, estimate, peaks
from binaryhpe.compile.graph import HwGraph
from binaryhpe.compile.passes import folding_passes, prepare_passes
from binaryhpe.compile.storage import plan_storage, plan_storage_multi


def _log(msg: str) -> None:
    print(f"[estimate] {msg}", flush=True)


def prepare(qonnx) -> HwGraph:
    """A lowered graph before folding (the stages of the standard pass list before ``FOLDING_STAGE``:
    requantizers fused, forks inserted): the start of every folding. The build's flow does the same on the
    graph it lowered once (``compile.flow``)."""
    from binaryhpe.compile.lower import load_qonnx, lower

    qonnx = pathlib.Path(qonnx)
    return prepare_passes(lower(load_qonnx(qonnx), source=str(qonnx.name)))


def fold_at(g0: HwGraph, target: int, overrides: dict | None = None) -> HwGraph:
    """A copy of the unfolded graph ``g0`` folded for ``target`` cycles a frame: the stages of the standard
    pass list from ``FOLDING_STAGE`` on (folding, lanes legalized, FIFOs)."""
    return folding_passes(g0.copy(), max(1, int(target)), overrides)


def _mvu_max_cycles(g0: HwGraph) -> int:
    """The slowest a foldable layer can be: every one at PE = SIMD = 1."""
    return max([lay.steps_at(1, 1) for lay in g0.layers if lay.foldable] + [1])


def _trial(g0, dev, target, overrides):
    g = fold_at(g0, target, overrides)
    storage = plan_storage(g, dev)
    est = estimate(g, dev, storage)
    return g, est


def pipeline_for_clock(g: HwGraph, clock_mhz: float) -> None:
    """Choose each matrix-vector unit's pipelining for the device's clock (``kinds.mvu.mvu_pipelining``: the
    multiplier and adder-tree registers), before the FIFOs are sized from the latencies."""
    for lay in getattr(g, "layers", ()):  # (a search driven by a stand-in trial may pass no graph)
        if hasattr(lay, "clock_mhz"):
            lay.clock_mhz = float(clock_mhz)


def multipliers_for_device(g: HwGraph, device) -> None:
    """Choose where each epilogue and fixed-point MVU multiplies (``Epilogue.lut_mul``, ``FxpMvu.lut_mul``): in
    logic on the ECP5 parts, in DSP blocks elsewhere. An epilogue's multiplies are small (a 16-bit value by an
    8-bit per-channel constant), an MVU's 8 x 8 bits. The ECP5-85F's 156 MULT18X18D sit in three rows; with the
    tiny BiDRN's 105 in use, nextpnr placed them up to 90 columns from their logic, and every multiplier path
    was the critical one (64-83 MHz at a 100 MHz constraint, benchmarks/ecp5_fmax.py); with the epilogues'
    in logic, the MVUs' 64 were (97.46 MHz, their registered operands and products 29-32 rows from the DSP).
    A Xilinx DSP48 has a DSP column beside every few logic columns."""
    lut = getattr(device, "family", "") == "ecp5"
    for lay in getattr(g, "layers", ()):
        if hasattr(lay, "lut_mul"):
            lay.lut_mul = lut


def fold_for_device(g0: HwGraph, device, fps="max", overrides: dict | None = None,
                    progress: bool = True) -> tuple[HwGraph, dict]:
    """Fold the unfolded graph ``g0`` (from :func:`prepare`) for ``device``.

    ``fps`` a number: the cheapest folding whose slowest layer reaches that frame rate at the device clock
    (error if it does not fit or the rate is out of reach); ``"max"`` (or None): the fastest folding that
    fits. Returns the folded graph and its estimate (with ``storage``, ``target_cycles`` and ``search``)."""
    dev = load_device(device)
    clk = dev.clock_mhz * 1e6
    pipeline_for_clock(g0, dev.clock_mhz)
    multipliers_for_device(g0, dev)
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
        # the geometric midpoint, strictly between lo and hi (int(sqrt(lo * hi)) can equal lo, e.g. 20 and 22:
        # then an over-budget trial left lo where it was and the search never ended)
        mid = min(hi - 1, max(lo + 1, int(math.sqrt(lo * hi))))
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
    for _, g0, _ in parts:
        pipeline_for_clock(g0, dev.clock_mhz)
        multipliers_for_device(g0, dev)
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
    return {lay.name: {"pe": int(lay.pe), "simd": int(lay.simd)} for lay in g.layers if lay.foldable}


def device_folding(qonnx, device, fps="max", overrides: dict | None = None) -> tuple[dict, dict]:
    """Folding overrides for ``step_lower(qonnx, folding=...)`` that make the design fit ``device`` at
    ``fps`` (or as fast as fits); returns (overrides, estimate). User ``overrides`` win per layer."""
    g0 = prepare(qonnx)
    g, est = fold_for_device(g0, device, fps, overrides)
    if not est["fits"]:
        raise BinaryHPEError(f"the design does not fit {load_device(device).name} even at the slowest folding: "
                             f"{_over(est)}")
    return folding_of(g), est
