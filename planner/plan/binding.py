"""Binding constraints of a plan, computed from the Plan and the scenario (never from a model).

A row is listed when the limit it stands for stops the plan from taking one more unit of the
thing it limits. ``family`` is in the architect's words; ``label`` is the readable label of the
model's row for the same limit (``power_cap__<label>`` in an LP file: ``dc__day``), or
``<site> <offer> <tier>`` for inventory. Families:

- ``power budget`` (declared site, slot): facility kW = sum_o f_o (phi installed + (1 - phi) used)
  (see :func:`planner.plan.costing.site_power_kw`); binds when the kW left is less than one more
  GPU needs: f_o (1 - phi) for an installed GPU idle in that slot, f_o for a new one, the least
  over the site's offers;
- ``cloud quota`` (cloud site, accelerator, slot): GPUs of that accelerator held in the slot
  (reserved + on-demand + spot instances); binds when the GPUs left are fewer than the smallest
  instance of that accelerator at the site;
- ``inventory`` (declared site, offer, ``tier`` owned or bought): every owned (or buyable) GPU
  holds a replica in some slot (installed but idle GPUs do not bind); ``slot`` is the first slot
  where they all do;
- ``spot share cap`` (workload, slot, where spot is used): spot capacity
  S = sum d mix r_spot against the workload's capacity S + N, N = sum mix r_non-spot (mix = the
  requests/s of the slot's class mix one replica carries, as in the model's spot row; d the spot
  derating); activity and limit are shares (S / (S + N) and ``policies.spot.max_share``); binds
  when one more spot replica of an offer the workload uses there would exceed the cap;
- ``minimum sites`` (workload with min_sites > 1): sites holding replicas of the workload; binds
  when it equals ``redundancy.min_sites`` (no site can be given up).

``slack`` is the room left before the limit (limit - activity for an upper limit, activity -
limit for ``minimum sites``), in the row's ``unit``. Comparisons use :mod:`planner.tolerance`.
"""

from __future__ import annotations

from collections import defaultdict

from planner.derive.candidates import Candidate, CandidateSet
from planner.derive.demand import mix_rate
from planner.derive.power import gpu_kw_factor
from planner.plan.costing import offer_index, site_power_kw
from planner.plan.plan import Plan
from planner.tolerance import TOL, leq, scale

FAMILIES = ("power budget", "cloud quota", "inventory", "spot share cap", "minimum sites")
UNITS = ("kw", "gpus", "share", "sites")


def _row(family: str, unit: str, label: str, activity: float, limit: float, slack: float, *, site=None,
         workload=None, slot=None, accelerator=None, tier=None) -> dict:
    return {"family": family, "site": site, "workload": workload, "slot": slot, "accelerator": accelerator,
            "tier": tier, "activity": float(activity), "limit": float(limit), "slack": float(slack), "unit": unit,
            "label": label}


def mix_rps(cs: CandidateSet, c: Candidate, slot: str, mix: dict[str, float] | None = None) -> float:
    """Requests/s of w's class mix in ``slot`` one replica of candidate ``c`` carries (the
    model's spot-row rate, demand.mix_rate)."""
    return mix_rate(cs.loads[c.workload], slot, {k: e.rps for k, e in c.rps.items()}, mix)


