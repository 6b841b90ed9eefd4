"""The store's side of DataOps analytics: SQLAlchemy Core queries that aggregate runs, step
runs, check results, promotions, landed files and SLA breaches in the database, so that a
report over 10,000 runs reads tens of rows, not 10,000. ``andon.analytics`` shapes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    literal_column,
    or_,
    select,
)

from andon.store import schema as t

DAY = 86400.0
# epoch day 0 (1970-01-01) was a Thursday: shifted by 3 days, weeks start on Mondays
_MONDAY_SHIFT = 3

Window = tuple[float, float]  # [since, until) in epoch seconds


class AnalyticsRepository:
    """Aggregates over a time window. Buckets are UTC days and ISO weeks (Monday first),
    returned as epoch seconds of their start."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # buckets ----------------------------------------------------------------------------

    def _floor(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        """The integer part of a non-negative float, in either dialect (PostgreSQL's CAST
        rounds, SQLite's truncates and may lack floor())."""
        if self.engine.dialect.name == "sqlite":
            return cast(value, Integer)
        return cast(func.floor(value), Integer)

    # constants are written into the SQL, not bound: PostgreSQL must see the expression in
    # GROUP BY as the one selected
    def _day(self, at: ColumnElement[Any]) -> ColumnElement[Any]:
        return self._floor(at / literal_column(repr(DAY)))

    def _week(self, at: ColumnElement[Any]) -> ColumnElement[Any]:
        return self._floor((at + literal_column(repr(_MONDAY_SHIFT * DAY)))
                           / literal_column(repr(7 * DAY)))

    @staticmethod
    def week_start(week: int) -> float:
        return (week * 7 - _MONDAY_SHIFT) * DAY

    def _rows(self, query: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    # runs -------------------------------------------------------------------------------

    def _run_filter(self, window: Window, environment: str | None) -> list[ColumnElement[bool]]:
        r = t.runs.c
        where = [r.started_at >= window[0], r.started_at < window[1]]
        if environment is not None:
            where.append(r.environment == environment)
        return where

    def run_totals(self, window: Window, environment: str | None) -> dict[str, int]:
        """Runs started in the window by status."""
        r = t.runs.c
        q = (select(r.status, func.count()).where(*self._run_filter(window, environment))
             .group_by(r.status))
        return {str(status): int(n) for status, n in self._rows(q)}

    def runs_per_day(self, window: Window, environment: str | None
                     ) -> list[tuple[float, int, int]]:
        """(day start, runs, failed runs) for each UTC day with runs, oldest first."""
        r = t.runs.c
        day = self._day(r.started_at).label("day")
        failed = func.sum(case((r.status == "failed", 1), else_=0))
        q = (select(day, func.count(), failed).where(*self._run_filter(window, environment))
             .group_by(day).order_by(day))
        return [(int(d) * DAY, int(n), int(f or 0)) for d, n, f in self._rows(q)]

    def runs_per_group(self, window: Window, environment: str | None,
                       group_of: Mapping[str, str], other: str
                       ) -> list[tuple[str, int, int]]:
        """(group, runs, failed runs) where a group is a set of steps (``group_of``: step →
        group; steps not in it count as ``other``). A run counts for a group when it ran one
        of its steps, and as failed for it when one of them failed."""
        s = t.step_runs.c
        group: ColumnElement[Any] = (case(dict(group_of), value=s.step, else_=literal(other))
                                     if group_of else literal(other))
        # grouped outside a subquery: its CASE has bound values PostgreSQL cannot match
        tagged = (select(group.label("grp"), s.run_id, s.action)
                  .select_from(t.step_runs.join(t.runs, t.runs.c.id == s.run_id))
                  .where(*self._run_filter(window, environment)).subquery("tagged"))
        g = tagged.c
        failed = func.count(distinct(case((g.action == "failed", g.run_id), else_=None)))
        q = (select(g.grp, func.count(distinct(g.run_id)), failed)
             .group_by(g.grp).order_by(g.grp))
        return [(str(g), int(n), int(f or 0)) for g, n, f in self._rows(q)]

    def steps(self, window: Window, environment: str | None) -> list[dict[str, Any]]:
        """Per step: runs of it by action, rows, rejected rows and mean build seconds."""
        s = t.step_runs.c

        def count_of(action: str) -> ColumnElement[Any]:
            return func.sum(case((s.action == action, 1), else_=0))

        built = s.action == "built"
        q = (select(s.step, func.count(), count_of("built"), count_of("reused"),
                    count_of("failed"),
                    func.sum(case((built, s.rows), else_=0)),
                    func.sum(case((built, s.rejects), else_=0)),
                    func.avg(case((built, s.seconds), else_=None)))
             .select_from(t.step_runs.join(t.runs, t.runs.c.id == s.run_id))
             .where(*self._run_filter(window, environment))
             .group_by(s.step).order_by(s.step))
        return [{"step": str(step), "runs": int(n), "built": int(b or 0),
                 "reused": int(ru or 0), "failed": int(f or 0), "rows": int(rows or 0),
                 "rejects": int(rej or 0),
                 "mean_seconds": float(sec) if sec is not None else None}
                for step, n, b, ru, f, rows, rej, sec in self._rows(q)]

    def landed(self, window: Window, sources: Sequence[str]) -> dict[str, tuple[int, int, int]]:
        """Per source: (files landed in the window, bytes, of them withdrawn since)."""
        lf = t.landed_files.c
        withdrawn = func.sum(case((lf.withdrawn_at.is_not(None), 1), else_=0))
        q = (select(lf.source, func.count(), func.sum(lf.bytes), withdrawn)
             .where(lf.arrived_at >= window[0], lf.arrived_at < window[1],
                    lf.source.in_(list(sources)))
             .group_by(lf.source))
        return {str(src): (int(n), int(b or 0), int(w or 0)) for src, n, b, w in self._rows(q)}

    # checks -----------------------------------------------------------------------------

    def checks_per_day(self, window: Window, environment: str | None
                       ) -> list[tuple[float, dict[str, int]]]:
        """(day start, {status: results}) for each UTC day with check results."""
        c = t.check_results.c
        day = self._day(c.at).label("day")
        where = [c.at >= window[0], c.at < window[1]]
        if environment is not None:
            where.append(c.environment == environment)
        q = (select(day, c.status, func.count()).where(*where)
             .group_by(day, c.status).order_by(day))
        out: dict[int, dict[str, int]] = {}
        for d, status, n in self._rows(q):
            out.setdefault(int(d), {})[str(status)] = int(n)
        return [(d * DAY, by_status) for d, by_status in out.items()]

    def head_schemas(self, environment: str) -> dict[str, list[str]] | None:
        """Table → column names of what ``environment`` points at (None: no such
        environment, or it points at nothing yet)."""
        env = self._rows(select(t.environments.c.commit_id)
                         .where(t.environments.c.name == environment))
        if not env or env[0][0] is None:
            return None
        cs, a = t.commit_steps.c, t.artifacts.c
        q = (select(cs.step, a.schema)
             .select_from(t.commit_steps.outerjoin(t.artifacts, a.fingerprint == cs.fingerprint))
             .where(cs.commit_id == env[0][0]))
        return {str(step): [str(col[0]) for col in (schema or [])]
                for step, schema in self._rows(q)}

    # promotions and environments ---------------------------------------------------------

    def promotions_per_week(self, window: Window, target: str | None
                            ) -> list[tuple[float, dict[str, int]]]:
        """(week start, {status: promotions}) into ``target`` (None: any)."""
        p = t.promotions.c
        week = self._week(p.at).label("week")
        where = [p.at >= window[0], p.at < window[1]]
        if target is not None:
            where.append(p.target == target)
        q = select(week, p.status, func.count()).where(*where).group_by(week, p.status)
        out: dict[int, dict[str, int]] = {}
        for w, status, n in self._rows(q):
            out.setdefault(int(w), {})[str(status)] = int(n)
        return [(self.week_start(w), out[w]) for w in sorted(out)]

    def promotions(self, window: Window, target: str) -> list[dict[str, Any]]:
        """Promotions into ``target`` in the window, oldest first, each with: the previous
        promotion of the same source (any target), when the next promotion into ``target``
        happened, and whether a run of ``target`` failed in between (a failed change)."""
        p = t.promotions.c
        prev = t.promotions.alias("prev")
        nxt = t.promotions.alias("nxt")
        r = t.runs.c
        previous = (select(func.max(prev.c.at))
                    .where(prev.c.source == p.source, prev.c.status == "promoted",
                           prev.c.at < p.at).scalar_subquery())
        next_at = (select(func.min(nxt.c.at))
                   .where(nxt.c.target == p.target, nxt.c.status == "promoted",
                          nxt.c.at > p.at).scalar_subquery())
        failed_after = (select(func.min(r.started_at))
                        .where(r.environment == p.target, r.status == "failed",
                               r.started_at >= p.at,
                               or_(next_at.is_(None), r.started_at < next_at))
                        .scalar_subquery())
        q = (select(p.id, p.source, p.at, previous.label("previous"),
                    failed_after.label("failed_at"))
             .where(p.target == target, p.status == "promoted", p.at >= window[0],
                    p.at < window[1])
             .order_by(p.at))
        return [{"id": int(i), "source": str(src), "at": float(at),
                 "previous": float(pv) if pv is not None else None,
                 "failed_at": float(fa) if fa is not None else None}
                for i, src, at, pv, fa in self._rows(q)]

    def branch_starts(self, names: Sequence[str]) -> dict[str, tuple[float | None, float | None]]:
        """Per environment: (its created_at, if it still exists; its first ref-log entry)."""
        if not names:
            return {}
        e, log = t.environments.c, t.ref_log.c
        created = {str(n): float(at) for n, at in self._rows(
            select(e.name, e.created_at).where(e.name.in_(list(names))))}
        first = {str(n): float(at) for n, at in self._rows(
            select(log.environment, func.min(log.at)).where(log.environment.in_(list(names)))
            .group_by(log.environment))}
        return {n: (created.get(n), first.get(n)) for n in names}

    # restores ---------------------------------------------------------------------------

    def restores(self, window: Window, environment: str | None
                 ) -> list[tuple[str, float, float | None]]:
        """(environment, failed at, restored at) for each failure that broke an environment
        in the window: a failed run whose previous finished run there succeeded (or that has
        none). Restored at: the end of the next successful run there (None: not yet)."""
        r = t.runs.c
        where: list[ColumnElement[bool]] = [r.status.in_(("succeeded", "failed"))]
        if environment is not None:
            where.append(r.environment == environment)
        before = func.lag(r.status).over(partition_by=r.environment,
                                         order_by=[r.started_at, r.id])
        ordered = (select(r.id, r.environment, r.status, r.started_at, r.ended_at,
                          before.label("before"))
                   .where(*where).subquery("ordered"))
        o = ordered.c
        ok = t.runs.alias("ok")
        restored = (select(func.min(ok.c.ended_at))
                    .where(ok.c.environment == o.environment, ok.c.status == "succeeded",
                           ok.c.started_at > o.started_at).scalar_subquery())
        q = (select(o.environment, func.coalesce(o.ended_at, o.started_at), restored)
             .where(o.status == "failed", or_(o.before.is_(None), o.before != "failed"),
                    o.started_at >= window[0], o.started_at < window[1])
             .order_by(o.started_at))
        return [(str(env), float(at), float(back) if back is not None else None)
                for env, at, back in self._rows(q)]

    # SLAs -------------------------------------------------------------------------------

    def sla_breaches(self, window: Window) -> dict[tuple[str, str], int]:
        """(table, environment) → breaches due in the window."""
        b = t.sla_breaches.c
        q = (select(b.table_name, b.environment, func.count())
             .where(and_(b.due_at >= window[0], b.due_at < window[1]))
             .group_by(b.table_name, b.environment))
        return {(str(tb), str(env)): int(n) for tb, env, n in self._rows(q)}

    def environment_names(self) -> list[str]:
        """Environments that exist or ever ran (a deleted branch keeps its history)."""
        e, r = t.environments.c, t.runs.c
        q = select(e.name).union(select(r.environment).distinct())
        return sorted(str(n) for (n,) in self._rows(q))

    def first_run_at(self, environment: str | None) -> float | None:
        r = t.runs.c
        q = select(func.min(r.started_at))
        if environment is not None:
            q = q.where(r.environment == environment)
        rows = self._rows(q)
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    # trends the UI draws -------------------------------------------------------------------

    def row_history(self, environment: str, steps: Sequence[str], per_step: int
                    ) -> dict[str, list[tuple[int, float, int]]]:
        """Step → (run id, start time, rows) of its latest ``per_step`` builds in the
        environment, oldest first: one query whatever the number of runs."""
        s, r = t.step_runs.c, t.runs.c
        numbered = (select(s.step, s.run_id, s.started_at, s.rows,
                           func.row_number().over(partition_by=s.step,
                                                  order_by=s.id.desc()).label("n"))
                    .join(t.runs, r.id == s.run_id)
                    .where(s.step.in_(list(steps)), r.environment == environment,
                           s.action == "built", s.rows.is_not(None))
                    .subquery())
        q = select(numbered).where(numbered.c.n <= per_step).order_by(numbered.c.run_id)
        out: dict[str, list[tuple[int, float, int]]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                out.setdefault(row.step, []).append(
                    (row.run_id, row.started_at or 0.0, row.rows))
        return out

    def recent_schemas(self, steps: Sequence[str], per_step: int
                       ) -> dict[str, list[list[tuple[str, str]]]]:
        """Step → the schemas of its latest ``per_step`` artifacts, oldest first."""
        a = t.artifacts.c
        numbered = (select(a.step, a.schema, a.created_at,
                           func.row_number().over(partition_by=a.step,
                                                  order_by=a.created_at.desc()).label("n"))
                    .where(a.step.in_(list(steps))).subquery())
        q = (select(numbered.c.step, numbered.c.schema).where(numbered.c.n <= per_step)
             .order_by(numbered.c.step, numbered.c.created_at))
        out: dict[str, list[list[tuple[str, str]]]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                out.setdefault(row.step, []).append([(str(c[0]), str(c[1]))
                                                     for c in row.schema or ()])
        return out
