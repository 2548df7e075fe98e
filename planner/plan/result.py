"""PlacementResult: the versioned result of a solve (result.json) and its DataFrames.

Compute once, render many: the report, manifests, compare and verify read result.json, never
the MILP. Ordering is deterministic (sorted rows, sorted keys) so diffs stay clean.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from planner import __version__
from planner.derive.candidates import CandidateSet
from planner.optimise.backends import SolveOptions, SolveOutcome
from planner.optimise.model import PlacementModel
from planner.plan.costing import (
    Plan,
    cloud_power_kw,
    cost_lines,
    decision_cost,
    offer_index,
    site_power_kw,
    slot_month_hours,
)

SCHEMA_VERSION = "1.0"
TABLES = ("placements", "instances", "routes", "serving", "utilisation", "costs", "unit_costs", "attribution",
          "binding", "failover")


def _r(x: float, nd: int = 6) -> float:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return None  # type: ignore[return-value]
    return round(float(x), nd)


def plan_from_model(m: PlacementModel) -> Plan:
    """Read a solved model's decisions into plan tables (whole numbers for integer decisions)."""
    plan = Plan()
    for key, v in sorted(m.n.items(), key=lambda kv: tuple(str(p) for p in kv[0])):
        val = round(v.varValue or 0.0)
        if val <= 0:
            continue
        sid, oid, tau = key[0], key[1], key[2]
        plan.instances.append({"site": sid, "offer": oid, "tier": tau, "slot": key[3] if len(key) == 4 else None,
                               "count": int(val)})
    for (w, sid, oid, tau, t), v in sorted(m.r.items()):
        val = v.varValue or 0.0
        if m.integrality == "replica" or v.cat == "Integer":
            val = float(round(val))
        if val <= 1e-9:
            continue
        c = m.cand[(w, sid, oid)]
        plan.replicas.append({"workload": w, "site": sid, "offer": oid, "tier": tau, "slot": t,
                              "replicas": _r(val), "gpus": _r(val * c.shape.gpus)})
    for (w, k, sid, oid, t), v in sorted(m.y.items()):
        val = v.varValue or 0.0
        if val > 1e-9:
            plan.serving.append({"workload": w, "class": k, "site": sid, "offer": oid, "slot": t, "rps": _r(val, 9)})
    for (w, u, sid, t), v in sorted(m.x.items()):
        val = v.varValue or 0.0
        if val > 1e-9:
            plan.routes.append({"workload": w, "user_region": u, "site": sid, "slot": t, "share": _r(val, 9)})
    return plan


def plan_from_dict(d: dict) -> Plan:
    return Plan(instances=list(d.get("instances", [])),
                replicas=[{k: r[k] for k in ("workload", "site", "offer", "tier", "slot", "replicas", "gpus")}
                          for r in d.get("placements", [])],
                serving=list(d.get("serving", [])),
                routes=[{k: r[k] for k in ("workload", "user_region", "site", "slot", "share")}
                        for r in d.get("routes", [])])


@dataclass
class PlacementResult:
    data: dict

    @property
    def status(self) -> str:
        return self.data["solve"]["status"]

    def table(self, name: str) -> pd.DataFrame:
        return pd.DataFrame(self.data.get(name, []))

    def to_json(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=True, allow_nan=False) + "\n"

    @classmethod
    def read(cls, path: Path) -> PlacementResult:
        return cls(json.loads(Path(path).read_text()))


