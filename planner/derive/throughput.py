"""Throughput model: how many requests per second one model replica sustains on an accelerator.

The planner needs, for every (model, accelerator, instance size, query class), the requests per
second one replica can serve while meeting the workload's latency targets. A measured profile
(:class:`ThroughputProfile`) wins where it has a row; otherwise this module estimates the rate
from public facts: the model's architecture (``catalogs/models.csv``) and the accelerator's
memory, memory bandwidth and dense BF16/FP16 TFLOPS (``catalogs/accelerators.csv``).

Formulas
--------
Notation: ``P`` active parameters, ``W_total`` / ``W_active`` = total / active parameters x
``bytes_per_param``; ``kv`` = :func:`kv_bytes_per_token` = 2 (K and V) x layers x kv_heads x
head_dim x 2 bytes; ``g`` = GPUs of the replica (``shape.gpus``: the TP degree, or the fraction of
a fractional instance); ``F`` = dense TFLOPS x 1e12; ``B`` = memory bandwidth (bytes/s);
``e_tp`` = :func:`tp_efficiency`; ``U`` = target utilisation.

Replica shape (:func:`replica_shape`)
    usable memory = ``USABLE_MEMORY_FRACTION`` x memory_gib x GiB x g. A replica fits when
    ``W_total x (1 + kv_reserve_fraction) <= usable memory``; the replica takes the smallest TP
    degree in ``TP_SIZES`` that fits (fewest GPUs, least communication), up to the instance's
    GPUs and the site's ``max_tp``. An instance with less than one GPU hosts one replica using the
    whole fraction (tp = 1), if the model fits in it.

Prefill (compute-bound)
    ``prefill_s = 2 x P x n_in / (F x g x PREFILL_MFU x e_tp)`` with ``n_in = input_tokens x (1 -
    prefix_cache_rate)`` (at least one token): two FLOPs per parameter per token.

Decode step with ``b`` sequences in flight (memory-bound, with a compute roofline)
    ``mem(b)  = (W_active + b x kv x ctx) / (B x g x DECODE_MBU x e_tp)``, ``ctx = n_in_total +
    output/2`` (the average context a sequence has while it decodes);
    ``comp(b) = 2 x P x b / (F x g x PREFILL_MFU x e_tp)``;
    ``step_s(b) = max(mem(b), comp(b)) + tp_latency``, ``tp_latency = 2 x layers x
    TP_ALLREDUCE_LATENCY_S[interconnect]`` when tp > 1 (two all-reduces per layer: after
    attention and after the MLP), else 0.

Batch (concurrent sequences), the smallest of
    - memory: ``floor((usable memory - W_total) / (kv x (input + output)))`` (every sequence
      may reach its full context);
    - TPOT: the largest integer ``b`` with ``step_s(b) <= tpot``;
    - TTFT: the largest integer ``b`` with ``prefill_s + step_s(b) <= ttft`` (a new request waits
      at most one decode step before its prefill runs).
    The estimate is infeasible (``rps = 0``, ``limit = "infeasible: ..."``) when the context
    exceeds the model's ``max_context_tokens``, one sequence's KV does not fit, ``step_s(1) >
    tpot``, or ``prefill_s > ttft`` (or ``prefill_s + step_s(1) > ttft``).

Sustainable rate with continuous batching
    Over a long interval ``T`` the replica completes ``N = r T`` requests. Each needs one prefill
    (``prefill_s`` of GPU time) and ``output`` decode tokens; a decode step of ``step_s`` yields
    one token for each of the ``b`` sequences in flight, so the decode work of ``N`` requests
    takes ``N x output / b`` steps. The GPU time splits between the two:
    ``T = N x prefill_s + (N x output / b) x step_s``, so
    ``r = N / T = b / (output x step_s + prefill_s x b)``.
    The planned rate is ``U x r``: running below saturation absorbs queueing (the 0.8 default keeps
    an M/D/1-like queue's wait to about two service times) and the interference of chunked prefill
    with decode steps.

Prefill-only work (``output_tokens == 0``: embeddings, reranking)
    Requests are batched into compute-bound forward passes: ``r = U / prefill_s``, so the rate is
    inversely proportional to the input tokens.

``limit`` says what binds: ``"tpot"`` / ``"ttft"`` when that SLO caps the batch, otherwise
``"compute"`` when the decode step at the memory-limited batch is compute-bound (or the work is
prefill-only), else ``"memory"``; ``"profile"`` for a measured row.

Constants and where they come from
----------------------------------
- ``USABLE_MEMORY_FRACTION = 0.9``: vLLM's default ``gpu_memory_utilization`` (the rest is left to
  the CUDA context, activations and fragmentation).
- ``PREFILL_MFU = 0.5``: model-FLOPs utilisation typical of prefill in vLLM / TensorRT-LLM on
  large GEMMs (published prefill benchmarks land around 40-60 % of dense peak); also used for the
  compute roofline of large decode batches.
- ``DECODE_MBU = 0.7``: memory-bandwidth utilisation of decode. Databricks' "LLM Inference
  Performance Engineering: Best Practices" (2023) defines MBU and reports decode MBUs of
  roughly 55-70 % for 7B-70B models on A100/H100 (higher at small batch); 0.7 is the upper end,
  for a tuned engine.
- ``TP_ALLREDUCE_LATENCY_S`` ~5 us per all-reduce over NVLink/NVSwitch (and comparable
  fabrics: AMD Infinity Fabric on OAM), ~15 us over PCIe: small-message NCCL all-reduce latencies
  (nccl-tests order of magnitude). Assumption, not a measurement of any particular system.
- ``TP_EFFICIENCY_PER_DOUBLING`` nvlink 0.95, pcie 0.85: fraction of linear scaling kept per
  doubling of the TP degree (communication that does not overlap compute). Assumption.
- ``KV_BYTES_PER_ELEMENT = 2``: KV cache in BF16/FP16 (vLLM's default ``kv_cache_dtype=auto``).
- ``GIB = 2**30``: catalog memory is in GiB; bandwidth is in GB/s (1e9 bytes/s, as datasheets give).

Simplifications (why an estimate may be off)
--------------------------------------------
- MoE decode reads only the active experts' weights per step. At large batches different tokens
  route to different experts, so nearly all expert weights are read: optimistic at large batch.
  Memory always counts all weights.
- No speculative decoding, no quantisation unless ``bytes_per_param`` says so (e.g. 1 for FP8
  weights), KV cache in BF16, no KV offload.
- Prefill is compute-bound and ignores the attention FLOPs quadratic in the context (about 13 %
  extra for an 8B model at 8k tokens), and the weight-read floor of very short prompts. Counting
  2 FLOPs for every parameter overstates encoders with large vocabularies (about 256M of
  bge-m3's 568M parameters are the embedding table, which costs no FLOPs): conservative.
- No cap on concurrent sequences (vLLM's ``max_num_seqs``): memory, TPOT and TTFT bound the
  batch, and at large batches the compute roofline makes more sequences add little.
- Tensor parallelism is modelled as a per-layer latency plus an efficiency factor; no pipeline or
  expert parallelism. H100 NVL pairs are bridged, but TP 4/8 across pairs would use PCIe: the
  model treats all of an ``nvlink`` instance's GPUs alike.
- A fractional instance (e.g. 1/8 of a GPU) gets that fraction of memory, bandwidth and FLOPS.
- Queueing delay is not modelled: it is absorbed by the target utilisation.
- The KV reserve of the fit test (``kv_reserve_fraction`` of the weights) only decides whether a
  replica fits; the batch then uses all memory left after the weights.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from planner.errors import InputError, Problem
from planner.input.schema import ModelSpec

# --------------------------------------------------------------------------- constants
GIB = 2**30
#: vLLM's default gpu_memory_utilization.
USABLE_MEMORY_FRACTION = 0.9
#: Model-FLOPs utilisation of prefill (and of compute-bound decode) in vLLM / TensorRT-LLM.
PREFILL_MFU = 0.5
#: Memory-bandwidth utilisation of decode (Databricks MBU figures).
DECODE_MBU = 0.7
#: Bytes per KV cache element (BF16).
KV_BYTES_PER_ELEMENT = 2
#: Tensor-parallel degrees tried, smallest first.
TP_SIZES = (1, 2, 4, 8)
#: All-reduces per transformer layer under tensor parallelism (after attention, after the MLP).
ALLREDUCES_PER_LAYER = 2
#: Latency of one small all-reduce, seconds, by interconnect.
TP_ALLREDUCE_LATENCY_S = {"nvlink": 5e-6, "pcie": 15e-6}
#: Fraction of linear scaling kept per doubling of the TP degree, by interconnect.
TP_EFFICIENCY_PER_DOUBLING = {"nvlink": 0.95, "pcie": 0.85}
#: Default target utilisation (Policies.target_utilisation).
DEFAULT_TARGET_UTILISATION = 0.8
#: Default KV reserve as a fraction of weight bytes (Policies.kv_reserve_fraction).
DEFAULT_KV_RESERVE_FRACTION = 0.2

_NVLINK_MARKERS = ("SXM", "OAM", "NVL", "SUPERCHIP")


def _num(value: object) -> float | None:
    """A catalog cell as a float; None for blank, NaN or missing."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


