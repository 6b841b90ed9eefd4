"""Environments are named pointers to commits. Creating one copies a pointer (constant time);
every move is appended to the ref log, which is also the time machine."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from andon.errors import AndonError, EnvironmentNotFound, LeaseError, did_you_mean
from andon.store import Row, Store
from andon.store import schema as t

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class EnvironmentError_(AndonError):
    """An environment operation that is not allowed."""


def check_name(name: str) -> str:
    if not NAME_RE.match(name) or name.endswith(".") or ".." in name:
        raise EnvironmentError_(
            f"invalid environment name {name!r}",
            hint="use letters, digits, '_', '-' or '.', starting with a letter or digit "
                 "(at most 63 characters), e.g. feature-kpis",
        )
    return name


def git_branch_name(branch: str) -> str:
    """An environment name for a git branch (``feature/new-kpi`` → ``feature-new-kpi``)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", branch).strip("-.")[:63]
    return check_name(name or "branch")


def require(store: Store, name: str) -> Row:
    env = store.environment(name)
    if env is None:
        known = [e["name"] for e in store.environments()]
        hint = did_you_mean(name, known)
        raise EnvironmentNotFound(
            f"no environment named {name!r}",
            hint=hint or (f"environments: {', '.join(known)}" if known
                          else "run the pipeline first: andon run"),
        )
    return env


def require_for_run(store: Store, name: str, declared: Sequence[str]) -> None:
    """A run goes only into an environment that exists, the default one or one declared in
    andon.yaml (created by their first run): never a typo of one."""
    if name in declared or store.environment(name) is not None:
        return
    known = sorted({e["name"] for e in store.environments()} | set(declared))
    hint = did_you_mean(name, known)
    raise EnvironmentNotFound(
        f"no environment named {name!r}",
        hint=(hint + "; " if hint else "")
        + f"to create it: andon env create {name} [--from ENV]",
    )


def parse_time(text: str) -> float:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise AndonError(f"{text!r} is not a time", hint="write e.g. 2026-11-01T12:00 or "
                                                          "2026-11-01") from None
    return when.timestamp()


@dataclass(frozen=True)
class Ref:
    """A resolved ``ENV``, ``ENV@TIME`` or ``ENV@COMMIT``."""

    environment: str | None
    commit_id: str | None


def resolve(store: Store, ref: str) -> Ref:
    """``prod`` → its head; ``prod@2026-11-01T12:00`` → where it pointed then;
    ``prod@<commit id or prefix>`` or a bare commit id → that commit."""
    env_name, _, at = ref.partition("@")
    if not at:
        env = store.environment(env_name)
        if env is not None:
            return Ref(env_name, env["commit_id"])
        commit = find_commit(store, env_name)
        if commit is not None:
            return Ref(None, commit)
        require(store, env_name)
    require(store, env_name)
    commit = find_commit(store, at)
    if commit is not None:
        return Ref(env_name, commit)
    return Ref(env_name, commit_at(store, env_name, parse_time(at)))


def find_commit(store: Store, prefix: str) -> str | None:
    if not re.fullmatch(r"[0-9a-f]{6,64}", prefix):
        return None
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.commits.c.id).where(t.commits.c.id.like(f"{prefix}%"))
                            .limit(2)).fetchall()
    if len(rows) > 1:
        raise AndonError(f"commit prefix {prefix!r} is ambiguous", hint="give more characters")
    return rows[0][0] if rows else None


def commit_at(store: Store, environment: str, when: float) -> str | None:
    """The commit ``environment`` pointed at, at time ``when`` (time machine)."""
    with store.engine.connect() as conn:
        row = conn.execute(
            select(t.ref_log.c.to_commit, t.ref_log.c.at)
            .where(t.ref_log.c.environment == environment, t.ref_log.c.at <= when)
            .order_by(t.ref_log.c.at.desc(), t.ref_log.c.id.desc()).limit(1)
        ).first()
        first = conn.execute(
            select(t.ref_log.c.at).where(t.ref_log.c.environment == environment)
            .order_by(t.ref_log.c.at).limit(1)
        ).first()
    if row is None:
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(first[0])) if first else None
        raise AndonError(
            f"environment {environment!r} did not exist yet at "
            f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(when))}",
            hint=f"its history starts at {since}" if since else "it has no history",
        )
    return str(row[0]) if row[0] else None


def move(store: Store, environment: str, *, expected: str | None, to_commit: str | None,
         who: str, why: str, run_id: int | None = None) -> None:
    """Compare-and-swap an existing environment to ``to_commit`` and log the move."""
    now = time.time()
    with store.engine.begin() as conn:
        cond = (t.environments.c.commit_id == expected) if expected is not None \
            else t.environments.c.commit_id.is_(None)
        moved = conn.execute(
            update(t.environments).where(t.environments.c.name == environment, cond)
            .values(commit_id=to_commit, version=t.environments.c.version + 1, updated_at=now)
        ).rowcount
        if moved != 1:
            raise LeaseError(f"environment {environment!r} moved meanwhile; nothing changed",
                             hint="look at `andon env log` and try again")
        conn.execute(insert(t.ref_log).values(environment=environment, from_commit=expected,
                                              to_commit=to_commit, at=now, who=who, why=why,
                                              run_id=run_id))


