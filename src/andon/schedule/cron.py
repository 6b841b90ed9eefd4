"""Cron ticks in a time zone, as UTC instants: which are due, and when the next one is.

Ticks are computed in the schedule's IANA zone by cronsim and compared as epoch seconds
(aware datetimes of one zone compare by wall clock and ignore DST's fold). At spring-forward a
skipped wall-clock time fires at the next valid instant; at fall-back a repeated one fires
once, while a schedule of every hour still fires in each real hour."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from andon.schedule.model import require_cronsim, zone

# cron ticks at one instant more than this many times in a row means a library bug, not a
# schedule: stop rather than loop
_MAX_STALE = 1000


def _ticks(cron: str, timezone: str, start: float, reverse: bool) -> Iterator[float]:
    """Tick instants after (or, reversed, before) ``start``, strictly, in order."""
    cronsim = require_cronsim()
    local = datetime.fromtimestamp(start, UTC).astimezone(zone(timezone))
    stale = 0
    for t in cronsim.CronSim(cron, local, reverse=reverse):
        ts = float(t.timestamp())
        # cronsim may answer a wall-clock time of the other fold: it is not after start
        if (ts <= start) if not reverse else (ts >= start):
            stale += 1
            if stale > _MAX_STALE:
                return
            continue
        stale = 0
        yield ts


@dataclass(frozen=True)
class Due:
    """The ticks due in (after, now]: the newest ``keep`` of them, oldest first, and whether
    older ones were left out."""

    ticks: tuple[float, ...]
    skipped: bool


def due(cron: str, timezone: str, after: float, now: float, keep: int) -> Due:
    """Ticks in (after, now], walking back from now so a long outage costs ``keep`` steps."""
    found: list[float] = []
    skipped = False
    # the reverse walk starts a minute after now (cron's resolution; older cronsim drop the
    # fraction of a start time), so a tick exactly at now is due
    for ts in _ticks(cron, timezone, now + 60.0, reverse=True):
        if ts <= after:
            break
        if ts > now:
            continue
        if len(found) == keep:
            skipped = True
            break
        found.append(ts)
    return Due(tuple(reversed(found)), skipped)


def next_tick(cron: str, timezone: str, after: float) -> float | None:
    """The first tick after ``after`` (None: the expression never fires again)."""
    return next(_ticks(cron, timezone, after, reverse=False), None)


def key_time(ts: float) -> str:
    """A tick's instant in the run key: UTC to the second, ``2026-03-29T01:00:00Z``."""
    moment = datetime.fromtimestamp(round(ts), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def local_time(ts: float, timezone: str) -> str:
    """A tick's instant as the schedule's wall clock, with its UTC offset."""
    moment = datetime.fromtimestamp(ts, UTC).astimezone(zone(timezone))
    return moment.isoformat(timespec="minutes")


__all__ = ["Due", "due", "key_time", "local_time", "next_tick"]
