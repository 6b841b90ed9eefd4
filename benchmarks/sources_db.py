"""Database source throughput: a PostgreSQL table landed by andon vs DuckDB's own scanner.

A table of --rows rows (id, amount, customer, at) is generated once with generate_series in
the schema andon_src_bench of the PostgreSQL at --url (default ANDON_TEST_POSTGRES_URL) and
kept for later runs. Then, median of --repeat runs each:
  duckdb   COPY (SELECT * FROM pg.andon_src_bench.orders_N) TO 'x.parquet' on a fresh
           connection with the postgres extension: the engine's own scanner to Parquet
  land     andon sources pull: the same scan into a snapshot file, hashed, landed read-only
           and recorded (a fresh project every time)
  ingest   then andon run of the source: the typed, contract-checked artifact
Correctness: row count and sum(id) of the snapshot and of the artifact equal the table's.
Target: land at >= 80% of DuckDB's speed (land time <= 1.25x DuckDB's), for the scanner
path. --reader driver times andon's fallback instead (psycopg's server-side cursor streamed
through DuckDB into the same snapshot, what runs without the scanner extension); the DuckDB
column is still the scanner's, so it needs andon[databases] either way.

    python benchmarks/sources_db.py [--rows 1000000] [--repeat 3] [--reader scanner|driver]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import psycopg
import pyarrow.parquet as pq
from _common import machine, median, row

import andon
from andon.engines.dbscan import _load
from andon.service import Session
from andon.sources.pull import pull

SCHEMA = "andon_src_bench"
TARGET = 0.80


def ensure_table(url: str, rows: int) -> tuple[str, int]:
    table = f"orders_{rows}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        found = conn.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                             "AND table_name = %s", (SCHEMA, table)).fetchone()
        if not found:
            print(f"  generating {rows:,} rows in {SCHEMA}.{table} (first time only) ...",
                  flush=True)
            conn.execute(
                f"CREATE TABLE {SCHEMA}.{table} AS SELECT g::bigint AS id, (g % 1000) * "
                "1.25::float8 AS amount, 'customer ' || (g % 50000) AS customer, timestamp "
                "'2024-01-01' + g * interval '1 second' AS at FROM generate_series(1, "
                f"{rows}) g")
            conn.execute(f"ANALYZE {SCHEMA}.{table}")
        total = conn.execute(f"SELECT sum(id) FROM {SCHEMA}.{table}").fetchone()
    assert total is not None
    return table, int(total[0])


def duckdb_copy(url: str, table: str, out: Path) -> float:
    con = duckdb.connect()
    _load(con, "postgres", "postgres_scanner", "bench")
    started = time.perf_counter()
    con.execute(f"ATTACH '{url}' AS pg (TYPE postgres, READ_ONLY)")
    con.execute(f"COPY (SELECT * FROM pg.{SCHEMA}.{table}) TO '{out}' "
                "(FORMAT parquet, COMPRESSION zstd)")
    took = time.perf_counter() - started
    con.close()
    return took


def andon_land(url: str, table: str, work: Path, rows: int, total: int,
               reader: str) -> tuple[float, float]:
    root = work / f"p{time.monotonic_ns()}"
    root.mkdir()
    (root / "andon.yaml").write_text(
        "name: bench\nsources:\n  orders:\n    kind: database\n"
        f"    url: {url}\n    table: {SCHEMA}.{table}\n"
        "    columns: {id: {type: bigint, required: true}, amount: double, customer: string, "
        "at: timestamp}\n")
    started = time.perf_counter()
    got = pull(andon.Project.load(root), "orders")
    land = time.perf_counter() - started
    assert got["rows"] == rows, got
    assert (got["reader"] == "psycopg") == (reader == "driver"), got
    landed = next((root / ".andon/landing/orders").rglob("*.parquet"))
    assert pq.ParquetFile(landed).metadata.num_rows == rows
    started = time.perf_counter()
    # the run ingests what the pull landed (pull=False: not a second pull)
    result = Session(andon.Project.load(root), "bench").run(pull=False)
    ingest = time.perf_counter() - started
    assert result.status == "succeeded", result
    _, check = andon.query(andon.Project.load(root), "SELECT count(*), sum(id) FROM orders")
    assert check == [(rows, total)], check
    shutil.rmtree(root)
    return land, ingest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reader", choices=["scanner", "driver"], default="scanner",
                        help="andon's path: DuckDB's scanner, or the psycopg fallback")
    parser.add_argument("--url", default=os.environ.get(
        "ANDON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    os.environ["ANDON_DB_READER"] = args.reader
    print(f"database source: {args.rows:,} rows from PostgreSQL, andon reading with the "
          f"{args.reader}; {machine()}")
    table, total = ensure_table(args.url, args.rows)
    ducks, lands, ingests = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for _ in range(args.repeat):
            out = work / "duck.parquet"
            ducks.append(duckdb_copy(args.url, table, out))
            assert pq.ParquetFile(out).metadata.num_rows == args.rows
            out.unlink()
            land, ingest = andon_land(args.url, table, work, args.rows, total, args.reader)
            lands.append(land)
            ingests.append(ingest)
    duck, land, ingest = median(ducks), median(lands), median(ingests)
    print(row("", "seconds", "rows/s", "vs duckdb"))
    print(row("duckdb COPY pg table TO parquet", f"{duck:.2f}", f"{args.rows / duck:,.0f}",
              "100%"))
    print(row(f"andon sources pull ({args.reader})", f"{land:.2f}",
              f"{args.rows / land:,.0f}", f"{duck / land:.0%}"))
    print(row("andon run (typed artifact, after the pull)", f"{ingest:.2f}",
              f"{args.rows / ingest:,.0f}", ""))
    print(row("andon pull + run", f"{land + ingest:.2f}",
              f"{args.rows / (land + ingest):,.0f}", f"{duck / (land + ingest):.0%}"))
    verdict = "met" if duck / land >= TARGET else "MISSED"
    print(f"target: landing at >= {TARGET:.0%} of DuckDB's speed: {verdict}")


if __name__ == "__main__":
    main()
