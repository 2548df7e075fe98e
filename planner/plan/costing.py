"""Cost, power and carbon of a plan, computed from the placement alone.

A plan (:class:`planner.plan.plan.Plan`) is four tables (lists of dicts): ``instances`` (site,
offer, tier, slot or None for baseline tiers, count), ``replicas`` (workload, site, offer, tier,
slot, replicas), ``serving`` (workload, class, site, offer, slot, rps) and ``routes`` (workload,
user_region, site, slot, share).
The report and ``planner verify`` both price a plan with these functions; neither reads solver
values.

Every cost line has a ``slot``: None for monthly costs (reserved and bought capacity, owned GPUs,
a site's fixed cost, data egress), the slot id for costs incurred in one slot (on-demand and spot
instance-hours, electricity, response egress).

Unit prices (:func:`gpu_usd_per_hour`, :func:`instance_cost_rows`): cloud tiers are priced per
instance-hour (reserved: every hour of the month; on_demand and spot: the slot's hours); bought
GPUs per GPU-month (the annuity); owned GPUs cost 0 as a decision (their amortised cost is sunk
and reported as ``owned_sunk``).

Attribution: the cost of shared instances at a (site, offer, tier, slot) is split between the
workloads by the GPUs their replicas occupy there (idle capacity by the same proportion);
electricity and a site's fixed cost by the workloads' GPU-hours at that site; egress belongs to
the workload whose responses or data cross.
"""

from __future__ import annotations

from collections import defaultdict

from planner.derive.demand import WorkloadLoad, hours_per_month_of_slot, response_gb
from planner.derive.power import cloud_gpu_kw, gpu_kw_factor
from planner.derive.topology import egress as egress_price
from planner.input.consistency import Offer, Resolved
from planner.plan.plan import Plan

__all__ = ["BASELINE", "Plan", "cloud_power_kw", "cost_lines", "decision_cost", "gpu_usd_per_hour",
           "instance_cost_rows", "offer_index", "site_power_kw", "site_shares", "slot_month_hours"]

BASELINE = ("owned", "bought", "reserved")


def offer_index(res: Resolved) -> dict[tuple[str, str], Offer]:
    return {(sid, o.id): o for sid, site in res.sites.items() for o in site.offers}


def slot_month_hours(res: Resolved) -> dict[str, float]:
    hpm = res.scenario.policies.hours_per_month
    return {t.id: hours_per_month_of_slot(t, hpm) for t in res.scenario.time_slots}


def site_power_kw(res: Resolved, plan: Plan, offers: dict) -> dict[tuple[str, str], float]:
    """Facility kW per declared site and slot: f_o (phi installed + (1 - phi) used)."""
    used: dict[tuple, float] = defaultdict(float)
    for r in plan.replicas:
        if res.sites[r["site"]].declared:
            used[(r["site"], r["offer"], r["slot"])] += r["gpus"]
    inst: dict[tuple, float] = defaultdict(float)
    for i in plan.instances:
        if i["tier"] in ("owned", "bought"):
            inst[(i["site"], i["offer"])] += i["count"] * offers[(i["site"], i["offer"])].gpus
    out: dict[tuple, float] = {}
    slots = [t.id for t in res.scenario.time_slots]
    for sid, site in res.sites.items():
        if not site.declared:
            continue
        offs = [o for o in site.offers]
        if not any(inst.get((sid, o.id)) or any(used.get((sid, o.id, t)) for t in slots) for o in offs):
            continue
        phi = site.idle_power_fraction
        for t in slots:
            out[(sid, t)] = sum(
                gpu_kw_factor(site, o) * (phi * inst.get((sid, o.id), 0.0) + (1 - phi) * used.get((sid, o.id, t), 0.0))
                for o in offs
            )
    return out


def cloud_power_kw(res: Resolved, plan: Plan, offers: dict) -> dict[tuple[str, str], float]:
    """Estimated kW drawn by GPUs in use at cloud sites (for carbon reporting only)."""
    out: dict[tuple, float] = defaultdict(float)
    for r in plan.replicas:
        site = res.sites[r["site"]]
        if site.declared:
            continue
        o = offers[(r["site"], r["offer"])]
        out[(r["site"], r["slot"])] += cloud_gpu_kw(o) * r["gpus"]
    return dict(out)


