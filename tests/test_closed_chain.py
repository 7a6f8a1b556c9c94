"""One closed chain: ONE model (the tiny BiDRN, seed 0) and ONE set of frames (random, all +1, all -1, truly
saturating, worst case) through every execution the toolkit has, each asserted equal, element for element, to
the exact reference (the QONNX graph executed in float64, ``compile/reference.py``):

PyTorch hardware mode (in double) = QONNX (float64; qonnx's float32 ``execute_onnx`` too, where the frame fits
float32) = the compiler's integer reference (``HwGraph.execute``) = the RTL under random stalls (Verilator) =
the C backend on the host = the same C under QEMU = hls4ml's C simulation = FINN's execution of its HW layers.

One export and one lowering are shared by every link (module-scoped fixture). The host turns each float frame
into the hardware's integers with the graph's own input quantizer (``compile/frames.py``), and each output back
into the QONNX output's layout and scale, so every link is compared in the same terms.
"""

from __future__ import annotations

import copy
import types

import numpy as np
import pytest
import torch

from binaryhpe.compile.flow import step_lower
from binaryhpe.compile.frames import io_shapes, quantize, to_qonnx_output
from binaryhpe.compile.reference import exact_reference, float32_context, hw_input

SEED = 0
MODEL = "tiny-bidrn"


def _clipped(op, ins: list, count: dict) -> np.ndarray:
    """Run one layer (or op) with output width ``out_w``; count the elements it saturates: those that change
    when the same op runs with 62 bits."""
    out = op.execute(ins)[0]
    if isinstance(getattr(type(op), "out_w", None), property) or not isinstance(getattr(op, "out_w", None), int):
        return out
    wide = copy.copy(op)
    wide.out_w = 62
    n = int(np.count_nonzero(wide.execute(ins)[0] != out))
    count[type(op).__name__] = count.get(type(op).__name__, 0) + n
    return out


def saturations(g, x: np.ndarray) -> dict[str, int]:
    """How many elements each saturating kind clips on integer frame ``x``, inside fused epilogues too."""
    from binaryhpe.compile.kinds.elementwise import JoinAdd

    env = g.execute(x)
    count: dict[str, int] = {}
    for lay in g.layers:
        if g.tensors[lay.outputs[0]].windowed:
            continue
        ins = []
        for t in lay.inputs:
            v = env[t]
            ins.extend(v if isinstance(v, tuple) else (v,))
        if hasattr(lay, "ops"):  # an Epilogue: its ops one after the other, as its execute runs them
            v = ins[0]
            for op in lay.ops:
                v = _clipped(op, [v, ins[1]] if isinstance(op, JoinAdd) else [v], count)
        else:
            _clipped(lay, ins, count)
    return count


def _frames(g, in_shape) -> dict[str, np.ndarray]:
    """The chain's frames, float32 in the QONNX input's layout (no batch dimension): random, all +1, all -1,
    then the worst-case generator's frames (``compile/worstcase.py``): beyond the input range everywhere
    (``saturate_hi`` / ``saturate_lo`` / ``checker`` / ``random_sat_*``: truly saturating) and the weight-sign
    patterns that drive the first matrix-vector unit's accumulators to their extremes (``acc_max:`` /
    ``acc_min:``: worst case)."""
    from binaryhpe.compile.worstcase import worst_case_frames

    shape = tuple(in_shape[1:])
    rng = np.random.default_rng(SEED)
    frames = {"random": rng.uniform(-1, 1, shape), "all +1": np.ones(shape), "all -1": -np.ones(shape)}
    frames.update({k: v[0] for k, v in worst_case_frames(g, seed=SEED).items()})
    return {k: np.asarray(v, dtype=np.float32) for k, v in frames.items()}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.hardware import to_hardware
    from binaryhpe.train.models import build_model

    d = tmp_path_factory.mktemp("chain")
    net, x = build_model(MODEL, seed=SEED)
    to_hardware(net)
    net.eval()
    path = export_qonnx(net, x, d / "model.onnx", verbose=False)
    g, mw = step_lower(path)
    in_shape, out_shape = io_shapes(mw)
    frames = _frames(g, in_shape)
    xs = np.stack(list(frames.values()))
    ints = [quantize(g, x) for x in xs]
    ref_int = [g.execute(q)[g.output] for q in ints]
    runs = [exact_reference(mw, x[None]) for x in xs]
    return types.SimpleNamespace(d=d, net=net, path=path, g=g, mw=mw, in_shape=in_shape, out_shape=out_shape,
                                 frames=frames, names=list(frames), xs=xs, ints=ints, ref_int=ref_int, runs=runs,
                                 exact=np.stack([r.output[0] for r in runs]))


