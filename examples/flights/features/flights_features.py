"""On-demand features of the flights example: computed per request from other features."""

from __future__ import annotations

from datetime import datetime


def plane_age(year_built: list[int | None], event_timestamp: list[datetime | None]
              ) -> list[int | None]:
    """Years between manufacture and the flight (None when either is unknown)."""
    return [None if built is None or at is None else at.year - built
            for built, at in zip(year_built, event_timestamp, strict=True)]
