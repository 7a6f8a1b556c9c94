"""cocotb bench for pooling.

Expected values come from the QONNX anchors (tests/anchors.py), which the kind's own numerics must equal:
TOP=pair:   bhpe_swg_pool (SWG + reducer) fed with (H, W, C) frames, compared with ONNX MaxPool / Im2Col +
            ReduceSum (and Pool.execute with them);
            measured II / latency against Pool.cycles().
TOP=reduce: bhpe_pool alone fed with window beats and arbitrary (random, all-zero, all-one) masks,
            compared with ReduceMax / ReduceSum over the masked taps (and Pool.reduce with them);
            measured II / latency against Pool.reduce_cycles().
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from binaryhpe.sim.streams import StreamSink, StreamSource, random_pauses, reset
from cocotb_plumbing import (Monitor, anchored, anchors, check_cycles, frames_for, from_beats, kind_from_env, start,
                             to_beats)


class MaskedSource(StreamSource):
    """A StreamSource whose queue holds (tdata, tmask) pairs, driving ``<prefix>_tmask`` too."""

    def __init__(self, dut, prefix, clk, pauses=None):
        self.mask = getattr(dut, f"{prefix}_tmask")
        self.mask.value = 0
        super().__init__(dut, prefix, clk, pauses)

    def send(self, words):
        self.queue.extend((int(d), int(m)) for d, m in words)

    async def _run(self):
        offered = False  # a beat once offered stays valid until it is taken (AXI-Stream)
        while True:
            idle = next(self.pauses) if self.pauses is not None else False
            if self.queue and (offered or not idle):
                self.data.value, self.mask.value = self.queue[0]
                self.valid.value = 1
                offered = True
            else:
                self.valid.value = 0
            await ReadOnly()
            fire = self.valid.value == 1 and self.ready.value == 1
            await RisingEdge(self.clk)
            if fire:
                self.queue.pop(0)
                self.sent += 1
                offered = False


async def run_frames(dut, kind, stall: float, seed: int, n_random: int):
    top = os.environ["TOP"]
    pz = (lambda k: random_pauses(stall, seed + k)) if stall > 0 else (lambda k: None)
    rng = np.random.default_rng(seed)
    spec = kind.in_streams()[0]
    frames = frames_for((kind.h, kind.w, kind.c), spec.width, spec.signed, n_random, rng)
    want = []
    src = (StreamSource if top == "pair" else MaskedSource)(dut, "in", dut.clk_i, pz(0))
    sink = StreamSink(dut, "out", dut.clk_i, pz(1))
    mon = Monitor(dut, dut.clk_i, ["in", "out"])
    await reset(dut, dut.clk_i)  # before any beat is queued: the source drives valid as soon as it has one
    if top == "pair":
        for x in frames:
            src.send(to_beats(x, spec.lanes, spec.width))
            want.append(anchored(kind, [x])[0].reshape(-1))
    else:
        for i, x in enumerate(frames):
            win, m0 = anchors.sliding_window(x, kind.k, kind.s, kind.pad, kind.elem_w, kind.signed)
            # the SWG's own mask, then random masks, an all-zero and an all-one mask
            if i == 0:
                m = m0
            elif i == len(frames) - 1:
                m = np.zeros_like(win)
            elif i == len(frames) - 2:
                m = np.ones_like(win)
            else:
                m = rng.integers(0, 2, size=win.shape[:2] + (kind.k * kind.k, 1)).repeat(kind.c, axis=3)
                m = m.reshape(win.shape)
            # the mask is per tap (pixel): all lanes of a beat share it, as the SWG emits it
            mb = m.reshape(-1, kind.lanes)
            masks = [int(r[0]) * ((1 << kind.lanes) - 1) for r in mb]
            src.send(zip(to_beats(win, spec.lanes, spec.width), masks))
            r = anchors.pool_reduce(win, m, kind.k, kind.c, kind.mode, kind.elem_w, kind.signed)
            assert np.array_equal(kind.reduce(win, m), r), f"{kind.name}: reduce differs from the anchor"
            want.append(r.reshape(-1))
    want = np.concatenate(want)
    n = want.size // kind.lanes
    await sink.wait_for(n, timeout_cycles=40 * kind.k * kind.k * n + 20 * len(frames) * kind.h * kind.w * kind.c + 500)
    for _ in range(30):
        await RisingEdge(dut.clk_i)
    got = from_beats(sink.words, kind.lanes, kind.out_w, kind.signed)
    assert got.size == want.size, f"{got.size} results, expected {want.size}"
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, f"first mismatch at element {bad[0]}: {got[bad[0]]} != {want[bad[0]]}"
    assert src.empty()
    return mon, n // len(frames)


@cocotb.test()
async def pool_exact_without_stalls_and_cycles(dut):
    kind = kind_from_env()
    await start(dut)
    mon, per_frame = await run_frames(dut, kind, 0.0, int(os.environ.get("SEED", "1")), n_random=2)
    outs, t0 = mon.fires["out"], mon.fires["in"][0]
    measured = {"ii": outs[3 * per_frame] - outs[2 * per_frame], "latency": outs[per_frame - 1] - t0}
    model = kind.cycles() if os.environ["TOP"] == "pair" else kind.reduce_cycles()
    check_cycles(dut, kind.name, measured, model)


@cocotb.test()
async def pool_exact_with_random_stalls(dut):
    kind = kind_from_env()
    await start(dut)
    await run_frames(dut, kind, float(os.environ.get("STALL", "0.4")), int(os.environ.get("SEED", "1")) + 5,
                     n_random=3)
