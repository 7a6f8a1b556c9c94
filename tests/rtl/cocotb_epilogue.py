"""cocotb bench for the fused epilogue (bhpe_epilogue).

The unit is rebuilt from the environment (``EPILOGUE`` = JSON ``{"name":.., "ops": [{"kind": name, "args":
{...}}, ..]}``, see tests/test_rtl_epilogue.py) and every output integer is compared with
the chain's QONNX anchor (tests/anchors.py, run by the exact reference), which ``Epilogue.execute`` (the
ops' own ``execute``, one after the other) must equal on every frame. Frames: random, all max, all min, mixed
extremes (values that saturate both ways, 0, +-1) and kind-specific boundaries (thresholds exactly, x = 0).
Two tests per build: no stalls (also measures the initiation interval and latency against ``cycles()``),
and random stalls on every stream (the chain input, the JoinAdd operand and the output independently), with
a protocol monitor (a held output beat stays stable; b is taken only while the unit has a beat to join it
with). With ``COVER=1`` the frames must drive every saturating op to both ends of its output range.
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

from binaryhpe.compile.kinds.elementwise import KINDS, JoinAdd, MultiThreshold, Requant, Sign, Threshold
from binaryhpe.compile.kinds.epilogue import Epilogue
from binaryhpe.sim.streams import StreamSink, StreamSource, pack, random_pauses, reset, unpack

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tests/: the anchors
import anchors  # noqa: E402


def _layer() -> Epilogue:
    spec = json.loads(os.environ["EPILOGUE"])
    ops = [KINDS[o["kind"]](**o["args"]) for o in spec["ops"]]
    return Epilogue(name=spec["name"], ops=ops, lut_mul=spec["lut_mul"])


def check_cover(layer: Epilogue, frames) -> None:
    """Every op that saturates (all but Sign, Threshold, MultiThreshold) reaches both ends of its output range
    (0 and the top for a Requant with ReLU) on ``frames``: each intermediate saturation is exercised."""
    seen = {i: set() for i in range(len(layer.ops))}
    for ins in frames:
        x = ins[0]
        for i, op in enumerate(layer.ops):
            x = op.execute([x, ins[1]] if isinstance(op, JoinAdd) else [x])[0]
            if isinstance(op, (Sign, Threshold, MultiThreshold)):
                continue
            lo = 0 if isinstance(op, Requant) and op.relu else -(1 << (op.out_w - 1))
            hi = (1 << (op.out_w - 1)) - 1
            seen[i] |= {v for v, hit in (("lo", (x == lo).any()), ("hi", (x == hi).any())) if hit}
    missing = [f"{layer.ops[i].name} ({type(layer.ops[i]).__name__}) {sorted({'lo', 'hi'} - s)}"
               for i, s in seen.items() if s != {"lo", "hi"}
               and not isinstance(layer.ops[i], (Sign, Threshold, MultiThreshold))]
    assert not missing, f"ops whose saturation the frames never reach: {missing}"


def _hw(layer) -> tuple[int, int]:
    h = int(os.environ.get("FRAME_H", "2"))
    return h, layer.pixels // h


def _rand(rng, bits, shape):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def _extremes(rng, bits, shape):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    pool = np.array(sorted({lo, lo + 1, -1, 0, 1, hi - 1, hi, hi // 2, lo // 2}), dtype=np.int64)
    pool = pool[(pool >= lo) & (pool <= hi)]
    return rng.choice(pool, size=shape)


def _frames(layer, rng) -> list[list[np.ndarray]]:
    """Input frames (one array per input stream)."""
    h, w = _hw(layer)
    shape = (h, w, layer.c)
    widths = [s.width for s in layer.in_streams()]
    full = lambda bits, v: np.full(shape, v, dtype=np.int64)  # noqa: E731
    lo = lambda bits: -(1 << (bits - 1))  # noqa: E731
    hi = lambda bits: (1 << (bits - 1)) - 1  # noqa: E731
    frames = [
        [_rand(rng, b, shape) for b in widths],
        [full(b, hi(b)) for b in widths],
        [full(b, lo(b)) for b in widths],
        [_extremes(rng, b, shape) for b in widths],
        [_rand(rng, b, shape) for b in widths],
        [_extremes(rng, b, shape) for b in widths],
        [full(b, 0) for b in widths],
    ]
    if len(widths) == 2:  # opposite extremes on the two inputs of a join
        frames.append([full(widths[0], hi(widths[0])), full(widths[1], lo(widths[1]))])
        frames.append([full(widths[0], lo(widths[0])), full(widths[1], hi(widths[1]))])
    last = layer.ops[-1]
    if len(layer.ops) == 1 and isinstance(last, Threshold):  # x exactly at the threshold and one either side
        t = last.thresholds.reshape(1, 1, -1)
        for d in (0, -1, 1):
            frames.append([np.broadcast_to(np.clip(t + d, lo(widths[0]), hi(widths[0])), shape).copy()])
        frames.append([np.clip(t + rng.integers(-2, 3, size=shape), lo(widths[0]), hi(widths[0]))])
    if len(layer.ops) == 1 and isinstance(last, MultiThreshold):  # x at a threshold, or one either side
        t = last.thresholds
        for d in (0, -1, 1):
            pick = rng.integers(0, t.shape[1], size=shape)
            x = t[np.arange(layer.c)[None, None, :], pick] + d
            frames.append([np.clip(x, lo(widths[0]), hi(widths[0]))])
    # small values around 0 (the Sign / Prelu boundary)
    frames.append([rng.integers(-2, 3, size=shape).clip(lo(b), hi(b)) for b in widths])
    frames += [[_rand(rng, b, shape) for b in widths] for _ in range(4)]
    return frames


def _beats(x: np.ndarray, lanes: int, width: int) -> list[int]:
    return [pack(row, width) for row in x.reshape(-1, lanes)]


class Bench:
    def __init__(self, dut, stall: float, seed: int):
        self.dut = dut
        self.layer = _layer()
        self.prefixes = ["in", "b"] if len(self.layer.in_streams()) == 2 else ["in"]
        cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
        pause = (lambda k: random_pauses(stall, seed + k)) if stall > 0 else (lambda k: None)
        self.srcs = [StreamSource(dut, p, dut.clk_i, pause(k)) for k, p in enumerate(self.prefixes)]
        self.sink = StreamSink(dut, "out", dut.clk_i, pause(7))
        self.in_cycles: list[int] = []
        self.out_cycles: list[int] = []
        self.errors: list[str] = []

    async def monitor(self):
        """Handshake times and protocol: a held output beat stays valid and stable; b is never taken ahead
        of the chain beats it joins (taken b beats <= taken input beats), never without a unit that has no
        JoinAdd taking it."""
        dut, cycle, held = self.dut, 0, None
        n_in = n_b = 0
        while True:
            await ReadOnly()
            fires = [int(getattr(dut, f"{p}_tvalid").value) & int(getattr(dut, f"{p}_tready").value)
                     for p in self.prefixes]
            if len(fires) == 1 and int(dut.b_tready.value):
                self.errors.append(f"cycle {cycle}: b_tready high in a unit without a JoinAdd")
            if fires[0]:
                self.in_cycles.append(cycle)
                n_in += 1
            if len(fires) == 2 and fires[1]:
                n_b += 1
                if n_b > n_in:
                    self.errors.append(f"cycle {cycle}: b beat {n_b} taken before input beat {n_b}")
            ov, ordy = int(dut.out_tvalid.value), int(dut.out_tready.value)
            od = int(dut.out_tdata.value) if ov else None
            if held is not None and (not ov or od != held):
                self.errors.append(f"cycle {cycle}: output beat changed or dropped while stalled")
            if ov and ordy:
                self.out_cycles.append(cycle)
            held = od if (ov and not ordy) else None
            await RisingEdge(dut.clk_i)
            cycle += 1

    async def run(self, frames):
        layer = self.layer
        if len(self.prefixes) == 1:
            self.dut.b_tvalid.value = 0
            self.dut.b_tdata.value = 0
        await reset(self.dut, self.dut.clk_i)
        cocotb.start_soon(self.monitor())
        out_spec = layer.out_streams()[0]
        expected = []
        for ins in frames:
            for k, (x, spec) in enumerate(zip(ins, layer.in_streams())):
                self.srcs[k].send(_beats(x, layer.lanes, spec.width))
            # expected: the chain as a QONNX graph (tests/anchors.py: Quant FLOOR / Mul / Add / PRelu /
            # BipolarQuant / MultiThreshold, exact float64 reference); the ops' own execute must equal it
            want = anchors.expect(layer, ins)[0]
            assert np.array_equal(layer.execute(ins)[0], want), f"{layer.name}: execute differs from the anchor"
            expected.append(want)
        n = len(frames) * layer.beats
        await self.sink.wait_for(n, timeout_cycles=20 * n + 100)
        for _ in range(10):  # nothing extra may come out
            await RisingEdge(self.dut.clk_i)
        assert len(self.sink.words) == n, f"{len(self.sink.words)} beats out, {n} expected"
        assert all(s.empty() for s in self.srcs)
        assert not self.errors, self.errors[:5]
        got = np.array([unpack(wd, layer.lanes, out_spec.width, out_spec.signed) for wd in self.sink.words],
                       dtype=np.int64).reshape(len(frames), *expected[0].shape)
        for f, (g, e) in enumerate(zip(got, expected)):
            if not np.array_equal(g, e):
                bad = np.argwhere(g != e)[:5]
                detail = [(tuple(int(j) for j in i), [int(a[tuple(i)]) for a in frames[f]],
                           int(g[tuple(i)]), int(e[tuple(i)])) for i in bad]
                raise AssertionError(f"frame {f}: (h, w, c), inputs, got, expected: {detail}")


@cocotb.test()
async def full_rate_bit_exact_and_cycles(dut):
    seed = int(os.environ.get("SEED", "1"))
    bench = Bench(dut, 0.0, seed)
    frames = _frames(bench.layer, np.random.default_rng(seed))
    if os.environ.get("COVER") == "1":
        check_cover(bench.layer, frames)
    await bench.run(frames)
    # cycle model: with no stalls the measured numbers must equal cycles() exactly (tolerance 0): the
    # pipeline has a fixed latency (its registered stages) and no bubbles, so any deviation is a bug, not noise
    model, beats = bench.layer.cycles(), bench.layer.beats
    firsts = [bench.out_cycles[k * beats] for k in range(len(frames))]
    iis = {b - a for a, b in zip(firsts, firsts[1:])}
    latency = bench.out_cycles[beats - 1] - bench.in_cycles[0]
    dut._log.info("measured ii %s latency %d; model %s", sorted(iis), latency, model)
    assert iis == {model["ii"]}, f"ii {iis} != model {model['ii']}"
    assert latency == model["latency"], f"latency {latency} != model {model['latency']}"


@cocotb.test()
async def random_stalls_bit_exact(dut):
    seed = int(os.environ.get("SEED", "1")) + 100
    bench = Bench(dut, float(os.environ.get("STALL", "0.4")), seed)
    await bench.run(_frames(bench.layer, np.random.default_rng(seed)))
