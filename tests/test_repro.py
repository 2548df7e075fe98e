"""The reproductions of ../shared/repro (pinned copies in tests/data/repro, throughput pinned by
profile CSVs written by tools/pin_profile.py) and the latency-blind N+1 case of eu_saas.

Each failed on the planner as it stood on 2026-12-01:
- pooled_wrong_optimal: the pooled form "proved" $356/month optimal; the replica form finds $129;
- nan_crash: a NaN from HiGHS became status optimal, then the run exited 70;
- nplus1_classes: N+1 class-blind: after losing a site no capacity could run the long class, yet
  verify said ok;
- eu_saas with support-chat at network_rtt_ms 35: N+1 latency-blind, 18 failover cases left
  users unserved while the plan was "optimal" and verified.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from planner import api
from planner.cli import main

REPRO = Path("tests/data/repro")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def solve_cli(path, tmp_path, *extra):
    out = tmp_path / "out"
    r = run("solve", path, "--out", out, "--quiet", *extra)
    data = json.loads((out / "result.json").read_text()) if (out / "result.json").exists() else None
    return r, data


def assert_promise_kept(data):
    assert data["verification"]["ok"], data["verification"]["violations"]
    rows = data["failover"]
    assert rows, "N+1 workloads must have failover rows"
    assert all(f["unserved_rps"] == 0 for f in rows), [f for f in rows if f["unserved_rps"]][:3]


@pytest.mark.parametrize("form", ["replica", "pooled"])
def test_pooled_knife_edge_is_not_a_wrong_optimum(form, tmp_path):
    r, data = solve_cli(REPRO / "pooled_wrong_optimal.yaml", tmp_path, "--integrality", form, "--gap", "0")
    assert r.exit_code == 0, r.output
    sv = data["solve"]
    assert data["verification"]["ok"]
    assert sv["objective"] == pytest.approx(128.8264, rel=1e-6)
    if sv["status"] == "optimal":
        assert sv["gap"] <= 1e-9
    assert sv["bound"] is None or sv["bound"] <= sv["objective"] * (1 + 1e-9)


def test_nan_from_the_solver_is_never_optimal_and_never_exit_70(tmp_path):
    r, data = solve_cli(REPRO / "nan_crash.yaml", tmp_path, "--integrality", "pooled")
    assert r.exit_code in (0, 1), r.output + r.stderr
    assert "internal error" not in r.stderr
    if r.exit_code == 0:
        assert data["verification"]["ok"]
        assert data["summary"]["total_usd_per_month"] == pytest.approx(data["solve"]["objective"], rel=1e-9)


def test_nplus1_is_class_aware(tmp_path):
    r, data = solve_cli(REPRO / "nplus1_classes.yaml", tmp_path, "--gap", "0")
    assert r.exit_code == 0, r.output + r.stderr
    assert_promise_kept(data)
    # the long class runs only on H100: after losing any one site, H100 must remain
    h100_sites = {p["site"] for p in data["placements"] if p["accelerator"] == "H100" and p["tier"] != "spot"}
    assert len(h100_sites) >= 2
    classes = {f["query_class"] for f in data["failover"]}
    assert classes == {"short", "long"}


def test_nplus1_is_latency_aware_eu_saas_35ms(tmp_path):
    r, data = solve_cli(REPRO / "eu_saas_rtt35.yaml", tmp_path, "--gap", "0.05", "--time-limit", "15")
    assert r.exit_code in (0, 1), r.output + r.stderr
    if r.exit_code == 0:
        assert_promise_kept(data)
        assert {f["user_region"] for f in data["failover"]} >= {"de", "fr", "nl", "se"}
    else:
        assert data is None or data["solve"]["status"] in ("infeasible", "no_plan")


def _eu_doc(rtt: float, failover: float | None = None) -> dict:
    doc = yaml.safe_load((REPRO / "eu_saas_rtt35.yaml").read_text())
    w = next(x for x in doc["workloads"] if x["id"] == "support-chat")
    w["latency"]["network_rtt_ms"] = rtt
    if failover is not None:
        w["redundancy"]["failover_network_rtt_ms"] = failover
    doc["throughput_profile"] = str((REPRO / doc["throughput_profile"]).resolve())
    return doc


def test_nplus1_that_cannot_be_kept_is_infeasible_and_says_how_to_fix(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(_eu_doc(20)))
    r = run("solve", p, "--quiet", "--out", tmp_path / "out")
    assert r.exit_code == 1
    err = r.stderr
    assert "support-chat" in err and "de" in err and "azure-westeurope" in err
    assert "azure-germanywestcentral at 25.2 ms" in err, err
    assert "To fix" in err and "failover_network_rtt_ms: 26" in err
    data = json.loads((tmp_path / "out" / "result.json").read_text())
    assert data["solve"]["status"] == "infeasible"


def test_failover_rtt_admits_standby_beyond_the_slo(tmp_path):
    """With the SLO at 20 ms and failover at 26 ms the promise can be kept: standby may sit at a
    site beyond the normal SLO (no normal route goes there)."""
    res_doc = _eu_doc(20, failover=26)
    res_doc["variants"] = {}
    chat = next(x for x in res_doc["workloads"] if x["id"] == "support-chat")
    chat["demand"] = [d for d in chat["demand"] if d["user_region"] != "se"]  # no site within 20 ms of se
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(res_doc))
    res = api.load_scenario(p)
    result = api.solve(res, api.SolveOptions(time_limit_s=25, gap=0.05))
    assert result.status in ("optimal", "feasible")
    assert_promise_kept(result.data)
    for rt in result.data["routes"]:
        if rt["workload"] == "support-chat":
            assert rt["rtt_ms"] <= 20


def test_nplus1_on_a_batch_workload_is_refused(tmp_path):
    doc = yaml.safe_load(Path("workloads/embeddings_pipeline.yaml").read_text())
    w = next(x for x in doc["workloads"] if x["kind"] == "batch_embeddings")
    w["redundancy"] = {"mode": "n_plus_1"}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(doc))
    r = run("solve", p, "--quiet")
    assert r.exit_code == 2
    assert f"workloads[{w['id']}].redundancy.mode" in r.stderr and "To fix" in r.stderr
