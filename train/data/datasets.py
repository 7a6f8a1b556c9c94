"""Adapters for the data sets the paper trains and tests on, in the layouts Hand4Whole's loaders read.

No data can be downloaded here: each adapter reads what the user has, in the folder layout and annotation
JSON names / fields of Hand4Whole's public release (``data/<NAME>/`` there; pass that folder as ``root``):

- ``human36m``: ``annotations/Human36M_subject{S}_data.json`` (COCO style; images carry ``subject``,
  ``action_idx``, ``subaction_idx``, ``cam_idx``, ``frame_idx``), ``..._camera.json`` (``R``, ``t`` mm, ``f``,
  ``c`` per camera), ``..._joint_3d.json`` (17 world joints, mm), ``..._SMPLX_NeuralAnnot.json`` (NeuralAnnot
  pseudo-GT, world frame); ``images/<file_name>``. Train subjects 1 5 6 7 8 (every 5th frame), test 9 11
  (every 64th frame, frontal camera 4), as Hand4Whole.
- ``mscoco``: ``annotations/coco_wholebody_{train,val}_v1.0.json`` (COCO-WholeBody: ``keypoints``,
  ``foot_kpts``, ``lefthand_kpts``, ``righthand_kpts``, ``face_box``, ``lefthand_box``, ``righthand_box``,
  their ``*_valid`` flags), ``annotations/MSCOCO_train_SMPLX.json`` (NeuralAnnot: ``{ann_id: {"smplx_param",
  "cam_param"}}``, camera frame); ``images/{train2017,val2017}/<file_name>``.
- ``mpii``: ``data/annotations/train.json`` (COCO style, 16 MPII joints), ``data/annotations/
  MPII_train_SMPLX_NeuralAnnot.json`` (as MSCOCO's); ``data/images/<file_name>``.
- ``ehf`` (evaluation): ``data/EHF.json`` (``body_bbox``, ``lefthand_bbox``, ``righthand_bbox``,
  ``face_bbox``), ``data/NN_img.jpg``, ground-truth meshes ``data/NN_align.ply`` (world frame; EHF's camera
  rotation is applied).
- ``agora`` (evaluation; its train split too): ``data/AGORA_{train,validation}_SMPLX.json`` (images with
  ``file_name_1280x720``; annotations with ``bbox``, ``lhand_bbox``, ``rhand_bbox``, ``face_bbox`` in 3840x2160
  pixels, ``is_valid``, ``smplx_param_path``, ``cam_param_path``); the per-person SMPL-X JSON
  (``global_orient``, ``body_pose``, ``betas``, ``left_hand_pose``, ``right_hand_pose``, ``jaw_pose``,
  ``expression``, ``transl``, camera frame) and camera JSON (``focal``, ``princpt``, 3840x2160 pixels).

Every adapter returns the same keys (so data sets can be mixed in one loader), following the shared contract:
``img`` (3,H,W) in [0,1], the body crop (the annotated body box widened to the input aspect ratio and scaled
by 1.25, as Hand4Whole's ``process_bbox``) resized to ``input_size``; the SMPL-X keys (``root_pose`` ...
``shape``, camera frame, axis-angle, zeros where unknown) and ``cam_trans`` (the pelvis in the crop's virtual
camera: focal ``focal`` image heights, principal point at the crop centre; valid only when the pelvis depth is
known); ``joint_img`` (J,3): the first ``n_joints`` SMPL-X joints in crop units (z = (root-relative depth /
``depth_range`` + 1) / 2, 0.5 for 2D-only data); ``joint_valid`` (J,1) (annotated and inside the crop);
``joints_3d`` (J,3) root-relative metres with ``joints_3d_valid`` (J,1); ``boxes`` (3,4) left hand, right
hand, face as (cx,cy,w,h) in crop units with ``box_valid`` (3,1); flags (1,) ``smplx_valid``, ``lhand_valid``,
``rhand_valid``, ``face_valid``, ``cam_valid``, ``is_3d``. With an SMPL-X ``layer`` the samples also carry
``vertices`` (V,3) root-relative metres with ``vertices_valid`` (1,), and data sets with SMPL-X parameters get
``joints_3d`` from them.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
import torch
from torch.utils.data import Dataset

from binaryhpe import BinaryHPEError

NJ = 55  # SMPL-X joint layout of joint_img / joints_3d (the first n_joints are returned)
SMPLX_DIMS = {"root_pose": 3, "body_pose": 63, "lhand_pose": 45, "rhand_pose": 45, "jaw_pose": 3, "expr": 10,
              "shape": 10}
SX = {n: i for i, n in enumerate((
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "jaw",
    "left_eye", "right_eye"))}
# SMPL-X finger joints 25..39 (left) / 40..54 (right): index, middle, pinky, ring, thumb x 3 -> COCO hand kpts
_COCO_HAND = [5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3]

# Human3.6M: Pelvis R_Hip R_Knee R_Ankle L_Hip L_Knee L_Ankle Torso Neck Head Head_top L_Shoulder L_Elbow
# L_Wrist R_Shoulder R_Elbow R_Wrist (Torso, Head and Head_top have no SMPL-X joint)
H36M_TO_SX = {0: "pelvis", 1: "right_hip", 2: "right_knee", 3: "right_ankle", 4: "left_hip", 5: "left_knee",
              6: "left_ankle", 8: "neck", 11: "left_shoulder", 12: "left_elbow", 13: "left_wrist",
              14: "right_shoulder", 15: "right_elbow", 16: "right_wrist"}
COCO_TO_SX = {1: "left_eye", 2: "right_eye", 5: "left_shoulder", 6: "right_shoulder", 7: "left_elbow",
              8: "right_elbow", 9: "left_wrist", 10: "right_wrist", 11: "left_hip", 12: "right_hip",
              13: "left_knee", 14: "right_knee", 15: "left_ankle", 16: "right_ankle"}
MPII_TO_SX = {0: "right_ankle", 1: "right_knee", 2: "right_hip", 3: "left_hip", 4: "left_knee", 5: "left_ankle",
              6: "pelvis", 10: "right_wrist", 11: "right_elbow", 12: "right_shoulder", 13: "left_shoulder",
              14: "left_elbow", 15: "left_wrist"}
EHF_CAM_R = (-2.98747896, 0.01172457, -0.05704687)  # EHF's camera rotation (axis-angle), as Hand4Whole


# ----------------------------------------------------------------------------------------------------------
# small helpers

def rodrigues(aa) -> np.ndarray:
    aa = np.asarray(aa, dtype=np.float64).reshape(3)
    th = np.linalg.norm(aa)
    if th < 1e-12:
        return np.eye(3)
    k = aa / th
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(th) * K + (1 - math.cos(th)) * K @ K


def rotmat_to_aa(R) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    c = np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)
    th = math.acos(c)
    if th < 1e-8:
        return np.zeros(3)
    if th > math.pi - 1e-5:  # near pi: the axis from the symmetric part
        M = (R + np.eye(3)) / 2
        i = int(np.argmax(np.diag(M)))
        k = M[:, i] / math.sqrt(max(M[i, i], 1e-12))
        return k / np.linalg.norm(k) * th
    k = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2 * math.sin(th))
    return k * th


def read_ply_vertices(path: pathlib.Path) -> np.ndarray:
    """Vertices of a PLY mesh (ASCII or binary little-endian with float x, y, z first)."""
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise BinaryHPEError(f"EHF mesh {path}: not a PLY file")
    header = data[:end].decode("ascii", "replace").splitlines()
    body = data[data.index(b"\n", end) + 1:]
    fmt = next((ln.split()[1] for ln in header if ln.startswith("format")), "ascii")
    n = next((int(ln.split()[2]) for ln in header if ln.startswith("element vertex")), None)
    if n is None:
        raise BinaryHPEError(f"EHF mesh {path}: no 'element vertex' in the PLY header")
    props, in_vertex = [], False
    for ln in header:
        if ln.startswith("element"):
            in_vertex = ln.startswith("element vertex")
        elif ln.startswith("property") and in_vertex:
            props.append(ln.split()[1])
    if fmt == "ascii":
        rows = body.decode("ascii").split("\n")[:n]
        return np.array([[float(x) for x in r.split()[:3]] for r in rows], dtype=np.float64)
    if fmt != "binary_little_endian":
        raise BinaryHPEError(f"EHF mesh {path}: PLY format {fmt!r} is not supported")
    sizes = {"float": "f4", "float32": "f4", "double": "f8", "float64": "f8", "uchar": "u1", "uint8": "u1",
             "int": "i4", "int32": "i4", "uint": "u4", "short": "i2", "ushort": "u2", "char": "i1"}
    dt = np.dtype([(f"p{i}", "<" + sizes[t]) for i, t in enumerate(props)])
    a = np.frombuffer(body[: n * dt.itemsize], dtype=dt)
    return np.stack([a["p0"], a["p1"], a["p2"]], 1).astype(np.float64)


def process_bbox(bbox, aspect: float, scale: float = 1.25):
    """Hand4Whole's body box: (x, y, w, h) widened to ``aspect`` = W/H and scaled about its centre."""
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        return None
    cx, cy = x + w / 2, y + h / 2
    if w > aspect * h:
        h = w / aspect
    else:
        w = h * aspect
    w, h = w * scale, h * scale
    return np.array([cx - w / 2, cy - h / 2, w, h])


