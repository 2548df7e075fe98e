"""A valid lower bound on the plan's monthly cost from the candidates alone (no model build).

Where the whole MILP is too large to build or to solve within the time limit (the
fix-and-optimise path of planner/optimise/strategy.py), this bound is what the gap is measured
against. It relaxes the placement model (planner/optimise/model.py) until it falls apart into one
small closed-form problem per workload and slot, so every step below only ever lowers the cost:

1. Instances are charged per GPU-hour actually used. A baseline instance (reserved, bought, owned)
   is held every hour of the month, so its cost is at least its hourly price for the hours its
   GPUs serve; burst instances are paid per slot hour; whole instances hold at least the GPUs of
   the replicas on them. Replica-hour cost of candidate c in tier tau:
   ``a[c,tau] = g[c] (price_tau[o] / G[o] + electricity + carbon)`` with price_tau the hourly
   price (reserved, on-demand, spot), the bought annuity over hours_per_month, 0 for owned GPUs,
   and at declared sites the facility kW of a GPU at full draw (idle draw of an installed GPU plus
   serving draw) times the electricity price.
2. What workloads share is priced instead of kept (Lagrangian relaxation): for every shared
   capacity p and slot t -- owned and buyable GPUs of a declared offer, a declared site's power
   budget (kW at full draw of the GPUs serving), a cloud site's GPU quota per accelerator, each
   implied by the model's rows because instances hold at least their replicas' GPUs -- a price
   mu[p,t] >= 0 per unit and hour is added to the cost of every replica using it, and
   sum_{p,t} H_t mu[p,t] cap[p] is handed back. For any prices this is at most the cost of every
   plan that keeps the capacities, so every round of prices gives a valid bound. Round 1 has
   prices 0; each next round raises a price where the round's cheapest choices ask for more than
   the capacity, to the bid (the price at which a choice turns to its best alternative) at which
   the capacity is full, and halves it where less than 90 % is asked. The best round is kept.
   Site fixed costs, the packing of several workloads' replicas into whole instances, and
   latency cost weights are dropped.
3. Per workload w and slot t (H_t hours a month), with the priced costs a, the replicas' cost is
   at least the largest of:

   - serving:  sum_{k,u} L[w,k,u,t] min_{s in routes(w,u), o, tau} a / (rho[w,k,o] e_tau)
     (each class of each user region on its cheapest allowed capacity; e_tau = spot derating);
   - failover (protected classes P, sites S = union of their failover sites): with
     b[s,k] = min over non-spot offers at s of a / rho[w,k,o]. One class: capacity c_s with
     sum_{s != l} c_s >= D for every lost site l costs at least D min_{m >= 2} (b_(1) + ... +
     b_(m)) / (m - 1) over the sorted b (the LP's optimum, by its dual). Several classes: with
     V_l = sum_k D_k min_{s != l} b[s,k], at least max( max_l V_l, sum_l V_l / (|S| - 1) ) (each
     site's replicas carry the largest of its failover loads; weights 1/(|S|-1) per lost site
     keep every site's weight sum at 1);
   - whole replicas: ceil(sum_k D_k / max_o rho[w,k,o]) replicas (the replica cut), one more
     non-spot replica for an N+1 workload (losing the site of any one replica leaves the cut's
     number), and non-spot replicas at two sites when protected load exists, each at its
     cheapest replica-hour cost.

   Batch: each class's requests a month at the cheapest cost per request over the window's
   slots, and at least one replica for the shortest window slot. ``min_sites``: one replica at
   each of the cheapest min_sites sites for the shortest slot (each at its cheapest slot price),
   when that is more than the slots' sum.
4. Egress: each user region's responses leave at least at the cheapest egress price of its
   routes, and each data source's GB reach at least the cheapest site of the workload.

The bound is the sum. It is valid for every plan the model allows (tests/test_bound.py checks it
against the proved optima of the oracle instances and of the shipped examples), and it is weak
where whole replicas and instances dominate the cost (a large model's 8-GPU replica serving
1 rps, N+1 copies) and where reserved capacity is worth more than its hours of use: the gap it
gives is an honest upper limit on how far the plan is from the optimum, not an estimate of it.
Measured (bench ladder, seed 1, 8 rounds): 50x20 247,764 against the whole model's LP
relaxation 299,586 and a plan of 575,162 USD/month; 200x50 about 0.9 M against plans of 3.2 M.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from planner.derive.candidates import Candidate, CandidateSet, protected_classes
from planner.derive.demand import response_gb
from planner.derive.power import cloud_gpu_kw, gpu_kw_factor
from planner.plan.costing import gpu_usd_per_hour, slot_month_hours
from planner.tolerance import ceil_tol

INF = math.inf
#: niceness of the bound's child process (:class:`BoundProcess`), and how long the solver waits
#: for it to start or stop at the end (seconds)
CHILD_NICE = 19
FINISH_WAIT_S = 1.0


@dataclass
class Bound:
    """The lower bound (USD/month), its parts, and how many price rounds it took."""

    value: float = -INF
    by_workload: dict[str, float] = field(default_factory=dict)
    egress: float = 0.0
    prices: float = 0.0  # - sum H_t mu[p,t] cap[p]: the priced capacity handed back (step 2)
    rounds: int = 0  # the round that gave the value
    values: list = field(default_factory=list)  # every round's bound


def replica_hour_costs(cs: CandidateSet, c: Candidate) -> dict[str, float]:
    """USD per replica-hour of candidate c in each of its tiers, before prices (step 1)."""
    res = cs.res
    pol = res.scenario.policies
    o = c.offer
    site = res.sites[c.site]
    g = c.shape.gpus
    out = {}
    grid = (site.grid_gco2e_per_kwh or 0.0) / 1e6 * pol.carbon_usd_per_tonne
    for tau in c.tiers:
        per_gpu = gpu_usd_per_hour(o, tau, pol.hours_per_month)
        if site.declared:
            kw = _kw_per_gpu(site, o, tau)
            per_gpu += kw * (site.electricity_usd_per_kwh + grid)
        elif grid > 0:
            per_gpu += cloud_gpu_kw(o) * grid
        out[tau] = g * per_gpu
    return out


def _kw_per_gpu(site, o, tau: str) -> float:
    """Facility kW a serving GPU accounts for at a declared site: full draw for installed GPUs
    (owned, bought: their idle draw is paid whenever they are installed, and installed GPUs are at
    least the GPUs serving), the serving part otherwise."""
    f = gpu_kw_factor(site, o)
    return f if tau in ("owned", "bought") else f * (1.0 - site.idle_power_fraction)


@dataclass(slots=True)
class _Option:
    """One (candidate, tier): its site, replica-hour cost before prices, the shared capacities one
    replica uses (pool, amount), and its rps per replica by class (spot: derated)."""

    site: str
    base: float
    pools: tuple
    rho: dict
    spot: bool
    pool_keys: frozenset = frozenset()


@dataclass
class _Work:
    """One workload's options and loads, prepared once."""

    wid: str
    batch: bool
    opts: list
    priced: bool  # some option uses a shared capacity (its costs change with the prices)
    loads: dict = field(default_factory=dict)  # slot -> [(class, user region, rps)]
    serve: dict = field(default_factory=dict)  # (class, user region) -> option indices
    fsites: dict = field(default_factory=dict)  # protected class -> failover sites
    S: list = field(default_factory=list)  # union of the failover sites
    nplus1: bool = False
    min_sites: int = 1
    batch_day: dict = field(default_factory=dict)
    batch_slots: list = field(default_factory=list)
    best_rho: dict = field(default_factory=dict)  # class -> best rps per replica over the options


