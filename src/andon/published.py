"""Read what an environment publishes: tables, their artifacts, queries, lineage, runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from andon.engines.base import EngineError, UnknownObject
from andon.environments import env_tables
from andon.errors import AndonError, Failed, NotFound, SqlError, did_you_mean
from andon.project import Project
from andon.store import Row
from andon.warehouse import Warehouse


def tables(project: Project, environment: str | None = None) -> list[Row]:
    from andon import records

    return [t.to_dict() for t in records.tables(project, environment)]


def _table(project: Project, table: str, environment: str | None) -> Row:
    published = env_tables(project, environment)
    if table not in published:
        hint = did_you_mean(table, set(published) | set(project.dag.steps))
        if table in project.dag.steps:
            raise NotFound(f"table {table!r} is not built in environment "
                           f"{environment or project.config.default_environment!r}",
                           hint=f"build it: andon run +{table}")
        raise NotFound(f"no table named {table!r}", hint=hint or "list them: andon tables")
    return published[table]


def show(project: Project, table: str, environment: str | None = None, limit: int = 10) -> Row:
    from sqlglot import exp

    from andon.engines.sql import table as table_ref
    from andon.execution.checking import reading_engine

    art = _table(project, table, environment)
    step = project.dag.steps.get(table)
    wh = Warehouse(project.warehouse)
    files = [wh.path(f) for f in art["files"]]
    engine = reading_engine(project, wh, [art], files)
    try:
        cur = engine.session({table: [str(f) for f in files]})
        select = exp.select("*").from_(table_ref(table)).limit(int(limit))
        res = cur.execute(select)
        sample = [dict(zip(res.columns, r, strict=True)) for r in res.fetchall()]
    except EngineError as e:
        raise unreadable(table, e) from None
    finally:
        engine.close()
    return {
        "table": table,
        "environment": environment or project.config.default_environment,
        "kind": step.kind if step else None,
        "zone": step.zone if step else None,
        "file": str(step.file.relative_to(project.root)) if step else None,
        "description": step.config.description if step else "",
        "owner": step.config.owner if step else None,
        "tags": list(step.config.tags) if step else [],
        "materialized": step.config.materialized if step else None,
        "rows": art["rows"],
        "bytes": art["bytes"],
        "fingerprint": art["fingerprint"],
        "artifact": art["path"],
        "files": len(art["files"]),
        "built_by_run": art["run_id"],
        "rejects": (art.get("meta") or {}).get("rejects"),
        "schema": [{"name": n, "type": t} for n, t in art["schema"]],
        "parents": list(step.parents) if step else [],
        "children": list(project.dag.children.get(table, ())),
        "sample": sample,
    }


def query(project: Project, sql: str, environment: str | None = None,
          limit: int | None = None, *, as_of: str | None = None,
          commit: str | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run read-only SQL over an environment's tables; returns column names and rows."""
    from andon.execution.checking import reading_engine

    published = env_tables(project, environment, as_of=as_of, commit=commit)
    _require_select(sql)
    wh = Warehouse(project.warehouse)  # only the tables it reads: a bucket's are downloaded
    read = _tables_read(sql, published)
    tables = {name: [str(wh.path(f)) for f in published[name]["files"]] for name in read}
    engine = reading_engine(project, wh, [published[name] for name in read],  # only these
                            [Path(f) for files in tables.values() for f in files])
    try:
        try:
            cur = engine.session(tables)
            res = cur.execute(sql)
            cols = res.columns
            rows = res.fetchmany(limit) if limit else res.fetchall()
        except UnknownObject as e:
            raise SqlError(f"query failed: {e.first_line}",
                           hint="tables: " + ", ".join(published) if published else "") from None
        except EngineError as e:
            raise SqlError(f"query failed: {e.first_line}") from None
        return (cols, rows) if cols else ([], [])
    finally:
        engine.close()


def unreadable(table: str, e: EngineError) -> Failed:
    """The engine could not read a table's artifact (its database down, a file gone)."""
    return Failed(f"cannot read table {table!r}: {e.first_line}",
                  hint="check that the engine's database is reachable (engine_options in "
                       "andon.yaml); a run rebuilds an artifact that is gone")


def _tables_read(sql: str, published: dict[str, Row]) -> list[str]:
    """The published tables ``sql`` names (as DuckDB does, whatever their case; also as a
    string, for ``query_table('t')``); all of them when sqlglot cannot parse it (the engine
    then says what is wrong)."""
    import sqlglot
    from sqlglot import exp

    try:
        trees = sqlglot.parse(sql, dialect="duckdb")
    except sqlglot.errors.SqlglotError:
        return list(published)
    named = {t.name.lower() for tree in trees if tree is not None
             for t in tree.find_all(exp.Table, exp.Literal)
             if isinstance(t, exp.Table) or t.is_string}
    return [name for name in published if name.lower() in named]


def _require_select(sql: str) -> None:
    """``andon query`` reads: one SELECT (or WITH … SELECT), as the engine parses it."""
    from andon.engines.duckdb import statement_kinds

    try:
        kinds = statement_kinds(sql)
    except EngineError as e:
        raise SqlError(f"query failed: {e.first_line}") from None
    if kinds != ["SELECT"]:
        what = ", ".join(kinds) or "nothing"
        raise SqlError(f"andon query runs one SELECT statement, not {what}",
                       hint="queries only read the environment's tables; to change data, "
                            "write a step and run it")


