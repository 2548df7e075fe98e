"""Independent checker: recompute every constraint and the cost of a plan from its decision
tables alone (instances, replicas, serving split, routes, open sites), never from solver values.

It rebuilds demand, latency, residency and throughput from the scenario and the catalogs and
imports nothing of the optimiser (no ``planner.optimise``, no PuLP); the failover LPs are its own,
solved with ``highspy``. Every comparison uses :mod:`planner.tolerance` (``TOL`` = 1e-9 relative):
a plan that needs more slack than that is not a plan.

Checks: whole instances and replicas, tiers each offer really has (baseline tiers for the whole
month, burst tiers per slot), inventory, replica shapes and GPUs, packing of replicas into
instances, open sites, route shares (sum to 1, residency, RTT SLO), served load = routed demand,
class-by-class capacity (spot derated), batch volume and window, quotas, power budgets, spot cap,
minimum sites, the exact N+1 failover promise, and the cost (vs the result's summary and, when
the carbon and latency weights are 0, vs the solver's objective).

Failover, the N+1 promise exactly. A load class k of w is protected when w is ``n_plus_1`` or
k is escalated from an ``n_plus_1`` workload; its failover RTT limit is the N+1 workload's
``redundancy.failover_network_rtt_ms``, else w's ``latency.network_rtt_ms`` (None: no limit; an
unknown RTT fails a limit). For every workload w with protected classes, every slot t with
protected load and every lost site L where w has replicas (any tier) in t::

    min  sum_{k,u} unserved[k,u]
    s.t. sum_s z[k,u,s] + unserved[k,u] = load[k,u,t]              every protected (k, u)
         sum_u z[k,u,s] = sum_o q[k,s,o]                           every (k, s)
         sum_k q[k,s,o] / rho[w,k,o] <= non-spot replicas[w,s,o,t] every (s, o)
         z, q, unserved >= 0;  z[.,.,L] = q[.,L,.] = 0

z exists only for sites s != L where residency of w allows u -> s, RTT(u, s) is within the
failover limit of (w, k), and w has non-spot replicas in t on an offer that runs k (rho > 0).
One HiGHS model per (w, t); each lost site only changes column bounds and re-solves warm.
The LP's answer is made exactly feasible before it is read (capacity rows scaled down where
HiGHS's own tolerance let them overrun), so a reported 0 is a routing that really exists.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from planner.derive.demand import LoadClass, build_loads, mix_rate
from planner.derive.serving import workload_rates
from planner.derive.topology import rtt
from planner.highs import new_highs
from planner.input.consistency import Offer, Resolved, residency_allows
from planner.plan.costing import cost_lines, decision_cost, offer_index, site_power_kw
from planner.plan.plan import PLAN_STATUSES, Plan, plan_from_result
from planner.tolerance import TOL, close, leq, whole

BASELINE_TIERS = ("owned", "bought", "reserved")


class _HasData(Protocol):
    data: dict


@dataclass
class VerifyReport:
    violations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: rows: workload, lost_site, slot, user_region, query_class (load class key), unserved_rps
    failover: list[dict] = field(default_factory=list)
    recomputed_cost: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict:
        return {"ok": self.ok, "violations": list(self.violations), "warnings": list(self.warnings),
                "recomputed_usd_per_month": float(self.recomputed_cost)}


# ====================================================================== public API
def verify_result(res: Resolved, result: _HasData) -> VerifyReport:
    """Verify a result.json 1.1 (a ``PlacementResult`` or anything with ``.data``). A result
    of another schema raises ValueError (from :func:`plan_from_result`)."""
    d = result.data
    plan = plan_from_result(d)
    solve = d.get("solve") or {}
    scenario_hash = (d.get("scenario") or {}).get("content_hash")
    status = solve.get("status")
    if status not in PLAN_STATUSES:
        rep = VerifyReport()
        _hash_warning(res, scenario_hash, rep)
        rep.violations.append(f"result has status {status!r}, not a plan")
        return rep
    return verify_plan(res, plan, reported_total=(d.get("summary") or {}).get("total_usd_per_month"),
                       reported_objective=solve.get("objective"), scenario_hash=scenario_hash)


def verify_plan(res: Resolved, plan: Plan, reported_total: float | None = None,
                reported_objective: float | None = None, scenario_hash: str | None = None) -> VerifyReport:
    """Check a Plan against the scenario alone; compare its recomputed cost with the reported
    total and (carbon and latency weights 0) with the solver's objective when given."""
    rep = VerifyReport()
    _hash_warning(res, scenario_hash, rep)
    if not plan.has_plan:
        rep.violations.append(f"plan has status {plan.status!r}, not a plan")
        return rep
    _Checker(res, plan, rep).run(reported_total, reported_objective)
    return rep


