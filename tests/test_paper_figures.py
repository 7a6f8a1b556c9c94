"""Every figure the code or the docs attribute to the paper is the paper's: read from its text.

The paper is ``../shared/spec/binaryhpe-paper.txt`` beside the repository (or the file named by
BINARYHPE_PAPER). Its tables are tab-separated text with a few extraction artefacts (stray single digits in
Table 2c), so each row is read as the decimal numbers of its line.
"""

import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAPER = pathlib.Path(os.environ.get("BINARYHPE_PAPER", ROOT.parent / "shared" / "spec" / "binaryhpe-paper.txt"))

# Table 1 columns after Bit: Params, OPs, EHF MPVPE All/Hand/Face, PA-MPVPE All/Hand/Face, PA-MPJPE Body/Hand,
# AGORA MPVPE All/Hand/Face, PA-MPVPE All/Hand/Face
T1_COLS = ("params_m", "ops_g", "ehf_mpvpe_all", "ehf_mpvpe_hand", "ehf_mpvpe_face", "ehf_pa_mpvpe_all",
           "ehf_pa_mpvpe_hand", "ehf_pa_mpvpe_face", "ehf_pa_mpjpe_body", "ehf_pa_mpjpe_hand", "agora_mpvpe_all",
           "agora_mpvpe_hand", "agora_mpvpe_face", "agora_pa_mpvpe_all", "agora_pa_mpvpe_hand", "agora_pa_mpvpe_face")
T1_ROWS = ("Hand4Whole", "BNN", "XNOR", "DoReFa", "Bi-Real", "ReActNet", "ReCU", "FDA", "BinaryHPE")
DEC = re.compile(r"\d+\.\d+")


def _text() -> str:
    if not PAPER.is_file():
        pytest.fail(f"the paper's text is needed to check the figures taken from it: {PAPER} not found "
                    "(set BINARYHPE_PAPER)")
    return PAPER.read_text()


def _line(text: str, start: str) -> str:
    hits = [ln for ln in text.splitlines() if ln.startswith(start)]
    assert len(hits) == 1, f"paper: {len(hits)} lines start with {start!r}"
    return hits[0]


def paper_tables() -> dict:
    t = _text()
    out = {"t1": {}}
    for name in T1_ROWS:
        cells = _line(t, name + ("\t" if name != "Hand4Whole" else " ")).split("\t")
        assert cells[1] in ("1", "32"), cells
        vals = [float(c) for c in cells[2:2 + len(T1_COLS)]]
        out["t1"][name] = dict(zip(T1_COLS, vals))
    mp, pa, op = (DEC.findall(_line(t, s))[:5] for s in ("All MPVPEs\t", "Params (M)\t", "OPs (G)\t"))
    out["t2a"] = {k: {"all": float(a), "params_m": float(p), "ops_g": float(o)}
                  for k, a, p, o in zip(("base", "dscr", "fur", "fdr", "dsar"), mp, pa, op)}
    out["t2c"], out["t2d"] = {}, {}
    for key, start, dkey in (("none", "w/o BR\t", "body"), ("binary", "Binarized BR\t", "hand"),
                             ("fp", "Full-precision\tBR", "face")):
        v = [float(x) for x in DEC.findall(_line(t, start))]
        assert len(v) == 10, (start, v)
        out["t2c"][key] = dict(zip(("params_m", "ops_g", "all", "hand", "face"), v[:5]))
        out["t2d"][dkey] = dict(zip(("params_m", "ops_g", "all", "hand", "face"), v[5:]))
    for key, start in (("fp", "Full-precision BoxNet\t"), ("binary", "Binarized BoxNet\t")):
        v = [float(x) for x in DEC.findall(_line(t, start))]
        out.setdefault("t3", {})[key] = dict(zip(("params_m", "ops_g", "all", "hand", "face"), v))
    return out


def test_parser_reads_the_tables():
    p = paper_tables()
    # spot values from the text (issue 18's reading of Table 1): the parser is not off by a column
    assert p["t1"]["BinaryHPE"]["ehf_mpvpe_all"] == 118.3 and p["t1"]["Hand4Whole"]["params_m"] == 77.84
    assert p["t1"]["FDA"]["ops_g"] == 2.81 and p["t1"]["BNN"]["agora_pa_mpvpe_face"] == 5.0
    assert p["t2c"]["binary"]["all"] == 120.0 and p["t2d"]["face"]["ops_g"] == 9.94
    assert p["t3"]["fp"] == {"params_m": 21.81, "ops_g": 1.87, "all": 130.7, "hand": 78.4, "face": 40.5}


