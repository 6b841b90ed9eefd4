"""Model serving and batch scoring on the flights example's delay classifier, side by side
with MLflow serving the same kind of model.

  ready      seconds from starting `andon server` to its first answered prediction (the
             process starts, imports, loads the published models and predicts)
  predict    POST /api/models/delay_plain/predict with one row carrying every input,
             sequentially over one keep-alive loopback connection: p50, p99 (the server
             validates the row against the signature, finds the version the environment
             publishes, predicts)
  features   POST /api/models/delay_model/predict with the entity keys and the request-time
             fields: the server looks up the online features of departure_delay, merges them,
             predicts (features + predict in one call)
  logged     the served answers of delay_plain the server's prediction log holds afterwards
             (written off the request path; checked: every request of the run is there)
  batch      LoadedModel.score on 1,000,000 rows (the training set repeated): prediction,
             probability and model version per row
  mlflow     the same estimator settings fitted on the same rows in MLflow's own virtualenv
             (--mlflow PYTHON, default /tmp/mlflow-venv/bin/python), served by
             `mlflow models serve --env-manager local`; same requests, same measures
Targets (issue 10): p50 <= 1.5 ms, p99 <= 3 ms, ready <= 3 s; features + predict p99 <= 5 ms;
batch scoring of 1M rows <= 10 s. (MLflow reference: 2.97 / 5.38 ms, ready ~9 s.)

The project (the example with extras/models/ added, and delay_plain: the same classifier
without online features) is created once in benchmarks/.work/models-flights (git-ignored);
--fresh recreates it.

    python benchmarks/models.py [--requests 2000] [--mlflow /path/to/venv/bin/python]
    python benchmarks/models.py --ready 5     # only the ready time, 5 starts: min, median
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _common import HERE, machine, median, row

REQUEST = {"sched_hour_utc": 13, "weekday": 4, "month": 6, "distance": 1089.0}
ENTITY = {"origin": "JFK", "carrier": "AA", "tailnum": "N3DUAA"}
ROW = {**REQUEST, "temp": 71.1, "wind_speed": 10.4, "visib": 10.0, "precip": 0.0,
       "on_time_rate_30d": 0.8, "seats": 178, "plane_age_years": 12}


def prepare(root: Path, fresh: bool) -> None:
    from andon.examples import init_project
    from andon.project import Project
    from andon.service import Session

    if fresh and root.exists():
        shutil.rmtree(root)
        (root.parent / "models-token").unlink(missing_ok=True)
    if not root.exists():
        init_project(root, "flights")
        # the delay classifier, added as docs/models.md tells
        (root / "pipelines" / "flights" / "models").mkdir()
        for path in (root / "extras" / "models").iterdir():
            if path.name != "models.yaml":
                shutil.copyfile(path, root / "pipelines" / "flights" / "models" / path.name)
        # the same classifier without online features: the request carries every input
        plain = (root / "extras" / "models" / "delay_model.py").read_text()
        plain = plain.replace('online="departure_delay", ', "").replace(
            "def delay_model(", "def delay_plain(")
        (root / "pipelines" / "flights" / "models" / "delay_plain.py").write_text(plain)
        (root / "checks").mkdir(exist_ok=True)
        shutil.copyfile(root / "extras" / "models" / "models.yaml", root / "checks" / "models.yaml")
        project = Project.load(root)
        result = Session(project, "bench").run()
        assert result.ok, result.error
        import andon.features

        andon.features.materialize(project=project)
        project.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(client: httpx.Client, url: str, body: dict[str, Any], requests: int,
            check: Callable[[dict[str, Any]], bool]) -> list[float]:
    for _ in range(50):  # warm-up
        client.post(url, json=body)
    times = []
    for _ in range(requests):
        s = time.perf_counter()
        r = client.post(url, json=body)
        times.append(time.perf_counter() - s)
        assert r.status_code == 200 and check(r.json()), r.text
    return times


def wait_ready(proc: subprocess.Popen[bytes], client: httpx.Client, url: str,
               body: dict[str, Any]) -> None:
    while True:
        try:
            r = client.post(url, json=body)
            if r.status_code == 200:
                return
            if r.status_code != 404 and r.status_code < 500:
                raise SystemExit(f"predict failed: {r.status_code} {r.text}")
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit("the server exited")
        time.sleep(0.01)


def token(root: Path) -> str:
    """An API token (as a deployed server is called): who it is stays cached for a second."""
    kept = root.parent / "models-token"
    if not kept.exists():
        out = subprocess.run([sys.executable, "-m", "andon", "tokens", "create",
                              f"bench-{int(time.time())}", "--role", "viewer", "-p", str(root)],
                             check=True, capture_output=True, text=True).stdout
        kept.write_text(out.strip().splitlines()[-1].strip())
    return kept.read_text().strip()


def andon_serving(root: Path, requests: int) -> tuple[float, list[float], list[float]]:
    headers = {"Authorization": f"Bearer {token(root)}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/models"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "andon", "server", "-p", str(root),
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(timeout=30, headers=headers) as client:
            wait_ready(proc, client, f"{base}/delay_plain/predict", {"rows": [ROW]})
            ready = time.perf_counter() - t0
            plain = measure(client, f"{base}/delay_plain/predict", {"rows": [ROW]}, requests,
                            lambda b: b["version"] == 1 and b["predictions"][0] in (0, 1))
            features = measure(client, f"{base}/delay_model/predict",
                               {"rows": [{**ENTITY, **REQUEST}]}, requests,
                               lambda b: b["version"] == 1 and b["predictions"][0] in (0, 1))
        return ready, plain, features
    finally:
        proc.terminate()
        proc.wait(10)


MLFLOW_TRAIN = """
import sys, pandas as pd, mlflow.sklearn
from sklearn.ensemble import HistGradientBoostingClassifier
rows = pd.read_parquet(sys.argv[1])
x = rows.drop(columns=["delayed"])
model = HistGradientBoostingClassifier(max_iter=20, learning_rate=0.3, max_leaf_nodes=15,
                                       early_stopping=False, random_state=0)
