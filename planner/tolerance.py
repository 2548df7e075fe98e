"""One numerical tolerance for the whole product.

The model's thresholds, HiGHS's feasibility tolerances (``mip_feasibility_tolerance``,
``primal_feasibility_tolerance``), the row check of every returned plan, ``verify``, the failover
check and the brute-force oracle in the tests all use :data:`TOL`, relative to the size of the
numbers compared (never below an absolute 1 x TOL). A plan that needs more slack than this is not
a plan: demands sitting 1e-6 above a capacity step must be decided by the model, not by the
solver's tolerance (tests/data/repro/pooled_wrong_optimal.yaml).
"""

from __future__ import annotations

import math

import numpy as np

TOL = 1e-9


def scale(*xs: float) -> float:
    """The magnitude a tolerance is relative to: max(1, |x| ...)."""
    return max(1.0, *(abs(x) for x in xs)) if xs else 1.0


def relative_gap(objective: float, bound: float) -> float:
    """(objective - bound) / |objective|, at least 0: the gap every status and report quotes."""
    return max(0.0, (objective - bound) / max(abs(objective), 1e-9))


def leq(a: float, b: float, *also: float) -> bool:
    """a <= b within TOL relative to max(1, |a|, |b|, |also|...)."""
    # = a <= b + TOL * scale(a, b, *also), without the generator (called ~1e6 times at scale)
    s = max(1.0, abs(a), abs(b), *map(abs, also)) if also else max(1.0, abs(a), abs(b))
    return a <= b + TOL * s


def close(a: float, b: float, *also: float) -> bool:
    """|a - b| <= TOL relative to max(1, |a|, |b|, |also|...)."""
    s = max(1.0, abs(a), abs(b), *map(abs, also)) if also else max(1.0, abs(a), abs(b))
    return abs(a - b) <= TOL * s


def whole(x: float) -> bool:
    """x is an integer within TOL (relative to max(1, |x|))."""
    return abs(x - round(x)) <= TOL * max(1.0, abs(x))  # = scale(x), inlined: a hot path at scale


def ceil_tol(x: float) -> int:
    """ceil(x), treating x within TOL above an integer as that integer."""
    return math.ceil(x - TOL * max(1.0, abs(x)))  # = scale(x), inlined (the greedy calls it ~5e6 times)


def finite(x) -> bool:
    return x is not None and math.isfinite(x)


def ceil_tol_array(x: np.ndarray) -> np.ndarray:
    """:func:`ceil_tol` of each element (the same float operations; floats out, NaN stays NaN)."""
    return np.ceil(x - TOL * np.maximum(1.0, np.abs(x)))
