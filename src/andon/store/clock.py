"""Times in the store are epoch seconds (floats); outside it they are UTC-aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(seconds: float) -> datetime:
    """The UTC-aware datetime of epoch ``seconds``."""
    return datetime.fromtimestamp(seconds, UTC)


def utc_or_none(seconds: float | None) -> datetime | None:
    return utc(seconds) if seconds is not None else None
