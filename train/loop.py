"""Training: ``binaryhpe train [--config NAME|FILE] [--steps N] -o OUT [--resume]``.

Adam with the configuration's batch size, learning rate and epochs (the paper's defaults: batch 24, lr 1e-4,
14 epochs, Section 4), the loss of eq. 12 (``binaryhpe.train.wholebody.wholebody_loss``), generated proxy
data (``binaryhpe.train.data.proxy``) with the standard augmentation, checkpoints that resume exactly (model,
optimizer, step, RNG states, configuration), progress lines, CPU by default and CUDA when present.

Data parallel: launched with ``torchrun --nproc_per_node N -m binaryhpe.cli train ...`` (or any launcher that
sets RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT), the process group is initialised with NCCL on GPUs and
gloo on CPUs, the model is wrapped in ``DistributedDataParallel``, and the *global* batch (the configuration's
``batch_size``) is split evenly across the ranks through a ``DistributedSampler`` (same seed on every rank,
``set_epoch`` every epoch). Rank 0 alone writes the checkpoint, metrics and meshes. BatchNorm layers keep
per-rank batch statistics (DDP broadcasts rank 0's running statistics at every forward); ``sync_bn=True``
(``BINARYHPE_SYNC_BN=1``) converts them to ``SyncBatchNorm`` on GPUs.

The core (``fit``) takes any model, loss and data set, so the DDP test can check it on a small model against a
single process on the same global batch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import random
import sys
import time

import numpy as np
import torch
import torch.distributed as dist

from binaryhpe import BinaryHPEError
from binaryhpe.train.binarizers import after_optimizer_step

CHECKPOINT_FORMAT = "binaryhpe-train-checkpoint"
CHECKPOINT_VERSION = 1
TRAIN_BATCHES_PER_EPOCH = 20  # generated training set: this many global batches per epoch
TEST_SAMPLES = 64  # held-out generated samples for metrics.json


# ----------------------------------------------------------------------------------------------------------
# distributed setup


@dataclasses.dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    initialised_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def pick_device(local_rank: int = 0) -> torch.device:
    """CUDA when present (``BINARYHPE_DEVICE=cpu`` forces the CPU), else the CPU."""
    want = os.environ.get("BINARYHPE_DEVICE", "").lower()
    if want == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def setup_distributed() -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(local_rank)
    if world <= 1:
        return DistInfo(device=device)
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, device, initialised_here=True)


def cleanup_distributed(info: DistInfo) -> None:
    if info.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------------------
# RNG states and checkpoints


def rng_state() -> dict:
    s = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])
    if "cuda" in s and torch.cuda.is_available() and len(s["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(s["cuda"])


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(path, model, optimizer, step: int, config: dict, extra: dict | None = None) -> pathlib.Path:
    """Write atomically (a temporary file renamed over the old one)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": int(step), "config": config,
             "model": _unwrap(model).state_dict(), "optimizer": optimizer.state_dict(), "rng": rng_state(),
             **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path) -> dict:
    """Read and check a checkpoint; a missing, truncated, foreign or old file gives one BinaryHPEError."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise BinaryHPEError(f"checkpoint not found: {path} (--resume needs a previous run's OUT/checkpoint.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling / zip error means the file is unusable
        raise BinaryHPEError(f"checkpoint {path} is corrupt or not a PyTorch file "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise BinaryHPEError(f"checkpoint {path} is not a binaryhpe training checkpoint (no "
                             f"format = {CHECKPOINT_FORMAT!r})")
    if state.get("version") != CHECKPOINT_VERSION:
        raise BinaryHPEError(f"checkpoint {path} has version {state.get('version')!r}, this binaryhpe reads "
                             f"version {CHECKPOINT_VERSION}")
    missing = [k for k in ("step", "config", "model", "optimizer", "rng") if k not in state]
    if missing:
        raise BinaryHPEError(f"checkpoint {path} lacks the key(s) {', '.join(missing)}")
    return state


def checkpoint_config(state: dict, where):
    """The ``WholeBodyConfig`` a checkpoint (``load_checkpoint``) was trained with; one BinaryHPEError naming
    ``where`` when it is not a valid configuration."""
    from binaryhpe.train.wholebody import WholeBodyConfig

    try:
        return WholeBodyConfig.from_dict(state["config"])
    except (BinaryHPEError, TypeError) as e:
        raise BinaryHPEError(f"checkpoint {where}: its configuration is not valid ({e})") from None


def restore_model(state: dict, model, where) -> None:
    try:
        _unwrap(model).load_state_dict(state["model"], strict=True)
    except RuntimeError as e:
        first = " ".join(str(e).split())[:300]
        raise BinaryHPEError(f"checkpoint {where}: its weights do not fit this model ({first})") from None


def restore_optimizer(state: dict, optimizer, where) -> None:
    """Load the optimizer state and the RNG states. Build the optimizer *after* ``restore_model``: Brevitas
    re-creates its weight quantizers (and their scale parameters) when a state dict is loaded, so an
    optimizer built before would hold the old parameter objects."""
    try:
        optimizer.load_state_dict(state["optimizer"])
    except (ValueError, KeyError) as e:
        raise BinaryHPEError(f"checkpoint {where}: its optimizer state does not fit this model ({e})") from None
    set_rng_state(state["rng"])


def config_mismatch(a: dict, b: dict) -> list:
    """Keys (dotted) whose values differ between two config dicts (lists and tuples compare equal)."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += [f"{k}.{s}" for s in config_mismatch(va, vb)]
        elif json.dumps(va, default=str) != json.dumps(vb, default=str):
            out.append(k)
    return out


