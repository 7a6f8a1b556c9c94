"""The hardware graph: streaming layers (compile/kinds) connected by named tensors with fixed-point formats.

It is what ``compile.lower`` produces from a QONNX file and what the RTL generator, the C backend, the
estimators and the reports read. ``HwGraph.execute`` is the integer reference of the whole network: each
layer's ``execute`` in topological order.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np

from binaryhpe import BinaryHPEError
from binaryhpe.compile.kinds.base import HwLayer


@dataclass(frozen=True)
class Fmt:
    """A tensor's number format: integers ``q`` standing for ``q * 2^-frac`` in ``bits`` bits.

    ``bipolar``: one bit, 1 <-> +1 and 0 <-> -1 (binary activations). ``signed=False``: unsigned.
    """

    bits: int
    frac: int = 0
    signed: bool = True
    bipolar: bool = False

    @property
    def width(self) -> int:
        """Bits of one element on a stream (1 for bipolar)."""
        return 1 if self.bipolar else self.bits

    def __str__(self) -> str:
        if self.bipolar:
            return "bipolar"
        return f"{'Q' if self.signed else 'UQ'}({self.bits},{self.frac})"

    def to_real(self, q: np.ndarray) -> np.ndarray:
        q = np.asarray(q, dtype=np.float64)
        return (2 * q - 1) if self.bipolar else q * 2.0 ** (-self.frac)

    def from_real(self, v: np.ndarray) -> np.ndarray:
        """Exact inverse of to_real; raises if ``v`` is not on this format's grid."""
        v = np.asarray(v, dtype=np.float64)
        q = (v + 1) / 2 if self.bipolar else v * 2.0**self.frac
        qi = np.round(q)
        if not np.array_equal(qi, q):
            raise BinaryHPEError(f"values are not on the grid of format {self}")
        return qi.astype(np.int64)


@dataclass
class TensorInfo:
    name: str
    shape: tuple  # (H, W, C)
    fmt: Fmt
    lanes: int = 1
    windowed: bool = False  # an SWG output: (OH, OW, K*K*C) windows plus a validity mask
    #: a float (non-power-of-two) scale on top of the format: the integers stand for ``q * 2^-frac * scale``;
    #: None (no scale), one exact rational (``fractions.Fraction``), or a tuple of one a channel (accumulators:
    #: input scale x per-channel weight scale). Only the lowering (compile/lower_quant.py), the exact reference
    #: and the host's conversions read it: the hardware computes on the integers.
    scale: object = None

    def to_real(self, q: np.ndarray) -> np.ndarray:
        """The real values of integers ``q`` (H, W, C) in float64 (exact where float64 holds the products)."""
        real = self.fmt.to_real(q)
        if self.scale is None:
            return real
        sc = self.scale if isinstance(self.scale, tuple) else (self.scale,)
        return real * np.array([float(s) for s in sc], dtype=np.float64)


