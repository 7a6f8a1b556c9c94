"""The whole-body BinaryHPE model (Figure 3), following Hand4Whole's public design, with the Table 2d / Table 3
switches and the baseline binarizers of Table 1; its loss (eq. 12) and the QONNX export of its encoders.

Data flow of ``WholeBodyModel.forward(img)``, img (B, 3, H, W) in [0, 1] (docs/wholebody.md has the details):

1. body image = img resized (bilinear) to ``body_size``; body encoder (BiDRN or the chosen backbone) on
   ``2 img - 1`` (the encoders' Q(8,7) input range) -> body feature F (C x h x w).
2. body position net: 1x1 conv C -> J*D, 3D soft-argmax -> ``joint_img`` (B, J, 3) in [0, 1]^3.
3. BoxNet (``binaryhpe.train.boxnet``, binarized as Figure 6 or full precision): [F, heatmaps] -> ``boxes``
   (B, 3, 4) = (cx, cy, w, h) of left hand, right hand, face in [0, 1] image units.
4. RoI align of the *input* image at the (detached) predicted boxes, widened to the crop's aspect ratio and
   enlarged (x2 hands, x1.5 face: Hand4Whole's ``restore_bbox``): the hands at ``hand_size`` (the left
   crop flipped horizontally, both hands through one shared hand encoder as one batch), the face at
   ``face_size``.
5. heads (the layer shapes of ``binaryhpe.train.hand4whole``): hand position net (3D soft-argmax of the
   hand joints) and hand rotation net (features sampled at the hand joints -> Linear -> 15 x 6D); body
   rotation net (body features sampled at the body joints and both hands' features at their MCP joints ->
   root 6D, 21 x 6D body pose; pooled F -> shape, camera); face regressor (pooled face feature -> expression,
   jaw 6D). Rotations are regressed in the continuous 6D representation (Zhou et al. 2019) and returned as
   axis-angle (the contract's keys); the left hand's rotations are un-mirrored: (x, y, z) -> (x, -y, -z).
6. with an ``SMPLXLayer`` attached: ``vertices`` (B, V, 3) and ``joints_3d`` (B, J, 3; the first J SMPL-X
   joints), root-relative (pelvis subtracted).

``cam_trans`` follows Hand4Whole's camera parameterisation: (tx, ty) raw, tz = k sigmoid(gamma) with
k = focal * camera_3d_size / sqrt(area of the image in image heights), focal in image heights.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import pathlib
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from binaryhpe import BinaryHPEError
from binaryhpe.train.binarizers import build_backbone, check_binarizer, make_binary_conv
from binaryhpe.train.boxnet import BoxNet, roi_align, sample_features, soft_argmax_3d
from binaryhpe.train.config import (LCR_MODULES, BiDRNConfig, StageConfig, bidrn_config, config_from_dict,
                                    read_json_config)

SMPLX_KEYS = ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "expr", "shape", "cam_trans")
PARTS = ("body", "hand", "face", "heads")
BODY_POSE_JOINTS = 21
HAND_POSE_JOINTS = 15

# ----------------------------------------------------------------------------------------------------------
# configuration


def _tiny_encoder(size) -> BiDRNConfig:
    """A tiny BiDRN layout (stride-2 stem, the TINY stages): /4 down-sampling, 32 output channels."""
    return BiDRNConfig(in_channels=3, input_size=tuple(size), stem_channels=8, stem_kernel=3, stem_stride=2,
                       stages=(StageConfig("basic", 8, 1, 1), StageConfig("basic", 16, 1, 2),
                               StageConfig("bottleneck", 32, 2, 1)))


@dataclass(frozen=True)
class WholeBodyConfig:
    """The whole-body model. Sizes are (H, W); encoder ``input_size`` is always set from the part's size."""

    name: str = "tiny-wholebody"
    image_size: tuple = (64, 48)  # input image
    body_size: tuple = (32, 24)
    hand_size: tuple = (16, 16)
    face_size: tuple = (16, 16)
    body_encoder: BiDRNConfig = field(default_factory=lambda: _tiny_encoder((32, 24)))
    hand_encoder: BiDRNConfig = field(default_factory=lambda: _tiny_encoder((16, 16)))
    face_encoder: BiDRNConfig = field(default_factory=lambda: _tiny_encoder((16, 16)))
    binarizer: str = "bidrn"  # bidrn, fp, bnn, xnor, dorefa, bireal, reactnet, recu, fda
    binarize: tuple = ("body", "hand", "face")  # binarized encoders (Table 2d); "heads": rotation-net convs
    boxnet: str = "binary"  # "binary" (Figure 6) or "fp" (Table 3)
    body_joints: int = 25
    hand_joints: int = 20
    hand_mcp: tuple = (0, 3, 6, 9)  # indices of the MCP joints among the hand joints (body rotation net)
    hm_depth: int = 8
    head_channels: int = 16  # rotation nets' 1x1 conv width (Hand4Whole: 512)
    boxnet_channels: int = 16  # BoxNet Deconv width (Hand4Whole: 256)
    boxnet_hidden: int = 16  # BoxNet size-MLP width (Hand4Whole: 256)
    num_betas: int = 10
    num_expression: int = 10
    hand_box_scale: float = 2.0  # crops: the predicted box made square-ish (crop aspect) and enlarged (Hand4Whole)
    face_box_scale: float = 1.5
    focal: float = 2.0  # in image heights (the proxy data's camera)
    camera_3d_size: float = 2.5  # metres (Hand4Whole)
    smplx_path: str | None = None
    batch_size: int = 24  # the paper's training defaults (Section 4.1)
    lr: float = 1e-4
    epochs: int = 14
    lr_decay_epochs: tuple = ()  # step schedule: lr / lr_decay_factor after each of these epochs (paper: none)
    lr_decay_factor: float = 10.0

    def __post_init__(self):
        for key in ("image_size", "body_size", "hand_size", "face_size"):
            v = getattr(self, key)
            if (not isinstance(v, (tuple, list)) or len(v) != 2
                    or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in v)):
                raise BinaryHPEError(f"wholebody.{key} = {v!r}: expected (H, W) positive integers")
            object.__setattr__(self, key, tuple(v))
        for part in ("body", "hand", "face"):
            key = f"{part}_encoder"
            enc = getattr(self, key)
            try:
                if isinstance(enc, dict):
                    enc = BiDRNConfig.from_dict({k: v for k, v in enc.items() if k != "input_size"}
                                                | {"input_size": getattr(self, f"{part}_size")})
                elif isinstance(enc, BiDRNConfig):
                    enc = dataclasses.replace(enc, input_size=getattr(self, f"{part}_size"))
                else:
                    raise BinaryHPEError(f"expected a mapping, got {type(enc).__name__}")
            except BinaryHPEError as e:
                raise BinaryHPEError(f"wholebody.{key}: {e}") from None
            object.__setattr__(self, key, enc)
        check_binarizer(self.binarizer)
        if isinstance(self.binarize, str):
            object.__setattr__(self, "binarize", (self.binarize,))
        object.__setattr__(self, "binarize", tuple(self.binarize))
        bad = [p for p in self.binarize if p not in PARTS]
        if bad:
            raise BinaryHPEError(f"wholebody.binarize: unknown part {bad[0]!r} (known: {', '.join(PARTS)})")
        if self.boxnet not in ("binary", "fp"):
            raise BinaryHPEError(f"wholebody.boxnet = {self.boxnet!r}: expected 'binary' or 'fp'")
        for key in ("body_joints", "hand_joints", "hm_depth", "head_channels", "boxnet_channels", "boxnet_hidden",
                    "num_betas", "num_expression", "batch_size", "epochs"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise BinaryHPEError(f"wholebody.{key} = {v!r}: expected a positive integer")
        object.__setattr__(self, "lr_decay_epochs", tuple(self.lr_decay_epochs))
        if any(not isinstance(e, int) or isinstance(e, bool) or e < 1 for e in self.lr_decay_epochs):
            raise BinaryHPEError(f"wholebody.lr_decay_epochs = {self.lr_decay_epochs!r}: expected positive epoch "
                                 "numbers")
        object.__setattr__(self, "hand_mcp", tuple(self.hand_mcp))
        if not self.hand_mcp or any(not isinstance(i, int) or not 0 <= i < self.hand_joints for i in self.hand_mcp):
            raise BinaryHPEError(f"wholebody.hand_mcp = {self.hand_mcp!r}: expected indices in [0, "
                                 f"hand_joints = {self.hand_joints})")
        for key in ("focal", "camera_3d_size", "lr", "hand_box_scale", "face_box_scale", "lr_decay_factor"):
            v = getattr(self, key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
                raise BinaryHPEError(f"wholebody.{key} = {v!r}: expected a positive number")

    @classmethod
    def from_dict(cls, d: dict) -> "WholeBodyConfig":
        return config_from_dict(cls, d, "wholebody")

    @classmethod
    def from_file(cls, path) -> "WholeBodyConfig":
        return cls.from_dict(read_json_config(path))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _configs() -> dict:
    return {
        "tiny-wholebody": WholeBodyConfig(),
        "binaryhpe": WholeBodyConfig(
            name="binaryhpe", image_size=(512, 384), body_size=(256, 192), hand_size=(256, 256),
            face_size=(192, 192), body_encoder=bidrn_config(50, (256, 192)),
            hand_encoder=bidrn_config(50, (256, 256)), face_encoder=bidrn_config(18, (192, 192)),
            binarizer="bidrn", binarize=("body", "hand", "face"), boxnet="binary", head_channels=512,
            boxnet_channels=256, boxnet_hidden=256, focal=5000 / 256),
    }


WHOLEBODY_NAMES = ("tiny-wholebody", "binaryhpe")


def wholebody_config(name: str) -> WholeBodyConfig:
    """A built-in config by name, or a JSON file path."""
    cfgs = _configs()
    if name in cfgs:
        return cfgs[name]
    if str(name).endswith(".json") or pathlib.Path(str(name)).is_file():
        return WholeBodyConfig.from_file(name)
    raise BinaryHPEError(f"unknown whole-body config {name!r}: expected a JSON file or one of {', '.join(cfgs)}")


# ----------------------------------------------------------------------------------------------------------
# rotations


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3): Gram-Schmidt of the two columns of x viewed as (3, 2) (Hand4Whole's layout)."""
    m = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def _sqrt_pos(x: torch.Tensor) -> torch.Tensor:
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle, through the best-conditioned quaternion."""
    m00, m01, m02 = R[..., 0, 0], R[..., 0, 1], R[..., 0, 2]
    m10, m11, m12 = R[..., 1, 0], R[..., 1, 1], R[..., 1, 2]
    m20, m21, m22 = R[..., 2, 0], R[..., 2, 1], R[..., 2, 2]
    q_abs = _sqrt_pos(torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22,
                                   1 - m00 - m11 + m22], dim=-1))
    cands = torch.stack([
        torch.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], dim=-1),
        torch.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], dim=-1),
        torch.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], dim=-1),
        torch.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], dim=-1),
    ], dim=-2) / (2.0 * q_abs[..., None].clamp(min=0.1))
    idx = q_abs.argmax(dim=-1)
    q = torch.gather(cands, -2, idx[..., None, None].expand(*idx.shape, 1, 4)).squeeze(-2)  # (w, x, y, z)
    q = torch.where(q[..., :1] < 0, -q, q)
    xyz = q[..., 1:]
    norm = _sqrt_pos((xyz * xyz).sum(-1))
    half = torch.atan2(norm, q[..., 0])
    angle = 2 * half
    small = angle.abs() < 1e-6
    safe = torch.where(small, torch.ones_like(angle), angle)
    ratio = torch.where(small, 0.5 - angle * angle / 48, torch.sin(half) / safe)
    return xyz / ratio[..., None]


def rot6d_to_axis_angle(x: torch.Tensor) -> torch.Tensor:
    return matrix_to_axis_angle(rot6d_to_matrix(x))


def crop_box(boxes: torch.Tensor, image_size, crop_size, scale: float) -> torch.Tensor:
    """Hand4Whole's ``restore_bbox``: the (cx, cy, w, h) box (normalised units of an image of ``image_size``)
    widened to the crop's aspect ratio (the shorter side grows), then both sides times ``scale``."""
    H, W = image_size
    ch, cw = crop_size
    aspect = cw / ch
    w_px, h_px = boxes[..., 2] * W, boxes[..., 3] * H
    w_new = torch.maximum(w_px, h_px * aspect)
    h_new = torch.maximum(h_px, w_px / aspect)
    return torch.stack([boxes[..., 0], boxes[..., 1], w_new * scale / W, h_new * scale / H], dim=-1)


# ----------------------------------------------------------------------------------------------------------
# heads


def _hidden_conv(cin: int, cout: int, binary: bool, cfg: WholeBodyConfig) -> nn.Module:
    """A rotation net's 1x1 conv + BN + ReLU; with "heads" binarized, the binary conv of the binarizer (an LCR
    module for BiDRN)."""
    if not binary or cfg.binarizer == "fp":
        return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout), nn.ReLU())
    if cfg.binarizer == "bidrn":
        from binaryhpe.train.layers import LCRModule, PreAct

        try:
            lcr = LCRModule(cin, cout, 1, 1, LCR_MODULES)
        except BinaryHPEError as e:
            raise BinaryHPEError(f"wholebody.binarize 'heads' with BiDRN: head_channels = {cout} against encoder "
                                 f"channels {cin}: {e}") from None
        return nn.Sequential(PreAct(), lcr, nn.ReLU())
    return nn.Sequential(make_binary_conv(cfg.binarizer, cin, cout, 1), nn.BatchNorm2d(cout), nn.ReLU())


