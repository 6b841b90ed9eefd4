"""Profiles: per column type, count, nulls, distinct (approximate), min, max, mean, stddev,
quantiles, top values, string lengths and a pattern guess. Aggregates join the table's single
check scan; top values and patterns come from one sampled query."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow.parquet as pq

from andon.checks.types import TEMPORAL_RE, is_numeric, q
from andon.engines.base import Session

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
SAMPLE_ROWS = 10_000
TOP_K = 5


def footer_stats(files: Sequence[str], schema: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Row and null counts, and min/max of numeric and temporal columns, from the Parquet
    footers: what the files already know costs no scan. A column is left out when any row
    group lacks its statistics."""
    names = {name: i for i, (name, _) in enumerate(schema)}
    types = dict(schema)
    rows = 0
    nulls: dict[str, int] = {}
    lows: dict[str, Any] = {}
    highs: dict[str, Any] = {}
    broken: set[str] = set()
    try:
        for f in files:
            md = pq.read_metadata(f)
            rows += md.num_rows
            for g in range(md.num_row_groups):
                group = md.row_group(g)
                for c in range(group.num_columns):
                    col = group.column(c)
                    name = col.path_in_schema
                    stats = col.statistics
                    if name not in names or stats is None or not stats.has_null_count:
                        broken.add(name)
                        continue
                    nulls[name] = nulls.get(name, 0) + stats.null_count
                    fits = is_numeric(types[name]) or bool(TEMPORAL_RE.match(types[name]))
                    if fits and stats.has_min_max and not types[name].startswith("DECIMAL"):
                        lows[name] = stats.min if name not in lows else min(lows[name],
                                                                            stats.min)
                        highs[name] = stats.max if name not in highs else max(highs[name],
                                                                              stats.max)
                    elif group.num_rows > stats.null_count:
                        lows.pop(name, None)
                        highs.pop(name, None)
                        broken.add(f"minmax:{name}")
    except (OSError, ValueError, TypeError):
        return {}
    out: dict[str, Any] = {"p__rows": rows}
    for name, i in names.items():
        if name in broken or name not in nulls:
            continue
        out[f"p{i}_nonnull"] = rows - nulls[name]
        if f"minmax:{name}" not in broken and name in lows:
            out[f"p{i}_min"], out[f"p{i}_max"] = lows[name], highs[name]
    return out


def profile_exprs(schema: Sequence[tuple[str, str]], known: Mapping[str, Any] | None = None
                  ) -> list[tuple[str, str]]:
    """(alias, aggregate SQL) pairs for the single scan; ``known`` figures (from the footers)
    are not computed again."""
    known = known or {}
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
            # the standard deviation is estimated from the sample (exact for tables of up to
            # SAMPLE_ROWS rows): computing it over every row costs half a scan
    # string lengths come from the sample (sample_stats): one less pass over every string
    return [(a, e) for a, e in out if a not in known]


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


BLOCKS = 10


