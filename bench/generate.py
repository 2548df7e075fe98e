"""Synthetic but realistic placement scenarios of a given size, built from the real catalogs.

``make_scenario(n_workloads, n_sites, seed)`` returns a scenario dict (the same structure as a
YAML scenario file; written as JSON, which is YAML, ``planner solve`` and
``planner.api.load_scenario`` read it). This module reads ``catalogs/`` directly and imports
nothing from ``planner``:

- sites: ``n_sites`` in total, about 10 % of them declared on-prem racks / edge nodes with owned
  GPUs, power budgets, electricity prices and fixed costs, the rest cloud regions taken
  deterministically (seeded) from ``catalogs/regions.csv``: regions with coordinates and usable
  offers of H100, A100-80GB, L4, L40S, A10 or T4, preferring GCP, Azure, Nebius and AWS regions
  with an H100 or A100-80GB offer, interleaved across three continent groups (Americas;
  Europe/Africa/Middle East; Asia-Pacific). Lambda regions are used only when those run out (and
  when the catalog has no more regions, the rest become declared sites);
- user regions at the coordinates of chosen cloud regions (``location: {region: provider/region}``);
- workloads cycling through realtime_chat, agents, reranking, batch_embeddings and the models
  llama-3-2-3b, llama-3-1-8b, qwen3-8b, mixtral-8x7b, llama-3-1-70b, bge-reranker-v2-m3 (reranking)
  and bge-m3 (embeddings); each serves one to three nearby user regions with a 24-value profile,
  a network RTT SLO of 60-150 ms (so latency pruning keeps the candidate set near-linear in the
  size), some with N+1 site redundancy, residency mostly ``any`` (batch jobs keep their data in
  their home jurisdiction, a few realtime workloads ``same_as_user`` where every user region's own
  jurisdiction has a cloud site within the SLO with an unquoted accelerator for the model);
- the default six 4-hour UTC slots and default policies.

The generator checks, with the catalog's great-circle RTT model and a 15 ms margin, that every
user region of a workload can reach a cloud site offering, outside any GPU quota, an accelerator
that can hold the model, and that every user region of an N+1 workload reaches two such sites (the
failover RTT limit is the SLO); quota-capped offers and owned GPUs are fixed capacity that many
workloads share, so they do not count. The planner's own checks have the last word: a scenario
they refuse shows in the bench as exit 1 (infeasible) with the planner's reasons.

    python bench/generate.py 20 10 > /tmp/s.yaml      # the ladder's 20x10 rung (seed 7), as JSON
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
from functools import cache, lru_cache
from pathlib import Path

CATALOGS = Path(__file__).resolve().parents[1] / "catalogs"

ACCELERATORS = ("H100", "A100-80GB", "L4", "L40S", "A10", "T4")
BIG = {"H100", "A100-80GB"}
PREFERRED = ("gcp", "azure", "nebius", "aws")
FALLBACK = ("lambda",)
KINDS = ("realtime_chat", "agents", "reranking", "batch_embeddings")
CHAT_MODELS = ("llama-3-2-3b", "llama-3-1-8b", "qwen3-8b", "mixtral-8x7b", "llama-3-1-70b")
AGENT_MODELS = ("qwen3-8b", "llama-3-1-8b", "mixtral-8x7b", "llama-3-1-70b")
LARGE_MODELS = {"mixtral-8x7b", "llama-3-1-70b"}
#: accelerators a model's replica can use at all (up to 8 GPUs of it per replica)
MODEL_ACCELERATORS = {
    "llama-3-2-3b": set(ACCELERATORS),
    "llama-3-1-8b": set(ACCELERATORS),
    "qwen3-8b": set(ACCELERATORS),
    "mixtral-8x7b": {"H100", "A100-80GB", "L40S"},
    "llama-3-1-70b": {"H100", "A100-80GB", "L40S"},
    "bge-reranker-v2-m3": set(ACCELERATORS),
    "bge-m3": set(ACCELERATORS),
}
#: owned GPUs of declared sites: (accelerator, count, amortised USD per GPU-hour)
OWNED = (("H100", 16, 1.10), ("L40S", 8, 0.45), ("A100-80GB", 8, 0.85), ("L4", 16, 0.15))
#: per-region GPU quotas of a cloud provider's section
QUOTA_GPUS = {"azure": {"H100": 32, "A100-80GB": 32}}
TDP_W = {"H100": 700, "A100-80GB": 400, "L40S": 350, "L4": 72, "A10": 150, "T4": 70}

# Hourly profiles (local time, max 1.0): office hours, consumer evening peak, flat-ish API traffic.
PROFILES = {
    "office": [0.10, 0.08, 0.06, 0.05, 0.05, 0.08, 0.20, 0.45, 0.80, 0.95, 1.00, 0.98,
               0.90, 0.95, 1.00, 0.95, 0.85, 0.70, 0.50, 0.40, 0.30, 0.25, 0.18, 0.12],
    "consumer": [0.45, 0.30, 0.20, 0.14, 0.11, 0.11, 0.16, 0.26, 0.38, 0.48, 0.55, 0.60,
                 0.64, 0.64, 0.62, 0.64, 0.70, 0.77, 0.86, 0.95, 1.00, 0.97, 0.82, 0.62],
    "api": [0.55, 0.50, 0.48, 0.47, 0.48, 0.52, 0.60, 0.70, 0.80, 0.88, 0.93, 0.97,
            1.00, 0.98, 0.95, 0.92, 0.88, 0.84, 0.80, 0.76, 0.72, 0.66, 0.62, 0.58],
}


# --------------------------------------------------------------------------- catalog facts
@lru_cache(maxsize=1)
def _rtt_fit() -> dict:
    return json.loads((CATALOGS / "rtt_model.json").read_text())


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * _rtt_fit()["earth_radius_km"] * math.asin(min(1.0, math.sqrt(h)))


def modelled_rtt_ms(a: tuple[float, float], b: tuple[float, float]) -> float:
    """The catalog's great-circle RTT model (the planner uses measured pairs where it has them)."""
    fit = _rtt_fit()
    if a == b:
        return float(fit["overhead_ms"])
    return 2.0 * haversine_km(a, b) * fit["route_factor"] / fit["fibre_km_per_ms"] + fit["overhead_ms"]


