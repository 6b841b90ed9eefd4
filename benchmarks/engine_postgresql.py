"""andon on the PostgreSQL engine vs the same SQL run by hand in PostgreSQL.

A four-step pipeline (generate N order rows, enrich them, aggregate per customer, join the
aggregate back) runs twice: as an andon project with ``engine: postgresql`` (``andon run``
in-process: plan, transpile, build each step into a fingerprint-named table, seal, record,
publish the environment's views), and as the same statements written for PostgreSQL and run
with psycopg one after the other (CREATE TABLE ... AS). The target: andon's overhead <= 10%.
Correctness: andon's published tables equal the hand-written ones (EXCEPT ALL both ways).

    python benchmarks/engine_postgresql.py [--rows 10000000] [--repeat 3] [--url URL]
        [--profile none|checked|all]

andon's project profiles nothing by default (``--profile none``), as the hand-written SQL;
``--profile all`` adds what profiling every table costs in PostgreSQL.

URL defaults to ANDON_TEST_POSTGRES_URL; a database of its own is made and dropped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median, row, write_project

STEPS = {  # written in DuckDB's dialect, as a project's steps are
    "orders": """SELECT i AS id, i % 50000 AS customer, (i * 7919) % 100000 / 100.0 AS amount,
       DATE '2024-01-01' + CAST(i % 366 AS INTEGER) AS day
FROM range({rows}) AS t(i)""",
    "enriched": """SELECT id, customer, amount, day, amount * 1.2 AS gross,
       CASE WHEN amount > 500 THEN 'large' ELSE 'small' END AS size,
       date_trunc('month', day) AS month
FROM orders WHERE amount > 1""",
    "by_customer": """SELECT customer, count(*) AS orders, sum(gross) AS gross,
       avg(amount) AS mean_amount, max(day) AS last_day
FROM enriched GROUP BY customer""",
    "large_share": """SELECT e.month, e.size, count(*) AS orders, sum(e.gross) AS gross,
       avg(c.mean_amount) AS customer_mean
FROM enriched AS e JOIN by_customer AS c ON c.customer = e.customer
GROUP BY e.month, e.size""",
}

HAND = [  # the same work, as one would write it for PostgreSQL
    ("orders", """SELECT i AS id, i % 50000 AS customer,
       CAST((i * 7919) % 100000 AS DOUBLE PRECISION) / 100.0 AS amount,
       DATE '2024-01-01' + CAST(i % 366 AS INTEGER) AS day
FROM generate_series(0::bigint, {rows} - 1) AS t(i)"""),
    ("enriched", """SELECT id, customer, amount, day, amount * 1.2 AS gross,
       CASE WHEN amount > 500 THEN 'large' ELSE 'small' END AS size,
       date_trunc('month', day) AS month
FROM {s}.orders WHERE amount > 1"""),
    ("by_customer", """SELECT customer, count(*) AS orders, sum(gross) AS gross,
       avg(amount) AS mean_amount, max(day) AS last_day
FROM {s}.enriched GROUP BY customer"""),
    ("large_share", """SELECT e.month, e.size, count(*) AS orders, sum(e.gross) AS gross,
       avg(c.mean_amount) AS customer_mean
FROM {s}.enriched AS e JOIN {s}.by_customer AS c ON c.customer = e.customer
GROUP BY e.month, e.size"""),
]


def hand_written(url: str, schema: str, rows: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
        start = time.perf_counter()
        for name, sql in HAND:
            conn.execute(f"CREATE TABLE {schema}.{name} AS "
                         + sql.format(rows=rows, s=schema))
        return time.perf_counter() - start


def through_andon(url: str, schema: str, rows: int, work: Path, profile: str) -> float:
    from andon.cli import run_cli

    root = work / f"project-{uuid.uuid4().hex[:6]}"
    write_project(root, {n: sql.format(rows=rows) for n, sql in STEPS.items()})
    with (root / "andon.yaml").open("a") as f:
        f.write(f"profile: {profile}\nengine: postgresql\nengine_options:\n  url: {url}\n"
                f"  schema: {schema}\n")
    with psycopg.connect(url, autocommit=True) as conn:
        for s in (schema, f"{schema}_prod"):
            conn.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
    start = time.perf_counter()
    code = run_cli(["run", "--project", str(root), "--quiet"])
    took = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"andon run failed ({code})")
    return took


def same(url: str, hand: str, andon_env: str) -> bool:
    """Every table equal row for row (EXCEPT ALL both ways)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name, _ in HAND:
            types = conn.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                "attrelid = to_regclass(%s) AND attnum > 0 ORDER BY attnum",
                [f"{hand}.{name}"]).fetchall()
            # doubles to 6 significant digits: sums of millions of doubles differ in the
            # last bits with the order a parallel plan adds them in
            cols = ", ".join(f"CAST(CAST({c} AS real) AS text)" if t == "double precision"
                             else c for c, t in types)
            for a, b in ((hand, andon_env), (andon_env, hand)):
                n = conn.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {a}.{name} "
                                 f"EXCEPT ALL SELECT {cols} FROM {b}.{name}) AS d").fetchone()
                if not n or n[0]:
                    print(f"  MISMATCH in {name}: {n[0] if n else '?'} rows of {a} not in {b}")
                    return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--url", default=os.environ.get("ANDON_TEST_POSTGRES_URL"))
    ap.add_argument("--profile", choices=("none", "checked", "all"), default="none",
                    help="andon.yaml's profile: the hand-written SQL profiles nothing, so the "
                         "engine's overhead is measured with none (all: what a profile costs)")
    args = ap.parse_args()
    if not args.url:
        raise SystemExit("give --url or set ANDON_TEST_POSTGRES_URL")
    db = f"andon_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    url = f"{args.url.rsplit('/', 1)[0]}/{db}"
    work = Path(tempfile.mkdtemp(prefix="andon-bench-pg-"))
    print(f"engine_postgresql: {args.rows:,} rows, 4 steps, median of {args.repeat}, "
          f"profile: {args.profile}")
    print(f"  {machine()}")
    try:
        through_andon(url, "warmup", 1000, work, args.profile)  # imports: runs are warm
        hand, andon = [], []
        for i in range(args.repeat):  # alternate who goes first: load and checkpoints
            if i % 2:                    # left by the other hit both alike
                andon.append(through_andon(url, "bench", args.rows, work, args.profile))
                hand.append(hand_written(url, "hand", args.rows))
            else:
                hand.append(hand_written(url, "hand", args.rows))
                andon.append(through_andon(url, "bench", args.rows, work, args.profile))
        ok = same(url, "hand", "bench_prod")
        h, a = median(hand), median(andon)
        print(row("", "seconds", "vs hand"))
        print(row("hand-written SQL in PostgreSQL (psycopg)", f"{h:.2f}", "1.00x"))
        print(row("andon run, engine: postgresql", f"{a:.2f}", f"{a / h:.2f}x"))
        overhead = (a - h) / h * 100
        verdict = "met" if overhead <= 10 else "MISSED"
        print(f"  andon overhead {overhead:+.1f}% (target <= 10%: {verdict}); "
              f"results {'equal' if ok else 'DIFFER'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
