"""Readable build reports: ``OUT/report.md`` and a self-contained ``OUT/report.html`` from ``report.json``.

Contents: the device and the totals against it, fps and latency at the device clock, the roofline plot and a
resource breakdown plot (inline SVG, drawn with matplotlib when it is installed, else by hand), the per-layer
table (shape, folding, cycles, estimated LUT/FF/BRAM18/DSP and, where Yosys ran per layer, the synthesized
counts), the synthesis / place-and-route results and the simulation verdict.
"""

from __future__ import annotations

import html
import io
import math
import pathlib

RES = ("lut", "ff", "bram18", "dsp")


def _fmt(v, nd=0) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:,.{nd}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _si(v: float) -> str:
    for unit, s in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= s:
            return f"{v / s:.3g}{unit}"
    return f"{v:.3g}"


# ---------------------------------------------------------------------------------------------------------
# plots


def _mpl():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        return plt
    except ImportError:
        return None


def _svg_of(fig, plt) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    s = buf.getvalue()
    return s[s.index("<svg"):]


def roofline_svg(est: dict) -> str:
    """Roofline of the device (ops/s vs arithmetic intensity, ops per DRAM byte) with the design's point."""
    rf = est.get("roofline")
    if not rf:
        return ""
    peak, bw, ai, ach = rf["peak_ops"], rf["dram_bytes_per_s"], rf["intensity_ops_per_byte"], rf["achieved_ops"]
    ridge = peak / bw
    lo = min(ai, ridge) / 100
    hi = max(ai, ridge) * 100
    plt = _mpl()
    name = est["device"]["name"]
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = [lo, ridge, hi]
        ax.loglog(xs, [min(peak, bw * x) for x in xs], "k-", label=f"{name} roof")
        ax.axhline(rf["peak_binary_ops"], color="0.6", ls=":", lw=1, label="XNOR-popcount peak (LUTs)")
        ax.loglog([ai], [ach], "o", color="tab:red", label=f"design: {_si(ach)} ops/s")
        ax.loglog([ai], [rf["roof_ops"]], "^", color="tab:blue", ms=5, label=f"roof at its intensity: {_si(rf['roof_ops'])}")
        ax.set_xlabel("arithmetic intensity (ops / DRAM byte)")
        ax.set_ylabel("ops / s (MAC = 2 ops)")
        ax.set_title(f"Roofline, {name} at {est['device']['clock_mhz']:g} MHz")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        return _svg_of(fig, plt)
    # hand-written fallback: log-log axes in a 480 x 320 box
    W, H, m = 480, 320, 50
    ylo, yhi = min(ach, bw * lo) / 10, peak * 10

    def px(x):
        return m + (math.log10(x) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * (W - 2 * m)

    def py(y):
        return H - m - (math.log10(y) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo)) * (H - 2 * m)

    pts = " ".join(f"{px(x):.1f},{py(min(peak, bw * x)):.1f}" for x in (lo, ridge, hi))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-size="11">'
            f'<rect x="{m}" y="{m}" width="{W - 2 * m}" height="{H - 2 * m}" fill="none" stroke="#999"/>'
            f'<polyline points="{pts}" fill="none" stroke="black" stroke-width="2"/>'
            f'<circle cx="{px(ai):.1f}" cy="{py(ach):.1f}" r="5" fill="red"/>'
            f'<text x="{W / 2}" y="{H - 10}" text-anchor="middle">arithmetic intensity (ops / DRAM byte, log)</text>'
            f'<text x="12" y="{H / 2}" transform="rotate(-90 12 {H / 2})" text-anchor="middle">ops/s (log)</text>'
            f'<text x="{m + 5}" y="{m + 15}">peak {_si(peak)} ops/s; design {_si(ach)} ops/s</text></svg>')


