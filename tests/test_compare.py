"""planner compare, solve --all-variants and the comparison model (issue 11).

The golden compare of eu_saas base vs stress is built from saved result.json fixtures in
tests/data/results/compare/, re-solved only with ``--update-compare-fixtures``; the golden
markdown is rewritten only with ``--update-golden``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.cli import main
from planner.outputs.compare import allocate_cents, compare, read_result, to_cents
from planner.plan.result import result_json_schema

FIXTURES = Path("tests/data/results/compare")
GOLDEN = Path("tests/golden/compare_eu_saas_base_vs_stress.md")
TINY = Path("tests/data/tiny.yaml")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# ====================================================================== exact cents
keys = st.tuples(st.sampled_from(["fra", "ams", "aws-x", "gcp-y"]), st.sampled_from(["o1", "o2", None]),
                 st.sampled_from(["owned", "reserved", "on_demand", None]),
                 st.sampled_from(["compute", "electricity", "fixed", "egress_data"]))
usd = st.floats(min_value=0, max_value=2e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, st.tuples(usd, usd), min_size=1, max_size=30))
def test_cent_deltas_add_up_exactly_to_the_total_delta(table):
    total_a = sum(a for a, _ in table.values())
    total_b = sum(b for _, b in table.values())
    total = to_cents(total_b) - to_cents(total_a)
    cents = allocate_cents({k: b - a for k, (a, b) in table.items()}, total)
    assert sum(cents.values()) == total
    for k, (a, b) in table.items():  # each key stays within a cent or two of its own delta
        assert abs(cents[k] - (b - a) * 100) <= 2 + 1e-6 * max(1.0, abs(b - a) * 100)


def _fake(rows: list[tuple], name: str = "s") -> dict:
    costs = [{"site": s, "item": o, "tier": t, "kind": k, "usd_per_month": v, "workload": None, "slot": None,
              "provider": "p"} for s, o, t, k, v in rows]
    dec = sum(c["usd_per_month"] for c in costs if c["kind"] != "owned_sunk")
    sunk = sum(c["usd_per_month"] for c in costs if c["kind"] == "owned_sunk")
    return {"schema_version": "1.1", "scenario": {"name": name, "variant": None}, "solve": {"status": "optimal"},
            "summary": {"total_usd_per_month": dec, "owned_sunk_usd_per_month": sunk,
                        "total_with_sunk_usd_per_month": dec + sunk, "standby_usd_per_month": 0.0,
                        "kg_co2e_per_month": None},
            "costs": costs, "instances": [], "placements": [], "routes": [], "time_slots": [], "sites": []}


row = st.tuples(st.sampled_from(["fra", "ams", "aws-x"]), st.sampled_from(["o1", "o2"]),
                st.sampled_from(["owned", "reserved", "on_demand"]),
                st.sampled_from(["compute", "electricity", "owned_sunk", "capex"]),
                st.floats(min_value=0, max_value=1e5, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(st.lists(row, max_size=25), st.lists(row, max_size=25))
def test_random_cost_tables_compare_exactly(rows_a, rows_b):
    a, b = _fake(rows_a), _fake(rows_b)
    c = compare(a, b)
    assert c.total_delta_cents == to_cents(b["summary"]["total_usd_per_month"]) - to_cents(
        a["summary"]["total_usd_per_month"])
    assert sum(ch.delta_cents for ch in c.changes) == c.total_delta_cents
    assert all(ch.kind != "owned_sunk" and ch.delta_cents != 0 for ch in c.changes)
    assert len({(ch.site, ch.offer, ch.tier, ch.kind) for ch in c.changes}) == len(c.changes)


def test_largest_remainder_gives_the_missing_cent_to_the_largest_fraction():
    # three deltas of 0.334, 0.333, 0.333 USD: 100.0 cents in all; floors 33+33+33 = 99
    got = allocate_cents({"a": 0.333, "b": 0.3340001, "c": 0.333}, 100)
    assert got == {"a": 33, "b": 34, "c": 33}
    assert allocate_cents({"a": -0.005, "b": 0.0}, -1) == {"a": -1, "b": 0}
    with pytest.raises(ValueError):
        allocate_cents({}, 5)


# ====================================================================== golden eu_saas base vs stress
def _fixture(name: str, variant: str | None, update: bool) -> Path:
    path = FIXTURES / f"eu_saas_{variant or 'base'}.json"
    if update:
        from planner import api

        res = api.load_scenario("workloads/eu_saas.yaml", variant)
        result = api.solve(res, api.SolveOptions(time_limit_s=60.0))
        assert result.status in ("optimal", "feasible")
        FIXTURES.mkdir(parents=True, exist_ok=True)
        path.write_text(result.to_json())
    assert path.exists(), f"run pytest {__file__} --update-compare-fixtures once to create {path}"
    return path


@pytest.fixture(scope="module")
def eu_fixtures(request) -> tuple[Path, Path]:
    update = bool(request.config.getoption("--update-compare-fixtures"))
    return _fixture("eu_saas", None, update), _fixture("eu_saas", "stress", update)


def test_fixtures_are_planner_results(eu_fixtures):
    for p in eu_fixtures:
        data = json.loads(p.read_text())
        jsonschema.validate(data, result_json_schema())
        assert data["verification"]["ok"] and data["scenario"]["name"] == "eu-saas"


def test_compare_eu_saas_base_vs_stress_matches_golden(eu_fixtures, update_golden):
    a, b = (read_result(p) for p in eu_fixtures)
    c = compare(a, b, "base", "stress")
    # exact: the changes add up to the difference of the two totals rounded to the cent
    total = to_cents(b["summary"]["total_usd_per_month"]) - to_cents(a["summary"]["total_usd_per_month"])
    assert c.total_delta_cents == total == sum(ch.delta_cents for ch in c.changes)
    assert not [ch for ch in c.changes if ch.kind == "owned_sunk" or ch.site.lower() in ("other", "residual")]
    # stress loses the Frankfurt rack: its sunk cost leaves the bill apart from the decision changes
    fra = [s for s in c.sunk if s["site"] == "fra-dc1"]
    assert fra and fra[0]["a_usd_per_month"] > 0 and fra[0]["b_usd_per_month"] == 0
    assert any(m["site"] == "fra-dc1" and m["b_gpus"] == 0 for m in c.moves)
    assert any(r["site"] == "fra-dc1" and r["added"] < 0 for r in c.instance_changes)
    metrics = {(r["section"], r["metric"]) for r in c.side_by_side}
    assert {("cost", "decision cost"), ("traffic", "user traffic served onprem"), ("RTT", "users in de"),
            ("carbon", "emissions"), ("unit cost", "doc-embed")} <= metrics
    unit = {r["metric"]: r["unit"] for r in c.side_by_side if r["section"] == "unit cost"}
    assert unit["doc-embed"] == "USD per 1M tokens" and unit["support-chat / short"] == "USD per 1k requests"
    from planner.outputs.compare import render_markdown

    got = render_markdown([c])
    if update_golden:
        GOLDEN.write_text(got)
    assert GOLDEN.exists(), "run pytest with --update-golden once to create the golden file"
    assert got == GOLDEN.read_text(), "compare.md changed; review and run pytest --update-golden"


def test_cli_compare_result_paths_json_and_out(eu_fixtures, tmp_path):
    out = tmp_path / "cmp"
    r = run("compare", eu_fixtures[0], eu_fixtures[1], "--format", "json", "--out", out)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert isinstance(data["changes"], list) and data["changes"]
    assert round(sum(ch["delta_usd_per_month"] for ch in data["changes"]), 2) == data["total_delta_usd_per_month"]
    assert sum(ch["delta_cents"] for ch in data["changes"]) == round(data["total_delta_usd_per_month"] * 100)
    assert {p.name for p in out.iterdir()} == {"compare.md", "compare.json", "compare.csv"}
    assert json.loads((out / "compare.json").read_text()) == data
    rows = list(csv.DictReader(io.StringIO((out / "compare.csv").read_text())))
    total = [x for x in rows if x["site"] == "TOTAL"]
    body = [x for x in rows if x["site"] != "TOTAL"]
    assert len(total) == 1 and round(sum(float(x["delta_usd_per_month"]) for x in body), 2) == float(
        total[0]["delta_usd_per_month"])
    md = run("compare", eu_fixtures[0], eu_fixtures[1], "--format", "md")
    assert md.exit_code == 0 and "### Changes in decision cost" in md.stdout
    table = run("compare", eu_fixtures[0], eu_fixtures[1])
    assert table.exit_code == 0 and "total" in table.stdout


def test_cli_compare_three_inputs_each_against_the_first(eu_fixtures):
    r = run("compare", eu_fixtures[0], eu_fixtures[1], eu_fixtures[0], "--format", "json")
    assert r.exit_code == 0, r.output
    cmps = json.loads(r.stdout)["comparisons"]
    assert len(cmps) == 2 and cmps[0]["a"] == cmps[1]["a"] == str(eu_fixtures[0])
    assert cmps[1]["total_delta_usd_per_month"] == 0 and cmps[1]["changes"] == []


# ====================================================================== scenario inputs, variants
@pytest.fixture
def tiny_variants(tmp_path) -> Path:
    doc = yaml.safe_load(TINY.read_text())
    doc["variants"] = {
        "double": {"description": "2x traffic", "patches": [{"path": "workloads[*].demand[*].peak_rps",
                                                            "multiply": 2.0}]},
        "cloud_only": {"description": "no on-prem compute", "patches": [{"only": "cloud"}]},
        "declared_only": {"description": "no cloud; a bigger rack", "patches": [
            {"only": "declared"}, {"path": "sites[dc].power_budget_kw", "set": 5},
            {"path": "sites[dc].owned_gpus[L4].count", "set": 12}]},
    }
    path = tmp_path / "tiny_variants.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_cli_compare_scenario_variants(tiny_variants):
    r = run("compare", f"{tiny_variants}", f"{tiny_variants}:double", "--format", "json", "--quiet",
            "--time-limit", "20", "--gap", "0")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["a"].endswith(":base") and data["b"].endswith(":double")
    assert data["total_delta_usd_per_month"] > 0
    assert sum(ch["delta_cents"] for ch in data["changes"]) == round(data["total_delta_usd_per_month"] * 100)


def test_only_variants_keep_site_kinds_from_compute(tiny_variants):
    from planner import api

    base = api.solve(api.load_scenario(tiny_variants), api.SolveOptions(gap=0.0, time_limit_s=20))
    cloud = api.solve(api.load_scenario(tiny_variants, "cloud_only"), api.SolveOptions(gap=0.0, time_limit_s=20))
    declared = api.solve(api.load_scenario(tiny_variants, "declared_only"),
                         api.SolveOptions(gap=0.0, time_limit_s=20))
    assert any(p["site"] == "dc" for p in base.data["placements"])  # the base uses the rack
    for res, kind in ((cloud, "onprem"), (declared, "cloud")):
        assert res.status in ("optimal", "feasible") and res.data["verification"]["ok"]
        assert res.data["placements"] and not [p for p in res.data["placements"] if p["site_kind"] == kind]
        assert res.data["exclusions"]["by_rule"]["only"] > 0
        jsonschema.validate(res.data, result_json_schema())
    # the rack's owned GPUs stay as sunk cost, with a warning; the rack stays a site
    assert cloud.data["summary"]["owned_sunk_usd_per_month"] == base.data["summary"]["owned_sunk_usd_per_month"] > 0
    assert any("dc owns 3 L4 GPUs this plan does not use" in w for w in cloud.data["warnings"])
    assert "dc" in {s["id"] for s in cloud.data["sites"]}
    assert cloud.data["summary"]["total_usd_per_month"] > base.data["summary"]["total_usd_per_month"]
    why = [e for e in cloud.exclusions if e["rule"] == "only"]
    assert why and "`only: cloud`" in why[0]["reason"] and why[0]["site"] == "dc"
    # a base plan (on the rack) is not a cloud-only plan: verify says so
    report = api.verify(api.load_scenario(tiny_variants, "cloud_only"), base)
    assert not report.ok and any("only: cloud" in v for v in report.violations)


def test_only_patch_errors(tmp_path):
    doc = yaml.safe_load(TINY.read_text())
    doc["variants"] = {"bad": {"patches": [{"only": "cloud", "set": 1}]}, "typo": {"patches": [{"only": "clouds"}]}}
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(doc))
    r = run("validate", p)
    assert r.exit_code == 2 and "an only patch takes no multiply or set" in r.output
    assert "variants.typo.patches" in r.output
    doc = yaml.safe_load(TINY.read_text())
    doc["cloud"] = []
    doc["variants"] = {"cloudy": {"patches": [{"only": "cloud"}]}}
    p.write_text(yaml.safe_dump(doc))
    r = run("validate", p, "--variant", "cloudy")
    assert r.exit_code == 2 and "leaves no site" in r.output and "To fix" in r.output


def test_solve_all_variants_writes_each_variant_and_the_comparison(tiny_variants, tmp_path):
    out = tmp_path / "all"
    r = run("solve", tiny_variants, "--all-variants", "--out", out, "--quiet", "--gap", "0", "--time-limit", "20")
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir()} >= {"base", "double", "cloud_only", "declared_only", "compare.md",
                                               "compare.json", "compare.csv"}
    for v in ("base", "double", "cloud_only", "declared_only"):
        data = json.loads((out / v / "result.json").read_text())
        assert data["scenario"]["variant"] == (None if v == "base" else v)
        assert (out / v / "report.md").exists()
    cmps = json.loads((out / "compare.json").read_text())["comparisons"]
    assert [c["b"] for c in cmps] == ["double", "cloud_only", "declared_only"] and all(c["a"] == "base" for c in cmps)
    for c in cmps:
        assert sum(ch["delta_cents"] for ch in c["changes"]) == c["total_delta_cents"]
    md = (out / "compare.md").read_text()
    assert "## cloud_only vs base" in md and "| **total** |" in md
    r2 = run("solve", tiny_variants, "--all-variants", "--quiet")
    assert r2.exit_code == 2 and "--all-variants needs --out" in r2.output


# ====================================================================== bad inputs: exit 2, nothing solved
def test_compare_bad_inputs_exit_2_before_solving(eu_fixtures, tmp_path, tiny_variants):
    missing = tmp_path / "nope" / "result.json"
    r = run("compare", tiny_variants, missing)
    assert r.exit_code == 2 and str(missing) in r.output and "To fix" in r.output
    assert "solving" not in r.output
    not_result = tmp_path / "x.json"
    not_result.write_text('{"hello": 1}')
    r = run("compare", not_result, eu_fixtures[0])
    assert r.exit_code == 2 and str(not_result) in r.output and "not a planner result.json" in r.output
    r = run("compare", tiny_variants, f"{tiny_variants}:doubel")
    assert r.exit_code == 2 and "no such variant" in r.output and "'double'" in r.output
    assert "solving" not in r.output
    old = tmp_path / "old.json"
    data = json.loads(eu_fixtures[1].read_text())
    data["schema_version"] = "1.0"
    old.write_text(json.dumps(data))
    r = run("compare", eu_fixtures[0], old)
    assert r.exit_code == 2 and "different schema versions" in r.output and str(old) in r.output
    r = run("compare", eu_fixtures[0])
    assert r.exit_code == 2


def test_verify_another_scenarios_result_exits_2(eu_fixtures):
    r = run("verify", TINY, eu_fixtures[0])
    assert r.exit_code == 2, r.output
    assert "solved from scenario 'eu-saas'" in r.output and "not 'tiny'" in r.output and "To fix" in r.output


def test_out_below_a_file_exits_2_before_solving(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    r = run("solve", TINY, "--out", f / "sub")
    assert r.exit_code == 2, r.output
    assert "is a file" in r.output and "[planner]" not in r.output
    r = run("solve", TINY, "--manifests", f)
    assert r.exit_code == 2 and "not a directory" in r.output and "[planner]" not in r.output


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_outputs_honour_the_umask(tmp_path, mask):
    import os

    old = os.umask(mask)
    try:
        out = tmp_path / "out"
        assert run("solve", TINY, "--out", out, "--quiet", "--gap", "0").exit_code == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert set(modes.values()) == {0o666 & ~mask}, modes


def test_unreachable_users_name_the_nearest_sites_numerically(tmp_path):
    from planner import api
    from planner.derive.candidates import build_candidates
    from planner.optimise.strategy import explain_no_candidates

    doc = yaml.safe_load(Path("workloads/global_chat.yaml").read_text())
    for w in doc["workloads"]:
        if w["id"] == "chat":
            w["latency"]["network_rtt_ms"] = 30
    if doc.get("throughput_profile"):
        doc["throughput_profile"] = str(Path("workloads", doc["throughput_profile"]).resolve())
    p = tmp_path / "gc30.yaml"
    p.write_text(yaml.safe_dump(doc))
    msgs = [m for m in explain_no_candidates(build_candidates(api.load_scenario(p))) if "users in uk" in m]
    assert len(msgs) == 1, msgs
    msg = msgs[0]
    import re

    rtts = [float(x) for x in re.findall(r" at (\d+\.\d) ms", msg)]
    assert len(rtts) >= 2 and rtts == sorted(rtts) and rtts[0] < 40, msg
    assert "lambda-europe-central-1 at 34.9 ms" in msg
    assert "To fix: raise latency.network_rtt_ms of chat to 35 ms" in msg and "add a site near uk" in msg
