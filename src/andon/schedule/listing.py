"""What ``andon schedules list`` shows (and the server's schedules page): each schedule's
next tick and each sensor's watched path, with the last tick and its run's status."""

from __future__ import annotations

from typing import TYPE_CHECKING

from andon.schedule.cron import local_time, next_tick
from andon.schedule.sensors import source_of
from andon.store.clock import utc_or_none
from andon.store.schedules import ScheduleRepository

if TYPE_CHECKING:
    from andon.project import Project
    from andon.store import Row


def listing(project: Project, now: float) -> list[Row]:
    """One row per schedule and sensor, in andon.yaml's order."""
    repo = ScheduleRepository(project.store.engine)
    latest = repo.latest()
    states = repo.states()
    default_env = project.config.default_environment
    rows: list[Row] = []
    for name, s in project.config.schedules.items():
        state = states.get(("schedule", name))
        # a schedule whose timing changed counts from the next evaluation, i.e. from now
        after = now if state is None or state["spec"] != s.spec else max(
            now, float(state["evaluated_at"]))
        upcoming = next_tick(s.cron, s.timezone, after)
        rows.append({
            "name": name, "kind": "schedule", "when": s.cron, "timezone": s.timezone,
            "environment": s.environment or default_env,
            "select": " ".join(s.select) or "all", "params": s.params,
            "next_tick": local_time(upcoming, s.timezone) if upcoming is not None else None,
            "next_tick_utc": utc_or_none(upcoming),
            **_last(latest.get(("schedule", name)))})
    for name, sensor in project.config.sensors.items():
        state = states.get(("sensor", name))
        rows.append({
            "name": name, "kind": "sensor",
            "when": f"new file in {source_of(project, sensor).path}",
            "timezone": None, "environment": sensor.environment or default_env,
            "select": " ".join(sensor.select) or f"{sensor.source}+", "params": sensor.params,
            "next_tick": "on arrival", "next_tick_utc": None,
            "files_seen": len(state["cursor"] or {}) if state else 0,
            **_last(latest.get(("sensor", name)))})
    return rows


def _last(tick: Row | None) -> Row:
    if tick is None:
        return {"last_tick": None, "last_status": None, "last_run": None}
    return {"last_tick": utc_or_none(tick["scheduled_at"]),
            # the run's own status once it has one: a run abandoned by a crash says so
            "last_status": tick["run_status"] or tick["status"],
            "last_run": tick["run_id"]}
