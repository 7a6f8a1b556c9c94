"""Microcontroller backend: the C generated from the hardware graph equals ``HwGraph.execute`` element for element.

(1) the tiny BiDRN (built with train.models, exported to QONNX, lowered): host gcc on random full-range,
    extreme and QONNX-derived frames; and cross-compiled for Cortex-M under qemu-system-arm (every target);
(2) small Brevitas nets with odd channel counts that do not fill a 32-bit word (1 and 2 words, binary
    convs with stride and zero padding, Fusion Up / Down, Block Residual, a BiDRB), BNN-PYNQ-style nets with a
    binary input, thresholds and fully connected layers;
(3) a hand-built graph of every epilogue kind with random constants (MultiThreshold, Threshold with negative
    scales, Requant with ReLU and a left shift, MulShift needing 64-bit intermediates, sum / max pools,
    packed Concat / Split);
(4) the memory planner and the errors (unknown target, does not fit, missing cross compiler).

Needs gcc, and for the QEMU tests gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm (in CI's set-up).
Whole file: about 3.5 minutes on 2 cores (most of it the tiny BiDRN's export, ~80 s, and QONNX load, done once).
"""

import json
import pathlib
import shutil

import numpy as np
import pytest
import torch

from binaryhpe import BinaryHPEError
from binaryhpe.compile import cbackend, mcu_build, mcu_targets, memplan
from binaryhpe.compile.flow import step_lower
from binaryhpe.compile.graph import Fmt, HwGraph, TensorInfo
from binaryhpe.compile.kinds.elementwise import (AddConst, JoinAdd, MulShift, MultiThreshold, Prelu, Requant,
                                                 Sign, Threshold)
from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
from binaryhpe.compile.kinds.plumbing import Concat, Fork, Split
from binaryhpe.compile.kinds.pool import Pool
from binaryhpe.compile.kinds.swg import SlidingWindow
from binaryhpe.compile.reference import compare_with_onnx, hw_input, onnx_context  # noqa: F401
from binaryhpe.sim import mcu
from binaryhpe.train.export import export_qonnx

#: Cortex-M7 (code at 0x0, the issue's recipe) and Cortex-M55 (secure aliases 0x10000000 / 0x30000000); the
#: M4 and M33 targets run the same way (benchmarks/mcu_figures.py --qemu runs all four)
TARGETS = ("stm32h7", "mps3-an547")


def _host_mismatches(g, frames, tmp):
    cm = cbackend.generate(g)
    d = cbackend.write(cm, tmp / "c")
    exe = mcu.host_build(d)
    got = mcu.host_run(exe, frames, g.tensors[g.output].shape)
    refs = [g.execute(x)[g.output] for x in frames]
    return sum(int(np.count_nonzero(a != b)) for a, b in zip(got, refs)), cm


def _frames(g, seed=0, n=3):
    """Random frames over the input format's whole range, plus min, max, zero and alternating extremes."""
    info = g.tensors[g.input]
    if info.fmt.bipolar:
        lo, hi = 0, 1
    else:
        lo, hi = -(1 << (info.fmt.bits - 1)), (1 << (info.fmt.bits - 1)) - 1
    rng = np.random.default_rng(seed)
    xs = [rng.integers(lo, hi + 1, size=info.shape) for _ in range(n)]
    alt = np.where(np.indices(info.shape).sum(axis=0) % 2 == 0, lo, hi)
    xs += [np.full(info.shape, lo), np.full(info.shape, hi), np.zeros(info.shape, np.int64), alt]
    return [x.astype(np.int64) for x in xs]


# ---------------------------------------------------------------------------------------------------------
# (1) the tiny BiDRN


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from binaryhpe.train.hardware import to_hardware
    from binaryhpe.train.models import build_model

    d = tmp_path_factory.mktemp("tiny")
    net, x = build_model("tiny-bidrn", seed=0)
    to_hardware(net)
    path = export_qonnx(net, x, d / "model.onnx", verbose=False)
    g, mw = step_lower(path)
    return {"g": g, "mw": mw, "x": x.numpy()}


