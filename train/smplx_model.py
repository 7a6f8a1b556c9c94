"""The SMPL-X body model through the ``smplx`` package, the checks on the user's model files, and a small
synthetic SMPL-X model written in the official file format for tests and generated training data.

The official SMPL-X files are licensed and cannot be fetched here. The user points to them with a path
argument or the environment variable ``BINARYHPE_SMPLX_DIR`` (a folder holding ``SMPLX_NEUTRAL.npz`` or
``SMPLX_NEUTRAL.pkl``, a ``smplx/`` folder below it as in Hand4Whole's ``human_model_files``, or the file
itself). ``resolve_smplx_path`` checks every key and array shape that ``smplx.SMPLX`` reads and names what is
missing or wrong in one error.

``write_synthetic_smplx`` writes a file with exactly the official keys and array layouts (``v_template``
(V,3), ``f`` (F,3), ``J_regressor`` (55,V), ``kintree_table`` (2,55), ``weights`` (V,55), ``posedirs``
(V,3,486), ``shapedirs`` (V,3,400: 300 shape + 100 expression columns as in SMPL-X v1.1), ``hands_components``
/ ``hands_mean`` / ``hands_coeffs`` (l, r), ``lmk_faces_idx`` / ``lmk_bary_coords``, ``dynamic_lmk_*``, ``vt``
/ ``ft``) but few vertices: a skeleton-shaped T-pose figure (a prism around every bone of the real 55-joint
SMPL-X kinematic tree, one vertex at every joint centre) so that body, hand and jaw poses move it and it
renders as a human figure; the template is exactly left/right symmetric (x -> -x maps vertices onto
vertices). The official model picks 21 extra keypoints (nose, eyes, ears, toes, heels, fingertips) at
fixed vertex indices of the 10,475-vertex mesh; the synthetic file carries its own indices in the one extra
key ``binaryhpe_extra_vertex_ids`` (21,), in ``smplx``'s ``VertexJointSelector`` order.
"""

from __future__ import annotations

import os
import pathlib
import pickle

import numpy as np
import torch
from torch import nn

from binaryhpe import BinaryHPEError

ENV_VAR = "BINARYHPE_SMPLX_DIR"
NUM_JOINTS = 55  # pelvis + 21 body + jaw + 2 eyes + 2 x 15 hand joints
NUM_POSE_BASIS = (NUM_JOINTS - 1) * 9  # 486
OFFICIAL_NUM_VERTS = 10475
MODEL_FILES = ("SMPLX_NEUTRAL.npz", "SMPLX_NEUTRAL.pkl")
# optional official part-index files (the ones Hand4Whole reads); derived from skinning weights when absent
HAND_IDS_FILE = "MANO_SMPLX_vertex_ids.pkl"
FACE_IDS_FILE = "SMPL-X__FLAME_vertex_ids.npy"

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "jaw",
    "left_eye_smplhf", "right_eye_smplhf",
    *[f"left_{f}{i}" for f in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3)],
    *[f"right_{f}{i}" for f in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3)],
)
# the official SMPL-X kinematic tree (kintree_table[0], root's parent -1)
PARENTS = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15]
    + [p for w in (20,) for b in range(5) for p in (w, 25 + 3 * b, 26 + 3 * b)]
    + [p for w in (21,) for b in range(5) for p in (w, 40 + 3 * b, 41 + 3 * b)], dtype=np.int64)
PELVIS, NECK, HEAD, JAW, LEFT_WRIST, RIGHT_WRIST = 0, 12, 15, 22, 20, 21
BODY_JOINTS = np.arange(0, 22)  # pelvis .. wrists
LEFT_HAND_JOINTS = np.array([20, *range(25, 40)])  # wrist + 15 finger joints
RIGHT_HAND_JOINTS = np.array([21, *range(40, 55)])
FACE_JOINTS = np.array([15, 22, 23, 24])  # head, jaw, eyes
# the order of smplx.vertex_joint_selector.VertexJointSelector's extra keypoints
EXTRA_KEYPOINTS = ("nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
                   "RSmallToe", "RHeel", "lthumb", "lindex", "lmiddle", "lring", "lpinky", "rthumb", "rindex",
                   "rmiddle", "rring", "rpinky")

