"""A HiGHS instance as the product uses it: quiet, at the product's one tolerance.

Shared by the optimiser's back-end and by the independent checker (verify builds its own small
LPs; it shares this factory, not the model). HiGHS prints a banner on stdout when the first
instance is made in a process; that would corrupt ``--format json`` output, so fd 1 is muted
for it.
"""

from __future__ import annotations

import os
import sys

from planner.tolerance import TOL

_BANNER_SHOWN = False


def new_highs():
    """A highspy.Highs with logging off and the feasibility tolerances at TOL."""
    global _BANNER_SHOWN
    import highspy

    if _BANNER_SHOWN:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _BANNER_SHOWN = True
    h.setOptionValue("output_flag", False)
    # one tolerance for the whole product (planner/tolerance.py)
    h.setOptionValue("primal_feasibility_tolerance", TOL)
    h.setOptionValue("mip_feasibility_tolerance", TOL)
    return h


def highs_version(h=None) -> str:
    """"HiGHS major.minor.patch" of ``h`` (or of a new instance)."""
    h = h or new_highs()
    return f"HiGHS {h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"
