"""Row checks: each counts its failing rows in the table's single scan
(``count(*) FILTER (WHERE …)``); ``unique`` counts duplicates there."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from andon.checks.kinds.base import CheckType, Family, S, user_sql
from andon.checks.model import Check, CheckResult, WithFailing, WithRange
from andon.checks.patterns import PATTERNS
from andon.checks.types import all_of, any_of, fn, is_numeric, judge_failing, now_for
from andon.errors import ConfigError, did_you_mean

if TYPE_CHECKING:  # sqlglot is imported when checks run, not when a project loads
    from sqlglot import exp

    from andon.checks.context import Evaluation
    from andon.yamlfile import YamlDoc


class RowCheck(CheckType[S]):
    """A row condition; ``predicate`` is true for a failing row: a sqlglot expression (built
    with ``andon.engines.sql``), or SQL text in DuckDB's dialect."""

    family: ClassVar[Family] = "row"
    what: ClassVar[str] = "failing rows"

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression | str:
        raise NotImplementedError(f"row check type {self.name!r} defines no predicate")

    def condition(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        cond = self.predicate(c, schema)
        return user_sql(cond, "predicate") if isinstance(cond, str) else cond

    def compile(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        from sqlglot import exp

        return exp.Filter(this=exp.Count(this=exp.Star()),
                          expression=exp.Where(this=self.condition(c, schema)))

    def failing_rows(self, ev: Evaluation, c: Check) -> exp.Expression:
        from sqlglot import exp

        return exp.select(exp.Star()).from_(ev.src).where(
            self.condition(c, ev.manifest.schema))

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

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        from sqlglot import exp

        from andon.engines.sql import column

        return column(self.of(c).column).is_(exp.null())


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
    def given(s: ValuesSpec) -> list[exp.Expression]:
        from andon.engines.sql import literal

        # null in a list of values means SQL NULL (IS NULL), never the string 'None'
        return [literal(v) for v in s.values if v is not None]


class AcceptedValues(_Values[AcceptedValuesSpec]):
    name = "accepted_values"
    spec = AcceptedValuesSpec
    doc = "Non-null values are in the list (values of the column's type; nulls are accepted)."
    example = "{type: accepted_values, column: origin, values: [EWR, JFK, LGA]}"

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        from sqlglot import exp

        from andon.engines.sql import column

        s = self.of(c)
        col, given = column(s.column), self.given(s)
        present = col.is_(exp.null()).not_()  # nulls are always accepted
        return all_of(present, col.isin(*given).not_()) if given else present


class RejectedValues(_Values[RejectedValuesSpec]):
    name = "rejected_values"
    spec = RejectedValuesSpec
    doc = "No value is in the list; null in the list rejects SQL NULLs."
    example = "{type: rejected_values, column: tailnum, values: ['', UNKNOWN]}"

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        from sqlglot import exp

        from andon.engines.sql import column

        s = self.of(c)
        col, given = column(s.column), self.given(s)
        parts: list[exp.Expression] = [col.isin(*given)] if given else []
        if None in s.values:
            parts.append(col.is_(exp.null()))
        return any_of(*parts) if parts else exp.false()


def _outside(value: exp.Expression, lo: Any, hi: Any) -> exp.Expression:
    """True when ``value`` is below ``lo`` or above ``hi`` (constants; None: no bound)."""
    from sqlglot import exp

    from andon.engines.sql import literal

    parts: list[exp.Expression] = []
    if lo is not None:
        parts.append(exp.LT(this=value, expression=literal(lo)))
    if hi is not None:
        parts.append(exp.GT(this=value.copy(), expression=literal(hi)))
    return any_of(*parts) if parts else exp.false()


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

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        from andon.engines.sql import column

        s = self.of(c)
        return _outside(column(s.column), s.min, s.max)

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

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        from sqlglot import exp

        from andon.engines.sql import column, literal

        s = self.of(c)
        col = column(s.column)
        pattern = PATTERNS.get(s.pattern, s.pattern)
        return all_of(col.is_(exp.null()).not_(),
                      fn("regexp_full_match", col.copy(), literal(pattern)).not_())


class LengthBetweenSpec(WithRange, ColumnSpec):
    whole_bounds = True
    type: Literal["length_between"]


class LengthBetween(RowCheck[LengthBetweenSpec]):
    name = "length_between"
    spec = LengthBetweenSpec
    column_kind = "text"
    doc = "String length within [min, max] (whole numbers)."
    example = "{type: length_between, column: carrier, min: 2, max: 2}"

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:

        from andon.engines.sql import column

        lo, hi = self.of(c).bounds()
        return _outside(fn("length", column(self.of(c).column)),
                        None if lo is None else int(lo), None if hi is None else int(hi))


class ExpressionSpec(WithFailing):
    type: Literal["expression"]
    expr: str


class Expression(RowCheck[ExpressionSpec]):
    name = "expression"
    spec = ExpressionSpec
    doc = "A row condition that must hold on every row."
    example = "{type: expression, expr: 'cancelled OR dep_at IS NOT NULL'}"

    def check_spec(self, spec: ExpressionSpec, doc: YamlDoc) -> None:
        from andon.checks.bind import parse_sql

        parse_sql(f"SELECT {spec.expr}", doc.file, doc.line_of(("expr",)) or 1)

    def validate(self, c: Check, schema: Mapping[str, str],
                 other_schema: Mapping[str, str] | None = None) -> None:
        from andon.checks.bind import bind_error

        super().validate(c, schema, other_schema)
        why = bind_error(self._holds(c), schema)
        if why:
            raise ConfigError(f"check {c.name!r}: its expr does not fit table {c.table!r}: "
                              f"{why}", file=c.file, line=c.line,
                              hint=f"columns of {c.table}: {', '.join(schema)}")

    def _holds(self, c: Check) -> exp.Expression:
        """The user's condition, false where it is null."""
        from sqlglot import exp

        from andon.engines.sql import cast

        held = fn("coalesce", exp.Paren(this=user_sql(self.of(c).expr, "expr")), exp.false())
        return cast(held, "BOOLEAN")

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        return self._holds(c).not_()


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

    def predicate(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        from sqlglot import exp

        from andon.engines.sql import column

        s = self.of(c)
        start, end = column(s.start), column(s.end)
        cond: exp.Expression = exp.GT(this=start, expression=end)
        if not s.allow_future:
            types = dict(schema)
            cond = any_of(cond, *(exp.GT(this=column(x), expression=now_for(types.get(x, "")))
                                  for x in (s.start, s.end)))
        return fn("coalesce", exp.Paren(this=cond), exp.false())


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

    def compile(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        from sqlglot import exp

        from andon.engines.sql import column

        cols = c.columns
        if len(cols) == 1:
            counted: exp.Expression = column(cols[0])
            distinct: exp.Expression = column(cols[0])
        else:
            counted, distinct = exp.Star(), fn("row", *(column(x) for x in cols))
        return exp.Sub(this=exp.Count(this=counted),
                       expression=exp.Count(this=exp.Distinct(expressions=[distinct])))

    def failing_rows(self, ev: Evaluation, c: Check) -> exp.Expression:
        from sqlglot import exp

        from andon.engines.sql import column, ident, literal

        cols = [column(x) for x in c.columns]
        many = exp.Count(this=exp.Star())
        query = exp.select(*cols, exp.alias_(many, ident("duplicates"))).from_(ev.src) \
            .group_by(*cols).having(exp.GT(this=many.copy(), expression=literal(1)))
        if len(cols) == 1:  # one column: nulls are not counted as duplicates, nor shown
            query = query.where(cols[0].is_(exp.null()).not_())
        return query


ROW_TYPES: tuple[CheckType[Any], ...] = (
    Expression(), NotNull(), Unique(), AcceptedValues(), RejectedValues(), Between(), Regex(),
    LengthBetween(), TemporalOrder())
