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
    # every register starting at 0 here; the bit-exact runs above start from random state (rand_reset 2)
    r = netsim.simulate(g, exe, rtl, frames, rand_reset=0)
    assert r["rand_reset"] == 0
    pred = predicted_cycles(g)
    # steady-state frame interval: the slowest layer's ii, exactly (no stalls, deep enough FIFOs)
    assert r["ii_cycles"] == pred["ii"]
    # latency: the streaming estimate is within 25% (see docs/architecture.md for where it differs)
    assert abs(r["latency_cycles"] - pred["latency"]) <= 0.25 * r["latency_cycles"]


def test_random_initial_state_is_the_default(tiny_design):
    # the build uses --x-initial unique; simulate() asks for random reset values unless told otherwise, seeded:
    # two seeds, two different random starts, the same integers out
    g, mw, rtl, exe, xs, frames = tiny_design
    refs = [g.execute(f)[g.output] for f in frames[:2]]
    for seed in (21, 22):
        r = netsim.simulate(g, exe, rtl, frames[:2], seed=seed)
        assert r["rand_reset"] == 2
        assert all(np.array_equal(o, ref) for o, ref in zip(r["outputs"], refs))


def test_whole_network_build_checks_the_stream_assertions(tiny_design):
    # built with --assert, the checkers' messages are compiled into the model (without it Verilator drops them)
    g, mw, rtl, exe, xs, frames = tiny_design
    cpp = "".join(p.read_text(errors="ignore") for p in exe.parent.glob("Vbhpe_top*.cpp"))
    assert "tvalid dropped before tready" in cpp and "tdata changed while the beat waited" in cpp


def _run_harness(g, exe, rtl, frames, declared_frames: int, drain: int):
    """The harness run by hand on ``frames``' beats declared as ``declared_frames`` frames."""
    import subprocess

    words = [w for f in frames for w in netsim._beats(g, g.input, f)]
    outs = g.tensors[g.output]
    out_beats = int(np.prod(outs.shape)) // outs.lanes
    (rtl / "bad_in.hex").write_text("".join(f"{w:x}\n" for w in words))
    cmd = [str(exe), "bad_in.hex", "bad_out.txt", str(declared_frames), str(len(words) // declared_frames),
           str(out_beats), "0", "0", "1", "200000", str(drain)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=rtl)


def test_harness_fails_on_input_left_over_and_on_extra_output(tiny_design):
    """Eight frames of input declared as one frame of eight times the beats: the design emits one frame's
    outputs long before it could have taken them all (its latency is a few frame intervals, its buffers hold
    far less than seven frames). Stopping there (DRAIN 0), input beats are left: exit 4. Running on for one
    frame's cycles (DRAIN -1), the design computes the second frame and its beats are extra: exit 5. The
    same beats declared as eight frames pass."""
    g, mw, rtl, exe, xs, frames = tiny_design
    eight = (frames * 2)[:8]
    r = _run_harness(g, exe, rtl, eight, declared_frames=1, drain=0)
    assert r.returncode == 4 and "INPUT LEFT" in r.stderr, (r.returncode, r.stderr)
    r = _run_harness(g, exe, rtl, eight, declared_frames=1, drain=-1)
    assert r.returncode == 5 and "EXTRA OUTPUT" in r.stderr, (r.returncode, r.stderr)
    r = _run_harness(g, exe, rtl, eight, declared_frames=8, drain=-1)
    assert r.returncode == 0, r.stdout + r.stderr


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


def test_profile_guided_build_simulates_the_same(tiny_design):
    """netsim.build(pgo=True) (compiled with GCC's profile of a training run, ``Vsim --pgo-train``) is another binary
    of the same design: the same integers, cycles and frame interval as the plain build, with stalls."""
    g, mw, rtl, exe, xs, frames = tiny_design
    pgo = netsim.build(rtl, sorted((rtl / "lib").glob("*.sv")), verbose=False, pgo=True)
    assert pgo != exe and pgo.is_file()
    assert not (pgo.parent / "pgo").exists()  # the profile is not kept in the cache entry
    runs = [netsim.simulate(g, e, rtl, frames, stall_in=0.3, stall_out=0.3, seed=5) for e in (exe, pgo)]
    for a, b in zip(runs[0]["outputs"], runs[1]["outputs"]):
        assert np.array_equal(a, b)
    assert all(np.array_equal(o, g.execute(f)[g.output]) for o, f in zip(runs[1]["outputs"], frames))
    assert runs[0]["simulated_cycles"] == runs[1]["simulated_cycles"]
