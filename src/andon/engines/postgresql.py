"""The PostgreSQL engine: steps run inside PostgreSQL, artifacts are tables of its database.

A step's artifact is a table of the project's schema named by its fingerprint
(``a_<fingerprint>_<part>``); in the warehouse the artifact is a folder whose files are
pointers (format ``pgtable``: a small JSON document naming the table), so manifests, sealing,
reuse and gc work as for Parquet. SQL written in DuckDB's dialect (a step, andon's own
checks) is transpiled by sqlglot to PostgreSQL; a construct sqlglot cannot render there is an
``InvalidInput`` naming it. Parquet artifacts (sources landed by DuckDB, Python steps run on
another executor) are loaded into a table ``p_<hash>`` of the schema the first time a query
reads them. Each environment is a schema of views (``<schema>_<environment>.<table>``) over
the artifact tables, replaced in one transaction when the environment moves.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlglot
from psycopg import errors as pgerrors
from psycopg import sql as pgsql
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, UnsupportedError

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
from andon.engines.sql import full_match

DIALECT = "postgres"
FORMAT = "pgtable"
SUFFIX = ".pgtable"
_PARQUET_MAGIC = b"PAR1"


def translate(e: psycopg.Error) -> EngineError:
    """PostgreSQL's error as the engine interface's kind of error."""
    if isinstance(e, pgerrors.QueryCanceled):
        kind: type[EngineError] = Interrupted
    elif isinstance(e, pgerrors.UndefinedTable | pgerrors.UndefinedColumn
                    | pgerrors.UndefinedFunction | pgerrors.UndefinedObject
                    | pgerrors.InvalidSchemaName):
        kind = UnknownObject
    elif isinstance(e, pgerrors.SyntaxError | pgerrors.DataException
                    | pgerrors.InvalidTextRepresentation):
        kind = InvalidInput
    else:
        kind = EngineError
    return kind(str(e).strip())


def to_postgres(query: str | exp.Expr, tables: Mapping[str, str] | None = None) -> str:
    """SQL in DuckDB's dialect (text) or an expression, rendered for PostgreSQL: each
    ``read_parquet([...])`` of artifact files becomes its table (``tables``: file → qualified
    table). A construct PostgreSQL has no rendering for is ``InvalidInput`` naming it."""
    tree = _parse(query) if isinstance(query, str) else query.copy()
    if tables is not None:
        for call in _parquet_calls(tree):
            files = _call_files(call)
            if not files:
                continue
            holder = call.parent if isinstance(call.parent, exp.Table) else None
            alias = holder.alias if holder is not None else ""
            scan = _scan_of([tables[f] for f in files], alias or None)
            (holder or call).replace(scan)
    found = _unsupported(tree)
    if found is not None:
        raise InvalidInput(f"PostgreSQL has no equivalent of: {found[0]}")
    tree = tree.transform(_postgres_function)
    try:
        return tree.sql(dialect=DIALECT, unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as e:
        raise InvalidInput(f"PostgreSQL has no equivalent of: {e}") from None


_UNITS = {"to_seconds": "second", "to_minutes": "minute", "to_hours": "hour",
          "to_days": "day", "to_weeks": "week", "to_months": "month", "to_years": "year"}


def _ints(args: Sequence[exp.Expression | None], last: str = "INT") -> list[exp.Expression]:
    out: list[exp.Expression] = [exp.cast(a.copy(), "INT") for a in args if a is not None]
    if out and last != "INT":
        out[-1] = exp.cast(out[-1].this, last)
    return out


def _alias() -> exp.TableAlias:
    return exp.TableAlias(this=exp.to_identifier("_andon_" + uuid.uuid4().hex[:8]))


def _double_aggregate(node: exp.Expression) -> bool:
    """An average, standard deviation or variance (over a window, filtered or not)."""
    while isinstance(node, exp.Window | exp.Filter):
        node = node.this
    return isinstance(node, exp.Avg | exp.Stddev | exp.StddevSamp | exp.StddevPop
                      | exp.Variance | exp.VariancePop)


def _postgres_function(node: exp.Expression) -> exp.Expression:
    """DuckDB functions sqlglot renders under a name PostgreSQL lacks, as PostgreSQL's."""
    if isinstance(node, exp.DateFromParts):
        return exp.Anonymous(this="MAKE_DATE", expressions=_ints(
            [node.args.get("year"), node.args.get("month"), node.args.get("day")]))
    if isinstance(node, exp.TimestampFromParts) and node.args.get("sec") is not None:
        parts = [node.args.get(k) for k in ("year", "month", "day", "hour", "min", "sec")]
        return exp.Anonymous(this="MAKE_TIMESTAMP", expressions=_ints(parts, "DOUBLE"))
    if isinstance(node, exp.Select) and isinstance(node.args.get("group"), exp.Group) \
            and node.args["group"].args.get("all"):  # GROUP BY ALL: the plain columns
        plain = [exp.Literal.number(i + 1) for i, e in enumerate(node.selects)
                 if e.find(exp.AggFunc) is None and not isinstance(e.unalias(), exp.Literal)]
        node.set("group", exp.Group(expressions=plain) if plain else None)  # on our copy
        return node
    if isinstance(node, exp.GenerateSeries) and isinstance(node.args.get("start"), exp.Literal):
        node.set("start", exp.cast(node.args["start"], "BIGINT"))  # DuckDB's range: BIGINT
        return node
    if isinstance(node, exp.Table) and isinstance(node.this, exp.Subquery):
        inner = node.this.copy()  # a subquery put in a table's place (andon's templates)
        inner.set("alias", node.args.get("alias") or _alias())
        return inner
    if isinstance(node, exp.Subquery) and not node.alias \
            and isinstance(node.parent, exp.From | exp.Join):  # PostgreSQL < 16 needs one
        node.set("alias", _alias())
        return node
    if isinstance(node, exp.ApproxDistinct):  # no HyperLogLog in PostgreSQL: exact
        return exp.Count(this=exp.Distinct(expressions=[node.this.copy()]))
    if _double_aggregate(node) and not isinstance(node.parent, exp.Cast | exp.Window
                                                  | exp.Filter):
        return exp.cast(node, "DOUBLE")  # DuckDB's are DOUBLE; PostgreSQL's NUMERIC on integers
    if isinstance(node, exp.IntDiv):
        return exp.cast(exp.Anonymous(this="DIV", expressions=[node.this.copy(),
                                                                 node.expression.copy()]),
                        "BIGINT")
    matched = full_match(node)
    if matched is not None:
        text, pattern = matched
        whole = exp.DPipe(this=exp.DPipe(this=exp.Literal.string("^(?:"),
                                         expression=pattern.copy()),
                          expression=exp.Literal.string(")$"))
        return exp.Paren(this=exp.RegexpLike(this=text.copy(),
                                             expression=exp.Paren(this=whole)))
    if isinstance(node, exp.Anonymous) and node.name.lower() == "typeof":
        return exp.cast(exp.Anonymous(this="PG_TYPEOF", expressions=node.expressions), "TEXT")
    if isinstance(node, exp.Anonymous) and node.name.lower() == "range" \
            and len(node.expressions) == 1:  # the table of 0 .. n - 1
        return exp.Anonymous(this="GENERATE_SERIES", expressions=[  # BIGINT, as DuckDB's
            exp.cast(exp.Literal.number(0), "BIGINT"),
            exp.Sub(this=node.expressions[0].copy(), expression=exp.Literal.number(1))])
    if isinstance(node, exp.Anonymous) and node.name.lower() in _UNITS \
            and len(node.expressions) == 1:
        unit = exp.Interval(this=exp.Literal.string("1"),
                            unit=exp.var(_UNITS[node.name.lower()].upper()))
        return exp.Mul(this=exp.Paren(this=node.expressions[0].copy()), expression=unit)
    if isinstance(node, exp.Anonymous) and isinstance(node.this, str):
        try:  # a call built by name (andon's checks): as DuckDB's parser types it
            typed = exp.func(node.this, *(a.copy() for a in node.expressions),
                             dialect="duckdb")
        except (ValueError, ParseError, TypeError):
            return node
        if isinstance(typed, exp.Anonymous) or not isinstance(typed, exp.Expression):
            return node
        return _postgres_function(typed)
    return node