def _prepare(cs: CandidateSet) -> tuple[list[_Work], dict]:
    res = cs.res
    s = res.scenario
    d = s.policies.spot.derating
    caps: dict = {}
    works = []
    by_w = cs.by_workload()
    for w in s.workloads:
        cands = by_w.get(w.id, [])
        if not cands:
            continue
        opts = []
        for c in cands:
            site = res.sites[c.site]
            o = c.offer
            g = c.shape.gpus
            for tau, base in replica_hour_costs(cs, c).items():
                eff = d if tau == "spot" else 1.0
                if eff <= 0:
                    continue
                pools = []
                if tau in ("owned", "bought"):
                    key = ("inv", c.site, o.id, tau)
                    caps[key] = o.gpus * (o.owned if tau == "owned" else o.buyable)
                    pools.append((key, g))
                if site.declared and site.power_budget_kw is not None:
                    caps[("kw", c.site)] = float(site.power_budget_kw)
                    pools.append((("kw", c.site), _kw_per_gpu(site, o, tau) * g))
                quota = site.quota_gpus.get(o.accelerator)
                if quota is not None:
                    caps[("quota", c.site, o.accelerator)] = float(quota)
                    pools.append((("quota", c.site, o.accelerator), g))
                rho = {k: e.rps * eff for k, e in c.rps.items() if e.rps > 0}
                if rho:
                    opts.append(_Option(c.site, base, tuple(pools), rho, tau == "spot", frozenset(p for p, _ in pools)))
        wl = cs.loads[w.id]
        best_rho: dict[str, float] = defaultdict(float)
        for op in opts:
            for k, r in op.rho.items():
                best_rho[k] = max(best_rho[k], r)
        wk = _Work(w.id, w.is_batch, opts, any(op.pools for op in opts), min_sites=w.redundancy.min_sites,
                   best_rho=dict(best_rho))
        if w.is_batch:
            wk.batch_day = dict(wl.batch_requests_per_day)
            wk.batch_slots = list(wl.batch_slots)
        else:
            for (k, u, t), load in wl.peak_rps.items():
                if load > 0:
                    wk.loads.setdefault(t, []).append((k, u, load))
            routes = cs.routes.get(w.id, {})
            for k, u in {(k, u) for ls in wk.loads.values() for k, u, _ in ls}:
                sites = set(routes.get(u, ()))
                wk.serve[(k, u)] = [j for j, op in enumerate(opts) if op.site in sites and k in op.rho]
            for lc in protected_classes(res, cs.loads, w.id):
                wk.fsites[lc.key] = sorted({sid for u in wl.user_regions()
                                            for sid in cs.failover_sites.get((w.id, lc.key, u), ())})
            wk.S = sorted({sid for ss in wk.fsites.values() for sid in ss})
            wk.nplus1 = w.redundancy.mode == "n_plus_1"
        works.append(wk)
    return works, caps


