"""Encrypted secrets, per environment (``*`` for every environment). The store holds only
ciphertext: encryption and the key are ``andon.secrets``'s business."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from andon.store import schema as t
from andon.store.clock import utc


@dataclass(frozen=True)
class SecretRecord:
    name: str
    environment: str
    ciphertext: str
    updated_at: datetime
    updated_by: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "environment": self.environment,
                "ciphertext": self.ciphertext, "updated_at": self.updated_at.timestamp(),
                "updated_by": self.updated_by}


class SecretRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> list[SecretRecord]:
        """Every stored secret, by name then environment."""
        q = select(t.secrets).order_by(t.secrets.c.name, t.secrets.c.environment)
        with self.engine.connect() as conn:
            return [SecretRecord(r.name, r.environment, r.ciphertext, utc(r.updated_at),
                                 r.updated_by) for r in conn.execute(q)]

    def ciphertexts(self, name: str, environments: Iterable[str]) -> dict[str, str]:
        """environment → ciphertext of secret ``name``, for those of ``environments`` set."""
        q = select(t.secrets.c.environment, t.secrets.c.ciphertext).where(
            t.secrets.c.name == name, t.secrets.c.environment.in_(list(environments)))
        with self.engine.connect() as conn:
            return {r.environment: r.ciphertext for r in conn.execute(q)}

    def put(self, name: str, environment: str, ciphertext: str, *, who: str) -> None:
        now = time.time()
        where = (t.secrets.c.name == name) & (t.secrets.c.environment == environment)
        with self.engine.begin() as conn:
            if conn.execute(update(t.secrets).where(where).values(
                    ciphertext=ciphertext, updated_at=now, updated_by=who)).rowcount == 0:
                conn.execute(insert(t.secrets).values(
                    name=name, environment=environment, ciphertext=ciphertext,
                    updated_at=now, updated_by=who))

    def remove(self, name: str, environment: str) -> bool:
        """False when there was no such secret."""
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(t.secrets).where(
                t.secrets.c.name == name, t.secrets.c.environment == environment)).rowcount)
