"""What a run reports while it goes: listeners get plan, step and run events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from andon.errors import AndonError


@dataclass(frozen=True)
class StepResult:
    name: str
    action: str  # built|reused|kept|failed|skipped|cancelled
    fingerprint: str
    rows: int | None = None
    rejects: int = 0
    landed: int = 0
    seconds: float = 0.0
    reason: str = ""
    error: AndonError | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "fingerprint": self.fingerprint,
            "rows": self.rows,
            "rejects": self.rejects,
            "landed_files": self.landed,
            "seconds": round(self.seconds, 4),
            "reason": self.reason,
            "error": self.error.render() if self.error else None,
        }


@dataclass(frozen=True)
class RunResult:
    run_id: int
    environment: str
    status: str  # succeeded|failed|cancelled
    steps: tuple[StepResult, ...]
    commit_id: str | None
    previous_commit: str | None
    seconds: float
    error: AndonError | None = field(default=None, compare=False)
    checks: tuple[Any, ...] = ()  # CheckResult

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.steps:
            out[s.action] = out.get(s.action, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.run_id,
            "environment": self.environment,
            "status": self.status,
            "commit": self.commit_id,
            "previous_commit": self.previous_commit,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "steps": [s.to_dict() for s in self.steps],
            "checks": [c.to_dict() for c in self.checks],
            "error": self.error.render() if self.error else None,
        }


class Listener(Protocol):
    def run_started(self, run_id: int, plan: Any) -> None: ...
    def step_started(self, name: str, action: str) -> None: ...
    def step_finished(self, result: StepResult) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


class NullListener:
    def run_started(self, run_id: int, plan: Any) -> None:
        pass

    def step_started(self, name: str, action: str) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        pass

    def run_finished(self, result: RunResult) -> None:
        pass
