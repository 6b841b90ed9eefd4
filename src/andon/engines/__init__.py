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
    # plan time: a construct of SQL in DuckDB's dialect it cannot run, and a word that finds
    # it in the step's text (None: it runs all of it)
    check_sql: Callable[[str], tuple[str, str] | None] | None = None


ENGINES: Registry[EngineKind] = Registry("engine", "andon.engines")
ENGINES.register(EngineKind("duckdb", Ref("andon.engines.duckdb:DuckDBEngine"),
                            description="DuckDB in-process (embedded, the default)"))
ENGINES.register(EngineKind("postgresql", Ref("andon.engines.postgresql:PostgresEngine"),
                            extra="postgres",
                            check_sql=Ref("andon.engines.postgresql:check_sql"),
                            description="steps run inside a PostgreSQL database; artifacts "
                                        "are its tables, environments schemas of views"))
ENGINES.register(EngineKind("spark", Ref("andon.engines.spark:SparkEngine"), extra="spark",
                            check_sql=Ref("andon.engines.spark_sql:check_sql"),
                            description="steps and checks run on Apache Spark (PySpark; "
                                        "local mode by default); artifacts stay Parquet"))


def create(name: str = "duckdb", **options: Any) -> Engine:
    """An engine by name (``andon.yaml``'s ``engine:``; unknown names say did-you-mean)."""
    kind = ENGINES.get_kind(name)
    try:
        return kind.make(**options)
    except ImportError as e:
        if kind.extra is None or e.name is None or e.name.startswith("andon"):
            raise
        raise EngineError(f"engine {name} needs {e.name.split('.')[0]}, which is not "
                          f"installed: pip install 'andon[{kind.extra}]'") from None


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
