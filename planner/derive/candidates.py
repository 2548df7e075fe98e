"""Hard filters: which (workload, site, offer) triples and (workload, user region, site) routes
may exist in the model. Every excluded pair keeps the reason it was excluded.

Filters, in order:
1. residency / jurisdiction (per user region for ``same_as_user``);
2. network RTT SLO from each user region to the site (unknown RTT fails an SLO);
3. hardware: the model's replica fits the instance (weights + KV reserve), the accelerator has
   the figures the throughput model needs (or a measured profile), and at least one query class
   meets its TTFT/TPOT targets on it;
4. pricing: the offer has a price for at least one allowed pricing model (tier);
5. dominance: at one site, an offer of the same accelerator and replica shape that costs at
   least as much per replica in every tier as another is dropped.

N+1 (see :func:`protected_classes`): a site beyond a user region's RTT SLO but within its
``redundancy.failover_network_rtt_ms`` gets candidates too (standby capacity may sit there), but
no normal route; ``failover_sites`` lists, per (workload, protected class, user region), the sites
that may serve it while another site is lost.

Before all of them, a site a variant's ``only`` patch keeps from compute (``Resolved.
compute_excluded``) gets no candidate for any workload (rule ``only``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from planner.derive.demand import LoadClass, WorkloadLoad, build_loads
from planner.derive.serving import workload_rates
from planner.derive.throughput import Estimate, ReplicaShape
from planner.derive.topology import Link, link_tables
from planner.gcpause import gc_paused
from planner.input.consistency import Offer, Resolved, residency_allows

BASELINE_TIERS = ("owned", "bought", "reserved")
BURST_TIERS = ("on_demand", "spot")


@dataclass(slots=True)
class Candidate:
    """An allowed (workload, site, offer) triple. ``rps`` and ``tiers`` may be shared between
    candidates alike (read-only)."""

    workload: str
    site: str
    offer: Offer
    shape: ReplicaShape
    rps: dict[str, Estimate]  # per load class key (rps per replica; 0 = class cannot run here)
    tiers: list[str]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.workload, self.site, self.offer.id)

    def unit_price(self, tier: str, hours_per_month: float) -> float:
        """USD per month of one instance in a tier (burst tiers: per hour)."""
        o = self.offer
        if tier == "reserved":
            return (o.reserved_usd_hr or 0.0) * hours_per_month
        if tier == "bought":
            return o.buy_usd_per_gpu_month
        if tier == "owned":
            return 0.0
        if tier == "on_demand":
            return o.ondemand_usd_hr or 0.0
        return o.spot_usd_hr or 0.0


@dataclass(slots=True)
class Exclusion:
    workload: str
    user_region: str
    site: str
    offer: str
    reason: str


class ExclusionLog(Sequence):
    """Every pruned pair, in the order the filters met them, kept as columns (a few references
    per pair, no object each): millions of pairs at 5000 x 300 would otherwise cost an object and
    a dict apiece. Reads as a sequence of :class:`Exclusion` (made on demand); :meth:`rule_counts`,
    :meth:`of_workload` and :meth:`columns` read the columns without making them. Exclusions of
    one workload are contiguous (the filters run workload by workload)."""

    __slots__ = ("workload", "user_region", "site", "offer", "reason", "_spans")

    def __init__(self, items: Iterable[Exclusion] = ()):
        self.workload: list[str] = []
        self.user_region: list[str] = []
        self.site: list[str] = []
        self.offer: list[str] = []
        self.reason: list[str] = []
        self._spans: dict[str, list[tuple[int, int]]] = {}
        for e in items:
            self.append(e)

    def __len__(self) -> int:
        return len(self.reason)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return Exclusion(self.workload[i], self.user_region[i], self.site[i], self.offer[i], self.reason[i])

    def __iter__(self) -> Iterator[Exclusion]:
        for row in zip(self.workload, self.user_region, self.site, self.offer, self.reason, strict=True):
            yield Exclusion(*row)

    def _mark(self, workload: str, start: int) -> None:
        spans = self._spans.setdefault(workload, [])
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], len(self))
        else:
            spans.append((start, len(self)))

    def append(self, e: Exclusion) -> None:
        start = len(self)
        self.workload.append(e.workload)
        self.user_region.append(e.user_region)
        self.site.append(e.site)
        self.offer.append(e.offer)
        self.reason.append(e.reason)
        self._mark(e.workload, start)

    def add(self, workload: str, user_regions: list[str], sites: list[str], offers: list[str],
            reasons: list[str]) -> None:
        """Append pairs of one workload given as columns (equal lengths)."""
        if not reasons:
            return
        start = len(self)
        self.workload.extend([workload] * len(reasons))
        self.user_region.extend(user_regions)
        self.site.extend(sites)
        self.offer.extend(offers)
        self.reason.extend(reasons)
        self._mark(workload, start)

    def of_workload(self, workload: str) -> list[Exclusion]:
        """The exclusions of one workload, in order."""
        return [self[i] for a, b in self._spans.get(workload, []) for i in range(a, b)]

    def rule_counts(self) -> Counter:
        """Exclusions per rule (the reason's text before the first colon)."""
        out: Counter = Counter()
        for reason, n in Counter(self.reason).items():
            out[_reason_kind(reason)] += n
        return out

    def columns(self) -> dict[str, list]:
        return {"workload": self.workload, "user_region": self.user_region, "site": self.site,
                "offer": self.offer, "reason": self.reason}


@dataclass
class CandidateSet:
    res: Resolved
    loads: dict[str, WorkloadLoad]
    triples: list[Candidate]
    routes: dict[str, dict[str, list[str]]]  # workload -> user region -> allowed sites
    rtt: dict[tuple[str, str], Link]
    egress: dict
    exclusions: ExclusionLog = field(default_factory=ExclusionLog)
    #: (workload, protected class key, user region) -> sites allowed to serve it in failover
    #: (residency, failover RTT limit, an offer that runs the class), sorted by RTT
    failover_sites: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)

    def with_triples(self, triples: list[Candidate]) -> CandidateSet:
        """The same candidate set (routes, links, egress, exclusions, failover sites) with
        ``triples`` as its candidates."""
        return CandidateSet(res=self.res, loads=self.loads, triples=triples, routes=self.routes, rtt=self.rtt,
                            egress=self.egress, exclusions=self.exclusions, failover_sites=self.failover_sites)

    def restricted(self, keys: set[tuple[str, str, str]]) -> CandidateSet:
        """The same candidate set with only the (workload, site, offer) triples in ``keys``."""
        return self.with_triples([c for c in self.triples if c.key in keys])

    def reason_counts(self) -> dict[str, int]:
        ex = self.exclusions
        counts = ex.rule_counts() if isinstance(ex, ExclusionLog) else Counter(_reason_kind(e.reason) for e in ex)
        return dict(sorted(counts.items()))

    def by_key(self) -> dict[tuple[str, str, str], Candidate]:
        """(workload, site, offer) -> candidate, built once per triples list (read-only)."""
        cached = self.__dict__.get("_by_key")
        if cached is None or cached[0] is not self.triples or cached[1] != len(self.triples):
            cached = (self.triples, len(self.triples), {c.key: c for c in self.triples})
            self.__dict__["_by_key"] = cached
        return cached[2]

    def by_workload(self) -> dict[str, list[Candidate]]:
        """workload -> its candidates (every workload of the scenario a key), built once per
        triples list (read-only: callers share it)."""
        cached = self.__dict__.get("_by_workload")
        if cached is None or cached[0] is not self.triples or cached[1] != len(self.triples):
            out: dict[str, list[Candidate]] = {w.id: [] for w in self.res.scenario.workloads}
            for c in self.triples:
                out[c.workload].append(c)
            cached = (self.triples, len(self.triples), out)
            self.__dict__["_by_workload"] = cached
        return cached[2]

    def for_group(self, triples: list[Candidate], workloads: list[str]) -> CandidateSet:
        """The same candidate set with only ``triples`` (all of them of ``workloads``): a group
        model's (planner/optimise/lns.py). Its :meth:`by_workload` holds only those workloads
        (a dict over every workload of a 5000-workload scenario took 4 ms per group model)."""
        sub = self.with_triples(triples)
        out: dict[str, list[Candidate]] = {w: [] for w in workloads}
        for c in triples:
            out[c.workload].append(c)
        sub.__dict__["_by_workload"] = (triples, len(triples), out)
        return sub


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]


