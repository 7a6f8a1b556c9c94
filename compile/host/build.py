"""Build and run the host runtime (``compile/host/runtime``, docs/host.md): with the system ``gcc`` for this
machine, with Debian's ``aarch64-linux-gnu-gcc -static`` for the Zynq UltraScale+'s Cortex-A53 (and
``arm-linux-gnueabihf-gcc -static`` for the Zynq-7000's Cortex-A9), run under ``qemu-aarch64`` / ``qemu-arm``
(user mode) where installed, and count the guest instructions a kernel executes.

Instruction counts: ``qemu-aarch64 -d in_asm,exec,nochain`` logs every translated block (its guest instructions)
and every execution of a block (``nochain``: no direct jumps between blocks, so each execution is logged);
the count is the sum over executions of the block's instructions. QEMU is not cycle-accurate: these are
instructions, not cycles (``compile/host/a53.py`` turns them into cycles).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import numpy as np

from binaryhpe import BinaryHPEError

RUNTIME = pathlib.Path(__file__).resolve().parent / "runtime"
SOURCES = ("main.c", "kernels.c", "engine.c")
HEADERS = ("bhpe_host.h", "bhpe_engine.h")
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
#: the boards' cores: the Cortex-A53 (ZU3EG / ZU7EV processing system: AArch64) and the Cortex-A9 (Zynq-7000: ARMv7,
#: NEON, hard float); cross compiler, its flags (static: runs on the board and under QEMU without a sysroot),
#: QEMU user-mode emulator and CPU, objdump, and llvm-mca's target options
TARGETS = {
    "a53": {"cc": "aarch64-linux-gnu-gcc", "flags": ["-static", "-mcpu=cortex-a53"], "qemu": "qemu-aarch64",
            "cpu": "cortex-a53", "objdump": "aarch64-linux-gnu-objdump",
            "mca": ["-mtriple=aarch64", "-mcpu=cortex-a53"],
            "apt": "gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"},
    "a9": {"cc": "arm-linux-gnueabihf-gcc", "flags": ["-static", "-mcpu=cortex-a9", "-mfpu=neon", "-mfloat-abi=hard"],
           "qemu": "qemu-arm", "cpu": "cortex-a9", "objdump": "arm-linux-gnueabihf-objdump",
           "mca": ["-mtriple=thumbv7-linux-gnueabihf", "-mcpu=cortex-a9", "-mattr=+neon,+vfp3"],
           "apt": "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user"},
}
A53_FLAGS = TARGETS["a53"]["flags"]
CROSS_CC = TARGETS["a53"]["cc"]
QEMU = TARGETS["a53"]["qemu"]
APT_HINT = "Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"


def _target(core: str) -> dict:
    if core not in TARGETS:
        raise BinaryHPEError(f"host core {core!r}: expected one of {', '.join(TARGETS)}")
    return TARGETS[core]


#: the environment of a profiled run (``profile``): nothing of the caller's, so that counts repeat
PROFILE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"}


def _run(cmd, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, timeout=timeout, **kw)
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace")
        raise BinaryHPEError(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}: {err.strip()[-2000:]}")
    return r


def tools(core: str = "a53") -> dict:
    """Paths of the host C compiler, the core's cross compiler and its QEMU (None where absent)."""
    t = _target(core)
    return {"gcc": shutil.which("gcc"), "cross": shutil.which(t["cc"]), "qemu": shutil.which(t["qemu"])}


def _digest(files, flags) -> str:
    h = hashlib.sha256(" ".join(flags).encode())
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _build(cc: str, flags: list, sources: list, exe_name: str, out_dir) -> pathlib.Path:
    path = shutil.which(cc)
    if path is None:
        raise BinaryHPEError(f"C compiler {cc!r} not found ({APT_HINT})")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    srcs = [RUNTIME / s for s in sources]
    key = _digest(srcs + [RUNTIME / h for h in HEADERS], [cc, *flags])
    exe = out_dir / f"{exe_name}-{key}"
    if not exe.exists():
        tmp = exe.with_name(exe.name + f".tmp{os.getpid()}")
        _run([cc, *CFLAGS, *flags, "-I", RUNTIME, *srcs, "-o", tmp, "-lm"])
        tmp.replace(exe)
    return exe


