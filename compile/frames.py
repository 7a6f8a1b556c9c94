"""User frames: ``binaryhpe build ... --sim --inputs FRAMES.npy`` and ``OUT/outputs.npy``.

A frame file holds N frames in the QONNX input's own layout and scale: for an input of shape ``(1, C, H, W)``
an array ``(N, C, H, W)`` of the float values the QONNX graph takes (float32, or any float array whose values
float32 holds exactly). The host turns each frame into the integers the hardware receives with the graph's own
input quantizer (``HwGraph.input_quant``, the QONNX ``Quant`` / ``BipolarQuant`` on the input, evaluated
exactly), and turns each simulated output frame back into the QONNX output's layout and scale with the output
tensor's format: ``outputs.npy`` is ``(N, *output_shape[1:])`` in float64, so it can be compared element for
element with ``execute_onnx`` of the same frames.
"""

from __future__ import annotations

import pathlib

import numpy as np

from binaryhpe import BinaryHPEError


def io_shapes(mw) -> tuple[tuple, tuple]:
    """The QONNX input and output shapes (batch dimension included)."""
    return (tuple(mw.get_tensor_shape(mw.graph.input[0].name)),
            tuple(mw.get_tensor_shape(mw.graph.output[0].name)))


def load_frames(path, in_shape) -> np.ndarray:
    """Read ``path`` (a .npy array of N frames) and check it against the QONNX input shape ``in_shape``
    (``(1, ...)``); returns float32 ``(N, *in_shape[1:])``. One error naming the file and what is expected."""
    path = pathlib.Path(path)
    in_shape = tuple(int(s) for s in in_shape)
    want = f"a .npy array of shape (N, {', '.join(map(str, in_shape[1:]))}) of float32 values " \
           f"(N frames of the QONNX input {in_shape})"
    if not path.is_file():
        raise BinaryHPEError(f"--inputs {path}: no such file; expected {want}")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line error
        raise BinaryHPEError(f"--inputs {path}: not a readable .npy file ({type(e).__name__}: {e}); "
                             f"expected {want}") from None
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise BinaryHPEError(f"--inputs {path}: dtype {getattr(x, 'dtype', type(x).__name__)}; expected {want}")
    if in_shape[0] != 1:
        raise BinaryHPEError(f"--inputs {path}: the QONNX input {in_shape} does not have batch size 1")
    if x.ndim != len(in_shape) or tuple(x.shape[1:]) != in_shape[1:] or x.shape[0] < 1:
        raise BinaryHPEError(f"--inputs {path}: shape {tuple(x.shape)}; expected {want}")
    bad = ~np.isfinite(x)
    if bad.any():
        i = np.unravel_index(int(np.flatnonzero(bad)[0]), x.shape)
        raise BinaryHPEError(f"--inputs {path}: {int(bad.sum())} non-finite value(s), the first "
                             f"{x[i]} at index {tuple(int(v) for v in i)}; expected finite values")
    x32 = x.astype(np.float32)
    if x.dtype != np.float32 and not np.array_equal(x32.astype(x.dtype), x):
        raise BinaryHPEError(f"--inputs {path}: dtype {x.dtype} with values float32 cannot hold exactly (the QONNX "
                             f"graph takes float32); expected {want}")
    return x32


def round_float(v: np.ndarray, mode: str) -> np.ndarray:
    """qonnx's rounding modes (``Quant``'s ``rounding_mode``), exactly (``v`` float64); the host's input quantizer
    and the compiler's float64 chain evaluation (``compile.lower_quant``) both round with it."""
    mode = mode.upper()
    if mode in ("ROUND", "HALF_EVEN"):
        return np.round(v)
    if mode == "CEIL":
        return np.ceil(v)
    if mode == "FLOOR":
        return np.floor(v)
    if mode == "UP":
        return np.sign(v) * np.ceil(np.abs(v))
    if mode in ("DOWN", "ROUND_TO_ZERO"):
        return np.fix(v)
    if mode == "HALF_UP":
        return np.sign(v) * np.floor(np.abs(v) + 0.5)
    if mode == "HALF_DOWN":
        return np.sign(v) * np.ceil(np.abs(v) - 0.5)
    raise BinaryHPEError(f"unknown rounding mode {mode!r}")


