"""Independent anchors: every layer kind's per-layer expectation as a small QONNX graph, executed exactly.

The cocotb benches (tests/rtl/cocotb_*.py) compare the RTL with these values, not with the kind's own
``execute`` (the code the compiler uses), and assert on the same frames that ``execute`` equals them.
Each builder states the layer the way a QONNX model states it (Quant / BipolarQuant / Trunc /
MultiThreshold nodes from ``qonnx.custom_op.general``, qonnx's Im2Col, standard ONNX MatMul / MaxPool /
ReduceSum / Concat / Split / Identity / Mul / Add / PRelu ...) from the kind's *data* only (shape, formats,
weights, constants), never from its methods.

Exactness: the graphs run through the project's exact reference,
``binaryhpe.compile.reference.exact_reference`` (a float64 copy of the graph executed node by node, Quant in
float64, raising where a value or partial sum would need more than 53 bits), so an anchor is exact at every
width the kinds use (accumulators past 2^24 included). Convolutions over explicit windows are Im2Col +
MatMul (the windows a bench feeds an MVU carry arbitrary masks, which a Conv node cannot state).
"""

from __future__ import annotations

import warnings

import numpy as np
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh

QDOMAIN = "qonnx.custom_op.general"


class Graph:
    """A tiny graph builder: named DOUBLE inputs, nodes, initializers; ``run`` executes it with qonnx."""

    def __init__(self):
        self.nodes: list = []
        self.inits: list = []
        self.inputs: dict[str, tuple] = {}
        self.datatypes: dict[str, str] = {}
        self._n = 0

    def _name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}{self._n}"

    def input(self, name: str, shape, datatype: str | None = None) -> str:
        self.inputs[name] = tuple(int(s) for s in shape)
        if datatype:
            self.datatypes[name] = datatype
        return name

    def const(self, value, dtype=np.float64, stem="c") -> str:
        name = self._name(stem)
        self.inits.append(nh.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, ins: list[str], n_out: int = 1, domain: str = "", **attrs):
        outs = [self._name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(oh.make_node(op_type, ins, outs, domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs

    def quant(self, x: str, bits: int, signed: bool, narrow: bool = False, scale: float = 1.0,
              rounding: str = "ROUND") -> str:
        """qonnx Quant: an integer format of ``bits`` bits, zero point 0."""
        return self.op("Quant", [x, self.const(scale), self.const(0.0), self.const(float(bits))], domain=QDOMAIN,
                       signed=int(signed), narrow=int(narrow), rounding_mode=rounding)

    def bipolar(self, x: str) -> str:
        """qonnx BipolarQuant (x >= 0 -> +1, else -1)."""
        return self.op("BipolarQuant", [x, self.const(1.0)], domain=QDOMAIN)

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
        """Execute with the project's exact reference (``binaryhpe.compile.reference.exact_reference``: a float64
        copy of the graph, per-node execution, float64 Quant, and a check that no value or partial sum needs
        more than 53 bits). The first input is the graph input; every other feed (a mask, a second operand, an
        all-ones frame) becomes a DOUBLE initializer of this one-frame graph."""
        from qonnx.core.datatype import DataType
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.transformation.infer_shapes import InferShapes

        from binaryhpe.compile.reference import exact_reference

        names = list(self.inputs)
        first = names[0]
        inits = list(self.inits) + [nh.from_array(np.asarray(feeds[n], dtype=np.float64), n) for n in names[1:]]
        ins = [oh.make_tensor_value_info(first, TensorProto.FLOAT, list(self.inputs[first]))]
        outs = [oh.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs]
        graph = oh.make_graph(self.nodes, "anchor", ins, outs, inits)
        model = ModelWrapper(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13),
                                                                  oh.make_opsetid(QDOMAIN, 1)]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = model.transform(InferShapes())
        for name, dt in self.datatypes.items():
            model.set_tensor_datatype(name, DataType[dt])
        run = exact_reference(model, np.asarray(feeds[first], dtype=np.float64))
        return [_integers(run.context[n], n) for n in outputs]


def _integers(v: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
        raise AssertionError(f"anchor output {name} is not integral")
    if np.abs(v).max(initial=0) >= 2.0 ** 53:
        raise AssertionError(f"anchor output {name} exceeds float64's exact range")
    return v.astype(np.int64)


# --------------------------------------------------------------------------------------- matrix-vector units
def xnor_mvu(weights: np.ndarray, windows: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Binary conv over its windows: ``BipolarQuant(window bit - 1/2) * mask`` (padding taps are 0, as a
    zero-padded binary conv's) MatMul ``BipolarQuant(W)^T``. Bits: 1 = +1, 0 = -1.
    ``weights`` (cout, n) of +-1, ``windows``/``mask`` (OH, OW, n) of 0/1 -> (OH, OW, cout)."""
    w = np.asarray(weights, dtype=np.float64)
    oh_, ow_, n = windows.shape
    g = Graph()
    x = g.input("x", (oh_ * ow_, n))
    m = g.input("m", (oh_ * ow_, n))
    a = g.op("Mul", [g.bipolar(g.op("Add", [x, g.const(-0.5)])), m])
    wq = g.bipolar(g.const(w.T))
    y = g.op("MatMul", [a, wq])
    out, = g.run({"x": windows.reshape(-1, n), "m": mask.reshape(-1, n)}, [y])
    return out.reshape(oh_, ow_, -1)


def fxp_mvu(weights: np.ndarray, in_w: int, w_w: int, windows: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fixed-point conv over its windows: ``Quant(x, in_w bits) * mask`` MatMul ``Quant(W, w_w bits)^T``,
    accumulated in float64 (exact: the MatMul runs after the Casts)."""
    w = np.asarray(weights, dtype=np.float64)
    oh_, ow_, n = windows.shape
    g = Graph()
    x = g.input("x", (oh_ * ow_, n))
    m = g.input("m", (oh_ * ow_, n))
    a = g.op("Mul", [g.quant(x, in_w, signed=True), m])
    y = g.op("MatMul", [a, g.quant(g.const(w.T), w_w, signed=True)])
    out, = g.run({"x": windows.reshape(-1, n), "m": mask.reshape(-1, n)}, [y])
    return out.reshape(oh_, ow_, -1)


# --------------------------------------------------------------------------------------------- windows, pools
def _datatype(elem_w: int, signed: bool) -> str:
    if elem_w == 1 and not signed:
        return "BINARY"
    return f"{'INT' if signed else 'UINT'}{elem_w}"


def _im2col(g: Graph, x: str, shape, k: int, s: int, pad: int) -> str:
    h, w, c = shape
    return g.op("Im2Col", [x], domain=QDOMAIN, stride=[s, s], kernel_size=[k, k],
                input_shape=f"(1, {h}, {w}, {c})", pad_amount=[pad] * 4, pad_value=0)


def sliding_window(x: np.ndarray, k: int, s: int, pad: int, elem_w: int, signed: bool):
    """qonnx Im2Col of the (H, W, C) frame (zero padding, windows in (ky, kx, c) order) and, as the mask,
    Im2Col of an all-ones frame of the same shape -> ((OH, OW, K*K*C) windows, same-shape 0/1 mask)."""
    shape = x.shape
    g = Graph()
    xi = g.input("x", (1,) + shape, _datatype(elem_w, signed))
    ones = g.input("ones", (1,) + shape, "BINARY")
    win = _im2col(g, xi, shape, k, s, pad)
    msk = _im2col(g, ones, shape, k, s, pad)
    a, b = g.run({"x": x[None], "ones": np.ones((1,) + shape)}, [win, msk])
    return a[0], b[0]


def pool(x: np.ndarray, k: int, s: int, pad: int, mode: str, elem_w: int, signed: bool) -> np.ndarray:
    """Max: ONNX MaxPool (NCHW, padding never wins). Sum: Im2Col (zero padding) then ReduceSum over the
    K*K taps (the exact sum an average pool's Trunc divides). (H, W, C) -> (OH, OW, C)."""
    h, w, c = x.shape
    g = Graph()
    if mode == "max":
        xi = g.input("x", (1, c, h, w))
        y = g.op("MaxPool", [xi], kernel_shape=[k, k], strides=[s, s], pads=[pad] * 4)
        out, = g.run({"x": x.transpose(2, 0, 1)[None]}, [y])
        return out[0].transpose(1, 2, 0)
    xi = g.input("x", (1, h, w, c), _datatype(elem_w, signed))
    win = _im2col(g, xi, (h, w, c), k, s, pad)
    oh_ = (h + 2 * pad - k) // s + 1
    ow_ = (w + 2 * pad - k) // s + 1
    taps = g.op("Reshape", [win, g.const([oh_, ow_, k * k, c], np.int64)])
    y = g.op("ReduceSum", [taps, g.const([2], np.int64)], keepdims=0)
    out, = g.run({"x": x[None]}, [y])
    return out


def pool_reduce(win: np.ndarray, mask: np.ndarray, k: int, c: int, mode: str, elem_w: int,
                signed: bool) -> np.ndarray:
    """The reducer alone on (window, mask) beats: sum = ReduceSum(win * mask); max = ReduceMax over the taps
    of ``win`` where the mask is 1 and of the format's lowest value where it is 0 (a padding tap never wins;
    a window with no real tap gives that lowest value). (OH, OW, K*K*C) -> (OH, OW, C)."""
    oh_, ow_, _ = win.shape
    lo = -(1 << (elem_w - 1)) if signed else 0
    g = Graph()
    xi = g.input("x", (oh_, ow_, k * k, c))
    mi = g.input("m", (oh_, ow_, k * k, c))
    if mode == "sum":
        y = g.op("ReduceSum", [g.op("Mul", [xi, mi]), g.const([2], np.int64)], keepdims=0)
    else:
        low = g.op("Mul", [g.op("Sub", [g.const(1.0), mi]), g.const(float(lo))])
        y = g.op("ReduceMax", [g.op("Add", [g.op("Mul", [xi, mi]), low])], axes=[2], keepdims=0)
    out, = g.run({"x": win.reshape(oh_, ow_, k * k, c), "m": mask.reshape(oh_, ow_, k * k, c)}, [y])
    return out


# ------------------------------------------------------------------------------------------------- plumbing
def concat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ONNX Concat on the channel axis (NCHW axis 1) of two (H, W, C) frames."""
    g = Graph()
    ai = g.input("a", (1, a.shape[2]) + a.shape[:2])
    bi = g.input("b", (1, b.shape[2]) + b.shape[:2])
    y = g.op("Concat", [ai, bi], axis=1)
    out, = g.run({"a": a.transpose(2, 0, 1)[None], "b": b.transpose(2, 0, 1)[None]}, [y])
    return out[0].transpose(1, 2, 0)


def split(x: np.ndarray, c1: int) -> tuple[np.ndarray, np.ndarray]:
    """ONNX Split of the channel axis (NCHW axis 1) into ``c1`` and the rest."""
    h, w, c = x.shape
    g = Graph()
    xi = g.input("x", (1, c, h, w))
    ya, yb = g.op("Split", [xi, g.const([c1, c - c1], np.int64)], n_out=2, axis=1)
    a, b = g.run({"x": x.transpose(2, 0, 1)[None]}, [ya, yb])
    return a[0].transpose(1, 2, 0), b[0].transpose(1, 2, 0)


def identity(x: np.ndarray, copies: int = 1) -> list[np.ndarray]:
    """ONNX Identity (``copies`` consumers of one tensor: a fork; a width converter or FIFO is one)."""
    x = np.asarray(x)
    g = Graph()
    xi = g.input("x", x.shape)
    ys = [g.op("Identity", [xi]) for _ in range(copies)]
    return g.run({"x": x}, ys)


# ----------------------------------------------------------------------------------------------- elementwise
# A QONNX graph states "floor, then saturate to an n-bit format" as a Quant node with rounding_mode FLOOR (what
# Brevitas exports for a floor-rounding quantizer); "x >> s" as the real scale 2^-s in front of it (a Mul by a
# power of two, exact). The anchors work on the integers (Quant scale 1). Tensors are (pixels, C), per-channel
# constants broadcast over the last axis.
def _floor_sat(g: Graph, x: str, bits: int, shift: int = 0, signed: bool = True) -> str:
    if shift:
        x = g.op("Mul", [x, g.const(2.0 ** (-shift))])
    return g.quant(x, bits, signed, rounding="FLOOR")


def _chan(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(1, -1)


def _ew_op(g: Graph, op, x: str, b: str | None) -> str:
    """One elementwise kind as QONNX nodes, from its attributes (see compile/kinds/elementwise.py's table)."""
    name = type(op).__name__
    if name == "Requant":
        y = _floor_sat(g, x, op.out_w, op.shift)
        return g.op("Relu", [y]) if op.relu else y
    if name == "JoinAdd":
        s = g.op("Add", [g.op("Mul", [x, g.const(2.0 ** op.shift_a)]), g.op("Mul", [b, g.const(2.0 ** op.shift_b)])])
        return _floor_sat(g, s, op.out_w)
    if name == "MulShift":
        return _floor_sat(g, g.op("Mul", [x, g.const(_chan(op.m))]), op.out_w, op.shift)
    if name == "AddConst":
        return _floor_sat(g, g.op("Add", [x, g.const(_chan(op.b))]), op.out_w)
    if name == "Prelu":  # PRelu with slope beta * 2^-shift, then floor and saturate (x > 0 passes unchanged)
        slope = np.asarray(op.beta, dtype=np.float64) * 2.0 ** (-op.shift)
        return _floor_sat(g, g.op("PRelu", [x, g.const(slope.reshape(1, -1))]), op.out_w)
    if name == "Sign":  # BipolarQuant gives +-1; the bit is (y + 1) / 2
        return g.op("Mul", [g.op("Add", [g.bipolar(x), g.const(1.0)]), g.const(0.5)])
    if name == "Threshold":  # x >= T, or x <= T (i.e. -x >= -T) on negative channels: a 1-step MultiThreshold
        sgn = np.where(np.asarray(op.neg) != 0, -1.0, 1.0)
        t = (sgn * np.asarray(op.thresholds, dtype=np.float64)).reshape(-1, 1)
        return g.op("MultiThreshold", [g.op("Mul", [x, g.const(sgn.reshape(1, -1))]), g.const(t)], domain=QDOMAIN,
                    out_dtype="BINARY")
    if name == "MultiThreshold":
        # qonnx's out_bias is added to the count (a signed kind's offset: its lowest level)
        return g.op("MultiThreshold", [x, g.const(np.asarray(op.thresholds, dtype=np.float64))], domain=QDOMAIN,
                    out_dtype=f"{'INT' if getattr(op, 'signed', False) else 'UINT'}{op.out_w}",
                    out_bias=float(getattr(op, "offset", 0)))
    raise KeyError(f"no anchor for elementwise kind {name}")


def elementwise(ops: list, x: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """A chain of elementwise kinds (one kind, or a fused epilogue's ops in order) as one QONNX graph; ``b`` is
    the second operand of a JoinAdd. ``x`` (..., C) -> the same shape."""
    x = np.asarray(x, dtype=np.int64)
    shape, c = x.shape, x.shape[-1]
    g = Graph()
    t = g.input("x", (x.size // c, c))
    bi = g.input("b", (x.size // c, c)) if b is not None else None
    for op in ops:
        t = _ew_op(g, op, t, bi)
    feeds = {"x": x.reshape(-1, c)}
    if b is not None:
        feeds["b"] = np.asarray(b, dtype=np.int64).reshape(-1, c)
    out, = g.run(feeds, [t])
    return out.reshape(shape)


EW_KINDS = ("Requant", "JoinAdd", "MulShift", "AddConst", "Prelu", "Sign", "Threshold", "MultiThreshold")


# ------------------------------------------------------------------------------------------ dispatch by kind
def expect(kind, ins: list[np.ndarray]) -> list[np.ndarray]:
    """The anchor's outputs for a hardware kind object and its integer inputs (as ``kind.execute`` takes
    them). Only the kind's shape/format/constant attributes are read; never its methods."""
    name = type(kind).__name__
    ins = [np.asarray(i, dtype=np.int64) for i in ins]
    if name in ("XnorMvu", "FcXnorMvu"):
        win = ins[0] if name == "XnorMvu" else ins[0].reshape(1, 1, -1)
        mask = ins[1].reshape(win.shape) if len(ins) > 1 else np.ones_like(win)
        return [xnor_mvu(kind.weights, win, mask)]
    if name in ("FxpMvu", "FcFxpMvu"):
        win = ins[0] if name == "FxpMvu" else ins[0].reshape(1, 1, -1)
        mask = ins[1].reshape(win.shape) if len(ins) > 1 else np.ones_like(win)
        return [fxp_mvu(kind.weights, kind.in_w, kind.w_w, win, mask)]
    if name == "SlidingWindow":
        return [sliding_window(ins[0], kind.k, kind.s, kind.pad, kind.elem_w, kind.signed)[0]]
    if name == "Pool":
        return [pool(ins[0], kind.k, kind.s, kind.pad, kind.mode, kind.elem_w, kind.signed)]
    if name == "Concat":
        return [concat(ins[0], ins[1])]
    if name == "Split":
        return list(split(ins[0], kind.c1))
    if name == "Fork":
        return identity(ins[0], 2)
    if name in ("Dwc", "Fifo"):
        return identity(ins[0], 1)
    if name in EW_KINDS:
        return [elementwise([kind], ins[0], ins[1] if name == "JoinAdd" else None)]
    if name == "Epilogue":
        return [elementwise(list(kind.ops), ins[0], ins[1] if len(ins) > 1 else None)]
    raise KeyError(f"no anchor for kind {name}")


def expect_mask(kind, ins: list[np.ndarray]) -> np.ndarray:
    """The padding mask a SlidingWindow kind emits with its windows (Im2Col of an all-ones frame)."""
    x = np.asarray(ins[0], dtype=np.int64)
    return sliding_window(x, kind.k, kind.s, kind.pad, kind.elem_w, kind.signed)[1]


def expect_graph(g, x: np.ndarray) -> dict:
    """A whole hardware graph, layer by layer in its order, each layer's outputs from its anchor (never from a
    kind's ``execute``): tensor name -> integers, window tensors as (windows, mask) pairs (as
    ``HwGraph.execute`` returns them, which the caller may compare with this)."""
    env: dict = {g.input: np.asarray(x, dtype=np.int64)}
    for lay in g.layers:
        ins = []
        for t in lay.inputs:
            v = env[t]
            ins.extend(v if isinstance(v, tuple) else (v,))
        outs = expect(lay, ins)
        if g.tensors[lay.outputs[0]].windowed:
            env[lay.outputs[0]] = (outs[0], expect_mask(lay, [env[lay.inputs[0]]]))
        else:
            for t, v in zip(lay.outputs, outs):
                env[t] = v
    return env
