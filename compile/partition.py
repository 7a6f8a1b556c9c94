"""What stays on the host: the float pre-processing before the first activation quantizer and the float
post-processing after the last tensor the hardware maps exactly (FINN's dataflow partition, found here by the
lowering itself).

``partition_host(mw)`` cuts the cleaned QONNX model (``compile.lower.load_qonnx``) into three parts:

- **pre** (:class:`FindHostPre`): the nodes between the graph input and the first ``Quant`` /
  ``BipolarQuant`` that reads a non-constant tensor (BNN-PYNQ's ``Reshape``, ``Mul 2``, ``Sub 1``). Their output,
  the float tensor that quantizer reads, is the hardware region's input; nothing else may read the graph input
  or a pre tensor.
- **hardware region** (``HostPartition.hw``): a QONNX ModelWrapper with one input and one output (their
  ValueInfos and every intermediate one copied from the full model) that the flow lowers and simulates unchanged.
- **post**: found by lowering the region. A refusal (``BinaryHPEError`` attributed to a node, ``node`` attribute;
  ``Lowerer.run`` sets it) at a node with no activation quantizer downstream moves the cut before that node: the
  node, everything downstream of it, and the float epilogue chain feeding it (``Add`` / ``Sub`` / ``Mul`` /
  ``Div`` / ``BatchNormalization`` by constants back to the last integer tensor: a TensorNorm's Sub, Div, Mul,
  Add) go to the host. A refusal anywhere else (a node with a quantizer downstream, or an activation quantizer
  itself) stays the error it is. ArgMax, Softmax, TopK and float MatMul/Gemm heads end up there the same way.

The host parts run with the exact reference's executor (``compile.reference.exact_reference``, float64):
``run_pre`` gives the hardware region's input frame of a frame of the full graph's input, ``run_post`` the full
graph's output from the hardware region's output, so that the whole graph's outputs can be compared with the
whole graph's exact reference (``run_full``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from binaryhpe import BinaryHPEError

#: activation quantizers: a refusal with one of these downstream stays an error
ACT_QUANTIZERS = ("Quant", "BipolarQuant", "MultiThreshold")
#: float epilogue ops by constants that follow the last integer tensor onto the host with the node refused after
#: them (a TensorNorm is Sub, Div, Mul, Add; a final float scale a Mul)
TAIL_EPILOGUE_OPS = ("Add", "Sub", "Mul", "Div", "BatchNormalization")


def _inits(mw) -> set:
    return {i.name for i in mw.graph.initializer}


def _consumers(mw) -> dict:
    cons: dict = {}
    for i, n in enumerate(mw.graph.node):
        for t in n.input:
            if t:
                cons.setdefault(t, []).append(i)
    return cons


def _producers(mw) -> dict:
    prod: dict = {}
    for i, n in enumerate(mw.graph.node):
        for t in n.output:
            prod.setdefault(t, i)
    return prod


def _is_act_quant(n, inits) -> bool:
    return n.op_type in ACT_QUANTIZERS and bool(n.input) and n.input[0] not in inits


def _valueinfo(mw, name: str):
    g = mw.graph
    for vi in [*g.input, *g.output, *g.value_info]:
        if vi.name == name:
            return vi
    return None


# ---------------------------------------------------------------------------------------------------------
# qonnx-style passes (``apply(model) -> (model, changed)``)


class ExtractRegion:
    """The subgraph of ``model`` made of the nodes at ``indices`` (graph order kept), with graph input ``inp`` and
    graph output ``out``: a new model with those nodes, the initializers, ValueInfos and quantization annotations
    they use, and the full model's opsets. The model is not changed: ``apply`` returns ``(region, False)``."""

    def __init__(self, indices, inp: str, out: str, name: str):
        self.indices, self.inp, self.out, self.name = sorted(indices), inp, out, name

    def apply(self, model):
        import copy

        from onnx import helper
        from qonnx.core.modelwrapper import ModelWrapper

        g = model.graph
        nodes = [copy.deepcopy(g.node[i]) for i in self.indices]
        used = {t for n in nodes for t in [*n.input, *n.output] if t}
        inits = [copy.deepcopy(i) for i in g.initializer if i.name in used]
        ios = {self.inp, self.out}
        vis = [copy.deepcopy(v) for v in g.value_info if v.name in used and v.name not in ios]
        ends = []
        for t in (self.inp, self.out):
            vi = _valueinfo(model, t)
            if vi is None or not vi.type.tensor_type.HasField("shape"):
                raise BinaryHPEError(f"cannot partition the graph at tensor {t!r}: it has no shape after shape "
                                     "inference (give the QONNX file its ValueInfos)")
            ends.append(copy.deepcopy(vi))
        graph = helper.make_graph(nodes, self.name, [ends[0]], [ends[1]], initializer=inits, value_info=vis)
        for qa in g.quantization_annotation:
            if qa.tensor_name in used:
                graph.quantization_annotation.append(copy.deepcopy(qa))
        m = helper.make_model(graph, opset_imports=list(model.model.opset_import))
        m.ir_version = model.model.ir_version
        return ModelWrapper(m, fix_missing_initializer_valueinfo=False), False


