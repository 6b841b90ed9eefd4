"""Typed results of the service layer's reads: frozen records with UTC datetimes.

``to_dict()`` gives the rows the CLI prints (``--format json`` is unchanged: times in the
machine's local time, to the second)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from andon.errors import NotFound

if TYPE_CHECKING:
    from andon.project import Project
    from andon.store import Row


def utc(ts: float | None) -> datetime | None:
    """A store timestamp (seconds since the epoch) as an aware UTC datetime."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _local(at: datetime | None, fmt: str = "%Y-%m-%dT%H:%M:%S") -> str | None:
    return at.astimezone().strftime(fmt) if at else None


def _seconds(started: float, ended: float | None) -> float:
    return (ended or time.time()) - started


@dataclass(frozen=True)
class TableInfo:
    """A table an environment publishes, and the artifact behind it."""

    table: str
    zone: str | None
    kind: str | None
    rows: int
    columns: int
    bytes: int
    fingerprint: str
    built_at: datetime
    owner: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "zone": self.zone, "kind": self.kind, "rows": self.rows,
                "columns": self.columns, "bytes": self.bytes,
                "fingerprint": self.fingerprint[:12],
                "built_at": _local(self.built_at, "%Y-%m-%d %H:%M:%S"), "owner": self.owner}


@dataclass(frozen=True)
class RunSummary:
    """One line of ``andon runs``."""

    id: int
    environment: str
    status: str
    started_at: datetime
    seconds: float
    built: int
    reused: int
    failed: int
    user: str | None
    commit: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "environment": self.environment, "status": self.status,
                "started_at": _local(self.started_at), "seconds": round(self.seconds, 2),
                "built": self.built, "reused": self.reused, "failed": self.failed,
                "user": self.user, "commit": self.commit}


@dataclass(frozen=True)
class StepRun:
    """What one run did with one step."""

    name: str
    action: str
    rows: int | None
    rejects: int | None
    seconds: float
    fingerprint: str | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "rows": self.rows,
                "rejects": self.rejects, "seconds": round(self.seconds, 4),
                "fingerprint": self.fingerprint, "error": self.error}


@dataclass(frozen=True)
class RunDetails:
    """One run in full: ``andon runs show``."""

    id: int
    status: str
    environment: str
    started_at: datetime
    ended_at: datetime | None
    seconds: float
    user: str | None
    git_sha: str | None
    git_dirty: bool | None
    selection: list[str]
    params: dict[str, Any]
    commit: str | None
    error: str | None
    steps: tuple[StepRun, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "environment": self.environment,
                "started_at": _local(self.started_at), "ended_at": _local(self.ended_at),
                "seconds": round(self.seconds, 3), "user": self.user, "git_sha": self.git_sha,
                "git_dirty": self.git_dirty, "selection": self.selection, "params": self.params,
                "commit": self.commit, "error": self.error,
                "steps": [s.to_dict() for s in self.steps]}


def tables(project: Project, environment: str | None = None) -> list[TableInfo]:
    from andon.environments import env_tables

    out = []
    for name, art in env_tables(project, environment).items():
        step = project.dag.steps.get(name)
        out.append(TableInfo(
            table=name, zone=step.zone if step else None, kind=step.kind if step else None,
            rows=int(art["rows"]), columns=len(art["schema"]), bytes=int(art["bytes"]),
            fingerprint=art["fingerprint"], built_at=datetime.fromtimestamp(art["created_at"],
                                                                            UTC),
            owner=step.config.owner if step else None))
    return out


def runs(project: Project, environment: str | None = None, limit: int = 20, *,
         status: str | None = None, before: int | None = None) -> list[RunSummary]:
    out = []
    for r in project.reader.runs(environment, limit, status=status, before=before):
        counts = (r.get("summary") or {}).get("counts", {})
        out.append(RunSummary(
            id=r["id"], environment=r["environment"], status=r["status"],
            started_at=datetime.fromtimestamp(r["started_at"], UTC),
            seconds=_seconds(r["started_at"], r["ended_at"]),
            built=counts.get("built", 0), reused=counts.get("reused", 0),
            failed=counts.get("failed", 0), user=r["user"], commit=r["commit_id"]))
    return out


def _run_id(project: Project, run_ref: str | int) -> int:
    if str(run_ref) == "latest":
        latest = project.reader.latest_run_id()
        if latest is None:
            raise NotFound("no runs yet", hint="start one: andon run")
        return latest
    try:
        return int(run_ref)
    except ValueError:
        raise NotFound(f"{run_ref!r} is not a run id", hint="use a number or 'latest'") from None


def run_details(project: Project, run_ref: str | int) -> RunDetails:
    store = project.reader
    run_id = _run_id(project, run_ref)
    run: Row | None = store.run(run_id)
    if run is None:
        raise NotFound(f"no run {run_id}", hint="list runs: andon runs")
    steps = tuple(
        StepRun(name=s["step"], action=s["action"], rows=s["rows"], rejects=s["rejects"],
                seconds=s["seconds"] or 0.0, fingerprint=s["fingerprint"], error=s["error"])
        for s in store.step_runs(run_id))
    return RunDetails(
        id=run["id"], status=run["status"], environment=run["environment"],
        started_at=datetime.fromtimestamp(run["started_at"], UTC), ended_at=utc(run["ended_at"]),
        seconds=_seconds(run["started_at"], run["ended_at"]), user=run["user"],
        git_sha=run["git_sha"], git_dirty=run["git_dirty"], selection=run["selection"],
        params=run["params"], commit=run["commit_id"], error=run["error"], steps=steps)


__all__ = ["RunDetails", "RunSummary", "StepRun", "TableInfo", "run_details", "runs", "tables"]
