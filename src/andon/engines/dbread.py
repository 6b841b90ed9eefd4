"""Read a table or a query of PostgreSQL, MySQL/MariaDB or SQLite with the database's own
Python driver, in batches, as Arrow record batches: the reader of database sources when
DuckDB's scanner extension cannot be loaded (``andon.engines.dbscan`` writes them to the
same Parquet snapshot).

Memory stays bounded: a server-side cursor (PostgreSQL), an unbuffered cursor (MySQL) or
SQLite's own stepping hands over ``BATCH`` rows at a time. The types are the scanner's: each
column is read as the driver's plain value (integers, floats, booleans, bytes) or as text,
and ``Rows.casts`` gives the DuckDB type the text is cast to (a decimal, a date, a timestamp
with or without time zone, a UUID, an interval), so both readers write the same snapshot
schema."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa

BATCH = 50_000
# the driver of each kind of database, and the extra that installs it
DRIVERS = {"postgres": ("psycopg", "postgres"), "mysql": ("pymysql", "mysql"),
           "sqlite": ("sqlite3", None)}


def driver_available(kind: str) -> bool:
    return importlib.util.find_spec(DRIVERS[kind][0]) is not None


def driver_hint(kind: str) -> str:
    extra = DRIVERS[kind][1]
    return f"pip install 'andon[{extra}]' (the {DRIVERS[kind][0]} driver)" if extra else ""


@dataclass
class Rows:
    """The rows of a read: their Arrow schema, the batches (a stream: read once), the DuckDB
    type each text column is cast to, and what closes the connection."""

    driver: str
    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    casts: dict[str, str]
    close: Callable[[], None]


@dataclass(frozen=True)
class _Col:
    name: str
    arrow: pa.DataType
    cast: str | None = None  # the DuckDB type of the snapshot, when not the Arrow one's


class ConnectError(Exception):
    """The database could not be reached, or refused the login."""


class ReadError(Exception):
    """The table, query or cursor could not be read."""


def read(kind: str, url: str, target: str, sql: str, password: str | None) -> Rows:
    """Run ``sql`` (a SELECT in the database's own dialect) and stream its rows. ``target``
    is the SQLite file. Raises ConnectError or ReadError (the driver's message)."""
    return _READERS[kind](url, target, sql, password)


def _batches(cursor: Any, cols: Sequence[_Col], schema: pa.Schema,
             fix: Callable[[int, list[Any]], list[Any]] | None = None,
             close: Callable[[], None] | None = None) -> Iterator[pa.RecordBatch]:
    try:
        while True:
            rows = cursor.fetchmany(BATCH)
            if not rows:
                return
            arrays = []
            for i, values in enumerate(zip(*rows, strict=True)):
                vals = list(values)
                if fix is not None:
                    vals = fix(i, vals)
                try:
                    arrays.append(pa.array(vals, type=cols[i].arrow))
                except (pa.ArrowException, TypeError, ValueError) as e:
                    raise ReadError(f"column {cols[i].name!r}: {e}") from e
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
    finally:
        if close is not None:
            close()


def _schema(cols: Sequence[_Col]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.arrow) for c in cols])


def _casts(cols: Sequence[_Col]) -> dict[str, str]:
    return {c.name: c.cast for c in cols if c.cast is not None}


# PostgreSQL ---------------------------------------------------------------------------------

_PG_NATIVE = {16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(),
              700: pa.float32(), 701: pa.float64(), 17: pa.binary(), 26: pa.int64()}
_PG_CAST = {26: "UINTEGER", 1082: "DATE", 1114: "TIMESTAMP", 1184: "TIMESTAMPTZ",
            1083: "TIME", 1266: "TIMETZ", 2950: "UUID", 1186: "INTERVAL"}
# read as text, cast by DuckDB: faster than building Python dates and decimals
_PG_TEXT = ("numeric", "date", "timestamp", "timestamptz", "time", "timetz", "uuid", "json",
            "jsonb", "interval")


