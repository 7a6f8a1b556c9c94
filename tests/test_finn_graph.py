"""The FINN backend's hw_graph lowering (compile/backends/finn_graph.py), checked without FINN: the arithmetic
FINN's Requant performs on the constants we hand it, evaluated the way FINN's python execution and its HLS
variant evaluate it (float32), equals our kinds' integers for every input value; and what it cannot take it
names. FINN's own execution of these graphs is in test_backend_finn.py."""

import numpy as np
import pytest
from qonnx.core.datatype import DataType

from binaryhpe import BinaryHPEError
from binaryhpe.compile.backends import finn_graph
from binaryhpe.compile.graph import Fmt, HwGraph, TensorInfo
from binaryhpe.compile.kinds import elementwise, mvu, plumbing, pool, swg
from binaryhpe.compile.kinds.base import HwLayer
from binaryhpe.compile.kinds.elementwise import AddConst, MulShift, Requant
from binaryhpe.compile.kinds.mvu import FxpMvu
from binaryhpe.compile.kinds.swg import SlidingWindow


def _one_layer(layer, in_bits: int, c: int) -> HwGraph:
    g = HwGraph(source="test")
    g.tensors["x"] = TensorInfo("x", (1, 1, c), Fmt(in_bits, 0))
    g.tensors["y"] = TensorInfo("y", (1, 1, c), Fmt(getattr(layer, "out_w", 16), 0))
    layer.inputs, layer.outputs = ["x"], ["y"]
    g.layers, g.input, g.output = [layer], "x", "y"
    return g


def _finn_requant(model, node, x: np.ndarray, tie: str) -> np.ndarray:
    """FINN's Requant on ``x`` (one column a channel): python execution floor(x*scale + bias + 1/2) (tie "up"),
    or its HLS code, ``lrint(x*scale + bias)`` in float32 (ties to even), then the clip to the output type."""
    scale = model.get_initializer(node.input[1]).astype(np.float32)
    bias = model.get_initializer(node.input[2]).astype(np.float32)
    v = x.astype(np.float32) * scale + bias  # float32 throughout, as both do
    r = np.floor(v + np.float32(0.5)) if tie == "up" else np.rint(v)
    dt = DataType[[a for a in node.attribute if a.name == "outputDataType"][0].s.decode()]
    return np.clip(r, dt.min(), dt.max()).astype(np.int64)


