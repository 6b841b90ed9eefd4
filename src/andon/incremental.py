"""Incremental steps by time range: which output intervals new input rows touch.

An incremental step declares a ``time_column`` of its output, optionally a ``grain`` (the
intervals it is computed in: ``day``, ``month``, ``15 minutes``, ...) and a ``lookback`` (how
many intervals after a touched one depend on it too: rolling windows, lags). A build finds the
input rows added or removed since the previous artifact, runs the step's query over them to
learn which output intervals they touch, recomputes exactly those intervals over the full
inputs and keeps every other interval of the previous artifact: the result equals a full
rebuild whenever an interval's rows come only from input rows that produce rows in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from andon.engines.sql import DEFAULT_DIALECT, cast, column, ident, literal, parse
from andon.errors import ConfigError, did_you_mean
from andon.grain import parse_grain
from andon.kinds import step_kind
from andon.project import Project
from andon.store import Row
from andon.warehouse import Manifest, Warehouse

if TYPE_CHECKING:
    from andon.engines.base import Engine

TEMPORAL = ("DATE", "TIMESTAMP")  # type names a grain applies to (prefixes)


def bucket(name: str, grain: str | None) -> exp.Expression:
    """The interval a value of the time column falls in (its start); the value itself when
    the step has no grain."""
    col = column(name)
    if grain is None:
        return col
    count, unit = parse_grain(grain)
    if count == 1:
        return exp.Anonymous(this="date_trunc", expressions=[literal(unit), col])
    return exp.Anonymous(this="time_bucket",
                         expressions=[exp.Interval(this=literal(f"{count} {unit}")), col])


def grain_interval(grain: str) -> exp.Expression:
    count, unit = parse_grain(grain)
    if unit == "quarter":
        count, unit = count * 3, "month"
    return exp.Interval(this=literal(f"{count} {unit}"))


def type_problem(sql_type: str, grain: str | None) -> str | None:
    """Why a time column of this type cannot take the grain, or None."""
    if grain is not None and not sql_type.upper().startswith(TEMPORAL):
        return f"is {sql_type}, and a grain needs a DATE or TIMESTAMP column"
    return None


def input_deltas(engine: Engine, warehouse: Warehouse,
                 old: Mapping[str, Manifest | None], new: Mapping[str, Manifest],
                 folder: Path) -> dict[str, Path] | None:
    """Per input that changed, a Parquet file of its rows added or removed since ``old``
    (files both versions share are unchanged rows); None when a change cannot be diffed row
    by row (the older version is gone, or its columns differ)."""
    out: dict[str, Path] = {}
    for name, m in new.items():
        o = old.get(name)
        if o is None:
            return None
        if o.fingerprint == m.fingerprint or set(o.files) == set(m.files):
            continue
        if [tuple(c) for c in o.schema] != [tuple(c) for c in m.schema]:
            return None
        cols = [column(str(c[0])) for c in m.schema]
        shared = set(o.files) & set(m.files)
        added = [warehouse.path(f) for f in m.files if f not in shared]
        removed = [warehouse.path(f) for f in o.files if f not in shared]
        sides = [exp.select(*(c.copy() for c in cols)).from_(engine.scan(files))
                 for files in (added, removed) if files]
        query: exp.Expression = sides[0]
        if len(sides) == 2:
            a, r = sides
            query = exp.union(exp.paren(exp.except_(a, r, distinct=False)),
                              exp.paren(exp.except_(r.copy(), a.copy(), distinct=False)),
                              distinct=False)
        path = folder / f"{len(out)}.parquet"
        if engine.materialize(query, path):
            out[name] = path
    return out


def widen(template: str) -> str:
    """The query without HAVING, QUALIFY and LIMIT: over changed rows only, those could hide
    an interval the changed rows touch."""
    try:
        tree = sqlglot.parse_one(template, dialect="duckdb")
    except sqlglot.errors.ParseError:
        return template
    for select in tree.find_all(exp.Select):
        for key in ("having", "qualify", "limit", "offset"):
            select.set(key, None)
    return tree.sql(dialect="duckdb")


def touched(engine: Engine, queries: list[str], name: str, grain: str | None,
            lookback: int) -> list[tuple[str | None, str]]:
    """The output intervals the queries (the step over changed rows) produce rows in, plus
    ``lookback`` intervals after each, as (value as text, type)."""
    if not queries:
        return []
    parts: list[exp.Query] = [
        exp.select(exp.alias_(bucket(name, grain), "b")).from_(
            exp.Subquery(this=parse(q), alias=exp.TableAlias(  # the step's (DuckDB's) SQL
                this=ident("_andon_delta")))) for q in queries]
    union = reduce(lambda a, b: exp.union(a, b, distinct=False), parts)
    if lookback and grain is not None:
        shifted = exp.Add(this=column("b"), expression=exp.Mul(
            this=column("k", "_k"), expression=grain_interval(grain)))
        steps = exp.Table(this=exp.Anonymous(this="range", expressions=[literal(lookback + 1)]),
                          alias=exp.TableAlias(this=ident("_k"), columns=[ident("k")]))
        union = exp.select(exp.alias_(shifted, "b")).from_(union.subquery("_u")).join(
            steps, join_type="cross")
    found = exp.select(cast(column("b"), "VARCHAR"),
                       exp.Anonymous(this="typeof", expressions=[column("b")])
                       ).distinct().from_(union.subquery("_t"))
    rows = engine.cursor().execute(found).fetchall()
    return [(None if v is None else str(v), str(t)) for v, t in rows]


def inside_sql(name: str, grain: str | None, values: list[tuple[str | None, str]],
               dialect: str = DEFAULT_DIALECT) -> exp.Expression:
    """A predicate over the output, true for rows in the given intervals (never NULL)."""
    literals = [cast(v, t, dialect=dialect) for v, t in values if v is not None]
    parts: list[exp.Expression] = []
    if literals:
        parts.append(bucket(name, grain).isin(*literals))
    if any(v is None for v, _ in values):
        parts.append(column(name).is_(exp.null()))
    return _never_null(exp.or_(*parts)) if parts else exp.false()


def window_sql(name: str, sql_type: str, interval: tuple[str, str],
               dialect: str = DEFAULT_DIALECT) -> exp.Expression:
    """A backfill's [start, end) over the time column (never NULL)."""
    start, end = (cast(v, sql_type, dialect=dialect) for v in interval)
    return _never_null(exp.and_(exp.GTE(this=column(name), expression=start),
                                exp.LT(this=column(name), expression=end)))


