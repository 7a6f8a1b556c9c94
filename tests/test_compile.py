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


@pytest.mark.parametrize("case", ["scale_0.3", "round_shift"])
def test_float_scale_and_rounding_requantizers_are_exact(tmp_path, case):
    """A requantizer with a non-power-of-two scale (0.3), or with ROUND on a right shift (both refused before
    issue 17), is compiled to integer hardware (compile/lower_quant.py) equal to the exact reference for every
    integer the input quantizer can give (-128..127, in eight frames)."""
    from binaryhpe.compile.reference import compare_with_onnx

    q1 = _quant_inits("q1", 0.3, 8) if case == "scale_0.3" else _quant_inits("q1", 2**-4, 8)
    nodes = [_quant("x", "a", "q0"), _quant("a", "y", "q1", mode="ROUND")]
    p = _model(nodes, _quant_inits("q0", 2**-7, 8) + q1, [1, 2, 4, 4], [1, 2, 4, 4], str(tmp_path / "m.onnx"))
    mw = load_qonnx(p)
    g = lower(mw)
    ints = np.arange(-128, 128).reshape(8, 1, 2, 4, 4)
    for x in ints:
        r = compare_with_onnx(g, mw, (x * 2.0**-7).astype(np.float32))
        assert r["first_mismatch"] is None and r["output_exact"] and r["float64_exact"], r["first_mismatch"]


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(BinaryHPEError, match="not found"):
        load_qonnx(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_text("not onnx")
    with pytest.raises(BinaryHPEError, match="not a readable"):
        load_qonnx(bad)


# --- the pass list, the kind interface, the graph-edit API ---------------------------------------------------


def _graph_state(g) -> str:
    """Everything a pass may change: the layers (kind, attributes, wiring, in order) and the tensors."""
    return g.to_json() + json.dumps(sorted((k, v) for k, v in g.onnx_names.items()))


def test_every_pass_declares_idempotence_and_idempotent_passes_change_nothing_twice(tiny_qonnx):
    from binaryhpe.compile.passes import Pass, run_to_fixpoint, standard_passes

    stages = standard_passes()
    for _, passes in stages:
        for p in passes:
            assert isinstance(p, Pass) and isinstance(type(p).idempotent, bool), type(p).__name__
    g = lower(load_qonnx(tiny_qonnx))
    checked, not_idem = [], []
    for stage, passes in stages:
        run_to_fixpoint(g, passes)
        for p in passes:
            before = _graph_state(g)
            changed = p.apply(g)
            g.toposort()
            after = _graph_state(g)
            if type(p).idempotent:
                assert not changed and after == before, f"{type(p).__name__} changed the graph on a second run"
                checked.append(type(p).__name__)
            else:  # a pass that says it is not idempotent really is not (else the flag is wrong)
                assert after != before, f"{type(p).__name__} declares idempotent = False but changed nothing"
                not_idem.append(type(p).__name__)
    assert {"RemoveIdentityRequant", "FuseRequant", "InsertForks", "SetFolding", "LegalizeLanes"} <= set(checked)
    assert not_idem == ["InsertFifos"]


def test_one_pass_list_for_optimize_and_device_folding(tiny_qonnx):
    """optimize = the stages before folding (prepare) + the rest (fold_at at the same target): same graph."""
    from binaryhpe.compile.folding import fold_at, prepare
    from binaryhpe.compile.passes import stream_beats

    g1 = optimize(lower(load_qonnx(tiny_qonnx), source=tiny_qonnx.name))
    g0 = prepare(tiny_qonnx)
    g2 = fold_at(g0, stream_beats(g0))
    assert _graph_state(g1) == _graph_state(g2)
    assert not any(isinstance(lay, (Fork, Fifo)) and lay.name.startswith("fifo") for lay in g0.layers)


def test_kinds_implement_the_interface_and_a_missing_method_names_layer_and_kind():
    from dataclasses import dataclass

    from binaryhpe.compile.kinds import KINDS
    from binaryhpe.compile.kinds.base import HwLayer, KindContractError

    interface = ["execute", "cycles", "in_streams", "out_streams", "resources", "exact", "fuse_requant", "foldable", "steps_at", "assign_lanes", "out_lanes", "stream_capacity",
                 "weight_memory", "op_counts", "mask_in", "mask_out", "value_range", "start_fraction", "fold_fields",
                 "streamed"]
    for name, cls in KINDS.items():
        missing = [m for m in interface if getattr(cls, m) is getattr(HwLayer, m)]
        assert not missing, f"kind {name} does not implement {missing}"

    @dataclass
    class Bare(HwLayer):
        pass

    lay = Bare(name="mystery")
    for m in ("stream_capacity", "weight_memory", "op_counts"):
        with pytest.raises(KindContractError, match=rf"layer mystery: kind Bare does not implement {m}"):
            getattr(lay, m)()
    with pytest.raises(KindContractError, match="layer mystery: kind Bare does not implement assign_lanes"):
        lay.assign_lanes([1])
    with pytest.raises(KindContractError, match="kind Bare does not implement exact"):
        _ = lay.exact


def test_a_kind_without_stream_capacity_is_an_error_in_fifo_sizing_not_a_default():
    """InsertFifos asks every layer on a forked path for its buffers; a kind without an answer fails."""
    from dataclasses import dataclass

    from binaryhpe.compile.kinds.base import HwLayer, KindContractError
    from binaryhpe.compile.passes import stream_capacity

    @dataclass
    class NoCapacity(HwLayer):
        pass

    with pytest.raises(KindContractError, match="layer odd: kind NoCapacity does not implement stream_capacity"):
        stream_capacity(None, NoCapacity(name="odd"))


def test_kind_facts_match_the_kinds_own_models():
    """weight_memory / op_counts / steps_at of an MVU agree with its ROM, resource and cycle models."""
    from binaryhpe.compile.kinds.mvu import FxpMvu

    rng = np.random.default_rng(0)
    x = XnorMvu(name="x", n=72, cout=16, pe=4, simd=8, pixels=9, weights=rng.choice([-1, 1], size=(16, 72)))
    m = x.weight_memory()
    assert (m.width, m.depth, m.bits) == (32, 4 * 9, 72 * 16) and len(x.rtl_memories()["InitFile"]) == m.depth
    assert m.bram18 == x.resources()["bram18"] and set(m.placements) == {"uram", "dram"}
    assert x.op_counts() == {"binary": 2 * 72 * 16 * 9, "fixed": 0}
    # capacity: the double-buffered input (2 * SF beats), the pipeline, the 2-entry output FIFO (SIMD 8: no
    # popcount register added, x.pipeline == 3)
    assert x.steps_at(x.pe, x.simd) == x.cycles()["ii"] and x.pipeline == 3 and x.stream_capacity() == 2 * 9 + 9
    f = FxpMvu(name="f", n=8, cout=4, pe=2, simd=2, w_w=4, in_w=8, weights=rng.integers(-8, 8, size=(4, 8)))
    mf = f.weight_memory()
    assert (mf.width, mf.depth, mf.bits) == (16, 8, 8 * 4 * 4) and mf.bram18 == f.resources()["bram18"]
    assert f.op_counts() == {"binary": 0, "fixed": 2 * 8 * 4}
    s = max(np.sum(np.abs(f.weights), axis=1)) * 128
    assert f.value_range([(-128, 127)]) == (-s, s) and x.value_range([(0, 1)]) == (-72, 72)
    assert x.as_streamed().weight_memory().bram18 == 0 and not x.streamed


def test_graph_edit_api():
    from binaryhpe.compile.graph import HwGraph, TensorInfo
    from binaryhpe.compile.kinds.elementwise import Requant

    g = HwGraph(input="x", output="y")
    for t in ("x", "a", "y", "q"):
        g.tensors[t] = TensorInfo(t, (1, 1, 4), Fmt(8))
    r1 = Requant(name="r1", inputs=["x"], outputs=["a"], c=4, in_w=8, out_w=8, shift=1)
    r2 = Requant(name="r2", inputs=["a"], outputs=["y"], c=4, in_w=8, out_w=8, shift=1)
    g.layers = [r1, r2]
    fifo = Fifo(name="f", inputs=["a"], outputs=["q"], elem_w=8, lanes=1, depth=2, beats=4)
    g.insert_after("a", fifo)
    g.toposort()
    assert r2.inputs == ["q"] and [lay.name for lay in g.layers] == ["r1", "f", "r2"]
    g.rewire("q", "a", [r2])
    g.remove_layer(fifo, drop_outputs=True)
    assert r2.inputs == ["a"] and "q" not in g.tensors and len(g.layers) == 2
    x = np.arange(4).reshape(1, 1, 4) * 8
    assert np.array_equal(g.execute(x)["y"], x >> 2)
    with pytest.raises(BinaryHPEError, match="layer r1 does not read 'nope'"):
        g.rewire("nope", "a", [r1])
    c = g.copy()
    assert c.layers[0] is not g.layers[0] and c.layers[0].name == "r1"


def test_fmt_width():
    assert Fmt(1, bipolar=True).width == 1 and Fmt(9, 4).width == 9 and Fmt(5, 0, signed=False).width == 5
