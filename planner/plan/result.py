"""PlacementResult: the versioned result of a solve (result.json 1.1) and its DataFrames.

Compute once, render many: the report, manifests, compare and verify read result.json, never
the MILP. :func:`build_result` reads a :class:`~planner.plan.plan.Plan` (decision tables and the
solve record) and the scenario's candidate set; it imports neither the model nor a solver.

- Deterministic: the same scenario, plan tables and solve record give the same bytes (tables are
  canonicalised first, rows sorted, keys sorted).
- Numbers are not rounded (full floats); reports round for people.
- A result without a plan (status ``infeasible`` or ``no_plan``) is still a valid result: the
  plan tables are empty, the plan's summary numbers null, the solve record (reasons, notes) kept.
- ``failover`` and ``verification`` are filled by the library after verification; here they
  are ``[]`` and ``null``.

Busy and standby replicas (``placements``)
------------------------------------------
busy replica-time of (workload, site, offer, slot) = sum_k serving rps_k / rho_k (rho: the
candidate's per-replica rate of class k, the one normal serving uses). It is assigned to the
rows of that (workload, site, offer, slot) in the order spot, owned, bought, reserved, on_demand:
spot first because spot never counts as standby (the N+1 promise uses non-spot capacity only),
so spot replicas placed in a slot are there to serve; a spot replica gives ``policies.spot.
derating`` replica-time, any other one 1. Then sunk and baseline capacity before on-demand, so
that the standby left is the capacity paid for failover alone. ``busy_replicas`` of a row =
replica-time assigned / (derating for spot, else 1), at most the row's replicas;
``standby_replicas`` = max(0, replicas - ceil(busy_replicas)) (ceil within planner.tolerance);
``standby_usd_per_month`` = standby replicas x GPUs per replica x the row's GPU cost per hour
(:func:`planner.plan.costing.gpu_usd_per_hour`: reserved, on_demand, spot = instance price /
GPUs per instance; bought = annuity per GPU-month / hours_per_month; owned = 0, sunk) x the slot's
hours per month.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from planner import __version__, jsontext
from planner.derive.candidates import BASELINE_TIERS, BURST_TIERS, Candidate, CandidateSet
from planner.derive.power import CLOUD_PUE
from planner.input.schema import PRICING_MODELS, PROVIDERS, WORKLOAD_KINDS
from planner.plan.binding import FAMILIES, UNITS, binding_constraints
from planner.plan.costing import (
    cloud_power_kw,
    cost_lines,
    decision_cost,
    gpu_usd_per_hour,
    instance_cost_rows,
    offer_index,
    site_power_kw,
    slot_month_hours,
)
from planner.plan.exclusion_rows import ExclusionRows
from planner.plan.plan import STATUS_EXIT, Plan, SolveRecord, plan_from_result
from planner.plan.region_limits import region_gpu_warnings
from planner.tolerance import TOL, ceil_tol

SCHEMA_VERSION = "1.1"
#: tables of rows (each one CSV in write_outputs)
TABLES = ("placements", "instances", "instance_costs", "serving", "routes", "loads", "candidates", "utilisation",
          "costs", "unit_costs", "attribution", "binding", "failover")
TIERS = BASELINE_TIERS + BURST_TIERS
#: order in which busy replica-time fills the tiers of a (workload, site, offer, slot)
BUSY_ORDER = ("spot", "owned", "bought", "reserved", "on_demand")
#: pruning rules of planner.derive.candidates (the reason's text before the first colon)
EXCLUSION_RULES = ("residency", "latency", "hardware", "pricing", "dominated")
#: the rule of a site a variant's ``only`` patch keeps from compute (counted only when it applies)
ONLY_RULE = "only"
COST_KINDS = ("compute", "capex", "owned_sunk", "electricity", "fixed", "egress_response", "egress_data")
EXCLUSION_COLUMNS = ("workload", "user_region", "site", "offer", "rule", "reason")


@dataclass
class PlacementResult:
    """result.json as ``data``; ``exclusions`` (every pruned pair, as dicts workload,
    user_region, site, offer, rule, reason) travels beside it and is not part of the JSON."""

    data: dict
    exclusions: list[dict] = field(default_factory=list, repr=False, compare=False)

    @property
    def status(self) -> str:
        return self.data["solve"]["status"]

    def table(self, name: str) -> pd.DataFrame:
        return pd.DataFrame(self.data.get(name, []))

    def plan(self) -> Plan:
        """The Plan inside this result (decision tables and solve record)."""
        return plan_from_result(self.data)

    def to_json(self) -> str:
        return jsontext.dumps(self.data) + "\n"  # = json.dumps(indent=2, sort_keys=True, allow_nan=False)

    @classmethod
    def read(cls, path: Path) -> PlacementResult:
        data = json.loads(Path(path).read_text())
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != SCHEMA_VERSION:
            raise ValueError(f"result.json schema {version!r} is not {SCHEMA_VERSION}; re-solve the scenario with "
                             f"this planner to get a {SCHEMA_VERSION} result")
        return cls(data)


def _none(x: str | None) -> str | None:
    return x if x else None


def _source(lc) -> tuple[str | None, str | None]:
    """(source_workload, source_class) of a load class: None, None for a workload's own class."""
    return (lc.origin, lc.qclass.id) if lc.escalated else (None, None)


