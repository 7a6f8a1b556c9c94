"""Errors, never tracebacks: ``binaryhpe build FILE.onnx -o OUT`` on malformed files and on a seeded fuzz of small
random QONNX graphs. Nothing but ``binaryhpe.BinaryHPEError`` may escape the build: the CLI then exits with its
error code (2) and prints one line (``binaryhpe: error: ...``); the graphs made only of what maps exactly today
(power-of-two / FLOOR quantizers, binary weights, BatchNorm + sign, max pooling, a binary fully connected head)
must build. The CLI runs in-process (``binaryhpe.cli.main``); ``benchmarks/fuzz_cli.py`` runs longer fuzzes.
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from binaryhpe.cli import main

QONNX_DOMAIN = "qonnx.custom_op.general"


def run_cli(path, out) -> tuple[int, str]:
    """``binaryhpe build PATH -o OUT`` in-process: (exit code, stderr). Any exception but the CLI's own exit
    propagates (the test fails with it)."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        rc = main(["build", str(path), "-o", str(out)])
    return rc, err.getvalue()


def assert_one_line_error(rc: int, err: str, what: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, f"{what}: exit code {rc}, stderr {err!r}"
    assert len(lines) == 1 and lines[0].startswith("binaryhpe: error: "), f"{what}: {err!r}"
    return lines[0]


# --- a small builder of QONNX graphs -----------------------------------------------------------------------
class GraphBuilder:
    def __init__(self, rng):
        self.rng = rng
        self.nodes, self.inits, self.k = [], [], 0

    def name(self, base: str) -> str:
        self.k += 1
        return f"{base}{self.k}"

    def const(self, arr, dtype=np.float32) -> str:
        n = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=dtype), n))
        return n

    def node(self, op, ins, domain="", n_out=1, **attrs) -> list[str]:
        outs = [self.name("t") for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, ins, outs, name=self.name(op.lower() + "_"), domain=domain, **attrs))
        return outs

    def quant(self, x, scale, bits, signed=1, narrow=0, mode="FLOOR", zp=0.0) -> str:
        return self.node("Quant", [x, self.const(scale), self.const(zp), self.const(bits)], domain=QONNX_DOMAIN,
                         signed=signed, narrow=narrow, rounding_mode=mode)[0]

    def bipolar(self, x, scale=1.0) -> str:
        return self.node("BipolarQuant", [x, self.const(scale)], domain=QONNX_DOMAIN)[0]

    def model(self, inp_shape, out_name, out_shape=None) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, inp_shape)],
                              [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
                              initializer=self.inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)])


MUTATIONS = ("float_weights", "unknown_op", "non_pow2_scale", "narrow", "zero_point", "wide_quant", "one_bit_quant",
             "round_requant", "per_channel_act_scale", "group", "stride", "dilation", "auto_pad", "asym_pad",
             "kernel_mismatch", "bn_alone", "bn_zero_var", "missing_init", "transpose", "avgpool", "ceil_pool",
             "sin", "concat_self", "add_self", "mul_tensor", "reshape_bad", "rank3_input", "rank5_input",
             "two_inputs", "two_outputs", "wrong_out_shape", "no_input_quant", "dup_output", "bipolar_scale",
             "int_input", "softmax_mid", "empty_shape_init", "gemm_trans", "matmul_3d", "relu_then_sign",
             "split", "identity", "nan_weight", "huge_bn")

#: op types "havoc" swaps in for a node's own
HAVOC_OPS = ("Conv", "MatMul", "Gemm", "Add", "Mul", "Sub", "Div", "Relu", "MaxPool", "AveragePool", "Reshape",
             "Flatten", "BatchNormalization", "Quant", "BipolarQuant", "Concat", "Transpose", "Softmax", "Sigmoid",
             "Trunc", "MultiThreshold", "ConvTranspose", "GlobalAveragePool", "PRelu", "Clip", "Split", "Pad")