class PositionNet(nn.Module):
    """1x1 conv C -> joints*D; 3D soft-argmax -> (B, joints, 3) in [0, 1]^3."""

    def __init__(self, cin: int, joints: int, depth: int):
        super().__init__()
        self.joints, self.depth = joints, depth
        self.conv = nn.Conv2d(cin, joints * depth, 1)

    def forward(self, feat):
        hm = self.conv(feat)
        return hm, soft_argmax_3d(hm, self.joints, self.depth)


class HandRotationNet(nn.Module):
    def __init__(self, cin: int, cfg: WholeBodyConfig, binary: bool):
        super().__init__()
        self.hand_conv = _hidden_conv(cin, cfg.head_channels, binary, cfg)
        self.hand_pose_out = nn.Linear(cfg.hand_joints * (cfg.head_channels + 3), HAND_POSE_JOINTS * 6)

    def forward(self, feat, joint_img):
        f = sample_features(self.hand_conv(feat), joint_img[..., :2])
        return self.hand_pose_out(torch.cat([f, joint_img], dim=2).flatten(1))


class BodyRotationNet(nn.Module):
    def __init__(self, cin: int, hand_cin: int, cfg: WholeBodyConfig, binary: bool):
        super().__init__()
        c = cfg.head_channels
        self.body_conv = _hidden_conv(cin, c, binary, cfg)
        self.lhand_conv = _hidden_conv(hand_cin, c, binary, cfg)
        self.rhand_conv = _hidden_conv(hand_cin, c, binary, cfg)
        d = (cfg.body_joints + 2 * len(cfg.hand_mcp)) * (c + 3)
        self.root_pose_out = nn.Linear(d, 6)
        self.body_pose_out = nn.Linear(d, BODY_POSE_JOINTS * 6)
        self.shape_out = nn.Linear(cin, cfg.num_betas)
        self.cam_out = nn.Linear(cin, 3)

    def forward(self, body_feat, joint_img, lhand_feat, lhand_mcp, rhand_feat, rhand_mcp):
        b = torch.cat([sample_features(self.body_conv(body_feat), joint_img[..., :2]), joint_img], dim=2)
        lh = torch.cat([sample_features(self.lhand_conv(lhand_feat), lhand_mcp[..., :2]), lhand_mcp], dim=2)
        rh = torch.cat([sample_features(self.rhand_conv(rhand_feat), rhand_mcp[..., :2]), rhand_mcp], dim=2)
        feat = torch.cat([b, lh, rh], dim=1).flatten(1)
        g = body_feat.mean((2, 3))
        return self.root_pose_out(feat), self.body_pose_out(feat), self.shape_out(g), self.cam_out(g)


