"""Scale ladder for the placement MILP, with baselines measured in the same run.

For each size (W workloads x S sites, scenario from ``bench/generate.py``):

- candidate triples, the time to build them, and the model size (variables, integer variables,
  constraints, nonzeros) and build time of each integrality form;
- each form solved through ``planner.api.solve`` under ``--time-limit``: status, objective, gap,
  wall-clock time (candidates + build + solve + rounding, as a user sees it) and whether
  ``planner.api.verify`` passes; the form ``auto`` would pick;
- baseline (a), build time: the N+1 rows in the naive quadratic form (per site, an ``lpSum`` over
  every other candidate site's capacity) beside the product's linear ``T[w,t]`` form, their
  nonzeros and build times, both on the same skeleton model (variables only);
- baseline (b), solver: CBC (``SolveOptions(solver="cbc")``) beside HiGHS on the smallest sizes;
- baseline (c), the LP-rounding heuristic alone on the replica form: time to a first plan, its
  objective, and how far it is from the best final plan.

Writes ``<out>/<tag>.txt`` (the tables), ``<out>/<tag>.json`` (everything, with machine facts)
and one ``<out>/<tag>-<table>.csv`` per table. Times are wall-clock on whatever machine runs it:
noisy, and nothing here asserts on them.

    .venv/bin/python bench/run.py                      # default ladder (7-8 minutes on 2 cores)
    .venv/bin/python bench/run.py --sizes 5x5,20x10 --time-limit 20 --tag quick
    .venv/bin/python bench/run.py --big                # adds 1000x100 (about 6 more minutes, a few GB)
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import importlib
import importlib.metadata
import io
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pulp

from planner import api
from planner.derive.candidates import build_candidates
from planner.derive.demand import hours_per_month_of_slot
from planner.errors import InfeasibleError, NoPlanError
from planner.input.catalog import load_catalog
from planner.input.consistency import check
from planner.input.loader import LoadedScenario
from planner.input.schema import Scenario
from planner.optimise.backends import SolveOptions
from planner.optimise.model import (
    PlacementModel,
    _mix_rps,
    build_model,
    clean,
    define_redundancy,
    define_variables,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import make_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = "5x5,20x10,50x20,200x50"
BIG_SIZE = "1000x100"
FORMS = ("replica", "pooled")
# planner.solve exports helpers whose module name the package shadows with api.solve
_solve_mod = importlib.import_module("planner.optimise.backends")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine facts
def machine_facts() -> dict:
    def ver(pkg: str) -> str | None:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return None

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    cpu = None
    mem_gib = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    highs_version = None
    try:
        h = _solve_mod.new_highs()
        highs_version = f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"
    except Exception:  # pragma: no cover - facts are best effort
        pass
    dirty = git("status", "--porcelain", "--", "planner")
    return {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu,
        "mem_total_gib": mem_gib,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "highspy": ver("highspy"),
        "highs": highs_version,
        "pulp": ver("PuLP") or getattr(pulp, "__version__", None),
        "planner": ver("planner"),
        "git_commit": git("rev-parse", "HEAD"),
        "planner_dirty_files": len(dirty.splitlines()) if dirty else 0,
    }


# --------------------------------------------------------------------------- helpers
def resolve(doc: dict):
    sc = Scenario.model_validate(doc)
    loaded = LoadedScenario(scenario=sc, path=Path(f"{doc['name']}.yaml"), content_hash="bench", variant=None,
                            raw=doc)
    return check(loaded, load_catalog())


def model_stats(m: PlacementModel) -> dict:
    vs = m.prob.variables()
    cons = m.prob.constraints()
    return {"variables": len(vs), "integer_variables": sum(1 for v in vs if v.cat == pulp.LpInteger),
            "constraints": len(cons), "nonzeros": sum(len(c) for c in cons)}


def skeleton(cs) -> PlacementModel:
    """The model's variables without any constraint family (to time one family alone)."""
    s = cs.res.scenario
    m = PlacementModel(cs=cs, integrality="replica", prob=pulp.LpProblem("nplus1_bench", pulp.LpMinimize))
    m.slots = [t.id for t in s.time_slots]
    m.H = {t.id: hours_per_month_of_slot(t, s.policies.hours_per_month) for t in s.time_slots}
    define_variables(m)
    return m