def _costs(wk: _Work, mu: dict, t: str) -> list[float]:
    """Replica-hour cost of each option in slot t at the prices mu."""
    if not wk.priced:
        return [op.base for op in wk.opts]
    out = []
    for op in wk.opts:
        a = op.base
        for p, amt in op.pools:
            a += amt * mu.get((p, t), 0.0)
        out.append(a)
    return out


def _slot_terms(wk: _Work, a: list[float], t: str, bids: dict | None) -> float:
    """Per-hour lower bound of w's replicas in slot t at option costs a (step 3). With ``bids``,
    the largest term also bids for the shared capacities its cheapest options use: (price per
    unit of capacity at which the option stops being cheapest, units), for the next prices."""
    opts = wk.opts
    serving = 0.0
    use_serving: list = []  # (option, replicas, units of its cost: per rps or per replica, alternatives)
    D_all: dict[str, float] = defaultdict(float)
    D: dict[str, float] = defaultdict(float)
    for k, u, load in wk.loads.get(t, ()):
        D_all[k] += load
        if k in wk.fsites:
            D[k] += load
        js = wk.serve.get((k, u), ())
        if not js:
            continue
        best_j, u1 = -1, INF
        for j in js:
            v = a[j] / opts[j].rho[k]
            if v < u1:
                best_j, u1 = j, v
        serving += load * u1
        if bids is not None and opts[best_j].pools:
            ranked = sorted((a[j] / opts[j].rho[k], j) for j in js)
            use_serving.append((best_j, load / opts[best_j].rho[k], ranked, opts[best_j].rho[k]))
    if not D_all:
        return 0.0
    terms = [(serving, use_serving)]
    if D:
        b_ns: dict[str, dict[str, float]] = {k: {} for k in D}
        arg: dict[tuple, int] = {}
        rep_ns: dict[str, tuple[float, int]] = {}
        S = set(wk.S)
        for j, op in enumerate(opts):
            if op.spot or op.site not in S:
                continue
            if a[j] < rep_ns.get(op.site, (INF, -1))[0]:
                rep_ns[op.site] = (a[j], j)
            for k in D:
                if k in op.rho and op.site in wk.fsites[k]:
                    v = a[j] / op.rho[k]
                    if v < b_ns[k].get(op.site, INF):
                        b_ns[k][op.site] = v
                        arg[(k, op.site)] = j
        if len(D) == 1:
            (k, load), = D.items()
            value, chosen = _failover_one_class(load, b_ns[k])
            use = [(arg[(k, sid)], c / opts[arg[(k, sid)]].rho[k], None, 1.0) for sid, c in chosen]
        else:
            value, use = _failover_classes(dict(D), b_ns, wk.S), []
        terms.append((value, use))
        two = sorted(rep_ns.values())[:2]
        if len(two) == 2:
            terms.append((two[0][0] + two[1][0], [(two[0][1], 1.0, None, 1.0), (two[1][1], 1.0, None, 1.0)]))
    best_rho = wk.best_rho
    need = ceil_tol(sum(load / best_rho[k] for k, load in D_all.items() if best_rho.get(k, 0.0) > 0))
    j0 = min(range(len(a)), key=a.__getitem__, default=None)
    if j0 is not None:
        terms.append((need * a[j0], [(j0, need, None, 1.0)]))
    if D and wk.nplus1 and rep_ns:
        a1, j1 = min(rep_ns.values())
        terms.append(((need + 1) * a1, [(j1, need + 1, None, 1.0)]))
    value, use = max(terms, key=lambda tm: tm[0])
    if bids is not None and use:
        by_cost = None
        for j, replicas, ranked, rate in use:
            if ranked is None:  # per replica, among all options
                by_cost = by_cost or sorted((x, i) for i, x in enumerate(a))
                ranked, rate = by_cost, 1.0
            unit = a[j] / rate
            for p, amt in opts[j].pools:
                other = next((x for x, i in ranked if p not in opts[i].pool_keys), INF)
                bids[(p, t)].append(((other - unit) * rate / amt, replicas * amt))
    return value


