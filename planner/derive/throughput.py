"""Throughput model: how many requests per second one model replica sustains on an accelerator.

The planner needs, for every (model, accelerator, instance size, query class), the requests per
second one replica can serve while meeting the workload's latency targets. A measured profile
(:class:`ThroughputProfile`) wins where it has a row; otherwise this module estimates the rate
from public facts: the model's architecture (``catalogs/models.csv``) and the accelerator's
memory, memory bandwidth, dense BF16/FP16 and FP8 TFLOPS and GPU-to-GPU interconnect
(``catalogs/accelerators.csv``).

Formulas
--------
Notation: ``P`` active parameters; weight bytes = parameters x ``PRECISION_BYTES[weight_precision]``
(bf16/fp16 2, fp8 1, int4 0.5); ``kv`` = :func:`kv_bytes_per_token` = 2 (K and V) x layers x
kv_heads x head_dim x ``PRECISION_BYTES[kv_cache_precision]``; ``g`` = GPUs of the replica (the
TP degree, or the fraction of a fractional instance); ``F`` = dense TFLOPS x 1e12 (``fp8_tflops``
iff the weights are fp8 and the part has the figure, else BF16, else FP16: int4 is weight-only
and computes in BF16); ``B`` = memory bandwidth (bytes/s); ``U`` = target utilisation.

Replica shape (:func:`replica_shapes`, chosen by :meth:`ThroughputModel.best_shape`)
    usable memory = ``USABLE_MEMORY_FRACTION`` x memory_gib x GiB x g. A TP degree fits when
    ``W_total x (1 + kv_reserve_fraction) <= usable memory``. Every fitting degree in
    ``TP_SIZES`` (up to the instance's GPUs and the site's ``max_tp``) is a candidate shape; the
    planner keeps the one with the highest class-mix-weighted planning rps per GPU (harmonic mix
    over the query classes' shares; ties go to the smaller degree).

Prefill (compute-bound)
    ``prefill_s = 2 x P x n_in / (F x g x MFU) + comm(n_in)``, ``n_in = input_tokens x (1 -
    prefix_cache_rate)`` (at least one token).

Decode step with ``b`` sequences in flight (memory-bound, with a compute roofline)
    ``mem(b)  = (W_read(b) + b x kv x ctx) / (B x g x MBU)``, ``ctx = n_in_total + output/2``;
    ``W_read(b)`` = the weights one step reads: all of a dense model; for a MoE, the shared
    weights plus the expected share of experts at least one of the ``b`` tokens routes to,
    ``1 - (1 - k/E)^b`` (``E`` experts, ``k`` per token, uniform routing);
    ``comp(b) = 2 x P x b / (F x g x MFU)``;
    ``step_s(b) = max(mem(b), comp(b)) + comm(b)``.

Tensor-parallel communication ``comm(t)`` for ``t`` tokens in a step (tp > 1)
    per layer two ring all-reduces (after attention, after the MLP), each moving
    ``2 (tp-1)/tp x hidden_size x ACTIVATION_BYTES x t`` bytes at ``interconnect_gb_s / 2`` (the
    catalog column is the bidirectional total per GPU) plus ``ALLREDUCE_LATENCY_S`` per message.
    A PCIe part with a blank interconnect is assumed PCIe Gen4 x16 (64 GB/s; Gen5, 128 GB/s, for
    Hopper/Blackwell), flagged ``assumed``; an NVLink bridge links pairs only (tp > 2 runs over
    PCIe); any other blank fabric is assumed PCIe Gen4 too (conservative, flagged).

Batch (concurrent sequences), the smallest of
    - ``kv_capacity``: ``floor((usable memory - W_total) / (kv x ctx))`` (KV occupancy at the
      average context; one request must still fit at full context input + output);
    - ``batch_cap``: ``max_batch_sequences`` (``policies.max_batch_sequences``, default 256,
      vLLM's ``max_num_seqs`` default; overridable per workload);
    - ``tpot``: the largest ``b`` with ``step_s(b) <= tpot``;
    - ``ttft``: the largest ``b`` with ``prefill_s + step_s(b) <= ttft``.

Sustainable rate with continuous batching (saturation, ``max_rps``)
    ``T = N x prefill_s + (N x output / b) x step_s`` for ``N`` requests, so
    ``max_rps = b / (output x step_s + prefill_s x b)``; ``planning_rps = U x max_rps``.
    Prefill-only work (embeddings, reranking): ``max_rps = 1 / prefill_s``.

``regime`` says what binds ``max_rps``: ``tpot`` / ``ttft`` when that SLO caps the batch;
``compute`` when the step at the batch is compute-bound (and for prefill-only work);
otherwise the step is memory-bound and the batch limit binds: ``bandwidth`` when KV reads are
at least the weight reads (a larger batch would add little), else ``kv_capacity`` or
``batch_cap``, whichever stopped the batch.

Constants and where they come from
----------------------------------
- ``USABLE_MEMORY_FRACTION = 0.9``: vLLM's default ``gpu_memory_utilization`` (TensorRT-LLM's
  ``kv_cache_free_gpu_mem_fraction`` default is 0.9 as well).
- ``MFU = 0.5``: model-FLOPs utilisation of large GEMMs in serving engines. NVIDIA's
  TensorRT-LLM 1.0 performance overview reaches 46-54 % of the dense FP8 peak on H100/H200 for
  Llama 3.1 8B / 3.3 70B at 128/128 tokens (compute-bound), and published prefill benchmarks land
  at 40-60 % of dense peak. One global value, for every precision and part.
- ``MBU = 0.7``: memory-bandwidth utilisation of decode. Databricks' "LLM Inference Performance
  Engineering: Best Practices" (2023) reports decode MBUs of roughly 55-70 % for 7B-70B models on
  A100/H100; 0.7 is the upper end, for a tuned engine. One global value.
- ``ACTIVATION_BYTES = 2``: tensor-parallel all-reduces carry BF16/FP16 activations in vLLM and
  TensorRT-LLM, also for FP8 weights.
- ``ALLREDUCE_LATENCY_S`` 5 us per message over NVLink/NVSwitch and comparable fabrics, 15 us over
  PCIe: small-message NCCL all-reduce latency, nccl-tests order of magnitude (an assumption, not a
  measurement of one system).
- ``PCIE_ASSUMED_GB_S``: PCIe Gen4 x16 = 64 GB/s bidirectional (32 GB/s each way), Gen5 x16 = 128
  GB/s (PCI-SIG specifications).
- ``GIB = 2**30``: catalog memory is in GiB; bandwidth is in GB/s (1e9 bytes/s, as datasheets give).

Proxies (``PROXIES``)
    An accelerator missing facts borrows them, and only them, from a documented twin: A10G (AWS
    g5) from A10, the same GA102 die. Its estimates have ``rate_source = "proxy"`` and a note
    ``proxy: A10``. Any other part missing facts is unusable without a measured profile; the
    scenario notes say which and why.

Simplifications (why an estimate may be off)
--------------------------------------------
- No speculative decoding, no KV offload, no pipeline or expert parallelism.
- Prefill ignores the attention FLOPs quadratic in the context (about 13 % extra for an 8B model
  at 8k tokens). Counting 2 FLOPs for every parameter overstates encoders with large
  vocabularies (about 256M of bge-m3's 568M parameters are the embedding table): conservative.
- Per-step scheduling and sampling overheads are not modelled: TensorRT-LLM 0.9's static-batching
  runtime measured well below this model at long outputs; its in-flight-batching tables (0.17,
  1.0) do not (see bench/results/throughput.md).
- All-reduce over PCIe takes the link's nominal rate: TensorRT-LLM 0.17 measured L40S at TP 4/8
  1.3-1.7x below this model (multi-socket PCIe topologies reach less).
- A fractional instance (e.g. 1/8 of a GPU) gets that fraction of memory, bandwidth and FLOPS.
- Queueing delay is not modelled: it is absorbed by the target utilisation.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from planner.errors import InputError, Problem
from planner.input.schema import ModelSpec

# --------------------------------------------------------------------------- constants
GIB = 2**30
#: vLLM's default gpu_memory_utilization.
USABLE_MEMORY_FRACTION = 0.9
#: Model-FLOPs utilisation of prefill and of compute-bound decode (TensorRT-LLM 1.0 tables).
MFU = 0.5
#: Memory-bandwidth utilisation of decode (Databricks MBU figures).
MBU = 0.7
#: Bytes of an activation element in tensor-parallel all-reduces (BF16/FP16).
ACTIVATION_BYTES = 2
#: Bytes per element by precision.
PRECISION_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int4": 0.5}
PRECISIONS = tuple(PRECISION_BYTES)
#: Tensor-parallel degrees tried, smallest first.
TP_SIZES = (1, 2, 4, 8)
#: All-reduces per transformer layer under tensor parallelism (after attention, after the MLP).
ALLREDUCES_PER_LAYER = 2
#: Latency of one all-reduce message, seconds, by link kind.
ALLREDUCE_LATENCY_S = {"fabric": 5e-6, "pcie": 15e-6}
#: PCIe x16 bidirectional GB/s assumed when the catalog has no interconnect figure.
PCIE_ASSUMED_GB_S = {"gen4": 64.0, "gen5": 128.0}
#: Architectures with FP8 tensor cores (a part of these without an fp8 figure runs FP8 at BF16 rate).
FP8_ARCHITECTURES = ("hopper", "ada", "blackwell", "cdna 3")
#: Default concurrent sequences per replica (vLLM's max_num_seqs default).
DEFAULT_MAX_BATCH_SEQUENCES = 256
#: Default target utilisation (Policies.target_utilisation).
DEFAULT_TARGET_UTILISATION = 0.8
#: Default KV reserve as a fraction of weight bytes (Policies.kv_reserve_fraction).
DEFAULT_KV_RESERVE_FRACTION = 0.2
#: accelerator -> (twin whose facts fill its blanks, why that is honest).
PROXIES = {"A10G": ("A10", "same GA102 die: AWS's variant of the A10")}
REGIMES = ("compute", "bandwidth", "kv_capacity", "batch_cap", "ttft", "tpot")

_FABRIC_MARKERS = ("SXM", "OAM", "NVL", "SUPERCHIP")


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


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


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
    fp8_tflops: float | None = None
    architecture: str = ""
    interconnect_kind: str = ""  # catalog column `interconnect` (nvlink, pcie4, nvlink-bridge, ...)
    interconnect_gb_s: float | None = None
    proxy: str | None = None  # the twin whose facts filled blanks (PROXIES)

    @classmethod
    def from_row(cls, name: str, row: Mapping) -> AcceleratorSpec:
        """Build from a catalog row (a dict or a pandas Series); NaN or blank cells become None
        (a missing memory size becomes 0, which fits nothing)."""
        return cls(
            name=str(name),
            memory_gib=_num(row.get("memory_gib")) or 0.0,
            memory_bandwidth_gb_s=_num(row.get("memory_bandwidth_gb_s")),
            bf16_tflops=_num(row.get("bf16_tflops")),
            fp16_tflops=_num(row.get("fp16_tflops")),
            form_factor=_text(row.get("form_factor")),
            tdp_watts=_num(row.get("tdp_watts")),
            fp8_tflops=_num(row.get("fp8_tflops")),
            architecture=_text(row.get("architecture")),
            interconnect_kind=_text(row.get("interconnect")),
            interconnect_gb_s=_num(row.get("interconnect_gb_s")),
        )

    def filled_from(self, twin: AcceleratorSpec) -> AcceleratorSpec:
        """This part with its blank facts (only those) taken from ``twin``."""
        upd = {}
        for f in ("memory_bandwidth_gb_s", "bf16_tflops", "fp16_tflops", "tdp_watts", "fp8_tflops",
                  "interconnect_gb_s"):
            if getattr(self, f) is None and getattr(twin, f) is not None:
                upd[f] = getattr(twin, f)
        if self.memory_gib <= 0 and twin.memory_gib > 0:
            upd["memory_gib"] = twin.memory_gib
        if not self.architecture:
            upd["architecture"] = twin.architecture
        if not self.interconnect_kind and twin.interconnect_kind:
            upd["interconnect_kind"] = twin.interconnect_kind
        return replace(self, proxy=twin.name, **upd)

    @property
    def interconnect(self) -> str:
        """``"nvlink"`` for SXM, OAM, NVL and superchip forms (a GPU-to-GPU fabric), else ``"pcie"``."""
        text = self.form_factor.upper()
        return "nvlink" if any(m in text for m in _FABRIC_MARKERS) else "pcie"

    @property
    def tflops(self) -> float | None:
        """Dense BF16 TFLOPS, else dense FP16, else None."""
        for v in (self.bf16_tflops, self.fp16_tflops):
            if v is not None and v > 0:
                return v
        return None

    @property
    def fp8_capable(self) -> bool:
        arch = self.architecture.lower()
        return any(a in arch for a in FP8_ARCHITECTURES)

    def link(self, tp: int) -> tuple[float, float, str | None]:
        """(bidirectional GB/s per GPU, per-message latency s, note) of the TP group of ``tp`` GPUs."""
        kind = self.interconnect_kind.lower()
        arch = self.architecture.lower()
        gen = "gen5" if ("hopper" in arch or "blackwell" in arch) else "gen4"
        pcie = PCIE_ASSUMED_GB_S[gen]
        if kind == "nvlink-bridge":
            if tp <= 2 and self.interconnect_gb_s:
                return self.interconnect_gb_s, ALLREDUCE_LATENCY_S["fabric"], None
            return pcie, ALLREDUCE_LATENCY_S["pcie"], (
                f"assumed: NVLink bridges link pairs only; TP {tp} runs over PCIe {gen.title()} x16 ({pcie:g} GB/s)")
        if self.interconnect_gb_s:
            lat = ALLREDUCE_LATENCY_S["pcie" if kind.startswith("pcie") else "fabric"]
            return self.interconnect_gb_s, lat, None
        return pcie, ALLREDUCE_LATENCY_S["pcie"], (
            f"assumed: no interconnect figure for {self.name}; PCIe {gen.title()} x16 ({pcie:g} GB/s)")


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


def with_proxies(accs: Mapping[str, AcceleratorSpec]) -> dict[str, AcceleratorSpec]:
    """The accelerators with each ``PROXIES`` entry's blanks filled from its twin (when the part
    lacks facts the estimate needs and the twin has them)."""
    out = dict(accs)
    for name, (twin, _why) in PROXIES.items():
        a, t = out.get(name), accs.get(twin)
        if a is not None and t is not None and usable_without_profile(a) is not None:
            out[name] = a.filled_from(t)
    return out


# --------------------------------------------------------------------------- model facts
@dataclass(frozen=True)
class Precisions:
    weights: str
    kv: str


def precisions(model: ModelSpec, weight_precision: str | None = None, kv_cache_precision: str | None = None
               ) -> Precisions:
    return Precisions(weight_precision or model.weight_precision, kv_cache_precision or model.kv_cache_precision)


def weight_bytes(model: ModelSpec, weight_precision: str | None = None) -> float:
    """Bytes of all weights (every expert of a MoE)."""
    return model.total_params_b * 1e9 * PRECISION_BYTES[weight_precision or model.weight_precision]


def active_weight_bytes(model: ModelSpec, weight_precision: str | None = None) -> float:
    """Bytes of the weights one token reads (the active experts of a MoE)."""
    return model.active_params_b * 1e9 * PRECISION_BYTES[weight_precision or model.weight_precision]


def step_weight_bytes(model: ModelSpec, batch: float, weight_precision: str | None = None) -> float:
    """Bytes of weights one decode step of ``batch`` tokens reads: all of a dense model; for a MoE
    the shared weights plus the expected share of experts some token routes to (uniform routing)."""
    bpp = PRECISION_BYTES[weight_precision or model.weight_precision]
    if model.experts <= 1 or model.total_params_b <= model.active_params_b:
        return model.active_params_b * 1e9 * bpp
    frac = model.experts_per_token / model.experts
    expert_total = (model.total_params_b - model.active_params_b) / (1.0 - frac)
    shared = max(model.total_params_b - expert_total, 0.0)
    touched = 1.0 - (1.0 - frac) ** max(batch, 1.0)
    return (shared + expert_total * touched) * 1e9 * bpp


def kv_bytes_per_token(model: ModelSpec, kv_cache_precision: str | None = None) -> float:
    """KV cache bytes per token: 2 (K and V) x layers x kv_heads x head_dim x element bytes."""
    return 2.0 * model.layers * model.kv_heads * model.head_dim * PRECISION_BYTES[
        kv_cache_precision or model.kv_cache_precision]


def usable_memory_bytes(acc: AcceleratorSpec, gpus: float) -> float:
    return USABLE_MEMORY_FRACTION * acc.memory_gib * GIB * gpus


def compute_tflops(acc: AcceleratorSpec, weight_precision: str) -> tuple[float | None, str | None]:
    """(dense TFLOPS the replica computes at, note): FP8 figure iff fp8 weights and the part has
    one; else BF16/FP16 (int4 is weight-only)."""
    if weight_precision == "fp8":
        if acc.fp8_tflops:
            return acc.fp8_tflops, None
        if acc.fp8_capable:
            return acc.tflops, f"{acc.name} has no FP8 TFLOPS figure in the catalog: FP8 at the BF16 rate"
        return acc.tflops, f"{acc.name} has no FP8 tensor cores: fp8 weights computed at the BF16/FP16 rate"
    return acc.tflops, None


def comm_seconds(model: ModelSpec, acc: AcceleratorSpec, tp: int, tokens: float) -> float:
    """Seconds of tensor-parallel all-reduces for a step of ``tokens`` tokens (0 at tp 1)."""
    if tp <= 1:
        return 0.0
    gb_s, lat, _ = acc.link(tp)
    per_msg = 2.0 * (tp - 1) / tp * model.hidden_size * ACTIVATION_BYTES * tokens
    return ALLREDUCES_PER_LAYER * model.layers * (per_msg / (gb_s / 2.0 * 1e9) + lat)


# --------------------------------------------------------------------------- replica shape
@dataclass(frozen=True)
class ReplicaShape:
    gpus: float  # GPUs one replica uses (tp size, or the instance's fraction for a fractional instance)
    tp: int  # tensor-parallel degree (1 for fractional)
    replicas_per_instance: int


def _fits(model: ModelSpec, acc: AcceleratorSpec, gpus: float, kv_reserve_fraction: float,
          weight_precision: str | None = None) -> bool:
    return weight_bytes(model, weight_precision) * (1.0 + kv_reserve_fraction) <= usable_memory_bytes(acc, gpus)


def replica_shapes(model: ModelSpec, acc: AcceleratorSpec, instance_gpus: float, max_tp: int = 8,
                   kv_reserve_fraction: float = DEFAULT_KV_RESERVE_FRACTION,
                   weight_precision: str | None = None) -> list[ReplicaShape]:
    """Every shape whose memory holds the weights plus the KV reserve, smallest TP first: TP
    degrees in ``TP_SIZES`` up to the instance's GPUs and ``max_tp``; a fractional instance
    (< 1 GPU) hosts one replica on the whole fraction if the model fits in it."""
    if instance_gpus <= 0:
        return []
    if instance_gpus < 1:
        if _fits(model, acc, instance_gpus, kv_reserve_fraction, weight_precision):
            return [ReplicaShape(gpus=float(instance_gpus), tp=1, replicas_per_instance=1)]
        return []
    limit = min(instance_gpus, max_tp)
    return [ReplicaShape(gpus=float(tp), tp=tp, replicas_per_instance=int(math.floor(instance_gpus / tp)))
            for tp in TP_SIZES if tp <= limit and _fits(model, acc, tp, kv_reserve_fraction, weight_precision)]


def replica_shape(model: ModelSpec, acc: AcceleratorSpec, instance_gpus: float, max_tp: int = 8,
                  kv_reserve_fraction: float = DEFAULT_KV_RESERVE_FRACTION,
                  weight_precision: str | None = None) -> ReplicaShape | None:
    """The smallest fitting shape (see :func:`replica_shapes`); None if nothing fits."""
    shapes = replica_shapes(model, acc, instance_gpus, max_tp, kv_reserve_fraction, weight_precision)
    return shapes[0] if shapes else None


# --------------------------------------------------------------------------- estimate
@dataclass(frozen=True)
class Estimate:
    rps: float  # planning requests/s per replica (max_rps x target utilisation); 0.0 when it cannot serve
    source: str  # "model" or "profile"
    limit: str  # the regime, "profile", or "infeasible: <why>"
    batch: float  # concurrent sequences used in the estimate (0 for prefill-only)
    prefill_s: float  # prefill time of one request (s)
    step_s: float  # decode step time at that batch (s), 0 for prefill-only
    max_rps: float = 0.0  # saturation requests/s per replica
    regime: str = ""  # compute|bandwidth|kv_capacity|batch_cap|ttft|tpot ("" when infeasible or measured)
    rate_source: str = "estimate"  # profile|estimate|proxy
    notes: tuple[str, ...] = field(default=())

    @property
    def planning_rps(self) -> float:
        return self.rps


def _infeasible(why: str, prefill_s: float = 0.0, step_s: float = 0.0, source: str = "model",
                rate_source: str = "estimate", notes: tuple[str, ...] = ()) -> Estimate:
    return Estimate(rps=0.0, source=source, limit=f"infeasible: {why}", batch=0.0, prefill_s=prefill_s,
                    step_s=step_s, rate_source=rate_source, notes=notes)


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
    weight_precision: str | None = None,
    kv_cache_precision: str | None = None,
    max_batch_sequences: int = DEFAULT_MAX_BATCH_SEQUENCES,
) -> Estimate:
    """Estimated saturation and planning requests/s of one replica of ``model`` on ``shape`` x
    ``acc`` for a query of ``input_tokens`` in / ``output_tokens`` out (see the module docstring).

    Raises ValueError when ``acc`` lacks a bandwidth or TFLOPS figure (see
    :func:`usable_without_profile`)."""
    why = usable_without_profile(acc)
    if why is not None:
        raise ValueError(f"{acc.name}: {why}")
    assert acc.memory_bandwidth_gb_s is not None
    prec = precisions(model, weight_precision, kv_cache_precision)
    rate_source = "proxy" if acc.proxy else "estimate"
    notes: list[str] = [f"proxy: {acc.proxy}"] if acc.proxy else []
    tflops, note = compute_tflops(acc, prec.weights)
    assert tflops is not None
    if note:
        notes.append(note)
    if shape.tp > 1:
        _gb, _lat, link_note = acc.link(shape.tp)
        if link_note:
            notes.append(link_note)
    nt = tuple(notes)
    context = input_tokens + output_tokens
    if context > model.max_context_tokens:
        return _infeasible(f"context {context} tokens exceeds {model.id}'s maximum of {model.max_context_tokens}",
                           rate_source=rate_source, notes=nt)

    flop_rate = tflops * 1e12 * shape.gpus * MFU  # FLOP/s
    mem_rate = acc.memory_bandwidth_gb_s * 1e9 * shape.gpus * MBU  # bytes/s
    flop_per_token = 2.0 * model.active_params_b * 1e9
    n_in = max(input_tokens * (1.0 - prefix_cache_rate), 1.0)
    prefill_s = flop_per_token * n_in / flop_rate + comm_seconds(model, acc, shape.tp, n_in)

    def done(batch: float, step_s: float, regime: str) -> Estimate:
        mx = 1.0 / prefill_s if output_tokens <= 0 else batch / (output_tokens * step_s + prefill_s * batch)
        return Estimate(rps=target_utilisation * mx, source="model", limit=regime, batch=float(batch),
                        prefill_s=prefill_s, step_s=step_s, max_rps=mx, regime=regime, rate_source=rate_source,
                        notes=nt)

    if ttft_ms is not None and prefill_s * 1e3 > ttft_ms:
        return _infeasible(f"ttft: prefill takes {prefill_s * 1e3:.0f} ms > TTFT target {ttft_ms:g} ms",
                           prefill_s=prefill_s, rate_source=rate_source, notes=nt)
    if output_tokens <= 0:  # prefill-only: batched, compute-bound forward passes
        return done(0.0, 0.0, "compute")

    w_total = weight_bytes(model, prec.weights)
    kv_tok = kv_bytes_per_token(model, prec.kv)
    kv_ctx = kv_tok * (input_tokens + output_tokens / 2.0)  # KV bytes a sequence holds and reads per step, on average

    def parts(b: float) -> tuple[float, float, float]:
        """(memory s, compute s, comm s) of a decode step of b sequences."""
        return ((step_weight_bytes(model, b, prec.weights) + b * kv_ctx) / mem_rate,
                flop_per_token * b / flop_rate, comm_seconds(model, acc, shape.tp, b))

    def step(b: float) -> float:
        mem, comp, comm = parts(b)
        return max(mem, comp) + comm

    kv_budget = usable_memory_bytes(acc, shape.gpus) - w_total
    if kv_budget < kv_tok * context:
        return _infeasible(f"memory: the KV cache of one {context}-token sequence does not fit beside the weights",
                           prefill_s=prefill_s, rate_source=rate_source, notes=nt)
    b_kv = max(int(math.floor(kv_budget / kv_ctx)), 1)
    batch, regime = (b_kv, "kv_capacity") if b_kv < max_batch_sequences else (int(max_batch_sequences), "batch_cap")

    def largest(budget_s: float) -> int:
        """Largest b <= batch with step(b) <= budget_s (0 if b = 1 is too slow); step is increasing."""
        if step(1) > budget_s * (1 + 1e-12):
            return 0
        lo, hi = 1, batch
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if step(mid) <= budget_s * (1 + 1e-12):
                lo = mid
            else:
                hi = mid - 1
        return lo

    step1 = step(1)
    if tpot_ms is not None:
        b_tpot = largest(tpot_ms / 1e3)
        if b_tpot < 1:
            return _infeasible(f"tpot: one decode step takes {step1 * 1e3:.1f} ms > TPOT target {tpot_ms:g} ms",
                               prefill_s=prefill_s, step_s=step1, rate_source=rate_source, notes=nt)
        if b_tpot < batch:
            batch, regime = b_tpot, "tpot"
    if ttft_ms is not None:
        b_ttft = largest(ttft_ms / 1e3 - prefill_s)
        if b_ttft < 1:
            return _infeasible(f"ttft: prefill {prefill_s * 1e3:.0f} ms + one decode step {step1 * 1e3:.1f} ms "
                               f"> TTFT target {ttft_ms:g} ms", prefill_s=prefill_s, step_s=step1,
                               rate_source=rate_source, notes=nt)
        if b_ttft < batch:
            batch, regime = b_ttft, "ttft"
    mem, comp, _comm = parts(batch)
    if regime in ("kv_capacity", "batch_cap"):
        if comp > mem:
            regime = "compute"
        elif batch * kv_ctx >= step_weight_bytes(model, batch, prec.weights):
            regime = "bandwidth"
    return done(batch, step(batch), regime)


# --------------------------------------------------------------------------- profiles
_PROFILE_REQUIRED = ("model", "accelerator", "input_tokens", "output_tokens", "max_rps_per_replica")
_PROFILE_OPTIONAL = ("ttft_ms", "tpot_ms", "tensor_parallel", "weight_precision")


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
    tensor_parallel: int | None = None  # the TP degree it was measured at (None: the smallest that fits)
    weight_precision: str | None = None  # the weights it was measured with (None: the model's default)


class ThroughputProfile:
    """Measured profile CSV: model, accelerator, input_tokens, output_tokens, max_rps_per_replica,
    optional ttft_ms, tpot_ms, tensor_parallel, weight_precision.

    ``max_rps_per_replica`` is the saturation throughput one replica sustained in a load test
    while meeting the row's ``ttft_ms`` / ``tpot_ms`` if given; ``0`` means the replica cannot
    serve that class. A row fixes the shape it was measured at: ``tensor_parallel`` (blank: the
    smallest TP degree that fits, see :func:`replica_shape`); it never applies per replica of
    another shape. ``weight_precision`` (blank: the model's) says which workloads it applies to.
    Like the model estimate, it is multiplied by the target utilisation before the planner uses it.
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
        fix_header = (f"the header must be {','.join(_PROFILE_REQUIRED)}[,ttft_ms][,tpot_ms][,tensor_parallel]"
                      "[,weight_precision]")
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
            wp = values.get("weight_precision") or None
            if wp is not None and wp not in PRECISION_BYTES:
                bad("weight_precision", f"unknown precision {wp!r}", wp,
                    f"write one of {', '.join(PRECISIONS)} or leave it blank")
                ok = False
            for col, integer, minimum in (("input_tokens", True, 1), ("output_tokens", True, 0),
                                          ("max_rps_per_replica", False, 0.0), ("ttft_ms", False, None),
                                          ("tpot_ms", False, None), ("tensor_parallel", True, 1)):
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
                if col == "tensor_parallel":
                    good = math.isfinite(x) and x in TP_SIZES
                    need = f"one of {', '.join(map(str, TP_SIZES))}"
                elif integer:
                    good = math.isfinite(x) and x == int(x) and x >= minimum
                    need = f"a whole number >= {minimum}"
                elif minimum is not None:
                    good = math.isfinite(x) and x >= minimum
                    need = "a number >= 0 (0 = cannot serve this class)"
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
                    tensor_parallel=None if parsed["tensor_parallel"] is None else int(parsed["tensor_parallel"]),
                    weight_precision=wp,
                ))
        if problems:
            raise InputError(problems)
        return cls(rows, path)

    def has(self, model: str, accelerator: str) -> bool:
        return (model, accelerator) in self._by_pair

    def shapes(self, model: str, accelerator: str, weight_precision: str) -> list[int | None]:
        """TP degrees (None: the smallest that fits) the rows of (model, accelerator) were measured at."""
        return sorted({r.tensor_parallel for r in self._by_pair.get((model, accelerator), ())
                       if r.weight_precision in (None, weight_precision)}, key=lambda t: (t is not None, t or 0))

    def lookup(
        self,
        model: str,
        accelerator: str,
        input_tokens: int,
        output_tokens: int,
        ttft_ms: float | None,
        tpot_ms: float | None,
        tensor_parallel: int | None = None,
        weight_precision: str | None = None,
    ) -> float | None:
        """The measured rps valid for this query, or None.

        A row is valid when it is for (model, accelerator), for this shape (``tensor_parallel``,
        None matching rows without the column) and weight precision (a blank row matches any),
        its SLO columns (where given) are at most the workload's targets (measured under a
        tighter-or-equal SLO), and its input_tokens / output_tokens are at least the query's. Of
        those, the row with the smallest (input_tokens, output_tokens) - the closest conservative
        one - and, on a tie, the lowest rate."""
        best: tuple[int, int, float] | None = None
        for r in self._by_pair.get((model, accelerator), ()):
            if r.tensor_parallel != tensor_parallel:
                continue
            if weight_precision is not None and r.weight_precision not in (None, weight_precision):
                continue
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
#: A query class as the shape choice weighs it: (share, input_tokens, output_tokens, prefix_cache_rate).
ClassLoad = tuple[float, int, int, float]


