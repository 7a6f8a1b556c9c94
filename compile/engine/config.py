"""The engine's parameters (``EngineConfig``): array shape, buffer depths, DRAM port, clock.

The defaults are the ECP5-85F sizing of the engine's design (PE 16, PEF 4); :meth:`EngineConfig.for_device`
picks, per device (``compile/devices/*.json``), the largest configuration that fits it by the engine's resource
model (``compile.engine.resources``). :meth:`EngineConfig.rtl_params` gives the
SystemVerilog parameters of ``bhpe_engine`` (``hw/rtl/engine/bhpe_engine.sv``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from binaryhpe import BinaryHPEError

#: bits of a DRAM / line / b / output buffer word (docs/engine.md: "The word is 64 bits everywhere")
WORD_BITS = 64
#: bytes a DRAM beat carries
BEAT_BYTES = WORD_BITS // 8
#: the share of a device's LUTs / FFs and of its block RAMs / DSPs a configuration may use (for_device)
FIT_LOGIC = 0.80
FIT_BLOCKS = 0.90


@dataclass(frozen=True)
class EngineConfig:
    """Parameters of one engine instance (the ``bhpe_engine`` parameters plus clock and DRAM).

    ``pe``: XNOR array rows (= epilogue lanes, a power of two >= 8); ``pef``: MAC array rows (divides ``pe``), each
    with 8 multipliers; ``*_depth``: buffer words (``wb_depth`` words of PE x 64 bits, ``cb_depth`` words of
    PE x 32 bits, the others 64 bits); ``dram_beats_per_cycle``: 64-bit DRAM beats a clock cycle (at most 1:
    one 64-bit port); ``dram_latency``: cycles from a read request to its first beat."""

    pe: int = 16
    pef: int = 4
    lb_depth: int = 4096
    wb_depth: int = 1024
    cb_depth: int = 512
    bb_depth: int = 1024
    ob_depth: int = 2048
    clock_mhz: float = 100.0
    dram_beats_per_cycle: float = 1.0
    dram_latency: int = 20
    addr_w: int = 40

    def __post_init__(self):
        if self.pe < 8 or self.pe & (self.pe - 1):
            raise BinaryHPEError(f"engine config: PE = {self.pe} must be a power of two >= 8")
        if self.pef < 1 or self.pe % self.pef:
            raise BinaryHPEError(f"engine config: PEF = {self.pef} must divide PE = {self.pe}")
        for k in ("lb_depth", "wb_depth", "cb_depth", "bb_depth", "ob_depth"):
            v = getattr(self, k)
            if v < 2 or v & (v - 1):
                raise BinaryHPEError(f"engine config: {k} = {v} must be a power of two >= 2")
        if not 0 < self.dram_beats_per_cycle <= 1:
            raise BinaryHPEError(f"engine config: dram_beats_per_cycle = {self.dram_beats_per_cycle} must be in (0, 1]")

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram_beats_per_cycle * BEAT_BYTES

    @property
    def mac_per_cycle(self) -> int:
        """Multiply-accumulates of the MAC array a cycle (PEF rows of 8 multipliers)."""
        return self.pef * 8

    @property
    def xnor_per_cycle(self) -> int:
        """XNOR-popcount synapses of the XNOR array a cycle (PE rows of 64)."""
        return self.pe * WORD_BITS

    def rtl_params(self) -> dict:
        """Parameters of ``bhpe_engine`` (names as in the RTL)."""
        return {"PE": self.pe, "PEF": self.pef, "LbDepth": self.lb_depth, "WbDepth": self.wb_depth,
                "CbDepth": self.cb_depth, "BbDepth": self.bb_depth, "ObDepth": self.ob_depth,
                "AddrW": self.addr_w, "IdW": 1}

    def buffer_bram18(self) -> int:
        """BRAM18 of the on-chip buffers (line, weight, constant, b, output), as simple dual-port RAMs."""
        from binaryhpe.compile.engine.resources import block_bram18 as _bram18  # one way: config -> resources

        return (_bram18(64, self.lb_depth) + _bram18(self.pe * 64, self.wb_depth)
                + _bram18(self.pe * 32, self.cb_depth) + _bram18(64, self.bb_depth) + _bram18(64, self.ob_depth))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dram_bytes_per_cycle"] = self.dram_bytes_per_cycle
        return d

    @classmethod
    def for_device(cls, dev) -> "EngineConfig":
        """The largest configuration that fits ``dev`` (a ``compile.devices.Device`` or its name) by the engine's
        resource model (``compile.engine.resources.engine_resources``): at most ``FIT_LOGIC`` of its LUTs and FFs and
        ``FIT_BLOCKS`` of its block RAM and DSPs, searched over PE (64, 32, 16, 8), PEF (PE down to 1) and the
        buffer depths (8x .. 1/4 of the defaults), largest PE first, then PEF, then buffers; the device's clock and
        the DRAM beats a cycle its bandwidth gives (at most one 64-bit beat). When nothing fits, the smallest
        candidate (the report shows it does not fit)."""
        cands = cls.candidates(dev)
        for c in cands:
            if c.fits(dev):
                return c
        return cands[-1]

    @classmethod
    def candidates(cls, dev) -> list["EngineConfig"]:
        """The configurations :meth:`for_device` searches, largest first (PE, then PEF, then buffer depths), at
        ``dev``'s clock and DRAM bandwidth (also the points of the whole-model design search,
        ``compile.wholebody_build``)."""
        from binaryhpe.compile.devices import load_device

        dev = load_device(dev)
        beats = min(1.0, dev.dram_gbps * 1e9 / (dev.clock_mhz * 1e6 * BEAT_BYTES))
        cands = []
        for pe in (64, 32, 16, 8):
            pef = pe
            while pef >= 1:
                for scale in (8, 4, 2, 1, 0.5, 0.25):
                    cands.append(cls(pe=pe, pef=pef, clock_mhz=float(dev.clock_mhz), dram_beats_per_cycle=beats,
                                     lb_depth=int(4096 * scale), wb_depth=max(64, int(1024 * scale)),
                                     cb_depth=max(64, int(512 * scale)), bb_depth=max(64, int(1024 * scale)),
                                     ob_depth=max(64, int(2048 * scale))))
                pef //= 2
        return cands

    def fits(self, dev) -> bool:
        """Whether this configuration fits ``dev`` by the engine's resource model (see :meth:`for_device`)."""
        from binaryhpe.compile.devices import load_device
        from binaryhpe.compile.engine.resources import engine_resources

        dev = load_device(dev)
        r = engine_resources(self, dev)
        return (r["lut"] <= FIT_LOGIC * dev.lut and r["ff"] <= FIT_LOGIC * dev.ff
                and r["bram18"] <= FIT_BLOCKS * dev.bram18 and r["dsp"] <= FIT_BLOCKS * dev.dsp)
