"""The report model (:mod:`planner.outputs.report_model`) as renderable sections: titles,
paragraphs, bullets and tables of display strings (numbers for people: thousands separators,
units, no e-notation; names for people, never internal keys). report.md, the terminal and
report.html all render these same sections.
"""

from __future__ import annotations

import math

from planner.outputs.report_model import class_name


# ============================================================================ numbers for people
def usd(x) -> str:
    """Monthly dollars: whole dollars with thousands separators (cents below 100)."""
    if x is None:
        return "-"
    x = float(x)
    return f"{x:,.0f}" if abs(x) >= 100 or x == 0 else f"{x:,.2f}"


def sig(x, n: int = 3) -> str:
    """A small number with n significant digits, never in e-notation (0.0000479)."""
    if x is None:
        return "-"
    x = float(x)
    if x == 0:
        return "0"
    decimals = max(0, n - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def count(x) -> str:
    """A count: whole numbers without a decimal point, others with up to 2 decimals."""
    if x is None:
        return "-"
    x = float(x)
    if abs(x - round(x)) < 1e-6:
        return f"{round(x):,d}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def big(x) -> str:
    """A monthly volume: 83.4 million, 3.04 trillion."""
    x = float(x or 0.0)
    for div, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if abs(x) >= div:
            v = x / div
            return f"{v:,.{2 if v < 10 else 1 if v < 100 else 0}f} {word}"
    return f"{x:,.0f}"


def pct(x) -> str:
    return "-" if x is None else f"{float(x) * 100:.0f} %"


def unit_price(r: dict) -> str:
    """A BOM row's unit price."""
    if r["tier"] == "owned":
        rate = r.get("owned_usd_per_gpu_hour")
        return "owned (sunk)" if rate is None else f"{rate:,.2f} USD/GPU-hour (sunk)"
    if r.get("usd_per_gpu_month") is not None:
        return f"{r['usd_per_gpu_month']:,.0f} USD/GPU-month"
    if r.get("usd_per_instance_hour") is not None:
        return f"{r['usd_per_instance_hour']:,.2f} USD/instance-hour"
    return "-"


# ============================================================================ sections
def _table(columns: list[str], rows: list[list[str]], *, total: list[str] | None = None,
           numeric: set[int] | None = None, caption: str | None = None, key: str | None = None,
           compact: list[int] | None = None) -> dict:
    """A renderable table: headers, rows of display strings, an optional total row; ``numeric``:
    indices of right-aligned columns; ``compact``: the columns the terminal shows (all when None)."""
    return {"key": key, "columns": columns, "rows": rows, "total": total, "caption": caption,
            "numeric": sorted(numeric or ()), "compact": compact}


def _cell(serving: float, standby: float) -> str:
    if serving <= 0 and standby <= 0:
        return "-"
    if standby <= 0:
        return count(serving)
    return f"{count(serving)} +{count(standby)} standby"


def report_sections(m: dict) -> list[dict]:
    """The report model as sections (id, title, paragraphs, bullets, tables) for every rendering."""
    slots = m["slots"]
    sids = [t["id"] for t in slots]
    st = m["status"]
    gap = "n/a" if st["gap"] is None else f"{st['gap'] * 100:.2f} %"
    status = (f"status {st['status']}, gap {gap}, {st['solver_version']}, {st['integrality']} formulation, "
              f"{st['time_s']:.1f} s; independent verification: {st['verified']}")
    out: list[dict] = [{"id": "status", "title": "Status", "paragraphs": [status],
                        "bullets": [f"reason: {r}" for r in st["reasons"]], "tables": []}]
    if not m["has_plan"]:
        out.append({"id": "warnings", "title": "Warnings", "paragraphs": [], "bullets": m["warnings"], "tables": []})
        out.append({"id": "solver-notes", "title": "Solver notes", "paragraphs": [], "bullets": m["solver_notes"],
                    "tables": []})
        return [s for s in out if s["bullets"] or s["paragraphs"] or s["tables"]]
    h = m["headline"]
    n1 = (f"cost of N+1 (standby replicas of {', '.join(h['n_plus_1_workloads'])}): "
          f"{usd(h['n_plus_1_usd_per_month'])} USD/month" if h["n_plus_1_workloads"]
          else "cost of N+1: none (no workload asks for N+1)")
    bullets = [
        f"decision cost: {usd(h['decision_usd_per_month'])} USD/month (cloud instances, bought GPUs, electricity, "
        "site fixed costs, egress: what this plan decides)",
        f"sunk cost: {usd(h['sunk_usd_per_month'])} USD/month (owned GPUs, paid whether used or not)",
        f"total: {usd(h['total_usd_per_month'])} USD/month",
        n1 + (f"; spare replicas of other workloads: {usd(h['spare_usd_per_month'])} USD/month"
              if h["spare_usd_per_month"] > 0 else ""),
        f"carbon: {h['kg_co2e_per_month']:,.0f} kg CO2e/month",
    ]
    wrows = []
    for w in m["workloads"]:
        unit = (f"{sig(w['usd_per_unit'], 3)} USD per {w['unit']}" if w["usd_per_unit"] is not None
                else (w["note"] or "-"))
        wrows.append([w["workload"], w["kind"], w["model"], usd(w["usd_per_month"]),
                      f"{big(w['volume_per_month'])} {w['unit'].split(' ', 1)[1]}", unit])
    out.append({"id": "headline", "title": "Headline", "paragraphs": [], "bullets": bullets, "tables": [
        _table(["workload", "kind", "model", "USD/month", "volume/month", "unit cost"], wrows, numeric={3},
               key="workloads",
               caption="Unit cost per workload: request workloads per 1,000 of their own requests (escalations "
                       "are charged to the workload that escalates), batch workloads per 1M input tokens.")]})

    b = m["bom"]
    brows = []
    for r in b["rows"]:
        base = r["tier"] in ("owned", "bought", "reserved")
        brows.append([r["site"], r["instance_type"], r["accelerator"], count(r["gpus_per_instance"]), r["tier_name"],
                      count(r["count"]) if base else "",
                      "" if base else f"{r['burst_min']}-{r['burst_max']}",
                      *[("" if base else str(r["by_slot"][t])) for t in sids],
                      unit_price(r), usd(r["decision_usd_per_month"]), usd(r["sunk_usd_per_month"])])
    ncol = 7 + len(sids)
    btotal = ["total", "", "", "", "", "", "", *["" for _ in sids], "", usd(b["total"]["decision_usd_per_month"]),
              usd(b["total"]["sunk_usd_per_month"])]
    out.append({"id": "bom", "title": "Bill of materials", "paragraphs": [
        "What to run, reserve, rent or buy per site. Whole instances: an 8-GPU VM is one instance of 8 GPUs however "
        "many of them are busy. Baseline (owned, bought, reserved) holds a fixed count all month; burst "
        "(on-demand, spot) a count per slot (min-max over all slots, a slot without any counts 0). "
        "USD/month is decision cost; owned GPUs' amortised cost is sunk."], "bullets": [], "tables": [
        _table(["site", "instance type", "accelerator", "GPUs each", "tier", "baseline", "burst min-max",
                *sids, "unit price", "USD/month", "sunk USD/month"], brows, total=btotal,
               numeric={3, 5, 6, *range(7, ncol), ncol + 1, ncol + 2}, key="bom",
               compact=[0, 1, 3, 4, 5, 6, ncol, ncol + 1, ncol + 2])]})

    prows = [[p["workload"], p["site"], p["accelerator"], p["tier_name"],
              *[_cell(p["slots"][t]["serving"], p["slots"][t]["standby"]) for t in sids]] for p in m["placement"]]
    out.append({"id": "placement", "title": "Placement per slot", "paragraphs": [
        "Replicas of each workload in every slot (UTC): " + "; ".join(t["label"] for t in slots) + ". "
        "\"+N standby\": replicas held beyond what serving needs (N+1 hot standby, spares)."],
        "bullets": [], "tables": [_table(["workload", "site", "accelerator", "tier", *sids], prows,
                                         numeric=set(range(4, 4 + len(sids))), key="placement")]})

    sb = m["standby"]
    srows = [[r["workload"], r["purpose"], r["site"], r["accelerator"], r["tier_name"],
              *[count(r["slots"][t]) if r["slots"][t] else "-" for t in sids], usd(r["usd_per_month"])]
             for r in sb["rows"]]
    stotal = ["total", "", "", "", "", *["" for _ in sids], usd(sb["total_usd_per_month"])]
    out.append({"id": "standby", "title": "Standby capacity", "paragraphs": [
        n1 + f"; spare replicas: {usd(sb['spare_usd_per_month'])} USD/month. Standby replicas serve nothing "
        "in normal operation; they cost the tier's GPU price for the slot's hours (owned GPUs: 0, sunk)."],
        "bullets": [], "tables": [_table(["workload", "purpose", "site", "accelerator", "tier", *sids, "USD/month"],
                                         srows, total=stotal if srows else None,
                                         numeric=set(range(5, 6 + len(sids))), key="standby")]})

    crows = [[c["site"], c["site_kind"], *[f"{count(c['slots'][t]['baseline_gpus'])} + "
                                           f"{count(c['slots'][t]['burst_gpus'])}" for t in sids]]
             for c in m["capacity"]]
    urows = []
    for u in m["utilisation"]:
        cells = []
        for t in sids:
            c = u["slots"][t]
            cells.append("-" if c is None else
                         f"{pct(c['utilisation'])} ({count(c['serving_gpus'])} of {count(c['held_gpus'])}"
                         + (f", {count(c['standby_gpus'])} standby)" if c["standby_gpus"] else ")"))
        urows.append([u["site"], *cells])
    out.append({"id": "capacity", "title": "Capacity and utilisation per site and slot", "paragraphs": [
        "GPUs held per slot as baseline + burst, and utilisation = GPUs serving / GPUs held (standby GPUs are "
        "held but not busy)."], "bullets": [], "tables": [
        _table(["site", "kind", *sids], crows, numeric=set(range(2, 2 + len(sids))), key="capacity",
               caption="GPUs held: baseline + burst"),
        _table(["site", *sids], urows, numeric=set(range(1, 1 + len(sids))), key="utilisation",
               caption="Utilisation: GPUs serving of GPUs held")]})

    cs = m["cost_by_site"]
    kinds = cs["kinds"]
    kn = cs["kind_names"]
    cost_rows = [[r["site"], r["site_kind"], *[usd(r["by_kind"][k]) for k in kinds], usd(r["decision_usd_per_month"]),
                  usd(r["sunk_usd_per_month"]), usd(r["total_usd_per_month"])] for r in cs["rows"]]
    t = cs["total"]
    cost_total = ["total", "", *[usd(t["by_kind"][k]) for k in kinds], usd(t["decision_usd_per_month"]),
                  usd(t["sunk_usd_per_month"]), usd(t["total_usd_per_month"])]
    urows2 = [[u["workload"], class_name(u["workload"], u["class"]), big(u["requests_per_month"]), usd(u["usd_per_month"]),
               "-" if u["usd_per_unit"] is None else f"{sig(u['usd_per_unit'])} per {u['unit']}"]
              for u in m["unit_costs"]]
    out.append({"id": "costs", "title": "Cost by site", "paragraphs": [
        "Decision cost by kind, sunk cost (owned GPUs) apart; the totals are the headline's."], "bullets": [],
        "tables": [_table(["site", "kind", *[kn[k] for k in kinds], "decision USD/month", "sunk USD/month",
                           "total USD/month"], cost_rows, total=cost_total,
                          numeric=set(range(2, 5 + len(kinds))), key="cost_by_site"),
                   _table(["workload", "class", "requests/month", "USD/month", "unit cost"], urows2, numeric={2, 3},
                          key="unit_costs", caption="Cost per query class (USD/month of decision cost)")]})

    trows = [[r["user_region"], r["site"], f"{r['mean_rps']:,.1f}", pct(r["share_of_region"]),
              "-" if r["rtt_ms"] is None else f"{r['rtt_ms']:,.1f}", ", ".join(r["workloads"])] for r in m["traffic"]]
    out.append({"id": "traffic", "title": "Traffic from user regions to sites", "paragraphs": [
        "Mean requests/s over the month from each user region to each site, its share of the region's traffic "
        "and the round-trip time."], "bullets": [], "tables": [
        _table(["user region", "site", "mean req/s", "share of region", "RTT ms", "workloads"], trows,
               numeric={2, 3, 4}, key="traffic")]})
    out.append({"id": "binding", "title": "Binding constraints", "paragraphs": [] if m["binding"] else
                ["No limit stops the plan from taking one more unit of anything."],
                "bullets": [b["text"] for b in m["binding"]], "tables": []})
    fo = m["failover"]
    fo_tables = []
    if fo and fo["unserved"]:
        fo_tables.append(_table(["workload", "lost site", "slot", "user region", "class", "unserved req/s"],
                                [[f["workload"], f["lost_site"], f["slot"], f["user_region"], f["query_class"],
                                  f"{f['unserved_rps']:,.3g}"] for f in fo["unserved"]], numeric={5}, key="failover"))
    out.append({"id": "failover", "title": "Failover (N+1) check", "paragraphs": [fo["text"]] if fo else [],
                "bullets": [], "tables": fo_tables})
    out.append({"id": "warnings", "title": "Warnings", "paragraphs": [] if m["warnings"] else ["none"],
                "bullets": m["warnings"], "tables": []})
    out.append({"id": "solver-notes", "title": "Solver notes", "paragraphs": [
        "How the solver got to the plan above; a starting plan is where the search began, not an alternative."]
        if m["solver_notes"] else ["none"], "bullets": m["solver_notes"], "tables": []})
    sc = m["scenario"]
    out.append({"id": "scenario", "title": "Scenario", "paragraphs": [
        f"{sc['description']} ({sc['path']}, content hash {sc['content_hash']}, catalog {sc['catalog_version']})"],
        "bullets": [], "tables": []})
    return out
