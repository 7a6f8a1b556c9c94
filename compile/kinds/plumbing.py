"""Stream plumbing kinds: Fifo, Fork (broadcast), Dwc (lane-count converter), Concat and Split (channels).

None of them computes: ``execute`` moves integers. Their cycle models count beats; all of them run at one
beat a cycle on their busiest port when nothing stalls.

Cycle-model conventions (shared with ``swg.py`` and ``pool.py``): ``ii`` is the number of cycles between the
first output beats of consecutive frames when the input arrives back to back and no output stalls;
``latency`` is the cycle of a frame's last output beat minus the cycle of its first input beat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from binaryhpe.compile.kinds.base import HwLayer, StreamSpec, clog2


def _bram18(bits_wide: int, depth: int) -> int:
    """Block RAM 18 Kb count of a ``depth x bits_wide`` memory (0 when small enough for LUT RAM)."""
    if depth * bits_wide <= 1024 or depth <= 64:
        return 0
    # an 18 Kb block is 512 x 36, 1K x 18, 2K x 9, ...: pick the cheapest aspect
    best = None
    for d, wd in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)):
        n = -(-bits_wide // wd) * -(-depth // d)
        best = n if best is None else min(best, n)
    return best


def _lutram(bits_wide: int, depth: int) -> int:
    """LUTs of a distributed RAM (64 x 1 per LUT6)."""
    return bits_wide * -(-depth // 64)


def _check_lanes(name: str, c: int, lanes: int, what: str = "C") -> None:
    if lanes < 1 or c < 1 or c % lanes:
        raise ValueError(f"{name}: Lanes={lanes} must divide {what}={c} (both >= 1)")


class StreamKind:
    """The kind-interface answers of a layer that only moves, buffers or windows a stream (no arithmetic,
    no weights): exact, nothing to fold or to fuse, no value change. Mixed in before ``HwLayer`` by the
    plumbing kinds, ``SlidingWindow`` and ``Pool``; each still says how it takes lanes and what it buffers."""

    exact = True
    foldable = False
    mask_in = False
    mask_out = False
    start_fraction = 0.0
    fold_fields = ("lanes",)
    streamed = False

    def fuse_requant(self, rq) -> bool:
        return False

    def steps_at(self, pe: int, simd: int) -> int:
        raise self._missing("steps_at (not a foldable kind)")

    def weight_memory(self):
        return None

    def op_counts(self) -> dict:
        return {"binary": 0, "fixed": 0}

    def value_range(self, in_ranges):
        return None

    @property
    def out_lanes(self) -> int:
        return self.lanes


def _same_lanes(lay, in_lanes: list[int]) -> list[int]:
    """A layer that runs at its input's lanes (a FIFO, a fork)."""
    lay.lanes = in_lanes[0]
    return [lay.lanes]


@dataclass
class Fifo(StreamKind, HwLayer):
    """``bhpe_fifo``: a first-in first-out buffer of ``depth`` beats of ``width`` bits.

    ``beats`` is the number of beats of one frame (for the cycle model only); ``lanes``/``elem_w`` describe
    the beat for the stream specs (``width = lanes * elem_w``).
    """

    elem_w: int = 8
    lanes: int = 1
    depth: int = 2
    beats: int = 1
    signed: bool = True

    def __post_init__(self):
        self.rtl_module = "bhpe_fifo"
        if self.depth < 1 or self.elem_w < 1 or self.lanes < 1 or self.beats < 1:
            raise ValueError(f"{self.name}: Fifo needs depth, elem_w, lanes, beats >= 1")

    @property
    def width(self) -> int:
        return self.elem_w * self.lanes

    def execute(self, ins):
        return [np.asarray(ins[0], dtype=np.int64)]

    fold_fields = ("lanes", "depth")

    def assign_lanes(self, in_lanes: list[int]) -> list[int]:
        return _same_lanes(self, in_lanes)

    def stream_capacity(self) -> int:
        return self.depth

    def cycles(self) -> dict:
        # a beat pushed at cycle t is visible at the output at t + 1; one beat a cycle
        return {"ii": self.beats, "latency": self.beats}

    def in_streams(self):
        return [StreamSpec(self.lanes, self.elem_w, self.signed)]

    def out_streams(self):
        return [StreamSpec(self.lanes, self.elem_w, self.signed)]

    def rtl_params(self) -> dict:
        return {"Width": self.width, "Depth": self.depth}

    def resources(self) -> dict:
        """First-order model: memory in LUT RAM up to 1 Kb / 64 entries, else BRAM18; pointers and the empty
        and full flags in FFs."""
        b = _bram18(self.width, self.depth)
        ptr = max(1, clog2(self.depth))
        return {"lut": (0 if b else _lutram(self.width, self.depth)) + 4 * ptr + 4,
                "ff": 2 * ptr + 2 + (0 if b or self.depth > 4 else self.width * self.depth),
                "bram18": b, "dsp": 0}


