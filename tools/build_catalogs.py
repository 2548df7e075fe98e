"""Build the shipped catalogs (catalogs/) from the public reference data (../shared/data).

    python tools/build_catalogs.py --src ../shared/data --out catalogs      (or: make catalogs)

Maintainers only: the product reads catalogs/ and never ../shared. The build is deterministic
(same source files -> byte-identical outputs): cells are copied as text, never re-formatted, rows
are sorted stably, the RTT fit uses exact (fsum) arithmetic and rounded parameters, JSON is
written with sorted keys, and nothing depends on the clock, the host or the --src spelling.

What it writes into --out:
  gpu_offers.csv        every source row, same cells, plus offer_id and site_id
  regions.csv           every source row, same cells, plus site_id
  accelerators.csv, network_egress.csv, internet_egress.csv, rtt_measured.csv   as is
  rtt_model.json        great-circle RTT model fitted to rtt_measured.csv
  MANIFEST.json         sha256 + row count per data file, version, source reference
  README.md             only the part between the rtt-fit markers is rewritten (if the file exists)

transfer_latency.csv is deliberately not shipped: it holds object-transfer times (seconds for
10-320 MiB objects between AWS regions), not network RTT, and nothing in the planner uses it.
models.csv / models.md are written by hand by another owner; this script never touches them,
but models.csv is hashed into the manifest when it is present.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import re
import sys
from pathlib import Path

import pandas as pd

#: Speed of light in fibre: c / 1.468 (refractive index of standard single-mode fibre), km per ms.
FIBRE_KM_PER_MS = 204.19
#: Mean Earth radius used by the haversine distance (km). planner.catalog uses the same value.
EARTH_RADIUS_KM = 6371.0
#: Pairs closer than this are reported separately: short hops decide tight latency SLOs.
SHORT_HOP_KM = 2000.0

SOURCE_DIR_LABEL = "../shared/data"  # recorded instead of --src so the output does not depend on it

# name -> (key columns, sort by key?)
AS_IS = {
    "accelerators.csv": (["accelerator"], False),
    "network_egress.csv": (["src_provider", "src_region", "dst_provider", "dst_region"], False),
    "internet_egress.csv": (["provider", "region", "tier"], False),
    "rtt_measured.csv": (["src_provider", "src_region", "dst_provider", "dst_region"], False),
}
OFFER_KEY = ["provider", "region", "instance_type"]
REGION_KEY = ["provider", "region"]
NOT_SHIPPED = {
    "transfer_latency.csv": "object-transfer times (seconds, 10-320 MiB objects, 17 AWS regions), "
    "not network RTT; unused by the planner",
}
HAND_WRITTEN = {"models.csv"}  # owned by someone else; hashed into the manifest when present
GENERATED = {"gpu_offers.csv", "regions.csv", "rtt_model.json", *AS_IS}

README_START = "<!-- rtt-fit:start -->"
README_END = "<!-- rtt-fit:end -->"


class BuildError(Exception):
    pass


# --------------------------------------------------------------------------- io helpers
#: Source cells corrected on purpose: (file, key, column) -> (source value, shipped value, why).
#: Kept to the minimum; tests/test_catalog.py applies the same table when it traces rows to source.
CORRECTIONS: dict[tuple[str, tuple[str, ...], str], tuple[str, str, str]] = {
    ("regions.csv", ("azure", "germanywestcentral"), "grid_gco2e_per_kwh"): (
        "402000000.0",
        "402.0",
        "CCF's Azure factor for Germany West Central is 402 where every other row is in t CO2e/kWh "
        "(e.g. 0.000338), so the x1e6 conversion gave 4.02e8 g/kWh; 402 g/kWh is Germany's grid (EEA)",
    ),
}


def apply_corrections(df: pd.DataFrame, name: str, key: list[str]) -> pd.DataFrame:
    df = df.copy()
    for (fname, kval, col), (old, new, _why) in CORRECTIONS.items():
        if fname != name:
            continue
        mask = pd.Series(True, index=df.index)
        for k, v in zip(key, kval, strict=True):
            mask &= df[k] == v
        if mask.sum() != 1 or df.loc[mask, col].iloc[0] != old:
            raise BuildError(f"{name}: correction for {kval} {col} no longer matches the source ({old!r}); "
                             "review CORRECTIONS")
        df.loc[mask, col] = new
    return df


def read_text_csv(path: Path) -> pd.DataFrame:
    """Every cell as the exact text of the file (blank stays "")."""
    if not path.is_file():
        raise BuildError(f"{path}: missing source file")
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def write_csv(df: pd.DataFrame, path: Path) -> None:
    path.write_bytes(df.to_csv(index=False, lineterminator="\n").encode("utf-8"))


def write_json(obj: object, path: Path) -> None:
    path.write_bytes((json.dumps(obj, sort_keys=True, indent=2, allow_nan=False) + "\n").encode("utf-8"))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def csv_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as fh:
        return max(sum(1 for _ in csv.reader(fh)) - 1, 0)


def require(df: pd.DataFrame, name: str, columns: list[str], key: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise BuildError(f"{name}: missing columns {missing}")
    dup = df.duplicated(key, keep=False)
    if dup.any():
        raise BuildError(f"{name}: duplicate key {key}: {df.loc[dup, key].head(3).to_dict('records')}")
    blank = (df[key] == "").any(axis=1)
    if blank.any():
        raise BuildError(f"{name}: blank key cells in {int(blank.sum())} rows")


def insert_after(df: pd.DataFrame, after: str, name: str, values: pd.Series) -> pd.DataFrame:
    out = df.copy()
    out.insert(out.columns.get_loc(after) + 1, name, values)
    return out


# --------------------------------------------------------------------------- geometry and fit
def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default method), in plain Python."""
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def fit_line(d: list[float], y: list[float]) -> tuple[float, float]:
    """Least-squares y = a*d + b with a >= 2/FIBRE_KM_PER_MS (route_factor >= 1) and b >= 0.

    The objective is convex, so the constrained optimum is the unconstrained one if feasible,
    else lies on a boundary: fix that bound and solve the 1-D problem for the other parameter.
    """
    n = len(d)
    a_min = 2.0 / FIBRE_KM_PER_MS
    md, my = math.fsum(d) / n, math.fsum(y) / n
    sdd = math.fsum((x - md) ** 2 for x in d)
    sdy = math.fsum((x - md) * (v - my) for x, v in zip(d, y, strict=True))
    a = sdy / sdd if sdd > 0 else a_min
    b = my - a * md
    if a >= a_min and b >= 0:
        return a, b
    candidates = []
    # route_factor fixed at 1: best overhead
    b1 = max(0.0, my - a_min * md)
    candidates.append((a_min, b1))
    # overhead fixed at 0: best slope through the origin
    sd2 = math.fsum(x * x for x in d)
    a0 = max(a_min, math.fsum(x * v for x, v in zip(d, y, strict=True)) / sd2) if sd2 > 0 else a_min
    candidates.append((a0, 0.0))

    def sse(ab: tuple[float, float]) -> float:
        return math.fsum((v - ab[0] * x - ab[1]) ** 2 for x, v in zip(d, y, strict=True))

    return min(candidates, key=sse)


