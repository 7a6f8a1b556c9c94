"""RTL tests of pooling: bhpe_swg_pool (SWG + bhpe_pool) and bhpe_pool alone against the Pool kind."""

import json
import pathlib
import sys

import numpy as np
import pytest

from binaryhpe.compile.kinds.pool import Pool
from binaryhpe.sim.runner import run_cocotb
from binaryhpe.sim.toolchain import rtl_dir

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE / "rtl"))

CASES = {
    # AvgPool 2x2 s2 as an exact sum of 4 A values (BiDRN downsampling)
    "avg2x2_sum": ("pair", dict(h=4, w=6, c=4, k=2, s=2, pad=0, mode="sum", elem_w=8, lanes=2)),
    # ResNet stem MaxPool 3x3 s2 pad 1 on even sizes (floor mode, 8x6 -> 4x3): padding taps never win
    "max3x3_s2_p1": ("pair", dict(h=8, w=6, c=3, k=3, s=2, pad=1, mode="max", elem_w=8, lanes=1)),
    # BNN-PYNQ MaxPool 2x2 on binary activations (unsigned bits: max = OR)
    "max2x2_bin": ("pair", dict(h=4, w=4, c=8, k=2, s=2, pad=0, mode="max", elem_w=1, lanes=4, signed=False)),
    # the reducer alone with arbitrary masks, sum of a 3x3 window
    "reduce_sum3x3": ("reduce", dict(h=5, w=5, c=4, k=3, s=1, pad=1, mode="sum", elem_w=5, lanes=2)),
    "reduce_max3x3": ("reduce", dict(h=5, w=5, c=2, k=3, s=2, pad=1, mode="max", elem_w=6, out_w=7, lanes=2)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_pool(case):
    top, args = CASES[case]
    kind = Pool(name=case, **args)
    if top == "pair":
        module, params = kind.rtl_top()
        srcs = [rtl_dir() / f for f in ("bhpe_fifo.sv", "bhpe_swg.sv", "bhpe_pool.sv", "bhpe_swg_pool.sv")]
    else:
        module, params = kind.rtl_module, kind.rtl_params()
        srcs = [rtl_dir() / "bhpe_pool.sv"]
    run_cocotb(module, "cocotb_pool", params, sources=srcs, test_dir=HERE / "rtl",
               extra_env={"KIND": "Pool", "KIND_ARGS": json.dumps(args), "TOP": top, "SEED": 5, "STALL": 0.4})


def test_pool_reference():
    x = np.array([[1, -3], [7, 2]], dtype=np.int64).reshape(2, 2, 1)
    assert Pool(name="p", h=2, w=2, c=1, k=2, s=2, mode="sum").execute([x])[0].item() == 7
    assert Pool(name="p", h=2, w=2, c=1, k=2, s=2, mode="max").execute([x])[0].item() == 7
    # padding taps are ignored by max, even when every real tap is negative
    y = np.full((3, 3, 1), -5, dtype=np.int64)
    out = Pool(name="p", h=3, w=3, c=1, k=3, s=2, pad=1, mode="max").execute([y])[0]
    assert (out == -5).all()
    with pytest.raises(ValueError, match="too narrow"):
        Pool(name="p", h=2, w=2, c=1, k=2, s=2, mode="sum", elem_w=8, out_w=9)


def test_anchor_hand_values():
    """The MaxPool / ReduceSum anchors the bench checks against (tests/anchors.py), worked out by hand."""
    import anchors

    x = np.array([[1, -3], [7, 2]], dtype=np.int64).reshape(2, 2, 1)
    assert anchors.pool(x, 2, 2, 0, "sum", 8, True).item() == 7
    assert anchors.pool(x, 2, 2, 0, "max", 8, True).item() == 7
    y = np.full((3, 3, 1), -5, dtype=np.int64)  # padding never wins a max, and adds 0 to a sum
    assert (anchors.pool(y, 3, 2, 1, "max", 8, True) == -5).all()
    assert anchors.pool(y, 3, 2, 1, "sum", 8, True)[0, 0, 0] == -20
    win = np.array([3, -1, 5, 2]).reshape(1, 1, 4)
    m = np.array([1, 1, 0, 1]).reshape(1, 1, 4)
    assert anchors.pool_reduce(win, m, 2, 1, "max", 4, True).item() == 3
    assert anchors.pool_reduce(win, m, 2, 1, "sum", 4, True).item() == 4
    assert anchors.pool_reduce(win, 0 * m, 2, 1, "max", 4, True).item() == -8  # no real tap: the lowest value
