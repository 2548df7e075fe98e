"""Compare placement results: A (the reference) against B, from result.json 1.1 data alone.

Compute once, render many: a :class:`Comparison` reads two ``PlacementResult.data`` dicts (never
a model or a solver) and holds

- **side by side** (one row per metric, A and B): the decision cost and its breakdown by cost
  kind, the owned GPUs' sunk cost (apart), standby cost, carbon, unit costs per workload and
  query class (USD per 1k requests; batch workloads: per 1M input tokens), GPUs by site and tier
  (most GPUs held in any one slot, and GPU-hours per month), the share of user traffic served
  on-prem / in the cloud / at the edge, and the traffic-weighted RTT per user region (weights:
  mean rps x the slot's hours per month of every route);
- **changes**: one per (site, offer, tier, cost kind) key whose decision cost differs. Its
  delta is the decision cost in B minus in A, in integer cents, allocated by largest remainder
  (:func:`allocate_cents`) so that the deltas add up *exactly* to the total decision-cost delta,
  which is itself the difference of the two totals rounded to the cent. There is no residual or
  "other" line. The owned GPUs' sunk cost is not a decision: it is shown apart (``sunk``);
- **moves**, beside the changes and without dollar figures: per workload and slot, the GPUs
  per (site, accelerator) that changed, and the instances added or removed per (site, offer,
  tier, slot).

``offer`` of a change is the offer for compute, capex and owned_sunk lines, the data source for
egress_data lines and null for site-wide kinds (electricity, fixed, egress_response).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import InputError

#: cost kinds that are not decisions (shown apart)
SUNK_KINDS = ("owned_sunk",)
#: kinds whose cost line ``item`` is the offer (else the data source, or nothing)
OFFER_KINDS = ("compute", "capex", "owned_sunk")
SITE_KINDS = ("onprem", "cloud", "edge")
CHANGE_COLUMNS = ("comparison", "site", "offer", "tier", "kind", "a_usd_per_month", "b_usd_per_month",
                  "delta_usd_per_month")


# ====================================================================== exact cents
def to_cents(usd: float) -> int:
    """USD -> whole cents, half away from zero (so that -0.005 and 0.005 are symmetric)."""
    c = abs(usd) * 100.0
    n = math.floor(c + 0.5)
    return int(n) if usd >= 0 else -int(n)


def allocate_cents(deltas: dict[Any, float], total_cents: int) -> dict[Any, int]:
    """Whole-cent deltas per key that add up exactly to ``total_cents`` (largest remainder).

    ``deltas`` are USD (B - A) per key. Each key gets floor(delta in cents); the cents still
    missing (or in excess) go one by one to the keys with the largest (smallest) remainders,
    ties by key order, cycling when there are more cents than keys. Raises ValueError when there
    is a total to share and no key to carry it."""
    keys = sorted(deltas, key=_sort_key)
    if not keys:
        if total_cents:
            raise ValueError(f"a total delta of {total_cents} cents and no cost line to carry it")
        return {}
    raw = {k: deltas[k] * 100.0 for k in keys}
    out = {k: math.floor(v) for k, v in raw.items()}
    left = total_cents - sum(out.values())
    if left > 0:
        order = sorted(keys, key=lambda k: (-(raw[k] - out[k]), _sort_key(k)))
    else:
        order = sorted(keys, key=lambda k: (raw[k] - out[k], _sort_key(k)))
    step = 1 if left > 0 else -1
    for i in range(abs(left)):
        out[order[i % len(order)]] += step
    return out


def _sort_key(k) -> tuple:
    return tuple("" if x is None else str(x) for x in (k if isinstance(k, tuple) else (k,)))


# ====================================================================== the model
@dataclass
class Change:
    """The decision cost of one (site, offer, tier, kind) key in A and in B, and its delta."""

    site: str
    offer: str | None
    tier: str | None
    kind: str
    a_usd_per_month: float
    b_usd_per_month: float
    delta_cents: int

    @property
    def delta_usd_per_month(self) -> float:
        return self.delta_cents / 100.0

    def to_dict(self) -> dict:
        return {"site": self.site, "offer": self.offer, "tier": self.tier, "kind": self.kind,
                "a_usd_per_month": round(self.a_usd_per_month, 2), "b_usd_per_month": round(self.b_usd_per_month, 2),
                "delta_cents": self.delta_cents, "delta_usd_per_month": self.delta_usd_per_month}


@dataclass
class Comparison:
    """A (the reference) against B; see the module docstring. ``a``/``b`` are labels."""

    a: str
    b: str
    a_status: str
    b_status: str
    side_by_side: list[dict] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    total_delta_cents: int | None = None
    sunk: list[dict] = field(default_factory=list)
    moves: list[dict] = field(default_factory=list)
    instance_changes: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total_delta_usd_per_month(self) -> float | None:
        return None if self.total_delta_cents is None else self.total_delta_cents / 100.0

    @property
    def has_plans(self) -> bool:
        return self.total_delta_cents is not None

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "a_status": self.a_status, "b_status": self.b_status,
                "total_delta_cents": self.total_delta_cents,
                "total_delta_usd_per_month": self.total_delta_usd_per_month,
                "changes": [c.to_dict() for c in self.changes],
                "sunk": self.sunk, "side_by_side": self.side_by_side, "moves": self.moves,
                "instance_changes": self.instance_changes, "notes": list(self.notes)}


def _has_plan(d: dict) -> bool:
    return d.get("summary", {}).get("total_usd_per_month") is not None


def _label(d: dict) -> str:
    sc = d.get("scenario", {})
    return f"{sc.get('name', '?')} ({sc.get('variant') or 'base'})"


def compare(a: dict, b: dict, a_label: str | None = None, b_label: str | None = None) -> Comparison:
    """The comparison of two result.json 1.1 data dicts (B against the reference A)."""
    cmp = Comparison(a=a_label or _label(a), b=b_label or _label(b), a_status=a["solve"]["status"],
                     b_status=b["solve"]["status"])
    if a.get("scenario", {}).get("name") != b.get("scenario", {}).get("name"):
        cmp.notes.append(f"different scenarios: {a['scenario']['name']} vs {b['scenario']['name']}")
    for label, d in ((cmp.a, a), (cmp.b, b)):
        if not _has_plan(d):
            cmp.notes.append(f"{label} has no plan (status {d['solve']['status']}): nothing to diff")
    cmp.side_by_side = side_by_side(a, b)
    if not (_has_plan(a) and _has_plan(b)):
        return cmp
    ca, cb = _cost_by_key(a), _cost_by_key(b)
    total = to_cents(b["summary"]["total_usd_per_month"]) - to_cents(a["summary"]["total_usd_per_month"])
    deltas = {k: cb.get(k, 0.0) - ca.get(k, 0.0) for k in set(ca) | set(cb) if k[3] not in SUNK_KINDS}
    cents = allocate_cents(deltas, total)
    changes = [Change(k[0], k[1], k[2], k[3], ca.get(k, 0.0), cb.get(k, 0.0), c) for k, c in cents.items() if c]
    changes.sort(key=lambda c: (-abs(c.delta_cents), c.site, c.offer or "", c.tier or "", c.kind))
    cmp.changes = changes
    cmp.total_delta_cents = total
    sunk_keys = sorted((k for k in set(ca) | set(cb) if k[3] in SUNK_KINDS), key=_sort_key)
    cmp.sunk = [{"site": k[0], "offer": k[1], "tier": k[2], "kind": k[3], "a_usd_per_month": round(ca.get(k, 0.0), 2),
                 "b_usd_per_month": round(cb.get(k, 0.0), 2)} for k in sunk_keys]
    cmp.moves = placement_moves(a, b)
    cmp.instance_changes = instance_changes(a, b)
    return cmp


def _cost_by_key(d: dict) -> dict[tuple, float]:
    out: dict[tuple, float] = defaultdict(float)
    for c in d.get("costs", []):
        offer = c.get("item") if c["kind"] in OFFER_KINDS or c["kind"] == "egress_data" else None
        out[(c["site"], offer or None, c.get("tier") or None, c["kind"])] += c["usd_per_month"]
    return dict(out)


# ---------------------------------------------------------------------- side by side
def _row(section: str, metric: str, unit: str, va, vb) -> dict:
    delta = None if va is None or vb is None else vb - va
    return {"section": section, "metric": metric, "unit": unit, "a": va, "b": vb, "delta": delta}


def side_by_side(a: dict, b: dict) -> list[dict]:
    """Rows (section, metric, unit, a, b, delta): the metrics of the module docstring."""
    rows: list[dict] = []
    ma, mb = metrics(a), metrics(b)
    for section in ("cost", "unit cost", "GPUs", "traffic", "RTT", "carbon"):
        keys = sorted({k for k in ma.get(section, {})} | {k for k in mb.get(section, {})},
                      key=lambda k: _metric_order(section, k))
        for k in keys:
            unit = (ma.get(section, {}).get(k) or mb.get(section, {}).get(k))[1]
            # a cost kind, a GPU pool or a site kind absent from a plan is 0 there
            za = 0.0 if section in ("cost", "GPUs", "traffic") and _has_plan(a) else None
            zb = 0.0 if section in ("cost", "GPUs", "traffic") and _has_plan(b) else None
            va = ma.get(section, {}).get(k, (za, unit))[0]
            vb = mb.get(section, {}).get(k, (zb, unit))[0]
            rows.append(_row(section, k, unit, va, vb))
    return rows


_COST_ORDER = ("decision cost", "owned GPUs (sunk, not a decision)", "total with sunk", "standby capacity")


def _metric_order(section: str, k: str) -> tuple:
    if section == "cost" and k in _COST_ORDER:
        return (0, _COST_ORDER.index(k), k)
    return (1, 0, k)


def metrics(d: dict) -> dict[str, dict[str, tuple[float | None, str]]]:
    """section -> metric -> (value, unit) of one result (empty sections when it has no plan)."""
    out: dict[str, dict[str, tuple[float | None, str]]] = defaultdict(dict)
    if not _has_plan(d):
        return out
    sm = d["summary"]
    usd = "USD/month"
    out["cost"]["decision cost"] = (sm["total_usd_per_month"], usd)
    out["cost"]["owned GPUs (sunk, not a decision)"] = (sm["owned_sunk_usd_per_month"], usd)
    out["cost"]["total with sunk"] = (sm["total_with_sunk_usd_per_month"], usd)
    out["cost"]["standby capacity"] = (sm.get("standby_usd_per_month"), usd)
    by_kind: dict[str, float] = defaultdict(float)
    by_site_kind: dict[str, float] = defaultdict(float)
    site_kind = {s["id"]: s["kind"] for s in d.get("sites", [])}
    for c in d.get("costs", []):
        if c["kind"] in SUNK_KINDS:
            continue
        by_kind[c["kind"]] += c["usd_per_month"]
        by_site_kind[site_kind.get(c["site"], "?")] += c["usd_per_month"]
    for k, v in by_kind.items():
        out["cost"][f"decision cost: {k}"] = (v, usd)
    for k, v in by_site_kind.items():
        out["cost"][f"decision cost at {k} sites"] = (v, usd)
    # unit costs
    kinds = {w["id"]: w["kind"] for w in d.get("workloads", [])}
    tokens: dict[tuple[str, str], float] = defaultdict(float)
    for ld in d.get("loads", []):
        if ld.get("tokens_per_month") is not None and ld.get("source_workload") is None:
            tokens[(ld["workload"], ld["class"])] += ld["tokens_per_month"]
            tokens[(ld["workload"], "*")] += ld["tokens_per_month"]
    for u in d.get("unit_costs", []):
        name = u["workload"] if u["class"] == "*" else f"{u['workload']} / {u['class']}"
        if kinds.get(u["workload"]) == "batch_embeddings":
            tok = tokens.get((u["workload"], u["class"]), 0.0)
            out["unit cost"][name] = (u["usd_per_month"] / tok * 1e6 if tok else None, "USD per 1M tokens")
        else:
            out["unit cost"][name] = (u["usd_per_1k_requests"], "USD per 1k requests")
    # GPUs by site and tier: most held in one slot, and GPU-hours per month
    H = {t["id"]: t["hours_per_month"] for t in d.get("time_slots", [])}
    per_slot: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: {t: 0.0 for t in H})
    gpu_h: dict[tuple[str, str], float] = defaultdict(float)
    for i in d.get("instances", []):
        key = (i["site"], i["tier"])
        for t in ([i["slot"]] if i["slot"] is not None else list(H)):
            per_slot[key][t] += i["gpus"]
            gpu_h[key] += i["gpus"] * H[t]
    for (sid, tier), by_t in per_slot.items():
        out["GPUs"][f"{sid} {tier}: most in one slot"] = (max(by_t.values()), "GPUs")
        out["GPUs"][f"{sid} {tier}: GPU-hours"] = (gpu_h[(sid, tier)], "GPU-h/month")
    # traffic share by site kind and RTT per user region (routes, weighted by mean rps x hours)
    by_kind_t: dict[str, float] = defaultdict(float)
    rtt_w: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in d.get("routes", []):
        wgt = r["mean_rps"] * H.get(r["slot"], 0.0)
        by_kind_t[site_kind.get(r["site"], "?")] += wgt
        if r.get("rtt_ms") is not None:
            rtt_w[r["user_region"]][0] += wgt * r["rtt_ms"]
            rtt_w[r["user_region"]][1] += wgt
    total_t = sum(by_kind_t.values())
    if total_t > 0:
        for k in SITE_KINDS:
            out["traffic"][f"user traffic served {k}"] = (by_kind_t.get(k, 0.0) / total_t, "share")
    for u, (num, den) in rtt_w.items():
        out["RTT"][f"users in {u}"] = (num / den if den else None, "ms (traffic-weighted)")
    if sm.get("kg_co2e_per_month") is not None:
        out["carbon"]["emissions"] = (sm["kg_co2e_per_month"], "kg CO2e/month")
    return out


# ---------------------------------------------------------------------- moves (no dollars)
def placement_moves(a: dict, b: dict) -> list[dict]:
    """Per workload and slot: GPUs per (site, accelerator) in A and B where they differ."""
    def gpus(d):
        out: dict[tuple, float] = defaultdict(float)
        for p in d.get("placements", []):
            out[(p["workload"], p["slot"], p["site"], p["accelerator"])] += p["gpus"]
        return out

    ga, gb = gpus(a), gpus(b)
    order = {t["id"]: i for i, t in enumerate(b.get("time_slots") or a.get("time_slots", []))}
    rows = []
    for k in set(ga) | set(gb):
        va, vb = round(ga.get(k, 0.0), 6), round(gb.get(k, 0.0), 6)
        if va != vb:
            rows.append({"workload": k[0], "slot": k[1], "site": k[2], "accelerator": k[3], "a_gpus": va, "b_gpus": vb})
    rows.sort(key=lambda r: (r["workload"], order.get(r["slot"], 99), r["site"], r["accelerator"]))
    return rows


def instance_changes(a: dict, b: dict) -> list[dict]:
    """Instances added (+) or removed (-) per (site, offer, tier, slot; slot null = all month)."""
    def counts(d):
        out: dict[tuple, int] = defaultdict(int)
        for i in d.get("instances", []):
            out[(i["site"], i["offer"], i["tier"], i["slot"])] += int(i["count"])
        return out

    na, nb = counts(a), counts(b)
    order = {t["id"]: i for i, t in enumerate(b.get("time_slots") or a.get("time_slots", []))}
    rows = [{"site": k[0], "offer": k[1], "tier": k[2], "slot": k[3], "a_count": na.get(k, 0), "b_count": nb.get(k, 0),
             "added": nb.get(k, 0) - na.get(k, 0)} for k in set(na) | set(nb) if na.get(k, 0) != nb.get(k, 0)]
    rows.sort(key=lambda r: (r["site"], r["offer"], r["tier"], -1 if r["slot"] is None else order.get(r["slot"], 99)))
    return rows


# ====================================================================== reading inputs
def read_result(path: str | Path) -> dict:
    """result.json data for compare, with errors that name the file and the fix (exit 2)."""
    p = Path(path)
    if p.is_dir():
        p = p / "result.json"
    if not p.exists():
        raise InputError("file not found. To fix: pass a result.json written by `planner solve --out DIR` "
                         "(or the DIR), or a scenario as scenario.yaml[:variant]", file=str(p))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a planner result.json (not JSON: {exc}). To fix: pass the result.json written by "
                         "`planner solve --out DIR`", file=str(p)) from None
    needed = ("schema_version", "scenario", "solve", "summary", "costs", "instances", "placements", "routes")
    missing = [k for k in needed if not isinstance(data, dict) or k not in data]
    if missing:
        raise InputError(f"not a planner result.json (missing {', '.join(missing)}). To fix: pass the "
                         "result.json written by `planner solve --out DIR`", file=str(p))
    return data


def check_versions(named: list[tuple[str, dict]], supported: str) -> None:
    """Every input must have the same result.json schema version, and the one this planner reads."""
    versions = {name: d.get("schema_version") for name, d in named}
    if len(set(versions.values())) > 1:
        listing = ", ".join(f"{n}: {v}" for n, v in versions.items())
        first = next(iter(versions.values()))
        odd = next(n for n, v in versions.items() if v != first)
        raise InputError(f"results of different schema versions ({listing}). To fix: re-solve the older scenario(s) "
                         f"with this planner (`planner solve SCENARIO --out DIR`) to get {supported} results", file=odd)
    for name, v in versions.items():
        if v != supported:
            raise InputError(f"result.json schema {v!r}; this planner compares {supported}. To fix: re-solve "
                             f"the scenario with this planner (`planner solve SCENARIO --out DIR`)", file=name)


# ====================================================================== renderings
def _num(x, nd: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and abs(x) < 0.01 and x != 0:
        return f"{x:.6f}"
    return f"{x:,.{nd}f}"


def _signed_usd(cents: int | None) -> str:
    if cents is None:
        return "-"
    sign = "+" if cents > 0 else "-" if cents < 0 else ""
    return f"{sign}{abs(cents) / 100:,.2f}"


def _fmt(unit: str, x) -> str:
    if x is None:
        return "-"
    if unit == "share":
        return f"{x:.1%}"
    if unit.startswith("USD per"):
        return f"{x:.6f}"
    if unit.startswith("ms"):
        return f"{x:.1f}"
    return _num(x, 2 if unit.startswith("USD") else 1)


def _fmt_delta(unit: str, x) -> str:
    if x is None:
        return "-"
    if unit == "share":
        return f"{x * 100:+.1f} pts"
    s = _fmt(unit, abs(x))
    return ("+" if x > 0 else "-" if x < 0 else "") + s


def _md(rows: list[list[str]], head: list[str], right: set[int] | None = None) -> str:
    right = right or set()
    if not rows:
        return "_none_\n"
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---:" if i in right else "---" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def render_markdown(comparisons: list[Comparison]) -> str:
    """compare.md: readable in a pull request."""
    parts = ["# Plan comparison\n"]
    if comparisons:
        parts.append(f"Reference (A): **{comparisons[0].a}**. Each other plan (B) is compared with it; a change's "
                     "delta is B - A in decision cost (USD/month); the changes add up exactly to the total. The owned "
                     "GPUs' sunk cost is not a decision and is shown apart.\n")
    for c in comparisons:
        parts.append(f"## {c.b} vs {c.a}\n")
        parts.append(f"- status: A {c.a_status}, B {c.b_status}")
        if c.has_plans:
            parts.append(f"- **decision cost delta: {_signed_usd(c.total_delta_cents)} USD/month**")
        parts.extend(f"- note: {n}" for n in c.notes)
        parts.append("")
        parts.append("### Side by side\n")
        parts.append(_md([[r["section"], r["metric"], r["unit"], _fmt(r["unit"], r["a"]), _fmt(r["unit"], r["b"]),
                           _fmt_delta(r["unit"], r["delta"])] for r in c.side_by_side],
                         ["section", "metric", "unit", "A", "B", "B - A"], {3, 4, 5}))
        if not c.has_plans:
            continue
        parts.append("\n### Changes in decision cost\n")
        rows = [[ch.site, ch.offer or "", ch.tier or "", ch.kind, _num(ch.a_usd_per_month), _num(ch.b_usd_per_month),
                 _signed_usd(ch.delta_cents)] for ch in c.changes]
        rows.append(["**total**", "", "", "", "", "", f"**{_signed_usd(c.total_delta_cents)}**"])
        parts.append(_md(rows, ["site", "offer", "tier", "kind", "A USD/month", "B USD/month", "delta"], {4, 5, 6}))
        parts.append("\n### Owned GPUs (sunk cost, not a decision)\n")
        parts.append(_md([[s["site"], s["offer"] or "", _num(s["a_usd_per_month"]), _num(s["b_usd_per_month"])]
                          for s in c.sunk], ["site", "offer", "A USD/month", "B USD/month"], {2, 3}))
        parts.append("\n### Instances added / removed\n")
        parts.append(_md([[r["site"], r["offer"], r["tier"], r["slot"] or "all month", str(r["a_count"]),
                           str(r["b_count"]), f"{r['added']:+d}"] for r in c.instance_changes],
                         ["site", "offer", "tier", "slot", "A", "B", "added"], {4, 5, 6}))
        parts.append("\n### Placement moves (GPUs per workload, slot, site)\n")
        parts.append(_md([[m["workload"], m["slot"], m["site"], m["accelerator"], f"{m['a_gpus']:g}",
                           f"{m['b_gpus']:g}"] for m in c.moves],
                         ["workload", "slot", "site", "accelerator", "A GPUs", "B GPUs"], {4, 5}))
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def render_table(comparisons: list[Comparison]) -> str:
    """Terminal summary: totals and the changes (plain text, fixed columns)."""
    lines = []
    for c in comparisons:
        lines.append(f"{c.b} vs {c.a}: status A {c.a_status}, B {c.b_status}")
        for n in c.notes:
            lines.append(f"  note: {n}")
        if not c.has_plans:
            continue
        cost = {r["metric"]: r for r in c.side_by_side if r["section"] == "cost"}
        for m in ("decision cost", "owned GPUs (sunk, not a decision)", "standby capacity"):
            r = cost.get(m)
            if r:
                lines.append(f"  {m:<36} A {_num(r['a']):>14}  B {_num(r['b']):>14}  USD/month")
        ws = max([4, *(len(ch.site) for ch in c.changes)])
        wo = max([5, *(len(ch.offer or "-") for ch in c.changes)])
        lines.append(f"  {'site':<{ws}} {'offer':<{wo}} {'tier':<10} {'kind':<16} {'delta USD/month':>16}")
        for ch in c.changes:
            lines.append(f"  {ch.site:<{ws}} {(ch.offer or '-'):<{wo}} {(ch.tier or '-'):<10} {ch.kind:<16} "
                         f"{_signed_usd(ch.delta_cents):>16}")
        lines.append(f"  {'total':<{ws + wo + 29}} {_signed_usd(c.total_delta_cents):>16}")
        lines.append(f"  {len(c.instance_changes)} instance rows added/removed, {len(c.moves)} placement moves "
                     "(see --format md)")
    return "\n".join(lines) + "\n"


def to_json(comparisons: list[Comparison]) -> str:
    """One comparison: its object (``changes`` with ``delta_usd_per_month``, and
    ``total_delta_usd_per_month``); more: ``{"comparisons": [...]}`` of such objects."""
    body: Any = comparisons[0].to_dict() if len(comparisons) == 1 else {"comparisons": [c.to_dict() for c in comparisons]}
    return json.dumps(body, indent=2, sort_keys=True, allow_nan=False) + "\n"


def to_csv(comparisons: list[Comparison]) -> str:
    """compare.csv: one row per change (and a total row per comparison)."""
    import csv
    import io

    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(CHANGE_COLUMNS)
    for c in comparisons:
        name = f"{c.b} vs {c.a}"
        for ch in c.changes:
            wr.writerow([name, ch.site, ch.offer or "", ch.tier or "", ch.kind, f"{ch.a_usd_per_month:.2f}",
                         f"{ch.b_usd_per_month:.2f}", f"{ch.delta_cents / 100:.2f}"])
        if c.has_plans:
            wr.writerow([name, "TOTAL", "", "", "decision cost", "", "", f"{c.total_delta_cents / 100:.2f}"])
    return buf.getvalue()


def html_renderer():
    """Hook for the HTML rendering of comparisons: ``planner.outputs.html.render_compare(
    comparisons: list[Comparison]) -> str`` when that module provides it, else None (then no
    compare.html is written)."""
    try:
        from planner.outputs import html  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(html, "render_compare", None)


def write_compare(comparisons: list[Comparison], out_dir: Path) -> list[Path]:
    """compare.md, compare.json, compare.csv (and compare.html when the HTML hook exists), each
    written atomically; returns the paths written."""
    from planner.plan.result import write_atomic

    out_dir = Path(out_dir)
    files = {"compare.md": render_markdown(comparisons), "compare.json": to_json(comparisons),
             "compare.csv": to_csv(comparisons)}
    render_html = html_renderer()
    if render_html is not None:
        files["compare.html"] = render_html(comparisons)
    written = []
    for name, text in files.items():
        write_atomic(out_dir / name, text)
        written.append(out_dir / name)
    return written
