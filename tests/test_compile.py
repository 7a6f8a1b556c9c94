"""QONNX -> hardware graph: the integer reference equals qonnx's execute_onnx on every tensor; passes keep it so;
what cannot be mapped gets one error naming node, op type and reason."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from binaryhpe import BinaryHPEError
from binaryhpe.compile.flow import predicted_cycles
from binaryhpe.compile.graph import Fmt
from binaryhpe.compile.kinds.mvu import XnorMvu
from binaryhpe.compile.kinds.plumbing import Fifo, Fork
from binaryhpe.compile.lower import LoweringError, fixed_point, load_qonnx, lower
from binaryhpe.compile.passes import load_folding, optimize
from binaryhpe.compile.reference import compare_with_onnx


def _inputs(shape, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, shape).astype(np.float32), np.ones(shape, np.float32),
            -np.ones(shape, np.float32), np.full(shape, 9.0, np.float32), rng.normal(0, 4, shape).astype(np.float32)]


def test_tiny_bidrn_graph_is_exact_before_and_after_passes(tiny_qonnx):
    mw = load_qonnx(tiny_qonnx)
    g = lower(mw)
    kinds = {type(lay).__name__ for lay in g.layers}
    assert {"XnorMvu", "FxpMvu", "SlidingWindow", "Prelu", "JoinAdd", "Concat", "Split", "Pool", "Sign"} <= kinds
    for x in _inputs((1, 3, 16, 16), 0):
        r = compare_with_onnx(g, mw, x)
        assert r["first_mismatch"] is None and r["output_exact"], r["first_mismatch"]
        assert r["tensors_checked"] > 200
    n_before = len(g.layers)
    optimize(g)
    assert any(isinstance(lay, Fork) for lay in g.layers) and any(isinstance(lay, Fifo) for lay in g.layers)
    for x in _inputs((1, 3, 16, 16), 1)[:2]:
        r = compare_with_onnx(g, mw, x)
        assert r["first_mismatch"] is None and r["output_exact"]
    # every tensor with several readers was forked: nothing is read twice
    for t in g.tensors:
        assert len(g.consumers(t)) <= 1, t
    assert n_before > 0 and json.loads(g.to_json())["layers"]


def test_folding_meets_target_and_overrides(tiny_qonnx, tmp_path):
    mw = load_qonnx(tiny_qonnx)
    for target in (600, 4000):
        g = optimize(lower(mw), target_cycles=target)
        mvus = [lay for lay in g.layers if isinstance(lay, XnorMvu)]
        # each MVU meets the target where a legal folding can (PE | Cout, SIMD | Cin)
        for m in mvus:
            swg = g.producer(m.inputs[0])
            fully_parallel = m.pe == m.cout and m.simd == swg.c
            assert m.cycles()["ii"] <= target or fully_parallel, (m.name, m.pe, m.simd)
        assert predicted_cycles(g)["ii"] >= max(m.cycles()["ii"] for m in mvus)
    name = next(lay.name for lay in lower(mw).layers if isinstance(lay, XnorMvu))
    f = tmp_path / "fold.json"
    f.write_text(json.dumps({name: {"pe": 2, "simd": 4}}))
    g = optimize(lower(mw), folding=load_folding(f))
    lay = g.layer(name)
    assert (lay.pe, lay.simd) == (2, 4)
    f.write_text(json.dumps({name: {"pe": 3, "simd": 1}}))
    with pytest.raises(BinaryHPEError, match="PE 3 must divide"):
        optimize(lower(mw), folding=load_folding(f))
    f.write_text(json.dumps({"nope": {"pe": 1}}))
    with pytest.raises(BinaryHPEError, match="unknown layer 'nope'"):
        optimize(lower(mw), folding=load_folding(f))


def test_fixed_point_constants():
    q, frac, bits = fixed_point(np.array([0.75, -0.125, 3.0]))
    assert frac == 3 and list(q) == [6, -1, 24] and bits == 6
    with pytest.raises(ValueError):
        fixed_point(np.array([0.1]))
    assert Fmt(16, 10).from_real(np.array([1.5]))[0] == 1536
    with pytest.raises(BinaryHPEError):
        Fmt(8, 7).from_real(np.array([1 / 3]))


def _model(nodes, inits, in_shape, out_shape, path):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("qonnx.custom_op.general", 1)])
    onnx.save(m, path)
    return path


def _quant_inits(prefix, scale, bits):
    return [helper.make_tensor(f"{prefix}_s", TensorProto.FLOAT, [], [scale]),
            helper.make_tensor(f"{prefix}_z", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor(f"{prefix}_b", TensorProto.FLOAT, [], [bits])]


def _quant(inp, out, prefix, mode="FLOOR"):
    return helper.make_node("Quant", [inp, f"{prefix}_s", f"{prefix}_z", f"{prefix}_b"], [out],
                            domain="qonnx.custom_op.general", rounding_mode=mode, signed=1, narrow=0)


def test_unsupported_op_names_node_and_reason(tmp_path):
    nodes = [_quant("x", "a", "q0"), helper.make_node("Sigmoid", ["a"], ["y"], name="my_sigmoid")]
    p = _model(nodes, _quant_inits("q0", 2**-7, 8), [1, 2, 4, 4], [1, 2, 4, 4], str(tmp_path / "m.onnx"))
    with pytest.raises(LoweringError, match=r"node 'my_sigmoid' \(op type Sigmoid\): no hardware layer kind"):
        lower(p)


def test_non_power_of_two_scale_is_rejected(tmp_path):
    nodes = [_quant("x", "a", "q0"), _quant("a", "y", "q1")]
    inits = _quant_inits("q0", 2**-7, 8) + _quant_inits("q1", 0.3, 8)
    p = _model(nodes, inits, [1, 2, 4, 4], [1, 2, 4, 4], str(tmp_path / "m.onnx"))
    with pytest.raises(LoweringError, match="op type Quant.*not a power of two"):
        lower(p)


def test_rounding_right_shift_is_rejected(tmp_path):
    nodes = [_quant("x", "a", "q0"), _quant("a", "y", "q1", mode="ROUND")]
    inits = _quant_inits("q0", 2**-7, 8) + _quant_inits("q1", 2**-4, 8)
    p = _model(nodes, inits, [1, 2, 4, 4], [1, 2, 4, 4], str(tmp_path / "m.onnx"))
    with pytest.raises(LoweringError, match="rounding mode ROUND"):
        lower(p)


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(BinaryHPEError, match="not found"):
        load_qonnx(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_text("not onnx")
    with pytest.raises(BinaryHPEError, match="not a readable"):
        load_qonnx(bad)
