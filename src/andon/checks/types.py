"""What check types share: the kinds of column they need, thresholds and durations. Their SQL
is built with ``andon.engines.sql``; the check types themselves are classes in
``andon.checks.kinds``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from sqlglot import exp

    from andon.checks.model import WithFailing, WithRange

ColumnKind = Literal["any", "numeric", "text", "orderable", "temporal"]

NUMERIC_RE = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|"
                        r"UBIGINT|UHUGEINT|FLOAT|DOUBLE|REAL|DECIMAL.*|INT.*)$", re.IGNORECASE)
TEMPORAL_RE = re.compile(r"^(DATE|TIME.*|TIMESTAMP.*|INTERVAL)$", re.IGNORECASE)


def is_numeric(sql_type: str) -> bool:
    return bool(NUMERIC_RE.match(sql_type))


def column_fits(kind: ColumnKind, sql_type: str) -> bool:
    if kind == "any":
        return True
    if kind == "numeric":
        return is_numeric(sql_type)
    if kind == "text":
        return sql_type.upper() == "VARCHAR"
    if kind == "temporal":
        return is_numeric(sql_type) or bool(re.match(r"^(DATE|TIMESTAMP.*)$", sql_type, re.I))
    return is_numeric(sql_type) or bool(TEMPORAL_RE.match(sql_type)) or sql_type == "VARCHAR"


def fn(name: str, *args: exp.Expression) -> exp.Expression:
    """A call of the function ``name``; one sqlglot knows is written in each dialect's way."""
    from sqlglot import exp

    return cast("exp.Expression", exp.func(name, *args))


def all_of(*conditions: exp.Expression) -> exp.Expression:
    from sqlglot import exp

    return cast("exp.Expression", exp.and_(*conditions))


def any_of(*conditions: exp.Expression) -> exp.Expression:
    from sqlglot import exp

    return cast("exp.Expression", exp.or_(*conditions))


def now_for(sql_type: str) -> exp.Expression:
    """"Now" comparable with a column of ``sql_type``, in UTC whatever the session's time zone:
    an instant for a column with a zone, UTC wall-clock time for one without."""
    from sqlglot import exp

    from andon.engines.sql import literal

    now = fn("now")
    if "TIME ZONE" in sql_type.upper() or sql_type.upper() == "TIMESTAMPTZ":
        return now
    return exp.Paren(this=exp.AtTimeZone(this=now, zone=literal("UTC")))


def judge_failing(spec: WithFailing | None, failing: int, total: int
                  ) -> tuple[bool, dict[str, Any]]:
    """Checks counting failing rows: passed when they are within max_failing and
    max_failing_pct (none at all when the spec has neither)."""
    threshold: dict[str, Any] = {}
    ok = True
    pct_limit = spec.max_failing_pct if spec else None
    if pct_limit is not None:
        threshold["max_failing_pct"] = pct_limit
        ok = ok and (100.0 * failing / total if total else 0.0) <= pct_limit
    if spec is None or spec.max_failing is not None or pct_limit is None:
        limit = spec.max_failing or 0 if spec else 0
        threshold["max_failing"] = limit
        ok = ok and failing <= limit
    return ok, threshold


def judge_range(spec: WithRange, metric: float | None) -> tuple[bool, dict[str, Any]]:
    lo, hi = spec.bounds()
    threshold = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    if metric is None:
        return not threshold, threshold
    ok = (lo is None or metric >= lo) and (hi is None or metric <= hi)
    return ok, threshold


_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    m = _AGE_RE.match(text)
    if not m:
        raise ValueError(f"bad duration {text!r}: write e.g. 90m, 36h, 2d")
    return float(m.group(1)) * _UNIT[m.group(2)]