def _unwrap(model):
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


# ----------------------------------------------------------------------------------------------------------
# the generic loop


def global_batches(n: int, global_batch: int, info: DistInfo, seed: int, epoch: int) -> list:
    """This rank's index lists, one per global batch of ``epoch`` (DistributedSampler, drop_last)."""
    from torch.utils.data.distributed import DistributedSampler

    if global_batch % info.world_size:
        raise BinaryHPEError(f"batch size {global_batch} cannot be split across {info.world_size} processes: "
                             "it must be a multiple of the world size")
    per_rank = global_batch // info.world_size
    sampler = DistributedSampler(range(n), num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed,
                                 drop_last=True)
    sampler.set_epoch(epoch)
    idx = list(sampler)
    return [idx[i:i + per_rank] for i in range(0, len(idx) - per_rank + 1, per_rank)]


def fit(model, loss_fn, dataset, *, steps: int, global_batch: int, lr: float, seed: int = 0,
        info: DistInfo | None = None, optimizer=None, start_step: int = 0, on_step=None, log=None,
        find_unused_parameters: bool = True):
    """Train ``model`` for optimizer steps ``start_step .. steps-1``; returns (model, optimizer, last losses).

    Each step takes the next global batch of a per-epoch shuffle of ``dataset`` (its ``set_epoch`` is called
    when it has one), this rank's share of it through ``DistributedSampler``; ``loss_fn(out, batch)`` returns
    a dict with "total". With ``info.world_size > 1`` the model is wrapped in DDP (gradients averaged, so the
    step equals one on the global batch when the loss is a mean over samples). ``on_step(step, losses,
    model, optimizer)`` is called after every step (checkpoints, progress).
    """
    info = info or DistInfo()
    model = model.to(info.device)
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    net = model
    if info.world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device.index] if info.device.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters)
    per_epoch = len(global_batches(len(dataset), global_batch, DistInfo(), seed, 0))
    if per_epoch == 0:
        raise BinaryHPEError(f"data set of {len(dataset)} samples is smaller than one batch of {global_batch}")
    losses = {}
    net.train()
    step = start_step
    while step < steps:
        epoch, k = divmod(step, per_epoch)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        batches = global_batches(len(dataset), global_batch, info, seed, epoch)
        for idx in batches[k:]:
            if step >= steps:
                break
            batch = torch.utils.data.default_collate([dataset[i] for i in idx])
            batch = _to(batch, info.device)
            out = net(batch["img"])
            ls = loss_fn(out, batch)
            optimizer.zero_grad(set_to_none=True)
            ls["total"].backward()
            optimizer.step()
            after_optimizer_step(net)  # a baseline's own post-update rule (BNN clips its latent weights)
            step += 1
            losses = {k2: float(v.detach()) for k2, v in ls.items()}
            if on_step is not None:
                on_step(step, losses, net, optimizer)
    return model, optimizer, losses


def _to(batch, device):
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch.to(device) if torch.is_tensor(batch) else batch


