"""Run every benchmark (B1-B8), print each table, and write them with the machine to docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import b1_train
import b2_env
import b3_evaluate
import b4_pipeline
import b5_chain_calls
import b6_rerun
import b7_client_overhead
import b8_scale
from _common import ROOT, machine

BENCHMARKS = [b1_train, b2_env, b3_evaluate, b4_pipeline, b5_chain_calls, b6_rerun, b7_client_overhead, b8_scale]
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def main() -> None:
    only = set(sys.argv[1:])
    tables = [b.main() for b in BENCHMARKS if not only or b.__name__.split("_")[0] in only]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = f"{BEGIN}\nMeasured {stamp} on: {machine()}\n\n" + "\n".join(tables) + END
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if only:
        print(f"(partial run {sorted(only)}: {DOC} not rewritten)")
        return
    DOC.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S))
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