def _rows_by_workload(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        out[r["workload"]].append(r)
    return out


def site_shares(res: Resolved, loads: dict[str, WorkloadLoad], plan: Plan, w: str,
                grouped: tuple[dict, dict] | None = None) -> dict[str, float]:
    """Share of w's requests served at each site (routes by request volume; batch by requests done).
    ``grouped``: (serving rows, route rows) of the plan by workload, when the caller asks for
    many workloads (the same rows in the same order; no scan of the whole plan per workload)."""
    wk = res.scenario.workload(w)
    wl = loads[w]
    out: dict[str, float] = defaultdict(float)
    serving = plan.serving if grouped is None else grouped[0].get(w, [])
    routes = plan.routes if grouped is None else grouped[1].get(w, [])
    if wk.is_batch:
        hours = {t.id: t.hours for t in res.scenario.time_slots}
        total = sum(wl.batch_requests_per_day.values())
        for s in serving:
            if s["workload"] == w and "~" not in s["class"]:
                out[s["site"]] += s["rps"] * 3600.0 * hours[s["slot"]] / total
        return dict(out)
    vol: dict[tuple[str, str], float] = defaultdict(float)
    for (_k, u, t), n in wl.requests_per_month.items():
        vol[(u, t)] += n
    total = sum(vol.values())
    if total <= 0:
        return {}
    for r in routes:
        if r["workload"] == w:
            out[r["site"]] += r["share"] * vol.get((r["user_region"], r["slot"]), 0.0) / total
    return dict(out)


def cost_lines(res: Resolved, loads: dict[str, WorkloadLoad], plan: Plan) -> list[dict]:
    """Every monthly cost of the plan as lines (site, provider, workload, tier, kind, usd_per_month).

    kinds: compute (reserved / on_demand / spot instance-hours), capex (bought GPUs' annuity),
    owned_sunk (owned GPUs' amortised cost, not a decision), electricity, fixed (open site),
    egress_response, egress_data.
    """
    pol = res.scenario.policies
    hpm = pol.hours_per_month
    H = slot_month_hours(res)
    offers = offer_index(res)
    lines: list[dict] = []
    # GPU-hours per (site, offer, tier, slot) per workload, for attribution
    share: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in plan.replicas:
        share[(r["site"], r["offer"], r["tier"], r["slot"])][r["workload"]] += r["gpus"]

    def split(key_site, key_offer, tier, slots, usd, kind, slot):
        """Attribute usd over workloads by GPU occupancy in the given slots (weighted by hours)."""
        weights: dict[str, float] = defaultdict(float)
        for t in slots:
            for w, g in share.get((key_site, key_offer, tier, t), {}).items():
                weights[w] += g * H[t]
        total = sum(weights.values())
        site = res.sites[key_site]
        if total <= 0:
            lines.append(_line(site, "", tier, kind, usd, key_offer, slot))
            return
        for w, g in sorted(weights.items()):
            lines.append(_line(site, w, tier, kind, usd * g / total, key_offer, slot))

    slots = list(H)
    for i in plan.instances:
        if i["count"] <= 0:
            continue
        o = offers[(i["site"], i["offer"])]
        tier = i["tier"]
        if tier == "reserved":
            split(i["site"], i["offer"], tier, slots, i["count"] * (o.reserved_usd_hr or 0.0) * hpm, "compute", None)
        elif tier == "bought":
            split(i["site"], i["offer"], tier, slots, i["count"] * o.buy_usd_per_gpu_month, "capex", None)
        elif tier in ("on_demand", "spot"):
            price = o.ondemand_usd_hr if tier == "on_demand" else o.spot_usd_hr
            split(i["site"], i["offer"], tier, [i["slot"]], i["count"] * (price or 0.0) * H[i["slot"]], "compute",
                  i["slot"])
    # owned GPUs: sunk, whether used or not
    for _sid, site in sorted(res.sites.items()):
        for o in site.offers:
            if o.owned and o.owned_usd_per_gpu_hour:
                lines.append(_line(site, "", "owned", "owned_sunk", o.owned * o.owned_usd_per_gpu_hour * hpm, o.id, None))
    # electricity and fixed cost by GPU-hours at the site
    power = site_power_kw(res, plan, offers)
    site_gpuh: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in plan.replicas:
        site_gpuh[r["site"]][r["workload"]] += r["gpus"] * H[r["slot"]]
    for (sid, t), kw in sorted(power.items()):
        usd = kw * H[t] * res.sites[sid].electricity_usd_per_kwh
        _split_site(lines, res.sites[sid], site_gpuh.get(sid, {}), "", "electricity", usd, t)
    open_sites = sorted({sid for (sid, _t) in power})
    for sid in open_sites:
        fixed = res.sites[sid].fixed_usd_per_month
        if fixed:
            _split_site(lines, res.sites[sid], site_gpuh.get(sid, {}), "", "fixed", fixed, None)
    # egress
    for r in plan.routes:
        gb = response_gb(res, loads, r["workload"], r["user_region"], r["slot"]) * r["share"]
        site = res.sites[r["site"]]
        usd = gb * site.internet_egress_usd_per_gb
        if usd:
            lines.append(_line(site, r["workload"], "", "egress_response", usd, "", r["slot"]))
    grouped = (_rows_by_workload(plan.serving), _rows_by_workload(plan.routes))
    for w in res.scenario.workloads:
        if not w.data_sources:
            continue
        shares = site_shares(res, loads, plan, w.id, grouped)
        for ds in w.data_sources:
            src = res.data_source_points[(w.id, ds.id)]
            for sid, sh in sorted(shares.items()):
                price = egress_price(res, src, res.sites[sid]).usd_per_gb
                usd = ds.gb_per_month * sh * price
                if usd:
                    lines.append(_line(res.sites[sid], w.id, "", "egress_data", usd, ds.id, None))
    return lines


def _line(site, workload: str, tier: str, kind: str, usd: float, item: str, slot: str | None) -> dict:
    return {"site": site.id, "provider": site.provider, "workload": workload, "tier": tier, "kind": kind,
            "item": item, "slot": slot, "usd_per_month": float(usd)}


def _split_site(lines, site, gpuh: dict[str, float], tier: str, kind: str, usd: float, slot: str | None) -> None:
    total = sum(gpuh.values())
    if total <= 0:
        lines.append(_line(site, "", tier, kind, usd, "", slot))
        return
    for w, g in sorted(gpuh.items()):
        lines.append(_line(site, w, tier, kind, usd * g / total, "", slot))


def decision_cost(lines: list[dict]) -> float:
    """The cost the optimiser minimises: every line except owned GPUs' sunk cost."""
    return sum(ln["usd_per_month"] for ln in lines if ln["kind"] != "owned_sunk")


def gpu_usd_per_hour(offer: Offer, tier: str, hours_per_month: float) -> float:
    """Decision cost of one GPU of ``offer`` in ``tier`` for one hour it is held.

    reserved, on_demand, spot: the instance price per hour / GPUs per instance; bought: the
    annuity per GPU-month / hours_per_month; owned: 0 (sunk, not a decision).
    """
    if tier == "owned":
        return 0.0
    if tier == "bought":
        return offer.buy_usd_per_gpu_month / hours_per_month
    price = {"reserved": offer.reserved_usd_hr, "on_demand": offer.ondemand_usd_hr, "spot": offer.spot_usd_hr}[tier]
    return (price or 0.0) / offer.gpus


def instance_cost_rows(res: Resolved, plan: Plan) -> list[dict]:
    """One row per instance row of the plan: its unit price and monthly cost.

    ``usd_per_instance_hour`` for cloud tiers (reserved: paid every hour of the month; on_demand,
    spot: the slot's hours a month), ``usd_per_gpu_month`` for bought (annuity) and owned (0:
    sunk) GPUs; the other unit price is None. The rows' costs add up to the compute and capex
    cost lines of :func:`cost_lines`.
    """
    hpm = res.scenario.policies.hours_per_month
    H = slot_month_hours(res)
    offers = offer_index(res)
    out = []
    for i in plan.instances:
        o = offers[(i["site"], i["offer"])]
        tier, count = i["tier"], i["count"]
        per_hour = per_gpu_month = None
        if tier == "owned":
            per_gpu_month = 0.0
            usd = 0.0
        elif tier == "bought":
            per_gpu_month = o.buy_usd_per_gpu_month
            usd = count * o.gpus * per_gpu_month
        else:
            per_hour = {"reserved": o.reserved_usd_hr, "on_demand": o.ondemand_usd_hr, "spot": o.spot_usd_hr}[tier] or 0.0
            usd = count * per_hour * (hpm if tier == "reserved" else H[i["slot"]])
        out.append({"site": i["site"], "offer": i["offer"], "tier": tier, "slot": i["slot"], "count": count,
                    "usd_per_instance_hour": per_hour, "usd_per_gpu_month": per_gpu_month,
                    "usd_per_month": float(usd)})
    return out
