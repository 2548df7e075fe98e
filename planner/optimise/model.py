"""The placement MILP (PuLP). One ``define_<family>()`` per constraint family, its maths in the
docstring. Variables exist only for candidate triples and allowed routes (see candidates.py).

Notation
--------
w workload, k load class of w (query class, or escalated from a smaller workload), u user region,
s site, o offer (instance type at a site; on-prem: one GPU), t UTC slot, tau pricing tier.
Baseline tiers (paid every hour of the month): owned, bought (on-prem), reserved (cloud).
Burst tiers (paid per slot hour): on_demand, spot.

- ``x[w,u,s,t]`` in [0,1] share of w's traffic from u served at s in slot t (routing may change
                          over the day: baseline sites at night, overflow to cloud at the peak)
- ``y[w,k,s,o,t]`` >= 0   requests/s of class k served on offer o at s in slot t
- ``r[w,s,o,tau,t]`` >= 0 replicas of w's model (integer in the ``replica`` formulation,
                          continuous in ``pooled``)
- ``n[s,o,tau]`` integer  baseline instances (whole month), ``n[s,o,tau,t]`` burst instances
- ``open[s]`` binary      declared (on-prem/edge) site open
- ``used[w,s]`` binary    w has capacity at s (only with min_sites > 1)
- ``P[s,t]``              facility power (kW) at a declared site
- ``fz[w,l,k,u,s,t]``     failover: rps of protected class k from u served at s while site l is lost
- ``fq[w,l,k,s,o,t]``     failover: rps of protected class k on offer o at s while site l is lost
- ``R[w,t]``              non-spot replicas of an N+1 workload (a valid cut, see define_replica_cuts)

Parameters: rho[w,k,o] requests/s one replica sustains for class k (throughput model);
g[w,o] GPUs per replica; G[o] GPUs per instance; L[w,k,u,t] peak GPU-bound rate; H_t hours a
month slot t occurs (= slot hours x hours_per_month / 24).
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from planner.derive.candidates import BASELINE_TIERS, Candidate, CandidateSet, protected_classes
from planner.derive.demand import hours_per_month_of_slot, mix_rate, response_gb
from planner.derive.power import cloud_gpu_kw, gpu_kw_factor
from planner.tolerance import TOL, ceil_tol

_NAME_BAD = re.compile(r"[^a-z0-9_]+")


def clean(text: str) -> str:
    """A PuLP-safe name fragment: lower case, [a-z0-9_] only."""
    return _NAME_BAD.sub("_", text.lower()).strip("_")


#: row senses (the same numbers as PuLP's)
LE, EQ, GE = -1, 0, 1
#: column kinds
CONT, INT, BIN = "C", "I", "B"


@dataclass
class ModelArrays:
    """The model as arrays: what HiGHS takes in one call (CSR rows), and what the row check reads."""

    lb: np.ndarray
    ub: np.ndarray
    is_int: np.ndarray
    cost: np.ndarray
    offset: float
    row_lo: np.ndarray
    row_hi: np.ndarray
    starts: np.ndarray  # CSR row starts (len rows + 1)
    index: np.ndarray  # column of each nonzero
    value: np.ndarray  # coefficient of each nonzero

    @property
    def n(self) -> int:
        return len(self.lb)

    @property
    def row_of(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.row_lo)), np.diff(self.starts))


@dataclass
class PlacementModel:
    """The MILP as index tables and arrays. A decision store (``x``, ``y``, ``r``, ...) maps a
    decision key to its column number; each family appends its rows as (column, coefficient)
    lists. :meth:`arrays` hands the whole matrix to HiGHS; :meth:`to_pulp` produces the same
    problem as a PuLP model (CBC, ``--write-lp``, inspection) with names from the index tables."""

    cs: CandidateSet
    integrality: str  # "replica" or "pooled"
    workloads: list = field(default_factory=list)  # the workloads modelled (all, or one block)
    #: GPUs held by replicas of workloads outside the model, (site, offer, tier, slot) -> GPUs: the
    #: instances and power they need stay in the model (planner.optimise.lns)
    background: dict = field(default_factory=dict)
    x: dict = field(default_factory=dict)
    y: dict = field(default_factory=dict)
    r: dict = field(default_factory=dict)
    n: dict = field(default_factory=dict)
    open: dict = field(default_factory=dict)
    used: dict = field(default_factory=dict)
    T: dict = field(default_factory=dict)
    P: dict = field(default_factory=dict)
    fz: dict = field(default_factory=dict)
    fq: dict = field(default_factory=dict)
    cand: dict = field(default_factory=dict)  # (w, s, o) -> Candidate
    offers: dict = field(default_factory=dict)  # (s, o) -> Offer
    mix: dict = field(default_factory=dict)  # (w, t) -> load of each of w's classes (cache of class_mix)
    slots: list = field(default_factory=list)
    H: dict = field(default_factory=dict)  # slot -> hours per month
    deadline: float | None = None  # time.monotonic() by which the build must be done
    name: str = "placement"
    # columns
    col_lb: list = field(default_factory=list)
    col_ub: list = field(default_factory=list)
    col_kind: list = field(default_factory=list)
    col_tag: list = field(default_factory=list)  # (prefix, number within its store): the column's name
    # rows
    row_family: list = field(default_factory=list)
    row_label: list = field(default_factory=list)
    row_sense: list = field(default_factory=list)
    row_rhs: list = field(default_factory=list)
    row_len: list = field(default_factory=list)
    nz_col: list = field(default_factory=list)
    nz_val: list = field(default_factory=list)
    objective: list = field(default_factory=list)  # (column, coefficient) pairs
    _arrays: ModelArrays | None = None

    # ------------------------------------------------------------------ building
    def add_row(self, family: str, label: str, pairs, sense: int, rhs: float) -> None:
        """One row: sum of coefficient x column over ``pairs`` (sense) rhs."""
        if not isinstance(pairs, list):
            pairs = list(pairs)
        cols = [j for j, _a in pairs]
        self.nz_col.extend(cols)
        self.nz_val.extend(a for _j, a in pairs)
        self.row_len.append(len(cols))
        self.row_family.append(family)
        self.row_label.append(label)
        self.row_sense.append(sense)
        self.row_rhs.append(float(rhs))

    def var(self, store: dict, key, prefix: str, low=0.0, up=None, cat=CONT) -> int:
        j = len(self.col_lb)
        self.col_tag.append((prefix, len(store)))
        self.col_lb.append(low)
        self.col_ub.append(up)
        self.col_kind.append(cat)
        store[key] = j
        return j

    def set_objective(self, pairs) -> None:
        self.objective = list(pairs)
        self._arrays = None

    def by_workload(self, store: str, w: str) -> list:
        """((key without the workload), column) pairs of one workload in a store, grouped once."""
        cache = self.__dict__.setdefault("_by_w", {})
        if store not in cache:
            grouped: dict[str, list] = defaultdict(list)
            for key, v in getattr(self, store).items():
                grouped[key[0]].append((key[1:], v))
            cache[store] = grouped
        return cache[store].get(w, [])

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BuildDeadline(f"the model was not built within the time limit ({len(self.row_family):,} rows "
                                "so far)")

    def replica_cat(self) -> str:
        return INT if self.integrality == "replica" else CONT

    # ------------------------------------------------------------------ reading
    @property
    def n_cols(self) -> int:
        return len(self.col_lb)

    @property
    def n_rows(self) -> int:
        return len(self.row_family)

    def arrays(self) -> ModelArrays:
        """The whole model as arrays (cached): bounds, integrality, objective, CSR rows."""
        if self._arrays is not None:
            return self._arrays
        inf = math.inf
        n = self.n_cols
        lb = np.array([-inf if v is None else float(v) for v in self.col_lb], dtype=float)
        ub = np.array([inf if v is None else float(v) for v in self.col_ub], dtype=float)
        kind = np.array(self.col_kind, dtype=object) if n else np.zeros(0, dtype=object)
        is_int = (kind == INT) | (kind == BIN) if n else np.zeros(0, dtype=bool)
        cost = np.zeros(n)
        if self.objective:
            oc = np.fromiter((j for j, _a in self.objective), dtype=np.int64, count=len(self.objective))
            ov = np.fromiter((a for _j, a in self.objective), dtype=float, count=len(self.objective))
            np.add.at(cost, oc, ov)
        sense = np.array(self.row_sense, dtype=np.int8)
        rhs = np.array(self.row_rhs, dtype=float)
        row_lo = np.where(sense == LE, -inf, rhs)
        row_hi = np.where(sense == GE, inf, rhs)
        index = np.array(self.nz_col, dtype=np.int64)
        value = np.array(self.nz_val, dtype=float)
        lens = np.array(self.row_len, dtype=np.int64)
        keep = value != 0
        if not keep.all():
            row_of = np.repeat(np.arange(len(lens)), lens)
            index, value = index[keep], value[keep]
            lens = np.bincount(row_of[keep], minlength=len(lens))
        starts = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=starts[1:])
        self._arrays = ModelArrays(lb=lb, ub=ub, is_int=is_int, cost=cost, offset=0.0, row_lo=row_lo, row_hi=row_hi,
                                   starts=starts, index=index, value=value)
        return self._arrays

    def col_name(self, j: int) -> str:
        prefix, k = self.col_tag[j]
        return f"{prefix}_{k}"

    def col_names(self) -> list[str]:
        return [f"{p}_{k}" for p, k in self.col_tag]

    def row_names(self) -> list[str]:
        """Unique PuLP-safe row names: family__label ([a-z0-9_]), numbered when a label repeats."""
        cache = self.__dict__.get("_row_names")
        if cache is not None and len(cache) == self.n_rows:
            return cache
        seen: dict[str, int] = {}
        out = []
        for fam, label in zip(self.row_family, self.row_label, strict=True):
            name = f"{fam}__{clean(label)}"
            if name in seen:
                seen[name] += 1
                i = seen[name]
                while f"{name}_{i}" in seen:
                    i += 1
                name = f"{name}_{i}"
            seen.setdefault(name, 1)
            out.append(name)
        self.__dict__["_row_names"] = out
        return out

    def row_name(self, i: int) -> str:
        return self.row_names()[i]

    @property
    def rows(self) -> dict:
        """row name -> (family, readable label)."""
        return dict(zip(self.row_names(), zip(self.row_family, self.row_label, strict=True), strict=True))

    def to_pulp(self):
        """The same problem as a PuLP model (names from the index tables): for CBC, for
        ``--write-lp`` and for anyone who wants to open the model."""
        import pulp

        a = self.arrays()
        prob = pulp.LpProblem(clean(self.name) or "placement", pulp.LpMinimize)
        cat = {CONT: pulp.LpContinuous, INT: pulp.LpInteger, BIN: pulp.LpBinary}
        cols = []
        for j, name in enumerate(self.col_names()):
            lo = None if not math.isfinite(a.lb[j]) else float(a.lb[j])
            hi = None if not math.isfinite(a.ub[j]) else float(a.ub[j])
            cols.append(prob.add_variable(name, lowBound=lo, upBound=hi, cat=cat[self.col_kind[j]]))
        prob.setObjective(pulp.LpAffineExpression([(cols[j], float(c)) for j, c in enumerate(a.cost) if c != 0]))
        for i, name in enumerate(self.row_names()):
            lo, hi = a.starts[i], a.starts[i + 1]
            expr = pulp.LpAffineExpression([(cols[j], float(v)) for j, v in zip(a.index[lo:hi].tolist(),
                                                                                a.value[lo:hi].tolist(), strict=True)])
            sense = self.row_sense[i]
            prob.addConstraint(pulp.LpConstraint(expr, sense=sense, rhs=self.row_rhs[i], name=name))
        return prob

    def write_lp(self, path) -> None:
        """The model in LP format (via PuLP), written atomically (temp file + rename)."""
        import os
        from pathlib import Path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.to_pulp().writeLP(str(tmp))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @property
    def prob(self):
        """The PuLP model (built on first use, cached)."""
        if "_prob" not in self.__dict__:
            self.__dict__["_prob"] = self.to_pulp()
        return self.__dict__["_prob"]


# ====================================================================== variables
def define_variables(m: PlacementModel) -> None:
    """Create x, y, r, n, open, used, T, P only for allowed pairs (no W x S x O product)."""
    cs = m.cs
    s = cs.res.scenario
    for c in cs.triples:
        m.cand[c.key] = c
        m.offers[(c.site, c.offer.id)] = c.offer
    site_offers: dict[tuple[str, str], list[Candidate]] = defaultdict(list)
    for c in cs.triples:
        site_offers[(c.site, c.offer.id)].append(c)
    bg_tiers: dict[tuple[str, str], set] = defaultdict(set)
    for (sid, oid, tau, _t), g in m.background.items():
        if g > 0:
            bg_tiers[(sid, oid)].add(tau)
            if (sid, oid) not in m.offers:
                m.offers[(sid, oid)] = next(o for o in cs.res.sites[sid].offers if o.id == oid)
    for w in m.workloads:
        for u, sites in cs.routes.get(w.id, {}).items():
            for sid in sites:
                for t in m.slots:
                    m.var(m.x, (w.id, u, sid, t), "x", 0.0, 1.0)
    routed = {(w.id, sid) for w in m.workloads for sites in cs.routes.get(w.id, {}).values() for sid in sites}
    for c in cs.triples:
        wl = cs.loads[c.workload]
        batch = s.workload(c.workload).is_batch
        slots = wl.batch_slots if batch else m.slots
        serves = batch or (c.workload, c.site) in routed  # failover-only sites hold standby only
        for t in m.slots:
            for lc in wl.classes:
                if serves and c.rps[lc.key].rps > 0 and t in slots:
                    m.var(m.y, (c.workload, lc.key, c.site, c.offer.id, t), "y")
            for tau in c.tiers:
                m.var(m.r, (c.workload, c.site, c.offer.id, tau, t), "r", cat=m.replica_cat())
    for sid, oid in sorted(set(site_offers) | set(bg_tiers)):
        o = m.offers[(sid, oid)]
        tiers = sorted({tau for c in site_offers.get((sid, oid), ()) for tau in c.tiers} | bg_tiers.get((sid, oid), set()))
        for tau in tiers:
            if tau in BASELINE_TIERS:
                up = o.owned if tau == "owned" else (o.buyable if tau == "bought" else None)
                m.var(m.n, (sid, oid, tau), "n", 0, up, INT)
            else:
                for t in m.slots:
                    m.var(m.n, (sid, oid, tau, t), "n", 0, None, INT)
    for sid, site in cs.res.sites.items():
        if site.declared and any(k[0] == sid for k in m.offers):
            m.var(m.open, sid, "open", 0, 1, BIN)
            for t in m.slots:
                m.var(m.P, (sid, t), "p", 0.0, None)


def define_bounds(m: PlacementModel) -> None:
    """Finite upper bounds on the whole-number columns, each kept by some optimal plan (HiGHS's
    root reduced-cost fixing walks an integer column's domain: measured 7.9 s -> 0.7 s on a
    one-workload model when its unbounded integers got bounds of this size).

    Load that can ever reach offer o at s in slot t, class by class:
      realtime:  A_k = max( sum_{u: s in routes(w,u)} L[w,k,u,t],  sum_{u: s in F(w,k,u)} L[w,k,u,t] )
      batch:     A_k = R_k / (3600 h_t)                     (the whole day's requests in that slot)
    r[w,s,o,tau,t] <= floor( sum_k A_k / rho[w,k,o] / e_tau ) + 1     (e_tau = d for spot, else 1)

    More replicas than that carry nothing in normal serving (capacity) nor in any failover
    (fo_capacity), so removing them keeps every row and costs no more -- except the spot-share
    row, where idle non-spot replicas enlarge the right-hand side. There, non-spot columns get
    ``+ ceil( (1 - cap) / cap * S / mix[c,t] )`` with S = sum over spot columns of mix d ub: spot
    replicas past their own bound carry nothing and only tighten that row, so S bounds its left
    side and one column this large satisfies it alone.
    Instances: n[s,o,tau(,t)] <= ceil( sum_w g[w,o] ub(r[w,s,o,tau,t]) / G[o] ) (max over t for a
    baseline tier), and <= floor(quota[s,a] / G[o]).
    """
    cs = m.cs
    res = cs.res
    s = res.scenario
    pol = s.policies.spot
    d, cap = pol.derating, pol.max_share
    slot_h = {t.id: t.hours for t in s.time_slots}
    reach: dict[tuple, dict] = {}  # (w, s, t) -> {class: rps that may reach s}
    for w in m.workloads:
        wl = cs.loads[w.id]
        if w.is_batch:
            continue
        normal: dict[tuple, float] = defaultdict(float)
        fover: dict[tuple, float] = defaultdict(float)
        by_u: dict[str, list] = defaultdict(list)
        for (k, u, t), v in wl.peak_rps.items():
            if v > 0:
                by_u[u].append((k, t, v))
        for u, sites in cs.routes.get(w.id, {}).items():
            for sid in sites:
                for k, t, v in by_u.get(u, ()):
                    normal[(sid, t, k)] += v
        for (k, uu, t), v in wl.peak_rps.items():
            if v > 0:
                for sid in cs.failover_sites.get((w.id, k, uu), ()):
                    fover[(sid, t, k)] += v
        for key in normal.keys() | fover.keys():
            sid, t, k = key
            reach.setdefault((w.id, sid, t), {})[k] = (normal.get(key, 0.0), fover.get(key, 0.0))
    ub_r: dict[int, float] = {}
    need_of: dict[tuple, float] = {}
    for (w, sid, oid, tau, t), v in m.r.items():
        key = (w, sid, oid, t)
        need = need_of.get(key)
        if need is None:
            c = m.cand[(w, sid, oid)]
            wl = cs.loads[w]
            if s.workload(w).is_batch:
                need = 0.0
                if t in wl.batch_slots and slot_h[t] > 0:
                    for k, per_day in wl.batch_requests_per_day.items():
                        rho = c.rps[k].rps if k in c.rps else 0.0
                        if rho > 0:
                            need += per_day / (3600.0 * slot_h[t]) / rho
            else:
                a = b = 0.0
                for k, (nl, fl) in reach.get((w, sid, t), {}).items():
                    rho = c.rps[k].rps if k in c.rps else 0.0
                    if rho > 0:
                        a += nl / rho
                        b += fl / rho
                need = max(a, b)
            need_of[key] = need
        ub_r[v] = math.floor(need / (d if tau == "spot" else 1.0)) + 1.0 if (tau != "spot" or d > 0) else 0.0
    if 0 < cap < 1:
        spot_sum: dict[tuple, float] = defaultdict(float)
        for (w, sid, oid, tau, t), v in m.r.items():
            if tau == "spot":
                spot_sum[(w, t)] += _mix_rps(m, m.cand[(w, sid, oid)], t) * d * ub_r[v]
        for (w, sid, oid, tau, t), v in m.r.items():
            S = spot_sum.get((w, t), 0.0)
            if tau != "spot" and S > 0:
                mix = _mix_rps(m, m.cand[(w, sid, oid)], t)
                ub_r[v] = ub_r[v] + math.ceil((1.0 - cap) / cap * S / mix) if mix > 0 else math.inf
    gpus: dict[tuple, float] = defaultdict(float)
    for (w, sid, oid, tau, t), v in m.r.items():
        ub = ub_r[v]
        if m.col_ub[v] is None or ub < m.col_ub[v]:
            m.col_ub[v] = ub if math.isfinite(ub) else None
        gpus[(sid, oid, tau, t)] += m.cand[(w, sid, oid)].shape.gpus * ub
    for key, g in m.background.items():
        gpus[key] += g
    for key, v in m.n.items():
        sid, oid, tau = key[0], key[1], key[2]
        o = m.offers[(sid, oid)]
        ts = [key[3]] if len(key) == 4 else m.slots
        most = max(gpus.get((sid, oid, tau, t), 0.0) for t in ts)
        ub = math.ceil(most / o.gpus - TOL) if math.isfinite(most) else math.inf
        quota = res.sites[sid].quota_gpus.get(o.accelerator)
        if quota is not None:
            ub = min(ub, quota // o.gpus)
        if math.isfinite(ub) and (m.col_ub[v] is None or ub < m.col_ub[v]):
            m.col_ub[v] = float(ub)


# ====================================================================== constraints
def define_serving(m: PlacementModel) -> None:
    """Traffic shares and class split.

    Route:  sum_s x[w,u,s,t] = 1                                   for every (w, u, t)
    Split:  sum_o y[w,k,s,o,t] = sum_u L[w,k,u,t] x[w,u,s,t]        for every (w, k, s, t)
    Batch:  sum_{s,o,t in window} 3600 h_t y[w,k,s,o,t] = R_k       requests per day of class k
    """
    cs = m.cs
    s = cs.res.scenario
    y_by: dict[tuple, list] = defaultdict(list)
    y_wk: dict[tuple, list] = defaultdict(list)
    slot_h = {t.id: t.hours for t in s.time_slots}
    for (w, k, sid, _oid, t), v in m.y.items():
        y_by[(w, k, sid, t)].append(v)
        y_wk[(w, k)].append((v, 3600.0 * slot_h[t]))
    for w in m.workloads:
        wl = cs.loads[w.id]
        if w.is_batch:
            for lc in wl.classes:
                m.add_row("serve", f"{w.id}__{lc.key}", y_wk.get((w.id, lc.key), []), EQ,
                          wl.batch_requests_per_day[lc.key])
            continue
        routes = cs.routes[w.id]
        for u, sites in routes.items():
            for t in m.slots:
                m.add_row("route", f"{w.id}__{u}__{t}", [(m.x[(w.id, u, sid, t)], 1.0) for sid in sites],
                          EQ, 1.0)
        sites_of_w = sorted({sid for ss in routes.values() for sid in ss})
        for sid in sites_of_w:
            for lc in wl.classes:
                for t in m.slots:
                    pairs = [(v, 1.0) for v in y_by.get((w.id, lc.key, sid, t), [])]
                    for u in routes:
                        load = wl.peak_rps.get((lc.key, u, t), 0.0)
                        if load > 0 and (w.id, u, sid, t) in m.x:
                            pairs.append((m.x[(w.id, u, sid, t)], -load))
                    if len(pairs) == 0:
                        continue
                    m.add_row("split", f"{w.id}__{lc.key}__{sid}__{t}", pairs, EQ, 0.0)


def define_capacity(m: PlacementModel) -> None:
    """Replicas carry the served load, class by class at its own throughput.

    sum_k y[w,k,s,o,t] / rho[w,k,o] <= sum_{tau != spot} r[w,s,o,tau,t] + d * r[w,s,o,spot,t]

    (d = spot derating). Each class may be served by a different accelerator: the split y is a
    decision, per workload, class, site and slot.
    """
    d = m.cs.res.scenario.policies.spot.derating
    y_by: dict[tuple, list] = defaultdict(list)
    for (w, k, sid, oid, t), v in m.y.items():
        y_by[(w, sid, oid, t)].append((k, v))
    r_by: dict[tuple, list] = defaultdict(list)
    for (w, sid, oid, tau, t), v in m.r.items():
        r_by[(w, sid, oid, t)].append((tau, v))
    for (w, sid, oid, t), rs in r_by.items():
        c = m.cand[(w, sid, oid)]
        pairs = [(v, 1.0 / c.rps[k].rps) for k, v in y_by.get((w, sid, oid, t), [])]
        pairs += [(v, -(d if tau == "spot" else 1.0)) for tau, v in rs]
        if len(pairs) == len(rs):
            continue  # nothing to serve here in this slot
        m.add_row("capacity", f"{w}__{oid}__{t}", pairs, LE, 0.0)


def define_instances(m: PlacementModel) -> None:
    """Whole instances hold the replicas placed on them (tensor-parallel sizes are powers of two
    dividing the instance, so this aggregate packing is exact):

    sum_w g[w,o] r[w,s,o,tau,t] <= G[o] n[s,o,tau]        baseline tiers, every slot t
    sum_w g[w,o] r[w,s,o,tau,t] <= G[o] n[s,o,tau,t]      burst tiers
    GPUs B[s,o,tau,t] held by workloads outside the model (its ``background``) are a constant on
    the left.
    """
    by: dict[tuple, list] = defaultdict(list)
    for (w, sid, oid, tau, t), v in m.r.items():
        c = m.cand[(w, sid, oid)]
        by[(sid, oid, tau, t)].append((v, c.shape.gpus))
    for key, g in m.background.items():
        if g > 0:
            by.setdefault(key, [])
    for (sid, oid, tau, t), pairs in sorted(by.items()):
        nkey = (sid, oid, tau) if (sid, oid, tau) in m.n else (sid, oid, tau, t)
        nv = m.n[nkey]
        m.add_row("instances", f"{oid}__{tau}__{t}", pairs + [(nv, -m.offers[(sid, oid)].gpus)],
                  LE, -float(m.background.get((sid, oid, tau, t), 0.0)))


def define_inventory(m: PlacementModel) -> None:
    """Owned GPUs and buyable GPUs are variable bounds (n[s,o,owned] <= owned,
    n[s,o,bought] <= buyable). Cloud quotas per site, accelerator and slot:

    sum_{o of accelerator a} G[o] (n[s,o,reserved] + n[s,o,on_demand,t] + n[s,o,spot,t]) <= quota[s,a]
    """
    res = m.cs.res
    by: dict[tuple, list] = defaultdict(list)
    for key, v in m.n.items():
        sid, oid = key[0], key[1]
        o = m.offers[(sid, oid)]
        if o.accelerator not in res.sites[sid].quota_gpus:
            continue
        for t in ([key[3]] if len(key) == 4 else m.slots):
            by[(sid, o.accelerator, t)].append((v, o.gpus))
    for (sid, acc, t), pairs in sorted(by.items()):
        m.add_row("quota", f"{sid}__{acc}__{t}", pairs, LE,
                  float(res.sites[sid].quota_gpus[acc]))


def define_power(m: PlacementModel) -> None:
    """Facility power per declared site and slot, and its budget:

    P[s,t] = sum_o f_o ( phi (n[s,o,owned] + n[s,o,bought]) + (1 - phi) sum_{w,tau} g[w,o] r[w,s,o,tau,t] )
    P[s,t] <= power_budget_kw[s]

    f_o = board kW x (1 + host_overhead) x PUE; phi = idle_power_fraction (a powered GPU serving
    nothing in the slot). Electricity is paid on P for the slot's hours. GPUs of workloads outside
    the model (``background``) add their constant draw.
    """
    res = m.cs.res
    installed: dict[str, list] = defaultdict(list)
    for key, v in m.n.items():
        if key[2] in ("owned", "bought"):
            installed[key[0]].append((v, m.offers[(key[0], key[1])]))
    used: dict[tuple, list] = defaultdict(list)
    for (w, sid, oid, _tau, t), v in m.r.items():
        if (sid, t) in m.P:
            used[(sid, t)].append((v, m.cand[(w, sid, oid)]))
    bg_kw: dict[tuple, float] = defaultdict(float)
    for (sid, oid, _tau, t), g in m.background.items():
        if (sid, t) in m.P:
            site = res.sites[sid]
            bg_kw[(sid, t)] += gpu_kw_factor(site, m.offers[(sid, oid)]) * (1.0 - site.idle_power_fraction) * g
    for (sid, t), pv in sorted(m.P.items()):
        site = res.sites[sid]
        phi = site.idle_power_fraction
        pairs = [(pv, -1.0)]
        if phi > 0:
            pairs += [(v, gpu_kw_factor(site, o) * phi) for v, o in installed[sid]]
        pairs += [(v, gpu_kw_factor(site, c.offer) * (1.0 - phi) * c.shape.gpus) for v, c in used[(sid, t)]]
        m.add_row("power_def", f"{sid}__{t}", pairs, EQ, -bg_kw[(sid, t)])
        m.add_row("power_cap", f"{sid}__{t}", [(pv, 1.0)], LE, float(site.power_budget_kw))


def define_sites(m: PlacementModel) -> None:
    """GPUs only at open declared sites: n[s,o,tau] <= N_o open[s], with N_o the owned or buyable
    count (a valid big-M: the variable's own upper bound)."""
    for key, v in m.n.items():
        sid = key[0]
        if sid not in m.open:
            continue
        ub = m.col_ub[v]
        m.add_row("site_open", f"{key[1]}__{key[2]}", [(v, 1.0), (m.open[sid], -float(ub))],
                  LE, 0.0)


def class_mix(m: PlacementModel, w: str, t: str) -> dict[str, float]:
    """Load of each of w's classes in slot t (requests/s; batch: requests/day), cached."""
    key = (w, t)
    if key not in m.mix:
        m.mix[key] = m.cs.loads[w].slot_mix(t)
    return m.mix[key]


def _mix_rps(m: PlacementModel, c: Candidate, t: str) -> float:
    """Requests/s of w's slot-t class mix one replica of c carries (demand.mix_rate)."""
    return mix_rate(m.cs.loads[c.workload], t, {k: e.rps for k, e in c.rps.items()}, class_mix(m, c.workload, t))


def define_redundancy(m: PlacementModel) -> None:
    """A minimum number of sites per workload (N+1 failover is :func:`define_failover`):

    used[w,s] <= sum_{o,tau,t} r[w,s,o,tau,t];   sum_s used[w,s] >= min_sites[w]
    """
    cs = m.cs
    by_w = cs.by_workload()
    for w in m.workloads:
        if w.redundancy.min_sites <= 1:
            continue
        cands = by_w[w.id]
        sites = sorted({c.site for c in cands})
        r_at: dict[str, list] = defaultdict(list)
        for c in cands:
            for tau in c.tiers:
                r_at[c.site].extend(m.r[(w.id, c.site, c.offer.id, tau, t)] for t in m.slots)
        for sid in sites:
            u = m.var(m.used, (w.id, sid), "used", 0, 1, BIN)
            pairs = [(u, 1.0)] + [(v, -1.0) for v in r_at[sid]]
            m.add_row("site_used", f"{w.id}__{sid}", pairs, LE, 0.0)
        m.add_row("min_sites", w.id, [(m.used[(w.id, sid)], 1.0) for sid in sites],
                  GE, float(w.redundancy.min_sites))


def define_failover(m: PlacementModel) -> None:
    """N+1, exactly: for every slot t and every site l that may be lost, the non-spot replicas
    already placed at the other sites serve every protected class of every user region, re-routed
    freely per (class, user region) within the failover RTT limit and residency, each class on
    offers that run it at its own rate, replica-time shared as in normal serving.

    For every workload w with protected classes P_w (candidates.protected_classes), slot t with
    protected load, and candidate site l of w:

      fo_route:    sum_{s in F(w,k,g), s != l} fz[w,l,k,g,s,t] = sum_{u in g} L[w,k,u,t]
                                                        k in P_w, g: regions u (L > 0) of equal F(w,k,u)
      fo_split:    sum_o fq[w,l,k,s,o,t] = sum_u fz[w,l,k,u,s,t]                 k in P_w, s != l
      fo_capacity: sum_k fq[w,l,k,s,o,t] / rho[w,k,o] <= sum_{tau != spot} r[w,s,o,tau,t]

    F(w,k,u) = candidates.failover_sites (residency, RTT <= failover limit, an offer runs k),
    kept to the sites where this model has a non-spot candidate of w that runs k (in a group
    model of lns.py, a restriction of w's candidates, the others could carry nothing: their
    fo_split row would hold their flow at 0).
    User regions with the same F are one commodity g (exact: a flow of their summed load splits
    back per region in proportion, every region of g being allowed the same sites).
    Spot is excluded (it may vanish at the same moment). Losing a site where w has no candidate
    leaves more capacity than losing one where it has, so those scenarios are implied. Size: per
    (w, t), |S_w| copies of a flow over the protected classes' routes and offers; linear in the
    number of candidate sites per workload, never all-sites x all-sites.
    """
    cs = m.cs
    res = cs.res
    by_w = cs.by_workload()
    for w in m.workloads:
        m.check_deadline()
        prot = protected_classes(res, cs.loads, w.id)
        if not prot:
            continue
        wl = cs.loads[w.id]
        cands = by_w[w.id]
        lost_sites = sorted({c.site for c in cands})
        ns_r: dict[tuple, list] = defaultdict(list)  # (s, o, t) -> non-spot replica variables
        # (s, k) -> (offer, 1 / rho[w,k,o]) of the candidates at s that run k with a non-spot tier
        runs_at: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
        for c in cands:
            non_spot = [tau for tau in c.tiers if tau != "spot"]
            for tau in non_spot:
                for t in m.slots:
                    ns_r[(c.site, c.offer.id, t)].append(m.r[(w.id, c.site, c.offer.id, tau, t)])
            if non_spot:
                for lc in prot:
                    if c.rps[lc.key].rps > 0:
                        runs_at[(c.site, lc.key)].append((c.offer.id, 1.0 / c.rps[lc.key].rps))
        # the sites of F(w,k,u) that can hold capacity for k in this model (see the docstring)
        fsites_of = {(lc.key, u): tuple(sid for sid in cs.failover_sites.get((w.id, lc.key, u), [])
                                        if (sid, lc.key) in runs_at)
                     for lc in prot for u in wl.user_regions()}
        for t in m.slots:
            demand = {(lc.key, u): wl.peak_rps.get((lc.key, u, t), 0.0) for lc in prot for u in wl.user_regions()}
            demand = {key: load for key, load in demand.items() if load > 0}
            if not demand:
                continue
            # user regions of a class with the same failover sites are one commodity: any flow of
            # their summed load splits back per region in proportion (the sites allowed are the same)
            groups: dict[str, list[tuple[str, tuple[str, ...], float]]] = defaultdict(list)
            by_sites: dict[tuple, list[str]] = defaultdict(list)
            for (k, u) in sorted(demand):
                by_sites[(k, fsites_of[(k, u)])].append(u)
            for (k, fsites), us in sorted(by_sites.items()):
                label = us[0] if len(us) == 1 else f"{us[0]}+{len(us) - 1}"
                groups[k].append((label, fsites, sum(demand[(k, u)] for u in us)))
            for lost in lost_sites:
                # one workload with hundreds of candidate sites has millions of failover columns
                # (5000x300: 3.6 M for one N+1 workload over 237 sites, 9-11 s to build): the
                # deadline is checked per lost site, not only per workload
                m.check_deadline()
                cap_rows: dict[tuple[str, str], list] = defaultdict(list)
                for k in sorted(groups):
                    into: dict[str, list] = defaultdict(list)
                    for u, fsites, load in groups[k]:
                        pairs = []
                        for sid in fsites:
                            if sid == lost:
                                continue
                            v = m.var(m.fz, (w.id, lost, k, u, sid, t), "fz")
                            pairs.append((v, 1.0))
                            into[sid].append((v, -1.0))
                        m.add_row("fo_route", f"{w.id}__{lost}__{k}__{u}__{t}", pairs, EQ, load)
                    for sid, zs in sorted(into.items()):
                        pairs = list(zs)
                        for oid, inv_rho in runs_at[(sid, k)]:
                            v = m.var(m.fq, (w.id, lost, k, sid, oid, t), "fq")
                            pairs.append((v, 1.0))
                            cap_rows[(sid, oid)].append((v, inv_rho))
                        m.add_row("fo_split", f"{w.id}__{lost}__{k}__{sid}__{t}", pairs, EQ,
                                  0.0)
                for (sid, oid), pairs in sorted(cap_rows.items()):
                    pairs = pairs + [(v, -1.0) for v in ns_r[(sid, oid, t)]]
                    m.add_row("fo_capacity", f"{w.id}__{lost}__{oid}__{t}", pairs, LE, 0.0)


def define_spot(m: PlacementModel) -> None:
    """Spot counts at its derating d (in define_capacity) and is capped per workload and slot:

    sum_{s,o} mix d r[w,s,o,spot,t] <= max_share * sum_{s,o,tau} mix e_tau r[w,s,o,tau,t]
    """
    pol = m.cs.res.scenario.policies.spot
    d, cap = pol.derating, pol.max_share
    by: dict[tuple, list] = defaultdict(list)
    has_spot = set()
    for (w, sid, oid, tau, t), v in m.r.items():
        c = m.cand[(w, sid, oid)]
        mix = _mix_rps(m, c, t)
        eff = d if tau == "spot" else 1.0
        coef = mix * eff * ((1.0 - cap) if tau == "spot" else -cap)
        by[(w, t)].append((v, coef))
        if tau == "spot":
            has_spot.add((w, t))
    for key in sorted(has_spot):
        m.add_row("spot_cap", f"{key[0]}__{key[1]}", by[key], LE, 0.0)


# ====================================================================== objective
def define_objective(m: PlacementModel) -> None:
    """Monthly cost (USD):

      sum n[s,o,reserved] p_res[o] x hours_per_month
    + sum n[s,o,bought] annuity[o]
    + sum_t n[s,o,tau,t] p_tau[o] H_t                       (on_demand, spot)
    + sum open[s] fixed[s]
    + sum_t P[s,t] H_t electricity[s]
    + sum x[w,u,s,t] GB_resp[w,u,t] egress_internet[s]      (responses to users)
    + sum share[w,s] GB_data[w,ds] egress[src(ds), s]       (data sources to serving sites)
    + carbon weight x tCO2e + latency weight x sum x rtt rate  (optional)

    Owned GPUs are sunk: reported as a fixed cost, not in the objective.
    """
    cs = m.cs
    res = cs.res
    s = res.scenario
    pol = s.policies
    hpm = pol.hours_per_month
    terms: dict[tuple, list] = defaultdict(list)
    for key, v in m.n.items():
        sid, oid, tau = key[0], key[1], key[2]
        o = m.offers[(sid, oid)]
        if tau == "reserved":
            terms[("compute", sid, tau)].append((v, (o.reserved_usd_hr or 0.0) * hpm))
        elif tau == "bought":
            terms[("capex", sid, tau)].append((v, o.buy_usd_per_gpu_month))
        elif tau in ("on_demand", "spot"):
            price = o.ondemand_usd_hr if tau == "on_demand" else o.spot_usd_hr
            terms[("compute", sid, tau)].append((v, (price or 0.0) * m.H[key[3]]))
    for sid, v in m.open.items():
        fixed = res.sites[sid].fixed_usd_per_month
        if fixed:
            terms[("fixed", sid, "")].append((v, fixed))
    for (sid, t), v in m.P.items():
        terms[("electricity", sid, "")].append((v, m.H[t] * res.sites[sid].electricity_usd_per_kwh))
    # response egress (GB per (w, u, t), the same at every site)
    gb_of: dict[tuple[str, str, str], float] = {}
    for (w, u, sid, t), v in m.x.items():
        gb = gb_of.get((w, u, t))
        if gb is None:
            gb = gb_of[(w, u, t)] = response_gb(res, cs.loads, w, u, t)
        price = res.sites[sid].internet_egress_usd_per_gb
        if gb * price:
            terms[("egress_response", sid, w)].append((v, gb * price))
    # data-source egress
    for w in m.workloads:
        if not w.data_sources:
            continue
        shares = site_share_exprs(m, w.id)
        for ds in w.data_sources:
            for sid, pairs in shares.items():
                e = cs.egress[(w.id, ds.id, sid)]
                k = ds.gb_per_month * e.usd_per_gb
                if k:
                    terms[("egress_data", sid, w.id)].extend((v, a * k) for v, a in pairs)
    obj = []
    for pairs in terms.values():
        obj.extend(pairs)
    if pol.carbon_usd_per_tonne > 0:
        for (sid, t), v in m.P.items():
            g = res.sites[sid].grid_gco2e_per_kwh or 0.0
            obj.append((v, m.H[t] * g / 1e6 * pol.carbon_usd_per_tonne))
        for (w, sid, oid, _tau, t), v in m.r.items():
            site = res.sites[sid]
            if site.declared:
                continue
            c = m.cand[(w, sid, oid)]
            kw = cloud_gpu_kw(c.offer) * c.shape.gpus
            obj.append((v, kw * m.H[t] * (site.grid_gco2e_per_kwh or 0.0) / 1e6 * pol.carbon_usd_per_tonne))
    if pol.latency_usd_per_ms_per_rps > 0:
        for (w, u, sid, t), v in m.x.items():
            link = cs.rtt[(u, sid)]
            rate = sum(val for (_k, uu, tt), val in cs.loads[w].mean_rps.items() if uu == u and tt == t)
            rate *= m.H[t] / s.policies.hours_per_month  # the slot's share of the month
            obj.append((v, (link.rtt_ms or 0.0) * rate * pol.latency_usd_per_ms_per_rps))
    m.set_objective(obj)


def site_share_exprs(m: PlacementModel, w: str) -> dict[str, list]:
    """Linear expressions (as pair lists) of the share of w's requests served at each site."""
    cs = m.cs
    wk = cs.res.scenario.workload(w)
    wl = cs.loads[w]
    out: dict[str, list] = defaultdict(list)
    if wk.is_batch:
        total = sum(wl.batch_requests_per_day.values())
        slot_h = {t.id: t.hours for t in cs.res.scenario.time_slots}
        for (k, sid, _o, t), v in m.by_workload("y", w):
            if "~" not in k:
                out[sid].append((v, 3600.0 * slot_h[t] / total))
        return out
    vol: dict[tuple[str, str], float] = defaultdict(float)
    for (_k, u, t), n in wl.requests_per_month.items():
        vol[(u, t)] += n
    total = sum(vol.values())
    if total <= 0:
        return out
    for (u, sid, t), v in m.by_workload("x", w):
        if vol.get((u, t), 0.0) > 0:
            out[sid].append((v, vol[(u, t)] / total))
    return out


def define_replica_cuts(m: PlacementModel) -> None:
    """Integer rounding cuts (replica form only). Both are valid: they cut off fractional
    replicas, never a whole-replica plan that keeps every other row.

    replica_cut:  sum_{s,o,tau} r[w,s,o,tau,t] >= ceil( sum_k D[w,k,t] / max_o rho[w,k,o] )
    nplus1_cut:   R[w,t] - sum_{o,tau != spot} r[w,s,o,tau,t] >= ceil( same )   (N+1 w, every site s)
                  with R[w,t] = sum_{s,o,tau != spot} r[w,s,o,tau,t]

    Why valid: every class's load needs replica-time on some offer (capacity rows); one replica
    gives at most the best candidate's rate for a class, and spot counts at most 1, so the
    replicas of a slot are at least sum_k D_k / best_k; they are whole, so the bound rounds up.
    For an N+1 workload every class is protected (candidates.protected_classes), so after losing
    site s the non-spot replicas at the other sites carry all of D through the fo_* rows of
    define_failover, at rates no better than the best candidate's: the same bound holds for
    R - R_s. (It would not hold for the aggregate "class-mix capacity" N+1 row this replaced,
    which could both cut off valid plans and accept class-blind ones.) Without the cuts the LP
    relaxation serves a slot's small load with 0.2 of a replica.
    """
    if m.integrality != "replica":
        return
    cs = m.cs
    best: dict[tuple[str, str], float] = defaultdict(float)
    for c in cs.triples:
        for k, e in c.rps.items():
            best[(c.workload, k)] = max(best[(c.workload, k)], e.rps)
    r_by: dict[tuple[str, str], list] = defaultdict(list)
    r_site: dict[tuple[str, str], list] = defaultdict(list)
    for (w, sid, _o, tau, t), v in m.r.items():
        r_by[(w, t)].append((v, 1.0))
        r_site[(w, t)].append((v, tau, sid))
    for w in m.workloads:
        if w.is_batch:
            continue
        for t in m.slots:
            need = 0.0
            for k, load in class_mix(m, w.id, t).items():
                if load > 0 and best[(w.id, k)] > 0:
                    need += load / best[(w.id, k)]
            if need <= TOL or not r_by[(w.id, t)]:
                continue
            m.add_row("replica_cut", f"{w.id}__{t}", r_by[(w.id, t)], GE,
                      float(ceil_tol(need)))
            if w.redundancy.mode == "n_plus_1":
                ns = [(v, 1.0) for v, tau, _s in r_site[(w.id, t)] if tau != "spot"]
                R = m.var(m.T, (w.id, t, "replicas"), "rcnt", 0.0)
                m.add_row("nplus1_cut_total", f"{w.id}__{t}", [(R, 1.0)] + [(v, -a) for v, a in ns],
                          EQ, 0.0)
                for sid in sorted({sid for _v, _tau, sid in r_site[(w.id, t)]}):
                    own = [(v, -1.0) for v, tau, s2 in r_site[(w.id, t)] if s2 == sid and tau != "spot"]
                    m.add_row("nplus1_cut", f"{w.id}__{sid}__{t}", [(R, 1.0)] + own, GE,
                              float(ceil_tol(need)))


FAMILIES = (define_serving, define_capacity, define_instances, define_inventory, define_power, define_sites,
            define_redundancy, define_failover, define_spot, define_replica_cuts)


class BuildDeadline(Exception):
    """The model was not built by the deadline given to :func:`build_model`."""


def build_model(cs: CandidateSet, integrality: str = "replica", deadline: float | None = None,
                workloads: list[str] | None = None, background: dict | None = None) -> PlacementModel:
    """Build the MILP for a candidate set in the chosen integrality formulation; raises
    :class:`BuildDeadline` once ``deadline`` (time.monotonic()) passes between families.

    ``workloads`` models only those workloads (their candidates must be the only triples in
    ``cs``), ``background`` the GPUs the others hold (planner/optimise/lns.py)."""
    if integrality not in ("replica", "pooled"):
        raise ValueError(f"integrality must be replica or pooled, not {integrality!r}")
    s = cs.res.scenario
    m = PlacementModel(cs=cs, integrality=integrality, deadline=deadline, name=f"placement_{s.name}")
    m.workloads = list(s.workloads) if workloads is None else [s.workload(w) for w in workloads]
    m.background = dict(background or {})
    m.slots = [t.id for t in s.time_slots]
    m.H = {t.id: hours_per_month_of_slot(t, s.policies.hours_per_month) for t in s.time_slots}
    define_variables(m)
    define_bounds(m)
    for family in FAMILIES:
        m.check_deadline()
        family(m)
    m.check_deadline()
    define_objective(m)
    return m
