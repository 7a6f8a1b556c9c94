"""Float-scaled epilogues compiled exactly (compile/lower_quant.py), against an independent brute force.

Each case is a small QONNX graph: an input quantizer giving every integer of its range, a chain of float ops
(Mul / Div / Add / Sub by per-channel constants, BatchNormalization with either sign of scale, Relu, PRelu with
non-negative slopes, Clip) and a quantizer (every qonnx rounding mode, float scales, signed or not, narrow or
not, 1 to 8 bits, BipolarQuant). The graph is lowered and the hardware graph's integer execution
(``HwGraph.execute``, the kinds the RTL implements) is compared, for every input integer and channel, with the
graph's exact real-number value computed here with sympy (exact rationals and square roots), sharing no code
with the compiler's solver. The exact reference (compile/reference.py) must agree as well. Then the refusals:
each a one-line LoweringError naming the node and the reason.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from onnx import TensorProto, helper, numpy_helper

from binaryhpe.compile.kinds.elementwise import AddConst, MulShift, MultiThreshold, Requant, Threshold
from binaryhpe.compile.lower import LoweringError, load_qonnx, lower
from binaryhpe.compile.lower_quant import Surd, round_exact
from binaryhpe.compile.reference import compare_with_onnx

QDOM = "qonnx.custom_op.general"
MODES = ["ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN"]


# ---------------------------------------------------------------------------------------------------------
# graphs

def _f32(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float32)


class _G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, v) -> str:
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(_f32(v), name))
        return name

    def op(self, op, ins, domain="", **attrs) -> str:
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(helper.make_node(op, ins, [out], name=f"{op.lower()}_{self.n}", domain=domain, **attrs))
        return out

    def quant(self, x, scale, bits, signed=1, narrow=0, mode="ROUND", zp=0.0) -> str:
        return self.op("Quant", [x, self.const(scale), self.const(zp), self.const(float(bits))], domain=QDOM,
                       signed=signed, narrow=narrow, rounding_mode=mode)


def _build(tmp_path, c, w, in_bits, in_scale, steps, q, name="m"):
    """x (1, c, 1, w) -> Quant(in_scale, in_bits) -> steps -> quantizer ``q`` (dict, or "bipolar")."""
    g = _G()
    t = g.quant("x", in_scale, in_bits)
    for st in steps:
        k = st[0]
        pc = (lambda v: np.asarray(v, dtype=np.float64).reshape(1, c, 1, 1))
        if k in ("Mul", "Div", "Add", "Sub"):
            t = g.op(k, [t, g.const(pc(st[1]))])
        elif k == "BN":
            t = g.op("BatchNormalization", [t] + [g.const(np.asarray(v).reshape(c)) for v in st[1:5]], epsilon=1e-5)
        elif k == "Relu":
            t = g.op("Relu", [t])
        elif k == "PRelu":
            t = g.op("PRelu", [t, g.const(pc(st[1]))])
        elif k == "Clip":
            t = g.op("Clip", [t, g.const(np.float32(st[1])), g.const(np.float32(st[2]))])
    if q == "bipolar":
        t = g.op("BipolarQuant", [t, g.const(1.0)], domain=QDOM)
    else:
        t = g.quant(t, q["scale"], q["bits"], q.get("signed", 1), q.get("narrow", 0), q.get("mode", "ROUND"),
                    q.get("zp", 0.0))
    g.nodes[-1].output[0] = "y"
    graph = helper.make_graph(g.nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 1, w])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 1, w])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QDOM, 1)])
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    return load_qonnx(path)


# ---------------------------------------------------------------------------------------------------------
# the independent brute force: sympy, exact

def _R(v) -> sp.Rational:
    return sp.Rational(Fraction(float(np.float32(v))))


def _round_sym(u, mode: str) -> int:
    n = int(sp.floor(u))
    d = u - n
    half = sp.Rational(1, 2)
    pos = bool(u > 0)
    if mode == "FLOOR":
        return n
    if mode == "CEIL":
        return n if d == 0 else n + 1
    if mode == "DOWN":
        return n if (d == 0 or pos) else n + 1
    if mode == "UP":
        return n if d == 0 else (n + 1 if pos else n)
    if d > half:
        return n + 1
    if d < half:
        return n
    if mode in ("ROUND", "HALF_EVEN"):
        return n if n % 2 == 0 else n + 1
    if mode == "HALF_UP":
        return n + 1 if pos else n
    return n if pos else n + 1  # HALF_DOWN


def _brute(c, ints, in_scale, steps, q) -> np.ndarray:
    """(c, len(ints)) exact quantizer outputs (float64 of (n - zp) * scale, exact)."""
    out = np.zeros((c, len(ints)))
    for ch in range(c):
        for i, k in enumerate(ints):
            v = sp.Integer(int(k)) * _R(in_scale)
            for st in steps:
                kind = st[0]
                at = (lambda a: _R(np.asarray(a, dtype=np.float64).reshape(-1)[ch if np.size(a) > 1 else 0]))
                if kind == "Mul":
                    v = v * at(st[1])
                elif kind == "Div":
                    v = v / at(st[1])
                elif kind == "Add":
                    v = v + at(st[1])
                elif kind == "Sub":
                    v = v - at(st[1])
                elif kind == "BN":
                    gm, bt, mn, var = (at(a) for a in st[1:5])
                    v = gm * (v - mn) / sp.sqrt(var + _R(1e-5)) + bt
                elif kind == "Relu":
                    v = v if v > 0 else sp.Integer(0)
                elif kind == "PRelu":
                    v = v if v >= 0 else v * at(st[1])
                elif kind == "Clip":
                    lo, hi = _R(st[1]), _R(st[2])
                    v = lo if v < lo else (hi if v > hi else v)
            if q == "bipolar":
                out[ch, i] = 1.0 if v >= 0 else -1.0
                continue
            s, zp, bits = _R(q["scale"]), int(q.get("zp", 0)), q["bits"]
            signed, narrow = q.get("signed", 1), q.get("narrow", 0)
            if bits == 1 and signed:
                out[ch, i] = float((1 if v / s + zp >= 0 else -1) - zp) * float(np.float32(q["scale"]))
                continue
            lo = -(2 ** (bits - 1)) + narrow if signed else 0
            hi = 2 ** (bits - 1) - 1 if signed else 2**bits - 1 - narrow
            n = min(max(_round_sym(v / s + zp, q.get("mode", "ROUND")), lo), hi)
            out[ch, i] = float(Fraction(n - zp) * Fraction(float(np.float32(q["scale"]))))
    return out


def _check(tmp_path, c, in_bits, in_scale, steps, q):
    ints = np.arange(-(1 << (in_bits - 1)), 1 << (in_bits - 1))
    mw = _build(tmp_path, c, ints.size, in_bits, in_scale, steps, q)
    g = lower(mw)
    x = (np.broadcast_to(ints, (c, ints.size)) * float(np.float32(in_scale))).astype(np.float32)[None, :, None, :]
    r = compare_with_onnx(g, mw, x)
    got = g.tensors[g.output].to_real(r["env"][g.output])  # (1, w, c)
    want = _brute(c, ints, in_scale, steps, q)
    assert np.array_equal(got[0].T, want), (np.argwhere(got[0].T != want)[:5], [type(lay).__name__ for lay in g.layers])
    assert r["output_exact"] and r["float64_exact"] and r["first_mismatch"] is None, r["non_dyadic"]
    return g


# ---------------------------------------------------------------------------------------------------------
# exact arithmetic

def test_surd_sign_and_rounding_match_sympy():
    rng = np.random.default_rng(1)
    for _ in range(300):
        p, r = (Fraction(int(v), int(d)) for v, d in zip(rng.integers(-50, 50, 2), rng.integers(1, 9, 2)))
        d = Fraction(int(rng.integers(1, 30)), int(rng.integers(1, 5)))
        s = Surd(p, r, d)
        e = sp.Rational(p) + sp.Rational(r) * sp.sqrt(sp.Rational(d))
        assert s.sign() == (1 if e > 0 else (-1 if e < 0 else 0))
        assert s.floor() == int(sp.floor(e))
        for mode in MODES:
            assert round_exact(s, mode) == _round_sym(e, mode), (s, mode)
    # exact ties: p + 0*sqrt(d) on half-integers, every mode
    for p in (Fraction(-5, 2), Fraction(-1, 2), Fraction(1, 2), Fraction(3, 2)):
        for mode in MODES:
            assert round_exact(Surd(p), mode) == _round_sym(sp.Rational(p), mode), (p, mode)
    # sqrt by squaring: 3 - sqrt(9) is exactly 0, 2 - sqrt(4.000001) is negative
    assert Surd(3, -1, 9).sign() == 0 and Surd(2, -1, Fraction(4000001, 1000000)).sign() == -1


# ---------------------------------------------------------------------------------------------------------
# the solver, end to end, against the brute force

@pytest.mark.parametrize("mode", MODES)
def test_every_rounding_mode_with_exact_ties(tmp_path, mode):
    """Half-integer values (x * 0.5, x * 1.5) land exactly on the ROUND-family boundaries, integers on the
    others': every mode decides them as qonnx's int_quant does, in 3-bit and 4-bit, signed and not."""
    steps = [("Mul", [0.5, 1.5, -0.25])]
    g = _check(tmp_path, 3, 5, 1.0, steps, {"scale": 1.0, "bits": 4, "mode": mode})
    # (FLOOR of a fixed-point product is the hardware-mode requantizer, a shift; the others thresholds)
    assert any(isinstance(lay, MultiThreshold) for lay in g.layers) == (mode != "FLOOR")
    _check(tmp_path, 3, 5, 1.0, steps + [("Add", [0.25, -0.5, 0.0])],
           {"scale": 0.5, "bits": 3, "signed": 0, "mode": mode})


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    c = 3
    f = (lambda lo, hi: rng.uniform(lo, hi, c).astype(np.float32))
    steps = [("Mul", f(0.01, 0.2))]
    if rng.random() < 0.5:
        steps.append(("Add", f(-1, 1)))
    if rng.random() < 0.7:
        gamma = f(-2, 2)
        gamma[0] = -abs(gamma[0])  # a negative BN scale: a decreasing channel
        gamma[1] = abs(gamma[1])
        steps.append(("BN", gamma, f(-1, 1), f(-1, 1), f(0.2, 3)))
    act = rng.integers(0, 4)
    if act == 1:
        steps.append(("Relu",))
    elif act == 2:
        steps.append(("PRelu", f(0, 0.5)))
    elif act == 3:
        steps.append(("Clip", -1.0, 1.0))
    if rng.random() < 0.3:
        steps.append(("Div", f(0.5, 2)))
    kind = rng.integers(0, 6)
    if kind == 0:
        q = "bipolar"
    else:
        bits = int(rng.choice([1, 2, 3, 4, 8]))
        q = {"scale": float(np.float32(rng.uniform(0.02, 0.6))), "bits": bits, "signed": int(rng.random() < 0.6),
             "narrow": int(rng.random() < 0.4), "mode": str(rng.choice(MODES))}
        if bits == 1:
            q["signed"] = int(rng.random() < 0.5)
    in_scale = float(np.float32(rng.uniform(0.01, 0.1))) if rng.random() < 0.5 else 1.0
    return c, 6, in_scale, steps, q


@pytest.mark.parametrize("seed", range(16))
def test_random_chains_equal_the_brute_force(tmp_path, seed):
    """Random chains (scale, bias, BatchNorm of both signs, Relu / PRelu / Clip, Div) and quantizers (every mode,
    1 to 8 bits, signed or not, narrow or not, float scales, BipolarQuant), over every integer of a 6-bit input."""
    _check(tmp_path, *_random_case(seed))


def test_binary_output_is_a_threshold_with_both_directions(tmp_path):
    steps = [("Mul", [0.03, 0.05, 0.07]), ("BN", [-1.5, 0.7, 0.0], [0.2, -0.1, 0.3], [0.1, 0.4, -0.3], [0.9, 1.3, 2.0])]
    g = _check(tmp_path, 3, 7, 1.0, steps, "bipolar")
    th = [lay for lay in g.layers if isinstance(lay, Threshold)]
    assert len(th) == 1 and list(th[0].neg) == [1, 0, 0]


def test_eight_bit_output_is_a_proven_multiply_add_shift(tmp_path):
    """256 levels: MulShift -> AddConst -> Requant with constants proven at every level boundary."""
    steps = [("Mul", [0.013, 0.021, 0.017]), ("BN", [1.1, -0.8, 0.5], [0.3, -0.2, 0.1], [0.0, 0.5, -0.5],
                                                     [1.0, 2.0, 0.5])]
    g = _check(tmp_path, 3, 8, 1.0, steps, {"scale": 0.011, "bits": 8, "mode": "ROUND"})
    kinds = [type(lay) for lay in g.layers]
    assert MulShift in kinds and AddConst in kinds and Requant in kinds and MultiThreshold not in kinds, kinds
    # unsigned (QuantReLU): Relu then an unsigned 8-bit quantizer
    _check(tmp_path, 3, 8, 1.0, [("Mul", [0.013, 0.021, 0.017]), ("Add", [0.1, -0.2, 0.0]), ("Relu",)],
           {"scale": 0.0123, "bits": 8, "signed": 0})


# ---------------------------------------------------------------------------------------------------------
# refusals: one line, naming the node and the reason

def _one_error(mw) -> str:
    with pytest.raises(LoweringError) as ei:
        lower(mw)
    msg = str(ei.value)
    assert "\n" not in msg and msg.count("cannot map node") == 1, msg
    return msg


def test_negative_prelu_slope_is_refused(tmp_path):
    mw = _build(tmp_path, 3, 8, 4, 1.0, [("Mul", [0.1, 0.1, 0.1]), ("PRelu", [0.1, -0.2, 0.0])],
                {"scale": 0.25, "bits": 4})
    msg = _one_error(mw)
    assert "op type Quant" in msg and "negative slope" in msg, msg


def test_two_batchnorms_without_a_quantizer_between_are_refused(tmp_path):
    bn = ("BN", [1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 2.0])
    mw = _build(tmp_path, 3, 8, 4, 1.0, [("Mul", [0.1, 0.1, 0.1]), bn, bn], {"scale": 0.25, "bits": 4})
    msg = _one_error(mw)
    assert "op type BatchNormalization" in msg and "second BatchNormalization" in msg, msg


def test_wide_quantizer_without_exact_constants_is_refused(tmp_path):
    """A 12-bit signed quantizer after a ReLU: its levels have a kink that no multiply-add-shift follows, and 4096
    levels are too many for thresholds."""
    mw = _build(tmp_path, 3, 8, 8, 1.0, [("Mul", [0.37, 0.41, 0.29]), ("Relu",)], {"scale": 0.013, "bits": 12})
    msg = _one_error(mw)
    assert "op type Quant" in msg and "no exact multiply-add-shift" in msg, msg


def test_float_value_read_by_a_non_quantizer_is_refused(tmp_path):
    """A BatchNorm output read by MaxPool (not a quantizer): the error names the BatchNormalization."""
    g = _G()
    t = g.quant("x", 1.0, 4)
    t = g.op("Mul", [t, g.const(np.full((1, 2, 1, 1), 0.1))])
    t = g.op("BatchNormalization", [t] + [g.const(np.ones(2)) for _ in range(4)], epsilon=1e-5)
    t = g.op("MaxPool", [t], kernel_shape=[1, 2], strides=[1, 2])
    g.nodes[-1].output[0] = "y"
    graph = helper.make_graph(g.nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 1])], g.inits)
    p = tmp_path / "m.onnx"
    p.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                          helper.make_opsetid(QDOM, 1)]).SerializeToString())
    msg = _one_error(load_qonnx(p))
    assert "op type BatchNormalization" in msg and "without a quantizer" in msg, msg


def _add_graph(tmp_path, sa: float, sb: float, then_quant: bool):
    """x -> Quant(1, 5 bits) -> two quantizers with scales sa, sb -> Add (-> Quant(0.25, 8 bits))."""
    g = _G()
    t = g.quant("x", 1.0, 5)
    y = g.op("Add", [g.quant(t, sa, 8), g.quant(t, sb, 8)])
    if then_quant:
        y = g.quant(y, 0.25, 8)
    g.nodes[-1].output[0] = "y"
    graph = helper.make_graph(g.nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 1, 16])], g.inits)
    p = tmp_path / "m.onnx"
    p.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                          helper.make_opsetid(QDOM, 1)]).SerializeToString())
    return load_qonnx(p)


@pytest.mark.parametrize("then_quant", [False, True])
def test_residual_add_of_different_scales_is_exact(tmp_path, then_quant):
    """Scales 0.3 and 0.2 (float32): their ratio is a ratio of integers p / q, so p * a + q * b on the grid
    0.2 / q is the exact sum; the reference holds it as integers times that scale and agrees, on all 32 inputs.
    Followed by a quantizer, the add and the quantizer are one multiply-add-shift of both operands whose
    constants are checked on every pair of operand integers (compile/lower_quant.add_then_quant)."""
    mw = _add_graph(tmp_path, 0.3, 0.2, then_quant)
    g = lower(mw)
    if then_quant:  # the add and its quantizer: one multiply-add-shift of both operands, verified on every pair
        assert not any(isinstance(lay, MultiThreshold) for lay in g.layers[2:])
        assert isinstance(g.layers[-1], Requant) and g.layers[-1].shift > 0
    x = np.arange(-16, 16, dtype=np.float32).reshape(1, 2, 1, 16)
    r = compare_with_onnx(g, mw, x)
    assert r["first_mismatch"] is None and r["output_exact"] and r["float64_exact"], r["first_mismatch"]


def test_residual_add_without_a_narrow_common_grid_is_refused(tmp_path):
    """Scales 0.3 and 0.2 * 2^-12, the sum read by the graph output (no quantizer that could absorb it): the exact
    common grid needs a 37-bit multiplier; the error says what to do."""
    msg = _one_error(_add_graph(tmp_path, 0.3, float(np.float32(0.2) * 2.0**-12), False))
    assert "op type Add" in msg and "ratio" in msg and "shared quantizer" in msg, msg


def test_per_channel_activation_quantizer_is_refused(tmp_path):
    mw = _build(tmp_path, 3, 8, 4, 1.0, [("Mul", [0.1, 0.2, 0.3])], {"scale": np.array([0.1, 0.2, 0.3]).reshape(
        1, 3, 1, 1), "bits": 4})
    msg = _one_error(mw)
    assert "op type Quant" in msg and "per-tensor" in msg, msg


# ---------------------------------------------------------------------------------------------------------
# the reference's own decisions (compile/reference.py FloatTracker), independent of the compiler

def test_reference_rechecks_uncertain_decisions_exactly(tmp_path, monkeypatch):
    """With the float64 error bound made huge (every decision uncertain) and the float64 BatchNorm output pushed
    off by 0.4 of a quantizer step, the reference recomputes every element exactly from the integers and the
    recipe (Fractions, the square root by squaring) and corrects the float64 decisions: its output equals the
    independent brute force."""
    from binaryhpe.compile import reference as R

    steps = [("Mul", [0.031, 0.047, 0.029]), ("BN", [0.9, -1.3, 0.6], [0.1, -0.2, 0.3], [0.2, 0.1, -0.4],
                                                     [1.1, 0.7, 2.3])]
    q = {"scale": 0.1, "bits": 4, "mode": "ROUND"}
    ints = np.arange(-32, 32)
    mw = _build(tmp_path, 3, ints.size, 6, 1.0, steps, q)
    orig = R._run_node_standard

    def off(node, ctx, graph, opset):
        orig(node, ctx, graph, opset)
        if node.op_type == "BatchNormalization":
            ctx[node.output[0]] = ctx[node.output[0]] + 0.04

    monkeypatch.setattr(R, "_run_node_standard", off)
    monkeypatch.setattr(R, "_U", 2.0**-3)
    x = np.broadcast_to(ints, (3, ints.size)).astype(np.float32)[None, :, None, :]
    run = R.exact_reference(mw, x)
    st = run.tracker.stats
    assert st["rechecked"] == 3 * ints.size and st["corrected"] > 0 and run.decisions_exact, st
    want = _brute(3, ints, 1.0, steps, q)
    assert np.array_equal(run.output[0, :, 0, :], want)
    # without the exact recheck (the same push, a bound too small to see it) the float64 decisions are wrong
    monkeypatch.setattr(R, "_U", 2.0**-53)
    run = R.exact_reference(mw, x)
    assert not np.array_equal(run.output[0, :, 0, :], want)


def test_multithreshold_offset_kind():
    """The kind the solver emits for signed levels: y = offset + #{x >= t}; its output range is checked."""
    mt = MultiThreshold(name="mt", c=2, in_w=8, thr_w=9, out_w=2, offset=-1, signed=True,
                        thresholds=np.array([[-3, 4], [0, 0]]))
    x = np.array([[[-4, -1], [-3, 0], [4, 5]]])
    assert mt.execute([x])[0].tolist() == [[[-1, -1], [0, 1], [1, 1]]]
    assert mt.out_streams()[0].signed and mt.n == 2
    with pytest.raises(ValueError, match="do not fit the signed 2-bit output"):
        MultiThreshold(name="bad", c=1, in_w=8, thr_w=9, out_w=2, offset=-1, signed=True,
                       thresholds=np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="1 <= n <= 3"):
        MultiThreshold(name="bad", c=1, in_w=8, thr_w=9, out_w=2, thresholds=np.zeros((1, 4)))


