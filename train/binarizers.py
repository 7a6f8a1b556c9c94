"""The seven baseline binarizers of Table 1 as drop-in binary convolutions, and one backbone builder for all.

Each baseline is a ``nn.Conv2d`` subclass (``binary_weights = True``, the marker ``binaryhpe.train.opcount``
reads) whose forward binarizes its input and its weights and whose backward is its own paper's gradient,
written as a ``torch.autograd.Function``. They are selected by name through ``BINARIZERS`` /
``make_binary_conv``; ``build_backbone(name, cfg)`` builds a backbone with the stage layout of a
``BiDRNConfig`` (stem, basic / bottleneck blocks, strides, channels), so that every binarizer is compared in
"the same backbone" as BiDRN (Section 4.2: the ResNet convs are replaced by the method's binary conv, the rest
of the model unchanged).

Forward / backward of each method (docs/wholebody.md has them as a table; each class docstring states its own):
- ``bnn`` (Hubara 2016): sign of inputs and weights, STE clipped to [-1, 1] for both; latent weights clipped to
  [-1, 1] after every optimiser step (``after_optimizer_step``).
- ``xnor`` (Rastegari 2016): sign(x) times K (box-filtered channel mean of abs(x)); weights alpha sign(w), alpha
  the mean abs(w) per output channel, gradient alpha g 1{abs(w) <= 1} + sign(w) sum(g sign(w)) / n.
- ``dorefa`` (Zhou 2016): 1-bit activations round(clip(x, 0, 1)) in {0, 1}; weights E(abs(w)) sign(w) (one
  scale per layer); straight-through gradients.
- ``bireal`` (Liu 2018): ApproxSign (piecewise-polynomial gradient 2 - 2 abs(x)); weights alpha sign(w) with
  the magnitude-aware gradient alpha g 1{abs(w) < 1}; a real shortcut around every conv.
- ``reactnet`` (Liu 2020): RSign sign(x - t) with a learnable threshold per input channel, RPReLU, weights
  alpha sign(w) with gradient g 1{abs(w) < 1}; a real shortcut around every conv.
- ``recu`` (Xu 2021b): weights recentred, normalised, clamped at the Laplace tau-quantile (tau rising
  exponentially from 0.85 to 0.99, ``recu_tau``), signed with an identity STE; learnable output scale;
  activations divided by their per-sample std in training, ApproxSign.
- ``fda`` (Xu 2021a): the Fourier-series gradient of sign for weights and activations, and a noise
  adaptation module.

Stem (``BaselineBackbone``): full-precision conv + BN, then the method's own pre-activation, then the 3x3/2
max pool. For full precision that is ReLU. A binary method must not take a ReLU output: Sign(0) = +1 makes
every binary input of the first block +1, and when that block changes shape (ResNet-50) no image
information gets through (the paper's eq.-3 argument). So the binary baselines end the stem as their own
papers' networks do: Hardtanh for BNN (its Htanh activation), XNOR-Net, DoReFa, ReCU and FDA (their blocks'
real-valued activation, as in ``BinaryBlock``), and the BatchNorm output itself for Bi-Real and ReActNet
(conv1 -> bn1 -> max pool in their ResNet code; the sign, or RSign's learnt threshold, sees it directly).
``stem_act`` on each conv class says which.

Block structure (``BinaryBlock``): the convs of a ResNet basic / bottleneck block, each followed by BatchNorm;
between convs and at the block output a Hardtanh (the BNN activation: a ReLU before a sign would make every
activation +1); the shortcut is the identity or a binary 1x1 conv + BN ("every backbone conv but the stem").
Bi-Real and ReActNet add their per-conv real-valued shortcut (identity, or a 2x2 average pool when the conv
has stride 2) around every conv whose input and output channels agree, and ReActNet puts an RPReLU after it.
``"fp"`` is the full-precision ResNet (ReLU); ``"bidrn"`` is ``binaryhpe.train.bidrn.BiDRN`` itself.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from binaryhpe import BinaryHPEError
from binaryhpe.train.config import BiDRNConfig
from binaryhpe.train.quant import ApproxSign

BINARIZER_NAMES = ("bidrn", "fp", "bnn", "xnor", "dorefa", "bireal", "reactnet", "recu", "fda")
BASELINE_NAMES = ("bnn", "xnor", "dorefa", "bireal", "reactnet", "recu", "fda")


def _sign(x: torch.Tensor) -> torch.Tensor:
    """Sign with Sign(0) = +1 (eq. 1): the output is always +-1."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