def _hash_warning(res: Resolved, scenario_hash: str | None, rep: VerifyReport) -> None:
    if scenario_hash is not None and scenario_hash != res.loaded.content_hash:
        rep.warnings.append("the scenario file changed since this result was made (content hash differs)")


# ====================================================================== helpers
def _num(x: Any) -> float | None:
    """x as a finite float, else None (missing, not a number, NaN, infinite)."""
    if isinstance(x, bool):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _g(x: float) -> str:
    return f"{x:.12g}"


def _new_highs():
    """A quiet HiGHS at the product's tolerance, without presolve (many tiny LPs re-solved from
    the previous basis)."""
    h = new_highs()
    h.setOptionValue("presolve", "off")
    h.setOptionValue("dual_feasibility_tolerance", TOL)
    return h


# ====================================================================== the checker
class _Checker:
    def __init__(self, res: Resolved, plan: Plan, rep: VerifyReport):
        s = res.scenario
        self.res = res
        self.s = s
        self.pol = s.policies
        self.plan = plan
        self.rep = rep
        self.v = rep.violations
        self.offers: dict[tuple[str, str], Offer] = offer_index(res)
        self.loads = build_loads(s, {u: r.utc_offset_hours for u, r in res.user_regions.items()})
        self.slots = [t.id for t in s.time_slots]
        self.slot_set = set(self.slots)
        self.hours = {t.id: t.hours for t in s.time_slots}
        self.wk = {w.id: w for w in s.workloads}
        self.classes = {w.id: {lc.key: lc for lc in self.loads[w.id].classes} for w in s.workloads}
        #: rows that are well-formed enough to price and to measure power on
        self.good = Plan(open_sites=list(plan.open_sites))
        self._shape: dict[tuple, Any] = {}
        self._rates: dict[tuple, dict] = {}
        self._rho: dict[tuple, float] = {}
        self._rtt: dict[tuple, float | None] = {}
        self._resid: dict[tuple, str | None] = {}
        self._replica_resid: dict[tuple, str | None] = {}
        self._users: dict[str, list[str]] = {}
        self._tiers: dict[tuple[str, str], tuple[str, ...]] = {}

    # ------------------------------------------------------------------ cached look-ups
    def shape(self, w, sid: str, oid: str):
        key = (w.id, sid, oid)
        if key not in self._shape:
            o = self.offers[(sid, oid)]
            got = workload_rates(self.res, w, self.loads[w.id].classes, o, self.res.sites[sid])
            self._shape[key] = None if got is None else got[0]
            self._rates[key] = {} if got is None else got[1]
        return self._shape[key]

    def rho(self, w, lc: LoadClass, sid: str, oid: str) -> float:
        """Requests/s one replica of w sustains for load class lc on offer oid at sid (0: cannot)."""
        key = (w.id, lc.key, sid, oid)
        if key not in self._rho:
            shape = self.shape(w, sid, oid)
            est = None if shape is None else self._rates[(w.id, sid, oid)].get(lc.key)
            self._rho[key] = est.rps if est is not None and est.rps > 0 else 0.0
        return self._rho[key]

    def rtt_ms(self, u: str, sid: str) -> float | None:
        key = (u, sid)
        if key not in self._rtt:
            self._rtt[key] = rtt(self.res, self.res.user_regions[u].point, self.res.sites[sid].point).rtt_ms
        return self._rtt[key]

    def residency(self, w, u: str | None, sid: str) -> str | None:
        key = (w.id, u, sid)
        if key not in self._resid:
            up = self.res.user_regions[u].point if u is not None else None
            self._resid[key] = residency_allows(w.residency, up, self.res.sites[sid].point)
        return self._resid[key]

    def within(self, u: str, sid: str, limit: float | None) -> bool:
        """RTT(u, sid) within limit (None: no limit; an unknown RTT fails a limit)."""
        if limit is None:
            return True
        link = self.rtt_ms(u, sid)
        return link is not None and leq(link, limit)

    def tiers_of(self, sid: str, o: Offer) -> tuple[str, ...]:
        key = (sid, o.id)
        if key not in self._tiers:
            self._tiers[key] = self._offer_tiers(sid, o)
        return self._tiers[key]

    def _offer_tiers(self, sid: str, o: Offer) -> tuple[str, ...]:
        if self.res.sites[sid].declared:
            return tuple(t for t, n in (("owned", o.owned), ("bought", o.buyable)) if n > 0)
        allowed = set(self.pol.pricing_models)
        price = {"reserved": o.reserved_usd_hr, "on_demand": o.ondemand_usd_hr, "spot": o.spot_usd_hr}
        return tuple(t for t in ("reserved", "on_demand", "spot") if t in allowed and price[t] is not None)

    def users_of(self, w) -> list[str]:
        got = self._users.get(w.id)
        if got is None:
            got = self._users[w.id] = sorted({d.user_region for d in w.demand} | set(self.loads[w.id].user_regions()))
        return got

    # ------------------------------------------------------------------ run
    def run(self, reported_total: float | None, reported_objective: float | None) -> None:
        self.check_instances()
        self.check_replicas()
        self.check_open_sites()
        self.check_routes()
        self.check_serving()
        self.check_quota_power()
        self.check_spot_min_sites()
        self.check_failover()
        self.check_cost(reported_total, reported_objective)

    # ------------------------------------------------------------------ instances
    def check_instances(self) -> None:
        v = self.v
        self.inst: dict[tuple, float] = defaultdict(float)  # (site, offer, tier, slot) -> count
        held: dict[tuple, float] = defaultdict(float)  # (site, offer, tier) baseline counts
        for i in self.plan.instances:
            sid, oid, tier, slot = i.get("site"), i.get("offer"), i.get("tier"), i.get("slot")
            o = self.offers.get((sid, oid))
            if o is None:
                v.append(f"instances: unknown offer {oid} at site {sid}")
                continue
            label = f"{oid} {tier}" + (f" slot {slot}" if slot is not None else "") + f" at {sid}"
            n = _num(i.get("count"))
            if sid in self.res.compute_excluded and (n is None or n > 0):
                v.append(f"instances: {label}: {self.res.compute_excluded[sid]}")
            if n is None:
                v.append(f"instances: {label} has count {i.get('count')!r}, not a finite number")
                continue
            if not leq(0.0, n):
                v.append(f"instances: {label} count {_g(n)} is negative")
            if not whole(n):
                v.append(f"instances: {label} count {_g(n)} is not a whole number")
            if tier not in self.tiers_of(sid, o):
                v.append(f"instances: {oid} at {sid} cannot be had as {tier} (no price, no inventory or not allowed)")
                continue
            if tier in BASELINE_TIERS:
                if slot is not None:
                    v.append(f"instances: baseline tier {tier} of {oid} at {sid} is for the whole month, not slot {slot}")
                    continue
                held[(sid, oid, tier)] += n
            elif slot not in self.slot_set:
                v.append(f"instances: burst tier {tier} of {oid} at {sid} needs a slot of the scenario, not {slot!r}")
                continue
            for t in (self.slots if slot is None else [slot]):
                self.inst[(sid, oid, tier, t)] += n
            self.good.instances.append(i)
        for (sid, oid, tier), n in sorted(held.items()):
            o = self.offers[(sid, oid)]
            if tier == "owned" and not leq(n, o.owned):
                v.append(f"inventory: {sid} uses {_g(n)} owned {o.accelerator} GPUs, owns {o.owned}")
            if tier == "bought" and not leq(n, o.buyable):
                v.append(f"inventory: {sid} buys {_g(n)} {o.accelerator} GPUs, may buy {o.buyable}")

    # ------------------------------------------------------------------ replicas and packing
    def check_replicas(self) -> None:
        v = self.v
        d = self.pol.spot.derating
        packed: dict[tuple, float] = defaultdict(float)
        self.cap: dict[tuple, float] = defaultdict(float)  # (w, site, offer, slot) -> effective replicas
        self.ns: dict[tuple, dict] = defaultdict(lambda: defaultdict(float))  # (w, t) -> (site, offer) -> non-spot
        self.rep_sites: dict[tuple, set] = defaultdict(set)  # (w, t) -> sites with replicas (any tier)
        self.rep_rows: list[tuple] = []  # (w, site, offer, tier, slot, replicas)
        self.used_sites: dict[str, set] = defaultdict(set)
        for r in self.plan.replicas:
            w_id, sid, oid, tier, t = r.get("workload"), r.get("site"), r.get("offer"), r.get("tier"), r.get("slot")
            w = self.wk.get(w_id)
            o = self.offers.get((sid, oid))
            if w is None:
                v.append(f"placements: unknown workload {w_id}")
                continue
            if o is None:
                v.append(f"placements: unknown offer {oid} at site {sid}")
                continue
            if t not in self.slot_set:
                v.append(f"placements: {w_id} on {oid} at {sid}: unknown slot {t!r}")
                continue
            n, g = _num(r.get("replicas")), _num(r.get("gpus"))
            label = f"{w_id} on {oid} at {sid} ({tier}, {t})"
            if n is None or g is None:
                v.append(f"placements: {label}: replicas {r.get('replicas')!r} / gpus {r.get('gpus')!r} not finite")
                continue
            if not leq(0.0, n):
                v.append(f"placements: {label}: {_g(n)} replicas is negative")
            if not whole(n):
                v.append(f"placements: {label} has {_g(n)} replicas: not whole")
            if tier not in self.tiers_of(sid, o):
                v.append(f"placements: {label}: {oid} cannot be had as {tier}")
                continue
            shape = self.shape(w, sid, oid)
            if shape is None:
                v.append(f"placements: {w.model} does not fit {o.gpus:g} x {o.accelerator} ({oid} at {sid})")
                continue
            if not close(g, n * shape.gpus):
                v.append(f"placements: {label}: {_g(g)} GPUs for {_g(n)} replicas of {shape.gpus:g} GPUs")
            if not leq(n, 0.0):
                self._replica_residency(w, sid)
                self.rep_sites[(w_id, t)].add(sid)
                self.used_sites[w_id].add(sid)
            packed[(sid, oid, tier, t)] += n * shape.gpus
            self.cap[(w_id, sid, oid, t)] += n * (d if tier == "spot" else 1.0)
            if tier != "spot":
                self.ns[(w_id, t)][(sid, oid)] += n
            self.rep_rows.append((w, sid, oid, tier, t, n))
            self.good.replicas.append(r)
        for key in sorted(packed, key=lambda k: tuple(str(p) for p in k)):
            sid, oid, tier, t = key
            have = self.inst.get(key, 0.0) * self.offers[(sid, oid)].gpus
            if not leq(packed[key], have):
                v.append(f"packing: {oid} {tier} at {sid} slot {t} holds {_g(packed[key])} GPUs of replicas in "
                         f"{_g(have)} GPUs of instances")

    def _replica_residency(self, w, sid: str) -> None:
        key = (w.id, sid)
        if key in self._replica_resid:
            return
        if w.is_batch:
            why = self.residency(w, None, sid)
        else:
            users = self.users_of(w)
            whys = [self.residency(w, u, sid) for u in users]
            why = None if not users or any(x is None for x in whys) else whys[0]
        self._replica_resid[key] = why
        if why is not None:
            self.v.append(f"residency: {w.id} has replicas at {sid}, where none of its users may be served: {why}")

    # ------------------------------------------------------------------ open sites
    def check_open_sites(self) -> None:
        busy = {sid for (sid, _o, _tau, _t), n in self.inst.items() if not leq(n, 0.0)}
        busy |= {sid for sites in self.used_sites.values() for sid in sites}
        opened = set(self.plan.open_sites)
        for sid in sorted(busy):
            if self.res.sites[sid].declared and sid not in opened:
                self.v.append(f"open_sites: declared site {sid} holds instances or replicas but is not open")
        for sid in sorted(opened):
            if sid not in self.res.sites:
                self.v.append(f"open_sites: unknown site {sid}")

    # ------------------------------------------------------------------ routes
    def check_routes(self) -> None:
        v = self.v
        self.share: dict[tuple, float] = defaultdict(float)  # (w, u, site, t)
        routed: dict[tuple, float] = defaultdict(float)  # (w, u, t)
        self.routed_sites: dict[tuple, set] = defaultdict(set)  # (w, t) -> sites
        for r in self.plan.routes:
            w_id, u, sid, t = r.get("workload"), r.get("user_region"), r.get("site"), r.get("slot")
            w = self.wk.get(w_id)
            if w is None or u not in self.res.user_regions or sid not in self.res.sites or t not in self.slot_set:
                v.append(f"routes: unknown workload, user region, site or slot in {r}")
                continue
            x = _num(r.get("share"))
            if x is None:
                v.append(f"routes: {w_id} {u} -> {sid} slot {t}: share {r.get('share')!r} is not a finite number")
                continue
            if w.is_batch:
                v.append(f"routes: batch workload {w_id} has no users to route ({u} -> {sid})")
                continue
            if not (leq(0.0, x) and leq(x, 1.0)):
                v.append(f"routes: {w_id} {u} -> {sid} slot {t}: share {_g(x)} is not in [0, 1]")
            if not leq(x, 0.0):
                if u not in self.users_of(w):
                    v.append(f"routes: {w_id} has no demand from {u}, yet routes it to {sid}")
                why = self.residency(w, u, sid)
                if why is not None:
                    v.append(f"residency: {w_id} users in {u} served at {sid}: {why}")
                slo = w.latency.network_rtt_ms
                if not self.within(u, sid, slo):
                    v.append(f"latency: {w_id} users in {u} -> {sid} RTT {self.rtt_ms(u, sid)} ms > SLO {slo} ms")
                self.routed_sites[(w_id, t)].add(sid)
            self.share[(w_id, u, sid, t)] += x
            routed[(w_id, u, t)] += x
            self.good.routes.append(r)
        for w in self.s.workloads:
            if w.is_batch:
                continue
            for u in self.users_of(w):
                for t in self.slots:
                    tot = routed.get((w.id, u, t), 0.0)
                    if not close(tot, 1.0):
                        v.append(f"routes: {w.id} traffic from {u} in slot {t} is routed {_g(tot)}, not 1")

    # ------------------------------------------------------------------ serving and capacity
    def check_serving(self) -> None:
        v = self.v
        served: dict[tuple, float] = defaultdict(float)  # (w, k, site, t)
        use: dict[tuple, float] = defaultdict(float)  # (w, site, offer, t) -> replica-time
        for sv in self.plan.serving:
            w_id, k, sid, oid, t = sv.get("workload"), sv.get("class"), sv.get("site"), sv.get("offer"), sv.get("slot")
            w = self.wk.get(w_id)
            if w is None:
                v.append(f"serving: unknown workload {w_id}")
                continue
            lc = self.classes[w_id].get(k)
            if lc is None:
                v.append(f"serving: {w_id} has no load class {k}")
                continue
            if (sid, oid) not in self.offers or t not in self.slot_set:
                v.append(f"serving: unknown offer, site or slot in {sv}")
                continue
            x = _num(sv.get("rps"))
            if x is None:
                v.append(f"serving: {w_id} class {k} on {oid} at {sid} slot {t}: rps {sv.get('rps')!r} not finite")
                continue
            if not leq(0.0, x):
                v.append(f"serving: {w_id} class {k} on {oid} at {sid} slot {t}: {_g(x)} rps is negative")
            served[(w_id, k, sid, t)] += x
            self.good.serving.append(sv)  # batch data egress is priced by the work done at each site
            if leq(x, 0.0):
                continue
            if self.shape(w, sid, oid) is None:
                v.append(f"serving: {w_id} class {k} served on {oid} at {sid}, where {w.model} does not fit")
                continue
            rho = self.rho(w, lc, sid, oid)
            if rho <= 0:
                v.append(f"serving: {w_id} class {k} cannot run on {self.offers[(sid, oid)].accelerator} ({oid} at "
                         f"{sid}), yet {_g(x)} rps are served there in slot {t}")
                continue
            use[(w_id, sid, oid, t)] += x / rho
        for key in sorted(use):
            have = self.cap.get(key, 0.0)
            if not leq(use[key], have):
                w_id, sid, oid, t = key
                v.append(f"capacity: {w_id} on {oid} at {sid} slot {t} needs {_g(use[key])} replicas, has {_g(have)}")
        by_w: dict[str, list] = defaultdict(list)
        for (w_id, k, sid, t), x in served.items():
            by_w[w_id].append((k, sid, t, x))
        for w in self.s.workloads:
            rows = by_w.get(w.id, [])
            if w.is_batch:
                self._check_batch(w, rows)
            else:
                self._check_routed_demand(w, served, rows)

    def _check_routed_demand(self, w, served: dict, rows: list) -> None:
        wl = self.loads[w.id]
        users = self.users_of(w)
        sites_served: dict[tuple, set] = defaultdict(set)
        for k, sid, t, _x in rows:
            sites_served[(k, t)].add(sid)
        for lc in wl.classes:
            for t in self.slots:
                total = sum(wl.peak_rps.get((lc.key, u, t), 0.0) for u in users)
                for sid in sorted(sites_served.get((lc.key, t), set()) | self.routed_sites.get((w.id, t), set())):
                    want = sum(wl.peak_rps.get((lc.key, u, t), 0.0) * self.share.get((w.id, u, sid, t), 0.0)
                               for u in users)
                    got = served.get((w.id, lc.key, sid, t), 0.0)
                    if not close(got, want, total):
                        self.v.append(f"serving: {w.id} class {lc.key} at {sid} slot {t} serves {_g(got)} rps, "
                                      f"routed demand is {_g(want)}")

    def _check_batch(self, w, rows: list) -> None:
        wl = self.loads[w.id]
        done: dict[str, float] = defaultdict(float)
        for k, _sid, t, x in rows:
            done[k] += x * 3600.0 * self.hours[t]
        for lc in wl.classes:
            need = wl.batch_requests_per_day[lc.key]
            if not close(done[lc.key], need):
                self.v.append(f"batch: {w.id} class {lc.key} does {_g(done[lc.key])} requests/day, needs {_g(need)}")
        outside = sorted({t for _k, _sid, t, x in rows if t not in wl.batch_slots and not leq(x, 0.0)})
        if outside:
            self.v.append(f"batch: {w.id} runs outside its window in slots {outside}")
        for sid in sorted({sid for _k, sid, _t, x in rows if not leq(x, 0.0)}):
            why = self.residency(w, None, sid)
            if why:
                self.v.append(f"residency: batch {w.id} runs at {sid}: {why}")

    # ------------------------------------------------------------------ quotas and power
    def check_quota_power(self) -> None:
        use: dict[tuple, float] = defaultdict(float)
        for (sid, oid, _tau, t), n in self.inst.items():
            o = self.offers[(sid, oid)]
            use[(sid, o.accelerator, t)] += n * o.gpus
        for (sid, acc, t), g in sorted(use.items()):
            quota = self.res.sites[sid].quota_gpus.get(acc)
            if quota is not None and not leq(g, quota):
                self.v.append(f"quota: {sid} uses {_g(g)} {acc} GPUs in slot {t}, quota {quota}")
        for (sid, t), kw in sorted(site_power_kw(self.res, self.good, self.offers).items()):
            budget = self.res.sites[sid].power_budget_kw
            if budget is not None and not leq(kw, budget):
                self.v.append(f"power: {sid} draws {kw:.6f} kW in slot {t}, budget {budget:g} kW")

    # ------------------------------------------------------------------ spot cap, min sites
    def _mix_rps(self, w, sid: str, oid: str, t: str) -> float:
        """Requests/s of w's slot-t class mix one replica carries (the measure of the spot cap),
        with this checker's own rates."""
        wl = self.loads[w.id]
        return mix_rate(wl, t, {lc.key: self.rho(w, lc, sid, oid) for lc in wl.classes})

    def check_spot_min_sites(self) -> None:
        pol = self.pol.spot
        spot: dict[tuple, float] = defaultdict(float)
        total: dict[tuple, float] = defaultdict(float)
        for w, sid, oid, tier, t, n in self.rep_rows:
            mix = self._mix_rps(w, sid, oid, t)
            eff = pol.derating if tier == "spot" else 1.0
            total[(w.id, t)] += mix * eff * n
            if tier == "spot":
                spot[(w.id, t)] += mix * eff * n
        for key in sorted(spot):
            if not leq(spot[key], pol.max_share * total[key], total[key]):
                self.v.append(f"spot: {key[0]} slot {key[1]} has {_g(spot[key])} of {_g(total[key])} rps on spot, "
                              f"cap {pol.max_share:.0%}")
        for w in self.s.workloads:
            n_sites = len(self.used_sites.get(w.id, set()))
            if w.redundancy.min_sites > 1 and n_sites < w.redundancy.min_sites:
                self.v.append(f"min_sites: {w.id} runs at {n_sites} sites, needs {w.redundancy.min_sites}")

    # ------------------------------------------------------------------ failover (N+1)
    def protected(self, w, lc: LoadClass) -> bool:
        return w.redundancy.mode == "n_plus_1" or self.wk[lc.origin].redundancy.mode == "n_plus_1"

    def failover_limit(self, w, lc: LoadClass) -> float | None:
        origin = self.wk[lc.origin]
        limit = None
        if w.redundancy.mode == "n_plus_1":
            limit = w.redundancy.failover_network_rtt_ms
        elif origin.redundancy.mode == "n_plus_1":
            limit = origin.redundancy.failover_network_rtt_ms
        return limit if limit is not None else w.latency.network_rtt_ms

    def check_failover(self) -> None:
        rows: list[dict] = []
        problems: list[tuple] = []
        for w in self.s.workloads:
            prot = [lc for lc in self.loads[w.id].classes if self.protected(w, lc)]
            if not prot:
                continue
            keys = {lc.key for lc in prot}
            for t in self.slots:
                load = {(k, u): x for (k, u, tt), x in self.loads[w.id].peak_rps.items()
                        if tt == t and k in keys and x > 0}
                if not load:
                    continue
                sites = sorted(self.rep_sites.get((w.id, t), set()))
                if not sites:
                    self.v.append(f"n_plus_1: {w.id} has protected load in slot {t} "
                                  f"({_g(sum(load.values()))} rps) but no replicas at any site")
                    continue
                for row, why in _FailoverSlot(self, w, t, prot, load, sites).solve():
                    rows.append(row)
                    if why is not None:
                        problems.append((row, why))
        key = ("workload", "lost_site", "slot", "user_region", "query_class")
        rows.sort(key=lambda r: tuple(r[k] for k in key))
        self.rep.failover = rows
        problems.sort(key=lambda p: tuple(p[0][k] for k in key))
        for row, why in problems:
            self.v.append(f"n_plus_1: {row['workload']} losing {row['lost_site']} in slot {row['slot']} leaves "
                          f"{_g(row['unserved_rps'])} rps of class {row['query_class']} from {row['user_region']} "
                          f"unserved ({why})")

    # ------------------------------------------------------------------ cost
    def check_cost(self, reported_total: float | None, reported_objective: float | None) -> None:
        lines = cost_lines(self.res, self.loads, self.good)
        self.rep.recomputed_cost = cost = decision_cost(lines)
        total = _num(reported_total) if reported_total is not None else None
        if reported_total is not None and (total is None or not close(cost, total)):
            self.v.append(f"cost: recomputed {cost:,.6f} USD/month, result says {reported_total}")
        plain = self.pol.carbon_usd_per_tonne == 0 and self.pol.latency_usd_per_ms_per_rps == 0
        if reported_objective is not None and plain:
            obj = _num(reported_objective)
            if obj is None or not close(cost, obj):
                self.v.append(f"cost: recomputed {cost:,.6f} USD/month, solver objective {reported_objective}")