def busy_and_standby(cs: CandidateSet, plan: Plan) -> tuple[dict[tuple, float], list[str]]:
    """busy_replicas per replica row key (workload, site, offer, tier, slot), by the rule in the
    module docstring, and warnings for serving the candidate set cannot rate."""
    cand = cs.by_key()
    d = cs.res.scenario.policies.spot.derating
    warnings: list[str] = []
    need: dict[tuple, float] = defaultdict(float)
    for sv in plan.serving:
        c = cand.get((sv["workload"], sv["site"], sv["offer"]))
        est = c.rps.get(sv["class"]) if c is not None else None
        if est is None or est.rps <= 0:
            if sv["rps"] > 0:
                warnings.append(f"serving: {sv['workload']} class {sv['class']} on {sv['offer']} at {sv['site']} "
                                "has no candidate rate; its busy replicas are not counted")
            continue
        need[(sv["workload"], sv["site"], sv["offer"], sv["slot"])] += sv["rps"] / est.rps
    rows: dict[tuple, dict[str, float]] = defaultdict(dict)
    for r in plan.replicas:
        rows[(r["workload"], r["site"], r["offer"], r["slot"])][r["tier"]] = r["replicas"]
    busy: dict[tuple, float] = {}
    for (w, sid, oid, t), by_tier in rows.items():
        left = need.get((w, sid, oid, t), 0.0)
        for tier in BUSY_ORDER:
            if tier not in by_tier:
                continue
            per = d if tier == "spot" else 1.0
            take = min(by_tier[tier], left / per) if per > 0 and left > 0 else 0.0
            left -= take * per
            busy[(w, sid, oid, tier, t)] = take
    return busy, sorted(set(warnings))


def build_result(cs: CandidateSet, plan: Plan) -> PlacementResult:
    """result.json 1.1 of ``plan`` (its tables and its solve record) for the scenario of ``cs``."""
    res = cs.res
    s = res.scenario
    pol = s.policies
    hpm = pol.hours_per_month
    loads = cs.loads
    offers = offer_index(res)
    H = slot_month_hours(res)
    rec = plan.solve if plan.solve is not None else SolveRecord(status="feasible")
    has_plan = plan.has_plan
    plan = plan.canonical() if has_plan else Plan(solve=rec)
    wk = {w.id: w for w in s.workloads}
    cand = cs.by_key()
    variant = res.loaded.variant
    warnings = set(res.warnings)

    # ---------------------------------------------------------------- placements
    busy, busy_warn = busy_and_standby(cs, plan)
    warnings |= set(busy_warn)
    placements = []
    for r in plan.replicas:
        o = offers[(r["site"], r["offer"])]
        site = res.sites[r["site"]]
        w = wk[r["workload"]]
        c = cand.get((r["workload"], r["site"], r["offer"]))
        gpr = c.shape.gpus if c is not None else (r["gpus"] / r["replicas"] if r["replicas"] else 0.0)
        b = busy.get((r["workload"], r["site"], r["offer"], r["tier"], r["slot"]), 0.0)
        standby = float(max(0.0, r["replicas"] - ceil_tol(b)))
        placements.append({
            **r, "provider": site.provider, "region": site.region, "site_kind": site.kind,
            "instance_type": o.instance_type, "accelerator": o.accelerator, "gpus_per_replica": float(gpr),
            "busy_replicas": float(b), "standby_replicas": standby,
            "standby_usd_per_month": standby * gpr * gpu_usd_per_hour(o, r["tier"], hpm) * H[r["slot"]],
            "tags": {"workload": w.id, "tenant": w.tenant, "feature": w.feature, "scenario": s.name,
                     "variant": variant or "base"},
        })
    instances = []
    for i in plan.instances:
        o = offers[(i["site"], i["offer"])]
        site = res.sites[i["site"]]
        instances.append({**i, "provider": site.provider, "region": site.region, "site_kind": site.kind,
                          "instance_type": o.instance_type, "accelerator": o.accelerator,
                          "gpus": float(i["count"] * o.gpus)})
    instance_costs = instance_cost_rows(res, plan)
    classes = {(w.id, lc.key): lc for w in s.workloads for lc in loads[w.id].classes}
    serving = []
    for sv in plan.serving:
        lc = classes.get((sv["workload"], sv["class"]))
        src_w, src_k = _source(lc) if lc is not None else (None, None)
        serving.append({**sv, "source_workload": src_w, "source_class": src_k})

    # ---------------------------------------------------------------- loads and routes
    load_rows = _loads(cs, H)
    by_wut: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0])  # (w, u, t) -> peak, mean of all classes
    for w in s.workloads:
        wl = loads[w.id]
        for (k, u, t), peak in sorted(wl.peak_rps.items()):
            by_wut[(w.id, u, t)][0] += peak
            by_wut[(w.id, u, t)][1] += wl.mean_rps.get((k, u, t), 0.0)
    routes = []
    for r in plan.routes:
        link = cs.rtt[(r["user_region"], r["site"])]
        peak, mean = by_wut.get((r["workload"], r["user_region"], r["slot"]), (0.0, 0.0))
        routes.append({**r, "peak_rps": r["share"] * peak, "mean_rps": r["share"] * mean,
                       "rtt_ms": link.rtt_ms, "rtt_source": link.rtt_source})

    # ---------------------------------------------------------------- utilisation per site and slot
    util = _utilisation(res, plan, offers, H) if has_plan else []

    # ---------------------------------------------------------------- costs
    lines = cost_lines(res, loads, plan) if has_plan else []
    total = decision_cost(lines)
    sunk = sum(ln["usd_per_month"] for ln in lines if ln["kind"] == "owned_sunk")
    slot_order = {t.id: i for i, t in enumerate(s.time_slots)}
    costs = sorted(({**ln, "workload": _none(ln["workload"]), "tier": _none(ln["tier"]), "item": _none(ln["item"])}
                    for ln in lines),
                   key=lambda d: (d["site"], d["workload"] or "", d["kind"], d["tier"] or "", d["item"] or "",
                                  slot_order.get(d["slot"], -1)))
    unit, attribution = _unit_costs(cs, plan, lines, H) if has_plan else ([], [])

    # ---------------------------------------------------------------- summary
    reqs_total = sum(sum(loads[w.id].requests_per_month.values()) for w in s.workloads)
    if has_plan:
        summary = {
            "total_usd_per_month": total, "owned_sunk_usd_per_month": sunk,
            "total_with_sunk_usd_per_month": total + sunk, "requests_per_month": reqs_total,
            "usd_per_1k_requests": total / reqs_total * 1000 if reqs_total else None,
            "kg_co2e_per_month": sum(u["kg_co2e_per_month"] for u in util),
            "standby_usd_per_month": sum(p["standby_usd_per_month"] for p in placements),
        }
        routed = {r["site"] for r in plan.routes}
        warnings |= {f"{sid}: internet egress price from policy default" for sid, site in res.sites.items()
                     if site.internet_egress_is_default and sid in routed}
        warnings |= set(region_gpu_warnings(res, plan, offers))
    else:
        summary = {"total_usd_per_month": None, "owned_sunk_usd_per_month": None,
                   "total_with_sunk_usd_per_month": None, "requests_per_month": reqs_total,
                   "usd_per_1k_requests": None, "kg_co2e_per_month": None, "standby_usd_per_month": None}

    counts = cs.reason_counts()
    data = {
        "schema_version": SCHEMA_VERSION,
        "planner_version": __version__,
        "scenario": _scenario_block(res),
        "catalog": {"version": res.catalog.version},
        "plan_hash": plan.plan_hash(),
        "solve": rec.to_dict(),
        "policies": _policies(res),
        "time_slots": [{"id": t.id, "start_hour": t.start_hour, "end_hour": t.end_hour,
                        "hours_per_month": H[t.id]} for t in s.time_slots],
        "sites": _sites(res),
        "workloads": _workloads(res),
        "open_sites": list(plan.open_sites),
        "summary": summary,
        "placements": placements,
        "instances": instances,
        "instance_costs": instance_costs,
        "serving": serving,
        "routes": routes,
        "loads": load_rows,
        "candidates": _candidates(cs),
        "utilisation": util,
        "costs": costs,
        "unit_costs": unit,
        "attribution": attribution,
        "exclusions": {"total": len(cs.exclusions), "candidate_triples": len(cs.triples),
                       "by_rule": {**{r: 0 for r in EXCLUSION_RULES}, **dict(sorted(counts.items()))}},
        "binding": binding_constraints(cs, plan) if has_plan else [],
        "failover": [],
        "verification": None,
        "warnings": sorted(warnings),
    }
    if hasattr(cs.exclusions, "columns"):
        excl = ExclusionRows(cs.exclusions)  # rows made on demand (millions at scale)
    else:
        excl = [{"workload": e.workload, "user_region": _none(e.user_region), "site": e.site,
                 "offer": _none(e.offer), "rule": e.reason.split(":", 1)[0], "reason": e.reason}
                for e in cs.exclusions]
    return PlacementResult(data, exclusions=excl)