def r(x: float, digits: int) -> float:
    """Round, and turn -0.0 into 0.0 so the JSON never shows a signed zero."""
    return round(x, digits) + 0.0


def error_stats(pred: list[float], meas: list[float]) -> dict:
    err = [p - m for p, m in zip(pred, meas, strict=True)]
    abs_err = [abs(e) for e in err]
    n = len(err)
    return {
        "n_pairs": n,
        "mae_ms": r(math.fsum(abs_err) / n, 3),
        "rmse_ms": r(math.sqrt(math.fsum(e * e for e in err) / n), 3),
        "bias_ms": r(math.fsum(err) / n, 3),
        "p90_abs_err_ms": r(quantile(abs_err, 0.9), 3),
        "max_abs_err_ms": r(max(abs_err), 3),
        "median_rel_err": r(quantile([a / m for a, m in zip(abs_err, meas, strict=True)], 0.5), 4),
    }


def fit_rtt_model(rtt: pd.DataFrame, regions: pd.DataFrame, source_hashes: dict[str, str]) -> dict:
    coords = {}
    for row in regions.itertuples(index=False):
        if row.latitude != "" and row.longitude != "":
            coords[(row.provider, row.region)] = (float(row.latitude), float(row.longitude))
    d, y, skipped = [], [], 0
    for row in rtt.itertuples(index=False):
        a, b = (row.src_provider, row.src_region), (row.dst_provider, row.dst_region)
        if a not in coords or b not in coords:
            skipped += 1
            continue
        d.append(haversine_km(*coords[a], *coords[b]))
        y.append(float(row.rtt_ms))
    if len(d) < 2:
        raise BuildError("rtt fit: fewer than two measured pairs with coordinates")
    a, b = fit_line(d, y)
    route_factor = round(max(1.0, a * FIBRE_KM_PER_MS / 2.0), 6)
    overhead_ms = round(max(0.0, b), 4)

    def model(km: float) -> float:
        return 2.0 * km * route_factor / FIBRE_KM_PER_MS + overhead_ms

    pred = [model(x) for x in d]
    short = [i for i, x in enumerate(d) if x < SHORT_HOP_KM]
    short_stats = error_stats([pred[i] for i in short], [y[i] for i in short]) if short else {"n_pairs": 0}
    short_stats["max_distance_km"] = SHORT_HOP_KM
    result = {
        "formula": "rtt_ms = 2 * haversine_km * route_factor / fibre_km_per_ms + overhead_ms",
        "fibre_km_per_ms": FIBRE_KM_PER_MS,
        "fibre_note": "c / 1.468, refractive index of single-mode fibre",
        "earth_radius_km": EARTH_RADIUS_KM,
        "route_factor": route_factor,
        "overhead_ms": overhead_ms,
        "fit": "least squares over every measured ordered pair (both directions kept), "
        "route_factor clamped >= 1 and overhead_ms >= 0; parameters rounded before the errors are computed",
        "statistic": "p95 (the measured values are Azure P95 round-trip times, so the model predicts a P95-like RTT)",
        "pairs_skipped_no_coordinates": skipped,
        "distance_km_min": round(min(d), 1),
        "distance_km_max": round(max(d), 1),
        "short_hops": short_stats,
        "sources": {name: {"sha256": h} for name, h in sorted(source_hashes.items())},
    }
    result.update(error_stats(pred, y))
    return result


