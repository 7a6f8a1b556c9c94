"""The shared cache of compiled Verilator models (sim/buildcache.py): its key covers every input of a build
(sources, `included files, harness, flags, toolchain environment), the same design in two folders is one model,
two processes wanting one model build it once, and a changed RTL is rebuilt and simulated as changed."""

import multiprocessing
import pathlib
import subprocess

import pytest

from binaryhpe.sim import buildcache, netsim
from binaryhpe.sim.toolchain import rtl_dir, setup_verilator


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BINARYHPE_SIM_CACHE", str(tmp_path / "cache"))
    setup_verilator()


def _tree(root: pathlib.Path, pkg: str = "package p; endpackage\n", top: str = "module t; endmodule\n"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "p_pkg.sv").write_text(pkg)
    (root / "inc.svh").write_text("`define W 8\n")
    (root / "t.sv").write_text('`include "inc.svh"\n' + top)
    return [root / "p_pkg.sv", root / "t.sv"]


def test_key_covers_every_input(tmp_path, monkeypatch):
    srcs = _tree(tmp_path / "a")
    files = buildcache.sv_closure(srcs)
    assert tmp_path / "a" / "inc.svh" in files  # the `included file is an input too
    base = buildcache.key_of(["cmd"], files)
    assert buildcache.key_of(["cmd"], buildcache.sv_closure(srcs)) == base
    assert buildcache.key_of(["cmd -O3"], files) != base  # flags
    (tmp_path / "a" / "inc.svh").write_text("`define W 9\n")  # an included file
    assert buildcache.key_of(["cmd"], buildcache.sv_closure(srcs)) != base
    (tmp_path / "a" / "inc.svh").write_text("`define W 8\n")
    (tmp_path / "a" / "t.sv").write_text('`include "inc.svh"\nmodule t; wire x; endmodule\n')  # a source
    assert buildcache.key_of(["cmd"], buildcache.sv_closure(srcs)) != base
    _tree(tmp_path / "a")
    assert buildcache.key_of(["cmd"], buildcache.sv_closure(srcs)) == base
    monkeypatch.setenv("CXXFLAGS", "-O0")  # the compiler's environment
    assert buildcache.key_of(["cmd"], files) != base


def _count_build(args):
    key, root, marks = args
    import os

    os.environ["BINARYHPE_SIM_CACHE"] = root

    def build(folder: pathlib.Path) -> None:
        import time

        with open(marks, "a") as f:
            f.write("built\n")
        time.sleep(1.0)
        (folder / "exe").write_text("x")

    return str(buildcache.cached_build(key, "exe", build))


def test_two_processes_build_one_model_once(tmp_path):
    marks = tmp_path / "marks.txt"
    args = ("k" * 24, str(tmp_path / "cache"), str(marks))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        paths = pool.map(_count_build, [args, args])
    assert paths[0] == paths[1] and pathlib.Path(paths[0]).read_text() == "x"
    assert marks.read_text().count("built") == 1


def test_failed_build_leaves_nothing(tmp_path):
    def bad(folder):
        (folder / "half").write_text("")
        raise RuntimeError("compiler failed")

    with pytest.raises(RuntimeError, match="compiler failed"):
        buildcache.cached_build("b" * 24, "exe", bad)
    assert [p.name for p in buildcache.cache_root().iterdir() if not p.name.endswith(".lock")] == []


# a whole-network top level for the harness: out = in + ADD (W bits), through the library's FIFO
TOP = """module bhpe_top (
  input  logic clk_i, input logic rst_ni,
  input  logic [{w}-1:0] in_tdata, input logic in_tvalid, output logic in_tready,
  output logic [{w}-1:0] out_tdata, output logic out_tvalid, input logic out_tready
);
  logic [{w}-1:0] d;
  assign d = in_tdata + {w}'d{add};
  bhpe_fifo #(.Width({w}), .Depth(4)) u_f (.clk_i, .rst_ni, .in_tdata(d), .in_tvalid, .in_tready,
                                          .out_tdata, .out_tvalid, .out_tready);
endmodule
"""


def _design(folder: pathlib.Path, add: int, w: int = 8) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bhpe_top.sv").write_text(TOP.format(add=add, w=w))
    return folder


def _run(exe: pathlib.Path, folder: pathlib.Path, values=tuple(range(8))) -> list[int]:
    (folder / "in.hex").write_text("".join(f"{v:x}\n" for v in values))
    r = subprocess.run([str(exe), "in.hex", "out.txt", "2", "4", "4", "0", "0", "1", "1000", "20"], cwd=folder,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return [int(ln.split()[1], 16) for ln in (folder / "out.txt").read_text().splitlines() if not ln.startswith("#")]


def test_same_design_is_one_model_and_a_changed_rtl_rebuilds(tmp_path):
    lib = [rtl_dir() / n for n in ("bhpe_pkg.sv", "bhpe_fifo.sv", "bhpe_stream_assert.sv")]
    a = netsim.build(_design(tmp_path / "a", 1), lib, verbose=False)
    b = netsim.build(_design(tmp_path / "b", 1), lib, verbose=False)  # the same design generated elsewhere
    assert a == b
    assert _run(a, tmp_path / "a") == [v + 1 for v in range(8)]
    c = netsim.build(_design(tmp_path / "a", 3), lib, verbose=False)  # the RTL changed in place
    assert c != a
    assert _run(c, tmp_path / "a") == [v + 3 for v in range(8)]
    w = netsim.build(_design(tmp_path / "a", 3), lib, waves=True, verbose=False)  # a trace build is another model
    assert w not in (a, c)


def test_harness_streams_wider_than_64_bits(tmp_path):
    # 100-bit streams (Verilator's VlWide<4> ports): every bit in and out, carries across the 32-bit words
    lib = [rtl_dir() / n for n in ("bhpe_pkg.sv", "bhpe_fifo.sv", "bhpe_stream_assert.sv")]
    exe = netsim.build(_design(tmp_path / "w", 1, w=100), lib, verbose=False)
    full = 2**100 - 1
    values = [0, 1, full - 1, 2**64 - 1, 2**96 - 1, 2**32 - 1, 0x1234_5678_9ABC_DEF0_1357_9BDF_2, full >> 1]
    assert _run(exe, tmp_path / "w", values) == [(v + 1) % 2**100 for v in values]
