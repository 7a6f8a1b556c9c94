"""Pool: max or sum pooling over ``k x k`` windows (stride ``s``, zero padding ``pad``).

The kind holds the whole pooling: ``execute`` takes the ``(h, w, c)`` input and returns ``(OH, OW, c)``.
In hardware it is two modules in a row, which the compiler instantiates from this one kind:
``bhpe_swg`` with the parameters of :meth:`Pool.swg` (windows + padding mask), then the reducer
``bhpe_pool`` (``rtl_module``, parameters :meth:`Pool.rtl_params`) fed by the SWG's ``out_tdata``/``out_tmask``.
``hw/rtl/bhpe_swg_pool.sv`` is that pair as one module (:meth:`Pool.rtl_top`); the RTL test runs it.

Output size as the SWG: ``OH = floor((h + 2*pad - k) / s) + 1`` (PyTorch floor mode).
Mode 0 (``"max"``): maximum over the valid (non-padding) taps; padding never wins (ResNet stem MaxPool
3x3 s2 pad 1). Mode 1 (``"sum"``): the exact sum over the valid taps in ``out_w`` bits (AvgPool as
sum-and-shift; the shift is a later requantization). Unsigned elements (``signed=False``, binary
activations 0/1 standing for -1/+1) make the max an OR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from binaryhpe.compile.kinds.base import HwLayer, StreamSpec, clog2
from binaryhpe.compile.kinds.plumbing import StreamKind, _check_lanes, _lutram
from binaryhpe.compile.kinds.swg import SlidingWindow

MODES = {"max": 0, "sum": 1}


@dataclass
class Pool(StreamKind, HwLayer):
    """Max (``mode="max"``) or sum (``mode="sum"``) pooling; SWG + ``bhpe_pool`` in hardware."""

    h: int = 1
    w: int = 1
    c: int = 1
    k: int = 2
    s: int = 2
    pad: int = 0
    mode: str = "max"
    elem_w: int = 8
    out_w: int = 0          # 0: elem_w for max, elem_w + clog2(k*k) for sum
    lanes: int = 1
    signed: bool = True

    def __post_init__(self):
        self.rtl_module = "bhpe_pool"
        if self.mode not in MODES:
            raise ValueError(f"{self.name}: Pool mode {self.mode!r} is not one of {sorted(MODES)}")
        _check_lanes(self.name, self.c, self.lanes)
        need = self.elem_w if self.mode == "max" else self.elem_w + clog2(self.k * self.k)
        if self.out_w == 0:
            self.out_w = need
        if self.out_w < need:
            raise ValueError(f"{self.name}: Pool out_w={self.out_w} too narrow for an exact {self.mode} of "
                             f"{self.k * self.k} taps of {self.elem_w} bits (needs {need})")
        self.swg()  # checks the window shape

    def swg(self) -> SlidingWindow:
        """The window generator the compiler puts in front of ``bhpe_pool``."""
        return SlidingWindow(name=f"{self.name}_swg", h=self.h, w=self.w, c=self.c, k=self.k, s=self.s,
                             pad=self.pad, elem_w=self.elem_w, lanes=self.lanes, signed=self.signed)

    @property
    def oh(self) -> int:
        return self.swg().oh

    @property
    def ow(self) -> int:
        return self.swg().ow

    # --- numerics --------------------------------------------------------------------------------------
    def reduce(self, win: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Reduce windows ``(OH, OW, K*K*C)`` with their 0/1 mask to ``(OH, OW, C)`` (what bhpe_pool does)."""
        taps = self.k * self.k
        win = np.asarray(win, dtype=np.int64).reshape(win.shape[0], win.shape[1], taps, self.c)
        m = np.asarray(mask).reshape(win.shape) != 0
        if self.mode == "sum":
            return np.where(m, win, 0).sum(axis=2).astype(np.int64)
        lo = -(1 << (self.elem_w - 1)) if self.signed else 0   # no valid tap: the element minimum
        return np.where(m, win, lo).max(axis=2).astype(np.int64)

    def execute(self, ins):
        """``(h, w, c)`` input -> ``(OH, OW, c)`` pooled output."""
        g = self.swg()
        return [self.reduce(g.execute(ins)[0], g.execute_mask(ins))]

    # --- cycle model -----------------------------------------------------------------------------------
    def reduce_cycles(self) -> dict:
        """``bhpe_pool`` alone fed at one window beat a cycle: input bound, output registered (+1)."""
        n = self.oh * self.ow * self.k * self.k * self.c // self.lanes
        return {"ii": n, "latency": n}

    # --- the kind interface (compile/kinds/base.py; the rest from StreamKind) ----------------------------
    def assign_lanes(self, in_lanes: list[int]) -> list[int]:
        self.lanes = math.gcd(in_lanes[0], self.c)
        return [self.lanes]

    def stream_capacity(self) -> int:
        return (self.k + self.s) * self.w * (self.c // self.lanes) + 4  # its window generator's line buffer

    @property
    def start_fraction(self) -> float:
        return min(1.0, (self.k - self.pad) / self.h)

    def cycles(self) -> dict:
        """SWG + reducer: the reducer never slows the SWG down and adds one cycle of latency."""
        c = self.swg().cycles()
        return {"ii": c["ii"], "latency": c["latency"] + 1}

    # --- interfaces / RTL ------------------------------------------------------------------------------
    def in_streams(self):
        return [StreamSpec(self.lanes, self.elem_w, self.signed)]

    def out_streams(self):
        return [StreamSpec(self.lanes, self.out_w, self.signed)]

    def rtl_params(self) -> dict:
        """Parameters of the reducer ``bhpe_pool`` (the SWG's are ``self.swg().rtl_params()``)."""
        return {"ElemW": self.elem_w, "OutW": self.out_w, "Lanes": self.lanes, "C": self.c, "K": self.k,
                "Mode": MODES[self.mode], "Signed": int(self.signed)}

    def rtl_top(self) -> tuple[str, dict]:
        """The SWG + reducer pair as one module: ``("bhpe_swg_pool", parameters)``."""
        p = dict(self.swg().rtl_params())
        p.update(self.rtl_params())
        return "bhpe_swg_pool", p

    def resources(self) -> dict:
        """First-order model: SWG estimate plus, per lane, an OutW-bit compare/add and a C/Lanes-word
        partial-result LUT RAM and output register."""
        r = dict(self.swg().resources())
        cb = self.c // self.lanes
        lw = self.lanes * self.out_w
        r["lut"] += lw * (2 if self.mode == "max" else 1) + _lutram(lw, cb) + 10
        r["ff"] += lw + 12
        return r
