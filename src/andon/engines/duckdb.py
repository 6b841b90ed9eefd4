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
    return f"read_parquet({_sql_list(files)}, union_by_name = true)"


def bind_inputs(tree: exp.Expression, inputs: Mapping[str, Sequence[str | Path]]) -> str:
    """Replace each table named in ``inputs`` by a scan of its Parquet files."""
    tree = tree.copy()
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier) or table.name not in inputs:
            continue
        if table.args.get("db"):
            continue
        alias = table.alias or table.name
        new = exp.Table(
            this=exp.Anonymous(
                this="read_parquet",
                expressions=[
                    exp.Array(expressions=[exp.Literal.string(str(f)) for f in inputs[table.name]]),
                    exp.EQ(this=exp.column("union_by_name"), expression=exp.true()),
                ],
            ),
            alias=exp.TableAlias(this=exp.to_identifier(alias)),
        )
        table.replace(new)
    return tree.sql(dialect="duckdb")


class DuckDBEngine:
    """One in-memory DuckDB database per process; one cursor per concurrent task."""

    def __init__(self, threads: int | None = None, memory_limit: str | None = None) -> None:
        config: dict[str, Any] = {}
        if threads:
            config["threads"] = threads
        if memory_limit:
            config["memory_limit"] = memory_limit
        self.con = duckdb.connect(":memory:", config=config)
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

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
        self.con.close()

    # building -----------------------------------------------------------------------------

    def copy_to_parquet(self, sql: str, out: Path) -> int:
        """Stream a query into one Parquet file; returns the row count."""
        target = str(out).replace("'", "''")
        row = self.cursor().execute(
            f"COPY ({sql}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
        ).fetchone()
        return int(row[0]) if row else 0

    def schema(self, files: Sequence[str | Path]) -> Schema:
        rows = self.cursor().execute(f"DESCRIBE SELECT * FROM {scan_sql(files)}").fetchall()
        return tuple((str(r[0]), str(r[1])) for r in rows)

    def max_value(self, files: Sequence[str | Path], column: str) -> Any:
        col = '"' + column.replace('"', '""') + '"'
        row = self.cursor().execute(f"SELECT max({col}) FROM {scan_sql(files)}").fetchone()
        return row[0] if row else None

    def read_arrow(self, files: Sequence[str | Path]) -> pa.Table:
        return self.cursor().execute(f"SELECT * FROM {scan_sql(files)}").to_arrow_table()

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
