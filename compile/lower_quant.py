"""Float-scaled epilogues, exactly: the chain from an integer tensor to the next quantizer.

A hardware tensor holds integers ``q``; its real value is ``q * 2^-frac * scale_c`` (``Fmt.frac`` and
``TensorInfo.scale``: one exact rational a tensor, or one a channel for accumulators, e.g. input scale x
per-channel weight scale). The float ops between such a tensor and the next quantizer (``Mul`` / ``Div`` /
``Add`` / ``Sub`` by constants, ``BatchNormalization``, ``Relu``, ``PRelu`` with non-negative slopes, ``Clip``)
are not lowered one by one: they are collected into a ``Chain`` (one per QONNX tensor, ``Lowerer.chains``), and
the quantizer that ends the chain (``Quant`` with any scale, zero point, rounding mode, narrow or not, signed or
not; ``BipolarQuant``) is compiled, per channel, into integer hardware equal to the graph's exact real-number
semantics for every integer the chain's input can hold:

- ``Threshold`` for a binary output, ``MultiThreshold`` for few levels (``MAX_THRESHOLD_LEVELS``);
- otherwise ``MulShift`` -> ``AddConst`` -> ``Requant`` computing ``sat((m_c * x + a_c) >> sh)``, with the
  constants proven equal to the chain at every level boundary (``mulshift_constants``).

Exactness (docs/numerics.md, "Float-scaled epilogues"): each chain step is monotone per channel, so the quantized
output is a monotone step function of the integer input and is determined by its level boundaries ``t_j`` (the
smallest input whose output is at least level ``j``). ``solve_thresholds`` finds each ``t_j`` by a float64
bisection and then *verifies* it with exact arithmetic (``exact_output`` at ``t_j`` and ``t_j - 1``, moving it
until both hold): rational arithmetic (``fractions.Fraction``), and a BatchNormalization's ``1/sqrt(var + eps)``
kept symbolically as ``Surd`` (``p + r * sqrt(d)``) whose sign is decided by squaring. Nothing is sampled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction as Fr

import numpy as np

from binaryhpe.compile.frames import round_float
from binaryhpe.compile.graph import Fmt, TensorInfo
from binaryhpe.compile.kinds.base import clog2
from binaryhpe.compile.kinds.elementwise import AddConst, MulShift, MultiThreshold, Requant, Threshold
from binaryhpe.compile.lower_base import CHAIN_HOOKS, Lowerer, _attrs, _err, _int_range

#: quantizers with at most this many output levels become a MultiThreshold (2^4: up to 4-bit activations);
#: wider ones a multiply-add-shift, or a MultiThreshold of up to 256 levels where no exact constants exist
MAX_THRESHOLD_LEVELS = 16
MAX_FALLBACK_LEVELS = 256
#: widest multiplier of a float-scaled epilogue (signed bits) and widest product
MUL_CONST_BITS = 32
MAX_EPILOGUE_WIDTH = 62
#: longest chain whose float64 evaluation is certified by its error bound (longer ones are checked exactly)
MAX_CHAIN_STEPS = 32
#: rounding modes of qonnx's Quant (``resolve_rounding_mode``) and the alias ROUND_TO_ZERO (= DOWN)
ROUNDING_MODES = ("ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN", "ROUND_TO_ZERO")


# ---------------------------------------------------------------------------------------------------------
# exact numbers: p + r * sqrt(d)

class Surd:
    """The exact real ``p + r * sqrt(d)`` (``p``, ``r``, ``d`` Fractions, ``d > 0`` or ``r == 0``): the values of
    a chain after a BatchNormalization, whose ``1 / sqrt(var + eps)`` is irrational in general."""

    __slots__ = ("p", "r", "d")

    def __init__(self, p: Fr, r: Fr = Fr(0), d: Fr = Fr(0)):
        self.p = p if type(p) is Fr else Fr(p)
        self.r = r if type(r) is Fr else Fr(r)
        self.d = d if type(d) is Fr else Fr(d)
        if self.r and self.d <= 0:
            raise ValueError("Surd: sqrt of a non-positive number")

    def sign(self) -> int:
        sp = (self.p > 0) - (self.p < 0)
        sr = (self.r > 0) - (self.r < 0)
        if sr == 0:
            return sp
        if sp == 0 or sp == sr:
            return sr
        a, b = self.p * self.p, self.r * self.r * self.d  # |p| vs |r| sqrt(d), compared by squaring
        return sp if a > b else (sr if a < b else 0)

    def cmp(self, c) -> int:
        """sign(self - c) for a rational ``c``."""
        if not self.r:
            return (self.p > c) - (self.p < c)
        return Surd(self.p - c, self.r, self.d).sign()

    def add(self, c) -> "Surd":
        return Surd(self.p + c, self.r, self.d)

    def mul(self, a) -> "Surd":
        return Surd(self.p * a, self.r * a, self.d)

    def __float__(self) -> float:
        return float(self.p) + (float(self.r) * math.sqrt(float(self.d)) if self.r else 0.0)

    def floor(self) -> int:
        if not self.r:
            return math.floor(self.p)  # exact for a Fraction
        n = math.floor(float(self))
        while self.cmp(n) < 0:
            n -= 1
        while self.cmp(n + 1) >= 0:
            n += 1
        return n

    def ceil(self) -> int:
        return -Surd(-self.p, -self.r, self.d).floor()

    def __repr__(self) -> str:
        return f"Surd({self.p} + {self.r}*sqrt({self.d}))"


def round_exact(u: Surd, mode: str) -> int:
    """qonnx's rounding mode ``mode`` applied to the exact value ``u``."""
    mode = mode.upper()
    if mode == "FLOOR":
        return u.floor()
    if mode == "CEIL":
        return u.ceil()
    s = u.sign()
    if mode in ("DOWN", "ROUND_TO_ZERO"):
        return u.floor() if s >= 0 else u.ceil()
    if mode == "UP":
        return u.ceil() if s >= 0 else u.floor()
    n = u.floor()
    half = u.cmp(Fr(2 * n + 1, 2))  # sign(u - (n + 1/2))
    if half != 0:
        return n + 1 if half > 0 else n
    if mode in ("ROUND", "HALF_EVEN"):
        return n if n % 2 == 0 else n + 1
    if mode == "HALF_UP":  # away from zero
        return n + 1 if s > 0 else n
    if mode == "HALF_DOWN":  # towards zero
        return n if s > 0 else n + 1
    raise ValueError(f"unknown rounding mode {mode!r}")


# ---------------------------------------------------------------------------------------------------------
# the quantizer at the end of a chain

@dataclass
class QuantSpec:
    """A Quant (or BipolarQuant) node's parameters: output integer ``clamp(round(v / scale + zp)) - zp``."""

    scale: Fr
    zp: int = 0
    bits: int = 8
    signed: bool = True
    narrow: bool = False
    mode: str = "ROUND"
    bipolar: bool = False  # BipolarQuant / 1-bit signed Quant: +1 for v >= 0, else -1

    @property
    def qmin(self) -> int:
        if self.bipolar:
            return -1
        if not self.signed:
            return 0
        return -(1 << (self.bits - 1)) + int(self.narrow)

    @property
    def qmax(self) -> int:
        if self.bipolar:
            return 1
        if not self.signed:
            return (1 << self.bits) - 1 - int(self.narrow)
        return (1 << (self.bits - 1)) - 1

    def levels(self) -> list[int]:
        """The integers the output can take (the hardware integers: quantized value minus zero point)."""
        if self.bipolar:
            return [-1, 1]
        return list(range(self.qmin - self.zp, self.qmax - self.zp + 1))

    def exact(self, v: Surd) -> int:
        if self.bipolar:
            return 1 if v.sign() >= 0 else -1
        u = v.mul(1 / self.scale).add(self.zp)
        return min(max(round_exact(u, self.mode), self.qmin), self.qmax) - self.zp

    def approx(self, v: np.ndarray) -> np.ndarray:
        if self.bipolar:
            return np.where(v >= 0, 1, -1)
        u = v / float(self.scale) + self.zp
        return np.clip(round_float(u, self.mode), self.qmin, self.qmax) - self.zp


