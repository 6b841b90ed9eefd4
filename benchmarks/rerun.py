"""No-op re-run: with nothing changed, a second run must build nothing and be cheap.

Creates the flights example in a temp dir, delivers all 12 monthly files (6 are in incoming/
at init, the other 6 are moved in from arrivals/ first), then times
  first run   Project.load + andon.run on the fresh project (everything is built)
  re-run      Project.load + andon.run again, nothing changed (everything must be reused)
Target: the re-run builds 0 steps and takes <= 5% of the first run's wall time.
Median of --repeat fresh projects (3 by default).

    python benchmarks/rerun.py
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from _common import machine, median, row

import andon
from andon import examples, landing

TARGET_RATIO = 0.05


def timed_run(root: Path) -> tuple[float, float, andon.RunResult]:
    t0 = time.perf_counter()
    project = andon.Project.load(root)
    load = time.perf_counter() - t0
    result = andon.run(project)
    wall = time.perf_counter() - t0
    project.close()
    if not result.ok:
        raise SystemExit(f"run failed: {result.error}")
    return load, wall, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"no-op re-run of the flights example (12 months delivered), {machine()}\n")
    firsts: list[float] = []
    reruns: list[float] = []
    warms: list[float] = []
    clis: list[float] = []
    print(row("repetition", "first run s", "re-run s", "ratio", "warm s", "CLI s"))
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="andon-bench-") as d:
            root = examples.init_project(Path(d) / "flights", "flights")
            for f in examples.pending_arrivals(root):
                examples.deliver(root, f)
            landing._HASH_CACHE.clear()
            _, first, r1 = timed_run(root)
            landing._HASH_CACHE.clear()
            _, again, r2 = timed_run(root)
            _, warm, r3 = timed_run(root)
            t0 = time.perf_counter()
            subprocess.run(["andon", "run", "-q", "-p", str(root)], check=True)
            cli = time.perf_counter() - t0
        for r in (r2, r3):
            if r.counts().get("built", 0):
                raise SystemExit(f"re-run built steps: {r.counts()} (first: {r1.counts()})")
        firsts.append(first)
        reruns.append(again)
        warms.append(warm)
        clis.append(cli)
        print(row(f"#{i + 1}", f"{first:.3f}", f"{again:.3f}", f"{again / first:.1%}",
                  f"{warm:.3f}", f"{cli:.3f}"))
    ratio = median(reruns) / median(firsts)
    print()
    print(row("median", f"{median(firsts):.3f}", f"{median(reruns):.3f}", f"{ratio:.1%}",
              f"{median(warms):.3f}", f"{median(clis):.3f}"))
    print(row("ratio to first run", "", "", f"{ratio:.1%}",
              f"{median(warms) / median(firsts):.1%}", f"{median(clis) / median(firsts):.1%}"))
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"\n  re-run counts: {r2.counts()}")
    print(f"  target: re-run builds nothing and <= {TARGET_RATIO:.0%} of the first run: "
          f"{ratio:.1%} -> {verdict}")


if __name__ == "__main__":
    main()
