"""Greedy construction of a plan, for a start at any size (no LP solve needed).

Per workload, every class is served on the offer with the lowest elastic price per request/s
(on-demand, else reserved); each user region's traffic goes, slot by slot, to the cheapest site
it may reach. Replicas are whole, instances hold them. N+1: for every site that may be lost,
the protected load is re-routed to surviving allowed offers and replicas are added where it does
not fit (see :func:`_failover`); min_sites: replicas at further sites. Batch work runs at a constant rate over its window. On-prem sites and
spot are left to the optimiser, so the plan respects power and inventory by construction;
quotas are tracked. The result is a full assignment of the model's variables (by name), checked
row by row by the solver stage before use.
"""

from __future__ import annotations

import math
from collections import defaultdict

from planner.derive.candidates import BASELINE_TIERS, Candidate, protected_classes
from planner.derive.power import gpu_kw_factor
from planner.optimise.model import PlacementModel, _mix_rps, class_mix
from planner.tolerance import ceil_tol


def _tier(c: Candidate) -> str | None:
    for tau in ("on_demand", "reserved"):
        if tau in c.tiers:
            return tau
    return None


def _mix_rate(m: PlacementModel, c: Candidate, t: str) -> float:
    """Requests/s of the slot's class mix one replica of c carries (the model's aggregate rate),
    0 when c cannot serve a class that has load: greedy puts a user region's whole mix on one offer."""
    mix = class_mix(m, c.workload, t)
    needed = [k for k, load in mix.items() if load > 0] or [lc.key for lc in m.cs.loads[c.workload].classes]
    if any(c.rps[k].rps <= 0 for k in needed):
        return 0.0
    return _mix_rps(m, c, t)


