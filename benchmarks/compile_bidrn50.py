"""Benchmark: export and compile (QONNX -> hardware graph -> RTL, no simulation) of the paper-scale BiDRN-50
body encoder at 256x192; also checks the Brevitas-vs-QONNX exactness on one random input. Prints figures."""

import pathlib
import sys
import tempfile
import time

import numpy as np
import torch

from binaryhpe.compile.flow import predicted_cycles, step_lower, step_rtl
from binaryhpe.train.export import execute_qonnx, export_qonnx
from binaryhpe.train.hardware import to_hardware
from binaryhpe.train.models import build_model


def main(name: str = "bidrn-50-body", check: bool = True) -> None:
    out = pathlib.Path(tempfile.mkdtemp(prefix="bhpe_b50_"))
    t = time.time()
    model, x = build_model(name)
    to_hardware(model)
    print(f"build + freeze {name}: {time.time() - t:.1f} s", flush=True)
    t = time.time()
    path = export_qonnx(model, x, out / "model.onnx")
    print(f"export to QONNX: {time.time() - t:.1f} s", flush=True)
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
    main(*(sys.argv[1:2] or []))
