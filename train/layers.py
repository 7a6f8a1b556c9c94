"""BiDRN building blocks (Section 3.1, Figures 4-5, eqs. 1-11) with a float mode and a hardware mode.

Float mode is what is trained. ``binaryhpe.train.hardware.to_hardware`` freezes a model into hardware mode,
where every tensor crossing a hardware boundary is an integer times a power of two (docs/numerics.md):
constants are quantized once, in float64, into buffers, and Brevitas ``Quant`` nodes floor and saturate
every intermediate. Both modes export to QONNX with ``brevitas.export.export_qonnx``.

Module kinds:
- ``LCRConv``: one binary convolution with RPReLU, its Local Convolution Residual and BatchNorm (eq. 7), the
  residual being the input (Base LCR), its 2x2 average pool (Down Scale Residual, eq. 8) or none.
- ``LCRModule``: the redesigned modules of Figure 5 built from ``LCRConv`` branches: Fusion Up (eq. 9,
  concat of f branches), Fusion Down (eq. 10, split into f chunks, summed, BatchNorm), Down Sample (Down Scale
  + Fusion Up), for channel factors f = 2 and 4.
- ``BlockResidual``: full-precision 1x1 conv + BN, its binarized variant, or identity (eq. 11).
- ``Stem``: the full-precision ResNet stem, conv + BN (+ max pool) without a ReLU: its output goes straight to
  the first block's Hardtanh pre-activation (eq. 3), which must see both signs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.nn import QuantConv2d, QuantIdentity

from binaryhpe import BinaryHPEError
from binaryhpe.train.config import NumericsConfig
from binaryhpe.train.quant import ApproxSignAct, BinaryWeightAlpha, BinaryWeightUnit, fixed_act, fixed_weight

# ----------------------------------------------------------------------------------------------------------
# constant quantization (float64, once, at freeze time)


def quant_mult(c: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """Per-tensor exponent e and signed ``bits``-bit mantissas m with c ~= m * 2^-e."""
    c = np.asarray(c, dtype=np.float64)
    top = (1 << (bits - 1)) - 1
    amax = float(np.max(np.abs(c))) if c.size else 0.0
    e = 0 if amax == 0.0 else int(math.floor(math.log2(top / amax)))
    m = np.clip(np.round(c * 2.0**e), -top - 1, top)
    return m.astype(np.int64), e


def quant_add(c: np.ndarray, nc: NumericsConfig) -> np.ndarray:
    """Additive constants on the X grid (integers of Q(res_bits, res_frac)), saturated."""
    top = (1 << (nc.res_bits - 1)) - 1
    return np.clip(np.round(np.asarray(c, dtype=np.float64) * 2.0**nc.res_frac), -top - 1, top).astype(np.int64)


def _buf(values: np.ndarray, scale_exp: int) -> torch.Tensor:
    """Float32 tensor holding values * 2^-scale_exp exactly (checked)."""
    t = torch.tensor(np.asarray(values, dtype=np.float64) * 2.0 ** (-scale_exp), dtype=torch.float32)
    assert np.array_equal(t.double().numpy() * 2.0**scale_exp, np.asarray(values, dtype=np.float64))
    return t


def _chan(t: torch.Tensor) -> torch.Tensor:
    return t.view(1, -1, 1, 1)


def bn_affine(bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BatchNorm as y = s * x + b (float64)."""
    var = bn.running_var.detach().double().numpy()
    mean = bn.running_mean.detach().double().numpy()
    w = bn.weight.detach().double().numpy() if bn.affine else np.ones_like(var)
    b = bn.bias.detach().double().numpy() if bn.affine else np.zeros_like(var)
    s = w / np.sqrt(var + bn.eps)
    return s, b - mean * s


class HwModule(nn.Module):
    """A module with a float mode and a frozen hardware mode."""

    hw: bool = False

    def freeze(self, nc: NumericsConfig) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def _qx(self, nc: NumericsConfig) -> QuantIdentity:
        return QuantIdentity(act_quant=fixed_act(nc.res_bits, nc.res_frac), return_quant_tensor=False)


