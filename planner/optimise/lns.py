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

import gc
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from planner.derive.candidates import CandidateSet
from planner.optimise.backends import HighsModel, SolveOptions, lp_relaxation, solve_highs
from planner.optimise.model import BuildDeadline, build_model
from planner.optimise.retier import retier
from planner.optimise.solve import instance_key, plan_from_values, start_from_plan
from planner.plan.plan import Plan

#: a group holds workloads until it has about this many candidate triples (sub-MIPs of this size
#: solve or stall within about a second on 2 cores: bench/)
GROUP_TRIPLES = 32
#: time one group's MILP may take (seconds), at most: from re-tiered greedy-spread plans (stop 18),
#: 0.8 s against 1.5 s gave 0.768 / 0.745 / 0.727 x greedy against 0.768 / 0.786 / 0.730 on 50x20
#: seeds 1-3 in 3.7 s, and 0.773 / 0.778 / 0.747 against 0.778 / 0.780 / 0.749 on 200x50 in 9 s
GROUP_SECONDS = 0.8
#: time one workload's MILP (all its candidates) may take (seconds), at most: 0.7 s and 3 s
#: were measured no better than 1.5 s on 20x10-200x50, 3 seeds (where gains come from, the dear
#: workloads' models, HiGHS's root cuts take about a second)
SINGLE_SECONDS = 1.5
#: up to this many workloads each round tries the workloads alone first, then the site groups;
#: past it the site groups first. Measured from greedy-spread (ratio to greedy, seeds 1/2/3):
#: 20x10 in 5 s, singles first 0.745 / 0.658 / 0.784, sites first 0.811 / 0.686 / 0.972; 50x20
#: in 5 s, 0.885 / 0.865 / 0.833 against 0.898 / 0.834 / 0.828; 200x50 in 12 s, 0.910 / 0.903 /
#: 0.901 against 0.858 / 0.900 / 0.877; 1000x100 seed 1 in 30 s, 0.952 against 0.921
SINGLES_FIRST_MAX_WORKLOADS = 30
#: besides the sites where a workload runs and the group's site, the cheapest other candidate
#: sites it may move to within one group (exact N+1 failover is modelled among these sites)
EXTRA_SITES = 3
#: share of a group's time its LP relaxation may take (the rest: the MILP on the LP's support)
LP_SHARE = 0.4
#: a group's plan replaces the incumbent's when it saves more than this share of the whole cost
GAIN_MIN = 1e-7


@dataclass
class LnsStats:
    groups: int = 0
    improved: int = 0
    retiered: int = 0  # re-tierings of the whole incumbent that lowered its cost (retier.py)
    retier_gain: float = 0.0
    start_objective: float = 0.0
    objective: float = 0.0
    history: list = field(default_factory=list)  # (seconds since start, objective) after each improvement


def _sub_cs(cs: CandidateSet, triples: list, group: list[str] | None = None) -> CandidateSet:
    """The candidate set of a group model: ``triples`` only (of the workloads in ``group``)."""
    return cs.for_group(triples, group if group is not None else sorted({c.workload for c in triples}))


def _unit_cost(c, hpm: float) -> float:
    """USD per hour per request/s of the candidate's cheapest tier (a ranking, not a price)."""
    prices = [c.unit_price(tau, hpm) / (hpm if tau in ("reserved", "bought") else 1.0) for tau in c.tiers]
    price = min(prices) if prices else 0.0
    rate = max((e.rps for e in c.rps.values()), default=0.0)
    return price * c.shape.gpus / c.offer.gpus / rate if rate > 0 else math.inf


def allowed_triples(cs: CandidateSet, plan: Plan | Incumbent, group: list[str], centre: str,
                    by_w: dict | None = None) -> list:
    """The group's candidates at the sites each workload may use in this neighbourhood: where it
    runs now, the group's site, and its EXTRA_SITES cheapest other candidate sites. Any plan of
    this restriction is a plan of the whole model (fewer options, the same rows)."""
    by_w = by_w if by_w is not None else cs.by_workload()
    hpm = cs.res.scenario.policies.hours_per_month
    inc = plan if isinstance(plan, Incumbent) else Incumbent(plan)
    out = []
    for w in group:
        best: dict[str, float] = {}
        for c in by_w[w]:
            best[c.site] = min(best.get(c.site, math.inf), _unit_cost(c, hpm))
        keep = inc.sites_of(w) | {centre}
        keep |= set(sorted((sid for sid in best if sid not in keep), key=lambda sid: (best[sid], sid))[:EXTRA_SITES])
        out.extend(c for c in by_w[w] if c.site in keep)
    return out


