"""Alternative dataflow backends: the same cleaned-up QONNX and hardware graph that feed our RTL, handed to
hls4ml or FINN (``binaryhpe build --backend {rtl,hls4ml,finn}``).

Each backend module exposes ``build(qonnx, g, out, sim, seed) -> dict``: it writes its project under
``OUT/<backend>/`` and returns the report keys it owns (``backend``, ``bit_exact`` when ``sim``, the tool's own
estimates where it gives them). A layer the backend cannot take raises ``BinaryHPEError`` naming the layer and
the backend.
"""

from __future__ import annotations

import importlib
import pathlib

from binaryhpe import BinaryHPEError

BACKENDS = {"rtl": None, "hls4ml": "binaryhpe.compile.backends.hls4ml_backend",
            "finn": "binaryhpe.compile.backends.finn_backend"}


def unfused(g):
    """``g`` itself when it holds no ``Epilogue``, else a copy with every Epilogue expanded into its ops again
    (``passes.UnfuseEpilogues``, the intermediate tensors restored): hls4ml and FINN map one operation at a
    time, and their traced comparisons then cover every intermediate tensor too."""
    from binaryhpe.compile.kinds.epilogue import Epilogue
    from binaryhpe.compile.passes import UnfuseEpilogues

    if not any(isinstance(lay, Epilogue) for lay in g.layers):
        return g
    g = g.copy()
    UnfuseEpilogues().apply(g)
    return g


def run_backend(name: str, qonnx: pathlib.Path, g, out: pathlib.Path, sim: bool, seed: int = 0, **options) -> dict:
    """Run the external backend ``name`` (not ``rtl``, which is the flow itself); ``options`` go to its ``build``
    (the FINN backend's ``flow``)."""
    if name not in BACKENDS:
        raise BinaryHPEError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    if BACKENDS[name] is None:
        raise BinaryHPEError("the rtl backend is the default flow, not an external backend")
    mod = importlib.import_module(BACKENDS[name])
    return mod.build(pathlib.Path(qonnx), g, pathlib.Path(out), sim=sim, seed=seed, **options)
