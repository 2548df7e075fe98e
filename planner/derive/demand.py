"""Load per workload, query class, user region and UTC time slot.

- A user region's 24-value profile is in its local time; local hour = (UTC hour + offset) mod 24
  (a fractional offset such as +5.5 takes the local hour it falls in).
- A slot's rate is the **max** over its hours (capacity must carry the peak exactly); volumes
  (requests per month, egress, cost per request) use the **mean** over its hours.
- Response cache hits do no GPU work: GPU load = rate x (1 - cache_hit_rate).
- Escalation: every non-cached request runs on the small workload's model; a share
  ``escalation_share`` of them also runs on the escalated workload's model, with the small
  workload's query classes (the same prompts), routed like the large workload's own traffic.
- Batch work: ``tokens_per_day`` splits over query classes by share; class k needs
  tokens_per_day x share_k / input_tokens_k requests per day, done in any slot of the window.
- A month is ``hours_per_month`` hours: a slot of h hours occurs h x hours_per_month / 24 hours a month.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from planner.input.schema import QueryClass, Scenario, TimeSlot


@dataclass(frozen=True)
class LoadClass:
    """A stream of requests a workload's model serves: its own query class, or one escalated
    from a smaller workload (``origin`` != the serving workload)."""

    key: str
    origin: str
    qclass: QueryClass
    escalated: bool


@dataclass
class WorkloadLoad:
    workload_id: str
    classes: list[LoadClass]
    #: peak GPU-bound rate (rps) by (class key, user region, slot id), after cache hits
    peak_rps: dict[tuple[str, str, str], float] = field(default_factory=dict)
    #: mean GPU-bound rate (rps) by (class key, user region, slot id)
    mean_rps: dict[tuple[str, str, str], float] = field(default_factory=dict)
    #: all requests (incl. cache hits) per month by (class key, user region, slot) - own classes
    #: only; batch work is keyed (class key, "", "") since its slots are a decision
    requests_per_month: dict[tuple[str, str, str], float] = field(default_factory=dict)
    #: batch: requests per day by class key
    batch_requests_per_day: dict[str, float] = field(default_factory=dict)
    #: batch: slots of the allowed window
    batch_slots: list[str] = field(default_factory=list)

    def user_regions(self) -> list[str]:
        return sorted({u for (_, u, _) in self.peak_rps})

    def peak(self, slot: str) -> float:
        return sum(v for (_, _, t), v in self.peak_rps.items() if t == slot)

    def loaded(self) -> set[tuple[str, str]]:
        """(class key, user region) pairs with load in some slot."""
        return {(k, u) for (k, u, _t), v in self.peak_rps.items() if v > 0}

    def slot_mix(self, slot: str) -> dict[str, float]:
        """Load of each class in ``slot``: peak rps summed over user regions (batch: requests/day)."""
        if self.batch_requests_per_day:
            return dict(self.batch_requests_per_day)
        tot = {lc.key: 0.0 for lc in self.classes}
        for (k, _u, t), v in self.peak_rps.items():
            if t == slot:
                tot[k] += v
        return tot


def mix_rate(wl: WorkloadLoad, slot: str, rho: dict[str, float], mix: dict[str, float] | None = None) -> float:
    """Requests/s of a workload's class mix in ``slot`` one replica carries, given its per-class
    rates ``rho``: 1 / sum_k (share_k / rho_k) over the classes it can serve (rho_k > 0). A slot
    without load uses the query classes' shares. The measure of the spot cap (and of nothing
    that a class-by-class row can check exactly)."""
    tot = dict(mix) if mix is not None else wl.slot_mix(slot)
    z = sum(tot.values())
    if z <= 0:
        tot = {lc.key: lc.qclass.share for lc in wl.classes}
        z = sum(tot.values())
    inv = sum((tot[k] / z) / rho[k] for k in tot if rho.get(k, 0.0) > 0)
    return 1.0 / inv if inv > 0 else 0.0


def slot_hours(slot: TimeSlot) -> list[int]:
    return list(range(slot.start_hour, slot.end_hour))


def hours_per_month_of_slot(slot: TimeSlot, hours_per_month: float) -> float:
    return slot.hours * hours_per_month / 24.0


def local_multipliers(profile: list[float], offset: float, slot: TimeSlot) -> list[float]:
    return [profile[int(math.floor(h + offset)) % 24] for h in slot_hours(slot)]


def build_loads(scenario: Scenario, utc_offsets: dict[str, float]) -> dict[str, WorkloadLoad]:
    """Per workload, the GPU load it must serve (its own plus escalations into it)."""
    hpm = scenario.policies.hours_per_month
    days = hpm / 24.0
    loads: dict[str, WorkloadLoad] = {}
    for w in scenario.workloads:
        classes = [LoadClass(key=q.id, origin=w.id, qclass=q, escalated=False) for q in w.query_classes]
        wl = WorkloadLoad(workload_id=w.id, classes=classes)
        if w.is_batch:
            assert w.batch is not None
            for q in w.query_classes:
                wl.batch_requests_per_day[q.id] = w.batch.tokens_per_day * q.share / q.input_tokens
                wl.requests_per_month[(q.id, "", "")] = wl.batch_requests_per_day[q.id] * days
            window = set(w.batch.hours())
            wl.batch_slots = [t.id for t in scenario.time_slots if set(slot_hours(t)) <= window]
        loads[w.id] = wl
    for w in scenario.workloads:
        if w.is_batch:
            continue
        wl = loads[w.id]
        gpu_share = 1.0 - w.cache_hit_rate
        targets = [(wl, "", 1.0)]
        if w.routing is not None and w.routing.escalate_to in loads:
            big = loads[w.routing.escalate_to]
            prefix = f"{w.id}~"
            for q in w.query_classes:
                big.classes.append(LoadClass(key=prefix + q.id, origin=w.id, qclass=q, escalated=True))
            targets.append((big, prefix, w.routing.escalation_share))
        for d in w.demand:
            off = utc_offsets[d.user_region]
            for t in scenario.time_slots:
                mults = local_multipliers(d.profile, off, t)
                peak, mean = d.peak_rps * max(mults), d.peak_rps * sum(mults) / len(mults)
                for q in w.query_classes:
                    for target, prefix, factor in targets:
                        k = (prefix + q.id, d.user_region, t.id)
                        target.peak_rps[k] = target.peak_rps.get(k, 0.0) + peak * q.share * gpu_share * factor
                        target.mean_rps[k] = target.mean_rps.get(k, 0.0) + mean * q.share * gpu_share * factor
                    rk = (q.id, d.user_region, t.id)
                    wl.requests_per_month[rk] = wl.requests_per_month.get(rk, 0.0) + (
                        mean * q.share * 3600.0 * hours_per_month_of_slot(t, hpm)
                    )
    return loads


def response_gb(res, loads: dict[str, WorkloadLoad], w: str, u: str, t: str) -> float:
    """GB/month of responses to users in u in slot t: requests x (output tokens x bytes/token + overhead)."""
    pol = res.scenario.policies
    wk = res.scenario.workload(w)
    by_q = {q.id: q for q in wk.query_classes}
    total = 0.0
    for (k, uu, tt), n in loads[w].requests_per_month.items():
        if uu == u and tt == t and k in by_q:
            total += n * (by_q[k].output_tokens * pol.bytes_per_output_token + pol.response_overhead_bytes)
    return total / 1e9
