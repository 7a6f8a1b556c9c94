"""The whole-body model (Figure 3): shapes for every binarizer and switch, geometry against closed forms, the
loss (eq. 12) by hand, one training step, Params/OPs against Hand4Whole's analytic structure, QONNX export."""

import json

import numpy as np
import pytest
import torch

from binaryhpe import BinaryHPEError
from binaryhpe.train import wholebody as W
from binaryhpe.train.binarizers import BINARIZER_NAMES
from binaryhpe.train.boxnet import BinaryDeconv, BinaryLinear, BoxNet, roi_align, soft_argmax_2d, soft_argmax_3d
from binaryhpe.train.wholebody import (SMPLX_KEYS, WholeBodyConfig, build_wholebody, export_wholebody,
                                       wholebody_config, wholebody_loss)

SHAPES = {"root_pose": (3,), "body_pose": (63,), "lhand_pose": (45,), "rhand_pose": (45,), "jaw_pose": (3,),
          "expr": (10,), "shape": (10,), "cam_trans": (3,), "joint_img": (25, 3), "boxes": (3, 4)}


def _img(b=2, seed=0):
    return torch.rand((b, 3, 64, 48), generator=torch.Generator().manual_seed(seed))


def _check_out(out, b):
    assert set(out) == set(SHAPES)
    for k, s in SHAPES.items():
        assert tuple(out[k].shape) == (b, *s), k
        assert torch.isfinite(out[k]).all(), k
    j = out["joint_img"].detach()
    assert float(j.min()) >= 0 and float(j.max()) <= 1  # soft-argmax coordinates in [0, 1]^3
    c = out["boxes"][..., :2].detach()
    assert float(c.min()) >= 0 and float(c.max()) <= 1


@pytest.mark.parametrize("binarizer", BINARIZER_NAMES)
def test_every_binarizer_output_keys_and_shapes(binarizer):
    torch.manual_seed(0)
    m = build_wholebody(WholeBodyConfig(binarizer=binarizer, binarize=("body", "hand", "face", "heads")))
    out = m(_img())
    _check_out(out, 2)
    sum(v.abs().mean() for v in out.values()).backward()
    # every parameter takes part (DDP without find_unused_parameters needs it)
    assert [n for n, p in m.named_parameters() if p.grad is None] == []
    enc = [p.grad for n, p in m.named_parameters() if n.startswith(("body_encoder.blocks", "face_encoder.blocks"))]
    assert any(g is not None and float(g.abs().sum()) > 0 for g in enc)


@pytest.mark.parametrize("binarize, boxnet", [((), "fp"), (("body",), "binary"), (("hand",), "binary"),
                                              (("face",), "fp"), (("body", "hand", "face"), "fp")])
def test_switches_table2d_table3(binarize, boxnet):
    torch.manual_seed(0)
    m = build_wholebody(WholeBodyConfig(binarize=binarize, boxnet=boxnet)).eval()
    _check_out(m(_img(1)), 1)
    from binaryhpe.train.bidrn import BiDRN

    for part in ("body", "hand", "face"):
        assert isinstance(getattr(m, f"{part}_encoder"), BiDRN) == (part in binarize)
    binary = [type(x) for x in m.boxnet.modules() if isinstance(x, (BinaryDeconv, BinaryLinear))]
    assert len(binary) == (5 if boxnet == "binary" else 0)  # 2 Deconvs + 3 hidden Linears (Figure 6)
    assert isinstance(m.boxnet.deconv[6], torch.nn.ConvTranspose2d) and not isinstance(m.boxnet.deconv[6],
                                                                                         BinaryDeconv)


def test_binarized_boxnet_layers_are_binary():
    torch.manual_seed(1)
    net = BoxNet(12, 8, 8, binary=True)
    x = torch.randn(2, 12, 3, 3)
    seen = {}

    def hook(mod, inp, out):
        from binaryhpe.train.boxnet import _binary_weight

        seen[mod] = (inp[0], _binary_weight(mod.weight, 1 if isinstance(mod, BinaryDeconv) else 0))

    for mod in net.modules():
        if isinstance(mod, (BinaryDeconv, BinaryLinear)):
            mod.register_forward_hook(hook)
    net(x, torch.randn(2, 0, 3, 3))
    assert len(seen) == 5
    for mod, (_, wb) in seen.items():
        dims = (0, 2, 3) if isinstance(mod, BinaryDeconv) else (1,)
        alpha = mod.weight.abs().mean(dim=dims, keepdim=True)
        assert torch.allclose(wb.abs(), alpha.expand_as(wb))  # +-alpha per output channel
        assert torch.equal(torch.sign(wb), torch.where(mod.weight >= 0, 1.0, -1.0))


