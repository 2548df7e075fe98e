"""The independent checker (planner/verify.py) on hand-made Plans: no solver involved.

Scenarios are small dicts resolved against the shipped catalogs; replica rates come from
``build_candidates`` (llama-3-2-3b, 600 in / 150 out on one L4: ~5.22 requests/s with the
3 s TTFT / 80 ms TPOT targets of the long-context case, ~5.6 without). Users ``eu`` sit at
azure/westeurope (Amsterdam): gcp europe-west4 27.9 ms, europe-west1 28.6 ms, us-east4 119.9 ms.
"""

from __future__ import annotations

import ast
import copy
import math
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import pytest

from planner.derive.candidates import build_candidates
from planner.derive.demand import build_loads
from planner.input.catalog import load_catalog
from planner.input.consistency import check
from planner.input.loader import LoadedScenario
from planner.input.schema import Scenario
from planner.plan.plan import Plan, SolveRecord
from planner.verify import VerifyReport, verify_plan, verify_result

WEST4 = "gcp-europe-west4"
WEST1 = "gcp-europe-west1"
USE4 = "gcp-us-east4"
L4_W4 = "gcp-europe-west4-g2-standard-4"
L4_W1 = "gcp-europe-west1-g2-standard-4"
L4_E4 = "gcp-us-east4-g2-standard-4"
H100_W4 = "gcp-europe-west4-a3-highgpu-1g"
H100_E4 = "gcp-us-east4-a3-highgpu-1g"
DAY = [{"id": "day", "start_hour": 0, "end_hour": 24}]
SHORT = {"id": "short", "share": 1.0, "input_tokens": 600, "output_tokens": 150}
EU = [{"id": "eu", "location": {"region": "azure/westeurope"}, "utc_offset_hours": 0}]
ROW_KEYS = {"workload", "lost_site", "slot", "user_region", "query_class", "unserved_rps"}


# ---------------------------------------------------------------------------- helpers
@lru_cache(maxsize=1)
def catalog():
    return load_catalog()


def resolve(doc: dict):
    sc = Scenario.model_validate(copy.deepcopy(doc))
    loaded = LoadedScenario(scenario=sc, path=Path("verify.yaml"), content_hash="test", variant=None, raw=doc)
    return check(loaded, catalog())


def gcp(*regions: str, accelerators=("L4",)) -> dict:
    return {"provider": "gcp", "regions": list(regions), "accelerators": list(accelerators)}


def chat(wid: str = "chat", peak: float = 20.0, classes=None, model="llama-3-2-3b", **extra) -> dict:
    return {"id": wid, "kind": "realtime_chat", "tenant": "t", "feature": "f", "model": model,
            "query_classes": classes or [SHORT], "demand": [{"user_region": "eu", "peak_rps": peak}], **extra}


def scenario(workloads, cloud=(), sites=(), users=None, slots=DAY, **policies) -> dict:
    return {"name": "verify", "user_regions": users or EU, "sites": list(sites), "cloud": list(cloud),
            "workloads": list(workloads), "time_slots": list(slots),
            "policies": {"pricing_models": ["on_demand"], **policies}}


def rates(res) -> dict[tuple[str, str, str], dict[str, float]]:
    """(workload, site, offer) -> {load class key: requests/s per replica} of every candidate."""
    return {c.key: {k: e.rps for k, e in c.rps.items()} for c in build_candidates(res).triples}


def shape_and_rates(res, loads, w_id: str, sid: str, oid: str):
    """Replica shape and per-class rates of any (workload, site, offer), candidate or not (a standby
    site beyond the normal RTT SLO is not a candidate), through the throughput facade."""
    s = res.scenario
    w = s.workload(w_id)
    site = res.sites[sid]
    o = next(o for o in site.offers if o.id == oid)
    shape = res.throughput.shape(w.model, o.accelerator, *site.replica_room(o))
    rho = {lc.key: res.throughput.rps(w.model, o.accelerator, shape, lc.qclass.input_tokens, lc.qclass.output_tokens,
                                      w.latency.ttft_ms, w.latency.tpot_ms, s.workload(lc.origin).prefix_cache_rate).rps
           for lc in loads[w_id].classes}
    return shape, rho


