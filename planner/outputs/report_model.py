"""The report model: one plain data structure built from result.json 1.1 data alone (the
``data`` dict of a PlacementResult; no solver objects, no scenario file), rendered three ways:
terminal and report.md (:mod:`planner.outputs.report`) and report.html
(:mod:`planner.outputs.html`).

Definitions (all monthly, USD, one month = ``policies.hours_per_month`` hours):

- **decision cost**: every cost line except owned GPUs' amortised cost (what the optimiser
  minimises); **sunk cost**: owned GPUs' amortised cost, paid whether used or not; **total** =
  decision + sunk. The cost-by-site table splits the same lines the same way, so its totals are
  the headline's.
- **unit cost per workload**: request workloads (chat, agents, reranking): USD per 1,000 of the
  workload's own requests (escalated requests are charged to the workload that escalates);
  batch workloads (embeddings): USD per 1M input tokens. Requests of different workloads are
  never added together.
- **bill of materials**: one row per (site, instance type, tier); whole instances (an 8-GPU VM
  counts as one instance of 8 GPUs, whatever share of it is busy). Baseline tiers (owned,
  bought, reserved) hold a fixed count all month; burst tiers (on-demand, spot) a count per
  slot, shown as min-max over every slot (a slot without any counts 0). Owned GPUs the plan does
  not install are listed apart (``owned, not installed``) with their sunk cost, so the sunk
  column adds up to the headline's; owned GPUs holding no replica in any slot are warned about
  (with their idle sunk cost, and the power budget when it is what keeps them off).
- **placement**: replicas per (workload, site, accelerator, tier) in every slot, split into
  serving replicas and standby replicas (result 1.1 ``standby_replicas``: held beyond what normal
  serving keeps busy).
- **standby**: standby replicas per slot and their cost; for workloads with N+1 redundancy this
  is the **cost of N+1**; for other workloads it is spare capacity (e.g. baseline capacity idle
  off-peak).
- **utilisation**: GPUs serving / GPUs held, per site and slot; standby GPUs are not busy.
"""

from __future__ import annotations

import re
from collections import defaultdict

MODEL_VERSION = 1
BATCH_KINDS = ("batch_embeddings",)
TIER_NAMES = {"owned": "owned", "bought": "bought", "reserved": "reserved", "on_demand": "on-demand",
              "spot": "spot"}
TIER_ORDER = ("owned", "bought", "reserved", "on_demand", "spot")
BASELINE_TIERS = ("owned", "bought", "reserved")
KIND_NAMES = {"compute": "cloud instances", "capex": "bought GPUs", "electricity": "electricity",
              "fixed": "site fixed cost", "egress_response": "egress (responses)",
              "egress_data": "egress (data sources)", "owned_sunk": "owned GPUs (sunk)"}
DECISION_KINDS = ("compute", "capex", "electricity", "fixed", "egress_response", "egress_data")
WORKLOAD_KIND_NAMES = {"realtime_chat": "chat", "agents": "agents", "reranking": "reranking",
                       "batch_embeddings": "batch embeddings"}
_START_NOTE = re.compile(r"^(?P<label>.+?) start: (?P<usd>[0-9][0-9,]*(?:\.[0-9]+)?) USD/month$")


# ---------------------------------------------------------------------------- labels
def slot_label(slot: dict) -> str:
    """``early (04-08 h UTC)``."""
    return f"{slot['id']} ({slot['start_hour']:02d}-{slot['end_hour']:02d} h UTC)"


def tier_name(tier: str | None) -> str:
    return TIER_NAMES.get(tier or "", tier or "")


def class_name(workload: str, cls: str, source_workload: str | None = None, source_class: str | None = None) -> str:
    """A load class for people: ``short``, or ``support-chat escalated long-context`` for the
    load class ``support-chat~long-context`` a larger model serves."""
    if source_workload is None and "~" in cls:
        source_workload, source_class = cls.split("~", 1)
    if source_workload is not None:
        return f"{source_workload} escalated {source_class}"
    return cls


def _r(x, nd: int = 6):
    """x rounded to nd decimals, or to 8 significant digits below 1 (unit costs are small)."""
    if x is None:
        return None
    x = float(x)
    if 0 < abs(x) < 1:
        return float(f"{x:.8g}")
    return round(x, nd) + 0.0


