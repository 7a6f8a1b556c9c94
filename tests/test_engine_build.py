"""``binaryhpe build --arch engine``: the command-line contract of the layer-sequential engine (issue 15).

The tiny BiDRN through the whole flow: QONNX -> engine program (OUT/engine/) -> Verilator with the C++ DRAM
model, without and with random stalls on every AXI channel -> every output integer against the exact reference of
the QONNX graph; the report's keys; the measured cycles against the cycle model (within 5%, per frame).
"""

from __future__ import annotations

import json

import pytest

from binaryhpe.cli import main

CONTRACT_KEYS = ("bit_exact", "cycles_per_frame", "predicted_cycles_per_frame", "layers", "device", "resources",
                 "fps", "bitstream", "fmax_mhz", "arch", "dram_bytes_per_frame", "roofline_fraction")


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory, tiny_qonnx):
    out = tmp_path_factory.mktemp("engine_tiny")
    rc = main(["build", str(tiny_qonnx), "--arch", "engine", "--sim", "-o", str(out)])
    return rc, out, json.loads((out / "report.json").read_text())


def test_report_has_the_contract_keys(tiny_engine):
    rc, out, rep = tiny_engine
    assert rc == 0
    for k in CONTRACT_KEYS:
        assert k in rep, k
    assert rep["arch"] == "engine"
    assert rep["bit_exact"] is True
    assert rep["device"] is None and rep["fps"] is None  # device-free build
    assert 0.0 < rep["roofline_fraction"] <= 1.0
    assert (out / "report.md").is_file() and (out / "report.html").is_file()


def test_the_simulation_checked_every_frame_under_stalls(tiny_engine):
    _, _, rep = tiny_engine
    sim = rep["simulation"]
    assert sim["reference_vs_qonnx"]["exact"]
    stalls = [r["stall"] for r in sim["runs"]]
    assert 0.0 in stalls and max(stalls) > 0.0
    for r in sim["runs"]:
        assert r["mismatches"] == 0 and r["frames"] >= 3
    # stalls cost cycles: the stalled run is slower (the DRAM model really stalled)
    assert min(sim["runs"][-1]["cycles_per_frame"]) > max(sim["runs"][0]["cycles_per_frame"])


def test_outputs_in_engine_folder(tiny_engine):
    _, out, rep = tiny_engine
    d = out / "engine"
    desc = (d / "descriptors.bin").read_bytes()
    assert len(desc) == 256 * len(rep["layers"])
    assert (d / "dram.bin").stat().st_size >= len(desc)
    prog = json.loads((d / "program.json").read_text())
    assert prog["rtl_params"] == rep["engine"]["config"]  # the parameters the RTL is built with


def test_cycles_within_five_percent_of_the_model(tiny_engine):
    _, _, rep = tiny_engine
    meas, pred = rep["cycles_per_frame"], rep["predicted_cycles_per_frame"]
    assert abs(meas / pred - 1.0) <= 0.05, (meas, pred)


def test_dram_traffic_covers_weights_and_tensors(tiny_engine):
    _, out, rep = tiny_engine
    # every weight bit is read at least once a frame: the traffic is at least the weight image
    prog = json.loads((out / "engine" / "program.json").read_text())
    wbytes = sum(op.get("weight_bytes", 0) for op in prog.get("ops", []))
    assert wbytes > 0
    assert rep["dram_bytes_per_frame"] >= wbytes


@pytest.mark.parametrize("flag", [["--folding", "f.json"], ["--target-cycles", "100"], ["--fps", "10"]])
def test_dataflow_flags_are_refused(tmp_path, flag, capsys):
    # refused in one line before anything is built (no export: the folder stays empty)
    assert main(["build", "tiny-bidrn", "--arch", "engine", "-o", str(tmp_path), *flag]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "belongs to --arch dataflow" in err[0], err
    assert not any(tmp_path.iterdir())


def test_engine_with_backend_is_refused(tmp_path, capsys):
    assert main(["build", "tiny-bidrn", "--arch", "engine", "--backend", "hls4ml", "-o", str(tmp_path)]) == 2
    assert "--arch engine" in capsys.readouterr().err
