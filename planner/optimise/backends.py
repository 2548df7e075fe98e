"""Solve the placement MILP and say honestly what the solver proved.

HiGHS (default) is driven through highspy directly: the PuLP problem is copied into a highspy
model in bulk (CSR rows), so that limits, a starting solution and HiGHS's own model status,
dual bound and MIP gap are in our hands. PuLP's status word is never used: it says "Optimal"
when HiGHS stopped at its time limit with a gap.

Status:
- ``optimal``    proved within the requested relative gap (the gap is recorded);
- ``feasible``   a plan, but the solver stopped early (time/node limit): gap x %;
- ``infeasible`` the model has no plan;
- ``no_plan``    no plan found within the limits.

A plan quickly at any size: the LP relaxation is rounded up (integers ceiled), the continuous
part re-solved with those integers fixed; if that is feasible it is a plan, and it is handed to
HiGHS as its starting solution. When the MILP stops without a better plan, the heuristic plan is
returned (status ``feasible``, gap against the best bound known).

CBC (``solver="cbc"``) runs as PuLP's bundled binary in a subprocess killed at the wall-clock
limit (CBC was measured overrunning its own limit); its status is read from PuLP's solution
status, and its bound is not available.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pulp

from planner.optimise.model import PlacementModel


@dataclass
class SolveOptions:
    solver: str = "highs"
    time_limit_s: float = 60.0
    gap: float = 0.005
    threads: int | None = None
    node_limit: int | None = None
    seed: int = 0
    heuristic: bool = True
    msg: bool = False
    mip_heuristic_effort: float | None = None
    #: starting plans (full assignments by variable name); the best feasible one seeds HiGHS
    start: list[tuple[str, dict[str, float]]] | None = None
    #: a valid lower bound known from elsewhere (e.g. the LP relaxation solved for a start)
    known_bound: float | None = None


@dataclass
class SolveOutcome:
    status: str
    solver: str
    solver_version: str
    objective: float | None
    bound: float | None
    gap: float | None
    time_s: float
    model_status: str
    heuristic_objective: float | None = None
    used_heuristic_plan: bool = False
    nodes: int | None = None
    notes: list[str] = field(default_factory=list)


class _HighsCopy:
    """The PuLP problem as a highspy model (bulk build)."""

    def __init__(self, prob: pulp.LpProblem):
        import highspy

        self.hs = highspy
        self.vars = prob.variables()
        idx = {v.name: i for i, v in enumerate(self.vars)}
        n = len(self.vars)
        inf = highspy.kHighsInf
        lb = np.array([-inf if v.lowBound is None else float(v.lowBound) for v in self.vars])
        ub = np.array([inf if v.upBound is None else float(v.upBound) for v in self.vars])
        cost = np.zeros(n)
        for v, a in prob.objective.items():
            cost[idx[v.name]] += a
        self.offset = float(prob.objective.constant or 0.0)
        self.is_int = np.array([v.cat == pulp.LpInteger for v in self.vars])
        starts, index, value, lo, hi = [0], [], [], [], []
        self.row_names = []
        for c in prob.constraints():
            name = c.name
            for v, a in c.items():
                if a != 0:
                    index.append(idx[v.name])
                    value.append(a)
            starts.append(len(index))
            lo.append(-inf if c.getLb() is None else c.getLb())
            hi.append(inf if c.getUb() is None else c.getUb())
            self.row_names.append(name)
        self.lb, self.ub, self.cost = lb, ub, cost
        self.row_of = np.repeat(np.arange(len(lo)), np.diff(np.array(starts)))
        self.col_of = np.array(index, dtype=np.int64)
        self.coef = np.array(value, dtype=float)
        self.row_lo, self.row_hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
        h = new_highs()
        h.addVars(n, lb, ub)
        if n:
            h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
        m = len(lo)
        if m:
            h.addRows(m, np.array(lo), np.array(hi), len(index), np.array(starts[:-1], dtype=np.int32),
                      np.array(index, dtype=np.int32), np.array(value, dtype=float))
        self.h = h
        self.int_idx = np.flatnonzero(self.is_int).astype(np.int32)
        self.set_integrality(True)

    def set_integrality(self, integer: bool) -> None:
        if len(self.int_idx):
            t = self.hs.HighsVarType.kInteger if integer else self.hs.HighsVarType.kContinuous
            self.h.changeColsIntegrality(len(self.int_idx), self.int_idx, np.array([t] * len(self.int_idx)))

    def values(self) -> np.ndarray:
        return np.array(self.h.getSolution().col_value)

    def assign(self, values: np.ndarray) -> None:
        for v, x in zip(self.vars, values, strict=True):
            v.varValue = float(x)

    def feasible(self, x: np.ndarray, tol: float = 1e-6) -> bool:
        """Bounds, integrality and every row hold for x (absolute tolerance scaled by row size)."""
        if np.any(x < self.lb - tol) or np.any(x > self.ub + tol):
            return False
        k = self.int_idx
        if len(k) and np.any(np.abs(x[k] - np.round(x[k])) > tol):
            return False
        act = np.bincount(self.row_of, weights=self.coef * x[self.col_of], minlength=len(self.row_lo))
        slack = tol * np.maximum(1.0, np.abs(act))
        return bool(np.all(act >= self.row_lo - slack) and np.all(act <= self.row_hi + slack))

    def objective(self, values: np.ndarray) -> float:
        return float(self.cost @ values) + self.offset


_BANNER_SHOWN = False


def new_highs():
    """A highspy.Highs with logging off. HiGHS prints a banner on stdout when the first instance
    is made in a process; that would corrupt `--format json` output, so fd 1 is muted for it."""
    global _BANNER_SHOWN
    import highspy

    if _BANNER_SHOWN:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _BANNER_SHOWN = True
    h.setOptionValue("output_flag", False)
    return h


def lp_relaxation(prob: pulp.LpProblem, time_limit_s: float) -> tuple[dict[str, float], float] | None:
    """(values by variable name, objective) of the LP relaxation, or None if not solved to optimality."""
    deadline = time.monotonic() + max(0.5, time_limit_s)
    hc = _HighsCopy(prob)
    hc.set_integrality(False)
    hc.h.setOptionValue("time_limit", max(0.5, deadline - time.monotonic()))
    guard_deadline(hc.h, deadline)
    hc.h.run()
    if hc.h.getModelStatus() != hc.hs.HighsModelStatus.kOptimal:
        return None
    values = hc.values()
    return {v.name: float(x) for v, x in zip(hc.vars, values, strict=True)}, hc.objective(values)


def guard_deadline(h, deadline: float) -> None:
    """Interrupt HiGHS (simplex, IPM or branch-and-bound) once the wall clock passes the deadline:
    its own time_limit is checked too rarely inside large LPs (measured: 60 s limits overrun to
    81 s at 200x50 and 125 s at 1000x100)."""

    def stop(event) -> None:
        if time.monotonic() > deadline:
            event.interrupt()

    for hook in (h.cbSimplexInterrupt, h.cbIpmInterrupt, h.cbMipInterrupt):
        hook.subscribe(stop)


def _model_status_name(h) -> str:
    return h.modelStatusToString(h.getModelStatus())


def _heuristic(hc: _HighsCopy, deadline: float, opts: SolveOptions) -> tuple[np.ndarray | None, float | None, float | None]:
    """LP-rounding in two stages. Returns (plan, objective, LP bound).

    1. Solve the LP relaxation; ceil the replica counts and the binaries (``r_``, ``open_``,
       ``used_``) and fix them.
    2. Re-solve the LP (instances still continuous: each is then exactly what the fixed replicas
       need); ceil the instance counts (``n_``) within their bounds and fix them.
    3. Re-solve the LP for the continuous rest (routing, class split, power). Feasible = a plan.
    """
    h = hc.h
    ms = hc.hs.HighsModelStatus
    k = hc.int_idx
    names = [hc.vars[i].name for i in k]
    stage1 = np.array([i for i, nm in zip(k, names, strict=True) if not nm.startswith("n_")], dtype=np.int32)
    stage2 = np.array([i for i, nm in zip(k, names, strict=True) if nm.startswith("n_")], dtype=np.int32)
    hc.set_integrality(False)
    lp_obj = plan = obj = None

    def run() -> bool:
        h.setOptionValue("time_limit", max(0.5, deadline - time.monotonic()))
        h.run()
        return h.getModelStatus() == ms.kOptimal

    def fix(idx: np.ndarray, x: np.ndarray) -> None:
        if len(idx):
            vals = np.minimum(np.maximum(np.ceil(x[idx] - 1e-6), hc.lb[idx]), hc.ub[idx])
            h.changeColsBounds(len(idx), idx, vals, vals)

    try:
        if not run():
            return None, None, None
        lp_obj = h.getInfo().objective_function_value
        fix(stage1, hc.values())
        if run():
            fix(stage2, hc.values())
            if run():
                plan = hc.values()
                plan[k] = np.round(plan[k])
                obj = hc.objective(plan)
    finally:
        if len(k):
            h.changeColsBounds(len(k), k, hc.lb[k], hc.ub[k])
        hc.set_integrality(True)
        h.clearSolver()
    return plan, obj, lp_obj


def _resolve_cold(m: PlacementModel, hc: _HighsCopy, opts: SolveOptions, deadline: float, values: np.ndarray,
                  notes: list[str]) -> tuple[np.ndarray, float]:
    obj = hc.objective(values)
    notes.append("HiGHS reported an objective its solution does not have (a start was set); solved again cold")
    cold = _HighsCopy(m.prob)
    guard_deadline(cold.h, deadline)
    cold.h.setOptionValue("mip_rel_gap", float(opts.gap))
    cold.h.setOptionValue("random_seed", int(opts.seed))
    cold.h.setOptionValue("time_limit", max(0.5, deadline - time.monotonic()))
    cold.h.run()
    if cold.h.getInfo().primal_solution_status == 2:
        x = cold.values()
        if cold.feasible(x) and cold.objective(x) < obj:
            return x, cold.objective(x)
    return values, obj


def solve_highs(m: PlacementModel, opts: SolveOptions) -> SolveOutcome:
    import highspy

    t0 = time.monotonic()
    deadline = t0 + opts.time_limit_s
    hc = _HighsCopy(m.prob)
    h = hc.h
    guard_deadline(h, deadline)
    # HiGHS 1.16 can report an improved objective while getSolution() still holds a start given
    # with setSolution (measured on a tiny pooled model): keep every improving plan it announces
    best_seen: dict = {}

    def keep(event) -> None:
        obj_now = event.data_out.objective_function_value
        if "obj" not in best_seen or obj_now < best_seen["obj"]:
            best_seen["obj"] = obj_now
            best_seen["x"] = np.array(event.data_out.mip_solution, dtype=float)

    h.cbMipImprovingSolution.subscribe(keep)
    version = f"HiGHS {h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"
    ms = highspy.HighsModelStatus
    if opts.threads:
        h.setOptionValue("threads", int(opts.threads))
    h.setOptionValue("random_seed", int(opts.seed))
    notes: list[str] = []
    plan = plan_obj = lp_bound = None
    if opts.heuristic and len(hc.int_idx) and not opts.start:
        plan, plan_obj, lp_bound = _heuristic(hc, deadline, opts)
        if plan is not None:
            notes.append(f"LP-rounding heuristic plan: {plan_obj:,.2f} USD/month")
        elif lp_bound is not None:
            notes.append("LP-rounding heuristic found no plan (rounding broke a bound)")
    pos = {v.name: i for i, v in enumerate(hc.vars)} if opts.start else {}
    for label, start in (opts.start or []):
        given = np.zeros(len(hc.vars))
        for k, v in start.items():
            if k in pos:
                given[pos[k]] = v
        if hc.feasible(given):
            gobj = hc.objective(given)
            notes.append(f"{label} plan: {gobj:,.2f} USD/month")
            if plan is None or gobj < plan_obj:
                plan, plan_obj = given, gobj
        else:
            notes.append(f"{label} plan breaks a constraint of this model; not used")
    if plan is not None:
        sol = highspy.HighsSolution()
        sol.col_value = list(plan)
        sol.value_valid = True
        h.setSolution(sol)
        notes.append(f"HiGHS started from the best of these ({plan_obj:,.2f} USD/month)")
    h.setOptionValue("mip_rel_gap", float(opts.gap))
    if opts.mip_heuristic_effort is not None:
        h.setOptionValue("mip_heuristic_effort", float(opts.mip_heuristic_effort))
    remaining = deadline - time.monotonic()
    h.setOptionValue("time_limit", max(0.5, remaining))
    if opts.node_limit is not None:
        h.setOptionValue("mip_max_nodes", int(opts.node_limit))
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    elapsed = time.monotonic() - t0
    has_int = len(hc.int_idx) > 0
    primal_ok = info.primal_solution_status == 2
    obj = info.objective_function_value if primal_ok else None
    bound = info.mip_dual_bound if has_int else obj
    if bound is not None and (math.isinf(bound) or math.isnan(bound)):
        bound = None
    for known in (lp_bound, opts.known_bound):
        if known is not None and (bound is None or known > bound):
            bound = known
    values = hc.values() if primal_ok else None
    if values is not None and obj is not None and abs(hc.objective(values) - obj) > 1e-6 * max(1.0, abs(obj)):
        seen = best_seen.get("x")
        if seen is not None and len(seen) == len(values) and abs(hc.objective(seen) - obj) <= 1e-6 * max(1.0, abs(obj)):
            values = seen
        else:
            # the values do not belong to the reported objective: solve again without the start,
            # in the time left, and keep whichever plan is consistent and cheaper
            values, obj = _resolve_cold(m, hc, opts, deadline, values, notes)
    used_heur = False
    if plan is not None and (obj is None or plan_obj < obj - 1e-9):
        values, obj, used_heur = plan, plan_obj, True
        notes.append("the solver returned no better plan than the heuristic; the heuristic plan is reported")
    gap = None
    if obj is not None and bound is not None:
        gap = max(0.0, (obj - bound) / max(abs(obj), 1e-9))
        if abs(obj) < 1e-9 and abs(bound) < 1e-9:
            gap = 0.0
    sname = _model_status_name(h)
    if status in (ms.kInfeasible,) or (status == ms.kUnboundedOrInfeasible and values is None):
        result = "infeasible"
    elif values is None:
        result = "no_plan"
    elif status == ms.kOptimal and (gap is None or gap <= opts.gap + 1e-9):
        result = "optimal"  # proved within the requested gap (gap None: a pure LP, solved exactly)
    else:
        result = "feasible"
    if values is not None:
        hc.assign(values)
    return SolveOutcome(status=result, solver="highs", solver_version=version, objective=obj, bound=bound, gap=gap,
                        time_s=elapsed, model_status=sname, heuristic_objective=plan_obj, used_heuristic_plan=used_heur,
                        nodes=int(info.mip_node_count) if has_int else 0, notes=notes)


def cbc_path() -> str | None:
    """The CBC binary: one on PATH, else the one PuLP 3.x bundles (PuLP 4 users: pip install pulp[cbc])."""
    import shutil

    found = shutil.which("cbc")
    if found:
        return found
    try:
        from pulp.apis import coin_api
    except ImportError:  # pragma: no cover - PuLP without the CBC API
        return None
    path = getattr(coin_api, "pulp_cbc_path", None)
    if path and os.path.isfile(path):
        if not os.access(path, os.X_OK):
            os.chmod(path, 0o755)
        return path
    return None


def solve_cbc(m: PlacementModel, opts: SolveOptions) -> SolveOutcome:
    """CBC on an MPS copy of the model, in a child process killed at the wall-clock limit (CBC's
    own ``-sec`` is given 90 % of it: it was measured overrunning its limit by 77 s)."""
    import subprocess
    import tempfile

    t0 = time.monotonic()
    path = cbc_path()
    if path is None:
        from planner.errors import InputError

        raise InputError("--solver cbc: no CBC binary found. To fix: install one (pip install 'pulp[cbc]' or "
                         "apt-get install coinor-cbc) or use --solver highs", file="(command line)")
    with tempfile.TemporaryDirectory(prefix="planner-cbc-") as tmp:
        mps, sol = os.path.join(tmp, "model.mps"), os.path.join(tmp, "model.sol")
        vs, vnames, cnames, _obj = m.prob.writeMPS(mps, rename=1)
        args = [path, mps, "-sec", f"{max(1.0, 0.9 * opts.time_limit_s):.1f}", "-ratio", f"{opts.gap}"]
        if opts.threads:
            args += ["-threads", str(opts.threads)]
        if opts.node_limit is not None:
            args += ["-maxNodes", str(opts.node_limit)]
        args += ["-randomSeed", str(opts.seed + 1), "-solve", "-printingOptions", "all", "-solution", sol]
        out = None if opts.msg else subprocess.DEVNULL
        notes: list[str] = []
        try:
            subprocess.run(args, stdout=out, stderr=out, stdin=subprocess.DEVNULL, check=False,
                           timeout=max(2.0, opts.time_limit_s - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            notes.append(f"CBC killed at the wall-clock limit of {opts.time_limit_s:g} s")
        elapsed = time.monotonic() - t0
        if not os.path.exists(sol):
            return SolveOutcome("no_plan", "cbc", "CBC", None, None, None, elapsed, "no solution file", notes=notes)
        reader = pulp.COIN_CMD(path=path, msg=False)
        status_code, values, _dj, _pi, _slack, sol_status = reader.readsol_MPS(sol, m.prob, vs, vnames, cnames)
    for v in m.prob.variables():
        v.varValue = values.get(v.name, 0.0)
    if sol_status == pulp.LpSolutionOptimal:
        status = "optimal"
    elif sol_status == pulp.LpSolutionIntegerFeasible:
        status = "feasible"
    elif sol_status == pulp.LpSolutionInfeasible or status_code == pulp.LpStatusInfeasible:
        status = "infeasible"
    else:
        status = "no_plan"
    notes = list(notes)
    if status in ("optimal", "feasible"):
        # CBC stopped at its limit can hand back a point that is not an integer plan (measured:
        # fractional instance counts at 20 workloads x 10 sites); check it row by row.
        hc = _HighsCopy(m.prob)
        x = np.array([v.varValue or 0.0 for v in hc.vars])
        if not hc.feasible(x):
            notes.append("CBC's point is not an integer-feasible plan (it stopped before finding one)")
            status = "no_plan"
    obj = pulp.value(m.prob.objective) if status in ("optimal", "feasible") else None
    return SolveOutcome(status, "cbc", "CBC (COIN-OR)", obj, None, None, elapsed, pulp.LpStatus[status_code],
                        notes=notes + ["CBC reports no dual bound here; the gap is only known when it proves optimality"])


def solve_model(m: PlacementModel, opts: SolveOptions) -> SolveOutcome:
    if opts.solver == "highs":
        return solve_highs(m, opts)
    if opts.solver == "cbc":
        return solve_cbc(m, opts)
    raise ValueError(f"unknown solver {opts.solver!r}; use highs or cbc")
