"""Hand4Whole's whole-body network structure, full precision or binarized, for counting Params and OPs.

This is the structure of Hand4Whole (Moon et al., 2022) as its public release builds it (issue 3, section 4),
written in plain torch (no torchvision): it exists so that ``binaryhpe.train.opcount`` can count the paper's
Params / OPs from the architecture itself. The forward pass follows the real data flow at the real sizes
(body 256x192, hands 256x256 batched, face 192x192) but the geometric glue that has no parameters and no
multiply-accumulates worth counting (RoI cropping, soft-argmax, joint sampling) is reduced to tensor shapes.

Modules (names are the breakdown of ``binaryhpe params``):
- ``body_encoder``: ResNet-50 on the 256x192 body image -> 2048x8x6
- ``body_position_net``: 1x1 conv 2048 -> 25*8 (8x8x6 joint heatmap)
- ``body_rotation_net``: three 1x1 conv 2048->512 + BN + ReLU (body, left hand, right hand features),
  Linear(33*515 -> 6) root pose, Linear(33*515 -> 21*6) body pose, Linear(2048 -> 10) shape,
  Linear(2048 -> 3) camera
- ``boxnet``: three ConvTranspose2d(4, 2, 1, no bias) + BN + ReLU, 2248 -> 256 -> 256 -> 256 on the body
  feature concatenated with the heatmap, a 1x1 conv 256 -> 3 (box centres by soft-argmax), and for each of
  left hand, right hand, face a Linear 256->256, ReLU, Linear 256->2 (box size)
- ``hand_encoder``: ResNet-50 on 256x256 hand crops, one network for both hands (batched)
- ``hand_position_net``: 1x1 conv 2048 -> 20*8 (8x8x8 heatmap)
- ``hand_rotation_net``: 1x1 conv 2048->512 + BN + ReLU, Linear(20*515 -> 15*6)
- ``face_encoder``: ResNet-18 on the 192x192 face crop -> 512x6x6
- ``face_regressor``: Linear(512 -> 10) expression, Linear(512 -> 6) jaw pose

Encoder kinds (``H4WSpec.body`` / ``.hand`` / ``.face``):
- ``"fp"``: full-precision ResNet.
- ``"bnn"``: plain binarization: every backbone conv except the stem is a ``BinaryConv2d`` (1x1 downsample
  convs included), ResNet structure otherwise unchanged; ``H4WSpec.baseline`` picks the flavour whose extra
  per-channel parameters are built (see ``BinaryConv2d``).
- ``"bidrn"``: BiDRN (``binaryhpe.train.bidrn``) with ``H4WSpec.block_residual`` and ``.lcr_modules``.

BoxNet (``H4WSpec.boxnet``): ``"fp"``, or ``"binary"`` (Section 3.2 / Figure 6: "we binarize both Deconv
layers and Linear layers except the final one": the first two Deconvs and the hidden Linear of each box-size
MLP binary; the final Deconv, the 1x1 centre conv and the final Linears full precision. The parameter counts
of Tables 2c, 2d and 3 pin this down: binarizing all three Deconvs would save 1.02M more than the paper's
21.81 - 11.68 = 10.13M, see docs/params-ops.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from binaryhpe import BinaryHPEError
from binaryhpe.train.bidrn import BiDRN
from binaryhpe.train.config import LCR_MODULES, bidrn_config

BODY_SIZE = (256, 192)
HAND_SIZE = (256, 256)
FACE_SIZE = (192, 192)
BODY_JOINTS = 25  # pos_joint_part['body']
HAND_JOINTS = 20  # pos_joint_part['rhand']
ROT_JOINTS = 33  # body joints + both hands' MCP joints sampled by the body rotation net
HM_DEPTH = 8  # output_hm_shape = (8, 8, 6)
BODY_POSE = 21
HAND_POSE = 15
SHAPE_DIM = 10
EXPR_DIM = 10

ENCODER_KINDS = ("fp", "bnn", "bidrn")
BASELINES = ("bnn", "xnor", "dorefa", "bireal", "reactnet", "recu", "fda")

# ----------------------------------------------------------------------------------------------------------
# plain-binarized convolutions (BNN-style baselines)


class LearnableThreshold(nn.Module):
    """ReActNet's RSign: a learnable threshold per input channel before the Sign."""

    def __init__(self, c: int):
        super().__init__()
        self.threshold = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        return x - self.threshold.view(1, -1, 1, 1)


