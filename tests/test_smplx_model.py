"""SMPL-X layer: the synthetic model in the official format loads through the real ``smplx`` code, poses it
as an independent numpy linear-blend-skinning reference says, and bad files get one clear error."""

import pickle

import numpy as np
import pytest
import torch

from binaryhpe import BinaryHPEError
from binaryhpe.train import smplx_model as sm


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("smplx")
    sm.write_synthetic_smplx(d, n_verts=700, seed=3)
    return d


@pytest.fixture(scope="module")
def layer(model_dir):
    return sm.SMPLXLayer(model_dir)


def _rodrigues(r):
    th = np.linalg.norm(r)
    if th < 1e-12:
        return np.eye(3)
    k = r / th
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def _numpy_lbs(d, betas, expr, full_pose):
    """SMPL-X forward written from the model's definition (Loper et al. 2015; Pavlakos et al. 2019)."""
    V = d["v_template"].shape[0]
    sd = d["shapedirs"].astype(np.float64)
    v = d["v_template"] + sd[:, :, :10] @ betas + sd[:, :, 300:310] @ expr
    J = d["J_regressor"] @ v
    R = np.stack([_rodrigues(p) for p in full_pose.reshape(55, 3)])
    feat = (R[1:] - np.eye(3)).reshape(-1)
    v = v + (d["posedirs"].astype(np.float64).reshape(V * 3, -1) @ feat).reshape(V, 3)
    parents = d["kintree_table"][0].astype(np.int64)
    G = np.zeros((55, 4, 4))
    for k in range(55):
        T = np.eye(4)
        T[:3, :3] = R[k]
        T[:3, 3] = J[k] - (J[parents[k]] if k else 0)
        G[k] = T if k == 0 else G[parents[k]] @ T
    posed_J = G[:, :3, 3].copy()
    A = G.copy()
    A[:, :3, 3] -= np.einsum("kij,kj->ki", G[:, :3, :3], J)
    T = np.einsum("vk,kij->vij", d["weights"], A)
    out = np.einsum("vij,vj->vi", T[:, :3, :3], v) + T[:, :3, 3]
    return out, posed_J


def test_synthetic_file_has_official_layout(model_dir):
    with np.load(model_dir / "SMPLX_NEUTRAL.npz") as z:
        d = {k: z[k] for k in z.files}
    V = 700
    assert d["v_template"].shape == (V, 3)
    assert d["J_regressor"].shape == (55, V) and d["weights"].shape == (V, 55)
    assert d["posedirs"].shape == (V, 3, 486) and d["shapedirs"].shape == (V, 3, 400)
    assert d["kintree_table"].shape == (2, 55) and d["hands_componentsl"].shape == (45, 45)
    assert d["lmk_faces_idx"].shape == (51,) and d["lmk_bary_coords"].shape == (51, 3)
    assert d["dynamic_lmk_faces_idx"].shape == (79, 17)
    np.testing.assert_allclose(d["weights"].sum(1), 1.0)
    assert d["f"].max() < V
    # the kinematic tree is SMPL-X's: hands hang from the wrists, the jaw from the head
    par = d["kintree_table"][0]
    assert par[22] == 15 and par[20] == 18 and par[25] == 20 and par[40] == 21 and par[12] == 9
    # a human figure: standing about 1.7 m, arms spread sideways (T-pose), left side at +x
    v = d["v_template"]
    height = v[:, 1].max() - v[:, 1].min()
    span = v[:, 0].max() - v[:, 0].min()
    assert 1.5 < height < 2.0 and 1.4 < span < 2.0
    J = d["J_regressor"] @ v
    assert J[20, 0] > 0.5 and J[21, 0] < -0.5 and J[15, 1] > J[12, 1] > J[0, 1] > J[7, 1]
    # the expression columns move only face vertices
    lh, rh, face = sm.part_vertex_ids(d["weights"])
    moved = np.flatnonzero(np.abs(d["shapedirs"][:, :, 300:]).sum((1, 2)) > 0)
    assert set(moved) <= set(face) and len(face) > 10 and len(lh) > 50 and len(rh) > 50


def test_forward_matches_numpy_lbs(model_dir, layer):
    with np.load(model_dir / "SMPLX_NEUTRAL.npz") as z:
        d = {k: z[k] for k in z.files}
    rng = np.random.default_rng(0)
    B = 2
    p = {k: torch.tensor(0.3 * rng.standard_normal((B, n)), dtype=torch.float32)
         for k, n in (("root_pose", 3), ("body_pose", 63), ("lhand_pose", 45), ("rhand_pose", 45),
                      ("jaw_pose", 3), ("expr", 10), ("shape", 10))}
    out = layer(p)
    assert out["vertices"].shape == (B, 700, 3) and out["joints"].shape == (B, 55, 3)
    assert out["keypoints"].shape == (B, 127, 3)
    for b in range(B):
        full = np.concatenate([p["root_pose"][b], p["body_pose"][b], p["jaw_pose"][b], np.zeros(6),
                               p["lhand_pose"][b], p["rhand_pose"][b]]).astype(np.float64)
        ref_v, ref_j = _numpy_lbs(d, p["shape"][b].double().numpy(), p["expr"][b].double().numpy(), full)
        np.testing.assert_allclose(out["vertices"][b].numpy(), ref_v, atol=2e-5)
        np.testing.assert_allclose(out["joints"][b].numpy(), ref_j, atol=2e-5)
        # the extra keypoints are the named vertices (fingertips etc.)
        ids = d["binaryhpe_extra_vertex_ids"]
        np.testing.assert_allclose(out["keypoints"][b, 55:76].numpy(), ref_v[ids], atol=2e-5)
    rel = layer(p, root_relative=True)
    np.testing.assert_allclose(rel["joints"][:, 0].numpy(), 0.0, atol=1e-6)


