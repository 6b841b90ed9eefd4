"""What the engine tests (Spark, PostgreSQL) share: a fixture project written from files, the
CLI in-process, the flights example built on DuckDB and on another engine, and prod's tables
as Arrow, compared row for row."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import shutil
import textwrap
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from andon.cli import run_cli
from andon.environments import env_tables
from andon.examples import init_project
from andon.project import Project


def cli(*args: str | Path) -> int:
    """``andon ARGS`` in-process; its exit code."""
    return run_cli([str(a) for a in args])


def make(tmp: Path, files: dict[str, str]) -> Path:
    """A project of ``files`` (path → dedented text) in a new folder under ``tmp``."""
    root = tmp / uuid.uuid4().hex[:6]
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def with_settings(root: Path, settings: str) -> Path:
    """``settings`` (YAML lines, e.g. ``engine: spark``) added to the project's andon.yaml."""
    with (root / "andon.yaml").open("a", encoding="utf-8") as f:
        f.write("\n" + settings.strip("\n") + "\n")
    return root


def build_flights_pair(base: Path, on_engine: Callable[[Path], Path]) -> tuple[Path, Path]:
    """The flights example built on DuckDB (``base/duck``) and on the engine ``on_engine``
    sets (``base/other``): January, then July arriving, so the incremental steps build on
    their previous artifacts."""
    duck, other = base / "duck", base / "other"
    init_project(duck, "flights")
    for month in range(2, 7):  # small, and still incremental
        (duck / f"incoming/flights/flights_2013_{month:02d}.csv").unlink()
    shutil.copytree(duck, other)
    on_engine(other)
    for root in (duck, other):
        assert cli("run", "--project", root) == 0
        shutil.copy(root / "arrivals/flights_2013_07.csv", root / "incoming/flights/")
        assert cli("run", "--project", root) == 0
    return duck, other


def prod_tables(root: Path) -> dict[str, pa.Table]:
    """Each table of prod, read from its artifact's Parquet files."""
    project = Project.load(root)
    out = {}
    for name, row in env_tables(project, "prod").items():
        parts = [pq.read_table(project.warehouse / f) for f in row["files"]]
        out[name] = pa.concat_tables(parts, promote_options="default")
    return out


def norm(v: Any) -> Any:
    """A value as engines agree on it: numbers as doubles to 6 decimals (NaN as NULL),
    aware timestamps in UTC without their zone, a date as its midnight."""
    if isinstance(v, float | decimal.Decimal):
        f = float(v)
        return None if math.isnan(f) else round(f, 6)
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.UTC).replace(tzinfo=None)
    if type(v) is dt.date:  # date_trunc of a date: a DATE on DuckDB 1.4, a TIMESTAMP on Spark
        return dt.datetime(v.year, v.month, v.day)  # and DuckDB 1.5 (docs/scaling.md)
    return v


def _key(row: tuple[Any, ...]) -> str:
    return repr(tuple(round(v, 3) if isinstance(v, float) else v for v in row))


def sorted_rows(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows in a canonical order (order-insensitive), values ``norm``-ed."""
    return sorted((tuple(norm(v) for v in r) for r in rows), key=_key)


def rows_of(table: pa.Table) -> list[tuple[Any, ...]]:
    """An Arrow table's rows, ``sorted_rows``."""
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return sorted_rows([tuple(c[i] for c in cols) for i in range(table.num_rows)])