def make_plan(res, reps: dict, routes: dict, open_sites=()) -> Plan:
    """A Plan from replicas {(workload, site, offer, tier): n} and routes {(workload, user, site): share},
    the same in every slot. Each load class routed to a site is served on the first offer listed
    for that workload and site that runs it; instances are the fewest whole ones that hold the
    replicas (baseline tiers: the most any slot needs, for the whole month)."""
    s = res.scenario
    loads = build_loads(s, {u: r.utc_offset_hours for u, r in res.user_regions.items()})
    offers = {(sid, o.id): o for sid, site in res.sites.items() for o in site.offers}
    slots = [t.id for t in s.time_slots]
    plan = Plan(open_sites=list(open_sites), solve=SolveRecord(status="optimal"))
    gpus: dict[tuple, float] = defaultdict(float)
    rho = {}
    for (w, sid, oid, tier), n in reps.items():
        shape, rho[(w, sid, oid)] = shape_and_rates(res, loads, w, sid, oid)
        for t in slots:
            plan.replicas.append({"workload": w, "site": sid, "offer": oid, "tier": tier, "slot": t,
                                  "replicas": float(n), "gpus": float(n) * shape.gpus})
            gpus[(sid, oid, tier, t)] += float(n) * shape.gpus
    need: dict[tuple, float] = defaultdict(float)
    for (sid, oid, tier, t), g in gpus.items():
        count = float(math.ceil(g / offers[(sid, oid)].gpus - 1e-9))
        if tier in ("owned", "bought", "reserved"):
            need[(sid, oid, tier, None)] = max(need[(sid, oid, tier, None)], count)
        else:
            need[(sid, oid, tier, t)] = count
    plan.instances = [{"site": sid, "offer": oid, "tier": tier, "slot": t, "count": c}
                      for (sid, oid, tier, t), c in need.items()]
    for (w, u, sid), x in routes.items():
        for t in slots:
            plan.routes.append({"workload": w, "user_region": u, "site": sid, "slot": t, "share": float(x)})
    for w in s.workloads:
        wl = loads[w.id]
        for lc in wl.classes:
            for t in slots:
                by_site: dict[str, float] = defaultdict(float)
                for (ww, u, sid), x in routes.items():
                    if ww == w.id:
                        by_site[sid] += wl.peak_rps.get((lc.key, u, t), 0.0) * x
                for sid, rps in by_site.items():
                    if rps <= 0:
                        continue
                    oid = next(o for (ww, ss, o, _tau) in reps if ww == w.id and ss == sid and rho[(ww, ss, o)][lc.key] > 0)
                    plan.serving.append({"workload": w.id, "class": lc.key, "site": sid, "offer": oid, "slot": t,
                                         "rps": rps})
    return plan


def rows_of(rep: VerifyReport, **match) -> list[dict]:
    return [r for r in rep.failover if all(r[k] == v for k, v in match.items())]


def about(rep: VerifyReport, *words: str) -> list[str]:
    return [v for v in rep.violations if all(w in v for w in words)]


# ---------------------------------------------------------------------------- N+1 kept
def nplus1_doc(peak: float = 20.0, **extra) -> dict:
    return scenario([chat(peak=peak, redundancy={"mode": "n_plus_1"}, **extra)], [gcp("europe-west4", "europe-west1")])


def two_site_plan(res, n: int = 4) -> Plan:
    return make_plan(res, {("chat", WEST4, L4_W4, "on_demand"): n, ("chat", WEST1, L4_W1, "on_demand"): n},
                     {("chat", "eu", WEST4): 0.5, ("chat", "eu", WEST1): 0.5})