def protected_classes(res: Resolved, loads: dict[str, WorkloadLoad], wid: str) -> list[LoadClass]:
    """Load classes of a workload that N+1 protects: all of them when the workload is N+1, else
    those escalated from an N+1 workload ("protected on its target for that share")."""
    s = res.scenario
    w = s.workload(wid)
    if w.is_batch:
        return []
    if w.redundancy.mode == "n_plus_1":
        return list(loads[wid].classes)
    return [lc for lc in loads[wid].classes if lc.escalated and s.workload(lc.origin).redundancy.mode == "n_plus_1"]


def failover_rtt_limit(res: Resolved, wid: str, lc: LoadClass) -> float | None:
    """RTT limit while a site is lost: the N+1 workload's ``failover_network_rtt_ms`` (the serving
    workload's if it is N+1, else the escalating origin's), else the serving workload's RTT SLO."""
    s = res.scenario
    w = s.workload(wid)
    owner = w if w.redundancy.mode == "n_plus_1" else s.workload(lc.origin)
    limit = owner.redundancy.failover_network_rtt_ms
    return limit if limit is not None else w.latency.network_rtt_ms


def _tiers(res: Resolved, o: Offer) -> list[str]:
    allowed = set(res.scenario.policies.pricing_models)
    if o.provider == "onprem":
        return [t for t, n in (("owned", o.owned), ("bought", o.buyable)) if n > 0]
    out = []
    if "reserved" in allowed and o.reserved_usd_hr is not None:
        out.append("reserved")
    if "on_demand" in allowed and o.ondemand_usd_hr is not None:
        out.append("on_demand")
    if "spot" in allowed and o.spot_usd_hr is not None:
        out.append("spot")
    return out


