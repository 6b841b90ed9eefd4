"""The runner walks a plan: builds or reuses each step in DAG order, concurrently when
independent, then publishes with one compare-and-swap of the environment (write–audit–publish).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import subprocess
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from andon.build import BuildContext, Built, build_step
from andon.engines.duckdb import DuckDBEngine
from andon.errors import AndonError, LeaseError, StepError
from andon.events import Listener, NullListener, RunResult, StepResult
from andon.plan import Plan, PlannedStep, make_plan
from andon.project import Project
from andon.store import Row, Store
from andon.warehouse import Manifest, Warehouse

FLUSH_EVERY = 0.5  # seconds between batched store writes
HEARTBEAT_EVERY = 30.0


def current_user() -> str:
    return os.environ.get("ANDON_USER") or getpass.getuser()


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """The git commit of the project and whether its tree has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None, None
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10
        )
        return sha.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def manifest_of(row: Row) -> Manifest:
    return Manifest(
        fingerprint=row["fingerprint"],
        step=row["step"],
        code_hash=row["code_hash"],
        files=tuple(row["files"]),
        rows=int(row["rows"]),
        bytes=int(row["bytes"]),
        schema=tuple((str(a), str(b)) for a, b in row["schema"]),
        meta=dict(row.get("meta") or {}),
    )


def artifact_row(m: Manifest, run_id: int | None, warehouse: Warehouse) -> Row:
    return {
        "fingerprint": m.fingerprint,
        "step": m.step,
        "code_hash": m.code_hash,
        "path": warehouse.rel(warehouse.artifact_dir(m.step, m.fingerprint)),
        "rows": m.rows,
        "bytes": m.bytes,
        "schema": [list(c) for c in m.schema],
        "files": list(m.files),
        "meta": m.meta,
        "created_at": time.time(),
        "run_id": run_id,
    }


def run(
    project: Project,
    environment: str | None = None,
    selection: Sequence[str] = (),
    *,
    listener: Listener | None = None,
    wait_for_lease: float = 0.0,
) -> RunResult:
    """Plan and execute a run of ``selection`` in ``environment``; publish if all succeed."""
    environment = environment or project.config.default_environment
    listener = listener or NullListener()
    store = project.store
    warehouse = Warehouse(project.warehouse)
    warehouse.ensure()
    user = current_user()
    sha, dirty = git_state(project.root)
    run_id = store.begin_run(
        environment, user=user, git_sha=sha, git_dirty=dirty, selection=list(selection),
        params=project.params, base_commit=None,
    )
    started = time.perf_counter()
    try:
        _acquire(store, environment, run_id, wait_for_lease)
    except LeaseError as e:
        store.finish_run(run_id, "failed", error=e.render())
        raise
    stop_heartbeat = threading.Event()
    beat = threading.Thread(
        target=_heartbeat, args=(store, environment, run_id, stop_heartbeat), daemon=True
    )
    beat.start()
    try:
        warehouse.clean_staging()
        try:
            plan = make_plan(project, environment, tuple(selection), store=store,
                             warehouse=warehouse)
        except AndonError as e:
            store.finish_run(run_id, "failed", error=e.render())
            raise
        listener.run_started(run_id, plan)
        executor = _Execution(project, plan, store, warehouse, run_id, listener)
        result = executor.execute(started, user, sha)
        listener.run_finished(result)
        return result
    finally:
        stop_heartbeat.set()
        store.release_lease(environment, run_id)


def _acquire(store: Store, environment: str, run_id: int, wait_for: float) -> None:
    deadline = time.monotonic() + wait_for
    while True:
        try:
            store.acquire_lease(environment, run_id)
            return
        except LeaseError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def _heartbeat(store: Store, environment: str, run_id: int, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_EVERY):
        # a missed heartbeat only makes the lease look older
        with contextlib.suppress(Exception):
            store.heartbeat(environment, run_id)


