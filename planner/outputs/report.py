"""Render results: terminal summary (rich), report.md, CSVs (and report.html through
:mod:`planner.outputs.html`). Reads result.json data only, through the report model
(:mod:`planner.outputs.report_model`): one model, three renderings.

result.json keeps full floats; the renderings here round for people (thousands separators,
units, no e-notation) and name things as the architect does (``support-chat escalated
long-context``, ``early (04-08 h UTC)``), never by internal keys.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path

from planner.gcpause import gc_paused
from planner.input.consistency import Resolved
from planner.outputs.report_model import build_report
from planner.outputs.report_sections import _table, report_sections, sig  # noqa: F401 (sig: public)
from planner.plan.plan import Plan
from planner.plan.result import (
    EXCLUSION_COLUMNS,
    TABLES,
    PlacementResult,
    plain_number,
    table_columns,
    table_csv,
    write_atomic,
    write_atomic_json,
    write_atomic_stream,
    write_table_csv,
)


def _usd(x) -> str:
    return "-" if x is None else f"${x:,.0f}"


def _rnd(nd: int):
    """Formatter: the number rounded to nd decimals, as Python prints it."""
    return lambda x: str(round(float(x), nd))


def scenario_summary(res: Resolved) -> str:
    s = res.scenario
    kinds = defaultdict(int)
    for site in res.sites.values():
        kinds[site.kind] += 1
    offers = sum(len(site.offers) for site in res.sites.values())
    lines = [
        f"ok: {res.file} ({s.name}{', variant ' + res.loaded.variant if res.loaded.variant else ''})",
        f"  workloads: {len(s.workloads)} ("
        + ", ".join(f"{k} {n}" for k, n in sorted(_count(w.kind for w in s.workloads).items())) + ")",
        f"  sites: {len(res.sites)} (" + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) + f"), {offers} offers",
        f"  user regions: {len(s.user_regions)}; time slots: {len(s.time_slots)}; variants: "
        + (", ".join(s.variants) or "none"),
        f"  catalog version {res.catalog.version}",
    ]
    return "\n".join(lines)


def _count(it) -> dict:
    out: dict = defaultdict(int)
    for x in it:
        out[x] += 1
    return out




def standby_by_slot(d: dict) -> list[dict]:
    """Standby replicas (kept beyond normal serving: N+1 hot standby, spares) per workload, site,
    tier and slot, with their monthly cost."""
    order = {t["id"]: i for i, t in enumerate(d["time_slots"])}
    rows = [p for p in d["placements"] if p["standby_replicas"] > 0]
    rows.sort(key=lambda p: (p["workload"], order.get(p["slot"], -1), p["site"], p["offer"], p["tier"]))
    return [{"workload": p["workload"], "slot": p["slot"], "site": p["site"], "accelerator": p["accelerator"],
             "tier": p["tier"], "replicas": p["replicas"], "busy_replicas": p["busy_replicas"],
             "standby_replicas": p["standby_replicas"], "usd_per_month": p["standby_usd_per_month"]} for p in rows]


def cost_by(d: dict, keys: tuple[str, ...]) -> list[dict]:
    agg: dict[tuple, float] = defaultdict(float)
    for c in d["costs"]:
        agg[tuple(c[k] or "" for k in keys)] += c["usd_per_month"]
    return [{**dict(zip(keys, k, strict=True)), "usd_per_month": round(v, 2)} for k, v in sorted(agg.items())]


def _md_table(rows: list[dict], cols: list[str], fmt: dict | None = None) -> str:
    fmt = fmt or {}
    if not rows:
        return "_none_\n"
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            f = fmt.get(c)
            cells.append(f(v) if f and v is not None else ("" if v is None else str(v)))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


# ============================================================================ markdown
def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(t: dict) -> str:
    cols = t["columns"]
    num = set(t["numeric"])
    lines = []
    if t.get("caption"):
        lines += [t["caption"], ""]
    if not t["rows"]:
        return "\n".join([*lines, "_none_", ""])
    lines.append("| " + " | ".join(_md_cell(c) for c in cols) + " |")
    lines.append("|" + "|".join("---:" if i in num else "---" for i in range(len(cols))) + "|")
    for r in t["rows"]:
        lines.append("| " + " | ".join(_md_cell(c) for c in r) + " |")
    if t.get("total"):
        lines.append("| " + " | ".join(f"**{_md_cell(c)}**" if c else "" for c in t["total"]) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(result: PlacementResult) -> str:
    """report.md: the report model's sections as Markdown."""
    m = build_report(result.data)
    parts = [f"# {m['title']}", ""]
    for sec in report_sections(m):
        parts += [f"## {sec['title']}", ""]
        for p in sec["paragraphs"]:
            parts += [p, ""]
        if sec["bullets"]:
            parts += [f"- {b}" for b in sec["bullets"]] + [""]
        for t in sec["tables"]:
            parts.append(md_table(t))
    d = result.data
    by_rule = d["exclusions"]["by_rule"]
    parts += ["## Pruned candidates", "",
              md_table(_table(["rule", "pairs pruned"], [[k, f"{v:,d}"] for k, v in by_rule.items() if v],
                              numeric={1}))]
    return "\n".join(parts).rstrip("\n") + "\n"


