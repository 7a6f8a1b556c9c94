"""BNN-PYNQ-style binary networks written in plain Brevitas compile and simulate bit-exactly.

(1) export -> lower -> optimize -> compare_with_onnx is exact on every tensor, for several models, seeds and
    inputs (random, all +1, all -1, saturating);
(2) the whole-network RTL (Verilator) equals the integer reference and the QONNX output element for element,
    with and without random stalls (one build per simulated model, session-scoped);
(3) what cannot be mapped gives one error naming the node, its op type and the reason.
"""

import numpy as np
import pytest
import torch
from torch import nn

import bnn_pynq_models as M
from binaryhpe.compile.backends import unfused
from binaryhpe.compile.kinds.elementwise import Threshold
from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
from binaryhpe.compile.lower import LoweringError, load_qonnx, lower
from binaryhpe.compile.passes import optimize
from binaryhpe.compile.reference import compare_with_onnx, hw_input, nchw_to_hwc, onnx_context
from binaryhpe.train.export import check_export, export_qonnx

#: name -> (model kind, constructor arguments, input shape)
MODELS = {
    # CNV-like, 8-bit input (fixed-point first conv), Gemm with a bias, per-tensor output scale
    "cnv8": ("cnv", dict(fc_bias=True, out_scale=0.375), (1, 3, 16, 16)),
    # CNV-like, binary input, zero-padded convs (padding taps are masked), x.view(N, -1), plain MatMul head
    "cnv_bin_pad": ("cnv", dict(binary_input=True, pad=1, ch=(8, 8, 16), size=12, reshape=True), (1, 3, 12, 12)),
    # SFC/TFC-like MLPs
    "fc_bin": ("fc", dict(), (1, 1, 12, 12)),
    "fc8_bias": ("fc", dict(size=10, binary_input=False, fc_bias=True, hidden=(24, 16)), (1, 1, 10, 10)),
    # a non-square input: the first FC layer reads the input stream directly (no full-frame window)
    "fc_bin_rect": ("fc", dict(size=(6, 10), hidden=(16,)), (1, 1, 6, 10)),
}
SEEDS = (0, 1)


def _inputs(shape):
    """Random inputs of two seeds plus the extreme ones: all +1, all -1, saturating (|x| >> 1), zeros."""
    xs = {f"rand{s}": np.random.RandomState(s).rand(*shape).astype(np.float32) * 2 - 1 for s in (0, 1)}
    xs["ones"] = np.ones(shape, np.float32)
    xs["minus_ones"] = -np.ones(shape, np.float32)
    sgn = np.where(np.random.RandomState(7).rand(*shape) < 0.5, -1.0, 1.0)
    xs["saturating"] = (sgn * 8.0).astype(np.float32)
    xs["zeros"] = np.zeros(shape, np.float32)
    return xs


@pytest.fixture(scope="session")
def compiled(tmp_path_factory):
    """(name, seed) -> dict(model, path, mw, g): exported once per session, lowered and optimized."""
    root = tmp_path_factory.mktemp("bnn_pynq")
    cache = {}

    def get(name, seed):
        key = (name, seed)
        if key not in cache:
            kind, kw, shape = MODELS[name]
            model = M.build(kind, seed, **kw)
            x = torch.from_numpy(_inputs(shape)["rand0"])
            path = export_qonnx(model, x, root / f"{name}_{seed}.onnx", verbose=False)
            mw = load_qonnx(path)
            g = optimize(lower(mw))
            cache[key] = {"model": model, "path": path, "mw": mw, "g": g, "shape": shape}
        return cache[key]

    return get


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(MODELS))
def test_compare_with_onnx_exact(compiled, name, seed):
    c = compiled(name, seed)
    g, mw, model = c["g"], c["mw"], c["model"]
    ops = unfused(g).layers  # the Epilogues' operations as layers
    kinds = {type(lay).__name__ for lay in ops}
    assert any(isinstance(lay, Threshold) for lay in ops), kinds
    assert any(isinstance(lay, (XnorMvu, FxpMvu)) for lay in ops), kinds
    # the random BN stats include a negative scale (x <= T) in every BN layer
    assert all(np.any(lay.neg) for lay in ops if isinstance(lay, Threshold))
    tensors = elements = 0
    for label, x in _inputs(c["shape"]).items():
        r = compare_with_onnx(g, mw, x)
        assert r["first_mismatch"] is None, (label, r["first_mismatch"])
        assert r["output_exact"], label
        assert r["tensors_checked"] >= 4, r["tensors_checked"]
        tensors += r["tensors_checked"]
        elements += r["elements_checked"]
        # Brevitas itself agrees with the QONNX execution
        e = check_export(model, c["path"], torch.from_numpy(x))
        assert e["mismatches"] == 0, (label, e)
    print(f"{name} seed {seed}: {tensors} tensors, {elements} elements exact")


