"""The engine's cycle model: per layer compute, DRAM traffic, their overlap, and the frame's roofline.

It follows docs/engine.md's "Execution order" from the descriptor fields of each op (``Program.ops[i].header``):

- layer start: the descriptor fetch (``DESC_BYTES`` at the DRAM rate plus the latency) and the constants
  (``n_cols * ng * PE * 4`` bytes), not overlapped;
- per output-channel tile ``t``: its weights (``wtile_words * PE * 8`` bytes), not overlapped (the weight
  buffer holds one tile);
- per column strip: a pass, in which the loader, compute and store overlap: ``pass = first rows + max(compute,
  DRAM transfer of the rest) + last row out + PASS_OVERHEAD``, where *first rows* is the latency plus the
  input rows the first output row needs, and *last row out* the store of the last output row;
- compute of a pass: per output row ``ROW_OVERHEAD`` plus, per pixel of the strip and group of the tile,
  ``max(taps, n_ops, output words)`` cycles with taps = ``kh*kw*cw_in`` (XNOR), ``(PE/PEF)*kh*kw*cw_in``
  (MAC), ``kh*kw*ceil(PE*ew_in/64)`` (pool); plus the epilogue pipeline at the end;
- DRAM transfer: bytes / (``dram_beats_per_cycle`` * 8) plus ``BURST_GAP`` cycles a burst; reads and writes
  run on the AXI read and write channels side by side (``max(read, write)``).

The named constants are the calibration points (the RTL's measured cycles set them; docs/engine.md).
:func:`roofline` gives the frame's compute bound (binary ops / the XNOR array's peak + fixed-point ops / the
MAC array's peak) and bandwidth bound (the program's DRAM bytes / bytes a cycle) and the fraction of the
tighter bound the modelled frame reaches.
"""

from __future__ import annotations

import math

from binaryhpe.compile.engine.config import EngineConfig

#: descriptor bytes fetched a layer
DESC_BYTES = 256
#: cycles of the control between two layers (descriptor decode, start)
LAYER_OVERHEAD = 8
#: cycles of the control at each pass start and end
PASS_OVERHEAD = 4
#: compute cycles at the start of each output row (window address set-up)
ROW_OVERHEAD = 2
#: cycles of the compute pipeline (array + epilogue stages) after the last group of a pass
PIPE_DEPTH = 6
#: idle cycles between two DRAM bursts on one channel
BURST_GAP = 1
#: the longest AXI burst (beats)
MAX_BURST = 256


def _xfer(nbytes: int, bursts: int, cfg: EngineConfig) -> float:
    return nbytes / cfg.dram_bytes_per_cycle + bursts * BURST_GAP


def _bursts(nbytes_contig: int, count: int) -> int:
    """Bursts for ``count`` contiguous runs of ``nbytes_contig`` bytes each."""
    return count * max(1, math.ceil(nbytes_contig / 8 / MAX_BURST))