def _cheapest_over(wk: _Work, mu: dict, slots) -> list[float]:
    """Each option's lowest replica-hour cost over ``slots`` (prices differ by slot)."""
    costs = [_costs(wk, mu, t) for t in slots]
    return [min(col) for col in zip(*costs, strict=True)] if costs else []


def _workload_bound(wk: _Work, mu: dict, H: dict, hpm: float, bids: dict | None) -> float:
    if wk.batch:
        # replicas serve the window's slots: each option at its cheapest price over them
        a = _cheapest_over(wk, mu, [t for t in H if t in wk.batch_slots])
        total = 0.0
        for k, per_day in wk.batch_day.items():
            unit = min((a[j] / op.rho[k] for j, op in enumerate(wk.opts) if k in op.rho), default=INF)
            if per_day > 0 and unit < INF:
                total += per_day * hpm / 24.0 / 3600.0 * unit
        floor = min(a, default=0.0) * min((H[t] for t in wk.batch_slots if t in H), default=0.0)
        return max(total, floor)
    total = 0.0
    a = None
    for t in H:
        if a is None or wk.priced:
            a = _costs(wk, mu, t)
        total += H[t] * _slot_terms(wk, a, t, bids)
    if wk.min_sites > 1:
        # a site counts as used with one replica in any one slot: its cheapest slot price
        cheapest: dict[str, float] = {}
        for j, a_j in enumerate(_cheapest_over(wk, mu, H)):
            site = wk.opts[j].site
            cheapest[site] = min(cheapest.get(site, INF), a_j)
        per_site = sorted(cheapest.values())[:wk.min_sites]
        total = max(total, sum(per_site) * min(H.values()))
    return total


