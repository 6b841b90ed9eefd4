"""Column lineage of a generated 1,000-step project: what ``andon.lineage.compute`` costs.

The project is load.py's (each step a CTE, a join and an aggregate over one or two earlier
steps, so every step has a filter, a join, a group by and a sort to trace). The project is
loaded first (warm parse cache, not timed); then the lineage of every step is computed from
nothing stored, each step's input schemas derived from its parents' lineage, as at the plan
of a first run (cold). Then the same with every step's lineage read from a SQLite store,
as a plan does once a run stored them per fingerprint (warm). Median of --repeat in one
process; the CPU seconds beside the wall-clock ones tell what a busy machine inflates.
Target: <= 2 s for 1,000 steps. sqlglot's compiled build (``pip install 'andon[fast]'``,
sqlglotc) halves the cold figure; the run says which one it measured.

    python benchmarks/lineage.py
    python benchmarks/lineage.py --steps 1000 5000 --repeat 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import machine, median, row
from load import project

TARGET_S = 2.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[1000])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import sqlglot.parser

    from andon.lineage import StepLineage, compute
    from andon.project import Project
    from andon.store import open_store

    build = "compiled (sqlglotc)" if sqlglot.parser.__file__.endswith(".so") else "pure Python"
    print(f"column lineage, median of {args.repeat}, sqlglot {build}, {machine()}\n")
    print(row("project", "seconds", "cpu seconds", "column edges", "result"))
    for n in args.steps:
        loaded = Project.load(project(n))
        fps = {name: s.code_hash for name, s in loaded.dag.steps.items()}  # one per step
        seconds, cpu, edges = [], [], 0
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            graph = compute(loaded)
            seconds.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            traced = [s for s in graph.steps.values() if s.level == "column"]
            assert len(traced) == n, [s.note for s in graph.steps.values() if s.note][:3]
            edges = sum(len(s.edges) for s in traced)
        print(row(f"{n:,} steps, cold", f"{median(seconds):.2f}", f"{median(cpu):.2f}",
                  f"{edges:,}",
                  verdict(n, median(seconds))), flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"sqlite:///{Path(tmp) / 'andon.db'}")
            store.lineage.put([StepLineage(s.step, s.level, s.columns, s.edges, s.note,
                                           fps[s.step]) for s in graph.steps.values()])
            seconds, cpu = [], []
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                stored = {fp: StepLineage.from_dict(r)
                          for fp, r in store.lineage.rows(fps.values()).items()}
                warm = compute(loaded, fps, {}, stored)
                seconds.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                assert sum(len(s.edges) for s in warm.steps.values()) == edges
            store.close()
        print(row(f"{n:,} steps, warm (stored)", f"{median(seconds):.2f}",
                  f"{median(cpu):.2f}", f"{edges:,}",
                  verdict(n, median(seconds))), flush=True)


def verdict(n: int, seconds: float) -> str:
    return ("PASS" if seconds <= TARGET_S else "FAIL") if n == 1000 else ""

if __name__ == "__main__":
    main()