class FaceRegressor(nn.Module):
    def __init__(self, cin: int, cfg: WholeBodyConfig):
        super().__init__()
        self.expr_out = nn.Linear(cin, cfg.num_expression)
        self.jaw_pose_out = nn.Linear(cin, 6)

    def forward(self, face_feat):
        g = face_feat.mean((2, 3))
        return self.expr_out(g), self.jaw_pose_out(g)


# ----------------------------------------------------------------------------------------------------------
# the model


class WholeBodyModel(nn.Module):
    """Figure 3 (see the module docstring). ``smplx_layer`` is kept outside the state dict (the SMPL-X model
    data is licensed and must not travel in checkpoints); ``.to()`` moves it with the model."""

    def __init__(self, cfg: WholeBodyConfig, smplx_layer=None):
        super().__init__()
        self.cfg = cfg
        bz = cfg.binarize

        def enc(part):
            return build_backbone(cfg.binarizer if part in bz else "fp", getattr(cfg, f"{part}_encoder"))

        self.body_encoder, self.hand_encoder, self.face_encoder = enc("body"), enc("hand"), enc("face")
        cb, ch, cf = (self.body_encoder.out_channels, self.hand_encoder.out_channels,
                      self.face_encoder.out_channels)
        heads = "heads" in bz
        self.body_position_net = PositionNet(cb, cfg.body_joints, cfg.hm_depth)
        self.boxnet = BoxNet(cb + cfg.body_joints * cfg.hm_depth, cfg.boxnet_channels, cfg.boxnet_hidden,
                             binary=cfg.boxnet == "binary")
        self.hand_position_net = PositionNet(ch, cfg.hand_joints, cfg.hm_depth)
        self.hand_rotation_net = HandRotationNet(ch, cfg, heads)
        self.body_rotation_net = BodyRotationNet(cb, ch, cfg, heads)
        self.face_regressor = FaceRegressor(cf, cfg)
        self.register_buffer("mcp_idx", torch.tensor(cfg.hand_mcp, dtype=torch.long), persistent=False)
        self.smplx_layer = None
        if smplx_layer is not None:
            self.attach_smplx(smplx_layer)

    def attach_smplx(self, layer) -> None:
        object.__setattr__(self, "smplx_layer", layer)  # not a registered submodule: not in state_dict

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self.smplx_layer is not None and isinstance(self.smplx_layer, nn.Module):
            self.smplx_layer._apply(fn, *args, **kwargs)
        return self

    def check_input(self, img: torch.Tensor) -> None:
        if img.dim() != 4 or img.shape[1] != 3:
            raise BinaryHPEError(f"whole-body model input must be (B, 3, H, W) in [0, 1]; got {tuple(img.shape)}")

    def camera(self, cam_param: torch.Tensor) -> torch.Tensor:
        h, w = self.cfg.body_size
        k = self.cfg.focal * self.cfg.camera_3d_size / math.sqrt(w / h)
        return torch.cat([cam_param[:, :2], k * torch.sigmoid(cam_param[:, 2:3])], dim=1)

    def forward(self, img: torch.Tensor) -> dict:
        self.check_input(img)
        cfg = self.cfg
        B = img.shape[0]
        body_img = F.interpolate(img, size=cfg.body_size, mode="bilinear", align_corners=False)
        body_feat = self.body_encoder(body_img * 2 - 1)
        body_hm, joint_img = self.body_position_net(body_feat)
        boxes = self.boxnet(body_feat, body_hm.detach())
        size = tuple(img.shape[2:])
        hand_boxes = crop_box(boxes[:, :2].detach(), size, cfg.hand_size, cfg.hand_box_scale)
        face_box = crop_box(boxes[:, 2].detach(), size, cfg.face_size, cfg.face_box_scale)
        lhand = roi_align(img, hand_boxes[:, 0], cfg.hand_size)
        rhand = roi_align(img, hand_boxes[:, 1], cfg.hand_size)
        face = roi_align(img, face_box, cfg.face_size)
        hand_feat = self.hand_encoder(torch.cat([torch.flip(lhand, [3]), rhand], dim=0) * 2 - 1)
        _, hand_joint_img = self.hand_position_net(hand_feat)
        hand_pose = rot6d_to_axis_angle(
            self.hand_rotation_net(hand_feat, hand_joint_img).reshape(2 * B, HAND_POSE_JOINTS, 6))
        lhand_pose = hand_pose[:B] * hand_pose.new_tensor([1.0, -1.0, -1.0])  # un-mirror the left hand
        rhand_pose = hand_pose[B:]
        lhand_joint = hand_joint_img[:B]
        lhand_joint = torch.cat([1 - lhand_joint[..., :1], lhand_joint[..., 1:]], dim=2)
        rhand_joint = hand_joint_img[B:]
        lhand_feat = torch.flip(hand_feat[:B], [3])
        rhand_feat = hand_feat[B:]
        root6, body6, shape, cam_param = self.body_rotation_net(
            body_feat, joint_img.detach(), lhand_feat, lhand_joint[:, self.mcp_idx].detach(), rhand_feat,
            rhand_joint[:, self.mcp_idx].detach())
        face_feat = self.face_encoder(face * 2 - 1)
        expr, jaw6 = self.face_regressor(face_feat)
        out = {
            "root_pose": rot6d_to_axis_angle(root6),
            "body_pose": rot6d_to_axis_angle(body6.reshape(B, BODY_POSE_JOINTS, 6)).reshape(B, -1),
            "lhand_pose": lhand_pose.reshape(B, -1),
            "rhand_pose": rhand_pose.reshape(B, -1),
            "jaw_pose": rot6d_to_axis_angle(jaw6),
            "expr": expr,
            "shape": shape,
            "cam_trans": self.camera(cam_param),
            "joint_img": joint_img,
            "boxes": boxes,
        }
        if self.smplx_layer is not None:
            mesh = self.smplx_layer({k: out[k] for k in SMPLX_KEYS if k != "cam_trans"})
            joints = mesh["joints"]
            if joints.shape[1] < cfg.body_joints:
                raise BinaryHPEError(f"SMPL-X layer gives {joints.shape[1]} joints, fewer than body_joints = "
                                     f"{cfg.body_joints}")
            root = joints[:, :1]
            out["vertices"] = mesh["vertices"] - root
            out["joints_3d"] = joints[:, :cfg.body_joints] - root
        return out


