"""Run the generated C: on the host (system gcc) and bare-metal on an emulated Cortex-M (arm-none-eabi-gcc +
newlib/rdimon semihosting, qemu-system-arm). The flow's MCU step that drives them is
``compile/mcu_build.py`` (``build_mcu``); this module imports nothing of ``compile/``.

Host: ``model.c`` + ``weights.c`` + a harness that reads frames (int32 little-endian) on stdin and writes the
outputs (int32) on stdout; optionally it times ``bhpe_model_run`` over many frames.

Target: the same C cross-compiled for the target's core, linked with a startup file that has its own vector
table (initial SP, reset handler -> newlib's ``_start``, a SysTick handler) and a linker script with code and
constants at 0x0 (flash) and .data/.bss/stack at 0x20000000 (RAM; newlib's crt0 does not copy .data, so .data
is linked straight into RAM: QEMU loads it there from the ELF). The test frames are compiled into the program
(``frames.c``); it prints every output integer over semihosting and QEMU exits with the program.

Instruction counts: QEMU is *not* cycle-accurate. With ``-icount shift=0`` its virtual clock advances exactly
2^0 ns per executed guest instruction, and the Cortex-M SysTick runs from that clock; the program counts SysTick
ticks (24-bit counter plus an interrupt per wrap) around each layer, and converts ticks to instructions with a
calibration loop of a known instruction count (``subs``/``bne``, 2 instructions an iteration) run first. The
figure is guest *instructions* (``instructions_per_frame``), not cycles: the cycle model
(``compile/mcu_cycles.py``) turns instructions into cycles with a per-core CPI it states.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import time

import numpy as np

from binaryhpe import BinaryHPEError

HOST_MAIN = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include "model.h"
static bhpe_in_t in[BHPE_IN_SIZE];
static bhpe_out_t out[BHPE_OUT_SIZE];
int main(int argc, char **argv) {
  long reps = argc > 1 ? atol(argv[1]) : 0;
  int32_t v;
  if (reps > 0) {  /* timing: reps runs of the first frame on stdin */
    for (int i = 0; i < BHPE_IN_SIZE; i++) { if (fread(&v, 4, 1, stdin) != 1) return 2; in[i] = (bhpe_in_t)v; }
    struct timespec a, b;
    bhpe_model_run(in, out);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long r = 0; r < reps; r++) bhpe_model_run(in, out);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.9f\n", ((b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec)) / reps);
    return 0;
  }
  for (;;) {
    for (int i = 0; i < BHPE_IN_SIZE; i++) { if (fread(&v, 4, 1, stdin) != 1) return 0; in[i] = (bhpe_in_t)v; }
    bhpe_model_run(in, out);
    for (int i = 0; i < BHPE_OUT_SIZE; i++) { v = out[i]; fwrite(&v, 4, 1, stdout); }
  }
}
"""

