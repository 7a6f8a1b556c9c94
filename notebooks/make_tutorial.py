"""Write (and with ``--execute``, run) notebooks/tutorial.ipynb: the whole binaryhpe flow on the tiny BiDRN.

    python notebooks/make_tutorial.py             # write the notebook's cells (no outputs)
    python notebooks/make_tutorial.py --execute   # also run it in a scratch folder and keep every output

The executed notebook is committed; ``tests/test_notebook.py`` runs it again (nbclient) so it cannot rot.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import tempfile
import time

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = pathlib.Path(__file__).resolve().parent
NOTEBOOK = HERE / "tutorial.ipynb"

CELLS = [
    ("md", """# binaryhpe tutorial: the tiny BiDRN from PyTorch to a bit-exact RTL simulation and a bitstream

This notebook walks the whole flow of the toolkit on the **tiny BiDRN** (the same code as the paper-scale
BiDRN-50, with a 16x16 input, an 8-channel stem and three small stages):

1. build the model and **train it a few steps** (a demonstration of the training API on generated targets, *not*
   real training: nothing here is learned from data),
2. freeze it to **hardware mode** and **export QONNX**, checked element by element against PyTorch,
3. **compile** the QONNX into the hardware graph (the layer table) and generate the SystemVerilog,
4. **simulate** the stitched RTL with Verilator and compare every output integer with the reference,
5. **estimate** resources, frame rate and the roofline for a device, and the device-aware folding,
6. build an **ECP5 bitstream** (Yosys + nextpnr + ecppack) of a small part of the network.
7. **bring your own Brevitas network**: a small CNN written with Brevitas' stock quantizers, built and simulated
   bit-exact, its float head on the host.

It runs on a 2-core CPU in about three minutes when the machine is idle (the Verilator build and the place and
route are most of it). Everything is written under `tutorial_out/` beside the notebook."""),
    ("code", """import json, pathlib, time, warnings
warnings.filterwarnings("ignore", message="fast_hadamard_transform")  # an optional Brevitas speed-up
import numpy as np
import torch
import matplotlib.pyplot as plt
from IPython.display import SVG, display

