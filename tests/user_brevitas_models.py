"""Networks as users write them in Brevitas, with Brevitas' stock quantizers (used by the tests and by
docs/byo-brevitas.md), and Brevitas' own published BNN-PYNQ examples.

Nothing here is shaped for this toolkit: the quantizers are Brevitas' defaults (float per-tensor scales,
``ROUND`` half-even rounding, narrow weight ranges, per-channel float weight scales where written), BatchNorm
feeds ReLU / PReLU / a quantizer, residual adds join tensors of different scales, and the last layer is a float
``nn.Linear``. BatchNorm statistics are random (seeded) so that every channel's epilogue is different.

- ``UserMlp``: an MLP on a 64-element vector (8-bit float-scaled input, QuantLinear with bias, BatchNorm1d,
  QuantReLU, a 4-bit hidden layer, a float Linear head).
- ``UserVgg``: a VGG-like BNN (8-bit first conv with per-channel float weight scales, BN + binary activations,
  binary convs, max pool, average pool, a QuantLinear head with a float output scale).
- ``UserResNet``: a residual BNN (an 8-bit stem with BN + QuantReLU; two blocks of binary convs with BN, PReLU
  and an 8-bit re-quantizer; residual adds of tensors with different scales; a concatenation; TruncAvgPool2d; a
  float Linear head).
- ``bnn_pynq(name)``: ``brevitas_examples.bnn_pynq.model_with_cfg(name, pretrained=False)`` (tfc_1w1a, tfc_2w2a,
  cnv_1w1a, cnv_2w2a), with random BatchNorm statistics.
"""

from __future__ import annotations

import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU, TruncAvgPool2d
from brevitas.quant import (Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int8WeightPerTensorFloat,
                            Int32Bias, Uint8ActPerTensorFloat)
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from torch import nn

#: name -> input shape (batch 1) of the user networks
INPUT_SHAPES = {"mlp": (1, 64), "vgg": (1, 3, 16, 16), "resnet": (1, 3, 16, 16)}
#: the published BNN-PYNQ examples and their input shapes
BNN_PYNQ = {"tfc_1w1a": (1, 1, 28, 28), "tfc_2w2a": (1, 1, 28, 28), "cnv_1w1a": (1, 3, 32, 32),
            "cnv_2w2a": (1, 3, 32, 32)}


