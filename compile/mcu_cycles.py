"""Analytic cycle model of the generated C on a Cortex-M core, per layer.

Counts the work of each layer from the hardware graph (packed words of XNOR-popcount, 16-bit MAC pairs, gathered
window taps, fused epilogue ops, epilogue elements, pool taps, copied elements), multiplies by *instructions per
unit* read off the Thumb-2 code that arm-none-eabi-gcc -O2 emits for the generated C (the same for M4, M7, M33,
M55: the same scalar Thumb-2 code, SMLAD and SSAT included; the XNOR-popcount is the SWAR sequence of
``cbackend.POPCOUNT_C``, none of these cores has a scalar popcount instruction), and converts instructions to
cycles with a per-core cycles-per-instruction figure (CPI). The constants were set from the instruction
sequences and then checked against QEMU's per-layer instruction counts of the tiny BiDRN and the face BiDRN-18
(docs/mcu.md: ``xnor_word``, ``mvu_out``, ``dense_tap`` and ``copy`` were adjusted to those counts). A tiled
region's layers count the rows computed over all bands (the halo rows each time they are recomputed).

=========== ===== =====================================================================================
core        CPI   why
=========== ===== =====================================================================================
cortex-m4   1.25  3-stage in-order single issue; loads 2 cycles, taken branches 2-3 cycles
cortex-m7   0.80  6-stage in-order dual issue; ~1.25 instructions a cycle on this load/ALU mix (TCM, no waits)
cortex-m33  1.20  3-stage in-order single issue (as M4, faster branch)
cortex-m55  0.95  4-stage in-order, limited dual issue of scalar code (no Helium/MVE: the C is scalar)
=========== ===== =====================================================================================

These CPIs assume zero-wait-state memories (TCM / flash accelerator hits); they are not measured (QEMU is
not cycle-accurate: ``sim/mcu.py`` measures the *instruction* count, which checks the instruction half of
the model).
"""

from __future__ import annotations

from binaryhpe import BinaryHPEError
from binaryhpe.compile.backends.emitters import Registry
from binaryhpe.compile.kinds.elementwise import (AddConst, JoinAdd, MulShift, MultiThreshold, Prelu, Requant,
                                                 Sign, Threshold)
from binaryhpe.compile.kinds.epilogue import Epilogue
from binaryhpe.compile.kinds.mvu import FcFxpMvu, FcXnorMvu, FxpMvu, XnorMvu
from binaryhpe.compile.kinds.plumbing import Concat, Dwc, Fifo, Fork, PhaseShuffle, Split
from binaryhpe.compile.kinds.pool import Pool
from binaryhpe.compile.kinds.swg import SlidingWindow

CPI = {"cortex-m4": 1.25, "cortex-m7": 0.80, "cortex-m33": 1.20, "cortex-m55": 0.95}

#: instructions per unit of work (Thumb-2, gcc -O2); see the module docstring
INSTR = {
    "xnor_word": 13,        # ldr, ldr, eor; a third of a 3-word carry-save adder (5) and of two 4-bit-field counts (14), nibble add, byte step; spills
    "xnor_fold": 7,         # per 30 words: the byte sums folded (and, and-shift, add, multiply, shift, add)
    "xnor_corr": 5,         # per (padded tap, output channel): the padding tap's weight popcount subtracted
    "mvu_out": 10,          # per (pixel, out channel): weight pointer, dot entry, base - 2d, store, loop
    "out_packed": 3,        # extra per output element written bit-packed (or, shift, word store every 32)
    "gather_tap": 10,       # per (pixel, tap) of the window gathering (coordinates, bounds, pointers)
    "gather_elem": 2,       # per element (word) copied by the gathering
    "dense_tap": 9,         # per (pixel, tap) of a dense binary gathering (< 32 channels): bounds, load, shift, or
    "fxp_pack": 4,          # per pair of 16-bit inputs packed into one word
    "fxp_pair": 3,          # ldr, ldr, smlad (two MACs)
    "fxp_mac": 4,           # int32 path: ldr, ldrs[bh], mla, (loop)
    "pixel": 10,            # per output pixel of any layer
    "band_call": 20,        # per band and step of a tiled region: setting row bases, the call
    "window_tap": 12,       # per (pixel, tap) of a phase shuffle's address computation
    "elem": 10,             # per element of an elementwise epilogue (load, op, saturate, store, loop)
    "elem_packed": 6,       # extra per element when reading or writing a bit-packed tensor
    "mt_thr": 4,            # per threshold of a MultiThreshold
    "pool_tap": 9,          # per (element, tap)
    "copy": 4,              # per element of Concat/Split
    "epi_elem": 5,          # per element of a fused Epilogue: load, index, store, loop
    "epi_packed": 2,        # extra per element of an Epilogue reading or writing a bit-packed tensor
}

