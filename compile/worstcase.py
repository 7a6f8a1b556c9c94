"""Worst-case input frames by construction, and what they reach.

``worst_case_frames(g)`` builds, for a hardware graph ``g`` (``compile.lower``), float input frames in the
QONNX input's own layout (1, C, H, W) and scale, named by what they target:

- ``saturate_hi`` / ``saturate_lo`` / ``checker`` / ``random_sat_<i>``: every element *beyond* the input
  format's real range (4x its ends), so the input quantizer clamps each one to its top or bottom integer;
- ``acc_max:<mvu>`` / ``acc_min:<mvu>``: for every matrix-vector unit whose input is a monotone elementwise
  image of the network input (through ``Requant``, ``Sign``, ``Fork``, ``Fifo``, ``Dwc``, epilogues of
  nondecreasing ops, channel ``Split``s and at most one ``SlidingWindow``), the weight-sign pattern of the output channel with the largest reachable sum (and of
  the one with the smallest), written beyond the input range into non-overlapping windows. A monotone
  nondecreasing chain keeps the sign of each element, so that frame drives the accumulator of that channel
  to the largest (smallest) value any frame can give it: ``sum_{w>0} w*hi + sum_{w<0} w*lo``;
- optionally (``search=N``) frames found by a short local search that pushes layers whose saturation bounds
  the constructed frames do not reach (``search:<layer>:hi|lo``).

``reach(g, frames)`` runs ``HwGraph.execute`` on integer frames and reports, per layer, the smallest and
largest value reached against the layer's bounds (a saturating layer: its output format; a matrix-vector
unit: the largest and smallest sums its weights allow on its input format) and the accumulator width in
bits; ``assert_reached`` raises, naming the layer, when a bound that should be reached is not.
``cancelling_weights`` makes test weights whose partial sums pass 2^24 while the sum stays small.
"""

from __future__ import annotations

import math

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.graph import Fmt, HwGraph

#: how far beyond the input format's real range the saturating frames go (a factor on its ends)
BEYOND = 4.0


def fmt_bounds(fmt: Fmt) -> tuple[int, int]:
    """The integer range of a format."""
    if fmt.bipolar:
        return 0, 1
    if not fmt.signed:
        return 0, (1 << fmt.bits) - 1
    return -(1 << (fmt.bits - 1)), (1 << (fmt.bits - 1)) - 1


def _range(bits: int, signed: bool = True) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def input_real_range(g: HwGraph) -> tuple[float, float]:
    """The real values the input quantizer maps to its smallest and largest integer (inside the range)."""
    info = g.tensors[g.input]
    lo, hi = fmt_bounds(info.fmt)
    if info.fmt.bipolar:
        return float(info.fmt.to_real(lo)), float(info.fmt.to_real(hi))
    return float(info.to_real(np.array([[[lo]]]))[0, 0, 0]), float(info.to_real(np.array([[[hi]]]))[0, 0, 0])


def to_frame(g: HwGraph, q_hwc: np.ndarray, beyond: bool = True) -> np.ndarray:
    """Input integers (H, W, C) -> a float frame (1, C, H, W); with ``beyond`` the integers at the input
    format's ends become values ``BEYOND`` times past its real range (the quantizer clamps them back)."""
    fmt = g.tensors[g.input].fmt
    lo, hi = fmt_bounds(fmt)
    q = np.asarray(q_hwc, dtype=np.int64)
    v = g.tensors[g.input].to_real(q) if not fmt.bipolar else fmt.to_real(q)  # with a float input scale
    if beyond:
        rlo, rhi = input_real_range(g)
        span = max(abs(rlo), abs(rhi))
        v = np.where(q == hi, BEYOND * span, np.where(q == lo, -BEYOND * span, v))
    return v.transpose(2, 0, 1)[None].astype(np.float32)


# --- which MVUs see the network input through a monotone chain ----------------------------------------------
_PASS = ("Requant", "Sign", "Fork", "Fifo", "Dwc")


def _monotone(lay) -> bool:
    """True for a one-input layer that maps each element by a nondecreasing function (or only moves it)."""
    kind = type(lay).__name__
    if kind in _PASS:
        return True
    if kind == "Epilogue":
        return all(_monotone(op) for op in lay.ops)
    if kind == "AddConst":
        return True
    if kind == "MulShift":
        return bool(np.all(np.asarray(lay.m) >= 0))
    if kind == "Prelu":
        return bool(np.all(np.asarray(lay.beta) >= 0))
    return False


