"""The proxy benchmark: do the binarizers learn, and in which order? (``binaryhpe bench proxy -o OUT``)

The task is the joint term of eq. 12 on generated data: 2D localisation of the 22 SMPL-X body joints in
generated SMPL-X figures (``binaryhpe.train.data.proxy``: 64x48 renders, 2x2 average-pooled to a 32x24
input). Each row is the same small encoder (full-precision 3x3/2 stem with 8 channels, then a basic block
of 8, a basic block of 16 with stride 2 and two bottleneck blocks of 32: /4 overall) whose convolutions are
those of the method (``binaryhpe.train.binarizers.build_backbone``), followed by the same tiny
full-precision head: one 1x1 convolution to 22 heatmaps on the 8x6 feature map and a soft-argmax (the
PositionNet of Hand4Whole, Sun et al. 2018), 726 parameters, so that the encoder decides the error.

Rows: full precision, BNN, ReActNet, ReCU, BiDRN with a binarized Block Residual (the closest in size to the
baselines) and with the full-precision Block Residual, and "predict the mean" (the training set's mean
position of every joint: what a network that ignores the image can at best do under an L2 error). Every
trained row uses Adam (lr 3e-3 for every row, decayed linearly to 0 over the run, as ReActNet and ReCU train), the L1 loss of the joint term on (x, y) in [0, 1], the same fixed training
set (no augmentation) and the same number of steps; the seeds change the initialisation and the batch order.
The error is the mean Euclidean distance between predicted and true joints on the held-out samples, in
pixels of the 32x24 input. Params and OPs are counted by the paper's convention
(``binaryhpe.train.opcount``) for encoder + head at the 32x24 input.

``run(size, out_dir)`` writes ``OUT/proxy.json`` (``rows``: ``method``, ``label``, ``params_m``, ``ops_g``,
``error_mean``, ``error_std`` (population standard deviation over the seeds), ``seeds``, ``errors`` (one per
seed), ``train_s``) and ``OUT/proxy.png`` (a bar chart with the seeds' spread), and, when BiDRN is trained, the
error of its fixed-point hardware mode (``binaryhpe.train.hardware.to_hardware``) for the first seed.
"""

from __future__ import annotations

import copy
import json
import math
import pathlib
import time
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from binaryhpe import BinaryHPEError

RENDER = (64, 48)  # generated image size
SIZE = (32, 24)  # network input: the renders 2x2 average-pooled
JOINTS = 22  # SMPL-X body joints
ROWS = (("mean", "Predict the mean"), ("fp", "Full precision"), ("bnn", "BNN"), ("reactnet", "ReActNet"),
        ("recu", "ReCU"), ("bidrn-bbr", "BiDRN, binarized BR"), ("bidrn", "BiDRN, full-precision BR"))
LABELS = dict(ROWS)
#: the paper's EHF All MPVPE (mm) of the rows' counterparts, for the ordering only: Table 1 (Hand4Whole for full
#: precision, BinaryHPE for BiDRN with the full-precision BR) and Table 2c (binarized BR); tests/test_paper_figures.py
#: reads them from the paper's text
PAPER_EHF_ALL_MPVPE = {"fp": 86.3, "bnn": 172.2, "reactnet": 149.8, "recu": 142.7, "bidrn-bbr": 120.0, "bidrn": 118.3}


@dataclass(frozen=True)
class ProxySize:
    train: int  # generated training samples (a fixed set)
    test: int  # held-out samples
    steps: int  # Adam steps per row and seed
    batch: int
    seeds: tuple
    lr: float = 3e-3


SIZES = {
    # a CI-sized run (a minute or two on 2 cores): too short to rank, long enough to check the machinery
    "ci": ProxySize(train=64, test=64, steps=6, batch=16, seeds=(0, 1)),
    # the benchmark (benchmarks/proxy_table.py; docs/training.md has its table)
    "full": ProxySize(train=2048, test=256, steps=500, batch=16, seeds=(0, 1, 2)),
}


def encoder_cfg(method: str):
    from binaryhpe.train.config import BiDRNConfig, StageConfig

    return BiDRNConfig(in_channels=3, input_size=SIZE, stem_channels=8, stem_kernel=3, stem_stride=2,
                       stages=(StageConfig("basic", 8, 1, 1), StageConfig("basic", 16, 1, 2),
                               StageConfig("bottleneck", 32, 2, 1)),
                       block_residual="binary" if method == "bidrn-bbr" else "fp")


