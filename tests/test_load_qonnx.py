"""compile.lower_base.load_qonnx builds, from indices, the same model as qonnx's own passes (ModelWrapper,
transform with its cleanup, InferShapes), and the Lowerer's graph index answers as qonnx's lookups do."""

import random

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from binaryhpe.compile.lower_base import Lowerer, load_qonnx


def _both(path, seed=5):
    """(qonnx's passes, ours) on ``path`` with the same random state (duplicated parameters get random names)."""
    random.seed(seed)
    ref = load_qonnx(path, qonnx_passes=True)
    random.seed(seed)
    return ref, load_qonnx(path)


def _every_pass_graph(path, fold: bool):
    """A graph each cleaning pass changes: nodes out of order, a parameter two nodes share, a constant first
    operand, an input with an initializer, an unused initializer, an unnamed node; with ``fold`` a
    constant-only Add (FoldConstants, which runs qonnx's own InferShapes and cleanup inside)."""
    f = np.float32
    inits = [numpy_helper.from_array(np.array(0.5, f), "s1"),
             numpy_helper.from_array(np.arange(4, dtype=f).reshape(4, 1, 1), "c1"),
             numpy_helper.from_array(np.ones((4, 1, 1), f), "c2"),
             numpy_helper.from_array(np.full((1, 4, 4, 4), 0.25, f), "w_in"),
             numpy_helper.from_array(np.zeros(3, f), "dead"),
             numpy_helper.from_array(np.array(0.125, f), "qs"),
             numpy_helper.from_array(np.array(0.0, f), "qz"),
             numpy_helper.from_array(np.array(8.0, f), "qb")]
    nodes = [helper.make_node("Mul", ["a", "s1"], ["b"], name="second"),
             helper.make_node("Mul", ["x", "s1"], ["a"], name="first"),
             *([helper.make_node("Add", ["c1", "c2"], ["c"], name="const_add")] if fold else []),
             helper.make_node("Add", ["c" if fold else "c1", "b"], ["d"]),
             helper.make_node("Add", ["d", "w_in"], ["e"], name="static"),
             helper.make_node("Quant", ["e", "qs", "qz", "qb"], ["y"], name="q", domain="qonnx.custom_op.general",
                              signed=1, narrow=0, rounding_mode="ROUND")]
    shape = [1, 4, 4, 4]
    g = helper.make_graph(nodes, "passes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
                                            helper.make_tensor_value_info("w_in", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], initializer=inits,
                          value_info=[helper.make_tensor_value_info("c", TensorProto.FLOAT, [4, 1, 1])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


@pytest.mark.parametrize("fold", [False, True])
def test_load_matches_qonnx_passes_on_every_pass(tmp_path, fold):
    path = tmp_path / "passes.onnx"
    _every_pass_graph(path, fold)
    ref, ours = _both(path)
    assert ours.model.SerializeToString() == ref.model.SerializeToString()
    g = ours.graph
    # the passes did change the graph (so the equality above compares their work)
    assert [n.name for n in g.node] == ["first", "second", "Add_2", "static", "q"]
    assert [i.name for i in g.input] == ["x"]
    c = "c" if fold else "c1"
    assert "dead" not in {i.name for i in g.initializer} and c in {i.name for i in g.initializer}
    assert list(g.node[2].input) == ["b", c]
    assert g.node[1].input[1] != "s1" and len(g.quantization_annotation) == 1
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in g.value_info}
    assert all(shapes[t] == [1, 4, 4, 4] for t in "abde")


def test_load_matches_qonnx_passes_on_tiny_bidrn(tiny_qonnx):
    ref, ours = _both(tiny_qonnx)
    assert ours.model.SerializeToString() == ref.model.SerializeToString()


def test_lowerer_index_answers_as_qonnx_lookups(tiny_qonnx):
    mw = load_qonnx(tiny_qonnx)
    L = Lowerer(mw)
    names = {t for n in mw.graph.node for t in [*n.input, *n.output]}
    assert len(names) > 100
    for t in sorted(names):
        assert L.producer(t) is mw.find_producer(t) or L.producer(t) == mw.find_producer(t), t
        assert L.consumers(t) == mw.find_consumers(t), t
        assert L.tensor_shape(t) == mw.get_tensor_shape(t), t
