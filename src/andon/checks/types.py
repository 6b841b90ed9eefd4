"""The catalog of check types: what each needs, how it compiles to SQL, how it is judged.

Row checks count failing rows with one ``count(*) FILTER (WHERE …)`` each; aggregate checks
compute one metric; both join the single scan of their table. Query checks (relationship,
balance, custom SQL) run as their own queries; meta and history checks need no scan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from andon.checks.model import Check, CheckSpec
from andon.checks.patterns import PATTERNS

Kind = Literal["row", "agg", "unique", "query", "meta", "history", "python"]
ColumnKind = Literal["any", "numeric", "text", "orderable", "temporal"]


@dataclass(frozen=True)
class CheckType:
    name: str
    kind: Kind
    requires: tuple[str, ...]
    column_kind: ColumnKind | None  # None: no column
    doc: str
    example: str


def _t(name: str, kind: Kind, requires: tuple[str, ...], column_kind: ColumnKind | None,
       doc: str, example: str) -> CheckType:
    return CheckType(name, kind, requires, column_kind, doc, example)


CHECK_TYPES: dict[str, CheckType] = {t.name: t for t in [
    # table checks
    _t("row_count", "agg", (), None, "Number of rows within [min, max].",
       "{type: row_count, min: 1}"),
    _t("rows_added", "history", (), None,
       "Rows added since the previous artifact (incremental steps: the new rows) in [min, max];"
       " pair it with spc: to watch batch sizes.", "{type: rows_added, spc: {window: 12}}"),
    _t("freshness", "agg", ("column", "max_age"), "temporal",
       "Age of the newest timestamp (now − max(column)) at most max_age (e.g. 36h, 2d, 90m); "
       "the column is a DATE, a TIMESTAMP (without a zone: read as UTC) or epoch seconds. "
       "Judged on every run, never reused: it depends on the clock.",
       "{type: freshness, column: updated_at, max_age: 36h}"),
    _t("schema", "meta", ("expected",), None,
       "The table has these columns with these types (other columns allowed).",
       "{type: schema, expected: {flight_id: VARCHAR, dep_delay: DOUBLE}}"),
    _t("schema_drift", "history", (), None,
       "Columns added, removed or retyped since the previous artifact (metric: changes; "
       "max_failing allows some).", "{type: schema_drift, severity: warn}"),
    _t("volume_change", "history", ("max_change_pct",), None,
       "Historical balance: row count changes by at most ±max_change_pct % vs the previous "
       "artifact.", "{type: volume_change, max_change_pct: 50}"),
    _t("balance", "query", ("other",), None,
       "Location balance: expr on this table equals other_expr on another table (optionally "
       "plus that source's rejects, optionally in another environment), within tolerance.",
       "{type: balance, expr: 'count(*)', other: raw_flights, plus_rejects: true}"),
    _t("sql", "query", ("sql",), None,
       "Custom SQL returning the failing rows ({{ table }} is this table); with metric: true "
       "it returns one number, judged by min/max (and spc:).",
       "{type: sql, sql: 'SELECT * FROM {{ table }} WHERE dep_delay > arr_delay + 600'}"),
    _t("expression", "row", ("expr",), None, "A row condition that must hold on every row.",
       "{type: expression, expr: 'cancelled OR dep_at IS NOT NULL'}"),
    # column checks
    _t("not_null", "row", ("column",), "any", "No nulls in the column.",
       "{type: not_null, column: carrier}"),
    _t("unique", "unique", (), "any",
       "No duplicate values (column) or combinations (columns); metric: duplicate rows.",
       "{type: unique, columns: [carrier, flight, sched_dep_at]}"),
    _t("accepted_values", "row", ("column", "values"), "any",
       "Non-null values are in the list (values of the column's type; nulls are accepted).",
       "{type: accepted_values, column: origin, values: [EWR, JFK, LGA]}"),
    _t("rejected_values", "row", ("column", "values"), "any",
       "No value is in the list; null in the list rejects SQL NULLs.",
       "{type: rejected_values, column: tailnum, values: ['', UNKNOWN]}"),
    _t("between", "row", ("column",), "orderable",
       "Non-null values are within [min, max]: numbers for a numeric column, dates or "
       "timestamps (e.g. 2013-01-01) for a temporal one, strings for a text one.",
       "{type: between, column: dep_delay, min: -60, max: 1800}"),
    _t("regex", "row", ("column", "pattern"), "text",
       "Non-null values fully match a pattern: a regular expression or a named one ("
       + ", ".join(sorted(PATTERNS)) + ").", "{type: regex, column: tailnum, "
       "pattern: us_tail_number}"),
    _t("length_between", "row", ("column",), "text",
       "String length within [min, max] (whole numbers).",
       "{type: length_between, column: carrier, min: 2, max: 2}"),
    _t("type", "meta", ("column", "expected"), "any",
       "The column has the expected type, e.g. expected: {type: DOUBLE}.",
       "{type: type, column: dep_delay, expected: {type: DOUBLE}}"),
    _t("relationship", "query", ("column", "to"), "any",
       "Referential integrity: non-null values exist in to: TABLE.COLUMN; max_failing_pct "
       "allows an unmatched share.", "{type: relationship, column: tailnum, "
       "to: planes.tailnum, max_failing_pct: 20, severity: warn}"),
    _t("mean_between", "agg", ("column",), "numeric", "Mean within [min, max].",
       "{type: mean_between, column: dep_delay, min: 0, max: 30}"),
    _t("median_between", "agg", ("column",), "numeric", "Median within [min, max].",
       "{type: median_between, column: distance, min: 500, max: 1500}"),
    _t("stddev_between", "agg", ("column",), "numeric", "Sample standard deviation in "
       "[min, max].", "{type: stddev_between, column: dep_delay, max: 100}"),
    _t("sum_between", "agg", ("column",), "numeric", "Sum within [min, max].",
       "{type: sum_between, column: seats, min: 0}"),
    _t("quantile_between", "agg", ("column", "q"), "numeric",
       "The q-quantile (0..1) within [min, max].",
       "{type: quantile_between, column: arr_delay, q: 0.95, max: 180}"),
    _t("distinct_count_between", "agg", ("column",), "any",
       "Number of distinct values (approximate) within [min, max].",
       "{type: distinct_count_between, column: carrier, min: 10, max: 20}"),
    _t("null_share_max", "agg", ("column", "max"), "any",
       "Share of nulls (0..1) at most max.", "{type: null_share_max, column: tailnum, max: 0.02}"),
    _t("temporal_order", "row", ("start", "end"), None,
       "start <= end on every row where both are set; allow_future: false also fails values "
       "in the future (now in UTC: timestamps without a zone are read as UTC, whatever the "
       "machine's time zone).", "{type: temporal_order, start: sched_dep_at, end: dep_at}"),
    _t("distribution_drift", "history", ("column",), "any",
       "Distribution vs the previous artifact (or baseline: a commit id): PSI for categories "
       "and binned numbers (method: psi, default max 0.25) or KS for numbers (method: ks, "
       "default max 0.2).", "{type: distribution_drift, column: carrier, severity: warn}"),
    _t("python", "python", (), None,
       "A Python function in checks/*.py marked @andon.checks.check(table=...): returns "
       "True/False, a number of failing rows (numpy scalars such as .all() or .sum() "
       "included), or a DataFrame of failing rows.",
       "import andon\nimport pandas as pd\n\n\n@andon.checks.check(table=\"flights\", "
       "severity=\"warn\")\ndef few_long_delays(df: pd.DataFrame) -> pd.DataFrame:\n"
       "    return df[df[\"dep_delay\"] > 1000]\n"),
]}

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


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def pattern_of(spec: CheckSpec) -> str:
    assert spec.pattern is not None
    return PATTERNS.get(spec.pattern, spec.pattern)


def now_for(sql_type: str) -> str:
    """"Now" comparable with a column of ``sql_type``, in UTC whatever the session's time zone:
    an instant for a column with a zone, UTC wall-clock time for one without."""
    if "TIME ZONE" in sql_type.upper() or sql_type.upper() == "TIMESTAMPTZ":
        return "now()"
    return "(now() AT TIME ZONE 'UTC')"


def predicate(check: Check, schema: Sequence[tuple[str, str]] = ()) -> str:
    """SQL that is true for a failing row (row checks); ``schema`` types "now" for
    ``temporal_order``."""
    s = check.spec
    col = q(s.column) if s.column else ""
    if s.type == "not_null":
        return f"{col} IS NULL"
    # null in a list of values means SQL NULL (IS NULL), never the string 'None'
    given = [lit(v) for v in s.values or [] if v is not None]
    if s.type == "accepted_values":  # nulls are always accepted
        return f"{col} IS NOT NULL" + (f" AND {col} NOT IN ({', '.join(given)})" if given else "")
    if s.type == "rejected_values":
        parts = [f"{col} IN ({', '.join(given)})"] if given else []
        if None in (s.values or []):
            parts.append(f"{col} IS NULL")
        return "(" + " OR ".join(parts) + ")" if parts else "false"
    if s.type == "between":
        parts = []
        if s.min is not None:
            parts.append(f"{col} < {lit(s.min)}")
        if s.max is not None:
            parts.append(f"{col} > {lit(s.max)}")
        return "(" + " OR ".join(parts) + ")" if parts else "false"
    if s.type == "regex":
        return f"{col} IS NOT NULL AND NOT regexp_full_match({col}, {lit(pattern_of(s))})"
    if s.type == "length_between":
        parts = []
        lo, hi = num(s.min), num(s.max)
        if lo is not None:
            parts.append(f"length({col}) < {int(lo)}")
        if hi is not None:
            parts.append(f"length({col}) > {int(hi)}")
        return "(" + " OR ".join(parts) + ")" if parts else "false"
    if s.type == "expression":
        return f"NOT coalesce(({s.expr}), false)"
    if s.type == "temporal_order":
        assert s.start and s.end
        cond = f"({q(s.start)} > {q(s.end)})"
        if not s.allow_future:
            types = dict(schema)
            cond = (f"({cond} OR {q(s.start)} > {now_for(types.get(s.start, ''))} "
                    f"OR {q(s.end)} > {now_for(types.get(s.end, ''))})")
        return f"coalesce({cond}, false)"
    raise ValueError(f"{s.type} is not a row check")


def aggregate(check: Check) -> str:
    """SQL aggregate computing the check's metric (aggregate and unique checks)."""
    s = check.spec
    col = q(s.column) if s.column else ""
    match s.type:
        case "row_count":
            return "count(*)"
        case "freshness":
            return f"max({col})"
        case "mean_between":
            return f"avg({col})"
        case "median_between":
            return f"median({col})"
        case "stddev_between":
            return f"stddev_samp({col})"
        case "sum_between":
            return f"sum({col})"
        case "quantile_between":
            return f"quantile_cont({col}, {lit(s.q)})"
        case "distinct_count_between":
            return f"approx_count_distinct({col})"
        case "null_share_max":
            return f"coalesce(count(*) FILTER (WHERE {col} IS NULL) / nullif(count(*), 0), 0)"
        case "unique":
            cols = check.columns
            if len(cols) == 1:
                return f"count({q(cols[0])}) - count(DISTINCT {q(cols[0])})"
            return f"count(*) - count(DISTINCT row({', '.join(q(c) for c in cols)}))"
    raise ValueError(f"{s.type} is not an aggregate check")


