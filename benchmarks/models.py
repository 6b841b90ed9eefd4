"""Model serving and batch scoring on the flights example's delay classifier.

  ready      seconds from starting `andon server` to its first answered prediction (the
             process starts, imports, loads the model from its skops file and predicts)
  predict    POST /api/models/delay_model/predict with one row, sequentially over one
             keep-alive loopback connection: p50, p99 (the server validates the row against
             the signature, looks up the version the environment publishes, predicts)
  batch      LoadedModel.score on 1,000,000 rows (the training set repeated): prediction,
             probability and model version per row
Targets (issue 10): p50 <= 1.5 ms, p99 <= 3 ms, ready <= 3 s; batch scoring of 1M rows
<= 10 s. (MLflow serving, not run here: 2.97 / 5.38 ms, ready ~9 s on this kind of machine.)

The project (the example with extras/models/ added) is created once in
benchmarks/.work/models-flights (git-ignored); --fresh recreates it.

    python benchmarks/models.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _common import HERE, machine, median, row

ROW = {"sched_hour_utc": 13, "weekday": 4, "month": 6, "distance": 1089.0, "temp": 71.1,
       "wind_speed": 10.4, "precip": 0.0, "visib": 10.0}


def prepare(root: Path, fresh: bool) -> None:
    from andon.examples import init_project
    from andon.project import Project
    from andon.service import Session

    if fresh and root.exists():
        shutil.rmtree(root)
    if not root.exists():
        init_project(root, "flights")
        # the delay classifier, added as docs/models.md tells
        (root / "pipelines" / "flights" / "models").mkdir()
        for name in ("delay_training.sql", "delay_model.py"):
            shutil.copyfile(root / "extras" / "models" / name,
                            root / "pipelines" / "flights" / "models" / name)
        (root / "checks").mkdir(exist_ok=True)
        shutil.copyfile(root / "extras" / "models" / "models.yaml", root / "checks" / "models.yaml")
        project = Project.load(root)
        result = Session(project, "bench").run()
        assert result.ok, result.error
        project.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ready_and_latency(root: Path, requests: int) -> tuple[float, list[float]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/models/delay_model/predict"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "andon", "server", "-p", str(root),
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(timeout=30) as client:
            while True:
                try:
                    r = client.post(url, json={"rows": [ROW]})
                    if r.status_code == 200:
                        break
                    raise SystemExit(f"predict failed: {r.status_code} {r.text}")
                except httpx.TransportError:
                    if proc.poll() is not None:
                        raise SystemExit("andon server exited") from None
                    time.sleep(0.01)
            ready = time.perf_counter() - t0
            for _ in range(50):  # warm-up
                client.post(url, json={"rows": [ROW]})
            times = []
            for _ in range(requests):
                s = time.perf_counter()
                r = client.post(url, json={"rows": [ROW]})
                times.append(time.perf_counter() - s)
                assert r.status_code == 200 and "version" in r.json()
        return ready, times
    finally:
        proc.terminate()
        proc.wait(10)


def batch(root: Path, rows: int) -> tuple[float, int]:
    import pyarrow as pa

    from andon.models import load
    from andon.project import Project
    from andon.service import Session

    project = Project.load(root)
    model = load(project, "delay_model")
    cols, data = Session(project, "bench").query("SELECT * FROM delay_training", limit=None)
    base = pa.Table.from_pylist([dict(zip(cols, r, strict=True)) for r in data])
    table = pa.concat_tables([base] * (rows // base.num_rows + 1)).slice(0, rows)
    t = time.perf_counter()
    scored = model.score(table)
    seconds = time.perf_counter() - t
    assert scored.num_rows == rows and "model_version" in scored.column_names
    project.close()
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    print(machine())
    root = HERE / ".work" / "models-flights"
    prepare(root, args.fresh)
    ready, times = ready_and_latency(root, args.requests)
    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    print(row("", "figure", "target"))
    print(row("ready (start → first prediction)", f"{ready:.2f} s", "<= 3 s"))
    print(row(f"predict p50 ({args.requests} requests)", f"{median(times) * 1000:.2f} ms",
              "<= 1.5 ms"))
    print(row("predict p99", f"{p99 * 1000:.2f} ms", "<= 3 ms"))
    seconds, n = batch(root, args.rows)
    print(row(f"batch scoring of {n:,} rows", f"{seconds:.2f} s", "<= 10 s"))


if __name__ == "__main__":
    main()