@pytest.mark.parametrize("pool", ["GlobalAveragePool", "AveragePool3"])
def test_average_pools_of_any_window_are_exact(tmp_path, pool):
    """A 3x3 average (a global one over 3x3, or a 3x3 window): the exact window sum with the scale divided by 9,
    requantized by a float-scale quantizer; equal to the exact reference on 40 random frames."""
    g = _G()
    t = g.quant("x", 0.0371, 6)
    t = g.op("GlobalAveragePool", [t]) if pool == "GlobalAveragePool" else \
        g.op("AveragePool", [t], kernel_shape=[3, 3], strides=[3, 3])
    g.quant(t, 0.013, 8)
    g.nodes[-1].output[0] = "y"
    graph = helper.make_graph(g.nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 1, 1])], g.inits)
    p = tmp_path / "m.onnx"
    p.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                          helper.make_opsetid(QDOM, 1)]).SerializeToString())
    mw = load_qonnx(p)
    hw = lower(mw)
    assert hw.tensors[hw.layers[0].outputs[0]].scale == Fraction(float(np.float32(0.0371))) / 9
    rng = np.random.default_rng(3)
    for _ in range(40):
        x = rng.uniform(-1.3, 1.3, (1, 4, 3, 3)).astype(np.float32)
        r = compare_with_onnx(hw, mw, x)
        assert r["first_mismatch"] is None and r["output_exact"] and r["float64_exact"], r


