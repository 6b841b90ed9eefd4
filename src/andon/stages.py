"""The stages of a plan: for each step, ``land`` (the new files of a source), ``build`` (or
reuse, with the reason) and ``check`` (the checks its artifact gets, reused or fresh); then one
``publish`` stage for the environment. ``explain`` renders them as rows for a table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from andon.checks.model import Check
    from andon.project import Project
    from andon.store import Row, Store

CheckRun = Literal["fresh", "reused"]
PublishAction = Literal["commit", "none", "refused"]


@dataclass(frozen=True)
class PlannedCheck:
    """One check of an artifact: ``fresh`` runs on it, ``reused`` was judged before on the
    same artifact and inputs (its stored result stands). ``status`` is its result once known
    (a promotion's dry run evaluates them)."""

    name: str
    type: str
    severity: str
    run: CheckRun
    reads: tuple[str, ...] = ()
    status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type, "severity": self.severity,
                             "run": self.run}
        if self.reads:
            d["reads"] = list(self.reads)
        if self.status is not None:
            d["status"] = self.status
        return d


@dataclass(frozen=True)
class LandStage:
    """A source step's files: the new ones it lands, and copies of files landed before."""

    step: str
    files: tuple[str, ...]
    duplicates: tuple[str, ...] = ()

    kind = "land"

    @property
    def action(self) -> str:
        return "land" if self.files else "none"

    @property
    def detail(self) -> str:
        if not self.files:
            text = "no new files"
        else:
            n = len(self.files)
            text = f"{n} new file{'s' if n != 1 else ''}: " + ", ".join(_names(self.files))
        if self.duplicates:
            text += f" ({len(self.duplicates)} already landed, skipped)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.kind, "step": self.step, "action": self.action,
                "files": list(self.files), "duplicates": list(self.duplicates)}


@dataclass(frozen=True)
class BuildStage:
    """Build the step's artifact, or reuse (or keep) a sealed one; ``reason`` says why."""

    step: str
    action: str  # build|reuse|check|keep
    reason: str
    fingerprint: str

    kind = "build"

    @property
    def detail(self) -> str:
        return self.reason or self.action

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.kind, "step": self.step, "action": self.action,
                "reason": self.reason, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class CheckStage:
    """The checks the step's artifact gets."""

    step: str
    checks: tuple[PlannedCheck, ...]

    kind = "check"

    @property
    def action(self) -> str:
        if not self.checks:
            return "none"
        return "run" if any(c.run == "fresh" for c in self.checks) else "reuse"

    @property
    def detail(self) -> str:
        fresh = [c for c in self.checks if c.run == "fresh"]
        reused = [c for c in self.checks if c.run == "reused"]
        parts = []
        if fresh:
            verb = "run" if any(c.status for c in fresh) else "to run"
            parts.append(f"{len(fresh)} {verb}: " + ", ".join(_check_names(self.step, fresh)))
        if reused:
            parts.append(f"{len(reused)} reused: " + ", ".join(_check_names(self.step, reused)))
        return "; ".join(parts) or "no checks"

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.kind, "step": self.step, "action": self.action,
                "checks": [c.to_dict() for c in self.checks]}


@dataclass(frozen=True)
class PublishStage:
    """The environment's move: a new commit (its changed and removed steps), none (nothing
    new), or refused (why not)."""

    environment: str
    action: PublishAction
    reason: str
    base_commit: str | None
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    commit: str | None = None  # known once made (a promotion)

    kind = "publish"
    step = None

    @property
    def detail(self) -> str:
        return self.reason

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.kind, "environment": self.environment, "action": self.action,
                "reason": self.reason, "base_commit": self.base_commit,
                "changed": list(self.changed), "removed": list(self.removed),
                "commit": self.commit}


Stage = LandStage | BuildStage | CheckStage | PublishStage


def explain(stages: Iterable[Stage]) -> list[dict[str, str]]:
    """The stages as table rows: step, stage, action, detail (and a short fingerprint)."""
    rows = []
    for s in stages:
        step = f"({s.environment})" if isinstance(s, PublishStage) else s.step
        fingerprint = s.fingerprint[:12] if isinstance(s, BuildStage) else ""
        rows.append({"step": step, "stage": s.kind, "action": s.action, "detail": s.detail,
                     "fingerprint": fingerprint})
    return rows