def _trace_to_input(g: HwGraph, tensor: str):
    """Follow ``tensor`` back to the graph input through monotone one-input layers and channel ``Split``s;
    returns (the SlidingWindow on the way or None, True, the first input channel the tensor's channels start
    at), or (None, False, 0) when the path leaves those layers."""
    swg, t, off = None, tensor, 0
    while t != g.input:
        lay = g.producer(t)
        if lay is None:
            return None, False, 0
        kind = type(lay).__name__
        if kind == "SlidingWindow" and swg is None:
            swg = lay
        elif kind == "Split":
            off += 0 if t == lay.outputs[0] else lay.c1
        elif not _monotone(lay) or len(lay.inputs) != 1:
            return None, False, 0
        t = lay.inputs[0]
    return swg, True, off


def first_level_mvus(g: HwGraph) -> list:
    """(mvu, swg or None) for each matrix-vector unit whose input is a monotone image of (a channel range of)
    the network input."""
    return [(lay, swg) for lay, swg, _ in _first_level(g)]


def _first_level(g: HwGraph) -> list:
    out = []
    for lay in g.layers:
        if not hasattr(lay, "weights") or not hasattr(lay, "n"):
            continue
        swg, ok, off = _trace_to_input(g, lay.inputs[0])
        if ok:
            out.append((lay, swg, off))
    return out