def build_wholebody(cfg: WholeBodyConfig | str | None = None, smplx_layer=None) -> WholeBodyModel:
    if cfg is None:
        cfg = wholebody_config("tiny-wholebody")
    elif isinstance(cfg, str):
        cfg = wholebody_config(cfg)
    elif isinstance(cfg, dict):
        cfg = WholeBodyConfig.from_dict(cfg)
    return WholeBodyModel(cfg, smplx_layer)


# ----------------------------------------------------------------------------------------------------------
# loss (eq. 12)


def _masked_l1(pred, gt, mask, key):
    if pred.shape != gt.shape:
        raise BinaryHPEError(f"loss: {key!r} prediction has shape {tuple(pred.shape)}, target {tuple(gt.shape)}")
    return ((pred - gt).abs() * mask).mean()


def _mask(batch, key, shape, like):
    m = batch.get(key)
    if m is None:
        return torch.ones(shape, dtype=like.dtype, device=like.device)
    m = torch.as_tensor(m, dtype=like.dtype, device=like.device)
    try:
        return m.expand(shape) if m.dim() == len(shape) else m.reshape(shape)
    except RuntimeError:
        raise BinaryHPEError(f"loss: mask {key!r} has shape {tuple(m.shape)}, expected {tuple(shape)}") from None


