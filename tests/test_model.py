"""Model-building tests: inspect the LP that PuLP builds, without trusting a solve."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from planner import api
from planner.derive.candidates import build_candidates
from planner.optimise.model import build_model

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
    assert any(n.startswith("nplus1__support_chat__") for n in names)


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
    assert all(v.cat == "Integer" for v in m.r.values())
    pooled = build_model(cs, "pooled")
    assert all(v.cat == "Continuous" for v in pooled.r.values())
    assert all(v.cat == "Integer" for v in pooled.n.values())


def test_model_size_is_sum_over_allowed_pairs_not_product(eu):
    res, cs, m = eu
    n_offers = sum(len(s.offers) for s in res.sites.values())
    full_product = len(res.scenario.workloads) * n_offers * len(m.slots) * 5
    assert len(m.r) < full_product / 3
    assert len(cs.exclusions) > 0


def test_nplus1_rows_are_linear_in_sites(eu):
    """One total row per slot plus one row per candidate site, each row short: not the quadratic
    'sum over every other site' form."""
    _res, cs, m = eu
    w = "support-chat"
    sites = {c.site for c in cs.triples if c.workload == w}
    fam = Counter(f for (f, label) in m.rows.values() if label.startswith(w))
    assert fam["nplus1"] == len(sites) * len(m.slots)
    assert fam["nplus1_total"] == len(m.slots)
    for c in m.prob.constraints():
        if c.name.startswith("nplus1__support_chat__"):
            site = m.rows[c.name][1].split("__")[1]
            own = sum(len(x.tiers) - ("spot" in x.tiers) for x in cs.triples if x.workload == w and x.site == site)
            assert len(c) == own + 1  # T[w,t] and this site's own non-spot replicas


def test_every_family_is_present(eu):
    _res, _cs, m = eu
    fams = {f for f, _ in m.rows.values()}
    assert {"route", "split", "serve", "capacity", "instances", "power_def", "power_cap", "site_open",
            "nplus1", "nplus1_total", "quota"} <= fams


def test_capacity_row_uses_per_class_throughput(eu):
    """capacity: sum_k y/rho_k - sum r <= 0, with rho from the throughput model per class."""
    _res, _cs, m = eu
    (w, s, o, t), c = next(((k[0], k[1], k[2], k[4]), m.cand[k[:3]]) for k in m.r if k[0] == "support-chat")
    row = next(r for r in m.prob.constraints() if r.name == f"capacity__{'__'.join([w, o, t]).replace('-', '_')}")
    coefs = {v.name: a for v, a in row.items()}
    for lc in m.cs.loads[w].classes:
        key = (w, lc.key, s, o, t)
        if key in m.y:
            assert coefs[m.y[key].name] == pytest.approx(1.0 / c.rps[lc.key].rps)


def test_lp_file_writes(tmp_path, eu):
    _res, _cs, m = eu
    path = tmp_path / "model.lp"
    m.prob.writeLP(str(path))
    text = path.read_text()
    assert "power_cap__fra_dc1__morning" in text
