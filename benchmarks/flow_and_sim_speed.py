"""Benchmark: wall time of the whole flow on the tiny BiDRN (export, compile, RTL, Verilator build,
simulation) and the Verilator simulation speed in cycles per second; the time of each step of the flow
(report.json ``steps``), and of a device-aware build (``--device ecp5-85f``: one lowering, then the folding
search on that graph). Prints its figures."""

import pathlib
import tempfile
import time

from binaryhpe.compile.flow import build


def main() -> None:
    out = pathlib.Path(tempfile.mkdtemp(prefix="bhpe_flow_"))
    t = time.time()
    rep = build("tiny-bidrn", out, sim=True)
    wall = time.time() - t
    runs = rep["simulation"]["runs"]
    print("\n== flow and simulation speed (tiny BiDRN) ==")
    print(f"whole flow (export, compile, RTL, Verilator build, 2 simulations): {wall:.1f} s")
    print(f"layers: {len(rep['layers'])}; bit-exact: {rep['bit_exact']}")
    for r in runs:
        print(f"stall {r['stall']:.2f}: {r['total_cycles']} cycles for {rep['simulation']['frames']} frames, "
              f"{r['sim_cycles_per_s']:,} cycles/s, frame interval {r['ii_cycles']}, latency {r['latency_cycles']}")
    print(f"predicted: frame interval {rep['predicted_cycles_per_frame']}, latency {rep['predicted_latency_cycles']}")
    print("steps: " + ", ".join(f"{s['name']} {s['seconds']:.2f} s" for s in rep["steps"]))
    t = time.time()
    dev = build(str(out / "model.onnx"), out / "device", device="ecp5-85f")
    print(f"\n== device-aware build (ecp5-85f, no simulation): {time.time() - t:.1f} s, "
          f"{dev['fps']:.0f} fps estimated ==")
    print("steps: " + ", ".join(f"{s['name']} {s['seconds']:.2f} s" for s in dev["steps"]))


if __name__ == "__main__":
    main()
