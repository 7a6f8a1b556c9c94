"""The command-line contracts: `binaryhpe params NAME [--json]` and `binaryhpe build [MODEL] -o OUT [--sim]`."""

import json

from binaryhpe.cli import main  # noqa: E402


def test_params_json_contract(capsys):
    assert main(["params", "hand4whole", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert isinstance(d["params_m"], float) and isinstance(d["ops_g"], float)
    assert abs(d["params_m"] - 77.84) / 77.84 < 0.01  # Table 1


def test_params_unknown_name_is_one_clear_error(capsys):
    assert main(["params", "resnet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "resnet" in err[0] and "hand4whole" in err[0]


def test_build_report_contract_without_sim(tiny_qonnx, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["build", str(tiny_qonnx), "-o", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["bit_exact"] is None and rep["cycles_per_frame"] is None
    assert rep["predicted_cycles_per_frame"] == max(layer["cycles"] for layer in rep["layers"])
    kinds = {layer["kind"] for layer in rep["layers"]}
    assert {"XnorMvu", "SlidingWindow", "Epilogue"} <= kinds  # the fused epilogues (one holds the residual join)
    for layer in rep["layers"]:
        assert {"kind", "shape", "folding", "cycles"} <= set(layer)
    assert (out / "rtl" / "bhpe_top.sv").is_file() and (out / "hwgraph.json").is_file()
    assert "predicted cycles/frame" in capsys.readouterr().out


def test_build_errors(tmp_path, capsys):
    assert main(["build", "no-such-model", "-o", str(tmp_path / "o")]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert main(["build", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