HOST_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-pedantic"]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, **kw)
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace") if isinstance(r.stderr, bytes) else r.stderr
        raise BinaryHPEError(f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{err[-3000:]}")
    return r


def host_build(c_dir, exe=None, cc: str = "gcc", extra: list[str] | None = None) -> pathlib.Path:
    c_dir = pathlib.Path(c_dir)
    if shutil.which(cc) is None:
        raise BinaryHPEError(f"host C compiler {cc!r} not found: install gcc")
    main = c_dir / "host_main.c"
    main.write_text(HOST_MAIN)
    exe = pathlib.Path(exe or c_dir / "host_model")
    _run([cc, *HOST_CFLAGS, *(extra or []), "-I", str(c_dir), str(c_dir / "model.c"), str(c_dir / "weights.c"),
          str(main), "-o", str(exe)])
    return exe


def host_run(exe, frames: list[np.ndarray], out_shape) -> list[np.ndarray]:
    data = b"".join(np.asarray(f, dtype="<i4").ravel().tobytes() for f in frames)
    r = _run([str(exe)], input=data)
    out = np.frombuffer(r.stdout, dtype="<i4").astype(np.int64)
    n = int(np.prod(out_shape))
    if out.size != n * len(frames):
        raise BinaryHPEError(f"host model wrote {out.size} integers, expected {n * len(frames)}")
    return [out[i * n:(i + 1) * n].reshape(out_shape) for i in range(len(frames))]


def host_time(exe, frame: np.ndarray, reps: int = 20) -> float:
    r = _run([str(exe), str(reps)], input=np.asarray(frame, dtype="<i4").ravel().tobytes())
    return float(r.stdout.decode().strip())


# ---------------------------------------------------------------------------------------------------------
# bare-metal Cortex-M under QEMU

START_C = r"""
/* Vector table, reset and SysTick handlers for a bare-metal Cortex-M under QEMU (semihosting). */
#include <stdint.h>
extern void _start(void);
extern uint32_t __stack_top;
volatile uint32_t bhpe_systick_wraps;
void Reset_Handler(void) {
#if defined(__ARM_FP)
  *(volatile uint32_t *)0xE000ED88 |= (0xFu << 20);  /* CPACR: enable the FPU (newlib may touch it) */
#endif
  _start();
  for (;;) {}
}
void Default_Handler(void) { for (;;) {} }
void SysTick_Handler(void) { bhpe_systick_wraps++; }
__attribute__((section(".vectors"), used)) const void *bhpe_vectors[16] = {
  (void *)&__stack_top, (void *)Reset_Handler, (void *)Default_Handler, (void *)Default_Handler,
  (void *)Default_Handler, (void *)Default_Handler, (void *)Default_Handler, 0, 0, 0, 0,
  (void *)Default_Handler, (void *)Default_Handler, 0, (void *)Default_Handler, (void *)SysTick_Handler};
"""

LINK_LD = """
MEMORY { FLASH (rx) : ORIGIN = {flash_origin}, LENGTH = {flash}
         RAM (rwx) : ORIGIN = {ram_origin}, LENGTH = {ram} }
ENTRY(Reset_Handler)
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) KEEP(*(.init)) KEEP(*(.fini))
            . = ALIGN(4); __preinit_array_start = .; KEEP(*(.preinit_array)) __preinit_array_end = .;
            __init_array_start = .; KEEP(*(.init_array*)) __init_array_end = .;
            __fini_array_start = .; KEEP(*(.fini_array*)) __fini_array_end = .; } > FLASH
  .ARM.exidx : { *(.ARM.exidx*) } > FLASH
  .data : { . = ALIGN(4); *(.data*) . = ALIGN(4); } > RAM
  .bss (NOLOAD) : { . = ALIGN(4); __bss_start__ = .; *(.bss*) *(COMMON) . = ALIGN(4); __bss_end__ = .; } > RAM
  . = ALIGN(8); end = .; __end__ = .;
  __HeapLimit = ORIGIN(RAM) + LENGTH(RAM) - 0x4000;
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
  __stack = __stack_top;
}
"""

TARGET_MAIN = r"""
#include <stdio.h>
#include <stdint.h>
#include "model.h"
#include "frames.h"
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
extern volatile uint32_t bhpe_systick_wraps;
static uint64_t ticks(void) {  /* monotonically increasing SysTick ticks (24-bit down counter + wraps) */
  uint32_t w, v;
  do { w = bhpe_systick_wraps; v = SYST_CVR; } while (w != bhpe_systick_wraps);
  return ((uint64_t)w << 24) + (0xFFFFFFu - v);
}
static uint64_t layer_ticks[BHPE_LAYERS + 1];
static uint64_t t_prev;
void bhpe_hook(int i) { uint64_t t = ticks(); layer_ticks[i] += t - t_prev; t_prev = ticks(); }
static bhpe_out_t out[BHPE_OUT_SIZE];
int main(void) {
  SYST_RVR = 0xFFFFFFu; SYST_CVR = 0; SYST_CSR = 7u;  /* processor clock, interrupt, enable */
  while (SYST_CVR == 0u) {}  /* the counter reloads on its first tick */
  /* calibration: CAL iterations of subs+bne = 2*CAL instructions */
  const uint32_t cal = 1000000u;
  uint64_t t0 = ticks();
  __asm__ volatile("mov r0, %0\n1: subs r0, r0, #1\n bne 1b\n" :: "r"(cal) : "r0", "cc");
  uint64_t t1 = ticks();
  printf("CAL %lu %lu\n", (unsigned long)(2u * cal), (unsigned long)(t1 - t0));
  for (int f = 0; f < BHPE_FRAMES; f++) {
    for (int i = 0; i <= BHPE_LAYERS; i++) layer_ticks[i] = 0;
    uint64_t a = ticks();
    t_prev = a;
    bhpe_model_run(bhpe_frames[f], out);
    uint64_t b = ticks();
    printf("FRAME %d %lu\n", f, (unsigned long)(b - a));
    for (int i = 0; i < BHPE_LAYERS; i++) printf("L %d %lu\n", i, (unsigned long)layer_ticks[i]);
    printf("OUT");
    for (int i = 0; i < BHPE_OUT_SIZE; i++) printf(" %ld", (long)out[i]);
    printf("\n");
  }
  printf("DONE\n");
  return 0;
}
"""


def find_cross() -> dict:
    """The cross toolchain and emulator, or one clear error naming what is missing and how to install it."""
    tools = {k: shutil.which(k) for k in ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")}
    missing = [k for k, v in tools.items() if v is None]
    if missing:
        raise BinaryHPEError(
            f"missing {', '.join(missing)}: the QEMU run needs the cross compiler and emulator "
            "(Debian: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
    return tools


def write_frames(c_dir: pathlib.Path, frames: list[np.ndarray], in_ctype: str) -> None:
    n = int(np.asarray(frames[0]).size)
    rows = []
    for f in frames:
        vals = ", ".join(str(int(v)) for v in np.asarray(f).ravel())
        rows.append("  {" + vals + "}")
    (c_dir / "frames.h").write_text(
        f"#include \"model.h\"\n#define BHPE_FRAMES {len(frames)}\nextern const bhpe_in_t bhpe_frames[{len(frames)}][{n}];\n")
    (c_dir / "frames.c").write_text(
        f'#include "frames.h"\nconst bhpe_in_t bhpe_frames[{len(frames)}][{n}] = {{\n' + ",\n".join(rows) + "\n};\n")


def cross_build(c_dir, target: dict, frames: list[np.ndarray], in_ctype: str, work=None) -> dict:
    """Cross-compile model + harness for ``target`` (see compile/mcu_targets); returns paths and sizes."""
    tools = find_cross()
    c_dir = pathlib.Path(c_dir)
    work = pathlib.Path(work or c_dir.parent / "qemu")
    work.mkdir(parents=True, exist_ok=True)
    write_frames(work, frames, in_ctype)
    (work / "start.c").write_text(START_C)
    (work / "main.c").write_text(TARGET_MAIN)
    q = target["qemu"]
    ld = LINK_LD
    for k, v in (("{flash_origin}", q["flash_origin"]), ("{ram_origin}", q["ram_origin"]),
                 ("{flash}", str(q["flash_bytes"])), ("{ram}", str(q["ram_bytes"]))):
        ld = ld.replace(k, v)
    (work / "link.ld").write_text(ld)
    flags = ["-mthumb", f"-mcpu={target['gcc_cpu']}", *target.get("gcc_flags", [])]
    common = ["arm-none-eabi-gcc", *flags, "-std=c99", "-O2", "-Wall", "-ffunction-sections", "-fdata-sections"]
    # the library alone: its size is what a user links
    objs = []
    for src in ("model.c", "weights.c"):
        o = work / (src[:-2] + ".o")
        _run([*common, "-I", str(c_dir), "-c", str(c_dir / src), "-o", str(o)])
        objs.append(o)
    size_lib = _run([tools["arm-none-eabi-size"], "-t", *map(str, objs)]).stdout.decode()
    tot = size_lib.strip().splitlines()[-1].split()
    lib = {"text": int(tot[0]), "data": int(tot[1]), "bss": int(tot[2])}
    # instrumented model for per-layer counts
    hooked = work / "model_hook.o"
    (work / "hook.h").write_text("void bhpe_hook(int i);\n")
    _run([*common, "-I", str(c_dir), "-DBHPE_LAYER_HOOK(i)=bhpe_hook(i)",
          "-include", str(work / "hook.h"), "-c", str(c_dir / "model.c"), "-o", str(hooked)])
    elf = work / "app.elf"
    _run([*common, "--specs=rdimon.specs", "-T", str(work / "link.ld"), "-I", str(c_dir), "-I", str(work),
          str(work / "start.c"), str(work / "main.c"), str(work / "frames.c"), str(hooked), str(work / "weights.o"),
          "-lc", "-lrdimon", "-Wl,--gc-sections", "-o", str(elf)])
    return {"elf": elf, "lib_size": lib, "work": work}


def qemu_run(elf, target: dict, out_shape, timeout: float = 300) -> dict:
    q = target["qemu"]
    cmd = ["qemu-system-arm", "-M", q["machine"], "-cpu", q.get("cpu", target["gcc_cpu"]), "-nographic",
           "-semihosting", "-icount", "shift=0,sleep=off", "-kernel", str(elf)]
    if not q.get("cpu_flag", True):
        cmd = [c for i, c in enumerate(cmd) if not (c == "-cpu" or (i > 0 and cmd[i - 1] == "-cpu"))]
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BinaryHPEError(f"QEMU did not finish in {timeout} s: {' '.join(cmd)}") from None
    text = r.stdout.decode(errors="replace")
    if "DONE" not in text:
        raise BinaryHPEError(f"QEMU run failed (rc {r.returncode}): {' '.join(cmd)}\n{text[-2000:]}"
                             f"{r.stderr.decode(errors='replace')[-2000:]}")
    cal = re.search(r"CAL (\d+) (\d+)", text)
    ipt = int(cal.group(1)) / max(1, int(cal.group(2)))  # instructions per tick
    outs, frames, layers = [], [], []
    for line in text.splitlines():
        if line.startswith("OUT"):
            outs.append(np.array([int(v) for v in line.split()[1:]], dtype=np.int64).reshape(out_shape))
        elif line.startswith("FRAME"):
            frames.append(int(line.split()[2]) * ipt)
            layers.append([])
        elif line.startswith("L "):
            layers[-1].append(int(line.split()[2]) * ipt)
    return {"outputs": outs, "instructions": frames, "layer_instructions": layers,
            "instructions_per_tick": ipt, "wall_s": time.time() - t0, "command": " ".join(cmd)}


# ---------------------------------------------------------------------------------------------------------
# the flow step