# ---------------------------------------------------------------------------------------------- geometry


def test_roi_align_crops_the_requested_box():
    H, Wd = 64, 48
    img = torch.zeros(1, 3, H, Wd)
    img[:, :, 20:36, 8:24] = 1.0  # a 16 x 16 patch at rows 20..35, columns 8..23
    box = torch.tensor([[(8 + 8) / Wd, (20 + 8) / H, 16 / Wd, 16 / H]])  # its exact box, (cx, cy, w, h)
    crop = roi_align(img, box, (16, 16))
    assert torch.allclose(crop, torch.ones_like(crop))
    big = roi_align(img, box * torch.tensor([1, 1, 2, 2]), (32, 32))  # twice as large: the patch in the middle
    assert torch.allclose(big[..., 8:24, 8:24], torch.ones(1, 3, 16, 16), atol=1e-6)
    assert float(big[..., :7, :].abs().max()) == 0.0 and float(big[..., :, 25:].abs().max()) == 0.0
    # bilinear sampling is exact on a linear ramp: value(u, v) = u + 100 v at pixel centres
    yy, xx = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(Wd, dtype=torch.float32),
                            indexing="ij")
    ramp = (xx + 100 * yy)[None, None]
    x1, y1, bw, bh, oh, ow = 5.0, 11.0, 20.0, 30.0, 6, 4
    crop = roi_align(ramp, torch.tensor([[(x1 + bw / 2) / Wd, (y1 + bh / 2) / H, bw / Wd, bh / H]]), (oh, ow))
    i, j = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    ref = (x1 + (j + 0.5) * bw / ow - 0.5) + 100 * (y1 + (i + 0.5) * bh / oh - 0.5)
    assert np.allclose(crop[0, 0].numpy(), ref, atol=1e-3)


def test_crop_box_aspect_and_scale():
    # image 64x48 (H, W); a box 12 px wide, 4 px high -> hand crop 16x16 (square): 12x12 px, times 2 = 24x24 px
    b = torch.tensor([[0.5, 0.25, 12 / 48, 4 / 64]])
    out = W.crop_box(b, (64, 48), (16, 16), 2.0)
    assert torch.allclose(out, torch.tensor([[0.5, 0.25, 24 / 48, 24 / 64]]))
    # a tall box 6 px wide, 20 px high, crop 20x10 (aspect w/h = 0.5): width grows to 10 px; scale 1.5
    b = torch.tensor([[0.3, 0.6, 6 / 48, 20 / 64]])
    out = W.crop_box(b, (64, 48), (20, 10), 1.5)
    assert torch.allclose(out, torch.tensor([[0.3, 0.6, 15 / 48, 30 / 64]]))


def test_soft_argmax_peaks_and_uniform():
    hm = torch.full((1, 2, 4, 6), -1e4)
    hm[0, 0, 1, 4] = 0.0
    hm[0, 1, 3, 0] = 0.0
    xy = soft_argmax_2d(hm)
    assert torch.allclose(xy[0], torch.tensor([[4.5 / 6, 1.5 / 4], [0.5 / 6, 3.5 / 4]]))
    assert torch.allclose(soft_argmax_2d(torch.zeros(1, 1, 5, 7)), torch.tensor([[[0.5, 0.5]]]))
    hm3 = torch.full((1, 2 * 3, 4, 5), -1e4)  # 2 joints, depth 3
    hm3[0, 0 * 3 + 2, 3, 1] = 0.0  # joint 0 at z = 2, y = 3, x = 1
    hm3[0, 1 * 3 + 0, 0, 4] = 0.0
    xyz = soft_argmax_3d(hm3, 2, 3)
    assert torch.allclose(xyz[0], torch.tensor([[1.5 / 5, 3.5 / 4, 2.5 / 3], [4.5 / 5, 0.5 / 4, 0.5 / 3]]))
    with pytest.raises(BinaryHPEError, match="channels"):
        soft_argmax_3d(hm3, 4, 3)


