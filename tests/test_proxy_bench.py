"""``binaryhpe bench proxy`` at CI size: the rows, the seeds, the statistics, Params/OPs per row, the plot; and a
short full-precision run that must learn (beat predicting the mean)."""

import json
import math

import numpy as np
import pytest
import torch

from binaryhpe.cli import main
from binaryhpe.train import proxy_bench as P


def test_soft_argmax_finds_a_peak():
    heat = torch.full((1, 2, 6, 8), -50.0)
    heat[0, 0, 2, 5] = 50.0  # row 2, column 5
    heat[0, 1, 0, 0] = 50.0
    xy = P.soft_argmax_2d(heat)
    assert torch.allclose(xy[0, 0], torch.tensor([5.5 / 8, 2.5 / 6]), atol=1e-6)
    assert torch.allclose(xy[0, 1], torch.tensor([0.5 / 8, 0.5 / 6]), atol=1e-6)


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("proxy")
    assert main(["bench", "proxy", "-o", str(out), "--size", "ci"]) == 0
    return out, json.loads((out / "proxy.json").read_text())


def test_ci_run_rows_and_statistics(ci_run):
    out, r = ci_run
    rows = {x["method"]: x for x in r["rows"]}
    assert list(rows) == ["mean", "fp", "bnn", "reactnet", "recu", "bidrn-bbr", "bidrn"]
    for m, x in rows.items():
        assert set(x) >= {"method", "params_m", "ops_g", "error_mean", "error_std", "seeds"}
        if m == "mean":
            assert x["seeds"] == [] and x["params_m"] == 0
            continue
        assert x["seeds"] == [0, 1] and len(x["errors"]) == 2 and all(np.isfinite(x["errors"]))
        assert x["error_mean"] == pytest.approx(np.mean(x["errors"]), rel=1e-12)
        assert x["error_std"] == pytest.approx(np.std(x["errors"]), rel=1e-9, abs=1e-12)
        assert x["params_m"] > 0 and x["ops_g"] > 0
    # the binary rows are cheaper than full precision by the paper's convention; BiDRN with the full-precision
    # Block Residual costs more than with the binarized one
    assert all(rows[m]["ops_g"] < rows["fp"]["ops_g"] / 3 for m in ("bnn", "reactnet", "recu", "bidrn-bbr", "bidrn"))
    assert rows["bidrn"]["params_m"] > rows["bidrn-bbr"]["params_m"]
    assert (out / "proxy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| Predict the mean |" in (out / "proxy.md").read_text()
    assert r["hardware"]["method"] == "bidrn" and np.isfinite(r["hardware"]["error_hardware"])


def test_mean_row_is_the_mean_prediction_error(ci_run):
    """Recomputed from the generated samples' joint_img directly (pixels of the 32x24 input)."""
    from binaryhpe.train.data.proxy import ProxyConfig, ProxyDataset, default_layer

    _, r = ci_run
    sz = P.SIZES["ci"]
    cfg = ProxyConfig(img_size=(64, 48), n_joints=22)
    dtr = ProxyDataset(sz.train, 0, "train", cfg, default_layer())
    dte = ProxyDataset(sz.test, 0, "test", cfg, default_layer())
    tr = np.stack([dtr[i]["joint_img"][:, :2].numpy() for i in range(sz.train)])
    te = np.stack([dte[i]["joint_img"][:, :2].numpy() for i in range(sz.test)])
    d = (tr.astype(np.float64).mean(0)[None] - te) * np.array([24.0, 32.0])
    want = np.sqrt((d ** 2).sum(-1)).mean()
    assert r["rows"][0]["error_mean"] == pytest.approx(want, rel=1e-5)


def test_full_precision_learns():
    """A short run (150 steps) of the full-precision row beats predicting the mean by a clear margin."""
    from binaryhpe.train.data.proxy import default_layer

    layer = default_layer()
    tr, te = P.make_data(384, "train", layer), P.make_data(128, "test", layer)
    mean = P.pixel_error(tr["joints"].mean(0, keepdim=True).expand_as(te["joints"]), te["joints"])
    model = P.train_row("fp", tr, P.ProxySize(train=384, test=128, steps=150, batch=16, seeds=(0,)), 0)
    err = P.pixel_error(P.predict(model, te["img"]), te["joints"])
    assert err < 0.8 * mean, (err, mean)


def test_bad_arguments_are_one_line(capsys):
    assert main(["bench", "proxy", "-o", "x", "--size", "huge"]) == 2
    assert main(["bench", "proxy", "-o", "x", "--rows", "fp,nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--size 'huge'" in err[0] and "'nope'" in err[1]