def _never_null(condition: exp.Expr) -> exp.Expression:
    return exp.Coalesce(this=condition, expressions=[exp.false()])


def validate(project: Project, names: Iterable[str], known: Mapping[str, Row],
             fps: Mapping[str, str]) -> None:
    """An incremental step whose time_column is not in its output, or whose grain does not fit
    the column's type, fails here, before anything is built."""
    steps = [project.dag.steps[n] for n in names]
    steps = [s for s in steps
             if step_kind(s.kind).incremental and s.config.materialized == "incremental"]
    if not steps:
        return
    from andon.schemas import infer

    sealed = {name: {str(a): str(b) for a, b in known[fp]["schema"]}
              for name, fp in fps.items() if fp in known}
    schemas = infer(project, {s.name for s in steps}, sealed)
    for s in steps:
        schema, tc = schemas.get(s.name), s.config.time_column
        if schema is None or tc is None:
            continue
        line = _header_line(s.file, "time_column")
        if tc not in schema:
            hint = did_you_mean(tc, schema)
            raise ConfigError(
                f"time_column {tc!r} is not a column of the step's result",
                file=s.file, line=line, step=s.name,
                hint=(hint + " " if hint else "") + f"columns: {', '.join(schema)}")
        problem = type_problem(schema[tc], s.config.grain)
        if problem:
            raise ConfigError(
                f"time_column {tc!r} {problem}", file=s.file,
                line=_header_line(s.file, "grain") or line, step=s.name,
                hint="cast it in the query (e.g. CAST(... AS DATE)), or drop the grain: "
                     "then each value of the column is its own interval")


def _header_line(file: Path, key: str) -> int | None:
    for candidate in (file.with_suffix(".yaml"), file):
        try:
            lines = candidate.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for i, text in enumerate(lines, 1):
            if text.lstrip().startswith(f"{key}:"):
                return i
    return None
