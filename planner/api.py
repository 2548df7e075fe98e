"""Library API. The CLI is a thin shell over these functions."""

from __future__ import annotations

import time
from pathlib import Path

from planner.derive.candidates import CandidateSet, build_candidates
from planner.errors import InfeasibleError, NoPlanError
from planner.input.catalog import load_catalog
from planner.input.consistency import Resolved, check
from planner.input.loader import load_raw
from planner.optimise.backends import SolveOptions, solve_model
from planner.optimise.heuristics import greedy_start
from planner.optimise.model import build_model
from planner.plan.result import PlacementResult, build_result, plan_from_model

#: ``auto`` picks the exact replica formulation up to this many candidate triples.
AUTO_REPLICA_MAX_TRIPLES = 400
#: past this size the LP relaxation behind the LP-support start does not solve within a typical
#: time limit on 2 cores (bench/: 9,368 triples, LP not solved in 15 s), so only the greedy start runs
SUPPORT_START_MAX_TRIPLES = 3000


def load_scenario(path: str | Path, variant: str | None = None, catalog_dir: Path | None = None) -> Resolved:
    """Read, patch (variant), validate and resolve a scenario against the catalogs."""
    loaded = load_raw(path, variant)
    return check(loaded, load_catalog(catalog_dir))


def explain_no_candidates(cs: CandidateSet) -> list[str]:
    """Why workloads or user regions have nothing to run on, from the pruning reasons."""
    out = []
    by_w = cs.by_workload()
    for w in cs.res.scenario.workloads:
        excl = [e for e in cs.exclusions if e.workload == w.id]
        if not by_w[w.id]:
            reasons = sorted({e.reason for e in excl})
            out.append(f"workload {w.id} has no candidate (site, offer): " + "; ".join(reasons[:6])
                       + (f" (and {len(reasons) - 6} more)" if len(reasons) > 6 else ""))
            continue
        sites_with_offers = {c.site for c in by_w[w.id]}
        for u, sites in cs.routes.get(w.id, {}).items():
            if not set(sites) & sites_with_offers:
                reasons = sorted({e.reason for e in excl if e.user_region == u})
                out.append(f"workload {w.id}: users in {u} can reach no site that can run {w.model}: "
                           + ("; ".join(reasons[:4]) if reasons else "the reachable sites have no offer the model fits"))
        if w.redundancy.mode == "n_plus_1" and len(sites_with_offers) < 2:
            out.append(f"workload {w.id} needs N+1 site redundancy but has only {len(sites_with_offers)} candidate site")
    return out


def _choose_integrality(cs: CandidateSet, integrality: str) -> str:
    if integrality != "auto":
        return integrality
    return "replica" if len(cs.triples) <= AUTO_REPLICA_MAX_TRIPLES else "pooled"


def solve(res: Resolved, options: SolveOptions | None = None, integrality: str = "auto",
          progress=None) -> PlacementResult:
    """Build and solve the placement MILP. Raises InfeasibleError (with the first explanation)
    when there is no plan, NoPlanError when none was found within the limits."""
    opts = options or SolveOptions()
    say = progress or (lambda msg: None)
    t0 = time.monotonic()
    cs = build_candidates(res)
    say(f"candidates: {len(cs.triples)} (workload, site, offer) triples, {len(cs.exclusions)} pairs pruned")
    reasons = explain_no_candidates(cs)
    if reasons:
        raise InfeasibleError(reasons[0], reasons)
    form = _choose_integrality(cs, integrality)
    m = build_model(cs, form)
    stage_opts = opts
    if form == "pooled":
        # the pooled MILP gets 60 % of the wall-clock budget, rounding to whole replicas the rest
        left = opts.time_limit_s - (time.monotonic() - t0)
        stage_opts = SolveOptions(**{**opts.__dict__, "time_limit_s": max(0.5, 0.6 * left)})
    say(f"model ({form}): {len(m.prob.variables())} variables, {len(m.prob.constraints())} constraints "
        f"built in {time.monotonic() - t0:.2f} s")
    if opts.solver == "highs" and opts.heuristic and opts.start is None:
        starts = []
        greedy = greedy_start(m)
        if greedy is not None:
            starts.append(("greedy", greedy))
            say("greedy plan built")
        bounds: list[float] = []
        if form == "replica" and len(cs.triples) <= SUPPORT_START_MAX_TRIPLES:
            support = _support_start(cs, m, opts, t0, say, bounds)
            if support:
                starts.append(("LP-support", support))
        stage_opts = SolveOptions(**{**stage_opts.__dict__, "start": starts,
                                     "known_bound": max(bounds) if bounds else None,
                                     "time_limit_s": _left(opts, t0) if form == "replica" else stage_opts.time_limit_s})
    outcome = solve_model(m, stage_opts)
    say(f"solve: {outcome.status} ({outcome.model_status}) in {outcome.time_s:.2f} s")
    if outcome.status == "infeasible":
        raise InfeasibleError("the scenario has no plan that meets every constraint: " + _infeasible_hint(cs),
                              [_infeasible_hint(cs)])
    if outcome.status == "no_plan":
        hint = "raise --time-limit" + (" or use --integrality pooled" if form == "replica" else "")
        raise NoPlanError(f"no plan found within {opts.time_limit_s:g} s ({outcome.model_status}); {hint}")
    rounding = None
    final_m, final_outcome, plan = m, outcome, plan_from_model(m)
    if form == "pooled":
        final_m, final_outcome, plan, rounding = _round_pooled(cs, m, outcome, opts, t0, say)
    final_outcome.time_s = time.monotonic() - t0  # the whole solve: candidates, build, heuristics, MILP
    return build_result(cs, final_m, plan, final_outcome, opts, form, rounding)


