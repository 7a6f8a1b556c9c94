"""cocotb bench for bhpe_xnor_mvu and bhpe_fxp_mvu.

The layer (kind, folding, weights, pixels per frame) comes from the .npz named by MVU_SPEC, written by
tests/test_rtl_mvu.py; the expected outputs come from the layer's QONNX anchor (tests/anchors.py: BipolarQuant /
Quant + MatMul, run by the exact float64 reference), and the kind's ``execute`` must equal it on every frame.
``in_tmask`` travels with ``in_tdata`` in the same beat: the source drives a proxy whose word is ``{mask, data}``.
"""

import os
import pathlib
import sys


import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
from binaryhpe.sim.streams import StreamSink, StreamSource, pack, random_pauses, reset, unpack

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tests/: the anchors
import anchors  # noqa: E402

# Cycle-model tolerance: without stalls the unit does one weight-matrix step a cycle, so the model is
# expected to be cycle-exact; we allow 1% (+1 cycle) to absorb handshake-counting conventions only.
CYCLE_TOL = 0.01


def load_layer():
    spec = np.load(os.environ["MVU_SPEC"])
    kind = str(spec["kind"])
    common = dict(name="dut", n=int(spec["n"]), cout=int(spec["cout"]), pe=int(spec["pe"]), simd=int(spec["simd"]),
                  weights=spec["weights"], pixels=int(spec["oh"]) * int(spec["ow"]))
    if kind == "xnor":
        layer = XnorMvu(**common)
    else:
        layer = FxpMvu(in_w=int(spec["in_w"]), w_w=int(spec["w_w"]), **common)
    return layer, int(spec["oh"]), int(spec["ow"])


class _MaskedData:
    """Looks like one tdata handle; writes the low bits to in_tdata and the high Simd bits to in_tmask."""

    def __init__(self, data, mask, data_bits):
        self._data, self._mask, self._bits = data, mask, data_bits

    @property
    def value(self):
        return self._data.value

    @value.setter
    def value(self, v):
        v = int(v)
        self._data.value = v & ((1 << self._bits) - 1)
        self._mask.value = v >> self._bits


class _InPort:
    def __init__(self, dut, data_bits):
        self.in_tdata = _MaskedData(dut.in_tdata, dut.in_tmask, data_bits)
        self.in_tvalid = dut.in_tvalid
        self.in_tready = dut.in_tready


def make_frames(layer, oh, ow, rng: np.random.Generator):
    """Random frames and the extreme ones: (windows, mask) pairs of shape (oh, ow, n)."""
    shape = (oh, ow, layer.n)
    ones, zeros = np.ones(shape, np.int64), np.zeros(shape, np.int64)
    frames = []
    if isinstance(layer, XnorMvu):
        frames.append((rng.integers(0, 2, shape), rng.integers(0, 2, shape)))
        frames.append((rng.integers(0, 2, shape), (rng.random(shape) < 0.9).astype(np.int64)))
        frames.append((ones, ones))          # all +1
        frames.append((zeros, ones))         # all -1
        frames.append((rng.integers(0, 2, shape), zeros))  # all taps padding
        # pixel i equals (or is the complement of) the weight row of channel i % cout: acc = +-N there
        match = np.stack([(layer.weights[i % layer.cout] > 0).astype(np.int64) for i in range(oh * ow)])
        match = match.reshape(shape)
        match[1::2] ^= 1
        frames.append((match, ones))
    else:
        lo, hi = -(1 << (layer.in_w - 1)), (1 << (layer.in_w - 1)) - 1
        frames.append((rng.integers(lo, hi + 1, shape), ones))
        m = (rng.random(shape) < 0.8).astype(np.int64)
        frames.append((rng.integers(lo, hi + 1, shape) * m, m))  # padding taps arrive with data 0
        frames.append((np.full(shape, lo), ones))   # most negative: largest acc with the all-min weight row
        frames.append((np.full(shape, hi), ones))   # most positive
        frames.append((rng.integers(lo, hi + 1, shape), zeros))  # all taps masked (data not 0: must be gated)
        frames.append((np.where(rng.random(shape) < 0.5, lo, hi), ones))
    return frames