class _Layout:
    """Files of one data set, found or reported together."""

    def __init__(self, name: str, root):
        self.name = name
        self.root = pathlib.Path(root).expanduser()
        if not self.root.is_dir():
            raise BinaryHPEError(f"{name} dataset: root folder {self.root} does not exist")

    def need(self, rel: str, alt: str | None = None) -> pathlib.Path:
        for r in (rel, alt):
            if r is not None and (self.root / r).is_file():
                return self.root / r
        parent = (self.root / rel).parent
        near = self.root / rel
        while not near.parent.is_dir() and near != self.root:
            near = near.parent
        listing = sorted(p.name for p in near.parent.iterdir())[:12] if near.parent.is_dir() else []
        raise BinaryHPEError(
            f"{self.name} dataset at {self.root}: expected file {rel} (Hand4Whole layout); found in "
            f"{near.parent if near.parent.is_dir() else parent}: {', '.join(listing) or 'nothing'}")

    def json(self, rel: str, alt: str | None = None):
        path = self.need(rel, alt)
        try:
            with open(path) as fh:
                return json.load(fh)
        except (OSError, json.JSONDecodeError) as e:
            raise BinaryHPEError(f"{self.name} dataset: {path} is not valid JSON ({e})") from None

    def coco(self, rel: str, keys=("bbox",)):
        d = self.json(rel)
        if not isinstance(d, dict) or "images" not in d or "annotations" not in d:
            found = ", ".join(sorted(d)[:8]) if isinstance(d, dict) else type(d).__name__
            raise BinaryHPEError(f"{self.name} dataset: {self.root / rel} is not COCO-style: expected keys "
                                 f"'images' and 'annotations', found {found}")
        imgs = {im["id"]: im for im in d["images"]}
        for i, a in enumerate(d["annotations"]):
            missing = [k for k in ("image_id", *keys) if k not in a]
            if missing:
                raise BinaryHPEError(f"{self.name} dataset: {self.root / rel}: annotation {i} (id "
                                     f"{a.get('id')}) has no key {missing[0]!r}")
            if a["image_id"] not in imgs:
                raise BinaryHPEError(f"{self.name} dataset: {self.root / rel}: annotation {a.get('id')} refers "
                                     f"to image {a['image_id']}, which is not in 'images'")
        return imgs, d["annotations"]