def layer_cycles(op, cfg: EngineConfig) -> dict:
    """The model of one engine op (its descriptor fields ``op.header``)."""
    h = op.header
    pe, pef = cfg.pe, cfg.pef
    mode = h["mode"]
    ew_in, ew_out = 1 << h["lg_ew_in"], 1 << h["lg_ew_out"]
    kh, kw, s, pad = h["kh"], h["kw"], h["stride"], h["pad"]
    H, W, oh, ow = h["h"], h["w"], h["oh"], h["ow"]
    cw_in, cw_out, cw_b = h["cw_in"], h["cw_out"], h["cw_b"]
    ng, ct, n_ct, owt, n_strips = h["ng"], h["ct"], h["n_ct"], h["owt"], h["n_strips"]
    n_ops = len(op.ops)
    taps = kh * kw * cw_in
    if mode == 0:
        group = taps
    elif mode == 1:
        group = (pe // pef) * taps
    else:
        group = kh * kw * max(1, math.ceil(pe * ew_in / 64))
    out_words = max(1, math.ceil(pe * ew_out / 64))
    group = max(group, n_ops, out_words)
    y_end = min(H, (oh - 1) * s - pad + kh)
    lat = cfg.dram_latency
    res = {"name": op.name, "mode": ("xnor", "mac", "pool_max", "pool_sum")[mode], "compute_cycles": 0,
           "dram_read_bytes": 0, "dram_write_bytes": 0, "weight_bytes": 0, "const_bytes": 0,
           "transfer_cycles": 0.0, "exposed_cycles": 0.0}
    # layer start: descriptor and constants
    start = LAYER_OVERHEAD + lat + DESC_BYTES / cfg.dram_bytes_per_cycle
    cbytes = h["n_cols"] * ng * pe * 4
    if cbytes:
        start += lat + _xfer(cbytes, _bursts(cbytes, 1), cfg)
    res["dram_read_bytes"] += DESC_BYTES + cbytes
    res["const_bytes"] = cbytes
    total = start
    exposed = start
    out_pix_bytes_tile = []
    for t in range(n_ct):
        lo = t * ct * ew_out // 8
        hi = min((t + 1) * ct * ew_out // 8, cw_out * 8)
        out_pix_bytes_tile.append(max(0, hi - lo))
    for t in range(n_ct):
        groups = min(ct // pe, ng - t * (ct // pe))
        wbytes = h["wtile_words"] * pe * 8
        if wbytes:
            wl = lat + _xfer(wbytes, _bursts(wbytes, 1), cfg)
            total += wl
            exposed += wl
            res["dram_read_bytes"] += wbytes
            res["weight_bytes"] += wbytes
        opix = out_pix_bytes_tile[t]
        for sidx in range(n_strips):
            owt_s = min(owt, ow - sidx * owt)
            x0 = sidx * owt * s - pad
            xs = max(0, x0)
            xe = min(W, x0 + (owt_s - 1) * s + kw)
            in_pix = max(0, xe - xs)
            row_in = in_pix * cw_in * 8
            contig_in = h["in_pix_stride"] == cw_in
            in_bytes = y_end * row_in
            in_bursts = _bursts(row_in, y_end) if contig_in else _bursts(cw_in * 8, y_end * in_pix)
            b_bytes = oh * owt_s * cw_b * 8 if h["has_b"] else 0
            b_bursts = (_bursts(owt_s * cw_b * 8, oh) if h["b_pix_stride"] == cw_b else _bursts(cw_b * 8, oh * owt_s)) if b_bytes else 0
            out_bytes = oh * owt_s * opix
            contig_out = h["out_pix_stride"] * 8 == opix
            out_bursts = _bursts(owt_s * opix, oh) if contig_out else _bursts(opix, oh * owt_s)
            compute = oh * (ROW_OVERHEAD + owt_s * groups * group) + PIPE_DEPTH
            rd = _xfer(in_bytes + b_bytes, in_bursts + b_bursts, cfg)
            wr = _xfer(out_bytes, out_bursts, cfg)
            first_rows = min(y_end, max(1, kh - pad))
            first = lat + _xfer(first_rows * row_in, first_rows if contig_in else first_rows * in_pix, cfg)
            last_out = lat + _xfer(owt_s * opix, 1 if contig_out else owt_s, cfg)
            steady = max(compute, rd - first * (rd > 0) + lat, wr - last_out + lat)
            pass_cycles = PASS_OVERHEAD + first + steady + last_out
            total += pass_cycles
            exposed += pass_cycles - compute
            res["compute_cycles"] += compute
            res["transfer_cycles"] += rd + wr
            res["dram_read_bytes"] += in_bytes + b_bytes
            res["dram_write_bytes"] += out_bytes
    res["cycles"] = int(math.ceil(total))
    res["exposed_cycles"] = int(math.ceil(exposed))
    res["transfer_cycles"] = int(math.ceil(res["transfer_cycles"]))
    res["bound"] = "compute" if res["compute_cycles"] >= res["transfer_cycles"] else "memory"
    res["ops"] = dict(op.op_counts)
    return res


def cycle_model(program, cfg: EngineConfig | None = None) -> dict:
    """``{"layers": [per-op dicts in descriptor order], "total": {...}}``: cycles, compute cycles, DRAM read /
    write bytes, transfer cycles, of each op and of the frame (at ``cfg``, default the program's)."""
    cfg = cfg or program.cfg
    layers = [layer_cycles(op, cfg) for op in program.ops]
    total = {k: sum(r[k] for r in layers) for k in ("cycles", "compute_cycles", "dram_read_bytes",
                                                      "dram_write_bytes", "weight_bytes", "const_bytes",
                                                      "transfer_cycles", "exposed_cycles")}
    total["dram_bytes"] = total["dram_read_bytes"] + total["dram_write_bytes"]
    total["fps"] = cfg.clock_mhz * 1e6 / total["cycles"] if total["cycles"] else 0.0
    total["layers"] = len(layers)
    return {"layers": layers, "total": total, "clock_mhz": cfg.clock_mhz}


def roofline(program, cfg: EngineConfig | None = None) -> dict:
    """The frame's compute bound (binary ops at the XNOR array's ``2 * PE * 64`` ops a cycle plus fixed-point ops
    at the MAC array's ``2 * PEF * 8``), its bandwidth bound (the program's DRAM bytes at the port's bytes a
    cycle), and ``fraction`` = the larger bound / the modelled cycles."""
    cfg = cfg or program.cfg
    cm = cycle_model(program, cfg)
    binary = sum(op.op_counts.get("binary", 0) for op in program.ops)
    fixed = sum(op.op_counts.get("fixed", 0) for op in program.ops)
    compute_bound = binary / (2 * cfg.xnor_per_cycle) + fixed / (2 * cfg.mac_per_cycle)
    memory_bound = cm["total"]["dram_bytes"] / cfg.dram_bytes_per_cycle
    bound = max(compute_bound, memory_bound)
    cycles = cm["total"]["cycles"]
    return {"binary_ops": int(binary), "fixed_ops": int(fixed), "compute_bound_cycles": int(math.ceil(compute_bound)),
            "memory_bound_cycles": int(math.ceil(memory_bound)), "bound": "compute" if compute_bound >= memory_bound
            else "memory", "cycles": cycles, "fraction": bound / cycles if cycles else 0.0,
            "bound_fps": cfg.clock_mhz * 1e6 / bound if bound else 0.0,
            "fps": cfg.clock_mhz * 1e6 / cycles if cycles else 0.0}
