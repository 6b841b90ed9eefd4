"""Engines run SQL and read/write artifacts. DuckDB in-process is the embedded default."""

from andon.engines.duckdb import DuckDBEngine

__all__ = ["DuckDBEngine"]
