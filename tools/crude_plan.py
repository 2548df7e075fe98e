"""A crude but complete plan of a scenario, for timing result building, verification and output
writing at sizes where no solve is at hand (bench/results/pipeline.md). Not optimal and it may
break promises (verification reports what it finds, which is the point: every check runs).

Each user region goes to its nearest candidate site with an on-demand offer that runs every
class; batch work runs at the first such candidate over its window; N+1: the same replicas again
at the next failover site.

    .venv/bin/python tools/crude_plan.py SCENARIO PLAN_JSON
"""
import math
import sys
import time
from collections import defaultdict

from planner import api
from planner.derive.candidates import build_candidates
from planner.plan.plan import Plan, SolveRecord

t0 = time.time()
res = api.load_scenario(sys.argv[1])
cs = build_candidates(res)
s = res.scenario
slots = [t.id for t in s.time_slots]
hours = {t.id: t.hours for t in s.time_slots}
byw = cs.by_workload()
reps = defaultdict(float)
serving = defaultdict(float)
routes = {}
def ok(c):
    return "on_demand" in c.tiers and all(e.rps > 0 for e in c.rps.values())
for w in s.workloads:
    wl = cs.loads[w.id]
    cands = [c for c in byw[w.id] if ok(c)]
    if not cands:
        continue
    by_site = {}
    for c in cands:
        by_site.setdefault(c.site, c)
    def add(c, t, loads, serve=True, w=w):
        need = sum(x / c.rps[k].rps for k, x in loads.items() if x > 0)
        if serve:
            for k, x in loads.items():
                if x > 0:
                    serving[(w.id, k, c.site, c.offer.id, t)] += x
        reps[(w.id, c.site, c.offer.id, "on_demand", t)] += need
    if w.is_batch:
        c = cands[0]
        window_s = 3600.0 * sum(hours[x] for x in wl.batch_slots)
        for t in wl.batch_slots:
            add(c, t, {k: d / window_s for k, d in wl.batch_requests_per_day.items()})
        continue
    for u, ss in cs.routes[w.id].items():
        good = sorted((sid for sid in ss if sid in by_site), key=lambda sid: (cs.rtt[(u, sid)].rtt_ms or 0, sid))
        if not good:
            continue
        c = by_site[good[0]]
        fo = [sid for key, ss in cs.failover_sites.items() if key[0] == w.id and key[2] == u for sid in ss]
        second = next((by_site[sid] for sid in fo + good[1:] if sid in by_site and sid != c.site), None)
        for t in slots:
            loads = {lc.key: wl.peak_rps.get((lc.key, u, t), 0.0) for lc in wl.classes}
            if not any(x > 0 for x in loads.values()):
                continue
            routes[(w.id, u, c.site, t)] = 1.0
            add(c, t, loads)
            if second is not None and w.redundancy.mode == "n_plus_1":
                add(second, t, loads, serve=False)
cand = {c.key: c for c in cs.triples}
plan = Plan()
inst = defaultdict(float)
for (w, sid, oid, tau, t), n in reps.items():
    n = float(math.ceil(n - 1e-9))
    if n <= 0:
        continue
    c = cand[(w, sid, oid)]
    plan.replicas.append({"workload": w, "site": sid, "offer": oid, "tier": tau, "slot": t, "replicas": n,
                          "gpus": n * c.shape.gpus})
    inst[(sid, oid, tau, t)] += n * c.shape.gpus
offer_gpus = {(sid, o.id): o.gpus for sid, site in res.sites.items() for o in site.offers}
for (sid, oid, tau, t), g in inst.items():
    plan.instances.append({"site": sid, "offer": oid, "tier": tau, "slot": t,
                           "count": int(math.ceil(g / offer_gpus[(sid, oid)] - 1e-9))})
for (w, k, sid, oid, t), x in serving.items():
    plan.serving.append({"workload": w, "class": k, "site": sid, "offer": oid, "slot": t, "rps": x})
for (w, u, sid, t), x in routes.items():
    plan.routes.append({"workload": w, "user_region": u, "site": sid, "slot": t, "share": x})
plan = plan.canonical()
plan.solve = SolveRecord(status="feasible")
with open(sys.argv[2], "w") as fh:
    fh.write(plan.to_json())
print("done", len(plan.instances), len(plan.replicas), len(plan.serving), len(plan.routes), time.time() - t0)
