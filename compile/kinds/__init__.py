"""The registry of every hardware layer kind (one class a kind, see ``base.py`` for the interface).

``KINDS`` maps a kind's name to its class: every public ``HwLayer`` subclass defined in the modules of this
package (``_MODULES``, in that order), so a new kind in one of them is registered by being written; a kind
defined elsewhere (a test, a plug-in) joins with :func:`register`. The backends' registries and their coverage
test iterate ``KINDS``, and :func:`kind_of` turns a name into a class or fails naming it.
"""

from __future__ import annotations

from binaryhpe import BinaryHPEError

from . import elementwise, epilogue, mvu, plumbing, pool, swg
from .base import HwLayer

#: the modules whose public HwLayer subclasses are the kinds (matrix-vector units, windows and pooling,
#: elementwise operations and their fused unit, stream plumbing)
_MODULES = (mvu, swg, pool, elementwise, epilogue, plumbing)


def _defined_kinds(module) -> list[type[HwLayer]]:
    """The public HwLayer subclasses defined in ``module`` (not imported into it), in source order."""
    return [v for k, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, HwLayer) and v.__module__ == module.__name__
            and not k.startswith("_")]


_ALL = tuple(cls for m in _MODULES for cls in _defined_kinds(m))

#: kind name -> class, every hardware kind the compiler knows
KINDS: dict[str, type[HwLayer]] = {cls.__name__: cls for cls in _ALL}


def kind_of(name: str) -> type[HwLayer]:
    """The class of kind ``name``; an unknown name is an error naming it."""
    try:
        return KINDS[name]
    except KeyError:
        raise BinaryHPEError(f"unknown hardware kind {name!r} (known: {', '.join(sorted(KINDS))})") from None


def register(cls: type[HwLayer]) -> type[HwLayer]:
    """Add a kind defined outside this package (usable as a class decorator); a name taken by another class
    is an error."""
    if not (isinstance(cls, type) and issubclass(cls, HwLayer)):
        raise BinaryHPEError(f"{cls!r} is not a hardware kind (a subclass of HwLayer)")
    old = KINDS.get(cls.__name__)
    if old is not None and old is not cls:
        raise BinaryHPEError(f"kind name {cls.__name__!r} is taken by {old.__module__}.{old.__qualname__}")
    KINDS[cls.__name__] = cls
    return cls


def unregister(cls: type[HwLayer]) -> None:
    """Remove a kind added with :func:`register`."""
    if KINDS.get(cls.__name__) is cls and cls not in _ALL:
        del KINDS[cls.__name__]