# ====================================================================== blocks
def _scenario_block(res) -> dict:
    s = res.scenario
    variant = res.loaded.variant
    spec = s.variants.get(variant) if variant is not None else None
    return {"path": str(res.loaded.path), "content_hash": res.loaded.content_hash, "name": s.name,
            "description": s.description, "variant": variant,
            "variant_description": spec.description if spec is not None else None,
            "lost_sites": sorted(s.lost_sites)}


def _policies(res) -> dict:
    pol = res.scenario.policies
    providers = sorted({site.provider for site in res.sites.values() if not site.declared})
    reserved = "reserved" in pol.pricing_models
    return {
        "hours_per_month": pol.hours_per_month,
        "pricing_models": list(pol.pricing_models),
        "reserved_term": pol.reserved_term,
        "reserved_discount_by_provider": {p: (pol.reserved_discount.get(p, {}).get(pol.reserved_term)
                                              if reserved else None) for p in providers},
        "spot": {"derating": pol.spot.derating, "max_share": pol.spot.max_share},
        "target_utilisation": pol.target_utilisation,
        "kv_reserve_fraction": pol.kv_reserve_fraction,
        "carbon_usd_per_tonne": pol.carbon_usd_per_tonne,
        "latency_usd_per_ms_per_rps": pol.latency_usd_per_ms_per_rps,
        "bytes_per_output_token": pol.bytes_per_output_token,
        "response_overhead_bytes": pol.response_overhead_bytes,
        "egress": {
            "internet_usd_per_gb": dict(sorted(pol.egress.internet_usd_per_gb.items())),
            "inter_region_same_continent_usd_per_gb": pol.egress.inter_region_same_continent_usd_per_gb,
            "inter_region_other_continent_usd_per_gb": pol.egress.inter_region_other_continent_usd_per_gb,
            "inter_provider_usd_per_gb": pol.egress.inter_provider_usd_per_gb,
            "onprem_internet_usd_per_gb": pol.egress.onprem_internet_usd_per_gb,
        },
        "price_multipliers": [{"provider": m.provider, "accelerator": m.accelerator, "pricing": m.pricing,
                               "factor": m.factor} for m in res.scenario.price_multipliers],
    }


