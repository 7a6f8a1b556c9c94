"""The hardware parts of the whole-body model besides the three encoders: BoxNet and the heads' convolutions,
with a float mode and a frozen hardware mode (docs/numerics.md), exported to QONNX by
``binaryhpe.train.wholebody.export_wholebody``.

A part is built from a ``WholeBodyModel`` (its trained or random weights, deep-copied): in float mode it
computes exactly what ``WholeBodyModel.forward`` computes for those tensors; ``to_hardware`` freezes it like
an encoder. Each part has one input (an encoder's output feature, X format: a ``Quant`` at the input) and one
output (a channel concat, X format):

- ``BoxNetPart``: F (body feature) -> concat(F, body position heatmap) -> the three Deconv + BN + activation
  layers -> concat(the last activation, the box-centre logits). The body position net's 1x1 conv is
  recomputed on F (BoxNet reads its heatmap).
- ``BodyHeadsPart``: F -> concat(body position heatmap, body rotation net's ``body_conv``).
- ``HandHeadsPart``: one hand crop's feature -> concat(hand position heatmap, ``hand_conv``, the body rotation
  net's ``lhand_conv``, ``rhand_conv``). The model applies ``lhand_conv`` to the left hand's feature flipped
  back; a 1x1 conv commutes with the flip, so the host flips that output slice of the mirrored crop.

Hardware module kinds (``HwModule``):
- ``HwConv``: a full-precision Conv2d / ConvTranspose2d (bias optional): fixed-point weights
  (``fixed_weight(nc.fxp_weight_bits)``), the input an A tensor (a Hardtanh output) or an X tensor
  requantized to H (``Q(head_bits, head_frac)``, floor + saturate) so that the sum fits a 32-bit accumulator
  at paper scale; the sum to X; the bias as a separate Add of an X constant (the compiler refuses Conv bias).
- ``HwBinaryDeconv``: ``BinaryDeconv``: BipolarQuant of the input, binary weights (``BinaryWeightUnit``), alpha
  per output channel as a Cm constant Mul after, then X (as ``LCRConv``).
- ``FixedBN`` (BatchNorm), ``PreAct`` (Hardtanh = the A quantizer), ReLU (``nn.ReLU``, no quantizer: the X
  grid is kept), ``ToX`` (an A tensor requantized to X, exact: channel concats need one format).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn
from brevitas.nn import QuantConv2d, QuantConvTranspose2d, QuantIdentity

from binaryhpe import BinaryHPEError
from binaryhpe.train.boxnet import BinaryDeconv
from binaryhpe.train.config import NumericsConfig
from binaryhpe.train.layers import FixedBN, HwModule, LCRModule, PreAct, _buf, _chan, quant_add, quant_mult
from binaryhpe.train.quant import ApproxSignAct, BinaryWeightUnit, fixed_act, fixed_weight

# ----------------------------------------------------------------------------------------------------------
# module kinds


def _geom(m: nn.Module) -> dict:
    if isinstance(m, nn.ConvTranspose2d):
        if any(o != 0 for o in m.output_padding) or m.groups != 1 or any(d != 1 for d in m.dilation):
            raise BinaryHPEError(f"{type(m).__name__}: output_padding, groups and dilation are not mapped")
    elif m.groups != 1 or any(d != 1 for d in m.dilation):
        raise BinaryHPEError(f"{type(m).__name__}: groups and dilation are not mapped")
    return {"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding}


def _freeze_bias(mod: nn.Module, bias, nc: NumericsConfig) -> None:
    """``mod.bias_q``: a layer's bias as an X-format constant (None without a bias)."""
    if bias is not None:
        mod.register_buffer("bias_q", _chan(_buf(quant_add(bias.detach().double().numpy(), nc), nc.res_frac)))
    else:
        mod.bias_q = None


def _add_bias(mod: nn.Module, y):
    """``qX(y + bias_q)`` when ``mod`` has a bias (hardware mode: a separate Add, the compiler refuses Conv bias)."""
    return y if mod.bias_q is None else mod.qx(y + mod.bias_q)