def naive_nplus1(m: PlacementModel) -> None:
    """N+1 as it is usually first written: for every candidate site s of w and slot t, the
    capacity of every OTHER site must carry the demand -- an lpSum per site over all other sites'
    replica variables, O(sites^2) nonzeros per workload and slot. The class-mix rates are computed
    once per (candidate, slot), as the linear form does, so only the row shape differs."""
    cs = m.cs
    by_w = cs.by_workload()
    for w in cs.res.scenario.workloads:
        if w.redundancy.mode != "n_plus_1" or w.is_batch:
            continue
        wl = cs.loads[w.id]
        cands = by_w[w.id]
        sites = sorted({c.site for c in cands})
        for t in m.slots:
            D = wl.peak(t)
            if D <= 0:
                continue
            mix = {c.key: _mix_rps(m, c, t) for c in cands}
            for sid in sites:
                m.prob += (
                    pulp.lpSum(mix[c.key] * m.r[(w.id, c.site, c.offer.id, tau, t)]
                               for c in cands if c.site != sid for tau in c.tiers if tau != "spot") >= D,
                    f"nplus1_naive__{clean(w.id)}__{clean(sid)}__{t}",
                )


def nplus1_rows(m: PlacementModel) -> tuple[int, int]:
    rows = nnz = 0
    for c in m.prob.constraints():
        if c.name.startswith(("nplus1__", "nplus1_total__", "nplus1_naive__")):
            rows += 1
            nnz += len(c)
    return rows, nnz


def nplus1_baseline(cs) -> dict:
    ws = [w for w in cs.res.scenario.workloads if w.redundancy.mode == "n_plus_1" and not w.is_batch]
    by_w = cs.by_workload()
    sites = [len({c.site for c in by_w[w.id]}) for w in ws]
    out = {"nplus1_workloads": len(ws), "sites_per_nplus1_workload": round(sum(sites) / len(sites), 1) if sites else 0}
    lin = skeleton(cs)
    t0 = time.perf_counter()
    define_redundancy(lin)
    out["linear_build_s"] = time.perf_counter() - t0
    out["linear_rows"], out["linear_nonzeros"] = nplus1_rows(lin)
    del lin
    gc.collect()
    nai = skeleton(cs)
    t0 = time.perf_counter()
    naive_nplus1(nai)
    out["naive_build_s"] = time.perf_counter() - t0
    out["naive_rows"], out["naive_nonzeros"] = nplus1_rows(nai)
    del nai
    gc.collect()
    out["nonzeros_ratio"] = out["naive_nonzeros"] / out["linear_nonzeros"] if out["linear_nonzeros"] else None
    out["build_time_ratio"] = out["naive_build_s"] / out["linear_build_s"] if out["linear_build_s"] > 0 else None
    return out


def run_solve(res, opts: SolveOptions, form: str) -> dict:
    """api.solve + api.verify, never raising: the outcome as a flat dict."""
    t0 = time.perf_counter()
    row: dict = {"form": form, "solver": opts.solver, "time_limit_s": opts.time_limit_s}
    try:
        result = api.solve(res, opts, integrality=form)
    except NoPlanError as e:
        row.update(status="no_plan", wall_s=time.perf_counter() - t0, message=str(e))
        return row
    except InfeasibleError as e:
        row.update(status="infeasible", wall_s=time.perf_counter() - t0, message=str(e))
        return row
    except Exception as e:  # a bench keeps going; the traceback goes to the JSON
        row.update(status="error", wall_s=time.perf_counter() - t0, message=f"{type(e).__name__}: {e}",
                   traceback=traceback.format_exc())
        return row
    row["wall_s"] = time.perf_counter() - t0
    d = result.data["solve"]
    row.update(status=d["status"], model_status=d["model_status"], objective=d["objective"], bound=d["bound"],
               gap=d["gap"], solver_time_s=d["time_s"], nodes=d.get("nodes"),
               heuristic_objective=d.get("heuristic_objective"), used_heuristic_plan=d.get("used_heuristic_plan"),
               notes=d.get("notes"), total_usd_per_month=result.data["summary"]["total_usd_per_month"])
    if d.get("rounding"):
        r = d["rounding"]
        row.update(pooled_objective=r.get("pooled_objective"), rounding_added=r.get("added_usd_per_month"),
                   rounding_method=r.get("method"))
    t1 = time.perf_counter()
    try:
        rep = api.verify(res, result)
        row.update(verify_ok=rep.ok, verify_violations=len(rep.violations), verify_first=rep.violations[:3])
    except Exception as e:
        row.update(verify_ok=False, verify_violations=None, verify_first=[f"verify raised {type(e).__name__}: {e}"])
    row["verify_s"] = time.perf_counter() - t1
    return row


