"""Warning-only policy ``policies.max_gpus_per_region``: flag a cloud region renting more GPUs
than the policy allows in some slot. The plan is never limited by it (not a model constraint);
the warning lands in result.json ``warnings`` so every rendering shows it.

Rented GPUs of a cloud region (provider, region) in a slot = GPUs of its reserved instances
(held every slot) + on-demand and spot instances of that slot. Owned and bought GPUs (declared
sites) are not rented and never count.
"""

from __future__ import annotations

from collections import defaultdict

from planner.input.consistency import Resolved
from planner.plan.plan import Plan


def region_gpu_warnings(res: Resolved, plan: Plan, offers: dict) -> list[str]:
    """One warning per cloud region whose rented GPUs exceed ``policies.max_gpus_per_region``
    in some slot (naming the busiest slot); none when the policy is unset."""
    limit = getattr(res.scenario.policies, "max_gpus_per_region", None)
    if limit is None:
        return []
    slots = [t.id for t in res.scenario.time_slots]
    rented: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for i in plan.instances:
        site = res.sites[i["site"]]
        if site.declared or i["tier"] not in ("reserved", "on_demand", "spot"):
            continue
        g = i["count"] * offers[(i["site"], i["offer"])].gpus
        for t in [i["slot"]] if i["slot"] is not None else slots:
            rented[(site.provider, site.region or site.id)][t] += g
    out = []
    for (provider, region), by_slot in sorted(rented.items()):
        peak_slot = max(slots, key=lambda t: (by_slot.get(t, 0.0), -slots.index(t)))
        peak = by_slot.get(peak_slot, 0.0)
        if peak > limit:
            n = sum(1 for t in slots if by_slot.get(t, 0.0) > limit)
            out.append(f"{provider} {region}: rents {peak:,.0f} GPUs in slot {peak_slot} ({n} of {len(slots)} slots "
                       f"above the limit), more than policies.max_gpus_per_region = {limit} (a warning only: the "
                       f"plan is not limited by it). To fix: lower the demand there, allow other regions, or raise "
                       f"the limit")
    return out