def _kpts(values, n, where):
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size != 3 * n:
        raise BinaryHPEError(f"{where}: expected {n} keypoints (x, y, v), found {a.size} numbers")
    return a.reshape(n, 3)


def _params_from(d: dict, names: dict, where: str) -> dict:
    """SMPL-X arrays from an annotation dict; ``names`` maps contract keys to the file's keys."""
    out = {}
    for key, src in names.items():
        if src in d and d[src] is not None:
            v = np.asarray(d[src], dtype=np.float64).reshape(-1)
            n = SMPLX_DIMS[key]
            if v.size < n:
                raise BinaryHPEError(f"{where}: {src!r} has {v.size} values, expected {n}")
            out[key] = v[:n]
    return out


# ----------------------------------------------------------------------------------------------------------
# the common sample builder

class WholeBodyDataset(Dataset):
    """Base of the adapters: ``self.items`` records, one sample per annotated person."""

    name = "dataset"

    def __init__(self, root, split: str = "train", input_size=(256, 192), n_joints: int = 25, layer=None,
                 focal: float = 2.0, depth_range: float = 1.0, bbox_scale: float = 1.25):
        if not (isinstance(input_size, (tuple, list)) and len(input_size) == 2
                and all(isinstance(s, int) and s > 0 for s in input_size)):
            raise BinaryHPEError(f"{self.name} dataset: input_size = {input_size!r}: expected (H, W) integers")
        if not 1 <= n_joints <= NJ:
            raise BinaryHPEError(f"{self.name} dataset: n_joints = {n_joints}: expected 1..{NJ}")
        self.root, self.split = pathlib.Path(root), split
        self.input_size = tuple(input_size)
        self.n_joints, self.layer, self.focal = n_joints, layer, focal
        self.depth_range, self.bbox_scale = depth_range, bbox_scale
        self.layout = _Layout(self.name, root)
        self.items = []
        self.load()
        # Hand4Whole drops people whose box is empty (process_bbox returns None)
        self.items = [r for r in self.items if r["bbox"] is not None and r["bbox"][2] > 0 and r["bbox"][3] > 0]

    def load(self):  # pragma: no cover - every adapter overrides it
        raise NotImplementedError

    def __len__(self):
        return len(self.items)

    @staticmethod
    def record(img_path, bbox, **kw) -> dict:
        r = {"img_path": pathlib.Path(img_path), "bbox": np.asarray(bbox, np.float64), "j2d": None,
             "j3d_cam": None, "params": {}, "parts": (False, False, False), "hand_face_boxes": (None,) * 3,
             "cam": None, "trans": None, "mesh": None, "mesh_R": None}
        r.update(kw)
        return r

    def _image(self, path: pathlib.Path):
        from PIL import Image

        if not path.is_file():
            raise BinaryHPEError(f"{self.name} dataset: image {path} is missing (named in the annotations)")
        try:
            return Image.open(path).convert("RGB")
        except OSError as e:
            raise BinaryHPEError(f"{self.name} dataset: image {path} cannot be read ({e})") from None

    def __getitem__(self, idx: int) -> dict:
        from PIL import Image

        r = self.items[idx]
        H, W = self.input_size
        box = process_bbox(r["bbox"], W / H, self.bbox_scale)
        x0, y0, cw, ch = box
        img = self._image(r["img_path"]).transform(
            (W, H), Image.AFFINE, (cw / W, 0.0, x0, 0.0, ch / H, y0), resample=Image.BILINEAR)
        img_t = torch.from_numpy(np.asarray(img, np.float32) / 255.0).permute(2, 0, 1).contiguous()

        def to_crop(uv):
            uv = np.asarray(uv, np.float64)
            return np.stack([(uv[..., 0] - x0) / cw, (uv[..., 1] - y0) / ch], -1)

        J = self.n_joints
        s = {"img": img_t}
        p = dict(r["params"])
        # 3D joints: (camera-frame metres, valid, pelvis known in absolute camera coordinates)
        j3d, root_abs, mesh, mesh_root = None, None, None, None
        if r["j3d_cam"] is not None:
            j3d = r["j3d_cam"]
            root_abs = j3d[0][0] if j3d[1][0] > 0 else None
        if self.layer is not None and len(p) == len(SMPLX_DIMS):  # SMPL-X (pseudo-)GT through the layer
            with torch.no_grad():
                out = self.layer({k: torch.tensor(v[None], dtype=torch.float32) for k, v in p.items()})
            jl = out["joints"][0, :NJ].double().numpy()
            mesh, mesh_root = out["vertices"][0].double().numpy(), jl[0]
            if j3d is None:
                off = r["trans"] if r["trans"] is not None else np.zeros(3)
                j3d = (jl + off, np.ones(NJ))
                root_abs = jl[0] + off if r["trans"] is not None else None
        if r["mesh"] is not None:  # ground-truth mesh (EHF)
            mesh = self._gt_mesh(r)
            if self.layer is not None:
                jr = self.layer.model.J_regressor.double().numpy()
                j3d = (jr @ mesh, np.ones(NJ))
                mesh_root = j3d[0][0]
        # 2D joints (pixels): the annotation, else the 3D joints through the camera
        f_c = r["cam"]
        if r["j2d"] is not None:
            uv, v2 = r["j2d"][:, :2], r["j2d"][:, 2] > 0
        elif j3d is not None and f_c is not None and root_abs is not None:
            z = np.maximum(j3d[0][:, 2], 1e-6)
            uv = np.stack([f_c[0][0] * j3d[0][:, 0] / z + f_c[1][0], f_c[0][1] * j3d[0][:, 1] / z + f_c[1][1]], 1)
            v2 = j3d[1] > 0
        else:
            uv, v2 = np.zeros((NJ, 2)), np.zeros(NJ, bool)
        xy = to_crop(uv)
        inside = ((xy >= 0) & (xy <= 1)).all(1)
        jv = (v2 & inside).astype(np.float32)
        z = np.full(NJ, 0.5)
        j3d_rel, j3d_valid = np.zeros((NJ, 3)), np.zeros(NJ, np.float32)
        is_3d = j3d is not None and j3d[1][0] > 0
        if is_3d:
            j3d_rel = j3d[0] - j3d[0][:1]
            j3d_valid = (j3d[1] > 0).astype(np.float32)
            z = np.where(j3d_valid > 0, (j3d_rel[:, 2] / self.depth_range + 1) / 2, 0.5)
        s["joint_img"] = torch.tensor(np.concatenate([xy, z[:, None]], 1)[:J], dtype=torch.float32)
        s["joint_valid"] = torch.tensor(jv[:J, None])
        s["joints_3d"] = torch.tensor(j3d_rel[:J], dtype=torch.float32)
        s["joints_3d_valid"] = torch.tensor(j3d_valid[:J, None])
        # SMPL-X parameters
        for k, n in SMPLX_DIMS.items():
            s[k] = torch.tensor(p.get(k, np.zeros(n)), dtype=torch.float32)
        lh, rh, fc = r["parts"]
        body_ok = all(k in p for k in ("root_pose", "body_pose", "shape"))
        s["smplx_valid"] = torch.tensor([float(body_ok)])
        s["lhand_valid"] = torch.tensor([float(body_ok and lh)])
        s["rhand_valid"] = torch.tensor([float(body_ok and rh)])
        s["face_valid"] = torch.tensor([float(body_ok and fc)])
        # the pelvis in the crop's virtual camera (focal F pixels, principal point at the crop centre): the
        # same pixel, and the depth scaled so that the apparent size is the same
        cam_trans, cam_ok = np.zeros(3), 0.0
        if root_abs is not None and f_c is not None and root_abs[2] > 0:
            (fx, fy), (cx, cy) = f_c
            F = self.focal * H
            rx, ry = to_crop(np.array([fx * root_abs[0] / root_abs[2] + cx, fy * root_abs[1] / root_abs[2] + cy]))
            zc = root_abs[2] * F * ch / (fy * H)
            cam_trans = np.array([(rx * W - W / 2) * zc / F, (ry * H - H / 2) * zc / F, zc])
            cam_ok = 1.0
        s["cam_trans"] = torch.tensor(cam_trans, dtype=torch.float32)
        s["cam_valid"] = torch.tensor([cam_ok])
        s["is_3d"] = torch.tensor([float(is_3d)])
        # hand and face boxes (x, y, w, h pixels) -> (cx, cy, w, h) in crop units
        boxes, bvalid = np.zeros((3, 4)), np.zeros((3, 1), np.float32)
        for i, b in enumerate(r["hand_face_boxes"]):
            if b is None:
                continue
            bx, by, bw, bh = (float(v) for v in b)
            if bw <= 0 or bh <= 0:
                continue
            c = to_crop(np.array([bx + bw / 2, by + bh / 2]))
            boxes[i] = (c[0], c[1], bw / cw, bh / ch)
            bvalid[i] = float(0 <= c[0] <= 1 and 0 <= c[1] <= 1)
        s["boxes"] = torch.tensor(boxes, dtype=torch.float32)
        s["box_valid"] = torch.tensor(bvalid)
        if self.layer is not None:
            if mesh is not None and mesh_root is not None:
                s["vertices"] = torch.tensor(mesh - mesh_root, dtype=torch.float32)
                s["vertices_valid"] = torch.tensor([1.0])
            else:
                s["vertices"] = torch.zeros(self.layer.num_verts, 3)
                s["vertices_valid"] = torch.tensor([0.0])
        return s

    def _gt_mesh(self, r):
        v = read_ply_vertices(r["mesh"])
        if r["mesh_R"] is not None:
            v = v @ np.asarray(r["mesh_R"]).T
        if self.layer is not None and len(v) != self.layer.num_verts:
            raise BinaryHPEError(f"{self.name} dataset: mesh {r['mesh']} has {len(v)} vertices but the SMPL-X "
                                 f"model has {self.layer.num_verts}")
        return v


