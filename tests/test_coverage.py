"""Every hardware kind x every backend: mapped (an emitter registered) or refused with a reason, never neither.

The kinds come from the kinds registry (``compile.kinds.KINDS``), the backends' emitters from their registries
(``compile/backends/registry.py``); a new kind that some backend neither maps nor refuses fails here. A refused
or unknown kind is an error naming the layer, its kind and the backend; the docs' backend table is the
generated one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from binaryhpe import BinaryHPEError
from binaryhpe.compile import cbackend, mcu_cycles
from binaryhpe.compile.backends import registry as R
from binaryhpe.compile.graph import Fmt, HwGraph, TensorInfo
from binaryhpe.compile.kinds import KINDS, register, unregister
from binaryhpe.compile.kinds.base import HwLayer
from binaryhpe.compile.kinds.elementwise import Requant

REGS = R.registries()
BACKENDS = ("rtl", "c", "hls4ml", "finn")


def _blank(kind: type, name: str):
    """An instance of ``kind`` without running its constructor (only its class and name matter here)."""
    lay = object.__new__(kind)
    object.__setattr__(lay, "name", name)
    return lay


def test_the_four_backends_have_registries():
    assert tuple(REGS) == BACKENDS
    assert len(KINDS) >= 20 and "Epilogue" in KINDS


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", list(KINDS.values()), ids=lambda k: k.__name__)
def test_kind_mapped_or_refused(kind, backend):
    reg = REGS[backend]
    st = reg.status(kind)
    assert st is not None, (f"kind {kind.__name__} is neither mapped nor refused by the {backend} backend: "
                            f"register its emitter (@EMITTERS.emits({kind.__name__})) or refuse it with the reason")
    lay = _blank(kind, f"probe_{kind.__name__.lower()}")
    if st[0] == "mapped":
        assert callable(reg.entry(lay).fn)
    else:
        assert len(st[1]) >= 20, st  # a reason, not a placeholder
        with pytest.raises(R.RefusedKind) as ei:
            reg.entry(lay)
        msg = str(ei.value)
        assert lay.name in msg and kind.__name__ in msg and backend in msg and st[1] in msg, msg


def test_every_c_kind_that_emits_code_has_a_cycle_model():
    for kind, e in cbackend.EMITTERS.entries.items():
        st = mcu_cycles.MODEL.status(kind)
        if e.role in ("layer", "op"):
            assert st is not None and st[0] == "mapped", kind.__name__
        else:
            assert st is not None and st[0] == "refused", kind.__name__


@dataclass(kw_only=True)
class Doubler(HwLayer):
    """A new kind (a test's): ``y = 2 x``. Registered as a kind, but in no backend."""

    c: int = 4

    def execute(self, ins):
        return [2 * np.asarray(ins[0], dtype=np.int64)]


@pytest.fixture
def doubler_kind():
    register(Doubler)
    try:
        yield Doubler
    finally:
        unregister(Doubler)


def test_a_new_kind_is_flagged_until_each_backend_maps_or_refuses_it(doubler_kind):
    from binaryhpe.compile.kinds import KINDS as kinds_now

    assert kinds_now["Doubler"] is Doubler
    regs = R.registries()
    uncovered = [b for b, reg in regs.items() if reg.status(Doubler) is None]
    # the RTL backend refuses a kind without RTL parameters; the emitter registries know nothing of it
    assert uncovered == ["c", "hls4ml", "finn"], uncovered
    assert regs["rtl"].status(Doubler)[0] == "refused"
    assert "**not covered**" in R.markdown_table()
    # one registration line a backend covers it (here on a scratch registry, not the real one)
    scratch = R.Registry("c")
    scratch.emits(Doubler)(lambda em, lay: "")
    assert scratch.status(Doubler)[0] == "mapped"
    with pytest.raises(ValueError, match="registered twice"):
        scratch.refuse(Doubler, "already mapped above")


def _graph_with(lay, c=4, bits=8):
    g = HwGraph()
    g.tensors["x"] = TensorInfo("x", (2, 2, c), Fmt(bits, 0))
    g.tensors["y"] = TensorInfo("y", (2, 2, c), Fmt(bits, 0))
    g.input, g.output = "x", "y"
    lay.inputs, lay.outputs = ["x"], ["y"]
    g.layers.append(lay)
    return g


def test_unknown_kind_is_an_error_naming_layer_kind_and_backend(doubler_kind):
    g = _graph_with(Doubler("dbl_3"))
    with pytest.raises(R.UnmappedKind, match=r"c backend: layer 'dbl_3' is of kind Doubler"):
        cbackend.generate(g)
    from binaryhpe.compile.backends import finn_graph, hls4ml_backend

    with pytest.raises(BinaryHPEError, match=r"hls4ml backend: layer 'dbl_3' is of kind Doubler"):
        hls4ml_backend._Builder(g).run()
    with pytest.raises(BinaryHPEError, match=r"finn backend: layer 'dbl_3' is of kind Doubler"):
        finn_graph._Builder(g).emit(g.layers[0])


def test_cycle_model_has_no_fallback(doubler_kind):
    g = _graph_with(Requant("rq", c=4, pixels=4, in_w=8, out_w=8, shift=1))
    cm = cbackend.generate(g)
    assert mcu_cycles.predict(cm, {"core": "cortex-m7"})["instructions"] > 0
    with pytest.raises(R.UnmappedKind, match=r"mcu cycle model backend: layer 'dbl' is of kind Doubler"):
        mcu_cycles.layer_instructions(cm, Doubler("dbl", ["x"], ["y"]))


def test_docs_table_is_the_generated_one():
    assert R.table_in_doc() == R.markdown_table(), \
        "docs/backends.md's backend table drifted: run python -m binaryhpe.compile.backends.registry --write"
    assert "**not covered**" not in R.markdown_table()