# ----------------------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def evaluate(model, dataset, layer, device, batch: int = 32) -> dict:
    """Table 1 errors (mm) of ``model`` on ``dataset`` (``binaryhpe.train.metrics.evaluate_parts``).

    Predicted and ground-truth meshes both come from the SMPL-X layer (root-relative, all 55 joints), the
    ground truth from the sample's parameters."""
    from binaryhpe.train.metrics import evaluate_parts

    keys = ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "expr", "shape")
    was = model.training
    model.eval()
    pv, gv, pj, gj = [], [], [], []
    for i in range(0, len(dataset), batch):
        b = torch.utils.data.default_collate([dataset[j] for j in range(i, min(len(dataset), i + batch))])
        out = model(b["img"].to(device))
        for params, vs, js in (({k: out[k].float().cpu() for k in keys}, pv, pj),
                               ({k: b[k].float() for k in keys}, gv, gj)):
            m = layer(params)
            root = m["joints"][:, :1]
            vs.append(m["vertices"] - root)
            js.append(m["joints"] - root)
    model.train(was)
    r = evaluate_parts(torch.cat(pv), torch.cat(gv), torch.cat(pj), torch.cat(gj), layer)
    return {k: float(v) for k, v in r.items()}


# ----------------------------------------------------------------------------------------------------------
# the command


def resolve_config(name):
    from binaryhpe.train.wholebody import WholeBodyConfig, wholebody_config

    if name is None:
        return wholebody_config("tiny-wholebody")
    if isinstance(name, WholeBodyConfig):
        return name
    return wholebody_config(str(name))


def make_layer(cfg):
    """The SMPL-X layer: the user's model files when the config or BINARYHPE_SMPLX_DIR names them, else the
    synthetic model of the generated data."""
    from binaryhpe.train.data.proxy import default_layer
    from binaryhpe.train.smplx_model import ENV_VAR, SMPLXLayer

    if cfg.smplx_path or os.environ.get(ENV_VAR):
        return SMPLXLayer(cfg.smplx_path, num_betas=cfg.num_betas, num_expression=cfg.num_expression)
    return default_layer()


def train(cfg=None, out_dir="out", steps: int | None = None, resume: bool = False, seed: int = 0,
          log=print, n_test: int = TEST_SAMPLES, data: list | None = None) -> dict:
    """Train the whole-body model; writes OUT/checkpoint.pt, OUT/metrics.json (rank 0).

    ``data``: None for generated data, else ``[(name, path), ...]`` (``realdata.parse_data``): the real data
    sets' training splits, concatenated, with the standard augmentation; an epoch is one pass over them."""
    from binaryhpe.train.data.proxy import ProxyConfig, ProxyDataset
    from binaryhpe.train.wholebody import build_wholebody, wholebody_loss

    out = pathlib.Path(out_dir)
    ckpt_path = out / "checkpoint.pt"
    state = None
    if resume:
        state = load_checkpoint(ckpt_path)
        saved = checkpoint_config(state, ckpt_path)
        if cfg is None:
            cfg = saved
        else:
            cfg = resolve_config(cfg)
            diff = config_mismatch(json.loads(json.dumps(cfg.to_dict(), default=list)),
                                   json.loads(json.dumps(saved.to_dict(), default=list)))
            if diff:
                raise BinaryHPEError(f"checkpoint {ckpt_path} was trained with another configuration "
                                     f"({cfg.name!r} differs in {', '.join(diff[:6])}); resume without --config "
                                     "or with the same one")
        seed = int(state.get("seed", seed))
    else:
        cfg = resolve_config(cfg)
    info = setup_distributed()
    try:
        return _train(cfg, out, ckpt_path, steps, state, seed, info, log, n_test, ProxyConfig, ProxyDataset,
                      build_wholebody, wholebody_loss, data)
    finally:
        cleanup_distributed(info)


