"""Orchestration overhead: what andon costs per step when the steps themselves do nothing.

Generates fixture projects of trivial SQL steps in a temp dir, in two shapes:
  chain   step_0 = SELECT 1, step_i selects from step_{i-1}      (no parallelism possible)
  fanout  one root and N-1 children selecting from it            (all children ready at once)
and times a cold ``andon.run`` of each (fresh project, so every step is built and sealed and
every store write happens). Reported per shape: project load time, run wall time, wall/N
(the per-step overhead, including store writes), and the median and total of the per-step
seconds in ``result.steps``, and the process's CPU time per step (user + sys: steadier than
wall time when other work shares the cores). Target: per-step overhead (wall/N) <= 3 ms.

Side by side: the same no-op chain (200 steps by default) on andon, Dagster (in-process
executor, ``execute_in_process``) and Prefect 3 (one flow calling 200 tasks, ephemeral local
API, no server to start by hand). Each third-party tool lives in its own venv under
benchmarks/.venvs/, created by this script on first use (pip, from PyPI). For them, wall/N
is the flow/job execution only (imports, definitions and server start-up excluded).

    python benchmarks/orchestration.py                 # everything
    python benchmarks/orchestration.py --no-third-party
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import machine, median, row, venv_python, write_project

import andon

TARGET_MS = 3.0
REFERENCE_MS = {"dagster": 20.0, "prefect": 16.0}  # measured before on a 2-core shared VM
# pip requirements and a module whose import proves the venv works. Prefect 3.8's bundled API
# server uses Body(min_items=...), which FastAPI >= 0.150 no longer accepts.
THIRD_PARTY: dict[str, tuple[list[str], str]] = {
    "dagster": (["dagster"], "dagster"),
    "prefect": (["prefect>=3,<4", "fastapi<0.150"], "prefect.server.api.server"),
}


def chain(n: int) -> dict[str, str]:
    steps = {"step_0": "SELECT 1 AS x"}
    for i in range(1, n):
        steps[f"step_{i}"] = f"SELECT x + 1 AS x FROM step_{i - 1}"
    return steps


def fanout(n: int) -> dict[str, str]:
    steps = {"root": "SELECT 1 AS x"}
    for i in range(1, n):
        steps[f"child_{i}"] = f"SELECT x + {i} AS x FROM root"
    return steps


@dataclass
class AndonFigures:
    steps: int
    load_s: float
    wall_s: float
    step_median_s: float
    step_total_s: float
    cpu_s: float  # user + sys CPU of this process during the run: less hurt by busy neighbours

    @property
    def per_step_ms(self) -> float:
        return 1000 * self.wall_s / self.steps


def bench_andon(root: Path, steps: dict[str, str], profile: str = "all") -> AndonFigures:
    write_project(root, steps, f"profile: {profile}\n")
    t0 = time.perf_counter()
    project = andon.Project.load(root)
    load_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), cpu()
    result = andon.run(project)
    wall_s, cpu_s = time.perf_counter() - t0, cpu() - c0
    project.close()
    built = result.counts().get("built", 0)
    if not result.ok or built != len(steps):
        raise SystemExit(f"andon run failed: {result.status} {result.counts()} {result.error}")
    secs = [s.seconds for s in result.steps]
    return AndonFigures(len(steps), load_s, wall_s, median(secs), sum(secs), cpu_s)


def cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


DAGSTER_SCRIPT = """
import json, sys, time
from dagster import job, op

N = int(sys.argv[1])

def make(i):
    if i == 0:
        @op(name="step_0")
        def first():
            return 1
        return first
    @op(name=f"step_{i}")
    def nxt(x):
        return x + 1
    return nxt

def build(n):
    ops = [make(i) for i in range(n)]
    @job(name=f"chain_{n}")
    def chain():
        x = ops[0]()
        for o in ops[1:]:
            x = o(x)
    return chain