def test_plan_that_keeps_nplus1_passes_with_zero_failover_rows():
    """20 rps on 4 L4 (~5.6 rps each) at each of two sites: either site alone carries it all."""
    res = resolve(nplus1_doc())
    rep = verify_plan(res, two_site_plan(res))
    assert rep.ok, rep.violations
    assert rep.failover == [
        {"workload": "chat", "lost_site": WEST1, "slot": "day", "user_region": "eu", "query_class": "short",
         "unserved_rps": 0.0},
        {"workload": "chat", "lost_site": WEST4, "slot": "day", "user_region": "eu", "query_class": "short",
         "unserved_rps": 0.0},
    ]
    assert rep.recomputed_cost > 0
    assert rep.to_dict() == {"ok": True, "violations": [], "warnings": [],
                             "recomputed_usd_per_month": rep.recomputed_cost}


def test_short_surviving_capacity_fails_nplus1():
    """3 L4 per site: normal serving fits (10 rps per site), losing a site leaves ~16.8 of 20 rps."""
    res = resolve(nplus1_doc())
    rep = verify_plan(res, two_site_plan(res, n=3))
    rho = rates(res)[("chat", WEST4, L4_W4)]["short"]
    assert not rep.ok
    for lost in (WEST4, WEST1):
        (row,) = rows_of(rep, lost_site=lost)
        assert row["unserved_rps"] == pytest.approx(20.0 - 3 * rho, rel=1e-9)
        assert about(rep, "n_plus_1", "chat", f"losing {lost}", "slot day", "class short", "from eu")


def test_one_site_only_leaves_everything_unserved():
    res = resolve(nplus1_doc())
    plan = make_plan(res, {("chat", WEST4, L4_W4, "on_demand"): 8}, {("chat", "eu", WEST4): 1.0})
    rep = verify_plan(res, plan)
    assert rows_of(rep) == [{"workload": "chat", "lost_site": WEST4, "slot": "day", "user_region": "eu",
                             "query_class": "short", "unserved_rps": 20.0}]
    (msg,) = about(rep, "n_plus_1")
    assert "losing gcp-europe-west4" in msg and "20" in msg and "only at gcp-europe-west4" in msg


# ---------------------------------------------------------------------------- class-blind (nplus1_classes.yaml)
LONG_DOC = scenario(
    [chat(peak=30.0, latency={"ttft_ms": 3000, "tpot_ms": 80}, redundancy={"mode": "n_plus_1"},
          classes=[{"id": "short", "share": 0.8, "input_tokens": 600, "output_tokens": 150},
                   {"id": "long", "share": 0.2, "input_tokens": 30000, "output_tokens": 300}])],
    [gcp("europe-west4", "europe-west1", accelerators=["L4", "H100"]), gcp("us-east4", accelerators=["L4", "H100"])])


def test_class_blind_failover_fails_naming_the_class():
    """The long-context class runs only on H100 (a 30k-token prompt misses the 3 s TTFT on L4).
    Everything is served at us-east4 (L4 for short, H100 for long); europe-west4 keeps L4 standby
    for the whole 30 rps of the mix by aggregate, yet losing us-east4 leaves `long` unserved."""
    res = resolve(LONG_DOC)
    rho = rates(res)
    assert rho[("chat", WEST4, L4_W4)]["long"] == 0.0 and rho[("chat", USE4, H100_E4)]["long"] > 0
    n_short = math.ceil(24.0 / rho[("chat", USE4, L4_E4)]["short"])
    n_long = math.ceil(6.0 / rho[("chat", USE4, H100_E4)]["long"])
    n_mix = math.ceil(30.0 / rho[("chat", WEST4, L4_W4)]["short"])  # aggregate N+1 is met
    reps = {("chat", USE4, L4_E4, "on_demand"): n_short, ("chat", USE4, H100_E4, "on_demand"): n_long,
            ("chat", WEST4, L4_W4, "on_demand"): n_mix}
    rep = verify_plan(res, make_plan(res, reps, {("chat", "eu", USE4): 1.0}))
    assert not rep.ok
    assert rows_of(rep, lost_site=USE4, query_class="long")[0]["unserved_rps"] == pytest.approx(6.0, rel=1e-9)
    assert rows_of(rep, lost_site=USE4, query_class="short")[0]["unserved_rps"] == 0.0
    assert all(r["unserved_rps"] == 0.0 for r in rows_of(rep, lost_site=WEST4))
    assert len(rep.failover) == 4
    (msg,) = about(rep, "n_plus_1")
    assert "class long" in msg and f"losing {USE4}" in msg and "from eu" in msg and "slot day" in msg
    # H100 standby at europe-west4 for the long class keeps the promise
    reps[("chat", WEST4, H100_W4, "on_demand")] = n_long
    rep = verify_plan(res, make_plan(res, reps, {("chat", "eu", USE4): 1.0}))
    assert rep.ok, rep.violations
    assert all(r["unserved_rps"] == 0.0 for r in rep.failover)