def _sites(res) -> list[dict]:
    out = []
    for sid, site in sorted(res.sites.items()):
        p = site.point
        out.append({
            "id": sid, "kind": site.kind, "provider": site.provider, "region": site.region,
            "country": p.country, "jurisdiction": p.jurisdiction,
            "gpus_per_server": site.gpus_per_server if site.declared else None,
            "pue": site.pue if site.declared else CLOUD_PUE,
            "power_budget_kw": site.power_budget_kw,
            "idle_power_fraction": site.idle_power_fraction if site.declared else None,
            "electricity_usd_per_kwh": site.electricity_usd_per_kwh if site.declared else None,
            "fixed_usd_per_month": site.fixed_usd_per_month,
            "grid_gco2e_per_kwh": site.grid_gco2e_per_kwh,
            "internet_egress_usd_per_gb": site.internet_egress_usd_per_gb,
            "inventory": [{"accelerator": o.accelerator, "offer": o.id, "owned_gpus": o.owned,
                           "owned_usd_per_gpu_hour": o.owned_usd_per_gpu_hour, "buyable_gpus": o.buyable,
                           "buy_usd_per_gpu_month": o.buy_usd_per_gpu_month}
                          for o in site.offers] if site.declared else [],
            "quota": [{"accelerator": a, "gpus": n} for a, n in sorted(site.quota_gpus.items())],
        })
    return out


def _workloads(res) -> list[dict]:
    out = []
    for w in res.scenario.workloads:
        out.append({
            "id": w.id, "kind": w.kind, "model": w.model, "tenant": w.tenant, "feature": w.feature,
            "residency": w.residency if isinstance(w.residency, str) else list(w.residency),
            "redundancy": {"mode": w.redundancy.mode, "min_sites": w.redundancy.min_sites,
                           "failover_network_rtt_ms": w.redundancy.failover_network_rtt_ms},
            "slo": {"network_rtt_ms": w.latency.network_rtt_ms, "ttft_ms": w.latency.ttft_ms,
                    "tpot_ms": w.latency.tpot_ms},
            "escalation": ({"escalate_to": w.routing.escalate_to, "escalation_share": w.routing.escalation_share}
                           if w.routing is not None else None),
            "batch": ({"tokens_per_day": w.batch.tokens_per_day, "window_utc_hours": list(w.batch.window_utc_hours)}
                      if w.batch is not None else None),
            "cache_hit_rate": w.cache_hit_rate, "prefix_cache_rate": w.prefix_cache_rate,
            "success_rate": w.success_rate,
            "query_classes": [{"id": q.id, "share": q.share, "input_tokens": q.input_tokens,
                               "output_tokens": q.output_tokens} for q in w.query_classes],
        })
    return out


def _loads(cs: CandidateSet, H: dict[str, float]) -> list[dict]:
    """Load rows: per workload and load class, per user region and slot (batch: one row per class,
    user_region and slot null). Rates are GPU-bound (after response-cache hits)."""
    s = cs.res.scenario
    days = s.policies.hours_per_month / 24.0
    slot_order = {t.id: i for i, t in enumerate(s.time_slots)}
    rows = []
    for w in s.workloads:
        wl = cs.loads[w.id]
        for lc in wl.classes:
            src_w, src_k = _source(lc)
            base = {"workload": w.id, "class": lc.qclass.id, "source_workload": src_w, "source_class": src_k}
            if w.is_batch:
                per_day = wl.batch_requests_per_day[lc.key]
                rows.append({**base, "user_region": None, "slot": None, "peak_rps": None,
                             "mean_rps": per_day / 86400.0, "requests_per_month": per_day * days,
                             "tokens_per_month": per_day * days * lc.qclass.input_tokens})
                continue
            keys = sorted(((u, t) for (k, u, t) in wl.peak_rps if k == lc.key),
                          key=lambda ut: (ut[0], slot_order.get(ut[1], -1)))
            for u, t in keys:
                mean = wl.mean_rps.get((lc.key, u, t), 0.0)
                reqs = (wl.requests_per_month.get((lc.key, u, t), 0.0) if not lc.escalated
                        else mean * 3600.0 * H[t])
                rows.append({**base, "user_region": u, "slot": t, "peak_rps": wl.peak_rps[(lc.key, u, t)],
                             "mean_rps": mean, "requests_per_month": reqs, "tokens_per_month": None})
    return rows


def _unit_prices(c: Candidate) -> list[dict]:
    o = c.offer
    out = []
    for tier in c.tiers:
        if tier in ("owned", "bought"):
            out.append({"tier": tier, "usd_per_instance_hour": None,
                        "usd_per_gpu_month": 0.0 if tier == "owned" else o.buy_usd_per_gpu_month})
        else:
            price = {"reserved": o.reserved_usd_hr, "on_demand": o.ondemand_usd_hr, "spot": o.spot_usd_hr}[tier]
            out.append({"tier": tier, "usd_per_instance_hour": price, "usd_per_gpu_month": None})
    return out