# --------------------------------------------------------------------------- accelerators
@dataclass(frozen=True)
class AcceleratorSpec:
    """The facts of one accelerator the throughput model uses (one row of accelerators.csv)."""

    name: str
    memory_gib: float
    memory_bandwidth_gb_s: float | None
    bf16_tflops: float | None
    fp16_tflops: float | None
    form_factor: str
    tdp_watts: float | None

    @classmethod
    def from_row(cls, name: str, row: Mapping) -> AcceleratorSpec:
        """Build from a catalog row (a dict or a pandas Series); NaN or blank cells become None
        (a missing memory size becomes 0, which fits nothing)."""
        form = row.get("form_factor")
        form_text = "" if form is None or (isinstance(form, float) and math.isnan(form)) else str(form).strip()
        return cls(
            name=str(name),
            memory_gib=_num(row.get("memory_gib")) or 0.0,
            memory_bandwidth_gb_s=_num(row.get("memory_bandwidth_gb_s")),
            bf16_tflops=_num(row.get("bf16_tflops")),
            fp16_tflops=_num(row.get("fp16_tflops")),
            form_factor=form_text,
            tdp_watts=_num(row.get("tdp_watts")),
        )

    @property
    def interconnect(self) -> str:
        """``"nvlink"`` for SXM, OAM, NVL and superchip forms (a GPU-to-GPU fabric), else ``"pcie"``."""
        text = self.form_factor.upper()
        return "nvlink" if any(m in text for m in _NVLINK_MARKERS) else "pcie"

    @property
    def tflops(self) -> float | None:
        """Dense BF16 TFLOPS, else dense FP16, else None."""
        for v in (self.bf16_tflops, self.fp16_tflops):
            if v is not None and v > 0:
                return v
        return None


