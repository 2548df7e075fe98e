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
from collections.abc import Sequence

import numpy as np

from planner.derive.candidates import Candidate, CandidateSet, protected_classes
from planner.derive.demand import response_gb
from planner.derive.power import gpu_kw_factor
from planner.gcpause import gc_paused
from planner.plan.costing import cost_lines, decision_cost, slot_month_hours
from planner.plan.plan import Plan, SolveRecord
from planner.tolerance import TOL, ceil_tol_array

METHODS = ("greedy", "greedy-spread", "cloud-on-demand")
BASE = ("owned", "bought", "reserved")
SPREAD_K = (2, 3, 4)


class NoOption(Exception):
    """A load that the method's rule cannot place."""

    def __init__(self, msg: str, structural: bool = False):
        super().__init__(msg)
        self.structural = structural
        self.workload: str | None = None  # set by _run: whose load it was


class _State:
    """Instances, GPUs in use, quotas and power of the plan under construction. The instances and
    GPUs of each pool (site, offer, tier) are arrays (a row per pool, a column per slot), so that
    a step's cost is computed for every option of a workload at once (:class:`_Options`)."""

    def __init__(self, cs: CandidateSet, method: str):
        self.cs = cs
        self.res = res = cs.res
        s = res.scenario
        self.method = method
        self.hpm = s.policies.hours_per_month
        self.slots = [t.id for t in s.time_slots]
        self.slot_index = {t: j for j, t in enumerate(self.slots)}
        self.H = slot_month_hours(res)
        self._tiers: dict[tuple, list[str]] = {}  # candidates alike share their tiers
        self.pool_index: dict[tuple, int] = {}  # (site, offer, tier) -> its row in the pool arrays
        pools: list[tuple[Candidate, str]] = []
        for c in cs.triples:
            for tier in self.tiers(c):
                if (c.site, c.offer.id, tier) not in self.pool_index:
                    self.pool_index[(c.site, c.offer.id, tier)] = len(pools)
                    pools.append((c, tier))
        self.base_inst = np.zeros(len(pools), dtype=np.int64)  # instances held all month (owned, bought, reserved)
        self.burst_inst = np.zeros((len(pools), len(self.slots)), dtype=np.int64)  # on demand, per slot
        self.gpus_used = np.zeros((len(pools), len(self.slots)))  # GPUs of replicas
        self.costs = _Costs(self, pools)
        self.closed = self.costs.declared.copy()  # declared sites not open yet: a step there adds the fixed cost
        self.site_pools: dict[str, list[int]] = defaultdict(list)
        for p, (c, _tier) in enumerate(pools):
            self.site_pools[c.site].append(p)
        self.reps: dict[tuple, int] = defaultdict(int)  # (w, site, offer, tier, slot) -> whole replicas
        self.serving: dict[tuple, float] = defaultdict(float)  # (w, class, site, offer, slot) -> rps
        self.routes: dict[tuple, float] = defaultdict(float)  # (w, user region, site, slot) -> share
        self.open: set[str] = set()
        self.quota_g: dict[tuple, float] = defaultdict(float)  # (site, accelerator, slot) -> GPUs of instances
        self.kw: dict[tuple, float] = defaultdict(float)  # (declared site, slot) -> facility kW

    def tiers(self, c: Candidate) -> list[str]:
        alike = (id(c.tiers), self.res.sites[c.site].declared)
        if alike not in self._tiers:
            if self.method == "cloud-on-demand":
                self._tiers[alike] = ["on_demand"] if "on_demand" in c.tiers and not alike[1] else []
            else:
                self._tiers[alike] = [t for t in ("owned", "bought", "reserved", "on_demand") if t in c.tiers]
        return self._tiers[alike]

    # ------------------------------------------------------------------ what a step costs
    def _fits(self, c: Candidate, tier: str, t: str, gpus: float, new: int) -> bool:
        """Inventory, quota (every slot a month-long instance is held) and power after the step."""
        o, sid = c.offer, c.site
        site = self.res.sites[sid]
        if tier == "owned" and self.base_inst[self.pool_index[(sid, o.id, tier)]] + new > o.owned:
            return False
        if tier == "bought" and self.base_inst[self.pool_index[(sid, o.id, tier)]] + new > o.buyable:
            return False
        quota = site.quota_gpus.get(o.accelerator)
        if quota is not None and new:
            for tt in (self.slots if tier in BASE else [t]):
                if self.quota_g[(sid, o.accelerator, tt)] + new * o.gpus > quota + TOL * max(1.0, quota):
                    return False
        if site.declared and site.power_budget_kw is not None:
            f = gpu_kw_factor(site, o)
            phi = site.idle_power_fraction
            for tt in self.slots:
                kw = self.kw[(sid, tt)] + f * phi * new * o.gpus + (f * (1 - phi) * gpus if tt == t else 0.0)
                if kw > site.power_budget_kw * (1 + TOL):
                    return False
        return True

    def _first_fit(self, opts: _Options, t: str, order, gpus, new) -> int | None:
        """The first option in ``order`` whose step keeps the limits."""
        for i in order.tolist():
            if self._fits(opts.cand[i], opts.tier[i], t, float(gpus[i]), int(new[i])):
                return i
        return None

    def cheapest_fit(self, opts: _Options, t: str, usd, idx, gpus, new) -> int | None:
        """The cheapest of options ``idx`` (ascending) whose step keeps the limits, ties by the
        options' order (site, offer, tier)."""
        return self._first_fit(opts, t, idx[np.argsort(usd[idx], kind="stable")], gpus, new)

    def _scan(self, opts: _Options, t: str, loads: dict[str, float], sites: set[str] | None,
              egress: np.ndarray | None):
        """Every option's step of carrying ``loads`` (class -> rps) in slot t: (USD/month with
        egress, fractional replicas, whole replicas and new instances added, GPUs of replicas
        added, options that may take it: at ``sites`` (None: any) and running every loaded class)."""
        j = self.slot_index[t]
        add = opts.replicas(loads)
        extra = np.maximum(0.0, ceil_tol_array(opts.need[:, j] + add) - opts.reps[:, j])
        usd, new, gpus = opts.costs.step(self, t, extra, opts.shape_gpus)
        if egress is not None:
            usd = usd + egress
        ok = ~np.isnan(add) & (True if sites is None else opts.site_mask(sites))
        return usd, add, extra, new, gpus, np.flatnonzero(ok)

    def best(self, opts: _Options, t: str, loads: dict[str, float], sites: set[str] | None,
             egress: np.ndarray | None = None) -> tuple | None:
        """The cheapest option at ``sites`` (None: any) that keeps the limits, ties by site, offer,
        tier (the options' order): (USD/month with egress, option, (fractional replicas, whole
        replicas, new instances) added)."""
        usd, add, extra, new, gpus, idx = self._scan(opts, t, loads, sites, egress)
        i = self.cheapest_fit(opts, t, usd, idx, gpus, new)
        return None if i is None else (float(usd[i]), i, (float(add[i]), int(extra[i]), int(new[i])))

    def cheapest_sites(self, opts: _Options, t: str, loads: dict[str, float], sites: set[str],
                       egress: np.ndarray, k: int) -> list[tuple[float, str]]:
        """The k cheapest of ``sites`` to carry ``loads`` alone, by (USD/month with egress of
        :meth:`best` at the site, site): sorted (USD/month, site), fewer when fewer sites have an
        option that keeps the limits. Sites are tried in order of their cheapest option, limits
        aside (a lower bound of what they cost); the scan stops at one that cannot beat the k-th."""
        usd, _add, _extra, new, gpus, idx = self._scan(opts, t, loads, sites, egress)
        order = idx[np.lexsort((usd[idx], opts.site_of[idx]))]  # by site, then cost, then the ties
        starts = np.flatnonzero(np.diff(opts.site_of[order], prepend=-1))
        stops = [*starts[1:].tolist(), len(order)]
        lows = usd[order[starts]]  # each site's cheapest option
        out: list[tuple[float, str]] = []
        for g in np.lexsort((opts.site_of[order[starts]], lows)).tolist():
            sid = opts.sites[opts.site_of[order[starts[g]]]]
            if len(out) >= k and (float(lows[g]), sid) > out[k - 1]:
                break
            i = self._first_fit(opts, t, order[starts[g]:stops[g]], gpus, new)
            if i is not None:
                out = sorted([*out, (float(usd[i]), sid)])
        return out[:k]

    def commit(self, opts: _Options, i: int, w: str, t: str, add: float, extra: int, new: int) -> None:
        c, tier, p, j = opts.cand[i], opts.tier[i], opts.costs.pool[i], self.slot_index[t]
        opts.need[i, j] += add
        opts.reps[i, j] += extra
        self.reps[(w, c.site, c.offer.id, tier, t)] += extra
        self.gpus_used[p, j] += extra * c.shape.gpus
        if tier in BASE:
            self.base_inst[p] += new
        else:
            self.burst_inst[p, j] += new
        o, site = c.offer, self.res.sites[c.site]
        for tt in (self.slots if tier in BASE else [t]):
            self.quota_g[(c.site, o.accelerator, tt)] += new * o.gpus
        if site.declared:
            f = gpu_kw_factor(site, o)
            phi = site.idle_power_fraction
            for tt in self.slots:
                self.kw[(c.site, tt)] += f * phi * new * o.gpus if tier in ("owned", "bought") else 0.0
            self.kw[(c.site, t)] += f * (1 - phi) * extra * c.shape.gpus
        if self.res.sites[c.site].declared and (extra or new):
            self.open.add(c.site)
            self.closed[self.site_pools[c.site]] = False

    def place(self, opts, w, t, loads, sites, egress=None, what: str = "") -> tuple[str, str]:
        """Put ``loads`` on the cheapest option; return its (site, offer)."""
        got = self.best(opts, t, loads, sites, egress)
        if got is None:
            raise NoOption(f"{self.method}: no option for {w} {what} in slot {t} within inventory, quotas and power")
        _usd, i, (add, extra, new) = got
        self.commit(opts, i, w, t, add, extra, new)
        return opts.cand[i].site, opts.cand[i].offer.id

    def serve(self, w: str, so: tuple[str, str], t: str, loads: dict[str, float], share: float = 1.0) -> None:
        """Record the served rps of a load placed on offer ``so`` = (site, offer) (its pool was
        sized for them when placed)."""
        for k, x in loads.items():
            if x > 0:
                self.serving[(w, k, so[0], so[1], t)] += x * share


