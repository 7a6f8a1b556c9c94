"""The one place a hardware layer kind is defined.

Following FINN's HWCustomOp idea, each kind is one backend-independent class that holds its attributes
(shape, folding, bit widths, constants), its integer reference (`execute`), its cycle model and the name and
parameters of its RTL module in ``hw/rtl``. The RTL generator, the C backend and the estimators read these
classes; nothing about a kind's numerics lives anywhere else.

Tensors in the reference are numpy ``int64`` arrays of shape ``(H, W, C)`` (one frame, channels last),
holding the integer mantissas of the numerics contract (``docs/numerics.md``). Streams carry them in raster
order, ``lanes`` channels a beat, lane 0 in the least significant bits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np


@dataclass
class StreamSpec:
    """One stream interface: ``lanes`` elements of ``width`` bits per beat (signed unless stated)."""

    lanes: int
    width: int
    signed: bool = True

    @property
    def bits(self) -> int:
        return self.lanes * self.width


@dataclass
class HwLayer:
    """Base of every hardware layer kind.

    Subclasses declare their attributes as dataclass fields and implement ``execute``, ``cycles``,
    ``in_streams``, ``out_streams``, ``rtl_params`` and (where they hold constants) ``rtl_memories``.
    """

    name: str
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    #: name of the SystemVerilog module in hw/rtl that implements this kind
    rtl_module: str = dataclasses.field(default="", init=False, repr=False)

    # --- numerics -----------------------------------------------------------------------------------
    def execute(self, ins: list[np.ndarray]) -> list[np.ndarray]:
        """Integer reference: inputs and outputs are int64 (H, W, C) arrays."""
        raise NotImplementedError

    # --- cycle model --------------------------------------------------------------------------------
    def cycles(self) -> dict:
        """``{"ii": cycles between frames at full rate, "latency": first-in to last-out for one frame}``."""
        raise NotImplementedError

    # --- interfaces / RTL ---------------------------------------------------------------------------
    def in_streams(self) -> list[StreamSpec]:
        raise NotImplementedError

    def out_streams(self) -> list[StreamSpec]:
        raise NotImplementedError

    def rtl_params(self) -> dict:
        """SystemVerilog parameter values for ``rtl_module``."""
        raise NotImplementedError

    def rtl_memories(self) -> dict[str, list[int]]:
        """ROM contents (``$readmemh`` words, unsigned) keyed by the parameter naming the file."""
        return {}

    def describe(self) -> dict:
        """A JSON-able summary for reports: kind, shapes, folding."""
        d = {"name": self.name, "kind": type(self).__name__}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("name", "inputs", "outputs", "rtl_module") or isinstance(v, np.ndarray):
                continue
            d[f.name] = v
        return d


def sat(x: np.ndarray, bits: int, signed: bool = True) -> np.ndarray:
    """Saturate integers to a two's-complement (or unsigned) range of ``bits`` bits."""
    if signed:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    return np.clip(x, lo, hi).astype(np.int64)


def shift_floor(x: np.ndarray, sh: int) -> np.ndarray:
    """``x * 2^-sh`` floored (arithmetic shift right when ``sh > 0``, exact left shift when ``sh < 0``)."""
    x = np.asarray(x, dtype=np.int64)
    return (x >> sh) if sh >= 0 else (x << (-sh))


def clog2(n: int) -> int:
    """Ceiling log2, with clog2(1) = 0 (as SystemVerilog's $clog2)."""
    return max(0, int(n - 1).bit_length())


def to_unsigned(values, width: int) -> list[int]:
    mask = (1 << width) - 1
    return [int(v) & mask for v in np.asarray(values).ravel()]