PARAM_DIMS = {"root_pose": 3, "body_pose": 63, "lhand_pose": 45, "rhand_pose": 45, "jaw_pose": 3}


# ---------------------------------------------------------------------------------------------------------
# synthetic model
# ---------------------------------------------------------------------------------------------------------

def _tpose_joints() -> np.ndarray:
    """Joint centres of a T-pose (metres; y up, the figure faces +z, its left side is +x as in SMPL-X)."""
    j = np.zeros((NUM_JOINTS, 3))
    left = {  # left side and centre line; the right side mirrors x
        0: (0, 0, 0), 1: (0.09, -0.08, 0), 3: (0, 0.11, -0.01), 4: (0.10, -0.48, 0.0), 6: (0, 0.24, 0.0),
        7: (0.10, -0.88, -0.03), 9: (0, 0.30, 0.01), 10: (0.11, -0.94, 0.10), 12: (0, 0.52, -0.01),
        13: (0.07, 0.43, 0.0), 15: (0, 0.62, 0.02), 16: (0.18, 0.45, -0.01), 18: (0.44, 0.45, -0.02),
        20: (0.69, 0.45, -0.01), 22: (0, 0.59, 0.06), 23: (0.03, 0.68, 0.09),
    }
    for k, p in left.items():
        j[k] = p
    for lk, rk in ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (23, 24)):
        j[rk] = j[lk] * (-1, 1, 1)
    # fingers: index, middle, pinky, ring, thumb (SMPL-X order), from the wrist along +x
    finger_z = {0: 0.025, 1: 0.008, 2: -0.03, 3: -0.012}
    finger_len = {0: (0.085, 0.035, 0.025), 1: (0.09, 0.04, 0.027), 2: (0.075, 0.025, 0.02),
                  3: (0.085, 0.037, 0.025)}
    for side, wrist, base in ((1, 20, 25), (-1, 21, 40)):
        w = j[wrist]
        for f in range(4):
            x = 0.0
            for i, seg in enumerate(finger_len[f]):
                x += seg
                j[base + 3 * f + i] = w + (side * x, 0.0, finger_z[f])
        for i, d in enumerate(((0.03, -0.015, 0.035), (0.055, -0.025, 0.055), (0.08, -0.03, 0.07))):
            j[base + 12 + i] = w + (side * d[0], d[1], d[2])
    return j


def _segments(joints: np.ndarray):
    """(start, end, driving joint, next joint or -1, radius) for every bone and the end pieces."""
    radius = {0: 0.09, 1: 0.065, 2: 0.065, 3: 0.11, 4: 0.05, 5: 0.05, 6: 0.12, 7: 0.04, 8: 0.04, 9: 0.08,
              12: 0.05, 13: 0.05, 14: 0.05, 16: 0.045, 17: 0.045, 18: 0.04, 19: 0.04, 20: 0.012, 21: 0.012}
    segs = []
    for c in range(1, NUM_JOINTS):
        p = int(PARENTS[c])
        if p == HEAD and c in (23, 24):
            continue  # eyes sit inside the head
        if p == HEAD:  # head -> jaw: the lower face
            segs.append((joints[p], joints[c], p, c, 0.075))
            continue
        r = radius.get(p, 0.008 if p >= 25 else 0.06)
        segs.append((joints[p], joints[c], p, c, r))
    # end pieces driven by leaf joints
    segs.append((joints[HEAD], joints[HEAD] + (0, 0.16, 0), HEAD, -1, 0.09))  # skull
    segs.append((joints[JAW], joints[JAW] + (0, -0.05, 0.04), JAW, -1, 0.04))  # chin
    for foot in (10, 11):
        segs.append((joints[foot], joints[foot] + (0, 0, 0.06), foot, -1, 0.035))
    for tip in [b + 3 * f + 2 for b in (25, 40) for f in range(5)]:
        d = joints[tip] - joints[int(PARENTS[tip])]
        segs.append((joints[tip], joints[tip] + 0.8 * d, tip, -1, 0.007))
    return segs


