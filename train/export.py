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


def export_qonnx(model: torch.nn.Module, example: torch.Tensor, path, verbose: bool = True) -> pathlib.Path:
    """Export ``model`` (already in hardware mode for bit-exact flows) to a cleaned-up QONNX file."""
    from brevitas.export import export_qonnx as brevitas_export
    from qonnx.core.modelwrapper import ModelWrapper

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if verbose:
        print(f"[export] {type(model).__name__} -> {path} (brevitas export_qonnx)...", flush=True)
    model.eval()
    with _quiet():
        try:  # the TorchScript exporter is 3-4x faster than dynamo on these graphs and exports the same ops
            brevitas_export(model, example, str(path), dynamo=False)
        except Exception:  # noqa: BLE001 - fall back to torch's default (dynamo) exporter
            brevitas_export(model, example, str(path))
    # Brevitas' export is already clean (no constant subgraphs; node names are the module paths, which
    # errors downstream then point at). qonnx's cleanup_model renames every node and is quadratic in the
    # graph size (tens of minutes on BiDRN-50), so it is not run here.
    from qonnx.transformation.infer_shapes import InferShapes

    mw = ModelWrapper(str(path)).transform(InferShapes(), make_deepcopy=False, cleanup=False)
    mw.save(str(path))
    if verbose:
        print(f"[export] {len(mw.graph.node)} nodes in {time.time() - t0:.1f} s", flush=True)
    return path


def execute_qonnx(path_or_model, x: np.ndarray) -> np.ndarray:
    """Run ``qonnx.core.onnx_exec.execute_onnx`` on one input and return the single output."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    mw = path_or_model if isinstance(path_or_model, ModelWrapper) else ModelWrapper(str(path_or_model))
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
