"""Analytic cycle model of the generated C on a Cortex-M core, per layer.

Counts the work of each layer from the hardware graph (8-word Harley-Seal blocks and leftover words of the
XNOR-popcount dot products, 16-bit pairs a group of output channels, int8 window words, gathered window taps,
fused epilogue ops less the saturations the value ranges prove never clip, packed-sign words, copied words, pool
taps), multiplies by *instructions per unit* read off the Thumb-2 code that arm-none-eabi-gcc -O2 emits for the
generated C (the same for M4, M7, M33, M55: the same scalar Thumb-2 code, LDRD, SMLAD, SXTB16, USADA8 and SSAT
included; none of these cores has a scalar popcount instruction), and converts instructions to cycles with a
per-core cycles-per-instruction figure (CPI). The constants were set from the instruction sequences (static
counts of the straight-line dot products) and then checked against QEMU's per-layer instruction counts of the
tiny BiDRN and the face BiDRN-18 at 64x64 (docs/mcu.md; ``xnor_word``, ``sign_group``, ``fxp_pair_g4`` and
``mvu_out_g`` were adjusted to those counts). A tiled region's layers count the rows computed over all bands (the
halo rows each time they are recomputed).

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
    "xnor_word": 10,        # windows of < 8 words, per word: ldr, ldr, eor, a third of a carry-save adder and of two
                            # 4-bit-field counts, byte step
    "xnor_fold": 2,         # windows of < 8 words: the byte sums added (one USADA8) and returned
    "xnor_block": 63,       # Harley-Seal, per 8-word block: 8 LDRD, 8 eor, 7 carry-save adders (35), the eights'
                            # popcount into byte sums (12)
    "xnor_pair": 25,        # Harley-Seal, per pair of words left after the blocks: 2 LDRD, 2 eor, an adder, two half
                            # adders, a popcount
    "xnor_final": 30,       # Harley-Seal, per dot product: ones / twos / fours counted (3 x 4-bit fields, 2 byte
                            # steps, USADA8), 8 t8 added
    "xnor_corr": 5,         # per (padded tap, output channel): the padding tap's weight popcount subtracted
    "mvu_out": 10,          # per (pixel, out channel): weight pointer, dot entry, base - 2d, store, loop
    "out_packed": 3,        # extra per output element written bit-packed (or, shift, word store every 32)
    "gather_tap": 10,       # per (pixel, tap) of the window gathering (coordinates, bounds, pointers)
    "gather_elem": 2,       # per element (word) copied by the gathering
    "dense_tap": 9,         # per (pixel, tap) of a dense binary gathering (< 32 channels): bounds, load, shift, or
    "fxp_pack": 4,          # per pair of 16-bit inputs packed into one word
    "fxp_word8": 6,         # int8 window read a word at a time, per word: ldr, sxtb16, lsr, sxtb16, two stores
    "fxp_tail8": 4,         # int8 window, per pair of a row's last elements: ldrsb (two), pack, store
    "fxp_row8": 3,          # int8 window, per row: its address
    "fxp_pair": 3,          # ldr, ldr, smlad (two MACs)
    "fxp_pair_g4": 7,       # per pair and group of 4 output channels: half an LDRD of inputs (and its address), 2 LDRD
                            # of weights, 4 smlad
    "fxp_pair_g2": 4,       # per pair and group of 2 output channels: half an LDRD of inputs (and its address), 1 LDRD
                            # of weights, 2 smlad
    "fxp_group": 6,         # per group of output channels: the call, the accumulators stored and read back
    "mvu_out_g": 4,         # per (pixel, out channel) of a grouped fixed-point MVU: accumulator from the group, store
    "fxp_mac": 4,           # int32 path: ldr, ldrs[bh], mla, (loop)
    "pixel": 10,            # per output pixel of any layer
    "band_call": 20,        # per band and step of a tiled region: setting row bases, the call
    "window_tap": 12,       # per (pixel, tap) of a phase shuffle's address computation
    "elem": 10,             # per element of an elementwise epilogue (load, op, saturate, store, loop)
    "elem_packed": 6,       # extra per element when reading or writing a bit-packed tensor
    "sat": 1,               # one saturation (SSAT) of an Epilogue op, left out where the ranges prove it never clips
    "mt_thr": 4,            # per threshold of a MultiThreshold
    "pool_tap": 9,          # per (element, tap), channels inside the tap loop (more than cbackend.POOL_CHANNELS_INSIDE)
    "pool_tap_few": 3,      # per (element, tap), channels outside (few channels: gcc unrolls the constant-bound taps)
    "copy": 4,              # per element of Concat/Split (bit-packed or of different C types)
    "copy_word": 2,         # Concat/Split of one C type, per word of a pixel's channel run (memcpy: ldr, str)
    "copy_run": 3,          # Concat/Split of one C type, per pixel and run (addresses)
    "sign_group": 4,        # packed Sign, per word of 4 int8 / 2 int16 inputs: ldr, bic, mul, shift, orr (and the
                            # store)
    "epi_elem": 5,          # per element of a fused Epilogue: load, index, store, loop
    "loop_elem": 3,         # of that, the channel loop (add, compare-branch, index): none where the channels are
                            # written out
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


def _interior(win) -> int:
    """Output pixels whose window lies inside the image (no padding tap)."""
    def axis(n, k, o):
        return sum(1 for i in range(o) if 0 <= i * win.s - win.pad and i * win.s - win.pad + k <= n)
    return axis(win.h, win.kh, win.oh) * axis(win.w, win.kw, win.ow)


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
        per_out += _epi_per_elem(epi) - _free_sat(cm, epi, lay)
    if binary:
        words = -(-taps * win.c // 32) if dense else taps * src.cw
        per_out += xdot_instructions(words)
        corr = _padded_taps(win) * lay.cout * INSTR["xnor_corr"] if win.pad and not contiguous else 0
        return n + pixels * lay.cout * per_out + corr
    pairs = src.elem_bytes <= 2 and lay.w_w <= 16
    m = taps * win.c
    if pairs and src.elem_bytes == 1:  # cbackend._int8_pairs: rows a word at a time; border pixels gathered
        n -= 0 if contiguous else pixels * taps * (INSTR["gather_tap"] + per_tap * INSTR["gather_elem"])
        seg = m if contiguous else win.kw * win.c
        rows = 1 if contiguous else win.kh
        npair = rows * (2 * (seg // 4) + -(-(seg % 4) // 2))
        per_pix = rows * (INSTR["fxp_row8"] + seg // 4 * INSTR["fxp_word8"] + -(-(seg % 4) // 2) * INSTR["fxp_tail8"])
        inner = pixels if contiguous or not win.pad else _interior(win) * pixels // (win.oh * win.ow)
        border = pixels - inner
        n += inner * per_pix + border * (taps * (INSTR["gather_tap"] + per_tap * INSTR["gather_elem"])
                                         + npair * INSTR["fxp_pack"])
    elif pairs:
        npair = -(-m // 2)
        n += pixels * npair * INSTR["fxp_pack"] + (pixels * m * INSTR["gather_elem"] if contiguous else 0)
    if pairs:
        group = 4 if lay.cout % 4 == 0 else 2 if lay.cout % 2 == 0 else 1  # cbackend.fxp's output-channel groups
        if group > 1:
            per_out += npair * INSTR[f"fxp_pair_g{group}"] / group + INSTR["fxp_group"] / group \
                + INSTR["mvu_out_g"] - INSTR["mvu_out"]
        else:
            per_out += npair * INSTR["fxp_pair"]
    else:
        per_out += m * INSTR["fxp_mac"]
    return n + pixels * lay.cout * per_out


def xdot_instructions(n: int) -> int:
    """Instructions of one XNOR-popcount dot product over ``n`` words (``cbackend._Emitter._xdot``): Harley-Seal
    from 8 words (blocks of 8, pairs left over, the final count), else per word and one byte-sum fold."""
    if n >= 8:
        return (n // 8) * INSTR["xnor_block"] + -(-(n % 8) // 2) * INSTR["xnor_pair"] + INSTR["xnor_final"]
    return n * INSTR["xnor_word"] + INSTR["xnor_fold"]


def _free_sat(cm, epi, mvu=None) -> int:
    """Instructions saved by the saturations the value ranges prove never clip (cbackend.op_ranges: not emitted),
    one (an SSAT) each."""
    from binaryhpe.compile.cbackend import free_saturations

    return free_saturations(cm.g, epi, mvu) * INSTR["sat"]


def _unrolled(lay) -> int:
    """Instructions a stand-alone elementwise step saves an element where cbackend writes its channels out
    (at most ``cbackend.ELEM_UNROLL`` channels: no channel loop)."""
    from binaryhpe.compile.cbackend import ELEM_UNROLL

    return INSTR["loop_elem"] if lay.c <= ELEM_UNROLL else 0


def _sign_packed(cm, lay) -> int:
    """Channels a word when ``lay`` (a Sign, or an Epilogue of one Sign) runs as cbackend's packed Sign, else 0."""
    from binaryhpe.compile.cbackend import _Emitter

    if isinstance(lay, Epilogue) and not (len(lay.ops) == 1 and isinstance(lay.ops[0], Sign)):
        return 0
    st = cm.storage
    return _Emitter._sign_words(st[cm.root[lay.inputs[0]]], st[cm.root[lay.outputs[0]]], lay.c)


