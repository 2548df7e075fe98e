"""Regenerate the saved result.json fixtures the report tests are built from
(tests/data/results/<example>.json: each shipped example's base variant).

    .venv/bin/python tools/make_result_fixtures.py            (all examples)
    .venv/bin/python tools/make_result_fixtures.py eu_saas     (one)

Run it only on purpose (a solver or result change you mean to take in), then regenerate the
report goldens with ``pytest tests/test_report.py --update-golden`` and review both diffs. The
tests never rewrite these fixtures themselves.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("eu_saas", "global_chat", "embeddings_pipeline")
OUT = Path("tests/data/results")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("examples", nargs="*", metavar="EXAMPLE", help=f"any of {', '.join(EXAMPLES)} (default: all)")
    ap.add_argument("--time-limit", type=float, default=60.0)
    args = ap.parse_args(argv)
    unknown = sorted(set(args.examples) - set(EXAMPLES))
    if unknown:
        ap.error(f"unknown example(s) {', '.join(unknown)}; choose from {', '.join(EXAMPLES)}")
    os.chdir(ROOT)  # results name their scenario as workloads/<name>.yaml, relative to the repo
    sys.path.insert(0, str(ROOT))
    from planner import api
    from planner.plan.result import write_atomic

    for name in args.examples or EXAMPLES:
        res = api.load_scenario(Path("workloads") / f"{name}.yaml")
        result = api.solve(res, api.SolveOptions(time_limit_s=args.time_limit))
        if result.status not in ("optimal", "feasible") or not result.data["verification"]["ok"]:
            print(f"{name}: status {result.status}, not written", file=sys.stderr)
            return 1
        result.data["solve"]["time_s"] = 0.0  # the fixture does not depend on this machine's clock
        result.data["solve"]["times_s"] = {}
        write_atomic(OUT / f"{name}.json", result.to_json())
        print(f"wrote {OUT / name}.json ({result.status}, {result.data['summary']['total_usd_per_month']:,.2f} "
              "USD/month)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
