"""cocotb benches for the stream plumbing: bhpe_fork, bhpe_concat, bhpe_split, bhpe_dwc.

The pytest wrapper (tests/test_rtl_plumbing.py) builds the Python kind, compiles the RTL with the kind's
``rtl_params()`` and passes the kind's arguments here as JSON (``KIND``, ``KIND_ARGS``); every output integer
is compared with the kind's QONNX anchor (tests/anchors.py: Concat / Split / Identity executed by qonnx), which
the kind's ``execute`` must equal on every frame. Also holds the small helpers the SWG and pool benches import.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from binaryhpe.sim.streams import StreamSink, StreamSource, pack, random_pauses, reset, unpack

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tests/: the anchors
import anchors  # noqa: E402

# cycle-model tolerance: the models are meant to be cycle exact; 2 cycles + 2 % absorbs a model that is
# off by a register stage without hiding a wrong beat count (a missing row overhead would exceed it)
TOL_ABS, TOL_REL = 2, 0.02


# --------------------------------------------------------------------------------------------- helpers
def to_beats(x: np.ndarray, lanes: int, width: int) -> list[int]:
    """Raster order, channel (last axis) fastest, ``lanes`` elements a beat."""
    flat = np.asarray(x, dtype=np.int64).reshape(-1)
    return [pack(flat[i:i + lanes], width) for i in range(0, flat.size, lanes)]


def from_beats(words: list[int], lanes: int, width: int, signed: bool = True) -> np.ndarray:
    return np.array([v for w in words for v in unpack(w, lanes, width, signed)], dtype=np.int64)


def frames_for(shape, width: int, signed: bool, n_random: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random frames plus extreme ones: all max, all min, alternating max/min, all zero/-1 pattern."""
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    out = [rng.integers(lo, hi + 1, size=shape, dtype=np.int64) for _ in range(n_random)]
    alt = np.where(np.indices(shape).sum(axis=0) % 2 == 0, hi, lo).astype(np.int64)
    out += [np.full(shape, hi, dtype=np.int64), np.full(shape, lo, dtype=np.int64), alt]
    return out


class Monitor:
    """Records, on one shared cycle count, the cycle of every handshake of the named streams."""

    def __init__(self, dut, clk, prefixes):
        self.sig = {p: (getattr(dut, f"{p}_tvalid"), getattr(dut, f"{p}_tready")) for p in prefixes}
        self.fires = {p: [] for p in prefixes}
        self.clk = clk
        self.cycle = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await ReadOnly()
            for p, (v, r) in self.sig.items():
                if v.value == 1 and r.value == 1:
                    self.fires[p].append(self.cycle)
            await RisingEdge(self.clk)
            self.cycle += 1


def check_cycles(dut, name: str, measured: dict, predicted: dict) -> None:
    for key in ("ii", "latency"):
        m, p = measured[key], predicted[key]
        dut._log.info("%s %s: measured %d, model %d", name, key, m, p)
        assert abs(m - p) <= TOL_ABS + TOL_REL * p, f"{name} {key}: measured {m}, model {p}"


def anchored(kind, ins) -> list[np.ndarray]:
    """The expected outputs: the kind's QONNX anchor (tests/anchors.py); the kind's ``execute`` must equal it."""
    want = anchors.expect(kind, ins)
    got = kind.execute(list(ins))
    assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want)), \
        f"{type(kind).__name__} '{kind.name}': execute differs from the QONNX anchor"
    return want


def kind_from_env():
    import binaryhpe.compile.kinds.plumbing as plumbing
    import binaryhpe.compile.kinds.pool as pool
    import binaryhpe.compile.kinds.swg as swg

    cls_name = os.environ["KIND"]
    args = json.loads(os.environ["KIND_ARGS"])
    for mod in (plumbing, swg, pool):
        if hasattr(mod, cls_name):
            return getattr(mod, cls_name)(name="dut", **args)
    raise KeyError(cls_name)


async def start(dut):
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())