@pytest.mark.parametrize("bits,zp", [(3, 2.0), (8, 100.0)])
def test_nonzero_zero_point(tmp_path, bits, zp):
    """An asymmetric (unsigned, zero point zp) quantizer: the hardware integers are the quantized value minus zp."""
    steps = [("Mul", [0.021, 0.033, 0.017]), ("Add", [0.3, -0.2, 0.05])]
    _check(tmp_path, 3, 7, 1.0, steps, {"scale": 0.0173, "bits": bits, "signed": 0, "zp": zp, "mode": "ROUND"})


@pytest.mark.parametrize("mode", ["ROUND", "FLOOR", "CEIL", "HALF_UP"])
def test_prelu_kink_in_a_signed_output_splits_at_zero(tmp_path, mode):
    """BN + PReLU (slopes 0.25, 0.1, 0) + a signed 8-bit quantizer: no single multiply-add-shift follows the kink, so
    the output is split at zero, Q(relu(v)) + (-Q~(relu(-slope v))) (Q~ the mirrored rounding), each a proven
    multiply-add-shift with a ReLU; exact against the brute force on every input integer and channel."""
    steps = [("Mul", [0.013, 0.021, 0.017]), ("BN", [1.1, -0.8, 0.5], [0.3, -0.2, 0.1], [0.0, 0.5, -0.5],
                                                     [1.0, 2.0, 0.5]), ("PRelu", [0.25, 0.1, 0.0])]
    g = _check(tmp_path, 3, 8, 1.0, steps, {"scale": 0.011, "bits": 8, "mode": mode})
    kinds = [type(lay).__name__ for lay in g.layers]
    assert "MultiThreshold" not in kinds and kinds.count("Requant") == 2 and "JoinAdd" in kinds, kinds
