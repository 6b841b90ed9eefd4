"""The Spark engine: SQL steps and checks run on Apache Spark (PySpark), artifacts stay Parquet.

Inputs are temporary views over the artifacts' Parquet files; a step's result is written by
Spark as one Parquet file (its part file moved to where andon expects the artifact's file),
so manifests, sealing, reuse, gc and every other engine read the same artifacts. SQL written
in DuckDB's dialect (a step, andon's own checks and profiles) is transpiled by sqlglot
(``andon.engines.spark_sql``). Landing stays on DuckDB (``reader``): it reads the landing
folder and writes Parquet parts Spark reads like any artifact.

One SparkSession per process (``SparkSession.builder.getOrCreate``): the JVM starts once;
closing an engine leaves the session to the next one (it stops when the process exits).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.errors import (
    AnalysisException,
    ArithmeticException,
    DateTimeException,
    IllegalArgumentException,
    NumberFormatException,
    ParseException,
    PySparkException,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T
from sqlglot import exp

from andon.engines.base import (
    CsvOptions,
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
from andon.engines.spark_sql import DIALECT, to_spark

_CODECS = ("snappy", "zstd", "gzip", "lz4", "brotli", "uncompressed")
_VIEW = "_andon_p_"

# what makes Spark read and write Parquet as DuckDB does: TIMESTAMP without time zone,
# timestamps as microseconds (not INT96), UTC for the session's clock; and what makes a
# session in one process quick: no web UI, an in-memory catalog (no Hive metastore),
# adaptive execution (partitions coalesced after a shuffle, small tables broadcast)
DEFAULT_CONF = {
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.catalogImplementation": "in-memory",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.autoBroadcastJoinThreshold": "32m",
}


def local_cores(master: str) -> int | None:
    """The cores of a local master (``local``, ``local[4]``, ``local[*]``); None for a
    cluster's master URL."""
    m = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if m is None:
        return None
    if m.group(1) is None:
        return 1
    if m.group(1) == "*":
        return os.cpu_count() or 1
    return max(1, int(m.group(1)))


def local_conf(master: str) -> dict[str, str]:
    """Partitions sized to a local master's cores (Spark's 200 shuffle partitions are 200
    tasks per shuffle: most of a small query's time on a laptop); nothing for a cluster."""
    cores = local_cores(master)
    if cores is None:
        return {}
    return {"spark.sql.shuffle.partitions": str(cores),
            "spark.default.parallelism": str(cores)}


def translate(e: Exception) -> EngineError:
    """Spark's error as the engine interface's kind of error."""
    text = str(e).strip()
    if isinstance(e, ParseException):
        kind: type[EngineError] = InvalidInput
    elif isinstance(e, AnalysisException):
        unknown = ("NOT_FOUND", "UNRESOLVED_", "CANNOT_RESOLVE")
        kind = UnknownObject if any(u in text for u in unknown) else InvalidInput
        if "PATH_NOT_FOUND" in text:
            kind = ReadFailed
    elif isinstance(e, NumberFormatException | ArithmeticException | DateTimeException
                    | IllegalArgumentException):
        kind = InvalidInput
    elif "cancelled" in text.lower() and "job" in text.lower():
        kind = Interrupted
    else:
        kind = EngineError
    return kind(text)


_SESSION_LOCK = threading.Lock()


def spark_session(master: str | None = None, conf: Mapping[str, Any] | None = None,
                  threads: int | None = None) -> SparkSession:
    """The process's SparkSession, started on first use with ``master`` (default
    ``local[threads]``) and ``conf`` over andon's defaults."""
    with _SESSION_LOCK:
        active = SparkSession.getActiveSession()
        builder = SparkSession.builder.appName("andon")
        url = master or f"local[{threads or '*'}]"
        if active is None:
            builder = builder.master(url)
        for key, value in {**DEFAULT_CONF, **local_conf(url), **(conf or {})}.items():
            builder = builder.config(key, str(value))
        try:
            session = builder.getOrCreate()
        except Exception as e:  # the JVM did not start (no Java, a bad master URL)
            raise EngineError(f"cannot start Spark: {str(e).strip().splitlines()[0]}") from e
        if active is None:
            session.sparkContext.setLogLevel("ERROR")
            from pyspark.logger import PySparkLogger

            for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
                # a failed query is an EngineError andon reports; not a JSON log line too
                PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
            atexit.register(_stop, session)
        return session