# DuckDB constructs sqlglot renders for PostgreSQL without complaint, but wrongly:
# (what it is, a word that finds it in the step's text)
def _unsupported(tree: exp.Expr) -> tuple[str, str] | None:
    for star in tree.find_all(exp.Star):
        for arg, word in (("except_", "EXCLUDE"), ("replace", "REPLACE"),
                          ("rename", "RENAME")):
            if star.args.get(arg):
                return f"SELECT * {word} (list the columns instead)", word
    for node, what, word in ((exp.Columns, "COLUMNS(...)", "COLUMNS"),
                             (exp.Lambda, "a lambda (x -> ...)", "->"),
                             (exp.Pivot, "PIVOT/UNPIVOT", "PIVOT")):
        if tree.find(node) is not None:
            return what, word
    return None


def check_sql(sql: str) -> tuple[str, str] | None:
    """A construct of SQL in DuckDB's dialect that cannot run on PostgreSQL, with a word
    that finds it in the text; None when it transpiles. For plan-time validation."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except ParseError:
        return None  # reported by the project's own parse
    found = _unsupported(tree)
    if found is not None:
        return found
    try:
        to_postgres(tree)
    except InvalidInput as e:
        return str(e).removeprefix("PostgreSQL has no equivalent of: "), ""
    return None


def _parse(sql: str) -> exp.Expr:
    """SQL text in DuckDB's dialect (``InvalidInput`` when it does not parse)."""
    try:
        return sqlglot.parse_one(sql, read="duckdb")
    except ParseError as e:
        first = e.errors[0] if e.errors else {}
        raise InvalidInput(f"syntax error: {first.get('description', str(e))} at line "
                           f"{first.get('line', '?')}, column {first.get('col', '?')}"
                           ) from None


