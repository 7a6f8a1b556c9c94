"""The engine descriptor: 32 little-endian 64-bit words (256 bytes), encoded and decoded bit for bit.

The layout is docs/engine.md's "Descriptor format" table and the packed structs ``hdr_t`` / ``op_t`` of
``hw/rtl/engine/bhpe_eng_pkg.sv``; this module is the compiler's copy of both (``HEADER_FIELDS``,
``OP_FIELDS``): words 0..12 the header, 13..15 zero, 16..31 the epilogue op words (unused ones zero).
tests/test_engine_compile.py checks the positions against the table and the SystemVerilog struct.
"""

from __future__ import annotations

import struct

from binaryhpe import BinaryHPEError

DESC_WORDS = 32
DESC_BYTES = DESC_WORDS * 8
HEADER_WORDS = 13
OP_WORD0 = 16
MAX_OPS = 16
MAX_COLS = 8
#: epilogue value width and accumulator width of the engine (bhpe_eng_pkg ValW, AccW)
VAL_W = 40
ACC_W = 32
CONST_W = 32

MODES = {"xnor": 0, "mac": 1, "pool_max": 2, "pool_sum": 3}
MODE_NAMES = {v: k for k, v in MODES.items()}
OPCODES = {"Requant": 0, "MulShift": 1, "AddConst": 2, "Prelu": 3, "JoinAdd": 4, "Sign": 5, "Threshold": 6}
OPCODE_NAMES = {v: k for k, v in OPCODES.items()}

#: header fields: name -> (word, low bit, width)
HEADER_FIELDS: dict[str, tuple[int, int, int]] = {
    "mode": (0, 0, 4), "last": (0, 4, 1), "has_b": (0, 5, 1), "in_signed": (0, 6, 1), "b_signed": (0, 7, 1),
    "lg_ew_in": (0, 8, 3), "lg_ew_out": (0, 11, 3), "lg_ew_b": (0, 14, 3), "n_ops": (0, 17, 5),
    "layer_id": (0, 32, 32),
    "h": (1, 0, 16), "w": (1, 16, 16), "c_in": (1, 32, 16), "in_pix_stride": (1, 48, 16),
    "kh": (2, 0, 8), "kw": (2, 8, 8), "stride": (2, 16, 8), "pad": (2, 24, 8), "cw_in": (2, 32, 16),
    "cw_b": (2, 48, 16),
    "oh": (3, 0, 16), "ow": (3, 16, 16), "cout": (3, 32, 16), "out_pix_stride": (3, 48, 16),
    "in_addr": (4, 0, 64), "out_addr": (5, 0, 64), "b_addr": (6, 0, 64), "w_addr": (7, 0, 64),
    "c_addr": (8, 0, 64),
    "ct": (9, 0, 16), "n_ct": (9, 16, 16), "owt": (9, 32, 16), "n_strips": (9, 48, 16),
    "b_pix_stride": (10, 0, 16), "cw_out": (10, 16, 16), "n_cols": (10, 32, 16), "iwt": (10, 48, 16),
    "ng": (11, 0, 16), "wtile_words": (11, 16, 16), "slot_words": (11, 32, 16), "r": (11, 48, 16),
    "pad_x": (12, 0, 8), "out_row_stride": (12, 32, 32),
}
#: op word fields: name -> (low bit, width, signed)
OP_FIELDS: dict[str, tuple[int, int, bool]] = {
    "opcode": (0, 4, False), "out_w": (4, 6, False), "shift": (10, 8, True), "relu": (18, 1, False),
    "shift_a": (19, 8, False), "shift_b": (27, 8, False), "col": (35, 4, False),
}


def _put(word: int, lo: int, width: int, value: int, what: str, signed: bool = False) -> int:
    v = int(value)
    if signed:
        if not -(1 << (width - 1)) <= v < (1 << (width - 1)):
            raise BinaryHPEError(f"descriptor field {what} = {v} does not fit {width} signed bits")
        v &= (1 << width) - 1
    elif not 0 <= v < (1 << width):
        raise BinaryHPEError(f"descriptor field {what} = {v} does not fit {width} bits")
    return word | (v << lo)


def _get(word: int, lo: int, width: int, signed: bool = False) -> int:
    v = (word >> lo) & ((1 << width) - 1)
    if signed and v >> (width - 1):
        v -= 1 << width
    return v


def encode(header: dict, ops: list[dict]) -> bytes:
    """256 bytes from a header dict (every name of ``HEADER_FIELDS``; missing ones are 0) and up to 16 op
    dicts (names of ``OP_FIELDS``; ``opcode`` may be a name). ``n_ops`` is set from ``len(ops)``."""
    unknown = set(header) - set(HEADER_FIELDS)
    if unknown:
        raise BinaryHPEError(f"descriptor: unknown header field(s) {sorted(unknown)}")
    if len(ops) > MAX_OPS:
        raise BinaryHPEError(f"descriptor: {len(ops)} epilogue ops, at most {MAX_OPS}")
    words = [0] * DESC_WORDS
    hdr = dict(header)
    hdr["n_ops"] = len(ops)
    for name, (wi, lo, width) in HEADER_FIELDS.items():
        words[wi] = _put(words[wi], lo, width, hdr.get(name, 0), name)
    for i, op in enumerate(ops):
        unknown = set(op) - set(OP_FIELDS)
        if unknown:
            raise BinaryHPEError(f"descriptor: unknown op field(s) {sorted(unknown)}")
        o = dict(op)
        if isinstance(o.get("opcode"), str):
            o["opcode"] = OPCODES[o["opcode"]]
        w = 0
        for name, (lo, width, signed) in OP_FIELDS.items():
            w = _put(w, lo, width, o.get(name, 0), f"op{i}.{name}", signed)
        words[OP_WORD0 + i] = w
    return struct.pack("<32Q", *words)


def decode(blob: bytes) -> dict:
    """The header fields and ``ops`` (a list of ``n_ops`` op dicts, ``opcode`` as a number) of 256 bytes."""
    if len(blob) < DESC_BYTES:
        raise BinaryHPEError(f"descriptor: {len(blob)} bytes, needs {DESC_BYTES}")
    words = struct.unpack("<32Q", bytes(blob[:DESC_BYTES]))
    d = {name: _get(words[wi], lo, width) for name, (wi, lo, width) in HEADER_FIELDS.items()}
    n = d["n_ops"]
    if n > MAX_OPS:
        raise BinaryHPEError(f"descriptor of layer {d['layer_id']}: n_ops = {n} > {MAX_OPS}")
    d["ops"] = [{name: _get(words[OP_WORD0 + i], lo, width, signed) for name, (lo, width, signed) in OP_FIELDS.items()}
                for i in range(n)]
    return d


def words(blob: bytes) -> list[int]:
    """The 32 words of a descriptor (for dumps)."""
    return list(struct.unpack("<32Q", bytes(blob[:DESC_BYTES])))
