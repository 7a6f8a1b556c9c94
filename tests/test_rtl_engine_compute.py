"""The engine's compute unit (hw/rtl/engine/bhpe_eng_compute.sv with bhpe_eng_epilogue and the XNOR, MAC and
pool arrays) alone, in Verilator via cocotb (tests/rtl/engine_compute_tb.py): the five buffers are Python
models, the bench plays loader and store under the row/slot rules, and the output buffer's rows, stored to a
DRAM image, must equal a numpy computation of docs/engine.md's semantics (tests/rtl/engine_compute_tb_cases.py).

Cases: XNOR 3x3 pad 1 at stride 1 and 2 with c_in not a multiple of 64; XNOR sums at both ends (+-N); XNOR 1x1
with a long chain (epilogue-bound); MAC 3x3 on 8-bit (PEF < PE: sub-passes) and 16-bit elements (saturating both
ends); MAC 1x1 stride 2 with r = 1; max pool 3x3 s2 pad 1 of 8-bit and of bipolar elements; sum pool 2x2; max pool
of 32-bit elements; copies (sum pool, k = 1) through a chain of every op kind with a JoinAdd on tensor b (8-, 16-,
32-bit b); cout not a multiple of PE; two tiles and two strips; a short line buffer (r = kh). Each case runs
without and with a late loader / store; without, every pass's cycle count must equal the timing formula of
bhpe_eng_compute.sv's header (exact where it claims to be, else within 5 %).
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

from binaryhpe.sim.runner import run_cocotb

HERE = pathlib.Path(__file__).parent
RTL = HERE.parent / "hw" / "rtl"
sys.path.insert(0, str(HERE / "rtl"))
import engine_compute_tb_cases as cases  # noqa: E402

SOURCES = [RTL / "engine" / "bhpe_eng_pkg.sv", RTL / "bhpe_popcount.sv", RTL / "bhpe_adder_tree.sv",
           *(RTL / "engine" / f"bhpe_eng_{m}.sv" for m in ("xnor_array", "mac_array", "pool", "epilogue",
                                                          "compute"))]
PARAMS = {"PE": cases.PE, "PEF": cases.PEF, "LbDepth": cases.LB_DEPTH, "WbDepth": cases.WB_DEPTH,
          "CbDepth": cases.CB_DEPTH, "BbDepth": cases.BB_DEPTH, "ObDepth": cases.OB_DEPTH}


@pytest.mark.parametrize("case", list(cases.CASES))
def test_rtl_engine_compute(case):
    run_cocotb("bhpe_eng_compute", "engine_compute_tb", PARAMS, sources=SOURCES, test_dir=HERE / "rtl",
               extra_env={"CASE": case})


# --- the bench's own reference and layouts (no simulator) ------------------------------------------------
def test_reference_by_hand():
    """A 1-channel 3x3 XNOR sum, a MAC sum and the epilogue ops on values worked out by hand."""
    c = cases.layer(dict(mode="xnor", h=2, w=2, c_in=1, cout=1, k=3, stride=1, pad=1, ct=16, owt=2, ew_in=1,
                         ew_out=8, ops=[], seed=0))
    d = {"x": np.array([[[1], [0]], [[1], [1]]]), "wt": np.ones((1, 3, 3, 1), dtype=np.int64),
         "cols": np.zeros((1, 16), dtype=np.int64)}
    # every output pixel sees all 4 inputs: three +1 (x = 1 = w) and one -1
    assert cases.reference(c, d)[..., 0].tolist() == [[2, 2], [2, 2]]
    c = cases.layer(dict(mode="mac", h=1, w=1, c_in=2, cout=1, k=1, stride=1, pad=0, ct=16, owt=1, ew_in=8,
                         ew_out=8, in_signed=True, seed=0,
                         ops=[cases._op("MulShift", out_w=8, shift=1, col=0),
                              cases._op("Prelu", out_w=8, shift=2, col=1)]))
    d = {"x": np.array([[[3, -4]]]), "wt": np.array([[[[5, 7]]]]), "cols": np.zeros((2, 16), dtype=np.int64)}
    d["cols"][0, 0], d["cols"][1, 0] = 3, 5
    # v = 15 - 28 = -13; MulShift: (3 * -13) >> 1 = -20 (floor); Prelu: (5 * -20) >> 2 = -25; low 8 bits
    assert cases.reference(c, d)[0, 0, 0] == (-25) & 0xFF
    words = cases.pack_pixels(np.array([[[1, 0, 1] + [0] * 62 + [1]]]), 1)
    assert words.shape == (1, 1, 2) and words[0, 0, 0] == 0b101 and words[0, 0, 1] == 0b10


def test_descriptor_fields():
    c = cases.layer(cases.CASES["xnor_s1"])
    v = cases.desc_int(c)
    word = lambda i: (v >> (64 * i)) & ((1 << 64) - 1)  # noqa: E731
    assert word(0) & 0xF == 0 and (word(0) >> 17) & 0x1F == 3
    assert (word(2) & 0xFF, (word(2) >> 16) & 0xFF, (word(2) >> 24) & 0xFF) == (3, 1, 1)
    assert (word(11) & 0xFFFF, (word(11) >> 48) & 0xFFFF) == (-(-40 // cases.PE), 4)
    assert (word(12) & 0xFF, word(12) >> 32) == (1, 0)  # pad_x = pad, out_row_stride 0
    assert (word(13) & 0xF, (word(13) >> 4) & 0x3F, (word(13) >> 10) & 0xFF) == (1, 20, 2)
