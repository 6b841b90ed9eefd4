"""Metadata and history checks: the artifact's schema, and comparisons with the previous
artifact (or a baseline) — schema drift, volume, rows added, distribution drift."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from typing import cast as typed

from pydantic import Field, field_validator

from andon.checks.kinds.base import CheckType, Family, S
from andon.checks.model import (
    Check,
    CheckResult,
    CheckSpec,
    WithFailing,
    WithRange,
    WithSpc,
    percent,
)
from andon.checks.types import is_numeric, judge_failing, judge_range

if TYPE_CHECKING:  # sqlglot is imported when checks run, not when a project loads
    from sqlglot import exp

    from andon.checks.context import Audit, Evaluation


class SchemaSpec(CheckSpec):
    type: Literal["schema"]
    expected: dict[str, str]


class Schema(CheckType[SchemaSpec]):
    name = "schema"
    spec = SchemaSpec
    family = "meta"
    doc = "The table has these columns with these types (other columns allowed)."
    example = "{type: schema, expected: {flight_id: VARCHAR, dep_delay: DOUBLE}}"

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        have = dict(ev.manifest.schema)
        problems = []
        for col, typ in self.of(c).expected.items():
            if col not in have:
                problems.append(f"{col} missing")
            elif have[col].upper() != typ.upper():
                problems.append(f"{col} is {have[col]}, expected {typ.upper()}")
        return ev.result(c, not problems, len(problems), {"max": 0},
                         "; ".join(problems) or "schema as expected")


class TypeSpec(CheckSpec):
    type: Literal["type"]
    column: str
    expected: dict[str, str]


class Type(CheckType[TypeSpec]):
    name = "type"
    spec = TypeSpec
    family = "meta"
    column_kind = "any"
    doc = "The column has the expected type, e.g. expected: {type: DOUBLE}."
    example = "{type: type, column: dep_delay, expected: {type: DOUBLE}}"

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        s = self.of(c)
        want = str(s.expected.get("type", "")).upper()
        have = dict(ev.manifest.schema).get(s.column, "")
        ok = have.upper() == want
        return ev.result(c, ok, 0 if ok else 1, {"type": want},
                         f"{s.column} is {have}" + ("" if ok else f", expected {want}"))


class HistoryCheck(CheckType[S]):
    family: ClassVar[Family] = "history"


class SchemaDriftSpec(WithFailing):
    type: Literal["schema_drift"]


class SchemaDrift(HistoryCheck[SchemaDriftSpec]):
    name = "schema_drift"
    spec = SchemaDriftSpec
    doc = ("Columns added, removed or retyped since the previous artifact (metric: changes; "
           "max_failing allows some).")
    example = "{type: schema_drift, severity: warn}"

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        prev = ev.audit.previous.get(c.table)
        if prev is None:
            return ev.result(c, True, 0, {}, "no previous artifact to compare with")
        old, new = dict(prev.schema), dict(ev.manifest.schema)
        changes = [f"+{k}" for k in new if k not in old] + [f"-{k}" for k in old if k not in new]
        changes += [f"{k}: {old[k]} → {new[k]}" for k in new if k in old and old[k] != new[k]]
        ok, threshold = judge_failing(self.of(c), len(changes), max(1, len(new)))
        return ev.with_spc(c, ev.result(c, ok, len(changes), threshold,
                                        ", ".join(changes) or "no schema change"))


class VolumeChangeSpec(WithSpc):
    type: Literal["volume_change"]
    max_change_pct: float = Field(ge=0)

    @field_validator("max_change_pct", mode="before")
    @classmethod
    def _pct(cls, v: Any) -> Any:
        return percent(v)


class VolumeChange(HistoryCheck[VolumeChangeSpec]):
    name = "volume_change"
    spec = VolumeChangeSpec
    doc = ("Historical balance: row count changes by at most ±max_change_pct % vs the previous "
           "artifact.")
    example = "{type: volume_change, max_change_pct: 50}"

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        s, m = self.of(c), ev.manifest
        threshold = {"max_change_pct": s.max_change_pct}
        prev = ev.audit.previous.get(c.table)
        if prev is None:
            return ev.result(c, True, None, threshold, "no previous artifact to compare with")
        change = 100.0 * (m.rows - prev.rows) / prev.rows if prev.rows else (
            0.0 if m.rows == 0 else 100.0)
        return ev.with_spc(c, ev.result(c, abs(change) <= s.max_change_pct, change, threshold,
                                        f"{prev.rows:,} → {m.rows:,} rows ({change:+.1f}%)"))


class RowsAddedSpec(WithRange):
    type: Literal["rows_added"]


class RowsAdded(HistoryCheck[RowsAddedSpec]):
    name = "rows_added"
    spec = RowsAddedSpec
    doc = ("Rows added since the previous artifact (incremental steps: the new rows) in "
           "[min, max]; pair it with spc: to watch batch sizes.")
    example = "{type: rows_added, spc: {window: 12}}"

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        added = ev.manifest.meta.get("new_rows")
        if added is None:
            prev = ev.audit.previous.get(c.table)
            added = ev.manifest.rows - (prev.rows if prev else 0)
        ok, threshold = judge_range(self.of(c), float(added))
        return ev.with_spc(c, ev.result(c, ok, float(added), threshold,
                                        f"{int(added):,} rows added"))


class DriftSpec(WithSpc):
    type: Literal["distribution_drift"]
    column: str
    method: Literal["psi", "ks"] | None = None
    bins: int = Field(default=10, ge=2, le=100)
    baseline: str | None = None
    max: float | None = None


class DistributionDrift(HistoryCheck[DriftSpec]):
    name = "distribution_drift"
    spec = DriftSpec
    column_kind = "any"
    doc = ("Distribution vs the previous artifact (or baseline: a commit id): PSI for categories "
           "and binned numbers (method: psi, default max 0.25) or KS for numbers (method: ks, "
           "default max 0.2).")
    example = "{type: distribution_drift, column: carrier, severity: warn}"

    def history_context(self, audit: Audit, c: Check) -> list[str]:
        baseline = self.of(c).baseline
        return super().history_context(audit, c) + ([baseline] if baseline else [])

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        from sqlglot import exp

        from andon.engines.sql import cast, column, literal

        s, audit, cur, src = self.of(c), ev.audit, ev.cur, ev.src
        base = (audit.baseline_manifest(c.table, s.baseline) if s.baseline
                else audit.previous.get(c.table))
        method = s.method or "psi"
        limit = s.max if s.max is not None else (0.25 if method == "psi" else 0.2)
        if base is None:
            return ev.result(c, True, None, {"max": limit},
                             "no baseline artifact to compare with (recorded)")
        bsrc = audit.source(c.table, base)
        col = column(s.column)
        present = col.is_(exp.null()).not_()
        if is_numeric(dict(ev.manifest.schema).get(s.column, "")):
            qs = exp.Array(expressions=[literal(i / s.bins) for i in range(1, s.bins)])
            edges_row = cur.execute(exp.select(exp.func("quantile_cont", col, qs))
                                    .from_(bsrc)).fetchone()
            edges = sorted(set(edges_row[0] or [])) if edges_row else []

            def hist(source: exp.Expression) -> list[float]:
                if edges:
                    case = exp.Case(ifs=[exp.If(this=exp.LTE(this=col.copy(),
                                                             expression=literal(e)),
                                                true=literal(i)) for i, e in enumerate(edges)],
                                    default=literal(len(edges)))
                    query = exp.select(case, exp.Count(this=exp.Star())) \
                        .from_(source).where(present).group_by(literal(1))
                else:
                    query = exp.select(literal(0), exp.Count(this=col)).from_(source)
                counts = dict(cur.execute(query).fetchall())
                n = sum(counts.values()) or 1
                return [counts.get(i, 0) / n for i in range(len(edges) + 1)]

            p, qv = hist(src), hist(bsrc)
        else:
            # categories (text, booleans, dates...) are compared by their text on both sides
            text = cast(col, "VARCHAR")
            top = [str(r[0]) for r in cur.execute(
                exp.select(text).from_(bsrc).where(present).group_by(literal(1))
                .order_by(exp.Ordered(this=exp.Count(this=exp.Star()), desc=True)).limit(50)
            ).fetchall()]
            other = "__other__"

            def dist(source: exp.Expression) -> list[float]:
                known = text.isin(*(literal(v) for v in top)) if top else exp.false()
                case = exp.Case(ifs=[exp.If(this=known, true=text.copy())],
                                default=literal(other))
                rows = dict(cur.execute(
                    exp.select(case, exp.Count(this=exp.Star()))
                    .from_(source).where(present).group_by(literal(1))).fetchall())
                n = sum(rows.values()) or 1
                return [rows.get(k, 0) / n for k in top] + [rows.get(other, 0) / n]

            p, qv = dist(src), dist(bsrc)
            if method == "ks":
                method = "psi"  # KS needs an order: categories use PSI
        if method == "ks":
            metric = _ks(ev, col, bsrc)
        else:
            eps = 1e-4
            metric = sum((a - b) * math.log((a + eps) / (b + eps))
                         for a, b in zip(p, qv, strict=True))
        return ev.with_spc(c, ev.result(
            c, metric <= limit, metric, {"max": limit, "method": method},
            f"{method.upper()} = {metric:.4f} vs {base.fingerprint[:12]}"))


@functools.cache
def _ks_template() -> exp.Expression:
    from andon.engines.sql import parse

    # $col, $src and $bsrc are placeholders, replaced by expressions (never by text)
    return parse("""
        WITH u AS (
            SELECT $col AS v, 1 AS a, 0 AS b FROM $src WHERE $col IS NOT NULL
            UNION ALL
            SELECT $col, 0, 1 FROM $bsrc WHERE $col IS NOT NULL),
        n AS (SELECT sum(a) AS na, sum(b) AS nb FROM u),
        g AS (SELECT v, sum(a) AS a, sum(b) AS b FROM u GROUP BY v),
        f AS (SELECT sum(a) OVER (ORDER BY v) AS ca, sum(b) OVER (ORDER BY v) AS cb FROM g)
        SELECT (SELECT na FROM n), (SELECT nb FROM n),
               max(abs(ca / (SELECT na FROM n) - cb / (SELECT nb FROM n))) FROM f
    """)


def _ks(ev: Evaluation, col: exp.Expression, bsrc: exp.Expression) -> float:
    """The two-sample Kolmogorov–Smirnov statistic: the largest gap between the empirical
    distribution functions of the candidate and the baseline, computed exactly in one query."""
    from sqlglot import exp

    query = exp.replace_placeholders(_ks_template(), col=col, src=ev.src, bsrc=bsrc)
    row = ev.cur.execute(typed("exp.Expression", query)).fetchone()
    na, nb, gap = (row or (0, 0, None))
    if not na or not nb:
        return 0.0 if not na and not nb else 1.0
    return float(gap or 0.0)


HISTORY_TYPES: tuple[CheckType[Any], ...] = (
    Schema(), SchemaDrift(), VolumeChange(), RowsAdded(), DistributionDrift(), Type())