def create(store: Store, name: str, *, source: str | None, who: str, protected: bool = False
           ) -> Row:
    """A new environment pointing where ``source`` (``ENV``, ``ENV@TIME``, ``ENV@COMMIT``)
    points: one row, whatever the size of the data."""
    check_name(name)
    if store.environment(name) is not None:
        raise EnvironmentError_(f"environment {name!r} exists already", kind="conflict",
                                hint=f"pick another name, or `andon env reset {name}`")
    ref = resolve(store, source) if source else Ref(None, None)
    now = time.time()
    with store.engine.begin() as conn:
        conn.execute(insert(t.environments).values(
            name=name, commit_id=ref.commit_id, version=1, protected=protected,
            base=ref.environment or source, owner=who, created_at=now, updated_at=now))
        conn.execute(insert(t.ref_log).values(
            environment=name, from_commit=None, to_commit=ref.commit_id, at=now, who=who,
            why=f"created from {source}" if source else "created empty"))
    env = store.environment(name)
    assert env is not None
    return env


def delete_env(store: Store, name: str, *, protected: bool, who: str) -> None:
    env = require(store, name)
    if protected or env["protected"]:
        raise EnvironmentError_(f"environment {name!r} is protected and cannot be deleted",
                                kind="forbidden",
                                hint="protected environments change only by promotion")
    with store.engine.begin() as conn:
        busy = conn.execute(select(t.leases).where(t.leases.c.environment == name)).first()
        if busy is not None:
            raise LeaseError(f"environment {name!r} is in use by {busy.holder}",
                             hint="wait for it to finish")
        conn.execute(delete(t.environments).where(t.environments.c.name == name))
        conn.execute(insert(t.ref_log).values(environment=name, from_commit=env["commit_id"],
                                              to_commit=None, at=time.time(), who=who,
                                              why="deleted"))


def reset(store: Store, name: str, to: str, *, who: str, protected: bool = False
          ) -> str | None:
    """Point ``name`` at a commit or at where it was at a time (rollback); logged.

    A protected environment goes back only to a commit it has pointed at before: code and
    data from elsewhere reach it by promotion, after its checks."""
    env = require(store, name)
    commit = find_commit(store, to)
    if commit is None:
        commit = commit_at(store, name, parse_time(to))
    elif protected or env["protected"]:
        history = {r["to_commit"] for r in store.ref_log(name)}
        if commit not in history:
            raise EnvironmentError_(
                f"environment {name!r} is protected and never pointed at commit {commit}; "
                "nothing was changed", kind="forbidden",
                hint=f"roll back to one of its own commits (andon env log {name}), or "
                     f"promote the environment that holds it: andon promote ENV --to {name}",
            )
    move(store, name, expected=env["commit_id"], to_commit=commit, who=who,
         why=f"reset to {to}")
    return commit


def listing(store: Store, protected_of: Any) -> list[Row]:
    out = []
    for e in store.environments():
        last = store.runs(e["name"], limit=1)
        out.append({
            "name": e["name"], "commit": e["commit_id"], "base": e["base"],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(e["created_at"])),
            "owner": e["owner"], "protected": bool(protected_of(e["name"]) or e["protected"]),
            "last_run": f"{last[0]['id']} {last[0]['status']}" if last else None,
        })
    return out


def log(store: Store, name: str) -> list[Row]:
    if not store.ref_log(name):
        require(store, name)
    return [{"at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(r["at"])), "who": r["who"],
             "why": r["why"], "from": r["from_commit"], "to": r["to_commit"], "run": r["run_id"]}
            for r in store.ref_log(name)]


def ancestors(store: Store, commit_id: str | None) -> list[str]:
    """The commit and its first- and merge-parents, nearest first."""
    out: list[str] = []
    frontier = [commit_id] if commit_id else []
    seen: set[str] = set()
    with store.engine.connect() as conn:
        while frontier:
            cid = frontier.pop(0)
            if cid in seen:
                continue
            seen.add(cid)
            out.append(cid)
            row = conn.execute(select(t.commits.c.parent_id, t.commits.c.merge_parent_id)
                               .where(t.commits.c.id == cid)).first()
            if row is not None:
                frontier += [p for p in (row[0], row[1]) if p]
    return out


def merge_base(store: Store, a: str | None, b: str | None) -> str | None:
    mine = ancestors(store, a)
    theirs = set(ancestors(store, b))
    return next((c for c in mine if c in theirs), None)