def _stop(session: SparkSession) -> None:
    with contextlib.suppress(Exception):
        session.stop()


_SPARK_TO_DUCKDB: dict[type[T.DataType], str] = {
    T.LongType: "BIGINT", T.IntegerType: "INTEGER", T.ShortType: "SMALLINT",
    T.ByteType: "TINYINT", T.DoubleType: "DOUBLE", T.FloatType: "FLOAT",
    T.StringType: "VARCHAR", T.BooleanType: "BOOLEAN", T.DateType: "DATE",
    T.TimestampType: "TIMESTAMP WITH TIME ZONE", T.TimestampNTZType: "TIMESTAMP",
    T.BinaryType: "BLOB", T.NullType: '"NULL"',
}


def duckdb_type(t: T.DataType) -> str:
    """A Spark type in DuckDB's spelling (manifests and checks name types one way)."""
    if isinstance(t, T.DecimalType):
        return f"DECIMAL({t.precision},{t.scale})"
    if isinstance(t, T.ArrayType):
        return duckdb_type(t.elementType) + "[]"
    name = _SPARK_TO_DUCKDB.get(type(t))
    return name if name is not None else t.simpleString().upper()


def _join_parts(parts: Sequence[Path], out: Path, codec: str) -> None:
    """Spark's part files of one query (one schema) as one Parquet file, row group by row
    group: nothing is held in memory beyond one row group."""
    first = pq.ParquetFile(parts[0])
    tmp = out.with_name(out.name + ".joining")
    with pq.ParquetWriter(tmp, first.schema_arrow,
                          compression="none" if codec == "uncompressed" else codec) as w:
        for part in parts:
            f = pq.ParquetFile(part)
            for i in range(f.num_row_groups):
                w.write_table(f.read_row_group(i))
    os.replace(tmp, out)


