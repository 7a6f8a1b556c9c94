"""Why ReCU is weak on the proxy: ReCU's parts switched off one at a time (a diagnostic, not a benchmark row).

    python benchmarks/proxy_recu_ablation.py VARIANT [--seeds 3]

VARIANT: ``recu`` (the benchmark's row, unchanged), ``tau099`` (the rectified clamp almost off: tau 0.99 from
the first step), ``noactnorm`` (no division of the activations by their per-sample standard deviation in
training), ``bnnacts`` (BNN's activation binarizer, sign(x) with the clipped STE, instead of ReCU's),
``bnnweights`` (BNN's weight binarizer, sign(w) with the clipped STE, instead of ReCU's balanced, standardised,
clamped weights). Same task, size, learning rate and seeds as ``binaryhpe bench proxy`` (``SIZES["full"]``).
It also prints, at initialisation, the share of latent weights outside ReCU's clamp (no gradient) per tau and
the share of activations whose sign gradient is not zero (BNN, ReActNet, ReCU) on a batch of 64 samples.
The variants patch ``binarizers.ReCUConv`` / ``binarizers.recu_tau`` in this process only.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

VARIANTS = ("recu", "tau099", "noactnorm", "bnnacts", "bnnweights")


def init_facts(P, B, layer) -> None:
    torch.manual_seed(0)
    net = P.JointNet("recu")
    for tau in (0.85, 0.9, 0.95, 0.99):
        out = tot = 0
        for m in net.modules():
            if isinstance(m, B.ReCUConv):
                m.tau = tau
                w1 = m.recentred(m.weight.detach())
                out += int((w1.abs() > float(m.quantile(w1))).sum())
                tot += w1.numel()
        print(f"init, tau {tau}: {out / tot:.3f} of ReCU's latent weights lie outside [-Q, Q] (no gradient)")
    d = P.make_data(64, "train", layer)
    for name in ("bnn", "reactnet", "recu"):
        torch.manual_seed(0)
        net = P.JointNet(name).train()
        shares = []

        def hook(mod, args, out):
            x = args[0]
            if isinstance(mod, B.BNNConv):
                g = (x.abs() <= 1).float()
            else:
                a = x - mod.threshold.view(1, -1, 1, 1)
                if isinstance(mod, B.ReCUConv):
                    a = a / torch.sqrt(a.var(dim=(1, 2, 3), keepdim=True) + 1e-5)
                g = (2 - 2 * a.abs()).clamp(min=0)
            shares.append(float((g > 0).float().mean()))

        hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, B.BaselineConv)]
        with torch.no_grad():
            net(d["img"])
        for h in hs:
            h.remove()
        print(f"init, {name}: {sum(shares) / len(shares):.3f} of the binary convs' input activations have a "
              f"non-zero sign gradient (mean over {len(shares)} convs)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("variant", choices=VARIANTS)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from binaryhpe.train import binarizers as B
    from binaryhpe.train import proxy_bench as P
    from binaryhpe.train.data.proxy import default_layer
    from binaryhpe.train.quant import ApproxSign

    layer = default_layer()
    init_facts(P, B, layer)
    if a.variant == "tau099":
        B.recu_tau = lambda progress: 0.99
    elif a.variant == "noactnorm":
        B.ReCUConv.binarize_input = lambda self, x: ApproxSign.apply(x - self.threshold.view(1, -1, 1, 1))
    elif a.variant == "bnnacts":
        B.ReCUConv.binarize_input = lambda self, x: B.SignSTE.apply(x)
    elif a.variant == "bnnweights":
        B.ReCUConv.binarize_weight = lambda self, w: B.SignSTE.apply(w)
    sz = P.SIZES["full"]
    tr, te = P.make_data(sz.train, "train", layer), P.make_data(sz.test, "test", layer)
    mean = P.pixel_error(tr["joints"].mean(0, keepdim=True).expand_as(te["joints"]), te["joints"])
    t0, errs = time.time(), []
    for seed in range(a.seeds):
        model = P.train_row("recu", tr, sz, seed)
        errs.append(P.pixel_error(P.predict(model, te["img"]), te["joints"]))
    m = sum(errs) / len(errs)
    sd = math.sqrt(sum((e - m) ** 2 for e in errs) / len(errs))
    print(f"ReCU, variant {a.variant}: {m:.3f} +- {sd:.3f} px over {a.seeds} seeds "
          f"({', '.join(f'{e:.3f}' for e in errs)}); predicting the mean {mean:.3f} px; {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
