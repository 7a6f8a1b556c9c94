"""RTL tests of the sliding-window generator bhpe_swg against SlidingWindow (windows, mask, cycles)."""

import json
import pathlib
import sys

import pytest

from binaryhpe.compile.kinds.swg import SlidingWindow
from binaryhpe.sim.runner import run_cocotb
from binaryhpe.sim.toolchain import rtl_dir

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE / "rtl"))

CASES = {
    "conv3x3_s1_p1": dict(h=5, w=4, c=4, k=3, s=1, pad=1, elem_w=8, lanes=2),
    # ResNet-stem-like 3x3 s2 pad 1 on even sizes: OH = floor(7/2) + 1 = 4, OW = 3
    "pool3x3_s2_p1": dict(h=8, w=6, c=2, k=3, s=2, pad=1, elem_w=6, lanes=1),
    # 2x2 s2 with an odd size: the last row and column are consumed and ignored
    "pool2x2_s2": dict(h=5, w=7, c=3, k=2, s=2, pad=0, elem_w=8, lanes=3),
    # strided 1x1 conv on an even size: rows/columns 0, 2, 4 of 6 / 0..6 of 8
    "sub1x1_s2_bin": dict(h=6, w=8, c=8, k=1, s=2, pad=0, elem_w=1, lanes=4, signed=False),
    "pass1x1_bin": dict(h=3, w=4, c=8, k=1, s=1, pad=0, elem_w=1, lanes=8, signed=False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_swg(case):
    args = CASES[case]
    kind = SlidingWindow(name=case, **args)
    srcs = [rtl_dir() / "bhpe_fifo.sv", rtl_dir() / "bhpe_swg.sv"]
    run_cocotb("bhpe_swg", "cocotb_swg", kind.rtl_params(), sources=srcs, test_dir=HERE / "rtl",
               extra_env={"KIND": "SlidingWindow", "KIND_ARGS": json.dumps(args), "SEED": 11, "STALL": 0.4})


def test_swg_rejects_bad_shapes():
    with pytest.raises(ValueError, match="smaller than the window"):
        SlidingWindow(name="bad", h=2, w=6, c=1, k=5, s=1, pad=1)
    with pytest.raises(ValueError, match="padding"):
        SlidingWindow(name="bad", h=6, w=6, c=1, k=3, s=1, pad=3)
    g = SlidingWindow(name="floor", h=64, w=48, c=1, k=1, s=2, pad=0)
    assert (g.oh, g.ow) == (32, 24)
    with pytest.raises(ValueError, match="Lanes"):
        SlidingWindow(name="bad", h=4, w=4, c=3, k=3, s=1, pad=1, lanes=2)


def test_anchor_hand_values():
    """The Im2Col anchor the bench checks against (tests/anchors.py), on a frame worked out by hand."""
    import numpy as np

    import anchors

    x = np.arange(1, 5).reshape(2, 2, 1)  # [[1, 2], [3, 4]]
    win, mask = anchors.sliding_window(x, k=3, s=1, pad=1, elem_w=8, signed=True)
    assert win.shape == (2, 2, 9) and mask.shape == (2, 2, 9)
    # the top-left window (ky, kx order): padding row, then [pad, 1, 2], then [pad, 3, 4]
    assert win[0, 0].tolist() == [0, 0, 0, 0, 1, 2, 0, 3, 4]
    assert mask[0, 0].tolist() == [0, 0, 0, 0, 1, 1, 0, 1, 1]
    win2, _ = anchors.sliding_window(np.arange(10).reshape(5, 2, 1), k=2, s=2, pad=0, elem_w=8, signed=True)
    assert win2.shape == (2, 1, 4) and win2[1, 0].tolist() == [4, 5, 6, 7]  # the odd last row is dropped
