"""Hardware graph -> a stitched SystemVerilog top level plus ROM files (the RTL backend).

Only the thin top level and the memory files are generated; every layer is an instance of a hand-written,
parameterized module of ``hw/rtl`` named by its kind (``HwLayer.rtl_module``). Streams between layers are
``<tensor>_tdata/_tvalid/_tready`` wires (plus ``_tmask`` for sliding-window outputs). Input ports are
``in_*`` for one input and ``a_*``/``b_*`` for two, except where a kind names them (``rtl_in_ports``): the
fused epilogue's are ``in_*`` (the chain) and ``b_*`` (the JoinAdd operand, tied off when it has none).

Weight streams: every matrix-vector unit whose weights are streamed from DRAM (``weight_source = "stream"``,
module ``bhpe_mvu_wstream``) gets a top-level AXI-Stream input ``w_<layer>_tdata/_tvalid/_tready``. Its
TDATA is the unit's weight word rounded up to whole bytes (the word in the low bits, the padding ignored);
per output pixel the unit takes its whole folded matrix, ``NF*SF`` words in the order ``nf*SF + sf`` (the ROM
image of the other MVUs), pixels in raster order, frames back to back: ``pixels*NF*SF`` beats a frame. The
generator writes that matrix image once as ``wstream/<layer>.bin`` (little-endian, ``port_bits/8`` bytes a
word) for a DMA to replay ``pixels`` times a frame, and lists every weight port in the manifest
(``weight_streams``).
"""

from __future__ import annotations

import json
import pathlib
import re

from binaryhpe import BinaryHPEError
from binaryhpe.compile.graph import HwGraph
from binaryhpe.compile.kinds.epilogue import OP_CODES, Epilogue

TOP = "bhpe_top"


