import pathlib

import pytest

from binaryhpe.sim.runner import run_cocotb

HERE = pathlib.Path(__file__).parent


@pytest.mark.parametrize("width,depth", [(8, 1), (13, 2), (32, 5)])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_fifo(width, depth, stall, tmp_path_factory):
    run_cocotb("bhpe_fifo", "cocotb_fifo", {"Width": width, "Depth": depth},
               test_dir=HERE / "rtl", extra_env={"STALL": stall, "SEED": width * 7 + depth})
