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
from pathlib import Path
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from andon.errors import ConfigError, did_you_mean
from andon.grain import parse_grain
from andon.kinds import step_kind
from andon.project import Project
from andon.store import Row
from andon.warehouse import Manifest, Warehouse

if TYPE_CHECKING:
    from andon.engines.duckdb import DuckDBEngine

TEMPORAL = ("DATE", "TIMESTAMP")  # type names a grain applies to (prefixes)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def bucket_sql(column: str, grain: str | None) -> str:
    """The interval a value of the time column falls in (its start); the value itself when
    the step has no grain."""
    col = quote(column)
    if grain is None:
        return col
    count, unit = parse_grain(grain)
    if count == 1:
        return f"date_trunc('{unit}', {col})"
    return f"time_bucket(INTERVAL '{count} {unit}', {col})"


def grain_interval(grain: str) -> str:
    count, unit = parse_grain(grain)
    if unit == "quarter":
        count, unit = count * 3, "month"
    return f"INTERVAL '{count} {unit}'"


def type_problem(sql_type: str, grain: str | None) -> str | None:
    """Why a time column of this type cannot take the grain, or None."""
    if grain is not None and not sql_type.upper().startswith(TEMPORAL):
        return f"is {sql_type}, and a grain needs a DATE or TIMESTAMP column"
    return None


def input_deltas(engine: DuckDBEngine, warehouse: Warehouse,
                 old: Mapping[str, Manifest | None], new: Mapping[str, Manifest],
                 folder: Path) -> dict[str, Path] | None:
    """Per input that changed, a Parquet file of its rows added or removed since ``old``
    (files both versions share are unchanged rows); None when a change cannot be diffed row
    by row (the older version is gone, or its columns differ)."""
    from andon.engines.duckdb import scan_sql

    out: dict[str, Path] = {}
    for name, m in new.items():
        o = old.get(name)
        if o is None:
            return None
        if o.fingerprint == m.fingerprint or set(o.files) == set(m.files):
            continue
        if [tuple(c) for c in o.schema] != [tuple(c) for c in m.schema]:
            return None
        cols = ", ".join(quote(str(c[0])) for c in m.schema)
        shared = set(o.files) & set(m.files)
        added = [warehouse.path(f) for f in m.files if f not in shared]
        removed = [warehouse.path(f) for f in o.files if f not in shared]
        sides = [f"SELECT {cols} FROM {scan_sql(files)}" for files in (added, removed) if files]
        if len(sides) == 2:
            a, r = sides
            sql = f"({a} EXCEPT ALL {r}) UNION ALL ({r} EXCEPT ALL {a})"
        else:
            sql = sides[0]
        path = folder / f"{len(out)}.parquet"
        if engine.copy_to_parquet(sql, path):
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


def touched(engine: DuckDBEngine, queries: list[str], column: str, grain: str | None,
            lookback: int) -> list[tuple[str | None, str]]:
    """The output intervals the queries (the step over changed rows) produce rows in, plus
    ``lookback`` intervals after each, as (value as text, type)."""
    if not queries:
        return []
    bucket = bucket_sql(column, grain)
    union = " UNION ALL ".join(f"SELECT {bucket} AS b FROM ({q}) AS _andon_delta"
                               for q in queries)
    if lookback and grain is not None:
        union = (f"SELECT b + _k.k * {grain_interval(grain)} AS b FROM ({union}) AS _u "
                 f"CROSS JOIN range({lookback + 1}) AS _k(k)")
    rows = engine.cursor().execute(
        f"SELECT DISTINCT CAST(b AS VARCHAR), typeof(b) FROM ({union}) AS _t").fetchall()
    return [(None if v is None else str(v), str(t)) for v, t in rows]


def inside_sql(column: str, grain: str | None, values: list[tuple[str | None, str]]) -> str:
    """A predicate over the output, true for rows in the given intervals (never NULL)."""
    bucket = bucket_sql(column, grain)
    literals = [f"CAST('{v.replace(chr(39), chr(39) * 2)}' AS {t})" for v, t in values
                if v is not None]
    parts = []
    if literals:
        parts.append(f"{bucket} IN ({', '.join(literals)})")
    if any(v is None for v, _ in values):
        parts.append(f"{quote(column)} IS NULL")
    return f"COALESCE({' OR '.join(parts)}, false)" if parts else "false"


def window_sql(column: str, sql_type: str, interval: tuple[str, str]) -> str:
    """A backfill's [start, end) over the time column (never NULL)."""
    start, end = (v.replace("'", "''") for v in interval)
    col = quote(column)
    return (f"COALESCE({col} >= CAST('{start}' AS {sql_type}) AND "
            f"{col} < CAST('{end}' AS {sql_type}), false)")



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