# ---------------------------------------------------------------------------- latency-blind
def test_latency_blind_failover_fails_and_failover_rtt_admits_it():
    """network_rtt_ms 35: europe-west4 (27.9 ms) serves, us-east4 (119.9 ms) holds the standby.
    Losing europe-west4 leaves the users with no site within the SLO, unless
    redundancy.failover_network_rtt_ms admits us-east4."""
    reps = {("chat", WEST4, L4_W4, "on_demand"): 4, ("chat", USE4, L4_E4, "on_demand"): 4}
    routes = {("chat", "eu", WEST4): 1.0}
    for fo, ok in ((None, False), (100.0, False), (150.0, True)):
        red = {"mode": "n_plus_1", **({"failover_network_rtt_ms": fo} if fo else {})}
        res = resolve(scenario([chat(latency={"network_rtt_ms": 35}, redundancy=red)],
                               [gcp("europe-west4"), gcp("us-east4")]))
        rep = verify_plan(res, make_plan(res, reps, routes))
        assert rep.ok is ok, (fo, rep.violations)
        assert rows_of(rep, lost_site=USE4)[0]["unserved_rps"] == 0.0
        lost_w4 = rows_of(rep, lost_site=WEST4)[0]["unserved_rps"]
        if ok:
            assert lost_w4 == 0.0
        else:
            assert lost_w4 == pytest.approx(20.0)
            (msg,) = about(rep, "n_plus_1", f"losing {WEST4}", "class short", "from eu")
            assert f"within {fo or 35:g} ms" in msg


def test_route_beyond_the_rtt_slo_is_a_violation():
    res = resolve(scenario([chat(latency={"network_rtt_ms": 35})], [gcp("europe-west4"), gcp("us-east4")]))
    plan = make_plan(res, {("chat", USE4, L4_E4, "on_demand"): 4}, {("chat", "eu", USE4): 1.0})
    rep = verify_plan(res, plan)
    assert about(rep, "latency", USE4, "SLO 35")


# ---------------------------------------------------------------------------- spot does not count
def test_spot_capacity_does_not_count_in_failover():
    """europe-west1 serves on demand; europe-west4 holds 4 spot L4 (within the spot cap). Losing
    europe-west1 leaves only spot: unserved. The same standby on demand passes."""
    doc = scenario([chat(redundancy={"mode": "n_plus_1"})], [gcp("europe-west4", "europe-west1")],
                   pricing_models=["on_demand", "spot"])
    res = resolve(doc)
    routes = {("chat", "eu", WEST1): 1.0}
    rep = verify_plan(res, make_plan(res, {("chat", WEST1, L4_W1, "on_demand"): 4,
                                           ("chat", WEST4, L4_W4, "spot"): 4}, routes))
    assert not about(rep, "spot:"), rep.violations
    assert rows_of(rep, lost_site=WEST1)[0]["unserved_rps"] == pytest.approx(20.0)
    assert rows_of(rep, lost_site=WEST4)[0]["unserved_rps"] == 0.0
    assert rep.violations == about(rep, "n_plus_1", f"losing {WEST1}", "class short")
    rep = verify_plan(res, make_plan(res, {("chat", WEST1, L4_W1, "on_demand"): 4,
                                           ("chat", WEST4, L4_W4, "on_demand"): 4}, routes))
    assert rep.ok, rep.violations


