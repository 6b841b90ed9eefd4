"""Profiles: per column type, count, nulls, distinct (approximate), min, max, mean, stddev,
quantiles, top values, string lengths and a pattern guess. Aggregates join the table's single
check scan; top values and patterns come from one sampled query. Queries are sqlglot
expressions the session renders in its engine's dialect."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from typing import cast as typed

import pyarrow.parquet as pq

from andon.checks.types import TEMPORAL_RE, fn, is_numeric
from andon.engines.base import Engine, Session

if TYPE_CHECKING:
    from sqlglot import exp

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
                  ) -> list[tuple[str, exp.Expression]]:
    """(alias, aggregate) pairs for the single scan; ``known`` figures (from the footers)
    are not computed again."""
    from sqlglot import exp

    from andon.engines.sql import column

    known = known or {}
    out: list[tuple[str, exp.Expression]] = [("p__rows", exp.Count(this=exp.Star()))]
    for i, (name, typ) in enumerate(schema):
        c = column(name)
        out.append((f"p{i}_nonnull", exp.Count(this=c)))
        if typ.upper() in ("BOOLEAN",) or typ.upper().startswith(("STRUCT", "MAP", "LIST")) \
                or typ.endswith("[]"):
            continue
        out.append((f"p{i}_distinct", fn("approx_count_distinct", c.copy())))
        if is_numeric(typ) or TEMPORAL_RE.match(typ) or typ == "VARCHAR":
            out.append((f"p{i}_min", exp.Min(this=c.copy())))
            out.append((f"p{i}_max", exp.Max(this=c.copy())))
        if is_numeric(typ):
            out.append((f"p{i}_mean", exp.Avg(this=c.copy())))
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


def sampled_scan(engine: Engine, files: Sequence[str]) -> exp.Expression:
    """A sample of about SAMPLE_ROWS rows in BLOCKS runs spread evenly through the files
    (the engine's ``scan_rows``: a few row groups read, not the whole table)."""
    from sqlglot import exp

    try:
        counts = [pq.read_metadata(f).num_rows for f in files]
    except (OSError, ValueError):  # not Parquet (a table of the engine's): counted there
        cur = engine.cursor()
        counts = [int((cur.execute(exp.select(exp.Count(this=exp.Star())).from_(
            engine.scan([f]))).fetchone() or (0,))[0]) for f in files]
    total = sum(counts)
    if total <= SAMPLE_ROWS:
        return engine.scan(files)
    block = SAMPLE_ROWS // BLOCKS
    stride = total // BLOCKS
    ranges: list[tuple[str, int, int]] = []
    for b in range(BLOCKS):
        start = b * stride
        for f, n in zip(files, counts, strict=True):
            if start < n:
                ranges.append((f, start, start + block - 1))
                break
            start -= n
    return engine.scan_rows(files, ranges)


_SAMPLE = "_andon_sample"


def sample_stats(cur: Session, source: exp.Expression,
                 schema: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Quantiles, top values and a pattern guess per column, from a sample of rows spread
    through the table (``source``: ``sampled_scan``): a few small queries, whatever its
    size."""
    from sqlglot import exp

    from andon.engines.sql import column, ident_sql, table

    cols = [(n, t) for n, t in schema if t == "VARCHAR" or is_numeric(t)
            or t.upper() in ("BOOLEAN", "DATE")]
    if not cols:
        return {}
    kept = exp.select(*(column(n) for n, _ in cols)).from_(source)
    cur.execute(exp.Create(this=table(_SAMPLE), kind="TABLE", expression=kept, replace=True,
                           properties=exp.Properties(expressions=[exp.TemporaryProperty()])))
    try:
        return _sample_stats(cur, cols)
    finally:
        # as text: sqlglot names DROP's table differently across the versions andon allows
        cur.execute(f"DROP TABLE IF EXISTS {ident_sql(_SAMPLE)}")


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def _shape_expr(col: exp.Expression) -> exp.Expression:
    """Letters as A/a and digits as 9, in the engine."""
    from andon.engines.sql import literal

    return fn("translate", col, literal(f"{_UPPER}{_LOWER}0123456789"),
                    literal(f"{'A' * 26}{'a' * 26}{'9' * 10}"))


@functools.cache
def _top_template() -> exp.Expression:
    from andon.engines.sql import parse

    # $parts (the UNION ALL of per-column counts) and $top are placeholders for expressions
    return parse("SELECT col, kind, v, n, sum(n) OVER (PARTITION BY col, kind) AS total "
                 "FROM $parts QUALIFY row_number() OVER "
                 "(PARTITION BY col, kind ORDER BY n DESC, v) <= $top "
                 "ORDER BY col, kind, n DESC, v")


def _counts(j: int, kind: str, value: exp.Expression, present: exp.Expression
            ) -> exp.Select:
    from sqlglot import exp

    from andon.engines.sql import literal, table

    # built in place (copy=False): a wide table has hundreds of these
    return exp.select(exp.alias_(literal(j), "col", copy=False),
                      exp.alias_(literal(kind), "kind", copy=False),
                      exp.alias_(value, "v", copy=False),
                      exp.alias_(exp.Count(this=exp.Star()), "n", copy=False), copy=False) \
        .from_(table(_SAMPLE), copy=False).where(present, copy=False) \
        .group_by(literal(3), copy=False)


def _sample_stats(cur: Session, cols: list[tuple[str, str]]
                  ) -> dict[str, Any]:
    from sqlglot import exp

    from andon.engines.sql import cast, column, literal, table

    parts: list[exp.Select] = []
    for j, (n, t) in enumerate(cols):
        present = column(n).is_(exp.null()).not_()
        parts.append(_counts(j, "v", cast(column(n), "VARCHAR"), present))
        if t == "VARCHAR":
            parts.append(_counts(j, "s", _shape_expr(column(n)), present))
    union: exp.Query = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False, copy=False)
    top = exp.replace_placeholders(_top_template(), parts=union.subquery(copy=False),
                                   top=literal(TOP_K))
    rows = cur.execute(typed("exp.Expression", top)).fetchall()
    numeric = [(j, n) for j, (n, t) in enumerate(cols) if is_numeric(t)]
    texts = [(j, n) for j, (n, t) in enumerate(cols) if t == "VARCHAR"]
    quantiles: dict[int, Any] = {}
    stddevs: dict[int, Any] = {}
    lengths: dict[int, tuple[Any, Any, Any]] = {}
    if numeric or texts:
        qs = exp.Array(expressions=[literal(x) for x in QUANTILES])
        aggs: list[exp.Expression] = []
        for _, n in numeric:
            aggs += [fn("quantile_cont", column(n), qs.copy()), fn("stddev_samp", column(n))]
        for _, n in texts:
            aggs += [agg(this=fn("length", column(n)))
                     for agg in (exp.Min, exp.Max, exp.Avg)]
        row = cur.execute(exp.select(*aggs).from_(table(_SAMPLE))).fetchone() or ()
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
            entry["pattern_share"] = round(float(shapes[0][1]) / float(shapes[0][2]), 4)
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
