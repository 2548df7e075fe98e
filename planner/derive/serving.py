"""How a workload runs on an offer: the replica shape and the rate of each of its load classes.

One definition for the candidate filter, the greedy start and the independent check: the shape
is the one with the highest class-mix-weighted planning rps per GPU
(:meth:`planner.derive.throughput.ThroughputModel.best_shape`), with the workload's precision and
batch overrides.
"""

from __future__ import annotations

from planner.derive.demand import LoadClass
from planner.derive.throughput import Estimate, ReplicaShape


def workload_rates(res, w, classes: list[LoadClass], offer, site) -> tuple[ReplicaShape, dict[str, Estimate]] | None:
    """(shape, estimate per load class key) of workload ``w`` on ``offer`` at ``site``; None when
    the model fits no shape there."""
    s = res.scenario
    loads = [(lc.qclass.share, lc.qclass.input_tokens, lc.qclass.output_tokens,
              s.workload(lc.origin).prefix_cache_rate) for lc in classes]
    got = res.throughput.best_shape(w.model, offer.accelerator, *site.replica_room(offer), loads,
                                    w.latency.ttft_ms, w.latency.tpot_ms, w.weight_precision,
                                    w.kv_cache_precision, w.max_batch_sequences)
    if got is None:
        return None
    shape, ests = got
    return shape, {lc.key: e for lc, e in zip(classes, ests, strict=True)}


def throughput_notes(res) -> list[str]:
    """One note per offered accelerator the estimate fills from a proxy or cannot estimate (no
    offer leaves the plan silently); a part with a measured profile row is usable as measured."""
    from planner.derive.throughput import PROXIES, usable_without_profile

    tm = res.throughput
    by_acc: dict[str, set[str]] = {}
    for sid, site in res.sites.items():
        for o in site.offers:
            by_acc.setdefault(o.accelerator, set()).add(sid)
    notes = []
    for name in sorted(by_acc):
        acc = tm.accelerators.get(name)
        sites = sorted(by_acc[name])
        where = f"{len(sites)} site{'s' if len(sites) != 1 else ''} ({', '.join(sites[:3])}{', ...' if len(sites) > 3 else ''})"
        measured = tm.profile is not None and any(r.accelerator == name for r in tm.profile.rows)
        if acc is None:
            notes.append(f"throughput: offers of {name} at {where} are not in catalogs/accelerators.csv; "
                         "they are left out unless a measured profile covers them")
            continue
        if acc.proxy:
            notes.append(f"throughput: {name} at {where} is estimated with the facts of {acc.proxy} it lacks "
                         f"(proxy: {acc.proxy}, {PROXIES[name][1]})")
            continue
        why = usable_without_profile(acc)
        if why is not None:
            notes.append(f"throughput: offers of {name} at {where} cannot be estimated ({why})"
                         + ("; the measured profile's rows are used" if measured else "; they are left out"))
    return notes