def _pg_col(name: str, oid: int, precision: int | None, scale: int | None) -> _Col:
    if oid in _PG_NATIVE:
        return _Col(name, _PG_NATIVE[oid], _PG_CAST.get(oid))
    if oid == 1700:  # numeric(p, s) up to 38 digits: a decimal; otherwise a double
        if precision is not None and precision <= 38:
            return _Col(name, pa.string(), f"DECIMAL({precision},{scale or 0})")
        return _Col(name, pa.string(), "DOUBLE")
    if oid in _PG_CAST:
        return _Col(name, pa.string(), _PG_CAST[oid])
    if oid in (1000, 1005, 1007, 1016, 1021, 1022, 1009, 1015):  # arrays of simple types
        return _Col(name, _PG_ARRAYS[oid])
    return _Col(name, pa.string())


_PG_ARRAYS = {1000: pa.list_(pa.bool_()), 1005: pa.list_(pa.int16()),
              1007: pa.list_(pa.int32()), 1016: pa.list_(pa.int64()),
              1021: pa.list_(pa.float32()), 1022: pa.list_(pa.float64()),
              1009: pa.list_(pa.string()), 1015: pa.list_(pa.string())}


def _postgres(url: str, target: str, sql: str, password: str | None) -> Rows:
    import psycopg
    from psycopg.types.string import TextLoader

    parts = urlsplit(url)
    conninfo = parts._replace(scheme="postgresql").geturl()
    try:
        conn = psycopg.connect(conninfo, password=password, connect_timeout=10) \
            if password is not None else psycopg.connect(conninfo, connect_timeout=10)
    except psycopg.Error as e:
        raise ConnectError(str(e).strip().splitlines()[0] if str(e).strip() else repr(e)) \
            from e
    try:
        conn.read_only = True
        conn.execute("SET TIME ZONE 'UTC'")
        for name in _PG_TEXT:
            conn.adapters.register_loader(name, TextLoader)
        head = conn.execute(f"SELECT * FROM ({sql}) AS andon_head LIMIT 0").description or []
        cols = [_pg_col(d.name, d.type_code, d.precision, d.scale) for d in head]
        names = [c.name for c in cols]
        if all(d.type_code in _PG_CSV for d in head) and len(set(names)) == len(names):
            schema = _schema(cols)
            padded = [c.name for c, d in zip(cols, head, strict=True) if d.type_code == 1042]
            return Rows("psycopg", schema, _pg_copy(conn, sql, cols, padded), _casts(cols),
                        conn.close)
        cur = conn.cursor(name="andon_pull")
        cur.itersize = BATCH
        cur.execute(sql)
        desc = cur.description or []
        cols = [_pg_col(d.name, d.type_code, d.precision, d.scale) for d in desc]
    except psycopg.Error as e:
        conn.close()
        raise ReadError(str(e).strip().splitlines()[0]) from e
    chars = {i for i, d in enumerate(desc) if d.type_code == 1042}  # char(n)

    def fix(i: int, values: list[Any]) -> list[Any]:
        if i in chars:  # the scanner reads char(n) without its padding
            return [v if v is None else v.rstrip(" ") for v in values]
        return values

    schema = _schema(cols)
    return Rows("psycopg", schema, _batches(cur, cols, schema, fix, conn.close),
                _casts(cols), conn.close)


# the types COPY ... (FORMAT csv) writes as text that Arrow or DuckDB parse back exactly
_PG_CSV = {*_PG_NATIVE, *_PG_CAST, 1700, 25, 1043, 1042, 19, 114, 3802} - {17}


class _Chunks(io.RawIOBase):
    """A file over the chunks of a COPY TO STDOUT, for Arrow's streaming CSV reader."""

    def __init__(self, chunks: Iterator[Any]) -> None:
        self.chunks = chunks
        self.left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = len(buffer)
        parts: list[Any] = [self.left] if self.left else []
        have = len(self.left)
        for chunk in self.chunks:  # a chunk per row: join them, not one call each
            parts.append(chunk)
            have += len(chunk)
            if have >= want:
                break
        if not parts:
            return 0
        data = memoryview(b"".join(parts))
        n = min(want, len(data))
        buffer[:n] = data[:n]
        self.left = data[n:]
        return n


