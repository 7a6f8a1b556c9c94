"""The registry of every hardware layer kind (one class a kind, see ``base.py`` for the interface).

``KINDS`` maps a kind's name to its class: the backends' registries and their coverage test iterate it, and
:func:`kind_of` turns a name into a class or fails naming it. A new kind is one class in this package and one
line in ``_ALL`` below (or :func:`register` for a kind defined elsewhere, a test for instance).
"""

from __future__ import annotations

from binaryhpe import BinaryHPEError

from .base import HwLayer
from .elementwise import AddConst, JoinAdd, MulShift, MultiThreshold, Prelu, Requant, Sign, Threshold
from .epilogue import Epilogue
from .mvu import FcFxpMvu, FcXnorMvu, FxpMvu, XnorMvu
from .plumbing import Concat, Dwc, Fifo, Fork, Split
from .pool import Pool
from .swg import SlidingWindow

_ALL = (
    # matrix-vector units
    XnorMvu, FxpMvu, FcXnorMvu, FcFxpMvu,
    # windows and pooling
    SlidingWindow, Pool,
    # elementwise (per-channel) operations and their fused unit
    Requant, JoinAdd, MulShift, AddConst, Prelu, Sign, Threshold, MultiThreshold, Epilogue,
    # stream plumbing
    Fifo, Fork, Dwc, Concat, Split,
)

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


def check_kind(lay: HwLayer) -> HwLayer:
    """``lay`` itself when its kind is registered, else an error naming the layer and its kind."""
    if KINDS.get(type(lay).__name__) is not type(lay):
        raise BinaryHPEError(f"layer {lay.name}: kind {type(lay).__name__} is not a registered hardware kind "
                             "(compile/kinds/__init__.py)")
    return lay
