"""Column lineage of a generated 1,000-step project: what ``andon.lineage.compute`` costs.

The project is load.py's (each step a CTE, a join and an aggregate over one or two earlier
steps, so every step has a filter, a join, a group by and a sort to trace). The project is
loaded first (warm parse cache, not timed); then the lineage of every step is computed from
nothing stored, each step's input schemas derived from its parents' lineage, as at the plan
of a first run. Median of --repeat in one process. Target: <= 2 s for 1,000 steps.

    python benchmarks/lineage.py
    python benchmarks/lineage.py --steps 1000 5000 --repeat 5
"""

from __future__ import annotations

import argparse
import time

from _common import machine, median, row
from load import project

TARGET_S = 2.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[1000])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from andon.lineage import compute
    from andon.project import Project

    print(f"column lineage, median of {args.repeat}, {machine()}\n")
    print(row("project", "seconds", "ms per step", "column edges", "result"))
    for n in args.steps:
        loaded = Project.load(project(n))
        seconds, edges = [], 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            graph = compute(loaded)
            seconds.append(time.perf_counter() - t0)
            traced = [s for s in graph.steps.values() if s.level == "column"]
            assert len(traced) == n, [s.note for s in graph.steps.values() if s.note][:3]
            edges = sum(len(s.edges) for s in traced)
        verdict = ("PASS" if median(seconds) <= TARGET_S else "FAIL") if n == 1000 else ""
        print(row(f"{n:,} steps", f"{median(seconds):.2f}",
                  f"{median(seconds) / n * 1000:.2f}", f"{edges:,}", verdict), flush=True)


if __name__ == "__main__":
    main()
