"""Fix-and-optimise by workload groups (a large-neighbourhood search around a checked plan).

For scenarios too large for one MILP within the limit: keep a complete, checked plan (the
incumbent) and improve it one neighbourhood at a time. A neighbourhood is a group of workloads
around one site (those with replicas there, then those that could move there); every other
workload keeps its replicas, routes and serving. The group's model is the exact placement model
of :mod:`planner.optimise.model` restricted to the group's workloads (every candidate site and
offer, exact N+1 failover) with the GPUs the other workloads hold as a constant ``background``
in the instance and power rows, so instances, quotas, owned GPUs, power and site opening are
shared exactly as in the whole model. It is solved by HiGHS from the incumbent's restriction.

Why the objective stays exact: the group's model holds every term a change of the group can move
(all instances and their tiers at the sites it touches, power and fixed cost there, the group's
egress); every other term is a constant. So ``whole objective += group objective after - group
objective before``, and a group plan is accepted only when it is cheaper by more than the
tolerance. The independent verifier recomputes the final plan's cost from its tables.

This gives plans, not bounds: a bound comes from elsewhere (see strategy.py).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from planner.derive.candidates import CandidateSet
from planner.optimise.backends import HighsModel, SolveOptions, solve_highs
from planner.optimise.model import BuildDeadline, build_model
from planner.optimise.solve import plan_from_values, start_from_plan
from planner.plan.plan import Plan
from planner.tolerance import TOL

#: a group holds workloads until it has about this many candidate triples (sub-MIPs of this size
#: solve or stall within about a second on 2 cores: bench/)
GROUP_TRIPLES = 400
#: time one group's MILP may take (seconds), at most
GROUP_SECONDS = 3.0


@dataclass
class LnsStats:
    groups: int = 0
    improved: int = 0
    start_objective: float = 0.0
    objective: float = 0.0
    history: list = field(default_factory=list)  # (seconds since start, objective) after each improvement


def _sub_cs(cs: CandidateSet, triples: list) -> CandidateSet:
    return CandidateSet(res=cs.res, loads=cs.loads, triples=triples, routes=cs.routes, rtt=cs.rtt, egress=cs.egress,
                        exclusions=cs.exclusions, failover_sites=cs.failover_sites)


def neighbourhoods(cs: CandidateSet, plan: Plan, round_no: int) -> list[list[str]]:
    """Workload groups for one pass: per site (most costly first in the incumbent, by GPUs held),
    the workloads with replicas there, then workloads that have it as a candidate, until the
    group holds about GROUP_TRIPLES triples. Each pass shifts which candidates fill the group."""
    by_w = cs.by_workload()
    size = {w: len(c) for w, c in by_w.items()}
    at_site: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in plan.replicas:
        at_site[r["site"]][r["workload"]] += r["gpus"]
    cand_at: dict[str, list[str]] = defaultdict(list)
    for w, cands in by_w.items():
        for sid in sorted({c.site for c in cands}):
            cand_at[sid].append(w)
    order = sorted(at_site, key=lambda sid: (-sum(at_site[sid].values()), sid))
    groups = []
    for sid in order:
        group: list[str] = []
        total = 0
        holders = sorted(at_site[sid], key=lambda w: (-at_site[sid][w], w))
        others = [w for w in cand_at.get(sid, []) if w not in at_site[sid]]
        if others:
            k = (round_no * 7) % len(others)
            others = others[k:] + others[:k]
        for w in holders + others:
            if total and total + size[w] > GROUP_TRIPLES:
                continue
            group.append(w)
            total += size[w]
        if group:
            groups.append(group)
    return groups


def background(plan: Plan, group: set[str]) -> dict:
    """GPUs per (site, offer, tier, slot) held by the plan's replicas of workloads outside ``group``."""
    bg: dict[tuple, float] = defaultdict(float)
    for r in plan.replicas:
        if r["workload"] not in group:
            bg[(r["site"], r["offer"], r["tier"], r["slot"])] += r["gpus"]
    return dict(bg)


def merge(plan: Plan, sub: Plan, group: set[str], sub_instance_keys: set) -> Plan:
    """The incumbent with the group's decisions (and the instances the group model sized) replaced."""

    def ikey(i: dict) -> tuple:
        return (i["site"], i["offer"], i["tier"]) if i["slot"] is None else (i["site"], i["offer"], i["tier"], i["slot"])

    out = Plan(
        instances=[i for i in plan.instances if ikey(i) not in sub_instance_keys] + sub.instances,
        replicas=[r for r in plan.replicas if r["workload"] not in group] + sub.replicas,
        serving=[s for s in plan.serving if s["workload"] not in group] + sub.serving,
        routes=[r for r in plan.routes if r["workload"] not in group] + sub.routes,
    )
    gpu_sites = {i["site"] for i in out.instances}
    out.open_sites = sorted(sid for sid in set(plan.open_sites) | set(sub.open_sites) if sid in gpu_sites)
    return out.canonical()


def improve(cs: CandidateSet, plan: Plan, objective: float, deadline: float, opts: SolveOptions,
            say: Callable[[str], None], on_better: Callable[[Plan, float], None] | None = None,
            tick: Callable[[float], None] | None = None) -> tuple[Plan, float, LnsStats]:
    """Improve a checked plan of ``cs`` until ``deadline`` (time.monotonic()); returns the best
    plan, its objective and what was done. ``on_better(plan, objective)`` is called after each
    accepted group (the caller keeps it as its best checked plan)."""
    t0 = time.monotonic()
    stats = LnsStats(start_objective=objective, objective=objective)
    by_w = cs.by_workload()
    sub_opts = SolveOptions(**{**opts.__dict__, "heuristic": False, "node_limit": None, "write_lp": None})
    quiet = None
    round_no = 0
    while time.monotonic() < deadline - 0.3:
        improved_this_round = False
        for group in neighbourhoods(cs, plan, round_no):
            left = deadline - time.monotonic()
            if left < 0.3:
                break
            gset = set(group)
            triples = [c for w in group for c in by_w[w]]
            try:
                sm = build_model(_sub_cs(cs, triples), "replica", time.monotonic() + min(left, 2 * GROUP_SECONDS),
                                 workloads=group, background=background(plan, gset))
            except BuildDeadline:
                break
            shm = HighsModel(sm)
            stop = time.monotonic() + min(GROUP_SECONDS, max(0.2, deadline - time.monotonic()))
            x0 = shm.complete(start_from_plan(sm, shm, plan), stop)
            stats.groups += 1
            if x0 is None:
                continue  # the incumbent does not map onto this group's model (should not happen)
            before = shm.objective(x0)
            out = solve_highs(sm, sub_opts, stop, [("incumbent", x0)], None, quiet, shm, label="HiGHS (group)")
            if out.interrupted:
                raise KeyboardInterrupt
            if out.values is None or out.objective is None:
                continue
            gain = before - out.objective
            if gain <= TOL * max(1.0, abs(objective)) or not math.isfinite(gain):
                continue
            sub = plan_from_values(sm, shm, out.values)
            plan = merge(plan, sub, gset, set(sm.n))
            objective -= gain
            stats.improved += 1
            improved_this_round = True
            stats.history.append((time.monotonic() - t0, objective))
            if on_better is not None:
                on_better(plan, objective)
            if tick is not None:
                tick(objective)
        round_no += 1
        if not improved_this_round and round_no >= 3:
            break
    stats.objective = objective
    return plan, objective, stats
