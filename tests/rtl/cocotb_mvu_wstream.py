"""cocotb bench for bhpe_mvu_wstream (matrix-vector unit with streamed weights).

The layer (kind, folding, weights, pixels per frame) comes from the .npz named by MVU_SPEC, written by
tests/test_rtl_mvu_wstream.py, with ``weight_source = "stream"``. Expected outputs come from the layer's QONNX
anchor (tests/anchors.py), which the kind's ``execute`` must equal on every frame; the weight-stream beats
are the kind's ``wstream_frame_words()`` once per frame (the order a DMA replays). Input frames (random and
extreme) and the {mask, data} input proxy are those of cocotb_mvu.
"""

import os
import pathlib
import sys

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb_mvu import _InPort, in_words, make_frames, out_values

from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
from binaryhpe.sim.streams import StreamSink, StreamSource, random_pauses, reset

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tests/: the anchors
import anchors  # noqa: E402

# Cycle-model tolerance: without stalls the unit does one step a cycle (or one per weight beat when the
# weight stream is slower), so the model is expected to be cycle-exact; 1% (+1 cycle) absorbs
# handshake-counting conventions only.
CYCLE_TOL = 0.01


def load_layer():
    spec = np.load(os.environ["MVU_SPEC"])
    kind = str(spec["kind"])
    common = dict(name="dut", n=int(spec["n"]), cout=int(spec["cout"]), pe=int(spec["pe"]), simd=int(spec["simd"]),
                  weights=spec["weights"], pixels=int(spec["oh"]) * int(spec["ow"]), weight_source="stream")
    if kind == "xnor":
        layer = XnorMvu(**common)
    else:
        layer = FxpMvu(in_w=int(spec["in_w"]), w_w=int(spec["w_w"]), **common)
    return layer, int(spec["oh"]), int(spec["ow"])


class ThrottledSource:
    """An AXI-Stream source that offers at most one beat every ``period`` cycles: after each accepted beat
    it stays idle ``period - 1`` cycles; a beat once offered stays valid until it is accepted."""

    def __init__(self, dut, prefix: str, clk, period: int):
        self.data = getattr(dut, f"{prefix}_tdata")
        self.valid = getattr(dut, f"{prefix}_tvalid")
        self.ready = getattr(dut, f"{prefix}_tready")
        self.clk, self.period = clk, period
        self.queue: list[int] = []
        self.sent = 0
        self.valid.value = 0
        self.data.value = 0
        cocotb.start_soon(self._run())

    def send(self, words) -> None:
        self.queue.extend(int(w) for w in words)

    def empty(self) -> bool:
        return not self.queue

    async def _run(self) -> None:
        wait = 0
        while True:
            if self.queue and wait == 0:
                self.data.value = self.queue[0]
                self.valid.value = 1
            else:
                self.valid.value = 0
            await ReadOnly()
            fire = self.valid.value == 1 and self.ready.value == 1
            await RisingEdge(self.clk)
            if fire:
                self.queue.pop(0)
                self.sent += 1
                wait = self.period - 1
            elif wait:
                wait -= 1


async def run_frames(dut, stall: float, seed: int, w_period: int = 1):
    """Frames through the unit. ``stall``: random pauses on the input, the weight stream and the output
    (independent seeds); ``w_period`` > 1: the weight stream gives one beat every ``w_period`` cycles (no
    other stalls) and the cycles are checked against the model at ``wstream_rate = 1/w_period``."""
    layer, oh, ow = load_layer()
    assert int(dut.AccW.value) == layer.acc_w
    assert len(dut.w_tdata) == layer.wstream_word_bits
    layer.wstream_rate = 1.0 / w_period
    rng = np.random.default_rng(seed)
    frames = make_frames(layer, oh, ow, rng)

    clk = dut.clk_i
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    words, data_bits, expected = [], 0, []
    for win, msk in frames:
        w, data_bits = in_words(layer, win, msk)
        words += w
        want = anchors.expect(layer, [win, msk])[0]
        assert np.array_equal(layer.execute([win, msk])[0], want), f"{layer.name}: execute differs from the anchor"
        expected.append(want.reshape(-1))
    wwords = layer.wstream_frame_words() * len(frames)
    assert len(wwords) == layer.wstream_words_per_frame * len(frames)
    src = StreamSource(_InPort(dut, data_bits), "in", clk, random_pauses(stall, seed) if stall else None)
    if w_period > 1:
        wsrc = ThrottledSource(dut, "w", clk, w_period)
    else:
        wsrc = StreamSource(dut, "w", clk, random_pauses(stall, seed + 2) if stall else None)
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
    wsrc.send(wwords)
    beats_per_frame = layer.pixels * layer.nf
    n_out = beats_per_frame * len(frames)
    ii = layer.cycles()["ii"]
    slow = 1 + 8 * stall
    await sink.wait_for(n_out, timeout_cycles=int((ii * len(frames) + 100) * slow) + 200)
    for _ in range(5 * layer.sf * w_period + 20):  # nothing extra may come out
        await RisingEdge(clk)
    assert len(sink.words) == n_out, f"{len(sink.words)} output beats, expected {n_out}"
    assert src.empty() and src.sent == len(words)
    assert wsrc.empty() and wsrc.sent == len(wwords), f"{wsrc.sent} of {len(wwords)} weight beats taken"

    got = out_values(layer, sink.words).reshape(len(frames), -1)
    for f, exp in enumerate(expected):
        bad = np.flatnonzero(got[f] != exp)
        assert bad.size == 0, (f"frame {f}: {bad.size} mismatches, first at {bad[0]}: "
                               f"got {got[f][bad[0]]}, expected {exp[bad[0]]}")
    reach = max(int(np.abs(e).max()) for e in expected)
    dut._log.info(f"outputs bit-exact over {len(frames)} frames; max |acc| = {reach}")

    if not stall:
        pred = layer.cycles()
        firsts = [out_cycles[f * beats_per_frame] for f in range(len(frames))]
        iis = np.diff(firsts)
        lat = out_cycles[beats_per_frame - 1] - in_cycles[0] + 1
        dut._log.info(f"weight beat every {w_period} cycles: ii measured {sorted(set(iis.tolist()))} predicted "
                      f"{pred['ii']}; latency measured {lat} predicted {pred['latency']}")
        for m in iis:
            assert abs(m - pred["ii"]) <= CYCLE_TOL * pred["ii"] + 1, (m, pred)
        assert abs(lat - pred["latency"]) <= CYCLE_TOL * pred["latency"] + 1, (lat, pred)
        if w_period > 1:  # really bandwidth bound: w_period times the compute-bound interval
            assert pred["ii"] == w_period * layer.wstream_words_per_frame