class _FailoverSlot:
    """The failover LP of one workload and slot; one re-solve per lost site (bounds only)."""

    def __init__(self, ck: _Checker, w, t: str, prot: list[LoadClass], load: dict, sites: list[str]):
        self.ck, self.w, self.t, self.load, self.sites = ck, w, t, load, sites
        self.by_key = {lc.key: lc for lc in prot}
        # surviving capacity candidates: non-spot replicas per (site, offer)
        self.R = {so: n for so, n in sorted(ck.ns.get((w.id, t), {}).items()) if not leq(n, 0.0)}
        cost: list[float] = []
        self.col_site: list[str | None] = []
        self.un: dict[tuple, int] = {}
        self.q: dict[tuple, int] = {}  # (k, s, o) -> col
        self.z: dict[tuple, int] = {}  # (k, u, s) -> col
        self.rho: dict[tuple, float] = {}

        def col(c: float, site: str | None) -> int:
            cost.append(c)
            self.col_site.append(site)
            return len(cost) - 1

        self.pairs = sorted(load)
        for ku in self.pairs:
            self.un[ku] = col(1.0, None)
        ks = sorted({k for k, _u in self.pairs})
        for (sid, oid) in self.R:
            for k in ks:
                r = ck.rho(w, self.by_key[k], sid, oid)
                if r > 0:
                    self.rho[(k, sid, oid)] = r
                    self.q[(k, sid, oid)] = col(0.0, sid)
        runs = {(k, sid) for (k, sid, _o) in self.q}
        self.limit = {k: ck.failover_limit(w, self.by_key[k]) for k in ks}
        for k, u in self.pairs:
            for sid in sorted({s for (s, _o) in self.R}):
                if (k, sid) in runs and ck.residency(w, u, sid) is None and ck.within(u, sid, self.limit[k]):
                    self.z[(k, u, sid)] = col(0.0, sid)
        self.ncol = len(cost)
        self.cost = np.array(cost, dtype=np.float64)
        self.h = None

    def _build(self) -> None:
        h = _new_highs()
        inf = h.getInfinity()
        n = self.ncol
        h.addCols(n, self.cost, np.zeros(n), np.full(n, inf), 0, np.zeros(0, dtype=np.int32),
                  np.zeros(0, dtype=np.int32), np.zeros(0))
        lo: list[float] = []
        up: list[float] = []
        starts: list[int] = []
        idx: list[int] = []
        val: list[float] = []

        def row(entries: list[tuple[int, float]], a: float, b: float) -> None:
            starts.append(len(idx))
            for j, c in entries:
                idx.append(j)
                val.append(c)
            lo.append(a)
            up.append(b)

        z_by_ku: dict[tuple, list] = defaultdict(list)
        z_by_ks: dict[tuple, list] = defaultdict(list)
        for (k, u, sid), j in self.z.items():
            z_by_ku[(k, u)].append(j)
            z_by_ks[(k, sid)].append(j)
        q_by_ks: dict[tuple, list] = defaultdict(list)
        q_by_so: dict[tuple, list] = defaultdict(list)
        for (k, sid, oid), j in self.q.items():
            q_by_ks[(k, sid)].append(j)
            q_by_so[(sid, oid)].append((k, j))
        for ku in self.pairs:
            row([(j, 1.0) for j in z_by_ku.get(ku, [])] + [(self.un[ku], 1.0)], self.load[ku], self.load[ku])
        for ks in sorted(q_by_ks):
            row([(j, 1.0) for j in z_by_ks.get(ks, [])] + [(j, -1.0) for j in q_by_ks[ks]], 0.0, 0.0)
        for so in sorted(q_by_so):
            # scaled to requests/s of the offer's fastest class: coefficients <= 1
            ref = max(self.rho[(k, *so)] for k, _j in q_by_so[so])
            row([(j, ref / self.rho[(k, *so)]) for k, j in q_by_so[so]], -inf, self.R[so] * ref)
        h.addRows(len(lo), np.array(lo), np.array(up), len(idx), np.array(starts, dtype=np.int32),
                  np.array(idx, dtype=np.int32), np.array(val))
        self.h = h
        self.inf = inf

    def _run(self) -> np.ndarray | None:
        import highspy

        h = self.h
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            h.clearSolver()
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return None
        return np.asarray(h.getSolution().col_value, dtype=np.float64)

    def _unserved(self, x: np.ndarray, lost: str) -> dict[tuple, float]:
        """Unserved load per (k, u) of an exactly feasible routing made from the LP's answer."""
        q = {key: max(0.0, float(x[j])) for key, j in self.q.items() if key[1] != lost}
        use: dict[tuple, float] = defaultdict(float)
        for (k, sid, oid), val in q.items():
            use[(sid, oid)] += val / self.rho[(k, sid, oid)]
        for (k, sid, oid), val in q.items():
            u_so, cap = use[(sid, oid)], self.R[(sid, oid)]
            if u_so > cap:
                q[(k, sid, oid)] = val * (cap / u_so)
        can: dict[tuple, float] = defaultdict(float)
        for (k, sid, _o), val in q.items():
            can[(k, sid)] += val
        z = {key: max(0.0, float(x[j])) for key, j in self.z.items() if key[2] != lost}
        sent: dict[tuple, float] = defaultdict(float)
        for (k, _u, sid), val in z.items():
            sent[(k, sid)] += val
        got: dict[tuple, float] = defaultdict(float)
        for (k, u, sid), val in z.items():
            tot = sent[(k, sid)]
            got[(k, u)] += val * (can[(k, sid)] / tot) if tot > can[(k, sid)] else val
        return {ku: max(0.0, self.load[ku] - min(self.load[ku], got[ku])) for ku in self.pairs}

    def solve(self):
        """(failover row, why or None) per lost site and protected (class, user region)."""
        out = []
        site_cols: dict[str, list[int]] = defaultdict(list)
        for j, sid in enumerate(self.col_site):
            if sid is not None:
                site_cols[sid].append(j)
        if self.z:
            self._build()
        prev: list[int] = []
        for lost in self.sites:
            if not self.z:
                unserved = {ku: self.load[ku] for ku in self.pairs}
                failed = False
            else:
                cols = site_cols.get(lost, [])
                if prev:
                    a = np.array(prev, dtype=np.int32)
                    self.h.changeColsBounds(len(a), a, np.zeros(len(a)), np.full(len(a), self.inf))
                if cols:
                    a = np.array(cols, dtype=np.int32)
                    self.h.changeColsBounds(len(a), a, np.zeros(len(a)), np.zeros(len(a)))
                prev = cols
                x = self._run()
                failed = x is None
                unserved = {ku: self.load[ku] for ku in self.pairs} if failed else self._unserved(x, lost)
            for ku in self.pairs:
                k, u = ku
                miss = unserved[ku]
                ok = leq(miss, 0.0, self.load[ku])
                row = {"workload": self.w.id, "lost_site": lost, "slot": self.t, "user_region": u, "query_class": k,
                       "unserved_rps": 0.0 if ok else float(miss)}
                out.append((row, None if ok else self._why(k, u, lost, failed)))
        return out

    def _why(self, k: str, u: str, lost: str, failed: bool) -> str:
        if failed:
            return "the failover LP did not solve; counted as unserved"
        if len(self.sites) < 2:
            return f"{self.w.id} has replicas only at {lost} in this slot"
        if not any(key[0] == k and key[1] == u and key[2] != lost for key in self.z):
            limit = self.limit[k]
            within = "" if limit is None else f" within {limit:g} ms"
            return (f"no surviving site with non-spot replicas that run {k} is allowed for {u}{within} "
                    "(residency, failover RTT)")
        return "the surviving non-spot replicas allowed for it are short"
