"""Engines run SQL and read/write artifacts (``andon.engines.base.Engine``). DuckDB
in-process is the embedded default; ``andon.engines.sql`` builds andon's own SQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from andon.engines.base import (
    CsvOptions,
    Engine,
    EngineError,
    Interrupted,
    InvalidInput,
    Location,
    ParseReject,
    ReadFailed,
    Schema,
    UnknownObject,
)
from andon.registry import Ref, Registry

if TYPE_CHECKING:
    from andon.engines.base import Session
    from andon.engines.duckdb import DuckDBEngine

__all__ = [
    "ENGINES",
    "CsvOptions",
    "DuckDBEngine",
    "Engine",
    "EngineError",
    "EngineKind",
    "Interrupted",
    "InvalidInput",
    "Location",
    "ParseReject",
    "ReadFailed",
    "Schema",
    "UnknownObject",
    "create",
    "scratch",
]


@dataclass(frozen=True)
class EngineKind:
    """An engine andon can run on: its name (``engine:`` in andon.yaml), how to make one, and
    the extra to install when its driver is missing."""

    name: str
    make: Callable[..., Engine]
    extra: str | None = None
    description: str = ""


ENGINES: Registry[EngineKind] = Registry("engine", "andon.engines")
ENGINES.register(EngineKind("duckdb", Ref("andon.engines.duckdb:DuckDBEngine"),
                            description="DuckDB in-process (embedded, the default)"))


def create(name: str = "duckdb", **options: Any) -> Engine:
    """An engine by name (``andon.yaml``'s ``engine:``; unknown names say did-you-mean)."""
    kind = ENGINES.get_kind(name)
    return kind.make(**options)


def __getattr__(name: str) -> Any:  # DuckDB is imported when an engine is first made
    if name == "DuckDBEngine":
        from andon.engines.duckdb import DuckDBEngine

        return DuckDBEngine
    raise AttributeError(name)


def scratch() -> Session:
    """A new session of the default engine on an empty database that reads no file, where
    andon tries a check's constants and SQL before any work (casts, regexes, binding)."""
    from andon.engines.duckdb import scratch as duckdb_scratch

    return duckdb_scratch()
