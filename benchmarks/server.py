"""The server's performance targets that are not the JSON API's (api.py has those):

  overview       the overview page of an environment with 1,000 tables, loaded in headless
                 Chromium (Debian's chromium, driven by Playwright): time to the load event
                 and to first contentful paint; target <= 1 s
  scheduler      the overhead of one scheduler evaluation (a schedule and a sensor on the
                 flights example, nothing due): median ms; target < 5 ms
  file arrival   a monthly file moved into the flights source's folder with the scheduler
                 running (`run_forever`, as in `andon server`): seconds until its run
                 starts; target <= 2 s
  run page       a finished run of the same 200-step chain: andon's run page vs the Dagster
                 webserver's (Dagster in its own venv, benchmarks/.venvs/dagster, installed
                 from PyPI on first use): first contentful paint, time to network idle and
                 bytes transferred (every response of the page, as the browser counts them)

Projects are made once under benchmarks/.work/ (git-ignored); --fresh recreates them.

    python benchmarks/server.py [--repeat 5] [--only overview|scheduler|run-page]
                                [--skip-dagster] [--fresh]
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from _common import HERE, machine, median, row, venv_python, write_project

WORK = HERE / ".work"
TABLES = 1_000
STEPS = 200
DAGSTER = ["dagster>=1.9,<2", "dagster-webserver>=1.9,<2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server at {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server at {url} did not start")


@contextmanager
def andon_server(root: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "andon", "server", "-p", str(root),
                             "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/openapi.json", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


# the projects -------------------------------------------------------------------------------


def built(root: Path, steps: dict[str, str], fresh: bool) -> Path:
    """A project of ``steps`` with one successful run in prod (made once)."""
    from andon.project import Project
    from andon.service import Session

    if fresh and root.exists():
        shutil.rmtree(root)
    if not (root / ".andon").exists():
        write_project(root, steps)
        project = Project.load(root)
        print(f"  building {len(steps)} steps in {root.name} (first time only) ...", flush=True)
        assert Session(project, "bench").run().ok
        project.close()
    return root


def wide(n: int) -> dict[str, str]:
    return {f"table_{i:04d}": f"SELECT {i} AS id, 'x' AS label" for i in range(n)}


def chain(n: int) -> dict[str, str]:
    steps = {"step_0": "SELECT 1 AS x"}
    for i in range(1, n):
        steps[f"step_{i}"] = f"SELECT x + 1 AS x FROM step_{i - 1}"
    return steps


# the browser --------------------------------------------------------------------------------

PAINT = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const all = [nav, ...performance.getEntriesByType('resource')];
  return {load: nav.loadEventEnd, fcp: fcp ? fcp.startTime : null,
          bytes: all.reduce((n, e) => n + (e.transferSize || 0), 0),
          requests: all.length};
}"""


def measure_page(url: str, repeat: int, idle: bool = False) -> dict[str, float]:
    """Load ``url`` ``repeat`` times in a fresh browser context each (no cache): median of
    the load event, first contentful paint, time to network idle, and bytes transferred."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed: apt-get install chromium")
    loads, paints, idles, sizes = [], [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        for i in range(repeat + 1):  # the first load warms the server
            context = browser.new_context()
            page = context.new_page()
            t0 = time.perf_counter()
            response = page.goto(url, wait_until="networkidle" if idle else "load",
                                 timeout=120_000)
            settled = time.perf_counter() - t0
            assert response is not None and response.status == 200, (url, response)
            figures: dict[str, Any] = page.evaluate(PAINT)
            context.close()
            if i == 0:
                continue
            loads.append(figures["load"] / 1000)
            paints.append((figures["fcp"] or float("nan")) / 1000)
            idles.append(settled)
            sizes.append(figures["bytes"])
        browser.close()
    return {"load": median(loads), "fcp": median(paints), "idle": median(idles),
            "bytes": median(sizes)}


# the scheduler ------------------------------------------------------------------------------

SCHEDULED = """
schedules:
  nightly:
    cron: "30 2 * * *"
    timezone: Europe/Paris
sensors:
  new_flights:
    source: raw_flights
    settle_seconds: 0.5
