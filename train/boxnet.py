"""BoxNet (Hand4Whole) and the Binarized BoxNet of Section 3.2 / Figure 6, with the geometric helpers
(soft-argmax, feature sampling, RoI align) the whole-body model uses.

BoxNet: the body feature F (C x h x w) concatenated with the 3D joint heatmaps H (J*D x h x w) -> three
Deconv(4, 2, 1) + BN + activation (C+J*D -> c -> c -> c, x8 up-sampling) -> a 1x1 conv to 3 maps whose 2D
soft-argmax gives the left hand, right hand and face box centres -> the features sampled at each centre ->
per part Linear(c, c) + ReLU + Linear(c, 2): the box size. The layer shapes are those of
``binaryhpe.train.hand4whole.BoxNet`` (the Params / OPs structure).

Binarized (``binary=True``): "we binarize both Deconv layers and Linear layers except the final one": the first
two Deconvs and the hidden Linear of each size MLP are binary (``BinaryDeconv`` / ``BinaryLinear``: the
BiDRN binarization, sign of the input with the ApproxSign gradient of eq. 2, weights alpha sign(w) with alpha
the per-output-channel mean abs(w) of eq. 4); the third Deconv, the centre conv and the final Linears stay full
precision (the split that reproduces the Params of Tables 2c, 2d and 3, docs/params-ops.md). In the binarized
BoxNet the activation after each Deconv's BN is Hardtanh (eq. 3) instead of ReLU: a sign after a ReLU would
make every binary input +1.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from binaryhpe import BinaryHPEError
from binaryhpe.train.quant import ApproxSign


def _binary_weight(w: torch.Tensor, out_dim: int) -> torch.Tensor:
    """alpha sign(w), alpha = mean abs(w) over every dim but ``out_dim`` (eq. 4); backward: the clipped STE
    (1{abs(w) <= 1}) times alpha plus the exact gradient through alpha."""
    dims = tuple(d for d in range(w.dim()) if d != out_dim)
    alpha = w.abs().mean(dim=dims, keepdim=True)
    s = torch.where(w >= 0, 1.0, -1.0)
    ste = w.clamp(-1, 1)
    return alpha * (s.detach() - ste.detach() + ste)  # forward alpha sign(w); backward through clip and alpha


class BinaryDeconv(nn.ConvTranspose2d):
    """Binarized ConvTranspose2d (weights (Cin, Cout, k, k): alpha per output channel)."""

    binary_weights = True

    def forward(self, x):
        return F.conv_transpose2d(ApproxSign.apply(x), _binary_weight(self.weight, 1), self.bias, self.stride,
                                  self.padding)


class BinaryLinear(nn.Linear):
    """Binarized Linear (weights (out, in): alpha per output feature)."""

    binary_weights = True

    def forward(self, x):
        return F.linear(ApproxSign.apply(x), _binary_weight(self.weight, 0), self.bias)


# ----------------------------------------------------------------------------------------------------------
# geometry: coordinates are normalised image units in [0, 1], pixel i of n covering [i/n, (i+1)/n]


def soft_argmax_2d(hm: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) logits -> (B, K, 2) expected (x, y) in [0, 1] (pixel centres at (i + 0.5) / n)."""
    b, k, h, w = hm.shape
    p = F.softmax(hm.reshape(b, k, h * w), dim=2).reshape(b, k, h, w)
    xs = (torch.arange(w, dtype=hm.dtype, device=hm.device) + 0.5) / w
    ys = (torch.arange(h, dtype=hm.dtype, device=hm.device) + 0.5) / h
    return torch.stack([(p.sum(2) * xs).sum(2), (p.sum(3) * ys).sum(2)], dim=2)


def soft_argmax_3d(hm: torch.Tensor, joints: int, depth: int) -> torch.Tensor:
    """(B, J*D, H, W) logits -> (B, J, 3) expected (x, y, z) in [0, 1] (Sun et al. 2018)."""
    b, c, h, w = hm.shape
    if c != joints * depth:
        raise BinaryHPEError(f"joint heatmap has {c} channels, expected joints x depth = {joints} x {depth}")
    p = F.softmax(hm.reshape(b, joints, depth * h * w), dim=2).reshape(b, joints, depth, h, w)
    xs = (torch.arange(w, dtype=hm.dtype, device=hm.device) + 0.5) / w
    ys = (torch.arange(h, dtype=hm.dtype, device=hm.device) + 0.5) / h
    zs = (torch.arange(depth, dtype=hm.dtype, device=hm.device) + 0.5) / depth
    x = (p.sum((2, 3)) * xs).sum(2)
    y = (p.sum((2, 4)) * ys).sum(2)
    z = (p.sum((3, 4)) * zs).sum(2)
    return torch.stack([x, y, z], dim=2)