# --------------------------------------------------------------------------------------------- the test
def _streams(kind):
    """(input stream prefixes, output stream prefixes) of the kind's module."""
    name = type(kind).__name__
    if name == "Fork":
        return ["in"], ["a", "b"]
    if name == "Concat":
        return ["a", "b"], ["out"]
    if name == "Split":
        return ["in"], ["a", "b"]
    if name == "Dwc":
        return ["in"], ["out"]
    raise KeyError(name)


def _in_shapes(kind):
    name = type(kind).__name__
    if name == "Concat":
        return [(kind.h, kind.w, kind.c1), (kind.h, kind.w, kind.c2)]
    if name == "Split":
        return [(kind.h, kind.w, kind.c1 + kind.c2)]
    return [(kind.h, kind.w, kind.c)]


async def run_frames(dut, kind, stall: float, seed: int, n_random: int):
    ins_p, outs_p = _streams(kind)
    in_specs, out_specs = kind.in_streams(), kind.out_streams()
    pz = (lambda k: random_pauses(stall, seed + k)) if stall > 0 else (lambda k: None)
    srcs = [StreamSource(dut, p, dut.clk_i, pz(i)) for i, p in enumerate(ins_p)]
    sinks = [StreamSink(dut, p, dut.clk_i, pz(10 + i)) for i, p in enumerate(outs_p)]
    mon = Monitor(dut, dut.clk_i, ins_p + outs_p)
    await reset(dut, dut.clk_i)
    rng = np.random.default_rng(seed)
    shapes = _in_shapes(kind)
    per_shape = [frames_for(s, spec.width, spec.signed, n_random, rng) for s, spec in zip(shapes, in_specs)]
    frames = list(zip(*per_shape))
    expected = [[] for _ in outs_p]
    for fr in frames:
        for src, x, spec in zip(srcs, fr, in_specs):
            src.send(to_beats(x, spec.lanes, spec.width))
        for j, y in enumerate(anchored(kind, fr)):
            expected[j].append(y)
    for sink, exp, spec in zip(sinks, expected, out_specs):
        n = sum(e.size for e in exp) // spec.lanes
        await sink.wait_for(n, timeout_cycles=50 * n + 200)
    for _ in range(20):  # nothing extra may come out
        await RisingEdge(dut.clk_i)
    for sink, exp, spec, p in zip(sinks, expected, out_specs, outs_p):
        got = from_beats(sink.words, spec.lanes, spec.width, spec.signed)
        want = np.concatenate([e.reshape(-1) for e in exp])
        assert got.size == want.size, f"{p}: {got.size} elements, expected {want.size}"
        bad = np.nonzero(got != want)[0]
        assert bad.size == 0, f"{p}: first mismatch at element {bad[0]}: {got[bad[0]]} != {want[bad[0]]}"
    assert all(s.empty() for s in srcs)
    return mon, expected


@cocotb.test()
async def plumbing_exact_without_stalls_and_cycles(dut):
    kind = kind_from_env()
    await start(dut)
    mon, expected = await run_frames(dut, kind, 0.0, int(os.environ.get("SEED", "1")), n_random=2)
    ins_p, outs_p = _streams(kind)
    specs = kind.out_streams()
    per_frame = [expected[j][0].size // specs[j].lanes for j in range(len(outs_p))]
    outs = mon.fires[outs_p[0]]
    t0 = min(mon.fires[p][0] for p in ins_p)
    last0 = max(mon.fires[p][n - 1] for p, n in zip(outs_p, per_frame))
    measured = {"ii": outs[per_frame[0] * 3] - outs[per_frame[0] * 2], "latency": last0 - t0}
    check_cycles(dut, type(kind).__name__, measured, kind.cycles())


@cocotb.test()
async def plumbing_exact_with_random_stalls(dut):
    kind = kind_from_env()
    await start(dut)
    await run_frames(dut, kind, float(os.environ.get("STALL", "0.4")), int(os.environ.get("SEED", "1")) + 5,
                     n_random=3)
