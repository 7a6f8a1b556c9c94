"""Transposed convolutions (BoxNet's Deconvs): QONNX ConvTranspose -> polyphase convolutions + PhaseShuffle in the
hardware graph, exact against two independent executions (the exact reference's direct scatter and PyTorch's
conv_transpose2d in float64); what the hardware cannot take is refused in one line."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from binaryhpe import BinaryHPEError
from binaryhpe.compile.kinds.plumbing import PhaseShuffle
from binaryhpe.compile.lower import LoweringError, deconv_phases, load_qonnx, lower
from binaryhpe.compile.passes import optimize
from binaryhpe.compile.reference import _conv_transpose, compare_with_onnx


@pytest.mark.parametrize("k,s,p", [(4, 2, 1), (2, 2, 0), (6, 2, 2), (3, 3, 0), (8, 4, 2)])
def test_phases_equal_a_brute_force_transposed_convolution(k, s, p):
    """1-D: out[o] = sum over (i, kk) with i*s - p + kk = o; the phases' taps must give the same sums."""
    rng = np.random.default_rng(k * 10 + s)
    n = 7
    x, w = rng.integers(-9, 9, n), rng.integers(-9, 9, k)
    full = np.zeros(n * s + k, dtype=np.int64)
    for i in range(n):
        for kk in range(k):
            full[i * s + kk] += x[i] * w[kk]
    ref = full[p:p + n * s]
    got = np.zeros(n * s, dtype=np.int64)
    for r, (pad_r, taps) in enumerate(deconv_phases(k, s, p)):
        for m in range(n):
            for t, kk in enumerate(taps):
                i = m - pad_r + t
                if 0 <= i < n:
                    got[s * m + r] += x[i] * w[kk]
    assert np.array_equal(got, ref)


def test_reference_scatter_equals_torch():
    rng = np.random.default_rng(0)
    x = rng.integers(-5, 5, (1, 3, 4, 5)).astype(np.float64)
    w = rng.integers(-3, 3, (3, 2, 4, 4)).astype(np.float64)
    ref = F.conv_transpose2d(torch.tensor(x), torch.tensor(w), stride=2, padding=1).numpy()
    got = _conv_transpose(x, w, None, {"strides": [2, 2], "pads": [1, 1, 1, 1]})
    assert np.array_equal(got, ref)


def _Deconv(binary: bool, cin=6, cout=5):
    """input quantizer -> [sign] -> ConvTranspose(4, 2, 1) -> per-channel Mul -> requantizer (BoxNet's pattern)."""
    from deconv_models import DeconvNet

    return DeconvNet(binary, cin, cout, out_bits=16, scales=[0.5, 0.25, 1.5, -0.75, 2.0])


@pytest.fixture(scope="module", params=["binary", "fixed"])
def deconv_qonnx(request, tmp_path_factory):
    from binaryhpe.train.export import export_qonnx

    torch.manual_seed(3)
    net = _Deconv(request.param == "binary").eval()
    x = torch.randn(1, 6, 5, 7)
    path = export_qonnx(net, x, tmp_path_factory.mktemp("deconv") / f"{request.param}.onnx")
    return request.param, net, path


def _frames(shape):
    rng = np.random.default_rng(7)
    return [rng.normal(0, 3, shape).astype(np.float32), np.ones(shape, np.float32), -np.ones(shape, np.float32),
            np.full(shape, 100.0, np.float32), np.full(shape, -100.0, np.float32)]


def test_deconv_graph_is_exact_before_and_after_passes(deconv_qonnx):
    kind, net, path = deconv_qonnx
    mw = load_qonnx(path)
    g = lower(mw, source=path.name)
    assert ("XnorMvu" if kind == "binary" else "FxpMvu") in {type(lay).__name__ for lay in g.layers}
    sh = next(lay for lay in g.layers if isinstance(lay, PhaseShuffle))
    assert (sh.s, sh.off, sh.oh, sh.ow, sh.c) == (2, (0, 1), 10, 14, 5)
    for x in _frames((1, 6, 5, 7)):
        r = compare_with_onnx(g, mw, x)
        assert r["output_exact"] and r["first_mismatch"] is None, r["first_mismatch"]
    optimize(g)
    # the Mul and the requantizer moved in front of the shuffle and fused into the convolution's epilogue
    order = [type(lay).__name__ for lay in g.layers if type(lay).__name__ not in ("Dwc", "Fifo", "Fork")]
    assert order[-3:] == ["FxpMvu" if kind == "fixed" else "XnorMvu", "Epilogue", "PhaseShuffle"], order
    for x in _frames((1, 6, 5, 7)):
        r = compare_with_onnx(g, mw, x)
        assert r["output_exact"], r["first_mismatch"]
        # and against PyTorch (Brevitas' own execution of the same module), float32 holds these widths
        assert r["float32_exact"]
        xq = torch.tensor(x)
        want = net(xq).detach().numpy()[0].transpose(1, 2, 0)
        got = g.tensors[g.output].fmt.to_real(r["env"][g.output])
        assert np.array_equal(got, want)


def test_dataflow_refuses_phase_shuffle_in_one_line(deconv_qonnx, tmp_path):
    from binaryhpe.compile.flow import build

    _, _, path = deconv_qonnx
    with pytest.raises(BinaryHPEError) as e:
        build(str(path), tmp_path / "out")
    msg = str(e.value)
    assert "\n" not in msg and "PhaseShuffle" in msg and "--arch engine" in msg and "_shuffle" in msg


def test_unsupported_geometry_is_refused_naming_the_node(tmp_path):
    from brevitas.nn import QuantConvTranspose2d, QuantIdentity

    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.quant import fixed_act, fixed_weight

    net = nn.Sequential(QuantIdentity(act_quant=fixed_act(8, 4), return_quant_tensor=False),
                        QuantConvTranspose2d(3, 2, 3, stride=2, padding=1, bias=False,
                                             weight_quant=fixed_weight(6))).eval()
    path = export_qonnx(net, torch.randn(1, 3, 4, 4), tmp_path / "k3.onnx")
    with pytest.raises(LoweringError) as e:
        lower(load_qonnx(path))
    assert "ConvTranspose" in str(e.value) and "kernel 3, stride 2, pad 1" in str(e.value)


def test_c_backend_runs_the_deconv_bit_exact_on_host_and_qemu(deconv_qonnx, tmp_path):
    """The C backend's PhaseShuffle (a gather) and the rest of the graph against the exact reference."""
    from binaryhpe.compile.flow import build_mcu_target

    _, _, path = deconv_qonnx
    rep = build_mcu_target(str(path), tmp_path / "mcu", "mcu:stm32h7", True, 0)
    assert rep["bit_exact_host"] is True and rep["bit_exact_target"] is True and rep["mismatches"] == {"host": 0, "target": 0}
