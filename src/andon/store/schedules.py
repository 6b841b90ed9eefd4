"""Schedule state and ticks in the store: one tick per run key, claimed by one scheduler.

A tick is inserted with ``ON CONFLICT DO NOTHING`` on its unique run key, so two schedulers on
one store that decide the same tick insert it once; a queued tick is started by whichever
scheduler moves it from ``queued`` to ``starting`` first (a compare-and-set)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from andon.store import schema as t
from andon.store.reader import Row

# a tick is waiting for a worker (queued), taken (starting), has a run (running), or is done
OPEN = ("queued", "starting", "running")


class StaleCursor(Exception):
    """Another scheduler moved the sensor's cursor first: evaluate again."""


class ScheduleRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # state ------------------------------------------------------------------------------------

    def states(self) -> dict[tuple[str, str], Row]:
        with self.engine.connect() as conn:
            return {(r.kind, r.name): dict(r._mapping)
                    for r in conn.execute(select(t.schedule_state))}

    def reset(self, kind: str, name: str, spec: str, evaluated_at: float,
              cursor: Mapping[str, Any] | None = None) -> None:
        """Start (or restart, after its timing changed) counting ``name`` from
        ``evaluated_at``: nothing before it will fire."""
        values = dict(kind=kind, name=name, spec=spec, evaluated_at=evaluated_at,
                      cursor=dict(cursor) if cursor is not None else None)
        with self.engine.begin() as conn:
            if insert_new(conn, t.schedule_state, {**values, "version": 1}) is not None:
                return
            conn.execute(update(t.schedule_state)
                         .where(t.schedule_state.c.kind == kind,
                                t.schedule_state.c.name == name,
                                t.schedule_state.c.spec != spec)
                         .values(**values, version=t.schedule_state.c.version + 1))

    def decide(self, kind: str, name: str, ticks: Sequence[Row], evaluated_at: float, *,
               version: int | None = None, cursor: Mapping[str, Any] | None = None
               ) -> list[Row]:
        """Insert the ticks decided up to ``evaluated_at`` and move the state there, in one
        transaction. Returns the ticks this call inserted (a run key already present was
        decided by another scheduler). With ``version`` (sensors), the state must still be at
        that version, else nothing is written and StaleCursor is raised."""
        now = time.time()
        inserted: list[Row] = []
        with self.engine.begin() as conn:
            state = t.schedule_state.c
            if version is not None:
                moved = conn.execute(
                    update(t.schedule_state)
                    .where(state.kind == kind, state.name == name, state.version == version)
                    .values(evaluated_at=evaluated_at, version=version + 1,
                            cursor=dict(cursor) if cursor is not None else None))
                if moved.rowcount != 1:
                    raise StaleCursor(name)
            else:
                conn.execute(update(t.schedule_state)
                             .where(state.kind == kind, state.name == name,
                                    state.evaluated_at < evaluated_at)
                             .values(evaluated_at=evaluated_at))
            for tick in ticks:
                row = {**tick, "kind": kind, "name": name, "status": "queued",
                       "created_at": now}
                key = insert_new(conn, t.schedule_ticks, row)
                if key is not None:
                    inserted.append({**row, **key})
        return inserted

    # the queue ----------------------------------------------------------------------------------

    def queued_environments(self) -> list[str]:
        c = t.schedule_ticks.c
        with self.engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(
                select(c.environment).where(c.status == "queued").distinct())]

    def claim_next(self, environment: str, claimer: str) -> Row | None:
        """Take the oldest queued tick of ``environment`` for ``claimer``; None when there is
        none left. Two schedulers never take the same tick."""
        c = t.schedule_ticks.c
        for _ in range(20):
            with self.engine.begin() as conn:
                row = conn.execute(
                    select(t.schedule_ticks)
                    .where(c.status == "queued", c.environment == environment)
                    .order_by(c.scheduled_at, c.id).limit(1)).first()
                if row is None:
                    return None
                taken = conn.execute(
                    update(t.schedule_ticks).where(c.id == row.id, c.status == "queued")
                    .values(status="starting", claimed_by=claimer, started_at=time.time()))
                if taken.rowcount == 1:
                    return {**row._mapping, "status": "starting", "claimed_by": claimer,
                            "started_at": time.time()}
        return None

    def started(self, tick_id: int, run_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.schedule_ticks).where(t.schedule_ticks.c.id == tick_id)
                         .values(status="running", run_id=run_id))

    def finish(self, tick_id: int, status: str, *, run_id: int | None = None,
               error: str | None = None) -> None:
        values: dict[str, Any] = dict(status=status, ended_at=time.time(), error=error)
        if run_id is not None:
            values["run_id"] = run_id
        with self.engine.begin() as conn:
            conn.execute(update(t.schedule_ticks).where(t.schedule_ticks.c.id == tick_id)
                         .values(**values))

    def close_orphans(self, alive: Callable[[str], bool]) -> list[int]:
        """Close ticks left open: one whose run has ended takes the run's status; one taken
        by a scheduler that is gone (``alive(claimed_by)`` is False) before its run ended is
        ``abandoned``. Neither is started again: that would repeat the tick."""
        c, r = t.schedule_ticks.c, t.runs.c
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(c.id, c.claimed_by, c.run_id, r.status.label("run_status"),
                       r.error.label("run_error"))
                .select_from(t.schedule_ticks.outerjoin(t.runs, r.id == c.run_id))
                .where(c.status.in_(("starting", "running")))).all()
            closed = []
            for row in rows:
                if row.run_status not in (None, "running"):
                    status, error = row.run_status, row.run_error  # the run ended
                elif row.claimed_by is not None and not alive(row.claimed_by):
                    status, error = "abandoned", "the scheduler stopped before the run ended"
                else:
                    continue
                conn.execute(update(t.schedule_ticks).where(c.id == row.id)
                             .values(status=status, error=error, ended_at=time.time()))
                closed.append(int(row.id))
            return closed

    # reads --------------------------------------------------------------------------------------

    def ticks(self, name: str | None = None, *, kind: str | None = None,
              limit: int = 50) -> list[Row]:
        """The newest ticks (with their run's status), newest first."""
        c = t.schedule_ticks.c
        q = (select(t.schedule_ticks, t.runs.c.status.label("run_status"))
             .select_from(t.schedule_ticks.outerjoin(t.runs, t.runs.c.id == c.run_id))
             .order_by(c.scheduled_at.desc(), c.id.desc()).limit(limit))
        if name is not None:
            q = q.where(c.name == name)
        if kind is not None:
            q = q.where(c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def latest(self) -> dict[tuple[str, str], Row]:
        """The newest tick of every schedule and sensor, with its run's status."""
        c = t.schedule_ticks.c
        newest = (select(c.kind, c.name, func.max(c.id).label("id"))
                  .group_by(c.kind, c.name).subquery())
        q = (select(t.schedule_ticks, t.runs.c.status.label("run_status"))
             .select_from(t.schedule_ticks
                          .join(newest, and_(newest.c.id == c.id))
                          .outerjoin(t.runs, t.runs.c.id == c.run_id)))
        with self.engine.connect() as conn:
            return {(r.kind, r.name): dict(r._mapping) for r in conn.execute(q)}


    # SLAs ---------------------------------------------------------------------------------

    def last_refreshes(self, environment: str, tables: Sequence[str],
                       actions: Sequence[str]) -> dict[str, float]:
        """When each table was last built or confirmed (``actions``) by a successful run in
        ``environment``."""
        s, r = t.step_runs.c, t.runs.c
        q = (select(s.step, func.max(r.ended_at))
             .select_from(t.step_runs.join(t.runs, r.id == s.run_id))
             .where(r.status == "succeeded", r.environment == environment,
                    s.step.in_(list(tables)), s.action.in_(list(actions)))
             .group_by(s.step))
        with self.engine.connect() as conn:
            return {str(step): float(at) for step, at in conn.execute(q) if at is not None}

    def record_breach(self, values: Mapping[str, Any]) -> bool:
        """Keep a breach once by its key; True when this call recorded it (and alerts)."""
        with self.engine.begin() as conn:
            return insert_new(conn, t.sla_breaches, values) is not None

    def breach_alert_errors(self, breach_key: str, errors: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.sla_breaches)
                         .where(t.sla_breaches.c.breach_key == breach_key)
                         .values(alert_errors=errors))

    def breaches(self, table: str | None = None, limit: int = 50) -> list[Row]:
        """Recorded breaches, newest first."""
        c = t.sla_breaches.c
        q = select(t.sla_breaches).order_by(c.detected_at.desc(), c.id.desc()).limit(limit)
        if table is not None:
            q = q.where(c.table_name == table)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

def insert_new(conn: Connection, table: Any, values: Mapping[str, Any]) -> Row | None:
    """Insert unless a row with the same unique key exists; the new row's primary key when
    this call inserted, else None.
    ``ON CONFLICT DO NOTHING`` keeps the transaction usable (an IntegrityError would abort
    it on PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    elif conn.dialect.name == "sqlite":
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    else:  # another SQLAlchemy dialect: plain insert, a duplicate raises
        stmt = insert(table).values(**values)
    # RETURNING says whether a row went in (rowcount is not reliable with psycopg here)
    key = conn.execute(stmt.returning(*table.primary_key.columns)).first()
    return dict(key._mapping) if key is not None else None
