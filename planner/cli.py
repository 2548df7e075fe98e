"""Thin click shell: parse options, call the library API, map errors to exit codes.

Exit codes: 0 ok, 1 infeasible / no plan / verification failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from planner.errors import InputError, PlannerError

EXIT_BAD_INPUT = 2


def _err(msg: str) -> None:
    click.echo(msg, err=True)


def _exit(code: int) -> None:
    """Leave with ``code``. When a HiGHS run that did not honour its cancel in time still runs
    (backends.CANCEL_GRACE_S), leave at once with os._exit: its thread must not meet the
    interpreter's shutdown (everything is written and flushed by then). Not when the CLI is
    embedded in another program (click's test runner swaps sys.stdout): the host process lives
    on, and the run stops at its next interrupt check."""
    from planner.optimise.backends import abandoned_running

    if sys.stdout is sys.__stdout__ and abandoned_running():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def guarded(fn):
    """Map every error to a message and an exit code; never show a traceback unless --debug."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = kwargs.get("debug", False)
        try:
            return fn(*args, **kwargs)
        except PlannerError as exc:
            _err(f"error: {exc}" if not isinstance(exc, InputError) else str(exc))
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            _err("interrupted (Ctrl-C)")
            sys.exit(130)
        except click.exceptions.Exit:
            raise
        except (click.ClickException, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback for users
            if debug:
                raise
            _err(f"internal error: {type(exc).__name__}: {exc}\n(run again with --debug for the traceback and "
                 "please report it)")
            sys.exit(70)

    return wrapper


def scenario_options(fn):
    fn = click.option("--variant", default=None, help="apply a named variant (best, expected, stress, ...)")(fn)
    fn = click.option("--debug", is_flag=True, hidden=True)(fn)
    fn = click.argument("scenario", type=click.Path(path_type=Path))(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="planner")
def main():
    """planner - place AI inference across on-prem racks, edge nodes and public cloud."""


@main.command()
@click.option("--result", "of_result", is_flag=True, help="print the schema of result.json instead")
def schema(of_result: bool):
    """Print the JSON Schema of the scenario file (or of result.json)."""
    if of_result:
        from planner.plan.result import result_json_schema

        click.echo(json.dumps(result_json_schema(), indent=2, sort_keys=True))
        return
    from planner.input.schema import scenario_json_schema

    click.echo(json.dumps(scenario_json_schema(), indent=2, sort_keys=True))


@main.command()
@scenario_options
@click.option("--all-variants", is_flag=True, help="also validate every variant of the scenario")
@guarded
def validate(scenario: Path, variant: str | None, debug: bool, all_variants: bool):
    """Check a scenario file against the schema and the catalogs (exit 0 ok, 2 bad input)."""
    from planner.api import load_scenario
    from planner.outputs.report import scenario_summary

    res = load_scenario(scenario, variant)
    click.echo(scenario_summary(res))
    if all_variants:
        for name in res.scenario.variants:
            load_scenario(scenario, name)
            click.echo(f"variant {name}: ok")
    for w in res.warnings:
        _err(f"warning: {w}")


@main.command()
@scenario_options
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="write result.json, plan.json, report.md, report.html and CSVs here")
@click.option("--solver", type=click.Choice(["highs", "cbc"]), default="highs", show_default=True)
@click.option("--time-limit", type=float, default=60.0, show_default=True,
              help="wall-clock seconds for the whole run: reading, solving, verifying, writing")
@click.option("--gap", type=float, default=0.005, show_default=True, help="relative MIP gap to prove (0.005 = 0.5 %)")
@click.option("--threads", type=int, default=None)
@click.option("--integrality", type=click.Choice(["auto", "replica", "pooled"]), default="auto", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "md"]), default="table", show_default=True)
@click.option("--quiet", is_flag=True, help="no progress on stderr")
@click.option("--manifests", "manifests_dir", type=click.Path(path_type=Path), default=None,
              help="also render Terraform-like manifests of the plan here (see `planner manifests`)")
@guarded
def solve(scenario: Path, variant, debug, out_dir, solver, time_limit, gap, threads, integrality, fmt, quiet,
          manifests_dir=None):
    """Build and solve the placement MILP; print a summary, write outputs with --out.

    Exit codes: 0 optimal or feasible, 1 infeasible / no plan / verification failed, 2 bad
    input, 130 interrupted (Ctrl-C: the best verified plan so far is written, if there is one)."""
    import time

    started = time.monotonic()  # the user's clock: reading, solving, verifying and writing count
    from planner import api
    from planner.outputs.report import print_summary, render_markdown, write_outputs
    from planner.plan.plan import STATUS_EXIT, plan_from_result

    if time_limit <= 0 or not (0 <= gap < 1):
        raise InputError("--time-limit must be > 0 and --gap in [0, 1)", file="(command line)")
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a directory. To fix: give a directory (new or "
                         "existing) for result.json, plan.json, report.md and the CSVs", file="(command line)")
    say = (lambda m: None) if quiet else (lambda m: click.echo(f"[planner] {m}", err=True))
    try:
        res = api.load_scenario(scenario, variant)
        say(f"scenario {res.scenario.name} ({variant or 'base'}): {len(res.scenario.workloads)} workloads, "
            f"{len(res.sites)} sites")
        opts = api.SolveOptions(solver=solver, time_limit_s=time_limit, gap=gap, threads=threads, started_at=started)
        result = api.solve(res, opts, integrality=integrality, progress=say)
    except (KeyboardInterrupt, api.Cancelled):
        _err("interrupted (Ctrl-C) before any plan was found; nothing written")
        sys.exit(130)
    status = result.status
    try:
        if out_dir is not None:
            plan = plan_from_result(result.data) if result.data.get("placements") is not None else None
            result.data["solve"]["time_s"] = time.monotonic() - started
            write_outputs(result, out_dir, plan=plan)
            say(f"wrote {out_dir}/result.json, plan.json, report.md, report.html and CSVs")
        else:
            result.data["solve"]["time_s"] = time.monotonic() - started
        if manifests_dir is not None:
            _solve_manifests(result, manifests_dir, say)
    except KeyboardInterrupt:
        _err("interrupted (Ctrl-C) while writing; no file was left half-written")
        _exit(130)
    if fmt == "json":
        click.echo(result.to_json(), nl=False)
    elif fmt == "md":
        click.echo(render_markdown(result))
    else:
        print_summary(result)
    sv = result.data["solve"]
    if status in ("infeasible", "no_plan"):
        reasons = sv.get("reasons") or [status]
        _err(f"error: {status.replace('_', ' ')}: {reasons[0]}")
        for r in reasons[1:6]:
            _err(f"  also: {r}")
    ver = result.data.get("verification") or {}
    if status in ("optimal", "feasible", "interrupted") and ver.get("ok") is False:
        _err("error: the plan failed independent verification:\n  " + "\n  ".join(ver.get("violations", [])[:20]))
        _exit(1)
    if status == "interrupted":
        _err("interrupted (Ctrl-C): the best verified plan so far was kept")
    _exit(STATUS_EXIT[status])


