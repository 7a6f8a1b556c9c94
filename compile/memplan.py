"""Static memory planner of the microcontroller backend: one activation arena, buffers reused over the schedule.

The C backend executes the hardware graph's layers one after the other (the topological order of
``HwGraph.layers``, the *schedule*). Every tensor that the C code materializes is a *buffer*; plumbing kinds
that do not change data (Fork, Fifo, Dwc) make their outputs *aliases* of their input buffer, and a
SlidingWindow's output is never materialized (the convolution reads the SWG's input buffer directly), so its
uses count as uses of that buffer. A fused ``Epilogue`` is one step with one output buffer: the intermediate
tensors of its chain are not tensors of the graph (they live in the loop's local variables), so they get no
buffer. A buffer is live from the step that writes it to the last step that reads
it or any of its aliases (a residual branch forked early stays live until the join that consumes it). The
network output stays live to the end (it is copied out after the last layer); the network input lives in the
caller's buffer, not in the arena.

Placement: buffers sorted by size (largest first, then by start step) are each put at the lowest 4-byte
aligned offset where they overlap no already placed buffer whose lifetime intersects theirs (greedy
first-fit by decreasing size, as TFLite Micro's greedy planner). ``peak`` is the arena size; ``lower_bound``
is the largest sum of live buffer sizes at one step (no placement can do better); ``naive`` is the sum of all
buffers (one buffer each, no reuse).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 4


@dataclass
class Bank:
    """One RAM bank of a target (``ram_banks`` in the target JSON): a name, the bytes the arena may use in it,
    its access cost (``wait_states``: extra cycles a data access, 0 for a TCM) and its address (for the linker
    script)."""

    name: str
    bytes: int
    wait_states: int = 0
    origin: str = ""


@dataclass
class Buffer:
    name: str
    size: int  # bytes
    start: int  # schedule step that writes it
    end: int  # last schedule step that reads it (inclusive)
    offset: int = -1
    heat: float = 1.0  # accesses per byte over a frame (hot buffers go to fast banks)
    bank: str = ""  # the RAM bank it is placed in ("": the one arena)


@dataclass
class MemPlan:
    buffers: dict[str, Buffer] = field(default_factory=dict)
    peak: int = 0
    naive: int = 0
    lower_bound: int = 0
    steps: int = 0
    bank_peak: dict[str, int] = field(default_factory=dict)  # bank -> bytes of its arena
    overflow: dict[str, int] = field(default_factory=dict)  # bank -> bytes beyond its capacity (does not fit)

    def live_bytes(self, step: int) -> int:
        return sum(b.size for b in self.buffers.values() if b.start <= step <= b.end)

    def to_dict(self) -> dict:
        return {"arena_bytes": self.peak, "naive_bytes": self.naive, "lower_bound_bytes": self.lower_bound,
                "saving": round(1 - self.peak / self.naive, 4) if self.naive else 0.0,
                "banks": dict(self.bank_peak),
                "buffers": {n: {"bytes": b.size, "offset": b.offset, "live": [b.start, b.end], "bank": b.bank}
                            for n, b in self.buffers.items()}}


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _first_fit(b: Buffer, placed: list[Buffer]) -> int:
    size = _align(b.size)
    clashes = sorted((p for p in placed if p.start <= b.end and b.start <= p.end), key=lambda p: p.offset)
    off = 0
    for p in clashes:
        if off + size <= p.offset:
            break
        off = max(off, p.offset + _align(p.size))
    return off


def plan(buffers: list[Buffer], steps: int, banks: list[Bank] | None = None) -> MemPlan:
    """Place ``buffers`` (lifetimes in schedule steps ``0..steps-1``) in one arena, or over ``banks`` (fastest
    first): all in the fastest bank if it holds them (largest first, first fit: the one-arena placement);
    else hottest buffers first, each in the fastest bank where it fits (first fit among the buffers of that
    bank live at the same time); if that leaves a buffer without room, again largest first (better packing);
    what fits nowhere goes to the largest bank and is reported in ``overflow``."""
    mp = MemPlan(buffers={b.name: b for b in buffers}, steps=steps)
    if not banks:
        placed: list[Buffer] = []
        for b in sorted(buffers, key=lambda b: (-_align(b.size), b.start, b.name)):
            b.offset, b.bank = _first_fit(b, placed), ""
            placed.append(b)
        mp.bank_peak = {"": max((b.offset + _align(b.size) for b in buffers), default=0)}
    else:
        by_size = sorted(buffers, key=lambda b: (-_align(b.size), -b.heat, b.start, b.name))
        orders = ((by_size, banks[:1]),  # all in the fastest bank, if it holds them
                  (sorted(buffers, key=lambda b: (-b.heat, -_align(b.size), b.start, b.name)), banks),
                  (by_size, banks))
        for order, use in orders:
            per: dict[str, list[Buffer]] = {k.name: [] for k in banks}
            spill = False
            for b in order:
                for k in use:
                    off = _first_fit(b, per[k.name])
                    if off + _align(b.size) <= k.bytes:
                        b.offset, b.bank = off, k.name
                        break
                else:
                    k = max(banks, key=lambda k: k.bytes)
                    b.offset, b.bank = _first_fit(b, per[k.name]), k.name
                    spill = True
                per[b.bank].append(b)
            if not spill:
                break
        mp.bank_peak = {k.name: max((b.offset + _align(b.size) for b in per[k.name]), default=0) for k in banks}
        mp.overflow = {k.name: mp.bank_peak[k.name] - k.bytes for k in banks if mp.bank_peak[k.name] > k.bytes}
    mp.peak = sum(mp.bank_peak.values())
    mp.naive = sum(_align(b.size) for b in buffers)
    mp.lower_bound = max((sum(_align(b.size) for b in buffers if b.start <= s <= b.end) for s in range(steps)),
                         default=0)
    check(mp)
    return mp


def arena_name(bank: str) -> str:
    """C name of a bank's arena (``bhpe_arena`` for the one arena)."""
    return "bhpe_arena" + (f"_{_c_ident(bank)}" if bank else "")


def section_name(bank: str) -> str:
    """The ELF section of a bank's arena (``.bss.bhpe.<bank>``: a .bss input section, so a host link with no
    script puts it in .bss; the target's linker script places it in the bank)."""
    return f".bss.bhpe.{_c_ident(bank)}"


def section_attr(bank: str) -> str:
    if not bank:
        return ""
    return f" BHPE_SECTION(\"{section_name(bank)}\")"


def _c_ident(s: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in s)


def check(mp: MemPlan) -> None:
    """No two buffers of one bank live at the same step may overlap (raises AssertionError)."""
    bs = list(mp.buffers.values())
    for i, a in enumerate(bs):
        assert a.offset >= 0 and a.offset % ALIGN == 0, a
        for b in bs[i + 1:]:
            if a.bank == b.bank and a.start <= b.end and b.start <= a.end:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)
