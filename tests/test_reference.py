"""The exact reference (compile/reference.py) against float32 executions and the compiler's integer reference.

Issue 14's failure, reproduced: a plain Brevitas model with one 2048-channel 1x1 fixed-point convolution (a
paper-scale Block Residual) on a truly saturating worst-case frame sums past 2^24; float32 executions
(qonnx's execute_onnx, PyTorch) round, the float64 reference equals ``HwGraph.execute`` on every element.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn

from binaryhpe import BinaryHPEError
from binaryhpe.compile import reference as R
from binaryhpe.compile import worstcase as W
from binaryhpe.compile.lower import load_qonnx, lower
from binaryhpe.compile.passes import optimize
from binaryhpe.train.export import export_qonnx

CIN, COUT = 2048, 256


class WideConv(nn.Module):
    """Q(8,7) input, one 1x1 conv with 8-bit fixed-point weights, a fixed-point output quantizer."""

    def __init__(self, out_bits, out_frac):
        from brevitas.nn import QuantConv2d, QuantIdentity

        from binaryhpe.train.quant import fixed_act, fixed_weight

        super().__init__()
        self.q_in = QuantIdentity(act_quant=fixed_act(8, 7), return_quant_tensor=False)
        self.conv = QuantConv2d(CIN, COUT, 1, bias=False, weight_quant=fixed_weight(8))
        self.q_out = QuantIdentity(act_quant=fixed_act(out_bits, out_frac), return_quant_tensor=False)

    def forward(self, x):
        return self.q_out(self.conv(self.q_in(x)))


def _signs(seed=0):
    rng = np.random.default_rng(seed)
    s = np.where(rng.random(CIN) < 0.5, 1, -1)
    if np.sum(s > 0) % 2 == 0:  # an odd count of +127 inputs makes every sum odd: float32 must round it
        s[np.argmax(s < 0)] = 1
    return s


def _build(tmp_path, weights, out_bits, out_frac, name):
    m = WideConv(out_bits, out_frac)
    with torch.no_grad():
        m.conv.weight.copy_(torch.tensor(weights.reshape(COUT, CIN, 1, 1) / 128.0))
    m.eval()
    x0 = torch.zeros(1, CIN, 1, 1)
    mw = load_qonnx(export_qonnx(m, x0, tmp_path / f"{name}.onnx", verbose=False))
    g = optimize(lower(mw))
    mvu = next(lay for lay in g.layers if type(lay).__name__ == "FxpMvu")
    assert np.array_equal(mvu.weights, weights), "the lowered integer weights are the ones set"
    return m, mw, g


def test_float32_rounds_past_2_24_and_the_exact_reference_does_not(tmp_path):
    signs = _signs()
    weights = W.cancelling_weights(signs, COUT, rng=np.random.default_rng(1), lead=1.0)  # all products > 0
    m, mw, g = _build(tmp_path, weights, 28, 14, "wide")  # output grid = accumulator grid
    frames = W.worst_case_frames(g)
    x = frames["acc_max:" + next(lay.name for lay in g.layers if type(lay).__name__ == "FxpMvu")]
    # truly saturating: every element lies beyond the input format's real range [-1, 127/128]
    assert np.all(np.abs(x) > 1.0)
    assert np.array_equal(np.sign(x.reshape(-1)), signs)

    run = R.exact_reference(mw, x)
    assert not run.float32_exact and run.max_bits == 25 and [w["op"] for w in run.wide_nodes()] == ["Conv", "Quant"]
    env = g.execute(R.hw_input(g, run.context))
    acc = env[g.layers[[type(lay).__name__ for lay in g.layers].index("FxpMvu")].outputs[0]]
    # the sum by hand, in Python integers: top 127 for +1 inputs, bottom -128 for -1 inputs
    a = np.where(signs > 0, 127, -128)
    expect = np.array([sum(int(w) * int(v) for w, v in zip(row, a)) for row in weights[:4]])
    assert np.array_equal(acc.reshape(-1)[:4], expect) and acc.min() > 2**24 and np.all(acc % 2 == 1)
    hw = g.tensors[g.output].fmt.to_real(env[g.output])
    assert np.array_equal(R.nchw_to_hwc(run.output), hw), "exact reference == compiler's integer reference"

    f32 = R.nchw_to_hwc(R.float32_context(mw, x)[mw.graph.output[0].name])
    bad32 = int(np.count_nonzero(f32 != hw))
    with torch.no_grad():
        pt32 = m(torch.tensor(x)).numpy()
        pt64 = m.double()(torch.tensor(x, dtype=torch.float64)).numpy()
    assert bad32 == COUT, f"float32 execute_onnx differs on {bad32} of {COUT} outputs (odd sums past 2^24)"
    assert np.count_nonzero(pt32 != run.output) == COUT
    assert np.array_equal(pt64, run.output), "PyTorch hardware mode in double equals the exact reference"

    cmp = R.compare_with_onnx(g, mw, x)
    assert cmp["first_mismatch"] is None and cmp["output_exact"] and cmp["float32_exact"] is False
    # the generator's worst-case frames reach the accumulator's bounds, both signs, past 2^24
    rows = W.reach(g, W.worst_case_int_frames(g))
    W.assert_reached(rows, kinds=["FxpMvu"])
    assert all(r["past_2_24"] for r in rows if r["kind"] == "FxpMvu")


def test_partial_sums_past_2_24_with_a_small_result(tmp_path):
    signs = _signs(2)
    weights = W.cancelling_weights(signs, COUT, rng=np.random.default_rng(3), lead=0.54)
    _, mw, g = _build(tmp_path, weights, 16, 3, "cancel")
    x = np.where(signs > 0, 4.0, -4.0).reshape(1, CIN, 1, 1).astype(np.float32)
    run = R.exact_reference(mw, x)
    # the result is far below 2^24 but the partial sums (the exact bound sum |w| |x|) are not
    acc = g.execute(R.hw_input(g, run.context))
    mvu_out = next(lay for lay in g.layers if type(lay).__name__ == "FxpMvu").outputs[0]
    assert np.abs(acc[mvu_out]).max() < 2**22
    assert run.max_bits == 25 and not run.float32_exact
    cmp = R.compare_with_onnx(g, mw, x)
    assert cmp["first_mismatch"] is None and cmp["output_exact"]


def test_to_float64_and_kernels_match_qonnx_where_float32_holds(tmp_path):
    """On a graph whose widths float32 holds, the exact execution equals qonnx's float32 one on every tensor."""
    from binaryhpe.train.bidrn import BiDRN, randomize
    from binaryhpe.train.config import TINY
    from binaryhpe.train.hardware import to_hardware

    m = to_hardware(randomize(BiDRN(TINY), seed=1))
    x = torch.rand((1, 3, 16, 16), generator=torch.Generator().manual_seed(2)) * 2 - 1
    mw = load_qonnx(export_qonnx(m, x, tmp_path / "tiny.onnx", verbose=False))
    m64 = R.float64_model(mw)
    from onnx import TensorProto

    assert all(i.data_type != TensorProto.FLOAT for i in m64.graph.initializer)
    assert all(v.type.tensor_type.elem_type != TensorProto.FLOAT for v in m64.graph.value_info)
    run = R.exact_reference(mw, x.numpy())
    assert run.float32_exact and 0 < run.max_bits <= 24
    ctx32 = R.float32_context(mw, x.numpy())
    ops = {n.op_type for n in mw.graph.node}
    assert {"Conv", "PRelu", "AveragePool", "Quant", "BipolarQuant"} <= ops
    for n in mw.graph.node:
        for o in n.output:
            assert np.array_equal(ctx32[o].astype(np.float64), run.context[o]), f"{n.name} ({n.op_type})"
    with torch.no_grad():
        assert np.array_equal(m(x).numpy(), run.output)


def test_widths_and_errors():
    assert R.lsb_exponent(np.array([0.5, 0.25, 3.0])) == -2
    assert R.lsb_exponent(np.zeros(3)) is None
    assert R.significant_bits(np.array([2.0**24 + 1])) == 25
    assert R.significant_bits(np.array([0.75, -0.5])) == 2
    with pytest.raises(BinaryHPEError, match="non-finite"):
        R.lsb_exponent(np.array([np.inf]))
