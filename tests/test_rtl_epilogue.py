"""The fused epilogue (compile/kinds/epilogue.py, hw/rtl/bhpe_epilogue.sv) against its Python reference,
bit-exact, with and without stalls on every stream, plus the cycle model (tests/rtl/cocotb_epilogue.py).

Every elementwise kind alone (a one-op unit) and realistic chains: the BiDRN's scale, shift, RPReLU and
residual join (MulShift -> AddConst -> Prelu -> AddConst -> JoinAdd), BatchNorm + sign, join + threshold,
multi-threshold, requantize with ReLU and both shift directions, lanes 1 to 4. Constants include both ends
of their range and the frames both ends of the input ranges; the bench checks that every saturating op of a
chain case reaches both ends of its output range (so every intermediate saturation is exercised).
The expected values are ``Epilogue.execute``, which runs the ops' own ``execute`` one after the other.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sys

import numpy as np
import pytest

from binaryhpe.compile.kinds.elementwise import (AddConst, JoinAdd, MulShift, MultiThreshold, Prelu, Requant,
                                                 Sign, Threshold)
from binaryhpe.compile.kinds.epilogue import Epilogue
from binaryhpe.sim.runner import run_cocotb

HERE = pathlib.Path(__file__).parent
RTL = HERE.parent / "hw" / "rtl"
sys.path.insert(0, str(HERE / "rtl"))

FRAME_H, FRAME_W = 2, 3
PIX = FRAME_H * FRAME_W


def _consts(seed: int, c: int, bits: int) -> np.ndarray:
    """Random signed constants with the two extremes of the range in the first channels."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    v = rng.integers(lo, hi + 1, size=c)
    v[: min(c, 2)] = [lo, hi][: min(c, 2)]
    return v


def _epi(name, lanes, *ops):
    """A unit of ``ops`` (made with c, pixels; lanes set on the unit)."""
    e = Epilogue(name=name, ops=list(ops))
    e.lanes = lanes
    return e


def _ms(n, c, in_w, out_w, const_w, shift, seed, **kw):
    return MulShift(name=n, c=c, pixels=PIX, in_w=in_w, out_w=out_w, const_w=const_w, shift=shift,
                    m=kw.get("m", _consts(seed, c, const_w)))


def _ac(n, c, in_w, out_w, const_w, seed, **kw):
    return AddConst(name=n, c=c, pixels=PIX, in_w=in_w, out_w=out_w, const_w=const_w,
                    b=kw.get("b", _consts(seed, c, const_w)))


def _pr(n, c, in_w, out_w, const_w, shift, seed):
    return Prelu(name=n, c=c, pixels=PIX, in_w=in_w, out_w=out_w, const_w=const_w, shift=shift,
                 beta=_consts(seed, c, const_w))