@gc_paused
def build_candidates(res: Resolved) -> CandidateSet:
    """The candidate set of a scenario. Linear in workloads x sites x user regions with small
    constants: the residency and latency filters run as arrays over a workload's sites (one row
    per user region), residency and latency reasons are computed once per distinct input, and the
    hardware, pricing and dominance outcome at a site is computed once per (site, rates signature)
    (what :func:`~planner.derive.serving.workload_rates` reads of a workload) and shared by
    workloads alike, its rates once per (rates signature, accelerator, replica room)."""
    s = res.scenario
    offsets = {u: r.utc_offset_hours for u, r in res.user_regions.items()}
    loads = build_loads(s, offsets)
    rtts, egress = link_tables(res)  # = rtt_matrix / egress_matrix of build_graph(res)
    hpm = s.policies.hours_per_month
    exclusions = ExclusionLog()
    triples: list[Candidate] = []
    routes: dict[str, dict[str, list[str]]] = {}
    sids = sorted(res.sites)
    n_sites = len(sids)
    wk = {w.id: w for w in s.workloads}
    pairs = _PairTable(res, sids, rtts)
    # sites a variant's `only` keeps from compute: one exclusion per workload and site, first
    cx = np.array([sid in res.compute_excluded for sid in sids], dtype=bool)
    cx_idx = np.flatnonzero(cx)
    cx_text = [res.compute_excluded[sids[i]] for i in cx_idx.tolist()]
    tiers_of: dict[int, list[str]] = {}  # id(offer) -> tiers
    rates: dict[tuple, object] = {}  # (signature, accelerator, replica room) -> workload_rates' answer
    outcome: dict[tuple, tuple] = {}  # (site, signature) -> what _site_outcome gives
    pruned: dict[tuple, tuple[list[int], list[tuple[int, str]]]] = {}  # dominance per site, offers and shapes

    for w in s.workloads:
        wl = loads[w.id]
        res_key = tuple(w.residency) if isinstance(w.residency, list) else w.residency
        users = sorted({d.user_region for d in w.demand}) if not w.is_batch else []
        # users reached through escalation into this workload are among its own (checked)
        routes[w.id] = {u: [] for u in users}
        w_routes = routes[w.id]
        if w.is_batch:
            why = pairs.residency(res_key, w.residency, None)
            bad_mask = (why.code != 0) & ~cx
            bad = np.flatnonzero(bad_mask | cx)
            texts = why.text.copy()
            if len(cx_idx):
                texts[cx_idx] = cx_text
            exclusions.add(w.id, [""] * len(bad), [sids[i] for i in bad.tolist()], [""] * len(bad),
                           texts[bad].tolist())
            site_ok = ~(bad_mask | cx)
        else:
            protected = protected_classes(res, loads, w.id)
            fo_limits = [failover_rtt_limit(res, w.id, lc) for lc in protected]
            # standby capacity may sit beyond the SLO, within the widest failover limit
            fo_reach = None if not protected or any(x is None for x in fo_limits) else max(fo_limits)
            slo = w.latency.network_rtt_ms
            # per user region (rows): 0 allowed, 1 residency, 2 RTT unknown, 3 RTT over the SLO
            code = np.zeros((len(users), n_sites), dtype=np.int8)
            text = np.empty((len(users), n_sites), dtype=object)
            site_ok = np.zeros(n_sites, dtype=bool)
            for j, u in enumerate(users):
                why = pairs.residency(res_key, w.residency, u)
                row = code[j]
                row[(why.code != 0) & ~cx] = 1
                text[j] = why.text
                free = (row == 0) & ~cx
                if slo is not None:
                    r = pairs.rtt[pairs.uix[u]]
                    unknown = free & np.isnan(r)
                    over = free & (r > slo)  # an unknown RTT (NaN) is never over
                    if protected:
                        standby = over if fo_reach is None else over & (r <= fo_reach)
                        site_ok |= standby  # failover only: no route in normal serving
                        over &= ~standby
                        free &= ~standby
                    row[unknown] = 2
                    text[j, unknown] = _UNKNOWN_RTT
                    row[over] = 3
                    text[j, over] = pairs.latency_text(u, slo)[over]
                    free &= ~(unknown | over)
                w_routes[u] = [sids[i] for i in np.flatnonzero(free)]
                site_ok |= free
            sidx, uidx = np.nonzero(code.T)  # site by site, then user region by user region
            ex_u = [users[j] for j in uidx.tolist()]
            ex_s = sidx.tolist()
            ex_r = text.T[sidx, uidx].tolist()
            if len(cx_idx):  # a compute-excluded site's one exclusion in its place among the sites
                order = np.argsort(np.concatenate([cx_idx, sidx]), kind="stable").tolist()
                ex_u = [([""] * len(cx_idx) + ex_u)[k] for k in order]
                ex_r = [(cx_text + ex_r)[k] for k in order]
                ex_s = [(cx_idx.tolist() + ex_s)[k] for k in order]
            exclusions.add(w.id, ex_u, [sids[i] for i in ex_s], [""] * len(ex_s), ex_r)
        site_ok = [sids[i] for i in np.flatnonzero(site_ok)]
        if not site_ok:
            continue
        # what workload_rates reads of a workload: workloads alike share rates and outcomes
        sig = (w.model, w.latency.ttft_ms, w.latency.tpot_ms, w.weight_precision, w.kv_cache_precision,
               w.max_batch_sequences,
               tuple((lc.key, lc.qclass.share, lc.qclass.input_tokens, lc.qclass.output_tokens,
                      wk[lc.origin].prefix_cache_rate) for lc in wl.classes))
        ex_sites: list[str] = []
        ex_offers: list[str] = []
        ex_reasons: list[str] = []
        for sid in site_ok:
            done = outcome.get((sid, sig))
            if done is None:
                done = outcome[(sid, sig)] = _site_outcome(res, sid, w, wl.classes, sig, rates, tiers_of, pruned, hpm)
            keep, ex_o, ex_r = done
            triples.extend([Candidate(w.id, sid, o, shape, rps, tiers) for o, shape, rps, tiers in keep])
            if ex_r:
                ex_sites.extend([sid] * len(ex_r))
                ex_offers.extend(ex_o)
                ex_reasons.extend(ex_r)
        exclusions.add(w.id, [""] * len(ex_reasons), ex_sites, ex_offers, ex_reasons)
    cs = CandidateSet(res=res, loads=loads, triples=triples, routes=routes, rtt=rtts, egress=egress,
                      exclusions=exclusions)
    cs.failover_sites = _failover_sites(cs)
    return cs


