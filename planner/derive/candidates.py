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

Before all of them, a site a variant's ``only`` patch keeps from compute (``Resolved.
compute_excluded``) gets no candidate for any workload (rule ``only``).

N+1 (see :func:`protected_classes`): a site beyond a user region's RTT SLO but within its
``redundancy.failover_network_rtt_ms`` gets candidates too (standby capacity may sit there), but
no normal route; ``failover_sites`` lists, per (workload, protected class, user region), the sites
that may serve it while another site is lost.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from planner.derive.demand import LoadClass, WorkloadLoad, build_loads
from planner.derive.serving import workload_rates
from planner.derive.throughput import Estimate, ReplicaShape
from planner.derive.topology import Link, build_graph, egress_matrix, rtt_matrix
from planner.input.consistency import Offer, Resolved, residency_allows

BASELINE_TIERS = ("owned", "bought", "reserved")
BURST_TIERS = ("on_demand", "spot")


@dataclass
class Candidate:
    """An allowed (workload, site, offer) triple."""

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


@dataclass
class Exclusion:
    workload: str
    user_region: str
    site: str
    offer: str
    reason: str


@dataclass
class CandidateSet:
    res: Resolved
    loads: dict[str, WorkloadLoad]
    triples: list[Candidate]
    routes: dict[str, dict[str, list[str]]]  # workload -> user region -> allowed sites
    rtt: dict[tuple[str, str], Link]
    egress: dict
    exclusions: list[Exclusion] = field(default_factory=list)
    #: (workload, protected class key, user region) -> sites allowed to serve it in failover
    #: (residency, failover RTT limit, an offer that runs the class), sorted by RTT
    failover_sites: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)

    def restricted(self, keys: set[tuple[str, str, str]]) -> CandidateSet:
        """The same candidate set with only the (workload, site, offer) triples in ``keys``."""
        return CandidateSet(res=self.res, loads=self.loads, triples=[c for c in self.triples if c.key in keys],
                            routes=self.routes, rtt=self.rtt, egress=self.egress, exclusions=self.exclusions,
                            failover_sites=self.failover_sites)

    def reason_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(_reason_kind(e.reason) for e in self.exclusions).items()))

    def by_key(self) -> dict[tuple[str, str, str], Candidate]:
        """(workload, site, offer) -> candidate, built once per triples list (read-only)."""
        cached = self.__dict__.get("_by_key")
        if cached is None or cached[0] is not self.triples or cached[1] != len(self.triples):
            cached = (self.triples, len(self.triples), {c.key: c for c in self.triples})
            self.__dict__["_by_key"] = cached
        return cached[2]

    def by_workload(self) -> dict[str, list[Candidate]]:
        out: dict[str, list[Candidate]] = {w.id: [] for w in self.res.scenario.workloads}
        for c in self.triples:
            out[c.workload].append(c)
        return out


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


