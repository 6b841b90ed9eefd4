"""The DuckDB engine: SQL steps stream from Parquet inputs to a Parquet output, in-process."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

Schema = tuple[tuple[str, str], ...]


def _sql_list(files: Sequence[str | Path]) -> str:
    return "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"


def scan_sql(files: Sequence[str | Path]) -> str:
    """A DuckDB table expression reading the given Parquet files."""
    if len(files) == 1:  # one file has one schema: skip reconciling them
        return f"read_parquet({_sql_list(files)})"
    return f"read_parquet({_sql_list(files)}, union_by_name = true)"


_PLACEHOLDER = "__andon_input_{}__"


def placeholder_sql(tree: exp.Expression) -> tuple[str, tuple[str, ...]]:
    """SQL with each input table as a placeholder, and the names of those inputs. A step's is
    made once when the project loads; building binds it to files with ``bind_template``."""
    tree = tree.copy()
    names: list[str] = []
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier) or table.args.get("db") \
                or table.name in ctes:
            continue
        alias = table.alias or table.name
        names.append(table.name)
        table.replace(exp.Table(this=exp.to_identifier(_PLACEHOLDER.format(table.name)),
                                alias=exp.TableAlias(this=exp.to_identifier(alias))))
    return tree.sql(dialect="duckdb", copy=False), tuple(dict.fromkeys(names))  # our copy


def bind_template(template: str, inputs: Mapping[str, Sequence[str | Path]]) -> str:
    """Put a scan of each input's Parquet files where its placeholder is."""
    for name, files in inputs.items():
        template = template.replace(_PLACEHOLDER.format(name), scan_sql(files))
    return template


_ARROW_TO_DUCKDB = {
    "int8": "TINYINT", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT",
    "uint8": "UTINYINT", "uint16": "USMALLINT", "uint32": "UINTEGER", "uint64": "UBIGINT",
    "float": "FLOAT", "double": "DOUBLE", "string": "VARCHAR", "large_string": "VARCHAR",
    "bool": "BOOLEAN", "date32[day]": "DATE", "timestamp[us]": "TIMESTAMP",
    "timestamp[us, tz=UTC]": "TIMESTAMP WITH TIME ZONE", "time64[us]": "TIME",
    "binary": "BLOB", "large_binary": "BLOB",
}


def parquet_schema(path: Path) -> Schema | None:
    """Column names and DuckDB types from a Parquet footer, without a query; None when a
    type needs DuckDB to name it (nested, decimal, ...)."""
    out = []
    for field in pq.read_schema(path):
        name = _ARROW_TO_DUCKDB.get(str(field.type))
        if name is None:
            return None
        out.append((field.name, name))
    return tuple(out)


def _confine(con: duckdb.DuckDBPyConnection, allowed: Sequence[Path]) -> None:
    dirs = [str(p).rstrip("/") + "/" for p in allowed if not p.is_file()]
    files = [str(p) for p in allowed if p.is_file()]
    con.execute("SET allowed_directories = $1", [dirs])
    con.execute("SET allowed_paths = $1", [files])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


class DuckDBEngine:
    """One in-memory DuckDB database per process; one cursor per concurrent task.

    With ``allowed`` (folders or files), SQL reads and writes only those: the database is
    opened with external access off and its configuration locked, so a step or a query cannot
    read a host file (``read_csv('/etc/passwd')``), a file of the project, or install
    extensions, and cannot turn that back on."""

    def __init__(self, threads: int | None = None, memory_limit: str | None = None, *,
                 allowed: Sequence[Path] | None = None) -> None:
        self._allowed = None if allowed is None else tuple(allowed)
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = threads
        if memory_limit:
            config["memory_limit"] = memory_limit
        self._config = config
        self._con: duckdb.DuckDBPyConnection | None = None
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The database, opened on first use (a run that builds nothing never opens it)."""
        with self._lock:
            if self._con is None:
                self._con = duckdb.connect(":memory:", config=self._config)
                if self._allowed is not None:
                    _confine(self._con, self._allowed)
            return self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self.con.cursor()
            self._local.cursor = cur
            with self._lock:
                self._cursors.append(cur)
        return cur

    def interrupt(self) -> None:
        """Stop every query in flight (Ctrl-C)."""
        with self._lock:
            for cur in self._cursors:
                with contextlib.suppress(duckdb.Error):
                    cur.interrupt()

    def close(self) -> None:
        with self._lock:
            for cur in self._cursors:
                cur.close()
            self._cursors.clear()
            if self._con is not None:
                self._con.close()
                self._con = None

    # building -----------------------------------------------------------------------------

    def copy_to_parquet(self, sql: str, out: Path) -> int:
        """Stream a query into one Parquet file; returns the row count."""
        target = str(out).replace("'", "''")
        row = self.cursor().execute(
            f"COPY ({sql}) TO '{target}' (FORMAT parquet)"
        ).fetchone()
        return int(row[0]) if row else 0

    def schema(self, files: Sequence[str | Path]) -> Schema:
        if len(files) == 1:
            quick = parquet_schema(Path(files[0]))
            if quick is not None:
                return quick
        rows = self.cursor().execute(f"DESCRIBE SELECT * FROM {scan_sql(files)}").fetchall()
        return tuple((str(r[0]), str(r[1])) for r in rows)

    def max_value(self, files: Sequence[str | Path], column: str) -> Any:
        col = '"' + column.replace('"', '""') + '"'
        row = self.cursor().execute(f"SELECT max({col}) FROM {scan_sql(files)}").fetchone()
        return row[0] if row else None

    def read_arrow(self, files: Sequence[str | Path]) -> pa.Table:
        return self.cursor().sql(f"SELECT * FROM {scan_sql(files)}").to_arrow_table()

    @staticmethod
    def write_arrow(table: pa.Table, out: Path) -> int:
        pq.write_table(table, out, compression="zstd")
        return int(table.num_rows)

    # reading ------------------------------------------------------------------------------

    def attach_tables(
        self, tables: Mapping[str, Sequence[str | Path]]
    ) -> duckdb.DuckDBPyConnection:
        """A cursor where each table is a view over its artifact's files."""
        cur = self.con.cursor()
        for name, files in tables.items():
            ident = '"' + name.replace('"', '""') + '"'
            cur.execute(f"CREATE OR REPLACE TEMP VIEW {ident} AS SELECT * FROM {scan_sql(files)}")
        return cur
