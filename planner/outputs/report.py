"""Render results: terminal summary (rich), report.md, CSVs. Reads result.json data only."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

from planner.input.consistency import Resolved
from planner.plan.result import TABLES, PlacementResult, write_atomic


def _usd(x) -> str:
    return "-" if x is None else f"${x:,.0f}"


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


def print_summary(result: PlacementResult) -> None:
    from rich.console import Console
    from rich.table import Table

    d = result.data
    console = Console(width=120)
    sv = d["solve"]
    sm = d["summary"]
    gap = f"{sv['gap'] * 100:.3f} %" if sv.get("gap") is not None else "n/a"
    console.print(f"[bold]{d['scenario']['name']}[/bold] ({d['scenario']['variant'] or 'base'}): "
                  f"status [bold]{sv['status']}[/bold], gap {gap}, {sv['solver_version']}, "
                  f"{sv['integrality']} formulation, {sv['time_s']:.2f} s")
    console.print(f"monthly cost {_usd(sm['total_usd_per_month'])} (+ owned GPUs sunk {_usd(sm['owned_sunk_usd_per_month'])}); "
                  f"{sm['requests_per_month']:,.0f} requests/month; "
                  f"${sm['usd_per_1k_requests'] or 0:.4f} per 1k requests; {sm['kg_co2e_per_month']:,.0f} kg CO2e")
    t = Table(title="placement (peak slot)")
    for col in ("workload", "site", "accelerator", "tier", "replicas", "GPUs"):
        t.add_column(col, justify="right" if col in ("replicas", "GPUs") else "left")
    for row in placement_peak(d):
        t.add_row(row["workload"], row["site"], row["accelerator"], row["tier"], f"{row['replicas']:g}", f"{row['gpus']:g}")
    console.print(t)
    c = Table(title="cost by site")
    for col in ("site", "kind", "USD/month"):
        c.add_column(col, justify="right" if col == "USD/month" else "left")
    for row in cost_by(d, ("site", "kind")):
        c.add_row(row["site"], row["kind"], f"{row['usd_per_month']:,.0f}")
    console.print(c)
    for note in sv.get("notes", []):
        console.print(f"note: {note}")
    ver = d.get("verification")
    if ver is not None:
        console.print("verify: " + ("ok" if ver["ok"] else f"{len(ver['violations'])} violations"))


def placement_peak(d: dict) -> list[dict]:
    """Replicas per workload/site/accelerator/tier in each workload's busiest slot."""
    by_slot: dict[tuple, float] = defaultdict(float)
    for p in d["placements"]:
        by_slot[(p["workload"], p["slot"])] += p["gpus"]
    peak = {}
    for (w, t), g in by_slot.items():
        if g > peak.get(w, (None, -1))[1]:
            peak[w] = (t, g)
    agg: dict[tuple, list] = defaultdict(lambda: [0.0, 0.0])
    for p in d["placements"]:
        if peak.get(p["workload"], (None,))[0] == p["slot"]:
            k = (p["workload"], p["site"], p["accelerator"], p["tier"])
            agg[k][0] += p["replicas"]
            agg[k][1] += p["gpus"]
    return [{"workload": k[0], "site": k[1], "accelerator": k[2], "tier": k[3], "replicas": v[0], "gpus": v[1]}
            for k, v in sorted(agg.items())]


def cost_by(d: dict, keys: tuple[str, ...]) -> list[dict]:
    agg: dict[tuple, float] = defaultdict(float)
    for c in d["costs"]:
        agg[tuple(c[k] for k in keys)] += c["usd_per_month"]
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