@dataclass
class HwGraph:
    layers: list[HwLayer] = field(default_factory=list)
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    input: str = ""
    output: str = ""
    source: str = ""  # the QONNX file it came from
    #: QONNX tensor name -> hardware tensor name, for the comparisons with execute_onnx
    onnx_names: dict[str, str] = field(default_factory=dict)
    #: how the host turns a float input into the integers the hardware receives (the input quantizer)
    input_quant: dict = field(default_factory=dict)

    # --- structure ---------------------------------------------------------------------------------
    def producer(self, tensor: str) -> HwLayer | None:
        for lay in self.layers:
            if tensor in lay.outputs:
                return lay
        return None

    def consumers(self, tensor: str) -> list[HwLayer]:
        return [lay for lay in self.layers if tensor in lay.inputs]

    def layer(self, name: str) -> HwLayer:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(name)

    def unique(self, base: str) -> str:
        """A layer/tensor name not used before (every name in the graph is handed out here)."""
        used = self.__dict__.setdefault("_used", set())
        name, i = base, 0
        while name in used or name in self.tensors:
            i += 1
            name = f"{base}_{i}"
        used.add(name)
        return name

    # --- edits (the passes change the graph through these, not by hand) -------------------------------
    def rewire(self, tensor_old: str, tensor_new: str, consumers=None) -> None:
        """Layers reading ``tensor_old`` (all of them, or those in ``consumers``) read ``tensor_new`` instead.
        When all are rewired and ``tensor_old`` is the graph output, the output moves too."""
        targets = self.consumers(tensor_old) if consumers is None else list(consumers)
        for lay in targets:
            if tensor_old not in lay.inputs:
                raise BinaryHPEError(f"hardware graph: layer {lay.name} does not read {tensor_old!r}")
            if consumers is None:
                lay.inputs = [tensor_new if t == tensor_old else t for t in lay.inputs]
            else:  # one input each time a layer is listed (a layer reading a tensor twice is listed twice)
                k = lay.inputs.index(tensor_old)
                lay.inputs = [*lay.inputs[:k], tensor_new, *lay.inputs[k + 1:]]
        if consumers is None and self.output == tensor_old:
            self.output = tensor_new

    def insert_after(self, tensor: str, layer: HwLayer, consumers=None) -> HwLayer:
        """Add ``layer`` (which reads ``tensor``) between ``tensor`` and its consumers (all others, or those in
        ``consumers``), which then read ``layer``'s first output. The layer is appended: call ``toposort``
        when the edits are done."""
        if tensor not in layer.inputs:
            raise BinaryHPEError(f"hardware graph: layer {layer.name} inserted after {tensor!r} does not read it")
        for t in layer.outputs:
            if t not in self.tensors:
                raise BinaryHPEError(f"hardware graph: layer {layer.name} writes {t!r}, which has no TensorInfo")
        targets = [c for c in self.consumers(tensor)] if consumers is None else list(consumers)
        self.rewire(tensor, layer.outputs[0], [c for c in targets if c is not layer])
        self.layers.append(layer)
        return layer

    def remove_layer(self, layer: HwLayer, drop_outputs: bool = False) -> None:
        """Take ``layer`` out of the graph (its readers must have been rewired first); with ``drop_outputs``
        its output tensors leave ``tensors`` and ``onnx_names`` too."""
        self.layers = [lay for lay in self.layers if lay is not layer]
        if drop_outputs:
            for t in layer.outputs:
                self.drop_tensor(t)

    def drop_tensor(self, name: str) -> None:
        """Forget tensor ``name`` (its format and its QONNX name)."""
        self.tensors.pop(name, None)
        for k in [k for k, v in self.onnx_names.items() if v == name]:
            del self.onnx_names[k]

    def stage(self, tensor: str) -> "HwGraph":
        """A copy holding only the layers ``tensor`` depends on, with ``tensor`` as its output (a stage of the
        network: its first layers, checked and simulated on their own)."""
        if tensor not in self.tensors:
            raise BinaryHPEError(f"hardware graph: no tensor {tensor!r} to end a stage at")
        g = self.copy()
        need, todo = set(), [tensor]
        while todo:
            t = todo.pop()
            lay = g.producer(t)
            if lay is None or lay.name in need:
                continue
            need.add(lay.name)
            todo.extend(lay.inputs)
        for lay in [lay for lay in g.layers if lay.name not in need]:
            g.remove_layer(lay, drop_outputs=True)
        g.output = tensor
        return g

    def copy(self) -> "HwGraph":
        """A deep copy whose layers share their constant arrays with this graph's (a folding trial)."""
        import copy as _copy

        memo: dict = {}

        def share(v):
            if isinstance(v, np.ndarray):
                memo[id(v)] = v
            elif isinstance(v, (list, tuple)):
                for x in v:
                    share(x)
            elif dataclasses.is_dataclass(v) and not isinstance(v, type):
                for f in dataclasses.fields(v):
                    share(getattr(v, f.name))

        for lay in self.layers:
            share(lay)
        return _copy.deepcopy(self, memo)

    def consumer_map(self) -> dict[str, list[HwLayer]]:
        """tensor -> layers reading it (build once per pass; ``consumers`` is the one-off version)."""
        m: dict[str, list[HwLayer]] = {}
        for lay in self.layers:
            for t in lay.inputs:
                m.setdefault(t, []).append(lay)
        return m

    def toposort(self) -> None:
        """Kahn's algorithm, stable with respect to the current order."""
        prod = {t: i for i, lay in enumerate(self.layers) for t in lay.outputs}
        indeg = [0] * len(self.layers)
        succ: list[list[int]] = [[] for _ in self.layers]
        for i, lay in enumerate(self.layers):
            for t in lay.inputs:
                if t == self.input:
                    continue
                if t not in prod:
                    raise BinaryHPEError(f"hardware graph: layer {lay.name} reads {t!r}, which no layer produces")
                succ[prod[t]].append(i)
                indeg[i] += 1
        import heapq

        heap = [i for i, d in enumerate(indeg) if d == 0]
        heapq.heapify(heap)
        order = []
        while heap:
            i = heapq.heappop(heap)
            order.append(self.layers[i])
            for j in succ[i]:
                indeg[j] -= 1
                if indeg[j] == 0:
                    heapq.heappush(heap, j)
        if len(order) != len(self.layers):
            stuck = [lay.name for i, lay in enumerate(self.layers) if indeg[i] > 0][:5]
            raise BinaryHPEError(f"hardware graph has a cycle through {stuck}")
        self.layers = order

    # --- integer reference -------------------------------------------------------------------------
    def execute(self, x: np.ndarray, keep_all: bool = True) -> dict[str, np.ndarray]:
        """Run the integer reference on one frame ``x`` (H, W, C int64). Returns tensor name -> integers;
        SWG outputs are (windows, mask) pairs."""
        env: dict[str, object] = {self.input: np.asarray(x, dtype=np.int64)}
        for lay in self.layers:
            ins = []
            for t in lay.inputs:
                v = env[t]
                ins.extend(v if isinstance(v, tuple) else (v,))
            outs = lay.execute(ins)
            if self.tensors[lay.outputs[0]].windowed:
                mask = lay.execute_mask([env[lay.inputs[0]]])
                env[lay.outputs[0]] = (outs[0], mask)
            else:
                for t, v in zip(lay.outputs, outs):
                    env[t] = v
        return env

    # --- reports -----------------------------------------------------------------------------------
    def summary(self) -> list[dict]:
        rows = []
        for lay in self.layers:
            d = lay.describe()
            d["inputs"] = list(lay.inputs)
            d["outputs"] = list(lay.outputs)
            d["out_shape"] = list(self.tensors[lay.outputs[0]].shape)
            d["out_format"] = str(self.tensors[lay.outputs[0]].fmt)
            d["cycles"] = lay.cycles()  # every kind has a cycle model (a missing one is an error naming it)
            rows.append(d)
        return rows

    def to_json(self) -> str:
        def enc(o):
            if isinstance(o, (np.integer,)):
                return int(o)
            if isinstance(o, np.ndarray):
                return o.tolist()
            if dataclasses.is_dataclass(o):
                return dataclasses.asdict(o)
            return str(o)

        doc = {
            "source": self.source,
            "input": self.input,
            "output": self.output,
            "tensors": {k: {"shape": list(v.shape), "format": str(v.fmt), "lanes": v.lanes,
                            **({"scale": [str(s) for s in v.scale] if isinstance(v.scale, tuple) else str(v.scale)}
                               if v.scale is not None else {})}
                        for k, v in self.tensors.items()},
            "layers": self.summary(),
        }
        return json.dumps(doc, indent=1, default=enc)
