"""Frozen baselines for the benchmark (issue 9): simple, honest plans the planner must beat.

They are not the planner's own start (``planner.optimise.heuristics``) and they do not change
when the engine does: their rules are fixed here so that "planner cost <= 0.8 x greedy" keeps a
meaning across versions. Each produces a :class:`planner.plan.plan.Plan` that the same independent
verifier checks (``api.baseline`` runs ``api.result_from_plan``). Methods:

- ``greedy``: workloads in decreasing peak demand (max over slots of the summed peak rps; batch:
  its constant rate), ties by id. Per slot, each user region's whole class mix (batch: the
  workload's constant rate in every window slot) goes to the single cheapest option (site,
  offer, tier) among the candidates (:mod:`planner.derive.candidates`: residency, RTT SLO,
  hardware fit) of any site kind and any non-spot tier (owned, bought, reserved, on-demand) that
  runs every loaded class and whose added instances keep inventory, GPU quotas and the site's
  power budget in every slot. "Cheapest" is the marginal USD/month of the step: new instances
  (reserved, owned and bought are held all month), the site's fixed cost if it opens, the
  electricity of the added GPUs and the response egress of the load. N+1: the same load (its
  protected classes) gets a second copy, as standby replicas (no traffic) at the next cheapest
  surviving site (another site, within the failover RTT limit and residency of every protected
  class) - dedicated capacity, so losing any one site leaves every protected (class, user
  region) a surviving copy; this passes the verifier's exact N+1 LP by construction (no extra
  standby was needed). Primaries of protected load are chosen among sites within the failover
  limit when there are any. ``min_sites``: one replica at each next cheapest further site.
- ``greedy-spread``: as greedy, but the protected load of a user region and slot is spread over
  k = 2..4 sites (the cheapest k allowed ones), 1/k of the traffic each, each holding capacity
  for 1/(k-1) of it, so any k-1 surviving sites carry it in full; k is the cheapest of the three.
- ``cloud-on-demand``: greedy on cloud sites and the on-demand tier only (a single-tier plan); its
  status is ``infeasible`` when some load has no on-demand cloud candidate at all, ``no_plan``
  when the rule runs into quotas.

Spot is never used (its derated capacity does not count as N+1 standby and its share is capped),
so the spot rules hold trivially. A step with no option leaves the method without a plan
(``no_plan``: a greedy rule proves nothing about the scenario).
"""

from __future__ import annotations

import time
from collections import defaultdict

from planner.derive.candidates import Candidate, CandidateSet, protected_classes
from planner.derive.demand import hours_per_month_of_slot, response_gb
from planner.derive.power import gpu_kw_factor
from planner.plan.costing import cost_lines, decision_cost
from planner.plan.plan import Plan, SolveRecord
from planner.tolerance import TOL, ceil_tol

METHODS = ("greedy", "greedy-spread", "cloud-on-demand")
BASE = ("owned", "bought", "reserved")
SPREAD_K = (2, 3, 4)


class NoOption(Exception):
    """A load that the method's rule cannot place."""

    def __init__(self, msg: str, structural: bool = False):
        super().__init__(msg)
        self.structural = structural


class _Option:
    """A (candidate, tier) of one workload with the constants its step cost and limits read."""

    __slots__ = ("c", "tier", "site", "oid", "pool", "base", "rps", "shape_gpus", "o_gpus", "unit", "price",
                 "declared", "kw_busy", "kw_idle", "elec", "fixed")

    def __init__(self, c: Candidate, tier: str, site, hpm: float):
        o = c.offer
        self.c, self.tier, self.site, self.oid = c, tier, c.site, o.id
        self.pool = (c.site, o.id, tier)  # the instances it draws on (shared by every workload)
        self.base = tier in BASE  # held all month
        self.rps, self.shape_gpus, self.o_gpus = c.rps, c.shape.gpus, o.gpus
        # a new instance costs unit x price USD/month (on demand: per hour of the slot; bought: per GPU)
        self.unit = o.gpus if tier == "bought" else 1
        self.price = o.buy_usd_per_gpu_month if tier == "bought" else c.unit_price(tier, hpm)
        self.declared = site.declared
        f = gpu_kw_factor(site, o) if site.declared else 0.0
        self.kw_busy = f * (1 - site.idle_power_fraction)  # facility kW per GPU in use, above idle
        self.kw_idle = f * site.idle_power_fraction  # per GPU of an instance held
        self.elec = site.electricity_usd_per_kwh
        self.fixed = site.fixed_usd_per_month or 0.0


