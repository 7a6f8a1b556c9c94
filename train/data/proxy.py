"""Generated proxy data with the whole-body task's shape (issue 7): SMPL-X figures rendered from known parameters.

No human-pose data set exists on this machine, so ``ProxyDataset`` makes one. Each sample draws continuous
SMPL-X parameters in plausible ranges (root orientation, 21 body joints, both hands, jaw, expression, shape,
camera translation), poses the body model (``binaryhpe.train.smplx_model.SMPLXLayer`` on a synthetic SMPL-X
file, or any object with the same ``forward(params) -> {"vertices", "joints"}`` / ``.parents`` interface),
projects it with a known pinhole camera, and renders it: every bone of the kinematic tree as a filled capsule
shaded by depth, every vertex as a small disc (hands and face in their own colours, the eyes dark so the facing
direction is visible), over random low-frequency background noise. The targets are every key of the shared
contract: ``img`` (3,H,W) in [0,1]; the SMPL-X parameters; ``joint_img`` (J,3) in [0,1]^3; ``boxes`` (3,4) as
(cx, cy, w, h) of the left hand, right hand and face vertices; ``joints_3d`` and ``vertices`` root-relative in
metres; ``smplx_valid`` (1,) and ``joint_valid`` (J,1).

Conventions (``augment.py`` relies on them):
- camera frame: x right, y down, z forward (OpenCV); the principal point is the image centre, so a horizontal
  flip of the image is exactly x -> -x in 3D and an in-plane rotation about the image centre is a rotation of
  3D points about the optical axis. ``joints_3d``/``vertices`` are camera-frame points minus the pelvis;
  the projected point is ``joints_3d + cam_trans``.
- image coordinates: ``x = u / W`` with u the continuous pixel coordinate (0 at the left edge of the first
  pixel), the ``align_corners=False`` convention of ``torch.nn.functional.grid_sample``; a flipped image is
  ``torch.flip(img, [-1])`` and a flipped x is ``1 - x``.
- ``joint_img[..., 2]`` = ``(z_rel / depth_range + 1) / 2``: root-relative depth scaled to [0,1].

Deterministic by seed: sample ``i`` of split ``split`` comes from ``SeedSequence([seed, split_id, block])``
for its block of ``BLOCK`` samples, so the held-out split ("test") never shares a random stream with the
training split ("train"). Samples are generated a block at a time (one batched body-model forward and one
vectorised render) and cached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from binaryhpe import BinaryHPEError

BLOCK = 64
SPLITS = {"train": 0, "test": 1, "val": 2}
SMPLX_KEYS = ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "expr", "shape", "cam_trans")
PARAM_DIMS = {"root_pose": 3, "body_pose": 63, "lhand_pose": 45, "rhand_pose": 45, "jaw_pose": 3, "expr": 10,
              "shape": 10, "cam_trans": 3}

# SMPL-X joint layout (the first 55 joints of the model): 0 pelvis, 1/2 hips, 3 spine1, 4/5 knees, 6 spine2,
# 7/8 ankles, 9 spine3, 10/11 feet, 12 neck, 13/14 collars, 15 head, 16/17 shoulders, 18/19 elbows,
# 20/21 wrists, 22 jaw, 23/24 eyes, 25-39 left hand, 40-54 right hand (left before right in each pair).
SMPLX_PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
                          20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
                          21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53])
from binaryhpe.train.data.geometry import (  # noqa: E402,F401 - public here as before
    LR_PAIRS,
    axis_angle_to_matrix,
    flip_permutation,
    matrix_to_axis_angle,
)


def rot_z(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


# ----------------------------------------------------------------------------------------------------------
# body model


def default_layer():
    """The SMPL-X layer on a small synthetic SMPL-X model file (``binaryhpe.train.smplx_model``), cached."""
    global _LAYER
    if _LAYER is None:
        _LAYER = _make_layer()
    return _LAYER


_LAYER = None


def _make_layer():
    import pathlib
    import tempfile

    try:
        from binaryhpe.train import smplx_model
    except ImportError:  # engineer B's module has not landed: the stand-in below keeps the data usable
        return StandInLayer()
    d = pathlib.Path(tempfile.mkdtemp(prefix="binaryhpe-smplx-"))
    path = smplx_model.write_synthetic_smplx(d, seed=0)
    return smplx_model.SMPLXLayer(path)


def layer_part_indices(layer) -> dict:
    """Vertex index arrays of the left hand, right hand and face for ``layer``."""
    if hasattr(layer, "hand_verts_left"):
        return {"lhand": np.asarray(layer.hand_verts_left), "rhand": np.asarray(layer.hand_verts_right),
                "face": np.asarray(layer.face_verts)}
    try:
        from binaryhpe.train import smplx_model
    except ImportError:
        smplx_model = None
    src = layer if hasattr(layer, "HAND_VERTS_LEFT") else smplx_model
    if src is None or not hasattr(src, "HAND_VERTS_LEFT"):
        raise BinaryHPEError("body model: no HAND_VERTS_LEFT / HAND_VERTS_RIGHT / FACE_VERTS index arrays")
    return {"lhand": np.asarray(src.HAND_VERTS_LEFT), "rhand": np.asarray(src.HAND_VERTS_RIGHT),
            "face": np.asarray(src.FACE_VERTS)}


class StandInLayer(torch.nn.Module):
    """A rigid-skinning stand-in of the SMPL-X layer (55 joints in the SMPL-X layout, a few vertices per bone).

    Used only when ``binaryhpe.train.smplx_model`` is not importable; same interface as ``SMPLXLayer``.
    """

    def __init__(self):
        super().__init__()
        J = np.zeros((55, 3))
        body = {0: (0, 0, 0), 1: (.1, -.1, 0), 2: (-.1, -.1, 0), 3: (0, .1, 0), 4: (.1, -.5, 0), 5: (-.1, -.5, 0),
                6: (0, .25, 0), 7: (.1, -.9, 0), 8: (-.1, -.9, 0), 9: (0, .35, 0), 10: (.1, -.95, .1),
                11: (-.1, -.95, .1), 12: (0, .5, 0), 13: (.07, .45, 0), 14: (-.07, .45, 0), 15: (0, .6, 0),
                16: (.18, .45, 0), 17: (-.18, .45, 0), 18: (.45, .45, 0), 19: (-.45, .45, 0), 20: (.7, .45, 0),
                21: (-.7, .45, 0), 22: (0, .58, .05), 23: (.03, .65, .08), 24: (-.03, .65, .08)}
        for j, p in body.items():
            J[j] = p
        for side, wrist, base in ((1, 20, 25), (-1, 21, 40)):
            for f, dz in enumerate((.02, .0, -.04, -.02, .04)):
                for s in range(3):
                    J[base + 3 * f + s] = J[wrist] + (side * (.08 + .03 * s), 0, dz)
        verts, skin = [], []
        for j in range(55):
            p = SMPLX_PARENTS[j]
            if p >= 0:
                for t in (.25, .5, .75):
                    verts.append(J[p] + t * (J[j] - J[p]))
                    skin.append(p)
            verts.append(J[j])
            skin.append(j)
        for a in np.linspace(0, 2 * np.pi, 8, endpoint=False):  # head outline
            verts.append(J[15] + (.09 * np.cos(a), .09 * np.sin(a) + .03, .05))
            skin.append(15)
        self.register_buffer("J", torch.tensor(J, dtype=torch.float32))
        self.register_buffer("v_rest", torch.tensor(np.array(verts), dtype=torch.float32))
        self.skin = np.array(skin)
        self.parents = SMPLX_PARENTS.copy()
        self.faces = np.zeros((0, 3), dtype=np.int64)
        self.HAND_VERTS_LEFT = np.where(np.isin(self.skin, [20] + list(range(25, 40))))[0]
        self.HAND_VERTS_RIGHT = np.where(np.isin(self.skin, [21] + list(range(40, 55))))[0]
        self.FACE_VERTS = np.where(np.isin(self.skin, [15, 22, 23, 24]))[0]

    @staticmethod
    def _rodrigues(aa):
        th = aa.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        k = aa / th
        kx, ky, kz = k.unbind(-1)
        z = torch.zeros_like(kx)
        K = torch.stack([torch.stack([z, -kz, ky], -1), torch.stack([kz, z, -kx], -1),
                         torch.stack([-ky, kx, z], -1)], -2)
        s, c = torch.sin(th)[..., None], torch.cos(th)[..., None]
        return torch.eye(3) + s * K + (1 - c) * (K @ K)

    def forward(self, params: dict) -> dict:
        pose = torch.cat([params["root_pose"], params["body_pose"], params["jaw_pose"],
                          torch.zeros_like(params["root_pose"]), torch.zeros_like(params["root_pose"]),
                          params["lhand_pose"], params["rhand_pose"]], 1).view(-1, 55, 3)
        B = pose.shape[0]
        scale = (1 + 0.05 * params["shape"][:, :1])[:, :, None]
        Jr = self.J[None] * scale
        R = self._rodrigues(pose)
        Rg, tg = [None] * 55, [None] * 55
        for j in range(55):
            p = self.parents[j]
            if p < 0:
                Rg[j], tg[j] = R[:, j], Jr[:, j]
            else:
                Rg[j] = Rg[p] @ R[:, j]
                tg[j] = tg[p] + (Rg[p] @ (Jr[:, j] - Jr[:, p])[..., None])[..., 0]
        Rg, tg = torch.stack(Rg, 1), torch.stack(tg, 1)
        vr = self.v_rest[None] * scale
        sk = torch.as_tensor(self.skin)
        v = (Rg[:, sk] @ (vr - Jr[:, sk])[..., None])[..., 0] + tg[:, sk]
        t = params.get("transl")
        if t is not None:
            v, tg = v + t[:, None], tg + t[:, None]
        return {"vertices": v.reshape(B, -1, 3), "joints": tg}


# ----------------------------------------------------------------------------------------------------------
# the data set


@dataclass(frozen=True)
class ProxyConfig:
    img_size: tuple = (64, 48)  # (H, W)
    n_joints: int = 25  # body joints in joint_img / joints_3d (first joints of the SMPL-X layout)
    focal: float = 2.0  # focal length in units of the image height
    fill: tuple = (0.65, 0.9)  # fraction of the image height the standing figure spans (sets the distance)
    body_sigma: float = 0.25  # body joint angles ~ N(0, sigma) per axis (radians), clipped to 3 sigma
    hand_sigma: float = 0.35
    yaw: float = 1.0  # root yaw uniform in [-yaw, yaw] radians (0 = facing the camera)
    tilt: float = 0.2  # root pitch / roll uniform in [-tilt, tilt]
    shift: float = 0.12  # pelvis offset from the image centre, fraction of the image size
    noise: float = 0.25  # background noise amplitude

    def __post_init__(self):
        size = tuple(self.img_size)
        object.__setattr__(self, "img_size", size)
        if len(size) != 2 or not all(isinstance(v, int) and v >= 8 for v in size):
            raise BinaryHPEError(f"proxy img_size = {self.img_size!r}: expected (H, W) integers >= 8")
        if not 1 <= self.n_joints <= 55:
            raise BinaryHPEError(f"proxy n_joints = {self.n_joints}: expected 1..55 (SMPL-X joint layout)")


def sample_params(rng: np.random.Generator, n: int, cfg: ProxyConfig) -> dict:
    """Random SMPL-X parameters (float32 numpy) in plausible ranges; cam_trans is set later by the renderer."""
    def clipped(sigma, *shape):
        return np.clip(rng.normal(0, sigma, shape), -3 * sigma, 3 * sigma)

    body = clipped(cfg.body_sigma, n, 21, 3)
    # knees and elbows bend mostly one way: fold their main axis to a plausible sign
    body[:, [3, 4], 0] = np.abs(body[:, [3, 4], 0]) * 2.0  # knees (joints 4, 5) flex forward
    body[:, 17, 1] = -np.abs(body[:, 17, 1]) * 2.0  # left elbow (joint 18)
    body[:, 18, 1] = np.abs(body[:, 18, 1]) * 2.0  # right elbow (joint 19)
    arms_down = rng.uniform(0.6, 1.3, n)  # shoulders (joints 16, 17): arms from T-pose towards the body
    body[:, 15, 2] -= arms_down
    body[:, 16, 2] += arms_down
    lh = clipped(cfg.hand_sigma, n, 15, 3)
    rh = clipped(cfg.hand_sigma, n, 15, 3)
    curl_l, curl_r = rng.uniform(0, 0.8, (n, 1)), rng.uniform(0, 0.8, (n, 1))
    lh[:, :, 2] -= curl_l  # finger curls (sign per side so both hands close)
    rh[:, :, 2] += curl_r
    jaw = np.zeros((n, 3))
    jaw[:, 0] = rng.uniform(0, 0.35, n)
    yaw = rng.uniform(-cfg.yaw, cfg.yaw, n)
    pitch, roll = rng.uniform(-cfg.tilt, cfg.tilt, n), rng.uniform(-cfg.tilt, cfg.tilt, n)
    # model frame is y-up facing +z; the camera frame is y-down looking along +z: Rx(pi) turns the figure
    # upright and towards the camera, then yaw / pitch / roll in the model frame
    Rx_pi = np.diag([1.0, -1.0, -1.0])
    R = Rx_pi @ axis_angle_to_matrix(np.stack([pitch, np.zeros(n), np.zeros(n)], 1)) @ \
        axis_angle_to_matrix(np.stack([np.zeros(n), yaw, np.zeros(n)], 1)) @ \
        axis_angle_to_matrix(np.stack([np.zeros(n), np.zeros(n), roll], 1))
    f32 = np.float32
    return {
        "root_pose": matrix_to_axis_angle(R).astype(f32),
        "body_pose": body.reshape(n, 63).astype(f32),
        "lhand_pose": lh.reshape(n, 45).astype(f32),
        "rhand_pose": rh.reshape(n, 45).astype(f32),
        "jaw_pose": jaw.astype(f32),
        "expr": clipped(1.0, n, 10).astype(f32),
        "shape": clipped(1.0, n, 10).astype(f32),
    }


class ProxyDataset(torch.utils.data.Dataset):
    """``n`` generated samples of split ``split`` ("train", "test" or "val"), deterministic by ``seed``.

    ``layer``: the body model (default ``default_layer()``); ``transform``: a callable applied to each sample
    (e.g. ``augment.Augment``; ``"default"`` builds ``Augment`` for this body model), given the sample and a ``numpy.random.Generator`` seeded by (seed, split, i,
    epoch) so that augmented data is deterministic too (``set_epoch`` changes it, as DistributedSampler does).
    """

    def __init__(self, n: int, seed: int = 0, split: str = "train", cfg: ProxyConfig | None = None, layer=None,
                 transform=None, cache_blocks: int = 256):
        if split not in SPLITS:
            raise BinaryHPEError(f"proxy split {split!r}: expected one of {', '.join(SPLITS)}")
        if n < 1:
            raise BinaryHPEError(f"proxy data set size {n}: expected at least 1 sample")
        self.n, self.seed, self.split = int(n), int(seed), split
        self.cfg = cfg or ProxyConfig()
        self.layer = layer if layer is not None else default_layer()
        self.transform = transform
        if transform == "default":  # the standard augmentation for this model
            from binaryhpe.train.data.augment import Augment

            self.transform = None  # set after the model is known (below)
            self._default_aug = True
        else:
            self._default_aug = False
        self.epoch = 0
        self._cache: dict = {}
        self._cache_blocks = cache_blocks
        parts = layer_part_indices(self.layer)
        self.parts = {k: torch.as_tensor(np.asarray(v), dtype=torch.long) for k, v in parts.items()}
        self.parents = np.asarray(self.layer.parents)[:55]
        self._setup_camera()
        if self._default_aug:
            self.transform = Augment(vertex_perm=self.vertex_flip_perm, layer=self.layer)

    # camera: the distance range follows from the model's size so any (synthetic) model fills the image
    def _setup_camera(self):
        with torch.no_grad():
            zero = {k: torch.zeros(1, d) for k, d in PARAM_DIMS.items() if k != "cam_trans"}
            out = self.layer(zero)
        v = out["vertices"][0].numpy()
        self.height = float(v[:, 1].max() - v[:, 1].min())
        if not self.height > 0:
            raise BinaryHPEError("body model: the template has zero height")
        from binaryhpe.train.data.augment import vertex_flip_permutation

        try:  # mirror correspondence of the vertices, for the horizontal flip (augment.py)
            self.vertex_flip_perm = vertex_flip_permutation(v, tol=1e-5 * self.height)
        except ValueError:
            self.vertex_flip_perm = None
        self.depth_range = 0.6 * self.height  # joint_img z: root-relative depth in [-range, range] -> [0, 1]
        H, W = self.cfg.img_size
        self.focal_px = self.cfg.focal * H
        self.principal = (W / 2.0, H / 2.0)
        self.radius_bone = max(0.8, 0.035 * H * 0.7)  # pixels, for a figure spanning ~70% of the height
        self.radius_vert = float(np.clip(0.02 * H * 0.7, 0.6, 1.6))

    def camera(self) -> dict:
        """The pinhole camera (pixels): focal length, principal point, image size."""
        H, W = self.cfg.img_size
        return {"focal": (self.focal_px, self.focal_px), "princpt": self.principal, "img_size": (H, W)}

    def project(self, pts: torch.Tensor) -> torch.Tensor:
        """Camera-frame points (..., 3) -> continuous pixel coordinates (..., 2)."""
        z = pts[..., 2:3].clamp_min(1e-3)
        return pts[..., :2] / z * self.focal_px + torch.tensor(self.principal, dtype=pts.dtype)

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        b = i // BLOCK
        if b not in self._cache:
            if len(self._cache) >= self._cache_blocks:
                self._cache.pop(next(iter(self._cache)))
            self._cache[b] = self._make_block(b)
        blk = self._cache[b]
        j = i % BLOCK
        s = {k: (v[j].float() / 255.0 if k == "img" else v[j].clone()) for k, v in blk.items()}
        if self.transform is not None:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, SPLITS[self.split], i, self.epoch, 7]))
            s = self.transform(s, rng)
        return s

    @torch.no_grad()
    def _make_block(self, b: int) -> dict:
        cfg = self.cfg
        H, W = cfg.img_size
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, SPLITS[self.split], b]))
        n = BLOCK
        p = {k: torch.from_numpy(v) for k, v in sample_params(rng, n, cfg).items()}
        out = self.layer(p)
        verts, joints = out["vertices"].float(), out["joints"].float()
        root = joints[:, :1]
        v_rel, j_rel = verts - root, joints - root
        # camera translation: distance from the fill fraction, pelvis offset from the centre
        fill = torch.from_numpy(rng.uniform(*cfg.fill, n)).float()
        tz = cfg.focal * self.height / fill
        off = torch.from_numpy(rng.uniform(-cfg.shift, cfg.shift, (n, 2))).float()
        tx = off[:, 0] * W / self.focal_px * tz
        ty = off[:, 1] * H / self.focal_px * tz
        cam = torch.stack([tx, ty, tz], 1)
        p["cam_trans"] = cam
        v_cam, j_cam = v_rel + cam[:, None], j_rel + cam[:, None]
        v2, j2 = self.project(v_cam), self.project(j_cam)
        img = self._render(rng, v2, v_cam[..., 2], j2[:, :55], j_cam[:, :55, 2])
        Jn = cfg.n_joints
        jimg = torch.stack([j2[:, :Jn, 0] / W, j2[:, :Jn, 1] / H,
                            ((j_rel[:, :Jn, 2] / self.depth_range + 1) / 2).clamp(0, 1)], -1)
        boxes = torch.stack([self._box(v2[:, self.parts[k]]) for k in ("lhand", "rhand", "face")], 1)
        inside = ((jimg[..., :2] >= 0) & (jimg[..., :2] <= 1)).all(-1, keepdim=True).float()
        blk = {"img": (img * 255).round().clamp(0, 255).to(torch.uint8)}
        blk.update({k: p[k].float() for k in SMPLX_KEYS})
        blk.update({"joint_img": jimg, "boxes": boxes, "joints_3d": j_rel[:, :Jn].contiguous(),
                    "vertices": v_rel.contiguous(), "smplx_valid": torch.ones(n, 1), "joint_valid": inside})
        return blk

    def _box(self, pts2: torch.Tensor) -> torch.Tensor:
        H, W = self.cfg.img_size
        lo, hi = pts2.min(1).values, pts2.max(1).values
        c = (lo + hi) / 2
        size = ((hi - lo) * 1.25).clamp_min(2.0)
        return torch.stack([c[:, 0] / W, c[:, 1] / H, size[:, 0] / W, size[:, 1] / H], -1)

    def _render(self, rng, v2, vz, j2, jz) -> torch.Tensor:
        """Bones as chains of discs along each bone, vertices as discs, one z-buffer, over background noise."""
        n = v2.shape[0]
        H, W = self.cfg.img_size
        lo = torch.from_numpy(rng.uniform(0, 1, (n, 3, 4, 3))).float()
        bg = F.interpolate(lo, size=(H, W), mode="bilinear", align_corners=False) * 0.6 + 0.2
        bg = (bg + torch.from_numpy(rng.normal(0, self.cfg.noise * 0.3, (n, 3, H, W))).float()).clamp(0, 1)
        img = bg.permute(0, 2, 3, 1).reshape(n * H * W, 3).contiguous()
        # body bones (pelvis .. wrists); hands and face are drawn by their vertices
        bones = [j for j in range(1, 22)]
        par, ch = torch.as_tensor(self.parents[bones]), torch.as_tensor(bones)
        K = 10
        t = torch.linspace(0, 1, K)[None, None, :, None]
        bp = (j2[:, par, None] + t * (j2[:, ch, None] - j2[:, par, None])).reshape(n, -1, 2)
        bz = (jz[:, par, None] + t[..., 0] * (jz[:, ch, None] - jz[:, par, None])).reshape(n, -1)
        nv = v2.shape[1]
        col = torch.tensor([0.55, 0.6, 0.9]).repeat(nv, 1)
        col[self.parts["lhand"]] = torch.tensor([0.95, 0.75, 0.2])
        col[self.parts["rhand"]] = torch.tensor([0.95, 0.75, 0.2])
        col[self.parts["face"]] = torch.tensor([0.95, 0.55, 0.45])
        bcol = torch.tensor([0.35, 0.45, 0.85]).repeat(bp.shape[1], 1)
        idx, z, c = [], [], []
        for pts, depth, colour, r, bias in ((bp, bz, bcol, self.radius_bone, 0.0),
                                             (v2, vz, col, self.radius_vert, -1e-3 * self.height)):
            a, b, cc = self._splat(pts, depth + bias, colour, r)
            idx.append(a), z.append(b), c.append(cc)
        idx, z, c = torch.cat(idx), torch.cat(z), torch.cat(c)
        zbuf = torch.full((n * H * W,), math.inf).scatter_reduce(0, idx, z, reduce="amin")
        win = z <= zbuf[idx]
        zmid = jz[:, 0].repeat_interleave(H * W)[idx]
        shade = (0.8 - 0.35 * (z - zmid) / self.depth_range).clamp(0.35, 1.0)
        img[idx[win]] = c[win] * shade[win, None]
        # eyes: dark dots where visible (they show which way the figure faces)
        for e in (23, 24):
            u = torch.floor(j2[:, e, 0]).long()
            v = torch.floor(j2[:, e, 1]).long()
            flat = torch.arange(n) * H * W + v.clamp(0, H - 1) * W + u.clamp(0, W - 1)
            ok = (u >= 0) & (u < W) & (v >= 0) & (v < H) & (jz[:, e] <= zbuf[flat] + 0.03 * self.height)
            img[flat[ok]] = 0.05
        return img.reshape(n, H, W, 3).permute(0, 3, 1, 2).contiguous()

    def _splat(self, pts, z, col, r):
        """Discs of radius ``r`` pixels at ``pts`` (B,N,2): flat pixel indices, depths and colours of the hits."""
        n, N = pts.shape[:2]
        H, W = self.cfg.img_size
        ri = int(math.ceil(r))
        offs = torch.tensor([(dx, dy) for dx in range(-ri, ri + 1) for dy in range(-ri, ri + 1)
                             if dx * dx + dy * dy <= r * r + 0.25])
        tie = torch.arange(N, dtype=torch.float32)[None] * 1e-7  # deterministic winner between equal depths
        u = torch.floor(pts[..., 0]).long()[..., None] + offs[:, 0]  # B,N,O
        v = torch.floor(pts[..., 1]).long()[..., None] + offs[:, 1]
        ok = (u >= 0) & (u < W) & (v >= 0) & (v < H)
        idx = (torch.arange(n)[:, None, None] * (H * W) + v * W + u)[ok]
        zz = (z + tie)[..., None].expand_as(u)[ok]
        cc = col[None, :, None].expand(n, N, offs.shape[0], 3)[ok]
        return idx, zz, cc


def collate(samples: list) -> dict:
    """The default collate (every value is a tensor): kept as a name for DataLoader users."""
    return torch.utils.data.default_collate(samples)