def test_elbow_rotation_closed_form(layer):
    """90 degrees about z at the left elbow swings the left wrist from +x to +y around the elbow."""
    body = torch.zeros(1, 63)
    body[0, (18 - 1) * 3 + 2] = np.pi / 2
    j0 = layer({"body_pose": torch.zeros(1, 63)})["joints"][0].numpy()
    j1 = layer({"body_pose": body})["joints"][0].numpy()
    d = j0[20] - j0[18]
    expect = j0[18] + np.array([-d[1], d[0], d[2]])
    np.testing.assert_allclose(j1[20], expect, atol=1e-5)
    np.testing.assert_allclose(j1[:18], j0[:18], atol=1e-6)  # nothing upstream moves
    assert layer.parents.tolist() == sm.PARENTS.tolist() and layer.faces.shape[1] == 3


def test_parts_move_only_their_vertices(layer):
    zero = layer({"root_pose": torch.zeros(1, 3)})["vertices"][0]
    for key, part in (("jaw_pose", layer.face_verts), ("lhand_pose", layer.hand_verts_left),
                      ("rhand_pose", layer.hand_verts_right)):
        n = 3 if key == "jaw_pose" else 45
        moved = layer({key: torch.full((1, n), 0.4)})["vertices"][0]
        delta = (moved - zero).norm(dim=1).numpy()
        others = np.setdiff1d(np.arange(len(delta)), part)
        # pose corrective blend shapes move everything a little; the part itself moves by centimetres
        assert delta[part].max() > 0.01 and delta[part].max() > 5 * delta[others].max(), key


def test_pkl_container_loads(tmp_path):
    f = sm.write_synthetic_smplx(tmp_path / "SMPLX_NEUTRAL.pkl", n_verts=600)
    layer = sm.SMPLXLayer(f)
    assert layer({"shape": torch.zeros(3, 10)})["vertices"].shape == (3, 600, 3)


def test_env_var_and_hand4whole_layout(tmp_path, monkeypatch):
    sm.write_synthetic_smplx(tmp_path / "human_model_files" / "smplx", n_verts=600)
    monkeypatch.setenv("BINARYHPE_SMPLX_DIR", str(tmp_path / "human_model_files"))
    assert sm.resolve_smplx_path() == tmp_path / "human_model_files" / "smplx" / "SMPLX_NEUTRAL.npz"
    monkeypatch.delenv("BINARYHPE_SMPLX_DIR")
    with pytest.raises(BinaryHPEError, match="BINARYHPE_SMPLX_DIR"):
        sm.resolve_smplx_path()


def test_missing_files_and_keys_are_named(tmp_path, model_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BinaryHPEError, match=r"missing file.*SMPLX_NEUTRAL\.npz"):
        sm.resolve_smplx_path(tmp_path / "empty")
    with pytest.raises(BinaryHPEError, match="does not exist"):
        sm.resolve_smplx_path(tmp_path / "nowhere")
    with np.load(model_dir / "SMPLX_NEUTRAL.npz") as z:
        d = {k: z[k] for k in z.files}
    bad = dict(d)
    del bad["posedirs"], bad["lmk_faces_idx"]
    bad["weights"] = bad["weights"][:, :24]
    with open(tmp_path / "bad.pkl", "wb") as fh:
        pickle.dump(bad, fh)
    with pytest.raises(BinaryHPEError) as e:
        sm.resolve_smplx_path(tmp_path / "bad.pkl")
    msg = str(e.value)
    assert "bad.pkl" in msg and "'posedirs'" in msg and "'lmk_faces_idx'" in msg
    assert "'weights' has shape (700, 24)" in msg
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(BinaryHPEError, match="junk.npz.*cannot be read"):
        sm.resolve_smplx_path(tmp_path / "junk.npz")


def test_bad_parameter_shape(layer):
    with pytest.raises(BinaryHPEError, match="'body_pose' has shape \\(2, 62\\)"):
        layer({"body_pose": torch.zeros(2, 62)})
    with pytest.raises(BinaryHPEError, match="batch size"):
        layer({"body_pose": torch.zeros(2, 63), "shape": torch.zeros(3, 10)})


def test_template_is_mirror_symmetric():
    """x -> -x maps the template's vertex set onto itself, one to one (horizontal-flip augmentation)."""
    for n in (600, 1000, 1500):
        v = sm.synthetic_layout(n)[0]
        assert len(v) == n
        m = v * np.array([-1, 1, 1])
        d = np.linalg.norm(m[:, None] - v[None], axis=-1)
        nn_ = d.argmin(1)
        assert d[np.arange(n), nn_].max() < 1e-9
        assert len(set(nn_.tolist())) == n  # a permutation: no two vertices share a mirror image
    with pytest.raises(BinaryHPEError, match="too small"):
        sm.synthetic_layout(300)


def test_gradients_reach_every_parameter(layer):
    """Training regresses these parameters through the layer: each gets a gradient from the vertices."""
    p = {k: torch.full((2, n), 0.1, requires_grad=True) for k, n in
         (("root_pose", 3), ("body_pose", 63), ("lhand_pose", 45), ("rhand_pose", 45), ("jaw_pose", 3),
          ("expr", 10), ("shape", 10))}
    layer(p, root_relative=True)["vertices"].square().sum().backward()
    for k, v in p.items():
        assert v.grad is not None and v.grad.abs().sum() > 0, k
