#!/usr/bin/env python3
"""Cut the first N replayable questions of a warehouse into a small fixture warehouse.

python scripts/make_fixture.py warehouse/recording tests/fixtures/warehouse --questions 48
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from der.replay import load_replay
from der.store import write_shard
from der.warehouse import Warehouse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--questions", type=int, default=48)
    a = ap.parse_args()
    data = load_replay(a.source, with_obs=False)
    with Warehouse(a.source) as wh:
        order = [r[0] for r in wh.query_rows("select question_id from questions order by source_row")]
    keep = [q for q in order if q in set(data.question_ids)][: a.questions]
    if a.dest.exists():
        shutil.rmtree(a.dest)
    with Warehouse(a.source) as wh:
        for table, view in (("questions", "stg_questions"), ("calls", "stg_calls"), ("embeddings", "stg_embeddings")):
            rel = wh.con.sql(f"select * from {view} where question_id in (select unnest(?::varchar[]))", params=[keep])
            write_shard(a.dest, table, rel.to_arrow_table())
    print(f"{len(keep)} questions -> {a.dest}")


if __name__ == "__main__":
    main()
