"""From the hardware graph to the engine's program: engine ops, DRAM layout, tiling, descriptors, DRAM image.

Input: the hardware graph after lowering and the passes up to the epilogue stage
(``run_passes(g, standard_passes(), stop="forks")``; forks, FIFOs and width converters, if present, are
aliases of their input). One engine op (one descriptor) per

- ``SlidingWindow`` + ``XnorMvu`` / ``FxpMvu``: a convolution (mode XNOR or MAC); ``FcXnorMvu`` /
  ``FcFxpMvu``: a convolution whose window is the whole (H, W, C) input (``kh = H``, ``kw = W``);
- ``Pool``: pool max / pool sum;
- a stand-alone ``Epilogue``: pool sum with a 1 x 1 window (a copy through the epilogue; pool max for a
  bipolar input, whose 1-bit elements only max pooling takes);
- a ``PhaseShuffle`` (a transposed convolution, lowered by polyphase decomposition) fed by a convolution op:
  that op becomes ``s*s`` ops, one a phase, each writing its pixels straight into the shuffled tensor (strided
  stores: ``out_pix_stride`` and ``out_row_stride``; its own top and left padding, ``pad`` and ``pad_x``);

and an ``Epilogue`` whose ``inputs[0]`` is the only reader of an MVU's or Pool's output is fused into that
op (its ops run on the accumulators; its ``inputs[1]`` is the JoinAdd's tensor b). ``Concat`` outputs are
written in place by their producers at their channel offset and ``Split`` outputs are read in place (views
of one DRAM tensor, a pixel stride wider than the view); a Concat input that cannot be a view (the graph
input, a Split output, the input of another Concat) gets a copy op. The graph input and output are DRAM
tensors (``Program.input`` / ``Program.output``).

Everything the engine cannot take is refused with one ``BinaryHPEError`` line naming the layer and the
reason (``EngineRefusal``). The numbers that decide the tiling are the buffer sizes of ``EngineConfig``:
``ct`` output channels a tile (a multiple of PE whose weights fit ``WbDepth``, or half of it when a layer needs
several tiles: the RTL then loads the next tile's weights during the current tile's passes), ``owt`` output pixels a strip
(``r * iwt * cw_in <= LbDepth``, ``owt * cw_b <= BbDepth / 2``, ``owt * cw_out <= ObDepth / 2``), constants
``n_cols * ng <= CbDepth``.

DRAM image: descriptors from address 0 (``Program.desc_addr``), then the constants and weights of each op,
then the activation tensors, each root tensor placed by its lifetime (first writer to last reader) so that
tensors whose lifetimes do not overlap share memory (``Program.layout`` reports the bytes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.engine import descriptor as D
from binaryhpe.compile.engine import image as IM
from binaryhpe.compile.engine.config import EngineConfig
from binaryhpe.compile.graph import Fmt, HwGraph

#: alignment (bytes) of every region, constant block, weight block and tensor in the image
ALIGN = 64
#: alignment of the regions (descriptors, constants, weights, activations)
REGION_ALIGN = 4096
#: store the graph input space-to-depth for a stride-2 fixed-point stem (``_Builder._space_to_depth``)
SPACE_TO_DEPTH = True
#: the pool modes that take bipolar (1-bit) elements: max (an OR of the bits); a sum of bipolar bits has no use
BIPOLAR_POOL_MODES = ("pool_max",)


class EngineRefusal(BinaryHPEError):
    """The engine cannot run a layer (the message names the layer and the reason)."""


def _refuse(layer: str, reason: str) -> EngineRefusal:
    return EngineRefusal(f"engine: layer {layer}: {reason}")


def container(bits: int, bipolar: bool, layer: str) -> int:
    """The element container (1, 8, 16 or 32 bits) of a value of ``bits`` bits."""
    if bipolar:
        return 1
    for ew in (8, 16, 32):
        if bits <= ew:
            return ew
    raise _refuse(layer, f"a value of {bits} bits does not fit the engine's widest element container (32 bits)")


def _align(n: int, a: int = ALIGN) -> int:
    return -(-n // a) * a


# ---------------------------------------------------------------------------------------------------------
@dataclass
class TensorPlace:
    """Where one tensor (or a view: a channel slice of a wider root tensor) lives in DRAM."""

    name: str
    shape: tuple          # (H, W, C) of this tensor (the view's own channels)
    fmt: Fmt
    root: str = ""        # the DRAM tensor holding it (itself when it is not a view)
    ch_off: int = 0       # first channel in the root
    ew: int = 8           # element container of the root
    addr: int = 0         # byte address of pixel (0, 0) at the channel offset
    pix_stride: int = 0   # words between pixels (the root's words a pixel)

    @property
    def signed(self) -> bool:
        return bool(self.fmt.signed) and not self.fmt.bipolar

    @property
    def words(self) -> int:
        """Words of one pixel of this view's channels."""
        return IM.pixel_words(self.shape[2], self.ew)

    @property
    def lg_ew(self) -> int:
        return int(math.log2(self.ew))

    def describe(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "format": str(self.fmt), "root": self.root,
                "channel_offset": self.ch_off, "ew": self.ew, "addr": self.addr, "pix_stride": self.pix_stride}


@dataclass
class Buffer:
    """A root tensor's DRAM region and lifetime (op indices; -1: before the program, n: after it)."""

    name: str
    nbytes: int
    first: int
    last: int
    addr: int = 0


