"""qonnx's ModelWrapper passes that scan the whole graph once per tensor, rebuilt on one index each, giving the
same model byte for byte: the ValueInfos ``ModelWrapper(path)`` adds for initializers, and ``InferShapes``. On a
BiDRN-50 (2,369 nodes) qonnx's own versions take minutes. Used when loading a QONNX file for the compiler
(compile/lower_base.load_qonnx) and after the export (train/export.py); they know nothing of hardware."""

from __future__ import annotations


def add_initializer_value_info(mw) -> None:
    """A ValueInfo (the initializer's shape and element type, appended to value_info) for every initializer a
    node reads or writes that has none, in node order: ``ModelWrapper.check_all_tensor_shapes_specified(
    fix_missing_init_shape=True)``, which ``ModelWrapper.__init__`` runs, with one index instead of a scan of
    the graph per tensor."""
    from onnx import helper

    g = mw.graph
    have = {vi.name for vi in [*g.input, *g.output, *g.value_info]}
    inits = {}
    for init in g.initializer:
        inits.setdefault(init.name, init)
    for n in g.node:
        for t in [*(i for i in n.input if i != ""), *n.output]:
            if t in have or t not in inits:
                continue
            init = inits[t]
            g.value_info.append(helper.make_tensor_value_info(t, init.data_type, tuple(init.dims)))
            have.add(t)


class InferShapesIndexed:
    """qonnx's ``InferShapes`` (custom ops hidden behind shape-compatible standard ops, ONNX shape inference,
    custom ops restored), with the new ModelWrapper's initializer ValueInfos added by
    ``add_initializer_value_info``."""

    def apply(self, model):
        import onnx.shape_inference as si
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.transformation.infer_shapes import _hide_finn_ops, _restore_finn_ops

        hidden = _hide_finn_ops(ValueInfoLookup(model))
        model = ModelWrapper(si.infer_shapes(model.model), fix_missing_initializer_valueinfo=False)
        add_initializer_value_info(model)
        _restore_finn_ops(model, hidden)
        return model, False


class ValueInfoLookup:
    """A ModelWrapper whose ``get_tensor_valueinfo`` reads an index built once (the graph's ValueInfos do not
    change while ``_hide_finn_ops`` swaps nodes); everything else is the wrapped model's."""

    def __init__(self, mw):
        self._mw = mw
        self._vi: dict = {}
        for vi in [*mw.graph.input, *mw.graph.output, *mw.graph.value_info]:
            self._vi.setdefault(vi.name, vi)

    def get_tensor_valueinfo(self, name):
        return self._vi.get(name)

    def __getattr__(self, attr):
        return getattr(self._mw, attr)