def _site_outcome(res: Resolved, sid: str, w, classes: list[LoadClass], sig: tuple, rates: dict, tiers_of: dict,
                  pruned: dict, hpm: float) -> tuple[list[tuple], list[str], list[str]]:
    """The hardware, pricing and dominance filters at one site for a workload's rates signature:
    ((offer, shape, rates, tiers) kept, offer ids excluded, their reasons), in the filters' order
    (hardware and pricing offer by offer, then the dominated ones)."""
    site = res.sites[sid]
    ex_offers: list[str] = []
    ex_reasons: list[str] = []
    kept: list[Candidate] = []
    for o in site.offers:
        rkey = (sig, o.accelerator, site.replica_room(o))
        if rkey in rates:
            got = rates[rkey]
        else:
            got = rates[rkey] = workload_rates(res, w, classes, o, site)
        if got is None:
            ex_offers.append(o.id)
            ex_reasons.append(f"hardware: {w.model} does not fit {o.gpus:g} x {o.accelerator}")
            continue
        shape, rps = got
        if not any(e.rps > 0 for e in rps.values()):
            why = next(iter(rps.values())).limit if rps else "no query classes"
            ex_offers.append(o.id)
            ex_reasons.append(f"hardware: no query class can be served ({why})")
            continue
        tiers = tiers_of.get(id(o))
        if tiers is None:
            tiers = tiers_of[id(o)] = _tiers(res, o)
        if not tiers:
            ex_offers.append(o.id)
            ex_reasons.append("pricing: no price for an allowed pricing model")
            continue
        kept.append(Candidate(w.id, sid, o, shape, rps, tiers))  # rps, tiers shared, read-only
    if len(kept) >= 2:
        # the rule reads offers, shapes and tiers (the offer's): shared by rates alike
        pkey = (sid, tuple((id(c.offer), c.shape) for c in kept))
        if pkey not in pruned:
            pruned[pkey] = _dominance(kept, hpm)
        keep_idx, dominated = pruned[pkey]
        for i, dom_id in dominated:
            ex_offers.append(kept[i].offer.id)
            ex_reasons.append(f"dominated: {dom_id} is no dearer per replica in every tier")
        kept = [kept[i] for i in keep_idx]
    return [(c.offer, c.shape, c.rps, c.tiers) for c in kept], ex_offers, ex_reasons


