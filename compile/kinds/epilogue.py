"""The fused epilogue: a chain of per-channel operations as one hardware layer (``bhpe_epilogue``).

An ``Epilogue`` holds, in order, instances of the elementwise kinds of ``elementwise.py`` (Requant, MulShift,
AddConst, Prelu, JoinAdd, Sign, Threshold, MultiThreshold), unchanged and keeping their layer names. Their
``execute`` is the integer semantics: the epilogue runs them one after the other (every intermediate
saturation as in the stand-alone layer) and never re-implements the arithmetic. Op ``i``'s input width is op
``i-1``'s output width. At most one op is a JoinAdd; its ``a`` operand is the chain value and its ``b``
operand the epilogue's second input (``inputs[1]``).

RTL contract (``hw/rtl/bhpe_epilogue.sv``, see its header):

- one input stream ``in_*`` (``Lanes`` elements of ``InW`` bits a beat), with a JoinAdd a second stream
  ``b_*`` (``InBW`` bits an element) taken in the same cycle as the chain input, and carried to the JoinAdd's
  stage;
  one output stream ``out_*``;
- one constant ROM image of ``C / Lanes`` words for all ops: op-major, op ``i``'s constants (its stand-alone
  ROM word, lane 0 in the LSBs) at bit ``Lanes * COff_i`` of the word; each stage reads its own ops' columns
  at the channel group of its beat (one counter at the input, its value travelling with the data);
- credits and a free-running pipeline: a beat (with its JoinAdd operand) is accepted while the unit holds
  fewer than ``stages + 3`` beats, every stage register then loads each cycle, and an output FIFO of that
  many entries always has room (no ready chain through the stages; one cycle of latency more);
- a register after every op (``REGISTERED_AFTER``), and one after the product of a multiplying op
  (``product_register`` of MulShift and Prelu): the RTL's op list (``rtl_ops``) then holds the op as two, its
  product (``Mul`` / ``PreluMul``, registered) and a ``Requant`` of the product (its right shift and
  saturation). The latency is the number of registers plus one (the output FIFO), one beat a cycle.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from .base import HwLayer, StreamSpec, clog2, lut_mul_luts
from .elementwise import (AddConst, JoinAdd, MulShift, MultiThreshold, Prelu, Requant, Sign, Threshold,
                          _Elementwise)

#: op kind codes of the RTL (parameter ``OpKind``), one per elementwise kind
OP_CODES = {Requant: 0, MulShift: 1, AddConst: 2, Prelu: 3, JoinAdd: 4, Sign: 5, Threshold: 6, MultiThreshold: 7}
#: kinds after which the RTL registers the value: every kind. A register after each multiplying op is what
#: timing needs; one after every op keeps the elasticity (one beat of buffer an op) of the per-operation
#: pipeline, which the tiny BiDRN's frame interval needs (with registers only after MulShift, Prelu and the
#: last op its measured interval grew from 2,304 to 4,352 cycles: an MVU stalls while a short epilogue
#: cannot absorb its output bursts)
REGISTERED_AFTER = tuple(OP_CODES)
#: RTL-only op codes: the product half of a multiplying op with a product register (``rtl_ops``):
#: 8 Mul ``y = (m_c * x) <<< max(-shift, 0)``; 9 PreluMul ``y = x > 0 ? x <<< max(shift, 0)
#: : (beta_c * x) <<< max(-shift, 0)``; each followed by a Requant of ``max(shift, 0)``
MUL_CODE, PRELU_MUL_CODE = 8, 9
#: bits of one field of the packed per-op parameter vectors
FIELD_W = 16
#: most ops one unit holds (the packed vectors are ``MAX_OPS * FIELD_W`` bits)
MAX_OPS = 16


class SvBits(int):
    """An integer RTL parameter of a fixed bit width (a packed vector): written as a sized literal
    (``sv()``) so that tools see exactly the declared width."""

    width: int

    def __new__(cls, value: int, width: int):
        if not 0 <= int(value) < (1 << width):
            raise ValueError(f"{value} does not fit a {width}-bit parameter")
        obj = super().__new__(cls, int(value))
        obj.width = width
        return obj

    def sv(self) -> str:
        return f"{self.width}'h{int(self):x}"


def op_out_w(op: _Elementwise) -> int:
    """Element width of an op's output stream."""
    return op.out_streams()[0].width


