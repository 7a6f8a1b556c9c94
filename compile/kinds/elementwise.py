"""Elementwise and per-channel fixed-point layer kinds: the epilogues of the numerics contract.

Every operation floors (arithmetic shift right) and saturates, exactly as in ``docs/numerics.md``:

==============  ==========================================================  ==============
kind            integer form (per element, channel ``c``)                    ``OpKind`` code
==============  ==========================================================  ==============
Requant         ``y = sat_out(x >> shift)`` (then ``max(y, 0)`` if relu)     0
JoinAdd         ``y = sat_out((a << shift_a) + (b << shift_b))``             4
MulShift        ``y = sat_out((m_c * x) >> shift)``                          1
AddConst        ``y = sat_out(x + b_c)``                                     2
Prelu           ``y = x > 0 ? sat_out(x) : sat_out((beta_c * x) >> shift)``  3
Sign            ``y = x >= 0`` (1 bit)                                       5
Threshold       ``y = x >= T_c`` (``x <= T_c`` when ``neg_c``) (1 bit)       6
MultiThreshold  ``y = offset + sum_i (x >= T_c,i)``, n <= 2^k - 1 thresholds    7
==============  ==========================================================  ==============

``>> shift`` with a negative ``shift`` is an exact left shift (``shift_floor``). In hardware these are the
micro-operations of the fused epilogue (``epilogue.Epilogue``, ``hw/rtl/bhpe_epilogue.sv``; the compiler's
``FuseEpilogue`` pass turns every chain of them into one unit); a stand-alone op is a one-op unit: one
registered valid/ready stage (latency 1 cycle) that takes one beat (``lanes`` elements) a cycle, the
per-channel constants in a ROM of ``c / lanes`` words of ``lanes`` constants (lane 0 in the LSBs) walked with
a channel-group counter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import HwLayer, StreamSpec, clog2, sat, shift_floor, to_unsigned

#: registered stages between an accepted input beat and its output beat in every module of this file
PIPELINE_DEPTH = 1


def _range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@dataclass(kw_only=True)
class _Elementwise(HwLayer):
    """Shared fields and checks: ``c`` channels a pixel, ``lanes`` channels a beat, ``pixels`` = H*W."""

    c: int
    lanes: int = 1
    pixels: int = 1
    in_w: int = 16

    # --- checks -------------------------------------------------------------------------------------
    def _err(self, msg: str) -> ValueError:
        return ValueError(f"{type(self).__name__} layer '{self.name}': {msg}")

    def _check_common(self) -> None:
        for f in ("c", "lanes", "pixels", "in_w"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise self._err(f"{f} must be a positive integer, got {v!r}")
        if self.c % self.lanes:
            raise self._err(f"lanes={self.lanes} does not divide c={self.c}")

    def _check_width(self, field_name: str, bits: int, lo: int = 1, hi: int = 64) -> None:
        if not isinstance(bits, (int, np.integer)) or not lo <= bits <= hi:
            raise self._err(f"{field_name} must be an integer in [{lo}, {hi}], got {bits!r}")

    def _const(self, field_name: str, bits: int) -> np.ndarray:
        """Validate a per-channel constant array (shape (c,), fits ``bits`` signed) and return it as int64."""
        raw = np.asarray(getattr(self, field_name))
        if raw.shape != (self.c,):
            raise self._err(f"{field_name} must have shape ({self.c},), got {raw.shape}")
        if raw.size and not np.all(np.equal(np.mod(raw, 1), 0)):
            raise self._err(f"{field_name} must hold integers")
        arr = raw.astype(np.int64)
        lo, hi = _range(bits)
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise self._err(f"{field_name} values {arr.min()}..{arr.max()} do not fit {bits} signed bits")
        return arr

    def _input(self, x: np.ndarray, bits: int, which: str = "input") -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[-1] != self.c:
            raise self._err(f"{which} must be an (H, W, {self.c}) array, got shape {x.shape}")
        x = x.astype(np.int64)
        lo, hi = _range(bits)
        if x.size and (x.min() < lo or x.max() > hi):
            raise self._err(f"{which} values {x.min()}..{x.max()} do not fit {bits} signed bits")
        return x

    # --- cycle model --------------------------------------------------------------------------------
    @property
    def beats(self) -> int:
        """Beats a frame on every stream: pixels * c / lanes."""
        return self.pixels * (self.c // self.lanes)

    #: whether the RTL registers the op's product before its shift and saturation (a multiplying op whose
    #: product fits the epilogue's 64-bit slot: ``MulShift``, ``Prelu``)
    product_register = False
    #: whether the op reads per-channel constants; a unit whose first op does registers its input first
    #: (``compile/kinds/epilogue.py`` ``Epilogue.rtl_ops``)
    has_constants = False

    @property
    def rtl_stages(self) -> int:
        """Registered stages of the op alone (a one-op ``bhpe_epilogue``): PIPELINE_DEPTH, plus the input
        register of an op with constants and the product register of a multiplying op."""
        return PIPELINE_DEPTH + int(self.has_constants) + int(self.product_register)

    def cycles(self) -> dict:
        """One beat a cycle through ``rtl_stages`` registered stages and the unit's output FIFO (one cycle):
        ``ii`` = beats a frame; ``latency`` = first input beat accepted to last output beat accepted = (beats - 1)
        + rtl_stages + 1."""
        s = self.rtl_stages + 1
        return {"ii": self.beats, "latency": self.beats - 1 + s, "pipeline": s}

    # --- the kind interface (compile/kinds/base.py), shared by every elementwise kind ---------------------
    @property
    def exact(self) -> bool:
        return False  # a kind whose output may saturate or quantize (the exact ones override)

    def fuse_requant(self, rq) -> bool:
        """An exact layer takes a following Requant's output width, and its shift where it has one."""
        if not self.exact or not self._absorb_shift(rq.shift):
            return False
        self.out_w = rq.out_w
        return True

    def _absorb_shift(self, shift: int) -> bool:
        return shift == 0  # no output shift of its own: only a width change folds in

    foldable = False

    def steps_at(self, pe: int, simd: int) -> int:
        raise self._missing("steps_at (not a foldable kind)")

    def assign_lanes(self, in_lanes: list[int]) -> list[int]:
        """gcd of the input lanes and the channel count, on every input."""
        self.lanes = math.gcd(self.c, *in_lanes)
        return [self.lanes] * len(in_lanes)

    @property
    def out_lanes(self) -> int:
        return self.lanes

    def stream_capacity(self) -> int:
        return self.rtl_stages + 3  # its credits: the registered stages, the output FIFO's entry, one being read

    def weight_memory(self):
        return None  # per-channel constants stay in the unit's own ROM

    def op_counts(self) -> dict:
        return {"binary": 0, "fixed": 0}  # the roofline counts multiply-accumulates only

    mask_in = False
    mask_out = False
    fold_fields = ("lanes",)
    streamed = False

    def value_range(self, in_ranges):
        return None

    start_fraction = 0.0

    # --- RTL: a stand-alone op is a one-op fused epilogue (hw/rtl/bhpe_epilogue.sv); the RTL generator
    # (compile.rtlgen.module_and_params) wraps it in a one-op Epilogue, whose ROM is this op's ``rtl_memories``
    def rtl_in_ports(self) -> list[str]:
        return ["in", "b"]  # bhpe_epilogue's chain input and JoinAdd operand (tied off without a JoinAdd)

    # --- helpers for rtl_memories / resources -------------------------------------------------------
    def _rom_words(self, entries: np.ndarray, entry_w: int) -> list[int]:
        """Pack per-channel entries (unsigned ``entry_w``-bit) into c/lanes words, lane 0 in the LSBs."""
        u = np.asarray(to_unsigned(entries, entry_w), dtype=object).reshape(self.c // self.lanes, self.lanes)
        return [sum(int(v) << (lane * entry_w) for lane, v in enumerate(row)) for row in u]

    def _rom_resources(self, width: int) -> dict:
        """ROM of c/lanes words: distributed (LUT6 as 64x1 ROM) up to 64 words, else BRAM18 (512x36)."""
        depth = self.c // self.lanes
        if depth <= 64:
            return {"lut": width * math.ceil(depth / 64), "bram18": 0}
        return {"lut": 0, "bram18": math.ceil(width / 36) * math.ceil(depth / 512)}

    def _stage_resources(self, out_bits: int, lut_per_lane: int, const_bits: int = 0, dsp: int = 0) -> dict:
        counter_w = clog2(self.c // self.lanes) if const_bits else 0
        res = {"lut": self.lanes * lut_per_lane + 2 + 2 * counter_w,
               "ff": out_bits + 1 + counter_w + const_bits * self.lanes, "bram18": 0, "dsp": dsp}
        if const_bits:
            rom = self._rom_resources(const_bits * self.lanes)
            res["lut"] += rom["lut"]
            res["bram18"] += rom["bram18"]
        return res


def _shift_ok(layer: _Elementwise, shift: int, field_name: str = "shift") -> None:
    if not isinstance(shift, (int, np.integer)) or abs(int(shift)) > 62:
        raise layer._err(f"{field_name} must be an integer in [-62, 62], got {shift!r}")


def _sat_luts(wide: int, out_w: int) -> int:
    """LUTs of a saturation of a ``wide``-bit value to ``out_w`` bits: overflow detect + output mux."""
    return 0 if wide <= out_w else math.ceil((wide - out_w + 1) / 3) + out_w


# ------------------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Requant(_Elementwise):
    """``y = sat_out(x >> shift)`` (negative shift = left shift), then ``max(y, 0)`` when ``relu``."""

    out_w: int = 8
    shift: int = 0
    relu: bool = False

    def __post_init__(self) -> None:
        self.rtl_module = "bhpe_epilogue"
        self._check_common()
        self._check_width("out_w", self.out_w)
        _shift_ok(self, self.shift)

    @property
    def exact(self) -> bool:
        return not self.relu and self.out_w >= self.in_w - self.shift

    def _absorb_shift(self, shift: int) -> bool:
        self.shift = self.shift + shift  # floor shifts compose
        return True

    def execute(self, ins: list[np.ndarray]) -> list[np.ndarray]:
        x = self._input(ins[0], self.in_w)
        y = sat(shift_floor(x, self.shift), self.out_w)
        if self.relu:
            y = np.maximum(y, 0)
        return [y]

    def in_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.in_w)]

    def out_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.out_w)]

    def resources(self) -> dict:
        """First-order model: per lane a saturation (overflow detect + mux) LUTs, one output register."""
        wide = self.in_w + max(0, -self.shift)
        return self._stage_resources(self.lanes * self.out_w, _sat_luts(wide, self.out_w) + int(self.relu))


