"""`planner estimate` and `planner catalog`: the throughput model and the catalogs, browsable.

- :func:`estimate` - per accelerator (or one offer): the replica shape, ``max_rps``,
  ``planning_rps``, output tokens/s, the binding ``regime``, USD per 1M output tokens (input
  tokens for embedding and reranking models) at the planning rate and the cheapest on-demand
  price, and ``rate_source``;
- :func:`catalog_rows` - the rows of ``planner catalog gpus|regions|models|prices``;
- :func:`resolve_name` - case-insensitive look-up with aliases and a did-you-mean.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from planner.derive.throughput import (
    DEFAULT_MAX_BATCH_SEQUENCES,
    DEFAULT_TARGET_UTILISATION,
    PRECISIONS,
    TP_SIZES,
    AcceleratorSpec,
    ThroughputModel,
    replica_shapes,
    usable_without_profile,
    weight_bytes,
)
from planner.errors import InputError, Problem, did_you_mean
from planner.input.catalog import Catalog, load_catalog
from planner.input.schema import ModelSpec

#: Other names people use for catalog accelerators (matched after dropping case and separators).
ACCELERATOR_ALIASES = {
    "a10040gb": "A100", "a100sxm": "A100", "a10080": "A100-80GB", "h100sxm": "H100", "h10080gb": "H100",
    "h100sxm5": "H100", "h200sxm": "H200", "rtxpro6000blackwell": "RTXPRO6000", "rtxa6000": "A6000",
    "mi300": "MI300X", "h100pcienvl": "H100-NVL", "quadrortx6000": "RTX6000",
}
#: Default lengths when none are given: a chat turn; encoders one 512-token passage.
DEFAULT_CHAT_TOKENS = (1000, 200)
DEFAULT_ENCODER_INPUT = 512
HOURS_PER_MILLION = 1e6 / 3600.0


def _key(text: str, model: bool = False) -> str:
    """Case and separators dropped: 'Llama-3.1-8B' and 'llama_3_1_8b' meet at 'llama318b'; a
    model name also loses a Hugging Face organisation and an -Instruct/-Chat/-hf suffix."""
    t = str(text).strip().lower()
    if model:
        t = t.split("/")[-1]
        t = re.sub(r"-(instruct|chat|hf)$", "", t)
    return re.sub(r"[^a-z0-9]", "", t) if model or "/" not in t else re.sub(r"[^a-z0-9/]", "", t)


def resolve_name(kind: str, value: str, choices, aliases: dict[str, str] | None = None, option: str = "") -> str:
    """The catalog id ``value`` names: exact, else case- and separator-insensitive, else an alias;
    raises InputError (exit 2) with a did-you-mean otherwise."""
    choices = [str(c) for c in choices]
    if value in choices:
        return value
    model = kind == "model"
    by_key = {_key(c, model): c for c in choices}
    k = _key(value, model)
    if k in by_key:
        return by_key[k]
    if aliases and k in aliases and aliases[k] in choices:
        return aliases[k]
    guess = did_you_mean(k, list(by_key))
    raise InputError(Problem(file=option or kind, path="", message=f"unknown {kind}", value=value,
                             did_you_mean=by_key[guess] if guess else None,
                             fix=f"use one of: {', '.join(sorted(choices)[:40])}"
                                 + (" ..." if len(choices) > 40 else "")))


def catalog_models(cat: Catalog) -> dict[str, ModelSpec]:
    out = {}
    for mid, row in cat.models.iterrows():
        data = {k: row[k] for k in ModelSpec.model_fields if k != "id" and k in row.index}
        data = {k: (v.item() if hasattr(v, "item") else v) for k, v in data.items()}
        data = {k: v for k, v in data.items() if not (isinstance(v, float) and math.isnan(v))}
        data["source"] = str(data.get("source") or "")
        out[str(mid)] = ModelSpec(id=str(mid), **data)
    return out


def catalog_accelerators(cat: Catalog) -> dict[str, AcceleratorSpec]:
    return {str(n): AcceleratorSpec.from_row(str(n), r) for n, r in cat.accelerators.iterrows()}


def _cheapest(cat: Catalog) -> dict[str, tuple[float, str]]:
    """accelerator -> (cheapest on-demand USD per GPU-hour, offer id)."""
    out: dict[str, tuple[float, str]] = {}
    o = cat.offers
    for acc, price, oid in zip(o["accelerator"], o["price_per_gpu_ondemand_usd_hr"], o["offer_id"], strict=True):
        if price is None or (isinstance(price, float) and math.isnan(price)):
            continue
        if str(acc) not in out or (float(price), str(oid)) < out[str(acc)]:
            out[str(acc)] = (float(price), str(oid))
    return out


def _check_positive(name: str, value, integer: bool = False) -> None:
    if value is None:
        return
    ok = isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    if integer:
        ok = ok and float(value) == int(value)
    if not ok:
        raise InputError(Problem(file=f"--{name.replace('_', '-')}", path="", message=f"{name} must be a positive "
                                 + ("whole number" if integer else "number"), value=value,
                                 fix=f"give --{name.replace('_', '-')} as a positive "
                                     + ("whole number" if integer else "number")))


def _precision(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    v = str(value).strip().lower()
    if v not in PRECISIONS:
        raise InputError(Problem(file=option, path="", message="unknown precision", value=value,
                                 did_you_mean=did_you_mean(v, PRECISIONS), fix=f"use one of {', '.join(PRECISIONS)}"))
    return v


def estimate(
    model: str,
    accelerator: str | None = None,
    offer: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    ttft_ms: float | None = None,
    tpot_ms: float | None = None,
    weight_precision: str | None = None,
    kv_precision: str | None = None,
    tensor_parallel: int | None = None,
    max_batch_sequences: int | None = None,
    target_utilisation: float = DEFAULT_TARGET_UTILISATION,
    catalog_dir: Path | None = None,
    kv_reserve_fraction: float | None = None,
) -> list[dict]:
    """Throughput and cost of ``model`` per accelerator (all catalog accelerators offered
    somewhere, or ``accelerator``), or on one ``offer`` (``PROVIDER/REGION/TYPE``). Rows are
    sorted cheapest first (rows that cannot serve last); see the module docstring for fields.
    ``kv_reserve_fraction`` (default: the policy default, 0.2) is the KV headroom, as a fraction
    of the weight bytes, a shape must leave to count as fitting (``policies.kv_reserve_fraction``)."""
    if accelerator is not None and offer is not None:
        raise InputError(Problem(file="--accelerator/--offer", path="", message="give --accelerator or --offer, "
                                 "not both", fix="drop one of them"))
    for name, v, integer in (("input_tokens", input_tokens, True), ("ttft_ms", ttft_ms, False),
                             ("tpot_ms", tpot_ms, False), ("max_batch_sequences", max_batch_sequences, True)):
        _check_positive(name, v, integer)
    if output_tokens is not None and (output_tokens < 0 or int(output_tokens) != output_tokens):
        raise InputError(Problem(file="--output-tokens", path="", message="output_tokens must be a whole number >= 0",
                                 value=output_tokens, fix="give --output-tokens as 0 or more"))
    if tensor_parallel is not None and tensor_parallel not in TP_SIZES:
        raise InputError(Problem(file="--tensor-parallel", path="", message="unsupported tensor-parallel degree",
                                 value=tensor_parallel, fix=f"use one of {', '.join(map(str, TP_SIZES))}"))
    if kv_reserve_fraction is not None and not (0 <= kv_reserve_fraction < 10):
        raise InputError(Problem(file="kv_reserve_fraction", path="", message="must be in [0, 10)",
                                 value=kv_reserve_fraction, fix="give a fraction of the weight bytes such as 0.2"))
    if not (0 < target_utilisation <= 1):
        raise InputError(Problem(file="target_utilisation", path="", message="must be in (0, 1]",
                                 value=target_utilisation, fix="give a fraction such as 0.8"))
    wp = _precision("--weight-precision", weight_precision)
    kvp = _precision("--kv-precision", kv_precision)
    cat = load_catalog(catalog_dir)
    models = catalog_models(cat)
    mid = resolve_name("model", model, models, option="MODEL")
    m = models[mid]
    encoder = m.kind != "chat"
    if input_tokens is None:
        input_tokens = min(DEFAULT_ENCODER_INPUT if encoder else DEFAULT_CHAT_TOKENS[0], m.max_context_tokens)
    if output_tokens is None:
        output_tokens = 0 if encoder else DEFAULT_CHAT_TOKENS[1]
    accs = catalog_accelerators(cat)
    tm = ThroughputModel(models, accs, target_utilisation=target_utilisation,
                         max_batch_sequences=max_batch_sequences or DEFAULT_MAX_BATCH_SEQUENCES,
                         **({} if kv_reserve_fraction is None else {"kv_reserve_fraction": kv_reserve_fraction}))
    cheapest = _cheapest(cat)
    targets: list[tuple[str, float, float | None, str | None, dict | None]] = []  # acc, gpus, usd/hr, offer id, row
    if offer is not None:
        o = cat.offers
        ids = [f"{p}/{r}/{t}" for p, r, t in zip(o["provider"], o["region"], o["instance_type"], strict=True)]
        oid = resolve_name("offer", offer, ids, option="--offer")
        rec = o.iloc[ids.index(oid)]
        price = rec["price_ondemand_usd_hr"]
        targets.append((str(rec["accelerator"]), float(rec["accelerator_count"]),
                        None if math.isnan(price) else float(price), oid, None))
    else:
        names = [accelerator] if accelerator is not None else None
        if names is not None:
            names = [resolve_name("accelerator", accelerator, accs, ACCELERATOR_ALIASES, option="--accelerator")]
        else:
            names = sorted(n for n in accs if n in cheapest or n in set(cat.offers["accelerator"]))
        for n in names:
            targets.append((n, 8.0, None, None, None))
    rows = []
    for acc_name, gpus, offer_usd_hr, oid, _ in targets:
        rows.append(_row(tm, m, acc_name, gpus, offer_usd_hr, oid, cheapest, int(input_tokens), int(output_tokens),
                         ttft_ms, tpot_ms, wp, kvp, tensor_parallel, max_batch_sequences))
    rows.sort(key=lambda r: (r["planning_rps"] <= 0, r["usd_per_1m_tokens"] is None,
                             r["usd_per_1m_tokens"] or 0.0, r["accelerator"]))
    return rows


def _row(tm: ThroughputModel, m: ModelSpec, acc_name: str, gpus: float, offer_usd_hr, oid, cheapest, n_in, n_out,
         ttft_ms, tpot_ms, wp, kvp, tp, mbs) -> dict:
    acc = tm.accelerators.get(acc_name)
    wprec = wp or m.weight_precision
    row = {"model": m.id, "accelerator": acc_name, "offer": oid, "input_tokens": n_in, "output_tokens": n_out,
           "weight_precision": wprec, "kv_cache_precision": kvp or m.kv_cache_precision,
           "tensor_parallel": None, "gpus_per_replica": None, "replicas_per_instance": None,
           "max_rps": 0.0, "planning_rps": 0.0, "output_tokens_per_s": 0.0, "regime": None, "batch": None,
           "usd_per_replica_hour": None, "price_source": None,
           "usd_per_1m_tokens": None, "per_1m": "input" if m.kind != "chat" else "output",
           "rate_source": "estimate", "notes": [], "reason": None}
    if acc is None or usable_without_profile(acc) is not None:
        row["reason"] = (f"{acc_name} is not in catalogs/accelerators.csv" if acc is None
                         else usable_without_profile(acc))
        return row
    if acc.proxy:
        row["rate_source"] = "proxy"
    cls = [(1.0, n_in, n_out, 0.0)]
    if tp is not None:
        shapes = [s for s in replica_shapes(m, acc, max(gpus, tp) if gpus >= 1 else gpus, tp, tm.kv_reserve_fraction,
                                            wprec) if s.tp == tp]
        if not shapes:
            row["reason"] = (f"{m.id} ({weight_bytes(m, wprec) / 1e9:.0f} GB of {wprec} weights) does not fit "
                             f"{tp} x {acc_name}")
            return row
        sh = shapes[0]
        est = tm.rps(m.id, acc_name, sh, n_in, n_out, ttft_ms, tpot_ms, 0.0, wp, kvp, mbs)
    else:
        got = tm.best_shape(m.id, acc_name, gpus, 8, cls, ttft_ms, tpot_ms, wp, kvp, mbs)
        if got is None:
            row["reason"] = (f"{m.id} ({weight_bytes(m, wprec) / 1e9:.0f} GB of {wprec} weights) does not fit "
                             f"{gpus:g} x {acc_name}")
            return row
        sh, (est,) = got
    row.update(tensor_parallel=sh.tp, gpus_per_replica=sh.gpus, replicas_per_instance=sh.replicas_per_instance,
               rate_source=est.rate_source, notes=list(est.notes))
    if est.rps <= 0:
        row["reason"] = est.limit.removeprefix("infeasible: ")
        return row
    row.update(max_rps=est.max_rps, planning_rps=est.rps, output_tokens_per_s=est.max_rps * n_out,
               regime=est.regime, batch=est.batch)
    if offer_usd_hr is not None:
        usd_hr, src = offer_usd_hr / sh.replicas_per_instance, f"on-demand {oid}"
    elif acc_name in cheapest:
        per_gpu, cid = cheapest[acc_name]
        usd_hr, src = per_gpu * sh.gpus, f"cheapest on-demand {cid}"
    else:
        usd_hr, src = None, None
    row["usd_per_replica_hour"], row["price_source"] = usd_hr, src
    tokens = n_in if m.kind != "chat" else n_out
    if usd_hr is not None and tokens > 0:
        row["usd_per_1m_tokens"] = usd_hr / (est.rps * tokens) * HOURS_PER_MILLION
    return row





# --------------------------------------------------------------------------- catalog
CATALOG_TABLES = ("gpus", "regions", "models", "prices")


def _clean(v):
    if v is None:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def catalog_rows(table: str, provider: str | None = None, region: str | None = None,
                 accelerator: str | None = None, min_memory_gib: float | None = None, model: str | None = None,
                 catalog_dir: Path | None = None) -> list[dict]:
    """Rows of ``planner catalog TABLE``: ``gpus`` (accelerator facts, offers, cheapest price,
    whether the estimate can use it), ``regions``, ``models``, ``prices`` (offers; with ``model``
    the estimate per offer, sorted by USD per 1M tokens). Filters match case-insensitively."""
    if table not in CATALOG_TABLES:
        raise InputError(Problem(file="TABLE", path="", message="unknown catalog table", value=table,
                                 did_you_mean=did_you_mean(str(table).lower(), CATALOG_TABLES),
                                 fix=f"use one of {', '.join(CATALOG_TABLES)}"))
    _check_positive("min_memory_gib", min_memory_gib)
    cat = load_catalog(catalog_dir)
    offers = cat.offers
    if provider is not None:
        provider = resolve_name("provider", provider, sorted(set(offers["provider"]) | set(cat.regions["provider"])),
                                option="--provider")
        offers = offers[offers["provider"] == provider]
    if region is not None:
        region = resolve_name("region", region, sorted(set(cat.regions["region"])), option="--region")
        offers = offers[offers["region"] == region]
    accs = catalog_accelerators(cat)
    if accelerator is not None:
        accelerator = resolve_name("accelerator", accelerator, accs, ACCELERATOR_ALIASES, option="--accelerator")
        offers = offers[offers["accelerator"] == accelerator]
    if min_memory_gib is not None:
        offers = offers[offers["gpu_memory_gib_each"] >= min_memory_gib]
    if table == "gpus":
        tm = ThroughputModel({}, accs)
        rows = []
        for name, r in cat.accelerators.iterrows():
            name = str(name)
            if accelerator is not None and name != accelerator:
                continue
            if min_memory_gib is not None and not (r["memory_gib"] >= min_memory_gib):
                continue
            mine = offers[offers["accelerator"] == name]
            if (provider is not None or region is not None) and mine.empty:
                continue
            a = tm.accelerators[name]
            why = usable_without_profile(a)
            prices = mine["price_per_gpu_ondemand_usd_hr"].dropna()
            rows.append({"accelerator": name, "vendor": _clean(r.get("vendor")),
                         "architecture": _clean(r.get("architecture")), "memory_gib": _clean(r["memory_gib"]),
                         "memory_bandwidth_gb_s": _clean(r.get("memory_bandwidth_gb_s")),
                         "bf16_tflops": _clean(r.get("bf16_tflops")), "fp8_tflops": _clean(r.get("fp8_tflops")),
                         "interconnect": _clean(r.get("interconnect")),
                         "interconnect_gb_s": _clean(r.get("interconnect_gb_s")),
                         "offers": len(mine), "providers": ",".join(sorted(set(mine["provider"]))),
                         "min_usd_per_gpu_hour": float(prices.min()) if len(prices) else None,
                         "estimate": ("proxy: " + a.proxy) if a.proxy else ("yes" if why is None else "no: " + why)})
        return sorted(rows, key=lambda x: x["accelerator"])
    if table == "regions":
        rows = []
        for _, r in cat.regions.iterrows():
            if provider is not None and r["provider"] != provider:
                continue
            if region is not None and r["region"] != region:
                continue
            mine = offers[(offers["provider"] == r["provider"]) & (offers["region"] == r["region"])]
            if (accelerator is not None or min_memory_gib is not None) and mine.empty:
                continue
            rows.append({"provider": r["provider"], "region": r["region"], "site_id": r["site_id"],
                         "city": _clean(r.get("city")), "country": _clean(r.get("country")),
                         "jurisdiction": _clean(r.get("jurisdiction")), "gpu_offers": len(mine),
                         "accelerators": ",".join(sorted(set(mine["accelerator"])))})
        return sorted(rows, key=lambda x: (x["provider"], x["region"]))
    if table == "models":
        models = catalog_models(cat)
        ids = [resolve_name("model", model, models, option="--model")] if model is not None else sorted(models)
        rows = []
        for mid in ids:
            m = models[mid]
            gib = weight_bytes(m) / 2**30
            if min_memory_gib is not None and gib < min_memory_gib:
                continue
            rows.append({"model": mid, "kind": m.kind, "total_params_b": m.total_params_b,
                         "active_params_b": m.active_params_b, "max_context_tokens": m.max_context_tokens,
                         "weight_precision": m.weight_precision, "kv_cache_precision": m.kv_cache_precision,
                         "weights_gib": round(gib, 2), "experts": m.experts, "source": m.source})
        return rows
    # prices
    rows = []
    est_cache: dict[tuple[str, float], dict] = {}
    if model is not None:
        models = catalog_models(cat)
        mid = resolve_name("model", model, models, option="--model")
        m = models[mid]
        tm = ThroughputModel(models, accs)
        n_in, n_out = ((min(DEFAULT_ENCODER_INPUT, m.max_context_tokens), 0) if m.kind != "chat"
                       else DEFAULT_CHAT_TOKENS)
    for _, r in offers.iterrows():
        row = {"provider": r["provider"], "region": r["region"], "instance_type": r["instance_type"],
               "accelerator": r["accelerator"], "gpus": _clean(r["accelerator_count"]),
               "gpu_memory_gib_each": _clean(r["gpu_memory_gib_each"]),
               "usd_per_hour_on_demand": _clean(r["price_ondemand_usd_hr"]),
               "usd_per_hour_spot": _clean(r["price_spot_usd_hr"]),
               "usd_per_gpu_hour_on_demand": _clean(r["price_per_gpu_ondemand_usd_hr"])}
        if model is not None:
            key = (str(r["accelerator"]), float(r["accelerator_count"]))
            if key not in est_cache:
                est_cache[key] = _row(tm, m, key[0], key[1], None, None, {}, n_in, n_out, None, None, None, None,
                                      None, None)
            e = est_cache[key]
            price = row["usd_per_hour_on_demand"]
            usd = None
            tokens = n_in if m.kind != "chat" else n_out
            if e["planning_rps"] > 0 and price is not None and e["replicas_per_instance"]:
                usd = price / e["replicas_per_instance"] / (e["planning_rps"] * tokens) * HOURS_PER_MILLION
            row.update({"model": mid, "tensor_parallel": e["tensor_parallel"], "planning_rps": e["planning_rps"],
                        "regime": e["regime"], "rate_source": e["rate_source"], "usd_per_1m_tokens": usd,
                        "reason": e["reason"]})
        rows.append(row)
    if model is not None:
        rows.sort(key=lambda x: (x["usd_per_1m_tokens"] is None, x["usd_per_1m_tokens"] or 0.0, x["provider"],
                                 x["region"], x["instance_type"]))
    else:
        rows.sort(key=lambda x: (x["usd_per_gpu_hour_on_demand"] is None, x["usd_per_gpu_hour_on_demand"] or 0.0,
                                 x["provider"], x["region"], x["instance_type"]))
    return rows


def render_rows(rows: list[dict], fmt: str) -> str:
    """rows as ``table`` (aligned text), ``csv`` or ``json``."""
    import csv as _csv
    import io
    import json

    if fmt == "json":
        return json.dumps(rows, indent=2, default=str) + "\n"
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]

    def cell(v) -> str:
        if v is None:
            return ""
        if isinstance(v, list):
            return "; ".join(map(str, v))
        if isinstance(v, float):
            return f"{v:.4g}" if fmt == "table" else repr(v)
        return str(v)

    if fmt == "csv":
        buf = io.StringIO()
        w = _csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([cell(r.get(c)) for c in cols])
        return buf.getvalue()
    if not rows:
        return "(no rows)\n"
    table = [cols] + [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(len(cols))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)).rstrip() for t in table) + "\n"