def test_threshold_cases(compiled):
    """Negative BN scales give '<=' thresholds; a zero BN scale gives a constant decision whose threshold lies
    beyond the accumulator range."""
    g = unfused(compiled("cnv8", 0)["g"])  # the Epilogues' operations as layers
    thr = [lay for lay in g.layers if isinstance(lay, Threshold)]
    assert len(thr) == 4
    beyond = 0
    for lay in thr:
        mvu = g.producer(lay.inputs[0])
        while not isinstance(mvu, (XnorMvu, FxpMvu)):
            mvu = g.producer(mvu.inputs[0])
        if isinstance(mvu, XnorMvu):
            beyond += int(np.sum((lay.thresholds < -mvu.n) | (lay.thresholds > mvu.n)))
    assert beyond >= 1


def test_fc_weights_permuted(compiled):
    """The first FC layer of the CNV reads the stream in (H, W, C) order: its columns are ONNX's (C, H, W)
    columns permuted, so a lowering that forgot the permutation would fail compare_with_onnx above; here,
    check the permutation directly against the exported weights."""
    c = compiled("cnv_bin_pad", 0)
    fc = next(lay for lay in c["g"].layers if isinstance(lay, XnorMvu) and lay.pixels == 1)
    w = c["model"].fc1.weight.detach().numpy()  # (cout, C*H*W)
    wb = np.where(w >= 0, 1, -1)
    ch, h, wd = 16, 6, 6
    perm = np.arange(ch * h * wd).reshape(ch, h, wd).transpose(1, 2, 0).reshape(-1)
    assert np.array_equal(fc.weights, wb[:, perm])


# ---------------------------------------------------------------------------------------------------------
# (2) whole-network RTL simulation

#: fc_bin_rect: an FC MVU reading the (input) stream directly, in_tmask tied to ones
RTL_MODELS = ["cnv8", "cnv_bin_pad", "fc_bin", "fc_bin_rect"]


@pytest.fixture(scope="session")
def rtl_builds(compiled, tmp_path_factory):
    from binaryhpe.compile.rtlgen import generate, rtl_library
    from binaryhpe.sim import netsim

    builds = {}

    def get(name):
        if name not in builds:
            c = compiled(name, 0)
            out = tmp_path_factory.mktemp(f"rtl_{name}")
            generate(c["g"], out)
            builds[name] = (out, netsim.build(out, rtl_library(), verbose=False))
        return builds[name]

    return get


@pytest.mark.parametrize("stall", [0.0, 0.3])
@pytest.mark.parametrize("name", RTL_MODELS)
def test_rtl_simulation_exact(compiled, rtl_builds, name, stall):
    from binaryhpe.sim import netsim

    c = compiled(name, 0)
    g, mw = c["g"], c["mw"]
    out_dir, exe = rtl_builds(name)
    xs = _inputs(c["shape"])
    frames, refs, onnx_out = [], [], []
    for x in xs.values():
        ctx = onnx_context(mw, x)
        xi = hw_input(g, ctx)
        frames.append(xi)
        refs.append(g.execute(xi, keep_all=False)[g.output])
        onnx_out.append(nchw_to_hwc(ctx[mw.graph.output[0].name]))
    r = netsim.simulate(g, exe, out_dir, frames, stall_in=stall, stall_out=stall, seed=3)
    assert len(r["outputs"]) == len(frames)
    fmt = g.tensors[g.output].fmt
    for label, got, ref, qo in zip(xs, r["outputs"], refs, onnx_out):
        assert np.array_equal(got, ref), (label, got.ravel(), ref.ravel())
        assert np.array_equal(fmt.to_real(got), qo), label
    print(f"{name} stall {stall}: {len(frames)} frames, {r['total_cycles']} cycles, "
          f"latency {r['latency_cycles']}, ii {r.get('ii_cycles')}")


