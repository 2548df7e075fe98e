"""Re-tiering: the cheapest pricing tiers for a plan whose placements are fixed.

A constructive plan (planner/baselines.py) buys every cloud GPU on demand, and a
fix-and-optimise neighbourhood (lns.py) prices its own workloads' tiers with everyone else's
instances as they are. This pass keeps which sites and offers serve what (routes, serving,
replicas per workload, site, offer and slot up to the spot conversion below) and decides, per
cloud pool (site s, offer o; G GPUs per instance, p_res, p_od, p_spot USD per instance-hour,
h hours per month, H_t hours of slot t per month), how the instances holding the replicas are
bought.

**Reserved count R.** The pool's non-spot replicas hold g_t GPUs in slot t. Replicas are whole
and hold a power-of-two number of GPUs dividing G, so filling R reserved instances with the
largest replicas first packs them exactly: min(g_t, G R) GPUs on reserved, the rest on
ceil(. / G) on-demand instances. Without spot the pool costs

    cost(R) = R p_res h + sum_t max(0, N_t - R) p_od H_t,      N_t = ceil(g_t / G),

which is convex in R; its minimum R_0 over 0 .. max_t N_t is found by a scan.

**Spot on the on-demand rest**, for workloads no N+1 promise covers (no protected class,
min_sites <= 1: failover counts non-spot replicas only). Taking a on-demand replicas of
workload w off (s, o, t) leaves n = NS - a non-spot replicas; the capacity row
sum_k y_k / rho_k <= n + d (SP + b) needs b = max(0, ceil((L - n) / d) - SP) more spot replicas
(L = the load the serving rows put there, in replicas; d = spot derating), and the spot cap
S_w,t + m d b <= cap (T_w,t + m (d b - a)) must hold (m = the replica's class-mix rate, the
measure of policies.spot.max_share). Per slot the workloads are taken largest first, each with
the largest a its cap allows, and the prefix of conversions with the cheapest instances is kept.

**Per pool**, R is searched downwards from R_0 (spot may replace reserved capacity whose
instances are only partly needed: one L4 pool with flat demand is cheapest with 9 reserved + 2
spot instances, where reserved alone takes 11 and spot first 6 + 6), with spot on each R's
rest, until PATIENCE values of R in a row are no cheaper. Every option keeps the site's quota
per accelerator and slot (sum over its offers of G (reserved + on-demand_t + spot_t) <= quota);
a pool changes only when its option is cheaper than what it has.

Replica counts and non-spot totals stay unchanged except by the spot conversion, which keeps
every capacity row and the spot cap; N+1 failover, the N+1 and replica cuts and min_sites are
untouched. ``gain`` is the decrease of the objective's instance cost (plus carbon of cloud
replicas, when a carbon price is set), exactly: a test compares it with the verifier's cost
of the plan before and after. Declared sites (owned, bought, power) are left as they are.
"""

from __future__ import annotations

import math
from collections import ChainMap, defaultdict

from planner.derive.candidates import CandidateSet, protected_classes
from planner.derive.demand import mix_rate
from planner.derive.power import cloud_gpu_kw
from planner.plan.costing import offer_index, slot_month_hours
from planner.plan.plan import Plan
from planner.tolerance import TOL, ceil_tol

#: a pool changes when its new option saves more than this share of what it costs
GAIN_MIN = 1e-9
#: the search over the reserved count stops after this many values in a row that are no cheaper
#: than the best so far (the cost with spot on the rest is not convex in R: whole instances)
PATIENCE = 3


class _Option:
    """One way to buy a pool: its rows (key -> whole replicas), instance counts, cost and the
    spot-cap changes it makes."""

    __slots__ = ("reps", "inst", "cost", "dS", "dT")

    def __init__(self, reps: dict, inst: dict, cost: float, dS: dict, dT: dict):
        self.reps, self.inst, self.cost, self.dS, self.dT = reps, inst, cost, dS, dT