def _infeasible_hint(cs: CandidateSet) -> str:
    s = cs.res.scenario
    hints = []
    for w in s.workloads:
        if w.redundancy.mode == "n_plus_1":
            hints.append(f"{w.id} needs N+1 across its {len({c.site for c in cs.triples if c.workload == w.id})} "
                         f"candidate sites")
    declared = [sid for sid, site in cs.res.sites.items() if site.declared]
    if declared:
        hints.append("power budgets / owned GPU inventory at " + ", ".join(declared))
    if any(site.quota_gpus for site in cs.res.sites.values()):
        hints.append("cloud GPU quotas")
    if "on_demand" not in s.policies.pricing_models:
        hints.append("on-demand pricing is not allowed, so no elastic capacity can absorb peaks")
    return "check " + "; ".join(hints) if hints else "capacity cannot meet demand under the constraints"


def _round_pooled(cs: CandidateSet, m, outcome, opts: SolveOptions, t0: float, say):
    """Turn pooled allocations into whole replicas per workload: re-solve the exact replica form
    restricted to the (site, offer) pairs the pooled plan uses, warm-started; report what it adds.
    A pooled plan whose replicas are already whole (e.g. the greedy start) is kept as it is."""
    if all(abs((v.varValue or 0.0) - round(v.varValue or 0.0)) <= 1e-6 for v in m.r.values()):
        say("pooled plan already has whole replicas: no rounding needed")
        for v in m.r.values():
            v.varValue = float(round(v.varValue or 0.0))
        rounding = {"pooled_objective": outcome.objective, "pooled_bound": outcome.bound,
                    "rounded_objective": outcome.objective, "added_usd_per_month": 0.0,
                    "method": "none: the pooled plan's replicas are whole"}
        return m, outcome, plan_from_model(m), rounding
    used = {(w, sid, oid) for (w, sid, oid, _tau, _t), v in m.r.items() if (v.varValue or 0) > 1e-7}
    used |= {(w, sid, oid) for (w, _k, sid, oid, _t), v in m.y.items() if (v.varValue or 0) > 1e-9}
    sub = CandidateSet(res=cs.res, loads=cs.loads, triples=[c for c in cs.triples if c.key in used],
                       routes=cs.routes, rtt=cs.rtt, egress=cs.egress, exclusions=cs.exclusions)
    method = "replica MILP restricted to the pooled plan's (workload, site, offer) support"
    full = False
    rm = build_model(sub, "replica")
    start = _ceil_start(m, rm)
    rout = solve_model(rm, SolveOptions(**{**opts.__dict__, "time_limit_s": _left(opts, t0),
                                           "start": [("rounded pooled", start)]}))
    say(f"rounding to whole replicas: {rout.status} in {rout.time_s:.2f} s")
    if rout.status not in ("optimal", "feasible") and _left(opts, t0) > 0.5:
        # whole replicas do not fit where the pooled plan put fractions (e.g. a power budget
        # that holds 0.99 of a GPU): re-solve the full replica form in the time left
        method = "full replica MILP (the pooled plan's support has no whole-replica plan)"
        full = True
        rm = build_model(cs, "replica")
        rout = solve_model(rm, SolveOptions(**{**opts.__dict__, "time_limit_s": _left(opts, t0)}))
        say(f"rounding (full replica form): {rout.status} in {rout.time_s:.2f} s")
    if rout.status not in ("optimal", "feasible"):
        raise NoPlanError("rounding the pooled plan to whole replicas found no plan within the time left; "
                          "raise --time-limit or use --integrality replica")
    pooled_obj = outcome.objective
    added = (rout.objective or 0.0) - (pooled_obj or 0.0)
    rounding = {"pooled_objective": pooled_obj, "pooled_bound": outcome.bound, "rounded_objective": rout.objective,
                "added_usd_per_month": round(added, 4), "method": method}
    # A valid lower bound for the whole-replica plan: the pooled relaxation's bound (the restricted
    # re-solve's own bound holds only on its support, so it is not one).
    bound = outcome.bound
    if full and rout.bound is not None:
        bound = rout.bound if bound is None else max(bound, rout.bound)
    rout.bound = bound
    rout.gap = None
    if rout.objective is not None and bound is not None:
        rout.gap = max(0.0, (rout.objective - bound) / max(abs(rout.objective), 1e-9))
    rout.status = "optimal" if rout.gap is not None and rout.gap <= opts.gap + 1e-9 else "feasible"
    rout.time_s = time.monotonic() - t0
    return rm, rout, plan_from_model(rm), rounding


