"""What the UI draws from the store beyond the API's answers: a table's row counts build by
build, how often its columns changed, and the points of small inline SVG charts."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from andon.store import Store


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
    oldest first."""
    from andon.store.analytics import AnalyticsRepository

    return AnalyticsRepository(store.engine).row_history(environment, steps, per_step)


def schema_changes(store: Store, steps: Sequence[str], per_step: int) -> dict[str, int]:
    """Step → how many times its columns (names and types) changed across its latest
    ``per_step`` artifacts."""
    from andon.store.analytics import AnalyticsRepository

    changes: dict[str, int] = {}
    for step, schemas in AnalyticsRepository(store.engine).recent_schemas(steps,
                                                                          per_step).items():
        changed = sum(1 for before, after in itertools.pairwise(schemas)
                      if before != after)
        if changed:
            changes[step] = changed
    return changes


def bars(pairs: Sequence[Sequence[Any]], width: int = 220) -> list[dict[str, Any]]:
    """A column's top values as horizontal bars scaled to the most frequent."""
    most = max((float(n) for _, n in pairs), default=0.0) or 1.0
    return [{"value": v, "count": n, "width": round(width * float(n) / most, 1)}
            for v, n in pairs]


__all__ = ["bars", "row_history", "schema_changes", "sparkline"]
