"""The default tiny BiDRN through ``binaryhpe build --backend finn --sim``: FINN's streamlining cannot take its
residual datapath, so the backend writes FINN's HW layers from our hardware graph (the hw_graph flow); FINN's
own python execution of them equals our integer reference on every output and every intermediate tensor, and
the project carries what a FINN user needs for a bitstream. About 2 minutes on 2 cores."""

from __future__ import annotations

import json
import pathlib

import onnx
import pytest

from binaryhpe.compile.backends import finn_backend
from binaryhpe.compile.flow import build_backend


def test_tiny_bidrn_finn_execution_is_bit_exact(tiny_qonnx, tmp_path):
    py = finn_backend.REPO / ".venv-finn" / "bin" / "python"
    if not py.is_file():
        pytest.fail(f"FINN's environment is missing ({py}): run .ci/setup-finn")
    out = tmp_path / "out"
    rep = build_backend(str(tiny_qonnx), out, "finn", sim=True, seed=0)
    assert rep["backend"] == "finn" and rep["finn_flow"] == "hw_graph"
    assert rep["bit_exact"] is True and rep["mismatches"] == 0
    assert rep["compared_elements"] == 7 * 8 * 8 * 32  # 7 frames (3 random, all +1, all -1, saturating, zeros)
    assert rep["traced_mismatches"] == 0 and rep["traced_elements"] > 100 * rep["compared_elements"]
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["backend"] == "finn" and on_disk["bit_exact"] is True
    proj = pathlib.Path(rep["project"])
    assert proj == out / "finn"
    for f in ("finn_hw.onnx", "finn_dataflow_parent.onnx", "finn_dataflow_partition.onnx", "folding_config.json",
              "dataflow_build_config.json", "build.py"):
        assert (proj / f).is_file(), f
    # the residual datapath is in FINN's dataflow partition, as FINN layers: nothing is left on the host
    part = onnx.load(str(proj / "finn_dataflow_partition.onnx"))
    ops = {n.op_type for n in part.graph.node}
    assert {"MVAU", "Requant", "ElementwiseAdd", "ElementwiseMax", "DuplicateStreams", "StreamingConcat",
            "StreamingSplit", "Thresholding", "ConvolutionInputGenerator", "FMPadding", "Pool"} <= ops, ops
    assert all(n.domain == "finn.custom_op.fpgadataflow" for n in part.graph.node)
    parent = onnx.load(str(proj / "finn_dataflow_parent.onnx"))
    assert [n.op_type for n in parent.graph.node] == ["StreamingDataflowPartition"]
    # our folding on FINN's specialized layers: every MVU's PE/SIMD, in FINN's folding file under the name of
    # the MVAU that stands for it
    ours = {r["name"]: {"PE": r["pe"], "SIMD": r["simd"]}
            for r in json.loads((out / "hwgraph.json").read_text())["layers"] if r["kind"] in ("XnorMvu", "FxpMvu")}
    folding = json.loads((proj / "folding_config.json").read_text())
    rows = [r for r in rep["estimates"]["layers"] if "MVAU" in r["op_types"]]
    assert len(rows) == len(ours) == 24
    for r in rows:
        (name,) = r["ours"]
        mvau = r["finn_nodes"][r["op_types"].index("MVAU")]
        assert folding[mvau] == ours[name], (mvau, name)
    # FINN generated the HLS C++ / RTL of every one of its 382 layers (383 before the stem lost its ReLU; what the build's hw codegen step does)
    assert rep["finn_codegen"]["layers"] == rep["finn_codegen"]["of"] == rep["finn_layers"] == 382
    # every Requant got an implementation FINN's build can generate; the RTL refusals are reported
    impl = rep["finn_requant_impl"]
    assert impl["rtl"] > 0 and impl["hls"] > 0 and impl["rtl"] + impl["hls"] == 189  # 190 before the stem lost its ReLU
    assert all("overflows" in r or "too small" in r for r in rep["finn_requant_hls_reasons"].values())
    # FINN's MVAU cycle estimates equal our cycle model, layer for layer
    assert all(r["finn_cycles"] == r["our_cycles"] > 0 for r in rows), rows
