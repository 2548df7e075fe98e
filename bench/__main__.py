"""``python -m bench``: the benchmark protocol of issue 9 (and ``bench/run.py``'s subcommands).

    python -m bench --sizes 200x50,1000x100 --seeds 1,2,3 --json bench/results/issue9.json
    python -m bench --sizes 5x5 --seeds 1 --methods planner,greedy,lp --json /tmp/b.json
    python -m bench render bench/results/issue9.json          # re-render the .md table
    python -m bench ladder|ctrlc|examples|all ...              # bench/run.py's subcommands

Per rung (``WxS``: workloads x sites) and seed, ``bench/generate.py`` writes the scenario, then
every method runs in its own process, one after the other:

- ``planner``: ``python -m planner solve FILE --out DIR --time-limit L`` (the CLI's defaults
  otherwise), L the rung's limit (:data:`LIMITS`);
- ``greedy``, ``greedy-spread``, ``cloud-on-demand``: ``bench/worker.py`` -> ``api.baseline``
  (frozen baselines, verified by the same checker), result.json written;
- ``lp``: ``bench/worker.py`` -> ``api.lp_bound`` (LP relaxation of the default form) within L.

The JSON is a list of rows, one per (size, seed, method), with exactly the fields of
:data:`FIELDS`. ``total_s`` is process start to exit as the user waits (load, candidates, build,
solve, verify, write); ``peak_mib`` the process's own peak RSS (``os.wait4`` rusage of that child);
``first_plan_s`` from process start: the planner's first plan line on stderr ("greedy plan", "constructive greedy plan",
"LP-support plan", a live line with a best plan), else result.json ``solve.first_plan_s`` (the
CLI's clock, which starts after the interpreter and imports); a baseline's is the moment its
plan was verified; null without a verified plan and for ``lp``. ``verified``: the independent
verification of a returned plan, null for ``lp`` and when no plan was returned. Nothing here
asserts on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/run.py: machine facts, scenarios, the older subcommands)
from generate import make_scenario  # noqa: E402

ROOT = run.ROOT
RESULTS = run.RESULTS
WORKER = Path(__file__).resolve().parent / "worker.py"
LADDER = "20x10,50x20,200x50,1000x100,5000x300"
SEEDS = "1,2,3"
METHODS = ("planner", "greedy", "greedy-spread", "cloud-on-demand", "lp")
#: the planner's time limit per rung (issue 9); other sizes: the next rung's limit up
LIMITS = {"20x10": 10.0, "50x20": 10.0, "200x50": 20.0, "1000x100": 60.0, "5000x300": 300.0}
FIELDS = ("size", "seed", "method", "time_limit_s", "status", "objective", "gap", "dual_bound", "first_plan_s",
          "build_s", "solve_s", "total_s", "peak_mib", "verified")
#: issue 9's targets per rung: (gap target, within seconds end to end)
GAP_TARGETS = {"200x50": (0.005, 20.0), "1000x100": (0.005, 60.0), "5000x300": (0.02, 300.0)}
PLAN_STATUSES = ("optimal", "feasible", "interrupted")


def limit_for(size: str) -> float:
    if size in LIMITS:
        return LIMITS[size]
    w, s = run.parse_size(size)
    for name, lim in LIMITS.items():
        lw, ls = run.parse_size(name)
        if w <= lw and s <= ls:
            return lim
    return max(LIMITS.values())


# --------------------------------------------------------------------------- one process
def run_child(cmd: list[str], timeout_s: float) -> dict:
    """Run cmd; its exit code, wall time, timed stderr lines, stdout and its own peak RSS
    (``os.wait4``: the rusage of that child alone). Killed at ``timeout_s``."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    lines: list[tuple[float, str]] = []
    out: list[bytes] = []

    def read_err() -> None:
        for raw in proc.stderr:
            lines.append((time.monotonic() - t0, raw.decode(errors="replace").rstrip("\n")))

    def read_out() -> None:
        out.append(proc.stdout.read())

    readers = [threading.Thread(target=read_err, daemon=True), threading.Thread(target=read_out, daemon=True)]
    for r in readers:
        r.start()
    killed = {"watchdog": False}

    def watchdog() -> None:
        killed["watchdog"] = True
        proc.kill()

    timer = threading.Timer(timeout_s, watchdog)
    timer.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    except KeyboardInterrupt:
        proc.kill()
        proc.wait()
        raise
    finally:
        timer.cancel()
    wall = time.monotonic() - t0
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    for r in readers:
        r.join(10)
    return {"exit_code": rc, "wall_s": wall, "t0": t0, "lines": lines, "stdout": b"".join(out).decode(errors="replace"),
            "peak_mib": usage.ru_maxrss / 1024.0, "watchdog_killed": killed["watchdog"]}


