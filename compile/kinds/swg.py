"""SlidingWindow: the window generator (``bhpe_swg``) in front of convolutions and pools.

Output pixel ``(oy, ox)`` of a ``k x k`` window with stride ``s`` and zero padding ``pad`` over an
``(h, w, c)`` frame holds the elements in ``(ky, kx, c)`` order (``c`` fastest); padding positions hold 0
and are marked 0 in the mask (``execute_mask``), so that XNOR-popcount and max pooling can ignore them.
``OH = floor((h + 2*pad - k) / s) + 1`` (PyTorch / ONNX floor mode): when the division is not exact, the
input rows and columns after the last window are read and ignored (e.g. a 1x1 stride-2 conv on 64 rows
uses rows 0, 2, ..., 62, and MaxPool 3x3 s2 pad 1 on 128 rows gives 64 rows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from binaryhpe.compile.kinds.base import HwLayer, StreamSpec, clog2
from binaryhpe.compile.kinds.plumbing import StreamKind, _bram18, _check_lanes, _lutram

#: cycles from a read's issue to its beat at the output (``bhpe_swg``: the read address register, the read
#: data register, the output FIFO's register)
SWG_READ_PIPE = 3


@dataclass
class SlidingWindow(StreamKind, HwLayer):
    """``bhpe_swg``: windows of a ``k x k``, stride ``s``, zero-padding ``pad`` convolution or pool."""

    h: int = 1
    w: int = 1
    c: int = 1
    k: int = 1
    s: int = 1
    pad: int = 0
    elem_w: int = 8
    lanes: int = 1
    signed: bool = True

    def __post_init__(self):
        self.rtl_module = "bhpe_swg"
        _check_lanes(self.name, self.c, self.lanes)
        if min(self.h, self.w, self.k, self.s) < 1 or self.pad < 0 or self.elem_w < 1:
            raise ValueError(f"{self.name}: SlidingWindow needs h, w, k, s, elem_w >= 1 and pad >= 0")
        if self.pad >= self.k:
            raise ValueError(f"{self.name}: padding {self.pad} must be smaller than the window {self.k}")
        for ax, n in (("H", self.h), ("W", self.w)):
            if n + 2 * self.pad < self.k:
                raise ValueError(f"{self.name}: {ax}={n} with Pad={self.pad} is smaller than the window K={self.k}")

    # --- shapes ----------------------------------------------------------------------------------------
    @property
    def oh(self) -> int:
        return (self.h + 2 * self.pad - self.k) // self.s + 1

    @property
    def ow(self) -> int:
        return (self.w + 2 * self.pad - self.k) // self.s + 1

    @property
    def rows(self) -> int:
        """Input rows held by the line buffer ring."""
        return self.k + self.s

    # --- numerics --------------------------------------------------------------------------------------
    def _windows(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.int64)
        if x.shape != (self.h, self.w, self.c):
            raise ValueError(f"{self.name}: SlidingWindow expects ({self.h},{self.w},{self.c}), got {x.shape}")
        p, k, s = self.pad, self.k, self.s
        xp = np.zeros((self.h + 2 * p, self.w + 2 * p, self.c), dtype=np.int64)
        mp = np.zeros_like(xp)
        xp[p:p + self.h, p:p + self.w] = x
        mp[p:p + self.h, p:p + self.w] = 1
        win = np.empty((self.oh, self.ow, k * k * self.c), dtype=np.int64)
        msk = np.empty_like(win)
        for oy in range(self.oh):
            for ox in range(self.ow):
                win[oy, ox] = xp[oy * s:oy * s + k, ox * s:ox * s + k].reshape(-1)
                msk[oy, ox] = mp[oy * s:oy * s + k, ox * s:ox * s + k].reshape(-1)
        return win, msk

    def execute(self, ins):
        """Windows ``(OH, OW, K*K*C)``, element order ``(ky, kx, c)``; padding positions are 0."""
        return [self._windows(ins[0])[0]]

    def execute_mask(self, ins) -> np.ndarray:
        """0/1 mask of the same shape as ``execute``'s output: 1 = a real input element."""
        return self._windows(ins[0])[1]

    # --- cycle model -----------------------------------------------------------------------------------
    def schedule(self, frames: int = 4) -> dict:
        """Row-level schedule of the RTL with back-to-back input and no output stalls.

        Exact for ``bhpe_swg``: the writer takes one beat a cycle and can stall only at a row start (until
        the row ``rows`` older was released); the reader issues one beat a cycle, starts output row ``oy``
        the cycle after the last input row it needs (``min(H-1, S*oy-Pad+K-1)``) is complete and after the
        previous output row; it releases rows older than ``S*oy-Pad`` when row ``oy`` starts (visible the
        next cycle) and the whole frame in the drain step: the cycle after its last issue, or, when rows
        after the last window (floor division) arrive later, the cycle after the last row is counted; the
        next frame waits for that. An issued beat leaves the output :data:`SWG_READ_PIPE` cycles later (read
        address register, read data register, output FIFO). Cycle 0 is the first input beat.
        """
        h, k, s, pad, R = self.h, self.k, self.s, self.pad, self.rows
        rw = self.w * self.c // self.lanes                     # beats an input row
        orw = self.ow * k * k * self.c // self.lanes           # beats an output row
        oh = self.oh
        n_in, n_out = frames * h, frames * oh
        we: list[int] = []          # cycle of each input row's last beat
        rs: list[int] = []          # first issue cycle of each output row
        frame_ok = 0                # earliest start of the next frame's first output row (drain)
        pending = None              # (frame, last issue cycle) of a frame waiting for its last row
        re: list[int] = []          # last issue cycle of each output row
        free: dict[int, int] = {}   # absolute input row -> first cycle its slot is writable again
        base = 0                    # frame row of the oldest held row, reader's frame
        while len(rs) < n_out:
            progress = False
            r = len(we)
            if r < n_in and (r < R or (r - R) in free):
                start = max(we[-1] + 1 if we else 0, free.get(r - R, 0))
                we.append(start + rw - 1)
                progress = True
            if pending is not None and (pending[0] + 1) * h - 1 < len(we):
                # frame end: its rows are released once the last one arrived (the drain step)
                pf, last_issue = pending
                t = max(last_issue + 2, we[(pf + 1) * h - 1] + 2)
                for j in range(base, h):
                    free[pf * h + j] = t
                base, frame_ok, pending = 0, t, None
                progress = True
            g = len(rs)
            f, oy = divmod(g, oh)
            need = f * h + min(h - 1, s * oy - pad + k - 1)
            if pending is None and need < len(we):
                start = max(re[-1] + 1 if re else 0, we[need] + 1, frame_ok)
                first = max(0, s * oy - pad)
                for j in range(base, first):
                    free[f * h + j] = start + 1
                base = max(base, first)
                rs.append(start)
                re.append(start + orw - 1)
                if oy == oh - 1:
                    pending = (f, re[-1])
                progress = True
            if not progress:  # pragma: no cover - the ring always suffices (K + S rows)
                raise RuntimeError(f"{self.name}: line buffer schedule deadlocked")
        first_out = [rs[f * oh] + SWG_READ_PIPE for f in range(frames)]
        last_out = [re[f * oh + oh - 1] + SWG_READ_PIPE for f in range(frames)]
        return {"first_out": first_out, "last_out": last_out}

    # --- the kind interface (compile/kinds/base.py; the rest from StreamKind) ----------------------------
    mask_out = True  # the validity mask of each window element (0 = a padding tap)

    def assign_lanes(self, in_lanes: list[int]) -> list[int]:
        return [self.lanes]  # its consumer's SIMD, set with the consumer's folding

    def stream_capacity(self) -> int:
        # the line buffer ring + the read pipeline (2 reads in flight, the 4-entry output FIFO) + 1
        return self.rows * self.w * (self.c // self.lanes) + 7

    @property
    def start_fraction(self) -> float:
        return min(1.0, (self.k - self.pad) / self.h)  # the input rows of the first window

    def cycles(self) -> dict:
        """``ii``: steady state (frames 2 -> 3) of :meth:`schedule`; ``latency``: frame 0, first input beat
        to last output beat. Roughly ``ii = max(H*W*C, OH*OW*K*K*C) / Lanes`` plus the row waits."""
        sch = self.schedule(4)
        return {"ii": sch["first_out"][3] - sch["first_out"][2], "latency": sch["last_out"][0]}

    # --- interfaces / RTL ------------------------------------------------------------------------------
    def in_streams(self):
        return [StreamSpec(self.lanes, self.elem_w, self.signed)]

    def out_streams(self):
        """Window data; the RTL adds ``out_tmask`` (one bit a lane) next to ``out_tdata``."""
        return [StreamSpec(self.lanes, self.elem_w, self.signed)]

    def rtl_params(self) -> dict:
        return {"ElemW": self.elem_w, "Lanes": self.lanes, "H": self.h, "W": self.w, "C": self.c,
                "K": self.k, "S": self.s, "Pad": self.pad}

    def memory_bits(self) -> int:
        return self.rows * self.w * self.c * self.elem_w

    def resources(self) -> dict:
        """First-order model: (K+S)-row line buffer (BRAM18 by aspect, LUT RAM when small), ~12 counters,
        the read data register and a 4-beat output FIFO, the address arithmetic and its register."""
        bw = self.lanes * self.elem_w
        depth = self.rows * self.w * self.c // self.lanes
        b = _bram18(bw, depth)
        aw = max(1, clog2(depth))
        return {"lut": (0 if b else _lutram(bw, depth)) + 6 * aw + 80 + bw, "ff": 5 * bw + 3 * aw + 70,
                "bram18": b, "dsp": 0}
