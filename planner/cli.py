"""Thin click shell: parse options, call the library API, map errors to exit codes.

Exit codes: 0 ok, 1 infeasible / no plan / verification failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path

import click

from planner.errors import InputError, PlannerError


def process_started() -> float:
    """time.monotonic() when this process started (Linux: /proc) when the process is ``planner``
    itself (``planner ...`` or ``python -m planner ...``): the interpreter's start-up and imports
    (about a second) are part of the time a user waits. Else now: a command run inside a longer
    process (click's CliRunner, a notebook) starts its clock when it starts."""
    now = time.monotonic()
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if not ((spec is not None and spec.name == "planner.__main__") or Path(sys.argv[0]).name == "planner"):
        return now
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime (ticks since boot)
    except (OSError, ValueError, IndexError):
        return now
    return now - age if 0.0 <= age < 60.0 else now

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
@click.option("--all-variants", is_flag=True,
              help="solve the base and every variant (one subdirectory of --out each, --time-limit per solve) and "
                   "write compare.md/json/csv: each variant against the base")
@click.option("--write-lp", "write_lp", type=click.Path(path_type=Path), default=None,
              help="also write the model that is solved (LP format, via PuLP) to this file")
@guarded
def solve(scenario: Path, variant, debug, out_dir, solver, time_limit, gap, threads, integrality, fmt, quiet,
          manifests_dir=None, all_variants=False, write_lp=None):
    """Build and solve the placement MILP; print a summary, write outputs with --out.

    Exit codes: 0 optimal or feasible, 1 infeasible / no plan / verification failed, 2 bad
    input, 130 interrupted (Ctrl-C: the best verified plan so far is written, if there is one)."""
    started = process_started()  # the user's clock: start-up, reading, solving, verifying and writing count
    from planner import api
    from planner.outputs.report import print_summary, render_markdown, write_outputs
    from planner.plan.plan import STATUS_EXIT, plan_from_result

    if time_limit <= 0 or not (0 <= gap < 1):
        raise InputError("--time-limit must be > 0 and --gap in [0, 1)", file="(command line)")
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a directory. To fix: give a directory (new or "
                         "existing) for result.json, plan.json, report.md and the CSVs", file="(command line)")
    _check_out_dir(out_dir, "--out")
    _check_out_dir(manifests_dir, "--manifests")
    if write_lp is not None and write_lp.is_dir():
        raise InputError(f"--write-lp {write_lp}: is a directory. To fix: give a file path, e.g. {write_lp}/model.lp",
                         file="(command line)")
    if write_lp is not None and all_variants:
        raise InputError("--write-lp writes one model; it cannot be combined with --all-variants. To fix: solve one "
                         "variant with --variant NAME --write-lp FILE", file="(command line)")
    say = (lambda m: None) if quiet else (lambda m: click.echo(f"[planner] {m}", err=True))
    if all_variants:
        opts = api.SolveOptions(solver=solver, time_limit_s=time_limit, gap=gap, threads=threads)
        _solve_all_variants(scenario, variant, out_dir, manifests_dir, opts, integrality, fmt, say)
        return
    try:
        res = api.load_scenario(scenario, variant)
        say(f"scenario {res.scenario.name} ({variant or 'base'}): {len(res.scenario.workloads)} workloads, "
            f"{len(res.sites)} sites")
        opts = api.SolveOptions(solver=solver, time_limit_s=time_limit, gap=gap, threads=threads, started_at=started,
                                write_lp=str(write_lp) if write_lp is not None else None)
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
    made_from = result.data.get("scenario", {}) if isinstance(result.data.get("scenario"), dict) else {}
    variant = variant or made_from.get("variant")
    res = api.load_scenario(scenario)
    if made_from.get("name") != res.scenario.name:
        raise InputError(f"this result was solved from scenario {made_from.get('name')!r} ({made_from.get('path')}), "
                         f"not {res.scenario.name!r} ({scenario}). To fix: pass the scenario the result was solved "
                         f"from, or solve {scenario} first (`planner solve {scenario} --out DIR`)", file=str(result_path))
    if variant is not None:
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


def _check_out_dir(path: Path | None, option: str) -> None:
    """An output directory must be a directory or creatable as one: checked before any solve."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: exists and is not a directory. To fix: give a directory (new or "
                         "existing) for the outputs", file="(command line)")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{option} {path}: {parent} is a file, so the directory cannot be created. To fix: give a "
                         "directory path whose parents are directories", file="(command line)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: {parent} is not writable. To fix: give a directory you can write to",
                         file="(command line)")


def _solve_all_variants(scenario: Path, variant, out_dir: Path | None, manifests_dir, opts, integrality, fmt,
                        say) -> None:
    """`solve --all-variants --out DIR`: DIR/<base|variant>/ with the usual outputs, and
    DIR/compare.md, compare.json, compare.csv (each variant against the base)."""
    from planner import api
    from planner.outputs.compare import compare as compare_data
    from planner.outputs.compare import render_markdown as compare_md
    from planner.outputs.compare import render_table as compare_table
    from planner.outputs.compare import to_json as compare_json
    from planner.outputs.compare import write_compare
    from planner.outputs.report import write_outputs
    from planner.plan.plan import plan_from_result

    if variant is not None:
        raise InputError("--all-variants solves every variant; drop --variant (or drop --all-variants)",
                         file="(command line)")
    if out_dir is None:
        raise InputError("--all-variants needs --out DIR (one subdirectory per variant and the comparison). To fix: "
                         "add --out DIR", file="(command line)")
    if manifests_dir is not None:
        raise InputError("--manifests is for one plan; with --all-variants run `planner manifests DIR/<variant>` "
                         "afterwards", file="(command line)")
    try:
        solved = api.solve_variants(scenario, opts, integrality=integrality, progress=say)
    except (KeyboardInterrupt, api.Cancelled):
        _err("interrupted (Ctrl-C) before every variant was solved; nothing written")
        sys.exit(130)
    for name, result in solved:
        plan = plan_from_result(result.data) if result.data.get("placements") is not None else None
        write_outputs(result, out_dir / name, plan=plan)
        say(f"wrote {out_dir / name}/ ({result.status})")
    (_, base), rest = solved[0], solved[1:]
    comparisons = [compare_data(base.data, r.data, "base", name) for name, r in rest]
    written = write_compare(comparisons, out_dir)
    say("wrote " + ", ".join(str(p) for p in written))
    if fmt == "json":
        click.echo(compare_json(comparisons), nl=False)
    elif fmt == "md":
        click.echo(compare_md(comparisons), nl=False)
    else:
        for name, r in solved:
            total = r.data["summary"]["total_usd_per_month"]
            click.echo(f"{name}: {r.status}" + (f", {total:,.2f} USD/month" if total is not None else ""))
        click.echo(compare_table(comparisons), nl=False)
    bad = [name for name, r in solved if r.status in ("infeasible", "no_plan")
           or (r.data.get("verification") or {}).get("ok") is False]
    if bad:
        _err(f"error: no verified plan for: {', '.join(bad)} (see {out_dir}/<variant>/report.md)")
        _exit(1)


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="A B [C...]")
@click.option("--format", "fmt", type=click.Choice(["table", "md", "json", "csv"]), default="table",
              show_default=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="write compare.md, compare.json and compare.csv here")
@click.option("--solver", type=click.Choice(["highs", "cbc"]), default="highs", show_default=True)
@click.option("--time-limit", type=float, default=60.0, show_default=True,
              help="seconds per solve of a scenario input")
@click.option("--gap", type=float, default=0.005, show_default=True, help="relative MIP gap to prove")
@click.option("--quiet", is_flag=True, help="no progress on stderr")
@click.option("--debug", is_flag=True, hidden=True)
@guarded
def compare(inputs, fmt, out_dir, solver, time_limit, gap, quiet, debug):
    """Compare plans: each input a result.json (or its directory) or scenario.yaml[:variant]
    (solved first); with more than two, each is compared with the first.

    A change is one (site, offer, tier, cost kind); its delta (B - A, decision cost) is in whole
    cents and the deltas add up exactly to the total. Exit codes: 0 ok, 1 an input has no plan,
    2 bad input."""
    from planner import api
    from planner.outputs import compare as cmp

    if len(inputs) < 2:
        raise InputError("compare needs at least two inputs (A B [C...]). To fix: give a result.json or "
                         "scenario.yaml[:variant] for each plan", file="(command line)")
    if time_limit <= 0 or not (0 <= gap < 1):
        raise InputError("--time-limit must be > 0 and --gap in [0, 1)", file="(command line)")
    _check_out_dir(out_dir, "--out")
    say = (lambda m: None) if quiet else (lambda m: click.echo(f"[planner] {m}", err=True))
    opts = api.SolveOptions(solver=solver, time_limit_s=time_limit, gap=gap)
    try:
        comparisons = api.compare(list(inputs), opts, progress=say)
    except (KeyboardInterrupt, api.Cancelled):
        _err("interrupted (Ctrl-C); nothing written")
        sys.exit(130)
    if out_dir is not None:
        written = cmp.write_compare(comparisons, out_dir)
        say("wrote " + ", ".join(str(p) for p in written))
    render = {"json": cmp.to_json, "md": cmp.render_markdown, "csv": cmp.to_csv, "table": cmp.render_table}[fmt]
    click.echo(render(comparisons), nl=False)
    if any(not c.has_plans for c in comparisons):
        _err("error: an input has no plan: " + "; ".join(n for c in comparisons for n in c.notes if "no plan" in n))
        _exit(1)


if __name__ == "__main__":
    main()


# --------------------------------------------------------------------------- estimate / catalog
_ESTIMATE_COLUMNS = ("accelerator", "offer", "tensor_parallel", "replicas_per_instance", "max_rps", "planning_rps",
                     "output_tokens_per_s", "regime", "usd_per_1m_tokens", "per_1m", "price_source", "rate_source",
                     "notes", "reason")


@main.command()
@click.argument("model")
@click.option("--accelerator", default=None, help="one accelerator (default: every offered accelerator)")
@click.option("--offer", default=None, help="one offer, PROVIDER/REGION/TYPE (e.g. aws/us-east-1/g5.xlarge)")
@click.option("--input-tokens", type=int, default=None, help="prompt tokens (default 1000; encoders 512)")
@click.option("--output-tokens", type=int, default=None, help="generated tokens (default 200; encoders 0)")
@click.option("--ttft-ms", type=float, default=None, help="time-to-first-token target")
@click.option("--tpot-ms", type=float, default=None, help="time-per-output-token target")
@click.option("--weight-precision", default=None, help="bf16|fp16|fp8|int4 (default: the model's)")
@click.option("--kv-precision", default=None, help="bf16|fp16|fp8|int4 (default: the model's)")
@click.option("--tensor-parallel", type=int, default=None, help="force a TP degree (1, 2, 4, 8)")
@click.option("--max-batch-sequences", type=int, default=None, help="concurrent sequences per replica (default 256)")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--debug", is_flag=True, hidden=True)
@guarded
def estimate(model, accelerator, offer, input_tokens, output_tokens, ttft_ms, tpot_ms, weight_precision,
             kv_precision, tensor_parallel, max_batch_sequences, fmt, debug):
    """Requests/s, tokens/s, binding regime and USD per 1M tokens of MODEL per accelerator or offer."""
    from planner.api import estimate as api_estimate
    from planner.explore import render_rows

    rows = api_estimate(model, accelerator=accelerator, offer=offer, input_tokens=input_tokens,
                        output_tokens=output_tokens, ttft_ms=ttft_ms, tpot_ms=tpot_ms,
                        weight_precision=weight_precision, kv_precision=kv_precision,
                        tensor_parallel=tensor_parallel, max_batch_sequences=max_batch_sequences)
    if fmt == "json":
        click.echo(render_rows(rows, "json"), nl=False)
        return
    r0 = rows[0] if rows else {}
    click.echo(f"{r0.get('model')}: {r0.get('input_tokens')} in / {r0.get('output_tokens')} out tokens, weights "
               f"{r0.get('weight_precision')}, KV {r0.get('kv_cache_precision')}; planning = max x 0.8")
    click.echo(render_rows([{k: r[k] for k in _ESTIMATE_COLUMNS} for r in rows], "table"), nl=False)


@main.command()
@click.argument("table", type=str)
@click.option("--provider", default=None)
@click.option("--region", default=None)
@click.option("--accelerator", default=None)
@click.option("--min-memory-gib", type=float, default=None, help="GPU memory per GPU (models: weight size)")
@click.option("--model", default=None, help="prices: rank offers by USD per 1M tokens of this model")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--debug", is_flag=True, hidden=True)
@guarded
def catalog(table, provider, region, accelerator, min_memory_gib, model, fmt, debug):
    """Browse the shipped catalogs: TABLE is gpus, regions, models or prices."""
    from planner.api import catalog as api_catalog
    from planner.explore import render_rows

    rows = api_catalog(table, provider=provider, region=region, accelerator=accelerator,
                       min_memory_gib=min_memory_gib, model=model)
    click.echo(render_rows(rows, fmt), nl=False)