def build_host(out_dir) -> pathlib.Path:
    """``bhpe_host`` for this machine (gcc)."""
    return _build("gcc", [], list(SOURCES), "bhpe_host", out_dir)


def build_a53(out_dir) -> pathlib.Path:
    """``bhpe_host`` for the Cortex-A53: AArch64 Linux, statically linked (runs on the board and under
    qemu-aarch64 without a sysroot)."""
    return build_core("a53", out_dir)


def build_core(core: str, out_dir) -> pathlib.Path:
    """``bhpe_host`` for ``core`` (``TARGETS``: "a53", "a9"), statically linked."""
    t = _target(core)
    return _build(t["cc"], t["flags"], list(SOURCES), f"bhpe_host_{core}", out_dir)


def build_regmodel(out_dir, cc: str = "gcc") -> pathlib.Path:
    """The engine driver against the software register model (``runtime/regmodel.c``)."""
    flags = ["-DBHPE_REG_HOOKS"] + (A53_FLAGS if cc == CROSS_CC else [])
    return _build(cc, flags, ["regmodel.c", "engine.c"], "bhpe_regmodel" + ("_a53" if cc == CROSS_CC else ""),
                  out_dir)


def _qemu(core: str) -> list:
    t = _target(core)
    q = shutil.which(t["qemu"])
    if q is None:
        raise BinaryHPEError(f"{t['qemu']} not found (Debian: apt-get install {t['apt']})")
    return [q, "-cpu", t["cpu"]]


def _exec_cmd(exe, args, qemu: bool, core: str = "a53") -> list:
    return [*_qemu(core), exe, *args] if qemu else [exe, *args]


def _kernel_args(name, inputs, params, reps, work):
    work = pathlib.Path(work)
    fin, fout = work / f"{name}.in", work / f"{name}.out"
    with open(fin, "wb") as fh:
        for a in inputs:
            a = np.asarray(a)
            fh.write((a.astype("<i4") if a.dtype.kind in "iu" else a.astype("<f4")).tobytes())
    return fin, fout, ["kernel", name, str(fin), str(fout), str(reps), *[repr(p) if isinstance(p, float) else str(p)
                                                                       for p in params]]


def run_kernel(exe, name: str, inputs: list, params: list, reps: int = 1, qemu: bool = False,
               core: str = "a53") -> np.ndarray:
    """Run host kernel ``name`` (``bhpe_host kernel``) on ``inputs`` (float arrays written as float32, integer
    arrays as int32, concatenated) with integer / float ``params``, under ``core``'s QEMU with ``qemu``; returns
    its float32 outputs (flat)."""
    with tempfile.TemporaryDirectory(prefix="bhpe-host-") as work:
        fin, fout, args = _kernel_args(name, inputs, params, reps, work)
        _run(_exec_cmd(exe, args, qemu, core))
        return np.fromfile(fout, dtype="<f4")


_INSN = re.compile(r"^0x([0-9a-f]+):", re.I)
_EXEC = re.compile(r"^Trace \d+: (0x[0-9a-f]+) \[[0-9a-f]+/([0-9a-f]+)/", re.I)