model.fit(x, rows["delayed"])
mlflow.sklearn.save_model(model, sys.argv[2], input_example=x.head(2), skops_trusted_types=[
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"])
"""


def mlflow_serving(root: Path, python: Path, requests: int
                   ) -> tuple[float, list[float]] | str:
    """MLflow serving the same classifier (same settings, same 40,000 training rows)."""
    if not python.exists():
        return f"no MLflow virtualenv at {python}: python -m venv DIR; DIR/bin/pip install mlflow"
    from andon.project import Project
    from andon.service import Session

    work = root.parent / "mlflow-model"
    if not (work / "model" / "MLmodel").exists():
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        project = Project.load(root)
        cols = ", ".join(["delayed", *ROW])
        names, data = Session(project, "bench").query(
            f"SELECT {cols} FROM delay_history", limit=None)
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in data])
        pq.write_table(table.slice(0, 40_000), work / "train.parquet")
        project.close()
        subprocess.run([str(python), "-c", MLFLOW_TRAIN, str(work / "train.parquet"),
                        str(work / "model")], check=True, capture_output=True)
    port = free_port()
    mlflow = python.parent / "mlflow"
    url = f"http://127.0.0.1:{port}/invocations"
    body = {"dataframe_records": [ROW]}
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(mlflow), "models", "serve", "-m", str(work / "model"),
                             "--env-manager", "local", "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PATH": f"{python.parent}:{os.environ['PATH']}"})
    try:
        with httpx.Client(timeout=30) as client:
            wait_ready(proc, client, url, body)
            ready = time.perf_counter() - t0
            times = measure(client, url, body, requests,
                            lambda b: b["predictions"][0] in (0, 1))
        return ready, times
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def batch(root: Path, rows: int) -> tuple[float, int]:
    import pyarrow as pa

    from andon.models import load
    from andon.project import Project
    from andon.service import Session

    project = Project.load(root)
    model = load(project, "delay_model")
    cols, data = Session(project, "bench").query("SELECT * FROM delay_history", limit=None)
    base = pa.Table.from_pylist([dict(zip(cols, r, strict=True)) for r in data])
    table = pa.concat_tables([base] * (rows // base.num_rows + 1)).slice(0, rows)
    t = time.perf_counter()
    scored = model.score(table)
    seconds = time.perf_counter() - t
    assert scored.num_rows == rows and "model_version" in scored.column_names
    project.close()
    return seconds, rows


def logged(root: Path, since: float) -> tuple[int, int]:
    """Rows of delay_plain in the prediction log served since ``since`` (epoch seconds), and
    how many of them have a probability."""
    import pyarrow.compute as pc

    from andon.models import predlog
    from andon.project import Project

    project = Project.load(root)
    table = predlog.read(project, "delay_plain")
    recent = table.filter(pc.greater_equal(
        pc.cast(table.column("served_at"), "int64"), int(since * 1_000_000)))
    project.close()
    return recent.num_rows, recent.num_rows - recent.column("probability").null_count


def ready_only(root: Path, starts: int) -> None:
    """Start the server ``starts`` times and measure only its first answered prediction."""
    headers = {"Authorization": f"Bearer {token(root)}"}
    times = []
    for _ in range(starts):
        port = free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "andon", "server", "-p", str(root),
                                 "--port", str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            with httpx.Client(timeout=30, headers=headers) as client:
                wait_ready(proc, client, f"http://127.0.0.1:{port}/api/models/delay_plain/"
                           "predict", {"rows": [ROW]})
                times.append(time.perf_counter() - t0)
        finally:
            proc.terminate()
            proc.wait(10)
    print(row("", "min", "median", "target"))
    print(row(f"ready (start → first prediction), {starts} starts", f"{min(times):.2f} s",
              f"{median(times):.2f} s", "<= 3 s"))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def p99(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[int(len(ordered) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--mlflow", type=Path, default=Path("/tmp/mlflow-venv/bin/python"))
    parser.add_argument("--ready", type=int, default=0, help="only the ready time, N starts")
    args = parser.parse_args()
    print(machine())
    root = HERE / ".work" / "models-flights"
    prepare(root, args.fresh)
    if args.ready:
        ready_only(root, args.ready)
        return
    since = time.time()
    ready, plain, features = andon_serving(root, args.requests)
    rows, with_probability = logged(root, since)
    assert rows >= args.requests + 51 and with_probability == rows, (rows, with_probability)
    theirs = mlflow_serving(root, args.mlflow, args.requests)
    if isinstance(theirs, str):
        print(f"MLflow not run: {theirs}; its reference figures: 2.97 / 5.38 ms, ready ~9 s")
        m_ready, m_p50, m_p99 = "(ref ~9 s)", "(ref 2.97 ms)", "(ref 5.38 ms)"
    else:
        m_ready = f"{theirs[0]:.2f} s"
        m_p50 = f"{median(theirs[1]) * 1000:.2f} ms"
        m_p99 = f"{p99(theirs[1]) * 1000:.2f} ms"
    print(row("", "andon", "MLflow", "target"))
    print(row("ready (start → first prediction)", f"{ready:.2f} s", m_ready, "<= 3 s"))
    print(row(f"predict p50 ({args.requests} requests)", f"{median(plain) * 1000:.2f} ms",
              m_p50, "<= 1.5 ms"))
    print(row("predict p99", f"{p99(plain) * 1000:.2f} ms", m_p99, "<= 3 ms"))
    print(row("features + predict p50", f"{median(features) * 1000:.2f} ms", "-", ""))
    print(row("features + predict p99", f"{p99(features) * 1000:.2f} ms", "-", "<= 5 ms"))
    print(row("answers in the prediction log", f"{rows:,}", "-", "every one"))
    seconds, n = batch(root, args.rows)
    print(row(f"batch scoring of {n:,} rows", f"{seconds:.2f} s", "-", "<= 10 s"))


if __name__ == "__main__":
    main()
