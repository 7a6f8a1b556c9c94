"""The hardware parts of the whole-body model besides the encoders (train/heads_hw.py): BoxNet, body heads and
hand heads in float mode (= WholeBodyModel.forward), in hardware mode (QONNX export checked element by element),
and the manifest's parts and host nodes."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from qonnx.core.modelwrapper import ModelWrapper

from binaryhpe import BinaryHPEError
from binaryhpe.train.bidrn import randomize
from binaryhpe.train.boxnet import soft_argmax_2d
from binaryhpe.train.export import execute_qonnx
from binaryhpe.train.hardware import to_hardware
from binaryhpe.train.heads_hw import build_part, export_part, part_numerics
from binaryhpe.train.wholebody import WholeBodyConfig, build_wholebody, export_wholebody, host_nodes

PART_NAMES = ("boxnet", "body_heads", "hand_heads")


def _model(seed: int = 1, **kw):
    torch.manual_seed(seed)
    return randomize(build_wholebody(WholeBodyConfig(**kw)).eval(), seed=seed)


def _img(b: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((b, 3, 64, 48), generator=g)


def _capture(m, img):
    """Run WholeBodyModel.forward and keep the tensors the parts compute (forward hooks)."""
    got = {}
    mods = {"F": m.body_encoder, "hm": m.body_position_net.conv, "deconv": m.boxnet.deconv,
            "centre": m.boxnet.bbox_center, "body_conv": m.body_rotation_net.body_conv, "hand_feat": m.hand_encoder,
            "hand_hm": m.hand_position_net.conv, "hand_conv": m.hand_rotation_net.hand_conv,
            "lhand_conv": m.body_rotation_net.lhand_conv, "rhand_conv": m.body_rotation_net.rhand_conv}
    hooks = [mod.register_forward_hook(lambda _m, _i, o, k=k: got.__setitem__(k, o.detach().clone()))
             for k, mod in mods.items()]
    try:
        with torch.no_grad():
            m(img)
    finally:
        for h in hooks:
            h.remove()
    return got


def _slices(part, y):
    return {n: y[:, s:s + c] for n, s, c in part.channels}


# ---------------------------------------------------------------------------------------------- float mode


@pytest.mark.parametrize("boxnet,binarize", [("binary", ("body", "hand", "face")),
                                             ("fp", ("body", "hand", "face", "heads"))])
def test_parts_float_mode_compute_the_model_forward(boxnet, binarize):
    m = _model(boxnet=boxnet, binarize=binarize)
    B = 2
    got = _capture(m, _img(B))
    parts = {n: build_part(m, n) for n in PART_NAMES}
    with torch.no_grad():
        box = _slices(parts["boxnet"], parts["boxnet"](got["F"]))
        body = _slices(parts["body_heads"], parts["body_heads"](got["F"]))
        hand = _slices(parts["hand_heads"], parts["hand_heads"](got["hand_feat"]))
    assert torch.equal(box["features"], got["deconv"]) and torch.equal(box["centre_logits"], got["centre"])
    assert torch.equal(body["body_heatmap"], got["hm"]) and torch.equal(body["body_conv"], got["body_conv"])
    assert torch.equal(hand["hand_heatmap"], got["hand_hm"]) and torch.equal(hand["hand_conv"], got["hand_conv"])
    # the model applies lhand_conv to the left crop's feature flipped back; the part runs it on the mirrored
    # crop and the host flips the slice (a 1x1 conv commutes with the flip)
    assert torch.allclose(torch.flip(hand["lhand_conv"][:B], [3]), got["lhand_conv"], atol=1e-6, rtol=0)
    assert torch.equal(hand["rhand_conv"][B:], got["rhand_conv"])
    assert list(box["features"].shape[2:]) == parts["boxnet"].output_shape()[2:]
    assert parts["boxnet"].output_shape()[1] == got["deconv"].shape[1] + 3


def test_parts_hardware_mode_stays_near_float_mode():
    """A loose sanity bound, not an exactness test: the hardware mode quantizes every constant and value
    (docs/numerics.md), so values move, and a value near 0 can flip the sign a binary layer reads. With random
    weights and BN statistics the tiny model's heads move by a few percent (H format step 1/8 on the encoder
    feature), the binarized BoxNet more (sign flips through two binary Deconvs): docs/wholebody.md has the
    measured figures. The bounds are about twice those."""
    m = _model()
    got = _capture(m, _img(1))
    for name, x in (("boxnet", got["F"]), ("body_heads", got["F"]), ("hand_heads", got["hand_feat"][:1])):
        p = build_part(m, name)
        hw = to_hardware(copy.deepcopy(p), part_numerics(m, name))
        with torch.no_grad():
            a, b = p(x), hw(x)
        rel = float((a - b).abs().mean() / a.abs().mean())
        agree = float((torch.sign(a) == torch.sign(b)).float().mean())
        if name == "boxnet":
            assert rel < 1.0 and agree > 0.7, (name, rel, agree)
            # what BoxNet is for: the box centres from the 2D soft-argmax of the centre logits
            ca, cb = soft_argmax_2d(a[:, -3:]), soft_argmax_2d(b[:, -3:])
            assert float((ca - cb).abs().max()) < 0.02
        else:
            assert rel < 0.1 and agree > 0.95, (name, rel, agree)


# ---------------------------------------------------------------------------------------------- export


def _graph_input(mw):
    inits = {i.name for i in mw.graph.initializer}
    ins = [i.name for i in mw.graph.input if i.name not in inits]
    assert len(ins) == 1 and len(mw.graph.output) == 1
    return ins[0]


def _producer(mw, name):
    return next((n for n in mw.graph.node if name in n.output), None)


def _quant_fmt(mw, node):
    scale = mw.get_initializer(node.input[1])
    bits = mw.get_initializer(node.input[3])
    if scale is None:
        c = _producer(mw, node.input[1])
        scale = np.frombuffer(c.attribute[0].t.raw_data, dtype=np.float32) if c is not None else None
    if bits is None:
        c = _producer(mw, node.input[3])
        bits = np.frombuffer(c.attribute[0].t.raw_data, dtype=np.float32) if c is not None else None
    return float(np.asarray(scale).reshape(-1)[0]), int(np.asarray(bits).reshape(-1)[0])


@pytest.mark.parametrize("boxnet,binarize", [("binary", ("body", "hand", "face")),
                                             ("fp", ("body", "hand", "face", "heads"))])
def test_tiny_parts_export_exact(tmp_path, boxnet, binarize):
    m = _model(boxnet=boxnet, binarize=binarize)
    got = _capture(m, _img(1, seed=3))
    for name in PART_NAMES:
        e = export_part(m, name, tmp_path, check=True)
        assert e["check"]["mismatches"] == 0 and e["check"]["elements"] == int(np.prod(e["output_shape"]))
        hw = to_hardware(build_part(m, name), part_numerics(m, name))
        feat = got["hand_feat"][:1] if name == "hand_heads" else got["F"]
        big = torch.full_like(feat, 40.0)  # beyond X's range: the input Quant saturates
        alt = torch.where(torch.rand_like(feat) < 0.5, big, -big)
        for x in (feat, big, -big, alt, torch.zeros_like(feat)):
            with torch.no_grad():
                ref = hw(x).numpy()
            out = execute_qonnx(e["path"], x.numpy())
            assert out.shape == tuple(e["output_shape"]) and np.array_equal(out, ref), name
        mw = ModelWrapper(e["path"])
        first = [n for n in mw.graph.node if _graph_input(mw) in n.input]
        assert [n.op_type for n in first] == ["Quant"] and _quant_fmt(mw, first[0]) == (2.0**-10, 16)
        for n in mw.graph.node:
            if n.op_type in ("Conv", "ConvTranspose"):
                assert len(n.input) == 2 or not n.input[2], f"{n.name}: a Conv bias"
        if name == "boxnet":
            ct = [n for n in mw.graph.node if n.op_type == "ConvTranspose"]
            assert len(ct) == 3
            for i, n in enumerate(ct):
                a = {x.name: list(x.ints) for x in n.attribute if x.ints}
                assert a["kernel_shape"] == [4, 4] and a["strides"] == [2, 2] and a["pads"] == [1, 1, 1, 1]
                wq, xq = _producer(mw, n.input[1]), _producer(mw, n.input[0])
                if boxnet == "binary" and i < 2:
                    assert wq.op_type == xq.op_type == "BipolarQuant"
                else:
                    assert wq.op_type == "Quant" and xq.op_type == "Quant"
                    # the fixed-point Deconv reads an A tensor (binary BoxNet) or an H tensor (fp BoxNet)
                    assert _quant_fmt(mw, xq) == ((2.0**-7, 8) if boxnet == "binary" else (2.0**-3, 8))


def test_export_wholebody_writes_parts_and_host(tmp_path):
    from binaryhpe.train.config import BiDRNConfig, StageConfig

    small = BiDRNConfig(stem_channels=8, stem_stride=2, stages=(StageConfig("basic", 16, 1, 2),))
    torch.manual_seed(0)
    m = build_wholebody(WholeBodyConfig(body_encoder=small, hand_encoder=small, face_encoder=small)).eval()
    randomize(m, seed=2)
    man = export_wholebody(m, tmp_path)
    assert json.loads((tmp_path / "export.json").read_text()) == json.loads(json.dumps(man))
    assert set(man["parts"]) == set(PART_NAMES)
    for name, e in man["parts"].items():
        assert e["exported"] and e["check"]["mismatches"] == 0 and (tmp_path / f"{name}.onnx").is_file()
        assert sum(c for _, _, c in e["output_channels"]) == e["output_shape"][1]
        assert [s for _, s, _ in e["output_channels"]] == list(np.cumsum([0] + [c for _, _, c in
                                                                             e["output_channels"]])[:-1])
    assert man["parts"]["hand_heads"]["runs_per_frame"] == 2 and man["parts"]["boxnet"]["runs_per_frame"] == 1
    # BiDRN small: /4 -> body feature 8 x 6, boxnet x8 -> 64 x 48
    assert man["parts"]["boxnet"]["input_shape"] == [1, 16, 8, 6]
    assert man["parts"]["boxnet"]["output_shape"] == [1, 16 + 3, 64, 48]
    assert man["parts"]["hand_heads"]["input_shape"] == [1, 16, 4, 4]
    assert not any(x.hw for x in m.modules() if hasattr(x, "hw"))  # the model itself stays in float mode
    kinds = {n["kind"] for n in man["host"]}
    assert kinds == {"resize", "soft_argmax_2d", "soft_argmax_3d", "crop_box", "roi_align", "sample_features",
                     "linear", "mean_pool", "rot6d_to_axis_angle", "smplx"}
    by = {n["name"]: n for n in man["host"]}
    for n in man["host"]:
        assert set(n) >= {"name", "kind", "flops", "bytes", "count"} and n["flops"] > 0 and n["bytes"] > 0
    # the soft-argmax nodes read every heatmap logit the parts produce (10 flops each in 3D, 8 in 2D)
    p = man["parts"]
    hm = dict((n, c) for n, _, c in p["body_heads"]["output_channels"])["body_heatmap"]
    assert by["soft_argmax_3d_body"]["flops"] == 10 * hm * int(np.prod(p["body_heads"]["output_shape"][2:]))
    hm = dict((n, c) for n, _, c in p["hand_heads"]["output_channels"])["hand_heatmap"]
    assert by["soft_argmax_3d_hand"]["flops"] == 10 * hm * int(np.prod(p["hand_heads"]["output_shape"][2:]))
    assert by["soft_argmax_3d_hand"]["count"] == p["hand_heads"]["runs_per_frame"] == 2
    centre = dict((n, c) for n, _, c in p["boxnet"]["output_channels"])["centre_logits"]
    assert by["soft_argmax_2d_boxnet"]["flops"] == 8 * centre * int(np.prod(p["boxnet"]["output_shape"][2:]))


def test_host_linear_nodes_match_the_model_layers():
    """Each Linear node is 2 x weights FLOPs per run (the host time model's formula) of the model's own
    nn.Linear, run once per frame or once per hand / box."""
    m = build_wholebody("binaryhpe")
    by = {n["name"]: n for n in host_nodes(m)}
    for name, mod, runs in (("hand_pose_out", m.hand_rotation_net.hand_pose_out, 2),
                            ("root_pose_out", m.body_rotation_net.root_pose_out, 1),
                            ("body_pose_out", m.body_rotation_net.body_pose_out, 1),
                            ("shape_out", m.body_rotation_net.shape_out, 1),
                            ("cam_out", m.body_rotation_net.cam_out, 1),
                            ("expr_out", m.face_regressor.expr_out, 1),
                            ("jaw_pose_out", m.face_regressor.jaw_pose_out, 1),
                            ("boxnet_hidden", m.boxnet.lhand_size[0], 3),
                            ("boxnet_size", m.boxnet.lhand_size[2], 3)):
        assert isinstance(mod, nn.Linear)
        n = by[f"linear_{name}"]
        assert n["flops"] == 2 * mod.weight.numel() and n["count"] == runs
        # float32 weights, bias, input and output
        assert n["bytes"] == 4 * (mod.weight.numel() + mod.bias.numel() + mod.in_features + mod.out_features)
    # the SMPL-X pose blend shapes dominate its memory traffic: (V, 3, 486) float32
    assert by["smplx"]["bytes"] > 10475 * 3 * 486 * 4
    # crops: 2 hands at 256 x 256, the face at 192 x 192, 3 channels, 8 flops an output value
    assert by["roi_align_hand"]["flops"] == 8 * 3 * 256 * 256 and by["roi_align_hand"]["count"] == 2
    assert by["roi_align_face"]["flops"] == 8 * 3 * 192 * 192
    # 1 root + 21 body + 1 jaw + 2 x 15 hand rotations
    assert by["rot6d_to_axis_angle"]["dims"] == [53]


def test_part_without_hardware_mode_is_reported(tmp_path):
    m = _model(binarize=("body", "hand", "face", "heads"), binarizer="bnn")
    with pytest.raises(BinaryHPEError, match="has no hardware mode"):
        build_part(m, "body_heads")
    with pytest.raises(BinaryHPEError, match="unknown hardware part"):
        build_part(m, "face_heads")


def test_paper_scale_parts_export_exact(tmp_path):
    """The `binaryhpe` config's parts (BoxNet 2048+200 -> 256 x3 Deconvs to 64 x 48; the heads' 2048-channel
    1x1 convs) exported and checked on every element (a few seconds each: docs/wholebody.md)."""
    torch.manual_seed(0)
    m = build_wholebody("binaryhpe").eval()
    for mod in (m.boxnet, m.body_position_net, m.hand_position_net, m.hand_rotation_net, m.body_rotation_net):
        randomize(mod, seed=3)
    shapes = {"boxnet": ([1, 2048, 8, 6], [1, 259, 64, 48]), "body_heads": ([1, 2048, 8, 6], [1, 200 + 512, 8, 6]),
              "hand_heads": ([1, 2048, 8, 8], [1, 160 + 3 * 512, 8, 8])}
    for name in PART_NAMES:
        e = export_part(m, name, tmp_path, check=True)
        assert (e["input_shape"], e["output_shape"]) == shapes[name]
        assert e["check"]["mismatches"] == 0 and e["check"]["elements"] == int(np.prod(shapes[name][1]))


def test_tiny_parts_lower_and_stay_exact_in_the_compiler(tmp_path):
    """The exported parts are what the compiler takes: lowered (ConvTranspose by polyphase decomposition,
    compile/lower.py), optimized, and the compiler's integer graph equals the exact QONNX reference and the
    hardware-mode PyTorch part on every element."""
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import optimize
    from binaryhpe.compile.reference import compare_with_onnx

    m = _model()
    rng = np.random.default_rng(5)
    for name in PART_NAMES:
        e = export_part(m, name, tmp_path, check=False)
        hw = to_hardware(build_part(m, name), part_numerics(m, name))
        mw = load_qonnx(e["path"])
        g = lower(mw, source=name)
        optimize(g)
        kinds = {type(lay).__name__ for lay in g.layers}
        if name == "boxnet":
            assert {"XnorMvu", "FxpMvu", "PhaseShuffle"} <= kinds
        for x in (rng.normal(0, 2, e["input_shape"]).astype(np.float32),
                  np.full(e["input_shape"], 40.0, np.float32)):
            r = compare_with_onnx(g, mw, x)
            assert r["output_exact"], (name, r["first_mismatch"])
            with torch.no_grad():
                want = hw(torch.tensor(x)).numpy()[0].transpose(1, 2, 0)
            assert np.array_equal(g.tensors[g.output].fmt.to_real(r["env"][g.output]), want), name
