"""Worst-case frames by construction (compile/worstcase.py): they reach the bounds they target, they are truly
saturating, and on every one of them the compiler's integer reference equals the exact QONNX reference."""

import numpy as np
import pytest
import torch

from binaryhpe import BinaryHPEError
from binaryhpe.compile import reference as R
from binaryhpe.compile import worstcase as W
from binaryhpe.compile.lower import load_qonnx, lower
from binaryhpe.compile.passes import optimize
from binaryhpe.train.bidrn import BiDRN, randomize
from binaryhpe.train.config import TINY
from binaryhpe.train.export import export_qonnx
from binaryhpe.train.hardware import to_hardware
from test_train_exact import CASES, NC


def boost(m, gain: float, alpha: float | None = None):
    """Test weights: every conv / linear weight times ``gain`` (alpha and the fixed-point sums grow with it),
    so the saturating formats downstream can be reached. ``alpha``: also scale each binary conv's latent
    weights so that its mean abs(w), eq. 4's alpha, averages ``alpha`` (alpha follows the weights; a random
    BiDRN's is about 0.1)."""
    from binaryhpe.train.layers import LCRConv

    with torch.no_grad():
        for _, p in m.named_parameters():
            if p.dim() > 1:
                p.mul_(gain)
        if alpha is not None:
            for mod in m.modules():
                if isinstance(mod, LCRConv):
                    mod.conv.weight.mul_(alpha / mod.conv.weight.abs().mean())
    return m


def _compile(m, shape, path):
    mw = load_qonnx(export_qonnx(m, torch.zeros(shape), path, verbose=False))
    return mw, optimize(lower(mw))


@pytest.mark.parametrize("case", sorted(CASES))
def test_module_kind_worst_case(case, tmp_path):
    make, c, hw = CASES[case]
    torch.manual_seed(0)
    m = to_hardware(boost(randomize(make(), seed=3), 8.0), NC)
    mw, g = _compile(m, (1, c, hw, hw), tmp_path / f"{case}.onnx")
    ints = W.worst_case_int_frames(g)
    rows = W.reach(g, ints)
    first = [lay.name for lay, _ in W.first_level_mvus(g)]
    assert first, f"{case}: no matrix-vector unit sees the input through a monotone chain"
    # the weight-sign pattern reaches the largest and the smallest sum the weights allow, exactly
    W.assert_reached(rows, layers=first)
    for name in first:
        lay = g.layer(name)
        lo, hi = W.mvu_bounds(lay)
        r = next(r for r in rows if r["layer"] == name)
        if type(lay).__name__ == "XnorMvu":
            assert (r["lo"], r["hi"]) == (-lay.n, lay.n)  # +-N: every tap agrees with the weight
        assert (r["lo"], r["hi"]) == (int(lo.min()), int(hi.max()))
    # on every constructed frame the compiler's reference equals the exact reference, tensor by tensor
    for name, x in W.worst_case_frames(g).items():
        cmp = R.compare_with_onnx(g, mw, x)
        assert cmp["first_mismatch"] is None and cmp["output_exact"], (name, cmp["first_mismatch"])
        assert cmp["float32_exact"]  # these small layers stay below 2^24 (test_reference covers beyond)