def usable_without_profile(acc: AcceleratorSpec) -> str | None:
    """None if the model can estimate throughput on ``acc``; else why not."""
    missing = []
    if acc.memory_gib <= 0:
        missing.append("memory size")
    if not acc.memory_bandwidth_gb_s:
        missing.append("memory bandwidth")
    if acc.tflops is None:
        missing.append("BF16/FP16 TFLOPS")
    if not missing:
        return None
    return f"no {' or '.join(missing)} figure in catalogs/accelerators.csv (give a measured throughput profile)"


# --------------------------------------------------------------------------- model facts
def weight_bytes(model: ModelSpec) -> float:
    """Bytes of all weights (every expert of a MoE)."""
    return model.total_params_b * 1e9 * model.bytes_per_param


def active_weight_bytes(model: ModelSpec) -> float:
    """Bytes of the weights one token reads (the active experts of a MoE)."""
    return model.active_params_b * 1e9 * model.bytes_per_param


def kv_bytes_per_token(model: ModelSpec) -> float:
    """KV cache bytes per token: 2 (K and V) x layers x kv_heads x head_dim x 2 bytes (BF16)."""
    return 2.0 * model.layers * model.kv_heads * model.head_dim * KV_BYTES_PER_ELEMENT


def usable_memory_bytes(acc: AcceleratorSpec, gpus: float) -> float:
    return USABLE_MEMORY_FRACTION * acc.memory_gib * GIB * gpus


def tp_efficiency(tp: int, interconnect: str) -> float:
    """Fraction of linear scaling kept at TP degree ``tp``: per-doubling factor ** log2(tp)."""
    if tp <= 1:
        return 1.0
    return TP_EFFICIENCY_PER_DOUBLING[interconnect] ** math.log2(tp)


