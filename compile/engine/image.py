"""The DRAM image: tensors, weights and constants packed as docs/engine.md's "Data layout in DRAM" says.

- a tensor pixel is ``ceil(C * ew / 64)`` 64-bit little-endian words, channel ``c`` at bit ``c * ew``, the
  container holding the low ``ew`` bits of the value (two's complement; 1-bit bipolar: 1 = +1); a view's pixel
  ``(y, x)`` starts at ``addr + (y * W + x) * pix_stride * 8``;
- weights: buffer word ``((g * kh + ky) * kw + kx) * cw_in + cw`` = PE consecutive DRAM words, lane ``p`` =
  output channel ``g * PE + p`` (XNOR: bit ``b`` = input channel ``cw * 64 + b``, 1 = +1; MAC: element ``e`` of
  the input's container = input channel ``cw * 64 / ew + e``);
- constants: column ``j``, group ``g``: PE signed 32-bit values at ``c_addr + (j * ng + g) * PE * 4``.

``compile.engine.model`` reads the same layout with its own code (an independent check of this packing).
"""

from __future__ import annotations

import numpy as np

from binaryhpe import BinaryHPEError

_DT = {8: "<u1", 16: "<u2", 32: "<u4"}


def pixel_words(c: int, ew: int) -> int:
    """64-bit words of a pixel of ``c`` channels in ``ew``-bit containers."""
    return -(-c * ew // 64)


def pack_pixels(q: np.ndarray, ew: int, words: int) -> np.ndarray:
    """(P, C) integers -> (P, words * 8) bytes: each value's low ``ew`` bits at bit ``c * ew``, the rest 0."""
    q = np.asarray(q, dtype=np.int64)
    p, c = q.shape
    lanes = words * 64 // ew
    if c > lanes:
        raise BinaryHPEError(f"{c} channels of {ew} bits do not fit {words} words")
    full = np.zeros((p, lanes), dtype=np.int64)
    full[:, :c] = q
    if ew == 1:
        return np.packbits((full & 1).astype(np.uint8), axis=1, bitorder="little")
    u = (full & ((1 << ew) - 1)).astype(_DT[ew])
    return u.view(np.uint8).reshape(p, words * 8)


def unpack_pixels(b: np.ndarray, c: int, ew: int, signed: bool) -> np.ndarray:
    """(P, nbytes) bytes -> (P, C) int64: the first ``c`` containers, sign-extended when ``signed``."""
    b = np.ascontiguousarray(b, dtype=np.uint8)
    if ew == 1:
        return np.unpackbits(b, axis=1, bitorder="little")[:, :c].astype(np.int64)
    v = b.view(_DT[ew])[:, :c].astype(np.int64)
    if signed:
        v = np.where(v >= (1 << (ew - 1)), v - (1 << ew), v)
    return v


def write_tensor(image: bytearray, addr: int, pix_stride: int, q_hwc: np.ndarray, ew: int, words: int) -> None:
    """Write (H, W, C) integers at ``addr`` (pixel stride ``pix_stride`` words, ``words`` words a pixel)."""
    q = np.asarray(q_hwc, dtype=np.int64)
    h, w, c = q.shape
    data = pack_pixels(q.reshape(h * w, c), ew, words)
    mem = np.frombuffer(image, dtype=np.uint8)
    if addr + ((h * w - 1) * pix_stride + words) * 8 > len(mem):
        raise BinaryHPEError(f"tensor at {addr:#x} runs past the end of the DRAM image ({len(mem)} bytes)")
    dst = np.lib.stride_tricks.as_strided(mem[addr:], shape=(h * w, words * 8), strides=(pix_stride * 8, 1),
                                          writeable=True)
    dst[...] = data


def read_tensor(image, addr: int, pix_stride: int, shape, ew: int, words: int, signed: bool) -> np.ndarray:
    """Read (H, W, C) integers (sign-extended when ``signed``) from a tensor written as ``write_tensor`` does."""
    h, w, c = shape
    mem = np.frombuffer(bytes(image), dtype=np.uint8)
    idx = addr + (np.arange(h * w) * pix_stride * 8)[:, None] + np.arange(words * 8)[None, :]
    return unpack_pixels(mem[idx], c, ew, signed).reshape(h, w, c)


def pack_weights_xnor(w: np.ndarray, pe: int, ng_pad: int) -> bytes:
    """(cout, kh, kw, c_in) of +1/-1 -> the weight-buffer image of ``ng_pad`` groups (groups past cout: 0)."""
    cout, kh, kw, c = w.shape
    cw = pixel_words(c, 1)
    bits = np.zeros((ng_pad * pe, kh, kw, cw * 64), dtype=np.uint8)
    bits[:cout, :, :, :c] = (np.asarray(w) > 0)
    words = np.packbits(bits, axis=3, bitorder="little").view("<u8")  # (co, kh, kw, cw)
    words = words.reshape(ng_pad, pe, kh, kw, cw).transpose(0, 2, 3, 4, 1)
    return np.ascontiguousarray(words).astype("<u8").tobytes()


def pack_weights_mac(w: np.ndarray, pe: int, ng_pad: int, ew: int) -> bytes:
    """(cout, kh, kw, c_in) signed integers -> the weight-buffer image, elements in ``ew``-bit containers."""
    cout, kh, kw, c = w.shape
    per = 64 // ew
    cw = pixel_words(c, ew)
    el = np.zeros((ng_pad * pe, kh, kw, cw * per), dtype=np.int64)
    el[:cout, :, :, :c] = np.asarray(w, dtype=np.int64)
    u = (el & ((1 << ew) - 1)).astype(_DT[ew])
    words = np.ascontiguousarray(u).view("<u8").reshape(ng_pad * pe, kh, kw, cw)
    words = words.reshape(ng_pad, pe, kh, kw, cw).transpose(0, 2, 3, 4, 1)
    return np.ascontiguousarray(words).tobytes()


def pack_constants(cols: list[np.ndarray], pe: int, ng: int) -> bytes:
    """Columns of per-channel int32 constants -> ``n_cols * ng * PE`` little-endian int32 (channels past cout: 0)."""
    out = np.zeros((len(cols), ng * pe), dtype="<i4")
    for j, col in enumerate(cols):
        col = np.asarray(col, dtype=np.int64)
        if col.size and (col.min() < -(1 << 31) or col.max() >= (1 << 31)):
            raise BinaryHPEError("a constant does not fit 32 signed bits")
        out[j, :col.size] = col
    return out.tobytes()
