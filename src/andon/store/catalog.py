"""The catalog's stored parts: PII classifications per artifact, and the search index of an
environment's tables and columns (SQLite FTS5 in the embedded store, PostgreSQL full-text
search in a team's store; both ranked, names weighing more than descriptions)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, delete, insert, select, text

from andon.store import schema as t

Row = dict[str, Any]
_WORD = re.compile(r"\w+", re.UNICODE)


def words(query: str) -> list[str]:
    """The words of a search: letters and digits (``dep_delay`` is ``dep`` and ``delay``,
    as both indexes split it); punctuation never reaches the query languages."""
    return [w.lower() for w in _WORD.findall(query.replace("_", " "))]


class CatalogRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # classifications ---------------------------------------------------------------------

    def classification(self, fingerprint: str) -> dict[str, Row] | None:
        c = t.classifications.c
        with self.engine.connect() as conn:
            found = conn.execute(select(c.columns).where(c.fingerprint == fingerprint)).first()
        return dict(found[0]) if found is not None else None

    def put_classification(self, fingerprint: str, step: str,
                           columns: Mapping[str, Row]) -> None:
        """An artifact's classes; classified once (the same bytes hold the same values)."""
        with self.engine.begin() as conn:
            c = t.classifications.c
            if conn.execute(select(c.fingerprint).where(c.fingerprint == fingerprint)).first():
                return
            conn.execute(insert(t.classifications).values(
                fingerprint=fingerprint, step=step, at=time.time(), columns=dict(columns)))

    # search ------------------------------------------------------------------------------

    def replace_docs(self, environment: str, docs: Sequence[Row]) -> None:
        """The environment's searchable documents, all at once (one transaction)."""
        with self.engine.begin() as conn:
            conn.execute(delete(t.catalog_docs).where(
                t.catalog_docs.c.environment == environment))
            if docs:
                conn.execute(insert(t.catalog_docs), [
                    {"environment": environment, "kind": d["kind"], "table_name": d["table"],
                     "column_name": d.get("column") or "", "name": d["name"],
                     "body": d["body"], "shown": d.get("text") or ""} for d in docs])
            if conn.dialect.name == "sqlite":
                conn.execute(text("INSERT INTO catalog_fts(catalog_fts) VALUES('rebuild')"))

    def indexed(self, environment: str) -> str | None:
        """The digest of what is indexed for the environment (its ``meta`` document)."""
        c = t.catalog_docs.c
        with self.engine.connect() as conn:
            found = conn.execute(select(c.body).where(
                c.environment == environment, c.kind == "meta")).first()
        return str(found[0]) if found is not None else None

    def search(self, environment: str, query: str, limit: int = 20) -> list[Row]:
        """The documents matching every word of ``query`` (a word also matches as a prefix),
        best first."""
        found = words(query)
        if not found:
            return []
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                tsquery = " & ".join(f"{w}:*" for w in found)
                sql = text(
                    "SELECT kind, table_name, column_name, shown, ts_rank(v, q) AS rank "
                    "FROM (SELECT *, setweight(to_tsvector('simple', name), 'A') || "
                    "setweight(to_tsvector('simple', body), 'B') AS v FROM catalog_docs "
                    "WHERE environment = :env AND kind != 'meta') AS d, "
                    "to_tsquery('simple', :q) AS q "
                    "WHERE v @@ q ORDER BY rank DESC, name LIMIT :limit")
                rows = conn.execute(sql, {"env": environment, "q": tsquery, "limit": limit})
            else:
                match = " AND ".join(f'"{w}"*' for w in found)
                sql = text(
                    "SELECT d.kind, d.table_name, d.column_name, d.shown, "
                    "-bm25(catalog_fts, 10.0, 1.0) AS rank FROM catalog_fts "
                    "JOIN catalog_docs AS d ON d.id = catalog_fts.rowid "
                    "WHERE catalog_fts MATCH :q AND d.environment = :env AND d.kind != 'meta' "
                    "ORDER BY rank DESC, d.name LIMIT :limit")
                rows = conn.execute(sql, {"env": environment, "q": match, "limit": limit})
            return [{"kind": r.kind, "table": r.table_name, "column": r.column_name or None,
                     "name": (f"{r.table_name}.{r.column_name}" if r.column_name
                              else r.table_name),
                     "text": r.shown, "rank": round(float(r.rank), 6)}
                    for r in rows]

