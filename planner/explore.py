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
    PROXIES,
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


def _key(text: str) -> str:
    """Case and separators dropped: 'Llama-3.1-8B' and 'llama_3_1_8b' meet at 'llama318b'."""
    t = str(text).strip().lower()
    t = t.split("/")[-1]
    t = re.sub(r"-(instruct|chat|hf)$", "", t)
    return re.sub(r"[^a-z0-9]", "", t)


def resolve_name(kind: str, value: str, choices, aliases: dict[str, str] | None = None, option: str = "") -> str:
    """The catalog id ``value`` names: exact, else case- and separator-insensitive, else an alias;
    raises InputError (exit 2) with a did-you-mean otherwise."""
    choices = [str(c) for c in choices]
    if value in choices:
        return value
    by_key = {_key(c): c for c in choices}
    k = _key(value)
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
) -> list[dict]:
    """Throughput and cost of ``model`` per accelerator (all catalog accelerators offered
    somewhere, or ``accelerator``), or on one ``offer`` (``PROVIDER/REGION/TYPE``). Rows are
    sorted cheapest first (rows that cannot serve last); see the module docstring for fields."""
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
                         max_batch_sequences=max_batch_sequences or DEFAULT_MAX_BATCH_SEQUENCES)
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


__all__ = ["estimate", "resolve_name", "catalog_models", "catalog_accelerators", "PROXIES"]