def tp_latency_per_step(model: ModelSpec, tp: int, interconnect: str) -> float:
    """Seconds of all-reduce latency a decode step pays at TP degree ``tp``."""
    if tp <= 1:
        return 0.0
    return ALLREDUCES_PER_LAYER * model.layers * TP_ALLREDUCE_LATENCY_S[interconnect]


# --------------------------------------------------------------------------- replica shape
@dataclass(frozen=True)
class ReplicaShape:
    gpus: float  # GPUs one replica uses (tp size, or the instance's fraction for a fractional instance)
    tp: int  # tensor-parallel degree (1 for fractional)
    replicas_per_instance: int


def _fits(model: ModelSpec, acc: AcceleratorSpec, gpus: float, kv_reserve_fraction: float) -> bool:
    return weight_bytes(model) * (1.0 + kv_reserve_fraction) <= usable_memory_bytes(acc, gpus)


def replica_shape(
    model: ModelSpec,
    acc: AcceleratorSpec,
    instance_gpus: float,
    max_tp: int = 8,
    kv_reserve_fraction: float = DEFAULT_KV_RESERVE_FRACTION,
) -> ReplicaShape | None:
    """The smallest TP degree (in ``TP_SIZES``, at most the instance's GPUs and ``max_tp``) whose
    memory holds the weights plus the KV reserve; None if nothing fits. A fractional instance
    (< 1 GPU) hosts one replica on the whole fraction if the model fits in it."""
    if instance_gpus <= 0:
        return None
    if instance_gpus < 1:
        if _fits(model, acc, instance_gpus, kv_reserve_fraction):
            return ReplicaShape(gpus=float(instance_gpus), tp=1, replicas_per_instance=1)
        return None
    limit = min(instance_gpus, max_tp)
    for tp in TP_SIZES:
        if tp > limit:
            break
        if _fits(model, acc, tp, kv_reserve_fraction):
            return ReplicaShape(gpus=float(tp), tp=tp, replicas_per_instance=int(math.floor(instance_gpus / tp)))
    return None


# --------------------------------------------------------------------------- estimate
@dataclass(frozen=True)
class Estimate:
    rps: float  # max sustainable requests/s per replica at target utilisation; 0.0 when infeasible
    source: str  # "model" or "profile"
    limit: str  # "memory", "tpot", "ttft", "compute", "profile", or "infeasible: <why>"
    batch: float  # concurrent sequences used in the estimate (0 for prefill-only)
    prefill_s: float  # prefill time of one request (s)
    step_s: float  # decode step time at that batch (s), 0 for prefill-only


def _infeasible(why: str, prefill_s: float = 0.0, step_s: float = 0.0, source: str = "model") -> Estimate:
    return Estimate(rps=0.0, source=source, limit=f"infeasible: {why}", batch=0.0, prefill_s=prefill_s, step_s=step_s)


def _max_batch_within(budget_s: float, w_active: float, kv_ctx: float, mem_rate: float, flop_per_seq: float,
                      flop_rate: float) -> int:
    """Largest integer b with max(mem(b), comp(b)) <= budget_s (0 if even b = 1 is too slow)."""
    if budget_s <= 0:
        return 0
    b_mem = (budget_s * mem_rate - w_active) / kv_ctx
    b_comp = budget_s * flop_rate / flop_per_seq
    b = math.floor(min(b_mem, b_comp) * (1 + 1e-12))
    return max(b, 0)