def test_spot_over_its_cap_is_a_violation():
    doc = scenario([chat()], [gcp("europe-west4")], pricing_models=["on_demand", "spot"])
    res = resolve(doc)
    plan = make_plan(res, {("chat", WEST4, L4_W4, "spot"): 6}, {("chat", "eu", WEST4): 1.0})
    rep = verify_plan(res, plan)
    assert rep.violations == about(rep, "spot:", "chat", "cap 50%")


# ---------------------------------------------------------------------------- escalation
def escalation_doc() -> dict:
    triage = chat("triage", peak=20.0, redundancy={"mode": "n_plus_1"},
                  routing={"escalate_to": "big", "escalation_share": 0.25})
    big = chat("big", peak=10.0, model="llama-3-1-8b")
    return scenario([triage, big], [gcp("europe-west4", "europe-west1")])


def test_escalated_load_from_an_nplus1_workload_is_protected_on_its_target():
    """triage (N+1) sends 25 % of its 20 rps to big (no redundancy of its own). big's own class
    is not protected; the escalated 5 rps are, so big needs standby for them at a second site."""
    res = resolve(escalation_doc())
    rho = rates(res)
    n_all = math.ceil(15.0 / rho[("big", WEST4, L4_W4)]["short"])
    n_esc = math.ceil(5.0 / rho[("big", WEST1, L4_W1)]["triage~short"])
    reps = {("triage", WEST4, L4_W4, "on_demand"): 4, ("triage", WEST1, L4_W1, "on_demand"): 4,
            ("big", WEST4, L4_W4, "on_demand"): n_all}
    routes = {("triage", "eu", WEST4): 0.5, ("triage", "eu", WEST1): 0.5, ("big", "eu", WEST4): 1.0}
    rep = verify_plan(res, make_plan(res, reps, routes))
    big_rows = rows_of(rep, workload="big")
    assert big_rows == [{"workload": "big", "lost_site": WEST4, "slot": "day", "user_region": "eu",
                         "query_class": "triage~short", "unserved_rps": pytest.approx(5.0, rel=1e-9)}]
    (msg,) = about(rep, "n_plus_1")
    assert "big losing gcp-europe-west4" in msg and "class triage~short" in msg
    assert all(r["unserved_rps"] == 0.0 for r in rows_of(rep, workload="triage"))
    # standby for the escalated share only (not big's own 10 rps) at europe-west1 keeps the promise
    reps[("big", WEST1, L4_W1, "on_demand")] = n_esc
    rep = verify_plan(res, make_plan(res, reps, routes))
    assert rep.ok, rep.violations
    assert {r["query_class"] for r in rows_of(rep, workload="big")} == {"triage~short"}
    assert n_esc < math.ceil(15.0 / rho[("big", WEST1, L4_W1)]["short"])


# ---------------------------------------------------------------------------- tampered plans
def test_missing_instance_fails():
    res = resolve(nplus1_doc())
    plan = two_site_plan(res)
    plan.instances = [i for i in plan.instances if i["site"] != WEST1]
    rep = verify_plan(res, plan)
    assert about(rep, "packing", L4_W1)


def test_route_share_0_999_fails():
    res = resolve(nplus1_doc())
    plan = two_site_plan(res)
    plan.routes[0]["share"] = 0.499
    rep = verify_plan(res, plan)
    assert about(rep, "routes", "routed 0.999, not 1")
    assert about(rep, "serving", "routed demand is 9.98")