def _candidates(cs: CandidateSet) -> list[dict]:
    """One row per candidate triple. Candidates alike share their ``classes``, ``unit_prices``,
    ``shape`` and ``tiers`` values (the same rates, offer and shape give the same rows), so the
    table costs a dict per triple, not a tree (read-only, like the rest of ``data``)."""
    util = cs.res.scenario.policies.target_utilisation
    class_meta = {w: [(lc.key, lc.qclass.id, *_source(lc)) for lc in wl.classes] for w, wl in cs.loads.items()}
    meta_ids: dict[tuple, int] = {}
    w_meta = {w: meta_ids.setdefault(tuple(m), len(meta_ids)) for w, m in class_meta.items()}
    classes_of: dict[tuple, list] = {}
    prices_of: dict[tuple, list] = {}
    shape_of: dict = {}
    tiers_of: dict[tuple, list] = {}
    rows = []
    for c in sorted(cs.triples, key=lambda c: c.key):
        ckey = (w_meta[c.workload], id(c.rps))
        classes = classes_of.get(ckey)
        if classes is None:
            classes = []
            for key, qid, src_w, src_k in class_meta[c.workload]:
                est = c.rps.get(key)
                if est is None:
                    continue
                classes.append({"class": qid, "source_workload": src_w, "source_class": src_k,
                                "planning_rps": est.rps, "max_rps": est.max_rps if est.rps > 0 else est.rps / util,
                                "rate_source": est.rate_source, "rate_limit": est.limit,
                                "regime": est.regime or None, "batch": est.batch, "notes": list(est.notes)})
            classes_of[ckey] = classes
        tiers = tuple(c.tiers)
        pkey = (id(c.offer), tiers)
        prices = prices_of.get(pkey)
        if prices is None:
            prices = prices_of[pkey] = _unit_prices(c)
        shape = shape_of.get(c.shape)
        if shape is None:
            shape = shape_of[c.shape] = {"tp": c.shape.tp, "gpus": c.shape.gpus,
                                         "replicas_per_instance": c.shape.replicas_per_instance}
        tier_list = tiers_of.get(tiers)
        if tier_list is None:
            tier_list = tiers_of[tiers] = list(tiers)
        rows.append({"workload": c.workload, "site": c.site, "offer": c.offer.id, "accelerator": c.offer.accelerator,
                     "instance_type": c.offer.instance_type, "tiers": tier_list, "shape": shape,
                     "gpus_per_replica": c.shape.gpus, "classes": classes, "unit_prices": prices})
    return rows


def _utilisation(res, plan: Plan, offers: dict, H: dict[str, float]) -> list[dict]:
    power = site_power_kw(res, plan, offers)
    cpower = cloud_power_kw(res, plan, offers)
    used_g: dict[tuple, float] = defaultdict(float)
    for r in plan.replicas:
        used_g[(r["site"], r["slot"])] += r["gpus"]
    inst_g: dict[tuple, float] = defaultdict(float)
    base_g: dict[tuple, float] = defaultdict(float)
    burst_g: dict[tuple, float] = defaultdict(float)
    for i in plan.instances:
        g = i["count"] * offers[(i["site"], i["offer"])].gpus
        for t in ([i["slot"]] if i["slot"] is not None else list(H)):
            inst_g[(i["site"], t)] += g
            (base_g if i["slot"] is None else burst_g)[(i["site"], t)] += g
    slot_order = {t: i for i, t in enumerate(H)}
    util = []
    for key in sorted(set(inst_g) | set(power), key=lambda k: (k[0], slot_order[k[1]])):
        sid, t = key
        site = res.sites[sid]
        kw = power.get(key, cpower.get(key, 0.0))
        installed = inst_g.get(key, 0.0)
        util.append({"site": sid, "provider": site.provider, "site_kind": site.kind, "slot": t,
                     "gpus_installed": installed, "gpus_baseline": base_g.get(key, 0.0),
                     "gpus_burst": burst_g.get(key, 0.0), "gpus_used": used_g.get(key, 0.0),
                     "utilisation": used_g.get(key, 0.0) / installed if installed else 0.0,
                     "kw": kw, "power_budget_kw": site.power_budget_kw,
                     "kg_co2e_per_month": kw * H[t] * (site.grid_gco2e_per_kwh or 0.0) / 1000.0})
    return util


def _unit_costs(cs: CandidateSet, plan: Plan, lines: list[dict], H: dict[str, float]) -> tuple[list, list]:
    """Cost per workload and query class, split by GPU-time of the classes, and by tenant/feature.

    The GPU time escalated requests use on a larger model is charged back to the class that
    escalated (key "origin~class"), so a small model's cost per request includes its escalations."""
    s = cs.res.scenario
    loads = cs.loads
    cand = cs.by_key()
    by_w_cost: dict[str, float] = defaultdict(float)
    for ln in lines:
        if ln["kind"] != "owned_sunk" and ln["workload"]:
            by_w_cost[ln["workload"]] += ln["usd_per_month"]
    gpu_time: dict[tuple, float] = defaultdict(float)
    for sv in plan.serving:
        c = cand.get((sv["workload"], sv["site"], sv["offer"]))
        est = c.rps.get(sv["class"]) if c is not None else None
        rho = est.rps if est is not None else 0.0
        gpu_time[(sv["workload"], sv["class"])] += (sv["rps"] / rho if rho else sv["rps"]) * H[sv["slot"]]
    class_cost: dict[tuple[str, str], float] = defaultdict(float)
    for w in s.workloads:
        wl = loads[w.id]
        gt_total = sum(gpu_time[(w.id, lc.key)] for lc in wl.classes)
        for lc in wl.classes:
            share = gpu_time[(w.id, lc.key)] / gt_total if gt_total else (0.0 if lc.escalated else lc.qclass.share)
            owner = (lc.origin, lc.qclass.id) if lc.escalated else (w.id, lc.key)
            class_cost[owner] += by_w_cost[w.id] * share
    unit = []
    for w in s.workloads:
        wl = loads[w.id]
        reqs_w = cost_w = 0.0
        for q in w.query_classes:
            reqs = sum(n for (k, _u, _t), n in wl.requests_per_month.items() if k == q.id)
            cost = class_cost[(w.id, q.id)]
            reqs_w += reqs
            cost_w += cost
            unit.append(_unit_row(w, q.id, reqs, cost))
        unit.append(_unit_row(w, "*", reqs_w, cost_w))
    wk = {w.id: w for w in s.workloads}
    agg: dict[tuple, float] = defaultdict(float)
    for ln in lines:
        if ln["kind"] == "owned_sunk":
            continue
        w = wk.get(ln["workload"])
        agg[(w.tenant if w else "(unattributed)", w.feature if w else "(unattributed)")] += ln["usd_per_month"]
    attribution = [{"tenant": tenant, "feature": feature, "usd_per_month": usd}
                   for (tenant, feature), usd in sorted(agg.items())]
    return unit, attribution