class FixedBN(HwModule):
    """BatchNorm2d; in hardware mode y = qX(qX(x * s) + b) with s a Cm constant and b an X constant."""

    def __init__(self, c: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(c)

    def freeze(self, nc: NumericsConfig) -> None:
        s, b = bn_affine(self.bn)
        m, e = quant_mult(s, nc.const_bits)
        self.register_buffer("scale_q", _chan(_buf(m, e)))
        self.register_buffer("shift_q", _chan(_buf(quant_add(b, nc), nc.res_frac)))
        self.qx = self._qx(nc)
        self.hw = True

    def forward(self, x):
        if not self.hw:
            return self.bn(x)
        return self.qx(self.qx(x * self.scale_q) + self.shift_q)


class RPReLU(HwModule):
    """RPReLU of eq. 6: x > gamma ? x - gamma + zeta : beta (x - gamma) + zeta, per channel."""

    def __init__(self, c: int, beta_init: float = 0.25):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(c))
        self.zeta = nn.Parameter(torch.zeros(c))
        self.beta = nn.Parameter(torch.full((c,), beta_init))

    def freeze(self, nc: NumericsConfig) -> None:
        self.register_buffer("gamma_q", _chan(_buf(quant_add(self.gamma.detach().double().numpy(), nc), nc.res_frac)))
        self.register_buffer("zeta_q", _chan(_buf(quant_add(self.zeta.detach().double().numpy(), nc), nc.res_frac)))
        m, e = quant_mult(self.beta.detach().double().numpy(), nc.const_bits)
        self.register_buffer("beta_q", _buf(m, e))
        self.qx = self._qx(nc)
        self.hw = True

    def forward(self, x):
        if not self.hw:
            d = x - _chan(self.gamma)
            return torch.where(d > 0, d, _chan(self.beta) * d) + _chan(self.zeta)
        d = self.qx(x - self.gamma_q)
        r = self.qx(F.prelu(d, self.beta_q))
        return self.qx(r + self.zeta_q)


class LCRConv(HwModule):
    """Binary conv (eq. 4-5) -> RPReLU -> + residual (eq. 7 / eq. 8) -> BatchNorm.

    Input: ``a`` = Hardtanh output (A format in hardware mode). Output: X-format values.
    residual: "identity" (Base LCR), "avgpool" (Down Scale Residual), or None (no LCR possible).
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, residual: str | None = "identity",
                 bn: bool = True, rprelu: bool = True):
        super().__init__()
        if residual == "identity" and (cin != cout or stride != 1):
            raise BinaryHPEError(f"LCRConv {cin}->{cout} stride {stride}: an identity residual needs equal shapes")
        if residual == "avgpool" and (cin != cout or stride != 2):
            raise BinaryHPEError(f"LCRConv {cin}->{cout} stride {stride}: an avgpool residual needs stride 2")
        self.cin, self.cout, self.k, self.stride, self.residual = cin, cout, k, stride, residual
        self.sign = QuantIdentity(act_quant=ApproxSignAct, return_quant_tensor=False)
        self.conv = QuantConv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False, weight_quant=BinaryWeightAlpha)
        self.rprelu = RPReLU(cout) if rprelu else None
        self.bn = FixedBN(cout) if bn else None

    def freeze(self, nc: NumericsConfig) -> None:
        alpha = self.conv.quant_weight().scale.detach().double().numpy().reshape(-1)
        m, e = quant_mult(alpha, nc.const_bits)
        self.register_buffer("alpha_q", _chan(_buf(m, e)))
        self.conv_hw = QuantConv2d(self.cin, self.cout, self.k, stride=self.stride, padding=self.k // 2,
                                   bias=False, weight_quant=BinaryWeightUnit)
        with torch.no_grad():
            self.conv_hw.weight.copy_(torch.where(self.conv.weight >= 0, 1.0, -1.0))
        self.qx = self._qx(nc)
        self.hw = True

    def forward(self, a):
        b = self.sign(a)
        if self.hw:
            y = self.qx(self.conv_hw(b) * self.alpha_q)
        else:
            y = self.conv(b)
        if self.rprelu is not None:
            y = self.rprelu(y)
        if self.residual is not None:
            res = a if self.residual == "identity" else F.avg_pool2d(a, 2)
            y = y + res
            if self.hw:
                y = self.qx(y)
        if self.bn is not None:
            y = self.bn(y)
        return y


class LCRModule(HwModule):
    """A binary convolution cin -> cout (stride 1 or 2) mapped onto LCR branches (Figure 5).

    - cin == cout: Base LCR (stride 1) or Down Scale Residual (stride 2, ``dscr``)
    - cout == f*cin: Fusion Up Residual (``fur``, stride 1) / Down Sample Residual (``dsar``, stride 2):
      f branches cin -> cin on the same input, concatenated
    - cin == f*cout: Fusion Down Residual (``fdr``): input split into f chunks, one branch each, summed, BN
    When the needed redesign is not enabled (Table 2a ablation), a single binary conv without LCR is used.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int, enabled: tuple):
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride
        if cin == cout:
            kind = "base" if stride == 1 else "dscr"
            factor = 1
        elif cout % cin == 0 and cout // cin in (2, 4):
            kind, factor = ("fur" if stride == 1 else "dsar"), cout // cin
        elif cin % cout == 0 and cin // cout in (2, 4):
            kind, factor = "fdr", cin // cout
        else:
            raise BinaryHPEError(f"binary conv {cin}->{cout}: channel ratio must be 1, 2 or 4 either way")
        if kind == "fdr" and stride != 1:
            raise BinaryHPEError(f"binary conv {cin}->{cout} stride {stride}: Fusion Down with stride is not mapped")
        self.kind = kind if (kind == "base" or kind in enabled) else "plain"
        self.factor = factor
        res = "identity" if stride == 1 else "avgpool"
        if self.kind == "plain":  # a plain binary conv + BN: RPReLU belongs to the LCR (eq. 7, Table 2a)
            self.branches = nn.ModuleList([LCRConv(cin, cout, k, stride, residual=None, rprelu=False)])
        elif self.kind in ("base", "dscr"):
            self.branches = nn.ModuleList([LCRConv(cin, cout, k, stride, residual=res)])
        elif self.kind in ("fur", "dsar"):
            self.branches = nn.ModuleList([LCRConv(cin, cin, k, stride, residual=res) for _ in range(factor)])
        else:  # fdr
            self.branches = nn.ModuleList([LCRConv(cout, cout, k, 1, residual="identity", bn=False)
                                           for _ in range(factor)])
            self.bn = FixedBN(cout)

    def freeze(self, nc: NumericsConfig) -> None:
        self.qx = self._qx(nc)
        self.hw = True

    def forward(self, a):
        if self.kind in ("plain", "base", "dscr"):
            return self.branches[0](a)
        if self.kind in ("fur", "dsar"):
            return torch.cat([br(a) for br in self.branches], dim=1)
        chunks = torch.split(a, self.cout, dim=1)
        y = self.branches[0](chunks[0])
        for br, ch in zip(self.branches[1:], chunks[1:]):
            y = y + br(ch)
            if self.hw:
                y = self.qx(y)
        return self.bn(y)


