"""The module import graph of binaryhpe has no cycle, function-level imports included.

The graph is built from the source (``ast``: every ``import`` / ``from ... import`` anywhere in a file, in a
function body too), not by importing, so a cycle hidden behind a deferred import is found as well. An edge
goes to a module of the package (``from binaryhpe.compile import estimate`` names the module ``estimate``).
Two kinds of import never run when a module is imported and are no edge: those under
``if __name__ == "__main__":`` (a script's entry point) and under ``if TYPE_CHECKING:`` (annotations only).
"""

from __future__ import annotations

import ast
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = "binaryhpe"
SKIP = {"tests", "benchmarks", "notebooks", "docs", "hw", "build", "dist"}


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    files = []
    for d, dirs, names in os.walk(ROOT):
        rel_d = pathlib.Path(d).relative_to(ROOT)
        dirs[:] = sorted(x for x in dirs if not x.startswith(".") and x != "__pycache__"
                         and not (rel_d == pathlib.Path(".") and x in SKIP))
        files += [pathlib.Path(d) / n for n in names if n.endswith(".py")]
    for f in files:
        rel = f.relative_to(ROOT)
        parts = rel.with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join((PKG, *parts))] = f
    return mods


def _never_imported(tree) -> set[int]:
    """ids of the nodes under ``if __name__ == "__main__":`` or ``if TYPE_CHECKING:``."""
    skip = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        t = ast.unparse(node.test)
        if t in ("__name__ == '__main__'", "TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def _imports(mod: str, path: pathlib.Path, mods: dict) -> set[str]:
    out = set()
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _never_imported(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                src = ".".join(base + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            names = [src] + [f"{src}.{a.name}" for a in node.names]
        else:
            continue
        for n in names:
            while n and n not in mods:  # "binaryhpe.compile.flow.build" -> the module binaryhpe.compile.flow
                n = n.rpartition(".")[0]
            if n and n != mod and not mod.startswith(n + "."):  # a module's own parent packages are no edge
                out.add(n)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, mods) for m, p in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_graph_is_read_from_the_source():
    g = import_graph()
    # a module-level and a function-level import are both edges
    assert "binaryhpe.compile.graph" in g["binaryhpe.compile.passes"]
    assert "binaryhpe.compile.flow" in g["binaryhpe.cli"]  # imported inside build's command function
    assert "binaryhpe.sim.netsim" in g["binaryhpe.compile.flow"]  # inside step_simulate


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_compile_and_sim_do_not_import_each_other_in_a_cycle():
    """Package level: compile/ may use sim/ (the flow runs the simulators) or the other way, not both."""
    g = import_graph()

    def uses(a: str, b: str) -> list[str]:
        return sorted(f"{m} -> {t}" for m, ts in g.items() if m.startswith(a) for t in ts if t.startswith(b))

    c2s, s2c = uses("binaryhpe.compile", "binaryhpe.sim"), uses("binaryhpe.sim", "binaryhpe.compile")
    assert not (c2s and s2c), f"compile -> sim: {c2s}; sim -> compile: {s2c}"