def breakdown_svg(est: dict) -> str:
    """Share of each resource by layer kind (stacked horizontal bars), against the device where known."""
    kinds: dict[str, dict] = {}
    for r in est["layers"]:
        k = kinds.setdefault(r["kind"], {x: 0 for x in RES})
        for x in RES:
            k[x] += r[x]
    tot = est["totals"]
    dev = est.get("device")
    denom = {x: (dev[x] if dev and dev.get(x) else max(1, tot[x])) for x in RES}
    order = sorted(kinds, key=lambda k: -kinds[k]["lut"])
    plt = _mpl()
    if plt is not None:
        fig, ax = plt.subplots(figsize=(7, 3.2))
        cmap = plt.get_cmap("tab20")
        for i, x in enumerate(RES):
            left = 0.0
            for j, k in enumerate(order):
                v = 100.0 * kinds[k][x] / denom[x]
                ax.barh(i, v, left=left, color=cmap(j % 20), label=k if i == 0 else None)
                left += v
            ax.text(left + 1, i, f"{100.0 * tot[x] / denom[x]:.1f}%", va="center", fontsize=8)
        ax.set_yticks(range(len(RES)), [x.upper() for x in RES])
        ax.set_xlabel(f"% of {dev['name']}" if dev else "% of the design total")
        ax.invert_yaxis()
        ax.legend(fontsize=6, ncol=2, bbox_to_anchor=(1.02, 1), loc="upper left")
        ax.set_title("Resources by layer kind (estimate)")
        return _svg_of(fig, plt)
    W, rowh, m = 560, 28, 70
    colors = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
              "#9c755f", "#bab0ac", "#1f77b4", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{rowh * (len(RES) + 1) + 20 * len(order) // 3 + 40}" font-size="11">']
    for i, x in enumerate(RES):
        y = 10 + i * rowh
        parts.append(f'<text x="5" y="{y + 15}">{x.upper()}</text>')
        left = m
        for j, k in enumerate(order):
            wv = (W - m - 60) * kinds[k][x] / denom[x]
            parts.append(f'<rect x="{left:.1f}" y="{y}" width="{max(0, wv):.1f}" height="{rowh - 8}" '
                         f'fill="{colors[j % len(colors)]}"><title>{k}: {kinds[k][x]}</title></rect>')
            left += wv
        parts.append(f'<text x="{left + 4:.1f}" y="{y + 15}">{100.0 * tot[x] / denom[x]:.1f}%</text>')
    y0 = 20 + len(RES) * rowh
    for j, k in enumerate(order):
        x0, y = 5 + (j % 3) * 180, y0 + (j // 3) * 20
        parts.append(f'<rect x="{x0}" y="{y}" width="10" height="10" fill="{colors[j % len(colors)]}"/>'
                     f'<text x="{x0 + 14}" y="{y + 9}">{html.escape(k)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------------------
# text


def _verdict(report: dict) -> str:
    sim = report.get("simulation")
    if report.get("bit_exact") is None or not sim:
        return "not simulated (build without `--sim`)"
    runs = ", ".join(f"stall {r['stall']}: {r['mismatches']} mismatches, {r['total_cycles']} cycles"
                     for r in sim.get("runs", []))
    return (f"**{'BIT-EXACT' if report['bit_exact'] else 'NOT BIT-EXACT'}** against the integer reference "
            f"({sim.get('frames')} frames; {runs}); measured cycles/frame {report.get('cycles_per_frame')}, "
            f"latency {report.get('latency_cycles')} cycles")


def _host_line(report: dict) -> str:
    """The nodes that run on the host (``host_nodes``: the float pre-processing before the first quantizer and
    the float tail after the hardware's output; compile/partition.py)."""
    nodes = report.get("host_nodes") or []
    return ", ".join(f"`{n}`" for n in nodes) + " (run on the host, checked end to end with `--sim`)" \
        if nodes else "none (the whole graph is hardware)"


def _summary_rows(report: dict) -> list[tuple[str, str]]:
    est = report.get("estimate") or {}
    dev = report.get("device")
    rows = [("model", str(report.get("model"))), ("layers", str(len(est.get("layers", [])))),
            ("host nodes", _host_line(report))]
    if dev:
        rows.append(("device", f"{dev['name']} ({dev['part']}, {dev.get('board', '')}), "
                               f"{dev['clock_mhz']:g} MHz, DRAM {dev['dram_gbps']:g} GB/s"))
    rows.append(("cycles / frame (slowest layer)", f"{_fmt(est.get('ii_cycles'))} ({est.get('slowest_layer')})"))
    rows.append(("latency (cycles)", _fmt(est.get("latency_cycles"))))
    if dev:
        rows.append(("fps", f"{_fmt(est['fps'], 1)} ({est['bound']} bound; compute {_fmt(est['fps_compute'], 1)}, "
                            f"memory {_fmt(est['fps_memory'], 1)})"))
        rows.append(("latency", f"{est['latency_ms']:.3f} ms"))
        rows.append(("fits", "yes" if est["fits"] else f"NO (over: {', '.join(est['over'])})"))
        rf = est["roofline"]
        rows.append(("roofline", f"{_si(rf['achieved_ops'])} ops/s of a roof of {_si(rf['roof_ops'])} ops/s at "
                                 f"{rf['intensity_ops_per_byte']:.3g} ops/byte ({100 * rf['fraction_of_roof']:.1f}%); "
                                 f"peak {_si(rf['peak_ops'])} ops/s"))
    rows.append(("ops / frame", _si(est.get("ops_per_frame", 0))))
    if est.get("streamed_weight_bits"):
        rows.append(("streamed weights", f"{est['streamed_weight_bits']:,} bits from DRAM through the weight-stream "
                                         "ports w_<layer> of their MVUs (rtl/manifest.json: weight_streams)"))
    if report.get("fps_target") is not None:
        rows.append(("fps target", str(report["fps_target"])))
    if report.get("bitstream"):
        rows.append(("bitstream", f"{report['bitstream']} (nextpnr fmax {report.get('fmax_mhz')} MHz)"))
        if report.get("fps_at_fmax") is not None:
            met = "met" if report.get("timing_met") else "NOT met: the fps above assumes a clock the placed design misses"
            rows.append(("fps at fmax", f"{report['fps_at_fmax']:,.1f} (timing at the device clock {met})"))
        cp = (report.get("timing") or {}).get("critical_path")
        if cp:
            rows.append(("critical path", f"{cp['delay_ns']} ns ({cp['logic_ns']} ns logic, {cp['routing_ns']} ns "
                                          f"routing): {cp['from_cell']} -> {cp['to_cell']}"))
    if report.get("vivado"):
        rows.append(("Vivado project script", str(report["vivado"])))
    rows.append(("simulation", _verdict(report)))
    return rows


def _totals_rows(report: dict) -> list[list[str]]:
    est = report.get("estimate") or {}
    dev = report.get("device")
    syn = report.get("synth") or {}
    rows = []
    for k in ("lut", "ff", "bram18", "uram", "dsp"):
        e = est.get("totals", {}).get(k, 0)
        have = dev.get(k) if dev else None
        rows.append([k.upper(), _fmt(e), _fmt(syn.get(k)) if syn else "-", _fmt(have) if dev else "-",
                     f"{100 * e / have:.1f}%" if dev and have else ("-" if not e else "n/a")])
    return rows


def _layer_rows(report: dict) -> list[list[str]]:
    est = report.get("estimate") or {}
    syn_l = report.get("synth_layers") or {}
    rows = []
    for r in est.get("layers", []):
        s = syn_l.get(r["name"], {})
        fold = ",".join(f"{k}={v}" for k, v in r["folding"].items())
        rows.append([r["name"], r["kind"], "x".join(map(str, r["shape"])), fold, _fmt(r["ii"])]
                    + [f"{_fmt(r[k])}" + (f" / {_fmt(s[k])}" if k in s else "") for k in RES] + [r["weights"]])
    return rows


LAYER_HEAD = ["layer", "kind", "shape", "folding", "cycles", "LUT est/syn", "FF est/syn", "BRAM18 est/syn",
              "DSP est/syn", "weights"]
TOTAL_HEAD = ["resource", "estimate", "Yosys", "device", "utilisation (est.)"]


def _md_table(head, rows) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def _html_table(head, rows) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"


def _synth_lines(report: dict) -> list[str]:
    lines = []
    syn = report.get("synth")
    if syn:
        lines.append(f"Yosys ({syn.get('options')}): {_fmt(syn.get('lut'))} LUT, {_fmt(syn.get('ff'))} FF, "
                     f"{_fmt(syn.get('bram18'))} BRAM18, {_fmt(syn.get('dsp'))} DSP in {syn.get('wall_s')} s")
    pnr = report.get("pnr")
    if pnr:
        lines.append(f"nextpnr-ecp5 on {pnr.get('device')} ({pnr.get('package')}): fmax {pnr.get('fmax_mhz')} MHz "
                     f"(constraint {pnr.get('clock_mhz')} MHz), utilisation {pnr.get('utilisation')}; "
                     f"design: {pnr.get('design')}; bitstream {pnr.get('bitstream')}")
    return lines


def _figures(est: dict) -> dict:
    """The report's plots as SVG text (rendered once for report.md and report.html)."""
    return {"roofline": roofline_svg(est), "resources": breakdown_svg(est)} if est else {}


def render_markdown(report: dict, figdir: pathlib.Path | None = None, figures: dict | None = None) -> str:
    est = report.get("estimate") or {}
    parts = [f"# binaryhpe build report: {report.get('model')}", ""]
    parts.append(_md_table(["", ""], _summary_rows(report)))
    parts += ["", "## Totals against the device", "", _md_table(TOTAL_HEAD, _totals_rows(report))]
    sl = _synth_lines(report)
    if sl:
        parts += ["", "## Synthesis and place-and-route", ""] + [f"- {x}" for x in sl]
    if figdir is not None and est:
        figdir.mkdir(parents=True, exist_ok=True)
        figs = []
        svg = figures if figures is not None else _figures(est)
        if svg["roofline"]:
            (figdir / "roofline.svg").write_text(svg["roofline"])
            figs.append("![roofline](report_figs/roofline.svg)")
        (figdir / "resources.svg").write_text(svg["resources"])
        figs.append("![resources by kind](report_figs/resources.svg)")
        parts += ["", "## Plots", ""] + figs
    if report.get("estimate_note"):
        parts += ["", f"> {report['estimate_note']}"]
    parts += ["", "## Layers", "",
              "Estimates from each kind's `resources()` / `cycles()` (LUTs scaled to the device's LUT size); "
              "`est / syn` where Yosys ran per layer.", "", _md_table(LAYER_HEAD, _layer_rows(report)), ""]
    return "\n".join(parts)


CSS = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:12px}"
       "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child,th:first-child{text-align:left}"
       "h1{font-size:20px}h2{font-size:16px;margin-top:1.5em}.ok{color:green}.bad{color:#b00}")


def render_html(report: dict, figures: dict | None = None) -> str:
    est = report.get("estimate") or {}
    body = [f"<h1>binaryhpe build report: {html.escape(str(report.get('model')))}</h1>"]
    body.append("<table>" + "".join(f"<tr><th>{html.escape(a)}</th><td style='text-align:left'>{html.escape(b)}</td></tr>"
                                    for a, b in _summary_rows(report)) + "</table>")
    body += ["<h2>Totals against the device</h2>", _html_table(TOTAL_HEAD, _totals_rows(report))]
    sl = _synth_lines(report)
    if sl:
        body += ["<h2>Synthesis and place-and-route</h2><ul>"] + [f"<li>{html.escape(x)}</li>" for x in sl] + ["</ul>"]
    if est:
        svg = figures if figures is not None else _figures(est)
        body += ["<h2>Plots</h2>", svg["roofline"], svg["resources"]]
    if report.get("estimate_note"):
        body.append(f"<p><em>{html.escape(report['estimate_note'])}</em></p>")
    body += ["<h2>Layers</h2>", _html_table(LAYER_HEAD, _layer_rows(report))]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>binaryhpe report</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")


def write_reports(report: dict, out_dir) -> dict:
    """Write ``report.md`` (with ``report_figs/*.svg``) and the self-contained ``report.html``."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(report.get("estimate") or {})
    (out / "report.md").write_text(render_markdown(report, out / "report_figs", figures))
    (out / "report.html").write_text(render_html(report, figures))
    return {"md": str(out / "report.md"), "html": str(out / "report.html")}


# ---------------------------------------------------------------------------------------------------------
# --arch engine (compile/engine_build.py): the per-layer cycle model against the simulation, DRAM traffic and
# the roofline


ENGINE_LAYER_HEAD = ["#", "layer", "mode", "compute cycles", "DRAM read B", "DRAM write B", "model cycles",
                     "measured cycles", "model error"]


def _engine_layer_rows(report: dict) -> list[list[str]]:
    rows = []
    for i, r in enumerate(report.get("layers") or []):
        meas = r.get("measured_cycles")
        err = f"{meas / r['cycles'] - 1:+.1%}" if meas and r.get("cycles") else "-"
        rows.append([str(i), str(r.get("name", ""))[-48:], str(r.get("mode", "")), _fmt(r.get("compute_cycles")),
                     _fmt(r.get("dram_read_bytes")), _fmt(r.get("dram_write_bytes")), _fmt(r.get("cycles")),
                     _fmt(meas), err])
    return rows


def _engine_summary_rows(report: dict) -> list[tuple[str, str]]:
    dev = report.get("device")
    res = report.get("resources") or {}
    sim = report.get("simulation") or {}
    rows = [("model", str(report.get("model"))), ("architecture", "layer-sequential engine (docs/engine.md)"),
            ("engine parameters", ", ".join(f"{k}={v}" for k, v in ((report.get("engine") or {}).get("config")
                                                                     or {}).items())),
            ("engine ops (descriptors)", str(len(report.get("layers") or []))), ("host nodes", _host_line(report)),
            ("device", f"{dev['name']} ({dev.get('part')})" if dev else "none (device-free)"),
            ("predicted cycles/frame", _fmt(report.get("predicted_cycles_per_frame"))),
            ("measured cycles/frame", _fmt(report.get("cycles_per_frame"))),
            ("DRAM bytes/frame", _fmt(report.get("dram_bytes_per_frame"))),
            ("roofline fraction", _fmt(report.get("roofline_fraction"), 3)),
            ("fps (model, device clock)", _fmt(report.get("fps"), 1)),
            ("resources (estimate: compile.engine.resources)",
             ", ".join(f"{k} {_fmt(res.get(k))}" for k in RES if k in res))]
    if report.get("utilisation"):
        rows.append(("of the device", ", ".join(f"{k} {v:.0%}" for k, v in report["utilisation"].items())
                     + ("" if report.get("fits") else " -- DOES NOT FIT")))
    if report.get("bit_exact") is not None:
        rows.append(("simulation", f"{'BIT-EXACT' if report['bit_exact'] else 'NOT BIT-EXACT'} against the exact "
                                   f"reference ({sim.get('frames_checked')} frames, stalls "
                                   f"{[r.get('stall') for r in sim.get('runs', [])]})"))
    if report.get("bitstream"):
        rows.append(("bitstream", f"{report['bitstream']} (nextpnr fmax {report.get('fmax_mhz')} MHz)"))
    if report.get("vivado"):
        rows.append(("Vivado project script (engine IP)", str(report["vivado"])))
    return rows


def engine_cycles_svg(report: dict) -> str:
    """Per engine op: the cycle model's compute cycles and DRAM transfer cycles, and the measured cycles."""
    rows = report.get("layers") or []
    plt = _mpl()
    if plt is None or not rows:
        return ""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    x = list(range(len(rows)))
    ax.bar(x, [r.get("compute_cycles") or 0 for r in rows], label="compute (model)", color="#4c72b0")
    ax.plot(x, [r.get("dram_cycles") or 0 for r in rows], "o", ms=3, label="DRAM transfer (model)", color="#dd8452")
    meas = [r.get("measured_cycles") for r in rows]
    if any(m for m in meas):
        ax.plot(x, [m or 0 for m in meas], "k_", ms=8, label="measured (Verilator)")
    ax.set_yscale("log")
    ax.set_xlabel("engine op (descriptor)")
    ax.set_ylabel("cycles")
    ax.legend(fontsize=8)
    return _svg_of(fig, plt)


def write_engine_reports(report: dict, out_dir) -> dict:
    """``report.md`` / ``report.html`` of an ``--arch engine`` build."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    svg = engine_cycles_svg(report)
    md = [f"# binaryhpe build report: {report.get('model')} on the engine", "",
          _md_table(["", ""], _engine_summary_rows(report))]
    if svg:
        (out / "report_figs").mkdir(exist_ok=True)
        (out / "report_figs" / "engine_cycles.svg").write_text(svg)
        md += ["", "## Cycles per engine op", "", "![cycles per op](report_figs/engine_cycles.svg)"]
    md += ["", "## Engine ops", "", _md_table(ENGINE_LAYER_HEAD, _engine_layer_rows(report)), ""]
    (out / "report.md").write_text("\n".join(md))
    body = [f"<h1>binaryhpe build report: {html.escape(str(report.get('model')))} on the engine</h1>",
            "<table>" + "".join(f"<tr><th>{html.escape(a)}</th><td style='text-align:left'>{html.escape(b)}</td></tr>"
                                for a, b in _engine_summary_rows(report)) + "</table>"]
    if svg:
        body += ["<h2>Cycles per engine op</h2>", svg]
    body += ["<h2>Engine ops</h2>", _html_table(ENGINE_LAYER_HEAD, _engine_layer_rows(report))]
    (out / "report.html").write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>binaryhpe report"
                                     f"</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
    return {"md": str(out / "report.md"), "html": str(out / "report.html")}


# ---------------------------------------------------------------------------------------------------------
# the whole model (compile/wholebody_build.py)


def pareto_svg(report: dict) -> str:
    """fps of the Pareto-front designs against LUT, BRAM18, DSP and DRAM GB/s, the chosen design marked."""
    pts = report.get("pareto") or []
    plt = _mpl()
    if not pts or plt is None:
        return ""
    dev = report["device"]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), sharey=True)
    keys = [("lut", "LUT", dev.get("lut")), ("bram18", "BRAM18", dev.get("bram18")), ("dsp", "DSP", dev.get("dsp")),
            ("dram", "DRAM GB/s needed", dev.get("dram_gbps"))]
    for ax, (k, label, cap) in zip(axes, keys):
        xs = [p["dram_gbps_needed"] if k == "dram" else p["resources"].get(k, 0) for p in pts]
        ys = [p["fps"] for p in pts]
        kinds = ["hybrid" if len(set(p["assign"].values())) > 1 else next(iter(p["assign"].values())) for p in pts]
        for kind, mk in (("engine", "o"), ("hybrid", "s"), ("dataflow", "^")):
            sel = [i for i, kd in enumerate(kinds) if kd == kind]
            if sel:
                ax.plot([xs[i] for i in sel], [ys[i] for i in sel], mk, label=kind, alpha=0.8)
        ax.plot([report["dram_gbps_needed"] if k == "dram" else report["resources"].get(k, 0)], [report["fps"]],
                "*", color="tab:red", ms=12, label="chosen")
        if cap:
            ax.axvline(cap, color="0.5", ls=":", lw=1)
        ax.set_xlabel(label + (" (dotted: the device)" if cap else ""))
    axes[0].set_ylabel("whole-model fps (host included)")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Pareto front of the designs on {dev['name']}", fontsize=10)
    return _svg_of(fig, plt)


def _wb_summary(r: dict) -> list[tuple[str, str]]:
    dev, host = r["device"], r["host"]
    util = ", ".join(f"{k} {v:.0%}" for k, v in (r.get("utilisation") or {}).items())
    rf = r.get("roofline_fraction")
    return [("model", str(r["model"])), ("device", f"{dev['name']} ({dev.get('board', '')}), {dev['clock_mhz']:g} MHz"),
            ("design", f"{r['arch']} (asked: --arch {r['arch_requested']})"),
            ("fps (whole model, host included)", f"{r['fps']:.2f}"), ("latency", f"{r['latency_ms']:.1f} ms"),
            ("host part", f"{host['ms_per_frame']:.2f} ms a frame on {host['cpu']} ({host['model']})"),
            ("fps if the host overlapped the hardware", f"{r['fps_host_overlapped']:.2f}"),
            ("fps without the SMPL-X mesh (parameters only)", f"{r['fps_without_smplx_mesh']:.2f}"),
            ("DRAM traffic", f"{r['dram_bytes_per_frame'] / 1e6:.1f} MB a frame, {r['dram_gbps_needed']:.2f} GB/s "
                             f"needed of the board's {r['dram_gbps_device']:g} GB/s"),
            ("engine roofline fraction (its arrays and 64-bit DRAM port / the board's DRAM)",
             "-" if rf is None else f"{rf:.0%} / {r.get('roofline_fraction_board') or 0:.0%}"),
            ("resources (estimate)", ", ".join(f"{k} {v:,}" for k, v in r["resources"].items() if v)),
            ("utilisation", util), ("fits", str(r["fits"])),
            ("bit-exact (Verilator)", "not simulated" if r.get("bit_exact") is None else str(r["bit_exact"]))]


WB_PART_HEAD = ["part", "runs", "on", "ms a frame", "cycles a run (model)", "cycles a run (Verilator)", "DRAM MB",
                "bit-exact"]
WB_PARETO_HEAD = ["design", "engine", "fps", "latency ms", "LUT", "BRAM18", "DSP", "DRAM GB/s"]


def _wb_rows(r: dict):
    parts = [[p["part"], p["runs"], p["on"], f"{p['ms']:.2f}", f"{p.get('cycles_per_run', '-'):,}"
              if isinstance(p.get("cycles_per_run"), int) else "-", f"{p.get('measured_cycles_per_run', '-')}",
              f"{p['dram_bytes'] / 1e6:.2f}", str(p.get("bit_exact", "-"))] for p in r["parts"]]
    host = [[n["name"], f"{n.get('ms', 0):.3f}", n.get("kind", "")] for n in r["host"].get("per_node", [])]
    par = [[", ".join(f"{k}:{v[0]}" for k, v in d["assign"].items()), d.get("engine") or "-", f"{d['fps']:.2f}",
            f"{d['latency_ms']:.1f}", f"{d['resources']['lut']:,}", f"{d['resources']['bram18']:,}",
            f"{d['resources']['dsp']:,}", f"{d['dram_gbps_needed']:.2f}"] for d in r.get("pareto", [])]
    return parts, host, par


def write_wholebody_reports(report: dict, out_dir) -> dict:
    """``report.md`` / ``report.html`` of a whole-model build: summary, why this design, parts, host, Pareto."""
    out = pathlib.Path(out_dir)
    svg = pareto_svg(report)
    parts, host, par = _wb_rows(report)
    title = f"binaryhpe build report: the whole {report['model']} on {report['device']['name']}"
    md = [f"# {title}", "", _md_table(["", ""], _wb_summary(report)), "", "## Why this design", "",
          report["choice"]["why"], "", "## Parts", "", _md_table(WB_PART_HEAD, parts), "",
          "## Host part", "", _md_table(["node", "ms a frame", "kind"], host), ""]
    if svg:
        (out / "report_figs").mkdir(exist_ok=True)
        (out / "report_figs" / "pareto.svg").write_text(svg)
        md += ["## Pareto front", "", "![Pareto front](report_figs/pareto.svg)", ""]
    md += ["## Pareto designs (fps against LUT, BRAM, DSP, DRAM bandwidth)", "", _md_table(WB_PARETO_HEAD, par), ""]
    (out / "report.md").write_text("\n".join(md))
    body = [f"<h1>{html.escape(title)}</h1>", "<table>" + "".join(
        f"<tr><th>{html.escape(a)}</th><td style='text-align:left'>{html.escape(b)}</td></tr>"
        for a, b in _wb_summary(report)) + "</table>", "<h2>Why this design</h2>",
        f"<p>{html.escape(report['choice']['why'])}</p>", "<h2>Parts</h2>", _html_table(WB_PART_HEAD, parts),
        "<h2>Host part</h2>", _html_table(["node", "ms a frame", "kind"], host)]
    if svg:
        body += ["<h2>Pareto front</h2>", svg]
    body += ["<h2>Pareto designs</h2>", _html_table(WB_PARETO_HEAD, par)]
    (out / "report.html").write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>binaryhpe report"
                                     f"</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
    return {"md": str(out / "report.md"), "html": str(out / "report.html")}