def _r(x, digits: int = 3):
    return None if x is None else round(float(x), digits)


def run_planner(scenario: Path, out_dir: Path, limit: float) -> dict:
    cmd = [sys.executable, "-m", "planner", "solve", str(scenario), "--out", str(out_dir), "--time-limit", f"{limit:g}"]
    ch = run_child(cmd, 3 * limit + 60)
    res = None
    if (out_dir / "result.json").exists():
        res = json.loads((out_dir / "result.json").read_text())
    sv = (res or {}).get("solve") or {}
    times = sv.get("times_s") or {}
    status = sv.get("status") or (f"killed (watchdog at {3 * limit + 60:g} s)" if ch["watchdog_killed"]
                                  else f"exit {ch['exit_code']}, no result.json")
    has_plan = status in PLAN_STATUSES
    ver = (res or {}).get("verification") or {}
    first = run._first_time(ch["lines"], run.FIRST_PLAN)
    if first is None and has_plan:
        first = sv.get("first_plan_s")
    solve_s = sum(v for k, v in times.items() if k not in ("build", "result_and_verify")) if times else None
    return {"status": status, "objective": sv.get("objective"), "gap": sv.get("gap"), "dual_bound": sv.get("bound"),
            "first_plan_s": _r(first) if has_plan and ver.get("ok") else None, "build_s": _r(times.get("build")),
            "solve_s": _r(solve_s), "total_s": _r(ch["wall_s"]), "peak_mib": _r(ch["peak_mib"], 1),
            "verified": ver.get("ok") if has_plan else None}


