"""The seven baseline binarizers: binary forwards and their papers' gradients at hand-computed points."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from binaryhpe import BinaryHPEError
from binaryhpe.train import binarizers as B
from binaryhpe.train.bidrn import BiDRN
from binaryhpe.train.config import TINY


def _grad(fn, x, g=None):
    x = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    y = fn(x)
    y.backward(torch.ones_like(y) if g is None else torch.tensor(g, dtype=torch.float32))
    return y.detach().numpy(), x.grad.numpy()


# ---------------------------------------------------------------------------------------------- activations


def test_bnn_sign_ste_clip():
    y, g = _grad(B.SignSTE.apply, [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1]  # Sign(0) = +1
    assert g.tolist() == [0, 1, 1, 1, 1, 1, 0]  # 1{|x| <= 1}


def test_bireal_approxsign_piecewise_polynomial():
    conv = B.BiRealConv(1, 1, 1)
    y, g = _grad(lambda x: conv.binarize_input(x.view(1, 5, 1, 1)).view(5), [-1.5, -0.5, 0.0, 0.25, 1.0])
    assert y.tolist() == [-1, -1, 1, 1, 1]
    # derivative of the piecewise quadratic: 2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 outside
    assert np.allclose(g, [0.0, 1.0, 2.0, 1.5, 0.0])


def test_dorefa_one_bit_activation():
    y, g = _grad(B.DorefaAct.apply, [-0.5, 0.0, 0.3, 0.5, 0.7, 1.0, 1.2])
    assert y.tolist() == [0, 0, 0, 1, 1, 1, 1]  # round(clip(x, 0, 1)), in {0, 1}
    assert g.tolist() == [0, 1, 1, 1, 1, 1, 0]  # STE through the clip


def test_reactnet_rsign_learnable_threshold():
    conv = B.ReActConv(2, 1, 1)
    with torch.no_grad():
        conv.threshold.copy_(torch.tensor([0.5, -0.25]))
    x = torch.tensor([0.3, 0.0], requires_grad=True)
    y = conv.binarize_input(x.view(1, 2, 1, 1)).view(2)
    assert y.tolist() == [-1.0, 1.0]  # sign(0.3 - 0.5), sign(0 + 0.25)
    y.sum().backward()
    # ApproxSign at a = -0.2 and 0.25: 2 - 2|a| = 1.6 and 1.5; the threshold gets the negative
    assert np.allclose(x.grad.numpy(), [1.6, 1.5])
    assert np.allclose(conv.threshold.grad.numpy(), [-1.6, -1.5])


@pytest.mark.parametrize("n, omega, xs, expect", [
    (1, math.pi / 2, [0.0, 0.5, 1.0, 1.5, -0.5], [2.0, math.sqrt(2), 0.0, 0.0, math.sqrt(2)]),
    (2, math.pi / 2, [0.0, 1 / 3], [4.0, math.sqrt(3)]),  # 2 (cos(pi x / 2) + cos(3 pi x / 2))
])
def test_fda_fourier_sign_gradient(n, omega, xs, expect):
    y, g = _grad(lambda x: B.FourierSign.apply(x, n, omega), xs)
    assert set(np.abs(y).tolist()) == {1.0}
    assert np.allclose(g, expect, atol=1e-6)


# ---------------------------------------------------------------------------------------------- weights

W = [[[[0.5]], [[-2.0]], [[1.0]]]]  # one output channel, 3 inputs, 1x1: mean |w| = 3.5 / 3
G = [[[[1.0]], [[2.0]], [[3.0]]]]


def test_xnor_weight_scaling_and_gradient():
    y, g = _grad(B.XnorWeight.apply, W, G)
    a = 3.5 / 3
    assert np.allclose(y.reshape(-1), [a, -a, a])
    # alpha g 1{|w| <= 1} + sign(w) / n sum_j g_j sign(w_j), sum = 1 - 2 + 3 = 2, n = 3
    assert np.allclose(g.reshape(-1), [a + 2 / 3, -2 / 3, 3 * a + 2 / 3])
    # the same as autograd through alpha = mean|w| times a clipped straight-through sign
    w = torch.tensor(W, requires_grad=True)
    ste = w.clamp(-1, 1)
    (w.abs().mean() * (torch.sign(w).detach() - ste.detach() + ste) * torch.tensor(G)).sum().backward()
    assert np.allclose(g, w.grad.numpy())


def test_dorefa_weight_per_layer_scale_straight_through():
    y, g = _grad(B.DorefaWeight.apply, W, G)
    a = 3.5 / 3
    assert np.allclose(y.reshape(-1), [a, -a, a])
    assert np.allclose(g, G)


def test_bireal_magnitude_aware_weight_gradient():
    y, g = _grad(B.BiRealWeight.apply, W, G)
    a = 3.5 / 3
    assert np.allclose(y.reshape(-1), [a, -a, a])
    assert np.allclose(g.reshape(-1), [a * 1.0, 0.0, 0.0])  # alpha g 1{|w| < 1}


def test_reactnet_weight_gradient():
    y, g = _grad(B.ReActWeight.apply, W, G)
    a = 3.5 / 3
    assert np.allclose(y.reshape(-1), [a, -a, a])
    assert np.allclose(g.reshape(-1), [1.0, 0.0, 0.0])  # g 1{|w| < 1}, alpha detached


def test_bnn_weight():
    y, g = _grad(B.SignSTE.apply, W, G)
    assert y.reshape(-1).tolist() == [1, -1, 1]
    assert g.reshape(-1).tolist() == [1, 0, 3]


def test_recu_quantile_is_the_laplace_quantile():
    conv = B.ReCUConv(64, 8, 3, tau=0.9)
    torch.manual_seed(0)
    w1 = conv.recentred(torch.distributions.Laplace(0.3, 0.7).sample((8, 64, 3, 3)))
    # recentred per output channel
    assert np.allclose(w1.mean(dim=(1, 2, 3)).numpy(), 0, atol=1e-5)
    q = float(conv.quantile(w1))
    b = float(w1.abs().mean())
    # Laplace(0, b) CDF at Q is tau
    assert math.isclose(1 - 0.5 * math.exp(-q / b), 0.9, rel_tol=1e-6)
    # and empirically about 2 tau - 1 of the recentred weights lie inside [-Q, Q]
    inside = float((w1.abs() <= q).float().mean())
    assert abs(inside - 0.8) < 0.03
    wb = conv.binarize_weight(conv.weight)
    assert set(wb.detach().abs().unique().tolist()) == {1.0}


def test_recu_clamp_and_identity_ste():
    y, g = _grad(lambda w: B.SignIdentitySTE.apply(torch.maximum(torch.minimum(w, torch.tensor(1.5)),
                                                                 torch.tensor(-1.5))),
                 [-3.0, -1.0, 0.2, 1.4, 2.0])
    assert y.tolist() == [-1, -1, 1, 1, 1]
    assert g.tolist() == [0, 1, 1, 1, 0]  # identity STE inside the quantile clamp, zero where clamped


# ---------------------------------------------------------------------------------------------- convolutions


def _naive_conv(a, w, pad):
    """Direct loops: a (Cin, H, W), w (Cout, Cin, k, k), stride 1."""
    cin, h, wd = a.shape
    cout, _, k, _ = w.shape
    ap = np.zeros((cin, h + 2 * pad, wd + 2 * pad))
    ap[:, pad:pad + h, pad:pad + wd] = a
    out = np.zeros((cout, h, wd))
    for o in range(cout):
        for i in range(h):
            for j in range(wd):
                out[o, i, j] = np.sum(ap[:, i:i + k, j:j + k] * w[o])
    return out


def test_xnor_conv_forward_matches_naive_reference():
    torch.manual_seed(1)
    conv = B.XNORConv(2, 3, 3)
    x = torch.randn(1, 2, 5, 4)
    y = conv(x).detach().numpy()[0]
    xa, w = x.numpy()[0], conv.weight.detach().numpy()
    s = np.where(xa >= 0, 1.0, -1.0)
    alpha = np.abs(w).mean(axis=(1, 2, 3))
    wb = np.where(w >= 0, 1.0, -1.0)
    A = np.abs(xa).mean(axis=0, keepdims=True)  # channel mean of |I|, then the k x k box filter (zero padded)
    K = _naive_conv(A, np.full((1, 1, 3, 3), 1 / 9), 1)[0]
    ref = _naive_conv(s, wb, 1) * alpha[:, None, None] * K[None]
    assert np.allclose(y, ref, atol=1e-5)


@pytest.mark.parametrize("name", B.BASELINE_NAMES)
def test_binary_forward_values(name):
    """Every baseline's conv sees binary inputs and +-alpha weights (+-1 for BNN / ReCU, {0,1} inputs for DoReFa)."""
    torch.manual_seed(2)
    conv = B.make_binary_conv(name, 8, 4, 3).eval()
    x = torch.randn(2, 8, 5, 5)
    a = conv.binarize_input(x).detach()
    vals = set(a.unique().tolist())
    assert vals <= ({0.0, 1.0} if name == "dorefa" else {-1.0, 1.0}), vals
    wb = conv.binarize_weight(conv.weight).detach()
    per_out = wb.abs().reshape(4, -1)
    assert torch.allclose(per_out, per_out[:, :1].expand_as(per_out))  # one magnitude per output channel
    w = conv.weight.detach()
    if name in ("bnn", "recu"):
        expect = torch.ones(4)
    elif name == "dorefa":
        expect = w.abs().mean().expand(4)
    else:
        expect = w.abs().mean(dim=(1, 2, 3))
    assert torch.allclose(per_out[:, 0], expect, atol=1e-6)
    assert getattr(conv, "binary_weights", False)  # the Params/OPs counter sees a binary layer


