"""Hardware mode of every BiDRN module kind: Brevitas equals the exact reference of its QONNX graph
(``compile.reference.exact_reference``, float64) on every element; these shapes stay within 24 bits, so qonnx's
float32 ``execute_onnx`` equals it too (checked: the exact reference reports ``float32_exact``)."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from binaryhpe.compile.lower import load_qonnx
from binaryhpe.compile.reference import exact_reference
from binaryhpe.train.bidrn import BiDRB, BiDRN, randomize
from binaryhpe.train.config import TINY, BiDRNConfig, NumericsConfig
from binaryhpe.train.export import check_export, execute_qonnx, export_qonnx
from binaryhpe.train.hardware import is_hardware, to_hardware
from binaryhpe.train.layers import BlockResidual, LCRModule, PreAct, Stem

NC = NumericsConfig()


class Wrap(nn.Module):
    """Hardtanh pre-activation in front of a module that takes a_f (as inside a BiDRB)."""

    def __init__(self, mod):
        super().__init__()
        self.pre, self.mod = PreAct(), mod

    def forward(self, x):
        return self.mod(self.pre(x))


CASES = {
    "base_lcr_3x3": (lambda: Wrap(LCRModule(8, 8, 3, 1, ())), 8, 6),
    "down_scale_residual": (lambda: Wrap(LCRModule(8, 8, 3, 2, ("dscr",))), 8, 6),
    "fusion_up_x2": (lambda: Wrap(LCRModule(4, 8, 3, 1, ("fur",))), 4, 6),
    "fusion_up_x4_1x1": (lambda: Wrap(LCRModule(4, 16, 1, 1, ("fur",))), 4, 6),
    "fusion_down_x2": (lambda: Wrap(LCRModule(8, 4, 1, 1, ("fdr",))), 8, 6),
    "fusion_down_x4": (lambda: Wrap(LCRModule(16, 4, 1, 1, ("fdr",))), 16, 6),
    "down_sample_residual_x2": (lambda: Wrap(LCRModule(4, 8, 3, 2, ("dsar",))), 4, 6),
    "plain_binary_conv_no_lcr": (lambda: Wrap(LCRModule(4, 8, 3, 2, ())), 4, 6),
    "block_residual_fp": (lambda: Wrap(BlockResidual(4, 8, 2, "fp")), 4, 6),
    "block_residual_binary": (lambda: Wrap(BlockResidual(4, 8, 2, "binary")), 4, 6),
    "stem_maxpool": (lambda: Stem(3, 8, 7, 2, True), 3, 16),
    "bidrb_basic_down": (lambda: BiDRB("basic", 8, 16, 2, TINY), 8, 6),
    "bidrb_bottleneck": (lambda: BiDRB("bottleneck", 16, 32, 1, TINY), 16, 4),
}


def _exact(path, x: np.ndarray, mw=None, float32: bool = True) -> np.ndarray:
    """The exact reference's output; float32 holds the frame (asserted), and with ``float32`` qonnx's float32
    ``execute_onnx`` is checked equal to it."""
    run = exact_reference(load_qonnx(path) if mw is None else mw, x)
    assert run.float32_exact, f"{path}: {run.wide_nodes()} need more than 24 bits"
    if float32:
        assert np.array_equal(execute_qonnx(path, x), run.output)
    return run.output


def _inputs(c, hw, seed):
    g = torch.Generator().manual_seed(seed)
    shape = (1, c, hw, hw)
    return [torch.rand(shape, generator=g) * 2 - 1, torch.randn(shape, generator=g) * 3,
            torch.ones(shape), -torch.ones(shape), torch.full(shape, 7.0), torch.zeros(shape)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_module_kind_exact(case, tmp_path):
    make, c, hw = CASES[case]
    torch.manual_seed(0)
    m = to_hardware(randomize(make(), seed=3), NC)
    assert is_hardware(m)
    xs = _inputs(c, hw, seed=5)
    path = export_qonnx(m, xs[0], tmp_path / f"{case}.onnx", verbose=False)
    # and the worst-case frames of its lowered graph (truly saturating, accumulator extremes)
    from binaryhpe.compile.lower import lower
    from binaryhpe.compile.worstcase import worst_case_frames

    mw = load_qonnx(path)
    n_plain = len(xs)
    xs += [torch.tensor(f) for f in worst_case_frames(lower(mw)).values()]
    for i, x in enumerate(xs):
        with torch.no_grad():
            ref = m(x).numpy()
        out = _exact(path, x.numpy(), mw, float32=i < n_plain)
        assert out.shape == ref.shape
        assert np.array_equal(out, ref), f"{case}: {np.count_nonzero(out != ref)} of {ref.size} elements differ"
        # every hardware-mode output is an integer on the X grid (2^-res_frac)
        q = ref * 2.0**NC.res_frac
        assert np.array_equal(q, np.round(q))


def test_tiny_bidrn_exact_and_grid(tmp_path):
    m = to_hardware(randomize(BiDRN(TINY), seed=1))
    g = torch.Generator().manual_seed(2)
    x = torch.rand((1, 3, 16, 16), generator=g) * 2 - 1
    path = export_qonnx(m, x, tmp_path / "tiny.onnx", verbose=False)
    res = check_export(m, path, x)
    assert res["mismatches"] == 0 and res["elements"] == 32 * 8 * 8
    mw = load_qonnx(path)
    for xx in (torch.ones_like(x), -torch.ones_like(x), x * 50):
        with torch.no_grad():
            assert np.array_equal(_exact(path, xx.numpy(), mw), m(xx).numpy())


def test_hardware_mode_changes_numbers_but_float_mode_is_differentiable():
    m = randomize(BiDRN(TINY), seed=1)
    m.train()
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    m(x).sum().backward()
    grads = [p.grad for p in m.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(gr).all() for gr in grads)


def test_sign_gradient_is_eq2():
    from binaryhpe.train.quant import ApproxSign

    x = torch.tensor([-1.5, -0.5, 0.0, 0.25, 0.75, 2.0], requires_grad=True)
    ApproxSign.apply(x).sum().backward()
    # d/dx of eq. 2: 2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 outside
    expected = torch.tensor([0.0, 1.0, 2.0, 1.5, 0.5, 0.0])
    assert torch.allclose(x.grad, expected)
    assert torch.equal(ApproxSign.apply(torch.tensor([0.0, -1e-9])), torch.tensor([1.0, -1.0]))


def test_config_errors_name_the_key():
    from binaryhpe import BinaryHPEError

    with pytest.raises(BinaryHPEError, match="unknown config key 'depth'"):
        BiDRNConfig.from_dict({"depth": 50})
    with pytest.raises(BinaryHPEError, match="act_bits"):
        NumericsConfig(act_bits=40)
    with pytest.raises(BinaryHPEError, match="cannot be taken"):
        BiDRNConfig(input_size=(15, 16))
    with pytest.raises(BinaryHPEError, match="not found"):
        BiDRNConfig.from_file("/nonexistent/cfg.json")
    with pytest.raises(BinaryHPEError, match="const_bits \\+ res_bits"):
        NumericsConfig(res_bits=20, const_bits=8)
    with pytest.raises(BinaryHPEError, match="stage.block"):
        BiDRNConfig(stages=({"block": "dense", "channels": 8, "blocks": 1},))
