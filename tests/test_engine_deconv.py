"""Transposed convolutions on the layer-sequential engine: a ``PhaseShuffle`` fed by a convolution becomes one
descriptor a phase, each writing its pixels straight into the shuffled tensor (``pad_x``, ``out_row_stride``;
docs/engine.md).

(a) Hardware graphs built here by hand (SlidingWindow -> XnorMvu / FxpMvu [-> Epilogue] -> PhaseShuffle) of a
    binary and a fixed-point ConvTranspose(4, 2, 1), the phase weights derived here from the polyphase formulas,
    compiled to an engine program and run by the golden model (run_model) and by bhpe_engine in Verilator under
    random DRAM stalls: every output integer equals torch.nn.functional.conv_transpose2d in float64 on the
    integers (plus the epilogue's AddConst, whose constants differ per phase, so that a phase reading another
    phase's constants or weights shows), with the output tensor filled with noise first (a pixel no phase writes
    shows). A small configuration makes every phase two column strips and two output-channel tiles.
(b) QONNX graphs (brevitas QuantConvTranspose2d, binary and fixed-point, with a per-channel scale and a
    requantizer) through lowering and the passes: the model and the RTL equal the exact QONNX reference.
(c) What the engine cannot take around a PhaseShuffle is refused in one line naming the layer; two shuffled tensors
    written as the two parts (views) of one Concat.
(d) The cycle model against the RTL's cycle counter on these programs.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from binaryhpe.compile.engine import EngineConfig, EngineRefusal, compile_program, cycle_model, run_model
from binaryhpe.compile.graph import Fmt, HwGraph, TensorInfo
from binaryhpe.compile.kinds.elementwise import AddConst
from binaryhpe.compile.kinds.epilogue import Epilogue
from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
from binaryhpe.compile.kinds.plumbing import PhaseShuffle
from binaryhpe.compile.kinds.swg import SlidingWindow

K, S, P = 4, 2, 1
#: a configuration whose line buffer holds 4 output columns of these layers' 2-word pixels (two strips of 7) and
#: whose weight buffer holds one group of 16 output channels (two tiles when a phase has 20 channels)
SMALL = replace(EngineConfig(), lb_depth=32, wb_depth=8, ob_depth=64)
STALL = 0.3


def _phases(k: int, s: int, p: int):
    """Per phase r (outputs o = s*m + r): the window's top/left padding and, per tap t, the kernel index, from
    out[o] = sum_(i, kk: i*s - p + kk = o) x[i] w[kk]: kk = o + p - i*s, i = m - pad_r + t."""
    kp = k // s
    out = []
    for r in range(s):
        pad_r = kp - 1 - (r + p) // s
        out.append((pad_r, [s * (pad_r - t) + r + p for t in range(kp)]))
    return out


def _deconv_graph(binary: bool, h: int, w: int, cin: int, cout: int, seed: int, add_const: bool):
    """(graph, ConvTranspose weights (cin, cout, K, K), per-MVU-channel constant or None)."""
    rng = np.random.default_rng(seed)
    kp = K // S
    ph = _phases(K, S, P)
    big = max(pr for pr, _ in ph)
    if binary:
        wt = rng.choice([-1, 1], size=(cin, cout, K, K)).astype(np.int64)
        fin = Fmt(1, bipolar=True)
    else:
        wt = rng.integers(-31, 32, size=(cin, cout, K, K)).astype(np.int64)
        fin = Fmt(8, 0)
    # the MVU's channel (ry*S + rx)*cout + co, window element (ty, tx, ci)
    wm = np.zeros((S * S * cout, kp, kp, cin), dtype=np.int64)
    for ry, (_, ky) in enumerate(ph):
        for rx, (_, kx) in enumerate(ph):
            for ty in range(kp):
                for tx in range(kp):
                    wm[(ry * S + rx) * cout:(ry * S + rx + 1) * cout, ty, tx, :] = wt[:, :, ky[ty], kx[tx]].T
    g = HwGraph()
    g.tensors["x"] = TensorInfo("x", (h, w, cin), fin)
    swg = SlidingWindow(name="swg", inputs=["x"], outputs=["win"], h=h, w=w, c=cin, k=kp, s=1, pad=big,
                        elem_w=fin.width, signed=not binary)
    gh, gw = swg.oh, swg.ow
    g.tensors["win"] = TensorInfo("win", (gh, gw, kp * kp * cin), fin, windowed=True)
    n = kp * kp * cin
    if binary:
        mvu = XnorMvu(name="mvu", inputs=["win"], outputs=["acc"], n=n, cout=S * S * cout,
                      weights=wm.reshape(S * S * cout, n), pixels=gh * gw)
    else:
        mvu = FxpMvu(name="mvu", inputs=["win"], outputs=["acc"], n=n, cout=S * S * cout,
                     weights=wm.reshape(S * S * cout, n), pixels=gh * gw, in_w=8, w_w=6)
    acc_w = mvu.acc_w
    g.tensors["acc"] = TensorInfo("acc", (gh, gw, S * S * cout), Fmt(acc_w, 0))
    layers, shuf_in, consts, out_w = [swg, mvu], "acc", None, acc_w
    if add_const:
        consts = rng.integers(-300, 300, size=S * S * cout)
        out_w = acc_w + 1
        add = AddConst(name="bias", inputs=["acc"], outputs=["biased"], c=S * S * cout, pixels=gh * gw,
                       in_w=acc_w, out_w=out_w, const_w=10, b=consts)
        layers.append(Epilogue(name="bias_epi", inputs=["acc"], outputs=["biased"], ops=[add]))
        g.tensors["biased"] = TensorInfo("biased", (gh, gw, S * S * cout), Fmt(out_w, 0))
        shuf_in = "biased"
    layers.append(PhaseShuffle(name="shuffle", inputs=[shuf_in], outputs=["y"], h=gh, w=gw, c=cout, s=S,
                               oh=S * h, ow=S * w, off=tuple(big - pr for pr, _ in ph), elem_w=out_w))
    g.tensors["y"] = TensorInfo("y", (S * h, S * w, cout), Fmt(out_w, 0))
    g.layers, g.input, g.output = layers, "x", "y"
    return g, wt, consts


def _reference(binary: bool, q: np.ndarray, wt: np.ndarray, consts) -> np.ndarray:
    """conv_transpose2d in float64 on the integers (exact: the sums are far below 2^53), HWC; then the AddConst
    of the MVU channel (phase, co) at each output pixel."""
    x = (2 * q - 1) if binary else q
    y = F.conv_transpose2d(torch.tensor(x.transpose(2, 0, 1)[None], dtype=torch.float64),
                           torch.tensor(wt, dtype=torch.float64), stride=S, padding=P)[0].numpy()
    ref = y.transpose(1, 2, 0).astype(np.int64)
    assert np.array_equal(ref.astype(np.float64), y.transpose(1, 2, 0))
    if consts is not None:
        cout = wt.shape[1]
        for ry in range(S):
            for rx in range(S):
                ref[ry::S, rx::S] += consts[(ry * S + rx) * cout:(ry * S + rx + 1) * cout]
    return ref


def _frame(binary: bool, shape, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, size=shape) if binary else rng.integers(-128, 128, size=shape)


def _noisy_image(prog, q, seed: int) -> bytearray:
    """The program's image with the output tensor's bytes random (every one must be overwritten), then the frame."""
    img = prog.fresh_image()
    t = prog.output
    nbytes = prog.buffers[t.root].nbytes
    a = prog.buffers[t.root].addr
    img[a:a + nbytes] = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes()
    return prog.write_input(img, q)


_EXES: dict = {}


def _exe(cfg: EngineConfig):
    from binaryhpe.sim.engine import build_engine

    key = tuple(sorted(cfg.rtl_params().items()))
    if key not in _EXES:
        root = pathlib.Path(os.environ.get("BINARYHPE_SIM_BUILD", pathlib.Path.cwd() / "sim_build"))
        _EXES[key] = build_engine(cfg.rtl_params(), root / "engine", verbose=False)
    return _EXES[key]


def _run_rtl(prog, cfg, img, stall, seed):
    from binaryhpe.sim.engine import run_engine

    return run_engine(_exe(cfg), img, prog.desc_addr, stall_prob=stall, seed=seed, latency=cfg.dram_latency,
                      beats_per_cycle=cfg.dram_beats_per_cycle, verbose=False)


CASES = {
    # binary: c_in = 70 (two words, a tail), 20 output channels (two groups of 16, padding lanes), 7 columns
    "binary": dict(binary=True, h=5, w=7, cin=70, cout=20, seed=1, add_const=False),
    "binary_addconst": dict(binary=True, h=4, w=7, cin=70, cout=20, seed=2, add_const=True),
    # fixed point: signed 8-bit inputs, 6-bit weights, 32-bit accumulators (5 words a pixel of 10 channels)
    "fixed": dict(binary=False, h=5, w=7, cin=12, cout=10, seed=3, add_const=False),
    "fixed_addconst": dict(binary=False, h=3, w=7, cin=12, cout=10, seed=4, add_const=True),
}


def _compiled(case: str, cfg: EngineConfig):
    c = dict(CASES[case])
    binary = c.pop("binary")
    g, wt, consts = _deconv_graph(binary, **c)
    return g, wt, consts, binary, compile_program(g, cfg)


@pytest.mark.parametrize("cfg_name", ["default", "small"])
@pytest.mark.parametrize("case", list(CASES))
def test_deconv_program_model_exact(case, cfg_name):
    cfg = EngineConfig() if cfg_name == "default" else SMALL
    g, wt, consts, binary, prog = _compiled(case, cfg)
    # four descriptors, one a phase, each with its own top and left padding, writing the shuffled tensor in place
    assert [op.phase[:2] for op in prog.ops] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert {op.output for op in prog.ops} == {"y"} and "acc" not in prog.tensors
    assert [(op.header["pad"], op.header["pad_x"]) for op in prog.ops] == [(1, 1), (1, 0), (0, 1), (0, 0)]
    if cfg_name == "small":
        assert all(op.header["n_strips"] == 2 for op in prog.ops)
        assert all(op.header["n_ct"] == (2 if binary else 1) for op in prog.ops)
    for seed in range(2):
        q = _frame(binary, g.tensors["x"].shape, seed)
        out = prog.read_output(run_model(prog, _noisy_image(prog, q, seed)))
        assert np.array_equal(out, _reference(binary, q, wt, consts)), case


@pytest.mark.parametrize("cfg_name", ["default", "small"])
@pytest.mark.parametrize("case", ["binary_addconst", "fixed"])
def test_deconv_rtl_exact_under_stalls(case, cfg_name):
    from binaryhpe.sim.toolchain import setup_verilator

    setup_verilator()
    cfg = EngineConfig() if cfg_name == "default" else SMALL
    g, wt, consts, binary, prog = _compiled(case, cfg)
    for seed in range(2):
        q = _frame(binary, g.tensors["x"].shape, 10 + seed)
        img = _noisy_image(prog, q, seed)
        r = _run_rtl(prog, cfg, img, STALL, seed)
        out = prog.read_output(r.dram)
        ref = _reference(binary, q, wt, consts)
        assert np.array_equal(out, ref), f"{case}: {int(np.count_nonzero(out != ref))} of {ref.size} differ"
        assert r.dram == bytes(run_model(prog, img))  # every byte of the image, not only the output


# ---- (b) from QONNX ------------------------------------------------------------------------------------
def _Deconv(binary: bool, cin: int, cout: int):
    """input quantizer -> [sign] -> ConvTranspose(K, S, P) = (4, 2, 1) -> per-channel scale -> requantizer."""
    from deconv_models import DeconvNet

    return DeconvNet(binary, cin, cout, out_bits=12, scales=[0.5, -0.75, 1.5, 2.0, -1.25, 0.25])


@pytest.fixture(scope="module", params=["binary", "fixed"])
def qonnx_deconv(request, tmp_path_factory):
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import run_passes, standard_passes
    from binaryhpe.train.export import export_qonnx

    torch.manual_seed(7)
    binary = request.param == "binary"
    net = _Deconv(binary, cin=40 if binary else 9, cout=6).eval()
    x = torch.randn(1, net.dc.in_channels, 5, 6)
    path = export_qonnx(net, x, tmp_path_factory.mktemp("deconv") / f"{request.param}.onnx")
    mw = load_qonnx(path)
    g = run_passes(lower(mw), standard_passes(), stop="forks")
    return request.param, g, mw


def test_qonnx_deconv_model_and_rtl_equal_the_exact_reference(qonnx_deconv):
    from binaryhpe.compile.reference import exact_reference, hw_input, nchw_to_hwc
    from binaryhpe.sim.toolchain import setup_verilator

    name, g, mw = qonnx_deconv
    kinds = [type(lay).__name__ for lay in g.layers]
    assert "PhaseShuffle" in kinds and kinds.index("PhaseShuffle") > kinds.index("SlidingWindow")
    cfg = EngineConfig()
    prog = compile_program(g, cfg)
    assert sum(op.phase is not None for op in prog.ops) == S * S
    setup_verilator()
    shape = [d.dim_value for d in mw.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(5)
    for i in range(2):
        run = exact_reference(mw, rng.uniform(-3, 3, shape).astype(np.float32))
        assert run.float64_exact
        ref = g.tensors[g.output].fmt.from_real(nchw_to_hwc(run.output))
        img = prog.write_input(prog.fresh_image(), hw_input(g, run.context))
        model = run_model(prog, img)
        assert np.array_equal(prog.read_output(model), ref), name
        r = _run_rtl(prog, cfg, img, STALL, 20 + i)
        assert np.array_equal(prog.read_output(r.dram), ref), name
        assert r.dram == bytes(model)


# ---- (c) refusals ---------------------------------------------------------------------------------------
def test_a_shuffle_of_the_graph_input_is_refused():
    g = HwGraph()
    g.tensors["x"] = TensorInfo("x", (3, 4, 4 * 8), Fmt(8, 0))
    g.tensors["y"] = TensorInfo("y", (6, 8, 8), Fmt(8, 0))
    g.layers = [PhaseShuffle(name="lonely_shuffle", inputs=["x"], outputs=["y"], h=3, w=4, c=8, s=2, oh=6, ow=8,
                             off=(0, 0))]
    g.input, g.output = "x", "y"
    with pytest.raises(EngineRefusal, match="lonely_shuffle") as e:
        compile_program(g, EngineConfig())
    assert "\n" not in str(e.value)


def test_a_shuffled_convolution_read_elsewhere_is_refused():
    g, _, _ = _deconv_graph(True, h=4, w=5, cin=64, cout=16, seed=0, add_const=False)
    # the accumulators also feed a second shuffle
    g.layers.append(PhaseShuffle(name="second_shuffle", inputs=["acc"], outputs=["y2"], h=5, w=6, c=16, s=2,
                                 oh=8, ow=10, off=(0, 1)))
    g.tensors["y2"] = TensorInfo("y2", (8, 10, 16), g.tensors["y"].fmt)
    with pytest.raises(EngineRefusal, match=r"layer (shuffle|second_shuffle): .*also read elsewhere") as e:
        compile_program(g, EngineConfig())
    assert "\n" not in str(e.value)


def test_a_shuffle_that_does_not_match_its_convolution_is_refused():
    g, _, _ = _deconv_graph(False, h=4, w=5, cin=8, cout=6, seed=0, add_const=False)
    shuf = g.layers[-1]
    shuf.off = (2, 0)  # phase 0 would need a top padding of 1 - 2 = -1
    with pytest.raises(EngineRefusal, match="layer shuffle: .*does not match its convolution mvu") as e:
        compile_program(g, EngineConfig())
    assert "\n" not in str(e.value)


# ---- (d) cycles -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["binary", "fixed"])
def test_cycle_model_on_deconv_programs(case):
    from binaryhpe.sim.toolchain import setup_verilator

    setup_verilator()
    cfg = EngineConfig()
    g, _, _, binary, prog = _compiled(case, cfg)
    img = prog.write_input(prog.fresh_image(), _frame(binary, g.tensors["x"].shape, 0))
    r = _run_rtl(prog, cfg, img, 0.0, 0)
    cm = cycle_model(prog, cfg)
    assert abs(cm["total"]["cycles"] - r.cycles) <= 0.05 * r.cycles, (cm["total"]["cycles"], r.cycles)


def test_two_deconvs_written_into_one_concat():
    """Each shuffled tensor is a channel slice (view) of a Concat: the phases write at the view's channel offset
    with the wider tensor's pixel and row strides."""
    from binaryhpe.compile.kinds.plumbing import Concat
    from binaryhpe.sim.toolchain import setup_verilator

    ga, wa, ca = _deconv_graph(True, h=4, w=6, cin=70, cout=20, seed=5, add_const=True)
    gb, wb, cb = _deconv_graph(True, h=4, w=6, cin=70, cout=8, seed=6, add_const=False)
    ren = {t: t if t == "x" else f"b_{t}" for t in gb.tensors}
    for lay in gb.layers:
        lay.name = f"b_{lay.name}"
        lay.inputs = [ren[t] for t in lay.inputs]
        lay.outputs = [ren[t] for t in lay.outputs]
        ga.layers.append(lay)
    for t, info in gb.tensors.items():
        ga.tensors[ren[t]] = TensorInfo(ren[t], info.shape, info.fmt, windowed=info.windowed)
    fa, fb = ga.tensors["y"].fmt, ga.tensors["b_y"].fmt
    fz = Fmt(max(fa.bits, fb.bits), 0)
    ga.layers.append(Concat(name="cat", inputs=["y", "b_y"], outputs=["z"], h=8, w=12, c1=20, c2=8,
                            elem_w=fz.bits))
    ga.tensors["z"] = TensorInfo("z", (8, 12, 28), fz)
    ga.output = "z"
    cfg = EngineConfig()
    prog = compile_program(ga, cfg)
    assert len(prog.ops) == 8 and prog.tensors["y"].root == prog.tensors["b_y"].root == "z"
    assert prog.tensors["b_y"].ch_off == 20
    setup_verilator()
    q = _frame(True, (4, 6, 70), 3)
    ref = np.concatenate([_reference(True, q, wa, ca), _reference(True, q, wb, cb)], axis=2)
    img = _noisy_image(prog, q, 3)
    model = run_model(prog, img)
    assert np.array_equal(prog.read_output(model), ref)
    r = _run_rtl(prog, cfg, img, STALL, 3)
    assert np.array_equal(prog.read_output(r.dram), ref)
    assert r.dram == bytes(model)
