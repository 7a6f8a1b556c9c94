"""Resource, rate and roofline estimates of a hardware graph, read from the layer kinds themselves.

Every figure comes from the kind (``HwLayer.resources()``, ``cycles()``, ``weight_memory()``,
``op_counts()``, next to each kind's numerics and RTL); this module only adds them up. The other jobs live
beside it: where weight memories go (``compile.storage``), the device-aware folding search
(``compile.folding``) and the build's device keys of ``report.json`` (``compile.flow``).

- :func:`estimate` -- per-layer and total LUT/FF/BRAM18/URAM/DSP, cycles, fps and latency at the device
  clock, DRAM traffic and the roofline (compute bound from LUTs/DSPs at the clock, memory bound from the
  DRAM bandwidth).
- :func:`predicted_cycles` -- frame interval and streaming latency from the per-layer cycle models.

Weights that do not fit on chip are streamed from DRAM and their bandwidth is part of the estimate: the
streamed MVU (``bhpe_mvu_wstream``) re-reads its whole weight matrix for every output pixel, so it costs
exactly its weight port's beats, ``pixels * NF * SF`` words of ``PE * SIMD * w_bits`` bits padded to whole
bytes (= ``pixels * N * Cout * w_bits`` bits when the word is a whole number of bytes), a frame
(``XnorMvu/FxpMvu.wstream_bytes_per_frame``).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from binaryhpe.compile.devices import Device, load_device
from binaryhpe.compile.graph import HwGraph
from binaryhpe.compile.kinds.mvu import XnorMvu

RES_KEYS = ("lut", "ff", "bram18", "dsp")
#: fraction of each device resource a design may use and still be called "fits" (routing headroom)
UTIL_LIMIT = {"lut": 0.85, "ff": 0.85, "bram18": 0.95, "uram": 0.95, "dsp": 0.95}


def _log(msg: str) -> None:
    print(f"[estimate] {msg}", flush=True)


def weight_bits(lay) -> int:
    """Bits of a layer's placeable weight memory (``kind.weight_memory()``; 0 when it has none)."""
    m = lay.weight_memory()
    return m.bits if m is not None else 0


def layer_ops(lay) -> dict:
    """Operations a frame (a multiply-accumulate counts 2): ``binary`` (XNOR-popcount), ``fixed``
    (``kind.op_counts()``)."""
    return lay.op_counts()


def _fold(lay) -> dict:
    return {k: int(v) for k, v in lay.folding().items() if k != "depth"}


# ---------------------------------------------------------------------------------------------------------
# roofline peaks


@functools.lru_cache(maxsize=None)
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
        mem = lay.weight_memory()
        if mem is not None:
            s = "dram" if lay.streamed else storage.get(lay.name)
            where = "bram" if mem.bram18 else "lutram"
            if s == "dram":  # the streamed unit (no ROM) and its weight port's beats
                st = lay.as_streamed()
                r = {k: int(v) for k, v in st.resources().items()}
                r.setdefault("uram", 0)
                stream_bytes += st.wstream_bytes_per_frame
                wport = {"words_per_frame": st.wstream_words_per_frame, "bytes_per_frame": st.wstream_bytes_per_frame}
                where = s
            elif s == "uram" and mem.bram18:
                r["bram18"] -= mem.bram18
                r["uram"] += uram_blocks(mem.width, mem.depth)
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
    io_bits = math.prod(inp.shape) * inp.fmt.width + math.prod(outp.shape) * outp.fmt.width
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


def uram_blocks(width: int, depth: int) -> int:
    """UltraRAMs (4K x 72) of a width x depth memory."""
    return -(-width // 72) * -(-depth // 4096)


def predicted_cycles(g: HwGraph) -> dict:
    """Frame interval = the slowest layer's ii (from the per-layer cycle models).

    Latency, a streaming estimate: every tensor has a start time (its first beat) and a duration (first to
    last beat, the slowest ii upstream). A layer starts ``latency - ii`` after its input starts (its pipeline),
    plus ``kind.start_fraction`` of its input's duration (a window generator must first receive the input
    rows of its first window: ``(K - Pad) / H``). Latency = output start + output duration."""
    ii = max(lay.cycles()["ii"] for lay in g.layers)
    start: dict[str, float] = {g.input: 0.0}
    dur: dict[str, float] = {g.input: float(math.prod(g.tensors[g.input].shape) // g.tensors[g.input].lanes)}
    for lay in g.layers:
        c = lay.cycles()
        s0 = max(start[t] for t in lay.inputs)
        d0 = max(dur[t] for t in lay.inputs)
        lead = max(0, c["latency"] - c["ii"]) + d0 * lay.start_fraction
        for t in lay.outputs:
            start[t] = s0 + lead
            dur[t] = max(d0, float(c["ii"]))
    return {"ii": int(ii), "latency": int(round(start[g.output] + dur[g.output]))}