def _unit_row(w, cls: str, reqs: float, cost: float) -> dict:
    return {"workload": w.id, "class": cls, "requests_per_month": reqs, "usd_per_month": cost,
            "usd_per_1k_requests": cost / reqs * 1000 if reqs else None,
            "usd_per_successful_outcome": cost / (reqs * w.success_rate) if reqs and w.success_rate else None}


# ====================================================================== files
def write_atomic(path: Path, text: str) -> None:
    """:func:`write_atomic_stream` of a text."""
    write_atomic_stream(path, lambda fh: fh.write(text))


def write_atomic_json(path: Path, obj: Any) -> None:
    """:func:`write_atomic` of ``json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) +
    "\\n"``, streamed to the file in chunks (the same bytes; no whole-document string)."""
    write_atomic_stream(path, lambda fh: jsontext.write_json(fh, obj))


def write_atomic_stream(path: Path, write) -> None:
    """Write a file with ``write(fh)`` (an open text file) via a temp file and rename, so a reader
    never sees half of it; a large table is written row by row, never held as one string. The
    file gets the mode a plain open() would give it (0666 minus the umask), not mkstemp's 0600."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask (read without changing it where Linux exposes it, else set and restored)."""
    import os

    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_number(x):
    """A CSV number: no e-notation, no ``.0`` on whole numbers, full precision otherwise."""
    if isinstance(x, bool) or not isinstance(x, float):
        return x
    if not math.isfinite(x):
        return x
    if x == int(x) and abs(x) < 1e15:
        return int(x)
    return np.format_float_positional(x, trim="-")


def _flat_names(row: dict, prefix: str, names: dict) -> None:
    for k, v in row.items():
        if isinstance(v, dict):
            _flat_names(v, "tag_" if k == "tags" and not prefix else f"{prefix}{k}_", names)
        else:
            names[f"{prefix}{k}"] = None


