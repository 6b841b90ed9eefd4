"""Project load: what ``Project.load`` costs per step file.

Generates a fixture project of N SQL steps (1,000 and 5,000 by default) in benchmarks/.work/:
each a CTE, a join and an aggregate over one or two earlier steps; one in ten has a YAML header
and one in ten uses a parameter (``{{ min_x }}``). Times ``Project.load`` in a fresh process
(median of --repeat; the imports are timed apart):
  cold   no parse cache (``.andon/parse-cache.sqlite`` deleted first)
  warm   the cache filled by the previous load, files unchanged
Target: <= 0.5 ms per file (warm).

    python benchmarks/load.py
    python benchmarks/load.py --steps 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from _common import HERE, machine, median, row, write_project

TARGET_MS = 0.5
CACHE = "parse-cache.sqlite"

TIMED = """
import json, sys, time
t0 = time.perf_counter()
from andon.project import Project  # the modules loading needs: timed apart
t1 = time.perf_counter()
project = Project.load(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "steps": len(project.dag.steps)}))
"""


def step_sql(i: int) -> str:
    if i == 0:
        return "SELECT range AS x, range % 7 AS k FROM range(10)"
    a, b = i - 1, (i * 7919) % i
    header = ("/* ---\ndescription: step number " + str(i) + "\nowner: bench\n"
              "tags: [generated]\n--- */\n") if i % 10 == 3 else ""
    threshold = "{{ min_x }}" if i % 10 == 5 else "0"
    return (f"{header}-- generated step {i}\n"
            f"WITH a AS (\n  SELECT x, k FROM step_{a} WHERE x >= {threshold}\n),\n"
            f"b AS (\n  SELECT k, count(*) AS n, max(x) AS top\n  FROM step_{b}\n"
            f"  GROUP BY k\n)\n"
            f"SELECT a.x, a.k, coalesce(b.n, 0) AS n, b.top\n"
            f"FROM a LEFT JOIN b ON a.k = b.k\nORDER BY a.x")


def project(n: int) -> Path:
    root = HERE / ".work" / f"load-{n}"
    if not (root / "pipelines" / "bench" / f"step_{n - 1}.sql").exists():
        shutil.rmtree(root, ignore_errors=True)
        write_project(root, {f"step_{i}": step_sql(i) for i in range(n)},
                      sources="params:\n  min_x: 0\n")
        (root / ".andon").mkdir()  # as after a first run: the parse cache lives there
    return root


def load_once(root: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", TIMED, str(root)], check=True,
                          capture_output=True, text=True)
    out: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"project load, median of {args.repeat} fresh processes, {machine()}\n")
    print(row("project", "load s", "ms per file", "target ms", "result"))
    for n in args.steps:
        root = project(n)
        cache = root / ".andon" / CACHE
        for label in ("cold", "warm"):
            seconds = []
            for _ in range(args.repeat):
                if label == "cold":
                    cache.unlink(missing_ok=True)
                else:
                    load_once(root)  # fills the cache when the previous run was cold
                figures = load_once(root)
                assert figures["steps"] == n, figures
                seconds.append(figures["load"])
            per_file = median(seconds) / n * 1000
            verdict = "" if label == "cold" else ("PASS" if per_file <= TARGET_MS else "FAIL")
            print(row(f"{n:,} steps, {label}", f"{median(seconds):.2f}", f"{per_file:.2f}",
                      f"{TARGET_MS:.1f}" if label == "warm" else "", verdict), flush=True)


if __name__ == "__main__":
    main()
