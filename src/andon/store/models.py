"""The model registry's records: versions of model steps (one per model artifact) and the
append-only history of their aliases (``champion``, ``challenger``, …)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from andon.store import schema as t


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    fingerprint: str
    run_id: int | None
    environment: str | None
    created_at: float
    metrics: dict[str, Any]
    info: dict[str, Any]
    tags: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class AliasMove:
    name: str
    alias: str
    version: int | None  # None: the alias was removed
    set_at: float
    set_by: str | None
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _version(r: Any) -> ModelVersion:
    return ModelVersion(r.name, r.version, r.fingerprint, r.run_id, r.environment, r.created_at,
                        dict(r.metrics or {}), dict(r.info or {}), dict(r.tags or {}))


class ModelRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, name: str, fingerprint: str, *, run_id: int | None,
                 environment: str | None, metrics: dict[str, Any], info: dict[str, Any]
                 ) -> ModelVersion:
        """The version of the model artifact ``fingerprint``: its existing one, or the next
        number (two runs racing for a number: the loser takes the next one)."""
        for _ in range(5):
            found = self.by_fingerprint(name, fingerprint)
            if found is not None:
                return found
            try:
                with self.engine.begin() as conn:
                    last = conn.execute(select(func.max(t.model_versions.c.version))
                                        .where(t.model_versions.c.name == name)).scalar()
                    conn.execute(insert(t.model_versions).values(
                        name=name, version=int(last or 0) + 1, fingerprint=fingerprint,
                        run_id=run_id, environment=environment, created_at=time.time(),
                        metrics=metrics, info=info, tags={}))
            except IntegrityError:
                continue
        found = self.by_fingerprint(name, fingerprint)
        assert found is not None, "model version could not be registered"
        return found

    def by_fingerprint(self, name: str, fingerprint: str) -> ModelVersion | None:
        q = select(t.model_versions).where(t.model_versions.c.name == name,
                                           t.model_versions.c.fingerprint == fingerprint)
        with self.engine.connect() as conn:
            r = conn.execute(q).first()
        return _version(r) if r is not None else None

    def get(self, name: str, version: int) -> ModelVersion | None:
        q = select(t.model_versions).where(t.model_versions.c.name == name,
                                           t.model_versions.c.version == version)
        with self.engine.connect() as conn:
            r = conn.execute(q).first()
        return _version(r) if r is not None else None

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        """Versions, newest first (of one model, or of all)."""
        q = select(t.model_versions).order_by(t.model_versions.c.name,
                                              t.model_versions.c.version.desc())
        if name is not None:
            q = q.where(t.model_versions.c.name == name)
        with self.engine.connect() as conn:
            return [_version(r) for r in conn.execute(q)]

    def set_tags(self, name: str, version: int, tags: dict[str, str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.model_versions).where(
                t.model_versions.c.name == name, t.model_versions.c.version == version)
                .values(tags=tags))

    def move_alias(self, name: str, alias: str, version: int | None, *, who: str | None,
                   note: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(t.model_aliases).values(
                name=name, alias=alias, version=version, set_at=time.time(), set_by=who,
                note=note))

    def aliases(self, name: str) -> dict[str, int]:
        """Alias → version, as they are now."""
        now: dict[str, int | None] = {}
        for move in self.alias_history(name):  # oldest first: the last move wins
            now[move.alias] = move.version
        return {a: v for a, v in now.items() if v is not None}

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of the model's aliases, oldest first."""
        q = select(t.model_aliases).where(t.model_aliases.c.name == name) \
            .order_by(t.model_aliases.c.id)
        if alias is not None:
            q = q.where(t.model_aliases.c.alias == alias)
        with self.engine.connect() as conn:
            return [AliasMove(r.name, r.alias, r.version, r.set_at, r.set_by, r.note)
                    for r in conn.execute(q)]