@main.command()
@scenario_options
@click.argument("result_path", metavar="RESULT", type=click.Path(path_type=Path))
@guarded
def verify(scenario: Path, variant, debug, result_path: Path):
    """Independently re-check a result.json against its scenario (exit 1 on any violation)."""
    from planner import api
    from planner.plan.result import PlacementResult

    if result_path.is_dir():
        result_path = result_path / "result.json"
    if not result_path.exists():
        raise InputError(f"{result_path}: result file not found. To fix: pass the result.json written by "
                         "`planner solve --out DIR`", file=str(result_path))
    try:
        result = PlacementResult.read(result_path)
    except (ValueError, KeyError) as exc:
        raise InputError(f"{result_path}: not a planner 1.1 result.json ({exc})", file=str(result_path)) from None
    variant = variant or result.data.get("scenario", {}).get("variant")
    res = api.load_scenario(scenario, variant)
    try:
        report = api.verify(res, result)
    except (ValueError, KeyError) as exc:
        raise InputError(f"{result_path}: cannot be checked against {scenario} ({exc}). To fix: pass the scenario "
                         "(and --variant) the result was solved from, or re-solve", file=str(result_path)) from None
    for w in report.warnings:
        click.echo(f"warning: {w}")
    for f in report.failover:
        if f["unserved_rps"] > 0:
            click.echo(f"failover: losing {f['lost_site']} in slot {f['slot']} leaves {f['unserved_rps']:.4g} rps of "
                       f"{f['workload']} class {f['query_class']} from {f['user_region']} unserved within the SLO")
    if report.ok:
        click.echo(f"ok: {result_path} satisfies every constraint; cost {report.recomputed_cost:,.2f} USD/month "
                   f"matches the result")
        return
    _err("verification failed:\n  " + "\n  ".join(report.violations))
    sys.exit(1)


def _solve_manifests(result, manifests_dir: Path, say) -> None:
    """`solve --manifests DIR`: render the plan's manifests (a result without a plan: nothing)."""
    from planner.outputs.manifests import ManifestError, write_manifests

    try:
        written = write_manifests(result.data, manifests_dir)
    except ManifestError as exc:
        _err(f"manifests not written: {exc}")
        return
    say(f"wrote {len(written)} manifest files to {manifests_dir} (index.md)")


@main.command()
@click.argument("result_path", metavar="RESULT", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="directory of the manifests: one tree per site and index.md")
@click.option("--templates", "templates_dir", type=click.Path(path_type=Path), default=None,
              help="your own templates (same layout as templates/; files missing there fall back to the shipped ones)")
@click.option("--debug", is_flag=True, hidden=True)
@guarded
def manifests(result_path: Path, out_dir: Path, templates_dir: Path | None, debug: bool):
    """Render Terraform-like manifests of a result.json (one tree per site), never re-solving.

    Exit codes: 0 written, 1 the result has no plan or a template failed, 2 bad input."""
    from planner.outputs.manifests import ManifestError, write_manifests
    from planner.plan.result import PlacementResult

    if result_path.is_dir():
        result_path = result_path / "result.json"
    if not result_path.exists():
        raise InputError(f"{result_path}: result file not found. To fix: pass the result.json written by "
                         "`planner solve --out DIR`", file=str(result_path))
    if templates_dir is not None and not templates_dir.is_dir():
        raise InputError(f"--templates {templates_dir}: not a directory. To fix: give a directory laid out like "
                         "templates/ (see templates/README.md)", file="(command line)")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a directory. To fix: give a directory (new or "
                         "existing) for the manifests", file="(command line)")
    try:
        result = PlacementResult.read(result_path)
    except (ValueError, KeyError) as exc:
        raise InputError(f"{result_path}: not a planner 1.1 result.json ({exc})", file=str(result_path)) from None
    try:
        written = write_manifests(result.data, out_dir, templates_dir)
    except ManifestError as exc:
        raise PlannerError(f"{result_path}: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise InputError(f"{result_path}: an incomplete result.json ({type(exc).__name__}: {exc}). To fix: re-solve "
                         "with `planner solve --out DIR`", file=str(result_path)) from None
    trees = sorted({p.relative_to(out_dir).parts[0] for p in written if len(p.relative_to(out_dir).parts) > 1})
    click.echo(f"wrote {len(trees)} trees ({', '.join(trees)}) and index.md to {out_dir}")


if __name__ == "__main__":
    main()
