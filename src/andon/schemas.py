"""Infer the output schema of steps without running them: the engine binds each SQL step over
empty tables shaped like its parents. Lets checks fail at plan time, not mid-run."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlglot import exp
from sqlglot.errors import ParseError

from andon import engines
from andon.engines.base import Engine, EngineError, Interrupted
from andon.engines.sql import ident, parse, table
from andon.ingest import LANDED_FILE_COLUMN
from andon.kinds import step_kind
from andon.project import Project
from andon.steps import Step

Schema = dict[str, str]


def infer(project: Project, wanted: set[str], known: Mapping[str, Schema]) -> dict[str,
                                                                                 Schema | None]:
    """Schemas of ``wanted`` steps (and what they need); None where it cannot be known yet
    (Python steps that were never built)."""
    out: dict[str, Schema | None] = {}
    opened: list[Engine] = []

    def connection() -> Engine:  # only when a schema must be inferred; it reads no file
        if not opened:
            opened.append(engines.create(allowed=[]))
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
        for engine in opened:
            engine.close()
    return out


def source_schema(step: Step) -> Schema | None:
    """A source's schema is its contract, plus the file each row came from."""
    if step.source is None:
        return None
    result = {c: spec.duckdb_type for c, spec in step.source.columns.items()}
    result[LANDED_FILE_COLUMN] = "VARCHAR"
    return result


def contract_schema(step: Step, schema_of: Callable[[str], Schema | None],
                    connection: Callable[[], Engine]) -> Schema | None:
    """A source's schema at plan time (the ``source`` step kind's): its contract."""
    return source_schema(step)


def sql_schema(step: Step, schema_of: Callable[[str], Schema | None],
               connection: Callable[[], Engine]) -> Schema | None:
    """The engine binds the step's SQL over empty tables shaped like its parents."""
    parents = {p: schema_of(p) for p in step.parents}
    if not all(s is not None for s in parents.values()):
        return None
    engine = connection()
    session = engine.cursor()
    for p, s in parents.items():
        assert s is not None
        columns = [exp.ColumnDef(this=ident(c), kind=_type(t, engine.dialect))
                   for c, t in s.items()]
        session.execute(exp.Create(
            this=exp.Schema(this=table(p), expressions=columns), kind="TABLE", replace=True,
            properties=exp.Properties(expressions=[exp.TemporaryProperty()])))
    try:
        return dict(engine.describe(parse(step.sql, engine.dialect)))
    except Interrupted:
        raise
    except (EngineError, ParseError):
        return None  # the run reports the SQL error with its location


def _type(name: str, dialect: str) -> exp.DataType:
    try:
        return exp.DataType.build(name, dialect=dialect)
    except ParseError:  # a type of the engine sqlglot does not know: as the engine wrote it
        return exp.DataType.build(name, dialect=dialect, udt=True)
