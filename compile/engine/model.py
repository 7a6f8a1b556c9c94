"""The engine's golden model: runs the descriptors on the DRAM image in numpy.

``run_model(program, image)`` reads the descriptor list from ``program.desc_addr`` in the image and executes
each descriptor exactly as docs/engine.md's "Semantics" section says, reading nothing but the descriptor
fields, the engine parameters (``program.cfg.pe`` for the weight and constant layout) and the image: not the
hardware graph's layers. It is the model the RTL is debugged against, and an independent check of the
compiler's encoding (its own decoding of tensors, weights and constants; ``compile.engine.image`` packs them).

Per descriptor: read the input tensor (``h x w`` pixels of ``cw_in`` words at ``in_addr``, pixel stride
``in_pix_stride``), compute ``v`` per output pixel and channel (XNOR: the sum of +-1 agreements over the valid
taps and the channels ``c < c_in``; MAC: the sum of products; pool: max / sum over the valid taps), run the
epilogue ops in order on ``v`` (int64; every intermediate is checked against ValW = 40 bits), and write per
output pixel the bytes ``[0, min(n_ct * ct * ew_out / 8, cw_out * 8))`` of the packed result (lanes past
``cout`` are 0) at ``out_addr``, pixel stride ``out_pix_stride``, row stride ``out_row_stride`` (0: ``ow *
out_pix_stride``). The windows start ``pad`` rows above and ``pad_x`` columns left of the input.
"""

from __future__ import annotations

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.engine import descriptor as D

_UDT = {8: "<u1", 16: "<u2", 32: "<u4"}
_VMIN, _VMAX = -(1 << (D.VAL_W - 1)), (1 << (D.VAL_W - 1)) - 1
#: descriptors a program may hold before the model gives up looking for ``last`` (a broken list)
MAX_DESCRIPTORS = 1 << 16


class _Mem:
    def __init__(self, image):
        self.buf = bytearray(image)
        self.u8 = np.frombuffer(self.buf, dtype=np.uint8)

    def _rows(self, addr: int, n: int, stride_bytes: int, nbytes: int) -> np.ndarray:
        if addr < 0 or addr + (n - 1) * stride_bytes + nbytes > self.u8.size:
            raise BinaryHPEError(f"engine model: access at {addr:#x} ({n} x {nbytes} bytes, stride {stride_bytes}) "
                                 f"outside the DRAM image of {self.u8.size} bytes")
        return np.lib.stride_tricks.as_strided(self.u8[addr:], shape=(n, nbytes), strides=(stride_bytes, 1),
                                               writeable=True)

    def read_elems(self, addr, h, w, pix_stride, words, c, ew, signed) -> np.ndarray:
        """(h, w, c) int64 elements of a tensor."""
        raw = np.array(self._rows(addr, h * w, pix_stride * 8, words * 8))
        if ew == 1:
            v = np.unpackbits(raw, axis=1, bitorder="little")[:, :c].astype(np.int64)
        else:
            v = raw.view(_UDT[ew])[:, :c].astype(np.int64)
            if signed:
                v = np.where(v >= (1 << (ew - 1)), v - (1 << ew), v)
        return v.reshape(h, w, c)

    def write_elems(self, addr, values, pix_stride, words, nbytes, ew, row_stride=0) -> None:
        """Pack (h, w, cout) values (low ``ew`` bits each, lanes past cout 0) and write ``nbytes`` a pixel; rows
        ``row_stride`` words apart (0: ``w * pix_stride``)."""
        h, w, c = values.shape
        lanes = words * 64 // ew
        full = np.zeros((h * w, lanes), dtype=np.int64)
        full[:, :c] = values.reshape(h * w, c)
        if ew == 1:
            packed = np.packbits((full & 1).astype(np.uint8), axis=1, bitorder="little")
        else:
            packed = (full & ((1 << ew) - 1)).astype(_UDT[ew]).view(np.uint8).reshape(h * w, words * 8)
        row_stride = row_stride or w * pix_stride
        if row_stride == w * pix_stride:
            self._rows(addr, h * w, pix_stride * 8, nbytes)[...] = packed[:, :nbytes]
            return
        for y in range(h):
            dst = self._rows(addr + y * row_stride * 8, w, pix_stride * 8, nbytes)
            dst[...] = packed[y * w:(y + 1) * w, :nbytes]

    def words(self, addr: int, n: int) -> np.ndarray:
        if addr < 0 or addr + n * 8 > self.u8.size:
            raise BinaryHPEError(f"engine model: {n} words at {addr:#x} outside the DRAM image")
        return self.u8[addr:addr + n * 8].view("<u8")


