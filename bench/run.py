"""Benchmark of the `planner` command line, measured from outside as a user meets it.

Every solve runs ``python -m planner solve FILE ... --out DIR`` as a subprocess and reads the
``result.json`` it writes; the only library call is ``planner.api.load_scenario`` (to check a
generated scenario and count what it holds). Nothing here imports the model, the solver or PuLP.

Subcommands (each writes ``bench/results/<tag>.json`` with every measured value and the machine
facts, and ``bench/results/<tag>.md`` with the tables):

- ``ladder``: synthetic scenarios of growing size (``bench/generate.py``), each solved under
  ``--time-limit``: wall time (process start to exit) and the CLI's own clock
  (``solve.time_s``), their overrun of the limit against the allowance max(2 s, 5 % of the
  limit), status, objective, bound, gap, model size and stage times; baseline (a) the same
  scenario with every ``n_plus_1`` turned to ``none`` (what exact N+1 costs), baseline (b) CBC on
  the small rungs;
- ``ctrlc``: SIGINT sent when stderr first shows a stage's progress marker; latency (exit minus
  signal), exit code, whether ``result.json`` exists and its status;
- ``examples``: the shipped examples (base variant) solved to optimality (``--gap 0``) with and
  without N+1: cost, model size, time;
- ``all``: the three above with their defaults (what ``make bench`` runs);
- ``render``: re-render ``<tag>.md`` from a saved ``<tag>.json`` (no solving).

    .venv/bin/python bench/run.py ladder --sizes 5x5 --time-limit 10 --tag try
    .venv/bin/python bench/run.py ctrlc --cases eu_saas:stress --repeat 1 --tag try-ctrlc
    .venv/bin/python bench/run.py examples
    .venv/bin/python bench/run.py render bench/results/ladder.json

Times are wall clock on whatever machine runs this: noisy, and nothing here asserts on them.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from planner import api

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import make_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
EXAMPLES = ROOT / "workloads"
DEFAULT_SIZES = "5x5,20x10,50x20,200x50"
DEFAULT_CASES = "eu_saas:stress,eu_saas:stress/pooled,50x20"
DEFAULT_STAGES = "build,starts,mip,rounding"
LATENCY_LIMIT_S = 2.0  # issue 8: Ctrl-C stops within 2 s at any stage

#: Ctrl-C stages: the stderr marker after which SIGINT is sent (pattern, as shown), what runs then, and
#: the integrality form the stage needs (None: any). The product prints "rounding to whole
#: replicas: ..." only once rounding has finished, so the rounding stage is entered on the line
#: that ends the pooled solve ("solve (pooled): ..."), which is printed just before rounding starts.
STAGES: dict[str, tuple[re.Pattern, str, str, str | None]] = {
    "build": (re.compile(r"\] candidates:"), "candidates:", "model build (after the candidates line)", None),
    "starts": (re.compile(r"\] greedy plan"), "greedy plan",
               "start heuristics / LP relaxation (after the greedy plan)", None),
    "mip": (re.compile(r"\] HiGHS:"), "HiGHS:", "the MIP (first live HiGHS line)", None),
    "rounding": (re.compile(r"\] solve \(pooled\):"), "solve (pooled):",
                 "rounding to whole replicas (after the pooled solve)", "pooled"),
    "finish": (re.compile(r"\] (solve \(replica\)|rounding to whole replicas|rounding \(full)"),
               "solve (replica) / rounding to whole replicas / rounding (full",
               "result tables and verification (after the last solve)", None),
}
FIRST_PLAN = re.compile(r"\] (greedy plan: |constructive greedy(-spread)?( \([^)]*\))? plan: |LP-support plan |HiGHS: .*best plan \d"
                        r"|fix-and-optimise: .*best plan \d)")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine facts
def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _read_first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def startup_s(repeat: int = 3) -> float:
    """Median time of `python -m planner --version`: interpreter start and the CLI's import, which
    the wall time of every run includes and the CLI clock does not."""
    times = []
    for _ in range(repeat):
        t = time.monotonic()
        subprocess.run([sys.executable, "-m", "planner", "--version"], cwd=ROOT, capture_output=True, check=False)
        times.append(time.monotonic() - t)
    return statistics.median(times)


def machine_facts() -> dict:
    mem = _read_first("/proc/meminfo", "MemTotal")
    dirty = _git("status", "--porcelain", "--", "planner")
    return {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _read_first("/proc/cpuinfo", "model name"),
        "mem_total_gib": round(int(mem.split()[0]) / 1024 / 1024, 1) if mem else None,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "highspy": _version("highspy"),
        "pulp": _version("PuLP"),
        "planner": _version("planner"),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "planner_uncommitted_files": len(dirty.splitlines()) if dirty else 0,
        "cli_startup_s": round(startup_s(), 3),
    }


# --------------------------------------------------------------------------- one CLI run
def run_cli(scenario: Path, out_dir: Path, *, variant: str | None = None, time_limit: float, gap: float,
            integrality: str = "auto", solver: str = "highs", threads: int | None = None,
            on_line: Callable[[subprocess.Popen, float, str], None] | None = None,
            new_session: bool = False) -> dict:
    """Run `python -m planner solve` once; return exit code, wall time, timed stderr lines and the
    result.json it wrote (None if none). A watchdog kills the process at 3x the limit + 60 s."""
    cmd = [sys.executable, "-m", "planner", "solve", str(scenario), "--time-limit", f"{time_limit:g}",
           "--gap", f"{gap:g}", "--integrality", integrality, "--solver", solver, "--out", str(out_dir)]
    if variant:
        cmd[5:5] = ["--variant", variant]
    if threads:
        cmd += ["--threads", str(threads)]
    lines: list[tuple[float, str]] = []
    t0 = time.monotonic()
    # the child takes Ctrl-C as a user would, even when the bench itself runs as a background job
    # (a non-interactive shell starts `cmd &` with SIGINT ignored, and children inherit that)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=new_session,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def read() -> None:
        for raw in proc.stderr:
            t = time.monotonic() - t0
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append((t, line))
            if on_line is not None:
                on_line(proc, t, line)

    killed = {"watchdog": False}

    def watchdog() -> None:
        killed["watchdog"] = True
        proc.kill()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timer = threading.Timer(3 * time_limit + 60, watchdog)
    timer.start()
    try:
        rc = proc.wait()
        t_exit = time.monotonic() - t0
    except KeyboardInterrupt:
        proc.kill()
        proc.wait()
        raise
    finally:
        timer.cancel()
    reader.join(10)
    result = None
    rpath = out_dir / "result.json"
    if rpath.exists():
        try:
            result = json.loads(rpath.read_text())
        except (OSError, ValueError):
            result = None
    files = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
    return {"cmd": [Path(cmd[0]).name, *cmd[1:]], "exit_code": rc, "wall_s": t_exit, "lines": lines,
            "result": result, "files": files, "watchdog_killed": killed["watchdog"]}


def timeline(lines: list[tuple[float, str]]) -> list[list]:
    """The progress lines with their time since process start, live HiGHS lines thinned to the
    first one of each solver run (the JSON stays small; the gaps between lines show silent stages)."""
    out = []
    prev_live = False
    for t, line in lines:
        live = "] HiGHS:" in line
        if not (live and prev_live):
            out.append([round(t, 3), line])
        prev_live = live
    return out


def longest_silence(lines: list[tuple[float, str]], end: float) -> list | None:
    """[seconds, the line before the silence]: the longest stretch with no stderr line between the
    first progress line and exit (the live HiGHS line is promised at least every 2 s)."""
    prog = [(t, line) for t, line in lines if line.startswith("[planner] ")]
    if not prog:
        return None
    best = [0.0, None]
    for (t, line), (t2, _l2) in zip(prog, [*prog[1:], (end, "")], strict=True):
        if t2 - t > best[0]:
            best = [round(t2 - t, 3), line]
    return best


def _first_time(lines: list[tuple[float, str]], pattern: re.Pattern) -> float | None:
    return next((round(t, 3) for t, line in lines if pattern.search(line)), None)


def summarize(run: dict, time_limit: float) -> dict:
    """The facts of one run: status, objective, model size, stage times, wall and clock overrun."""
    res = run["result"] or {}
    sv = res.get("solve") or {}
    clock = sv.get("time_s")
    allowance = max(2.0, 0.05 * time_limit)
    wall = run["wall_s"]
    ver = res.get("verification") or {}
    return {
        "exit_code": run["exit_code"],
        "result_written": run["result"] is not None,
        "status": sv.get("status"),
        "integrality": sv.get("integrality"),
        "solver_version": sv.get("solver_version"),
        "objective": sv.get("objective"),
        "bound": sv.get("bound"),
        "gap": sv.get("gap"),
        "total_usd_per_month": (res.get("summary") or {}).get("total_usd_per_month"),
        "verification_ok": ver.get("ok"),
        "model_size": sv.get("model_size") or {},
        "times_s": {k: round(v, 3) for k, v in sorted((sv.get("times_s") or {}).items())},
        "time_limit_s": time_limit,
        "allowance_s": allowance,
        "wall_s": round(wall, 3),
        "clock_s": round(clock, 3) if clock is not None else None,
        "overrun_wall_s": round(wall - time_limit, 3),
        "overrun_clock_s": round(clock - time_limit, 3) if clock is not None else None,
        "clock_within_allowance": (clock - time_limit <= allowance) if clock is not None else None,
        "wall_within_allowance": wall - time_limit <= allowance,
        "outside_clock_s": round(wall - clock, 3) if clock is not None else None,
        "model_line_s": _first_time(run["lines"], re.compile(r"\] model \(")),
        "first_plan_s": _first_time(run["lines"], FIRST_PLAN),
        "reasons": (sv.get("reasons") or [])[:3],
        "notes": (sv.get("notes") or [])[:6],
        "watchdog_killed": run["watchdog_killed"],
        "longest_silence_s": longest_silence(run["lines"], wall),
        "stderr_tail": [line for _t, line in run["lines"][-6:]],
        "timeline": timeline(run["lines"]),
        "cmd": " ".join(run["cmd"]),
    }


# --------------------------------------------------------------------------- scenarios
def parse_size(s: str) -> tuple[int, int]:
    w, _, n = s.strip().lower().partition("x")
    return int(w), int(n)


def write_doc(doc: dict, path: Path) -> Path:
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")  # JSON is YAML
    return path


def without_nplus1(doc: dict) -> tuple[dict, int]:
    """The scenario with every `redundancy: n_plus_1` turned to `none` (min_sites kept), and how
    many workloads changed. Variants are left as they are (the bench solves the base)."""
    out = copy.deepcopy(doc)
    n = 0
    for w in out.get("workloads") or []:
        red = w.get("redundancy") or {}
        if red.get("mode") == "n_plus_1":
            w["redundancy"] = {**{k: v for k, v in red.items() if k != "failover_network_rtt_ms"}, "mode": "none"}
            n += 1
    return out, n


def read_doc(path: Path) -> dict:
    import yaml  # the planner reads scenarios with yaml.safe_load too

    return yaml.safe_load(path.read_bytes())


def scenario_facts(path: Path, variant: str | None = None) -> dict:
    """What the scenario holds, through the public loader (also checks that it loads)."""
    res = api.load_scenario(path, variant)
    s = res.scenario
    sites = list(res.sites.values())
    return {
        "workloads": len(s.workloads),
        "nplus1_workloads": sum(1 for w in s.workloads if w.redundancy.mode == "n_plus_1"),
        "batch_workloads": sum(1 for w in s.workloads if w.is_batch),
        "cloud_sites": sum(1 for x in sites if not x.declared),
        "declared_sites": sum(1 for x in sites if x.declared),
        "offers": sum(len(x.offers) for x in sites),
        "user_regions": len(res.user_regions),
        "warnings": len(res.warnings),
    }


# --------------------------------------------------------------------------- ladder
def cmd_ladder(args, work: Path, rows: list) -> None:
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    cbc_w, cbc_s = parse_size(args.cbc_upto) if args.cbc_upto != "none" else (0, 0)
    for w, s in sizes:
        size = f"{w}x{s}"
        doc = make_scenario(w, s, args.seed)
        base = write_doc(doc, work / f"{size}.yaml")
        plain_doc, changed = without_nplus1(doc)
        plain = write_doc(plain_doc, work / f"{size}-no-nplus1.yaml")
        row = {"size": size, "workloads_requested": w, "sites_requested": s, "seed": args.seed,
               "scenario": scenario_facts(base), "nplus1_turned_off": changed, "runs": {}}
        plan = [("highs", base, "highs"), ("highs_no_nplus1", plain, "highs")]
        if w <= cbc_w and s <= cbc_s:
            plan.append(("cbc", base, "cbc"))
        for name, path, solver in plan:
            log(f"ladder {size} {name}: {args.time_limit:g} s limit")
            run = run_cli(path, work / f"out-{size}-{name}", time_limit=args.time_limit, gap=args.gap,
                          integrality=args.integrality, solver=solver, threads=args.threads)
            row["runs"][name] = summarize(run, args.time_limit)
            r = row["runs"][name]
            log(f"  -> exit {r['exit_code']}, {r['status']}, objective {_num(r['objective'])}, "
                f"wall {r['wall_s']:.1f} s, clock {_num(r['clock_s'], 2)} s")
        rows.append(row)


# --------------------------------------------------------------------------- ctrlc
def parse_case(spec: str) -> dict:
    """`eu_saas:stress` (a shipped example and variant), `50x20` (a generated scenario), either
    with `/replica` or `/pooled` to force the integrality form (default auto)."""
    spec = spec.strip()
    name, _, form = spec.partition("/")
    form = form or "auto"
    if form not in ("auto", "replica", "pooled"):
        raise SystemExit(f"case {spec!r}: the form after / must be replica or pooled")
    if re.fullmatch(r"\d+x\d+", name):
        return {"case": spec, "size": name, "example": None, "variant": None, "integrality": form}
    example, _, variant = name.partition(":")
    if not (EXAMPLES / f"{example}.yaml").exists():
        raise SystemExit(f"case {spec!r}: no workloads/{example}.yaml")
    return {"case": spec, "size": None, "example": example, "variant": variant or None, "integrality": form}


def ctrlc_once(path: Path, case: dict, stage: str, out_dir: Path, args) -> dict:
    marker, _shown, _what, needs = STAGES[stage]
    state: dict = {"signal_t": None, "marker_line": None, "not_applicable": None}

    def on_line(proc: subprocess.Popen, t: float, line: str) -> None:
        if state["signal_t"] is not None or state["not_applicable"]:
            return
        if needs and re.search(r"\] model \((replica|pooled)\)", line) and f"model ({needs})" not in line:
            state["not_applicable"] = line
            proc.kill()  # this run never reaches the stage: stop it now
            return
        if marker.search(line):
            proc.send_signal(signal.SIGINT)
            state["signal_t"] = t
            state["marker_line"] = line

    run = run_cli(path, out_dir, variant=case["variant"], time_limit=args.time_limit, gap=args.gap,
                  integrality=case["integrality"], on_line=on_line, new_session=True)
    res = run["result"] or {}
    sv = res.get("solve") or {}
    t_sig = state["signal_t"]
    after = [line for t, line in run["lines"] if t_sig is not None and t > t_sig and "] HiGHS:" not in line]
    form = next((m.group(1) for _t, line in run["lines"] if (m := re.search(r"\] model \((\w+)\)", line))), None)
    row = {
        "case": case["case"], "stage": stage, "form": form,
        "marker_seen": t_sig is not None,
        "not_applicable": state["not_applicable"] is not None,
        "signal_at_s": round(t_sig, 3) if t_sig is not None else None,
        "marker_line": state["marker_line"],
        "wall_s": round(run["wall_s"], 3),
        "latency_s": round(run["wall_s"] - t_sig, 3) if t_sig is not None else None,
        "exit_code": run["exit_code"],
        "result_written": run["result"] is not None,
        "files_written": len(run["files"]),
        "status": sv.get("status"),
        "verification_ok": (res.get("verification") or {}).get("ok"),
        "objective": sv.get("objective"),
        "lines_after_signal": after[:6],
        "timeline": timeline(run["lines"]),
        "watchdog_killed": run["watchdog_killed"],
        "cmd": " ".join(run["cmd"]),
    }
    row["within_2s"] = row["latency_s"] is not None and row["latency_s"] <= LATENCY_LIMIT_S
    row["outcome_ok"] = _ctrlc_outcome_ok(row)
    return row


def _ctrlc_outcome_ok(row: dict) -> bool | None:
    """Issue 8: exit 130 with the best verified plan written as `interrupted`, or exit 130 with
    nothing written."""
    if not row["marker_seen"]:
        return None
    if row["exit_code"] != 130:
        return False
    if row["result_written"]:
        return row["status"] == "interrupted" and row["verification_ok"] is True
    return row["files_written"] == 0


def cmd_ctrlc(args, work: Path, rows: list) -> None:
    cases = [parse_case(c) for c in args.cases.split(",") if c.strip()]
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    for s in stages:
        if s not in STAGES:
            raise SystemExit(f"unknown stage {s!r}; choose from {', '.join(STAGES)}")
    for case in cases:
        if case["size"]:
            w, s = parse_size(case["size"])
            path = write_doc(make_scenario(w, s, args.seed), work / f"{case['size']}.yaml")
        else:
            path = EXAMPLES / f"{case['example']}.yaml"
        for stage in stages:
            for rep in range(1, args.repeat + 1):
                tag = re.sub(r"[^A-Za-z0-9]+", "-", f"{case['case']}-{stage}-{rep}")
                log(f"ctrlc {case['case']} stage {stage} #{rep}")
                row = ctrlc_once(path, case, stage, work / f"out-{tag}", args)
                row["rep"] = rep
                rows.append(row)
                log(f"  -> signal at {_num(row['signal_at_s'], 2)} s, latency {_num(row['latency_s'], 3)} s, "
                    f"exit {row['exit_code']}, result {row['result_written']} ({row['status']})"
                    + (" [stage not reached by this form]" if row["not_applicable"] else "")
                    + ("" if row["marker_seen"] or row["not_applicable"] else " [marker never shown]"))
                if not row["marker_seen"]:
                    break  # the stage does not show on this case: repeating will not change that


# --------------------------------------------------------------------------- examples
def cmd_examples(args, work: Path, rows: list) -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        doc = read_doc(path)
        plain_doc, changed = without_nplus1(doc)
        row = {"example": path.stem, "scenario": scenario_facts(path), "nplus1_turned_off": changed, "runs": {}}
        todo = [("with_nplus1", path)]
        if changed:
            todo.append(("no_nplus1", write_doc(plain_doc, work / f"{path.stem}-no-nplus1.yaml")))
        for name, p in todo:
            log(f"examples {path.stem} {name}: gap {args.gap:g}, {args.time_limit:g} s limit")
            run = run_cli(p, work / f"out-{path.stem}-{name}", time_limit=args.time_limit, gap=args.gap,
                          integrality=args.integrality)
            row["runs"][name] = summarize(run, args.time_limit)
            r = row["runs"][name]
            log(f"  -> exit {r['exit_code']}, {r['status']}, cost {_num(r['total_usd_per_month'])}, "
                f"clock {_num(r['clock_s'], 2)} s")
        if not changed:
            row["runs"]["no_nplus1"] = None  # no N+1 workload: the same scenario
        rows.append(row)


# --------------------------------------------------------------------------- tables
def _num(v, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) and not digits:
        return f"{v:,}"
    return f"{v:,.{digits}f}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f} %"


def _signed(v, digits: int = 1) -> str:
    return "-" if v is None else f"{v:+,.{digits}f}"


def _ratio(a, b) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}x"


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(headers) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _stage_times(r: dict) -> str:
    ts = r.get("times_s") or {}
    parts = [f"{k} {v:.2f}" for k, v in ts.items()]
    if r.get("clock_s") is not None and ts:
        parts.append(f"rest {r['clock_s'] - sum(ts.values()):.2f}")
    return ", ".join(parts) or "-"


def _silence(r: dict) -> str:
    s = r.get("longest_silence_s")
    if not s or s[1] is None:
        return "-"
    return f"{s[0]:.1f} after \"{s[1].removeprefix('[planner] ')[:40]}\""


def _deadline_rows(label: str, r: dict) -> list:
    ok = r["clock_within_allowance"]
    return [label, r["integrality"] or "-", r["status"] or "-", r["exit_code"], _num(r["time_limit_s"], 0),
            _num(r["wall_s"], 2), _num(r["clock_s"], 2), _signed(r["overrun_wall_s"], 2),
            _signed(r["overrun_clock_s"], 2), _num(r["allowance_s"], 1),
            "-" if ok is None else ("yes" if ok else "**NO**"), _num(r["outside_clock_s"], 2)]


DEADLINE_HEADERS = ["run", "form", "status", "exit", "limit_s", "wall_s", "clock_s", "overrun_wall_s",
                    "overrun_clock_s", "allowance_s", "clock_ok", "outside_clock_s"]


def _size_cells(r: dict) -> list:
    ms = r["model_size"]
    return [_num(ms.get("variables")), _num(ms.get("integer_variables")), _num(ms.get("constraints")),
            _num(ms.get("failover_variables")), _num(ms.get("failover_constraints"))]


def render_ladder(data: dict) -> str:
    a = data["args"]
    rows = data["rows"]
    out = [f"# Ladder `{data['tag']}`", "", _facts_line(data), "",
           f"Limit {a['time_limit']:g} s per solve, `--gap {a['gap']:g}`, `--integrality {a['integrality']}`, "
           f"seed {a['seed']}. Allowance = max(2 s, 5 % of the limit). `clock_s` is the CLI's clock "
           "(`solve.time_s`: reading the scenario to writing the outputs); `wall_s` is process start to exit "
           "(adds interpreter start and imports, see `cli_startup_s`).", ""]
    out += ["## Scenarios", "", table(
        ["size", "workloads", "N+1", "batch", "cloud_sites", "declared_sites", "user_regions", "offers"],
        [[r["size"], r["scenario"]["workloads"], r["scenario"]["nplus1_workloads"], r["scenario"]["batch_workloads"],
          r["scenario"]["cloud_sites"], r["scenario"]["declared_sites"], r["scenario"]["user_regions"],
          r["scenario"]["offers"]] for r in rows]), ""]
    drows = []
    for r in rows:
        for name, run in r["runs"].items():
            drows.append([f"{r['size']} {name}", *_deadline_rows(name, run)[1:]])
    out += ["## Deadline (every run)", "", "`outside_clock_s` = wall - clock: interpreter start, imports, exit.", "",
            table(DEADLINE_HEADERS, drows, "lll" + "r" * 9), ""]
    srows = []
    for r in rows:
        h = r["runs"]["highs"]
        srows.append([r["size"], h["integrality"] or "-", h["status"] or "-", _num(h["objective"], 0),
                      _num(h["bound"], 0), _pct(h["gap"]), *_size_cells(h), _num(h["model_line_s"], 2),
                      _num(h["first_plan_s"], 2), _silence(h), _stage_times(h)])
    out += ["## Solve (HiGHS, scenario as generated)", "", table(
        ["size", "form", "status", "objective_usd_month", "bound", "gap", "vars", "int_vars", "constraints",
         "failover_vars", "failover_cons", "model_at_s", "first_plan_at_s", "longest_silence_s", "stage times (s)"],
        srows, "lll" + "r" * 10 + "ll"), ""]
    arows = []
    for r in rows:
        h, n = r["runs"]["highs"], r["runs"]["highs_no_nplus1"]
        hv, nv = h["model_size"].get("variables"), n["model_size"].get("variables")
        hc, nc = h["model_size"].get("constraints"), n["model_size"].get("constraints")
        diff = (h["objective"] - n["objective"]) if h["objective"] is not None and n["objective"] is not None else None
        arows.append([r["size"], r["nplus1_turned_off"], _num(hv), _num(nv), _ratio(hv, nv), _num(hc), _num(nc),
                      _ratio(hc, nc), _num(h["clock_s"], 2), _num(n["clock_s"], 2), f"{h['status']}/{n['status']}",
                      _num(h["objective"], 0), _num(n["objective"], 0), _num(diff, 0),
                      _pct(diff / n["objective"]) if diff is not None and n["objective"] else "-"])
    out += ["## Baseline (a): what exact N+1 costs (same scenario, every `n_plus_1` turned to `none`)", "",
            "The objective difference is a measurement only when both runs are `optimal`; under a time limit it "
            "mixes the N+1 cost with how far each solve got.", "", table(
                ["size", "N+1_w", "vars", "vars_no_N+1", "ratio", "cons", "cons_no_N+1", "ratio", "clock_s",
                 "clock_no_N+1_s", "status (N+1/none)", "objective", "objective_no_N+1", "N+1_adds_usd",
                 "N+1_adds"], arows), ""]
    crows = []
    for r in rows:
        c = r["runs"].get("cbc")
        if c is None:
            continue
        h = r["runs"]["highs"]
        crows.append([r["size"], c["integrality"] or "-", h["status"] or "-", c["status"] or "-",
                      _num(h["objective"], 0), _num(c["objective"], 0), _ratio(c["objective"], h["objective"]),
                      _num(h["clock_s"], 2), _num(c["clock_s"], 2), c["exit_code"], _num(c["verification_ok"])])
    if crows:
        out += ["## Baseline (b): CBC vs HiGHS (same scenario, form and limit)", "", table(
            ["size", "form", "highs_status", "cbc_status", "highs_obj", "cbc_obj", "cbc/highs", "highs_clock_s",
             "cbc_clock_s", "cbc_exit", "cbc_verified"], crows, "lllll" + "r" * 6), ""]
    out += _problems(rows, ladder=True)
    return "\n".join(out) + "\n"


def _problems(rows: list[dict], ladder: bool) -> list[str]:
    found = []
    for r in rows:
        label = r.get("size") or r.get("example")
        for name, run in r["runs"].items():
            if run is None:
                continue
            if run["clock_within_allowance"] is False:
                found.append(f"- {label} {name}: clock overrun {run['overrun_clock_s']:+.2f} s > allowance "
                             f"{run['allowance_s']:.1f} s")
            if run["exit_code"] not in (0, 1, 130) or run["watchdog_killed"]:
                found.append(f"- {label} {name}: exit {run['exit_code']}"
                             + (" (killed by the bench's watchdog)" if run["watchdog_killed"] else "")
                             + ": " + " / ".join(run["stderr_tail"][-2:]))
            if run["status"] in ("optimal", "feasible") and run["verification_ok"] is not True:
                found.append(f"- {label} {name}: status {run['status']} but verification {run['verification_ok']}")
            sil = run.get("longest_silence_s")
            if sil and sil[0] > LATENCY_LIMIT_S and name != "cbc":  # the live line is promised for HiGHS
                found.append(f"- {label} {name}: no progress line for {sil[0]:.1f} s after `{sil[1]}` (issue 8: a live "
                             "line at least every 2 s while HiGHS runs; check whether HiGHS ran then)")
            if run["status"] in ("infeasible", "no_plan"):
                found.append(f"- {label} {name}: {run['status']}: {'; '.join(run['reasons'][:2])}")
    return ["## Flags", "", *(found or ["none"]), ""]


def render_ctrlc(data: dict) -> str:
    a = data["args"]
    rows = data["rows"]
    out = [f"# Ctrl-C `{data['tag']}`", "", _facts_line(data), "",
           f"`--time-limit {a['time_limit']:g}`, `--gap {a['gap']:g}`, progress on; SIGINT sent to the CLI "
           f"process when stderr first shows the stage's marker; latency = exit - signal (limit "
           f"{LATENCY_LIMIT_S:g} s). Expected: exit 130 with `result.json` status `interrupted` (verified), "
           "or exit 130 with nothing written.", "",
           table(["stage", "marker", "what runs when the signal arrives"],
                 [[s, f"`{STAGES[s][1]}`", STAGES[s][2]] for s in a["stages"].split(",")
                  if s in STAGES], "lll"), ""]
    trows = []
    for r in rows:
        if r["not_applicable"]:
            trows.append([r["case"], r["stage"], r["rep"], r["form"] or "-", "n/a (form)", "-", "-", "-", "-", "-",
                          "-"])
            continue
        trows.append([r["case"], r["stage"], r["rep"], r["form"] or "(not built)",
                      _num(r["signal_at_s"], 2) if r["marker_seen"] else "marker not shown",
                      _num(r["latency_s"], 3), "-" if not r["marker_seen"] else ("yes" if r["within_2s"] else "**NO**"),
                      r["exit_code"], f"{_num(r['result_written'])} ({r['files_written']} files)",
                      r["status"] or "-",
                      "-" if r["outcome_ok"] is None else ("yes" if r["outcome_ok"] else "**NO**")])
    out += ["## Runs", "", table(["case", "stage", "rep", "form", "signal_at_s", "latency_s", "<=2s", "exit",
                                  "result.json", "status", "as promised"], trows, "llrl" + "r" * 7), ""]
    agg: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r["latency_s"] is not None:
            agg.setdefault((r["case"], r["stage"]), []).append(r["latency_s"])
    out += ["## Latency per case and stage", "", table(
        ["case", "stage", "runs", "median_s", "max_s"],
        [[c, s, len(v), f"{statistics.median(v):.3f}", f"{max(v):.3f}"] for (c, s), v in agg.items()], "llrrr"), ""]
    bad = [r for r in rows if r["marker_seen"] and (not r["within_2s"] or not r["outcome_ok"])]
    out += ["## Flags", ""]
    out += [f"- {r['case']} {r['stage']} #{r['rep']}: latency {_num(r['latency_s'], 3)} s, exit {r['exit_code']}, "
            f"result {_num(r['result_written'])} ({r['status']}); said: {_said(r['lines_after_signal'])}"
            for r in bad] or ["none"]
    missing = [r for r in rows if not r["marker_seen"] and not r["not_applicable"]]
    out += [f"- {r['case']} {r['stage']}: the marker never appeared (exit {r['exit_code']}, status {r['status']})"
            for r in missing]
    return "\n".join(out) + "\n"


def _said(lines: list[str]) -> str:
    keep = [line.strip() for line in lines if "] HiGHS:" not in line][:2]
    return " / ".join(f"`{line[:140]}`" for line in keep) or "-"


def render_examples(data: dict) -> str:
    a = data["args"]
    rows = data["rows"]
    out = [f"# Examples `{data['tag']}`", "", _facts_line(data), "",
           f"Base variant, `--gap {a['gap']:g}`, `--time-limit {a['time_limit']:g}`, "
           f"`--integrality {a['integrality']}`; \"no N+1\" = the same file with every `n_plus_1` turned to "
           "`none`. Cost = `summary.total_usd_per_month`.", ""]
    rrows = []
    for r in rows:
        for name in ("with_nplus1", "no_nplus1"):
            run = r["runs"].get(name)
            if run is None:
                rrows.append([r["example"], name, "same scenario (no N+1 workload)", *["-"] * 11])
                continue
            rrows.append([r["example"], name, run["status"] or "-", run["exit_code"], _pct(run["gap"]),
                          _num(run["total_usd_per_month"], 2), run["integrality"] or "-", *_size_cells(run),
                          _num(run["clock_s"], 2), _num(run["wall_s"], 2)])
    out += ["## Runs", "", table(["example", "run", "status", "exit", "gap", "cost_usd_month", "form", "vars",
                                  "int_vars", "constraints", "failover_vars", "failover_cons", "clock_s", "wall_s"],
                                 rrows, "lllrrrl" + "r" * 7), ""]
    drows = []
    for r in rows:
        h, n = r["runs"]["with_nplus1"], r["runs"].get("no_nplus1")
        if n is None:
            drows.append([r["example"], 0, "-", "-", "-", "-", "-"])
            continue
        hc, nc = h["total_usd_per_month"], n["total_usd_per_month"]
        diff = hc - nc if hc is not None and nc is not None else None
        drows.append([r["example"], r["nplus1_turned_off"], _num(diff, 2), _pct(diff / nc) if diff is not None and nc
                      else "-", _ratio(h["model_size"].get("variables"), n["model_size"].get("variables")),
                      _ratio(h["model_size"].get("constraints"), n["model_size"].get("constraints")),
                      _ratio(h["clock_s"], n["clock_s"])])
    out += ["## What exact N+1 costs", "", "Meaningful when both runs are `optimal` at gap 0.", "",
            table(["example", "N+1_w", "N+1_adds_usd_month", "N+1_adds", "vars_ratio", "cons_ratio", "time_ratio"],
                  drows), ""]
    out += _problems(rows, ladder=False)
    return "\n".join(out) + "\n"


def _facts_line(data: dict) -> str:
    m = data["machine"]
    return (f"{m['date_utc']}; {m['cpu_count']} CPUs ({m['cpu_model']}), {m['mem_total_gib']} GiB, load average "
            f"{m['loadavg_at_start']} at start and {data.get('loadavg_at_end')} at end; Python {m['python']}, "
            f"highspy {m['highspy']}, PuLP {m['pulp']}, planner {m['planner']} at {m['git_commit']} "
            f"({m['planner_uncommitted_files']} uncommitted files in planner/); CLI start-up "
            f"{m['cli_startup_s']:.2f} s; whole run {data['elapsed_s']:.0f} s"
            + (" (**partial: interrupted**)" if data.get("partial") else "") + ".")


RENDER = {"ladder": render_ladder, "ctrlc": render_ctrlc, "examples": render_examples}
COMMANDS = {"ladder": cmd_ladder, "ctrlc": cmd_ctrlc, "examples": cmd_examples}


# --------------------------------------------------------------------------- driver
def write_outputs(data: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{data['tag']}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    (out_dir / f"{data['tag']}.md").write_text(RENDER[data["kind"]](data))
    log(f"wrote {out_dir / data['tag']}.json and .md")


def execute(kind: str, args) -> int:
    tag = args.tag or kind
    work_root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="planner-bench-"))
    work = work_root / tag
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    keys = {"ladder": ("sizes", "time_limit", "gap", "seed", "integrality", "cbc_upto", "threads"),
            "ctrlc": ("cases", "stages", "repeat", "time_limit", "gap", "seed"),
            "examples": ("time_limit", "gap", "integrality")}[kind]
    rows: list = []
    data = {"kind": kind, "tag": tag, "args": {k: getattr(args, k) for k in keys}, "machine": machine_facts(),
            "rows": rows, "partial": False}
    t0 = time.monotonic()
    rc = 0
    try:
        COMMANDS[kind](args, work, rows)
    except KeyboardInterrupt:
        log("interrupted: writing the rows measured so far (marked partial)")
        data["partial"] = True
        rc = 130
    finally:
        if not args.work:
            shutil.rmtree(work_root, ignore_errors=True)
    data["elapsed_s"] = round(time.monotonic() - t0, 1)
    data["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    write_outputs(data, Path(args.out))
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command")

    def common(p: argparse.ArgumentParser, time_limit: float, gap: float) -> None:
        p.add_argument("--time-limit", type=float, default=time_limit, help=f"seconds per solve (default {time_limit:g})")
        p.add_argument("--gap", type=float, default=gap, help=f"relative gap handed to the CLI (default {gap:g})")
        p.add_argument("--tag", default=None, help="file stem under --out (default: the subcommand's name)")
        p.add_argument("--out", default=str(RESULTS), help="output directory (default bench/results)")
        p.add_argument("--work", default=None, help="keep scenarios and CLI outputs here (default: a temp dir, "
                                                    "deleted)")

    p = sub.add_parser("ladder", help="scale ladder with N+1-off and CBC baselines")
    common(p, 60.0, 0.005)
    p.add_argument("--sizes", default=DEFAULT_SIZES, help=f"workloads x sites per rung (default {DEFAULT_SIZES})")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--integrality", choices=("auto", "replica", "pooled"), default="auto")
    p.add_argument("--cbc-upto", default="20x10", help="run CBC on rungs up to this size ('none': never)")
    p.add_argument("--threads", type=int, default=None)

    p = sub.add_parser("ctrlc", help="Ctrl-C latency per stage")
    common(p, 120.0, 0.005)
    p.add_argument("--cases", default=DEFAULT_CASES,
                   help=f"example[:variant] or WxS, optional /replica or /pooled (default {DEFAULT_CASES})")
    p.add_argument("--stages", default=DEFAULT_STAGES, help=f"of {', '.join(STAGES)} (default {DEFAULT_STAGES})")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=7, help="generator seed for WxS cases")

    p = sub.add_parser("examples", help="the shipped examples with and without N+1, solved to optimality")
    common(p, 120.0, 0.0)
    p.add_argument("--integrality", choices=("auto", "replica", "pooled"), default="auto")

    p = sub.add_parser("all", help="ladder, ctrlc and examples with their defaults (make bench)")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--work", default=None)

    p = sub.add_parser("render", help="re-render <tag>.md from a saved <tag>.json")
    p.add_argument("json_file")

    args = ap.parse_args(argv)
    if args.command == "render":
        data = json.loads(Path(args.json_file).read_text())
        md = Path(args.json_file).with_suffix(".md")
        md.write_text(RENDER[data["kind"]](data))
        log(f"wrote {md}")
        return 0
    if args.command in (None, "all"):
        rc = 0
        for kind in ("ladder", "ctrlc", "examples"):
            sub_args = ap.parse_args([kind, "--out", getattr(args, "out", str(RESULTS))]
                                     + (["--work", args.work] if getattr(args, "work", None) else []))
            rc = execute(kind, sub_args)
            if rc == 130:
                return rc
        return rc
    return execute(args.command, args)


if __name__ == "__main__":
    raise SystemExit(main())
