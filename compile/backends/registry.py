"""Per-backend registries of emitters: which code turns a hardware layer kind into a backend's output.

Each backend holds one :class:`Registry` (hls4ml's per-layer templates are the model): an emitter is registered
next to its code with ``@REG.emits(KindA, KindB)``, and a kind the backend cannot take is listed with
``REG.refuse(Kind, "why")``. Lookup is by the layer's exact class (a subclass is not silently handled by its
parent's emitter), and a kind that is neither mapped nor refused is an error naming the layer, its kind and the
backend. ``tests/test_coverage.py`` checks every kind of ``compile.kinds.KINDS`` against every backend, and
the backend table of ``docs/backends.md`` is :func:`markdown_table` (``python -m
binaryhpe.compile.backends.registry --write`` rewrites it; the test checks that it has not drifted).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

from binaryhpe import BinaryHPEError


class UnmappedKind(BinaryHPEError):
    """A layer whose kind a backend neither maps nor refuses (a missing registration)."""


class RefusedKind(BinaryHPEError):
    """A layer whose kind a backend refuses, with the reason."""


@dataclass
class Entry:
    kind: type
    fn: object
    role: str = "layer"  # what the backend does with it ("layer", "alias", "window", "op", ...)
    note: str = ""  # one line for the docs table


class Registry:
    """kind class -> emitter of one backend, plus the kinds it refuses and why."""

    def __init__(self, backend: str):
        self.backend = backend
        self.entries: dict[type, Entry] = {}
        self.refused: dict[type, str] = {}

    def _new(self, kind: type) -> None:
        if not isinstance(kind, type):
            raise TypeError(f"{self.backend}: register a kind class, not {kind!r}")
        if kind in self.entries or kind in self.refused:
            raise ValueError(f"{self.backend}: kind {kind.__name__} registered twice")

    def emits(self, *kinds: type, role: str = "layer", note: str = ""):
        """Decorator: ``fn`` emits every kind of ``kinds``."""
        def deco(fn):
            for k in kinds:
                self._new(k)
                self.entries[k] = Entry(k, fn, role, note or _first_line(fn))
            return fn
        return deco

    def refuse(self, kind: type, reason: str) -> None:
        self._new(kind)
        self.refused[kind] = reason

    def entry(self, lay) -> Entry:
        """The entry of ``lay``'s kind; raises :class:`RefusedKind` / :class:`UnmappedKind` naming the layer."""
        k = type(lay)
        if k in self.entries:
            return self.entries[k]
        name = getattr(lay, "name", "?")
        if k in self.refused:
            raise RefusedKind(f"{self.backend} backend: layer {name!r} (kind {k.__name__}) is not taken: "
                              f"{self.refused[k]}")
        raise UnmappedKind(f"{self.backend} backend: layer {name!r} is of kind {k.__name__}, which the "
                           f"{self.backend} backend neither maps nor refuses (no emitter registered)")

    def status(self, kind: type) -> tuple[str, str] | None:
        """``("mapped", note)``, ``("refused", reason)``, or None (not covered)."""
        if kind in self.entries:
            return "mapped", self.entries[kind].note
        if kind in self.refused:
            return "refused", self.refused[kind]
        return None

    def kinds(self) -> list[type]:
        return list(self.entries) + list(self.refused)


def _first_line(fn) -> str:
    doc = (getattr(fn, "__doc__", None) or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ").strip() if doc else ""


def rtl_registry() -> Registry:
    """The RTL backend (``compile/rtlgen.py``) instantiates ``lay.rtl_module`` with ``lay.rtl_params()``: it maps
    exactly the kinds that implement ``rtl_params`` (the kind itself is the RTL emitter)."""
    from binaryhpe.compile.kinds import KINDS
    from binaryhpe.compile.kinds.base import HwLayer

    reg = Registry("rtl")
    for k in KINDS.values():
        if k.rtl_params is not HwLayer.rtl_params:
            reg.entries[k] = Entry(k, k.rtl_params, "layer", "")
        else:
            reg.refused[k] = "the kind defines no RTL module parameters (rtl_params)"
    return reg


def registries() -> dict[str, Registry]:
    """Every backend's registry: rtl, c, hls4ml, finn (the backends of ``binaryhpe build``)."""
    from binaryhpe.compile import cbackend
    from binaryhpe.compile.backends import finn_graph, hls4ml_backend

    return {"rtl": rtl_registry(), "c": cbackend.EMITTERS, "hls4ml": hls4ml_backend.EMITTERS,
            "finn": finn_graph.EMITTERS}


def markdown_table() -> str:
    """The kinds x backends table of docs/backends.md, from the registries: ``yes: what the kind becomes`` (the
    emitter's note) or ``no: the reason`` of a refusal."""
    from binaryhpe.compile.kinds import KINDS

    regs = registries()
    lines = ["| kind | " + " | ".join(regs) + " |", "|---" * (len(regs) + 1) + "|"]
    for k in KINDS.values():
        cells = []
        for reg in regs.values():
            st = reg.status(k)
            if st is None:
                cells.append("**not covered**")
            elif st[0] == "mapped":
                cells.append(f"yes: {st[1]}" if st[1] else "yes")
            else:
                cells.append(f"no: {st[1]}")
        lines.append(f"| {k.__name__} | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


BEGIN = "<!-- generated by binaryhpe.compile.backends.registry.markdown_table(); do not edit by hand -->\n"
END = "<!-- end of generated table -->\n"
DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "backends.md"


def table_in_doc(path: pathlib.Path = DOC) -> str:
    """The generated table as docs/backends.md holds it now (between the markers)."""
    text = pathlib.Path(path).read_text()
    if BEGIN not in text or END not in text:
        raise BinaryHPEError(f"{path}: no generated backend table (markers {BEGIN.strip()!r} ... {END.strip()!r})")
    return text.split(BEGIN, 1)[1].split(END, 1)[0]


def write_doc_table(path: pathlib.Path = DOC) -> None:
    text = pathlib.Path(path).read_text()
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    pathlib.Path(path).write_text(head + BEGIN + markdown_table() + END + tail)


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv:
        write_doc_table()
    else:
        print(markdown_table(), end="")
