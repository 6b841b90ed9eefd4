"""One way to hide a value: every sample andon shows (CLI, UI, API, alerts, check failures)
goes through these functions for the columns tagged as personal data."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

MASK = "***"


def mask_value(value: Any) -> Any:
    """``***`` for any value; a missing one stays missing (that it is empty is no secret)."""
    return None if value is None else MASK


def mask_rows(rows: Sequence[Mapping[str, Any]], masked: Collection[str]
              ) -> list[dict[str, Any]]:
    """Rows as dicts with the ``masked`` columns hidden."""
    return [{k: (mask_value(v) if k in masked else v) for k, v in r.items()} for r in rows]


def mask_tuples(columns: Sequence[str], rows: Sequence[Sequence[Any]],
                masked: Collection[str]) -> list[tuple[Any, ...]]:
    """Rows as tuples (a query's result) with the ``masked`` columns hidden."""
    hide = [c in masked for c in columns]
    return [tuple(mask_value(v) if h else v for v, h in zip(r, hide, strict=True))
            for r in rows]


__all__ = ["MASK", "mask_rows", "mask_tuples", "mask_value"]
