"""B8: the warehouse at scale: synthetic 10 experts x 100,000 questions x 3 states (3 M call rows).
Targets: analysis views <= 5 s each, replay arrays <= 10 s, peak memory <= 4 GB."""

from __future__ import annotations

import tempfile
import time

from _common import peak_rss_gib, table, verdict

from der.replay import load_replay
from der.synthetic import make_warehouse
from der.warehouse import Warehouse

VIEWS = ["questions", "calls", "expert_accuracy", "ktp_flips", "latency_percentiles", "oracle_bounds", "coverage"]
CHAIN_SLICE = 1_000


def main(n_questions: int = 100_000, n_experts: int = 10) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        make_warehouse(
            root,
            n_questions=n_questions,
            accuracies=tuple(0.5 + 0.04 * i for i in range(n_experts)),
            latencies_s=tuple(0.2 * (i + 1) for i in range(n_experts)),
            with_embeddings=True,
            shard_rows=500_000,
        )
        build_s = time.perf_counter() - t0
        with Warehouse(root, memory_limit="3GB") as wh:
            n_calls = wh.query_rows("select count(*) from stg_call_attempts")[0][0]
            for view in VIEWS:
                t0 = time.perf_counter()
                n = wh.query_rows(f"select count(*) from (select * from {view})")[0][0]
                s = time.perf_counter() - t0
                rows.append((f"view {view}", f"{n:,} rows", s, verdict(s <= 5)))
        t0 = time.perf_counter()
        data = load_replay(root)
        s = time.perf_counter() - t0
        rows.append(
            ("replay arrays (answers, latencies, embeddings)", f"{data.answer.size:,} cells", s, verdict(s <= 10))
        )
    peak = peak_rss_gib()
    rows.append(("peak memory of this process", f"{peak:.2f} GiB", 0.0, verdict(peak <= 4)))
    return table(
        f"B8: {n_calls:,} call rows ({n_experts} experts x {n_questions:,} questions x 3 states; "
        f"built in {build_s:.0f} s)",
        ["what", "size", "seconds", "target"],
        rows,
    )


if __name__ == "__main__":
    main()