def lower_bound(cs: CandidateSet, rounds: int = 8, deadline: float | None = None,
                on_round: Callable[[Bound], None] | None = None) -> Bound:
    """The lower bound of the module docstring: up to ``rounds`` price rounds (the first at
    prices 0), the best round kept (every round is a valid bound). Stops after the round that
    ends past ``deadline`` (time.monotonic()) or when no price changes; ``on_round`` gets the
    best bound after each round."""
    s = cs.res.scenario
    hpm = s.policies.hours_per_month
    H = slot_month_hours(cs.res)
    works, caps = _prepare(cs)
    egress = _egress_bound(cs)
    mu: dict = {}
    best = Bound()
    values: list[float] = []
    for r in range(rounds):
        bids: dict = defaultdict(list)
        by_w = {wk.wid: _workload_bound(wk, mu, H, hpm, bids) for wk in works}
        handed = -sum(H[t] * price * caps[p] for (p, t), price in mu.items())
        value = sum(by_w.values()) + handed + egress
        values.append(value)
        if value > best.value:
            best = Bound(value=value, by_workload=by_w, egress=egress, prices=handed, rounds=r + 1)
        best.values = list(values)
        if on_round is not None:
            on_round(best)
        if deadline is not None and time.monotonic() > deadline:
            break
        if not _reprice(mu, bids, caps):
            break
    return best


class BoundProcess:
    """:func:`lower_bound` in a child process, beside the solver: its rounds are pure Python,
    and in a thread they would hold the GIL that highspy's callbacks need (measured: the same 12 s
    of fix-and-optimise at 200x50 improved 2 groups instead of 6). The child rebuilds the
    candidates from the resolved scenario (pickled: 1.3 MB at 200x50, against 5.8 MB and 0.1 s
    for the candidates; 32 MB and 1.5 s at 1000x100) and keeps exactly the parent's triples;
    ``poll()`` returns the best complete round so far (None before the first)."""

    def __init__(self, cs: CandidateSet, deadline: float, rounds: int = 40):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._conn, child_end = ctx.Pipe(duplex=False)
        keys = sorted(c.key for c in cs.triples)
        self._proc = ctx.Process(target=_child, args=(cs.res, keys, deadline, rounds, CHILD_NICE, child_end),
                                 name="planner-bound", daemon=True)
        self.best: Bound | None = None
        self.error: str | None = None

        def start() -> None:
            # the parent blocks writing the pickled scenario until the child has imported planner
            # (about 1 s): a thread waits for that, not the solver
            try:
                self._proc.start()
            except Exception as exc:  # noqa: BLE001 - no bound, the plan goes on
                self.error = f"{type(exc).__name__}: {exc}"
            finally:
                child_end.close()

        self._starter = threading.Thread(target=start, name="planner-bound-start", daemon=True)
        self._starter.start()

    def poll(self) -> Bound | None:
        try:
            while self._conn.poll():
                kind, payload = self._conn.recv()
                if kind == "round":
                    self.best = payload
                else:
                    self.error = payload
        except (EOFError, OSError):
            pass
        return self.best

    def finish(self) -> Bound | None:
        """The best complete round; the child is stopped (one still starting on a busy machine
        is left to stop by itself: it does nothing once the deadline has passed)."""
        self._starter.join(FINISH_WAIT_S)
        self.poll()
        if self._proc.pid is not None:
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc.join(FINISH_WAIT_S)
        self._conn.close()
        return self.best


