"""``andon checks suggest``: propose checks from a table's profile, as YAML to edit and keep."""

from __future__ import annotations

import math
from typing import Any

import yaml

from andon.checks.types import is_numeric

MAX_CATEGORIES = 20


def _regex_of(shape: str) -> str:
    out = []
    i = 0
    while i < len(shape):
        ch = shape[i]
        token = {"A": "[A-Z]", "a": "[a-z]", "9": "[0-9]"}.get(ch)
        if ch == "\\" and i + 1 < len(shape):
            token, i = shape[i:i + 2], i + 1
        out.append(token if token is not None else ch)
        i += 1
    return "".join(out)


def _widen(lo: float, hi: float) -> tuple[float, float]:
    """10% wider on each side; a column never seen negative (counts, amounts) stays >= 0."""
    span = (hi - lo) or abs(hi) or 1.0
    low = math.floor(lo - 0.1 * span)
    return (max(0, low) if lo >= 0 else low), math.ceil(hi + 0.1 * span)


def suggest(table: str, profile: dict[str, Any], categories: dict[str, list[Any]],
            history_rows: list[int]) -> list[dict[str, Any]]:
    """Checks a reviewer would likely keep; each says why in its description."""
    rows = int(profile.get("rows") or 0)
    out: list[dict[str, Any]] = []
    columns: dict[str, Any] = profile.get("columns", {})
    out.append({"type": "schema", "expected": {c: p["type"] for c, p in columns.items()},
                "description": "columns and types as profiled"})
    for name, p in columns.items():
        if name.startswith("_"):
            continue
        nulls = int(p.get("nulls") or 0)
        if nulls == 0 and rows:
            out.append({"type": "not_null", "column": name,
                        "description": f"no nulls in {rows:,} rows"})
        elif rows:
            share = nulls / rows
            limit = round(min(1.0, share * 1.5 + 0.001), 4)
            out.append({"type": "null_share_max", "column": name, "max": limit,
                        "severity": "warn",
                        "description": f"{share:.2%} nulls when profiled"})
        distinct = p.get("distinct")
        if distinct and rows and nulls == 0 and distinct >= rows * 0.999:
            out.append({"type": "unique", "column": name,
                        "description": "every profiled value was distinct"})
        if name in categories:
            out.append({"type": "accepted_values", "column": name,
                        "values": sorted(categories[name], key=str),
                        "description": f"{len(categories[name])} values seen"})
        typ = p.get("type", "")
        if is_numeric(typ) and p.get("min") is not None and p.get("max") is not None:
            lo, hi = _widen(float(p["min"]), float(p["max"]))
            out.append({"type": "between", "column": name, "min": lo, "max": hi,
                        "severity": "warn",
                        "description": f"profiled range {p['min']}..{p['max']}, widened 10%"})
        if typ == "VARCHAR" and p.get("pattern") and (p.get("pattern_share") or 0) >= 0.99 \
                and name not in categories:
            out.append({"type": "regex", "column": name, "pattern": _regex_of(p["pattern"]),
                        "severity": "warn",
                        "description": f"{p['pattern_share']:.1%} of sampled values share "
                                       "this shape"})
    spc_note = f"{len(history_rows)} past artifacts" if history_rows else "no history yet"
    out.append({"type": "row_count", "min": 1, "spc": {"window": 30, "min_history": 8},
                "severity": "warn", "description": f"row count under SPC ({spc_note})"})
    return [_named(table, c) for c in out]


def _named(table: str, check: dict[str, Any]) -> dict[str, Any]:
    """An explicit name: kept apart from the default names of checks already declared (a
    step header's ``{type: not_null, column: id}`` is ``table.not_null.id``)."""
    parts = [table, "suggested", check["type"]]
    if "column" in check:
        parts.append(check["column"])
    return {"name": ".".join(parts), **check}


def to_yaml(table: str, checks: list[dict[str, Any]]) -> str:
    header = (f"# Checks suggested by `andon checks suggest {table}` from its profile.\n"
              "# Review them: keep what states a real expectation, delete the rest.\n")
    return header + yaml.safe_dump({table: checks}, sort_keys=False, allow_unicode=True,
                                   width=100)
