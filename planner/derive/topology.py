"""Network topology: round-trip latency and egress prices between user regions, data sources
and sites, as a networkx graph and as look-up matrices.

RTT: the measured p95 from ``catalogs/rtt_measured.csv`` where both ends are catalog regions
of a measured pair; otherwise the great-circle model fitted to those measurements
(``catalogs/rtt_model.json``); unknown when either end has no coordinates.

Egress (USD/GB from ``src`` to a site): zero inside one region or one declared site; the
catalog's inter-region price where it has the pair; else the policy defaults: same provider
and continent, same provider other continent, or across providers (on-prem counts as its own
provider). Every default used is flagged so the report can say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from planner.input.consistency import Point, Resolved, ResolvedSite


@dataclass(frozen=True)
class Link:
    rtt_ms: float | None
    rtt_source: str  # measured | model | same-region | unknown


@dataclass(frozen=True)
class EgressPrice:
    usd_per_gb: float
    source: str  # catalog | same-region | policy-default


def rtt(res: Resolved, a: Point, b: Point) -> Link:
    cat = res.catalog
    if a.catalog_key is not None and a.catalog_key == b.catalog_key:
        return Link(float(cat.rtt_fit["overhead_ms"]), "same-region")
    if a.catalog_key is not None and b.catalog_key is not None:
        m = cat.measured_rtt_ms(a.catalog_key, b.catalog_key)
        if m is not None:
            return Link(m, "measured")
    if a.known and b.known:
        return Link(cat.modelled_rtt_ms(a.lat, a.lon, b.lat, b.lon), "model")
    return Link(None, "unknown")


def _provider_of(p: Point) -> str:
    return p.catalog_key[0] if p.catalog_key is not None else "onprem"


def egress(res: Resolved, src: Point, site: ResolvedSite) -> EgressPrice:
    """Price per GB to move data from ``src`` to ``site``."""
    dst = site.point
    if src is dst or (src.catalog_key is not None and src.catalog_key == dst.catalog_key):
        return EgressPrice(0.0, "same-region")
    if src.catalog_key is None and dst.catalog_key is None and (src.lat, src.lon) == (dst.lat, dst.lon):
        return EgressPrice(0.0, "same-region")
    if src.catalog_key is not None and dst.catalog_key is not None:
        p = res.catalog.egress_usd_per_gb(src.catalog_key, dst.catalog_key)
        if p is not None:
            return EgressPrice(float(p), "catalog")
    pol = res.scenario.policies.egress
    sp, dp = _provider_of(src), _provider_of(dst)
    if sp != dp or sp == "onprem":
        if sp == "onprem":
            return EgressPrice(pol.onprem_internet_usd_per_gb, "policy-default")
        return EgressPrice(pol.inter_provider_usd_per_gb, "policy-default")
    same = src.continent is not None and src.continent == dst.continent
    price = pol.inter_region_same_continent_usd_per_gb if same else pol.inter_region_other_continent_usd_per_gb
    return EgressPrice(price, "policy-default")


def build_graph(res: Resolved) -> nx.DiGraph:
    """Nodes ``user:<id>``, ``site:<id>``, ``data:<workload>/<source>``; edges carry ``rtt_ms``
    (user -> site) or ``egress_usd_per_gb`` (data -> site) with their source, as computed by
    :func:`link_tables`."""
    rtts, eg = link_tables(res)
    g = nx.DiGraph()
    g.add_nodes_from((f"site:{sid}", {"kind": "site", "site_kind": site.kind, "provider": site.provider})
                     for sid, site in res.sites.items())
    g.add_nodes_from((f"user:{uid}", {"kind": "user"}) for uid in res.user_regions)
    g.add_edges_from((f"user:{uid}", f"site:{sid}", {"rtt_ms": link.rtt_ms, "rtt_source": link.rtt_source})
                     for (uid, sid), link in rtts.items())
    g.add_nodes_from((f"data:{wid}/{dsid}", {"kind": "data"}) for wid, dsid in res.data_source_points)
    g.add_edges_from((f"data:{wid}/{dsid}", f"site:{sid}", {"egress_usd_per_gb": e.usd_per_gb, "egress_source": e.source})
                     for (wid, dsid, sid), e in eg.items())
    return g


def rtt_matrix(g: nx.DiGraph) -> dict[tuple[str, str], Link]:
    """(user region id, site id) -> Link, from the graph."""
    out = {}
    for u, v, d in g.edges(data=True):
        if u.startswith("user:"):
            out[(u[5:], v[5:])] = Link(d["rtt_ms"], d["rtt_source"])
    return out


def egress_matrix(g: nx.DiGraph) -> dict[tuple[str, str, str], EgressPrice]:
    """(workload id, data source id, site id) -> EgressPrice, from the graph."""
    out = {}
    for u, v, d in g.edges(data=True):
        if u.startswith("data:"):
            wid, dsid = u[5:].split("/", 1)
            out[(wid, dsid, v[5:])] = EgressPrice(d["egress_usd_per_gb"], d["egress_source"])
    return out


def link_tables(res: Resolved) -> tuple[dict[tuple[str, str], Link], dict[tuple[str, str, str], EgressPrice]]:
    """(user region, site) -> Link and (workload, data source, site) -> EgressPrice, computed
    directly (the graph of :func:`build_graph` is built from these; at 5000 x 300 it holds ~460 k
    edge dicts, so the candidates read the tables, not the graph). Egress prices are computed
    once per distinct source location and site (data sources often share a region)."""
    sites = list(res.sites.items())
    rtts: dict[tuple[str, str], Link] = {}
    for uid, ur in res.user_regions.items():
        for sid, site in sites:
            rtts[(uid, sid)] = rtt(res, ur.point, site.point)
    site_points = {id(site.point) for _sid, site in sites}
    cache: dict[tuple, EgressPrice] = {}
    eg: dict[tuple[str, str, str], EgressPrice] = {}
    for (wid, dsid), pt in res.data_source_points.items():
        where = None if id(pt) in site_points else (pt.catalog_key, pt.lat, pt.lon, pt.country)
        for sid, site in sites:
            if where is None:
                e = egress(res, pt, site)
            else:
                e = cache.get((where, sid))
                if e is None:
                    e = cache[(where, sid)] = egress(res, pt, site)
            eg[(wid, dsid, sid)] = e
    return rtts, eg

