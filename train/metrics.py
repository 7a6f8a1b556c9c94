"""3D whole-body reconstruction errors of Table 1: MPVPE, PA-MPVPE, PA-MPJPE, for all / hands / face.

Inputs are numpy arrays or torch tensors of shape (B, N, 3) (or (N, 3)) in metres; results are floats in
millimetres, averaged over the points and then over the batch. ``PA-`` errors first align the prediction to
the ground truth by the similarity transform (rotation, uniform scale, translation) of least squared error
(Procrustes / Umeyama, no reflection).

``evaluate_parts`` follows Hand4Whole's EHF / AGORA evaluation: the whole mesh is aligned at the pelvis
before MPVPE, each hand at its wrist and the face at the neck; PA-MPVPE aligns each part on its own; PA-MPJPE
is reported for the body joints (pelvis .. wrists, the 22 SMPL-X body joints) and the hands (wrist + 15 finger
joints each). Joint arrays are in SMPL-X joint order (``smplx_model.JOINT_NAMES``; the first 55 are used).
"""

from __future__ import annotations

import numpy as np
import torch

from binaryhpe import BinaryHPEError

from . import smplx_model as sm


def _np(x, name: str) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().cpu().double().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] != 3:
        raise BinaryHPEError(f"metrics: {name} has shape {a.shape}, expected (B, N, 3) or (N, 3)")
    return a


def _pair(pred, gt):
    p, g = _np(pred, "pred"), _np(gt, "gt")
    if p.shape != g.shape:
        raise BinaryHPEError(f"metrics: pred has shape {p.shape} but gt has shape {g.shape}")
    return p, g


def procrustes_align(pred, gt):
    """``pred`` moved onto ``gt`` by the best similarity transform (per batch item); same type and shape."""
    was_torch = torch.is_tensor(pred)
    squeeze = np.ndim(pred) == 2
    p, g = _pair(pred, gt)
    mp, mg = p.mean(1, keepdims=True), g.mean(1, keepdims=True)
    x, y = p - mp, g - mg
    cov = np.einsum("bni,bnj->bij", y, x) / p.shape[1]  # (B,3,3): sum y x^T
    U, S, Vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.ones((p.shape[0], 3))
    D[:, 2] = d
    R = U @ (D[:, :, None] * Vt)
    var = (x ** 2).sum((1, 2)) / p.shape[1]
    s = np.where(var > 0, (S * D).sum(1) / np.where(var > 0, var, 1.0), 1.0)
    out = s[:, None, None] * np.einsum("bij,bnj->bni", R, x) + mg
    if squeeze:
        out = out[0]
    if was_torch:
        return torch.as_tensor(out, dtype=pred.dtype, device=pred.device)
    return out


def _mean_dist_mm(p: np.ndarray, g: np.ndarray) -> float:
    return float(np.linalg.norm(p - g, axis=-1).mean(-1).mean() * 1000.0)


def mpvpe(pred, gt) -> float:
    """Mean per-vertex position error (mm), no alignment (give root-relative inputs)."""
    return _mean_dist_mm(*_pair(pred, gt))


def mpjpe(pred, gt) -> float:
    """Mean per-joint position error (mm), no alignment."""
    return _mean_dist_mm(*_pair(pred, gt))


def pa_mpvpe(pred, gt) -> float:
    """Procrustes-aligned MPVPE (mm)."""
    p, g = _pair(pred, gt)
    return _mean_dist_mm(procrustes_align(p, g), g)


def pa_mpjpe(pred, gt) -> float:
    """Procrustes-aligned MPJPE (mm)."""
    p, g = _pair(pred, gt)
    return _mean_dist_mm(procrustes_align(p, g), g)


def _part_ids(layer):
    if layer is None:
        return sm.HAND_VERTS_LEFT, sm.HAND_VERTS_RIGHT, sm.FACE_VERTS
    if isinstance(layer, dict):
        return layer["hand_verts_left"], layer["hand_verts_right"], layer["face_verts"]
    return layer.hand_verts_left, layer.hand_verts_right, layer.face_verts


def evaluate_parts(pred_vertices, gt_vertices, pred_joints, gt_joints, layer=None) -> dict:
    """All Table 1 errors (mm): ``mpvpe``, ``mpvpe_hand``, ``mpvpe_face``, ``pa_mpvpe``, ``pa_mpvpe_hand``,
    ``pa_mpvpe_face``, ``pa_mpjpe`` (= ``pa_mpjpe_body``), ``pa_mpjpe_hand``.

    ``layer`` gives the part vertex indices (``hand_verts_left`` / ``hand_verts_right`` / ``face_verts``
    attributes of an ``SMPLXLayer``, or a dict with those keys); None takes the default synthetic layout."""
    pv, gv = _pair(pred_vertices, gt_vertices)
    pj, gj = _pair(pred_joints, gt_joints)
    if pj.shape[1] < sm.NUM_JOINTS:
        raise BinaryHPEError(f"metrics: joints have {pj.shape[1]} entries, expected the {sm.NUM_JOINTS} SMPL-X "
                             "joints (or more, the first 55 in SMPL-X order)")
    lh, rh, face = (np.asarray(i, dtype=np.int64) for i in _part_ids(layer))
    if max(lh.max(), rh.max(), face.max()) >= pv.shape[1]:
        raise BinaryHPEError(f"metrics: part vertex indices reach {max(lh.max(), rh.max(), face.max())} but the "
                             f"meshes have {pv.shape[1]} vertices (layer and meshes do not match)")

    def anchored(ids, j):
        return _mean_dist_mm(pv[:, ids] - pj[:, j:j + 1] + gj[:, j:j + 1], gv[:, ids])

    r = {
        "mpvpe": anchored(slice(None), sm.PELVIS),
        "mpvpe_hand": (anchored(lh, sm.LEFT_WRIST) + anchored(rh, sm.RIGHT_WRIST)) / 2,
        "mpvpe_face": anchored(face, sm.NECK),
        "pa_mpvpe": pa_mpvpe(pv, gv),
        "pa_mpvpe_hand": (pa_mpvpe(pv[:, lh], gv[:, lh]) + pa_mpvpe(pv[:, rh], gv[:, rh])) / 2,
        "pa_mpvpe_face": pa_mpvpe(pv[:, face], gv[:, face]),
        "pa_mpjpe_body": pa_mpjpe(pj[:, sm.BODY_JOINTS], gj[:, sm.BODY_JOINTS]),
        "pa_mpjpe_hand": (pa_mpjpe(pj[:, sm.LEFT_HAND_JOINTS], gj[:, sm.LEFT_HAND_JOINTS])
                          + pa_mpjpe(pj[:, sm.RIGHT_HAND_JOINTS], gj[:, sm.RIGHT_HAND_JOINTS])) / 2,
    }
    r["pa_mpjpe"] = r["pa_mpjpe_body"]
    return r
