"""The layer-sequential engine's compiler side (docs/engine.md): configuration, program (engine ops, tiling,
DRAM layout, descriptors, DRAM image), the numpy golden model and the cycle model."""

from binaryhpe.compile.engine.config import EngineConfig
from binaryhpe.compile.engine.program import EngineRefusal, Program, compile_program
from binaryhpe.compile.engine.model import run_model
from binaryhpe.compile.engine.cycles import cycle_model, roofline

__all__ = ["EngineConfig", "EngineRefusal", "Program", "compile_program", "run_model", "cycle_model", "roofline"]
