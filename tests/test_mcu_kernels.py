"""Microcontroller backend, issue 20: the kernels (gathered windows, straight-line XNOR-popcount and SMLAD dot
products, Epilogues fused into the MVU's output loop, the three popcount implementations), RAM banks (placement,
overflow, the part's linker script) and tiled execution (band buffers, halos, the planner's choice).

Every C output integer is compared with ``HwGraph.execute`` on the host; the linker script is checked with
arm-none-eabi-gcc / nm where the cross toolchain is installed (CI's set-up has it).
"""

import json
import subprocess

import numpy as np
import pytest

from binaryhpe import BinaryHPEError
from binaryhpe.compile import cbackend, mcu_build, mcu_targets, memplan
from binaryhpe.compile.graph import Fmt
from binaryhpe.compile.kinds.elementwise import Requant, Sign
from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
from binaryhpe.compile.kinds.swg import SlidingWindow
from binaryhpe.compile.passes import FuseEpilogue
from binaryhpe.sim import mcu
from test_mcu import _Chain, _frames, _every_kind_graph

BIP = Fmt(1, 0, False, True)
#: the popcount implementations of model.c (BHPE_POPCOUNT_IMPL): SWAR, __builtin_popcount, byte table
POPCOUNTS = (["-DBHPE_POPCOUNT_IMPL=1"], ["-DBHPE_POPCOUNT_IMPL=2"], ["-DBHPE_POPCOUNT_IMPL=3"])


def _host(g, frames, d, extra=None, **kw):
    cm = cbackend.generate(g, **kw)
    c = cbackend.write(cm, d / "c")
    exe = mcu.host_build(c, d / "host_model", extra=extra)
    got = mcu.host_run(exe, frames, g.tensors[g.output].shape)
    refs = [g.execute(x)[g.output] for x in frames]
    return sum(int(np.count_nonzero(a != b)) for a, b in zip(got, refs)), cm, refs


def _binary_conv(c, cout, k, pad, fuse, seed, hw=(5, 6), s=1):
    """bipolar input (H, W, c) -> k x k binary conv -> (with ``fuse``) Requant(relu) fused into it."""
    rng = np.random.default_rng(seed)
    h, w = hw
    ch = _Chain((h, w, c), BIP)
    sw = ch.add(SlidingWindow, ["x"], [("win", (1, 1, k * k * c), BIP, True)], h=h, w=w, c=c, k=k, s=s, pad=pad,
                elem_w=1, signed=False)
    ch.g.tensors["win"].shape = (sw.oh, sw.ow, k * k * c)
    acc_w = int(np.ceil(np.log2(k * k * c + 1))) + 1
    ch.add(XnorMvu, ["win"], [("acc", (sw.oh, sw.ow, cout), Fmt(acc_w, 0))], n=k * k * c, cout=cout,
           weights=rng.choice([-1, 1], size=(cout, k * k * c)), pixels=sw.oh * sw.ow)
    ch.g.output = "acc"
    if fuse:
        ch.add(Requant, ["acc"], [("rq", (sw.oh, sw.ow, cout), Fmt(6, 0))], c=cout, pixels=sw.oh * sw.ow,
               in_w=acc_w, out_w=6, shift=2, relu=True)
        ch.g.output = "rq"
        FuseEpilogue().apply(ch.g)
    return ch.g