class _Costs:
    """What a step costs at each of a list of pools (site, offer, tier): prices, power, opening."""

    def __init__(self, st: _State, pools: list[tuple[Candidate, str]]):
        rows = []
        for c, tier in pools:
            o, site = c.offer, st.res.sites[c.site]
            f = gpu_kw_factor(site, o) if site.declared else 0.0
            phi = site.idle_power_fraction
            # a new instance costs unit x price USD/month (on demand: per hour of the slot; bought: per GPU)
            unit, price = (o.gpus, o.buy_usd_per_gpu_month) if tier == "bought" else (1, c.unit_price(tier, st.hpm))
            rows.append((tier in BASE, o.gpus, unit, price, site.declared, f * (1 - phi), f * phi,
                         site.electricity_usd_per_kwh if site.declared else 0.0, site.fixed_usd_per_month or 0.0))
        cols = list(zip(*rows, strict=True)) if rows else [()] * 9
        self.pool = np.arange(len(pools))  # the rows of the state arrays
        self.base = np.array(cols[0], dtype=bool)  # held all month
        self.o_gpus, self.unit, self.price = (np.array(x, dtype=float) for x in cols[1:4])
        self.declared = np.array(cols[4], dtype=bool)
        # facility kW per GPU in use above idle, and per GPU of an instance held (declared sites)
        self.kw_busy, self.kw_idle, self.elec, self.fixed = (np.array(x, dtype=float) for x in cols[5:])

    def take(self, pool: np.ndarray) -> _Costs:
        """The costs at the pools ``pool`` (rows of these)."""
        out = object.__new__(_Costs)
        for name, x in vars(self).items():
            setattr(out, name, x[pool])
        return out

    def step(self, st: _State, t: str, extra: np.ndarray, shape_gpus: np.ndarray):
        """(marginal USD/month, new instances, GPUs added) of ``extra`` whole replicas of
        ``shape_gpus`` GPUs at each pool in slot t: new instances (reserved, owned and bought are
        held all month), the site's fixed cost if it opens, the electricity of the added GPUs
        (egress is added by the caller)."""
        j, H, pool = st.slot_index[t], st.H[t], self.pool
        gpus = extra * shape_gpus
        after = ceil_tol_array((st.gpus_used[pool, j] + gpus) / self.o_gpus)
        new = np.maximum(0.0, after - np.where(self.base, st.base_inst[pool], st.burst_inst[pool, j]))
        inst = new * self.unit * self.price
        usd = np.where(self.base, inst, inst * H)
        kwh = self.kw_busy * gpus * H + self.kw_idle * new * self.o_gpus * st.hpm
        usd = np.where(self.declared, usd + kwh * self.elec, usd)
        return np.where(st.closed[pool], usd + self.fixed, usd), new, gpus