def lineage(project: Project, table: str) -> dict[str, Any]:
    if table not in project.dag.steps:
        hint = did_you_mean(table, project.dag.steps)
        raise NotFound(f"no step named {table!r}", hint=hint or "list them: andon tables")

    def up(name: str) -> dict[str, Any]:
        s = project.dag.steps[name]
        return {"name": name, "kind": s.kind, "zone": s.zone,
                "parents": [up(p) for p in s.parents]}

    def down(name: str) -> dict[str, Any]:
        s = project.dag.steps[name]
        return {"name": name, "kind": s.kind, "zone": s.zone,
                "children": [down(c) for c in project.dag.children.get(name, ())]}

    return {"table": table, "upstream": up(table)["parents"],
            "downstream": down(table)["children"]}


def run_details(project: Project, run_ref: str | int) -> Row:
    from andon import records

    return records.run_details(project, run_ref).to_dict()


def runs(project: Project, environment: str | None = None, limit: int = 20) -> list[Row]:
    from andon import records

    return [r.to_dict() for r in records.runs(project, environment, limit)]


def rejects(project: Project, source: str, limit: int = 100) -> list[Row]:
    if source not in project.config.sources:
        hint = did_you_mean(source, project.config.sources)
        raise NotFound(f"no source named {source!r}", hint=hint or "")
    return [
        {"file": r["file"], "line": r["line"], "column": r["column_name"], "reason": r["reason"],
         "raw": r["raw"]}
        for r in project.reader.rejects(source=source, limit=limit)
    ]


def _ts(t: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) if t else None


__all__ = ["AndonError", "env_tables", "lineage", "query", "rejects", "run_details", "runs",
           "show", "tables"]


def profile(project: Project, table: str, environment: str | None = None) -> Row:
    """The profile of a table's current artifact (computed now if it was never profiled)."""
    from andon.checks import history
    from andon.checks.run import Audit, evaluate
    from andon.execution.checking import reading_engine
    from andon.runner import manifest_of
    from andon.secrets import stored_values

    art = _table(project, table, environment)
    found = history.profile_of(project.store, art["fingerprint"])
    if found is None:
        wh = Warehouse(project.warehouse)  # reads only this table's files
        engine = reading_engine(project, wh, [art], [wh.path(f) for f in art["files"]])
        try:
            audit = Audit(store=project.store, engine=engine,
                          warehouse=wh,
                          environment=environment or project.config.default_environment,
                          run_id=None, manifests={table: manifest_of(art)},
                          secrets=stored_values(project.store, project.root))
            evaluate(audit, table, [])
        except EngineError as e:
            raise unreadable(table, e) from None
        finally:
            engine.close()
        found = history.profile_of(project.store, art["fingerprint"])
    assert found is not None
    return {"table": table, "fingerprint": art["fingerprint"], **found.profile}


def suggest_checks(project: Project, table: str, environment: str | None = None) -> str:
    from sqlglot import exp

    from andon.checks import history
    from andon.checks.suggest import MAX_CATEGORIES, suggest, to_yaml
    from andon.engines.sql import column
    from andon.execution.checking import reading_engine

    prof = profile(project, table, environment)
    art = _table(project, table, environment)
    wh = Warehouse(project.warehouse)
    categories: dict[str, list[Any]] = {}
    files = [wh.path(f) for f in art["files"]]
    engine = reading_engine(project, wh, [art], files)
    try:
        cur = engine.cursor()
        for name, p in prof["columns"].items():
            if p["type"] == "VARCHAR" and 0 < (p.get("distinct") or 0) <= MAX_CATEGORIES \
                    and not name.startswith("_"):
                values = exp.select(column(name)).distinct().from_(engine.scan(files)).where(
                    exp.not_(column(name).is_(exp.null()))).limit(MAX_CATEGORIES + 1)
                rows = cur.execute(values).fetchall()
                if len(rows) <= MAX_CATEGORIES:
                    categories[name] = [r[0] for r in rows]
    except EngineError as e:
        raise unreadable(table, e) from None
    finally:
        engine.close()
    past = [r.rows for r in history.profiles(project.store, table)]
    return to_yaml(table, suggest(table, prof, categories, past))


def checks_list(project: Project) -> list[Row]:
    def where(file: Path, line: int | None) -> str:
        path = file.relative_to(project.root) if file.is_relative_to(project.root) else file
        return f"{path}:{line}" if line else str(path)

    return [{"name": c.name, "table": c.table, "type": c.type, "severity": c.severity,
             "spc": c.spc is not None, "where": where(Path(c.file), c.line)}
            for c in project.checks]


def check_history(project: Project, name: str, environment: str | None = None,
                  limit: int = 50) -> list[Row]:
    checks = project.reader.checks
    if name not in {c.name for c in project.checks} and not checks.series(name, limit=1):
        hint = did_you_mean(name, [c.name for c in project.checks])
        raise NotFound(f"no check named {name!r}", hint=hint or "list them: andon checks list")
    return [{"id": r.id, "at": _ts(r.at.timestamp()), "run": r.run_id,
             "environment": r.environment, "step": r.step, "artifact": r.fingerprint,
             "threshold": r.threshold, "failing": r.failing, "status": r.status,
             "metric": r.metric, "severity": r.severity, "incident": r.incident,
             "acknowledged": r.acknowledged, "spc": r.spc, "message": r.message}
            for r in checks.series(name, environment=environment, limit=limit)]
