"""The model side against the paper: baselines see the image at paper scale, and BiDRN trains eq. 4.

- Every backbone (the seven baselines, full precision, BiDRN) in the ResNet-50 layout of the body and hand
  encoders must give different outputs for different images. A stem that ends in ReLU feeds all-(+1) binary
  inputs to the first block (Sign(0) = +1), and when that block changes shape nothing else of the image gets
  through (eq. 3's argument).
- BiDRN's own stem ends in BatchNorm, not ReLU: the first block's binary convolutions (after its Hardtanh
  pre-activation, eq. 3) see inputs of both signs, in float and in hardware mode, in the tiny layout and in
  the paper's ResNet-50 layout.
- BiDRN's weight scale is eq. 4, alpha_i = ||w_i||_1 / (Cin K K), recomputed from the current latent weights at
  every step, with its gradient, not a free parameter initialised once.
"""

import pytest
import torch

from binaryhpe.train.bidrn import BiDRN, example_input, randomize
from binaryhpe.train.binarizers import BINARIZER_NAMES, build_backbone
from binaryhpe.train.config import TINY, bidrn_config
from binaryhpe.train.hardware import to_hardware
from binaryhpe.train.layers import LCRConv


@pytest.mark.parametrize("name", BINARIZER_NAMES)
def test_two_images_give_two_outputs_at_paper_layout(name):
    torch.manual_seed(0)
    net = build_backbone(name, bidrn_config(50, input_size=(64, 64)))
    for m in net.modules():  # BatchNorm statistics: the plain average of a few training-mode passes
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        for i in range(3):
            net(torch.rand(2, 3, 64, 64) * 2 - 1)
        net.eval()
        g = torch.Generator().manual_seed(1)
        a, b = (torch.rand(1, 3, 64, 64, generator=g) * 2 - 1 for _ in range(2))
        ya, yb = net(a), net(b)
    assert ya.shape == yb.shape and ya.shape[1] == 2048
    diff = (ya - yb).abs()
    # not merely a rounding difference: a clear share of the output elements changes
    assert (diff > 1e-4).float().mean() > 0.05, f"{name}: two images give (almost) the same output"


@pytest.mark.parametrize("layout", ["tiny", "bidrn-50"])
@pytest.mark.parametrize("mode", ["float", "hardware"])
def test_first_block_binary_conv_inputs_take_both_signs(layout, mode):
    cfg = TINY if layout == "tiny" else bidrn_config(50, input_size=(64, 64))
    net = randomize(BiDRN(cfg), seed=0).eval()
    if mode == "hardware":
        to_hardware(net)
    first = net.blocks[0]
    convs = [(n, m) for n, m in first.named_modules() if isinstance(m, LCRConv)]
    # the convolutions that take the block input's pre-activation: the first LCR module's branches (and a
    # binarized Block Residual)
    takes_input = [(n, m) for n, m in convs if n.startswith(("convs.0.", "br."))]
    assert takes_input, "the first block has no binary convolution on its input"
    seen = {}
    hooks = [(m.conv_hw if mode == "hardware" else m.conv).register_forward_hook(
        lambda mod, args, out, n=n: seen.setdefault(n, []).append(args[0].detach().clone())) for n, m in takes_input]
    with torch.no_grad():
        net(example_input(cfg, seed=3))
        net(example_input(cfg, seed=4))
    for h in hooks:
        h.remove()
    assert set(seen) == {n for n, _ in takes_input}
    for n, (b, b2) in seen.items():
        assert set(torch.unique(b).tolist()) == {-1.0, 1.0}, f"{n}: binary input values {torch.unique(b).tolist()}"
        # a ReLU before the pre-activation makes every input +1 (no -1 at all, the same for every image); with
        # the BatchNorm output the sign follows the image (after the 3x3/2 max pool of the ResNet stem, which
        # takes the largest of 9 values, mostly +1, but the -1s are where the image is dark)
        neg, moved = float((b < 0).float().mean()), float((b != b2).float().mean())
        print(f"{layout} {mode} {n}: -1 share {neg:.4f}, changed by another image {moved:.4f}")
        assert neg > 0.003, f"{layout} {mode}: first block {n}: only {neg:.4f} of the binary inputs are -1"
        assert moved > 0.003, f"{layout} {mode}: first block {n}: two images give the same binary inputs"


def _eq4_alpha(w):
    return w.detach().abs().sum(dim=(1, 2, 3)) / w[0].numel()


