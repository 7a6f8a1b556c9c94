"""Layers for the bench of the engine's compute unit (tests/rtl/engine_compute_tb.py), their buffer images and
an independent numpy reference of docs/engine.md's semantics (written here from the document, not from the RTL
or the compiler).

A case is a dict: the layer's shape and formats, its epilogue ops, the tiling (ct, owt), and a seed / data
pattern. :func:`build` turns it into the descriptor fields, the input / b / weight / constant integers and the
expected output tensor.
"""

from __future__ import annotations

import math

import numpy as np

PE, PEF = 8, 2
LB_DEPTH, WB_DEPTH, CB_DEPTH, BB_DEPTH, OB_DEPTH = 4096, 1024, 512, 1024, 2048

MODES = {"xnor": 0, "mac": 1, "pool_max": 2, "pool_sum": 3}
OPCODES = {"Requant": 0, "MulShift": 1, "AddConst": 2, "Prelu": 3, "JoinAdd": 4, "Sign": 5, "Threshold": 6}


def _op(kind, out_w=1, shift=0, relu=False, shift_a=0, shift_b=0, col=0):
    return {"kind": kind, "out_w": out_w, "shift": shift, "relu": relu, "shift_a": shift_a, "shift_b": shift_b,
            "col": col}


CASES = {
    # XNOR 3x3, pad 1, stride 1, c_in = 100 (two words, a tail of 36), cout = 40 (three groups of 16, the last
    # with 8 padding lanes), two tiles (ct = 32), two strips (owt = 5 of ow = 9); BatchNorm-like scale and
    # shift, then Sign: 1-bit output, narrow groups (16 bits of a word), byte strobes
    "xnor_s1": dict(mode="xnor", h=5, w=9, c_in=100, cout=40, k=3, stride=1, pad=1, ct=32, owt=5, ew_in=1,
                    ew_out=1, ops=[_op("MulShift", out_w=20, shift=2, col=0), _op("AddConst", out_w=20, col=1),
                                   _op("Sign")], seed=1),
    # XNOR 3x3, stride 2, pad 1, c_in = 70, Requant with ReLU to 8 bits
    "xnor_s2": dict(mode="xnor", h=7, w=7, c_in=70, cout=16, k=3, stride=2, pad=1, ct=16, owt=4, ew_in=1,
                    ew_out=8, ops=[_op("Requant", out_w=8, shift=1, relu=True)], seed=2),
    # XNOR extremes: every tap and channel agrees (+1) or disagrees (-1), the sums +-N reach the saturation
    "xnor_extreme": dict(mode="xnor", h=3, w=4, c_in=128, cout=32, k=3, stride=1, pad=0, ct=32, owt=2, ew_in=1,
                         ew_out=8, ops=[_op("Requant", out_w=8, shift=-1)], seed=3, pattern="xnor_extreme"),
    # MAC 3x3 on signed 8-bit elements, c_in = 20 (three words, a tail of 4), cout = 20 (PEF = 4 < PE: four
    # sub-passes a group), MulShift, Prelu, Requant
    "mac8": dict(mode="mac", h=5, w=6, c_in=20, cout=20, k=3, stride=1, pad=1, ct=32, owt=6, ew_in=8, ew_out=8,
                 in_signed=True, ops=[_op("MulShift", out_w=24, shift=3, col=0),
                                      _op("Prelu", out_w=16, shift=4, col=1),
                                      _op("Requant", out_w=8, shift=4)], seed=4),
    # MAC 3x3 stride 2 on unsigned 16-bit elements (the largest, 65535, must stay positive), weights at +-511:
    # the sums (within the 32-bit accumulator, as the compiler requires) saturate both ends
    "mac16": dict(mode="mac", h=5, w=5, c_in=6, cout=16, k=3, stride=2, pad=1, ct=16, owt=2, ew_in=16,
                  ew_out=16, in_signed=False, ops=[_op("Requant", out_w=16, shift=8)], seed=5,
                  pattern="mac_extreme"),
    # max pool 3x3, stride 2, pad 1 of signed 8-bit elements, no epilogue op
    "pool_max": dict(mode="pool_max", h=7, w=6, c_in=24, cout=24, k=3, stride=2, pad=1, ct=32, owt=2, ew_in=8,
                     ew_out=8, in_signed=True, ops=[], seed=6),
    # sum pool 2x2, stride 2 of signed 16-bit elements (an average: then a floor shift by 2)
    "pool_sum": dict(mode="pool_sum", h=6, w=8, c_in=20, cout=20, k=2, stride=2, pad=0, ct=16, owt=3, ew_in=16,
                     ew_out=16, in_signed=True, ops=[_op("Requant", out_w=16, shift=2)], seed=7),
    # bipolar max pool (1-bit elements 0 / 1, max = OR) 3x3, stride 2, pad 1: cout = 40 = groups of 16 bits
    # at bit 16 g of the word, the last group with 8 padding lanes
    "pool_max_bipolar": dict(mode="pool_max", h=6, w=7, c_in=40, cout=40, k=3, stride=2, pad=1, ct=32, owt=3,
                             ew_in=1, ew_out=1, ops=[], seed=10),
    # 32-bit elements: max pool 2x2 stride 1 and a copy joined with a 32-bit b, 32-bit outputs (4 words a group)
    "pool_max32": dict(mode="pool_max", h=3, w=4, c_in=10, cout=10, k=2, stride=1, pad=0, ct=16, owt=3,
                       ew_in=32, ew_out=32, in_signed=True, ops=[], seed=15),
    "copy_b32": dict(mode="pool_sum", h=2, w=3, c_in=12, cout=12, k=1, stride=1, pad=0, ct=16, owt=3,
                     ew_in=32, ew_out=32, in_signed=True, has_b=True, ew_b=32, b_signed=True,
                     ops=[_op("JoinAdd", out_w=34, shift_a=1, shift_b=0), _op("Requant", out_w=32, shift=1)],
                     seed=16),
    # a short line buffer: r = kh (< kh + stride), the slots wrap by stride mod r
    "xnor_s2_r3": dict(mode="xnor", h=7, w=5, c_in=64, cout=16, k=3, stride=2, pad=1, ct=16, owt=3, ew_in=1,
                       ew_out=8, ops=[_op("Requant", out_w=8, shift=0)], seed=11, r=3),
    # 1x1 stride 2 with r = 1 < stride (every row in slot 0), MAC on 8-bit unsigned elements, PEF sub-passes
    "mac_1x1_s2_r1": dict(mode="mac", h=5, w=6, c_in=12, cout=16, k=1, stride=2, pad=0, ct=16, owt=3, ew_in=8,
                          ew_out=16, in_signed=False, ops=[_op("Requant", out_w=16, shift=0)], seed=12, r=1),
    # copy (pool sum, k = 1) through a chain of every op kind but Sign: scale, shift, slope, residual join with
    # tensor b (8-bit signed), requantize with ReLU, threshold (neg in the next column) -> 1 bit
    "copy_chain": dict(mode="pool_sum", h=3, w=5, c_in=40, cout=40, k=1, stride=1, pad=0, ct=32, owt=3,
                       ew_in=8, ew_out=1, in_signed=True, has_b=True, ew_b=8, b_signed=True,
                       ops=[_op("MulShift", out_w=16, shift=1, col=0), _op("AddConst", out_w=12, col=1),
                            _op("Prelu", out_w=12, shift=3, col=2),
                            _op("JoinAdd", out_w=14, shift_a=1, shift_b=3),
                            _op("Requant", out_w=10, shift=1, relu=True),
                            _op("Threshold", col=3)], seed=8),
    # XNOR 1x1 with a long chain (the BiDRN's 1x1 branch convolutions): the epilogue bounds the group
    "xnor_1x1_chain": dict(mode="xnor", h=3, w=4, c_in=64, cout=32, k=1, stride=1, pad=0, ct=32, owt=4, ew_in=1,
                           ew_out=1, ops=[_op("MulShift", out_w=16, shift=1, col=0), _op("AddConst", out_w=16, col=1),
                                          _op("Prelu", out_w=16, shift=2, col=2), _op("AddConst", out_w=16, col=3),
                                          _op("MulShift", out_w=16, shift=0, col=4), _op("AddConst", out_w=16, col=5),
                                          _op("Sign")], seed=14),
    # copy with one op: two steps a group, the array waits for the epilogue's take (the credit-bound case)
    "copy_requant": dict(mode="pool_sum", h=3, w=4, c_in=48, cout=48, k=1, stride=1, pad=0, ct=48, owt=4,
                         ew_in=8, ew_out=8, in_signed=True, ops=[_op("Requant", out_w=8, shift=1)], seed=13),
    # phases of a transposed convolution (4x4, stride 2, pad 1: 2x2 windows, stride 1, output = input size):
    # top padding 1 and left padding 0 (phase (0, 1)), XNOR; top 0 and left 1 (phase (1, 0)), MAC, two strips
    "xnor_phase01": dict(mode="xnor", h=5, w=6, c_in=70, cout=16, k=2, stride=1, pad=1, pad_x=0, oh=5, ow=6,
                         ct=16, owt=6, ew_in=1, ew_out=8, ops=[_op("Requant", out_w=8, shift=1)], seed=17),
    "mac_phase10": dict(mode="mac", h=4, w=7, c_in=12, cout=8, k=2, stride=1, pad=0, pad_x=1, oh=4, ow=7,
                        ct=8, owt=4, ew_in=8, ew_out=16, in_signed=True, ops=[_op("Requant", out_w=16, shift=0)],
                        seed=18),
    # copy with a JoinAdd first (b needed at op 0) and 16-bit output
    "copy_join": dict(mode="pool_sum", h=2, w=4, c_in=32, cout=32, k=1, stride=1, pad=0, ct=32, owt=4,
                      ew_in=16, ew_out=16, in_signed=True, has_b=True, ew_b=16, b_signed=False,
                      ops=[_op("JoinAdd", out_w=16, shift_a=0, shift_b=1), _op("Requant", out_w=16, shift=-1)],
                      seed=9),
}