@dataclass
class Fork(StreamKind, HwLayer):
    """``bhpe_fork``: one stream broadcast to two (``a`` and ``b``), each may stall independently."""

    h: int = 1
    w: int = 1
    c: int = 1
    elem_w: int = 8
    lanes: int = 1
    signed: bool = True

    def __post_init__(self):
        self.rtl_module = "bhpe_fork"
        _check_lanes(self.name, self.c, self.lanes)

    def beats(self) -> int:
        return self.h * self.w * self.c // self.lanes

    def execute(self, ins):
        x = np.asarray(ins[0], dtype=np.int64)
        return [x, x.copy()]

    def assign_lanes(self, in_lanes: list[int]) -> list[int]:
        return _same_lanes(self, in_lanes)

    def stream_capacity(self) -> int:
        return 4  # the output registers plus skid

    def cycles(self) -> dict:
        # registered output: the last beat is out one cycle after it was accepted
        return {"ii": self.beats(), "latency": self.beats()}

    def in_streams(self):
        return [StreamSpec(self.lanes, self.elem_w, self.signed)]

    def out_streams(self):
        return [StreamSpec(self.lanes, self.elem_w, self.signed)] * 2

    def rtl_params(self) -> dict:
        return {"Width": self.lanes * self.elem_w}

    def resources(self) -> dict:
        """First-order model: one data register and three flags."""
        bw = self.lanes * self.elem_w
        return {"lut": 6, "ff": bw + 3, "bram18": 0, "dsp": 0}


