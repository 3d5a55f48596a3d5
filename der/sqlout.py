"""Print a DuckDB result as an aligned table, CSV or JSON lines."""

from __future__ import annotations

import csv
import json
import os
import sys
import threading
from datetime import date, datetime
from typing import Any

import duckdb


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    text = str(v).replace("\n", "\\n")
    return text if len(text) <= 60 else text[:57] + "..."


def print_result(rel: duckdb.DuckDBPyRelation, fmt: str, max_rows: int = 100) -> None:
    """Write ``rel`` to stdout in ``fmt`` (table, csv, json)."""
    cols = rel.columns
    if fmt == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")  # shell-friendly; RFC 4180 readers accept it
        w.writerow(cols)
        w.writerows(rel.fetchall())
        return
    if fmt == "json":
        for row in rel.fetchall():
            print(json.dumps(dict(zip(cols, row, strict=True)), default=_json_default, ensure_ascii=False))
        return
    rows = rel.limit(max_rows + 1).fetchall()
    shown = [[_cell(v) for v in r] for r in rows[:max_rows]]
    widths = [max([len(c)] + [len(r[i]) for r in shown]) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in shown:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    if len(rows) > max_rows:
        print("... more rows (raise --max-rows, or use --format csv)")


def print_interruptibly(con: duckdb.DuckDBPyConnection, rel: duckdb.DuckDBPyRelation, fmt: str, max_rows: int) -> None:
    """:func:`print_result` in a worker thread, so that Ctrl-C and SIGTERM interrupt the query
    (and end the process with status 130).

    DuckDB runs a query without the GIL; while it does, the main thread's signal handlers only
    run if the main thread is not the one inside DuckDB.
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            print_result(rel, fmt, max_rows)
        except BaseException as e:
            failure.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        # a read has nothing to save; DuckDB's connection stays busy after an interrupt and cannot
        # be closed cleanly, so the process ends here
        con.interrupt()
        print("interrupted", file=sys.stderr, flush=True)
        os._exit(130)
    if failure:
        raise failure[0]


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    return str(v)
