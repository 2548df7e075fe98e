"""`planner validate`: every shipped example is valid, and every kind of bad input is reported
with the file, the path by id, the bad value, a did-you-mean where one fits and "To fix:",
with exit code 2 and never a traceback."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_shipped_example_validates(path: Path, run_cli):
    result = run_cli("validate", path, "--all-variants")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    variants = (yaml.safe_load(path.read_text()) or {}).get("variants") or {}
    for name in variants:
        assert f"variant {name}: ok" in result.stdout


def test_examples_exist():
    assert EXAMPLE_FILES, "workloads/ ships no example scenario"


# ----------------------------------------------------------------------------- bad inputs
def _workload(doc: dict, wid: str) -> dict:
    return next(w for w in doc["workloads"] if w["id"] == wid)


def _demand(doc: dict, wid: str, region: str) -> dict:
    return next(d for d in _workload(doc, wid)["demand"] if d["user_region"] == region)


@dataclass
class Case:
    """One bad input: how to break eu_saas.yaml and what the report must say."""

    id: str
    mutate: Callable[[dict], None] | None = None
    raw_text: str | None = None  # written verbatim instead of a mutated example
    no_file: bool = False  # do not write the file at all
    args: tuple[str, ...] = ()
    path: str = ""  # the item path by id that must be named
    expect: tuple[str, ...] = ()  # further substrings of the report
    did_you_mean: str | None = None


def _restrict_to_l4(d: dict) -> None:
    d["sites"] = []
    _workload(d, "support-chat")["data_sources"] = []
    d["cloud"] = [{"provider": "gcp", "regions": ["europe-west4"], "accelerators": ["L4"]}]
    _workload(d, "support-chat-large")["model"] = "llama-3-1-405b"


def _add_japan_users(d: dict) -> None:
    d["user_regions"].append({"id": "jp", "location": {"region": "aws/ap-northeast-1"}, "utc_offset_hours": 9})
    _workload(d, "doc-rerank")["demand"].append({"user_region": "jp", "peak_rps": 5})


def _add_variant(name: str, patches: list[dict]) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        d["variants"][name] = {"description": "broken on purpose", "patches": patches}

    return mutate


def _set(path: list, value) -> Callable[[dict], None]:
    """Set doc[...][...] = value, where list steps are ids (or ints for plain lists)."""

    def mutate(d: dict) -> None:
        node = d
        for step in path[:-1]:
            if isinstance(node, list) and isinstance(step, str):
                node = next(x for x in node if isinstance(x, dict) and step in (x.get("id"), x.get("user_region"),
                                                                                  x.get("accelerator"), x.get("provider")))
            else:
                node = node[step]
        node[path[-1]] = value

    return mutate


BAD_CASES = [
    Case("yaml-syntax-error", raw_text="name: broken\nworkloads:\n  - id: a\n    model: [llama\n  kind: x: y\n",
         path="line ", expect=("not valid YAML", "column ")),
    Case("file-not-found", no_file=True, expect=("file not found",)),
    Case("unknown-top-level-key", mutate=lambda d: d.update(varients=d.pop("variants")),
         path="varients", expect=("Extra inputs are not permitted",), did_you_mean="variants"),
    Case("upper-case-id", mutate=_set(["workloads", "doc-rerank", "id"], "Doc-Rerank"),
         path="workloads[Doc-Rerank].id", expect=("'Doc-Rerank'", "lower-case"), did_you_mean="doc-rerank"),
    Case("unknown-owned-accelerator", mutate=_set(["sites", "fra-dc1", "owned_gpus", "H100", "accelerator"], "H10O"),
         path="sites[fra-dc1].owned_gpus[H10O].accelerator", expect=("unknown accelerator",), did_you_mean="H100"),
    Case("unknown-cloud-region",
         mutate=_set(["cloud", "azure", "regions"], ["westeurop", "germanywestcentral", "francecentral"]),
         path="cloud[azure].regions", expect=("'westeurop'",), did_you_mean="westeurope"),
    Case("unknown-provider", mutate=_set(["cloud", "gcp", "provider"], "gcpp"),
         path="cloud[gcpp].provider", expect=("unknown provider",), did_you_mean="gcp"),
    Case("unknown-model", mutate=_set(["workloads", "support-chat", "model"], "llama-3-1-8"),
         path="workloads[support-chat].model", expect=("unknown model",), did_you_mean="llama-3-1-8b"),
    Case("demand-unknown-user-region", mutate=_set(["workloads", "doc-rerank", "demand", "fr", "user_region"], "frr"),
         path="workloads[doc-rerank].demand[frr].user_region", expect=("unknown user region",), did_you_mean="fr"),
    Case("profile-23-values", mutate=_set(["workloads", "doc-rerank", "demand", "de", "profile"], [0.5] * 23),
         path="workloads[doc-rerank].demand[de].profile", expect=("24", "got 23")),
    Case("profile-value-above-1",
         mutate=_set(["workloads", "doc-rerank", "demand", "de", "profile"], [0.5] * 10 + [1.5] + [0.5] * 13),
         path="workloads[doc-rerank].demand[de].profile[10]", expect=("(got 1.5)", "To fix: use a value <= 1")),
    Case("shares-not-summing-to-1", mutate=_set(["workloads", "support-chat", "query_classes", "short", "share"], 0.6),
         path="workloads[support-chat].query_classes", expect=("sum to 0.9",)),
    Case("residency-jp-admits-no-site", mutate=_set(["workloads", "doc-rerank", "residency"], ["JP"]),
         path="workloads[doc-rerank].residency", expect=("admits no site", "'JP'")),
    Case("residency-same-as-user-no-site", mutate=_add_japan_users,
         path="workloads[doc-rerank].residency", expect=("admits no site", "for users in JP", "same_as_user")),
    Case("model-fits-no-accelerator", mutate=_restrict_to_l4,
         path="workloads[support-chat-large].model", expect=("fits no accelerator", "llama-3-1-405b")),
    Case("batch-window-not-slot-union", mutate=_set(["workloads", "doc-embed", "batch", "window_utc_hours"], [21, 8]),
         path="workloads[doc-embed].batch.window_utc_hours", expect=("21:00", "union of time slots")),
    Case("escalate-to-unknown", mutate=_set(["workloads", "support-chat", "routing", "escalate_to"], "support-chat-lrge"),
         path="workloads[support-chat].routing.escalate_to", expect=("unknown workload",),
         did_you_mean="support-chat-large"),
    Case("duplicate-workload-id", mutate=lambda d: d["workloads"].append(copy.deepcopy(_workload(d, "doc-embed"))),
         path="workloads[doc-embed]", expect=("duplicate id",)),
    Case("time-slots-not-contiguous", mutate=_set(["time_slots", "morning", "start_hour"], 9),
         path="time_slots", expect=("contiguous", "'morning'", "expected 8")),
    Case("variant-path-unknown-id",
         mutate=_add_variant("typo", [{"path": "workloads[nope].cache_hit_rate", "set": 0.2}]),
         args=("--variant", "typo"), path="variants.typo.patches[0].path",
         expect=("workloads[nope]", "no item with that id", "support-chat")),
    Case("variant-path-misspelt-id",
         mutate=_add_variant("typo", [{"path": "workloads[support-chatt].cache_hit_rate", "set": 0.2}]),
         args=("--variant", "typo"), path="variants.typo.patches[0].path",
         did_you_mean="workloads[support-chat].cache_hit_rate"),
    Case("variant-path-misspelt-field",
         mutate=_add_variant("typo", [{"path": "workloads[*].demnd[*].peak_rps", "multiply": 2}]),
         args=("--variant", "typo"), path="variants.typo.patches[0].path", expect=("no such field",),
         did_you_mean="workloads[*].demand[*].peak_rps"),
    Case("unknown-variant", args=("--variant", "stres"), path="variants.stres", expect=("no such variant",),
         did_you_mean="stress"),
    Case("lost-site-unknown", mutate=lambda d: d.update(lost_sites=["fra-dc9"]),
         path="lost_sites", expect=("unknown site", "'fra-dc9'"), did_you_mean="fra-dc1"),
    Case("variant-lose-site-unknown", mutate=_add_variant("outage", [{"lose_site": "ams-dc3"}]),
         args=("--variant", "outage"), path="variants.outage.patches[0].lose_site",
         expect=("unknown site", "'ams-dc3'"), did_you_mean="ams-dc2"),
    Case("throughput-profile-missing", mutate=lambda d: d.update(throughput_profile="measured/nope.csv"),
         path="throughput_profile", expect=("not found", "measured/nope.csv")),
    Case("query-longer-than-context",
         mutate=_set(["workloads", "doc-rerank", "query_classes", "top40", "input_tokens"], 9000),
         path="workloads[doc-rerank].query_classes[top40].input_tokens", expect=("context window of 8192", "9000")),
    Case("negative-peak-rps", mutate=_set(["workloads", "support-chat", "demand", "fr", "peak_rps"], -5),
         path="workloads[support-chat].demand[fr].peak_rps", expect=("(got -5)", "To fix: use a value >= 0")),
    Case("batch-workload-with-demand",
         mutate=_set(["workloads", "doc-embed", "demand"], [{"user_region": "de", "peak_rps": 1}]),
         path="workloads[doc-embed]", expect=("not `demand`",)),
    Case("unknown-data-source-site",
         mutate=_set(["workloads", "support-chat", "data_sources", "ticket-history", "region"], "fra-dc"),
         path="workloads[support-chat].data_sources[ticket-history].region", expect=("unknown region or site",),
         did_you_mean="fra-dc1"),
    Case("unknown-user-location-region", mutate=_set(["user_regions", "se", "location"], {"region": "azure/swedencentrl"}),
         path="user_regions[se].location.region", expect=("unknown catalog region",),
         did_you_mean="azure/swedencentral"),
    Case("output-tokens-on-reranker",
         mutate=_set(["workloads", "doc-rerank", "query_classes", "top40", "output_tokens"], 50),
         path="workloads[doc-rerank]", expect=("output_tokens: 0", "top40")),
    Case("missing-required-field", mutate=lambda d: _workload(d, "support-chat").pop("model"),
         path="workloads[support-chat].model", expect=("Field required",)),
]


def _write_case(case: Case, example: Path, tmp_path: Path) -> Path:
    target = tmp_path / f"{case.id}.yaml"
    if case.no_file:
        return target
    if case.raw_text is not None:
        target.write_text(case.raw_text)
        return target
    doc = yaml.safe_load(example.read_text())
    if case.mutate is not None:
        case.mutate(doc)
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


def test_cases_are_distinct():
    ids = [c.id for c in BAD_CASES]
    assert len(ids) == len(set(ids)) >= 18


@pytest.mark.parametrize("case", BAD_CASES, ids=[c.id for c in BAD_CASES])
def test_bad_input_is_reported(case: Case, example_path, tmp_path, run_cli):
    target = _write_case(case, example_path, tmp_path)
    result = run_cli("validate", target, *case.args)
    report = result.stderr
    assert result.exit_code == 2, f"exit {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{target}: " in report, report
    if case.path:
        assert f"{target}: {case.path}" in report, report
    for text in case.expect:
        assert text in report, f"{text!r} missing from:\n{report}"
    assert "\n    To fix: " in report, report
    if case.did_you_mean:
        assert f"Did you mean {case.did_you_mean!r}?" in report, report
    # positions inside lists are named by id, never by index (a profile's hour is a plain index)
    assert "workloads[0]" not in report and "workloads[1]" not in report


def test_yaml_error_names_line_and_column(tmp_path, run_cli):
    target = tmp_path / "bad.yaml"
    target.write_text("name: broken\nworkloads:\n  - id: a\n    model: [llama\n  kind: x: y\n")
    report = run_cli("validate", target).stderr
    assert f"{target}: line " in report and ", column " in report


def test_all_problems_reported_together(example_path, tmp_path, run_cli):
    doc = yaml.safe_load(example_path.read_text())
    _workload(doc, "support-chat")["model"] = "llama-3-1-8"
    next(c for c in doc["cloud"] if c["provider"] == "gcp")["provider"] = "gcpp"
    target = tmp_path / "two.yaml"
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run_cli("validate", target)
    assert result.exit_code == 2
    assert "2 problems found" in result.stderr
    assert f"{target}: workloads[support-chat].model" in result.stderr
    assert f"{target}: cloud[gcpp].provider" in result.stderr
    assert result.stderr.count("To fix:") == 2


def test_all_schema_problems_reported_together(example_path, tmp_path, run_cli):
    doc = yaml.safe_load(example_path.read_text())
    _demand(doc, "support-chat", "fr")["peak_rps"] = -1
    _workload(doc, "doc-embed")["cache_hit_rate"] = 2
    target = tmp_path / "two.yaml"
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run_cli("validate", target)
    assert result.exit_code == 2
    assert f"{target}: workloads[support-chat].demand[fr].peak_rps" in result.stderr
    assert f"{target}: workloads[doc-embed].cache_hit_rate" in result.stderr


def test_all_variants_names_the_broken_variant(example_path, tmp_path, run_cli):
    doc = yaml.safe_load(example_path.read_text())
    doc["variants"]["stress"]["patches"].append({"path": "workloads[nope].cache_hit_rate", "set": 0.1})
    target = tmp_path / "variant.yaml"
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run_cli("validate", target, "--all-variants")
    assert result.exit_code == 2
    assert f"{target}: variants.stress.patches[5].path" in result.stderr
    assert "To fix:" in result.stderr


def test_problem_only_in_a_variant_names_the_variant(example_path, tmp_path, run_cli):
    doc = yaml.safe_load(example_path.read_text())
    doc["variants"]["long"] = {"patches": [{"path": "workloads[doc-rerank].query_classes[*].input_tokens",
                                             "multiply": 2}]}
    target = tmp_path / "variant.yaml"
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert run_cli("validate", target).exit_code == 0
    result = run_cli("validate", target, "--all-variants")
    assert result.exit_code == 2
    assert f"{target}: workloads[doc-rerank].query_classes[top40].input_tokens: after applying variant 'long'" \
        in result.stderr
    assert "To fix:" in result.stderr and "Traceback" not in result.output


def test_schema_command_prints_json_schema(run_cli):
    result = run_cli("schema")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert "workloads" in schema["properties"]
    assert "name" in schema["properties"]
