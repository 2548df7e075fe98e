"""Model-building tests: inspect the model (its arrays and the PuLP problem made from them),
without trusting a solve."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from planner import api
from planner.derive.candidates import build_candidates
from planner.optimise.model import build_model, clean

NAME = re.compile(r"^[a-z0-9_]+$")


@pytest.fixture(scope="module")
def eu():
    res = api.load_scenario("workloads/eu_saas.yaml")
    cs = build_candidates(res)
    return res, cs, build_model(cs, "replica")


def test_names_are_pulp_safe_and_readable(eu):
    _res, _cs, m = eu
    for v in m.prob.variables():
        assert NAME.match(v.name), v.name
    names = [c.name for c in m.prob.constraints()]
    assert all(NAME.match(n) for n in names)
    assert len(set(names)) == len(names)
    assert "power_cap__fra_dc1__morning" in names
    assert any(n.startswith("fo_capacity__support_chat__") for n in names)


def test_variables_exist_only_for_candidates(eu):
    _res, cs, m = eu
    slots = len(m.slots)
    assert len(m.r) == sum(len(c.tiers) for c in cs.triples) * slots
    keys = {c.key for c in cs.triples}
    assert {(w, s, o) for (w, s, o, _tau, _t) in m.r} <= keys
    assert {(w, s, o) for (w, _k, s, o, _t) in m.y} <= keys
    # routes: only allowed (workload, user region, site) pairs, one share per slot
    allowed = {(w, u, s) for w, us in cs.routes.items() for u, ss in us.items() for s in ss}
    assert {(w, u, s) for (w, u, s, _t) in m.x} == allowed
    # integrality: replicas and instances integer in the replica form, replicas continuous in pooled
    assert all(m.col_kind[v] == "I" for v in m.r.values())
    pooled = build_model(cs, "pooled")
    assert all(pooled.col_kind[v] == "C" for v in pooled.r.values())
    assert all(pooled.col_kind[v] == "I" for v in pooled.n.values())


def test_model_size_is_sum_over_allowed_pairs_not_product(eu):
    res, cs, m = eu
    n_offers = sum(len(s.offers) for s in res.sites.values())
    full_product = len(res.scenario.workloads) * n_offers * len(m.slots) * 5
    assert len(m.r) < full_product / 3
    assert len(cs.exclusions) > 0


def test_failover_rows_are_one_flow_per_lost_site_and_slot(eu):
    """Exact N+1: per (lost site, slot) a routing row per protected (class, user region), a split
    row per (class, surviving site) and a capacity row per surviving (site, offer) - linear in the
    candidate sites of the workload, never all sites x all sites. Spot never counts."""
    _res, cs, m = eu
    w = "support-chat"
    sites = sorted({c.site for c in cs.triples if c.workload == w})
    fam = Counter((f, label.split("__")[1]) for (f, label) in m.rows.values() if label.startswith(w + "__"))
    busy_slots = [t for t in m.slots if cs.loads[w].peak(t) > 0]
    for lost in sites:
        routes = fam[("fo_route", lost)]
        # one routing row per (class, group of user regions with the same failover sites)
        groups = {(k, tuple(ss)) for (ww, k, _u), ss in cs.failover_sites.items() if ww == w}
        assert routes == len(groups) * len(busy_slots)
    for c in m.prob.constraints():
        if c.name.startswith("fo_capacity__support_chat__"):
            for v, a in c.items():
                assert not v.name.startswith("r_") or a == -1.0
            r_names = {v.name for v, a in c.items() if v.name.startswith("r_")}
            spot = {m.col_name(m.r[k]) for k in m.r if k[3] == "spot"}
            assert not (r_names & spot), "spot replicas never count in failover"
    # a lost site's own columns never appear in its scenario
    for (_w, lost, _k, _u, sid, _t) in m.fz:
        assert sid != lost
    for (_w, lost, _k, sid, _o, _t) in m.fq:
        assert sid != lost


def test_failover_flows_only_to_sites_where_the_model_holds_capacity(eu):
    """A model of some of a workload's candidates (a fix-and-optimise group) routes failover
    only to the sites of those candidates: a failover site with no offer of the workload in the
    model could carry nothing, so it gets no flow columns (fewer rows, the same plans)."""
    _res, cs, m = eu
    w = "support-chat"
    by_site: dict[str, list] = {}
    for c in cs.triples:
        if c.workload == w:
            by_site.setdefault(c.site, []).append(c)
    sites = sorted(by_site)
    assert len(sites) >= 3
    keep = sites[:-1]
    whole = {sid for (ww, _lost, _k, _u, sid, _t) in m.fz if ww == w}
    assert sites[-1] in whole  # the whole model routes failover there
    from planner.optimise import lns

    sub = build_model(lns._sub_cs(cs, [c for sid in keep for c in by_site[sid]]), "replica",
                      workloads=[w])
    flows = {sid for (_w, _lost, _k, _u, sid, _t) in sub.fz}
    assert flows and flows <= set(keep)
    assert {lost for (_w, lost, _k, _u, _sid, _t) in sub.fz} <= set(keep)


def test_failover_uses_each_class_own_rate(eu):
    """fo_capacity: sum_k fq/rho_k <= non-spot replicas, with rho per class (class-aware)."""
    _res, _cs, m = eu
    (w, lost, k, s, o, t) = next(key for key in m.fq if key[0] == "support-chat")
    c = m.cand[(w, s, o)]
    row = next(r for r in m.prob.constraints() if r.name == f"fo_capacity__{clean('__'.join([w, lost, o, t]))}")
    coefs = {v.name: a for v, a in row.items()}
    assert coefs[m.col_name(m.fq[(w, lost, k, s, o, t)])] == pytest.approx(1.0 / c.rps[k].rps)


def test_every_family_is_present(eu):
    _res, _cs, m = eu
    fams = {f for f, _ in m.rows.values()}
    assert {"route", "split", "serve", "capacity", "instances", "power_def", "power_cap", "site_open",
            "fo_route", "fo_split", "fo_capacity", "nplus1_cut", "quota"} <= fams


def test_capacity_row_uses_per_class_throughput(eu):
    """capacity: sum_k y/rho_k - sum r <= 0, with rho from the throughput model per class."""
    _res, _cs, m = eu
    (w, s, o, t), c = next(((k[0], k[1], k[2], k[4]), m.cand[k[:3]]) for k in m.r if k[0] == "support-chat")
    row = next(r for r in m.prob.constraints() if r.name == f"capacity__{'__'.join([w, o, t]).replace('-', '_')}")
    coefs = {v.name: a for v, a in row.items()}
    for lc in m.cs.loads[w].classes:
        key = (w, lc.key, s, o, t)
        if key in m.y:
            assert coefs[m.col_name(m.y[key])] == pytest.approx(1.0 / c.rps[lc.key].rps)


def test_lp_file_writes(tmp_path, eu):
    _res, _cs, m = eu
    path = tmp_path / "model.lp"
    m.prob.writeLP(str(path))
    text = path.read_text()
    assert "power_cap__fra_dc1__morning" in text


@pytest.mark.parametrize("scenario", ["tests/data/repro/nplus1_classes.yaml", "tiny-nplus1"])
def test_replica_nplus1_cut_keeps_the_exact_optimum(scenario, monkeypatch, tmp_path):
    """The cuts of define_replica_cuts are valid for the exact N+1 promise: the replica form
    reaches the same optimum with and without them (they only tighten the LP relaxation)."""
    import yaml

    from planner.optimise import model as model_mod
    from planner.optimise.strategy import solve_plan

    if scenario == "tiny-nplus1":
        doc = yaml.safe_load(Path("tests/data/tiny.yaml").read_text())
        doc["workloads"][0]["redundancy"] = {"mode": "n_plus_1"}
        doc["workloads"][0]["demand"][0]["peak_rps"] = 20.0
        path = tmp_path / "tiny_nplus1.yaml"
        path.write_text(yaml.safe_dump(doc))
        scenario = path
    cs = build_candidates(api.load_scenario(scenario))
    with_cuts = solve_plan(cs, api.SolveOptions(gap=0.0, time_limit_s=60), "replica")
    m = build_model(cs, "replica")
    assert any(f == "nplus1_cut" for f, _ in m.rows.values())
    monkeypatch.setattr(model_mod, "FAMILIES", tuple(f for f in model_mod.FAMILIES
                                                      if f is not model_mod.define_replica_cuts))
    assert not any(f.startswith(("nplus1_cut", "replica_cut")) for f, _ in build_model(cs, "replica").rows.values())
    without = solve_plan(cs, api.SolveOptions(gap=0.0, time_limit_s=60), "replica")
    assert with_cuts.solve.status == without.solve.status == "optimal"
    assert with_cuts.solve.objective == pytest.approx(without.solve.objective, rel=1e-9)


def test_arrays_and_pulp_problem_are_the_same_model(eu):
    """The arrays HiGHS gets and the PuLP problem (CBC, --write-lp) hold the same rows, columns,
    bounds, integrality and objective; no row repeats a column."""
    import numpy as np

    _res, _cs, m = eu
    a = m.arrays()
    prob = m.to_pulp()
    cols = prob.variables()
    assert len(cols) == a.n == m.n_cols and len(prob.constraints()) == m.n_rows
    pos = {n: j for j, n in enumerate(m.col_names())}
    for v in cols:
        j = pos[v.name]
        assert (v.lowBound if v.lowBound is not None else -np.inf) == a.lb[j]
        assert (v.upBound if v.upBound is not None else np.inf) == a.ub[j]
        assert (v.cat == "Integer") == bool(a.is_int[j])
    obj = np.zeros(a.n)
    for v, c in prob.objective.items():
        obj[pos[v.name]] = c
    assert np.allclose(obj, a.cost, rtol=0, atol=0)
    for i, c in enumerate(prob.constraints()):
        name = c.name
        assert name == m.row_name(i)
        lo, hi = a.starts[i], a.starts[i + 1]
        row = dict(zip(a.index[lo:hi].tolist(), a.value[lo:hi].tolist(), strict=True))
        assert len(row) == hi - lo, f"row {name} repeats a column"
        assert {pos[v.name]: x for v, x in c.items()} == row
        assert (c.getLb() if c.getLb() is not None else -np.inf) == a.row_lo[i]
        assert (c.getUb() if c.getUb() is not None else np.inf) == a.row_hi[i]


def test_the_failover_build_checks_its_deadline_per_lost_site(eu, monkeypatch):
    """One N+1 workload with hundreds of candidate sites has millions of failover columns: the
    build must be able to stop inside one workload's failover block, so the deadline is checked
    for every (slot, lost site), not only between workloads."""
    import time

    from planner.optimise import model as model_mod

    _res, cs, _m = eu
    by_w = cs.by_workload()
    w = "support-chat"
    assert by_w[w]
    m = build_model(cs.for_group(by_w[w], [w]), "replica", workloads=[w])
    lost = {key[1] for key in m.fz}
    slots = {key[5] for key in m.fz}
    calls = []
    monkeypatch.setattr(model_mod.PlacementModel, "check_deadline", lambda self: calls.append(1))
    m2 = build_model(cs.for_group(by_w[w], [w]), "replica", workloads=[w])
    assert m2.n_cols == m.n_cols
    assert len(calls) >= len(lost) * len(slots)
    monkeypatch.undo()
    # and a deadline that passes inside the block stops the build there
    real = model_mod.PlacementModel.add_row
    seen = {"fo": 0}

    def slow_row(self, family, label, pairs, sense, rhs):
        if family == "fo_route":
            seen["fo"] += 1
            if seen["fo"] == 1:
                self.deadline = time.monotonic() - 1.0  # the deadline passes during the block
        return real(self, family, label, pairs, sense, rhs)

    monkeypatch.setattr(model_mod.PlacementModel, "add_row", slow_row)
    with pytest.raises(model_mod.BuildDeadline):
        build_model(cs.for_group(by_w[w], [w]), "replica", time.monotonic() + 60, workloads=[w])
    assert seen["fo"] < sum(1 for fam in m.row_family if fam == "fo_route")
