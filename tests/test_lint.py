"""Every hand-written RTL file (the library hw/rtl and the engine hw/rtl/engine) is lint clean under
`verilator --lint-only -Wall`, each file on its own as a user would lint it, and elaborates in Yosys's slang
frontend, the synthesis reader."""

import re
import subprocess

import pytest

from binaryhpe.sim.toolchain import RTL_SUPPORT, library_order, rtl_dir, rtl_library, setup_verilator

FILES = rtl_library()
ENGINE_FILES = library_order((rtl_dir() / "engine").glob("*.sv"))
ALL_FILES = FILES + ENGINE_FILES
# a package's users include it (include-guarded), so the file alone names everything it needs
# (by its path under hw/rtl, the one include folder)
PACKAGES = {"bhpe_pkg": "bhpe_pkg.sv", "bhpe_eng_pkg": "engine/bhpe_eng_pkg.sv"}


def _lint(*files, cwd=None):
    return subprocess.run(["verilator", "--lint-only", "-Wall", f"-I{rtl_dir()}", *map(str, files)],
                          capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("path", ALL_FILES, ids=[f.stem for f in ALL_FILES])
def test_lint_clean(path):
    # the file alone, nothing else on the command line: the packages come in by `include, the modules it
    # instantiates (the stream checker among them) are found through -Ihw/rtl alone (an engine module includes
    # the engine modules it instantiates, include-guarded)
    setup_verilator()
    r = _lint(path)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("path", ALL_FILES, ids=[f.stem for f in ALL_FILES])
def test_a_package_user_includes_it(path):
    text = path.read_text()
    for pkg, fname in PACKAGES.items():
        if f"{pkg}::" in text and path.name != fname:
            assert f'`include "{fname}"' in text, f"{path.name} uses {pkg} but does not include {fname}"


def test_include_guard_lets_the_package_be_named_too(tmp_path):
    # the builds (Yosys, Vivado, the simulators) list the package before the modules as well: a guarded
    # include after it is a no-op, and a user of the package without its include guard fails as a redefinition
    setup_verilator()
    users = [f for f in FILES if "bhpe_pkg::" in f.read_text()]
    assert len(users) >= 2
    r = _lint(rtl_dir() / "bhpe_pkg.sv", *users[:2], "--top-module", users[1].stem)
    assert r.returncode == 0, r.stdout + r.stderr
    bare = tmp_path / "bhpe_pkg.sv"
    bare.write_text(re.sub(r"^`(ifndef|define|endif).*$", "", (rtl_dir() / "bhpe_pkg.sv").read_text(), flags=re.M))
    r = subprocess.run(["verilator", "--lint-only", "-Wall", f"-I{tmp_path}", f"-I{rtl_dir()}", str(bare),
                        str(users[0])], capture_output=True, text=True)
    assert r.returncode != 0 and "bhpe_pkg" in r.stdout + r.stderr


def test_every_module_is_one_file():
    assert ENGINE_FILES and ENGINE_FILES[0].name == "bhpe_eng_pkg.sv"
    for f in ALL_FILES:
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


def test_synthesis_frontend_reads_every_file(tmp_path):
    """Yosys's slang frontend (``read_slang``, what compile.synth reads the RTL with) elaborates every library and
    engine module at its default parameters. Verilator's lint accepts some code slang refuses (a signal used
    above its declaration), which would otherwise first fail in a build's synthesis step."""
    import shutil

    from binaryhpe.compile.synth import yosys_cmd

    # YoWASP's sandbox takes paths relative to its working folder, under a folder name that is not one of /'s
    src = tmp_path / "rtl_src"
    (src / "engine").mkdir(parents=True)
    for f in ALL_FILES:
        shutil.copyfile(f, src / f.relative_to(rtl_dir()))
    files = " ".join(str(f.relative_to(rtl_dir().parent).as_posix()).replace("rtl/", "rtl_src/", 1)
                     for f in ALL_FILES)
    r = subprocess.run([*yosys_cmd(), "-q", "-p", f"read_slang -j 1 --single-unit -I rtl_src {files}"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