@pytest.mark.parametrize("c, k, pad", [(320, 3, 1), (608, 3, 1), (13, 3, 1), (37, 1, 0), (96, 3, 0), (64, 1, 0)])
def test_binary_conv_dot_paths_bit_exact(c, k, pad, tmp_path):
    """Harley-Seal straight-line (90 words: 11 blocks of 8 and a pair), the 8-word block loop past
    cbackend.XDOT_UNROLL (171 words: 21 blocks and three words left: a pair and one), the dense layout (13
    channels a tap, padding corrections, three words through one carry-save adder), 1x1 read in place (two words),
    no padding (27 words); the all-0 / all-1 frames make every word disagree in all 32 bits (the largest sums)."""
    g = _binary_conv(c, 33, k, pad, fuse=True, seed=c)
    frames = _frames(g, seed=c)
    src = None
    for extra in POPCOUNTS:
        bad, cm, refs = _host(g, frames, tmp_path / extra[0][-1], extra=extra)
        assert bad == 0, extra
        src = (tmp_path / extra[0][-1] / "c" / "model.c").read_text()
    assert len({r.tobytes() for r in refs}) > 1
    assert len(cm.fused) == 1 and "acc" not in cm.storage  # the accumulator never reaches memory
    taps = k * k
    n = -(-taps * c // 32) if c < 32 and taps > 1 else taps * -(-c // 32)
    assert f"bhpe_xdot_{n}(" in src
    assert (f"for (int j = 0; j < {n // 8}; j++, xp += 8, wp += 8)" in src) == (n > cbackend.XDOT_UNROLL)
    assert ("t8 = BHPE_BYTESUM" in src) == (n >= 8)  # Harley-Seal from 8 words
    # the unfused graph (the accumulator is the output) gives the same integers
    g2 = _binary_conv(c, 33, k, pad, fuse=False, seed=c)
    bad, _, _ = _host(g2, frames, tmp_path / "unfused")
    assert bad == 0


def test_saturations_left_out_only_where_the_ranges_prove_it(tmp_path):
    """cbackend.op_ranges: a Requant (shift 2 to 6 signed bits, relu) after a 3x3 binary conv of 13 channels sees
    an accumulator of at most +-117, so it never clips and the C has no saturation; with 320 channels it clips
    and the saturation stays. The boundary is exact (+-128 >> 2 fits [-32, 31], -129 does not), and both
    networks give HwGraph.execute's integers on frames that reach the accumulator's extremes."""
    for c, clipped in ((13, False), (320, True)):
        g = _binary_conv(c, 33, 3, 1, fuse=True, seed=c)
        bad, cm, refs = _host(g, _frames(g, seed=c), tmp_path / str(c))
        assert bad == 0
        src = (tmp_path / str(c) / "c" / "model.c").read_text()
        assert (", 6, -32, 31)" in src) == clipped, c
        epi = next(iter(cm.fused.values()))
        assert cbackend.free_saturations(g, epi, next(lay for lay in g.layers if isinstance(lay, XnorMvu))) \
            == (0 if clipped else 1)
    rq = epi.ops[0]
    assert "y" in cbackend.op_ranges(rq, ([-128], [127]))[0]
    assert cbackend.op_ranges(rq, ([-128], [127]))[1] == ([0], [31])  # relu after the shift
    assert "y" not in cbackend.op_ranges(rq, ([-129], [127]))[0]
    assert "y" not in cbackend.op_ranges(rq, ([-128], [128]))[0]


@pytest.mark.parametrize("bits, c", [(8, 40), (8, 12), (16, 6), (16, 64), (8, 6)])
def test_packed_sign_a_word_at_a_time(bits, c, tmp_path):
    """A Sign into a bit-packed tensor from int8 (int16) elements runs four (two) channels a word (one multiply
    gathers the sign bits), over whole and partial output words; 6 int8 channels (not whole words) take the
    element loop. Random, minimum, maximum and zero frames: every bit equals HwGraph.execute."""
    h, w = 3, 5
    ch = _Chain((h, w, c), Fmt(bits, 0))
    ch.add(Sign, ["x"], [("s", (h, w, c), BIP)], c=c, pixels=h * w, in_w=bits)
    ch.g.output = "s"
    bad, cm, refs = _host(ch.g, _frames(ch.g, seed=c), tmp_path)
    assert bad == 0 and len({r.tobytes() for r in refs}) > 1
    src = (tmp_path / "c" / "model.c").read_text()
    word = c % (4 if bits == 8 else 2) == 0
    assert (("0x00204081u" if bits == 8 else "0x00008001u") in src) == word


def test_fixed_point_pairs_and_int32_path(tmp_path):
    """FxpMvu: 16-bit pairs (SMLAD or its portable form) with an odd window, and the int32 path for a 20-bit
    input (no 16-bit halves), both with zero padding and a fused Requant; one, two and four output channels a
    pass (7, 6, 8 and 4 channels); int8 windows read a word at a time (rows of 9 and 15 elements: two and three
    words and a tail, the border pixels gathered with zeros); also under ARM's __smlad / __sxtb16 via QEMU in
    test_mcu (the tiny BiDRN's stem)."""
    rng = np.random.default_rng(5)
    for in_w, w_w, c, cout in ((16, 10, 3, 7), (20, 6, 5, 7), (8, 8, 3, 8), (8, 7, 5, 6), (16, 9, 4, 4)):
        h, w = 4, 5
        ch = _Chain((h, w, c), Fmt(in_w, 0))
        sw = ch.add(SlidingWindow, ["x"], [("win", (h, w, 9 * c), Fmt(in_w, 0), True)], h=h, w=w, c=c, k=3, s=1,
                    pad=1, elem_w=in_w)
        n = 9 * c
        mvu = FxpMvu(name="fx", inputs=["win"], outputs=["acc"], n=n, cout=cout, in_w=in_w, w_w=w_w,
                     weights=rng.integers(-(1 << (w_w - 1)), 1 << (w_w - 1), size=(cout, n)), pixels=h * w)
        assert mvu.acc_w <= 32
        ch.g.layers.append(mvu)
        ch.t("acc", (h, w, cout), Fmt(mvu.acc_w, 0))
        ch.add(Requant, ["acc"], [("o", (h, w, cout), Fmt(16, 0))], c=cout, pixels=h * w, in_w=mvu.acc_w,
               out_w=16, shift=8)
        ch.g.output = "o"
        FuseEpilogue().apply(ch.g)
        del sw
        frames = _frames(ch.g, seed=in_w)
        d = tmp_path / f"{in_w}-{c}-{cout}"
        bad, cm, refs = _host(ch.g, frames, d)
        assert bad == 0 and len({r.tobytes() for r in refs}) > 1
        src = (d / "c" / "model.c").read_text()
        group = 4 if cout % 4 == 0 else 2 if cout % 2 == 0 else 1
        assert ("bhpe_fdot2_" in src) == (in_w <= 16 and group == 1)
        assert (f"bhpe_fdot2g{group}_" in src) == (in_w <= 16 and group > 1)
        assert ("= BHPE_SXTB16(v);" in src) == (in_w == 8)


def test_popcount_per_core_compiles(tmp_path):
    """model.c compiles warning-free for ARMv6-M (the byte-table popcount), and each core gets the
    implementation model.c's header picks."""
    g = _binary_conv(40, 9, 3, 1, fuse=True, seed=1)
    d = cbackend.write(cbackend.generate(g), tmp_path / "c")
    for cpu in ("cortex-m0", "cortex-m3", "cortex-m7", "cortex-m55"):
        mcu._run(["arm-none-eabi-gcc", "-mthumb", f"-mcpu={cpu}", "-std=c99", "-pedantic", "-Wall", "-Wextra",
                  "-Werror", "-O2", "-c", str(d / "model.c"), "-o", str(tmp_path / f"{cpu}.o")])
        r = mcu._run(["arm-none-eabi-gcc", "-mthumb", f"-mcpu={cpu}", "-std=c99", "-E", "-dM", "-I", str(d),
                      str(d / "model.c")])
        impl = [ln for ln in r.stdout.decode().splitlines() if ln.startswith("#define BHPE_POPCOUNT_IMPL ")]
        assert impl == ["#define BHPE_POPCOUNT_IMPL BHPE_POPCOUNT_" + ("TABLE" if cpu == "cortex-m0" else "SWAR")]


# ---------------------------------------------------------------------------------------------------------
# RAM banks


def test_banks_hot_buffers_fast_and_overflow():
    bufs = [memplan.Buffer("big_cold", 4000, 0, 3, heat=2), memplan.Buffer("hot", 800, 1, 2, heat=9),
            memplan.Buffer("warm", 900, 2, 3, heat=4), memplan.Buffer("early", 1000, 0, 0, heat=3)]
    banks = [memplan.Bank("tcm", 2048, 0), memplan.Bank("sram", 8192, 1)]
    p = memplan.plan(bufs, 4, banks)
    assert p.buffers["hot"].bank == "tcm" and p.buffers["big_cold"].bank == "sram"
    assert not p.overflow and p.peak == sum(p.bank_peak.values())
    for name, k in (("tcm", banks[0]), ("sram", banks[1])):
        assert p.bank_peak[name] <= k.bytes
    # everything fits the fast bank: one arena there, packed largest first
    q = memplan.plan([memplan.Buffer("a", 100, 0, 1, heat=1), memplan.Buffer("b", 100, 2, 3, heat=5)], 4, banks)
    assert {b.bank for b in q.buffers.values()} == {"tcm"} and q.peak == 100
    # nothing fits: reported, not silently placed
    r = memplan.plan([memplan.Buffer("x", 10000, 0, 1)], 2, banks)
    assert r.overflow == {"sram": 10000 - 8192}


def _bank_target(tmp_path, fast: int, slow: int):
    t = json.loads((mcu_targets.HERE / "stm32h7.json").read_text())
    t.update(name="banked", ram_banks=[{"name": "tcm", "bytes": fast, "wait_states": 0, "origin": "0x20000000"},
                                       {"name": "sram", "bytes": slow, "wait_states": 1, "origin": "0x24000000"}])
    p = tmp_path / "banked.json"
    p.write_text(json.dumps(t))
    return str(p)


def test_banks_build_exact_and_linker_script(tmp_path):
    """A target whose fast bank cannot hold the arena: buffers spread over both banks, the report gives bytes per
    bank, the C stays exact (host), and the generated linker script puts each bank's arena in its bank."""
    g, _ = _every_kind_graph(0)
    g.output = "fo"
    target = _bank_target(tmp_path, 3072, 65536)
    rep = mcu_build.build_mcu(g, tmp_path / "o", target, sim=False)
    banks = rep["ram_banks"]
    assert set(banks) == {"tcm", "sram"} and banks["tcm"]["bytes"] > 0 and banks["sram"]["bytes"] > 0
    assert banks["tcm"]["bytes"] + banks["tcm"]["reserved"] <= 3072
    assert banks["tcm"]["bytes"] + banks["sram"]["bytes"] == rep["arena_bytes"]
    c = tmp_path / "o" / "c"
    exe = mcu.host_build(c, tmp_path / "hm")
    frames = _frames(g, seed=3)
    got = mcu.host_run(exe, frames, g.tensors["fo"].shape)
    assert all(np.array_equal(a, g.execute(x)["fo"]) for a, x in zip(got, frames))
    ld = (c / "bhpe_banks.ld").read_text()
    assert "TCM (rw) : ORIGIN = 0x20000000, LENGTH = 3072" in ld and "*(.bss.bhpe.sram)" in ld
    # link it for a Cortex-M7 and check where each bank's arena lands (CI's set-up installs the Arm toolchain)
    (tmp_path / "main.c").write_text('#include "model.h"\nstatic bhpe_in_t i[BHPE_IN_SIZE];\n'
                                     "static bhpe_out_t o[BHPE_OUT_SIZE];\n"
                                     "void _start(void) { bhpe_model_run(i, o); for (;;) {} }\n")
    elf = tmp_path / "banked.elf"
    mcu._run(["arm-none-eabi-gcc", "-mthumb", "-mcpu=cortex-m7", "-O2", "-nostartfiles", "--specs=nosys.specs", "-T", str(c / "bhpe_banks.ld"),
              "-I", str(c), str(tmp_path / "main.c"), str(c / "model.c"), str(c / "weights.c"), "-o", str(elf)])
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True).stdout
    addr = {ln.split()[2]: int(ln.split()[0], 16) for ln in nm.splitlines() if len(ln.split()) == 3}
    assert 0x20000000 <= addr["bhpe_arena_tcm_words"] < 0x20000000 + 3072
    assert 0x24000000 <= addr["bhpe_arena_sram_words"] < 0x24000000 + 65536