@dataclass
class EngineOp:
    """One descriptor: the layer it runs (``name``), the graph layers it covers, its fields and data."""

    name: str
    layers: list
    mode: str
    input: str
    output: str
    b: str | None = None
    header: dict = field(default_factory=dict)
    ops: list = field(default_factory=list)         # epilogue op dicts (descriptor.OP_FIELDS)
    op_kinds: list = field(default_factory=list)    # kind names of the epilogue ops (reports)
    cols: list = field(default_factory=list)        # constant columns, each (cout,) int
    weights: np.ndarray | None = None               # (cout, kh, kw, c_in) ints (+-1 for XNOR)
    geom: dict = field(default_factory=dict)        # h, w, c_in, kh, kw, stride, pad, oh, ow, cout
    result_bits: int = 0                            # bits of the values the op writes
    op_counts: dict = field(default_factory=lambda: {"binary": 0, "fixed": 0})
    weight_bytes: int = 0
    const_bytes: int = 0
    #: a phase (ry, rx) of a transposed convolution (``s`` phases a side): the op writes the pixels
    #: (s*m + ry, s*n + rx) of its output tensor (``_Builder._shuffle``); None for an ordinary op
    phase: tuple | None = None

    def describe(self) -> dict:
        h = self.header
        return {"name": self.name, "layers": list(self.layers), "mode": self.mode, "input": self.input,
                "b": self.b, "output": self.output, "epilogue": list(self.op_kinds),
                "shape_in": [h.get("h"), h.get("w"), h.get("c_in")],
                "shape_out": [h.get("oh"), h.get("ow"), h.get("cout")],
                "kernel": [h.get("kh"), h.get("kw")], "stride": h.get("stride"), "pad": h.get("pad"),
                "pad_x": h.get("pad_x"), "phase": list(self.phase) if self.phase else None,
                "tiling": {k: h.get(k) for k in ("ct", "n_ct", "owt", "n_strips", "iwt", "r", "wtile_words", "ng")},
                "weight_bytes": self.weight_bytes, "const_bytes": self.const_bytes,
                "op_counts": dict(self.op_counts)}