import binaryhpe
OUT = pathlib.Path("tutorial_out")
OUT.mkdir(exist_ok=True)
T0 = time.time()
summary = {}  # the figures this notebook produces (written to tutorial_out/summary.json at the end)"""),
    ("md", """## 1. The tiny BiDRN, and a few training steps

`build_model("tiny-bidrn")` returns a seeded, randomly initialised BiDRN in float mode and an example input.
Its configuration is a `BiDRNConfig` (the paper-scale models are `bidrn_config(50, (256, 192))` and so on).
`count` gives Params / OPs by the paper's convention (binary weights and ops count 1/32 and 1/64)."""),
    ("code", """from binaryhpe.train.models import build_model
from binaryhpe.train.opcount import count

net, x = build_model("tiny-bidrn", seed=0)
cfg = net.cfg
print("input", tuple(x.shape), "-> output", tuple(net(x).shape))
print("stem", cfg.stem_channels, "channels; stages", [(s.block, s.channels, s.blocks, s.stride) for s in cfg.stages])
rep = count(net, (x,))
print(f"Params {rep.params_m * 1e3:.2f} k, OPs {rep.ops_g * 1e3:.3f} M (paper convention)")"""),
    ("md", """The few training steps below use `binaryhpe.train.loop.fit` (the core of `binaryhpe train`: Adam, the
batching and the step loop) with a plain MSE loss on **generated targets**: the outputs of a second, differently
seeded tiny BiDRN (a "teacher") on random inputs. This only shows the API and that the binarized network takes
gradients (straight-through estimators); `binaryhpe train` is the real thing, on the whole-body model and its
loss."""),
    ("code", """import torch.nn.functional as F
from binaryhpe.train.loop import fit

teacher, _ = build_model("tiny-bidrn", seed=1)
g = torch.Generator().manual_seed(0)
imgs = torch.rand((64, *x.shape[1:]), generator=g) * 2 - 1
with torch.no_grad():
    targets = teacher(imgs)
data = [{"img": imgs[i], "target": targets[i]} for i in range(len(imgs))]

def loss_fn(out, batch):
    return {"total": F.mse_loss(out, batch["target"])}

def held_out_loss(model):
    model.eval()
    with torch.no_grad():
        return float(F.mse_loss(model(imgs), targets))

losses = []
loss_before = held_out_loss(net)
fit(net, loss_fn, data, steps=40, global_batch=16, lr=1e-2, seed=0,
    on_step=lambda step, ls, model, opt: losses.append(ls["total"]))
net.eval()
loss_after = held_out_loss(net)
summary.update(loss_before=loss_before, loss_after=loss_after, train_steps=len(losses))
print(f"MSE to the teacher on the 64 generated samples: {loss_before:.4f} before, {loss_after:.4f} after {len(losses)} steps")

fig, ax = plt.subplots(figsize=(5, 2.5))
ax.plot(range(1, len(losses) + 1), losses)
ax.set_xlabel("step"); ax.set_ylabel("batch MSE"); ax.set_title("a few training steps (demonstration)")
plt.show()"""),
    ("md", """## 2. Hardware mode and QONNX

`to_hardware` quantizes every constant (BatchNorm scales, RPReLU slopes, the full-precision stem and Block
Residual weights) to the formats of the numerics contract and switches the model to its integer-exact forward.
`export_qonnx` writes the QONNX file (Brevitas), and `check_export` runs it with
`qonnx.core.onnx_exec.execute_onnx` and compares every element with PyTorch."""),
    ("code", """from binaryhpe.train.hardware import to_hardware
from binaryhpe.train.export import export_qonnx, check_export

to_hardware(net)
qonnx_path = export_qonnx(net, x, OUT / "model.onnx")
check = check_export(net, qonnx_path, x)
summary["export_mismatches"] = check["mismatches"]
print(f"QONNX vs PyTorch hardware mode: {check['mismatches']} mismatching elements of {check['elements']}")"""),
    ("md", """## 3. Compile: the hardware graph and the RTL

`step_lower` maps each QONNX node to hardware layer kinds and runs the passes (requantizer fusion, the fused
epilogues, forks, folding, lane converters, FIFO depths). Every layer carries its integer reference, cycle model and resource
model. `step_rtl` writes the stitched top level `bhpe_top.sv`, its ROM images and the RTL library."""),
    ("code", """from collections import Counter
from binaryhpe.compile.flow import step_lower, step_rtl, layer_table, format_table, predicted_cycles

hw, mw = step_lower(qonnx_path)
kinds = Counter(type(l).__name__ for l in hw.layers)
print(len(hw.layers), "hardware layers:", ", ".join(f"{n} {k}" for k, n in kinds.most_common()))
pred = predicted_cycles(hw)
summary["predicted_cycles_per_frame"] = pred["ii"]
print(f"predicted: {pred['ii']} cycles per frame (the slowest layer), latency {pred['latency']} cycles\\n")
print(format_table(layer_table(hw), limit=24))
rtl = step_rtl(hw, OUT)
print("\\nRTL:", rtl / "bhpe_top.sv", f"({len(list((rtl / 'lib').glob('*.sv')))} library modules)")"""),
    ("md", """## 4. Simulate with Verilator: bit-exact?

`step_simulate` first checks, on every frame, the compiler's integer reference against the exact (float64)
reference of the QONNX graph on every intermediate tensor (`compile.reference.check_frames`), then builds the
stitched design with Verilator and streams the frames through it (random inputs and the worst-case frames of
`compile.worstcase`: truly saturating inputs beyond both ends of the input range, and the weight-sign patterns
that drive the first accumulators to their extremes), once without and once with 30% random valid/ready stalls
on both streams; every output integer must equal the reference."""),
    ("code", """from binaryhpe.compile.flow import step_simulate

sim = step_simulate(hw, mw, rtl, seed=0, frames=1)
steady = sim["runs"][0]
summary.update(bit_exact=bool(sim["bit_exact"]), cycles_per_frame=steady["ii_cycles"],
               latency_cycles=steady["latency_cycles"])
print("bit-exact:", sim["bit_exact"])
print(f"measured {steady['ii_cycles']} cycles per frame (predicted {pred['ii']}), latency {steady['latency_cycles']} cycles")
for r in sim["runs"]:
    print(f"  stall probability {r['stall']}: {r['mismatches']} mismatching integers, {r['total_cycles']} cycles "
          f"for {sim['frames']} frames")"""),
    ("md", """## 5. Estimate for a device

Each layer kind's `resources()` gives LUT / FF / BRAM18 / DSP as a function of its shape and folding;
`estimate` adds them up against a device (here the Zynq-7020 of a PYNQ-Z2), with the frame rate at the device's
clock and the roofline (compute roof from the LUTs spent on XNOR-popcount lanes and the DSPs, memory roof from the
DRAM bandwidth). `apply_device_options` is what `binaryhpe build --device` calls: it writes `report.json`,
`report.md` and a self-contained `report.html` (and, for a Xilinx part, a Vivado project script)."""),
    ("code", """from binaryhpe.compile.flow import apply_device_options
from binaryhpe.compile.folding import fold_for_device, prepare
from binaryhpe.compile.report import breakdown_svg, roofline_svg

DEVICE = "zynq-7020"
report = {"model": "tiny-bidrn (a few demonstration steps)", "bit_exact": sim["bit_exact"], "simulation": sim,
          "cycles_per_frame": steady["ii_cycles"], "latency_cycles": steady["latency_cycles"]}
report = apply_device_options(report, hw, OUT, device=DEVICE)
est = report["estimate"]
summary.update(device=DEVICE, clock_mhz=est["device"]["clock_mhz"], fps=est["fps"], bound=est["bound"],
               resources=report["resources"])
print(f"{DEVICE} at {est['device']['clock_mhz']:g} MHz, default folding: {est['fps']:,.0f} fps ({est['bound']} bound), "
      f"latency {est['latency_ms'] * 1e3:.1f} us, fits: {est['fits']}")
for k in ("lut", "ff", "bram18", "dsp"):
    print(f"  {k.upper():6s} {est['totals'][k]:7,d} of {est['device'][k]:7,d} ({100 * est['utilisation'][k]:.1f}%)")
rf = est["roofline"]
print(f"roofline: {rf['achieved_ops'] / 1e9:.2f} G ops/s of a roof of {rf['roof_ops'] / 1e9:.1f} G ops/s "
      f"({100 * rf['fraction_of_roof']:.1f}%)")
print("reports:", OUT / "report.md", OUT / "report.html")
display(SVG(roofline_svg(est)))
display(SVG(breakdown_svg(est)))"""),
    ("md", """The default folding above is set by the compiler's cycle target, not by the device. **Device-aware folding**
picks PE / SIMD per matrix-vector unit so that the design fits and the slowest layer sets the rate, here as fast
as fits (`binaryhpe build --device NAME` does the same; `--fps F` asks for a given rate). On the Zynq-7020 it
cannot beat the default: the stem's window generator, whose input has 3 channels (at most 3 lanes), already sets
2,304 cycles a frame. The ECP5-85F has fewer LUTs and DSPs, so the folding there trades rate for area."""),
    ("code", """folded = {}
for name in (DEVICE, "ecp5-85f"):
    g_dev, e = fold_for_device(prepare(qonnx_path), name, "max", progress=False)
    folded[name] = e
    print(f"as fast as fits on {name}: {e['fps']:,.0f} fps ({e['ii_cycles']} cycles per frame at "
          f"{e['device']['clock_mhz']:g} MHz, {e['bound']} bound), fits: {e['fits']}, LUT {100 * e['utilisation']['lut']:.0f}%, "
          f"DSP {100 * e['utilisation']['dsp']:.0f}%, slowest layer {e['slowest_layer']}")
summary["device_folded"] = {n: {"fps": e["fps"], "ii_cycles": e["ii_cycles"], "fits": e["fits"], "bound": e["bound"],
                                "clock_mhz": e["device"]["clock_mhz"]} for n, e in folded.items()}
display(SVG(breakdown_svg(folded["ecp5-85f"])))"""),
    ("md", """## 6. A bitstream (of a small part)

Place and route of the **whole** tiny BiDRN takes over 30 minutes on this kind of machine, too long for a
notebook. Here the bitstream is built for a **small part** of the same hardware graph: the first binary
convolution of the first BiDRB (its `Sign`, the 3x3 sliding-window generator and the XNOR-popcount
matrix-vector unit with the trained weights, 16x16x8 -> 16x16x8), cut out of `hw` as a graph of its own, on an
ECP5-25F. Yosys (`synth_ecp5`), nextpnr-ecp5 and ecppack are the PyPI YoWASP builds. The stream ports are left
to nextpnr's pin placement: the bitstream is a real configuration of the part, not of a particular board.

For the full design, run `binaryhpe build -o out --bitstream` (ECP5-85F; the report then holds `bitstream` and
`fmax_mhz`), or `binaryhpe build -o out --device ecp5-85f --bitstream --fps F` for a folding at a given rate."""),
    ("code", """import shutil
from binaryhpe.compile.graph import HwGraph
from binaryhpe.compile.rtlgen import generate, rtl_library
from binaryhpe.compile.estimate import estimate

names = [l.name for l in hw.layers]
first = next(i for i, n in enumerate(names) if n.startswith("/blocks/blocks.0/convs.0/") and "sign" in n)
last = next(i for i, n in enumerate(names) if n == "/blocks/blocks.0/convs.0/branches.0/conv_hw/Conv")
part_layers = hw.layers[first:last + 1]
part = HwGraph(layers=part_layers, tensors={t: hw.tensors[t] for l in part_layers for t in l.inputs + l.outputs},
               input=part_layers[0].inputs[0], output=part_layers[-1].outputs[0], source="tiny BiDRN, block 0, conv 0")
for l in part_layers:
    print(f"  {type(l).__name__:14s} {l.name}")

# the part is a hardware graph like any other: its integer reference runs, and its RTL is generated the same way
rng = np.random.default_rng(0)
xin = rng.integers(-128, 128, size=part.tensors[part.input].shape)
assert all(a.outputs[0] in b.inputs for a, b in zip(part_layers, part_layers[1:]))  # a chain
yout = part.execute(xin)[part.output]
print("output", part.tensors[part.output].shape, part.tensors[part.output].fmt, "range", yout.min(), "..", yout.max())
pdir = OUT / "part"
shutil.rmtree(pdir, ignore_errors=True)
generate(part, pdir / "rtl")
(pdir / "rtl" / "lib").mkdir()
for f in rtl_library():
    shutil.copyfile(f, pdir / "rtl" / "lib" / f.name)
t = time.time()
bit = apply_device_options({"model": "tiny BiDRN, first binary convolution"}, part, pdir, device="ecp5-25f",
                           bitstream=True)
pnr = bit["pnr"]
summary.update(bitstream=bit["bitstream"], fmax_mhz=bit["fmax_mhz"], bitstream_wall_s=round(time.time() - t))
print(f"\\nbitstream {bit['bitstream']}: "
      f"{pathlib.Path(bit['bitstream']).stat().st_size:,} bytes")
print(f"nextpnr fmax {bit['fmax_mhz']} MHz (constraint {pnr['clock_mhz']:g} MHz); synth {pnr['wall_s']['synth']} s, "
      f"place and route {pnr['wall_s']['pnr']} s")
print("utilisation (nextpnr):")
for k, v in pnr["utilisation"].items():
    print(f"  {k:14s} {v['used']:6,d} / {v['available']:6,d}")
e = estimate(part, "ecp5-25f")["totals"]
print(f"estimate: {e['lut']:,} LUT4, {e['ff']:,} FF; Yosys: {bit['synth']['lut']:,} LUT4, {bit['synth']['ff']:,} FF")"""),
    ("md", """## 7. Bring your own Brevitas network

The flow above starts from the toolkit's own BiDRN, but `binaryhpe build` takes any QONNX file exported from a
network written with Brevitas' stock quantizers (docs/byo-brevitas.md). Below: a small CNN as a user writes it,
with float-scaled 8-bit input and weight quantizers (per-channel on the first convolution), BatchNorm followed by
4-bit `QuantReLU`, a bias, and a float `nn.Linear` head. The build keeps the float head on the host
(`host_nodes`), compiles every BatchNorm + ReLU + quantizer chain to integer hardware proven equal to the graph's
exact semantics, and `--sim` checks the whole graph's outputs, host part included, against the exact reference."""),
    ("code", """from torch import nn
from brevitas.export import export_qonnx
from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU
from brevitas.quant import (Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int8WeightPerTensorFloat,
                            Uint8ActPerTensorFloat)
from binaryhpe.cli import main as binaryhpe_cli


class MyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.conv1 = QuantConv2d(3, 8, 3, padding=1, bias=False, weight_quant=Int8WeightPerChannelFloat)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=4, return_quant_tensor=True)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = QuantConv2d(8, 8, 3, padding=1, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                 weight_bit_width=4)
        self.bn2 = nn.BatchNorm2d(8)
        self.act2 = QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=4)
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = self.pool(self.act1(self.bn1(self.conv1(self.inp(x)))))
        x = self.act2(self.bn2(self.conv2(x)))
        return self.head(torch.flatten(x, 1))


torch.manual_seed(0)
mynet = MyNet().train()
with torch.no_grad():  # a few batches, so that BatchNorm's statistics and the activation scales are not their defaults
    for _ in range(3):
        mynet(torch.randn(16, 3, 8, 8))
mynet.eval()
export_qonnx(mynet, torch.randn(1, 3, 8, 8), str(OUT / "mynet.onnx"))
rc = binaryhpe_cli(["build", str(OUT / "mynet.onnx"), "-o", str(OUT / "mynet"), "--sim"])
rep = json.loads((OUT / "mynet" / "report.json").read_text())
print(f"\\nexit code {rc}; host nodes {rep['host_nodes']}; bit-exact: {rep['bit_exact']}")
hwg = json.loads((OUT / "mynet" / "hwgraph.json").read_text())  # the hardware graph, with each epilogue's ops
ops = []
for layer in hwg["layers"]:
    if layer["kind"] in ("Fifo", "Fork", "Dwc", "SlidingWindow"):
        continue
    inner = [f"{op['kind']}({op['in_w']} -> {op['out_w']} bits)" for op in layer.get("ops", [])]
    ops += [op["kind"] for op in layer.get("ops", [])]
    print(f"  {layer['kind']:10s} {layer['name']:24s} {' '.join(inner)}")
summary.update(byo_bit_exact=rep["bit_exact"], byo_host_nodes=rep["host_nodes"], byo_epilogue_ops=sorted(set(ops)))"""),
    ("md", """## Summary"""),
    ("code", """summary["wall_s"] = round(time.time() - T0)
(OUT / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
for k, v in summary.items():
    print(f"{k:28s} {v}")"""),
]


def make() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, src in CELLS:
        nb.cells.append(new_markdown_cell(src) if kind == "md" else new_code_cell(src))
    return nb


def execute(nb: nbformat.NotebookNode, cwd, timeout: int = 1800) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--execute", action="store_true", help="run it and keep the outputs")
    ap.add_argument("-o", "--output", default=str(NOTEBOOK))
    a = ap.parse_args(argv)
    nb = make()
    if a.execute:
        work = pathlib.Path(tempfile.mkdtemp(prefix="bhpe_tutorial_"))
        t = time.time()
        execute(nb, work)
        print(f"executed in {time.time() - t:.0f} s in {work}")
        shutil.rmtree(work, ignore_errors=True)
    nbformat.write(nb, a.output)
    print("wrote", a.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