def mvu_bounds(lay, in_range: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel, the smallest and largest sum the weights allow on the layer's input format
    (binary: +-1 inputs; fixed point: inputs in ``in_range``, default the signed ``in_w``-bit range)."""
    w = np.asarray(lay.weights, dtype=np.int64).reshape(lay.cout, -1)
    if type(lay).__name__.endswith("XnorMvu"):
        s = np.abs(w).sum(axis=1)
        return -s, s
    lo, hi = in_range if in_range is not None else _range(lay.in_w)
    pos, neg = np.where(w > 0, w, 0), np.where(w < 0, w, 0)
    return pos.sum(1) * lo + neg.sum(1) * hi, pos.sum(1) * hi + neg.sum(1) * lo


def _pattern_frame(g: HwGraph, lay, swg, signs: np.ndarray, off: int = 0) -> np.ndarray:
    """Input integers (H, W, C) whose windows for ``lay`` carry ``signs`` (+1 -> top, -1 -> bottom) on the
    input channels from ``off``; every other element at the top."""
    h, w, c = g.tensors[g.input].shape
    lo, hi = fmt_bounds(g.tensors[g.input].fmt)
    q = np.full((h, w, c), hi, dtype=np.int64)
    vals = np.where(signs > 0, hi, lo)
    fc = type(lay).__name__.startswith("Fc")
    if fc:
        return vals.reshape(h, w, c)
    if swg is None:  # a 1x1 layer on the frame: every pixel carries the pattern
        q[:, :, off:off + vals.size] = vals.reshape(1, 1, -1)
        return q
    k, s, p = swg.k, swg.s, swg.pad
    pat = vals.reshape(k, k, swg.c)
    step = max(1, math.ceil(k / s))
    for oy in range(0, swg.oh, step):
        for ox in range(0, swg.ow, step):
            y0, x0 = oy * s - p, ox * s - p
            for ky in range(k):
                for kx in range(k):
                    y, x = y0 + ky, x0 + kx
                    if 0 <= y < h and 0 <= x < w:
                        q[y, x, off:off + swg.c] = pat[ky, kx]
    return q


def worst_case_int_frames(g: HwGraph, seed: int = 0, random_frames: int = 2) -> dict[str, np.ndarray]:
    """The constructed worst-case frames as input integers (H, W, C), by name (see the module doc)."""
    h, w, c = g.tensors[g.input].shape
    lo, hi = fmt_bounds(g.tensors[g.input].fmt)
    rng = np.random.default_rng(seed)
    frames = {"saturate_hi": np.full((h, w, c), hi, np.int64), "saturate_lo": np.full((h, w, c), lo, np.int64),
              "checker": np.where((np.add.outer(np.arange(h), np.arange(w)) % 2 == 0)[..., None], hi, lo)
              * np.ones((1, 1, c), np.int64)}
    for i in range(random_frames):
        frames[f"random_sat_{i}"] = np.where(rng.random((h, w, c)) < 0.5, hi, lo).astype(np.int64)
    for lay, swg, off in _first_level(g):
        wts = np.asarray(lay.weights, dtype=np.int64)
        bmin, bmax = mvu_bounds(lay)
        cmax, cmin = int(np.argmax(bmax)), int(np.argmin(bmin))
        frames[f"acc_max:{lay.name}"] = _pattern_frame(g, lay, swg, np.where(wts[cmax] >= 0, 1, -1), off)
        frames[f"acc_min:{lay.name}"] = _pattern_frame(g, lay, swg, np.where(wts[cmin] >= 0, -1, 1), off)
    return frames


def worst_case_frames(g: HwGraph, seed: int = 0, random_frames: int = 2, search: int = 0) -> dict[str, np.ndarray]:
    """Float frames (1, C, H, W) in the QONNX input's layout and scale, by name: the constructed frames of
    ``worst_case_int_frames`` with their extreme integers written beyond the input range, plus, with
    ``search > 0``, frames from ``search_saturation`` for bounds the constructed ones miss."""
    ints = worst_case_int_frames(g, seed, random_frames)
    if search:
        ints.update(search_saturation(g, ints, budget=search, seed=seed))
    return {k: to_frame(g, v) for k, v in ints.items()}


SATURATING = ("Requant", "JoinAdd", "MulShift", "AddConst", "Prelu")


def _units(g: HwGraph) -> list:
    """(unit, epilogue or None): every layer, with the ops of a fused Epilogue listed one by one."""
    out = []
    for lay in g.layers:
        if type(lay).__name__ == "Epilogue":
            out.extend((op, lay) for op in lay.ops)
        else:
            out.append((lay, None))
    return out


def _unit_values(g: HwGraph, env: dict) -> dict:
    """unit name -> its output integers on one frame (the ops inside an Epilogue re-run one by one)."""
    vals = {}
    for lay in g.layers:
        if type(lay).__name__ == "Epilogue":
            x = env[lay.inputs[0]]
            for op in lay.ops:
                x = op.execute([x, env[lay.inputs[1]]] if type(op).__name__ == "JoinAdd" else [x])[0]
                vals[op.name] = x
        else:
            v = env[lay.outputs[0]]
            vals[lay.name] = v[0] if isinstance(v, tuple) else v
    return vals


# --- what the frames reach -------------------------------------------------------------------------------
def layer_bounds(lay, g: HwGraph) -> tuple[int, int] | None:
    """The bounds a layer's output can reach: a matrix-vector unit's extreme sums, a saturating layer's
    output range (``max(y, 0)`` layers: from 0), None for layers that neither sum nor saturate."""
    if hasattr(lay, "weights") and hasattr(lay, "n"):
        bmin, bmax = mvu_bounds(lay)
        return int(bmin.min()), int(bmax.max())
    kind = type(lay).__name__
    if kind in SATURATING:
        lo, hi = _range(lay.out_w)
        return (0 if getattr(lay, "relu", False) else lo), hi
    return None


def reach(g: HwGraph, int_frames) -> list[dict]:
    """Run ``HwGraph.execute`` on every integer frame (H, W, C); per layer with bounds (``layer_bounds``; the
    ops inside a fused ``Epilogue`` count one by one, with ``in`` naming the epilogue): the smallest and largest
    output reached, the bounds, whether each is reached, and the accumulator bits used (``acc_bits``: two's
    complement bits of the largest magnitude; ``past_2_24``: a value beyond float32's exact integers)."""
    frames = list(int_frames.values()) if isinstance(int_frames, dict) else list(int_frames)
    units = [(u, ep, layer_bounds(u, g)) for u, ep in _units(g)]
    units = [t for t in units if t[2] is not None]
    mn: dict = {}
    mx: dict = {}
    for x in frames:
        vals = _unit_values(g, g.execute(x))
        for u, _, _ in units:
            v = vals[u.name]
            a, b = int(np.min(v)), int(np.max(v))
            mn[u.name] = min(mn.get(u.name, a), a)
            mx[u.name] = max(mx.get(u.name, b), b)
    rows = []
    for u, ep, (lo, hi) in units:
        peak = max(abs(mn[u.name]), abs(mx[u.name]))
        rows.append({"layer": u.name, "kind": type(u).__name__, "in": ep.name if ep is not None else None,
                     "lo": lo, "hi": hi, "min": mn[u.name], "max": mx[u.name], "hit_lo": mn[u.name] == lo,
                     "hit_hi": mx[u.name] == hi, "acc_bits": peak.bit_length() + 1, "past_2_24": peak > (1 << 24)})
    return rows


def assert_reached(rows: list[dict], layers=None, kinds=None, sides=("lo", "hi")) -> None:
    """Raise when a selected layer (by name, or every layer of the given kinds) misses one of its bounds."""
    sel = [r for r in rows if (layers is None or r["layer"] in layers) and (kinds is None or r["kind"] in kinds)]
    if not sel:
        raise BinaryHPEError(f"assert_reached: no layer selected (layers={layers}, kinds={kinds})")
    for r in sel:
        for side in sides:
            if not r[f"hit_{side}"]:
                got = r["min"] if side == "lo" else r["max"]
                raise BinaryHPEError(f"layer {r['layer']} ({r['kind']}): reached {got}, not its bound "
                                     f"{r[side]} ({side})")


def search_saturation(g: HwGraph, start: dict, budget: int = 40, seed: int = 0, block: float = 0.1) -> dict:
    """A short local search over saturated frames (every element at the input's top or bottom) for the
    saturating layers whose bounds ``start`` misses: from the best starting frame, flip random blocks of
    elements and keep a flip that moves the layer's extreme toward its bound. ``budget`` executions per
    missed bound, at most 8 bounds. Returns the frames that reach a missed bound, named
    ``search:<layer>:lo|hi``."""
    rng = np.random.default_rng(seed)
    lo_in, hi_in = fmt_bounds(g.tensors[g.input].fmt)
    rows = reach(g, start)
    missed = [(r, s) for r in rows for s in ("hi", "lo")
              if r["kind"] in SATURATING and not r[f"hit_{s}"]]
    found = {}
    for r, side in missed[:8]:
        name = r["layer"]
        sgn = 1 if side == "hi" else -1

        def score(x):
            v = _unit_values(g, g.execute(x))[name]
            return sgn * (np.max(v) if sgn > 0 else np.min(v))

        best = max(start.values(), key=score).copy()
        best_s = score(best)
        for _ in range(budget):
            cand = best.copy()
            m = rng.random(cand.shape) < block
            cand[m] = np.where(cand[m] == hi_in, lo_in, hi_in)
            s = score(cand)
            if s >= best_s:
                best, best_s = cand, s
            if best_s == sgn * r[side]:
                found[f"search:{name}:{side}"] = best
                break
    return found


def cancelling_weights(signs: np.ndarray, cout: int, w_bits: int = 8, rng=None, lead: float = 0.54) -> np.ndarray:
    """Test weights (cout, N) of signed ``w_bits``-bit integers for an input carrying ``signs`` (+1/-1: the
    input at its top/bottom integer). In each row the first ``lead`` part (plus a random few) of the products
    is positive, the rest negative, all near full scale: a sum taken in channel order passes 2^24 when N is
    large (N = 2048 at 8-bit weights and inputs) while the total stays a small fraction of it. Magnitudes are
    odd and vary, so float32 partial sums past 2^24 round."""
    rng = np.random.default_rng(0) if rng is None else rng
    signs = np.where(np.asarray(signs).reshape(-1) >= 0, 1, -1)
    n = signs.size
    top = (1 << (w_bits - 1)) - 1
    out = np.zeros((cout, n), dtype=np.int64)
    for c in range(cout):
        p = int(n * lead) + int(rng.integers(0, max(1, n // 128)))
        mag = rng.integers(top - 8, top + 1, size=n) | 1
        out[c] = signs * np.where(np.arange(n) < p, mag, -mag)
    return out


def simulation_frames(g: HwGraph, seed: int = 0, random: int = 3) -> dict[str, np.ndarray]:
    """The frames a whole-network simulation runs (``binaryhpe build --sim``): ``random`` frames uniform on
    the input's real range (``random_<i>``), then the worst-case frames (``worst_case_frames`` with one
    ``random_sat`` frame). Float (1, C, H, W) arrays in the QONNX input's layout and scale, by name."""
    rng = np.random.default_rng(seed)
    h, w, c = g.tensors[g.input].shape
    rlo, rhi = input_real_range(g)
    out = {f"random_{i}": rng.uniform(rlo, rhi, size=(1, c, h, w)).astype(np.float32) for i in range(random)}
    out.update(worst_case_frames(g, seed=seed, random_frames=1))
    return out
