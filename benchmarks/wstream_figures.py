"""Figures of the streamed-weight matrix-vector unit (bhpe_mvu_wstream), printed in one run:

1. its resource model against Yosys ``synth_xilinx`` (the options of compile/synth.py), beside the same
   unit with its weights in a ROM (bhpe_xnor_mvu / bhpe_fxp_mvu through compile.synth.synth_layer);
2. the DRAM figures of the estimate against the RTL's weight-port beats for a layer placed in DRAM.

Usage: python benchmarks/wstream_figures.py [--quick]   (Yosys: minutes; --quick: two units)
"""

from __future__ import annotations

import pathlib
import sys
import tempfile
import time

import numpy as np

from binaryhpe.compile import estimate as E
from binaryhpe.compile.storage import apply_storage
from binaryhpe.compile.kinds.mvu import FxpMvu, XnorMvu
from binaryhpe.compile.synth import rtl_library, run_yosys, synth_layer


def wrap_streamed(lay, work: pathlib.Path) -> pathlib.Path:
    """A synthesis top whose ports are the streamed unit's three streams."""
    p = lay.rtl_params()
    ins, outs = lay.in_streams()[0], lay.out_streams()[0]
    plist = ", ".join(f".{k}({(1 if v else 0) if isinstance(v, bool) else int(v)})" for k, v in p.items())
    text = f"""module wrap (
  input logic clk_i, input logic rst_ni,
  input logic [{ins.bits - 1}:0] in_tdata, input logic [{ins.lanes - 1}:0] in_tmask,
  input logic in_tvalid, output logic in_tready,
  input logic [{lay.wstream_word_bits - 1}:0] w_tdata, input logic w_tvalid, output logic w_tready,
  output logic [{outs.bits - 1}:0] out_tdata, output logic out_tvalid, input logic out_tready
);
  bhpe_mvu_wstream #({plist}) u_layer (.*);
endmodule
"""
    work.mkdir(parents=True, exist_ok=True)
    (work / "wrap.sv").write_text(text)
    return work / "wrap.sv"


def units(quick: bool):
    rng = np.random.default_rng(0)
    cfg = [("xnor", 72, 16, 4, 8), ("xnor", 1152, 128, 16, 32)]
    if not quick:
        cfg += [("xnor", 288, 32, 8, 32), ("xnor", 2304, 64, 8, 64), ("fxp", 27, 16, 4, 9)]
    for kind, n, cout, pe, simd in cfg:
        if kind == "xnor":
            w = rng.choice([-1, 1], size=(cout, n))
            yield XnorMvu(name=f"x{n}_{cout}", n=n, cout=cout, pe=pe, simd=simd, weights=w)
        else:
            w = rng.integers(-128, 128, size=(cout, n))
            yield FxpMvu(name=f"f{n}_{cout}", n=n, cout=cout, pe=pe, simd=simd, in_w=8, w_w=8, weights=w)


def main(quick: bool) -> None:
    print("## 1. Resources: model vs Yosys synth_xilinx -family xc7 -flatten -noiopad (LUT / FF / BRAM18 / DSP)")
    print("| kind | N | Cout | PE | SIMD | ROM: Yosys | ROM: model | stream: Yosys | stream: model | stream LUT err |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    errs = []
    for lay in units(quick):
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix="bhpe_ws_") as tmp:
            rom_y = synth_layer(lay, "xilinx", pathlib.Path(tmp) / "rom")
            rom_m = lay.resources()
            lay.weight_source = "stream"
            top = wrap_streamed(lay, pathlib.Path(tmp) / "stream")
            st_y = run_yosys([top] + rtl_library(), "wrap", "xilinx", pathlib.Path(tmp) / "stream")
            st_m = lay.resources()
        e = st_m["lut"] / st_y["lut"] - 1 if st_y["lut"] else float("nan")
        errs.append((type(lay).__name__, abs(e)))

        def f(r):
            return f"{r['lut']} / {r['ff']} / {r['bram18']} / {r['dsp']}"
        print(f"| {type(lay).__name__} | {lay.n} | {lay.cout} | {lay.pe} | {lay.simd} | {f(rom_y)} | {f(rom_m)} | "
              f"{f(st_y)} | {f(st_m)} | {e:+.1%} |", flush=True)
        print(f"  ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    for kind in sorted({k for k, _ in errs}):
        ek = [e for k, e in errs if k == kind]
        print(f"\nstreamed {kind} LUT model: mean |error| {np.mean(ek):.1%}, max {np.max(ek):.1%}")
    print()

    print("## 2. Estimate DRAM bytes vs the RTL's weight-port beats (example 3x3 conv, 64 -> 64 ch, 4x4 px)")
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
    from example_graphs import example_graph

    g = example_graph(h=4, w=4, c=64, cout=64, pe=2, simd=4)
    est0 = E.estimate(g, None, {"mvu": "dram"})
    apply_storage(g, {"mvu": "dram"})
    lay = g.layer("mvu")
    est = E.estimate(g, None)
    assert est["dram_bytes_per_frame"] == est0["dram_bytes_per_frame"]
    row = next(r for r in est["layers"] if r["name"] == "mvu")
    print(f"weight word {lay.wstream_word_bits} bits, port {lay.wstream_port_bits} bits; NF*SF = {lay.nf * lay.sf} "
          f"words a pixel x {lay.pixels} pixels = {lay.wstream_words_per_frame} beats a frame = "
          f"{lay.wstream_bytes_per_frame} bytes; estimate: {row['weight_stream']['bytes_per_frame']} weight bytes, "
          f"{est['dram_bytes_per_frame']:.0f} DRAM bytes a frame with the input/output frames")
    for gbps, clock in ((0.01, 100e6), (0.2, 100e6), (4.2, 100e6)):
        rate = gbps * 1e9 / (clock * lay.wstream_port_bits / 8)
        lay.wstream_rate = rate
        ii = lay.cycles()["ii"]
        print(f"  {gbps} GB/s at {clock / 1e6:.0f} MHz: {min(rate, 1):.3f} words/cycle -> MVU ii {ii} cycles = "
              f"{clock / ii:.1f} fps; estimate fps_memory (weights only) {gbps * 1e9 / lay.wstream_bytes_per_frame:.1f}")


if __name__ == "__main__":
    main("--quick" in sys.argv)
