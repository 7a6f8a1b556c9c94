"""cocotb bench of the engine's compute unit alone (bhpe_eng_compute with its epilogue and arrays).

The five buffers are Python models with a registered read (the data of the address presented in cycle c is on
the read port in cycle c + 1) and start full of random garbage, so that a tap or channel the unit fails to mask
shows. The bench plays the loader (input rows into the line buffer's slot y mod r, b rows into b slot oy mod 2,
only when the row/slot rules of docs/engine.md allow, counting in_rows_loaded / b_rows_loaded) and the store
(finished rows out of output slot oy mod 2, the tile's bytes of each pixel, into a DRAM image, counting
out_rows_stored), runs every pass (tile t, strip s) of the layer and compares the DRAM image with the numpy
reference of engine_compute_tb_cases (docs/engine.md's semantics). Two tests: a loader and store that are
never late (the pass's cycles are checked against the timing formula in bhpe_eng_compute.sv's header), and a
loader and store with random delays.
"""

from __future__ import annotations

import os
import pathlib
import random
import sys

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import engine_compute_tb_cases as cases  # noqa: E402

PE = cases.PE
M64 = (1 << 64) - 1


def _timing(c: dict, ngt: int, owt_s: int) -> tuple[int, bool]:
    """The pass's cycles by the formulas of bhpe_eng_compute.sv's header, and whether the formula claims to be
    exact (the array or the epilogue bounds the groups) or approximate."""
    kk = c["kh"] * c["kw"]
    if c["mode"] == "xnor":
        g, lat = kk * c["cw_in"], 3
    elif c["mode"] == "mac":
        g, lat = (PE // cases.PEF) * kk * c["cw_in"], 4
    else:
        g, lat = kk * max(1, PE * c["ew_in"] // 64), 3
    ops = c["ops"]
    n_ops = len(ops)
    uops = [k for o in ops for k in ([o["kind"]] * (2 if o["kind"] == "Threshold" else 1))]
    e_lat = 2 * len(uops)
    nbw = max(1, PE * c["ew_b"] // 64) if c["has_b"] else 0
    if "JoinAdd" in uops:
        e_lat += 2 * max(0, -(-(nbw + 1) // 2) - uops.index("JoinAdd"))
    e = e_lat / 2 if n_ops else 1
    w = max(1, PE * c["ew_out"] // 64)
    credit = (g + lat + 2) / 3  # the array runs at most three groups ahead of the epilogue's take
    cost = max(g, e, w, credit, nbw)
    n = c["oh"] * owt_s * ngt
    if cost == g:
        # the array bounds the pass: one cycle a row for its start, the last group's way out
        slot, extra = (c["r"] - c["pad"]) % c["r"], 0
        for _ in range(c["oh"] - 1):
            slot += c["stride"]
            slot -= c["r"] if slot >= c["r"] else 0
            while slot >= c["r"]:
                slot, extra = slot - c["r"], extra + 1
        if c["r"] < c["kh"] + c["stride"]:
            # no slot to load the next row's inputs into ahead: each row waits for the loader to bring them once
            # the previous row's steps are issued (1 cycle with this bench's loader; slot wraps hide in it)
            extra = (c["oh"] - 1) * 1
        t0 = min(g, e_lat) + lat + w + 3
        # a row shorter than a group's way out waits for the output slot of the row before the previous one
        return 3 + n * g + c["oh"] + extra + t0, owt_s * ngt * g >= t0 + 4
    if cost == e and cost > max(w, credit, nbw):
        # the epilogue bounds the pass: its two contexts take groups in pairs
        if n % 2 == 0:
            return round(n * e + g + (g | 1) + lat + w + 7), True
        return round(n * e + e + g + lat + w + 7), True
    return round(3 + n * cost + 1 + min(g, e_lat) + lat + w + 3), False


class Bench:
    def __init__(self, dut, c, d, stall: float, seed: int):
        self.dut, self.c, self.d = dut, c, d
        self.rng = random.Random(seed)
        self.stall = stall
        self.lb = [self.rng.getrandbits(64) for _ in range(cases.LB_DEPTH)]
        self.bb = [self.rng.getrandbits(64) for _ in range(cases.BB_DEPTH)]
        self.ob = [self.rng.getrandbits(64) for _ in range(cases.OB_DEPTH)]
        self.wb = [self.rng.getrandbits(PE * 64) for _ in range(cases.WB_DEPTH)]
        self.cb = [self.rng.getrandbits(PE * 32) for _ in range(cases.CB_DEPTH)]
        for i, wd in enumerate(cases.const_words(c, d)):
            self.cb[i] = wd
        self.x_words = cases.pack_pixels(d["x"], c["ew_in"])
        self.b_words = cases.pack_pixels(d["b"], c["ew_b"]) if c["has_b"] else None
        # the output tensor in DRAM: (oh, ow, cw_out) words, as bytes
        self.dram = bytearray(c["oh"] * c["ow"] * c["cw_out"] * 8)
        self.addr = (0, 0, 0, 0)
        self.cycle = 0

    # ---- one clock cycle of the buffers, the loader and the store -----------------------------------------
    async def run_buffers(self):
        dut = self.dut
        while True:
            await RisingEdge(dut.clk_i)
            self.cycle += 1
            la, ba, wa, ca = self.addr
            dut.lb_rdata_i.value = self.lb[la]
            dut.bb_rdata_i.value = self.bb[ba]
            dut.wb_rdata_i.value = self.wb[wa]
            dut.cb_rdata_i.value = self.cb[ca]
            await ReadOnly()
            self.addr = (int(dut.lb_raddr_o.value), int(dut.bb_raddr_o.value), int(dut.wb_raddr_o.value),
                         int(dut.cb_raddr_o.value))
            if int(dut.ob_we_o.value):
                a, wdat, strb = int(dut.ob_waddr_o.value), int(dut.ob_wdata_o.value), int(dut.ob_wstrb_o.value)
                m = sum(0xFF << (8 * b) for b in range(8) if strb >> b & 1)
                self.ob[a] = (self.ob[a] & ~m & M64) | (wdat & m)

    def _late(self) -> bool:
        return self.stall > 0 and self.rng.random() < self.stall

    async def run_pass(self, t: int, s: int) -> int:
        """One pass; returns the cycles from pass_start to pass_done."""
        dut, c = self.dut, self.c
        st, pad, r = c["stride"], c["pad"], c["r"]
        y_end = min(c["h"], (c["oh"] - 1) * st - pad + c["kh"])
        ox0 = s * c["owt"]
        owt_s = min(c["owt"], c["ow"] - ox0)
        x0 = ox0 * st - c["pad_x"]
        ct = c["ct"]
        lo_b, hi_b = t * ct * c["ew_out"] // 8, min((t + 1) * ct * c["ew_out"] // 8, c["cw_out"] * 8)
        loaded = b_loaded = stored = 0
        dut.in_rows_loaded_i.value = 0
        dut.b_rows_loaded_i.value = 0
        dut.out_rows_stored_i.value = 0
        await RisingEdge(dut.clk_i)
        dut.pass_t_i.value = t
        dut.pass_s_i.value = s
        dut.pass_start_i.value = 1
        await RisingEdge(dut.clk_i)
        dut.pass_start_i.value = 0
        start = self.cycle
        done_at = None
        while done_at is None or stored < c["oh"]:
            await ReadOnly()
            oy = int(dut.oy_o.value)
            rows_done = int(dut.out_rows_done_o.value)
            if int(dut.pass_done_o.value) and done_at is None:
                done_at = self.cycle
                assert rows_done == c["oh"], f"pass_done with {rows_done} of {c['oh']} rows done"
            # loader: input rows from `loaded` on (one a cycle when late, else every row allowed), when the
            # row's slot is free
            nl, nb, ns = loaded, b_loaded, stored
            while nl < y_end and nl < oy * st - pad + r and not self._late():
                y = nl
                slot = y % r
                for lx in range(c["iwt"]):
                    x = x0 + lx
                    if 0 <= x < c["w"]:
                        for cw in range(c["cw_in"]):
                            self.lb[slot * c["slot_words"] + lx * c["cw_in"] + cw] = int(self.x_words[y, x, cw])
                nl += 1
                if self.stall > 0:
                    break
            if c["has_b"] and b_loaded < c["oh"] and b_loaded < oy + 2 and not self._late():
                yb = b_loaded
                for lx in range(owt_s):
                    for cw in range(c["cw_b"]):
                        self.bb[(yb % 2) * (cases.BB_DEPTH // 2) + lx * c["cw_b"] + cw] = \
                            int(self.b_words[yb, ox0 + lx, cw])
                nb = b_loaded + 1
            # store: row `stored`, once done, the tile's bytes of each pixel of the strip
            if stored < rows_done and not self._late():
                yo = stored
                for lx in range(owt_s):
                    base = (yo % 2) * (cases.OB_DEPTH // 2) + lx * c["cw_out"]
                    pix = b"".join(self.ob[base + k].to_bytes(8, "little") for k in range(c["cw_out"]))
                    off = ((yo * c["ow"] + ox0 + lx) * c["cw_out"]) * 8
                    self.dram[off + lo_b:off + hi_b] = pix[lo_b:hi_b]
                ns = stored + 1
            await RisingEdge(dut.clk_i)
            loaded, b_loaded, stored = nl, nb, ns
            dut.in_rows_loaded_i.value = loaded
            dut.b_rows_loaded_i.value = b_loaded
            dut.out_rows_stored_i.value = stored
            assert self.cycle - start < 200000, "pass does not finish"
        return done_at - start

    def result(self) -> np.ndarray:
        c = self.c
        words = np.frombuffer(bytes(self.dram), dtype="<u8").reshape(c["oh"], c["ow"], c["cw_out"])
        return words


async def _run(dut, stall: float):
    name = os.environ["CASE"]
    c = cases.layer(cases.CASES[name])
    d = cases.data(c)
    want = cases.reference(c, d)
    bench = Bench(dut, c, d, stall, seed=sum(map(ord, name)) + int(stall * 100))
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    dut.pass_start_i.value = 0
    dut.desc_i.value = cases.desc_int(c)
    for sig in ("in_rows_loaded_i", "b_rows_loaded_i", "out_rows_stored_i", "pass_t_i", "pass_s_i"):
        getattr(dut, sig).value = 0
    dut.rst_ni.value = 0
    cocotb.start_soon(bench.run_buffers())
    for _ in range(3):
        await RisingEdge(dut.clk_i)
    dut.rst_ni.value = 1
    await RisingEdge(dut.clk_i)
    gpt = c["ct"] // PE
    timings = []
    for t in range(c["n_ct"]):
        if c["mode"] in ("xnor", "mac"):
            for i, wd in enumerate(cases.weight_tile(c, d, t)):
                bench.wb[i] = wd
        for s in range(c["n_strips"]):
            cyc = await bench.run_pass(t, s)
            ngt = min(gpt, c["ng"] - t * gpt)
            owt_s = min(c["owt"], c["ow"] - s * c["owt"])
            model, exact = _timing(c, ngt, owt_s)
            dut._log.info(f"{name} tile {t} strip {s}: {cyc} cycles (formula {model}, exact {exact})")
            timings.append((t, s, cyc, model, exact))
    got = bench.result()
    exp = cases.pack_pixels(want, c["ew_out"])
    bad = [(y, x, k) for y in range(c["oh"]) for x in range(c["ow"]) for k in range(c["cw_out"])
           if int(got[y, x, k]) != int(exp[y, x, k])]
    if bad:
        ew, m = c["ew_out"], (1 << c["ew_out"]) - 1
        els = []
        for y, x, k in bad[:6]:
            g, e = int(got[y, x, k]), int(exp[y, x, k])
            els += [(y, x, k * 64 // ew + i, (g >> (i * ew)) & m, (e >> (i * ew)) & m) for i in range(64 // ew)
                    if ((g ^ e) >> (i * ew)) & m]
        raise AssertionError(f"{len(bad)} of {got.size} output words differ; (oy, ox, channel, got, want): "
                             f"{els[:12]}")
    if stall == 0:
        # exact where the array or the epilogue is the bottleneck, else (the credit bound) within 3 % + 2
        off = [tm for tm in timings if (tm[2] != tm[3] if tm[4] else abs(tm[2] - tm[3]) > 0.05 * tm[3])]
        assert not off, f"passes (tile, strip, cycles, formula) off the header's formula: {off}"


@cocotb.test()
async def compute_no_stalls(dut):
    """Loader and store never late: outputs exact, pass cycles as the header's formula."""
    await _run(dut, 0.0)


@cocotb.test()
async def compute_with_stalls(dut):
    """Loader and store late at random (each row held back with probability 0.6 a cycle): outputs exact."""
    await _run(dut, 0.6)