def quantize(g, x: np.ndarray) -> np.ndarray:
    """One frame ``x`` (the QONNX input's layout without the batch dimension) -> the integers the hardware
    receives (H, W, C int64), by the graph's own input quantizer ``g.input_quant``."""
    from binaryhpe.compile.reference import nchw_to_hwc

    iq = g.input_quant
    v = np.asarray(x)
    # what the QONNX graph reads, exactly: a float32 frame of its input, or a float64 frame of the hardware
    # region's input computed by the host's pre-processing (compile/partition.py)
    v = v.astype(np.float64) if v.dtype == np.float64 else v.astype(np.float32).astype(np.float64)
    if iq.get("bipolar"):
        q = np.where(v >= 0.0, 1, 0)  # BipolarQuant: +1 for x >= 0, else -1; bipolar 1 <-> +1, 0 <-> -1
    elif "scale" in iq:
        bits, signed, narrow = int(iq["bits"]), bool(iq["signed"]), int(iq.get("narrow", 0))
        lo, hi = (-(1 << (bits - 1)) + narrow, (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1 - narrow)
        q = round_float(np.clip(v / float(iq["scale"]), lo, hi), str(iq.get("rounding_mode", "ROUND")))
    else:
        raise BinaryHPEError(f"hardware graph of {g.source or 'the model'}: no input quantizer recorded "
                             "(the QONNX input must go through a Quant or BipolarQuant node first)")
    q = nchw_to_hwc(q[None].astype(np.int64))
    if tuple(q.shape) != tuple(g.tensors[g.input].shape):
        raise BinaryHPEError(f"input frame of shape {tuple(q.shape)} (HWC) does not match the hardware input "
                             f"{tuple(g.tensors[g.input].shape)}")
    return q


def to_qonnx_output(g, q: np.ndarray, out_shape) -> np.ndarray:
    """One simulated output frame (the hardware output's integers, H, W, C) -> the QONNX output's layout and
    scale without the batch dimension (float64; the output tensor's format, exactly)."""
    real = g.tensors[g.output].to_real(np.asarray(q).reshape(g.tensors[g.output].shape))
    out_shape = tuple(int(s) for s in out_shape)
    if len(out_shape) == 4:
        return real.transpose(2, 0, 1).reshape(out_shape[1:])
    return real.reshape(out_shape[1:])


def write_outputs(path, outputs: list[np.ndarray]) -> pathlib.Path:
    path = pathlib.Path(path)
    np.save(path, np.stack(outputs).astype(np.float64))
    return path


def reference_frames(g, mw, seed: int, frames: int, user_frames=None) -> tuple[dict, dict]:
    """The frames every simulation runs: random and worst-case frames (``compile.worstcase``) and the user's
    ``--inputs`` frames, each checked first (the compiler's integer reference must equal the exact reference of
    the QONNX graph, ``compile.reference.check_frames``); a user frame's integers come from the graph's own input
    quantizer, which must give the QONNX Quant's integers. Returns the named built-in frames and the check, whose
    ``inputs`` / ``outputs`` are the hardware input integers and the reference outputs of every frame."""
    from binaryhpe.compile.reference import check_frames
    from binaryhpe.compile.worstcase import simulation_frames

    named = simulation_frames(g, seed=seed, random=frames)
    # the frames are (1, C, H, W) of the hardware input; a (1, n) QONNX input (an MLP's) is the same values
    in_shape = tuple(int(d) for d in io_shapes(mw)[0])
    named = {k: (np.asarray(v).reshape(in_shape) if np.size(v) == int(np.prod(in_shape)) else v)
             for k, v in named.items()}
    xs = list(named.values()) + [np.asarray(x)[None] for x in (user_frames if user_frames is not None else [])]
    chk = check_frames(g, mw, xs)
    for i, x in enumerate(user_frames if user_frames is not None else [], len(named)):
        q = quantize(g, x)
        if not np.array_equal(q, chk["inputs"][i]):
            raise BinaryHPEError(f"--inputs frame {i - len(named)}: the input quantizer {g.input_quant} gives "
                                 f"other integers than the QONNX graph's Quant node")
        chk["inputs"][i] = q
    return named, chk
