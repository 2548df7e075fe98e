"""Power of GPUs at a site: one formula shared by the model (power rows, carbon term) and by the
plan's costing (electricity, carbon), so neither imports the other.

Facility kW per GPU at full draw = board power x (1 + host_overhead) x PUE / 1000.
"""

from __future__ import annotations

#: Assumptions for the energy of cloud GPUs (carbon reporting / carbon term only).
CLOUD_PUE = 1.2  # typical hyperscaler fleet PUE (Google ~1.10, Microsoft ~1.18, AWS ~1.15 reported 2023-24)
CLOUD_HOST_OVERHEAD = 0.3  # host CPU/network/storage power as a fraction of GPU power (same as the site default)


def gpu_kw_factor(site, offer) -> float:
    """Facility kW per GPU at full draw at a declared site: board kW x (1 + host_overhead) x PUE."""
    return (offer.tdp_watts or 0.0) / 1000.0 * (1.0 + site.host_overhead) * site.pue


def cloud_gpu_kw(offer) -> float:
    """Estimated facility kW per GPU in use at a cloud site (board kW x (1 + overhead) x cloud PUE)."""
    return (offer.tdp_watts or 0.0) / 1000.0 * (1 + CLOUD_HOST_OVERHEAD) * CLOUD_PUE
