"""Tiny random instances: the MILP optimum equals an exhaustive search (replica form), and
pooled optimum <= replica optimum <= pooled plan after rounding.

Each instance: one realtime workload (llama-3-2-3b, one query class) from one user region over
two UTC slots; an on-prem site with owned L4s (power budget, electricity, idle draw, fixed
cost) and GCP europe-west4 (one L4 offer after dominance pruning: reserved / on-demand / spot).
The search enumerates every baseline (owned, reserved instances) and, per slot, every use of
owned GPUs and every on-demand / spot count; it prices and checks each choice with its own
arithmetic (no solver, no model code).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from planner import api
from planner.derive.candidates import build_candidates
from planner.derive.power import gpu_kw_factor
from planner.input.catalog import load_catalog
from planner.input.consistency import check
from planner.input.loader import LoadedScenario
from planner.input.schema import Scenario
from planner.optimise.backends import SolveOptions

HPM = 730.0
SLOTS = [("a", 0, 12), ("b", 12, 24)]


def tiny_scenario(owned: int, budget_kw: float, elec: float, idle: float, fixed: float, fracs: tuple[float, float],
                  pricing: list[str], nplus1: bool, rps: float | None = None) -> dict:
    demand_scale = rps if rps is not None else 1.0
    profile = [fracs[0]] * 12 + [fracs[1]] * 12
    peak = max(fracs) * demand_scale
    prof = [p / max(fracs) if max(fracs) > 0 else 0.0 for p in profile]
    return {
        "name": "tiny",
        "user_regions": [{"id": "u", "location": {"region": "gcp/europe-west4"}, "utc_offset_hours": 0}],
        "sites": [{
            "id": "dc", "kind": "onprem", "location": {"lat": 52.37, "lon": 4.9}, "country": "NL",
            "power_budget_kw": budget_kw, "pue": 1.3, "host_overhead": 0.3, "electricity_usd_per_kwh": elec,
            "idle_power_fraction": idle, "fixed_usd_per_month": fixed,
            "owned_gpus": [{"accelerator": "L4", "count": owned, "usd_per_gpu_hour": 0.2}],
        }],
        "cloud": [{"provider": "gcp", "regions": ["europe-west4"], "accelerators": ["L4"]}],
        "workloads": [{
            "id": "chat", "kind": "realtime_chat", "tenant": "t", "feature": "f", "model": "llama-3-2-3b",
            "query_classes": [{"id": "q", "share": 1.0, "input_tokens": 500, "output_tokens": 100}],
            "demand": [{"user_region": "u", "peak_rps": peak, "profile": prof}],
            "redundancy": {"mode": "n_plus_1" if nplus1 else "none"},
        }],
        "time_slots": [{"id": i, "start_hour": a, "end_hour": b} for i, a, b in SLOTS],
        "policies": {"pricing_models": pricing, "hours_per_month": HPM,
                     "egress": {"internet_usd_per_gb": {"gcp": 0.0}, "onprem_internet_usd_per_gb": 0.0}},
    }


def resolve(doc: dict):
    sc = Scenario.model_validate(doc)
    loaded = LoadedScenario(scenario=sc, path=Path("tiny.yaml"), content_hash="test", variant=None, raw=doc)
    return check(loaded, load_catalog())


def brute_force(res) -> float | None:
    """Cheapest plan by exhaustive search; None if there is none."""
    cs = build_candidates(res)
    by_site = {c.site: c for c in cs.triples}
    assert set(by_site) <= {"dc", "gcp-europe-west4"} and len(cs.triples) == len(by_site)
    s = res.scenario
    pol = s.policies
    d, cap_share = pol.spot.derating, pol.spot.max_share
    wl = cs.loads["chat"]
    demand = {t: wl.peak(t) for t, _, _ in SLOTS}
    H = {t: (b - a) * HPM / 24 for t, a, b in SLOTS}
    nplus1 = s.workloads[0].redundancy.mode == "n_plus_1"
    dc, cl = by_site.get("dc"), by_site.get("gcp-europe-west4")
    site = res.sites["dc"]
    if dc is not None:
        rho_dc = dc.rps["q"].rps
        rpi_dc = int(dc.offer.gpus // dc.shape.gpus)  # on-prem: GPUs one by one
        f = gpu_kw_factor(site, dc.offer)
        phi = site.idle_power_fraction
    if cl is not None:
        rho_cl = cl.rps["q"].rps
        rpi_cl = int(cl.offer.gpus // cl.shape.gpus)
    owned_max = dc.offer.owned if dc is not None else 0
    tiers = cl.tiers if cl is not None else []
    res_max = 6 if "reserved" in tiers else 0
    burst_max = 6
    best = None
    for n_own, n_res in itertools.product(range(owned_max + 1), range(res_max + 1)):
        base = n_res * (cl.offer.reserved_usd_hr * HPM if n_res else 0.0)
        if n_own > 0:
            base += site.fixed_usd_per_month
        total = base
        for t, _, _ in SLOTS:
            slot_best = None
            for r_own in range(n_own * (rpi_dc if dc else 0) + 1):
                g_own = r_own * (dc.shape.gpus if dc else 0)
                kw = f * (phi * n_own + (1 - phi) * g_own) if dc is not None else 0.0
                if kw > site.power_budget_kw * (1 + 1e-9):
                    continue
                elec = kw * H[t] * site.electricity_usd_per_kwh
                cap_dc = r_own * rho_dc if dc is not None else 0.0
                r_res = n_res * (rpi_cl if cl else 0)
                for r_od in range(burst_max + 1 if "on_demand" in tiers else 1):
                    for r_sp in range(burst_max + 1 if "spot" in tiers else 1):
                        cap_cl_ns = (r_res + r_od) * rho_cl if cl is not None else 0.0
                        cap_sp = r_sp * d * rho_cl if cl is not None else 0.0
                        cap = cap_dc + cap_cl_ns + cap_sp
                        if demand[t] > 0 and cap < demand[t] * (1 - 1e-9):
                            continue
                        if cap_sp > cap_share * cap * (1 + 1e-9) + 1e-12:
                            continue
                        if nplus1 and demand[t] > 0:
                            # N+1: each site alone (non-spot) carries the slot's demand
                            if len(by_site) < 2:
                                continue
                            if min(cap_dc, cap_cl_ns) < demand[t] * (1 - 1e-9):
                                continue
                        cost = elec
                        if r_od:
                            cost += math.ceil(r_od / rpi_cl) * cl.offer.ondemand_usd_hr * H[t]
                        if r_sp:
                            cost += math.ceil(r_sp / rpi_cl) * cl.offer.spot_usd_hr * H[t]
                        if slot_best is None or cost < slot_best:
                            slot_best = cost
            if slot_best is None:
                total = None
                break
            total += slot_best
        if total is not None and (best is None or total < best - 1e-12):
            best = total
    return best


params = st.fixed_dictionaries({
    "owned": st.integers(0, 3),
    "budget_kw": st.floats(0.12, 0.6),
    "elec": st.floats(0.05, 0.6),
    "idle": st.sampled_from([0.0, 0.3]),
    "fixed": st.sampled_from([0.0, 40.0, 400.0]),
    "fracs": st.tuples(st.one_of(st.just(0.0), st.floats(0.05, 3.2)), st.floats(0.1, 3.2)),
    "pricing": st.sampled_from([["on_demand"], ["reserved", "on_demand"], ["on_demand", "spot"],
                                ["reserved", "on_demand", "spot"]]),
    "nplus1": st.booleans(),
})


def _rps_unit() -> float:
    """Requests/s one L4 replica of llama-3-2-3b sustains for the class (scales the demand)."""
    res = resolve(tiny_scenario(1, 1.0, 0.1, 0.0, 0.0, (1.0, 1.0), ["on_demand"], False))
    cs = build_candidates(res)
    return next(c for c in cs.triples if c.site == "gcp-europe-west4").rps["q"].rps


@pytest.fixture(scope="module")
def rps_unit() -> float:
    return _rps_unit()


@settings(max_examples=220, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=params)
def test_milp_matches_brute_force(p, rps_unit):
    # Knife edges: a demand within 1e-4 of a capacity step (a whole replicas + b spot replicas
    # at 0.8) is decided by the solver's feasibility tolerance (1e-6), not by the model.
    steps = [a + 0.8 * b for a in range(10) for b in range(10)]
    assume(all(min(abs(f - x) for x in steps) > 1e-4 for f in p["fracs"]))
    if p["owned"] == 0:
        p = {**p, "fixed": 0.0}
    res = resolve(tiny_scenario(**p, rps=rps_unit))
    expected = brute_force(res)
    opts = SolveOptions(time_limit_s=30, gap=0.0, heuristic=True)
    if expected is None:
        with pytest.raises((api.InfeasibleError, api.NoPlanError)):
            api.solve(res, opts, integrality="replica")
        return
    rep = api.solve(res, opts, integrality="replica")
    assert rep.status == "optimal"
    got = rep.data["solve"]["objective"]
    assert got == pytest.approx(expected, rel=1e-6, abs=1e-6)
    ver = api.verify(res, rep)
    assert ver.ok, ver.violations
    pooled = api.solve(res, opts, integrality="pooled")
    rnd = pooled.data["solve"]["rounding"]
    assert rnd["pooled_objective"] <= got * (1 + 1e-6) + 1e-6
    assert got <= rnd["rounded_objective"] * (1 + 1e-6) + 1e-6
    assert api.verify(res, pooled).ok