class ThroughputModel:
    """Memoised facade used by the candidate/MILP stages."""

    def __init__(
        self,
        models: Mapping[str, ModelSpec],
        accelerators: Mapping[str, AcceleratorSpec],
        profile: ThroughputProfile | None = None,
        target_utilisation: float = DEFAULT_TARGET_UTILISATION,
        kv_reserve_fraction: float = DEFAULT_KV_RESERVE_FRACTION,
        max_batch_sequences: int = DEFAULT_MAX_BATCH_SEQUENCES,
    ):
        self.models = dict(models)
        self.accelerators = with_proxies(accelerators)
        self.profile = profile
        self.target_utilisation = target_utilisation
        self.kv_reserve_fraction = kv_reserve_fraction
        self.max_batch_sequences = max_batch_sequences
        self._shapes: dict[tuple, list[ReplicaShape]] = {}
        self._rates: dict[tuple, Estimate] = {}
        self._best: dict[tuple, tuple[ReplicaShape, list[Estimate]] | None] = {}

    def shapes(self, model_id: str, accelerator: str, instance_gpus: float, max_tp: int = 8,
               weight_precision: str | None = None) -> list[ReplicaShape]:
        """Every shape of ``model_id`` that fits an instance of ``instance_gpus`` x ``accelerator``
        (smallest TP first); [] if none (or either id is unknown)."""
        key = (model_id, accelerator, float(instance_gpus), int(max_tp), weight_precision)
        if key not in self._shapes:
            model = self.models.get(model_id)
            acc = self.accelerators.get(accelerator)
            self._shapes[key] = (
                [] if model is None or acc is None
                else replica_shapes(model, acc, instance_gpus, max_tp, self.kv_reserve_fraction, weight_precision)
            )
        return self._shapes[key]

    def shape(self, model_id: str, accelerator: str, instance_gpus: float, max_tp: int = 8,
              weight_precision: str | None = None) -> ReplicaShape | None:
        """The smallest shape that fits; None if nothing fits (or either id is unknown)."""
        shapes = self.shapes(model_id, accelerator, instance_gpus, max_tp, weight_precision)
        return shapes[0] if shapes else None

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
        weight_precision: str | None = None,
        kv_cache_precision: str | None = None,
        max_batch_sequences: int | None = None,
    ) -> Estimate:
        """Requests/s of one replica: the profile's row if one applies, else the model estimate."""
        key = (model_id, accelerator, shape, int(input_tokens), int(output_tokens), ttft_ms, tpot_ms,
               float(prefix_cache_rate), weight_precision, kv_cache_precision, max_batch_sequences)
        if key not in self._rates:
            self._rates[key] = self._rps(*key)
        return self._rates[key]

    def _rps(self, model_id: str, accelerator: str, shape: ReplicaShape, input_tokens: int, output_tokens: int,
             ttft_ms: float | None, tpot_ms: float | None, prefix_cache_rate: float, weight_precision: str | None,
             kv_cache_precision: str | None, max_batch_sequences: int | None) -> Estimate:
        model = self.models.get(model_id)
        if model is None:
            return _infeasible(f"unknown model {model_id!r}")
        wp = weight_precision or model.weight_precision
        if self.profile is not None and self.profile.has(model_id, accelerator):
            smallest = self.shape(model_id, accelerator, shape.gpus if shape.gpus < 1 else 8, shape.tp, wp)
            tps = [shape.tp] + ([None] if smallest is not None and smallest.tp == shape.tp else [])
            for tp in tps:
                measured = self.profile.lookup(model_id, accelerator, input_tokens, output_tokens, ttft_ms, tpot_ms,
                                               tp, wp)
                if measured is None:
                    continue
                if measured <= 0:
                    return _infeasible("profile: max_rps_per_replica is 0 (cannot serve this class)",
                                       source="profile", rate_source="profile")
                return Estimate(rps=measured * self.target_utilisation, source="profile", limit="profile",
                                batch=0.0, prefill_s=0.0, step_s=0.0, max_rps=measured, regime="",
                                rate_source="profile")
        acc = self.accelerators.get(accelerator)
        if acc is None:
            return _infeasible(f"unknown accelerator {accelerator!r}")
        why = usable_without_profile(acc)
        if why is not None:
            return _infeasible(why)
        return estimate_rps(model, acc, shape, input_tokens, output_tokens, ttft_ms, tpot_ms, prefix_cache_rate,
                            self.target_utilisation, weight_precision, kv_cache_precision,
                            max_batch_sequences or self.max_batch_sequences)

    def best_shape(
        self,
        model_id: str,
        accelerator: str,
        instance_gpus: float,
        max_tp: int,
        classes: Sequence[ClassLoad],
        ttft_ms: float | None,
        tpot_ms: float | None,
        weight_precision: str | None = None,
        kv_cache_precision: str | None = None,
        max_batch_sequences: int | None = None,
    ) -> tuple[ReplicaShape, list[Estimate]] | None:
        """The shape with the highest class-mix-weighted planning rps per GPU, with its estimate
        per class (in ``classes`` order); None if no shape fits. The mix rate is harmonic over the
        classes' shares (1 / sum share_k / rps_k), over the classes the shape can serve; a shape
        serving more classes wins first, a smaller TP degree breaks ties. A measured profile for
        (model, accelerator) restricts the shapes to those it was measured at."""
        key = (model_id, accelerator, float(instance_gpus), int(max_tp), tuple(classes), ttft_ms, tpot_ms,
               weight_precision, kv_cache_precision, max_batch_sequences)
        if key in self._best:
            return self._best[key]
        model = self.models.get(model_id)
        wp = weight_precision or (model.weight_precision if model is not None else None)
        shapes = self.shapes(model_id, accelerator, instance_gpus, max_tp, wp)
        if shapes and self.profile is not None and self.profile.has(model_id, accelerator):
            measured = self.profile.shapes(model_id, accelerator, wp or "")
            if measured:
                allowed = {shapes[0].tp if t is None else t for t in measured}
                shapes = [s for s in shapes if s.tp in allowed]
        best = None
        best_score: tuple[int, float] | None = None
        for sh in shapes:
            ests = [self.rps(model_id, accelerator, sh, i, o, ttft_ms, tpot_ms, p, weight_precision,
                             kv_cache_precision, max_batch_sequences) for (_s, i, o, p) in classes]
            served = [(c[0], e.rps) for c, e in zip(classes, ests, strict=True) if e.rps > 0]
            z = sum(s for s, _ in served)
            inv = sum(s / r for s, r in served)
            mix = (z / inv) / sh.gpus if served and inv > 0 else 0.0
            score = (len(served), mix)
            if best_score is None or score[0] > best_score[0] or (score[0] == best_score[0] and
                                                                 score[1] > best_score[1] * (1 + 1e-9)):
                best, best_score = (sh, ests), score
        self._best[key] = best
        return best