def wholebody_loss(out: dict, batch: dict) -> dict:
    """L = L_smplx + L_joint + L_box (eq. 12), each an L1 distance masked by the valid flags.

    Every term is the mean over all elements of abs(pred - gt) * mask (Hand4Whole's convention):
    - smplx: sum over the SMPL-X keys present in ``batch`` (``SMPLX_KEYS``, camera included), mask
      ``smplx_valid`` (B, 1);
    - joint: ``joint_img`` (B, J, 3) with ``joint_valid`` (B, J, 1), plus ``joints_3d`` when both the output
      (an SMPL-X layer is attached) and the batch have it, masked by ``joints_3d_valid`` when the batch has it
      (the real-data adapters), else by ``joint_valid``;
    - box: ``boxes`` (B, 3, 4), mask ``box_valid`` (B, 3, 1) when given.
    Missing masks count as all valid. Returns {"total", "smplx", "joint", "box"} (scalar tensors).
    """
    for key in ("joint_img", "boxes"):
        if key not in batch:
            raise BinaryHPEError(f"loss: the batch has no {key!r} (keys: {', '.join(sorted(batch))})")
        if key not in out:
            raise BinaryHPEError(f"loss: the model output has no {key!r}")
    keys = [k for k in SMPLX_KEYS if k in batch]
    if not keys:
        raise BinaryHPEError(f"loss: the batch has none of the SMPL-X keys {', '.join(SMPLX_KEYS)}")
    ref = out["joint_img"]
    B, J = ref.shape[:2]
    sv = _mask(batch, "smplx_valid", (B, 1), ref)
    smplx = sum(_masked_l1(out[k], batch[k].to(ref), sv, k) for k in keys)
    jv = _mask(batch, "joint_valid", (B, J, 1), ref)
    joint = _masked_l1(out["joint_img"], batch["joint_img"].to(ref), jv, "joint_img")
    if "joints_3d" in out and "joints_3d" in batch:
        jv3 = _mask(batch, "joints_3d_valid", (B, J, 1), ref) if "joints_3d_valid" in batch else jv
        joint = joint + _masked_l1(out["joints_3d"], batch["joints_3d"].to(ref), jv3, "joints_3d")
    bv = _mask(batch, "box_valid", (B, 3, 1), ref)
    box = _masked_l1(out["boxes"], batch["boxes"].to(ref), bv, "boxes")
    return {"total": smplx + joint + box, "smplx": smplx, "joint": joint, "box": box}


