"""The whole model on a device (``binaryhpe build tiny-wholebody|binaryhpe --arch ... --device NAME``): every part
mapped (engine, dataflow or host), BoxNet and the heads bit-exact in Verilator on the engine, the design search
(--arch auto) and its Pareto front, the host part counted in the frame rate."""

from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys

import pytest

from binaryhpe import BinaryHPEError
from binaryhpe.compile import wholebody_build as W

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _pt(fps, lut, bram, dsp, gbps):
    return {"fps": fps, "resources": {"lut": lut, "bram18": bram, "dsp": dsp, "uram": 0}, "dram_gbps_needed": gbps}


def test_pareto_keeps_exactly_the_non_dominated_designs():
    pts = [_pt(10, 100, 10, 1, 1.0), _pt(20, 200, 10, 1, 1.0), _pt(15, 300, 10, 1, 1.0),  # dominated by the 2nd
           _pt(20, 200, 10, 1, 1.0), _pt(5, 50, 50, 1, 0.5), _pt(30, 1000, 5, 9, 3.0), _pt(4, 60, 60, 2, 0.6)]
    front = W.pareto(pts)
    # brute force, written out: a point stays unless another is at least as fast and no larger anywhere,
    # and better somewhere
    def dominated(p):
        kp = (p["resources"]["lut"], p["resources"]["bram18"], p["resources"]["dsp"], p["dram_gbps_needed"])
        for o in pts:
            ko = (o["resources"]["lut"], o["resources"]["bram18"], o["resources"]["dsp"], o["dram_gbps_needed"])
            if o is not p and o["fps"] >= p["fps"] and all(a <= b for a, b in zip(ko, kp)) and \
                    (o["fps"] > p["fps"] or ko != kp):
                return True
        return False
    want = [p for p in pts if not dominated(p)]
    assert sorted(map(id, front)) == sorted(map(id, want))
    assert pts[2] not in front and pts[6] not in front and pts[4] in front and pts[5] in front
    assert [p["fps"] for p in front] == sorted(p["fps"] for p in front)