@dataclass
class Dwc(StreamKind, HwLayer):
    """``bhpe_dwc``: re-beats a stream of ``in_lanes`` elements a beat into ``out_lanes`` elements a beat."""

    h: int = 1
    w: int = 1
    c: int = 1
    elem_w: int = 8
    in_lanes: int = 1
    out_lanes: int = 1
    signed: bool = True

    def __post_init__(self):
        self.rtl_module = "bhpe_dwc"
        _check_lanes(self.name, self.c, self.in_lanes)
        _check_lanes(self.name, self.c, self.out_lanes)
        if self.in_lanes % self.out_lanes and self.out_lanes % self.in_lanes:
            raise ValueError(f"{self.name}: one of InLanes={self.in_lanes}, OutLanes={self.out_lanes} "
                             "must divide the other")

    def execute(self, ins):
        return [np.asarray(ins[0], dtype=np.int64)]

    fold_fields = ()  # its lanes are its two streams' (in_lanes, out_lanes), set where it is placed

    def assign_lanes(self, in_lanes: list[int]) -> list[int]:
        return [self.in_lanes]  # placed by LegalizeLanes between two lane counts

    def stream_capacity(self) -> int:
        return max(self.in_lanes, self.out_lanes) // min(self.in_lanes, self.out_lanes) + 4

    def cycles(self) -> dict:
        n = self.h * self.w * self.c
        ib, ob = n // self.in_lanes, n // self.out_lanes
        if self.in_lanes == self.out_lanes:
            return {"ii": ib, "latency": ib - 1}
        # registered: down-conversion emits an input beat's slices in the cycles after it was taken and
        # takes the next one with the last slice; up-conversion emits the cycle after a group completes
        return {"ii": max(ib, ob), "latency": max(ib, ob)}

    def in_streams(self):
        return [StreamSpec(self.in_lanes, self.elem_w, self.signed)]

    def out_streams(self):
        return [StreamSpec(self.out_lanes, self.elem_w, self.signed)]

    def rtl_params(self) -> dict:
        return {"ElemW": self.elem_w, "InLanes": self.in_lanes, "OutLanes": self.out_lanes}

    def resources(self) -> dict:
        """First-order model: one register of the wider beat plus a slice multiplexer."""
        wide = max(self.in_lanes, self.out_lanes) * self.elem_w
        narrow = min(self.in_lanes, self.out_lanes) * self.elem_w
        ratio = max(self.in_lanes, self.out_lanes) // min(self.in_lanes, self.out_lanes)
        return {"lut": (narrow * ratio // 4 if ratio > 1 else 0) + 4, "ff": wide + clog2(ratio) + 1,
                "bram18": 0, "dsp": 0}


@dataclass
class _ChannelPair(StreamKind, HwLayer):
    """Shared by Concat and Split: a (h, w, c1 + c2) tensor whose channels are two parts, passed on
    combinationally (output beats = input beats, no register)."""

    h: int = 1
    w: int = 1
    c1: int = 1
    c2: int = 1
    elem_w: int = 8
    lanes: int = 1
    signed: bool = True

    def _check(self) -> None:
        _check_lanes(self.name, self.c1, self.lanes, "C1")
        _check_lanes(self.name, self.c2, self.lanes, "C2")

    def _stream(self) -> StreamSpec:
        return StreamSpec(self.lanes, self.elem_w, self.signed)

    def assign_lanes(self, in_lanes: list[int]) -> list[int]:
        """gcd of the first input's lanes and both channel parts, on every input."""
        self.lanes = math.gcd(in_lanes[0], self.c1, self.c2)
        return [self.lanes] * len(in_lanes)

    def stream_capacity(self) -> int:
        return 4  # combinational: what the neighbours' registers hold

    def cycles(self) -> dict:
        n = self.h * self.w * (self.c1 + self.c2) // self.lanes
        return {"ii": n, "latency": n - 1}

    def rtl_params(self) -> dict:
        return {"ElemW": self.elem_w, "Lanes": self.lanes, "C1": self.c1, "C2": self.c2}

    def _counter_w(self) -> int:
        return max(1, clog2((self.c1 + self.c2) // self.lanes))


@dataclass
class Concat(_ChannelPair):
    """``bhpe_concat``: per pixel, the ``c1`` channels of input 0 then the ``c2`` channels of input 1."""

    def __post_init__(self):
        self.rtl_module = "bhpe_concat"
        self._check()

    def execute(self, ins):
        a, b = (np.asarray(x, dtype=np.int64) for x in ins)
        if a.shape != (self.h, self.w, self.c1) or b.shape != (self.h, self.w, self.c2):
            raise ValueError(f"{self.name}: Concat expects ({self.h},{self.w},{self.c1}) and "
                             f"({self.h},{self.w},{self.c2}), got {a.shape} and {b.shape}")
        return [np.concatenate([a, b], axis=2)]

    def in_streams(self):
        return [self._stream()] * 2

    def out_streams(self):
        return [self._stream()]

    def resources(self) -> dict:
        """First-order model: a 2:1 beat multiplexer and a beat counter."""
        cw = self._counter_w()
        return {"lut": (self.lanes * self.elem_w + 1) // 2 + 2 * cw, "ff": cw, "bram18": 0, "dsp": 0}


@dataclass
class Split(_ChannelPair):
    """``bhpe_split``: per pixel, the first ``c1`` channels to output 0 (``a``), the next ``c2`` to output 1."""

    def __post_init__(self):
        self.rtl_module = "bhpe_split"
        self._check()

    def execute(self, ins):
        x = np.asarray(ins[0], dtype=np.int64)
        if x.shape != (self.h, self.w, self.c1 + self.c2):
            raise ValueError(f"{self.name}: Split expects ({self.h},{self.w},{self.c1 + self.c2}), got {x.shape}")
        return [x[:, :, : self.c1].copy(), x[:, :, self.c1:].copy()]

    def in_streams(self):
        return [self._stream()]

    def out_streams(self):
        return [self._stream()] * 2

    def resources(self) -> dict:
        """First-order model: a beat counter and the valid/ready steering."""
        cw = self._counter_w()
        return {"lut": 2 * cw + 3, "ff": cw, "bram18": 0, "dsp": 0}


@dataclass
class PhaseShuffle(StreamKind, HwLayer):
    """The output side of a transposed convolution lowered by polyphase decomposition (``compile/lower.py``:
    ``ConvTranspose`` -> ``SlidingWindow(k/s, 1, P)`` -> one MVU with ``s*s*c`` outputs -> this).

    Input: the MVU's ``(h, w, s*s*c)`` grid, channel ``(ry*s + rx)*c + co`` = output channel ``co`` of phase
    ``(ry, rx)``; output ``(oh, ow, c)`` = ``(s*H, s*W, c)``:
    ``out[s*m + ry, s*n + rx, co] = in[m + off[ry], n + off[rx], (ry*s + rx)*c + co]`` for ``m < H``, ``n < W``.
    No arithmetic: integers are moved. The layer-sequential engine writes each phase's conv output straight to
    its place (strided stores, docs/engine.md); the dataflow RTL has no module for it (``rtl_module`` empty: the
    dataflow build refuses it, naming the layer). Its models describe the streaming reorder such a module would
    need: one input row of every phase buffered (``w * s*s*c`` elements), one element a lane a cycle.
    """

    h: int = 1
    w: int = 1
    c: int = 1
    s: int = 2
    oh: int = 2
    ow: int = 2
    off: tuple = (0, 1)
    elem_w: int = 8
    lanes: int = 1
    signed: bool = True

    def __post_init__(self):
        self.rtl_module = ""
        self.off = tuple(int(o) for o in self.off)
        if self.s < 1 or len(self.off) != self.s:
            raise ValueError(f"{self.name}: PhaseShuffle needs s >= 1 and one offset a phase (s={self.s}, "
                             f"off={self.off})")
        H, W = self.oh // self.s, self.ow // self.s
        if (self.oh % self.s or self.ow % self.s or min(self.off) < 0 or max(self.off) + H > self.h
                or max(self.off) + W > self.w):
            raise ValueError(f"{self.name}: PhaseShuffle output {self.oh}x{self.ow} (s={self.s}, off={self.off}) "
                             f"does not fit its {self.h}x{self.w} input grid")
        _check_lanes(self.name, self.c, self.lanes)

    def execute(self, ins):
        x = np.asarray(ins[0], dtype=np.int64)
        s, c = self.s, self.c
        if x.shape != (self.h, self.w, s * s * c):
            raise ValueError(f"{self.name}: PhaseShuffle expects ({self.h},{self.w},{s * s * c}), got {x.shape}")
        H, W = self.oh // s, self.ow // s
        out = np.empty((self.oh, self.ow, c), dtype=np.int64)
        for ry in range(s):
            for rx in range(s):
                p = ry * s + rx
                out[ry::s, rx::s, :] = x[self.off[ry]:self.off[ry] + H, self.off[rx]:self.off[rx] + W,
                                         p * c:(p + 1) * c]
        return [out]

    def assign_lanes(self, in_lanes: list[int]) -> list[int]:
        self.lanes = math.gcd(in_lanes[0], self.c)
        return [self.lanes]

    def stream_capacity(self) -> int:
        return self.w * self.s * self.s * self.c // self.lanes

    def cycles(self) -> dict:
        n_in = self.h * self.w * self.s * self.s * self.c // self.lanes
        n_out = self.oh * self.ow * self.c // self.lanes
        return {"ii": max(n_in, n_out), "latency": max(n_in, n_out) + self.stream_capacity()}

    def in_streams(self):
        return [StreamSpec(self.lanes, self.elem_w, self.signed)]

    def out_streams(self):
        return [StreamSpec(self.lanes, self.elem_w, self.signed)]

    def resources(self) -> dict:
        """First-order model of a streaming reorder: a row of every phase in block RAM (``_bram18``), two
        counters; what a dataflow module would need (none exists: see the class docstring)."""
        bits = self.lanes * self.elem_w
        depth = self.stream_capacity()
        b = _bram18(bits, depth)
        return {"lut": (0 if b else _lutram(bits, depth)) + 4 * clog2(depth + 1) + 8,
                "ff": 2 * clog2(depth + 1) + bits, "bram18": b, "dsp": 0}
