"""The registers the matrix-vector units add for the clock (kinds.mvu.mvu_pipelining) follow the device's clock,
and the cycle model, the RTL parameters and the FIFO-sizing capacity follow them."""

import numpy as np

from binaryhpe.compile.devices import load_device
from binaryhpe.compile.folding import pipeline_for_clock
from binaryhpe.compile.graph import HwGraph
from binaryhpe.compile.kinds.mvu import MVU_PIPELINE, FxpMvu, XnorMvu, mvu_pipelining, tree_stages


def test_tree_stages_counts_registered_levels_below_the_root():
    # a tree of 2^D leaves has D adder levels; registers sit at heights L, 2L, ... below the root (height D)
    assert [tree_stages(n, 1) for n in (1, 2, 3, 4, 8, 9, 16, 27)] == [0, 0, 1, 1, 2, 3, 3, 4]
    assert [tree_stages(n, 2) for n in (2, 4, 8, 16, 27, 64)] == [0, 0, 1, 1, 2, 2]
    assert tree_stages(64, 0) == 0 and tree_stages(1, 3) == 0


def test_pipelining_follows_the_clock():
    assert mvu_pipelining(False, 8, 100.0) == (2, 2)   # ECP5-85F, Zynq-7020: operand and product registers
    assert mvu_pipelining(False, 8, 250.0) == (2, 1)   # Alveo U250
    assert mvu_pipelining(True, 32, 250.0) == (0, 0)   # a popcount of 32 bits stays combinational
    assert mvu_pipelining(True, 64, 100.0) == (0, 3) and mvu_pipelining(True, 64, 200.0) == (0, 2)


def test_device_clock_sets_each_mvu_and_its_latency():
    rng = np.random.default_rng(1)
    f = FxpMvu(name="f", n=27, cout=4, pe=2, simd=27, pixels=5, weights=rng.integers(-128, 128, size=(4, 27)))
    x = XnorMvu(name="x", n=72, cout=4, pe=1, simd=72, pixels=5, weights=rng.choice([-1, 1], size=(4, 72)))
    g = HwGraph(input="a", output="b")
    g.layers = [f, x]
    for dev, f_extra, x_extra in (("ecp5-85f", 2 + 2, 2), ("zu3eg", 2 + 4, 3)):
        clock = load_device(dev).clock_mhz
        pipeline_for_clock(g, clock)
        assert f.clock_mhz == x.clock_mhz == clock
        # FxpMvu: the multiplier's operand and product registers + tree registers (27 terms: 5 levels); XnorMvu: the popcount's (7 levels)
        assert f.pipeline == MVU_PIPELINE + f_extra and x.pipeline == MVU_PIPELINE + x_extra
        assert f.cycles() == {"ii": 5 * 2, "latency": 5 * 2 + f.pipeline}
        p = f.rtl_params()
        assert p["MulReg"] == 2 and p["TreeLevels"] == mvu_pipelining(False, 27, clock)[1]
        assert x.rtl_params()["TreeLevels"] == mvu_pipelining(True, 72, clock)[1] and "MulReg" not in x.rtl_params()
        # every added register can hold one step: the FIFO sizing sees them
        assert f.stream_capacity() == 2 * f.sf + 9 + f_extra and x.stream_capacity() == 2 * x.sf + 9 + x_extra


def test_epilogue_multiplies_in_logic_on_ecp5_only():
    """multipliers_for_device: an ECP5 build's epilogues multiply in logic (bhpe_mul; its DSP rows sit far
    from the logic), a Xilinx build's in DSP blocks; the RTL parameter and the resource model follow, and each
    multiplier in logic is pipelined: one stage more for each (OpPipe), in the cycle model and the credits."""
    from binaryhpe.compile.folding import multipliers_for_device
    from binaryhpe.compile.kinds.elementwise import AddConst, MulShift, Prelu
    from binaryhpe.compile.kinds.epilogue import Epilogue, lut_mul_luts

    rng = np.random.default_rng(2)
    ms = MulShift(name="m", c=8, lanes=4, pixels=5, in_w=16, const_w=8, out_w=16, shift=3,
                  m=rng.integers(-128, 128, 8))
    ac = AddConst(name="a", c=8, lanes=4, pixels=5, in_w=16, const_w=16, out_w=16, b=rng.integers(-99, 99, 8))
    pr = Prelu(name="p", c=8, lanes=4, pixels=5, in_w=16, const_w=8, out_w=16, shift=2,
               beta=rng.integers(-128, 128, 8))
    e = Epilogue(name="e", ops=[ms, ac, pr])
    g = HwGraph(input="a", output="b")
    g.layers = [e]
    dsp_res, cycles = e.resources(), e.cycles()
    multipliers_for_device(g, load_device("zu3eg"))
    assert not e.lut_mul and e.rtl_params()["MulLut"] == 0 and e.resources() == dsp_res
    assert dsp_res["dsp"] == 2 * 4  # one multiplier a lane for the MulShift and for the Prelu
    assert int(e.rtl_params()["OpPipe"]) == 0
    multipliers_for_device(g, load_device("ecp5-85f"))
    lut_res = e.resources()
    assert e.lut_mul and e.rtl_params()["MulLut"] == 1
    # RTL ops: input register, Mul, Requant, AddConst, PreluMul, Requant: the two products pipelined
    assert [r.code for r in e.rtl_ops()] == [0, 8, 0, 2, 9, 0] and int(e.rtl_params()["OpPipe"]) == 0b010010
    assert e.cycles() == {**cycles, "latency": cycles["latency"] + 2, "pipeline": cycles["pipeline"] + 2}
    assert e.stream_capacity() == e.stages() + 3 and e.stages() == 6 + 2
    assert lut_res["dsp"] == 0 and lut_res["lut"] > dsp_res["lut"] + 2 * 4 * lut_mul_luts(16, 8)


def test_fixed_point_mvu_multiplies_in_logic_on_ecp5_only():
    """multipliers_for_device sets FxpMvu.lut_mul as it sets the epilogues' (the ECP5-85F's MULT18X18D rows sat
    29-32 rows from the MVU's operand and product registers); the binary unit has no multipliers; the cycle
    model does not change, the DSPs become LUTs."""
    from binaryhpe.compile.folding import multipliers_for_device
    from binaryhpe.compile.kinds.base import lut_mul_luts

    rng = np.random.default_rng(3)
    f = FxpMvu(name="f", n=27, cout=4, pe=2, simd=9, pixels=5, weights=rng.integers(-128, 128, size=(4, 27)))
    x = XnorMvu(name="x", n=72, cout=4, pe=1, simd=8, pixels=5, weights=rng.choice([-1, 1], size=(4, 72)))
    g = HwGraph(input="a", output="b")
    g.layers = [f, x]
    dsp_res, cycles, x_params = f.resources(), f.cycles(), x.rtl_params()
    multipliers_for_device(g, load_device("zu3eg"))
    assert not f.lut_mul and f.rtl_params()["MulLut"] == 0 and f.resources() == dsp_res
    assert dsp_res["dsp"] == 2 * 9
    multipliers_for_device(g, load_device("ecp5-85f"))
    lut_res = f.resources()
    assert f.lut_mul and f.rtl_params()["MulLut"] == 1 and f.cycles() == cycles
    assert lut_res["dsp"] == 0 and lut_res["lut"] == dsp_res["lut"] + 2 * 9 * lut_mul_luts(8, 8)
    assert x.rtl_params() == x_params and "MulLut" not in x_params
    f.weight_source = "stream"  # the streamed unit passes it on as well
    assert f.rtl_params()["MulLut"] == 1