def test_banks_do_not_fit_names_banks(tmp_path):
    g, _ = _every_kind_graph(0)
    g.output = "fo"
    with pytest.raises(BinaryHPEError, match=r"does not fit target banked: RAM: .*banks over their room: sram"):
        mcu_build.build_mcu(g, tmp_path / "o", _bank_target(tmp_path, 1024, 2048), sim=False)


def test_bank_errors(tmp_path):
    t = json.loads((mcu_targets.HERE / "stm32h7.json").read_text())
    t["ram_banks"] = [{"name": "a", "bytes": 10}, {"name": "a", "bytes": 20}]
    (tmp_path / "t.json").write_text(json.dumps(t))
    with pytest.raises(BinaryHPEError, match="bank 'a' listed twice"):
        mcu_targets.load_target(str(tmp_path / "t.json"))
    t["ram_banks"] = [{"name": "a", "bytes": -1}]
    (tmp_path / "t.json").write_text(json.dumps(t))
    with pytest.raises(BinaryHPEError, match="bytes must be a positive integer"):
        mcu_targets.load_target(str(tmp_path / "t.json"))


# ---------------------------------------------------------------------------------------------------------
# tiled execution


@pytest.fixture(scope="module")
def tiny_graph(tmp_path_factory):
    from binaryhpe.compile.flow import step_lower
    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.hardware import to_hardware
    from binaryhpe.train.models import build_model

    d = tmp_path_factory.mktemp("tiny_tiled")
    net, x = build_model("tiny-bidrn", seed=0)
    to_hardware(net)
    g, _ = step_lower(export_qonnx(net, x, d / "model.onnx", verbose=False))
    return g