class _Options:
    """The options (candidate, tier) of one workload, in the order of the ties (site, offer,
    tier), with the fractional and whole replicas each holds per slot so far."""

    def __init__(self, st: _State, cands: list[Candidate]):
        rows = sorted((((c.site, c.offer.id, tier), c, tier) for c in cands for tier in st.tiers(c)),
                      key=lambda r: r[0])  # stable: candidates alike (if any) keep their order
        self.cand = [c for _key, c, _tier in rows]
        self.tier = [tier for _key, _c, tier in rows]
        self.sites = sorted({c.site for c in self.cand})
        self.at = {sid: n for n, sid in enumerate(self.sites)}
        self.site_of = np.array([self.at[c.site] for c in self.cand], dtype=np.int64)
        self.costs = st.costs.take(np.array([st.pool_index[key] for key, _c, _tier in rows], dtype=np.int64))
        self.shape_gpus = np.array([c.shape.gpus for c in self.cand], dtype=float)
        # USD per GB of internet egress at each option's site
        self.egress_price = np.array([st.res.sites[sid].internet_egress_usd_per_gb for sid in self.sites],
                                     dtype=float)[self.site_of]
        self.rates: dict[str, np.ndarray] = {}  # class -> rps per replica of each option
        self.need = np.zeros((len(rows), len(st.slots)))
        self.reps = np.zeros((len(rows), len(st.slots)))

    def replicas(self, loads: dict[str, float]) -> np.ndarray:
        """Fractional replicas of each option that carry ``loads`` (class -> rps), summed class by
        class in their order; NaN where a loaded class cannot run."""
        add = np.zeros(len(self.cand))
        for k, x in loads.items():
            if x > 0:
                if k not in self.rates:
                    self.rates[k] = np.array([c.rps[k].rps for c in self.cand], dtype=float)
                r = self.rates[k]
                add = add + np.divide(x, r, out=np.full(len(r), np.nan), where=r > 0)
        return add

    def site_mask(self, sites: set[str] | frozenset[str]) -> np.ndarray:
        """Per option: its site is in ``sites``."""
        return np.array([sid in sites for sid in self.sites], dtype=bool)[self.site_of]


