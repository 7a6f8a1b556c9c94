"""RTL tests of the stream plumbing (fork, concat, split, dwc) against the Python kinds' references."""

import json
import pathlib
import sys

import pytest

from binaryhpe.compile.kinds.plumbing import Concat, Dwc, Fork, Split
from binaryhpe.sim.runner import run_cocotb
from binaryhpe.sim.toolchain import rtl_dir

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE / "rtl"))

CASES = [
    (Fork, dict(h=2, w=3, c=4, elem_w=8, lanes=2)),
    (Concat, dict(h=2, w=3, c1=4, c2=2, elem_w=6, lanes=2)),
    (Split, dict(h=3, w=2, c1=2, c2=6, elem_w=5, lanes=2)),
    (Dwc, dict(h=2, w=2, c=8, elem_w=4, in_lanes=4, out_lanes=1)),
    (Dwc, dict(h=2, w=3, c=6, elem_w=3, in_lanes=2, out_lanes=6)),
]


@pytest.mark.parametrize("cls,args", CASES, ids=[f"{c.__name__}{i}" for i, (c, _) in enumerate(CASES)])
def test_plumbing(cls, args):
    kind = cls(name="dut", **args)
    srcs = [rtl_dir() / f"{kind.rtl_module}.sv"]
    run_cocotb(kind.rtl_module, "cocotb_plumbing", kind.rtl_params(), sources=srcs, test_dir=HERE / "rtl",
               extra_env={"KIND": cls.__name__, "KIND_ARGS": json.dumps(args), "SEED": 3, "STALL": 0.4})


def test_plumbing_kind_checks():
    import numpy as np

    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    b = -np.arange(2 * 3 * 2).reshape(2, 3, 2)
    cat = Concat(name="cat", h=2, w=3, c1=4, c2=2, lanes=2)
    (y,) = cat.execute([a, b])
    assert y.shape == (2, 3, 6) and (y[..., :4] == a).all() and (y[..., 4:] == b).all()
    ya, yb = Split(name="sp", h=2, w=3, c1=4, c2=2, lanes=2).execute([y])
    assert (ya == a).all() and (yb == b).all()
    with pytest.raises(ValueError, match="sp2: Lanes=4 must divide C2=2"):
        Split(name="sp2", h=1, w=1, c1=4, c2=2, lanes=4)
    with pytest.raises(ValueError, match="must divide the other"):
        Dwc(name="d", c=12, in_lanes=4, out_lanes=6)


def test_anchor_hand_values():
    """The Concat / Split / Identity anchors the bench checks against (tests/anchors.py)."""
    import numpy as np

    import anchors

    a = np.arange(6).reshape(1, 2, 3)
    b = -np.arange(2).reshape(1, 2, 1) - 1
    cat = anchors.concat(a, b)
    assert cat.tolist() == [[[0, 1, 2, -1], [3, 4, 5, -2]]]
    left, right = anchors.split(cat, 3)
    assert (left == a).all() and (right == b).all()
    f1, f2 = anchors.identity(a, 2)
    assert (f1 == a).all() and (f2 == a).all()


def test_a_kind_whose_execute_is_wrong_is_caught(monkeypatch):
    """The benches' expected values come from the anchor, and a kind's execute that differs from it fails the
    bench (here a Concat whose execute swaps its operands)."""
    import numpy as np

    from cocotb_plumbing import anchored

    a, b = np.arange(6).reshape(1, 2, 3), -np.arange(4).reshape(1, 2, 2) - 1
    kind = Concat(name="cat", h=1, w=2, c1=3, c2=2, lanes=1)
    assert np.array_equal(anchored(kind, [a, b])[0], np.concatenate([a, b], axis=-1))
    monkeypatch.setattr(Concat, "execute", lambda self, ins: [np.concatenate([ins[1], ins[0]], axis=-1)])
    with pytest.raises(AssertionError, match="differs from the QONNX anchor"):
        anchored(kind, [a, b])
