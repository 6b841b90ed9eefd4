"""Infer the output schema of steps without running them: DuckDB binds each SQL step over
empty tables shaped like its parents. Lets checks fail at plan time, not mid-run."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import duckdb

from andon.ingest import LANDED_FILE_COLUMN
from andon.kinds import step_kind
from andon.project import Project
from andon.steps import Step

Schema = dict[str, str]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def infer(project: Project, wanted: set[str], known: Mapping[str, Schema]) -> dict[str,
                                                                                 Schema | None]:
    """Schemas of ``wanted`` steps (and what they need); None where it cannot be known yet
    (Python steps that were never built)."""
    out: dict[str, Schema | None] = {}
    opened: list[duckdb.DuckDBPyConnection] = []

    def connection() -> duckdb.DuckDBPyConnection:  # only when a schema must be inferred
        if not opened:
            opened.append(duckdb.connect(":memory:"))
        return opened[0]

    try:
        def schema_of(name: str) -> Schema | None:
            if name in out:
                return out[name]
            if name in known:
                out[name] = dict(known[name])
                return out[name]
            step = project.dag.steps[name]
            infer_schema = step_kind(step.kind).infer_schema
            result = infer_schema(step, schema_of, connection) if infer_schema else None
            out[name] = result
            return result

        for name in wanted:
            schema_of(name)
    finally:
        for con in opened:
            con.close()
    return out


def source_schema(step: Step) -> Schema | None:
    """A source's schema is its contract, plus the file each row came from."""
    if step.source is None:
        return None
    result = {c: spec.duckdb_type for c, spec in step.source.columns.items()}
    result[LANDED_FILE_COLUMN] = "VARCHAR"
    return result


def sql_schema(step: Step, schema_of: Callable[[str], Schema | None],
               connection: Callable[[], duckdb.DuckDBPyConnection]) -> Schema | None:
    """DuckDB binds the step's SQL over empty tables shaped like its parents."""
    parents = {p: schema_of(p) for p in step.parents}
    if not all(s is not None for s in parents.values()):
        return None
    con = connection()
    for p, s in parents.items():
        assert s is not None
        cols = ", ".join(f"{_q(c)} {t}" for c, t in s.items())
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_q(p)} ({cols})")
    try:
        rows = con.execute(f"DESCRIBE {step.sql}").fetchall()
    except duckdb.Error:
        return None  # the run reports the SQL error with its location
    return {str(r[0]): str(r[1]) for r in rows}
