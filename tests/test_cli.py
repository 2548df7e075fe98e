"""End-to-end: the CLI on the shipped examples and on a small golden scenario."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from planner.cli import main
from planner.plan.result import result_json_schema

EXAMPLES = sorted(Path("workloads").glob("*.yaml"))
GOLDEN = Path("tests/golden")
TINY = "tests/data/tiny.yaml"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def variants_of(path: Path) -> list[str | None]:
    import yaml

    return [None, *sorted((yaml.safe_load(path.read_text()) or {}).get("variants", {}))]


CASES = [(p, v) for p in EXAMPLES for v in variants_of(p)]


@pytest.mark.parametrize(("path", "variant"), CASES, ids=[f"{p.stem}-{v or 'base'}" for p, v in CASES])
def test_every_example_and_variant_solves_and_verifies(path, variant, solved_example):
    r, out = solved_example(path.stem, variant)
    assert r.exit_code == 0, r.output + (r.stderr if hasattr(r, "stderr") else "")
    data = json.loads((out / "result.json").read_text())
    jsonschema.validate(data, result_json_schema())
    assert data["solve"]["status"] in ("optimal", "feasible")
    assert data["scenario"]["variant"] == variant
    assert data["verification"]["ok"]
    assert all(f["unserved_rps"] == 0 for f in data["failover"])
    assert {p.name for p in out.iterdir()} >= {"result.json", "plan.json", "report.md", "placements.csv", "costs.csv",
                                                "routes.csv", "exclusions.csv"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "a temp file was left behind"
    vargs = ["verify", str(path), str(out / "result.json")] + (["--variant", variant] if variant else [])
    v = run(*vargs)
    assert v.exit_code == 0, v.output
    assert v.output.splitlines()[-1].startswith("ok:")


def test_json_output_is_pure_json():
    r = run("solve", TINY, "--format", "json", "--quiet", "--gap", "0")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert data["schema_version"] == "1.1"
    jsonschema.validate(data, result_json_schema())


def _mask(text: str) -> str:
    text = re.sub(r"\d+\.\d+ s\b", "<time> s", text)
    return re.sub(r"catalog [0-9a-f]{12}", "catalog <version>", text)


def test_report_matches_golden(tmp_path, update_golden):
    out = tmp_path / "out"
    r = run("solve", TINY, "--out", str(out), "--quiet", "--gap", "0")
    assert r.exit_code == 0
    got = _mask((out / "report.md").read_text())
    golden = GOLDEN / "tiny_report.md"
    if update_golden:
        golden.write_text(got)
    assert golden.exists(), "run pytest with --update-golden once to create the golden file"
    assert got == golden.read_text(), "report changed; review and run pytest --update-golden"


def test_verify_catches_a_tampered_result(tmp_path):
    out = tmp_path / "out"
    assert run("solve", TINY, "--out", str(out), "--quiet", "--gap", "0").exit_code == 0
    data = json.loads((out / "result.json").read_text())
    # drop one instance: the replicas on it no longer fit, the cost no longer matches
    data["instances"] = data["instances"][1:]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    r = run("verify", TINY, str(bad))
    assert r.exit_code == 1
    assert "packing" in r.stderr or "cost" in r.stderr


def test_infeasible_exits_1_with_explanation(tmp_path):
    import yaml

    doc = yaml.safe_load(Path(TINY).read_text())
    doc["workloads"][0]["latency"] = {"network_rtt_ms": 1}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(doc))
    r = run("solve", str(p), "--quiet")
    assert r.exit_code == 1
    assert "chat" in r.stderr and "latency" in r.stderr
    assert "Traceback" not in r.output + r.stderr


def test_bad_input_exits_2_and_writes_nothing(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: x\nworkloads: []\n")
    out = tmp_path / "out"
    r = run("solve", str(p), "--out", str(out), "--quiet")
    assert r.exit_code == 2
    assert not out.exists()


def test_result_schema_command():
    r = run("schema", "--result")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["properties"]["schema_version"]["const"] == "1.1"


def test_write_lp_writes_the_solved_model(tmp_path):
    from click.testing import CliRunner

    from planner.cli import main

    path = tmp_path / "sub" / "tiny.lp"
    r = CliRunner().invoke(main, ["solve", "tests/data/tiny.yaml", "--write-lp", str(path), "--quiet"])
    assert r.exit_code == 0, r.output
    text = path.read_text()
    assert text.startswith("\\* placement_tiny *\\") and "Subject To" in text and "capacity__" in text
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    r = CliRunner().invoke(main, ["solve", "tests/data/tiny.yaml", "--write-lp", str(tmp_path), "--quiet"])
    assert r.exit_code == 2 and "is a directory" in r.output


def test_the_clock_starts_with_the_process_only_when_it_is_planner():
    """``planner``'s clock counts the interpreter's start-up and imports; a command run inside a
    longer process (CliRunner here) starts its clock when it starts, not when that process did."""
    import subprocess
    import sys
    import time

    from planner.cli import process_started

    assert abs(process_started() - time.monotonic()) < 0.5
    code = ("import sys, time; sys.argv[0] = 'planner'; from planner.cli import process_started; "
            "print(time.monotonic() - process_started())")
    age = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert 0.05 < age < 60.0