# ----------------------------------------------------------------------------------------------------------
# export

HOST_WHY = {
    "resize": "image pre-processing where the frame arrives (the whole frame in memory)",
    "soft_argmax": "the softmax needs exp and a division, which the numerics contract does not have "
                   "(docs/numerics.md)",
    "crop_box": "a few scalar operations on the predicted boxes",
    "roi_align": "a data-dependent bilinear gather from the full input image at the predicted boxes: not a "
                 "streaming operation, and it needs the whole frame in memory",
    "sample_features": "bilinear sampling of features at predicted points (data-dependent addresses)",
    "linear": "full-precision (or, for the BoxNet size MLPs' hidden layers, binary) Linear layers on a few "
              "hundred sampled values: too small to pay for a hardware pass",
    "mean_pool": "a global mean feeding host Linear layers",
    "rot6d_to_axis_angle": "6D -> rotation matrix -> axis-angle: normalisation, cross product, sqrt, atan2",
    "smplx": "the SMPL-X layer (shape/pose blend shapes, joint regression, linear blend skinning): float "
             "arithmetic on the licensed model arrays",
}
HOST_FLOPS = {  # per run, the host time model's formulas (compile/host/a53.py is calibrated with these)
    "resize": lambda c, oh, ow: 8 * c * oh * ow,
    "roi_align": lambda c, oh, ow: 8 * c * oh * ow,
    "sample_features": lambda c, k: 8 * c * k,
    "soft_argmax_2d": lambda k, h, w: 8 * k * h * w,
    "soft_argmax_3d": lambda j, d, h, w: 10 * j * d * h * w,
    "crop_box": lambda n: 10 * n,
    "linear": lambda i, o: 2 * i * o,
    "mean_pool": lambda c, h, w: c * h * w,
    "rot6d_to_axis_angle": lambda n: 60 * n,
    "smplx": lambda v, j, p, pb: 2 * v * 3 * (p + pb) + 2 * j * v * 3 + 2 * v * j * 12 + 24 * v,
}
SMPLX_VERTS = 10475  # the official SMPL-X mesh
_F32 = 4


def _feat_hw(enc_cfg, size) -> tuple:
    f = enc_cfg.downsampling()
    return size[0] // f, size[1] // f


