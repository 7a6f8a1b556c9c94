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
            try:
                d["cycles"] = lay.cycles()
            except NotImplementedError:
                d["cycles"] = None
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
            "tensors": {k: {"shape": list(v.shape), "format": str(v.fmt), "lanes": v.lanes}
                        for k, v in self.tensors.items()},
            "layers": self.summary(),
        }
        return json.dumps(doc, indent=1, default=enc)
