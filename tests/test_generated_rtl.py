"""The checked-in generated RTL of the default tiny BiDRN (hw/generated/tiny_bidrn) is what the flow generates
now: a change to the model, the compiler or the generator that is not re-generated fails here."""

from binaryhpe.compile.flow import CHECKED_IN, generated_files, step_lower, step_rtl


def test_checked_in_rtl_is_fresh(tiny_qonnx, tmp_path):
    g, _ = step_lower(tiny_qonnx)
    fresh = generated_files(step_rtl(g, tmp_path))
    fresh["bhpe_top.sv"] = fresh["bhpe_top.sv"].replace(tiny_qonnx.name, "model.onnx")
    kept = {str(p.relative_to(CHECKED_IN)): p.read_text() for p in CHECKED_IN.rglob("*") if p.is_file()
            and p.name != "README.md"}
    hint = "stale: regenerate with binaryhpe.compile.flow.refresh_checked_in (see hw/generated/tiny_bidrn/README.md)"
    assert sorted(kept) == sorted(fresh), hint
    for name in fresh:
        assert kept[name] == fresh[name], f"{name} {hint}"
