"""A check's constants and SQL, tried by the engine before any work: values and bounds cast
to their column's type, regexes compiled by RE2, ``expr`` and custom SQL bound over an empty
table shaped like the checked one (unknown columns and wrong types fail at plan time).

They run in the default engine's scratch session (``andon.engines.scratch``): an empty
database that reads no file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.engines.base import EngineError
from andon.errors import ConfigError
from andon.parsecache import known_valid, remember_valid

if TYPE_CHECKING:  # sqlglot and the engine are imported when a check is first tried
    from sqlglot import exp

CHECKED = "__andon_checked"  # the empty table shaped like the checked one
_TABLE_RE = re.compile(r"\{\{\s*table\s*\}\}")
_REF_RE = re.compile(r"\{\{\s*ref\(")


def _try(*queries: exp.Expression | str) -> str | None:
    """Run queries in a new scratch session; why the engine refused one, or None."""
    from andon.engines import scratch

    session = scratch()
    try:
        for query in queries:
            session.execute(query)
    except EngineError as e:
        return e.first_line
    finally:
        session.close()
    return None


def _type(sql_type: str) -> exp.DataType:
    """A column type as the engine named it (a nested or user type is kept as written)."""
    from sqlglot import exp

    from andon.engines.sql import DEFAULT_DIALECT

    return exp.DataType.build(sql_type, dialect=DEFAULT_DIALECT, udt=True)


def regex_error(pattern: str) -> str | None:
    """Why RE2 (the engine's regex library) refuses a pattern, or None."""
    if known_valid("regex", pattern):  # tried by an earlier load: the engine is not needed
        return None
    from sqlglot import exp

    from andon.engines.sql import literal

    why = _try(exp.select(exp.func("regexp_full_match", literal(""), literal(pattern))))
    if why is None:
        remember_valid("regex", pattern)
    return why


def cast_error(value: Any, sql_type: str) -> str | None:
    """Why a constant of a check does not fit a column of ``sql_type``, or None."""
    if sql_type.upper() == "VARCHAR" and not isinstance(value, str):
        return f"{value!r} is not text: quote it"
    if isinstance(value, str) and is_number_type(sql_type):
        return f"{value!r} is not a number"
    from sqlglot import exp

    from andon.engines.sql import literal

    text = value if isinstance(value, str) else str(value)
    return _try(exp.select(exp.Cast(this=literal(text), to=_type(sql_type))))


def is_number_type(sql_type: str) -> bool:
    from andon.checks.types import is_numeric

    return is_numeric(sql_type)


def bind_error(sql: str | exp.Expression, schema: Mapping[str, str]) -> str | None:
    """Why the engine cannot bind a check's SQL over an empty table with ``schema``, or None.

    ``sql`` is a user's query text, where ``{{ table }}`` names the checked table (SQL
    reading other tables is bound when the run reads them), or an expression over the
    checked table's columns (a row condition)."""
    if isinstance(sql, str) and _REF_RE.search(sql):
        return None
    from sqlglot import exp

    from andon.engines.sql import ident, table

    empty = exp.select(*(exp.alias_(exp.Cast(this=exp.null(), to=_type(t)), ident(c))
                         for c, t in schema.items())).where(exp.false())
    shaped = exp.Create(this=table(CHECKED), kind="VIEW", expression=empty, replace=True,
                        properties=exp.Properties(expressions=[exp.TemporaryProperty()]))
    if isinstance(sql, str):
        from andon.engines.sql import ident_sql

        query: exp.Expression | str = "DESCRIBE " + _TABLE_RE.sub(ident_sql(CHECKED), sql)
    else:
        query = exp.Describe(this=exp.select(sql).from_(table(CHECKED)))
    return _try(shaped, query)


def parse_sql(sql: str, file: str | Path, line: int) -> None:
    """Refuse SQL that does not parse (DuckDB's dialect), naming its file and line."""
    if known_valid("check sql", sql):  # parsed by an earlier load: sqlglot is not needed
        return
    import sqlglot

    try:
        sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        err = e.errors[0] if e.errors else {}
        raise ConfigError(
            f"SQL syntax error in a check: {str(err.get('description', e)).split('. Line')[0]}",
            file=file, line=line + int(err.get("line", 1)) - 1, column=err.get("col"),
            hint="fix the SQL (dialect: DuckDB)",
        ) from None
    remember_valid("check sql", sql)