def _ident(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return ("t_" + s) if not s[0].isalpha() else s


def _ports(n: int) -> list[str]:
    return ["in"] if n == 1 else ["a", "b"]


def _out_ports(n: int) -> list[str]:
    return ["out"] if n == 1 else ["a", "b"]


def _width(g: HwGraph, t: str) -> int:
    info = g.tensors[t]
    return info.lanes * info.fmt.width


def sv_param(v) -> str:
    """A parameter value as SystemVerilog text (sized packed vectors, bits, strings, integers)."""
    if hasattr(v, "sv"):  # a packed-vector parameter of a fixed width (kinds/epilogue.py SvBits)
        return v.sv()
    if isinstance(v, bool):
        return "1'b1" if v else "1'b0"
    if isinstance(v, str):
        return f'"{v}"'
    return str(int(v))


def check_rtl_kinds(g) -> None:
    """Refuse, in one line naming the layer, a hardware graph holding a kind that has no dataflow RTL module
    (``HwLayer.rtl_module`` empty: ``PhaseShuffle``, a transposed convolution's interleave)."""
    for lay in g.layers:
        if not lay.rtl_module and not hasattr(lay, "rtl_top") and type(lay) not in OP_CODES:
            raise BinaryHPEError(f"layer {lay.name!r} ({type(lay).__name__}): the dataflow design has no RTL module "
                                 "for this kind (transposed convolutions run on the layer-sequential engine): build "
                                 "with --arch engine or --arch auto")


def module_and_params(lay) -> tuple[str, dict]:
    """The module a layer instantiates and its parameters; a stand-alone elementwise op (a graph that did not
    go through FuseEpilogue) is a one-op ``bhpe_epilogue``."""
    if hasattr(lay, "rtl_top"):
        return lay.rtl_top()
    if type(lay) in OP_CODES:
        unit = Epilogue(name=lay.name, ops=[lay])
        return unit.rtl_module, dict(unit.rtl_params())
    return lay.rtl_module, dict(lay.rtl_params())


def check_stream_widths(g: HwGraph) -> None:
    """Every port a layer's RTL declares (``in_streams`` / ``out_streams``) has the width, lane count and
    signedness of the tensor wired to it; raises naming the layer, the port and the tensor's producer.

    ``generate`` declares one bus per tensor, so a port wider than its bus would be zero-extended by
    SystemVerilog without a word (a negative value read as a large positive one): a pass that changes a
    tensor's format must change its consumers' ports with it, and this is where a miss is caught."""
    for lay in g.layers:
        for side, specs, tensors in (("input", lay.in_streams(), lay.inputs),
                                     ("output", lay.out_streams(), lay.outputs)):
            for i, (spec, t) in enumerate(zip(specs, tensors)):
                info = g.tensors[t]
                width = info.fmt.width
                if (spec.width, spec.lanes) == (width, info.lanes) and (width == 1 or spec.signed == info.fmt.signed):
                    continue
                prod = g.producer(t)
                src = f"produced by {prod.name} ({type(prod).__name__})" if prod else "the graph's input"
                raise BinaryHPEError(
                    f"layer {lay.name} ({type(lay).__name__}): {side} {i} takes {spec.lanes} x "
                    f"{'s' if spec.signed else 'u'}{spec.width} bits, but tensor {t} ({src}) is {info.lanes} x "
                    f"{info.fmt} ({width} bits): a pass left the port and the stream at different widths")


def generate(g: HwGraph, out_dir, top: str = TOP) -> dict:
    """Write ``top.sv`` and ``mem/*.hex`` into ``out_dir``; return a manifest (files, ports, instances).
    Refuses a graph whose ports and streams differ in width (:func:`check_stream_widths`)."""
    check_stream_widths(g)
    out = pathlib.Path(out_dir)
    (out / "mem").mkdir(parents=True, exist_ok=True)
    for old in (out / "mem").glob("*.hex"):
        old.unlink()
    lines = [
        f"// Generated by binaryhpe from {pathlib.Path(g.source).name if g.source else 'a hardware graph'}: do not edit.",
        f"// {len(g.layers)} layers; streams are valid/ready (AXI-Stream semantics), raster order, channels last.",
        f"module {top} (",
        "  input  logic clk_i,",
        "  input  logic rst_ni,",
        f"  input  logic [{_width(g, g.input) - 1}:0] in_tdata,",
        "  input  logic in_tvalid,",
        "  output logic in_tready,",
        f"  output logic [{_width(g, g.output) - 1}:0] out_tdata,",
        "  output logic out_tvalid,",
        "  input  logic out_tready",
        ");",
    ]
    wstreams = [lay for lay in g.layers if lay.streamed]
    if wstreams:  # one AXI-Stream weight input per streamed MVU, after the data ports
        lines[-2] = lines[-2] + ","
        ports = []
        for lay in wstreams:
            w = f"w_{_ident(lay.name)}"
            ports += [f"  input  logic [{lay.wstream_port_bits - 1}:0] {w}_tdata,", f"  input  logic {w}_tvalid,",
                      f"  output logic {w}_tready,"]
        ports[-1] = ports[-1].rstrip(",")
        lines[-1:-1] = ports
    for t, info in g.tensors.items():
        if not any(t in lay.inputs or t in lay.outputs for lay in g.layers) and t != g.input:
            continue
        w = _width(g, t)
        n = _ident(t)
        lines.append(f"  logic [{w - 1}:0] {n}_tdata;")
        lines.append(f"  logic {n}_tvalid, {n}_tready;")
        if info.windowed:
            lines.append(f"  logic [{info.lanes - 1}:0] {n}_tmask;")
    inp, outp = _ident(g.input), _ident(g.output)
    for lay in wstreams:
        w, word, port = f"w_{_ident(lay.name)}", lay.wstream_word_bits, lay.wstream_port_bits
        if port > word:  # byte padding of the weight port (named unused_* for lint)
            lines += [f"  logic unused_{w}_pad;", f"  assign unused_{w}_pad = ^{w}_tdata[{port - 1}:{word}];"]
    lines += [
        f"  assign {inp}_tdata = in_tdata;",
        f"  assign {inp}_tvalid = in_tvalid;",
        f"  assign in_tready = {inp}_tready;",
        f"  assign out_tdata = {outp}_tdata;",
        f"  assign out_tvalid = {outp}_tvalid;",
        f"  assign {outp}_tready = out_tready;",
        "",
    ]
    manifest = {"top": top, "instances": [], "memories": []}
    for lay in g.layers:
        mod, params = module_and_params(lay)
        for pname, words in lay.rtl_memories().items():
            fname = f"mem/{_ident(lay.name)}_{pname}.hex"
            (out / fname).write_text("".join(f"{w:x}\n" for w in words))
            params[pname] = fname
            manifest["memories"].append(fname)
        plist = ",\n".join(f"    .{k}({sv_param(v)})" for k, v in params.items())
        conns = ["    .clk_i(clk_i)", "    .rst_ni(rst_ni)"]
        in_ports = lay.rtl_in_ports() if hasattr(lay, "rtl_in_ports") else _ports(len(lay.inputs))
        for port, t in zip(in_ports, lay.inputs):
            n = _ident(t)
            conns += [f"    .{port}_tdata({n}_tdata)", f"    .{port}_tvalid({n}_tvalid)",
                      f"    .{port}_tready({n}_tready)"]
            if g.tensors[t].windowed:
                conns.append(f"    .{port}_tmask({n}_tmask)")
        for port, t in zip(_out_ports(len(lay.outputs)), lay.outputs):
            n = _ident(t)
            conns += [f"    .{port}_tdata({n}_tdata)", f"    .{port}_tvalid({n}_tvalid)",
                      f"    .{port}_tready({n}_tready)"]
            if g.tensors[t].windowed:
                conns.append(f"    .{port}_tmask({n}_tmask)")
        if lay.mask_in and not g.tensors[lay.inputs[0]].windowed:  # no window generator: every tap is real
            conns.append(f"    .in_tmask({{{lay.simd}{{1'b1}}}})")
        for port in in_ports[len(lay.inputs):]:  # an optional input stream left unused (tied off)
            sink = f"unused_{_ident(lay.name)}_{port}_tready"
            lines.append(f"  logic {sink};")
            conns += [f"    .{port}_tdata('0)", f"    .{port}_tvalid(1'b0)", f"    .{port}_tready({sink})"]
        if lay.streamed:
            w = f"w_{_ident(lay.name)}"
            conns += [f"    .w_tdata({w}_tdata[{lay.wstream_word_bits - 1}:0])", f"    .w_tvalid({w}_tvalid)",
                      f"    .w_tready({w}_tready)"]
        lines.append(f"  {mod} #(\n{plist}\n  ) u_{_ident(lay.name)} (\n" + ",\n".join(conns) + "\n  );\n")
        manifest["instances"].append({"name": lay.name, "module": mod, "params": params})
    lines.append("endmodule")
    (out / f"{top}.sv").write_text("\n".join(lines) + "\n")
    manifest["in_width"], manifest["out_width"] = _width(g, g.input), _width(g, g.output)
    if wstreams:
        manifest["weight_streams"] = write_weight_streams(wstreams, out)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def write_weight_streams(layers, out: pathlib.Path) -> list[dict]:
    """Write ``wstream/<layer>.bin`` (one pass over each streamed MVU's matrix, the words in the order the
    RTL consumes them, ``port_bits/8`` little-endian bytes a word) and describe each weight port."""
    d = out / "wstream"
    d.mkdir(exist_ok=True)
    for old in d.glob("*.bin"):
        old.unlink()
    rows = []
    for lay in layers:
        nbytes = lay.wstream_port_bits // 8
        fname = f"wstream/{_ident(lay.name)}.bin"
        (out / fname).write_bytes(b"".join(int(w).to_bytes(nbytes, "little") for w in lay.wstream_matrix_words()))
        rows.append({"layer": lay.name, "port": f"w_{_ident(lay.name)}", "word_bits": lay.wstream_word_bits,
                     "port_bits": lay.wstream_port_bits, "words_per_pixel": lay.nf * lay.sf, "pixels": lay.pixels,
                     "words_per_frame": lay.wstream_words_per_frame,
                     "bytes_per_frame": lay.wstream_bytes_per_frame, "image": fname,
                     "order": "per output pixel (raster order), words nf*SF + sf for nf < NF, sf < SF: slot p*Simd+s "
                              "= weight of channel nf*Pe+p, window element sf*Simd+s; the image once per pixel",
                     "pe": lay.pe, "simd": lay.simd, "nf": lay.nf, "sf": lay.sf})
    return rows


def rtl_library() -> list[pathlib.Path]:
    """The hand-written RTL library in compile order (bhpe_pkg first)."""
    from binaryhpe.sim.toolchain import rtl_library as lib

    return lib()
