"""Runs started through the API: each runs in a worker thread, and its listener keeps the
events (plan, steps, result) that clients follow as server-sent events."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from andon.errors import AndonError, Failed
from andon.events import RunResult, StepResult

Event = tuple[str, dict[str, Any]]  # (kind, data)
KEEP = 200  # finished runs whose events stay in memory (later ones are read from the store)
START_TIMEOUT = 120.0  # seconds a request waits for its run to start (waiting for a lease…)


class LiveRun:
    """A run's listener that records every event, for any number of followers."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.run_id: int | None = None
        self.done = False
        self.error: BaseException | None = None  # raised before the run started
        self.cond = threading.Condition()

    def _add(self, kind: str, data: dict[str, Any], *, done: bool = False) -> None:
        with self.cond:
            self.events.append((kind, data))
            self.done = self.done or done
            self.cond.notify_all()

    # the Listener protocol (called from the runner's threads) ------------------------------

    def run_started(self, run_id: int, plan: Any) -> None:
        with self.cond:
            self.run_id = run_id
        self._add("run_started", {"run": run_id, "environment": plan.environment,
                                  "counts": plan.counts(),
                                  "steps": [{"name": s.name, "action": s.action,
                                             "reason": s.reason} for s in plan.steps]})

    def step_started(self, name: str, action: str) -> None:
        self._add("step_started", {"run": self.run_id, "step": name, "action": action})

    def step_finished(self, result: StepResult) -> None:
        self._add("step_finished", {"run": self.run_id, **result.to_dict()})

    def run_finished(self, result: RunResult) -> None:
        self._add("run_finished", result.to_dict(), done=True)

    # followers ---------------------------------------------------------------------------

    def fail(self, error: BaseException) -> None:
        with self.cond:
            self.error = error
            self.done = True
            self.cond.notify_all()
        if self.run_id is not None:
            message = error.render() if isinstance(error, AndonError) else repr(error)
            self._add("run_finished", {"id": self.run_id, "status": "failed",
                                       "error": message}, done=True)

    def since(self, index: int) -> tuple[list[Event], bool]:
        """The events from ``index`` on, and whether the run is over."""
        with self.cond:
            return self.events[index:], self.done

    def wait_started(self, timeout: float = START_TIMEOUT) -> int:
        """The run's id once it started; the error that kept it from starting otherwise."""
        with self.cond:
            self.cond.wait_for(lambda: self.run_id is not None or self.error is not None,
                               timeout)
            if self.run_id is not None:
                return self.run_id
            if self.error is not None:
                raise self.error
        raise Failed(f"the run did not start within {timeout:.0f}s",
                     hint="it may be waiting for the environment; see andon runs")


class LiveRuns:
    """The runs this server process started, by id (the newest ``KEEP`` of them)."""

    def __init__(self) -> None:
        self._runs: OrderedDict[int, LiveRun] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: int) -> LiveRun | None:
        with self._lock:
            return self._runs.get(run_id)

    def start(self, work: Callable[[LiveRun], object], *, cleanup: Sequence[Callable[[], None]]
              = ()) -> tuple[int, LiveRun]:
        """Run ``work(listener)`` in a worker thread; return once the run has an id (or
        raise what stopped it first: a role that may not run, a busy environment…)."""
        live = LiveRun()

        def target() -> None:
            try:
                work(live)
            except BaseException as e:
                live.fail(e)
            finally:
                for done in cleanup:
                    done()

        threading.Thread(target=target, name="andon-api-run", daemon=True).start()
        run_id = live.wait_started()
        with self._lock:
            self._runs[run_id] = live
            while len(self._runs) > KEEP:
                oldest = next(iter(self._runs))
                if not self._runs[oldest].done:
                    break
                self._runs.popitem(last=False)
        return run_id, live