@dataclass(kw_only=True)
class JoinAdd(_Elementwise):
    """``y = sat_out((a << shift_a) + (b << shift_b))`` over two streams ``a`` (in_w bits), ``b`` (in_b_w)."""

    in_b_w: int = 16
    out_w: int = 16
    shift_a: int = 0
    shift_b: int = 0

    def __post_init__(self) -> None:
        self.rtl_module = "bhpe_epilogue"
        self._check_common()
        self._check_width("in_b_w", self.in_b_w)
        self._check_width("out_w", self.out_w)
        for f in ("shift_a", "shift_b"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or not 0 <= v <= 62:
                raise self._err(f"{f} must be a non-negative left shift in [0, 62], got {v!r}")

    @property
    def exact(self) -> bool:
        return self.out_w >= max(self.in_w + self.shift_a, self.in_b_w + self.shift_b) + 1

    def execute(self, ins: list[np.ndarray]) -> list[np.ndarray]:
        if len(ins) != 2:
            raise self._err(f"takes two inputs, got {len(ins)}")
        a = self._input(ins[0], self.in_w, "input a")
        b = self._input(ins[1], self.in_b_w, "input b")
        if a.shape != b.shape:
            raise self._err(f"inputs differ in shape: {a.shape} vs {b.shape}")
        return [sat(shift_floor(a, -self.shift_a) + shift_floor(b, -self.shift_b), self.out_w)]

    def in_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.in_w), StreamSpec(self.lanes, self.in_b_w)]

    def out_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.out_w)]

    def resources(self) -> dict:
        """First-order model: per lane a carry-chain adder (1 LUT/bit) and a saturation, one output register."""
        sum_w = max(self.in_w + self.shift_a, self.in_b_w + self.shift_b) + 1
        return self._stage_resources(self.lanes * self.out_w, sum_w + _sat_luts(sum_w, self.out_w))