def estimate_rps(
    model: ModelSpec,
    acc: AcceleratorSpec,
    shape: ReplicaShape,
    input_tokens: int,
    output_tokens: int,
    ttft_ms: float | None = None,
    tpot_ms: float | None = None,
    prefix_cache_rate: float = 0.0,
    target_utilisation: float = DEFAULT_TARGET_UTILISATION,
) -> Estimate:
    """Estimated sustainable requests/s of one replica of ``model`` on ``shape`` x ``acc`` for a
    query of ``input_tokens`` in / ``output_tokens`` out (see the module docstring).

    Raises ValueError when ``acc`` lacks a bandwidth or TFLOPS figure (see
    :func:`usable_without_profile`)."""
    why = usable_without_profile(acc)
    if why is not None:
        raise ValueError(f"{acc.name}: {why}")
    assert acc.memory_bandwidth_gb_s is not None and acc.tflops is not None
    context = input_tokens + output_tokens
    if context > model.max_context_tokens:
        return _infeasible(f"context {context} tokens exceeds {model.id}'s maximum of {model.max_context_tokens}")

    link = acc.interconnect
    eff = tp_efficiency(shape.tp, link)
    flop_rate = acc.tflops * 1e12 * shape.gpus * PREFILL_MFU * eff  # FLOP/s
    mem_rate = acc.memory_bandwidth_gb_s * 1e9 * shape.gpus * DECODE_MBU * eff  # bytes/s
    flop_per_token = 2.0 * model.active_params_b * 1e9
    n_in = max(input_tokens * (1.0 - prefix_cache_rate), 1.0)
    prefill_s = flop_per_token * n_in / flop_rate

    if ttft_ms is not None and prefill_s * 1e3 > ttft_ms:
        return _infeasible(f"ttft: prefill takes {prefill_s * 1e3:.0f} ms > TTFT target {ttft_ms:g} ms",
                           prefill_s=prefill_s)

    if output_tokens <= 0:  # prefill-only: batched, compute-bound forward passes
        return Estimate(rps=target_utilisation / prefill_s, source="model", limit="compute", batch=0.0,
                        prefill_s=prefill_s, step_s=0.0)

    w_total = weight_bytes(model)
    w_active = active_weight_bytes(model)
    kv_tok = kv_bytes_per_token(model)
    kv_ctx = kv_tok * (input_tokens + output_tokens / 2.0)  # KV bytes a sequence reads per step, on average
    latency = tp_latency_per_step(model, shape.tp, link)

    def step(b: float) -> tuple[float, bool]:
        mem = (w_active + b * kv_ctx) / mem_rate
        comp = flop_per_token * b / flop_rate
        return max(mem, comp) + latency, comp > mem

    kv_budget = usable_memory_bytes(acc, shape.gpus) - w_total
    b_mem = math.floor(kv_budget / (kv_tok * context)) if kv_budget > 0 else 0
    if b_mem < 1:
        return _infeasible(f"memory: the KV cache of one {context}-token sequence does not fit beside the weights",
                           prefill_s=prefill_s)
    step1, _ = step(1)
    batch, limit = b_mem, "memory"
    if tpot_ms is not None:
        b_tpot = _max_batch_within(tpot_ms / 1e3 - latency, w_active, kv_ctx, mem_rate, flop_per_token, flop_rate)
        if b_tpot < 1:
            return _infeasible(f"tpot: one decode step takes {step1 * 1e3:.1f} ms > TPOT target {tpot_ms:g} ms",
                               prefill_s=prefill_s, step_s=step1)
        if b_tpot < batch:
            batch, limit = b_tpot, "tpot"
    if ttft_ms is not None:
        b_ttft = _max_batch_within(ttft_ms / 1e3 - prefill_s - latency, w_active, kv_ctx, mem_rate,
                                   flop_per_token, flop_rate)
        if b_ttft < 1:
            return _infeasible(f"ttft: prefill {prefill_s * 1e3:.0f} ms + one decode step {step1 * 1e3:.1f} ms "
                               f"> TTFT target {ttft_ms:g} ms", prefill_s=prefill_s, step_s=step1)
        if b_ttft < batch:
            batch, limit = b_ttft, "ttft"
    step_s, compute_bound = step(batch)
    if limit == "memory" and compute_bound:
        limit = "compute"
    rate = batch / (output_tokens * step_s + prefill_s * batch)
    return Estimate(rps=target_utilisation * rate, source="model", limit=limit, batch=float(batch),
                    prefill_s=prefill_s, step_s=step_s)


# --------------------------------------------------------------------------- profiles
_PROFILE_REQUIRED = ("model", "accelerator", "input_tokens", "output_tokens", "max_rps_per_replica")
_PROFILE_OPTIONAL = ("ttft_ms", "tpot_ms")


@dataclass(frozen=True)
class ProfileRow:
    model: str
    accelerator: str
    input_tokens: int
    output_tokens: int
    max_rps_per_replica: float
    ttft_ms: float | None
    tpot_ms: float | None
    row: int  # line in the file (the header is row 1)