class SparkResult:
    """The rows of one query (``andon.engines.base.Result``), fetched on first use."""

    def __init__(self, df: DataFrame | None) -> None:
        self._df = df
        self._rows: list[tuple[Any, ...]] | None = None
        self._at = 0

    @property
    def columns(self) -> list[str]:
        return list(self._df.columns) if self._df is not None else []

    def _all(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            if self._df is None:
                self._rows = []
            else:
                try:
                    self._rows = [tuple(r) for r in self._df.collect()]
                except PySparkException as e:
                    raise translate(e) from e
                except Exception as e:  # py4j's error of a failed job
                    raise translate(e) from e
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self._all()
        if self._at >= len(rows):
            return None
        self._at += 1
        return rows[self._at - 1]

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        rows = self._all()[self._at:self._at + size]
        self._at += len(rows)
        return rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self._all()[self._at:]
        self._at += len(rows)
        return rows

    def arrow(self) -> pa.Table:
        if self._df is None:
            return pa.table({})
        try:
            return self._df.toArrow()
        except Exception as e:
            raise translate(e) from e


class SparkSessionHandle:
    """andon's session on the process's SparkSession (``andon.engines.base.Session``): text
    is read as DuckDB's dialect and transpiled, expressions are rendered for Spark."""

    def __init__(self, engine: SparkEngine) -> None:
        self._engine = engine

    def execute(self, sql: str | exp.Expr,
                params: Sequence[Any] | Mapping[str, Any] | None = None) -> SparkResult:
        text = self._engine.render(sql)
        return SparkResult(self._engine.sql(text, params))

    def view(self, name: str, files: Files) -> None:
        self._engine.frame(files).createOrReplaceTempView(name)

    def parse_rejects(self) -> list[ParseReject]:
        return []  # files are read by DuckDB (``reader``), which keeps the rejects

    def close(self) -> None:
        """Temporary views stay in the process's session: nothing to release."""


class SparkEngine:
    """Steps and checks run on Spark; artifacts are Parquet files of the warehouse.

    ``master``: Spark's master URL (default ``local[threads]``: in this process); ``conf``:
    Spark settings (``spark.executor.memory`` ...) over andon's defaults (``DEFAULT_CONF``)."""

    name = "spark"
    dialect = DIALECT
    artifact_format = "parquet"

    def __init__(self, master: str | None = None, conf: Mapping[str, Any] | None = None, *,
                 warehouse: Any = None, threads: int | None = None,
                 allowed: Sequence[Path] | None = None, **unknown: Any) -> None:
        if unknown:
            from andon.errors import did_you_mean

            bad = sorted(unknown)[0]
            raise InvalidInput(f"unknown engine option {bad!r} of engine spark"
                               f"{did_you_mean(bad, ['master', 'conf'])}")
        if conf is not None and not isinstance(conf, Mapping):
            raise InvalidInput("engine_options.conf of engine spark is a mapping of Spark "
                               "settings, e.g. {spark.executor.memory: 4g}")
        self.master = master
        self.conf = dict(conf or {})
        self.threads = threads
        self._root = None if warehouse is None else Path(warehouse.root)
        self._spark: SparkSession | None = None
        self._views: dict[str, str] = {}
        self._lock = threading.Lock()
        self._files: Any = None  # a DuckDB engine naming Parquet files' types as DuckDB does

    @property
    def spark(self) -> SparkSession:
        """The SparkSession, started on first use (a run that builds nothing starts none)."""
        with self._lock:
            if self._spark is None:
                self._spark = spark_session(self.master, self.conf, self.threads)
            return self._spark

    def sql(self, text: str, params: Sequence[Any] | Mapping[str, Any] | None = None
            ) -> DataFrame:
        """Spark SQL text as a DataFrame (analysed now, run when fetched or written)."""
        try:
            if params:
                return self.spark.sql(text, args=params)  # type: ignore[arg-type]
            return self.spark.sql(text)
        except Exception as e:
            raise translate(e) from e

    # artifacts as views ---------------------------------------------------------------------

    def _path(self, file: str | Path) -> str:
        path = Path(file)
        if not path.is_absolute() and self._root is not None:  # a manifest's file
            path = self._root / path
        return str(path)

    def frame(self, files: Files) -> DataFrame:
        """A DataFrame over an artifact's Parquet files (several: columns matched by name)."""
        paths = [self._path(f) for f in files]
        if not paths:
            raise InvalidInput("an artifact without files cannot be read")
        reader = self.spark.read
        if len(paths) > 1:
            reader = reader.option("mergeSchema", "true")
        try:
            return reader.parquet(*paths)
        except Exception as e:
            raise translate(e) from e

    def view_of(self, files: Files) -> str:
        """The temporary view over an artifact's files (made on first use; artifact files
        never change, so a view is made once per process)."""
        paths = [self._path(f) for f in files]
        key = hashlib.sha256("\0".join(paths).encode()).hexdigest()[:24]
        with self._lock:
            name = self._views.get(key)
        if name is not None:
            return name
        name = _VIEW + key
        self.frame(paths).createOrReplaceTempView(name)
        with self._lock:
            self._views[key] = name
        return name

    def _scan_call(self, call: exp.Func) -> exp.Expression | None:
        if call.name.lower() != "read_parquet" and not isinstance(call, exp.ReadParquet):
            return None
        first = call.expressions[0] if call.expressions else call.this
        if isinstance(first, exp.Array):
            files = [str(e.this) for e in first.expressions if isinstance(e, exp.Literal)]
        elif isinstance(first, exp.Literal):
            files = [str(first.this)]
        else:
            return None
        return exp.Table(this=exp.to_identifier(self.view_of(files)))

    def render(self, sql: str | exp.Expr) -> str:
        """Any SQL andon hands the engine (DuckDB's dialect), for Spark, artifact scans as
        their views."""
        return to_spark(sql, self._scan_call)

    # sessions -------------------------------------------------------------------------------

    def cursor(self) -> SparkSessionHandle:
        return SparkSessionHandle(self)

    def session(self, tables: Mapping[str, Files] | None = None) -> SparkSessionHandle:
        handle = SparkSessionHandle(self)
        for name, files in (tables or {}).items():
            handle.view(name, files)
        return handle

    def interrupt(self) -> None:
        """Cancel every Spark job in flight (Ctrl-C, a cancelled run)."""
        if self._spark is not None:
            with contextlib.suppress(Exception):
                self._spark.sparkContext.cancelAllJobs()

    def close(self) -> None:
        """Drop this engine's views; the SparkSession stays for the process's next engine."""
        with self._lock:
            views = list(self._views.values())
            self._views.clear()
            spark = self._spark
            self._spark = None
        if spark is not None:
            for name in views:
                with contextlib.suppress(Exception):
                    spark.catalog.dropTempView(name)
        if self._files is not None:
            self._files.close()
            self._files = None

    # building -------------------------------------------------------------------------------

    def scan(self, files: Files) -> exp.Expression:
        return exp.Table(this=exp.to_identifier(self.view_of(files)))

    def scan_rows(self, files: Files, ranges: Sequence[tuple[str, int, int]]
                  ) -> exp.Expression:
        """Rows by number per file (a spread sample): read with PyArrow, a view of them."""
        parts = [self._rows_of(f, first, last) for f, first, last in ranges]
        if not parts:
            return exp.select("*").from_(self.scan(files)).where(exp.false()).subquery(
                "_andon_none")
        return self._arrow_view(pa.concat_tables(parts, promote_options="default"))

    def _rows_of(self, file: str | Path, first: int, last: int) -> pa.Table:
        """Rows ``first``..``last`` (0-based) of a Parquet file, reading only the row groups
        that hold them."""
        f = pq.ParquetFile(self._path(file))
        groups: list[int] = []
        start = skip = 0
        for i in range(f.metadata.num_row_groups):
            n = f.metadata.row_group(i).num_rows
            if start <= last and start + n > first:
                if not groups:
                    skip = first - start
                groups.append(i)
            start += n
        if not groups:
            return f.schema_arrow.empty_table()
        return f.read_row_groups(groups).slice(skip, last - first + 1)

    def scan_numbered(self, file: str | Path, column: str) -> exp.Expression:
        table = pq.read_table(self._path(file))
        numbered = table.add_column(0, column, pa.array(range(1, table.num_rows + 1),
                                                        pa.int64()))
        return self._arrow_view(numbered)

    def _arrow_view(self, table: pa.Table) -> exp.Expression:
        name = "_andon_a_" + uuid.uuid4().hex[:16]
        try:
            self.spark.createDataFrame(table).createOrReplaceTempView(name)
        except Exception as e:
            raise translate(e) from e
        return exp.Table(this=exp.to_identifier(name))

    def materialize(self, query: str | exp.Expr, out: Path, *,
                    compression: str | None = None) -> int:
        """Run a query and write its rows as one Parquet file at ``out``; returns the row
        count. Spark writes a folder of part files, one per task, in parallel: one part is
        moved into place, several are joined row group by row group (PyArrow, no query
        re-run), so no stage of the query is narrowed to a single task."""
        if compression is not None and compression not in _CODECS:
            raise InvalidInput(f"unknown Parquet compression {compression!r}; "
                               f"one of: {', '.join(_CODECS)}")
        codec = compression or "snappy"
        df = self.sql(self.render(query))
        folder = out.parent / f".{out.name}.spark-{uuid.uuid4().hex[:12]}"
        try:
            try:
                df.write.mode("errorifexists").option("compression", codec).parquet(
                    str(folder))
            except Exception as e:
                raise translate(e) from e
            parts = sorted(folder.glob("part-*.parquet"))
            if not parts:  # no rows and no part file: the schema alone
                pq.write_table(df.limit(0).toArrow(), out)
            elif len(parts) == 1:
                os.replace(parts[0], out)
            else:
                _join_parts(parts, out, codec)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return int(pq.ParquetFile(out).metadata.num_rows)

    def _duckdb(self) -> Any:
        if self._files is None:
            from andon.engines.duckdb import DuckDBEngine

            self._files = DuckDBEngine(threads=1)
        return self._files

    def schema(self, files: Files) -> Schema:
        """Column names and types (DuckDB's spelling) from the files' Parquet footers."""
        return self._duckdb().schema([self._path(f) for f in files])  # type: ignore[no-any-return]

    def describe(self, query: exp.Expr) -> Schema:
        """The columns and types of a query's result (Spark analyses it; nothing is read)."""
        df = self.sql(self.render(query))
        return tuple((f.name, duckdb_type(f.dataType)) for f in df.schema.fields)

    def max_value(self, files: Files, column: str) -> Any:
        row = self.cursor().execute(exp.select(exp.Max(this=exp.column(column, quoted=True)))
                                    .from_(self.scan(files))).fetchone()
        return row[0] if row else None

    def read_arrow(self, files: Files) -> pa.Table:
        tables = [pq.read_table(self._path(f)) for f in files]
        return pa.concat_tables(tables, promote_options="default")

    @staticmethod
    def write_arrow(table: pa.Table, out: Path) -> int:
        pq.write_table(table, out, compression="zstd")
        return int(table.num_rows)

    # landing: DuckDB reads the files senders deliver ------------------------------------------

    @staticmethod
    def reader(allowed: Sequence[Path]) -> Any:
        """The engine that ingests landed files: DuckDB confined to ``allowed``, writing
        Parquet parts Spark reads like any artifact."""
        from andon.engines.duckdb import DuckDBEngine

        return DuckDBEngine(allowed=allowed)

    @staticmethod
    def _landing_only(what: str) -> InvalidInput:
        return InvalidInput(f"{what} is done by the landing reader (DuckDB), not on Spark; "
                            "ingest through engine.reader()")

    def read_csv(self, file: str | Path, columns: Sequence[tuple[str, str]],
                 options: CsvOptions) -> exp.Expression:
        raise self._landing_only("reading CSV files")

    def read_lines(self, file: str | Path) -> exp.Expression:
        raise self._landing_only("reading text files")

    @staticmethod
    def json_object(text: exp.Expression) -> exp.Expression:
        """``text`` when it is a JSON object (``{...}`` Spark can parse), else NULL."""
        is_object = exp.and_(
            exp.Like(this=exp.Trim(this=text.copy()), expression=exp.Literal.string("{%")),
            exp.Not(this=exp.Is(this=exp.Anonymous(
                this="get_json_object", expressions=[text.copy(), exp.Literal.string("$")]),
                expression=exp.null())))
        return exp.Case().when(is_object, text.copy())

    @staticmethod
    def json_field(document: exp.Expression, key: str) -> exp.Expression:
        path = "$." + key if key.isidentifier() else "$['" + key.replace("'", "\\'") + "']"
        return exp.Anonymous(this="get_json_object",
                             expressions=[document.copy(), exp.Literal.string(path)])

    # environments and gc: artifacts are only files ------------------------------------------

    def finish(self, staging: Path, step: str, fingerprint: str) -> None:
        """Parquet files are sealed as written: nothing to do."""

    def publish(self, environment: str, tables: Mapping[str, Location]) -> None:
        """Readers find an environment through andon (its manifests): nothing to do."""

    def collect(self, live: Iterable[Location], *, dry_run: bool = False) -> list[str]:
        """Artifacts are only files, which gc deletes: nothing else to collect."""
        return []