@dataclass(kw_only=True)
class MulShift(_Elementwise):
    """``y = sat_out((m_c * x) >> shift)``, ``m`` per channel, ``const_w`` signed bits (alpha, BN scale)."""

    has_constants = True

    out_w: int = 16
    const_w: int = 8
    m: np.ndarray
    shift: int = 0

    def __post_init__(self) -> None:
        self.rtl_module = "bhpe_epilogue"
        self._check_common()
        self._check_width("out_w", self.out_w)
        self._check_width("const_w", self.const_w)
        _shift_ok(self, self.shift)
        self.m = self._const("m", self.const_w)

    @property
    def exact(self) -> bool:
        return self.shift == 0 and self.out_w >= self.in_w + self.const_w

    def _absorb_shift(self, shift: int) -> bool:
        self.shift = shift
        return True

    @property
    def product_register(self) -> bool:
        """The product (``in_w + const_w`` bits, shifted left by a negative shift) is registered before the
        shift and saturation: the multiplier's output is a pipeline boundary (ECP5's MULT18X18D, a DSP48)."""
        return self.in_w + self.const_w + max(0, -self.shift) <= 64

    def value_range(self, in_ranges):
        """Without a shift the products of the input bounds and the multipliers' extremes."""
        if self.shift != 0:
            return None
        a, b = in_ranges[0]
        m = np.asarray(self.m)
        cands = [a * int(m.min()), a * int(m.max()), b * int(m.min()), b * int(m.max())]
        return min(cands), max(cands)

    def execute(self, ins: list[np.ndarray]) -> list[np.ndarray]:
        x = self._input(ins[0], self.in_w)
        return [sat(shift_floor(x * self.m, self.shift), self.out_w)]

    def in_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.in_w)]

    def out_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.out_w)]

    def rtl_memories(self) -> dict[str, list[int]]:
        return {"InitFile": self._rom_words(self.m, self.const_w)}

    def resources(self) -> dict:
        """First-order model: one DSP48 (27x18) per lane, saturation LUTs, constant ROM, output register."""
        wide = self.in_w + self.const_w + max(0, -self.shift)
        return self._stage_resources(self.lanes * self.out_w, _sat_luts(wide, self.out_w), self.const_w,
                                     dsp=self.lanes * math.ceil(max(self.in_w, self.const_w) / 27))