class _State:
    """Instances, GPUs in use, quotas and power of the plan under construction."""

    def __init__(self, cs: CandidateSet, method: str):
        self.cs = cs
        self.res = res = cs.res
        s = res.scenario
        self.method = method
        self.hpm = s.policies.hours_per_month
        self.slots = [t.id for t in s.time_slots]
        self.H = {t.id: hours_per_month_of_slot(t, self.hpm) for t in s.time_slots}
        self.base_inst: dict[tuple, int] = defaultdict(int)  # (site, offer, tier) -> instances, all month
        self.burst_inst: dict[tuple, int] = defaultdict(int)  # (site, offer, tier, slot)
        self.gpus_used: dict[tuple, float] = defaultdict(float)  # (site, offer, tier, slot) -> GPUs of replicas
        self.need: dict[tuple, float] = defaultdict(float)  # (w, site, offer, tier, slot) -> fractional replicas
        self.reps: dict[tuple, int] = defaultdict(int)  # (w, site, offer, tier, slot) -> whole replicas
        self.serving: dict[tuple, float] = defaultdict(float)  # (w, class, site, offer, slot) -> rps
        self.routes: dict[tuple, float] = defaultdict(float)  # (w, user region, site, slot) -> share
        self.open: set[str] = set()
        self.quota_g: dict[tuple, float] = defaultdict(float)  # (site, accelerator, slot) -> GPUs of instances
        self.kw: dict[tuple, float] = defaultdict(float)  # (declared site, slot) -> facility kW

    # ------------------------------------------------------------------ what an option costs
    def tiers(self, c: Candidate) -> list[str]:
        if self.method == "cloud-on-demand":
            return ["on_demand"] if "on_demand" in c.tiers and not self.res.sites[c.site].declared else []
        return [t for t in ("owned", "bought", "reserved", "on_demand") if t in c.tiers]

    def options(self, cands: list[Candidate]) -> dict[str, list[_Option]]:
        """The options of a workload's candidates by site, each site's in (offer, tier) order."""
        out: dict[str, list[_Option]] = defaultdict(list)
        for c in cands:
            site = self.res.sites[c.site]
            out[c.site].extend(_Option(c, tier, site, self.hpm) for tier in self.tiers(c))
        for ops in out.values():
            ops.sort(key=lambda op: (op.oid, op.tier))  # stable: candidates alike keep their order
        return dict(out)

    def _new_instances(self, op: _Option, t: str, gpus: float) -> int:
        after = ceil_tol((self.gpus_used.get(op.pool + (t,), 0.0) + gpus) / op.o_gpus)
        held = self.base_inst.get(op.pool, 0) if op.base else self.burst_inst.get(op.pool + (t,), 0)
        return max(0, after - held)

    def _fits(self, op: _Option, t: str, gpus: float, new: int) -> bool:
        """Inventory, quota (every slot a month-long instance is held) and power after the step."""
        o, sid, tier = op.c.offer, op.site, op.tier
        site = self.res.sites[sid]
        if tier == "owned" and self.base_inst[(sid, o.id, tier)] + new > o.owned:
            return False
        if tier == "bought" and self.base_inst[(sid, o.id, tier)] + new > o.buyable:
            return False
        quota = site.quota_gpus.get(o.accelerator)
        if quota is not None and new:
            for tt in (self.slots if op.base else [t]):
                if self.quota_g[(sid, o.accelerator, tt)] + new * o.gpus > quota + TOL * max(1.0, quota):
                    return False
        if site.declared and site.power_budget_kw is not None:
            for tt in self.slots:
                kw = self.kw[(sid, tt)] + op.kw_idle * new * o.gpus + (op.kw_busy * gpus if tt == t else 0.0)
                if kw > site.power_budget_kw * (1 + TOL):
                    return False
        return True

    def _marginal(self, op: _Option, t: str, gpus: float, new: int) -> float:
        """USD/month the step adds (instances, opening, electricity; egress is added by the caller)."""
        usd = new * op.unit * op.price if op.base else new * op.unit * op.price * self.H[t]
        if op.declared:
            kwh = op.kw_busy * gpus * self.H[t] + op.kw_idle * new * op.o_gpus * self.hpm
            usd += kwh * op.elec
            if op.site not in self.open:
                usd += op.fixed
        return usd

    def step(self, op: _Option, w: str, t: str, add: float) -> tuple[float, int, int]:
        """(marginal USD/month, whole replicas added, new instances) of adding ``add`` fractional
        replicas of w on ``op`` in slot t, limits aside."""
        key = (w, op.site, op.oid, op.tier, t)
        extra = max(0, ceil_tol(self.need.get(key, 0.0) + add) - self.reps.get(key, 0))
        gpus = extra * op.shape_gpus
        new = self._new_instances(op, t, gpus)
        return self._marginal(op, t, gpus, new), extra, new

    def commit(self, op: _Option, w: str, t: str, add: float, extra: int, new: int) -> None:
        c, tier = op.c, op.tier
        key = (w, c.site, c.offer.id, tier, t)
        self.need[key] += add
        self.reps[key] += extra
        self.gpus_used[(c.site, c.offer.id, tier, t)] += extra * c.shape.gpus
        if tier in BASE:
            self.base_inst[(c.site, c.offer.id, tier)] += new
        else:
            self.burst_inst[(c.site, c.offer.id, tier, t)] += new
        o, site = c.offer, self.res.sites[c.site]
        for tt in (self.slots if tier in BASE else [t]):
            self.quota_g[(c.site, o.accelerator, tt)] += new * o.gpus
        if site.declared:
            for tt in self.slots:
                self.kw[(c.site, tt)] += op.kw_idle * new * o.gpus if tier in ("owned", "bought") else 0.0
            self.kw[(c.site, t)] += op.kw_busy * extra * c.shape.gpus
        if self.res.sites[c.site].declared and (extra or new):
            self.open.add(c.site)

    def best(self, opts: dict[str, list[_Option]], w: str, t: str, loads: dict[str, float], sites: set[str] | None,
             egress: dict[str, float] | None = None) -> tuple | None:
        """The cheapest option among ``opts`` at ``sites`` (None: any) that keeps the limits, ties by
        site, offer, tier: (USD/month with egress, option, (fractional replicas, whole replicas, new
        instances) added). Options are scanned in the order of the ties, so the first strictly
        cheaper one wins; the limits are checked only for an option cheaper than the best so far."""
        adds: dict[int, float | None] = {}  # per rates table (candidates alike share one)
        out = None
        for sid in sorted(opts.keys() if sites is None else opts.keys() & sites):
            eg = (egress or {}).get(sid, 0.0)
            for op in opts[sid]:
                rid = id(op.rps)
                if rid not in adds:
                    adds[rid] = _replicas(op.rps, loads)
                add = adds[rid]
                if add is None:
                    continue
                usd, extra, new = self.step(op, w, t, add)
                usd += eg
                if out is not None and not usd < out[0]:
                    continue
                if self._fits(op, t, extra * op.shape_gpus, new):
                    out = (usd, op, (add, extra, new))
        return out

    def place(self, opts, w, t, loads, sites, egress=None, what: str = "") -> tuple[str, str]:
        """Put ``loads`` on the cheapest option; return its (site, offer)."""
        got = self.best(opts, w, t, loads, sites, egress)
        if got is None:
            raise NoOption(f"{self.method}: no option for {w} {what} in slot {t} within inventory, quotas and power")
        _usd, op, (add, extra, new) = got
        self.commit(op, w, t, add, extra, new)
        return op.site, op.oid

    def serve(self, w: str, so: tuple[str, str], t: str, loads: dict[str, float], share: float = 1.0) -> None:
        """Record the served rps of a load placed on offer ``so`` = (site, offer) (its pool was
        sized for them when placed)."""
        for k, x in loads.items():
            if x > 0:
                self.serving[(w, k, so[0], so[1], t)] += x * share


