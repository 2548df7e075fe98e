"""Accuracy of the throughput estimate against published measured serving throughput.

Reads tests/data/throughput_points.csv (one published, measured point per row: source, software
version, model, accelerator, precisions, TP, lengths, metric, value), asks ``planner.estimate``
for the same model, accelerator, precisions, TP degree, lengths and batch limit, and prints:
every point's ratio estimate / measured, how many lie within 2x and within 30 %, and how many
same-source GPU-to-GPU ratios (same model, lengths and source, two accelerators) the estimate
gets within 30 %. Uses only the public library API.

    .venv/bin/python bench/throughput.py [--out bench/results/throughput.md]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
from pathlib import Path

import planner

ROOT = Path(__file__).resolve().parents[1]
POINTS = ROOT / "tests" / "data" / "throughput_points.csv"


def within(ratio: float, factor: float) -> bool:
    return ratio > 0 and max(ratio, 1.0 / ratio) <= factor + 1e-12


def load_points(path: Path = POINTS) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def measured_per_gpu(p: dict) -> float:
    """Output tokens/s per GPU of a point (``*_total`` metrics are over the TP group)."""
    value = float(p["value"])
    return value / int(p["tensor_parallel"]) if p["metric"].endswith("_total") else value


#: KV headroom a shape must leave to count as fitting. The planner's policy default (0.2 of the
#: weight bytes) is a planning margin; published benchmarks run every engine that loads and give
#: all free memory to the KV cache (TensorRT-LLM's trtllm-bench: ``kv_cache_free_gpu_mem_fraction``
#: 0.90-0.95 of the memory left after the weights), e.g. Llama 3.1 70B FP8 on one H100 80GB.
BENCH_KV_RESERVE_FRACTION = 0.0


def estimated_per_gpu(p: dict) -> float:
    rows = planner.estimate(p["model"], accelerator=p["accelerator"], input_tokens=int(p["input_tokens"]),
                            output_tokens=int(p["output_tokens"]), weight_precision=p["weight_precision"],
                            kv_precision=p["kv_cache_precision"], tensor_parallel=int(p["tensor_parallel"]),
                            max_batch_sequences=int(p["max_batch_sequences"]) if p["max_batch_sequences"] else None,
                            kv_reserve_fraction=BENCH_KV_RESERVE_FRACTION)
    (row,) = rows
    return row["output_tokens_per_s"] / int(p["tensor_parallel"])


def _pair_key(p: dict) -> tuple:
    return (p["source"], p["model"], p["input_tokens"], p["output_tokens"])


def evaluate(points: list[dict]) -> dict:
    """Ratios estimate / measured per point and three families of GPU-to-GPU ratios, each
    (estimated A / estimated B) / (measured A / measured B) for two accelerators A, B of one source,
    model and lengths:

    - ``pairs``: same tensor-parallel degree too (only the accelerator differs): the asserted
      GPU-to-GPU ratios;
    - ``pairs_cross_tp``: any two points (TP degrees may differ), reported;
    - ``pairs_best``: per accelerator the best per-GPU throughput over the TP degrees the source
      measured (what the placement compares: it picks the best shape per accelerator), reported.
    """
    scored = [(p, estimated_per_gpu(p), measured_per_gpu(p)) for p in points]
    ratios = [e / m if m > 0 else 0.0 for _, e, m in scored]
    pairs, cross = [], []
    for (pa, ea, ma), (pb, eb, mb) in itertools.combinations(scored, 2):
        if _pair_key(pa) == _pair_key(pb) and pa["accelerator"] != pb["accelerator"] and ea > 0 and eb > 0:
            r = (pa, pb, (ea / eb) / (ma / mb))
            cross.append(r)
            if pa["tensor_parallel"] == pb["tensor_parallel"]:
                pairs.append(r)
    best: dict[tuple, dict[str, tuple[float, float]]] = {}
    for p, e, m in scored:
        cur = best.setdefault(_pair_key(p), {}).get(p["accelerator"], (0.0, 0.0))
        best[_pair_key(p)][p["accelerator"]] = (max(cur[0], e), max(cur[1], m))
    pairs_best = [(a, b, (ea / eb) / (ma / mb)) for by in best.values()
                  for (a, (ea, ma)), (b, (eb, mb)) in itertools.combinations(sorted(by.items()), 2) if ea > 0 and eb > 0]

    def w30(rs: list) -> int:
        return sum(within(r, 1.3) for _, _, r in rs)

    return {"scored": scored, "ratios": ratios, "pairs": pairs,
            "n": len(ratios), "within_2x": sum(within(r, 2.0) for r in ratios),
            "within_30": sum(within(r, 1.3) for r in ratios),
            "pairs_n": len(pairs), "pairs_within_30": w30(pairs),
            "cross_tp_n": len(cross), "cross_tp_within_30": w30(cross),
            "best_n": len(pairs_best), "best_within_30": w30(pairs_best),
            "accelerators": sorted({p["accelerator"] for p in points}),
            "median_abs_log": sorted(abs(math.log(r)) if r > 0 else math.inf for r in ratios)[len(ratios) // 2]
            if ratios else 0.0}


#: The asserted set: one current software version spanning >= 4 accelerators, FP8 and FP16,
#: TP 1-8 and a mixture-of-experts model (tests/test_estimate.py).
ASSERTED_VERSION = "TensorRT-LLM 0.17"


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / max(n, 1):.0f} %)"


def summary_rows(points: list[dict]) -> list[tuple[str, dict]]:
    """(label, evaluation) for the asserted set, every other software version, and all points."""
    versions = sorted({p["software_version"] for p in points}, key=lambda v: (v != ASSERTED_VERSION, v))
    out = [(f"{v}{' (asserted)' if v == ASSERTED_VERSION else ''}",
            evaluate([p for p in points if p["software_version"] == v])) for v in versions]
    out.append(("all points", evaluate(points)))
    return out


def report(points: list[dict]) -> str:
    rows = summary_rows(points)
    lines = ["# Throughput estimate vs published measurements", "",
             "Estimates use the published run's model, accelerator, precisions, TP degree, lengths and batch "
             "limit, with all free memory for the KV cache (BENCH_KV_RESERVE_FRACTION = 0). GPU-to-GPU "
             "ratios: (estimated A / estimated B) / (measured A / measured B) for one source, model and "
             "lengths; 'same TP' is the asserted family, 'any TP' pairs every two points, 'best shape' "
             "compares each accelerator's best per-GPU throughput over the measured TP degrees.", "",
             "| set | points | accelerators | within 2x | within 30 % | median abs ln ratio | "
             "ratios within 30 %: same TP | any TP | best shape |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, ev in rows:
        lines.append(f"| {label} | {ev['n']} | {', '.join(ev['accelerators'])} | {_pct(ev['within_2x'], ev['n'])} | "
                     f"{_pct(ev['within_30'], ev['n'])} | {ev['median_abs_log']:.3f} | "
                     f"{_pct(ev['pairs_within_30'], ev['pairs_n'])} | {_pct(ev['cross_tp_within_30'], ev['cross_tp_n'])} | "
                     f"{_pct(ev['best_within_30'], ev['best_n'])} |")
    ev = rows[-1][1]
    lines += ["", "| version | model | accelerator | weights | TP | in/out | batch | measured tok/s/GPU | estimate | ratio |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (p, e, m), r in zip(ev["scored"], ev["ratios"], strict=True):
        lines.append(f"| {p['software_version']} | {p['model']} | {p['accelerator']} | {p['weight_precision']} | "
                     f"{p['tensor_parallel']} | {p['input_tokens']}/{p['output_tokens']} | "
                     f"{p['max_batch_sequences'] or 'default'} | {m:,.0f} | {e:,.0f} | {r:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="also write the report (markdown) here")
    args = ap.parse_args()
    text = report(load_points())
    print(text, end="")
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