def _parquet_calls(tree: exp.Expr) -> list[exp.Func]:
    """The ``read_parquet(...)`` scans of a query."""
    return [c for c in tree.find_all(exp.Anonymous, exp.ReadParquet)
            if isinstance(c, exp.ReadParquet) or c.name.lower() == "read_parquet"]


def _call_files(call: exp.Func) -> list[str]:
    first = call.expressions[0] if call.expressions else call.this
    if isinstance(first, exp.Array):
        return [str(e.this) for e in first.expressions if isinstance(e, exp.Literal)]
    if isinstance(first, exp.Literal):
        return [str(first.this)]
    return []


def _qualified(name: str) -> exp.Table:
    schema, _, table = name.partition(".")
    return exp.Table(this=exp.to_identifier(table, quoted=True),
                     db=exp.to_identifier(schema, quoted=True))


def _scan_of(tables: Sequence[str], alias: str | None = None) -> exp.Expression:
    """A table expression over an artifact's tables (several: their rows one after
    another), under ``alias`` when given."""
    if len(tables) == 1:
        one = _qualified(tables[0])
        if alias:
            one.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
        return one
    union: exp.Query = exp.select("*").from_(_qualified(tables[0]))
    for t in tables[1:]:
        union = exp.union(union, exp.select("*").from_(_qualified(t)), distinct=False)
    return exp.Subquery(this=union, alias=exp.TableAlias(
        this=exp.to_identifier(alias or "_andon_" + uuid.uuid4().hex[:8], quoted=True)))


