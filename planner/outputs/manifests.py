"""Terraform-like manifests of a plan, rendered with Jinja2 from ``templates/``. Reads result.json only.

Compute once, render many: this module reads the data of a result.json 1.1 (a dict) and never
the model, the solver or the scenario file; it does not re-solve.

One tree per site that the plan uses (a site with instance rows, a decision cost, or open):
``<site>/main.tf``, ``variables.tf``, ``outputs.tf``, ``README.md`` (and ``modules/gpu_pool``
where the tree uses it), plus a top-level ``index.md``.

Groups. One group per (site, offer, tier) of the ``instances`` rows. Baseline tiers (owned,
bought, reserved: rows with slot null) are fixed-size groups (min = max = count). Burst tiers
(on_demand, spot: one row per slot) are autoscaling groups with min and max = the smallest and
largest per-slot count (a slot without a row counts 0) and one scheduled count per slot at the
slot's UTC start (AWS ``aws_autoscaling_schedule``, GCP ``scaling_schedules``, Azure recurrence
profiles; Nebius and the ``gpu_pool`` module get the per-slot counts as data).

Cost attribution (index.md sums exactly to ``summary.total_usd_per_month``): every cost row of
result.json has a ``site``; a tree's monthly cost is the sum of the decision-cost rows (every
kind but ``owned_sunk``) of its site: compute and capex of its instances, electricity and the
fixed cost of the site, egress of responses served there and of data pulled there. Owned GPUs'
sunk cost is shown beside it and not summed. index.md prints cents apportioned by largest
remainder, so its column adds up to the rounded decision cost to the cent.

Safety. Templates run with StrictUndefined. In ``.tf`` templates every ``{{ ... }}`` must end in
the ``hcl`` filter (any value -> an HCL literal; strings escaped: ``\\``, ``"``, control
characters, ``${`` -> ``$${``, ``%{`` -> ``%%{``) or the ``ident`` filter (a sanitised
identifier): any other value raises (the environment's ``finalize``). Tag and label values are
sanitised to the strictest provider rules: lowercase ``[a-z0-9_-]``, at most 63 characters.

Deterministic: rows are sorted, no times, notes or versions of the run reach the files.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2

from planner.plan.result import write_atomic

#: the shipped templates (repository root/templates)
DEFAULT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
BASELINE = ("owned", "bought", "reserved")
BURST = ("on_demand", "spot")
PLAN_STATUSES = ("optimal", "feasible", "interrupted")
LABEL_MAX = 63
#: renderer per provider (declared sites and GPU clouds without an official provider: gpu_pool)
RENDERERS = {"aws": "aws", "gcp": "gcp", "azure": "azure", "nebius": "nebius"}
RENDERER_TEXT = {
    "aws": "aws_launch_template + aws_autoscaling_group per group, aws_autoscaling_schedule per slot of a burst group",
    "gcp": "google_compute_instance_template + google_compute_region_instance_group_manager per group, "
           "google_compute_region_autoscaler with scaling_schedules per burst group",
    "azure": "azurerm_linux_virtual_machine_scale_set per group, azurerm_monitor_autoscale_setting with one "
             "recurrence profile per slot per burst group",
    "nebius": "nebius_mk8s_v1_node_group per group (fixed_node_count or autoscaling); Nebius node groups have no "
              "scheduled scaling, so the per-slot counts are in local.slot_counts (output slot_counts) for your "
              "scheduler",
    "gpu_pool": 'module "gpu_pool_<group>" per group (local module ./modules/gpu_pool: the pool\'s contract, '
                "counts per slot, servers)",
}
COST_KINDS = ("compute", "capex", "electricity", "fixed", "egress_response", "egress_data")


class ManifestError(Exception):
    """A result that cannot be rendered (no plan, wrong schema) or a template that fails."""


# ====================================================================== escaping and sanitising
class Hcl(str):
    """Text that is safe to put in an HCL file as is (an escaped literal or a sanitised identifier)."""


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def hcl_string(text: str) -> str:
    """The HCL quoted string literal of ``text``: backslash, quote and control characters
    escaped, ``${`` -> ``$${`` and ``%{`` -> ``%%{`` (no interpolation, no directive)."""
    out = []
    for ch in str(text):
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    body = "".join(out).replace("${", "$${").replace("%{", "%%{")
    return f'"{body}"'


def hcl(value: Any) -> Hcl:
    """The one escaping filter: any value of the context -> an HCL literal."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined: raises UndefinedError naming the missing key
    if isinstance(value, bool):
        return Hcl("true" if value else "false")
    if value is None:
        return Hcl("null")
    if isinstance(value, int):
        return Hcl(str(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ManifestError(f"non-finite number {value!r} cannot reach HCL")
        return Hcl(str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value))
    if isinstance(value, str):
        return Hcl(hcl_string(value))
    if isinstance(value, (list, tuple)):
        return Hcl("[" + ", ".join(hcl(v) for v in value) + "]")
    if isinstance(value, dict):
        if not value:
            return Hcl("{}")
        return Hcl("{ " + ", ".join(f"{hcl_string(str(k))} = {hcl(v)}" for k, v in value.items()) + " }")
    raise ManifestError(f"value of type {type(value).__name__} cannot reach HCL")


def ident(value: Any) -> Hcl:
    """A Terraform identifier: lowercase ``[a-z0-9_]``, starting with a letter or underscore."""
    s = re.sub(r"[^a-z0-9_]+", "_", str(value).lower()).strip("_") or "x"
    if not (s[0].isalpha() or s[0] == "_"):
        s = f"_{s}"
    return Hcl(s)


def label(value: Any, max_len: int = LABEL_MAX) -> str:
    """A tag or label value (or key) every provider accepts: lowercase ``[a-z0-9_-]``, at most 63
    characters, starting and ending with a letter or digit (empty -> ``none``)."""
    s = re.sub(r"[^a-z0-9_-]+", "-", str(value).lower())
    s = s[:max_len].strip("-_")
    return s or "none"


def cloud_name(*parts: Any) -> str:
    """A resource name every provider accepts (GCP is strictest: ``[a-z]([-a-z0-9]*[a-z0-9])?``,
    at most 63): sanitised, and when shortened, a short hash of the full text keeps it unique."""
    raw = "-".join(str(p) for p in parts)
    s = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    s = re.sub(r"-{2,}", "-", s)
    if not s or not s[0].isalpha():
        s = f"p-{s}"
    if len(s) > LABEL_MAX:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        s = f"{s[:LABEL_MAX - 9].rstrip('-')}-{digest}"
    return s


def _prefix(*parts: Any) -> str:
    """A GCP name prefix / base instance name (at most 37 characters), unique by a short hash."""
    raw = "-".join(str(p) for p in parts)
    s = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", raw.lower())).strip("-")
    if not s or not s[0].isalpha():
        s = f"p-{s}"
    return f"{s[:27].rstrip('-')}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


def md(value: Any) -> str:
    """One line of markdown text (table cell safe): newlines to spaces, pipes escaped."""
    text = "" if value is None else str(value)
    return re.sub(r"[\r\n\u2028\u2029]+", " ", text).replace("|", "\\|")


def money(value: float) -> str:
    return f"{value:,.2f}"


def _only_safe(value: Any) -> Any:
    """finalize of the HCL environment: only filtered values may reach a .tf file."""
    if isinstance(value, Hcl):
        return value
    raise ManifestError(f"a value ({value!r:.60}) reaches a .tf file without the hcl or ident filter")


# ====================================================================== context
def _num(x: float) -> int | float:
    return int(round(x)) if abs(x - round(x)) < 1e-9 else x


def cents_apportioned(amounts: list[float], total: float) -> list[int]:
    """Cents per amount, rounded so that they add up to round(total, 2) exactly (largest
    remainder: the amounts sum to ``total`` up to float error)."""
    target = round(total * 100)
    raw = [a * 100 for a in amounts]
    base = [math.floor(r) for r in raw]
    left = target - sum(base)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - base[i]), i))
    if left >= 0:
        for i in order[:left]:
            base[i] += 1
    else:
        for i in list(reversed(order))[: -left]:
            base[i] -= 1
    return base


def _tags(d: dict, site: dict, tier: str, workloads: list[dict], extra: dict[str, str]) -> dict[str, str]:
    sc = d["scenario"]
    tags: dict[str, str] = {}
    for w in workloads:
        tags[label(f"planner-workload-{w['id']}")] = "true"
    tags["planner-tenant"] = label("_".join(sorted({w["tenant"] for w in workloads})) or "none")
    tags["planner-feature"] = label("_".join(sorted({w["feature"] for w in workloads})) or "none")
    tags["planner-scenario"] = label(sc["name"])
    tags["planner-variant"] = label(sc["variant"] or "base")
    tags["planner-plan-hash"] = label(d["plan_hash"][:16])
    tags["planner-site"] = label(site["id"])
    tags["planner-tier"] = label(tier)
    tags.update({label(k): label(v) for k, v in extra.items()})
    return dict(sorted(tags.items()))


def _pct(x: float) -> str:
    return f"{x * 100:.4f}".rstrip("0").rstrip(".").replace(".", "_")


def manifest_context(d: dict) -> dict:
    """The template context of a result.json 1.1 (documented in templates/README.md)."""
    if d.get("schema_version") != "1.1":
        raise ManifestError(f"result.json schema {d.get('schema_version')!r} is not 1.1; re-solve to get a 1.1 result")
    status = d["solve"]["status"]
    if status not in PLAN_STATUSES or d["summary"]["total_usd_per_month"] is None:
        raise ManifestError(f"the result has no plan (status {status}); there is nothing to deploy")
    slots = [{"id": t["id"], "start_hour": t["start_hour"], "end_hour": t["end_hour"],
              "duration_s": ((t["end_hour"] - t["start_hour"]) % 24 or 24) * 3600,
              "cron": f"0 {t['start_hour']} * * *", "hours_per_month": t["hours_per_month"]}
             for t in d["time_slots"]]
    slot_ids = [t["id"] for t in slots]
    sites = {s["id"]: s for s in d["sites"]}
    wk = {w["id"]: w for w in d["workloads"]}
    pol = d["policies"]

    inst: dict[tuple, list[dict]] = defaultdict(list)
    for i in d["instances"]:
        inst[(i["site"], i["offer"], i["tier"])].append(i)
    cost_of: dict[tuple, float] = defaultdict(float)
    unit_price: dict[tuple, dict] = {}
    for c in d["instance_costs"]:
        cost_of[(c["site"], c["offer"], c["tier"])] += c["usd_per_month"]
        unit_price[(c["site"], c["offer"], c["tier"])] = c
    place: dict[tuple, list[dict]] = defaultdict(list)
    for p in d["placements"]:
        place[(p["site"], p["offer"], p["tier"])].append(p)
    site_cost: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(COST_KINDS, 0.0))
    sunk: dict[str, float] = defaultdict(float)
    for c in d["costs"]:
        if c["kind"] == "owned_sunk":
            sunk[c["site"]] += c["usd_per_month"]
        else:
            site_cost[c["site"]][c["kind"]] += c["usd_per_month"]

    tree_sites = sorted({k[0] for k in inst} | set(site_cost) | set(d["open_sites"]))
    order = {s: i for i, s in enumerate(slot_ids)}
    trees = []
    used_dirs: set[str] = set()
    for sid in tree_sites:
        site = sites[sid]
        renderer = RENDERERS.get(site["provider"], "gpu_pool") if site["kind"] == "cloud" else "gpu_pool"
        groups = []
        used_idents: set[str] = set()
        used_names: set[str] = set()
        for (gsid, oid, tier), rows in sorted(inst.items(), key=lambda kv: (kv[0][1], BASELINE.index(kv[0][2])
                                                                             if kv[0][2] in BASELINE else
                                                                             3 + BURST.index(kv[0][2]))):
            if gsid != sid:
                continue
            first = rows[0]
            gpi = first["gpus"] / first["count"] if first["count"] else 0.0
            if tier in BASELINE:
                count = sum(r["count"] for r in rows)
                per_slot = dict.fromkeys(slot_ids, count)
            else:
                per_slot = dict.fromkeys(slot_ids, 0)
                for r in rows:
                    per_slot[r["slot"]] += r["count"]
            prow = place.get((sid, oid, tier), [])
            wids = sorted({p["workload"] for p in prow})
            wrows = [wk[w] for w in wids if w in wk]
            extra: dict[str, str] = {}
            reserved = None
            if tier == "reserved":
                disc = pol["reserved_discount_by_provider"].get(site["provider"])
                reserved = {"term": pol["reserved_term"], "discount": disc}
                extra["planner-reserved-term"] = pol["reserved_term"]
                extra["planner-reserved-discount-pct"] = _pct(disc) if disc is not None else "none"
            if any(p["tier"] == "spot" for p in prow) or tier == "spot":
                extra["planner-spot"] = "true"
            standby = sorted(({"workload": p["workload"], "slot": p["slot"], "replicas": _num(p["replicas"]),
                               "busy_replicas": p["busy_replicas"], "standby_replicas": _num(p["standby_replicas"]),
                               "usd_per_month": p["standby_usd_per_month"],
                               "n_plus_1": wk.get(p["workload"], {}).get("redundancy", {}).get("mode") == "n_plus_1"}
                              for p in prow if p["standby_replicas"] > 0),
                             key=lambda r: (r["workload"], order.get(r["slot"], -1)))
            if any(s["n_plus_1"] for s in standby):
                extra["planner-n-plus-1-standby"] = "true"
            base_id = str(ident(f"{oid}_{tier}"))
            gid = base_id
            if gid in used_idents:
                gid = f"{base_id}_{hashlib.sha256(f'{oid}|{tier}'.encode()).hexdigest()[:8]}"
            used_idents.add(gid)
            short = oid[len(sid) + 1:] if oid.startswith(f"{sid}-") and len(oid) > len(sid) + 1 else oid
            name = cloud_name(sid, short, tier)
            if name in used_names:
                name = cloud_name(sid, short, tier, hashlib.sha256(f"{oid}|{tier}".encode()).hexdigest()[:8])
            used_names.add(name)
            counts = list(per_slot.values())
            platform, _, preset = first["instance_type"].partition("_")
            up = unit_price.get((sid, oid, tier), {})
            site_gps = _num(site["gpus_per_server"] or gpi or 1)
            groups.append({
                "ident": gid, "name": name, "name_prefix": _prefix(sid, short, tier), "site": sid, "offer": oid, "tier": tier,
                "baseline": tier in BASELINE, "spot": tier == "spot",
                "instance_type": first["instance_type"], "accelerator": first["accelerator"],
                "gpus_per_instance": _num(gpi),
                "count": counts[0] if tier in BASELINE else None,
                "min": min(counts), "max": max(counts),
                "slots": [{**t, "count": per_slot[t["id"]], "name": cloud_name(name, t["id"]),
                           "ident": str(ident(t["id"]))} for t in slots],
                "count_per_slot": per_slot,
                "gpus_per_server": site_gps,
                "servers_per_slot": {t: math.ceil(round(n * gpi / site_gps, 9)) for t, n in per_slot.items()},
                "workloads": wids, "models": sorted({w["model"] for w in wrows}),
                "tenants": sorted({w["tenant"] for w in wrows}), "features": sorted({w["feature"] for w in wrows}),
                "tags": _tags(d, site, tier, wrows, extra),
                "reserved": reserved,
                "usd_per_month": cost_of.get((sid, oid, tier), 0.0),
                "usd_per_instance_hour": up.get("usd_per_instance_hour"),
                "usd_per_gpu_month": up.get("usd_per_gpu_month"),
                "standby": standby,
                "nebius": {"platform": platform, "preset": preset or platform},
            })
        costs = site_cost.get(sid, dict.fromkeys(COST_KINDS, 0.0))
        wids = sorted({w for g in groups for w in g["workloads"]})
        dir_name = label(sid)
        if dir_name in used_dirs:
            dir_name = f"{dir_name[:54]}-{hashlib.sha256(sid.encode()).hexdigest()[:8]}"
        used_dirs.add(dir_name)
        region = site["region"]
        trees.append({
            "site": site, "id": sid, "dir": dir_name, "renderer": renderer, "provider": site["provider"],
            "kind": site["kind"], "region": region,
            "name": cloud_name(sid),
            "groups": groups,
            "usd_per_month": sum(costs.values()),
            "cost_by_kind": costs,
            "owned_sunk_usd_per_month": sunk.get(sid, 0.0),
            "workloads": [wk[w] for w in wids if w in wk],
            "binding": [b for b in d["binding"] if b["site"] == sid
                        or (b["site"] is None and b["workload"] is not None and b["workload"] in wids)],
            "standby": [{**s, "group": g["ident"], "tier": g["tier"]} for g in groups for s in g["standby"]],
            "power_budget_kw": site["power_budget_kw"],
            "open": sid in d["open_sites"],
        })
    total = d["summary"]["total_usd_per_month"]
    cents = cents_apportioned([t["usd_per_month"] for t in trees], total)
    for t, c in zip(trees, cents, strict=True):
        t["cents"] = c
        t["usd_rounded"] = f"{c // 100:,}.{c % 100:02d}"
        t["usd_apportioned"] = c / 100
    sc = d["scenario"]
    return {
        "scenario": {"name": sc["name"], "description": sc["description"], "variant": sc["variant"] or "base",
                     "variant_description": sc["variant_description"] or "", "content_hash": sc["content_hash"]},
        "catalog_version": d["catalog"]["version"],
        "plan_hash": d["plan_hash"],
        "status": d["solve"]["status"],
        "total_usd_per_month": total,
        "total_cents": round(total * 100),
        "total_rounded": f"{round(total * 100) // 100:,}.{round(total * 100) % 100:02d}",
        "owned_sunk_usd_per_month": d["summary"]["owned_sunk_usd_per_month"],
        "standby_usd_per_month": d["summary"]["standby_usd_per_month"],
        "policies": {"reserved_term": pol["reserved_term"], "pricing_models": pol["pricing_models"],
                     "hours_per_month": pol["hours_per_month"]},
        "time_slots": slots,
        "slot_start_utc": {t["id"]: t["start_hour"] for t in slots},
        "renderers": RENDERER_TEXT,
        "workloads": d["workloads"],
        "binding": d["binding"],
        "trees": trees,
    }


# ====================================================================== rendering
def _loader(templates_dir: Path | None) -> jinja2.BaseLoader:
    paths = [str(templates_dir)] if templates_dir is not None else []
    return jinja2.FileSystemLoader([*paths, str(DEFAULT_TEMPLATES)])


def environments(templates_dir: Path | None = None) -> tuple[jinja2.Environment, jinja2.Environment]:
    """(HCL environment, markdown environment): StrictUndefined, the filters hcl, ident, label,
    md, money; the HCL one lets only hcl/ident-filtered values through."""
    common = {"loader": _loader(templates_dir), "undefined": jinja2.StrictUndefined, "keep_trailing_newline": True,
              "trim_blocks": True, "lstrip_blocks": True, "autoescape": False}
    tf = jinja2.Environment(finalize=_only_safe, **common)
    mdenv = jinja2.Environment(**common)
    for env in (tf, mdenv):
        env.filters.update(hcl=hcl, ident=ident, label=label, md=md, money=money, cloud_name=cloud_name)
    return tf, mdenv


_ATTR = re.compile(r'^(\s*)([A-Za-z_][A-Za-z0-9_-]*|"[^"]*")\s*=\s(.*)$')


def align(text: str) -> str:
    """Align ``=`` of consecutive single-line attributes at the same indent, as ``terraform fmt``
    does; a line opening a multi-line value, a block, a blank or a comment ends a run."""
    lines = text.split("\n")
    out: list[str] = []
    run: list[tuple[str, str, str]] = []

    def flush():
        width = max((len(k) for _i, k, _v in run), default=0)
        out.extend(f"{i}{k.ljust(width)} = {v}" for i, k, v in run)
        run.clear()

    for line in lines:
        m = _ATTR.match(line)
        single = m is not None and not m.group(3).rstrip().endswith(("{", "[", "("))
        if single and (not run or run[0][0] == m.group(1)):
            run.append((m.group(1), m.group(2), m.group(3)))
            continue
        flush()
        if single:
            run.append((m.group(1), m.group(2), m.group(3)))
        else:
            out.append(line.rstrip())
    flush()
    return "\n".join(out)


def _module_files(templates_dir: Path | None) -> dict[str, str]:
    for base in ([templates_dir] if templates_dir is not None else []) + [DEFAULT_TEMPLATES]:
        mod = Path(base) / "terraform" / "modules" / "gpu_pool"
        if mod.is_dir():
            return {p.relative_to(mod).as_posix(): p.read_text(encoding="utf-8")
                    for p in sorted(mod.rglob("*")) if p.is_file()}
    raise ManifestError("templates: terraform/modules/gpu_pool not found")


def render_manifests(data: dict, templates_dir: Path | None = None) -> dict[str, str]:
    """Every manifest file of a result (relative path -> text), rendered from the templates."""
    ctx = manifest_context(data)
    tf, mdenv = environments(templates_dir)
    files: dict[str, str] = {}
    try:
        for tree in ctx["trees"]:
            for name in ("main.tf", "variables.tf", "outputs.tf"):
                files[f"{tree['dir']}/{name}"] = align(tf.get_template(f"terraform/{name}.j2").render(**ctx, tree=tree))
            files[f"{tree['dir']}/README.md"] = mdenv.get_template("terraform/README.md.j2").render(**ctx, tree=tree)
            if tree["renderer"] == "gpu_pool":
                for rel, text in _module_files(templates_dir).items():
                    files[f"{tree['dir']}/modules/gpu_pool/{rel}"] = text
        files["index.md"] = mdenv.get_template("terraform/index.md.j2").render(**ctx)
    except jinja2.TemplateError as exc:
        where = getattr(exc, "name", None) or getattr(exc, "filename", None) or "a template"
        raise ManifestError(f"template {where}: {exc}") from None
    return dict(sorted(files.items()))


def write_manifests(data: dict, out_dir: Path, templates_dir: Path | None = None) -> list[Path]:
    """Render and write every manifest file (each atomically); returns the paths written."""
    files = render_manifests(data, templates_dir)
    out_dir = Path(out_dir)
    written = []
    for rel, text in files.items():
        write_atomic(out_dir / rel, text)
        written.append(out_dir / rel)
    return written
