"""Data-parallel training (issue 7): ``binaryhpe.train.loop.fit`` under torch.distributed DDP, two CPU processes on
gloo, against one process on the same global batch.

The model here has no BatchNorm (a full-precision stem conv, one of the baseline binary convolutions with its
straight-through gradient, pooling, a linear head): BatchNorm in training mode normalises with each rank's
own half batch, so a BN model cannot match one process on the whole batch (the loop documents this and offers
SyncBatchNorm on GPUs). The loss is the real one (eq. 12, ``wholebody_loss``) on generated proxy samples with
the standard augmentation, so data, sampler, loss and optimizer are the training loop's own. The model runs
in float64: in float32 the two runs differ by ~1e-3 after 5 Adam steps, because the different summation order
of the gradient all-reduce (rounding, ~1e-7) is amplified by Adam's normalisation of near-zero gradients and
by sign flips of near-zero activations; in float64 they agree to 1e-9.
"""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from binaryhpe.train.data.proxy import ProxyConfig, ProxyDataset, default_layer

GLOBAL_BATCH, STEPS, N = 8, 5, 24  # 3 global batches an epoch: the run crosses an epoch boundary


class SmallNet(nn.Module):
    """Stem conv -> binary conv (ReActNet-style STE) -> pool -> Linear to every output of the contract."""

    def __init__(self, J=25):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.w = nn.Parameter(torch.randn(8, 8, 3, 3) * 0.1)
        self.J = J
        self.dims = {"root_pose": 3, "body_pose": 63, "lhand_pose": 45, "rhand_pose": 45, "jaw_pose": 3,
                     "expr": 10, "shape": 10, "cam_trans": 3, "joint_img": J * 3, "boxes": 12}
        self.head = nn.Linear(8 * 4 * 3, sum(self.dims.values()))

    def forward(self, img):
        x = torch.relu(self.stem(img.to(self.stem.weight.dtype) * 2 - 1))
        xb = x + (torch.sign(x) - x).detach()  # sign with a straight-through gradient
        wb = self.w + (torch.sign(self.w) - self.w).detach()
        x = nn.functional.conv2d(xb, wb * self.w.abs().mean(), padding=1)
        y = self.head(nn.functional.adaptive_avg_pool2d(x, (4, 3)).flatten(1))
        out, i = {}, 0
        for k, d in self.dims.items():
            out[k] = y[:, i:i + d]
            i += d
        out["joint_img"] = torch.sigmoid(out["joint_img"]).view(-1, self.J, 3)
        out["boxes"] = out["boxes"].view(-1, 3, 4)
        return out


def _dataset():
    return ProxyDataset(N, seed=5, cfg=ProxyConfig(img_size=(32, 24)), layer=default_layer(), transform="default")


def _run(rank, world, port, out_dir):
    torch.set_num_threads(1)
    from binaryhpe.train.loop import DistInfo, fit
    from binaryhpe.train.wholebody import wholebody_loss

    info = DistInfo()
    if world > 1:
        import torch.distributed as dist

        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
        info = DistInfo(rank=rank, world_size=world)
    model, _, losses = fit(SmallNet().double(), wholebody_loss, _dataset(), steps=STEPS, global_batch=GLOBAL_BATCH,
                           lr=1e-2, seed=0, info=info)
    torch.save(model.state_dict(), os.path.join(out_dir, f"w{world}_r{rank}.pt"))
    if world > 1:
        torch.distributed.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_match_each_other_and_one_process(tmp_path):
    torch.multiprocessing.spawn(_run, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    _run(0, 1, 0, str(tmp_path))
    r0, r1 = torch.load(tmp_path / "w2_r0.pt"), torch.load(tmp_path / "w2_r1.pt")
    single = torch.load(tmp_path / "w1_r0.pt")
    start = SmallNet().double().state_dict()
    for k in start:
        assert torch.equal(r0[k], r1[k]), k  # both ranks hold bit-identical weights
        assert torch.allclose(r0[k], single[k], atol=1e-9, rtol=0), (k, (r0[k] - single[k]).abs().max())
        assert not torch.allclose(start[k], single[k], atol=1e-4), k  # and training moved every tensor


def test_batch_must_split_across_ranks():
    from binaryhpe import BinaryHPEError
    from binaryhpe.train.loop import DistInfo, global_batches

    with pytest.raises(BinaryHPEError, match="multiple of the world size"):
        global_batches(24, 9, DistInfo(rank=0, world_size=2), 0, 0)
    # the two ranks' shares of an epoch are disjoint and together cover the global batches
    a = global_batches(24, 8, DistInfo(rank=0, world_size=2), 0, 0)
    b = global_batches(24, 8, DistInfo(rank=1, world_size=2), 0, 0)
    assert len(a) == len(b) == 3 and all(len(x) == 4 for x in a + b)
    assert sorted(i for x in a + b for i in x) == list(range(24))


def test_torchrun_cli_two_ranks(tmp_path):
    """The real command under torchrun: 2 gloo ranks of the tiny whole-body model, 1 step (global batch 24 =
    2 x 12); rank 0 writes the files and metrics.json records the world size and the ranks' weight check."""
    env = dict(os.environ, OMP_NUM_THREADS="1", BINARYHPE_DEVICE="cpu")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "binaryhpe.train.loop", "--steps", "1", "-o", str(tmp_path / "out")],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["step"] == 1 and m["ranks_identical"] is True
    assert r.stdout.count("step 1/1") == 1  # progress from rank 0 only