def _sx_from(kp: np.ndarray, mapping: dict) -> np.ndarray:
    out = np.zeros((NJ, 3))
    for i, name in mapping.items():
        out[SX[name]] = kp[i]
    return out


# ----------------------------------------------------------------------------------------------------------
# the adapters

class Human36M(WholeBodyDataset):
    name = "Human3.6M"
    SUBJECTS = {"train": (1, 5, 6, 7, 8), "test": (9, 11)}
    SAMPLING = {"train": 5, "test": 64}

    def __init__(self, root, split="train", *a, subjects=None, sampling=None, **kw):
        if split not in self.SUBJECTS:
            raise BinaryHPEError(f"Human3.6M dataset: split {split!r}: expected 'train' or 'test'")
        self.subjects = tuple(subjects) if subjects is not None else self.SUBJECTS[split]
        self.sampling = sampling if sampling is not None else self.SAMPLING[split]
        super().__init__(root, split, *a, **kw)

    def load(self):
        L = self.layout
        for subj in self.subjects:
            pre = f"annotations/Human36M_subject{subj}"
            imgs, anns = L.coco(f"{pre}_data.json")
            cams = L.json(f"{pre}_camera.json")
            joints = L.json(f"{pre}_joint_3d.json")
            smplx = L.json(f"{pre}_SMPLX_NeuralAnnot.json")
            for a in anns:
                im = imgs[a["image_id"]]
                try:
                    act, sub, fr, cam_idx = (str(im["action_idx"]), str(im["subaction_idx"]), str(im["frame_idx"]),
                                             str(im["cam_idx"]))
                except KeyError as e:
                    raise BinaryHPEError(f"Human3.6M dataset: {L.root / pre}_data.json: image {im.get('id')} has no "
                                         f"key {e.args[0]!r}") from None
                if int(fr) % self.sampling or (self.split == "test" and cam_idx != "4"):
                    continue
                where = f"Human3.6M dataset: subject {subj} action {act} subaction {sub} frame {fr}"
                try:
                    c = cams[cam_idx]
                    R, t = np.asarray(c["R"], float).reshape(3, 3), np.asarray(c["t"], float).reshape(3)
                    f, cc = np.asarray(c["f"], float).reshape(2), np.asarray(c["c"], float).reshape(2)
                    jw = np.asarray(joints[act][sub][fr], float).reshape(17, 3)
                except KeyError as e:
                    raise BinaryHPEError(f"{where}: camera / joint annotation missing key {e.args[0]!r}") from None
                jc = (jw @ R.T + t) / 1000.0  # world mm -> camera m
                j3 = np.zeros((NJ, 3)), np.zeros(NJ)
                for i, n in H36M_TO_SX.items():
                    j3[0][SX[n]], j3[1][SX[n]] = jc[i], 1.0
                params, parts = {}, (False, False, False)
                sp = smplx.get(act, {}).get(sub, {}).get(fr)
                if sp is not None:  # world frame; hands and face are valid only where the fit says so
                    params = _params_from(sp, {k: k for k in SMPLX_DIMS}, where)
                    parts = tuple(bool(sp.get(k, False)) and p in params
                                  for k, p in (("lhand_valid", "lhand_pose"), ("rhand_valid", "rhand_pose"),
                                               ("face_valid", "jaw_pose")))
                    if "root_pose" in params:  # world -> camera frame
                        params["root_pose"] = rotmat_to_aa(R @ rodrigues(params["root_pose"]))
                    for k in ("lhand_pose", "rhand_pose", "jaw_pose", "expr"):
                        params.setdefault(k, np.zeros(SMPLX_DIMS[k]))
                self.items.append(self.record(
                    L.root / "images" / im["file_name"], a["bbox"], j3d_cam=j3, params=params, cam=(f, cc),
                    parts=parts))


