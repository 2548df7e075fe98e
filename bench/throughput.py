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


def estimated_per_gpu(p: dict) -> float:
    rows = planner.estimate(p["model"], accelerator=p["accelerator"], input_tokens=int(p["input_tokens"]),
                            output_tokens=int(p["output_tokens"]), weight_precision=p["weight_precision"],
                            kv_precision=p["kv_cache_precision"], tensor_parallel=int(p["tensor_parallel"]),
                            max_batch_sequences=int(p["max_batch_sequences"]) if p["max_batch_sequences"] else None)
    (row,) = rows
    return row["output_tokens_per_s"] / int(p["tensor_parallel"])


def evaluate(points: list[dict]) -> dict:
    scored = [(p, estimated_per_gpu(p), measured_per_gpu(p)) for p in points]
    ratios = [e / m for _, e, m in scored]
    pairs = []
    for (pa, ea, ma), (pb, eb, mb) in itertools.combinations(scored, 2):
        same = all(pa[k] == pb[k] for k in ("source", "model", "input_tokens", "output_tokens"))
        if same and pa["accelerator"] != pb["accelerator"] and ea > 0 and eb > 0:
            pairs.append((pa, pb, (ea / eb) / (ma / mb)))
    return {"scored": scored, "ratios": ratios, "pairs": pairs,
            "n": len(ratios), "within_2x": sum(within(r, 2.0) for r in ratios),
            "within_30": sum(within(r, 1.3) for r in ratios),
            "pairs_n": len(pairs), "pairs_within_30": sum(within(r, 1.3) for _, _, r in pairs),
            "median_abs_log": sorted(abs(math.log(r)) for r in ratios)[len(ratios) // 2] if ratios else 0.0}


def report(ev: dict) -> str:
    n, pn = ev["n"], ev["pairs_n"]
    lines = ["# Throughput estimate vs published measurements", "",
             f"points: {n}; within 2x: {ev['within_2x']} ({100 * ev['within_2x'] / n:.0f} %); within 30 %: "
             f"{ev['within_30']} ({100 * ev['within_30'] / n:.0f} %); median |ln(estimate/measured)| "
             f"{ev['median_abs_log']:.3f}",
             f"same-source GPU-to-GPU ratios: {pn}; within 30 %: {ev['pairs_within_30']} "
             f"({100 * ev['pairs_within_30'] / max(pn, 1):.0f} %)", "",
             "| model | accelerator | weights | TP | in/out | batch | measured tok/s/GPU | estimate | ratio |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p, e, m in ev["scored"]:
        lines.append(f"| {p['model']} | {p['accelerator']} | {p['weight_precision']} | {p['tensor_parallel']} | "
                     f"{p['input_tokens']}/{p['output_tokens']} | {p['max_batch_sequences'] or 'default'} | "
                     f"{m:,.0f} | {e:,.0f} | {e / m:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="also write the report (markdown) here")
    args = ap.parse_args()
    text = report(evaluate(load_points()))
    print(text, end="")
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