def heuristic_alone(m: PlacementModel, time_limit: float) -> dict:
    """The first-plan heuristics on their own, on the replica model: the LP-rounding heuristic of
    planner.solve (copy to HiGHS + LP, ceil, fix, re-solve) and, where the product has it, the
    greedy constructive start of planner.heuristics (checked row by row like the solver does)."""
    t0 = time.perf_counter()
    out: dict = {}
    try:
        hc = _solve_mod._HighsCopy(m.prob)
        out["copy_s"] = time.perf_counter() - t0
        plan, obj, lp = _solve_mod._heuristic(hc, time.monotonic() + time_limit, SolveOptions(time_limit_s=time_limit))
        out.update(status="plan" if plan is not None else ("no_plan" if lp is not None else "lp_not_solved"),
                   heur_s=time.perf_counter() - t0, objective=obj, lp_bound=lp)
    except Exception as e:
        return {"status": "error", "message": f"{type(e).__name__}: {e}", "heur_s": time.perf_counter() - t0}
    try:
        greedy_start = importlib.import_module("planner.heuristics").greedy_start
    except (ImportError, AttributeError):
        return out
    t1 = time.perf_counter()
    try:
        start = greedy_start(m)
        out["greedy_s"] = time.perf_counter() - t1
        if start is None:
            out["greedy_status"] = "no_plan"
        else:
            x = np.array([float(start.get(v.name, 0.0)) for v in hc.vars])
            ok = hc.feasible(x) if hasattr(hc, "feasible") else None
            out["greedy_status"] = "plan" if ok or ok is None else "breaks_a_row"
            out["greedy_objective"] = hc.objective(x)
    except Exception as e:
        out.update(greedy_status="error", greedy_message=f"{type(e).__name__}: {e}",
                   greedy_s=time.perf_counter() - t1)
    return out