# ---------------------------------------------------------------------------------------------------------
# (3) errors


def _export(model, shape, tmp_path, name):
    x = torch.rand(*shape) * 2 - 1
    return load_qonnx(export_qonnx(model.eval(), x, tmp_path / f"{name}.onnx", verbose=False))


class _WithSigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = M.build("fc", 0, hidden=(16,))

    def forward(self, x):
        return torch.sigmoid(self.net(x))


class _BnFeedsRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = M.QuantIdentity(act_quant=M.BinaryAct, return_quant_tensor=True)
        self.fc = M._bin_fc(36, 8)
        self.bn = nn.BatchNorm1d(8)

    def forward(self, x):
        return torch.relu(self.bn(self.fc(torch.flatten(self.inp(x), 1))))


class _FlattenFeedsAct(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = M.QuantIdentity(act_quant=M.InputQuant8, return_quant_tensor=True)
        self.act = M._bin_act()
        self.fc = M._bin_fc(36, 8)

    def forward(self, x):
        return self.fc(self.act(torch.flatten(self.inp(x), 1)))


def _one_error(mw) -> str:
    with pytest.raises(LoweringError) as ei:
        lower(mw)
    msg = str(ei.value)
    assert msg.count("cannot map node") == 1, msg
    return msg


def test_error_unsupported_op(tmp_path):
    mw = _export(_WithSigmoid(), (1, 1, 12, 12), tmp_path, "sigmoid")
    node = next(n for n in mw.graph.node if n.op_type == "Sigmoid")
    msg = _one_error(mw)
    assert repr(node.name) in msg and "op type Sigmoid" in msg and "no hardware layer kind" in msg, msg


def test_error_batchnorm_not_followed_by_sign(tmp_path):
    mw = _export(M.randomize_bn(_BnFeedsRelu(), 3), (1, 1, 6, 6), tmp_path, "bn_relu")
    node = next(n for n in mw.graph.node if n.op_type == "BatchNormalization")
    msg = _one_error(mw)
    assert repr(node.name) in msg and "op type BatchNormalization" in msg and "BipolarQuant" in msg, msg


def test_error_flatten_not_followed_by_fc(tmp_path):
    mw = _export(_FlattenFeedsAct(), (1, 1, 6, 6), tmp_path, "flat_act")
    node = next(n for n in mw.graph.node if n.op_type in ("Flatten", "Reshape"))
    msg = _one_error(mw)
    assert repr(node.name) in msg and f"op type {node.op_type}" in msg and "MatMul/Gemm" in msg, msg


def test_non_unit_weight_scale_is_a_tensor_scale(tmp_path):
    """Brevitas' default binary weight scale (0.1) makes the accumulator a float-scaled tensor: the hardware keeps
    the integer sum, the tensor carries the scale, and the exact reference (integers times scale) agrees."""
    from fractions import Fraction

    from brevitas.nn import QuantLinear
    from brevitas.quant.binary import SignedBinaryWeightPerTensorConst

    model = M.build("fc", 0, hidden=(16,))
    model.head = QuantLinear(16, 10, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)
    mw = _export(model, (1, 1, 12, 12), tmp_path, "scale01")
    g = lower(mw)
    assert g.tensors[g.output].scale == Fraction(float(np.float32(0.1)))
    for seed in range(3):
        x = np.random.default_rng(seed).uniform(-1, 1, (1, 1, 12, 12)).astype(np.float32)
        r = compare_with_onnx(g, mw, x)
        assert r["first_mismatch"] is None and r["output_exact"] and r["float64_exact"], r["first_mismatch"]


