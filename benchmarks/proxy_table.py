"""The proxy benchmark in full: do the binarizers learn, and in which order? (docs/training.md has its table)

    python benchmarks/proxy_table.py [-o out/proxy] [--size full|ci] [--threads 1]

The same as ``binaryhpe bench proxy -o OUT`` (``binaryhpe.train.proxy_bench``: 2D localisation of the 22 SMPL-X
body joints in generated 32x24 figures; full precision, BNN, ReActNet, ReCU, BiDRN with the binarized and with
the full-precision Block Residual, and predicting the mean; 3 seeds each), with the wall time printed. Designed
for at most 20 minutes on 2 free cores (one torch thread by default, the machine being shared).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from binaryhpe.train.proxy_bench import format_table, run, size_from_args


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default="out/proxy")
    ap.add_argument("--size", default="full")
    ap.add_argument("--rows", default=None)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    result = run(size_from_args(a.size), a.output, a.rows.split(",") if a.rows else None,
                 log=lambda *x: print(*x, file=sys.stderr, flush=True))
    print(format_table(result))
    print(f"\nwall time {time.time() - t0:.0f} s ({torch.get_num_threads()} torch thread(s)); written to {a.output}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