@cocotb.test()
async def wstream_no_stalls_bit_exact_and_cycles(dut):
    await run_frames(dut, 0.0, int(os.environ.get("SEED", "1")))


@cocotb.test()
async def wstream_random_stalls_on_all_streams_bit_exact(dut):
    await run_frames(dut, float(os.environ.get("STALL", "0.4")), int(os.environ.get("SEED", "1")) + 100)


@cocotb.test()
async def wstream_slow_weight_stream_bandwidth_bound(dut):
    await run_frames(dut, 0.0, int(os.environ.get("SEED", "1")) + 200, int(os.environ.get("W_PERIOD", "3")))


# --- a generated top level with a streamed MVU: its w_<layer> port fed from the manifest's image ----------


class _TopWeightPort:
    """The top level's ``w_<layer>_t*`` signals under the names StreamSource expects."""

    def __init__(self, dut, port):
        self.w_tdata = getattr(dut, f"{port}_tdata")
        self.w_tvalid = getattr(dut, f"{port}_tvalid")
        self.w_tready = getattr(dut, f"{port}_tready")


async def run_top(dut, stall: float, seed: int, w_period: int = 1):
    """TOP_SPEC: input beats and expected output beats a frame (from the graph's ``execute``), the generated
    RTL folder (manifest + weight images) and the predicted frame interval at this weight-stream period."""
    import json
    import pathlib

    spec = np.load(os.environ["TOP_SPEC"])
    rtl = pathlib.Path(str(spec["rtl"]))
    manifest = json.loads((rtl / "manifest.json").read_text())
    (ws,) = manifest["weight_streams"]
    image = (rtl / ws["image"]).read_bytes()
    nb = ws["port_bits"] // 8
    matrix = [int.from_bytes(image[i:i + nb], "little") for i in range(0, len(image), nb)]
    assert len(matrix) == ws["words_per_pixel"]
    in_frames = [list(map(int, f)) for f in spec["in_beats"]]
    exp = [list(map(int, f)) for f in spec["out_beats"]]
    frames = len(in_frames)

    clk = dut.clk_i
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    src = StreamSource(dut, "in", clk, random_pauses(stall, seed) if stall else None)
    wport = _TopWeightPort(dut, ws["port"])
    if w_period > 1:
        wsrc = ThrottledSource(wport, "w", clk, w_period)
    else:
        wsrc = StreamSource(wport, "w", clk, random_pauses(stall, seed + 2) if stall else None)
    sink = StreamSink(dut, "out", clk, random_pauses(stall, seed + 1) if stall else None)
    await reset(dut, clk)
    for f in in_frames:
        src.send(f)
    # what a DMA does: replay the matrix image once per output pixel (padding bits set, they are ignored)
    pad = ((1 << ws["port_bits"]) - 1) ^ ((1 << ws["word_bits"]) - 1)
    wsrc.send([w | pad for w in matrix] * ws["pixels"] * frames)
    per = len(exp[0])
    await sink.wait_for(per * frames, timeout_cycles=int(int(spec["ii"]) * frames * (1 + 8 * stall)) + 2000)
    for _ in range(50):
        await RisingEdge(clk)
    assert len(sink.words) == per * frames
    assert wsrc.empty() and wsrc.sent == ws["words_per_frame"] * frames
    for f in range(frames):
        got = sink.words[f * per:(f + 1) * per]
        bad = [i for i, (a, b) in enumerate(zip(got, exp[f])) if a != b]
        assert not bad, f"frame {f}: {len(bad)} output beats differ, first {bad[0]}: {got[bad[0]]:#x} vs {exp[f][bad[0]]:#x}"
    if not stall:
        last = [sink.cycles[(f + 1) * per - 1] for f in range(frames)]
        iis = np.diff(last)
        dut._log.info(f"top level, weight beat every {w_period} cycles: frame interval measured "
                      f"{sorted(set(iis.tolist()))}, predicted {int(spec['ii'])}")
        for m in iis[1:]:  # steady state (the first frame also fills the window generator)
            assert abs(m - int(spec["ii"])) <= CYCLE_TOL * int(spec["ii"]) + 1, (m, int(spec["ii"]))
    dut._log.info(f"top level bit-exact over {frames} frames (stall {stall}, weight period {w_period})")


@cocotb.test()
async def top_random_stalls_bit_exact(dut):
    await run_top(dut, float(os.environ.get("STALL", "0.4")), int(os.environ.get("SEED", "1")))


@cocotb.test()
async def top_slow_weight_stream(dut):
    await run_top(dut, 0.0, int(os.environ.get("SEED", "1")) + 300, int(os.environ.get("W_PERIOD", "3")))