build(2).execute_in_process()  # warm-up: instance, imports
j = build(N)
t0 = time.perf_counter()
res = j.execute_in_process()
wall = time.perf_counter() - t0
assert res.success
print(json.dumps({"wall_s": wall, "steps": N}))
"""

PREFECT_SCRIPT = """
import json, sys, time
from prefect import flow, task

N = int(sys.argv[1])

@task
def step(x):
    return x + 1

@flow
def chain(n):
    x = 0
    for _ in range(n):
        x = step(x)
    return x

chain(2)  # warm-up: starts the ephemeral API, imports
t0 = time.perf_counter()
out = chain(N)
wall = time.perf_counter() - t0
assert out == N
print(json.dumps({"wall_s": wall, "steps": N}))
"""


def bench_third_party(name: str, script: str, n: int, tmp: Path) -> float:
    requirements, probe = THIRD_PARTY[name]
    python = venv_python(name, requirements, probe)
    path = tmp / f"{name}_chain.py"
    path.write_text(script)
    env = dict(os.environ)
    home = tmp / f"{name}_home"
    home.mkdir()
    env.update({
        "DAGSTER_HOME": str(home),
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        # the ephemeral API's SQLite can report "database is locked" on a busy machine
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_API_DATABASE_TIMEOUT": "60",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    })
    env.pop("PREFECT_API_URL", None)
    for _attempt in range(2):  # one retry: start-up races of the ephemeral API
        proc = subprocess.run([str(python), str(path), str(n)], capture_output=True, text=True,
                              env=env, cwd=tmp, timeout=1800)
        if proc.returncode == 0:
            break
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return 1000 * float(out["wall_s"]) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000, help="steps per andon DAG (1000)")
    ap.add_argument("--compare-steps", type=int, default=200, help="chain length side by side")
    ap.add_argument("--no-third-party", action="store_true", help="skip Dagster and Prefect")
    ap.add_argument("--profile", choices=("all", "checked", "none"), default="none",
                    help="andon's profile setting: 'none' measures orchestration alone "
                         "(default); 'all' adds profiling every artifact, as a project does "
                         "by default")
    args = ap.parse_args()
    print(f"orchestration overhead (profile: {args.profile}), {machine()}\n")
    with tempfile.TemporaryDirectory(prefix="andon-bench-") as d:
        tmp = Path(d)
        print(row("andon", "load s", "run wall s", "wall/N ms", "median step ms",
                  "sum steps s", "CPU/N ms"))
        worst = 0.0
        for shape, make in (("chain", chain), ("fanout", fanout)):
            f = bench_andon(tmp / shape, make(args.steps), args.profile)
            worst = max(worst, f.per_step_ms)
            print(row(f"{shape} of {f.steps}", f"{f.load_s:.3f}", f"{f.wall_s:.2f}",
                      f"{f.per_step_ms:.2f}", f"{1000 * f.step_median_s:.2f}",
                      f"{f.step_total_s:.2f}", f"{1000 * f.cpu_s / f.steps:.2f}"))
        verdict = "PASS" if worst <= TARGET_MS else "FAIL"
        print(f"\n  target: per-step overhead <= {TARGET_MS} ms -> worst {worst:.2f} ms: "
              f"{verdict}\n")

        n = args.compare_steps
        print(row(f"no-op chain of {n}, ms per step", "measured", "reference"))
        small = bench_andon(tmp / "compare", chain(n), args.profile)
        print(row("andon (run wall / N)", f"{small.per_step_ms:.2f}", f"<= {TARGET_MS}"))
        if args.no_third_party:
            print(row("dagster / prefect", "skipped", ""))
            return
        for name, script in (("dagster", DAGSTER_SCRIPT), ("prefect", PREFECT_SCRIPT)):
            ms = bench_third_party(name, script, n, tmp)
            print(row(f"{name} (execution wall / N)", f"{ms:.2f}", f"~{REFERENCE_MS[name]:.0f}"),
                  flush=True)


if __name__ == "__main__":
    main()
