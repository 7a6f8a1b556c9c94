"""cocotb bench for bhpe_fifo: every beat comes out once, in order, under random stalls (the expected words:
the QONNX anchor of a FIFO, an ONNX Identity, tests/anchors.py)."""

import os
import pathlib
import random
import sys

import cocotb
import numpy as np
from cocotb.clock import Clock

from binaryhpe.sim.streams import StreamSink, StreamSource, random_pauses, reset

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tests/: the anchors
import anchors  # noqa: E402


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
    (want,) = anchors.identity(np.array(words, dtype=np.int64))
    assert sink.words == want.tolist()
    assert src.empty()
