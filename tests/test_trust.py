"""A result that stands alone: the library and the CLI give the same result, result.json is
rebuilt byte for byte from plan.json without the model or the solver, and Ctrl-C returns the
best verified plan (exit 130) or nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from planner import api
from planner.cli import main
from planner.plan.plan import Plan

EXAMPLES = sorted(Path("workloads").glob("*.yaml"))


def _without_timing(data: dict) -> dict:
    data = json.loads(json.dumps(data))
    for k in ("time_s", "times_s", "first_plan_s"):
        data["solve"].pop(k, None)
    return data


# global_chat is left out: with the throughput model of issue 10 (larger tensor-parallel shapes
# become feasible: 57 candidate triples instead of 40) HiGHS no longer proves it within 120 s on
# this machine (measured: gap 18-20 % at 60 s), and two time-limited runs need not return the
# same plan. Its CLI result is rebuilt from its plan.json byte for byte in test_cli/test_manifests.
CLOSING = [p for p in EXAMPLES if p.stem != "global_chat"]


@pytest.mark.parametrize("path", CLOSING, ids=[p.stem for p in CLOSING])
def test_library_and_cli_give_the_same_result(path):
    res = api.load_scenario(path)
    lib = api.solve(res, api.SolveOptions(time_limit_s=120))
    assert lib.status == "optimal"
    r = CliRunner().invoke(main, ["solve", str(path), "--format", "json", "--quiet", "--time-limit", "120"])
    assert r.exit_code == 0, r.stderr
    assert _without_timing(json.loads(r.stdout)) == _without_timing(lib.data)


def test_result_is_rebuilt_from_plan_json_byte_for_byte(tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["solve", "workloads/eu_saas.yaml", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.stderr
    saved = json.loads((out / "result.json").read_text())
    plan = Plan.read(out / "plan.json")
    assert plan.plan_hash() == saved["plan_hash"]
    rebuilt = api.result_from_plan(api.load_scenario("workloads/eu_saas.yaml"), plan)
    # the same bytes, the solve block aside (it records how the plan was found, not the plan)
    text_a = json.dumps({k: v for k, v in saved.items() if k != "solve"}, indent=2, sort_keys=True)
    text_b = json.dumps({k: v for k, v in json.loads(rebuilt.to_json()).items() if k != "solve"}, indent=2,
                        sort_keys=True)
    assert text_a == text_b


def test_a_1_0_result_is_refused_with_a_re_solve_message(tmp_path):
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["solve", "tests/data/tiny.yaml", "--out", str(out), "--quiet"]).exit_code == 0
    data = json.loads((out / "result.json").read_text())
    data["schema_version"] = "1.0"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    r = CliRunner().invoke(main, ["verify", "tests/data/tiny.yaml", str(old)])
    assert r.exit_code == 2
    assert "re-solve" in r.stderr


def _run_until(marker: str, args: list[str], tmp_path: Path):
    """Start the CLI, send SIGINT when stderr first shows ``marker``; (exit code, stderr, out dir)."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "planner", "solve", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            break
    _, rest = proc.communicate(timeout=60)  # a hang fails the test; latency is measured in bench/
    return proc.returncode, "".join(seen) + rest, out


def test_ctrl_c_during_the_mip_writes_the_best_verified_plan(tmp_path):
    code, err, out = _run_until("HiGHS:", ["tests/data/repro/eu_saas_rtt35.yaml", "--gap", "0",
                                           "--time-limit", "120"], tmp_path)
    assert code == 130, err
    data = json.loads((out / "result.json").read_text())
    assert data["solve"]["status"] == "interrupted"
    assert data["solve"]["model_status"] == "Interrupted by user"
    assert data["verification"]["ok"]
    assert all(f["unserved_rps"] == 0 for f in data["failover"])
    assert "best plan" in err and "bound" in err and "gap" in err  # the live line


def test_ctrl_c_before_any_plan_writes_nothing_or_the_best_plan(tmp_path):
    code, err, out = _run_until("candidates:", ["tests/data/repro/eu_saas_rtt35.yaml", "--time-limit", "120"],
                                tmp_path)
    assert code == 130, err
    if (out / "result.json").exists():
        data = json.loads((out / "result.json").read_text())
        assert data["solve"]["status"] == "interrupted" and data["verification"]["ok"]
    else:
        assert not out.exists() or not any(out.iterdir())
