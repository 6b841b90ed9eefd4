"""Infer the output schema of steps without running them: DuckDB binds each SQL step over
empty tables shaped like its parents. Lets checks fail at plan time, not mid-run."""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from andon.ingest import LANDED_FILE_COLUMN
from andon.project import Project

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
            result: Schema | None = None
            if step.kind == "source" and step.source is not None:
                result = {c: spec.duckdb_type for c, spec in step.source.columns.items()}
                result[LANDED_FILE_COLUMN] = "VARCHAR"
            elif step.kind == "sql":
                parents = {p: schema_of(p) for p in step.parents}
                if all(s is not None for s in parents.values()):
                    con = connection()
                    for p, s in parents.items():
                        assert s is not None
                        cols = ", ".join(f"{_q(c)} {t}" for c, t in s.items())
                        con.execute(f"CREATE OR REPLACE TEMP TABLE {_q(p)} ({cols})")
                    try:
                        rows = con.execute(f"DESCRIBE {step.sql}").fetchall()
                        result = {str(r[0]): str(r[1]) for r in rows}
                    except duckdb.Error:
                        result = None  # the run reports the SQL error with its location
            out[name] = result
            return result

        for name in wanted:
            schema_of(name)
    finally:
        for con in opened:
            con.close()
    return out