class ValidateGraph:
    """The graph is valid ONNX before anything maps it: ``onnx.checker.check_model`` (single assignment, every
    input defined, opsets) and ONNX's strict shape inference with qonnx's custom ops hidden as qonnx's
    ``InferShapes`` hides them (a weight tensor that does not fit its Conv, a MatMul of incompatible shapes,
    a declared shape that contradicts the inferred one). A failure is one ``BinaryHPEError`` naming the node
    when ONNX names one. ``apply`` returns ``(model, False)``."""

    def apply(self, model):
        import copy
        import re

        import onnx
        import onnx.shape_inference as si
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.transformation.infer_shapes import _hide_finn_ops

        from binaryhpe.qonnx_passes import ValueInfoLookup

        try:
            onnx.checker.check_model(model.model)
        except Exception as e:  # noqa: BLE001 - onnx.checker raises ValidationError and others
            raise BinaryHPEError(f"the graph is not valid ONNX ({_first_line(e)}): re-export the model") from None
        try:
            m = ModelWrapper(copy.deepcopy(model.model), fix_missing_initializer_valueinfo=False)
            _hide_finn_ops(ValueInfoLookup(m))  # qonnx's, with the ValueInfos indexed once (it scans per node)
            si.infer_shapes(m.model, check_type=True, strict_mode=True)
        except Exception as e:  # noqa: BLE001 - onnx raises InferenceError, qonnx AttributeError/KeyError
            msg = _first_line(e)
            hit = re.search(r"op_type:(\w+), node name: ([^)]+)\)", msg)
            where = f"cannot map node {hit.group(2)!r} (op type {hit.group(1)}): " if hit else ""
            raise BinaryHPEError(f"{where}ONNX shape inference fails on the graph ({msg}): fix the shapes, "
                                 "attributes or weights of the exported model") from None
        _check_qonnx_ops(model)
        return model, False


#: qonnx's custom ops: their inputs (ONNX's checker does not know them)
QONNX_OP_INPUTS = {"Quant": ("x", "scale", "zero point", "bit width"), "BipolarQuant": ("x", "scale"),
                   "Trunc": ("x", "scale", "zero point", "input bit width", "output bit width")}
#: qonnx's Trunc version 2 (an output scale before the output bit width)
TRUNC_V2_INPUTS = ("x", "scale", "zero point", "input bit width", "output scale", "output bit width")


def _check_qonnx_ops(mw) -> None:
    """Quant / BipolarQuant / Trunc nodes have their inputs, and their constant parameters are usable: non-empty,
    finite, a positive scale that broadcasts to the input, a positive integer bit width."""
    from onnx import numpy_helper

    inits = {i.name: i for i in mw.graph.initializer}
    shapes = {}
    for vi in [*mw.graph.input, *mw.graph.output, *mw.graph.value_info]:
        if vi.type.tensor_type.HasField("shape"):
            shapes.setdefault(vi.name, [d.dim_value for d in vi.type.tensor_type.shape.dim])
    for n in mw.graph.node:
        names = QONNX_OP_INPUTS.get(n.op_type)
        if names is None:
            continue
        if n.op_type == "Trunc" and len(n.input) == len(TRUNC_V2_INPUTS):
            names = TRUNC_V2_INPUTS
        where = f"cannot map node {n.name!r} (op type {n.op_type})"
        if len(n.input) != len(names) or not all(n.input):
            raise BinaryHPEError(f"{where}: takes {len(names)} inputs ({', '.join(names)}), has "
                                 f"{sum(1 for i in n.input if i)}: fix the exported model")
        xshape = shapes.get(n.input[0]) if n.input[0] not in inits else list(inits[n.input[0]].dims)
        for role, t in zip(names[1:], n.input[1:]):
            if t not in inits:
                continue  # computed parameters: the lowering says whether it takes them
            v = numpy_helper.to_array(inits[t])
            bad = None
            if v.size == 0 or not np.all(np.isfinite(v)):
                bad = "is empty or not finite"
            elif "scale" in role and np.any(v <= 0):
                bad = "is not positive"
            elif "bit width" in role and (v.size != 1 or float(v.reshape(-1)[0]) != round(float(v.reshape(-1)[0]))
                                          or float(v.reshape(-1)[0]) < 1):
                bad = f"is not one positive integer ({v.reshape(-1)[:4].tolist()})"
            elif xshape is not None and role in ("scale", "zero point"):
                try:
                    if tuple(np.broadcast_shapes(v.shape, tuple(xshape))) != tuple(xshape):
                        bad = f"of shape {v.shape} does not broadcast to the input's {tuple(xshape)}"
                except ValueError:
                    bad = f"of shape {v.shape} does not broadcast to the input's {tuple(xshape)}"
            if bad:
                raise BinaryHPEError(f"{where}: its {role} {t!r} {bad}: fix the exported model")