def _json_whole(v):
    """A value inside a list cell (written as JSON text): whole floats as integers."""
    if isinstance(v, dict):
        return {k: _json_whole(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_whole(x) for x in v]
    return int(v) if isinstance(v, float) and math.isfinite(v) and v == int(v) else v


def _flat_cells(row: dict, prefix: str, out: dict, memo: dict) -> None:
    for k, v in row.items():
        if isinstance(v, str):
            out[f"{prefix}{k}"] = v
        elif v is None:
            out[f"{prefix}{k}"] = ""
        elif isinstance(v, dict):
            _flat_cells(v, "tag_" if k == "tags" and not prefix else f"{prefix}{k}_", out, memo)
        elif isinstance(v, list):
            text = memo.get(id(v))
            if text is None:
                text = memo[id(v)] = json.dumps(_json_whole(v), sort_keys=True, allow_nan=False)
            out[f"{prefix}{k}"] = text
        elif isinstance(v, bool) or not isinstance(v, int | float):
            out[f"{prefix}{k}"] = str(v)
        else:
            out[f"{prefix}{k}"] = str(plain_number(v))


def write_table_csv(fh, rows: list[dict], columns: list[str] | tuple[str, ...] | None = None) -> None:
    """Write a result table as CSV to a text file, row by row: nested objects become prefixed
    columns (``tags`` -> ``tag_``), lists JSON text (whole floats as integers), numbers
    :func:`plain_number`, None and a key a row lacks empty; the header is ``columns`` first, then
    every other key in the order first met. No table-sized copy is made (5000x300: 803k
    candidate rows; through pandas, with three copies of them, write_outputs peaked at 5.5 GiB,
    now 2.0 GiB)."""
    names: dict[str, None] = dict.fromkeys(columns or ())
    for r in rows:
        _flat_names(r, "", names)
    cols = list(names)
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(cols)
    memo: dict[int, str] = {}  # id(list) -> its text: a list shared by rows (alive meanwhile) is encoded once
    for r in rows:
        cells: dict[str, str] = {}
        _flat_cells(r, "", cells, memo)
        w.writerow([cells.get(c, "") for c in cols])


def table_columns(name: str) -> list[str]:
    """CSV columns of a result table (from the schema), for a table with no rows."""
    def cols(props: dict, prefix: str) -> list[str]:
        out = []
        for k, spec in props.items():
            if spec.get("type") == "object" and "properties" in spec:
                out += cols(spec["properties"], "tag_" if k == "tags" and not prefix else f"{prefix}{k}_")
            else:
                out.append(f"{prefix}{k}")
        return out

    return cols(result_json_schema()["properties"][name]["items"]["properties"], "")


def table_csv(rows: list[dict], columns: tuple[str, ...] | list[str] | None = None) -> str:
    """CSV text of rows, as :func:`write_table_csv` writes them; ``columns`` fixes the header
    (needed when there are no rows)."""
    if hasattr(rows, "to_csv"):  # e.g. ExclusionRows: written from its columns
        return rows.to_csv(columns)
    buf = io.StringIO()
    write_table_csv(buf, rows, columns)
    return buf.getvalue()


# ====================================================================== JSON Schema
def result_json_schema() -> dict[str, Any]:
    """The exact JSON Schema (draft 2020-12) of result.json 1.1: every object and row lists its
    fields, all required (nullable ones say so), and no others."""
    num = {"type": "number"}
    num0 = {"type": "number", "minimum": 0}
    num_n = {"type": ["number", "null"]}
    num0_n = {"type": ["number", "null"], "minimum": 0}
    frac = {"type": "number", "minimum": 0, "maximum": 1}
    int0 = {"type": "integer", "minimum": 0}
    int0_n = {"type": ["integer", "null"], "minimum": 0}
    text = {"type": "string"}
    text_n = {"type": ["string", "null"]}
    boolean = {"type": "boolean"}
    strings = {"type": "array", "items": text}

    def obj(**props) -> dict:
        return {"type": "object", "additionalProperties": False, "required": sorted(props), "properties": props}

    def rows(**props) -> dict:
        return {"type": "array", "items": obj(**props)}

    def enum(values, null: bool = False) -> dict:
        return {"enum": [*values, *([None] if null else [])]}

    def map_of(values: dict, keys: dict | None = None) -> dict:
        out = {"type": "object", "additionalProperties": values}
        if keys:
            out["propertyNames"] = keys
        return out

    tier = enum(TIERS)
    site_kind = enum(("cloud", "onprem", "edge"))
    scalar = {"type": ["string", "number", "boolean", "null"]}
    solve = obj(
        status=enum(tuple(STATUS_EXIT)), solver=text, solver_version=text, integrality=enum(("replica", "pooled")),
        model_status=text, objective=num_n, bound=num_n, gap=num0_n, time_s=num0, nodes=int0_n,
        start_objective=num_n, start=text_n,
        rounding={"type": ["object", "null"], "additionalProperties": scalar},
        notes=strings, reasons=strings,
        options=map_of({"anyOf": [scalar, strings]}),
        model_size={"type": ["object", "null"], "additionalProperties": int0_n},
        times_s=map_of(num0), first_plan_s=num0_n,
    )
    busy_note = "replica-time used by normal serving, in replicas of this row (see planner.plan.result)"
    placements = rows(
        workload=text, site=text, offer=text, tier=tier, slot=text, replicas=num0, gpus=num0,
        provider=text, region=text_n, site_kind=site_kind, instance_type=text, accelerator=text,
        gpus_per_replica=num0, busy_replicas={**num0, "description": busy_note},
        standby_replicas={**num0, "description": "replicas - ceil(busy_replicas), at least 0"},
        standby_usd_per_month=num0,
        tags=obj(workload=text, tenant=text, feature=text, scenario=text, variant=text),
    )
    instances = rows(site=text, offer=text, tier=tier, slot=text_n, count=int0, provider=text, region=text_n,
                     site_kind=site_kind, instance_type=text, accelerator=text, gpus=num0)
    instance_costs = rows(site=text, offer=text, tier=tier, slot=text_n, count=int0,
                          usd_per_instance_hour=num0_n, usd_per_gpu_month=num0_n, usd_per_month=num0)
    serving = rows(workload=text, site=text, offer=text, slot=text, rps=num0,
                   **{"class": {**text, "description": "load-class key as in plan.json: a query class id, or "
                                "'<source_workload>~<source_class>' for escalated load"}},
                   source_workload=text_n, source_class=text_n)
    share = {"type": "number", "minimum": 0, "maximum": 1 + TOL}  # a solver's share may sit TOL above 1
    routes = rows(workload=text, user_region=text, site=text, slot=text, share=share, peak_rps=num0, mean_rps=num0,
                  rtt_ms=num0_n, rtt_source=enum(("measured", "model", "same-region", "unknown")))
    loads = rows(workload=text, source_workload=text_n, source_class=text_n, user_region=text_n, slot=text_n,
                 peak_rps=num0_n, mean_rps=num0, requests_per_month=num0, tokens_per_month=num0_n,
                 **{"class": text})
    candidates = rows(
        workload=text, site=text, offer=text, accelerator=text, instance_type=text,
        tiers={"type": "array", "items": tier},
        shape=obj(tp=int0, gpus=num0, replicas_per_instance=int0), gpus_per_replica=num0,
        classes=rows(source_workload=text_n, source_class=text_n, planning_rps=num0, max_rps=num0,
                     rate_source=enum(("estimate", "profile", "proxy")), rate_limit=text,
                     regime=enum(("compute", "bandwidth", "kv_capacity", "batch_cap", "ttft", "tpot"), null=True),
                     batch={**num0, "description": "concurrent sequences of the estimate (0: prefill-only or measured)"},
                     notes={"type": "array", "items": text}, **{"class": text}),
        unit_prices=rows(tier=tier, usd_per_instance_hour=num0_n, usd_per_gpu_month=num0_n),
    )
    utilisation = rows(site=text, provider=text, site_kind=site_kind, slot=text, gpus_installed=num0,
                       gpus_baseline=num0, gpus_burst=num0, gpus_used=num0, utilisation=num0, kw=num0,
                       power_budget_kw=num0_n, kg_co2e_per_month=num0)
    costs = rows(site=text, provider=text, workload=text_n, tier=enum(TIERS, null=True), kind=enum(COST_KINDS),
                 item=text_n, slot={**text_n, "description": "null for monthly costs, the slot id for slot costs"},
                 usd_per_month=num)
    unit_costs = rows(workload=text, requests_per_month=num0, usd_per_month=num, usd_per_1k_requests=num_n,
                      usd_per_successful_outcome=num_n, **{"class": text})
    attribution = rows(tenant=text, feature=text, usd_per_month=num)
    binding = rows(family=enum(FAMILIES), site=text_n, workload=text_n, slot=text_n, accelerator=text_n,
                   tier=enum(("owned", "bought"), null=True), activity=num, limit=num, slack=num, unit=enum(UNITS),
                   label=text)
    failover = rows(workload=text, lost_site=text, slot=text, user_region=text, query_class=text, unserved_rps=num0)
    verification = {"anyOf": [{"type": "null"}, obj(ok=boolean, violations=strings, warnings=strings,
                                                    recomputed_usd_per_month=num_n)]}
    summary = obj(total_usd_per_month=num_n, owned_sunk_usd_per_month=num_n, total_with_sunk_usd_per_month=num_n,
                  requests_per_month=num0, usd_per_1k_requests=num_n, kg_co2e_per_month=num_n,
                  standby_usd_per_month=num_n)
    policies = obj(
        hours_per_month=num0, pricing_models={"type": "array", "items": enum(PRICING_MODELS)},
        reserved_term=enum(("1y", "3y")),
        reserved_discount_by_provider=map_of({"type": ["number", "null"], "minimum": 0, "maximum": 1},
                                             enum(PROVIDERS)),
        spot=obj(derating=frac, max_share=frac), target_utilisation=frac, kv_reserve_fraction=num0,
        carbon_usd_per_tonne=num0, latency_usd_per_ms_per_rps=num0, bytes_per_output_token=num0,
        response_overhead_bytes=num0,
        egress=obj(internet_usd_per_gb=map_of(num0), inter_region_same_continent_usd_per_gb=num0,
                   inter_region_other_continent_usd_per_gb=num0, inter_provider_usd_per_gb=num0,
                   onprem_internet_usd_per_gb=num0),
        price_multipliers=rows(provider=text_n, accelerator=text_n, pricing=enum(("on_demand", "spot", "all")),
                               factor=num0),
    )
    sites = rows(
        id=text, kind=site_kind, provider=text, region=text_n, country=text_n, jurisdiction=text_n,
        gpus_per_server=int0_n, pue=num0, power_budget_kw=num0_n, idle_power_fraction=num0_n,
        electricity_usd_per_kwh=num0_n, fixed_usd_per_month=num0, grid_gco2e_per_kwh=num0_n,
        internet_egress_usd_per_gb=num0,
        inventory=rows(accelerator=text, offer=text, owned_gpus=int0, owned_usd_per_gpu_hour=num0, buyable_gpus=int0,
                       buy_usd_per_gpu_month=num0),
        quota=rows(accelerator=text, gpus=int0),
    )
    workloads = rows(
        id=text, kind=enum(WORKLOAD_KINDS), model=text, tenant=text, feature=text,
        residency={"anyOf": [enum(("any", "same_as_user")), strings]},
        redundancy=obj(mode=enum(("none", "n_plus_1")), min_sites={"type": "integer", "minimum": 1},
                       failover_network_rtt_ms=num0_n),
        slo=obj(network_rtt_ms=num0_n, ttft_ms=num0_n, tpot_ms=num0_n),
        escalation={"anyOf": [{"type": "null"}, obj(escalate_to=text, escalation_share=frac)]},
        batch={"anyOf": [{"type": "null"}, obj(tokens_per_day=num0, window_utc_hours={
            "type": "array", "items": int0, "minItems": 2, "maxItems": 2})]},
        cache_hit_rate=frac, prefix_cache_rate=frac, success_rate=frac,
        query_classes=rows(id=text, share=frac, input_tokens=int0, output_tokens=int0),
    )
    by_rule = obj(**{r: int0 for r in EXCLUSION_RULES})
    by_rule["properties"][ONLY_RULE] = int0  # optional: present when a variant's `only` patch applies
    exclusions = obj(total=int0, candidate_triples=int0, by_rule=by_rule)
    schema = obj(
        schema_version={"const": SCHEMA_VERSION},
        planner_version=text,
        scenario=obj(path=text, content_hash=text, name=text, description=text, variant=text_n,
                     variant_description=text_n, lost_sites=strings),
        catalog=obj(version=text),
        plan_hash={"type": "string", "pattern": "^[0-9a-f]{64}$"},
        solve=solve,
        policies=policies,
        time_slots=rows(id=text, start_hour=int0, end_hour=int0, hours_per_month=num0),
        sites=sites,
        workloads=workloads,
        open_sites=strings,
        summary=summary,
        placements=placements,
        instances=instances,
        instance_costs=instance_costs,
        serving=serving,
        routes=routes,
        loads=loads,
        candidates=candidates,
        utilisation=utilisation,
        costs=costs,
        unit_costs=unit_costs,
        attribution=attribution,
        exclusions=exclusions,
        binding=binding,
        failover=failover,
        verification=verification,
        warnings=strings,
    )
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "planner result.json 1.1", **schema}

