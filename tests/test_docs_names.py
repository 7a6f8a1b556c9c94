"""Docs name only what exists: every backticked ``binaryhpe.`` name in README.md and docs/*.md resolves (module
imported, the rest by getattr), and every backticked repository path (``compile/...py``, ``tests/test_rtl_*.py``,
``hw/rtl``, ...) is there."""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# `binaryhpe.a.b.C`, also as a call: `binaryhpe.sim.mcu.build_mcu(g, OUT, NAME, sim)`; names inside the
# package written without its prefix (`compile.lower.lower`) are checked as `binaryhpe.compile.lower.lower`
NAME_RE = re.compile(r"`((?:binaryhpe|compile|train|sim)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?:\([^`]*\))?`")
# `compile/passes.py`, `tests/test_rtl_*.py`, `benchmarks/mcu_figures.py`, `hw/rtl`, `.ci/setup`
PATH_RE = re.compile(r"`((?:compile|tests|benchmarks|sim|train|hw|notebooks|docs|\.ci)/[A-Za-z0-9_./*-]*)`")


def resolve(dotted: str) -> str | None:
    """None when ``dotted`` names a module or an attribute reachable from one; else why not."""
    parts = dotted.split(".")
    # the longest importable prefix, then attributes
    for i in range(len(parts), 0, -1):
        mod_name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name is None or not mod_name.startswith(e.name):  # the module exists, a dependency is missing
                return f"importing {mod_name} fails: {e}"
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return f"{mod_name} has no attribute {'.'.join(parts[i:])}"
            obj = getattr(obj, attr)
        return None
    return "no importable module"


def doc_names():
    found = []
    for doc in DOCS:
        for lineno, line in enumerate(doc.read_text().splitlines(), 1):
            for m in NAME_RE.finditer(line):
                name = m.group(1)
                found.append((doc.relative_to(ROOT).as_posix(), lineno,
                              name if name.startswith("binaryhpe.") else "binaryhpe." + name))
    return found


def doc_paths():
    found = []
    for doc in DOCS:
        for lineno, line in enumerate(doc.read_text().splitlines(), 1):
            for m in PATH_RE.finditer(line):
                found.append((doc.relative_to(ROOT).as_posix(), lineno, m.group(1)))
    return found


def test_docs_name_something():
    # the scan itself finds what the docs are known to name (a broken pattern would make the tests below vacuous)
    names = {n for _, _, n in doc_names()}
    paths = {p for _, _, p in doc_paths()}
    assert "binaryhpe.train.smplx_model" in names
    assert "compile/estimate.py" in paths


@pytest.mark.parametrize("doc", [d.relative_to(ROOT).as_posix() for d in DOCS])
def test_backticked_names_resolve(doc):
    bad = [f"{d}:{ln}: `{n}`: {why}" for d, ln, n in doc_names() if d == doc for why in [resolve(n)] if why]
    assert not bad, "names in the docs that do not exist:\n" + "\n".join(bad)


@pytest.mark.parametrize("doc", [d.relative_to(ROOT).as_posix() for d in DOCS])
def test_backticked_paths_exist(doc):
    bad = [f"{d}:{ln}: `{p}`" for d, ln, p in doc_paths() if d == doc and not list(ROOT.glob(p))]
    assert not bad, "files named in the docs that are not in the repository:\n" + "\n".join(bad)


def test_resolve_rejects_missing_names():
    # the check is not vacuous: a made-up pass and a made-up module are both caught, real ones pass
    assert resolve("binaryhpe.compile.passes.NoSuchPass") is not None
    assert resolve("binaryhpe.compile.no_such_module") is not None
    assert resolve("binaryhpe.compile.graph.HwGraph") is None
    assert resolve("binaryhpe.train") is None
