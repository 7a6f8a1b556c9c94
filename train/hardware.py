"""Hardware mode: freeze a trained (or random) model so that it follows docs/numerics.md."""

from __future__ import annotations

import torch.nn as nn

from binaryhpe.train.config import NumericsConfig
from binaryhpe.train.layers import HwModule


def to_hardware(model: nn.Module, numerics: NumericsConfig | None = None) -> nn.Module:
    """Quantize every constant of ``model`` (in place) and switch it to hardware mode; returns it in eval()."""
    nc = numerics or getattr(getattr(model, "cfg", None), "numerics", None) or NumericsConfig()
    model.eval()
    for m in model.modules():
        if isinstance(m, HwModule) and not m.hw:
            m.freeze(nc)
    return model.eval()


def is_hardware(model: nn.Module) -> bool:
    mods = [m for m in model.modules() if isinstance(m, HwModule)]
    return bool(mods) and all(m.hw for m in mods)