#: instructions per element and op of a fused Epilogue, the op's arithmetic in registers: a saturation to
#: fewer than 32 bits is one SSAT (often with the shift folded in), a per-channel constant one load
#: (fitted to QEMU's per-layer counts of the tiny BiDRN on Cortex-M7: total within 3%)
EPI_OP = {Requant: 1, MulShift: 4, AddConst: 3, Prelu: 4, JoinAdd: 3, Sign: 2, Threshold: 3, MultiThreshold: 2}


#: kind -> instruction count of its generated C (``fn(cm, lay, pixels, extra)``); kinds that emit no code are
#: refused here (the C backend never schedules them)
MODEL = Registry("mcu cycle model")
for _k in (Fork, Fifo, Dwc, SlidingWindow):
    MODEL.refuse(_k, "emits no C code (an alias of its input buffer, or fused into its consumer)")


def layer_instructions(cm, lay) -> int:
    """Predicted instructions of ``lay``'s generated C function (a whole frame, untiled); an unknown kind is an
    error naming it."""
    e = MODEL.entry(lay)
    st = cm.storage
    outs = cm.step_io[lay.name][1] if lay.name in cm.step_io else lay.outputs
    out = st[cm.root[outs[0]]]
    ins = cm.step_io[lay.name][0] if lay.name in cm.step_io else lay.inputs
    packed = any(st[cm.root[t]].packed for t in list(ins) + list(outs) if cm.root.get(t) in st)
    return int(e.fn(cm, lay, out.h * out.w, INSTR["elem_packed"] if packed else 0))


def _window_of(cm, lay):
    from binaryhpe.compile.cbackend import Window

    t = lay.inputs[0]
    if t in cm.windows:
        return cm.windows[t]
    s = cm.storage[cm.root[t]]
    return Window(cm.root[t], s.h, s.w, s.c, s.h, s.w, 1, 0)


def _padded_taps(win) -> int:
    """Sum over output pixels of the taps outside the image (each costs one correction an output channel)."""
    return win.oh * win.ow * win.kh * win.kw - win.valid_taps()


def _epi_per_elem(epi) -> int:
    per = 0
    for op in epi.ops:
        if type(op) not in EPI_OP:
            raise BinaryHPEError(f"mcu cycle model: op {op.name!r} (kind {type(op).__name__}) of Epilogue "
                                 f"{epi.name!r} has no per-op cost (mcu_cycles.EPI_OP)")
        per += EPI_OP[type(op)]
        if isinstance(op, MultiThreshold):
            per += INSTR["mt_thr"] * op.n
    return per