# ---------------------------------------------------------------------------- the rules
def _demand(cs: CandidateSet, w) -> float:
    wl = cs.loads[w.id]
    if w.is_batch:
        slots = cs.res.scenario.time_slots
        window_s = 3600.0 * sum(t.hours for t in slots if t.id in wl.batch_slots)
        return sum(wl.batch_requests_per_day.values()) / window_s if window_s else 0.0
    return max((wl.peak(t.id) for t in cs.res.scenario.time_slots), default=0.0)


@gc_paused
def build_plan(cs: CandidateSet, method: str, first: Sequence[str] = (), failed: list | None = None) -> Plan:
    """The baseline plan of ``method`` (see the module docstring) with its SolveRecord.

    The benchmark's baselines use the method's own order. ``first`` (the planner's repair,
    strategy._constructive_starts) places those workloads first, in that order, then the rest in
    the method's order; with ``failed``, the workload whose load found no option is appended."""
    if method not in METHODS:
        raise ValueError(f"baseline method must be one of {', '.join(METHODS)}, not {method!r}")
    t0 = time.monotonic()
    record = SolveRecord(status="feasible", solver=method, integrality="replica",
                         model_status=f"baseline heuristic ({method}); no bound", options={"method": method})
    st = _State(cs, method)
    try:
        _run(cs, st, list(first))
    except NoOption as exc:
        if failed is not None and exc.workload is not None:
            failed.append(exc.workload)
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


def _run(cs: CandidateSet, st: _State, first: list[str]) -> None:
    s = cs.res.scenario
    by_w = cs.by_workload()
    order = [s.workload(w) for w in first] + sorted((w for w in s.workloads if w.id not in set(first)),
                                                    key=lambda w: (-_demand(cs, w), w.id))
    for w in order:
        try:
            _place_workload(cs, st, by_w, w)
        except NoOption as exc:
            exc.workload = w.id
            raise


def _place_workload(cs: CandidateSet, st: _State, by_w: dict, w) -> None:
    """All of one workload's load by the method's rule (NoOption when a step has no option)."""
    res = cs.res
    s = res.scenario
    structural = st.method == "cloud-on-demand"
    opts = _Options(st, by_w[w.id])
    if not opts.cand:
        raise NoOption(f"{st.method}: workload {w.id} has no candidate (site, offer) this method may use",
                       structural)
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
                egress = _egress(cs, opts, w.id, u, t, allowed)
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


