"""Engines run SQL and read/write artifacts (``andon.engines.base.Engine``). DuckDB
in-process is the embedded default; ``andon.engines.sql`` builds andon's own SQL."""

from __future__ import annotations

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

if TYPE_CHECKING:
    from andon.engines.base import Session
    from andon.engines.duckdb import DuckDBEngine

__all__ = [
    "CsvOptions",
    "DuckDBEngine",
    "Engine",
    "EngineError",
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


def create(name: str = "duckdb", **options: Any) -> Engine:
    """An engine by name (``duckdb`` today; PostgreSQL and Spark next)."""
    if name == "duckdb":
        from andon.engines.duckdb import DuckDBEngine

        return DuckDBEngine(**options)
    from andon.errors import ConfigError

    raise ConfigError(f"unknown engine {name!r}", hint="andon runs on: duckdb")


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
