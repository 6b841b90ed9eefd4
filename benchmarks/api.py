"""HTTP API latency and throughput: `andon server` on the flights example, over loopback.

  runs list      GET /api/runs (50 per page) with 10,000 runs in the store: p50, p99
  runs page 100  GET /api/runs?before=… deep in the list (keyset pagination): p50, p99
  table page     GET /api/tables/daily_carrier_kpis (schema, 10 rows, profile, lineage,
                 checks): p50, p99
  tables list    GET /api/tables (with each table's health): p50, p99
  throughput     the table page at concurrency 8: requests/s, with 8 httpx threads (one
                 connection each) and, when installed, with wrk (a C client, lighter); as
                 the local user (loopback, no users) and with an API token
Targets (issue 8): p99 <= 50 ms for the runs list and a table page; >= 500 requests/s for a
table's JSON at concurrency 8.

The server runs in its own process (`andon server`), as a user starts it. The 10,000 runs
are copies of the example's real run (same steps and summary), inserted into the store
before the server starts. The project is created once in benchmarks/.work/api-flights
(git-ignored); --fresh recreates it.

    python benchmarks/api.py [--requests 500] [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from _common import HERE, machine, median, row

RUNS = 10_000
TARGET_P99 = 0.050
TARGET_RPS = 500.0


def prepare(root: Path, fresh: bool) -> None:
    """The flights example, built once, with RUNS runs in its store."""
    from sqlalchemy import func, insert, select

    from andon.examples import init_project
    from andon.project import Project
    from andon.service import Session
    from andon.store import schema as t

    if fresh and root.exists():
        shutil.rmtree(root)
    if not root.exists():
        init_project(root, "flights")
        project = Project.load(root)
        assert Session(project, "bench").run().ok
        project.close()
    project = Project.load(root)
    store = project.store
    with store.engine.begin() as conn:
        have = conn.execute(select(func.count()).select_from(t.runs)).scalar_one()
        real = dict(conn.execute(select(t.runs).order_by(t.runs.c.id).limit(1)).one()._mapping)
        real.pop("id")
        missing = RUNS - have
        for start in range(0, max(missing, 0), 1000):
            batch = min(1000, missing - start)
            conn.execute(insert(t.runs), [dict(real, started_at=real["started_at"] + i)
                                          for i in range(batch)])
    project.close()


def bench_token(root: Path) -> tuple[str, str]:
    """An operator token for this run of the benchmark (revoked at its end)."""
    from andon.project import Project

    project = Project.load(root)
    name = f"bench-{os.getpid()}"
    token = project.store.tokens.create(name, user="bench", role="operator", expires_at=None,
                                        by="bench")
    project.close()
    return name, token


def revoke(root: Path, name: str) -> None:
    from andon.project import Project

    project = Project.load(root)
    project.store.tokens.revoke(name)
    project.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(root: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "andon", "server", "-p", str(root),
                             "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def latencies(client: httpx.Client, url: str, n: int) -> list[float]:
    assert client.get(url).status_code == 200  # warm: profile computed, caches filled
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(url)
        out.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.text
    return sorted(out)


def p99(xs: list[float]) -> float:
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def throughput(base: str, url: str, seconds: float, concurrency: int = 8,
               headers: dict[str, str] | None = None) -> float:
    done = [0] * concurrency
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        with httpx.Client(base_url=base, headers=headers) as client:
            while time.monotonic() < stop:
                assert client.get(url).status_code == 200
                done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sum(done) / (time.perf_counter() - t0)


def wrk(base: str, url: str, seconds: float, concurrency: int = 8,
        headers: dict[str, str] | None = None) -> float | None:
    """Requests/s measured by wrk (a C client: it leaves the cores to the server), if it is
    installed (Debian: apt-get install wrk)."""
    if shutil.which("wrk") is None:
        return None
    sent = [a for k, v in (headers or {}).items() for a in ("-H", f"{k}: {v}")]
    done = subprocess.run(["wrk", "-t2", f"-c{concurrency}", f"-d{seconds:.0f}s", *sent,
                           base + url], capture_output=True, text=True, check=True).stdout
    assert "Non-2xx" not in done, done
    return float(next(line.split()[1] for line in done.splitlines()
                      if line.startswith("Requests/sec")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args()
    root = HERE / ".work" / "api-flights"
    print(machine())
    prepare(root, args.fresh)
    token_name, token = bench_token(root)
    port = free_port()
    proc = serve(root, port)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base) as client:
            deep = client.get("/api/runs", params={"limit": 1, "before": RUNS // 2}).json()
            cases = {
                "runs list (10,000 runs)": "/api/runs",
                "runs page deep in the list": f"/api/runs?before={deep['runs'][0]['id']}",
                "table page (daily_carrier_kpis)": "/api/tables/daily_carrier_kpis",
                "tables list with health": "/api/tables",
            }
            print(row("GET", "p50 ms", "p99 ms", "target p99"))
            for label, url in cases.items():
                xs = latencies(client, url, args.requests)
                target = "<= 50 ms" if "runs list" in label or "table page" in label else ""
                print(row(label, f"{median(xs) * 1000:.1f}", f"{p99(xs) * 1000:.1f}", target))
        page = "/api/tables/daily_carrier_kpis"
        for who, headers in (("local user", None), ("token", {"Authorization": f"Bearer {token}"})):
            rps = throughput(base, page, args.seconds, headers=headers)
            print(row(f"table page, c8, {who} (httpx threads)", f"{rps:.0f} req/s", "",
                      ">= 500 req/s"))
            measured = wrk(base, page, args.seconds, headers=headers)
            if measured is not None:
                print(row(f"table page, c8, {who} (wrk)", f"{measured:.0f} req/s", "",
                          ">= 500 req/s"))
    finally:
        proc.terminate()
        proc.wait(30)
        revoke(root, token_name)


if __name__ == "__main__":
    main()