def test_proxy_reference_table_is_the_papers():
    from binaryhpe.train.proxy_bench import PAPER_EHF_ALL_MPVPE

    p = paper_tables()
    t1 = {k: v["ehf_mpvpe_all"] for k, v in p["t1"].items()}
    want = {"fp": t1["Hand4Whole"], "bnn": t1["BNN"], "reactnet": t1["ReActNet"], "recu": t1["ReCU"],
            "bidrn": t1["BinaryHPE"], "bidrn-bbr": p["t2c"]["binary"]["all"]}
    assert PAPER_EHF_ALL_MPVPE == want
    assert p["t2c"]["fp"]["all"] == t1["BinaryHPE"]  # Table 2c's full-precision BR row is BinaryHPE


def test_variant_paper_figures_are_the_papers():
    from binaryhpe.train.variants import VARIANTS

    p = paper_tables()
    t1 = p["t1"]
    want = {"hand4whole": t1["Hand4Whole"], "bnn": t1["BNN"], "xnor": t1["XNOR"], "dorefa": t1["DoReFa"],
            "bireal": t1["Bi-Real"], "reactnet": t1["ReActNet"], "recu": t1["ReCU"], "fda": t1["FDA"],
            "binaryhpe": t1["BinaryHPE"], "binaryhpe-no-br": p["t2c"]["none"],
            "binaryhpe-binarized-br": p["t2c"]["binary"], "binaryhpe-fp-boxnet": p["t3"]["fp"],
            "binaryhpe-lcr-base": p["t2a"]["base"], "binaryhpe-lcr-dscr": p["t2a"]["dscr"],
            "binaryhpe-lcr-fur": p["t2a"]["fur"], "binaryhpe-lcr-fdr": p["t2a"]["fdr"],
            "binaryhpe-lcr-dsar": p["t2a"]["dsar"], "binaryhpe-bin-body": p["t2d"]["body"],
            "binaryhpe-bin-hand": p["t2d"]["hand"], "binaryhpe-bin-face": p["t2d"]["face"]}
    assert p["t3"]["binary"]["params_m"] == p["t2c"]["binary"]["params_m"]  # Table 3 = Table 2c's binarized BR
    assert sorted(VARIANTS) == sorted(want)
    for name, row in want.items():
        v = VARIANTS[name]
        assert (v.paper_params_m, v.paper_ops_g) == (row["params_m"], row["ops_g"]), name


def _md_rows(path, header_start):
    lines = (ROOT / path).read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith(header_start))
    rows = []
    for ln in lines[i + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return rows


def test_params_ops_doc_paper_columns_are_the_papers():
    from binaryhpe.train.variants import VARIANTS

    rows = _md_rows("docs/params-ops.md", "| NAME | paper Params (M)")
    assert len(rows) == len(VARIANTS)
    for r in rows:
        name = r[0].split("`")[1]
        assert (float(r[1]), float(r[4])) == (VARIANTS[name].paper_params_m, VARIANTS[name].paper_ops_g), name


def test_training_doc_paper_ordering_is_the_papers():
    """docs/training.md states the paper's EHF ordering of the proxy's methods: it must be Table 1's."""
    t1 = {k: v["ehf_mpvpe_all"] for k, v in paper_tables()["t1"].items()}
    text = (ROOT / "docs/training.md").read_text()
    m = re.search(r"paper's ordering \(EHF All MPVPE[^)]*\): ([^\n]+)", text)
    assert m, "docs/training.md must state the paper's ordering"
    stated = re.findall(r"([A-Za-z0-9-]+) \(([0-9.]+)\)", m.group(1))
    assert len(stated) >= 5
    names = {"Hand4Whole": "Hand4Whole", "BinaryHPE": "BinaryHPE", "ReCU": "ReCU", "ReActNet": "ReActNet",
             "FDA": "FDA", "BNN": "BNN", "XNOR": "XNOR", "DoReFa": "DoReFa", "Bi-Real": "Bi-Real"}
    for n, v in stated:
        assert t1[names[n]] == float(v), n
    vals = [float(v) for _, v in stated]
    assert vals == sorted(vals), "the stated ordering is not by increasing error"
