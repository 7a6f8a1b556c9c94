"""Benchmark: export and compile (QONNX -> hardware graph -> RTL, no simulation) of the paper-scale BiDRN-50
body encoder at 256x192; also checks the Brevitas-vs-QONNX exactness on one random input. Prints figures.

The export is timed as ``export_qonnx`` runs it (Brevitas' export without torch's graph lint, traced at a
32x32 input and given the real input's shapes, then qonnx's ModelWrapper + InferShapes on indices) and as before
(traced at the full input: ``small_trace=False``); both files must be identical, byte for byte. Wall and CPU
seconds (the process's user + system time, all its threads) are printed: the machine is shared. The lowering (``load_qonnx`` + ``lower``) is timed twice in one run: with the indexed cleaning passes
(``load_qonnx``) and with qonnx's own passes (``load_qonnx(..., qonnx_passes=True)``, the code before the
index); both must give the same model, byte for byte. ``--no-before`` skips the slow qonnx runs
(``--no-lower-before`` only the lowering's);
``--qonnx=FILE`` times only the lowering of an exported QONNX file (no build, export, RTL or check).

    .venv/bin/python benchmarks/compile_bidrn50.py [model] [--no-before] [--no-lower-before] [--no-check]
                                                       [--qonnx=FILE]
"""

import pathlib
import random
import sys
import tempfile
import time

import numpy as np
import torch

from binaryhpe.compile.flow import predicted_cycles, step_lower, step_rtl
from binaryhpe.compile.lower import load_qonnx, lower
from binaryhpe.train.export import (_quiet, brevitas_torchscript_export, execute_qonnx, infer_shapes_file,
                                    small_trace_input)
from binaryhpe.train.hardware import to_hardware
from binaryhpe.train.models import build_model


def time_lowering(path: pathlib.Path, before: bool = True) -> None:
    """Print the QONNX -> hardware graph time (load and clean the QONNX, lower it), with qonnx's own passes
    (before the index) beside it when ``before``."""
    random.seed(0)
    t = time.time()
    mw = load_qonnx(path)
    t_load = time.time() - t
    t = time.time()
    g = lower(mw, source=str(path))
    t_low = time.time() - t
    print(f"QONNX -> hardware graph (load_qonnx + lower): {t_load + t_low:.1f} s (load and clean {t_load:.1f} s, "
          f"lower {t_low:.1f} s; {len(mw.graph.node)} nodes -> {len(g.layers)} layers)", flush=True)
    if not before:
        return
    random.seed(0)
    t = time.time()
    ref = load_qonnx(path, qonnx_passes=True)
    t_ref = time.time() - t
    t = time.time()
    g_ref = lower(ref, source=str(path))
    t_ref_low = time.time() - t
    same = ref.model.SerializeToString() == mw.model.SerializeToString()
    print(f"  before (qonnx's own passes): {t_ref + t_ref_low:.1f} s (load and clean {t_ref:.1f} s, lower "
          f"{t_ref_low:.1f} s; {len(g_ref.layers)} layers); cleaned models identical: {same}", flush=True)
    if not same:
        raise SystemExit("the indexed cleaning passes gave a different model from qonnx's")


def time_export(model, x, out: pathlib.Path, before: bool = True) -> pathlib.Path:
    """Export as ``export_qonnx`` does (Brevitas' export without torch's graph lint, traced at a small input and
    retargeted to ``x``'s shape; then qonnx's ModelWrapper + InferShapes on indices) and print its wall and CPU time;
    when ``before``, also the export traced at the full input (``small_trace=False``, the export before the small
    trace), whose file must be the same, byte for byte. Returns the exported file."""
    path = out / "model.onnx"
    t, c = time.time(), time.process_time()
    with _quiet():
        brevitas_torchscript_export(model.eval(), x, path)
    t_brev, c_brev = time.time() - t, time.process_time() - c
    t, c = time.time(), time.process_time()
    mw = infer_shapes_file(path)
    t_new, c_new = time.time() - t, time.process_time() - c
    print(f"export to QONNX: {t_brev + t_new:.1f} s wall, {c_brev + c_new:.1f} s CPU (Brevitas export_qonnx traced at "
          f"{tuple(small_trace_input(model, x).shape)} and retargeted {t_brev:.1f} s wall / {c_brev:.1f} s CPU, "
          f"ModelWrapper + InferShapes on indices {t_new:.1f} s / {c_new:.1f} s; {len(mw.graph.node)} nodes)",
          flush=True)
    if before:
        ref = out / "model_before.onnx"
        t, c = time.time(), time.process_time()
        with _quiet():
            brevitas_torchscript_export(model.eval(), x, ref, small_trace=False)
        t_full, c_full = time.time() - t, time.process_time() - c
        t, c = time.time(), time.process_time()
        infer_shapes_file(ref)
        t_old, c_old = time.time() - t, time.process_time() - c
        same = ref.read_bytes() == path.read_bytes()
        print(f"  before (traced at the full input {tuple(x.shape)}): {t_full + t_old:.1f} s wall, "
              f"{c_full + c_old:.1f} s CPU (Brevitas {t_full:.1f} s / {c_full:.1f} s, the same passes {t_old:.1f} s / "
              f"{c_old:.1f} s); files "
              f"identical: {same}", flush=True)
        if not same:
            raise SystemExit("the small trace gave a different file from the full-size trace")
    return path


def main(name: str = "bidrn-50-body", check: bool = True, before: bool = True, lower_before: bool = True) -> None:
    out = pathlib.Path(tempfile.mkdtemp(prefix="bhpe_b50_"))
    t = time.time()
    model, x = build_model(name)
    to_hardware(model)
    print(f"build + freeze {name}: {time.time() - t:.1f} s", flush=True)
    path = time_export(model, x, out, before)
    time_lowering(path, before and lower_before)
    t = time.time()
    g, mw = step_lower(path)
    t_lower = time.time() - t
    t = time.time()
    step_rtl(g, out)
    t_rtl = time.time() - t
    print(f"compile QONNX -> hardware graph: {t_lower:.1f} s ({len(mw.graph.node)} nodes -> {len(g.layers)} layers)")
    print(f"generate RTL: {t_rtl:.1f} s")
    print(f"predicted cycles per frame: {predicted_cycles(g)}")
    if check:
        t = time.time()
        with torch.no_grad():
            ref = model(x).numpy()
        got = execute_qonnx(path, x.numpy())
        print(f"Brevitas vs execute_onnx: {int(np.count_nonzero(ref != got))} of {ref.size} elements differ "
              f"({time.time() - t:.1f} s)")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    qonnx = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--qonnx=")]
    if qonnx:
        time_lowering(pathlib.Path(qonnx[0]), before="--no-before" not in sys.argv)
    else:
        main(*(args[:1] or []), check="--no-check" not in sys.argv, before="--no-before" not in sys.argv,
             lower_before="--no-lower-before" not in sys.argv)
