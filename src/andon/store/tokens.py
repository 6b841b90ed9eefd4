"""API tokens: a name, the user and role it acts as, an optional expiry. The store keeps only
the sha256 of a token; the token itself is shown once, when it is created."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from andon.errors import Conflict
from andon.store import schema as t
from andon.store.clock import utc, utc_or_none

PREFIX = "andon_"  # makes a leaked token easy to recognise (and to scan for)
TOUCH_EVERY = 60.0  # seconds: last_used_at is a hint, not a write on every request


def digest(token: str) -> str:
    """The sha256 (hex) under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenRecord:
    name: str
    user: str
    role: str
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    last_used_at: datetime | None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and self.expires_at.timestamp() <= (
            time.time() if now is None else now)

    def as_dict(self) -> dict[str, Any]:
        """Everything but the hash."""
        return {"name": self.name, "user": self.user, "role": self.role,
                "created_at": self.created_at.timestamp(), "created_by": self.created_by,
                "expires_at": self.expires_at.timestamp() if self.expires_at else None,
                "last_used_at": self.last_used_at.timestamp() if self.last_used_at else None}


def _record(r: Any) -> TokenRecord:
    return TokenRecord(r.name, r.user, r.role, utc(r.created_at), r.created_by,
                       utc_or_none(r.expires_at), utc_or_none(r.last_used_at))


class TokenRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, *, user: str, role: str, expires_at: float | None,
               by: str) -> str:
        """Store a new token and return it: the only time it is ever seen."""
        token = PREFIX + secrets.token_urlsafe(32)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(t.tokens).values(
                    name=name, user=user, role=role, token_hash=digest(token),
                    created_at=time.time(), created_by=by, expires_at=expires_at))
        except IntegrityError:
            raise Conflict(f"a token named {name!r} exists already",
                           hint=f"choose another name, or revoke it first: "
                                f"andon tokens revoke {name}") from None
        return token

    def all(self) -> list[TokenRecord]:
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(select(t.tokens).order_by(t.tokens.c.name))]

    def find(self, token: str) -> TokenRecord | None:
        """The token's record (expired or not), noting when it was last used."""
        return self.find_digest(digest(token))

    def find_digest(self, token_hash: str) -> TokenRecord | None:
        """``find`` by the token's sha256 (what a UI session keeps instead of the token)."""
        with self.engine.connect() as conn:
            r = conn.execute(select(t.tokens).where(t.tokens.c.token_hash == token_hash)
                             ).first()
        if r is None:
            return None
        found, now = _record(r), time.time()
        if r.last_used_at is None or now - r.last_used_at > TOUCH_EVERY:
            with self.engine.begin() as conn:
                conn.execute(update(t.tokens).where(t.tokens.c.name == r.name)
                             .values(last_used_at=now))
            found = replace(found, last_used_at=utc(now))
        return found

    def revoke(self, name: str) -> bool:
        """False when there was no such token."""
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(t.tokens).where(t.tokens.c.name == name)).rowcount)
