"""The engine's compiler side (compile/engine): descriptors, program, DRAM image, golden model, cycle model.

(1) the descriptor encoding: a round trip, and every field's position against docs/engine.md's table and the
    packed struct of hw/rtl/engine/bhpe_eng_pkg.sv (parsed here, not copied);
(2) run_model (the golden model: it executes the descriptors on the DRAM image) equals the exact QONNX
    reference (compile.reference.exact_reference, float64) on seeded random frames and the worst-case frames
    of compile.worstcase, for the tiny BiDRN, the BNN-PYNQ-style MLPs, random BiDRB configurations (the fuzz's
    nets) and one stage of the face BiDRN-18 at 192x192;
(3) what the engine cannot run is refused with one error naming the layer;
(4) the cycle model's totals are consistent (DRAM bytes >= weights + input + output, cycles >= compute).
"""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

from binaryhpe import BinaryHPEError
from binaryhpe.compile.engine import EngineConfig, compile_program, cycle_model, roofline, run_model
from binaryhpe.compile.engine import descriptor as D
from binaryhpe.compile.lower import load_qonnx, lower
from binaryhpe.compile.passes import run_passes, standard_passes
from binaryhpe.compile.reference import exact_reference, hw_input, nchw_to_hwc

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _graph(path):
    mw = load_qonnx(path)
    return run_passes(lower(mw), standard_passes(), stop="forks"), mw


def _input_shape(mw):
    return [d.dim_value for d in mw.graph.input[0].type.tensor_type.shape.dim]


def _check_frames(g, mw, frames, cfg=None, reuse=True) -> int:
    """run_model's output vs the exact reference on every frame; returns the frames checked."""
    p = compile_program(g, cfg or EngineConfig(), reuse=reuse)
    out_fmt = g.tensors[g.output].fmt
    n = 0
    for name, x in frames.items():
        run = exact_reference(mw, x)
        assert run.float64_exact, name
        q = hw_input(g, run.context)
        img = run_model(p, p.write_input(p.fresh_image(), q))
        got = out_fmt.to_real(p.read_output(img))
        ref = nchw_to_hwc(run.output)
        bad = int(np.count_nonzero(got != ref))
        assert bad == 0, f"frame {name}: {bad} of {ref.size} output elements differ from the exact reference"
        n += 1
    return n


def _frames(g, mw, seed=0, random=2):
    from binaryhpe.compile.worstcase import worst_case_frames

    shape = _input_shape(mw)
    rng = np.random.default_rng(seed)
    fr = {f"random{i}": rng.uniform(-1, 1, shape).astype(np.float32) for i in range(random)}
    fr.update({k: np.asarray(v, dtype=np.float32) for k, v in worst_case_frames(g, seed=seed).items()})
    return fr


# ------------------------------------------------------------------------------------------------ descriptors
def test_descriptor_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(50):
        hdr = {k: int(rng.integers(0, 1 << min(w, 62))) for k, (_, _, w) in D.HEADER_FIELDS.items() if k != "n_ops"}
        ops = []
        for _ in range(int(rng.integers(0, D.MAX_OPS + 1))):
            ops.append({k: int(rng.integers(-(1 << (w - 1)), 1 << (w - 1))) if sg else int(rng.integers(0, 1 << w))
                        for k, (_, w, sg) in D.OP_FIELDS.items()})
        blob = D.encode(hdr, ops)
        assert len(blob) == 256
        d = D.decode(blob)
        assert d.pop("ops") == ops
        assert d.pop("n_ops") == len(ops)
        assert d == hdr
        words = D.words(blob)
        assert words[12:16] == [0, 0, 0, 0] and all(w == 0 for w in words[16 + len(ops):])


def test_descriptor_field_overflow_refused():
    with pytest.raises(BinaryHPEError, match="kh"):
        D.encode({"kh": 256}, [])
    with pytest.raises(BinaryHPEError, match="shift"):
        D.encode({}, [{"opcode": 0, "shift": 128}])


