"""Data augmentation applied consistently to the image and every target (Section 4: scaling, rotation, random
horizontal flipping, colour jittering).

Conventions are those of ``binaryhpe.train.data.proxy``: camera frame x right, y down, z forward, principal
point at the image centre; ``joint_img`` x, y in [0,1] image units (continuous pixel coordinate / size).

- Horizontal flip: the image is mirrored (``torch.flip``); x -> 1 - x in the image and x -> -x in 3D
  (``joints_3d``, ``vertices``, ``cam_trans``); left and right SMPL-X joints swap (``proxy.flip_permutation``),
  vertices are permuted by their mirror correspondence (``vertex_flip_permutation``); every axis-angle
  rotation is mirrored (x, y, z) -> (x, -y, -z), the left and right hand poses swap, as do the left and right
  hand boxes. Flipping twice is the identity.
- Rotation by ``angle`` about the image centre and zoom by ``scale``: image points rotate and scale about the
  centre; 3D points and ``cam_trans`` rotate about the optical axis (exact for a pinhole camera whose
  principal point is the image centre) and the root orientation is premultiplied by that rotation; a zoom is
  a closer camera: ``cam_trans`` z is divided by ``scale`` (exact for the root's projection, weak-perspective
  for the rest), root-relative 3D targets are unchanged. Boxes become the bounding box of their transformed
  corners. Joints that leave the image get ``joint_valid`` 0.
- Colour jitter: brightness, contrast, saturation and per-channel gains, the image only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from binaryhpe.train.data.geometry import axis_angle_to_matrix, flip_permutation, matrix_to_axis_angle

POSE_KEYS = ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose")


def vertex_flip_permutation(template: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """For each template vertex, the index of the vertex at its mirror image (x -> -x), nearest neighbour.

    Raises ``ValueError`` when the template is not left/right symmetric within ``tol`` (metres)."""
    v = np.asarray(template, dtype=np.float64)
    m = v * np.array([-1.0, 1.0, 1.0])
    d = ((m[:, None, :] - v[None]) ** 2).sum(-1)
    perm = d.argmin(1)
    err = np.sqrt(d[np.arange(len(v)), perm]).max()
    if err > tol or not (perm[perm] == np.arange(len(v))).all():
        raise ValueError(f"template is not left/right symmetric (largest mirror mismatch {err:.3g} m)")
    return perm


def _mirror_aa(t: torch.Tensor) -> torch.Tensor:
    s = t.reshape(*t.shape[:-1], -1, 3) * torch.tensor([1.0, -1.0, -1.0], dtype=t.dtype)
    return s.reshape(t.shape)


def flip_sample(s: dict, vertex_perm=None, layer=None) -> dict:
    """The horizontally flipped sample (a new dict; unknown keys are copied).

    ``vertices`` are mirrored and permuted by ``vertex_perm`` when the model is left/right symmetric; for a
    model that is not (the synthetic SMPL-X file's prisms are not), they are recomputed through ``layer``
    from the flipped parameters (root-relative), which keeps them in the model's own vertex semantics."""
    out = dict(s)
    if "img" in s:
        out["img"] = torch.flip(s["img"], [-1])
    J = None
    for key in ("joint_img", "joints_3d", "joint_valid"):
        if key in s:
            J = s[key].shape[-2]
    perm = torch.as_tensor(flip_permutation(J)) if J is not None else None
    if "joint_img" in s:
        j = s["joint_img"][..., perm, :].clone()
        j[..., 0] = 1 - j[..., 0]
        out["joint_img"] = j
    if "joints_3d" in s:
        j = s["joints_3d"][..., perm, :].clone()
        j[..., 0] = -j[..., 0]
        out["joints_3d"] = j
    if "joint_valid" in s:
        out["joint_valid"] = s["joint_valid"][..., perm, :].clone()
    if "joints_3d_valid" in s:  # the real-data adapters' masks (train/data/datasets.py)
        out["joints_3d_valid"] = s["joints_3d_valid"][..., perm, :].clone()
    if "box_valid" in s:
        out["box_valid"] = s["box_valid"][..., [1, 0, 2], :].clone()
    if "lhand_valid" in s and "rhand_valid" in s:
        out["lhand_valid"], out["rhand_valid"] = s["rhand_valid"].clone(), s["lhand_valid"].clone()
    if "vertices" in s and vertex_perm is not None:
        v = s["vertices"][..., torch.as_tensor(vertex_perm), :].clone()
        v[..., 0] = -v[..., 0]
        out["vertices"] = v
    if "cam_trans" in s:
        c = s["cam_trans"].clone()
        c[..., 0] = -c[..., 0]
        out["cam_trans"] = c
    if "boxes" in s:
        b = s["boxes"][..., [1, 0, 2], :].clone()
        b[..., 0] = 1 - b[..., 0]
        out["boxes"] = b
    for key in ("root_pose", "jaw_pose"):
        if key in s:
            out[key] = _mirror_aa(s[key])
    if "body_pose" in s:  # joints 1..21: permute within the body (pairs map to indices - 1)
        p = s["body_pose"].reshape(*s["body_pose"].shape[:-1], 21, 3)
        bperm = torch.as_tensor(flip_permutation(22)[1:] - 1)
        out["body_pose"] = _mirror_aa(p[..., bperm, :]).reshape(s["body_pose"].shape)
    if "lhand_pose" in s and "rhand_pose" in s:
        out["lhand_pose"], out["rhand_pose"] = _mirror_aa(s["rhand_pose"]), _mirror_aa(s["lhand_pose"])
    if "vertices" in s and vertex_perm is None:
        if layer is None:
            raise ValueError("flip_sample: a sample with 'vertices' needs the vertex flip permutation or the layer")
        out["vertices"] = model_vertices(layer, out)
    return out


@torch.no_grad()
def model_vertices(layer, s: dict) -> torch.Tensor:
    """Root-relative vertices of one sample's SMPL-X parameters (camera-frame orientation)."""
    keys = ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "expr", "shape")
    o = layer({k: s[k][None].float() for k in keys})
    return (o["vertices"][0] - o["joints"][0, :1]).to(s["vertices"].dtype)