def _egress(cs: CandidateSet, opts: _Options, w: str, u: str, t: str, sites: set[str]) -> np.ndarray:
    """USD/month of the response egress of (w, u, t) from each option's site (0 outside ``sites``)."""
    gb = response_gb(cs.res, cs.loads, w, u, t)
    return np.where(opts.site_mask(sites), gb * opts.egress_price, 0.0)


def _failover_sites(cs: CandidateSet, w: str, u: str, plow: dict[str, float]) -> set[str]:
    """Sites allowed to serve every loaded protected class of (w, u) while another is lost."""
    out = None
    for k in plow:
        here = set(cs.failover_sites.get((w, k, u), []))
        out = here if out is None else out & here
    return out or set()


def _spread(cs, st: _State, opts: _Options, w: str, u: str, t: str, loads: dict, plow: dict, allowed: set, fo: set,
            egress: np.ndarray) -> set[str]:
    """Protected load of (u, t) over k sites: 1/k of the traffic each, capacity for 1/(k-1) of the
    protected load at each (plus its share of the unprotected classes)."""
    sites = sorted(allowed & fo)
    best = None
    for k in SPREAD_K:
        if len(sites) < k:
            break
        # rank sites by the cost of carrying 1/(k-1) of the load alone, pick the k cheapest
        per = {kk: x / (k - 1) if kk in plow else x / k for kk, x in loads.items()}
        ranked = st.cheapest_sites(opts, t, per, set(sites), egress, k)
        if len(ranked) < k:
            continue
        total = sum(usd for usd, _sid in ranked)
        if best is None or total < best[0] - 1e-9:
            best = (total, k, [sid for _usd, sid in ranked])
    if best is None:
        raise NoOption(f"{st.method}: {w} users in {u} cannot be spread over 2+ sites in slot {t}", False)
    _total, k, chosen = best
    per = {kk: x / (k - 1) if kk in plow else x / k for kk, x in loads.items()}
    for sid in chosen:
        so = st.place(opts, w, t, per, {sid}, egress, what=f"(spread {k} for {u})")
        st.serve(w, so, t, loads, 1.0 / k)
        st.routes[(w, u, sid, t)] += 1.0 / k
    return set(chosen)


def _min_sites(cs: CandidateSet, st: _State, opts: _Options, w, used: set[str]) -> None:
    """One replica at each next cheapest further site (ties by site, offer, tier) in w's peak slot."""
    wl = cs.loads[w.id]
    t = max(st.slots, key=lambda x: (wl.peak(x) if not w.is_batch else 0.0, x == (wl.batch_slots or [x])[0]))
    while len(used) < w.redundancy.min_sites:
        usd, new, gpus = opts.costs.step(st, t, np.ones(len(opts.cand)), opts.shape_gpus)
        idx = np.flatnonzero(~opts.site_mask(used))
        i = st.cheapest_fit(opts, t, usd, idx, gpus, new)
        if i is None:
            raise NoOption(f"{st.method}: {w.id} cannot reach min_sites {w.redundancy.min_sites}")
        st.commit(opts, i, w.id, t, 0.0, 1, int(new[i]))
        used.add(opts.cand[i].site)


def _plan(cs: CandidateSet, st: _State) -> Plan:
    """The Plan tables (whole-month instances with slot None)."""
    cand = {c.key: c for c in cs.triples}
    reps = [{"workload": w, "site": sid, "offer": oid, "tier": tau, "slot": t, "replicas": float(n),
             "gpus": float(n * cand[(w, sid, oid)].shape.gpus)}
            for (w, sid, oid, tau, t), n in sorted(st.reps.items()) if n > 0]
    pools = sorted(st.pool_index.items())
    instances = [{"site": sid, "offer": oid, "tier": tau, "slot": None, "count": int(st.base_inst[p])}
                 for (sid, oid, tau), p in pools if st.base_inst[p] > 0]
    instances += [{"site": sid, "offer": oid, "tier": tau, "slot": t, "count": int(st.burst_inst[p, j])}
                  for (sid, oid, tau), p in pools for j, t in enumerate(st.slots) if st.burst_inst[p, j] > 0]
    serving = [{"workload": w, "class": k, "site": sid, "offer": oid, "slot": t, "rps": x}
               for (w, k, sid, oid, t), x in sorted(st.serving.items()) if x > 0]
    routes = [{"workload": w, "user_region": u, "site": sid, "slot": t, "share": x}
              for (w, u, sid, t), x in sorted(st.routes.items()) if x > 0]
    return Plan(instances=instances, replicas=reps, serving=serving, routes=routes,
                open_sites=sorted(st.open)).canonical()
