"""Everything outside the model gives the same bytes as before it was made fast (issue 9).

A generated 50 x 20 scenario (``tests/data/gen50x20.json``, bench/generate.py seed 7) and a
crude plan of it (``tests/data/gen50x20_plan.json``, tools/crude_plan.py on main's throughput model), plus the shipped examples: the candidate
set (triples with shapes, tiers and rates; every exclusion with its reason; routes; failover
sites; RTTs), the explanations, result.json, the verification report and every output file are
compared with digests saved from the implementation before the speed work
(``tests/golden/pipeline_digests.json``; regenerate only with ``--update-golden``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from planner import api
from planner.derive.candidates import build_candidates
from planner.derive.explain import explain_failover, explain_no_candidates
from planner.plan.plan import Plan
from planner.plan.result import build_result
from planner.verify import verify_result

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
GOLDEN = ROOT / "tests" / "golden" / "pipeline_digests.json"
CASES = [("gen50x20", "tests/data/gen50x20.json", None), ("eu_saas", "workloads/eu_saas.yaml", None),
         ("eu_saas-stress", "workloads/eu_saas.yaml", "stress"),
         ("global_chat", "workloads/global_chat.yaml", None),
         ("embeddings_pipeline", "workloads/embeddings_pipeline.yaml", None), ("gen50x20-tight", None, None),
         ("eu_saas-cloud_only", "workloads/eu_saas.yaml", "cloud_only"),
         ("global_chat-cloud_only", "workloads/global_chat.yaml", "cloud_only"),
         ("embeddings_pipeline-cloud_only", "workloads/embeddings_pipeline.yaml", "cloud_only"),
         ("gen50x20-tight-cloud", None, "cloud"), ("gen50x20-tight-declared", None, "declared")]


def tight(tmp: Path) -> str:
    """The 50 x 20 scenario with SLOs some users cannot meet and N+1 some cannot keep, so that
    the explanations have something to say."""
    doc = json.loads((DATA / "gen50x20.json").read_text())
    for i, w in enumerate(doc["workloads"]):
        if "latency" in w and i % 3 == 0:
            w["latency"]["network_rtt_ms"] = 12.0
        if "latency" in w and i % 5 == 1:
            w["redundancy"] = {"mode": "n_plus_1", "failover_network_rtt_ms": 30.0}
        if "latency" in w and i % 7 == 2:
            w["latency"]["ttft_ms"] = 5.0
    doc["variants"] = {k: {"description": f"only {k}", "patches": [{"only": k}]} for k in ("cloud", "declared")}
    path = tmp / "gen50x20-tight.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _h(x) -> str:
    text = x if isinstance(x, bytes) else json.dumps(x, sort_keys=True, default=str).encode()
    return hashlib.sha256(text).hexdigest()


def candidate_digests(cs) -> dict[str, str]:
    return {
        "triples": _h([[c.workload, c.site, c.offer.id, c.shape.tp, c.shape.gpus, c.shape.replicas_per_instance,
                        list(c.tiers), [[k, repr(e)] for k, e in c.rps.items()]] for c in cs.triples]),
        "exclusions": _h([[e.workload, e.user_region, e.site, e.offer, e.reason] for e in cs.exclusions]),
        "routes": _h([[w, [[u, list(ss)] for u, ss in r.items()]] for w, r in cs.routes.items()]),
        "failover_sites": _h([[list(k), v] for k, v in cs.failover_sites.items()]),
        "rtt": _h(sorted([list(k), v.rtt_ms, v.rtt_source] for k, v in cs.rtt.items())),
        "egress": _h(sorted([list(k), v.usd_per_gb, v.source] for k, v in cs.egress.items())),
        "loads": _h({w: [repr(lc) for lc in wl.classes] + [sorted(wl.peak_rps.items())] for w, wl in cs.loads.items()}),
        "explain": _h(explain_no_candidates(cs) + explain_failover(cs)),
    }


def digests(path: str, variant: str | None, plan_path: Path | None, out: Path) -> dict[str, str]:
    from planner.outputs.report import write_outputs

    res = api.load_scenario(path, variant)
    cs = build_candidates(res)
    d = candidate_digests(cs)
    if plan_path is None:
        return d
    plan = Plan.read(plan_path)
    result = build_result(cs, plan)
    rep = verify_result(res, result)
    result.data["failover"] = rep.failover
    result.data["verification"] = rep.to_dict()
    d["verify"] = _h(rep.to_dict())
    d["result.json"] = _h(result.to_json().encode())
    write_outputs(result, out, plan=plan)
    for f in sorted(out.iterdir()):
        d[f"file:{f.name}"] = _h(f.read_bytes())
    return d


@pytest.mark.parametrize("name,path,variant", CASES, ids=[c[0] for c in CASES])
def test_pipeline_outputs_unchanged(name, path, variant, tmp_path, update_golden):
    plan = DATA / "gen50x20_plan.json" if name == "gen50x20" else None
    got = digests(path or tight(tmp_path), variant, plan, tmp_path / "out")
    saved = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if update_golden:
        saved[name] = got
        GOLDEN.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
        return
    assert name in saved, "no saved digests (run with --update-golden once)"
    diff = sorted(k for k in set(got) | set(saved[name]) if got.get(k) != saved[name].get(k))
    assert not diff, f"{name}: outputs differ from the saved digests in {diff}"



@pytest.mark.parametrize("path", ["tests/data/gen50x20.json", "workloads/embeddings_pipeline.yaml"])
def test_link_tables_are_the_graph_matrices(path):
    from planner.derive.topology import build_graph, egress_matrix, link_tables, rtt_matrix

    res = api.load_scenario(path)
    g = build_graph(res)
    rtts, eg = link_tables(res)
    assert list(rtts.items()) == list(rtt_matrix(g).items())
    assert list(eg.items()) == list(egress_matrix(g).items()) and eg
