"""result.json 1.1 built from a hand-written Plan, without solving: schema, determinism, plan.json
round trip, busy/standby arithmetic, cost slots, binding rows, files, 1.0 refused."""

from __future__ import annotations

import copy
import json
import math
import random
from pathlib import Path

import jsonschema
import pytest
import yaml

from planner.derive.candidates import build_candidates
from planner.input.catalog import load_catalog
from planner.input.consistency import check
from planner.input.loader import LoadedScenario
from planner.input.schema import Scenario
from planner.outputs.report import render_markdown, write_outputs
from planner.plan.costing import cost_lines, decision_cost, instance_cost_rows, offer_index
from planner.plan.plan import Plan, SolveRecord, plan_from_result
from planner.plan.result import SCHEMA_VERSION, PlacementResult, build_result, result_json_schema

TINY = Path("tests/data/tiny.yaml")
DC, GCP = "dc", "gcp-europe-west4"
L4_DC, L4_GCP = "dc-l4", "gcp-europe-west4-g2-standard-4"


def resolve(doc: dict):
    sc = Scenario.model_validate(doc)
    return check(LoadedScenario(scenario=sc, path=TINY, content_hash="t", variant=None, raw=doc), load_catalog())


@pytest.fixture(scope="module")
def tiny_doc() -> dict:
    return yaml.safe_load(TINY.read_text())


@pytest.fixture(scope="module")
def cs(tiny_doc):
    return build_candidates(resolve(tiny_doc))


@pytest.fixture(scope="module")
def rho(cs) -> float:
    """Per-replica rate of class q (the same L4 shape at both sites)."""
    rates = {c.site: c.rps["q"].rps for c in cs.triples}
    assert math.isclose(rates[DC], rates[GCP])
    return rates[DC]


def hand_plan(status: str = "feasible") -> Plan:
    """tiny: 20 rps in slot a, 50 rps in slot b (one class q, one user region u).

    a: dc serves 8 rps on 3 owned replicas; gcp 12 rps on 1 reserved + 1 on-demand replica.
    b: dc serves 25 rps on 3 owned replicas; gcp 25 rps on 1 reserved + 2 on-demand + 3 spot.
    """
    rep = []
    for w, sid, oid, tau, t, n in [("chat", DC, L4_DC, "owned", "a", 3), ("chat", DC, L4_DC, "owned", "b", 3),
                                   ("chat", GCP, L4_GCP, "reserved", "a", 1), ("chat", GCP, L4_GCP, "on_demand", "a", 1),
                                   ("chat", GCP, L4_GCP, "reserved", "b", 1), ("chat", GCP, L4_GCP, "on_demand", "b", 2),
                                   ("chat", GCP, L4_GCP, "spot", "b", 3)]:
        rep.append({"workload": w, "site": sid, "offer": oid, "tier": tau, "slot": t, "replicas": float(n),
                    "gpus": float(n)})
    return Plan(
        instances=[{"site": DC, "offer": L4_DC, "tier": "owned", "slot": None, "count": 3},
                   {"site": GCP, "offer": L4_GCP, "tier": "reserved", "slot": None, "count": 1},
                   {"site": GCP, "offer": L4_GCP, "tier": "on_demand", "slot": "a", "count": 1},
                   {"site": GCP, "offer": L4_GCP, "tier": "on_demand", "slot": "b", "count": 2},
                   {"site": GCP, "offer": L4_GCP, "tier": "spot", "slot": "b", "count": 3}],
        replicas=rep,
        serving=[{"workload": "chat", "class": "q", "site": DC, "offer": L4_DC, "slot": "a", "rps": 8.0},
                 {"workload": "chat", "class": "q", "site": GCP, "offer": L4_GCP, "slot": "a", "rps": 12.0},
                 {"workload": "chat", "class": "q", "site": DC, "offer": L4_DC, "slot": "b", "rps": 25.0},
                 {"workload": "chat", "class": "q", "site": GCP, "offer": L4_GCP, "slot": "b", "rps": 25.0}],
        routes=[{"workload": "chat", "user_region": "u", "site": DC, "slot": "a", "share": 0.4},
                {"workload": "chat", "user_region": "u", "site": GCP, "slot": "a", "share": 0.6},
                {"workload": "chat", "user_region": "u", "site": DC, "slot": "b", "share": 0.5},
                {"workload": "chat", "user_region": "u", "site": GCP, "slot": "b", "share": 0.5}],
        open_sites=[DC],
        solve=SolveRecord(status=status, solver="highs", solver_version="HiGHS test", objective=1234.5, bound=1200.0,
                          gap=0.0275, time_s=0.5, notes=["hand-written plan"], options={"gap": 0.005, "threads": None},
                          model_size={"variables": 10, "integer_variables": 4, "constraints": 12},
                          times_s={"solve": 0.4}),
    )