@MODEL.emits(XnorMvu, FcXnorMvu, FxpMvu, FcFxpMvu)
def _mvu(cm, lay, pixels: int, extra: int) -> int:
    """per output pixel the window gathered (per tap, per element), per (pixel, output channel) the
    straight-line dot product (per 32-channel word / per pair of 16-bit MACs), the padding corrections and the
    fused Epilogue's ops on the accumulator"""
    from binaryhpe.compile.cbackend import CModel  # noqa: F401  (cm is one)

    win = _window_of(cm, lay)
    taps = win.kh * win.kw
    contiguous = win.pad == 0 and (taps == 1 or (win.kh == win.h and win.kw == win.w))
    src = cm.storage[win.src]
    binary = isinstance(lay, XnorMvu)
    per_tap = src.cw if binary else win.c
    n = pixels * INSTR["pixel"]
    dense = binary and src.cw == 1 and win.c < 32 and taps > 1  # cbackend._xnor_dense: taps' bits back to back
    if dense:
        n += pixels * taps * INSTR["dense_tap"]
    elif not contiguous:
        n += pixels * taps * (INSTR["gather_tap"] + per_tap * INSTR["gather_elem"])
    epi = getattr(cm, "fused", {}).get(lay.name)
    out = cm.storage[cm.root[(cm.step_io[lay.name][1] if lay.name in cm.step_io else lay.outputs)[0]]]
    per_out = INSTR["mvu_out"] + (INSTR["out_packed"] if out.packed else 0)
    if epi is not None:
        per_out += _epi_per_elem(epi)
    if binary:
        words = -(-taps * win.c // 32) if dense else taps * src.cw
        per_out += words * INSTR["xnor_word"] + -(-words // 30) * INSTR["xnor_fold"]
        corr = _padded_taps(win) * lay.cout * INSTR["xnor_corr"] if win.pad and not contiguous else 0
        return n + pixels * lay.cout * per_out + corr
    pairs = src.elem_bytes <= 2 and lay.w_w <= 16
    m = taps * win.c
    if pairs:
        n += pixels * -(-m // 2) * INSTR["fxp_pack"] + (pixels * m * INSTR["gather_elem"] if contiguous else 0)
        per_out += -(-m // 2) * INSTR["fxp_pair"]
    else:
        per_out += m * INSTR["fxp_mac"]
    return n + pixels * lay.cout * per_out


@MODEL.emits(Pool)
def _pool(cm, lay, pixels: int, extra: int) -> int:
    """per (element, valid tap)"""
    from binaryhpe.compile.cbackend import Window

    win = Window("", lay.h, lay.w, lay.c, lay.k, lay.k, lay.s, lay.pad)
    return pixels * INSTR["pixel"] + lay.c * win.valid_taps() * INSTR["pool_tap"]


@MODEL.emits(Concat, Split)
def _copy(cm, lay, pixels: int, extra: int) -> int:
    """per copied element"""
    return pixels * INSTR["pixel"] + pixels * (lay.c1 + lay.c2) * (INSTR["copy"] + extra)


@MODEL.emits(PhaseShuffle)
def _shuffle(cm, lay, pixels: int, extra: int) -> int:
    """per output pixel the source address (a few divides), per element a copy"""
    return pixels * (INSTR["pixel"] + 4 * INSTR["window_tap"]) + pixels * lay.c * (INSTR["copy"] + extra)


@MODEL.emits(Requant, JoinAdd, MulShift, AddConst, Prelu, Sign, Threshold, MultiThreshold)
def _elementwise(cm, lay, pixels: int, extra: int) -> int:
    """per element: load, operation, saturation, store"""
    per = INSTR["elem"] + extra
    if isinstance(lay, MultiThreshold):
        per += INSTR["mt_thr"] * lay.n
    return pixels * INSTR["pixel"] + pixels * lay.c * per


@MODEL.emits(Epilogue)
def _epilogue(cm, lay, pixels: int, extra: int) -> int:
    """per element one load and store, per op its arithmetic in registers"""
    per = INSTR["epi_elem"] + (INSTR["epi_packed"] if extra else 0) + _epi_per_elem(lay)
    return pixels * INSTR["pixel"] + pixels * lay.c * per


def predict(cm, target: dict) -> dict:
    cpi = CPI[target["core"]]
    from binaryhpe.compile.cbackend import PACK_INPUT

    rows = []
    by_name = {lay.name: lay for lay in cm.g.layers}
    computed = cm.tiling.rows_computed(cm) if getattr(cm, "tiling", None) is not None else {}
    for name in cm.steps:
        if name == PACK_INPUT:
            p = cm.storage[cm.g.input]
            n = p.h * p.w * (INSTR["pixel"] + p.c * (INSTR["elem"] + INSTR["elem_packed"]))
            rows.append({"layer": name, "kind": "PackInput", "predicted_instructions": int(n),
                         "predicted_cycles": int(round(n * cpi))})
            continue
        lay = by_name[name]
        n = layer_instructions(cm, lay)
        if name in computed:  # tiled: the rows computed over all bands (halos twice), plus a call a band
            h = cm.storage[cm.step_io[name][1][0]].h
            n = n * computed[name] / h + INSTR["band_call"] * len(cm.tiling.bands)
        rows.append({"layer": name, "kind": type(lay).__name__, "predicted_instructions": int(n),
                     "predicted_cycles": int(round(n * cpi))})
    tot = sum(r["predicted_instructions"] for r in rows)
    return {"instructions": int(tot), "cycles": int(round(tot * cpi)), "layers": rows,
            "model": {"core": target["core"], "cpi": cpi, "instructions_per_unit": dict(INSTR)}}