class MSCOCO(WholeBodyDataset):
    name = "MSCOCO"

    def load(self):
        L = self.layout
        split = "train" if self.split == "train" else "val"
        if self.split not in ("train", "val", "test"):
            raise BinaryHPEError(f"MSCOCO dataset: split {self.split!r}: expected 'train' or 'val'")
        ann_file = f"annotations/coco_wholebody_{split}_v1.0.json"
        imgs, anns = L.coco(ann_file, keys=("bbox", "keypoints"))
        smplx = L.json("annotations/MSCOCO_train_SMPLX.json") if split == "train" else {}
        for a in anns:
            if a.get("iscrowd", 0) or a.get("num_keypoints", 1) == 0:
                continue
            im = imgs[a["image_id"]]
            where = f"MSCOCO dataset: {L.root / ann_file}: annotation {a.get('id')}"
            body = _kpts(a["keypoints"], 17, where + " 'keypoints'")
            j2 = _sx_from(body, COCO_TO_SX)
            lh, rh = body[11], body[12]
            j2[SX["pelvis"]] = ((lh[0] + rh[0]) / 2, (lh[1] + rh[1]) / 2, float(lh[2] > 0 and rh[2] > 0))
            ls, rs = body[5], body[6]
            j2[SX["neck"]] = ((ls[0] + rs[0]) / 2, (ls[1] + rs[1]) / 2, float(ls[2] > 0 and rs[2] > 0))
            for side, base in (("lefthand_kpts", 25), ("righthand_kpts", 40)):
                if side in a:
                    hk = _kpts(a[side], 21, f"{where} {side!r}")
                    j2[base:base + 15] = hk[_COCO_HAND]
            boxes = []
            for bk, vk in (("lefthand_box", "lefthand_valid"), ("righthand_box", "righthand_valid"),
                           ("face_box", "face_valid")):
                boxes.append(a[bk] if a.get(vk, False) and bk in a else None)
            params, parts, trans, cam = {}, (False, False, False), None, None
            entry = smplx.get(str(a.get("id")))
            if entry is not None:
                if "smplx_param" not in entry or "cam_param" not in entry:
                    raise BinaryHPEError(f"MSCOCO dataset: {L.root / 'annotations/MSCOCO_train_SMPLX.json'}: entry "
                                         f"{a.get('id')} needs keys 'smplx_param' and 'cam_param', found "
                                         f"{', '.join(sorted(entry))}")
                sp = entry["smplx_param"]
                params = _params_from(sp, {k: k for k in SMPLX_DIMS}, where)
                parts = (bool(sp.get("lhand_valid", False)), bool(sp.get("rhand_valid", False)),
                         bool(sp.get("face_valid", False)))
                trans = np.asarray(sp["trans"], float).reshape(3) if "trans" in sp else None
                cp = entry["cam_param"]
                cam = (np.asarray(cp["focal"], float).reshape(2), np.asarray(cp["princpt"], float).reshape(2))
            self.items.append(self.record(
                L.root / "images" / f"{split}2017" / im["file_name"], a["bbox"], j2d=j2, params=params,
                parts=parts, hand_face_boxes=tuple(boxes), trans=trans, cam=cam))


