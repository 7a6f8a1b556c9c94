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


#: ops whose nodes say nothing of the input's spatial size (their kernels, strides and pads are the modules'
#: own): a graph of only these, traced at a small input, is the graph of the full-size input but for its shapes
SIZE_FREE_OPS = frozenset({"Quant", "BipolarQuant", "Trunc", "Conv", "MaxPool", "AveragePool", "Concat", "Add", "Sub",
                           "Mul", "Div", "PRelu", "Relu", "Identity"})


def _size_free(node) -> bool:
    """``node`` is one of ``SIZE_FREE_OPS``, or a Split of the channels (axis 1: its sizes are channel counts)."""
    if node.op_type == "Split":
        return any(a.name == "axis" and a.i == 1 for a in node.attribute)
    return node.op_type in SIZE_FREE_OPS


def small_trace_input(model: torch.nn.Module, example: torch.Tensor) -> torch.Tensor | None:
    """A smaller input that traces the same graph as ``example``, or None. A BiDRN encoder is fully convolutional
    (no layer reads the input's size): its smallest valid input is one total downsampling factor square (the last
    stage's map is 1x1), which traces the same nodes and initializers at a fraction of the activations' work."""
    from binaryhpe.train.bidrn import BiDRN

    if not isinstance(model, BiDRN) or example.dim() != 4:
        return None
    f = model.cfg.downsampling()
    if example.shape[2] <= f and example.shape[3] <= f:
        return None
    return example[:, :, :f, :f].contiguous()


def retarget_input(path, shape: tuple) -> bool:
    """Give the raw export at ``path`` (a graph of ``SIZE_FREE_OPS`` traced at a smaller input) the input shape
    ``shape``: the input's dims, and the dims of every output and ValueInfo torch wrote, from ONNX shape inference
    at that shape (QONNX ops hidden behind shape-compatible standard ops, as qonnx's InferShapes does). The file is
    left as is and False returned when the graph has another op (a Split only of the channels) or a shape cannot be
    inferred with the same rank."""
    import onnx
    import onnx.shape_inference as si
    from qonnx.core.modelwrapper import ModelWrapper

    from binaryhpe.qonnx_passes import ValueInfoLookup

    m = onnx.load(str(path))
    g = m.graph
    if not all(_size_free(n) for n in g.node) or len(g.input[0].type.tensor_type.shape.dim) != len(shape):
        return False
    probe = onnx.ModelProto()
    probe.CopyFrom(m)
    del probe.graph.value_info[:]
    for o in probe.graph.output:
        o.type.tensor_type.ClearField("shape")
    for d, v in zip(probe.graph.input[0].type.tensor_type.shape.dim, shape):
        d.dim_value = int(v)
    from qonnx.transformation.infer_shapes import _hide_finn_ops

    mw = ModelWrapper(probe, fix_missing_initializer_valueinfo=False)
    _hide_finn_ops(ValueInfoLookup(mw))
    inferred = si.infer_shapes(mw.model).graph
    dims = {vi.name: [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
            for vi in [*inferred.value_info, *inferred.output]}
    targets = [*g.value_info, *g.output]
    for vi in targets:
        new = dims.get(vi.name)
        if new is None or None in new or len(new) != len(vi.type.tensor_type.shape.dim):
            return False
    for vi in targets:
        for d, v in zip(vi.type.tensor_type.shape.dim, dims[vi.name]):
            d.dim_value = v
    for d, v in zip(g.input[0].type.tensor_type.shape.dim, shape):
        d.dim_value = int(v)
    onnx.save(m, str(path))
    return True


def brevitas_torchscript_export(model: torch.nn.Module, example: torch.Tensor, path, small_trace: bool = True) -> None:
    """Brevitas' QONNX export with torch's TorchScript exporter, without its graph lint. ``small_trace``: a model
    ``small_trace_input`` knows is traced at a small input and given ``example``'s shapes (``retarget_input``): the
    same file (tests/test_export_passes.py compares the bytes on the tiny BiDRN and the BiDRN-18 face) without
    the full-size activations' work; ``False`` (or any other model) traces at ``example`` itself."""
    from brevitas.export import export_qonnx as brevitas_export

    small = small_trace_input(model, example) if small_trace else None
    with no_jit_lint():
        if small is not None:
            # one intra-op thread: a small trace's tensors are too small to share out, and a second thread spins
            # (about half the export's CPU time on a BiDRN-18 face)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                brevitas_export(model, small, str(path), dynamo=False)
            finally:
                torch.set_num_threads(threads)
            if retarget_input(path, tuple(example.shape)):
                return
        brevitas_export(model, example, str(path), dynamo=False)


def export_qonnx(model: torch.nn.Module, example: torch.Tensor, path, verbose: bool = True,
                 qonnx_passes: bool = False, small_trace: bool = True) -> pathlib.Path:
    """Export ``model`` (already in hardware mode for bit-exact flows) to a cleaned-up QONNX file.
    ``qonnx_passes``: shape inference with qonnx's own passes instead of the indexed ones (the same file; slow).
    ``small_trace``: a BiDRN is traced at a small input (``brevitas_torchscript_export``; the same file)."""
    from brevitas.export import export_qonnx as brevitas_export

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if verbose:
        print(f"[export] {type(model).__name__} -> {path} (brevitas export_qonnx)...", flush=True)
    model.eval()
    with _quiet():
        try:  # the TorchScript exporter is 3-4x faster than dynamo on these graphs and exports the same ops
            brevitas_torchscript_export(model, example, path, small_trace)
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