def _pg_copy(conn: Any, sql: str, cols: Sequence[_Col], padded: Sequence[str]
             ) -> Iterator[pa.RecordBatch]:
    """The rows as PostgreSQL's COPY writes them (CSV: an empty field is null, a quoted
    empty one the empty string), parsed by Arrow block by block."""
    import pyarrow.compute as pc
    import pyarrow.csv as csv

    try:
        with conn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
            stream = io.BufferedReader(_Chunks(iter(copy)), buffer_size=1 << 20)
            reader = csv.open_csv(
                stream,
                read_options=csv.ReadOptions(column_names=[c.name for c in cols],
                                             block_size=4 << 20, use_threads=False),
                parse_options=csv.ParseOptions(newlines_in_values=True),
                convert_options=csv.ConvertOptions(
                    column_types={c.name: c.arrow for c in cols}, null_values=[""],
                    strings_can_be_null=True, quoted_strings_can_be_null=False,
                    true_values=["t"], false_values=["f"]))
            for batch in reader:
                for name in padded:  # the scanner reads char(n) without its padding
                    i = batch.schema.get_field_index(name)
                    batch = batch.set_column(i, name, pc.utf8_rtrim(batch.column(i), " "))
                yield batch
    finally:
        conn.close()


# MySQL / MariaDB ----------------------------------------------------------------------------

def _mysql_col(name: str, field: Any) -> _Col:
    from pymysql.constants import FIELD_TYPE as F

    code, flags = field.type_code, field.flags
    unsigned = bool(flags & 32)
    ints = {F.TINY: ("int16", "UTINYINT", "TINYINT"), F.SHORT: ("int32", "USMALLINT",
            "SMALLINT"), F.INT24: ("int64", "UINTEGER", "INTEGER"),
            F.LONG: ("int64", "UINTEGER", "INTEGER"), F.LONGLONG: ("", "UBIGINT", "BIGINT")}
    if code == F.TINY and field.length == 1:  # tinyint(1): the scanner's boolean
        return _Col(name, pa.int16(), "BOOLEAN")
    if code in ints:
        arrow, u, s = ints[code]
        if code == F.LONGLONG:
            return _Col(name, pa.uint64(), "UBIGINT") if unsigned else _Col(name, pa.int64())
        return _Col(name, getattr(pa, arrow)(), u if unsigned else s)
    if code == F.YEAR:
        return _Col(name, pa.int64(), "INTEGER")
    if code == F.FLOAT:
        return _Col(name, pa.float32())
    if code == F.DOUBLE:
        return _Col(name, pa.float64())
    if code in (F.DECIMAL, F.NEWDECIMAL):
        scale = field.scale
        precision = field.length - (1 if scale else 0) - (0 if unsigned else 1)
        if precision <= 38:
            return _Col(name, pa.string(), f"DECIMAL({precision},{scale})")
        return _Col(name, pa.string(), "DOUBLE")
    if code == F.DATE:
        return _Col(name, pa.string(), "DATE")
    if code in (F.DATETIME, F.TIMESTAMP):
        return _Col(name, pa.string(), "TIMESTAMP")
    binary = field.charsetnr == 63 and code not in (F.TIME, F.JSON, F.NEWDATE)
    return _Col(name, pa.binary() if binary or code == F.BIT else pa.string())


def _mysql(url: str, target: str, sql: str, password: str | None) -> Rows:
    import pymysql
    import pymysql.converters
    import pymysql.cursors
    from pymysql.constants import FIELD_TYPE as F

    parts = urlsplit(url)
    # integers and floats as numbers; every other value as the server's text (or bytes)
    conv: dict[Any, Any] = {k: v for k, v in pymysql.converters.conversions.items()
                            if not isinstance(k, int)}  # the encoders of parameters
    conv.update({t: int for t in (F.TINY, F.SHORT, F.LONG, F.INT24, F.LONGLONG, F.YEAR)})
    conv.update({F.FLOAT: float, F.DOUBLE: float})
    try:
        conn = pymysql.connect(
            host=parts.hostname or "localhost", port=parts.port or 3306,
            user=unquote(parts.username or ""), password=password or "",
            database=parts.path.lstrip("/") or None, conv=conv, connect_timeout=10,
            cursorclass=pymysql.cursors.SSCursor, charset="utf8mb4",
            init_command="SET time_zone = '+00:00'")
    except pymysql.Error as e:
        raise ConnectError(_mysql_message(e)) from e
    try:
        cur = conn.cursor()
        cur.execute(sql)
        fields = cur._result.fields if cur._result is not None else []
        cols = [_mysql_col(d[0], f) for d, f in zip(cur.description or [], fields,
                                                   strict=True)]
    except pymysql.Error as e:
        conn.close()
        raise ReadError(_mysql_message(e)) from e
    text = [i for i, c in enumerate(cols) if c.arrow == pa.string()]

    def fix(i: int, values: list[Any]) -> list[Any]:
        if i in text:  # temporal values come as bytes (their charset is binary)
            return [v.decode() if isinstance(v, bytes) else v for v in values]
        return values

    def close() -> None:
        with contextlib.suppress(pymysql.Error):
            conn.close()

    schema = _schema(cols)
    return Rows("pymysql", schema, _batches(cur, cols, schema, fix, close), _casts(cols),
                close)


