"""Read a scenario file, apply a variant, validate the shape.

Errors come back as :class:`planner.errors.InputError` whose problems name the file, the path
by id (``workloads[chat_eu].residency``), the bad value and the fix. No traceback ever reaches
the user from here.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from planner.errors import InputError, Problem, did_you_mean
from planner.input.schema import ID_PATTERN, Scenario

#: Field used as the key of each list's items when addressing them by id.
LIST_KEYS = ("id", "user_region", "accelerator", "provider")


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario plus where it came from."""

    scenario: Scenario
    path: Path
    content_hash: str
    variant: str | None
    raw: dict


def _item_key(item: Any) -> str | None:
    if isinstance(item, dict):
        for key in LIST_KEYS:
            if key in item and isinstance(item[key], str | int | float):
                return str(item[key])
    return None


def format_loc(raw: Any, loc: tuple) -> str:
    """Turn a pydantic location into a path by id: ``('workloads', 2, 'model')`` ->
    ``workloads[chat_eu].model``, looking ids up in the raw document."""
    out = ""
    node = raw
    for part in loc:
        if isinstance(part, int) and isinstance(node, list):
            item = node[part] if 0 <= part < len(node) else None
            key = _item_key(item)
            out += f"[{key}]" if key is not None else f"[{part}]"
            node = item
        else:
            text = str(part)
            # pydantic adds the union branch name ("list[str]", "literal['any','same_as_user']",
            # "function-after[...]"); it means nothing to a user.
            branch = "[" in text or text.startswith(("function-", "literal", "list", "str", "int", "float", "dict"))
            if branch and (not isinstance(node, dict | list) or (isinstance(node, dict) and text not in node)):
                continue
            out += f".{text}" if out else text
            node = node.get(part) if isinstance(node, dict) else None
    return out


_FIXES = {
    "extra_forbidden": "remove this key or check its spelling against `planner schema`",
    "missing": "add this required field",
    "string_pattern_mismatch": "ids use lower-case letters, digits, '-' and '_', starting with a letter or digit",
    "greater_than_equal": "use a value in the allowed range",
    "less_than_equal": "use a value in the allowed range",
    "greater_than": "use a value in the allowed range",
    "literal_error": "use one of the allowed values",
    "too_short": "add at least one item",
}

_BOUNDS = {"greater_than_equal": (">=", "ge"), "less_than_equal": ("<=", "le"), "greater_than": (">", "gt"),
           "less_than": ("<", "lt")}

#: Fixes for the schema's own value errors, by a phrase of their message (else the generic fix).
_VALUE_FIXES = (
    ("profile needs exactly 24", "give 24 multipliers, one per hour 0-23 of the user region's local time"),
    ("time slots", "make each slot start where the previous one ends, from 0 to 24, or omit time_slots "
                   "for six 4-hour slots"),
    ("take `batch`, not `demand`", "remove `demand`; a batch workload's volume is batch.tokens_per_day"),
    ("need `batch:", "add `batch: {tokens_per_day: ..., window_utc_hours: [start, end]}`"),
    ("need `demand`", "add `demand:` entries with user_region and peak_rps"),
    ("`batch` is only for", "remove `batch`, or change kind to batch_embeddings"),
    ("produces no output tokens", "set output_tokens: 0 (or remove it) in those query classes"),
    ("cannot escalate to itself", "escalate to another workload's id, or remove routing"),
)


def _pydantic_problems(err: ValidationError, raw: dict, file: str, prefix: str = "") -> list[Problem]:
    problems = []
    for e in err.errors(include_url=False):
        loc = tuple(e.get("loc", ()))
        path = format_loc(raw, loc)
        if prefix:
            path = f"{prefix}{path}" if not path else f"{prefix}.{path}"
        msg = e.get("msg", "invalid value")
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        etype = e.get("type", "")
        fix = _FIXES.get(etype) or next((f for phrase, f in _VALUE_FIXES if phrase in msg),
                                        "correct the value as described")
        bound = _BOUNDS.get(etype)
        if bound and bound[1] in (e.get("ctx") or {}):
            fix = f"use a value {bound[0]} {e['ctx'][bound[1]]}"
        value = e.get("input") if etype not in ("missing",) else None
        suggestion = None
        if etype == "string_pattern_mismatch" and isinstance(value, str) and value.lower() != value:
            suggestion = value.lower() if re.match(ID_PATTERN, value.lower()) else None
        if etype == "extra_forbidden" and loc:
            parent_loc = loc[:-1]
            model_fields = _fields_at(parent_loc)
            suggestion = did_you_mean(str(loc[-1]), model_fields) if model_fields else None
            value = None
        if isinstance(value, dict | list) and len(repr(value)) > 80:
            value = None  # e.g. a whole 24-hour profile: the message says what is wrong with it
        problems.append(Problem(file=file, path=path, message=msg, value=value, fix=fix, did_you_mean=suggestion))
    return problems