def test_rps_1e_6_above_capacity_fails():
    """Demand sitting 1e-6 rps above the step of 4 L4 replicas."""
    res0 = resolve(scenario([chat()], [gcp("europe-west4")]))
    rho = rates(res0)[("chat", WEST4, L4_W4)]["short"]
    for extra, ok in ((0.0, True), (1e-6, False)):
        res = resolve(scenario([chat(peak=4 * rho + extra)], [gcp("europe-west4")]))
        rep = verify_plan(res, make_plan(res, {("chat", WEST4, L4_W4, "on_demand"): 4}, {("chat", "eu", WEST4): 1.0}))
        assert rep.ok is ok, rep.violations
        if not ok:
            assert rep.violations == about(rep, "capacity", "chat", L4_W4, "has 4")


def test_failover_short_by_1e_7_relative_fails():
    """Each site alone is 1e-7 (relative) short of the whole demand: normal serving fits, N+1 does not."""
    res0 = resolve(nplus1_doc())
    rho = rates(res0)[("chat", WEST4, L4_W4)]["short"]
    res = resolve(nplus1_doc(peak=4 * rho * (1 + 1e-7)))
    rep = verify_plan(res, two_site_plan(res))
    assert rep.violations and rep.violations == about(rep, "n_plus_1")
    for row in rep.failover:
        assert row["unserved_rps"] == pytest.approx(4 * rho * 1e-7, rel=1e-3)


def test_plan_exact_to_1e_12_passes():
    """N+1 on the knife edge (either site alone carries exactly its 4 replicas' rate), every
    value of the plan off by 1e-12: within the tolerance."""
    res0 = resolve(nplus1_doc())
    rho = rates(res0)[("chat", WEST4, L4_W4)]["short"]
    res = resolve(nplus1_doc(peak=4 * rho))
    plan = two_site_plan(res)
    eps = 1e-12
    for r in plan.replicas:
        r["replicas"] += eps
        r["gpus"] += eps
    for i in plan.instances:
        i["count"] -= eps
    plan.routes[0]["share"] += eps
    plan.routes[1]["share"] -= eps
    for sv in plan.serving:
        sv["rps"] *= 1 + eps
    rep = verify_plan(res, plan)
    assert rep.ok, rep.violations
    assert [r["unserved_rps"] for r in rep.failover] == [0.0, 0.0]


def test_instance_not_whole_and_wrong_tier_fail():
    res = resolve(nplus1_doc())
    plan = two_site_plan(res)
    plan.instances[0]["count"] += 1e-6
    plan.instances[1]["tier"] = "reserved"  # not allowed by pricing_models
    rep = verify_plan(res, plan)
    assert about(rep, "instances", "not a whole number")
    assert about(rep, "cannot be had as reserved")


def test_non_finite_values_are_violations():
    res = resolve(nplus1_doc())
    plan = two_site_plan(res)
    plan.serving[0]["rps"] = float("nan")
    rep = verify_plan(res, plan)
    assert about(rep, "serving", "not finite")


# ---------------------------------------------------------------------------- declared sites
def onprem_doc(owned: int = 8, budget_kw: float = 50.0) -> dict:
    site = {"id": "dc", "kind": "onprem", "location": {"lat": 52.37, "lon": 4.9}, "country": "NL",
            "power_budget_kw": budget_kw, "pue": 1.3, "host_overhead": 0.3, "electricity_usd_per_kwh": 0.1,
            "owned_gpus": [{"accelerator": "L4", "count": owned, "usd_per_gpu_hour": 0.2}]}
    return scenario([chat()], sites=[site])


def test_declared_site_with_gpus_must_be_open():
    res = resolve(onprem_doc())
    reps, routes = {("chat", "dc", "dc-l4", "owned"): 4}, {("chat", "eu", "dc"): 1.0}
    rep = verify_plan(res, make_plan(res, reps, routes, open_sites=["dc"]))
    assert rep.ok, rep.violations
    rep = verify_plan(res, make_plan(res, reps, routes))
    assert rep.violations == about(rep, "open_sites", "dc")