# ----------------------------------------------------------------------------------------------------------
# autograd functions: one per forward/backward rule


class SignSTE(torch.autograd.Function):
    """BNN: sign forward, straight-through estimator clipped to [-1, 1] backward (g 1{abs(x) <= 1})."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _sign(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)


class SignIdentitySTE(torch.autograd.Function):
    """Sign forward, identity backward (DoReFa's / ReCU's weight STE)."""

    @staticmethod
    def forward(ctx, x):
        return _sign(x)

    @staticmethod
    def backward(ctx, g):
        return g


class XnorWeight(torch.autograd.Function):
    """XNOR-Net weights: alpha sign(w), alpha = mean abs(w) per output channel.

    Backward (XNOR-Net, Sec. 3.2): dC/dw_i = dC/dw~_i (1/n + alpha dsign/dw_i), written out exactly:
    alpha g_i 1{abs(w_i) <= 1} + sign(w_i) / n * sum_j g_j sign(w_j) (the gradient through alpha).
    """

    @staticmethod
    def forward(ctx, w):
        alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
        s = _sign(w)
        ctx.save_for_backward(w, alpha, s)
        return alpha * s

    @staticmethod
    def backward(ctx, g):
        w, alpha, s = ctx.saved_tensors
        n = w[0].numel()
        return alpha * g * (w.abs() <= 1).to(g.dtype) + s * (g * s).sum(dim=(1, 2, 3), keepdim=True) / n


class DorefaWeight(torch.autograd.Function):
    """DoReFa 1-bit weights: E(abs(w)) sign(w) with one scale per layer; straight-through backward."""

    @staticmethod
    def forward(ctx, w):
        return w.abs().mean() * _sign(w)

    @staticmethod
    def backward(ctx, g):
        return g


class DorefaAct(torch.autograd.Function):
    """DoReFa 1-bit activation: quantize_1(clip(x, 0, 1)) = round(clip(x, 0, 1)) in {0, 1}; STE on [0, 1]."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x.clamp(0, 1) >= 0.5).to(x.dtype)  # round half up: 0.5 -> 1

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ((x >= 0) & (x <= 1)).to(g.dtype)


class BiRealWeight(torch.autograd.Function):
    """Bi-Real weights: alpha sign(w), alpha = mean abs(w) per output channel.

    Magnitude-aware gradient (Bi-Real eq. 8): dL/dw = dL/dw_b * alpha * 1{abs(w) < 1} (the gradient of alpha
    itself is not propagated).
    """

    @staticmethod
    def forward(ctx, w):
        alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
        ctx.save_for_backward(w, alpha)
        return alpha * _sign(w)

    @staticmethod
    def backward(ctx, g):
        w, alpha = ctx.saved_tensors
        return g * alpha * (w.abs() < 1).to(g.dtype)


class ReActWeight(torch.autograd.Function):
    """ReActNet weights: alpha sign(w) with alpha = mean abs(w) per output channel detached; dL/dw = g 1{abs(w) < 1}."""

    @staticmethod
    def forward(ctx, w):
        ctx.save_for_backward(w)
        return w.abs().mean(dim=(1, 2, 3), keepdim=True) * _sign(w)

    @staticmethod
    def backward(ctx, g):
        (w,) = ctx.saved_tensors
        return g * (w.abs() < 1).to(g.dtype)


class FourierSign(torch.autograd.Function):
    """FDA: sign forward; backward the derivative of the truncated Fourier series of the square wave,
    sign(x) ~ 4/pi sum_{i<n} sin((2i+1) omega x) / (2i+1), i.e. g (4 omega / pi) sum_{i<n} cos((2i+1) omega x),
    zero outside [-1, 1] (as FDA's released code)."""

    @staticmethod
    def forward(ctx, x, n_terms: int, omega: float):
        ctx.save_for_backward(x)
        ctx.n_terms, ctx.omega = n_terms, omega
        return _sign(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * fourier_sign_grad(x, ctx.n_terms, ctx.omega), None, None


def fourier_sign_grad(x: torch.Tensor, n_terms: int, omega: float) -> torch.Tensor:
    d = sum(torch.cos((2 * i + 1) * omega * x) for i in range(n_terms)) * (4 * omega / math.pi)
    return d * (x.abs() <= 1).to(x.dtype)


# ----------------------------------------------------------------------------------------------------------
# the binary convolutions


class BaselineConv(nn.Conv2d):
    """Base class: a conv whose forward binarizes input and weights by the method's rules (no bias)."""

    binary_weights = True
    name = "?"
    per_conv_shortcut = False  # Bi-Real / ReActNet: a real-valued shortcut around every conv
    rprelu = False  # ReActNet: RPReLU after each conv (+ shortcut)
    stem_act = "hardtanh"  # the stem's pre-activation ("hardtanh" or "bn": the BatchNorm output itself)

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int | None = None):
        super().__init__(cin, cout, k, stride=stride, padding=k // 2 if padding is None else padding, bias=False)

    def binarize_input(self, x):  # pragma: no cover - interface
        raise NotImplementedError

    def binarize_weight(self, w):  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, x):
        return F.conv2d(self.binarize_input(x), self.binarize_weight(self.weight), None, self.stride, self.padding)

    def after_step(self) -> None:
        """What the method does to its latent weights after each optimiser step (``after_optimizer_step``)."""


