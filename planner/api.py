"""Library API. The CLI is a thin shell over these functions.

- :func:`load_scenario` - read, patch (variant), validate and resolve a scenario file;
- :func:`solve` - candidates, model, solve, Plan, result.json tables, independent verification:
  returns the verified :class:`PlacementResult` the CLI prints, whatever the status
  (optimal, feasible, infeasible, no_plan, interrupted); it does not raise on infeasible;
- :func:`result_from_plan` - the result of a Plan (e.g. a saved plan.json), verified, without the
  model or the solver;
- :func:`verify` - recompute every constraint, the N+1 failover and the cost of a result;
- :func:`render_manifests` - Terraform-like manifests of a result, one tree per site.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from planner.derive.candidates import CandidateSet, build_candidates
from planner.input.catalog import load_catalog
from planner.input.consistency import Resolved, check
from planner.input.loader import load_raw
from planner.optimise.backends import Cancelled, SolveOptions  # noqa: F401 (public)
from planner.optimise.strategy import solve_plan
from planner.plan.plan import Plan
from planner.plan.result import PlacementResult, build_result


def load_scenario(path: str | Path, variant: str | None = None, catalog_dir: Path | None = None) -> Resolved:
    """Read, patch (variant), validate and resolve a scenario against the catalogs."""
    loaded = load_raw(path, variant)
    return check(loaded, load_catalog(catalog_dir))


def solve(res: Resolved, options: SolveOptions | None = None, integrality: str = "auto",
          progress: Callable[[str], None] | None = None) -> PlacementResult:
    """Build and solve the placement MILP; return the verified result (any status).

    A plan that fails independent verification is never returned as a plan: its status becomes
    ``no_plan`` and the violations are kept in ``verification`` and the notes. Raises
    :class:`Cancelled` when interrupted (Ctrl-C) before any checked plan existed."""
    opts = options or SolveOptions()
    say = progress or (lambda msg: None)
    t = time.monotonic()
    cs = build_candidates(res)
    say(f"candidates: {len(cs.triples):,} (workload, site, offer) triples, {len(cs.exclusions):,} pairs pruned "
        f"({time.monotonic() - t:.2f} s)")
    plan = solve_plan(cs, opts, integrality, say)
    if plan.solve is not None:
        plan.solve.notes[:0] = [n for n in res.warnings if n.startswith("throughput: ")]
    t = time.monotonic()
    result = result_from_plan(res, plan, cs)
    if plan.solve is not None:
        plan.solve.times_s["result_and_verify"] = time.monotonic() - t
    return result


def result_from_plan(res: Resolved, plan: Plan, cs: CandidateSet | None = None) -> PlacementResult:
    """result.json (1.1) of a Plan, verified independently: the same bytes for the same scenario,
    plan tables and solve record, with no model or solver involved."""
    cs = cs or build_candidates(res)
    result = build_result(cs, plan)
    if not plan.has_plan:
        return result
    from planner.verify import verify_result

    report = verify_result(res, result)
    result.data["failover"] = report.failover
    result.data["verification"] = report.to_dict()
    if not report.ok:
        result.data["solve"]["notes"].append("the plan failed independent verification; it is not returned as a plan")
        result.data["solve"]["status"] = "no_plan"
        result.data["solve"]["reasons"] = ["the plan failed independent verification: " + v
                                           for v in report.violations[:20]]
    return result


def verify(res: Resolved, result: PlacementResult):
    from planner.verify import verify_result

    return verify_result(res, result)


def render_manifests(result: PlacementResult, out_dir: str | Path, templates_dir: str | Path | None = None):
    """Terraform-like manifests of a result (one tree per site and index.md), from result.json
    data alone; returns the paths written."""
    from planner.outputs.manifests import write_manifests

    return write_manifests(result.data, Path(out_dir), Path(templates_dir) if templates_dir else None)


def estimate(model: str, accelerator: str | None = None, offer: str | None = None, **kw) -> list[dict]:
    """Throughput and cost of ``model`` per accelerator or on one offer: the rows of
    ``planner estimate`` (see :func:`planner.explore.estimate` for the arguments and fields)."""
    from planner.explore import estimate as _estimate

    return _estimate(model, accelerator=accelerator, offer=offer, **kw)


def catalog(table: str, **filters) -> list[dict]:
    """The rows of ``planner catalog gpus|regions|models|prices`` (see :mod:`planner.explore`)."""
    from planner.explore import catalog_rows

    return catalog_rows(table, **filters)
