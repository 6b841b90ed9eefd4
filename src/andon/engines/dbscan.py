"""Copy a table or a query of a PostgreSQL, MySQL/MariaDB or SQLite database to a Parquet
file with DuckDB's scanner extensions (``postgres``, ``mysql``, ``sqlite``): the fast path;
when the extension cannot be loaded, with the database's Python driver
(``andon.engines.dbread``) streamed through DuckDB into the same Parquet snapshot.

The extensions come from DuckDB's own install (``INSTALL postgres``), or from the PyPI
packages ``duckdb-extension-postgres`` etc. (``pip install 'andon[databases]'``), which are
built for one DuckDB version: they load only into that version."""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb

from andon.engines import dbread
from andon.errors import SourceError

# scheme -> (extension, DuckDB's name of its file, the ATTACH type)
_SCHEMES = {
    "postgresql": ("postgres", "postgres_scanner", "postgres"),
    "postgres": ("postgres", "postgres_scanner", "postgres"),
    "mysql": ("mysql", "mysql_scanner", "mysql"),
    "mariadb": ("mysql", "mysql_scanner", "mysql"),
    "sqlite": ("sqlite", "sqlite_scanner", "sqlite"),
}
HINT = "pip install 'andon[databases]' (the DuckDB scanner extensions)"


@dataclass(frozen=True)
class Copied:
    rows: int
    cursor: Any  # the largest cursor value copied (None: no cursor, or no row)
    reader: str = ""  # what read it: DuckDB's scanner, or the driver's name


def _load_local(con: duckdb.DuckDBPyConnection, ext: str, file_name: str) -> str | None:
    """Load ``ext`` from its PyPI package or DuckDB's extension folder, downloading nothing:
    None when it loaded, otherwise why not."""
    version = duckdb.__version__
    tried = f"; duckdb-extension-{ext} is not installed"
    try:
        pkg = importlib.import_module(f"duckdb_extension_{ext}")
    except ImportError:
        pkg = None
    if pkg is not None and pkg.__file__ is not None:
        files = sorted(Path(pkg.__file__).parent.glob("extensions/*/*.duckdb_extension"))
        match = [f for f in files if f.parent.name == f"v{version}"]
        if match:
            # DuckDB finds the entry point by the file's name: link it under its own name
            folder = Path(tempfile.gettempdir()) / f"andon-duckdb-ext-{os.getuid()}" / version
            folder.mkdir(parents=True, exist_ok=True)
            link = folder / f"{file_name}.duckdb_extension"
            if not link.exists():
                tmp = folder / f".{file_name}.{os.getpid()}"
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(match[0])
                os.replace(tmp, link)
            con.execute(f"LOAD '{link}'")
            return None
        built = ", ".join(f.parent.name for f in files) or "none"
        tried = (f"; the installed duckdb-extension-{ext} is built for DuckDB {built}, "
                 f"this is DuckDB {version}")
    try:  # installed in DuckDB's extension folder before
        con.execute(f"LOAD {ext}")
        return None
    except duckdb.Error:
        return tried


def _load(con: duckdb.DuckDBPyConnection, ext: str, file_name: str, source: str,
          also: str = "") -> None:
    """Load ``ext``: from its PyPI package, installed already, or downloaded by DuckDB."""
    tried = _load_local(con, ext, file_name)
    if tried is None:
        return
    try:
        con.execute(f"INSTALL {ext}")
        con.execute(f"LOAD {ext}")
    except duckdb.Error as e:
        version = duckdb.__version__
        raise SourceError(
            f"source {source!r}: DuckDB's {ext} extension is not available{tried} "
            f"({str(e).splitlines()[0]})", step=source,
            hint=f"{HINT}, matching DuckDB {version}; or let DuckDB download it "
                 f"(INSTALL {ext}) on a machine with network access{also}") from e


