"""Table 1 metrics on cases with known answers: rigid motions and scaling give 0 PA error, a known
translation gives its norm, parts are aligned at their anchor joints, and Procrustes is a true optimum."""

import numpy as np
import pytest
import torch

from binaryhpe import BinaryHPEError
from binaryhpe.train import metrics as M
from binaryhpe.train import smplx_model as sm


def _rot(axis, ang):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(ang) * K + (1 - np.cos(ang)) * K @ K


RNG = np.random.default_rng(1)
GT = RNG.standard_normal((2, 40, 3)) * 0.3


def test_translation_gives_its_norm():
    t = np.array([0.003, -0.004, 0.012])  # |t| = 13 mm
    assert M.mpvpe(GT + t, GT) == pytest.approx(13.0)
    assert M.mpjpe(torch.tensor(GT + t), torch.tensor(GT)) == pytest.approx(13.0)
    # the batch mean: 13 mm on one item, 0 on the other
    shifted = GT.copy()
    shifted[0] += t
    assert M.mpvpe(shifted, GT) == pytest.approx(6.5)
    assert M.pa_mpvpe(GT + t, GT) == pytest.approx(0.0, abs=1e-9)


def test_similarity_transforms_give_zero_pa_error():
    for axis, ang, s in (((0, 0, 1), 0.7, 1.0), ((1, 2, -1), 2.9, 0.6), ((0.3, -1, 0.2), -1.4, 1.7)):
        pred = s * GT @ _rot(axis, ang).T + np.array([0.1, -2.0, 0.5])
        assert M.mpvpe(pred, GT) > 10.0
        assert M.pa_mpvpe(pred, GT) == pytest.approx(0.0, abs=1e-8)
        assert M.pa_mpjpe(torch.tensor(pred, dtype=torch.float64), torch.tensor(GT)) == pytest.approx(0.0, abs=1e-8)
        np.testing.assert_allclose(M.procrustes_align(pred, GT), GT, atol=1e-10)
    out = M.procrustes_align(torch.tensor(pred[0], dtype=torch.float32), torch.tensor(GT[0]))
    assert torch.is_tensor(out) and out.shape == (40, 3) and out.dtype == torch.float32


def test_known_scaled_case():
    """gt: a square of side 2 around 0; pred: the same square at half size shifted. PA error 0; MPVPE closed
    form: every corner is 1/2 of its distance (sqrt 2) from the centre off, plus the shift."""
    gt = np.array([[1, 1, 0], [-1, 1, 0], [-1, -1, 0], [1, -1, 0]], float)
    pred = 0.5 * gt
    assert M.mpvpe(pred, gt) == pytest.approx(1000 * np.sqrt(2) / 2)
    assert M.pa_mpvpe(pred, gt) == pytest.approx(0.0, abs=1e-9)


def test_no_reflection_and_optimality():
    mirrored = GT * np.array([-1, 1, 1])
    assert M.pa_mpvpe(mirrored, GT) > 50.0  # a mirror image is not a rotation
    noisy = GT @ _rot((1, 1, 0), 0.5).T * 1.3 + 0.02 * RNG.standard_normal(GT.shape)
    aligned = M.procrustes_align(noisy, GT)
    base = ((aligned - GT) ** 2).sum()
    # perturbing the found transform in rotation, scale or translation only increases the squared error
    for b in range(2):
        c = aligned[b].mean(0)
        for R, s, t in ((_rot((0, 0, 1), 0.01), 1, 0), (np.eye(3), 1.01, 0), (np.eye(3), 0.99, 0),
                        (np.eye(3), 1, np.array([0.002, 0, 0])), (_rot((1, 0, 0), -0.01), 1, 0)):
            moved = aligned.copy()
            moved[b] = s * (aligned[b] - c) @ R.T + c + t
            assert ((moved - GT) ** 2).sum() > base


