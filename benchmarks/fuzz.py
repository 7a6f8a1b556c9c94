"""The long property-based fuzz run: random BiDRB networks (tests/test_fuzz.py's generators) through the whole
chain, PyTorch hardware mode = QONNX (exact float64 execution) = compiler reference = C on the host = RTL.

    .venv/bin/python benchmarks/fuzz.py --examples 50            # C for every configuration
    .venv/bin/python benchmarks/fuzz.py --examples 20 --rtl-every 2   # and RTL for every second one

Prints one line per configuration and, at the end, how many configurations it tried and how many were
bit-exact on every link; exits 1 when one was not. Unlike the CI test it does not stop (or shrink) at the
first failure: every failing configuration is listed with its description, which rebuilds it exactly.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time
import traceback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

import test_fuzz as fz  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=20, help="configurations to try (default 20)")
    ap.add_argument("--rtl-every", type=int, default=0,
                    help="also simulate the RTL of every N-th configuration (0: C only; RTL costs 30-60 s each)")
    ap.add_argument("--no-c", action="store_true", help="skip the C backend")
    ap.add_argument("--max-blocks", type=int, default=3, help="blocks per network (default up to 3)")
    ap.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: a random run)")
    args = ap.parse_args(argv)

    results: list[dict] = []
    t_start = time.time()

    @settings(max_examples=args.examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=False)
    @given(cfg=fz.networks(max_blocks=args.max_blocks))
    def run(cfg):
        i = len(results)
        rtl = args.rtl_every > 0 and i % args.rtl_every == 0
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="bhpe_fuzz_") as work:
            try:
                res = fz.check(cfg, rtl=rtl, c=not args.no_c, work=pathlib.Path(work))
            except Exception as e:  # a crash is a failure of that configuration, reported, not fatal
                res = {"config": cfg.describe(), "bit_exact": False,
                       "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
                       "trace": traceback.format_exc(limit=3)}
        res["seconds"] = round(time.time() - t0, 1)
        results.append(res)
        links = {k: v for k, v in res.items() if k.endswith("_vs_qonnx")}
        status = "bit-exact" if res["bit_exact"] else f"FAILED {res.get('error', links)}"
        print(f"[{i + 1:3d}] {status:10s} {res['seconds']:6.1f} s  links {sorted(links)}  {res['config']}",
              flush=True)

    if args.seed is not None:
        from hypothesis import seed as hyp_seed

        run = hyp_seed(args.seed)(run)
    run()

    exact = sum(1 for r in results if r["bit_exact"])
    rtl_runs = sum(1 for r in results if "rtl_vs_qonnx" in r)
    c_runs = sum(1 for r in results if "c_vs_qonnx" in r)
    elements = sum(r.get("elements", 0) for r in results)
    print(f"\nfuzz: tried {len(results)} configurations ({c_runs} through C, {rtl_runs} through RTL), "
          f"{exact} bit-exact on every link, {len(results) - exact} not; {elements} output elements compared; "
          f"{time.time() - t_start:.0f} s")
    for r in results:
        if not r["bit_exact"]:
            links = {k: v for k, v in r.items() if k.endswith("_vs_qonnx")}
            print(f"  FAILED: {r['config']}: {r.get('error') or links}")
    return 0 if exact == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