class ThroughputProfile:
    """Measured profile CSV: model, accelerator, input_tokens, output_tokens, max_rps_per_replica,
    optional ttft_ms, tpot_ms.

    ``max_rps_per_replica`` is the saturation throughput one replica (of the shape the planner
    picks, see :func:`replica_shape`) sustained in a load test while meeting the row's
    ``ttft_ms`` / ``tpot_ms`` if given. Like the model estimate, it is multiplied by the target
    utilisation before the planner uses it.
    """

    def __init__(self, rows: list[ProfileRow], path: Path | None = None):
        self.rows = list(rows)
        self.path = path
        self._by_pair: dict[tuple[str, str], list[ProfileRow]] = {}
        for r in self.rows:
            self._by_pair.setdefault((r.model, r.accelerator), []).append(r)

    @classmethod
    def load(cls, path: Path) -> ThroughputProfile:
        """Read and check a profile; raises InputError naming the file, row and fix for every problem."""
        path = Path(path)
        file = str(path)
        fix_header = f"the header must be {','.join(_PROFILE_REQUIRED)}[,ttft_ms][,tpot_ms]"
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(Problem(file=file, path="", message=f"cannot read the throughput profile: {exc}",
                                     fix="give the path of a UTF-8 CSV file")) from exc
        reader = csv.DictReader(text.splitlines())
        header = [h.strip() for h in (reader.fieldnames or [])]
        if not header:
            raise InputError(Problem(file=file, path="row 1", message="the profile is empty (no header row)",
                                     fix=fix_header))
        problems: list[Problem] = []
        missing = [c for c in _PROFILE_REQUIRED if c not in header]
        if missing:
            problems.append(Problem(file=file, path="row 1", message=f"missing column(s) {', '.join(missing)}",
                                    value=header, fix=fix_header))
        unknown = [c for c in header if c not in _PROFILE_REQUIRED + _PROFILE_OPTIONAL]
        if unknown:
            problems.append(Problem(file=file, path="row 1", message=f"unknown column(s) {', '.join(unknown)}",
                                    value=header, fix=f"{fix_header}; remove or rename the others"))
        if problems:
            raise InputError(problems)
        reader.fieldnames = header
        rows: list[ProfileRow] = []
        for rec in reader:
            line = reader.line_num
            values = {k: (v.strip() if isinstance(v, str) else v) for k, v in rec.items() if k is not None}
            if None in rec:
                problems.append(Problem(file=file, path=f"row {line}", message="more cells than header columns",
                                        value=rec[None], fix="remove the extra cells or quote values with commas"))
                continue
            if all(not v for v in values.values()):
                continue  # blank line

            def bad(col: str, msg: str, value: object, fix: str, line: int = line) -> None:
                problems.append(Problem(file=file, path=f"row {line}, column {col}", message=msg, value=value,
                                        fix=fix))

            ok = True
            for col in ("model", "accelerator"):
                if not values.get(col):
                    bad(col, "missing value", None, f"give the {col} id")
                    ok = False
            parsed: dict[str, float | None] = {}
            for col, integer, minimum in (("input_tokens", True, 1), ("output_tokens", True, 0),
                                          ("max_rps_per_replica", False, None), ("ttft_ms", False, None),
                                          ("tpot_ms", False, None)):
                raw = values.get(col)
                if not raw:
                    if col in _PROFILE_REQUIRED:
                        bad(col, "missing value", None, f"give {col} for every row")
                        ok = False
                    parsed[col] = None
                    continue
                try:
                    x = float(raw)
                except ValueError:
                    x = math.nan
                if integer:
                    good = math.isfinite(x) and x == int(x) and x >= minimum
                    need = f"a whole number >= {minimum}"
                else:
                    good = math.isfinite(x) and x > 0
                    need = "a positive number"
                if not good:
                    bad(col, f"{col} must be {need}", raw, f"write {col} as {need}"
                        + (" or leave it blank" if col in _PROFILE_OPTIONAL else ""))
                    ok = False
                    continue
                parsed[col] = x
            if ok:
                rows.append(ProfileRow(
                    model=str(values["model"]), accelerator=str(values["accelerator"]),
                    input_tokens=int(parsed["input_tokens"] or 0), output_tokens=int(parsed["output_tokens"] or 0),
                    max_rps_per_replica=float(parsed["max_rps_per_replica"] or 0.0),
                    ttft_ms=parsed["ttft_ms"], tpot_ms=parsed["tpot_ms"], row=line,
                ))
        if problems:
            raise InputError(problems)
        return cls(rows, path)

    def lookup(
        self,
        model: str,
        accelerator: str,
        input_tokens: int,
        output_tokens: int,
        ttft_ms: float | None,
        tpot_ms: float | None,
    ) -> float | None:
        """The measured rps valid for this query, or None.

        A row is valid when it is for (model, accelerator), its SLO columns (where given) are at
        most the workload's targets (measured under a tighter-or-equal SLO), and its
        input_tokens / output_tokens are at least the query's. Of those, the row with the smallest
        (input_tokens, output_tokens) - the closest conservative one - and, on a tie, the lowest
        rate."""
        best: tuple[int, int, float] | None = None
        for r in self._by_pair.get((model, accelerator), ()):
            if ttft_ms is not None and r.ttft_ms is not None and r.ttft_ms > ttft_ms:
                continue
            if tpot_ms is not None and r.tpot_ms is not None and r.tpot_ms > tpot_ms:
                continue
            if r.input_tokens < input_tokens or r.output_tokens < output_tokens:
                continue
            key = (r.input_tokens, r.output_tokens, r.max_rps_per_replica)
            if best is None or key < best:
                best = key
        return None if best is None else best[2]