@dataclass(kw_only=True)
class AddConst(_Elementwise):
    """``y = sat_out(x + b_c)``, ``b`` per channel, ``const_w`` signed bits (gamma, zeta, BN shift)."""

    has_constants = True

    out_w: int = 16
    const_w: int = 16
    b: np.ndarray

    def __post_init__(self) -> None:
        self.rtl_module = "bhpe_epilogue"
        self._check_common()
        self._check_width("out_w", self.out_w)
        self._check_width("const_w", self.const_w)
        self.b = self._const("b", self.const_w)

    @property
    def exact(self) -> bool:
        return self.out_w >= max(self.in_w, self.const_w) + 1

    def value_range(self, in_ranges):
        a, b = in_ranges[0]
        return a + int(np.min(self.b)), b + int(np.max(self.b))

    def execute(self, ins: list[np.ndarray]) -> list[np.ndarray]:
        x = self._input(ins[0], self.in_w)
        return [sat(x + self.b, self.out_w)]

    def in_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.in_w)]

    def out_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.out_w)]

    def rtl_memories(self) -> dict[str, list[int]]:
        return {"InitFile": self._rom_words(self.b, self.const_w)}

    def resources(self) -> dict:
        """First-order model: per lane a carry-chain adder and a saturation, constant ROM, output register."""
        sum_w = max(self.in_w, self.const_w) + 1
        return self._stage_resources(self.lanes * self.out_w, sum_w + _sat_luts(sum_w, self.out_w), self.const_w)


