"""Built-in models by name (what ``binaryhpe build NAME`` and ``binaryhpe export NAME`` accept)."""

from __future__ import annotations

import torch

from binaryhpe import BinaryHPEError
from binaryhpe.train.bidrn import BiDRN, example_input, randomize
from binaryhpe.train.config import TINY, bidrn_config


def _configs():
    return {
        "tiny-bidrn": TINY,
        "bidrn-18-face": bidrn_config(18, (192, 192)),
        "bidrn-50-body": bidrn_config(50, (256, 192)),
        "bidrn-50-hand": bidrn_config(50, (256, 256)),
    }


MODEL_NAMES = tuple(_configs())


def build_model(name: str, seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    """A randomly initialised (untrained, seeded) built-in model in float mode and an example input."""
    cfgs = _configs()
    if name not in cfgs:
        raise BinaryHPEError(f"unknown model {name!r}: expected a QONNX file or one of {', '.join(cfgs)}")
    cfg = cfgs[name]
    model = randomize(BiDRN(cfg), seed=seed).eval()
    return model, example_input(cfg, seed=seed)
