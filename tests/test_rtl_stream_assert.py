"""The stream protocol checker (hw/rtl/bhpe_stream_assert.sv) is live in the cocotb builds (sim/runner.py
passes --assert): a legal stream passes, a stream that drops tvalid before tready or changes a waiting beat's
tdata fails the simulation, with the checker's message."""

import pathlib

import pytest

from binaryhpe.sim.runner import run_cocotb

HERE = pathlib.Path(__file__).parent


def _run(scenario: str) -> None:
    run_cocotb("bhpe_stream_assert", "cocotb_stream_assert", {"DataW": 8}, sources=[], test_dir=HERE / "rtl",
               extra_env={"SCENARIO": scenario})


def test_legal_stream_passes():
    _run("legal")


@pytest.mark.parametrize("scenario,message", [("drop_valid", "tvalid dropped before tready"),
                                              ("change_data", "tdata changed while the beat waited")])
def test_broken_stream_fails_the_simulation(scenario, message, capfd):
    with pytest.raises(Exception):  # noqa: B017 - the runner's error type depends on how the simulator stops
        _run(scenario)
    out, err = capfd.readouterr()
    assert message in out + err, (out + err)[-3000:]