def havoc(model: onnx.ModelProto, rng) -> None:
    """One to three low-level corruptions of ``model``: an input dropped or swapped, an initializer replaced
    by a random array (shape, values), an integer attribute set at random, a node's op type swapped."""
    g = model.graph
    for _ in range(int(rng.integers(1, 4))):
        what = int(rng.integers(0, 5))
        n = g.node[int(rng.integers(0, len(g.node)))]
        if what == 0 and len(n.input) > 1:
            del n.input[int(rng.integers(0, len(n.input)))]
        elif what == 1 and len(n.input) > 1:
            i, j = rng.choice(len(n.input), 2, replace=False)
            n.input[int(i)], n.input[int(j)] = n.input[int(j)], n.input[int(i)]
        elif what == 2 and len(g.initializer):
            k = int(rng.integers(0, len(g.initializer)))
            init = g.initializer[k]
            shape = tuple(int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 5))))
            dtype = np.int64 if init.data_type == TensorProto.INT64 else np.float32
            vals = rng.choice([0, 1, -1, 3, 7, 1 << 40] if dtype == np.int64 else
                              [0.0, 1.0, -1.0, 0.5, 3.0, 2.0**-3, 1e9, np.inf, -0.25], size=shape)
            g.initializer[k].CopyFrom(numpy_helper.from_array(np.asarray(vals).astype(dtype), init.name))
        elif what == 3:
            ints = [a for a in n.attribute if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS)]
            if ints:
                a = ints[int(rng.integers(0, len(ints)))]
                if a.type == onnx.AttributeProto.INT:
                    a.i = int(rng.integers(-1, 5))
                else:
                    a.ints[int(rng.integers(0, len(a.ints)))] = int(rng.integers(-1, 5)) if len(a.ints) else 0
        else:
            n.op_type = str(rng.choice(HAVOC_OPS))
            n.domain = QONNX_DOMAIN if n.op_type in ("Quant", "BipolarQuant", "Trunc", "MultiThreshold") else ""