def sampled_scan(files: Sequence[str]) -> str:
    """A sample of about SAMPLE_ROWS rows in BLOCKS runs spread evenly through the files.

    Row ranges on ``file_row_number`` prune Parquet row groups, so the sample reads a few
    row groups instead of the whole table (a reservoir sample would scan all of it)."""
    counts = [pq.read_metadata(f).num_rows for f in files]
    total = sum(counts)
    lits = [_lit(f) for f in files]
    if total <= SAMPLE_ROWS:
        return f"read_parquet([{', '.join(lits)}], union_by_name = true)"
    block = SAMPLE_ROWS // BLOCKS
    stride = total // BLOCKS
    conditions = []
    for b in range(BLOCKS):
        start = b * stride
        for f, n in zip(lits, counts, strict=True):
            if start < n:
                conditions.append(f"(filename = {f} AND file_row_number BETWEEN {start} AND "
                                  f"{start + block - 1})")
                break
            start -= n
    return (f"(SELECT * EXCLUDE (filename, file_row_number) FROM read_parquet("
            f"[{', '.join(lits)}], filename = true, file_row_number = true, "
            f"union_by_name = true) WHERE {' OR '.join(conditions)})")


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def sample_stats(cur: Session, files: Sequence[str],
                 schema: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Quantiles, top values and a pattern guess per column, from a sample of rows spread
    through the table: a few small queries, whatever its size."""
    cols = [(n, t) for n, t in schema if t == "VARCHAR" or is_numeric(t)
            or t.upper() in ("BOOLEAN", "DATE")]
    if not cols:
        return {}
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _andon_sample AS SELECT "
                f"{', '.join(q(n) for n, _ in cols)} FROM {sampled_scan(files)}")
    try:
        return _sample_stats(cur, cols)
    finally:
        cur.execute("DROP TABLE IF EXISTS _andon_sample")


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def _shape_sql(col: str) -> str:
    return (f"translate({col}, '{_UPPER}{_LOWER}0123456789', "
            f"'{'A' * 26}{'a' * 26}{'9' * 10}')")


def _sample_stats(cur: Session, cols: list[tuple[str, str]]
                  ) -> dict[str, Any]:
    sample = "_andon_sample"
    parts = []
    for j, (n, t) in enumerate(cols):
        parts.append(f"SELECT {j} AS col, 'v' AS kind, CAST({q(n)} AS VARCHAR) AS v, "
                     f"count(*) AS n FROM {sample} WHERE {q(n)} IS NOT NULL GROUP BY 3")
        if t == "VARCHAR":
            parts.append(f"SELECT {j}, 's', {_shape_sql(q(n))}, count(*) FROM {sample} "
                         f"WHERE {q(n)} IS NOT NULL GROUP BY 3")
    rows = cur.execute(
        f"SELECT col, kind, v, n, sum(n) OVER (PARTITION BY col, kind) AS total FROM "
        f"({' UNION ALL '.join(parts)}) QUALIFY row_number() OVER "
        f"(PARTITION BY col, kind ORDER BY n DESC, v) <= {TOP_K} ORDER BY col, kind, n DESC, v"
    ).fetchall()
    numeric = [(j, n) for j, (n, t) in enumerate(cols) if is_numeric(t)]
    texts = [(j, n) for j, (n, t) in enumerate(cols) if t == "VARCHAR"]
    quantiles: dict[int, Any] = {}
    stddevs: dict[int, Any] = {}
    lengths: dict[int, tuple[Any, Any, Any]] = {}
    if numeric or texts:
        qs = ", ".join(str(x) for x in QUANTILES)
        aggs = [f"quantile_cont({q(n)}, [{qs}]), stddev_samp({q(n)})" for _, n in numeric]
        aggs += [f"min(length({q(n)})), max(length({q(n)})), avg(length({q(n)}))"
                 for _, n in texts]
        row = cur.execute(f"SELECT {', '.join(aggs)} FROM {sample}").fetchone() or ()
        quantiles = {j: row[2 * k] for k, (j, _) in enumerate(numeric)}
        stddevs = {j: row[2 * k + 1] for k, (j, _) in enumerate(numeric)}
        rest = list(row[2 * len(numeric):])
        for k, (j, _) in enumerate(texts):
            lengths[j] = tuple(rest[3 * k:3 * k + 3])
    out: dict[str, Any] = {}
    for j, (name, _typ) in enumerate(cols):
        entry: dict[str, Any] = {"top_values": [[v, n] for c, k, v, n, _ in rows
                                                if c == j and k == "v"]}
        if stddevs.get(j) is not None:
            entry["stddev"] = float(stddevs[j])
        if quantiles.get(j) is not None:
            entry["quantiles"] = dict(zip([str(x) for x in QUANTILES], _plain(quantiles[j]),
                                          strict=False))
        if j in lengths and lengths[j][0] is not None:
            low, high, mean = lengths[j]
            entry.update(len_min=low, len_max=high, len_mean=round(float(mean), 3))
        shapes = [(v, n, total) for c, k, v, n, total in rows if c == j and k == "s"]
        if shapes:
            entry["pattern"] = _collapse(shapes[0][0])
            entry["pattern_share"] = round(shapes[0][1] / shapes[0][2], 4)
        if entry["top_values"] or len(entry) > 1:
            out[name] = entry
    return out


def _collapse(shape: str) -> str:
    """``A99999`` → ``A9{5}``; other characters escaped as in a regex."""
    return _shape_tokens([ch if ch in "Aa9" else (ch if ch == " " else re.escape(ch))
                          for ch in shape])


def _shape(value: str) -> str:
    """A regex-like shape: letters → A/a, digits → 9, runs collapsed (N12345 → A9{5})."""
    out: list[str] = []
    for ch in value:
        token = "A" if ch.isupper() else "a" if ch.isalpha() else "9" if ch.isdigit() else (
            ch if ch == " " else re.escape(ch))
        out.append(token)
    return _shape_tokens(out)


def _shape_tokens(out: list[str]) -> str:
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