class BlockResidual(HwModule):
    """Block Residual of eq. 11: 'fp' 1x1 conv + BN, 'binary' 1x1 binary conv + BN, 'identity', or 'none'."""

    def __init__(self, cin: int, cout: int, stride: int, kind: str):
        super().__init__()
        self.kind, self.cin, self.cout, self.stride = kind, cin, cout, stride
        if kind == "fp":
            self.conv = QuantConv2d(cin, cout, 1, stride=stride, bias=False, weight_quant=None)
            self.bn = FixedBN(cout)
        elif kind == "binary":
            self.conv = LCRConv(cin, cout, 1, stride, residual=None, rprelu=False)
        elif kind == "identity" and (cin != cout or stride != 1):
            raise BinaryHPEError(f"identity block residual {cin}->{cout} stride {stride}: shapes differ")

    def freeze(self, nc: NumericsConfig) -> None:
        if self.kind == "fp":
            self.conv_hw = QuantConv2d(self.cin, self.cout, 1, stride=self.stride, bias=False,
                                       weight_quant=fixed_weight(nc.fxp_weight_bits))
            with torch.no_grad():
                self.conv_hw.weight.copy_(self.conv.weight)
        self.qx = self._qx(nc)
        self.hw = True

    def forward(self, a):
        if self.kind == "fp":
            y = self.qx(self.conv_hw(a)) if self.hw else self.conv(a)
            return self.bn(y)
        if self.kind == "binary":
            return self.conv(a)
        if self.kind == "identity":
            return a
        return None


class Stem(HwModule):
    """Full-precision stem: conv k x k / s -> BN (-> 3x3/2 max pool), no ReLU.

    The first block's Hardtanh pre-activation (``PreAct``, eq. 3) takes this output. A ReLU here would make it
    >= 0, so Sign would give +1 everywhere and the first block's binary convolutions would see no image
    (Section 3.1: the failure the Hardtanh pre-activation avoids)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, maxpool: bool):
        super().__init__()
        self.cin, self.cout, self.k, self.stride, self.maxpool = cin, cout, k, stride, maxpool
        self.conv = QuantConv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False, weight_quant=None)
        self.bn = FixedBN(cout)

    def freeze(self, nc: NumericsConfig) -> None:
        self.q_in = QuantIdentity(act_quant=fixed_act(nc.in_bits, nc.in_frac), return_quant_tensor=False)
        self.conv_hw = QuantConv2d(self.cin, self.cout, self.k, stride=self.stride, padding=self.k // 2,
                                   bias=False, weight_quant=fixed_weight(nc.fxp_weight_bits))
        with torch.no_grad():
            self.conv_hw.weight.copy_(self.conv.weight)
        self.qx = self._qx(nc)
        self.hw = True

    def forward(self, x):
        y = self.qx(self.conv_hw(self.q_in(x))) if self.hw else self.conv(x)
        y = self.bn(y)
        if self.maxpool:
            y = F.max_pool2d(y, 3, 2, 1)
        return y


class PreAct(HwModule):
    """Hardtanh pre-activation (eq. 3); in hardware mode the A-format quantizer (its saturation is Hardtanh)."""

    def freeze(self, nc: NumericsConfig) -> None:
        self.qa = QuantIdentity(act_quant=fixed_act(nc.act_bits, nc.act_frac), return_quant_tensor=False)
        self.hw = True

    def forward(self, x):
        return self.qa(x) if self.hw else F.hardtanh(x)
