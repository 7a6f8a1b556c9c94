"""Brevitas layers as users write them, one small network per layer kind, exported with Brevitas'
``export_qonnx`` and lowered (compile/lower.py, compile/lower_quant.py): on random frames the compiler's integer
reference (``HwGraph.execute``) equals the exact reference of the QONNX graph on every tensor
(``compare_with_onnx``: quantizer outputs exactly, float-scaled sums as integers times their scale). The stock
quantizers have float scales and ROUND rounding; BatchNorm statistics are random. One network also runs through
``binaryhpe build --sim`` (Verilator, bit-exact against the same reference).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from brevitas.nn import QuantConv2d, QuantHardTanh, QuantIdentity, QuantLinear, QuantReLU, TruncAvgPool2d
from brevitas.quant import (Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int8WeightPerTensorFloat, Int32Bias,
                            Uint8ActPerTensorFloat)
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from torch import nn

import user_brevitas_models as U
from binaryhpe.compile.kinds.elementwise import MultiThreshold, Requant, Threshold
from binaryhpe.compile.lower import load_qonnx, lower
from binaryhpe.compile.partition import partition_host
from binaryhpe.compile.reference import compare_with_onnx


def _calibrated(model: nn.Module, shape, seed: int = 0) -> nn.Module:
    """A few training-mode passes (statistics-based activation scales leave their initial values), then random
    BatchNorm statistics with a decreasing channel in every BatchNorm."""
    return U.randomize_bn(U.calibrate(model, shape, seed), seed, negative_first=True)


def _i8():
    return QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)


class ConvBiasBnRelu(nn.Module):
    """QuantConv2d with per-channel float weight scales and an Int32 bias, BatchNorm, QuantReLU (4-bit)."""

    def __init__(self):
        super().__init__()
        self.inp = _i8()
        self.conv = QuantConv2d(3, 8, 3, padding=1, bias=True, weight_quant=Int8WeightPerChannelFloat,
                                bias_quant=Int32Bias, return_quant_tensor=False)
        self.bn = nn.BatchNorm2d(8)
        self.act = QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=4, return_quant_tensor=True)
        self.conv2 = QuantConv2d(8, 4, 3, bias=False, weight_quant=Int8WeightPerTensorFloat,
                                 return_quant_tensor=False)
        self.out = _i8()

    def forward(self, x):
        return self.out(self.conv2(self.act(self.bn(self.conv(self.inp(x))))))


class FcFloatBiasHardTanh(nn.Module):
    """QuantLinear with a float (unquantized) bias, BatchNorm1d, QuantHardTanh (a Clip then a Quant), 8 bits."""

    def __init__(self):
        super().__init__()
        self.inp = _i8()
        self.fc = QuantLinear(48, 16, bias=True, weight_quant=Int8WeightPerTensorFloat, return_quant_tensor=False)
        self.bn = nn.BatchNorm1d(16)
        self.act = QuantHardTanh(act_quant=Int8ActPerTensorFloat, max_val=1.0, min_val=-1.0,
                                 return_quant_tensor=True)
        self.fc2 = QuantLinear(16, 8, bias=False, weight_quant=Int8WeightPerTensorFloat, return_quant_tensor=False)
        self.out = _i8()

    def forward(self, x):
        return self.out(self.fc2(self.act(self.bn(self.fc(self.inp(x).flatten(1))))))


class PoolsAndPrelu(nn.Module):
    """Int8 input, a conv, BatchNorm + PReLU + a signed 4-bit quantizer, max pool, average pool (3x3: a scale of
    1/9), TruncAvgPool2d, flatten, a QuantLinear."""

    def __init__(self):
        super().__init__()
        self.inp = _i8()
        self.conv = QuantConv2d(3, 6, 3, padding=1, bias=False, weight_quant=Int8WeightPerChannelFloat,
                                return_quant_tensor=False)
        self.bn = nn.BatchNorm2d(6)
        self.prelu = nn.PReLU(6, init=0.2)
        self.q = QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=4, return_quant_tensor=True)
        self.mp = nn.MaxPool2d(2)
        self.ap = nn.AvgPool2d(3)
        self.q2 = _i8()
        self.tap = TruncAvgPool2d(2, stride=2, bit_width=8, float_to_int_impl_type="round")
        self.fc = QuantLinear(6, 5, bias=False, weight_quant=Int8WeightPerTensorFloat, return_quant_tensor=False)

    def forward(self, x):
        x = self.mp(self.q(self.prelu(self.bn(self.conv(self.inp(x))))))
        x = self.q2(self.ap(x))
        return self.fc(self.tap(x).flatten(1))


class ResidualConcat(nn.Module):
    """Binary convs (BN + sign), a residual add of two quantizers with different float scales, a concatenation
    of tensors with different scales, a quantizer after each."""

    def __init__(self):
        super().__init__()
        self.inp = _i8()
        self.stem = QuantConv2d(3, 8, 3, padding=1, bias=False, weight_quant=Int8WeightPerTensorFloat,
                                return_quant_tensor=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.sign = QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
        self.conv = QuantConv2d(8, 8, 3, padding=1, bias=False, weight_quant=SignedBinaryWeightPerTensorConst,
                                return_quant_tensor=False)
        self.bn1 = nn.BatchNorm2d(8)
        # the adds and the concatenation read float tensors (Brevitas refuses to add QuantTensors whose scales differ)
        self.qa = QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=False)
        self.qb = QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.join = QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=False)
        self.cat = _i8()

    def forward(self, x):
        s = self.stem(self.inp(x))
        a = self.qa(self.bn0(s))
        b = self.qb(self.bn1(self.conv(self.sign(self.bn2(s)))))
        j = self.join(a + b)
        return self.cat(torch.cat([a, j], dim=1))


NETS = {
    "conv_bias_bn_relu": (ConvBiasBnRelu, (1, 3, 8, 8)),
    "fc_float_bias_hardtanh": (FcFloatBiasHardTanh, (1, 3, 4, 4)),
    "pools_prelu_trunc": (PoolsAndPrelu, (1, 3, 12, 12)),
    "residual_concat": (ResidualConcat, (1, 3, 8, 8)),
}


def _export(name, tmp_path):
    from brevitas.export import export_qonnx

    make, shape = NETS[name]
    torch.manual_seed(0)
    model = _calibrated(make(), shape)
    path = tmp_path / f"{name}.onnx"
    export_qonnx(model, torch.randn(*shape), str(path))
    return path, shape


@pytest.mark.parametrize("name", list(NETS))
def test_brevitas_layers_lower_exactly(tmp_path, name):
    path, shape = _export(name, tmp_path)
    mw = load_qonnx(path)
    part = partition_host(mw)
    g = lower(part.hw)
    rng = np.random.default_rng(1)
    for i in range(3):
        x = (rng.standard_normal(shape) * (1.0 + i)).astype(np.float32)
        r = compare_with_onnx(g, part.hw, part.hw_frame(x))
        assert r["first_mismatch"] is None and r["output_exact"], (name, r["first_mismatch"])
        assert r["float64_exact"], (name, r["non_dyadic"])
    kinds = {type(lay) for lay in g.layers}
    if name == "conv_bias_bn_relu":  # BN + 4-bit QuantReLU: thresholds; the last 8-bit requantizer: multiply-shift
        assert MultiThreshold in kinds and Requant in kinds
    if name == "residual_concat":  # BN + sign: a Threshold; the scaled add and concat
        assert Threshold in kinds
        assert any(t.scale is not None and isinstance(t.scale, tuple) for t in g.tensors.values())  # the concat


def test_brevitas_network_simulates_bit_exact(tmp_path):
    """The conv + bias + BN + QuantReLU network through the CLI with --sim: RTL equals the exact reference."""
    path, _ = _export("conv_bias_bn_relu", tmp_path)
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "binaryhpe.cli", "build", str(path), "-o", str(out), "--sim"],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    rep = json.loads((out / "report.json").read_text())
    assert rep["bit_exact"] is True and rep["simulation"]["bit_exact"] is True, rep["simulation"]
