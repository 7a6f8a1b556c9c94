"""A regular (wheel) install carries the same package as the editable one: subpackages, RTL, C++ harness."""

import subprocess
import sys
import zipfile


def test_wheel_contents_and_import(tmp_path):
    import binaryhpe

    root = __import__("pathlib").Path(binaryhpe.__file__).parent
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path), str(root)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    whl = next(tmp_path.glob("binaryhpe-*.whl"))
    names = set(zipfile.ZipFile(whl).namelist())
    for must in ("binaryhpe/__init__.py", "binaryhpe/cli.py", "binaryhpe/train/bidrn.py", "binaryhpe/compile/lower.py",
                 "binaryhpe/compile/kinds/mvu.py", "binaryhpe/sim/netsim.py", "binaryhpe/sim/harness.cpp",
                 "binaryhpe/hw/rtl/bhpe_xnor_mvu.sv", "binaryhpe/hw/rtl/bhpe_swg.sv"):
        assert must in names, must
    assert not any(n.startswith("binaryhpe/tests/") for n in names)
    target = tmp_path / "site"
    zipfile.ZipFile(whl).extractall(target)
    code = ("import binaryhpe, binaryhpe.compile.lower, binaryhpe.train.bidrn; "
            "from binaryhpe.sim.toolchain import rtl_dir; "
            "assert binaryhpe.__file__.startswith(%r), binaryhpe.__file__; "
            "assert (rtl_dir() / 'bhpe_fifo.sv').is_file(); print(rtl_dir())" % str(target))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert str(target) in r.stdout
