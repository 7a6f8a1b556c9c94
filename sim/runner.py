"""Build and run a cocotb test module against RTL with Verilator (cocotb's Python runner)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pathlib
from collections.abc import Sequence

from binaryhpe.sim.toolchain import rtl_dir, rtl_library, setup_verilator, with_rtl_support


def run_cocotb(
    toplevel: str,
    test_module: str,
    parameters: dict | None = None,
    sources: Sequence[pathlib.Path] | None = None,
    build_root: pathlib.Path | None = None,
    extra_env: dict | None = None,
    waves: bool = False,
    test_dir: pathlib.Path | None = None,
) -> pathlib.Path:
    """Compile ``toplevel`` (default sources: every file of hw/rtl; given ``sources`` get the library's package
    and stream checker added) with ``parameters`` and run
    ``test_module``. Raises AssertionError when a cocotb test fails. Returns the results file.

    The build folder is keyed by top level and parameters so that repeated runs reuse it.
    """
    setup_verilator()
    parameters = dict(parameters or {})
    # explicit sources get the package and the stream checker they instantiate; the package comes first
    srcs = with_rtl_support(sources) if sources is not None else rtl_library()
    key = hashlib.sha1(json.dumps([toplevel, parameters, [str(s) for s in srcs]], sort_keys=True).encode()).hexdigest()[:12]
    root = build_root or pathlib.Path(os.environ.get("BINARYHPE_SIM_BUILD", pathlib.Path.cwd() / "sim_build"))
    build_dir = root / f"{toplevel}_{key}"
    # one process at a time builds and runs in a build folder (pytest-xdist workers may want the same one: the
    # same module and parameters in two test files, or two scenarios of one test writing the same results file)
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(root / f"{build_dir.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_and_test(toplevel, test_module, parameters, srcs, build_dir, extra_env, waves, test_dir)


def _build_and_test(toplevel, test_module, parameters, srcs, build_dir, extra_env, waves, test_dir) -> pathlib.Path:
    from cocotb_tools.runner import get_runner

    runner = get_runner("verilator")
    # --assert: the stream protocol checkers (bhpe_stream_assert) and every other assertion are live; a
    # failing one stops the simulation and fails the test
    build_args = ["-Wno-fatal", "--assert", "--x-assign", "unique", "--x-initial", "unique"]
    if waves:
        build_args += ["--trace-fst", "--trace-structs"]
    runner.build(
        sources=srcs,
        hdl_toplevel=toplevel,
        parameters=parameters,
        build_dir=build_dir,
        build_args=build_args,
        # hw/rtl, the one include folder: files include their packages (and the engine's modules the engine
        # modules they instantiate) by their path under it
        includes=[rtl_dir()],
        waves=waves,
        always=False,
    )
    env = {k: str(v) for k, v in (extra_env or {}).items()}
    results = runner.test(
        hdl_toplevel=toplevel,
        test_module=test_module,
        test_dir=str(test_dir) if test_dir else None,
        build_dir=build_dir,
        extra_env=env,
        waves=waves,
        results_xml=str(build_dir / f"results_{test_module}.xml"),
    )
    _check_results(pathlib.Path(results))
    return pathlib.Path(results)


def _check_results(path: pathlib.Path) -> None:
    from cocotb_tools.check_results import get_results

    num_tests, num_failed = get_results(path)
    if num_tests == 0:
        raise AssertionError(f"no cocotb test ran ({path})")
    if num_failed:
        raise AssertionError(f"{num_failed} of {num_tests} cocotb tests failed ({path})")
