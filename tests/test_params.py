"""Params / OPs of the paper's Tables 1-3 (issue 3, section 4; docs/params-ops.md).

Rows that the architecture reproduces are checked against the PAPER's numbers (typed from the paper) within
1 %. Rows that it cannot reproduce are checked against an independent hand calculation (closed-form ResNet /
head MAC counts written out below, sharing no code with the counter).
"""

from __future__ import annotations

import json

import pytest

from binaryhpe import BinaryHPEError
from binaryhpe.train.variants import params_command
from binaryhpe.train.variants import VARIANTS, measure

# --- the paper's figures (Params M, OPs G), typed from ../shared/spec/binaryhpe-paper.txt -------------------
PAPER_PARAMS = {
    "hand4whole": 77.84,  # Table 1
    "bnn": 21.61, "xnor": 21.61, "dorefa": 21.61, "bireal": 21.61,
    "reactnet": 21.66, "recu": 21.71, "fda": 32.06,
    "binaryhpe": 17.22,
    "binaryhpe-no-br": 11.5,  # Table 2c
    "binaryhpe-binarized-br": 11.68,  # Table 2c and Table 3 (binarized BoxNet)
    "binaryhpe-fp-boxnet": 21.81,  # Table 3
    "binaryhpe-lcr-base": 17.05,  # Table 2a
    "binaryhpe-bin-body": 47.78, "binaryhpe-bin-hand": 47.78, "binaryhpe-bin-face": 57.08,  # Table 2d
}
# Table 2a rows beyond Base LCR (each needs two more BiDRN builds): checked in test_table2a_steps
TABLE_2A = {"binaryhpe-lcr-dscr": 17.05, "binaryhpe-lcr-fur": 17.14, "binaryhpe-lcr-fdr": 17.21}


def _rel(a, b):
    return abs(a - b) / b


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_params_match_paper_within_1pct(name):
    got = measure(name).params_m
    assert _rel(got, PAPER_PARAMS[name]) < 0.01, f"{name}: measured {got:.3f} M vs paper {PAPER_PARAMS[name]} M"


def test_params_exact_anchors():
    # the independent count of exactly Hand4Whole's modules: 77.842 M; BNN-style: 21.61 M
    assert measure("hand4whole").params_m == pytest.approx(77.842, abs=0.0005)
    assert measure("bnn").params_m == pytest.approx(21.61, abs=0.005)
    # Table 3 minus Table 2c's binarized-BR row is the binarized BoxNet saving: paper 21.81 - 11.68 = 10.13 M
    saving = measure("binaryhpe-fp-boxnet").params_m - measure("binaryhpe-binarized-br").params_m
    assert saving == pytest.approx(10.13, abs=0.01)
    # Table 2c: full-precision minus binarized Block Residual, paper 17.22 - 11.68 = 5.54 M (+-0.01 rounding);
    # measured: the downsample conv weights x 31/32 = 5.523 M
    fp_br = measure("binaryhpe").params_m - measure("binaryhpe-binarized-br").params_m
    assert fp_br == pytest.approx(5.54, abs=0.02)


# --- independent hand calculation of the MACs (one MAC = one OP; both hands; exact deconv MACs) ------------


def _resnet(depth, h, w):
    """(stem MACs, other conv MACs without the downsample convs, downsample conv MACs), torchvision layout."""
    bottleneck, layers = {50: (True, (3, 4, 6, 3)), 18: (False, (2, 2, 2, 2))}[depth]
    h, w = h // 2, w // 2
    stem = h * w * 3 * 64 * 49
    h, w = h // 2, w // 2
    body = ds = 0
    cin = 64
    for i, n in enumerate(layers):
        p = 64 * 2**i
        for j in range(n):
            s = 2 if i > 0 and j == 0 else 1
            ho, wo = h // s, w // s
            if bottleneck:
                cout = 4 * p
                body += h * w * cin * p + ho * wo * p * p * 9 + ho * wo * p * cout
            else:
                cout = p
                body += ho * wo * cin * p * 9 + ho * wo * p * p * 9
            if s != 1 or cin != cout:
                ds += ho * wo * cin * cout
            h, w, cin = ho, wo, cout
    return stem, body, ds


