"""Catalog tests (no solver): the loader, the shipped files, and their provenance.

The provenance tests compare catalogs/ with ../shared/data (the maintainers' copy of the public
sources, beside the clone in CI) and rebuild catalogs/ with tools/build_catalogs.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from planner.errors import InputError
from planner.input.catalog import CATALOG_DIR, compute_version, haversine_km, load_catalog

REPO = Path(__file__).resolve().parents[1]
CATALOGS = REPO / "catalogs"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BUILD_SCRIPT = REPO / "tools" / "build_catalogs.py"

SOURCE_FILES = [
    "gpu_offers.csv", "regions.csv", "accelerators.csv", "network_egress.csv",
    "internet_egress.csv", "rtt_measured.csv",
]  # fmt: skip
KEYS = {
    "gpu_offers.csv": ["provider", "region", "instance_type"],
    "regions.csv": ["provider", "region"],
    "accelerators.csv": ["accelerator"],
    "network_egress.csv": ["src_provider", "src_region", "dst_provider", "dst_region"],
    "internet_egress.csv": ["provider", "region", "tier"],
    "rtt_measured.csv": ["src_provider", "src_region", "dst_provider", "dst_region"],
}
LAMBDA_NO_LOCATION = {
    "us-east-2",
    "us-east-3",
    "us-south-2",
    "us-south-3",
    "asia-northeast-2",
    "europe-south-1",
}

needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason=f"provenance check needs the public source data at {SHARED} (../shared/data beside the clone)",
)


@pytest.fixture(scope="module")
def cat():
    return load_catalog(CATALOGS)


def text_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def load_build_module():
    spec = importlib.util.spec_from_file_location("build_catalogs", BUILD_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- loader
def test_default_dir_is_the_shipped_catalogs():
    if "PLANNER_CATALOG_DIR" not in os.environ:
        assert CATALOG_DIR.resolve() == CATALOGS.resolve()
    for path in (REPO / "planner").rglob("*.py"):
        source = path.read_text()
        assert "shared/data" not in source and "../shared" not in source, f"{path}: the product never reads ../shared"


def test_offers(cat):
    offers = cat.offers
    assert len(offers) == 1561
    assert offers["site_id"].nunique() == 101
    assert offers["offer_id"].is_unique
    assert list(offers.columns[:15]) == [
        "offer_id", "provider", "region", "site_id", "instance_type", "accelerator", "accelerator_count",
        "vcpus", "memory_gib", "gpu_memory_gib_each", "gpu_memory_gib_total", "price_ondemand_usd_hr",
        "price_spot_usd_hr", "price_per_gpu_ondemand_usd_hr", "source",
    ]  # fmt: skip
    for col in (
        "accelerator_count",
        "price_ondemand_usd_hr",
        "price_spot_usd_hr",
        "price_per_gpu_ondemand_usd_hr",
    ):
        assert offers[col].dtype == "float64", col
    assert (
        offers["offer_id"] == offers["provider"] + "-" + offers["region"] + "-" + offers["instance_type"]
    ).all()
    assert (offers["site_id"] == offers["provider"] + "-" + offers["region"]).all()
    assert offers["price_ondemand_usd_hr"].gt(0).all()
    assert offers["price_spot_usd_hr"].isna().sum() > 0  # NaN where there is no spot price
    assert not offers.loc[offers["provider"] == "azure", "price_spot_usd_hr"].notna().any()
    assert offers["source"].notna().all()
    assert offers.groupby("provider").size().to_dict() == {
        "aws": 116,
        "azure": 666,
        "gcp": 384,
        "lambda": 374,
        "nebius": 21,
    }


def test_every_offer_accelerator_is_known(cat):
    assert set(cat.offers["accelerator"]) <= set(cat.accelerators.index)
    assert cat.accelerators.index.is_unique
    assert cat.accelerators["memory_gib"].dtype == "float64"
    assert math.isnan(cat.accelerators.loc["B300", "tdp_watts"])  # blank -> NaN


def test_every_offer_site_is_a_region(cat):
    assert set(cat.offers["site_id"]) <= set(cat.regions["site_id"])
    assert len(cat.regions) == 136
    assert cat.regions["site_id"].is_unique


def test_govcloud_jurisdiction(cat):
    for region in ("us-gov-east-1", "us-gov-west-1"):
        row = cat.region("aws", region)
        assert row["jurisdiction"] == "US-GOV"
        assert row["country"] == "US"
    assert cat.region("aws", "us-east-1")["jurisdiction"] == "US"
    assert cat.region("aws", "no-such-region") is None


def test_lambda_regions_without_location(cat):
    regions = cat.regions
    no_coords = regions[regions["latitude"].isna() | regions["longitude"].isna()]
    assert set(no_coords["provider"]) == {"lambda"}
    assert set(no_coords["region"]) == LAMBDA_NO_LOCATION
    assert no_coords["latitude"].isna().all() and no_coords["longitude"].isna().all()
    row = cat.region("lambda", "europe-south-1")
    assert row["latitude"] is None and row["country"] is None and row["jurisdiction"] is None
    assert cat.region("lambda", "us-east-2")["country"] == "US"
    # missing text is NaN in the frame, never ""
    assert not (regions["country"] == "").any()
    assert regions["country"].isna().sum() == 2


def test_measured_rtt_both_directions(cat):
    a, b = ("azure", "australiacentral"), ("azure", "australiacentral2")
    assert cat.measured_rtt_ms(a, b) == 5.0
    assert cat.measured_rtt_ms(b, a) == 7.0
    assert cat.measured_rtt_ms(a, a) is None
    assert cat.measured_rtt_ms(("aws", "us-east-1"), ("azure", "eastus")) is None
    assert len(cat.rtt_measured) == 2862


def test_egress_lookups(cat):
    eg = cat.network_egress
    row = eg.iloc[123]
    src, dst = (row["src_provider"], row["src_region"]), (row["dst_provider"], row["dst_region"])
    assert cat.egress_usd_per_gb(src, dst) == row["egress_usd_per_gb"]
    assert cat.egress_usd_per_gb(("aws", "us-east-1"), ("aws", "us-east-1")) == 0.0
    assert cat.egress_usd_per_gb(("lambda", "us-east-1"), ("aws", "us-east-1")) is None
    assert cat.internet_egress_usd_per_gb("aws", "us-east-1") == 0.09
    assert cat.internet_egress_usd_per_gb("gcp", "us-central1") is None


def test_rtt_fit_is_sane(cat):
    fit = cat.rtt_fit
    assert fit["fibre_km_per_ms"] == 204.19
    assert fit["route_factor"] >= 1.0
    assert fit["overhead_ms"] >= 0.0
    assert fit["n_pairs"] == 2862
    assert 0 < fit["mae_ms"] < 30
    assert fit["rmse_ms"] >= fit["mae_ms"]
    assert fit["short_hops"]["n_pairs"] > 0 and fit["short_hops"]["max_distance_km"] == 2000.0
    for key in ("p90_abs_err_ms", "max_abs_err_ms", "median_rel_err", "sources"):
        assert key in fit


def test_model_predicts_measured_pairs(cat):
    coords = {
        (r["provider"], r["region"]): (r["latitude"], r["longitude"]) for _, r in cat.regions.iterrows()
    }
    m = cat.rtt_measured
    errors = []
    for sp, sr, dp, dr, rtt in zip(
        m["src_provider"], m["src_region"], m["dst_provider"], m["dst_region"], m["rtt_ms"], strict=True
    ):
        errors.append((cat.modelled_rtt_ms(*coords[(sp, sr)], *coords[(dp, dr)]) - rtt, rtt))
    within = sum(abs(e) <= max(25.0, 0.25 * rtt) for e, rtt in errors) / len(errors)
    assert within >= 0.75, f"only {within:.0%} of measured pairs within max(25 ms, 25 %)"
    # the loader reproduces the errors the build recorded (same geometry, same parameters)
    mae = math.fsum(abs(e) for e, _ in errors) / len(errors)
    assert mae == pytest.approx(cat.rtt_fit["mae_ms"], abs=1e-3)


def test_modelled_rtt_rejects_unknown_coordinates(cat):
    with pytest.raises(ValueError, match="coordinates"):
        cat.modelled_rtt_ms(float("nan"), 0.0, 1.0, 1.0)
    assert cat.modelled_rtt_ms(10.0, 10.0, 10.0, 10.0) == pytest.approx(cat.rtt_fit["overhead_ms"])


def test_haversine():
    assert haversine_km(0, 0, 0, 0) == 0
    assert haversine_km(0, 0, 0, 180) == pytest.approx(math.pi * 6371.0)
    assert haversine_km(50.11, 8.68, 48.86, 2.35) == pytest.approx(haversine_km(48.86, 2.35, 50.11, 8.68))
    assert 470 < haversine_km(50.11, 8.68, 48.86, 2.35) < 490  # Frankfurt - Paris


def test_models_loaded(cat):
    if (CATALOGS / "models.csv").is_file():
        assert len(cat.models) == len(text_csv(CATALOGS / "models.csv"))
        assert cat.models.index.name == "id" and cat.models.index.is_unique
    else:
        assert cat.models.empty


def test_manifest_matches_files(cat):
    manifest = json.loads((CATALOGS / "MANIFEST.json").read_text())
    on_disk = {
        p.name for p in CATALOGS.iterdir() if p.suffix in (".csv", ".json") and p.name != "MANIFEST.json"
    }
    assert set(manifest["files"]) == on_disk, "run `make catalogs`"
    for name, info in manifest["files"].items():
        path = CATALOGS / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"], (
            f"{name} changed: run `make catalogs`"
        )
        if name.endswith(".csv"):
            assert info["rows"] == len(text_csv(path)), name
    assert "transfer_latency.csv" not in on_disk
    assert manifest["version"] == compute_version(CATALOGS) == cat.version
    assert manifest["source"]["sources_table"], "source README's sources table is recorded"


def test_catalog_is_cached_and_env_override(monkeypatch, tmp_path):
    assert load_catalog(CATALOGS) is load_catalog(CATALOGS / ".." / "catalogs")
    copy = tmp_path / "cat"
    shutil.copytree(CATALOGS, copy)
    monkeypatch.setenv("PLANNER_CATALOG_DIR", str(copy))
    assert load_catalog().dir == copy.resolve()


@pytest.mark.parametrize(
    ("name", "damage", "expect"),
    [
        ("gpu_offers.csv", None, "missing"),
        ("rtt_model.json", "{not json", "JSON"),
        ("regions.csv", "provider,region\naws,us-east-1\n", "lacks columns"),
        (
            "rtt_measured.csv",
            "src_provider,src_region,dst_provider,dst_region,rtt_ms\na,b,c,d,fast\n",
            "not a number",
        ),
    ],
)
def test_missing_or_corrupt_files_raise_input_error(tmp_path, name, damage, expect):
    copy = tmp_path / "cat"
    shutil.copytree(CATALOGS, copy)
    if damage is None:
        (copy / name).unlink()
    else:
        (copy / name).write_text(damage)
    with pytest.raises(InputError) as info:
        load_catalog(copy)
    text = str(info.value)
    assert name in text and expect in text
    assert "To fix: run `make catalogs`" in text
    assert info.value.exit_code == 2


# --------------------------------------------------------------------------- build script
def test_fit_line_recovers_and_clamps():
    build = load_build_module()
    d = [100.0 * i for i in range(1, 50)]
    a_true = 2 * 1.5 / build.FIBRE_KM_PER_MS
    a, b = build.fit_line(d, [a_true * x + 3.0 for x in d])
    assert a == pytest.approx(a_true) and b == pytest.approx(3.0)
    # data implying a route factor below 1: clamped to exactly 1
    a, b = build.fit_line(d, [0.5 * 2 / build.FIBRE_KM_PER_MS * x + 10 for x in d])
    assert a * build.FIBRE_KM_PER_MS / 2 == pytest.approx(1.0) and b >= 0
    # data implying a negative overhead: clamped to 0
    a, b = build.fit_line(d, [a_true * x - 20 for x in d])
    assert b == 0.0 and a * build.FIBRE_KM_PER_MS / 2 >= 1.0


def test_grid_intensities_are_plausible(cat):
    """Every grid factor is a plausible g CO2e/kWh (the world's dirtiest grids are ~1,000)."""
    g = cat.regions["grid_gco2e_per_kwh"].dropna()
    assert g.between(0, 1500).all(), cat.regions.loc[~cat.regions["grid_gco2e_per_kwh"].between(0, 1500), "site_id"]


# --------------------------------------------------------------------------- provenance
@needs_shared
@pytest.mark.parametrize("name", SOURCE_FILES)
def test_catalog_rows_trace_to_source(name):
    src = text_csv(SHARED / name)
    out = text_csv(CATALOGS / name)
    key = KEYS[name]
    src = load_build_module().apply_corrections(src, name, key)  # documented corrections only (tools/build_catalogs.py)
    assert [c for c in out.columns if c in src.columns] == list(src.columns), "same columns, same order"
    assert len(out) == len(src)
    src_rows = {tuple(r[k] for k in key): r for r in src.to_dict("records")}
    out_rows = {tuple(r[k] for k in key): {c: r[c] for c in src.columns} for r in out.to_dict("records")}
    assert len(src_rows) == len(src) and len(out_rows) == len(out), "keys are unique"
    missing = set(src_rows) - set(out_rows)
    untraceable = set(out_rows) - set(src_rows)
    assert not missing, f"source rows missing from catalogs/{name}: {sorted(missing)[:3]}"
    assert not untraceable, f"catalogs/{name} rows not in the source: {sorted(untraceable)[:3]}"
    changed = [k for k in src_rows if src_rows[k] != out_rows[k]]
    assert not changed, f"catalogs/{name} values differ from the source for {changed[:3]}"
    if "source" in src.columns:
        assert out["source"].ne("").all()


@needs_shared
def test_derived_ids_and_unshipped_files():
    offers = text_csv(CATALOGS / "gpu_offers.csv")
    assert (
        offers["offer_id"] == offers["provider"] + "-" + offers["region"] + "-" + offers["instance_type"]
    ).all()
    regions = text_csv(CATALOGS / "regions.csv")
    assert (regions["site_id"] == regions["provider"] + "-" + regions["region"]).all()
    extra = {p.name for p in CATALOGS.glob("*.csv")} - set(SOURCE_FILES) - {"models.csv"}
    assert not extra, f"unexpected csv files in catalogs/: {extra}"
    assert (SHARED / "transfer_latency.csv").is_file() and not (CATALOGS / "transfer_latency.csv").exists()


@needs_shared
def test_rebuild_is_byte_identical(tmp_path):
    out = tmp_path / "catalogs"
    out.mkdir()
    for hand_written in ("README.md", "models.csv", "models.md"):
        if (CATALOGS / hand_written).is_file():
            shutil.copy2(CATALOGS / hand_written, out / hand_written)
    proc = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--src", str(SHARED), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    shipped = sorted(p.name for p in CATALOGS.iterdir() if p.suffix in (".csv", ".json"))
    rebuilt = sorted(p.name for p in out.iterdir() if p.suffix in (".csv", ".json"))
    assert rebuilt == shipped
    differ = [n for n in shipped if (CATALOGS / n).read_bytes() != (out / n).read_bytes()]
    assert not differ, f"rebuild differs for {differ}: run `make catalogs`"
    assert (CATALOGS / "README.md").read_text() == (out / "README.md").read_text(), (
        "README.md rtt-fit section is stale: run `make catalogs`"
    )
