"""Independent checker: recompute every constraint and the cost of a result from its placement
alone (instances, replicas, serving split, routes), never from solver values.

It rebuilds demand, latency, residency and throughput from the scenario and the catalogs, then
checks: whole replicas and instances, tiers each offer really has, route shares, SLO and
residency of every route, served load = demand, class-by-class capacity, instance packing,
inventory, quotas, power budgets, spot cap, minimum sites, aggregate N+1, and the cost.

Real failover (N+1 within the SLO): for every lost site and slot, a max-flow from user regions
to the remaining sites (capacity = their non-spot replicas x requests/s of the class mix) says
which user regions can no longer be served within their SLO; listed, not a violation (the MILP's
N+1 row is an aggregate, necessary condition).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx

from planner.derive.demand import build_loads
from planner.derive.topology import rtt
from planner.input.consistency import Resolved, residency_allows
from planner.plan.costing import Plan, cost_lines, decision_cost, offer_index, site_power_kw
from planner.plan.result import PlacementResult, plan_from_dict

TOL = 1e-6


@dataclass
class VerifyReport:
    violations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failover: list[dict] = field(default_factory=list)
    recomputed_cost: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations


def _close(a: float, b: float, rel: float = 1e-6, abs_: float = 1e-6) -> bool:
    return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))


def verify_result(res: Resolved, result: PlacementResult) -> VerifyReport:
    rep = VerifyReport()
    v = rep.violations
    d = result.data
    s = res.scenario
    pol = s.policies
    if d.get("scenario", {}).get("content_hash") not in (None, res.loaded.content_hash):
        rep.warnings.append("the scenario file changed since this result was made (content hash differs)")
    if d.get("solve", {}).get("status") not in ("optimal", "feasible"):
        v.append(f"result has status {d.get('solve', {}).get('status')!r}, not a plan")
        return rep
    plan = plan_from_dict(d)
    offers = offer_index(res)
    offsets = {u: r.utc_offset_hours for u, r in res.user_regions.items()}
    loads = build_loads(s, offsets)
    slots = [t.id for t in s.time_slots]
    hours = {t.id: t.hours for t in s.time_slots}
    wk = {w.id: w for w in s.workloads}

    # ---- instances: integral, known, tiers real
    inst: dict[tuple, float] = {}
    for i in plan.instances:
        key = (i["site"], i["offer"])
        if key not in offers:
            v.append(f"instances: unknown offer {i['offer']} at site {i['site']}")
            continue
        o = offers[key]
        if abs(i["count"] - round(i["count"])) > TOL or i["count"] < 0:
            v.append(f"instances: {i['offer']} {i['tier']} count {i['count']} is not a whole number")
        tier = i["tier"]
        ok_tier = {
            "owned": o.owned > 0, "bought": o.buyable > 0,
            "reserved": o.reserved_usd_hr is not None and "reserved" in pol.pricing_models,
            "on_demand": o.ondemand_usd_hr is not None and "on_demand" in pol.pricing_models,
            "spot": o.spot_usd_hr is not None and "spot" in pol.pricing_models,
        }.get(tier, False)
        if not ok_tier:
            v.append(f"instances: {i['offer']} cannot be had as {tier} (no price or not allowed)")
        if tier in ("owned", "bought", "reserved") and i["slot"] is not None:
            v.append(f"instances: baseline tier {tier} of {i['offer']} must be for the whole month, not slot {i['slot']}")
        if tier == "owned" and i["count"] > o.owned + TOL:
            v.append(f"inventory: {i['site']} uses {i['count']} owned {o.accelerator} GPUs, owns {o.owned}")
        if tier == "bought" and i["count"] > o.buyable + TOL:
            v.append(f"inventory: {i['site']} buys {i['count']} {o.accelerator} GPUs, may buy {o.buyable}")
        for t in ([i["slot"]] if i["slot"] else slots):
            inst[(i["site"], i["offer"], tier, t)] = inst.get((i["site"], i["offer"], tier, t), 0.0) + i["count"]

    # ---- replicas: whole, packed into instances
    packed: dict[tuple, float] = defaultdict(float)
    shape_of: dict[tuple, object] = {}
    for r in plan.replicas:
        key = (r["site"], r["offer"])
        if key not in offers:
            v.append(f"placements: unknown offer {r['offer']} at site {r['site']}")
            continue
        o = offers[key]
        site = res.sites[r["site"]]
        if abs(r["replicas"] - round(r["replicas"])) > TOL:
            v.append(f"placements: {r['workload']} has {r['replicas']} replicas on {r['offer']} ({r['tier']}, "
                     f"{r['slot']}): not whole")
        w = wk.get(r["workload"])
        if w is None:
            v.append(f"placements: unknown workload {r['workload']}")
            continue
        shape = res.throughput.shape(w.model, o.accelerator, *site.replica_room(o))
        if shape is None:
            v.append(f"placements: {w.model} does not fit {o.gpus:g} x {o.accelerator} ({r['offer']})")
            continue
        shape_of[(w.id, r["site"], r["offer"])] = shape
        if not _close(r["gpus"], r["replicas"] * shape.gpus):
            v.append(f"placements: {w.id} on {r['offer']}: {r['gpus']} GPUs for {r['replicas']} replicas of "
                     f"{shape.gpus:g} GPUs")
        packed[(r["site"], r["offer"], r["tier"], r["slot"])] += r["replicas"] * shape.gpus
    for key, g in sorted(packed.items(), key=lambda kv: tuple(str(p) for p in kv[0])):
        have = inst.get(key, 0.0) * offers[(key[0], key[1])].gpus
        if g > have + 1e-6:
            v.append(f"packing: {key[1]} {key[2]} slot {key[3]} holds {g:g} GPUs of replicas in {have:g} GPUs of instances")

    # ---- routes: shares, residency, SLO
    share: dict[tuple, float] = defaultdict(float)
    for r in plan.routes:
        w = wk.get(r["workload"])
        if w is None or r["user_region"] not in res.user_regions or r["site"] not in res.sites:
            v.append(f"routes: unknown workload, user region or site in {r}")
            continue
        up = res.user_regions[r["user_region"]].point
        sp = res.sites[r["site"]].point
        why = residency_allows(w.residency, up, sp)
        if why is not None and r["share"] > TOL:
            v.append(f"residency: {w.id} users in {r['user_region']} served at {r['site']}: {why}")
        if w.latency.network_rtt_ms is not None and r["share"] > TOL:
            link = rtt(res, up, sp)
            if link.rtt_ms is None or link.rtt_ms > w.latency.network_rtt_ms + 1e-9:
                v.append(f"latency: {w.id} users in {r['user_region']} -> {r['site']} RTT "
                         f"{link.rtt_ms} ms > SLO {w.latency.network_rtt_ms} ms")
        share[(w.id, r["user_region"], r["site"], r["slot"])] += r["share"]
    routed: dict[tuple, float] = defaultdict(float)  # (w, u, t) -> total share
    sites_routed: dict[tuple, set] = defaultdict(set)  # (w, t) -> sites
    for (w_id, u, sid, t), x in share.items():
        routed[(w_id, u, t)] += x
        sites_routed[(w_id, t)].add(sid)
    for w in s.workloads:
        if w.is_batch:
            continue
        for dmd in w.demand:
            for t in slots:
                tot = routed.get((w.id, dmd.user_region, t), 0.0)
                if not _close(tot, 1.0, abs_=1e-5):
                    v.append(f"routes: {w.id} traffic from {dmd.user_region} in slot {t} is routed {tot:.6f}, not 1")

    # ---- serving = demand; capacity class by class
    served: dict[tuple, float] = defaultdict(float)
    cap_use: dict[tuple, float] = defaultdict(float)
    for sv in plan.serving:
        w = wk.get(sv["workload"])
        if w is None:
            v.append(f"serving: unknown workload {sv['workload']}")
            continue
        served[(w.id, sv["class"], sv["site"], sv["slot"])] += sv["rps"]
        shape = shape_of.get((w.id, sv["site"], sv["offer"]))
        o = offers.get((sv["site"], sv["offer"]))
        if o is None or shape is None:
            if sv["rps"] > TOL:
                v.append(f"serving: {w.id} class {sv['class']} served on {sv['offer']} at {sv['site']} with no replicas")
            continue
        lc = next((c for c in loads[w.id].classes if c.key == sv["class"]), None)
        if lc is None:
            v.append(f"serving: {w.id} has no class {sv['class']}")
            continue
        ow = wk[lc.origin]
        est = res.throughput.rps(w.model, o.accelerator, shape, lc.qclass.input_tokens, lc.qclass.output_tokens,
                                 w.latency.ttft_ms, w.latency.tpot_ms, ow.prefix_cache_rate)
        if est.rps <= 0:
            v.append(f"serving: {w.id} class {sv['class']} cannot run on {o.accelerator} ({est.limit})")
            continue
        cap_use[(w.id, sv["site"], sv["offer"], sv["slot"])] += sv["rps"] / est.rps
    reps: dict[tuple, float] = defaultdict(float)
    for r in plan.replicas:
        eff = pol.spot.derating if r["tier"] == "spot" else 1.0
        reps[(r["workload"], r["site"], r["offer"], r["slot"])] += r["replicas"] * eff
    for key, need in sorted(cap_use.items()):
        if need > reps.get(key, 0.0) * (1 + 1e-6) + 1e-6:
            v.append(f"capacity: {key[0]} on {key[2]} slot {key[3]} needs {need:.4f} replicas, has {reps.get(key, 0.0):g}")
    served_by_w: dict[str, list] = defaultdict(list)
    for (w_id, k, sid, t), x in served.items():
        served_by_w[w_id].append((k, sid, t, x))
    for w in s.workloads:
        wl = loads[w.id]
        rows_w = served_by_w.get(w.id, [])
        if w.is_batch:
            done: dict[str, float] = defaultdict(float)
            for k, _sid, t, x in rows_w:
                done[k] += x * 3600.0 * hours[t]
            for lc in wl.classes:
                need = wl.batch_requests_per_day[lc.key]
                if not _close(done[lc.key], need, rel=1e-5):
                    v.append(f"batch: {w.id} class {lc.key} does {done[lc.key]:,.1f} requests/day, needs {need:,.1f}")
            outside = sorted({t for _k, _sid, t, _x in rows_w if t not in wl.batch_slots})
            if outside:
                v.append(f"batch: {w.id} runs outside its window in slots {outside}")
            for sid in sorted({sid for _k, sid, _t, _x in rows_w}):
                why = residency_allows(w.residency, None, res.sites[sid].point)
                if why:
                    v.append(f"residency: batch {w.id} runs at {sid}: {why}")
            continue
        served_sites: dict[tuple, set] = defaultdict(set)
        for k, sid, t, _x in rows_w:
            served_sites[(k, t)].add(sid)
        for lc in wl.classes:
            for t in slots:
                sites = served_sites.get((lc.key, t), set()) | sites_routed.get((w.id, t), set())
                for sid in sorted(sites):
                    want = sum(wl.peak_rps.get((lc.key, u, t), 0.0) * share.get((w.id, u, sid, t), 0.0)
                               for u in wl.user_regions())
                    got = served.get((w.id, lc.key, sid, t), 0.0)
                    if not _close(got, want, rel=1e-5, abs_=1e-6):
                        v.append(f"serving: {w.id} class {lc.key} at {sid} slot {t} serves {got:.6f} rps, routed "
                                 f"demand is {want:.6f}")

    # ---- quotas and power
    quota_use: dict[tuple, float] = defaultdict(float)
    for (sid, oid, _tau, t), c in inst.items():
        o = offers[(sid, oid)]
        quota_use[(sid, o.accelerator, t)] += c * o.gpus
    for (sid, acc, t), g in sorted(quota_use.items()):
        quota = res.sites[sid].quota_gpus.get(acc)
        if quota is not None and g > quota + TOL:
            v.append(f"quota: {sid} uses {g:g} {acc} GPUs in slot {t}, quota {quota}")
    for (sid, t), kw in sorted(site_power_kw(res, plan, offers).items()):
        budget = res.sites[sid].power_budget_kw
        if budget is not None and kw > budget * (1 + 1e-9) + 1e-9:
            v.append(f"power: {sid} draws {kw:.3f} kW in slot {t}, budget {budget:g} kW")

    # ---- redundancy, spot, min sites
    _check_redundancy(res, plan, loads, shape_of, offers, rep)

    # ---- cost
    lines = cost_lines(res, loads, plan)
    rep.recomputed_cost = decision_cost(lines)
    reported = d.get("summary", {}).get("total_usd_per_month")
    if reported is not None and not _close(rep.recomputed_cost, reported, rel=1e-6, abs_=0.02):
        v.append(f"cost: recomputed {rep.recomputed_cost:,.4f} USD/month, result says {reported:,.4f}")
    obj = d.get("solve", {}).get("objective")
    plain_cost = pol.carbon_usd_per_tonne == 0 and pol.latency_usd_per_ms_per_rps == 0
    if obj is not None and plain_cost and not _close(rep.recomputed_cost, obj, rel=1e-5, abs_=0.05):
        v.append(f"cost: recomputed {rep.recomputed_cost:,.4f} USD/month, solver objective {obj:,.4f}")
    return rep


def _mix_rps(res: Resolved, loads, w, o, shape, t: str) -> float:
    wl = loads[w.id]
    if wl.batch_requests_per_day:
        tot = dict(wl.batch_requests_per_day)
    else:
        tot = defaultdict(float)
        for (k, _u, tt), x in wl.peak_rps.items():
            if tt == t:
                tot[k] += x
    z = sum(tot.values())
    if z <= 0:
        tot = {lc.key: lc.qclass.share for lc in wl.classes}
        z = sum(tot.values())
    inv = 0.0
    for lc in wl.classes:
        if tot.get(lc.key, 0.0) <= 0:
            continue
        ow = res.scenario.workload(lc.origin)
        est = res.throughput.rps(w.model, o.accelerator, shape, lc.qclass.input_tokens, lc.qclass.output_tokens,
                                 w.latency.ttft_ms, w.latency.tpot_ms, ow.prefix_cache_rate)
        if est.rps > 0:
            inv += (tot[lc.key] / z) / est.rps
    return 1.0 / inv if inv > 0 else 0.0


def _check_redundancy(res: Resolved, plan: Plan, loads, shape_of, offers, rep: VerifyReport) -> None:
    s = res.scenario
    pol = s.policies
    slots = [t.id for t in s.time_slots]
    reps_by_w: dict[str, list] = defaultdict(list)
    for r in plan.replicas:
        reps_by_w[r["workload"]].append(r)
    routes_by_w: dict[str, set] = defaultdict(set)
    for r in plan.routes:
        routes_by_w[r["workload"]].add(r["site"])
    for w in s.workloads:
        wl = loads[w.id]
        rows = reps_by_w.get(w.id, [])
        cap_ns: dict[tuple, float] = defaultdict(float)  # (site, slot) -> non-spot rps
        cap_all: dict[str, float] = defaultdict(float)  # slot -> effective rps
        cap_spot: dict[str, float] = defaultdict(float)
        for r in rows:
            shape = shape_of.get((w.id, r["site"], r["offer"]))
            if shape is None:
                continue
            mix = _mix_rps(res, loads, w, offers[(r["site"], r["offer"])], shape, r["slot"])
            if r["tier"] == "spot":
                cap_spot[r["slot"]] += mix * pol.spot.derating * r["replicas"]
                cap_all[r["slot"]] += mix * pol.spot.derating * r["replicas"]
            else:
                cap_ns[(r["site"], r["slot"])] += mix * r["replicas"]
                cap_all[r["slot"]] += mix * r["replicas"]
        for t in slots:
            if cap_spot[t] > pol.spot.max_share * cap_all[t] * (1 + 1e-6) + 1e-6:
                rep.violations.append(f"spot: {w.id} slot {t} has {cap_spot[t]:.3f} of {cap_all[t]:.3f} rps on spot, "
                                      f"cap {pol.spot.max_share:.0%}")
        if w.redundancy.min_sites > 1:
            used = {r["site"] for r in rows if r["replicas"] > 0}
            if len(used) < w.redundancy.min_sites:
                rep.violations.append(f"min_sites: {w.id} runs at {len(used)} sites, needs {w.redundancy.min_sites}")
        if w.redundancy.mode != "n_plus_1" or w.is_batch:
            continue
        sites = sorted({sid for (sid, _t) in cap_ns} | routes_by_w.get(w.id, set()))
        for t in slots:
            demand = wl.peak(t)
            if demand <= 0:
                continue
            total = sum(cap_ns[(sid, t)] for sid in sites)
            for lost in sites:
                rest = total - cap_ns[(lost, t)]
                if rest < demand * (1 - 1e-6) - 1e-6:
                    rep.violations.append(f"n_plus_1: {w.id} slot {t}: losing {lost} leaves {rest:.3f} rps of non-spot "
                                          f"capacity for {demand:.3f} rps")
                rep.failover.append(_failover(res, w, wl, t, lost, sites, cap_ns))


def _failover(res: Resolved, w, wl, t: str, lost: str, sites: list[str], cap_ns) -> dict:
    """Max-flow from user regions to the remaining sites within the SLO and residency."""
    g = nx.DiGraph()
    need = {u: sum(x for (_k, uu, tt), x in wl.peak_rps.items() if uu == u and tt == t) for u in wl.user_regions()}
    for u, dmd in need.items():
        if dmd <= 0:
            continue
        g.add_edge("src", f"u:{u}", capacity=dmd)
        up = res.user_regions[u].point
        for sid in sites:
            if sid == lost:
                continue
            sp = res.sites[sid].point
            if residency_allows(w.residency, up, sp) is not None:
                continue
            if w.latency.network_rtt_ms is not None:
                link = rtt(res, up, sp)
                if link.rtt_ms is None or link.rtt_ms > w.latency.network_rtt_ms:
                    continue
            g.add_edge(f"u:{u}", f"s:{sid}")  # infinite capacity
    for sid in sites:
        if sid != lost:
            g.add_edge(f"s:{sid}", "sink", capacity=cap_ns[(sid, t)])
    unserved = []
    short = 0.0
    if g.number_of_nodes() and "src" in g and "sink" in g:
        flow_value, flow = nx.maximum_flow(g, "src", "sink")
        for u, dmd in need.items():
            if dmd <= 0:
                continue
            got = flow.get("src", {}).get(f"u:{u}", 0.0)
            if got < dmd * (1 - 1e-6) - 1e-6:
                unserved.append(u)
                short += dmd - got
    else:
        unserved = [u for u, dmd in need.items() if dmd > 0]
        short = sum(need.values())
    return {"workload": w.id, "slot": t, "lost_site": lost, "unserved_user_regions": sorted(unserved),
            "unserved_rps": round(short, 6)}