def _rows(result: PlacementResult, table: str, **match) -> list[dict]:
    return [r for r in result.data[table] if all(r.get(k) == v for k, v in match.items())]


def test_result_of_a_hand_written_plan_is_valid(cs):
    result = build_result(cs, hand_plan())
    jsonschema.validate(result.data, result_json_schema())
    d = result.data
    assert d["schema_version"] == SCHEMA_VERSION == "1.1"
    assert d["plan_hash"] == hand_plan().plan_hash()
    assert d["failover"] == [] and d["verification"] is None
    assert d["open_sites"] == [DC]
    assert d["scenario"]["name"] == "tiny" and d["scenario"]["variant"] is None
    assert {s["id"] for s in d["sites"]} == {DC, GCP}
    dc = next(s for s in d["sites"] if s["id"] == DC)
    assert dc["inventory"][0]["owned_gpus"] == 3 and dc["power_budget_kw"] == 0.6
    assert d["workloads"][0]["redundancy"] == {"mode": "none", "min_sites": 1, "failover_network_rtt_ms": None}
    assert d["policies"]["spot"] == {"derating": 0.8, "max_share": 0.5}
    assert d["policies"]["reserved_discount_by_provider"] == {"gcp": 0.37}
    # the summary is the decision cost, unrounded
    lines = cost_lines(cs.res, cs.loads, hand_plan())
    assert d["summary"]["total_usd_per_month"] == decision_cost(lines)
    # the JSON carries pruning counted by rule; the full list rides beside it
    assert d["exclusions"]["by_rule"]["dominated"] == d["exclusions"]["total"] == len(cs.exclusions) > 0
    assert len(result.exclusions) == len(cs.exclusions)
    assert set(result.exclusions[0]) == {"workload", "user_region", "site", "offer", "rule", "reason"}
    assert "exclusions" in d and isinstance(d["exclusions"], dict)
    assert '"reason"' not in result.to_json()


def test_library_fields_validate(cs):
    """The library sets failover rows and the verification block after build_result."""
    result = build_result(cs, hand_plan())
    result.data["failover"] = [{"workload": "chat", "lost_site": DC, "slot": "b", "user_region": "u",
                                "query_class": "q", "unserved_rps": 0.0}]
    result.data["verification"] = {"ok": True, "violations": [], "warnings": ["w"], "recomputed_usd_per_month": 1.5}
    jsonschema.validate(result.data, result_json_schema())


def test_loads_routes_and_candidates(cs, rho):
    d = build_result(cs, hand_plan()).data
    assert {(r["slot"], r["peak_rps"]) for r in d["loads"]} == {("a", 20.0), ("b", 50.0)}
    assert all(r["source_workload"] is None and r["class"] == "q" for r in d["loads"])
    route = _rows(build_result(cs, hand_plan()), "routes", site=GCP, slot="a")[0]
    assert math.isclose(route["peak_rps"], 0.6 * 20.0)
    cand = next(c for c in d["candidates"] if c["site"] == GCP)
    assert cand["tiers"] == ["reserved", "on_demand", "spot"]
    assert cand["shape"] == {"tp": 1, "gpus": 1.0, "replicas_per_instance": 1}
    cls = cand["classes"][0]
    assert cls["planning_rps"] == rho
    assert math.isclose(cls["max_rps"], rho / 0.8)
    assert cls["rate_source"] == "estimate"
    assert [p["tier"] for p in cand["unit_prices"]] == ["reserved", "on_demand", "spot"]


def test_escalated_load_is_named_by_its_source():
    doc = yaml.safe_load(Path("workloads/eu_saas.yaml").read_text())
    doc["variants"] = {}
    sc = Scenario.model_validate(doc)
    res = check(LoadedScenario(scenario=sc, path=Path("workloads/eu_saas.yaml"), content_hash="t", variant=None,
                               raw=doc), load_catalog())
    cs = build_candidates(res)
    result = build_result(cs, Plan(solve=SolveRecord(status="infeasible", reasons=["test"])))
    jsonschema.validate(result.data, result_json_schema())
    loads = result.data["loads"]
    escalated = [r for r in loads if r["source_workload"] is not None]
    assert escalated
    assert not any("~" in (r["class"] or "") or "~" in (r["source_class"] or "") for r in loads)
    assert all(r["class"] == r["source_class"] for r in escalated)
    for c in result.data["candidates"]:
        assert not any("~" in k["class"] for k in c["classes"])