def neighbourhoods(cs: CandidateSet, plan: Plan, round_no: int,
                   by_w: dict | None = None) -> list[tuple[str, list[str]]]:
    """(site, workload group) pairs for one pass: per site (dearest replicas in the incumbent
    first: :func:`replica_costs`), the workloads with replicas there (dearest first), then
    workloads that have it as a candidate, until the group holds about GROUP_TRIPLES triples.
    Each pass shifts which candidates fill the group.

    By cost rather than by GPUs held (as before stop 19: a T4 counted as much as an H100), from
    re-tiered greedy-spread starts, ratio to greedy, seeds 1/2/3: 1000x100 in 30 s 0.7954 /
    0.7957 / 0.7945 against 0.7992 / 0.8021 / 0.7960; 200x50 in 9 s 0.7558 / 0.7829 / 0.7242
    against 0.7658 / 0.7772 / 0.7449; 50x20 in 3.7 s 0.7647 / 0.7221 / 0.7656 against 0.7681 /
    0.7891 / 0.7268."""
    by_w = by_w if by_w is not None else cs.by_workload()
    size = {w: min(len(c), 4 * (1 + EXTRA_SITES)) for w, c in by_w.items()}
    at_site: dict[str, dict[str, float]] = defaultdict(dict)
    for (sid, w), usd in replica_costs(cs, plan).items():
        at_site[sid][w] = usd
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
            groups.append((sid, group))
    return groups


def background(plan: Plan, group: set[str], sites: set[str] | None = None) -> dict:
    """GPUs per (site, offer, tier, slot) held by the plan's replicas of workloads outside
    ``group`` (at ``sites`` only, when given: what a group can change is at the sites of its
    candidates, where instances, quotas, power and opening are per site; elsewhere the
    incumbent's instances stay as they are, and modelling them, as before stop 17, made every
    group's model hold the whole plan's instances: 834 instance rows for one 50x20 workload).
    The search reads it from its index (:meth:`Incumbent.background`)."""
    inc = Incumbent(plan)
    return inc.background(group, sites if sites is not None else set(inc.at_site))


def merge(plan: Plan, sub: Plan, group: set[str], sub_instance_keys: set, sub_sites: set | frozenset = frozenset()) -> Plan:
    """The incumbent with the group's decisions replaced: its workloads' rows, the instances the
    group model sized (``sub_instance_keys``) and the open/closed state of the declared sites it
    modelled (``sub_sites``); everything else as in the incumbent. The incumbent's rows keep
    their order and the group's follow (deterministic); the tables are not re-sorted here
    (Plan.canonical sorted the whole plan at every accepted group: 4.7 of 30 s at 1000x100):
    :func:`improve` returns its plan canonical. :class:`Incumbent` does the same on its index."""
    inc = Incumbent(plan)
    inc.replace(sub, group, sub_instance_keys, sub_sites)
    return inc.plan()


def _rows_by_workload(plan: Plan) -> dict[str, tuple[list, list, list]]:
    """workload -> (its replica rows, serving rows, route rows), in the plan's order, workloads in
    the order of their first row."""
    out: dict[str, tuple[list, list, list]] = {}
    for name, table in ((0, plan.replicas), (1, plan.serving), (2, plan.routes)):
        for r in table:
            got = out.get(r["workload"])
            if got is None:
                got = out[r["workload"]] = ([], [], [])
            got[name].append(r)
    return out


