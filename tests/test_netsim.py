"""Whole-network RTL simulation of the default tiny BiDRN: every output integer equals the integer reference
(itself equal to execute_onnx and Brevitas), with and without random stalls; cycles agree with the model; a
too-shallow FIFO is a failure, not a hang."""

import numpy as np
import pytest

from binaryhpe import BinaryHPEError
from binaryhpe.compile.flow import predicted_cycles, step_lower, step_rtl
from binaryhpe.compile.kinds.plumbing import Fifo
from binaryhpe.compile.reference import compare_with_onnx, hw_input, onnx_context
from binaryhpe.compile.rtlgen import generate
from binaryhpe.sim import netsim


@pytest.fixture(scope="module")
def tiny_design(tiny_qonnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_rtl")
    g, mw = step_lower(tiny_qonnx)
    rtl = step_rtl(g, out)
    exe = netsim.build(rtl, sorted((rtl / "lib").glob("*.sv")), verbose=False)
    rng = np.random.default_rng(7)
    shape = (1, 3, 16, 16)
    xs = [rng.uniform(-1, 1, shape).astype(np.float32) for _ in range(2)]
    xs += [np.ones(shape, np.float32), -np.ones(shape, np.float32), np.full(shape, 5.0, np.float32)]
    frames = [hw_input(g, onnx_context(mw, x)) for x in xs]
    return g, mw, rtl, exe, xs, frames


@pytest.mark.parametrize("stall", [0.0, 0.25, 0.6])
def test_tiny_bidrn_rtl_is_bit_exact(tiny_design, stall):
    g, mw, rtl, exe, xs, frames = tiny_design
    r = netsim.simulate(g, exe, rtl, frames, stall_in=stall, stall_out=stall, seed=11)
    for x, fr, out in zip(xs, frames, r["outputs"]):
        ref = g.execute(fr)[g.output]
        assert out.shape == ref.shape
        assert np.array_equal(out, ref), f"{np.count_nonzero(out != ref)} integers differ (stall {stall})"
        # and the same integers are what qonnx's execute_onnx computes for the QONNX file
        onnx_out = onnx_context(mw, x)[mw.graph.output[0].name]
        assert np.array_equal(g.tensors[g.output].fmt.to_real(out), onnx_out[0].transpose(1, 2, 0))


def test_tiny_bidrn_cycles_match_the_model(tiny_design):
    g, mw, rtl, exe, xs, frames = tiny_design
    r = netsim.simulate(g, exe, rtl, frames)
    pred = predicted_cycles(g)
    # steady-state frame interval: the slowest layer's ii, exactly (no stalls, deep enough FIFOs)
    assert r["ii_cycles"] == pred["ii"]
    # latency: the streaming estimate is within 25% (see docs/architecture.md for where it differs)
    assert abs(r["latency_cycles"] - pred["latency"]) <= 0.25 * r["latency_cycles"]


def test_reference_matches_qonnx_on_every_tensor(tiny_design):
    g, mw, rtl, exe, xs, frames = tiny_design
    r = compare_with_onnx(g, mw, xs[0])
    assert r["first_mismatch"] is None and r["output_exact"]


def test_too_shallow_fifo_is_a_deadlock_failure(tiny_qonnx, tmp_path):
    g, mw = step_lower(tiny_qonnx)
    deepest = max((lay for lay in g.layers if isinstance(lay, Fifo)), key=lambda f: f.depth)
    assert deepest.depth > 16
    deepest.depth = 2
    rtl = tmp_path / "rtl"
    generate(g, rtl)
    from binaryhpe.compile.rtlgen import rtl_library

    exe = netsim.build(rtl, rtl_library(), verbose=False)
    x = np.zeros((1, 3, 16, 16), np.float32)
    with pytest.raises(BinaryHPEError, match="deadlock"):
        netsim.simulate(g, exe, rtl, [hw_input(g, onnx_context(mw, x))], timeout=20000)


def test_streamed_weights_whole_network(tiny_qonnx, tmp_path):
    """Three MVUs with their weights on weight-stream ports (192-, 64- and 32-bit words: every width class of
    Verilator's C++), the harness playing the DMA: bit-exact with and without stalls on every stream, the
    model's frame interval, and exactly the words a frame needs, on every port."""
    g, mw = step_lower(tiny_qonnx)
    picked = ["/stem/conv_hw/Conv", "/blocks/blocks.0/convs.0/branches.0/conv_hw/Conv",
              "/blocks/blocks.1/br/conv_hw/Conv"]
    for name in picked:
        g.layer(name).weight_source = "stream"
    assert sorted(g.layer(n).wstream_port_bits for n in picked) == [32, 64, 192]
    rtl = step_rtl(g, tmp_path)
    assert "w_" in (rtl / "bhpe_top.sv").read_text()
    exe = netsim.build(rtl, sorted((rtl / "lib").glob("*.sv")), verbose=False)
    rng = np.random.default_rng(3)
    shape = (1, 3, 16, 16)
    xs = [rng.uniform(-1, 1, shape).astype(np.float32) for _ in range(2)]
    xs += [np.ones(shape, np.float32), np.full(shape, 5.0, np.float32)]
    frames = [hw_input(g, onnx_context(mw, x)) for x in xs]
    refs = [g.execute(f)[g.output] for f in frames]
    for stall in (0.0, 0.3):
        r = netsim.simulate(g, exe, rtl, frames, stall_in=stall, stall_out=stall, seed=5)
        for out, ref in zip(r["outputs"], refs):
            assert np.array_equal(out, ref), f"{np.count_nonzero(out != ref)} integers differ (stall {stall})"
        assert r["weight_words"] == [g.layer(n).wstream_words_per_frame * len(frames) for n in picked]
        if stall == 0.0:
            assert r["ii_cycles"] == predicted_cycles(g)["ii"]
