"""Pin a scenario's throughput with a measured-profile CSV holding today's estimates.

Tests that must not move when the throughput model improves (issue 8's reproductions) carry a
``throughput_profile`` with one row per (model, accelerator, query class) the scenario can run,
at the rate the estimate gives today (``max_rps_per_replica`` = planning rate / target
utilisation). Classes the estimate finds impossible get no row (a profile cannot say "cannot
run"), so those still come from the estimate.

    .venv/bin/python tools/pin_profile.py SCENARIO.yaml OUT.yaml [--profile NAME.csv]
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import yaml

from planner import api
from planner.derive.candidates import build_candidates


def pin(src: Path, out: Path, profile_name: str) -> None:
    res = api.load_scenario(src)
    util = res.scenario.policies.target_utilisation
    cs = build_candidates(res)
    rows = {}
    for c in cs.triples:
        w = res.scenario.workload(c.workload)
        for lc in cs.loads[c.workload].classes:
            est = c.rps[lc.key]
            if est.rps <= 0:
                continue
            q = lc.qclass
            key = (w.model, c.offer.accelerator, q.input_tokens, q.output_tokens)
            rows[key] = (repr(est.rps / util), w.latency.ttft_ms, w.latency.tpot_ms)
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["model", "accelerator", "input_tokens", "output_tokens", "max_rps_per_replica", "ttft_ms", "tpot_ms"])
    for (model, acc, i, o), (rate, ttft, tpot) in sorted(rows.items()):
        wr.writerow([model, acc, i, o, rate, "" if ttft is None else ttft, "" if tpot is None else tpot])
    (out.parent / profile_name).write_text(buf.getvalue())
    text = src.read_text()
    doc = yaml.safe_load(text)
    doc["throughput_profile"] = profile_name
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    header += f"# Pinned copy of {src.name}: throughput from {profile_name} (tools/pin_profile.py).\n"
    out.write_text(header + yaml.safe_dump(doc, sort_keys=False, width=120))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--profile", default=None)
    a = ap.parse_args()
    pin(a.scenario, a.out, a.profile or a.out.with_suffix(".profile.csv").name)


if __name__ == "__main__":
    main()
