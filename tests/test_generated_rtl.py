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


def test_port_wider_than_its_stream_is_refused(tiny_qonnx, tmp_path):
    """The generator refuses a layer whose port is wider than the stream wired to it, naming the layer and the
    producer: SystemVerilog would zero-extend the narrower bus, so -7 on an 8-bit stream read by a 12-bit port
    would arrive as 249 (what a RemoveIdentityRequant bug once did, found only by a fuzz simulation)."""
    import pytest

    from binaryhpe import BinaryHPEError
    from binaryhpe.compile.kinds.epilogue import Epilogue

    g, _ = step_lower(tiny_qonnx)
    lay = next(l for l in g.layers if isinstance(l, Epilogue) and g.producer(l.inputs[0]) is not None
               and g.tensors[l.inputs[0]].fmt.signed and g.tensors[l.inputs[0]].fmt.width > 1)
    prod = g.producer(lay.inputs[0])
    lay.ops[0].in_w += 4  # the epilogue's port (its first op's input) now 4 bits wider than the stream
    with pytest.raises(BinaryHPEError) as e:
        step_rtl(g, tmp_path)
    msg = str(e.value)
    assert f"layer {lay.name}" in msg and prod.name in msg and lay.inputs[0] in msg
    assert not (tmp_path / "rtl" / "bhpe_top.sv").exists()