"""


def flights_with_a_sensor(fresh: bool) -> Path:
    from andon.examples import init_project
    from andon.project import Project
    from andon.service import Session

    root = WORK / "server-flights"
    if fresh and root.exists():
        shutil.rmtree(root)
    if not root.exists():
        init_project(root, "flights")
        with (root / "andon.yaml").open("a") as f:
            f.write(SCHEDULED)
        project = Project.load(root)
        assert Session(project, "bench").run().ok
        project.close()
    return root


def scheduler_tick(root: Path, repeat: int) -> float:
    """Median seconds of one evaluation with nothing due (the steady state)."""
    from andon.project import Project
    from andon.schedule.scheduler import Scheduler

    project = Project.load(root)
    scheduler = Scheduler(project, background=False)
    try:
        scheduler.tick()  # first evaluation: cursors and states saved
        times = []
        for _ in range(max(repeat, 50)):
            t0 = time.perf_counter()
            report = scheduler.tick()
            times.append(time.perf_counter() - t0)
            assert not report.queued and not report.errors, report
        return median(times)
    finally:
        scheduler.close()
        project.close()


def file_arrival(root: Path) -> float:
    """Seconds from a file landing in the source's folder to its run's start."""
    from sqlalchemy import func, select

    from andon.project import Project
    from andon.schedule.scheduler import Scheduler
    from andon.store import schema as t

    arrivals = sorted((root / "arrivals").glob("*.csv"))
    if not arrivals:
        raise SystemExit(f"no monthly files left in {root / 'arrivals'}: run with --fresh")
    project = Project.load(root)
    scheduler = Scheduler(project)
    loop = threading.Thread(target=scheduler.run_forever, daemon=True)
    loop.start()
    try:
        time.sleep(2.5)  # the sensor's first evaluation sees the folder as it is
        with project.store.engine.connect() as conn:
            before = conn.execute(select(func.max(t.runs.c.id))).scalar() or 0
        target = root / "incoming" / "flights" / arrivals[0].name
        t0 = time.time()
        arrivals[0].rename(target)
        while time.time() - t0 < 60:
            with project.store.engine.connect() as conn:
                started = conn.execute(select(t.runs.c.started_at)
                                       .where(t.runs.c.id > before)).scalar()
            if started is not None:
                break
            time.sleep(0.01)
        else:
            raise SystemExit("the file's run did not start within 60 s")
        scheduler.wait(300)
        return float(started) - t0
    finally:
        scheduler.close()
        loop.join(30)
        project.close()


# Dagster ------------------------------------------------------------------------------------

DAGSTER_DEFS = """
from dagster import Definitions, job, op

N = {n}

def make(i):
    if i == 0:
        @op(name="step_0")
        def first():
            return 1
        return first
    @op(name=f"step_{{i}}")
    def nxt(x):
        return x + 1
    return nxt

ops = [make(i) for i in range(N)]

@job(name="chain")
def chain():
    x = ops[0]()
    for o in ops[1:]:
        x = o(x)

defs = Definitions(jobs=[chain])
"""

DAGSTER_RUN = """
import sys
from dagster import DagsterInstance, execute_job, reconstructable
sys.path.insert(0, sys.argv[1])
import defs
with DagsterInstance.get() as instance:
    # in one process, as andon runs its steps (one process per op takes ~7 s per op here)
    result = execute_job(reconstructable(defs.chain), instance=instance,
                         run_config={"execution": {"config": {"in_process": {}}}})
    assert result.success
    print(result.run_id)
"""


def dagster_run_page(repeat: int, fresh: bool) -> dict[str, float]:
    python = venv_python("dagster", DAGSTER, "dagster_webserver")
    home = WORK / "dagster-200"
    if fresh and home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / "defs.py").write_text(DAGSTER_DEFS.format(n=STEPS))
    env = dict(os.environ, DAGSTER_HOME=str(home))
    run_file = home / "run_id"
    if not run_file.exists():
        print(f"  running the {STEPS}-op Dagster job once (first time only) ...", flush=True)
        done = subprocess.run([str(python), "-c", DAGSTER_RUN, str(home)], env=env,
                              capture_output=True, text=True, cwd=home)
        if done.returncode != 0:
            raise SystemExit(f"the Dagster job failed:\n{done.stderr[-2000:]}")
        run_file.write_text(done.stdout.strip().splitlines()[-1])
    run_id = run_file.read_text().strip()
    port = free_port()
    webserver = Path(python).parent / "dagster-webserver"
    proc = subprocess.Popen([str(webserver), "-f", "defs.py", "-h", "127.0.0.1", "-p",
                             str(port)], env=env, cwd=home,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/server_info", proc)
        return measure_page(f"http://127.0.0.1:{port}/runs/{run_id}", repeat, idle=True)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-dagster", action="store_true")
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--only", choices=("overview", "scheduler", "run-page"))
    args = parser.parse_args()
    print(machine())
    if args.only in (None, "overview"):
        root = built(WORK / "server-1000-tables", wide(TABLES), args.fresh)
        with andon_server(root) as base:
            page = measure_page(base + "/", args.repeat)
        print(row("overview, 1,000 tables", "load s", "FCP s", "target"))
        print(row("", f"{page['load']:.2f}", f"{page['fcp']:.2f}", "<= 1 s"))
    if args.only in (None, "scheduler"):
        flights = flights_with_a_sensor(args.fresh)
        tick = scheduler_tick(flights, args.repeat)
        print(row("scheduler evaluation, nothing due", f"{tick * 1000:.2f} ms", "",
                  "< 5 ms"))
        arrival = file_arrival(flights)
        print(row("file arrival -> run started", f"{arrival:.2f} s", "", "<= 2 s"))
    if args.only in (None, "run-page"):
        run_pages(args.repeat, args.fresh, dagster=not args.skip_dagster)


def run_pages(repeat: int, fresh: bool, *, dagster: bool) -> None:
    print(row(f"run page, {STEPS}-step chain", "FCP s", "idle s", "KB"))
    root = built(WORK / "server-200-chain", chain(STEPS), fresh)
    with andon_server(root) as base:
        ours = measure_page(base + "/runs/1", repeat, idle=True)
    print(row("andon", f"{ours['fcp']:.2f}", f"{ours['idle']:.2f}",
              f"{ours['bytes'] / 1024:.0f}"))
    if dagster:
        theirs = dagster_run_page(repeat, fresh)
        print(row("Dagster webserver", f"{theirs['fcp']:.2f}", f"{theirs['idle']:.2f}",
                  f"{theirs['bytes'] / 1024:.0f}"))


if __name__ == "__main__":
    main()