def _weights(mem: _Mem, d: dict, pe: int, ew_in: int) -> np.ndarray:
    """(kh, kw, c_in, cout) weights of the layer from the weight-buffer image at ``w_addr``."""
    kh, kw, cw, ng, c_in, cout = d["kh"], d["kw"], d["cw_in"], d["ng"], d["c_in"], d["cout"]
    raw = mem.words(d["w_addr"], ng * kh * kw * cw * pe).reshape(ng, kh, kw, cw, pe)
    if d["mode"] == 0:
        b = np.ascontiguousarray(raw).view(np.uint8).reshape(ng, kh, kw, cw, pe, 8)
        bits = np.unpackbits(b, axis=5, bitorder="little")              # (ng, kh, kw, cw, pe, 64)
        w = bits.transpose(1, 2, 3, 5, 0, 4).reshape(kh, kw, cw * 64, ng * pe)
        return (2 * w[:, :, :c_in, :cout].astype(np.int64) - 1)
    per = 64 // ew_in
    el = np.ascontiguousarray(raw).view(_UDT[ew_in]).reshape(ng, kh, kw, cw, pe, per).astype(np.int64)
    el = np.where(el >= (1 << (ew_in - 1)), el - (1 << ew_in), el)
    w = el.transpose(1, 2, 3, 5, 0, 4).reshape(kh, kw, cw * per, ng * pe)
    return w[:, :, :c_in, :cout]


def _taps(x: np.ndarray, d: dict, fill: int):
    """Yield (ky, kx, (oh, ow, C) slice) over the window taps, positions outside the input = ``fill`` (``pad``
    rows above the input, ``pad_x`` columns left of it)."""
    h, w = x.shape[:2]
    kh, kw, s, py, px, oh, ow = d["kh"], d["kw"], d["stride"], d["pad"], d["pad_x"], d["oh"], d["ow"]
    hp = max(h + py, (oh - 1) * s + kh)
    wp = max(w + px, (ow - 1) * s + kw)
    xp = np.full((hp, wp, x.shape[2]), fill, dtype=x.dtype)
    xp[py:py + h, px:px + w] = x
    for ky in range(kh):
        for kx in range(kw):
            yield ky, kx, xp[ky:ky + (oh - 1) * s + 1:s, kx:kx + (ow - 1) * s + 1:s]


def _conv(x: np.ndarray, wt: np.ndarray, d: dict) -> np.ndarray:
    """sum over valid taps of x . w (x is 0 outside the input); exact: float64 sums below 2^53 (checked)."""
    oh, ow, cout = d["oh"], d["ow"], d["cout"]
    bound = float(np.abs(x).max(initial=0)) * float(np.abs(wt).sum(axis=(0, 1, 2)).max(initial=0))
    exact_f64 = bound < 2.0 ** 52
    acc = np.zeros((oh * ow, cout), dtype=np.float64 if exact_f64 else np.int64)
    for ky, kx, xs in _taps(x, d, 0):
        a = xs.reshape(oh * ow, -1)
        if exact_f64:
            acc += a.astype(np.float64) @ wt[ky, kx].astype(np.float64)
        else:  # pragma: no cover - sums beyond 2^52 never pass the compiler's 32-bit accumulator check
            acc += a @ wt[ky, kx]
    return acc.astype(np.int64).reshape(oh, ow, cout)


def _check_val(v: np.ndarray, what: str, layer: int) -> None:
    if v.size and (v.min() < _VMIN or v.max() > _VMAX):
        raise BinaryHPEError(f"engine model: layer {layer}: {what} leaves the {D.VAL_W}-bit epilogue value range "
                             f"({v.min()}..{v.max()})")


def _sat(v: np.ndarray, n: int) -> np.ndarray:
    return np.clip(v, -(1 << (n - 1)), (1 << (n - 1)) - 1)


def _shr(v: np.ndarray, sh: int) -> np.ndarray:
    return (v >> sh) if sh >= 0 else (v << (-sh))


def _epilogue(v: np.ndarray, d: dict, consts: np.ndarray, b: np.ndarray | None, layer: int) -> np.ndarray:
    for i, op in enumerate(d["ops"]):
        code, ow_ = op["opcode"], op["out_w"]
        name = D.OPCODE_NAMES.get(code)
        if name is None or not 1 <= ow_ <= D.VAL_W:
            raise BinaryHPEError(f"engine model: layer {layer}: bad epilogue op {i} ({op})")
        col = lambda j: consts[j][None, None, :]  # noqa: E731
        if name == "Requant":
            t = _shr(v, op["shift"])
            _check_val(t, f"op {i} (Requant)", layer)
            v = _sat(t, ow_)
            if op["relu"]:
                v = np.maximum(v, 0)
        elif name == "MulShift":
            t = col(op["col"]) * v
            _check_val(t, f"op {i} (MulShift) product", layer)
            t = _shr(t, op["shift"])
            _check_val(t, f"op {i} (MulShift)", layer)
            v = _sat(t, ow_)
        elif name == "AddConst":
            t = v + col(op["col"])
            _check_val(t, f"op {i} (AddConst)", layer)
            v = _sat(t, ow_)
        elif name == "Prelu":
            t = col(op["col"]) * v
            _check_val(t, f"op {i} (Prelu) product", layer)
            t = _shr(t, op["shift"])
            _check_val(t, f"op {i} (Prelu)", layer)
            v = np.where(v > 0, _sat(v, ow_), _sat(t, ow_))
        elif name == "JoinAdd":
            if b is None:
                raise BinaryHPEError(f"engine model: layer {layer}: JoinAdd without has_b")
            t = (v << op["shift_a"]) + (b << op["shift_b"])
            _check_val(t, f"op {i} (JoinAdd)", layer)
            v = _sat(t, ow_)
        elif name == "Sign":
            v = (v >= 0).astype(np.int64)
        else:  # Threshold
            t, neg = col(op["col"]), col(op["col"] + 1)
            v = np.where(neg != 0, v <= t, v >= t).astype(np.int64)
    return v


