"""cocotb bench for bhpe_swg: windows and padding mask against the QONNX anchor (tests/anchors.py: qonnx Im2Col
of the frame and of an all-ones frame), which SlidingWindow.execute / execute_mask must equal,
with and without random stalls on both streams, and the measured II / latency against SlidingWindow.cycles.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from binaryhpe.sim.streams import StreamSink, StreamSource, random_pauses, reset
from cocotb_plumbing import (Monitor, anchored, anchors, check_cycles, frames_for, from_beats, kind_from_env, start,
                             to_beats)


class MaskRecorder:
    """Records ``out_tmask`` at every accepted output beat."""

    def __init__(self, dut, clk):
        self.dut, self.clk, self.masks = dut, clk, []
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await ReadOnly()
            if self.dut.out_tvalid.value == 1 and self.dut.out_tready.value == 1:
                self.masks.append(int(self.dut.out_tmask.value))
            await RisingEdge(self.clk)


async def run_frames(dut, kind, stall: float, seed: int, n_random: int):
    pz = (lambda k: random_pauses(stall, seed + k)) if stall > 0 else (lambda k: None)
    src = StreamSource(dut, "in", dut.clk_i, pz(0))
    sink = StreamSink(dut, "out", dut.clk_i, pz(1))
    rec = MaskRecorder(dut, dut.clk_i)
    mon = Monitor(dut, dut.clk_i, ["in", "out"])
    await reset(dut, dut.clk_i)
    spec = kind.in_streams()[0]
    frames = frames_for((kind.h, kind.w, kind.c), spec.width, spec.signed, n_random, np.random.default_rng(seed))
    want, want_m = [], []
    for x in frames:
        src.send(to_beats(x, spec.lanes, spec.width))
        want.append(anchored(kind, [x])[0].reshape(-1))
        m = anchors.expect_mask(kind, [x])
        assert np.array_equal(kind.execute_mask([x]), m), f"{kind.name}: execute_mask differs from the anchor"
        want_m.append(m.reshape(-1))
    want, want_m = np.concatenate(want), np.concatenate(want_m)
    n = want.size // kind.lanes
    await sink.wait_for(n, timeout_cycles=20 * n + 20 * len(frames) * kind.h * kind.w * kind.c + 500)
    for _ in range(30):  # nothing extra may come out
        await RisingEdge(dut.clk_i)
    got = from_beats(sink.words, kind.lanes, kind.elem_w, kind.signed)
    got_m = from_beats(rec.masks, kind.lanes, 1, signed=False)
    assert got.size == want.size, f"{got.size} window elements, expected {want.size}"
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, f"first data mismatch at element {bad[0]}: {got[bad[0]]} != {want[bad[0]]}"
    bad = np.nonzero(got_m != want_m)[0]
    assert bad.size == 0, f"first mask mismatch at element {bad[0]}"
    assert src.empty()
    return mon, n // len(frames)


@cocotb.test()
async def swg_exact_without_stalls_and_cycles(dut):
    kind = kind_from_env()
    await start(dut)
    mon, per_frame = await run_frames(dut, kind, 0.0, int(os.environ.get("SEED", "1")), n_random=2)
    outs, t0 = mon.fires["out"], mon.fires["in"][0]
    measured = {"ii": outs[3 * per_frame] - outs[2 * per_frame], "latency": outs[per_frame - 1] - t0}
    check_cycles(dut, kind.name, measured, kind.cycles())


@cocotb.test()
async def swg_exact_with_random_stalls(dut):
    kind = kind_from_env()
    await start(dut)
    await run_frames(dut, kind, float(os.environ.get("STALL", "0.4")), int(os.environ.get("SEED", "1")) + 5,
                     n_random=3)


@cocotb.test()
async def swg_exact_with_slow_input(dut):
    """Input much slower than the output (and the reverse): exercises the row-wait and ring-full paths."""
    kind = kind_from_env()
    await start(dut)
    seed = int(os.environ.get("SEED", "1")) + 9
    pz_in, pz_out = random_pauses(0.8, seed), random_pauses(0.0, seed + 1)
    src = StreamSource(dut, "in", dut.clk_i, pz_in)
    sink = StreamSink(dut, "out", dut.clk_i, pz_out)
    await reset(dut, dut.clk_i)
    spec = kind.in_streams()[0]
    frames = frames_for((kind.h, kind.w, kind.c), spec.width, spec.signed, 1, np.random.default_rng(seed))[:2]
    want = []
    for x in frames:
        src.send(to_beats(x, spec.lanes, spec.width))
        want.append(anchored(kind, [x])[0].reshape(-1))
    want = np.concatenate(want)
    n = want.size // kind.lanes
    await sink.wait_for(n, timeout_cycles=10 * n + 20 * kind.h * kind.w * kind.c + 500)
    sink.pauses = random_pauses(0.9, seed + 2)  # now a slow consumer for a second batch
    src.pauses = None
    for x in frames:
        src.send(to_beats(x, spec.lanes, spec.width))
        want = np.concatenate([want, anchored(kind, [x])[0].reshape(-1)])
    await sink.wait_for(2 * n, timeout_cycles=30 * n + 500)
    for _ in range(30):
        await RisingEdge(dut.clk_i)
    got = from_beats(sink.words, kind.lanes, kind.elem_w, kind.signed)
    assert got.size == want.size and np.array_equal(got, want)
