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
    in_place_of: str = ""  # written over this buffer by an elementwise step (same place, see cbackend._in_place)


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
                "buffers": {n: {"bytes": b.size, "offset": b.offset, "live": [b.start, b.end], "bank": b.bank,
                                **({"in_place_of": b.in_place_of} if b.in_place_of else {})}
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
            if a.in_place_of or b.in_place_of:
                continue  # shares its input's place by construction
            if a.bank == b.bank and a.start <= b.end and b.start <= a.end:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, (a, b)


# ---------------------------------------------------------------------------------------------------------
# tiled execution


class TilingError(ValueError):
    pass


@dataclass
class Tiling:
    """Tiled execution of the early, high-resolution part of the schedule (MCUNetV2-style patches, as row bands):
    the steps ``start .. end`` (indices into the C schedule) run band after band; band ``b`` computes rows
    ``[b*rows, (b+1)*rows)`` of the region's last output (the *reference* tensor) and, working backwards, exactly
    the rows of every tensor of the region that those rows need (a window's rows with its halo: an input row
    range ``[y0*s - pad, (y1-1)*s - pad + k - 1]``, clipped to the image). A tensor made and used only inside the
    region lives in a band buffer (the most rows any band needs); tensors the region makes for later steps (its
    outputs) are full buffers written band by band, each band assigned the rows in proportion to the reference
    tensor's; tensors made before the region are read in place. Rows needed by two bands are computed twice
    (the halo overhead)."""

    start: int
    end: int
    rows: int
    bands: list = field(default_factory=list)  # per band: {step name: (y0, y1)}
    band_lo: list = field(default_factory=list)  # per band: {buffer: first row held}
    held: dict = field(default_factory=dict)  # band buffer -> rows held
    outputs: list = field(default_factory=list)  # the region's full-size outputs

    def steps(self, cm) -> list[str]:
        return cm.steps[self.start:self.end + 1]

    def apply(self, cm) -> None:
        """Compute the bands and give the band buffers their size and row base (``Storage.rows`` / ``base``)."""
        names = self.steps(cm)
        in_region = set(names)
        by_name = {lay.name: lay for lay in cm.g.layers}
        made = {o: s for s in names for o in cm.step_io[s][1]}  # buffer -> step that writes it
        step_at = {n: i for i, n in enumerate(cm.steps)}
        outs = []
        for buf, s in made.items():
            later = [u for u in cm.uses.get(buf, []) if u > self.end]
            if later or buf == cm.root[cm.g.output]:
                outs.append(buf)
        if not outs:
            raise TilingError("the tiled region has no output")
        ref = cm.storage[cm.step_io[names[-1]][1][0]]
        ref_h = ref.h
        self.outputs = outs
        nb = -(-ref_h // self.rows)
        self.bands, self.band_lo, self.held = [], [], {}
        for b in range(nb):
            y0, y1 = b * self.rows, min(ref_h, (b + 1) * self.rows)
            need: dict[str, list[int]] = {}
            for o in outs:
                h = cm.storage[o].h
                need[o] = [y0 * h // ref_h, -(-y1 * h // ref_h)]
            rows: dict[str, tuple] = {}
            for s in reversed(names):
                ins, souts = cm.step_io[s]
                r = [need[o] for o in souts if o in need and need[o][0] < need[o][1]]
                if not r:
                    rows[s] = (0, 0)
                    continue
                lo, hi = min(x[0] for x in r), max(x[1] for x in r)
                rows[s] = (lo, hi)
                for o in souts:
                    need[o] = [lo, hi]
                for t, (ilo, ihi) in _input_rows(cm, by_name.get(s), s, ins, lo, hi):
                    root = cm.root[t]
                    if root in made and made[root] in in_region:
                        cur = need.get(root)
                        need[root] = [ilo, ihi] if cur is None or cur[0] >= cur[1] else \
                            [min(cur[0], ilo), max(cur[1], ihi)]
            self.bands.append({s: rows[s] for s in names})
            lo_map = {}
            for buf in made:
                if buf in outs:
                    continue
                lo, hi = need.get(buf, (0, 0))
                lo_map[buf] = lo
                self.held[buf] = max(self.held.get(buf, 0), hi - lo)
            self.band_lo.append(lo_map)
        for buf, n in self.held.items():
            st = cm.storage[buf]
            st.rows = max(1, n)
            st.base = f"R_{st.cname}"
        del step_at

    def lifetime(self, cm, name: str, start: int, end: int) -> tuple[int, int]:
        """A buffer's lifetime in the planner: the region's outputs live from the region's first step (every
        band writes them), what the region reads from before it lives to the region's last step."""
        if name in self.outputs:
            start = min(start, self.start)
        elif start < self.start and end >= self.start:
            end = max(end, self.end)
        return start, end

    def rows_computed(self, cm) -> dict[str, int]:
        """Per step of the region: output rows computed over all bands (halo rows counted each time)."""
        out: dict[str, int] = {}
        for band in self.bands:
            for s, (y0, y1) in band.items():
                out[s] = out.get(s, 0) + max(0, y1 - y0)
        return out

    def report(self, cm) -> dict:
        computed = self.rows_computed(cm)
        full = {s: cm.storage[cm.step_io[s][1][0]].h for s in self.steps(cm)}
        return {"region": {"first": self.steps(cm)[0], "last": self.steps(cm)[-1], "steps": len(full)},
                "tile_rows": self.rows, "bands": len(self.bands),
                "reference_tensor": cm.step_io[self.steps(cm)[-1]][1][0],
                "tile_shape": [self.rows, cm.storage[cm.step_io[self.steps(cm)[-1]][1][0]].w],
                "band_buffers": {b: {"rows": n, "bytes": cm.storage[b].nbytes} for b, n in self.held.items()},
                "outputs": list(self.outputs),
                "rows_computed": sum(computed.values()), "rows_untiled": sum(full.values()),
                "halo_overhead_rows": round(sum(computed.values()) / max(1, sum(full.values())) - 1, 4)}


def _input_rows(cm, lay, step: str, ins: list[str], y0: int, y1: int):
    """(input tensor, rows [lo, hi)) that output rows [y0, y1) of ``step`` read."""
    from binaryhpe.compile.kinds.mvu import FcFxpMvu, FcXnorMvu, FxpMvu, XnorMvu
    from binaryhpe.compile.kinds.pool import Pool

    if lay is None:  # the bipolar input packing step: no arena input
        return []
    if isinstance(lay, (FcXnorMvu, FcFxpMvu)):
        raise TilingError(f"layer {lay.name!r}: a fully connected layer reads the whole frame")
    out = []
    for j, t in enumerate(ins):
        win = None
        if j == 0 and isinstance(lay, (XnorMvu, FxpMvu)):
            win = cm.windows.get(t)
            if win is None:
                raise TilingError(f"layer {lay.name!r}: an MVU without a window reads the whole frame")
            k, s, pad, h = win.kh, win.s, win.pad, win.h
        elif j == 0 and isinstance(lay, Pool):
            k, s, pad, h = lay.k, lay.s, lay.pad, lay.h
        else:
            out.append((t, (y0, y1)))
            continue
        lo, hi = max(0, y0 * s - pad), min(h, (y1 - 1) * s - pad + k)
        out.append((t, (lo, max(lo, hi))))
    return out


#: kinds a tiled region may hold (row-local: each output row needs a bounded range of input rows)
def tileable(lay) -> bool:
    from binaryhpe.compile.kinds.elementwise import _Elementwise
    from binaryhpe.compile.kinds.epilogue import Epilogue
    from binaryhpe.compile.kinds.mvu import FcFxpMvu, FcXnorMvu, FxpMvu, XnorMvu
    from binaryhpe.compile.kinds.plumbing import Concat, Split
    from binaryhpe.compile.kinds.pool import Pool

    if lay is None:
        return True  # the input packing step
    if isinstance(lay, (FcXnorMvu, FcFxpMvu)):
        return False
    return isinstance(lay, (XnorMvu, FxpMvu, Pool, Epilogue, _Elementwise, Concat, Split))
