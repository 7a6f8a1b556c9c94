"""``binaryhpe evaluate --checkpoint CKPT --data ehf:PATH[,agora:PATH] -o OUT [--hardware]``: a checkpoint's model on
the paper's evaluation sets (``binaryhpe.train.realdata``), Table 1's errors per part as ``OUT/metrics.json`` and
``OUT/metrics.md``. Apart from ``realdata`` because it loads checkpoints (``train.loop``), which ``realdata``'s
training sets feed."""

from __future__ import annotations

import json
import pathlib

import torch

from binaryhpe import BinaryHPEError
from binaryhpe.train.realdata import EVAL_SETS, SMPLX_OUT, TABLE1, evaluation_set, parse_data


@torch.no_grad()
def evaluate_dataset(model, ds, layer, device, batch: int = 8) -> dict:
    """Table 1's errors (mm, ``metrics.evaluate_parts``) of ``model`` on ``ds``: the predicted SMPL-X mesh and
    joints (root-relative) against the sample's ground-truth mesh (``vertices``) and joints (``joints_3d``,
    all 55 SMPL-X joints, root-relative); samples without a ground-truth mesh are left out and counted."""
    from binaryhpe.train.metrics import evaluate_parts

    model.eval()
    pv, gv, pj, gj, skipped = [], [], [], [], 0
    for i in range(0, len(ds), batch):
        b = torch.utils.data.default_collate([ds[j] for j in range(i, min(len(ds), i + batch))])
        ok = b["vertices_valid"].reshape(-1) > 0
        skipped += int((~ok).sum())
        if not ok.any():
            continue
        out = model(b["img"][ok].to(device))
        m = layer({k: out[k].float().cpu() for k in SMPLX_OUT})
        root = m["joints"][:, :1]
        pv.append(m["vertices"] - root)
        pj.append(m["joints"][:, :b["joints_3d"].shape[1]] - root)
        gv.append(b["vertices"][ok])
        gj.append(b["joints_3d"][ok])
    if not pv:
        raise BinaryHPEError("evaluate: no sample has a ground-truth mesh")
    r = evaluate_parts(torch.cat(pv), torch.cat(gv), torch.cat(pj), torch.cat(gj), layer)
    return {**{k: float(v) for k, v in r.items()}, "samples": int(sum(len(x) for x in pv)), "skipped": skipped}


def load_model(ckpt, device="cpu"):
    """(model, cfg, layer, state) of a ``binaryhpe train`` checkpoint."""
    from binaryhpe.train.loop import checkpoint_config, load_checkpoint, make_layer, restore_model
    from binaryhpe.train.wholebody import build_wholebody

    state = load_checkpoint(ckpt)
    cfg = checkpoint_config(state, ckpt)
    layer = make_layer(cfg)
    model = build_wholebody(cfg, smplx_layer=layer)
    restore_model(state, model, ckpt)
    return model.to(device).eval(), cfg, layer, state


def format_metrics(results: dict) -> str:
    lines = ["| data set | samples | " + " | ".join(t for _, t in TABLE1) + " |",
             "|---|---:|" + "---:|" * len(TABLE1)]
    for name, r in results.items():
        lines.append(f"| {name} | {r['samples']} | " + " | ".join(f"{r[k]:.1f}" for k, _ in TABLE1) + " |")
    return "\n".join(lines)


def evaluate_command(args) -> int:
    """``binaryhpe evaluate --checkpoint CKPT --data ehf:PATH[,agora:PATH] -o OUT [--hardware]``."""
    from binaryhpe.train.loop import pick_device

    data = parse_data(args.data, EVAL_SETS, "an evaluation")
    device = pick_device()
    model, cfg, layer, state = load_model(args.checkpoint, device)
    if getattr(args, "hardware", False):
        from binaryhpe.train.hardware import to_hardware

        model = to_hardware(model.cpu())
        device = torch.device("cpu")
    results = {}
    for name, root in data:
        ds = evaluation_set(name, root, cfg, layer)
        results[name] = evaluate_dataset(model, ds, layer, device)
    out = pathlib.Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    doc = {"checkpoint": str(args.checkpoint), "step": int(state["step"]), "config": cfg.name,
           "mode": "hardware" if getattr(args, "hardware", False) else "float", "units": "mm", "results": results}
    (out / "metrics.json").write_text(json.dumps(doc, indent=2) + "\n")
    table = format_metrics(results)
    (out / "metrics.md").write_text(table + "\n")
    print(table)
    print(f"-> {out}/metrics.json, {out}/metrics.md")
    return 0


__all__ = ["evaluate_command", "evaluate_dataset", "format_metrics", "load_model"]
