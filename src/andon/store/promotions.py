"""The record of promotions: one row per promotion (dry runs are not recorded)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from andon.store import schema as t
from andon.store.clock import utc


@dataclass(frozen=True)
class PromotionRecord:
    id: int
    source: str
    target: str
    status: str  # running|promoted|refused|conflict|failed
    who: str | None
    at: datetime
    base_commit: str | None
    source_commit: str | None
    target_commit: str | None
    candidate_commit: str | None
    changed: Any  # steps taken from the source
    checks: Any  # {"passed": n, "failed": [...]}
    message: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "target": self.target,
                "status": self.status, "who": self.who, "at": self.at.timestamp(),
                "base_commit": self.base_commit, "source_commit": self.source_commit,
                "target_commit": self.target_commit, "candidate_commit": self.candidate_commit,
                "changed": self.changed, "checks": self.checks, "message": self.message}


class PromotionRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self, **values: Any) -> int:
        """Record a promotion beginning now; its number."""
        with self.engine.begin() as conn:
            res = conn.execute(insert(t.promotions).values(at=time.time(), **values))
            return int(res.inserted_primary_key[0])  # type: ignore[index]

    def update(self, promotion_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.promotions).where(t.promotions.c.id == promotion_id)
                         .values(**values))

    def latest(self, limit: int = 50) -> list[PromotionRecord]:
        """The last ``limit`` promotions, newest first."""
        q = select(t.promotions).order_by(t.promotions.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [PromotionRecord(r.id, r.source, r.target, r.status, r.who, utc(r.at),
                                    r.base_commit, r.source_commit, r.target_commit,
                                    r.candidate_commit, r.changed, r.checks, r.message)
                    for r in conn.execute(q)]