def _attach_target(url: str, kind: str, password: str | None, base: Path) -> str:
    parts = urlsplit(url)
    if kind == "sqlite":  # sqlite:///relative.db (to the project), sqlite:////absolute.db
        return str(base / unquote(parts.netloc + parts.path[1:]))
    if kind == "mysql":
        fields = {"host": parts.hostname or "localhost", "port": parts.port or 3306,
                  "user": unquote(parts.username or ""), "password": password or "",
                  "database": parts.path.lstrip("/")}
        return " ".join(f"{k}={v}" for k, v in fields.items() if v != "")
    if password is None:
        return url
    user = unquote(parts.username or "")
    from urllib.parse import quote

    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}{port}"
    return parts._replace(netloc=netloc).geturl()


def _lit(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise SourceError(f"cursor value {value!r} cannot be compared")
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _qi(name: str, quote: str = '"') -> str:
    return ".".join(quote + p.replace(quote, quote * 2) + quote for p in name.split("."))


READERS = ("auto", "scanner", "driver")


def copy_to_parquet(url: str, out: Path, *, source: str, table: str | None = None,
                    query: str | None = None, cursor: str | None = None,
                    after: Any = None, password: str | None = None,
                    threads: int | None = None, base: Path = Path(),
                    reader: str | None = None) -> Copied:
    """Write the rows of ``table`` (or of ``query``, run in the source database) to ``out``;
    with ``cursor``, only rows whose cursor column is greater than ``after``, in cursor
    order. A relative SQLite path is relative to ``base``. Nothing is written when
    connecting fails.

    ``reader`` (default: the ANDON_DB_READER variable, else ``auto``): ``scanner`` reads
    with DuckDB's extension, ``driver`` with the database's Python driver
    (``andon.engines.dbread``), ``auto`` with the scanner when its extension loads without a
    download, else with the driver when it is installed, else the scanner downloaded."""
    scheme = urlsplit(url).scheme.split("+")[0].lower()
    if scheme not in _SCHEMES:
        raise SourceError(f"source {source!r}: unknown database URL scheme {scheme!r}",
                          step=source, hint="use postgresql://, mysql:// or sqlite:///path")
    mode = reader or os.environ.get("ANDON_DB_READER") or "auto"
    if mode not in READERS:
        raise SourceError(f"unknown database reader {mode!r} (ANDON_DB_READER)", step=source,
                          hint=f"one of {', '.join(READERS)}")
    ext, file_name, kind = _SCHEMES[scheme]
    target = _attach_target(url, kind, password, base)
    if kind == "sqlite" and not Path(target).is_file():
        raise SourceError(f"source {source!r}: SQLite database {target!r} does not exist",
                          step=source, hint="fix 'url:' of the source in andon.yaml")
    con = duckdb.connect()
    close_driver: Callable[[], None] | None = None
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        scanner = mode == "scanner"
        if mode == "scanner":
            _load(con, ext, file_name, source)
        elif mode == "auto" and _load_local(con, ext, file_name) is None:
            scanner = True
        elif not dbread.driver_available(kind):
            if mode == "driver":
                raise SourceError(f"source {source!r}: the {dbread.DRIVERS[kind][0]} driver "
                                  "is not installed", step=source,
                                  hint=dbread.driver_hint(kind))
            _load(con, ext, file_name, source, also=f"; or {dbread.driver_hint(kind)}")
            scanner = True
        quote = "`" if kind == "mysql" else '"'  # of the source database's own SQL
        inner = _source_sql(quote, table, query, cursor, after)
        what = f"table {table!r}" if table else "the query"
        if scanner:
            used = f"duckdb {ext} scanner"
            select = _attach(con, kind, target, source, password, inner, table, cursor,
                             after)
        else:
            used = dbread.DRIVERS[kind][0]
            select, close_driver = _register(con, kind, url, target, source, password,
                                             inner, what)
        try:
            con.execute(f"COPY ({select}) TO {_lit(str(out))} "
                        "(FORMAT parquet, COMPRESSION zstd)")
            row = con.execute(
                "SELECT count(*)" + (f", max({_qi(cursor)})" if cursor else "")
                + f" FROM read_parquet({_lit(str(out))})").fetchone()
        except (duckdb.Error, dbread.ReadError) as e:
            out.unlink(missing_ok=True)
            msg = str(e).splitlines()[0]
            raise SourceError(f"source {source!r}: cannot read {what}: {msg}", step=source,
                              hint="fix table:/query:/cursor: of the source in andon.yaml") \
                from e
    finally:
        con.close()
        if close_driver is not None:  # read to the end, or stopped by an error
            close_driver()
    assert row is not None
    last = row[1] if cursor and len(row) > 1 else None
    return Copied(rows=int(row[0]), cursor=_plain(last), reader=used)


def _source_sql(quote: str, table: str | None, query: str | None, cursor: str | None,
                after: Any) -> str:
    """The SELECT in the source database's own SQL: the query (or table), past ``after``."""
    where = order = ""
    if cursor is not None:
        col = _qi(cursor, quote)
        where = f" WHERE {col} > {_lit(after)}" if after is not None else ""
        order = f" ORDER BY {col}"
    if query is not None:
        return f"SELECT * FROM ({query.strip().rstrip(';')}) AS andon_q{where}{order}"
    assert table is not None
    return f"SELECT * FROM {_qi(table, quote)}{where}{order}"


def _connect_error(source: str, msg: str, password: str | None,
                   cause: Exception) -> SourceError:
    if password:
        msg = msg.replace(password, "***")
    err = SourceError(f"source {source!r}: cannot connect to the database: {msg}",
                      step=source, hint="is it up? check url: and the password "
                      "secret (andon secrets set NAME); nothing was pulled")
    err.__cause__ = cause
    return err


def _attach(con: duckdb.DuckDBPyConnection, kind: str, target: str, source: str,
            password: str | None, inner: str, table: str | None, cursor: str | None,
            after: Any) -> str:
    """Attach the database to DuckDB: the SELECT its scanner copies."""
    try:
        con.execute(f"ATTACH {_lit(target)} AS src (TYPE {kind}, READ_ONLY)")
    except duckdb.Error as e:
        raise _connect_error(source, str(e).splitlines()[0], password, e) from e
    if table is None:
        if kind == "sqlite":
            con.execute("USE src")
            return inner
        return f"SELECT * FROM {kind}_query('src', {_lit(inner)})"
    col = _qi(cursor) if cursor is not None else ""
    filt = f" WHERE {col} > {_lit(after)}" if cursor and after is not None else ""
    return f"SELECT * FROM src.{_qi(table)}{filt}" + (f" ORDER BY {col}" if cursor else "")


def _register(con: duckdb.DuckDBPyConnection, kind: str, url: str, target: str,
              source: str, password: str | None, inner: str, what: str
              ) -> tuple[str, Callable[[], None]]:
    """Stream the rows read by the database's driver into DuckDB: the SELECT (with the
    casts to the scanner's types) that copies them."""
    import pyarrow as pa

    try:
        rows = dbread.read(kind, url, target, inner, password)
    except dbread.ConnectError as e:
        raise _connect_error(source, str(e), password, e) from e
    except dbread.ReadError as e:
        raise SourceError(f"source {source!r}: cannot read {what}: {e}", step=source,
                          hint="fix table:/query:/cursor: of the source in andon.yaml") from e
    con.register("andon_rows", pa.RecordBatchReader.from_batches(rows.schema, rows.batches))
    cols = ", ".join(
        f"CAST({_qi(n)} AS {rows.casts[n]}) AS {_qi(n)}" if n in rows.casts else _qi(n)
        for n in rows.schema.names)
    return f"SELECT {cols} FROM andon_rows", rows.close


def _plain(value: Any) -> Any:
    """A cursor value as JSON keeps it (numbers stay numbers, the rest text)."""
    if value is None or isinstance(value, (int, float, str)):
        return value
    return json.loads(json.dumps(value, default=str))