@dataclass(kw_only=True)
class Prelu(_Elementwise):
    """``y = x > 0 ? sat_out(x) : sat_out((beta_c * x) >> shift)`` (the slope of RPReLU, eq. 6)."""

    has_constants = True

    out_w: int = 16
    const_w: int = 8
    beta: np.ndarray
    shift: int = 0

    def __post_init__(self) -> None:
        self.rtl_module = "bhpe_epilogue"
        self._check_common()
        self._check_width("out_w", self.out_w)
        self._check_width("const_w", self.const_w)
        _shift_ok(self, self.shift)
        self.beta = self._const("beta", self.const_w)

    @property
    def product_register(self) -> bool:
        """As ``MulShift``: the negative side's product (left-shifted by a negative shift), and the positive
        side's input left-shifted by a positive shift, are registered before one shift and saturation."""
        return max(self.in_w + self.const_w + max(0, -self.shift), self.in_w + max(0, self.shift)) <= 64

    def execute(self, ins: list[np.ndarray]) -> list[np.ndarray]:
        x = self._input(ins[0], self.in_w)
        neg = sat(shift_floor(x * self.beta, self.shift), self.out_w)
        return [np.where(x > 0, sat(x, self.out_w), neg)]

    def in_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.in_w)]

    def out_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.out_w)]

    def rtl_memories(self) -> dict[str, list[int]]:
        return {"InitFile": self._rom_words(self.beta, self.const_w)}

    def resources(self) -> dict:
        """First-order model: one DSP48 per lane, two saturations and a select, constant ROM, output register."""
        wide = self.in_w + self.const_w + max(0, -self.shift)
        luts = _sat_luts(wide, self.out_w) + _sat_luts(self.in_w, self.out_w) + self.out_w + self.in_w // 6 + 1
        return self._stage_resources(self.lanes * self.out_w, luts, self.const_w,
                                     dsp=self.lanes * math.ceil(max(self.in_w, self.const_w) / 27))


@dataclass(kw_only=True)
class Sign(_Elementwise):
    """Binary activation (eq. 1): ``y = x >= 0`` as one bit (1 = +1, 0 = -1)."""

    out_w: int = 1

    def __post_init__(self) -> None:
        self.rtl_module = "bhpe_epilogue"
        self._check_common()
        if self.out_w != 1:
            raise self._err(f"out_w must be 1, got {self.out_w}")

    def execute(self, ins: list[np.ndarray]) -> list[np.ndarray]:
        x = self._input(ins[0], self.in_w)
        return [(x >= 0).astype(np.int64)]

    def in_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.in_w)]

    def out_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, 1, signed=False)]

    def resources(self) -> dict:
        """First-order model: an inverter per lane (absorbed) and a 1-bit output register per lane."""
        return self._stage_resources(self.lanes, 0)


@dataclass(kw_only=True)
class Threshold(_Elementwise):
    """BNN-PYNQ BatchNorm + Sign: ``y = x >= T_c``, or ``x <= T_c`` where ``neg_c`` (negative BN scale)."""

    has_constants = True

    thr_w: int = 16
    thresholds: np.ndarray
    neg: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.rtl_module = "bhpe_epilogue"
        self._check_common()
        self._check_width("thr_w", self.thr_w)
        self.thresholds = self._const("thresholds", self.thr_w)
        if self.neg is None:
            self.neg = np.zeros(self.c, dtype=np.int64)
        neg = np.asarray(self.neg)
        if neg.shape != (self.c,) or not np.all((neg == 0) | (neg == 1)):
            raise self._err(f"neg must be a ({self.c},) array of 0/1 (or booleans)")
        self.neg = neg.astype(np.int64)

    def execute(self, ins: list[np.ndarray]) -> list[np.ndarray]:
        x = self._input(ins[0], self.in_w)
        t = self.thresholds
        return [np.where(self.neg.astype(bool), x <= t, x >= t).astype(np.int64)]

    def in_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.in_w)]

    def out_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, 1, signed=False)]

    def rtl_memories(self) -> dict[str, list[int]]:
        """Entries of thr_w + 1 bits: the threshold (two's complement) in the low bits, ``neg`` on top."""
        entries = np.asarray(to_unsigned(self.thresholds, self.thr_w), dtype=np.int64) | (self.neg << self.thr_w)
        return {"InitFile": self._rom_words(entries, self.thr_w + 1)}

    def resources(self) -> dict:
        """First-order model: per lane a signed comparator (carry chain, 1 LUT/bit) and a direction mux, ROM."""
        cmp_w = max(self.in_w, self.thr_w)
        return self._stage_resources(self.lanes, cmp_w + 1, self.thr_w + 1)