def test_inventory_and_power_budget():
    res = resolve(onprem_doc(owned=3, budget_kw=0.3))
    rep = verify_plan(res, make_plan(res, {("chat", "dc", "dc-l4", "owned"): 4}, {("chat", "eu", "dc"): 1.0},
                                     open_sites=["dc"]))
    assert about(rep, "inventory", "dc", "owns 3")
    assert about(rep, "power", "dc", "budget 0.3 kW")


# ---------------------------------------------------------------------------- cost and results
def test_cost_against_reported_total_and_objective():
    res = resolve(nplus1_doc())
    plan = two_site_plan(res)
    cost = verify_plan(res, plan).recomputed_cost
    assert cost == pytest.approx(8 * 0.7429 * 730 / 2 + 8 * 0.7783 * 730 / 2, rel=1e-2)
    assert verify_plan(res, plan, reported_total=cost * (1 + 1e-12), reported_objective=cost).ok
    rep = verify_plan(res, plan, reported_total=cost + 0.01)
    assert rep.violations == about(rep, "cost", "result says")
    rep = verify_plan(res, plan, reported_objective=cost * (1 + 1e-8))
    assert rep.violations == about(rep, "cost", "solver objective")


def result_data(plan: Plan, status: str = "optimal", **extra) -> dict:
    t = plan.tables()
    return {"schema_version": "1.1", "instances": t["instances"], "placements": t["replicas"],
            "serving": t["serving"], "routes": t["routes"], "open_sites": t["open_sites"],
            "solve": {"status": status, "objective": None}, "scenario": {"content_hash": "test"}, **extra}


class _Result:
    def __init__(self, data: dict):
        self.data = data


def test_verify_result_reads_the_plan_and_refuses_non_plans():
    res = resolve(nplus1_doc())
    plan = two_site_plan(res)
    cost = verify_plan(res, plan).recomputed_cost
    rep = verify_result(res, _Result(result_data(plan, summary={"total_usd_per_month": cost})))
    assert rep.ok, rep.violations
    assert len(rep.failover) == 2
    rep = verify_result(res, _Result(result_data(plan, summary={"total_usd_per_month": cost + 1})))
    assert about(rep, "cost")
    for status in ("infeasible", "no_plan"):
        rep = verify_result(res, _Result(result_data(plan, status=status)))
        assert rep.violations == [f"result has status {status!r}, not a plan"]
    data = result_data(plan)
    data["scenario"]["content_hash"] = "other"
    assert verify_result(res, _Result(data)).warnings
    data["schema_version"] = "1.0"
    with pytest.raises(ValueError, match="1.1"):
        verify_result(res, _Result(data))