@pytest.mark.parametrize("end, rows", [(3, 2), (5, 4), (10, 1), (20, 2), (40, 3)])
def test_tiled_regions_bit_exact(tiny_graph, end, rows, tmp_path):
    """Regions of the tiny BiDRN's schedule ending at various steps (through stride-2 convs, the average pool,
    Concat / Split and the fused joins), tile heights 1-4 rows: every output integer equals the untiled
    reference; the report counts the recomputed halo rows."""
    g = tiny_graph
    frames = _frames(g, seed=end, n=2)
    t = memplan.Tiling(0, end, rows)
    bad, cm, refs = _host(g, frames, tmp_path, tiling=t)
    assert bad == 0
    rep = t.report(cm)
    assert rep["bands"] == len(t.bands) > 1 and rep["tile_rows"] == rows
    assert rep["rows_computed"] > rep["rows_untiled"] and rep["halo_overhead_rows"] > 0
    src = (tmp_path / "c" / "model.c").read_text()
    assert src.count("of the tiled region */") == len(t.bands)
    for buf, n in t.held.items():  # band buffers hold at most the image (the deep region's early ones: all of it)
        assert n <= cm.storage[buf].h and cm.storage[buf].base in src
    assert any(n < cm.storage[buf].h for buf, n in t.held.items())
    # the cycle model counts the halo: a tiled region costs more than the untiled one
    from binaryhpe.compile import mcu_cycles
    tgt = mcu_targets.load_target("stm32h7")
    assert mcu_cycles.predict(cm, tgt)["instructions"] > mcu_cycles.predict(cbackend.analyze(g), tgt)["instructions"]


