"""``host.txt``: what the C loader (``runtime/engine.c``, ``bhpe_program_load``) needs of a compiled engine program
beyond ``descriptors.bin`` and ``dram.bin``, in lines a C program reads with ``sscanf`` (docs/host.md):

    desc_addr=<bytes>
    frame h=<H> w=<W> c=<C> s2d=<0|1>
    input addr=<bytes> pix_stride=<words> h=<H> w=<W> c=<C> ew=<bits> words=<words> signed=<0|1>
    output addr=<bytes> pix_stride=<words> h=<H> w=<W> c=<C> ew=<bits> words=<words> signed=<0|1>

``frame`` is the graph input's (H, W, C); ``s2d`` 1 when the program stores it space-to-depth (the input tensor
is then (H/2, W/2, 4C)). Tensor fields as ``compile.engine.program.TensorPlace``.
"""

from __future__ import annotations

import pathlib


def _tensor(key: str, t) -> str:
    h, w, c = t.shape
    return (f"{key} addr={t.addr} pix_stride={t.pix_stride} h={h} w={w} c={c} ew={t.ew} words={t.words} "
            f"signed={int(t.signed)}")


def host_header(program) -> str:
    """The text of ``host.txt`` for a ``compile.engine.program.Program``."""
    fh, fw, fc = tuple(program.input_shape or program.input.shape)
    return "\n".join([f"desc_addr={program.desc_addr}", f"frame h={fh} w={fw} c={fc} s2d={int(program.input_s2d)}",
                      _tensor("input", program.input), _tensor("output", program.output)]) + "\n"


def write_host_header(program, engine_dir) -> pathlib.Path:
    """Write ``engine_dir/host.txt`` (``engine_dir`` = ``OUT/engine``, beside descriptors.bin and dram.bin)."""
    p = pathlib.Path(engine_dir) / "host.txt"
    p.write_text(host_header(program))
    return p


__all__ = ["host_header", "write_host_header"]