def _ew_lg(ew: int) -> int:
    return {1: 0, 8: 3, 16: 4, 32: 5}[ew]


def layer(case: dict) -> dict:
    """Descriptor fields (docs/engine.md, "Descriptor format") of a case."""
    c = dict(case)
    c.setdefault("in_signed", False)
    c.setdefault("has_b", False)
    c.setdefault("ew_b", 8)
    c.setdefault("b_signed", False)
    c.setdefault("pattern", "random")
    k, s, p = c["k"], c["stride"], c["pad"]
    c.setdefault("pad_x", p)
    c["kh"] = c["kw"] = k
    c.setdefault("oh", (c["h"] + 2 * p - k) // s + 1)
    c.setdefault("ow", (c["w"] + 2 * c["pad_x"] - k) // s + 1)
    c["cw_in"] = math.ceil(c["c_in"] * c["ew_in"] / 64)
    c["cw_out"] = math.ceil(c["cout"] * c["ew_out"] / 64)
    c["cw_b"] = math.ceil(c["cout"] * c["ew_b"] / 64) if c["has_b"] else 0
    c["ng"] = math.ceil(c["cout"] / PE)
    c["n_ct"] = math.ceil(c["cout"] / c["ct"])
    c["n_strips"] = math.ceil(c["ow"] / c["owt"])
    c["iwt"] = (c["owt"] - 1) * s + k
    c["slot_words"] = c["iwt"] * c["cw_in"]
    c["r"] = c.get("r", k + s)
    c["wtile_words"] = (c["ct"] // PE) * k * k * c["cw_in"]
    c["n_cols"] = max([o["col"] + (2 if o["kind"] == "Threshold" else 1) for o in c["ops"]
                       if o["kind"] in ("MulShift", "AddConst", "Prelu", "Threshold")] + [0])
    assert c["r"] * c["slot_words"] <= LB_DEPTH and c["wtile_words"] <= WB_DEPTH
    assert c["n_cols"] * c["ng"] <= CB_DEPTH
    assert c["owt"] * c["cw_out"] <= OB_DEPTH // 2 and c["owt"] * c["cw_b"] <= BB_DEPTH // 2
    return c


def desc_int(c: dict) -> int:
    """The descriptor as one integer: header words 0..12 at bit 64 * i, op j at bit 64 * (13 + j) (the packed
    desc_t: ops above hdr)."""
    w = [0] * 13
    w[0] = (MODES[c["mode"]] | (int(c["has_b"]) << 5) | (int(c["in_signed"]) << 6) | (int(c["b_signed"]) << 7)
            | (_ew_lg(c["ew_in"]) << 8) | (_ew_lg(c["ew_out"]) << 11) | (_ew_lg(c["ew_b"]) << 14)
            | (len(c["ops"]) << 17) | (77 << 32))
    w[1] = c["h"] | (c["w"] << 16) | (c["c_in"] << 32) | (c["cw_in"] << 48)
    w[2] = c["kh"] | (c["kw"] << 8) | (c["stride"] << 16) | (c["pad"] << 24) | (c["cw_in"] << 32) | (c["cw_b"] << 48)
    w[3] = c["oh"] | (c["ow"] << 16) | (c["cout"] << 32) | (c["cw_out"] << 48)
    w[4:9] = [0x1000, 0x2000, 0x3000, 0x4000, 0x5000]
    w[9] = c["ct"] | (c["n_ct"] << 16) | (c["owt"] << 32) | (c["n_strips"] << 48)
    w[10] = c["cw_b"] | (c["cw_out"] << 16) | (c["n_cols"] << 32) | (c["iwt"] << 48)
    w[11] = c["ng"] | (c["wtile_words"] << 16) | (c["slot_words"] << 32) | (c["r"] << 48)
    w[12] = c["pad_x"]
    v = sum(x << (64 * i) for i, x in enumerate(w))
    for j, o in enumerate(c["ops"]):
        word = (OPCODES[o["kind"]] | (o["out_w"] << 4) | ((o["shift"] & 0xFF) << 10) | (int(o["relu"]) << 18)
                | (o["shift_a"] << 19) | (o["shift_b"] << 27) | (o["col"] << 35))
        v |= word << (64 * (13 + j))
    return v


# ---- data ------------------------------------------------------------------------------------------------
def _rand_elems(rng, bits, signed, shape):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def data(c: dict) -> dict:
    """Input x (h, w, c_in), weights (cout, kh, kw, c_in), constants (n_cols, ng * PE), b (oh, ow, cout)."""
    rng = np.random.default_rng(c["seed"])
    kh, kw, cin, cout = c["kh"], c["kw"], c["c_in"], c["cout"]
    d = {}
    if c["mode"] == "xnor":
        d["x"] = rng.integers(0, 2, size=(c["h"], c["w"], cin))
        d["wt"] = rng.integers(0, 2, size=(cout, kh, kw, cin))
        if c["pattern"] == "xnor_extreme":
            d["x"][:] = 1
            d["wt"][: cout // 2] = 1   # agree everywhere: +kh*kw*c_in
            d["wt"][cout // 2:] = 0    # disagree everywhere: -kh*kw*c_in
    elif c["mode"] == "mac":
        d["x"] = _rand_elems(rng, c["ew_in"], c["in_signed"], (c["h"], c["w"], cin))
        d["wt"] = _rand_elems(rng, c["ew_in"], True, (cout, kh, kw, cin))
        if c["pattern"] == "mac_extreme":
            top = (1 << c["ew_in"]) - 1 if not c["in_signed"] else (1 << (c["ew_in"] - 1)) - 1
            d["x"][:] = top
            d["x"][1::2, ::2] = rng.integers(0, 3, size=d["x"][1::2, ::2].shape)
            lo, hi = -511, 511
            d["wt"][: cout // 2] = hi
            d["wt"][cout // 2:] = lo
            d["wt"][cout // 2 - 1, :, :, ::2] = lo  # mixed signs in one lane
    elif c["ew_in"] == 1:
        d["x"] = (rng.random((c["h"], c["w"], cin)) < 0.15).astype(np.int64)  # OR over 9 taps: not all 1
        d["wt"] = None
    else:
        d["x"] = _rand_elems(rng, c["ew_in"], c["in_signed"], (c["h"], c["w"], cin))
        if c["ew_in"] >= 8 and c["in_signed"]:
            d["x"][0, 0, :4] = [-(1 << (c["ew_in"] - 1)), (1 << (c["ew_in"] - 1)) - 1, 0, -1]
        d["wt"] = None
    n_cols = c["n_cols"]
    cols = np.zeros((max(n_cols, 1), c["ng"] * PE), dtype=np.int64)
    for o in c["ops"]:
        j = o["col"]
        if o["kind"] == "MulShift":
            cols[j] = rng.integers(-300, 300, size=cols.shape[1])
            cols[j, :2] = [-(1 << 15), (1 << 15) - 1]
        elif o["kind"] == "AddConst":
            cols[j] = rng.integers(-4000, 4000, size=cols.shape[1])
        elif o["kind"] == "Prelu":
            cols[j] = rng.integers(-100, 100, size=cols.shape[1])
        elif o["kind"] == "Threshold":
            cols[j] = rng.integers(-40, 300, size=cols.shape[1])
            cols[j + 1] = rng.integers(0, 2, size=cols.shape[1])
    d["cols"] = cols
    if c["has_b"]:
        d["b"] = _rand_elems(rng, c["ew_b"], c["b_signed"], (c["oh"], c["ow"], cout))
    return d


# ---- the reference (docs/engine.md, "Semantics") ---------------------------------------------------------
def _sat(v, n):
    return np.clip(v, -(1 << (n - 1)), (1 << (n - 1)) - 1)


def _shift(v, sh):
    return (v >> sh) if sh >= 0 else (v << (-sh))


def reference(c: dict, d: dict) -> np.ndarray:
    """Output integers (oh, ow, cout): the layer's value v, then the ops in order, the low ew_out bits."""
    h, w, kh, kw, s, p, px = c["h"], c["w"], c["kh"], c["kw"], c["stride"], c["pad"], c["pad_x"]
    oh, ow, cout = c["oh"], c["ow"], c["cout"]
    x = d["x"].astype(object)
    v = np.zeros((oh, ow, cout), dtype=object)
    for oy in range(oh):
        for ox in range(ow):
            taps = [(oy * s - p + ky, ox * s - px + kx, ky, kx) for ky in range(kh) for kx in range(kw)]
            taps = [t for t in taps if 0 <= t[0] < h and 0 <= t[1] < w]
            if c["mode"] == "xnor":
                v[oy, ox] = sum(((2 * (d["wt"][:, ky, kx, :] == x[iy, ix][None, :]) - 1).sum(axis=1)
                                 for iy, ix, ky, kx in taps))
            elif c["mode"] == "mac":
                v[oy, ox] = sum((d["wt"][:, ky, kx, :].astype(object) * x[iy, ix][None, :]).sum(axis=1)
                                for iy, ix, ky, kx in taps)
            elif c["mode"] == "pool_max":
                v[oy, ox] = np.max(np.stack([x[iy, ix] for iy, ix, _, _ in taps]), axis=0)
            else:
                v[oy, ox] = sum(x[iy, ix] for iy, ix, _, _ in taps)
    v = v.astype(np.int64)
    cols = d["cols"][:, :cout]
    for o in c["ops"]:
        k = o["kind"]
        if k == "Requant":
            v = _sat(_shift(v, o["shift"]), o["out_w"])
            if o["relu"]:
                v = np.maximum(v, 0)
        elif k == "MulShift":
            v = _sat(_shift(v * cols[o["col"]], o["shift"]), o["out_w"])
        elif k == "AddConst":
            v = _sat(v + cols[o["col"]], o["out_w"])
        elif k == "Prelu":
            v = np.where(v > 0, _sat(v, o["out_w"]), _sat(_shift(v * cols[o["col"]], o["shift"]), o["out_w"]))
        elif k == "JoinAdd":
            v = _sat((v << o["shift_a"]) + (d["b"].astype(np.int64) << o["shift_b"]), o["out_w"])
        elif k == "Sign":
            v = (v >= 0).astype(np.int64)
        elif k == "Threshold":
            t, neg = cols[o["col"]], cols[o["col"] + 1]
            v = np.where(neg != 0, v <= t, v >= t).astype(np.int64)
    return v & ((1 << c["ew_out"]) - 1)


# ---- DRAM / buffer layouts (docs/engine.md, "Data layout in DRAM") ----------------------------------------
def pack_pixels(t: np.ndarray, ew: int) -> np.ndarray:
    """(H, W, C) integers -> (H, W, ceil(C * ew / 64)) 64-bit words (Python ints), channel c at bit c * ew."""
    hh, ww, cc = t.shape
    nw = math.ceil(cc * ew / 64)
    out = np.zeros((hh, ww, nw), dtype=object)
    mask = (1 << ew) - 1
    for y in range(hh):
        for x in range(ww):
            v = 0
            for ch in range(cc):
                v |= (int(t[y, x, ch]) & mask) << (ch * ew)
            for k in range(nw):
                out[y, x, k] = (v >> (64 * k)) & ((1 << 64) - 1)
    return out


def weight_tile(c: dict, d: dict, t: int) -> list[int]:
    """Weight-buffer words of tile t: word ((g_local * kh + ky) * kw + kx) * cw_in + cw, lane p = channel
    g * PE + p (PE x 64 bits, lane 0 in the LSBs)."""
    kh, kw, cw_in, ew = c["kh"], c["kw"], c["cw_in"], c["ew_in"]
    gpt = c["ct"] // PE
    epw = 64 // ew
    words = []
    for gl in range(gpt):
        g = t * gpt + gl
        for ky in range(kh):
            for kx in range(kw):
                for cw in range(cw_in):
                    word = 0
                    for pl in range(PE):
                        co = g * PE + pl
                        lane = 0
                        if co < c["cout"]:
                            for e in range(epw):
                                ci = cw * epw + e
                                if ci < c["c_in"]:
                                    lane |= (int(d["wt"][co, ky, kx, ci]) & ((1 << ew) - 1)) << (e * ew)
                        word |= lane << (64 * pl)
                    words.append(word)
    return words


def const_words(c: dict, d: dict) -> list[int]:
    """Constant-buffer word j * ng + g: PE signed 32-bit lanes (channel g * PE + p in lane p)."""
    words = []
    for j in range(d["cols"].shape[0]):
        for g in range(c["ng"]):
            word = 0
            for pl in range(PE):
                word |= (int(d["cols"][j, g * PE + pl]) & 0xFFFFFFFF) << (32 * pl)
            words.append(word)
    return words
