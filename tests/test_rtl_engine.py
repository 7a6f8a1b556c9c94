"""The layer-sequential engine (hw/rtl/engine/bhpe_engine.sv) in Verilator with the C++ DRAM model
(sim/engine_harness.cpp, driven by sim/engine.py).

(a) The DRAM path: hand-written descriptor programs of copy layers (pool sum, K = 1, no epilogue op: output
    pixel = input pixel) whose expected DRAM follows from docs/engine.md's layout alone: column strips, channel-
    slice views (pixel strides wider than the pixel), output-channel tiles narrower than a pixel (byte strobes),
    rows longer than a 256-beat burst and across 4 KiB, chained layers; under random stalls on every AXI channel,
    lower bandwidth and longer latency. Every byte the program must not write is checked unchanged.
(b) Errors: a read or write outside the DRAM (SLVERR) and a bad descriptor set ERROR; a channel that stalls
    forever fails with the timeout message naming the layer, quickly.
(c) Whole network: the tiny BiDRN through compile_program -> DRAM image -> run_engine under random stalls equals the
    exact reference of its QONNX graph and the compiler's golden model (run_model); a corrupted DRAM read is seen as
    a mismatch; the face BiDRN-18's stem and first stage at 192x192 (a paper-scale encoder) exact; weight tiles
    double-buffered (a program compiled for a small weight buffer) exact.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

from binaryhpe import BinaryHPEError
from binaryhpe.compile.engine import descriptor as D
from binaryhpe.sim.engine import DEFAULT_PARAMS, build_engine, run_engine

PE = DEFAULT_PARAMS["PE"]


@pytest.fixture(scope="module")
def exe():
    root = pathlib.Path(os.environ.get("BINARYHPE_SIM_BUILD", pathlib.Path.cwd() / "sim_build"))
    return build_engine({}, root / "engine", verbose=False)


# ---- copy-layer programs ----------------------------------------------------------------------------------
def copy_layer(lid, *, h, w, c, in_addr, in_stride, out_addr, out_stride, owt, ct=None, last=False):
    """Descriptor of a copy of an (h, w, c) tensor of 8-bit elements (pool sum, 1x1, no op)."""
    cw = -(-c * 8 // 64)
    ng = -(-c // PE)
    ct = ct or ng * PE
    assert ct % PE == 0
    hdr = dict(mode=D.MODES["pool_sum"], last=int(last), in_signed=1, lg_ew_in=3, lg_ew_out=3, layer_id=lid,
               h=h, w=w, c_in=c, in_pix_stride=in_stride, kh=1, kw=1, stride=1, pad=0, cw_in=cw,
               oh=h, ow=w, cout=c, out_pix_stride=out_stride, in_addr=in_addr, out_addr=out_addr,
               ct=ct, n_ct=-(-ng * PE // ct), owt=owt, n_strips=-(-w // owt), cw_out=cw, iwt=owt, ng=ng,
               slot_words=owt * cw, r=2)
    return D.encode(hdr, [])


def tensor_bytes(img, addr, stride, h, w, c):
    a = np.frombuffer(bytes(img), np.uint8)
    idx = addr + (np.arange(h * w)[:, None] * stride * 8 + np.arange(c)[None, :])
    return a[idx]


# (h, w, c, in_stride words, out_stride words, owt, ct, input address (None: the previous layer's output), output
# address)
LAYERS = [
    (6, 10, 24, 5, 4, 4, None, 0x1008, 0x9000),   # input and output views, 3 strips (the last 2 wide): a burst a pixel
    (6, 10, 24, 4, 3, 10, None, None, 0xA000),    # one strip, whole pixels, contiguous output: one request a row
    (6, 10, 32, 4, 4, 3, 16, 0x3000, 0xB000),     # 2 tiles of 16 channels (16 of the pixel's 32 bytes each), 4 strips
    (3, 150, 16, 2, 2, 150, None, 0x6000, 0xD000 - 8 * 37),  # rows of 300 words: bursts cut at 256 beats, 4 KiB
]


def copy_program(seed):
    rng = np.random.default_rng(seed)
    img = bytearray(rng.integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
    descs, checks, prev = b"", [], None
    for i, (h, w, c, si, so, owt, ct, ia, oa) in enumerate(LAYERS):
        ia = prev if ia is None else ia
        descs += copy_layer(i, h=h, w=w, c=c, in_addr=ia, in_stride=si, out_addr=oa, out_stride=so, owt=owt,
                            ct=ct, last=i == len(LAYERS) - 1)
        checks.append((ia, si, oa, so, h, w, c))
        prev = oa
    img[0:len(descs)] = descs
    return img, checks, LAYERS[0][7]


def expected_dram(img, checks):
    exp = bytearray(img)
    for (ia, si, oa, so, h, w, c) in checks:
        src = tensor_bytes(exp, ia, si, h, w, c)
        e = np.frombuffer(exp, np.uint8).copy()
        idx = oa + (np.arange(h * w)[:, None] * so * 8 + np.arange(c)[None, :])
        e[idx] = src
        exp = bytearray(e.tobytes())
    return bytes(exp)


@pytest.mark.parametrize("stall,latency,bpc,seed", [(0.0, 20, 1.0, 1), (0.3, 20, 1.0, 2), (0.6, 45, 0.5, 3)])
def test_copy_chain_exact_under_stalls(exe, stall, latency, bpc, seed):
    img, checks, _ = copy_program(seed)
    want = expected_dram(img, checks)
    r = run_engine(exe, img, 0, stall_prob=stall, latency=latency, beats_per_cycle=bpc, seed=seed,
                   max_cycles=200_000, verbose=False)
    got = np.frombuffer(r.dram, np.uint8)
    bad = np.nonzero(got != np.frombuffer(want, np.uint8))[0]
    assert bad.size == 0, f"{bad.size} bytes differ, first at {hex(int(bad[0]))}"
    assert [lid for lid, _ in r.layer_starts] == [0, 1, 2, 3]
    starts = [c for _, c in r.layer_starts]
    assert starts == sorted(starts) and 0 < starts[0] < r.cycles
    # every output byte crossed the bus once: the read and write traffic is what the layout says
    wrote = sum(h * w * c for (_, _, _, _, h, w, c) in checks)
    assert r.stats["dram_write_bytes"] >= wrote
    assert r.stats["dram_read_bytes"] >= wrote + 4 * 256


def test_copy_chain_cycles_do_not_depend_on_the_seed_without_stalls(exe):
    a = run_engine(exe, copy_program(5)[0], 0, seed=5, verbose=False)
    b = run_engine(exe, copy_program(6)[0], 0, seed=6, verbose=False)  # other data, other random reset
    assert a.cycles == b.cycles and a.layer_starts == b.layer_starts


# ---- errors -------------------------------------------------------------------------------------------------
def test_read_outside_dram_sets_error_1(exe):
    img, _, _ = copy_program(7)
    bad = bytearray(img)
    bad[0:256] = copy_layer(0, h=2, w=4, c=16, in_addr=0x100000, in_stride=2, out_addr=0x9000, out_stride=2, owt=4,
                            last=True)
    with pytest.raises(BinaryHPEError, match=r"ENGINE ERROR 1 \(AXI read response not OKAY\) at layer 0"):
        run_engine(exe, bad, 0, max_cycles=100_000, verbose=False)


def test_write_outside_dram_sets_error_2(exe):
    img, _, _ = copy_program(8)
    bad = bytearray(img)
    bad[0:256] = copy_layer(5, h=2, w=4, c=16, in_addr=0x1000, in_stride=2, out_addr=0x200000, out_stride=2, owt=4,
                            last=True)
    with pytest.raises(BinaryHPEError, match=r"ENGINE ERROR 2 \(AXI write response not OKAY\) at layer 5"):
        run_engine(exe, bad, 0, max_cycles=100_000, verbose=False)


def test_bad_descriptor_sets_error_3(exe):
    img, _, _ = copy_program(9)
    bad = bytearray(img)
    bad[256] = (bad[256] & 0xF0) | 0x0F  # descriptor 1: mode 15
    with pytest.raises(BinaryHPEError, match=r"ENGINE ERROR 3 \(bad descriptor\)"):
        run_engine(exe, bad, 0, max_cycles=100_000, verbose=False)


@pytest.mark.parametrize("field,value", [("slot_words", 2100), ("wtile_words", 1025), ("n_cols", 513),
                                         ("cw_out", 300)])
def test_descriptor_beyond_the_buffers_sets_error_3(exe, field, value):
    # r * slot_words > LbDepth 4096, wtile_words > WbDepth 1024, n_cols * ng > CbDepth 512, owt * cw_out > ObDepth/2
    img, _, _ = copy_program(13)
    d = D.decode(img[256:512])
    d.pop("ops")
    d[field] = value
    bad = bytearray(img)
    bad[256:512] = D.encode(d, [])
    with pytest.raises(BinaryHPEError, match=r"ENGINE ERROR 3 \(bad descriptor\)"):
        run_engine(exe, bad, 0, max_cycles=100_000, verbose=False)


@pytest.mark.parametrize("channel", ["ar", "r", "aw", "w", "b"])
def test_stall_forever_times_out_naming_the_layer(exe, channel):
    img, _, _ = copy_program(10)
    clean = run_engine(exe, img, 0, verbose=False).cycles
    with pytest.raises(BinaryHPEError, match=r"TIMEOUT: .*engine hung at layer \d+ .*stalled forever: " + channel):
        run_engine(exe, img, 0, fault={"kind": "stall_forever", "channel": channel}, max_cycles=2 * clean,
                   verbose=False)


def test_corrupt_read_changes_exactly_the_word_read(exe):
    img, checks, first_in = copy_program(11)
    want = np.frombuffer(expected_dram(img, checks), np.uint8)
    target = first_in + (2 * 10 + 3) * 5 * 8  # input pixel (2, 3) of the first layer, its first word
    r = run_engine(exe, img, 0, fault={"kind": "corrupt_read", "addr": target}, verbose=False)
    got = np.frombuffer(r.dram, np.uint8)
    bad = np.nonzero(got != want)[0]
    assert bad.size > 0
    # the first layer's output pixel (2, 3): its first 8 bytes inverted
    o = checks[0][2] + (2 * 10 + 3) * 4 * 8
    assert np.array_equal(got[o:o + 8], want[o:o + 8] ^ 0xFF)


# ---- whole network ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_program(tiny_qonnx):
    from binaryhpe.compile.engine import EngineConfig, compile_program
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import run_passes, standard_passes

    mw = load_qonnx(tiny_qonnx)
    g = lower(mw, source=tiny_qonnx.name)
    run_passes(g, standard_passes(), stop="forks")
    cfg = EngineConfig()
    return g, mw, cfg, compile_program(g, cfg)


@pytest.fixture(scope="module")
def tiny_frames(tiny_program):
    from binaryhpe.compile.reference import check_frames
    from binaryhpe.compile.worstcase import simulation_frames

    g, mw, _, _ = tiny_program
    named = simulation_frames(g, seed=0, random=1)
    chk = check_frames(g, mw, list(named.values()))
    assert not chk["mismatching_frames"]
    return list(zip(chk["inputs"], chk["outputs"]))


def test_tiny_bidrn_exact_under_stalls(tiny_program, tiny_frames):
    from binaryhpe.compile.engine import run_model

    g, _, cfg, prog = tiny_program
    exe = build_engine(cfg.rtl_params(), pathlib.Path(os.environ.get("BINARYHPE_SIM_BUILD", "sim_build")) / "engine",
                       verbose=False)
    for i, (q, ref) in enumerate(tiny_frames[:2]):
        img = prog.write_input(bytearray(prog.image), q)
        model = prog.read_output(run_model(prog, bytearray(img)))
        assert np.array_equal(model, ref)
        stall = 0.0 if i == 0 else 0.25
        r = run_engine(exe, img, prog.desc_addr, stall_prob=stall, seed=i + 1, latency=cfg.dram_latency,
                       beats_per_cycle=cfg.dram_beats_per_cycle, verbose=False)
        y = prog.read_output(r.dram)
        assert np.array_equal(y, ref), f"frame {i} (stall {stall}): {int(np.count_nonzero(y != ref))} integers differ"
        assert [lid for lid, _ in r.layer_starts] == list(range(len(prog.ops)))


def test_tiny_bidrn_corrupt_weight_read_is_a_mismatch(tiny_program, tiny_frames):
    _, _, cfg, prog = tiny_program
    exe = build_engine(cfg.rtl_params(), pathlib.Path(os.environ.get("BINARYHPE_SIM_BUILD", "sim_build")) / "engine",
                       verbose=False)
    q, ref = tiny_frames[0]
    img = prog.write_input(bytearray(prog.image), q)
    head = [op.header for op in prog.ops if op.header["mode"] in (D.MODES["xnor"], D.MODES["mac"])][-1]
    # the first weight word of the last convolution (lane 0 = output channel 0, its first input word) read inverted
    r = run_engine(exe, img, prog.desc_addr, fault={"kind": "corrupt_read", "addr": head["w_addr"]},
                   latency=cfg.dram_latency, beats_per_cycle=cfg.dram_beats_per_cycle, verbose=False)
    y = prog.read_output(r.dram)
    assert np.count_nonzero(y != ref) > 0


def test_face_bidrn18_stem_and_first_stage_192_exact(tmp_path_factory):
    """A paper-scale encoder on the engine: the face BiDRN-18's stem (7x7/2 conv, 3x3/2 max pool) and its first
    stage (64 channels at 48x48) at the paper input size 192x192, under random stalls, equal to the exact reference
    of the QONNX graph (several million cycles: the file's longest test)."""
    import dataclasses

    from binaryhpe.compile.engine import EngineConfig, compile_program
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import run_passes, standard_passes
    from binaryhpe.compile.reference import check_frames
    from binaryhpe.compile.worstcase import simulation_frames
    from binaryhpe.train.bidrn import BiDRN, example_input, randomize
    from binaryhpe.train.config import bidrn_config
    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.hardware import to_hardware

    face = bidrn_config(18, (192, 192))
    c = dataclasses.replace(face, stages=face.stages[:1])
    model = randomize(BiDRN(c), seed=0).eval()
    to_hardware(model)
    path = export_qonnx(model, example_input(c, seed=0), tmp_path_factory.mktemp("face") / "face_stage1.onnx",
                        verbose=False)
    mw = load_qonnx(path)
    g = lower(mw, source=path.name)
    run_passes(g, standard_passes(), stop="forks")
    assert g.tensors[g.input].shape == (192, 192, 3)
    cfg = EngineConfig()
    prog = compile_program(g, cfg)
    chk = check_frames(g, mw, list(simulation_frames(g, seed=0, random=1).values())[:1])
    assert not chk["mismatching_frames"]
    q, ref = chk["inputs"][0], chk["outputs"][0]
    exe = build_engine(cfg.rtl_params(), pathlib.Path(os.environ.get("BINARYHPE_SIM_BUILD", "sim_build")) / "engine",
                       verbose=False)
    r = run_engine(exe, prog.write_input(bytearray(prog.image), q), prog.desc_addr, stall_prob=0.1, seed=3,
                   latency=cfg.dram_latency, beats_per_cycle=cfg.dram_beats_per_cycle, verbose=False)
    y = prog.read_output(r.dram)
    assert y.shape == ref.shape and np.array_equal(y, ref), f"{int(np.count_nonzero(y != ref))} integers differ"
    assert [lid for lid, _ in r.layer_starts] == list(range(len(prog.ops)))


def test_weight_tiles_double_buffered_exact(tmp_path_factory):
    """Weight double buffering: the face BiDRN-18's stem and first stage at 64x64, compiled for a 64-word weight
    buffer (the stem's 64 channels in 4 tiles of 49 words) and run on the default engine (WbDepth 1024): every tile
    fits half the buffer, so tile t + 1 loads into the other half while tile t computes; exact under stalls."""
    import dataclasses

    from binaryhpe.compile.engine import EngineConfig, compile_program
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import run_passes, standard_passes
    from binaryhpe.compile.reference import check_frames
    from binaryhpe.compile.worstcase import simulation_frames
    from binaryhpe.train.bidrn import BiDRN, example_input, randomize
    from binaryhpe.train.config import bidrn_config
    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.hardware import to_hardware

    face = bidrn_config(18, (64, 64))
    c = dataclasses.replace(face, stages=face.stages[:1])
    model = randomize(BiDRN(c), seed=1).eval()
    to_hardware(model)
    path = export_qonnx(model, example_input(c, seed=1), tmp_path_factory.mktemp("face64") / "face64.onnx",
                        verbose=False)
    mw = load_qonnx(path)
    g = lower(mw, source=path.name)
    run_passes(g, standard_passes(), stop="forks")
    cfg = EngineConfig()
    prog = compile_program(g, dataclasses.replace(cfg, wb_depth=64))
    tiled = [op.header for op in prog.ops if op.header["n_ct"] > 1]
    assert tiled and all(h["wtile_words"] <= cfg.wb_depth // 2 for h in tiled)
    chk = check_frames(g, mw, list(simulation_frames(g, seed=1, random=1).values())[:1])
    q, ref = chk["inputs"][0], chk["outputs"][0]
    exe = build_engine(cfg.rtl_params(), pathlib.Path(os.environ.get("BINARYHPE_SIM_BUILD", "sim_build")) / "engine",
                       verbose=False)
    for stall, seed in ((0.0, 1), (0.3, 2)):
        r = run_engine(exe, prog.write_input(bytearray(prog.image), q), prog.desc_addr, stall_prob=stall, seed=seed,
                       verbose=False)
        y = prog.read_output(r.dram)
        assert np.array_equal(y, ref), f"stall {stall}: {int(np.count_nonzero(y != ref))} integers differ"


def test_hang_is_seen_by_the_idle_limit_without_a_cycle_budget(exe):
    img, _, _ = copy_program(12)
    with pytest.raises(BinaryHPEError, match=r"TIMEOUT: no AXI handshake for --idle-limit cycles .*engine hung at layer"):
        run_engine(exe, img, 0, fault={"kind": "stall_forever", "channel": "r"}, idle_limit=5000, verbose=False)


# ---- the BNN-PYNQ-style nets and random BiDRB configurations (the nets of tests/test_engine_compile.py) ----------
def _rtl_exact(g, mw, frames, stall, seed):
    """Every frame through the engine RTL under stalls == the exact reference (and the golden model)."""
    from binaryhpe.compile.engine import EngineConfig, compile_program, run_model
    from binaryhpe.compile.reference import check_frames

    cfg = EngineConfig()
    prog = compile_program(g, cfg)
    chk = check_frames(g, mw, list(frames))
    assert not chk["mismatching_frames"]
    exe = build_engine(cfg.rtl_params(), pathlib.Path(os.environ.get("BINARYHPE_SIM_BUILD", "sim_build")) / "engine",
                       verbose=False)
    for i, (q, ref) in enumerate(zip(chk["inputs"], chk["outputs"])):
        img = prog.write_input(bytearray(prog.image), q)
        r = run_engine(exe, img, prog.desc_addr, stall_prob=stall, seed=seed + i, latency=cfg.dram_latency,
                       beats_per_cycle=cfg.dram_beats_per_cycle, verbose=False)
        y = prog.read_output(r.dram)
        assert np.array_equal(y, ref), f"frame {i}: {int(np.count_nonzero(y != ref))} integers differ"
        assert r.dram == bytes(run_model(prog, img))  # every tensor, not only the output
    return len(chk["inputs"])


@pytest.mark.parametrize("name", ["fc_bin", "fc8_bias", "fc_bin_rect", "cnv8", "cnv_bin_pad"])
def test_bnn_pynq_nets_exact_under_stalls(name, tmp_path):
    from test_engine_compile import _bnn

    g, mw, xs = _bnn(name, tmp_path)
    assert _rtl_exact(g, mw, list(xs.values())[:2], stall=0.3, seed=5) == 2


@pytest.mark.parametrize("idx", range(4))
def test_bidrb_configurations_exact_under_stalls(idx, tmp_path):
    from test_engine_compile import _fuzz_configs, _fuzz_graph

    g, mw, fr = _fuzz_graph(_fuzz_configs()[idx], tmp_path)
    assert _rtl_exact(g, mw, list(fr.values())[:2], stall=0.3, seed=11 + idx) == 2
