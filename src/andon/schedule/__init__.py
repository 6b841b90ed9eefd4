"""Schedules and sensors: cron ticks and file arrivals that start runs, one tick one run.

``Scheduler(project).tick(now)`` evaluates once; ``.run_forever()`` is the loop of
``andon scheduler`` and of the server. State (ticks, cursors) lives in the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from andon.schedule.scheduler import Scheduler, TickReport

__all__ = ["Scheduler", "TickReport"]


def __getattr__(name: str) -> Any:
    # andon.config imports andon.schedule.model: the scheduler (SQLAlchemy, the runner) loads
    # only when asked for
    if name in __all__:
        from andon.schedule import scheduler

        return getattr(scheduler, name)
    raise AttributeError(name)
