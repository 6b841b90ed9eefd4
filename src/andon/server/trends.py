"""What the UI draws from the store beyond the API's answers: a table's row counts build by
build, how often its columns changed, and the points of small inline SVG charts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from andon.store import Store
from andon.store import schema as t


def sparkline(values: Sequence[float], width: int = 96, height: int = 20) -> str:
    """SVG polyline points of ``values`` scaled into ``width`` × ``height``."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    return " ".join(f"{i * step:.1f},{height - 1 - (v - low) / span * (height - 2):.1f}"
                    for i, v in enumerate(values))


def row_history(store: Store, environment: str, steps: Sequence[str], per_step: int
                ) -> dict[str, list[tuple[int, float, int]]]:
    """Step → (run id, start time, rows) of its latest ``per_step`` builds in the environment,
    oldest first: one query whatever the number of runs."""
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
    with store.engine.connect() as conn:
        for row in conn.execute(q):
            out.setdefault(row.step, []).append((row.run_id, row.started_at or 0.0, row.rows))
    return out


def schema_changes(store: Store, steps: Sequence[str], per_step: int) -> dict[str, int]:
    """Step → how many times its columns (names and types) changed across its latest
    ``per_step`` artifacts."""
    a = t.artifacts.c
    numbered = (select(a.step, a.schema, a.created_at,
                       func.row_number().over(partition_by=a.step,
                                              order_by=a.created_at.desc()).label("n"))
                .where(a.step.in_(list(steps))).subquery())
    q = (select(numbered.c.step, numbered.c.schema).where(numbered.c.n <= per_step)
         .order_by(numbered.c.step, numbered.c.created_at))
    changes: dict[str, int] = {}
    last: dict[str, Any] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(q):
            columns = [tuple(c) for c in row.schema]
            if row.step in last and last[row.step] != columns:
                changes[row.step] = changes.get(row.step, 0) + 1
            last[row.step] = columns
    return changes


def bars(pairs: Sequence[Sequence[Any]], width: int = 220) -> list[dict[str, Any]]:
    """A column's top values as horizontal bars scaled to the most frequent."""
    most = max((float(n) for _, n in pairs), default=0.0) or 1.0
    return [{"value": v, "count": n, "width": round(width * float(n) / most, 1)}
            for v, n in pairs]


__all__ = ["bars", "row_history", "schema_changes", "sparkline"]