def run_worker(method: str, scenario: Path, out_dir: Path, limit: float) -> dict:
    cmd = [sys.executable, str(WORKER), method, str(scenario), str(out_dir), f"{limit:g}"]
    ch = run_child(cmd, 3 * limit + 60)
    try:
        rep = json.loads(ch["stdout"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = " | ".join(line for _t, line in ch["lines"][-3:])
        return {"status": f"exit {ch['exit_code']}: {tail}"[:300], "objective": None, "gap": None, "dual_bound": None,
                "first_plan_s": None, "build_s": None, "solve_s": None, "total_s": _r(ch["wall_s"]),
                "peak_mib": _r(ch["peak_mib"], 1), "verified": None}
    first = rep.get("first_plan_at")
    return {"status": rep["status"], "objective": rep.get("objective"), "gap": rep.get("gap"),
            "dual_bound": rep.get("dual_bound"), "first_plan_s": _r(first - ch["t0"]) if first else None,
            "build_s": _r(rep.get("build_s")), "solve_s": _r(rep.get("solve_s")), "total_s": _r(ch["wall_s"]),
            "peak_mib": _r(ch["peak_mib"], 1), "verified": rep.get("verified")}


def measure(size: str, seed: int, method: str, scenario: Path, work: Path) -> dict:
    limit = limit_for(size)
    out_dir = work / f"{size}-s{seed}-{method}"
    if method == "planner":
        got = run_planner(scenario, out_dir, limit)
    else:
        got = run_worker(method, scenario, out_dir, limit)
    row = {"size": size, "seed": seed, "method": method,
           "time_limit_s": limit if method in ("planner", "lp") else None, **got}
    return {k: row[k] for k in FIELDS}


# --------------------------------------------------------------------------- the table
def _med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def _fmt(v, digits: int = 0, pct: bool = False) -> str:
    if v is None:
        return "-"
    if pct:
        return f"{100 * v:.2f} %"
    return f"{v:,.{digits}f}"


def _size_key(size: str) -> tuple[int, int]:
    return run.parse_size(size)


def render(rows: list[dict], title: str = "issue 9 benchmark", facts: dict | None = None) -> str:
    """Median over seeds per size x method, with issue 9's targets beside (and whether met)."""
    sizes = sorted({r["size"] for r in rows}, key=_size_key)
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    out = [f"# {title}", ""]
    if facts:
        out += [", ".join(f"{k}: {v}" for k, v in facts.items()), ""]
    out += ["Median over seeds per size and method (`python -m bench`, each method in its own process). "
            "objective, dual bound: USD/month; times in s from process start; peak: MiB of that process. "
            "Targets (issue 9): first plan <= 10 s at every rung; gap <= 0.5 % within 20 s (200x50) and 60 s "
            "(1000x100), <= 2 % within 300 s (5000x300); peak < 4 GiB at 5000x300; planner cost <= 0.8 x greedy "
            "and < greedy-spread.", ""]
    head = ["size", "method", "seeds", "status", "objective", "gap", "dual bound", "first plan", "build", "solve",
            "total", "peak MiB", "verified", "vs greedy", "target", "met"]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for size in sizes:
        by_m = {m: [r for r in rows if r["size"] == size and r["method"] == m] for m in methods}
        med_obj = {m: _med([r["objective"] for r in rs if r["status"] in PLAN_STATUSES and r["verified"]])
                   for m, rs in by_m.items()}
        for m in methods:
            rs = by_m[m]
            if not rs:
                continue
            statuses = sorted({r["status"] for r in rs})
            status = ", ".join(f"{s} x{sum(1 for r in rs if r['status'] == s)}" for s in statuses)
            ver = [r["verified"] for r in rs if r["verified"] is not None]
            ratios = _paired_ratio(rows, size, m, "greedy")
            target, met = _target(rows, size, m, rs)
            out.append("| " + " | ".join([
                size, m, str(len(rs)), status, _fmt(med_obj[m] if m != "lp" else _med([r["objective"] for r in rs])),
                _fmt(_med([r["gap"] for r in rs]), pct=True), _fmt(_med([r["dual_bound"] for r in rs])),
                _fmt(_med([r["first_plan_s"] for r in rs]), 2), _fmt(_med([r["build_s"] for r in rs]), 2),
                _fmt(_med([r["solve_s"] for r in rs]), 2), _fmt(_med([r["total_s"] for r in rs]), 2),
                _fmt(_med([r["peak_mib"] for r in rs])), f"{sum(bool(v) for v in ver)}/{len(ver)}" if ver else "-",
                _fmt(_med(ratios), 3) if m not in ("greedy", "lp") else "-", target, met]) + " |")
    out += ["", "`vs greedy`: median over seeds of this method's objective / greedy's on the same scenario (both "
            "verified). `met`: the planner's targets at this rung, each yes/no on the medians; a baseline's "
            "row is its reference only.", ""]
    return "\n".join(out)


def _paired_ratio(rows: list[dict], size: str, method: str, ref: str) -> list[float]:
    out = []
    for r in rows:
        if r["size"] != size or r["method"] != method or not r["verified"] or r["objective"] is None:
            continue
        b = next((x for x in rows if x["size"] == size and x["seed"] == r["seed"] and x["method"] == ref
                  and x["verified"] and x["objective"]), None)
        if b is not None:
            out.append(r["objective"] / b["objective"])
    return out


def _target(rows: list[dict], size: str, method: str, rs: list[dict]) -> tuple[str, str]:
    if method != "planner":
        return "-", "-"
    parts, met = ["first plan <= 10 s"], []
    first = _med([r["first_plan_s"] for r in rs])
    met.append(first is not None and first <= 10.0)
    if size in GAP_TARGETS:
        g, within = GAP_TARGETS[size]
        parts.append(f"gap <= {100 * g:g} % in {within:g} s")
        gap, total = _med([r["gap"] for r in rs]), _med([r["total_s"] for r in rs])
        met.append(gap is not None and gap <= g and total is not None and total <= within)
    if size == "5000x300":
        parts.append("peak < 4 GiB")
        peak = _med([r["peak_mib"] for r in rs])
        met.append(peak is not None and peak < 4096)
    vs_g = _med(_paired_ratio(rows, size, method, "greedy"))
    vs_s = _med(_paired_ratio(rows, size, method, "greedy-spread"))
    parts.append("<= 0.8 x greedy")
    met.append(vs_g is not None and vs_g <= 0.8)
    parts.append("< greedy-spread")
    met.append(vs_s is not None and vs_s < 1.0)
    return "; ".join(parts), " / ".join("yes" if x else "no" for x in met)


# --------------------------------------------------------------------------- main
def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    m = os.umask(0)
    os.umask(m)
    os.chmod(tmp, 0o666 & ~m)
    os.replace(tmp, path)


def protocol(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description="issue 9 benchmark protocol (see bench/README.md)")
    ap.add_argument("--sizes", default=LADDER, help=f"rungs WxS, comma-separated (default {LADDER})")
    ap.add_argument("--seeds", default=SEEDS, help=f"generator seeds, comma-separated (default {SEEDS})")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"of {', '.join(METHODS)} (default: all)")
    ap.add_argument("--json", default=None, help="rows written here (default bench/results/<tag>.json)")
    ap.add_argument("--tag", default=None, help="stem of the .md under --md-dir (default: the --json file's stem, "
                                                "else 'issue9')")
    ap.add_argument("--md-dir", default=str(RESULTS), help="where <tag>.md goes (default bench/results)")
    ap.add_argument("--work", default=None, help="keep scenarios and outputs here (default: a temp dir, deleted)")
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        ap.error(f"unknown method(s) {', '.join(bad)}; choose from {', '.join(METHODS)}")
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        try:
            run.parse_size(s)
        except ValueError:
            ap.error(f"--sizes: {s!r} is not WxS (e.g. 200x50)")
    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError:
        ap.error("--seeds: comma-separated integers, e.g. 1,2,3")
    tag = args.tag or (Path(args.json).stem if args.json else "issue9")
    json_path = Path(args.json) if args.json else RESULTS / f"{tag}.json"
    md_path = Path(args.md_dir) / f"{tag}.md"
    facts = run.machine_facts()
    rows: list[dict] = []
    work_root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="planner-bench9-"))
    rc = 0
    try:
        for size in sizes:
            w, s = run.parse_size(size)
            for seed in seeds:
                t = time.monotonic()
                scenario = run.write_doc(make_scenario(w, s, seed), work_root / f"{size}-s{seed}.json")
                run.log(f"{size} seed {seed}: scenario generated in {time.monotonic() - t:.1f} s")
                for m in methods:
                    row = measure(size, seed, m, scenario, work_root)
                    rows.append(row)
                    run.log(f"{size} seed {seed} {m}: {row['status']}, objective {_fmt(row['objective'], 2)}, "
                            f"total {row['total_s']} s, peak {row['peak_mib']} MiB, verified {row['verified']}")
    except KeyboardInterrupt:
        run.log("interrupted: writing the rows measured so far")
        rc = 130
    finally:
        if not args.work:
            import shutil

            shutil.rmtree(work_root, ignore_errors=True)
    _atomic_write(json_path, json.dumps(rows, indent=1) + "\n")
    facts["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    _atomic_write(md_path, render(rows, f"issue 9 benchmark ({tag})", _brief(facts)))
    run.log(f"wrote {json_path} and {md_path}")
    return rc


def _brief(facts: dict) -> dict:
    keys = ("date_utc", "cpu_count", "cpu_model", "mem_total_gib", "loadavg_at_start", "loadavg_at_end", "python",
            "highspy", "git_commit", "planner_uncommitted_files")
    return {k: facts.get(k) for k in keys}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "render":
        rows = json.loads(Path(argv[1]).read_text())
        if isinstance(rows, list):
            md = Path(argv[1]).with_suffix(".md")
            _atomic_write(md, render(rows, f"issue 9 benchmark ({md.stem})"))
            run.log(f"wrote {md}")
            return 0
        return run.main(argv)
    if argv and argv[0] in ("ladder", "ctrlc", "examples", "all"):
        return run.main(argv)
    return protocol(argv)


if __name__ == "__main__":
    raise SystemExit(main())
