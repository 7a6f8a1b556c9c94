"""A small example design for the tests (and the wstream benchmark): a three-layer binary convolution."""

from __future__ import annotations

import numpy as np

from binaryhpe.compile.graph import Fmt, HwGraph, TensorInfo
from binaryhpe.compile.kinds.elementwise import Requant
from binaryhpe.compile.kinds.mvu import XnorMvu
from binaryhpe.compile.kinds.swg import SlidingWindow


def example_graph(h: int = 8, w: int = 8, c: int = 8, cout: int = 8, pe: int = 2, simd: int = 4,
                  seed: int = 0) -> HwGraph:
    """A three-layer binary conv: 3x3 window generator -> XNOR-popcount MVU -> requantizer (8 -> 4 bits),
    ``h x w x c`` bipolar input, ``cout`` outputs; PE/SIMD as given (SetFolding may change them)."""
    rng = np.random.default_rng(seed)
    n = 9 * c
    g = HwGraph(input="x", output="y", source="example")
    g.tensors["x"] = TensorInfo("x", (h, w, c), Fmt(1, bipolar=True), lanes=simd)
    g.tensors["win"] = TensorInfo("win", (h, w, n), Fmt(1, bipolar=True), lanes=simd, windowed=True)
    acc_w = XnorMvu(name="t", n=n, cout=1, weights=np.ones((1, n), dtype=np.int64)).acc_w
    g.tensors["acc"] = TensorInfo("acc", (h, w, cout), Fmt(acc_w), lanes=pe)
    g.tensors["y"] = TensorInfo("y", (h, w, cout), Fmt(4), lanes=pe)
    g.layers = [
        SlidingWindow(name="swg", inputs=["x"], outputs=["win"], h=h, w=w, c=c, k=3, s=1, pad=1, elem_w=1,
                      lanes=simd, signed=False),
        XnorMvu(name="mvu", inputs=["win"], outputs=["acc"], n=n, cout=cout, pe=pe, simd=simd, pixels=h * w,
                weights=rng.choice([-1, 1], size=(cout, n))),
        Requant(name="rq", inputs=["acc"], outputs=["y"], c=cout, lanes=pe, pixels=h * w, in_w=acc_w, out_w=4,
                shift=2)]
    return g