def greedy_start(m: PlacementModel, serve_owned: bool = False) -> dict[str, float] | None:
    """A full assignment of the model's columns, or None. ``serve_owned``: users are first served
    on owned GPUs of declared sites they may reach (sunk cost: the marginal cost is electricity
    and, if the site was closed, its fixed cost), within inventory and power; the rest as below."""
    cs = m.cs
    res = cs.res
    s = res.scenario
    hpm = s.policies.hours_per_month
    slot_h = {t.id: t.hours for t in s.time_slots}
    by_w = cs.by_workload()
    prot = {w.id: protected_classes(res, cs.loads, w.id) for w in s.workloads}
    declared = _Declared(m)
    reps: dict[tuple, int] = defaultdict(int)  # (w, s, o, tau, t) -> replicas
    gpus_used: dict[tuple, float] = defaultdict(float)  # (s, o, tau, t) -> GPUs of replicas, all workloads
    ys: dict[tuple, float] = {}
    xs: dict[tuple, float] = {}
    for w in s.workloads:
        wl = cs.loads[w.id]
        usable = [c for c in by_w[w.id] if c.site in res.sites and not res.sites[c.site].declared and _tier(c)]
        owned = [c for c in by_w[w.id] if serve_owned and res.sites[c.site].declared and "owned" in c.tiers]
        if not usable and not owned:
            return None
        # standby may also sit on owned / buyable GPUs of declared sites (within power and inventory)
        standby = usable + [c for c in by_w[w.id] if res.sites[c.site].declared and c.tiers]
        sites_of_w = sorted({c.site for c in by_w[w.id]})  # the sites that may be lost

        def price(c: Candidate, t: str) -> float:
            """USD per hour per request/s of the slot's class mix on this offer."""
            rate = _mix_rate(m, c, t)
            if rate <= 0:
                return math.inf
            tier = _tier(c)
            per_hour = c.unit_price(tier, hpm) / (hpm if tier == "reserved" else 1.0)
            return per_hour / max(c.shape.replicas_per_instance, 1) / rate

        for t in m.slots:
            if w.is_batch and t not in wl.batch_slots:
                continue
            ranked = sorted((c for c in usable if price(c, t) < math.inf), key=lambda c: (price(c, t), c.site, c.offer.id))
            on_owned = sorted((c for c in owned if _mix_rate(m, c, t) > 0),
                              key=lambda c: (gpu_kw_factor(res.sites[c.site], c.offer) * c.shape.gpus
                                             * res.sites[c.site].electricity_usd_per_kwh / _mix_rate(m, c, t),
                                             c.site, c.offer.id))
            if not ranked and not on_owned:
                return None
            need_f: dict[tuple, float] = defaultdict(float)  # (site, offer) -> fractional replicas
            rep_n: dict[tuple, int] = defaultdict(int)  # (site, offer) -> whole replicas

            def place(c: Candidate, t: str, extra: int, wid: str = w.id, rep_n: dict = rep_n) -> bool:
                """Add replicas of c in slot t if the site's quota has room for their instances
                (declared sites: owned GPUs within inventory and power)."""
                if res.sites[c.site].declared:
                    tau = declared.take(c, t, extra, ("owned",))
                    if tau is None:
                        return False
                    reps[(wid, c.site, c.offer.id, tau, t)] += extra
                    rep_n[(c.site, c.offer.id)] += extra
                    return True
                key = (c.site, c.offer.id, _tier(c), t)
                after = gpus_used[key] + extra * c.shape.gpus
                q = res.sites[c.site].quota_gpus.get(c.offer.accelerator)
                if q is not None:
                    g = c.offer.gpus
                    total = sum(ceil_tol(v / m.offers[(k[0], k[1])].gpus) * m.offers[(k[0], k[1])].gpus
                                for k, v in gpus_used.items() if k[0] == c.site and k[3] == t and k != key
                                and m.offers[(k[0], k[1])].accelerator == c.offer.accelerator)
                    if total + ceil_tol(after / g) * g > q:
                        return False
                gpus_used[key] = after
                reps[(wid, c.site, c.offer.id, _tier(c), t)] += extra
                rep_n[(c.site, c.offer.id)] += extra
                return True

            def serve(c: Candidate, loads: dict[str, float], t: str, wid: str = w.id, need_f: dict = need_f,
                      rep_n: dict = rep_n, place=place) -> bool:
                if any(load > 0 and c.rps[k].rps <= 0 for k, load in loads.items()):
                    return False
                key = (c.site, c.offer.id)
                add = sum(load / c.rps[k].rps for k, load in loads.items() if load > 0)
                new = ceil_tol(need_f[key] + add)
                extra = max(0, new - rep_n[key])
                if extra and not place(c, t, extra):
                    return False
                need_f[key] += add
                for k, load in loads.items():
                    if load > 0:
                        yk = (wid, k, c.site, c.offer.id, t)
                        ys[yk] = ys.get(yk, 0.0) + load
                return True

            if w.is_batch:
                window_s = 3600.0 * sum(slot_h[x] for x in wl.batch_slots)
                loads = {k: per_day / window_s for k, per_day in wl.batch_requests_per_day.items()}
                if not any(serve(c, loads, t) for c in on_owned + ranked):
                    return None
            else:
                for u, sites in cs.routes[w.id].items():
                    loads = {lc.key: wl.peak_rps.get((lc.key, u, t), 0.0) for lc in wl.classes}
                    choice = next((c for c in on_owned + ranked if c.site in sites and serve(c, loads, t)), None)
                    if choice is None:
                        return None
                    xs[(w.id, u, choice.site, t)] = 1.0
            cap: dict[str, float] = defaultdict(float)
            for c in on_owned + ranked:
                cap[c.site] += rep_n.get((c.site, c.offer.id), 0)
            def place_any(c: Candidate, t: str, extra: int, wid: str = w.id, rep_n: dict = rep_n,
                          place=place) -> bool:
                if not res.sites[c.site].declared:
                    return place(c, t, extra)
                tau = declared.take(c, t, extra)
                if tau is None:
                    return False
                reps[(wid, c.site, c.offer.id, tau, t)] += extra
                rep_n[(c.site, c.offer.id)] += extra
                return True

            if prot[w.id] and not _failover(m, w.id, t, prot[w.id], standby, sites_of_w, rep_n, place_any, cap):
                return None
            if w.redundancy.min_sites > 1:
                have = {sid for sid, v in cap.items() if v > 0}
                for c in ranked:
                    if len(have) >= w.redundancy.min_sites:
                        break
                    if c.site not in have and place(c, t, 1):
                        have.add(c.site)
                if len(have) < w.redundancy.min_sites:
                    return None
    _reserve_steady(m, reps)
    # instances for the replicas; quotas
    gpus: dict[tuple, float] = defaultdict(float)
    for (w, sid, oid, tau, t), n in reps.items():
        gpus[(sid, oid, tau, t)] += n * m.cand[(w, sid, oid)].shape.gpus
    inst: dict[tuple, int] = defaultdict(int)
    for (sid, oid, tau, t), g in gpus.items():
        k = ceil_tol(g / m.offers[(sid, oid)].gpus)
        key = (sid, oid, tau) if tau in BASELINE_TIERS else (sid, oid, tau, t)
        inst[key] = max(inst[key], k)
    quota_use: dict[tuple, float] = defaultdict(float)
    for key, k in inst.items():
        o = m.offers[(key[0], key[1])]
        for t in ([key[3]] if len(key) == 4 else m.slots):
            quota_use[(key[0], o.accelerator, t)] += k * o.gpus
    for (sid, acc, _t), g in quota_use.items():
        q = res.sites[sid].quota_gpus.get(acc)
        if q is not None and g > q:
            return None
    values: dict[int, float] = {}
    for key, v in m.x.items():
        values[v] = xs.get(key, 0.0)
    for key, v in m.y.items():
        values[v] = ys.get(key, 0.0)
    for key, v in m.r.items():
        values[v] = float(reps.get(key, 0))
    for key, v in m.n.items():
        values[v] = float(inst.get(key, 0))
    for v in m.P.values():
        values[v] = 0.0
    busy_sites = {sid for (_w, sid, _o, _tau, _t), n in reps.items() if n > 0}
    for sid, v in m.open.items():
        values[v] = 1.0 if sid in busy_sites else 0.0
    used_sites = {(w, sid) for (w, sid, _o, _tau, _t), n in reps.items() if n > 0}
    for key, v in m.used.items():
        values[v] = 1.0 if key in used_sites else 0.0
    # the continuous rest (failover flows, power, replica counts of the cuts) is completed by an
    # LP with these whole numbers fixed (backends.HighsModel.complete)
    return values


