"""Declared configuration schemas, checked in one place, with errors that name the key.

``NumericsConfig`` is the hardware-mode numerics contract (docs/numerics.md); ``BiDRNConfig`` describes a
BiDRN backbone so that a tiny BiDRN and the paper-scale BiDRN-50 are the same code with different numbers.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from dataclasses import dataclass, field

from binaryhpe import BinaryHPEError

LCR_MODULES = ("dscr", "fur", "fdr", "dsar")


def read_json_config(path) -> dict:
    """The mapping in a JSON config file (one clear error for a missing file or bad JSON)."""
    p = pathlib.Path(path)
    if not p.is_file():
        raise BinaryHPEError(f"config file not found: {p}")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise BinaryHPEError(f"{p}: not valid JSON ({e})") from None


def config_from_dict(cls, d: dict, where: str):
    """``cls(**d)`` for a config dataclass, naming the first unknown key and the known ones."""
    if not isinstance(d, dict):
        raise BinaryHPEError(f"{where}: expected a mapping, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise BinaryHPEError(f"{where}: unknown config key {unknown[0]!r} (known keys: {', '.join(sorted(names))})")
    return cls(**d)


@dataclass(frozen=True)
class NumericsConfig:
    """Bit widths of the hardware mode (see docs/numerics.md)."""

    act_bits: int = 8  # A format Q(act_bits, act_bits-1): Hardtanh output
    res_bits: int = 16  # X format width: every other full-precision value
    res_frac: int = 10  # X format fraction bits
    const_bits: int = 8  # multiplicative per-channel constants (alpha, RPReLU beta, BN scale)
    fxp_weight_bits: int = 8  # stem, full-precision Block Residual and head weights
    in_bits: int = 8  # network input Q(in_bits, in_bits-1)
    head_bits: int = 8  # H format Q(head_bits, head_frac): X tensors (encoder features) read by the heads'
    head_frac: int = 3  # fixed-point convs are requantized to H first (docs/wholebody.md, "Hardware parts")

    def __post_init__(self):
        for key, lo, hi in (("act_bits", 2, 16), ("res_bits", 8, 24), ("const_bits", 2, 12),
                            ("fxp_weight_bits", 2, 16), ("in_bits", 2, 16), ("head_bits", 2, 16)):
            v = getattr(self, key)
            if not isinstance(v, int) or not lo <= v <= hi:
                raise BinaryHPEError(f"numerics.{key} = {v!r} is out of range: expected an integer in [{lo}, {hi}]")
        if not isinstance(self.res_frac, int) or not self.act_frac + 2 <= self.res_frac < self.res_bits:
            raise BinaryHPEError(
                f"numerics.res_frac = {self.res_frac!r} is out of range: expected an integer in "
                f"[act_bits+1 = {self.act_frac + 2}, res_bits-1 = {self.res_bits - 1}] so that residual adds and "
                "2x2 average pools of activations are exact in the X format")
        if self.const_bits + self.res_bits > 24:
            raise BinaryHPEError(
                f"numerics: const_bits + res_bits = {self.const_bits + self.res_bits} > 24: products of constants "
                "and X values would not be exact in float32 (see docs/numerics.md)")
        if not isinstance(self.head_frac, int) or not 0 <= self.head_frac <= self.res_frac:
            raise BinaryHPEError(
                f"numerics.head_frac = {self.head_frac!r} is out of range: expected an integer in [0, res_frac = "
                f"{self.res_frac}] (H is a floor of X)")

    @property
    def act_frac(self) -> int:
        return self.act_bits - 1

    @property
    def in_frac(self) -> int:
        return self.in_bits - 1

    @classmethod
    def from_dict(cls, d: dict) -> "NumericsConfig":
        return config_from_dict(cls, d, "numerics")


@dataclass(frozen=True)
class StageConfig:
    block: str  # "basic" (ResNet-18/34) or "bottleneck" (ResNet-50)
    channels: int  # output channels of the stage's blocks
    blocks: int
    stride: int = 1

    def __post_init__(self):
        if self.block not in ("basic", "bottleneck"):
            raise BinaryHPEError(f"stage.block = {self.block!r}: expected 'basic' or 'bottleneck'")
        if not isinstance(self.channels, int) or self.channels < 1:
            raise BinaryHPEError(f"stage.channels = {self.channels!r}: expected a positive integer")
        if self.block == "bottleneck" and self.channels % 4:
            raise BinaryHPEError(f"stage.channels = {self.channels}: a bottleneck stage needs a multiple of 4")
        if not isinstance(self.blocks, int) or self.blocks < 1:
            raise BinaryHPEError(f"stage.blocks = {self.blocks!r}: expected a positive integer")
        if self.stride not in (1, 2):
            raise BinaryHPEError(f"stage.stride = {self.stride!r}: expected 1 or 2")


@dataclass(frozen=True)
class BiDRNConfig:
    """A BiDRN backbone: full-precision stem, then stages of BiDRBs (the stem always stays full precision)."""

    in_channels: int = 3
    input_size: tuple = (16, 16)  # (H, W)
    stem_channels: int = 8
    stem_kernel: int = 3
    stem_stride: int = 1
    stem_maxpool: bool = False
    stages: tuple = (
        StageConfig("basic", 8, 1, 1),
        StageConfig("basic", 16, 1, 2),
        StageConfig("bottleneck", 32, 2, 1),
    )
    lcr_modules: tuple = LCR_MODULES  # which redesigned LCR modules are used (Table 2a)
    block_residual: str = "fp"  # "fp" (full-precision 1x1 conv), "binary", or "none" (Table 2c)
    numerics: NumericsConfig = field(default_factory=NumericsConfig)

    def __post_init__(self):
        stages = tuple(s if isinstance(s, StageConfig) else config_from_dict(StageConfig, s, "stages[]") for s in self.stages)
        object.__setattr__(self, "stages", stages)
        if isinstance(self.numerics, dict):
            object.__setattr__(self, "numerics", NumericsConfig.from_dict(self.numerics))
        size = tuple(self.input_size)
        object.__setattr__(self, "input_size", size)
        object.__setattr__(self, "lcr_modules", tuple(self.lcr_modules))
        if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
            raise BinaryHPEError(f"input_size = {self.input_size!r}: expected (H, W) positive integers")
        bad = [m for m in self.lcr_modules if m not in LCR_MODULES]
        if bad:
            raise BinaryHPEError(f"lcr_modules: unknown module {bad[0]!r} (known: {', '.join(LCR_MODULES)})")
        if self.block_residual not in ("fp", "binary", "none"):
            raise BinaryHPEError(f"block_residual = {self.block_residual!r}: expected 'fp', 'binary' or 'none'")
        if self.stem_kernel not in (1, 3, 5, 7) or self.stem_stride not in (1, 2):
            raise BinaryHPEError(f"stem: kernel {self.stem_kernel} / stride {self.stem_stride} not supported "
                                 "(kernel 1, 3, 5 or 7; stride 1 or 2)")
        if not self.stages:
            raise BinaryHPEError("stages: at least one stage is needed")
        self.check_input_size(size)

    def downsampling(self) -> int:
        f = self.stem_stride * (2 if self.stem_maxpool else 1)
        for s in self.stages:
            f *= s.stride
        return f

    def check_input_size(self, size) -> None:
        """Each stride-2 step halves the map exactly: the input must divide by the total downsampling."""
        f = self.downsampling()
        h, w = size
        if h % f or w % f:
            raise BinaryHPEError(
                f"input size {h}x{w} cannot be taken by this network: height and width must be multiples of {f} "
                f"(stem stride {self.stem_stride}, maxpool {self.stem_maxpool}, stage strides "
                f"{[s.stride for s in self.stages]})")

    @classmethod
    def from_dict(cls, d: dict) -> "BiDRNConfig":
        return config_from_dict(cls, d, "bidrn")

    @classmethod
    def from_file(cls, path) -> "BiDRNConfig":
        return cls.from_dict(read_json_config(path))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resnet_stages(depth: int, width: int = 64) -> tuple:
    """The stage list of ResNet-18/34/50 (torchvision layout)."""
    if depth == 18:
        return tuple(StageConfig("basic", width * m, n, s) for m, n, s in ((1, 2, 1), (2, 2, 2), (4, 2, 2), (8, 2, 2)))
    if depth == 34:
        return tuple(StageConfig("basic", width * m, n, s) for m, n, s in ((1, 3, 1), (2, 4, 2), (4, 6, 2), (8, 3, 2)))
    if depth == 50:
        return tuple(StageConfig("bottleneck", width * m, n, s)
                     for m, n, s in ((4, 3, 1), (8, 4, 2), (16, 6, 2), (32, 3, 2)))
    raise BinaryHPEError(f"ResNet depth {depth} not supported: expected 18, 34 or 50")


def bidrn_config(depth: int, input_size=(256, 192), **kw) -> BiDRNConfig:
    """BiDRN-18/34/50: the ResNet stem (7x7/2 conv + 3x3/2 max pool) and stages, binarized."""
    return BiDRNConfig(in_channels=3, input_size=tuple(input_size), stem_channels=64, stem_kernel=7,
                       stem_stride=2, stem_maxpool=True, stages=resnet_stages(depth), **kw)


TINY = BiDRNConfig()