# ============================================================================ terminal
TERMINAL_SECTIONS = ("headline", "bom", "placement", "standby", "costs", "binding", "warnings", "solver-notes")
#: rows of one terminal table, and bullets of one section, at most (1000x100: 2,371 placement
#: rows took the summary 4 s; 5000x300: 1,200 binding power-budget bullets)
TERMINAL_MAX_ROWS = 40


def print_summary(result: PlacementResult) -> None:
    """The terminal summary: the report model's main sections as rich tables."""
    from rich.console import Console
    from rich.table import Table

    m = build_report(result.data)
    console = Console(width=160)
    sections = {s["id"]: s for s in report_sections(m)}
    console.print(f"[bold]{m['title']}[/bold]")
    console.print(sections["status"]["paragraphs"][0], markup=False)
    for b in sections["status"]["bullets"]:
        console.print(b, markup=False)
    for sid in TERMINAL_SECTIONS:
        sec = sections.get(sid)
        if sec is None:
            continue
        console.print(f"\n[bold]{sec['title']}[/bold]")
        bullets = sec["bullets"]
        for b in bullets[:TERMINAL_MAX_ROWS]:
            console.print(f"- {b}", markup=False)
        if len(bullets) > TERMINAL_MAX_ROWS:  # 5000x300: 1,200 binding power budgets
            console.print(f"- ... and {len(bullets) - TERMINAL_MAX_ROWS:,} more; every one is in report.md",
                          markup=False)
        for t in sec["tables"]:
            if sid == "costs" and t["key"] != "cost_by_site":
                continue
            keep = t.get("compact") or list(range(len(t["columns"])))
            rows = t["rows"]
            caption = t.get("caption")
            if len(rows) > TERMINAL_MAX_ROWS:
                more = f"the first {TERMINAL_MAX_ROWS} of {len(rows):,} rows; every row is in report.md and the CSVs"
                caption = f"{caption} ({more})" if caption else more
                rows = rows[:TERMINAL_MAX_ROWS]
            tab = Table(caption=caption)
            for i in keep:
                tab.add_column(t["columns"][i], justify="right" if i in t["numeric"] else "left")
            for r in rows:
                tab.add_row(*[r[i] for i in keep])
            if t.get("total"):
                tab.add_section()
                tab.add_row(*[t["total"][i] for i in keep], style="bold")
            console.print(tab)
        if not sec["bullets"] and not sec["tables"]:
            for p in sec["paragraphs"]:
                console.print(p, markup=False)


def failover_text(d: dict) -> str:
    """The failover section: rows (workload, lost_site, slot, user_region, query_class,
    unserved_rps) left unserved, or the sentence that none is."""
    if not any(w["redundancy"]["mode"] == "n_plus_1" for w in d["workloads"]):
        return "_no workload asks for N+1_\n"
    if d.get("verification") is None:
        return "_not checked: this result has not been verified_\n"
    bad = [f for f in d.get("failover", []) if f["unserved_rps"] > 0]
    if not bad:
        return "Every lost site leaves every user region's every class served.\n"
    return _md_table(bad, ["workload", "lost_site", "slot", "user_region", "query_class", "unserved_rps"],
                     {"unserved_rps": _rnd(3)})


