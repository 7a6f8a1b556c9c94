"""Property-based fuzzing (Hypothesis): random BiDRB configurations and small networks of them, built with
train/ in hardware mode, exported to QONNX, lowered and optimised (random foldings), then run as C on the
host and as RTL (whole-network Verilator simulation): every output equals the QONNX execution, bit for bit.

The CI part is a fixed, derandomized subset (a few examples through C, two through RTL: each Verilator build
of a network costs 30-60 s on two cores); ``benchmarks/fuzz.py --examples N`` is the longer run and prints
how many configurations it tried and how many were bit-exact. The generators and the check live here, the
benchmark imports them.

What a configuration draws:
- numerics within the contract (``NumericsConfig`` checks it): A width 3-8, X width 12-16 with 4-8 bit
  constants (const + X <= 24), X fraction bits anywhere in [A frac + 2, X bits - 1], fixed-point weight and
  input widths 4-8;
- a stem (3 -> C0, kernel 1 or 3, optional 3x3/2 max pool), then 1-3 blocks, each: module kind (Base LCR,
  DScR, FUR x2/x4, FDR x2/x4, DSaR x2/x4, or the plain binary conv of the Table 2a ablation), kernel 1 or 3,
  Block Residual (identity where the shapes allow it, full precision, binarized);
- a folding: for every matrix-vector unit a random PE | Cout and SIMD | Cin;
- weights and BN/RPReLU constants from a drawn seed.

The frames: uniform random in [-1, 1], all +1, all -1 (the input format's lower bound), its upper bound
1 - 2^-(in_bits-1), far beyond both (+-9: the stem's input quantizer clips them), and random values of
magnitude up to 64.

The reference is the exact execution of the QONNX graph (``binaryhpe.compile.reference.onnx_context``: a
float64 copy run node by node). PyTorch's hardware mode is compared with it too; PyTorch computes in float32,
exact here because every drawn width stays below 2^24 (const + X <= 24 by the contract; the largest
accumulator, ``Cin * K^2 * 2^(a-1) * 2^(w-1)`` of a stem or full-precision Block Residual, is below 2^18 at
these channel counts, asserted in ``build``).
"""

from __future__ import annotations

import dataclasses
import pathlib
import random
import tempfile

import numpy as np
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings  # the test extra installs it: no skip when it is missing
from hypothesis import strategies as st

from binaryhpe.train.bidrn import randomize
from binaryhpe.train.config import NumericsConfig
from binaryhpe.train.hardware import to_hardware
from binaryhpe.train.layers import BlockResidual, HwModule, LCRModule, PreAct, Stem

#: module kinds: (LCRModule kind, channel factor f, stride); "plain" = the kind not enabled (Table 2a)
MODULES = [("base", 1, 1), ("dscr", 1, 2), ("fur", 2, 1), ("fur", 4, 1), ("fdr", 2, 1), ("fdr", 4, 1),
           ("dsar", 2, 2), ("dsar", 4, 2), ("plain", 1, 2), ("plain", 2, 2)]
MAX_CH = 16


