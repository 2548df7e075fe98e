"""Cross-reference checks before any model is built, and the resolved scenario they produce.

Every problem names the file, the path by id, the bad value, a did-you-mean where one fits and
"To fix: ...". All problems found are reported together, not only the first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from planner.derive.throughput import AcceleratorSpec, ThroughputModel, ThroughputProfile
from planner.errors import InputError, Problem, did_you_mean
from planner.input.catalog import Catalog
from planner.input.loader import LoadedScenario
from planner.input.schema import (
    PROVIDERS,
    ModelSpec,
    Scenario,
    Site,
    Workload,
    default_jurisdiction,
    utc_offset_from_longitude,
)

# Continents by ISO country code: used to price inter-region egress where the catalog has none.
_CONTINENTS = {
    "NA": "US CA MX PR",
    "SA": "BR CL AR CO PE UY",
    "EU": "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE GB CH NO IS UA RS",
    "AS": "JP KR CN HK TW SG MY ID TH VN PH IN PK BD AE QA SA BH IL KW OM JO TR",
    "OC": "AU NZ",
    "AF": "ZA NG KE EG MA",
}
COUNTRY_CONTINENT = {c: cont for cont, cs in _CONTINENTS.items() for c in cs.split()}


@dataclass
class Point:
    """A resolved location. lat/lon are None where unknown."""

    lat: float | None
    lon: float | None
    country: str | None
    jurisdiction: str | None
    catalog_key: tuple[str, str] | None = None

    @property
    def continent(self) -> str | None:
        return COUNTRY_CONTINENT.get(self.country or "")

    @property
    def known(self) -> bool:
        return self.lat is not None and self.lon is not None


@dataclass
class Offer:
    """One thing the plan can buy units of at a site.

    Cloud: a catalog instance type (``gpus`` = accelerator_count). On-prem/edge: one GPU of an
    accelerator, with ``owned`` GPUs already there and up to ``buyable`` more at an annuity.
    """

    id: str
    site_id: str
    provider: str
    region: str | None
    instance_type: str
    accelerator: str
    gpus: float
    ondemand_usd_hr: float | None = None
    spot_usd_hr: float | None = None
    reserved_usd_hr: float | None = None
    owned: int = 0
    owned_usd_per_gpu_hour: float = 0.0
    buyable: int = 0
    buy_usd_per_gpu_month: float = 0.0
    tdp_watts: float | None = None


@dataclass
class ResolvedSite:
    id: str
    kind: str  # cloud | onprem | edge
    provider: str  # cloud provider, or "onprem"
    region: str | None
    point: Point
    grid_gco2e_per_kwh: float | None
    gpus_per_server: int = 8
    power_budget_kw: float | None = None
    pue: float = 1.0
    host_overhead: float = 0.0
    electricity_usd_per_kwh: float = 0.0
    idle_power_fraction: float = 0.0
    fixed_usd_per_month: float = 0.0
    internet_egress_usd_per_gb: float = 0.0
    internet_egress_is_default: bool = False
    quota_gpus: dict[str, int] = field(default_factory=dict)
    offers: list[Offer] = field(default_factory=list)

    @property
    def declared(self) -> bool:
        return self.kind != "cloud"

    def replica_room(self, offer: Offer) -> tuple[float, int]:
        """(GPUs a replica may span, tensor-parallel limit) for the throughput model's shape.

        Cloud: one instance (``accelerator_count`` GPUs, TP up to 8). On-prem/edge: GPUs are
        counted one by one, but a replica may span up to ``gpus_per_server`` of them (one server),
        so a 70B model can take 4 GPUs of a rack. Packing into servers is aggregate (GPU count).
        """
        if self.declared:
            return float(self.gpus_per_server), self.gpus_per_server
        return offer.gpus, 8


@dataclass
class ResolvedUserRegion:
    id: str
    point: Point
    utc_offset_hours: float


@dataclass
class Resolved:
    """A scenario checked against the catalogs, with every reference resolved."""

    loaded: LoadedScenario
    catalog: Catalog
    models: dict[str, ModelSpec]
    accelerators: dict[str, AcceleratorSpec]
    user_regions: dict[str, ResolvedUserRegion]
    sites: dict[str, ResolvedSite]
    throughput: ThroughputModel
    data_source_points: dict[tuple[str, str], Point]  # (workload, source id) -> point
    warnings: list[str] = field(default_factory=list)
    #: site id -> why it is not used for compute (a variant's ``only`` patch); the site stays
    #: (its owned GPUs' sunk cost, its data sources), it gets no candidates
    compute_excluded: dict[str, str] = field(default_factory=dict)

    @property
    def scenario(self) -> Scenario:
        return self.loaded.scenario

    @property
    def file(self) -> str:
        return str(self.loaded.path)


def residency_allows(residency, user: Point | None, site: Point) -> str | None:
    """None when a site may serve (users of) a workload under its residency rule, else the reason.

    - ``any``: every site except US-GOV (GovCloud) ones, which must be listed explicitly;
    - a list: the site's jurisdiction or country is in the list;
    - ``same_as_user``: the site's jurisdiction equals the user region's.
    A site with unknown jurisdiction is allowed only under ``any``.
    """
    if residency == "any":
        if site.jurisdiction == "US-GOV":
            return "US-GOV (GovCloud) sites are allowed only when residency lists US-GOV"
        return None
    if site.jurisdiction is None:
        return "site jurisdiction unknown in the catalog; allowed only with residency 'any'"
    if residency == "same_as_user":
        if user is None or user.jurisdiction is None:
            return "user region jurisdiction unknown"
        if site.jurisdiction != user.jurisdiction:
            return f"residency same_as_user: site is {site.jurisdiction}, users are {user.jurisdiction}"
        return None
    if site.jurisdiction in residency or (site.country and site.country in residency):
        return None
    return f"residency {residency}: site is {site.jurisdiction}/{site.country}"


def _num(x) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _str(x) -> str | None:
    if x is None:
        return None
    if isinstance(x, float) and math.isnan(x):
        return None
    s = str(x).strip()
    return s or None


class _Checker:
    def __init__(self, loaded: LoadedScenario, catalog: Catalog):
        self.loaded = loaded
        self.s = loaded.scenario
        self.cat = catalog
        self.file = str(loaded.path)
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    def add(self, path: str, message: str, value=None, fix: str = "", choices=None):
        dym = did_you_mean(value, choices) if (choices is not None and value is not None) else None
        self.problems.append(Problem(self.file, path, message, value=value, fix=fix, did_you_mean=dym))

    # ---------------------------------------------------------------- ids
    def unique_ids(self):
        groups = {
            "user_regions": [r.id for r in self.s.user_regions],
            "sites": [s.id for s in self.s.sites],
            "workloads": [w.id for w in self.s.workloads],
            "models": [m.id for m in self.s.models],
            "time_slots": [t.id for t in self.s.time_slots],
        }
        for name, ids in groups.items():
            seen = set()
            for i in ids:
                if i in seen:
                    self.add(f"{name}[{i}]", "duplicate id", value=i, fix="give every item its own id")
                seen.add(i)
        for w in self.s.workloads:
            seen = set()
            for q in w.query_classes:
                if q.id in seen:
                    self.add(f"workloads[{w.id}].query_classes[{q.id}]", "duplicate query class id", value=q.id,
                             fix="give every query class its own id")
                seen.add(q.id)
            seen = set()
            for d in w.demand:
                if d.user_region in seen:
                    self.add(f"workloads[{w.id}].demand[{d.user_region}]", "demand given twice for one user region",
                             value=d.user_region, fix="merge the two entries into one")
                seen.add(d.user_region)

    # ---------------------------------------------------------------- locations
    def point(self, loc, country, jurisdiction, path: str) -> Point:
        if loc.region is not None:
            provider, _, region = loc.region.partition("/")
            row = self.cat.region(provider, region)
            if row is None:
                known = [f"{p}/{r}" for p, r in self.cat.regions[["provider", "region"]].itertuples(index=False)]
                self.add(f"{path}.location.region", "unknown catalog region", value=loc.region, choices=known,
                         fix="use provider/region as listed in catalogs/regions.csv, or give lat/lon")
                return Point(None, None, country, jurisdiction)
            cc = country or _str(row.get("country"))
            jur = jurisdiction or _str(row.get("jurisdiction")) or (default_jurisdiction(cc) if cc else None)
            return Point(_num(row.get("latitude")), _num(row.get("longitude")), cc, jur, (provider, region))
        if country is None:
            self.add(f"{path}.country", "country is required when the location is given as lat/lon",
                     fix="add an ISO 3166-1 alpha-2 code, e.g. country: DE")
        cc = country.upper() if country else None
        jur = jurisdiction or (default_jurisdiction(cc) if cc else None)
        return Point(loc.lat, loc.lon, cc, jur)

    def user_regions(self) -> dict[str, ResolvedUserRegion]:
        out = {}
        for r in self.s.user_regions:
            p = self.point(r.location, r.country, r.jurisdiction, f"user_regions[{r.id}]")
            if r.utc_offset_hours is not None:
                off = r.utc_offset_hours
            elif p.lon is not None:
                off = utc_offset_from_longitude(p.lon)
            else:
                off = 0.0
                self.add(f"user_regions[{r.id}].utc_offset_hours", "location has no known longitude, so the UTC "
                         "offset cannot be derived", fix="set utc_offset_hours")
            out[r.id] = ResolvedUserRegion(r.id, p, off)
        return out

    # ---------------------------------------------------------------- sites
    def accelerator_known(self, acc: str, path: str) -> bool:
        if acc in self.cat.accelerators.index:
            return True
        self.add(path, "unknown accelerator", value=acc, choices=list(self.cat.accelerators.index),
                 fix="use an accelerator name from catalogs/accelerators.csv")
        return False

    def declared_site(self, site: Site) -> ResolvedSite:
        path = f"sites[{site.id}]"
        p = self.point(site.location, site.country, site.jurisdiction, path)
        grid = site.grid_gco2e_per_kwh
        if grid is None and p.country:
            grid = self.country_grid(p.country)
            if grid is None:
                self.warnings.append(f"{path}: no catalog grid intensity for country {p.country}; carbon counted as 0")
        rs = ResolvedSite(
            id=site.id, kind=site.kind, provider="onprem", region=None, point=p, grid_gco2e_per_kwh=grid,
            gpus_per_server=site.gpus_per_server, power_budget_kw=site.power_budget_kw, pue=site.pue,
            host_overhead=site.host_overhead, electricity_usd_per_kwh=site.electricity_usd_per_kwh,
            idle_power_fraction=site.idle_power_fraction, fixed_usd_per_month=site.fixed_usd_per_month,
            internet_egress_usd_per_gb=site.internet_egress_usd_per_gb,
        )
        by_acc: dict[str, Offer] = {}
        for field_name, entries in (("owned_gpus", site.owned_gpus), ("buyable_gpus", site.buyable_gpus)):
            for g in entries:
                where = f"{path}.{field_name}[{g.accelerator}]"
                if not self.accelerator_known(g.accelerator, f"{where}.accelerator"):
                    continue
                o = by_acc.setdefault(g.accelerator, self._onprem_offer(site.id, g.accelerator))
                if (o.owned if field_name == "owned_gpus" else o.buyable):
                    self.add(where, "accelerator listed twice", value=g.accelerator, fix="merge the two entries")
                if field_name == "owned_gpus":
                    o.owned, o.owned_usd_per_gpu_hour = g.count, g.usd_per_gpu_hour
                else:
                    o.buyable, o.buy_usd_per_gpu_month = g.max_count, g.usd_per_month
        for acc, o in by_acc.items():
            if o.tdp_watts is None:
                self.add(f"{path}.owned_gpus[{acc}]", "the catalog has no board power (tdp_watts) for this accelerator, "
                         "so the site's power budget cannot be checked", value=acc,
                         fix="choose an accelerator with a tdp_watts figure in catalogs/accelerators.csv")
        rs.offers = [by_acc[a] for a in sorted(by_acc)]
        if not rs.offers:
            self.add(f"{path}", "site has no owned_gpus and no buyable_gpus", fix="declare owned_gpus or buyable_gpus")
        return rs

    def _onprem_offer(self, site_id: str, acc: str) -> Offer:
        tdp = _num(self.cat.accelerators.loc[acc].get("tdp_watts"))
        return Offer(id=f"{site_id}-{acc.lower()}", site_id=site_id, provider="onprem", region=None,
                     instance_type=f"{acc} server GPU", accelerator=acc, gpus=1.0, tdp_watts=tdp)

    def country_grid(self, country: str) -> float | None:
        reg = self.cat.regions
        vals = reg.loc[reg["country"] == country, "grid_gco2e_per_kwh"].dropna()
        return float(vals.mean()) if len(vals) else None

    def cloud_sites(self) -> dict[str, ResolvedSite]:
        out: dict[str, ResolvedSite] = {}
        offers = self.cat.offers
        pol = self.s.policies
        term = pol.reserved_term
        for i, sel in enumerate(self.s.cloud):
            path = f"cloud[{sel.provider}]" if sum(c.provider == sel.provider for c in self.s.cloud) == 1 else f"cloud[{i}]"
            if sel.provider not in PROVIDERS:
                self.add(f"{path}.provider", "unknown provider", value=sel.provider, choices=PROVIDERS,
                         fix=f"use one of {', '.join(PROVIDERS)}")
                continue
            prov_offers = offers[offers["provider"] == sel.provider]
            known_regions = sorted(set(prov_offers["region"]))
            regions = known_regions if sel.regions == "*" else list(sel.regions)
            for r in regions:
                if r not in known_regions:
                    self.add(f"{path}.regions", f"{sel.provider} has no GPU offers in this region", value=r,
                             choices=known_regions, fix="use a region listed for this provider in catalogs/gpu_offers.csv")
            for r in sel.exclude_regions:
                if r not in known_regions:
                    self.add(f"{path}.exclude_regions", "unknown region", value=r, choices=known_regions,
                             fix="use a region listed in catalogs/gpu_offers.csv")
            accs = None
            if sel.accelerators is not None:
                accs = set()
                for a in sel.accelerators:
                    if self.accelerator_known(a, f"{path}.accelerators"):
                        accs.add(a)
            for a in sel.quota_gpus:
                self.accelerator_known(a, f"{path}.quota_gpus.{a}")
            disc = pol.reserved_discount.get(sel.provider, {}).get(term)
            if "reserved" in pol.pricing_models and disc is None:
                self.warnings.append(f"policies.reserved_discount has no {term} discount for {sel.provider}: "
                                     f"reserved capacity is not offered there")
            for r in regions:
                if r not in known_regions or r in sel.exclude_regions:
                    continue
                sid = f"{sel.provider}-{r}"
                if sid in out:
                    self.add(f"{path}.regions", "region selected twice", value=r, fix="list each region once")
                    continue
                row = self.cat.region(sel.provider, r) or {}
                cc = _str(row.get("country"))
                jur = _str(row.get("jurisdiction"))
                pt = Point(_num(row.get("latitude")), _num(row.get("longitude")), cc, jur, (sel.provider, r))
                inet = self.cat.internet_egress_usd_per_gb(sel.provider, r)
                is_default = inet is None
                if inet is None:
                    inet = pol.egress.internet_usd_per_gb.get(sel.provider, pol.egress.inter_provider_usd_per_gb)
                site = ResolvedSite(id=sid, kind="cloud", provider=sel.provider, region=r, point=pt,
                                    grid_gco2e_per_kwh=_num(row.get("grid_gco2e_per_kwh")),
                                    internet_egress_usd_per_gb=inet, internet_egress_is_default=is_default,
                                    quota_gpus=dict(sel.quota_gpus))
                rows = prov_offers[prov_offers["region"] == r]
                for o in rows.itertuples(index=False):
                    if accs is not None and o.accelerator not in accs:
                        continue
                    od = _num(o.price_ondemand_usd_hr)
                    spot = _num(o.price_spot_usd_hr)
                    mult_od, mult_spot = self.price_factor(sel.provider, o.accelerator)
                    od = od * mult_od if od is not None else None
                    spot = spot * mult_spot if spot is not None else None
                    res = od * (1.0 - disc) if (od is not None and disc is not None) else None
                    site.offers.append(Offer(
                        id=o.offer_id, site_id=sid, provider=sel.provider, region=r, instance_type=o.instance_type,
                        accelerator=o.accelerator, gpus=float(o.accelerator_count), ondemand_usd_hr=od,
                        spot_usd_hr=spot, reserved_usd_hr=res,
                        tdp_watts=_num(self.cat.accelerators.loc[o.accelerator].get("tdp_watts"))
                        if o.accelerator in self.cat.accelerators.index else None,
                    ))
                site.offers.sort(key=lambda x: x.id)
                out[sid] = site
        return out

    def price_factor(self, provider: str, accelerator: str) -> tuple[float, float]:
        od = spot = 1.0
        for pm in self.s.price_multipliers:
            if pm.provider not in (None, provider) or pm.accelerator not in (None, accelerator):
                continue
            if pm.pricing in ("all", "on_demand"):
                od *= pm.factor
            if pm.pricing in ("all", "spot"):
                spot *= pm.factor
        return od, spot

    def price_multipliers(self):
        provs = set(PROVIDERS) | {"onprem"}
        for i, pm in enumerate(self.s.price_multipliers):
            if pm.provider is not None and pm.provider not in provs:
                self.add(f"price_multipliers[{i}].provider", "unknown provider", value=pm.provider, choices=provs,
                         fix=f"use one of {', '.join(sorted(provs))}")
            if pm.accelerator is not None:
                self.accelerator_known(pm.accelerator, f"price_multipliers[{i}].accelerator")

    # ---------------------------------------------------------------- models / workloads
    def models(self) -> dict[str, ModelSpec]:
        out: dict[str, ModelSpec] = {}
        for mid, row in self.cat.models.iterrows():
            data = {k: row[k] for k in ModelSpec.model_fields if k != "id" and k in row.index}
            data = {k: (v.item() if hasattr(v, "item") else v) for k, v in data.items()}
            data["source"] = _str(data.get("source")) or ""
            out[str(mid)] = ModelSpec(id=str(mid), **data)
        for m in self.s.models:
            out[m.id] = m
        return out

    def workloads(self, models: dict[str, ModelSpec], users: dict[str, ResolvedUserRegion], sites: dict[str, ResolvedSite]):
        wids = [w.id for w in self.s.workloads]
        by_id = {w.id: w for w in self.s.workloads}
        slot_starts = {t.start_hour for t in self.s.time_slots}
        slot_ends = {t.end_hour for t in self.s.time_slots}
        jurisdictions = {s.point.jurisdiction for s in sites.values() if s.point.jurisdiction}
        countries = {s.point.country for s in sites.values() if s.point.country}
        for w in self.s.workloads:
            path = f"workloads[{w.id}]"
            if w.model not in models:
                self.add(f"{path}.model", "unknown model", value=w.model, choices=list(models),
                         fix="use a model id from catalogs/models.csv or add it under `models:`")
            if w.model in models:
                mx = models[w.model].max_context_tokens
                for q in w.query_classes:
                    if q.input_tokens + q.output_tokens > mx:
                        self.add(f"{path}.query_classes[{q.id}].input_tokens",
                                 f"input + output tokens ({q.input_tokens + q.output_tokens}) exceed {w.model}'s "
                                 f"context window of {mx}", value=q.input_tokens,
                                 fix="shorten the query class or choose a model with a longer context")
            total = sum(q.share for q in w.query_classes)
            if abs(total - 1.0) > 1e-6:
                self.add(f"{path}.query_classes", f"shares sum to {total:.4g}, not 1", value=[q.share for q in w.query_classes],
                         fix="make the query class shares add up to 1")
            for d in w.demand:
                if d.user_region not in users:
                    self.add(f"{path}.demand[{d.user_region}].user_region", "unknown user region", value=d.user_region,
                             choices=list(users), fix="declare it under user_regions or correct the id")
                elif d.profile and max(d.profile) < 1.0 - 1e-9 and d.peak_rps > 0:
                    self.warnings.append(f"{path}.demand[{d.user_region}].profile: max {max(d.profile):.2f} < 1.0, so "
                                         f"the actual peak is below peak_rps")
            if w.routing is not None:
                tgt = w.routing.escalate_to
                if tgt not in by_id:
                    self.add(f"{path}.routing.escalate_to", "unknown workload", value=tgt, choices=wids,
                             fix="escalate to the id of another workload in this scenario")
                else:
                    tw = by_id[tgt]
                    if tw.is_batch or w.is_batch:
                        self.add(f"{path}.routing.escalate_to", "escalation is between interactive workloads, not batch",
                                 value=tgt, fix="escalate to a realtime_chat, agents or reranking workload")
                    elif tw.routing is not None:
                        self.add(f"{path}.routing.escalate_to", f"{tgt} escalates further to {tw.routing.escalate_to}; "
                                 "chains of escalation are not supported", value=tgt,
                                 fix="escalate directly to the largest model's workload")
                    else:
                        missing = {d.user_region for d in w.demand} - {d.user_region for d in tw.demand}
                        if missing:
                            self.add(f"{path}.routing.escalate_to", f"{tgt} must serve every user region that {w.id} "
                                     f"serves; missing {sorted(missing)}", value=tgt,
                                     fix=f"add demand entries (peak_rps may be 0) for those regions to {tgt}")
            if w.is_batch and w.redundancy.mode == "n_plus_1":
                self.add(f"{path}.redundancy.mode", "N+1 failover protects users' traffic within an RTT SLO; a batch "
                         "workload has no users to fail over", value="n_plus_1",
                         fix="use `redundancy: {mode: none, min_sites: 2}` to spread a batch job over two sites")
            if w.redundancy.failover_network_rtt_ms is not None and w.redundancy.mode != "n_plus_1":
                self.add(f"{path}.redundancy.failover_network_rtt_ms", "only applies with mode: n_plus_1",
                         value=w.redundancy.failover_network_rtt_ms,
                         fix="set `mode: n_plus_1` or remove failover_network_rtt_ms")
            if w.batch is not None:
                start, end = w.batch.window_utc_hours
                for h, kind in ((start, "start"), (end, "end")):
                    ok = (h in slot_starts) if kind == "start" else (h in slot_ends or (h in slot_starts))
                    if not ok:
                        self.add(f"{path}.batch.window_utc_hours", f"window {kind}s at {h}:00 UTC, which is not a time slot "
                                 f"boundary; the window must be a union of time slots", value=list(w.batch.window_utc_hours),
                                 fix=f"use slot boundaries {sorted(slot_starts | slot_ends)} or change time_slots")
            if isinstance(w.residency, list):
                for r in w.residency:
                    if r not in jurisdictions and r not in countries and r not in ("EU", "US-GOV", "UK"):
                        self.add(f"{path}.residency", "no site in this scenario has this jurisdiction or country",
                                 value=r, choices=sorted(jurisdictions | countries),
                                 fix="use a jurisdiction (EU, UK, US, US-GOV, ...) or country code of a selected site")
            for ds in w.data_sources:
                self.data_source_point(w, ds, sites)
            self.residency_admits(w, users, sites, path)
        return by_id

    def residency_admits(self, w: Workload, users: dict[str, ResolvedUserRegion], sites: dict[str, ResolvedSite],
                         path: str) -> None:
        origins = [users[d.user_region].point for d in w.demand if d.user_region in users] or [None]
        for origin in origins:
            if not any(residency_allows(w.residency, origin, s.point) is None for s in sites.values()):
                who = f" for users in {origin.jurisdiction}" if origin is not None and w.residency == "same_as_user" else ""
                self.add(f"{path}.residency", f"the residency rule admits no site in this scenario{who}",
                         value=w.residency, fix="select a cloud region or declare a site in an allowed jurisdiction, "
                         "or relax the rule")
                return

    def data_source_point(self, w: Workload, ds, sites: dict[str, ResolvedSite]) -> Point | None:
        path = f"workloads[{w.id}].data_sources[{ds.id}].region"
        if "/" in ds.region:
            provider, _, region = ds.region.partition("/")
            row = self.cat.region(provider, region)
            if row is None:
                known = [f"{p}/{r}" for p, r in self.cat.regions[["provider", "region"]].itertuples(index=False)]
                self.add(path, "unknown catalog region", value=ds.region, choices=known,
                         fix="use provider/region from catalogs/regions.csv or the id of a declared site")
                return None
            return Point(_num(row.get("latitude")), _num(row.get("longitude")), _str(row.get("country")),
                         _str(row.get("jurisdiction")), (provider, region))
        declared = {s.id: s for s in self.s.sites}
        if ds.region in declared:
            site = sites.get(ds.region)
            return site.point if site else None
        self.add(path, "unknown region or site", value=ds.region, choices=list(declared),
                 fix="use provider/region (e.g. aws/us-east-1) or the id of a declared site")
        return None

    def lost_sites(self, sites: dict[str, ResolvedSite]):
        declared = {s.id for s in self.s.sites}
        for sid in self.s.lost_sites:
            if sid not in sites and sid not in declared:
                self.add(self._lost_site_path(sid), "unknown site", value=sid, choices=list(sites),
                         fix="name a declared site id or a selected cloud site (<provider>-<region>)")

    def only(self, sites: dict[str, ResolvedSite]) -> dict[str, str]:
        """Sites a variant's ``only`` patch keeps from compute (site id -> reason), with a warning
        for owned GPUs left unused (their sunk cost stays in the bill)."""
        only = self.s.only
        if only is None:
            return {}
        path = self._only_path()
        keep_cloud = only == "cloud"
        out = {}
        for sid, site in sorted(sites.items()):
            if site.declared != keep_cloud:
                continue
            out[sid] = (f"only: {path} is `only: {only}`, so the {site.kind} site {sid} is not used for compute"
                        + (" (its data sources stay where they are)" if site.declared else ""))
            owned = [(o.accelerator, o.owned, o.owned * o.owned_usd_per_gpu_hour * self.s.policies.hours_per_month)
                     for o in site.offers if o.owned]
            for acc, n, usd in owned:
                self.warnings.append(f"{path}: only {only}: {sid} owns {n} {acc} GPUs this plan does not use; their "
                                     f"sunk cost ({usd:,.2f} USD/month) stays in the bill")
        if len(out) == len(sites):
            kinds = "cloud" if keep_cloud else "declared (on-prem or edge)"
            self.add(path, f"`only: {only}` leaves no site: the scenario has no {kinds} site", value=only,
                     fix="select cloud regions under `cloud:`" if keep_cloud else "declare on-prem or edge sites")
        return out

    def _only_path(self) -> str:
        variant = self.loaded.variant
        variants = self.loaded.raw.get("variants")
        spec = variants.get(variant) if variant is not None and isinstance(variants, dict) else None
        for i, patch in enumerate((spec.get("patches") if isinstance(spec, dict) else None) or []):
            if isinstance(patch, dict) and "only" in patch:
                return f"variants.{variant}.patches[{i}]"
        return "only"

    def _lost_site_path(self, sid: str) -> str:
        """Where a lost site was written: the variant's lose_site patch, else top-level lost_sites."""
        variant = self.loaded.variant
        variants = self.loaded.raw.get("variants")
        spec = variants.get(variant) if variant is not None and isinstance(variants, dict) else None
        patches = spec.get("patches") if isinstance(spec, dict) else None
        for i, patch in enumerate(patches or []):
            if isinstance(patch, dict) and patch.get("lose_site") == sid:
                return f"variants.{variant}.patches[{i}].lose_site"
        return "lost_sites"