@pytest.fixture(scope="module")
def tiny_parts(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    man = W.export_parts("tiny-wholebody", out, seed=0)
    parts = W.parts_of(man)
    for p in parts:
        W.lower_part(p)
    return man, parts


def test_every_part_is_mapped_and_the_host_part_is_named(tiny_parts):
    man, parts = tiny_parts
    names = [p.name for p in parts]
    assert names == ["body_encoder", "body_heads", "boxnet", "hand_encoder", "hand_heads", "face_encoder"]
    assert {p.name: p.runs for p in parts}["hand_encoder"] == 2 and {p.name: p.runs for p in parts}["hand_heads"] == 2
    host = [n["name"] for n in man["host"]]
    # what the issue names as host work: the RoI-align crops, SMPL-X, the soft-argmaxes, the Linear heads
    for kind in ("roi_align", "soft_argmax_3d", "soft_argmax_2d", "linear", "rot6d_to_axis_angle", "smplx"):
        assert any(n.startswith(kind) for n in host), (kind, host)
    assert all(n["flops"] > 0 and n["bytes"] > 0 for n in man["host"])
    # BoxNet's transposed convolutions are in its hardware graph (four phase convolutions a Deconv on the engine)
    box = next(p for p in parts if p.name == "boxnet")
    assert sum(type(lay).__name__ == "PhaseShuffle" for lay in box.g.layers) == 3


def test_dataflow_only_is_refused_in_one_line_naming_boxnet(tiny_parts):
    from binaryhpe.compile.devices import load_device

    _, parts = tiny_parts
    with pytest.raises(BinaryHPEError) as e:
        W.search(parts, load_device("zu3eg"), 1.0, "dataflow")
    msg = str(e.value)
    assert "\n" not in msg and "boxnet" in msg and "dataflow" in msg


def test_auto_is_at_least_as_fast_as_all_engine_and_its_frame_time_adds_up(tiny_parts):
    from binaryhpe.compile.devices import load_device

    _, parts = tiny_parts
    dev = load_device("zu3eg")
    host_ms = 2.5
    eng = W.search(parts, dev, host_ms, "engine")
    auto = W.search(parts, dev, host_ms, "auto")
    assert auto["chosen"]["fps"] >= eng["chosen"]["fps"]
    assert all(v == "engine" for v in eng["chosen"]["assign"].values())
    for ch in (eng, auto):
        b = ch["chosen"]
        # the frame time is the parts' times (each counted with its runs) plus the host's
        assert math.isclose(1e3 / b["fps"], sum(p["ms"] for p in b["parts"]) + host_ms, rel_tol=1e-9)
        assert all(v <= 1.0 for v in b["utilisation"].values())
        assert b in ch["pareto"] or any(p["fps"] >= b["fps"] for p in ch["pareto"])
    # engine part times from the engine's cycle model at the device clock
    for row in eng["chosen"]["parts"]:
        assert math.isclose(row["ms"], row["cycles_per_run"] * row["runs"] / (dev.clock_mhz * 1e3), rel_tol=1e-9)


@pytest.fixture(scope="module")
def whole_engine_sim(tmp_path_factory):
    """The whole tiny model on the engine, every part simulated in Verilator (with DRAM stalls)."""
    out = tmp_path_factory.mktemp("whole_sim")
    r = subprocess.run([sys.executable, "-m", "binaryhpe.cli", "build", "tiny-wholebody", "--arch", "engine",
                        "--device", "zu3eg", "--sim", "-o", str(out)], capture_output=True, text=True, cwd=ROOT,
                       timeout=3000)
    return r, out


def test_boxnet_and_heads_bit_exact_in_verilator_on_the_engine(whole_engine_sim):
    r, out = whole_engine_sim
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((out / "report.json").read_text())
    sims = rep["simulation"]
    assert set(sims) == {"body_encoder", "body_heads", "boxnet", "hand_encoder", "hand_heads", "face_encoder"}
    for name, s in sims.items():
        assert s["bit_exact"] is True, name
        assert [run["mismatches"] for run in s["runs"]] == [0, 0], name  # without and with stalls
        assert s["reference_vs_qonnx"]["exact"], name
    assert rep["bit_exact"] is True
    # the cycle model of every part (transposed convolutions included) against the RTL's count
    for row in rep["parts"]:
        assert abs(row["measured_cycles_per_run"] / row["cycles_per_run"] - 1) < 0.10, row


def test_whole_build_contract(whole_engine_sim):
    _, out = whole_engine_sim
    rep = json.loads((out / "report.json").read_text())
    for k in ("arch", "fps", "latency_ms", "dram_bytes_per_frame", "roofline_fraction", "utilisation", "fits",
              "host", "parts", "pareto", "choice", "device", "resources"):
        assert k in rep, k
    assert rep["arch"] == "engine" and rep["arch_requested"] == "engine"
    h = rep["host"]
    assert h["ms_per_frame"] > 0 and "A53" in h["model"] and "roi_align" in " ".join(h["nodes"])
    assert math.isclose(1e3 / rep["fps"], sum(p["ms"] for p in rep["parts"]) + h["ms_per_frame"], rel_tol=1e-9)
    html = (out / "report.html").read_text()
    assert "<svg" in html and "Pareto" in html and "Why this design" in html
    assert (out / "vivado_system" / "system.tcl").is_file()  # a Zynq device: the system project, generated
    for p in rep["parts"]:
        assert (pathlib.Path(p["engine_files"]) / "descriptors.bin").is_file()


def test_cli_auto_for_one_network_writes_its_choice(tmp_path):
    r = subprocess.run([sys.executable, "-m", "binaryhpe.cli", "build", "tiny-bidrn", "--arch", "auto", "--device",
                        "ecp5-85f", "-o", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    choice = json.loads((tmp_path / "arch_choice.json").read_text())
    rep = json.loads((tmp_path / "report.json").read_text())
    assert choice["arch"] in ("dataflow", "engine") and choice["why"] and choice["pareto"]
    assert rep.get("arch", "dataflow") == choice["arch"]


def test_whole_model_flags_are_refused_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "binaryhpe.cli", "build", "tiny-wholebody", "-o", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 2 and "needs --device" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([sys.executable, "-m", "binaryhpe.cli", "build", "tiny-wholebody", "--device", "zu3eg",
                        "--fps", "30", "-o", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 2 and "--fps" in r.stderr and len(r.stderr.strip().splitlines()) == 1