def test_bidrn_alpha_is_eq4_after_optimizer_steps():
    torch.manual_seed(0)
    m = LCRConv(8, 8, 3)
    opt = torch.optim.Adam(m.parameters(), lr=0.05)  # large steps: a free alpha would drift away from mean |w|
    names = [n for n, _ in m.conv.named_parameters()]
    assert names == ["weight"], f"eq. 4's alpha is not a parameter, found {names}"
    for _ in range(3):
        y = m(torch.rand(2, 8, 6, 6) * 2 - 1)
        loss = (y - 1.0).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        w = m.conv.weight
        qw = m.conv.quant_weight()
        assert torch.allclose(qw.scale.detach().flatten(), _eq4_alpha(w), rtol=1e-6, atol=0)
        # the binarized weights are alpha_i Sign(w) of the latent weights (not clamped in place)
        sign = torch.where(w >= 0, 1.0, -1.0)
        assert torch.allclose(qw.value.detach(), _eq4_alpha(w).view(-1, 1, 1, 1) * sign, rtol=1e-6, atol=0)


def test_bidrn_weight_gradient_is_eq4_derivative():
    torch.manual_seed(1)
    m = LCRConv(4, 4, 3)
    w = m.conv.weight
    g = torch.randn_like(w)
    (m.conv.quant_weight().value * g).sum().backward()
    n = w[0].numel()
    alpha = w.detach().abs().sum(dim=(1, 2, 3), keepdim=True) / n
    s = torch.where(w.detach() >= 0, 1.0, -1.0)
    # d(alpha_i Sign(w_ij))/dw: Sign's eq.-2 approximation (2 - 2|w|) times alpha, plus the path through alpha
    expect = alpha * g * (2 - 2 * w.detach().abs()).clamp(min=0) + s * (g * s).sum(dim=(1, 2, 3), keepdim=True) / n
    assert torch.allclose(w.grad, expect, rtol=1e-5, atol=1e-7)


def test_bnn_latent_weights_are_clipped_after_every_step():
    """BNN's Algorithm 1 clips the latent weights to [-1, 1] after each update; without it a weight past 1 never
    gets a gradient again from the clipped STE (its sign is frozen). Both training loops call the clip."""
    from binaryhpe.train import proxy_bench as P
    from binaryhpe.train.binarizers import BNNConv, after_optimizer_step

    torch.manual_seed(0)
    net = build_backbone("bnn", bidrn_config(18, input_size=(32, 32)))
    opt = torch.optim.SGD(net.parameters(), lr=50.0)  # one huge step: many latent weights leave [-1, 1]
    net(torch.rand(2, 3, 32, 32) * 2 - 1).square().mean().backward()
    opt.step()
    convs = [m for m in net.modules() if isinstance(m, BNNConv)]
    outside = sum(int((m.weight.abs() > 1).sum()) for m in convs)
    assert outside > 100, "the step was meant to push weights out of [-1, 1]"
    after_optimizer_step(net)
    assert all(float(m.weight.abs().max()) <= 1.0 for m in convs)
    assert sum(int((m.weight.abs() == 1).sum()) for m in convs) >= outside  # clipped onto +-1, not reset

    # the proxy benchmark's loop applies it (a large learning rate would push weights past 1 otherwise)
    data = {"img": torch.rand(16, 3, *P.SIZE), "joints": torch.rand(16, P.JOINTS, 2)}
    model = P.train_row("bnn", data, P.ProxySize(train=16, test=16, steps=3, batch=16, seeds=(0,), lr=2.0), 0)
    ws = [m.weight for m in model.modules() if isinstance(m, BNNConv)]
    assert all(float(w.abs().max()) <= 1.0 for w in ws) and any(bool((w.abs() == 1).any()) for w in ws)


def test_recu_tau_schedule_is_exponential_and_reaches_099():
    """ReCU's released training code: tau = A e^(epoch/epochs) + B from 0.85 to 0.99 (not linear)."""
    import math

    from binaryhpe.train import proxy_bench as P
    from binaryhpe.train.binarizers import ReCUConv, recu_tau

    e = math.e
    assert recu_tau(0.0) == pytest.approx(0.85, abs=1e-12) and recu_tau(1.0) == pytest.approx(0.99, abs=1e-12)
    # halfway: 0.85 + 0.14 (sqrt(e) - 1) / (e - 1), below the linear schedule's 0.92
    assert recu_tau(0.5) == pytest.approx(0.85 + 0.14 * (math.sqrt(e) - 1) / (e - 1), abs=1e-12)
    assert recu_tau(0.5) < 0.905
    seen = []
    orig = ReCUConv.forward

    def spy(self, x):
        seen.append(self.tau)
        return orig(self, x)

    ReCUConv.forward = spy
    try:
        data = {"img": torch.rand(16, 3, *P.SIZE), "joints": torch.rand(16, P.JOINTS, 2)}
        P.train_row("recu", data, P.ProxySize(train=16, test=16, steps=5, batch=16, seeds=(0,)), 0)
    finally:
        ReCUConv.forward = orig
    per_step = sorted(set(seen))
    assert per_step == pytest.approx([recu_tau(s / 4) for s in range(5)], abs=1e-12)
