"""report.html: one self-contained page (inline CSS, charts as inline SVG images, no script, no
network) rendered from the report model (:mod:`planner.outputs.report_model`), the same model
the terminal and report.md render.

The page is built from generic helpers (:func:`page`, :func:`section`, :func:`table`,
:func:`chart`, :func:`sections_html`) that know nothing about plans, so another page (a compare
page) can reuse them with its own sections, tables and figures.

Charts come from matplotlib (pinned to one major version in pyproject.toml), drawn on
``matplotlib.figure.Figure`` objects (no pyplot, no GUI: the Agg backend is selected when pyplot
has not been imported yet) and saved as SVG with a fixed ``svg.hashsalt`` and no date metadata,
so the same result gives the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import sys
from collections import defaultdict

SVG_HASHSALT = "planner-report"
CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1280px;
color:#1d2330;background:#fff;padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;border-bottom:2px solid #d8dee9;padding-bottom:.2rem;
margin-top:2rem}.subtitle{color:#55607a;margin-top:0}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #d8dee9;padding:.25rem .5rem;vertical-align:top}th{background:#eef2f8;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}tr.total td{font-weight:bold;background:#f6f8fb}
caption{caption-side:top;text-align:left;color:#55607a;padding-bottom:.2rem}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eef2f8}
figcaption{color:#55607a;font-size:.85rem}ul{padding-left:1.3rem}
section.warnings li{color:#8a4b00}.scroll{overflow-x:auto}
"""


# ============================================================================ generic helpers
def esc(text) -> str:
    return html.escape(str(text), quote=True)


def page(title: str, subtitle: str, body: list[str]) -> str:
    """A complete, self-contained HTML document."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>{esc(title)}</h1>\n<p class=\"subtitle\">{esc(subtitle)}</p>\n" + "\n".join(body)
            + "\n</body>\n</html>\n")


def section(sid: str, title: str, parts: list[str]) -> str:
    return f"<section id=\"{esc(sid)}\" class=\"{esc(sid)}\">\n<h2>{esc(title)}</h2>\n" + "\n".join(parts) + \
        "\n</section>"


def paragraph(text: str) -> str:
    return f"<p>{esc(text)}</p>"


def bullets(items: list[str]) -> str:
    return "<ul>\n" + "\n".join(f"<li>{esc(i)}</li>" for i in items) + "\n</ul>" if items else ""


def table(t: dict) -> str:
    """A table dict (columns, rows of display strings, optional total row, numeric column
    indices, caption) as HTML."""
    num = set(t.get("numeric", ()))
    cap = f"<caption>{esc(t['caption'])}</caption>" if t.get("caption") else ""
    if not t["rows"]:
        return (f"<p>{esc(t['caption'])}</p>" if t.get("caption") else "") + "<p><em>none</em></p>"

    def cls(i: int) -> str:
        return " class=\"num\"" if i in num else ""

    head = "<tr>" + "".join(f"<th{cls(i)}>{esc(c)}</th>" for i, c in enumerate(t["columns"])) + "</tr>"
    rows = ["<tr>" + "".join(f"<td{cls(i)}>{esc(c)}</td>" for i, c in enumerate(r)) + "</tr>" for r in t["rows"]]
    if t.get("total"):
        rows.append("<tr class=\"total\">" + "".join(f"<td{cls(i)}>{esc(c)}</td>" for i, c in enumerate(t["total"]))
                    + "</tr>")
    return (f"<div class=\"scroll\"><table>{cap}\n<thead>{head}</thead>\n<tbody>\n" + "\n".join(rows)
            + "\n</tbody></table></div>")


def new_figure(width_in: float, height_in: float):
    """A matplotlib Figure (no pyplot state)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=96, layout="constrained")


