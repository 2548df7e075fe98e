"""Render results: terminal summary (rich), report.md, CSVs. Reads result.json data only.

result.json keeps full floats; the renderings here round for people.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from planner.input.consistency import Resolved
from planner.plan.plan import Plan
from planner.plan.result import (
    EXCLUSION_COLUMNS,
    TABLES,
    PlacementResult,
    table_columns,
    table_csv,
    write_atomic,
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
    for reason in sv.get("reasons", []):
        console.print(f"reason: {reason}")
    if sm["total_usd_per_month"] is None:
        for note in sv.get("notes", []):
            console.print(f"note: {note}")
        return
    console.print(f"monthly cost {_usd(sm['total_usd_per_month'])} (+ owned GPUs sunk {_usd(sm['owned_sunk_usd_per_month'])}); "
                  f"{sm['requests_per_month']:,.0f} requests/month; "
                  f"${sm['usd_per_1k_requests'] or 0:.4f} per 1k requests; {sm['kg_co2e_per_month']:,.0f} kg CO2e; "
                  f"standby {_usd(sm['standby_usd_per_month'])}")
    t = Table(title="placement (peak slot)")
    for col in ("workload", "site", "accelerator", "tier", "replicas", "standby", "GPUs"):
        t.add_column(col, justify="right" if col in ("replicas", "standby", "GPUs") else "left")
    for row in placement_peak(d):
        t.add_row(row["workload"], row["site"], row["accelerator"], row["tier"], f"{row['replicas']:g}",
                  f"{row['standby_replicas']:g}", f"{row['gpus']:g}")
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
    """Replicas (and standby replicas) per workload/site/accelerator/tier in each workload's
    busiest slot."""
    by_slot: dict[tuple, float] = defaultdict(float)
    for p in d["placements"]:
        by_slot[(p["workload"], p["slot"])] += p["gpus"]
    peak = {}
    for (w, t), g in by_slot.items():
        if g > peak.get(w, (None, -1))[1]:
            peak[w] = (t, g)
    agg: dict[tuple, list] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for p in d["placements"]:
        if peak.get(p["workload"], (None,))[0] == p["slot"]:
            k = (p["workload"], p["site"], p["accelerator"], p["tier"])
            agg[k][0] += p["replicas"]
            agg[k][1] += p["gpus"]
            agg[k][2] += p["standby_replicas"]
    return [{"workload": k[0], "site": k[1], "accelerator": k[2], "tier": k[3], "replicas": round(v[0], 6),
             "standby_replicas": round(v[2], 6), "gpus": round(v[1], 6)} for k, v in sorted(agg.items())]


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


def render_markdown(result: PlacementResult) -> str:
    d = result.data
    sv, sm = d["solve"], d["summary"]
    money = lambda x: "-" if x is None else f"{x:,.2f}"  # noqa: E731
    gap = f"{sv['gap'] * 100:.3f} %" if sv.get("gap") is not None else "n/a"
    bound = "n/a" if sv.get("bound") is None else str(round(sv["bound"], 6))
    parts = [
        f"# Placement plan: {d['scenario']['name']} ({d['scenario']['variant'] or 'base'})\n",
        f"- status: **{sv['status']}** ({sv['model_status']}), gap {gap}, bound {bound}, "
        f"{sv['solver_version']}, {sv['integrality']} formulation, {sv['time_s']:.2f} s",
    ]
    parts.extend(f"- reason: {r}" for r in sv.get("reasons", []))
    if sm["total_usd_per_month"] is not None:
        per_1k = sm["usd_per_1k_requests"]
        parts += [
            f"- monthly cost: **{money(sm['total_usd_per_month'])} USD** (owned GPUs, sunk: "
            f"{money(sm['owned_sunk_usd_per_month'])} USD)",
            f"- standby capacity (replicas beyond normal serving, e.g. N+1 hot standby): "
            f"{money(sm['standby_usd_per_month'])} USD per month",
            f"- requests per month: {sm['requests_per_month']:,.0f}; cost per 1k requests: "
            f"{None if per_1k is None else round(per_1k, 6)} USD",
            f"- carbon: {sm['kg_co2e_per_month']:,.1f} kg CO2e per month",
        ]
    parts.append(f"- scenario {d['scenario']['path']} (sha256 {d['scenario']['content_hash']}), "
                 f"catalog {d['catalog']['version']}")
    if sv.get("rounding"):
        r = sv["rounding"]
        parts.append(f"- pooled formulation: rounding to whole replicas added {money(r.get('added_usd_per_month'))} "
                     f"USD/month (pooled {money(r.get('pooled_objective') or 0)} -> "
                     f"{money(r.get('rounded_objective') or 0)})")
    for n in sv.get("notes", []):
        parts.append(f"- note: {n}")
    parts.append("")
    parts.append("## Baseline and burst per time slot\n")
    parts.append("GPUs owned/reserved for the whole month (baseline) and rented per slot (burst), and how many are busy.\n")
    parts.append(_md_table(baseline_burst(d), ["slot", "baseline_gpus", "burst_gpus", "used_gpus", "kw"],
                           {"kw": lambda x: f"{x:,.1f}"}))
    parts.append("\n## Placement (peak slot of each workload)\n")
    parts.append(_md_table(placement_peak(d), ["workload", "site", "accelerator", "tier", "replicas",
                                               "standby_replicas", "gpus"]))
    parts.append("\n## Standby replicas\n")
    parts.append("Replicas beyond those normal serving keeps busy (hot standby for N+1, spares), per slot; cost = "
                 "standby replicas x GPUs per replica x the tier's GPU price for the slot's hours (owned GPUs: 0, sunk).\n")
    parts.append(_md_table(standby_by_slot(d), ["workload", "slot", "site", "accelerator", "tier", "replicas",
                                                "busy_replicas", "standby_replicas", "usd_per_month"],
                           {"busy_replicas": _rnd(3), "usd_per_month": money}))
    parts.append("\n## Routes\n")
    parts.append(_md_table(d["routes"], ["workload", "user_region", "slot", "site", "share", "rtt_ms", "rtt_source"],
                           {"share": lambda x: f"{x:.3f}", "rtt_ms": _rnd(2)}))
    parts.append("\n## Cost by site\n")
    parts.append(_md_table(cost_by(d, ("site", "provider")), ["site", "provider", "usd_per_month"], {"usd_per_month": money}))
    parts.append("\n## Cost by workload and kind\n")
    parts.append(_md_table(cost_by(d, ("workload", "kind")), ["workload", "kind", "usd_per_month"], {"usd_per_month": money}))
    parts.append("\n## Unit costs\n")
    parts.append(_md_table(d["unit_costs"], ["workload", "class", "requests_per_month", "usd_per_month",
                                             "usd_per_1k_requests", "usd_per_successful_outcome"],
                           {"requests_per_month": _rnd(1), "usd_per_month": _rnd(2), "usd_per_1k_requests": _rnd(6),
                            "usd_per_successful_outcome": _rnd(8)}))
    parts.append("\n## By tenant and feature\n")
    parts.append(_md_table(d["attribution"], ["tenant", "feature", "usd_per_month"], {"usd_per_month": money}))
    parts.append("\n## Utilisation\n")
    parts.append(_md_table(d["utilisation"], ["site", "slot", "gpus_installed", "gpus_used", "utilisation", "kw",
                                              "power_budget_kw", "kg_co2e_per_month"],
                           {"gpus_installed": _rnd(6), "gpus_used": _rnd(6), "utilisation": lambda x: f"{x:.0%}",
                            "kw": _rnd(4), "kg_co2e_per_month": _rnd(3)}))
    parts.append("\n## Binding constraints\n")
    parts.append(_md_table(d["binding"], ["family", "label", "activity", "limit", "slack", "unit"],
                           {"activity": _rnd(6), "limit": _rnd(6), "slack": _rnd(6)}))
    parts.append("\n## Failover (N+1) check\n")
    parts.append(failover_text(d))
    parts.append("\n## Pruned candidates\n")
    by_rule = d["exclusions"]["by_rule"]
    parts.append(_md_table([{"rule": k, "count": v} for k, v in by_rule.items() if v], ["rule", "count"]))
    if d.get("warnings"):
        parts.append("\n## Warnings\n")
        parts.extend(f"- {w}" for w in d["warnings"])
    return "\n".join(parts) + "\n"


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


def write_outputs(result: PlacementResult, out_dir: Path, plan: Plan | None = None) -> None:
    """result.json, plan.json (when a plan is given), report.md, one CSV per table and
    exclusions.csv (every pruned pair with its rule and reason), each written atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        rows = result.data.get(name, [])
        write_atomic(out_dir / f"{name}.csv", table_csv(rows, None if rows else table_columns(name)))
    write_atomic(out_dir / "exclusions.csv", table_csv(result.exclusions, EXCLUSION_COLUMNS))
    write_atomic(out_dir / "report.md", render_markdown(result))
    if plan is not None:
        write_atomic(out_dir / "plan.json", plan.to_json(result.data["scenario"]))
    write_atomic(out_dir / "result.json", result.to_json())
