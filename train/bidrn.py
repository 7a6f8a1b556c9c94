"""BiDRN backbones: BiDRBs (eq. 11) mapped from ResNet-18/34/50 blocks.

Mapping table (ResNet layer -> BiDRN module; f = channel factor). ``docs/bidrn-mapping.md`` has the prose.

| ResNet layer | condition | BiDRN module |
|---|---|---|
| basic 3x3 conv1, Cin -> Cout, stride s | Cin = Cout, s = 1 | Base LCR |
| | Cin = Cout, s = 2 | Down Scale Residual (DScR) |
| | Cout = 2 Cin, s = 2 | Down Sample Residual (DSaR, f = 2) |
| | Cout = f Cin, s = 1 | Fusion Up Residual (FUR, f) |
| basic 3x3 conv2 | | Base LCR |
| bottleneck 1x1 conv1, Cin -> C | Cin = C / 2C / 4C | Base LCR / FDR f = 2 / FDR f = 4 |
| bottleneck 3x3 conv2, C -> C, stride s | s = 1 / s = 2 | Base LCR / DScR |
| bottleneck 1x1 conv3, C -> 4C | | FUR f = 4 |
| shortcut with downsample conv (1x1, stride s) | | Block Residual: full-precision 1x1 conv + BN (or binarized) |
| identity shortcut | | identity Block Residual (full-precision a_f) |
| stem 7x7/2 conv + BN + ReLU + 3x3/2 max pool | | full precision, conv + BN + max pool without the ReLU: the first block's Hardtanh (eq. 3) takes the BN output |

Every binary conv's input is the Hardtanh of the previous layer's output; each block's output is
``LCR path + BlockResidual(a_f)`` with ``a_f`` the Hardtanh of the block input.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from binaryhpe import BinaryHPEError
from binaryhpe.train.config import BiDRNConfig, StageConfig
from binaryhpe.train.layers import BlockResidual, HwModule, LCRModule, PreAct, Stem


class BiDRB(HwModule):
    """Binarized Dual Residual Block: LCR convolutions plus a Block Residual (eq. 11)."""

    def __init__(self, block: str, cin: int, cout: int, stride: int, cfg: BiDRNConfig):
        super().__init__()
        en = cfg.lcr_modules
        self.pre = nn.ModuleList()
        self.convs = nn.ModuleList()
        if block == "basic":
            plan = [(cin, cout, 3, stride), (cout, cout, 3, 1)]
        else:
            mid = cout // 4
            plan = [(cin, mid, 1, 1), (mid, mid, 3, stride), (mid, cout, 1, 1)]
        for ci, co, k, s in plan:
            self.pre.append(PreAct())
            self.convs.append(LCRModule(ci, co, k, s, en))
        needs_conv = cin != cout or stride != 1
        if cfg.block_residual == "none":
            kind = "none"
        elif needs_conv:
            kind = cfg.block_residual
        else:
            kind = "identity"
        self.br = BlockResidual(cin, cout, stride, kind)

    def freeze(self, nc) -> None:
        self.qx = self._qx(nc)
        self.hw = True

    def forward(self, x):
        a_in = self.pre[0](x)
        y = self.convs[0](a_in)
        for pre, conv in zip(self.pre[1:], self.convs[1:]):
            y = conv(pre(y))
        r = self.br(a_in)
        if r is None:
            return y
        y = y + r
        return self.qx(y) if self.hw else y


class BiDRN(nn.Module):
    """A BiDRN encoder: full-precision stem, then BiDRB stages. Output: the last block's X-format map."""

    def __init__(self, cfg: BiDRNConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or BiDRNConfig()
        self.stem = Stem(cfg.in_channels, cfg.stem_channels, cfg.stem_kernel, cfg.stem_stride, cfg.stem_maxpool)
        blocks, cin = [], cfg.stem_channels
        for si, st in enumerate(cfg.stages):
            for bi in range(st.blocks):
                blocks.append(BiDRB(st.block, cin, st.channels, st.stride if bi == 0 else 1, cfg))
                cin = st.channels
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = cin

    def output_shape(self) -> tuple:
        f = self.cfg.downsampling()
        h, w = self.cfg.input_size
        return (self.out_channels, h // f, w // f)

    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.cfg.in_channels:
            raise BinaryHPEError(
                f"BiDRN input must be (N, {self.cfg.in_channels}, H, W); got {tuple(x.shape)}")
        self.cfg.check_input_size(tuple(x.shape[2:]))

    def forward(self, x):
        return self.blocks(self.stem(x))


def example_input(cfg: BiDRNConfig, batch: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((batch, cfg.in_channels, *cfg.input_size), generator=g) * 2 - 1


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random, untrained but non-trivial parameters everywhere (BN statistics, RPReLU, weights)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("beta"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.5)
            elif name.endswith(("gamma", "zeta")):
                p.copy_((torch.rand(p.shape, generator=g) - 0.5) * 0.4)
            elif p.dim() == 1:  # BN weight/bias
                p.copy_(torch.rand(p.shape, generator=g) * 0.8 + 0.6 if name.endswith("weight")
                        else (torch.rand(p.shape, generator=g) - 0.5) * 0.4)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / max(1, p[0].numel())) ** 0.5)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_((torch.rand(b.shape, generator=g) - 0.5) * 0.4)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) * 1.5 + 0.5)
    return model


__all__ = ["BiDRB", "BiDRN", "BiDRNConfig", "StageConfig", "example_input", "randomize"]