def _table_fields():
    """(word, lo, width) of every header field and (lo, width) of every op field, parsed from docs/engine.md."""
    text = (ROOT / "docs" / "engine.md").read_text()
    hdr = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*(\d+(?:\.\.\d+)?)\s*\|\s*([\d:, ]+)\s*\|\s*(.*)\|\s*$", line)
        if not m:
            continue
        words = m.group(1)
        names = re.findall(r"`(\w+)`", m.group(3))
        bits = [b.strip() for b in m.group(2).split(",")]
        if ".." in words:  # word 4..8: one 64-bit address a word
            w0, w1 = (int(v) for v in words.split(".."))
            for i, n in enumerate(names):
                hdr[n] = (w0 + i, 0, 64)
            assert len(names) == w1 - w0 + 1
            continue
        assert len(bits) == len(names), line
        for n, b in zip(names, bits):
            hi, lo = (int(v) for v in b.split(":")) if ":" in b else (int(b), int(b))
            hdr[n] = (int(words), lo, hi - lo + 1)
    ops = {}
    m = re.search(r"Op word: (.*?)\n\n", text, re.S)
    for n, hi, lo in re.findall(r"`(\w+)` (\d+):(\d+)", m.group(1)):
        ops[n] = (int(lo), int(hi) - int(lo) + 1)
    for n, b in re.findall(r"`(\w+)` (\d+)(?![\d:])", m.group(1)):
        ops.setdefault(n, (int(b), 1))
    return hdr, ops


def test_descriptor_fields_match_the_doc_table():
    hdr, ops = _table_fields()
    assert hdr == D.HEADER_FIELDS
    assert ops == {k: (lo, w) for k, (lo, w, _) in D.OP_FIELDS.items()}


def _sv_struct(text: str, name: str) -> list[tuple[str, int]]:
    """(field, width) of a packed struct, most significant first."""
    body = dict((n, b) for b, n in re.findall(r"typedef struct packed \{([^{}]*)\}\s*(\w+);", text))[name]
    out = []
    for line in body.splitlines():
        line = line.split("//")[0].strip()
        m = re.match(r"logic\s*(?:\[(\d+):(\d+)\])?\s*(\w+);", line)
        if m:
            w = int(m.group(1)) - int(m.group(2)) + 1 if m.group(1) else 1
            out.append((m.group(3), w))
    return out


def test_descriptor_fields_match_the_rtl_struct():
    text = (ROOT / "hw" / "rtl" / "engine" / "bhpe_eng_pkg.sv").read_text()
    fields = _sv_struct(text, "hdr_t")
    assert sum(w for _, w in fields) == D.HEADER_WORDS * 64
    pos = D.HEADER_WORDS * 64
    got = {}
    for n, w in fields:  # most significant first
        pos -= w
        if not n.startswith("rsvd"):
            got[n] = (pos // 64, pos % 64, w)
    assert got == D.HEADER_FIELDS
    pos, got = 64, {}
    for n, w in _sv_struct(text, "op_t"):
        pos -= w
        if not n.startswith("rsvd"):
            got[n] = (pos, w)
    assert got == {k: (lo, w) for k, (lo, w, _) in D.OP_FIELDS.items()}


# ------------------------------------------------------------------------------------------------ networks
@pytest.fixture(scope="module")
def tiny(tiny_qonnx):
    return _graph(tiny_qonnx)


def test_tiny_bidrn_exact(tiny):
    g, mw = tiny
    assert _check_frames(g, mw, _frames(g, mw)) >= 5


def test_tiny_bidrn_exact_without_reuse(tiny):
    g, mw = tiny
    rng = np.random.default_rng(3)
    assert _check_frames(g, mw, {"r": rng.uniform(-1, 1, _input_shape(mw)).astype(np.float32)}, reuse=False) == 1


def test_tiny_bidrn_program_structure(tiny):
    g, _ = tiny
    p = compile_program(g, EngineConfig())
    covered = [n for op in p.ops for n in op.layers]
    assert len(covered) == len(set(covered))
    kinds = {type(lay).__name__ for lay in g.layers}
    # every compute layer is covered by exactly one op (views and window generators fold into the ops)
    for lay in g.layers:
        if type(lay).__name__ not in ("Concat", "Split", "SlidingWindow"):
            assert lay.name in covered, lay.name
    assert {"Concat", "Split"} <= kinds
    # descriptors: consecutive, layer_id = index, exactly the last one has 'last'
    for i in range(len(p.ops)):
        d = D.decode(p.image[p.desc_addr + 256 * i: p.desc_addr + 256 * (i + 1)])
        assert d["layer_id"] == i and d["last"] == (i == len(p.ops) - 1)
        assert d["in_addr"] % 8 == 0 and d["out_addr"] % 8 == 0 and d["w_addr"] % 8 == 0
    # memory reuse never lets two live tensors overlap
    bufs = list(p.buffers.values())
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            if not (a.last < b.first or b.last < a.first):
                assert a.addr + a.nbytes <= b.addr or b.addr + b.nbytes <= a.addr, (a.name, b.name)
    assert p.layout["activation_bytes"] <= p.layout["activation_bytes_without_reuse"]
