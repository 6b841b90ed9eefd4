"""The scheduler: evaluates schedules and sensors into ticks in the store, and runs queued
ticks one at a time per environment through the service layer.

    scheduler = Scheduler(project)
    scheduler.tick()          # evaluate once (the server and tests call this)
    scheduler.run_forever()   # andon scheduler: tick every second until stopped
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError, ConfigError
from andon.schedule.cron import due, key_time
from andon.schedule.model import ScheduleConfig, SensorConfig
from andon.schedule.queue import RunQueue
from andon.schedule.sensors import check_folder, scan, source_of
from andon.store.schedules import ScheduleRepository, StaleCursor

if TYPE_CHECKING:
    from andon.project import Project
    from andon.store import Row

USER = "scheduler"
INTERVAL = 1.0  # seconds between evaluations: a file arrival starts its run within ~1 s
SLA_EVERY = 30.0  # seconds between SLA evaluations (each reads the runs of the SLA tables)


@dataclass(frozen=True)
class TickReport:
    """What one evaluation decided: the ticks it queued, the schedules whose older missed
    ticks it left out (catch-up off or capped), the problems of sensors it skipped, and the
    SLA breaches it found (and alerted)."""

    at: float
    queued: tuple[Row, ...] = ()
    skipped: tuple[str, ...] = ()
    errors: tuple[AndonError, ...] = ()
    breaches: tuple[Row, ...] = ()


class Scheduler:
    """Schedules and sensors of ``project``, acted on as ``user``. ``clock`` gives epoch
    seconds (tests pass a fake one). Runs go to worker threads, one per environment; with
    ``background=False`` they run only when ``run_queued()`` is called."""

    def __init__(self, project: Project, *, user: str = USER,
                 clock: Callable[[], float] = time.time, background: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        self.project = project
        self.clock = clock
        self.log = log or (lambda _message: None)
        self.repo = ScheduleRepository(project.store.engine)
        check(project)
        self.claimer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.queue = RunQueue(project, self.repo, self.claimer, user=user,
                              background=background, log=self.log)
        self._stop = threading.Event()
        self._config_mtime = _mtime(project)
        self._sla_at: float | None = None  # when SLAs were last evaluated

    @property
    def schedules(self) -> dict[str, ScheduleConfig]:
        return self.project.config.schedules

    @property
    def sensors(self) -> dict[str, SensorConfig]:
        return self.project.config.sensors

    # one evaluation -----------------------------------------------------------------------------

    def tick(self, now: datetime | float | None = None) -> TickReport:
        """Decide every tick due at ``now`` (default: the clock), queue their runs and hand
        the queue to the workers."""
        at = _seconds(now) if now is not None else self.clock()
        self.repo.close_orphans(self.queue.alive)
        states = self.repo.states()
        queued: list[Row] = []
        skipped: list[str] = []
        errors: list[AndonError] = []
        for name, schedule in self.schedules.items():
            rows, left_out = self._schedule(name, schedule, states.get(("schedule", name)), at)
            queued += rows
            if left_out:
                skipped.append(name)
        for name, sensor in self.sensors.items():
            try:
                queued += self._sensor(name, sensor, states.get(("sensor", name)), at)
            except AndonError as e:
                errors.append(e)
        breaches: list[Row] = []
        if self.project.config.sla and (self._sla_at is None or abs(at - self._sla_at)
                                        >= SLA_EVERY):
            from andon.schedule.sla import alert_breaches, evaluate

            self._sla_at = at
            breaches = alert_breaches(self.project, evaluate(self.project, at), at)
        if not self._stop.is_set():
            self.queue.dispatch()
        return TickReport(at, tuple(queued), tuple(skipped), tuple(errors), tuple(breaches))

    def _schedule(self, name: str, schedule: ScheduleConfig, state: Row | None, at: float
                  ) -> tuple[list[Row], bool]:
        if state is None or state["spec"] != schedule.spec:
            # a new schedule, or a new timing: count from now, never re-run the past
            self.repo.reset("schedule", name, schedule.spec, at)
            return [], False
        keep = schedule.max_catch_up if schedule.catch_up else 1
        found = due(schedule.cron, schedule.timezone, float(state["evaluated_at"]), at, keep)
        if not found.ticks:
            return [], False
        env = schedule.environment or self.project.config.default_environment
        ticks = [{"run_key": f"{name}@{key_time(ts)}", "scheduled_at": ts,
                  "environment": env, "selection": list(schedule.select),
                  "param_sets": [schedule.params] if schedule.params else []}
                 for ts in found.ticks]
        return self.repo.decide("schedule", name, ticks, at), found.skipped

    def _sensor(self, name: str, sensor: SensorConfig, state: Row | None, at: float
                ) -> list[Row]:
        seen: dict[str, list[int]] = dict(state["cursor"] or {}) if state else {}
        files = scan(self.project, name, sensor, seen)  # a SourceError names the sensor
        spec = source_of(self.project, sensor).path
        if state is None or state["spec"] != spec:
            # files already there are not arrivals: the sensor counts from now
            self.repo.reset("sensor", name, spec, at, files.cursor)
            return []
        if not files.new and files.cursor == seen:
            return []
        ticks = []
        if files.new:
            digest = hashlib.sha256(json.dumps(
                {f: files.cursor[f] for f in files.new}, sort_keys=True).encode()).hexdigest()
            ticks.append({
                "run_key": f"{name}:{digest[:24]}", "scheduled_at": at,
                "environment": sensor.environment or self.project.config.default_environment,
                "selection": list(sensor.select) or [f"{sensor.source}+"],
                "param_sets": [sensor.params] if sensor.params else [],
                "cursor": files.cursor, "files": list(files.new)})
        try:
            return self.repo.decide("sensor", name, ticks, at, version=int(state["version"]),
                                    cursor=files.cursor)
        except StaleCursor:
            return []  # another scheduler decided these files first

    # the queue ----------------------------------------------------------------------------------

    def enqueue(self, environment: str, selection: Sequence[str] = (), *,
                params: str | None = None, key: str | None = None) -> Row | None:
        """Queue a run outside any schedule (a backfill from the API, a manual run): it waits
        its turn in the environment's queue. ``key`` makes it idempotent: a second request
        with the same key queues nothing (None)."""
        from andon.environments import check_name

        check_name(environment)
        if params is not None and params not in self.project.config.param_sets:
            raise ConfigError(f"unknown parameter set {params!r}",
                              hint="declare it under 'param_sets:' in andon.yaml")
        self.project.dag.select(list(selection))
        at = self.clock()
        tick = {"run_key": f"manual:{key or uuid.uuid4().hex}", "scheduled_at": at,
                "environment": environment, "selection": list(selection),
                "param_sets": [params] if params else []}
        rows = self.repo.decide("manual", "manual", [tick], at)
        if not self._stop.is_set():
            self.queue.dispatch()
        return rows[0] if rows else None

    def run_queued(self) -> list[Row]:
        """Run every queued tick now, in this thread, one after another (returns them,
        finished). For tests and for ``background=False``."""
        return self.queue.drain()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the worker threads to finish the queue; False if ``timeout`` passed."""
        return self.queue.wait(timeout)

    # the loop -----------------------------------------------------------------------------------

    def run_forever(self, interval: float = INTERVAL) -> None:
        """Evaluate every ``interval`` seconds until ``stop()``; a changed andon.yaml is read
        again (an invalid one is reported and the previous definitions kept)."""
        while not self._stop.is_set():
            self._reload()
            try:
                report = self.tick()
            except AndonError as e:
                self.log(f"error: {e.render()}")
            except Exception as e:  # the store away for a moment must not end the loop
                self.log(f"error: {type(e).__name__}: {e}; trying again in {interval:g} s")
            else:
                for row in report.queued:
                    self.log(f"queued {row['kind']} {row['name']}: {row['run_key']} "
                             f"in {row['environment']}")
                for name in report.skipped:
                    self.log(f"{name}: older missed ticks left out (catch_up)")
                for err in report.errors:
                    self.log(f"error: {err.render()}")
                for breach in report.breaches:
                    self.log(f"SLA breach: {breach['message']}")
            self._stop.wait(interval)

    def stop(self) -> None:
        """Stop evaluating and starting runs; a run in progress goes on to its end."""
        self._stop.set()
        self.queue.stop()

    @property
    def running(self) -> list[Row]:
        """The ticks whose runs this scheduler is running now."""
        return self.queue.running()

    def close(self) -> None:
        self.stop()
        self.queue.close()

    def _reload(self) -> None:
        mtime = _mtime(self.project)
        if mtime == self._config_mtime:
            return
        self._config_mtime = mtime
        from andon.project import Project

        try:
            fresh = Project.load(self.project.root, tolerant=True)
            check(fresh)
        except AndonError as e:
            self.log(f"andon.yaml changed but cannot be used; keeping the previous "
                     f"schedules: {e.render()}")
            return
        fresh._store = self.project.store
        self.project = fresh
        self.queue.project = fresh
        self.log("andon.yaml changed: schedules and sensors read again")