def affine_sample(s: dict, angle: float = 0.0, scale: float = 1.0) -> dict:
    """Rotate by ``angle`` radians about the image centre and zoom by ``scale`` (image and targets)."""
    out = dict(s)
    c, sn = math.cos(angle), math.sin(angle)
    R2 = torch.tensor([[c, -sn], [sn, c]], dtype=torch.float32)
    if "img" in s:
        img = s["img"]
        H, W = img.shape[-2:]
        D = torch.diag(torch.tensor([W / 2.0, H / 2.0]))
        A = torch.linalg.inv(D) @ R2.T @ D / scale  # output -> input, normalised coordinates
        theta = torch.cat([A, torch.zeros(2, 1)], 1)[None]
        grid = F.affine_grid(theta, (1, img.shape[0], H, W), align_corners=False)
        out["img"] = F.grid_sample(img[None], grid, mode="bilinear", padding_mode="zeros",
                                   align_corners=False)[0]
        aspect = torch.tensor([W / H, 1.0])  # image units -> units of the height (isotropic)
    else:
        aspect = torch.tensor([1.0, 1.0])

    def pts2(p):  # (...,2) in image units about the centre
        q = (p - 0.5) * aspect
        q = (q @ R2.T) * scale
        return q / aspect + 0.5

    if "joint_img" in s:
        j = s["joint_img"].clone()
        j[..., :2] = pts2(j[..., :2])
        out["joint_img"] = j
        if "joint_valid" in s:
            inside = ((j[..., :2] >= 0) & (j[..., :2] <= 1)).all(-1, keepdim=True).to(s["joint_valid"].dtype)
            out["joint_valid"] = s["joint_valid"] * inside
    R3 = torch.eye(3)
    R3[:2, :2] = R2
    for key in ("joints_3d", "vertices"):
        if key in s:
            out[key] = s[key] @ R3.T
    if "cam_trans" in s:
        t = s["cam_trans"] @ R3.T
        t = t.clone()
        t[..., 2] = t[..., 2] / scale
        out["cam_trans"] = t
    if "root_pose" in s:
        R = axis_angle_to_matrix(s["root_pose"].double().numpy())
        out["root_pose"] = torch.from_numpy(matrix_to_axis_angle(R3.double().numpy() @ R)).to(s["root_pose"].dtype)
    if "boxes" in s:
        b = s["boxes"]
        corners = torch.stack([b[..., :2] + b[..., 2:] * torch.tensor(sg) / 2
                               for sg in ((-1, -1), (1, -1), (1, 1), (-1, 1))], -2)  # (...,4,2)
        tc = pts2(corners)
        lo, hi = tc.min(-2).values, tc.max(-2).values
        out["boxes"] = torch.cat([(lo + hi) / 2, hi - lo], -1)
    return out


def color_jitter(img: torch.Tensor, rng: np.random.Generator, strength: float = 0.2) -> torch.Tensor:
    b = rng.uniform(1 - strength, 1 + strength)
    c = rng.uniform(1 - strength, 1 + strength)
    sat = rng.uniform(1 - strength, 1 + strength)
    gains = torch.from_numpy(rng.uniform(1 - strength / 2, 1 + strength / 2, 3)).float()[:, None, None]
    x = img * b
    mean = x.mean()
    x = (x - mean) * c + mean
    gray = x.mean(0, keepdim=True)
    x = (x - gray) * sat + gray
    return (x * gains).clamp(0, 1)


@dataclass
class Augment:
    """Random augmentation: ``Augment(vertex_perm=...)(sample, rng)`` (the ``ProxyDataset`` transform)."""

    scale: tuple = (0.85, 1.15)
    rotation: float = math.radians(30)  # uniform in [-rotation, rotation]
    flip: float = 0.5  # probability
    color: float = 0.2
    vertex_perm: np.ndarray | None = None
    layer: object = None  # the body model, to recompute flipped vertices when vertex_perm is None

    def __call__(self, s: dict, rng: np.random.Generator) -> dict:
        if rng.uniform() < self.flip:
            s = flip_sample(s, self.vertex_perm, self.layer)
        angle = float(rng.uniform(-self.rotation, self.rotation)) if self.rotation else 0.0
        scale = float(rng.uniform(*self.scale)) if self.scale else 1.0
        if angle or scale != 1.0:
            s = affine_sample(s, angle, scale)
        if self.color and "img" in s:
            s = dict(s, img=color_jitter(s["img"], rng, self.color))
        return s