def soft_argmax_2d(heat: torch.Tensor) -> torch.Tensor:
    """(B, J, h, w) heatmaps -> (B, J, 2) expected (x, y) in [0, 1] (pixel centres, ``align_corners=False``)."""
    B, J, h, w = heat.shape
    p = F.softmax(heat.reshape(B, J, h * w), dim=-1).reshape(B, J, h, w)
    xs = (torch.arange(w, dtype=heat.dtype, device=heat.device) + 0.5) / w
    ys = (torch.arange(h, dtype=heat.dtype, device=heat.device) + 0.5) / h
    return torch.stack([(p.sum(2) * xs).sum(-1), (p.sum(3) * ys).sum(-1)], dim=-1)


class JointNet(nn.Module):
    """The method's encoder + a 1x1 conv to ``JOINTS`` heatmaps + soft-argmax."""

    def __init__(self, method: str):
        super().__init__()
        from binaryhpe.train.binarizers import build_backbone

        self.method = method
        self.encoder = build_backbone("bidrn" if method == "bidrn-bbr" else method, encoder_cfg(method))
        self.head = nn.Conv2d(self.encoder.out_channels, JOINTS, 1)

    def forward(self, img):
        return soft_argmax_2d(self.head(self.encoder(img * 2 - 1)))


def make_data(n: int, split: str, layer, seed: int = 0) -> dict:
    """``n`` generated samples: ``img`` (n, 3, 32, 24) in [0, 1] and ``joints`` (n, 22, 2) in [0, 1]."""
    from binaryhpe.train.data.proxy import ProxyConfig, ProxyDataset

    ds = ProxyDataset(n, seed=seed, split=split, cfg=ProxyConfig(img_size=RENDER, n_joints=JOINTS), layer=layer)
    b = torch.utils.data.default_collate([ds[i] for i in range(n)])
    return {"img": F.avg_pool2d(b["img"], 2), "joints": b["joint_img"][:, :, :2].float()}