def test_verify_imports_nothing_of_the_optimiser():
    src = Path(__file__).parents[1] / "planner" / "verify.py"
    names = set()
    for node in ast.walk(ast.parse(src.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    bad = {n for n in names if n.split(".")[0] == "pulp" or n.startswith(("planner.optimise", "planner.api",
                                                                           "planner.plan.result"))}
    assert not bad
    assert "networkx" not in names


# ---------------------------------------------------------------------------- scale
def big_doc(n_workloads: int = 200, n_sites: int = 50, n_users: int = 4) -> dict:
    """n_sites on-prem sites across Europe, each workload N+1 with two classes over 6 slots."""
    sites = [{"id": f"s{i:02d}", "kind": "onprem", "location": {"lat": 40.0 + (i % 10) * 1.5, "lon": -5.0 + (i // 10) * 5},
              "country": "NL", "power_budget_kw": 1e6, "electricity_usd_per_kwh": 0.1,
              "owned_gpus": [{"accelerator": "L4", "count": 100000, "usd_per_gpu_hour": 0.2}]}
             for i in range(n_sites)]
    regions = ["azure/westeurope", "gcp/europe-west1", "gcp/europe-west4", "aws/eu-west-1"]
    users = [{"id": f"u{j}", "location": {"region": regions[j]}, "utc_offset_hours": j} for j in range(n_users)]
    classes = [{"id": "short", "share": 0.7, "input_tokens": 600, "output_tokens": 150},
               {"id": "mid", "share": 0.3, "input_tokens": 2000, "output_tokens": 300}]
    workloads = []
    for i in range(n_workloads):
        workloads.append({"id": f"w{i:03d}", "kind": "realtime_chat", "tenant": "t", "feature": "f",
                          "model": "llama-3-2-3b", "query_classes": classes,
                          "demand": [{"user_region": f"u{(i + j) % n_users}", "peak_rps": 5.0 + (i + 3 * j) % 7,
                                      "profile": [0.5 + 0.5 * ((h + i) % 24) / 23 for h in range(24)]}
                                     for j in range(2)],
                          "redundancy": {"mode": "n_plus_1"}})
    slots = [{"id": f"h{a:02d}", "start_hour": a, "end_hour": a + 4} for a in range(0, 24, 4)]
    return scenario(workloads, sites=sites, users=users, slots=slots)


def test_200_workloads_by_50_sites_verify_every_failover_case():
    doc = big_doc()
    res = resolve(doc)
    loads = build_loads(res.scenario, {u: r.utc_offset_hours for u, r in res.user_regions.items()})
    rho = {}
    for c in build_candidates(res).triples:
        rho.setdefault(c.workload, min(e.rps for e in c.rps.values()))
    slots = [t.id for t in res.scenario.time_slots]
    plan = Plan(open_sites=sorted(res.sites), solve=SolveRecord(status="feasible"))
    gpus: dict[tuple, float] = defaultdict(float)
    for i, w in enumerate(res.scenario.workloads):
        wl = loads[w.id]
        sites = [f"s{(i * 7 + j * 13) % 50:02d}" for j in range(4)]
        users = wl.user_regions()
        for t in slots:
            peak = wl.peak(t)
            n = math.ceil(peak / 3 / rho[w.id]) + 1  # any 3 of the 4 sites carry the slot's peak
            for sid in sites:
                plan.replicas.append({"workload": w.id, "site": sid, "offer": f"{sid}-l4", "tier": "owned", "slot": t,
                                      "replicas": float(n), "gpus": float(n)})
                gpus[(sid, t)] += n
                for u in users:
                    plan.routes.append({"workload": w.id, "user_region": u, "site": sid, "slot": t, "share": 0.25})
                for lc in wl.classes:
                    rps = sum(wl.peak_rps.get((lc.key, u, t), 0.0) for u in users) * 0.25
                    plan.serving.append({"workload": w.id, "class": lc.key, "site": sid, "offer": f"{sid}-l4",
                                         "slot": t, "rps": rps})
    for sid in sorted(res.sites):
        n = max(gpus.get((sid, t), 0.0) for t in slots)
        plan.instances.append({"site": sid, "offer": f"{sid}-l4", "tier": "owned", "slot": None, "count": n})
    rep = verify_plan(res, plan)
    assert rep.ok, rep.violations[:5]
    assert len(rep.failover) == 200 * 4 * 6 * 2 * 2
    assert all(r["unserved_rps"] == 0.0 for r in rep.failover)


# ---------------------------------------------------------------------------- end to end
def test_a_solved_result_verifies_with_its_cost_and_objective():
    """One solve through the public API: the result.json 1.1 it returns passes at TOL, its
    recomputed cost equals the summary and the solver's objective."""
    from planner import api
    from planner.optimise.backends import SolveOptions

    res = resolve(scenario([chat(peak=12.0)], [gcp("europe-west4", "europe-west1")]))
    result = api.solve(res, SolveOptions(gap=0.0, time_limit_s=30), integrality="replica")
    assert result.data["solve"]["status"] == "optimal"
    rep = verify_result(res, result)
    assert rep.ok, rep.violations
    assert rep.failover == []
    assert rep.recomputed_cost == pytest.approx(result.data["summary"]["total_usd_per_month"], rel=1e-9)