class FuzzBlock(HwModule):
    """One BiDRB (eq. 11) around a single LCR module: ``qX(LCR(a) + BlockResidual(a))`` with ``a`` the
    Hardtanh of the input, as ``binaryhpe.train.bidrn.BiDRB`` but with the module kind chosen directly."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, module: str, br: str):
        super().__init__()
        enabled = () if module in ("plain", "base") else (module,)
        self.pre = PreAct()
        self.lcr = LCRModule(cin, cout, k, stride, enabled)
        self.br = BlockResidual(cin, cout, stride, br)

    def freeze(self, nc) -> None:
        self.qx = self._qx(nc)
        self.hw = True

    def forward(self, x):
        a = self.pre(x)
        y = self.lcr(a) + self.br(a)
        return self.qx(y) if self.hw else y


class FuzzNet(nn.Module):
    def __init__(self, cfg: "NetConfig"):
        super().__init__()
        self.stem = Stem(3, cfg.stem_channels, cfg.stem_kernel, 1, cfg.stem_maxpool)
        self.blocks = nn.Sequential(*[FuzzBlock(b.cin, b.cout, b.k, b.stride, b.module, b.br) for b in cfg.blocks])

    def forward(self, x):
        return self.blocks(self.stem(x))


@dataclasses.dataclass(frozen=True)
class BlockConfig:
    module: str
    factor: int
    cin: int
    cout: int
    stride: int
    k: int
    br: str


@dataclasses.dataclass(frozen=True)
class NetConfig:
    numerics: NumericsConfig
    size: int
    stem_channels: int
    stem_kernel: int
    stem_maxpool: bool
    blocks: tuple
    seed: int
    folding_seed: int

    def describe(self) -> str:
        n = self.numerics
        blocks = ", ".join(f"{b.module}{'' if b.factor == 1 else f' x{b.factor}'} {b.cin}->{b.cout}/s{b.stride} "
                           f"k{b.k} br={b.br}" for b in self.blocks)
        return (f"A{n.act_bits} X({n.res_bits},{n.res_frac}) C{n.const_bits} W{n.fxp_weight_bits} "
                f"I{n.in_bits} | {self.size}x{self.size} stem 3->{self.stem_channels} k{self.stem_kernel}"
                f"{' +maxpool' if self.stem_maxpool else ''} | {blocks} | seed {self.seed} fold {self.folding_seed}")


# ------------------------------------------------------------------------------------------------ strategies
@st.composite
def numerics(draw) -> NumericsConfig:
    act = draw(st.integers(3, 8))
    res = draw(st.integers(12, 16))
    const = draw(st.integers(4, min(8, 24 - res)))
    frac = draw(st.integers(act + 1, res - 1))
    return NumericsConfig(act_bits=act, res_bits=res, res_frac=frac, const_bits=const,
                          fxp_weight_bits=draw(st.integers(4, 8)), in_bits=draw(st.integers(4, 8)))


def _feasible(module: str, f: int, s: int, cin: int, size: int) -> bool:
    if s == 2 and (size < 4 or size % 2):
        return False
    if module in ("fur", "dsar") or (module == "plain" and f > 1):
        return f * cin <= MAX_CH
    if module == "fdr":
        return cin % f == 0 and cin // f >= 2
    return True


@st.composite
def block(draw, cin: int, size: int) -> BlockConfig:
    options = [m for m in MODULES if _feasible(m[0], m[1], m[2], cin, size)]
    module, f, s = draw(st.sampled_from(options))
    cout = cin // f if module == "fdr" else cin * f
    brs = ["fp", "binary"] + (["identity"] if cin == cout and s == 1 else [])
    return BlockConfig(module, f, cin, cout, s, draw(st.sampled_from([1, 3])), draw(st.sampled_from(brs)))


@st.composite
def networks(draw, max_blocks: int = 3) -> NetConfig:
    nc = draw(numerics())
    maxpool = draw(st.booleans())
    size = 8 if maxpool else draw(st.sampled_from([4, 6, 8]))
    c0 = draw(st.sampled_from([2, 4, 8]))
    cur, hw = c0, size // 2 if maxpool else size
    blocks = []
    for _ in range(draw(st.integers(1, max_blocks))):
        b = draw(block(cur, hw))
        blocks.append(b)
        cur, hw = b.cout, hw // b.stride
    return NetConfig(nc, size, c0, draw(st.sampled_from([1, 3])), maxpool, tuple(blocks),
                     draw(st.integers(0, 2**16)), draw(st.integers(0, 2**16)))


# ------------------------------------------------------------------------------------------------ the check
def frames(cfg: NetConfig) -> list[np.ndarray]:
    shape = (1, 3, cfg.size, cfg.size)
    rng = np.random.default_rng(cfg.seed)
    top = 1.0 - 2.0 ** -(cfg.numerics.in_bits - 1)  # the input format's largest value
    xs = [rng.uniform(-1, 1, shape), np.ones(shape), -np.ones(shape), np.full(shape, top),
          np.full(shape, 9.0), np.full(shape, -9.0), rng.uniform(-64, 64, shape)]
    return [x.astype(np.float32) for x in xs]


def build(cfg: NetConfig, work: pathlib.Path):
    """Model in hardware mode -> QONNX -> lowered, optimised hardware graph with a random folding."""
    from binaryhpe.compile.lower import load_qonnx, lower
    from binaryhpe.compile.passes import folding_passes, prepare_passes
    from binaryhpe.train.export import export_qonnx

    torch.manual_seed(cfg.seed)
    model = to_hardware(randomize(FuzzNet(cfg), seed=cfg.seed), cfg.numerics)
    nc = cfg.numerics
    widest = max([27 * (1 << (nc.in_bits - 1)) * (1 << (nc.fxp_weight_bits - 1))]
                 + [b.cin * (1 << (nc.act_bits - 1)) * (1 << (nc.fxp_weight_bits - 1)) for b in cfg.blocks])
    assert widest < 1 << 24, "the float32 QONNX execution is exact only below 2^24"
    x0 = torch.from_numpy(frames(cfg)[0])
    path = export_qonnx(model, x0, work / "fuzz.onnx", verbose=False)
    mw = load_qonnx(path)
    g = prepare_passes(lower(mw, source="fuzz.onnx"))
    rnd = random.Random(cfg.folding_seed)
    folding = {}
    for lay in g.layers:
        if not getattr(lay, "foldable", False):
            continue
        src = g.tensors[lay.inputs[0]]
        cin = g.tensors[g.producer(lay.inputs[0]).inputs[0]].shape[2] if src.windowed else src.shape[2]
        folding[lay.name] = {"pe": rnd.choice(_divisors(lay.cout)), "simd": rnd.choice(_divisors(cin))}
    g = folding_passes(g, folding=folding)
    return model, path, mw, g


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check(cfg: NetConfig, rtl: bool, c: bool, work: pathlib.Path | None = None) -> dict:
    """Run one configuration through the chain; returns mismatch counts per link (0 everywhere = bit-exact).
    Links: PyTorch hardware mode vs QONNX, the compiler's integer reference vs QONNX, C on the host vs QONNX,
    RTL (with random stalls) vs QONNX."""
    from binaryhpe.compile.reference import hw_input, nchw_to_hwc, onnx_context

    work = pathlib.Path(work or tempfile.mkdtemp(prefix="bhpe_fuzz_"))
    model, path, mw, g = build(cfg, work)
    xs = frames(cfg)
    out_fmt = g.tensors[g.output].fmt
    onnx_out, ins = [], []
    res = {"config": cfg.describe(), "frames": len(xs), "elements": 0}
    torch_bad = ref_bad = 0
    for x in xs:
        ctx = onnx_context(mw, x)
        y = ctx[mw.graph.output[0].name]
        with torch.no_grad():
            torch_bad += int(np.count_nonzero(model(torch.from_numpy(x)).numpy() != y))
        y = nchw_to_hwc(y)
        onnx_out.append(y)
        xi = hw_input(g, ctx)
        ins.append(xi)
        ref_bad += int(np.count_nonzero(out_fmt.to_real(g.execute(xi)[g.output]) != y))
        res["elements"] += y.size
    res["torch_vs_qonnx"], res["reference_vs_qonnx"] = torch_bad, ref_bad
    if c:
        from binaryhpe.compile import cbackend
        from binaryhpe.sim import mcu

        c_dir = cbackend.write(cbackend.generate(g), work / "c")
        exe = mcu.host_build(c_dir, work / "host_model")
        got = mcu.host_run(exe, ins, g.tensors[g.output].shape)
        res["c_vs_qonnx"] = sum(int(np.count_nonzero(out_fmt.to_real(a) != b)) for a, b in zip(got, onnx_out))
    if rtl:
        from binaryhpe.compile.flow import step_rtl
        from binaryhpe.sim import netsim

        rtl_dir = step_rtl(g, work)
        exe = netsim.build(rtl_dir, sorted((rtl_dir / "lib").glob("*.sv")), verbose=False)
        r = netsim.simulate(g, exe, rtl_dir, ins, stall_in=0.3, stall_out=0.3, seed=cfg.seed)
        assert len(r["outputs"]) == len(ins)
        res["rtl_vs_qonnx"] = sum(int(np.count_nonzero(out_fmt.to_real(a) != b))
                                  for a, b in zip(r["outputs"], onnx_out))
    res["bit_exact"] = all(v == 0 for k, v in res.items() if k.endswith("_vs_qonnx"))
    return res


def assert_exact(res: dict) -> None:
    bad = {k: v for k, v in res.items() if k.endswith("_vs_qonnx") and v}
    assert not bad, f"{res['config']}: mismatching elements {bad} of {res['elements']}"


# ------------------------------------------------------------------------------------------------ CI subset
CI = settings(derandomize=True, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(CI, max_examples=4)
@given(cfg=networks())
def test_fuzz_c_bit_exact(cfg):
    """Four derandomized configurations: PyTorch = QONNX = compiler reference = C on the host."""
    res = check(cfg, rtl=False, c=True)
    assert_exact(res)


@settings(CI, max_examples=2)
@given(cfg=networks(max_blocks=2))
def test_fuzz_rtl_bit_exact(cfg):
    """Two derandomized configurations through the whole-network RTL simulation with random stalls."""
    res = check(cfg, rtl=True, c=False)
    assert_exact(res)


def test_strategies_cover_every_module_kind_and_variant():
    """The generators can reach every module kind, factor, stride and Block Residual variant (so the fuzz is
    not silently narrower than its docstring), and every drawn numerics is within the contract."""
    seen_mod, seen_br = set(), set()

    @settings(max_examples=300, derandomize=True, deadline=None, database=None)
    @given(cfg=networks())
    def collect(cfg):
        for b in cfg.blocks:
            seen_mod.add((b.module, b.factor, b.stride))
            seen_br.add(b.br)
            assert b.cout == (b.cin // b.factor if b.module == "fdr" else b.cin * b.factor)
            assert b.br != "identity" or (b.cin == b.cout and b.stride == 1)
        assert cfg.numerics.const_bits + cfg.numerics.res_bits <= 24

    collect()
    assert seen_mod == set(MODULES)
    assert seen_br == {"fp", "binary", "identity"}