def judge_failing(spec: CheckSpec, failing: int, total: int) -> tuple[bool, dict[str, Any]]:
    """Row checks: passed when failing rows are within max_failing and max_failing_pct."""
    threshold: dict[str, Any] = {}
    ok = True
    if spec.max_failing_pct is not None:
        threshold["max_failing_pct"] = spec.max_failing_pct
        ok = ok and (100.0 * failing / total if total else 0.0) <= spec.max_failing_pct
    if spec.max_failing is not None or spec.max_failing_pct is None:
        limit = spec.max_failing or 0
        threshold["max_failing"] = limit
        ok = ok and failing <= limit
    return ok, threshold


def judge_range(spec: CheckSpec, metric: float | None) -> tuple[bool, dict[str, Any]]:
    lo, hi = num(spec.min), num(spec.max)
    threshold = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    if metric is None:
        return not threshold, threshold
    ok = (lo is None or metric >= lo) and (hi is None or metric <= hi)
    return ok, threshold


def num(bound: float | str | None) -> float | None:
    """A numeric threshold (only between takes text bounds; the spec refuses them elsewhere)."""
    return bound if isinstance(bound, float | int) else None


_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    m = _AGE_RE.match(text)
    if not m:
        raise ValueError(f"bad duration {text!r}: write e.g. 90m, 36h, 2d")
    return float(m.group(1)) * _UNIT[m.group(2)]