def run_descriptor(mem: _Mem, d: dict, pe: int) -> None:
    """Execute one decoded descriptor on ``mem``."""
    lid = d["layer_id"]
    mode = d["mode"]
    ew_in, ew_out, ew_b = 1 << d["lg_ew_in"], 1 << d["lg_ew_out"], 1 << d["lg_ew_b"]
    for ew in (ew_in, ew_out) + ((ew_b,) if d["has_b"] else ()):
        if ew not in (1, 8, 16, 32):
            raise BinaryHPEError(f"engine model: layer {lid}: element container of {ew} bits")
    if mode not in D.MODE_NAMES:
        raise BinaryHPEError(f"engine model: layer {lid}: bad mode {mode}")
    x = mem.read_elems(d["in_addr"], d["h"], d["w"], d["in_pix_stride"], d["cw_in"], d["c_in"], ew_in,
                       bool(d["in_signed"]))
    if mode == 0:
        if ew_in != 1:
            raise BinaryHPEError(f"engine model: layer {lid}: XNOR convolution of {ew_in}-bit elements")
        v = _conv(2 * x - 1, _weights(mem, d, pe, 1), d)
    elif mode == 1:
        v = _conv(x, _weights(mem, d, pe, ew_in), d)
    else:
        if d["cout"] != d["c_in"]:
            raise BinaryHPEError(f"engine model: layer {lid}: pooling with cout {d['cout']} != c_in {d['c_in']}")
        if mode == 2:
            lo = np.iinfo(np.int64).min
            v = None
            for _, _, xs in _taps(x, d, lo):
                v = xs.copy() if v is None else np.maximum(v, xs)
        else:
            v = None
            for _, _, xs in _taps(x, d, 0):
                v = xs.astype(np.int64) if v is None else v + xs
    v = v.astype(np.int64)
    _check_val(v, "the accumulator", lid)
    ng, cout = d["ng"], d["cout"]
    consts = None
    if d["n_cols"]:
        consts = mem.words(d["c_addr"], d["n_cols"] * ng * pe // 2).view("<i4").astype(np.int64)
        consts = consts.reshape(d["n_cols"], ng * pe)[:, :cout]
    b = None
    if d["has_b"]:
        b = mem.read_elems(d["b_addr"], d["oh"], d["ow"], d["b_pix_stride"], d["cw_b"], cout, ew_b,
                           bool(d["b_signed"]))
    if d["ops"]:
        v = _epilogue(v, d, consts, b, lid)
    nbytes = min(d["n_ct"] * d["ct"] * ew_out // 8, d["cw_out"] * 8)
    mem.write_elems(d["out_addr"], v, d["out_pix_stride"], d["cw_out"], nbytes, ew_out, d["out_row_stride"])


def decode_program(image, desc_addr: int) -> list[dict]:
    """The descriptors from ``desc_addr`` up to and including the one with ``last`` set."""
    out = []
    a = desc_addr
    while True:
        if a + D.DESC_BYTES > len(image):
            raise BinaryHPEError(f"engine model: descriptor list at {desc_addr:#x} runs past the image without 'last'")
        d = D.decode(bytes(image[a:a + D.DESC_BYTES]))
        out.append(d)
        if d["last"]:
            return out
        a += D.DESC_BYTES
        if len(out) > MAX_DESCRIPTORS:
            raise BinaryHPEError("engine model: no descriptor with 'last' set")


def run_model(program, image, upto: int | None = None) -> bytearray:
    """Execute the program's descriptors on a copy of ``image``; returns the image after. ``upto``: stop after
    that many descriptors (debugging)."""
    mem = _Mem(image)
    descs = decode_program(mem.buf, program.desc_addr)
    for d in descs[:upto]:
        run_descriptor(mem, d, program.cfg.pe)
    return mem.buf
