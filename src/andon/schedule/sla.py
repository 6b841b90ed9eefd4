"""SLAs of tables: is each table fresh, and alert once per breach when it is not.

A table is refreshed when a successful run in the SLA's environment built or confirmed it
(a run that reused it found nothing new upstream: the table is current). ``fresh_by: "06:00"``
means refreshed since the start of the day (local midnight) by 06:00 local time;
``max_age: 26h`` means the last refresh is at most 26 hours old. A breach has a key (the
table, environment, rule and day or last refresh) stored once, so it alerts once, whichever
scheduler sees it first."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from andon.schedule.cron import due
from andon.schedule.model import SlaConfig, zone
from andon.store.clock import utc_or_none

if TYPE_CHECKING:
    from andon.project import Project
    from andon.store import Row

REFRESHING = ("built", "reused", "kept")  # step actions that leave the table current


@dataclass(frozen=True)
class SlaStatus:
    """One table against its SLA at one moment."""

    table: str
    environment: str
    rule: str  # fresh_by|max_age
    late: bool
    due_at: float  # the deadline checked (fresh_by) or now (max_age)
    last_refresh: float | None
    message: str
    breach_key: str | None  # set when late

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "environment": self.environment, "rule": self.rule,
                "status": "late" if self.late else "on time",
                "due_at": utc_or_none(self.due_at),
                "last_refresh": utc_or_none(self.last_refresh), "message": self.message}


def last_refreshes(project: Project, environment: str, tables: list[str]) -> dict[str, float]:
    """When each table was last refreshed by a successful run in ``environment``."""
    from andon.store.schedules import ScheduleRepository

    return ScheduleRepository(project.store.engine).last_refreshes(environment, tables,
                                                                   REFRESHING)


def evaluate(project: Project, now: float) -> list[SlaStatus]:
    """Every SLA of andon.yaml, at ``now``."""
    by_env: dict[str, list[tuple[str, SlaConfig]]] = {}
    for table, sla in project.config.sla.items():
        env = sla.environment or project.config.default_environment
        by_env.setdefault(env, []).append((table, sla))
    out: list[SlaStatus] = []
    for env, items in by_env.items():
        refreshed = last_refreshes(project, env, [table for table, _ in items])
        for table, sla in items:
            last = refreshed.get(table)
            if sla.fresh_by is not None:
                out.append(_fresh_by(table, env, sla, sla.fresh_by, last, now))
            if sla.max_age is not None:
                out.append(_max_age(table, env, sla.max_age, last, now))
    return out


def _fresh_by(table: str, env: str, sla: SlaConfig, clock: str, last: float | None,
              now: float) -> SlaStatus:
    hour, minute = (int(p) for p in clock.split(":"))
    # the latest deadline at or before now, in the SLA's zone (cron knows DST)
    deadlines = due(f"{minute} {hour} * * *", sla.timezone, now - 3 * 86400, now, keep=1)
    deadline = deadlines.ticks[-1]
    local = datetime.fromtimestamp(deadline, UTC).astimezone(zone(sla.timezone))
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    late = last is None or last < day_start
    day = local.date().isoformat()
    when = (f"last refreshed {_iso(last)}" if last is not None else "never refreshed")
    message = (f"{table} in {env} was not refreshed on {day} by {clock} {sla.timezone} "
               f"({when})" if late
               else f"{table} in {env} was fresh on {day} by {clock} {sla.timezone} ({when})")
    return SlaStatus(table, env, "fresh_by", late, deadline, last, message,
                     f"{table}@{env}:fresh_by:{day}" if late else None)


def _max_age(table: str, env: str, age_text: str, last: float | None, now: float
             ) -> SlaStatus:
    from andon.checks.types import parse_age

    age = parse_age(age_text)
    late = last is None or now - last > age
    when = f"last refreshed {_iso(last)}" if last is not None else "never refreshed"
    message = (f"{table} in {env} is older than {age_text} ({when})" if late
               else f"{table} in {env} is within {age_text} ({when})")
    # one breach per stale refresh: a new refresh that goes stale again is a new breach
    key = f"{table}@{env}:max_age:{round(last) if last is not None else 'never'}"
    return SlaStatus(table, env, "max_age", late, now, last, message, key if late else None)


def alert_breaches(project: Project, statuses: list[SlaStatus], now: float) -> list[Row]:
    """Record each late table's breach; the first to record it sends the alert. Returns the
    breaches this call recorded (and alerted)."""
    from andon.alerts import send_notice
    from andon.store.schedules import ScheduleRepository

    repo = ScheduleRepository(project.store.engine)
    new: list[Row] = []
    for status in statuses:
        if not status.late or status.breach_key is None:
            continue
        row = {"breach_key": status.breach_key, "table_name": status.table,
               "environment": status.environment, "rule": status.rule,
               "due_at": status.due_at, "last_refresh": status.last_refresh,
               "detected_at": now, "message": status.message}
        if not repo.record_breach(row):
            continue  # seen before (by this or another scheduler): alerted then
        sla = project.config.sla[status.table]
        step = project.dag.steps.get(status.table)
        owner = step.config.owner if step is not None else None
        message = {"text": f"andon {project.name}: SLA breach: {status.message}",
                   "project": project.name, "environment": status.environment,
                   "status": "late", "sla": status.to_dict(),
                   "steps": [{"step": status.table, "owner": owner, "checks": []}]}
        failures = send_notice(project, message, sla.severity)
        if failures:
            repo.breach_alert_errors(status.breach_key, failures)
        new.append({**row, "alert_errors": failures})
    return new


def breaches(project: Project, table: str | None = None, limit: int = 50) -> list[Row]:
    """Recorded breaches, newest first."""
    from andon.store.schedules import ScheduleRepository

    return ScheduleRepository(project.store.engine).breaches(table, limit)


def _iso(ts: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts is not None else "-"
