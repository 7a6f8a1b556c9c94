"""cocotb stream drivers for the valid/ready (AXI-Stream semantics) interfaces of hw/rtl.

A stream beat carries ``lanes`` elements of ``width`` bits, lane 0 in the least significant bits.
Signals are ``<prefix>_tdata``, ``<prefix>_tvalid``, ``<prefix>_tready``. Stalls come from a pause
generator: one bool per clock, True meaning "idle this cycle" (source) or "not ready" (sink).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge


def pack(values: Iterable[int], width: int) -> int:
    """Pack signed or unsigned integers into one word, element 0 in the LSBs (two's complement)."""
    word, mask = 0, (1 << width) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * width)
    return word


def unpack(word: int, lanes: int, width: int, signed: bool = True) -> list[int]:
    """Inverse of :func:`pack`."""
    mask, out = (1 << width) - 1, []
    for i in range(lanes):
        v = (word >> (i * width)) & mask
        if signed and width > 0 and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def random_pauses(prob: float, seed: int) -> Iterator[bool]:
    """Pause with probability ``prob`` each cycle (0 gives no stalls)."""
    rng = random.Random(seed)
    while True:
        yield rng.random() < prob


class StreamSource:
    """Drives beats onto ``<prefix>_tdata/_tvalid``, honouring ``_tready`` and a pause generator: a pause
    delays the next beat, never withdraws one already offered (the modules' stream checkers would fail)."""

    def __init__(self, dut, prefix: str, clk, pauses: Iterator[bool] | None = None):
        self.data = getattr(dut, f"{prefix}_tdata")
        self.valid = getattr(dut, f"{prefix}_tvalid")
        self.ready = getattr(dut, f"{prefix}_tready")
        self.clk = clk
        self.pauses = pauses
        self.queue: list[int] = []
        self.sent = 0
        self.valid.value = 0
        self.data.value = 0
        self._task = cocotb.start_soon(self._run())

    def send(self, words: Iterable[int]) -> None:
        self.queue.extend(int(w) for w in words)

    def empty(self) -> bool:
        return not self.queue

    async def _run(self) -> None:
        offered = False  # AXI-Stream: a beat once offered stays valid (and unchanged) until it is taken
        while True:
            idle = next(self.pauses) if self.pauses is not None else False
            if self.queue and (offered or not idle):
                self.data.value = self.queue[0]
                self.valid.value = 1
                offered = True
            else:
                self.valid.value = 0
            # sample the handshake once everything has settled before the clock edge
            await ReadOnly()
            fire = self.valid.value == 1 and self.ready.value == 1
            await RisingEdge(self.clk)
            if fire:
                self.queue.pop(0)
                self.sent += 1
                offered = False


class StreamSink:
    """Accepts beats from ``<prefix>_tdata/_tvalid``, driving ``_tready`` from a pause generator."""

    def __init__(self, dut, prefix: str, clk, pauses: Iterator[bool] | None = None):
        self.data = getattr(dut, f"{prefix}_tdata")
        self.valid = getattr(dut, f"{prefix}_tvalid")
        self.ready = getattr(dut, f"{prefix}_tready")
        self.clk = clk
        self.pauses = pauses
        self.words: list[int] = []
        self.cycles: list[int] = []  # clock index of every accepted beat
        self.ready.value = 0
        self._cycle = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self) -> None:
        while True:
            stall = next(self.pauses) if self.pauses is not None else False
            self.ready.value = 0 if stall else 1
            await ReadOnly()
            if self.valid.value == 1 and self.ready.value == 1:
                self.words.append(int(self.data.value))
                self.cycles.append(self._cycle)
            await RisingEdge(self.clk)
            self._cycle += 1

    async def wait_for(self, n: int, timeout_cycles: int) -> None:
        """Wait until ``n`` beats arrived; fail (not hang) after ``timeout_cycles`` clocks."""
        for _ in range(timeout_cycles):
            if len(self.words) >= n:
                return
            await RisingEdge(self.clk)
        raise AssertionError(
            f"timeout: {len(self.words)} of {n} beats after {timeout_cycles} cycles (deadlock or dropped beats)"
        )


async def reset(dut, clk, cycles: int = 3) -> None:
    """Active-low synchronous reset ``rst_ni``."""
    dut.rst_ni.value = 0
    for _ in range(cycles):
        await RisingEdge(clk)
    dut.rst_ni.value = 1
    await RisingEdge(clk)