def _mysql_message(e: Exception) -> str:
    args: tuple[Any, ...] = e.args  # pymysql's: (code, message)
    return str(args[1]) if len(args) > 1 else str(e)


# SQLite -------------------------------------------------------------------------------------

def _sqlite_col(name: str, declared: str, sample: Any) -> _Col:
    """The scanner's mapping of a declared type: INT → BIGINT, text → VARCHAR, DATE,
    TIMESTAMP/DATETIME, REAL/FLOAT/DOUBLE → DOUBLE, BLOB (or none) → BLOB, the rest (NUMERIC,
    DECIMAL) → DOUBLE. A query's computed column (no declared type) takes its values' type."""
    d = declared.upper()
    if not d:
        if sample is None or isinstance(sample, (bytes, str)):
            return _Col(name, pa.binary())
        return _Col(name, pa.int64() if isinstance(sample, int) else pa.float64())
    if "INT" in d or d.startswith("BOOL"):
        return _Col(name, pa.int64())
    if any(t in d for t in ("CHAR", "CLOB", "TEXT")):
        return _Col(name, pa.string())
    if "BLOB" in d:
        return _Col(name, pa.binary())
    if d == "DATE":
        return _Col(name, pa.string(), "DATE")
    if "TIMESTAMP" in d or "DATETIME" in d:
        return _Col(name, pa.string(), "TIMESTAMP")
    return _Col(name, pa.float64())


def _sqlite(url: str, target: str, sql: str, password: str | None) -> Rows:
    from pathlib import Path

    try:
        conn = sqlite3.connect(Path(target).resolve().as_uri() + "?mode=ro", uri=True,
                               check_same_thread=False)
    except sqlite3.Error as e:
        raise ConnectError(str(e)) from e
    try:
        # the declared types of the result's columns, through a temporary view of it
        conn.execute(f"CREATE TEMP VIEW andon_pull AS {sql}")
        declared = [r[2] for r in conn.execute("PRAGMA temp.table_info(andon_pull)")]
        cur = conn.execute("SELECT * FROM temp.andon_pull")
        names = [d[0] for d in cur.description]
        first = cur.fetchmany(BATCH)
    except sqlite3.Error as e:
        conn.close()
        raise ReadError(str(e)) from e
    cols = []
    for i, (name, decl) in enumerate(zip(names, declared, strict=True)):
        sample = next((r[i] for r in first if r[i] is not None), None)
        cols.append(_sqlite_col(name, decl or "", sample))

    def fix(i: int, values: list[Any]) -> list[Any]:
        arrow = cols[i].arrow
        if arrow == pa.binary():
            return [v.encode() if isinstance(v, str) else
                    (None if v is None else str(v).encode()) if not isinstance(v, bytes)
                    else v for v in values]
        if arrow == pa.string():
            return [v if v is None or isinstance(v, str) else str(v) for v in values]
        if arrow == pa.float64():
            return [None if v is None else float(v) for v in values]
        return values

    class _Replay:  # the first batch was read already, to see the values' types
        def __init__(self) -> None:
            self.pending: list[Any] | None = first

        def fetchmany(self, n: int) -> list[Any]:
            if self.pending is not None:
                out, self.pending = self.pending, None
                return out
            return cur.fetchmany(n)

    schema = _schema(cols)
    return Rows("sqlite3", schema, _batches(_Replay(), cols, schema, fix, conn.close),
                _casts(cols), conn.close)


_READERS: dict[str, Callable[[str, str, str, str | None], Rows]] = {
    "postgres": _postgres, "mysql": _mysql, "sqlite": _sqlite}