# --------------------------------------------------------------------------- one size
def bench_size(W: int, S: int, args, cbc: bool) -> dict:
    out: dict = {"size": f"{W}x{S}", "workloads": W, "sites": S, "seed": args.seed}
    t0 = time.perf_counter()
    doc = make_scenario(W, S, args.seed)
    res = resolve(doc)
    out["resolve_s"] = time.perf_counter() - t0
    out["cloud_sites"] = sum(1 for s in res.sites.values() if not s.declared)
    out["declared_sites"] = sum(1 for s in res.sites.values() if s.declared)
    out["user_regions"] = len(res.user_regions)
    out["offers"] = sum(len(s.offers) for s in res.sites.values())
    t0 = time.perf_counter()
    cs = build_candidates(res)
    out["candidates_s"] = time.perf_counter() - t0
    out["triples"] = len(cs.triples)
    out["pruned"] = len(cs.exclusions)
    out["triples_per_workload"] = len(cs.triples) / W
    out["no_candidate_reasons"] = api.explain_no_candidates(cs)
    out["auto_form"] = api._choose_integrality(cs, "auto")
    out["auto_threshold_triples"] = api.AUTO_REPLICA_MAX_TRIPLES
    log(f"{W}x{S}: {len(cs.triples)} triples in {out['candidates_s']:.2f} s; auto picks {out['auto_form']}")

    out["build"] = {}
    for form in args.forms:
        t0 = time.perf_counter()
        m = build_model(cs, form)
        st = model_stats(m)
        st["build_s"] = time.perf_counter() - t0
        out["build"][form] = st
        log(f"{W}x{S} {form}: {st['variables']} vars ({st['integer_variables']} int), {st['constraints']} rows, "
            f"{st['nonzeros']} nnz, built in {st['build_s']:.2f} s")
        if form == "replica" and args.heuristic:
            log(f"{W}x{S}: first-plan heuristics alone (replica model)")
            out["heuristic"] = heuristic_alone(m, args.time_limit)
        del m
        gc.collect()

    log(f"{W}x{S}: N+1 rows, linear vs naive")
    out["nplus1"] = nplus1_baseline(cs)

    out["solve"] = {}
    for form in args.forms:
        log(f"{W}x{S}: solving {form} (HiGHS, limit {args.time_limit:g} s)")
        r = run_solve(res, SolveOptions(time_limit_s=args.time_limit, threads=args.threads), form)
        out["solve"][form] = r
        log(f"{W}x{S} {form}: {r['status']} obj={r.get('objective')} gap={r.get('gap')} "
            f"wall={r['wall_s']:.1f} s verify={r.get('verify_ok')}")
        gc.collect()
    if cbc:
        form = out["auto_form"] if out["auto_form"] in args.forms else args.forms[0]
        log(f"{W}x{S}: solving {form} with CBC (limit {args.time_limit:g} s)")
        out["cbc"] = run_solve(res, SolveOptions(solver="cbc", time_limit_s=args.time_limit, threads=args.threads),
                               form)
        log(f"{W}x{S} cbc {form}: {out['cbc']['status']} obj={out['cbc'].get('objective')} "
            f"wall={out['cbc']['wall_s']:.1f} s")
    out["findings"] = findings(out, args)
    return out


def best_plan(out: dict) -> tuple[str | None, float | None]:
    best = (None, None)
    for form, r in out["solve"].items():
        obj = r.get("objective")
        if r.get("status") in ("optimal", "feasible") and obj is not None and (best[1] is None or obj < best[1]):
            best = (form, obj)
    return best


def findings(out: dict, args) -> list[str]:
    """Things that look like product problems, stated plainly (no timing assertions: a flag, not a failure)."""
    f = []
    size = out["size"]
    if out["no_candidate_reasons"]:
        f.append(f"{size}: the generator made a workload with no candidate: {out['no_candidate_reasons'][0]}")
    for form, r in out["solve"].items():
        if r["status"] not in ("optimal", "feasible"):
            f.append(f"{size} {form}: no plan ({r['status']}: {r.get('message', '')})")
        elif r.get("verify_ok") is False:
            f.append(f"{size} {form}: verify failed: {'; '.join(r.get('verify_first') or [])}")
        budget = args.time_limit * 1.15 + 5.0
        if r["wall_s"] > budget:
            f.append(f"{size} {form}: wall clock {r['wall_s']:.0f} s overran the {args.time_limit:g} s time limit")
    bform, bobj = best_plan(out)
    auto = out["solve"].get(out["auto_form"])
    if auto is not None and bobj is not None:
        aobj = auto.get("objective") if auto["status"] in ("optimal", "feasible") else None
        if aobj is None:
            f.append(f"{size}: auto picks {out['auto_form']}, which found no plan; {bform} did ({bobj:,.0f})")
        elif aobj > bobj * 1.01:
            f.append(f"{size}: auto picks {out['auto_form']} ({aobj:,.0f}) but {bform} found a plan "
                     f"{(aobj / bobj - 1) * 100:.1f} % cheaper ({bobj:,.0f})")
    for form, r in out["solve"].items():
        if r.get("status") in ("optimal", "feasible") and bobj and r.get("objective", 0) > 10 * bobj:
            f.append(f"{size} {form}: plan costs {r['objective'] / bobj:,.0f}x the best plan of the run")
    c = out.get("cbc")
    if c is not None:
        if c["status"] not in ("optimal", "feasible"):
            f.append(f"{size} cbc {c['form']}: no plan ({c['status']})")
        elif c.get("verify_ok") is False:
            f.append(f"{size} cbc {c['form']}: CBC's plan fails verify: {'; '.join(c.get('verify_first') or [])}")
    h = out.get("heuristic")
    if h and h.get("status") != "plan":
        f.append(f"{size}: the LP-rounding heuristic alone gives no plan ({h.get('status')}) in "
                 f"{h.get('heur_s', 0):.0f} s")
    if h and h.get("greedy_status") not in (None, "plan"):
        f.append(f"{size}: the greedy start gives no usable plan ({h['greedy_status']})")
    return f