def test_registry_and_errors():
    assert set(B.BINARIZERS) == set(B.BASELINE_NAMES)
    assert set(B.BINARIZER_NAMES) == set(B.BASELINE_NAMES) | {"bidrn", "fp"}
    with pytest.raises(BinaryHPEError, match="'xor'"):
        B.make_binary_conv("xor", 4, 4, 3)
    with pytest.raises(BinaryHPEError, match="bidrn"):
        B.make_binary_conv("bidrn", 4, 4, 3)
    with pytest.raises(BinaryHPEError, match="tau"):
        B.set_recu_tau(torch.nn.Identity(), 1.5)


@pytest.mark.parametrize("name", B.BINARIZER_NAMES)
def test_backbone_same_layout_as_bidrn(name):
    torch.manual_seed(3)
    m = B.build_backbone(name, TINY)
    ref = BiDRN(TINY)
    x = torch.rand(2, 3, *TINY.input_size) * 2 - 1
    y = m(x)
    assert y.shape == ref(x).shape
    assert m.out_channels == ref.out_channels
    if name not in ("bidrn",):
        assert len(m.blocks) == len(ref.blocks)
        kinds = [type(c) for blk in m.blocks for c in blk.convs]
        expect = torch.nn.Conv2d if name == "fp" else B.BINARIZERS[name]
        assert all(k is expect for k in kinds)
    y.square().mean().backward()
    grads = [p.grad for n, p in m.named_parameters() if not n.startswith("stem")]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_bireal_reactnet_per_conv_shortcut():
    """Bi-Real: the real-valued input is added around every conv with equal channels (stride 1)."""
    blk = B.BinaryBlock("bireal", "basic", 4, 4, 1).eval()
    with torch.no_grad():
        for conv in blk.convs:
            conv.weight.zero_()  # alpha = 0: each binary conv outputs 0
        for bn in blk.bns:
            bn.running_mean.zero_()
            bn.running_var.fill_(1 - bn.eps)
    x = torch.rand(1, 4, 3, 3) * 0.5 - 0.25  # inside (-1, 1): Hardtanh is the identity
    # conv1: 0 + x; Hardtanh; conv2: 0 + x; + identity block shortcut x; Hardtanh
    assert torch.allclose(blk(x), F.hardtanh(2 * x), atol=1e-6)


def test_recu_tau_schedule_sets_every_conv():
    m = B.build_backbone("recu", TINY)
    B.set_recu_tau(m, 0.85)
    taus = {c.tau for c in m.modules() if isinstance(c, B.ReCUConv)}
    assert taus == {0.85}
