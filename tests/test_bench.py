"""Smoke test of the benchmark protocol (``python -m bench``): correctness only, no timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ["size", "seed", "method", "time_limit_s", "status", "objective", "gap", "dual_bound", "first_plan_s",
          "build_s", "solve_s", "total_s", "peak_mib", "verified"]


def test_bench_protocol_smallest_rung(tmp_path):
    out = tmp_path / "smoke.json"
    r = subprocess.run([sys.executable, "-m", "bench", "--sizes", "5x5", "--seeds", "1", "--methods",
                        "planner,greedy,lp", "--json", str(out), "--md-dir", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out.read_text())
    assert [(x["size"], x["seed"], x["method"]) for x in rows] == [("5x5", 1, "planner"), ("5x5", 1, "greedy"),
                                                                   ("5x5", 1, "lp")]
    for row in rows:
        assert list(row) == FIELDS
        assert row["total_s"] > 0 and row["peak_mib"] > 10
    planner, greedy, lp = rows
    assert planner["status"] in ("optimal", "feasible") and planner["verified"] is True
    assert planner["first_plan_s"] is not None and planner["time_limit_s"] == 10.0
    assert greedy["status"] == "feasible" and greedy["verified"] is True and greedy["first_plan_s"] is not None
    assert lp["verified"] is None and lp["status"] == "optimal"
    # the LP bound and the planner's bound are below every verified plan
    assert lp["objective"] <= planner["objective"] * (1 + 1e-9)
    assert lp["objective"] <= greedy["objective"] * (1 + 1e-9)
    md = (tmp_path / "smoke.md").read_text()
    assert "| 5x5 | planner | 1 |" in md and "| 5x5 | greedy | 1 |" in md


def test_render_medians_and_targets():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_main", ROOT / "bench" / "__main__.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def row(method, seed, obj, gap=None, first=1.0, total=5.0):
        return {"size": "200x50", "seed": seed, "method": method, "time_limit_s": 20.0, "status": "feasible",
                "objective": obj, "gap": gap, "dual_bound": None, "first_plan_s": first, "build_s": 1.0,
                "solve_s": 2.0, "total_s": total, "peak_mib": 100.0, "verified": True}

    rows = [row("planner", 1, 70.0, 0.004), row("planner", 2, 90.0, 0.01), row("planner", 3, 75.0, 0.003),
            row("greedy", 1, 100.0), row("greedy", 2, 100.0), row("greedy", 3, 100.0),
            row("greedy-spread", 1, 120.0), row("greedy-spread", 2, 80.0), row("greedy-spread", 3, 120.0)]
    md = mod.render(rows)
    line = next(x for x in md.splitlines() if x.startswith("| 200x50 | planner |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[4] == "75"  # median objective
    assert cells[5] == "0.40 %"  # median gap
    assert cells[13] == "0.750"  # median of 0.7, 0.9, 0.75 vs greedy
    # first plan yes; gap 0.4 % within 20 s yes; 0.75 <= 0.8 yes; vs spread median(0.583, 1.125, 0.625) < 1 yes
    assert cells[15] == "yes / yes / yes / yes"
    rows[2]["objective"] = 85.0
    cells = [c.strip() for c in next(x for x in mod.render(rows).splitlines()
                                     if x.startswith("| 200x50 | planner |")).strip("|").split("|")]
    assert cells[15] == "yes / yes / no / yes"  # 0.85 > 0.8 x greedy