def _replicas(rps: dict, loads: dict[str, float]) -> float | None:
    """Fractional replicas that carry ``loads`` (class -> rps) at rates ``rps``; None when a loaded
    class cannot run there."""
    if any(x > 0 and rps[k].rps <= 0 for k, x in loads.items()):
        return None
    return sum(x / rps[k].rps for k, x in loads.items() if x > 0)


# ---------------------------------------------------------------------------- the rules
def _demand(cs: CandidateSet, w) -> float:
    wl = cs.loads[w.id]
    if w.is_batch:
        slots = cs.res.scenario.time_slots
        window_s = 3600.0 * sum(t.hours for t in slots if t.id in wl.batch_slots)
        return sum(wl.batch_requests_per_day.values()) / window_s if window_s else 0.0
    return max((wl.peak(t.id) for t in cs.res.scenario.time_slots), default=0.0)


def build_plan(cs: CandidateSet, method: str) -> Plan:
    """The baseline plan of ``method`` (see the module docstring) with its SolveRecord."""
    if method not in METHODS:
        raise ValueError(f"baseline method must be one of {', '.join(METHODS)}, not {method!r}")
    t0 = time.monotonic()
    record = SolveRecord(status="feasible", solver=method, integrality="replica",
                         model_status=f"baseline heuristic ({method}); no bound", options={"method": method})
    st = _State(cs, method)
    try:
        _run(cs, st)
    except NoOption as exc:
        record.status = "infeasible" if exc.structural else "no_plan"
        record.reasons = [str(exc)]
        record.time_s = time.monotonic() - t0
        record.times_s = {"baseline": record.time_s}
        return Plan(solve=record)
    plan = _plan(cs, st)
    record.objective = decision_cost(cost_lines(cs.res, cs.loads, plan))
    record.time_s = time.monotonic() - t0
    record.times_s = {"baseline": record.time_s}
    plan.solve = record
    return plan


