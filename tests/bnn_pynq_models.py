"""BNN-PYNQ-style binary networks written in plain Brevitas, used only by the tests.

They follow the structure of the Brevitas BNN-PYNQ examples (CNV, SFC/TFC), not the project's own models:
an 8-bit (or binary) input quantizer, QuantConv2d / QuantLinear with binary weights
(``SignedBinaryWeightPerTensorConst``, scale 1), BatchNorm, binary activations
(``SignedBinaryActPerTensorConst``) and MaxPool, ending with an integer accumulator (optionally times a
per-tensor scale). Small shapes (16x16 input, 8-32 channels) so that Verilator simulates them quickly.
BatchNorm statistics are random (seeded), with some negative and zero scales to exercise every threshold
case.
"""

from __future__ import annotations

import torch
from brevitas.core.restrict_val import RestrictValueType
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from brevitas.quant import Int8ActPerTensorFixedPoint
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from torch import nn


class InputQuant8(Int8ActPerTensorFixedPoint):
    """8-bit input on [-1, 1 - 2^-7], power-of-two scale 2^-7 (as BNN-PYNQ's CNV input quantizer)."""

    min_val = -1.0
    max_val = 1.0 - 2.0**-7
    restrict_scaling_type = RestrictValueType.POWER_OF_TWO


class BinaryWeight(SignedBinaryWeightPerTensorConst):
    """BNN-PYNQ's CommonWeightQuant: binary weights with a constant scale of 1 (Brevitas' default is 0.1)."""

    scaling_const = 1.0


class BinaryAct(SignedBinaryActPerTensorConst):
    """BNN-PYNQ's binary activation quantizer: +-1 (min -1, max 1, scale 1)."""

    min_val = -1.0
    max_val = 1.0


def _bin_act():
    return QuantIdentity(act_quant=BinaryAct, return_quant_tensor=True)


def _bin_conv(cin, cout, k=3, pad=0):
    return QuantConv2d(cin, cout, k, padding=pad, bias=False, weight_quant=BinaryWeight,
                       return_quant_tensor=False)


def _bin_fc(cin, cout, bias=False):
    return QuantLinear(cin, cout, bias=bias, weight_quant=BinaryWeight,
                       return_quant_tensor=False)


def randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    """Random BatchNorm statistics: mean/var/weight/bias, including negative and zero weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                c = m.num_features
                scale = float(max(1, m.num_features))  # accumulators are O(sqrt(N))
                m.running_mean.copy_(torch.randn(c, generator=g) * scale ** 0.5)
                m.running_var.copy_(torch.rand(c, generator=g) * scale + 0.5)
                w = torch.randn(c, generator=g)
                w[0] = -abs(w[0]) - 0.1  # one negative scale (threshold with "<=")
                if c > 2:
                    w[1] = 0.0  # one zero scale (constant decision)
                m.weight.copy_(w)
                m.bias.copy_(torch.randn(c, generator=g) * 0.5)
            if isinstance(m, nn.Linear) and m.bias is not None:  # a fixed-point bias (multiples of 1/4)
                m.bias.copy_(torch.round(torch.randn(m.out_features, generator=g) * 8) / 4)
    return model


class CnvLike(nn.Module):
    """CNV-like: in -> [conv3x3, BN, sign] x2 -> maxpool 2 -> [conv3x3, BN, sign] -> flatten -> FC, BN1d,
    sign -> FC (integer accumulator) [-> per-tensor scale]."""

    def __init__(self, in_ch=3, size=16, ch=(8, 16, 16), fc=32, classes=10, binary_input=False,
                 fc_bias=False, out_scale: float | None = None, pad=0, reshape=False):
        super().__init__()
        if binary_input:
            self.inp = QuantIdentity(act_quant=BinaryAct, return_quant_tensor=True)
        else:
            self.inp = QuantIdentity(act_quant=InputQuant8, return_quant_tensor=True)
        c1, c2, c3 = ch
        self.features = nn.Sequential(
            _bin_conv(in_ch, c1, pad=pad), nn.BatchNorm2d(c1), _bin_act(),
            _bin_conv(c1, c2, pad=pad), nn.BatchNorm2d(c2), _bin_act(),
            nn.MaxPool2d(2),
            _bin_conv(c2, c3, pad=pad), nn.BatchNorm2d(c3), _bin_act(),
        )
        s = size
        s = s if pad else s - 2
        s = s if pad else s - 2
        s //= 2
        s = s if pad else s - 2
        self.flat = c3 * s * s
        self.fc1 = _bin_fc(self.flat, fc, bias=fc_bias)
        self.bn1 = nn.BatchNorm1d(fc)
        self.act1 = _bin_act()
        self.fc2 = _bin_fc(fc, classes, bias=False)
        self.out_scale = out_scale
        self.reshape = reshape  # flatten with x.view(N, -1) (exports a Reshape) instead of torch.flatten

    def forward(self, x):
        x = self.inp(x)
        x = self.features(x)
        x = x.view(x.shape[0], -1) if self.reshape else torch.flatten(x, 1)
        x = self.act1(self.bn1(self.fc1(x)))
        x = self.fc2(x)
        if self.out_scale is not None:
            x = x * self.out_scale
        return x


class FcLike(nn.Module):
    """SFC/TFC-like MLP: in (1 x s x s, or 1 x h x w for size=(h, w)) -> flatten -> [FC, BN1d, sign] x layers
    -> FC."""

    def __init__(self, size=12, hidden=(32, 32), classes=10, binary_input=True, fc_bias=False):
        super().__init__()
        if binary_input:
            self.inp = QuantIdentity(act_quant=BinaryAct, return_quant_tensor=True)
        else:
            self.inp = QuantIdentity(act_quant=InputQuant8, return_quant_tensor=True)
        layers = []
        h, w = (size, size) if isinstance(size, int) else size
        n = h * w
        for h in hidden:
            layers += [_bin_fc(n, h, bias=fc_bias), nn.BatchNorm1d(h), _bin_act()]
            n = h
        self.body = nn.Sequential(*layers)
        self.head = _bin_fc(n, classes)

    def forward(self, x):
        x = self.inp(x)
        x = torch.flatten(x, 1)
        return self.head(self.body(x))


def build(kind: str, seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    model = {"cnv": CnvLike, "fc": FcLike}[kind](**kw)
    randomize_bn(model, seed + 1000)
    return model.eval()