def _ring_basis(d: np.ndarray):
    d = d / np.linalg.norm(d)
    a = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(d, a)
    u /= np.linalg.norm(u)
    return u, np.cross(d, u)


def synthetic_layout(n_verts: int = 1000):
    """The deterministic geometry of the synthetic model: (v_template, faces, weights, J_regressor,
    extra keypoint vertex ids). Only the blend shapes depend on the seed."""
    joints = _tpose_joints()
    segs = _segments(joints)
    per_ring_min = 4
    base = NUM_JOINTS
    if n_verts < base + 2 * per_ring_min * len(segs):
        raise BinaryHPEError(f"write_synthetic_smplx: n_verts = {n_verts} is too small: the skeleton figure needs "
                             f"at least {base + 2 * per_ring_min * len(segs)} vertices")
    s = min(16, (n_verts - base) // (2 * len(segs)))
    s -= s % 2  # an even ring is its own mirror image: the template stays left/right symmetric
    verts, weights, faces = [], [], []
    # one vertex at every joint centre (the joint regressor reads them), skinned to that joint
    for k in range(NUM_JOINTS):
        verts.append(joints[k])
        w = np.zeros(NUM_JOINTS)
        w[k] = 1.0
        weights.append(w)
    ang = 2 * np.pi * np.arange(s) / s
    for a, b, drv, nxt, r in segs:
        u, v = _ring_basis(b - a)
        start = len(verts)
        for t, w_next in ((0.1, 0.0), (0.9, 0.3 if nxt >= 0 else 0.0)):
            c = a + t * (b - a)
            for th in ang:
                verts.append(c + r * (np.cos(th) * u + np.sin(th) * v))
                w = np.zeros(NUM_JOINTS)
                w[drv] = 1.0 - w_next
                if nxt >= 0:
                    w[nxt] += w_next
                weights.append(w)
        for i in range(s):  # side quads, outward normals
            i0, i1 = start + i, start + (i + 1) % s
            faces.append((i0, i1, i1 + s))
            faces.append((i0, i1 + s, i0 + s))
        for i in range(1, s - 1):  # caps
            faces.append((start, start + i + 1, start + i))
            faces.append((start + s, start + s + i, start + s + i + 1))
    # exact vertex count: extra vertices inside the torso, on the centre line at distinct heights (so that
    # the template stays mirror-symmetric without duplicate points), skinned to the nearest spine joint
    n_pad = n_verts - len(verts)
    spine = np.array([PELVIS, 3, 6, 9, NECK])
    for y in np.linspace(joints[PELVIS, 1] + 0.01, joints[NECK, 1] - 0.01, n_pad):
        k = spine[np.argmin(np.abs(joints[spine, 1] - y))]
        verts.append(np.array([0.0, y, joints[k, 2]]))
        w = np.zeros(NUM_JOINTS)
        w[k] = 1.0
        weights.append(w)
    v_template = np.asarray(verts, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    j_reg = np.zeros((NUM_JOINTS, n_verts))
    j_reg[np.arange(NUM_JOINTS), np.arange(NUM_JOINTS)] = 1.0

    def nearest(p):
        return int(np.argmin(np.linalg.norm(v_template[NUM_JOINTS:] - p, axis=1))) + NUM_JOINTS

    head, jaw = joints[HEAD], joints[JAW]
    extra = {
        "nose": nearest(jaw + (0, 0.05, 0.08)), "reye": 24, "leye": 23,
        "rear": nearest(head + (-0.1, 0.04, 0)), "lear": nearest(head + (0.1, 0.04, 0)),
        "LBigToe": nearest(joints[10] + (-0.02, 0, 0.07)), "LSmallToe": nearest(joints[10] + (0.03, 0, 0.07)),
        "LHeel": nearest(joints[7] + (0, -0.04, -0.04)), "RBigToe": nearest(joints[11] + (0.02, 0, 0.07)),
        "RSmallToe": nearest(joints[11] + (-0.03, 0, 0.07)), "RHeel": nearest(joints[8] + (0, -0.04, -0.04)),
    }
    for side, base_j in (("l", 25), ("r", 40)):
        for name, f in (("thumb", 4), ("index", 0), ("middle", 1), ("ring", 3), ("pinky", 2)):
            tip = base_j + 3 * f + 2
            extra[side + name] = nearest(joints[tip] + 0.8 * (joints[tip] - joints[int(PARENTS[tip])]))
    extra_ids = np.array([extra[n] for n in EXTRA_KEYPOINTS], dtype=np.int64)
    return v_template, np.asarray(faces, dtype=np.int64), weights, j_reg, extra_ids


def write_synthetic_smplx(path, n_verts: int = 1000, seed: int = 0) -> pathlib.Path:
    """Write a small SMPL-X model in the official format; returns the file written.

    ``path`` is a folder (``SMPLX_NEUTRAL.npz`` is written in it) or a file name ending in ``.npz`` or
    ``.pkl`` (the two official containers)."""
    path = pathlib.Path(path)
    if path.suffix not in (".npz", ".pkl"):
        path.mkdir(parents=True, exist_ok=True)
        path = path / MODEL_FILES[0]
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    v_template, faces, weights, j_reg, extra_ids = synthetic_layout(n_verts)
    V = n_verts
    part = weights.argmax(1)
    face_mask = np.isin(part, FACE_JOINTS)
    centred = v_template - v_template[PELVIS]
    shapedirs = np.zeros((V, 3, 400))
    shapedirs[:, 1, 0] = 0.06 * centred[:, 1]  # beta 0: height
    shapedirs[:, 0, 1] = 0.08 * centred[:, 0]  # beta 1: width
    shapedirs[:, 2, 1] = 0.08 * centred[:, 2]
    shapedirs[:, :, 2:300] = 0.004 * rng.standard_normal((V, 3, 298)) / np.arange(1, 299) ** 0.5
    expr = 0.004 * rng.standard_normal((V, 3, 100))
    shapedirs[:, :, 300:] = expr * face_mask[:, None, None]  # expressions move only the face
    # pose correctives act near the joint that bends (on the vertices skinned to it or to its parent)
    near = (weights[:, 1:] > 0) | (weights[:, PARENTS[1:]] > 0)  # (V, 54)
    posedirs = 0.002 * rng.standard_normal((V, 3, NUM_JOINTS - 1, 9)) * near[:, None, :, None]
    posedirs = posedirs.reshape(V, 3, NUM_POSE_BASIS)
    comps = [np.linalg.qr(rng.standard_normal((45, 45)))[0].T for _ in range(2)]
    face_faces = np.flatnonzero(face_mask[faces].all(1))
    lmk_faces_idx = rng.choice(face_faces, 51).astype(np.int64)
    bary = rng.dirichlet(np.ones(3), 51)
    dyn_faces = rng.choice(face_faces, (79, 17)).astype(np.int64)
    dyn_bary = rng.dirichlet(np.ones(3), (79, 17))
    kintree = np.stack([PARENTS, np.arange(NUM_JOINTS)]).astype(np.int64)
    kintree[0, 0] = 4294967295  # as in the official files (uint32 -1)
    vt = rng.random((V, 2))
    data = {
        "v_template": v_template, "f": faces.astype(np.uint32), "J_regressor": j_reg,
        "kintree_table": kintree, "weights": weights,
        "posedirs": posedirs.astype(np.float32), "shapedirs": shapedirs.astype(np.float32),  # 11 MB, not 22
        "hands_componentsl": comps[0], "hands_componentsr": comps[1],
        "hands_meanl": 0.1 * rng.standard_normal(45), "hands_meanr": 0.1 * rng.standard_normal(45),
        "hands_coeffsl": 0.3 * rng.standard_normal((12, 45)), "hands_coeffsr": 0.3 * rng.standard_normal((12, 45)),
        "lmk_faces_idx": lmk_faces_idx, "lmk_bary_coords": bary,
        "dynamic_lmk_faces_idx": dyn_faces, "dynamic_lmk_bary_coords": dyn_bary,
        "vt": vt, "ft": faces.astype(np.uint32),
        "binaryhpe_extra_vertex_ids": extra_ids,
    }
    if path.suffix == ".npz":
        with open(path, "wb") as fh:
            np.savez(fh, **data)
    else:
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    return path


# ---------------------------------------------------------------------------------------------------------
# finding and checking the user's files
# ---------------------------------------------------------------------------------------------------------

def _load_model_dict(file: pathlib.Path) -> dict:
    try:
        if file.suffix == ".npz":
            with np.load(file, allow_pickle=True) as z:
                return {k: z[k] for k in z.files}
        with open(file, "rb") as fh:
            d = pickle.load(fh, encoding="latin1")
    except Exception as e:  # noqa: BLE001 -- any unreadable file is the user's to fix
        raise BinaryHPEError(f"SMPL-X model file {file}: cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise BinaryHPEError(f"SMPL-X model file {file}: expected a dict of arrays, found {type(d).__name__}")
    return d


def check_smplx_data(d: dict, where: str) -> None:
    """Check the keys and array shapes ``smplx.SMPLX`` reads; one error naming every problem."""
    problems = []
    required = ("v_template", "f", "J_regressor", "kintree_table", "weights", "posedirs", "shapedirs",
                "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr",
                "lmk_faces_idx", "lmk_bary_coords")
    missing = [k for k in required if k not in d]
    if missing:
        problems.append("missing key(s) " + ", ".join(repr(k) for k in missing))

    def shape(k):
        a = d.get(k)
        if a is None:
            return None
        if hasattr(a, "toarray") and not isinstance(a, np.ndarray):  # scipy sparse J_regressor (SMPL pkl)
            return tuple(a.shape)
        return tuple(np.shape(np.asarray(a)))

    vt = shape("v_template")
    V = vt[0] if vt and len(vt) == 2 else None
    if vt is not None and (len(vt) != 2 or vt[1] != 3):
        problems.append(f"'v_template' has shape {vt}, expected (V, 3)")
    expect = {
        "f": lambda s: len(s) == 2 and s[1] == 3, "J_regressor": lambda s: s == (NUM_JOINTS, V),
        "kintree_table": lambda s: s == (2, NUM_JOINTS), "weights": lambda s: s == (V, NUM_JOINTS),
        "posedirs": lambda s: s == (V, 3, NUM_POSE_BASIS),
        "shapedirs": lambda s: len(s) == 3 and s[:2] == (V, 3) and s[2] >= 20,
        "hands_componentsl": lambda s: s == (45, 45) or (len(s) == 2 and s[1] == 45),
        "hands_componentsr": lambda s: s == (45, 45) or (len(s) == 2 and s[1] == 45),
        "hands_meanl": lambda s: s == (45,), "hands_meanr": lambda s: s == (45,),
        "lmk_faces_idx": lambda s: len(s) == 1, "lmk_bary_coords": lambda s: len(s) == 2 and s[1] == 3,
    }
    text = {"f": "(F, 3)", "J_regressor": f"({NUM_JOINTS}, V={V})", "kintree_table": f"(2, {NUM_JOINTS})",
            "weights": f"(V={V}, {NUM_JOINTS})", "posedirs": f"(V={V}, 3, {NUM_POSE_BASIS})",
            "shapedirs": f"(V={V}, 3, >=20 shape+expression columns)", "hands_componentsl": "(N, 45)",
            "hands_componentsr": "(N, 45)", "hands_meanl": "(45,)", "hands_meanr": "(45,)",
            "lmk_faces_idx": "(L,)", "lmk_bary_coords": "(L, 3)"}
    if V is not None:
        for k, ok in expect.items():
            s = shape(k)
            if s is not None and not ok(s):
                problems.append(f"{k!r} has shape {s}, expected {text[k]}")
        if "f" in d and shape("f") and len(shape("f")) == 2 and np.asarray(d["f"]).size:
            fmax = int(np.asarray(d["f"]).max())
            if fmax >= V:
                problems.append(f"'f' indexes vertex {fmax} but 'v_template' has only {V} vertices")
        if V != OFFICIAL_NUM_VERTS and "binaryhpe_extra_vertex_ids" not in d:
            problems.append(f"the mesh has {V} vertices, not the official {OFFICIAL_NUM_VERTS}, and no "
                            "'binaryhpe_extra_vertex_ids' key gives its 21 extra keypoint vertices")
    if problems:
        raise BinaryHPEError(f"SMPL-X model file {where}: " + "; ".join(problems))


def resolve_smplx_path(path=None) -> pathlib.Path:
    """The SMPL-X model file from ``path`` or ``$BINARYHPE_SMPLX_DIR``, checked; errors name what is missing."""
    src = "path argument"
    if path is None:
        path = os.environ.get(ENV_VAR)
        src = f"${ENV_VAR}"
        if not path:
            raise BinaryHPEError(
                f"no SMPL-X model given: pass the path to the folder holding {' or '.join(MODEL_FILES)} (the "
                f"licensed files from https://smpl-x.is.tue.mpg.de) or set the environment variable {ENV_VAR}")
    p = pathlib.Path(path).expanduser()
    if p.is_dir():
        cands = [p / n for n in MODEL_FILES] + [p / "smplx" / n for n in MODEL_FILES]
        found = [c for c in cands if c.is_file()]
        if not found:
            raise BinaryHPEError(
                f"SMPL-X folder {p} ({src}): missing file: none of "
                f"{', '.join(str(c.relative_to(p)) for c in cands)} exists (found: "
                f"{', '.join(sorted(x.name for x in p.iterdir())[:10]) or 'an empty folder'})")
        file = found[0]
    elif p.is_file():
        file = p
    else:
        raise BinaryHPEError(f"SMPL-X model path {p} ({src}) does not exist: missing file")
    if file.suffix not in (".npz", ".pkl"):
        raise BinaryHPEError(f"SMPL-X model file {file}: expected a .npz or .pkl file")
    check_smplx_data(_load_model_dict(file), str(file))
    return file


# ---------------------------------------------------------------------------------------------------------
# the layer
# ---------------------------------------------------------------------------------------------------------

def part_vertex_ids(weights: np.ndarray):
    """Left hand, right hand and face vertex indices from the skinning weights (the joint of largest weight)."""
    part = np.asarray(weights).argmax(1)
    return (np.flatnonzero(np.isin(part, LEFT_HAND_JOINTS)), np.flatnonzero(np.isin(part, RIGHT_HAND_JOINTS)),
            np.flatnonzero(np.isin(part, FACE_JOINTS)))


class SMPLXLayer(nn.Module):
    """SMPL-X (neutral, ``use_pca=False``, flat hand mean) through the ``smplx`` package.

    ``forward(params)`` takes the contract's keys (``root_pose`` (B,3), ``body_pose`` (B,63), ``lhand_pose``
    (B,45), ``rhand_pose`` (B,45), ``jaw_pose`` (B,3), ``expr`` (B,num_expression), ``shape``
    (B,num_betas); missing keys are zeros, ``cam_trans`` is ignored: it is a camera parameter) and returns
    ``vertices`` (B,V,3), ``joints`` (B,55,3: the kinematic joints, ordered as ``JOINT_NAMES`` / ``parents``)
    and ``keypoints`` (B,127,3: joints, the 21 extra vertex keypoints, the 51 face landmarks), in the model
    frame without translation. ``root_relative=True`` subtracts the pelvis joint from all three.
    """

    def __init__(self, path=None, num_betas: int = 10, num_expression: int = 10):
        super().__init__()
        import smplx

        file = resolve_smplx_path(path)
        data = _load_model_dict(file)
        self.file = file
        self.model = smplx.SMPLX(str(file), ext=file.suffix[1:], gender="neutral", use_pca=False,
                                 flat_hand_mean=True, num_betas=num_betas, num_expression_coeffs=num_expression,
                                 batch_size=1)
        self.num_betas = self.model.num_betas
        self.num_expression = self.model.num_expression_coeffs
        V = self.model.v_template.shape[0]
        if "binaryhpe_extra_vertex_ids" in data:
            ids = torch.as_tensor(np.asarray(data["binaryhpe_extra_vertex_ids"], dtype=np.int64))
            self.model.vertex_joint_selector.extra_joints_idxs = ids
        self.faces = np.asarray(data["f"], dtype=np.int64)
        self.parents = PARENTS.copy()
        self.num_verts = V
        lh, rh, face = part_vertex_ids(data["weights"])
        hand_file, face_file = file.parent / HAND_IDS_FILE, file.parent / FACE_IDS_FILE
        if hand_file.is_file():
            with open(hand_file, "rb") as fh:
                ids = pickle.load(fh, encoding="latin1")
            lh, rh = np.asarray(ids["left_hand"]), np.asarray(ids["right_hand"])
        if face_file.is_file():
            face = np.asarray(np.load(face_file))
        self.hand_verts_left, self.hand_verts_right, self.face_verts = lh, rh, face

    def forward(self, params: dict, root_relative: bool = False) -> dict:
        dims = dict(PARAM_DIMS, shape=self.num_betas, expr=self.num_expression)
        B = None
        for k, v in params.items():
            if k in dims:
                if not torch.is_tensor(v) or v.dim() != 2 or v.shape[1] != dims[k]:
                    got = tuple(v.shape) if hasattr(v, "shape") else type(v).__name__
                    raise BinaryHPEError(f"SMPLXLayer: parameter {k!r} has shape {got}, expected (B, {dims[k]})")
                if B is not None and v.shape[0] != B:
                    raise BinaryHPEError(f"SMPLXLayer: parameter {k!r} has batch size {v.shape[0]}, others {B}")
                B = v.shape[0]
        if B is None:
            raise BinaryHPEError(f"SMPLXLayer: no SMPL-X parameter given (keys: {', '.join(dims)})")
        ref = next(v for k, v in params.items() if k in dims)
        z = {k: params[k].to(self.model.v_template.dtype) if k in params else
             torch.zeros(B, d, dtype=self.model.v_template.dtype, device=ref.device) for k, d in dims.items()}
        eye = torch.zeros(B, 3, dtype=z["jaw_pose"].dtype, device=ref.device)
        out = self.model(betas=z["shape"], global_orient=z["root_pose"], body_pose=z["body_pose"],
                         left_hand_pose=z["lhand_pose"], right_hand_pose=z["rhand_pose"], jaw_pose=z["jaw_pose"],
                         leye_pose=eye, reye_pose=eye, expression=z["expr"], transl=eye)
        verts, kps = out.vertices, out.joints
        if root_relative:
            root = kps[:, :1]
            verts, kps = verts - root, kps - root
        return {"vertices": verts, "joints": kps[:, :NUM_JOINTS], "keypoints": kps}


# The index layout of the default synthetic model (n_verts=1000): vertex arrays of the part metrics. A loaded
# layer's own ``hand_verts_left`` / ``hand_verts_right`` / ``face_verts`` are authoritative for its mesh.
HAND_VERTS_LEFT, HAND_VERTS_RIGHT, FACE_VERTS = part_vertex_ids(synthetic_layout(1000)[2])