def _run(cs: CandidateSet, st: _State) -> None:
    res = cs.res
    s = res.scenario
    by_w = cs.by_workload()
    order = sorted(s.workloads, key=lambda w: (-_demand(cs, w), w.id))
    structural = st.method == "cloud-on-demand"
    for w in order:
        cands = [c for c in by_w[w.id] if st.tiers(c)]
        if not cands:
            raise NoOption(f"{st.method}: workload {w.id} has no candidate (site, offer) this method may use",
                           structural)
        opts = st.options(cands)
        wl = cs.loads[w.id]
        prot = {lc.key for lc in protected_classes(res, cs.loads, w.id)}
        used: set[str] = set()
        if w.is_batch:
            window_s = 3600.0 * sum(t.hours for t in s.time_slots if t.id in wl.batch_slots)
            loads = {k: n / window_s for k, n in wl.batch_requests_per_day.items()}
            for t in wl.batch_slots:
                so = st.place(opts, w.id, t, loads, None, what="(batch)")
                st.serve(w.id, so, t, loads)
                used.add(so[0])
        else:
            for t in st.slots:
                for u in sorted(cs.routes[w.id]):
                    loads = {lc.key: wl.peak_rps.get((lc.key, u, t), 0.0) for lc in wl.classes}
                    allowed = set(cs.routes[w.id][u])
                    if not allowed:
                        raise NoOption(f"{st.method}: users of {w.id} in {u} reach no site", True)
                    egress = _egress(cs, st, w.id, u, t, allowed)
                    plow = {k: x for k, x in loads.items() if k in prot and x > 0}
                    if not any(x > 0 for x in loads.values()):
                        site = min(allowed & used) if allowed & used else min(allowed)
                        st.routes[(w.id, u, site, t)] += 1.0
                        continue
                    fo = _failover_sites(cs, w.id, u, plow)
                    if plow and st.method == "greedy-spread":
                        used |= _spread(cs, st, opts, w.id, u, t, loads, plow, allowed, fo, egress)
                        continue
                    primary_sites = (allowed & fo) if plow and allowed & fo else allowed
                    so = st.place(opts, w.id, t, loads, primary_sites, egress, what=f"(users in {u})")
                    site = so[0]
                    st.serve(w.id, so, t, loads)
                    st.routes[(w.id, u, site, t)] += 1.0
                    used.add(site)
                    if plow:
                        backup = fo - {site}
                        if not backup:
                            raise NoOption(f"{st.method}: {w.id} users in {u} have no second site for N+1", True)
                        used.add(st.place(opts, w.id, t, plow, backup, what=f"(N+1 copy for {u})")[0])
        if w.redundancy.min_sites > 1:
            _min_sites(cs, st, opts, w, used)


def _egress(cs: CandidateSet, st: _State, w: str, u: str, t: str, sites: set[str]) -> dict[str, float]:
    gb = response_gb(cs.res, cs.loads, w, u, t)
    return {sid: gb * cs.res.sites[sid].internet_egress_usd_per_gb for sid in sites}


