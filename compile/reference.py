"""Compare the hardware graph's integer reference with qonnx's ``execute_onnx``, tensor by tensor."""

from __future__ import annotations

import numpy as np

from binaryhpe.compile.graph import HwGraph


def nchw_to_hwc(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v)
    if v.ndim == 4:
        return v[0].transpose(1, 2, 0)
    if v.ndim == 2:
        return v.reshape(1, 1, -1)
    raise ValueError(f"unsupported rank {v.ndim}")


def onnx_context(mw, x: np.ndarray) -> dict:
    from qonnx.core.onnx_exec import execute_onnx

    from binaryhpe.train.export import _quiet

    with _quiet():
        return execute_onnx(mw, {mw.graph.input[0].name: np.asarray(x, dtype=np.float32)},
                            return_full_exec_context=True)


def hw_input(g: HwGraph, ctx: dict) -> np.ndarray:
    """The integers the hardware receives: the input quantizer's output in the QONNX execution."""
    onnx_in = next(k for k, v in g.onnx_names.items() if v == g.input)
    return g.tensors[g.input].fmt.from_real(nchw_to_hwc(ctx[onnx_in]))


def compare_with_onnx(g: HwGraph, mw, x: np.ndarray) -> dict:
    """Run both; return per-tensor mismatch counts and the first tensor that differs (None if exact)."""
    ctx = onnx_context(mw, x)
    env = g.execute(hw_input(g, ctx))
    checked, first_bad, total = 0, None, 0
    for onnx_name, hw_name in g.onnx_names.items():
        info = g.tensors[hw_name]
        if info.windowed or onnx_name not in ctx or hw_name not in env:
            continue
        ref = nchw_to_hwc(ctx[onnx_name])
        got = info.fmt.to_real(env[hw_name])
        bad = int(np.count_nonzero(ref != got))
        checked += 1
        total += ref.size
        if bad and first_bad is None:
            first_bad = {"onnx_tensor": onnx_name, "hw_tensor": hw_name, "mismatches": bad, "elements": ref.size,
                         "producer": getattr(g.producer(hw_name), "name", None)}
    out_ref = nchw_to_hwc(ctx[mw.graph.output[0].name])
    out_got = g.tensors[g.output].fmt.to_real(env[g.output])
    return {"tensors_checked": checked, "elements_checked": total, "first_mismatch": first_bad,
            "output_exact": bool(np.array_equal(out_ref, out_got)), "env": env, "ctx": ctx}