# --------------------------------------------------------------------------- tables
def tables(runs: list[dict], args) -> dict[str, tuple[list[str], list[list]]]:
    """name -> (header, rows); rows hold raw values (CSV) - the text rendering formats them."""
    t: dict[str, tuple[list[str], list[list]]] = {}
    t["sizes"] = (["size", "cloud_sites", "declared_sites", "user_regions", "offers", "triples", "triples_per_w",
                   "pruned", "resolve_s", "candidates_s", "auto_form"],
                  [[r["size"], r["cloud_sites"], r["declared_sites"], r["user_regions"], r["offers"], r["triples"],
                    round(r["triples_per_workload"], 1), r["pruned"], round(r["resolve_s"], 3),
                    round(r["candidates_s"], 3), r["auto_form"]] for r in runs])
    rows = []
    for r in runs:
        bform, bobj = best_plan(r)
        for form in args.forms:
            b, s = r["build"][form], r["solve"][form]
            rows.append([r["size"], form, "yes" if form == r["auto_form"] else "", b["variables"],
                         b["integer_variables"], b["constraints"], b["nonzeros"], round(b["build_s"], 3),
                         s["status"], _round(s.get("objective"), 2), _round(s.get("gap"), 5),
                         _round(s.get("rounding_added"), 2), round(s["wall_s"], 2), s.get("verify_ok"),
                         _round(s["objective"] / bobj, 4) if s.get("objective") and bobj else None])
    t["solve"] = (["size", "form", "auto", "vars", "int_vars", "rows", "nonzeros", "build_s", "status", "objective_usd_month",
                   "gap", "rounding_added_usd", "wall_s", "verify_ok", "obj_vs_best"], rows)
    t["nplus1"] = (["size", "nplus1_w", "sites_per_w", "linear_nnz", "naive_nnz", "nnz_ratio", "linear_build_s",
                    "naive_build_s", "build_ratio"],
                   [[r["size"], r["nplus1"]["nplus1_workloads"], r["nplus1"]["sites_per_nplus1_workload"],
                     r["nplus1"]["linear_nonzeros"], r["nplus1"]["naive_nonzeros"], _round(r["nplus1"]["nonzeros_ratio"], 2),
                     round(r["nplus1"]["linear_build_s"], 4), round(r["nplus1"]["naive_build_s"], 4),
                     _round(r["nplus1"]["build_time_ratio"], 2)] for r in runs])
    rows = []
    for r in runs:
        if "cbc" not in r:
            continue
        c = r["cbc"]
        h = r["solve"].get(c["form"], {})
        rows.append([r["size"], c["form"], h.get("status"), _round(h.get("objective"), 2), round(h.get("wall_s", 0), 2),
                     c["status"], _round(c.get("objective"), 2), round(c["wall_s"], 2), c.get("verify_ok"),
                     _round(c["wall_s"] / h["wall_s"], 2) if h.get("wall_s") else None,
                     _round(c["objective"] / h["objective"], 4) if c.get("objective") and h.get("objective") else None])
    t["solvers"] = (["size", "form", "highs_status", "highs_obj", "highs_wall_s", "cbc_status", "cbc_obj", "cbc_wall_s",
                     "cbc_verify_ok", "cbc_vs_highs_time", "cbc_vs_highs_obj"], rows)
    rows = []
    for r in runs:
        h = r.get("heuristic")
        if not h:
            continue
        bform, bobj = best_plan(r)
        rows.append([r["size"], h["status"], round(h["heur_s"], 2), _round(h.get("objective"), 2),
                     _round(h.get("lp_bound"), 2),
                     _round(h["objective"] / bobj, 4) if h.get("objective") and bobj else None,
                     h.get("greedy_status"), _round(h.get("greedy_s"), 2), _round(h.get("greedy_objective"), 2),
                     _round(h["greedy_objective"] / bobj, 4) if h.get("greedy_objective") and bobj else None,
                     _round(bobj, 2), bform])
    t["heuristic"] = (["size", "lpround_status", "lpround_s", "lpround_obj", "lp_bound", "lpround_vs_final",
                       "greedy_status", "greedy_s", "greedy_obj", "greedy_vs_final", "best_final_obj", "best_form"],
                      rows)
    return t


