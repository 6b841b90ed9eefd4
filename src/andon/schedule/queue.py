"""The run queue: queued ticks in the store, started one at a time per environment.

Each environment with queued ticks gets one worker thread, which takes the oldest tick (a
compare-and-set in the store, so two schedulers never start one tick twice) and runs it
through ``andon.Session``. Across processes the environment's lease keeps runs apart: a run
waits for it rather than failing."""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError
from andon.hosts import pid_alive
from andon.store.schedules import ScheduleRepository

if TYPE_CHECKING:
    from andon.events import RunResult, StepResult
    from andon.project import Project
    from andon.store import Row

LEASE_WAIT = 6 * 3600.0  # a scheduled run waits this long for a busy environment

_LIVE: set[str] = set()  # the schedulers alive in this process (their claimer ids)


class _TickListener:
    """Records the run's id on its tick as soon as the run exists."""

    def __init__(self, repo: ScheduleRepository, tick_id: int) -> None:
        self.repo = repo
        self.tick_id = tick_id
        self.run_id: int | None = None

    def run_started(self, run_id: int, plan: Any) -> None:
        self.run_id = run_id
        self.repo.started(self.tick_id, run_id)

    def step_started(self, name: str, action: str) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        pass

    def run_finished(self, result: RunResult) -> None:
        pass


class RunQueue:
    def __init__(self, project: Project, repo: ScheduleRepository, claimer: str, *,
                 user: str, background: bool, log: Callable[[str], None],
                 lease_wait: float = LEASE_WAIT) -> None:
        self.project = project
        self.repo = repo
        self.claimer = claimer
        self.user = user
        self.background = background
        self.log = log
        self.lease_wait = lease_wait
        self.workers: dict[str, threading.Thread] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._running: dict[int, Row] = {}
        _LIVE.add(claimer)

    def alive(self, claimed_by: str) -> bool:
        """Whether the scheduler that took a tick still runs. One on another machine counts
        as alive: its run's lease heartbeat tells when it is gone."""
        host, pid, _ = [*claimed_by.rsplit(":", 2), "", ""][:3]
        if host != socket.gethostname() or not pid.isdigit():
            return True
        if int(pid) != os.getpid():
            return pid_alive(int(pid))
        return claimed_by in _LIVE

    def dispatch(self) -> None:
        """Give each environment with queued ticks a worker (unless one is at work)."""
        if not self.background or self.stopping.is_set():
            return
        for env in self.repo.queued_environments():
            with self.lock:
                worker = self.workers.get(env)
                if worker is not None and worker.is_alive():
                    continue
                worker = threading.Thread(target=self._work, args=(env,), daemon=True,
                                          name=f"andon-queue-{env}")
                self.workers[env] = worker
                worker.start()

    def _work(self, env: str) -> None:
        try:
            while not self.stopping.is_set():
                tick = self.repo.claim_next(env, self.claimer)
                if tick is None:
                    return
                self.start(tick)
        finally:
            with self.lock:
                if self.workers.get(env) is threading.current_thread():
                    del self.workers[env]

    def drain(self) -> list[Row]:
        """Run every queued tick in this thread, environment by environment."""
        done: list[Row] = []
        while not self.stopping.is_set():
            taken = [t for env in self.repo.queued_environments()
                     if (t := self.repo.claim_next(env, self.claimer)) is not None]
            if not taken:
                break
            done += [self.start(t) for t in taken]
        return done

    def start(self, tick: Row) -> Row:
        """Run one claimed tick to its end; returns the tick with its outcome. Whatever
        happens is written on the tick: the loop goes on."""
        from andon.project import Project
        from andon.service import Session

        tick_id = int(tick["id"])
        listener = _TickListener(self.repo, tick_id)
        self._running[tick_id] = tick
        self.log(f"starting {tick['run_key']} in {tick['environment']}")
        status, error, run_id = "failed", None, None
        try:
            project = Project.load(self.project.root, environment=tick["environment"],
                                   param_sets=tuple(tick["param_sets"] or ()))
            project._store = self.project.store  # one store (and pool) for every run
            result = Session(project, self.user).run(
                tick["environment"], list(tick["selection"] or ()), listener=listener,
                wait_for_lease=self.lease_wait)
            status, run_id = result.status, result.run_id
            error = result.error.render() if result.error is not None else None
        except AndonError as e:
            error, run_id = e.render(), listener.run_id
        except Exception as e:  # a bug must end this run, not the scheduler
            error, run_id = f"{type(e).__name__}: {e}", listener.run_id
            self.log(traceback.format_exc())
        finally:
            self._running.pop(tick_id, None)
        self.repo.finish(tick_id, status, run_id=run_id, error=error)
        self.log(f"{tick['run_key']}: run {run_id if run_id is not None else '-'} {status}"
                 + (f": {error.splitlines()[0]}" if error and status != "succeeded" else ""))
        return {**tick, "status": status, "run_id": run_id, "error": error,
                "ended_at": time.time()}

    def running(self) -> list[Row]:
        return list(self._running.values())

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.lock:
                workers = [w for w in self.workers.values() if w.is_alive()]
            if not workers:
                return True
            for w in workers:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                w.join(left)
                if deadline is not None and time.monotonic() >= deadline:
                    return not any(x.is_alive() for x in workers)

    def stop(self) -> None:
        self.stopping.set()

    def close(self) -> None:
        self.stop()
        _LIVE.discard(self.claimer)