def in_words(layer, windows, mask):
    w = 1 if isinstance(layer, XnorMvu) else layer.in_w
    simd, data_bits = layer.simd, layer.simd * w
    words = []
    for vec, msk in zip(windows.reshape(-1, layer.n), mask.reshape(-1, layer.n)):
        for sf in range(layer.sf):
            sl = slice(sf * simd, (sf + 1) * simd)
            words.append(pack(vec[sl], w) | (pack(msk[sl], 1) << data_bits))
    return words, data_bits


def out_values(layer, words):
    vals = [v for word in words for v in unpack(word, layer.pe, layer.acc_w, signed=True)]
    return np.array(vals, dtype=np.int64)


async def run_frames(dut, stall: float, seed: int):
    layer, oh, ow = load_layer()
    assert int(dut.AccW.value) == layer.acc_w
    rng = np.random.default_rng(seed)
    frames = make_frames(layer, oh, ow, rng)

    clk = dut.clk_i
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    words, data_bits = [], 0
    expected = []
    for win, msk in frames:
        w, data_bits = in_words(layer, win, msk)
        words += w
        want = anchors.expect(layer, [win, msk])[0]
        assert np.array_equal(layer.execute([win, msk])[0], want), f"{layer.name}: execute differs from the anchor"
        expected.append(want.reshape(-1))
    src = StreamSource(_InPort(dut, data_bits), "in", clk, random_pauses(stall, seed) if stall else None)
    sink = StreamSink(dut, "out", clk, random_pauses(stall, seed + 1) if stall else None)

    in_cycles: list[int] = []
    out_cycles: list[int] = []

    async def monitor():
        cyc = 0
        while True:
            await ReadOnly()
            if dut.in_tvalid.value == 1 and dut.in_tready.value == 1:
                in_cycles.append(cyc)
            if dut.out_tvalid.value == 1 and dut.out_tready.value == 1:
                out_cycles.append(cyc)
            await RisingEdge(clk)
            cyc += 1

    await reset(dut, clk)
    cocotb.start_soon(monitor())
    src.send(words)
    beats_per_frame = layer.pixels * layer.nf
    n_out = beats_per_frame * len(frames)
    ii = layer.cycles()["ii"]
    await sink.wait_for(n_out, timeout_cycles=int((ii * len(frames) + 100) * (1 + 8 * stall)) + 200)
    for _ in range(5 * layer.sf + 20):  # nothing extra may come out
        await RisingEdge(clk)
    assert len(sink.words) == n_out, f"{len(sink.words)} output beats, expected {n_out}"
    assert src.empty() and src.sent == len(words)

    got = out_values(layer, sink.words).reshape(len(frames), -1)
    for f, exp in enumerate(expected):
        bad = np.flatnonzero(got[f] != exp)
        assert bad.size == 0, (f"frame {f}: {bad.size} mismatches, first at {bad[0]}: "
                               f"got {got[f][bad[0]]}, expected {exp[bad[0]]}")
    # the extreme frames really reached the accumulator's extreme values
    reach = max(int(np.abs(e).max()) for e in expected)
    dut._log.info(f"outputs bit-exact over {len(frames)} frames; max |acc| = {reach}")

    if not stall:
        pred = layer.cycles()
        firsts = [out_cycles[f * beats_per_frame] for f in range(len(frames))]
        iis = np.diff(firsts)
        lat = out_cycles[beats_per_frame - 1] - in_cycles[0] + 1
        dut._log.info(f"ii measured {sorted(set(iis.tolist()))} predicted {pred['ii']}; "
                      f"latency measured {lat} predicted {pred['latency']}")
        for m in iis:
            assert abs(m - pred["ii"]) <= CYCLE_TOL * pred["ii"] + 1, (m, pred)
        assert abs(lat - pred["latency"]) <= CYCLE_TOL * pred["latency"] + 1, (lat, pred)


@cocotb.test()
async def mvu_no_stalls_bit_exact_and_cycles(dut):
    await run_frames(dut, 0.0, int(os.environ.get("SEED", "1")))


@cocotb.test()
async def mvu_random_stalls_bit_exact(dut):
    await run_frames(dut, float(os.environ.get("STALL", "0.4")), int(os.environ.get("SEED", "1")) + 100)