def randomize_bn(model: nn.Module, seed: int, negative_first: bool = False) -> nn.Module:
    """Random BatchNorm statistics and affine parameters (seeded), of the size the accumulators have;
    ``negative_first``: channel 0 of every BatchNorm gets a negative scale (a decreasing channel)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 2.0)
                m.running_var.copy_(torch.rand(c, generator=g) * 4.0 + 0.5)
                w = torch.randn(c, generator=g)
                if negative_first:
                    w[0] = -abs(w[0])
                m.weight.copy_(w)
                m.bias.copy_(torch.randn(c, generator=g) * 0.5)
    return model


def calibrate(model: nn.Module, shape, seed: int) -> nn.Module:
    """A few training-mode passes on random data, as a user's training would, so that Brevitas' statistics-based
    activation scales are not their initial values; then eval mode."""
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, *shape[1:], generator=g))
    return model.eval()


class UserMlp(nn.Module):
    """An MLP as a user writes it: 8-bit input, two quantized hidden layers, a float head."""

    def __init__(self, n_in: int = 64, hidden: int = 32, classes: int = 10):
        super().__init__()
        self.inp = QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.fc1 = QuantLinear(n_in, hidden, bias=True, weight_quant=Int8WeightPerTensorFloat,
                               bias_quant=Int32Bias, return_quant_tensor=False)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.act1 = QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=4, return_quant_tensor=True)
        self.fc2 = QuantLinear(hidden, hidden, bias=False, weight_quant=Int8WeightPerTensorFloat, weight_bit_width=4,
                               return_quant_tensor=False)
        self.bn2 = nn.BatchNorm1d(hidden)
        self.act2 = QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=False)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        x = self.act1(self.bn1(self.fc1(self.inp(x))))
        x = self.act2(self.bn2(self.fc2(x)))
        return self.head(x)


def _bin_act():
    return QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)


def _bin_conv(cin, cout, k=3, pad=1):
    return QuantConv2d(cin, cout, k, padding=pad, bias=False, weight_quant=SignedBinaryWeightPerTensorConst,
                       return_quant_tensor=False)


class UserVgg(nn.Module):
    """A VGG-like BNN: an 8-bit first conv with per-channel float weight scales, then binary convs."""

    def __init__(self, ch=(16, 16, 32), classes: int = 10):
        super().__init__()
        c1, c2, c3 = ch
        self.inp = QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.conv1 = QuantConv2d(3, c1, 3, padding=1, bias=False, weight_quant=Int8WeightPerChannelFloat,
                                 return_quant_tensor=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.act1 = _bin_act()
        self.conv2 = _bin_conv(c1, c2)
        self.bn2 = nn.BatchNorm2d(c2)
        self.act2 = _bin_act()
        self.pool = nn.MaxPool2d(2)
        self.conv3 = _bin_conv(c2, c3)
        self.bn3 = nn.BatchNorm2d(c3)
        self.act3 = _bin_act()
        self.head = QuantLinear(c3 * 8 * 8, classes, bias=False, weight_quant=SignedBinaryWeightPerTensorConst,
                                return_quant_tensor=False)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(self.inp(x))))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.pool(x)
        x = self.act3(self.bn3(self.conv3(x)))
        return self.head(torch.flatten(x, 1))


class _Block(nn.Module):
    """A residual binary block: sign -> binary conv -> BN -> PReLU -> 8-bit requantizer, plus the shortcut."""

    def __init__(self, c: int):
        super().__init__()
        self.sign = _bin_act()
        self.conv = _bin_conv(c, c)
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.PReLU(c, init=0.25)
        self.q = QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=False)
        self.join = QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=False)

    def forward(self, x):
        y = self.q(self.act(self.bn(self.conv(self.sign(x)))))
        return self.join(x + y)


class UserResNet(nn.Module):
    """A residual BNN: 8-bit stem with BN + QuantReLU, two residual binary blocks, a concatenation of the two
    block outputs, TruncAvgPool2d, a float Linear head."""

    def __init__(self, c: int = 16, classes: int = 10):
        super().__init__()
        self.inp = QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.stem = QuantConv2d(3, c, 3, padding=1, bias=False, weight_quant=Int8WeightPerTensorFloat,
                                return_quant_tensor=False)
        self.bn = nn.BatchNorm2d(c)
        self.relu = QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.to_signed = QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=False)
        self.block1 = _Block(c)
        self.block2 = _Block(c)
        self.cat = QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.pool = TruncAvgPool2d(kernel_size=4, stride=4, return_quant_tensor=True)
        self.head = nn.Linear(2 * c * 4 * 4, classes)

    def forward(self, x):
        x = self.to_signed(self.relu(self.bn(self.stem(self.inp(x)))))
        a = self.block1(x)
        b = self.block2(a)
        x = self.cat(torch.cat([a, b], dim=1))
        x = self.pool(x)
        return self.head(torch.flatten(x, 1))


USER = {"mlp": UserMlp, "vgg": UserVgg, "resnet": UserResNet}


def build_user(name: str, seed: int = 0) -> nn.Module:
    """One of the user networks (``USER``), seeded, random BN statistics, calibrated, in eval mode."""
    torch.manual_seed(seed)
    model = USER[name]()
    randomize_bn(model, seed + 1000)
    return calibrate(model, INPUT_SHAPES[name], seed)


def bnn_pynq(name: str, seed: int = 0) -> nn.Module:
    """Brevitas' published BNN-PYNQ example ``name`` (untrained), random BN statistics, eval mode."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _cfg = model_with_cfg(name, pretrained=False)
    randomize_bn(model, seed + 1000)
    return model.eval()


def export(model: nn.Module, shape, path) -> str:
    """``brevitas.export.export_qonnx`` of ``model`` on a random input of ``shape``, as a user runs it."""
    from brevitas.export import export_qonnx

    export_qonnx(model, torch.randn(*shape), str(path))
    return str(path)