def _failover_sites(cs: CandidateSet, w: str, u: str, plow: dict[str, float]) -> set[str]:
    """Sites allowed to serve every loaded protected class of (w, u) while another is lost."""
    out = None
    for k in plow:
        here = set(cs.failover_sites.get((w, k, u), []))
        out = here if out is None else out & here
    return out or set()


def _spread(cs, st: _State, opts: dict[str, list[_Option]], w: str, u: str, t: str, loads: dict, plow: dict, allowed: set, fo: set,
            egress: dict) -> set[str]:
    """Protected load of (u, t) over k sites: 1/k of the traffic each, capacity for 1/(k-1) of the
    protected load at each (plus its share of the unprotected classes)."""
    sites = sorted(allowed & fo)
    best = None
    for k in SPREAD_K:
        if len(sites) < k:
            break
        # rank sites by the cost of carrying 1/(k-1) of the load alone, pick the k cheapest
        per = {kk: x / (k - 1) if kk in plow else x / k for kk, x in loads.items()}
        ranked = []
        for sid in sites:
            got = st.best(opts, w, t, per, {sid}, egress)
            if got is not None:
                ranked.append((got[0], sid))
        if len(ranked) < k:
            continue
        ranked.sort()
        total = sum(r[0] for r in ranked[:k])
        if best is None or total < best[0] - 1e-9:
            best = (total, k, [sid for _r, sid in ranked[:k]])
    if best is None:
        raise NoOption(f"{st.method}: {w} users in {u} cannot be spread over 2+ sites in slot {t}", False)
    _total, k, chosen = best
    per = {kk: x / (k - 1) if kk in plow else x / k for kk, x in loads.items()}
    for sid in chosen:
        so = st.place(opts, w, t, per, {sid}, egress, what=f"(spread {k} for {u})")
        st.serve(w, so, t, loads, 1.0 / k)
        st.routes[(w, u, sid, t)] += 1.0 / k
    return set(chosen)


def _min_sites(cs: CandidateSet, st: _State, opts: dict[str, list[_Option]], w, used: set[str]) -> None:
    """One replica at each next cheapest further site (ties by site, offer, tier) in w's peak slot."""
    wl = cs.loads[w.id]
    t = max(st.slots, key=lambda x: (wl.peak(x) if not w.is_batch else 0.0, x == (wl.batch_slots or [x])[0]))
    while len(used) < w.redundancy.min_sites:
        got = None
        for sid in sorted(opts.keys() - used):
            for op in opts[sid]:
                new = st._new_instances(op, t, op.shape_gpus)
                if not st._fits(op, t, op.shape_gpus, new):
                    continue
                usd = st._marginal(op, t, op.shape_gpus, new)
                if got is None or usd < got[0]:
                    got = (usd, op, new)
        if got is None:
            raise NoOption(f"{st.method}: {w.id} cannot reach min_sites {w.redundancy.min_sites}")
        _usd, op, new = got
        st.commit(op, w.id, t, 0.0, 1, new)
        used.add(op.site)


def _plan(cs: CandidateSet, st: _State) -> Plan:
    """The Plan tables (whole-month instances with slot None)."""
    cand = {c.key: c for c in cs.triples}
    reps = [{"workload": w, "site": sid, "offer": oid, "tier": tau, "slot": t, "replicas": float(n),
             "gpus": float(n * cand[(w, sid, oid)].shape.gpus)}
            for (w, sid, oid, tau, t), n in sorted(st.reps.items()) if n > 0]
    instances = [{"site": sid, "offer": oid, "tier": tau, "slot": None, "count": n}
                 for (sid, oid, tau), n in sorted(st.base_inst.items()) if n > 0]
    instances += [{"site": sid, "offer": oid, "tier": tau, "slot": t, "count": n}
                  for (sid, oid, tau, t), n in sorted(st.burst_inst.items()) if n > 0]
    serving = [{"workload": w, "class": k, "site": sid, "offer": oid, "slot": t, "rps": x}
               for (w, k, sid, oid, t), x in sorted(st.serving.items()) if x > 0]
    routes = [{"workload": w, "user_region": u, "site": sid, "slot": t, "share": x}
              for (w, u, sid, t), x in sorted(st.routes.items()) if x > 0]
    return Plan(instances=instances, replicas=reps, serving=serving, routes=routes,
                open_sites=sorted(st.open)).canonical()
