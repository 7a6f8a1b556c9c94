"""The Cortex-A53 time model of the host part of a frame (docs/host.md, "The A53 model").

How the constants were measured (``python -m binaryhpe.compile.host.a53 --calibrate`` prints them; needs
``aarch64-linux-gnu-gcc``, ``qemu-aarch64`` and ``llvm-mca``):

1. each host kernel of ``compile/host/runtime`` is compiled for the A53 (``aarch64-linux-gnu-gcc -O2
   -mcpu=cortex-a53 -static``) and run under ``qemu-aarch64`` on a calibration size (``CALIBRATION``), once and
   twice; the difference of the two basic-block profiles (``build.kernel_profile``: every executed block and how
   often) is one run of the kernel, libm's ``exp``/``sin``/``atan2`` included;
2. every block's instructions (from ``aarch64-linux-gnu-objdump``) go through ``llvm-mca -mcpu=cortex-a53``:
   LLVM's public scheduling model of the Cortex-A53 (``llvm/lib/Target/AArch64/AArch64SchedA53.td``: in-order,
   dual issue, its per-instruction latencies and pipelines), which gives the block's cycles per execution when it
   runs back to back (a loop body), with every load an L1 hit and every branch predicted;
3. cycles of the kernel = sum over blocks of executions x cycles per execution; ``cycles_per_flop`` = that /
   the kernel's flops (the formulas of ``FLOPS``, the ones the manifest's ``host`` nodes use).

``host_time`` then gives each node ``cycles_per_flop[kind] * flops * count`` cycles at ``clock_hz`` and, when a
DRAM bandwidth is given, at least ``bytes * count / bandwidth`` seconds (the node's data streamed once from
DRAM). What it leaves out: cache misses beyond that bound, branch mispredictions, the OS, and a second core.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import tempfile

import numpy as np

from binaryhpe import BinaryHPEError

KINDS = ("resize", "soft_argmax_2d", "soft_argmax_3d", "crop_box", "roi_align", "sample_features", "linear",
         "mean_pool", "rot6d_to_axis_angle", "smplx")

#: flops per run of each kind: the formulas the export's host nodes are counted with
#: (``train.wholebody.HOST_FLOPS``, the one definition; the calibration below counts its inputs with them too)
from binaryhpe.train.wholebody import HOST_FLOPS as FLOPS  # noqa: E402

#: the measured constants: kind -> cycles per flop and instructions per flop (``--calibrate`` prints this dict;
#: aarch64-linux-gnu-gcc 12.2 -O2 -mcpu=cortex-a53, qemu-aarch64 7.2, llvm-mca 14 -mcpu=cortex-a53)
MEASURED: dict = {
    "resize": {"cycles_per_flop": 5.02932, "instructions_per_flop": 2.45492, "ipc": 0.4881,
        "flops": 73728, "instructions": 180996, "cycles": 370802.04, "params": [3, 128, 96, 64, 48]},
    "soft_argmax_2d": {"cycles_per_flop": 18.9588, "instructions_per_flop": 5.6744, "ipc": 0.2993,
        "flops": 73728, "instructions": 418362, "cycles": 1397794.79, "params": [3, 64, 48]},
    "soft_argmax_3d": {"cycles_per_flop": 16.7519, "instructions_per_flop": 4.99987, "ipc": 0.2985,
        "flops": 15360, "instructions": 76798, "cycles": 257308.73, "params": [4, 8, 8, 6]},
    "crop_box": {"cycles_per_flop": 18.12, "instructions_per_flop": 4.44219, "ipc": 0.2452,
        "flops": 640, "instructions": 2843, "cycles": 11596.8, "params": [64, 512, 384, 256, 256, 2.0]},
    "roi_align": {"cycles_per_flop": 4.19707, "instructions_per_flop": 1.83606, "ipc": 0.4375,
        "flops": 98304, "instructions": 180492, "cycles": 412589.11, "params": [3, 128, 96, 64, 64, 0.001]},
    "sample_features": {"cycles_per_flop": 4.6455, "instructions_per_flop": 2.25797, "ipc": 0.4861,
        "flops": 12800, "instructions": 28902, "cycles": 59462.42, "params": [64, 8, 6, 25]},
    "linear": {"cycles_per_flop": 0.807787, "instructions_per_flop": 0.534973, "ipc": 0.6623,
        "flops": 65536, "instructions": 35060, "cycles": 52939.15, "params": [1024, 32, 1]},
    "mean_pool": {"cycles_per_flop": 1.95236, "instructions_per_flop": 0.986898, "ipc": 0.5055,
        "flops": 12288, "instructions": 12127, "cycles": 23990.6, "params": [64, 16, 12]},
    "rot6d_to_axis_angle": {"cycles_per_flop": 27.1235, "instructions_per_flop": 6.97552, "ipc": 0.2572,
        "flops": 3840, "instructions": 26786, "cycles": 104154.3, "params": [64]},
    "smplx": {"cycles_per_flop": 1.30976, "instructions_per_flop": 0.722439, "ipc": 0.5516,
        "flops": 942000, "instructions": 680538, "cycles": 1233797.14, "params": [200, 55, 20]},
}

MODEL = ("Cortex-A53: per kernel, cycles/flop = the C runtime's aarch64 basic-block profile under qemu-aarch64 x "
         "llvm-mca -mcpu=cortex-a53 cycles per block (LLVM's A53 scheduling model; L1 hits, predicted branches)")


# ---------------------------------------------------------------------------------------------------------
# the model


def _kind(node: dict) -> str:
    k = node.get("kind")
    if k is None:
        name = str(node.get("name", ""))
        k = next((c for c in sorted(KINDS, key=len, reverse=True) if name.startswith(c)), None)
    if k not in KINDS:
        raise BinaryHPEError(f"host node {node.get('name')!r}: kind {k!r} is not one of {', '.join(KINDS)} "
                             "(compile/host/a53.py)")
    return k


def host_time(nodes: list, clock_hz: float, dram_bytes_per_s: float | None = None, constants: dict | None = None
              ) -> dict:
    """The host part's time per frame on a Cortex-A53 at ``clock_hz``: {"ms_per_frame", "model", "per_node"}.

    ``nodes``: dicts with ``name``, ``flops`` and ``bytes`` per run, ``count`` runs per frame (default 1) and
    ``kind`` (else taken from the name's prefix). One core, the nodes one after another."""
    const = constants if constants is not None else MEASURED
    if not const:
        raise BinaryHPEError("compile/host/a53.py: no measured constants (run python -m "
                             "binaryhpe.compile.host.a53 --calibrate)")
    if not clock_hz or clock_hz <= 0:
        raise BinaryHPEError(f"host_time: clock_hz = {clock_hz!r}: expected a positive clock")
    rows, total = [], 0.0
    for nd in nodes:
        k = _kind(nd)
        if k not in const:
            raise BinaryHPEError(f"host node {nd.get('name')!r}: kind {k} has no measured constant")
        flops, nbytes, count = float(nd.get("flops", 0)), float(nd.get("bytes", 0)), int(nd.get("count", 1))
        cycles = const[k]["cycles_per_flop"] * flops * count
        t_cpu = cycles / clock_hz
        t_mem = nbytes * count / dram_bytes_per_s if dram_bytes_per_s else 0.0
        t = max(t_cpu, t_mem)
        total += t
        rows.append({"name": nd.get("name"), "kind": k, "count": count, "flops": flops * count,
                     "cycles": cycles, "ms": 1e3 * t, "bound": "memory" if t_mem > t_cpu else "compute"})
    model = MODEL + f", at {clock_hz / 1e6:g} MHz" + (
        f", at least bytes / {dram_bytes_per_s / 1e9:g} GB/s a node" if dram_bytes_per_s else ", no DRAM bound")
    return {"ms_per_frame": 1e3 * total, "model": model, "per_node": rows}


# ---------------------------------------------------------------------------------------------------------
# measuring the constants


def _objdump(exe) -> dict:
    """address -> instruction text (GNU syntax) of the static executable."""
    od = shutil.which("aarch64-linux-gnu-objdump")
    if od is None:
        raise BinaryHPEError("aarch64-linux-gnu-objdump not found (Debian: binutils-aarch64-linux-gnu)")
    r = subprocess.run([od, "-d", "--no-show-raw-insn", str(exe)], capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^\s+([0-9a-f]+):\t(.*)$", line)
        if m:
            text = m.group(2).split("//")[0].strip()
            text = re.sub(r"\b[0-9a-f]+ <[^>]*>", ".", text)  # branch / literal targets: any label serves
            # calls: llvm-mca 14 gives a call a fixed 100-cycle latency ("call instructions are not correctly
            # modeled"); the A53 predicts a call like any direct / indirect branch, so it is modelled as one
            text = re.sub(r"^bl\s+\.$", "b\t.", text)
            text = re.sub(r"^blr\s+(x\d+)$", r"br\t\1", text)
            out[int(m.group(1), 16)] = text
    return out


def _mca(blocks: list, mca: str) -> list:
    """Cycles per execution of each block (a list of instruction texts) by llvm-mca's Cortex-A53 model;
    instructions llvm-mc cannot parse (none in the kernels' hot blocks so far) are replaced by a nop, and counted."""
    iters = 100
    lines = []
    for i, b in enumerate(blocks):
        lines.append(f"# LLVM-MCA-BEGIN b{i}")
        lines.extend(b)
        lines.append("# LLVM-MCA-END")
    replaced = 0
    with tempfile.TemporaryDirectory(prefix="bhpe-mca-") as work:
        src = pathlib.Path(work) / "blocks.s"
        for _ in range(200):
            src.write_text("\n".join(lines) + "\n")
            r = subprocess.run([mca, "-mtriple=aarch64", "-mcpu=cortex-a53", f"-iterations={iters}", str(src)],
                               capture_output=True, text=True)
            if r.returncode == 0:
                break
            m = re.search(r"blocks\.s:(\d+):\d+: error", r.stderr)
            if not m:
                raise BinaryHPEError(f"llvm-mca failed: {r.stderr.strip()[-500:]}")
            lines[int(m.group(1)) - 1] = "nop"
            replaced += 1
        else:
            raise BinaryHPEError("llvm-mca: too many unparsable instructions")
    cycles = [int(c) / iters for c in re.findall(r"^Total Cycles:\s+(\d+)", r.stdout, re.M)]
    if len(cycles) != len(blocks):
        raise BinaryHPEError(f"llvm-mca reported {len(cycles)} regions for {len(blocks)} blocks")
    return cycles, replaced


def _inputs(kind: str, rng) -> tuple[list, list, int]:
    """(inputs, kernel parameters, flops) of the calibration run of ``kind`` (sizes of the paper-scale frame,
    smaller where only the loop count changes)."""
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    if kind == "resize":
        return [f(3, 128, 96)], [3, 128, 96, 64, 48], FLOPS[kind](3, 64, 48)
    if kind == "roi_align":
        # a hand-sized box (0.2 of the image, ~3x up-sampling to the crop, as a hand crop of the paper's frame)
        return [f(3, 128, 96), np.array([0.5, 0.5, 0.2, 0.2], np.float32)], [3, 128, 96, 64, 64, 1e-3], \
            FLOPS[kind](3, 64, 64)
    if kind == "sample_features":
        return [f(64, 8, 6), rng.random((25, 2)).astype(np.float32)], [64, 8, 6, 25], FLOPS[kind](64, 25)
    if kind == "soft_argmax_2d":
        return [f(3, 64, 48)], [3, 64, 48], FLOPS[kind](3, 64, 48)
    if kind == "soft_argmax_3d":
        return [f(4 * 8, 8, 6)], [4, 8, 8, 6], FLOPS[kind](4, 8, 8, 6)
    if kind == "crop_box":
        return [rng.random((64, 4)).astype(np.float32)], [64, 512, 384, 256, 256, 2.0], FLOPS[kind](64)
    if kind == "linear":
        return [f(1024), f(32, 1024), f(32)], [1024, 32, 1], FLOPS[kind](1024, 32)
    if kind == "mean_pool":
        return [f(64, 16, 12)], [64, 16, 12], FLOPS[kind](64, 16, 12)
    if kind == "rot6d_to_axis_angle":
        return [f(64, 6)], [64], FLOPS[kind](64)
    if kind == "smplx":
        V, J, B = 200, 55, 20
        w = rng.random((V, J)).astype(np.float32) * (rng.random((V, J)) < 0.05)
        w[:, 0] += 0.1
        w /= w.sum(1, keepdims=True)
        from binaryhpe.train.smplx_model import PARENTS
        return [f(V, 3), 0.01 * f(V, 3, B), 0.01 * f(V, 3, (J - 1) * 9), rng.random((J, V)).astype(np.float32) / V,
                w.astype(np.float32), PARENTS.astype(np.int32), f(B), 0.3 * f(J, 3)], [V, J, B], FLOPS[kind](V, J, B, (J - 1) * 9)
    raise BinaryHPEError(f"no calibration for {kind}")


def calibrate(work=None, kinds=KINDS, seed: int = 0) -> dict:
    """Measure ``MEASURED`` (see the module docstring): kind -> {"cycles_per_flop", "instructions_per_flop",
    "ipc", "flops", "instructions", "cycles", "params"}."""
    from binaryhpe.compile.host import build as B

    mca = shutil.which("llvm-mca") or shutil.which("llvm-mca-14")
    if mca is None:
        raise BinaryHPEError("llvm-mca not found (Debian: llvm)")
    work = pathlib.Path(work or tempfile.mkdtemp(prefix="bhpe-a53-"))
    exe = B.build_a53(work)
    asm = _objdump(exe)
    out = {}
    for k in kinds:
        inputs, params, flops = _inputs(k, np.random.default_rng([seed, KINDS.index(k)]))
        prof = B.kernel_profile(exe, k, inputs, params)
        pcs = sorted(prof)
        missing = [a for pc in pcs for a in prof[pc][0] if a not in asm]
        if missing:
            raise BinaryHPEError(f"calibration of {k}: {len(missing)} executed instructions are not in the "
                                 f"objdump of {exe} (first {missing[0]:#x})")
        cyc, replaced = _mca([[asm[a] for a in prof[pc][0]] for pc in pcs], mca)
        n_insn = sum(len(prof[pc][0]) * prof[pc][1] for pc in pcs)
        n_cyc = sum(c * prof[pc][1] for c, pc in zip(cyc, pcs))
        out[k] = {"cycles_per_flop": n_cyc / flops, "instructions_per_flop": n_insn / flops,
                  "ipc": n_insn / n_cyc, "flops": flops, "instructions": n_insn, "cycles": round(n_cyc, 2),
                  "params": params, "unparsed_instructions": replaced}
    return out


def main(argv=None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(description="the Cortex-A53 time model of the host part (docs/host.md)")
    ap.add_argument("--calibrate", action="store_true", help="measure the constants and print them")
    ap.add_argument("--model", help="print the host part of this whole-body config (e.g. binaryhpe) per node")
    ap.add_argument("--clock-mhz", type=float, default=1200.0, help="the A53's clock (default 1200)")
    ap.add_argument("--dram-gbps", type=float, default=None, help="DRAM bandwidth bound (GB/s; default none)")
    a = ap.parse_args(argv)
    if a.calibrate:
        print(json.dumps(calibrate(), indent=1))
    elif a.model:
        from binaryhpe.train.wholebody import build_wholebody, host_nodes

        r = host_time(host_nodes(build_wholebody(a.model)), a.clock_mhz * 1e6,
                      a.dram_gbps * 1e9 if a.dram_gbps else None)
        print(f"{'node':28s} {'runs':>4s} {'MFLOP':>9s} {'ms':>8s}  bound")
        for n in r["per_node"]:
            print(f"{n['name']:28s} {n['count']:4d} {n['flops'] / 1e6:9.3f} {n['ms']:8.3f}  {n['bound']}")
        print(f"total {r['ms_per_frame']:.2f} ms/frame; model: {r['model']}")
    else:
        print(json.dumps(MEASURED, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
