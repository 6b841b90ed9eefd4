"""The runner walks a plan: builds or reuses each step in DAG order, concurrently when
independent, then publishes with one compare-and-swap of the environment (write–audit–publish).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from andon.alerts import send_alerts
from andon.build import BuildContext, Built, build_step
from andon.checks import history
from andon.checks.model import Check, CheckResult
from andon.checks.run import Audit, Outcome, evaluate, ready
from andon.checks.summary import tally
from andon.engines.duckdb import DuckDBEngine
from andon.environments import check_name, require_for_run
from andon.errors import AndonError, LeaseError, StepError
from andon.events import Listener, NullListener, RunResult, StepResult
from andon.kinds import step_kind
from andon.plan import Plan, PlannedStep, make_plan
from andon.project import Project
from andon.secrets import stored_values
from andon.store import Row, Store
from andon.warehouse import ArtifactTampered, Manifest, Warehouse


class CheckFailed(StepError):
    """An error-severity check failed: the artifact is rejected and the line stops."""


def check_failure(failed: list[CheckResult]) -> CheckFailed:
    first = failed[0]
    lines = []
    for r in failed:
        verb = "could not run" if r.status == "error" else "failed"
        lines.append(f"check {r.name!r} ({r.type}) {verb} on {r.table}: {r.message}")
        for row in r.sample[:3]:
            lines.append("    e.g. " + ", ".join(f"{k}={v}" for k, v in list(row.items())[:8]))
    return CheckFailed(
        f"{tally(failed)}: " + ", ".join(r.name for r in failed),
        step=first.table,
        detail="\n".join(lines),
        hint="the artifact was rejected and nothing downstream was published; fix the data "
             "or the step, or lower the check's severity",
    )


FLUSH_EVERY = 0.5  # seconds between batched store writes
HEARTBEAT_EVERY = 30.0


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


def artifact_lookups(store: Store) -> tuple[
        Callable[[str, str | None], Manifest | None], Callable[[str, str], Manifest | None]]:
    """Checks that read other commits or environments: a table's artifact at a commit, and
    in an environment now."""

    def at_commit(table: str, commit_id: str | None) -> Manifest | None:
        fp = store.commit_steps(commit_id).get(table)
        row = store.artifact(fp) if fp else None
        return manifest_of(row) if row else None

    def in_env(table: str, environment: str) -> Manifest | None:
        env = store.environment(environment)
        return at_commit(table, env["commit_id"]) if env else None

    return at_commit, in_env


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
    backfill: tuple[str, str] | None = None,
    user: str,
) -> RunResult:
    """Plan and execute a run of ``selection`` in ``environment``; publish if all succeed.
    ``user`` is recorded as its author; who may run is decided by the caller
    (``andon.Session``)."""
    environment = environment or project.environment or project.config.default_environment
    check_name(environment)
    require_for_run(project.store, environment,
                    [project.config.default_environment, *project.config.environments])
    project = project.for_environment(environment)  # its parameters may differ
    listener = listener or NullListener()
    store = project.store
    warehouse = Warehouse(project.warehouse)
    warehouse.ensure()
    protected = project.is_protected(environment)
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
                             warehouse=warehouse, backfill=check_window(backfill))
            if protected:
                refuse_code_changes(plan)
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


def check_window(window: tuple[str, str] | None) -> tuple[str, str] | None:
    """A backfill interval [start, end): two ISO dates or times, start before end."""
    if window is None:
        return None
    from datetime import datetime

    try:
        start, end = (datetime.fromisoformat(v) for v in window)
    except ValueError:
        raise AndonError(f"bad backfill interval {window[0]!r} .. {window[1]!r}",
                         hint="give ISO dates or times: --start 2013-03-01 --end 2013-04-01"
                         ) from None
    if start >= end:
        raise AndonError(f"backfill start {window[0]} is not before end {window[1]}",
                         hint="the interval is [start, end): end is excluded")
    return window


def refuse_code_changes(plan: Plan) -> None:
    """A protected environment runs exactly the step code of its last promotion."""
    if plan.base_commit is None:
        return  # the first run creates the environment
    changed = []
    for s in plan.steps:
        if plan.base_code:
            if plan.base_code.get(s.name) != s.template_hash:
                changed.append(s.name)
            continue
        prev = plan.known.get(s.previous) if s.previous else None
        if s.previous is None or (prev is not None and prev["code_hash"] != s.code_hash):
            changed.append(s.name)
    if plan.complete:
        names = {s.name for s in plan.steps}
        changed += [n for n in plan.base_steps if n not in names]
    if changed:
        raise ProtectedEnvironment(
            f"environment {plan.environment!r} is protected and the code of "
            f"{', '.join(sorted(changed))} differs from its last promotion; nothing was run",
            hint=f"run the change in a branch environment (andon env create dev --from "
                 f"{plan.environment}; andon run --env dev), then andon promote dev --to "
                 f"{plan.environment}",
        )


class ProtectedEnvironment(AndonError):
    """Changed code in a protected environment: it takes code only by promotion."""

    kind = "forbidden"


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
        self.check_outcomes: list[Outcome] = []
        self.pending_checks: list[tuple[CheckResult, str]] = []
        self.deferred: list[Check] = []

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
                              memory_limit=self.project.config.memory_limit,
                              allowed=[self.warehouse.root])  # steps read only artifacts
        self.audit = self._make_audit(engine)
        ctx = BuildContext(
            project=self.project, store=self.store, warehouse=self.warehouse, engine=engine,
            run_id=self.run_id, artifacts=self.artifacts,
            fps={**self.plan.base_steps, **{s.name: s.fingerprint for s in self.plan.steps}},
            reject_rows=self.reject_rows, environment=self.plan.environment,
            backfill=self.plan.backfill,
        )
        error: AndonError | None = None
        status = "succeeded"
        try:
            self._walk(ctx)
            self._audit_deferred()
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
            code = self.plan.commit_code()
            if (mapping != self.plan.base_steps or self.plan.base_commit is None
                    or code != self.plan.base_code):
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
                        protected=self.project.is_protected(self.plan.environment),
                        code=code,
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
            checks=tuple(r for r, _, _ in self.check_outcomes),
        )
        self.store.finish_run(
            self.run_id, status,
            error=error.render() if error else None,
            commit_id=result.commit_id,
            summary={"counts": result.counts(), "seconds": round(result.seconds, 3),
                     "base_commit": self.plan.base_commit},
        )
        # after the run is recorded: a slow channel never holds its status back
        send_alerts(self.project, result, [r for r, _, fresh in self.check_outcomes if fresh])
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
                    elif ps.action == "reuse" and not self.project.checks_of(name):
                        self._finish(self._reused(ps))
                        with self.lock:
                            m = self.artifacts.get(ps.fingerprint)
                            if m is not None:
                                self.audit.manifests = {**self.audit.manifests, name: m}
                        self._release(name, waiting, ready)
                    elif ps.action in ("reuse", "check"):  # check: rejected before
                        running[pool.submit(self._reuse_checked, ps)] = name
                    elif not ready and not running and step_kind(ps.kind).inline:
                        # the only work there is (a chain of SQL): build it here, no thread
                        # hop; DuckDB stops at once on Ctrl-C
                        self.listener.step_started(name, "build")
                        self._finish(self._build(ctx, ps))
                        self._release(name, waiting, ready)
                        if time.monotonic() - last_flush > FLUSH_EVERY:
                            self._flush()
                            last_flush = time.monotonic()
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
        failure = self._check_step(ps.name, built.manifest, fresh=True)
        return StepResult(ps.name, "failed" if failure else "built", ps.fingerprint,
                          rows=built.manifest.rows, rejects=built.rejects, landed=built.landed,
                          seconds=time.perf_counter() - t0, reason=ps.reason, error=failure)

    def _reuse_checked(self, ps: PlannedStep) -> StepResult:
        result = self._reused(ps)
        if result.action == "failed":
            return result
        m = self.artifacts.get(ps.fingerprint)
        failure = self._check_step(ps.name, m) if m is not None else None
        if failure is None:
            return result
        return StepResult(ps.name, "failed", ps.fingerprint, rows=result.rows,
                          reason=ps.reason, error=failure)

    # checks -------------------------------------------------------------------------------

    def _make_audit(self, engine: DuckDBEngine) -> Audit:
        manifests: dict[str, Manifest] = {}
        for name, fp in self.plan.base_steps.items():
            if name not in self.plan.by_name and fp in self.artifacts:
                manifests[name] = self.artifacts[fp]
        previous = {s.name: self.artifacts.get(s.previous) for s in self.plan.steps
                    if s.previous and s.previous != s.fingerprint}
        store = self.store

        manifest_at, in_env = artifact_lookups(store)
        return Audit(
            store=store, engine=engine, warehouse=self.warehouse,
            environment=self.plan.environment, run_id=self.run_id, manifests=manifests,
            previous=previous, pii=self.project.pii_of, other_env_manifest=in_env,
            baseline_manifest=manifest_at,
            secrets=stored_values(store, self.project.root),
        )

    def _check_step(self, table: str, manifest: Manifest, *, fresh: bool = False
                    ) -> AndonError | None:
        """Run the ready checks of a table; an error-severity failure stops the line here."""
        with self.lock:
            self.audit.manifests = {**self.audit.manifests, table: manifest}
        checks = self.project.checks_of(table)
        now = [c for c in checks if ready(self.audit, c)]
        with self.lock:
            self.deferred += [c for c in checks if c not in now]
        setting = self.project.config.profile
        profile = setting == "all" or (setting == "checked" and bool(checks))
        if not now and not (profile and fresh):
            return None
        return self._evaluate(table, now, profile=profile, fresh=fresh)

    def _evaluate(self, table: str, checks: list[Check], *, profile: bool = True,
                  fresh: bool = False) -> AndonError | None:
        try:
            outcomes = evaluate(self.audit, table, checks, with_profile=profile, fresh=fresh)
        except Exception as e:  # the engine failed under the checks: report, do not publish
            return StepError(f"checks could not run: {type(e).__name__}: {e}", step=table)
        with self.lock:
            self.check_outcomes.extend(outcomes)
            self.pending_checks.extend((r, ctx) for r, ctx, fresh in outcomes if fresh)
        failed = [r for r, _, _ in outcomes if r.stops_the_line]
        return check_failure(failed) if failed else None

    def _audit_deferred(self) -> None:
        """Checks that read another table run once every table they read is built."""
        by_table: dict[str, list[Check]] = {}
        for c in self.deferred:
            r = self.results.get(c.table)
            if r is None or r.action not in ("built", "reused") or not ready(self.audit, c):
                continue
            by_table.setdefault(c.table, []).append(c)
        for table, checks in by_table.items():
            failure = self._evaluate(table, checks)
            if failure is not None:
                old = self.results[table]
                self._finish(StepResult(table, "failed", old.fingerprint, rows=old.rows,
                                        rejects=old.rejects, landed=old.landed,
                                        seconds=old.seconds, reason=old.reason,
                                        error=failure), record=False)

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
        return StepResult(ps.name, "cancelled", ps.fingerprint, reason="cancelled")

    def _finish(self, result: StepResult, record: bool = True) -> None:
        self.results[result.name] = result
        if not record:  # a later verdict on a step already recorded (deferred checks)
            self.listener.step_finished(result)
            with self.lock:
                self.pending_step_runs.append({
                    "run_id": self.run_id, "step": result.name, "action": "failed",
                    "fingerprint": result.fingerprint, "rows": result.rows,
                    "rejects": result.rejects, "seconds": 0.0, "started_at": time.time(),
                    "error": result.error.render() if result.error else None,
                })
            return
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
        with self.lock:
            checks, self.pending_checks = self.pending_checks, []
        if step_runs or artifacts:
            self.store.record(step_runs=step_runs, artifacts=artifacts)
        if checks:
            history.record(self.store, checks, run_id=self.run_id,
                           environment=self.plan.environment)
        if rejects:
            self.store.add_rejects(rejects)


def plan(project: Project, environment: str | None = None,
         selection: Sequence[str] = ()) -> Plan:
    return make_plan(project, environment or project.config.default_environment,
                     tuple(selection))


__all__ = ["git_state", "plan", "run"]