def op_const_bits(op: _Elementwise) -> int:
    """Bits of per-channel constants one lane of ``op`` needs (0 for ops without constants)."""
    if isinstance(op, (MulShift, AddConst, Prelu)):
        return op.const_w
    if isinstance(op, Threshold):
        return op.thr_w + 1
    if isinstance(op, MultiThreshold):
        return op.n * op.thr_w
    return 0


def _op_memory(op: _Elementwise) -> list[int]:
    mems = op.rtl_memories()
    return mems.get("InitFile", [0] * (op.c // op.lanes))


@dataclass(frozen=True)
class RtlOp:
    """One op of ``bhpe_epilogue``'s op list (its packed parameters): ``code`` (OpKind), ``out_w`` (OpOutW),
    ``shift`` (OpShift), ``aux`` (OpAux), ``cw`` (OpCW: constant bits a lane), ``reg`` (a register after it),
    ``pipe`` (OpPipe: a second register inside its multiplier, one stage more; a Mul or PreluMul in logic)."""

    code: int
    out_w: int
    shift: int
    aux: int
    cw: int
    reg: bool
    pipe: bool = False

    @property
    def registers(self) -> int:
        """Stages the op occupies: its register after it and the one inside a pipelined multiplier
        (``bhpe_epilogue``'s ``stage_of`` counts ``OpReg + OpPipe``)."""
        return int(self.reg) + int(self.pipe)


def _aux(op) -> int:
    if isinstance(op, Requant):
        return int(bool(op.relu))
    if isinstance(op, JoinAdd):
        return int(op.shift_b)
    if isinstance(op, (MultiThreshold, Threshold)):
        return int(op.thr_w)
    return 0


def _shift(op) -> int:
    if isinstance(op, JoinAdd):
        return int(op.shift_a)
    if isinstance(op, MultiThreshold):
        return int(op.offset)  # the RTL adds OpShift to the count (bhpe_epilogue.sv, op 7)
    return int(getattr(op, "shift", 0))


def rtl_ops_of(op: _Elementwise, last: bool = True) -> list[RtlOp]:
    """The RTL ops of one elementwise op: itself, registered after (every kind is, ``REGISTERED_AFTER``, and
    the last op of a unit); or, with a product register, its product (registered) then a Requant of it."""
    cw = op_const_bits(op)
    reg = isinstance(op, REGISTERED_AFTER) or last
    if not op.product_register:
        return [RtlOp(OP_CODES[type(op)], op_out_w(op), _shift(op), _aux(op), cw, reg)]
    lsh, rsh = max(0, -op.shift), max(0, op.shift)
    if isinstance(op, MulShift):
        prod = RtlOp(MUL_CODE, op.in_w + op.const_w + lsh, op.shift, 0, cw, True)
    else:
        prod = RtlOp(PRELU_MUL_CODE, max(op.in_w + op.const_w + lsh, op.in_w + rsh), op.shift, 0, cw, True)
    return [prod, RtlOp(OP_CODES[Requant], op_out_w(op), rsh, 0, 0, reg)]


def input_register(ops: list) -> bool:
    """Whether a unit of these ops registers its input first: its first op reads constants (``has_constants``, as
    the stand-alone op's ``rtl_stages`` counts it; ``Epilogue.rtl_ops``)."""
    return bool(ops) and ops[0].has_constants


def rtl_op_count(ops: list) -> int:
    """RTL ops of a chain of elementwise ops (at most ``MAX_OPS`` in one unit; ``Epilogue.rtl_ops``)."""
    return sum(len(rtl_ops_of(op)) for op in ops) + int(input_register(ops))


@dataclass(kw_only=True)
class Epilogue(HwLayer):
    """A fused chain of elementwise ops (``ops``, in order) with the intermediate tensors that fusion removed
    (``mids``: op ``i``'s output for ``i < len(ops) - 1``, kept so that ``unfuse`` restores them)."""

    ops: list
    mids: list = field(default_factory=list)
    #: multiply in logic (``bhpe_mul`` with ``Lut = 1``, an adder tree of partial products) instead of DSP blocks: the
    #: product ops (``Mul``, ``PreluMul``), each then pipelined (``pipe``: a register inside the tree, one stage
    #: more); set for the device by ``compile.folding.multipliers_for_device``
    lut_mul: bool = False

    def __post_init__(self) -> None:
        self.rtl_module = "bhpe_epilogue"
        if not self.ops:
            raise self._err("needs at least one op")
        for op in self.ops:
            if type(op) not in OP_CODES:
                raise self._err(f"op {getattr(op, 'name', op)!r} is a {type(op).__name__}, not an elementwise kind")
        if rtl_op_count(self.ops) > MAX_OPS:
            raise self._err(f"holds {len(self.ops)} ops, {rtl_op_count(self.ops)} in the RTL (a multiplying op "
                            f"is two), at most {MAX_OPS}")
        first = self.ops[0]
        for op in self.ops[1:]:
            if (op.c, op.pixels, op.lanes) != (first.c, first.pixels, first.lanes):
                raise self._err(f"op {op.name} has c/pixels/lanes {op.c}/{op.pixels}/{op.lanes}, "
                                f"op {first.name} {first.c}/{first.pixels}/{first.lanes}")
        for prev, op in zip(self.ops, self.ops[1:]):
            if not prev.out_streams()[0].signed:
                raise self._err(f"op {prev.name} has an unsigned output; no op can follow it in a chain")
            if op.in_w != op_out_w(prev):
                raise self._err(f"op {op.name} takes {op.in_w} bits, op {prev.name} gives {op_out_w(prev)}")
        joins = [op for op in self.ops if isinstance(op, JoinAdd)]
        if len(joins) > 1:
            raise self._err(f"holds {len(joins)} JoinAdd ops, at most one")
        if len(self.mids) not in (0, len(self.ops) - 1):
            raise self._err(f"has {len(self.mids)} intermediate tensors for {len(self.ops)} ops")

    def _err(self, msg: str) -> ValueError:
        return ValueError(f"Epilogue layer '{self.name}': {msg}")

    # --- shape ---------------------------------------------------------------------------------------
    @property
    def c(self) -> int:
        return self.ops[0].c

    @property
    def pixels(self) -> int:
        return self.ops[0].pixels

    @property
    def lanes(self) -> int:
        return self.ops[0].lanes

    @lanes.setter
    def lanes(self, value: int) -> None:
        if self.c % value:
            raise self._err(f"lanes={value} does not divide c={self.c}")
        for op in self.ops:
            op.lanes = value

    @property
    def in_w(self) -> int:
        return self.ops[0].in_w

    @property
    def out_w(self) -> int:
        return op_out_w(self.ops[-1])

    @property
    def join(self) -> JoinAdd | None:
        """The JoinAdd op, if any."""
        return next((op for op in self.ops if isinstance(op, JoinAdd)), None)

    @property
    def beats(self) -> int:
        return self.pixels * (self.c // self.lanes)

    # --- numerics ------------------------------------------------------------------------------------
    def execute(self, ins: list[np.ndarray]) -> list[np.ndarray]:
        want = 2 if self.join is not None else 1
        if len(ins) != want:
            raise self._err(f"takes {want} input(s), got {len(ins)}")
        x = ins[0]
        for op in self.ops:
            x = op.execute([x, ins[1]] if isinstance(op, JoinAdd) else [x])[0]
        return [x]

    # --- pipeline ------------------------------------------------------------------------------------
    def registered(self) -> list[bool]:
        """Per op: whether the RTL registers its output (after every multiplying op and after the last)."""
        n = len(self.ops)
        return [isinstance(op, REGISTERED_AFTER) or i == n - 1 for i, op in enumerate(self.ops)]

    def rtl_ops(self) -> list[RtlOp]:
        """The RTL's op list (``rtl_ops_of`` each op; a multiplying op with a product register is two). When the
        first op reads constants, a register of the input comes first (a Requant by 0 to the input's own width:
        a copy; ``input_register``): the RTL reads a stage's constants as its beat enters the register before
        it, so that the read address is a register and the handshake reaches only register enables; and a
        multiplier's inputs are then both registers (not the input stream's FIFO read mux), which the placer
        can put beside it."""
        n = len(self.ops)
        ops = [r for i, op in enumerate(self.ops) for r in rtl_ops_of(op, i == n - 1)]
        if input_register(self.ops):
            ops.insert(0, RtlOp(OP_CODES[Requant], self.in_w, 0, 0, 0, True))
        if self.lut_mul:  # a multiplier in logic gets a register inside (its adder tree: ECP5's critical path)
            ops = [dataclasses.replace(r, pipe=True) if r.code in (MUL_CODE, PRELU_MUL_CODE) else r for r in ops]
        return ops

    def stages(self) -> int:
        """Registered stages between an accepted input beat and its output beat (the RTL ops' registers, and the
        registers inside pipelined multipliers)."""
        return sum(r.registers for r in self.rtl_ops())

    def cycles(self) -> dict:
        """One beat a cycle; ``latency`` = first input beat accepted to last output beat accepted
        = (beats - 1) + stages + 1 (the output FIFO)."""
        s = self.stages() + 1
        return {"ii": self.beats, "latency": self.beats - 1 + s, "pipeline": s}

    # --- interfaces / RTL ----------------------------------------------------------------------------
    def in_streams(self) -> list[StreamSpec]:
        s = [StreamSpec(self.lanes, self.in_w)]
        if self.join is not None:
            s.append(StreamSpec(self.lanes, self.join.in_b_w))
        return s

    def out_streams(self) -> list[StreamSpec]:
        return self.ops[-1].out_streams()

    def rtl_in_ports(self) -> list[str]:
        """Input port names of ``bhpe_epilogue``: ``in`` (the chain), ``b`` (the JoinAdd operand); a unit
        without a JoinAdd has ``inputs[0]`` only and ``b`` is tied off."""
        return ["in", "b"]

    def const_offsets(self) -> list[int]:
        """Per op: bit offset (per lane) of its constants in a ROM word (times ``lanes`` in the word)."""
        offs, acc = [], 0
        for op in self.ops:
            offs.append(acc)
            acc += op_const_bits(op)
        return offs

    def rtl_const_offsets(self) -> list[int]:
        """Per RTL op: the same offsets (a product carries its op's constants, the Requant after it none)."""
        offs, acc = [], 0
        for r in self.rtl_ops():
            offs.append(acc)
            acc += r.cw
        return offs

    def const_bits(self) -> int:
        """Constant bits a lane (the ROM word is ``lanes`` times this)."""
        return sum(op_const_bits(op) for op in self.ops)

    def rtl_params(self) -> dict:
        """Per-op fields packed ``FIELD_W`` bits each, op 0 in the LSBs (two's complement for shifts)."""
        def pack(vals) -> SvBits:
            return SvBits(sum((int(v) & ((1 << FIELD_W) - 1)) << (i * FIELD_W) for i, v in enumerate(vals)),
                          MAX_OPS * FIELD_W)

        ops = self.rtl_ops()
        j = self.join
        return {
            "Lanes": self.lanes, "C": self.c, "NumOps": len(ops), "InW": self.in_w,
            "InBW": j.in_b_w if j is not None else 1, "OutW": self.out_w, "HasB": int(j is not None),
            "OpKind": pack(r.code for r in ops),
            "OpOutW": pack(r.out_w for r in ops),
            "OpShift": pack(r.shift for r in ops),
            "OpAux": pack(r.aux for r in ops),
            "OpCW": pack(r.cw for r in ops),
            "OpCOff": pack(self.rtl_const_offsets()),
            "OpReg": SvBits(sum(int(r.reg) << i for i, r in enumerate(ops)), MAX_OPS),
            "OpPipe": SvBits(sum(int(r.pipe) << i for i, r in enumerate(ops)), MAX_OPS),
            "MulLut": int(self.lut_mul),
        }

    def rtl_memories(self) -> dict[str, list[int]]:
        """One ROM for the unit: word g = op i's stand-alone word g at bit ``lanes * COff_i``."""
        if not self.const_bits():
            return {}
        word = [0] * (self.c // self.lanes)
        for op, off in zip(self.ops, self.const_offsets()):
            if op_const_bits(op):
                for g, w in enumerate(_op_memory(op)):
                    word[g] |= int(w) << (self.lanes * off)
        return {"InitFile": word}

    def resources(self) -> dict:
        """First-order model of the fused unit: each op's datapath LUTs (the op's own model less its ROM and
        stage overhead), one ROM image (read column-wise by the stages, its width once in read registers and
        LUTs), one channel-group counter whose value travels with the data (``AddrW`` bits a register), one
        handshake, and a value register + valid bit at each registered stage."""
        depth = self.c // self.lanes
        cbits = self.const_bits()
        addr_w = clog2(depth) if cbits else 0
        lut, dsp = 0, 0
        for op in self.ops:
            r = op.resources()
            own_cw = op_const_bits(op)
            overhead = 2 + 2 * (clog2(depth) if own_cw else 0)
            if own_cw:
                overhead += op._rom_resources(own_cw * self.lanes)["lut"]
            lut += r["lut"] - overhead
            if self.lut_mul and op.product_register:  # its product in logic (bhpe_mul), not in DSP blocks
                lut += self.lanes * lut_mul_luts(op.in_w, op.const_w)
            else:
                dsp += r.get("dsp", 0)
        stages = self.stages()
        ff = addr_w * stages  # the counter and the group index in every register but the last
        in_w = self.in_w
        for r in self.rtl_ops():
            if r.reg:
                ff += self.lanes * r.out_w + 1
            if r.pipe:  # the multiplier's two registered partial sums (a PreluMul's input beside them)
                ff += self.lanes * (2 * (in_w + r.cw) + (in_w if r.code == PRELU_MUL_CODE else 0))
            in_w = r.out_w
        bram = 0
        if cbits:
            width = cbits * self.lanes
            ff += width  # the stages' constant read registers: every column once
            if depth <= 64:
                lut += width * math.ceil(depth / 64)
            else:
                bram = math.ceil(width / 36) * math.ceil(depth / 512)
            lut += addr_w * stages  # the counter's increment and the read-address selects
        lut += 2 * stages + (2 if self.join is not None else 0)
        # the output FIFO of stages + 3 entries (bhpe_fifo's own model) and the credit counter
        from .plumbing import Fifo

        fifo = Fifo(name=f"{self.name}_out", elem_w=self.out_w, lanes=self.lanes, depth=stages + 3).resources()
        lut += fifo["lut"] + clog2(stages + 4) + 2
        ff += fifo["ff"] + clog2(stages + 4)
        bram += fifo["bram18"]
        if self.join is not None:
            ff += self.lanes * self.join.in_b_w * self._join_stage()  # its operand travels to its stage
        return {"lut": lut, "ff": ff, "bram18": bram, "dsp": dsp}

    def _join_stage(self) -> int:
        """The stage (registers before it) of the JoinAdd's RTL op."""
        s = 0
        for r in self.rtl_ops():
            if r.code == OP_CODES[JoinAdd]:
                return s
            s += r.registers
        return 0

    def describe(self) -> dict:
        return {"name": self.name, "kind": "Epilogue", "c": self.c, "lanes": self.lanes, "pixels": self.pixels,
                "in_w": self.in_w, "out_w": self.out_w,
                "ops": [{k: v for k, v in op.describe().items() if k not in ("c", "lanes", "pixels")}
                        for op in self.ops]}

    # --- the kind interface (compile/kinds/base.py) ----------------------------------------------------
    @property
    def exact(self) -> bool:
        return all(op.exact for op in self.ops)

    def fuse_requant(self, rq) -> bool:
        return False  # FuseRequant runs before fusion; a Requant after an Epilogue is fused as an op instead

    foldable = False

    def steps_at(self, pe: int, simd: int) -> int:
        raise self._missing("steps_at (not a foldable kind)")

    def assign_lanes(self, in_lanes: list[int]) -> list[int]:
        """gcd of the input lanes and the channel count, on every input (chain and JoinAdd operand)."""
        self.lanes = math.gcd(self.c, *in_lanes)
        return [self.lanes] * len(in_lanes)

    @property
    def out_lanes(self) -> int:
        return self.lanes

    def stream_capacity(self) -> int:
        return self.stages() + 3  # its credits (bhpe_epilogue Cap): the stages, the output FIFO's entry, one read

    def weight_memory(self):
        return None  # the per-channel constants stay in the unit's own ROM

    def op_counts(self) -> dict:
        return {"binary": 0, "fixed": 0}  # the roofline counts multiply-accumulates only

    mask_in = False
    mask_out = False
    fold_fields = ("lanes",)  # (interface: helper B)
    streamed = False

    def value_range(self, in_ranges):
        r = in_ranges[0]
        for op in self.ops:
            if r is None:
                return None
            r = op.value_range([r, in_ranges[1]] if isinstance(op, JoinAdd) else [r])
        return r

    start_fraction = 0.0

    # --- graph ---------------------------------------------------------------------------------------
    def unfuse(self) -> list[HwLayer]:
        """The ops as stand-alone layers wired through ``mids``: the first reads ``inputs[0]``, the JoinAdd
        also ``inputs[1]``, the last writes ``outputs[0]``."""
        if len(self.mids) != len(self.ops) - 1:
            raise self._err("has no intermediate tensors to unfuse through")
        names = [self.inputs[0]] + [m.name for m in self.mids] + [self.outputs[0]]
        out = []
        for i, op in enumerate(self.ops):
            op = copy.copy(op)
            op.inputs = [names[i], self.inputs[1]] if isinstance(op, JoinAdd) else [names[i]]
            op.outputs = [names[i + 1]]
            out.append(op)
        return out
