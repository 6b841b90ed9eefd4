"""Query checks: each runs its own query, and may read another table (relationship, balance,
custom SQL)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from andon.checks.kinds.base import CheckType, Family, S, user_sql
from andon.checks.model import Check, CheckResult, WithFailing, WithRange, WithSpc
from andon.checks.types import judge_failing, judge_range
from andon.errors import AndonError, ConfigError, did_you_mean

if TYPE_CHECKING:  # sqlglot is imported when checks run, not when a project loads
    from sqlglot import exp

    from andon.checks.context import Audit, Evaluation
    from andon.yamlfile import YamlDoc

_REF_RE = re.compile(r"\{\{\s*ref\(\s*(['\"])([A-Za-z0-9_]+)\1\s*\)\s*\}\}")
_TABLE_RE = re.compile(r"\{\{\s*table\s*\}\}")
_TEMPLATE_RE = re.compile(r"\{\{\s*(table|ref\(\s*(['\"])[A-Za-z0-9_]+\2\s*\))\s*\}\}")


class QueryCheck(CheckType[S]):
    family: ClassVar[Family] = "query"


class RelationshipSpec(WithFailing):
    type: Literal["relationship"]
    column: str
    to: str


class Relationship(QueryCheck[RelationshipSpec]):
    name = "relationship"
    spec = RelationshipSpec
    column_kind = "any"
    doc = ("Referential integrity: non-null values exist in to: TABLE.COLUMN; max_failing_pct "
           "allows an unmatched share.")
    example = ("{type: relationship, column: tailnum, to: planes.tailnum, max_failing_pct: 20, "
               "severity: warn}")

    def reads(self, spec: RelationshipSpec, table: str) -> list[str]:
        return [spec.to.split(".", 1)[0]]

    def target(self, spec: RelationshipSpec) -> str | None:
        return spec.to.split(".", 1)[0]

    def validate(self, c: Check, schema: Mapping[str, str],
                 other_schema: Mapping[str, str] | None = None) -> None:
        super().validate(c, schema, other_schema)
        to = self.of(c).to
        target = to.split(".", 1)
        if other_schema is not None and (len(target) != 2 or target[1] not in other_schema):
            hint = did_you_mean(target[-1], other_schema)
            raise ConfigError(
                f"check {c.name!r}: to: {to!r} is not TABLE.COLUMN of an existing column",
                file=c.file, line=c.line,
                hint=hint or f"columns of {target[0]}: {', '.join(other_schema)}")

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        from sqlglot import exp

        from andon.checks import profile  # PyArrow: only when checks run
        from andon.engines.sql import column, ident, literal

        s = self.of(c)
        other, ocol = s.to.split(".", 1)
        key = column(s.column, "c")
        found = exp.select(literal(1)).from_(_aliased(ev.audit.source(other), "p")).where(
            exp.EQ(this=column(ocol, "p"), expression=key.copy()))
        unmatched = exp.and_(key.is_(exp.null()).not_(), exp.Exists(this=found).not_())
        # counting reads the key column alone; its non-null count comes from the footers
        names = [n for n, _ in ev.manifest.schema]
        stats = profile.footer_stats(ev.audit.files(c.table), ev.manifest.schema)
        known = stats.get(f"p{names.index(s.column)}_nonnull") if s.column in names else None
        nonnull: exp.Expression = literal(int(known)) if known is not None else \
            exp.select(exp.Count(this=column(s.column))).from_(ev.src).subquery()
        keys = exp.select(key).from_(_aliased(ev.src, "c")).where(unmatched)
        row = ev.cur.execute(exp.select(exp.Count(this=exp.Star()), nonnull).from_(
            keys.subquery(ident("unmatched")))).fetchone()
        failing, nonnull_count = (int(row[0]), int(row[1])) if row else (0, 0)
        ok, threshold = judge_failing(s, failing, nonnull_count)
        rows = exp.select(exp.Star()).from_(_aliased(ev.src, "c")).where(unmatched)
        sample = ev.sample(c, rows) if failing and not ok else []
        pct = 100.0 * failing / nonnull_count if nonnull_count else 0.0
        return ev.with_spc(c, ev.result(
            c, ok, failing, threshold,
            f"{failing:,} of {nonnull_count:,} values ({pct:.2f}%) not found in {s.to}",
            failing, sample))


def _aliased(source: exp.Expression, alias: str) -> exp.Expression:
    """A scan named ``alias`` in a FROM clause."""
    from sqlglot import exp

    from andon.engines.sql import ident

    named = exp.TableAlias(this=ident(alias))
    if isinstance(source, exp.Subquery):
        return exp.Subquery(this=source.this.copy(), alias=named)
    return exp.Table(this=source.copy(), alias=named)


class SqlSpec(WithRange, WithFailing):
    type: Literal["sql"]
    sql: str
    metric: bool = False  # the query returns one number, judged by min/max


class Sql(QueryCheck[SqlSpec]):
    name = "sql"
    spec = SqlSpec
    doc = ("Custom SQL returning the failing rows ({{ table }} is this table); with metric: true "
           "it returns one number, judged by min/max (and spc:).")
    example = "{type: sql, sql: 'SELECT * FROM {{ table }} WHERE dep_delay > arr_delay + 600'}"

    def check_spec(self, spec: SqlSpec, doc: YamlDoc) -> None:
        from andon.checks.bind import parse_sql

        # {{ table }} and {{ ref('other') }} become table names for the syntax check
        parse_sql(_TEMPLATE_RE.sub("t", spec.sql), doc.file, doc.line_of(("sql",)) or 1)

    def reads(self, spec: SqlSpec, table: str) -> list[str]:
        return sorted({m.group(2) for m in _REF_RE.finditer(spec.sql)} - {table})

    def validate(self, c: Check, schema: Mapping[str, str],
                 other_schema: Mapping[str, str] | None = None) -> None:
        from andon.checks.bind import bind_error

        why = bind_error(self.of(c).sql, schema)
        if why:
            raise ConfigError(f"check {c.name!r}: its sql does not fit table {c.table!r}: "
                              f"{why}", file=c.file, line=c.line,
                              hint=f"columns of {c.table}: {', '.join(schema)}")

    def bind(self, ev: Evaluation, c: Check) -> exp.Expression:
        """The query, with ``{{ table }}`` and ``{{ ref('x') }}`` bound to temporary views of
        the artifacts in this session (never pasted as text)."""
        from andon.engines.sql import ident_sql

        def view(name: str) -> str:
            if name not in ev.audit.manifests:
                raise AndonError(f"ref('{name}'): {name} is not built",
                                 hint="build it first, or drop the ref from the check")
            files = ev.audit.files(name)
            alias = f"__andon_{name}"
            ev.cur.view(alias, files)
            return ident_sql(alias)

        sql = _TABLE_RE.sub(lambda _m: view(c.table), self.of(c).sql)
        return user_sql(_REF_RE.sub(lambda m: view(m.group(2)), sql), "sql")

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        from sqlglot import exp

        from andon.checks.context import fmt
        from andon.engines.sql import ident

        s = self.of(c)
        query = self.bind(ev, c)
        if s.metric:  # the query returns one number, judged against min/max
            value = ev.cur.execute(query).fetchone()
            metric = None if not value or value[0] is None else float(value[0])
            ok, threshold = judge_range(s, metric)
            return ev.with_spc(c, ev.result(c, ok, metric, threshold,
                                            f"metric = {fmt(metric)}"))
        failing_rows = exp.Subquery(this=query, alias=exp.TableAlias(this=ident("failing")))
        row = ev.cur.execute(exp.select(exp.Count(this=exp.Star())).from_(failing_rows)
                             ).fetchone()
        failing = int(row[0]) if row else 0
        ok, threshold = judge_failing(s, failing, ev.total)
        sample = ev.sample(c, query) if failing and not ok else []
        return ev.with_spc(c, ev.result(c, ok, failing, threshold, f"{failing:,} failing rows",
                                        failing, sample))


class BalanceSpec(WithSpc):
    type: Literal["balance"]
    other: str
    expr: str | None = None
    other_expr: str | None = None
    other_env: str | None = None
    plus_rejects: bool = False
    tolerance: float = Field(default=0, ge=0)


class Balance(QueryCheck[BalanceSpec]):
    name = "balance"
    spec = BalanceSpec
    doc = ("Location balance: expr on this table equals other_expr on another table (optionally "
           "plus that source's rejects, optionally in another environment), within tolerance.")
    example = "{type: balance, expr: 'count(*)', other: raw_flights, plus_rejects: true}"

    def check_spec(self, spec: BalanceSpec, doc: YamlDoc) -> None:
        from andon.checks.bind import parse_sql

        for key in ("expr", "other_expr"):
            expr = getattr(spec, key)
            if expr is not None:
                parse_sql(f"SELECT {expr}", doc.file, doc.line_of((key,)) or 1)

    def reads(self, spec: BalanceSpec, table: str) -> list[str]:
        return [spec.other]

    def default_name(self, table: str, spec: BalanceSpec) -> str:
        return f"{table}.balance.{spec.other}"

    def context(self, audit: Audit, c: Check) -> str:
        s = self.of(c)
        if s.other_env is None:
            return super().context(audit, c)
        import hashlib

        om = audit.other_env_manifest(s.other, s.other_env)
        parts = [f"{s.other_env}:{om.fingerprint if om else '-'}",
                 *self.history_context(audit, c)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def ready(self, audit: Audit, c: Check) -> bool:
        return c.table in audit.manifests and (
            self.of(c).other_env is not None or self.of(c).other in audit.manifests)

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        from sqlglot import exp

        from andon.checks.context import fmt

        s = self.of(c)
        expr = user_sql(s.expr, "expr") if s.expr else exp.Count(this=exp.Star())
        mine = ev.cur.execute(exp.select(expr).from_(ev.src)).fetchone()
        om = (ev.audit.other_env_manifest(s.other, s.other_env) if s.other_env
              else ev.audit.manifests.get(s.other))
        if om is None:
            raise AndonError(f"{s.other} is not built in environment "
                             f"{s.other_env or ev.audit.environment}")
        other = user_sql(s.other_expr, "other_expr") if s.other_expr else expr
        theirs = ev.cur.execute(exp.select(other).from_(ev.audit.source(s.other, om))
                                ).fetchone()
        a = float(mine[0] or 0) if mine else 0.0
        b = float(theirs[0] or 0) if theirs else 0.0
        if s.plus_rejects:
            b += float(om.meta.get("rejects", 0))
        diff = a - b
        where = f"{s.other}" + (f"@{s.other_env}" if s.other_env else "")
        extra = " + its rejects" if s.plus_rejects else ""
        return ev.with_spc(c, ev.result(
            c, abs(diff) <= s.tolerance, diff, {"tolerance": s.tolerance},
            f"{c.table}: {fmt(a)} vs {where}{extra}: {fmt(b)} (difference {fmt(diff)})"))


QUERY_TYPES: tuple[CheckType[Any], ...] = (Balance(), Sql(), Relationship())
