"""cocotb bench for bhpe_fifo: every beat comes out once, in order, under random stalls."""

import os
import random

import cocotb
from cocotb.clock import Clock

from binaryhpe.sim.streams import StreamSink, StreamSource, random_pauses, reset


@cocotb.test()
async def fifo_passes_every_beat_in_order(dut):
    width = int(dut.Width.value)
    seed = int(os.environ.get("SEED", "1"))
    stall = float(os.environ.get("STALL", "0.3"))
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    src = StreamSource(dut, "in", dut.clk_i, random_pauses(stall, seed))
    sink = StreamSink(dut, "out", dut.clk_i, random_pauses(stall, seed + 1))
    await reset(dut, dut.clk_i)
    rng = random.Random(seed)
    words = [rng.getrandbits(width) for _ in range(300)]
    src.send(words)
    await sink.wait_for(len(words), timeout_cycles=20 * len(words))
    assert sink.words == words
    assert src.empty()