CASES = {
    # our kind, its input width: every input value of that width is tried on every channel
    "requant_16_to_8_shift_6": (lambda c: Requant("rq", c=c, in_w=16, out_w=8, shift=6), 16),
    "requant_16_to_8_shift_1": (lambda c: Requant("rq", c=c, in_w=16, out_w=8, shift=1), 16),
    "requant_relu_shift_3": (lambda c: Requant("rq", c=c, in_w=12, out_w=8, shift=3, relu=True), 12),
    "requant_left_shift_2": (lambda c: Requant("rq", c=c, in_w=8, out_w=16, shift=-2), 8),
    "mulshift_alpha": (lambda c: MulShift("ms", c=c, in_w=16, out_w=16, const_w=8, shift=7,
                                          m=np.array([127, -128, 1, 0, -1, 77][:c])), 16),
    "addconst_saturating": (lambda c: AddConst("ac", c=c, in_w=16, out_w=16, const_w=16,
                                               b=np.array([32767, -32768, 5, 0, -3, 1000][:c])), 16),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("tie", ["up", "even"])
def test_requant_constants_give_our_floor_under_both_tie_rules(case, tie):
    make, in_bits = CASES[case]
    layer = make(6)
    g = _one_layer(layer, in_bits, 6)
    model, rows, _ = finn_graph.build_model(g)
    nodes = [n for n in model.graph.node if n.op_type == "Requant"]
    assert len(nodes) == 1 and rows[0]["ours"] == [layer.name]
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    x = np.repeat(np.arange(lo, hi + 1, dtype=np.int64)[:, None], 6, axis=1)  # every value, every channel
    ours = layer.execute([x[None]])[0][0]
    got = _finn_requant(model, nodes[0], x, tie)
    assert np.array_equal(got, ours), (case, tie, int(np.count_nonzero(got != ours)))


def test_plain_half_bias_would_fail_under_hls_rounding():
    """Why the bias is -(1/2 - 2^-(shift+1)) and not -1/2: with -1/2, every x divisible by 2^shift lands on a
    tie, and the HLS variant's lrint rounds half of those to the even neighbour, below our floor."""
    layer = Requant("rq", c=1, in_w=16, out_w=16, shift=4)
    g = _one_layer(layer, 16, 1)
    model, _, _ = finn_graph.build_model(g)
    node = next(n for n in model.graph.node if n.op_type == "Requant")
    model.set_initializer(node.input[2], np.array([-0.5], dtype=np.float32))
    x = np.arange(-32768, 32768, dtype=np.int64)[:, None]
    ours = layer.execute([x[None]])[0][0]
    assert np.array_equal(_finn_requant(model, node, x, "up"), ours)  # python's floor(v + 1/2) hides it
    wrong = np.count_nonzero(_finn_requant(model, node, x, "even") != ours)
    assert wrong == 65536 // 16 // 2, wrong  # the ties at odd multiples of 16: one in 32 inputs


def test_accumulator_beyond_float32_is_refused_with_the_layer_name():
    """FINN's python execution holds integers in float32: an accumulator that can reach 2^24 is refused."""
    g = HwGraph(source="test")
    g.tensors["x"] = TensorInfo("x", (2, 2, 2048), Fmt(16, 0))
    g.tensors["w"] = TensorInfo("w", (2, 2, 2048), Fmt(16, 0), windowed=True)
    g.tensors["y"] = TensorInfo("y", (2, 2, 4), Fmt(48, 0))
    g.layers = [SlidingWindow("swg", ["x"], ["w"], h=2, w=2, c=2048, k=1, elem_w=16),
                FxpMvu("wide_conv", ["w"], ["y"], n=2048, cout=4, weights=np.ones((4, 2048), dtype=np.int64),
                       pixels=4, in_w=16, w_w=8)]
    g.input, g.output = "x", "y"
    with pytest.raises(BinaryHPEError, match=r"finn cannot take layer 'wide_conv' \(FxpMvu\).*2\^24"):
        finn_graph.build_model(g)


def test_kind_without_mapping_is_named():
    class Mystery(HwLayer):
        pass

    g = _one_layer(Requant("rq", c=2, in_w=8, out_w=8), 8, 2)
    g.layers.append(Mystery("odd_one", ["y"], ["z"]))
    g.tensors["z"] = TensorInfo("z", (1, 1, 2), Fmt(8, 0))
    g.output = "z"
    with pytest.raises(BinaryHPEError, match=r"finn backend: layer 'odd_one' is of kind Mystery, which the finn "
                                             r"backend neither maps nor refuses"):
        finn_graph.build_model(g)


def test_every_kind_of_ours_has_a_finn_mapping():
    ours = set(elementwise.KINDS)
    for mod in (mvu, plumbing, pool, swg):
        ours |= {name for name, obj in vars(mod).items()
                 if isinstance(obj, type) and issubclass(obj, HwLayer) and obj.__module__ == mod.__name__
                 and not name.startswith("_")}
    assert {"XnorMvu", "FcFxpMvu", "SlidingWindow", "Fork", "Pool", "Prelu", "JoinAdd"} <= ours
    # the one kind FINN is known not to take (a transposed convolution's phase interleave), refused with a reason
    refused = {k.__name__ for k in finn_graph.EMITTERS.refused}
    assert refused == {"PhaseShuffle"}, sorted(refused)
    assert ours - refused <= set(finn_graph.KINDS), sorted(ours - refused - set(finn_graph.KINDS))
