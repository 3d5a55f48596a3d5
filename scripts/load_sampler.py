#!/usr/bin/env python3
"""Sample how much CPU other work takes from llama-server while a recording runs.

    python scripts/load_sampler.py --out logs/load.csv &

Every --every seconds appends `utc_end, seconds, other_cores`: CPU time used by every process except
llama-server, in cores (2.0 = both cores of this machine busy). Recorded latencies that overlap busy
intervals are noise, not expert behaviour; scripts/write_manifest.py --load reads this file and names
those intervals in the manifest so anyone can filter them out by `recorded_at`. Linux /proc only.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _total_busy() -> int:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def _llama_busy() -> int:
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"llama-server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(stat[11]) + int(stat[12])  # utime, stime
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("logs/load.csv"))
    ap.add_argument("--every", type=float, default=5.0)
    a = ap.parse_args()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    if not a.out.exists():
        a.out.write_text("utc_end,seconds,other_cores\n")
    prev_t, prev_total, prev_llama = time.monotonic(), _total_busy(), _llama_busy()
    while True:
        time.sleep(a.every)
        t, total, llama = time.monotonic(), _total_busy(), _llama_busy()
        # a server that restarted resets its counters; count its whole use as llama's
        other = max(0, (total - prev_total) - max(0, llama - prev_llama)) / TICK / (t - prev_t)
        with a.out.open("a") as f:
            f.write(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%f},{t - prev_t:.2f},{other:.3f}\n")
        prev_t, prev_total, prev_llama = t, total, llama


if __name__ == "__main__":
    main()