# --------------------------------------------------------------------------- facade
class ThroughputModel:
    """Memoised facade used by the candidate/MILP stages."""

    def __init__(
        self,
        models: Mapping[str, ModelSpec],
        accelerators: Mapping[str, AcceleratorSpec],
        profile: ThroughputProfile | None = None,
        target_utilisation: float = DEFAULT_TARGET_UTILISATION,
        kv_reserve_fraction: float = DEFAULT_KV_RESERVE_FRACTION,
    ):
        self.models = dict(models)
        self.accelerators = dict(accelerators)
        self.profile = profile
        self.target_utilisation = target_utilisation
        self.kv_reserve_fraction = kv_reserve_fraction
        self._shapes: dict[tuple, ReplicaShape | None] = {}
        self._rates: dict[tuple, Estimate] = {}

    def shape(self, model_id: str, accelerator: str, instance_gpus: float, max_tp: int = 8) -> ReplicaShape | None:
        """The replica shape of ``model_id`` on an instance of ``instance_gpus`` x ``accelerator``;
        None if it does not fit (or either id is unknown)."""
        key = (model_id, accelerator, float(instance_gpus), int(max_tp))
        if key not in self._shapes:
            model = self.models.get(model_id)
            acc = self.accelerators.get(accelerator)
            self._shapes[key] = (
                None if model is None or acc is None
                else replica_shape(model, acc, instance_gpus, max_tp, self.kv_reserve_fraction)
            )
        return self._shapes[key]

    def rps(
        self,
        model_id: str,
        accelerator: str,
        shape: ReplicaShape,
        input_tokens: int,
        output_tokens: int,
        ttft_ms: float | None,
        tpot_ms: float | None,
        prefix_cache_rate: float,
    ) -> Estimate:
        """Requests/s of one replica: the profile's row if one applies, else the model estimate."""
        key = (model_id, accelerator, shape, int(input_tokens), int(output_tokens), ttft_ms, tpot_ms,
               float(prefix_cache_rate))
        if key not in self._rates:
            self._rates[key] = self._rps(*key)
        return self._rates[key]

    def _rps(self, model_id: str, accelerator: str, shape: ReplicaShape, input_tokens: int, output_tokens: int,
             ttft_ms: float | None, tpot_ms: float | None, prefix_cache_rate: float) -> Estimate:
        if self.profile is not None:
            measured = self.profile.lookup(model_id, accelerator, input_tokens, output_tokens, ttft_ms, tpot_ms)
            if measured is not None:
                return Estimate(rps=measured * self.target_utilisation, source="profile", limit="profile",
                                batch=0.0, prefill_s=0.0, step_s=0.0)
        model = self.models.get(model_id)
        if model is None:
            return _infeasible(f"unknown model {model_id!r}")
        acc = self.accelerators.get(accelerator)
        if acc is None:
            return _infeasible(f"unknown accelerator {accelerator!r}")
        why = usable_without_profile(acc)
        if why is not None:
            return _infeasible(why)
        return estimate_rps(model, acc, shape, input_tokens, output_tokens, ttft_ms, tpot_ms, prefix_cache_rate,
                            self.target_utilisation)
