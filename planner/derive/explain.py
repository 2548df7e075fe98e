"""Why a scenario has no plan before any model is built: workloads, user regions or query
classes with nothing to run on, and N+1 promises no pair of sites can keep.

Linear in the size of the candidate set: the exclusions are read only for the workloads (and
user regions) that have nothing to run on, through the per-workload spans of
:class:`~planner.derive.candidates.ExclusionLog`; nothing here loops over workloads x
exclusions.
"""

from __future__ import annotations

import math
from collections import defaultdict

from planner.derive.candidates import CandidateSet, Exclusion, failover_rtt_limit, protected_classes
from planner.derive.serving import workload_rates
from planner.input.consistency import residency_allows


def _exclusions_of(cs: CandidateSet):
    """workload id -> its exclusions, read on demand."""
    ex = cs.exclusions
    if hasattr(ex, "of_workload"):
        return ex.of_workload
    grouped: dict[str, list[Exclusion]] = defaultdict(list)
    for e in ex:
        grouped[e.workload].append(e)
    return lambda wid: grouped.get(wid, [])


def explain_no_candidates(cs: CandidateSet) -> list[str]:
    """Why workloads, user regions or query classes have nothing to run on (linear in the
    number of candidates; the exclusions of a workload are read only when it needs a reason)."""
    out = []
    by_w = cs.by_workload()
    excl_of = _exclusions_of(cs)
    for w in cs.res.scenario.workloads:
        if not by_w[w.id]:
            reasons = sorted({e.reason for e in excl_of(w.id)})
            out.append(f"workload {w.id} has no candidate (site, offer): " + "; ".join(reasons[:6])
                       + (f" (and {len(reasons) - 6} more)" if len(reasons) > 6 else ""))
            continue
        loaded = cs.loads[w.id].loaded()
        for u, sites in cs.routes.get(w.id, {}).items():
            reach = set(sites)
            here = [c for c in by_w[w.id] if c.site in reach]
            if not here:
                out.append(unreachable_users(cs, w, u, [e for e in excl_of(w.id) if e.user_region == u]))
                continue
            for lc in cs.loads[w.id].classes:
                if (lc.key, u) in loaded and not any(c.rps[lc.key].rps > 0 for c in here):
                    why = sorted({c.rps[lc.key].limit for c in here})
                    out.append(f"workload {w.id}: no site users in {u} can reach runs class {lc.key} "
                               f"({'; '.join(why[:3])}). To fix: relax the class's TTFT/TPOT targets, shorten it, "
                               "or allow a site with a larger accelerator")
    return out


def unreachable_users(cs: CandidateSet, w, u: str, excl: list) -> str:
    """Users in ``u`` reach no site that can run ``w``: the nearest sites that could run it (RTT
    sorted as numbers, not text), the other reasons, and the fix (raise the SLO to N ms, or add a
    site near ``u``)."""
    res = cs.res
    up = res.user_regions[u].point
    slo = w.latency.network_rtt_ms
    own = [lc for lc in cs.loads[w.id].classes if not lc.escalated] or list(cs.loads[w.id].classes)
    near = []
    for sid, site in res.sites.items():
        if sid in res.compute_excluded or residency_allows(w.residency, up, site.point) is not None:
            continue
        link = cs.rtt[(u, sid)]
        if link.rtt_ms is None:
            continue
        if any(_can_run(res, w, lc, site, cs.loads[w.id].classes) for lc in own):
            near.append((link.rtt_ms, sid, link.rtt_source))
    near.sort()
    msg = f"workload {w.id}: users in {u} can reach no site that can run {w.model}"
    if slo is not None:
        msg += f" within its network RTT SLO of {slo:g} ms"
    if near:
        msg += "; nearest sites that could: " + ", ".join(f"{sid} at {rtt:.1f} ms ({src})" for rtt, sid, src in near[:4])
    other = sorted({e.reason for e in excl if not e.reason.startswith("latency:")})
    if other:
        msg += "; also: " + "; ".join(other[:4])
    fixes = []
    if near and slo is not None and near[0][0] > slo:
        fixes.append(f"raise latency.network_rtt_ms of {w.id} to {math.ceil(near[0][0])} ms (reaches {near[0][1]})")
    fixes.append(f"add a site near {u}" + (f" (within {slo:g} ms)" if slo is not None else "")
                 + f" that can run {w.model}")
    return msg + ". To fix: " + ", or ".join(fixes)


def explain_failover(cs: CandidateSet) -> list[str]:
    """N+1 that cannot be kept: a (protected class, user region) with load that fewer than two
    sites may serve within the failover RTT limit. Names the workload, the user region, the one
    reachable site, the next-nearest site that could run the class with its RTT, and the fix."""
    res = cs.res
    out = []
    for w in res.scenario.workloads:
        prot = protected_classes(res, cs.loads, w.id)
        if not prot:
            continue
        wl = cs.loads[w.id]
        loaded = wl.loaded()
        for lc in prot:
            for u in wl.user_regions():
                if (lc.key, u) not in loaded:
                    continue
                sites = cs.failover_sites.get((w.id, lc.key, u), [])
                if len(sites) >= 2:
                    continue
                limit = failover_rtt_limit(res, w.id, lc)
                up = res.user_regions[u].point
                others = []
                for sid, site in res.sites.items():
                    if sid in sites or sid in res.compute_excluded or residency_allows(
                            w.residency, up, site.point) is not None:
                        continue
                    link = cs.rtt[(u, sid)]
                    if link.rtt_ms is None or not _can_run(res, w, lc, site, wl.classes):
                        continue
                    others.append((link.rtt_ms, sid))
                others.sort()
                only = f"only {sites[0]}" if sites else "no site"
                lim = f"{limit:g} ms" if limit is not None else "any RTT"
                msg = (f"workload {w.id} needs N+1 but users in {u} (class {lc.key}) can reach {only} within {lim} "
                       f"that can serve them")
                if others:
                    rtt_ms, nxt = others[0]
                    need = math.ceil(rtt_ms)
                    msg += (f"; the next-nearest site that can is {nxt} at {rtt_ms:.1f} ms. To fix: set "
                            f"redundancy.failover_network_rtt_ms: {need} (or latency.network_rtt_ms: {need}) on "
                            f"{w.id if w.redundancy.mode == 'n_plus_1' else lc.origin}, or add a site within {lim} "
                            f"of {u}")
                else:
                    msg += f". To fix: add a site that can run {w.model} for {u}, or set redundancy.mode: none"
                out.append(msg)
    return out


def _can_run(res, w, lc, site, classes) -> bool:
    for o in site.offers:
        got = workload_rates(res, w, classes, o, site)
        if got is not None and got[1][lc.key].rps > 0:
            return True
    return False
