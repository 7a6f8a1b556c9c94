"""binaryhpe: BiDRN / BinaryHPE from Brevitas training to bit-exact RTL and microcontroller C.

Subpackages follow the pipeline: ``train`` (model, numerics contract, QONNX export) ->
``compile`` (QONNX -> hardware graph -> RTL) -> ``sim`` (Verilator + cocotb proof); ``hw`` holds the RTL.
"""

__version__ = "0.1.0"


class BinaryHPEError(Exception):
    """An error meant for the user: one clear message, no traceback from deep inside a library."""
