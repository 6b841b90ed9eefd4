"""Peak memory of 10-million-row steps: andon must stream, not hold tables in Python.

Generates a 10M-row Parquet file with DuckDB's range() (id, grp, amount, label, ts), and a
project with
  raw_events   a parquet source with a contract (ingested: type checks, typed artifact)
  by_group     SELECT grp, count(*), sum(amount), ... GROUP BY grp    (aggregate: 1,000 rows)
  enriched     SELECT *, amount * 1.2 AS amount_gross, ... FROM raw_events  (10M rows through)
Each of the three steps runs in its own child process (`andon.run` with a selection, the
source first, in a branch environment "bench": prod takes new step code only by promotion);
the peak RSS of that child comes from os.wait4's rusage (ru_maxrss).
Target: every peak under 2 GB.

    python benchmarks/memory.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from _common import machine, row, write_project

TARGET_MB = 2048

SOURCES = """
sources:
  raw_events:
    path: incoming/events/*.parquet
    format: parquet
    columns:
      id: {type: bigint, required: true}
      grp: {type: integer, required: true}
      amount: double
      label: string
      ts: timestamp
"""

STEPS = {
    "by_group": "SELECT grp, count(*) AS n, sum(amount) AS total, avg(amount) AS mean,\n"
                "       min(ts) AS first_ts, max(ts) AS last_ts\nFROM raw_events\nGROUP BY grp",
    "enriched": "SELECT *, amount * 1.2 AS amount_gross, upper(label) AS label_uc\n"
                "FROM raw_events",
}

CHILD = """
import json, sys, andon
project = andon.Project.load(sys.argv[1])
result = andon.run(project, "bench", selection=[sys.argv[2]])
s = {x.name: x for x in result.steps}[sys.argv[2]]
print(json.dumps({"ok": result.ok, "action": s.action, "rows": s.rows,
                  "error": result.error.render() if result.error else None}))
"""


def generate(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT range AS id, range % 1000 AS grp, (range % 9973) / 7.0 AS amount, "
        f"'item_' || (range % 100000) AS label, "
        f"TIMESTAMP '2024-01-01' + to_seconds(range) AS ts FROM range({rows})) "
        f"TO '{path}' (FORMAT parquet)"
    )
    con.close()


def run_child(root: Path, step: str) -> tuple[float, float, dict[str, object]]:
    """(peak RSS MB, wall s, child's report) of one andon run of ``step`` in a child process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), step],
                                stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"child failed for {step}:\n{err.read()[-3000:]}")
        report = json.loads(out.read().strip().splitlines()[-1])
    return usage.ru_maxrss / 1024, seconds, report  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    args = ap.parse_args()
    print(f"peak RSS of {args.rows:,}-row steps, {machine()}\n")
    with tempfile.TemporaryDirectory(prefix="andon-bench-") as d:
        root = Path(d) / "project"
        write_project(root, STEPS, SOURCES)
        data = root / "incoming" / "events" / "events.parquet"
        t0 = time.perf_counter()
        generate(data, args.rows)
        print(f"  generated {data.name}: {data.stat().st_size / 1e6:.0f} MB Parquet "
              f"in {time.perf_counter() - t0:.1f} s\n")
        print(row("step (own child process)", "peak RSS MB", "wall s", "rows out", "verdict"))
        worst = 0.0
        for step in ("raw_events", "by_group", "enriched"):
            peak, seconds, report = run_child(root, step)
            if not report["ok"] or report["action"] != "built":
                raise SystemExit(f"{step}: {report}")
            worst = max(worst, peak)
            verdict = "PASS" if peak < TARGET_MB else "FAIL"
            print(row(step, f"{peak:.0f}", f"{seconds:.1f}", f"{report['rows']:,}", verdict))
    verdict = "PASS" if worst < TARGET_MB else "FAIL"
    print(f"\n  target: peak RSS < {TARGET_MB} MB -> worst {worst:.0f} MB: {verdict}")


if __name__ == "__main__":
    main()
