"""Export a BiDRN (hardware mode) to QONNX with Brevitas, clean it with qonnx, and check it.

The QONNX file is the one boundary between the model side and the hardware side.
"""

from __future__ import annotations

import contextlib
import io
import logging
import pathlib
import time
import warnings

import numpy as np
import torch

from binaryhpe import BinaryHPEError


@contextlib.contextmanager
def _quiet():
    """torch's dynamo exporter prints several lines per export; keep the user's terminal readable."""
    buf_out, buf_err = io.StringIO(), io.StringIO()
    level = logging.getLogger("torch").level
    logging.getLogger("torch").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(buf_out), contextlib.redirect_stderr(buf_err):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logging.getLogger("torch").setLevel(level)


@contextlib.contextmanager
def no_jit_lint():
    """torch's TorchScript ONNX exporter checks the graph's invariants (``torch._C._jit_pass_lint``) after each of
    its passes, a check whose time grows faster than the graph (most of a BiDRN-50's export); the check changes
    nothing in the graph, so the file is the same without it (tests/test_export_passes.py compares the bytes), and
    the exported file is checked against the PyTorch model by execution anyway (``check_export``)."""
    lint = torch._C._jit_pass_lint
    torch._C._jit_pass_lint = lambda graph: None
    try:
        yield
    finally:
        torch._C._jit_pass_lint = lint


def export_qonnx(model: torch.nn.Module, example: torch.Tensor, path, verbose: bool = True,
                 qonnx_passes: bool = False) -> pathlib.Path:
    """Export ``model`` (already in hardware mode for bit-exact flows) to a cleaned-up QONNX file.
    ``qonnx_passes``: shape inference with qonnx's own passes instead of the indexed ones (the same file; slow)."""
    from brevitas.export import export_qonnx as brevitas_export

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if verbose:
        print(f"[export] {type(model).__name__} -> {path} (brevitas export_qonnx)...", flush=True)
    model.eval()
    with _quiet():
        try:  # the TorchScript exporter is 3-4x faster than dynamo on these graphs and exports the same ops
            with no_jit_lint():
                brevitas_export(model, example, str(path), dynamo=False)
        except Exception:  # noqa: BLE001 - fall back to torch's default (dynamo) exporter
            brevitas_export(model, example, str(path))
    # Brevitas' export is already clean (no constant subgraphs; node names are the module paths, which
    # errors downstream then point at). qonnx's cleanup_model renames every node and is quadratic in the
    # graph size (tens of minutes on BiDRN-50), so it is not run here.
    mw = infer_shapes_file(path, qonnx_passes)
    if verbose:
        print(f"[export] {len(mw.graph.node)} nodes in {time.time() - t0:.1f} s", flush=True)
    return path


def infer_shapes_file(path, qonnx_passes: bool = False):
    """qonnx's ``ModelWrapper(path)`` (ValueInfos for initializers) and ``InferShapes`` on the file at ``path``,
    saved back; returns the ModelWrapper. By default on indices (binaryhpe.qonnx_passes), the same bytes as qonnx's
    own passes, which scan the graph once per tensor (minutes on a BiDRN-50; ``qonnx_passes=True`` runs them)."""
    from qonnx.core.modelwrapper import ModelWrapper

    if qonnx_passes:
        from qonnx.transformation.infer_shapes import InferShapes

        mw = ModelWrapper(str(path)).transform(InferShapes(), make_deepcopy=False, cleanup=False)
    else:
        from binaryhpe.qonnx_passes import InferShapesIndexed, add_initializer_value_info

        mw = ModelWrapper(str(path), fix_missing_initializer_valueinfo=False)
        add_initializer_value_info(mw)
        mw = mw.transform(InferShapesIndexed(), make_deepcopy=False, cleanup=False)
    mw.save(str(path))
    return mw


def execute_qonnx(path_or_model, x: np.ndarray) -> np.ndarray:
    """Run ``qonnx.core.onnx_exec.execute_onnx`` on one input and return the single output."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    if isinstance(path_or_model, ModelWrapper):
        mw = path_or_model
    else:  # ModelWrapper(path), its initializer ValueInfos added on an index (binaryhpe.qonnx_passes)
        from binaryhpe.qonnx_passes import add_initializer_value_info

        mw = ModelWrapper(str(path_or_model), fix_missing_initializer_valueinfo=False)
        add_initializer_value_info(mw)
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    with _quiet():
        return execute_onnx(mw, {iname: np.asarray(x, dtype=np.float32)})[oname]


def check_export(model: torch.nn.Module, path, x: torch.Tensor) -> dict:
    """Brevitas (hardware mode) and the QONNX execution must agree on every element, exactly."""
    with torch.no_grad():
        ref = model(x).numpy()
    out = execute_qonnx(path, x.numpy())
    if out.shape != ref.shape:
        raise BinaryHPEError(f"{path}: QONNX output shape {out.shape} differs from PyTorch {ref.shape}")
    mismatches = int(np.count_nonzero(out != ref))
    return {"elements": int(ref.size), "mismatches": mismatches, "max_abs_diff": float(np.max(np.abs(out - ref)))}


def require_exact_export(model: torch.nn.Module, path, x: torch.Tensor, what: str) -> dict:
    """``check_export``, raising one line naming ``what`` and the file when any element differs."""
    res = check_export(model, path, x)
    if res["mismatches"]:
        raise BinaryHPEError(f"{path}: QONNX execution differs from the hardware-mode {what} on "
                             f"{res['mismatches']} of {res['elements']} elements")
    return res