def _np_rodrigues(aa):
    aa = np.asarray(aa, dtype=np.float64)
    th = np.linalg.norm(aa, axis=-1, keepdims=True)
    k = aa / np.maximum(th, 1e-12)
    K = np.zeros(aa.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    K[..., 1, 0], K[..., 2, 0], K[..., 2, 1] = k[..., 2], -k[..., 1], k[..., 0]
    s, c = np.sin(th)[..., None], np.cos(th)[..., None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def test_rot6d_to_axis_angle_roundtrip():
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(200, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([rng.uniform(0.01, 3.1, 195), [1e-8, 0.5, np.pi - 1e-3, 3.0, 2.0]])
    aa = axes * angles[:, None]
    R = _np_rodrigues(aa)
    six = torch.tensor(R[:, :, :2].reshape(-1, 6), dtype=torch.float64)  # the (3, 2) layout: first two columns
    out = W.rot6d_to_axis_angle(six).numpy()
    assert np.allclose(out, aa, atol=1e-6)
    # any 6D vector: a proper rotation whose first two columns span the same (Gram-Schmidt) frame
    R2 = W.rot6d_to_matrix(torch.randn(50, 6, dtype=torch.float64))
    assert torch.allclose(R2 @ R2.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(50, 3, 3), atol=1e-9)
    assert torch.allclose(torch.det(R2), torch.ones(50, dtype=torch.float64))


def test_left_hand_unmirror_rule():
    """A rotation seen in the mirror (x -> -x): M R M with M = diag(-1, 1, 1) has axis-angle (x, -y, -z)."""
    aa = np.array([[0.3, -0.7, 1.1], [-1.2, 0.4, 0.2]])
    M = np.diag([-1.0, 1.0, 1.0])
    assert np.allclose(M @ _np_rodrigues(aa) @ M, _np_rodrigues(aa * [1, -1, -1]))


# ---------------------------------------------------------------------------------------------- loss


def _zeros_out(b=1, j=2):
    out = {k: torch.zeros(b, *s) for k, s in SHAPES.items()}
    out["joint_img"] = torch.zeros(b, j, 3)
    return out


def test_loss_zero_on_perfect_prediction():
    torch.manual_seed(0)
    m = build_wholebody(WholeBodyConfig()).eval()
    with torch.no_grad():
        out = m(_img())
    batch = {k: v.clone() for k, v in out.items()}
    batch["smplx_valid"] = torch.ones(2, 1)
    batch["joint_valid"] = torch.ones(2, 25, 1)
    loss = wholebody_loss(out, batch)
    assert set(loss) == {"total", "smplx", "joint", "box"}
    assert all(float(v) == 0.0 for v in loss.values())


def test_loss_hand_computed():
    out = _zeros_out()
    batch = {k: v.clone() for k, v in _zeros_out().items()}
    batch["root_pose"][0] = torch.tensor([3.0, 0.0, 0.0])  # mean |d| over 3 = 1
    batch["body_pose"][0, 5] = 6.3  # 6.3 / 63 = 0.1
    batch["joint_img"][0] = 0.5  # 6 elements of 0.5, joint 1 invalid: 1.5 / 6 = 0.25
    batch["boxes"][0, 2, 3] = 1.2  # 1.2 / 12 = 0.1
    batch["smplx_valid"] = torch.ones(1, 1)
    batch["joint_valid"] = torch.tensor([[[1.0], [0.0]]])
    loss = wholebody_loss(out, batch)
    assert np.isclose(float(loss["smplx"]), 1.1)
    assert np.isclose(float(loss["joint"]), 0.25)
    assert np.isclose(float(loss["box"]), 0.1)
    assert np.isclose(float(loss["total"]), 1.45)
    batch["smplx_valid"] = torch.zeros(1, 1)
    batch["box_valid"] = torch.tensor([[[1.0], [1.0], [0.0]]])
    loss = wholebody_loss(out, batch)
    assert float(loss["smplx"]) == 0.0 and float(loss["box"]) == 0.0 and np.isclose(float(loss["total"]), 0.25)
    # joints_3d adds to the joint term when both sides have it
    out["joints_3d"] = torch.zeros(1, 2, 3)
    batch["joints_3d"] = torch.full((1, 2, 3), 2.0)  # joint 0 valid: 6 / 6 = 1
    assert np.isclose(float(wholebody_loss(out, batch)["joint"]), 1.25)


def test_loss_errors_name_the_key():
    out = _zeros_out()
    batch = {k: v.clone() for k, v in _zeros_out().items()}
    del batch["boxes"]
    with pytest.raises(BinaryHPEError, match="'boxes'"):
        wholebody_loss(out, batch)
    batch = {k: v.clone() for k, v in _zeros_out().items()}
    batch["expr"] = torch.zeros(1, 7)
    with pytest.raises(BinaryHPEError, match="'expr'"):
        wholebody_loss(out, batch)


@pytest.mark.parametrize("binarizer", ["bidrn", "reactnet"])
def test_one_optimizer_step_decreases_the_loss(binarizer):
    torch.manual_seed(0)
    m = build_wholebody(WholeBodyConfig(binarizer=binarizer)).train()
    g = torch.Generator().manual_seed(5)
    B = 4
    batch = {k: torch.randn((B, *s), generator=g) * 0.3 for k, s in SHAPES.items()}
    batch["joint_img"] = torch.rand((B, 25, 3), generator=g)
    batch["boxes"] = torch.rand((B, 3, 4), generator=g) * 0.5 + 0.25
    batch["smplx_valid"] = torch.ones(B, 1)
    batch["joint_valid"] = (torch.rand((B, 25, 1), generator=g) > 0.2).float()
    img = _img(B, seed=7)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    before = wholebody_loss(m(img), batch)
    opt.zero_grad()
    before["total"].backward()
    opt.step()
    after = wholebody_loss(m(img), batch)
    assert float(after["total"]) < float(before["total"])


# ---------------------------------------------------------------------------------------------- config


def test_config_roundtrip_and_errors(tmp_path):
    cfg = WholeBodyConfig(binarizer="recu", binarize=("body", "face"), boxnet="fp")
    p = tmp_path / "wb.json"
    p.write_text(json.dumps(cfg.to_dict()))
    assert WholeBodyConfig.from_file(p) == cfg
    assert wholebody_config(str(p)) == cfg
    assert wholebody_config("tiny-wholebody") == WholeBodyConfig()
    big = wholebody_config("binaryhpe")
    assert big.body_encoder.input_size == (256, 192) and big.hand_encoder.input_size == (256, 256)
    assert big.face_encoder.input_size == (192, 192) and big.face_encoder.stages[-1].channels == 512
    for bad, match in (({"binarizer": "xor"}, "'xor'"), ({"binarize": ["legs"]}, "'legs'"),
                       ({"boxnet": "half"}, "boxnet"), ({"colour": 1}, "'colour'"),
                       ({"hand_size": [15, 16]}, "hand_encoder"), ({"body_size": [0, 4]}, "body_size"),
                       ({"hand_mcp": [0, 99]}, "hand_mcp")):
        with pytest.raises(BinaryHPEError, match=match):
            WholeBodyConfig.from_dict(bad)
    with pytest.raises(BinaryHPEError, match="unknown whole-body config"):
        wholebody_config("huge")
    with pytest.raises(BinaryHPEError, match=r"\(B, 3, H, W\)"):
        build_wholebody()(torch.rand(1, 1, 64, 48))


# ---------------------------------------------------------------------------------------------- Params / OPs


def test_binaryhpe_params_ops_match_hand4whole_structure():
    """The paper-scale model built from the "binaryhpe" config, traced through its real data flow (crops at
    the real sizes) on the meta device, counts exactly what Hand4Whole's analytic structure counts, part by
    part (Params within 1% of the paper's 17.22 M)."""
    from binaryhpe.train.opcount import PAPER, count
    from binaryhpe.train.variants import measure

    with torch.device("meta"):
        m = build_wholebody("binaryhpe").eval()
        rep = count(m, (torch.empty(1, 3, 512, 384),), PAPER)
    ref = measure("binaryhpe")
    for part, c in rep.parts.items():
        r = ref.parts[part]
        assert abs(c.params - r.params) <= 0.01 * r.params, part
        assert abs(c.ops - r.ops) <= 0.01 * r.ops, part
    assert set(rep.parts) == set(ref.parts)
    assert abs(rep.params_m - 17.22) / 17.22 < 0.01


def test_fp_boxnet_params_match_hand4whole():
    from binaryhpe.train.opcount import PAPER, count
    from binaryhpe.train.variants import _part, _Wrap

    with torch.device("meta"):
        net = BoxNet(2048 + 25 * 8, 256, 256, binary=False).eval()
        c = count(_Wrap(net), (torch.empty(1, 2048, 8, 6), torch.empty(1, 200, 8, 6)), PAPER).parts["m"]
    r = _part("boxnet", ("fp",), 2, PAPER)
    assert c.params == r.params and c.ops == r.ops


# ---------------------------------------------------------------------------------------------- export


def test_export_wholebody_qonnx_exact(tmp_path):
    from binaryhpe.train.bidrn import randomize
    from binaryhpe.train.export import execute_qonnx
    from binaryhpe.train.hardware import to_hardware

    from binaryhpe.train.config import BiDRNConfig, StageConfig

    # one BiDRB (Down Sample Residual + Base LCR + full-precision Block Residual) per encoder keeps the three
    # exports fast on 2 cores; the tiny layout's other module kinds are exported by tests/test_train_exact.py
    small = BiDRNConfig(stem_channels=8, stem_stride=2, stages=(StageConfig("basic", 16, 1, 2),))
    torch.manual_seed(0)
    m = build_wholebody(WholeBodyConfig(binarize=("body", "hand", "face"), body_encoder=small,
                                        hand_encoder=small, face_encoder=small))
    for enc in (m.body_encoder, m.hand_encoder, m.face_encoder):
        randomize(enc, seed=4)
    man = export_wholebody(m, tmp_path)
    assert json.loads((tmp_path / "export.json").read_text())["encoders"].keys() == man["encoders"].keys()
    assert not any(x.hw for x in m.modules() if hasattr(x, "hw"))  # the model itself stays in float mode
    for part, size in (("body", (32, 24)), ("hand", (16, 16)), ("face", (16, 16))):
        e = man["encoders"][f"{part}_encoder"]
        assert e["exported"] and e["check"]["mismatches"] == 0
        # an independent input: the encoder's own crop range, extremes included
        hw = to_hardware(__import__("copy").deepcopy(getattr(m, f"{part}_encoder")))
        crop = roi_align(_img(1), torch.tensor([[0.5, 0.4, 0.3, 0.35]]), size) * 2 - 1  # a real crop
        for x in (crop, torch.ones(1, 3, *size), -torch.ones(1, 3, *size)):
            with torch.no_grad():
                ref = hw(x).numpy()
            got = execute_qonnx(e["path"], x.numpy())
            assert got.shape == ref.shape == (1, *e["output_shape"][1:])
            assert np.array_equal(got, ref)
    assert "roi_align" in [n["kind"] for n in man["host"]]


def test_export_skips_encoders_without_hardware_mode(tmp_path):
    m = build_wholebody(WholeBodyConfig(binarizer="bnn", binarize=("body",)))
    man = export_wholebody(m, tmp_path, check=False)
    assert all(not e["exported"] for e in man["encoders"].values())
    assert "no hardware mode" in man["encoders"]["body_encoder"]["reason"]
    assert "full precision" in man["encoders"]["hand_encoder"]["reason"]
    assert not list(tmp_path.glob("*.onnx"))


# ---------------------------------------------------------------------------------------------- SMPL-X


def test_with_smplx_layer(tmp_path):
    from binaryhpe.train import smplx_model
    path = smplx_model.write_synthetic_smplx(tmp_path / "smplx", n_verts=1000)
    layer = smplx_model.SMPLXLayer(path)
    torch.manual_seed(0)
    m = build_wholebody(WholeBodyConfig(), smplx_layer=layer).eval()
    assert not any("smplx" in k for k in m.state_dict())  # licensed model data stays out of checkpoints
    with torch.no_grad():
        out = m(_img())
    V = layer.num_verts
    assert out["vertices"].shape == (2, V, 3) and out["joints_3d"].shape == (2, 25, 3)
    assert torch.allclose(out["joints_3d"][:, 0], torch.zeros(2, 3), atol=1e-6)  # root-relative
    ref = layer({k: out[k] for k in SMPLX_KEYS if k != "cam_trans"}, root_relative=True)
    assert torch.allclose(out["vertices"], ref["vertices"], atol=1e-5)
    assert torch.allclose(out["joints_3d"], ref["joints"][:, :25], atol=1e-5)
    batch = {k: v.clone() for k, v in out.items()}
    batch["joints_3d"] = batch["joints_3d"] + 0.1
    loss = wholebody_loss(out, batch)
    assert np.isclose(float(loss["joint"]), 0.1, atol=1e-6) and float(loss["smplx"]) == 0.0
