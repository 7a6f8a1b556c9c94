"""The one place a hardware layer kind is defined.

Following FINN's HWCustomOp idea, each kind is one backend-independent class that holds its attributes
(shape, folding, bit widths, constants), its integer reference (`execute`), its cycle model and the name and
parameters of its RTL module in ``hw/rtl``. The RTL generator, the C backend and the estimators read these
classes; nothing about a kind's numerics lives anywhere else.

The compiler asks a kind, never re-derives: every fact a pass, estimator or backend needs is a method or
property below (:class:`HwLayer`). The base class implements none of them: a kind that lacks one fails with
an error naming the layer and the kind (:class:`KindContractError`), never with a silent default. The
families (``_Elementwise``, ``_MvuBase``, the plumbing kinds, ``SlidingWindow``, ``Pool``) implement them, so
a new kind that subclasses a family inherits the family's answers and overrides what differs.

Tensors in the reference are numpy ``int64`` arrays of shape ``(H, W, C)`` (one frame, channels last),
holding the integer mantissas of the numerics contract (``docs/numerics.md``). Streams carry them in raster
order, ``lanes`` channels a beat, lane 0 in the least significant bits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from binaryhpe import BinaryHPEError


class KindContractError(BinaryHPEError, NotImplementedError):
    """A kind does not implement a method of the kind interface (raised naming the layer and the kind)."""


@dataclass
class StreamSpec:
    """One stream interface: ``lanes`` elements of ``width`` bits per beat (signed unless stated)."""

    lanes: int
    width: int
    signed: bool = True

    @property
    def bits(self) -> int:
        return self.lanes * self.width


@dataclass(frozen=True)
class WeightMemory:
    """A kind's weight memory as the storage planner sees it.

    ``width`` x ``depth``: the ROM words (bits x words); ``bits``: the weight bits of the matrix; ``bram18``:
    block RAMs as the kind's resource model places the ROM (0: in logic / LUT RAM); ``placements``: where the
    planner may move it besides (``"uram"``, ``"dram"``: streamed into a weight port)."""

    width: int
    depth: int
    bits: int
    bram18: int
    placements: tuple[str, ...] = ()


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
        raise self._missing("execute")

    # --- cycle model --------------------------------------------------------------------------------
    def cycles(self) -> dict:
        """``{"ii": cycles between frames at full rate, "latency": first-in to last-out for one frame}``."""
        raise self._missing("cycles")

    # --- interfaces / RTL ---------------------------------------------------------------------------
    def in_streams(self) -> list[StreamSpec]:
        raise self._missing("in_streams")

    def out_streams(self) -> list[StreamSpec]:
        raise self._missing("out_streams")

    def rtl_params(self) -> dict:
        """SystemVerilog parameter values for ``rtl_module`` (a kind without them is refused by the RTL backend)."""
        raise self._missing("rtl_params")

    def resources(self) -> dict:
        """Estimated ``{"lut", "ff", "bram18", "dsp"}`` (``uram`` where it has any) of the kind's RTL module."""
        raise self._missing("resources")

    def rtl_memories(self) -> dict[str, list[int]]:
        """ROM contents (``$readmemh`` words, unsigned) keyed by the parameter naming the file."""
        return {}

    # --- what the compiler asks of every kind (no defaults here: see KindContractError) -----------------
    def _missing(self, what: str) -> KindContractError:
        return KindContractError(f"layer {self.name}: kind {type(self).__name__} does not implement {what} "
                                 "(compile/kinds/base.py lists the kind interface)")

    @property
    def exact(self) -> bool:
        """True when the output width holds every result without saturating (a following Requant may fold
        into it)."""
        raise self._missing("exact")

    def fuse_requant(self, rq) -> bool:
        """Absorb ``rq``, a Requant that is this layer's only consumer, if the result is exact operation by
        operation; return whether it did (the pass then drops ``rq``)."""
        raise self._missing("fuse_requant")

    @property
    def foldable(self) -> bool:
        """True for a kind with PE/SIMD folding (a matrix-vector unit): ``SetFolding`` chooses it."""
        raise self._missing("foldable")

    def steps_at(self, pe: int, simd: int) -> int:
        """Cycles a frame at folding ``pe`` x ``simd`` (foldable kinds only)."""
        raise self._missing("steps_at")

    def assign_lanes(self, in_lanes: list[int]) -> list[int]:
        """Take the lanes this layer can run at given its inputs' lanes (sets ``lanes`` where it has them)
        and return the lanes it wants on each input (a width converter goes where they differ)."""
        raise self._missing("assign_lanes")

    @property
    def out_lanes(self) -> int:
        """Lanes of the output stream(s)."""
        raise self._missing("out_lanes")

    def stream_capacity(self) -> int:
        """Beats (of the input stream) the layer takes in before it must emit: its buffers (FIFO sizing)."""
        raise self._missing("stream_capacity")

    def weight_memory(self) -> WeightMemory | None:
        """The weight memory the storage planner may place, or None (constants, if any, stay in the unit)."""
        raise self._missing("weight_memory")

    def op_counts(self) -> dict:
        """Operations a frame (a multiply-accumulate counts 2): ``{"binary": .., "fixed": ..}``."""
        raise self._missing("op_counts")

    @property
    def mask_in(self) -> bool:
        """True when the RTL module has an ``in_tmask`` sideband (the window validity mask)."""
        raise self._missing("mask_in")

    @property
    def mask_out(self) -> bool:
        """True when the RTL module drives an ``out_tmask`` sideband."""
        raise self._missing("mask_out")

    def value_range(self, in_ranges: list[tuple[int, int]]) -> tuple[int, int] | None:
        """A bound ``(lo, hi)`` on the output integers given bounds on the inputs', or None when the kind
        knows nothing tighter than its output format."""
        raise self._missing("value_range")

    @property
    def fold_fields(self) -> tuple[str, ...]:
        """Names of the attributes that fold the layer (``pe``/``simd`` of an MVU, ``lanes``, a FIFO's ``depth``)."""
        raise self._missing("fold_fields")

    def folding(self) -> dict:
        """The folding of the layer as reported (``{field: value}`` over ``fold_fields``)."""
        return {k: getattr(self, k) for k in self.fold_fields}

    @property
    def streamed(self) -> bool:
        """True when the layer's weights arrive on a weight stream (a top-level ``w_<layer>`` port)."""
        raise self._missing("streamed")

    @property
    def start_fraction(self) -> float:
        """Fraction of its input frame a layer must receive before its first output (a window generator:
        the rows of its first window); 0 for a pipeline (the streaming latency estimate)."""
        raise self._missing("start_fraction")

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


def lut_mul_luts(a_w: int, b_w: int) -> int:
    """First-order model of ``bhpe_mul`` in logic (``Lut = 1``, a_w x b_w bits) in LUT4s: its ``b_w`` partial
    products reduced by ``b_w - 1`` adders and a negation, each ``a_w + b_w`` bits of carry chain (a CCU2C is
    two LUT4s for two bits; the partial products' ANDs fold into the adders' LUTs)."""
    return b_w * (a_w + b_w)
