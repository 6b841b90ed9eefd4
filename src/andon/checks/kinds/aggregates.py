"""Aggregate checks: one metric each from the table's single scan, judged in [min, max]."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from andon.checks.kinds.base import CheckType, Family, S, user_sql
from andon.checks.model import Check, CheckResult, WithRange, WithSpc
from andon.checks.types import fn, judge_range, parse_age
from andon.errors import ConfigError

if TYPE_CHECKING:  # sqlglot is imported when checks run, not when a project loads
    from sqlglot import exp

    from andon.checks.context import Evaluation
    from andon.yamlfile import YamlDoc


class Aggregate(CheckType[S]):
    """A metric judged against [min, max]: ``metric`` is its aggregate over the table's scan,
    by default the function ``func`` of the check's column (or ``sql``: SQL text in DuckDB's
    dialect, ``{col}`` standing for the quoted column)."""

    family: ClassVar[Family] = "agg"
    func: ClassVar[str] = ""
    sql: ClassVar[str] = ""

    def metric(self, c: Check, col: exp.Expression) -> exp.Expression:

        if self.sql:
            from andon.engines.sql import render

            return user_sql(self.sql.format(col=render(col)), "sql")
        return fn(self.func, col)

    def compile(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        from sqlglot import exp

        from andon.engines.sql import column

        return self.metric(c, column(c.columns[0]) if c.columns else exp.Star())

    def judge(self, ev: Evaluation, c: Check, value: Any) -> CheckResult:
        from andon.checks.context import fmt

        spec = self.of(c)
        assert isinstance(spec, WithRange)
        metric = None if value is None else float(value)
        ok, threshold = judge_range(spec, metric)
        msg = f"{c.type.removesuffix('_between').removesuffix('_max')} = {fmt(metric)}"
        return ev.with_spc(c, ev.result(c, ok, metric, threshold, msg))


class RowCountSpec(WithRange):
    type: Literal["row_count"]


class RowCount(Aggregate[RowCountSpec]):
    name = "row_count"
    spec = RowCountSpec
    func = "count"
    doc = "Number of rows within [min, max]."
    example = "{type: row_count, min: 1}"


class ColumnRangeSpec(WithRange):
    column: str


class MeanSpec(ColumnRangeSpec):
    type: Literal["mean_between"]


class MeanBetween(Aggregate[MeanSpec]):
    name = "mean_between"
    spec = MeanSpec
    column_kind = "numeric"
    func = "avg"
    doc = "Mean within [min, max]."
    example = "{type: mean_between, column: dep_delay, min: 0, max: 30}"


class MedianSpec(ColumnRangeSpec):
    type: Literal["median_between"]


class MedianBetween(Aggregate[MedianSpec]):
    name = "median_between"
    spec = MedianSpec
    column_kind = "numeric"
    func = "median"
    doc = "Median within [min, max]."
    example = "{type: median_between, column: distance, min: 500, max: 1500}"


class StddevSpec(ColumnRangeSpec):
    type: Literal["stddev_between"]


class StddevBetween(Aggregate[StddevSpec]):
    name = "stddev_between"
    spec = StddevSpec
    column_kind = "numeric"
    func = "stddev_samp"
    doc = "Sample standard deviation in [min, max]."
    example = "{type: stddev_between, column: dep_delay, max: 100}"


class SumSpec(ColumnRangeSpec):
    type: Literal["sum_between"]


class SumBetween(Aggregate[SumSpec]):
    name = "sum_between"
    spec = SumSpec
    column_kind = "numeric"
    func = "sum"
    doc = "Sum within [min, max]."
    example = "{type: sum_between, column: seats, min: 0}"


class DistinctCountSpec(ColumnRangeSpec):
    type: Literal["distinct_count_between"]


class DistinctCountBetween(Aggregate[DistinctCountSpec]):
    name = "distinct_count_between"
    spec = DistinctCountSpec
    column_kind = "any"
    func = "approx_count_distinct"
    doc = "Number of distinct values (approximate) within [min, max]."
    example = "{type: distinct_count_between, column: carrier, min: 10, max: 20}"


class QuantileSpec(ColumnRangeSpec):
    type: Literal["quantile_between"]
    q: float = Field(ge=0, le=1)


class QuantileBetween(Aggregate[QuantileSpec]):
    name = "quantile_between"
    spec = QuantileSpec
    column_kind = "numeric"
    doc = "The q-quantile (0..1) within [min, max]."
    example = "{type: quantile_between, column: arr_delay, q: 0.95, max: 180}"

    def metric(self, c: Check, col: exp.Expression) -> exp.Expression:

        from andon.engines.sql import literal

        return fn("quantile_cont", col, literal(self.of(c).q))


class NullShareSpec(ColumnRangeSpec):
    type: Literal["null_share_max"]
    max: float | str


class NullShareMax(Aggregate[NullShareSpec]):
    name = "null_share_max"
    spec = NullShareSpec
    column_kind = "any"
    doc = "Share of nulls (0..1) at most max."
    example = "{type: null_share_max, column: tailnum, max: 0.02}"

    def metric(self, c: Check, col: exp.Expression) -> exp.Expression:
        from sqlglot import exp

        from andon.engines.sql import literal

        nulls = exp.Filter(this=exp.Count(this=exp.Star()),
                           expression=exp.Where(this=col.is_(exp.null())))
        share = exp.Div(this=nulls, expression=fn("nullif", exp.Count(this=exp.Star()),
                                                  literal(0)))
        return fn("coalesce", share, literal(0))


class FreshnessSpec(WithSpc):
    type: Literal["freshness"]
    column: str
    max_age: str


class Freshness(CheckType[FreshnessSpec]):
    name = "freshness"
    spec = FreshnessSpec
    family = "agg"
    column_kind = "temporal"
    reuse = False  # it depends on the clock
    doc = ("Age of the newest timestamp (now − max(column)) at most max_age (e.g. 36h, 2d, "
           "90m); the column is a DATE, a TIMESTAMP (without a zone: read as UTC) or epoch "
           "seconds. Judged on every run, never reused: it depends on the clock.")
    example = "{type: freshness, column: updated_at, max_age: 36h}"

    def check_spec(self, spec: FreshnessSpec, doc: YamlDoc) -> None:
        try:
            parse_age(spec.max_age)
        except ValueError as e:
            raise ConfigError(str(e), file=doc.file, line=doc.line_of(("max_age",))) from None

    def compile(self, c: Check, schema: Sequence[tuple[str, str]]) -> exp.Expression:
        from sqlglot import exp

        from andon.engines.sql import column

        return exp.Max(this=column(self.of(c).column))

    def judge(self, ev: Evaluation, c: Check, value: Any) -> CheckResult:
        s = self.of(c)
        threshold = {"max_age": s.max_age}
        if value is None:
            return ev.result(c, False, None, threshold, "no timestamps: the table is empty")
        age = _age_seconds(value)
        return ev.with_spc(c, ev.result(c, age <= parse_age(s.max_age), age, threshold,
                                        f"newest {value} is {age / 3600:.1f}h old",
                                        shown=(value,)))


def _age_seconds(newest: Any) -> float:
    if isinstance(newest, datetime):
        now = datetime.now(newest.tzinfo) if newest.tzinfo else datetime.now(UTC)\
            .replace(tzinfo=None)
        return (now - newest).total_seconds()
    if isinstance(newest, date):
        return (datetime.now(UTC).date() - newest).days * 86400.0
    return time.time() - float(newest)


AGGREGATE_TYPES: tuple[CheckType[Any], ...] = (
    RowCount(), Freshness(), MeanBetween(), MedianBetween(), StddevBetween(), SumBetween(),
    QuantileBetween(), DistinctCountBetween(), NullShareMax())