CASES = {
    # --- every kind alone -----------------------------------------------------------------------------
    "requant": lambda: _epi("rq", 2, Requant(name="rq0", c=4, pixels=PIX, in_w=16, out_w=8, shift=3)),
    "requant_left_relu": lambda: _epi("rq", 4, Requant(name="rq1", c=8, pixels=PIX, in_w=8, out_w=12, shift=-5,
                                                       relu=True)),
    "mulshift": lambda: _epi("ms", 2, _ms("ms0", 8, 9, 16, 8, 2, 1)),
    "mulshift_left": lambda: _epi("ms", 1, _ms("ms1", 3, 10, 12, 6, -3, 2)),
    "addconst": lambda: _epi("ac", 1, _ac("ac0", 5, 8, 10, 12, 3)),
    "prelu": lambda: _epi("pr", 2, _pr("pr0", 4, 16, 16, 8, 5, 4)),
    "prelu_narrow_left": lambda: _epi("pr", 1, _pr("pr1", 3, 10, 8, 6, -2, 5)),
    "joinadd": lambda: _epi("ja", 2, JoinAdd(name="ja0", c=6, pixels=PIX, in_w=16, in_b_w=8, out_w=16,
                                             shift_b=7)),
    "sign": lambda: _epi("sg", 4, Sign(name="sg0", c=8, pixels=PIX, in_w=8)),
    "threshold": lambda: _epi("th", 2, Threshold(name="th0", c=6, pixels=PIX, in_w=10, thr_w=12,
                                                 thresholds=_consts(6, 6, 12) // 8,
                                                 neg=np.array([0, 1, 0, 1, 1, 0]))),
    # 2-bit FINN-style MultiThreshold, 3 thresholds a channel (unsorted in channel 1, repeated in channel 3)
    "multithreshold": lambda: _epi("mt", 2, MultiThreshold(
        name="mt0", c=4, pixels=PIX, in_w=8, thr_w=9, out_w=2,
        thresholds=np.array([[-40, 0, 40], [90, -90, 3], [-256, 255, 0], [7, 7, 7]]))),
    # signed levels with an offset (compile/lower_quant.py): a 2-bit narrow quantizer's -1, 0, 1 (two thresholds,
    # offset -1), and a 2-bit unsigned quantizer's 0..3 on a signed 3-bit stream (three thresholds)
    "multithreshold_signed": lambda: _epi("mts", 2, MultiThreshold(
        name="mts0", c=4, pixels=PIX, in_w=8, thr_w=9, out_w=2, offset=-1, signed=True,
        thresholds=np.array([[-40, 40], [-128, 127], [-256, 255], [7, 7]]))),
    "multithreshold_unsigned_levels": lambda: _epi("mtu", 1, MultiThreshold(
        name="mtu0", c=3, pixels=PIX, in_w=8, thr_w=10, out_w=3, offset=0, signed=True,
        thresholds=np.array([[-40, 0, 40], [-128, -1, 127], [5, 6, 256]]))),
    # a decreasing channel's sign flip, then signed levels -2..1 (offset -2), then a following op
    "multithreshold_offset_chain": lambda: _epi("mto", 2, _ms("dir", 4, 8, 9, 2, 0, 70, m=np.array([1, -1, 1, -1])),
                                                MultiThreshold(name="mt", c=4, pixels=PIX, in_w=9, thr_w=10, out_w=2,
                                                               offset=-2, signed=True,
                                                               thresholds=np.array([[-50, 0, 50], [-255, 0, 256],
                                                                                    [-300, -299, 300], [3, 4, 5]])),
                                                _ac("after", 4, 2, 4, 3, 71)),
    # --- chains -------------------------------------------------------------------------------------------
    # the BiDRN block: alpha scale, BN shift, RPReLU (shift - gamma, slope, + zeta), residual join
    "rprelu_block": lambda: _epi("blk", 2, _ms("alpha", 6, 9, 12, 8, 1, 10), _ac("bn", 6, 12, 12, 12, 11),
                                 _pr("slope", 6, 12, 12, 8, 4, 12), _ac("zeta", 6, 12, 12, 16, 13),
                                 JoinAdd(name="res", c=6, pixels=PIX, in_w=12, in_b_w=12, out_w=16, shift_b=4)),
    # ... and its continuation into the next scale and a requantization (8 ops, four registered stages)
    "block_requant": lambda: _epi("blk2", 4, _ms("alpha", 8, 10, 14, 7, 1, 20), _ac("bn", 8, 14, 14, 14, 21),
                                  _pr("slope", 8, 14, 14, 8, -1, 22), _ac("zeta", 8, 14, 12, 10, 23),
                                  JoinAdd(name="res", c=8, pixels=PIX, in_w=12, in_b_w=12, out_w=13, shift_a=1),
                                  _ms("s2", 8, 13, 16, 8, 2, 24), _ac("b2", 8, 16, 16, 16, 25),
                                  Requant(name="rq", c=8, pixels=PIX, in_w=16, out_w=8, shift=4, relu=True)),
    # BatchNorm + sign (binary activation)
    "bn_sign": lambda: _epi("bns", 3, _ms("bn_m", 6, 12, 16, 8, 2, 30), _ac("bn_b", 6, 16, 10, 16, 31),
                            Sign(name="sg", c=6, pixels=PIX, in_w=10)),
    # join first (the b operand at the input stage), then a threshold
    "join_threshold": lambda: _epi("jt", 1,
                                   JoinAdd(name="j", c=3, pixels=PIX, in_w=8, in_b_w=10, out_w=9, shift_a=2),
                                   _ms("m", 3, 9, 12, 5, -2, 40), _ac("a", 3, 12, 12, 12, 41),
                                   Threshold(name="t", c=3, pixels=PIX, in_w=12, thr_w=12,
                                             thresholds=np.array([-2048, 0, 2047]), neg=np.array([0, 1, 1]))),
    "multithreshold_chain": lambda: _epi("mtc", 2, _ms("m", 4, 10, 12, 8, 4, 50), _ac("a", 4, 12, 12, 12, 51),
                                         MultiThreshold(name="mt", c=4, pixels=PIX, in_w=12, thr_w=12, out_w=3,
                                                        thresholds=np.sort(
                                                            np.random.default_rng(52).integers(-2048, 2048,
                                                                                               (4, 7))))),
    "requant_chain": lambda: _epi("rqc", 2, Requant(name="r0", c=4, pixels=PIX, in_w=12, out_w=10, shift=-2,
                                                    relu=True),
                                  _ms("m", 4, 10, 16, 8, -4, 60), Requant(name="r1", c=4, pixels=PIX, in_w=16,
                                                                          out_w=6, shift=6)),
}

