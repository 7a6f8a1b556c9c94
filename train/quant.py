"""Brevitas quantizers of BiDRN (quantizer injection: each is a declarative class).

- ``ApproxSignAct``: Sign of eq. 1 with the piecewise-quadratic gradient of eq. 2; exports as BipolarQuant.
- ``BinaryWeightAlpha``: weights alpha_i * Sign(w_i), alpha_i = ||w_i||_1 / (Cin K K) per output channel (eq. 4),
  recomputed from the current latent weights on every forward pass (no learnable scale, no clamping).
- ``BinaryWeightUnit``: Sign(w) with scale 1 (hardware mode: alpha becomes a fixed-point constant).
- ``fixed_act(bits, frac)``: signed fixed point Q(bits, frac), floor + saturate (the contract's requantizer).
- ``fixed_weight(bits)``: signed fixed-point weights with a per-tensor power-of-two scale.
"""

from __future__ import annotations

import torch
from brevitas.core.quant.binary import BinaryQuant
from brevitas.inject.enum import FloatToIntImplType, RestrictValueType, ScalingImplType
from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from brevitas.quant.fixed_point import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint


class ApproxSign(torch.autograd.Function):
    """Forward: Sign (eq. 1, Sign(0) = +1). Backward: derivative of F in eq. 2, i.e. 2 - 2|x| on [-1, 1]."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.clamp(2.0 - 2.0 * x.abs(), min=0.0)


class ApproxSignBinaryQuant(BinaryQuant):
    """Brevitas binary tensor quantizer whose straight-through estimator is eq. 2."""

    def forward(self, x):
        scale = self.scaling_impl(x)
        y = ApproxSign.apply(x) * scale
        return y, scale, self.zero_point(), self.bit_width()


class ApproxSignAct(SignedBinaryActPerTensorConst):
    tensor_quant = ApproxSignBinaryQuant
    scaling_const = 1.0


class BinaryWeightAlpha(SignedBinaryWeightPerTensorConst):
    """alpha_i * Sign(w_i) with alpha_i = ||w_i||_1 / (Cin K K) (eq. 4): per-output-channel mean of |w|.

    Alpha is computed from the current latent weights at every forward pass (Brevitas ``STATS`` scaling with
    the absolute average, no parameter) and is part of the autograd graph, so the weight gradient is the
    exact derivative of eq. 4 with Sign's eq.-2 approximation ("weights are quantized by the same Sign
    function"): dL/dw_ij = alpha_i g_ij (2 - 2|w_ij|)_+ + sign(w_ij) / (Cin K K) sum_k g_ik sign(w_ik), where
    g = dL/dw_b. The latent weights are not clamped (``ApproxSignBinaryQuant`` replaces Brevitas'
    ``ClampedBinaryQuant``).
    """

    tensor_quant = ApproxSignBinaryQuant
    scaling_impl_type = ScalingImplType.STATS
    scaling_stats_op = "AVE"
    scaling_per_output_channel = True


class BinaryWeightUnit(SignedBinaryWeightPerTensorConst):
    scaling_const = 1.0


class _FixedAct(Int8ActPerTensorFixedPoint):
    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.POWER_OF_TWO
    float_to_int_impl_type = FloatToIntImplType.FLOOR


def fixed_act(bits: int, frac: int):
    """Q(bits, frac): scale 2^-frac, floor, saturate to [-2^(bits-1), 2^(bits-1) - 1]."""
    top = float(2.0 ** (bits - 1 - frac))
    return _FixedAct.let(bit_width=bits, scaling_const=top, max_val=top, min_val=-top)


def fixed_weight(bits: int):
    """Signed fixed-point weights, per-tensor power-of-two scale from the max |w| (round to nearest even)."""
    return Int8WeightPerTensorFixedPoint.let(bit_width=bits)
