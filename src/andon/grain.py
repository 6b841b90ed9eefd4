"""Grains of incremental steps: the intervals a step is computed in (``day``, ``month``,
``15 minutes``). Validated when the project loads, so kept apart from the build code."""

from __future__ import annotations

import re

from andon.errors import did_you_mean

UNITS = ("minute", "hour", "day", "week", "month", "quarter", "year")
_GRAIN_RE = re.compile(r"^\s*(\d+)\s+([a-z]+?)s?\s*$")


def parse_grain(text: str) -> tuple[int, str]:
    """``month`` → (1, "month"); ``15 minutes`` → (15, "minute"); ValueError otherwise."""
    key = text.strip().lower()
    count, unit = 1, key
    m = _GRAIN_RE.match(key)
    if m:
        count, unit = int(m.group(1)), m.group(2)
    if unit not in UNITS or count < 1:
        hint = did_you_mean(unit, UNITS)
        raise ValueError(
            f"unknown grain {text!r}" + (f"; {hint}" if hint else "")
            + f" (known: {', '.join(UNITS)}, or a count and a unit like '15 minutes')")
    return count, unit