class BinaryConv2d(nn.Conv2d):
    """A binary convolution of a plain-binarized baseline (Table 1), marked for the counter.

    ``binary_weights = True`` is the marker ``opcount`` reads (the BiDRN convs are Brevitas ``QuantConv2d``
    with a 1-bit weight quantizer instead). The forward is the float convolution of ``Sign(x)`` with
    ``Sign(w)`` scaled: enough for counting, not a training implementation of the baselines. Structural
    extras per flavour, the parameters each baseline adds to a binary conv:

    - ``bnn``, ``xnor``, ``dorefa``, ``bireal``: none (XNOR's and DoReFa's scales are computed from the
      weights / activations; Bi-Real's extra shortcut per conv has no parameters).
    - ``reactnet``: RSign, a learnable threshold per input channel (``LearnableThreshold``).
    - ``recu``: a learnable threshold per input channel and a learnable scale alpha per output channel.
    - ``fda``: a noise adaptation module: two full-precision Linear layers cin -> cin/8 -> cin (no bias) on
      the globally pooled conv input, a per-channel correction of the binarized input (an approximation of
      FDA's module, sized so that its parameters are Sum cin^2 / 4 over the binary convs; see
      docs/params-ops.md).
    """

    binary_weights = True

    def __init__(self, cin, cout, k, stride=1, padding=0, bias=False, flavour: str = "bnn"):
        super().__init__(cin, cout, k, stride=stride, padding=padding, bias=bias)
        if flavour not in BASELINES:
            raise BinaryHPEError(f"unknown binarization flavour {flavour!r} (known: {', '.join(BASELINES)})")
        self.flavour = flavour
        self.threshold = LearnableThreshold(cin) if flavour in ("reactnet", "recu") else None
        self.alpha = nn.Parameter(torch.ones(cout)) if flavour == "recu" else None
        if flavour == "fda":
            hid = max(1, cin // 8)
            self.noise = nn.Sequential(nn.Linear(cin, hid, bias=False), nn.ReLU(), nn.Linear(hid, cin, bias=False))
        else:
            self.noise = None

    def forward(self, x):
        a = self.threshold(x) if self.threshold is not None else x
        if self.noise is not None:
            a = a + self.noise(x.mean((2, 3)))[:, :, None, None]
        a = torch.where(a >= 0, 1.0, -1.0)
        w = torch.where(self.weight >= 0, 1.0, -1.0) * self.weight.abs().mean(dim=(1, 2, 3), keepdim=True)
        y = F.conv2d(a, w, self.bias, self.stride, self.padding)
        if self.alpha is not None:
            y = y * self.alpha.view(1, -1, 1, 1)
        return y


class BinaryConvTranspose2d(nn.ConvTranspose2d):
    """A binarized Deconv of the binarized BoxNet (Figure 6), marked for the counter."""

    binary_weights = True

    def forward(self, x):
        a = torch.where(x >= 0, 1.0, -1.0)
        w = torch.where(self.weight >= 0, 1.0, -1.0) * self.weight.abs().mean()
        return F.conv_transpose2d(a, w, self.bias, self.stride, self.padding)


class BinaryLinear(nn.Linear):
    """A binarized Linear layer of the binarized BoxNet (Figure 6), marked for the counter."""

    binary_weights = True

    def forward(self, x):
        a = torch.where(x >= 0, 1.0, -1.0)
        w = torch.where(self.weight >= 0, 1.0, -1.0) * self.weight.abs().mean(dim=1, keepdim=True)
        return F.linear(a, w, self.bias)


# ----------------------------------------------------------------------------------------------------------
# ResNet-18 / 50 (torchvision layout, no avgpool / fc: Hand4Whole's ResNetBackbone)


def _conv(cin, cout, k, stride, binary: bool, flavour: str):
    if binary:
        return BinaryConv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False, flavour=flavour)
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, binary, flavour):
        super().__init__()
        cout = planes
        self.conv1 = _conv(cin, planes, 3, stride, binary, flavour)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, 1, binary, flavour)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = (nn.Sequential(_conv(cin, cout, 1, stride, binary, flavour), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, binary, flavour):
        super().__init__()
        cout = planes * 4
        self.conv1 = _conv(cin, planes, 1, 1, binary, flavour)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, stride, binary, flavour)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, cout, 1, 1, binary, flavour)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(_conv(cin, cout, 1, stride, binary, flavour), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):
    """ResNet-18/50 feature extractor; ``binary`` makes every conv but the stem a ``BinaryConv2d``."""

    def __init__(self, depth: int, binary: bool = False, flavour: str = "bnn"):
        super().__init__()
        if depth == 18:
            block, layers = BasicBlock, (2, 2, 2, 2)
        elif depth == 50:
            block, layers = Bottleneck, (3, 4, 6, 3)
        else:
            raise BinaryHPEError(f"ResNet depth {depth} not supported here: expected 18 or 50")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)  # stem: always full precision
        self.bn1 = nn.BatchNorm2d(64)
        cin, stages = 64, []
        for i, n in enumerate(layers):
            planes = 64 * 2**i
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if (i > 0 and j == 0) else 1, binary, flavour))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.out_channels = cin

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def make_encoder(kind: str, depth: int, input_size, flavour: str = "bnn", block_residual: str = "fp",
                 lcr_modules=LCR_MODULES) -> nn.Module:
    if kind == "fp":
        return ResNet(depth)
    if kind == "bnn":
        return ResNet(depth, binary=True, flavour=flavour)
    if kind == "bidrn":
        return BiDRN(bidrn_config(depth, input_size, block_residual=block_residual, lcr_modules=tuple(lcr_modules)))
    raise BinaryHPEError(f"encoder kind {kind!r}: expected one of {', '.join(ENCODER_KINDS)}")