def pixel_error(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Mean Euclidean joint distance in pixels of the SIZE input (x scaled by W, y by H)."""
    scale = torch.tensor([SIZE[1], SIZE[0]], dtype=pred.dtype)
    return float(((pred - gt) * scale).norm(dim=-1).mean())


def train_row(method: str, data: dict, size: ProxySize, seed: int, log=None) -> JointNet:
    from binaryhpe.train.binarizers import after_optimizer_step, recu_tau, set_recu_tau

    torch.manual_seed(seed)
    model = JointNet(method)
    opt = torch.optim.Adam(model.parameters(), lr=size.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / size.steps)  # linear decay to 0
    g = torch.Generator().manual_seed(1000 + seed)
    n = data["img"].shape[0]
    if n < size.batch:
        raise BinaryHPEError(f"proxy: {n} training samples are fewer than one batch of {size.batch}")
    order = torch.cat([torch.randperm(n, generator=g) for _ in range(size.steps * size.batch // n + 1)])
    model.train()
    for step in range(size.steps):
        if method == "recu":
            set_recu_tau(model, recu_tau(step / max(1, size.steps - 1)))
        idx = order[step * size.batch:(step + 1) * size.batch]
        loss = (model(data["img"][idx]) - data["joints"][idx]).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        after_optimizer_step(model)
        sched.step()
        if log and (step + 1) % max(1, size.steps // 4) == 0:
            log(f"  {method} seed {seed}: step {step + 1}/{size.steps} loss {loss.item():.4f}")
    return model.eval()


@torch.no_grad()
def predict(model, img: torch.Tensor, batch: int = 128) -> torch.Tensor:
    return torch.cat([model(img[i:i + batch]) for i in range(0, img.shape[0], batch)])


#: "clearly better than predicting the mean": every seed below the mean row's error, and the seeds' mean below
#: it by more than CLEAR_STD population standard deviations of the seeds and by at least CLEAR_REL of it
CLEAR_STD, CLEAR_REL = 3.0, 0.10


def beats_mean_clearly(row: dict, mean_error: float) -> bool:
    """The benchmark's learning criterion for a trained row (docs/training.md): see ``CLEAR_STD``/``CLEAR_REL``."""
    errs = row["errors"]
    return (bool(errs) and all(e < mean_error for e in errs)
            and mean_error - row["error_mean"] > CLEAR_STD * row["error_std"]
            and row["error_mean"] <= (1 - CLEAR_REL) * mean_error)


def _stats(errors: list) -> tuple:
    m = sum(errors) / len(errors)
    return m, math.sqrt(sum((e - m) ** 2 for e in errors) / len(errors))


def run(size: str | ProxySize = "full", out_dir=None, methods=None, log=print) -> dict:
    """Train every row for every seed; returns (and with ``out_dir`` writes) the result dict."""
    from binaryhpe.train.data.proxy import default_layer
    from binaryhpe.train.opcount import count

    sz = SIZES[size] if isinstance(size, str) else size
    names = [m for m, _ in ROWS] if methods is None else list(methods)
    bad = [m for m in names if m not in LABELS]
    if bad:
        raise BinaryHPEError(f"proxy: unknown row {bad[0]!r} (known: {', '.join(LABELS)})")
    if not sz.seeds:
        raise BinaryHPEError("proxy: at least one seed is needed")
    t0 = time.time()
    layer = default_layer()
    train = make_data(sz.train, "train", layer)
    test = make_data(sz.test, "test", layer)
    log(f"proxy: generated {sz.train} training / {sz.test} held-out samples in {time.time() - t0:.1f} s")
    rows, hardware = [], None
    for m in names:
        t1 = time.time()
        if m == "mean":
            mean = train["joints"].mean(0, keepdim=True)
            e = pixel_error(mean.expand_as(test["joints"]), test["joints"])
            rows.append({"method": m, "label": LABELS[m], "params_m": 0.0, "ops_g": 0.0, "error_mean": e,
                         "error_std": 0.0, "seeds": [], "errors": [], "train_s": 0.0})
            continue
        errors, first = [], None
        for seed in sz.seeds:
            model = train_row(m, train, sz, seed, log)
            errors.append(pixel_error(predict(model, test["img"]), test["joints"]))
            first = first or model
        rep = count(first, (torch.zeros(1, 3, *SIZE),))
        mu, sd = _stats(errors)
        rows.append({"method": m, "label": LABELS[m], "params_m": rep.total.params / 1e6,
                     "ops_g": rep.total.ops / 1e9, "error_mean": mu, "error_std": sd, "seeds": list(sz.seeds),
                     "errors": errors, "train_s": round(time.time() - t1, 1)})
        log(f"proxy: {LABELS[m]}: {mu:.3f} +- {sd:.3f} px over seeds {list(sz.seeds)} ({time.time() - t1:.0f} s)")
        if m == "bidrn":
            from binaryhpe.train.hardware import to_hardware

            hw = copy.deepcopy(first)
            to_hardware(hw.encoder)
            p_hw, p_fl = predict(hw, test["img"]), predict(first, test["img"])
            hardware = {"method": m, "seed": sz.seeds[0], "error_float": pixel_error(p_fl, test["joints"]),
                        "error_hardware": pixel_error(p_hw, test["joints"]),
                        "max_joint_shift_px": float(((p_hw - p_fl) * torch.tensor([SIZE[1], SIZE[0]]))
                                                    .norm(dim=-1).max())}
    mean_row = next((r for r in rows if r["method"] == "mean"), None)
    if mean_row is not None:
        for r in rows:
            if r["seeds"]:
                r["beats_mean_clearly"] = beats_mean_clearly(r, mean_row["error_mean"])
    result = {"task": f"2D body-joint localisation ({JOINTS} SMPL-X joints) on generated figures, "
                      f"{SIZE[0]}x{SIZE[1]} input, error in input pixels",
              "size": asdict(sz), "rows": rows, "seconds": round(time.time() - t0, 1)}
    if hardware is not None:
        result["hardware"] = hardware
    if out_dir is not None:
        write(result, out_dir)
    return result


def format_table(result: dict) -> str:
    sz = result["size"]
    lines = [f"Proxy: {result['task']}; {sz['train']} training / {sz['test']} held-out generated samples, "
             f"{sz['steps']} Adam steps of batch {sz['batch']} (lr {sz['lr']:g} decayed linearly to 0), seeds "
             f"{list(sz['seeds'])}", "",
             "| Method | Params (M) | OPs (G) | error (px), mean +- std | per seed | train s |",
             "|---|---:|---:|---:|---|---:|"]
    for r in result["rows"]:
        per = ", ".join(f"{e:.3f}" for e in r["errors"]) or "-"
        pm = f"{r['params_m']:.4f}" if r["seeds"] else "-"
        og = f"{r['ops_g']:.5f}" if r["seeds"] else "-"
        lines.append(f"| {r['label']} | {pm} | {og} | {r['error_mean']:.3f} +- {r['error_std']:.3f} | {per} | "
                     f"{r['train_s']:.0f} |")
    trained = sorted((r for r in result["rows"] if r["seeds"]), key=lambda r: r["error_mean"])
    lines += ["", "ordering by mean error here: " + " < ".join(r["label"] for r in trained)]
    paper = sorted((r for r in trained if r["method"] in PAPER_EHF_ALL_MPVPE), key=lambda r: PAPER_EHF_ALL_MPVPE[r["method"]])
    lines.append("ordering in the paper (EHF All MPVPE, Tables 1 and 2c): " + " < ".join(
        f"{r['label']} ({PAPER_EHF_ALL_MPVPE[r['method']]})" for r in paper))
    mean = next((r for r in result["rows"] if r["method"] == "mean"), None)
    if mean is not None:
        worse = [r["label"] for r in trained if not beats_mean_clearly(r, mean["error_mean"])]
        rule = (f"every seed below {mean['error_mean']:.3f} px, and the mean below it by more than "
                f"{CLEAR_STD:g} seed std and by at least {CLEAR_REL:.0%}")
        lines.append(f"every trained row beats predicting the mean clearly ({rule})" if not worse else
                     f"NOT clearly better than predicting the mean ({rule}): {', '.join(worse)}")
    if "hardware" in result:
        h = result["hardware"]
        lines.append(f"BiDRN (full-precision BR), seed {h['seed']}: float {h['error_float']:.3f} px, fixed-point "
                     f"hardware mode {h['error_hardware']:.3f} px (largest joint shift {h['max_joint_shift_px']:.3f} px)")
    return "\n".join(lines)


def write(result: dict, out_dir) -> pathlib.Path:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "proxy.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "proxy.md").write_text(format_table(result) + "\n")
    plot(result, out / "proxy.png")
    return out


def plot(result: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    xs = range(len(rows))
    ax.bar(xs, [r["error_mean"] for r in rows], yerr=[r["error_std"] for r in rows], capsize=4,
           color=["#bbbbbb" if not r["seeds"] else "#4477aa" for r in rows])
    for i, r in enumerate(rows):
        ax.plot([i] * len(r["errors"]), r["errors"], "k.", ms=4)
    ax.set_xticks(list(xs), [r["label"].replace(", ", ",\n") for r in rows], fontsize=7)
    ax.set_ylabel("joint error (px, 32x24 input)")
    sz = result["size"]
    ax.set_title(f"proxy: {sz['steps']} steps x batch {sz['batch']}, seeds {list(sz['seeds'])} (dots: seeds)",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def size_from_args(name: str, steps=None, seeds=None, train=None, test=None) -> ProxySize:
    if name not in SIZES:
        raise BinaryHPEError(f"proxy --size {name!r}: expected one of {', '.join(SIZES)}")
    sz = SIZES[name]
    if steps is not None:
        if steps < 1:
            raise BinaryHPEError(f"proxy --steps {steps}: expected at least 1")
        sz = replace(sz, steps=steps)
    if seeds is not None:
        if seeds < 1:
            raise BinaryHPEError(f"proxy --seeds {seeds}: expected at least 1")
        sz = replace(sz, seeds=tuple(range(seeds)))
    if train is not None:
        sz = replace(sz, train=train)
    if test is not None:
        sz = replace(sz, test=test)
    return sz


def bench_command(args) -> int:
    """``binaryhpe bench proxy -o OUT [--size ci|full] [--rows a,b] [--steps N] [--seeds N]``."""
    sz = size_from_args(args.size, args.steps, args.seeds)
    methods = args.rows.split(",") if args.rows else None
    result = run(sz, args.output, methods, log=lambda *a: print(*a, flush=True))
    print(format_table(result))
    print(f"-> {args.output}/proxy.json, proxy.md, proxy.png")
    return 0


__all__ = ["CLEAR_REL", "CLEAR_STD", "JointNet", "ROWS", "SIZES", "ProxySize", "beats_mean_clearly", "bench_command",
           "format_table", "make_data", "pixel_error", "run", "soft_argmax_2d", "write"]
