"""Every hand-written RTL module is lint clean under `verilator --lint-only -Wall`."""

import subprocess

import pytest

from binaryhpe.sim.toolchain import RTL_SUPPORT, library_order, rtl_dir, rtl_library, setup_verilator

FILES = rtl_library()


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_lint_clean(path):
    # one file at a time, the package named before it; the modules it instantiates (the stream checker
    # among them) are found through -I
    setup_verilator()
    srcs = library_order({rtl_dir() / "bhpe_pkg.sv", path})
    r = subprocess.run(["verilator", "--lint-only", "-Wall", f"-I{rtl_dir()}", *map(str, srcs)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_module_is_one_file():
    import re

    for f in FILES:
        text = f.read_text()
        mods = re.findall(r"^\s*module\s+(\w+)", text, flags=re.M)
        pkgs = re.findall(r"^\s*package\s+(\w+)", text, flags=re.M)
        if f.stem.endswith("_pkg"):
            assert pkgs == [f.stem] and mods == [], f"{f.name} defines packages {pkgs} and modules {mods}"
        else:
            assert mods == [f.stem] and pkgs == [], f"{f.name} defines modules {mods} and packages {pkgs}"


def test_library_order_puts_the_package_first():
    assert FILES[0].name == "bhpe_pkg.sv"
    assert all(n in {f.name for f in FILES} for n in RTL_SUPPORT)


def test_width_helpers_live_in_the_package():
    # the index-width pattern and the MVU accumulator formula are written once, in bhpe_pkg (the per-operation
    # epilogue modules, being replaced by bhpe_epilogue, are not restyled)
    legacy = {"bhpe_sign", "bhpe_threshold"}
    for f in FILES:
        if f.stem == "bhpe_pkg" or f.stem in legacy or f.stem.startswith("bhpe_epi_"):
            continue
        text = f.read_text()
        assert "> 1) ? $clog2(" not in text, f"{f.name}: use bhpe_pkg::clog2_min1"
        assert "$clog2(N + 1) + 1" not in text, f"{f.name}: use bhpe_pkg::mvu_acc_width"


def test_generated_top_level_is_lint_clean():
    # the checked-in top level of the tiny BiDRN (hw/generated/tiny_bidrn, kept equal to what rtlgen writes by
    # tests/test_generated_rtl.py) with the library, as one design under -Wall
    setup_verilator()
    top = rtl_dir().parent / "generated" / "tiny_bidrn" / "bhpe_top.sv"
    r = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "bhpe_top",
                        *map(str, FILES), str(top)], capture_output=True, text=True, cwd=top.parent)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