def build_result(cs: CandidateSet, m: PlacementModel | None, plan: Plan, outcome: SolveOutcome, opts: SolveOptions,
                 integrality: str, rounding: dict | None = None, extra_notes: list[str] | None = None) -> PlacementResult:
    res = cs.res
    s = res.scenario
    loads = cs.loads
    offers = offer_index(res)
    H = slot_month_hours(res)
    lines = cost_lines(res, loads, plan)
    total = decision_cost(lines)
    sunk = sum(ln["usd_per_month"] for ln in lines if ln["kind"] == "owned_sunk")
    wk = {w.id: w for w in s.workloads}

    placements = []
    for r in plan.replicas:
        o = offers[(r["site"], r["offer"])]
        site = res.sites[r["site"]]
        w = wk[r["workload"]]
        placements.append({
            **r, "provider": site.provider, "region": site.region or "", "site_kind": site.kind,
            "instance_type": o.instance_type, "accelerator": o.accelerator,
            "gpus_per_replica": _r(r["gpus"] / r["replicas"]) if r["replicas"] else None,
            "tags": {"workload": w.id, "tenant": w.tenant, "feature": w.feature, "scenario": s.name,
                     "variant": cs.res.loaded.variant or "base"},
        })
    instances = []
    for i in plan.instances:
        o = offers[(i["site"], i["offer"])]
        site = res.sites[i["site"]]
        instances.append({**i, "provider": site.provider, "region": site.region or "", "site_kind": site.kind,
                          "instance_type": o.instance_type, "accelerator": o.accelerator,
                          "gpus": _r(i["count"] * o.gpus)})
    routes = []
    for r in plan.routes:
        link = cs.rtt[(r["user_region"], r["site"])]
        routes.append({**r, "rtt_ms": _r(link.rtt_ms, 2) if link.rtt_ms is not None else None,
                       "rtt_source": link.rtt_source})

    # utilisation per site and slot
    power = site_power_kw(res, plan, offers)
    cpower = cloud_power_kw(res, plan, offers)
    util = []
    used_g: dict[tuple, float] = defaultdict(float)
    for r in plan.replicas:
        used_g[(r["site"], r["slot"])] += r["gpus"]
    inst_g: dict[tuple, float] = defaultdict(float)
    base_g: dict[tuple, float] = defaultdict(float)
    burst_g: dict[tuple, float] = defaultdict(float)
    for i in plan.instances:
        g = i["count"] * offers[(i["site"], i["offer"])].gpus
        for t in ([i["slot"]] if i["slot"] else list(H)):
            inst_g[(i["site"], t)] += g
            (base_g if i["slot"] is None else burst_g)[(i["site"], t)] += g
    for key in sorted(set(inst_g) | set(power)):
        sid, t = key
        site = res.sites[sid]
        kw = power.get(key, cpower.get(key, 0.0))
        util.append({"site": sid, "provider": site.provider, "site_kind": site.kind, "slot": t,
                     "gpus_installed": _r(inst_g.get(key, 0.0)), "gpus_baseline": _r(base_g.get(key, 0.0)),
                     "gpus_burst": _r(burst_g.get(key, 0.0)), "gpus_used": _r(used_g.get(key, 0.0)),
                     "utilisation": _r(used_g.get(key, 0.0) / inst_g[key]) if inst_g.get(key) else 0.0,
                     "kw": _r(kw, 4), "power_budget_kw": site.power_budget_kw,
                     "kg_co2e_per_month": _r(kw * H[t] * (site.grid_gco2e_per_kwh or 0.0) / 1000.0, 3)})

    # unit costs per workload and class: cost split by GPU-time of each class
    by_w_cost: dict[str, float] = defaultdict(float)
    for ln in lines:
        if ln["kind"] != "owned_sunk" and ln["workload"]:
            by_w_cost[ln["workload"]] += ln["usd_per_month"]
    gpu_time: dict[tuple, float] = defaultdict(float)
    for sv in plan.serving:
        if m is not None:
            c = m.cand.get((sv["workload"], sv["site"], sv["offer"]))
            rho = c.rps[sv["class"]].rps if c else 0.0
        else:
            rho = 0.0
        gpu_time[(sv["workload"], sv["class"])] += sv["rps"] / rho * H[sv["slot"]] if rho else sv["rps"] * H[sv["slot"]]
    # Cost of each (workload, class): the workload's cost split by GPU-time of its classes. The GPU
    # time escalated requests use on a larger model is charged back to the class that escalated
    # (key "origin~class"), so a small model's cost per request includes its escalations.
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
    attribution = []
    agg: dict[tuple, float] = defaultdict(float)
    for ln in lines:
        if ln["kind"] == "owned_sunk":
            continue
        w = wk.get(ln["workload"])
        agg[(w.tenant if w else "(unattributed)", w.feature if w else "(unattributed)")] += ln["usd_per_month"]
    for (tenant, feature), usd in sorted(agg.items()):
        attribution.append({"tenant": tenant, "feature": feature, "usd_per_month": _r(usd, 2)})

    binding = binding_constraints(m) if m is not None else []
    costs = sorted(({**ln, "usd_per_month": _r(ln["usd_per_month"], 4)} for ln in lines),
                   key=lambda d: (d["site"], d["workload"], d["kind"], d["tier"], d["item"]))
    reqs_total = sum(sum(loads[w.id].requests_per_month.values()) for w in s.workloads)
    defaults_used = sorted({f"{sid}: internet egress price from policy default" for sid, site in res.sites.items()
                            if site.internet_egress_is_default and any(r["site"] == sid for r in plan.routes)})
    data = {
        "schema_version": SCHEMA_VERSION,
        "planner_version": __version__,
        "scenario": {"name": s.name, "path": str(res.loaded.path), "content_hash": res.loaded.content_hash,
                     "variant": res.loaded.variant},
        "catalog": {"version": res.catalog.version},
        "solve": {
            "solver": outcome.solver, "solver_version": outcome.solver_version, "integrality": integrality,
            "options": {"time_limit_s": opts.time_limit_s, "gap": opts.gap, "threads": opts.threads,
                        "node_limit": opts.node_limit, "seed": opts.seed},
            "status": outcome.status, "model_status": outcome.model_status,
            "objective": _r(outcome.objective, 6), "bound": _r(outcome.bound, 6), "gap": _r(outcome.gap, 8),
            "time_s": _r(outcome.time_s, 3), "nodes": outcome.nodes,
            "heuristic_objective": _r(outcome.heuristic_objective, 4),
            "used_heuristic_plan": outcome.used_heuristic_plan,
            "rounding": rounding, "notes": list(outcome.notes) + list(extra_notes or []),
            "model_size": model_size(m) if m is not None else None,
        },
        "time_slots": [{"id": t.id, "start_hour": t.start_hour, "end_hour": t.end_hour,
                        "hours_per_month": _r(H[t.id], 4)} for t in s.time_slots],
        "summary": {
            "total_usd_per_month": _r(total, 2),
            "owned_sunk_usd_per_month": _r(sunk, 2),
            "total_with_sunk_usd_per_month": _r(total + sunk, 2),
            "requests_per_month": _r(reqs_total, 1),
            "usd_per_1k_requests": _r(total / reqs_total * 1000, 6) if reqs_total else None,
            "kg_co2e_per_month": _r(sum(u["kg_co2e_per_month"] or 0.0 for u in util), 2),
        },
        "placements": placements,
        "instances": instances,
        "routes": routes,
        "serving": plan.serving,
        "utilisation": util,
        "costs": costs,
        "unit_costs": unit,
        "attribution": attribution,
        "pruned": {"by_reason": cs.reason_counts(), "total": len(cs.exclusions),
                   "candidate_triples": len(cs.triples)},
        "binding": binding,
        "failover": [],
        "warnings": sorted(set(res.warnings) | set(defaults_used)),
    }
    return PlacementResult(data)


