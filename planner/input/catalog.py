"""Load the shipped public catalogs (``catalogs/``) into DataFrames with O(1) look-ups.

The catalogs are built by ``tools/build_catalogs.py`` (``make catalogs``); see
``catalogs/README.md`` for sources, licences and caveats. This module reads only the catalog
directory: :data:`CATALOG_DIR`, or ``$PLANNER_CATALOG_DIR`` when set, or an explicit directory.

Conventions of the loaded frames:

* every numeric column is ``float64`` with ``NaN`` for a blank cell (``vcpus`` included);
* text columns use pandas' string dtype; a blank cell is missing (``NaN``, the dtype's
  missing value; test with ``pd.isna``), never ``""``. In particular ``regions.country`` /
  ``regions.jurisdiction`` / ``city`` are missing for the Lambda regions of unknown location;
* ``in_*`` flag columns are ``bool``;
* the dicts returned by :meth:`Catalog.region` use ``None`` for every missing value (text or
  number), so ``row["latitude"] is None`` means "location unknown".

A loaded :class:`Catalog` is cached per directory and shared: treat its frames as read-only
(``.copy()`` before changing one).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import InputError, Problem

ENV_VAR = "PLANNER_CATALOG_DIR"
#: The shipped catalogs (<repo>/catalogs), or $PLANNER_CATALOG_DIR when set at import time.
CATALOG_DIR: Path = Path(os.environ.get(ENV_VAR) or Path(__file__).resolve().parents[2] / "catalogs")

#: Mean Earth radius (km); the same value tools/build_catalogs.py fits the RTT model with.
EARTH_RADIUS_KM = 6371.0
FIX = "run `make catalogs`"

# file -> (required columns, numeric columns, bool columns)
_OFFER_COLUMNS = [
    "offer_id", "provider", "region", "site_id", "instance_type", "accelerator", "accelerator_count",
    "vcpus", "memory_gib", "gpu_memory_gib_each", "gpu_memory_gib_total", "price_ondemand_usd_hr",
    "price_spot_usd_hr", "price_per_gpu_ondemand_usd_hr", "source",
]  # fmt: skip
_SPECS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "gpu_offers.csv": (
        _OFFER_COLUMNS,
        [
            "accelerator_count",
            "vcpus",
            "memory_gib",
            "gpu_memory_gib_each",
            "gpu_memory_gib_total",
            "price_ondemand_usd_hr",
            "price_spot_usd_hr",
            "price_per_gpu_ondemand_usd_hr",
        ],
        [],
    ),
    "regions.csv": (
        [
            "provider",
            "region",
            "site_id",
            "city",
            "country",
            "jurisdiction",
            "latitude",
            "longitude",
            "grid_gco2e_per_kwh",
        ],
        ["latitude", "longitude", "grid_gco2e_per_kwh"],
        ["in_gpu_offers", "in_network_egress", "in_transfer_latency", "in_rtt_measured"],
    ),
    "accelerators.csv": (
        ["accelerator", "memory_gib"],
        ["memory_gib", "memory_bandwidth_gb_s", "tdp_watts", "bf16_tflops", "fp16_tflops"],
        ["in_gpu_offers"],
    ),
    "network_egress.csv": (
        ["src_provider", "src_region", "dst_provider", "dst_region", "egress_usd_per_gb"],
        ["egress_usd_per_gb"],
        [],
    ),
    "internet_egress.csv": (["provider", "region", "egress_usd_per_gb"], ["egress_usd_per_gb"], []),
    "rtt_measured.csv": (
        ["src_provider", "src_region", "dst_provider", "dst_region", "rtt_ms"],
        ["rtt_ms"],
        [],
    ),
}
_MODEL_COLUMNS = [
    "kind", "total_params_b", "active_params_b", "layers", "kv_heads", "head_dim", "hidden_size",
    "max_context_tokens", "weight_precision", "kv_cache_precision", "experts", "experts_per_token", "source",
]  # fmt: skip
_MODEL_TEXT = {"id", "kind", "source", "weight_precision", "kv_cache_precision"}
_MODEL_NUMERIC = [c for c in _MODEL_COLUMNS if c not in _MODEL_TEXT]
_RTT_FIT_KEYS = ("fibre_km_per_ms", "route_factor", "overhead_ms")

Site = tuple[str, str]


# --------------------------------------------------------------------------- geometry
def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in decimal degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


# --------------------------------------------------------------------------- catalog
@dataclass(frozen=True, eq=False)
class Catalog:
    """The public catalogs of one directory. Build with :func:`load_catalog`."""

    dir: Path
    version: str
    offers: pd.DataFrame
    regions: pd.DataFrame
    accelerators: pd.DataFrame
    models: pd.DataFrame
    network_egress: pd.DataFrame
    internet_egress: pd.DataFrame
    rtt_measured: pd.DataFrame
    rtt_fit: dict
    _regions_by_key: dict[Site, dict[str, Any]] = field(init=False, repr=False)
    _rtt_by_pair: dict[tuple[str, str, str, str], float] = field(init=False, repr=False)
    _egress_by_pair: dict[tuple[str, str, str, str], float] = field(init=False, repr=False)
    _internet_by_site: dict[Site, float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        r = self.regions
        records = r.astype(object).where(r.notna(), None).to_dict("records")
        regions = {(rec["provider"], rec["region"]): rec for rec in records}
        rtt = _pair_index(self.rtt_measured, "rtt_ms")
        egress = _pair_index(self.network_egress, "egress_usd_per_gb")
        internet: dict[Site, float] = {}
        ie = self.internet_egress
        for p, reg, v in zip(ie["provider"], ie["region"], ie["egress_usd_per_gb"], strict=True):
            if not math.isnan(v):
                internet.setdefault((p, reg), float(v))  # first row (tier) in file order wins
        object.__setattr__(self, "_regions_by_key", regions)
        object.__setattr__(self, "_rtt_by_pair", rtt)
        object.__setattr__(self, "_egress_by_pair", egress)
        object.__setattr__(self, "_internet_by_site", internet)

    def __repr__(self) -> str:
        return (
            f"Catalog(dir={str(self.dir)!r}, version={self.version!r}, offers={len(self.offers)}, "
            f"regions={len(self.regions)}, accelerators={len(self.accelerators)}, models={len(self.models)}, "
            f"rtt_measured={len(self.rtt_measured)}, network_egress={len(self.network_egress)})"
        )

    def region(self, provider: str, region: str) -> dict | None:
        """The regions.csv row of (provider, region) as a dict (missing values None), or None."""
        row = self._regions_by_key.get((provider, region))
        return dict(row) if row is not None else None

    def measured_rtt_ms(self, a: tuple[str, str], b: tuple[str, str]) -> float | None:
        """Measured P95 RTT from a to b ((provider, region) each); None if that direction was not
        measured (same-region pairs are never measured)."""
        return self._rtt_by_pair.get((a[0], a[1], b[0], b[1]))

    def modelled_rtt_ms(self, lat1: float, lon1: float, lat2: float, lon2: float) -> float:
        """RTT predicted by the great-circle model of rtt_model.json (P95-like, ms).

        Raises ValueError for unknown (None/NaN) coordinates rather than return NaN, which would
        silently pass every ``rtt > slo`` test."""
        coords = (lat1, lon1, lat2, lon2)
        if any(c is None or (isinstance(c, float) and math.isnan(c)) for c in coords):
            raise ValueError(f"modelled_rtt_ms needs known coordinates, got {coords}")
        fit = self.rtt_fit
        km = haversine_km(float(lat1), float(lon1), float(lat2), float(lon2))
        return 2.0 * km * float(fit["route_factor"]) / float(fit["fibre_km_per_ms"]) + float(
            fit["overhead_ms"]
        )

    def egress_usd_per_gb(self, src: tuple[str, str], dst: tuple[str, str]) -> float | None:
        """Catalog egress price src -> dst in USD/GB; 0.0 within one region; None if the catalog
        has no price for the pair (e.g. Lambda, Nebius, or regions SkyPIE does not list)."""
        if tuple(src) == tuple(dst):
            return 0.0
        return self._egress_by_pair.get((src[0], src[1], dst[0], dst[1]))

    def internet_egress_usd_per_gb(self, provider: str, region: str) -> float | None:
        """Egress-to-internet price (first paid tier) in USD/GB; None if not in the catalog
        (only AWS regions are)."""
        return self._internet_by_site.get((provider, region))


def _pair_index(df: pd.DataFrame, value: str) -> dict[tuple[str, str, str, str], float]:
    cols = [df[c] for c in ("src_provider", "src_region", "dst_provider", "dst_region", value)]
    return {(a, b, c, d): float(v) for a, b, c, d, v in zip(*cols, strict=True) if not math.isnan(v)}


# --------------------------------------------------------------------------- loading
def _problem(path: Path, message: str, fix: str = FIX) -> InputError:
    return InputError(Problem(file=str(path), path="", message=message, fix=fix))


def _read_csv(
    path: Path, required: list[str], numeric: list[str], flags: list[str], fix: str = FIX
) -> pd.DataFrame:
    if not path.is_file():
        raise _problem(path, "catalog file is missing", fix)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise _problem(path, f"cannot parse catalog file: {exc}", fix) from exc
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise _problem(path, f"catalog file lacks columns {missing}", fix)
    out = {}
    for col in raw.columns:
        s = raw[col]
        if col in numeric:
            num = pd.to_numeric(s.where(s.str.strip() != ""), errors="coerce").astype("float64")
            bad = num.isna() & (s.str.strip() != "")
            if bad.any():
                i = int(bad.to_numpy().nonzero()[0][0])
                raise _problem(path, f"column {col!r} row {i + 2}: not a number ({s.iloc[i]!r})", fix)
            out[col] = num
        elif col in flags:
            mapped = s.map({"True": True, "False": False, "true": True, "false": False})
            if mapped.isna().any():
                i = int(mapped.isna().to_numpy().nonzero()[0][0])
                raise _problem(path, f"column {col!r} row {i + 2}: not True/False ({s.iloc[i]!r})", fix)
            out[col] = mapped.astype(bool)
        else:
            out[col] = s.where(s != "")
    return pd.DataFrame(out, index=raw.index)


def _unique(df: pd.DataFrame, path: Path, key: list[str], fix: str = FIX) -> None:
    if df[key].isna().any().any():
        raise _problem(path, f"blank key cells in {key}", fix)
    dup = df.duplicated(key)
    if dup.any():
        first = df.loc[dup, key].iloc[0].tolist()
        raise _problem(path, f"duplicate key {key} = {first}", fix)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise _problem(path, "catalog file is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _problem(path, f"cannot parse JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _problem(path, "expected a JSON object")
    return data


def _version(directory: Path) -> str:
    manifest = directory / "MANIFEST.json"
    if manifest.is_file():
        version = _read_json(manifest).get("version")
        if not isinstance(version, str) or not version:
            raise _problem(manifest, "no 'version' string")
        return version
    return compute_version(directory)


def compute_version(directory: Path) -> str:
    """Catalog version as MANIFEST.json defines it: first 12 hex digits of sha256 over the
    sha256 hex digests of the data files (*.csv, *.json except MANIFEST.json) in name order."""
    files = sorted(
        (p for p in Path(directory).iterdir() if p.suffix in (".csv", ".json") and p.name != "MANIFEST.json"),
        key=lambda p: p.name,
    )
    joined = "".join(hashlib.sha256(p.read_bytes()).hexdigest() for p in files)
    return hashlib.sha256(joined.encode("ascii")).hexdigest()[:12]


def _load_models(path: Path) -> pd.DataFrame:
    fix = f"correct {path.name} (see models.md), then {FIX}"
    if not path.is_file():
        empty = pd.DataFrame(
            {c: pd.Series(dtype="str" if c in _MODEL_TEXT else "float64") for c in _MODEL_COLUMNS}
        )
        return empty.rename_axis("id")
    with path.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    numeric = [c for c in header if c in _MODEL_NUMERIC]  # any other column is kept as text
    df = _read_csv(path, ["id"], numeric, [], fix)
    _unique(df, path, ["id"], fix)
    return df.set_index("id")


def _load_rtt_fit(path: Path) -> dict:
    fit = _read_json(path)
    for key in _RTT_FIT_KEYS:
        v = fit.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise _problem(path, f"{key!r} must be a finite number (got {v!r})")
    if fit["fibre_km_per_ms"] <= 0:
        raise _problem(path, "'fibre_km_per_ms' must be positive")
    return fit


@functools.lru_cache(maxsize=8)
def _load(directory: Path) -> Catalog:
    if not directory.is_dir():
        raise _problem(directory, "catalog directory not found")
    frames = {name: _read_csv(directory / name, *spec) for name, spec in _SPECS.items()}

    offers = frames["gpu_offers.csv"]
    _unique(offers, directory / "gpu_offers.csv", ["offer_id"])
    offers = offers[_OFFER_COLUMNS + [c for c in offers.columns if c not in _OFFER_COLUMNS]]
    regions = frames["regions.csv"]
    _unique(regions, directory / "regions.csv", ["provider", "region"])
    accelerators = frames["accelerators.csv"]
    _unique(accelerators, directory / "accelerators.csv", ["accelerator"])
    pair = ["src_provider", "src_region", "dst_provider", "dst_region"]
    for name in ("network_egress.csv", "rtt_measured.csv"):
        _unique(frames[name], directory / name, pair)

    known = set(zip(regions["provider"], regions["region"], strict=True))
    stray = set(zip(offers["provider"], offers["region"], strict=True)) - known
    if stray:
        raise _problem(
            directory / "gpu_offers.csv", f"offer regions missing from regions.csv: {sorted(stray)[:3]}"
        )
    unknown_acc = set(offers["accelerator"].dropna()) - set(accelerators["accelerator"])
    if unknown_acc:
        raise _problem(
            directory / "gpu_offers.csv", f"accelerators missing from accelerators.csv: {sorted(unknown_acc)}"
        )

    return Catalog(
        dir=directory,
        version=_version(directory),
        offers=offers,
        regions=regions,
        accelerators=accelerators.set_index("accelerator"),
        models=_load_models(directory / "models.csv"),
        network_egress=frames["network_egress.csv"],
        internet_egress=frames["internet_egress.csv"],
        rtt_measured=frames["rtt_measured.csv"],
        rtt_fit=_load_rtt_fit(directory / "rtt_model.json"),
    )


def default_catalog_dir() -> Path:
    """``$PLANNER_CATALOG_DIR`` if set (read at call time), else :data:`CATALOG_DIR`."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else CATALOG_DIR


def load_catalog(directory: Path | None = None) -> Catalog:
    """Load (once per resolved directory) the catalogs of ``directory`` or the default one.

    Raises :class:`planner.errors.InputError` naming the file when a catalog file is missing or
    corrupt. ``load_catalog.cache_clear()`` forgets loaded catalogs (tests, rebuilt files)."""
    path = Path(directory) if directory is not None else default_catalog_dir()
    return _load(path.expanduser().resolve())


load_catalog.cache_clear = _load.cache_clear  # type: ignore[attr-defined]