# PostgreSQL's type names (format_type) as DuckDB names them: manifests record one spelling
_TYPES = {
    "bigint": "BIGINT", "integer": "INTEGER", "smallint": "SMALLINT", "boolean": "BOOLEAN",
    "double precision": "DOUBLE", "real": "FLOAT", "text": "VARCHAR",
    "character varying": "VARCHAR", "character": "VARCHAR", "date": "DATE",
    "timestamp without time zone": "TIMESTAMP", "timestamp with time zone":
    "TIMESTAMP WITH TIME ZONE", "time without time zone": "TIME", "bytea": "BLOB",
    "interval": "INTERVAL", "json": "JSON", "jsonb": "JSON", "uuid": "UUID",
    "numeric": "DECIMAL(18,3)",
}


def duckdb_type(pg: str) -> str:
    """A PostgreSQL type (as ``format_type`` writes it) in DuckDB's spelling."""
    base = re.sub(r"\(.*\)", "", pg).strip()
    if base == "numeric" and "(" in pg:
        return "DECIMAL" + pg[pg.index("("):].replace(" ", "")
    if base.endswith("[]"):
        return duckdb_type(base[:-2]) + "[]"
    if base.startswith("character varying") or base.startswith("character"):
        return "VARCHAR"
    return _TYPES.get(base, pg.upper())


_ARROW_TO_PG = {
    "int8": "smallint", "int16": "smallint", "int32": "integer", "int64": "bigint",
    "uint8": "smallint", "uint16": "integer", "uint32": "bigint", "uint64": "numeric(20,0)",
    "float": "real", "halffloat": "real", "double": "double precision", "bool": "boolean",
    "string": "text", "large_string": "text", "string_view": "text", "date32[day]": "date",
    "binary": "bytea", "large_binary": "bytea", "null": "text",
}


def _pg_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_decimal(t):
        return f"numeric({t.precision},{t.scale})"
    if pa.types.is_dictionary(t):
        return _pg_type(t.value_type)
    name = _ARROW_TO_PG.get(str(t))
    if name is None:
        raise InvalidInput(f"a column of type {t} cannot be stored in PostgreSQL; "
                           "cast it to a scalar type in the step")
    return name


class PgResult:
    """The rows of one query (``andon.engines.base.Result``)."""

    __slots__ = ("_cur",)

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    @property
    def columns(self) -> list[str]:
        return [d.name for d in self._cur.description or []]

    def _fetch(self, how: str, *args: int) -> Any:
        if self._cur.description is None:
            return None if how == "fetchone" else []
        try:
            return getattr(self._cur, how)(*args)
        except psycopg.Error as e:
            raise translate(e) from e

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._fetch("fetchone")
        return None if row is None else tuple(row)

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._fetch("fetchmany", size)]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._fetch("fetchall")]

    def arrow(self) -> pa.Table:
        names = self.columns
        rows = self.fetchall()
        return pa.table({n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)})


class PgSession:
    """One PostgreSQL connection (autocommit) behind ``andon.engines.base.Session``; text is
    read as DuckDB's dialect and transpiled, expressions are rendered for PostgreSQL."""

    def __init__(self, engine: PostgresEngine, conn: psycopg.Connection[Any]) -> None:
        self._engine = engine
        self.conn = conn

    def execute(self, sql: str | exp.Expr,
                params: Sequence[Any] | Mapping[str, Any] | None = None) -> PgResult:
        tree = _parse(sql) if isinstance(sql, str) else sql
        if isinstance(tree, exp.Create) and tree.kind == "TABLE" and tree.args.get("replace"):
            # PostgreSQL has no CREATE OR REPLACE TABLE: drop, then create
            self.raw(f"DROP TABLE IF EXISTS {tree.this.sql(dialect=DIALECT)}")
            tree = tree.copy()
            tree.set("replace", False)
        text = self._engine.render(tree)
        if params is not None and not isinstance(params, Mapping) and "%(" in text:
            params = {str(i + 1): v for i, v in enumerate(params)}  # DuckDB's $1, $2 ...
        return self.raw(text, params)

    def raw(self, text: str | pgsql.Composable,
            params: Sequence[Any] | Mapping[str, Any] | None = None) -> PgResult:
        """Run PostgreSQL's own SQL as it is."""
        cur = self.conn.cursor()
        try:
            cur.execute(text, params)  # type: ignore[arg-type]
        except psycopg.Error as e:
            raise translate(e) from e
        return PgResult(cur)

    def view(self, name: str, files: Files) -> None:
        self.raw(pgsql.SQL("CREATE OR REPLACE TEMP VIEW {} AS SELECT * FROM {}").format(
            pgsql.Identifier(name),
            pgsql.SQL(self._engine.scan(files).sql(dialect=DIALECT))))

    def parse_rejects(self) -> list[ParseReject]:
        return []  # files are read by DuckDB (``reader``), which keeps the rejects

    def interrupt(self) -> None:
        # cancel_safe (psycopg >= 3.2) does not block on a dead server; cancel before that
        cancel = getattr(self.conn, "cancel_safe", None) or self.conn.cancel
        with contextlib.suppress(psycopg.Error):
            cancel()

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn.close()


