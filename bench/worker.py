"""One benchmark method in its own process, through the public API only (``planner.api``).

    python bench/worker.py METHOD SCENARIO OUT_DIR TIME_LIMIT_S

METHOD is a baseline (``greedy``, ``greedy-spread``, ``cloud-on-demand``: ``api.baseline``, the
plan verified by the same independent checker as a solve, result.json written to OUT_DIR) or
``lp`` (``api.lp_bound``: the LP relaxation bound of the default form within TIME_LIMIT_S).
Prints one JSON object on stdout; times are ``time.monotonic()`` stamps (system-wide on Linux),
so the parent measures them from the moment it started this process.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def main(argv: list[str]) -> int:
    method, scenario, out_dir, limit = argv[0], Path(argv[1]), Path(argv[2]), float(argv[3])
    from planner import api

    started = time.monotonic()
    res = api.load_scenario(scenario)
    out: dict = {"method": method}
    if method == "lp":
        lp = api.lp_bound(res, api.SolveOptions(time_limit_s=limit, started_at=started))
        out.update(status=lp["status"], objective=lp["objective"], dual_bound=lp["objective"], gap=None,
                   build_s=lp["build_s"], solve_s=lp["solve_s"], first_plan_at=None, verified=None,
                   form=lp["form"])
    else:
        result = api.baseline(res, method)
        sv = result.data["solve"]
        ver = result.data.get("verification") or {}
        has_plan = sv["status"] in ("optimal", "feasible", "interrupted")
        out.update(status=sv["status"], objective=sv.get("objective"), dual_bound=None, gap=None, build_s=None,
                   solve_s=(sv.get("times_s") or {}).get("baseline"),
                   first_plan_at=time.monotonic() if has_plan and ver.get("ok") else None,
                   verified=ver.get("ok") if has_plan else None, reasons=(sv.get("reasons") or [])[:3],
                   violations=(ver.get("violations") or [])[:5])
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(out_dir / "result.json", result.to_json())
    out["end_at"] = time.monotonic()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
