"""The per-backend emitter registry class (:class:`Registry`) and its errors.

A backend module (``compile/cbackend.py``, ``compile/mcu_cycles.py``, ``compile/backends/hls4ml_backend.py``,
``compile/backends/finn_graph.py``) holds one ``Registry`` and imports it from here; the aggregate view over all
backends (``registries()``, the docs table, the coverage test) is ``compile/backends/registry.py``, which
imports the backends. Keeping the two apart keeps the import graph free of cycles (``tests/test_imports.py``).
"""

from __future__ import annotations

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