class MPII(WholeBodyDataset):
    name = "MPII"

    def load(self):
        L = self.layout
        if self.split != "train":
            raise BinaryHPEError(f"MPII dataset: split {self.split!r}: Hand4Whole's MPII has only 'train'")
        sub = "data/" if (L.root / "data").is_dir() else ""
        imgs, anns = L.coco(f"{sub}annotations/train.json", keys=("bbox", "keypoints"))
        smplx = L.json(f"{sub}annotations/MPII_train_SMPLX_NeuralAnnot.json")
        for a in anns:
            im = imgs[a["image_id"]]
            where = f"MPII dataset: annotation {a.get('id')}"
            j2 = _sx_from(_kpts(a["keypoints"], 16, where + " 'keypoints'"), MPII_TO_SX)
            params, parts, trans, cam = {}, (False, False, False), None, None
            entry = smplx.get(str(a.get("id")))
            if entry is not None:
                sp = entry.get("smplx_param", {})
                params = _params_from(sp, {k: k for k in SMPLX_DIMS}, where)
                parts = (bool(sp.get("lhand_valid", False)), bool(sp.get("rhand_valid", False)),
                         bool(sp.get("face_valid", False)))
                trans = np.asarray(sp["trans"], float).reshape(3) if "trans" in sp else None
                cp = entry.get("cam_param")
                if cp is not None:
                    cam = (np.asarray(cp["focal"], float).reshape(2), np.asarray(cp["princpt"], float).reshape(2))
            img_path = L.root / sub / "images" / im["file_name"]
            if not img_path.is_file() and (L.root / sub / im["file_name"]).is_file():
                img_path = L.root / sub / im["file_name"]
            self.items.append(self.record(img_path, a["bbox"], j2d=j2, params=params, parts=parts, trans=trans,
                                          cam=cam))