class BNNConv(BaselineConv):
    """BNN: Sign of inputs and weights with the clipped STE; the latent weights are clipped to [-1, 1] after
    every optimiser step (Hubara et al. 2016, Algorithm 1: "clip(W - eta g, -1, 1)"): without the clip a weight
    that leaves [-1, 1] gets no gradient from the clipped STE again and its sign is frozen for good."""

    name = "bnn"

    def binarize_input(self, x):
        return SignSTE.apply(x)

    def binarize_weight(self, w):
        return SignSTE.apply(w)

    @torch.no_grad()
    def after_step(self) -> None:
        self.weight.clamp_(-1.0, 1.0)


class XNORConv(BaselineConv):
    """XNOR-Net: conv(sign(I), sign(W)) * K * alpha, K = (mean_c abs(I)) box-filtered by the kernel window."""

    name = "xnor"

    def binarize_input(self, x):
        return SignSTE.apply(x)

    def binarize_weight(self, w):
        return XnorWeight.apply(w)

    def forward(self, x):
        y = super().forward(x)
        a = x.abs().mean(dim=1, keepdim=True)
        kh, kw = self.kernel_size
        k = F.avg_pool2d(a, (kh, kw), self.stride, self.padding, count_include_pad=True)
        return y * k


class DoReFaConv(BaselineConv):
    name = "dorefa"

    def binarize_input(self, x):
        return DorefaAct.apply(x)

    def binarize_weight(self, w):
        return DorefaWeight.apply(w)


class BiRealConv(BaselineConv):
    name = "bireal"
    per_conv_shortcut = True
    stem_act = "bn"

    def binarize_input(self, x):
        return ApproxSign.apply(x)

    def binarize_weight(self, w):
        return BiRealWeight.apply(w)


class ReActConv(BaselineConv):
    """ReActNet: RSign (learnable threshold per input channel) and its RPReLU in the block."""

    name = "reactnet"
    per_conv_shortcut = True
    rprelu = True
    stem_act = "bn"

    def __init__(self, cin, cout, k, stride=1, padding=None):
        super().__init__(cin, cout, k, stride, padding)
        self.threshold = nn.Parameter(torch.zeros(cin))

    def binarize_input(self, x):
        return ApproxSign.apply(x - self.threshold.view(1, -1, 1, 1))

    def binarize_weight(self, w):
        return ReActWeight.apply(w)


