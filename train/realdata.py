"""Real data from the command line: ``binaryhpe train --data ...`` and ``binaryhpe evaluate``.

``--data`` is a comma-separated list of ``NAME:PATH`` (NAME: ``h36m``/``human36m``, ``coco``/``mscoco``,
``mpii`` for training; ``ehf``, ``agora`` for evaluation), each PATH the user's copy of the data set in the
layout of Hand4Whole's release (``binaryhpe.train.data.datasets`` describes each). Training concatenates the
training splits (the paper: Human3.6M, whole-body MSCOCO and MPII, Section 4.1) with the standard augmentation
(scale, rotation, flip, colour); evaluation (``binaryhpe.train.evaluate``) runs the checkpoint's model on EHF (test) or AGORA
(validation) and writes the paper's metrics per part (Table 1's columns) as ``OUT/metrics.json`` and ``OUT/metrics.md``.
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch

from binaryhpe import BinaryHPEError

TRAIN_SETS = ("human36m", "mscoco", "mpii", "agora")
EVAL_SETS = ("ehf", "agora")
ALIASES = {"h36m": "human36m", "human36m": "human36m", "coco": "mscoco", "mscoco": "mscoco", "mpii": "mpii",
           "ehf": "ehf", "agora": "agora"}
# Table 1's columns, in its order: (key in metrics.json, column title)
TABLE1 = (("mpvpe", "MPVPE All"), ("mpvpe_hand", "MPVPE Hand"), ("mpvpe_face", "MPVPE Face"),
          ("pa_mpvpe", "PA-MPVPE All"), ("pa_mpvpe_hand", "PA-MPVPE Hand"), ("pa_mpvpe_face", "PA-MPVPE Face"),
          ("pa_mpjpe_body", "PA-MPJPE Body"), ("pa_mpjpe_hand", "PA-MPJPE Hand"))
SMPLX_OUT = ("root_pose", "body_pose", "lhand_pose", "rhand_pose", "jaw_pose", "expr", "shape")


def parse_data(spec: str, allowed=TRAIN_SETS, what: str = "a training") -> list:
    """``"h36m:/a,coco:/b"`` -> [("human36m", Path("/a")), ("mscoco", Path("/b"))]; one error per bad entry."""
    out = []
    for item in [s for s in str(spec).split(",") if s.strip()]:
        name, sep, path = item.partition(":")
        key = ALIASES.get(name.strip().lower())
        if not sep or not path:
            raise BinaryHPEError(f"--data {item!r}: expected NAME:PATH (e.g. h36m:/data/Human36M)")
        if key is None or key not in allowed:
            raise BinaryHPEError(f"--data {item!r}: {name!r} is not {what} data set (expected one of "
                                 f"{', '.join(allowed)})")
        p = pathlib.Path(path).expanduser()
        if not p.is_dir():
            raise BinaryHPEError(f"--data {item!r}: folder {p} not found")
        out.append((key, p))
    if not out:
        raise BinaryHPEError("--data: no data set given (expected NAME:PATH[,NAME:PATH...])")
    return out


class Augmented(torch.utils.data.Dataset):
    """A data set with a per-(seed, sample, epoch) deterministic transform (``set_epoch`` as the proxy)."""

    def __init__(self, ds, transform, seed: int = 0):
        self.ds, self.transform, self.seed, self.epoch = ds, transform, int(seed), 0

    def __len__(self):
        return len(self.ds)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, i):
        s = self.ds[i]
        if self.transform is None:
            return s
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, i, self.epoch, 11]))
        return self.transform(s, rng)


def training_set(data: list, cfg, layer, seed: int = 0, augment: bool = True):
    """The concatenated training splits of ``data`` (``parse_data``) at the model's input size."""
    from binaryhpe.train.data.augment import Augment, vertex_flip_permutation
    from binaryhpe.train.data.datasets import make_dataset

    parts = []
    for name, root in data:
        ds = make_dataset(name, root, "train", input_size=cfg.image_size, n_joints=cfg.body_joints, layer=layer,
                          focal=cfg.focal)
        if len(ds) == 0:
            raise BinaryHPEError(f"{name} data set at {root}: no training sample (empty annotations?)")
        parts.append(ds)
    ds = parts[0] if len(parts) == 1 else torch.utils.data.ConcatDataset(parts)
    if not augment:
        return ds
    with torch.no_grad():
        v = layer({k: torch.zeros(1, n) for k, n in (("root_pose", 3), ("body_pose", 63), ("lhand_pose", 45),
                                                     ("rhand_pose", 45), ("jaw_pose", 3), ("expr", 10),
                                                     ("shape", 10))})["vertices"][0].numpy()
    try:
        perm = vertex_flip_permutation(v, tol=1e-5 * float(np.ptp(v[:, 1])))
    except ValueError:
        perm = None
    return Augmented(ds, Augment(vertex_perm=perm, layer=layer), seed)


def evaluation_set(name: str, root, cfg, layer):
    from binaryhpe.train.data.datasets import NJ, make_dataset

    split = "test" if name == "ehf" else "val"
    ds = make_dataset(name, root, split, input_size=cfg.image_size, n_joints=NJ, layer=layer, focal=cfg.focal)
    if len(ds) == 0:
        raise BinaryHPEError(f"{name} data set at {root}: no {split} sample")
    return ds


__all__ = ["ALIASES", "Augmented", "EVAL_SETS", "SMPLX_OUT", "TABLE1", "TRAIN_SETS", "evaluation_set", "parse_data",
           "training_set"]