def _first_line(e: Exception) -> str:
    """An exception's message on one line (ONNX's span lines; at most 400 characters)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {' '.join(lines)}"[:400]


class FindHostPre:
    """The host pre-processing of a graph: ``apply`` returns ``(model, False)`` and sets ``indices`` (the nodes
    before the first activation quantizer, graph order) and ``hw_input`` (the tensor that quantizer reads; the
    graph input when there is no pre-processing). Refuses, in one line, a graph whose input or pre-processed
    tensors are read by anything but the pre-processing and that one quantizer."""

    def __init__(self):
        self.indices: list[int] = []
        self.hw_input: str | None = None

    def apply(self, model):
        g = model.graph
        inits = _inits(model)
        iname = g.input[0].name
        self.hw_input = iname
        first = next((i for i, n in enumerate(g.node) if n.op_type in ("Quant", "BipolarQuant")
                      and n.input and n.input[0] not in inits), None)
        if first is None or g.node[first].input[0] == iname:
            return model, False
        q = g.node[first]
        t = q.input[0]
        prod = _producers(model)
        todo, pre = [t], set()
        while todo:
            x = todo.pop()
            if x == iname or x in inits or x not in prod:
                continue
            i = prod[x]
            if i not in pre:
                pre.add(i)
                todo.extend(s for s in g.node[i].input if s)
        if not any(iname in g.node[i].input for i in pre):
            return model, False  # the first quantizer does not read the input: leave it to the lowering
        cons = _consumers(model)
        host_tensors = {iname} | {o for i in pre for o in g.node[i].output}
        for x in sorted(host_tensors):
            for c in cons.get(x, []):
                if c in pre or (c == first and x == t):
                    continue
                n = g.node[c]
                raise BinaryHPEError(
                    f"cannot map node {n.name!r} (op type {n.op_type}): it reads {x!r}, a float tensor of the "
                    f"host pre-processing before the first quantizer {q.name!r}; the hardware region must start "
                    "at one quantizer: quantize the input once and read only its output")
        self.indices = sorted(pre)
        self.hw_input = t
        return model, False


# ---------------------------------------------------------------------------------------------------------
# the partition


@dataclass
class HostPartition:
    """A QONNX model cut into host pre-processing, a hardware region and host post-processing."""

    full: object  # the whole cleaned QONNX ModelWrapper
    hw: object  # the hardware region (``full`` itself when nothing stays on the host)
    pre_nodes: list = field(default_factory=list)  # node names, graph order
    post_nodes: list = field(default_factory=list)
    hw_input: str = ""
    hw_output: str = ""
    pre: object = None  # ModelWrapper of the pre-processing (None without)
    post: object = None  # ModelWrapper of the post-processing (None without)
    lowered: object = None  # the HwGraph of ``hw`` found while partitioning (before any pass)
    reasons: dict = field(default_factory=dict)  # post node that moved the cut -> the refusal that moved it

    @property
    def host_nodes(self) -> list:
        """The names of the nodes that run on the host, pre then post ([] when none)."""
        return [*self.pre_nodes, *self.post_nodes]

    @property
    def full_input(self) -> str:
        return self.full.graph.input[0].name

    @property
    def full_output(self) -> str:
        return self.full.graph.output[0].name

    def run_pre(self, x: np.ndarray) -> dict:
        """The pre-processing of one frame ``x`` of the full graph's input (batch dimension included) by the exact
        reference's executor (float64): every pre tensor by name, ``hw_input`` among them."""
        x = np.asarray(x, dtype=np.float64)
        if self.pre is None:
            return {self.hw_input: x}
        from binaryhpe.compile.reference import exact_reference

        return dict(exact_reference(self.pre, x).context)

    def hw_frame(self, x: np.ndarray) -> np.ndarray:
        """The hardware region's input (float64, batch dimension included) for a frame of the full graph's input."""
        return np.asarray(self.run_pre(x)[self.hw_input], dtype=np.float64)

    def run_post(self, ctx: dict) -> np.ndarray:
        """The full graph's output from ``ctx[hw_output]`` (the hardware region's output, real values, batch
        dimension included), by the exact reference's executor. (The post part starts with a copy of the hardware
        output's quantizer, if one produces it: see ``_requantize_host_input``.)"""
        y = np.asarray(ctx[self.hw_output], dtype=np.float64)
        if self.post is None:
            return y
        from binaryhpe.compile.reference import exact_reference

        return exact_reference(self.post, y).output

    def run_full(self, x: np.ndarray) -> np.ndarray:
        """The whole graph's exact reference output of one frame of its input (batch dimension included)."""
        from binaryhpe.compile.reference import exact_reference

        return exact_reference(self.full, np.asarray(x, dtype=np.float64)).output

    def summary(self) -> str:
        """One line for the build's output."""
        if not self.host_nodes:
            return "host nodes: none (the whole graph is hardware)"
        parts = []
        if self.pre_nodes:
            parts.append(f"pre {', '.join(self.pre_nodes)}")
        if self.post_nodes:
            parts.append(f"post {', '.join(self.post_nodes)}")
        return f"host nodes ({len(self.host_nodes)}): " + "; ".join(parts) + \
            f" (hardware region: {self.hw_input!r} -> {self.hw_output!r})"