def _unit_row(w, cls: str, reqs: float, cost: float) -> dict:
    return {"workload": w.id, "class": cls, "requests_per_month": _r(reqs, 1), "usd_per_month": _r(cost, 2),
            "usd_per_1k_requests": _r(cost / reqs * 1000, 6) if reqs else None,
            "usd_per_successful_outcome": _r(cost / (reqs * w.success_rate), 8) if reqs and w.success_rate else None}


def model_size(m: PlacementModel) -> dict:
    nvars = len(m.prob.variables())
    nint = sum(1 for v in m.prob.variables() if v.cat == "Integer")
    return {"variables": nvars, "integer_variables": nint, "constraints": len(m.prob.constraints())}


#: constraint families whose tight rows an architect wants to see
_BINDING_FAMILIES = {"power_cap": "power budget", "quota": "cloud quota", "nplus1": "N+1 failover",
                     "spot_cap": "spot share cap", "min_sites": "minimum sites"}


def _unit_step(m: PlacementModel, family: str, label: str) -> float:
    """Room one more unit would need in a row of this family (0: exact rows only)."""
    from planner.derive.power import gpu_kw_factor

    site_id = label.split("__")[0]
    if family == "power_cap":
        site = m.cs.res.sites[site_id]
        return min((gpu_kw_factor(site, o) for o in site.offers if o.tdp_watts), default=0.0)
    if family == "quota":
        acc = label.split("__")[1]
        return min((o.gpus for (sid, _), o in m.offers.items() if sid == site_id and o.accelerator == acc), default=0.0)
    return 0.0


