"""The engine's cycle model: per layer compute, DRAM traffic, their overlap, and the frame's roofline.

It follows docs/engine.md's "Execution order" from the descriptor fields of each op (``Program.ops[i].header``)
and the RTL's measured structure (H2's measurements of bhpe_engine with latency ``L``, at ``b`` bytes a cycle):

- a layer is ``F + Cst + sum_t (W_t + sum_s (P_ts + PASS_GAP)) + LAYER_GAP``, a frame the sum of its layers plus
  ``FRAME_OVERHEAD``: ``F`` the descriptor fetch (``L + FETCH_OVERHEAD + 256/b`` for the first; a later one is
  prefetched during the previous layer's last pass once its input rows are in, and costs what that pass's rest
  does not hide, at least ``PREFETCH_MIN``), ``Cst`` the constants and
  ``W_t`` tile ``t``'s weights (``L + LOAD_OVERHEAD + bytes/b``, ``EMPTY_LOAD`` when there are none), neither
  overlapped with compute;
- a pass ``P``: ``LOADER_START + L`` + the input rows the first output row needs, then per output row
  ``max(compute row, ROW_LOAD_OVERHEAD + L + its new input rows and b row)`` (the loads of the next rows overlap
  the compute when ``r >= kh + stride``; they add to it otherwise), at least the bytes the row moves through
  the one DRAM port (reads and writes share it), then the compute's drain and the store of the last row
  (``L + bytes/b + STORE_TAIL``);
- weights of a layer of several tiles of at most ``WbDepth/2`` words: tile ``t+1`` loads during tile ``t``'s
  passes; ``W_t`` is ``EMPTY_LOAD`` plus what that load has left when the passes end;
- compute (H1's timing, :func:`group_cycles`): ``C`` cycles a group, ``N = oh * owt_s * groups`` groups a pass,
  ``Tpass = PASS_START + N*C + T0 + (oh + X if C == G else 1)`` from the pass start, the start delayed until
  the first rows are in and each row until its rows are in.

The named constants are the calibration points (the RTL's measured cycles set them; docs/engine.md).
:func:`roofline` gives the frame's compute bound (binary ops / the XNOR array's peak + fixed-point ops / the
MAC array's peak) and bandwidth bound (the program's DRAM bytes / bytes a cycle) and the fraction of the
tighter bound the modelled frame reaches.
"""

from __future__ import annotations

import math

from binaryhpe.compile.engine.config import EngineConfig

#: descriptor bytes fetched a layer (32 beats)
DESC_BYTES = 256
#: descriptor fetch: F = latency + FETCH_OVERHEAD + 32 beats (H2, measured on the RTL)
FETCH_OVERHEAD = 3
#: a prefetched descriptor's cost when it arrived in time (H2)
PREFETCH_MIN = 1
#: constants / one weight tile: latency + LOAD_OVERHEAD + beats; EMPTY_LOAD cycles when there are none (H2)
LOAD_OVERHEAD = 4
EMPTY_LOAD = 2
#: cycles between two passes, after the last pass of a layer, and per frame (start / done) (H2)
PASS_GAP = 1
LAYER_GAP = 1
FRAME_OVERHEAD = 2
#: pass start to the first input-row request (5) plus the request to AR valid (2) (H2)
LOADER_START = 7
#: a row counts as loaded the cycle after its last beat; a row's loads start 2 cycles after it is allowed (H2)
ROW_LOADED = 1
ROW_LOAD_OVERHEAD = 2
#: store tail: the pass ends latency + last row's beats + STORE_TAIL after compute's pass_done (H2)
STORE_TAIL = 3
#: the fraction of the DRAM port's rate a port-bound row gets (read priority, burst cuts at 4 KiB): fitted to
#: bhpe_engine on the face stem + 2 stages' port-bound layers (a 2x2/2 average pool, residual joins: 0.85-0.88)
PORT_EFFICIENCY = 0.87
#: weight double buffering (a layer of several tiles of <= WbDepth/2 words): tile t+1 loads during tile t's passes
#: in chunks of WEIGHT_CHUNK_WORDS weight-buffer words, one chunk outstanding (H2)
WEIGHT_CHUNK_WORDS = 4
WEIGHT_CHUNK_OVERHEAD = 2
#: the store in pixel mode (a burst a pixel): a row's first request STORE_START cycles after it is done, then
#: STORE_PIXEL_BURST cycles a pixel, its last response L later; a row waits for the store of the row two before it
#: (2 output slots). Fitted to bhpe_engine on the tiny BiDRN's 1x1 copies (frame within 0.5%, layers within 17%)
STORE_START = 2
STORE_PIXEL_BURST = 2
#: compute: pass start to the first step; array latency (XNOR, pool / MAC) (H1, bhpe_eng_compute's header)
PASS_START = 3
ARRAY_LAT_XNOR = 3
ARRAY_LAT_MAC = 4
#: groups the arrays may run ahead of the epilogue (the credit term (G + L + 2) / CREDIT_GROUPS of C) (H1)
CREDIT_GROUPS = 3
#: epilogue latency a micro-op (a P and an S cycle; two groups interleaved, so E = Elat / 2 a group) (H1)
EPI_CYCLES_PER_OP = 2
#: the longest AXI burst (beats)
MAX_BURST = 256


