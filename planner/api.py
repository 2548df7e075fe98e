"""Library API. The CLI is a thin shell over these functions.

- :func:`load_scenario` - read, patch (variant), validate and resolve a scenario file;
- :func:`solve` - candidates, model, solve, Plan, result.json tables, independent verification:
  returns the verified :class:`PlacementResult` the CLI prints, whatever the status
  (optimal, feasible, infeasible, no_plan, interrupted); it does not raise on infeasible;
- :func:`result_from_plan` - the result of a Plan (e.g. a saved plan.json), verified, without the
  model or the solver;
- :func:`verify` - recompute every constraint, the N+1 failover and the cost of a result;
- :func:`render_manifests` - Terraform-like manifests of a result, one tree per site;
- :func:`compare` - compare results (result.json files or ``scenario.yaml[:variant]``, solved
  first), each with the first: :class:`planner.outputs.compare.Comparison` values;
- :func:`solve_variants` - solve a scenario's base and every variant.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planner.derive.candidates import CandidateSet, build_candidates
from planner.errors import InputError
from planner.gcpause import gc_paused
from planner.input.catalog import load_catalog
from planner.input.consistency import Resolved, check
from planner.input.loader import load_raw
from planner.optimise.backends import Cancelled, SolveOptions  # noqa: F401 (public)
from planner.optimise.strategy import solve_plan
from planner.plan.plan import Plan
from planner.plan.result import PlacementResult, build_result


@gc_paused
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


@gc_paused
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


def baseline(res: Resolved, method: str) -> PlacementResult:
    """A frozen benchmark baseline (``greedy``, ``greedy-spread``, ``cloud-on-demand``; see
    :mod:`planner.baselines`) as a result verified by the same independent checker as a solve."""
    from planner.baselines import build_plan

    t = time.monotonic()
    cs = build_candidates(res)
    plan = build_plan(cs, method)
    if plan.solve is not None:
        plan.solve.times_s["candidates"] = time.monotonic() - t - plan.solve.times_s.get("baseline", 0.0)
    t = time.monotonic()
    result = result_from_plan(res, plan, cs)
    result.data["solve"]["times_s"]["result_and_verify"] = time.monotonic() - t
    return result


def lp_bound(res: Resolved, options: SolveOptions | None = None) -> dict:
    """The LP relaxation bound of the default formulation (:mod:`planner.optimise.relax`):
    {status, objective (the bound, USD/month, or None), form, build_s, solve_s, candidates_s}."""
    from planner.optimise.relax import lp_bound as _lp_bound

    t = time.monotonic()
    cs = build_candidates(res)
    cand_s = time.monotonic() - t
    out = _lp_bound(cs, options)
    out["candidates_s"] = cand_s
    return out


# ====================================================================== compare
def _solve_fresh(res: Resolved, options: SolveOptions | None, progress, integrality: str = "auto") -> PlacementResult:
    """Solve with the options' limits, its clock started now (one clock per solve)."""
    import dataclasses

    opts = dataclasses.replace(options or SolveOptions(), started_at=time.monotonic())
    return solve(res, opts, integrality=integrality, progress=progress)


def parse_compare_input(spec: str) -> tuple[str, Path, str | None]:
    """('result', path, None) for a result.json (or a directory holding one); ('scenario', path,
    variant or None) for ``scenario.yaml[:variant]``."""
    p = Path(spec)
    if p.is_dir() or p.suffix.lower() == ".json":
        return "result", p, None
    if not p.exists() and ":" in spec:
        head, variant = spec.rsplit(":", 1)
        if Path(head).suffix.lower() in (".yaml", ".yml") or Path(head).exists():
            return "scenario", Path(head), variant or None
    if p.suffix.lower() in (".yaml", ".yml"):
        return "scenario", p, None
    return "result", p, None


def compare(inputs: list, options: SolveOptions | None = None,
            progress: Callable[[str], None] | None = None) -> list:
    """Compare results, each with the first; returns one Comparison per input after the first.

    ``inputs``: result.json paths (or directories holding one), ``"scenario.yaml[:variant]"``
    strings (solved through :func:`solve` with ``options``), or :class:`PlacementResult` values.
    Every input is read and checked (files, result schema versions, scenarios and variants)
    before any solve, so bad input raises :class:`InputError` without solving anything."""
    from planner.outputs.compare import check_versions, read_result
    from planner.outputs.compare import compare as compare_data
    from planner.plan.result import SCHEMA_VERSION

    say = progress or (lambda msg: None)
    if len(inputs) < 2:
        raise InputError("compare needs at least two inputs. To fix: give A B [C...], each a result.json or "
                         "scenario.yaml[:variant]", file="(command line)")
    staged: list[tuple[str, Any]] = []
    for item in inputs:
        if isinstance(item, PlacementResult):
            staged.append((_label_of(item.data), item.data))
            continue
        kind, path, variant = parse_compare_input(str(item))
        if kind == "result":
            staged.append((str(item), read_result(path)))
        else:
            staged.append((f"{path}:{variant or 'base'}", load_scenario(path, variant)))
    check_versions([(n, d) for n, d in staged if isinstance(d, dict)], SCHEMA_VERSION)
    datas: list[tuple[str, dict]] = []
    for name, d in staged:
        if isinstance(d, Resolved):
            say(f"solving {name}")
            d = _solve_fresh(d, options, progress).data
        datas.append((name, d))
    (a_name, a), rest = datas[0], datas[1:]
    return [compare_data(a, b, a_name, b_name) for b_name, b in rest]


def _label_of(data: dict) -> str:
    sc = data.get("scenario", {})
    return f"{sc.get('path', sc.get('name', '?'))}:{sc.get('variant') or 'base'}"


def solve_variants(path: str | Path, options: SolveOptions | None = None, integrality: str = "auto",
                   progress: Callable[[str], None] | None = None) -> list[tuple[str, PlacementResult]]:
    """Solve the base scenario and every variant (in the file's order): [("base", result),
    (variant, result), ...]. Every variant is loaded and checked before any solve."""
    say = progress or (lambda msg: None)
    base = load_scenario(path)
    staged = [("base", base)] + [(name, load_scenario(path, name)) for name in base.scenario.variants]
    out = []
    for name, res in staged:
        say(f"solving {name}")
        out.append((name, _solve_fresh(res, options, progress, integrality)))
    return out


def estimate(model: str, accelerator: str | None = None, offer: str | None = None, **kw) -> list[dict]:
    """Throughput and cost of ``model`` per accelerator or on one offer: the rows of
    ``planner estimate`` (see :func:`planner.explore.estimate` for the arguments and fields)."""
    from planner.explore import estimate as _estimate

    return _estimate(model, accelerator=accelerator, offer=offer, **kw)


def catalog(table: str, **filters) -> list[dict]:
    """The rows of ``planner catalog gpus|regions|models|prices`` (see :mod:`planner.explore`)."""
    from planner.explore import catalog_rows

    return catalog_rows(table, **filters)