def _tidy(obj):
    """Round every float (6 decimals; 8 significant digits below 1): the model is for people and
    its golden file must not depend on the last bits of a sum; result.json keeps full floats."""
    if isinstance(obj, float):
        return _r(obj)
    if isinstance(obj, dict):
        return {k: _tidy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_tidy(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------- model
def build_report(d: dict) -> dict:
    """The report model of result.json data ``d`` (a plain, JSON-serialisable dict)."""
    slots = [{"id": t["id"], "label": slot_label(t), "hours_per_month": t["hours_per_month"]}
             for t in d["time_slots"]]
    sv, sm = d["solve"], d["summary"]
    ver = d.get("verification")
    has_plan = sm.get("total_usd_per_month") is not None
    model: dict = {
        "model_version": MODEL_VERSION,
        "title": f"Placement plan: {d['scenario']['name']} ({d['scenario']['variant'] or 'base'})",
        "scenario": {"name": d["scenario"]["name"], "variant": d["scenario"]["variant"] or "base",
                     "description": d["scenario"]["description"], "path": d["scenario"]["path"],
                     "content_hash": d["scenario"]["content_hash"], "catalog_version": d["catalog"]["version"]},
        "slots": slots,
        "status": {"status": sv["status"], "model_status": sv["model_status"], "gap": sv.get("gap"),
                   "bound": sv.get("bound"), "solver_version": sv["solver_version"],
                   "integrality": sv["integrality"], "time_s": sv["time_s"],
                   "verified": "not checked" if ver is None else ("ok" if ver["ok"] else "failed"),
                   "violations": list(ver["violations"]) if ver else [],
                   "reasons": list(sv.get("reasons", []))},
        "has_plan": has_plan,
    }
    if not has_plan:
        model.update({"headline": None, "workloads": [], "bom": {"rows": [], "total": None}, "placement": [],
                      "standby": {"rows": [], "n_plus_1_workloads": [], "n_plus_1_usd_per_month": 0.0,
                                  "spare_usd_per_month": 0.0, "total_usd_per_month": 0.0},
                      "capacity": [], "utilisation": [], "cost_by_site": {"kinds": [], "rows": [], "total": None},
                      "cost_by_site_tier": [], "unit_costs": [], "traffic": [], "binding": [], "failover": None,
                      "warnings": [*d.get("warnings", [])], "solver_notes": solver_notes(d)})
        return _tidy(model)
    standby = standby_table(d)
    model.update({
        "headline": headline(d, standby),
        "workloads": workload_unit_costs(d),
        "bom": bill_of_materials(d),
        "placement": placement_by_slot(d),
        "standby": standby,
        "capacity": capacity_by_site(d),
        "utilisation": utilisation_by_site(d),
        "cost_by_site": cost_by_site(d),
        "cost_by_site_tier": cost_by_site_tier(d),
        "unit_costs": class_unit_costs(d),
        "traffic": traffic(d),
        "binding": binding_sentences(d),
        "failover": failover_summary(d),
        "warnings": [*unused_owned_warnings(d), *d.get("warnings", [])],
        "solver_notes": solver_notes(d),
    })
    return _tidy(model)


def headline(d: dict, standby: dict) -> dict:
    sm = d["summary"]
    return {"decision_usd_per_month": sm["total_usd_per_month"],
            "sunk_usd_per_month": sm["owned_sunk_usd_per_month"],
            "total_usd_per_month": sm["total_with_sunk_usd_per_month"],
            "n_plus_1_usd_per_month": standby["n_plus_1_usd_per_month"],
            "n_plus_1_workloads": standby["n_plus_1_workloads"],
            "spare_usd_per_month": standby["spare_usd_per_month"],
            "kg_co2e_per_month": sm["kg_co2e_per_month"]}


def workload_unit_costs(d: dict) -> list[dict]:
    """Per workload: its monthly cost (escalations charged to the workload that escalates) and
    its unit cost (per 1k requests, or per 1M tokens for batch)."""
    star = {u["workload"]: u for u in d["unit_costs"] if u["class"] == "*"}
    tokens: dict[str, float] = defaultdict(float)
    for ld in d["loads"]:
        if ld["source_workload"] is None and ld["tokens_per_month"] is not None:
            tokens[ld["workload"]] += ld["tokens_per_month"]
    escalates_to = defaultdict(list)
    for w in d["workloads"]:
        if w["escalation"]:
            escalates_to[w["escalation"]["escalate_to"]].append(w["id"])
    rows = []
    for w in d["workloads"]:
        u = star.get(w["id"], {"usd_per_month": 0.0, "requests_per_month": 0.0})
        usd, reqs = u["usd_per_month"], u["requests_per_month"]
        row = {"workload": w["id"], "kind": WORKLOAD_KIND_NAMES.get(w["kind"], w["kind"]), "model": w["model"],
               "usd_per_month": usd, "requests_per_month": reqs, "note": None}
        if w["kind"] in BATCH_KINDS:
            tok = tokens.get(w["id"], 0.0)
            row.update(unit="1M tokens", volume_per_month=tok, usd_per_unit=usd / tok * 1e6 if tok else None)
        else:
            row.update(unit="1k requests", volume_per_month=reqs, usd_per_unit=usd / reqs * 1e3 if reqs else None)
        if not reqs and escalates_to.get(w["id"]):
            row["note"] = "serves escalations; its cost is charged to " + ", ".join(escalates_to[w["id"]])
        rows.append(row)
    return rows


def _inventory(d: dict) -> dict[tuple[str, str], dict]:
    return {(s["id"], inv["offer"]): inv for s in d["sites"] for inv in s["inventory"]}


def _unused_owned(d: dict) -> list[dict]:
    """Owned GPUs holding no replica in any slot, per (site, offer), with their sunk cost."""
    hpm = d["policies"]["hours_per_month"]
    used: dict[tuple, float] = defaultdict(float)
    for p in d["placements"]:
        if p["tier"] == "owned":
            used[(p["site"], p["offer"], p["slot"])] += p["gpus"]
    out = []
    for s in d["sites"]:
        for inv in s["inventory"]:
            if not inv["owned_gpus"]:
                continue
            peak = max((used.get((s["id"], inv["offer"], t["id"]), 0.0) for t in d["time_slots"]), default=0.0)
            idle = inv["owned_gpus"] - round(peak)
            if idle > 0:
                out.append({"site": s["id"], "offer": inv["offer"], "accelerator": inv["accelerator"],
                            "owned_gpus": inv["owned_gpus"], "unused_gpus": idle,
                            "sunk_usd_per_month": idle * inv["owned_usd_per_gpu_hour"] * hpm,
                            "power_budget_kw": s["power_budget_kw"]})
    return out


def unused_owned_warnings(d: dict) -> list[str]:
    slots = {t["id"]: t for t in d["time_slots"]}
    power = defaultdict(list)
    for b in d["binding"]:
        if b["family"] == "power budget":
            power[b["site"]].append(b["slot"])
    out = []
    for u in _unused_owned(d):
        head = (f"{u['site']}: {u['unused_gpus']} of {u['owned_gpus']} owned {u['accelerator']} GPUs hold no replica "
                f"in any slot")
        cost = f"their sunk cost of {u['sunk_usd_per_month']:,.0f} USD/month stays in the bill"
        if power.get(u["site"]):
            where = ", ".join(slot_label(slots[t]) for t in power[u["site"]] if t in slots)
            out.append(f"{head}: they cannot be used, the site's power budget of {u['power_budget_kw']:,.1f} kW "
                       f"leaves less than one more GPU's draw in {where}; {cost}. To fix: raise the site's "
                       f"power_budget_kw, or move or sell these GPUs")
        else:
            out.append(f"{head} (not needed by this plan); {cost}")
    return out


def bill_of_materials(d: dict) -> dict:
    """What to run, rent, reserve or buy: one row per (site, instance type, tier)."""
    slot_ids = [t["id"] for t in d["time_slots"]]
    hpm = d["policies"]["hours_per_month"]
    inv = _inventory(d)
    inst_meta: dict[tuple, dict] = {}
    counts: dict[tuple, dict] = defaultdict(dict)
    for i in d["instances"]:
        k = (i["site"], i["offer"], i["tier"])
        inst_meta[k] = i
        if i["slot"] is None:
            counts[k].update({t: i["count"] for t in slot_ids})
        else:
            counts[k][i["slot"]] = counts[k].get(i["slot"], 0) + i["count"]
    usd: dict[tuple, float] = defaultdict(float)
    price: dict[tuple, tuple] = {}
    for c in d["instance_costs"]:
        k = (c["site"], c["offer"], c["tier"])
        usd[k] += c["usd_per_month"]
        price[k] = (c["usd_per_instance_hour"], c["usd_per_gpu_month"])
    order = {t: n for n, t in enumerate(TIER_ORDER)}
    rows = []
    for k in sorted(inst_meta, key=lambda k: (k[0], order[k[2]], inst_meta[k]["instance_type"], k[1])):
        i = inst_meta[k]
        by_slot = {t: int(counts[k].get(t, 0)) for t in slot_ids}
        gpus_per_instance = i["gpus"] / i["count"] if i["count"] else 0.0
        per_hour, per_gpu_month = price.get(k, (None, None))
        sunk = 0.0
        if k[2] == "owned":
            o = inv.get((k[0], k[1]))
            per_gpu_month = None
            sunk = i["gpus"] * (o["owned_usd_per_gpu_hour"] * hpm if o else 0.0)
        rows.append({
            "site": k[0], "site_kind": i["site_kind"], "provider": i["provider"], "region": i["region"],
            "instance_type": i["instance_type"], "accelerator": i["accelerator"],
            "gpus_per_instance": gpus_per_instance, "tier": k[2], "tier_name": tier_name(k[2]),
            "baseline": k[2] in BASELINE_TIERS,
            "count": max(by_slot.values()) if k[2] in BASELINE_TIERS else None,
            "burst_min": None if k[2] in BASELINE_TIERS else min(by_slot.values()),
            "burst_max": None if k[2] in BASELINE_TIERS else max(by_slot.values()),
            "by_slot": by_slot,
            "usd_per_instance_hour": per_hour, "usd_per_gpu_month": per_gpu_month,
            "owned_usd_per_gpu_hour": inv[(k[0], k[1])]["owned_usd_per_gpu_hour"] if k[2] == "owned"
            and (k[0], k[1]) in inv else None,
            "decision_usd_per_month": usd.get(k, 0.0), "sunk_usd_per_month": sunk, "unused": False,
        })
    installed: dict[tuple, float] = defaultdict(float)
    for i in d["instances"]:
        if i["tier"] == "owned":
            installed[(i["site"], i["offer"])] += i["gpus"]
    for s in d["sites"]:
        for o in s["inventory"]:
            left = o["owned_gpus"] - round(installed.get((s["id"], o["offer"]), 0.0))
            if left <= 0:
                continue
            rows.append({
                "site": s["id"], "site_kind": s["kind"], "provider": s["provider"], "region": s["region"],
                "instance_type": f"{o['accelerator']} server GPU", "accelerator": o["accelerator"],
                "gpus_per_instance": 1.0, "tier": "owned", "tier_name": "owned, not installed", "baseline": True,
                "count": left, "burst_min": None, "burst_max": None, "by_slot": {t: 0 for t in slot_ids},
                "usd_per_instance_hour": None, "usd_per_gpu_month": None,
                "owned_usd_per_gpu_hour": o["owned_usd_per_gpu_hour"], "decision_usd_per_month": 0.0,
                "sunk_usd_per_month": left * o["owned_usd_per_gpu_hour"] * hpm, "unused": True,
            })
    rows.sort(key=lambda r: (r["site"], order[r["tier"]], r["unused"], r["instance_type"]))
    total = {"decision_usd_per_month": sum(r["decision_usd_per_month"] for r in rows),
             "sunk_usd_per_month": sum(r["sunk_usd_per_month"] for r in rows),
             "gpus_by_slot": {t: sum(r["by_slot"][t] * r["gpus_per_instance"] for r in rows) for t in slot_ids}}
    return {"rows": rows, "total": total}


def placement_by_slot(d: dict) -> list[dict]:
    """Serving and standby replicas per (workload, site, accelerator, tier) in every slot."""
    slot_ids = [t["id"] for t in d["time_slots"]]
    order = {t: n for n, t in enumerate(TIER_ORDER)}
    agg: dict[tuple, dict] = {}
    for p in d["placements"]:
        k = (p["workload"], p["site"], p["accelerator"], p["instance_type"], p["tier"])
        row = agg.setdefault(k, {"gpus_per_replica": p["gpus_per_replica"],
                                 "slots": {t: {"serving": 0.0, "standby": 0.0, "gpus": 0.0} for t in slot_ids}})
        cell = row["slots"][p["slot"]]
        cell["serving"] += p["replicas"] - p["standby_replicas"]
        cell["standby"] += p["standby_replicas"]
        cell["gpus"] += p["gpus"]
    wl_order = {w["id"]: n for n, w in enumerate(d["workloads"])}
    return [{"workload": k[0], "site": k[1], "accelerator": k[2], "instance_type": k[3], "tier": k[4],
             "tier_name": tier_name(k[4]), **v}
            for k, v in sorted(agg.items(), key=lambda kv: (wl_order.get(kv[0][0], 99), kv[0][1], order[kv[0][4]],
                                                            kv[0][2], kv[0][3]))]


def standby_table(d: dict) -> dict:
    slot_ids = [t["id"] for t in d["time_slots"]]
    nplus1 = [w["id"] for w in d["workloads"] if w["redundancy"]["mode"] == "n_plus_1"]
    order = {t: n for n, t in enumerate(TIER_ORDER)}
    agg: dict[tuple, dict] = {}
    for p in d["placements"]:
        if p["standby_replicas"] <= 0:
            continue
        k = (p["workload"], p["site"], p["accelerator"], p["tier"])
        row = agg.setdefault(k, {"slots": {t: 0.0 for t in slot_ids}, "usd_per_month": 0.0, "gpus_per_replica":
                                 p["gpus_per_replica"]})
        row["slots"][p["slot"]] += p["standby_replicas"]
        row["usd_per_month"] += p["standby_usd_per_month"]
    wl_order = {w["id"]: n for n, w in enumerate(d["workloads"])}
    rows = [{"workload": k[0], "purpose": "N+1 standby" if k[0] in nplus1 else "spare", "site": k[1],
             "accelerator": k[2], "tier": k[3], "tier_name": tier_name(k[3]), **v}
            for k, v in sorted(agg.items(), key=lambda kv: (wl_order.get(kv[0][0], 99), kv[0][1], order[kv[0][3]],
                                                            kv[0][2]))]
    n1 = float(sum(r["usd_per_month"] for r in rows if r["purpose"] == "N+1 standby"))
    spare = float(sum(r["usd_per_month"] for r in rows if r["purpose"] == "spare"))
    return {"rows": rows, "n_plus_1_workloads": nplus1, "n_plus_1_usd_per_month": n1,
            "spare_usd_per_month": spare, "total_usd_per_month": n1 + spare}


def _serving_gpus(d: dict) -> dict[tuple, list[float]]:
    out: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for p in d["placements"]:
        a = out[(p["site"], p["slot"])]
        a[0] += (p["replicas"] - p["standby_replicas"]) * p["gpus_per_replica"]
        a[1] += p["standby_replicas"] * p["gpus_per_replica"]
    return out


def capacity_by_site(d: dict) -> list[dict]:
    """GPUs held per site and slot: baseline (owned, bought, reserved) and burst (on-demand, spot)."""
    slot_ids = [t["id"] for t in d["time_slots"]]
    by: dict[str, dict] = {}
    kind = {s["id"]: s["kind"] for s in d["sites"]}
    for u in d["utilisation"]:
        row = by.setdefault(u["site"], {t: {"baseline_gpus": 0.0, "burst_gpus": 0.0} for t in slot_ids})
        row[u["slot"]] = {"baseline_gpus": u["gpus_baseline"], "burst_gpus": u["gpus_burst"]}
    return [{"site": s, "site_kind": kind.get(s, ""), "slots": v} for s, v in sorted(by.items())]


def utilisation_by_site(d: dict) -> list[dict]:
    """Per site and slot: GPUs held, serving, standby, idle; utilisation = serving / held."""
    slot_ids = [t["id"] for t in d["time_slots"]]
    serving = _serving_gpus(d)
    by: dict[str, dict] = {}
    meta: dict[str, dict] = {}
    for u in d["utilisation"]:
        held = u["gpus_installed"]
        srv, stb = serving.get((u["site"], u["slot"]), [0.0, 0.0])
        row = by.setdefault(u["site"], {t: None for t in slot_ids})
        row[u["slot"]] = {"held_gpus": held, "serving_gpus": srv, "standby_gpus": stb,
                          "idle_gpus": max(0.0, held - srv - stb), "utilisation": srv / held if held else 0.0,
                          "kw": u["kw"], "power_budget_kw": u["power_budget_kw"]}
        meta[u["site"]] = {"site_kind": u["site_kind"], "provider": u["provider"]}
    return [{"site": s, **meta[s], "slots": v} for s, v in sorted(by.items())]


def cost_by_site(d: dict) -> dict:
    """Decision cost per site by kind, and sunk cost apart; totals equal the headline's."""
    sites = {s["id"]: s for s in d["sites"]}
    by: dict[str, dict] = defaultdict(lambda: defaultdict(float))
    for c in d["costs"]:
        by[c["site"]][c["kind"]] += c["usd_per_month"]
    kinds = [k for k in DECISION_KINDS if any(by[s].get(k) for s in by)]
    rows = []
    for sid in sorted(by):
        k = by[sid]
        decision = sum(v for kk, v in k.items() if kk != "owned_sunk")
        rows.append({"site": sid, "site_kind": sites[sid]["kind"], "provider": sites[sid]["provider"],
                     "by_kind": {kk: k.get(kk, 0.0) for kk in kinds}, "decision_usd_per_month": decision,
                     "sunk_usd_per_month": k.get("owned_sunk", 0.0),
                     "total_usd_per_month": decision + k.get("owned_sunk", 0.0)})
    total = {"by_kind": {kk: sum(r["by_kind"][kk] for r in rows) for kk in kinds},
             "decision_usd_per_month": sum(r["decision_usd_per_month"] for r in rows),
             "sunk_usd_per_month": sum(r["sunk_usd_per_month"] for r in rows),
             "total_usd_per_month": sum(r["total_usd_per_month"] for r in rows)}
    return {"kinds": kinds, "kind_names": {k: KIND_NAMES[k] for k in kinds}, "rows": rows, "total": total}


def cost_by_site_tier(d: dict) -> list[dict]:
    """Decision cost per site and part: instance and GPU costs by tier, the rest by kind."""
    agg: dict[tuple, float] = defaultdict(float)
    for c in d["costs"]:
        if c["kind"] == "owned_sunk":
            continue
        part = tier_name(c["tier"]) if c["kind"] in ("compute", "capex") and c["tier"] else KIND_NAMES[c["kind"]]
        agg[(c["site"], part)] += c["usd_per_month"]
    return [{"site": s, "part": p, "usd_per_month": v} for (s, p), v in sorted(agg.items())]


def class_unit_costs(d: dict) -> list[dict]:
    kinds = {w["id"]: w["kind"] for w in d["workloads"]}
    tokens: dict[tuple, float] = defaultdict(float)
    for ld in d["loads"]:
        if ld["source_workload"] is None and ld["tokens_per_month"] is not None:
            tokens[(ld["workload"], ld["class"])] += ld["tokens_per_month"]
    rows = []
    for u in d["unit_costs"]:
        if u["class"] == "*":
            continue
        batch = kinds.get(u["workload"]) in BATCH_KINDS
        tok = tokens.get((u["workload"], u["class"]), 0.0)
        rows.append({"workload": u["workload"], "class": u["class"], "requests_per_month": u["requests_per_month"],
                     "usd_per_month": u["usd_per_month"], "unit": "1M tokens" if batch else "1k requests",
                     "usd_per_unit": (u["usd_per_month"] / tok * 1e6 if tok else None) if batch
                     else u["usd_per_1k_requests"],
                     "usd_per_successful_outcome": u["usd_per_successful_outcome"]})
    return rows


def traffic(d: dict) -> list[dict]:
    """Mean requests/s (over the month) from each user region to each site, with the RTT."""
    H = {t["id"]: t["hours_per_month"] for t in d["time_slots"]}
    hpm = sum(H.values()) or 1.0
    agg: dict[tuple, dict] = {}
    for r in d["routes"]:
        k = (r["user_region"], r["site"])
        a = agg.setdefault(k, {"mean_rps": 0.0, "rtt_ms": r["rtt_ms"], "rtt_source": r["rtt_source"],
                               "workloads": set()})
        a["mean_rps"] += r["mean_rps"] * H[r["slot"]] / hpm
        if r["share"] > 0:
            a["workloads"].add(r["workload"])
    region_total: dict[str, float] = defaultdict(float)
    for (u, _s), a in agg.items():
        region_total[u] += a["mean_rps"]
    rows = []
    for (u, s), a in sorted(agg.items()):
        if a["mean_rps"] <= 0:
            continue
        rows.append({"user_region": u, "site": s, "mean_rps": a["mean_rps"],
                     "share_of_region": a["mean_rps"] / region_total[u] if region_total[u] else 0.0,
                     "rtt_ms": a["rtt_ms"], "rtt_source": a["rtt_source"], "workloads": sorted(a["workloads"])})
    return rows


def binding_sentences(d: dict) -> list[dict]:
    """Each binding constraint in the architect's words, with units."""
    slots = {t["id"]: slot_label(t) for t in d["time_slots"]}
    out = []
    for b in d["binding"]:
        f, a, lim = b["family"], b["activity"], b["limit"]
        where = slots.get(b["slot"], b["slot"])
        if f == "power budget":
            text = (f"power budget at {b['site']}, {where}: {a:,.1f} of {lim:,.1f} kW drawn; less than one more "
                    f"GPU's draw is left")
        elif f == "cloud quota":
            text = f"cloud quota at {b['site']} for {b['accelerator']}, {where}: {a:,.0f} of {lim:,.0f} GPUs held"
        elif f == "inventory":
            text = (f"all {lim:,.0f} {b['tier']} {b['accelerator']} GPUs at {b['site']} hold replicas "
                    f"(first in {where})")
        elif f == "spot share cap":
            text = (f"spot share of {b['workload']}, {where}: {a:.1%} of its capacity on spot, cap "
                    f"{lim:.0%} (policies.spot.max_share)")
        elif f == "minimum sites":
            text = f"{b['workload']} runs on {a:,.0f} sites, the minimum its redundancy asks for ({lim:,.0f})"
        else:  # pragma: no cover - FAMILIES is closed
            text = f"{f}: {a:,.4g} of {lim:,.4g} {b['unit']}"
        out.append({"family": f, "text": text})
    return out


def failover_summary(d: dict) -> dict:
    needs = [w["id"] for w in d["workloads"] if w["redundancy"]["mode"] == "n_plus_1"]
    if not needs:
        return {"checked": False, "text": "no workload asks for N+1", "unserved": []}
    if d.get("verification") is None:
        return {"checked": False, "text": "not checked: this result has not been verified", "unserved": []}
    bad = [f for f in d.get("failover", []) if f["unserved_rps"] > 0]
    if not bad:
        return {"checked": True, "unserved": [],
                "text": f"N+1 checked for {', '.join(needs)}: losing any one site leaves every user region's "
                        "every class served within the SLO"}
    return {"checked": True, "unserved": bad,
            "text": f"losing a site leaves demand unserved in {len(bad)} (workload, site, slot, region, class) cases"}


def solver_notes(d: dict) -> list[str]:
    """The solver's notes, phrased as progress: a start's cost is where the search began, not an
    option."""
    final = d["summary"].get("total_usd_per_month")
    out = []
    for n in d["solve"].get("notes", []):
        m = _START_NOTE.match(n)
        if m is None:
            out.append(n)
            continue
        usd = float(m.group("usd").replace(",", ""))
        label = m.group("label")
        if final is None:
            out.append(f"solver progress: the search started from a {label} plan at {usd:,.0f} USD/month")
        elif abs(usd - final) <= 0.005:
            out.append(f"solver progress: the {label} starting plan ({usd:,.0f} USD/month) is the plan above")
        else:
            out.append(f"solver progress: the search started from a {label} plan at {usd:,.0f} USD/month and "
                       f"improved it to the plan above ({final:,.0f} USD/month)")
    return out