@dataclass
class Program:
    """The engine program of one hardware graph for one ``EngineConfig``."""

    cfg: EngineConfig
    ops: list
    tensors: dict
    buffers: dict
    descriptors: bytes
    image: bytearray
    desc_addr: int
    input: TensorPlace
    output: TensorPlace
    layout: dict
    #: the graph input's (H, W, C) and whether the frame is stored space-to-depth ((H/2, W/2, 4C), ``input``)
    input_shape: tuple = ()
    input_s2d: bool = False

    # --- frames in and out ----------------------------------------------------------------------------
    def write_input(self, image: bytearray, q_hwc: np.ndarray) -> bytearray:
        """Write a frame (the hardware graph's input integers, (H, W, C)) into ``image`` (in place; returned)."""
        q = np.asarray(q_hwc, dtype=np.int64)
        t = self.input
        want = tuple(self.input_shape or t.shape)
        if q.shape != want:
            raise BinaryHPEError(f"engine input {t.name}: frame shape {q.shape} differs from {want}")
        if self.input_s2d:  # pixel (y', x') channel (dy*2 + dx)*C + c = frame pixel (2y' + dy, 2x' + dx) channel c
            h, w, c = q.shape
            q = q.reshape(h // 2, 2, w // 2, 2, c).transpose(0, 2, 1, 3, 4).reshape(h // 2, w // 2, 4 * c)
        lo, hi = (0, 1) if t.fmt.bipolar else ((-(1 << (t.fmt.bits - 1)), (1 << (t.fmt.bits - 1)) - 1)
                                                if t.fmt.signed else (0, (1 << t.fmt.bits) - 1))
        if q.size and (q.min() < lo or q.max() > hi):
            raise BinaryHPEError(f"engine input {t.name}: values {q.min()}..{q.max()} outside format {t.fmt}")
        IM.write_tensor(image, t.addr, t.pix_stride, q, t.ew, t.words)
        return image

    def read_tensor(self, image, name: str) -> np.ndarray:
        """The integers of tensor ``name`` (a view reads its own channels) in ``image``."""
        if name not in self.tensors:
            raise BinaryHPEError(f"engine program: tensor {name!r} is not in DRAM (an accumulator fused into its "
                                 "epilogue, or not a tensor of the graph)")
        t = self.tensors[name]
        return IM.read_tensor(image, t.addr, t.pix_stride, t.shape, t.ew, t.words, t.signed)

    def read_output(self, image) -> np.ndarray:
        """The output frame (H, W, C) in the hardware graph's integers (bipolar: 0/1)."""
        return self.read_tensor(image, self.output.name)

    def fresh_image(self) -> bytearray:
        """A copy of the program's DRAM image (descriptors, constants, weights; activations zero)."""
        return bytearray(self.image)

    def describe(self) -> dict:
        return {"config": self.cfg.to_dict(), "desc_addr": self.desc_addr, "layout": dict(self.layout),
                "input": self.input.describe(), "output": self.output.describe(),
                "ops": [dict(op.describe(), layer_id=i) for i, op in enumerate(self.ops)],
                "tensors": {k: v.describe() for k, v in self.tensors.items()},
                "buffers": {k: {"addr": b.addr, "bytes": b.nbytes, "first_op": b.first, "last_op": b.last}
                            for k, b in self.buffers.items()}}


# ---------------------------------------------------------------------------------------------------------
# the epilogue ops


def _epilogue_ops(epi, layer: str) -> tuple[list, list, list, int]:
    """(op dicts, op kind names, constant columns, result bits) of an ``Epilogue``; refuses what the engine's
    epilogue cannot compute exactly within ValW = 40 bits."""
    ops, kinds, cols = [], [], []
    width = 0
    for op in epi.ops:
        k = type(op).__name__
        if k not in D.OPCODES:
            raise _refuse(layer, f"epilogue op {op.name} is a {k}, which the engine's epilogue does not have")
        d = {"opcode": D.OPCODES[k]}
        out_w = 1 if k in ("Sign", "Threshold") else int(op.out_w)
        in_w = int(op.in_w)
        if k == "Requant":
            d.update(shift=int(op.shift), relu=int(bool(op.relu)))
            inter = in_w + max(0, -int(op.shift))
        elif k in ("MulShift", "Prelu"):
            const = op.m if k == "MulShift" else op.beta
            if op.const_w > D.CONST_W:
                raise _refuse(layer, f"op {op.name}: {op.const_w}-bit constants, the engine holds {D.CONST_W}")
            d.update(shift=int(op.shift), col=len(cols))
            cols.append(np.asarray(const, dtype=np.int64))
            inter = in_w + int(op.const_w) + max(0, -int(op.shift))
        elif k == "AddConst":
            if op.const_w > D.CONST_W:
                raise _refuse(layer, f"op {op.name}: {op.const_w}-bit constants, the engine holds {D.CONST_W}")
            d.update(col=len(cols))
            cols.append(np.asarray(op.b, dtype=np.int64))
            inter = max(in_w, int(op.const_w)) + 1
        elif k == "JoinAdd":
            d.update(shift_a=int(op.shift_a), shift_b=int(op.shift_b))
            inter = max(in_w + int(op.shift_a), int(op.in_b_w) + int(op.shift_b)) + 1
        elif k == "Sign":
            inter = in_w
        else:  # Threshold
            if op.thr_w > D.CONST_W:
                raise _refuse(layer, f"op {op.name}: {op.thr_w}-bit thresholds, the engine holds {D.CONST_W}")
            d.update(col=len(cols))
            cols.append(np.asarray(op.thresholds, dtype=np.int64))
            cols.append(np.asarray(op.neg, dtype=np.int64))
            inter = max(in_w, int(op.thr_w))
        if inter > D.VAL_W or out_w > D.VAL_W:
            raise _refuse(layer, f"epilogue op {op.name} ({k}) needs {max(inter, out_w)}-bit values, the engine's "
                          f"epilogue holds {D.VAL_W}")
        d["out_w"] = out_w
        ops.append(d)
        kinds.append(k)
        width = out_w
    if len(cols) > D.MAX_COLS:
        raise _refuse(layer, f"the epilogue needs {len(cols)} constant columns, the engine has {D.MAX_COLS}")
    return ops, kinds, cols, width


# ---------------------------------------------------------------------------------------------------------
# the compiler


def _copy_mode(fmt: Fmt) -> str:
    """A 1x1 window's mode: sum (the value; the brief's stand-alone epilogue), max for bipolar elements (the bit)."""
    return "pool_max" if fmt.bipolar else "pool_sum"


_ALIAS_KINDS = ("Fork", "Fifo", "Dwc")
_CONV_KINDS = ("XnorMvu", "FxpMvu")
_FC_KINDS = ("FcXnorMvu", "FcFxpMvu")


class _Builder:
    def __init__(self, g: HwGraph, cfg: EngineConfig):
        self.g, self.cfg = g, cfg
        self.alias: dict[str, str] = {}
        for lay in g.layers:
            if type(lay).__name__ in _ALIAS_KINDS:
                for o in lay.outputs:
                    self.alias[o] = lay.inputs[0]
        self.cons: dict[str, list] = {}
        for lay in g.layers:
            if type(lay).__name__ in _ALIAS_KINDS:
                continue
            for t in lay.inputs:
                self.cons.setdefault(self.r(t), []).append(lay)
        self.out_name = self.r(g.output)
        self.in_name = self.r(g.input)
        self.ops: list[EngineOp] = []
        self.producer: dict[str, EngineOp] = {}      # tensor -> op writing it
        self.parent: dict[str, tuple] = {}           # view -> (parent tensor, channel offset, layer name)
        self.fused: dict[int, EngineOp] = {}
        self.swg_of: dict[str, object] = {}
        self.extra_tensors: dict[str, tuple] = {}    # copies: name -> (shape, fmt)
        self.concat_outputs: set[str] = set()        # tensors written in parts (their producers write views)
        self.s2d = False                             # the graph input is stored space-to-depth (see _space_to_depth)

    def r(self, t: str) -> str:
        while t in self.alias:
            t = self.alias[t]
        return t

    def info(self, t: str):
        if t in self.extra_tensors:
            shape, fmt = self.extra_tensors[t]
            from binaryhpe.compile.graph import TensorInfo
            return TensorInfo(name=t, shape=shape, fmt=fmt)
        return self.g.tensors[t]

    # --- fusion -----------------------------------------------------------------------------------------
    def _fusable_epilogue(self, out: str):
        cons = self.cons.get(out, [])
        if out == self.out_name or len(cons) != 1 or type(cons[0]).__name__ != "Epilogue":
            return None
        epi = cons[0]
        if self.r(epi.inputs[0]) != out or (len(epi.inputs) > 1 and self.r(epi.inputs[1]) == out):
            return None
        return epi

    def _attach(self, op: EngineOp, raw_out: str, raw_bits: int) -> bool:
        """Fuse the epilogue that alone reads ``raw_out`` into ``op``; returns whether it did."""
        epi = self._fusable_epilogue(raw_out)
        if epi is None:
            op.output = raw_out
            op.result_bits = raw_bits
            return False
        self.fused[id(epi)] = op  # added to the program at the epilogue's place (after its tensor b)
        op.layers.append(epi.name)
        op.output = self.r(epi.outputs[0])
        op.ops, op.op_kinds, op.cols, op.result_bits = _epilogue_ops(epi, epi.name)
        if epi.join is not None:
            op.b = self.r(epi.inputs[1])
        return True

    def _add(self, op: EngineOp) -> None:
        self.ops.append(op)
        self.producer[op.output] = op

    # --- layers -----------------------------------------------------------------------------------------
    def build(self) -> None:
        for lay in self.g.layers:
            kind = type(lay).__name__
            if kind in _ALIAS_KINDS:
                continue
            if kind == "SlidingWindow":
                cons = self.cons.get(self.r(lay.outputs[0]), [])
                if len(cons) != 1 or type(cons[0]).__name__ not in _CONV_KINDS:
                    raise _refuse(lay.name, "a window generator whose output is not read by exactly one "
                                  "convolution (XnorMvu / FxpMvu)")
                self.swg_of[self.r(lay.outputs[0])] = lay
            elif kind in _CONV_KINDS or kind in _FC_KINDS:
                self._conv(lay, kind)
            elif kind == "Pool":
                self._pool(lay)
            elif kind == "Epilogue":
                if id(lay) in self.fused:
                    self._add(self.fused[id(lay)])
                else:
                    self._epilogue(lay)
            elif kind == "Concat":
                self._concat(lay)
            elif kind == "Split":
                self._split(lay)
            elif kind == "PhaseShuffle":
                self._shuffle(lay)
            else:
                raise _refuse(lay.name, f"kind {kind} has no engine op")

    def _conv(self, lay, kind: str) -> None:
        xnor = kind in ("XnorMvu", "FcXnorMvu")
        if getattr(lay, "weight_source", "rom") not in ("rom", "stream"):
            raise _refuse(lay.name, f"unknown weight source {lay.weight_source!r}")
        if kind in _CONV_KINDS:
            swg = self.swg_of.get(self.r(lay.inputs[0]))
            if swg is None:
                raise _refuse(lay.name, "a convolution without its window generator")
            src = self.r(swg.inputs[0])
            geom = dict(h=swg.h, w=swg.w, c_in=swg.c, kh=swg.k, kw=swg.k, stride=swg.s, pad=swg.pad,
                        oh=swg.oh, ow=swg.ow, cout=lay.cout)
            layers = [swg.name, lay.name]
        else:
            src = self.r(lay.inputs[0])
            h, w, c = self.info(src).shape
            if h * w * c != lay.n:
                raise _refuse(lay.name, f"a fully connected layer of {lay.n} inputs reads a {h}x{w}x{c} tensor")
            geom = dict(h=h, w=w, c_in=c, kh=h, kw=w, stride=1, pad=0, oh=1, ow=1, cout=lay.cout)
            layers = [lay.name]
        if geom["kh"] * geom["kw"] * geom["c_in"] != lay.n:
            raise _refuse(lay.name, f"N = {lay.n} is not {geom['kh']}x{geom['kw']}x{geom['c_in']}")
        if lay.acc_w > D.ACC_W:
            raise _refuse(lay.name, f"the accumulator needs {lay.acc_w} bits, the engine's arrays hold {D.ACC_W}")
        wts = np.asarray(lay.weights, dtype=np.int64).reshape(lay.cout, geom["kh"], geom["kw"], geom["c_in"])
        if SPACE_TO_DEPTH and not xnor and kind in _CONV_KINDS and self._s2d_ok(src, geom):
            src, geom, wts = self._space_to_depth(src, geom, wts)
        op = EngineOp(name=lay.name, layers=layers, mode="xnor" if xnor else "mac", input=src, output="",
                      weights=wts, geom=geom, op_counts=dict(lay.op_counts()))
        op.w_w = 1 if xnor else int(lay.w_w)
        if not self._attach(op, self.r(lay.outputs[0]), lay.acc_w):
            self._add(op)

    def _s2d_ok(self, src: str, geom: dict) -> bool:
        """A stride-2 MAC convolution that alone reads the graph input (the stem) with few channels runs on the
        input stored space-to-depth: fewer taps of fuller words (see ``_space_to_depth``)."""
        cons = self.cons.get(src, [])
        return (src == self.in_name and len(cons) == 1 and type(cons[0]).__name__ == "SlidingWindow"
                and geom["stride"] == 2 and geom["h"] % 2 == 0 and geom["w"] % 2 == 0
                and geom["kh"] > 2 and 4 * geom["c_in"] * 8 <= 64 * 4)

    def _space_to_depth(self, src: str, geom: dict, wts: np.ndarray):
        """The same convolution on the input stored as (H/2, W/2, 4C), channel (dy*2 + dx)*C + c of pixel (y', x')
        = input pixel (2y' + dy, 2x' + dx) channel c: stride 1, kernel ceil over the 2x2 phases, padding
        ``pad' = a + b`` for ``pad = 2a + b``; a weight of the new kernel is the old one at ``ky = 2*(ky' - b) + dy +
        b`` (0 outside the old kernel). Exact: every input element keeps its weight and padding stays padding."""
        k, p, c = geom["kh"], geom["pad"], geom["c_in"]
        a, b = divmod(p, 2)
        kk = (k - 1 - b) // 2 + b + 1
        cout = wts.shape[0]
        w2 = np.zeros((cout, kk, kk, 4 * c), dtype=np.int64)
        for ky2 in range(kk):
            for kx2 in range(kk):
                for dy in range(2):
                    for dx in range(2):
                        ky, kx = 2 * (ky2 - b) + dy + b, 2 * (kx2 - b) + dx + b
                        if 0 <= ky < k and 0 <= kx < k:
                            w2[:, ky2, kx2, (dy * 2 + dx) * c:(dy * 2 + dx + 1) * c] = wts[:, ky, kx, :]
        info = self.info(src)
        h, w = geom["h"] // 2, geom["w"] // 2
        name = f"{src}_s2d"
        self.extra_tensors[name] = ((h, w, 4 * c), info.fmt)
        self.s2d = True
        self.in_name = name
        g2 = dict(geom, h=h, w=w, c_in=4 * c, kh=kk, kw=kk, stride=1, pad=a + b)
        return name, g2, w2

    def _pool(self, lay) -> None:
        src = self.r(lay.inputs[0])
        fmt = self.info(src).fmt
        mode = "pool_max" if lay.mode == "max" else "pool_sum"
        if fmt.bipolar and mode not in BIPOLAR_POOL_MODES:
            raise _refuse(lay.name, f"{lay.mode} pooling of a bipolar (1-bit) tensor: the engine's pool reducer "
                          "takes bipolar elements in max pooling only")
        if lay.mode == "sum" and lay.out_w > D.ACC_W:
            raise _refuse(lay.name, f"the sum needs {lay.out_w} bits, the engine's pool reducer holds {D.ACC_W}")
        geom = dict(h=lay.h, w=lay.w, c_in=lay.c, kh=lay.k, kw=lay.k, stride=lay.s, pad=lay.pad,
                    oh=lay.oh, ow=lay.ow, cout=lay.c)
        op = EngineOp(name=lay.name, layers=[lay.name], mode=mode, input=src, output="", geom=geom)
        if not self._attach(op, self.r(lay.outputs[0]), lay.out_w):
            self._add(op)

    def _epilogue(self, lay) -> None:
        src = self.r(lay.inputs[0])
        info = self.info(src)
        h, w, c = info.shape
        geom = dict(h=h, w=w, c_in=c, kh=1, kw=1, stride=1, pad=0, oh=h, ow=w, cout=c)
        op = EngineOp(name=lay.name, layers=[lay.name], mode=_copy_mode(info.fmt), input=src,
                      output=self.r(lay.outputs[0]), geom=geom)
        op.ops, op.op_kinds, op.cols, op.result_bits = _epilogue_ops(lay, lay.name)
        if lay.join is not None:
            op.b = self.r(lay.inputs[1])
        self._add(op)

    def _copy(self, src: str, name: str, layer: str) -> str:
        """A copy op of ``src`` into a new tensor (a Concat part that cannot be written in place)."""
        info = self.info(src)
        h, w, c = info.shape
        t = f"{name}_copy"
        while t in self.g.tensors or t in self.extra_tensors:
            t += "_"
        self.extra_tensors[t] = (info.shape, info.fmt)
        geom = dict(h=h, w=w, c_in=c, kh=1, kw=1, stride=1, pad=0, oh=h, ow=w, cout=c)
        op = EngineOp(name=f"{layer}/copy_{name}", layers=[layer], mode=_copy_mode(info.fmt), input=src, output=t,
                      geom=geom, result_bits=info.fmt.width)
        self._add(op)
        return t

    def _concat(self, lay) -> None:
        out = self.r(lay.outputs[0])
        a, b = (self.r(t) for t in lay.inputs)
        off = 0
        for i, part in enumerate((a, b)):
            written = part in self.producer or part in self.concat_outputs
            movable = written and part not in self.parent and part != self.in_name and not (i == 1 and part == a)
            if not movable:
                part = self._copy(part, f"part{i}", lay.name)
            self.parent[part] = (out, off, lay.name)
            off += self.info(part).shape[2]
        self.concat_outputs.add(out)

    def _shuffle(self, lay) -> None:
        """A transposed convolution's ``PhaseShuffle`` fed by a convolution op (window generator, MVU, perhaps a
        fused epilogue): the op becomes ``s*s`` ops, one a phase ``(ry, rx)``: the MVU's output channels
        ``(ry*s + rx)*c ..`` (their weights and epilogue constants), a ``kp x kp`` stride-1 window with top padding
        ``P - off[ry]`` and left padding ``P - off[rx]`` (``P`` the window generator's), ``H x W`` outputs written
        straight into the shuffled tensor (pixel ``(s*m + ry, s*n + rx)``: ``compile_program`` sets the address and
        the strides). Anything else around a ``PhaseShuffle`` is refused."""
        src = self.r(lay.inputs[0])
        op = self.producer.get(src)
        if op is None or op.mode not in ("xnor", "mac") or op.geom.get("kh") != op.geom.get("kw"):
            raise _refuse(lay.name, "a PhaseShuffle whose input is not a convolution's output (window generator, "
                          "XnorMvu / FxpMvu, perhaps an epilogue)")
        if src == self.out_name or len(self.cons.get(src, [])) != 1:
            raise _refuse(lay.name, f"a PhaseShuffle whose input {src} is also read elsewhere")
        if op.b is not None:
            raise _refuse(lay.name, "a PhaseShuffle after an epilogue with a residual join (tensor b)")
        if op.phase is not None or src in self.parent or src in self.concat_outputs:
            raise _refuse(lay.name, f"a PhaseShuffle whose input {src} is itself shuffled or a part of a tensor")
        g, s, c = op.geom, int(lay.s), int(lay.c)
        H, W = lay.oh // s, lay.ow // s
        big_p = g["pad"]
        if (g["stride"] != 1 or (g["oh"], g["ow"]) != (lay.h, lay.w) or g["cout"] != s * s * c
                or any(not 0 <= big_p - o <= g["kh"] - 1 for o in lay.off)):
            raise _refuse(lay.name, f"a PhaseShuffle (s={s}, off={lay.off}, {lay.h}x{lay.w}x{s * s * c}) that does "
                          f"not match its convolution {op.name} ({g['oh']}x{g['ow']}x{g['cout']}, stride "
                          f"{g['stride']}, pad {big_p}, kernel {g['kh']})")
        out = self.r(lay.outputs[0])
        phases = []
        for ry in range(s):
            for rx in range(s):
                ph = ry * s + rx
                sl = slice(ph * c, (ph + 1) * c)
                geom = dict(g, pad=big_p - lay.off[ry], pad_x=big_p - lay.off[rx], oh=H, ow=W, cout=c)
                macs = 2 * g["kh"] * g["kw"] * g["c_in"] * c * H * W
                p = EngineOp(name=f"{op.name}/phase{ry}{rx}", layers=[*op.layers, lay.name], mode=op.mode,
                             input=op.input, output=out, weights=op.weights[sl], geom=geom,
                             ops=[dict(o) for o in op.ops], op_kinds=list(op.op_kinds),
                             cols=[np.asarray(col)[sl] for col in op.cols], result_bits=op.result_bits,
                             op_counts={"binary": macs if op.mode == "xnor" else 0,
                                        "fixed": macs if op.mode == "mac" else 0},
                             phase=(ry, rx, s))
                p.w_w = op.w_w
                phases.append(p)
        i = self.ops.index(op)
        self.ops[i:i + 1] = phases
        del self.producer[src]
        self.producer[out] = phases[-1]

    def _split(self, lay) -> None:
        src = self.r(lay.inputs[0])
        off = 0
        for o in lay.outputs:
            o = self.r(o)
            self.parent[o] = (src, off, lay.name)
            off += self.info(o).shape[2]


# ---------------------------------------------------------------------------------------------------------


def _tiling(op: EngineOp, cfg: EngineConfig, t_in: TensorPlace, t_out: TensorPlace, t_b: TensorPlace | None) -> dict:
    g = op.geom
    pe = cfg.pe
    cout, kh, kw, s, pad = g["cout"], g["kh"], g["kw"], g["stride"], g["pad"]
    h, oh, ow = g["h"], g["oh"], g["ow"]
    cw_in, cw_out = t_in.words, t_out.words
    ng = -(-cout // pe)
    if op.mode in ("xnor", "mac"):
        gw = kh * kw * cw_in
        if gw > cfg.wb_depth:
            raise _refuse(op.name, f"the weights of one group of {pe} output channels need {gw} weight-buffer words, "
                          f"the buffer holds {cfg.wb_depth}")
        gpt = min(ng, cfg.wb_depth // gw)
        if gpt < ng and gw <= cfg.wb_depth // 2:
            # several tiles: half a buffer each, so that tile t+1 loads while tile t runs (the RTL's weight double
            # buffering when wtile_words <= WbDepth/2)
            gpt = max(1, (cfg.wb_depth // 2) // gw)
        # the store writes the bytes [t*ct*ew/8, min((t+1)*ct*ew/8, cw_out*8)) of a pixel: a partial last tile
        # must not reach past the groups that exist (possible when a group is narrower than a word)
        def spill(gp):
            n_ct = -(-ng // gp)
            return min(n_ct * gp * pe * t_out.ew // 8, cw_out * 8) > ng * pe * t_out.ew // 8
        while gpt > 1 and spill(gpt):
            gpt -= 1
        ct, n_ct, wtile = gpt * pe, -(-ng // gpt), gpt * gw
    else:
        ct, n_ct, wtile = ng * pe, 1, 0
    y_end = min(h, (oh - 1) * s - pad + kh)
    owt_lb, r = 0, 0
    for r in (min(kh + s, y_end + pad), min(kh, y_end + pad)):
        owt_lb = ((cfg.lb_depth // (r * cw_in)) - kw) // s + 1 if r * cw_in <= cfg.lb_depth else 0
        if owt_lb >= 1:
            break
    if owt_lb < 1:
        raise _refuse(op.name, f"{r} input rows of {kw} pixels of {cw_in} words do not fit the line buffer "
                      f"({cfg.lb_depth} words)")
    owt_ob = (cfg.ob_depth // 2) // cw_out
    if owt_ob < 1:
        raise _refuse(op.name, f"an output pixel of {cw_out} words does not fit half the output buffer "
                      f"({cfg.ob_depth // 2} words)")
    owt_max = min(ow, owt_lb, owt_ob)
    if t_b is not None:
        owt_bb = (cfg.bb_depth // 2) // t_b.words
        if owt_bb < 1:
            raise _refuse(op.name, f"a pixel of tensor b of {t_b.words} words does not fit half the b buffer "
                          f"({cfg.bb_depth // 2} words)")
        owt_max = min(owt_max, owt_bb)
    n_strips = -(-ow // owt_max)
    owt = -(-ow // n_strips)
    iwt = (owt - 1) * s + kw
    n_cols = len(op.cols)
    if n_cols * ng > cfg.cb_depth:
        raise _refuse(op.name, f"{n_cols} constant columns x {ng} groups need {n_cols * ng} constant-buffer words, "
                      f"the buffer holds {cfg.cb_depth}")
    return dict(ct=ct, n_ct=n_ct, owt=owt, n_strips=n_strips, iwt=iwt, slot_words=iwt * cw_in, r=r,
                ng=ng, wtile_words=wtile, n_cols=n_cols, cw_in=cw_in, cw_out=cw_out)


def _allocate(buffers: dict[str, Buffer], base: int) -> int:
    """Place the buffers at addresses >= ``base`` so that two whose lifetimes overlap never overlap in memory
    (largest first, lowest free address); returns the end address."""
    placed: list[Buffer] = []
    end = base
    for b in sorted(buffers.values(), key=lambda b: (-b.nbytes, b.first, b.name)):
        busy = sorted((p.addr, p.addr + p.nbytes) for p in placed if not (p.last < b.first or b.last < p.first))
        addr = base
        for lo, hi in busy:
            if addr + b.nbytes <= lo:
                break
            addr = max(addr, _align(hi))
        b.addr = addr
        placed.append(b)
        end = max(end, addr + b.nbytes)
    return end


def compile_program(g: HwGraph, cfg: EngineConfig | None = None, reuse: bool = True) -> Program:
    """The engine program of hardware graph ``g`` (see the module doc); ``reuse=False`` gives every tensor its
    own memory."""
    cfg = cfg or EngineConfig()
    b = _Builder(g, cfg)
    b.build()
    ops = b.ops
    if not ops:
        raise BinaryHPEError("engine: the hardware graph has no layer the engine runs")

    # --- tensors: roots, views, containers ---------------------------------------------------------------
    names = {b.in_name, b.out_name}
    for op in ops:
        names.update(t for t in (op.input, op.output, op.b) if t)
    for v, (p, _, _) in list(b.parent.items()):
        names.update((v, p))

    def root_of(t):
        off = 0
        while t in b.parent:
            p, o, _ = b.parent[t]
            off += o
            t = p
        return t, off

    need: dict[str, int] = {}
    for t in names:
        fmt = b.info(t).fmt
        bits = fmt.width
        if t in b.producer:
            bits = max(bits, b.producer[t].result_bits)
        need[t] = bits
    root_ew: dict[str, int] = {}
    for t in sorted(names):
        rt, _ = root_of(t)
        fmt = b.info(t).fmt
        layer = b.producer[t].name if t in b.producer else (b.parent[t][2] if t in b.parent else t)
        ew = container(need[t], fmt.bipolar, layer)
        if rt in root_ew and (root_ew[rt] == 1) != (ew == 1):
            raise _refuse(b.parent.get(t, (None, None, layer))[2], f"tensor {t} and the tensor it is part of "
                          "mix bipolar and integer elements")
        root_ew[rt] = max(root_ew.get(rt, 0), ew)
    tensors: dict[str, TensorPlace] = {}
    for t in sorted(names):
        rt, off = root_of(t)
        ew = root_ew[rt]
        if (off * ew) % 64:
            raise _refuse(b.parent[t][2], f"part {t} starts at channel {off} ({off * ew} bits into a pixel of "
                          f"{ew}-bit elements): the engine needs views aligned to 64 bits")
        tensors[t] = TensorPlace(name=t, shape=tuple(b.info(t).shape), fmt=b.info(t).fmt, root=rt, ch_off=off, ew=ew)
    for t, tp in tensors.items():
        tp.pix_stride = IM.pixel_words(b.info(tp.root).shape[2], tp.ew)

    # --- per-op fields (addresses later) -----------------------------------------------------------------
    for i, op in enumerate(ops):
        g_ = op.geom
        t_in, t_out = tensors[op.input], tensors[op.output]
        t_b = tensors[op.b] if op.b else None
        if tuple(t_in.shape) != (g_["h"], g_["w"], g_["c_in"]):
            raise _refuse(op.name, f"input {op.input} is {t_in.shape}, the layer reads "
                          f"{(g_['h'], g_['w'], g_['c_in'])}")
        sp = op.phase[2] if op.phase else 1  # a phase writes every s-th pixel of every s-th row
        if tuple(t_out.shape) != (sp * g_["oh"], sp * g_["ow"], g_["cout"]):
            raise _refuse(op.name, f"output {op.output} is {t_out.shape}, the layer writes "
                          f"{(sp * g_['oh'], sp * g_['ow'], g_['cout'])}")
        if t_b is not None and tuple(t_b.shape) != tuple(t_out.shape):
            raise _refuse(op.name, f"tensor b {op.b} is {t_b.shape}, the output {t_out.shape}")
        if op.mode == "xnor" and t_in.ew != 1:
            raise _refuse(op.name, f"an XNOR convolution reads {t_in.ew}-bit elements of {op.input}, needs bipolar")
        if op.mode == "mac":
            if t_in.ew not in (8, 16):
                raise _refuse(op.name, f"a fixed-point convolution reads {t_in.ew}-bit elements of {op.input}; "
                              "the MAC array takes 8 or 16")
            if op.w_w > t_in.ew:
                raise _refuse(op.name, f"{op.w_w}-bit weights are wider than the input's {t_in.ew}-bit container")
        if op.mode.startswith("pool") and t_in.ew == 1 and op.mode not in BIPOLAR_POOL_MODES:
            raise _refuse(op.name, f"{op.mode} of a bipolar tensor")
        if t_out.ew < 32 and op.result_bits > t_out.ew:
            raise _refuse(op.name, f"results of {op.result_bits} bits do not fit the output's {t_out.ew}-bit "
                          "container")
        tl = _tiling(op, cfg, t_in, t_out, t_b)
        op.header = dict(
            mode=D.MODES[op.mode], last=int(i == len(ops) - 1), has_b=int(t_b is not None),
            in_signed=int(t_in.signed and op.mode != "xnor"), b_signed=int(t_b.signed) if t_b else 0,
            lg_ew_in=t_in.lg_ew, lg_ew_out=t_out.lg_ew, lg_ew_b=t_b.lg_ew if t_b else 0, layer_id=i,
            h=g_["h"], w=g_["w"], c_in=g_["c_in"], in_pix_stride=t_in.pix_stride,
            kh=g_["kh"], kw=g_["kw"], stride=g_["stride"], pad=g_["pad"], pad_x=g_.get("pad_x", g_["pad"]),
            cw_in=tl["cw_in"],
            cw_b=t_b.words if t_b else 0,
            oh=g_["oh"], ow=g_["ow"], cout=g_["cout"], out_pix_stride=sp * t_out.pix_stride,
            out_row_stride=sp * sp * g_["ow"] * t_out.pix_stride if op.phase else 0,
            ct=tl["ct"], n_ct=tl["n_ct"], owt=tl["owt"], n_strips=tl["n_strips"],
            b_pix_stride=t_b.pix_stride if t_b else 0, cw_out=tl["cw_out"], n_cols=tl["n_cols"], iwt=tl["iwt"],
            ng=tl["ng"], wtile_words=tl["wtile_words"], slot_words=tl["slot_words"], r=tl["r"])

    # --- the image: descriptors, constants, weights, activations ------------------------------------------
    pe = cfg.pe
    desc_addr = 0
    addr = _align(len(ops) * D.DESC_BYTES, REGION_ALIGN)
    blobs: list[tuple[int, bytes]] = []
    const_start = addr
    for op in ops:
        if op.cols:
            data = IM.pack_constants(op.cols, pe, op.header["ng"])
            op.header["c_addr"] = addr
            op.const_bytes = len(data)
            blobs.append((addr, data))
            addr = _align(addr + len(data))
    const_bytes = addr - const_start
    addr = _align(addr, REGION_ALIGN)
    w_start = addr
    for op in ops:
        if op.weights is not None:
            h = op.header
            ng_pad = h["n_ct"] * (h["ct"] // pe)
            if op.mode == "xnor":
                data = IM.pack_weights_xnor(op.weights, pe, ng_pad)
            else:
                data = IM.pack_weights_mac(op.weights, pe, ng_pad, tensors[op.input].ew)
            op.header["w_addr"] = addr
            op.weight_bytes = len(data)
            blobs.append((addr, data))
            addr = _align(addr + len(data))
    weight_bytes = addr - w_start
    act_base = _align(addr, REGION_ALIGN)

    n = len(ops)
    buffers: dict[str, Buffer] = {}
    for t, tp in tensors.items():
        rt = tp.root
        if rt not in buffers:
            rinfo = b.info(rt)
            hh, ww, _ = rinfo.shape
            buffers[rt] = Buffer(name=rt, nbytes=_align(hh * ww * tp.pix_stride * 8), first=n, last=-1)
    for i, op in enumerate(ops):
        for t in (op.input, op.b):
            if t:
                bf = buffers[tensors[t].root]
                bf.first, bf.last = min(bf.first, i), max(bf.last, i)
        bf = buffers[tensors[op.output].root]
        bf.first, bf.last = min(bf.first, i), max(bf.last, i)
    bi, bo = buffers[tensors[b.in_name].root], buffers[tensors[b.out_name].root]
    bi.first = -1
    bo.last = n
    if not reuse:
        for bf in buffers.values():
            bf.first, bf.last = -1, n
    end = _allocate(buffers, act_base)
    for tp in tensors.values():
        tp.addr = buffers[tp.root].addr + tp.ch_off * tp.ew // 8
    for op in ops:
        h = op.header
        h["in_addr"] = tensors[op.input].addr
        h["out_addr"] = tensors[op.output].addr
        if op.phase:  # pixel (ry, rx) of the shuffled tensor, rows s*ow pixels long
            ry, rx, sp = op.phase
            h["out_addr"] += (ry * sp * h["ow"] + rx) * tensors[op.output].pix_stride * 8
        h["b_addr"] = tensors[op.b].addr if op.b else 0
        h.setdefault("w_addr", 0)
        h.setdefault("c_addr", 0)
    total = _align(end, REGION_ALIGN)
    image = bytearray(total)
    descs = []
    for op in ops:
        try:
            blob = D.encode(op.header, op.ops)
        except BinaryHPEError as e:
            raise _refuse(op.name, str(e)) from None
        descs.append(blob)
    descriptors = b"".join(descs)
    image[desc_addr:desc_addr + len(descriptors)] = descriptors
    for a, data in blobs:
        image[a:a + len(data)] = data
    sum_tensors = sum(_align(b.info(bf.name).shape[0] * b.info(bf.name).shape[1] * tensors[bf.name].pix_stride * 8)
                      for bf in buffers.values())
    layout = {"descriptor_bytes": len(descriptors), "constant_bytes": const_bytes, "weight_bytes": weight_bytes,
              "activation_bytes": end - act_base, "activation_bytes_without_reuse": sum_tensors,
              "image_bytes": total, "activation_base": act_base, "ops": n}
    return Program(cfg=cfg, ops=ops, tensors=tensors, buffers=buffers, descriptors=descriptors, image=image,
                   desc_addr=desc_addr, input=tensors[b.in_name], output=tensors[b.out_name], layout=layout,
                   input_shape=tuple(g.tensors[g.input].shape), input_s2d=b.s2d)
