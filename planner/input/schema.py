"""Pydantic models of a scenario file.

Strict about shape (unknown keys are errors), explicit about units (they are in the field
names), and everything refers to everything else by id, never by list position. Checks that
need the catalogs (does this accelerator exist? does this residency rule admit any site?)
live in :mod:`planner.consistency`; this module checks what a file can say about itself.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
Id = Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
NonNeg = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
#: Numeric formats of weights and KV cache (planner/derive/throughput.py: PRECISION_BYTES).
Precision = Literal["bf16", "fp16", "fp8", "int4"]

PROVIDERS = ("aws", "azure", "gcp", "lambda", "nebius")
WORKLOAD_KINDS = ("realtime_chat", "agents", "reranking", "batch_embeddings")
PRICING_MODELS = ("reserved", "on_demand", "spot")

#: EU member states (ISO 3166-1 alpha-2); a country listed here has jurisdiction "EU" by default.
EU_COUNTRIES = frozenset(
    ["AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"]
)


def default_jurisdiction(country: str) -> str:
    """Jurisdiction implied by a country code: EU for member states, UK for GB, else the code."""
    country = country.upper()
    if country in EU_COUNTRIES:
        return "EU"
    if country == "GB":
        return "UK"
    return country


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False, populate_by_name=True)


# --------------------------------------------------------------------------- locations
class Location(Strict):
    """A point on the map: either coordinates, or a catalog region (``provider/region``) to take
    them (and the country and jurisdiction) from."""

    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    region: str | None = Field(default=None, description="catalog region as provider/region, e.g. azure/westeurope")

    @model_validator(mode="after")
    def _one_form(self) -> Location:
        has_coords = self.lat is not None or self.lon is not None
        if has_coords and (self.lat is None or self.lon is None):
            raise ValueError("give both lat and lon")
        if has_coords == (self.region is not None):
            raise ValueError("give either lat/lon or region (provider/region), not both and not neither")
        if self.region is not None and "/" not in self.region:
            raise ValueError(f"region must be written provider/region, e.g. aws/us-east-1 (got {self.region!r})")
        return self


class UserRegion(Strict):
    """Where users are. Demand is given per user region in its local time."""

    id: Id
    location: Location
    country: str | None = Field(default=None, min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    jurisdiction: str | None = None
    utc_offset_hours: float | None = Field(default=None, ge=-12, le=14, description="default: round(lon / 15)")


# --------------------------------------------------------------------------- sites
class OwnedGpus(Strict):
    accelerator: str
    count: int = Field(ge=0)
    usd_per_gpu_hour: NonNeg = Field(description="amortised cost; sunk, reported as a fixed cost")


class BuyableGpus(Strict):
    accelerator: str
    max_count: int = Field(gt=0)
    capex_usd: Positive = Field(description="per GPU, including its share of server and network")
    lifetime_years: Positive = 4.0
    interest_rate: NonNeg = 0.06

    @property
    def usd_per_month(self) -> float:
        """Annuity payment per month that repays ``capex_usd`` over the lifetime at the rate."""
        n = self.lifetime_years * 12.0
        r = self.interest_rate / 12.0
        if r == 0:
            return self.capex_usd / n
        return self.capex_usd * r / (1.0 - (1.0 + r) ** (-n))


class Site(Strict):
    """An on-prem rack or edge node declared in the scenario."""

    id: Id
    kind: Literal["onprem", "edge"]
    location: Location
    country: str | None = Field(default=None, min_length=2, max_length=2)
    jurisdiction: str | None = None
    grid_gco2e_per_kwh: NonNeg | None = Field(default=None, description="default: the country's catalog average")
    gpus_per_server: int = Field(default=8, ge=1, le=16, description="tensor-parallel limit")
    power_budget_kw: Positive
    pue: float = Field(default=1.4, ge=1.0, le=3.0)
    host_overhead: float = Field(default=0.3, ge=0.0, le=2.0, description="host power as a fraction of GPU power")
    electricity_usd_per_kwh: NonNeg
    idle_power_fraction: Fraction = 0.0
    fixed_usd_per_month: NonNeg = 0.0
    internet_egress_usd_per_gb: NonNeg = 0.0
    owned_gpus: list[OwnedGpus] = Field(default_factory=list)
    buyable_gpus: list[BuyableGpus] = Field(default_factory=list)


class CloudSelection(Strict):
    """Public cloud regions taken from the catalog. Site id = ``<provider>-<region>``."""

    provider: str
    regions: list[str] | Literal["*"] = "*"
    exclude_regions: list[str] = Field(default_factory=list)
    accelerators: list[str] | None = Field(default=None, description="only these accelerators (default: all)")
    quota_gpus: dict[str, int] = Field(default_factory=dict, description="max GPUs per accelerator per region")

    @field_validator("quota_gpus")
    @classmethod
    def _quota_non_negative(cls, v: dict[str, int]) -> dict[str, int]:
        for acc, n in v.items():
            if n < 0:
                raise ValueError(f"quota for {acc} must be >= 0")
        return v


# --------------------------------------------------------------------------- models
class ModelSpec(Strict):
    """Public model-card facts of an open model (same columns as catalogs/models.csv)."""

    id: Id
    kind: Literal["chat", "embedding", "reranker"]
    total_params_b: Positive
    active_params_b: Positive
    layers: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    max_context_tokens: int = Field(gt=0)
    weight_precision: Precision = Field(default="bf16", description="weights as served: bf16|fp16|fp8|int4")
    kv_cache_precision: Precision = Field(default="bf16", description="KV cache elements: bf16|fp16|fp8|int4")
    experts: int = Field(default=1, gt=0, description="experts per MoE layer (1 = dense)")
    experts_per_token: int = Field(default=1, gt=0, description="experts a token passes through (1 = dense)")
    source: str = ""

    @model_validator(mode="after")
    def _active_le_total(self) -> ModelSpec:
        if self.active_params_b > self.total_params_b:
            raise ValueError("active_params_b cannot exceed total_params_b")
        if self.experts_per_token > self.experts:
            raise ValueError("experts_per_token cannot exceed experts")
        return self


# --------------------------------------------------------------------------- workloads
class QueryClass(Strict):
    id: Id
    share: Fraction
    input_tokens: int = Field(gt=0)
    output_tokens: int = Field(default=0, ge=0)


class Latency(Strict):
    network_rtt_ms: Positive | None = Field(default=None, description="p95 RTT from each user region to the site")
    ttft_ms: Positive | None = None
    tpot_ms: Positive | None = None


class Demand(Strict):
    user_region: Id
    peak_rps: NonNeg
    profile: list[Fraction] = Field(
        default_factory=lambda: [1.0] * 24,
        description="24 multipliers of the peak, by hour of the user region's local time (max 1.0)",
    )

    @field_validator("profile")
    @classmethod
    def _profile_24(cls, v: list[float]) -> list[float]:
        if len(v) != 24:
            raise ValueError(f"profile needs exactly 24 hourly values, got {len(v)}")
        return v


class Routing(Strict):
    escalate_to: Id
    escalation_share: Fraction


class Redundancy(Strict):
    """``n_plus_1``: in every slot, losing any one site leaves enough non-spot capacity already
    provisioned at the other sites to serve every user region's demand of every query class
    within ``failover_network_rtt_ms`` (default: the workload's ``latency.network_rtt_ms``),
    residency still applying. Not for batch workloads (use ``min_sites``)."""

    mode: Literal["none", "n_plus_1"] = "none"
    min_sites: int = Field(default=1, ge=1)
    failover_network_rtt_ms: Positive | None = Field(
        default=None, description="RTT SLO while a site is lost (N+1 only); default: latency.network_rtt_ms")


class DataSource(Strict):
    id: Id
    gb_per_month: NonNeg
    region: str = Field(description="catalog region as provider/region, or the id of a declared site")


class BatchSpec(Strict):
    tokens_per_day: Positive
    window_utc_hours: tuple[int, int] = Field(
        default=(0, 24), description="[start, end) in UTC hours; may wrap past midnight (22, 6)"
    )

    @field_validator("window_utc_hours")
    @classmethod
    def _window(cls, v: tuple[int, int]) -> tuple[int, int]:
        start, end = v
        if not (0 <= start <= 23 and 1 <= end <= 24):
            raise ValueError("window hours must be 0 <= start <= 23 and 1 <= end <= 24")
        if start == end:
            raise ValueError("window is empty (start == end)")
        return v

    def hours(self) -> list[int]:
        start, end = self.window_utc_hours
        if start < end:
            return list(range(start, end))
        return list(range(start, 24)) + list(range(0, end))


class Workload(Strict):
    id: Id
    kind: Literal["realtime_chat", "agents", "reranking", "batch_embeddings"]
    tenant: Id
    feature: Id
    model: Id
    query_classes: list[QueryClass] = Field(min_length=1)
    latency: Latency = Field(default_factory=Latency)
    demand: list[Demand] = Field(default_factory=list)
    batch: BatchSpec | None = None
    cache_hit_rate: Fraction = 0.0
    prefix_cache_rate: Fraction = 0.0
    routing: Routing | None = None
    success_rate: Fraction = 1.0
    residency: Literal["any", "same_as_user"] | list[str] = "any"
    redundancy: Redundancy = Field(default_factory=Redundancy)
    data_sources: list[DataSource] = Field(default_factory=list)
    weight_precision: Precision | None = Field(default=None, description="override the model's weight precision")
    kv_cache_precision: Precision | None = Field(default=None, description="override the model's KV precision")
    max_batch_sequences: int | None = Field(default=None, gt=0, description="override policies.max_batch_sequences")

    @property
    def is_batch(self) -> bool:
        return self.kind == "batch_embeddings"

    @property
    def has_output(self) -> bool:
        return self.kind in ("realtime_chat", "agents")

    @model_validator(mode="after")
    def _kind_rules(self) -> Workload:
        if self.is_batch:
            if self.batch is None:
                raise ValueError("batch_embeddings workloads need `batch: {tokens_per_day, window_utc_hours}`")
            if self.demand:
                raise ValueError("batch_embeddings workloads take `batch`, not `demand`")
            if self.residency == "same_as_user":
                raise ValueError("a batch workload has no user region: residency cannot be same_as_user")
        else:
            if self.batch is not None:
                raise ValueError(f"`batch` is only for batch_embeddings workloads, not {self.kind}")
            if not self.demand:
                raise ValueError(f"{self.kind} workloads need `demand` per user region")
        if not self.has_output:
            bad = [q.id for q in self.query_classes if q.output_tokens]
            if bad:
                raise ValueError(f"{self.kind} produces no output tokens; set output_tokens: 0 in {bad}")
        if self.routing is not None and self.routing.escalate_to == self.id:
            raise ValueError("a workload cannot escalate to itself")
        if isinstance(self.residency, list) and not self.residency:
            raise ValueError("residency list is empty; use 'any' for no restriction")
        return self


# --------------------------------------------------------------------------- time
class TimeSlot(Strict):
    id: Id
    start_hour: int = Field(ge=0, le=23)
    end_hour: int = Field(ge=1, le=24)

    @property
    def hours(self) -> int:
        return self.end_hour - self.start_hour


def default_time_slots() -> list[TimeSlot]:
    return [TimeSlot(id=f"h{h:02d}", start_hour=h, end_hour=h + 4) for h in range(0, 24, 4)]


# --------------------------------------------------------------------------- policies
class SpotPolicy(Strict):
    derating: Fraction = Field(default=0.8, description="a spot instance counts as this fraction of one")
    max_share: Fraction = Field(default=0.5, description="cap on spot as a share of a workload's capacity")


class EgressPolicy(Strict):
    """Prices used where the catalog has none (USD/GB). Sources in the README."""

    internet_usd_per_gb: dict[str, NonNeg] = Field(
        default_factory=lambda: {"aws": 0.09, "azure": 0.087, "gcp": 0.12, "lambda": 0.0, "nebius": 0.0}
    )
    inter_region_same_continent_usd_per_gb: NonNeg = 0.02
    inter_region_other_continent_usd_per_gb: NonNeg = 0.05
    inter_provider_usd_per_gb: NonNeg = 0.09
    onprem_internet_usd_per_gb: NonNeg = 0.0


class Policies(Strict):
    pricing_models: list[Literal["reserved", "on_demand", "spot"]] = Field(
        default_factory=lambda: ["reserved", "on_demand", "spot"]
    )
    reserved_term: Literal["1y", "3y"] = "1y"
    reserved_discount: dict[str, dict[Literal["1y", "3y"], Fraction]] = Field(
        default_factory=lambda: {
            "aws": {"1y": 0.30, "3y": 0.50},
            "azure": {"1y": 0.35, "3y": 0.55},
            "gcp": {"1y": 0.37, "3y": 0.55},
            "lambda": {"1y": 0.20, "3y": 0.35},
            "nebius": {"1y": 0.20, "3y": 0.35},
        }
    )
    spot: SpotPolicy = Field(default_factory=SpotPolicy)
    egress: EgressPolicy = Field(default_factory=EgressPolicy)
    bytes_per_output_token: Positive = 4.0
    response_overhead_bytes: NonNeg = 1500.0
    hours_per_month: Positive = 730.0
    target_utilisation: float = Field(default=0.8, gt=0.0, le=1.0)
    kv_reserve_fraction: NonNeg = Field(default=0.2, description="KV cache reserve as a fraction of weight bytes")
    max_batch_sequences: int = Field(default=256, gt=0, description="concurrent sequences per replica (vLLM max_num_seqs)")
    carbon_usd_per_tonne: NonNeg = Field(default=0.0, description="weight of the carbon term (0 = off)")
    latency_usd_per_ms_per_rps: NonNeg = Field(default=0.0, description="weight of the latency term (0 = off)")
    max_gpus_per_region: int | None = Field(
        default=None, ge=0, description="warning only: flag a cloud region renting more GPUs than this in a slot "
        "(reserved + on-demand + spot); the plan is not limited (none = no warning)")


# --------------------------------------------------------------------------- variants
class PriceSelector(Strict):
    provider: str | None = None
    accelerator: str | None = None
    pricing: Literal["on_demand", "spot", "all"] = "all"


class Patch(Strict):
    """One change a variant makes. Exactly one target:

    - ``path`` (ids in brackets, ``*`` for all): ``workloads[chat_eu].demand[*].peak_rps``,
      with ``multiply`` or ``set``;
    - ``price``: a provider and/or accelerator, with ``multiply``;
    - ``lose_site``: a site id (declared, or ``<provider>-<region>``) that is gone;
    - ``only``: ``cloud`` (declared on-prem and edge sites are not used for compute; their owned
      GPUs stay as sunk cost) or ``declared`` (no cloud sites): the alternative plan, priced.
    """

    path: str | None = None
    price: PriceSelector | None = None
    lose_site: str | None = None
    only: Literal["cloud", "declared"] | None = None
    multiply: float | None = Field(default=None, ge=0.0)
    set: Any = None

    @model_validator(mode="after")
    def _one_target(self) -> Patch:
        targets = [t for t in ("path", "price", "lose_site", "only") if getattr(self, t) is not None]
        if len(targets) != 1:
            raise ValueError("a patch needs exactly one of path, price, lose_site, only")
        has_mul, has_set = self.multiply is not None, self.set is not None
        if self.path is not None and has_mul == has_set:
            raise ValueError("a path patch needs exactly one of multiply or set")
        if self.price is not None and (not has_mul or has_set):
            raise ValueError("a price patch needs multiply (and no set)")
        if self.lose_site is not None and (has_mul or has_set):
            raise ValueError("a lose_site patch takes no multiply or set")
        if self.only is not None and (has_mul or has_set):
            raise ValueError("an only patch takes no multiply or set")
        return self


class Variant(Strict):
    description: str = ""
    patches: list[Patch] = Field(default_factory=list)


class PriceMultiplier(Strict):
    provider: str | None = None
    accelerator: str | None = None
    pricing: Literal["on_demand", "spot", "all"] = "all"
    factor: NonNeg


# --------------------------------------------------------------------------- scenario
class Scenario(Strict):
    name: Id
    description: str = ""
    user_regions: list[UserRegion] = Field(default_factory=list)
    sites: list[Site] = Field(default_factory=list)
    cloud: list[CloudSelection] = Field(default_factory=list)
    models: list[ModelSpec] = Field(default_factory=list, description="added to / override catalogs/models.csv")
    workloads: list[Workload] = Field(min_length=1)
    time_slots: list[TimeSlot] = Field(default_factory=default_time_slots)
    policies: Policies = Field(default_factory=Policies)
    throughput_profile: str | None = Field(default=None, description="CSV of measured max_rps_per_replica")
    variants: dict[str, Variant] = Field(default_factory=dict)
    # Filled by variant patches (lose_site, price); may also be written by hand.
    lost_sites: list[str] = Field(default_factory=list)
    price_multipliers: list[PriceMultiplier] = Field(default_factory=list)
    only: Literal["cloud", "declared"] | None = Field(
        default=None, description="compute at cloud sites only, or at declared (on-prem, edge) sites only")

    @field_validator("variants")
    @classmethod
    def _variant_ids(cls, v: dict[str, Variant]) -> dict[str, Variant]:
        import re

        for name in v:
            if not re.match(ID_PATTERN, name):
                raise ValueError(f"variant name {name!r} must match {ID_PATTERN}")
        return v

    @field_validator("time_slots")
    @classmethod
    def _slots_cover_day(cls, v: list[TimeSlot]) -> list[TimeSlot]:
        if not v:
            raise ValueError("time_slots is empty; omit it for six 4-hour slots")
        expected = 0
        for slot in v:
            if slot.start_hour != expected or slot.end_hour <= slot.start_hour:
                raise ValueError(
                    f"time slots must be contiguous UTC hour ranges covering 0-24 in order; "
                    f"slot {slot.id!r} starts at {slot.start_hour}, expected {expected}"
                )
            expected = slot.end_hour
        if expected != 24:
            raise ValueError(f"time slots end at hour {expected}; the last must end at 24")
        return v

    # convenience look-ups ---------------------------------------------------
    def workload(self, wid: str) -> Workload:
        index = self.__dict__.get("_workload_index")
        if index is None or len(index) != len(self.workloads):
            index = {w.id: w for w in self.workloads}
            self.__dict__["_workload_index"] = index
        return index[wid]

    def user_region(self, rid: str) -> UserRegion:
        return next(r for r in self.user_regions if r.id == rid)

    def site(self, sid: str) -> Site:
        return next(s for s in self.sites if s.id == sid)


def utc_offset_from_longitude(lon: float) -> float:
    """Default UTC offset: solar time, one hour per 15 degrees of longitude."""
    return float(math.floor(lon / 15.0 + 0.5))


def scenario_json_schema() -> dict:
    """The JSON Schema of a scenario file, for editors and CI."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "planner scenario"
    return schema