def _downstream(mw, start: int) -> set:
    """``start`` and every node that reads, directly or not, one of its outputs."""
    g = mw.graph
    cons = _consumers(mw)
    seen, todo = set(), [start]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        for o in g.node[i].output:
            todo.extend(cons.get(o, []))
    return seen


def _tail_chain(mw, post: set, inits: set) -> set:
    """Grow ``post`` back over the float epilogue chain that feeds it (``TAIL_EPILOGUE_OPS`` with one non-constant
    input whose outputs only the host reads), so the hardware's output is the last integer tensor."""
    g = mw.graph
    prod, cons = _producers(mw), _consumers(mw)
    post = set(post)
    while True:
        crossing = {t for i in post for t in g.node[i].input if t and t not in inits and prod.get(t) not in post
                    and t in prod}
        if len(crossing) != 1:
            return post
        p = prod[crossing.pop()]
        n = g.node[p]
        live = [t for t in n.input if t and t not in inits]
        if n.op_type not in TAIL_EPILOGUE_OPS or len(live) != 1 or live[0] not in prod:
            return post
        if any(c not in post for o in n.output for c in cons.get(o, [])):
            return post
        post.add(p)


def _constant_feeders(mw, post: set, pre: set, inits: set) -> set:
    """Add to ``post`` the nodes of constants only (a weight quantizer of a float head) that only the host
    reads."""
    g = mw.graph
    cons = _consumers(mw)
    post = set(post)
    changed = True
    while changed:
        changed = False
        for i, n in enumerate(g.node):
            if i in post or i in pre:
                continue
            readers = [c for o in n.output for c in cons.get(o, [])]
            if readers and all(c in post for c in readers) and all(t in inits for t in n.input if t):
                post.add(i)
                changed = True
    return post


