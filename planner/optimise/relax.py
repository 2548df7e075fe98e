"""The LP relaxation bound of the default formulation (issue 9's ``lp`` benchmark method).

The model the default solve would build (``strategy.choose_integrality(cs, "auto")`` and
``model.build_model``), with integrality relaxed, solved by HiGHS (simplex, crossover on) until
the deadline. Its optimal value is a valid lower bound on every plan of that model; a run stopped
by the time limit gives no bound (``objective`` None).
"""

from __future__ import annotations

import time

import numpy as np

from planner.derive.candidates import CandidateSet
from planner.optimise.backends import HighsModel, SolveOptions, run_highs
from planner.optimise.model import BuildDeadline, build_model
from planner.optimise.strategy import choose_integrality


def lp_bound(cs: CandidateSet, options: SolveOptions | None = None, integrality: str = "auto") -> dict:
    """{status: optimal | time_limit | infeasible | not_built | <HiGHS status>, objective (the bound,
    USD/month, or None), form, build_s, solve_s}."""
    opts = options or SolveOptions()
    t0 = opts.started_at if opts.started_at is not None else time.monotonic()
    deadline = t0 + opts.time_limit_s
    form = choose_integrality(cs, integrality)
    out = {"status": "not_built", "objective": None, "form": form, "build_s": None, "solve_s": None}
    t = time.monotonic()
    try:
        m = build_model(cs, form, deadline)
        hm = HighsModel(m)
    except BuildDeadline:
        out["build_s"] = time.monotonic() - t
        return out
    out["build_s"] = time.monotonic() - t
    hm.set_integrality(False)
    if opts.threads:
        hm.h.setOptionValue("threads", int(opts.threads))
    hm.h.setOptionValue("time_limit", max(0.2, deadline - time.monotonic()))
    t = time.monotonic()
    stop = run_highs(hm.h, max(deadline, time.monotonic() + 0.2))
    out["solve_s"] = time.monotonic() - t
    if stop.user:
        raise KeyboardInterrupt
    status = hm.h.getModelStatus()
    S = hm.hs.HighsModelStatus
    if status == S.kOptimal:
        x = hm.values()
        if np.all(np.isfinite(x)):
            out["status"] = "optimal"
            out["objective"] = hm.objective(x)
        else:
            out["status"] = "no_bound"
    elif status == S.kInfeasible:
        out["status"] = "infeasible"
    elif stop.why == "deadline" or status == S.kTimeLimit:
        out["status"] = "time_limit"
    else:
        out["status"] = hm.h.modelStatusToString(status)
    return out