def quant_spec(L: Lowerer, node) -> QuantSpec:
    """The QuantSpec of a Quant / BipolarQuant node with constant parameters (one error naming it otherwise)."""
    if node.op_type == "BipolarQuant":
        s = L.const(node.input[1])
        if s is None or np.size(s) != 1:
            raise _err(node, "the scale must be one constant")
        return QuantSpec(scale=Fr(float(np.asarray(s).reshape(-1)[0])), bits=1, bipolar=True)
    vals = [L.const(n) for n in node.input[1:4]]
    if any(v is None for v in vals):
        raise _err(node, "scale, zero point and bit width must be constants")
    scale, zp, bw = (np.asarray(v, dtype=np.float64).reshape(-1) for v in vals)
    if scale.size != 1 or zp.size != 1:
        raise _err(node, "activation quantizers must be per-tensor (one scale and one zero point); use a "
                         "per-tensor activation quantizer")
    a = _attrs(node)
    mode = a.get("rounding_mode", b"ROUND")
    mode = (mode.decode() if isinstance(mode, bytes) else mode).upper()
    if mode not in ROUNDING_MODES:
        raise _err(node, f"unknown rounding mode {mode!r} (qonnx's are {', '.join(ROUNDING_MODES[:-1])})")
    s, z, b = float(scale[0]), float(zp[0]), float(bw[0])
    if not (np.isfinite(s) and s > 0):
        raise _err(node, f"scale {s} must be a positive finite number")
    if z != round(z) or b != round(b) or b < 1:
        raise _err(node, f"zero point {z} and bit width {b} must be integers (bit width at least 1)")
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    if int(b) > 24:
        raise _err(node, f"a {int(b)}-bit activation quantizer is wider than the hardware's 24-bit streams")
    if int(b) == 1 and signed:
        return QuantSpec(scale=Fr(s), bits=1, bipolar=True)
    return QuantSpec(scale=Fr(s), zp=int(z), bits=int(b), signed=signed, narrow=narrow, mode=mode)


# ---------------------------------------------------------------------------------------------------------
# chains