# --------------------------------------------------------------------------- manifest
def parse_sources_table(readme: str) -> list[dict]:
    """The table under '## Sources and licenses' of the source README, as records."""
    lines = readme.splitlines()
    try:
        start = next(
            i for i, line in enumerate(lines) if line.strip().lower().startswith("## sources and licen")
        )
    except StopIteration as exc:
        raise BuildError("source README.md: no '## Sources and licenses' section") from exc
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set("".join(cells)) <= set("-: "):
            continue
        rows.append(cells)
    if len(rows) < 2:
        raise BuildError("source README.md: sources table is empty")
    header = [re.sub(r"\W+", "_", h.lower()).strip("_") for h in rows[0]]
    return [dict(zip(header, r, strict=False)) for r in rows[1:]]


def data_files(out: Path) -> list[Path]:
    return sorted(
        (p for p in out.iterdir() if p.suffix in (".csv", ".json") and p.name != "MANIFEST.json"),
        key=lambda p: p.name,
    )


def catalog_version(hashes: dict[str, str]) -> str:
    """First 12 hex digits of sha256 over the files' sha256 hex digests, concatenated in name order."""
    joined = "".join(hashes[name] for name in sorted(hashes))
    return hashlib.sha256(joined.encode("ascii")).hexdigest()[:12]