def render_markdown(result: PlacementResult) -> str:
    d = result.data
    sv, sm = d["solve"], d["summary"]
    money = lambda x: f"{x:,.2f}"  # noqa: E731
    gap = f"{sv['gap'] * 100:.3f} %" if sv.get("gap") is not None else "n/a"
    parts = [
        f"# Placement plan: {d['scenario']['name']} ({d['scenario']['variant'] or 'base'})\n",
        f"- status: **{sv['status']}** ({sv['model_status']}), gap {gap}, bound {sv['bound']}, "
        f"{sv['solver_version']}, {sv['integrality']} formulation, {sv['time_s']:.2f} s",
        f"- monthly cost: **{money(sm['total_usd_per_month'])} USD** (owned GPUs, sunk: {money(sm['owned_sunk_usd_per_month'])} USD)",
        f"- requests per month: {sm['requests_per_month']:,.0f}; cost per 1k requests: {sm['usd_per_1k_requests']} USD",
        f"- carbon: {sm['kg_co2e_per_month']:,.1f} kg CO2e per month",
        f"- scenario {d['scenario']['path']} (sha256 {d['scenario']['content_hash']}), catalog {d['catalog']['version']}",
    ]
    if sv.get("rounding"):
        r = sv["rounding"]
        parts.append(f"- pooled formulation: rounding to whole replicas added {money(r['added_usd_per_month'])} USD/month "
                     f"(pooled {money(r['pooled_objective'] or 0)} -> {money(r['rounded_objective'] or 0)})")
    for n in sv.get("notes", []):
        parts.append(f"- note: {n}")
    parts.append("")
    parts.append("## Baseline and burst per time slot\n")
    parts.append("GPUs owned/reserved for the whole month (baseline) and rented per slot (burst), and how many are busy.\n")
    parts.append(_md_table(baseline_burst(d), ["slot", "baseline_gpus", "burst_gpus", "used_gpus", "kw"],
                           {"kw": lambda x: f"{x:,.1f}"}))
    parts.append("\n## Placement (peak slot of each workload)\n")
    parts.append(_md_table(placement_peak(d), ["workload", "site", "accelerator", "tier", "replicas", "gpus"]))
    parts.append("\n## Routes\n")
    parts.append(_md_table(d["routes"], ["workload", "user_region", "slot", "site", "share", "rtt_ms", "rtt_source"],
                           {"share": lambda x: f"{x:.3f}"}))
    parts.append("\n## Cost by site\n")
    parts.append(_md_table(cost_by(d, ("site", "provider")), ["site", "provider", "usd_per_month"], {"usd_per_month": money}))
    parts.append("\n## Cost by workload and kind\n")
    parts.append(_md_table(cost_by(d, ("workload", "kind")), ["workload", "kind", "usd_per_month"], {"usd_per_month": money}))
    parts.append("\n## Unit costs\n")
    parts.append(_md_table(d["unit_costs"], ["workload", "class", "requests_per_month", "usd_per_month",
                                             "usd_per_1k_requests", "usd_per_successful_outcome"]))
    parts.append("\n## By tenant and feature\n")
    parts.append(_md_table(d["attribution"], ["tenant", "feature", "usd_per_month"], {"usd_per_month": money}))
    parts.append("\n## Utilisation\n")
    parts.append(_md_table(d["utilisation"], ["site", "slot", "gpus_installed", "gpus_used", "utilisation", "kw",
                                              "power_budget_kw", "kg_co2e_per_month"],
                           {"utilisation": lambda x: f"{x:.0%}"}))
    parts.append("\n## Binding constraints\n")
    parts.append(_md_table(d["binding"], ["family", "label", "value", "limit"]))
    parts.append("\n## Failover (N+1) check\n")
    bad = [f for f in d.get("failover", []) if f["unserved_user_regions"]]
    if not d.get("failover"):
        parts.append("_no workload asks for N+1_\n")
    elif not bad:
        parts.append("Every lost site leaves every user region served within its SLO.\n")
    else:
        parts.append(_md_table(bad, ["workload", "slot", "lost_site", "unserved_user_regions", "unserved_rps"],
                               {"unserved_user_regions": lambda x: ", ".join(x)}))
    parts.append("\n## Pruned candidates\n")
    parts.append(_md_table([{"reason": k, "count": v} for k, v in d["pruned"]["by_reason"].items()], ["reason", "count"]))
    if d.get("warnings"):
        parts.append("\n## Warnings\n")
        parts.extend(f"- {w}" for w in d["warnings"])
    return "\n".join(parts) + "\n"


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


def write_outputs(result: PlacementResult, out_dir: Path) -> None:
    """result.json, report.md and one CSV per table, each written atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        rows = result.data.get(name, [])
        df = pd.DataFrame(rows)
        if "tags" in df.columns:
            tags = pd.json_normalize(df.pop("tags").tolist()).add_prefix("tag_")
            df = pd.concat([df.reset_index(drop=True), tags], axis=1)
        if "unserved_user_regions" in df.columns:
            df["unserved_user_regions"] = df["unserved_user_regions"].map(lambda x: " ".join(x))
        write_atomic(out_dir / f"{name}.csv", df.to_csv(index=False, lineterminator="\n"))
    write_atomic(out_dir / "report.md", render_markdown(result))
    write_atomic(out_dir / "result.json", result.to_json())