def svg_bytes(fig) -> bytes:
    """The figure as deterministic SVG: fixed hash salt, no date, text as paths (no fonts needed)."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT, "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def chart(fig, alt: str, caption: str) -> str:
    """A figure as an inline SVG image (data: URI, no network) with its caption."""
    data = base64.b64encode(svg_bytes(fig)).decode("ascii")
    return (f"<figure class=\"chart\"><img alt=\"{esc(alt)}\" src=\"data:image/svg+xml;base64,{data}\">"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def sections_html(sections: list[dict], extra: dict[str, list[str]] | None = None) -> list[str]:
    """Sections (id, title, paragraphs, bullets, tables) as HTML, each followed by the extra
    HTML (charts) given for its id."""
    extra = extra or {}
    out = []
    for s in sections:
        parts = [paragraph(p) for p in s["paragraphs"]]
        if s["bullets"]:
            parts.append(bullets(s["bullets"]))
        parts += extra.get(s["id"], [])
        parts += [table(t) for t in s["tables"]]
        out.append(section(s["id"], s["title"], parts))
    return out


# ============================================================================ report charts
PALETTE = ["#3465a4", "#f57900", "#4e9a06", "#75507b", "#c4a000", "#cc0000", "#06989a", "#888a85", "#ad7fa8",
           "#8f5902"]


def cost_chart(m: dict):
    """Decision cost by site, stacked by tier (instances, bought GPUs) and other kinds."""
    rows = m["cost_by_site_tier"]
    parts = sorted({r["part"] for r in rows})
    total: dict[str, float] = defaultdict(float)
    for r in rows:
        total[r["site"]] += r["usd_per_month"]
    sites = sorted(_largest(total, CHART_SITES))
    if not sites:
        return None
    val = {(r["site"], r["part"]): r["usd_per_month"] for r in rows}
    fig = new_figure(9, 0.45 * len(sites) + 1.4)
    ax = fig.add_subplot()
    left = [0.0] * len(sites)
    for n, p in enumerate(parts):
        w = [val.get((s, p), 0.0) for s in sites]
        ax.barh(sites, w, left=left, label=p, color=PALETTE[n % len(PALETTE)])
        left = [a + b for a, b in zip(left, w, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("decision cost, USD/month")
    ax.xaxis.set_major_formatter(_thousands())
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _pos: f"{x:,.0f}")


def capacity_chart(m: dict):
    """Baseline and burst GPUs per slot, one panel per site."""
    sids = [t["id"] for t in m["slots"]]
    held = {c["site"]: max(c["slots"][t]["baseline_gpus"] + c["slots"][t]["burst_gpus"] for t in sids)
            for c in m["capacity"]}
    keep = _largest(held, CAPACITY_PANELS)
    cap = [c for c in m["capacity"] if c["site"] in keep]
    if not cap:
        return None
    ncols = min(4, len(cap))
    nrows = (len(cap) + ncols - 1) // ncols
    fig = new_figure(3.0 * ncols, 2.3 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for n, c in enumerate(cap):
        ax = axes[n // ncols][n % ncols]
        base = [c["slots"][t]["baseline_gpus"] for t in sids]
        burst = [c["slots"][t]["burst_gpus"] for t in sids]
        ax.bar(sids, base, color=PALETTE[0], label="baseline")
        ax.bar(sids, burst, bottom=base, color=PALETTE[1], label="burst")
        ax.set_title(f"{c['site']} ({c['site_kind']})", fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylabel("GPUs", fontsize=7)
    for n in range(len(cap), nrows * ncols):
        axes[n // ncols][n % ncols].set_visible(False)
    axes[0][0].legend(fontsize=7)
    return fig


def utilisation_chart(m: dict):
    """Utilisation (GPUs serving / GPUs held) per site and slot as a heat map."""
    sids = [t["id"] for t in m["slots"]]
    held = {u["site"]: max((u["slots"][t]["held_gpus"] if u["slots"][t] else 0.0) for t in sids)
            for u in m["utilisation"]}
    keep = _largest(held, CHART_SITES)
    util = [u for u in m["utilisation"] if u["site"] in keep]
    if not util:
        return None
    grid = [[(u["slots"][t]["utilisation"] if u["slots"][t] else float("nan")) for t in sids] for u in util]
    fig = new_figure(1.0 * len(sids) + 3.2, 0.42 * len(util) + 1.2)
    ax = fig.add_subplot()
    im = ax.imshow(grid, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(sids)), sids, fontsize=8)
    ax.set_yticks(range(len(util)), [u["site"] for u in util], fontsize=8)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v == v:
                ax.text(j, i, f"{v * 100:.0f}%", ha="center", va="center", fontsize=7,
                        color="white" if v > 0.6 else "black")
    fig.colorbar(im, ax=ax, label="GPUs serving / GPUs held")
    return fig


def traffic_chart(m: dict):
    """Mean requests/s from each user region to each site, annotated with the RTT."""
    by_site: dict[str, float] = defaultdict(float)
    by_region: dict[str, float] = defaultdict(float)
    for r in m["traffic"]:
        by_site[r["site"]] += r["mean_rps"]
        by_region[r["user_region"]] += r["mean_rps"]
    keep_s, keep_u = _largest(by_site, CHART_SITES), _largest(by_region, CHART_SITES)
    rows = [r for r in m["traffic"] if r["site"] in keep_s and r["user_region"] in keep_u]
    if not rows:
        return None
    regions = sorted({r["user_region"] for r in rows})
    sites = sorted({r["site"] for r in rows})
    val = {(r["user_region"], r["site"]): r for r in rows}
    grid = [[val[(u, s)]["mean_rps"] if (u, s) in val else 0.0 for s in sites] for u in regions]
    top = max(max(r) for r in grid) or 1.0
    fig = new_figure(0.9 * len(sites) + 3.0, 0.45 * len(regions) + 1.8)
    ax = fig.add_subplot()
    im = ax.imshow(grid, cmap="Oranges", vmin=0.0, vmax=top, aspect="auto")
    ax.set_xticks(range(len(sites)), sites, fontsize=7, rotation=40, ha="right")
    ax.set_yticks(range(len(regions)), regions, fontsize=8)
    for i, u in enumerate(regions):
        for j, s in enumerate(sites):
            r = val.get((u, s))
            if r is None:
                continue
            rtt = "" if r["rtt_ms"] is None else f"\n{r['rtt_ms']:.0f} ms"
            ax.text(j, i, f"{r['mean_rps']:,.0f}{rtt}", ha="center", va="center", fontsize=6,
                    color="white" if r["mean_rps"] > 0.6 * top else "black")
    fig.colorbar(im, ax=ax, label="mean requests/s")
    ax.set_xlabel("site")
    ax.set_ylabel("user region")
    return fig


#: charts show at most this many sites (user regions), the largest; the tables list all. Beyond
#: a few dozen a chart is unreadable, and matplotlib's SVG time grows with every bar and label
#: (measured: 26 s of a 32 s write at 200 workloads x 50 sites before the cap)
CHART_SITES = 20
CAPACITY_PANELS = 12


def _largest(values: dict[str, float], n: int) -> set[str]:
    """The n keys with the largest values (ties by name): deterministic."""
    return {k for k, _v in sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:n]}


def _of(shown: int, total: int, what: str) -> str:
    return "" if shown >= total else f" The {shown} largest of {total} {what} are shown; the tables list all."


def report_charts(m: dict) -> dict[str, list[str]]:
    """The report's charts per section id (the largest sites and regions when there are many)."""
    n_sites = len({r["site"] for r in m["cost_by_site_tier"]})
    n_cap = len(m["capacity"])
    n_util = len(m["utilisation"])
    n_traffic = max(len({r["site"] for r in m["traffic"]}), len({r["user_region"] for r in m["traffic"]}))
    out: dict[str, list[str]] = defaultdict(list)
    for sid, make, alt, caption in (
        ("costs", cost_chart, "decision cost by site and tier",
         "Decision cost per site, by tier (cloud instances, bought GPUs) and other costs; owned GPUs' sunk cost "
         "is not a decision and is shown in the table." + _of(CHART_SITES, n_sites, "sites")),
        ("capacity", capacity_chart, "baseline and burst GPUs per slot per site",
         "GPUs held per slot: baseline (owned, bought, reserved) and burst (on-demand, spot)."
         + _of(CAPACITY_PANELS, n_cap, "sites")),
        ("capacity", utilisation_chart, "utilisation by site and slot",
         "Utilisation per site and slot: GPUs serving / GPUs held (standby is not busy)."
         + _of(CHART_SITES, n_util, "sites")),
        ("traffic", traffic_chart, "traffic from user regions to sites with RTT",
         "Mean requests/s from each user region to each site, with the round-trip time."
         + _of(CHART_SITES, n_traffic, "sites or user regions")),
    ):
        fig = make(m)
        if fig is not None:
            out[sid].append(chart(fig, alt, caption))
    return dict(out)


def render_html(d: dict, m: dict | None = None) -> str:
    """report.html of result.json data ``d`` (its report model ``m`` when already built)."""
    from planner.outputs.report_model import build_report
    from planner.outputs.report_sections import report_sections

    m = m if m is not None else build_report(d)
    sc = m["scenario"]
    subtitle = f"{sc['description']} - scenario {sc['path']}, variant {sc['variant']}"
    charts = report_charts(m) if m["has_plan"] else {}
    return page(m["title"], subtitle, sections_html(report_sections(m), charts))