def _child(res, keys: list, deadline: float, rounds: int, nice: int, conn) -> None:
    """The child of :class:`BoundProcess`: the parent's candidate set, then rounds until the deadline."""
    import contextlib
    import os

    from planner.derive.candidates import build_candidates

    with contextlib.suppress(OSError):
        os.nice(nice)  # the bound never takes a core from the solver; an idle core is its own
    try:
        if time.monotonic() > deadline:
            return
        full = build_candidates(res)
        want = set(keys)
        cs = full.restricted(want)
        if len(cs.triples) != len(want):
            conn.send(("error", "the candidates rebuilt for the bound differ from the solver's"))
            return

        def send(b: Bound) -> None:
            conn.send(("round", Bound(value=b.value, egress=b.egress, prices=b.prices, rounds=b.rounds,
                                      values=list(b.values))))

        lower_bound(cs, rounds, deadline, on_round=send)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which keeps its plan
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _reprice(mu: dict, bids: dict, caps: dict) -> bool:
    """Next prices, per shared capacity and slot: where the bids ask for more than the capacity,
    raise the price by the bid at which it is full (the bids above it fit); where less than 90 %
    is asked, halve it. Any prices >= 0 give a valid bound; these only aim to make it tighter.
    True when a price changed."""
    changed = False
    for key in set(bids) | {k for k, v in mu.items() if v > 0}:
        cap = caps[key[0]]
        bs = bids.get(key, [])
        asked = sum(units for _wtp, units in bs)
        if asked > cap:
            acc = 0.0
            for wtp, units in sorted(bs, key=lambda b: -b[0]):
                acc += units
                if acc > cap:
                    if 0 < wtp < INF:
                        mu[key] = mu.get(key, 0.0) + wtp
                        changed = True
                    break
        elif mu.get(key, 0.0) > 0 and asked < 0.9 * cap:
            mu[key] *= 0.5
            changed = True
    return changed


def _egress_bound(cs: CandidateSet) -> float:
    """Response egress at each route's cheapest site, data-source egress at the workload's cheapest site."""
    res = cs.res
    s = res.scenario
    total = 0.0
    sites_of: dict[str, set] = defaultdict(set)
    for c in cs.triples:
        sites_of[c.workload].add(c.site)
    for w in s.workloads:
        routes = cs.routes.get(w.id, {})
        if not w.is_batch:
            for u, sites in routes.items():
                price = min((res.sites[sid].internet_egress_usd_per_gb for sid in sites), default=0.0)
                if price > 0:
                    total += price * sum(response_gb(res, cs.loads, w.id, u, t.id) for t in s.time_slots)
        serving = {sid for ss in routes.values() for sid in ss} if not w.is_batch else sites_of[w.id]
        for ds in w.data_sources:
            prices = [cs.egress[(w.id, ds.id, sid)].usd_per_gb for sid in serving if (w.id, ds.id, sid) in cs.egress]
            if prices and len(prices) == len(serving):
                total += ds.gb_per_month * min(prices)
    return total


def _failover_one_class(D: float, b: dict[str, float]) -> tuple[float, list[tuple[str, float]]]:
    """min sum_s b_s c_s s.t. sum_{s != l} c_s >= D for every l: D min_{m>=2} B_m / (m - 1) over
    the sorted b (by the LP's dual: max D M s.t. sum_s max(0, M - b_s) <= M), and the sites with
    their capacity D / (m - 1) at the best m."""
    order = sorted((v, sid) for sid, v in b.items() if v < INF)
    best, best_m, acc = INF, 0, 0.0
    for m, (v, _sid) in enumerate(order, start=1):
        acc += v
        if m >= 2 and acc / (m - 1) < best:
            best, best_m = acc / (m - 1), m
    if best == INF:
        return 0.0, []
    return D * best, [(sid, D / (best_m - 1)) for _v, sid in order[:best_m]]


def _failover_classes(D: dict[str, float], b: dict[str, dict[str, float]], sites: list[str]) -> float:
    """max( max_l V_l, sum_l V_l / (|S| - 1) ), V_l = sum_k D_k min_{s != l} b[k][s]."""
    if len(sites) < 2:
        return 0.0
    lowest = {k: sorted((v, s) for s, v in by_s.items() if v < INF)[:2] for k, by_s in b.items()}
    V = []
    for lost in sites:
        v = 0.0
        for k, load in D.items():
            rest = [x for x, s in lowest.get(k, []) if s != lost]
            if rest:
                v += load * rest[0]
        V.append(v)
    return max(max(V), sum(V) / (len(sites) - 1))
