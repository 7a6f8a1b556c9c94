"""Benchmark: export and compile (QONNX -> hardware graph -> RTL, no simulation) of the paper-scale BiDRN-50
body encoder at 256x192; also checks the Brevitas-vs-QONNX exactness on one random input. Prints figures.

The export is timed as ``export_qonnx`` runs it (Brevitas' export without torch's graph lint, then qonnx's
ModelWrapper + InferShapes on indices) and as before (with the lint, qonnx's own passes); both files must be
identical, byte for byte. The lowering (``load_qonnx`` + ``lower``) is timed twice in one run: with the indexed cleaning passes
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
from brevitas.export import export_qonnx as brevitas_export

from binaryhpe.compile.flow import predicted_cycles, step_lower, step_rtl
from binaryhpe.compile.lower import load_qonnx, lower
from binaryhpe.train.export import _quiet, execute_qonnx, infer_shapes_file, no_jit_lint
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
    """Export as ``export_qonnx`` does (Brevitas' export without torch's graph lint, then qonnx's ModelWrapper +
    InferShapes on indices) and print its time; when ``before``, also the export as it was before (Brevitas' export
    with the lint, qonnx's own passes), whose file must be the same, byte for byte. Returns the exported file."""
    path = out / "model.onnx"
    t = time.time()
    with _quiet(), no_jit_lint():
        brevitas_export(model.eval(), x, str(path), dynamo=False)
    t_brev = time.time() - t
    t = time.time()
    mw = infer_shapes_file(path)
    t_new = time.time() - t
    print(f"export to QONNX: {t_brev + t_new:.1f} s (Brevitas export_qonnx without torch's graph lint {t_brev:.1f} s, "
          f"ModelWrapper + InferShapes on indices {t_new:.1f} s; {len(mw.graph.node)} nodes)", flush=True)
    if before:
        ref = out / "model_before.onnx"
        t = time.time()
        with _quiet():
            brevitas_export(model.eval(), x, str(ref), dynamo=False)
        t_lint = time.time() - t
        t = time.time()
        infer_shapes_file(ref, qonnx_passes=True)
        t_old = time.time() - t
        same = ref.read_bytes() == path.read_bytes()
        print(f"  before (with the lint, qonnx's own ModelWrapper + InferShapes): {t_lint + t_old:.1f} s (Brevitas "
              f"{t_lint:.1f} s, qonnx's passes {t_old:.1f} s); files identical: {same}", flush=True)
        if not same:
            raise SystemExit("the export without the lint and with the indexed passes gave a different file")
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
