"""JSON as andon writes it, from the CLI's ``--format json`` and the HTTP API alike:
datetimes in ISO form, decimals as numbers, bytes in hex, NaN and infinities as null."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def _default(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def finite(v: Any) -> Any:
    """NaN and ±Infinity are not JSON: they are written as null."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [finite(x) for x in v]
    return v


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """Compact, or indented for people with ``indent``."""
    separators = None if indent else (",", ":")
    return json.dumps(finite(obj), default=_default, allow_nan=False, indent=indent,
                      separators=separators)
