"""The Plan: what a solve decided, keyed by ids, and nothing of the solver's objects.

The solver stage hands over a :class:`Plan` and nothing after it touches PuLP or HiGHS:
costing, result.json, verify, reports, manifests and compare read the Plan (or result.json).
Warm starts, rounding and re-solves take and give a Plan, mapped by decision key.

Tables (lists of dicts, sorted by their keys):

- ``instances``  (site, offer, tier, slot) -> count: whole instances; ``slot`` is None for the
  baseline tiers (owned, bought, reserved: the whole month), a slot id for burst tiers
  (on_demand, spot);
- ``replicas``   (workload, site, offer, tier, slot) -> replicas (whole in the replica form),
  gpus (= replicas x GPUs per replica of the candidate's shape);
- ``serving``    (workload, class, site, offer, slot) -> rps served of a load class (class key:
  a query class id, or ``<source workload>~<class>`` for escalated load);
- ``routes``     (workload, user_region, site, slot) -> share of that user region's traffic;
- ``open_sites`` declared (on-prem / edge) sites that are open.

``solve`` is the record of how the plan was found (status, objective, bound, gap, times, solver,
notes). It is kept apart from the tables: ``plan_hash`` covers the tables only, so two solves
that decide the same thing have the same hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner import jsontext

PLAN_VERSION = "1.1"

#: (table, key columns, value columns)
TABLE_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "instances": (("site", "offer", "tier", "slot"), ("count",)),
    "replicas": (("workload", "site", "offer", "tier", "slot"), ("replicas", "gpus")),
    "serving": (("workload", "class", "site", "offer", "slot"), ("rps",)),
    "routes": (("workload", "user_region", "site", "slot"), ("share",)),
}

#: statuses of a solve (result.json 1.1) and the CLI's exit code for each
STATUS_EXIT = {"optimal": 0, "feasible": 0, "infeasible": 1, "no_plan": 1, "interrupted": 130}
PLAN_STATUSES = ("optimal", "feasible", "interrupted")


def _sort_key(row: dict, keys: tuple[str, ...]) -> tuple:
    return tuple("" if row.get(k) is None else str(row[k]) for k in keys)


@dataclass
class SolveRecord:
    """How a plan was found. ``status``: optimal | feasible | infeasible | no_plan | interrupted."""

    status: str
    solver: str = "highs"
    solver_version: str = ""
    integrality: str = "replica"
    model_status: str = ""
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    time_s: float = 0.0
    nodes: int | None = None
    start_objective: float | None = None
    start: str | None = None
    rounding: dict | None = None
    notes: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    model_size: dict | None = None
    times_s: dict = field(default_factory=dict)
    #: seconds on the user's clock (SolveOptions.started_at) until the first checked plan was held
    first_plan_s: float | None = None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict) -> SolveRecord:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class Plan:
    instances: list[dict] = field(default_factory=list)
    replicas: list[dict] = field(default_factory=list)
    serving: list[dict] = field(default_factory=list)
    routes: list[dict] = field(default_factory=list)
    open_sites: list[str] = field(default_factory=list)
    solve: SolveRecord | None = None

    @property
    def status(self) -> str:
        return self.solve.status if self.solve else "feasible"

    @property
    def has_plan(self) -> bool:
        return self.status in PLAN_STATUSES

    def canonical(self) -> Plan:
        """The same plan with every table sorted by its keys (deterministic output)."""
        out = Plan(open_sites=sorted(set(self.open_sites)), solve=self.solve)
        for name, (keys, _vals) in TABLE_KEYS.items():
            setattr(out, name, sorted((dict(r) for r in getattr(self, name)), key=lambda r, k=keys: _sort_key(r, k)))
        return out

    def tables(self) -> dict[str, Any]:
        c = self.canonical()
        return {"instances": c.instances, "replicas": c.replicas, "serving": c.serving, "routes": c.routes,
                "open_sites": c.open_sites}

    def plan_hash(self) -> str:
        """sha256 of the canonical decision tables (the solve record aside)."""
        text = json.dumps(self.tables(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def to_json(self, scenario: dict | None = None) -> str:
        doc = {"plan_version": PLAN_VERSION, "scenario": scenario or {}, "plan_hash": self.plan_hash(),
               **self.tables(), "solve": self.solve.to_dict() if self.solve else None}
        return jsontext.dumps(doc) + "\n"  # = json.dumps(indent=2, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        version = d.get("plan_version")
        if version != PLAN_VERSION:
            raise ValueError(f"plan version {version!r} is not {PLAN_VERSION}; re-solve to get a {PLAN_VERSION} plan")
        plan = cls(open_sites=list(d.get("open_sites", [])),
                   solve=SolveRecord.from_dict(d["solve"]) if d.get("solve") else None)
        for name, (keys, vals) in TABLE_KEYS.items():
            setattr(plan, name, [{k: r.get(k) for k in keys + vals} for r in d.get(name, [])])
        return plan.canonical()

    @classmethod
    def read(cls, path: Path) -> Plan:
        return cls.from_dict(json.loads(Path(path).read_text()))



def plan_from_result(data: dict) -> Plan:
    """The Plan inside a result.json (1.1): its decision tables under their result names
    (``placements`` holds the replica rows). Extra columns of the result rows are dropped."""
    if data.get("schema_version") != "1.1":
        raise ValueError(f"result.json schema {data.get('schema_version')!r} is not 1.1; re-solve the scenario "
                         "with this planner to get a 1.1 result")
    doc = {"plan_version": PLAN_VERSION, "instances": data.get("instances", []),
           "replicas": data.get("placements", []), "serving": data.get("serving", []),
           "routes": data.get("routes", []), "open_sites": data.get("open_sites", []),
           "solve": data.get("solve")}
    return Plan.from_dict(doc)
