"""Solver status honesty, limits, infeasibility explanations."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from planner import api
from planner.api import SolveOptions
from planner.input.catalog import load_catalog
from planner.input.consistency import check
from planner.input.loader import LoadedScenario
from planner.input.schema import Scenario

EU = Path("workloads/eu_saas.yaml")


def resolve(doc: dict):
    sc = Scenario.model_validate(doc)
    return check(LoadedScenario(scenario=sc, path=EU, content_hash="t", variant=None, raw=doc), load_catalog())


@pytest.fixture(scope="module")
def eu_doc() -> dict:
    return yaml.safe_load(EU.read_text())


def test_node_limit_stop_is_not_called_optimal():
    """Stopped deterministically (node limit) before closing: status feasible, gap reported > 0,
    bound below the objective; the plan is still verified."""
    res = api.load_scenario(EU)
    result = api.solve(res, SolveOptions(node_limit=1, gap=0.0, time_limit_s=120), integrality="replica")
    sv = result.data["solve"]
    assert sv["status"] == "feasible"
    assert sv["model_status"] != "Optimal"
    assert sv["gap"] is not None and sv["gap"] > 0
    assert sv["bound"] < sv["objective"]
    assert result.data["verification"]["ok"]
    assert api.verify(res, result).ok


def test_zero_node_limit_still_returns_the_start_plan():
    res = api.load_scenario(EU)
    result = api.solve(res, SolveOptions(node_limit=0, gap=0.0, time_limit_s=120), integrality="replica")
    sv = result.data["solve"]
    assert sv["status"] == "feasible" and sv["gap"] > 0
    assert sv["start_objective"] is not None
    assert api.verify(res, result).ok


def test_optimal_reports_gap_within_request():
    res = api.load_scenario(EU, "best")
    result = api.solve(res, SolveOptions(gap=0.01, time_limit_s=120))
    sv = result.data["solve"]
    assert sv["status"] == "optimal"
    assert sv["gap"] <= 0.01 + 1e-9
    assert sv["solver_version"].startswith("HiGHS")
    assert sv["integrality"] in ("replica", "pooled")


def test_nplus1_with_one_candidate_site_is_explained(eu_doc):
    doc = copy.deepcopy(eu_doc)
    doc["variants"] = {}
    w = next(x for x in doc["workloads"] if x["id"] == "support-chat")
    w["residency"] = ["NL"]  # only ams-dc2 and azure westeurope / gcp europe-west4 remain...
    doc["cloud"] = []  # ...and without cloud regions only ams-dc2
    doc["workloads"] = [w, next(x for x in doc["workloads"] if x["id"] == "support-chat-large")]
    doc["workloads"][1]["residency"] = "any"
    w["data_sources"] = []
    res = resolve(doc)
    result = api.solve(res, SolveOptions(time_limit_s=30))
    assert result.status == "infeasible"
    text = " ".join(result.data["solve"]["reasons"])
    assert "support-chat" in text and "N+1" in text and "To fix" in text


def test_rtt_slo_nobody_meets_is_explained(eu_doc):
    doc = copy.deepcopy(eu_doc)
    doc["variants"] = {}
    for w in doc["workloads"]:
        if w["id"] == "doc-rerank":
            w["latency"]["network_rtt_ms"] = 1
    res = resolve(doc)
    result = api.solve(res, SolveOptions(time_limit_s=30))
    assert result.status == "infeasible"
    text = " ".join(result.data["solve"]["reasons"])
    assert "doc-rerank" in text and "latency" in text


def test_capacity_that_cannot_meet_demand_is_infeasible(eu_doc):
    doc = copy.deepcopy(eu_doc)
    doc["variants"] = {}
    doc["cloud"] = []
    doc["policies"] = {"pricing_models": ["reserved"]}
    for w in doc["workloads"]:
        w["redundancy"] = {"mode": "none"}  # only capacity stands in the way here
        for d in w.get("demand", []):
            d["peak_rps"] = d["peak_rps"] * 50
    res = resolve(doc)
    result = api.solve(res, SolveOptions(time_limit_s=30))
    assert result.status == "infeasible"
    assert "no plan" in result.data["solve"]["reasons"][0]


def test_pooled_reports_rounding(eu_doc):
    res = api.load_scenario(EU, "best")
    result = api.solve(res, SolveOptions(gap=0.01, time_limit_s=120), integrality="pooled")
    sv = result.data["solve"]
    assert sv["integrality"] == "pooled"
    r = sv["rounding"]
    assert r["rounded_objective"] >= r["pooled_objective"] - 1e-6
    assert r["added_usd_per_month"] == pytest.approx(r["rounded_objective"] - r["pooled_objective"], abs=1e-3)
    assert api.verify(res, result).ok


def test_cbc_solves_small_instance_to_the_same_optimum():
    res = api.load_scenario("tests/data/tiny.yaml")
    opts = dict(gap=0.0, time_limit_s=60)
    h = api.solve(res, SolveOptions(solver="highs", **opts), integrality="replica")
    c = api.solve(res, SolveOptions(solver="cbc", **opts), integrality="replica")
    assert c.data["solve"]["solver"] == "cbc" and c.data["solve"]["status"] == "optimal"
    assert c.data["solve"]["objective"] == pytest.approx(h.data["solve"]["objective"], rel=1e-9)
    assert api.verify(res, c).ok


@pytest.mark.parametrize("example", ["eu_saas", "global_chat", "embeddings_pipeline"])
def test_pulp_problem_and_highs_arrays_agree_on_every_example(example):
    """One definition, two back-ends: the PuLP problem made from the model (what CBC and
    --write-lp get) and the arrays HiGHS gets have the same LP-relaxation optimum, CBC on the
    first and HiGHS on the second, for every shipped example (replica and pooled forms)."""
    import pulp

    from planner.derive.candidates import build_candidates
    from planner.optimise.backends import cbc_path, lp_relaxation
    from planner.optimise.model import build_model

    cs = build_candidates(api.load_scenario(f"workloads/{example}.yaml"))
    for form in ("replica", "pooled"):
        m = build_model(cs, form)
        x, highs_obj = lp_relaxation(m, deadline=__import__("time").monotonic() + 120)
        prob = m.to_pulp()
        status = prob.solve(pulp.COIN_CMD(path=cbc_path(), mip=False, msg=False))
        assert pulp.LpStatus[status] == "Optimal"
        assert pulp.value(prob.objective) == pytest.approx(highs_obj, rel=1e-7)


@pytest.mark.parametrize("scenario", ["workloads/embeddings_pipeline.yaml", "tests/data/repro/nplus1_classes.yaml"])
def test_cbc_and_highs_reach_the_same_optimum(scenario):
    """The MILP itself: CBC (on the PuLP problem) and HiGHS (on the arrays) prove the same
    optimum. (CBC does not close eu_saas/global_chat with exact N+1 in a unit test's time:
    measured 73 s and > 120 s on this machine; their agreement is checked on the LP above.)"""
    res = api.load_scenario(scenario)
    opts = dict(gap=0.0, time_limit_s=120)
    h = api.solve(res, SolveOptions(solver="highs", **opts), integrality="replica")
    c = api.solve(res, SolveOptions(solver="cbc", **opts), integrality="replica")
    assert h.data["solve"]["status"] == c.data["solve"]["status"] == "optimal"
    assert c.data["solve"]["objective"] == pytest.approx(h.data["solve"]["objective"], rel=1e-9)