# ----------------------------------------------------------------------------------------------------------
# heads


def _conv_bn_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout), nn.ReLU())


class PositionNet(nn.Module):
    def __init__(self, joints: int):
        super().__init__()
        self.conv = nn.Conv2d(2048, joints * HM_DEPTH, 1)

    def forward(self, feat):
        return self.conv(feat)


class BodyRotationNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body_conv = _conv_bn_relu(2048, 512)
        self.lhand_conv = _conv_bn_relu(2048, 512)
        self.rhand_conv = _conv_bn_relu(2048, 512)
        d = ROT_JOINTS * (512 + 3)
        self.root_pose_out = nn.Linear(d, 6)
        self.body_pose_out = nn.Linear(d, BODY_POSE * 6)
        self.shape_out = nn.Linear(2048, SHAPE_DIM)
        self.cam_out = nn.Linear(2048, 3)

    def forward(self, body_feat, hand_feat):
        n = body_feat.shape[0]
        b = self.body_conv(body_feat)
        lh = self.lhand_conv(hand_feat[:n])
        rh = self.rhand_conv(hand_feat[-n:])
        # sampled at the joints' 2D positions (grid_sample): 25 body + 4 + 4 hand joints, each 512 + xyz
        feat = torch.cat([b.flatten(2)[..., :1].expand(-1, -1, BODY_JOINTS), lh.flatten(2)[..., :1].expand(-1, -1, 4),
                          rh.flatten(2)[..., :1].expand(-1, -1, 4)], dim=2).transpose(1, 2)
        feat = torch.cat([feat, feat.new_zeros(n, ROT_JOINTS, 3)], dim=2).flatten(1)
        g = body_feat.mean((2, 3))
        return self.root_pose_out(feat), self.body_pose_out(feat), self.shape_out(g), self.cam_out(g)


class HandRotationNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hand_conv = _conv_bn_relu(2048, 512)
        self.hand_pose_out = nn.Linear(HAND_JOINTS * (512 + 3), HAND_POSE * 6)

    def forward(self, hand_feat):
        h = self.hand_conv(hand_feat)
        n = h.shape[0]
        feat = h.flatten(2)[..., :1].expand(-1, -1, HAND_JOINTS).transpose(1, 2)
        feat = torch.cat([feat, feat.new_zeros(n, HAND_JOINTS, 3)], dim=2).flatten(1)
        return self.hand_pose_out(feat)


class FaceRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.expr_out = nn.Linear(512, EXPR_DIM)
        self.jaw_pose_out = nn.Linear(512, 6)

    def forward(self, face_feat):
        g = face_feat.mean((2, 3))
        return self.expr_out(g), self.jaw_pose_out(g)


