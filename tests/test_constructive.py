"""When the model cannot be built within the limit, the plan is the constructive greedy,
verified like any plan, and the result says so (status feasible, no bound)."""

from __future__ import annotations

from planner import api
from planner.optimise import strategy
from planner.optimise.model import BuildDeadline


def test_model_not_built_in_time_falls_back_to_a_verified_constructive_plan(monkeypatch):
    def too_slow(cs, form, deadline=None):
        raise BuildDeadline("the model was not built within the time limit (0 rows so far)")

    monkeypatch.setattr(strategy, "build_model", too_slow)
    res = api.load_scenario("workloads/eu_saas.yaml")
    r = api.solve(res, api.SolveOptions(time_limit_s=30))
    sv = r.data["solve"]
    assert sv["status"] == "feasible" and sv["bound"] is None and sv["gap"] is None
    assert sv["model_status"] == "not built" and sv["start"] == "constructive greedy"
    assert any("constructive greedy" in n and "not optimised" in n for n in sv["notes"])
    assert r.data["verification"]["ok"]
    assert sv["objective"] == r.data["summary"]["total_usd_per_month"]
    assert sv["first_plan_s"] is not None