def test_tiny_bidrn_host_bit_exact(tiny, tmp_path):
    g, mw = tiny["g"], tiny["mw"]
    kinds = {type(lay).__name__ for lay in g.layers} | {type(op).__name__ for lay in g.layers
                                                         for op in getattr(lay, "ops", [])}
    assert {"XnorMvu", "FxpMvu", "Prelu", "JoinAdd", "Concat", "Split", "Pool", "Fork"} <= kinds, kinds
    # a frame through QONNX: the reference equals execute_onnx there, so the C output equals it too
    r = compare_with_onnx(g, mw, tiny["x"])
    assert r["output_exact"] and r["first_mismatch"] is None
    frames = _frames(g, n=2) + [hw_input(g, r["ctx"])]
    bad, cm = _host_mismatches(g, frames, tmp_path)
    assert bad == 0
    # outputs are not trivially constant: the frames give different outputs
    outs = [g.execute(x)[g.output] for x in frames]
    assert len({o.tobytes() for o in outs}) >= 5
    # buffer reuse: the arena is far below the naive sum and no placement can beat the lower bound
    assert cm.plan.lower_bound <= cm.plan.peak < cm.plan.naive / 4
    src = (tmp_path / "c" / "model.c").read_text()
    assert "malloc" not in src and "float" not in src and "double" not in src
    assert "__builtin_popcount" in src
    assert "const uint32_t W_" in (tmp_path / "c" / "weights.c").read_text()


@pytest.mark.parametrize("target", TARGETS)
def test_tiny_bidrn_qemu_bit_exact(tiny, tmp_path, target):
    g = tiny["g"]
    frames = _frames(g, seed=1, n=1)[:3]
    rep = mcu_build.build_mcu(g, tmp_path, target, sim=True, frames=frames)
    assert rep["bit_exact_host"] and rep["bit_exact_target"] and rep["bit_exact"], rep["mismatches"]
    assert rep["frames"] == 3
    assert json.loads((tmp_path / "report.json").read_text())["target"] == target
    for k in ("flash_bytes", "ram_bytes", "predicted_cycles_per_frame", "instructions_per_frame"):
        assert isinstance(rep[k], int) and rep[k] > 0, k
    # the analytic model is within a factor 1.5 of QEMU's instruction count (whole frame)
    ratio = rep["predicted_instructions_per_frame"] / rep["instructions_per_frame"]
    assert 0.67 < ratio < 1.5, ratio
    # per-layer counts add up to the frame (the hook overhead aside)
    per_layer = sum(r["measured_instructions"] for r in rep["layers"])
    assert 0.9 < per_layer / rep["instructions_per_frame"] <= 1.01
    # arm-none-eabi-size of model.o + weights.o: the constants are in .text (flash), the arena in .bss
    size = rep["target_code_size"]
    assert size["data"] == 0 and size["bss"] >= rep["arena_bytes"]
    assert size["text"] >= rep["weights_bytes"]
    assert rep["flash_bytes"] >= size["text"] * 0.7  # the flash estimate is not far below the real size
    assert (tmp_path / "c" / "model.h").read_text().count("void bhpe_model_run(") == 1


# ---------------------------------------------------------------------------------------------------------
# (2) odd channel counts, BNN-PYNQ-style nets


def _odd_nets():
    from binaryhpe.train.bidrn import BiDRB
    from binaryhpe.train.config import TINY
    from binaryhpe.train.layers import BlockResidual, LCRModule
    from test_train_exact import Wrap

    return {
        "lcr_37_3x3": (lambda: Wrap(LCRModule(37, 37, 3, 1, ())), 37, 5),
        "lcr_35_s2_dscr": (lambda: Wrap(LCRModule(35, 35, 3, 2, ("dscr",))), 35, 6),
        "lcr_5_fur": (lambda: Wrap(LCRModule(5, 10, 3, 1, ("fur",))), 5, 5),
        "lcr_66_fdr": (lambda: Wrap(LCRModule(66, 33, 1, 1, ("fdr",))), 66, 4),
        "block_residual_fp_3": (lambda: Wrap(BlockResidual(3, 6, 2, "fp")), 3, 6),
        "bidrb_basic_33": (lambda: BiDRB("basic", 33, 66, 2, TINY), 33, 4),
    }