@dataclass
class Chain:
    """The real value of a QONNX tensor as a per-channel function of the integers of hardware tensor ``src``:
    ``x -> steps(x * base_c)``. Steps (per-channel Fractions): ``("affine", a, b)``: ``a v + b``;
    ``("bn", k, mean, d, beta)``: ``k (v - mean) / sqrt(d) + beta``; ``("relu",)``; ``("prelu", slope)``
    (slope >= 0); ``("clip", lo, hi)`` (None: unbounded); ``("round", mode)``: an inner rounding to an integer (a
    Trunc's first step)."""

    src: str
    base: list
    steps: list = field(default_factory=list)
    nodes: list = field(default_factory=list)

    @property
    def c(self) -> int:
        return len(self.base)

    def then(self, step, node) -> "Chain":
        return Chain(self.src, self.base, self.steps + [step], self.nodes + [node.name])

    def has_bn(self) -> bool:
        return any(s[0] == "bn" for s in self.steps)

    def value(self, ch: int, x: int) -> Surd:
        """The exact real value for integer ``x`` on channel ``ch``."""
        v = Surd(self.base[ch] * x)
        for s in self.steps:
            kind = s[0]
            if kind == "affine":
                v = v.mul(s[1][ch]).add(s[2][ch])
            elif kind == "bn":
                k, mean, d, beta = s[1][ch], s[2][ch], s[3][ch], s[4][ch]
                if v.r:
                    raise ValueError("a second BatchNormalization in one chain")
                v = Surd(beta, k * (v.p - mean) / d, d) if k else Surd(beta)
            elif kind == "relu":
                if v.sign() < 0:
                    v = Surd(0)
            elif kind == "prelu":
                if v.sign() < 0:
                    v = v.mul(s[1][ch])
            elif kind == "clip":
                lo, hi = s[1], s[2]
                if lo is not None and v.cmp(lo) < 0:
                    v = Surd(lo)
                if hi is not None and v.cmp(hi) > 0:
                    v = Surd(hi)
            elif kind == "round":
                v = Surd(round_exact(v, s[1]))
        return v

    def approx(self, x: np.ndarray) -> np.ndarray:
        """float64 values for integer inputs ``x`` of shape (C, K) (channel ``c`` in row ``c``)."""
        v = x.astype(np.float64) * np.array([float(b) for b in self.base])[:, None]
        for s in self.steps:
            kind = s[0]
            col = (lambda arr: np.array([float(a) for a in arr])[:, None])
            if kind == "affine":
                v = v * col(s[1]) + col(s[2])
            elif kind == "bn":
                v = col(s[1]) * (v - col(s[2])) / np.sqrt(col(s[3])) + col(s[4])
            elif kind == "relu":
                v = np.maximum(v, 0.0)
            elif kind == "prelu":
                v = np.where(v < 0, v * col(s[1]), v)
            elif kind == "clip":
                if s[1] is not None:
                    v = np.maximum(v, float(s[1]))
                if s[2] is not None:
                    v = np.minimum(v, float(s[2]))
            elif kind == "round":
                v = round_float(v, s[1])
        return v

    def approx_certified(self, qs: "QuantSpec", x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float64 quantizer outputs for integer inputs ``x`` (C, K), and where they are certain: alongside each
        value a bound ``mag`` on the magnitudes it was computed from (``|a| mag + |b|`` through an affine step,
        ...); every float64 operation errs by at most 2^-53 of its operands' magnitudes, and the chain has at most
        ``MAX_CHAIN_STEPS`` steps of at most 4 operations, so the float64 value is within ``2^-40 * mag`` of the
        exact one. Where the value lies farther than that from every rounding boundary the output is certain."""
        if len(self.steps) > MAX_CHAIN_STEPS:
            return qs.approx(self.approx(x)), np.zeros(x.shape, dtype=bool)
        col = (lambda arr: np.array([float(a) for a in arr])[:, None])
        v = x.astype(np.float64) * col(self.base)
        mag = np.abs(v)
        inner_ok = np.ones(x.shape, dtype=bool)
        for s in self.steps:
            kind = s[0]
            if kind == "affine":
                a, b = col(s[1]), col(s[2])
                v, mag = v * a + b, mag * np.abs(a) + np.abs(b)
            elif kind == "bn":
                k = col(s[1]) / np.sqrt(col(s[3]))
                m, beta = col(s[2]), col(s[4])
                v, mag = k * (v - m) + beta, np.abs(k) * (mag + np.abs(m)) + np.abs(beta)
            elif kind == "relu":
                v = np.maximum(v, 0.0)
            elif kind == "prelu":
                sl = col(s[1])
                v, mag = np.where(v < 0, v * sl, v), mag * np.maximum(1.0, np.abs(sl))
            elif kind == "clip":
                if s[1] is not None:
                    v = np.maximum(v, float(s[1]))
                    mag = np.maximum(mag, abs(float(s[1])))
                if s[2] is not None:
                    v = np.minimum(v, float(s[2]))
                    mag = np.maximum(mag, abs(float(s[2])))
            elif kind == "round":  # an inner rounding (Trunc): certain only away from its own boundaries
                half = s[1].upper() in ("ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN")
                d = np.abs(v - np.floor(v) - 0.5) if half else np.minimum(v - np.floor(v), np.ceil(v) - v)
                inner_ok &= d > 2.0**-40 * (mag + 1.0)
                v = round_float(v, s[1])
                mag = np.abs(v)  # exact integers from here on
        if qs.bipolar:
            u, umag, edges = v, mag, "zero"
        else:
            u = v / float(qs.scale) + qs.zp
            umag = mag / float(qs.scale) + abs(qs.zp)
            edges = "half" if qs.mode in ("ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN") else "int"
        tol = 2.0**-40 * (umag + 1.0)
        if edges == "zero":
            dist = np.abs(u)
        elif edges == "half":
            dist = np.abs(u - np.floor(u) - 0.5)
        else:
            dist = np.minimum(u - np.floor(u), np.ceil(u) - u)
        return qs.approx(v), (dist > tol) & inner_ok

    def directions(self) -> np.ndarray:
        """Per channel +1 (nondecreasing in x) or -1 (nonincreasing): the product of the signs of the strictly
        monotone steps (relu, prelu with slope >= 0 and clip are nondecreasing; a zero factor makes the
        channel constant, counted +1)."""
        d = np.ones(self.c, dtype=np.int64)
        for s in self.steps:
            if s[0] == "affine":
                d *= np.array([1 if a >= 0 else -1 for a in s[1]])
            elif s[0] == "bn":
                d *= np.array([1 if k >= 0 else -1 for k in s[1]])
        return d


def base_of(info: TensorInfo) -> list:
    """The real value of integer 1 on each channel of a hardware tensor: ``2^-frac * scale_c``."""
    unit = Fr(2) ** (-info.fmt.frac)
    c = info.shape[2]
    sc = info.scale
    if sc is None:
        return [unit] * c
    sc = list(sc) if isinstance(sc, (list, tuple)) else [sc] * c
    return [unit * Fr(s) for s in sc]


def chain_of(L: Lowerer, onnx_name: str) -> Chain:
    if onnx_name in L.chains:
        return L.chains[onnx_name]
    info = L.info(onnx_name)
    if info.fmt.bipolar:
        raise BinaryHPEError(f"tensor {onnx_name!r} is binary (bipolar); scale it after the matrix product")
    return Chain(info.name, base_of(info))


def is_float(L: Lowerer, onnx_name: str) -> bool:
    """True when ``onnx_name`` is a pending chain or a hardware tensor with a non-dyadic scale."""
    if onnx_name in L.chains:
        return True
    hw = L.env.get(onnx_name)
    return hw is not None and L.g.tensors[hw].scale is not None


def per_channel_fr(node, c, cout: int) -> list:
    v = np.asarray(c, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise _err(node, "the constant is not finite")
    if v.size == 1:
        return [Fr(float(v.reshape(-1)[0]))] * cout
    if v.size == cout and (v.ndim == 1 or (v.ndim == 3 and v.shape[0] == cout) or (v.ndim == 4 and v.shape[1] == cout)
                           or (v.ndim == 2 and v.shape[1] == cout)):
        return [Fr(float(x)) for x in v.reshape(-1)]
    raise _err(node, f"constant of shape {v.shape} is not per-tensor or per-channel for {cout} channels")


def extend(L: Lowerer, node, onnx_in: str, step) -> None:
    """The value of ``node.output[0]`` is the chain of ``onnx_in`` followed by ``step``."""
    ch = chain_of(L, onnx_in)
    if step[0] == "bn" and ch.has_bn():
        raise _err(node, "a second BatchNormalization between two quantizers is not supported (its square root "
                         "and the first one's cannot be compared exactly); quantize between them")
    L.chains[node.output[0]] = ch.then(step, node)


def materialize(L: Lowerer, onnx_name: str) -> TensorInfo:
    """A pending chain read by something other than a quantizer: only a positive per-channel scale (the value
    ``x * base_c * a_c``) or an integer per-channel offset on that grid can be carried by a hardware tensor."""
    ch = L.chains[onnx_name]
    src = L.g.tensors[ch.src]
    base = list(ch.base)
    add = [Fr(0)] * ch.c
    node = L.producer(onnx_name)
    readers = [n for n in L.consumers(onnx_name)]
    what = ", ".join(f"{n.name!r} ({n.op_type})" for n in readers) or "the graph output"
    for i, s in enumerate(ch.steps):
        if s[0] != "affine" or any(a <= 0 for a in s[1]):
            at = _node_named(L, ch.nodes[i]) or node
            raise _err(at, f"its float result ({' -> '.join(repr(n) for n in ch.nodes[i:])}) reaches {what} "
                           "without a quantizer: put a quantizer (Quant or BipolarQuant, e.g. a QuantIdentity or "
                           "QuantReLU) after it, or leave the rest of the network to the host")
        base = [b * a for b, a in zip(base, s[1])]
        add = [o * a + b for o, a, b in zip(add, s[1], s[2])]
    offs = [o / b for o, b in zip(add, base)]
    if any(o.denominator != 1 for o in offs):
        first = next((n for n, s in zip(ch.nodes, ch.steps) if any(s[2])), ch.nodes[0])
        raise _err(_node_named(L, first) or node,
                   f"its float result ({' -> '.join(repr(n) for n in ch.nodes)}) adds an offset that is not a whole "
                   f"number of the tensor's steps and reaches {what} without a quantizer: put a quantizer after it, "
                   "or leave the rest of the network to the host")
    unit = Fr(2) ** (-src.fmt.frac)
    scale = tuple(b / unit for b in base)
    if all(s == scale[0] for s in scale):
        scale = scale[0]
    shape = src.shape
    cur = src
    if any(offs):
        q = np.array([int(o) for o in offs], dtype=np.int64)
        cbits = max(2, int(np.max(np.abs(q))).bit_length() + 1)
        out_w = max(src.fmt.bits, cbits) + 1
        name = L.g.unique(f"{node.name}_offset")
        L.g.tensors[name] = TensorInfo(name, shape, src.fmt)
        L.add(AddConst(name=L.g.unique(f"{node.name}_offset"), inputs=[src.name], outputs=[name], c=shape[2],
                       pixels=shape[0] * shape[1], in_w=src.fmt.bits, out_w=out_w, const_w=cbits, b=q))
        cur = TensorInfo(name, shape, Fmt(out_w, src.fmt.frac))
    name = L.new_tensor(onnx_name, shape, cur.fmt)
    L.g.tensors[name].scale = _normal_scale(scale, L.g.tensors[name])
    L.add(Requant(name=L.g.unique(f"{node.name}_scaled"), inputs=[cur.name], outputs=[name], c=shape[2],
                  pixels=shape[0] * shape[1], in_w=cur.fmt.bits, out_w=cur.fmt.bits, shift=0))
    del L.chains[onnx_name]
    return L.g.tensors[name]


def float_tail_error(L: Lowerer, onnx_name: str):
    """The error for float ops between the last integer tensor and the graph output (no quantizer after them):
    it names the chain's first node, so that the partition (compile/partition.py) leaves them to the host."""
    ch = L.chains[onnx_name]
    first = _node_named(L, ch.nodes[0]) or L.producer(onnx_name)
    return _err(first, f"its float result ({' -> '.join(repr(n) for n in ch.nodes)}) reaches the graph output "
                       "without a quantizer: float post-processing runs on the host (or put a quantizer, Quant or "
                       "BipolarQuant, after it)")


def _node_named(L: Lowerer, name: str):
    return next((n for n in L.mw.graph.node if n.name == name), None)


def _normal_scale(scale, info: TensorInfo):
    """A tensor scale of exactly 1 is no scale; a power of two moves into the format."""
    if isinstance(scale, tuple):
        return scale
    if scale == 1:
        return None
    e = math.log2(scale) if scale > 0 else None
    if e is not None and Fr(2) ** round(e) == scale:
        info.fmt = Fmt(info.fmt.bits, info.fmt.frac - round(e), info.fmt.signed)
        return None
    return scale


def set_scale(info: TensorInfo, scale) -> None:
    """Give ``info`` the scale ``scale`` (a Fraction, or per-channel Fractions), normalized."""
    if isinstance(scale, (list, tuple, np.ndarray)):
        sc = tuple(Fr(s) for s in scale)
        scale = sc[0] if all(s == sc[0] for s in sc) else sc
    info.scale = _normal_scale(scale, info) if not isinstance(scale, tuple) else scale


# ---------------------------------------------------------------------------------------------------------
# the solver: level boundaries, exactly

def exact_output(chain: Chain, qs: QuantSpec, ch: int, x: int) -> int:
    return qs.exact(chain.value(ch, x))


def solve_thresholds(chain: Chain, qs: QuantSpec, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Per channel the direction ``dir_c`` (+1, -1) and the level boundaries ``t[c, j]`` (``j = 1..M``, M + 1
    levels): with ``x' = dir_c * x`` (in ``[lo', hi']``), the output is at least level ``j`` exactly when
    ``x' >= t[c, j]`` (``t = lo'`` : always, ``t = hi' + 1``: never). Found by float64 bisection, then verified
    and corrected by exact evaluation at ``t`` and ``t - 1``."""
    levels = qs.levels()
    m = len(levels) - 1
    c = chain.c
    dirs = chain.directions()
    lo_p = np.where(dirs > 0, lo, -hi).astype(np.int64)
    hi_p = np.where(dirs > 0, hi, -lo).astype(np.int64)
    lv = np.array(levels[1:], dtype=np.float64)
    a = np.repeat(lo_p[:, None], m, axis=1)
    b = np.repeat(hi_p[:, None] + 1, m, axis=1)
    while np.any(a < b):
        mid = (a + b) // 2
        x = np.minimum(mid, hi_p[:, None]) * dirs[:, None]
        ge = (qs.approx(chain.approx(x)) >= lv[None, :]) & (mid <= hi_p[:, None])
        b = np.where(ge & (a < b), mid, b)
        a = np.where(~ge & (a < b), mid + 1, a)
    t = a
    # certify t and t - 1 in float64 where the error bound allows; the rest exactly
    lv2 = np.broadcast_to(lv[None, :], t.shape)
    x1 = np.minimum(t, hi_p[:, None])
    x0 = np.maximum(t - 1, lo_p[:, None])
    y1, ok1 = chain.approx_certified(qs, x1 * dirs[:, None])
    y0, ok0 = chain.approx_certified(qs, x0 * dirs[:, None])
    good1 = (t > hi_p[:, None]) | (ok1 & (y1 >= lv2))
    good0 = (t <= lo_p[:, None]) | (ok0 & (y0 < lv2))
    done = good1 & good0
    for ch in range(c):
        if done[ch].all():
            continue
        memo: dict = {}

        def f(xp: int) -> int:
            if xp not in memo:
                memo[xp] = exact_output(chain, qs, ch, int(dirs[ch]) * xp)
            return memo[xp]

        lo_c, hi_c = int(lo_p[ch]), int(hi_p[ch])
        for j in range(m):
            if done[ch, j]:
                continue
            tj = int(t[ch, j])
            while tj <= hi_c and f(tj) < levels[j + 1]:
                tj += 1
            while tj > lo_c and f(tj - 1) >= levels[j + 1]:
                tj -= 1
            t[ch, j] = tj
    return dirs, t


def mulshift_constants(t: np.ndarray, levels: list, lo_p: np.ndarray, hi_p: np.ndarray, sat_lo: int, sat_hi: int,
                       slope: np.ndarray, max_bits: int = MUL_CONST_BITS):
    """Constants ``m_c >= 0``, ``a_c`` and one shift ``sh`` with ``sat((m_c x' + a_c) >> sh) = level`` for every
    ``x'`` in ``[lo'_c, hi'_c]`` (``sat`` to ``[sat_lo, sat_hi]``), given the exact level boundaries ``t``
    (``solve_thresholds``); None when no ``m`` of ``max_bits`` signed bits works.

    Proof carried out here, per channel: ``g(x) = floor((m x + a) / 2^sh)`` is nondecreasing (m >= 0), so the
    output equals the level step function everywhere iff, for every boundary j, ``g(t_j) >= L_j`` when
    ``lo < t_j <= hi`` (``g(lo) >= L_j`` when ``t_j <= lo``) and ``g(t_j - 1) <= L_j - 1`` when ``lo < t_j <= hi``
    (``g(hi) <= L_j - 1`` when ``t_j > hi``), plus ``g(lo) >= L_0`` where ``L_0 > sat_lo`` and ``g(hi) <= L_M``
    where ``L_M < sat_hi``. Each condition is linear in ``a``: an interval; the channel has exact constants iff
    the intersection is not empty for some ``m``."""
    c, mm = t.shape
    L = np.array(levels, dtype=object)
    # multipliers below 2^4 are tried only where the slope is that small: start where the largest is about 2^6
    top = float(np.max(slope)) if np.size(slope) else 0.0
    sh0 = max(0, 6 - math.frexp(top)[1]) if top > 0 else 0
    for sh in range(sh0, 64):
        res_m, res_a, ok = [], [], True
        for ch in range(c):
            lo, hi = int(lo_p[ch]), int(hi_p[ch])
            ideal = float(slope[ch]) * 2.0**sh
            cands = sorted({max(0, int(math.floor(ideal)) + d) for d in (0, 1, -1, 2, -2, 3)})
            found = None
            for m in cands:
                if m.bit_length() + 1 > max_bits:
                    continue
                a_lo, a_hi = -(1 << 200), 1 << 200
                if L[0] > sat_lo:
                    a_lo = max(a_lo, L[0] * (1 << sh) - m * lo)
                if L[-1] < sat_hi:
                    a_hi = min(a_hi, (L[-1] + 1) * (1 << sh) - m * hi - 1)
                for j in range(mm):
                    tj, lj = int(t[ch, j]), int(L[j + 1])
                    if tj <= lo:
                        a_lo = max(a_lo, lj * (1 << sh) - m * lo)
                    elif tj > hi:
                        a_hi = min(a_hi, lj * (1 << sh) - m * hi - 1)
                    else:
                        a_lo = max(a_lo, lj * (1 << sh) - m * tj)
                        a_hi = min(a_hi, lj * (1 << sh) - m * (tj - 1) - 1)
                    if a_lo > a_hi:
                        break
                if a_lo <= a_hi:
                    # the smallest-magnitude a in the interval
                    a = 0 if a_lo <= 0 <= a_hi else (a_lo if a_lo > 0 else a_hi)
                    found = (m, a)
                    break
            if found is None:
                ok = False
                if all(m.bit_length() + 1 > max_bits for m in cands):
                    return None
                break
            res_m.append(found[0])
            res_a.append(found[1])
        if ok:
            return np.array(res_m, dtype=object), np.array(res_a, dtype=object), sh
    return None


def _slopes(chain: Chain, qs: QuantSpec, dirs: np.ndarray) -> np.ndarray:
    """The chain's slope (output levels per input step, in the increasing direction) per channel, float64:
    the multiplier the constants search starts from."""
    s = np.array([float(b) for b in chain.base])
    for st in chain.steps:
        if st[0] == "affine":
            s = s * np.array([float(a) for a in st[1]])
        elif st[0] == "bn":
            s = s * np.array([float(k) for k in st[1]]) / np.sqrt(np.array([float(d) for d in st[3]]))
    return np.abs(s) / float(qs.scale)


# ---------------------------------------------------------------------------------------------------------
# the quantizer ending a chain -> hardware



def _signed_bits(lo: int, hi: int) -> int:
    return max(2, max(int(lo).bit_length() if lo < 0 else 0, int(hi).bit_length()) + 1,
               (-int(lo) - 1).bit_length() + 1 if lo < 0 else 0)


def quantize_chain(L: Lowerer, qnode, onnx_in: str) -> str:
    """Lower quantizer ``qnode`` reading ``onnx_in`` (a pending chain or a hardware tensor with any scale) to
    Threshold / MultiThreshold / MulShift-AddConst-Requant; returns the output hardware tensor."""
    return quantize_chain_spec(L, qnode, chain_of(L, onnx_in), quant_spec(L, qnode))


def quantize_chain_spec(L: Lowerer, qnode, chain: Chain, qs: QuantSpec) -> str:
    """``quantize_chain`` with the chain and the quantizer given (a Trunc builds both itself)."""
    src = L.g.tensors[chain.src]
    h, w, c = src.shape
    pixels = h * w
    for s in chain.steps:
        if s[0] == "prelu" and any(sl < 0 for sl in s[1]):
            raise _err(qnode, "a PRelu with a negative slope before this quantizer makes its output non-monotone "
                              "in the accumulator; use slopes >= 0")
    lo, hi = _int_range(L, src.name)
    levels = qs.levels()
    try:
        dirs, t = solve_thresholds(chain, qs, lo, hi)
    except ValueError as e:
        raise _err(qnode, str(e)) from None
    lo_p = np.where(dirs > 0, lo, -hi)
    hi_p = np.where(dirs > 0, hi, -lo)
    oshape = L.shape_hwc(qnode.output[0])
    if tuple(oshape) != (h, w, c):
        raise _err(qnode, f"output shape {oshape} differs from its input's {(h, w, c)}")
    what = f"{qnode.name}"
    if qs.bipolar:
        # y = x >= T (increasing) or x <= T (decreasing); always +1: T below the range; never: above
        thr = np.zeros(c, dtype=np.int64)
        neg = np.zeros(c, dtype=np.int64)
        for ch in range(c):
            tj = int(t[ch, 0])
            if tj <= lo_p[ch]:
                thr[ch] = lo - 1
            elif tj > hi_p[ch]:
                thr[ch] = hi + 1
            elif dirs[ch] > 0:
                thr[ch] = tj
            else:
                thr[ch], neg[ch] = -tj, 1
        thr_w = max(clog2(max(abs(lo - 1), hi + 2)) + 1, 2)
        out = L.new_tensor(qnode.output[0], (h, w, c), Fmt(1, 0, signed=False, bipolar=True))
        if qs.scale != 1:
            L.g.tensors[out].scale = qs.scale  # +-scale (a 1-bit signed Quant, or a BipolarQuant's scale)
        L.add(Threshold(name=L.g.unique(what), inputs=[src.name], outputs=[out], c=c, pixels=pixels,
                        in_w=src.fmt.bits, thr_w=thr_w, thresholds=thr, neg=neg))
        return out
    out_fmt, out_scale = _out_format(qs, levels)
    if len(levels) <= MAX_THRESHOLD_LEVELS:
        return _multithreshold(L, qnode, src, dirs, t, lo_p, hi_p, levels, out_fmt, out_scale)
    # the proof and the saturation in the quantizer's own integers q (qmin..qmax; the hardware integers are q - zp):
    # an unsigned quantizer saturates to [0, 2^b - 1] (a ReLU Requant of b + 1 bits), a signed one to b bits
    qlev = list(range(qs.qmin, qs.qmax + 1))
    q_w = qs.bits + 1 if not qs.signed else qs.bits
    sat_lo, sat_hi = (0, (1 << qs.bits) - 1) if not qs.signed else (-(1 << (qs.bits - 1)), (1 << (qs.bits - 1)) - 1)
    found = mulshift_constants(t, qlev, lo_p, hi_p, sat_lo, sat_hi, _slopes(chain, qs, dirs),
                               min(MUL_CONST_BITS, MAX_EPILOGUE_WIDTH - 2 - src.fmt.bits))
    if found is None:
        split = _prelu_split(L, qnode, chain, qs, src, lo, hi)
        if split is not None:
            return split
        if len(levels) <= MAX_FALLBACK_LEVELS:
            return _multithreshold(L, qnode, src, dirs, t, lo_p, hi_p, levels, out_fmt, out_scale)
        raise _err(qnode, f"no exact multiply-add-shift with a multiplier of at most {MUL_CONST_BITS} bits computes "
                          f"this quantizer over the input range {lo}..{hi}, and its {len(levels)} levels are too "
                          f"many for thresholds; use at most 8 bits or a power-of-two scale")
    m, a, sh = found
    m, a, mbits, prod_w, abits, sum_w = _mulshift_widths(m, a, dirs, src)
    if sum_w > MAX_EPILOGUE_WIDTH:
        raise _err(qnode, f"the exact multiply-add-shift needs {sum_w} bits (> {MAX_EPILOGUE_WIDTH})")
    p_name = L.g.unique(f"{what}_mul")
    L.g.tensors[p_name] = TensorInfo(p_name, (h, w, c), Fmt(prod_w, 0))
    L.add(MulShift(name=L.g.unique(f"{what}_mul"), inputs=[src.name], outputs=[p_name], c=c, pixels=pixels,
                   in_w=src.fmt.bits, out_w=prod_w, const_w=mbits, m=m, shift=0))
    s_name = L.g.unique(f"{what}_add")
    L.g.tensors[s_name] = TensorInfo(s_name, (h, w, c), Fmt(sum_w, 0))
    L.add(AddConst(name=L.g.unique(f"{what}_add"), inputs=[p_name], outputs=[s_name], c=c, pixels=pixels,
                   in_w=prod_w, out_w=sum_w, const_w=abits, b=a))
    if qs.zp == 0:
        out = L.new_tensor(qnode.output[0], (h, w, c), Fmt(q_w, 0))
        set_scale(L.g.tensors[out], out_scale)
        L.add(Requant(name=L.g.unique(what), inputs=[s_name], outputs=[out], c=c, pixels=pixels, in_w=sum_w,
                      out_w=q_w, shift=sh, relu=not qs.signed))
        return out
    q_name = L.g.unique(f"{what}_q")
    L.g.tensors[q_name] = TensorInfo(q_name, (h, w, c), Fmt(q_w, 0))
    L.add(Requant(name=L.g.unique(f"{what}_q"), inputs=[s_name], outputs=[q_name], c=c, pixels=pixels, in_w=sum_w,
                  out_w=q_w, shift=sh, relu=not qs.signed))
    zbits = max(2, abs(qs.zp).bit_length() + 1)
    out = L.new_tensor(qnode.output[0], (h, w, c), Fmt(out_fmt.bits, 0))
    set_scale(L.g.tensors[out], out_scale)
    L.add(AddConst(name=L.g.unique(what), inputs=[q_name], outputs=[out], c=c, pixels=pixels, in_w=q_w,
                   out_w=out_fmt.bits, const_w=zbits, b=np.full(c, -qs.zp, dtype=np.int64)))  # q - zp, exact
    return out


def _mulshift_widths(m, a, dirs, src: TensorInfo):
    """The multiplier (with each channel's direction), the addend, and the widths of ``m_c * x`` and of the sum
    ``m_c * x + a_c`` for the multiply-add-shift of a ``src`` input: (m, a, mbits, prod_w, abits, sum_w)."""
    m = np.array([int(v) * int(d) for v, d in zip(m, dirs)], dtype=np.int64)
    a = np.array([int(v) for v in a], dtype=np.int64)
    mbits = max(2, int(np.max(np.abs(m))).bit_length() + 1)
    prod_w = src.fmt.bits + mbits
    abits = max(2, int(np.max(np.abs(a))).bit_length() + 1)
    return m, a, mbits, prod_w, abits, max(prod_w, abits) + 1


def _out_format(qs: QuantSpec, levels: list):
    """The output tensor's format (signed, wide enough for every level) and scale."""
    lo, hi = levels[0], levels[-1]
    if lo >= 0:
        bits = max(2, int(hi).bit_length() + 1)
    else:
        bits = max(2, int(hi).bit_length() + 1, (-lo - 1).bit_length() + 1)
    if not qs.signed and lo >= 0 and qs.zp == 0:
        bits = qs.bits + 1  # as the hardware-mode unsigned requantizer: out_w = bits + 1, signed
    return _FmtR(bits, 0), qs.scale


class _FmtR(Fmt):
    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1


def _multithreshold(L, qnode, src, dirs, t, lo_p, hi_p, levels, out_fmt, out_scale) -> str:
    h, w, c = src.shape
    pixels = h * w
    x_name, x_w = src.name, src.fmt.bits
    if np.any(dirs < 0):  # decreasing channels: thresholds on -x (an exact MulShift by -1 / +1)
        x_w = src.fmt.bits + 1
        x_name = L.g.unique(f"{qnode.name}_dir")
        L.g.tensors[x_name] = TensorInfo(x_name, (h, w, c), Fmt(x_w, 0))
        L.add(MulShift(name=L.g.unique(f"{qnode.name}_dir"), inputs=[src.name], outputs=[x_name], c=c,
                       pixels=pixels, in_w=src.fmt.bits, out_w=x_w, const_w=2, m=dirs.astype(np.int64), shift=0))
    n = len(levels) - 1
    if out_fmt.bits > 8:
        raise _err(qnode, f"no exact multiply-add-shift computes this quantizer over its input range, and thresholds "
                          f"for its {len(levels)} levels would need a {out_fmt.bits}-bit output (at most 8); use a "
                          "power-of-two scale or fewer bits")
    lo_all, hi_all = int(np.min(lo_p)), int(np.max(hi_p))
    thr = np.clip(t, lo_all, hi_all + 1).astype(np.int64)
    thr_w = max(_signed_bits(lo_all, hi_all + 1), 2)
    out = L.new_tensor(qnode.output[0], (h, w, c), Fmt(out_fmt.bits, 0))
    set_scale(L.g.tensors[out], out_scale)
    L.add(MultiThreshold(name=L.g.unique(qnode.name), inputs=[x_name], outputs=[out], c=c, pixels=pixels,
                         in_w=x_w, thr_w=thr_w, out_w=L.g.tensors[out].fmt.bits, thresholds=thr,
                         offset=int(levels[0]), signed=True))
    if n > (1 << L.g.tensors[out].fmt.bits) - 1:
        raise _err(qnode, f"{n} thresholds do not fit a {L.g.tensors[out].fmt.bits}-bit output")
    return out


from binaryhpe import BinaryHPEError  # noqa: E402


# ---------------------------------------------------------------------------------------------------------
# scales of accumulators

def weight_scale_per_out(node, wscale, wshape: tuple, out_axis: int) -> list | None:
    """A weight quantizer's scale (broadcasting to the weights of shape ``wshape``) as one Fraction per output
    channel (``out_axis``); None for no scale. One error naming the node when it varies along another axis."""
    if wscale is None:
        return None
    sc = np.broadcast_to(np.asarray(wscale, dtype=np.float64), wshape)
    sc = np.moveaxis(sc, out_axis, 0).reshape(wshape[out_axis], -1)
    if sc.shape[1] and not np.all(sc == sc[:, :1]):
        raise _err(node, "the weight scale varies along an axis other than the output channels")
    col = sc[:, 0] if sc.shape[1] else np.ones(wshape[out_axis])
    if not np.all(np.isfinite(col)) or np.any(col <= 0):
        raise _err(node, "weight scales must be positive and finite")
    return [Fr(float(v)) for v in col]


def scale_accumulator(L: Lowerer, node, acc_name: str, src: TensorInfo, wsc: list | None) -> str:
    """Give the accumulator ``acc_name`` its scale: the input's (per tensor) times the weights' (per output
    channel). A power of two goes into the format; a fixed-point weight scale of an unscaled input stays the
    hardware-mode MulShift (``lower_base._scale_epilogue``); anything else is carried as the tensor's scale."""
    from binaryhpe.compile.lower_base import _scale_epilogue, fixed_point

    acc = L.g.tensors[acc_name]
    cout = acc.shape[2]
    if isinstance(src.scale, tuple):
        raise _err(node, "its input has one scale a channel; a matrix product needs a per-tensor input scale "
                         "(quantize the input with a per-tensor quantizer)")
    if src.scale is None:
        if wsc is None:
            return acc_name
        try:
            fixed_point(np.array([float(w) for w in wsc]))
            if all(Fr(float(w)) == w for w in wsc):
                return _scale_epilogue(L, node, acc_name, np.array([float(w) for w in wsc]), cout)
        except ValueError:
            pass
    s_in = Fr(1) if src.scale is None else Fr(src.scale)
    total = [s_in * w for w in (wsc if wsc is not None else [Fr(1)] * cout)]
    set_scale(acc, total)
    return acc_name


def bias_of(L: Lowerer, node, name: str, cout: int) -> list:
    """A Conv / Gemm bias as exact Fractions per output channel: an initializer, or a Quant of an initializer
    (a Brevitas bias quantizer), evaluated exactly (integer times scale)."""
    b = L.const(name)
    if b is not None:
        return per_channel_fr(node, np.asarray(b, dtype=np.float64).reshape(-1), cout)
    prod = L.producer(name)
    if prod is None or prod.op_type != "Quant" or L.const(prod.input[0]) is None:
        raise _err(node, "the bias must be a constant or a Quant of a constant")
    vals = [L.const(n) for n in prod.input[1:4]]
    if any(v is None for v in vals):
        raise _err(prod, "scale, zero point and bit width must be constants")
    w = np.asarray(L.const(prod.input[0]), dtype=np.float64).reshape(-1)
    sc, zp = (np.broadcast_to(np.asarray(v, dtype=np.float64).reshape(-1), w.shape) for v in vals[:2])
    bits = int(np.asarray(vals[2]).reshape(-1)[0])
    a = _attrs(prod)
    mode = a.get("rounding_mode", b"ROUND")
    mode = (mode.decode() if isinstance(mode, bytes) else mode).upper()
    out = []
    for v, s, z in zip(w, sc, zp):
        if not s > 0 or z != round(z):
            raise _err(prod, "bias scale must be positive and the zero point an integer")
        qs = QuantSpec(scale=Fr(float(s)), zp=int(z), bits=bits, signed=bool(a.get("signed", 1)),
                       narrow=bool(a.get("narrow", 0)), mode=mode, bipolar=bits == 1 and bool(a.get("signed", 1)))
        out.append(Fr(qs.exact(Surd(Fr(float(v))))) * qs.scale)
    if len(out) == 1:
        return out * cout
    if len(out) != cout:
        raise _err(node, f"bias of {len(out)} values for {cout} output channels")
    return out


def add_bias(L: Lowerer, node, acc_name: str, bias: list) -> str:
    """Add a per-channel bias to an accumulator: an exact AddConst where the bias is a whole number of the
    accumulator's steps (on a finer power-of-two grid if need be, within 24 bits), else a pending chain that
    the next quantizer absorbs (the output's QONNX tensor is ``node.output[0]``)."""
    from binaryhpe.compile.lower_base import _align_up

    info = L.g.tensors[acc_name]
    base = base_of(info)
    steps = [b / u for b, u in zip(bias, base)]
    den = max(s.denominator for s in steps)
    if den & (den - 1) == 0 and den.bit_length() - 1 <= 16:
        sh = den.bit_length() - 1
        q = [int(s * den) for s in steps]
        cbits = max(2, max(abs(v) for v in q).bit_length() + 1)
        if cbits <= 24 and info.fmt.bits + sh + 1 <= 32:
            info = _align_up(L, node, info, info.fmt.frac + sh)
            if sh:
                info.scale = L.g.tensors[acc_name].scale
            out_w = max(info.fmt.bits, cbits) + 1
            name = L.g.unique(f"{node.name}_biased")
            L.g.tensors[name] = TensorInfo(name, info.shape, Fmt(out_w, info.fmt.frac), scale=info.scale)
            L.add(AddConst(name=L.g.unique(f"{node.name}_bias"), inputs=[info.name], outputs=[name], c=info.shape[2],
                           pixels=info.shape[0] * info.shape[1], in_w=info.fmt.bits, out_w=out_w, const_w=cbits,
                           b=np.array(q, dtype=np.int64)))
            return name
    # not on the accumulator's grid: the next quantizer absorbs it exactly
    tmp = L.g.unique(f"{node.name}_unbiased")
    L.env[tmp] = acc_name
    ch = chain_of(L, tmp)
    del L.env[tmp]
    L.chains[node.output[0]] = ch.then(("affine", [Fr(1)] * ch.c, list(bias)), node)
    return ""


def _times_int(L: Lowerer, name: str, info: TensorInfo, m: int, mbits: int) -> TensorInfo:
    """``info`` times the integer ``m`` (``mbits`` signed bits) on every channel: an exact MulShift into a new
    tensor of ``info``'s width plus ``mbits`` (an operand of a residual add brought to the common grid)."""
    h, w, c = info.shape
    out = L.g.unique(name)
    L.g.tensors[out] = TensorInfo(out, info.shape, Fmt(info.fmt.bits + mbits, 0))
    L.add(MulShift(name=L.g.unique(name), inputs=[info.name], outputs=[out], c=c, pixels=h * w, in_w=info.fmt.bits,
                   out_w=info.fmt.bits + mbits, const_w=mbits, m=np.full(c, m, dtype=np.int64), shift=0))
    return L.g.tensors[out]


def add_streams(L: Lowerer, node, a: TensorInfo, b: TensorInfo) -> None:
    """``a + b`` of two tensors with float scales, exactly: with ``step_a / step_b = p / q`` (a ratio of integers:
    float32 scales are dyadic rationals), ``a + b = (step_b / q) * (p * qa + q * qb)``: each operand is multiplied by
    its integer (a shift where it is a power of two) and the sum carries the scale ``step_b / q``. One error with
    the reason when the integers or the sum are too wide."""
    from binaryhpe.compile.kinds.elementwise import JoinAdd

    if a.shape != b.shape:
        raise _err(node, f"operand shapes differ: {a.shape} vs {b.shape}")
    if a.fmt.bipolar or b.fmt.bipolar:
        raise _err(node, "adding bipolar tensors is not supported")
    ua, ub = base_of(a), base_of(b)
    ratios = {x / y for x, y in zip(ua, ub)}
    if len(ratios) != 1:
        raise _err(node, "the operands' per-channel scales differ by different ratios; quantize both with one "
                         "per-tensor quantizer")
    r = ratios.pop()
    h, w, c = a.shape
    p, q = r.numerator, r.denominator
    srcs, shifts = [], []
    for info, n in ((a, p), (b, q)):
        if n & (n - 1) == 0:
            srcs.append(info)
            shifts.append(n.bit_length() - 1)
            continue
        mbits = n.bit_length() + 1
        if mbits > MUL_CONST_BITS or info.fmt.bits + mbits > 48:
            raise _err(node, f"the operands' scales {float(ua[0]):.9g} and {float(ub[0]):.9g} differ by the ratio "
                             f"{p}/{q}: the exact common grid needs a {mbits}-bit multiplier, too wide; quantize both "
                             "inputs of the add with one shared quantizer (the same scale)")
        srcs.append(_times_int(L, f"{node.name}_align", info, n, mbits))
        shifts.append(0)
    out_w = max(srcs[0].fmt.bits + shifts[0], srcs[1].fmt.bits + shifts[1]) + 1
    if out_w > 48:
        raise _err(node, f"the operands' scales differ by the ratio {p}/{q}: their exact sum needs {out_w} bits "
                         "(> 48); quantize both inputs of the add with one shared quantizer (the same scale)")
    out = L.new_tensor(node.output[0], a.shape, Fmt(out_w, b.fmt.frac))
    sc = b.scale if b.scale is not None else Fr(1)
    set_scale(L.g.tensors[out], tuple(Fr(x) / q for x in sc) if isinstance(sc, tuple) else Fr(sc) / q)
    L.add(JoinAdd(name=L.g.unique(node.name), inputs=[srcs[0].name, srcs[1].name], outputs=[out], c=c, pixels=h * w,
                  in_w=srcs[0].fmt.bits, in_b_w=srcs[1].fmt.bits, out_w=out_w, shift_a=shifts[0], shift_b=shifts[1]))


CHAIN_HOOKS.update(materialize=materialize, float_tail_error=float_tail_error)


# ---------------------------------------------------------------------------------------------------------
# a residual add read only by a quantizer: one multiply-add-shift of both operands, verified exhaustively

#: most operand pairs the exhaustive verification of a two-operand requantizer enumerates
MAX_PAIR_CHECK = 1 << 18


def add_then_quant(L: Lowerer, node, qnode, a: TensorInfo, b: TensorInfo) -> bool:
    """``Quant(a + b)`` of two per-tensor-scaled tensors as ``sat((m_a * qa + m_b * qb + c) >> sh)`` (MulShift x 2,
    JoinAdd, AddConst, Requant), when constants exist that give the quantizer's exact output for EVERY pair of
    integers the operands can hold (enumerated: at most ``MAX_PAIR_CHECK`` pairs; each pair bounds ``c`` to an
    interval, the intersection must not be empty). Returns False (nothing emitted) otherwise: the exact common-grid
    sum (``add_streams``) and the quantizer's own lowering take over."""
    from binaryhpe.compile.kinds.elementwise import JoinAdd

    if a.shape != b.shape or a.fmt.bipolar or b.fmt.bipolar or isinstance(a.scale, tuple) \
            or isinstance(b.scale, tuple):
        return False
    try:
        qs = quant_spec(L, qnode)
    except BinaryHPEError:
        return False
    if qs.bipolar or qs.zp != 0:
        return False
    ra, rb = _int_range(L, a.name), _int_range(L, b.name)
    na, nb = ra[1] - ra[0] + 1, rb[1] - rb[0] + 1
    if na * nb > MAX_PAIR_CHECK:
        return False
    ua, ub = base_of(a)[0], base_of(b)[0]
    qa, qb = np.meshgrid(np.arange(ra[0], ra[1] + 1), np.arange(rb[0], rb[1] + 1), indexing="ij")
    qa, qb = qa.reshape(-1), qb.reshape(-1)
    # the exact outputs: u = (ua qa + ub qb) / s = (A qa + B qb) / D with integers A, B, D
    ka, kb = ua / qs.scale, ub / qs.scale
    den = ka.denominator * kb.denominator // math.gcd(ka.denominator, kb.denominator)
    A, B = int(ka * den), int(kb * den)
    if max(abs(A), abs(B), den).bit_length() + 12 > 62:
        return False
    num = A * qa.astype(np.int64) + B * qb.astype(np.int64)  # u = num / den, exactly
    fl = np.floor_divide(num, den)
    rem2 = 2 * (num - fl * den)  # 2 * frac * den
    mode = qs.mode
    if mode == "FLOOR":
        n = fl
    elif mode == "CEIL":
        n = fl + (rem2 > 0)
    elif mode in ("DOWN", "ROUND_TO_ZERO"):
        n = np.where(num >= 0, fl, fl + (rem2 > 0))
    elif mode == "UP":
        n = np.where(num > 0, fl + (rem2 > 0), fl)
    else:
        up = (rem2 > den) | ((rem2 == den) & {"ROUND": (fl % 2 == 1), "HALF_EVEN": (fl % 2 == 1),
                                                "HALF_UP": (num > 0), "HALF_DOWN": (num < 0)}[mode])
        n = fl + up
    f = np.clip(n, qs.qmin, qs.qmax)
    sat_lo, sat_hi = (0, (1 << qs.bits) - 1) if not qs.signed else (-(1 << (qs.bits - 1)), (1 << (qs.bits - 1)) - 1)
    low, high = f > sat_lo, f < sat_hi  # pairs whose output the saturation does not give
    found = None
    for sh in range(4, 40):
        for ma in sorted({int(math.floor(float(ka) * 2**sh)) + d for d in (0, 1, -1)}):
            for mb in sorted({int(math.floor(float(kb) * 2**sh)) + d for d in (0, 1, -1)}):
                if max(abs(ma), abs(mb)).bit_length() + 1 > MUL_CONST_BITS:
                    continue
                t = ma * qa.astype(np.int64) + mb * qb.astype(np.int64)
                c_lo = int(np.max(f[low] * (1 << sh) - t[low], initial=-(1 << 62)))
                c_hi = int(np.min((f[high] + 1) * (1 << sh) - t[high] - 1, initial=1 << 62))
                if c_lo <= c_hi:
                    found = (ma, mb, 0 if c_lo <= 0 <= c_hi else (c_lo if c_lo > 0 else c_hi), sh)
                    break
            if found:
                break
        if found:
            break
    if found is None:
        return False
    ma, mb, cc, sh = found
    h, w, c = a.shape
    srcs = []
    for info, m in ((a, ma), (b, mb)):
        srcs.append(_times_int(L, f"{node.name}_scale", info, m, max(2, abs(m).bit_length() + 1)))
    sum_w = max(srcs[0].fmt.bits, srcs[1].fmt.bits) + 1
    s_name = L.g.unique(f"{node.name}_sum")
    L.g.tensors[s_name] = TensorInfo(s_name, a.shape, Fmt(sum_w, 0))
    L.add(JoinAdd(name=L.g.unique(node.name), inputs=[srcs[0].name, srcs[1].name], outputs=[s_name], c=c,
                  pixels=h * w, in_w=srcs[0].fmt.bits, in_b_w=srcs[1].fmt.bits, out_w=sum_w))
    cbits = max(2, abs(cc).bit_length() + 1)
    c_w = max(sum_w, cbits) + 1
    c_name = L.g.unique(f"{node.name}_round")
    L.g.tensors[c_name] = TensorInfo(c_name, a.shape, Fmt(c_w, 0))
    L.add(AddConst(name=L.g.unique(f"{node.name}_round"), inputs=[s_name], outputs=[c_name], c=c, pixels=h * w,
                   in_w=sum_w, out_w=c_w, const_w=cbits, b=np.full(c, cc, dtype=np.int64)))
    q_w = qs.bits + 1 if not qs.signed else qs.bits
    out = L.new_tensor(qnode.output[0], a.shape, Fmt(q_w, 0))
    set_scale(L.g.tensors[out], qs.scale)
    L.add(Requant(name=L.g.unique(qnode.name), inputs=[c_name], outputs=[out], c=c, pixels=h * w, in_w=c_w,
                  out_w=q_w, shift=sh, relu=not qs.signed))
    L.skip.add(qnode.name)
    return True


# ---------------------------------------------------------------------------------------------------------
# a PReLU kink inside a signed output's range: split at zero into two multiply-add-shifts

_MIRROR = {"FLOOR": "CEIL", "CEIL": "FLOOR"}


def _mulshift_branch(L: Lowerer, qnode, chain: Chain, qs: QuantSpec, src: TensorInfo, lo: int, hi: int,
                     tag: str) -> TensorInfo | None:
    """The constants of ``max(sat((m_c x + a_c) >> sh), 0)`` equal to ``qs(chain(x))`` (a function >= 0) on
    [lo, hi] (proven by ``mulshift_constants``; a ReLU Requant of ``qs.bits`` signed bits), or None."""
    dirs, t = solve_thresholds(chain, qs, lo, hi)
    lo_p, hi_p = np.where(dirs > 0, lo, -hi), np.where(dirs > 0, hi, -lo)
    q_w = qs.bits
    # the branch's values are >= 0: the proof is over the levels 0..qmax, the saturation a ReLU Requant's [0, max]
    t = t[:, -qs.qmin:]
    found = mulshift_constants(t, list(range(0, qs.qmax + 1)), lo_p, hi_p, 0, (1 << (q_w - 1)) - 1,
                               _slopes(chain, qs, dirs), min(MUL_CONST_BITS, MAX_EPILOGUE_WIDTH - 2 - src.fmt.bits))
    if found is None:
        return None
    m, a, sh = found
    m, a, mbits, prod_w, abits, sum_w = _mulshift_widths(m, a, dirs, src)
    if sum_w > MAX_EPILOGUE_WIDTH:
        return None
    return (m, a, sh, mbits, prod_w, abits, sum_w, q_w, tag)


def _emit_branch(L: Lowerer, qnode, src: TensorInfo, plan) -> TensorInfo:
    """The MulShift -> AddConst -> Requant of a ``_mulshift_branch`` plan, into a new tensor."""
    m, a, sh, mbits, prod_w, abits, sum_w, q_w, tag = plan
    h, w, c = src.shape
    names = [L.g.unique(f"{qnode.name}_{tag}{k}") for k in ("_mul", "_add", "")]
    for n, wd in zip(names, (prod_w, sum_w, q_w)):
        L.g.tensors[n] = TensorInfo(n, src.shape, Fmt(wd, 0))
    L.add(MulShift(name=L.g.unique(names[0]), inputs=[src.name], outputs=[names[0]], c=c, pixels=h * w,
                   in_w=src.fmt.bits, out_w=prod_w, const_w=mbits, m=m, shift=0))
    L.add(AddConst(name=L.g.unique(names[1]), inputs=[names[0]], outputs=[names[1]], c=c, pixels=h * w,
                   in_w=prod_w, out_w=sum_w, const_w=abits, b=a))
    L.add(Requant(name=L.g.unique(names[2]), inputs=[names[1]], outputs=[names[2]], c=c, pixels=h * w, in_w=sum_w,
                  out_w=q_w, shift=sh, relu=True))
    return L.g.tensors[names[2]]


def _prelu_split(L: Lowerer, qnode, chain: Chain, qs: QuantSpec, src: TensorInfo, lo: int, hi: int) -> str | None:
    """``Q(prelu(v))`` for a signed quantizer ``Q`` (zero point 0) and slopes >= 0 as ``P + N``: ``P = Q(relu(v))``
    is 0 where ``v < 0`` and ``N = -Q~(min(relu(-slope v), -qmin * s))`` (``Q~`` the mirrored rounding:
    ``-Q(u) = Q~(-u)``) is 0 where ``v >= 0``, so their sum is the quantizer's output everywhere; each is a monotone
    clamped affine function of the accumulator with its own proven multiply-add-shift. None where the chain is
    not of that form or a branch has no exact constants."""
    from binaryhpe.compile.kinds.elementwise import JoinAdd

    idx = [i for i, st in enumerate(chain.steps) if st[0] == "prelu"]
    if len(idx) != 1 or not qs.signed or qs.zp != 0 or qs.bipolar or qs.bits + 1 > 24:
        return None
    i = idx[0]
    if any(st[0] in ("relu", "prelu", "clip", "round") for st in chain.steps[i + 1:]):
        return None
    c = chain.c
    pre, post, slope = chain.steps[:i], chain.steps[i + 1:], chain.steps[i][1]
    zero = [Fr(0)] * c
    p_chain = Chain(chain.src, chain.base, pre + [("relu",)] + post, chain.nodes)
    # -slope * v after the (affine) steps that follow the PReLU: -(post(slope v)) on the negative side
    n_steps = pre + [("affine", list(slope), zero)] + post + [("affine", [Fr(-1)] * c, zero), ("relu",),
                                                              ("clip", None, -qs.qmin * qs.scale)]
    n_chain = Chain(chain.src, chain.base, n_steps, chain.nodes)
    if any(st[0] == "affine" and any(b != 0 for b in st[2]) for st in post):
        return None  # an offset after the PReLU moves the kink off zero
    n_qs = QuantSpec(scale=qs.scale, bits=qs.bits + 1, signed=True, mode=_MIRROR.get(qs.mode, qs.mode))
    pos = _mulshift_branch(L, qnode, p_chain, qs, src, lo, hi, "pos")
    neg = _mulshift_branch(L, qnode, n_chain, n_qs, src, lo, hi, "neg") if pos is not None else None
    if neg is None:
        return None
    pos, neg = _emit_branch(L, qnode, src, pos), _emit_branch(L, qnode, src, neg)
    h, w, ch = src.shape
    nn = L.g.unique(f"{qnode.name}_negate")
    L.g.tensors[nn] = TensorInfo(nn, src.shape, Fmt(neg.fmt.bits + 2, 0))
    L.add(MulShift(name=L.g.unique(nn), inputs=[neg.name], outputs=[nn], c=ch, pixels=h * w, in_w=neg.fmt.bits,
                   out_w=neg.fmt.bits + 2, const_w=2, m=np.full(ch, -1, dtype=np.int64), shift=0))
    out = L.new_tensor(qnode.output[0], src.shape, Fmt(qs.bits, 0))
    set_scale(L.g.tensors[out], qs.scale)
    L.add(JoinAdd(name=L.g.unique(qnode.name), inputs=[pos.name, nn], outputs=[out], c=ch, pixels=h * w,
                  in_w=pos.fmt.bits, in_b_w=neg.fmt.bits + 2, out_w=qs.bits))  # P * N = 0: no saturation
    return out
