"""``binaryhpe train`` (issue 7 contract): trains the tiny whole-body model on generated data, writes
OUT/checkpoint.pt and OUT/metrics.json (mpvpe, pa_mpvpe, pa_mpjpe in mm, step), resumes exactly, and refuses a
corrupt, foreign or mismatching checkpoint with one clear error (exit 2)."""

import json

import pytest
import torch

from binaryhpe import BinaryHPEError
from binaryhpe.cli import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "out"
    assert main(["train", "--steps", "3", "-o", str(out)]) == 0
    m3 = json.loads((out / "metrics.json").read_text())
    ck3 = torch.load(out / "checkpoint.pt", weights_only=False)
    return out, m3, ck3


def test_train_writes_checkpoint_metrics_and_mesh(trained, capsys):
    out, m, ck = trained
    assert m["step"] == 3 and ck["step"] == 3
    for k in ("mpvpe", "pa_mpvpe", "pa_mpjpe"):
        assert isinstance(m[k], float) and 0 < m[k] < 5000, k  # millimetres
    assert m["pa_mpvpe"] <= m["mpvpe"] + 1e-6  # Procrustes alignment can only reduce the error
    from binaryhpe.train.wholebody import wholebody_config

    assert ck["config"]["name"] == "tiny-wholebody"
    assert ck["config"]["batch_size"] == wholebody_config("tiny-wholebody").batch_size
    assert {"model", "optimizer", "rng"} <= set(ck)
    assert (out / "mesh_test0.obj").read_text().startswith("v ")
    assert (out / "overlay_test0.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_continues_to_step_5(trained, tmp_path):
    import shutil

    out, _, ck3 = trained
    res = tmp_path / "resumed"
    shutil.copytree(out, res)
    assert main(["train", "--resume", "--steps", "5", "-o", str(res)]) == 0
    m5 = json.loads((res / "metrics.json").read_text())
    ck5 = torch.load(res / "checkpoint.pt", weights_only=False)
    assert m5["step"] == 5 and ck5["step"] == 5
    assert any(not torch.equal(ck3["model"][k], ck5["model"][k]) for k in ck3["model"])


def test_resume_equals_an_uninterrupted_run(tmp_path):
    """2 steps + resume to 4 == 4 steps straight (a small-batch configuration file, for speed)."""
    cfg = tmp_path / "small.json"
    cfg.write_text(json.dumps({"batch_size": 4, "lr": 1e-3}))
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["train", "--config", str(cfg), "--steps", "2", "-o", str(a)]) == 0
    assert main(["train", "--resume", "--steps", "4", "-o", str(a)]) == 0  # config from the checkpoint
    assert main(["train", "--config", str(cfg), "--steps", "4", "-o", str(b)]) == 0
    ca = torch.load(a / "checkpoint.pt", weights_only=False)
    cb = torch.load(b / "checkpoint.pt", weights_only=False)
    assert ca["step"] == cb["step"] == 4 and ca["config"]["batch_size"] == 4
    for k, v in cb["model"].items():
        assert torch.allclose(v.float(), ca["model"][k].float(), atol=1e-6), k
    for st_a, st_b in zip(ca["optimizer"]["state"].values(), cb["optimizer"]["state"].values()):
        assert torch.allclose(st_a["exp_avg"], st_b["exp_avg"], atol=1e-7)


def test_bad_checkpoints_give_one_clear_error(trained, tmp_path, capsys):
    out, _, ck3 = trained
    bad = tmp_path / "corrupt"
    bad.mkdir()
    data = (out / "checkpoint.pt").read_bytes()
    (bad / "checkpoint.pt").write_bytes(data[: len(data) // 2])  # truncated
    assert main(["train", "--resume", "--steps", "4", "-o", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "binaryhpe: error:" in err and "corrupt" in err and "checkpoint.pt" in err and "Traceback" not in err

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    torch.save({"weights": 1}, foreign / "checkpoint.pt")
    assert main(["train", "--resume", "--steps", "4", "-o", str(foreign)]) == 2
    assert "not a binaryhpe training checkpoint" in capsys.readouterr().err

    missing = tmp_path / "missing"
    assert main(["train", "--resume", "-o", str(missing)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err

    # the weights of another model (one tensor reshaped) are refused naming the tensor
    mism = tmp_path / "mismatch"
    mism.mkdir()
    ck = dict(ck3)
    ck["model"] = dict(ck3["model"])
    name = next(k for k, v in ck["model"].items() if v.dim() == 2)
    ck["model"][name] = torch.zeros(3, 3)
    torch.save(ck, mism / "checkpoint.pt")
    assert main(["train", "--resume", "--steps", "4", "-o", str(mism)]) == 2
    err = capsys.readouterr().err
    assert "do not fit this model" in err and name in err

    # resuming with a different configuration is refused naming the differing keys
    cfg = tmp_path / "other.json"
    cfg.write_text(json.dumps({"lr": 0.001}))
    assert main(["train", "--resume", "--config", str(cfg), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "another configuration" in err and "lr" in err


def test_config_mismatch_and_step_validation():
    from binaryhpe.train.loop import config_mismatch, train_command

    assert config_mismatch({"a": 1, "b": {"c": [1, 2]}}, {"a": 1, "b": {"c": [1, 3]}}) == ["b.c"]
    assert config_mismatch({"a": (1, 2)}, {"a": [1, 2]}) == []

    class A:
        config, steps, output, resume = None, -1, "x", False

    with pytest.raises(BinaryHPEError, match="--steps"):
        train_command(A())


def test_trained_checkpoint_exports_exact_qonnx(tmp_path, capsys):
    """Train one step from a configuration file (one-block encoders, for speed), then `binaryhpe export
    --checkpoint`: every binarized encoder of the restored (trained) model is written as QONNX that qonnx's
    execution reproduces exactly; a missing checkpoint is one clear error."""
    from qonnx.core.modelwrapper import ModelWrapper

    from binaryhpe.train.loop import load_checkpoint

    enc = {"stem_channels": 8, "stem_stride": 2, "stages": [{"block": "basic", "channels": 16, "blocks": 1,
                                                               "stride": 2}]}
    cfg = tmp_path / "one_block.json"
    cfg.write_text(json.dumps({"batch_size": 2, "lr": 1e-3, "body_encoder": enc, "hand_encoder": enc,
                               "face_encoder": enc}))
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--steps", "1", "-o", str(run)]) == 0
    capsys.readouterr()
    assert main(["export", "--checkpoint", str(run / "checkpoint.pt"), "-o", str(tmp_path / "q")]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["step"] == 1
    man = json.loads((tmp_path / "q" / "export.json").read_text())
    assert man["step"] == 1 and man["checkpoint"] == str(run / "checkpoint.pt")
    state = load_checkpoint(run / "checkpoint.pt")
    for part in ("body", "hand", "face"):
        e = man["encoders"][f"{part}_encoder"]
        assert e["exported"] and e["check"]["mismatches"] == 0 and e["check"]["elements"] > 0
        assert ModelWrapper(e["path"]).graph.node  # a loadable QONNX graph
    assert state["step"] == 1
    assert main(["export", "--checkpoint", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "q2")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
