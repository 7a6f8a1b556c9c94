import pathlib
import sys

HERE = pathlib.Path(__file__).parent
# cocotb test modules (tests/rtl) and test-only model definitions are imported by name
for p in (HERE, HERE / "rtl"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