def test_planner_tiles_when_ram_is_short(tiny_graph, tmp_path):
    """A part whose RAM cannot hold the untiled arena: the planner picks a tiled region and tile height that fit
    (the report says which, with the halo overhead and the predicted time); with enough RAM it does not tile."""
    g = tiny_graph
    full = mcu_build.build_mcu(g, tmp_path / "full", "stm32h7", sim=False)
    assert full["tiling"] is None and full["predicted_ms_per_frame"] > 0
    t = json.loads((mcu_targets.HERE / "stm32h7.json").read_text())
    need = full["arena_bytes"]
    t.update(name="short", ram_banks=[{"name": "ram", "bytes": need + full["io_bytes"] + full["stack_bytes_estimate"]
                                       - 2048, "wait_states": 0, "origin": "0x20000000"}])
    (tmp_path / "short.json").write_text(json.dumps(t))
    rep = mcu_build.build_mcu(g, tmp_path / "tiled", str(tmp_path / "short.json"), sim=False)
    til = rep["tiling"]
    assert til is not None and til["bands"] > 1 and til["halo_overhead_rows"] >= 0
    assert rep["arena_bytes"] < need and rep["ram_bytes"] <= t["ram_banks"][0]["bytes"]
    assert rep["predicted_ms_per_frame"] >= full["predicted_ms_per_frame"]
    assert json.loads((tmp_path / "tiled" / "report.json").read_text())["tiling"]["region"] == til["region"]
    frames = _frames(g, seed=7, n=2)
    exe = mcu.host_build(tmp_path / "tiled" / "c", tmp_path / "hm")
    got = mcu.host_run(exe, frames, g.tensors[g.output].shape)
    assert all(np.array_equal(a, g.execute(x)[g.output]) for a, x in zip(got, frames))