class BoxNet(nn.Module):
    """Hand / face box prediction (Section 3.2, Figure 6), full precision or binarized."""

    def __init__(self, binary: bool = False):
        super().__init__()
        chans = [2048 + BODY_JOINTS * HM_DEPTH, 256, 256, 256]
        deconv = BinaryConvTranspose2d if binary else nn.ConvTranspose2d
        lin = BinaryLinear if binary else nn.Linear
        layers = []
        for i, (ci, co) in enumerate(zip(chans[:-1], chans[1:])):
            d = deconv if i < len(chans) - 2 else nn.ConvTranspose2d  # the final Deconv stays full precision
            layers += [d(ci, co, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU()]
        self.deconv = nn.Sequential(*layers)
        self.bbox_center = nn.Conv2d(256, 3, 1)
        self.lhand_size = nn.Sequential(lin(256, 256), nn.ReLU(), nn.Linear(256, 2))
        self.rhand_size = nn.Sequential(lin(256, 256), nn.ReLU(), nn.Linear(256, 2))
        self.face_size = nn.Sequential(lin(256, 256), nn.ReLU(), nn.Linear(256, 2))

    def forward(self, body_feat, joint_hm):
        x = self.deconv(torch.cat([body_feat, joint_hm], dim=1))
        centre_hm = self.bbox_center(x)  # 2D soft-argmax of each of the 3 maps gives the box centres
        f = x.mean((2, 3))  # the features sampled at the 3 centres
        return centre_hm, self.lhand_size(f), self.rhand_size(f), self.face_size(f)


# ----------------------------------------------------------------------------------------------------------
# the whole model


@dataclass(frozen=True)
class H4WSpec:
    body: str = "fp"
    hand: str = "fp"
    face: str = "fp"
    baseline: str = "bnn"  # flavour of the "bnn" encoders
    boxnet: str = "fp"  # "fp" or "binary"
    block_residual: str = "fp"  # BiDRN encoders: "fp", "binary", "none"
    lcr_modules: tuple = LCR_MODULES  # BiDRN encoders: Table 2a

    def __post_init__(self):
        for part in ("body", "hand", "face"):
            if getattr(self, part) not in ENCODER_KINDS:
                raise BinaryHPEError(f"{part} encoder kind {getattr(self, part)!r}: expected one of "
                                     f"{', '.join(ENCODER_KINDS)}")
        if self.baseline not in BASELINES:
            raise BinaryHPEError(f"baseline {self.baseline!r}: expected one of {', '.join(BASELINES)}")
        if self.boxnet not in ("fp", "binary"):
            raise BinaryHPEError(f"boxnet {self.boxnet!r}: expected 'fp' or 'binary'")


class Hand4Whole(nn.Module):
    """Hand4Whole's encoders and heads (see the module docstring); ``forward`` takes the three crops."""

    def __init__(self, spec: H4WSpec = H4WSpec()):
        super().__init__()
        self.spec = s = spec
        kw = dict(flavour=s.baseline, block_residual=s.block_residual, lcr_modules=s.lcr_modules)
        self.body_encoder = make_encoder(s.body, 50, BODY_SIZE, **kw)
        self.body_position_net = PositionNet(BODY_JOINTS)
        self.body_rotation_net = BodyRotationNet()
        self.boxnet = BoxNet(binary=s.boxnet == "binary")
        self.hand_encoder = make_encoder(s.hand, 50, HAND_SIZE, **kw)
        self.hand_position_net = PositionNet(HAND_JOINTS)
        self.hand_rotation_net = HandRotationNet()
        self.face_encoder = make_encoder(s.face, 18, FACE_SIZE, **kw)
        self.face_regressor = FaceRegressor()

    @staticmethod
    def example_inputs(hands: int = 2, batch: int = 1):
        """Body image, hand crops (``hands`` per person: 2 is both hands batched), face crop."""
        return (torch.zeros(batch, 3, *BODY_SIZE), torch.zeros(batch * hands, 3, *HAND_SIZE),
                torch.zeros(batch, 3, *FACE_SIZE))

    def forward(self, body_img, hand_img, face_img):
        body_feat = self.body_encoder(body_img)
        body_hm = self.body_position_net(body_feat)
        boxes = self.boxnet(body_feat, body_hm)
        hand_feat = self.hand_encoder(hand_img)
        hand_hm = self.hand_position_net(hand_feat)
        body_rot = self.body_rotation_net(body_feat, hand_feat)
        hand_rot = self.hand_rotation_net(hand_feat)
        face_feat = self.face_encoder(face_img)
        face = self.face_regressor(face_feat)
        return body_hm, boxes, hand_hm, body_rot, hand_rot, face


__all__ = ["BinaryConv2d", "BinaryConvTranspose2d", "BinaryLinear", "BoxNet", "H4WSpec", "Hand4Whole", "ResNet",
           "make_encoder"]