def test_same_plan_same_bytes_in_any_row_order(cs):
    a = build_result(cs, hand_plan()).to_json()
    shuffled = hand_plan()
    rng = random.Random(7)
    for name in ("instances", "replicas", "serving", "routes"):
        rng.shuffle(getattr(shuffled, name))
    assert build_result(cs, shuffled).to_json() == a
    assert build_result(cs, hand_plan()).to_json() == a


def test_plan_json_round_trip_gives_the_same_result(cs):
    plan = hand_plan()
    result = build_result(cs, plan)
    back = Plan.from_dict(json.loads(plan.to_json(result.data["scenario"])))
    again = build_result(cs, back)
    strip = lambda d: {k: v for k, v in d.items() if k != "solve"}  # noqa: E731
    assert json.dumps(strip(again.data), sort_keys=True) == json.dumps(strip(result.data), sort_keys=True)
    assert again.to_json() == result.to_json()  # the solve record round-trips too
    # and from result.json itself
    from_result = build_result(cs, plan_from_result(json.loads(result.to_json())))
    assert from_result.to_json() == result.to_json()


def test_busy_and_standby_arithmetic(cs, rho):
    result = build_result(cs, hand_plan())
    H = {t["id"]: t["hours_per_month"] for t in result.data["time_slots"]}
    assert H == {"a": 365.0, "b": 365.0}
    o = offer_index(cs.res)[(GCP, L4_GCP)]

    def row(sid, tier, t):
        (r,) = _rows(result, "placements", site=sid, tier=tier, slot=t)
        return r

    # slot a, dc: 8 rps on 3 owned replicas -> busy 8/rho, standby 2, cost 0 (owned is sunk)
    r = row(DC, "owned", "a")
    assert math.isclose(r["busy_replicas"], 8.0 / rho)
    assert r["standby_replicas"] == 2.0 and r["standby_usd_per_month"] == 0.0
    # slot a, gcp: 12 rps = 1.435 replica-time: reserved full (1), on-demand the rest -> no standby
    assert row(GCP, "reserved", "a")["busy_replicas"] == 1.0
    assert math.isclose(row(GCP, "on_demand", "a")["busy_replicas"], 12.0 / rho - 1.0)
    assert row(GCP, "on_demand", "a")["standby_replicas"] == 0.0
    # slot b, gcp: 25 rps = 2.99 replica-time: spot first (3 x 0.8 = 2.4), then reserved 0.59,
    # on-demand nothing -> 2 on-demand replicas are standby, at the on-demand GPU price for slot b
    need = 25.0 / rho
    assert row(GCP, "spot", "b")["busy_replicas"] == 3.0 and row(GCP, "spot", "b")["standby_replicas"] == 0.0
    assert math.isclose(row(GCP, "reserved", "b")["busy_replicas"], need - 2.4)
    assert row(GCP, "reserved", "b")["standby_replicas"] == 0.0
    od = row(GCP, "on_demand", "b")
    assert od["busy_replicas"] == 0.0 and od["standby_replicas"] == 2.0
    assert math.isclose(od["standby_usd_per_month"], 2 * 1.0 * o.ondemand_usd_hr / o.gpus * H["b"])
    assert math.isclose(result.data["summary"]["standby_usd_per_month"], od["standby_usd_per_month"])


def test_standby_of_a_reserved_replica_costs_its_share_of_the_month(cs, rho):
    plan = hand_plan()
    for r in plan.replicas:
        if r["tier"] == "reserved" and r["slot"] == "b":
            r["replicas"] = r["gpus"] = 1.0
    plan.serving = [s for s in plan.serving if not (s["site"] == GCP and s["slot"] == "b")]
    plan.serving.append({"workload": "chat", "class": "q", "site": GCP, "offer": L4_GCP, "slot": "b",
                         "rps": 0.5 * rho})  # half a replica: spot absorbs it, reserved is idle
    result = build_result(cs, plan)
    (r,) = _rows(result, "placements", site=GCP, tier="reserved", slot="b")
    o = offer_index(cs.res)[(GCP, L4_GCP)]
    assert r["busy_replicas"] == 0.0 and r["standby_replicas"] == 1.0
    assert math.isclose(r["standby_usd_per_month"], o.reserved_usd_hr * 365.0)
    (spot,) = _rows(result, "placements", site=GCP, tier="spot", slot="b")
    assert math.isclose(spot["busy_replicas"], 0.5 / 0.8) and spot["standby_replicas"] == 2.0