@pytest.mark.parametrize("case", ["lcr_37_3x3", "lcr_35_s2_dscr", "lcr_5_fur", "lcr_66_fdr",
                                  "block_residual_fp_3", "bidrb_basic_33"])
def test_odd_channels_host_bit_exact(case, tmp_path):
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import optimize
    from binaryhpe.train.bidrn import randomize
    from binaryhpe.train.hardware import to_hardware
    from binaryhpe.train.config import NumericsConfig

    make, c, hw = _odd_nets()[case]
    torch.manual_seed(0)
    m = to_hardware(randomize(make(), seed=3), NumericsConfig())
    x = torch.rand((1, c, hw, hw)) * 2 - 1
    path = export_qonnx(m, x, tmp_path / f"{case}.onnx", verbose=False)
    mw = load_qonnx(path)
    g = optimize(lower(mw))
    binary = not case.startswith("block_residual_fp")  # the fp Block Residual has no binary tensor
    assert any((t.fmt.bipolar or not binary) and t.shape[2] % 32 for t in g.tensors.values()), "no partial word"
    frames = _frames(g) + [hw_input(g, onnx_context(mw, x.numpy()))]
    r = compare_with_onnx(g, mw, x.numpy())
    assert r["output_exact"]
    bad, _ = _host_mismatches(g, frames, tmp_path)
    assert bad == 0


@pytest.mark.parametrize("name", ["cnv8", "cnv_bin_pad", "fc_bin_rect"])
def test_bnn_pynq_host_bit_exact(name, tmp_path):
    import bnn_pynq_models as M
    from test_bnn_pynq import MODELS, _inputs

    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import optimize

    kind, kw, shape = MODELS[name]
    if name == "cnv_bin_pad":
        kw = dict(kw, ch=(5, 33, 37))  # odd channel counts, two words
    model = M.build(kind, 0, **kw)
    path = export_qonnx(model, torch.from_numpy(_inputs(shape)["rand0"]), tmp_path / "m.onnx", verbose=False)
    mw = load_qonnx(path)
    g = optimize(lower(mw))
    assert any(isinstance(op, Threshold) for lay in g.layers for op in getattr(lay, "ops", [lay]))
    frames = [hw_input(g, onnx_context(mw, v)) for v in _inputs(shape).values()] + _frames(g)
    bad, _ = _host_mismatches(g, frames, tmp_path)
    assert bad == 0


# ---------------------------------------------------------------------------------------------------------
# (3) every epilogue kind, hand-built


class _Chain:
    def __init__(self, shape, fmt):
        self.g = HwGraph(source="hand-built")
        self.g.input = self.t("x", shape, fmt)
        self.n = 0

    def t(self, name, shape, fmt, windowed=False):
        self.g.tensors[name] = TensorInfo(name, tuple(shape), fmt, windowed=windowed)
        return name

    def add(self, cls, ins, outs, **kw):
        self.n += 1
        lay = cls(name=f"l{self.n}_{cls.__name__}", inputs=list(ins), outputs=[o[0] for o in outs], **kw)
        for o in outs:
            self.t(*o)
        self.g.layers.append(lay)
        return lay