def host_nodes(model: "WholeBodyModel", smplx_verts: int = SMPLX_VERTS) -> list:
    """The host part of one frame: nodes {name, kind, computes, why, dims, flops, bytes, count}.

    ``flops`` and ``bytes`` are per run, ``count`` runs per frame, for the model's config. ``kind`` selects the
    FLOP formula (``HOST_FLOPS``, the one the host time model is calibrated with; ``dims`` its arguments);
    ``bytes`` are float32 bytes read and written (inputs, weights, outputs; a bilinear output reads 4 taps).
    ``smplx_verts``: the SMPL-X mesh size (10,475 for the official model)."""
    from binaryhpe.train.smplx_model import NUM_JOINTS, NUM_POSE_BASIS

    cfg = model.cfg
    J, Jh, D, c = cfg.body_joints, cfg.hand_joints, cfg.hm_depth, cfg.head_channels
    cb, cf = model.body_encoder.out_channels, model.face_encoder.out_channels
    h, w = _feat_hw(cfg.body_encoder, cfg.body_size)
    hh, wh = _feat_hw(cfg.hand_encoder, cfg.hand_size)
    hf, wf = _feat_hw(cfg.face_encoder, cfg.face_size)
    up = 2 ** sum(isinstance(m, nn.ConvTranspose2d) for m in model.boxnet.deconv)
    cbox, hid = model.boxnet.bbox_center.in_channels, cfg.boxnet_hidden
    nodes = []

    def add(name, kind, computes, dims, read, write, count=1):
        why = HOST_WHY["soft_argmax" if kind.startswith("soft_argmax") else kind]
        nodes.append({"name": name, "kind": kind, "computes": computes, "why": why, "dims": list(dims),
                      "flops": int(HOST_FLOPS[kind](*dims)), "bytes": int((read + write) * _F32),
                      "count": int(count)})

    bh, bw = cfg.body_size
    add("resize", "resize", f"bilinear resize of the {cfg.image_size[0]} x {cfg.image_size[1]} image to the body "
        f"size {bh} x {bw} (3 channels), quantized to the body encoder's input", (3, bh, bw),
        4 * 3 * bh * bw, 3 * bh * bw)
    add("soft_argmax_3d_body", "soft_argmax_3d", f"3D soft-argmax of the body heatmap (body_heads): {J} joints x "
        f"{D} depth bins x {h} x {w}", (J, D, h, w), J * D * h * w, J * 3)
    add("soft_argmax_3d_hand", "soft_argmax_3d", f"3D soft-argmax of a hand heatmap (hand_heads, per crop): {Jh} "
        f"joints x {D} depth bins x {hh} x {wh}", (Jh, D, hh, wh), Jh * D * hh * wh, Jh * 3, count=2)
    H2, W2 = h * up, w * up
    add("soft_argmax_2d_boxnet", "soft_argmax_2d", f"2D soft-argmax of the 3 box-centre maps (boxnet) of {H2} x "
        f"{W2}", (3, H2, W2), 3 * H2 * W2, 3 * 2)
    add("sample_features_boxnet", "sample_features", f"bilinear samples of the {cbox} BoxNet features at the 3 "
        "box centres", (cbox, 3), 4 * cbox * 3, cbox * 3)
    add("linear_boxnet_hidden", "linear", f"a BoxNet size MLP's hidden layer: Linear({cbox}, {hid})"
        + (" (binary) + ReLU" if cfg.boxnet == "binary" else " + ReLU") + ", for each of the 3 boxes",
        (cbox, hid), cbox + cbox * hid + hid, hid, count=3)
    add("linear_boxnet_size", "linear", f"a BoxNet size MLP's output layer: Linear({hid}, 2), for each of the 3 "
        "boxes", (hid, 2), hid + hid * 2 + 2, 2, count=3)
    add("crop_box", "crop_box", "the 3 predicted boxes widened to the crops' aspect ratio and enlarged", (3,),
        3 * 4, 3 * 4)
    hs, fs = cfg.hand_size, cfg.face_size
    add("roi_align_hand", "roi_align", f"a bilinear crop of the input image at a hand box, {hs[0]} x {hs[1]} (the "
        "left one mirrored), quantized to the hand encoder's input", (3, *hs), 4 * 3 * hs[0] * hs[1],
        3 * hs[0] * hs[1], count=2)
    add("roi_align_face", "roi_align", f"a bilinear crop of the input image at the face box, {fs[0]} x {fs[1]}, "
        "quantized to the face encoder's input", (3, *fs), 4 * 3 * fs[0] * fs[1], 3 * fs[0] * fs[1])
    mcp = len(cfg.hand_mcp)
    add("sample_features_body", "sample_features", f"bilinear samples of body_conv ({c} channels) at the {J} body "
        "joints", (c, J), 4 * c * J, c * J)
    add("sample_features_mcp", "sample_features", f"bilinear samples of lhand_conv / rhand_conv ({c} channels) at "
        f"a hand's {mcp} MCP joints", (c, mcp), 4 * c * mcp, c * mcp, count=2)
    add("sample_features_hand", "sample_features", f"bilinear samples of hand_conv ({c} channels) at a hand's {Jh} "
        "joints", (c, Jh), 4 * c * Jh, c * Jh, count=2)
    d = (J + 2 * mcp) * (c + 3)
    for name, i, o, runs in (("hand_pose_out", Jh * (c + 3), HAND_POSE_JOINTS * 6, 2), ("root_pose_out", d, 6, 1),
                             ("body_pose_out", d, BODY_POSE_JOINTS * 6, 1), ("shape_out", cb, cfg.num_betas, 1),
                             ("cam_out", cb, 3, 1), ("expr_out", cf, cfg.num_expression, 1),
                             ("jaw_pose_out", cf, 6, 1)):
        add(f"linear_{name}", "linear", f"{name}: Linear({i}, {o})" + (", per hand" if runs > 1 else ""), (i, o),
            i + i * o + o, o, count=runs)
    add("mean_pool_body", "mean_pool", f"global mean of the body feature ({cb} x {h} x {w})", (cb, h, w),
        cb * h * w, cb)
    add("mean_pool_face", "mean_pool", f"global mean of the face feature ({cf} x {hf} x {wf})", (cf, hf, wf),
        cf * hf * wf, cf)
    nrot = 1 + BODY_POSE_JOINTS + 1 + 2 * HAND_POSE_JOINTS
    add("rot6d_to_axis_angle", "rot6d_to_axis_angle", f"{nrot} rotations 6D -> axis-angle (root, "
        f"{BODY_POSE_JOINTS} body, jaw, 2 x {HAND_POSE_JOINTS} hand)", (nrot,), nrot * 6, nrot * 3)
    V, NJ, P = smplx_verts, NUM_JOINTS, cfg.num_betas + cfg.num_expression
    weights = V * 3 + V * 3 * P + V * 3 * NUM_POSE_BASIS + NJ * V + V * NJ  # template, blend shapes, regressor, skin
    add("smplx", "smplx", f"SMPL-X: {P} shape + expression blend shapes, {NJ}-joint regression, "
        f"{NUM_POSE_BASIS}-dim pose blend shapes, linear blend skinning of {V} vertices", (V, NJ, P, NUM_POSE_BASIS),
        weights + P + NJ * 3, V * 3 + NJ * 3)
    return nodes


