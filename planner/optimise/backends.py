"""Solver back-ends: HiGHS through highspy (default) and CBC as a child process.

HiGHS is driven through highspy directly: the PuLP problem is copied into a highspy model in
bulk (CSR rows), so that limits, tolerances, a starting plan and HiGHS's own model status, dual
bound and MIP gap are in our hands. PuLP's status word is never read: it says "Optimal" when
HiGHS stopped at its time limit with a gap.

What a back-end returns is a :class:`SolveOutcome`: a vector of values that passed the row check
(bounds, integrality and every row within :data:`planner.tolerance.TOL`), the objective of that
vector, the best valid lower bound, and a status that says only what was proved:

- ``optimal``     HiGHS says optimal, the plan passes the row check, its objective matches the
                  solver's within the tolerance and the gap to the solver's dual bound is within
                  the requested gap;
- ``feasible``    a checked plan, nothing more proved (time or node limit, stages disagreeing);
- ``infeasible``  the model has no plan;
- ``no_plan``     no checked plan within the limits;
- ``interrupted`` stopped by the user (Ctrl-C); the best checked plan, if any, is kept.

HiGHS runs in its own thread (``startSolve``); this thread waits on it, shows a live line
(elapsed, best plan, bound, gap) at least every 2 s, and cancels it at the deadline or on Ctrl-C.

CBC (``solver="cbc"``) runs as a binary on an MPS copy of the model in a subprocess killed at the
wall-clock limit (CBC was measured overrunning its own limit); its bound is not available.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pulp

from planner.highs import highs_version, new_highs
from planner.tolerance import TOL, leq, relative_gap


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
    #: time.monotonic() when the user's clock started (the CLI: when it began reading the
    #: scenario); the whole run, outputs included, must end by started_at + time_limit_s
    started_at: float | None = None
    #: write the model (PuLP's LP format, names from the index tables) here once it is built
    write_lp: str | None = None


@dataclass
class SolveOutcome:
    status: str
    solver: str
    solver_version: str
    values: np.ndarray | None
    objective: float | None
    bound: float | None
    gap: float | None
    time_s: float
    model_status: str
    start_objective: float | None = None
    start: str | None = None
    nodes: int | None = None
    notes: list[str] = field(default_factory=list)
    interrupted: bool = False


class Cancelled(Exception):
    """Raised by a stage that the user interrupted (Ctrl-C) and that has nothing to return."""


class HighsModel:
    """The model's arrays as a highspy model (one bulk call), with the row check every returned
    plan must pass."""

    def __init__(self, m):
        import highspy

        self.hs = highspy
        self.m = m
        a = m.arrays()
        n = a.n
        self.lb, self.ub, self.cost, self.offset = a.lb, a.ub, a.cost, a.offset
        self.is_int = a.is_int
        self.row_lo, self.row_hi = a.row_lo, a.row_hi
        self.col_of, self.coef = a.index, a.value
        self.row_of = a.row_of
        h = new_highs()
        inf = highspy.kHighsInf
        h.addVars(n, np.where(np.isfinite(self.lb), self.lb, -inf), np.where(np.isfinite(self.ub), self.ub, inf))
        if n:
            h.changeColsCost(n, np.arange(n, dtype=np.int32), self.cost)
        if len(self.row_lo):
            h.addRows(len(self.row_lo), np.where(np.isfinite(self.row_lo), self.row_lo, -inf),
                      np.where(np.isfinite(self.row_hi), self.row_hi, inf), len(a.index),
                      a.starts[:-1].astype(np.int32), a.index.astype(np.int32), a.value)
        self.h = h
        #: a run of this model was left behind still running (see run_highs): nothing may touch h
        self.abandoned = False
        self.int_idx = np.flatnonzero(self.is_int).astype(np.int32)
        self.set_integrality(True)

    @property
    def names(self) -> list[str]:
        return self.m.col_names()

    @property
    def row_names(self) -> list[str]:
        return self.m.row_names()

    @property
    def n(self) -> int:
        return len(self.lb)

    def set_integrality(self, integer: bool) -> None:
        if len(self.int_idx):
            t = self.hs.HighsVarType.kInteger if integer else self.hs.HighsVarType.kContinuous
            self.h.changeColsIntegrality(len(self.int_idx), self.int_idx, np.array([t] * len(self.int_idx)))

    def values(self) -> np.ndarray:
        return np.array(self.h.getSolution().col_value, dtype=float)

    def vector(self, values: dict) -> np.ndarray:
        """A vector of the columns from {column number: value} (or {column name: value})."""
        x = np.zeros(self.n)
        pos = None
        for key, val in values.items():
            if isinstance(key, str):
                pos = pos or {name: i for i, name in enumerate(self.names)}
                if key in pos:
                    x[pos[key]] = val
            else:
                x[key] = val
        return x

    def snap(self, x: np.ndarray) -> np.ndarray:
        """x with its integer columns rounded to whole numbers."""
        x = np.array(x, dtype=float)
        k = self.int_idx
        if len(k):
            x[k] = np.round(x[k])
        return x

    def violations(self, x: np.ndarray, limit: int = 5) -> list[str]:
        """What x breaks (bounds, integrality, rows), each within TOL relative to the size of the
        numbers compared (a row: max(1, |bound|, sum |a_i x_i|)). Empty: x is a plan."""
        out: list[str] = []
        if x is None or len(x) != self.n:
            return ["no values"]
        if not np.all(np.isfinite(x)):
            return ["non-finite values"]
        scale = np.maximum(1.0, np.abs(x))
        bad = np.flatnonzero((x < self.lb - TOL * scale) | (x > self.ub + TOL * scale))
        out += [f"bound of {self.m.col_name(i)}: {x[i]!r} not in [{self.lb[i]}, {self.ub[i]}]" for i in bad[:limit]]
        k = self.int_idx
        if len(k):
            frac = np.abs(x[k] - np.round(x[k])) > TOL * np.maximum(1.0, np.abs(x[k]))
            out += [f"{self.m.col_name(i)} = {x[i]!r} is not whole" for i in k[frac][:limit]]
        terms = self.coef * x[self.col_of]
        act = np.bincount(self.row_of, weights=terms, minlength=len(self.row_lo))
        mag = np.bincount(self.row_of, weights=np.abs(terms), minlength=len(self.row_lo))
        lo_fin = np.where(np.isfinite(self.row_lo), np.abs(self.row_lo), 0.0)
        hi_fin = np.where(np.isfinite(self.row_hi), np.abs(self.row_hi), 0.0)
        slack = TOL * np.maximum.reduce([np.ones_like(mag), mag, lo_fin, hi_fin])
        bad = np.flatnonzero((act < self.row_lo - slack) | (act > self.row_hi + slack))
        out += [f"row {self.m.row_name(i)}: {act[i]!r} not in [{self.row_lo[i]}, {self.row_hi[i]}]"
                for i in bad[:limit]]
        return out

    def feasible(self, x: np.ndarray) -> bool:
        return not self.violations(x, limit=1)

    def objective(self, x: np.ndarray) -> float:
        return float(self.cost @ x) + self.offset

    def objective_scale(self, x: np.ndarray) -> float:
        """The size of the numbers summed into the objective (for a relative comparison)."""
        return max(1.0, float(np.abs(self.cost * x).sum()) + abs(self.offset))

    def complete(self, x: np.ndarray, deadline: float, also_fix: np.ndarray | None = None,
                 progress: Callable[[str], None] | None = None) -> np.ndarray | None:
        """The integer decisions of x (rounded) with the best continuous rest: fix the integer
        columns (and ``also_fix``, e.g. the replicas of the pooled form, at their values in x),
        solve the LP, restore. None when those decisions admit no plan. Used to complete a
        starting plan (greedy, rounding) and to polish a solver point that misses a row by more
        than the tolerance."""
        if self.abandoned:
            return None
        h = self.h
        x = np.asarray(x, dtype=float)
        k = self.int_idx
        fixed = np.round(x[k]) if len(k) else np.zeros(0)
        if also_fix is not None and len(also_fix):
            k = np.concatenate([k, also_fix.astype(np.int32)])
            fixed = np.concatenate([fixed, x[also_fix]])
        out = None
        try:
            self.set_integrality(False)
            if len(k):
                h.changeColsBounds(len(k), k, fixed, fixed)
            for presolve in ("choose", "off"):
                # HiGHS 1.16's presolve at a 1e-9 tolerance was measured calling a feasible LP whose
                # demand sits exactly on a capacity step infeasible (repro/nan_crash.yaml): confirm
                # a non-optimal answer without presolve
                h.setOptionValue("presolve", presolve)
                h.setOptionValue("time_limit", max(0.2, deadline - time.monotonic()))
                stop = run_highs(h, max(deadline, time.monotonic() + 0.2), progress, "HiGHS (completing a plan)")
                if stop.user:
                    raise KeyboardInterrupt
                if h.getModelStatus() == self.hs.HighsModelStatus.kOptimal:
                    out = self.snap(self.values())
                    if self.feasible(out):
                        break
                    out = None
                h.clearSolver()
                if stop.why == "deadline":
                    break  # no time for the second attempt (and a cancelled run is not restarted)
        finally:
            h.setOptionValue("presolve", "choose")
            if len(k):
                h.changeColsBounds(len(k), k, self.lb[k], self.ub[k])
            self.set_integrality(True)
            h.clearSolver()
        return out


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


#: seconds HiGHS may take to honour a cancel before it is left behind (measured: inside a sub-MIP
#: heuristic of a 200x50 pooled model HiGHS 1.16 checks neither its interrupt callbacks nor its
#: time limit, and ran 120 s past a cancel)
CANCEL_GRACE_S = 1.0
#: HiGHS runs left behind after a cancel they did not honour in time (they stop at their next
#: interrupt check; the CLI leaves with os._exit while one still runs)
ABANDONED: list = []


@dataclass
class Stop:
    """How a HiGHS run ended: ``why`` we cancelled it (None, "deadline" or "user"), whether it
    was left running (``abandoned``: its solution must not be read), and its last reported
    primal bound, dual bound and gap (``live``)."""

    why: str | None = None
    user: bool = False
    abandoned: bool = False
    live: dict = field(default_factory=dict)


def abandoned_running() -> bool:
    """A HiGHS run left behind after a cancel is still running."""
    ABANDONED[:] = [h for h in ABANDONED if h.is_solver_running()]
    return bool(ABANDONED)


def run_highs(h, deadline: float, progress: Callable[[str], None] | None = None, label: str = "HiGHS",
              tick_s: float = 1.0, may_abandon: bool = False) -> Stop:
    """Run HiGHS in its own thread until it stops, the deadline passes or the user presses
    Ctrl-C. Shows a live line every ``tick_s`` (elapsed, best plan, bound, gap). With
    ``may_abandon``, a run that has not honoured a cancel within CANCEL_GRACE_S is left behind."""
    stop = Stop()
    live = stop.live

    def watch(event) -> None:
        d = event.data_out
        live["primal"] = d.mip_primal_bound
        live["dual"] = d.mip_dual_bound
        live["gap"] = d.mip_gap

    # highspy's run lock is shared by every Highs object: a run left behind (ABANDONED) blocks
    # any other start until it stops, so wait for it within the deadline
    while h.is_solver_running() and time.monotonic() < deadline:
        time.sleep(0.02)
    if h.is_solver_running():
        stop.why = "deadline"
        return stop
    h.HandleUserInterrupt = True
    h.cbMipInterrupt.subscribe(watch)
    t0 = time.monotonic()
    last = t0
    cancelled_at = None
    try:
        h.startSolve()
        while True:
            try:
                done, _status = h.wait(0.1)
            except KeyboardInterrupt:
                stop.user = True
                stop.why = "user"
                h.cancelSolve()
                cancelled_at = cancelled_at or time.monotonic()
                continue
            if done:
                break
            now = time.monotonic()
            if stop.why is None and now >= deadline:
                stop.why = "deadline"
                h.cancelSolve()
                cancelled_at = now
            if may_abandon and cancelled_at is not None and now - cancelled_at > CANCEL_GRACE_S:
                stop.abandoned = True
                ABANDONED.append(h)
                break
            if progress is not None and now - last >= tick_s:
                last = now
                progress(_live_line(label, now - t0, live))
    finally:
        if not stop.abandoned:
            h.cbMipInterrupt.unsubscribe(watch)
            h.HandleUserInterrupt = False
    return stop


def _live_line(label: str, elapsed: float, live: dict) -> str:
    primal, dual, gap = live.get("primal"), live.get("dual"), live.get("gap")
    if not live:
        return f"{label}: {elapsed:5.1f} s, solving"
    best = f"best plan {primal:,.2f} USD/month" if _finite(primal) and abs(primal) < 1e20 else "no plan yet"
    bound = f"bound {dual:,.2f}" if _finite(dual) and abs(dual) < 1e20 else "bound -"
    g = f"gap {gap:.2%}" if _finite(gap) and gap < 1e6 else "gap -"
    return f"{label}: {elapsed:5.1f} s, {best}, {bound}, {g}"


def lp_relaxation(m, deadline: float, progress: Callable[[str], None] | None = None,
                  hm: HighsModel | None = None) -> tuple[np.ndarray, float] | None:
    """(column values, objective) of the LP relaxation solved by simplex (a valid lower bound:
    crossover is on), or None if not solved to optimality before the deadline. With ``hm`` (a
    HighsModel of m) it is solved there and hm is left as it was (integer, no solution kept)."""
    own = hm is None
    hm = HighsModel(m) if own else hm
    if hm.abandoned:
        return None
    hm.set_integrality(False)
    try:
        hm.h.setOptionValue("time_limit", max(0.2, deadline - time.monotonic()))
        stop = run_highs(hm.h, deadline, progress, "HiGHS (LP relaxation)")
        if stop.user:
            raise KeyboardInterrupt
        ok = stop.why is None and hm.h.getModelStatus() == hm.hs.HighsModelStatus.kOptimal
        values = hm.values() if ok else None
    finally:
        if not own:
            hm.set_integrality(True)
            hm.h.clearSolver()
    if values is None:
        return None
    if not np.all(np.isfinite(values)):
        return None
    return values, hm.objective(values)


def _lp_rounding(hm: HighsModel, deadline: float) -> tuple[np.ndarray | None, float | None]:
    """LP-rounding start: solve the LP relaxation, ceil the integer columns and complete the
    continuous rest with them fixed. Returns (plan or None, LP bound or None)."""
    h = hm.h
    hm.set_integrality(False)
    try:
        h.setOptionValue("time_limit", max(0.2, deadline - time.monotonic()))
        user = run_highs(h, max(deadline, time.monotonic() + 0.2)).user
        if user:
            raise KeyboardInterrupt
        if h.getModelStatus() != hm.hs.HighsModelStatus.kOptimal:
            return None, None
        lp_obj = h.getInfo().objective_function_value
        x = hm.values()
    finally:
        hm.set_integrality(True)
        h.clearSolver()
    k = hm.int_idx
    if len(k):
        x[k] = np.minimum(np.maximum(np.ceil(x[k] - TOL * np.maximum(1.0, np.abs(x[k]))), hm.lb[k]), hm.ub[k])
    return hm.complete(x, deadline), lp_obj


def solve_highs(m, opts: SolveOptions, deadline: float, starts: list[tuple[str, np.ndarray]] | None = None,
                known_bounds: list[float] | None = None, progress: Callable[[str], None] | None = None,
                hm: HighsModel | None = None, label: str = "HiGHS", cold: bool = False) -> SolveOutcome:
    """Solve the MILP with HiGHS until ``deadline`` and say honestly what was proved.

    ``starts``: complete starting plans (vectors in this model's column order); each is row
    checked, the cheapest feasible one seeds HiGHS and is the fallback plan. ``known_bounds``:
    valid lower bounds from elsewhere (an LP relaxation solved by simplex)."""
    import highspy

    t0 = time.monotonic()
    hm = hm or HighsModel(m)
    if hm.abandoned:
        hm = HighsModel(m)  # the earlier run of this model still holds its HiGHS instance
    h = hm.h
    ms = highspy.HighsModelStatus
    version = highs_version(h)
    notes: list[str] = []
    # HiGHS 1.16 can report an improved objective while getSolution() still holds a start given
    # with setSolution (measured on a tiny pooled model): keep every improving plan it announces
    seen: dict = {}

    def keep(event) -> None:
        obj_now = event.data_out.objective_function_value
        if "obj" not in seen or obj_now < seen["obj"]:
            seen["obj"] = obj_now
            seen["x"] = np.array(event.data_out.mip_solution, dtype=float)

    h.cbMipImprovingSolution.subscribe(keep)
    if opts.threads:
        h.setOptionValue("threads", int(opts.threads))
    h.setOptionValue("random_seed", int(opts.seed))
    h.setOptionValue("mip_rel_gap", float(opts.gap))
    h.setOptionValue("mip_abs_gap", 0.0)
    if opts.mip_heuristic_effort is not None:
        h.setOptionValue("mip_heuristic_effort", float(opts.mip_heuristic_effort))
    bounds = [b for b in (known_bounds or []) if _finite(b)]
    best_x = best_obj = None
    best_label = None
    has_int = len(hm.int_idx) > 0
    if opts.heuristic and has_int and not starts:
        x, lp_obj = _lp_rounding(hm, deadline)
        if lp_obj is not None:
            bounds.append(lp_obj)
        if x is not None:
            starts = [("LP-rounding", x)]
        else:
            notes.append("LP-rounding start found no plan (rounding up broke a row)")
    for start_label, x in starts or []:
        x = hm.snap(x)
        why = hm.violations(x, limit=1)
        if why:
            notes.append(f"{start_label} start breaks this model ({why[0]}); not used")
            continue
        obj = hm.objective(x)
        notes.append(f"{start_label} start: {obj:,.2f} USD/month")
        if best_obj is None or obj < best_obj:
            best_x, best_obj, best_label = x, obj, start_label
    start_obj, start_label = best_obj, best_label
    if best_x is not None:
        sol = highspy.HighsSolution()
        sol.col_value = list(best_x)
        sol.value_valid = True
        h.setSolution(sol)
    h.setOptionValue("time_limit", max(0.2, deadline - time.monotonic()))
    if opts.node_limit is not None:
        h.setOptionValue("mip_max_nodes", int(opts.node_limit))
    stop = run_highs(h, deadline, progress, label, may_abandon=True)
    why, user = stop.why, stop.user
    if stop.abandoned:
        return _abandoned_outcome(hm, opts, stop, seen, bounds, best_x, best_obj, best_label, version, notes, t0)
    h.cbMipImprovingSolution.unsubscribe(keep)
    status = h.getModelStatus()
    if status == ms.kInfeasible and why is None and time.monotonic() < deadline:
        # confirm an infeasibility claim without presolve (see HighsModel.complete): at a 1e-9
        # tolerance HiGHS 1.16's presolve misjudges rows that sit exactly on their bound
        h.setOptionValue("presolve", "off")
        h.setOptionValue("time_limit", max(0.2, deadline - time.monotonic()))
        h.cbMipImprovingSolution.subscribe(keep)
        stop = run_highs(h, deadline, progress, label, may_abandon=True)
        why, user = stop.why, stop.user
        if stop.abandoned:
            return _abandoned_outcome(hm, opts, stop, seen, bounds, best_x, best_obj, best_label, version, notes, t0)
        h.cbMipImprovingSolution.unsubscribe(keep)
        h.setOptionValue("presolve", "choose")
        if h.getModelStatus() != ms.kInfeasible:
            notes.append("HiGHS's presolve called the model infeasible; solved again without presolve")
        status = h.getModelStatus()
    info = h.getInfo()
    sname = "Interrupted by user" if why == "user" else ("Time limit reached" if why == "deadline"
                                                        else h.modelStatusToString(status))
    solver_obj = info.objective_function_value if info.primal_solution_status == 2 else None
    x = hm.values() if info.primal_solution_status == 2 else None
    trusted = True  # the solver's claim of optimality can be believed
    mismatch = False  # HiGHS's values do not belong to the objective it reported
    if x is not None and not np.all(np.isfinite(x)):
        notes.append("HiGHS returned non-finite values; its point is not a plan")
        x, trusted = None, False
    if solver_obj is not None and not _finite(solver_obj):
        notes.append(f"HiGHS reported a non-finite objective ({solver_obj}); its point is not a plan")
        x, trusted = None, False
    if x is not None:
        x = hm.snap(x)
        if abs(hm.objective(x) - solver_obj) > TOL * hm.objective_scale(x):
            sx = seen.get("x")
            if sx is not None and len(sx) == hm.n and np.all(np.isfinite(sx)) and \
                    abs(hm.objective(hm.snap(sx)) - solver_obj) <= TOL * hm.objective_scale(sx):
                x = hm.snap(sx)
            else:
                notes.append(f"HiGHS's solution costs {hm.objective(x):,.4f}, not the {solver_obj:,.4f} it reported")
                trusted = False
                mismatch = True
        why_bad = hm.violations(x, limit=1)
        if why_bad:
            polished = hm.complete(x, max(deadline, time.monotonic() + 1.0))
            if polished is None:
                notes.append(f"HiGHS's point breaks a row beyond the tolerance ({why_bad[0]}); not a plan")
                x, trusted = None, False
            else:
                notes.append("HiGHS's point missed a row by more than the tolerance; its continuous part was "
                             "re-solved with its whole numbers fixed")
                x = polished
    obj = hm.objective(x) if x is not None else None
    if x is not None and best_obj is not None and best_obj < obj - TOL * hm.objective_scale(x):
        if status == ms.kOptimal:
            notes.append(f"the {best_label} start ({best_obj:,.2f}) is cheaper than the plan HiGHS proved optimal "
                         f"({obj:,.2f}); not optimal")
            trusted = False
        x, obj = best_x, best_obj
    elif x is None and best_x is not None:
        x, obj = best_x, best_obj
        best_label = best_label or "start"
        notes.append(f"HiGHS returned no better plan; the {best_label} start is kept")
    used_start = x is not None and best_x is not None and x is best_x
    # bounds: the solver's dual bound of this form, and any known valid bound
    if has_int:
        db = info.mip_dual_bound
        if _finite(db) and abs(db) < 1e50:
            bounds.append(db)
    elif status == ms.kOptimal and solver_obj is not None and trusted:
        bounds.append(solver_obj)
    bound = None
    if bounds:
        bound = max(bounds)
        if obj is not None and bound > obj + TOL * max(1.0, abs(obj)):
            valid = [b for b in bounds if b <= obj + TOL * max(1.0, abs(obj))]
            notes.append(f"a bound ({bound:,.4f}) lies above a checked plan ({obj:,.4f}): stages disagree; the "
                         "lowest consistent bound is kept and the plan is not called optimal")
            trusted = False
            bound = min(valid) if valid else None
    gap = None
    if obj is not None and bound is not None:
        gap = relative_gap(obj, bound)
        if abs(obj) <= TOL and abs(bound) <= TOL:
            gap = 0.0
    if user:
        result = "interrupted"
    elif status == ms.kInfeasible or (status == ms.kUnboundedOrInfeasible and x is None):
        result = "infeasible"
    elif x is None:
        result = "no_plan"
    elif status == ms.kOptimal and trusted and gap is not None and gap <= opts.gap + TOL:
        result = "optimal"
    else:
        result = "feasible"
    out = SolveOutcome(status=result, solver="highs", solver_version=version, values=x, objective=obj, bound=bound,
                       gap=gap, time_s=time.monotonic() - t0, model_status=sname, start_objective=start_obj,
                       start=start_label if used_start else None,
                       nodes=(int(info.mip_node_count) if info.mip_node_count >= 0 else None) if has_int else 0, notes=notes, interrupted=user)
    solve_error = status == ms.kSolveError and best_x is not None
    if solve_error:
        # measured with HiGHS 1.16: a MIP given a feasible start with setSolution ended in "Solve
        # error" (eu_saas, replica form) while the same model solved cold is optimal
        notes.append("HiGHS stopped with a solve error after being given a start")
    if (mismatch or solve_error) and not cold and not user and time.monotonic() < deadline - 0.2:
        # HiGHS 1.16 can report the objective of a better plan while getSolution() holds the start
        # given with setSolution (measured on tiny instances, up to 2.8x the optimum): solve
        # again without a start in the time left and keep the cheaper consistent plan
        again = solve_highs(m, SolveOptions(**{**opts.__dict__, "heuristic": False}), deadline, None,
                            list(known_bounds or []) + ([bound] if bound is not None else []), progress, None,
                            label, cold=True)
        again.notes = notes + ["solved again without a start"] + again.notes
        again.start_objective = start_obj
        again.time_s = time.monotonic() - t0
        if again.values is not None and (obj is None or again.objective < obj - TOL * max(1.0, abs(obj))
                                         or again.status == "optimal" and leq(again.objective, obj)):
            return again  # cheaper, or as cheap with a proof the started run could not give
        out.notes.append("solved again without a start: no cheaper plan")
        if again.bound is not None and (out.bound is None or again.bound > out.bound) and obj is not None \
                and again.bound <= obj + TOL * max(1.0, abs(obj)):
            out.bound = again.bound
            out.gap = relative_gap(obj, out.bound)
    return out


def _abandoned_outcome(hm: HighsModel, opts: SolveOptions, stop: Stop, seen: dict, bounds: list[float],
                       best_x, best_obj, best_label, version: str, notes: list[str], t0: float) -> SolveOutcome:
    """The outcome of a run left behind after a cancel it did not honour in time: HiGHS's model
    must not be read while it runs, so the plan is the last improving solution it announced
    (row checked) or the best start, and the bound its last reported dual bound. The model is
    marked abandoned: nothing may touch its HiGHS instance again."""
    hm.abandoned = True
    notes.append(f"HiGHS did not stop within {CANCEL_GRACE_S:g} s of the "
                 f"{'interrupt' if stop.user else 'deadline'}; its last announced plan and bound are used")
    x = obj = None
    sx = seen.get("x")
    if sx is not None and len(sx) == hm.n and np.all(np.isfinite(sx)):
        sx = hm.snap(sx)
        if hm.feasible(sx):
            x, obj = sx, hm.objective(sx)
    start = None
    if best_x is not None and (obj is None or best_obj < obj):
        x, obj, start = best_x, best_obj, best_label
    db = stop.live.get("dual")
    if _finite(db) and abs(db) < 1e50:
        bounds = bounds + [db]
    bound = max(bounds) if bounds else None
    if bound is not None and obj is not None and bound > obj + TOL * max(1.0, abs(obj)):
        valid = [b for b in bounds if b <= obj + TOL * max(1.0, abs(obj))]
        bound = min(valid) if valid else None
    gap = relative_gap(obj, bound) if obj is not None and bound is not None else None
    status = "interrupted" if stop.user else ("feasible" if x is not None else "no_plan")
    return SolveOutcome(status=status, solver="highs", solver_version=version, values=x, objective=obj, bound=bound,
                        gap=gap, time_s=time.monotonic() - t0,
                        model_status="Interrupted by user" if stop.user else "Time limit reached",
                        start_objective=best_obj, start=start, nodes=None, notes=notes, interrupted=stop.user)


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


def solve_cbc(m, hm: HighsModel, opts: SolveOptions, deadline: float) -> SolveOutcome:
    """CBC on an MPS copy of the model, in a child process killed at the deadline (CBC's own
    ``-sec`` is given 75 % of the time left: it was measured overrunning its limit by 77 s, and
    at 60 s limits it was still writing its solution when the child was killed)."""
    import subprocess
    import tempfile

    t0 = time.monotonic()
    path = cbc_path()
    if path is None:
        from planner.errors import InputError

        raise InputError("--solver cbc: no CBC binary found. To fix: install one (pip install 'pulp[cbc]' or "
                         "apt-get install coinor-cbc) or use --solver highs", file="(command line)")
    left = max(1.0, deadline - t0)
    notes: list[str] = []
    user = False
    with tempfile.TemporaryDirectory(prefix="planner-cbc-") as tmp:
        mps, sol = os.path.join(tmp, "model.mps"), os.path.join(tmp, "model.sol")
        prob = m.to_pulp()
        vs, vnames, cnames, _obj = prob.writeMPS(mps, rename=1)
        args = [path, mps, "-sec", f"{max(1.0, 0.75 * left):.1f}", "-ratio", f"{opts.gap}",
                "-primalT", f"{TOL:g}", "-integerT", f"{TOL:g}"]
        if opts.threads:
            args += ["-threads", str(opts.threads)]
        if opts.node_limit is not None:
            args += ["-maxNodes", str(opts.node_limit)]
        args += ["-randomSeed", str(opts.seed + 1), "-solve", "-printingOptions", "all", "-solution", sol]
        out = None if opts.msg else subprocess.DEVNULL
        proc = subprocess.Popen(args, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            notes.append(f"CBC killed at the wall-clock limit ({left:.0f} s)")
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
            user = True
        elapsed = time.monotonic() - t0
        if user or not os.path.exists(sol):
            return SolveOutcome("interrupted" if user else "no_plan", "cbc", "CBC", None, None, None, None, elapsed,
                                "Interrupted by user" if user else "no solution file", notes=notes, interrupted=user)
        reader = pulp.COIN_CMD(path=path, msg=False)
        status_code, values, _dj, _pi, _slack, sol_status = reader.readsol_MPS(sol, prob, vs, vnames, cnames)
    x = hm.snap(hm.vector(values))
    if sol_status == pulp.LpSolutionOptimal:
        status = "optimal"
    elif sol_status == pulp.LpSolutionIntegerFeasible:
        status = "feasible"
    elif sol_status == pulp.LpSolutionInfeasible or status_code == pulp.LpStatusInfeasible:
        status = "infeasible"
    else:
        status = "no_plan"
    if status in ("optimal", "feasible"):
        # CBC stopped at its limit can hand back a point that is not an integer plan (measured:
        # fractional instance counts at 20 workloads x 10 sites); check it row by row.
        why = hm.violations(x, limit=1)
        if why:
            # CBC's solution file carries fewer digits than the tolerance: keep its whole numbers
            # and re-solve the continuous rest (an LP) before judging it
            polished = hm.complete(x, max(deadline, time.monotonic() + 1.0))
            if polished is None:
                notes.append(f"CBC's point is not a plan ({why[0]})")
                status = "no_plan"
            else:
                x = polished
    plan = x if status in ("optimal", "feasible") else None
    obj = hm.objective(plan) if plan is not None else None
    # CBC's "optimal" means proved within -ratio; it hands back no dual bound to quote
    return SolveOutcome(status, "cbc", "CBC (COIN-OR)", plan, obj, None, None, elapsed, pulp.LpStatus[status_code],
                        notes=notes + ["CBC reports no dual bound here; the gap is only known when it proves optimality"])
