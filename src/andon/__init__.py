"""andon: DataOps in one tool. Tested SQL and Python pipelines, content-addressed artifacts,
environments as pointers.

    import andon
    project = andon.Project.load("path/to/project")
    result = andon.run(project)            # plan, build, check, publish to prod
    session = andon.Session(project, user="alice")   # every verb, checked against her role
    cols, rows = andon.query(project, "SELECT count(*) FROM flights")

The names below are imported on first use, so that ``import andon`` (and every command of the
CLI) does not pay for DuckDB, PyArrow and SQLAlchemy before it needs them.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from andon.errors import AndonError
    from andon.events import RunResult, StepResult
    from andon.plan import Plan, PlannedStep
    from andon.project import Project
    from andon.published import lineage, rejects, run_details, runs, tables
    from andon.service import Session, plan, query, run, show
    from andon.steps import step

__version__ = "0.1.0"

_HOMES = {
    "AndonError": "andon.errors",
    "Plan": "andon.plan",
    "PlannedStep": "andon.plan",
    "Project": "andon.project",
    "RunResult": "andon.events",
    "Session": "andon.service",
    "StepResult": "andon.events",
    "lineage": "andon.published",
    "plan": "andon.service",
    "query": "andon.service",  # through a Session: PII masked as for the user
    "rejects": "andon.published",
    "run": "andon.service",
    "run_details": "andon.published",
    "runs": "andon.published",
    "show": "andon.service",
    "step": "andon.steps",
    "tables": "andon.published",
}

__all__ = [
    "AndonError",
    "Plan",
    "PlannedStep",
    "Project",
    "RunResult",
    "Session",
    "StepResult",
    "__version__",
    "features",
    "lineage",
    "plan",
    "query",
    "rejects",
    "run",
    "run_details",
    "runs",
    "show",
    "step",
    "tables",
]


def __getattr__(name: str) -> Any:
    if name == "features":  # the feature store's API: andon.features.training_set(...)
        return import_module("andon.features")
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'andon' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


class _Package(types.ModuleType):
    """Keeps ``andon.plan`` the function: importing the submodule ``andon.plan`` (where the
    ``Plan`` class lives) would otherwise bind the module over it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _HOMES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