class EHF(WholeBodyDataset):
    name = "EHF"

    def load(self):
        L = self.layout
        if self.split not in ("test", "val"):
            raise BinaryHPEError(f"EHF dataset: split {self.split!r}: EHF is an evaluation set ('test')")
        sub = "data/" if (L.root / "data").is_dir() else ""
        imgs, anns = L.coco(f"{sub}EHF.json", keys=("body_bbox",))
        R = rodrigues(EHF_CAM_R)
        for a in anns:
            im = imgs[a["image_id"]]
            mesh = L.need(f"{sub}{im['file_name'].split('_')[0]}_align.ply")
            boxes = tuple(a.get(k) for k in ("lefthand_bbox", "righthand_bbox", "face_bbox"))
            self.items.append(self.record(L.root / sub / im["file_name"], a["body_bbox"], hand_face_boxes=boxes,
                                          mesh=mesh, mesh_R=R))


class AGORA(WholeBodyDataset):
    name = "AGORA"
    NAMES = {"global_orient": "root_pose", "body_pose": "body_pose", "betas": "shape",
             "left_hand_pose": "lhand_pose", "right_hand_pose": "rhand_pose", "jaw_pose": "jaw_pose",
             "expression": "expr"}

    def load(self):
        L = self.layout
        if self.split not in ("train", "val", "test"):
            raise BinaryHPEError(f"AGORA dataset: split {self.split!r}: expected 'train' or 'val'")
        sub = "data/" if (L.root / "data").is_dir() else ""
        name = "train" if self.split == "train" else "validation"
        imgs, anns = L.coco(f"{sub}AGORA_{name}_SMPLX.json",
                            keys=("bbox", "smplx_param_path", "cam_param_path"))
        for a in anns:
            if not a.get("is_valid", True):
                continue
            im = imgs[a["image_id"]]
            if "file_name_1280x720" not in im:
                raise BinaryHPEError(f"AGORA dataset: image {im.get('id')} has no key 'file_name_1280x720'")
            img_path = L.root / sub / im["file_name_1280x720"]
            sx, sy = 1280 / 3840, 720 / 2160  # annotations are in 3840x2160 pixels

            def scaled(b):
                if b is None:
                    return None
                b = np.asarray(b, float).reshape(4)
                return b * (sx, sy, sx, sy)

            sp = L.json(f"{sub}{a['smplx_param_path']}")
            cp = L.json(f"{sub}{a['cam_param_path']}")
            where = f"AGORA dataset: {L.root / sub / a['smplx_param_path']}"
            params = _params_from(sp, {v: k for k, v in self.NAMES.items()}, where)
            trans = np.asarray(sp["transl"], float).reshape(3) if "transl" in sp else None
            try:
                cam = (np.asarray(cp["focal"], float).reshape(2) * (sx, sy),
                       np.asarray(cp["princpt"], float).reshape(2) * (sx, sy))
            except KeyError as e:
                raise BinaryHPEError(f"AGORA dataset: {L.root / sub / a['cam_param_path']} has no key "
                                     f"{e.args[0]!r}") from None
            boxes = tuple(scaled(a.get(k)) for k in ("lhand_bbox", "rhand_bbox", "face_bbox"))
            self.items.append(self.record(img_path, scaled(a["bbox"]), params=params, parts=(True, True, True),
                                          trans=trans, cam=cam, hand_face_boxes=boxes))


DATASETS = {"human36m": Human36M, "h36m": Human36M, "mscoco": MSCOCO, "coco": MSCOCO, "mpii": MPII, "ehf": EHF,
            "agora": AGORA}


def make_dataset(name: str, root, split: str = "train", input_size=(256, 192), **kw) -> WholeBodyDataset:
    """The adapter ``name`` (human36m, mscoco, mpii, ehf, agora) over the user's copy at ``root``."""
    cls = DATASETS.get(str(name).lower().replace("-", "").replace("_", "").replace(".", ""))
    if cls is None:
        raise BinaryHPEError(f"unknown dataset {name!r} (known: human36m, mscoco, mpii, ehf, agora)")
    return cls(root, split, input_size, **kw)
