"""The registry of check types: the built-in ones, and third-party ones registered through the
``andon.checks`` entry-point group (loaded lazily, once: only when a name is not built in).

A third-party package declares, in its ``pyproject.toml``::

    [project.entry-points."andon.checks"]
    positive = "my_package.checks:Positive"

where ``Positive`` is a ``CheckType`` subclass (or an instance of one) with its own pydantic
spec model, whose ``type`` field is ``Literal["positive"]``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from andon.checks.kinds.aggregates import AGGREGATE_TYPES
from andon.checks.kinds.base import CheckType
from andon.checks.kinds.history import HISTORY_TYPES
from andon.checks.kinds.python import PYTHON_TYPES
from andon.checks.kinds.queries import QUERY_TYPES
from andon.checks.kinds.rows import ROW_TYPES
from andon.errors import AndonError, did_you_mean

GROUP = "andon.checks"

# the order of the documentation: table checks, then column checks
_ORDER = ("row_count", "rows_added", "freshness", "schema", "schema_drift", "volume_change",
          "balance", "sql", "expression", "not_null", "unique", "accepted_values",
          "rejected_values", "between", "regex", "length_between", "type", "relationship",
          "mean_between", "median_between", "stddev_between", "sum_between", "quantile_between",
          "distinct_count_between", "null_share_max", "temporal_order", "distribution_drift",
          "python")
_ALL = {t.name: t for t in (*AGGREGATE_TYPES, *HISTORY_TYPES, *PYTHON_TYPES, *QUERY_TYPES,
                            *ROW_TYPES)}
BUILTIN: dict[str, CheckType[Any]] = {name: _ALL[name] for name in _ORDER}


class UnknownCheckType(AndonError):
    """No built-in or installed check type has this name."""

    kind = "not_found"


@functools.cache
def plugins() -> Mapping[str, CheckType[Any]]:
    """Check types installed by other packages (entry points of the group ``andon.checks``)."""
    found: dict[str, CheckType[Any]] = {}
    for ep in entry_points(group=GROUP):
        where = f"entry point {ep.name!r} ({ep.value}) of group {GROUP!r}"
        try:
            obj = ep.load()
        except Exception as e:
            raise AndonError(f"{where} cannot be loaded: {type(e).__name__}: {e}",
                             hint="fix or uninstall the package that declares it") from None
        kind = obj() if isinstance(obj, type) and issubclass(obj, CheckType) else obj
        if not isinstance(kind, CheckType):
            raise AndonError(f"{where} is not a CheckType",
                             hint="point it at a subclass of andon.checks.CheckType")
        needs = ("compile", "judge") if kind.scanned else ("run",)
        missing = [m for m in needs if getattr(type(kind), m) is getattr(CheckType, m)]
        if missing:
            raise AndonError(f"{where}: check type {kind.name!r} ({kind.family}) does not "
                             f"implement {' and '.join(missing)}",
                             hint="scan families (row, agg) compile and judge; the others run")
        if kind.name in BUILTIN or kind.name in found:
            raise AndonError(f"{where} registers check type {kind.name!r}, which already "
                             "exists", hint="give the third-party check type another name")
        found[kind.name] = kind
    return found


def check_types() -> dict[str, CheckType[Any]]:
    """Every check type: the built-in ones, then the installed ones."""
    return {**BUILTIN, **plugins()}


def get(name: str) -> CheckType[Any]:
    """The check type named ``name``; an unknown name says "did you mean"."""
    kind = BUILTIN.get(name) or plugins().get(name)
    if kind is None:
        known = check_types()
        raise UnknownCheckType(f"unknown check type {name!r}", hint=did_you_mean(name, known)
                               or f"check types: {', '.join(sorted(known))}")
    return kind
