"""Matrix-vector unit layer kinds: the compute core of every convolution and fully-connected layer.

Both kinds take the output of the sliding-window generator: for each output pixel the window vector of
``n = K*K*Cin`` elements in ``(ky, kx, c)`` order, ``simd`` elements a beat, plus a parallel mask stream
(1 = real tap, 0 = zero-padding tap). They produce, for each output pixel, ``cout`` accumulators in channel
order, ``pe`` lanes a beat. Folding: neuron fold ``NF = cout/pe``, synapse fold ``SF = n/simd``; the unit
buffers the ``SF`` input beats of a pixel and walks them ``NF`` times, so a pixel costs ``NF*SF`` cycles.

Weight ROM layout (both kinds, ``NF*SF`` words): the word at address ``nf*SF + sf`` holds, in element slot
``p*simd + s`` (slot 0 in the LSBs; 1 bit per slot for XNOR, ``w_w`` bits for fixed point), the weight of
output channel ``nf*pe + p`` for window element ``sf*simd + s``.

Numerics: ``docs/numerics.md`` (binary conv: ``p = 2*popcount(xnor & valid) - popcount(valid)``; fixed-point
conv: ``acc = sum w*a`` with padding taps contributing 0).

Streamed weights (``weight_source = "stream"``, for matrices that do not fit on chip): the unit is
``bhpe_mvu_wstream`` (both kinds, ``Binary`` parameter), which has no ROM but a weight AXI-Stream input
(:meth:`_MvuBase.wstream_spec`) carrying the ROM words above, one a beat, address order ``nf*SF + sf``,
the whole matrix again for every output pixel: ``pixels*NF*SF`` words a frame
(:meth:`_MvuBase.wstream_frame_words`). A DMA replays the ``NF*SF``-word image
(:meth:`_MvuBase.wstream_matrix_words`) ``pixels`` times a frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fractions import Fraction

from binaryhpe.compile.kinds.base import HwLayer, StreamSpec, WeightMemory, clog2, lut_mul_luts
from binaryhpe.compile.kinds.plumbing import _bram18, _lutram

#: register stages between an accepted input beat and the output register (fetch, dot/popcount, acc), before
#: the stages added for the clock (:func:`mvu_pipelining`)
MVU_PIPELINE = 3
#: the clock (MHz) an MVU's pipelining is chosen for when the build names no device (ECP5-85F's, the
#: default device of ``--bitstream``)
DEFAULT_CLOCK_MHZ = 100.0
#: popcount trees of up to this many bits stay combinational at any clock (an XnorMvu at SIMD 8 alone on the
#: ECP5-85F: 200 MHz, its popcount 1.4 ns of logic; benchmarks/ecp5_fmax.py --layers)
POPCOUNT_COMB_BITS = 32


def mvu_pipelining(binary: bool, simd: int, clock_mhz: float) -> tuple[int, int]:
    """``(mul_reg, tree_levels)`` of an MVU for a target clock (the RTL parameters ``MulReg``, ``TreeLevels``).

    Fixed point: the multipliers' operands and products are registered (``MulReg`` = 2: a MULT18X18D is ~3 ns
    of the ECP5's 10, and the ECP5-85F's sit in three rows, up to 46 rows from the logic that feeds them, so
    each gets its own operand registers to place beside it), and the adder tree gets a register every 2 adder
    levels up to 125 MHz, every level above (UltraScale+ at 200 to 250 MHz). Binary: popcounts of up to
    :data:`POPCOUNT_COMB_BITS` bits stay combinational; wider ones are registered every 3 levels (every 2
    above 125 MHz). Each register is one cycle of latency (``bhpe_pkg::mvu_extra_stages``), never a cycle of
    rate."""
    fast = clock_mhz > 125.0
    if binary:
        return 0, (0 if simd <= POPCOUNT_COMB_BITS else (2 if fast else 3))
    return 2, (1 if fast else 2)


def tree_stages(count: int, levels_per_stage: int) -> int:
    """Registers on every path of ``bhpe_pipe_adder_tree`` (``bhpe_pkg::tree_stages``)."""
    if levels_per_stage == 0 or count < 2:
        return 0
    return (clog2(count) - 1) // levels_per_stage
#: the RTL module of an MVU whose weights are streamed in (both kinds)
WSTREAM_MODULE = "bhpe_mvu_wstream"
WEIGHT_SOURCES = ("rom", "stream")


@dataclass
class _MvuBase(HwLayer):
    n: int = 1
    cout: int = 1
    pe: int = 1
    simd: int = 1
    weights: np.ndarray = field(default_factory=lambda: np.zeros((1, 1), dtype=np.int64), repr=False)
    pixels: int = 1  # output pixels per frame (OH*OW), for the cycle model
    #: "rom": weights in an on-chip ROM (``bhpe_xnor_mvu`` / ``bhpe_fxp_mvu``); "stream": weights arrive on
    #: a weight stream (``bhpe_mvu_wstream``, fed from DRAM); see the module doc
    weight_source: str = "rom"
    #: weight-stream words the source delivers a clock cycle (cycle model of "stream"; above 1 counts as 1)
    wstream_rate: float = 1.0
    #: the clock (MHz) the pipelining is chosen for (:func:`mvu_pipelining`; the device's clock, set by
    #: ``compile.folding.fold_for_device``)
    clock_mhz: float = DEFAULT_CLOCK_MHZ

    #: RTL module of the kind with its weights in a ROM (class attribute, set by each kind)
    ROM_MODULE = ""

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name == "weight_source":  # the RTL module follows the weight source
            super().__setattr__("rtl_module", WSTREAM_MODULE if value == "stream" else self.ROM_MODULE)

    @property
    def streamed(self) -> bool:
        return self.weight_source == "stream"

    @property
    def N(self) -> int:  # noqa: N802 - the brief's name for the synapse count
        return self.n

    @property
    def nf(self) -> int:
        return self.cout // self.pe

    @property
    def sf(self) -> int:
        return self.n // self.simd

    def check(self) -> None:
        """Validate shape and folding (call again after changing ``pe``/``simd`` on an existing object)."""
        self._check()

    def _check(self) -> None:
        kind = type(self).__name__
        for attr in ("n", "cout", "pe", "simd", "pixels"):
            if int(getattr(self, attr)) < 1:
                raise ValueError(f"{kind} '{self.name}': {attr} = {getattr(self, attr)} must be >= 1")
        if self.cout % self.pe:
            raise ValueError(f"{kind} '{self.name}': pe = {self.pe} does not divide cout = {self.cout}")
        if self.n % self.simd:
            raise ValueError(f"{kind} '{self.name}': simd = {self.simd} does not divide N = {self.n}")
        if self.weight_source not in WEIGHT_SOURCES:
            raise ValueError(f"{kind} '{self.name}': weight_source = {self.weight_source!r} is not one of "
                             f"{', '.join(WEIGHT_SOURCES)}")
        if not self.wstream_rate > 0:
            raise ValueError(f"{kind} '{self.name}': wstream_rate = {self.wstream_rate} must be > 0")
        w = np.asarray(self.weights)
        if w.shape != (self.cout, self.n):
            raise ValueError(
                f"{kind} '{self.name}': weights shape {w.shape} is not (cout, N) = ({self.cout}, {self.n})")

    def _split_ins(self, ins: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        kind = type(self).__name__
        win = np.asarray(ins[0], dtype=np.int64)
        mask = np.asarray(ins[1], dtype=np.int64) if len(ins) > 1 else np.ones_like(win)
        if win.ndim != 3 or win.shape[-1] != self.n:
            raise ValueError(f"{kind} '{self.name}': windows shape {win.shape} is not (OH, OW, {self.n})")
        if mask.shape != win.shape:
            raise ValueError(f"{kind} '{self.name}': mask shape {mask.shape} differs from windows {win.shape}")
        if np.any((mask != 0) & (mask != 1)):
            raise ValueError(f"{kind} '{self.name}': mask values must be 0 or 1")
        return win, mask

    def _rom_words(self, slots: np.ndarray, slot_w: int) -> list[int]:
        """Pack ``slots`` (cout, n) of unsigned ``slot_w``-bit values into the ROM words (see module doc)."""
        pe, simd, nf, sf = self.pe, self.simd, self.nf, self.sf
        # (nf, pe, sf, simd) -> (nf, sf, pe, simd): slot index p*simd + s inside word nf*SF + sf
        t = slots.reshape(nf, pe, sf, simd).transpose(0, 2, 1, 3).reshape(nf * sf, pe * simd)
        words = []
        for row in t:
            word = 0
            for i, v in enumerate(row):
                word |= int(v) << (i * slot_w)
            words.append(word)
        return words

    @property
    def mul_reg(self) -> int:
        """The RTL's ``MulReg``: registers around the multipliers (fixed point, :func:`mvu_pipelining`)."""
        return mvu_pipelining(self.BINARY, self.simd, self.clock_mhz)[0]

    @property
    def tree_levels(self) -> int:
        """The RTL's ``TreeLevels``: adder / popcount tree levels between registers (0: none)."""
        return mvu_pipelining(self.BINARY, self.simd, self.clock_mhz)[1]

    def _pipe_ff(self) -> int:
        """Flip-flops of the registers added for the clock and of the output FIFO's second entry (not in the
        calibrated fits): the multipliers' outputs, the tree's registered nodes, the step flags beside them."""
        pe, simd = self.pe, self.simd
        w = clog2(simd + 1) if self.BINARY else self.acc_w
        extra = self.pipeline - MVU_PIPELINE
        ff = pe * self.acc_w + 3 * extra + 3  # FIFO entry + pointers, flags
        # fixed point only (mvu_pipelining): the products (MulReg 1), and each multiplier's operands (2)
        ff += self.mul_reg * pe * simd * (self._in_width() + self._w_elem_w())
        lv, d = self.tree_levels, clog2(simd) if simd > 1 else 0
        for h in range(1, d):  # registered node heights: multiples of the levels a stage, below the root
            if lv and h % lv == 0:
                ff += (pe + (1 if self.BINARY else 0)) * (1 << (d - h)) * w
        return ff

    @property
    def pipeline(self) -> int:
        """Register stages from an accepted input beat to the output register: MVU_PIPELINE + the multiplier
        registers + the tree's registers (``bhpe_pkg::mvu_extra_stages``)."""
        return MVU_PIPELINE + self.mul_reg + tree_stages(self.simd, self.tree_levels)

    def cycles(self) -> dict:
        """``ii`` = pixels*NF*SF (one weight-matrix step a cycle); ``latency`` = cycles from the first input
        beat's handshake to the last output beat's handshake, both counted, = ii + ``pipeline``.

        Streamed weights: a step also needs a weight word; with the stream delivering ``r = wstream_rate``
        words a cycle (r < 1: bandwidth bound) the ``K = pixels*NF*SF`` steps of a frame take
        ``ii = ceil(K / r)`` cycles and ``latency = ceil((K - 1) / r) + 1 + pipeline`` (the first step at
        the first weight word, one more every 1/r cycles); at r >= 1 both equal the ROM unit's."""
        k = self.pixels * self.nf * self.sf
        if not self.streamed or self.wstream_rate >= 1:
            return {"ii": k, "latency": k + self.pipeline}
        r = Fraction(self.wstream_rate).limit_denominator(1 << 20)
        return {"ii": math.ceil(k / r), "latency": math.ceil((k - 1) / r) + 1 + self.pipeline}

    # --- the kind interface (compile/kinds/base.py) ---------------------------------------------------
    exact = True  # acc_w holds every accumulator
    foldable = True
    fold_fields = ("pe", "simd")
    mask_in = True  # the window validity mask beside the window elements (tied to ones without an SWG)
    mask_out = False
    start_fraction = 0.0

    def fuse_requant(self, rq) -> bool:
        return False  # the accumulator goes to a Requant of its own

    def steps_at(self, pe: int, simd: int) -> int:
        """Weight-matrix steps a frame at folding ``pe`` x ``simd``: pixels * (cout/pe) * (n/simd)."""
        return self.pixels * (self.cout // pe) * (self.n // simd)

    def assign_lanes(self, in_lanes: list[int]) -> list[int]:
        return [self.simd]  # SIMD window elements a beat in, PE accumulators out

    @property
    def out_lanes(self) -> int:
        return self.pe

    def stream_capacity(self) -> int:
        # the input buffer of a pixel's SF beats (twice: double buffered) + pipeline (a step a register)
        # + the output FIFO's second entry
        return 2 * self.sf + 9 + self.pipeline - MVU_PIPELINE

    def weight_memory(self) -> WeightMemory:
        """The ROM of NF*SF words of PE*SIMD weights (none, ``bram18`` 0, when streamed); it may move to
        UltraRAM or be streamed from DRAM (``weight_source = "stream"``)."""
        w = self._w_elem_w()
        width, depth = self.pe * self.simd * w, self.nf * self.sf
        bram = 0 if self.streamed else self._rom_bram18(width, depth)
        return WeightMemory(width=width, depth=depth, bits=self.n * self.cout * w, bram18=bram,
                            placements=("uram", "dram"))

    def _rom_bram18(self, width: int, depth: int) -> int:
        raise self._missing("_rom_bram18")

    def as_streamed(self) -> "_MvuBase":
        """This unit with its weights streamed (a shallow copy sharing the weights; itself if it is)."""
        if self.streamed:
            return self
        import copy

        s = copy.copy(self)
        s.weight_source = "stream"
        return s

    def op_counts(self) -> dict:
        macs = 2 * self.n * self.cout * self.pixels
        return {"binary": macs, "fixed": 0} if self.BINARY else {"binary": 0, "fixed": macs}

    # --- the weight stream (weight_source = "stream") -------------------------------------------------
    def _w_elem_w(self) -> int:
        raise NotImplementedError

    def wstream_spec(self) -> StreamSpec:
        """The weight stream's beat: one ROM word, ``pe*simd`` weights of 1 bit (XNOR, 1 = +1) or ``w_w``
        bits (fixed point, two's complement); the top-level port pads it to whole bytes (``wstream_port_bits``)."""
        return StreamSpec(self.pe * self.simd, self._w_elem_w(), signed=self._w_elem_w() > 1)

    @property
    def wstream_word_bits(self) -> int:
        return self.pe * self.simd * self._w_elem_w()

    @property
    def wstream_port_bits(self) -> int:
        """Width of the top-level ``w_<layer>_tdata`` port: the word rounded up to whole bytes (AXI-Stream
        TDATA is a whole number of bytes); the word sits in the low bits, the padding is ignored."""
        return 8 * -(-self.wstream_word_bits // 8)

    @property
    def wstream_words_per_frame(self) -> int:
        """Weight-stream beats a frame: the whole matrix (NF*SF words) for each of the ``pixels`` pixels."""
        return self.pixels * self.nf * self.sf

    @property
    def wstream_bytes_per_frame(self) -> int:
        """DRAM bytes a frame a DMA moves into the weight port (``words * port_bits / 8``)."""
        return self.wstream_words_per_frame * self.wstream_port_bits // 8

    def wstream_matrix_words(self) -> list[int]:
        """One pass over the matrix, in the order the RTL consumes it: word ``nf*SF + sf`` (the ROM image)."""
        return self._matrix_words()

    def wstream_frame_words(self) -> list[int]:
        """Every weight-stream beat of one frame: the matrix pass repeated for each output pixel."""
        return self._matrix_words() * self.pixels

    def _matrix_words(self) -> list[int]:
        raise NotImplementedError

    def rtl_params(self) -> dict:
        if self.streamed:
            xnor = self._w_elem_w() == 1 and self._in_width() == 1 and not self._in_signed()
            return {"Binary": xnor, "N": self.n, "Cout": self.cout, "Pe": self.pe, "Simd": self.simd,
                    "InW": self._in_width(), "WW": self._w_elem_w(), "AccW": self.acc_w,
                    "MulReg": int(self.mul_reg), "MulLut": self._mul_lut(), "TreeLevels": self.tree_levels}
        return self._rom_params()

    def _mul_lut(self) -> int:
        """The RTL's ``MulLut`` (fixed point: :attr:`FxpMvu.lut_mul`; a binary unit has no multipliers)."""
        return 0

    def rtl_memories(self) -> dict[str, list[int]]:
        """``InitFile`` (the weight ROM, see the module doc); none when the weights are streamed."""
        return {} if self.streamed else {"InitFile": self._matrix_words()}

    def _rom_params(self) -> dict:
        raise NotImplementedError

    def in_streams(self) -> list[StreamSpec]:
        """One stream, the SWG's window elements; its mask bits (one a lane) travel in the same beat as the
        sideband ``in_tmask`` beside ``in_tdata`` (as the SWG's ``out_tmask``)."""
        return [StreamSpec(self.simd, self._in_width(), signed=self._in_signed())]

    def out_streams(self) -> list[StreamSpec]:
        return [StreamSpec(self.pe, self.acc_w, signed=True)]

    def _in_width(self) -> int:
        raise NotImplementedError

    def _in_signed(self) -> bool:
        raise NotImplementedError

    @property
    def acc_w(self) -> int:
        raise NotImplementedError


@dataclass
class XnorMvu(_MvuBase):
    """Binary matrix-vector unit (``bhpe_xnor_mvu``): XNOR-popcount with a valid mask for zero padding.

    ``weights``: (cout, n) of +1/-1; input windows are bits (1 = +1, 0 = -1).
    """

    ROM_MODULE = "bhpe_xnor_mvu"
    BINARY = True  # XNOR-popcount operations (the roofline's binary ops)

    def __post_init__(self) -> None:
        self.weight_source = self.weight_source  # sets rtl_module
        self.weights = np.asarray(self.weights, dtype=np.int64)
        self._check()
        if np.any(np.abs(self.weights) != 1):
            raise ValueError(f"XnorMvu '{self.name}': weights must be +1 or -1")

    @property
    def acc_w(self) -> int:
        return clog2(self.n + 1) + 1

    def value_range(self, in_ranges):
        return -self.n, self.n  # a sum of n products of +-1 (padding taps count 0)

    def _rom_bram18(self, width: int, depth: int) -> int:
        return xnor_rom_bram18(width, depth)

    def _in_width(self) -> int:
        return 1

    def _in_signed(self) -> bool:
        return False

    def execute(self, ins: list[np.ndarray]) -> list[np.ndarray]:
        """ins = [windows (OH, OW, n) of 0/1 bits, mask (OH, OW, n) of 0/1] -> [(OH, OW, cout) int64]."""
        win, mask = self._split_ins(ins)
        if np.any((win != 0) & (win != 1)):
            raise ValueError(f"XnorMvu '{self.name}': window values must be bits 0/1")
        a = 2 * win - 1  # +-1
        # 2*popcount(xnor & mask) - popcount(mask) == sum over valid taps of a*w
        acc = np.einsum("hwn,cn->hwc", a * mask, self.weights)
        return [acc.astype(np.int64)]

    def _w_elem_w(self) -> int:
        return 1

    def _rom_params(self) -> dict:
        return {"N": self.n, "Cout": self.cout, "Pe": self.pe, "Simd": self.simd, "AccW": self.acc_w,
                "TreeLevels": self.tree_levels}

    def _matrix_words(self) -> list[int]:
        """NF*SF words of pe*simd bits, bit p*simd+s = weight of channel nf*pe+p, element sf*simd+s
        (1 = +1)."""
        return self._rom_words((self.weights > 0).astype(np.int64), 1)

    def resources(self) -> dict:
        """LUT/FF model calibrated against Yosys ``synth_xilinx -family xc7 -flatten -noiopad`` of this RTL
        (benchmarks/estimates_vs_yosys.py: 12 units, PE 1-16, SIMD 2-72, max |error| 13.6%; docs/estimates.md):

        ``lut = 27 + 2.26*PE*SIMD + 2.40*PE*AccW + 3.35*width*ceil(depth/64) (ROM in logic) + input buffer``
        (half the ROM term up to 32 words: two 32-word bits share a LUT6)

        with 1.75 LUT per synapse instead of 2.26 when the whole matrix is one word (NF = SF = 1: the
        weights are constants and each XNOR folds into the popcount). The weight ROM (``depth = NF*SF``
        words of ``width = PE*SIMD`` bits) goes to block RAM from XNOR_ROM_BRAM_DEPTH words on (as Yosys
        maps it), else into logic. FINN's published MVAU model (300 + 1.1*PE*(...)) is off by 134% on average
        on the same units (up to 609%; the benchmark prints both).

        Streamed weights (``bhpe_mvu_wstream``): no ROM (no ROM LUTs, no BRAM), the weights are never
        constants (2.26 LUT a synapse), the weight word is registered (``width`` FFs) and the address counter
        is gone; the same datapath otherwise."""
        pe, simd, acc = self.pe, self.simd, self.acc_w
        depth, width = self.nf * self.sf, pe * simd
        if self.streamed:
            lut = XNOR_LUT_BASE + XNOR_LUT_PER_SYNAPSE * pe * simd + XNOR_LUT_PER_ACC_BIT * pe * acc
            if self.nf > 1:
                lut += _lutram(2 * simd, self.sf)
            ff = 2 * simd + pe * (clog2(simd + 1) + 2 * acc) + clog2(simd + 1) + 2 * clog2(depth + 1) + 8 + width
            ff += self._pipe_ff()
            return {"lut": int(round(lut)), "ff": int(ff), "bram18": 0, "dsp": 0}
        const = depth == 1
        bram = xnor_rom_bram18(width, depth)
        lut = XNOR_LUT_BASE + (XNOR_LUT_PER_SYNAPSE_CONST if const else XNOR_LUT_PER_SYNAPSE) * pe * simd
        lut += XNOR_LUT_PER_ACC_BIT * pe * acc
        if not const and bram == 0:  # a LUT6 holds 64 words of one bit, or 32 words of two (LUT5 pair)
            lut += XNOR_LUT_PER_ROM_COLUMN * width * (0.5 if depth <= 32 else math.ceil(depth / 64))
        if self.nf > 1:
            lut += _lutram(2 * simd, self.sf)  # input buffer (data + mask)
        ff = 2 * simd + pe * (clog2(simd + 1) + 2 * acc) + clog2(simd + 1) + 3 * clog2(depth + 1) + 8
        if not const and bram == 0:
            ff += width  # the weight word register (inside the block RAM otherwise)
        ff += self._pipe_ff()
        return {"lut": int(round(lut)), "ff": int(ff), "bram18": bram, "dsp": 0}


#: XnorMvu LUT model constants (fit to Yosys synth_xilinx, see XnorMvu.resources)
XNOR_LUT_BASE = 27.2
XNOR_LUT_PER_SYNAPSE = 2.26
XNOR_LUT_PER_SYNAPSE_CONST = 1.75
XNOR_LUT_PER_ACC_BIT = 2.40
XNOR_LUT_PER_ROM_COLUMN = 3.35
#: weight ROMs of at least this many words go to block RAM (Yosys's choice for this RTL; shallower in logic)
XNOR_ROM_BRAM_DEPTH = 256


def xnor_rom_bram18(width: int, depth: int) -> int:
    """BRAM18 of an XnorMvu weight ROM (0 when it stays in logic)."""
    return _bram18(width, depth) if depth >= XNOR_ROM_BRAM_DEPTH else 0


@dataclass
class FxpMvu(_MvuBase):
    """Fixed-point matrix-vector unit (``bhpe_fxp_mvu``): ``acc = sum mask*w*a``, exact in ``acc_w`` bits.

    ``weights``: (cout, n) signed ``w_w``-bit integers; input windows signed ``in_w``-bit integers.
    """

    in_w: int = 8
    w_w: int = 8
    #: multiply in logic (``bhpe_mul`` with ``Lut = 1``) instead of DSP blocks: the ECP5 builds
    #: (``compile.folding.multipliers_for_device``; the ECP5-85F's MULT18X18D rows sat up to 32 rows from the
    #: MVU's registers, the 97.46 MHz run's critical path)
    lut_mul: bool = False

    ROM_MODULE = "bhpe_fxp_mvu"
    BINARY = False

    def __post_init__(self) -> None:
        self.weight_source = self.weight_source  # sets rtl_module
        self.weights = np.asarray(self.weights, dtype=np.int64)
        self._check()
        lo, hi = -(1 << (self.w_w - 1)), (1 << (self.w_w - 1)) - 1
        if self.weights.min() < lo or self.weights.max() > hi:
            raise ValueError(f"FxpMvu '{self.name}': weights out of the signed {self.w_w}-bit range")

    @property
    def acc_w(self) -> int:
        return self.w_w + self.in_w + clog2(self.n)

    def value_range(self, in_ranges):
        s = int(np.max(np.sum(np.abs(self.weights), axis=1))) * (1 << (self.in_w - 1))
        return -s, s

    def _rom_bram18(self, width: int, depth: int) -> int:
        return _bram18(width, depth)

    def _in_width(self) -> int:
        return self.in_w

    def _in_signed(self) -> bool:
        return True

    def execute(self, ins: list[np.ndarray]) -> list[np.ndarray]:
        """ins = [windows (OH, OW, n) signed ints, mask (OH, OW, n) of 0/1 (optional)] -> [(OH, OW, cout)].

        Masked taps contribute 0 (the RTL forces them to 0 as well)."""
        win, mask = self._split_ins(ins)
        lo, hi = -(1 << (self.in_w - 1)), (1 << (self.in_w - 1)) - 1
        if win.size and (win.min() < lo or win.max() > hi):
            raise ValueError(f"FxpMvu '{self.name}': window values out of the signed {self.in_w}-bit range")
        acc = np.einsum("hwn,cn->hwc", win * mask, self.weights)
        return [acc.astype(np.int64)]

    def _w_elem_w(self) -> int:
        return self.w_w

    def _rom_params(self) -> dict:
        return {"N": self.n, "Cout": self.cout, "Pe": self.pe, "Simd": self.simd,
                "InW": self.in_w, "WW": self.w_w, "AccW": self.acc_w, "MulReg": int(self.mul_reg),
                "MulLut": self._mul_lut(), "TreeLevels": self.tree_levels}

    def _mul_lut(self) -> int:
        return int(self.lut_mul)

    def _matrix_words(self) -> list[int]:
        """NF*SF words of pe*simd*w_w bits, slot p*simd+s = two's-complement weight of channel nf*pe+p,
        element sf*simd+s."""
        slots = self.weights & ((1 << self.w_w) - 1)
        return self._rom_words(slots, self.w_w)

    def resources(self) -> dict:
        """FINN's MVAU first-order model with the multipliers in DSPs (LUT 300 + 1.1*PE*(adder tree + acc),
        DSP PE*SIMD*ceil((W+A)/48)); weight ROM and input buffer by the project's BRAM18 / LUT-RAM rule.
        Streamed weights (``bhpe_mvu_wstream``): the same without the ROM (the weight word register stays).
        Multipliers in logic (:attr:`lut_mul`): no DSP, PE*SIMD :func:`lut_mul_luts` more LUTs."""
        pe, simd, acc = self.pe, self.simd, self.acc_w
        wa = self.w_w + self.in_w
        tree = wa * (2 * simd - 1)
        lut = 300 + 1.1 * pe * (tree + acc) + simd  # + mask gating
        depth, width = self.nf * self.sf, pe * simd * self.w_w
        bram = 0 if self.streamed else _bram18(width, depth)
        if bram == 0 and not self.streamed:
            lut += _lutram(width, depth)
        if self.nf > 1:
            lut += _lutram(simd * (self.in_w + 1), self.sf)  # input buffer (data + mask)
        ff = simd * (self.in_w + 1) + width + 3 * pe * acc + 3 * clog2(depth + 1) + 8 + self._pipe_ff()
        dsp = pe * simd * math.ceil(wa / 48)
        if self.lut_mul:
            lut += pe * simd * lut_mul_luts(self.in_w, self.w_w)
            dsp = 0
        return {"lut": int(lut), "ff": int(ff), "bram18": bram, "dsp": int(dsp)}


@dataclass
class FcXnorMvu(XnorMvu):
    """A fully connected binary layer: an XnorMvu over one pixel whose ``n`` inputs arrive as a whole
    (H, W, C) frame in raster order (no window generator; the RTL ties ``in_tmask`` to ones)."""

    def execute(self, ins):
        return super().execute([np.asarray(i).reshape(1, 1, -1) for i in ins])


@dataclass
class FcFxpMvu(FxpMvu):
    """A fully connected fixed-point layer: an FxpMvu over one pixel fed by a whole (H, W, C) frame."""

    def execute(self, ins):
        return super().execute([np.asarray(i).reshape(1, 1, -1) for i in ins])