def build_manifest(out: Path, src: Path, source_hashes: dict[str, str]) -> dict:
    files = {}
    for p in data_files(out):
        files[p.name] = {"sha256": sha256_file(p), "rows": csv_rows(p) if p.suffix == ".csv" else None}
    readme = (src / "README.md").read_text(encoding="utf-8")
    return {
        "version": catalog_version({k: v["sha256"] for k, v in files.items()}),
        "version_rule": "first 12 hex digits of sha256 over the concatenated sha256 hex digests of the data "
        "files (*.csv, *.json except MANIFEST.json), in file-name order",
        "files": files,
        "rows_note": "rows = data rows of a csv (header excluded); null for json",
        "generator": "tools/build_catalogs.py",
        "not_shipped": NOT_SHIPPED,
        "source": {
            "dir": SOURCE_DIR_LABEL,
            "readme": "README.md",
            "readme_sha256": hashlib.sha256(readme.encode("utf-8")).hexdigest(),
            "files": {name: {"sha256": h} for name, h in sorted(source_hashes.items())},
            "sources_table": parse_sources_table(readme),
        },
    }


# --------------------------------------------------------------------------- readme
def rtt_fit_markdown(fit: dict) -> str:
    s = fit["short_hops"]

    def row(label: str, st: dict) -> str:
        return (
            f"| {label} | {st['n_pairs']} | {st['mae_ms']} | {st['rmse_ms']} | {st['bias_ms']} | "
            f"{st['p90_abs_err_ms']} | {st['max_abs_err_ms']} | {st['median_rel_err'] * 100:.1f} % |"
        )

    lines = [
        README_START,
        "<!-- generated by tools/build_catalogs.py from rtt_model.json; do not edit by hand -->",
        "",
        "```",
        f"rtt_ms = 2 * haversine_km * {fit['route_factor']} / {fit['fibre_km_per_ms']} + {fit['overhead_ms']}",
        "```",
        "",
        f"* route_factor = **{fit['route_factor']}** (fibre path length / great-circle distance), "
        f"overhead_ms = **{fit['overhead_ms']}** (clamped: route_factor >= 1, overhead_ms >= 0).",
        f"* fibre_km_per_ms = {fit['fibre_km_per_ms']} ({fit['fibre_note']}); "
        f"Earth radius {fit['earth_radius_km']} km.",
        f"* Fitted by least squares on {fit['n_pairs']} measured Azure region pairs "
        f"(rtt_measured.csv, P95, both directions), {fit['distance_km_min']}-{fit['distance_km_max']} km apart; "
        f"{fit['pairs_skipped_no_coordinates']} pairs skipped for missing coordinates.",
        "",
        "| pairs | n | MAE ms | RMSE ms | bias ms | P90 abs err ms | max abs err ms | median rel err |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        row("all", fit),
    ]
    if s.get("n_pairs"):
        lines.append(row(f"under {s['max_distance_km']:,.0f} km", s))
    lines += ["", README_END]
    return "\n".join(lines)


def update_readme(path: Path, fit: dict) -> bool:
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    if (
        text.count(README_START) != 1
        or text.count(README_END) != 1
        or text.index(README_START) > text.index(README_END)
    ):
        raise BuildError(f"{path}: needs exactly one {README_START} ... {README_END} section")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = head + rtt_fit_markdown(fit) + tail
    if new != text:
        path.write_bytes(new.encode("utf-8"))
    return True


