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
        names = {lay.name for lay in self.layers} | set(self.tensors)
        if base not in names:
            return base
        i = 1
        while f"{base}_{i}" in names:
            i += 1
        return f"{base}_{i}"

    def toposort(self) -> None:
        ready = {self.input}
        done, order = set(), []
        pending = list(self.layers)
        while pending:
            progress = False
            for lay in list(pending):
                if all(t in ready for t in lay.inputs):
                    order.append(lay)
                    ready.update(lay.outputs)
                    pending.remove(lay)
                    progress = True
            if not progress:
                names = ", ".join(f"{lay.name}({lay.inputs})" for lay in pending[:5])
                raise BinaryHPEError(f"hardware graph has a cycle or a dangling input: {names}")
        self.layers = order
        del done

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
