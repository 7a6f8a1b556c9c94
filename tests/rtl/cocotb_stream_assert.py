"""Drive bhpe_stream_assert with a legal random stream, with one break of the protocol in the middle
(SCENARIO = legal | drop_valid | change_data)."""

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge


@cocotb.test()
async def stream(dut):
    scenario = os.environ["SCENARIO"]
    rng = random.Random(7)
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    # in reset the checker is off: a valid that comes and goes there is no error
    dut.rst_ni.value = 0
    dut.tready_i.value = 0
    dut.tdata_i.value = 0
    for v in (1, 0, 1, 0):
        dut.tvalid_i.value = v
        await RisingEdge(dut.clk_i)
    dut.rst_ni.value = 1

    valid, data, taken = 0, 0, True

    async def cycle(ready: bool) -> None:
        nonlocal taken
        dut.tvalid_i.value = valid
        dut.tdata_i.value = data
        dut.tready_i.value = int(ready)
        taken = bool(valid and ready)
        await RisingEdge(dut.clk_i)

    for _ in range(100):  # legal: a new beat (or a gap) only once the previous beat was taken
        if not valid or taken:
            valid, data = int(rng.random() < 0.7), rng.randrange(256)
        await cycle(rng.random() < 0.5)
    if valid and not taken:
        await cycle(True)  # the pending random beat is taken first
    valid, data = 1, 0x5A  # a beat that has to wait: tready low
    await cycle(False)
    if scenario == "drop_valid":
        valid = 0           # the beat vanishes before tready took it
    elif scenario == "change_data":
        data = 0xA5         # the waiting beat changes
    else:
        assert scenario == "legal", scenario
    await cycle(True)
    for _ in range(20):
        valid = 0
        await cycle(True)
