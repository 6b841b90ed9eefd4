"""Copy a table or a query of a PostgreSQL, MySQL/MariaDB or SQLite database to a Parquet
file with DuckDB's scanner extensions (``postgres``, ``mysql``, ``sqlite``).

The extensions come from DuckDB's own install (``INSTALL postgres``), or from the PyPI
packages ``duckdb-extension-postgres`` etc. (``pip install 'andon[databases]'``), which are
built for one DuckDB version: they load only into that version."""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb

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


def _load(con: duckdb.DuckDBPyConnection, ext: str, file_name: str, source: str) -> None:
    """Load ``ext``: from its PyPI package, installed already, or downloaded by DuckDB."""
    version = duckdb.__version__
    tried = ""
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
            return
        built = ", ".join(f.parent.name for f in files) or "none"
        tried = (f"; the installed duckdb-extension-{ext} is built for DuckDB {built}, "
                 f"this is DuckDB {version}")
    try:  # installed in DuckDB's extension folder, or downloaded from DuckDB's repository
        con.execute(f"LOAD {ext}")
        return
    except duckdb.Error:
        pass
    try:
        con.execute(f"INSTALL {ext}")
        con.execute(f"LOAD {ext}")
    except duckdb.Error as e:
        raise SourceError(
            f"source {source!r}: DuckDB's {ext} extension is not available{tried} "
            f"({str(e).splitlines()[0]})", step=source,
            hint=f"{HINT}, matching DuckDB {version}; or let DuckDB download it "
                 f"(INSTALL {ext}) on a machine with network access") from e


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


def copy_to_parquet(url: str, out: Path, *, source: str, table: str | None = None,
                    query: str | None = None, cursor: str | None = None,
                    after: Any = None, password: str | None = None,
                    threads: int | None = None, base: Path = Path()) -> Copied:
    """Write the rows of ``table`` (or of ``query``, run in the source database) to ``out``;
    with ``cursor``, only rows whose cursor column is greater than ``after``, in cursor
    order. A relative SQLite path is relative to ``base``. Nothing is written when
    connecting fails."""
    scheme = urlsplit(url).scheme.split("+")[0].lower()
    if scheme not in _SCHEMES:
        raise SourceError(f"source {source!r}: unknown database URL scheme {scheme!r}",
                          step=source, hint="use postgresql://, mysql:// or sqlite:///path")
    ext, file_name, kind = _SCHEMES[scheme]
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        _load(con, ext, file_name, source)
        target = _attach_target(url, kind, password, base)
        if kind == "sqlite" and not Path(target).is_file():
            raise SourceError(f"source {source!r}: SQLite database {target!r} does not exist",
                              step=source, hint="fix 'url:' of the source in andon.yaml")
        try:
            con.execute(f"ATTACH {_lit(target)} AS src (TYPE {kind}, READ_ONLY)")
        except duckdb.Error as e:
            msg = str(e).splitlines()[0]
            if password:
                msg = msg.replace(password, "***")
            raise SourceError(f"source {source!r}: cannot connect to the database: {msg}",
                              step=source, hint="is it up? check url: and the password "
                              "secret (andon secrets set NAME); nothing was pulled") from e
        quote = "`" if kind == "mysql" else '"'  # of the source database's own SQL
        where = ""
        order = ""
        if cursor is not None:
            col = _qi(cursor, quote)
            where = f" WHERE {col} > {_lit(after)}" if after is not None else ""
            order = f" ORDER BY {col}"
        if query is not None:
            inner = f"SELECT * FROM ({query.strip().rstrip(';')}) AS andon_q{where}{order}"
            if kind == "sqlite":
                con.execute("USE src")
                select = inner
            else:
                select = f"SELECT * FROM {kind}_query('src', {_lit(inner)})"
        else:
            assert table is not None
            col = _qi(cursor) if cursor is not None else ""
            filt = f" WHERE {col} > {_lit(after)}" if cursor and after is not None else ""
            select = f"SELECT * FROM src.{_qi(table)}{filt}" + \
                (f" ORDER BY {col}" if cursor else "")
        try:
            con.execute(f"COPY ({select}) TO {_lit(str(out))} "
                        "(FORMAT parquet, COMPRESSION zstd)")
            row = con.execute(
                "SELECT count(*)" + (f", max({_qi(cursor)})" if cursor else "")
                + f" FROM read_parquet({_lit(str(out))})").fetchone()
        except duckdb.Error as e:
            out.unlink(missing_ok=True)
            what = f"table {table!r}" if table else "the query"
            raise SourceError(f"source {source!r}: cannot read {what}: "
                              f"{str(e).splitlines()[0]}", step=source,
                              hint="fix table:/query:/cursor: of the source in andon.yaml") \
                from e
    finally:
        con.close()
    assert row is not None
    last = row[1] if cursor and len(row) > 1 else None
    return Copied(rows=int(row[0]), cursor=_plain(last))


def _plain(value: Any) -> Any:
    """A cursor value as JSON keeps it (numbers stay numbers, the rest text)."""
    if value is None or isinstance(value, (int, float, str)):
        return value
    return json.loads(json.dumps(value, default=str))