def test_cost_rows_carry_their_slot(cs):
    result = build_result(cs, hand_plan())
    costs = result.data["costs"]
    by_kind: dict[str, set] = {}
    for c in costs:
        by_kind.setdefault((c["kind"], c["tier"]), set()).add(c["slot"])
    assert by_kind[("compute", "reserved")] == {None}
    assert by_kind[("compute", "on_demand")] == {"a", "b"}
    assert by_kind[("compute", "spot")] == {"b"}
    assert by_kind[("owned_sunk", "owned")] == {None}
    assert by_kind[("electricity", None)] == {"a", "b"}
    assert by_kind[("fixed", None)] == {None}
    assert by_kind[("egress_data", None)] == {None}
    # instance_costs: unit prices and monthly costs add up to the compute and capex lines
    ic = result.data["instance_costs"]
    assert math.isclose(sum(r["usd_per_month"] for r in ic),
                        sum(c["usd_per_month"] for c in costs if c["kind"] in ("compute", "capex")))
    owned = next(r for r in ic if r["tier"] == "owned")
    assert owned["usd_per_gpu_month"] == 0.0 and owned["usd_per_instance_hour"] is None
    od_b = next(r for r in ic if r["tier"] == "on_demand" and r["slot"] == "b")
    o = offer_index(cs.res)[(GCP, L4_GCP)]
    assert od_b["usd_per_instance_hour"] == o.ondemand_usd_hr and od_b["usd_per_gpu_month"] is None
    assert math.isclose(od_b["usd_per_month"], 2 * o.ondemand_usd_hr * 365.0)
    assert instance_cost_rows(cs.res, hand_plan().canonical()) == ic


def test_binding_rows(cs, tiny_doc):
    d = build_result(cs, hand_plan()).data
    assert [(b["family"], b["site"], b["slot"], b["tier"], b["activity"], b["limit"], b["label"])
            for b in d["binding"]] == [("inventory", DC, "a", "owned", 3.0, 3.0, "dc dc-l4 owned")]
    tight = copy.deepcopy(tiny_doc)
    tight["sites"][0]["power_budget_kw"] = 0.4  # 0.365 kW used; one more L4 needs 0.12 kW
    tight["cloud"][0]["quota_gpus"] = {"L4": 6}  # slot b holds 1 + 2 + 3 = 6
    tight["policies"]["spot"] = {"max_share": 0.3}  # spot 2.4 of 8.4 replica-rates: a fourth exceeds 0.3
    tight["workloads"][0]["redundancy"] = {"mode": "none", "min_sites": 2}
    tcs = build_candidates(resolve(tight))
    result = build_result(tcs, hand_plan())
    jsonschema.validate(result.data, result_json_schema())
    got = {(b["family"], b["site"], b["workload"], b["slot"], b["label"]) for b in result.data["binding"]}
    assert got == {("power budget", DC, None, "a", "dc__a"), ("power budget", DC, None, "b", "dc__b"),
                   ("cloud quota", GCP, None, "b", f"{GCP}__L4__b"), ("inventory", DC, None, "a", "dc dc-l4 owned"),
                   ("spot share cap", None, "chat", "b", "chat__b"), ("minimum sites", None, "chat", None, "chat")}
    spot = next(b for b in result.data["binding"] if b["family"] == "spot share cap")
    assert math.isclose(spot["activity"], 2.4 / 8.4) and spot["limit"] == 0.3 and spot["unit"] == "share"
    power = next(b for b in result.data["binding"] if b["family"] == "power budget")
    assert power["unit"] == "kw" and math.isclose(power["slack"], 0.4 - power["activity"])


def test_no_plan_still_gives_a_valid_result(cs):
    plan = Plan(solve=SolveRecord(status="infeasible", reasons=["chat: no site within 1 ms"], notes=["n"]))
    result = build_result(cs, plan)
    jsonschema.validate(result.data, result_json_schema())
    d = result.data
    assert d["solve"]["status"] == "infeasible" and d["solve"]["reasons"] == ["chat: no site within 1 ms"]
    assert d["solve"]["notes"] == ["n"]
    for name in ("placements", "instances", "instance_costs", "serving", "routes", "costs", "utilisation",
                 "unit_costs", "attribution", "binding", "failover"):
        assert d[name] == [], name
    assert d["summary"]["total_usd_per_month"] is None and d["summary"]["kg_co2e_per_month"] is None
    assert d["loads"] and d["candidates"]  # the scenario side is still there to explain
    assert "infeasible" in render_markdown(result)