def random_graph(seed: int) -> tuple[onnx.ModelProto, str | None]:
    """A random chain of Quant / BipolarQuant / Conv / BatchNormalization / MaxPool / Relu / Reshape / Gemm /
    MatMul / Mul / Add ... with random attributes. Returns (model, mutation): ``mutation`` None means the graph is
    made only of what maps exactly today and must build; otherwise the mutation applied (it may or may not map)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder(rng)
    r = rng.random()
    mutation = None if r < 0.35 else "havoc" if r < 0.65 else str(rng.choice(MUTATIONS))
    m = mutation
    c, h = int(rng.integers(1, 5)), int(rng.choice([4, 6, 8]))
    shape = [1, c, h, h]
    if m == "rank3_input":
        shape = [1, c, h]
    if m == "rank5_input":
        shape = [1, 1, c, h, h]
    x = "x"
    if rng.random() < 0.4:  # host pre-processing, as BNN-PYNQ's 2x - 1
        x = b.node("Mul", [x, b.const(2.0)])[0]
        x = b.node("Sub", [x, b.const(1.0)])[0]
    if m == "int_input":
        x = b.node("Cast", [x], to=TensorProto.INT8)[0]
    binary = rng.random() < 0.5
    if m == "no_input_quant":
        pass
    elif binary:
        x = b.bipolar(x, 0.5 if m == "bipolar_scale" else 1.0)
    else:
        x = b.quant(x, 2.0 ** -int(rng.integers(0, 7)), int(rng.integers(2, 9)), mode=str(rng.choice(["FLOOR", "ROUND"])))
    if m == "transpose":
        x = b.node("Transpose", [x], perm=[0, 2, 3, 1])[0]
    n_layers = int(rng.integers(1, 4))
    where = int(rng.integers(0, n_layers))  # the layer the mutation goes into
    for li in range(n_layers):
        mut = m if li == where else None
        k = int(rng.choice([1, 3])) if h >= 3 else 1
        pad = int(rng.integers(0, 2)) if k == 3 else 0
        cout = int(rng.integers(1, 9))
        w = rng.standard_normal((cout, c, k, k))
        if mut == "nan_weight":
            w[0, 0, 0, 0] = np.nan
        if mut == "float_weights":
            wq = b.const(w)
        elif binary or rng.random() < 0.7:  # binary inputs take binary weights
            wq = b.bipolar(b.const(w))
        else:
            wq = b.quant(b.const(w), 1.0, 2)
        attrs = {"kernel_shape": [k, k], "pads": [pad] * 4}
        if mut == "group":
            attrs["group"] = 2
        if mut == "stride":
            attrs["strides"] = [2, 2]
        if mut == "dilation":
            attrs["dilations"] = [2, 2]
        if mut == "auto_pad":
            attrs = {"kernel_shape": [k, k], "auto_pad": "SAME_UPPER"}
        if mut == "asym_pad":
            attrs["pads"] = [0, 1, 1, 0]
        if mut == "kernel_mismatch":
            attrs["kernel_shape"] = [k + 2, k + 2]
        if mut == "empty_shape_init":
            wq = b.const(np.zeros((0,)))
        y = b.node("Conv", [x, wq], **attrs)[0]
        if mut == "sin":
            y = b.node("Sin", [y])[0]
        if mut == "softmax_mid":
            y = b.node("Softmax", [y], axis=1)[0]
        if mut == "concat_self":
            y = b.node("Concat", [y, y], axis=1)[0]
            cout *= 2
        if mut == "add_self":
            y = b.node("Add", [y, y])[0]
        if mut == "mul_tensor":
            y = b.node("Mul", [y, x])[0]
        if mut == "split":
            y = b.node("Split", [y], n_out=1)[0]
        if mut == "identity":
            y = b.node("Identity", [y])[0]
        if mut == "unknown_op":
            y = b.node("FooBar", [y], domain="ai.onnx.fuzz")[0]
        h = h + 2 * pad - k + 1
        c = cout
        ep = rng.random()
        bn = lambda: b.node("BatchNormalization", [y, b.const(rng.standard_normal(c)), b.const(rng.standard_normal(c)),  # noqa: E731
                                                   b.const(rng.standard_normal(c)),
                                                   b.const(np.zeros(c) if mut == "bn_zero_var" else
                                                           (1e30 if mut == "huge_bn" else rng.uniform(0.5, 2, c)))])[0]
        binary = ep < 0.5 or mut in ("bn_zero_var", "huge_bn", "relu_then_sign")
        if mut == "bn_alone":
            x = bn()
        elif mut == "relu_then_sign":
            x = b.bipolar(b.node("Relu", [y])[0])
        elif binary:
            x = b.bipolar(bn())
        else:
            bits = int(rng.integers(2, 9))
            scale = 2.0 ** -int(rng.integers(0, 3))
            if mut == "non_pow2_scale":
                scale = 0.3
            if mut == "per_channel_act_scale":
                scale = np.full((1, c, 1, 1), scale)
            if mut == "wide_quant":
                bits = 40
            if mut == "one_bit_quant":
                bits = 1
            x = b.quant(y, scale, bits, narrow=int(mut == "narrow"), zp=1.0 if mut == "zero_point" else 0.0,
                        mode="ROUND" if mut == "round_requant" else "FLOOR")
        if mut == "avgpool" and h >= 2:
            x = b.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])[0]
            h //= 2
        elif mut == "ceil_pool" and h >= 3:
            x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)[0]
            h = -(-(h - 3) // 2) + 1
        elif h >= 2 and h % 2 == 0 and rng.random() < 0.4:
            x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])[0]
            h //= 2
        if mut == "missing_init":
            b.inits.pop(int(rng.integers(0, len(b.inits))))
    out_shape = [1, c, h, h]
    if rng.random() < 0.6:  # a fully connected head on the flattened tensor
        n = c * h * h
        if m == "reshape_bad":
            x = b.node("Reshape", [x, b.const(np.array([1, n + 1]), np.int64)])[0]
        elif rng.random() < 0.5:
            x = b.node("Flatten", [x], axis=1)[0]
        else:
            x = b.node("Reshape", [x, b.const(np.array([1, n]), np.int64)])[0]
        classes = int(rng.integers(2, 11))
        w = b.bipolar(b.const(rng.standard_normal((n, classes))))
        if m == "matmul_3d":
            w = b.bipolar(b.const(rng.standard_normal((1, n, classes))))
        if m == "gemm_trans":
            x = b.node("Gemm", [x, b.bipolar(b.const(rng.standard_normal((classes, n))))], transB=1)[0]
        elif rng.random() < 0.5:
            x = b.node("MatMul", [x, w])[0]
        else:
            x = b.node("Gemm", [x, w])[0]
        out_shape = [1, classes]
    if rng.random() < 0.3:  # a float tail for the host: a scale, then Softmax or ArgMax
        x = b.node("Mul", [x, b.const(0.3)])[0]
        if rng.random() < 0.5:
            x = b.node("Softmax", [x], axis=1)[0]
    if m == "wrong_out_shape":
        out_shape = [1, 7, 7]
    if m == "dup_output":
        b.nodes.append(helper.make_node("Identity", [x], [x], name="dup"))
    model = b.model(shape, x, out_shape)
    if m == "two_inputs":
        model.graph.input.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, shape))
    if m == "two_outputs":
        model.graph.output.append(helper.make_tensor_value_info(b.nodes[0].output[0], TensorProto.FLOAT, None))
    if m == "havoc":
        havoc(model, rng)
    return model, mutation


def fuzz(seeds, workdir: pathlib.Path) -> dict:
    """Build every graph of ``seeds`` with the CLI; returns counts, and raises AssertionError naming the seed and
    mutation of the first graph that escapes with another exception, prints more than one line, or (without a
    mutation) does not build."""
    counts = {"built": 0, "refused": 0, "valid_built": 0, "messages": {}}
    for seed in seeds:
        model, mutation = random_graph(seed)
        path = workdir / f"g{seed}.onnx"
        onnx.save(model, str(path))
        what = f"seed {seed} ({mutation or 'valid'})"
        try:
            rc, err = run_cli(path, workdir / "out")
        except Exception as e:  # noqa: BLE001 - the point of the test
            raise AssertionError(f"{what}: {type(e).__name__}: {e}") from e
        if rc == 0:
            counts["built"] += 1
            counts["valid_built"] += int(mutation is None)
            rep = json.loads((workdir / "out" / "report.json").read_text())
            assert isinstance(rep["host_nodes"], list), what
        else:
            line = assert_one_line_error(rc, err, what)
            assert mutation is not None, f"{what}: a graph of what maps today is refused: {line}"
            counts["refused"] += 1
            counts["messages"].setdefault(mutation, line)
    return counts


# --- malformed files ---------------------------------------------------------------------------------------
def _valid_model() -> onnx.ModelProto:
    seed = next(s for s in range(100) if random_graph(s)[1] is None)
    return random_graph(seed)[0]


def _malformed(tmp_path) -> dict:
    cases = {}
    (tmp_path / "text.onnx").write_text("this is not an ONNX file\n")
    cases["not ONNX"] = (tmp_path / "text.onnx", r"not a readable ONNX/QONNX file")
    data = _valid_model().SerializeToString()
    (tmp_path / "trunc.onnx").write_bytes(data[: len(data) // 2])
    cases["truncated"] = (tmp_path / "trunc.onnx", r"not a readable ONNX/QONNX file")
    (tmp_path / "empty_file.onnx").write_bytes(b"")
    cases["empty file"] = (tmp_path / "empty_file.onnx", r"the graph has no nodes")
    empty = helper.make_model(helper.make_graph([], "e", [], []))
    onnx.save(empty, str(tmp_path / "empty.onnx"))
    cases["empty graph"] = (tmp_path / "empty.onnx", r"the graph has no nodes")
    m = _valid_model()
    m.graph.input.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 2, 4, 4]))
    onnx.save(m, str(tmp_path / "two_inputs.onnx"))
    cases["two inputs"] = (tmp_path / "two_inputs.onnx", r"2 inputs .*exactly one input")
    m = _valid_model()
    del m.graph.initializer[:]
    onnx.save(m, str(tmp_path / "no_inits.onnx"))
    cases["missing initializers"] = (tmp_path / "no_inits.onnx", r".")
    m = _valid_model()
    m.graph.node[0].op_type = "NoSuchOp"
    m.graph.node[0].domain = "com.example"
    onnx.save(m, str(tmp_path / "unknown.onnx"))
    cases["unknown op type"] = (tmp_path / "unknown.onnx", r"NoSuchOp")
    m = _valid_model()
    m.graph.input[0].type.tensor_type.shape.dim.pop()
    onnx.save(m, str(tmp_path / "rank.onnx"))
    cases["wrong input rank"] = (tmp_path / "rank.onnx", r".")
    cases["missing file"] = (tmp_path / "nothere.onnx", r"QONNX file not found")
    (tmp_path / "dir.onnx").mkdir()
    cases["a directory"] = (tmp_path / "dir.onnx", r"QONNX file not found")
    return cases


def test_malformed_files_are_one_line_errors(tmp_path):
    import re

    for what, (path, pattern) in _malformed(tmp_path).items():
        try:
            rc, err = run_cli(path, tmp_path / "out")
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"{what}: {type(e).__name__}: {e}") from e
        line = assert_one_line_error(rc, err, what)
        assert re.search(pattern, line), f"{what}: {line}"


def test_refusals_name_node_op_type_and_what_to_change(tmp_path):
    # an op no kind implements, and an activation quantizer with a scale the hardware cannot take
    b = GraphBuilder(np.random.default_rng(0))
    x = b.quant("x", 2.0**-4, 8)
    y = b.node("Conv", [x, b.bipolar(b.const(np.ones((2, 1, 1, 1))))], kernel_shape=[1, 1])[0]
    y = b.node("Sin", [y])[0]
    y = b.bipolar(y)
    onnx.save(b.model([1, 1, 4, 4], y, [1, 2, 4, 4]), str(tmp_path / "sin.onnx"))
    line = assert_one_line_error(*run_cli(tmp_path / "sin.onnx", tmp_path / "o"), "Sin")
    assert line.startswith("binaryhpe: error: cannot map node 'sin_") and "(op type Sin)" in line


@pytest.mark.parametrize("block", range(4))
def test_fuzz_random_qonnx_graphs(tmp_path, block):
    # 4 blocks of 40 seeded random graphs: only BinaryHPEError leaves the build, as one line; valid graphs build
    counts = fuzz(range(40 * block, 40 * block + 40), tmp_path)
    assert counts["built"] + counts["refused"] == 40
    assert counts["valid_built"] >= 5 and counts["refused"] >= 5  # the generator makes both kinds
