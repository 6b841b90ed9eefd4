"""Users and their roles."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from andon.store import schema as t
from andon.store.clock import utc


@dataclass(frozen=True)
class UserRecord:
    name: str
    role: str  # admin|operator|developer|viewer
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role,
                "created_at": self.created_at.timestamp()}


class UserRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> list[UserRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.users).order_by(t.users.c.name)).all()
        return [UserRecord(r.name, r.role, utc(r.created_at)) for r in rows]

    def any(self) -> bool:
        """Whether any user is configured."""
        with self.engine.connect() as conn:
            return conn.execute(select(t.users.c.name).limit(1)).first() is not None

    def role(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.users.c.role).where(t.users.c.name == name)).first()
        return str(row[0]) if row else None

    def put(self, name: str, role: str) -> None:
        """Add the user, or change their role."""
        with self.engine.begin() as conn:
            if conn.execute(update(t.users).where(t.users.c.name == name)
                            .values(role=role)).rowcount == 0:
                conn.execute(insert(t.users).values(name=name, role=role,
                                                    created_at=time.time()))

    def remove(self, name: str) -> bool:
        """False when there was no such user."""
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(t.users).where(t.users.c.name == name)).rowcount)