def _assert_chain_equal(chain, got_int, link: str) -> None:
    """``got_int``: one integer output frame (H, W, C) per chain frame, from ``link``; each must equal the exact
    reference in the QONNX output's terms (and so the compiler's reference integers too)."""
    assert len(got_int) == len(chain.names), f"{link}: {len(got_int)} output frames for {len(chain.names)} inputs"
    for name, got, ref, exact in zip(chain.names, got_int, chain.ref_int, chain.exact):
        got = np.asarray(got).reshape(ref.shape)
        assert np.array_equal(got, ref), f"{link}, frame {name!r}: {np.count_nonzero(got != ref)} integers differ"
        real = to_qonnx_output(chain.g, got, chain.out_shape)
        assert np.array_equal(real, exact), f"{link}, frame {name!r}: differs from the exact reference"


# --- the frames are what they say ------------------------------------------------------------------------
def test_frames_are_what_they_claim(chain):
    from binaryhpe.compile.worstcase import assert_reached, first_level_mvus, reach

    g = chain.g
    fmt = g.tensors[g.input].fmt
    lo, hi = -(1 << (fmt.bits - 1)), (1 << (fmt.bits - 1)) - 1
    q = dict(zip(chain.names, chain.ints))
    assert np.all(q["all +1"] == hi) and np.all(q["all -1"] == lo)  # +1 is past Q(8,7): the quantizer clamps
    assert len(np.unique(q["random"])) > 100
    # truly saturating: every element beyond the input range (the input quantizer clamps each one), and
    # requantizers inside the network clip (elements that a wider format would have kept)
    sat_names = [k for k in chain.names if k in ("saturate_hi", "saturate_lo", "checker") or k.startswith("random_sat")]
    assert len(sat_names) >= 3
    for k in sat_names:
        x = chain.frames[k]
        assert set(np.unique(q[k]).tolist()) <= {lo, hi} and np.all((x > 1.0) | (x < -1.0)), k
    clipped = [saturations(g, q[k]).get("Requant", 0) for k in sat_names]
    assert all(n > 0 for n in clipped), dict(zip(sat_names, clipped))
    # worst case: the first matrix-vector unit's accumulator reaches the largest and the smallest sum its
    # weights allow on the input format, on these frames
    firsts = [lay.name for lay, _ in first_level_mvus(g)]
    assert firsts and any(k.startswith("acc_max:") for k in chain.names)
    assert_reached(reach(g, chain.ints), layers=firsts)
    # distinct input frames give distinct outputs (no link can pass by emitting a constant); all +1 and
    # saturate_hi are the same integers, as are all -1 and saturate_lo
    assert len({r.tobytes() for r in chain.ref_int}) == len({x.tobytes() for x in chain.ints}) >= len(chain.names) - 2


# --- the links -------------------------------------------------------------------------------------------
def test_compiler_reference_equals_exact_reference(chain):
    # the float64 execution is exact on every frame (every value and partial sum within 53 bits)
    assert all(r.float64_exact for r in chain.runs), [w for r in chain.runs for w in r.wide_nodes(53)][:3]
    _assert_chain_equal(chain, chain.ref_int, "compiler reference (HwGraph.execute)")


def test_input_quantizer_is_the_qonnx_one(chain):
    # the host's float -> integer conversion (g.input_quant) equals the Quant node's output in the QONNX graph
    for name, x, q, run in zip(chain.names, chain.xs, chain.ints, chain.runs):
        assert np.array_equal(q, hw_input(chain.g, run.context)), name


def test_pytorch_hardware_mode_in_double(chain):
    net = copy.deepcopy(chain.net).double()
    with torch.no_grad():
        y = net(torch.from_numpy(chain.xs).double()).numpy()
    assert y.dtype == np.float64
    for name, a, b in zip(chain.names, y, chain.exact):
        assert np.array_equal(a, b), f"PyTorch hardware mode (double), frame {name!r}"