def baseline_burst(d: dict) -> list[dict]:
    agg: dict[str, list] = {t["id"]: [0.0, 0.0, 0.0, 0.0] for t in d["time_slots"]}
    for u in d["utilisation"]:
        a = agg[u["slot"]]
        a[0] += u["gpus_baseline"]
        a[1] += u["gpus_burst"]
        a[2] += u["gpus_used"]
        a[3] += u["kw"] or 0.0
    return [{"slot": t, "baseline_gpus": round(a[0], 3), "burst_gpus": round(a[1], 3), "used_gpus": round(a[2], 3),
             "kw": a[3]} for t, a in agg.items()]


# ============================================================================ CSVs
def _csv(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(["" if v is None else plain_number(v) for v in r])
    return buf.getvalue()


def _cents(x: float) -> str:
    return f"{x:.2f}"


def _cents_rows(amounts: list[float], total: float) -> list[str]:
    """Amounts in cents that add up exactly to the total's cents (largest remainder)."""
    from planner.outputs.manifests import cents_apportioned

    return [f"{c / 100:.2f}" for c in cents_apportioned(amounts, total)]


def report_csvs(d: dict, m: dict) -> dict[str, str]:
    """The report's own CSVs (tidy: one key per row, one column per slot, money in cents adding up
    exactly to the total row): costs.csv, bom.csv, placement_by_slot.csv, standby.csv,
    cost_by_site.csv, utilisation_by_slot.csv."""
    sids = [t["id"] for t in d["time_slots"]]
    out: dict[str, str] = {}
    if not m["has_plan"]:
        return out
    # costs.csv: one row per (site, workload, tier, kind, item); monthly and per-slot columns
    keys: dict[tuple, dict] = {}
    for c in d["costs"]:
        k = (c["site"], c["provider"], c["workload"] or "", c["tier"] or "", c["kind"], c["item"] or "")
        row = keys.setdefault(k, {"monthly": 0.0, **{t: 0.0 for t in sids}})
        row["monthly" if c["slot"] is None else c["slot"]] += c["usd_per_month"]
    cols = ["monthly", *sids]
    flat = [(k, col, v[col]) for k, v in sorted(keys.items()) for col in cols]
    decision = m["headline"]["decision_usd_per_month"]
    sunk = m["headline"]["sunk_usd_per_month"]
    # cents per cell, decision and sunk apportioned apart so each adds up to its headline total
    cell: dict[tuple, str] = {}
    for sunk_part, total in ((False, decision), (True, sunk)):
        part = [(k, col, v) for k, col, v in flat if (k[4] == "owned_sunk") == sunk_part]
        for (k, col, _v), c in zip(part, _cents_rows([v for _k, _c, v in part], total), strict=True):
            cell[(k, col)] = c
    rows = []
    for k in sorted(keys):
        vals = [cell[(k, col)] for col in cols]
        cost_type = "sunk" if k[4] == "owned_sunk" else "decision"
        rows.append([*k[:4], k[4], k[5], cost_type, *vals, f"{sum(round(float(v) * 100) for v in vals) / 100:.2f}"])
    rows.append(["total", "", "", "", "", "", "decision", *["" for _ in cols], _cents(decision)])
    rows.append(["total", "", "", "", "", "", "sunk", *["" for _ in cols], _cents(sunk)])
    out["costs.csv"] = _csv(["site", "provider", "workload", "tier", "kind", "item", "cost_type", "monthly_usd",
                             *[f"{t}_usd" for t in sids], "usd_per_month"], rows)
    # bom.csv
    b = m["bom"]
    rows = []
    for r in b["rows"]:
        base = r["tier"] in ("owned", "bought", "reserved")
        rows.append([r["site"], r["site_kind"], r["instance_type"], r["accelerator"], r["gpus_per_instance"],
                     r["tier_name"], r["count"] if base else "", "" if base else r["burst_min"],
                     "" if base else r["burst_max"], *[r["by_slot"][t] for t in sids], r["usd_per_instance_hour"],
                     r["usd_per_gpu_month"], r["owned_usd_per_gpu_hour"], _cents(r["decision_usd_per_month"]),
                     _cents(r["sunk_usd_per_month"])])
    rows.append(["total", *["" for _ in range(8 + len(sids) + 3)], _cents(b["total"]["decision_usd_per_month"]),
                 _cents(b["total"]["sunk_usd_per_month"])])
    out["bom.csv"] = _csv(["site", "site_kind", "instance_type", "accelerator", "gpus_per_instance", "tier",
                           "baseline_count", "burst_min", "burst_max", *[f"{t}_count" for t in sids],
                           "usd_per_instance_hour", "usd_per_gpu_month", "owned_usd_per_gpu_hour",
                           "decision_usd_per_month", "sunk_usd_per_month"], rows)
    # placement_by_slot.csv
    rows = []
    for p in m["placement"]:
        for kind in ("serving", "standby"):
            rows.append([p["workload"], p["site"], p["accelerator"], p["instance_type"], p["tier_name"], kind,
                         *[p["slots"][t][kind] for t in sids]])
    out["placement_by_slot.csv"] = _csv(["workload", "site", "accelerator", "instance_type", "tier", "replicas",
                                         *sids], rows)
    # standby.csv
    sb = m["standby"]
    rows = [[r["workload"], r["purpose"], r["site"], r["accelerator"], r["tier_name"],
             *[r["slots"][t] for t in sids], _cents(r["usd_per_month"])] for r in sb["rows"]]
    rows.append(["total", "", "", "", "", *["" for _ in sids], _cents(sb["total_usd_per_month"])])
    out["standby.csv"] = _csv(["workload", "purpose", "site", "accelerator", "tier", *[f"{t}_replicas" for t in sids],
                               "usd_per_month"], rows)
    # cost_by_site.csv
    cs = m["cost_by_site"]
    rows = [[r["site"], r["site_kind"], *[_cents(r["by_kind"][k]) for k in cs["kinds"]],
             _cents(r["decision_usd_per_month"]), _cents(r["sunk_usd_per_month"]), _cents(r["total_usd_per_month"])]
            for r in cs["rows"]]
    t = cs["total"]
    rows.append(["total", "", *[_cents(t["by_kind"][k]) for k in cs["kinds"]], _cents(t["decision_usd_per_month"]),
                 _cents(t["sunk_usd_per_month"]), _cents(t["total_usd_per_month"])])
    out["cost_by_site.csv"] = _csv(["site", "site_kind", *[f"{k}_usd" for k in cs["kinds"]],
                                    "decision_usd_per_month", "sunk_usd_per_month", "total_usd_per_month"], rows)
    # utilisation_by_slot.csv: one row per (site, measure)
    rows = []
    for u in m["utilisation"]:
        for measure in ("held_gpus", "serving_gpus", "standby_gpus", "idle_gpus", "utilisation"):
            rows.append([u["site"], measure, *[("" if u["slots"][t] is None else
                                                 round(u["slots"][t][measure], 4)) for t in sids]])
    out["utilisation_by_slot.csv"] = _csv(["site", "measure", *sids], rows)
    return out


@gc_paused
def write_outputs(result: PlacementResult, out_dir: Path, plan: Plan | None = None) -> None:
    """result.json, plan.json (when a plan is given), report.md, report.html, the report's CSVs
    (costs, bom, placement_by_slot, standby, cost_by_site, utilisation_by_slot), one CSV per other
    result table and exclusions.csv (every pruned pair with its rule and reason), each written
    atomically. Result-table CSVs keep ids and full precision, without e-notation."""
    from planner.outputs.html import render_html

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    m = build_report(result.data)
    own = report_csvs(result.data, m)
    for name in TABLES:
        if f"{name}.csv" in own:
            continue
        rows = result.data.get(name, [])
        write_atomic_stream(out_dir / f"{name}.csv",
                            lambda fh, rows=rows, name=name: write_table_csv(fh, rows, None if rows else table_columns(name)))
    for name, text in own.items():
        write_atomic(out_dir / name, text)
    write_atomic(out_dir / "exclusions.csv", table_csv(result.exclusions, EXCLUSION_COLUMNS))
    write_atomic(out_dir / "report.md", render_markdown(result))
    write_atomic(out_dir / "report.html", render_html(result.data, m))
    if plan is not None:
        write_atomic(out_dir / "plan.json", plan.to_json(result.data["scenario"]))
    write_atomic_json(out_dir / "result.json", result.data)  # = result.to_json(), streamed