# --------------------------------------------------------------------------- main
def build(src: Path, out: Path) -> dict:
    if not src.is_dir():
        raise BuildError(f"{src}: source directory not found")
    out.mkdir(parents=True, exist_ok=True)
    unknown = [p.name for p in data_files(out) if p.name not in GENERATED | HAND_WRITTEN]
    if unknown:
        raise BuildError(
            f"{out}: unexpected data files {unknown}; remove them (they would enter the manifest)"
        )

    used = ["gpu_offers.csv", "regions.csv", *AS_IS]
    frames = {name: read_text_csv(src / name) for name in used}
    source_hashes = {name: sha256_file(src / name) for name in used}

    # regions
    regions = frames["regions.csv"]
    require(
        regions,
        "regions.csv",
        ["provider", "region", "country", "jurisdiction", "latitude", "longitude"],
        REGION_KEY,
    )
    regions = apply_corrections(regions, "regions.csv", REGION_KEY)
    regions = insert_after(regions, "region", "site_id", regions["provider"] + "-" + regions["region"])
    if regions["site_id"].duplicated().any():
        raise BuildError("regions.csv: site_id (provider-region) is not unique")
    regions = regions.sort_values(REGION_KEY, kind="stable").reset_index(drop=True)
    known_sites = set(zip(regions["provider"], regions["region"], strict=True))

    # offers
    offers = frames["gpu_offers.csv"]
    require(offers, "gpu_offers.csv", [*OFFER_KEY, "accelerator", "source"], OFFER_KEY)
    offers = insert_after(offers, "region", "site_id", offers["provider"] + "-" + offers["region"])
    offers.insert(0, "offer_id", offers["provider"] + "-" + offers["region"] + "-" + offers["instance_type"])
    if offers["offer_id"].duplicated().any():
        raise BuildError("gpu_offers.csv: offer_id (provider-region-instance_type) is not unique")
    offers = offers.sort_values(OFFER_KEY, kind="stable").reset_index(drop=True)
    unknown_sites = set(zip(offers["provider"], offers["region"], strict=True)) - known_sites
    if unknown_sites:
        raise BuildError(f"gpu_offers.csv: regions missing from regions.csv: {sorted(unknown_sites)}")

    accelerators = frames["accelerators.csv"]
    require(accelerators, "accelerators.csv", ["accelerator"], ["accelerator"])
    missing_acc = set(offers["accelerator"]) - set(accelerators["accelerator"])
    if missing_acc:
        raise BuildError(f"gpu_offers.csv: accelerators missing from accelerators.csv: {sorted(missing_acc)}")

    for name, (key, sort) in AS_IS.items():
        df = frames[name]
        require(df, name, key, key)
        if sort:
            df = df.sort_values(key, kind="stable")
        for side in ("src", "dst"):
            if f"{side}_provider" in df.columns:
                missing = set(zip(df[f"{side}_provider"], df[f"{side}_region"], strict=True)) - known_sites
                if missing:
                    raise BuildError(f"{name}: regions missing from regions.csv: {sorted(missing)[:5]}")
        frames[name] = df

    write_csv(offers, out / "gpu_offers.csv")
    write_csv(regions, out / "regions.csv")
    for name in AS_IS:
        write_csv(frames[name], out / name)

    rtt_sources = {k: source_hashes[k] for k in ("rtt_measured.csv", "regions.csv")}
    fit = fit_rtt_model(frames["rtt_measured.csv"], frames["regions.csv"], rtt_sources)
    write_json(fit, out / "rtt_model.json")

    manifest = build_manifest(out, src, source_hashes)
    write_json(manifest, out / "MANIFEST.json")
    readme_done = update_readme(out / "README.md", fit)

    print(f"catalogs {manifest['version']} -> {out}")
    for name, info in manifest["files"].items():
        print(f"  {name:22s} {info['rows'] if info['rows'] is not None else '-':>6}  {info['sha256'][:12]}")
    print(
        f"  rtt model: route_factor {fit['route_factor']}, overhead {fit['overhead_ms']} ms, "
        f"MAE {fit['mae_ms']} ms over {fit['n_pairs']} pairs "
        f"(under {SHORT_HOP_KM:,.0f} km: MAE {fit['short_hops'].get('mae_ms')} ms, n={fit['short_hops']['n_pairs']})"
    )
    if not readme_done:
        print(f"  note: {out / 'README.md'} not found, rtt-fit section not written", file=sys.stderr)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, required=True, help="public reference data, e.g. ../shared/data")
    parser.add_argument("--out", type=Path, required=True, help="catalog directory to write, e.g. catalogs")
    args = parser.parse_args(argv)
    try:
        build(args.src, args.out)
    except BuildError as exc:
        print(f"build_catalogs: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
