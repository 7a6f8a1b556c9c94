import pathlib
import sys

HERE = pathlib.Path(__file__).parent
# cocotb test modules (tests/rtl) and test-only model definitions are imported by name
for p in (HERE, HERE / "rtl"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_qonnx(tmp_path_factory):
    """The default tiny BiDRN (seed 0), in hardware mode, exported to QONNX once per session."""
    from binaryhpe.train.export import export_qonnx
    from binaryhpe.train.hardware import to_hardware
    from binaryhpe.train.models import build_model

    model, x = build_model("tiny-bidrn", seed=0)
    to_hardware(model)
    return export_qonnx(model, x, tmp_path_factory.mktemp("tiny") / "tiny.onnx", verbose=False)
