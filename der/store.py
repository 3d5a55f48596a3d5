"""Append-only Parquet shards: the warehouse's only storage.

Layout under a warehouse root::

    questions/part-*.parquet    one row per question the warehouse knows
    calls/part-*.parquet        one row per call attempt, failures included
    embeddings/part-*.parquet   one MiniLM vector per (question, previous answer)
    runs/*.json                 one provenance record per prefetch run

A shard is written under a dot-prefixed temporary name in the same folder, flushed to disk, and
renamed into place; readers glob ``part-*.parquet`` only, so a killed writer never leaves a
half-written file where a reader looks. No process holds a lock: several writers may append at
once, and the SQL views deduplicate by key.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from threading import Lock
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from der.errors import WarehouseError

EMBED_DIM = 384

SCHEMAS: dict[str, pa.Schema] = {
    "questions": pa.schema(
        [
            ("question_id", pa.string()),
            ("partition", pa.string()),
            ("question", pa.string()),
            ("passage", pa.string()),
            ("label", pa.bool_()),
            ("source", pa.string()),
            ("source_row", pa.int64()),
        ]
    ),
    "calls": pa.schema(
        [
            ("call_key", pa.string()),
            ("question_id", pa.string()),
            ("expert", pa.string()),
            ("expert_fp", pa.string()),
            ("backend", pa.string()),
            ("model", pa.string()),
            ("digest", pa.string()),
            ("template", pa.string()),
            ("prev_answer", pa.string()),
            ("step_kind", pa.string()),
            ("prompt_chars", pa.int64()),
            ("status", pa.string()),
            ("raw_text", pa.string()),
            ("answer", pa.string()),
            ("parser", pa.string()),
            ("error", pa.string()),
            ("latency_s", pa.float64()),
            ("attempts", pa.int32()),
            ("host", pa.string()),
            ("done_reason", pa.string()),
            ("prompt_tokens", pa.int64()),
            ("completion_tokens", pa.int64()),
            ("load_s", pa.float64()),
            ("prompt_eval_s", pa.float64()),
            ("eval_s", pa.float64()),
            ("server_total_s", pa.float64()),
            ("p_yes", pa.float64()),
            ("run_id", pa.string()),
            ("recorded_at", pa.timestamp("us", tz="UTC")),
        ]
    ),
    "embeddings": pa.schema(
        [
            ("question_id", pa.string()),
            ("prev_answer", pa.string()),
            ("model", pa.string()),
            ("embedding", pa.list_(pa.float32(), EMBED_DIM)),
        ]
    ),
}
TABLES = tuple(SCHEMAS)


class Location:
    """A warehouse root: a local folder, or any fsspec URL (``s3://bucket/wh``, ``gs://...``,
    ``memory://...``). Local shards are published by rename; on object stores an object becomes
    visible only once its upload completes, which gives the same all-or-nothing publication."""

    def __init__(self, root: str | Path) -> None:
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        text = str(root)
        self.fs, self.path = fsspec.core.url_to_fs(text)
        self.local = isinstance(self.fs, LocalFileSystem)
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.url = self.path if self.local else f"{protocol}://{self.path.lstrip('/')}"
        self.protocol = protocol

    def join(self, *parts: str) -> str:
        """A path (local) or URL (remote) below the root."""
        return "/".join([self.url.rstrip("/"), *parts])

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def shards(self, table: str) -> list[str]:
        """Published shards of ``table``, oldest first (names sort by time)."""
        found = self.fs.glob(f"{self.path.rstrip('/')}/{table}/part-*.parquet")
        return sorted(found if self.local else (f"{self.protocol}://{p.lstrip('/')}" for p in found))

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Publish a small file (run records) atomically."""
        target = self.join(rel)
        if self.local:
            folder = os.path.dirname(target)
            os.makedirs(folder, exist_ok=True)
            tmp = os.path.join(folder, ".tmp-" + os.path.basename(target))
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        else:
            self.fs.pipe(target, data)


def shard_dir(root: str | Path, table: str) -> str:
    """Folder (or URL prefix) holding one table's shards."""
    return Location(root).join(table)


def shard_glob(root: str | Path, table: str) -> str:
    """Glob that readers use; temporary files (dot-prefixed) never match it."""
    return Location(root).join(table, "part-*.parquet")


def list_shards(root: str | Path, table: str) -> list[str]:
    """The published shards of a table, oldest first."""
    return Location(root).shards(table)


def _is_complete_parquet(path: str) -> bool:
    # a Parquet file starts and ends with the magic bytes; a truncated or foreign file does not
    with open(path, "rb") as fh:
        head = fh.read(4)
        size = fh.seek(0, os.SEEK_END)
        if size < 12:
            return False
        fh.seek(size - 4)
        return head == b"PAR1" and fh.read(4) == b"PAR1"


def readable_shards(root: str | Path, table: str) -> list[str]:
    """The published shards of a table, refusing (with what to do) any that is not a whole Parquet file.

    der publishes shards whole, so such a file was damaged or put there by something else. The
    check reads 8 bytes a shard; it runs on local warehouses (object stores publish uploads whole).
    """
    loc = Location(root)
    shards = loc.shards(table)
    bad = [s for s in shards if not _is_complete_parquet(s)] if loc.local else []
    if bad:
        names = ", ".join(os.path.basename(b) for b in bad)
        raise WarehouseError(
            f"{len(bad)} shard(s) in {loc.join(table)} are not complete Parquet files: {names}. der writes "
            "shards whole (temporary name, then rename), so these were damaged or put there by something else. "
            "Move them out of that folder (for example into a quarantine/ folder beside the warehouse) and run "
            "again: nothing else is affected, and `der prefetch` asks again for any call they held."
        )
    return shards


def write_shard(root: str | Path, table: str, rows: Sequence[dict[str, Any]] | pa.Table) -> str | None:
    """Write rows as one new shard, atomically; returns its path (None when there are no rows)."""
    schema = SCHEMAS[table]
    data = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows), schema=schema)
    if data.num_rows == 0:
        return None
    data = data.select(schema.names).cast(schema)
    loc = Location(root)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
    if not loc.local:
        target = loc.join(table, name)
        with loc.fs.open(target, "wb") as fh:  # visible only once the upload completes
            pq.write_table(data, fh, compression="zstd")
        return target
    folder = Path(loc.join(table))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{name}"
    try:
        with open(tmp, "wb") as fh:
            pq.write_table(data, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return str(folder / name)


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ShardWriter:
    """Buffers rows from many threads and publishes a shard every ``flush_rows`` rows or
    ``flush_s`` seconds, so a killed run loses at most that much."""

    def __init__(self, root: str | Path, table: str, flush_rows: int = 16, flush_s: float = 20.0) -> None:
        self.root, self.table = root, table
        self.flush_rows, self.flush_s = flush_rows, flush_s
        self._rows: list[dict[str, Any]] = []
        self._lock = Lock()
        self._last = time.monotonic()
        self.written = 0

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._rows.append(row)
            due = len(self._rows) >= self.flush_rows or time.monotonic() - self._last >= self.flush_s
            if due:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._rows:
            write_shard(self.root, self.table, self._rows)
            self.written += len(self._rows)
            self._rows = []
        self._last = time.monotonic()


def compact(root: str | Path, table: str) -> tuple[int, int]:
    """Merge a table's shards into one; returns (shards before, rows).

    The merged shard is published before the old ones are removed, so a concurrent reader sees
    every row at all times (possibly twice for a moment: the views deduplicate by key). Shards a
    concurrent writer publishes meanwhile are not in the list, so they are never removed.
    """
    loc = Location(root)
    shards = readable_shards(root, table)
    schema = SCHEMAS[table]
    if len(shards) <= 1:
        return len(shards), sum(pq.read_metadata(loc.fs.open(s)).num_rows for s in shards)
    merged = pa.concat_tables([pq.read_table(loc.fs.open(s)).select(schema.names).cast(schema) for s in shards])
    write_shard(root, table, merged)
    for s in shards:
        loc.fs.rm(s)
    if loc.local:
        _fsync_dir(Path(loc.join(table)))
    return len(shards), merged.num_rows