def _fields_at(loc: tuple) -> list[str]:
    """Field names of the pydantic model at a location (for did-you-mean on unknown keys)."""
    import typing

    from pydantic import BaseModel

    model: Any = Scenario
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        ann = field.annotation
        # unwrap list[...] / X | None / dict[str, X]
        for _ in range(3):
            args = typing.get_args(ann)
            if not args:
                break
            cand = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if cand:
                ann = cand[0]
                break
            ann = args[-1]
        model = ann
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


#: libyaml's parser (the same safe constructors, 20-40x faster on large scenarios) when PyYAML
#: was built with it
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


#: a JSON number YAML 1.1 also reads as a float (PyYAML's float resolver, finite values)
_YAML_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?$")


class _NotPlainJson(Exception):
    """The document is not JSON that YAML reads the same way: parse it as YAML."""


def _yaml_float(text: str) -> float:
    if not _YAML_FLOAT.match(text):
        raise _NotPlainJson(text)  # e.g. 1e5: a string in YAML 1.1
    return float(text)


def _no_constant(text: str):
    raise _NotPlainJson(text)  # NaN / Infinity: not JSON, plain strings in YAML


def _json_as_yaml(data: bytes):
    """A JSON document (JSON is YAML: generated scenarios are written as JSON) read with the json
    module, when YAML would read it the same way: no escapes, no tabs, every number one YAML 1.1
    reads as the same int or float. Else None (parse it as YAML)."""
    head = data.lstrip()[:1]
    if head != b"{" or b"\\" in data or b"\t" in data:
        return None
    try:
        import json

        return json.loads(data, parse_float=_yaml_float, parse_constant=_no_constant)
    except (_NotPlainJson, ValueError):
        return None


def _parse_yaml(data: bytes):
    """``yaml.safe_load`` of ``data``: a plain JSON document through the json module (the same
    values), else libyaml when available. A document libyaml refuses is parsed again by the
    pure-Python parser, so an error names the same line, column and problem whichever parser is
    installed."""
    fast = _json_as_yaml(data)
    if fast is not None:
        return fast
    if _FAST_LOADER is not None:
        try:
            return yaml.load(data, Loader=_FAST_LOADER)  # noqa: S506 (CSafeLoader is the safe loader)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(data)