def build_candidates(res: Resolved) -> CandidateSet:
    s = res.scenario
    offsets = {u: r.utc_offset_hours for u, r in res.user_regions.items()}
    loads = build_loads(s, offsets)
    graph = build_graph(res)
    rtts = rtt_matrix(graph)
    egress = egress_matrix(graph)
    hpm = s.policies.hours_per_month
    exclusions: list[Exclusion] = []
    triples: list[Candidate] = []
    routes: dict[str, dict[str, list[str]]] = {}
    for w in s.workloads:
        wl = loads[w.id]
        users = sorted({d.user_region for d in w.demand}) if not w.is_batch else []
        # users reached through escalation into this workload are among its own (checked)
        site_ok: dict[str, bool] = {}
        routes[w.id] = {u: [] for u in users}
        protected = protected_classes(res, loads, w.id)
        fo_limits = [failover_rtt_limit(res, w.id, lc) for lc in protected]
        # standby capacity may sit beyond the SLO, within the widest failover limit
        fo_reach = None if not protected or any(x is None for x in fo_limits) else max(fo_limits)
        for sid, site in sorted(res.sites.items()):
            if sid in res.compute_excluded:
                exclusions.append(Exclusion(w.id, "", sid, "", res.compute_excluded[sid]))
                continue
            if w.is_batch:
                why = residency_allows(w.residency, None, site.point)
                if why is not None:
                    exclusions.append(Exclusion(w.id, "", sid, "", f"residency: {why}"))
                    continue
                site_ok[sid] = True
                continue
            for u in users:
                up = res.user_regions[u].point
                why = residency_allows(w.residency, up, site.point)
                if why is not None:
                    exclusions.append(Exclusion(w.id, u, sid, "", f"residency: {why}"))
                    continue
                slo = w.latency.network_rtt_ms
                link = rtts[(u, sid)]
                if slo is not None:
                    if link.rtt_ms is None:
                        exclusions.append(Exclusion(w.id, u, sid, "", "latency: RTT unknown (site location not in the "
                                                    "catalog) and the workload has an RTT SLO"))
                        continue
                    if link.rtt_ms > slo:
                        if protected and (fo_reach is None or link.rtt_ms <= fo_reach):
                            site_ok[sid] = True  # failover only: no route in normal serving
                            continue
                        exclusions.append(Exclusion(w.id, u, sid, "", f"latency: RTT {link.rtt_ms:.0f} ms "
                                                    f"({link.rtt_source}) > SLO {slo:.0f} ms"))
                        continue
                routes[w.id][u].append(sid)
                site_ok[sid] = True
        for sid in sorted(site_ok):
            site = res.sites[sid]
            kept: list[Candidate] = []
            for o in site.offers:
                got = workload_rates(res, w, wl.classes, o, site)
                if got is None:
                    exclusions.append(Exclusion(w.id, "", sid, o.id, f"hardware: {w.model} does not fit "
                                                f"{o.gpus:g} x {o.accelerator}"))
                    continue
                shape, rps = got
                if not any(e.rps > 0 for e in rps.values()):
                    why = next(iter(rps.values())).limit if rps else "no query classes"
                    exclusions.append(Exclusion(w.id, "", sid, o.id, f"hardware: no query class can be served ({why})"))
                    continue
                tiers = _tiers(res, o)
                if not tiers:
                    exclusions.append(Exclusion(w.id, "", sid, o.id, "pricing: no price for an allowed pricing model"))
                    continue
                kept.append(Candidate(w.id, sid, o, shape, rps, tiers))
            triples.extend(_prune_dominated(kept, exclusions, hpm))
    cs = CandidateSet(res=res, loads=loads, triples=triples, routes=routes, rtt=rtts, egress=egress,
                      exclusions=exclusions)
    cs.failover_sites = _failover_sites(cs)
    return cs


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
    all_tiers = BASELINE_TIERS + BURST_TIERS

    def per_replica(c: Candidate) -> tuple[float, ...]:
        return tuple(
            c.unit_price(t, hpm) / c.shape.replicas_per_instance if t in c.tiers else float("inf") for t in all_tiers
        )

    keep = []
    for c in cands:
        pc = per_replica(c)
        dom = None
        for d in cands:
            if d is c or d.offer.accelerator != c.offer.accelerator or d.shape.tp != c.shape.tp:
                continue
            if d.shape.gpus != c.shape.gpus or d.offer.provider == "onprem":
                continue
            pd_ = per_replica(d)
            no_worse = all(a <= b + 1e-12 for a, b in zip(pd_, pc, strict=True))
            better = any(a < b - 1e-12 for a, b in zip(pd_, pc, strict=True))
            finer = d.shape.replicas_per_instance <= c.shape.replicas_per_instance
            tie_break = (not better) and finer and d.offer.id < c.offer.id
            if no_worse and finer and (better or tie_break):
                dom = d
                break
        if dom is None:
            keep.append(c)
        else:
            exclusions.append(Exclusion(c.workload, "", c.site, c.offer.id, f"dominated: {dom.offer.id} is no dearer "
                                        "per replica in every tier"))
    return keep