class Incumbent:
    """The fix-and-optimise incumbent indexed by workload and site, so that a neighbourhood reads
    and replaces only its own part: its workloads' rows, the GPUs other workloads hold at its
    sites (:meth:`background`), the instances there. Before stop 20 every group filtered every
    row of the whole plan four times (background, the start vector, the LP support, merge):
    5000x300, 120 s of fix-and-optimise, 16 s of 123.

    Rows are kept per workload in the order of their first appearance; a replaced workload's
    rows move to the end, as :func:`merge` appends the group's rows."""

    def __init__(self, plan: Plan):
        self.rows = _rows_by_workload(plan)
        self.instances: dict[tuple, dict] = {instance_key(i): i for i in plan.instances}
        self.inst_at: dict[str, set] = defaultdict(set)
        for key in self.instances:
            self.inst_at[key[0]].add(key)
        self.at_site: dict[str, dict[str, list]] = defaultdict(dict)  # site -> workload -> its replica rows there
        for w, (reps, _sv, _rt) in self.rows.items():
            self._index(w, reps)
        self.open_sites = list(plan.open_sites)
        self._plan: Plan | None = plan

    def _index(self, w: str, reps: list) -> None:
        for r in reps:
            self.at_site[r["site"]].setdefault(w, []).append(r)

    def plan(self) -> Plan:
        """The incumbent as a Plan (rows in merge order, not canonical), built once per change."""
        if self._plan is None:
            rows = self.rows.values()
            self._plan = Plan(instances=list(self.instances.values()),
                              replicas=[r for reps, _sv, _rt in rows for r in reps],
                              serving=[s for _reps, sv, _rt in rows for s in sv],
                              routes=[r for _reps, _sv, rt in rows for r in rt],
                              open_sites=list(self.open_sites))
        return self._plan

    def replicas(self, w: str) -> list:
        got = self.rows.get(w)
        return got[0] if got else []

    def sites_of(self, w: str) -> set[str]:
        return {r["site"] for r in self.replicas(w)}

    def background(self, group: set[str], sites: set[str]) -> dict:
        """:func:`background` of the plan at ``sites``, from the index."""
        bg: dict[tuple, float] = defaultdict(float)
        for sid in sorted(sites):
            for w, reps in self.at_site.get(sid, {}).items():
                if w not in group:
                    for r in reps:
                        bg[(r["site"], r["offer"], r["tier"], r["slot"])] += r["gpus"]
        return dict(bg)

    def part(self, group: set[str], sites: set[str]) -> Plan:
        """The rows a group's model can hold: its workloads' rows, the instances at ``sites``,
        and the open sites (:func:`planner.optimise.solve.start_from_plan` maps a Plan by
        decision key and drops what the model has no column for, so this gives the same start
        vector as the whole plan)."""
        ws = sorted(w for w in group if w in self.rows)
        return Plan(instances=[self.instances[k] for sid in sorted(sites) for k in sorted(self.inst_at.get(sid, ()))],
                    replicas=[r for w in ws for r in self.rows[w][0]],
                    serving=[s for w in ws for s in self.rows[w][1]],
                    routes=[r for w in ws for r in self.rows[w][2]],
                    open_sites=self.open_sites)

    def replace(self, sub: Plan, group: set[str], sub_instance_keys: set, sub_sites: set | frozenset = frozenset()) -> None:
        """:func:`merge` in place."""
        for w in sorted(group):
            old = self.rows.pop(w, None)
            if old is not None:
                for r in old[0]:
                    at = self.at_site.get(r["site"])
                    if at is not None and w in at:
                        del at[w]
        for w, rows in _rows_by_workload(sub).items():
            self.rows[w] = rows
            self._index(w, rows[0])
        for key in sub_instance_keys:
            if self.instances.pop(key, None) is not None:
                self.inst_at[key[0]].discard(key)
        for i in sub.instances:
            key = instance_key(i)
            self.instances[key] = i
            self.inst_at[key[0]].add(key)
        self.open_sites = sorted((set(self.open_sites) - set(sub_sites)) | set(sub.open_sites))
        self._plan = None


def with_power(m, x: np.ndarray) -> np.ndarray:
    """x with each facility-power column P[s,t] set from its defining row (P = the rest of the
    row's activity - rhs): a plan's tables hold no power column, and its electricity is a cost."""
    x = np.array(x, dtype=float)
    a = m.arrays()
    rows = [i for i, fam in enumerate(m.row_family) if fam == "power_def"]
    if not rows:
        return x
    pcols = set(m.P.values())
    for i in rows:
        lo, hi = a.starts[i], a.starts[i + 1]
        cols, vals = a.index[lo:hi], a.value[lo:hi]
        p = [j for j in cols.tolist() if j in pcols]
        if len(p) != 1:
            continue
        x[p[0]] = 0.0
        x[p[0]] = float(vals @ x[cols]) - m.row_rhs[i]
    return x


