#!/usr/bin/env python3
"""Ask a sample of recorded calls again, on an idle machine, against the same servers: are the
answers identical (determinism), and how do the recorded latencies compare with quiet ones?

    python scripts/quiet_check.py --warehouse warehouse/recording --per-expert 8 --out quiet.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

from der.config import load_experts
from der.data import load_questions
from der.experts import make_expert
from der.prefetch import make_task
from der.prompts import get_template
from der.warehouse import Warehouse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", default="warehouse/recording")
    ap.add_argument("--experts", default="llama-local")
    ap.add_argument("--per-expert", type=int, default=8)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    template = get_template("ref-v1")
    questions = {q.question_id: q for q in load_questions().questions}
    specs = {s.name: s for s in load_experts(a.experts)}
    with Warehouse(a.warehouse) as wh:
        rows = wh.query_rows(
            "select question_id, expert, prev_answer, raw_text, latency_s from calls "
            "where status = 'ok' order by call_key"
        )
    rng = random.Random(0)
    report = {}
    for name, spec in specs.items():
        mine = [r for r in rows if r[1] == name]
        sample = rng.sample(mine, min(a.per_expert, len(mine)))
        expert = make_expert(spec)
        same, ratios, quiet = 0, [], []
        for qid, _, prev, raw, recorded in sample:
            task = make_task(questions[qid], None if prev == "none" else prev, spec, template)
            res = expert.call(task.prompt)
            same += res.raw_text == raw
            quiet.append(res.latency_s)
            ratios.append(recorded / res.latency_s)
        report[name] = {
            "calls": len(sample),
            "identical_text": same,
            "quiet_median_latency_s": round(statistics.median(quiet), 3),
            "recorded_over_quiet_latency": {
                "median": round(statistics.median(ratios), 3),
                "max": round(max(ratios), 3),
                "min": round(min(ratios), 3),
            },
        }
        print(name, report[name], flush=True)
    a.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