@dataclass(kw_only=True)
class MultiThreshold(_Elementwise):
    """FINN-style MultiThreshold: ``y = offset + sum_i (x >= T_c,i)``, ``n`` thresholds a channel
    (``1 <= n <= 2^out_w - 1``; FINN's hardware-mode use has ``n = 2^out_w - 1``, ``offset = 0``), an
    ``out_w``-bit output, unsigned unless ``signed`` (a quantizer's levels ``offset .. offset + n``, e.g. the
    signed levels -1, 0, 1 of a 2-bit narrow quantizer: ``offset = -1``, two thresholds)."""

    has_constants = True

    thr_w: int = 16
    out_w: int = 2
    thresholds: np.ndarray
    offset: int = 0
    signed: bool = False

    def __post_init__(self) -> None:
        self.rtl_module = "bhpe_epilogue"
        self._check_common()
        self._check_width("thr_w", self.thr_w, hi=63)
        self._check_width("out_w", self.out_w, hi=8)
        t = np.asarray(self.thresholds)
        if t.ndim != 2 or t.shape[0] != self.c or not 1 <= t.shape[1] <= (1 << self.out_w) - 1:
            raise self._err(f"thresholds must have shape ({self.c}, n) with 1 <= n <= {(1 << self.out_w) - 1} "
                            f"for out_w={self.out_w}, got {t.shape}")
        lo, hi = _range(self.thr_w)
        t = t.astype(np.int64)
        if t.min() < lo or t.max() > hi:
            raise self._err(f"thresholds {t.min()}..{t.max()} do not fit {self.thr_w} signed bits")
        self.thresholds = t
        if not isinstance(self.offset, (int, np.integer)):
            raise self._err(f"offset must be an integer, got {self.offset!r}")
        self.offset, self.signed = int(self.offset), bool(self.signed)
        olo, ohi = _range(self.out_w) if self.signed else (0, (1 << self.out_w) - 1)
        if self.offset < olo or self.offset + self.n > ohi:
            raise self._err(f"outputs {self.offset}..{self.offset + self.n} do not fit the "
                            f"{'signed' if self.signed else 'unsigned'} {self.out_w}-bit output")
        if abs(self.offset) >= 1 << 15:
            raise self._err(f"offset {self.offset} does not fit 16 signed bits")

    @property
    def n(self) -> int:
        """Thresholds a channel."""
        return int(self.thresholds.shape[1])

    def execute(self, ins: list[np.ndarray]) -> list[np.ndarray]:
        x = self._input(ins[0], self.in_w)
        return [self.offset + (x[..., None] >= self.thresholds).sum(axis=-1).astype(np.int64)]

    def in_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.in_w)]

    def out_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.lanes, self.out_w, signed=self.signed)]

    def rtl_memories(self) -> dict[str, list[int]]:
        """One lane entry = the channel's thresholds, threshold i at bit i*thr_w (two's complement)."""
        entries = [sum(v << (i * self.thr_w) for i, v in enumerate(to_unsigned(row, self.thr_w)))
                   for row in self.thresholds]
        return {"InitFile": self._rom_words(np.array(entries, dtype=object), self.n * self.thr_w)}

    def resources(self) -> dict:
        """First-order model: per lane n comparators (1 LUT/bit) and a popcount adder tree (plus an adder for a
        non-zero offset), ROM."""
        n = self.n
        cmp_w = max(self.in_w, self.thr_w)
        return self._stage_resources(self.lanes * self.out_w, n * (cmp_w + 1) + n + (self.out_w if self.offset else 0),
                                     n * self.thr_w)


#: kind name -> class, for the compiler's lowering and the tests
KINDS = {k.__name__: k for k in (Requant, JoinAdd, MulShift, AddConst, Prelu, Sign, Threshold, MultiThreshold)}
