"""Benchmark: the whole-body model's hardware parts (train/heads_hw.py).

1. Export time of each part of the paper-scale `binaryhpe` config (random weights): brevitas export to QONNX
   plus the element-by-element check against the hardware-mode PyTorch part (``export_part``), wall seconds.
2. How far hardware mode moves from float mode on the tiny model (random weights, BN statistics and a real
   body feature from the tiny BiDRN): relative mean abs error, the fraction of output signs that agree, and for
   BoxNet the largest change of a box centre (2D soft-argmax of the centre logits, image units).

Run: .venv/bin/python benchmarks/heads_export.py
"""

import copy
import tempfile
import time

import torch
import torch.nn.functional as F

from binaryhpe.train.bidrn import randomize
from binaryhpe.train.boxnet import soft_argmax_2d
from binaryhpe.train.hardware import to_hardware
from binaryhpe.train.heads_hw import PARTS, build_part, export_part, part_numerics
from binaryhpe.train.wholebody import build_wholebody, wholebody_config


def export_times() -> None:
    print("== paper-scale parts (binaryhpe config, random weights): export + check ==")
    torch.manual_seed(0)
    m = build_wholebody("binaryhpe").eval()
    for mod in (m.boxnet, m.body_position_net, m.hand_position_net, m.hand_rotation_net, m.body_rotation_net):
        randomize(mod, seed=3)
    with tempfile.TemporaryDirectory() as d:
        for name in PARTS:
            t0 = time.time()
            e = export_part(m, name, d, check=True)
            print(f"{name:11s} in {e['input_shape']} out {e['output_shape']}: export {e['export_s']:.1f} s, export + "
                  f"check {time.time() - t0:.1f} s, mismatches {e['check']['mismatches']} of "
                  f"{e['check']['elements']}")


def drift() -> None:
    print("== tiny-wholebody, hardware mode vs float mode (random weights, seeds 0-2) ==")
    cfg = wholebody_config("tiny-wholebody")
    for seed in range(3):
        torch.manual_seed(seed)
        m = randomize(build_wholebody(cfg).eval(), seed=seed)
        g = torch.Generator().manual_seed(seed)
        img = torch.rand((1, 3, *cfg.image_size), generator=g)
        with torch.no_grad():
            feat = m.body_encoder(F.interpolate(img, size=cfg.body_size, mode="bilinear", align_corners=False) * 2 - 1)
            hand = m.hand_encoder(F.interpolate(img, size=cfg.hand_size, mode="bilinear", align_corners=False) * 2 - 1)
        for name in PARTS:
            p = build_part(m, name)
            hw = to_hardware(copy.deepcopy(p), part_numerics(m, name))
            x = hand if name == "hand_heads" else feat
            with torch.no_grad():
                a, b = p(x), hw(x)
            rel = float((a - b).abs().mean() / a.abs().mean())
            agree = float((torch.sign(a) == torch.sign(b)).float().mean())
            extra = ""
            if name == "boxnet":
                extra = f", centre moves {float((soft_argmax_2d(a[:, -3:]) - soft_argmax_2d(b[:, -3:])).abs().max()):.4f}"
            print(f"seed {seed} {name:11s} rel mean abs error {rel:.3f}, signs agree {agree:.3f}{extra}")
        # each BoxNet Deconv alone, float and hardware mode on the same input (on the A grid for the third)
        p = build_part(m, "boxnet")
        hw = to_hardware(copy.deepcopy(p), part_numerics(m, "boxnet"))
        x = torch.floor(torch.randn((1, p.deconv[0].deconv.in_channels, 8, 6), generator=g) * 128) / 128
        errs = []
        for i, layer in enumerate(p.deconv):
            if not hasattr(layer, "deconv") and not hasattr(layer, "conv"):
                continue
            cin = (layer.deconv if hasattr(layer, "deconv") else layer.conv).in_channels
            xi = x[:, :cin] if i == 0 else torch.clamp(x[:, :cin], -1, 1 - 1 / 128)
            with torch.no_grad():
                a, b = layer(xi), hw.deconv[i](xi)
            errs.append(f"{float((a - b).abs().max() / a.abs().max()):.4f}")
        print(f"seed {seed} boxnet Deconvs alone: max error / max value {', '.join(errs)}")


if __name__ == "__main__":
    export_times()
    drift()
