"""What stays on the host (compile/partition.py): the float pre-processing before the first activation quantizer
and the float tail after the last tensor the hardware maps exactly, as FINN's dataflow partition.

Graphs: one written with onnx.helper (``2x - 1`` and a Reshape before the input quantizer; a float scale and a
Softmax after the last convolution), and a Brevitas network as a user writes it (``2x - 1`` before the input
quantizer, a TensorNorm-like ``(x - m) / s * w + b`` after the last layer, as Brevitas' BNN-PYNQ TFC/CNV).
The hardware regions use power-of-two, FLOOR quantizers and binary layers that map exactly today; what the
partition must do is checked by hand-written expectations (node names, tensor names), and the whole graph's
outputs against the exact reference of the whole graph (``compile.reference.exact_reference``)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from binaryhpe import BinaryHPEError
from binaryhpe.cli import main
from binaryhpe.compile.lower import load_qonnx
from binaryhpe.compile.partition import partition_host
from binaryhpe.compile.reference import exact_reference

QONNX_DOMAIN = "qonnx.custom_op.general"


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def _quant(name, x, y, scale, bits, signed=1, mode="FLOOR"):
    return ([helper.make_node("Quant", [x, f"{name}_s", f"{name}_z", f"{name}_b"], [y], name=name,
                              domain=QONNX_DOMAIN, signed=signed, narrow=0, rounding_mode=mode)],
            [_init(f"{name}_s", scale), _init(f"{name}_z", 0.0), _init(f"{name}_b", bits)])


def helper_graph(path, middle=None, pre_fork=False) -> str:
    """x (1, 32) -> Mul 2 -> Sub 1 -> Reshape (1, 2, 4, 4) -> Quant (8 bits, 2^-5, FLOOR) -> Conv 3x3 with
    binary weights (BipolarQuant) -> Quant (4 bits, 2^0, FLOOR) -> Conv 3x3 binary -> Mul 0.3 -> Softmax.
    ``middle``: an op type put between the first Conv and its requantizer (a refusal inside the hardware region);
    ``pre_fork``: the Sub's output is also added to the graph's float path after the quantizer (the hardware
    region would need a second input)."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    nodes += [helper.make_node("Mul", ["x", "two"], ["x2"], name="pre_mul"),
              helper.make_node("Sub", ["x2", "one"], ["xs"], name="pre_sub"),
              helper.make_node("Reshape", ["xs", "shape"], ["xr"], name="pre_reshape")]
    inits += [_init("two", 2.0), _init("one", 1.0),
              numpy_helper.from_array(np.array([1, 2, 4, 4], dtype=np.int64), "shape")]
    n, i = _quant("in_quant", "xr", "q0", 2.0**-5, 8)
    nodes += n
    inits += i
    for k, (cin, cout) in enumerate(((2, 4), (4, 3))):
        inits += [_init(f"w{k}", rng.standard_normal((cout, cin, 3, 3))), _init(f"w{k}_s", 1.0)]
        nodes.append(helper.make_node("BipolarQuant", [f"w{k}", f"w{k}_s"], [f"wq{k}"], name=f"wquant{k}",
                                      domain=QONNX_DOMAIN))
    nodes.append(helper.make_node("Conv", ["q0", "wq0"], ["c0"], name="conv0", kernel_shape=[3, 3],
                                  pads=[1, 1, 1, 1]))
    src = "c0"
    if middle is not None:
        nodes.append(helper.make_node(middle, ["c0"], ["mid"], name="middle"))
        src = "mid"
    if pre_fork:
        nodes += [helper.make_node("Concat", ["xr", "xr"], ["xr2"], name="fork_concat", axis=1),
                  helper.make_node("Add", [src, "xr2"], ["fork"], name="fork_add")]
        src = "fork"
    n, i = _quant("requant", src, "q1", 1.0, 4)
    nodes += n
    inits += i
    nodes += [helper.make_node("Conv", ["q1", "wq1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
              helper.make_node("Mul", ["c1", "scale"], ["y0"], name="post_mul"),
              helper.make_node("Softmax", ["y0"], ["y"], name="post_softmax", axis=1)]
    inits.append(_init("scale", 0.3))
    graph = helper.make_graph(nodes, "partition_test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)])
    onnx.save(model, str(path))
    return str(path)


def test_cut_of_a_helper_graph(tmp_path):
    mw = load_qonnx(helper_graph(tmp_path / "g.onnx"))
    p = partition_host(mw)
    assert p.pre_nodes == ["pre_mul", "pre_sub", "pre_reshape"]
    assert p.post_nodes == ["post_mul", "post_softmax"]  # the float scale goes with the Softmax refused after it
    assert p.host_nodes == p.pre_nodes + p.post_nodes
    assert (p.hw_input, p.hw_output) == ("xr", "c1")
    # the hardware region: a model of its own, one input and one output with their shapes
    hw = p.hw.graph
    assert [i.name for i in hw.input] == ["xr"] and [o.name for o in hw.output] == ["c1"]
    assert p.hw.get_tensor_shape("xr") == [1, 2, 4, 4] and p.hw.get_tensor_shape("c1") == [1, 3, 4, 4]
    assert {n.name for n in hw.node} == {"in_quant", "wquant0", "wquant1", "conv0", "requant", "conv1"}
    assert p.lowered.tensors[p.lowered.output].shape == (4, 4, 3)
    # pre, region and post by the exact reference's executor give the whole graph's exact reference
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.uniform(-1, 1, (1, 32)).astype(np.float32)
        ctx = p.run_pre(x)
        assert np.array_equal(ctx["xr"], ((x.astype(np.float64) * 2 - 1).reshape(1, 2, 4, 4)))
        hw_out = exact_reference(p.hw, p.hw_frame(x)).output
        assert np.array_equal(p.run_post({"c1": hw_out}), exact_reference(mw, x).output)
        assert np.array_equal(p.run_full(x), exact_reference(mw, x).output)


def test_no_host_nodes_leaves_the_model_as_it_is(tmp_path):
    import bnn_pynq_models as M

    from binaryhpe.train.export import export_qonnx

    model = M.build("cnv", 0, size=12, ch=(4, 4, 4), fc=8)
    path = export_qonnx(model, torch.zeros(1, 3, 12, 12), tmp_path / "cnv.onnx", verbose=False)
    mw = load_qonnx(path)
    p = partition_host(mw)
    assert p.host_nodes == [] and p.hw is mw and p.pre is None and p.post is None
    assert p.hw_input == mw.graph.input[0].name and p.hw_output == mw.graph.output[0].name


def test_refusal_inside_the_hardware_region_stays_an_error(tmp_path, capsys):
    # a Sin between a convolution and its requantizer has a quantizer downstream: not a host tail
    path = helper_graph(tmp_path / "sin.onnx", middle="Sin")
    with pytest.raises(BinaryHPEError, match=r"cannot map node 'middle' \(op type Sin\)") as e:
        partition_host(load_qonnx(path))
    assert e.value.node == "middle"
    assert main(["build", path, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("binaryhpe: error: cannot map node 'middle' (op type Sin)") and "\n" not in err


def test_pre_processing_read_inside_the_region_is_refused(tmp_path):
    path = helper_graph(tmp_path / "fork.onnx", pre_fork=True)
    with pytest.raises(BinaryHPEError, match=r"cannot map node 'fork_concat' \(op type Concat\): it reads 'xr', a float "
                                             r"tensor of the host pre-processing .*quantize the input once"):
        partition_host(load_qonnx(path))


# --- a Brevitas network, end to end ----------------------------------------------------------------------
class TensorNormNet(torch.nn.Module):
    """``2x - 1`` -> 8-bit input quantizer (2^-7) -> binary conv, BN, sign -> max pool -> binary conv, BN, sign ->
    flatten -> binary FC -> a TensorNorm-like float affine map ``(x - m) / s * w + b`` (BNN-PYNQ's last layer)."""

    def __init__(self):
        super().__init__()
        import bnn_pynq_models as M

        self.inp = M.QuantIdentity(act_quant=M.InputQuant8, return_quant_tensor=True)
        self.f = torch.nn.Sequential(M._bin_conv(2, 8, pad=1), torch.nn.BatchNorm2d(8), M._bin_act(),
                                     torch.nn.MaxPool2d(2), M._bin_conv(8, 8), torch.nn.BatchNorm2d(8), M._bin_act())
        self.fc = M._bin_fc(8 * 2 * 2, 6)
        g = torch.Generator().manual_seed(5)
        for name in ("m", "w", "b"):
            self.register_buffer(name, torch.randn(6, generator=g))
        self.s = 1.00005

    def forward(self, x):
        x = self.inp(2.0 * x - 1.0)
        x = torch.flatten(self.f(x), 1)
        return (self.fc(x) - self.m) / self.s * self.w + self.b


@pytest.fixture(scope="module")
def tensornorm_qonnx(tmp_path_factory):
    import bnn_pynq_models as M

    from binaryhpe.train.export import export_qonnx

    torch.manual_seed(3)
    net = M.randomize_bn(TensorNormNet(), 11).eval()
    return export_qonnx(net, torch.rand(1, 2, 8, 8), tmp_path_factory.mktemp("tn") / "tensornorm.onnx",
                        verbose=False)


def test_brevitas_tensornorm_net_cut(tensornorm_qonnx):
    mw = load_qonnx(tensornorm_qonnx)
    p = partition_host(mw)
    ops = {n.name: n.op_type for n in mw.graph.node}
    assert [ops[n] for n in p.pre_nodes] == ["Mul", "Sub"]
    assert [ops[n] for n in p.post_nodes] == ["Sub", "Div", "Mul", "Add"]
    gemm = next(n for n in mw.graph.node if n.op_type in ("Gemm", "MatMul"))
    assert p.hw_output == gemm.output[0]  # the hardware ends at the last integer accumulator
    quant = next(n for n in mw.graph.node if n.op_type == "Quant" and n.input[0] == p.hw_input)
    assert quant.name not in p.host_nodes


def test_brevitas_tensornorm_net_simulates_whole_graph_bit_exact(tensornorm_qonnx, tmp_path, capsys):
    # --sim: frames of the FULL input (host pre, RTL, host post) against the whole graph's exact reference;
    # --inputs frames are frames of the full input, and outputs.npy the full graph's outputs
    mw = load_qonnx(tensornorm_qonnx)
    rng = np.random.default_rng(2)
    frames = rng.uniform(0, 1, (2, 1, 2, 8, 8)).astype(np.float32)[:, 0]
    np.save(tmp_path / "frames.npy", frames)
    out = tmp_path / "out"
    rc = main(["build", str(tensornorm_qonnx), "-o", str(out), "--sim", "--inputs", str(tmp_path / "frames.npy")])
    printed = capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    ops = {n.name: n.op_type for n in mw.graph.node}
    assert rc == 0 and rep["bit_exact"] is True
    assert [ops[n] for n in rep["host_nodes"]] == ["Mul", "Sub", "Sub", "Div", "Mul", "Add"]
    line = [ln for ln in printed.splitlines() if "host nodes" in ln]
    assert len(line) == 1 and all(n in line[0] for n in rep["host_nodes"])
    whole = rep["simulation"]["whole_graph"]
    assert whole["exact"] and whole["frames_checked"] == 2 + len(frames) and whole["mismatching_frames"] == []
    assert rep["simulation"]["reference_vs_qonnx"]["exact"]  # the per-tensor hardware checks still run
    got = np.load(out / "outputs.npy")
    want = np.stack([exact_reference(mw, x[None]).output[0] for x in frames])
    assert got.shape == (2, 6) and np.array_equal(got, want)
    assert "host nodes" in (out / "report.md").read_text()
    assert (out / "hw_region.onnx").is_file()


@pytest.mark.parametrize("kind", [["--target", "mcu:stm32f4"], ["--arch", "engine"], ["--backend", "hls4ml"]])
def test_host_nodes_in_every_build_kind(tmp_path, capsys, kind):
    path = helper_graph(tmp_path / "g.onnx")
    out = tmp_path / "out"
    assert main(["build", path, "-o", str(out), *kind]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["host_nodes"] == ["pre_mul", "pre_sub", "pre_reshape", "post_mul", "post_softmax"]
    assert "host nodes (5): pre pre_mul, pre_sub, pre_reshape; post post_mul, post_softmax" in capsys.readouterr().out


def test_float_head_on_the_host_equals_the_whole_graph(tmp_path):
    # the hardware ends in a float-scaled quantizer (scale 0.37, ROUND), the host runs a float MatMul on it: the
    # host's input is q * 0.37 exactly (a ROUND copy of that quantizer starts the post part), so the whole graph's
    # output from the cut tensor equals the whole graph's exact reference element for element
    rng = np.random.default_rng(4)
    nodes, inits = [], []
    n, i = _quant("in_quant", "x", "q0", 2.0**-5, 8)
    nodes += n
    inits += i + [_init("w0", rng.standard_normal((3, 2, 3, 3))), _init("w0_s", 1.0),
                  _init("head", rng.standard_normal((4, 5)))]
    nodes += [helper.make_node("BipolarQuant", ["w0", "w0_s"], ["wq0"], name="wquant0", domain=QONNX_DOMAIN),
              helper.make_node("Conv", ["q0", "wq0"], ["c0"], name="conv0", kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    n, i = _quant("out_quant", "c0", "q1", 0.37, 4, mode="ROUND")
    nodes += n
    inits += i
    nodes.append(helper.make_node("MatMul", ["q1", "head"], ["y"], name="float_head"))
    graph = helper.make_graph(nodes, "float_head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 5])], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                      helper.make_opsetid(QONNX_DOMAIN, 1)]), str(tmp_path / "h.onnx"))
    mw = load_qonnx(tmp_path / "h.onnx")
    p = partition_host(mw)
    assert p.post_nodes == ["float_head"] and p.hw_output == "q1" and p.pre_nodes == []
    assert [n.op_type for n in p.post.graph.node] == ["Quant", "MatMul"]
    for _ in range(4):
        x = rng.uniform(-1, 1, (1, 2, 4, 4)).astype(np.float32)
        full = exact_reference(mw, x)
        assert np.array_equal(p.run_post({"q1": full.context["q1"].copy()}), full.output)


def test_mcu_sim_checks_the_whole_graph(tmp_path, capsys):
    # --target mcu:NAME --sim --inputs: the hardware region is the C (host gcc and QEMU); the host nodes are listed;
    # frames of the full input run pre, C, post and equal the whole graph's exact reference
    path = helper_graph(tmp_path / "g.onnx")
    mw = load_qonnx(path)
    frames = np.random.default_rng(6).uniform(-1, 1, (2, 32)).astype(np.float32)
    np.save(tmp_path / "f.npy", frames)
    out = tmp_path / "out"
    assert main(["build", path, "-o", str(out), "--target", "mcu:stm32f4", "--sim",
                 "--inputs", str(tmp_path / "f.npy")]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["bit_exact"] is True and rep["host_nodes"] == ["pre_mul", "pre_sub", "pre_reshape", "post_mul",
                                                              "post_softmax"]
    whole = rep["simulation"]["whole_graph"]
    assert whole["exact"] and whole["frames_checked"] == 4 and whole["random_frames"] == 2
    want = np.stack([exact_reference(mw, x[None]).output[0] for x in frames])
    assert np.array_equal(np.load(out / "outputs.npy"), want)


def test_whole_graph_check_catches_a_wrong_host_part(tmp_path, monkeypatch):
    # a host pre-processing that computes something else: every hardware check still passes (the region is
    # right for the frames it gets), the whole graph's outputs do not equal its reference, and the build fails
    from binaryhpe.compile.partition import HostPartition

    right = HostPartition.hw_frame
    monkeypatch.setattr(HostPartition, "hw_frame", lambda self, x: right(self, x) + 0.5)
    path = helper_graph(tmp_path / "g.onnx")
    out = tmp_path / "out"
    assert main(["build", path, "-o", str(out), "--target", "mcu:stm32f4", "--sim"]) == 1
    rep = json.loads((out / "report.json").read_text())
    assert rep["bit_exact"] is False and rep["simulation"]["mismatching_frames"] == []
    assert rep["simulation"]["whole_graph"]["mismatching_frames"] == [0, 1]