def binding_constraints(cs: CandidateSet, plan: Plan) -> list[dict]:
    """Binding rows of ``plan`` (sorted by family, site, workload, slot, accelerator)."""
    res = cs.res
    s = res.scenario
    offers = offer_index(res)
    slots = [t.id for t in s.time_slots]
    cand = cs.by_key()
    out: list[dict] = []

    # ---- power budget per declared site and slot
    power = site_power_kw(res, plan, offers)
    installed: dict[tuple, float] = defaultdict(float)
    for i in plan.instances:
        if i["tier"] in ("owned", "bought"):
            installed[(i["site"], i["offer"])] += i["count"] * offers[(i["site"], i["offer"])].gpus
    used: dict[tuple, float] = defaultdict(float)
    for r in plan.replicas:
        used[(r["site"], r["offer"], r["slot"])] += r["gpus"]
    for (sid, t), kw in sorted(power.items()):
        site = res.sites[sid]
        if site.power_budget_kw is None:
            continue
        phi = site.idle_power_fraction
        steps = []
        for o in site.offers:
            f = gpu_kw_factor(site, o)
            if f <= 0:
                continue
            idle = installed.get((sid, o.id), 0.0) - used.get((sid, o.id, t), 0.0)
            steps.append(f * (1.0 - phi) if idle >= 1.0 - TOL else f)
        step = min(steps, default=0.0)
        limit = float(site.power_budget_kw)
        slack = limit - kw
        if not leq(step, slack, limit):
            out.append(_row("power budget", "kw", f"{sid}__{t}", kw, limit, slack, site=sid,
                            slot=t))

    # ---- cloud quota per site, accelerator and slot
    held: dict[tuple, float] = defaultdict(float)
    for i in plan.instances:
        o = offers[(i["site"], i["offer"])]
        for t in ([i["slot"]] if i["slot"] is not None else slots):
            held[(i["site"], o.accelerator, t)] += i["count"] * o.gpus
    for sid, site in sorted(res.sites.items()):
        for acc, quota in sorted(site.quota_gpus.items()):
            sizes = [o.gpus for o in site.offers if o.accelerator == acc]
            if not sizes:
                continue
            step = min(sizes)
            for t in slots:
                g = held.get((sid, acc, t), 0.0)
                slack = float(quota) - g
                if not leq(step, slack, quota):
                    out.append(_row("cloud quota", "gpus", f"{sid}__{acc}__{t}", g, quota, slack,
                                    site=sid, slot=t, accelerator=acc))

    # ---- owned / buyable inventory fully in use
    busy: dict[tuple, float] = defaultdict(float)
    for r in plan.replicas:
        if r["tier"] in ("owned", "bought"):
            busy[(r["site"], r["offer"], r["tier"], r["slot"])] += r["gpus"]
    for sid, site in sorted(res.sites.items()):
        if not site.declared:
            continue
        for o in site.offers:
            for tier, limit in (("owned", o.owned), ("bought", o.buyable)):
                if limit <= 0:
                    continue
                per_slot = [(t, busy.get((sid, o.id, tier, t), 0.0)) for t in slots]
                peak = max(g for _t, g in per_slot)
                if leq(limit, peak):
                    first = next(t for t, g in per_slot if leq(limit, g))
                    out.append(_row("inventory", "gpus", f"{sid} {o.id} {tier}", peak, limit, limit - peak,
                                    site=sid, slot=first, accelerator=o.accelerator, tier=tier))

    # ---- spot share cap per workload and slot
    pol = s.policies.spot
    d, cap = pol.derating, pol.max_share
    spot_cap: dict[tuple, list] = defaultdict(lambda: [0.0, 0.0, []])  # S, N, mixes of spot rows
    mixes_of: dict[tuple, dict[str, float]] = {}
    for r in plan.replicas:
        c = cand.get((r["workload"], r["site"], r["offer"]))
        if c is None:
            continue
        wt = (r["workload"], r["slot"])
        if wt not in mixes_of:
            mixes_of[wt] = cs.loads[wt[0]].slot_mix(wt[1])
        m = mix_rps(cs, c, r["slot"], mixes_of[wt])
        acc = spot_cap[(r["workload"], r["slot"])]
        if r["tier"] == "spot":
            acc[0] += d * m * r["replicas"]
            if r["replicas"] > 0 and m > 0:
                acc[2].append(m)
        else:
            acc[1] += m * r["replicas"]
    for (w, t), (S, N, mixes) in sorted(spot_cap.items()):
        if not mixes:
            continue
        total = S + N
        share = S / total if total > 0 else 0.0
        more = (1.0 - cap) * (S + d * min(mixes))
        if more > cap * N + TOL * scale(more, cap * N):
            out.append(_row("spot share cap", "share", f"{w}__{t}", share, cap, cap - share,
                            workload=w, slot=t))

    # ---- minimum sites
    sites_of: dict[str, set] = defaultdict(set)
    for r in plan.replicas:
        if r["replicas"] > 0:
            sites_of[r["workload"]].add(r["site"])
    for w in s.workloads:
        need = w.redundancy.min_sites
        if need <= 1:
            continue
        n = len(sites_of.get(w.id, ()))
        if n <= need:
            out.append(_row("minimum sites", "sites", w.id, n, need, n - need,
                            workload=w.id))

    order = {f: i for i, f in enumerate(FAMILIES)}
    slot_order = {t: i for i, t in enumerate(slots)}
    return sorted(out, key=lambda r: (order[r["family"]], r["site"] or "", r["workload"] or "",
                                      slot_order.get(r["slot"], -1), r["accelerator"] or "", r["tier"] or ""))
