"""Per-stage time and memory of everything outside the model (issue 9, bench/results/pipeline.md):
load, candidates, explanations, result, verification, output files, for a scenario and a saved
plan (a solve's plan.json, or tools/crude_plan.py). Prints seconds and the process's peak RSS
after each stage; ``--mem`` adds tracemalloc's peak per stage, ``--cprofile STAGE`` a profile,
``--digest FILE`` sha256 digests of the candidate set, explanations, verification and every file
written (to compare two implementations).

    .venv/bin/python tools/pipeline_profile.py SCENARIO PLAN_JSON OUT_DIR [--mem] [--digest F]
"""
import argparse
import cProfile
import gc
import hashlib
import io
import json
import pstats
import resource
import sys
import time
import tracemalloc
from pathlib import Path

from planner import api
from planner.derive.candidates import build_candidates
from planner.derive.explain import explain_failover, explain_no_candidates
from planner.outputs.report import write_outputs
from planner.plan.plan import Plan
from planner.plan.result import build_result
from planner.verify import verify_result

ap = argparse.ArgumentParser()
ap.add_argument("scenario")
ap.add_argument("plan")
ap.add_argument("out")
ap.add_argument("--mem", action="store_true")
ap.add_argument("--cprofile", default="")
ap.add_argument("--digest", default="")
ap.add_argument("--skip", default="")
a = ap.parse_args()

def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

rows = []
state = {}
def stage(name, fn):
    if name in a.skip.split(","):
        return None
    gc.collect()
    if a.mem:
        tracemalloc.start()
        tracemalloc.reset_peak()
    prof = cProfile.Profile() if a.cprofile == name else None
    t = time.perf_counter()
    if prof:
        prof.enable()
    out = fn()
    if prof:
        prof.disable()
    dt = time.perf_counter() - t
    peak = None
    if a.mem:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    rows.append({"stage": name, "s": round(dt, 3), "maxrss_mib": round(rss(), 1), "traced_peak_mib": peak and round(peak, 1)})
    print(f"{name:12s} {dt:8.2f} s  maxrss {rss():8.1f} MiB" + (f"  traced peak {peak:8.1f} MiB" if peak else ""), flush=True)
    if prof:
        for order, n in (("cumulative", 45), ("tottime", 30)):
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats(order).print_stats(n)
            print(s.getvalue())
    return out

t0 = time.perf_counter()
res = stage("load", lambda: api.load_scenario(a.scenario))
cs = stage("candidates", lambda: build_candidates(res))
print(f"  triples {len(cs.triples):,} exclusions {len(cs.exclusions):,}")
expl = stage("explain", lambda: explain_no_candidates(cs) + explain_failover(cs))
plan = Plan.read(Path(a.plan))
result = stage("result", lambda: build_result(cs, plan))
def ver():
    r = verify_result(res, result)
    result.data["failover"] = r.failover
    result.data["verification"] = r.to_dict()
    return r
rep = stage("verify", ver)
print("  verify ok", rep.ok if rep else None, len(rep.violations) if rep else None, (rep.violations[:3] if rep else None))
stage("write", lambda: write_outputs(result, Path(a.out), plan=plan))
print(f"total {time.perf_counter() - t0:.2f} s, maxrss {rss():.1f} MiB")
if a.digest:
    def h(x):
        return hashlib.sha256(x.encode() if isinstance(x, str) else x).hexdigest()
    cand = h(json.dumps([[c.workload, c.site, c.offer.id, c.shape.tp, c.shape.gpus, c.shape.replicas_per_instance,
                         c.tiers, sorted((k, e.rps, e.limit) for k, e in c.rps.items())] for c in cs.triples], default=str))
    excl = h(json.dumps([[e.workload, e.user_region, e.site, e.offer, e.reason] for e in cs.exclusions]))
    other = h(json.dumps([sorted((w, sorted(r.items())) for w, r in cs.routes.items()), sorted(cs.failover_sites.items()),
                          sorted((str(k), v.rtt_ms, v.rtt_source) for k, v in cs.rtt.items())], default=str))
    files = {p.name: h(p.read_bytes()) for p in sorted(Path(a.out).iterdir()) if p.is_file()}
    d = {"candidates": cand, "exclusions": excl, "routes_fo_rtt": other, "explain": h(json.dumps(expl)),
         "verify": h(json.dumps(rep.to_dict(), default=str)) if rep else None, "files": files}
    Path(a.digest).write_text(json.dumps(d, indent=1, sort_keys=True))
json.dump(rows, sys.stderr)