def _every_kind_graph(seed):
    rng = np.random.default_rng(seed)
    H, W, C = 5, 7, 37
    P = H * W
    ch = _Chain((H, W, C), Fmt(8, 7))
    X = Fmt(16, 10)

    def r(bits, n=C, lo=None):
        lo = -(1 << (bits - 1)) if lo is None else lo
        return rng.integers(lo, 1 << (bits - 1), size=n)

    ch.add(Fork, ["x"], [("xa", (H, W, C), Fmt(8, 7)), ("xb", (H, W, C), Fmt(8, 7))], h=H, w=W, c=C, elem_w=8)
    ch.add(Requant, ["xa"], [("rq", (H, W, C), Fmt(12, 7))], c=C, pixels=P, in_w=8, out_w=12, shift=-3, relu=True)
    ch.add(MulShift, ["rq"], [("ms", (H, W, C), Fmt(24, 7))], c=C, pixels=P, in_w=12, out_w=24, const_w=16,
           m=r(16), shift=-12)  # 12 + 16 + 12 bits: the 64-bit path
    ch.add(MulShift, ["ms"], [("ms2", (H, W, C), X)], c=C, pixels=P, in_w=24, out_w=16, const_w=8, m=r(8), shift=9)
    ch.add(AddConst, ["ms2"], [("ac", (H, W, C), X)], c=C, pixels=P, in_w=16, out_w=16, const_w=16, b=r(16))
    ch.add(Prelu, ["ac"], [("pr", (H, W, C), X)], c=C, pixels=P, in_w=16, out_w=16, const_w=8, beta=r(8), shift=5)
    ch.add(JoinAdd, ["pr", "xb"], [("ja", (H, W, C), X)], c=C, pixels=P, in_w=16, in_b_w=8, out_w=16,
           shift_a=0, shift_b=3)
    ch.add(Fork, ["ja"], [("j0", (H, W, C), X), ("j1", (H, W, C), X)], h=H, w=W, c=C, elem_w=16)
    ch.add(MultiThreshold, ["j0"], [("mt", (H, W, C), Fmt(2, 0, signed=False))], c=C, pixels=P, in_w=16,
           thr_w=16, out_w=2, thresholds=np.sort(r(16, (C, 3)), axis=1))
    thr = r(12)
    ch.add(Threshold, ["j1"], [("th", (H, W, C), Fmt(1, 0, False, True))], c=C, pixels=P, in_w=16, thr_w=12,
           thresholds=thr, neg=rng.integers(0, 2, size=C))
    ch.add(Fork, ["th"], [("t0", (H, W, C), Fmt(1, 0, False, True)), ("t1", (H, W, C), Fmt(1, 0, False, True))],
           h=H, w=W, c=C, elem_w=1, signed=False)
    # binary conv 3x3, stride 2, zero padding, 37 channels (two words, the second partial) -> 33 outputs
    sw = ch.add(SlidingWindow, ["t0"], [("win", (3, 4, 9 * C), Fmt(1, 0, False, True), True)],
                h=H, w=W, c=C, k=3, s=2, pad=1, elem_w=1, signed=False)
    ch.add(XnorMvu, ["win"], [("acc", (sw.oh, sw.ow, 33), Fmt(10, 0))], n=9 * C, cout=33,
           weights=rng.choice([-1, 1], size=(33, 9 * C)), pixels=sw.oh * sw.ow)
    ch.add(Sign, ["acc"], [("sg", (sw.oh, sw.ow, 33), Fmt(1, 0, False, True))], c=33, pixels=sw.oh * sw.ow, in_w=10)
    # max pool over bits (an OR), sum pool over the 2-bit multithreshold output
    ch.add(Pool, ["t1"], [("pm", (H - 1, W - 1, C), Fmt(1, 0, False, True))], h=H, w=W, c=C, k=2, s=1, pad=0,
           mode="max", elem_w=1, signed=False)
    ch.add(Pool, ["mt"], [("ps", (3, 4, C), Fmt(7, 0))], h=H, w=W, c=C, k=3, s=2, pad=1, mode="sum", elem_w=3,
           out_w=7)
    ch.add(Split, ["pm"], [("sa", (H - 1, W - 1, 5), Fmt(1, 0, False, True)),
                           ("sb", (H - 1, W - 1, 32), Fmt(1, 0, False, True))], h=H - 1, w=W - 1, c1=5, c2=32,
           elem_w=1, signed=False)
    ch.add(Concat, ["sb", "sa"], [("cc", (H - 1, W - 1, C), Fmt(1, 0, False, True))], h=H - 1, w=W - 1, c1=32,
           c2=5, elem_w=1, signed=False)
    # fixed-point conv 3x3 pad 1 over the pooled sums, then a full-frame FC-like window concatenating outputs
    sw2 = ch.add(SlidingWindow, ["ps"], [("win2", (3, 4, 9 * C), Fmt(7, 0), True)], h=3, w=4, c=C, k=3, s=1,
                 pad=1, elem_w=7)
    ch.add(FxpMvu, ["win2"], [("facc", (3, 4, 7), Fmt(25, 0))], n=9 * C, cout=7, in_w=7, w_w=8,
           weights=rng.integers(-128, 128, size=(7, 9 * C)), pixels=12)
    ch.add(Requant, ["facc"], [("fo", (3, 4, 7), X)], c=7, pixels=12, in_w=25, out_w=16, shift=2)
    del sw2
    g = ch.g
    g.output = "fo"
    # other outputs must be consumed: fold the binary branches into the result through a second graph output
    return g, ("sg", "cc", "fo")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_epilogue_kind_bit_exact(seed, tmp_path):
    g, outs = _every_kind_graph(seed)
    frames = _frames(g, seed=seed)
    for out in outs:  # each of the graph's sinks in turn as the network output
        g.output = out
        bad, cm = _host_mismatches(g, frames, tmp_path / out)
        assert bad == 0, out
        refs = [g.execute(x)[out] for x in frames]
        assert len({r.tobytes() for r in refs}) > 1, out  # the frames exercise the layers
    assert len({type(lay).__name__ for lay in g.layers}) == 15