def continent_group(lat: float, lon: float) -> str:
    if lon < -25:
        return "americas"
    if lon < 60:
        return "europe-africa-me"
    return "asia-pacific"


@lru_cache(maxsize=1)
def region_pool() -> tuple[dict, ...]:
    """Catalog cloud regions with coordinates, a jurisdiction other than GovCloud and at least one
    on-demand-priced offer of the benchmark's accelerators."""
    accs: dict[tuple[str, str], set[str]] = {}
    with open(CATALOGS / "gpu_offers.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["accelerator"] in ACCELERATORS and row["price_ondemand_usd_hr"]:
                accs.setdefault((row["provider"], row["region"]), set()).add(row["accelerator"])
    out = []
    with open(CATALOGS / "regions.csv", newline="") as f:
        for row in csv.DictReader(f):
            key = (row["provider"], row["region"])
            if key not in accs or not row["latitude"] or not row["longitude"]:
                continue
            if row["jurisdiction"] == "US-GOV" or row["provider"] not in PREFERRED + FALLBACK:
                continue
            lat, lon = float(row["latitude"]), float(row["longitude"])
            out.append({"provider": row["provider"], "region": row["region"], "site_id": row["site_id"],
                        "country": row["country"], "jurisdiction": row["jurisdiction"], "lat": lat, "lon": lon,
                        "group": continent_group(lat, lon), "accelerators": frozenset(accs[key])})
    out.sort(key=lambda r: (r["provider"], r["region"]))
    return tuple(out)


def _priority(r: dict) -> int:
    big = bool(r["accelerators"] & BIG)
    if r["provider"] in PREFERRED:
        return 0 if big else (1 if r["accelerators"] - {"T4"} else 3)
    return 2 if big else 4


def pick_regions(n: int, rng: random.Random) -> list[dict]:
    """n catalog regions, round-robin over the continent groups (seeded order inside a group,
    best-equipped preferred providers first)."""
    groups: dict[str, list[dict]] = {}
    for r in region_pool():
        groups.setdefault(r["group"], []).append(r)
    for lst in groups.values():
        keyed = [(_priority(r), rng.random(), r["site_id"], r) for r in lst]
        lst[:] = [r for *_k, r in sorted(keyed, key=lambda k: k[:3])]
    order = sorted(groups)
    rng.shuffle(order)
    picked: list[dict] = []
    while len(picked) < n and any(groups.values()):
        for g in order:
            if groups[g] and len(picked) < n:
                picked.append(groups[g].pop(0))
    return picked


# --------------------------------------------------------------------------- scenario
def _profile(rng: random.Random, name: str) -> list[float]:
    base = PROFILES[name]
    vals = [max(0.01, v * rng.uniform(0.9, 1.1)) for v in base]
    top = max(vals)
    return [round(v / top, 3) for v in vals]


def _declared_sites(n: int, anchors: list[dict], rng: random.Random) -> list[dict]:
    sites = []
    for i in range(n):
        a = anchors[i % len(anchors)]
        acc, count, usd = OWNED[i % len(OWNED)]
        edge = i % 3 == 2
        kw_needed = count * TDP_W[acc] * 1.3 * 1.4 / 1000.0
        site = {
            "id": f"{'edge' if edge else 'dc'}-{i + 1}-{a['region']}",
            "kind": "edge" if edge else "onprem",
            "location": {"lat": round(a["lat"] + rng.uniform(-0.3, 0.3), 3),
                         "lon": round(a["lon"] + rng.uniform(-0.3, 0.3), 3)},
            "country": a["country"],
            "power_budget_kw": round(kw_needed * rng.uniform(0.6, 1.2) + 2.0, 1),
            "pue": 1.5 if edge else round(rng.uniform(1.25, 1.45), 2),
            "host_overhead": 0.35 if edge else 0.3,
            "electricity_usd_per_kwh": round(rng.uniform(0.08, 0.25), 3),
            "idle_power_fraction": 0.3,
            "fixed_usd_per_month": float(rng.choice((1000, 1800, 2500, 4000))),
            "owned_gpus": [{"accelerator": acc, "count": count, "usd_per_gpu_hour": usd}],
        }
        if edge:
            site["gpus_per_server"] = 4
            site["internet_egress_usd_per_gb"] = 0.01
        if i % 2 == 0:
            site["buyable_gpus"] = [{"accelerator": "L40S", "max_count": 8, "capex_usd": 11000.0,
                                     "lifetime_years": 4, "interest_rate": 0.06}]
        sites.append(site)
    return sites


@lru_cache(maxsize=1)
def _measured() -> dict[tuple[str, str], float]:
    """Measured p95 RTT between catalog regions ("provider/region" both ways), as the planner uses it."""
    out: dict[tuple[str, str], float] = {}
    with (CATALOGS / "rtt_measured.csv").open() as fh:
        for row in csv.DictReader(fh):
            a = f"{row['src_provider']}/{row['src_region']}"
            b = f"{row['dst_provider']}/{row['dst_region']}"
            out[(a, b)] = out[(b, a)] = float(row["rtt_ms"])
    return out


def _rtt_ok(user: tuple[float, float], ukey: str | None, site: dict, slo: float) -> bool:
    """Within the SLO: the measured RTT where the catalog has the pair (the planner prefers it),
    else the modelled RTT with a 15 ms margin."""
    rtt_ms, measured = _pair_rtt(tuple(user), ukey, site.get("key"), tuple(site["point"]))
    return rtt_ms <= (slo if measured else slo - 15.0)


@cache
def _pair_rtt(user: tuple[float, float], ukey: str | None, skey: str | None,
              point: tuple[float, float]) -> tuple[float, bool]:
    """(RTT ms, measured?) of a user region and a site, computed once per pair (the 5000x300 rung
    asks for millions of pairs over a few tens of thousands of distinct ones)."""
    measured = _measured().get((ukey, skey))
    if measured is not None:
        return measured, True
    return modelled_rtt_ms(user, point), False


def _reachable(user: tuple[float, float], sites: list[dict], slo: float, accs: set[str],
               ukey: str | None = None) -> int:
    """Sites within the SLO offering an accelerator the model can use outside any GPU quota (cloud
    capacity that grows with demand; a declared site's owned GPUs and a quota are fixed, and at
    5000x300 hundreds of workloads whose only reach was quota-capped or owned GPUs left no plan)."""
    return sum(1 for s in sites if s["elastic"] & accs and _rtt_ok(user, ukey, s, slo))


def make_scenario(n_workloads: int, n_sites: int, seed: int = 0) -> dict:
    """A scenario dict with n_workloads workloads and n_sites sites (see the module docstring)."""
    if n_workloads < 1 or n_sites < 2:
        raise ValueError("need at least 1 workload and 2 sites")
    rng = random.Random(seed * 1_000_003 + n_workloads * 1009 + n_sites)
    n_declared = max(1, round(0.1 * n_sites))
    clouds = pick_regions(n_sites - n_declared, rng)
    n_declared = n_sites - len(clouds)  # the catalog ran out of regions: the rest are declared sites
    n_users = min(len(clouds), max(3, math.ceil(n_workloads / 5)))
    users = clouds[:n_users]  # the round-robin order spreads them over the continents
    declared = _declared_sites(n_declared, users, rng)

    # what each site offers, for the generator's own reachability check
    site_facts = [{"point": (c["lat"], c["lon"]), "accelerators": set(c["accelerators"]),
                   "key": f"{c['provider']}/{c['region']}", "jurisdiction": c["jurisdiction"],
                   "elastic": set(c["accelerators"]) - set(QUOTA_GPUS.get(c["provider"], {}))}
                  for c in clouds]
    site_facts += [{"point": (d["location"]["lat"], d["location"]["lon"]),
                    "accelerators": {g["accelerator"] for g in d["owned_gpus"] + d.get("buyable_gpus", [])},
                    "elastic": set()}
                   for d in declared]

    user_regions = [{"id": f"u-{u['provider']}-{u['region']}", "location": {"region": f"{u['provider']}/{u['region']}"}}
                    for u in users]
    upoint = {ur["id"]: (u["lat"], u["lon"]) for ur, u in zip(user_regions, users, strict=True)}
    ujur = {ur["id"]: u["jurisdiction"] for ur, u in zip(user_regions, users, strict=True)}
    ugroup = {ur["id"]: u["group"] for ur, u in zip(user_regions, users, strict=True)}
    uref = {ur["id"]: f"{u['provider']}/{u['region']}" for ur, u in zip(user_regions, users, strict=True)}
    uids = [ur["id"] for ur in user_regions]

    workloads = []
    counters = {k: 0 for k in KINDS}
    for i in range(n_workloads):
        kind = KINDS[i % len(KINDS)]
        j = counters[kind]
        counters[kind] += 1
        if kind == "realtime_chat":
            model = CHAT_MODELS[j % len(CHAT_MODELS)]
        elif kind == "agents":
            model = AGENT_MODELS[j % len(AGENT_MODELS)]
        elif kind == "reranking":
            model = "bge-reranker-v2-m3"
        else:
            model = "bge-m3"
        workloads.append(_workload(i, kind, model, rng, uids, upoint, ujur, ugroup, uref, site_facts))

    return {
        "name": f"bench-w{n_workloads}-s{n_sites}-seed{seed}",
        "description": f"synthetic benchmark: {n_workloads} workloads, {len(clouds)} cloud regions, "
                       f"{n_declared} declared sites, {n_users} user regions (seed {seed})",
        "user_regions": user_regions,
        "sites": declared,
        "cloud": _cloud_sections(clouds),
        "workloads": workloads,
    }


def _cloud_sections(clouds: list[dict]) -> list[dict]:
    by_provider: dict[str, list[str]] = {}
    for c in clouds:
        by_provider.setdefault(c["provider"], []).append(c["region"])
    out = []
    for prov in sorted(by_provider):
        sec = {"provider": prov, "regions": sorted(by_provider[prov]), "accelerators": list(ACCELERATORS)}
        if prov in QUOTA_GPUS:
            sec["quota_gpus"] = dict(QUOTA_GPUS[prov])
        out.append(sec)
    return out


def _elastic_at_home(user: tuple[float, float], ukey: str, jurisdiction: str, sites: list[dict], slo: float,
                     accs: set[str]) -> bool:
    """A cloud site in the user region's own jurisdiction, within the SLO, offering an accelerator
    the model can use outside any GPU quota: ``same_as_user`` residency is drawn only where this
    holds for every user region, else a few such workloads would share one quota-capped region
    (5000x300 seed 1 drew seven onto azure-norwayeast's 32 A100s, and no plan existed)."""
    return any(s.get("jurisdiction") == jurisdiction and s["elastic"] & accs and _rtt_ok(user, ukey, s, slo)
               for s in sites)


def _workload(i: int, kind: str, model: str, rng: random.Random, uids: list[str], upoint: dict, ujur: dict,
              ugroup: dict, uref: dict, site_facts: list[dict]) -> dict:
    accs = MODEL_ACCELERATORS[model]
    batch = kind == "batch_embeddings"
    if kind == "realtime_chat":
        slo = float(rng.choice((100, 150)) if model in LARGE_MODELS else rng.choice((60, 80, 100)))
    elif kind == "agents":
        slo = float(rng.choice((100, 150)))
    elif kind == "reranking":
        slo = float(rng.choice((60, 80)))
    else:
        slo = 0.0
    nplus1 = not batch and rng.random() < 0.2
    if nplus1:
        slo = max(slo, 100.0)
    need = 2 if nplus1 else 1
    # N+1 of a large model counts only H100 / A100-80GB sites: the planner's throughput model may
    # find a 70B replica on L40S too slow for a class, and every class needs two sites
    reach = accs & BIG if nplus1 and model in LARGE_MODELS else accs
    # the anchor user region: one that reaches enough sites that can hold the model
    order = list(uids)
    rng.shuffle(order)
    anchor = None
    for u in order:
        if batch or _reachable(upoint[u], site_facts, slo, reach, uref[u]) >= need:
            anchor = u
            break
    if anchor is None:  # nothing reaches two capable sites: relax to one site, the widest SLO
        nplus1, need, slo = False, 1, 150.0
        anchor = next((u for u in order if _reachable(upoint[u], site_facts, slo, accs, uref[u]) >= 1), order[0])
    # one to three user regions of the anchor's continent group within ~2,500 km
    near = sorted((haversine_km(upoint[anchor], upoint[u]), u) for u in uids
                  if u != anchor and ugroup[u] == ugroup[anchor])
    extra = [u for d, u in near if d < 2500.0][: rng.choice((0, 1, 2))]
    members = [anchor] + [u for u in extra if batch or _reachable(upoint[u], site_facts, slo, reach, uref[u]) >= need]

    w: dict = {"id": f"w{i:04d}-{kind.replace('_', '-')}", "kind": kind, "tenant": f"tenant-{i % 7}",
               "feature": kind.replace("_", "-"), "model": model}
    if kind == "realtime_chat":
        w["query_classes"] = [
            {"id": "short", "share": 0.7, "input_tokens": rng.choice((400, 600, 800)),
             "output_tokens": rng.choice((150, 200, 250))},
            {"id": "long", "share": 0.3, "input_tokens": rng.choice((3000, 5000, 6000)),
             "output_tokens": rng.choice((300, 400))},
        ]
        w["latency"] = {"network_rtt_ms": slo, "ttft_ms": 3000.0 if model in LARGE_MODELS else 1500.0,
                        "tpot_ms": 80.0 if model in LARGE_MODELS else 65.0}
        w["cache_hit_rate"] = round(rng.uniform(0.05, 0.2), 2)
        w["prefix_cache_rate"] = round(rng.uniform(0.2, 0.4), 2)
        w["success_rate"] = round(rng.uniform(0.8, 0.95), 2)
        lo, hi = (0.5, 6.0) if model in LARGE_MODELS else (5.0, 50.0)
        prof = rng.choice(("office", "consumer"))
    elif kind == "agents":
        w["query_classes"] = [
            {"id": "tool-step", "share": 0.7, "input_tokens": rng.choice((6000, 8000, 12000)),
             "output_tokens": rng.choice((500, 900))},
            {"id": "research", "share": 0.3, "input_tokens": rng.choice((16000, 24000)),
             "output_tokens": rng.choice((1500, 2000))},
        ]
        w["latency"] = {"network_rtt_ms": slo, "ttft_ms": 6000.0, "tpot_ms": 70.0}
        w["prefix_cache_rate"] = round(rng.uniform(0.3, 0.6), 2)
        w["success_rate"] = round(rng.uniform(0.6, 0.8), 2)
        lo, hi = (0.2, 1.5) if model in LARGE_MODELS else (0.5, 4.0)
        prof = rng.choice(("office", "api"))
    elif kind == "reranking":
        w["query_classes"] = [{"id": "top40", "share": 1.0, "input_tokens": rng.choice((4000, 6000))}]
        w["latency"] = {"network_rtt_ms": slo, "ttft_ms": 400.0}
        w["cache_hit_rate"] = round(rng.uniform(0.0, 0.15), 2)
        w["success_rate"] = round(rng.uniform(0.9, 0.98), 2)
        lo, hi = 5.0, 30.0
        prof = rng.choice(("office", "api"))
    else:
        w["query_classes"] = [{"id": "chunk", "share": 1.0, "input_tokens": 512}]
        # a 12-hour window at night in the anchor's local time, on 4-hour slot boundaries
        offset = round(upoint[anchor][1] / 15.0)
        start = int(((20 - offset) % 24) // 4 * 4)
        end = (start + 12) % 24 or 24
        w["batch"] = {"tokens_per_day": float(rng.choice((5e8, 1e9, 2e9, 5e9))), "window_utc_hours": [start, end]}
        w["residency"] = [ujur[anchor]]  # the corpus stays in its home jurisdiction
        w["data_sources"] = [{"id": "corpus", "gb_per_month": float(rng.choice((100, 500, 2000))),
                              "region": uref[anchor]}]
        return w
    w["demand"] = [{"user_region": u, "peak_rps": round(rng.uniform(lo, hi), 2), "profile": _profile(rng, prof)}
                   for u in members]
    if (rng.random() < 0.1 and not nplus1 and model not in LARGE_MODELS
            and all(_elastic_at_home(upoint[u], uref[u], ujur[u], site_facts, slo, accs) for u in members)):
        w["residency"] = "same_as_user"
    if nplus1:
        w["redundancy"] = {"mode": "n_plus_1"}
    return w


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n_workloads", type=int)
    ap.add_argument("n_sites", type=int)
    ap.add_argument("--seed", type=int, default=7, help="generator seed (default 7, as bench/run.py)")
    args = ap.parse_args(argv)
    json.dump(make_scenario(args.n_workloads, args.n_sites, args.seed), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
