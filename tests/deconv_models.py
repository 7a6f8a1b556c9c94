"""A transposed-convolution network written in plain Brevitas, used only by the tests (BoxNet's pattern):
input quantizer Q(8,4) -> [sign] -> ConvTranspose(4, 2, 1) (binary or 6-bit fixed-point weights) -> per-channel
Mul -> requantizer Q(out_bits, 4)."""

from __future__ import annotations

import torch
import torch.nn as nn


class DeconvNet(nn.Module):
    def __init__(self, binary: bool, cin: int, cout: int, out_bits: int, scales):
        super().__init__()
        from brevitas.nn import QuantConvTranspose2d, QuantIdentity

        from binaryhpe.train.quant import ApproxSignAct, BinaryWeightUnit, fixed_act, fixed_weight

        self.qin = QuantIdentity(act_quant=fixed_act(8, 4), return_quant_tensor=False)
        self.sign = QuantIdentity(act_quant=ApproxSignAct, return_quant_tensor=False) if binary else None
        self.dc = QuantConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False,
                                       weight_quant=BinaryWeightUnit if binary else fixed_weight(6))
        self.qx = QuantIdentity(act_quant=fixed_act(out_bits, 4), return_quant_tensor=False)
        self.register_buffer("m", torch.tensor(list(scales)[:cout]).view(1, -1, 1, 1))

    def forward(self, x):
        x = self.qin(x)
        if self.sign is not None:
            x = self.sign(x)
        return self.qx(self.dc(x) * self.m)