def read_yaml(path: Path) -> tuple[dict, bytes]:
    file = str(path)
    if not path.exists():
        raise InputError(Problem(file=file, path="", message="file not found", fix="check the path"))
    if path.is_dir():
        raise InputError(Problem(file=file, path="", message="is a directory, not a scenario file",
                                 fix="pass the scenario's .yaml file"))
    data = path.read_bytes()
    try:
        raw = _parse_yaml(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(Problem(file=file, path=where, message=f"not valid YAML: {problem}",
                                 fix="correct the YAML syntax at that position (indentation, quotes, colons)")) from None
    if not isinstance(raw, dict):
        raise InputError(Problem(file=file, path="", message="a scenario must be a YAML mapping (key: value) at the top",
                                 value=type(raw).__name__, fix="start the file with `name: my-scenario`"))
    return raw, data


# ----------------------------------------------------------------- variant patches
_SEG = re.compile(r"^([a-z_][a-z0-9_]*)(?:\[([^\]]+)\])?$")


class _PathError(ValueError):
    """A variant patch path that does not resolve; ``hint`` replaces ``wrong`` (a field name or an
    id in brackets) to give the path the user probably meant."""

    def __init__(self, message: str, wrong: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.wrong, self.hint = wrong, hint


def _corrected_path(path: str, wrong: str | None, hint: str | None) -> str | None:
    if not (wrong and hint):
        return None
    segs = _parse_path(path)
    for i, (name, key) in enumerate(segs):
        if key == wrong:
            segs[i] = (name, hint)
            break
        if name == wrong:
            segs[i] = (hint, key)
            break
    else:
        return None
    return ".".join(n + (f"[{k}]" if k is not None else "") for n, k in segs)


def _parse_path(path: str) -> list[tuple[str, str | None]]:
    segs = []
    for part in path.split("."):
        m = _SEG.match(part.strip())
        if not m:
            raise ValueError(f"bad path segment {part!r}; write name or name[id] or name[*]")
        segs.append((m.group(1), m.group(2)))
    return segs


def _select(nodes: list[Any], seg: tuple[str, str | None], trail: str) -> list[Any]:
    name, key = seg
    out = []
    holders = [n for n in nodes if isinstance(n, dict) and name in n]
    if not holders:
        keys = sorted({k for n in nodes if isinstance(n, dict) for k in n})
        hint = did_you_mean(name, keys)
        raise _PathError(f"{trail}{name}: no such field", name, hint)
    # under a wildcard, items without the field (e.g. a batch workload's demand) are skipped
    for node in holders:
        child = node[name]
        if key is None:
            out.append(child)
            continue
        if isinstance(child, dict):  # e.g. variants, reserved_discount
            items = list(child.items())
            matched = [v for k, v in items if key in ("*", k)]
            known = [k for k, _ in items]
        elif isinstance(child, list):
            matched = [it for it in child if key == "*" or _item_key(it) == key]
            known = [k for k in (_item_key(it) for it in child) if k is not None]
        else:
            raise ValueError(f"{trail}{name} is not a list; drop [{key}]")
        if not matched:
            hint = did_you_mean(key, known)
            raise _PathError(f"{trail}{name}[{key}]: no item with that id"
                             + (f"; known: {', '.join(known[:12])}" if known and not hint else ""), key, hint)
        out.extend(matched)
    return out


def _apply_path_patch(raw: dict, path: str, multiply: float | None, set_value: Any) -> int:
    """Apply one path patch in place; return how many values changed."""
    segs = _parse_path(path)
    parents = [raw]
    trail = ""
    for seg in segs[:-1]:
        parents = _select(parents, seg, trail)
        trail += seg[0] + (f"[{seg[1]}]" if seg[1] else "") + "."
    last_name, last_key = segs[-1]
    if last_key is not None:
        raise ValueError(f"the last segment of a path must be a field, not {last_name}[{last_key}]")
    changed = 0
    for parent in parents:
        if not isinstance(parent, dict):
            raise ValueError(f"{trail}{last_name}: parent is not a mapping")
        if set_value is not None:
            parent[last_name] = copy.deepcopy(set_value)
            changed += 1
            continue
        if last_name not in parent:
            hint = did_you_mean(last_name, list(parent))
            raise _PathError(f"{trail}{last_name}: field not set in the scenario, so there is nothing to multiply"
                             + ("" if hint else "; use set instead"), last_name, hint)
        val = parent[last_name]
        if isinstance(val, bool) or not isinstance(val, int | float | list):
            raise ValueError(f"{trail}{last_name} is {type(val).__name__}, cannot multiply")
        if isinstance(val, list):
            if not all(isinstance(x, int | float) for x in val):
                raise ValueError(f"{trail}{last_name} is a list of non-numbers, cannot multiply")
            parent[last_name] = [x * multiply for x in val]
        else:
            new = val * multiply
            parent[last_name] = int(round(new)) if isinstance(val, int) and last_name.endswith("tokens") else new
        changed += 1
    return changed


def apply_variant(raw: dict, variant: str, file: str) -> dict:
    """Return a copy of the raw scenario with the named variant's patches applied."""
    variants = raw.get("variants") or {}
    if not isinstance(variants, dict) or variant not in variants:
        known = list(variants) if isinstance(variants, dict) else []
        raise InputError(Problem(file=file, path=f"variants.{variant}", message="no such variant",
                                 did_you_mean=did_you_mean(variant, known),
                                 fix=f"use one of: {', '.join(known) or '(none defined)'}"))
    out = copy.deepcopy(raw)
    spec = variants[variant] or {}
    patches = spec.get("patches", []) if isinstance(spec, dict) else []
    problems = []
    for i, patch in enumerate(patches):
        where = f"variants.{variant}.patches[{i}]"
        if not isinstance(patch, dict):
            problems.append(Problem(file=file, path=where, message="a patch must be a mapping", fix="see the README's variants section"))
            continue
        try:
            if "path" in patch:
                _apply_path_patch(out, str(patch["path"]), patch.get("multiply"), patch.get("set"))
            elif "price" in patch:
                sel = dict(patch["price"] or {})
                sel["factor"] = patch.get("multiply")
                out.setdefault("price_multipliers", []).append(sel)
            elif "lose_site" in patch:
                out.setdefault("lost_sites", []).append(patch["lose_site"])
            elif "only" in patch:
                out["only"] = patch["only"]
        except ValueError as exc:
            hint = _corrected_path(str(patch["path"]), exc.wrong, exc.hint) if isinstance(exc, _PathError) else None
            problems.append(Problem(file=file, path=f"{where}.path", message=str(exc), value=patch.get("path"),
                                    did_you_mean=hint,
                                    fix="address list items by their id (or * for all), e.g. "
                                        "workloads[<workload id>].demand[*].peak_rps"))
    if problems:
        raise InputError(problems)
    return out


def load_raw(path: str | Path, variant: str | None = None) -> LoadedScenario:
    """Parse and validate the shape of a scenario file (no catalog checks)."""
    path = Path(path)
    file = str(path)
    raw, data = read_yaml(path)
    # validate the base document first so its errors point at the base, not a patched copy
    try:
        base = Scenario.model_validate(raw)
    except ValidationError as err:
        raise InputError(_pydantic_problems(err, raw, file)) from None
    doc = raw
    scenario = base
    if variant is not None:
        doc = apply_variant(raw, variant, file)
        try:
            scenario = Scenario.model_validate(doc)
        except ValidationError as err:
            probs = _pydantic_problems(err, doc, file)
            for p in probs:
                p.message = f"after applying variant {variant!r}: {p.message}"
                p.fix = f"correct the patches of variants.{variant} ({p.fix})"
            raise InputError(probs) from None
    digest = hashlib.sha256(data).hexdigest()[:16]
    return LoadedScenario(scenario=scenario, path=path, content_hash=digest, variant=variant, raw=doc)
