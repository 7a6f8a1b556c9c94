"""The long fuzz of the command line's errors: random small QONNX graphs (tests/test_cli_errors.py's
``random_graph``: chains of Quant / BipolarQuant / Conv / BatchNormalization / MaxPool / Gemm / MatMul / ...
with random attributes, and random low-level corruptions) through ``binaryhpe build FILE.onnx -o OUT``.

    .venv/bin/python benchmarks/fuzz_cli.py --seeds 0:2000

Every graph must either build or be refused with one line (``binaryhpe: error: ...``, exit code 2); a graph
made only of what maps exactly today must build. Unlike the CI test it does not stop at the first failure: it
lists every failing seed (``random_graph(seed)`` rebuilds it) with the exception and where it was raised, then
prints how many graphs built, how many were refused, the refusals by first words, and the time.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import re
import sys
import tempfile
import time
import traceback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

import onnx  # noqa: E402

import test_cli_errors as T  # noqa: E402


def _kind(line: str) -> str:
    """A refusal with its names and numbers taken out, to count refusals by kind."""
    msg = re.sub(r"'[^']*'", "'.'", line[len("binaryhpe: error: "):])
    msg = re.sub(r"/\S+\.onnx", "FILE", re.sub(r"\d+", "N", msg))
    return msg[:110]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0:1000", help="a range START:STOP of seeds (default 0:1000)")
    args = ap.parse_args(argv)
    lo, hi = (int(v) for v in args.seeds.split(":"))
    built = refused = 0
    failures, kinds = [], collections.Counter()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="bhpe_fuzz_cli_") as work:
        work = pathlib.Path(work)
        for seed in range(lo, hi):
            model, mutation = T.random_graph(seed)
            path = work / "g.onnx"
            onnx.save(model, str(path))
            try:
                rc, err = T.run_cli(path, work / "out")
            except Exception as e:  # noqa: BLE001 - a traceback is the failure being looked for
                tb = traceback.extract_tb(e.__traceback__)[-1]
                failures.append(f"seed {seed} ({mutation}): {type(e).__name__}: {str(e)[:200]} "
                                f"at {pathlib.Path(tb.filename).name}:{tb.lineno}")
                continue
            lines = [ln for ln in err.splitlines() if ln.strip()]
            if rc == 0:
                built += 1
            elif rc == 2 and len(lines) == 1 and mutation is not None:
                refused += 1
                kinds[_kind(lines[0])] += 1
            else:
                failures.append(f"seed {seed} ({mutation or 'valid'}): exit {rc}, stderr {err.strip()[:300]!r}")
    n = hi - lo
    print(f"fuzz_cli: {n} graphs (seeds {lo}:{hi}) in {time.time() - t0:.0f} s: {built} built, {refused} refused "
          f"with one line, {len(failures)} failures")
    for k, v in kinds.most_common(12):
        print(f"  {v:5d}  {k}")
    for f in failures:
        print(f"  FAILED {f}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