class ReCUConv(BaselineConv):
    """ReCU (Xu et al., ICCV 2021), as its released code: the weights are balanced (per output channel mean
    removed) and standardised (w1 = w0 / (std(w0) / (2 sqrt 2))), clamped at the tau-quantile of the Laplace
    distribution they are modelled by, Q(tau) = -b ln(2 - 2 tau) with b = E abs(w1) over the layer (the
    rectified clamp unit, no gradient outside [-Q, Q]), then signed with an identity STE; the output is scaled
    by a learnable per-channel alpha (initialised uniform in [0, 1)); the activation is divided by its
    per-sample standard deviation in training (the sign is unchanged) and signed with the gradient
    (2 - 2 abs(a))_+. ``tau`` rises from 0.85 to 0.99 over training, exponentially (``recu_tau``), set by the
    caller (``set_recu_tau``). A learnable threshold per input channel before the sign, as ReActNet's RSign:
    not in ReCU's released convolution, but the paper's Table 1 counts it (ReCU 21.71 M = BNN 21.61 M + one
    parameter per binary conv's input and one per output channel, ``hand4whole.BinaryConv2d``), so the
    baseline compared here has it."""

    name = "recu"

    def __init__(self, cin, cout, k, stride=1, padding=None, tau: float = 0.99):
        super().__init__(cin, cout, k, stride, padding)
        self.tau = tau
        self.threshold = nn.Parameter(torch.zeros(cin))
        self.alpha = nn.Parameter(torch.rand(cout))

    def quantile(self, w1: torch.Tensor) -> torch.Tensor:
        return -w1.abs().mean() * math.log(2 - 2 * self.tau)

    def recentred(self, w: torch.Tensor) -> torch.Tensor:
        w0 = w - w.mean(dim=(1, 2, 3), keepdim=True)
        return w0 / (torch.sqrt(w0.var(dim=(1, 2, 3), keepdim=True) + 1e-5) / 2 / math.sqrt(2))

    def binarize_input(self, x):
        a = x - self.threshold.view(1, -1, 1, 1)
        if self.training and a.numel() > a.shape[0]:
            a = a / torch.sqrt(a.var(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return ApproxSign.apply(a)

    def binarize_weight(self, w):
        w1 = self.recentred(w)
        q = self.quantile(w1).detach()
        return SignIdentitySTE.apply(torch.maximum(torch.minimum(w1, q), -q))

    def forward(self, x):
        return super().forward(x) * self.alpha.view(1, -1, 1, 1)


class FDAConv(BaselineConv):
    """FDA: Fourier-series gradient of sign for weights and activations (``n_terms`` terms, ``omega``), and a
    noise adaptation module: two full-precision Linear layers cin -> cin/8 -> cin on the pooled input whose
    output corrects the binarizer's input per channel (the sign output stays binary)."""

    name = "fda"

    def __init__(self, cin, cout, k, stride=1, padding=None, n_terms: int = 9, omega: float = math.pi / 2):
        super().__init__(cin, cout, k, stride, padding)
        self.n_terms, self.omega = n_terms, omega
        hid = max(1, cin // 8)
        self.noise = nn.Sequential(nn.Linear(cin, hid, bias=False), nn.ReLU(), nn.Linear(hid, cin, bias=False))
        nn.init.zeros_(self.noise[2].weight)  # starts as the plain Fourier binarizer

    def binarize_input(self, x):
        a = x + self.noise(x.mean(dim=(2, 3)))[:, :, None, None]
        return FourierSign.apply(a, self.n_terms, self.omega)

    def binarize_weight(self, w):
        alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True).detach()
        return alpha * FourierSign.apply(w, self.n_terms, self.omega)


BINARIZERS: dict[str, type] = {c.name: c for c in (BNNConv, XNORConv, DoReFaConv, BiRealConv, ReActConv,
                                                    ReCUConv, FDAConv)}


def check_binarizer(name: str) -> str:
    if name not in BINARIZER_NAMES:
        raise BinaryHPEError(f"binarizer = {name!r}: unknown (known: {', '.join(BINARIZER_NAMES)})")
    return name


def make_binary_conv(name: str, cin: int, cout: int, k: int, stride: int = 1, padding: int | None = None) -> nn.Module:
    """A binary conv of baseline ``name`` ("fp" gives a plain full-precision conv)."""
    check_binarizer(name)
    if name == "fp":
        return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2 if padding is None else padding, bias=False)
    if name == "bidrn":
        raise BinaryHPEError("binarizer 'bidrn' has no single binary conv: its convs are the LCR modules of "
                             "binaryhpe.train.layers (use build_backbone)")
    return BINARIZERS[name](cin, cout, k, stride, padding)


# ----------------------------------------------------------------------------------------------------------
# backbone: the BiDRN stage layout with the baseline's convs


class RPReLU(nn.Module):
    """ReActNet's RPReLU (float only): x > gamma ? x - gamma + zeta : beta (x - gamma) + zeta, per channel."""

    def __init__(self, c: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(c))
        self.zeta = nn.Parameter(torch.zeros(c))
        self.beta = nn.Parameter(torch.full((c,), 0.25))

    def forward(self, x):
        d = x - self.gamma.view(1, -1, 1, 1)
        return torch.where(d > 0, d, self.beta.view(1, -1, 1, 1) * d) + self.zeta.view(1, -1, 1, 1)


class BinaryBlock(nn.Module):
    """A ResNet basic / bottleneck block with the baseline's binary convs (see the module docstring)."""

    def __init__(self, name: str, block: str, cin: int, cout: int, stride: int):
        super().__init__()
        self.fp = name == "fp"
        if block == "basic":
            plan = [(cin, cout, 3, stride), (cout, cout, 3, 1)]
        else:
            mid = cout // 4
            plan = [(cin, mid, 1, 1), (mid, mid, 3, stride), (mid, cout, 1, 1)]
        self.convs = nn.ModuleList([make_binary_conv(name, ci, co, k, s) for ci, co, k, s in plan])
        self.bns = nn.ModuleList([nn.BatchNorm2d(co) for _, co, _, _ in plan])
        cls = None if self.fp else BINARIZERS[name]
        self.shortcuts = [bool(cls and cls.per_conv_shortcut and ci == co) for ci, co, _, _ in plan]
        self.strides = [s for *_, s in plan]
        self.rprelus = nn.ModuleList([RPReLU(co) for _, co, _, _ in plan]) if cls and cls.rprelu else None
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(make_binary_conv(name, cin, cout, 1, stride, 0), nn.BatchNorm2d(cout))

    def _act(self, x):
        return F.relu(x) if self.fp else F.hardtanh(x)

    def forward(self, x):
        y = x
        last = len(self.convs) - 1
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            z = bn(conv(y))
            if self.shortcuts[i]:
                z = z + (y if self.strides[i] == 1 else F.avg_pool2d(y, 2))
            if self.rprelus is not None:
                z = self.rprelus[i](z)
            y = z if i == last else self._act(z)
        r = x if self.downsample is None else self.downsample(x)
        return self._act(y + r)


def stem_activation(name: str) -> nn.Module:
    """The stem's last layer for method ``name``: ReLU for full precision, else the method's ``stem_act``
    (see the module docstring: never a ReLU before a binary conv)."""
    if name == "fp":
        return nn.ReLU()
    return nn.Hardtanh() if BINARIZERS[name].stem_act == "hardtanh" else nn.Identity()


class BaselineBackbone(nn.Module):
    """Full-precision stem (conv + BN + the method's pre-activation (+ 3x3/2 max pool)), then the stages."""

    def __init__(self, name: str, cfg: BiDRNConfig):
        super().__init__()
        self.cfg, self.binarizer = cfg, name
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_channels, cfg.stem_channels, cfg.stem_kernel, cfg.stem_stride, cfg.stem_kernel // 2,
                      bias=False),
            nn.BatchNorm2d(cfg.stem_channels), stem_activation(name))
        blocks, cin = [], cfg.stem_channels
        for st in cfg.stages:
            for bi in range(st.blocks):
                blocks.append(BinaryBlock(name, st.block, cin, st.channels, st.stride if bi == 0 else 1))
                cin = st.channels
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = cin

    def forward(self, x):
        y = self.stem(x)
        if self.cfg.stem_maxpool:
            y = F.max_pool2d(y, 3, 2, 1)
        return self.blocks(y)


