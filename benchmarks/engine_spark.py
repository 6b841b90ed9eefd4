"""andon on the Spark engine vs the same SQL run by hand in Spark (local mode).

The four-step pipeline of engine_postgresql.py (generate N order rows, enrich them, aggregate
per customer, join the aggregate back) runs twice in one SparkSession (one JVM, started and
warmed before timing): as an andon project with ``engine: spark`` (``andon run`` in-process:
plan, transpile DuckDB's dialect to Spark SQL, build each step into a Parquet artifact, run
its checks, profile, seal, record, publish), and as the same statements written for Spark SQL
by hand, each step written as Parquet with ``DataFrame.write`` and read back as a view for
the next (what a Spark user would write). The target: andon's overhead <= 10%.
Correctness: andon's tables equal the hand-written ones (sorted rows, doubles to 6 places).

    python benchmarks/engine_spark.py [--rows 10000000] [--repeat 3] [--master local[2]]
                                      [--profile all|checked|none]
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median, row, write_project
from engine_postgresql import STEPS

HAND = [  # the same work, as one would write it for Spark SQL
    ("orders", """SELECT id, id % 50000 AS customer, (id * 7919) % 100000 / 100.0 AS amount,
       date_add(DATE '2024-01-01', CAST(id % 366 AS INT)) AS day
FROM range({rows})"""),
    ("enriched", """SELECT id, customer, amount, day, amount * 1.2 AS gross,
       CASE WHEN amount > 500 THEN 'large' ELSE 'small' END AS size,
       date_trunc('MONTH', day) AS month
FROM orders WHERE amount > 1"""),
    ("by_customer", """SELECT customer, count(*) AS orders, sum(gross) AS gross,
       avg(amount) AS mean_amount, max(day) AS last_day
FROM enriched GROUP BY customer"""),
    ("large_share", """SELECT e.month, e.size, count(*) AS orders, sum(e.gross) AS gross,
       avg(c.mean_amount) AS customer_mean
FROM enriched AS e JOIN by_customer AS c ON c.customer = e.customer
GROUP BY e.month, e.size"""),
]


def hand_written(spark: Any, rows: int, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    for name, sql in HAND:
        spark.sql(sql.format(rows=rows)).write.parquet(str(out / name))
        spark.read.parquet(str(out / name)).createOrReplaceTempView(name)
    return time.perf_counter() - start


def through_andon(rows: int, work: Path, master: str, profile: str) -> float:
    from andon.cli import run_cli

    shutil.rmtree(work, ignore_errors=True)
    write_project(work, {k: v.format(rows=rows) for k, v in STEPS.items()},
                  f"engine: spark\nengine_options:\n  master: {master}\n"
                  f"profile: {profile}\n")
    start = time.perf_counter()
    code = run_cli(["run", "--project", str(work), "--quiet"])
    took = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"andon run failed ({code})")
    return took


def _norm(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 6)
    if hasattr(v, "date") and callable(v.date):  # date_trunc: a timestamp in Spark
        return v.date()
    return v


def rows_of(table: Any) -> list[tuple[Any, ...]]:
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return sorted((tuple(_norm(c[i]) for c in cols) for i in range(table.num_rows)), key=repr)


def compare(work: Path, hand: Path) -> None:
    from andon.environments import env_tables
    from andon.project import Project

    project = Project.load(work)
    for name, artifact in env_tables(project, "prod").items():
        if name == "orders" or name == "enriched":  # large: counted, the aggregates compared
            mine = sum(pq.ParquetFile(project.warehouse / f).metadata.num_rows
                       for f in artifact["files"])
            theirs = pq.read_table(hand / name).num_rows
            assert mine == theirs, (name, mine, theirs)
            continue
        got = pq.read_table(project.warehouse / artifact["files"][0])
        want = pq.read_table(hand / name)
        assert rows_of(got) == rows_of(want.select(got.column_names)), name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--profile", default="all", choices=["all", "checked", "none"],
                        help="the project's profile setting (all: andon's default; the "
                             "steps have no checks, so checked profiles none)")
    args = parser.parse_args()
    from andon.engines.spark import spark_session

    print(f"engine_spark.py: {args.rows:,} rows, 4 steps, Spark {args.master}, "
          f"profile: {args.profile}")
    print(machine())
    spark = spark_session(args.master)
    base = Path(tempfile.mkdtemp(prefix="andon-bench-spark-"))
    try:
        hand_written(spark, 100_000, base / "warm")  # JIT and the JVM's caches warm
        through_andon(100_000, base / "warm-andon", args.master, args.profile)
        engine_s: list[float] = []
        andon_s: list[float] = []
        for _ in range(args.repeat):
            engine_s.append(hand_written(spark, args.rows, base / "hand"))
            andon_s.append(through_andon(args.rows, base / "project", args.master,
                                         args.profile))
        compare(base / "project", base / "hand")
        e, a = median(engine_s), median(andon_s)
        print(row("", "Spark by hand", "andon spark", "overhead"))
        print(row(f"pipeline (median of {args.repeat})", f"{e:.2f} s", f"{a:.2f} s",
                  f"{(a / e - 1) * 100:+.1f}%"))
        print("  runs: by hand " + ", ".join(f"{x:.2f}" for x in engine_s)
              + " | andon " + ", ".join(f"{x:.2f}" for x in andon_s))
        print(f"  target: andon overhead <= 10%: {'met' if a <= e * 1.10 else 'MISSED'}")
        print("  correctness: andon's tables equal the hand-written ones")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