def test_shape_errors():
    with pytest.raises(BinaryHPEError, match="pred has shape"):
        M.mpvpe(np.zeros((2, 5, 3)), np.zeros((2, 6, 3)))
    with pytest.raises(BinaryHPEError, match="expected \\(B, N, 3\\)"):
        M.mpvpe(np.zeros((5, 2)), np.zeros((5, 2)))


def _parts_case():
    V = 30
    layer = {"hand_verts_left": np.arange(0, 5), "hand_verts_right": np.arange(5, 10),
             "face_verts": np.arange(10, 16)}
    gv = RNG.standard_normal((1, V, 3))
    gj = RNG.standard_normal((1, 55, 3))
    return layer, gv, gj


def test_parts_anchor_alignment():
    layer, gv, gj = _parts_case()
    # a global translation of everything: all errors vanish (MPVPE aligns at the pelvis)
    t = np.array([0.5, 0.2, -1.0])
    r = M.evaluate_parts(gv + t, gv, gj + t, gj, layer)
    for k in ("mpvpe", "mpvpe_hand", "mpvpe_face", "pa_mpvpe", "pa_mpvpe_hand", "pa_mpvpe_face",
              "pa_mpjpe", "pa_mpjpe_body", "pa_mpjpe_hand"):
        assert r[k] == pytest.approx(0.0, abs=1e-8), k
    # the left hand's vertices shifted by 10 mm: hand error 10 mm on one hand of two -> 5 mm; all vertices
    # 10 mm on 5 of 30; PA on the hand removes a translation
    pv = gv.copy()
    pv[:, :5] += np.array([0.006, 0.008, 0.0])
    r = M.evaluate_parts(pv, gv, gj, gj, layer)
    assert r["mpvpe_hand"] == pytest.approx(5.0)
    assert r["mpvpe"] == pytest.approx(10.0 * 5 / 30)
    assert r["pa_mpvpe_hand"] == pytest.approx(0.0, abs=1e-8)
    assert r["mpvpe_face"] == pytest.approx(0.0, abs=1e-9)
    # the left wrist predicted 10 mm off with the hand attached: the hand moved with its wrist -> 0 hand error
    pj = gj.copy()
    pj[:, sm.LEFT_WRIST] += np.array([0.006, 0.008, 0.0])
    assert M.evaluate_parts(pv, gv, pj, gj, layer)["mpvpe_hand"] == pytest.approx(0.0, abs=1e-9)
    # face scaled about the neck: MPVPE face > 0, PA-MPVPE face 0
    pv = gv.copy()
    neck = gj[:, sm.NECK:sm.NECK + 1]
    pv[:, 10:16] = neck + 0.8 * (gv[:, 10:16] - neck)
    r = M.evaluate_parts(pv, gv, gj, gj, layer)
    expect = 0.2 * np.linalg.norm(gv[0, 10:16] - neck[0], axis=1).mean() * 1000
    assert r["mpvpe_face"] == pytest.approx(expect)
    assert r["pa_mpvpe_face"] == pytest.approx(0.0, abs=1e-8)


def test_parts_layer_mismatch():
    layer, gv, gj = _parts_case()
    layer = dict(layer, face_verts=np.array([3, 99]))
    with pytest.raises(BinaryHPEError, match="do not match"):
        M.evaluate_parts(gv, gv, gj, gj, layer)
    with pytest.raises(BinaryHPEError, match="55 SMPL-X"):
        M.evaluate_parts(gv, gv, gj[:, :20], gj[:, :20], dict(layer, face_verts=np.array([3])))


def test_default_layout_is_where_hands_and_face_are():
    v = sm.synthetic_layout(1000)[0]
    J = sm._tpose_joints()
    assert (v[sm.HAND_VERTS_LEFT, 0] > J[sm.LEFT_WRIST, 0] - 0.02).all()
    assert (v[sm.HAND_VERTS_RIGHT, 0] < J[sm.RIGHT_WRIST, 0] + 0.02).all()
    assert (v[sm.FACE_VERTS, 1] > J[sm.NECK, 1]).all() and len(sm.FACE_VERTS) > 20
