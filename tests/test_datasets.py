"""Dataset adapters on tiny generated copies in Hand4Whole's layouts (tests/dataset_fixtures.py): the right
keys and shapes, crops and coordinates that land on the painted pixels, values equal to the annotations, and
one clear error for a broken layout."""

import json

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader

import dataset_fixtures as fx
from binaryhpe import BinaryHPEError
from binaryhpe.train import smplx_model as sm
from binaryhpe.train.data.datasets import make_dataset

SIZE = (64, 48)  # (H, W) input
# the crop of fx.BODY = (50, 20, 60, 80): already 3:4, scaled 1.25 about its centre (80, 60)
X0, Y0, CW, CH = 42.5, 10.0, 75.0, 100.0
KEYS = {"img", "root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "expr", "shape", "cam_trans",
        "joint_img", "joint_valid", "joints_3d", "joints_3d_valid", "boxes", "box_valid", "smplx_valid",
        "lhand_valid", "rhand_valid", "face_valid", "cam_valid", "is_3d"}


def colour_at(s, x, y):
    """Colour name of the crop pixel at (x, y) in crop units."""
    H, W = s["img"].shape[1:]
    px = s["img"][:, min(int(y * H), H - 1), min(int(x * W), W - 1)].numpy() * 255
    return fx.colour_name(px)


def to_crop(u, v):
    return (u - X0) / CW, (v - Y0) / CH


def rodrigues(r):
    return fx.rot(r, np.linalg.norm(r)) if np.linalg.norm(r) > 0 else np.eye(3)


def check_shapes(s, J=25):
    assert set(s) >= KEYS
    assert s["img"].shape == (3, *SIZE) and s["img"].dtype == torch.float32
    assert 0 <= s["img"].min() and s["img"].max() <= 1
    assert s["joint_img"].shape == (J, 3) and s["joint_valid"].shape == (J, 1)
    assert s["joints_3d"].shape == (J, 3) and s["joints_3d_valid"].shape == (J, 1)
    assert s["boxes"].shape == (3, 4) and s["box_valid"].shape == (3, 1)
    for k, n in (("root_pose", 3), ("body_pose", 63), ("lhand_pose", 45), ("rhand_pose", 45), ("jaw_pose", 3),
                 ("expr", 10), ("shape", 10), ("cam_trans", 3)):
        assert s[k].shape == (n,) and s[k].dtype == torch.float32, k
    for k in ("smplx_valid", "lhand_valid", "rhand_valid", "face_valid", "cam_valid", "is_3d"):
        assert s[k].shape == (1,), k


@pytest.fixture(scope="module")
def layer(tmp_path_factory):
    d = tmp_path_factory.mktemp("smplx")
    sm.write_synthetic_smplx(d, n_verts=600, seed=5)
    return sm.SMPLXLayer(d)


@pytest.fixture(scope="module")
def h36m(tmp_path_factory):
    root = tmp_path_factory.mktemp("Human36M")
    return root, fx.write_human36m(root)


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("MSCOCO")
    return root, fx.write_mscoco(root)


def test_human36m(h36m):
    root, truth = h36m
    ds = make_dataset("human36m", root, "train", SIZE)
    assert len(ds) == 2  # frame 3 is not one of every 5th
    for s, t in zip((ds[0], ds[1]), truth["samples"]):
        check_shapes(s)
        # the crop: grey outside the body box, red inside, the green marker under the left wrist joint
        assert colour_at(s, 0.03, 0.03) == "grey" and colour_at(s, 0.5, 0.3) == "red"
        lw = s["joint_img"][20].numpy()
        assert colour_at(s, lw[0], lw[1]) == "green"
        np.testing.assert_allclose(lw[:2], to_crop(*t["uv"][13]), atol=1e-5)
        assert lw[2] == pytest.approx((-0.1 / 1.0 + 1) / 2, abs=1e-5)  # 0.1 m nearer than the pelvis
        assert s["joint_valid"][20] == 1 and s["joint_valid"][3] == 0  # no H36M joint for spine1
        np.testing.assert_allclose(s["joints_3d"][20].numpy(), t["joint_cam"][13] - t["joint_cam"][0], atol=1e-5)
        np.testing.assert_allclose(s["joints_3d"][1].numpy(), t["joint_cam"][4] - t["joint_cam"][0], atol=1e-5)
        # root orientation turned from the world into the camera frame
        np.testing.assert_allclose(rodrigues(s["root_pose"].double().numpy()),
                                   t["R"] @ rodrigues(np.array(t["params"]["root_pose"])), atol=1e-5)
        np.testing.assert_allclose(s["body_pose"].numpy(), t["params"]["body_pose"], atol=1e-6)
        assert s["smplx_valid"] == 1 and s["lhand_valid"] == 0 and s["face_valid"] == 0 and s["is_3d"] == 1
        assert s["box_valid"].sum() == 0
        # pelvis at 4 m, fy 1000 px, crop height 100 px -> depth 4 * (2 * 64) * 100 / (1000 * 64) = 0.8 m in the
        # virtual camera, which projects it back onto the pelvis joint
        ct = s["cam_trans"].double().numpy()
        assert s["cam_valid"] == 1 and ct[2] == pytest.approx(0.8, rel=1e-5)
        F = 2.0 * SIZE[0]
        proj = (F * ct[0] / ct[2] + SIZE[1] / 2) / SIZE[1], (F * ct[1] / ct[2] + SIZE[0] / 2) / SIZE[0]
        np.testing.assert_allclose(proj, s["joint_img"][0, :2].numpy(), atol=1e-5)