class PostgresEngine:
    """Steps and checks run in a PostgreSQL database; artifacts are tables of ``schema``.

    ``url``: the database (libpq URL); ``schema``: the project's schema of artifact tables
    (environments get ``<schema>_<environment>``). One connection per thread."""

    name = "postgresql"
    dialect = DIALECT
    artifact_format = FORMAT

    def __init__(self, url: str | None = None, schema: str = "andon", *,
                 warehouse: Any = None, threads: int | None = None,
                 allowed: Sequence[Path] | None = None, **unknown: Any) -> None:
        if unknown:
            from andon.errors import did_you_mean

            bad = sorted(unknown)[0]
            hint = did_you_mean(bad, ["url", "url_secret", "schema"])
            raise InvalidInput(f"unknown engine option {bad!r} of engine postgresql"
                               + (f"; {hint}" if hint else "; known: url, url_secret, schema"))
        if not url:
            raise InvalidInput("engine postgresql needs its database: set engine_options: "
                               "{url: postgresql://user@host/db} in andon.yaml, or "
                               "{url_secret: NAME} naming an andon secret that holds it")
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,39}", schema):
            raise InvalidInput(f"engine_options.schema {schema!r} must be a lower-case "
                               "PostgreSQL name (letters, digits, _; at most 40)")
        self.url = url
        self.pg_schema = schema
        self._root = None if warehouse is None else Path(warehouse.root)
        self._local = threading.local()
        self._sessions: list[PgSession] = []
        self._lock = threading.Lock()
        self._loaded: dict[str, str] = {}
        self._ready = False

    # sessions -------------------------------------------------------------------------------

    def _connect(self) -> PgSession:
        try:
            conn = psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as e:
            raise ReadFailed(f"cannot connect to PostgreSQL: {str(e).strip()}") from e
        session = PgSession(self, conn)
        with self._lock:
            self._sessions.append(session)
        if not self._ready:
            session.raw(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                pgsql.Identifier(self.pg_schema)))
            self._ready = True
        return session

    def cursor(self) -> PgSession:
        session: PgSession | None = getattr(self._local, "session", None)
        if session is None:
            session = self._connect()
            self._local.session = session
        return session

    def session(self, tables: Mapping[str, Files] | None = None) -> PgSession:
        session = self._connect()
        for name, files in (tables or {}).items():
            session.view(name, files)
        return session

    def interrupt(self) -> None:
        with self._lock:
            sessions = list(self._sessions)
        for s in sessions:
            s.interrupt()

    def close(self) -> None:
        with self._lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()
            self._local = threading.local()

    # artifacts as tables --------------------------------------------------------------------

    def render(self, sql: str | exp.Expr) -> str:
        """Any SQL andon hands the engine, with artifact files as their tables."""
        tree = _parse(sql) if isinstance(sql, str) else sql
        files = [f for call in _parquet_calls(tree) for f in _call_files(call)]
        return to_postgres(tree, {f: self.table_of(f) for f in files})

    def table_of(self, file: str | Path) -> str:
        """The qualified table an artifact file stands for: a pointer's table, or a Parquet
        file's rows loaded into ``p_<hash>`` on first use."""
        path = Path(file)
        if not path.is_absolute() and self._root is not None:  # a manifest's file
            path = self._root / path
        try:
            with path.open("rb") as f:
                head = f.read(4)
        except OSError as e:
            raise ReadFailed(f"cannot read artifact file {path}: {e.strerror}") from None
        if head != _PARQUET_MAGIC:
            try:
                return f"{self.pg_schema}.{json.loads(path.read_text())['table']}"
            except (ValueError, KeyError, TypeError):
                raise ReadFailed(f"{path} is neither Parquet nor a {FORMAT} pointer") from None
        key = self._key(path)
        with self._lock:
            known = self._loaded.get(key)
        if known:
            return known
        name = f"p_{key}"
        cur = self.cursor()
        exists = cur.raw("SELECT to_regclass(%s)", [f'"{self.pg_schema}"."{name}"']).fetchone()
        if not exists or exists[0] is None:
            self._create(pq.read_table(path), name, exist_ok=True)
        with self._lock:
            self._loaded[key] = f"{self.pg_schema}.{name}"
        return f"{self.pg_schema}.{name}"

    def _key(self, path: Path) -> str:
        where = path.resolve()
        if self._root is not None and where.is_relative_to(self._root.resolve()):
            text = where.relative_to(self._root.resolve()).as_posix()
        else:
            text = where.as_posix()
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _create(self, table: pa.Table, name: str, *, exist_ok: bool = False) -> int:
        """A table of the schema holding an Arrow table's rows (COPY of its CSV)."""
        cols = pgsql.SQL(", ").join(
            pgsql.SQL("{} {}").format(pgsql.Identifier(f.name), pgsql.SQL(_pg_type(f.type)))
            for f in table.schema)
        target = pgsql.Identifier(self.pg_schema, name)
        with self._connect().conn as conn:  # one transaction, its own connection
            try:
                with conn.transaction():
                    conn.execute(pgsql.SQL("CREATE TABLE {} ({})").format(target, cols))
                    if table.num_rows:
                        _copy_in(conn, target, table)
            except pgerrors.DuplicateTable:
                if not exist_ok:
                    raise
            except psycopg.Error as e:
                raise translate(e) from e
        return int(table.num_rows)

    def scan(self, files: Files) -> exp.Expression:
        return _scan_of([self.table_of(f) for f in files])

    def scan_rows(self, files: Files, ranges: Sequence[tuple[str, int, int]]
                  ) -> exp.Expression:
        """Rows by number per file (a table's physical order, as it was written): one
        scan of each table, whatever the number of ranges."""
        by_file: dict[str, list[exp.Expression]] = {}
        for f, first, last in ranges:
            by_file.setdefault(str(f), []).append(
                exp.column("_andon_row").between(first + 1, last + 1))
        parts: list[exp.Query] = []
        for f, wanted in by_file.items():
            numbered = exp.select("*", exp.alias_(exp.Window(this=exp.RowNumber()),
                                                  "_andon_row")).from_(
                _qualified(self.table_of(f)))
            parts.append(exp.select("*").from_(numbered.subquery("_n")).where(
                exp.or_(*wanted)))
        if not parts:
            return exp.select("*").from_(self.scan(files)).where(exp.false()).subquery(
                "_andon_none")
        union = parts[0]
        for p in parts[1:]:
            union = exp.union(union, p, distinct=False)
        return union.subquery("_andon_rows")

    def materialize(self, query: str | exp.Expr, out: Path, *,
                    compression: str | None = None) -> int:
        """Run a query into a new table of the schema; ``out`` becomes its pointer."""
        name = "stg_" + uuid.uuid4().hex
        cur = self.cursor()
        res = cur.raw(pgsql.SQL("CREATE TABLE {} AS {}").format(
            pgsql.Identifier(self.pg_schema, name), pgsql.SQL(self.render(query))))
        rows = res._cur.rowcount
        _write_pointer(out, name)
        return max(int(rows), 0)

    def write_arrow(self, table: pa.Table, out: Path) -> int:
        name = "stg_" + uuid.uuid4().hex
        rows = self._create(table, name)
        _write_pointer(out, name)
        return rows

    def finish(self, staging: Path, step: str, fingerprint: str) -> None:
        """Name the staged tables by the artifact's fingerprint (before sealing hashes their
        pointers): ``a_<fingerprint>_<file>``; a name already taken (the same fingerprint
        sealed by another run) is kept and the staged table dropped."""
        for pointer in sorted(staging.glob("*" + SUFFIX)):
            staged = json.loads(pointer.read_text())["table"]
            final = f"a_{fingerprint}_{re.sub(r'[^a-z0-9]', '_', pointer.stem.lower())}"[:63]
            with self._connect().conn as conn, conn.transaction():
                taken = conn.execute("SELECT to_regclass(%s)",
                                     [f'"{self.pg_schema}"."{final}"']).fetchone()
                if taken and taken[0] is not None:
                    conn.execute(pgsql.SQL("DROP TABLE {}").format(
                        pgsql.Identifier(self.pg_schema, staged)))
                else:
                    conn.execute(pgsql.SQL("ALTER TABLE {} RENAME TO {}").format(
                        pgsql.Identifier(self.pg_schema, staged), pgsql.Identifier(final)))
            _write_pointer(pointer, final)

    def schema_of_table(self, qualified: str) -> Schema:
        rows = self.cursor().raw(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum", ['"' + qualified.replace(".", '"."', 1) + '"']).fetchall()
        return tuple((str(n), duckdb_type(str(t))) for n, t in rows)

    def schema(self, files: Files) -> Schema:
        return self.schema_of_table(self.table_of(files[0]))

    def describe(self, query: exp.Expr) -> Schema:
        name = "_andon_describe_" + uuid.uuid4().hex[:8]
        cur = self.cursor()
        cur.raw(pgsql.SQL("CREATE TEMP VIEW {} AS {}").format(
            pgsql.Identifier(name), pgsql.SQL(self.render(query))))
        try:
            ns = cur.raw("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()"
                         ).fetchone()
            return self.schema_of_table(f"{ns[0] if ns else 'pg_temp'}.{name}")
        finally:
            cur.raw(pgsql.SQL("DROP VIEW IF EXISTS {}").format(pgsql.Identifier(name)))

    def max_value(self, files: Files, column: str) -> Any:
        row = self.cursor().execute(exp.select(exp.Max(this=exp.column(column, quoted=True)))
                                    .from_(self.scan(files))).fetchone()
        return row[0] if row else None

    def read_arrow(self, files: Files) -> pa.Table:
        return self.cursor().execute(exp.select("*").from_(self.scan(files))).arrow()

    # landing: DuckDB reads the files senders deliver ------------------------------------------

    def reader(self, allowed: Sequence[Path]) -> Any:
        """The engine that ingests landed files: DuckDB, writing Parquet parts this engine
        loads into tables when a step reads them."""
        from andon.engines.duckdb import DuckDBEngine

        return DuckDBEngine(allowed=allowed)

    def _landing_only(self, what: str) -> InvalidInput:
        return InvalidInput(f"{what} is done by the landing reader (DuckDB), not in "
                            "PostgreSQL; ingest through engine.reader()")

    def read_csv(self, file: str | Path, columns: Sequence[tuple[str, str]],
                 options: CsvOptions) -> exp.Expression:
        raise self._landing_only("reading CSV files")

    def read_lines(self, file: str | Path) -> exp.Expression:
        raise self._landing_only("reading text files")

    def scan_numbered(self, file: str | Path, column: str) -> exp.Expression:
        numbered = exp.select(exp.alias_(exp.Window(this=exp.RowNumber()), column,
                                         quoted=True), "*")
        return numbered.from_(_qualified(self.table_of(file))).subquery("_andon_numbered")

    @staticmethod
    def json_object(text: exp.Expression) -> exp.Expression:
        doc = exp.cast(text.copy(), "JSONB")
        is_object = exp.EQ(this=exp.Anonymous(this="jsonb_typeof", expressions=[doc]),
                           expression=exp.Literal.string("object"))
        return exp.Case().when(is_object, text.copy())

    @staticmethod
    def json_field(document: exp.Expression, key: str) -> exp.Expression:
        return exp.JSONExtractScalar(this=exp.cast(document.copy(), "JSONB"),
                                     expression=exp.Literal.string(key))

    # environments and gc --------------------------------------------------------------------

    def env_schema(self, environment: str) -> str:
        return f"{self.pg_schema}_{re.sub(r'[^a-z0-9_]', '_', environment.lower())}"[:63]

    def publish(self, environment: str, tables: Mapping[str, Location]) -> None:
        """Make ``<schema>_<environment>`` hold exactly one view per table, over its
        artifact's tables, in one transaction (readers see the old set or the new); an
        environment without tables (deleted, or created empty) has no schema."""
        target = self.env_schema(environment)
        scans = {t: self.scan(loc.files).sql(dialect=DIALECT) for t, loc in tables.items()}
        with self._connect().conn as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [target])
            if not scans:
                conn.execute(pgsql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    pgsql.Identifier(target)))
                return
            conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                pgsql.Identifier(target)))
            have = [r[0] for r in conn.execute(
                "SELECT viewname FROM pg_views WHERE schemaname = %s", [target])]
            for name in have:
                conn.execute(pgsql.SQL("DROP VIEW {} CASCADE").format(
                    pgsql.Identifier(target, name)))
            for name, scan in sorted(scans.items()):
                conn.execute(pgsql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(
                    pgsql.Identifier(target, name), pgsql.SQL(scan)))

    def collect(self, live: Iterable[Location], *, dry_run: bool = False) -> list[str]:
        """Drop the artifact tables of the schema no live artifact points at; returns them."""
        keep: set[str] = set()
        for loc in live:
            for f in loc.files:
                path = Path(f) if self._root is None else self._root / f
                if path.exists():
                    keep.add(self.table_of(f).split(".", 1)[1])
        rows = self.cursor().raw(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND "
            "(tablename LIKE 'a\\_%%' OR tablename LIKE 'p\\_%%' OR tablename LIKE 'stg\\_%%')",
            [self.pg_schema]).fetchall()
        doomed = sorted(str(r[0]) for r in rows if r[0] not in keep)
        if not dry_run:
            for name in doomed:
                self.cursor().raw(pgsql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(
                    pgsql.Identifier(self.pg_schema, name)))
            with self._lock:
                self._loaded.clear()
        return doomed


def _write_pointer(out: Path, table: str) -> None:
    out.write_text(json.dumps({"format": FORMAT, "table": table}, sort_keys=True) + "\n")


def _copy_in(conn: psycopg.Connection[Any], target: pgsql.Composable, table: pa.Table) -> None:
    """Rows of an Arrow table into a table: its CSV through COPY (NULL unquoted, "" quoted)."""
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False,
                                                   quoting_style="all_valid"))
    with conn.cursor().copy(pgsql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(target)) as cp:
        view = buf.getbuffer()
        for i in range(0, len(view), 1 << 20):
            cp.write(view[i:i + (1 << 20)])


def pointer_schema(path: Path) -> Schema | None:
    """A pointer holds no schema: the engine reads it from the table."""
    return None


def pointer_scan(files: Sequence[str | Path]) -> str:
    """The tables a pointer names, as PostgreSQL reads them."""
    names = [json.loads(Path(f).read_text())["table"] for f in files]
    return " UNION ALL ".join(f'SELECT * FROM "{n}"' for n in names)


def write_pointerless(table: pa.Table, out: Path) -> int:
    raise InvalidInput(f"a {FORMAT} artifact is written by the PostgreSQL engine "
                       "(engine.write_arrow), not from a file")
