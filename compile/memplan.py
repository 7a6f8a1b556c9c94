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
class Buffer:
    name: str
    size: int  # bytes
    start: int  # schedule step that writes it
    end: int  # last schedule step that reads it (inclusive)
    offset: int = -1


@dataclass
class MemPlan:
    buffers: dict[str, Buffer] = field(default_factory=dict)
    peak: int = 0
    naive: int = 0
    lower_bound: int = 0
    steps: int = 0

    def live_bytes(self, step: int) -> int:
        return sum(b.size for b in self.buffers.values() if b.start <= step <= b.end)

    def to_dict(self) -> dict:
        return {"arena_bytes": self.peak, "naive_bytes": self.naive, "lower_bound_bytes": self.lower_bound,
                "saving": round(1 - self.peak / self.naive, 4) if self.naive else 0.0,
                "buffers": {n: {"bytes": b.size, "offset": b.offset, "live": [b.start, b.end]}
                            for n, b in self.buffers.items()}}


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan(buffers: list[Buffer], steps: int) -> MemPlan:
    """Place ``buffers`` (lifetimes in schedule steps ``0..steps-1``) in one arena."""
    mp = MemPlan(buffers={b.name: b for b in buffers}, steps=steps)
    placed: list[Buffer] = []
    for b in sorted(buffers, key=lambda b: (-_align(b.size), b.start, b.name)):
        size = _align(b.size)
        clashes = sorted((p for p in placed if p.start <= b.end and b.start <= p.end), key=lambda p: p.offset)
        off = 0
        for p in clashes:
            if off + size <= p.offset:
                break
            off = max(off, p.offset + _align(p.size))
        b.offset = off
        placed.append(b)
    mp.peak = max((b.offset + _align(b.size) for b in buffers), default=0)
    mp.naive = sum(_align(b.size) for b in buffers)
    mp.lower_bound = max((sum(_align(b.size) for b in buffers if b.start <= s <= b.end) for s in range(steps)),
                         default=0)
    check(mp)
    return mp


def check(mp: MemPlan) -> None:
    """No two buffers live at the same step may overlap in the arena (raises AssertionError)."""
    bs = list(mp.buffers.values())
    for i, a in enumerate(bs):
        assert a.offset >= 0 and a.offset % ALIGN == 0, a
        for b in bs[i + 1:]:
            if a.start <= b.end and b.start <= a.end:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)
