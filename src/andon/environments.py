"""Environments are named pointers to commits. Creating one copies a pointer (constant time);
every move is appended to the ref log, which is also the time machine."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError, EnvironmentNotFound, NotFound, did_you_mean
from andon.store import Row, Store, StoreReader

if TYPE_CHECKING:
    from andon.project import Project

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


def require(store: StoreReader, name: str) -> Row:
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


def find_commit(store: StoreReader, prefix: str) -> str | None:
    if not re.fullmatch(r"[0-9a-f]{6,64}", prefix):
        return None
    ids = store.envs.commits_with_prefix(prefix, limit=2)
    if len(ids) > 1:
        raise AndonError(f"commit prefix {prefix!r} is ambiguous", hint="give more characters")
    return ids[0] if ids else None


def commit_at(store: StoreReader, environment: str, when: float) -> str | None:
    """The commit ``environment`` pointed at, at time ``when`` (time machine)."""
    row = store.envs.last_move_before(environment, when)
    if row is None:
        first = store.envs.first_move(environment)
        since = (time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(first.at.timestamp()))
                 if first else None)
        raise AndonError(
            f"environment {environment!r} did not exist yet at "
            f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(when))}",
            hint=f"its history starts at {since}" if since else "it has no history",
        )
    return row.to_commit


def create(store: Store, name: str, *, source: str | None, who: str, protected: bool = False
           ) -> Row:
    """A new environment pointing where ``source`` (``ENV``, ``ENV@TIME``, ``ENV@COMMIT``)
    points: one row, whatever the size of the data."""
    check_name(name)
    if store.environment(name) is not None:
        raise EnvironmentError_(f"environment {name!r} exists already", kind="conflict",
                                hint=f"pick another name, or `andon env reset {name}`")
    ref = resolve(store, source) if source else Ref(None, None)
    return store.envs.create(
        name, commit_id=ref.commit_id, base=ref.environment or source, who=who,
        protected=protected,
        why=f"created from {source}" if source else "created empty").as_dict()


def delete_env(store: Store, name: str, *, protected: bool, who: str) -> None:
    env = require(store, name)
    if protected or env["protected"]:
        raise EnvironmentError_(f"environment {name!r} is protected and cannot be deleted",
                                kind="forbidden",
                                hint="protected environments change only by promotion")
    store.envs.delete(name, expected=env["commit_id"], who=who)


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
    store.envs.move(name, expected=env["commit_id"], to_commit=commit, who=who,
                    why=f"reset to {to}")
    return commit


def listing(store: StoreReader, protected_of: Any) -> list[Row]:
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


def log(store: StoreReader, name: str) -> list[Row]:
    moves = store.ref_log(name)
    if not moves:
        require(store, name)
    return [{"at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(r["at"])), "who": r["who"],
             "why": r["why"], "from": r["from_commit"], "to": r["to_commit"], "run": r["run_id"]}
            for r in moves]


def ancestors(store: Store, commit_id: str | None) -> list[str]:
    """The commit and its first- and merge-parents, nearest first."""
    out: list[str] = []
    frontier = [commit_id] if commit_id else []
    seen: set[str] = set()
    while frontier:
        cid = frontier.pop(0)
        if cid in seen:
            continue
        seen.add(cid)
        out.append(cid)
        frontier += store.envs.parents(cid)
    return out


def merge_base(store: Store, a: str | None, b: str | None) -> str | None:
    mine = ancestors(store, a)
    theirs = set(ancestors(store, b))
    return next((c for c in mine if c in theirs), None)


def env_tables(project: Project, environment: str | None = None, *,
               as_of: str | None = None, commit: str | None = None) -> dict[str, Row]:
    """Table name → artifact row, for what ``environment`` points at (now, at ``as_of``, or
    a given ``commit``: the time machine)."""
    environment = environment or project.config.default_environment
    store = project.reader
    if commit is not None:
        found = find_commit(store, commit)
        if found is None:
            raise NotFound(f"no commit {commit!r}", hint="see commits with: andon env log ENV")
        return _mapping_rows(project, store.commit_steps(found))
    env = store.environment(environment)
    if env is None and as_of is not None and store.ref_log(environment):
        env = {"commit_id": None}  # deleted since: its history stays readable
    if env is None:
        known = [e["name"] for e in store.environments()]
        hint = did_you_mean(environment, known)
        raise EnvironmentNotFound(
            f"no environment named {environment!r}"
            + (" yet" if not known else ""),
            hint=hint or ("run the pipeline first: andon run" if not known
                          else f"environments: {', '.join(known)}"),
        )
    commit_id = env["commit_id"]
    if as_of is not None:
        commit_id = commit_at(store, environment, parse_time(as_of))
    return _mapping_rows(project, store.commit_steps(commit_id))


def _mapping_rows(project: Project, mapping: dict[str, str]) -> dict[str, Row]:
    rows = project.reader.artifacts(mapping.values())
    return {step: rows[fp] for step, fp in sorted(mapping.items()) if fp in rows}