def test_pytorch_and_qonnx_float32_where_float32_holds_the_frame(chain):
    # float32 executions (what PyTorch and qonnx users run) are checked only on frames whose every value and
    # partial sum fits float32's 24 bits; execute_onnx (seconds a frame) on the random and a worst-case frame
    with torch.no_grad():
        y = chain.net(torch.from_numpy(chain.xs)).numpy()
    fits = [r.float32_exact for r in chain.runs]
    assert any(fits)
    for name, fit, x, a, b in zip(chain.names, fits, chain.xs, y, chain.exact):
        if not fit:
            continue
        assert np.array_equal(a, b), f"PyTorch hardware mode (float32), frame {name!r}"
        if name == "random" or name.startswith("acc_max:"):
            onnx32 = float32_context(chain.mw, x[None])[chain.mw.graph.output[0].name][0]
            assert np.array_equal(onnx32, b), f"qonnx execute_onnx (float32), frame {name!r}"


def test_rtl_under_random_stalls(chain):
    from binaryhpe.compile.flow import step_rtl
    from binaryhpe.sim import netsim

    rtl = step_rtl(chain.g, chain.d / "rtl_out")
    exe = netsim.build(rtl, sorted((rtl / "lib").glob("*.sv")), verbose=False)
    r = netsim.simulate(chain.g, exe, rtl, chain.ints, stall_in=0.3, stall_out=0.3, seed=SEED + 5)
    _assert_chain_equal(chain, r["outputs"], "RTL (Verilator, 30% random stalls on both streams)")


@pytest.fixture(scope="module")
def c_model(chain):
    from binaryhpe.compile import cbackend

    cm = cbackend.generate(chain.g)
    return cm, cbackend.write(cm, chain.d / "c")


def test_c_backend_on_the_host(chain, c_model):
    from binaryhpe.sim import mcu

    exe = mcu.host_build(c_model[1], chain.d / "host_model")
    got = mcu.host_run(exe, chain.ints, chain.g.tensors[chain.g.output].shape)
    _assert_chain_equal(chain, got, "C backend (host gcc)")


def test_c_backend_under_qemu(chain, c_model):
    from binaryhpe.compile import mcu_targets
    from binaryhpe.sim import mcu

    cm, c_dir = c_model
    target = mcu_targets.load_target("mps2-an505")
    cb = mcu.cross_build(c_dir, target, chain.ints, cm.storage[chain.g.input].ctype, chain.d / "qemu")
    qr = mcu.qemu_run(cb["elf"], target, chain.g.tensors[chain.g.output].shape)
    _assert_chain_equal(chain, qr["outputs"], "C backend (Cortex-M33 under QEMU)")


def test_hls4ml_c_simulation(chain):
    from binaryhpe.compile.backends import hls4ml_backend as hb

    model, outv, b = hb.to_hls4ml(chain.g, chain.d / "hls4ml")
    x = np.ascontiguousarray(np.stack([b.vars[chain.g.input].to_hls(q) for q in chain.ints]).astype(np.float64))
    with hb._quiet():
        hb.compile_csim(model, trace=False)
        y = np.asarray(model.predict(x), dtype=np.float64).reshape(len(chain.ints), -1)
    # hls4ml's values back to our integers (hls value = q * 2^-e; bipolar 2q - 1)
    got = (y + 1) / 2 if outv.bipolar else y * 2.0**outv.e
    assert np.array_equal(got, np.round(got))
    _assert_chain_equal(chain, list(got.astype(np.int64)), "hls4ml C simulation")


def test_finn_execution(chain):
    from binaryhpe.compile.backends import finn_backend

    py = finn_backend.REPO / ".venv-finn" / "bin" / "python"
    if not py.is_file():
        pytest.fail(f"FINN's environment is missing ({py}): run .ci/setup-finn")
    rep = finn_backend.build(None, chain.g, chain.d / "finn_out", sim=True, flow="hw_graph", frames=chain.ints)
    assert rep["bit_exact"] is True and rep["compared_elements"] == chain.exact.size
    got = np.load(chain.d / "finn_out" / "finn" / "finn_outputs.npy").astype(np.float64)
    got = got.reshape(len(chain.ints), -1)
    if chain.g.tensors[chain.g.output].fmt.bipolar:  # FINN carries binary values as -1/+1
        got = (got + 1) / 2
    assert np.array_equal(got, np.round(got))
    _assert_chain_equal(chain, list(got.astype(np.int64)), "FINN (python execution of its HW layers)")