class HwConv(HwModule):
    """A full-precision conv or deconv of the heads (``conv`` is used as is in float mode).

    ``in_fmt``: "A" (the input is a Hardtanh output, already A in hardware mode) or "X" (requantized to H).
    Hardware mode: ``y = qX(conv_q(x)); y = qX(y + bias_q)`` (the bias step only when the conv has a bias).
    """

    def __init__(self, conv: nn.Module, in_fmt: str):
        super().__init__()
        if not isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) or isinstance(conv, BinaryDeconv):
            raise BinaryHPEError(f"HwConv takes a full-precision Conv2d / ConvTranspose2d, not {type(conv).__name__}")
        if in_fmt not in ("A", "X"):
            raise BinaryHPEError(f"HwConv: in_fmt = {in_fmt!r}: expected 'A' or 'X'")
        self.conv, self.in_fmt = conv, in_fmt
        self.transposed = isinstance(conv, nn.ConvTranspose2d)

    def freeze(self, nc: NumericsConfig) -> None:
        self.q_in = (QuantIdentity(act_quant=fixed_act(nc.head_bits, nc.head_frac), return_quant_tensor=False)
                     if self.in_fmt == "X" else None)
        cls = QuantConvTranspose2d if self.transposed else QuantConv2d
        c = self.conv
        cin, cout = c.in_channels, c.out_channels
        self.conv_hw = cls(cin, cout, bias=False, weight_quant=fixed_weight(nc.fxp_weight_bits), **_geom(c))
        with torch.no_grad():
            self.conv_hw.weight.copy_(c.weight)
        _freeze_bias(self, c.bias, nc)
        self.qx = self._qx(nc)
        self.hw = True

    def forward(self, x):
        if not self.hw:
            return self.conv(x)
        if self.q_in is not None:
            x = self.q_in(x)
        return _add_bias(self, self.qx(self.conv_hw(x)))


class HwBinaryDeconv(HwModule):
    """``BinaryDeconv`` (used as is in float mode); hardware mode: ``qX(deconv_b(sign(x)) * alpha_q)``
    (+ an X bias when it has one), alpha = mean abs(w) per output channel (eq. 4) as a Cm constant."""

    def __init__(self, deconv: BinaryDeconv):
        super().__init__()
        if not isinstance(deconv, BinaryDeconv):
            raise BinaryHPEError(f"HwBinaryDeconv takes a BinaryDeconv, not {type(deconv).__name__}")
        self.deconv = deconv

    def freeze(self, nc: NumericsConfig) -> None:
        d = self.deconv
        w = d.weight.detach().double().numpy()
        alpha = np.abs(w).mean(axis=(0, 2, 3))  # (Cout,): weights are (Cin, Cout, k, k)
        m, e = quant_mult(alpha, nc.const_bits)
        self.register_buffer("alpha_q", _chan(_buf(m, e)))
        self.sign = QuantIdentity(act_quant=ApproxSignAct, return_quant_tensor=False)
        self.deconv_hw = QuantConvTranspose2d(d.in_channels, d.out_channels, bias=False,
                                              weight_quant=BinaryWeightUnit, **_geom(d))
        with torch.no_grad():
            self.deconv_hw.weight.copy_(torch.where(d.weight >= 0, 1.0, -1.0))
        _freeze_bias(self, d.bias, nc)
        self.qx = self._qx(nc)
        self.hw = True

    def forward(self, x):
        if not self.hw:
            return self.deconv(x)
        return _add_bias(self, self.qx(self.deconv_hw(self.sign(x)) * self.alpha_q))


class ToX(HwModule):
    """Identity in float mode; in hardware mode an A tensor requantized to X (exact: A is on the X grid)."""

    def freeze(self, nc: NumericsConfig) -> None:
        self.qx = self._qx(nc)
        self.hw = True

    def forward(self, x):
        return self.qx(x) if self.hw else x


class InputX(ToX):
    """The part's input quantizer: an encoder output is an X tensor (the last BiDRB's ``qX``)."""


def _fixed_bn(bn: nn.BatchNorm2d) -> FixedBN:
    fb = FixedBN(bn.num_features)
    fb.bn.load_state_dict(bn.state_dict())
    fb.bn.eps, fb.bn.momentum, fb.bn.affine = bn.eps, bn.momentum, bn.affine
    return fb.eval()


