"""The cycle collector is paused only while a bulk stage runs, and always restored."""

from __future__ import annotations

import gc

import pytest

from planner import api
from planner.gcpause import gc_paused, paused


def test_paused_restores_the_collector_even_on_error_and_when_nested():
    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
        with paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not re-enable what the outer paused
    assert gc.isenabled()
    with pytest.raises(ValueError), paused():
        raise ValueError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()  # a collector the caller turned off stays off
    finally:
        gc.enable()


def test_the_bulk_stages_run_paused_and_leave_the_collector_on():
    seen = []

    @gc_paused
    def stage(x: int) -> int:
        seen.append(gc.isenabled())
        return x + 1

    assert stage(1) == 2 and seen == [False]
    res = api.load_scenario("tests/data/tiny.yaml")
    plan = api.solve(res, api.SolveOptions(time_limit_s=20))
    assert plan.data["verification"]["ok"]
    assert gc.isenabled()


def test_fix_and_optimise_unfreezes_what_it_froze_and_only_that():
    import time

    from planner.baselines import build_plan
    from planner.derive.candidates import build_candidates
    from planner.optimise import lns

    cs = build_candidates(api.load_scenario("tests/data/tiny.yaml"))
    start = build_plan(cs, "greedy")
    obj = start.solve.objective
    start.solve = None
    assert gc.get_freeze_count() == 0
    lns.improve(cs, start, obj, time.monotonic() + 2, api.SolveOptions())
    assert gc.get_freeze_count() == 0
    gc.freeze()  # a caller's own frozen objects stay frozen
    try:
        frozen = gc.get_freeze_count()
        lns.improve(cs, start, obj, time.monotonic() + 2, api.SolveOptions())
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