def check(loaded: LoadedScenario, catalog: Catalog) -> Resolved:
    """Resolve every reference of a loaded scenario against the catalogs, or raise InputError
    with all problems found."""
    try:
        return _check(loaded, catalog)
    except InputError as exc:
        if loaded.variant is not None:
            for p in exc.problems:
                if not p.path.startswith("variants."):
                    p.message = f"after applying variant {loaded.variant!r}: {p.message}"
        raise InputError(exc.problems) from None


def _check(loaded: LoadedScenario, catalog: Catalog) -> Resolved:
    c = _Checker(loaded, catalog)
    s = loaded.scenario
    c.unique_ids()
    c.price_multipliers()
    users = c.user_regions()
    sites: dict[str, ResolvedSite] = {}
    for site in s.sites:
        sites[site.id] = c.declared_site(site)
    for sid, site in c.cloud_sites().items():
        if sid in sites:
            c.add(f"sites[{sid}]", "a declared site has the same id as a selected cloud region", value=sid,
                  fix="rename the declared site")
        sites[sid] = site
    if not sites:
        c.add("sites", "the scenario has no sites", fix="declare sites or select cloud regions under `cloud:`")
    c.lost_sites(sites)
    for sid in s.lost_sites:
        sites.pop(sid, None)
    excluded = c.only(sites)
    models = c.models()
    c.workloads(models, users, sites)
    ds_points = {}
    accs = {name: AcceleratorSpec.from_row(name, row) for name, row in catalog.accelerators.iterrows()}
    profile = None
    if s.throughput_profile:
        ppath = Path(s.throughput_profile)
        if not ppath.is_absolute():
            ppath = loaded.path.parent / ppath
        if not ppath.exists():
            c.add("throughput_profile", "profile file not found", value=s.throughput_profile,
                  fix="give a path relative to the scenario file")
        else:
            try:
                profile = ThroughputProfile.load(ppath)
            except InputError as exc:
                c.problems.extend(exc.problems)
    if c.problems:
        raise InputError(c.problems)
    # data source points (no problems left, so this cannot report)
    for w in s.workloads:
        for ds in w.data_sources:
            pt = c.data_source_point(w, ds, sites)
            if pt is None:  # a declared site lost in this variant: the data still lives there
                decl = next(x for x in s.sites if x.id == ds.region)
                pt = c.point(decl.location, decl.country, decl.jurisdiction, f"sites[{decl.id}]")
            ds_points[(w.id, ds.id)] = pt
    tm = ThroughputModel(models, accs, profile=profile, target_utilisation=s.policies.target_utilisation,
                         kv_reserve_fraction=s.policies.kv_reserve_fraction,
                         max_batch_sequences=s.policies.max_batch_sequences)
    res = Resolved(loaded=loaded, catalog=catalog, models=models, accelerators=accs, user_regions=users,
                   sites=sites, throughput=tm, data_source_points=ds_points, warnings=c.warnings,
                   compute_excluded=excluded)
    _check_fits(res, c)
    from planner.derive.serving import throughput_notes

    res.warnings.extend(throughput_notes(res))
    if c.problems:
        raise InputError(c.problems)
    return res


def _check_fits(res: Resolved, c: _Checker) -> None:
    """A workload's model must fit at least one accelerator offered at some site."""
    pairs = {}
    for sid, site in res.sites.items():
        if sid in res.compute_excluded:
            continue
        for o in site.offers:
            pairs.setdefault((o.accelerator, *site.replica_room(o)), None)
    for w in res.scenario.workloads:
        if w.model not in res.models:
            continue
        fits = any(res.throughput.shape(w.model, acc, gpus, max_tp) is not None for acc, gpus, max_tp in pairs)
        if not fits:
            c.add(f"workloads[{w.id}].model", "the model fits no accelerator offered at any site in this scenario",
                  value=w.model, fix="add a site or cloud region with larger GPUs (e.g. H100 8x), or choose a smaller model")