@MODEL.emits(Pool)
def _pool(cm, lay, pixels: int, extra: int) -> int:
    """per (element, valid tap)"""
    from binaryhpe.compile.cbackend import POOL_CHANNELS_INSIDE, Window

    win = Window("", lay.h, lay.w, lay.c, lay.k, lay.k, lay.s, lay.pad)
    per = INSTR["pool_tap"] if lay.c > POOL_CHANNELS_INSIDE else INSTR["pool_tap_few"]
    return pixels * INSTR["pixel"] + lay.c * win.valid_taps() * per


@MODEL.emits(Concat, Split)
def _copy(cm, lay, pixels: int, extra: int) -> int:
    """per copied element, or (one C type, cbackend._pix_copy) per word of the two runs a pixel"""
    from binaryhpe.compile.cbackend import _Emitter

    st = [cm.storage[cm.root[t]] for t in list(lay.inputs) + list(lay.outputs)]
    if _Emitter._same_elems(*st):
        eb = st[0].elem_bytes
        words = -(-lay.c1 * eb // 4) + -(-lay.c2 * eb // 4)
        return pixels * (INSTR["pixel"] + 2 * INSTR["copy_run"] + words * INSTR["copy_word"])
    return pixels * INSTR["pixel"] + pixels * (lay.c1 + lay.c2) * (INSTR["copy"] + extra)


@MODEL.emits(PhaseShuffle)
def _shuffle(cm, lay, pixels: int, extra: int) -> int:
    """per output pixel the source address (a few divides), per element a copy"""
    return pixels * (INSTR["pixel"] + 4 * INSTR["window_tap"]) + pixels * lay.c * (INSTR["copy"] + extra)


@MODEL.emits(Requant, JoinAdd, MulShift, AddConst, Prelu, Sign, Threshold, MultiThreshold)
def _elementwise(cm, lay, pixels: int, extra: int) -> int:
    """per element: load, operation, saturation, store (a packed Sign: per word of inputs)"""
    if isinstance(lay, Sign) and _sign_packed(cm, lay):
        return pixels * (INSTR["pixel"] + -(-lay.c // _sign_packed(cm, lay)) * INSTR["sign_group"])
    per = INSTR["elem"] + extra - _free_sat(cm, lay) - _unrolled(lay)
    if isinstance(lay, MultiThreshold):
        per += INSTR["mt_thr"] * lay.n
    return pixels * INSTR["pixel"] + pixels * lay.c * per


@MODEL.emits(Epilogue)
def _epilogue(cm, lay, pixels: int, extra: int) -> int:
    """per element one load and store, per op its arithmetic in registers (a packed Sign: per word of inputs)"""
    if _sign_packed(cm, lay):
        return pixels * (INSTR["pixel"] + -(-lay.c // _sign_packed(cm, lay)) * INSTR["sign_group"])
    per = INSTR["epi_elem"] + (INSTR["epi_packed"] if extra else 0) + _epi_per_elem(lay) - _free_sat(cm, lay) \
        - _unrolled(lay)
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
