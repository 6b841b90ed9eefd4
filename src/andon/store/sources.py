"""Pulls of database and HTTP sources (what arrived when, the cursor to continue from) and
the schema changes of sources, each with the file that brought it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, insert, select

from andon.store import Row
from andon.store import schema as t


class SourceRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_pull(self, source: str, *, sha256: str | None, rows: int, pages: int | None,
                 cursor: Any, at: float, by: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(t.source_pulls).values(
                source=source, sha256=sha256, rows=rows, pages=pages,
                cursor=None if cursor is None else json.dumps(cursor), pulled_at=at,
                pulled_by=by))

    def pulls(self, source: str) -> list[Row]:
        q = select(t.source_pulls).where(t.source_pulls.c.source == source).order_by(
            t.source_pulls.c.pulled_at, t.source_pulls.c.id)
        with self.engine.connect() as conn:
            return [_decoded(dict(r._mapping)) for r in conn.execute(q)]

    def last_cursor(self, source: str) -> Any:
        """The cursor of the latest pull that had one (None before the first)."""
        c = t.source_pulls.c
        q = (select(c.cursor).where(c.source == source, c.cursor.is_not(None))
             .order_by(c.pulled_at.desc(), c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            value = conn.execute(q).scalar()
        return None if value is None else json.loads(value)

    def add_changes(self, rows: Sequence[Row]) -> None:
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(t.source_schema_changes), list(rows))

    def changes(self, source: str, shas: Iterable[str] | None = None) -> list[Row]:
        c = t.source_schema_changes.c
        q = select(t.source_schema_changes).where(c.source == source)
        if shas is not None:
            q = q.where(c.sha256.in_(list(shas)))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(c.at, c.id))]


def _decoded(row: Row) -> Row:
    if row.get("cursor") is not None:
        row["cursor"] = json.loads(row["cursor"])
    return row