def test_mscoco(coco, layer):
    root, truth = coco
    ds = make_dataset("mscoco", root, "train", SIZE, n_joints=55)
    assert len(ds) == 2  # the crowd annotation is skipped
    for i, (s, t) in enumerate(zip((ds[0], ds[1]), truth["samples"])):
        check_shapes(s, J=55)
        lw = s["joint_img"][20].numpy()
        assert colour_at(s, lw[0], lw[1]) == "green"
        np.testing.assert_allclose(lw[:2], to_crop(*t["wrist"]), atol=1e-5)
        b = t["body"]
        np.testing.assert_allclose(s["joint_img"][0, :2].numpy(), to_crop(*(b[11, :2] + b[12, :2]) / 2), atol=1e-5)
        np.testing.assert_allclose(s["joint_img"][25, :2].numpy(), to_crop(*t["lhand_kpts"][5, :2]), atol=1e-5)
        assert s["joint_img"][20, 2] == 0.5 and s["is_3d"] == 0 and s["cam_valid"] == 0
        # boxes: (cx, cy, w, h) in crop units; the left-hand box is valid on the first person only
        x, y, w, h = t["face"]
        np.testing.assert_allclose(s["boxes"][2].numpy(), (*to_crop(x + w / 2, y + h / 2), w / CW, h / CH), atol=1e-5)
        assert colour_at(s, *s["boxes"][2, :2].numpy()) == "yellow"
        assert s["box_valid"][:, 0].tolist() == ([1.0, 0.0, 1.0] if i == 0 else [0.0, 0.0, 1.0])
        if i == 0:
            assert colour_at(s, *s["boxes"][0, :2].numpy()) == "blue"
        assert s["lhand_valid"] == float(i == 0) and s["rhand_valid"] == 0 and s["face_valid"] == 1
        for k in ("root_pose", "body_pose", "lhand_pose", "jaw_pose", "expr", "shape"):
            np.testing.assert_allclose(s[k].numpy(), t["params"][k], atol=1e-6)
    # with the SMPL-X layer: 3D joints, vertices and the camera from the pseudo-GT
    ds = make_dataset("coco", root, "train", SIZE, layer=layer)
    s, t = ds[0], truth["samples"][0]
    p = {k: torch.tensor([t["params"][k]], dtype=torch.float32) for k in
         ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "expr", "shape")}
    out = layer(p)
    root_j = out["joints"][0, 0]
    np.testing.assert_allclose(s["vertices"].numpy(), (out["vertices"][0] - root_j).numpy(), atol=1e-5)
    np.testing.assert_allclose(s["joints_3d"].numpy(), (out["joints"][0, :25] - root_j).numpy(), atol=1e-5)
    assert s["vertices_valid"] == 1 and s["is_3d"] == 1 and s["cam_valid"] == 1
    # the virtual camera sees the pelvis where the real camera (focal 1100, trans) puts it in the crop
    X = root_j.double().numpy() + np.array(t["params"]["trans"])
    u, v = 1100 * X[0] / X[2] + 100, 1100 * X[1] / X[2] + 80
    ct = s["cam_trans"].double().numpy()
    F = 2.0 * SIZE[0]
    np.testing.assert_allclose(((F * ct[0] / ct[2] + 24) / 48, (F * ct[1] / ct[2] + 32) / 64), to_crop(u, v),
                               atol=1e-5)
    assert ct[2] == pytest.approx(X[2] * F * CH / (1100 * SIZE[0]), rel=1e-5)