def replica_costs(cs: CandidateSet, plan: Plan) -> dict[tuple[str, str], float]:
    """(site, workload) -> what the workload's replicas there cost in the plan (GPU-hours x the
    tier's decision price per GPU-hour; owned GPUs cost 0), for every site where it has one."""
    from planner.plan.costing import gpu_usd_per_hour, offer_index, slot_month_hours

    res = cs.res
    hpm = res.scenario.policies.hours_per_month
    H = slot_month_hours(res)
    offers = offer_index(res)
    price: dict[tuple, float] = {}
    cost: dict[tuple[str, str], float] = defaultdict(float)
    for r in plan.replicas:
        key = (r["site"], r["offer"], r["tier"])
        p = price.get(key)
        if p is None:
            p = price[key] = gpu_usd_per_hour(offers[(r["site"], r["offer"])], r["tier"], hpm)
        cost[(r["site"], r["workload"])] += r["gpus"] * H[r["slot"]] * p
    return dict(cost)


def workload_order(cs: CandidateSet, plan: Plan) -> list[str]:
    """Workloads by what their replicas cost in the plan (:func:`replica_costs`), dearest first,
    then those that cost nothing (owned GPUs, no replicas) by id."""
    cost: dict[str, float] = {w.id: 0.0 for w in cs.res.scenario.workloads}
    for (_sid, w), usd in replica_costs(cs, plan).items():
        cost[w] += usd
    return sorted(cost, key=lambda w: (-cost[w], w))


def improve(cs: CandidateSet, plan: Plan, objective: float, deadline: float, opts: SolveOptions,
            on_better: Callable[[Plan, float], None] | None = None) -> tuple[Plan, float, LnsStats]:
    """Improve a checked plan of ``cs`` until ``deadline`` (time.monotonic()); returns the best
    plan, its objective and what was done. ``on_better(plan, objective)`` is called after each
    accepted group (the caller keeps it as its best checked plan).

    Each round is two passes: every workload alone with every candidate it has (dearest in the
    plan first; the others are background), and the groups around each site of
    :func:`neighbourhoods` (workloads that share instances, power or a site's opening move
    together; each round shifts which candidates fill a site's group); the single workloads
    first up to SINGLES_FIRST_MAX_WORKLOADS workloads, else the site groups first. The single
    workloads are tried again only after the plan changed. A neighbourhood whose model is not
    built within its own cap is skipped; the rounds end at the deadline, or after a round that
    improved nothing once three rounds are done.

    The objects alive at the start (candidates, the plan) are moved out of the cycle collector's
    sight while it runs (gc.freeze; restored at the end): each group builds a model, and every
    full collection those allocations trigger would traverse them again (groups in 60 s at
    5000x300: 130 against 122; in 30 s at 1000x100: 75 against 69). A caller that froze objects
    itself keeps them frozen (nothing is frozen or unfrozen here then)."""
    own = gc.get_freeze_count() == 0
    if own:
        gc.freeze()
    try:
        best, obj, stats = _improve(cs, plan, objective, deadline, opts, on_better)
        return best.canonical(), obj, stats
    finally:
        if own:
            gc.unfreeze()


