"""``andon env diff A B``: per step, same artifact, changed code or changed data; schema and
row-count changes; a data diff of rows: by key (the step's ``primary_key`` or ``--key``: rows
added, removed, changed) or, without one, of whole rows as multisets (added, removed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from andon.engines import Engine
from andon.engines.sql import cast, column, ident
from andon.errors import AndonError, did_you_mean
from andon.execution.checking import reading_engine
from andon.project import Project
from andon.published import env_tables
from andon.store import Row
from andon.warehouse import Warehouse

SAMPLE = 5


def diff(project: Project, a: str, b: str, *, data: bool = True,
         key: Sequence[str] = ()) -> dict[str, Any]:
    """Compare two environments. ``key`` (columns) replaces every step's ``primary_key``;
    a step without all of its columns is compared by whole rows."""
    left, right = env_tables(project, a), env_tables(project, b)
    if key:
        _check_key(key, [left, right])
    wh = Warehouse(project.warehouse)
    # DuckDB over the artifacts' files, or the project's engine when they are its tables
    engine = reading_engine(project, wh, [*left.values(), *right.values()], [wh.root])
    steps: list[dict[str, Any]] = []
    try:
        for name in sorted(set(left) | set(right)):
            la, ra = left.get(name), right.get(name)
            entry: dict[str, Any] = {"step": name}
            if la is None or ra is None:
                entry["change"] = f"only in {a}" if ra is None else f"only in {b}"
                entry["rows"] = {a: la["rows"] if la else None, b: ra["rows"] if ra else None}
                steps.append(entry)
                continue
            if la["fingerprint"] == ra["fingerprint"]:
                entry["change"] = "same"
                steps.append(entry)
                continue
            entry["change"] = "code" if la["code_hash"] != ra["code_hash"] else "data"
            entry["rows"] = {a: la["rows"], b: ra["rows"]}
            entry["schema"] = _schema_diff(la, ra)
            if data:
                step = project.dag.steps.get(name)
                by = list(key) or (list(step.config.primary_key) if step else [])
                entry["data"] = _data_diff(engine, wh, la, ra, by)
            steps.append(entry)
    finally:
        engine.close()
    counts: dict[str, int] = {}
    for s in steps:
        counts[s["change"]] = counts.get(s["change"], 0) + 1
    return {"a": a, "b": b, "counts": counts, "steps": steps}


def _check_key(key: Sequence[str], envs: list[dict[str, Row]]) -> None:
    """A ``--key`` column that no table of either environment has is a typo."""
    columns = {c for tables in envs for art in tables.values() for c, _ in art["schema"]}
    for k in key:
        if k not in columns:
            raise AndonError(f"no table has a column {k!r} to compare rows by",
                             hint=did_you_mean(k, columns) or "give key columns: --key id or "
                                                              "--key carrier,flight_date")


def _schema_diff(la: Row, ra: Row) -> dict[str, Any]:
    old = {c: t for c, t in la["schema"]}
    new = {c: t for c, t in ra["schema"]}
    return {"added": [c for c in new if c not in old],
            "removed": [c for c in old if c not in new],
            "retyped": {c: [old[c], new[c]] for c in new if c in old and old[c] != new[c]}}


def _data_diff(engine: Engine, wh: Warehouse, la: Row, ra: Row,
               key: list[str]) -> dict[str, Any]:
    cur = engine.cursor()
    src_a = engine.scan([str(wh.path(f)) for f in la["files"]])
    src_b = engine.scan([str(wh.path(f)) for f in ra["files"]])
    types_b = {n: t for n, t in ra["schema"]}
    common = [c for c, _ in la["schema"] if c in types_b]
    # a column whose type changed compares as text: an implicit cast could fail or lie
    retyped = {c for c, t in la["schema"] if c in types_b and types_b[c] != t}

    def a_(source: exp.Expression) -> exp.Table:
        return exp.Table(this=source.copy(), alias=exp.TableAlias(this=ident("a")))

    def b_(source: exp.Expression) -> exp.Table:
        return exp.Table(this=source.copy(), alias=exp.TableAlias(this=ident("b")))

    def on() -> exp.Expr:
        return exp.and_(*(exp.NullSafeEQ(this=col(k, "a"), expression=col(k, "b"))
                          for k in key))

    def anti(keep: str, source: exp.Expression, other: exp.Expression) -> exp.Select:
        """The rows of ``source`` (as ``keep``) with no row of the same key in ``other``."""
        named = a_ if keep == "a" else b_
        named_other = b_ if keep == "a" else a_
        return exp.select(exp.column(exp.Star(), table=ident(keep))).from_(named(source)) \
            .join(exp.Join(this=named_other(other), on=on(), kind="ANTI"))

    def col(c: str, alias: str | None = None) -> exp.Expression:
        ref = column(c, alias)
        return cast(ref, "VARCHAR", dialect=engine.dialect) if c in retyped else ref

    def cols() -> list[exp.Expr]:
        return [exp.alias_(col(c), ident(c)) for c in common]

    def rows(query: exp.Query) -> list[dict[str, Any]]:
        res = cur.execute(query)
        names = res.columns
        return [{k: (v if isinstance(v, int | float | str | bool) or v is None else str(v))
                 for k, v in zip(names, r, strict=False)} for r in res.fetchmany(SAMPLE)]

    def count(query: exp.Query) -> int:
        row = cur.execute(exp.select(exp.Count(this=exp.Star())).from_(query.subquery())
                          ).fetchone()
        return int(row[0]) if row else 0

    if key and all(k in common for k in key):
        added = anti("b", src_b, src_a)
        removed = anti("a", src_a, src_b)
        other = [c for c in common if c not in key]
        differs = exp.or_(*(exp.NullSafeNEQ(this=col(c, "a"), expression=col(c, "b"))
                            for c in other)) if other else exp.false()
        changed: exp.Query = exp.select(
            *(column(k, "b") for k in key),
            *(e for c in other[:6] for e in (exp.alias_(column(c, "a"), ident(c + "_before")),
                                              exp.alias_(column(c, "b"), ident(c + "_after"))))
        ).from_(a_(src_a)).join(b_(src_b), on=on()).where(differs) if other else \
            exp.select(*(column(k) for k in key)).from_(src_a.copy()).where(exp.false())
        return {"by": "primary key", "key": key, "added": count(added),
                "removed": count(removed), "changed": count(changed),
                "sample_added": rows(added), "sample_removed": rows(removed),
                "sample_changed": rows(changed)}
    added_rows = exp.except_(exp.select(*cols()).from_(src_b.copy()),
                             exp.select(*cols()).from_(src_a.copy()), distinct=False)
    removed_rows = exp.except_(exp.select(*cols()).from_(src_a.copy()),
                               exp.select(*cols()).from_(src_b.copy()), distinct=False)
    missing = [k for k in key if k not in common]
    why = (f"key column(s) {', '.join(missing)} not in both" if missing else
           "no key: declare primary_key in the step header, or pass --key, to see changed rows")
    return {"by": f"whole rows ({why})",
            "added": count(added_rows), "removed": count(removed_rows),
            "sample_added": rows(added_rows), "sample_removed": rows(removed_rows)}