class _Execution:
    def __init__(self, project: Project, plan: Plan, store: Store, warehouse: Warehouse,
                 run_id: int, listener: Listener) -> None:
        self.project = project
        self.plan = plan
        self.store = store
        self.warehouse = warehouse
        self.run_id = run_id
        self.listener = listener
        self.pending_step_runs: list[Row] = []
        self.pending_artifacts: list[Row] = []
        self.reject_rows: list[Row] = []
        self.results: dict[str, StepResult] = {}
        self.artifacts: dict[str, Manifest] = {}
        self.lock = threading.Lock()
        self.cancel = threading.Event()

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

    def execute(self, started: float, user: str, git_sha: str | None) -> RunResult:
        self._load_known()
        engine = DuckDBEngine(threads=self.project.config.threads,
                              memory_limit=self.project.config.memory_limit)
        ctx = BuildContext(
            project=self.project, store=self.store, warehouse=self.warehouse, engine=engine,
            run_id=self.run_id, artifacts=self.artifacts,
            fps={**self.plan.base_steps, **{s.name: s.fingerprint for s in self.plan.steps}},
            reject_rows=self.reject_rows,
        )
        error: AndonError | None = None
        status = "succeeded"
        try:
            self._walk(ctx)
        except KeyboardInterrupt:
            status = "cancelled"
            error = AndonError("run cancelled (Ctrl-C); the environment was not changed",
                               hint="run again: every artifact already sealed is reused")
        finally:
            engine.close()
            self._flush()
        failed = [r for r in self.results.values() if r.action == "failed"]
        if status == "succeeded" and failed:
            status = "failed"
            first = failed[0].error
            error = first if first is not None else StepError("a step failed")
        commit_id = self.plan.base_commit
        if status == "succeeded":
            mapping = self.plan.commit_steps()
            if mapping != self.plan.base_steps or self.plan.base_commit is None:
                try:
                    commit_id = self.store.publish(
                        self.plan.environment,
                        expected_commit=self.plan.base_commit,
                        steps=mapping,
                        author=user,
                        git_sha=git_sha,
                        params=self.plan.params,
                        message=f"run {self.run_id}",
                        run_id=self.run_id,
                        protected=self.plan.environment == "prod",
                    )
                except LeaseError as e:
                    status, error = "failed", e
        ordered = tuple(self.results[s.name] for s in self.plan.steps if s.name in self.results)
        result = RunResult(
            run_id=self.run_id,
            environment=self.plan.environment,
            status=status,
            steps=ordered,
            commit_id=commit_id if status == "succeeded" else None,
            previous_commit=self.plan.base_commit,
            seconds=time.perf_counter() - started,
            error=error,
        )
        self.store.finish_run(
            self.run_id, status,
            error=error.render() if error else None,
            commit_id=result.commit_id,
            summary={"counts": result.counts(), "seconds": round(result.seconds, 3),
                     "base_commit": self.plan.base_commit},
        )
        return result

    # scheduling ---------------------------------------------------------------------------

    def _walk(self, ctx: BuildContext) -> None:
        steps = {s.name: s for s in self.plan.steps}
        waiting = {n: {p for p in s.parents if p in steps} for n, s in steps.items()}
        ready = [n for n in steps if not waiting[n]]
        running: dict[Future[StepResult], str] = {}
        last_flush = time.monotonic()
        workers = max(1, self.project.config.threads)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="andon-step")
        try:
            while ready or running:
                # reuse is bookkeeping: do it inline, no thread hop
                while ready:
                    name = ready.pop(0)
                    ps = steps[name]
                    if self._blocked(ps):
                        self._finish(self._skipped(ps))
                        self._release(name, waiting, ready)
                    elif ps.action == "reuse":
                        self._finish(self._reused(ps))
                        self._release(name, waiting, ready)
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
                if time.monotonic() - last_flush > FLUSH_EVERY:
                    self._flush()
                    last_flush = time.monotonic()
        except KeyboardInterrupt:
            self.cancel.set()
            ctx.engine.interrupt()  # SQL stops at once; a Python step is left to finish alone
            pool.shutdown(wait=False, cancel_futures=True)
            for name in running.values():
                self._finish(self._cancelled(steps[name]))
            raise
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

    def _build(self, ctx: BuildContext, ps: PlannedStep) -> StepResult:
        t0 = time.perf_counter()
        if self.cancel.is_set():
            return self._cancelled(ps)
        try:
            built: Built = build_step(ctx, ps)
        except AndonError as e:
            if e.step is None:
                e.step = ps.name
            return StepResult(ps.name, "failed", ps.fingerprint, seconds=time.perf_counter() - t0,
                              reason=ps.reason, error=e)
        except Exception as e:  # an andon bug or an engine failure: keep the run honest
            if self.cancel.is_set():
                return self._cancelled(ps)
            err = StepError(f"{type(e).__name__}: {e}", step=ps.name)
            return StepResult(ps.name, "failed", ps.fingerprint, seconds=time.perf_counter() - t0,
                              reason=ps.reason, error=err)
        with self.lock:
            self.artifacts[ps.fingerprint] = built.manifest
            self.pending_artifacts.append(artifact_row(built.manifest, self.run_id,
                                                       self.warehouse))
        return StepResult(ps.name, "built", ps.fingerprint, rows=built.manifest.rows,
                          rejects=built.rejects, landed=built.landed,
                          seconds=time.perf_counter() - t0, reason=ps.reason)

    def _reused(self, ps: PlannedStep) -> StepResult:
        m = self.artifacts.get(ps.fingerprint)
        return StepResult(ps.name, "reused", ps.fingerprint, rows=m.rows if m else None,
                          rejects=int(m.meta.get("rejects", 0)) if m else 0, reason=ps.reason)

    def _skipped(self, ps: PlannedStep) -> StepResult:
        bad = [p for p in ps.parents if self.results.get(p) and self.results[p].action != "built"
               and self.results[p].action != "reused"]
        return StepResult(ps.name, "skipped", ps.fingerprint,
                          reason="upstream failed: " + ", ".join(bad))

    def _cancelled(self, ps: PlannedStep) -> StepResult:
        return StepResult(ps.name, "cancelled", ps.fingerprint, reason="cancelled")

    def _finish(self, result: StepResult) -> None:
        self.results[result.name] = result
        with self.lock:
            self.pending_step_runs.append({
                "run_id": self.run_id,
                "step": result.name,
                "action": result.action,
                "fingerprint": result.fingerprint,
                "rows": result.rows,
                "rejects": result.rejects,
                "seconds": result.seconds,
                "started_at": time.time() - result.seconds,
                "error": result.error.render() if result.error else None,
            })
        self.listener.step_finished(result)

    def _flush(self) -> None:
        with self.lock:
            step_runs, self.pending_step_runs = self.pending_step_runs, []
            artifacts, self.pending_artifacts = self.pending_artifacts, []
            n = len(self.reject_rows)
            rejects = self.reject_rows[:n]
            del self.reject_rows[:n]
        if step_runs or artifacts:
            self.store.record(step_runs=step_runs, artifacts=artifacts)
        if rejects:
            self.store.add_rejects(rejects)


def plan(project: Project, environment: str | None = None,
         selection: Sequence[str] = ()) -> Plan:
    return make_plan(project, environment or project.config.default_environment,
                     tuple(selection))


__all__ = ["current_user", "git_state", "plan", "run"]


