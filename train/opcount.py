"""Params and OPs by the paper's convention (Section 4.1), counted from a model's structure.

Params = Params_b / 32 + Params_f,   OPs = OPs_b / 64 + OPs_f   (docs/params-ops.md has the convention).

The counter runs one forward pass with forward hooks on the leaf layers that multiply-accumulate
(``Conv2d``, ``ConvTranspose2d``, ``Linear``, Brevitas ``QuantConv2d`` included) and classifies each as
binary or full precision:
- binary: a Brevitas layer whose weight quantizer is enabled with bit width 1 (the BiDRN convs), or a layer
  carrying the marker ``binary_weights = True`` (the plain-binarized baselines' convs and the binarized
  BoxNet layers of ``binaryhpe.train.hand4whole``);
- full precision: everything else.
Every other parameter (BatchNorm weight/bias, RPReLU gamma/zeta/beta, learnable thresholds, layer biases) is
a full-precision parameter. Only the multiply-accumulates of the conv / deconv / linear layers are OPs
(one MAC = one operation); BatchNorm, activations, residual adds and pooling are not counted.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from binaryhpe import BinaryHPEError

_MAC_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


@dataclass(frozen=True)
class Convention:
    """How OPs are counted (the parameter convention has no choices left, see docs/params-ops.md)."""

    flops_per_mac: int = 1  # 1: OPs are multiply-accumulates; 2: FLOPs = 2 x MACs
    hands: int = 2  # hand crops per person through the hand encoder / hand heads (Hand4Whole batches both)
    deconv: str = "input"  # "input": MACs = Cin Cout K^2 H_in W_in (exact); "output": Cin Cout K^2 H_out W_out


PAPER = Convention()


def is_binary(m: nn.Module) -> bool:
    """Binary weights: the ``binary_weights`` marker, or an enabled Brevitas weight quantizer of 1 bit."""
    if getattr(m, "binary_weights", False):
        return True
    wq = getattr(m, "weight_quant", None)
    if wq is None or not getattr(wq, "is_quant_enabled", False):
        return False
    from brevitas.core.quant.binary import BinaryQuant, ClampedBinaryQuant

    if isinstance(getattr(wq, "tensor_quant", None), (BinaryQuant, ClampedBinaryQuant)):
        return True
    try:
        return int(wq.bit_width()) == 1
    except Exception:  # meta tensors, quantizers without a bit width
        return False


@contextlib.contextmanager
def _shape_only_brevitas():
    """While tracing, Brevitas convs run as plain float convs and the shape-preserving per-channel modules
    (quantizers, BatchNorm, RPReLU, Hardtanh) as identities: the shapes, all the counter needs, are the
    same, and the trace is many times faster than running the quantizers."""
    from brevitas.nn import QuantConv2d, QuantIdentity

    from binaryhpe.train.layers import FixedBN, PreAct, RPReLU

    ident = lambda self, x: x  # noqa: E731 - shape-preserving, no multiply-accumulates
    patches = {QuantConv2d: lambda self, x: F.conv2d(x, self.weight, self.bias, self.stride, self.padding,
                                                     self.dilation, self.groups),
               QuantIdentity: ident, FixedBN: ident, RPReLU: ident, PreAct: ident, nn.BatchNorm2d: ident}
    saved = {cls: cls.__dict__.get("forward") for cls in patches}
    try:
        for cls, fn in patches.items():
            cls.forward = fn
        yield
    finally:
        for cls, fn in saved.items():
            if fn is None:
                del cls.forward  # inherited
            else:
                cls.forward = fn


@dataclass
class Layer:
    name: str
    kind: str  # conv / deconv / linear
    binary: bool
    params: int  # weight elements (binary when ``binary``)
    bias: int  # bias elements (always full precision)
    macs: int  # exact multiply-accumulates for the batch the forward saw
    macs_out: int  # transposed convs: Cin Cout K^2 over the output positions (tools that treat them as convs)


@dataclass
class Count:
    """Binary / full-precision totals of one part of the model."""

    params_b: int = 0
    params_f: int = 0
    ops_b: float = 0.0
    ops_f: float = 0.0

    @property
    def params(self) -> float:
        return self.params_b / 32 + self.params_f

    @property
    def ops(self) -> float:
        return self.ops_b / 64 + self.ops_f

    def add(self, other: "Count") -> None:
        self.params_b += other.params_b
        self.params_f += other.params_f
        self.ops_b += other.ops_b
        self.ops_f += other.ops_f

    def as_dict(self) -> dict:
        return {"params_m": self.params / 1e6, "ops_g": self.ops / 1e9, "params_b": self.params_b,
                "params_f": self.params_f, "ops_b": self.ops_b, "ops_f": self.ops_f}


@dataclass
class Report:
    parts: dict = field(default_factory=dict)  # top-level module name -> Count
    layers: list = field(default_factory=list)

    @property
    def total(self) -> Count:
        t = Count()
        for c in self.parts.values():
            t.add(c)
        return t

    @property
    def params_m(self) -> float:
        return self.total.params / 1e6

    @property
    def ops_g(self) -> float:
        return self.total.ops / 1e9


def trace_layers(model: nn.Module, inputs: tuple, mac_layers: list | None = None) -> list:
    """One forward pass; every conv / deconv / linear call as a ``Layer`` (a layer called twice appears twice)."""
    layers, hooks = [], []
    if mac_layers is None:
        mac_layers = [(n, m) for n, m in model.named_modules() if isinstance(m, _MAC_LAYERS)]

    def hook(name):
        def fn(m, inp, out):
            x = inp[0]
            if isinstance(m, nn.Linear):
                kind, macs = "linear", x.numel() // m.in_features * m.in_features * m.out_features
                macs_out = macs
            else:
                k = m.weight[0, 0].numel()
                if isinstance(m, nn.ConvTranspose2d):
                    kind = "deconv"
                    macs = x.numel() * (m.out_channels // m.groups) * k
                    macs_out = out.numel() * (m.in_channels // m.groups) * k
                else:
                    kind = "conv"
                    macs = macs_out = out.numel() * (m.in_channels // m.groups) * k
            layers.append(Layer(name, kind, is_binary(m), m.weight.numel(),
                                0 if m.bias is None else m.bias.numel(), int(macs), int(macs_out)))
        return fn

    for name, m in mac_layers:
        hooks.append(m.register_forward_hook(hook(name)))
    # eval mode keeps BatchNorm statistics untouched on real tensors; on the meta device there is nothing to
    # touch and walking Brevitas' thousands of submodules twice costs more than the trace
    real = any(t.device.type != "meta" for t in inputs if isinstance(t, torch.Tensor))
    was = model.training
    try:
        if real:
            model.eval()
        with torch.no_grad(), _shape_only_brevitas():
            model(*inputs)
    finally:
        if real:
            model.train(was)
        for h in hooks:
            h.remove()
    return layers


def count(model: nn.Module, inputs: tuple, conv: Convention = PAPER) -> Report:
    """Params / OPs per top-level child of ``model`` (and in total) under ``conv``."""
    mac_layers = [(n, m) for n, m in model.named_modules() if isinstance(m, _MAC_LAYERS)]
    layers = trace_layers(model, inputs, mac_layers)
    rep = Report(layers=layers)
    top = lambda name: name.split(".", 1)[0] if name else "(root)"  # noqa: E731
    for name, _ in model.named_children():
        rep.parts[name] = Count()
    # parameters: each tensor once, binary if it is the weight of a binary layer
    binary_weights = {id(m.weight) for _, m in mac_layers if is_binary(m)}
    for name, p in model.named_parameters():
        c = rep.parts.setdefault(top(name.rsplit(".", 1)[0] if "." in name else ""), Count())
        if id(p) in binary_weights:
            c.params_b += p.numel()
        else:
            c.params_f += p.numel()
    for L in layers:
        c = rep.parts.setdefault(top(L.name), Count())
        macs = (L.macs_out if (L.kind == "deconv" and conv.deconv == "output") else L.macs) * conv.flops_per_mac
        if L.binary:
            c.ops_b += macs
        else:
            c.ops_f += macs
    return rep


def format_table(title: str, rep: Report) -> str:
    rows = [(n, c) for n, c in rep.parts.items()] + [("total", rep.total)]
    w = max(len(n) for n, _ in rows)
    out = [title, f"{'module':<{w}}  {'Params (M)':>10}  {'OPs (G)':>8}  {'binary params':>13}  "
                  f"{'fp params':>11}  {'binary MACs':>14}  {'fp MACs':>14}"]
    for n, c in rows:
        if n == "total":
            out.append("-" * len(out[-1]))
        out.append(f"{n:<{w}}  {c.params / 1e6:>10.3f}  {c.ops / 1e9:>8.3f}  {c.params_b:>13,}  {c.params_f:>11,}  "
                   f"{int(c.ops_b):>14,}  {int(c.ops_f):>14,}")
    return "\n".join(out)