class _State:
    """The plan's replicas and instances as mutable counts, with what each row costs."""

    def __init__(self, cs: CandidateSet, plan: Plan, by_w: dict | None):
        res = cs.res
        self.cs, self.res = cs, res
        pol = res.scenario.policies
        self.hpm = pol.hours_per_month
        self.H = slot_month_hours(res)
        self.slots = list(self.H)
        self.offers = offer_index(res)
        self.d, self.cap = pol.spot.derating, pol.spot.max_share
        self.carbon = pol.carbon_usd_per_tonne
        # replicas: (w, s, o, tier, t) -> whole replicas; GPUs per replica of (w, s, o)
        self.reps: dict[tuple, int] = {}
        self.size: dict[tuple, float] = {}
        self.whole = True
        for r in plan.replicas:
            n = r["replicas"]
            if abs(n - round(n)) > TOL * max(1.0, abs(n)):
                self.whole = False  # pooled form: replicas are not whole, this pass does not apply
                return
            if round(n) <= 0:
                continue
            key = (r["workload"], r["site"], r["offer"], r["tier"], r["slot"])
            self.reps[key] = self.reps.get(key, 0) + int(round(n))
            self.size[key[:3]] = r["gpus"] / n
        self.inst: dict[tuple, int] = {}
        for i in plan.instances:
            key = (i["site"], i["offer"], i["tier"], i["slot"])
            self.inst[key] = self.inst.get(key, 0) + int(i["count"])
        by_w = by_w if by_w is not None else cs.by_workload()
        keys = {k[:3] for k in self.reps}
        self.cand = {}
        for w in {k[0] for k in keys}:
            for c in by_w.get(w, ()):
                if (w, c.site, c.offer.id) in keys:
                    self.cand[(w, c.site, c.offer.id)] = c
        # pools: cloud (site, offer) -> the keys of its replica rows
        self.pool_rows: dict[tuple, list] = defaultdict(list)
        for key in self.reps:
            if not res.sites[key[1]].declared:
                self.pool_rows[(key[1], key[2])].append(key)
        # quota use per (site, accelerator, slot)
        self.quota_use: dict[tuple, float] = defaultdict(float)
        for (sid, oid, _tau, t), n in self.inst.items():
            o = self.offers[(sid, oid)]
            if o.accelerator in res.sites[sid].quota_gpus:
                for tt in (self.slots if t is None else [t]):
                    self.quota_use[(sid, o.accelerator, tt)] += n * o.gpus
        self.allow_spot = True
        self._eligible: dict[str, bool] = {}
        self._mix: dict[tuple, float] = {}
        # spot cap sums per (w, t) of workloads that may convert: S (spot, derated), T (all, derated)
        self.S: dict[tuple, float] = defaultdict(float)
        self.T: dict[tuple, float] = defaultdict(float)
        for (w, sid, oid, tau, t), n in self.reps.items():
            if n and self.eligible(w):
                e = self.d if tau == "spot" else 1.0
                self.T[(w, t)] += self.mix((w, sid, oid), t) * e * n
                if tau == "spot":
                    self.S[(w, t)] += self.mix((w, sid, oid), t) * e * n
        # (w, s, o, t) -> replicas' worth of load the serving rows put there (sum_k y_k / rho_k)
        self.load: dict[tuple, float] = defaultdict(float)
        for sv in plan.serving:
            key3 = (sv["workload"], sv["site"], sv["offer"])
            c = self.cand.get(key3)
            if c is not None and c.rps[sv["class"]].rps > 0:
                self.load[(*key3, sv["slot"])] += sv["rps"] / c.rps[sv["class"]].rps

    # ------------------------------------------------------------------ facts
    def eligible(self, w: str) -> bool:
        """Whether w's on-demand replicas may become spot (no N+1 promise, min_sites <= 1)."""
        if w not in self._eligible:
            wk = self.res.scenario.workload(w)
            self._eligible[w] = wk.redundancy.min_sites <= 1 and not protected_classes(self.res, self.cs.loads, w)
        return self._eligible[w]

    def mix(self, key3: tuple, t: str) -> float:
        """Requests/s of w's slot-t class mix one replica of (w, s, o) carries (the spot cap's measure)."""
        if (key3, t) not in self._mix:
            c = self.cand[key3]
            wl = self.cs.loads[key3[0]]
            self._mix[(key3, t)] = mix_rate(wl, t, {k: e.rps for k, e in c.rps.items()}, wl.slot_mix(t))
        return self._mix[(key3, t)]

    def price(self, sid: str, oid: str, tau: str) -> float:
        """USD per instance-hour of a cloud tier."""
        o = self.offers[(sid, oid)]
        return {"reserved": o.reserved_usd_hr, "on_demand": o.ondemand_usd_hr, "spot": o.spot_usd_hr}[tau] or 0.0

    def replica_carbon_usd(self, key3: tuple, t: str) -> float:
        """The objective's carbon term of one replica of (w, s, o) in slot t (model.define_objective)."""
        if self.carbon <= 0:
            return 0.0
        c = self.cand[key3]
        site = self.res.sites[key3[1]]
        kw = cloud_gpu_kw(c.offer) * c.shape.gpus
        return kw * self.H[t] * (site.grid_gco2e_per_kwh or 0.0) / 1e6 * self.carbon

    def quota_ok(self, sid: str, oid: str, inst: dict[tuple, int]) -> bool:
        """Whether the pool holding ``inst`` ((tier, slot) -> count, every tier it has) instead of
        its instances now keeps the site's quota in every slot."""
        o = self.offers[(sid, oid)]
        quota = self.res.sites[sid].quota_gpus.get(o.accelerator)
        if quota is None:
            return True
        now = self._pool_inst(sid, oid)
        for t in self.slots:
            was = sum(n for k, n in now.items() if k[3] in (None, t))
            new = sum(n for (_tau, tt), n in inst.items() if tt in (None, t))
            if self.quota_use[(sid, o.accelerator, t)] + (new - was) * o.gpus > quota + TOL * max(1.0, quota):
                return False
        return True

    def room(self, sid: str, oid: str) -> dict[str, float]:
        """Instances the pool may hold per slot within its site's quota (inf without one)."""
        o = self.offers[(sid, oid)]
        quota = self.res.sites[sid].quota_gpus.get(o.accelerator)
        if quota is None:
            return {t: math.inf for t in self.slots}
        now = self._pool_inst(sid, oid)
        return {t: (quota - self.quota_use[(sid, o.accelerator, t)]) / o.gpus
                + sum(n for k, n in now.items() if k[3] in (None, t)) for t in self.slots}

    def _pool_inst(self, sid: str, oid: str) -> dict[tuple, int]:
        return {k: n for k, n in ((k, self.inst.get(k, 0)) for k in
                                  [(sid, oid, "reserved", None)] + [(sid, oid, tau, t) for tau in ("on_demand", "spot")
                                                                    for t in self.slots]) if n}

    def pool_cost(self, sid: str, oid: str, inst: dict[tuple, int]) -> float:
        total = 0.0
        for (tau, t), n in inst.items():
            total += n * self.price(sid, oid, tau) * (self.hpm if t is None else self.H[t])
        return total

    # ------------------------------------------------------------------ one pool
    def option(self, sid: str, oid: str, R: int, spot: bool) -> _Option | None:
        """The pool with R reserved instances (filled largest replica first), the rest on demand,
        and (``spot``) on-demand replicas of eligible workloads moved to spot where cheaper; None
        when it breaks the quota."""
        G = self.offers[(sid, oid)].gpus
        rows = [k for k in self.pool_rows[(sid, oid)] if self.reps.get(k, 0) > 0]
        reps = {k: self.reps[k] for k in rows if k[3] == "spot"}
        per_slot: dict[str, dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
        for k in rows:
            if k[3] in ("reserved", "on_demand"):
                per_slot[k[4]][k[:3]] += self.reps[k]
        for t, counts in per_slot.items():
            left = G * R
            for key3 in sorted(counts, key=lambda k3: (-self.size[k3], k3)):
                n, sz = counts[key3], self.size[key3]
                take = min(n, math.floor(left / sz + TOL)) if sz > 0 else 0
                left -= take * sz
                if take:
                    reps[(*key3, "reserved", t)] = take
                if n - take:
                    reps[(*key3, "on_demand", t)] = n - take
        dS: dict[tuple, float] = {}
        dT: dict[tuple, float] = {}
        inst: dict[tuple, int] = {("reserved", None): R} if R else {}
        carbon = 0.0
        p_od, p_sp = self.price(sid, oid, "on_demand"), self.price(sid, oid, "spot")
        room = self.room(sid, oid)
        for t in self.slots:
            gpus = {"reserved": 0.0, "on_demand": 0.0, "spot": 0.0}
            for k, n in reps.items():
                if k[4] == t:
                    gpus[k[3]] += n * self.size[k[:3]]
            if gpus["reserved"] > G * R + TOL * max(1.0, G * R):
                return None  # the fill was not exact (a replica size that does not divide G)
            od_n, sp_n = ceil_tol(gpus["on_demand"] / G), ceil_tol(gpus["spot"] / G)
            if spot and od_n:
                od_n, sp_n, c_t = self._spot_slot(sid, oid, t, reps, gpus, dS, dT, p_od, p_sp, room[t] - R)
                carbon += c_t
            if od_n:
                inst[("on_demand", t)] = od_n
            if sp_n:
                inst[("spot", t)] = sp_n
        if not self.quota_ok(sid, oid, inst):
            return None
        return _Option(reps, inst, self.pool_cost(sid, oid, inst) + carbon, dS, dT)

    def _spot_slot(self, sid, oid, t, reps, gpus, dS, dT, p_od, p_sp, room: float) -> tuple[int, int, float]:
        """Move on-demand replicas of eligible workloads in slot t to spot (module docstring),
        in ``reps``, keeping on-demand + spot instances within ``room`` (the quota's); returns
        the on-demand and spot instances and the carbon cost it adds."""
        G = self.offers[(sid, oid)].gpus
        d, cap = self.d, self.cap
        S, T = ChainMap(dS, self.S), ChainMap(dT, self.T)
        ods = sorted((k for k, n in reps.items() if k[3] == "on_demand" and k[4] == t and n > 0 and self.eligible(k[0])),
                     key=lambda k: (-reps[k] * self.size[k[:3]], k))
        od_g, sp_g = gpus["on_demand"], gpus["spot"]
        best = ((ceil_tol(od_g / G) * p_od + ceil_tol(sp_g / G) * p_sp) * self.H[t], 0,
                ceil_tol(od_g / G), ceil_tol(sp_g / G))
        moves = []  # (key, a, b, dS, dT)
        carbon = 0.0
        for k in ods:
            key3, wt = k[:3], (k[0], t)
            ns = reps.get((*key3, "reserved", t), 0) + reps[k]
            sp = reps.get((*key3, "spot", t), 0)
            L = self.load.get((*key3, t), 0.0)
            m = self.mix(key3, t)
            for a in range(reps[k], 0, -1):
                b = max(0, ceil_tol((L - (ns - a)) / d) - sp) if ns - a + TOL < L else 0
                ds, dt = m * d * b, m * (d * b - a)
                if S[wt] + ds <= cap * (T[wt] + dt) - TOL * max(1.0, T[wt]):
                    break
            else:
                continue
            S[wt] += ds
            T[wt] += dt
            od_g -= a * self.size[key3]
            sp_g += b * self.size[key3]
            carbon += (b - a) * self.replica_carbon_usd(key3, t)
            moves.append((k, a, b, ds, dt))
            od_n, sp_n = ceil_tol(od_g / G), ceil_tol(sp_g / G)
            cost = (od_n * p_od + sp_n * p_sp) * self.H[t] + carbon
            if cost < best[0] - GAIN_MIN * max(1.0, best[0]) and od_n + sp_n <= room + TOL:
                best = (cost, len(moves), od_n, sp_n)
        cost, keep, od_n, sp_n = best
        for k, _a, _b, ds, dt in moves[keep:]:  # undo the conversions past the best prefix
            S[(k[0], t)] -= ds
            T[(k[0], t)] -= dt
        for k, a, b, _ds, _dt in moves[:keep]:
            reps[k] -= a
            if not reps[k]:
                del reps[k]
            skey = (*k[:3], "spot", t)
            reps[skey] = reps.get(skey, 0) + b
        return od_n, sp_n, sum((b - a) * self.replica_carbon_usd(k[:3], t) for k, a, b, _s, _t in moves[:keep])

    def improve_pool(self, sid: str, oid: str) -> None:
        """The cheapest option of R (module docstring), kept when cheaper than the pool now."""
        rows = self.pool_rows[(sid, oid)]
        tiers = list(self.cand[rows[0][:3]].tiers) if rows else []
        if "on_demand" not in tiers:
            return  # nothing to move away from (reserved or spot only)
        spot = self.allow_spot and "spot" in tiers
        G = self.offers[(sid, oid)].gpus
        now = self._pool_inst(sid, oid)
        now_cost = self.pool_cost(sid, oid, {(k[2], k[3]): n for k, n in now.items()})
        best: _Option | None = None
        if "reserved" in tiers:
            g = {t: 0.0 for t in self.slots}
            for k in rows:
                if k[3] in ("reserved", "on_demand"):
                    g[k[4]] += self.reps.get(k, 0) * self.size[k[:3]]
            need = {t: ceil_tol(g[t] / G) for t in self.slots}
            p_res, p_od = self.price(sid, oid, "reserved") * self.hpm, self.price(sid, oid, "on_demand")
            r0 = min(range(max(need.values(), default=0) + 1),
                     key=lambda R: (R * p_res + sum(max(0, need[t] - R) * p_od * self.H[t] for t in self.slots), R))
            worse = 0
            for R in range(r0, -1, -1):
                opt = self.option(sid, oid, R, spot)
                if opt is None and best is None:
                    continue  # R reserved instances idle in some slot break the quota: fewer
                if opt is not None and (best is None or opt.cost < best.cost - GAIN_MIN * max(1.0, best.cost)):
                    best, worse = opt, 0
                else:
                    worse += 1
                    if worse >= (PATIENCE if spot else 1):
                        break
        else:
            best = self.option(sid, oid, 0, spot)
        if best is None or best.cost >= now_cost - GAIN_MIN * max(1.0, now_cost):
            return
        self.apply(sid, oid, best, now)

    def apply(self, sid: str, oid: str, opt: _Option, now: dict) -> None:
        o = self.offers[(sid, oid)]
        if o.accelerator in self.res.sites[sid].quota_gpus:
            for t in self.slots:
                was = sum(n for k, n in now.items() if k[3] in (None, t))
                new = sum(n for (_tau, tt), n in opt.inst.items() if tt in (None, t))
                self.quota_use[(sid, o.accelerator, t)] += (new - was) * o.gpus
        for k in now:
            del self.inst[k]
        for (tau, t), n in opt.inst.items():
            self.inst[(sid, oid, tau, t)] = n
        for k in self.pool_rows[(sid, oid)]:
            self.reps.pop(k, None)
        self.reps.update(opt.reps)
        self.pool_rows[(sid, oid)] = list(opt.reps)
        for key, v in opt.dS.items():
            self.S[key] = v
        for key, v in opt.dT.items():
            self.T[key] = v

    # ------------------------------------------------------------------ out
    def cost(self) -> float:
        """The objective's terms this pass can move: cloud instances, and carbon of cloud replicas."""
        total = 0.0
        for (sid, oid, tau, t), n in self.inst.items():
            if tau == "reserved":
                total += n * self.price(sid, oid, tau) * self.hpm
            elif tau in ("on_demand", "spot"):
                total += n * self.price(sid, oid, tau) * self.H[t]
        if self.carbon > 0:
            for (w, sid, oid, _tau, t), n in self.reps.items():
                if not self.res.sites[sid].declared:
                    total += n * self.replica_carbon_usd((w, sid, oid), t)
        return total

    def plan(self, old: Plan) -> Plan:
        out = Plan(
            instances=[{"site": k[0], "offer": k[1], "tier": k[2], "slot": k[3], "count": n}
                       for k, n in self.inst.items() if n > 0],
            replicas=[{"workload": k[0], "site": k[1], "offer": k[2], "tier": k[3], "slot": k[4],
                       "replicas": float(n), "gpus": float(n * self.size[k[:3]])}
                      for k, n in self.reps.items() if n > 0],
            serving=old.serving, routes=old.routes)
        out.open_sites = list(old.open_sites)
        return out  # rows in the pass's order (deterministic); result tables sort them


def retier(cs: CandidateSet, plan: Plan, by_w: dict | None = None, spot: bool = True) -> tuple[Plan, float]:
    """The plan with its cloud instances re-tiered (module docstring) and the objective's
    decrease (>= 0); the plan itself, gain 0, when nothing is cheaper or its replicas are not
    whole. ``spot=False`` leaves spot as it is (reserved and on-demand only)."""
    st = _State(cs, plan, by_w)
    if not st.whole or not st.reps:
        return plan, 0.0
    st.allow_spot = spot
    before = st.cost()
    for sid, oid in sorted(st.pool_rows):
        st.improve_pool(sid, oid)
    gain = before - st.cost()
    if not math.isfinite(gain) or gain <= GAIN_MIN * max(1.0, before):
        return plan, 0.0
    return st.plan(plan), gain
