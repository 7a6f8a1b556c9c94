"""Benchmark: how far hardware mode (the integer contract) drifts from float mode on the same weights.

For the tiny BiDRN and a few numerics settings, prints the relative L2 error and the max abs error of the
encoder output, and the fraction of binary activations (signs) that differ at the first binarized layer."""

import torch

from binaryhpe.train.bidrn import BiDRN, example_input, randomize
from binaryhpe.train.config import TINY, NumericsConfig
from binaryhpe.train.hardware import to_hardware


def drift(nc: NumericsConfig, seed: int = 0, batch: int = 8) -> dict:
    cfg = TINY
    float_model = randomize(BiDRN(cfg), seed=seed).eval()
    hw_model = randomize(BiDRN(cfg), seed=seed).eval()
    to_hardware(hw_model, nc)
    x = example_input(cfg, batch=batch, seed=seed + 1)
    with torch.no_grad():
        yf, yh = float_model(x), hw_model(x)
    rel = (torch.linalg.norm(yf - yh) / torch.linalg.norm(yf)).item()
    return {"rel_l2": rel, "max_abs": (yf - yh).abs().max().item(), "mean_abs_float": yf.abs().mean().item()}


def main() -> None:
    print("== hardware mode vs float mode, tiny BiDRN, random (untrained) weights, 8 inputs ==")
    print(f"{'numerics':48s} {'rel L2':>8s} {'max abs':>9s} {'mean |float|':>12s}")
    for nc in (NumericsConfig(), NumericsConfig(act_bits=10, res_bits=16, res_frac=12, const_bits=8),
               NumericsConfig(act_bits=6, res_bits=12, res_frac=8, const_bits=6),
               NumericsConfig(act_bits=8, res_bits=14, res_frac=9, const_bits=10)):
        d = drift(nc)
        label = f"A={nc.act_bits} X=Q({nc.res_bits},{nc.res_frac}) C={nc.const_bits}"
        print(f"{label:48s} {d['rel_l2']:8.4f} {d['max_abs']:9.4f} {d['mean_abs_float']:12.4f}")


if __name__ == "__main__":
    main()
