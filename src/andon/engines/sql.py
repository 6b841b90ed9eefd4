"""Building andon's SQL as sqlglot expressions, rendered in an engine's dialect.

Names and values never reach SQL text by string pasting: ``ident`` and ``literal`` make
expressions and ``render`` writes them in the dialect, quoting as that engine quotes.
``ident_sql``/``literal_sql`` are the same, already rendered, for the SQL fragments (a
check's condition) that are still composed as text around those pieces.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Iterable
from typing import Any
from typing import cast as cast_type

from sqlglot import exp
from sqlglot.errors import ParseError

DEFAULT_DIALECT = "duckdb"


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def column(name: str, table: str | None = None) -> exp.Column:
    return exp.column(ident(name), table=ident(table) if table else None)


def table(name: str, alias: str | None = None) -> exp.Table:
    t = exp.Table(this=ident(name))
    if alias:
        t.set("alias", exp.TableAlias(this=ident(alias)))
    return t


def literal(value: Any) -> exp.Expression:
    """A constant: NULL, a boolean, a number, text, or a date/time as a typed literal."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float | decimal.Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            return exp.cast(exp.Literal.string(str(value)), "DOUBLE")  # 'nan', 'inf'
        if value < 0:
            return exp.Neg(this=exp.Literal.number(-value))
        return exp.Literal.number(value)
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), kind)
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    return exp.Literal.string(str(value))


def cast(value: exp.Expression | Any, to: str, *, safe: bool = False,
         dialect: str = DEFAULT_DIALECT) -> exp.Expression:
    """``CAST`` (or ``TRY_CAST`` with ``safe``) of an expression or a constant to an engine
    type named in the dialect (``DECIMAL(10,2)``, ``TIMESTAMP WITH TIME ZONE`` ...)."""
    this = value if isinstance(value, exp.Expression) else literal(value)
    try:
        to_type = exp.DataType.build(to, dialect=dialect)
    except ParseError:  # a type of the engine sqlglot does not know (TIMESTAMP_NS): verbatim
        to_type = exp.DataType.build(to, dialect=dialect, udt=True)
    return exp.TryCast(this=this, to=to_type) if safe else exp.Cast(this=this, to=to_type)


def render(e: exp.Expression, dialect: str = DEFAULT_DIALECT) -> str:
    return e.sql(dialect=dialect)


def ident_sql(name: str, dialect: str = DEFAULT_DIALECT) -> str:
    """A quoted identifier as the dialect writes it."""
    return ident(name).sql(dialect=dialect)


def literal_sql(value: Any, dialect: str = DEFAULT_DIALECT) -> str:
    """A constant as the dialect writes it."""
    return literal(value).sql(dialect=dialect)


def list_sql(values: Iterable[Any], dialect: str = DEFAULT_DIALECT) -> str:
    """``(v1, v2, ...)`` of constants, for ``IN``."""
    return "(" + ", ".join(literal_sql(v, dialect) for v in values) + ")"


def parse(sql: str, dialect: str = DEFAULT_DIALECT) -> exp.Expression:
    """One statement of SQL text as an expression (``sqlglot.errors.ParseError`` when it
    does not parse)."""
    import sqlglot

    return cast_type(exp.Expression, sqlglot.parse_one(sql, read=dialect))


def full_match(node: exp.Expr) -> tuple[exp.Expr, exp.Expr] | None:
    """(text, pattern) of DuckDB's ``regexp_full_match`` call, else None: an expression of its
    own in newer sqlglot, an anonymous function in older ones (27)."""
    known = getattr(exp, "RegexpFullMatch", None)
    if known is not None and isinstance(node, known):
        return node.this, node.expression
    if isinstance(node, exp.Anonymous) and node.name.lower() == "regexp_full_match" \
            and len(node.expressions) == 2:
        return node.expressions[0], node.expressions[1]
    return None

