"""The seam between the solver and everything after it: solver values <-> :class:`Plan`.

:func:`plan_from_values` reads a checked vector of the model's columns into decision tables
keyed by ids; :func:`start_from_plan` maps a Plan (a previous result, a rounded plan) back onto
a model's columns by decision key, so warm starts and re-solves take and give a Plan. Nothing
after this module touches PuLP variables or HiGHS.
"""

from __future__ import annotations

import numpy as np

from planner.optimise.backends import HighsModel
from planner.optimise.model import PlacementModel
from planner.plan.plan import Plan

#: continuous values below this are solver noise, not decisions (far below the tolerance)
NOISE = 1e-12


def plan_from_values(m: PlacementModel, hm: HighsModel, x: np.ndarray) -> Plan:
    """Decision tables of a checked solution vector (integer columns are whole)."""
    val = np.asarray(x, dtype=float)
    plan = Plan()
    for key, v in m.n.items():
        count = int(round(val[v]))
        if count > 0:
            plan.instances.append({"site": key[0], "offer": key[1], "tier": key[2],
                                   "slot": key[3] if len(key) == 4 else None, "count": count})
    for (w, sid, oid, tau, t), v in m.r.items():
        reps = val[v]
        if m.integrality == "replica":
            reps = float(round(reps))
        if reps <= NOISE:
            continue
        c = m.cand[(w, sid, oid)]
        plan.replicas.append({"workload": w, "site": sid, "offer": oid, "tier": tau, "slot": t,
                              "replicas": reps, "gpus": reps * c.shape.gpus})
    for (w, k, sid, oid, t), v in m.y.items():
        rps = val[v]
        if rps > NOISE:
            plan.serving.append({"workload": w, "class": k, "site": sid, "offer": oid, "slot": t, "rps": rps})
    for (w, u, sid, t), v in m.x.items():
        share = val[v]
        if share > NOISE:
            plan.routes.append({"workload": w, "user_region": u, "site": sid, "slot": t, "share": share})
    plan.open_sites = sorted(sid for sid, v in m.open.items() if val[v] > 0.5)
    # a declared site that holds GPUs is open even where its open variable was free (no fixed cost)
    gpu_sites = {i["site"] for i in plan.instances} | {r["site"] for r in plan.replicas}
    plan.open_sites = sorted(set(plan.open_sites) | {sid for sid in gpu_sites if sid in m.open})
    return plan.canonical()


def instance_key(i: dict) -> tuple:
    """The model's instance key (the ``n`` store) of a Plan instance row: (site, offer, tier)
    for the baseline tiers, (site, offer, tier, slot) for burst tiers."""
    return (i["site"], i["offer"], i["tier"]) if i["slot"] is None else (i["site"], i["offer"], i["tier"], i["slot"])


def start_from_plan(m: PlacementModel, hm: HighsModel, plan: Plan) -> np.ndarray:
    """A vector of the model's columns holding the Plan's decisions, mapped by decision key
    (decisions the model has no column for are dropped; columns the plan does not mention are 0).
    The continuous rest is completed by :meth:`HighsModel.complete`."""
    by_name: dict[int, float] = {}
    for i in plan.instances:
        key = instance_key(i)
        if key in m.n:
            by_name[m.n[key]] = float(i["count"])
    used: set[tuple[str, str]] = set()
    for r in plan.replicas:
        key = (r["workload"], r["site"], r["offer"], r["tier"], r["slot"])
        if key in m.r:
            by_name[m.r[key]] = float(r["replicas"])
            if r["replicas"] > 0:
                used.add((r["workload"], r["site"]))
    for sv in plan.serving:
        key = (sv["workload"], sv["class"], sv["site"], sv["offer"], sv["slot"])
        if key in m.y:
            by_name[m.y[key]] = float(sv["rps"])
    for rt in plan.routes:
        key = (rt["workload"], rt["user_region"], rt["site"], rt["slot"])
        if key in m.x:
            by_name[m.x[key]] = float(rt["share"])
    for sid, v in m.open.items():
        by_name[v] = 1.0 if sid in plan.open_sites else 0.0
    for key, v in m.used.items():
        by_name[v] = 1.0 if key in used else 0.0
    return hm.vector(by_name)


def model_size(m: PlacementModel, hm: HighsModel) -> dict:
    return {"variables": hm.n, "integer_variables": int(len(hm.int_idx)), "constraints": m.n_rows,
            "failover_variables": len(m.fz) + len(m.fq),
            "failover_constraints": sum(1 for fam in m.row_family if fam.startswith("fo_"))}
