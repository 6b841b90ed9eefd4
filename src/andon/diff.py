"""``andon env diff A B``: per step, same artifact, changed code or changed data; schema and
row-count changes; a data diff of rows: by key (the step's ``primary_key`` or ``--key``: rows
added, removed, changed) or, without one, of whole rows as multisets (added, removed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from andon.engines.duckdb import DuckDBEngine, scan_sql
from andon.errors import AndonError, did_you_mean
from andon.project import Project
from andon.published import env_tables
from andon.store import Row
from andon.warehouse import Warehouse

SAMPLE = 5


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def diff(project: Project, a: str, b: str, *, data: bool = True,
         key: Sequence[str] = ()) -> dict[str, Any]:
    """Compare two environments. ``key`` (columns) replaces every step's ``primary_key``;
    a step without all of its columns is compared by whole rows."""
    left, right = env_tables(project, a), env_tables(project, b)
    if key:
        _check_key(key, [left, right])
    wh = Warehouse(project.warehouse)
    engine = DuckDBEngine(threads=project.config.threads)
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


def _data_diff(engine: DuckDBEngine, wh: Warehouse, la: Row, ra: Row,
               key: list[str]) -> dict[str, Any]:
    cur = engine.cursor()
    src_a = scan_sql([str(wh.path(f)) for f in la["files"]])
    src_b = scan_sql([str(wh.path(f)) for f in ra["files"]])
    types_b = {n: t for n, t in ra["schema"]}
    common = [c for c, _ in la["schema"] if c in types_b]
    # a column whose type changed compares as text: an implicit cast could fail or lie
    retyped = {c for c, t in la["schema"] if c in types_b and types_b[c] != t}

    def col(c: str, alias: str = "") -> str:
        ref = f"{alias}.{_q(c)}" if alias else _q(c)
        return f"CAST({ref} AS VARCHAR)" if c in retyped else ref

    cols = ", ".join(f"{col(c)} AS {_q(c)}" for c in common)

    def rows(sql: str) -> list[dict[str, Any]]:
        res = cur.execute(sql)
        names = res.columns
        return [{k: (v if isinstance(v, int | float | str | bool) or v is None else str(v))
                 for k, v in zip(names, r, strict=False)} for r in res.fetchmany(SAMPLE)]

    def count(sql: str) -> int:
        row = cur.execute(f"SELECT count(*) FROM ({sql})").fetchone()
        return int(row[0]) if row else 0

    if key and all(k in common for k in key):
        on = " AND ".join(f"{col(k, 'a')} IS NOT DISTINCT FROM {col(k, 'b')}" for k in key)
        keys = ", ".join(_q(k) for k in key)
        added = f"SELECT b.* FROM {src_b} b ANTI JOIN {src_a} a ON {on}"
        removed = f"SELECT a.* FROM {src_a} a ANTI JOIN {src_b} b ON {on}"
        other = [c for c in common if c not in key]
        differs = " OR ".join(f"{col(c, 'a')} IS DISTINCT FROM {col(c, 'b')}"
                              for c in other) or "false"
        changed = (f"SELECT {', '.join('b.' + _q(k) for k in key)}, "
                   + ", ".join(f"a.{_q(c)} AS {_q(c + '_' + 'before')}, b.{_q(c)} AS "
                               f"{_q(c + '_after')}" for c in other[:6])
                   + f" FROM {src_a} a JOIN {src_b} b ON {on} WHERE {differs}") if other else \
            f"SELECT {keys} FROM {src_a} WHERE false"
        return {"by": "primary key", "key": key, "added": count(added),
                "removed": count(removed), "changed": count(changed),
                "sample_added": rows(added), "sample_removed": rows(removed),
                "sample_changed": rows(changed)}
    added = f"SELECT {cols} FROM {src_b} EXCEPT ALL SELECT {cols} FROM {src_a}"
    removed = f"SELECT {cols} FROM {src_a} EXCEPT ALL SELECT {cols} FROM {src_b}"
    missing = [k for k in key if k not in common]
    why = (f"key column(s) {', '.join(missing)} not in both" if missing else
           "no key: declare primary_key in the step header, or pass --key, to see changed rows")
    return {"by": f"whole rows ({why})",
            "added": count(added), "removed": count(removed),
            "sample_added": rows(added), "sample_removed": rows(removed)}