def test_mpii(tmp_path):
    truth = fx.write_mpii(tmp_path)
    ds = make_dataset("mpii", tmp_path, "train", SIZE)
    assert len(ds) == 2
    s0, s1 = ds[0], ds[1]
    for s, t in ((s0, truth["samples"][0]), (s1, truth["samples"][1])):
        check_shapes(s)
        lw = s["joint_img"][20].numpy()
        assert colour_at(s, lw[0], lw[1]) == "green"
        np.testing.assert_allclose(s["joint_img"][0, :2].numpy(), to_crop(*t["kp"][6, :2]), atol=1e-5)
        assert s["joint_valid"][15] == 0  # no MPII joint for the SMPL-X head joint
    np.testing.assert_allclose(s0["body_pose"].numpy(), truth["samples"][0]["params"]["body_pose"], atol=1e-6)
    assert s0["smplx_valid"] == 1 and s1["smplx_valid"] == 0 and s1["body_pose"].abs().sum() == 0
    with pytest.raises(BinaryHPEError, match="only 'train'"):
        make_dataset("mpii", tmp_path, "test", SIZE)


def test_ehf_with_ground_truth_meshes(tmp_path, layer):
    rng = np.random.default_rng(0)
    v0 = layer.model.v_template.double().numpy()
    meshes = [v0 + 0.01 * rng.standard_normal(v0.shape) for _ in range(2)]
    fx.write_ehf(tmp_path, meshes)
    ds = make_dataset("EHF", tmp_path, "test", SIZE, layer=layer)
    assert len(ds) == 2
    R = fx.rot((-2.98747896, 0.01172457, -0.05704687), np.linalg.norm((-2.98747896, 0.01172457, -0.05704687)))
    jreg = layer.model.J_regressor.double().numpy()
    for i, s in enumerate((ds[0], ds[1])):
        check_shapes(s)
        m = meshes[i] @ R.T
        np.testing.assert_allclose(s["vertices"].numpy(), m - (jreg @ m)[0], atol=2e-5)  # the 2nd is binary float32
        assert s["vertices_valid"] == 1 and s["smplx_valid"] == 0
        assert colour_at(s, *s["boxes"][0, :2].numpy()) == "blue"
        assert colour_at(s, *s["boxes"][2, :2].numpy()) == "yellow"
        assert s["box_valid"][:, 0].tolist() == [1.0, 0.0, 1.0]  # the right-hand box lies outside the crop
    # no layer: no vertices key; a mesh of the wrong size is named
    assert "vertices" not in make_dataset("ehf", tmp_path, "test", SIZE)[0]
    fx.write_ply(tmp_path / "data" / "01_align.ply", meshes[0][:500])
    with pytest.raises(BinaryHPEError, match="01_align.ply has 500 vertices but the SMPL-X model has 600"):
        ds[0]