class _Residency:
    __slots__ = ("code", "text")

    def __init__(self, code: np.ndarray, text: np.ndarray):
        self.code = code  # per site (sorted ids): 1 excluded, 0 allowed
        self.text = text  # per site: the exclusion reason, or None


class _PairTable:
    """(user region, site) facts as arrays over the sites (sorted ids): RTT (NaN when unknown),
    and, cached per distinct input, residency verdicts per (residency rule, user region) and
    latency reason texts per (user region, SLO)."""

    def __init__(self, res: Resolved, sids: list[str], rtts: dict[tuple[str, str], Link]):
        self.res = res
        self.sids = sids
        users = sorted(res.user_regions)
        self.uix = {u: i for i, u in enumerate(users)}
        self.rtt = np.full((len(users), len(sids)), np.nan)
        self.links: list[list[Link]] = []
        for i, u in enumerate(users):
            row = [rtts[(u, sid)] for sid in sids]
            self.links.append(row)
            self.rtt[i] = [np.nan if link.rtt_ms is None else link.rtt_ms for link in row]
        self._res: dict[tuple, _Residency] = {}
        self._lat: dict[tuple, np.ndarray] = {}

    def residency(self, key, residency, u: str | None) -> _Residency:
        if (key, u) not in self._res:
            res = self.res
            up = res.user_regions[u].point if u else None
            text = np.empty(len(self.sids), dtype=object)
            for i, sid in enumerate(self.sids):
                why = residency_allows(residency, up, res.sites[sid].point)
                if why is not None:
                    text[i] = f"residency: {why}"
            self._res[(key, u)] = _Residency(np.not_equal(text, None).astype(np.int8), text)
        return self._res[(key, u)]

    def latency_text(self, u: str, slo: float) -> np.ndarray:
        """Per site, the latency reason of a pair over ``slo`` (None where it is not)."""
        if (u, slo) not in self._lat:
            text = np.empty(len(self.sids), dtype=object)
            for i, link in enumerate(self.links[self.uix[u]]):
                if link.rtt_ms is not None and link.rtt_ms > slo:
                    text[i] = f"latency: RTT {link.rtt_ms:.0f} ms ({link.rtt_source}) > SLO {slo:.0f} ms"
            self._lat[(u, slo)] = text
        return self._lat[(u, slo)]