@pytest.mark.parametrize("seed", [0, 1])
def test_every_epilogue_kind_fused_bit_exact(seed, tmp_path):
    """The same graph with its elementwise chains fused into Epilogues (``passes.FuseEpilogue``): one C loop an
    Epilogue, every op's arithmetic in locals, equal to the per-op reference computed before fusing."""
    from binaryhpe.compile.kinds.epilogue import Epilogue
    from binaryhpe.compile.passes import FuseEpilogue

    g, outs = _every_kind_graph(seed)
    frames = _frames(g, seed=seed)
    refs = {out: [g.execute(x)[out] for x in frames] for out in outs}
    mids = ("rq", "ms", "ms2", "ac", "pr")
    FuseEpilogue().apply(g)
    epis = [lay for lay in g.layers if isinstance(lay, Epilogue)]
    assert [type(op).__name__ for op in max(epis, key=lambda e: len(e.ops)).ops] == \
        ["Requant", "MulShift", "MulShift", "AddConst", "Prelu", "JoinAdd"]
    assert not any(type(lay).__name__ in ("Requant", "MulShift", "Sign", "Threshold", "MultiThreshold")
                   for lay in g.layers)
    for out in outs:
        g.output = out
        cm = cbackend.generate(g)
        assert not set(mids) & set(cm.storage)  # no per-stage buffer
        exe = mcu.host_build(cbackend.write(cm, tmp_path / out / "c"))
        got = mcu.host_run(exe, frames, g.tensors[out].shape)
        assert sum(int(np.count_nonzero(a != b)) for a, b in zip(got, refs[out])) == 0, out
        assert len({r.tobytes() for r in refs[out]}) > 1, out
    src = (tmp_path / "fo" / "c" / "model.c").read_text()
    # every Epilogue is one loop of its own or runs inside its MVU's output loop
    assert src.count(": Epilogue ") + src.count(" + Epilogue ") == len(epis) and "/* JoinAdd l7_JoinAdd */" in src


# ---------------------------------------------------------------------------------------------------------
# (4) memory planner and errors


