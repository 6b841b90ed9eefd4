"""What a run writes: step runs, sealed artifacts, check results and rejected rows, batched
into the store; and the publish stage, one compare-and-swap of the environment."""

from __future__ import annotations

import threading
import time

from andon.events import StepResult
from andon.execution.artifacts import artifact_row
from andon.execution.checking import Checker
from andon.plan import Plan
from andon.store import Row, Store
from andon.warehouse import Manifest, Warehouse

FLUSH_EVERY = 0.5  # seconds between batched store writes


class Recorder:
    """Collects a run's rows from any thread; ``flush`` writes them in one transaction."""

    def __init__(self, store: Store, warehouse: Warehouse, run_id: int, environment: str,
                 reject_rows: list[Row]) -> None:
        self.store = store
        self.warehouse = warehouse
        self.run_id = run_id
        self.environment = environment
        self.reject_rows = reject_rows  # the build appends to it
        self.lock = threading.Lock()
        self.step_runs: list[Row] = []
        self.artifacts: list[Row] = []
        self.last_flush = time.monotonic()

    def sealed(self, manifest: Manifest) -> None:
        with self.lock:
            self.artifacts.append(artifact_row(manifest, self.run_id, self.warehouse))

    def step(self, result: StepResult, *, verdict_only: bool = False) -> None:
        """A step's result; ``verdict_only``: a later verdict on a step already recorded
        (its deferred checks failed), which took no time of its own."""
        with self.lock:
            self.step_runs.append({
                "run_id": self.run_id,
                "step": result.name,
                "action": result.action,
                "fingerprint": result.fingerprint,
                "rows": result.rows,
                "rejects": result.rejects,
                "seconds": 0.0 if verdict_only else result.seconds,
                "started_at": time.time() - (0.0 if verdict_only else result.seconds),
                "error": result.error.render() if result.error else None,
            })

    def flush_if_due(self, checker: Checker | None) -> None:
        if time.monotonic() - self.last_flush > FLUSH_EVERY:
            self.flush(checker)

    def flush(self, checker: Checker | None) -> None:
        from andon.checks import history

        self.last_flush = time.monotonic()
        with self.lock:
            step_runs, self.step_runs = self.step_runs, []
            artifacts, self.artifacts = self.artifacts, []
            n = len(self.reject_rows)
            rejects = self.reject_rows[:n]
            del self.reject_rows[:n]
        checks = checker.unrecorded() if checker is not None else []
        if step_runs or artifacts:
            self.store.record(step_runs=step_runs, artifacts=artifacts)
        if checks:
            history.record(self.store, checks, run_id=self.run_id, environment=self.environment)
        if rejects:
            self.store.add_rejects(rejects)


def publish(store: Store, plan: Plan, *, run_id: int, user: str, git_sha: str | None,
            protected: bool) -> str | None:
    """The publish stage: move the environment to the plan's commit in one compare-and-swap
    (nothing to do when the plan's publish stage says so). Returns the environment's commit;
    raises LeaseError when another writer moved it first."""
    if plan.publish.action != "commit":
        return plan.base_commit
    return store.publish(
        plan.environment,
        expected_commit=plan.base_commit,
        steps=plan.commit_steps(),
        author=user,
        git_sha=git_sha,
        params=plan.params,
        message=f"run {run_id}",
        run_id=run_id,
        protected=protected,
        code=plan.commit_code(),
    )


__all__ = ["FLUSH_EVERY", "Recorder", "publish"]