def test_schema_is_exact(cs):
    schema = result_json_schema()
    data = build_result(cs, hand_plan()).data
    jsonschema.validate(data, schema)
    for mutate in (lambda d: d.__setitem__("surprise", 1),
                   lambda d: d["placements"][0].__setitem__("surprise", 1),
                   lambda d: d["placements"][0]["tags"].__setitem__("surprise", 1),
                   lambda d: d["summary"].__setitem__("surprise", 1),
                   lambda d: d["placements"][0].pop("standby_replicas"),
                   lambda d: d["placements"][0].__setitem__("tier", "leased"),
                   lambda d: d["solve"].__setitem__("status", "time_limit"),
                   lambda d: d.__setitem__("schema_version", "1.0")):
        bad = copy.deepcopy(data)
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    # the solve block is exactly the SolveRecord
    assert set(schema["properties"]["solve"]["properties"]) == set(SolveRecord.__dataclass_fields__)


def test_schema_1_0_is_refused(tmp_path, cs):
    old = tmp_path / "result.json"
    old.write_text(json.dumps({"schema_version": "1.0", "solve": {"status": "optimal"}}))
    with pytest.raises(ValueError, match="re-solve"):
        PlacementResult.read(old)
    new = tmp_path / "new.json"
    new.write_text(build_result(cs, hand_plan()).to_json())
    assert PlacementResult.read(new).data["schema_version"] == "1.1"


def test_write_outputs(tmp_path, cs):
    plan = hand_plan()
    result = build_result(cs, plan)
    out = tmp_path / "out"
    write_outputs(result, out, plan=plan)
    names = {p.name for p in out.iterdir()}
    assert {"result.json", "plan.json", "report.md", "exclusions.csv", "placements.csv", "instance_costs.csv",
            "loads.csv", "candidates.csv", "binding.csv", "failover.csv", "costs.csv"} <= names
    assert not [n for n in names if n.startswith(".")], "a temp file was left behind"
    assert (out / "result.json").read_text() == result.to_json()
    excl = (out / "exclusions.csv").read_text().splitlines()
    assert excl[0] == "workload,user_region,site,offer,rule,reason" and len(excl) == 1 + len(cs.exclusions)
    assert (out / "failover.csv").read_text().startswith("workload,lost_site,slot,user_region,query_class,unserved_rps")
    assert "tag_tenant" in (out / "placements.csv").read_text().splitlines()[0]
    # rebuilding from the saved plan.json gives the same result.json
    again = build_result(cs, Plan.read(out / "plan.json"))
    assert again.to_json() == (out / "result.json").read_text()
    report = (out / "report.md").read_text()
    assert "## Standby capacity" in report and "## Bill of materials" in report
    assert {"report.html", "bom.csv", "placement_by_slot.csv", "standby.csv", "cost_by_site.csv"} <= names


def test_report_failover_section(cs, tiny_doc):
    doc = copy.deepcopy(tiny_doc)
    doc["workloads"][0]["redundancy"] = {"mode": "n_plus_1"}
    ncs = build_candidates(resolve(doc))
    result = build_result(ncs, hand_plan())
    assert "not checked" in render_markdown(result)
    result.data["verification"] = {"ok": True, "violations": [], "warnings": [], "recomputed_usd_per_month": 0.0}
    result.data["failover"] = [{"workload": "chat", "lost_site": DC, "slot": "a", "user_region": "u",
                                "query_class": "q", "unserved_rps": 0.0}]
    assert "every user region's every class served" in render_markdown(result)
    result.data["failover"].append({"workload": "chat", "lost_site": GCP, "slot": "b", "user_region": "u",
                                    "query_class": "q", "unserved_rps": 12.5})
    jsonschema.validate(result.data, result_json_schema())
    text = render_markdown(result)
    assert f"| chat | {GCP} | b | u | q | 12.5 |" in text


def test_result_modules_import_no_model_or_solver():
    import ast

    for path in ("planner/plan/result.py", "planner/plan/binding.py", "planner/plan/costing.py",
                 "planner/outputs/report.py"):
        tree = ast.parse(Path(path).read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.startswith(("pulp", "highspy", "planner.optimise"))], path
