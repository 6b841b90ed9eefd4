"""The engine interface: what andon asks of a SQL engine, whichever it is.

An engine runs queries over artifacts and writes new ones. andon's own SQL (checks,
profiles, diffs, incremental filters, ingest) is built as sqlglot expressions
(``andon.engines.sql``) and rendered in the engine's ``dialect``; a user's SQL step is parsed
and rendered the same way. Nothing outside ``andon.engines`` imports a driver: errors come
out as ``EngineError`` and its kinds, results as rows or Arrow tables.

DuckDB in-process (``andon.engines.duckdb``) is the embedded default; other engines
(PostgreSQL, Spark) implement the same protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

Schema = tuple[tuple[str, str], ...]  # (column, engine type) in order
Files = Sequence[str | Path]


class EngineError(Exception):
    """A query failed in the engine. ``str(e)`` is the engine's message; ``first_line`` is
    what a user is shown next to the step or check that ran it."""

    @property
    def first_line(self) -> str:
        text = str(self)
        return text.splitlines()[0] if text else type(self).__name__


class Interrupted(EngineError):
    """The query was stopped (Ctrl-C, a cancelled run)."""


class UnknownObject(EngineError):
    """The query names a table, column or function the engine does not know."""


class ReadFailed(EngineError):
    """The engine could not read or write a file."""


class InvalidInput(EngineError):
    """The query or its values are malformed (syntax, a cast that fails, a bad pattern)."""


@dataclass(frozen=True)
class Location:
    """Where an artifact's data lives: files of a format under the warehouse, or a table of
    the engine's own database."""

    format: str = "parquet"
    files: tuple[str, ...] = ()
    table: str | None = None


@dataclass(frozen=True)
class CsvOptions:
    """How a CSV file is written, for ``Engine.read_csv``."""

    header: bool = True
    delimiter: str = ","
    quote: str = '"'
    null_values: tuple[str, ...] = ("",)
    encoding: str = "utf-8"
    date_format: str | None = None
    timestamp_format: str | None = None


@dataclass(frozen=True)
class ParseReject:
    """A line of a CSV file the engine's reader left out: its number in the file (from 1),
    the column that failed when known, the reader's message and the line's text."""

    line: int
    column: str | None
    message: str
    raw: str | None


class Result(Protocol):
    """The rows of a query that ran."""

    @property
    def columns(self) -> list[str]: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...

    def arrow(self) -> pa.Table: ...


class Session(Protocol):
    """One task's connection to the engine (one thread at a time)."""

    def execute(self, sql: str | exp.Expr,
                params: Sequence[Any] | Mapping[str, Any] | None = None) -> Result: ...

    def view(self, name: str, files: Files) -> None:
        """Name a scan of an artifact's files in this session (a temporary view)."""
        ...

    def parse_rejects(self) -> list[ParseReject]:
        """The lines the ``read_csv`` scans run in this session left out, by line; they are
        forgotten once returned."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Engine(Protocol):
    """A SQL engine andon can build and check artifacts with."""

    name: str
    dialect: str  # sqlglot dialect andon renders its SQL in

    def scan(self, files: Files) -> exp.Expression:
        """A table expression reading an artifact's files."""
        ...

    def scan_rows(self, files: Files, ranges: Sequence[tuple[str, int, int]]
                  ) -> exp.Expression:
        """A table expression reading only some rows of an artifact's files: each range is
        (file, first row, last row), rows counted from 0 in each file (a spread sample)."""
        ...

    def cursor(self) -> Session:
        """The calling thread's session (made on first use)."""
        ...

    def session(self, tables: Mapping[str, Files] | None = None) -> Session:
        """A new session where each of ``tables`` is a view over its files."""
        ...

    def materialize(self, query: str | exp.Expr, out: Path, *,
                    compression: str | None = None) -> int:
        """Run a query and write its rows as one artifact file (``compression``: the
        format's codec when not the engine's default); returns the row count."""
        ...

    def schema(self, files: Files) -> Schema: ...

    def describe(self, query: exp.Expr) -> Schema:
        """The columns and types of a query's result, without running it."""
        ...

    # landing: reading the files senders deliver ---------------------------------------------

    def read_csv(self, file: str | Path, columns: Sequence[tuple[str, str]],
                 options: CsvOptions) -> exp.Expression:
        """A table expression of a CSV file's rows typed as ``columns`` (name, engine type,
        in the file's order). Lines that do not parse are left out and kept for the
        session's ``parse_rejects``."""
        ...

    def read_lines(self, file: str | Path) -> exp.Expression:
        """A table expression with one row per line of a text file (plain or .gz): ``line``
        (its number, from 1) and ``text``."""
        ...

    def scan_numbered(self, file: str | Path, column: str) -> exp.Expression:
        """``scan`` of one Parquet file plus its row number from 1 in ``column``."""
        ...

    def json_object(self, text: exp.Expression) -> exp.Expression:
        """``text`` when it is a JSON object, else NULL."""
        ...

    def json_field(self, document: exp.Expression, key: str) -> exp.Expression:
        """The value of a JSON object's top-level ``key`` as text (NULL when absent)."""
        ...

    def read_arrow(self, files: Files) -> pa.Table: ...

    def write_arrow(self, table: pa.Table, out: Path) -> int: ...

    # where artifacts live: the engine's part in sealing, publishing and gc ------------------

    artifact_format: str  # the format of the artifacts it writes (andon.kinds.ARTIFACT_FORMATS)

    def reader(self, allowed: Sequence[Path]) -> Engine:
        """The engine that ingests the files landed for sources, confined to ``allowed``;
        it writes Parquet parts this engine can read."""
        ...

    def finish(self, staging: Path, step: str, fingerprint: str) -> None:
        """Its last word on an artifact's staged files before they are sealed (an engine
        whose files stand for tables names them by the fingerprint)."""
        ...

    def publish(self, environment: str, tables: Mapping[str, Location]) -> None:
        """Show ``environment`` as it now is (each table's artifact) to readers of the
        engine's database, in one step; called after the store moved the environment."""
        ...

    def collect(self, live: Iterable[Location], *, dry_run: bool = False) -> list[str]:
        """Delete what the engine keeps for artifacts none of ``live`` uses; returns what
        was (or would be) deleted."""
        ...

    def interrupt(self) -> None:
        """Stop every query in flight."""
        ...

    def close(self) -> None: ...