def _lut(make):
    """The same unit multiplying in logic (``lut_mul``: ``bhpe_mul``, the ECP5 builds' epilogues)."""
    def build():
        e = make()
        e.lut_mul = True
        return e
    return build


# the multiplying cases again with the multiplies in logic (both constant extremes, both shift directions)
for _name in ("mulshift", "mulshift_left", "prelu", "prelu_narrow_left", "rprelu_block", "block_requant",
              "requant_chain"):
    CASES[_name + "_lut"] = _lut(CASES[_name])

#: chain cases whose saturating ops must each reach both ends of their output range on the bench's frames
COVER = {"rprelu_block", "block_requant", "bn_sign", "join_threshold", "multithreshold_chain", "requant_chain",
         "rprelu_block_lut", "block_requant_lut", "requant_chain_lut"}


def _spec(e: Epilogue) -> str:
    ops = []
    for op in e.ops:
        args = {}
        for f in dataclasses.fields(op):
            if not f.init or f.name in ("inputs", "outputs"):
                continue
            v = getattr(op, f.name)
            args[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
        ops.append({"kind": type(op).__name__, "args": args})
    return json.dumps({"name": e.name, "ops": ops, "lut_mul": e.lut_mul})


def _sv(v):
    return v.sv() if hasattr(v, "sv") else v


def _build_root() -> pathlib.Path:
    return pathlib.Path(os.environ.get("BINARYHPE_SIM_BUILD", pathlib.Path.cwd() / "sim_build"))


@pytest.mark.parametrize("case", list(CASES))
def test_rtl_epilogue(case):
    unit = CASES[case]()
    params = {k: _sv(v) for k, v in unit.rtl_params().items()}
    for pname, words in unit.rtl_memories().items():
        # a stable path, so that a rerun reuses the Verilator build (the file is read at simulation start)
        hexdir = _build_root() / "hex"
        hexdir.mkdir(parents=True, exist_ok=True)
        path = hexdir / f"epilogue_{case}_{pname}.hex"
        path.write_text("".join(f"{w:x}\n" for w in words))
        params[pname] = f'"{path.resolve()}"'
    srcs = [RTL / f for f in ("bhpe_epi_sat.sv", "bhpe_mul.sv", "bhpe_epilogue.sv")]
    run_cocotb("bhpe_epilogue", "cocotb_epilogue", params, sources=srcs, test_dir=HERE / "rtl",
               extra_env={"EPILOGUE": _spec(unit), "FRAME_H": FRAME_H, "SEED": sum(map(ord, case)),
                          "STALL": 0.4, "COVER": int(case in COVER)})


# --- pure-Python checks of the kinds (no simulator) -------------------------------------------------------
def test_reference_numerics():
    x = np.array([[[-32768, -9, -8, -1, 0, 7, 8, 32767]]], dtype=np.int64)
    rq = Requant(name="r", c=8, in_w=16, out_w=8, shift=3)
    assert rq.execute([x])[0].ravel().tolist() == [-128, -2, -1, -1, 0, 0, 1, 127]
    rq2 = Requant(name="r", c=8, in_w=16, out_w=8, shift=-1, relu=True)
    assert rq2.execute([x])[0].ravel().tolist() == [0, 0, 0, 0, 0, 14, 16, 127]
    ms = MulShift(name="m", c=8, in_w=16, const_w=8, out_w=16, m=np.full(8, -128), shift=7)
    assert ms.execute([x])[0].ravel().tolist() == [32767, 9, 8, 1, 0, -7, -8, -32767]
    pr = Prelu(name="p", c=8, in_w=16, const_w=8, out_w=8, beta=np.full(8, 3), shift=2)
    assert pr.execute([x])[0].ravel().tolist() == [-128, -7, -6, -1, 0, 7, 8, 127]
    sg = Sign(name="s", c=8, in_w=16)
    assert sg.execute([x])[0].ravel().tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    th = Threshold(name="t", c=8, in_w=16, thr_w=16, thresholds=np.array([-32768, -9, -7, -1, 1, 7, 8, 32767]),
                   neg=np.array([0, 0, 0, 1, 1, 1, 0, 1]))
    assert th.execute([x])[0].ravel().tolist() == [1, 1, 0, 1, 1, 1, 1, 1]
    ja = JoinAdd(name="j", c=8, in_w=16, in_b_w=8, out_w=16, shift_b=3)
    b = np.array([[[-128, 0, 1, 0, -1, 0, 0, 127]]])
    assert ja.execute([x, b])[0].ravel().tolist() == [-32768, -9, 0, -1, -8, 7, 8, 32767]
    ac = AddConst(name="a", c=8, in_w=16, const_w=16, out_w=8, b=np.array([-1, 1, 0, 0, 0, 0, 120, 0]))
    assert ac.execute([x])[0].ravel().tolist() == [-128, -8, -8, -1, 0, 7, 127, 127]
    mt = MultiThreshold(name="mt", c=8, in_w=16, thr_w=16, out_w=2, thresholds=np.tile([-8, 0, 8], (8, 1)))
    assert mt.execute([x])[0].ravel().tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_rom_packing():
    ms = MulShift(name="m", c=4, lanes=2, in_w=8, const_w=8, m=np.array([-1, 2, -128, 127]))
    assert ms.rtl_memories() == {"InitFile": [0x02FF, 0x7F80]}
    th = Threshold(name="t", c=2, lanes=2, in_w=8, thr_w=4, thresholds=np.array([-1, 3]), neg=np.array([1, 0]))
    assert th.rtl_memories() == {"InitFile": [(0x03 << 5) | 0x1F]}
    mt = MultiThreshold(name="mt", c=2, lanes=2, in_w=8, thr_w=4, out_w=2,
                        thresholds=np.array([[-1, 0, 1], [2, 3, -8]]))
    assert mt.rtl_memories() == {"InitFile": [0x10F | (0x832 << 12)]}


def test_illegal_parameters_name_the_layer():
    with pytest.raises(ValueError, match="conv3_alpha.*lanes=4 does not divide c=6"):
        MulShift(name="conv3_alpha", c=6, lanes=4, m=np.zeros(6))
    with pytest.raises(ValueError, match="bn1.*do not fit 8 signed bits"):
        MulShift(name="bn1", c=2, m=np.array([1, 200]))
    with pytest.raises(ValueError, match="add1.*shift_a"):
        JoinAdd(name="add1", c=2, shift_a=-1)
    with pytest.raises(ValueError, match="rq.*input values"):
        Requant(name="rq", c=1, in_w=8).execute([np.array([[[300]]])])
    for cls in (Requant, JoinAdd, MulShift, AddConst, Prelu, Sign, Threshold, MultiThreshold):
        thr = np.zeros((4, 3)) if cls is MultiThreshold else np.zeros(4)
        fields = {"m": np.zeros(4), "b": np.zeros(4), "beta": np.zeros(4), "thresholds": thr}
        names = {f.name for f in dataclasses.fields(cls)}
        layer = cls(name="x", c=4, lanes=2, pixels=5, **{k: v for k, v in fields.items() if k in names})
        # one registered stage; an op with constants also its input's register, a multiplying op also its
        # product's (before its shift and saturation); then the unit's output FIFO (one cycle)
        depth = {MulShift: 3, Prelu: 3, AddConst: 2, Threshold: 2, MultiThreshold: 2}.get(cls, 1) + 1
        assert layer.cycles() == {"ii": 10, "latency": 9 + depth, "pipeline": depth}
        assert set(layer.resources()) == {"lut", "ff", "bram18", "dsp"}
        assert os.path.exists(RTL / f"{layer.rtl_module}.sv")


# --- the Epilogue kind (no simulator) -------------------------------------------------------------------
def test_epilogue_rom_is_op_major_and_every_op_is_a_stage():
    ms = MulShift(name="m", c=4, in_w=8, const_w=8, out_w=16, m=np.array([-1, 2, -128, 127]))
    ac = AddConst(name="a", c=4, in_w=16, const_w=4, out_w=16, b=np.array([1, -1, 7, -8]))
    sg = Sign(name="s", c=4, in_w=16)
    e = _epi("e", 2, ms, ac, sg)
    # word g: m's lanes (2 x 8 bits) at bit 0, then b's lanes (2 x 4 bits) at bit 2 * 8
    assert e.rtl_memories() == {"InitFile": [0x02FF | (0xF1 << 16), 0x7F80 | (0x87 << 16)]}
    assert e.const_offsets() == [0, 8, 12] and e.const_bits() == 12
    assert e.registered() == [True, True, True]
    # the MulShift is two RTL ops: its 16-bit product (Mul, code 8), registered, then a Requant (code 0); as the
    # first op it reads a register of the input (a Requant by 0 to the input's 8 bits) first
    assert e.stages() == 5 and e.rtl_const_offsets() == [0, 0, 8, 8, 12]
    assert e.cycles() == {"ii": 2, "latency": 7, "pipeline": 6}  # the 5 registers and the output FIFO
    p = e.rtl_params()
    assert (p["NumOps"], p["InW"], p["OutW"], p["HasB"], int(p["OpReg"])) == (5, 8, 1, 0, 0b11111)
    assert int(p["OpKind"]) == 0 | (8 << 16) | (0 << 32) | (2 << 48) | (5 << 64)
    assert p["OpKind"].sv().startswith("256'h")
    assert int(p["OpOutW"]) == 8 | (16 << 16) | (16 << 32) | (16 << 48) | (1 << 64)


def test_epilogue_executes_its_ops_in_order():
    rng = np.random.default_rng(3)
    ops = CASES["block_requant"]().ops
    e = Epilogue(name="e", ops=ops)
    x = rng.integers(-512, 512, (FRAME_H, FRAME_W, 8))
    b = rng.integers(-2048, 2048, (FRAME_H, FRAME_W, 8))
    want = x
    for op in ops:
        want = op.execute([want, b] if isinstance(op, JoinAdd) else [want])[0]
    assert np.array_equal(e.execute([x, b])[0], want)
    with pytest.raises(ValueError, match="Epilogue layer 'e': takes 2 input"):
        e.execute([x])


def test_epilogue_rejects_bad_chains():
    ms = MulShift(name="m", c=4, in_w=8, const_w=8, out_w=16, m=np.zeros(4))
    with pytest.raises(ValueError, match="op a takes 12 bits, op m gives 16"):
        Epilogue(name="e", ops=[ms, AddConst(name="a", c=4, in_w=12, b=np.zeros(4))])
    j = JoinAdd(name="j", c=4, in_w=16, in_b_w=8, out_w=16)
    with pytest.raises(ValueError, match="2 JoinAdd ops"):
        Epilogue(name="e", ops=[ms, j, JoinAdd(name="j2", c=4, in_w=16, in_b_w=8, out_w=16)])
    with pytest.raises(ValueError, match="unsigned output"):
        Epilogue(name="e", ops=[Sign(name="s", c=4, in_w=8), Requant(name="r", c=4, in_w=1)])
    with pytest.raises(ValueError, match="c/pixels/lanes"):
        Epilogue(name="e", ops=[ms, AddConst(name="a", c=8, in_w=16, b=np.zeros(8))])


def test_fuse_and_unfuse_epilogue_round_trip():
    from binaryhpe.compile.graph import Fmt, HwGraph, TensorInfo
    from binaryhpe.compile.passes import FuseEpilogue, UnfuseEpilogues

    c, rng = 4, np.random.default_rng(9)
    g = HwGraph(input="x", output="y")
    q = Fmt(16, 4)
    for t in ("x", "m", "a", "y"):
        g.tensors[t] = TensorInfo(t, (2, 3, c), q)
    g.onnx_names = {"onnx_m": "m", "onnx_y": "y"}
    g.layers = [
        MulShift(name="ms", inputs=["x"], outputs=["m"], c=c, pixels=6, in_w=16, out_w=16, const_w=8,
                 m=rng.integers(-128, 128, c), shift=3),
        AddConst(name="ac", inputs=["m"], outputs=["a"], c=c, pixels=6, in_w=16, out_w=16, b=rng.integers(-99, 99, c)),
        # the chain reaches the join through its b operand: the pass swaps the operands
        JoinAdd(name="ja", inputs=["x", "a"], outputs=["y"], c=c, pixels=6, in_w=16, in_b_w=16, out_w=16,
                shift_a=1, shift_b=0),
    ]
    x = rng.integers(-30000, 30000, (2, 3, c))
    want = g.execute(x)["y"]
    assert FuseEpilogue().apply(g) and not FuseEpilogue().apply(g)
    (epi,) = g.layers
    assert type(epi).__name__ == "Epilogue" and epi.inputs == ["x", "x"] and epi.outputs == ["y"] and [m.name for m in epi.mids] == ["m", "a"]
    j = epi.ops[-1]
    assert (j.inputs, j.shift_a, j.shift_b) == (["a", "x"], 0, 1)
    assert "m" not in g.tensors and "a" not in g.tensors and g.onnx_names == {"onnx_y": "y"}
    assert np.array_equal(g.execute(x)["y"], want)
    assert UnfuseEpilogues().apply(g)
    assert sorted(type(lay).__name__ for lay in g.layers) == ["AddConst", "JoinAdd", "MulShift"]
    assert {"m", "a"} <= set(g.tensors)
    g.toposort()
    assert np.array_equal(g.execute(x)["y"], want)
