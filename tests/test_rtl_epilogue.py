"""Elementwise epilogue kinds (compile/kinds/elementwise.py) against their RTL (bhpe_epi_*, bhpe_sign,
bhpe_threshold), bit-exact, with and without stalls, plus the cycle model (tests/rtl/cocotb_elementwise.py).

One Verilator build per parameter set (13 in all); each build runs two cocotb tests of ~13 frames each.
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


CASES = {
    # Hardtanh + requantize X Q(16,10) -> A Q(8,7)
    "requant_x_to_a": lambda: Requant(name="rq0", c=4, lanes=2, pixels=PIX, in_w=16, out_w=8, shift=3),
    # left shift (negative Shift) with saturation and ReLU
    "requant_left_relu": lambda: Requant(name="rq1", c=8, lanes=4, pixels=PIX, in_w=8, out_w=12, shift=-5,
                                         relu=True),
    # residual add eq. 7: X + (A << 3)
    "joinadd_residual": lambda: JoinAdd(name="ja0", c=6, lanes=2, pixels=PIX, in_w=16, in_b_w=8, out_w=16,
                                        shift_a=0, shift_b=3),
    "joinadd_narrow": lambda: JoinAdd(name="ja1", c=3, lanes=1, pixels=PIX, in_w=8, in_b_w=12, out_w=10,
                                      shift_a=2, shift_b=0),
    # alpha scale of a 9-bit popcount, left shift, saturating to X
    "mulshift_alpha": lambda: MulShift(name="ms0", c=8, lanes=2, pixels=PIX, in_w=9, const_w=8, out_w=16,
                                       m=_consts(1, 8, 8), shift=-2),
    # BatchNorm scale, one channel group (ROM depth 1), 3 lanes
    "mulshift_bn": lambda: MulShift(name="ms1", c=3, lanes=3, pixels=PIX, in_w=16, const_w=8, out_w=16,
                                    m=_consts(2, 3, 8), shift=7),
    "addconst": lambda: AddConst(name="ac0", c=6, lanes=2, pixels=PIX, in_w=16, const_w=16, out_w=16,
                                 b=_consts(3, 6, 16)),
    "addconst_narrow": lambda: AddConst(name="ac1", c=5, lanes=1, pixels=PIX, in_w=8, const_w=12, out_w=10,
                                        b=_consts(4, 5, 12)),
    "prelu": lambda: Prelu(name="pr0", c=4, lanes=2, pixels=PIX, in_w=16, const_w=8, out_w=16,
                           beta=_consts(5, 4, 8), shift=7),
    "prelu_narrow_left": lambda: Prelu(name="pr1", c=3, lanes=1, pixels=PIX, in_w=10, const_w=6, out_w=8,
                                       beta=_consts(6, 3, 6), shift=-1),
    "sign": lambda: Sign(name="sg0", c=8, lanes=4, pixels=PIX, in_w=8),
    # thresholds wider than the input (some out of its range), both directions
    "threshold": lambda: Threshold(name="th0", c=6, lanes=2, pixels=PIX, in_w=10, thr_w=12,
                                   thresholds=np.array([-512, 511, 0, -600, 700, 37]),
                                   neg=np.array([0, 1, 1, 0, 1, 0])),
    # 2-bit FINN-style MultiThreshold, 3 thresholds a channel (unsorted in channel 1, repeated in channel 3)
    "multithreshold": lambda: MultiThreshold(name="mt0", c=4, lanes=2, pixels=PIX, in_w=8, thr_w=9, out_w=2,
                                             thresholds=np.array([[-20, 0, 20], [100, -128, 5],
                                                                  [-256, 255, 0], [7, 7, 7]])),
}

MODULE_FILES = ["bhpe_epi_reg.sv", "bhpe_epi_sat.sv", "bhpe_epi_crom.sv"]


def _spec(layer) -> str:
    args = {}
    for f in dataclasses.fields(layer):
        if not f.init or f.name in ("inputs", "outputs"):
            continue
        v = getattr(layer, f.name)
        args[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
    return json.dumps({"kind": type(layer).__name__, "args": args})


def _build_root() -> pathlib.Path:
    return pathlib.Path(os.environ.get("BINARYHPE_SIM_BUILD", pathlib.Path.cwd() / "sim_build"))


@pytest.mark.parametrize("case", list(CASES))
def test_rtl_elementwise(case):
    layer = CASES[case]()
    params = dict(layer.rtl_params())
    for pname, words in layer.rtl_memories().items():
        # a stable path, so that a rerun reuses the Verilator build (the file is read at simulation start)
        hexdir = _build_root() / "hex"
        hexdir.mkdir(parents=True, exist_ok=True)
        path = hexdir / f"elementwise_{case}_{pname}.hex"
        path.write_text("".join(f"{w:x}\n" for w in words))
        params[pname] = f'"{path.resolve()}"'
    srcs = [RTL / f for f in MODULE_FILES] + [RTL / f"{layer.rtl_module}.sv"]
    run_cocotb(layer.rtl_module, "cocotb_elementwise", params, sources=srcs, test_dir=HERE / "rtl",
               extra_env={"KIND": _spec(layer), "FRAME_H": FRAME_H, "SEED": sum(map(ord, case)), "STALL": 0.4})


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
        assert layer.cycles() == {"ii": 10, "latency": 10, "pipeline": 1}
        assert set(layer.resources()) == {"lut", "ff", "bram18", "dsp"}
        assert os.path.exists(RTL / f"{layer.rtl_module}.sv")
