"""`andon report` at 10,000 runs: the time to build the DataOps analytics report.

The flights example is built once; its real run (12 step runs, its check results) is then
copied into the store 10,000 times over the last 60 days, in prod and in 100 branches, with
every 10th run failed (a source step failing), and a promotion of each branch into prod.
Timed in-process (the report over 30 days and over every run, median of --repeat) and as
the command `andon report --format json` (Python start-up included). The project is made
once in benchmarks/.work/report-flights (git-ignored); --fresh recreates it.

    python benchmarks/report.py [--repeat 5] [--fresh]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import HERE, machine, median, row

RUNS = 10_000
BRANCHES = 100
SPAN = 60 * 86400.0


def _copies(real: dict[str, Any], steps: list[dict[str, Any]], checks: list[dict[str, Any]],
            first_id: int, now: float, i: int) -> tuple[dict[str, Any], list[dict[str, Any]],
                                                     list[dict[str, Any]]]:
    at = now - SPAN + i * SPAN / RUNS
    failed = i % 10 == 9
    env = "prod" if i % 2 == 0 else f"dev{i % BRANCHES}"
    run_id = first_id + i
    run = dict(real, id=run_id, environment=env, started_at=at, ended_at=at + 5,
               status="failed" if failed else "succeeded")
    step_rows = [dict(s, run_id=run_id, started_at=at,
                      action="failed" if failed and s["step"] == "raw_airports" else s["action"])
                 for s in steps]
    check_rows = [dict(c, run_id=run_id, environment=env, at=at + 4) for c in checks]
    return run, step_rows, check_rows


def prepare(root: Path, fresh: bool) -> None:
    """The flights example, built once, with RUNS runs (and their step runs and check
    results), BRANCHES branches and their promotions in its store."""
    from sqlalchemy import func, insert, select

    from andon.examples import init_project
    from andon.project import Project
    from andon.service import Session
    from andon.store import schema as t

    if fresh and root.exists():
        shutil.rmtree(root)
    if not (root / "andon.yaml").exists():
        init_project(root, "flights")
    if not (root / ".andon" / "andon.db").exists():
        project = Project.load(root)
        assert Session(project, "bench").run().ok
        project.close()
    project = Project.load(root)
    with project.store.engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(t.runs)).scalar_one() >= RUNS:
            project.close()
            return
        real = dict(conn.execute(select(t.runs).order_by(t.runs.c.id).limit(1)).one()._mapping)
        steps = [dict(r._mapping) for r in conn.execute(
            select(t.step_runs).where(t.step_runs.c.run_id == real["id"]))]
        checks = [dict(r._mapping) for r in conn.execute(
            select(t.check_results).where(t.check_results.c.run_id == real["id"]))]
        for s in steps:
            s.pop("id")
        for c in checks:
            c.pop("id")
        first_id = int(conn.execute(select(func.max(t.runs.c.id))).scalar_one()) + 1
        now = time.time()
        for start in range(0, RUNS, 500):
            batch = [_copies(real, steps, checks, first_id, now, i)
                     for i in range(start, min(start + 500, RUNS))]
            conn.execute(insert(t.runs), [b[0] for b in batch])
            conn.execute(insert(t.step_runs), [s for b in batch for s in b[1]])
            conn.execute(insert(t.check_results), [c for b in batch for c in b[2]])
        head = real["commit_id"]
        for n in range(BRANCHES):
            created = now - SPAN + n * SPAN / BRANCHES
            conn.execute(insert(t.environments).values(
                name=f"dev{n}", commit_id=head, version=1, protected=False, base="prod",
                owner="bench", created_at=created, updated_at=created))
            conn.execute(insert(t.ref_log).values(environment=f"dev{n}", to_commit=head,
                                                  at=created, who="bench", why="created"))
            conn.execute(insert(t.promotions).values(
                source=f"dev{n}", target="prod", status="promoted", who="bench",
                at=created + 3600 * (1 + n % 48), candidate_commit=head, changed=[]))
    project.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    root = HERE / ".work" / "report-flights"
    print(machine())
    t0 = time.perf_counter()
    prepare(root, args.fresh)
    print(f"  store ready in {time.perf_counter() - t0:.1f}s ({RUNS:,} runs)")

    from andon.analytics import report
    from andon.project import Project

    print(row("report", "median s", "runs in window"))
    for since in ("30d", "90d"):
        times, count = [], 0
        for _ in range(args.repeat):
            project = Project.load(root)
            start = time.perf_counter()
            count = report(project, since).runs.runs
            times.append(time.perf_counter() - start)
            project.close()
        print(row(f"in-process, --since {since}", f"{median(times):.3f}", f"{count:,}"))
    cli = []
    for _ in range(max(1, args.repeat // 2)):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "andon", "report", "-p", str(root), "--format",
                        "json"], check=True, capture_output=True)
        cli.append(time.perf_counter() - start)
    print(row("andon report --format json (command)", f"{median(cli):.3f}", ""))


if __name__ == "__main__":
    main()
