"""What adding a layer kind takes: one new elementwise kind, ``Abs``, written here and nowhere else.

The addition is: the kind class (numerics, cycles, streams, resources; the rest of the kind interface comes
from its family, ``_Elementwise``), its registration in the kind registry (automatic for a class in a module of
``compile/kinds``), one lowering registration
(``@lowers("Abs")``), and one line per backend registry (C maps it with a four-line emitter and the MCU cycle
model charges it as an elementwise stage, hls4ml and FINN refuse it with a reason, RTL refuses it by itself:
the kind defines no RTL module). The tests show that a QONNX graph with an ``Abs`` node then lowers, runs
through the standard pass list and the integer reference (equal to ``execute_onnx``), that every backend
either maps it or refuses it with an error naming the layer, and that the generated C is bit-exact on the
host.

In the repository a real ``Abs`` would touch six code files: ``compile/kinds/elementwise.py`` (the class; a
public ``HwLayer`` subclass there is in ``KINDS`` by being written, where this test calls ``register``),
``compile/lower.py`` (the lowering), ``compile/cbackend.py`` (the emitter), ``compile/mcu_cycles.py`` (one
line), and one refusal line each in ``compile/backends/hls4ml_backend.py`` and
``compile/backends/finn_graph.py``; the docs' backend table is generated from the registries. Not touched: the passes, the estimators, the storage planner, the folding,
the RTL generator, the report (they ask the kind).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from binaryhpe.compile import cbackend, mcu_cycles
from binaryhpe.compile.backends import finn_graph, hls4ml_backend
from binaryhpe.compile.backends.registry import RefusedKind, registries
from binaryhpe.compile.graph import Fmt
from binaryhpe.compile.kinds import KINDS, register, unregister
from binaryhpe.compile.kinds.base import StreamSpec, sat
from binaryhpe.compile.kinds.elementwise import _Elementwise
from binaryhpe.compile.lower import LOWERINGS, Lowerer, load_qonnx, lower, lowers
from binaryhpe.compile.passes import optimize
from binaryhpe.compile.reference import hw_input, onnx_context


# --- 1. the kind ----------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class Abs(_Elementwise):
    """``|x|`` of a signed ``in_w``-bit input, saturated to ``out_w`` bits (``in_w + 1``: exact)."""

    out_w: int = 0

    def __post_init__(self) -> None:
        self._check_common()
        self.out_w = self.out_w or self.in_w + 1

    @property
    def exact(self) -> bool:
        return self.out_w >= self.in_w + 1

    def execute(self, ins):
        return [sat(np.abs(self._input(ins[0], self.in_w)), self.out_w)]

    def in_streams(self):
        return [StreamSpec(self.lanes, self.in_w)]

    def out_streams(self):
        return [StreamSpec(self.lanes, self.out_w)]

    def resources(self) -> dict:
        return self._stage_resources(self.lanes * self.out_w, self.out_w)

    def value_range(self, in_ranges):
        a, b = in_ranges[0]
        return (0 if a <= 0 <= b else min(abs(a), abs(b))), max(abs(a), abs(b))


# --- 2. the lowering (registered by the fixture, which also undoes every registration) ----------------
def _lower_abs(L: Lowerer, node):
    src = L.info(node.input[0])
    name = L.new_tensor(node.output[0], src.shape, Fmt(src.fmt.bits + 1, src.fmt.frac))
    L.add(Abs(name=L.g.unique(node.name), inputs=[src.name], outputs=[name], c=src.shape[2],
              pixels=src.shape[0] * src.shape[1], in_w=src.fmt.bits))


# --- 3. the C emitter (an elementwise op of the C backend: lines of C and the value's name) ------------
def _c_abs(self, lay, v, vb, i):
    """|x|, saturated"""
    return [f"const int64_t x{i} = (int64_t)({v});",
            f"const int64_t y{i} = {cbackend._sat(f'(x{i} < 0 ? -x{i} : x{i})', lay.out_w, 'int64_t')};"], f"y{i}"


@pytest.fixture
def abs_kind():
    register(Abs)
    lowers("Abs")(_lower_abs)
    cbackend.EMITTERS.emits(Abs, role="op", note="elementwise loop")(_c_abs)
    mcu_cycles.MODEL.emits(Abs)(mcu_cycles._elementwise)  # the C loop's cycle model: an elementwise stage's
    hls4ml_backend.EMITTERS.refuse(Abs, "no hls4ml layer for Abs in this toolkit")
    finn_graph.EMITTERS.refuse(Abs, "no FINN node for Abs in this toolkit")
    try:
        yield Abs
    finally:
        unregister(Abs)
        LOWERINGS.pop("Abs", None)
        cbackend.EMITTERS.entries.pop(Abs, None)
        mcu_cycles.MODEL.entries.pop(Abs, None)
        hls4ml_backend.EMITTERS.refused.pop(Abs, None)
        finn_graph.EMITTERS.refused.pop(Abs, None)


def _abs_model(path, c=4):
    """x (1, c, 4, 4) -> Quant (8 bits, scale 2^-4) -> Abs -> y."""
    inits = [helper.make_tensor("q_s", TensorProto.FLOAT, [], [2.0**-4]),
             helper.make_tensor("q_z", TensorProto.FLOAT, [], [0.0]),
             helper.make_tensor("q_b", TensorProto.FLOAT, [], [8.0])]
    nodes = [helper.make_node("Quant", ["x", "q_s", "q_z", "q_b"], ["a"], domain="qonnx.custom_op.general",
                              rounding_mode="FLOOR", signed=1, narrow=0, name="q"),
             helper.make_node("Abs", ["a"], ["y"], name="my_abs")]
    shape = [1, c, 4, 4]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("qonnx.custom_op.general", 1)])
    onnx.save(m, path)
    return path


def _frames(mw, n=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = mw.get_tensor_shape("x")
    xs = [rng.uniform(-9, 9, size=shape).astype(np.float32) for _ in range(n)]
    return xs + [np.full(shape, -8.0, np.float32), np.full(shape, 7.9375, np.float32)]


def test_without_the_registrations_the_op_is_refused_naming_the_node(tmp_path):
    p = _abs_model(tmp_path / "abs.onnx")
    with pytest.raises(Exception, match=r"node 'my_abs' \(op type Abs\)"):
        lower(p)
    assert "Abs" not in KINDS


def test_new_kind_lowers_passes_and_matches_onnx(abs_kind, tmp_path):
    from qonnx.core.onnx_exec import execute_onnx

    p = _abs_model(tmp_path / "abs.onnx")
    mw = load_qonnx(p)
    g = optimize(lower(mw, source="abs.onnx"))
    (lay,) = [lay for lay in g.layers if isinstance(lay, Abs)]
    assert lay.out_w == 9 and g.tensors[g.output].fmt == Fmt(9, 4)
    assert lay.lanes == g.tensors[lay.inputs[0]].lanes and lay.stream_capacity() == 4  # from its family
    for x in _frames(mw):
        want = execute_onnx(mw, {"x": x})["y"][0].transpose(1, 2, 0)
        xi = hw_input(g, onnx_context(mw, x))
        got = g.tensors[g.output].fmt.to_real(g.execute(xi)[g.output])
        assert np.array_equal(got, want.astype(np.float64))
    # -8.0 is the one input whose |x| needs the ninth bit
    xi = hw_input(g, onnx_context(mw, _frames(mw)[-2]))
    assert int(g.execute(xi)[g.output].max()) == 128


def test_every_backend_maps_or_refuses_the_new_kind(abs_kind, tmp_path):
    regs = registries()
    status = {name: reg.status(Abs) for name, reg in regs.items()}
    assert status["c"][0] == "mapped" and status["rtl"][0] == "refused"
    assert status["hls4ml"][0] == "refused" and status["finn"][0] == "refused"
    g = optimize(lower(load_qonnx(_abs_model(tmp_path / "abs.onnx"))))
    lay = next(lay for lay in g.layers if isinstance(lay, Abs))
    for name in ("rtl", "hls4ml", "finn"):
        with pytest.raises(RefusedKind, match=rf"layer '{lay.name}' \(kind Abs\)"):
            regs[name].entry(lay)


def test_generated_c_of_the_new_kind_is_bit_exact(abs_kind, tmp_path):
    from binaryhpe.sim import mcu

    mw = load_qonnx(_abs_model(tmp_path / "abs.onnx"))
    g = optimize(lower(mw))
    frames = [hw_input(g, onnx_context(mw, x)) for x in _frames(mw)]
    cm = cbackend.generate(g)
    exe = mcu.host_build(cbackend.write(cm, tmp_path / "c"))
    got = mcu.host_run(exe, frames, g.tensors[g.output].shape)
    for x, y in zip(frames, got):
        assert np.array_equal(y, g.execute(x)[g.output])
    assert "x0 < 0 ? -x0 : x0" in (tmp_path / "c" / "model.c").read_text()  # the emitter's code
    assert mcu_cycles.MODEL.entry(next(lay for lay in g.layers if isinstance(lay, Abs))).fn is mcu_cycles._elementwise
