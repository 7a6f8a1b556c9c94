"""Real data from the command line, on generated copies of the data sets in their official layouts
(tests/dataset_fixtures.py): ``binaryhpe train --data``, ``binaryhpe evaluate``, ``binaryhpe infer``."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import dataset_fixtures as fx
from binaryhpe.cli import main
from binaryhpe.train.data.proxy import default_layer


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("real")
    roots = {n: d / n for n in ("h36m", "coco", "mpii")}
    fx.write_human36m(roots["h36m"])
    fx.write_mscoco(roots["coco"])
    fx.write_mpii(roots["mpii"])
    cfg = d / "cfg.json"
    cfg.write_text(json.dumps({"batch_size": 2, "epochs": 2, "lr_decay_epochs": [1]}))
    out = d / "out"
    spec = ",".join(f"{n}:{p}" for n, p in roots.items())
    rc = main(["train", "--data", spec, "--config", str(cfg), "-o", str(out)])
    assert rc == 0
    return d, out, roots


def test_train_on_real_data(trained):
    from binaryhpe.train.data.datasets import make_dataset

    d, out, roots = trained
    m = json.loads((out / "metrics.json").read_text())
    n = sum(len(make_dataset(k, p, "train", (64, 48))) for k, p in roots.items())
    assert m["train_samples"] == n and n >= 4
    assert m["steps_per_epoch"] == n // 2 and m["step"] == 2 * (n // 2)  # 2 epochs by default (the config's)
    assert set(m["data"]) == {"human36m", "mscoco", "mpii"}
    assert np.isfinite(m["loss"]["total"])
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["step"] == m["step"] and state["config"]["lr_decay_epochs"] == [1]
    # the step schedule: after epoch 1 the learning rate is lr / 10
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-5)


def test_evaluate_on_ehf_and_agora(trained, capsys):
    from binaryhpe.train.evaluate import load_model
    from binaryhpe.train.realdata import evaluation_set

    d, out, _ = trained
    layer = default_layer()
    rng = np.random.default_rng(0)
    v0 = layer.model.v_template.double().numpy()
    fx.write_ehf(d / "ehf", [v0 + 0.02 * rng.standard_normal(v0.shape) for _ in range(2)])
    fx.write_agora(d / "agora")
    ev = d / "eval"
    assert main(["evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--data",
                 f"ehf:{d / 'ehf'},agora:{d / 'agora'}", "-o", str(ev)]) == 0
    r = json.loads((ev / "metrics.json").read_text())
    assert r["units"] == "mm" and r["mode"] == "float"
    keys = {"mpvpe", "mpvpe_hand", "mpvpe_face", "pa_mpvpe", "pa_mpvpe_hand", "pa_mpvpe_face", "pa_mpjpe_body",
            "pa_mpjpe_hand"}
    for name in ("ehf", "agora"):
        assert keys <= set(r["results"][name]) and r["results"][name]["samples"] == 2
        assert all(np.isfinite(r["results"][name][k]) and r["results"][name][k] > 0 for k in keys)
    assert "| ehf | 2 |" in (ev / "metrics.md").read_text()
    # the MPVPE is what it says: the predicted mesh against EHF's ground-truth mesh, both at their pelvis
    model, cfg, layer2, _ = load_model(out / "checkpoint.pt")
    ds = evaluation_set("ehf", d / "ehf", cfg, layer2)
    errs = []
    with torch.no_grad():
        for i in range(len(ds)):
            s = ds[i]
            o = model(s["img"][None])
            mo = layer2({k: o[k] for k in ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose",
                                            "expr", "shape")})
            pv = (mo["vertices"] - mo["joints"][:, :1])[0].double().numpy()
            gv = s["vertices"].double().numpy()  # root-relative ground truth (J_regressor pelvis)
            errs.append(np.linalg.norm(pv - gv, axis=1).mean() * 1000)
    assert r["results"]["ehf"]["mpvpe"] == pytest.approx(np.mean(errs), rel=1e-4)
    # the same with the encoders in the fixed-point hardware mode
    assert main(["evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--data", f"ehf:{d / 'ehf'}", "--hardware",
                 "-o", str(d / "eval_hw")]) == 0
    rh = json.loads((d / "eval_hw" / "metrics.json").read_text())
    assert rh["mode"] == "hardware" and rh["results"]["ehf"]["samples"] == 2
    assert all(np.isfinite(rh["results"]["ehf"][k]) for k in keys)


def test_infer_writes_meshes_and_overlays(trained):
    d, out, _ = trained
    img = d / "person.png"
    fx.paint(img, (120, 90), (30.0, 10.0, 50.0, 70.0))
    io = d / "infer"
    assert main(["infer", "--checkpoint", str(out / "checkpoint.pt"), str(img), str(img), "-o", str(io)]) == 0
    doc = json.loads((io / "infer.json").read_text())
    assert len(doc["images"]) == 2
    layer = default_layer()
    for row in doc["images"]:
        for mode in ("float", "hardware"):
            f = row["files"][mode]
            v = [ln for ln in (io / f["obj"]).read_text().splitlines() if ln.startswith("v ")]
            assert len(v) == layer.num_verts
            pic = Image.open(io / f["overlay"])
            assert pic.size == (120, 90)  # drawn over the original picture
            # the mesh is drawn where its vertices project, through the letterbox's camera (an untrained model
            # may well put it outside the picture: then the picture is unchanged)
            xyz = np.array([[float(t) for t in ln.split()[1:4]] for ln in v])
            uv = xyz[:, :2] / xyz[:, 2:] * 2.0 * 64 / 0.4 + np.array([60.0, 45.0])  # focal 2 H_in / scale 0.4
            inside = ((uv >= 0) & (uv < [120, 90])).all(1).any()
            diff = np.abs(np.asarray(pic, float) - np.asarray(Image.open(img).convert("RGB"), float)).max()
            assert (diff > 0) == bool(inside)
        assert np.isfinite(row["float_vs_hardware_mm"])
    assert doc["images"][0]["files"]["float"]["obj"] != doc["images"][1]["files"]["float"]["obj"]


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "ehf:/nonexistent", "-o", "x"], "not a training data set"),
    (["train", "--data", "h36m:/nonexistent", "-o", "x"], "folder /nonexistent not found"),
    (["train", "--data", "h36m", "-o", "x"], "expected NAME:PATH"),
    (["evaluate", "--checkpoint", "/nonexistent.pt", "--data", "coco:/tmp", "-o", "x"], "not an evaluation data set"),
])
def test_data_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_letterbox_camera_maps_projections_back():
    from binaryhpe.train.infer import letterbox, original_camera
    from binaryhpe.train import meshio

    img = np.zeros((90, 120, 3), np.uint8)
    x, scale, offset = letterbox(img, (64, 48))
    assert x.shape == (3, 64, 48) and scale == (0.4, 0.4) and offset == (0, 14)
    pts = np.array([[0.0, 0.0, 3.0], [0.3, -0.2, 2.5], [-0.4, 0.5, 4.0]])
    u_in = meshio.project(pts, {"focal": (128.0, 128.0), "princpt": (24.0, 32.0)})  # the model's camera
    u_orig = meshio.project(pts, original_camera((64, 48), 128.0, scale, offset))
    np.testing.assert_allclose(u_orig * 0.4 + np.array(offset), u_in, atol=1e-9)