def _improve(cs: CandidateSet, plan: Plan, objective: float, deadline: float, opts: SolveOptions,
             on_better: Callable[[Plan, float], None] | None) -> tuple[Plan, float, LnsStats]:
    """:func:`improve`'s rounds; the plan it returns is in merge order (improve sorts it)."""
    t0 = time.monotonic()
    stats = LnsStats(start_objective=objective, objective=objective)
    sub_opts = SolveOptions(**{**opts.__dict__, "heuristic": False, "node_limit": None, "write_lp": None})
    by_w = cs.by_workload()
    state = {"inc": Incumbent(plan), "objective": objective}

    def attempt(group: list[str], triples: list, lp_guided: bool, cap: float = GROUP_SECONDS) -> bool | None:
        """Solve one neighbourhood; True when it improved the plan, None when time is up."""
        left = deadline - time.monotonic()
        if left < 0.3:
            return None
        inc = state["inc"]
        gset = set(group)
        stop = time.monotonic() + min(cap, max(0.2, left - 0.1))
        sites = {c.site for c in triples}
        bg = inc.background(gset, sites)
        try:
            sm = build_model(_sub_cs(cs, triples, group), "replica", stop, workloads=group, background=bg)
            shm = HighsModel(sm)
            if lp_guided:
                # LP-guided: the group's MILP on the triples its LP relaxation uses (and those the
                # incumbent uses); HiGHS's root cut loop on the whole group's MILP was measured
                # not to end within 10 s where this restriction improved the plan by 3 %
                relaxed = lp_relaxation(sm, time.monotonic() + LP_SHARE * (stop - time.monotonic()), hm=shm)
                if relaxed is not None:
                    lp, _lp_obj = relaxed
                    used = {k[:3] for k, v in sm.r.items() if lp[v] > 1e-7}
                    used |= {(k[0], k[2], k[3]) for k, v in sm.y.items() if lp[v] > 1e-9}
                    used |= {(w, r["site"], r["offer"]) for w in group for r in inc.replicas(w)}
                    if len(used) < len(triples):
                        sm = build_model(_sub_cs(cs, [c for c in triples if c.key in used], group), "replica", stop,
                                         workloads=group, background=bg)
                        shm = HighsModel(sm)
        except BuildDeadline:  # this neighbourhood's own cap passed while building: skip it
            return None if deadline - time.monotonic() < 0.3 else False
        raw = start_from_plan(sm, shm, inc.part(gset, sites))
        before = shm.objective(with_power(sm, raw))  # the incumbent's own cost of this group
        x0 = shm.complete(raw, stop)
        stats.groups += 1
        if x0 is None:
            return False  # the incumbent does not map onto this group's model (should not happen)
        out = solve_highs(sm, sub_opts, stop, [("incumbent", x0)], None, None, shm, label="HiGHS (group)")
        if out.interrupted:
            raise KeyboardInterrupt
        if out.values is None or out.objective is None:
            return False
        gain = before - out.objective
        if gain <= GAIN_MIN * max(1.0, abs(state["objective"])) or not math.isfinite(gain):
            return False
        sub = plan_from_values(sm, shm, out.values)
        inc.replace(sub, gset, set(sm.n), set(sm.open))
        state["objective"] -= gain
        stats.improved += 1
        stats.history.append((time.monotonic() - t0, state["objective"]))
        if on_better is not None:
            on_better(inc.plan(), state["objective"])
        return True

    def retier_all() -> None:
        """The incumbent with its cloud instances re-tiered (retier.py: closed form, milliseconds)."""
        plan, gain = retier(cs, state["inc"].plan(), by_w)
        if gain > GAIN_MIN * max(1.0, abs(state["objective"])):
            state["inc"] = Incumbent(plan)
            state["objective"] -= gain
            stats.retiered += 1
            stats.retier_gain += gain
            stats.history.append((time.monotonic() - t0, state["objective"]))
            if on_better is not None:
                on_better(plan, state["objective"])

    retier_all()
    retiered_at = stats.improved  # stats.improved when the incumbent was last re-tiered
    round_no = 0
    singles_at = -1  # stats.improved when the last pass of single workloads began
    while time.monotonic() < deadline - 0.3:
        improved_this_round = False
        passes = []
        if stats.improved != singles_at:  # the plan changed since: each workload alone again
            singles_at = stats.improved
            passes.append(("singles", workload_order(cs, state["inc"].plan())))
        passes.append(("sites", neighbourhoods(cs, state["inc"].plan(), round_no, by_w)))
        if len(by_w) > SINGLES_FIRST_MAX_WORKLOADS:
            passes.reverse()
        for kind, items in passes:
            for item in items:
                if kind == "singles":
                    ok = attempt([item], by_w[item], lp_guided=False, cap=SINGLE_SECONDS)
                else:
                    centre, group = item
                    ok = attempt(group, allowed_triples(cs, state["inc"], group, centre, by_w), lp_guided=True)
                if ok is None:
                    if stats.improved != retiered_at:
                        retier_all()
                    stats.objective = state["objective"]
                    return state["inc"].plan(), state["objective"], stats
                improved_this_round |= ok
            if stats.improved != retiered_at:
                retiered_at = stats.improved
                retier_all()
        round_no += 1
        if not improved_this_round and round_no >= 3:
            break
    if stats.improved != retiered_at:
        retier_all()
    stats.objective = state["objective"]
    return state["inc"].plan(), state["objective"], stats