def build_backbone(name: str, cfg: BiDRNConfig) -> nn.Module:
    """A backbone with the stage layout of ``cfg``: BiDRN for "bidrn", else the baseline (or fp) ResNet."""
    check_binarizer(name)
    if name == "bidrn":
        from binaryhpe.train.bidrn import BiDRN

        return BiDRN(cfg)
    return BaselineBackbone(name, cfg)


RECU_TAU = (0.85, 0.99)


def recu_tau(progress: float) -> float:
    """ReCU's tau schedule (its released training code): tau = A e^p + B, rising exponentially from 0.85 at
    progress p = 0 to 0.99 at p = 1 (A = (0.99 - 0.85) / (e - 1), B = 0.85 - A); p is epoch / epochs there,
    step / steps here."""
    lo, hi = RECU_TAU
    p = min(1.0, max(0.0, float(progress)))
    a = (hi - lo) / (math.e - 1)
    return a * math.exp(p) + lo - a


def after_optimizer_step(model: nn.Module) -> None:
    """Call after every optimiser step: each baseline conv's ``after_step`` (BNN clips its latent weights)."""
    for m in model.modules():
        if isinstance(m, BaselineConv):
            m.after_step()


def set_recu_tau(model: nn.Module, tau: float) -> None:
    """Set ReCU's tau on every ReCU conv (``recu_tau`` gives the schedule)."""
    if not 0.5 < tau < 1:
        raise BinaryHPEError(f"ReCU tau = {tau}: expected a value in (0.5, 1)")
    for m in model.modules():
        if isinstance(m, ReCUConv):
            m.tau = tau


__all__ = ["BASELINE_NAMES", "BINARIZERS", "BINARIZER_NAMES", "BaselineBackbone", "BaselineConv", "BinaryBlock",
           "after_optimizer_step", "build_backbone", "check_binarizer", "fourier_sign_grad", "make_binary_conv",
           "recu_tau", "set_recu_tau", "stem_activation"]