def _round(x, nd):
    return None if x is None else round(x, nd)


def render(t: dict, machine: dict, args) -> str:
    buf = io.StringIO()
    buf.write(f"planner scale ladder - {machine['date_utc']}, {machine['nproc']} CPUs ({machine['cpu_model']}), "
              f"{machine['mem_total_gib']} GiB, Python {machine['python']}, HiGHS {machine['highs']} (highspy "
              f"{machine['highspy']}), PuLP {machine['pulp']}, commit {(machine['git_commit'] or '?')[:10]}"
              f"{' + local changes in planner/' if machine['planner_dirty_files'] else ''}\n")
    buf.write(f"time limit {args.time_limit:g} s per solve, seed {args.seed}; times are wall-clock on a shared "
              f"machine (noisy; load average at start {machine['loadavg_at_start']}).\n")
    fmt = {
        "objective_usd_month": "{:,.0f}", "highs_obj": "{:,.0f}", "cbc_obj": "{:,.0f}", "lpround_obj": "{:,.0f}",
        "greedy_obj": "{:,.0f}", "lpround_vs_final": "{:.3f}", "greedy_vs_final": "{:.3f}",
        "lp_bound": "{:,.0f}", "best_final_obj": "{:,.0f}", "rounding_added_usd": "{:,.0f}", "gap": "{:.2%}",
        "obj_vs_best": "{:.3f}", "cbc_vs_highs_obj": "{:.3f}",
        "cbc_vs_highs_time": "{:.2f}x", "nnz_ratio": "{:.1f}x", "build_ratio": "{:.1f}x",
        "sites_per_w": "{:.1f}", "triples_per_w": "{:.1f}",
    }
    titles = {"sizes": "Sizes and candidates", "solve": "Model size and solve (HiGHS) per integrality form",
              "nplus1": "Baseline (a): N+1 rows, linear T[w,t] form vs naive quadratic form",
              "solvers": "Baseline (b): CBC vs HiGHS (same form, same time limit)",
              "heuristic": "Baseline (c): first-plan heuristics alone (replica model) vs the best final plan"}
    for name, (head, rows) in t.items():
        buf.write(f"\n{titles[name]}\n")
        cells = [head] + [[_cell(v, fmt.get(h)) for h, v in zip(head, row, strict=True)] for row in rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
        for i, c in enumerate(cells):
            buf.write("  ".join(x.rjust(w) if j else x.ljust(w) for j, (x, w) in enumerate(zip(c, widths, strict=True)))
                      .rstrip() + "\n")
            if i == 0:
                buf.write("  ".join("-" * w for w in widths) + "\n")
    return buf.getvalue()


def _cell(v, fmt: str | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if fmt and isinstance(v, int | float):
        return fmt.format(v)
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


# --------------------------------------------------------------------------- main
def parse_sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        w, _, s = part.strip().lower().partition("x")
        out.append((int(w), int(s)))
    return out


def write_outputs(out: Path, tag: str, doc: dict, args) -> str:
    """Tables from doc["runs"] -> <out>/<tag>.txt, <tag>-<table>.csv and <tag>.json; returns the text."""
    t = tables(doc["runs"], args)
    flags = [f for r in doc["runs"] for f in r["findings"]]
    text = render(t, doc["machine"], args)
    text += "\nFindings (flags, not failures)\n" + ("".join(f"- {f}\n" for f in flags) if flags else "- none\n")
    text += f"\nwhole run: {doc['whole_run_s']:.0f} s"
    text += f", peak RSS {doc['peak_rss_gib']} GiB\n" if doc.get("peak_rss_gib") is not None else "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{tag}.txt").write_text(text)
    for name, (head, rows) in t.items():
        with open(out / f"{tag}-{name}.csv", "w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(head)
            wr.writerows(rows)
    doc = {**doc, "tables": {k: {"header": h, "rows": r} for k, (h, r) in t.items()}, "findings": flags}
    (out / f"{tag}.json").write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="planner scale ladder with baselines (see bench/README.md)")
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help=f"WxS list (default {DEFAULT_SIZES})")
    ap.add_argument("--big", action="store_true", help=f"also run {BIG_SIZE} (about 6 more minutes, a few GB of RAM)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="wall-clock limit of each solve (s, default 60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="HiGHS/CBC threads (default: solver's choice)")
    ap.add_argument("--forms", default="replica,pooled", help="integrality forms to solve (default replica,pooled)")
    ap.add_argument("--cbc-sizes", type=int, default=2, help="run CBC on this many smallest sizes (default 2)")
    ap.add_argument("--no-heuristic", dest="heuristic", action="store_false", help="skip baseline (c)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="output directory")
    ap.add_argument("--tag", default=None, help="output file stem (default: ladder, or ladder-big with --big)")
    ap.add_argument("--render", type=Path, default=None, metavar="JSON",
                    help="only re-render the tables and CSVs of a saved <tag>.json (no solving)")
    args = ap.parse_args(argv)
    if args.render is not None:
        doc = json.loads(args.render.read_text())
        o = doc["options"]
        args.forms, args.time_limit, args.seed = tuple(o["forms"]), o["time_limit_s"], o["seed"]
        print(write_outputs(args.render.parent, args.render.name.removesuffix(".json"), doc, args), end="")
        return 0
    args.forms = tuple(f.strip() for f in args.forms.split(",") if f.strip())
    if "replica" not in args.forms:
        args.heuristic = False
    sizes = parse_sizes(args.sizes) + (parse_sizes(BIG_SIZE) if args.big else [])
    tag = args.tag or ("ladder-big" if args.big else "ladder")
    machine = machine_facts()
    log(f"machine: {machine['nproc']} CPUs, Python {machine['python']}, HiGHS {machine['highs']}, "
        f"PuLP {machine['pulp']}; sizes {sizes}; time limit {args.time_limit:g} s")
    cbc_sizes = set(sorted(sizes, key=lambda ws: ws[0] * ws[1])[: max(0, args.cbc_sizes)])
    started = time.perf_counter()
    runs = [bench_size(W, S, args, cbc=(W, S) in cbc_sizes) for W, S in sizes]
    options = {"sizes": [f"{w}x{s}" for w, s in sizes], "time_limit_s": args.time_limit, "seed": args.seed,
               "threads": args.threads, "forms": list(args.forms), "cbc_sizes": sorted(f"{w}x{s}" for w, s in cbc_sizes),
               "heuristic": args.heuristic}
    doc = {"machine": machine, "options": options, "whole_run_s": round(time.perf_counter() - started, 1),
           "peak_rss_gib": _peak_rss_gib(), "runs": runs}
    print(write_outputs(args.out, tag, doc, args), end="")
    log(f"wrote {args.out}/{tag}.txt, {tag}.json and {tag}-*.csv")
    return 0


def _peak_rss_gib() -> float | None:
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024, 2)  # KiB on Linux
    except (ImportError, OSError):
        return None


def _json_default(o):
    if isinstance(o, float | int):
        return o
    return str(o)


if __name__ == "__main__":
    raise SystemExit(main())
