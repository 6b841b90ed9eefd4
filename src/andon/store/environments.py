"""Environments, commits and the ref log: the one compare-and-swap that moves an environment.

Every move of an environment, by a run's publish, a promotion or a reset, goes through
``EnvironmentRepository.move`` (or ``publish``, which writes a commit and moves in the same
transaction), and is appended to the ref log."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from andon.errors import LeaseError
from andon.store import schema as t
from andon.store.clock import utc

RUN_AGAIN = "run again: it will reuse every artifact already built"


@dataclass(frozen=True)
class EnvironmentRecord:
    name: str
    commit_id: str | None
    version: int
    protected: bool
    base: str | None
    owner: str | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """The row as the store holds it (times as epoch seconds)."""
        return {"name": self.name, "commit_id": self.commit_id, "version": self.version,
                "protected": self.protected, "base": self.base, "owner": self.owner,
                "created_at": self.created_at.timestamp(),
                "updated_at": self.updated_at.timestamp()}


@dataclass(frozen=True)
class CommitRecord:
    id: str
    parent_id: str | None
    merge_parent_id: str | None
    created_at: datetime
    author: str | None
    git_sha: str | None
    params: Mapping[str, Any]
    message: str | None
    run_id: int | None
    code: Mapping[str, str] | None  # step → template hash: what a protected env may run

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "parent_id": self.parent_id,
                "merge_parent_id": self.merge_parent_id,
                "created_at": self.created_at.timestamp(), "author": self.author,
                "git_sha": self.git_sha, "params": dict(self.params), "message": self.message,
                "run_id": self.run_id, "code": dict(self.code) if self.code is not None else None}


@dataclass(frozen=True)
class RefLogEntry:
    id: int
    environment: str
    from_commit: str | None
    to_commit: str | None
    at: datetime
    who: str | None
    why: str | None
    run_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "environment": self.environment,
                "from_commit": self.from_commit, "to_commit": self.to_commit,
                "at": self.at.timestamp(), "who": self.who, "why": self.why,
                "run_id": self.run_id}


def _env(r: Any) -> EnvironmentRecord:
    return EnvironmentRecord(r.name, r.commit_id, int(r.version), bool(r.protected), r.base,
                             r.owner, utc(r.created_at), utc(r.updated_at))


def _commit(r: Any) -> CommitRecord:
    return CommitRecord(r.id, r.parent_id, r.merge_parent_id, utc(r.created_at), r.author,
                        r.git_sha, dict(r.params or {}), r.message, r.run_id,
                        dict(r.code) if r.code is not None else None)


def _entry(r: Any) -> RefLogEntry:
    return RefLogEntry(int(r.id), r.environment, r.from_commit, r.to_commit, utc(r.at), r.who,
                       r.why, r.run_id)


class EnvironmentRepository:
    """Reads and moves of environments, their commits and their ref log."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # reads --------------------------------------------------------------------------------

    def get(self, name: str) -> EnvironmentRecord | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(t.environments).where(t.environments.c.name == name)).first()
        return _env(r) if r else None

    def all(self) -> list[EnvironmentRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.environments).order_by(t.environments.c.name)).all()
        return [_env(r) for r in rows]

    def commit(self, commit_id: str) -> CommitRecord | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(t.commits).where(t.commits.c.id == commit_id)).first()
        return _commit(r) if r else None

    def commit_steps(self, commit_id: str | None) -> dict[str, str]:
        if commit_id is None:
            return {}
        q = select(t.commit_steps.c.step, t.commit_steps.c.fingerprint).where(
            t.commit_steps.c.commit_id == commit_id)
        with self.engine.connect() as conn:
            return {r.step: r.fingerprint for r in conn.execute(q)}

    def commits_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(
                select(t.commits.c.id).where(t.commits.c.id.like(f"{prefix}%")).limit(limit))]

    def parents(self, commit_id: str) -> list[str]:
        """The first and merge parents of a commit (none for an unknown commit)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.commits.c.parent_id, t.commits.c.merge_parent_id)
                               .where(t.commits.c.id == commit_id)).first()
        return [p for p in (row or ()) if p]

    def log(self, environment: str) -> list[RefLogEntry]:
        """The moves of ``environment``, newest first."""
        q = (select(t.ref_log).where(t.ref_log.c.environment == environment)
             .order_by(t.ref_log.c.id.desc()))
        with self.engine.connect() as conn:
            return [_entry(r) for r in conn.execute(q)]

    def last_move_before(self, environment: str, when: float, *,
                         inclusive: bool = True) -> RefLogEntry | None:
        """The last move of ``environment`` at or before (``inclusive``) epoch ``when``."""
        at = t.ref_log.c.at
        q = (select(t.ref_log)
             .where(t.ref_log.c.environment == environment, at <= when if inclusive
                    else at < when)
             .order_by(at.desc(), t.ref_log.c.id.desc()).limit(1))
        with self.engine.connect() as conn:
            r = conn.execute(q).first()
        return _entry(r) if r else None

    def first_move(self, environment: str) -> RefLogEntry | None:
        q = (select(t.ref_log).where(t.ref_log.c.environment == environment)
             .order_by(t.ref_log.c.at, t.ref_log.c.id).limit(1))
        with self.engine.connect() as conn:
            r = conn.execute(q).first()
        return _entry(r) if r else None

    def logged_environments(self) -> set[str]:
        """Every environment that ever moved, deleted ones included."""
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(select(t.ref_log.c.environment).distinct())}

    def commits_moved_since(self, since: float) -> set[str]:
        """Every commit an environment moved from or to at or after epoch ``since``."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.ref_log.c.from_commit, t.ref_log.c.to_commit)
                                .where(t.ref_log.c.at >= since)).all()
        return {c for r in rows for c in r if c}

    # writes -------------------------------------------------------------------------------

    def move(self, environment: str, *, expected: str | None, to_commit: str | None,
             who: str, why: str, run_id: int | None = None) -> None:
        """Compare-and-swap an existing environment from ``expected`` to ``to_commit``.

        Raises LeaseError (kind ``conflict``) when it no longer points at ``expected``."""
        with self.engine.begin() as conn:
            _swap(conn, environment, expected=expected, to_commit=to_commit, who=who, why=why,
                  run_id=run_id, now=time.time(), create=None)

    def publish(self, environment: str, *, expected_commit: str | None,
                steps: Mapping[str, str], author: str, git_sha: str | None,
                params: Mapping[str, Any], message: str, run_id: int | None,
                protected: bool = False, code: Mapping[str, str] | None = None,
                merge_parent: str | None = None) -> str:
        """Write a commit and compare-and-swap ``environment`` to it (creating the
        environment on its first publish), in one transaction. Returns the commit id."""
        now = time.time()
        body = json.dumps({"parent": expected_commit, "merge": merge_parent,
                           "steps": sorted(steps.items()), "run": run_id, "at": now})
        commit_id = hashlib.sha256(body.encode()).hexdigest()[:20]
        with self.engine.begin() as conn:
            conn.execute(insert(t.commits).values(
                id=commit_id, parent_id=expected_commit, merge_parent_id=merge_parent,
                created_at=now, author=author, git_sha=git_sha, params=dict(params),
                message=message, run_id=run_id,
                code=dict(code) if code is not None else None))
            conn.execute(insert(t.commit_steps), [
                {"commit_id": commit_id, "step": s, "fingerprint": f} for s, f in steps.items()])
            _swap(conn, environment, expected=expected_commit, to_commit=commit_id,
                  who=author, why=message, run_id=run_id, now=now,
                  create={"protected": protected})
        return commit_id

    def create(self, name: str, *, commit_id: str | None, base: str | None, who: str,
               why: str, protected: bool = False) -> EnvironmentRecord:
        now = time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(t.environments).values(
                    name=name, commit_id=commit_id, version=1, protected=protected, base=base,
                    owner=who, created_at=now, updated_at=now))
                _log(conn, name, None, commit_id, now, who, why, None)
        except IntegrityError as e:
            raise LeaseError(f"environment {name!r} was created by someone else meanwhile",
                             hint=f"pick another name, or `andon env reset {name}`") from e
        env = self.get(name)
        assert env is not None
        return env

    def delete(self, name: str, *, expected: str | None, who: str) -> None:
        """Delete an environment that no run or promotion holds; logged."""
        with self.engine.begin() as conn:
            busy = conn.execute(select(t.leases).where(t.leases.c.environment == name)).first()
            if busy is not None:
                raise LeaseError(f"environment {name!r} is in use by {busy.holder}",
                                 hint="wait for it to finish")
            conn.execute(delete(t.environments).where(t.environments.c.name == name))
            _log(conn, name, expected, None, time.time(), who, "deleted", None)