def check(project: Project) -> None:
    """Raise ConfigError naming andon.yaml's line for a schedule or sensor that cannot run:
    a bad name, an unknown environment name, parameter set, selection or source, or a
    sensor's folder that does not exist."""
    from andon.environments import check_name
    from andon.errors import DagError
    from andon.project import CONFIG_FILE
    from andon.yamlfile import load_yaml

    config = project.config
    if not config.schedules and not config.sensors and not config.sla:
        return
    config_file = project.root / CONFIG_FILE
    doc = load_yaml(config_file)

    def fail(loc: tuple[str, ...], message: str, hint: str = "") -> ConfigError:
        return ConfigError(message, file=config_file, line=doc.line_of(loc), hint=hint)

    for table, sla in config.sla.items():
        if table not in project.dag.steps:
            from andon.errors import did_you_mean

            raise fail(("sla", table), f"SLA on unknown table {table!r}",
                       did_you_mean(table, project.dag.steps) or "name a step or a source")
        try:
            check_name(sla.environment or config.default_environment)
        except AndonError as e:
            raise fail(("sla", table, "environment"), e.message, e.hint) from None

    sections: list[tuple[str, dict[str, Any]]] = [("schedules", dict(config.schedules)),
                                                  ("sensors", dict(config.sensors))]
    for section, items in sections:
        for name, item in items.items():
            where = (section, name)
            if not _plain_name(name):
                raise fail(where, f"{section[:-1]} name {name!r} is not a plain name",
                           "use letters, digits, '_', '-' or '.'")
            try:
                check_name(item.environment or config.default_environment)
            except AndonError as e:
                raise fail((*where, "environment"), e.message, e.hint) from None
            if item.params is not None and item.params not in config.param_sets:
                from andon.errors import did_you_mean

                raise fail((*where, "params"), f"unknown parameter set {item.params!r}",
                           did_you_mean(item.params, config.param_sets)
                           or "declare it under 'param_sets:' in andon.yaml")
            if isinstance(item, SensorConfig):
                if item.source not in config.sources:
                    from andon.errors import did_you_mean

                    raise fail((*where, "source"), f"sensor {name!r}: unknown source "
                               f"{item.source!r}", did_you_mean(item.source, config.sources)
                               or f"sources: {', '.join(config.sources) or 'none'}")
                try:
                    check_folder(project, item)
                except AndonError as e:
                    raise fail((*where, "source"), f"sensor {name!r}: {e.message}",
                               e.hint) from None
            try:
                project.dag.select(list(item.select))
            except DagError as e:
                raise fail((*where, "select"), e.message, e.hint) from None


def _plain_name(name: str) -> bool:
    return bool(name) and len(name) <= 100 and all(c.isalnum() or c in "_-." for c in name)


def _seconds(now: datetime | float) -> float:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise AndonError("the scheduler's time needs a time zone",
                             hint="pass an aware datetime, e.g. datetime.now(UTC)")
        return now.timestamp()
    return float(now)


def _mtime(project: Project) -> float:
    try:
        return (Path(project.root) / "andon.yaml").stat().st_mtime
    except OSError:
        return 0.0