def _beats(nbytes: float, cfg: EngineConfig) -> float:
    return nbytes / cfg.dram_bytes_per_cycle


def group_cycles(h: dict, cfg: EngineConfig, ops: list) -> dict:
    """H1's compute timing of one channel group (docs/engine.md "Compute timing", the interleaved epilogue):
    ``G`` array steps (XNOR ``kh*kw*cw_in``; MAC ``(PE/PEF)*kh*kw*cw_in``; pool ``kh*kw*max(1, PE*ew_in/64)``);
    ``u`` epilogue micro-ops (a Threshold counts 2); ``nbw`` b words of a group; ``Elat = 2*u + sb`` with
    ``sb = 2*max(0, ceil((nbw+1)/2) - j)`` for a JoinAdd at micro-op ``j``; ``E = Elat/2`` (1 without ops);
    ``W`` output words; ``L`` array latency; ``C = max(G, E, W, nbw, (G + L + 2)/3)`` cycles a group (the arrays
    run at most CREDIT_GROUPS groups ahead of the epilogue)."""
    pe, pef = cfg.pe, cfg.pef
    taps = h["kh"] * h["kw"] * h["cw_in"]
    mode = h["mode"]
    if mode == 0:
        g = taps
    elif mode == 1:
        g = (pe // pef) * taps
    else:
        g = h["kh"] * h["kw"] * max(1, pe * (1 << h["lg_ew_in"]) // 64)
    nbw = max(1, pe * (1 << h["lg_ew_b"]) // 64) if h["has_b"] else 0
    u, sb = 0, 0
    for o in ops:
        if o["opcode"] == 4:  # JoinAdd at micro-op u
            sb = 2 * max(0, math.ceil((nbw + 1) / 2) - u)
        u += 2 if o["opcode"] == 6 else 1
    elat = EPI_CYCLES_PER_OP * u + sb
    e = elat / 2 if ops else 1
    w = max(1, pe * (1 << h["lg_ew_out"]) // 64)
    lat = ARRAY_LAT_MAC if mode == 1 else ARRAY_LAT_XNOR
    c = max(g, e, w, nbw, (g + lat + 2) / CREDIT_GROUPS)
    return {"G": g, "E": e, "Elat": elat, "W": w, "L": lat, "nbw": nbw, "C": c}


def pass_compute(gc: dict, n: int, oh: int, overlap: bool, n_ops: int) -> float:
    """H1's ``Tpass``: pass start to the last output word of ``n`` groups over ``oh`` rows, the loader and the
    store never late (array-bound, epilogue-bound and the mixed case)."""
    G, E, elat, W, L, C = gc["G"], gc["E"], gc["Elat"], gc["W"], gc["L"], gc["C"]
    if C == G:
        x = 0 if overlap else (oh - 1) * (L + elat + W + 4 - (1 if n_ops == 0 else 0))
        return PASS_START + n * G + oh + x + min(G, elat) + L + W + 3
    if n_ops and C == E and E > max(W, gc["nbw"], (G + L + 2) / CREDIT_GROUPS):
        return n * E + G + (G | 1) + L + W + 7 if n % 2 == 0 else n * E + E + G + L + W + 7
    return PASS_START + n * C + min(G, elat) + L + W + 4


def layer_cycles(op, cfg: EngineConfig, prev_hide: float | None = None) -> dict:
    """The model of one engine op from its descriptor fields (``op.header``):
    ``F + Cst + sum_t (W_t + sum_s (P_ts + PASS_GAP)) + LAYER_GAP`` with a pass
    ``P = max(PASS_START, first rows in) + sum_rows max(C * groups of the row, row loads) + T0 + ... + store
    tail`` (H1's ``Tpass`` with the loader's waits, then H2's store tail)."""
    h = op.header
    pe = cfg.pe
    lat = cfg.dram_latency
    kh, kw, s, pad = h["kh"], h["kw"], h["stride"], h["pad"]
    H, W, oh, ow = h["h"], h["w"], h["oh"], h["ow"]
    cw_in, cw_out, cw_b = h["cw_in"], h["cw_out"], h["cw_b"]
    ew_out = 1 << h["lg_ew_out"]
    ng, ct, n_ct, owt, n_strips, r = h["ng"], h["ct"], h["n_ct"], h["owt"], h["n_strips"], h["r"]
    n_ops = len(op.ops)
    gc = group_cycles(h, cfg, op.ops)
    overlap = r >= kh + s
    y_end = min(H, (oh - 1) * s - pad + kh)
    res = {"name": op.name, "mode": ("xnor", "mac", "pool_max", "pool_sum")[h["mode"]], "compute_cycles": 0,
           "dram_read_bytes": DESC_BYTES, "dram_write_bytes": 0, "weight_bytes": 0, "const_bytes": 0,
           "load_cycles": 0, "transfer_cycles": 0.0, "passes": n_ct * n_strips}
    fetch = lat + FETCH_OVERHEAD + math.ceil(_beats(DESC_BYTES, cfg))
    if prev_hide is not None:  # prefetched during the previous layer's last pass, after its last input row
        fetch = max(PREFETCH_MIN, fetch - prev_hide)
    cbytes = h["n_cols"] * ng * pe * 4
    const = lat + LOAD_OVERHEAD + math.ceil(_beats(cbytes, cfg)) if cbytes else EMPTY_LOAD
    res["dram_read_bytes"] += cbytes
    res["const_bytes"] = cbytes
    total = fetch + const
    loads = fetch + const
    view_in = h["in_pix_stride"] != cw_in
    double = n_ct > 1 and 0 < h["wtile_words"] <= cfg.wb_depth // 2
    bg_load = 0.0
    for t in range(n_ct):
        groups = min(ct // pe, ng - t * (ct // pe))
        wbytes = h["wtile_words"] * pe * 8
        if t and double:  # loaded in the background during tile t-1's passes, in chunks of 4*PE words (H2)
            chunks = math.ceil(h["wtile_words"] / WEIGHT_CHUNK_WORDS)
            need = chunks * (lat + WEIGHT_CHUNK_OVERHEAD + _beats(WEIGHT_CHUNK_WORDS * pe * 8, cfg))
            wl = EMPTY_LOAD + max(0, need - bg_load)
        else:
            wl = lat + LOAD_OVERHEAD + math.ceil(_beats(wbytes, cfg)) if wbytes else EMPTY_LOAD
        bg_load = 0.0
        total += wl
        loads += wl
        res["dram_read_bytes"] += wbytes
        res["weight_bytes"] += wbytes
        lo = t * ct * ew_out // 8
        opix = max(0, min((t + 1) * ct * ew_out // 8, cw_out * 8) - lo)    # output bytes a pixel in this tile
        for si in range(n_strips):
            owt_s = min(owt, ow - si * owt)
            x0 = si * owt * s - h["pad_x"]
            in_pix = max(0, min(W, x0 + (owt_s - 1) * s + kw) - max(0, x0))
            row_bytes = in_pix * cw_in * 8
            row_reqs = in_pix if view_in else max(1, math.ceil(row_bytes / 8 / MAX_BURST))
            b_row = owt_s * cw_b * 8 if h["has_b"] else 0
            out_row = owt_s * opix
            # the store: one burst a row when the tile is the whole pixel, else one a pixel (whole beats each)
            pixel_mode = opix != h["out_pix_stride"] * 8
            out_row_beats = owt_s * math.ceil(opix / 8) if pixel_mode else math.ceil(out_row / 8)
            # a row's store in pixel mode: the first request STORE_START after the row is done, a burst a pixel of
            # STORE_PIXEL_BURST cycles, the last response L later; a row waits for the store of the row two before
            store_row = (STORE_START + owt_s * STORE_PIXEL_BURST + lat + ROW_LOADED) if pixel_mode else 0
            compute_row = owt_s * groups * gc["C"]
            # H1's Tpass, plus the loader's waits: the first rows (and b row) before the first group, and any row
            # whose loads (during the previous row) take longer than the previous row's compute
            first_rows = min(y_end, max(1, kh - pad))
            ready = LOADER_START + lat + ROW_LOADED + max(first_rows * row_reqs,
                                                          _beats(first_rows * row_bytes + b_row, cfg))
            p = pass_compute(gc, oh * owt_s * groups, oh, overlap, n_ops) + max(0, ready - PASS_START)
            loaded = first_rows
            for oy in range(oh):
                need = min(y_end, oy * s - pad + kh)
                new = max(0, need - loaded)
                loaded = max(loaded, need)
                row = compute_row
                if oy and (new or b_row) and overlap:  # the row's loads run during the previous row
                    load = ROW_LOAD_OVERHEAD + lat + ROW_LOADED + max(new * row_reqs,
                                                                       _beats(new * row_bytes + b_row, cfg))
                    row = max(row, load)
                # reads and writes share the one DRAM port (at PORT_EFFICIENCY of its rate when it bounds a row)
                row = max(row, _beats(new * row_bytes + b_row + 8 * out_row_beats, cfg) / PORT_EFFICIENCY)
                if oy >= 2:  # row oy reuses row oy-2's output slot: it waits for that row's store
                    row = max(row, store_row)
                p += row - compute_row
            res["compute_cycles"] += int(math.ceil(p))
            tail = lat + math.ceil(_beats(8 * out_row_beats, cfg)) + STORE_TAIL
            p += tail
            # after the pass's last input row is in: its last row's groups, the drain and the store tail
            hide = compute_row + min(gc["G"], gc["Elat"]) + gc["L"] + gc["W"] + 3 + tail
            total += p + PASS_GAP
            bg_load += p + PASS_GAP
            in_bytes = y_end * row_bytes
            rd, wr = in_bytes + oh * b_row, oh * out_row
            res["transfer_cycles"] += _beats(rd + wr, cfg)
            res["dram_read_bytes"] += rd
            res["dram_write_bytes"] += wr
    total += LAYER_GAP
    res["hide"] = hide
    res["fetch_cycles"] = fetch
    res["cycles"] = int(math.ceil(total))
    res["load_cycles"] = int(math.ceil(loads))
    res["transfer_cycles"] = int(math.ceil(res["transfer_cycles"]))
    res["bound"] = "compute" if res["compute_cycles"] >= res["transfer_cycles"] else "memory"
    res["ops"] = dict(op.op_counts)
    return res


def cycle_model(program, cfg: EngineConfig | None = None) -> dict:
    """``{"layers": [per-op dicts in descriptor order], "total": {...}}``: cycles, compute cycles, DRAM read /
    write bytes, transfer cycles, of each op and of the frame (at ``cfg``, default the program's)."""
    cfg = cfg or program.cfg
    layers, hide = [], None
    for op in program.ops:
        r = layer_cycles(op, cfg, hide)
        hide = r.pop("hide")
        layers.append(r)
    total = {k: sum(r[k] for r in layers) for k in ("cycles", "compute_cycles", "dram_read_bytes",
                                                      "dram_write_bytes", "weight_bytes", "const_bytes",
                                                      "transfer_cycles", "load_cycles")}
    total["cycles"] += FRAME_OVERHEAD
    total["dram_bytes"] = total["dram_read_bytes"] + total["dram_write_bytes"]
    total["fps"] = cfg.clock_mhz * 1e6 / total["cycles"] if total["cycles"] else 0.0
    total["layers"] = len(layers)
    return {"layers": layers, "total": total, "clock_mhz": cfg.clock_mhz}


def roofline(program, cfg: EngineConfig | None = None, cm: dict | None = None) -> dict:
    """The frame's compute bound (binary ops at the XNOR array's ``2 * PE * 64`` ops a cycle plus fixed-point ops
    at the MAC array's ``2 * PEF * 8``), its bandwidth bound (the program's DRAM bytes at the port's bytes a
    cycle), and ``fraction`` = the larger bound / the modelled cycles. ``cm``: the program's
    :func:`cycle_model` under ``cfg`` when the caller has it already (it is computed otherwise)."""
    cfg = cfg or program.cfg
    cm = cm if cm is not None else cycle_model(program, cfg)
    binary = sum(op.op_counts.get("binary", 0) for op in program.ops)
    fixed = sum(op.op_counts.get("fixed", 0) for op in program.ops)
    compute_bound = binary / (2 * cfg.xnor_per_cycle) + fixed / (2 * cfg.mac_per_cycle)
    memory_bound = cm["total"]["dram_bytes"] / cfg.dram_bytes_per_cycle
    bound = max(compute_bound, memory_bound)
    cycles = cm["total"]["cycles"]
    return {"binary_ops": int(binary), "fixed_ops": int(fixed), "compute_bound_cycles": int(math.ceil(compute_bound)),
            "memory_bound_cycles": int(math.ceil(memory_bound)), "dram_bytes": int(cm["total"]["dram_bytes"]),
            "bound": "compute" if compute_bound >= memory_bound
            else "memory", "cycles": cycles, "fraction": bound / cycles if cycles else 0.0,
            "bound_fps": cfg.clock_mhz * 1e6 / bound if bound else 0.0,
            "fps": cfg.clock_mhz * 1e6 / cycles if cycles else 0.0}