def _swap(conn: Connection, environment: str, *, expected: str | None, to_commit: str | None,
          who: str, why: str, run_id: int | None, now: float,
          create: Mapping[str, Any] | None) -> None:
    """THE compare-and-swap of an environment, inside the caller's transaction.

    The conditional update comes first, so that SQLite takes its write lock before reading
    anything. When no row matched and ``create`` is given and the environment does not exist
    yet, it is created (with ``create``'s columns)."""
    env = t.environments.c
    held = (env.commit_id == expected) if expected is not None else env.commit_id.is_(None)
    moved = conn.execute(
        update(t.environments).where(env.name == environment, held)
        .values(commit_id=to_commit, version=env.version + 1, updated_at=now)).rowcount
    if moved != 1:
        exists = conn.execute(select(env.name).where(env.name == environment)).first()
        if exists is not None or create is None:
            raise LeaseError(f"environment {environment!r} moved meanwhile; nothing changed",
                             hint=f"look at `andon env log {environment}`; {RUN_AGAIN}")
        try:
            conn.execute(insert(t.environments).values(
                name=environment, commit_id=to_commit, version=1, owner=who,
                created_at=now, updated_at=now, **create))
        except IntegrityError as e:
            raise LeaseError(
                f"environment {environment!r} was created by someone else meanwhile",
                hint=RUN_AGAIN) from e
    _log(conn, environment, expected, to_commit, now, who, why, run_id)


def _log(conn: Connection, environment: str, frm: str | None, to: str | None, now: float,
         who: str, why: str, run_id: int | None) -> None:
    conn.execute(insert(t.ref_log).values(environment=environment, from_commit=frm,
                                          to_commit=to, at=now, who=who, why=why,
                                          run_id=run_id))
