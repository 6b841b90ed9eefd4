"""The step walk: builds or reuses each planned step in DAG order, concurrently when
independent, checks each artifact as it is sealed, and stops scheduling when the run's
``CancelToken`` is cancelled (the SQL in flight is interrupted)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from andon.build import BuildContext, Built, build_step
from andon.checks.model import Check
from andon.checks.run import Audit
from andon.errors import AndonError, StepError
from andon.events import Listener, StepResult
from andon.execution.artifacts import artifact_row, manifest_of
from andon.execution.cancel import CancelToken
from andon.execution.checking import (
    Checker,
    check_failure,
    evaluation_failed,
    make_audit,
    open_engine,
)
from andon.execution.pytask import open_runner
from andon.execution.recording import FLUSH_EVERY, Recorder
from andon.kinds import step_kind
from andon.plan import Plan, PlannedStep
from andon.project import Project
from andon.store import Row, Store
from andon.warehouse import ArtifactTampered, Manifest, Warehouse

if TYPE_CHECKING:
    from andon.engines import Engine

# makes the pool that runs steps; threads on this machine by default (a Dask client's
# ``get_executor()`` fits the same interface)
PoolFactory = Callable[[int], Executor]


def thread_pool(workers: int) -> Executor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="andon-step")


class StepWalk:
    """One run's walk over its plan's build and check stages. ``results`` holds each step's
    outcome; the caller (``andon.runner``) decides the run's status and publishes."""

    def __init__(self, project: Project, plan: Plan, store: Store, warehouse: Warehouse,
                 run_id: int, listener: Listener, token: CancelToken,
                 pool: PoolFactory = thread_pool) -> None:
        self.project = project
        self.plan = plan
        self.store = store
        self.warehouse = warehouse
        self.run_id = run_id
        self.listener = listener
        self.token = token
        self.pool_factory = pool
        self.reject_rows: list[Row] = []
        self.recorder = Recorder(store, warehouse, run_id, plan.environment, self.reject_rows)
        self.results: dict[str, StepResult] = {}
        self.artifacts: dict[str, Manifest] = {}
        self.lock = threading.Lock()
        self.deferred: list[Check] = []
        self.checker: Checker | None = None

    def _load_known(self) -> None:
        """Manifests of every artifact the run reads or reuses."""
        wanted = set(self.plan.commit_steps().values())
        wanted |= {s.previous for s in self.plan.steps if s.previous}
        rows = dict(self.plan.known)
        rows.update(self.store.artifacts(wanted - set(rows)))
        for fp, row in rows.items():
            self.artifacts[fp] = manifest_of(row)
        adopted = []
        for s in self.plan.steps:
            if s.action == "reuse" and s.fingerprint not in self.artifacts:
                m = self.warehouse.read_manifest(s.name, s.fingerprint)
                if m is not None:  # sealed by a run that crashed before recording it
                    self.artifacts[s.fingerprint] = m
                    adopted.append(artifact_row(m, None, self.warehouse))
        if adopted:
            self.store.record(artifacts=adopted)

    def walk(self) -> None:
        """Walk every step (then the checks that waited for other tables). Returns when done
        or cancelled (``token.cancelled``); KeyboardInterrupt cancels the token."""
        self._load_known()
        config = self.project.config
        tasks = open_runner(config.executor, config.threads)  # None: Python steps run here
        engine = open_engine(self.project, self.warehouse)
        stop_interrupting = self.token.on_cancel(engine.interrupt)
        stop_cancelling = self.token.on_cancel(tasks.cancel) if tasks else lambda: None
        self.checker = Checker(self._make_audit(engine))
        ctx = BuildContext(
            project=self.project, store=self.store, warehouse=self.warehouse, engine=engine,
            run_id=self.run_id, artifacts=self.artifacts,
            fps={**self.plan.base_steps, **{s.name: s.fingerprint for s in self.plan.steps}},
            reject_rows=self.reject_rows, environment=self.plan.environment,
            backfill=self.plan.backfill, tasks=tasks,
        )
        try:
            self._walk(ctx)
            if not self.token.cancelled:
                self._audit_deferred()
        except KeyboardInterrupt:
            self.token.cancel("Ctrl-C")
        finally:
            stop_interrupting()
            stop_cancelling()
            engine.close()
            if tasks is not None:
                tasks.close()
            if self.token.cancelled:
                self._skip_unstarted()
                # a check interrupted by the cancel "could not run": not a verdict to keep
                self.checker.discard_unrecorded(lambda r: r.status == "error")
            self.recorder.flush(self.checker)

    # scheduling ---------------------------------------------------------------------------

    def _walk(self, ctx: BuildContext) -> None:
        steps = {s.name: s for s in self.plan.steps}
        waiting = {n: {p for p in s.parents if p in steps} for n, s in steps.items()}
        ready = [n for n in steps if not waiting[n]]
        running: dict[Future[StepResult], str] = {}
        inline: str | None = None  # the step being built in this thread
        pool = self.pool_factory(max(1, self.project.config.threads))
        try:
            while (ready or running) and not self.token.cancelled:
                # reuse is bookkeeping: do it inline, no thread hop
                while ready and not self.token.cancelled:
                    name = ready.pop(0)
                    ps = steps[name]
                    if self._blocked(ps):
                        self._finish(self._skipped(ps))
                        self._release(name, waiting, ready)
                    elif ps.action == "reuse" and not ps.checks:
                        self._finish(self._reused(ps))
                        m = self.artifacts.get(ps.fingerprint)
                        if m is not None and self.checker is not None:
                            self.checker.add_manifest(name, m)
                        self._release(name, waiting, ready)
                    elif ps.action in ("reuse", "check"):  # check: rejected before
                        running[pool.submit(self._reuse_checked, ps)] = name
                    elif not ready and not running and step_kind(ps.kind).inline:
                        # the only work there is (a chain of SQL): build it here, no thread
                        # hop; DuckDB stops at once on Ctrl-C or a cancel
                        self.listener.step_started(name, "build")
                        inline = name
                        self._finish(self._build(ctx, ps))
                        inline = None
                        self._release(name, waiting, ready)
                        self.recorder.flush_if_due(self.checker)
                    else:
                        self.listener.step_started(name, "build")
                        running[pool.submit(self._build, ctx, ps)] = name
                if not running:
                    break
                done, _ = wait(running, timeout=FLUSH_EVERY, return_when=FIRST_COMPLETED)
                for fut in done:
                    name = running.pop(fut)
                    self._finish(fut.result())
                    self._release(name, waiting, ready)
                self.recorder.flush_if_due(self.checker)
        except KeyboardInterrupt:
            self.token.cancel("Ctrl-C")  # interrupts the SQL in flight
            if inline is not None:
                self._finish(self._cancelled(steps[inline]))
        if self.token.cancelled:
            # a Python step cannot be interrupted: it is left to finish alone, unrecorded
            pool.shutdown(wait=False, cancel_futures=True)
            for fut, name in running.items():
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    result = fut.result()
                    self._finish(result if result.action != "failed"
                                 else self._cancelled(steps[name]))
                else:
                    self._finish(self._cancelled(steps[name]))
            return
        pool.shutdown(wait=True)

    def _release(self, name: str, waiting: dict[str, set[str]], ready: list[str]) -> None:
        for child in self.project.dag.children.get(name, ()):
            if child in waiting and name in waiting[child]:
                waiting[child].discard(name)
                if not waiting[child]:
                    ready.append(child)

    def _blocked(self, ps: PlannedStep) -> bool:
        return any(
            self.results.get(p) is not None and self.results[p].action in ("failed", "skipped",
                                                                           "cancelled")
            for p in ps.parents
        )

    def _skip_unstarted(self) -> None:
        for ps in self.plan.steps:
            if ps.name not in self.results:
                self._finish(StepResult(ps.name, "skipped", ps.fingerprint,
                                        reason="not started: the run was cancelled"))

    # stages of one step ---------------------------------------------------------------------

    def _build(self, ctx: BuildContext, ps: PlannedStep) -> StepResult:
        t0 = time.perf_counter()
        if self.token.cancelled:
            return self._cancelled(ps)
        try:
            built: Built = build_step(ctx, ps)
        except AndonError as e:
            if self.token.cancelled:
                return self._cancelled(ps)
            if e.step is None:
                e.step = ps.name
            return StepResult(ps.name, "failed", ps.fingerprint, seconds=time.perf_counter() - t0,
                              reason=ps.reason, error=e)
        except Exception as e:  # an andon bug or an engine failure: keep the run honest
            if self.token.cancelled:
                return self._cancelled(ps)
            err = StepError(f"{type(e).__name__}: {e}", step=ps.name)
            return StepResult(ps.name, "failed", ps.fingerprint, seconds=time.perf_counter() - t0,
                              reason=ps.reason, error=err)
        with self.lock:
            self.artifacts[ps.fingerprint] = built.manifest
        self.recorder.sealed(built.manifest)
        failure = self._check_step(ps, built.manifest, fresh=True)
        if failure is not None and self.token.cancelled:
            return self._cancelled(ps)
        return StepResult(ps.name, "failed" if failure else "built", ps.fingerprint,
                          rows=built.manifest.rows, rejects=built.rejects, landed=built.landed,
                          seconds=time.perf_counter() - t0, reason=ps.reason, error=failure)

    def _reuse_checked(self, ps: PlannedStep) -> StepResult:
        result = self._reused(ps)
        if result.action == "failed" or self.token.cancelled:
            return result if result.action == "failed" else self._cancelled(ps)
        m = self.artifacts.get(ps.fingerprint)
        failure = self._check_step(ps, m) if m is not None else None
        if failure is None:
            return result
        if self.token.cancelled:
            return self._cancelled(ps)
        return StepResult(ps.name, "failed", ps.fingerprint, rows=result.rows,
                          reason=ps.reason, error=failure)

    def _check_step(self, ps: PlannedStep, manifest: Manifest, *, fresh: bool = False
                    ) -> AndonError | None:
        """The step's check stage: the checks ready now run here (an error-severity failure
        stops the line); those reading a table not built yet wait for it."""
        assert self.checker is not None
        self.checker.add_manifest(ps.name, manifest)
        if fresh:
            self.checker.classify(ps.name)
        planned = {c.name for c in ps.checks}
        checks = [c for c in self.project.checks_of(ps.name) if c.name in planned]
        now = [c for c in checks if self.checker.ready(c)]
        with self.lock:
            self.deferred += [c for c in checks if c not in now]
        setting = self.project.config.profile
        profile = setting == "all" or (setting == "checked" and bool(checks))
        if not now and not (profile and fresh):
            return None
        return self._evaluate(ps.name, now, profile=profile, fresh=fresh)

    def _evaluate(self, table: str, checks: list[Check], *, profile: bool = True,
                  fresh: bool = False) -> AndonError | None:
        assert self.checker is not None
        try:
            results = self.checker.evaluate(table, checks, profile=profile, fresh=fresh)
        except Exception as e:  # the engine failed under the checks: report, do not publish
            return evaluation_failed(table, e)
        failed = [r for r in results if r.stops_the_line]
        return check_failure(failed) if failed else None

    def _audit_deferred(self) -> None:
        """Checks that read another table run once every table they read is built."""
        assert self.checker is not None
        by_table: dict[str, list[Check]] = {}
        for c in self.deferred:
            r = self.results.get(c.table)
            if r is None or r.action not in ("built", "reused") or not self.checker.ready(c):
                continue
            by_table.setdefault(c.table, []).append(c)
        for table, checks in by_table.items():
            if self.token.cancelled:
                return
            failure = self._evaluate(table, checks)
            if failure is not None and not self.token.cancelled:
                old = self.results[table]
                self._finish(StepResult(table, "failed", old.fingerprint, rows=old.rows,
                                        rejects=old.rejects, landed=old.landed,
                                        seconds=old.seconds, reason=old.reason,
                                        error=failure), verdict_only=True)

    def _make_audit(self, engine: Engine) -> Audit:
        manifests: dict[str, Manifest] = {}
        for name, fp in self.plan.base_steps.items():
            if name not in self.plan.by_name and fp in self.artifacts:
                manifests[name] = self.artifacts[fp]  # tables the run keeps, read by checks
        previous = {s.name: self.artifacts.get(s.previous) for s in self.plan.steps
                    if s.previous and s.previous != s.fingerprint}
        return make_audit(self.project, engine, self.warehouse, self.plan.environment,
                          manifests, previous=previous, run_id=self.run_id)

    def _reused(self, ps: PlannedStep) -> StepResult:
        m = self.artifacts.get(ps.fingerprint)
        if m is not None:
            try:  # by size on every reuse; by hash too before it reaches a protected env
                self.warehouse.verify(m, full=self.project.is_protected(self.plan.environment))
            except ArtifactTampered as e:
                return StepResult(ps.name, "failed", ps.fingerprint, reason=ps.reason, error=e)
        return StepResult(ps.name, "reused", ps.fingerprint, rows=m.rows if m else None,
                          rejects=int(m.meta.get("rejects", 0)) if m else 0, reason=ps.reason)

    def _skipped(self, ps: PlannedStep) -> StepResult:
        bad = [p for p in ps.parents if self.results.get(p) and self.results[p].action != "built"
               and self.results[p].action != "reused"]
        return StepResult(ps.name, "skipped", ps.fingerprint,
                          reason="upstream failed: " + ", ".join(bad))

    def _cancelled(self, ps: PlannedStep) -> StepResult:
        return StepResult(ps.name, "cancelled", ps.fingerprint,
                          reason=f"cancelled ({self.token.reason or 'cancelled'})")

    def _finish(self, result: StepResult, *, verdict_only: bool = False) -> None:
        self.results[result.name] = result
        self.recorder.step(result, verdict_only=verdict_only)
        self.listener.step_finished(result)