def test_agora(tmp_path, layer):
    truth = fx.write_agora(tmp_path)
    ds = make_dataset("agora", tmp_path, "val", SIZE)
    assert len(ds) == 2  # the invalid person is skipped
    cw, ch = 150 * 1.25, 200 * 1.25
    x0, y0 = 575 - cw / 2, 300 - ch / 2
    for s, t in zip((ds[0], ds[1]), truth["samples"]):
        check_shapes(s)
        assert colour_at(s, 0.5, 0.5) == "red" and colour_at(s, 0.02, 0.02) == "grey"
        x, y, w, h = t["lhand"]
        np.testing.assert_allclose(s["boxes"][0].numpy(),
                                   ((x + w / 2 - x0) / cw, (y + h / 2 - y0) / ch, w / cw, h / ch), atol=1e-5)
        assert colour_at(s, *s["boxes"][0, :2].numpy()) == "blue"
        assert s["box_valid"][:, 0].tolist() == [1.0, 0.0, 1.0]
        np.testing.assert_allclose(s["root_pose"].numpy(), t["params"]["global_orient"], atol=1e-6)
        np.testing.assert_allclose(s["shape"].numpy(), t["params"]["betas"][:10], atol=1e-6)
        np.testing.assert_allclose(s["expr"].numpy(), t["params"]["expression"], atol=1e-6)
        assert s["smplx_valid"] == 1 and s["lhand_valid"] == 1 and s["cam_valid"] == 0
    s = make_dataset("agora", tmp_path, "val", SIZE, layer=layer)[0]
    assert s["vertices"].shape == (600, 3) and s["vertices_valid"] == 1 and s["cam_valid"] == 1
    # 2D joints projected from the 3D pseudo-GT with AGORA's camera (scaled to 1280x720)
    t = truth["samples"][0]["params"]
    p = {"root_pose": t["global_orient"], "body_pose": t["body_pose"], "shape": t["betas"][:10],
         "lhand_pose": t["left_hand_pose"], "rhand_pose": t["right_hand_pose"], "jaw_pose": t["jaw_pose"],
         "expr": t["expression"]}
    J = layer({k: torch.tensor([v], dtype=torch.float32) for k, v in p.items()})["joints"][0].double().numpy()
    X = J[20] + np.array(t["transl"])
    u, v = 1000 * X[0] / X[2] + 640, 1000 * X[1] / X[2] + 360
    np.testing.assert_allclose(s["joint_img"][20, :2].numpy(), ((u - x0) / cw, (v - y0) / ch), atol=1e-4)


def test_mixed_batches_collate(h36m, coco):
    ds = ConcatDataset([make_dataset("human36m", h36m[0], "train", SIZE),
                        make_dataset("mscoco", coco[0], "train", SIZE)])
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["img"].shape == (4, 3, *SIZE) and batch["joint_img"].shape == (4, 25, 3)
    assert batch["is_3d"].squeeze(1).tolist() == [1.0, 1.0, 0.0, 0.0]


def test_broken_layouts(tmp_path, h36m, coco):
    with pytest.raises(BinaryHPEError, match="unknown dataset 'h37m'"):
        make_dataset("h37m", tmp_path, "train", SIZE)
    with pytest.raises(BinaryHPEError, match="root folder .* does not exist"):
        make_dataset("mpii", tmp_path / "nowhere", "train", SIZE)
    # Human3.6M without its camera file: the data set, the expected file and what is there
    import shutil

    root = tmp_path / "h36m"
    shutil.copytree(h36m[0], root)
    (root / "annotations" / "Human36M_subject1_camera.json").unlink()
    with pytest.raises(BinaryHPEError) as e:
        make_dataset("human36m", root, "train", SIZE)
    msg = str(e.value)
    assert msg.startswith("Human3.6M dataset") and "annotations/Human36M_subject1_camera.json" in msg
    assert "Human36M_subject1_data.json" in msg  # what was found
    # MSCOCO annotation file that is not COCO-style; an annotation without its bbox; a missing image
    root = tmp_path / "coco"
    shutil.copytree(coco[0], root)
    f = root / "annotations" / "coco_wholebody_train_v1.0.json"
    good = json.loads(f.read_text())
    f.write_text(json.dumps({"images": good["images"]}))
    with pytest.raises(BinaryHPEError, match="MSCOCO dataset: .*not COCO-style: expected keys 'images' and "
                                             "'annotations', found images"):
        make_dataset("mscoco", root, "train", SIZE)
    bad = json.loads(json.dumps(good))
    del bad["annotations"][1]["bbox"]
    f.write_text(json.dumps(bad))
    with pytest.raises(BinaryHPEError, match="annotation 1 \\(id 101\\) has no key 'bbox'"):
        make_dataset("mscoco", root, "train", SIZE)
    f.write_text(json.dumps(good))
    (root / "images" / "train2017" / "000000000001.jpg").unlink()
    ds = make_dataset("mscoco", root, "train", SIZE)
    ds[0]
    with pytest.raises(BinaryHPEError, match="image .*000000000001.jpg is missing"):
        ds[1]
    # MPII keypoints of the wrong count
    root = tmp_path / "mpii"
    fx.write_mpii(root)
    f = root / "data" / "annotations" / "train.json"
    d = json.loads(f.read_text())
    d["annotations"][0]["keypoints"] = d["annotations"][0]["keypoints"][:45]
    f.write_text(json.dumps(d))
    with pytest.raises(BinaryHPEError, match="expected 16 keypoints"):
        make_dataset("mpii", root, "train", SIZE)
