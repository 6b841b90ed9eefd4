"""A check's constants and SQL, tried by the engine before any work: values and bounds cast
to their column's type, regexes compiled by RE2, ``expr`` and custom SQL bound over an empty
table shaped like the checked one (unknown columns and wrong types fail at plan time)."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from andon.parsecache import known_valid, remember_valid

if TYPE_CHECKING:  # DuckDB is imported when a check is first tried, not when this loads
    import duckdb

_LOCK = threading.Lock()
_CON: list[duckdb.DuckDBPyConnection] = []
_TABLE_RE = re.compile(r"\{\{\s*table\s*\}\}")
_REF_RE = re.compile(r"\{\{\s*ref\(")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _run(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    import duckdb

    with _LOCK:
        if not _CON:
            _CON.append(duckdb.connect(":memory:"))
        return _CON[0].execute(sql, params or []).fetchall()


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0]


def regex_error(pattern: str) -> str | None:
    """Why RE2 (the engine's regex library) refuses a pattern, or None."""
    if known_valid("regex", pattern):  # tried by an earlier load: DuckDB is not needed
        return None
    import duckdb

    try:
        _run("SELECT regexp_full_match('', ?)", [pattern])
    except duckdb.Error as e:
        return _first_line(e)
    remember_valid("regex", pattern)
    return None


def cast_error(value: Any, sql_type: str) -> str | None:
    """Why a constant of a check does not fit a column of ``sql_type``, or None."""
    if sql_type.upper() == "VARCHAR" and not isinstance(value, str):
        return f"{value!r} is not text: quote it"
    if isinstance(value, str) and is_number_type(sql_type):
        return f"{value!r} is not a number"
    import duckdb

    try:
        _run(f"SELECT CAST(? AS {sql_type})", [value if isinstance(value, str) else str(value)])
    except duckdb.Error as e:
        return _first_line(e)
    return None


def is_number_type(sql_type: str) -> bool:
    from andon.checks.types import is_numeric

    return is_numeric(sql_type)


def bind_error(sql: str, schema: Mapping[str, str]) -> str | None:
    """Why the engine cannot bind a check's SQL over an empty table with ``schema`` (the
    checked table is named by ``{{ table }}``), or None. SQL reading other tables is
    bound when the run reads them."""
    if _REF_RE.search(sql):
        return None
    import duckdb

    cols = ", ".join(f"{_q(c)} {t}" for c, t in schema.items())
    with _LOCK:
        if not _CON:
            _CON.append(duckdb.connect(":memory:"))
        cur = _CON[0].cursor()
    try:
        cur.execute(f"CREATE TEMP TABLE __andon_checked ({cols})")
        cur.execute("DESCRIBE " + _TABLE_RE.sub("__andon_checked", sql))
    except duckdb.Error as e:
        return _first_line(e)
    finally:
        cur.close()
    return None
