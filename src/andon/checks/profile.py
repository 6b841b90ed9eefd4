"""Profiles: per column type, count, nulls, distinct (approximate), min, max, mean, stddev,
quantiles, top values, string lengths and a pattern guess. Aggregates join the table's single
check scan; top values and patterns come from one sampled query."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from andon.checks.types import TEMPORAL_RE, is_numeric, q

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
SAMPLE_ROWS = 10_000
TOP_K = 5


def profile_exprs(schema: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(alias, aggregate SQL) pairs for the single scan."""
    out: list[tuple[str, str]] = [("p__rows", "count(*)")]
    for i, (name, typ) in enumerate(schema):
        c = q(name)
        out.append((f"p{i}_nonnull", f"count({c})"))
        if typ.upper() in ("BOOLEAN",) or typ.upper().startswith(("STRUCT", "MAP", "LIST")) \
                or typ.endswith("[]"):
            continue
        out.append((f"p{i}_distinct", f"approx_count_distinct({c})"))
        if is_numeric(typ) or TEMPORAL_RE.match(typ) or typ == "VARCHAR":
            out.append((f"p{i}_min", f"min({c})"))
            out.append((f"p{i}_max", f"max({c})"))
        if is_numeric(typ):
            out.append((f"p{i}_mean", f"avg({c})"))
            out.append((f"p{i}_stddev", f"stddev_samp({c})"))
            qs = ", ".join(str(x) for x in QUANTILES)
            out.append((f"p{i}_quantiles", f"approx_quantile({c}, [{qs}])"))
        if typ == "VARCHAR":
            out.append((f"p{i}_len_min", f"min(length({c}))"))
            out.append((f"p{i}_len_max", f"max(length({c}))"))
            out.append((f"p{i}_len_mean", f"avg(length({c}))"))
    return out


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return str(v)


def assemble(schema: Sequence[tuple[str, str]], values: Mapping[str, Any],
             sample: Mapping[str, Any]) -> dict[str, Any]:
    rows = int(values.get("p__rows") or 0)
    columns: dict[str, Any] = {}
    for i, (name, typ) in enumerate(schema):
        nonnull = int(values.get(f"p{i}_nonnull") or 0)
        col: dict[str, Any] = {"type": typ, "count": nonnull, "nulls": rows - nonnull,
                               "null_share": round((rows - nonnull) / rows, 6) if rows else 0.0}
        for key in ("distinct", "min", "max", "mean", "stddev", "len_min", "len_max",
                    "len_mean"):
            if f"p{i}_{key}" in values:
                col[key] = _plain(values[f"p{i}_{key}"])
        if f"p{i}_quantiles" in values and values[f"p{i}_quantiles"] is not None:
            col["quantiles"] = dict(zip([str(x) for x in QUANTILES],
                                        _plain(values[f"p{i}_quantiles"]), strict=False))
        col.update(sample.get(name, {}))
        columns[name] = col
    return {"rows": rows, "columns": columns}


def sample_stats(cur: duckdb.DuckDBPyConnection, source_sql: str,
                 schema: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Top values and a pattern guess per column, from a sample of rows."""
    cols = [(n, t) for n, t in schema if t == "VARCHAR" or is_numeric(t)
            or t.upper() in ("BOOLEAN", "DATE")]
    if not cols:
        return {}
    select = ", ".join(q(n) for n, _ in cols)
    rows = cur.execute(
        f"SELECT {select} FROM {source_sql} USING SAMPLE {SAMPLE_ROWS} ROWS"
    ).fetchall()
    out: dict[str, Any] = {}
    for j, (name, typ) in enumerate(cols):
        values = [r[j] for r in rows if r[j] is not None]
        if not values:
            continue
        counts = Counter(values).most_common(TOP_K)
        entry: dict[str, Any] = {"top_values": [[_plain(v), n] for v, n in counts]}
        if typ == "VARCHAR":
            shapes = Counter(_shape(str(v)) for v in values)
            shape, n = shapes.most_common(1)[0]
            entry["pattern"] = shape
            entry["pattern_share"] = round(n / len(values), 4)
        out[name] = entry
    return out


def _shape(value: str) -> str:
    """A regex-like shape: letters → A/a, digits → 9, runs collapsed (N12345 → A9{5})."""
    out: list[str] = []
    for ch in value:
        token = "A" if ch.isupper() else "a" if ch.isalpha() else "9" if ch.isdigit() else (
            ch if ch == " " else re.escape(ch))
        out.append(token)
    collapsed: list[str] = []
    i = 0
    while i < len(out):
        j = i
        while j < len(out) and out[j] == out[i]:
            j += 1
        n = j - i
        collapsed.append(out[i] + (f"{{{n}}}" if n > 1 else ""))
        i = j
    return "".join(collapsed)