def sample_features(feat: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Bilinear features (B, C, H, W) at points (B, K, 2) in [0, 1] -> (B, K, C) (Hand4Whole's grid_sample)."""
    grid = (xy * 2 - 1).unsqueeze(2)  # (B, K, 1, 2)
    out = F.grid_sample(feat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.squeeze(3).transpose(1, 2)


def roi_align(img: torch.Tensor, boxes: torch.Tensor, size, min_size: float = 1e-3) -> torch.Tensor:
    """Crop-and-resize (B, C, H, W) at boxes (B, 4) = (cx, cy, w, h) in [0, 1] image units to ``size`` (h, w).

    Equivalent to torchvision's ``roi_align(aligned=True, sampling_ratio=1)`` (one bilinear sample at each bin
    centre, zero outside the image); torchvision is not installed here, so it is written with grid_sample
    (differentiable in the image; the boxes are detached by the caller as in Hand4Whole).
    """
    oh, ow = size
    b = img.shape[0]
    cx, cy = boxes[:, 0], boxes[:, 1]
    bw, bh = boxes[:, 2].clamp(min=min_size), boxes[:, 3].clamp(min=min_size)
    tx = (torch.arange(ow, dtype=img.dtype, device=img.device) + 0.5) / ow - 0.5  # bin centres in [-0.5, 0.5]
    ty = (torch.arange(oh, dtype=img.dtype, device=img.device) + 0.5) / oh - 0.5
    gx = cx[:, None] + bw[:, None] * tx[None, :]  # (B, ow) in [0, 1] image units
    gy = cy[:, None] + bh[:, None] * ty[None, :]
    grid = torch.stack([gx[:, None, :].expand(b, oh, ow), gy[:, :, None].expand(b, oh, ow)], dim=3) * 2 - 1
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# ----------------------------------------------------------------------------------------------------------


class BoxNet(nn.Module):
    """Hand / face boxes from the body feature and joint heatmaps; ``binary`` selects Figure 6's binarization.

    ``forward(feat, joint_hm) -> boxes`` (B, 3, 4): (cx, cy, w, h) in [0, 1] image units for left hand, right
    hand, face. The sizes are the raw outputs of the final Linear (as Hand4Whole); crops clamp them.
    """

    PARTS = ("lhand", "rhand", "face")

    def __init__(self, in_channels: int, channels: int = 256, hidden: int = 256, binary: bool = False):
        super().__init__()
        self.binary = binary
        chans = [in_channels, channels, channels, channels]
        layers = []
        for i, (ci, co) in enumerate(zip(chans[:-1], chans[1:])):
            cls = BinaryDeconv if (binary and i < 2) else nn.ConvTranspose2d  # final Deconv: full precision
            layers += [cls(ci, co, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(co),
                       nn.Hardtanh() if binary else nn.ReLU()]
        self.deconv = nn.Sequential(*layers)
        self.bbox_center = nn.Conv2d(channels, 3, 1)
        lin = BinaryLinear if binary else nn.Linear
        self.lhand_size = nn.Sequential(lin(channels, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.rhand_size = nn.Sequential(lin(channels, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.face_size = nn.Sequential(lin(channels, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, feat: torch.Tensor, joint_hm: torch.Tensor) -> torch.Tensor:
        x = self.deconv(torch.cat([feat, joint_hm], dim=1))
        centres = soft_argmax_2d(self.bbox_center(x))  # (B, 3, 2)
        f = sample_features(x, centres.detach())  # (B, 3, C)
        sizes = torch.stack([self.lhand_size(f[:, 0]), self.rhand_size(f[:, 1]), self.face_size(f[:, 2])], dim=1)
        return torch.cat([centres, sizes], dim=2)


__all__ = ["BinaryDeconv", "BinaryLinear", "BoxNet", "roi_align", "sample_features", "soft_argmax_2d",
           "soft_argmax_3d"]