def _train(cfg, out, ckpt_path, steps, state, seed, info, log, n_test, ProxyConfig, ProxyDataset,
           build_wholebody, wholebody_loss, data=None):
    say = log if info.main else (lambda *a, **k: None)
    seed_all(seed)
    layer = make_layer(cfg)
    pcfg = ProxyConfig(img_size=cfg.image_size, n_joints=cfg.body_joints, focal=cfg.focal)
    if data:
        from binaryhpe.train.realdata import training_set

        train_ds = training_set(data, cfg, layer, seed)
        per_epoch = len(train_ds) // cfg.batch_size
        if per_epoch == 0:
            raise BinaryHPEError(f"the training data ({len(train_ds)} samples) is smaller than one batch of "
                                 f"{cfg.batch_size}")
    else:
        n_train = TRAIN_BATCHES_PER_EPOCH * cfg.batch_size
        train_ds = ProxyDataset(n_train, seed=seed, split="train", cfg=pcfg, layer=layer, transform="default")
        per_epoch = n_train // cfg.batch_size
    total = steps if steps is not None else cfg.epochs * per_epoch
    if total < 0:
        raise BinaryHPEError(f"--steps {total}: expected a non-negative number of steps")
    model = build_wholebody(cfg, smplx_layer=layer).to(info.device)
    if os.environ.get("BINARYHPE_SYNC_BN") == "1" and info.world_size > 1 and info.device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if state is not None:
        restore_model(state, model, ckpt_path)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start = 0
    if state is not None:
        restore_optimizer(state, optimizer, ckpt_path)
        start = int(state["step"])
        say(f"resuming from {ckpt_path} at step {start}")
    nparams = sum(p.numel() for p in model.parameters())
    what = "generated data" if not data else "+".join(f"{n} ({p})" for n, p in data)
    say(f"training {cfg.name} ({cfg.binarizer}, {nparams:,} parameters) on {what}: steps {start}->{total}, "
        f"global batch {cfg.batch_size} over {info.world_size} process(es), lr {cfg.lr:g}, "
        f"{per_epoch} steps/epoch, device {info.device}")
    cfg_dict = json.loads(json.dumps(cfg.to_dict(), default=list))
    t0 = time.time()
    every = max(1, min(50, (total - start) // 10 or 1))

    def set_lr(step):
        """The step schedule: lr x lr_decay_factor^-(number of lr_decay_epochs passed)."""
        n = sum(1 for e in cfg.lr_decay_epochs if step >= e * per_epoch)
        for g in optimizer.param_groups:
            g["lr"] = cfg.lr / cfg.lr_decay_factor ** n

    set_lr(start)

    def on_step(step, losses, net, opt):
        set_lr(step)
        if cfg.binarizer == "recu":
            from binaryhpe.train.binarizers import recu_tau, set_recu_tau

            set_recu_tau(model, recu_tau(step / max(1, total)))
        if info.main and (step % every == 0 or step == total):
            dt = (time.time() - t0) / max(1, step - start)
            say(f"step {step}/{total} epoch {step // per_epoch} loss {losses['total']:.4f} (smplx "
                f"{losses['smplx']:.4f} joint {losses['joint']:.4f} box {losses['box']:.4f}) {dt:.2f} s/step")
        if info.main and (step % 100 == 0):
            save_checkpoint(ckpt_path, net, opt, step, cfg_dict, {"seed": seed, "world_size": info.world_size})

    if cfg.binarizer == "recu":
        from binaryhpe.train.binarizers import recu_tau, set_recu_tau

        set_recu_tau(model, recu_tau(start / max(1, total)))
    losses = {}
    if start < total:
        model, optimizer, losses = fit(model, wholebody_loss, train_ds, steps=total, global_batch=cfg.batch_size,
                                       lr=cfg.lr, seed=seed, info=info, optimizer=optimizer, start_step=start,
                                       on_step=on_step)
    step = max(start, total)
    metrics = {}
    if info.world_size > 1:
        # BatchNorm running statistics: each rank's last forward updated its own (DDP broadcasts rank 0's at
        # the start of each forward); end with rank 0's everywhere, as the checkpoint has them
        for b in _unwrap(model).buffers():
            dist.broadcast(b, 0)
    identical = ranks_identical(model, info) if info.world_size > 1 else None
    if info.main and data:
        save_checkpoint(ckpt_path, model, optimizer, step, cfg_dict, {"seed": seed, "world_size": info.world_size,
                                                                      "data": [[n, str(p)] for n, p in data]})
        metrics = {"step": step, "config": cfg.name, "binarizer": cfg.binarizer,
                   "data": {n: str(p) for n, p in data}, "train_samples": len(train_ds), "steps_per_epoch": per_epoch,
                   "world_size": info.world_size, "device": str(info.device),
                   **({"ranks_identical": identical} if identical is not None else {}),
                   "train_seconds": round(time.time() - t0, 2), **({"loss": losses} if losses else {})}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        say(f"step {step}: checkpoint {ckpt_path}; evaluate it with binaryhpe evaluate --checkpoint {ckpt_path} "
            "--data ehf:PATH")
    elif info.main:
        save_checkpoint(ckpt_path, model, optimizer, step, cfg_dict, {"seed": seed, "world_size": info.world_size})
        test_ds = ProxyDataset(n_test, seed=seed, split="test", cfg=pcfg, layer=layer)
        metrics = evaluate(model, test_ds, layer, info.device)
        metrics = {"step": step, **metrics, "config": cfg.name, "binarizer": cfg.binarizer,
                   "held_out_samples": n_test, "world_size": info.world_size, "device": str(info.device),
                   **({"ranks_identical": identical} if identical is not None else {}),
                   "train_seconds": round(time.time() - t0, 2), **({"loss": losses} if losses else {})}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        _write_mesh(model, test_ds, layer, out, info.device, say)
        say(f"step {step}: MPVPE {metrics['mpvpe']:.1f} mm, PA-MPVPE {metrics['pa_mpvpe']:.1f} mm, PA-MPJPE "
            f"{metrics['pa_mpjpe']:.1f} mm on {n_test} held-out generated samples -> {out}/metrics.json, "
            f"{ckpt_path}")
    if info.world_size > 1:
        dist.barrier()
    return metrics


@torch.no_grad()
def ranks_identical(model, info: DistInfo) -> bool:
    """Whether every rank holds bit-identical weights (all-gathered float64 checksums of every tensor)."""
    sd = _unwrap(model).state_dict()
    sums = torch.stack([v.detach().double().sum() + 1e-3 * (v.detach().double().flatten() *
                        torch.arange(v.numel(), device=v.device, dtype=torch.float64).remainder(7)).sum()
                        for v in sd.values()]).to(info.device)
    gathered = [torch.empty_like(sums) for _ in range(info.world_size)]
    dist.all_gather(gathered, sums)
    return all(torch.equal(g, gathered[0]) for g in gathered)


@torch.no_grad()
def _write_mesh(model, ds, layer, out, device, say):
    """The first held-out sample's predicted mesh (.obj) and its overlay on the input image (.png)."""
    try:
        from binaryhpe.train import meshio
    except ImportError:
        return
    s = ds[0]
    model.eval()
    o = model(s["img"][None].to(device))
    model.train()
    keys = ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "expr", "shape")
    m = layer({k: o[k].float().cpu() for k in keys})
    v = (m["vertices"] - m["joints"][:, :1])[0].numpy()
    meshio.write_obj(out / "mesh_test0.obj", v, layer.faces)
    cam = dict(ds.camera(), trans=o["cam_trans"][0].float().cpu().numpy())
    meshio.save_overlay(out / "overlay_test0.png", s["img"], v, layer.faces, cam)


def export_checkpoint(ckpt, out_dir, verbose: bool = False) -> dict:
    """The trained whole-body model of a checkpoint: its BiDRN encoders in hardware mode to QONNX
    (``binaryhpe export --checkpoint OUT/checkpoint.pt -o DIR``; see ``wholebody.export_wholebody``)."""
    from binaryhpe.train.wholebody import build_wholebody, export_wholebody

    state = load_checkpoint(ckpt)
    cfg = checkpoint_config(state, ckpt)
    model = build_wholebody(cfg)
    restore_model(state, model, ckpt)
    model.eval()
    man = export_wholebody(model, out_dir, check=True, verbose=verbose)
    man["checkpoint"], man["step"] = str(ckpt), int(state["step"])
    (pathlib.Path(out_dir) / "export.json").write_text(json.dumps(man, indent=2, default=str))
    return man


def train_command(args) -> int:
    """``binaryhpe train``: args.config, args.steps, args.output, args.resume (cli.py)."""
    if args.steps is not None and args.steps < 0:
        raise BinaryHPEError(f"--steps {args.steps}: expected a non-negative number of steps")
    data = None
    if getattr(args, "data", None):
        from binaryhpe.train.realdata import parse_data

        data = parse_data(args.data)
    cfg = args.config
    if data and cfg is None and not args.resume:
        cfg = "binaryhpe"  # real data: the paper-scale model with the paper's schedule
    train(cfg, args.output, steps=args.steps, resume=args.resume, data=data,
          log=lambda *a, **k: print(*a, **k, flush=True))
    return 0


if __name__ == "__main__":  # python -m binaryhpe.train.loop (torchrun -m binaryhpe.train.loop ...)
    from binaryhpe.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