_UNKNOWN_RTT = "latency: RTT unknown (site location not in the catalog) and the workload has an RTT SLO"


def _failover_sites(cs: CandidateSet) -> dict[tuple[str, str, str], list[str]]:
    """(workload, protected class, user region) -> sites that may serve it while another site is
    lost: residency allows it, RTT within the failover limit, an offer there runs the class."""
    res = cs.res
    out: dict[tuple[str, str, str], list[str]] = {}
    by_w = cs.by_workload()
    for w in res.scenario.workloads:
        protected = protected_classes(res, cs.loads, w.id)
        if not protected:
            continue
        users = sorted({d.user_region for d in w.demand})
        for lc in protected:
            capable = {c.site for c in by_w[w.id] if c.rps[lc.key].rps > 0}
            limit = failover_rtt_limit(res, w.id, lc)
            for u in users:
                up = res.user_regions[u].point
                ok = []
                for sid in capable:
                    if residency_allows(w.residency, up, res.sites[sid].point) is not None:
                        continue
                    link = cs.rtt[(u, sid)]
                    if limit is not None and (link.rtt_ms is None or link.rtt_ms > limit):
                        continue
                    ok.append(sid)
                out[(w.id, lc.key, u)] = sorted(ok, key=lambda sid, u=u: (cs.rtt[(u, sid)].rtt_ms or 0.0, sid))
    return out


def _prune_dominated(cands: list[Candidate], exclusions: list[Exclusion], hpm: float) -> list[Candidate]:
    """Drop an offer when another at the same site, same accelerator and same replica shape is
    no dearer per replica in every tier and has every tier it has, and serves every class at least
    as fast (the throughput is the same for the same accelerator and shape)."""
    if len(cands) < 2:
        return cands
    keep_idx, dominated = _dominance(cands, hpm)
    for i, dom_id in dominated:
        c = cands[i]
        exclusions.append(Exclusion(c.workload, "", c.site, c.offer.id, f"dominated: {dom_id} is no dearer "
                                    "per replica in every tier"))
    return [cands[i] for i in keep_idx]


def _dominance(cands: list[Candidate], hpm: float) -> tuple[list[int], list[tuple[int, str]]]:
    """The rule of :func:`_prune_dominated` on the candidates of one (workload, site): indices
    kept, and (index, dominating offer id) of those dropped, in candidate order. It reads only
    offers, shapes and tiers, so workloads with the same offers and shapes at a site share it.
    Compared within a group of the same accelerator and shape (the only pairs the rule can
    relate), each candidate's per-replica prices computed once."""
    all_tiers = BASELINE_TIERS + BURST_TIERS
    inf = float("inf")
    prices = [tuple(c.unit_price(t, hpm) / c.shape.replicas_per_instance if t in c.tiers else inf
                    for t in all_tiers) for c in cands]
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(cands):
        groups.setdefault((c.offer.accelerator, c.shape.tp, c.shape.gpus), []).append(i)
    keep: list[int] = []
    dominated: list[tuple[int, str]] = []
    for i, c in enumerate(cands):
        pc = prices[i]
        dom = None
        for j in groups[(c.offer.accelerator, c.shape.tp, c.shape.gpus)]:
            d = cands[j]
            if j == i or d.offer.provider == "onprem":
                continue
            pd_ = prices[j]
            no_worse = all(a <= b + 1e-12 for a, b in zip(pd_, pc, strict=True))
            better = any(a < b - 1e-12 for a, b in zip(pd_, pc, strict=True))
            finer = d.shape.replicas_per_instance <= c.shape.replicas_per_instance
            tie_break = (not better) and finer and d.offer.id < c.offer.id
            if no_worse and finer and (better or tie_break):
                dom = d
                break
        if dom is None:
            keep.append(i)
        else:
            dominated.append((i, dom.offer.id))
    return keep, dominated
