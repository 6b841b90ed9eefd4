"""The runner: one run from start to end. It records the run, takes the environment's lease,
plans, walks the plan's stages (``andon.execution``), publishes with one compare-and-swap of
the environment (write–audit–publish) and records the outcome. A ``CancelToken`` stops it:
Ctrl-C, another thread, or ``andon runs cancel`` from another process."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from andon.alerts import send_alerts
from andon.environments import check_name, require_for_run
from andon.errors import AndonError, LeaseError, StepError
from andon.events import Listener, NullListener, RunResult
from andon.execution.artifacts import artifact_lookups, artifact_row, manifest_of
from andon.execution.cancel import CancelToken, RunCancelled
from andon.execution.checking import CheckFailed, check_failure, show_environment
from andon.execution.executor import PoolFactory, StepWalk, thread_pool
from andon.execution.lease import Heartbeat, acquire, git_state
from andon.execution.recording import publish
from andon.plan import Plan, make_plan
from andon.project import Project
from andon.store import Row, Store
from andon.warehouse import Warehouse


def run(
    project: Project,
    environment: str | None = None,
    selection: Sequence[str] = (),
    *,
    listener: Listener | None = None,
    wait_for_lease: float = 0.0,
    backfill: tuple[str, str] | None = None,
    user: str,
    cancel: CancelToken | None = None,
    pool: PoolFactory = thread_pool,
    pull: bool = False,
    on_pull: Callable[[Row], None] | None = None,
) -> RunResult:
    """Plan and execute a run of ``selection`` in ``environment``; publish if all succeed.
    ``user`` is recorded as its author; who may run is decided by the caller
    (``andon.Session``). ``cancel`` stops the run from another thread (status ``cancelled``,
    nothing published); ``pool`` makes the executor that runs steps concurrently. ``pull``
    first pulls the selected database and HTTP sources (the land stage), under the lease;
    ``on_pull`` gets each pull's record."""
    environment = environment or project.environment or project.config.default_environment
    check_name(environment)
    require_for_run(project.store, environment,
                    [project.config.default_environment, *project.config.environments])
    project = project.for_environment(environment)  # its parameters may differ
    from andon.openlineage import RunLineage  # column lineage and OpenLineage events

    listener = RunLineage(project, listener or NullListener())
    token = cancel or CancelToken()
    store = project.store
    warehouse = Warehouse(project.warehouse)
    warehouse.ensure()
    sha, dirty = git_state(project.root)
    run_id = store.begin_run(
        environment, user=user, git_sha=sha, git_dirty=dirty, selection=list(selection),
        params=project.params, base_commit=None,
    )
    started = time.perf_counter()
    try:
        acquire(store, environment, run_id, wait_for_lease, token)
    except (LeaseError, RunCancelled) as e:
        store.finish_run(run_id, "cancelled" if isinstance(e, RunCancelled) else "failed",
                         error=e.render())
        raise
    try:
        with Heartbeat(store, environment, run_id, token):
            warehouse.clean_staging()
            try:
                if pull:
                    from andon.sources.pull import pull_for_run

                    for pulled in pull_for_run(project, selection, user=user):
                        if on_pull is not None:
                            on_pull(pulled)
                plan = make_plan(project, environment, tuple(selection), store=store,
                                 warehouse=warehouse, backfill=check_window(backfill))
                refuse_code_changes(plan)
                token.raise_if_cancelled()
            except AndonError as e:
                status = "cancelled" if isinstance(e, RunCancelled) else "failed"
                store.finish_run(run_id, status, error=e.render())
                raise
            listener.run_started(run_id, plan)
            walk = StepWalk(project, plan, store, warehouse, run_id, listener, token, pool)
            walk.walk()
            result = _finish(walk, token, started, user, sha)
        listener.run_finished(result)
        return result
    finally:
        store.release_lease(environment, run_id)


def _finish(walk: StepWalk, token: CancelToken, started: float, user: str,
            git_sha: str | None) -> RunResult:
    """The run's verdict, the publish stage when every step succeeded, and its record."""
    plan, store = walk.plan, walk.store
    error: AndonError | None = None
    status = "succeeded"
    failed = [r for r in walk.results.values() if r.action == "failed"]
    if token.cancelled:
        status = "cancelled"
        error = RunCancelled(f"run cancelled ({token.reason}); the environment was not changed",
                             hint="run again: every artifact already sealed is reused")
    elif failed:
        status = "failed"
        first = failed[0].error
        error = first if first is not None else StepError("a step failed")
    commit_id = plan.base_commit
    if status == "succeeded":
        try:
            commit_id = publish(store, plan, run_id=walk.run_id, user=user, git_sha=git_sha,
                                protected=walk.project.is_protected(plan.environment))
            show_environment(walk.project, plan.environment)
        except (LeaseError, AndonError) as e:
            status, error = "failed", e
    checker = walk.checker
    ordered = tuple(walk.results[s.name] for s in plan.steps if s.name in walk.results)
    result = RunResult(
        run_id=walk.run_id,
        environment=plan.environment,
        status=status,
        steps=ordered,
        commit_id=commit_id if status == "succeeded" else None,
        previous_commit=plan.base_commit,
        seconds=time.perf_counter() - started,
        error=error,
        checks=tuple(checker.results) if checker is not None else (),
    )
    store.finish_run(
        walk.run_id, status,
        error=error.render() if error else None,
        commit_id=result.commit_id,
        summary={"counts": result.counts(), "seconds": round(result.seconds, 3),
                 "base_commit": plan.base_commit},
    )
    # after the run is recorded: a slow channel never holds its status back
    send_alerts(walk.project, result, checker.fresh_results() if checker is not None else [])
    return result


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
    """A protected environment runs exactly the step code of its last promotion: the plan's
    publish stage says so."""
    if plan.publish.action != "refused":
        return
    raise ProtectedEnvironment(
        f"{plan.publish.reason}; nothing was run",
        hint=f"run the change in a branch environment (andon env create dev --from "
             f"{plan.environment}; andon run --env dev), then andon promote dev --to "
             f"{plan.environment}",
    )


class ProtectedEnvironment(AndonError):
    """Changed code in a protected environment: it takes code only by promotion."""

    kind = "forbidden"


def plan(project: Project, environment: str | None = None,
         selection: Sequence[str] = ()) -> Plan:
    return make_plan(project, environment or project.config.default_environment,
                     tuple(selection))


def cancel(store: Store, run_id: int, *, who: str) -> None:
    """Ask run ``run_id`` to stop; its process cancels itself within a second or two."""
    store.request_cancel(run_id, who=who)


__all__ = ["CancelToken", "CheckFailed", "ProtectedEnvironment", "RunCancelled",
           "artifact_lookups", "artifact_row", "cancel", "check_failure", "git_state",
           "manifest_of", "plan", "run"]