def partition_host(mw, source: str = "") -> HostPartition:
    """Cut ``mw`` (a cleaned QONNX ModelWrapper) into host pre-processing, hardware region and host
    post-processing (module doc). The hardware region is lowered here (``HostPartition.lowered``); a refusal that
    cannot move to the host is raised as is."""
    from binaryhpe.compile.lower_base import Lowerer

    g = mw.graph
    if not g.node:
        raise BinaryHPEError("the graph has no nodes: nothing to map (an empty file, or a model exported without "
                             "its graph)")
    if len(g.input) != 1 or len(g.output) != 1:
        raise BinaryHPEError(f"the graph has {len(g.input)} inputs and {len(g.output)} outputs; the hardware flow "
                             "takes exactly one input and one output (export the network with one of each)")
    ValidateGraph().apply(mw)
    inits = _inits(mw)
    fp = FindHostPre()
    fp.apply(mw)
    pre = set(fp.indices)
    post: set = set()
    reasons: dict = {}
    out = g.output[0].name
    for _ in range(len(g.node) + 1):
        if not pre and not post:
            hw = mw
        else:
            keep = [i for i in range(len(g.node)) if i not in pre and i not in post]
            if not keep:
                raise BinaryHPEError(f"no node of the graph maps to hardware: {next(iter(reasons.values()))}")
            hw, _ = ExtractRegion(keep, fp.hw_input, out, f"{g.name or 'graph'}_hw").apply(mw)
        L = Lowerer(hw, source=source)
        try:
            lowered = L.run()
            break
        except BinaryHPEError as e:
            name = getattr(e, "node", None)
            idx = next((i for i, n in enumerate(g.node) if n.name == name and i not in pre and i not in post), None)
            if idx is None or _is_act_quant(g.node[idx], inits):
                raise
            down = _downstream(mw, idx)
            if any(_is_act_quant(g.node[i], inits) for i in down):
                raise
            new_post = _constant_feeders(mw, _tail_chain(mw, post | down, inits), pre, inits)
            prod = _producers(mw)
            crossing = sorted({t for i in new_post for t in g.node[i].input
                               if t and t not in inits and prod.get(t) not in new_post})
            if len(crossing) != 1 or crossing[0] == fp.hw_input:
                raise BinaryHPEError(f"{e} (the host cannot take it either: the hardware region would end in "
                                     f"{len(crossing)} tensors {', '.join(crossing)}; it must end in one)") from None
            reasons[g.node[idx].name] = str(e)
            post = new_post
            out = crossing[0]
    else:  # pragma: no cover - each round moves at least one node to the host
        raise BinaryHPEError("partitioning the graph did not converge")
    if not lowered.layers:
        q = next(n for n in g.node if fp.hw_input in n.input and n.op_type in ("Quant", "BipolarQuant"))
        raise BinaryHPEError(f"cannot map node {q.name!r} (op type {q.op_type}): the hardware region it starts holds "
                             f"no layer (its input {fp.hw_input!r} comes from float nodes that stay on the host, "
                             f"and nothing after it maps to hardware): quantize the input of the first layer")
    p = HostPartition(full=mw, hw=hw, hw_input=fp.hw_input, hw_output=out, lowered=lowered, reasons=reasons,
                      pre_nodes=[g.node[i].name for i in sorted(pre)],
                      post_nodes=[g.node[i].name for i in sorted(post)])
    if pre:
        p.pre, _ = ExtractRegion(pre, g.input[0].name, fp.hw_input, f"{g.name or 'graph'}_pre").apply(mw)
    if post:
        p.post, _ = ExtractRegion(post, out, g.output[0].name, f"{g.name or 'graph'}_post").apply(mw)
        _requantize_host_input(p.post, mw, out)
    return p


def _requantize_host_input(post, mw, out: str) -> None:
    """When the hardware's output comes from an activation quantizer (integers ``q`` times a float scale ``s``),
    the post part starts with a copy of it (``ROUND`` mode: the value is on its grid already) so that the exact
    reference's executor knows its input as ``q * s`` exactly, as it does in the whole graph, and not as the float64
    rounding of ``q * s`` (a float MatMul/Gemm on the host then rounds once, the same way in both)."""
    import copy

    from onnx import helper

    g = mw.graph
    prod = next((n for n in g.node if out in n.output), None)
    inits = {i.name: i for i in g.initializer}
    if prod is None or not all(i in inits for i in prod.input[1:]):
        return
    if prod.op_type == "Trunc" and len(prod.input) == len(TRUNC_V2_INPUTS):
        # a Trunc (version 2) gives integers times its output scale: the same grid as a Quant of that scale
        at = {a.name: a.i for a in prod.attribute if a.name in ("signed", "narrow")}
        prod = helper.make_node("Quant", [prod.input[0], prod.input[4], prod.input[2], prod.input[5]], [out],
                                name=prod.name, domain=prod.domain, signed=at.get("signed", 1), narrow=0,
                                rounding_mode="ROUND")
    if prod.op_type not in ("Quant", "BipolarQuant"):
        return
    pg = post.graph
    host_in = f"{out}__hw"
    vi = copy.deepcopy(pg.input[0])
    vi.name = host_in
    old = pg.input[0]
    pg.value_info.append(copy.deepcopy(old))
    del pg.input[:]
    pg.input.append(vi)
    node = copy.deepcopy(prod)
    node.name = f"{prod.name}__host"
    node.input[0] = host_in
    if node.op_type == "Quant":
        for a in node.attribute:
            if a.name == "rounding_mode":
                a.s = b"ROUND"
    have = {i.name for i in pg.initializer}
    for t in prod.input[1:]:
        if t not in have:
            pg.initializer.append(copy.deepcopy(inits[t]))
    pg.node.insert(0, node)
    if not any(a.name == "rounding_mode" for a in node.attribute) and node.op_type == "Quant":
        node.attribute.append(helper.make_attribute("rounding_mode", "ROUND"))
    post.__dict__.pop("_bhpe_float64", None)