def test_tiling_refuses_a_fully_connected_layer():
    from binaryhpe.compile.kinds.mvu import FcXnorMvu

    ch = _Chain((2, 2, 32), BIP)
    fc = ch.add(FcXnorMvu, ["x"], [("acc", (1, 1, 3), Fmt(9, 0))], n=128, cout=3,
                weights=np.random.default_rng(0).choice([-1, 1], size=(3, 128)), pixels=1)
    ch.g.output = "acc"
    assert not memplan.tileable(fc) and memplan.tileable(None)
    with pytest.raises(memplan.TilingError, match="reads the whole frame"):
        cbackend.analyze(ch.g, memplan.Tiling(0, 1, 1))


def test_face_bidrn18_tiled_bit_exact_host_and_qemu(tmp_path):
    """The paper-scale face encoder (BiDRN-18: 7x7/2 stem, max pool, four stages up to 512 channels) at a reduced
    32x32 input, on a Cortex-M7 part whose RAM is short of the untiled arena: the planner tiles the early region,
    and every output integer equals HwGraph.execute on the host and under QEMU (the 192x192 input is
    benchmarks/mcu_figures.py --face)."""
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import optimize
    from binaryhpe.train.bidrn import BiDRN, example_input, randomize
    from binaryhpe.train.config import bidrn_config
    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.hardware import to_hardware

    cfg = bidrn_config(18, (32, 32))
    m = randomize(BiDRN(cfg), seed=0).eval()
    to_hardware(m)
    g = optimize(lower(load_qonnx(export_qonnx(m, example_input(cfg, seed=0), tmp_path / "face.onnx",
                                               verbose=False))))
    full = mcu_build.build_mcu(g, tmp_path / "full", "stm32h7", sim=False)
    t = json.loads((mcu_targets.HERE / "stm32h7.json").read_text())
    room = full["arena_bytes"] * 3 // 4
    t.update(name="h7-short", ram_banks=[
        {"name": "dtcm", "bytes": room // 4 + full["stack_bytes_estimate"], "wait_states": 0, "origin": "0x20000000"},
        {"name": "axi", "bytes": room - room // 4 + full["io_bytes"], "wait_states": 1, "origin": "0x24000000"}])
    (tmp_path / "h7short.json").write_text(json.dumps(t))
    frames = _frames(g, seed=4, n=1)[:2]
    rep = mcu_build.build_mcu(g, tmp_path / "tiled", str(tmp_path / "h7short.json"), sim=True, frames=frames)
    assert rep["tiling"] is not None and rep["tiling"]["region"]["first"] == "/stem/conv_hw/Conv"
    assert rep["arena_bytes"] < full["arena_bytes"]
    assert rep["bit_exact_host"] and rep["bit_exact_target"], rep["mismatches"]
    assert sum(b["bytes"] for b in rep["ram_banks"].values()) == rep["arena_bytes"]
    ratio = rep["predicted_instructions_per_frame"] / rep["instructions_per_frame"]
    assert 0.8 < ratio < 1.25, ratio  # the cycle model against QEMU's count, tiled (halo rows included)


def test_in_place_epilogues(tiny_graph, tmp_path):
    """A stand-alone Epilogue whose input is read by no later step writes over it (same element size): the two
    buffers share one place, the plan reports it, and the outputs stay exact; an input still read later is not
    overwritten."""
    g = tiny_graph
    frames = _frames(g, seed=11, n=2)
    bad, cm, _ = _host(g, frames, tmp_path)
    assert bad == 0 and cm.in_place
    for o, x in cm.in_place.items():
        po, px = cm.plan.buffers[o], cm.plan.buffers[x]
        base = cm.plan.buffers[po.in_place_of]  # x, or the buffer x itself was written over (a chain)
        assert not base.in_place_of and po.in_place_of in (x, px.in_place_of)
        assert (po.offset, po.bank) == (px.offset, px.bank) == (base.offset, base.bank) and base.end >= po.end
        step = next(i for i, s in enumerate(cm.steps) if o in cm.step_io[s][1])
        assert max(cm.uses[x]) == step and cm.storage[o].elem_bytes == cm.storage[x].elem_bytes
    d = cm.plan.to_dict()["buffers"]
    assert sum(1 for b in d.values() if "in_place_of" in b) == len(cm.in_place)
    # the network input (the caller's buffer) and buffers read after the step are never overwritten
    assert g.input not in cm.in_place.values()


def test_wide_constants_and_test_frames(tmp_path):
    """A per-channel constant wider than 32 bits (a float-scaled chain's multiplier) is an int64_t array and the
    op computes in int64_t; build_mcu's own test frames follow the input format (0/1 bits for a bipolar input,
    non-negative for an unsigned one)."""
    from binaryhpe.compile.kinds.elementwise import MulShift

    rng = np.random.default_rng(9)
    ch = _Chain((3, 4, 5), Fmt(8, 0))
    ch.add(MulShift, ["x"], [("y", (3, 4, 5), Fmt(16, 0))], c=5, pixels=12, in_w=8, out_w=16, const_w=40,
           m=rng.integers(-(1 << 39), 1 << 39, size=5), shift=36)
    ch.g.output = "y"
    frames = _frames(ch.g, seed=9)
    bad, cm, refs = _host(ch.g, frames, tmp_path)
    assert bad == 0 and len({r.tobytes() for r in refs}) > 1
    assert "const int64_t W_" in (tmp_path / "c" / "weights.c").read_text()
    g = _binary_conv(40, 9, 3, 1, fuse=True, seed=3)
    assert {int(v) for x in mcu_build.test_frames(g) for v in np.unique(x)} == {0, 1}
    ch2 = _Chain((2, 2, 3), Fmt(4, 0, signed=False))
    assert min(int(x.min()) for x in mcu_build.test_frames(ch2.g)) == 0
    assert max(int(x.max()) for x in mcu_build.test_frames(ch2.g)) == 15