def _support_start(cs: CandidateSet, m, opts: SolveOptions, t0: float, say,
                   bounds: list[float]) -> dict[str, float] | None:
    """A starting plan from the LP relaxation's support: the replica MILP restricted to the
    (workload, site, offer) triples the LP uses, solved in a quarter of the budget. Its plan is a
    plan of the full model (every other variable 0) and is handed to HiGHS as its start."""
    from planner.optimise.backends import lp_relaxation

    relaxed = lp_relaxation(m.prob, 0.25 * _left(opts, t0))
    if relaxed is None:
        return None
    lp, lp_obj = relaxed
    say(f"LP relaxation: {lp_obj:,.2f} USD/month (a lower bound)")
    bounds.append(lp_obj)
    used = {k[:3] for k, v in m.r.items() if lp[v.name] > 1e-7}
    used |= {(k[0], k[2], k[3]) for k, v in m.y.items() if lp[v.name] > 1e-9}
    if not used or len(used) >= len(cs.triples):
        return None
    sub = CandidateSet(res=cs.res, loads=cs.loads, triples=[c for c in cs.triples if c.key in used],
                       routes=cs.routes, rtt=cs.rtt, egress=cs.egress, exclusions=cs.exclusions)
    sm = build_model(sub, "replica")
    sopts = SolveOptions(**{**opts.__dict__, "time_limit_s": 0.25 * _left(opts, t0), "heuristic": True,
                            "node_limit": None})
    out = solve_model(sm, sopts)
    say(f"LP-support plan ({len(used)} of {len(cs.triples)} triples): {out.status}, "
        f"{out.objective if out.objective is not None else float('nan'):,.2f} USD/month")
    if out.status not in ("optimal", "feasible"):
        return None
    # the whole plan, mapped by key (a variable missing from the restricted model is 0)
    start: dict[str, float] = {}
    for attr in ("x", "y", "r", "n", "open", "used", "T", "P"):
        sub_store = getattr(sm, attr)
        for key, v in getattr(m, attr).items():
            sv = sub_store.get(key)
            val = (sv.varValue or 0.0) if sv is not None else 0.0
            start[v.name] = float(round(val)) if v.cat != "Continuous" else float(val)
    return start


def _ceil_start(pooled, rm) -> dict[str, float]:
    """Start for the whole-replica re-solve: each pooled allocation rounded up to whole replicas,
    and the instances those replicas need (HiGHS completes the continuous part)."""
    import math
    from collections import defaultdict

    start: dict[str, float] = {}
    need: dict[tuple, float] = defaultdict(float)
    for key, v in rm.r.items():
        val = math.ceil((pooled.r[key].varValue or 0.0) - 1e-6) if key in pooled.r else 0
        start[v.name] = float(val)
        w, sid, oid, tau, t = key
        need[(sid, oid, tau, t)] += val * rm.cand[(w, sid, oid)].shape.gpus
    count: dict[tuple, int] = defaultdict(int)
    for (sid, oid, tau, t), g in need.items():
        n = math.ceil(g / rm.offers[(sid, oid)].gpus - 1e-9)
        key = (sid, oid, tau) if (sid, oid, tau) in rm.n else (sid, oid, tau, t)
        count[key] = max(count[key], n)
    for key, v in rm.n.items():
        start[v.name] = float(count.get(key, 0))
    for sid, v in rm.open.items():
        start[v.name] = float(any(c for k, c in count.items() if k[0] == sid))
    return start


def _left(opts: SolveOptions, t0: float) -> float:
    return max(0.5, opts.time_limit_s - (time.monotonic() - t0))


def verify(res: Resolved, result: PlacementResult):
    from planner.verify import verify_result

    return verify_result(res, result)
