"""Every hand-written RTL module is lint clean under `verilator --lint-only -Wall`."""

import subprocess

import pytest

from binaryhpe.sim.toolchain import rtl_dir, setup_verilator

FILES = sorted(rtl_dir().glob("*.sv"))


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_lint_clean(path):
    setup_verilator()
    r = subprocess.run(["verilator", "--lint-only", "-Wall", f"-I{rtl_dir()}", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_module_is_one_file():
    import re

    for f in FILES:
        mods = re.findall(r"^\s*module\s+(\w+)", f.read_text(), flags=re.M)
        assert mods == [f.stem], f"{f.name} defines {mods}"