def test_saturating_frames_are_truly_saturating(tmp_path):
    make, c, hw = CASES["stem_maxpool"]
    m = to_hardware(boost(randomize(make(), seed=3), 8.0), NC)
    mw, g = _compile(m, (1, c, hw, hw), tmp_path / "stem.onnx")
    rlo, rhi = W.input_real_range(g)
    assert (rlo, rhi) == (-1.0, 1.0 - 2.0**-7)
    frames = W.worst_case_frames(g)
    assert {"saturate_hi", "saturate_lo", "checker", "random_sat_0"} <= set(frames)
    for name, x in frames.items():
        # every element beyond one end of the input's real range: the quantizer clamps each one
        assert np.all((x > rhi) | (x < rlo)), name
        xi = R.hw_input(g, R.onnx_context(mw, x))
        assert set(np.unique(xi)) <= {-128, 127}, name
    # the frames the flow simulated before (all 4.0) give the same integers as all ones: not a saturation test
    same = [R.hw_input(g, R.onnx_context(mw, np.full((1, c, hw, hw), v, np.float32))) for v in (1.0, 4.0)]
    assert np.array_equal(*same)
    # the stem's fixed-point sum and the 16-bit residual format after it reach both ends
    rows = W.reach(g, W.worst_case_int_frames(g))
    W.assert_reached(rows, kinds=["FxpMvu"])
    rq = [r for r in rows if r["kind"] == "Requant" and r["lo"] == -2**15]
    assert rq
    W.assert_reached(rq)
    with pytest.raises(BinaryHPEError, match="not its bound"):  # the checker fails when a bound is missed
        W.assert_reached(W.reach(g, {"zeros": np.zeros(g.tensors[g.input].shape, np.int64)}), kinds=["FxpMvu"])


def test_tiny_bidrn_reaches_the_residual_saturation(tmp_path):
    """The network-level test the issue asks for: on the tiny BiDRN (test weights: conv weights x8, binary
    convs' alpha about 8), the worst-case frames saturate the 16-bit block outputs (eq. 11 sums), and the exact
    reference equals the compiler's integer reference on every frame."""
    m = to_hardware(boost(randomize(BiDRN(TINY), seed=1), 8.0, alpha=8.0))
    mw, g = _compile(m, (1, 3, 16, 16), tmp_path / "tiny.onnx")
    ints = W.worst_case_int_frames(g)
    rows = W.reach(g, ints)
    W.assert_reached(rows, layers=[lay.name for lay, _ in W.first_level_mvus(g)])
    blocks = [r for r in rows if r["kind"] == "JoinAdd" and r["layer"].rsplit("/", 2)[-2].startswith("blocks.")
              and r["layer"].endswith("/Add")]
    assert len(blocks) == len(m.blocks)
    assert all(r["lo"] == -2**15 and r["hi"] == 2**15 - 1 for r in blocks)
    W.assert_reached(blocks, sides=("hi",))
    assert any(r["hit_lo"] for r in blocks), [(r["layer"], r["min"]) for r in blocks]
    for name, x in W.worst_case_frames(g).items():
        cmp = R.compare_with_onnx(g, mw, x)
        assert cmp["first_mismatch"] is None and cmp["output_exact"], (name, cmp["first_mismatch"])


def test_search_finds_a_bound_the_start_misses(tmp_path):
    make, c, hw = CASES["stem_maxpool"]
    m = to_hardware(boost(randomize(make(), seed=3), 8.0), NC)
    _, g = _compile(m, (1, c, hw, hw), tmp_path / "stem.onnx")
    start = {"saturate_hi": W.worst_case_int_frames(g)["saturate_hi"]}
    rows = W.reach(g, start)
    missed = [(r["layer"], s) for r in rows if r["kind"] in W.SATURATING for s in ("lo", "hi") if not r[f"hit_{s}"]]
    assert missed
    found = W.search_saturation(g, start, budget=40, seed=1)
    assert found
    for key, frame in found.items():
        _, layer, side = key.split(":")
        r = next(r for r in W.reach(g, {key: frame}) if r["layer"] == layer)
        assert r[f"hit_{side}"]


def test_cancelling_weights():
    rng = np.random.default_rng(0)
    signs = np.where(rng.random(2048) < 0.5, 1, -1)
    w = W.cancelling_weights(signs, 4, rng=rng)
    assert w.shape == (4, 2048) and np.abs(w).max() <= 127 and np.all(w % 2 != 0)
    a = np.where(signs > 0, 127, -128)
    prods = w * a
    partial = np.cumsum(prods, axis=1)
    assert np.all(partial.max(axis=1) > 2**24)           # the running sum passes 2^24 ...
    assert np.all(np.abs(prods.sum(axis=1)) < 2**22)     # ... and the result is small
