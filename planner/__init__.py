"""planner: place AI inference workloads across on-prem, edge and public cloud (Cloud 3.0).

Public API (the CLI is a thin shell over these):

- :func:`load_scenario` - read, patch (variant), validate and resolve a scenario file;
- :func:`solve` - build and solve the placement MILP, returning a :class:`PlacementResult`;
- :func:`verify` - recompute every constraint and the cost of a result from its placement;
- :func:`estimate` - throughput and cost of a model per accelerator or offer (``planner estimate``).
"""

__version__ = "0.1.0"

from planner.api import (  # noqa: E402
    estimate,  # noqa: E402
    load_scenario,
    solve,
    verify,
)

__all__ = ["load_scenario", "solve", "verify", "estimate", "__version__"]