def binding_constraints(m: PlacementModel) -> list[dict]:
    """Rows at their bound in the final plan (slack ~ 0) for the families that limit a plan, and
    inventory bounds reached (owned or buyable GPUs all in use)."""
    out = []
    for name, (family, label) in sorted(m.rows.items()):
        if family not in _BINDING_FAMILIES:
            continue
        c = m.prob.get_constraint_by_name(name)
        if c is None:
            continue
        val = sum(v.varValue * a for v, a in c.items() if v.varValue is not None)
        rhs = -c.constant
        if family == "spot_cap" and not any((v.varValue or 0) > 1e-9 and a > 0 for v, a in c.items()):
            continue  # no spot in use: the cap does not limit anything
        # a row binds when not even one more unit fits: a GPU's kW under a power cap, an
        # instance's GPUs under a quota (integer plans rarely sit exactly on a limit)
        step = _unit_step(m, family, label)
        if abs(val - rhs) <= max(1e-6 * max(1.0, abs(rhs)), step - 1e-9):
            out.append({"constraint": name, "family": _BINDING_FAMILIES[family], "label": label, "value": _r(val, 6),
                        "limit": _r(rhs, 6)})
    # inventory: every owned (or buyable) GPU busy in some slot - installed but idle GPUs do not bind
    busy: dict[tuple, float] = defaultdict(float)
    for (w, sid, oid, tau, t), v in m.r.items():
        if tau in ("owned", "bought"):
            busy[(sid, oid, tau, t)] += (v.varValue or 0.0) * m.cand[(w, sid, oid)].shape.gpus
    peak: dict[tuple, float] = defaultdict(float)
    for (sid, oid, tau, _t), g in busy.items():
        peak[(sid, oid, tau)] = max(peak[(sid, oid, tau)], g)
    for key, v in sorted(m.n.items(), key=lambda kv: tuple(str(p) for p in kv[0])):
        if key[2] not in ("owned", "bought") or not v.upBound:
            continue
        cap = v.upBound * m.offers[(key[0], key[1])].gpus
        if peak.get(key, 0.0) >= cap - 1e-6:
            out.append({"constraint": f"inventory__{key[0]}__{key[1]}__{key[2]}", "family": "inventory",
                        "label": f"{key[0]} {key[1]} {key[2]}", "value": _r(peak[key], 6), "limit": float(cap)})
    return out


def write_atomic(path: Path, text: str) -> None:
    """Write a file via a temp file and rename, so a reader never sees half of it."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def result_json_schema() -> dict[str, Any]:
    """Published JSON Schema of result.json (the top-level contract; rows are documented objects)."""
    def rows(required: list[str], **props) -> dict:
        return {"type": "array", "items": {"type": "object", "required": required, "properties": props}}

    num = {"type": "number"}
    text = {"type": "string"}
    tables = {
        "placements": rows(["workload", "site", "offer", "tier", "slot", "replicas", "gpus", "provider", "region",
                            "instance_type", "accelerator", "tags"], replicas=num, gpus=num,
                           tier={"enum": ["owned", "bought", "reserved", "on_demand", "spot"]},
                           tags={"type": "object", "required": ["workload", "tenant", "feature", "scenario"]}),
        "instances": rows(["site", "offer", "tier", "slot", "count", "instance_type", "accelerator", "gpus"],
                          count={"type": "integer", "minimum": 0}),
        "routes": rows(["workload", "user_region", "site", "slot", "share", "rtt_ms", "rtt_source"],
                       share={"type": "number", "minimum": 0, "maximum": 1.000001}),
        "serving": rows(["workload", "class", "site", "offer", "slot", "rps"], rps=num),
        "utilisation": rows(["site", "slot", "gpus_installed", "gpus_used", "kw", "kg_co2e_per_month"]),
        "costs": rows(["site", "provider", "workload", "tier", "kind", "item", "usd_per_month"], usd_per_month=num,
                      kind={"enum": ["compute", "capex", "owned_sunk", "electricity", "fixed", "egress_response",
                                     "egress_data"]}),
        "unit_costs": rows(["workload", "class", "requests_per_month", "usd_per_month", "usd_per_1k_requests",
                            "usd_per_successful_outcome"]),
        "attribution": rows(["tenant", "feature", "usd_per_month"]),
        "binding": rows(["constraint", "family", "label", "value", "limit"]),
        "failover": rows(["workload", "slot", "lost_site", "unserved_user_regions", "unserved_rps"]),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "planner result",
        "type": "object",
        "required": ["schema_version", "scenario", "catalog", "solve", "summary", *TABLES, "pruned", "warnings"],
        "properties": {
            "schema_version": {"const": SCHEMA_VERSION},
            "planner_version": {"type": "string"},
            "scenario": {"type": "object", "required": ["name", "path", "content_hash", "variant"],
                         "properties": {"name": text, "path": text, "content_hash": text}},
            "catalog": {"type": "object", "required": ["version"]},
            "solve": {"type": "object", "required": ["solver", "solver_version", "integrality", "options", "status",
                                                     "model_status", "objective", "bound", "gap", "time_s",
                                                     "rounding", "notes"],
                      "properties": {"status": {"enum": ["optimal", "feasible", "infeasible", "no_plan"]},
                                     "integrality": {"enum": ["replica", "pooled"]}}},
            "summary": {"type": "object", "required": ["total_usd_per_month", "owned_sunk_usd_per_month",
                                                       "requests_per_month", "usd_per_1k_requests",
                                                       "kg_co2e_per_month"]},
            **tables,
            "pruned": {"type": "object"},
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
    }
