"""Tiny generated copies of Human3.6M, MSCOCO whole-body, MPII, EHF and AGORA in Hand4Whole's layouts.

Every image is grey with the annotated body box painted red, a green block centred on the left wrist, a blue
block filling the left-hand box and a yellow block filling the face box, so a test can check that the
adapters' crops and coordinates land on the right pixels. Each writer returns what it wrote (boxes, joints,
parameters) for the tests to compare against.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
from PIL import Image

GREY, RED, GREEN, BLUE, YELLOW = (90, 90, 90), (220, 30, 30), (30, 200, 40), (30, 40, 220), (230, 220, 30)
PALETTE = {"grey": GREY, "red": RED, "green": GREEN, "blue": BLUE, "yellow": YELLOW}


def colour_name(rgb) -> str:
    rgb = np.asarray(rgb, float)
    return min(PALETTE, key=lambda k: np.abs(rgb - PALETTE[k]).sum())


def rot(axis, ang) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(ang) * K + (1 - np.cos(ang)) * K @ K


def paint(path, size, body, wrist=None, lhand=None, face=None, fmt=None):
    """size (W, H); boxes (x, y, w, h) in pixels; wrist (u, v)."""
    W, H = size
    a = np.zeros((H, W, 3), np.uint8)
    a[:] = GREY

    def fill(b, c):
        x, y, w, h = (int(round(v)) for v in b)
        a[max(y, 0):y + h, max(x, 0):x + w] = c

    fill(body, RED)
    if lhand is not None:
        fill(lhand, BLUE)
    if face is not None:
        fill(face, YELLOW)
    if wrist is not None:
        fill((wrist[0] - 3, wrist[1] - 3, 6, 6), GREEN)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, quality=98) if path.suffix == ".jpg" else Image.fromarray(a).save(path)


def _dump(path, obj):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _params(rng, hands=True):
    p = {"root_pose": rng.normal(0, 0.2, 3), "body_pose": rng.normal(0, 0.1, 63), "shape": rng.normal(0, 0.5, 10)}
    if hands:
        p.update(lhand_pose=rng.normal(0, 0.1, 45), rhand_pose=rng.normal(0, 0.1, 45), jaw_pose=rng.normal(0, 0.1, 3),
                 expr=rng.normal(0, 0.3, 10))
    return {k: v.tolist() for k, v in p.items()}


# body box with the 3:4 aspect of a (64, 48) input: the crop is this box scaled 1.25 about its centre
BODY = (50.0, 20.0, 60.0, 80.0)
SIZE = (200, 160)


def write_human36m(root) -> dict:
    root = pathlib.Path(root)
    rng = np.random.default_rng(0)
    f, c = [1000.0, 1000.0], [100.0, 80.0]
    cams = {"1": {"R": np.eye(3).tolist(), "t": [0.0, 0.0, 0.0], "f": f, "c": c},
            "2": {"R": rot((0, 1, 0), np.pi / 2).tolist(), "t": [0.0, 0.0, 4000.0], "f": f, "c": c}}
    images, anns, joints, smplx, truth = [], [], {"2": {"1": {}}}, {"2": {"1": {}}}, []
    for i, (frame, cam) in enumerate(((0, "1"), (5, "2"), (3, "1"))):  # frame 3 is not sampled (every 5th)
        jc = np.zeros((17, 3))
        jc[:, 2] = 4.0
        jc[:, :2] = rng.uniform(-0.3, 0.3, (17, 2))
        jc[0] = (0.0, 0.0, 4.0)  # pelvis on the optical axis
        jc[13] = (-0.1, -0.2, 3.9)  # left wrist
        R, t = np.asarray(cams[cam]["R"]), np.asarray(cams[cam]["t"])
        jw = (jc * 1000 - t) @ R  # world mm: R^T (X_cam - t)
        uv = jc[:, :2] / jc[:, 2:] * 1000 + c
        name = f"s_01_act_02_subact_01_ca_0{cam}/s_01_act_02_subact_01_ca_0{cam}_{frame:06d}.jpg"
        paint(root / "images" / name, SIZE, BODY, wrist=uv[13])
        images.append({"id": i, "file_name": name, "width": SIZE[0], "height": SIZE[1], "subject": 1,
                       "action_idx": 2, "subaction_idx": 1, "cam_idx": int(cam), "frame_idx": frame})
        anns.append({"id": i, "image_id": i, "bbox": list(BODY), "keypoints_vis": [True] * 17})
        joints["2"]["1"][str(frame)] = jw.tolist()
        p = _params(rng, hands=False)
        p["trans"] = [0.0, 0.2, 0.0]
        smplx["2"]["1"][str(frame)] = p
        truth.append({"joint_cam": jc, "uv": uv, "R": R, "params": p, "frame": frame})
    a = root / "annotations"
    _dump(a / "Human36M_subject1_data.json", {"images": images, "annotations": anns})
    _dump(a / "Human36M_subject1_camera.json", cams)
    _dump(a / "Human36M_subject1_joint_3d.json", joints)
    _dump(a / "Human36M_subject1_SMPLX_NeuralAnnot.json", smplx)
    for s in (5, 6, 7, 8):  # the other training subjects, present but empty
        _dump(a / f"Human36M_subject{s}_data.json", {"images": [], "annotations": []})
        for kind in ("camera", "joint_3d", "SMPLX_NeuralAnnot"):
            _dump(a / f"Human36M_subject{s}_{kind}.json", {})
    return {"samples": truth[:2], "f": f, "c": c}


def _coco_body(rng, wrist):
    kp = np.zeros((17, 3))
    kp[:, :2] = rng.uniform(60, 100, (17, 2))
    kp[:, 2] = 2
    kp[9, :2] = wrist  # left wrist
    kp[3, 2] = 0  # left ear not annotated
    return kp


def write_mscoco(root) -> dict:
    root = pathlib.Path(root)
    rng = np.random.default_rng(1)
    images, anns, smplx, truth = [], [], {}, []
    for i in range(2):
        wrist = (70.0 + 10 * i, 60.0)
        lhand = (60.0 + 10 * i, 40.0, 14.0, 12.0)
        face = (85.0, 24.0, 16.0, 14.0)
        name = f"00000000000{i}.jpg"
        paint(root / "images" / "train2017" / name, SIZE, BODY, wrist=wrist, lhand=lhand, face=face)
        body = _coco_body(rng, wrist)
        lh = np.zeros((21, 3))
        lh[:, :2] = rng.uniform(62, 72, (21, 2))
        lh[:, 2] = 1
        ann_id = 100 + i
        images.append({"id": i, "file_name": name, "width": SIZE[0], "height": SIZE[1]})
        anns.append({"id": ann_id, "image_id": i, "bbox": list(BODY), "iscrowd": 0, "num_keypoints": 16,
                     "keypoints": body.reshape(-1).tolist(), "foot_kpts": [0.0] * 18,
                     "lefthand_kpts": lh.reshape(-1).tolist(), "righthand_kpts": [0.0] * 63,
                     "face_kpts": [0.0] * 204, "lefthand_box": list(lhand), "righthand_box": [0, 0, 0, 0],
                     "face_box": list(face), "lefthand_valid": i == 0, "righthand_valid": False,
                     "face_valid": True, "foot_valid": False})
        p = _params(rng)
        p.update(trans=[0.05, 0.1, 5.0], lhand_valid=i == 0, rhand_valid=False, face_valid=True)
        smplx[str(ann_id)] = {"smplx_param": p, "cam_param": {"focal": [1100.0, 1100.0], "princpt": [100.0, 80.0]}}
        truth.append({"body": body, "lhand_kpts": lh, "lhand": lhand, "face": face, "wrist": wrist, "params": p,
                      "ann_id": ann_id})
    # a crowd annotation the adapter skips
    anns.append({"id": 999, "image_id": 0, "bbox": list(BODY), "iscrowd": 1, "num_keypoints": 0,
                 "keypoints": [0.0] * 51})
    _dump(root / "annotations" / "coco_wholebody_train_v1.0.json", {"images": images, "annotations": anns})
    _dump(root / "annotations" / "MSCOCO_train_SMPLX.json", smplx)
    return {"samples": truth}


def write_mpii(root) -> dict:
    root = pathlib.Path(root)
    rng = np.random.default_rng(2)
    images, anns, smplx, truth = [], [], {}, []
    for i in range(2):
        wrist = (95.0, 50.0 + 10 * i)
        kp = np.zeros((16, 3))
        kp[:, :2] = rng.uniform(60, 100, (16, 2))
        kp[:, 2] = 1
        kp[15, :2] = wrist  # MPII 15 = left wrist
        kp[9, 2] = 0
        name = f"0{i}5172843.jpg"
        paint(root / "data" / "images" / name, SIZE, BODY, wrist=wrist)
        images.append({"id": i, "file_name": name, "width": SIZE[0], "height": SIZE[1]})
        anns.append({"id": 7 + i, "image_id": i, "bbox": list(BODY), "keypoints": kp.reshape(-1).tolist()})
        p = _params(rng)
        p.update(trans=[0.0, 0.0, 6.0], lhand_valid=False, rhand_valid=False, face_valid=False)
        if i == 0:  # the second person has no pseudo-GT: smplx_valid 0
            smplx[str(7 + i)] = {"smplx_param": p, "cam_param": {"focal": [1500.0, 1500.0], "princpt": [100.0, 80.0]}}
        truth.append({"kp": kp, "wrist": wrist, "params": p if i == 0 else None})
    _dump(root / "data" / "annotations" / "train.json", {"images": images, "annotations": anns})
    _dump(root / "data" / "annotations" / "MPII_train_SMPLX_NeuralAnnot.json", smplx)
    return {"samples": truth}


def write_ply(path, v, faces=None, binary=False):
    path = pathlib.Path(path)
    head = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0", f"element vertex {len(v)}",
            "property float x", "property float y", "property float z"]
    if faces is not None:
        head += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    head.append("end_header")
    if binary:
        body = np.asarray(v, "<f4").tobytes()
        path.write_bytes(("\n".join(head) + "\n").encode() + body)
        return
    lines = [f"{a:.6f} {b:.6f} {c:.6f}" for a, b, c in v]
    if faces is not None:
        lines += [f"3 {a} {b} {c}" for a, b, c in faces]
    path.write_text("\n".join(head + lines) + "\n")


def write_ehf(root, meshes) -> dict:
    """``meshes``: one (V,3) ground-truth mesh per image (world frame)."""
    root = pathlib.Path(root)
    images, anns, truth = [], [], []
    for i, mesh in enumerate(meshes):
        n = f"{i + 1:02d}"
        lhand, face = (60.0, 40.0, 14.0, 12.0), (85.0, 24.0, 16.0, 14.0)
        paint(root / "data" / f"{n}_img.jpg", SIZE, BODY, lhand=lhand, face=face)
        write_ply(root / "data" / f"{n}_align.ply", mesh, binary=i == 1)
        images.append({"id": i, "file_name": f"{n}_img.jpg", "width": SIZE[0], "height": SIZE[1]})
        anns.append({"id": i, "image_id": i, "body_bbox": list(BODY), "lefthand_bbox": list(lhand),
                     "righthand_bbox": [120.0, 40.0, 10.0, 10.0], "face_bbox": list(face)})
        truth.append({"lhand": lhand, "face": face})
    _dump(root / "data" / "EHF.json", {"images": images, "annotations": anns})
    return {"samples": truth}


def write_agora(root) -> dict:
    """Validation split; images at 1280x720, annotations in 3840x2160 pixels as AGORA's."""
    root = pathlib.Path(root)
    rng = np.random.default_rng(4)
    images, anns, truth = [], [], []
    body_small, lhand_small = (500.0, 200.0, 150.0, 200.0), (510.0, 260.0, 30.0, 24.0)
    face_small = (560.0, 210.0, 30.0, 30.0)
    for i in range(2):
        name = f"ag_trainset_x_{i:05d}_1280x720.png"
        paint(root / "data" / "images_1280x720" / name, (1280, 720), body_small, lhand=lhand_small, face=face_small)
        p = {"global_orient": rng.normal(0, 0.2, 3).tolist(), "body_pose": rng.normal(0, 0.1, 63).tolist(),
             "betas": rng.normal(0, 0.5, 11).tolist(), "left_hand_pose": rng.normal(0, 0.1, 45).tolist(),
             "right_hand_pose": rng.normal(0, 0.1, 45).tolist(), "jaw_pose": rng.normal(0, 0.1, 3).tolist(),
             "expression": rng.normal(0, 0.3, 10).tolist(), "transl": [0.1, 0.3, 8.0]}
        _dump(root / "data" / "smplx" / f"{i}.json", p)
        _dump(root / "data" / "cam" / f"{i}.json", {"focal": [3000.0, 3000.0], "princpt": [1920.0, 1080.0]})
        big = [3 * v for v in body_small]
        images.append({"id": i, "file_name_1280x720": f"images_1280x720/{name}",
                       "file_name_3840x2160": f"3840x2160/validation/{name}", "width": 3840, "height": 2160})
        anns.append({"id": i, "image_id": i, "person_id": 0, "is_valid": True, "bbox": big,
                     "lhand_bbox": [3 * v for v in lhand_small], "rhand_bbox": None,
                     "face_bbox": [3 * v for v in face_small], "smplx_param_path": f"smplx/{i}.json",
                     "cam_param_path": f"cam/{i}.json", "gender": "neutral", "kid": False})
        truth.append({"params": p, "body": body_small, "lhand": lhand_small, "face": face_small})
    anns.append({"id": 9, "image_id": 0, "person_id": 1, "is_valid": False, "bbox": [0, 0, 10, 10],
                 "smplx_param_path": "smplx/0.json", "cam_param_path": "cam/0.json"})
    _dump(root / "data" / "AGORA_validation_SMPLX.json", {"images": images, "annotations": anns})
    return {"samples": truth}