def publish_stage(environment: str, base_commit: str | None, base_steps: Mapping[str, str],
                  base_code: Mapping[str, str], steps: Mapping[str, str],
                  code: Mapping[str, str], *, refused: Sequence[str] = ()) -> PublishStage:
    """What publishing ``steps`` (with ``code``) over the environment's commit would do;
    ``refused``: steps whose code a protected environment does not take from a run."""
    changed = tuple(sorted(s for s, fp in steps.items()
                           if base_steps.get(s) != fp or base_code.get(s) != code.get(s)))
    removed = tuple(sorted(s for s in base_steps if s not in steps))
    if refused:
        return PublishStage(
            environment, "refused",
            f"environment {environment!r} is protected and the code of "
            f"{', '.join(sorted(refused))} differs from its last promotion",
            base_commit, changed, removed)
    if base_commit is None:
        return PublishStage(environment, "commit",
                            f"first commit of {environment}: {len(steps)} steps",
                            base_commit, changed, removed)
    if dict(steps) == dict(base_steps) and dict(code) == dict(base_code):
        return PublishStage(environment, "none",
                            f"{environment} stays at commit {base_commit[:12]}: nothing new",
                            base_commit)
    what = [f"{len(changed)} changed" + (f" ({', '.join(changed)})" if changed else "")]
    if removed:
        what.append(f"{len(removed)} removed ({', '.join(removed)})")
    return PublishStage(environment, "commit",
                        f"new commit on {environment} after {base_commit[:12]}: "
                        + ", ".join(what), base_commit, changed, removed)


def planned_checks(project: Project, store: Store, environment: str,
                   steps: Sequence[tuple[str, str, str, str | None]],
                   fps: Mapping[str, str], known: Mapping[str, Row]
                   ) -> dict[str, tuple[PlannedCheck, ...]]:
    """The check stage of each step (name, action, fingerprint, previous fingerprint): a step
    built fresh runs every check; a sealed artifact reuses the results the history holds for
    it and its inputs (the same reuse key the evaluation uses)."""
    out: dict[str, tuple[PlannedCheck, ...]] = {}
    sealed: list[tuple[str, str, str | None]] = []
    building = {name for name, action, _, _ in steps if action == "build"}
    for name, action, fp, previous in steps:
        checks = project.checks_of(name)
        if not checks:
            continue
        if action == "build":
            out[name] = tuple(_planned(c, "fresh") for c in checks)
        else:
            sealed.append((name, fp, previous))
    if not sealed:
        return out
    from andon.checks import history
    from andon.execution.artifacts import manifest_of
    from andon.execution.checking import make_audit, open_engine
    from andon.warehouse import Warehouse

    manifests = {n: manifest_of(known[fp]) for n, fp in fps.items() if fp in known}
    previous_of = {n: manifest_of(known[prev]) for n, fp, prev in sealed
                   if prev and prev != fp and prev in known}
    warehouse = Warehouse(project.warehouse)
    engine = open_engine(project, warehouse)  # contexts only: no database is opened
    try:
        audit = make_audit(project, engine, warehouse, environment, manifests,
                           previous=previous_of)
        for name, fp, _prev in sealed:
            checks = project.checks_of(name)
            keys = {}
            for c in checks:
                if any(r in building for r in c.reads) or not c.kind.reuse:
                    continue  # it reads a table built now, or is never reused (freshness)
                keys[c.name] = (c.check_hash, c.kind.context(audit, c))
            found = history.find_all(store, fp, list(keys.values()))
            out[name] = tuple(
                _planned(c, "reused" if c.name in keys and keys[c.name] in found
                         and found[keys[c.name]]["status"] != "error" else "fresh")
                for c in checks)
    finally:
        engine.close()
    return out


def _planned(c: Check, run: CheckRun) -> PlannedCheck:
    return PlannedCheck(name=c.name, type=c.type, severity=c.severity, run=run,
                        reads=tuple(c.reads))


def _names(paths: Sequence[str], limit: int = 4) -> list[str]:
    names = [p.replace("\\", "/").rsplit("/", 1)[-1] for p in paths]
    return names[:limit] + ([f"… {len(names) - limit} more"] if len(names) > limit else [])


def _check_names(step: str, checks: Sequence[PlannedCheck], limit: int = 4) -> list[str]:
    """Short names (the step is in its own column), each with its severity or its result;
    failures first, since they are what a reader looks for."""
    ordered = sorted(checks, key=lambda c: c.status in (None, "passed"))
    names = [f"{c.name.removeprefix(step + '.')} ({c.status or c.severity}"
             + (f", {c.severity})" if c.status not in (None, "passed") else ")")
             for c in ordered]
    return names[:limit] + ([f"… {len(names) - limit} more"] if len(names) > limit else [])
