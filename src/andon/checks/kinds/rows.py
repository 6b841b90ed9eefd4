"""Row checks: each counts its failing rows in the table's single scan
(``count(*) FILTER (WHERE …)``); ``unique`` counts duplicates there."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from andon.checks.kinds.base import CheckType, Family, S
from andon.checks.model import Check, CheckResult, WithFailing, WithRange
from andon.checks.patterns import PATTERNS
from andon.checks.types import is_numeric, judge_failing, lit, now_for, q
from andon.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from andon.checks.context import Evaluation
    from andon.yamlfile import YamlDoc


class RowCheck(CheckType[S]):
    """A row condition; ``predicate`` is true for a failing row."""

    family: ClassVar[Family] = "row"
    what: ClassVar[str] = "failing rows"

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> str:
        raise NotImplementedError(f"row check type {self.name!r} defines no predicate")

    def compile(self, c: Check, schema: Sequence[tuple[str, str]]) -> str:
        return f"count(*) FILTER (WHERE {self.predicate(c, schema)})"

    def failing_rows(self, ev: Evaluation, c: Check) -> str:
        return f"SELECT * FROM {ev.src} WHERE {self.predicate(c, ev.manifest.schema)}"

    def judge(self, ev: Evaluation, c: Check, value: Any) -> CheckResult:
        failing = int(value or 0)
        spec = self.of(c)
        ok, threshold = judge_failing(spec if isinstance(spec, WithFailing) else None,
                                      failing, ev.total)
        sample = ev.sample(c, self.failing_rows(ev, c)) if failing and not ok else []
        pct = 100.0 * failing / ev.total if ev.total else 0.0
        msg = f"{failing:,} {self.what} of {ev.total:,} ({pct:.2f}%)"
        return ev.with_spc(c, ev.result(c, ok, failing, threshold, msg, failing, sample))


class ColumnSpec(WithFailing):
    column: str


class NotNullSpec(ColumnSpec):
    type: Literal["not_null"]


class NotNull(RowCheck[NotNullSpec]):
    name = "not_null"
    spec = NotNullSpec
    column_kind = "any"
    doc = "No nulls in the column."
    example = "{type: not_null, column: carrier}"

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> str:
        return f"{q(self.of(c).column)} IS NULL"


class ValuesSpec(ColumnSpec):
    values: list[Any]


class AcceptedValuesSpec(ValuesSpec):
    type: Literal["accepted_values"]


class RejectedValuesSpec(ValuesSpec):
    type: Literal["rejected_values"]


class _Values(RowCheck[S]):
    column_kind = "any"

    def validate(self, c: Check, schema: Mapping[str, str],
                 other_schema: Mapping[str, str] | None = None) -> None:
        from andon.checks.bind import cast_error

        super().validate(c, schema, other_schema)
        s = self.of(c)
        assert isinstance(s, ValuesSpec)
        col_type = schema.get(s.column, "")
        for v in s.values:
            why = cast_error(v, col_type) if v is not None and col_type else None
            if why:
                raise ConfigError(
                    f"check {c.name!r}: value {v!r} does not fit {c.table}.{s.column} "
                    f"({col_type}): {why}", file=c.file, line=c.line,
                    hint="list values of the column's type; null means SQL NULL")

    @staticmethod
    def given(s: ValuesSpec) -> list[str]:
        # null in a list of values means SQL NULL (IS NULL), never the string 'None'
        return [lit(v) for v in s.values if v is not None]


class AcceptedValues(_Values[AcceptedValuesSpec]):
    name = "accepted_values"
    spec = AcceptedValuesSpec
    doc = "Non-null values are in the list (values of the column's type; nulls are accepted)."
    example = "{type: accepted_values, column: origin, values: [EWR, JFK, LGA]}"

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> str:
        s = self.of(c)
        col, given = q(s.column), self.given(s)  # nulls are always accepted
        return f"{col} IS NOT NULL" + (f" AND {col} NOT IN ({', '.join(given)})" if given
                                       else "")


class RejectedValues(_Values[RejectedValuesSpec]):
    name = "rejected_values"
    spec = RejectedValuesSpec
    doc = "No value is in the list; null in the list rejects SQL NULLs."
    example = "{type: rejected_values, column: tailnum, values: ['', UNKNOWN]}"

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> str:
        s = self.of(c)
        col, given = q(s.column), self.given(s)
        parts = [f"{col} IN ({', '.join(given)})"] if given else []
        if None in s.values:
            parts.append(f"{col} IS NULL")
        return "(" + " OR ".join(parts) + ")" if parts else "false"


def _outside(col: str, lo: str | None, hi: str | None) -> str:
    parts = ([f"{col} < {lo}"] if lo is not None else []) + (
        [f"{col} > {hi}"] if hi is not None else [])
    return "(" + " OR ".join(parts) + ")" if parts else "false"


class BetweenSpec(WithRange, ColumnSpec):
    text_bounds = True
    type: Literal["between"]


class Between(RowCheck[BetweenSpec]):
    name = "between"
    spec = BetweenSpec
    column_kind = "orderable"
    doc = ("Non-null values are within [min, max]: numbers for a numeric column, dates or "
           "timestamps (e.g. 2013-01-01) for a temporal one, strings for a text one.")
    example = "{type: between, column: dep_delay, min: -60, max: 1800}"

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> str:
        s = self.of(c)
        return _outside(q(s.column), None if s.min is None else lit(s.min),
                        None if s.max is None else lit(s.max))

    def validate(self, c: Check, schema: Mapping[str, str],
                 other_schema: Mapping[str, str] | None = None) -> None:
        from andon.checks.bind import cast_error

        super().validate(c, schema, other_schema)
        s = self.of(c)
        col_type = schema.get(s.column, "")
        numeric = is_numeric(col_type)
        for key in ("min", "max"):
            bound = getattr(s, key)
            if bound is None:
                continue
            where = f"{key}: {bound!r} does not fit {c.table}.{s.column} ({col_type})"
            if numeric != isinstance(bound, float):
                what = "numbers" if numeric else ("strings" if col_type.upper() == "VARCHAR"
                                                  else "dates or timestamps, e.g. 2013-01-31")
                raise ConfigError(f"check {c.name!r}: {where}", file=c.file, line=c.line,
                                  hint=f"bounds of a {col_type} column are {what}")
            why = cast_error(bound, col_type) if not numeric else None
            if why:
                raise ConfigError(f"check {c.name!r}: {where}: {why}", file=c.file,
                                  line=c.line, hint="write e.g. 2013-01-31 or 2013-01-31 06:00")


class RegexSpec(ColumnSpec):
    type: Literal["regex"]
    pattern: str


class Regex(RowCheck[RegexSpec]):
    name = "regex"
    spec = RegexSpec
    column_kind = "text"
    doc = ("Non-null values fully match a pattern: a regular expression or a named one ("
           + ", ".join(sorted(PATTERNS)) + ").")
    example = "{type: regex, column: tailnum, pattern: us_tail_number}"

    def check_spec(self, spec: RegexSpec, doc: YamlDoc) -> None:
        if spec.pattern in PATTERNS:
            return
        from andon.checks.bind import regex_error

        looks_named = re.fullmatch(r"[a-z][a-z0-9_]*", spec.pattern) is not None
        hint = did_you_mean(spec.pattern, PATTERNS) if looks_named else ""
        why = regex_error(spec.pattern)  # the engine's RE2, not Python's re, runs it
        if why:
            raise ConfigError(f"invalid regular expression {spec.pattern!r}: {why}",
                              file=doc.file, line=doc.line_of(("pattern",)),
                              hint=hint or "the syntax is RE2's (no lookarounds, no "
                              f"backreferences); named patterns: {', '.join(sorted(PATTERNS))}")
        if hint:
            raise ConfigError(f"unknown pattern name {spec.pattern!r}", file=doc.file,
                              line=doc.line_of(("pattern",)), hint=hint)

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> str:
        s = self.of(c)
        col = q(s.column)
        pattern = PATTERNS.get(s.pattern, s.pattern)
        return f"{col} IS NOT NULL AND NOT regexp_full_match({col}, {lit(pattern)})"


class LengthBetweenSpec(WithRange, ColumnSpec):
    whole_bounds = True
    type: Literal["length_between"]


class LengthBetween(RowCheck[LengthBetweenSpec]):
    name = "length_between"
    spec = LengthBetweenSpec
    column_kind = "text"
    doc = "String length within [min, max] (whole numbers)."
    example = "{type: length_between, column: carrier, min: 2, max: 2}"

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> str:
        lo, hi = self.of(c).bounds()
        return _outside(f"length({q(self.of(c).column)})",
                        None if lo is None else str(int(lo)), None if hi is None else str(int(hi)))


class ExpressionSpec(WithFailing):
    type: Literal["expression"]
    expr: str


class Expression(RowCheck[ExpressionSpec]):
    name = "expression"
    spec = ExpressionSpec
    doc = "A row condition that must hold on every row."
    example = "{type: expression, expr: 'cancelled OR dep_at IS NOT NULL'}"

    def check_spec(self, spec: ExpressionSpec, doc: YamlDoc) -> None:
        from andon.checks.load import parse_sql

        parse_sql(f"SELECT {spec.expr}", doc.file, doc.line_of(("expr",)) or 1)

    def validate(self, c: Check, schema: Mapping[str, str],
                 other_schema: Mapping[str, str] | None = None) -> None:
        from andon.checks.bind import bind_error

        super().validate(c, schema, other_schema)
        expr = self.of(c).expr
        why = bind_error(f"SELECT coalesce(({expr}), false)::BOOLEAN FROM {{{{ table }}}}",
                         schema)
        if why:
            raise ConfigError(f"check {c.name!r}: its expr does not fit table {c.table!r}: "
                              f"{why}", file=c.file, line=c.line,
                              hint=f"columns of {c.table}: {', '.join(schema)}")

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> str:
        return f"NOT coalesce(({self.of(c).expr}), false)"


class TemporalOrderSpec(WithFailing):
    type: Literal["temporal_order"]
    start: str
    end: str
    allow_future: bool = True


class TemporalOrder(RowCheck[TemporalOrderSpec]):
    name = "temporal_order"
    spec = TemporalOrderSpec
    doc = ("start <= end on every row where both are set; allow_future: false also fails values "
           "in the future (now in UTC: timestamps without a zone are read as UTC, whatever the "
           "machine's time zone).")
    example = "{type: temporal_order, start: sched_dep_at, end: dep_at}"

    def columns(self, spec: TemporalOrderSpec) -> list[str]:
        return [spec.start, spec.end]

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> str:
        s = self.of(c)
        cond = f"({q(s.start)} > {q(s.end)})"
        if not s.allow_future:
            types = dict(schema)
            cond = (f"({cond} OR {q(s.start)} > {now_for(types.get(s.start, ''))} "
                    f"OR {q(s.end)} > {now_for(types.get(s.end, ''))})")
        return f"coalesce({cond}, false)"


class UniqueSpec(WithFailing):
    type: Literal["unique"]
    column: str | None = None
    columns: list[str] | None = None  # wins over column when both are set


class Unique(RowCheck[UniqueSpec]):
    name = "unique"
    spec = UniqueSpec
    family = "agg"
    column_kind = "any"
    what = "duplicate rows"
    kind_text = "aggregate check: duplicate rows, from the table's single scan"
    doc = "No duplicate values (column) or combinations (columns); metric: duplicate rows."
    example = "{type: unique, columns: [carrier, flight, sched_dep_at]}"

    def check_spec(self, spec: UniqueSpec, doc: YamlDoc) -> None:
        if not (spec.column or spec.columns):
            raise ConfigError("check type 'unique' needs 'column' or 'columns'",
                              file=doc.file, line=doc.line_of(()),
                              hint=f"example: {self.example}")

    def columns(self, spec: UniqueSpec) -> list[str]:
        return list(spec.columns) if spec.columns else [spec.column] if spec.column else []

    def compile(self, c: Check, schema: Sequence[tuple[str, str]]) -> str:
        cols = c.columns
        if len(cols) == 1:
            return f"count({q(cols[0])}) - count(DISTINCT {q(cols[0])})"
        return f"count(*) - count(DISTINCT row({', '.join(q(x) for x in cols)}))"

    def failing_rows(self, ev: Evaluation, c: Check) -> str:
        cols = ", ".join(q(x) for x in c.columns)
        # one column: nulls are not counted as duplicates, so not shown either
        where = f" WHERE {q(c.columns[0])} IS NOT NULL" if len(c.columns) == 1 else ""
        return (f"SELECT {cols}, count(*) AS duplicates FROM {ev.src}{where} "
                "GROUP BY ALL HAVING count(*) > 1")


ROW_TYPES: tuple[CheckType[Any], ...] = (
    Expression(), NotNull(), Unique(), AcceptedValues(), RejectedValues(), Between(), Regex(),
    LengthBetween(), TemporalOrder())
