"""Per-task overhead of andon's Dask executor against Dask's own ``client.submit`` of the
same work (target: at most 5 ms more per task).

Both sides run one Python step function on the same LocalCluster, one task after another:
read a small Parquet input by path, call the function, write its output as Parquet. Dask's
own side is ``client.submit(read-call-write, in, out).result()``; andon's side is its
executor (``andon.execution.dask.DaskRunner.run``): the task built with the function pickled
by value, submitted, its outcome checked, retries on a dead worker. A third figure runs a
whole project of Python steps with ``executor: dask`` and with the default threads (staging,
sealing and recording included), for information.

    python benchmarks/executor_dask.py [--tasks 200] [--steps 20] [--threads]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median, row

import andon
from andon.config import ExecutorConfig
from andon.execution.dask import DaskRunner
from andon.execution.pytask import PythonTask
from andon.project import Project

STEP = '''
import andon


@andon.step
def {name}(base):
    return base
'''


def dask_own(src: str, out: str) -> int:
    """Dask's side: the same read, call and write, without andon."""
    table = pq.read_table(src)
    result = table  # the step function: identity
    pq.write_table(result, out, compression="zstd")
    return result.num_rows


def project(root: Path, steps: int, executor: str) -> Path:
    (root / "pipelines" / "p").mkdir(parents=True, exist_ok=True)
    (root / "andon.yaml").write_text(f"name: bench\nprofile: none\n{executor}")
    (root / "pipelines" / "p" / "base.sql").write_text("SELECT range AS id FROM range(1000)\n")
    for i in range(steps):
        (root / "pipelines" / "p" / f"s{i}.py").write_text(STEP.format(name=f"s{i}"))
    return root


def timed(n: int, work: object) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        work(i)  # type: ignore[operator]
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", action="store_true",
                    help="workers as threads of this process (default: worker processes)")
    args = ap.parse_args()
    import distributed

    print(f"executor_dask: {machine()}")
    print(f"  dask {distributed.__version__}; {args.tasks} tasks one after another, "
          f"workers as {'threads' if args.threads else 'processes'}")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2,
                                       processes=not args.threads, dashboard_address=None)
    # Dask's side connects the way andon does (by the scheduler's address), so that both
    # clients run their own connection, not one shared with the cluster object
    client = distributed.Client(cluster.scheduler_address, set_as_default=False)
    tmp = Path(tempfile.mkdtemp(prefix="andon-bench-dask-"))
    try:
        src = tmp / "in.parquet"
        pq.write_table(pa.table({"id": list(range(1000))}), src, compression="zstd")
        root = project(tmp / "proj", 1, "")
        step = Project.load(root).dag.steps["s0"]
        runner = DaskRunner(ExecutorConfig(kind="dask", scheduler=cluster.scheduler_address), 2)
        task = PythonTask(step="s0", file=str(step.file), function="s0", line=step.line,
                          inputs={"base": [str(src)]}, annotations={"base": ""}, kwargs={},
                          out="")
        outs = tmp / "outs"
        outs.mkdir()

        def by_andon(i: int) -> None:
            t = dataclasses.replace(task, out=str(outs / f"a{i}.parquet"))
            assert runner.run(t, step).raise_for(t) == 1000

        def by_dask(i: int) -> None:
            out = str(outs / f"d{i}.parquet")
            assert client.submit(dask_own, str(src), out, pure=False).result() == 1000

        def bare(i: int) -> None:
            client.submit(int, i, pure=False).result()

        for _ in range(2):  # warm both paths (imports, the worker's DuckDB)
            by_andon(-1), by_dask(-1)
        rounds = [(timed(args.tasks // 4, by_dask), timed(args.tasks // 4, by_andon))
                  for _ in range(4)]  # interleaved: a load spike hits both sides
        d = median([x for r in rounds for x in r[0]]) * 1e3
        a = median([x for r in rounds for x in r[1]]) * 1e3
        b = median(timed(args.tasks, bare)) * 1e3
        same = pq.read_table(outs / "a0.parquet").equals(pq.read_table(outs / "d0.parquet"))
        runner.close()

        print(row("", "ms / task"))
        print(row("Dask client.submit(int) (no I/O)", f"{b:.2f}"))
        print(row("Dask client.submit(read, call, write)", f"{d:.2f}"))
        print(row("andon DaskRunner.run (same work)", f"{a:.2f}"))
        verdict = "PASS" if a - d <= 5 else "MISS"
        print(f"  andon overhead beyond Dask's own: {a - d:.2f} ms/task (target <= 5): {verdict};"
              f" outputs equal: {same}")

        # whole runs: staging, sealing, recording; executor dask vs threads, interleaved,
        # three each (the first run of a process pays for imports: a warm-up run first)
        dask_yaml = f"executor: {{kind: dask, scheduler: '{cluster.scheduler_address}'}}\n"
        runs: dict[str, list[float]] = {"threads": [], "dask": []}
        for n, (name, executor) in enumerate([("warm-up", "")] + [
                ("threads", ""), ("dask", dask_yaml)] * 3):
            p = project(tmp / f"run-{n}", args.steps, executor)
            t0 = time.perf_counter()
            result = andon.run(Project.load(p))
            seconds = time.perf_counter() - t0
            assert result.ok, result.error
            assert andon.query(Project.load(p), f"SELECT count(*) FROM s{args.steps - 1}")[1] \
                == [(1000,)]
            if name in runs:
                runs[name].append(seconds)
        secs = {k: median(v) for k, v in runs.items()}
        print(row(f"run of {args.steps} Python steps, threads", f"{secs['threads']:.2f} s"))
        print(row(f"run of {args.steps} Python steps, executor dask", f"{secs['dask']:.2f} s"))
        print(f"  per Python step on dask beyond threads: "
              f"{(secs['dask'] - secs['threads']) / args.steps * 1e3:.1f} ms (informational)")
    finally:
        client.close()
        cluster.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
