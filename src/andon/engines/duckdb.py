"""The DuckDB engine: SQL steps stream from Parquet inputs to a Parquet output, in-process.

The only module that imports ``duckdb`` (with the Python step kind, which hands a step's
function a DuckDB connection): it implements ``andon.engines.base.Engine`` and turns DuckDB's
exceptions into ``EngineError`` kinds."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from andon.engines.base import (
    EngineError,
    Files,
    Interrupted,
    InvalidInput,
    Location,
    ParseReject,
    ReadFailed,
    Schema,
    UnknownObject,
)
from andon.engines.duckdb_files import (
    json_field,
    json_object,
    read_csv,
    read_lines,
    scan_numbered,
)
from andon.engines.sql import column as col
from andon.engines.sql import ident_sql, literal_sql

DIALECT = "duckdb"
Error = duckdb.Error  # for the Python step kind, whose functions get a DuckDB connection


def translate(e: duckdb.Error) -> EngineError:
    """DuckDB's exception as the engine interface's kind of error."""
    if isinstance(e, duckdb.InterruptException):
        kind: type[EngineError] = Interrupted
    elif isinstance(e, duckdb.CatalogException | duckdb.BinderException):
        kind = UnknownObject
    elif isinstance(e, duckdb.IOException | duckdb.HTTPException):
        kind = ReadFailed
    elif isinstance(e, duckdb.ParserException | duckdb.ConversionException
                    | duckdb.InvalidInputException | duckdb.OutOfRangeException):
        kind = InvalidInput
    else:
        kind = EngineError
    return kind(str(e))


class DuckDBResult:
    """The rows of one query (``andon.engines.base.Result``)."""

    __slots__ = ("_cur",)

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self._cur = cur

    @property
    def columns(self) -> list[str]:
        return [d[0] for d in self._cur.description or []]

    def fetchone(self) -> tuple[Any, ...] | None:
        try:
            return self._cur.fetchone()
        except duckdb.Error as e:
            raise translate(e) from e

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        try:
            return self._cur.fetchmany(size)
        except duckdb.Error as e:
            raise translate(e) from e

    def fetchall(self) -> list[tuple[Any, ...]]:
        try:
            return self._cur.fetchall()
        except duckdb.Error as e:
            raise translate(e) from e

    def arrow(self) -> pa.Table:
        try:
            fetch = getattr(self._cur, "to_arrow_table", None)  # DuckDB 1.5; 1.4 has only:
            return fetch() if fetch is not None else self._cur.fetch_arrow_table()
        except duckdb.Error as e:
            raise translate(e) from e


class DuckDBSession:
    """A DuckDB cursor behind the engine interface (``andon.engines.base.Session``)."""

    __slots__ = ("_cur",)

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self._cur = cur

    def execute(self, sql: str | exp.Expr,
                params: Sequence[Any] | Mapping[str, Any] | None = None) -> DuckDBResult:
        text = sql if isinstance(sql, str) else sql.sql(dialect=DIALECT)
        try:
            self._cur.execute(text, params or [])
        except duckdb.Error as e:
            raise translate(e) from e
        return DuckDBResult(self._cur)

    def view(self, name: str, files: Files) -> None:
        """Name a scan of an artifact's files in this session (a temporary view)."""
        self.execute(f"CREATE OR REPLACE TEMP VIEW {ident_sql(name, DIALECT)} AS "
                     f"SELECT * FROM {scan_sql(files)}")

    def interrupt(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self._cur.interrupt()

    def parse_rejects(self) -> list[ParseReject]:
        """The lines ``read_csv`` scans left out (DuckDB's ``store_rejects`` tables of this
        connection), then forgets them."""
        try:
            rows = self._cur.execute(
                "SELECT line, column_name, error_message, csv_line FROM reject_errors "
                "ORDER BY line").fetchall()
        except duckdb.CatalogException:  # no scan kept rejects in this session yet
            return []
        except duckdb.Error as e:
            raise translate(e) from e
        self.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
        return [ParseReject(int(line), None if column is None else str(column), str(message),
                            None if raw is None else str(raw))
                for line, column, message, raw in rows]

    @property
    def native(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection itself, for a Python step's function."""
        return self._cur

    def close(self) -> None:
        self._cur.close()


def _sql_list(files: Sequence[str | Path]) -> str:
    return "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"


def scan_sql(files: Files) -> str:
    """A DuckDB table expression reading the given Parquet files."""
    if len(files) == 1:  # one file has one schema: skip reconciling them
        return f"read_parquet({_sql_list(files)})"
    return f"read_parquet({_sql_list(files)}, union_by_name = true)"


def scan(files: Files) -> exp.Expression:
    """``scan_sql`` as an expression."""
    args: list[exp.Expression] = [exp.Array(expressions=[exp.Literal.string(str(f))
                                                         for f in files])]
    if len(files) != 1:
        args.append(exp.EQ(this=exp.column("union_by_name"), expression=exp.true()))
    return exp.Anonymous(this="read_parquet", expressions=args)


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
    # lists as SQL literals: a Python list bound as a parameter makes DuckDB import pandas
    con.execute(f"SET allowed_directories = {_sql_list(dirs)}")
    con.execute(f"SET allowed_paths = {_sql_list(files)}")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


class DuckDBEngine:
    """One in-memory DuckDB database per process; one cursor per concurrent task.

    With ``allowed`` (folders or files), SQL reads and writes only those: the database is
    opened with external access off and its configuration locked, so a step or a query cannot
    read a host file (``read_csv('/etc/passwd')``), a file of the project, or install
    extensions, and cannot turn that back on."""

    name = "duckdb"
    dialect = DIALECT

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
        self._sessions: list[DuckDBSession] = []
        self._lock = threading.Lock()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The database, opened on first use (a run that builds nothing never opens it)."""
        with self._lock:
            if self._con is None:
                try:
                    self._con = duckdb.connect(":memory:", config=self._config)
                except duckdb.Error as e:
                    raise translate(e) from e
                if self._allowed is not None:
                    _confine(self._con, self._allowed)
            return self._con

    def _new_session(self) -> DuckDBSession:
        session = DuckDBSession(self.con.cursor())
        with self._lock:
            self._sessions.append(session)
        return session

    def cursor(self) -> DuckDBSession:
        session: DuckDBSession | None = getattr(self._local, "session", None)
        if session is None:
            session = self._new_session()
            self._local.session = session
        return session

    def session(self, tables: Mapping[str, Files] | None = None) -> DuckDBSession:
        """A new session where each table is a view over its artifact's files."""
        session = self._new_session()
        for name, files in (tables or {}).items():
            session.view(name, files)
        return session

    attach_tables = session

    artifact_format = "parquet"

    @staticmethod
    def reader(allowed: Sequence[Path]) -> DuckDBEngine:
        """Landing reads files with a DuckDB of its own, confined to ``allowed``."""
        return DuckDBEngine(allowed=allowed)

    def finish(self, staging: Path, step: str, fingerprint: str) -> None:
        """Parquet files are sealed as written: nothing to do."""

    def publish(self, environment: str, tables: Mapping[str, Location]) -> None:
        """Readers find an environment through andon (its manifests): nothing to do."""

    def collect(self, live: Iterable[Location], *, dry_run: bool = False) -> list[str]:
        """Artifacts are only files, which gc deletes: nothing else to collect."""
        return []

    def interrupt(self) -> None:
        """Stop every query in flight (Ctrl-C, a cancelled run)."""
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.interrupt()

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                with contextlib.suppress(duckdb.Error):
                    session.close()
            self._sessions.clear()
            self._local = threading.local()
            if self._con is not None:
                self._con.close()
                self._con = None

    # building -----------------------------------------------------------------------------

    @staticmethod
    def scan(files: Files) -> exp.Expression:
        return scan(files)

    @staticmethod
    def scan_rows(files: Files, ranges: Sequence[tuple[str, int, int]]) -> exp.Expression:
        return scan_rows(files, ranges)

    def materialize(self, query: str | exp.Expr, out: Path, *,
                    compression: str | None = None) -> int:
        """Stream a query into one Parquet file; returns the row count."""
        return copy_to(self.cursor(), query, out, compression)

    copy_to_parquet = materialize

    def schema(self, files: Files) -> Schema:
        if len(files) == 1:
            quick = parquet_schema(Path(files[0]))
            if quick is not None:
                return quick
        rows = self.cursor().execute(f"DESCRIBE SELECT * FROM {scan_sql(files)}").fetchall()
        return tuple((str(r[0]), str(r[1])) for r in rows)

    def describe(self, query: exp.Expr) -> Schema:
        """The columns and types of a query's result (DuckDB binds it; nothing is read)."""
        rows = self.cursor().execute(f"DESCRIBE {query.sql(dialect=DIALECT)}").fetchall()
        return tuple((str(r[0]), str(r[1])) for r in rows)

    read_csv = staticmethod(read_csv)
    read_lines = staticmethod(read_lines)
    scan_numbered = staticmethod(scan_numbered)
    json_object = staticmethod(json_object)
    json_field = staticmethod(json_field)

    def max_value(self, files: Files, column: str) -> Any:
        row = self.cursor().execute(exp.select(exp.Max(this=col(column))).from_(scan(files))
                                    ).fetchone()
        return row[0] if row else None

    def read_arrow(self, files: Files) -> pa.Table:
        return self.cursor().execute(f"SELECT * FROM {scan_sql(files)}").arrow()

    @staticmethod
    def write_arrow(table: pa.Table, out: Path) -> int:
        pq.write_table(table, out, compression="zstd")
        return int(table.num_rows)


_CODECS = ("snappy", "zstd", "gzip", "lz4", "brotli", "uncompressed")


def copy_to(session: DuckDBSession, query: str | exp.Expr, out: Path,
            compression: str | None = None) -> int:
    """``COPY (query) TO out`` as Parquet in a session; returns the row count."""
    sql = query if isinstance(query, str) else query.sql(dialect=DIALECT)
    if compression is not None and compression not in _CODECS:
        raise InvalidInput(f"unknown Parquet compression {compression!r}; "
                           f"one of: {', '.join(_CODECS)}")
    codec = f", COMPRESSION {compression}" if compression else ""
    row = session.execute(
        f"COPY ({sql}) TO {literal_sql(str(out), DIALECT)} (FORMAT parquet{codec})").fetchone()
    return int(row[0]) if row else 0


# plan-time validation ---------------------------------------------------------------------

_SCRATCH: list[DuckDBSession] = []
_SCRATCH_LOCK = threading.Lock()


def scratch() -> DuckDBSession:
    """A new session on a process-wide empty database with external access off, where
    andon tries a check's constants and SQL before any work (casts, regexes, binding)."""
    with _SCRATCH_LOCK:
        if not _SCRATCH:
            con = duckdb.connect(":memory:")
            _confine(con, ())
            _SCRATCH.append(DuckDBSession(con))
        return DuckDBSession(_SCRATCH[0].native.cursor())


def statement_kinds(sql: str) -> list[str]:
    """The kind of each statement in SQL text (``SELECT``, ``INSERT`` ...), as DuckDB parses
    it; raises ``InvalidInput`` when it does not parse."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise translate(e) from e
    return [s.type.name for s in statements]


def scan_rows(files: Files, ranges: Sequence[tuple[str, int, int]]) -> exp.Expression:
    """Only the given rows of Parquet files ((file, first row, last row), from 0 in each
    file): ranges on ``file_row_number`` prune row groups, so a sample spread through a
    table reads a few row groups instead of all of it (a reservoir sample would)."""
    names = exp.Array(expressions=[exp.Literal.string(str(f)) for f in files])
    options = [exp.EQ(this=exp.column(o), expression=exp.true())
               for o in ("filename", "file_row_number", "union_by_name")]
    source = exp.Anonymous(this="read_parquet", expressions=[names, *options])
    kept = exp.or_(*(exp.and_(
        exp.EQ(this=exp.column("filename"), expression=exp.Literal.string(str(f))),
        exp.Between(this=exp.column("file_row_number"), low=exp.Literal.number(first),
                    high=exp.Literal.number(last))) for f, first, last in ranges))
    rows = exp.select(exp.Star(except_=[exp.column("filename"), exp.column("file_row_number")]))
    return rows.from_(source).where(kept if ranges else exp.false()).subquery()
