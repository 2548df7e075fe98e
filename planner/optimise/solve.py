"""The seam between the solver and everything after it: solver values <-> :class:`Plan`.

:func:`plan_from_values` reads a checked vector of the model's columns into decision tables
keyed by ids; :func:`start_from_plan` maps a Plan (a previous result, a rounded plan) back onto
a model's columns by decision key, so warm starts and re-solves take and give a Plan. Nothing
after this module touches PuLP variables or HiGHS.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from planner.derive.candidates import BASELINE_TIERS
from planner.optimise.backends import HighsModel
from planner.optimise.model import NON_SPOT, SPOT, PlacementModel
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
    reps: dict[tuple, float] = {}
    for (w, sid, oid, kind, t), v in m.r.items():
        n = val[v]
        if m.integrality == "replica":
            n = float(round(n))
        if n > NOISE:
            reps[(w, sid, oid, kind, t)] = n
    counts = {(i["site"], i["offer"], i["tier"], i["slot"]): i["count"] for i in plan.instances}
    for (w, sid, oid, tau, t), n in assign_tiers(m, reps, counts).items():
        c = m.cand[(w, sid, oid)]
        plan.replicas.append({"workload": w, "site": sid, "offer": oid, "tier": tau, "slot": t,
                              "replicas": n, "gpus": n * c.shape.gpus})
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


def assign_tiers(m: PlacementModel, reps: dict[tuple, float], counts: dict[tuple, int]) -> dict[tuple, float]:
    """Replica rows with a tier, from replicas by kind (``ns``/``spot``) and instance counts.

    The stated rule: per (site, offer, slot), the non-spot replicas, largest replica first (then
    by workload id), fill the offer's non-spot instances tier by tier in the order owned, bought,
    reserved, on_demand, each tier holding G x its instance count GPUs (baseline tiers every slot,
    on_demand its slot's count); a replica goes whole into the first tier with room (replica GPUs
    are powers of two dividing G, so the tiers fill exactly); in the pooled form a fraction may
    split across tiers. Spot replicas are ``spot``. Whatever does not fit (never, for a plan that
    passed the row check) stays in the last tier, where verification would report it."""
    out: dict[tuple, float] = defaultdict(float)
    by: dict[tuple, list] = defaultdict(list)
    for (w, sid, oid, kind, t), n in reps.items():
        if kind == SPOT:
            out[(w, sid, oid, "spot", t)] += n
        else:
            by[(sid, oid, t)].append((w, n))
    whole = m.integrality == "replica"
    for (sid, oid, t), rows in sorted(by.items()):
        G = m.offers[(sid, oid)].gpus
        tiers = [tau for tau in ("owned", "bought", "reserved", "on_demand")
                 if (sid, oid, tau) in m.n or (sid, oid, tau, t) in m.n]
        room = {tau: G * counts.get((sid, oid, tau, None if tau in BASELINE_TIERS else t), 0) for tau in tiers}
        for w, n in sorted(rows, key=lambda r: (-m.cand[(r[0], sid, oid)].shape.gpus, r[0])):
            g = m.cand[(w, sid, oid)].shape.gpus
            left = n
            for tau in tiers:
                if left <= NOISE:
                    break
                fit = math.floor(room[tau] / g + 1e-9) if whole else room[tau] / g
                take = min(left, fit)
                if take > NOISE:
                    out[(w, sid, oid, tau, t)] += take
                    room[tau] -= take * g
                    left -= take
            if left > NOISE:
                out[(w, sid, oid, tiers[-1], t)] += left
    return dict(out)


def start_from_plan(m: PlacementModel, hm: HighsModel, plan: Plan) -> np.ndarray:
    """A vector of the model's columns holding the Plan's decisions, mapped by decision key
    (decisions the model has no column for are dropped; columns the plan does not mention are 0).
    The continuous rest is completed by :meth:`HighsModel.complete`."""
    by_name: dict[int, float] = {}
    for i in plan.instances:
        key = (i["site"], i["offer"], i["tier"]) if i["slot"] is None else (i["site"], i["offer"], i["tier"], i["slot"])
        if key in m.n:
            by_name[m.n[key]] = float(i["count"])
    used: set[tuple[str, str]] = set()
    for r in plan.replicas:
        key = (r["workload"], r["site"], r["offer"], SPOT if r["tier"] == "spot" else NON_SPOT, r["slot"])
        if key in m.r:
            by_name[m.r[key]] = by_name.get(m.r[key], 0.0) + float(r["replicas"])
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