def _hand_calc():
    hands = 2
    enc = [_resnet(50, 256, 192), tuple(hands * v for v in _resnet(50, 256, 256)), _resnet(18, 192, 192)]
    stem = sum(e[0] for e in enc)
    body = sum(e[1] for e in enc)
    ds = sum(e[2] for e in enc)
    rot_in = 33 * 515
    heads = (48 * 2048 * 200 + hands * 64 * 2048 * 160  # position nets
             + 48 * 2048 * 512 + 2 * 64 * 2048 * 512 + rot_in * (6 + 126) + 2048 * 13  # body rotation net
             + hands * 64 * 2048 * 512 + hands * 20 * 515 * 90  # hand rotation net
             + 512 * 16)  # face regressor
    d1, d2, d3 = 48 * 2248 * 256 * 16, 192 * 256 * 256 * 16, 768 * 256 * 256 * 16  # deconvs, input positions
    box_fp_rest = 64 * 48 * 256 * 3 + 3 * 256 * 2  # centre conv, final Linears
    lin = 3 * 256 * 256
    boxnet_fp = d1 + d2 + d3 + box_fp_rest + lin
    boxnet_bin = (d1 + d2 + lin) / 64 + d3 + box_fp_rest
    return {
        "hand4whole": stem + body + ds + heads + boxnet_fp,
        "bnn": stem + (body + ds) / 64 + heads + boxnet_fp,
        "binaryhpe": stem + body / 64 + ds + heads + boxnet_bin,
        "binaryhpe-no-br": stem + body / 64 + heads + boxnet_bin,
        "binaryhpe-binarized-br": stem + (body + ds) / 64 + heads + boxnet_bin,
        "binaryhpe-fp-boxnet": stem + (body + ds) / 64 + heads + boxnet_fp,
    }


@pytest.mark.parametrize("name", ["hand4whole", "bnn", "binaryhpe", "binaryhpe-no-br", "binaryhpe-binarized-br",
                                  "binaryhpe-fp-boxnet"])
def test_ops_match_hand_calculation(name):
    want = _hand_calc()[name] / 1e9
    assert measure(name).ops_g == pytest.approx(want, rel=1e-9)


def test_ops_rows_reproduced_or_documented():
    """The BNN row is within 2 % of the paper (2.63 G); the paper's own OPs are inconsistent elsewhere:
    Table 1's BNN row and Table 3's full-precision-BoxNet row have the same binary / full-precision MAC
    structure yet 2.63 vs 1.87 G (docs/params-ops.md)."""
    assert _rel(measure("bnn").ops_g, 2.63) < 0.02
    assert measure("bnn").ops_g == pytest.approx(measure("binaryhpe-fp-boxnet").ops_g, rel=1e-12)
    # the plain-binarized baselines differ only in per-channel extras: same OPs (the paper: 2.63 for all four)
    assert {round(measure(n).ops_g, 9) for n in ("bnn", "xnor", "dorefa", "bireal", "reactnet")} == \
        {round(measure("bnn").ops_g, 9)}


def test_table2a_steps_are_rprelu_parameters():
    """Table 2a: +DScR 0, +FUR 0.09 M (paper); measured rows within 1 % of the paper."""
    for name, want in TABLE_2A.items():
        assert _rel(measure(name).params_m, want) < 0.01
    step = measure("binaryhpe-lcr-fur").params_m - measure("binaryhpe-lcr-base").params_m
    # DScR + FUR add RPReLU (3 per channel, LCR's own parameters) on every bottleneck conv2 of stride 2 and
    # every conv3 output channel of both ResNet-50s (a plain binary conv has none)
    dscr_ch = 2 * (128 + 256 + 512)
    fur_ch = 2 * (3 * 256 + 4 * 512 + 6 * 1024 + 3 * 2048)
    assert step * 1e6 == pytest.approx(3 * (dscr_ch + fur_ch), abs=0.5)


def test_whole_model_count_equals_part_sum():
    import torch

    from binaryhpe.train.hand4whole import Hand4Whole
    from binaryhpe.train.opcount import count

    spec = VARIANTS["bnn"].spec
    with torch.device("meta"):
        model = Hand4Whole(spec)
    rep = count(model, tuple(x.to("meta") for x in Hand4Whole.example_inputs(hands=2)))
    part = measure("bnn")
    assert rep.params_m == pytest.approx(part.params_m, rel=1e-12)
    assert rep.ops_g == pytest.approx(part.ops_g, rel=1e-12)


def test_cli_json_and_errors(capsys):
    assert params_command("bnn", True) == 0
    obj = json.loads(capsys.readouterr().out)
    assert isinstance(obj["params_m"], float) and isinstance(obj["ops_g"], float)
    assert set(obj["parts"]) >= {"body_encoder", "hand_encoder", "face_encoder", "boxnet"}
    assert params_command("bnn", False) == 0
    assert "total" in capsys.readouterr().out
    with pytest.raises(BinaryHPEError, match="unknown variant 'nope'.*hand4whole"):
        params_command("nope", True)