def _count_log(log) -> tuple[int, dict]:
    """(instructions, guest block address -> [instruction addresses of the block, executions]) from a
    ``-d in_asm,exec,nochain`` log. QEMU translates a block (``IN:`` and its instructions) right before its first
    execution, so the first ``Trace`` of a new translation (host address) after an ``IN:`` block is that block;
    a host address seen before is a block translated earlier (or, after a new ``IN:`` block at the same guest
    address, reused: the new block replaces it)."""
    by_host: dict[str, tuple[int, list]] = {}  # host address of the translation -> (guest address, its addresses)
    prof: dict[int, list] = {}
    pending: list | None = None
    in_block = False
    total = 0
    with open(log, errors="replace") as fh:
        for line in fh:
            if line.startswith("Trace"):
                m = _EXEC.match(line)
                if not m:
                    raise BinaryHPEError(f"{log}: unexpected exec line {line.strip()!r}")
                host, pc = m.group(1), int(m.group(2), 16)
                in_block = False
                if pending and pending[0] == pc:
                    by_host[host] = (pc, pending)
                    pending = None
                if host not in by_host:
                    raise BinaryHPEError(f"{log}: block {pc:#x} executed without a logged translation")
                gpc, addrs = by_host[host]
                if gpc != pc:
                    raise BinaryHPEError(f"{log}: translation {host} logged for {gpc:#x}, executed at {pc:#x}")
                total += len(addrs)
                e = prof.setdefault(pc, [addrs, 0])
                if e[0] != addrs:
                    raise BinaryHPEError(f"{log}: block {pc:#x} translated twice with different instructions")
                e[1] += 1
            elif line.startswith("IN:"):
                pending, in_block = [], True
            elif in_block:
                m = _INSN.match(line)
                if m:
                    pending.append(int(m.group(1), 16))
                elif not line.strip():
                    in_block = False
    return total, prof


def profile(exe, args: list, timeout: float = 300, core: str = "a53") -> dict:
    """The basic-block profile of ``exe args`` under ``core``'s QEMU (the whole process): guest block address ->
    [instruction addresses of the block, executions]. See the module docstring for the method."""
    q = _qemu(core)
    with tempfile.TemporaryDirectory(prefix="bhpe-qemu-") as work:
        log = pathlib.Path(work) / "qemu.log"
        # a fixed environment and a fixed-length path to the program: the guest's stack (and so the alignment of
        # what the kernels read) moves with the size of the environment and of argv, and with it a few
        # instructions of the profile (a test's tmp_path is longer under pytest-xdist)
        prog = pathlib.Path(work) / "prog"
        prog.symlink_to(pathlib.Path(exe).resolve())
        _run([*q, "-d", "in_asm,exec,nochain", "-D", log, prog, *args], timeout=timeout, env=PROFILE_ENV)
        return _count_log(log)[1]


def kernel_profile(exe, name: str, inputs: list, params: list, core: str = "a53") -> dict:
    """The blocks of ONE run of kernel ``name``: block -> [addresses, executions with two runs minus executions
    with one] (the process start, file reading and writing cancel); blocks whose count does not change are
    left out."""
    with tempfile.TemporaryDirectory(prefix="bhpe-host-") as work:
        _, _, a1 = _kernel_args(name, inputs, params, 1, work)
        _, _, a2 = _kernel_args(name, inputs, params, 2, work)
        p1, p2 = profile(exe, a1, core=core), profile(exe, a2, core=core)
    out = {}
    for pc, (addrs, n2) in p2.items():
        d = n2 - (p1[pc][1] if pc in p1 else 0)
        if d:
            out[pc] = [addrs, d]
    return out


def count_instructions(exe, args: list, timeout: float = 300) -> dict:
    """Guest instructions of ``exe args`` under qemu-aarch64 (the whole process), from its block profile
    (:func:`profile`: the same fixed environment and program path): {"instructions", "blocks", "executions"}.
    See the module docstring for the method."""
    prof = profile(exe, args, timeout=timeout)
    return {"instructions": sum(len(addrs) * n for addrs, n in prof.values()), "blocks": len(prof),
            "executions": sum(n for _, n in prof.values())}


def kernel_instructions(exe, name: str, inputs: list, params: list) -> int:
    """Guest instructions of ONE run of kernel ``name``: the count with two runs minus the count with one (the
    process start, file reading and writing cancel)."""
    return sum(len(addrs) * n for addrs, n in kernel_profile(exe, name, inputs, params).values())


__all__ = ["TARGETS", "build_a53", "build_core", "build_host", "build_regmodel", "count_instructions",
           "kernel_instructions", "kernel_profile", "profile", "run_kernel", "tools"]