def test_memplan_reuses_and_never_overlaps():
    bufs = [memplan.Buffer("a", 100, 0, 1), memplan.Buffer("b", 60, 1, 2), memplan.Buffer("c", 100, 2, 3),
            memplan.Buffer("skip", 8, 0, 3)]
    p = memplan.plan(bufs, 4)
    assert p.naive == 100 + 60 + 100 + 8
    # a and c never live together: they share offset space; the skip connection lives throughout
    assert p.buffers["a"].offset == p.buffers["c"].offset
    assert p.peak == p.lower_bound == 100 + 60 + 8
    for s in range(4):
        live = [b for b in p.buffers.values() if b.start <= s <= b.end]
        spans = sorted((b.offset, b.offset + b.size) for b in live)
        assert all(x[1] <= y[0] for x, y in zip(spans, spans[1:]))


def test_unknown_target_and_user_file(tmp_path):
    with pytest.raises(BinaryHPEError, match=r"unknown microcontroller target 'cortex-z9'.*stm32h7"):
        mcu_targets.load_target("mcu:cortex-z9")
    t = json.loads((mcu_targets.HERE / "stm32f4.json").read_text())
    t["name"] = "my-part"
    (tmp_path / "part.json").write_text(json.dumps(t))
    assert mcu_targets.load_target(str(tmp_path / "part.json"))["name"] == "my-part"
    del t["ram_bytes"]
    (tmp_path / "bad.json").write_text(json.dumps(t))
    with pytest.raises(BinaryHPEError, match="lacks ram_bytes"):
        mcu_targets.load_target(str(tmp_path / "bad.json"))


def test_does_not_fit_names_shortfall_and_largest(tmp_path):
    g, _ = _every_kind_graph(0)
    cm = cbackend.generate(g)
    t = json.loads((mcu_targets.HERE / "stm32f4.json").read_text())
    t.update(name="tiny-part", ram_bytes=2048, flash_bytes=1024)
    del t["ram_banks"]  # one contiguous RAM of ram_bytes (with ram_banks, the banks are the RAM)
    (tmp_path / "tiny.json").write_text(json.dumps(t))
    target = mcu_targets.load_target(str(tmp_path / "tiny.json"))
    big_t = max(cm.plan.buffers.values(), key=lambda b: b.size)
    big_w = max(cm.weight_sets, key=cm.weight_sets.get)
    with pytest.raises(BinaryHPEError) as e:
        mcu_build.build_mcu(g, tmp_path / "o", str(tmp_path / "tiny.json"), sim=False)
    msg = str(e.value)
    ram = cm.plan.peak + cm.io_bytes + cm.stack_bytes
    assert f"short by {ram - 2048} B" in msg and big_t.name in msg and big_w in msg and "tiny-part" in msg
    assert msg.count("does not fit") == 1
    # it fits the real part
    rep = mcu_build.build_mcu(g, tmp_path / "ok", "stm32f4", sim=False)
    assert rep["ram_bytes"] == ram and rep["bit_exact"] is None and target["clock_hz"] == rep["clock_hz"]


def test_missing_cross_compiler(tmp_path, monkeypatch):
    real = shutil.which
    monkeypatch.setattr(mcu.shutil, "which", lambda n: None if "arm" in n else real(n))
    g, _ = _every_kind_graph(0)
    with pytest.raises(BinaryHPEError, match="missing arm-none-eabi-gcc.*apt-get install gcc-arm-none-eabi"):
        mcu_build.build_mcu(g, tmp_path, "stm32h7", sim=True)


def test_generated_c_is_strict_c99(tmp_path):
    """-std=c99 -pedantic -Wall -Wextra -Werror on the host (host_build's flags) and a 32-bit ARM build."""
    g, _ = _every_kind_graph(1)
    d = cbackend.write(cbackend.generate(g), tmp_path / "c")
    mcu.host_build(d)
    if shutil.which("arm-none-eabi-gcc"):
        for src in ("model.c", "weights.c"):
            mcu._run(["arm-none-eabi-gcc", "-mthumb", "-mcpu=cortex-m4", "-std=c99", "-pedantic", "-Wall",
                      "-Wextra", "-Werror", "-O2", "-c", str(d / src), "-o", str(tmp_path / (src + ".o"))])
    assert pathlib.Path(d / "model.h").exists()
