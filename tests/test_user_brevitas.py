"""Bring your own Brevitas network (issue 17, docs/byo-brevitas.md): networks written in plain Brevitas with its
stock quantizers, and Brevitas' own published BNN-PYNQ examples, build and simulate bit-exactly from the command
line: ``binaryhpe build FILE.onnx -o OUT --sim``.

``bit_exact`` in report.json means the whole graph's outputs, host part included, equal the exact reference of
the QONNX graph (compile/reference.py) on every simulated frame, with and without stalls; ``host_nodes`` names
the nodes that stay on the host (float pre-processing before the first quantizer, float post-processing after
the last integer tensor). The expected host nodes below are read from the exported graphs' structure (op types
in graph order), not from the partitioner.
"""

import json

import numpy as np
import pytest
from onnx import load as onnx_load

import user_brevitas_models as U
from binaryhpe.cli import main

#: network -> (builder, input shape, op types expected on the host before / after the hardware)
NETWORKS = {
    "mlp": (lambda: U.build_user("mlp"), U.INPUT_SHAPES["mlp"], [], ["Gemm"]),
    "vgg": (lambda: U.build_user("vgg"), U.INPUT_SHAPES["vgg"], [], []),
    "resnet": (lambda: U.build_user("resnet"), U.INPUT_SHAPES["resnet"], [], ["Reshape", "Gemm"]),
    "tfc_1w1a": (lambda: U.bnn_pynq("tfc_1w1a"), U.BNN_PYNQ["tfc_1w1a"], ["Reshape", "Mul", "Sub"],
                 ["Sub", "Div", "Mul", "Add"]),
    "tfc_2w2a": (lambda: U.bnn_pynq("tfc_2w2a"), U.BNN_PYNQ["tfc_2w2a"], ["Reshape", "Mul", "Sub"],
                 ["Sub", "Div", "Mul", "Add"]),
    "cnv_1w1a": (lambda: U.bnn_pynq("cnv_1w1a"), U.BNN_PYNQ["cnv_1w1a"], ["Mul", "Sub"],
                 ["Sub", "Div", "Mul", "Add"]),
    "cnv_2w2a": (lambda: U.bnn_pynq("cnv_2w2a"), U.BNN_PYNQ["cnv_2w2a"], ["Mul", "Sub"],
                 ["Sub", "Div", "Mul", "Add"]),
}


def _op_types(path, names):
    by_name = {n.name: n.op_type for n in onnx_load(str(path)).graph.node}
    return [by_name[n] for n in names]


@pytest.mark.parametrize("net", list(NETWORKS))
def test_build_and_simulate_bit_exact(net, tmp_path, capsys):
    build_model, shape, pre, post = NETWORKS[net]
    onnx_path = U.export(build_model(), shape, tmp_path / f"{net}.onnx")
    frames = np.random.RandomState(3).uniform(-1.5, 1.5, size=(2, *shape[1:])).astype(np.float32)
    np.save(tmp_path / "frames.npy", frames)
    out = tmp_path / "out"
    rc = main(["build", onnx_path, "-o", str(out), "--sim", "--inputs", str(tmp_path / "frames.npy")])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    rep = json.loads((out / "report.json").read_text())
    assert rep["bit_exact"] is True
    sim = rep["simulation"]
    assert all(r["mismatches"] == 0 for r in sim["runs"]) and {r["stall"] for r in sim["runs"]} == {0.0, 0.3}
    # the host part: exactly the float pre- and post-processing, in graph order, named in the report and printed
    host = rep["host_nodes"]
    assert _op_types(onnx_path, host) == pre + post
    for name in host:
        assert name in printed.out
    # the user's frames went through the whole graph: one output per frame, in the QONNX output's shape
    outs = np.load(out / "outputs.npy")
    assert outs.shape[0] == len(frames) and np.all(np.isfinite(outs))
