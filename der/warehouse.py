"""DuckDB over the Parquet shards, with the SQL views in ``warehouse/sql`` (staged like dbt).

``staging/`` holds one view per shard table (``stg_*``), deduplicated by key; ``analysis/``
builds the views people query (``questions``, ``calls``, ``chains``, accuracy, flips, latency,
oracle bounds) on top; ``tests/`` holds data tests, each a query that returns the offending rows.
The SQL files are Jinja templates, as in dbt: they reference shard tables as
``{{ source('calls') }}``, which renders as a ``read_parquet`` over the shard glob (or an empty
typed table when there are no shards yet), and may use ``tmax``.

The connection is an in-memory DuckDB database: nothing on disk is ever opened for writing, so
``der sql`` cannot change the recording.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import jinja2
import pyarrow as pa

from der.errors import WarehouseError
from der.store import SCHEMAS, Location, readable_shards, shard_dir, shard_glob

DEFAULT_TMAX = 3
_STATEMENT_NAMES = {"LOAD": "INSTALL / LOAD"}  # DuckDB files INSTALL under LOAD
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def sql_dir() -> Path:
    """The SQL files: ``warehouse/sql`` in a checkout, ``der/sql`` inside an installed wheel."""
    packaged = Path(__file__).parent / "sql"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "warehouse" / "sql"


def _sql_files(stage: str) -> list[Path]:
    return sorted((sql_dir() / stage).glob("*.sql"))


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_fixed_size_list(t):
        return f"{_duck_type(t.value_type)}[{t.list_size}]"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    names = {
        pa.string(): "varchar",
        pa.bool_(): "boolean",
        pa.int64(): "bigint",
        pa.int32(): "integer",
        pa.float64(): "double",
        pa.float32(): "float",
    }
    return names[t]


def _empty_relation(schema: pa.Schema) -> str:
    """A typed relation with no rows, for a table that has no shards yet."""
    cols = ", ".join(f"null::{_duck_type(f.type)} as {f.name}" for f in schema)
    return f"(select {cols} limit 0)"


class Warehouse:
    """Views over one warehouse root. Use as a context manager or call :meth:`close`."""

    def __init__(
        self, root: str | Path, tmax: int = DEFAULT_TMAX, threads: int | None = None, memory_limit: str | None = None
    ) -> None:
        if not isinstance(tmax, int) or tmax < 1:
            raise WarehouseError(f"tmax must be a whole number >= 1 (got {tmax!r})")
        self.root = root
        self.tmax = tmax
        self.location = Location(root)
        self.con = duckdb.connect(":memory:")
        if not self.location.local:
            self.con.register_filesystem(self.location.fs)  # any fsspec backend: s3, gcs, azure, memory
        if threads:
            self.con.execute(f"set threads = {int(threads)}")
        if memory_limit:  # DuckDB spills to disk beyond it instead of growing
            self.con.execute("set memory_limit = ?", [memory_limit])
        self.con.execute("create table der_settings as select ?::integer as tmax", [tmax])
        for stage in ("staging", "analysis"):
            for path in _sql_files(stage):
                self.con.execute(self._render(path.read_text()))
        self._lock_down()

    def _render(self, sql: str) -> str:
        def source(table: str) -> str:
            if table not in SCHEMAS:
                raise WarehouseError(f"SQL refers to unknown source {table!r}")
            if not readable_shards(self.root, table):
                return _empty_relation(SCHEMAS[table])
            return f"read_parquet({_quote(shard_glob(self.root, table))}, union_by_name = true)"

        return _JINJA.from_string(sql).render(source=source, tmax=self.tmax)

    def _lock_down(self) -> None:
        # From here on queries read only the shard folders: no other file, no attach, no install.
        # Writes into those folders are refused by the statement check in user_query.
        loc = self.location
        if loc.local:
            folders = [str(Path(shard_dir(self.root, t)).resolve()) + "/" for t in SCHEMAS]
        else:  # DuckDB normalises scheme://x to scheme:///x for registered file systems
            folders = [f"{loc.protocol}:///{loc.path.strip('/')}/{t}/" for t in SCHEMAS]
            folders += [shard_dir(self.root, t) + "/" for t in SCHEMAS]
        self.con.execute("set allowed_directories = ?", [folders])
        self.con.execute("set enable_external_access = false")
        self.con.execute("set lock_configuration = true")

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run a query; the result is a DuckDB relation (``.pl()``, ``.arrow()``, ``.fetchall()``)."""
        return self.con.sql(query)

    def user_query(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run a user's query, allowing only reads (SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)."""
        try:
            statements = self.con.extract_statements(query)
        except duckdb.Error as e:
            raise WarehouseError(f"invalid SQL: {e}") from e
        if len(statements) != 1:
            raise WarehouseError(f"give exactly one statement (got {len(statements)})")
        kind = statements[0].type
        if kind not in (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN):
            raise WarehouseError(
                f"der sql is read-only: {_STATEMENT_NAMES.get(kind.name, kind.name)} statements are refused; "
                "write a SELECT over the views "
                f"({', '.join(self.views())})"
            )
        try:
            return self.con.sql(query)
        except duckdb.Error as e:
            raise WarehouseError(f"query failed: {e}") from e

    def query_rows(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query and fetch all rows as tuples."""
        return self.con.execute(query, params or []).fetchall()

    def views(self) -> list[str]:
        """Names of the views a user can query."""
        rows = self.con.execute("select view_name from duckdb_views() where not internal order by view_name").fetchall()
        return [r[0] for r in rows]

    def data_tests(self) -> dict[str, int]:
        """Run every data test; returns offending row counts by test name (all zero when healthy)."""
        return {p.stem: len(self.con.sql(p.read_text()).fetchall()) for p in _sql_files("tests")}

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