def export_wholebody(model: WholeBodyModel, out_dir, check: bool = True, verbose: bool = False,
                     parts: bool = True) -> dict:
    """Export the BiDRN encoders and the hardware parts (hardware mode, frozen copies: ``model`` is untouched)
    to QONNX.

    Writes ``body_encoder.onnx``, ``hand_encoder.onnx`` (one network, run on both hand crops),
    ``face_encoder.onnx``, with ``parts`` ``boxnet.onnx``, ``body_heads.onnx``, ``hand_heads.onnx``
    (``binaryhpe.train.heads_hw``), and ``export.json``. An encoder that is not a BiDRN (full precision, or a
    baseline binarizer: no hardware mode) is listed with the reason and not exported; so is a part whose input
    encoder is not exported or that contains a layer without a hardware mode. With ``check``, each exported
    file is run with qonnx's ``execute_onnx`` on a seeded input and must equal the hardware-mode PyTorch
    module on every element (raises BinaryHPEError otherwise). Returns the manifest (``encoders``, ``parts``,
    ``host``: the host nodes of ``host_nodes``).
    """
    from binaryhpe.train.bidrn import BiDRN
    from binaryhpe.train.export import export_qonnx, require_exact_export
    from binaryhpe.train.hardware import to_hardware
    from binaryhpe.train.heads_hw import PARTS as HW_PARTS
    from binaryhpe.train.heads_hw import export_part

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    manifest = {"config": cfg.name, "binarizer": cfg.binarizer, "encoders": {}, "parts": {},
                "host": host_nodes(model),
                "input": "each encoder takes 2 * crop - 1 (the crop in [0, 1]), shape (1, 3, H, W); each part "
                         "takes its encoder's output (X format)"}
    for part in ("body", "hand", "face"):
        key = f"{part}_encoder"
        enc = getattr(model, key)
        size = getattr(cfg, f"{part}_size")
        if not isinstance(enc, BiDRN):
            why = ("full precision (not in cfg.binarize)" if part not in cfg.binarize else
                   f"binarizer {cfg.binarizer!r} has no hardware mode (only BiDRN follows docs/numerics.md)")
            manifest["encoders"][key] = {"exported": False, "reason": why}
            continue
        hw = to_hardware(copy.deepcopy(enc).cpu(), enc.cfg.numerics)
        g = torch.Generator().manual_seed(0)
        x = torch.rand((1, 3, *size), generator=g) * 2 - 1
        path = export_qonnx(hw, x, out_dir / f"{key}.onnx", verbose=verbose)
        entry = {"exported": True, "path": str(path), "input_shape": [1, 3, *size],
                 "output_shape": [1, *enc.output_shape()]}
        if check:
            entry["check"] = require_exact_export(hw, path, x, key)
        manifest["encoders"][key] = entry
    if parts:
        cpu = copy.deepcopy(model).cpu() if any(p.device.type != "cpu" for p in model.parameters()) else model
        for name in HW_PARTS:
            src = "hand_encoder" if name == "hand_heads" else "body_encoder"
            if not manifest["encoders"][src]["exported"]:
                manifest["parts"][name] = {"exported": False, "reason": f"its input, the {src}, has no hardware "
                                                                         "mode"}
                continue
            try:
                entry = export_part(cpu, name, out_dir, check=check, verbose=verbose)
            except BinaryHPEError as e:
                if "has no hardware mode" not in str(e):
                    raise
                manifest["parts"][name] = {"exported": False, "reason": str(e)}
                continue
            manifest["parts"][name] = {"exported": True, **entry}
    (out_dir / "export.json").write_text(json.dumps(manifest, indent=2))
    return manifest


__all__ = ["SMPLX_KEYS", "WHOLEBODY_NAMES", "WholeBodyConfig", "WholeBodyModel", "build_wholebody", "crop_box",
           "export_wholebody", "host_nodes", "matrix_to_axis_angle", "rot6d_to_axis_angle", "rot6d_to_matrix",
           "wholebody_config", "wholebody_loss"]