KIND_TEXT = {
    "row": "row check: counts failing rows in the table's single scan",
    "agg": "aggregate check: one metric from the table's single scan",
    "unique": "aggregate check: duplicate rows, from the table's single scan",
    "query": "query check: its own query (may read another table)",
    "meta": "metadata check: reads the artifact's schema, no scan",
    "history": "history check: compares with the previous artifact",
    "python": "Python check: a function given the table",
}


def render_docs() -> str:
    """docs/checks.md, generated from ``CHECK_TYPES`` (``python -m andon.checks.types``)."""
    out = [
        "# Check types",
        "",
        "<!-- generated from andon.checks.types.CHECK_TYPES: python -m andon.checks.types "
        "> docs/checks.md -->",
        "",
        "Checks are declared in a step's header (`checks:`), under a source in `andon.yaml`, "
        "or in `checks/*.yaml` (table name → list), `checks/*.sql` (a header with `table:`; "
        "the query returns failing rows) and `checks/*.py`. Every check has `type`, and "
        "optionally `name`, `severity` (error: stops the line; warn: alerts; info: records), "
        "`description`, `owner`, `spc:` (statistical process control of its metric) and, for "
        "checks counting failing rows, `max_failing` / `max_failing_pct`.",
        "",
        "How checks are judged:",
        "",
        "- **Statuses.** `passed`; `failed` (error: the artifact is rejected and the line "
        "stops; warn: the run succeeds and alerts); `recorded` (an info check that did not "
        "pass); `error`: the check could not run (a runtime SQL error, a Python check that "
        "raised). A check that cannot run is a defect of the pipeline: it is shown as "
        "*errored*, alerted, and judged like a failure of its severity. Summaries count by "
        "status and severity, e.g. `checks: 40 passed, 2 warn failed, 1 error-severity "
        "errored; 12 reused (1 warn failed)`.",
        "- **Reuse.** A result is kept with the artifact it judged: a run that rebuilds "
        "nothing reuses it and shows it as *reused*, without alerting again. `freshness` "
        "(it depends on the clock) and checks that could not run are judged again every run.",
        "- **Plan time.** Before any work, each check is bound to its table's schema as the "
        "engine infers it: unknown columns (also inside `expr` and custom `sql`), a column of "
        "the wrong kind, `values` and `between` bounds that do not fit the column's type, and "
        "regular expressions that the engine's RE2 refuses (no lookarounds or "
        "backreferences) fail with the file and line.",
        "- **Nulls.** `null` in `values` means SQL NULL: `rejected_values` with `null` "
        "rejects missing values; `accepted_values` always accepts them (`not_null` refuses).",
        "- **Time.** \"Now\" is UTC: timestamps without a zone are read as UTC by "
        "`freshness` and by `temporal_order` with `allow_future: false`, whatever the "
        "machine's time zone.",
        "- **Thresholds** are numbers; a percentage may be written `5` or `'5%'` "
        "(`max_failing_pct`, `max_change_pct`); `between` bounds are numbers, dates or "
        "timestamps (`2013-01-31`, `'2013-01-31 06:00'`) or strings, as the column is; "
        "`length_between` bounds are whole numbers.",
        "- **Custom SQL** reads `{{ table }}` and `{{ ref('other') }}` as views of the "
        "artifacts being checked.",
        "",
    ]
    for t in CHECK_TYPES.values():
        needs = ", ".join(f"`{r}`" for r in t.requires) or "nothing"
        out += [f"## {t.name}", "", t.doc, "",
                f"- kind: {KIND_TEXT[t.kind]}",
                f"- needs: {needs}" + (f"; column: {t.column_kind}" if t.column_kind else ""),
                ""]
        if t.kind == "python":
            out += ["```python", f"# checks/{t.name}_checks.py", t.example.rstrip(), "```", ""]
        else:
            out += ["```yaml", f"- {t.example}", "```", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(render_docs(), end="")