def _reserve_steady(m: PlacementModel, reps: dict[tuple, int]) -> None:
    """On-demand instances a cloud offer holds through the day cost less reserved: per (site,
    offer), the j-th instance (counting each slot's on-demand instances) is reserved when a month
    of it reserved costs less than on-demand in the slots that need at least j instances. Where
    the site has a quota for the accelerator, only instances busy in every slot are reserved (no
    slot's quota use grows). Whole replicas move from on_demand to reserved, largest first (their
    GPUs are powers of two dividing the instance, so the reserved instances fill exactly); every
    workload there must be allowed the reserved tier. The capacity per slot is unchanged."""
    res = m.cs.res
    hpm = res.scenario.policies.hours_per_month
    od: dict[tuple, list] = defaultdict(list)
    for (w, sid, oid, tau, t), n in reps.items():
        if tau == "on_demand" and n > 0:
            od[(sid, oid)].append((w, t, n, m.cand[(w, sid, oid)].shape.gpus))
    for (sid, oid), rows in sorted(od.items()):
        o = m.offers[(sid, oid)]
        if not o.reserved_usd_hr or not o.ondemand_usd_hr:
            continue
        if any("reserved" not in m.cand[(w, sid, oid)].tiers for w, _t, _n, _g in rows):
            continue
        per_t: dict[str, float] = defaultdict(float)
        for _w, t, n, g in rows:
            per_t[t] += n * g
        n_t = {t: ceil_tol(per_t.get(t, 0.0) / o.gpus) for t in m.slots}
        if o.accelerator in res.sites[sid].quota_gpus:
            J = min(n_t.values()) if o.reserved_usd_hr * hpm < o.ondemand_usd_hr * hpm else 0
        else:
            J = 0
            for j in range(1, max(n_t.values()) + 1):
                if o.reserved_usd_hr * hpm < sum(o.ondemand_usd_hr * m.H[t] for t, k in n_t.items() if k >= j):
                    J = j
                else:
                    break
        if J <= 0:
            continue
        for t in m.slots:
            room = J * o.gpus
            for w, _t, n, g in sorted((r for r in rows if r[1] == t), key=lambda r: (-r[3], r[0])):
                move = min(n, int(room // g))
                if move <= 0:
                    continue
                reps[(w, sid, oid, "on_demand", t)] -= move
                reps[(w, sid, oid, "reserved", t)] += move
                room -= move * g


class _Declared:
    """Owned, then buyable, GPUs of declared sites for standby replicas, within the inventory and
    the site's power budget in every slot (installed GPUs draw their idle share all month)."""

    def __init__(self, m: PlacementModel):
        self.m = m
        self.used: dict[tuple, float] = defaultdict(float)  # (site, offer, tier, slot) -> GPUs

    def take(self, c: Candidate, t: str, extra: int, tiers: tuple[str, ...] = ("owned", "bought")) -> str | None:
        g = extra * c.shape.gpus
        for tau in tiers:
            if tau not in c.tiers:
                continue
            key = (c.site, c.offer.id, tau, t)
            have = c.offer.owned if tau == "owned" else c.offer.buyable
            if self.used[key] + g > have * c.offer.gpus:
                continue
            self.used[key] += g
            if self._power_ok(c.site):
                return tau
            self.used[key] -= g
        return None

    def _power_ok(self, sid: str) -> bool:
        site = self.m.cs.res.sites[sid]
        if site.power_budget_kw is None:
            return True
        phi = site.idle_power_fraction
        mine = {k: g for k, g in self.used.items() if k[0] == sid and g > 0}
        installed: dict[tuple, float] = defaultdict(float)
        for (_s, oid, tau, _t), g in mine.items():
            o = self.m.offers[(sid, oid)]
            installed[(oid, tau)] = max(installed[(oid, tau)], ceil_tol(g / o.gpus) * o.gpus)
        idle = sum(gpu_kw_factor(site, self.m.offers[(sid, oid)]) * phi * n for (oid, _tau), n in installed.items())
        for t in self.m.slots:
            busy = sum(gpu_kw_factor(site, self.m.offers[(sid, oid)]) * (1 - phi) * g
                       for (_s, oid, _tau, tt), g in mine.items() if tt == t)
            if idle + busy > site.power_budget_kw:
                return False
        return True


def _replica_price(m: PlacementModel, c: Candidate) -> float:
    """USD per hour of one replica of c in the greedy's tier (declared sites: the annuity of a
    bought GPU, owned GPUs cost nothing more)."""
    hpm = m.cs.res.scenario.policies.hours_per_month
    tier = _tier(c)
    if tier is None:
        return 0.0 if "owned" in c.tiers else c.offer.buy_usd_per_gpu_month * c.shape.gpus / hpm
    per_hour = c.unit_price(tier, hpm) / (hpm if tier == "reserved" else 1.0)
    return per_hour / max(c.shape.replicas_per_instance, 1)


def _failover(m: PlacementModel, w: str, t: str, prot: list, ranked: list[Candidate], lost_sites: list[str],
              rep_n: dict, place,
              cap: dict) -> bool:
    """Add replicas until, for every site that may be lost, the replicas at the other sites serve
    every protected class of every user region within the failover limits (the promise of
    model.define_failover). Per lost site, each (class, user region) load goes to the surviving
    allowed offer that needs the fewest extra replica-dollars, spare replicas first. Replicas
    added for one lost site stay for the next, so the last scenario checked needs the fewest."""
    cs = m.cs
    wl = cs.loads[w]
    demand = sorted(((lc.key, u), wl.peak_rps.get((lc.key, u, t), 0.0)) for lc in prot for u in wl.user_regions())
    demand = [(key, load) for key, load in demand if load > 0]
    if not demand:
        return True
    for lost in lost_sites:
        need: dict[tuple, float] = defaultdict(float)
        for (k, u), load in demand:
            allowed = set(cs.failover_sites.get((w, k, u), [])) - {lost}
            options = []
            for c in ranked:
                if c.site not in allowed or c.rps[k].rps <= 0:
                    continue
                key = (c.site, c.offer.id)
                add = load / c.rps[k].rps
                extra = max(0, ceil_tol(need[key] + add) - rep_n.get(key, 0))
                options.append(((extra * _replica_price(m, c), c.site, c.offer.id), c, key, add, extra))
            # the cheapest option whose extra replicas fit the site's quota
            chosen = next((o for o in sorted(options, key=lambda o: o[0]) if not o[4] or place(o[1], t, o[4])), None)
            if chosen is None:
                return False
            _score, c, key, add, extra = chosen
            cap[c.site] += extra
            need[key] += add
    return True