def hw_sequence(layers, fmt: str, where: str) -> tuple[nn.Sequential, str]:
    """Map a float ``nn.Sequential`` (convs, BN, Hardtanh, ReLU, BiDRN's PreAct / LCRModule) onto hardware
    module kinds; ``fmt`` is the input's hardware format ("X" or "A"). Returns the sequence and the output's
    format. Raises one line naming the layer that has no hardware mode."""
    out = []
    for i, m in enumerate(layers):
        m = copy.deepcopy(m)
        if isinstance(m, BinaryDeconv):
            out.append(HwBinaryDeconv(m))
            fmt = "X"
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and not getattr(m, "binary_weights", False) \
                and type(m) in (nn.Conv2d, nn.ConvTranspose2d):
            out.append(HwConv(m, fmt))
            fmt = "X"
        elif type(m) is nn.BatchNorm2d:
            out.append(_fixed_bn(m))
            fmt = "X"
        elif type(m) is nn.Hardtanh:
            if m.min_val != -1.0 or m.max_val != 1.0:
                raise BinaryHPEError(f"{where}[{i}]: Hardtanh({m.min_val}, {m.max_val}) is not the A quantizer")
            out.append(PreAct())
            fmt = "A"
        elif isinstance(m, PreAct):
            out.append(m)
            fmt = "A"
        elif type(m) is nn.ReLU:
            out.append(nn.ReLU())
        elif isinstance(m, LCRModule):
            if fmt != "A":
                raise BinaryHPEError(f"{where}[{i}]: an LCR module needs a Hardtanh (A) input")
            out.append(m)
            fmt = "X"
        else:
            raise BinaryHPEError(f"{where}[{i}]: {type(m).__name__} has no hardware mode (docs/numerics.md)")
    return nn.Sequential(*out), fmt


def _as_x(seq: nn.Sequential, fmt: str) -> nn.Sequential:
    return nn.Sequential(*seq, ToX()) if fmt == "A" else seq


# ----------------------------------------------------------------------------------------------------------
# the parts


class _Part(nn.Module):
    """A hardware part: ``channels`` lists the output's [name, start, count] slices."""

    name = ""
    runs_per_frame = 1

    def __init__(self, in_channels: int, in_size: tuple):
        super().__init__()
        self.in_channels, self.in_size = in_channels, tuple(in_size)
        self.q_in = InputX()
        self.channels: list = []

    def _set_channels(self, named: list) -> None:
        start, self.channels = 0, []
        for n, c in named:
            self.channels.append([n, start, int(c)])
            start += int(c)

    @property
    def out_channels(self) -> int:
        return sum(c for _, _, c in self.channels)

    def input_shape(self) -> list:
        return [1, self.in_channels, *self.in_size]

    def output_shape(self) -> list:
        raise NotImplementedError  # pragma: no cover


class BoxNetPart(_Part):
    """F (1, Cb, h, w) -> (1, Cbox + 3, 8h, 8w): concat(last Deconv activation, box-centre logits)."""

    name = "boxnet"

    def __init__(self, model):
        cfg = model.cfg
        cb = model.body_encoder.out_channels
        h, w = _feat_size(model.body_encoder, cfg.body_size)
        super().__init__(cb, (h, w))
        self.pos_conv = HwConv(copy.deepcopy(model.body_position_net.conv), "X")
        self.deconv, fmt = hw_sequence(model.boxnet.deconv, "X", "boxnet.deconv")
        self.feat_x = ToX() if fmt == "A" else nn.Identity()
        self.bbox_center = HwConv(copy.deepcopy(model.boxnet.bbox_center), fmt)
        self.up = 2 ** sum(isinstance(m, (HwBinaryDeconv, HwConv)) for m in self.deconv)
        self._set_channels([("features", model.boxnet.bbox_center.in_channels), ("centre_logits", 3)])

    def output_shape(self) -> list:
        return [1, self.out_channels, self.in_size[0] * self.up, self.in_size[1] * self.up]

    def forward(self, f):
        f = self.q_in(f)
        x = self.deconv(torch.cat([f, self.pos_conv(f)], dim=1))
        return torch.cat([self.feat_x(x), self.bbox_center(x)], dim=1)


class BodyHeadsPart(_Part):
    """F -> concat(body position heatmap (J*D), body rotation net's body_conv (head_channels)) at h x w."""

    name = "body_heads"

    def __init__(self, model):
        cfg = model.cfg
        super().__init__(model.body_encoder.out_channels, _feat_size(model.body_encoder, cfg.body_size))
        self.pos_conv = HwConv(copy.deepcopy(model.body_position_net.conv), "X")
        self.body_conv = _as_x(*hw_sequence(model.body_rotation_net.body_conv, "X", "body_rotation_net.body_conv"))
        self._set_channels([("body_heatmap", self.pos_conv.conv.out_channels), ("body_conv", cfg.head_channels)])

    def output_shape(self) -> list:
        return [1, self.out_channels, *self.in_size]

    def forward(self, f):
        f = self.q_in(f)
        return torch.cat([self.pos_conv(f), self.body_conv(f)], dim=1)


