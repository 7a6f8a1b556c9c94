"""The host runtime (compile/host, docs/host.md): each C kernel against the PyTorch function of train/ on seeded
inputs, the engine driver against a software model of the control registers, the program loader against the
compiler's Program, the same C for the Cortex-A53 under qemu-aarch64, and the A53 time model.

Tolerance of the float kernels: these are host float32 operations, not hardware integers. The C output must be
within 1e-5 relative of the float64 PyTorch reference on the same float32 inputs, plus 1e-6 of the output's
largest magnitude (for values near zero); Linear within 1e-5 of sum |w_i x_i| + |b| per output.

Needs gcc, aarch64-linux-gnu-gcc, arm-linux-gnueabihf-gcc, qemu-user and llvm (llvm-mca): `.ci/setup` installs
them; nothing here skips when one is missing (it fails, naming the command).
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from binaryhpe import BinaryHPEError
from binaryhpe.compile.host import a53
from binaryhpe.compile.host import build as B
from binaryhpe.train.boxnet import roi_align, sample_features, soft_argmax_2d, soft_argmax_3d
from binaryhpe.train.wholebody import crop_box, rot6d_to_axis_angle

ROOT = B.RUNTIME.parents[2]


@pytest.fixture(scope="module")
def host_exe(tmp_path_factory):
    return B.build_host(tmp_path_factory.mktemp("host"))


@pytest.fixture(scope="module")
def a53_exe(tmp_path_factory):
    return B.build_a53(tmp_path_factory.mktemp("a53"))


def _t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float32).astype(np.float64))


def _close(c, ref, rtol=1e-5):
    c, ref = np.asarray(c, np.float64).ravel(), np.asarray(ref, np.float64).ravel()
    assert c.shape == ref.shape
    scale = max(1e-30, float(np.abs(ref).max()))
    err = np.abs(c - ref)
    bad = err > rtol * np.abs(ref) + 1e-6 * scale
    assert not bad.any(), f"{bad.sum()} of {c.size} outside tolerance, worst {err.max():.3g} (scale {scale:.3g})"


# ---------------------------------------------------------------------------------------------------------
# the kernels: (name, inputs, params, float64 reference)


def _cases():
    rng = np.random.default_rng(16)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    cases = []
    for c, h, w, oh, ow in ((3, 20, 14, 9, 7), (2, 5, 4, 11, 9), (3, 64, 48, 32, 24)):
        x = f(c, h, w)
        cases.append((f"resize-{h}x{w}-{oh}x{ow}", "resize", [x], [c, h, w, oh, ow],
                      F.interpolate(_t(x)[None], size=(oh, ow), mode="bilinear", align_corners=False)[0]))
    hm = 3 * f(3, 12, 10)
    cases.append(("soft_argmax_2d", "soft_argmax_2d", [hm], [3, 12, 10], soft_argmax_2d(_t(hm)[None])[0]))
    hm3 = 3 * f(4 * 5, 6, 7)
    cases.append(("soft_argmax_3d", "soft_argmax_3d", [hm3], [4, 5, 6, 7], soft_argmax_3d(_t(hm3)[None], 4, 5)[0]))
    boxes = rng.random((6, 4)).astype(np.float32)
    for crop, scale in (((16, 16), 2.0), ((16, 12), 1.5)):
        cases.append((f"crop_box-{crop}", "crop_box", [boxes], [6, 64, 48, crop[0], crop[1], scale],
                      crop_box(_t(boxes), (64, 48), crop, scale)))
    img = f(3, 20, 16)
    for i, box in enumerate(([0.5, 0.4, 0.3, 0.5], [0.95, 0.05, 0.6, 0.4], [0.3, 0.6, 1e-4, 0.2])):
        box = np.array(box, np.float32)  # inside; over the corner (zeros outside); a width under min_size
        cases.append((f"roi_align-{i}", "roi_align", [img, box], [3, 20, 16, 8, 6, 1e-3],
                      roi_align(_t(img)[None], _t(box)[None], (8, 6))[0]))
    feat = f(5, 9, 7)
    xy = (rng.random((11, 2)) * 1.2 - 0.1).astype(np.float32)  # some points outside the map
    cases.append(("sample_features", "sample_features", [feat, xy], [5, 9, 7, 11],
                  sample_features(_t(feat)[None], _t(xy)[None])[0]))
    cases.append(("mean_pool", "mean_pool", [feat], [5, 9, 7], _t(feat).mean((1, 2))))
    r6 = np.concatenate([f(50, 6), np.array([[1, 0, 0, 1, 0, 0], [1, 0, 0, -1, 0, 0], [0, 1, 1, 0, 0, 0]],
                                            np.float32),
                         np.array([[1, 1e-7, 0, 1, 0, 0]], np.float32)])  # general; identity; pi; tiny angle
    cases.append(("rot6d_to_axis_angle", "rot6d_to_axis_angle", [r6], [len(r6)], rot6d_to_axis_angle(_t(r6))))
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_kernel_matches_pytorch(host_exe, case):
    _, name, inputs, params, ref = case
    _close(B.run_kernel(host_exe, name, inputs, params), ref.numpy())


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_pytorch(host_exe, bias):
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((301,), (17, 301), (17,)))
    y = B.run_kernel(host_exe, "linear", [x, w, b] if bias else [x, w], [301, 17, int(bias)])
    ref = F.linear(_t(x), _t(w), _t(b) if bias else None).numpy()
    bound = 1e-5 * (np.abs(w.astype(np.float64)) @ np.abs(x) + (np.abs(b) if bias else 0))
    assert (np.abs(y - ref) <= bound).all(), np.abs(y - ref).max()


def test_soft_argmax_3d_refuses_nothing_silently(host_exe):
    """A wrong input size is refused (one line naming the kernel), not read past."""
    with pytest.raises(BinaryHPEError, match="soft_argmax_3d: the input file holds"):
        B.run_kernel(host_exe, "soft_argmax_3d", [np.zeros(10, np.float32)], [4, 5, 6, 7])


def _smplx_case(tmp_path):
    from binaryhpe.train.smplx_model import SMPLXLayer, write_synthetic_smplx

    layer = SMPLXLayer(write_synthetic_smplx(tmp_path, n_verts=1000, seed=3)).double()
    m = layer.model
    rng = np.random.default_rng(5)
    p = {k: torch.from_numpy(0.3 * rng.standard_normal((1, d))) for k, d in
         (("root_pose", 3), ("body_pose", 63), ("lhand_pose", 45), ("rhand_pose", 45), ("jaw_pose", 3),
          ("shape", 10), ("expr", 10))}
    ref = layer(p)
    V = m.v_template.shape[0]
    full = torch.cat([p["root_pose"], p["body_pose"], p["jaw_pose"], torch.zeros(1, 6), p["lhand_pose"],
                      p["rhand_pose"]], 1)[0] + m.pose_mean
    arrays = [m.v_template, torch.cat([m.shapedirs, m.expr_dirs], 2), m.posedirs.T.reshape(V, 3, -1),
              m.J_regressor, m.lbs_weights]
    inputs = [a.detach().numpy().astype(np.float32) for a in arrays] + [
        m.parents.numpy().astype(np.int32), torch.cat([p["shape"], p["expr"]], 1)[0].numpy().astype(np.float32),
        full.numpy().astype(np.float32)]
    return inputs, [V, 55, 20], ref


def test_smplx_lbs_matches_smplx_layer(host_exe, tmp_path):
    """Linear blend skinning on the synthetic SMPL-X model (the official file format) against SMPLXLayer."""
    inputs, params, ref = _smplx_case(tmp_path)
    out = B.run_kernel(host_exe, "smplx", inputs, params)
    V = params[0]
    _close(out[:3 * V], ref["vertices"][0].numpy())
    _close(out[3 * V:], ref["joints"][0].numpy())
    assert np.abs(ref["vertices"][0].numpy() - inputs[0]).max() > 0.05  # the pose moved the mesh


# ---------------------------------------------------------------------------------------------------------
# the engine driver against the register model


def _regs_from_rtl() -> dict:
    """Register offsets of bhpe_eng_axil.sv: the read mux (s_axil_araddr[7:2]) and the write decode."""
    text = (ROOT / "hw" / "rtl" / "engine" / "bhpe_eng_axil.sv").read_text()
    rd = {v: 4 * int(k, 16) for k, v in re.findall(r"6'h([0-9a-f]+):\s+rdata = ([^;]+);", text)}
    wr = {v.strip(): 4 * int(k, 16) for k, v in re.findall(r"6'h([0-9a-f]+): (start_o|desc_addr_o\[\d+:\d+\])", text)}
    return {"CTRL": wr["start_o"], "STATUS": rd["{29'd0, error_i != 32'd0, busy_i, done_i}"],
            "DESC_LO": wr["desc_addr_o[31:0]"], "DESC_HI": wr["desc_addr_o[63:32]"],
            "CYCLES_LO": rd["cycles_i[31:0]"], "CYCLES_HI": rd["cycles_i[63:32]"], "LAYER": rd["layer_i"],
            "ERROR": rd["error_i"], "desc_lo_read": rd["desc_addr_o[31:0]"]}


def test_driver_offsets_are_the_rtls():
    rtl = _regs_from_rtl()
    hdr = (B.RUNTIME / "bhpe_engine.h").read_text()
    defs = {k: int(v, 16) for k, v in re.findall(r"#define BHPE_REG_(\w+) (0x[0-9A-Fa-f]+)u", hdr)}
    for k in ("CTRL", "STATUS", "DESC_LO", "DESC_HI", "CYCLES_LO", "CYCLES_HI", "LAYER", "ERROR"):
        assert defs[k] == rtl[k], k
    assert rtl["desc_lo_read"] == defs["DESC_LO"]


@pytest.fixture(scope="module")
def regmodel(tmp_path_factory):
    return B.build_regmodel(tmp_path_factory.mktemp("regs"))


def _regrun(exe, scenario, desc, qemu=False):
    cmd = [B.tools()["qemu"], "-cpu", "cortex-a53", str(exe)] if qemu else [str(exe)]
    out = subprocess.run(cmd + [scenario, f"{desc:x}"], capture_output=True, text=True, check=True).stdout
    acc = [(l[0], int(l.split()[1], 16), int(l.split()[2], 16)) for l in out.splitlines() if l[:2] in ("R ", "W ")]
    res = dict(zip(*[iter(next(l for l in out.splitlines() if l.startswith("rc ")).split())] * 2))
    msg = next(l for l in out.splitlines() if l.startswith("msg "))[4:]
    return acc, res, msg


DESC = 0x1_2345_6700  # a high word too


def test_driver_run_sequence(regmodel):
    acc, res, msg = _regrun(regmodel, "ok", DESC)
    # STATUS before the start (not busy), DESC_ADDR low, high, CTRL.start; STATUS polls until done (the model's
    # run ends with its fifth poll), then CYCLES low, high, ERROR, LAYER
    assert acc[:4] == [("R", 0x04, 0), ("W", 0x08, DESC & 0xFFFFFFFF), ("W", 0x0C, DESC >> 32), ("W", 0x00, 1)]
    assert [a[:2] for a in acc[4:10]] == [("R", 0x04)] * 6 and [a[2] for a in acc[4:10]] == [2, 2, 2, 2, 2, 1]
    assert acc[10:] == [("R", 0x10, 5), ("R", 0x14, 1), ("R", 0x1C, 0), ("R", 0x18, 7)]
    assert res["rc"] == "0" and int(res["cycles"]) == 0x1_0000_0005 and res["polls"] == "6"
    assert int(res["latched"], 16) == DESC and res["starts"] == "1" and msg == "ok"


def test_driver_reports_the_error_register(regmodel):
    acc, res, msg = _regrun(regmodel, "error", DESC)
    assert acc[-4:-1] == [("R", 0x10, 5), ("R", 0x14, 1), ("R", 0x1C, 3)] and acc[-5][2] == 0x5  # done + error
    assert res["rc"] == "-3" and res["error"] == "3" and res["layer"] == "2"
    assert "ERROR 3" in msg and "bad descriptor" in msg


def test_driver_refuses_to_start_a_busy_engine(regmodel):
    acc, res, msg = _regrun(regmodel, "busy", DESC)
    assert acc == [("R", 0x04, 2)]  # no register written
    assert res["rc"] == "-1" and res["starts"] == "0" and "busy" in msg


def test_driver_times_out(regmodel):
    acc, res, msg = _regrun(regmodel, "timeout", DESC)
    assert [a[:2] for a in acc[4:]] == [("R", 0x04)] * 10 + [("R", 0x18)]
    assert res["rc"] == "-2" and res["polls"] == "10" and "timeout" in msg


def test_driver_rerun_after_a_sticky_done(regmodel):
    acc, res, _ = _regrun(regmodel, "rerun", DESC)
    assert acc[0] == ("R", 0x04, 1)  # the last run's done, sticky
    assert [a[2] for a in acc[4:8]] == [2, 2, 2, 1]  # the start cleared it
    assert res["rc"] == "0" and res["cycles"] == "1234"


# ---------------------------------------------------------------------------------------------------------
# the loader against the compiler's program


@pytest.fixture(scope="module")
def tiny_program(tiny_qonnx, tmp_path_factory):
    from binaryhpe.compile.engine import EngineConfig, compile_program
    from binaryhpe.compile.engine_build import write_program
    from binaryhpe.compile.host.program import write_host_header
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import run_passes, standard_passes

    g = run_passes(lower(load_qonnx(tiny_qonnx)), standard_passes(), stop="forks")
    cfg = EngineConfig()
    prog = compile_program(g, cfg)
    out = tmp_path_factory.mktemp("prog")
    d = write_program(prog, cfg, out)["dir"]
    write_host_header(prog, d)
    return prog, d


def _frame(prog, seed=0):
    t = prog.input
    lo, hi = (0, 1) if t.fmt.bipolar else (-(1 << (t.fmt.bits - 1)), (1 << (t.fmt.bits - 1)) - 1)
    return np.random.default_rng(seed).integers(lo, hi + 1, size=tuple(prog.input_shape or t.shape))


def test_loader_reads_the_program(host_exe, tiny_program):
    prog, d = tiny_program
    out = subprocess.run([str(host_exe), "info", d], capture_output=True, text=True, check=True).stdout
    assert f"image_bytes={len(prog.image)} desc_addr={prog.desc_addr} n_desc={len(prog.ops)} has_io=1" in out
    assert f"input addr={prog.input.addr} words={prog.input.words}" in out


def test_loader_packs_the_frame_and_reads_the_output(host_exe, tiny_program, tmp_path):
    from binaryhpe.compile.engine import descriptor as D
    from binaryhpe.compile.engine import run_model

    prog, d = tiny_program
    q = _frame(prog)
    (tmp_path / "f.bin").write_bytes(q.astype("<i4").tobytes())
    subprocess.run([str(host_exe), "pack", d, tmp_path / "f.bin", tmp_path / "img.bin"], check=True)
    img = prog.write_input(bytearray(prog.image), q)
    assert (tmp_path / "img.bin").read_bytes() == bytes(img)
    after = run_model(prog, bytearray(img))  # the engine's golden model runs the frame
    (tmp_path / "after.bin").write_bytes(bytes(after))
    subprocess.run([str(host_exe), "unpack", d, tmp_path / "after.bin", tmp_path / "o.bin"], check=True)
    out = np.fromfile(tmp_path / "o.bin", dtype="<i4").reshape(prog.output.shape)
    assert np.array_equal(out, prog.read_output(after))
    # relocation: the descriptors' DRAM addresses move by BASE, nothing else changes
    base = 0x7000_0000
    subprocess.run([str(host_exe), "pack", d, tmp_path / "f.bin", tmp_path / "rel.bin", hex(base)], check=True)
    rel = (tmp_path / "rel.bin").read_bytes()
    n = len(prog.ops)
    lo, hi = prog.desc_addr, prog.desc_addr + 256 * n
    assert rel[:lo] == bytes(img)[:lo] and rel[hi:] == bytes(img)[hi:]
    for i in range(n):
        a, b = (D.decode(x[lo + 256 * i: lo + 256 * (i + 1)]) for x in (img, rel))
        for k in ("in_addr", "out_addr", "b_addr", "w_addr", "c_addr"):
            assert b[k] == a[k] + base, (i, k)
        assert {k: v for k, v in a.items() if not k.endswith("_addr")} == \
            {k: v for k, v in b.items() if not k.endswith("_addr")}


def test_loader_space_to_depth_input(host_exe, tiny_program, tmp_path):
    """A program whose input is stored space-to-depth: the C loader writes the frame as Program.write_input."""
    import dataclasses

    from binaryhpe.compile.host.program import write_host_header

    prog, d = tiny_program
    h, w, c = prog.input.shape
    s2d = dataclasses.replace(prog, input=dataclasses.replace(prog.input, shape=(h // 2, w // 2, 4 * c)),
                              input_shape=(h, w, c), input_s2d=True)
    d2 = tmp_path / "engine"
    d2.mkdir()
    for f in ("dram.bin", "descriptors.bin"):
        shutil.copy(f"{d}/{f}", d2 / f)
    write_host_header(s2d, d2)
    q = _frame(prog, seed=4)
    (tmp_path / "f.bin").write_bytes(q.astype("<i4").tobytes())
    subprocess.run([str(host_exe), "pack", d2, tmp_path / "f.bin", tmp_path / "img.bin"], check=True)
    assert (tmp_path / "img.bin").read_bytes() == bytes(s2d.write_input(bytearray(prog.image), q))


def test_loader_refuses_inconsistent_files(host_exe, tiny_program, tmp_path):
    _, d = tiny_program
    for f in ("dram.bin", "host.txt"):
        shutil.copy(f"{d}/{f}", tmp_path / f)
    desc = bytearray(open(f"{d}/descriptors.bin", "rb").read())
    desc[40] ^= 1
    (tmp_path / "descriptors.bin").write_bytes(bytes(desc))
    r = subprocess.run([str(host_exe), "info", tmp_path], capture_output=True, text=True)
    assert r.returncode != 0 and "descriptors.bin differs from dram.bin" in r.stderr
    (tmp_path / "dram.bin").unlink()
    r = subprocess.run([str(host_exe), "info", tmp_path], capture_output=True, text=True)
    assert r.returncode != 0 and "dram.bin: cannot be read" in r.stderr


# ---------------------------------------------------------------------------------------------------------
# the Cortex-A53 build under QEMU


def test_a53_kernels_equal_the_host(host_exe, a53_exe, tmp_path):
    """Every kernel case under qemu-aarch64 (-cpu cortex-a53): the same float32 outputs as the host build (the
    same IEEE operations; libm's exp / sin / atan2 may differ in the last ulp, hence the 1e-6 check), and within
    the tolerance of the PyTorch reference."""
    inputs, params, ref = _smplx_case(tmp_path)
    cases = [(c[1], c[2], c[3], c[4].numpy()) for c in CASES] + [
        ("smplx", inputs, params, np.concatenate([ref["vertices"][0].numpy().ravel(),
                                                  ref["joints"][0].numpy().ravel()]))]
    identical = 0
    for name, ins, prm, r in cases:
        a = B.run_kernel(a53_exe, name, ins, prm, qemu=True)
        h = B.run_kernel(host_exe, name, ins, prm)
        _close(a, r)
        assert np.allclose(a, h, rtol=1e-6, atol=1e-7), name
        identical += int(np.array_equal(a, h))
    assert identical >= len(cases) - 3  # bit-identical except where libm differs


def test_a9_kernels_under_qemu(host_exe, tmp_path):
    """The Zynq-7000's Cortex-A9 build (ARMv7, NEON, hard float) under qemu-arm: every kernel case within the
    tolerance of the PyTorch reference and within 1e-6 of the host build."""
    exe = B.build_core("a9", tmp_path)
    for _, name, ins, prm, r in CASES:
        a = B.run_kernel(exe, name, ins, prm, qemu=True, core="a9")
        _close(a, r.numpy())
        assert np.allclose(a, B.run_kernel(host_exe, name, ins, prm), rtol=1e-6, atol=1e-7), name


def test_a53_driver_under_qemu(tmp_path):
    exe = B.build_regmodel(tmp_path, cc=B.CROSS_CC)
    acc, res, _ = _regrun(exe, "ok", DESC, qemu=True)
    assert acc[:4] == [("R", 0x04, 0), ("W", 0x08, DESC & 0xFFFFFFFF), ("W", 0x0C, DESC >> 32), ("W", 0x00, 1)]
    assert res["rc"] == "0" and int(res["cycles"]) == 0x1_0000_0005


def test_instruction_count_method(a53_exe, tmp_path):
    """The block-profile count equals a one-instruction-per-block count (-singlestep: every instruction its own
    logged block), per instruction address."""
    x = np.random.default_rng(0).standard_normal((3, 8, 6)).astype(np.float32)
    (tmp_path / "x.in").write_bytes(x.tobytes())
    args = ["kernel", "resize", str(tmp_path / "x.in"), str(tmp_path / "y.out"), "1", "3", "8", "6", "4", "3"]
    prof = B.profile(a53_exe, args)
    log = tmp_path / "ss.log"
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bhpe-qemu-") as work:  # the program path the profile runs (its length)
        prog = pathlib.Path(work) / "prog"
        prog.symlink_to(pathlib.Path(a53_exe).resolve())
        subprocess.run([B.tools()["qemu"], "-cpu", "cortex-a53", "-singlestep", "-d", "exec,nochain", "-D", log,
                        prog, *args], check=True, env=B.PROFILE_ENV)  # the environment the profile runs in
    ss = {}
    for line in open(log):
        if line.startswith("Trace"):
            pc = int(line.split("/")[1], 16)
            ss[pc] = ss.get(pc, 0) + 1
    ours = {}
    for addrs, n in prof.values():
        for a in addrs:
            ours[a] = ours.get(a, 0) + n
    assert ours == ss and sum(ss.values()) > 10000


# ---------------------------------------------------------------------------------------------------------
# the A53 time model


def test_host_time_model():
    const = a53.MEASURED
    assert set(const) == set(a53.KINDS)
    nodes = [{"name": "hand_pose_out", "kind": "linear", "flops": 2e6, "bytes": 8e6, "count": 2},
             {"name": "resize_body", "flops": 1e6, "bytes": 1e3}]
    r = a53.host_time(nodes, 1.2e9)
    exp0 = const["linear"]["cycles_per_flop"] * 4e6 / 1.2e9 * 1e3
    exp1 = const["resize"]["cycles_per_flop"] * 1e6 / 1.2e9 * 1e3
    assert r["per_node"][0]["ms"] == pytest.approx(exp0) and r["per_node"][1]["kind"] == "resize"
    assert r["ms_per_frame"] == pytest.approx(exp0 + exp1)
    assert "llvm-mca" in r["model"] and "1200 MHz" in r["model"] and "\n" not in r["model"]
    m = a53.host_time(nodes, 1.2e9, dram_bytes_per_s=1e9)  # 16 MB at 1 GB/s: the memory bound wins
    assert m["per_node"][0]["bound"] == "memory" and m["per_node"][0]["ms"] == pytest.approx(16.0)
    with pytest.raises(BinaryHPEError, match="host node 'warp'"):
        a53.host_time([{"name": "warp", "flops": 1, "bytes": 1}], 1e9)


def test_a53_constants_are_measured(tmp_path):
    """The stored constants are what the calibration measures now (linear, resize: no libm), and cycles scale
    with the flops (a 2x longer Linear row gives the same instructions per flop within 5%: the per-output
    overhead is amortised over a longer row)."""
    got = a53.calibrate(tmp_path, kinds=("linear", "resize"))
    for k in ("linear", "resize"):
        assert got[k]["instructions"] == a53.MEASURED[k]["instructions"], k
        assert got[k]["cycles_per_flop"] == pytest.approx(a53.MEASURED[k]["cycles_per_flop"], rel=1e-3), k
    from binaryhpe.compile.host import a53 as A

    exe = B.build_a53(tmp_path)
    rng = np.random.default_rng(0)
    big = B.kernel_instructions(exe, "linear", [rng.standard_normal(2048).astype(np.float32),
                                                rng.standard_normal((32, 2048)).astype(np.float32),
                                                np.zeros(32, np.float32)], [2048, 32, 1])
    assert big / A.FLOPS["linear"](2048, 32) == pytest.approx(a53.MEASURED["linear"]["instructions_per_flop"],
                                                              rel=0.05)


def test_host_time_reads_the_manifest_host_nodes():
    """Every host node of the whole-body model maps to a measured kind; the flop formulas are the model's."""
    from binaryhpe.train import wholebody as W

    nodes = W.host_nodes(W.build_wholebody("tiny-wholebody"))
    r = a53.host_time(nodes, 1.2e9)
    assert len(r["per_node"]) == len(nodes) and r["ms_per_frame"] > 0
    assert {n["kind"] for n in r["per_node"]} >= {"resize", "roi_align", "linear", "smplx", "soft_argmax_3d"}
    # one definition of the flop formulas: the manifest's counts are the ones the constants were calibrated with
    assert a53.FLOPS is W.HOST_FLOPS and set(a53.FLOPS) == set(a53.KINDS)