class HandHeadsPart(_Part):
    """One hand crop's feature -> concat(hand position heatmap, hand_conv, lhand_conv, rhand_conv)."""

    name = "hand_heads"
    runs_per_frame = 2

    def __init__(self, model):
        cfg = model.cfg
        super().__init__(model.hand_encoder.out_channels, _feat_size(model.hand_encoder, cfg.hand_size))
        self.pos_conv = HwConv(copy.deepcopy(model.hand_position_net.conv), "X")
        self.convs = nn.ModuleList()
        named = [("hand_heatmap", self.pos_conv.conv.out_channels)]
        for key, mod in (("hand_conv", model.hand_rotation_net.hand_conv),
                         ("lhand_conv", model.body_rotation_net.lhand_conv),
                         ("rhand_conv", model.body_rotation_net.rhand_conv)):
            self.convs.append(_as_x(*hw_sequence(mod, "X", key)))
            named.append((key, cfg.head_channels))
        self._set_channels(named)

    def output_shape(self) -> list:
        return [1, self.out_channels, *self.in_size]

    def forward(self, f):
        f = self.q_in(f)
        return torch.cat([self.pos_conv(f)] + [c(f) for c in self.convs], dim=1)


def _feat_size(enc, size) -> tuple:
    """The encoder's output (h, w) for an input of ``size`` (a BiDRN or a baseline backbone)."""
    if hasattr(enc, "output_shape"):
        return tuple(enc.output_shape()[1:])
    f = enc.cfg.downsampling()
    return (size[0] // f, size[1] // f)


PARTS = {"boxnet": BoxNetPart, "body_heads": BodyHeadsPart, "hand_heads": HandHeadsPart}


def build_part(model, name: str) -> _Part:
    """The part ``name`` (boxnet, body_heads, hand_heads) of a ``WholeBodyModel``, in float mode (a copy)."""
    if name not in PARTS:
        raise BinaryHPEError(f"unknown hardware part {name!r} (known: {', '.join(PARTS)})")
    return PARTS[name](model).eval()


def part_numerics(model, name: str) -> NumericsConfig:
    """The numerics of the encoder that feeds the part (its X format is the part's input format)."""
    enc = model.hand_encoder if name == "hand_heads" else model.body_encoder
    return getattr(getattr(enc, "cfg", None), "numerics", None) or NumericsConfig()


def part_example(part: _Part, seed: int = 0) -> torch.Tensor:
    """A seeded input for the part: normal values of scale 2 (the spread of a random BiDRN's output), so that
    the X quantizer at the input and the H requantizers see values on both sides of their ranges' ends."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(part.input_shape(), generator=g) * 2


def export_part(model, name: str, out_dir, check: bool = True, verbose: bool = False) -> dict:
    """Freeze a copy of the part ``name`` of ``model`` to hardware mode and write ``OUT_DIR/<name>.onnx``.

    With ``check``, qonnx's execution must equal the hardware-mode part on every element (raises
    BinaryHPEError naming the file otherwise). Returns the manifest entry of the part."""
    import pathlib
    import time

    from binaryhpe.train.export import export_qonnx, require_exact_export
    from binaryhpe.train.hardware import to_hardware

    part = build_part(model, name)
    nc = part_numerics(model, name)
    hw = to_hardware(part, nc)
    x = part_example(part)
    t0 = time.time()
    path = export_qonnx(hw, x, pathlib.Path(out_dir) / f"{name}.onnx", verbose=verbose)
    entry = {"path": str(path), "input_shape": part.input_shape(), "output_shape": part.output_shape(),
             "output_channels": [list(c) for c in part.channels], "runs_per_frame": part.runs_per_frame,
             "input_format": {"bits": nc.res_bits, "frac": nc.res_frac},
             "output_format": {"bits": nc.res_bits, "frac": nc.res_frac},
             "export_s": round(time.time() - t0, 2)}
    if check:
        entry["check"] = require_exact_export(hw, path, x, f"part {name}")
    return entry


__all__ = ["BodyHeadsPart", "BoxNetPart", "HandHeadsPart", "HwBinaryDeconv", "HwConv", "PARTS", "ToX",
           "build_part", "export_part", "hw_sequence", "part_example", "part_numerics"]
