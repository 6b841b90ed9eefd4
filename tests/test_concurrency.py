"""Processes that die mid-build and runs that overlap: nothing half-written is ever visible,
an environment is changed by one run at a time, and the next run recovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import andon
from andon.warehouse import MANIFEST, STAGING
from tests.conftest import Cli, ProjectFactory

ENV = {**os.environ, "COLUMNS": "200"}

HOLDING_STEP = """
import pathlib
import time

import andon
import pyarrow as pa

ROOT = pathlib.Path(__file__).resolve().parents[2]


@andon.step
def slow(base: pa.Table) -> pa.Table:
    (ROOT / "started").touch()
    t0 = time.time()
    while (ROOT / "hold").exists() and time.time() - t0 < 120:
        time.sleep(0.05)
    return base
"""


def holding_project(make_project: ProjectFactory) -> Path:
    root = make_project({
        "andon.yaml": """\
            name: t
            sources:
              orders:
                path: incoming/*.csv
                columns: {id: {type: integer, required: true}}
        """,
        "pipelines/p/base.sql": "SELECT id FROM orders",
        "pipelines/p/slow.py": HOLDING_STEP,
    })
    (root / "incoming").mkdir()
    (root / "incoming/a.csv").write_text("id\n1\n2\n")
    return root


def start_run(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "andon", "run", "-p", str(root), "-q", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )


def wait_for(cond: object, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if callable(cond) and cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def published(cli: Cli, root: Path, env: str = "prod") -> Any:
    code, out, _ = cli("tables", "-p", root, "--env", env, "--format", "json")
    return json.loads(out) if code == 0 else None


def run_info(cli: Cli, root: Path, ref: str = "latest") -> Any:
    code, out, err = cli("runs", "show", ref, "-p", root, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def half_written(warehouse: Path) -> list[Path]:
    """Artifact folders visible outside _staging that are not sealed."""
    bad = []
    for step in warehouse.iterdir():
        if not step.is_dir() or step.name in (STAGING, "_parts"):
            continue
        bad += [d for d in step.iterdir() if not (d / MANIFEST).is_file()]
    return bad


def test_second_run_of_a_busy_environment_fails_naming_the_holder(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = holding_project(make_project)
    (root / "hold").touch()
    first = start_run(root)
    try:
        wait_for(lambda: (root / "started").exists())
        code, _, err = cli("run", "-p", root, "-q")
        assert code == 1
        assert "LeaseError" not in err  # rendered for people, not as a traceback
        assert "environment 'prod' is being changed by run 1" in err, err
        assert f"pid {first.pid}" in err and "--wait" in err
        assert run_info(cli, root, "2")["status"] == "failed"
        assert published(cli, root) is None  # the first run has not published yet
    finally:
        (root / "hold").unlink()
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert run_info(cli, root, "1")["status"] == "succeeded"
    assert {t["table"] for t in published(cli, root) or []} == {"orders", "base", "slow"}


def test_wait_queues_behind_the_holder_and_never_mixes(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = holding_project(make_project)
    (root / "hold").touch()
    first = start_run(root)
    wait_for(lambda: (root / "started").exists())
    (root / "incoming/b.csv").write_text("id\n3\n")  # only the second run may see it
    second = start_run(root, "--wait", "90")
    time.sleep(1.5)
    assert second.poll() is None  # queued, not failed
    (root / "hold").unlink()
    _, err1 = first.communicate(timeout=120)
    _, err2 = second.communicate(timeout=120)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    project = andon.Project.load(root)
    log = list(reversed(project.store.ref_log("prod")))
    assert [r["run_id"] for r in log] == [1, 2]
    assert log[0]["from_commit"] is None
    assert log[1]["from_commit"] == log[0]["to_commit"]  # built on top of the first
    env = project.store.environment("prod")
    assert env is not None and env["commit_id"] == log[1]["to_commit"]
    code, out, err = cli("query", "SELECT id FROM slow ORDER BY id", "-p", root,
                         "--format", "json")
    assert code == 0, err
    assert json.loads(out) == [{"id": 1}, {"id": 2}, {"id": 3}]


def test_wait_gives_up_after_its_seconds(make_project: ProjectFactory, cli: Cli) -> None:
    root = holding_project(make_project)
    (root / "hold").touch()
    first = start_run(root)
    try:
        wait_for(lambda: (root / "started").exists())
        t0 = time.monotonic()
        code, _, err = cli("run", "-p", root, "-q", "--wait", "1.5")
        waited = time.monotonic() - t0
        assert code == 1 and "is being changed by run 1" in err
        assert 1.4 <= waited < 30
    finally:
        (root / "hold").unlink()
        first.communicate(timeout=120)
    assert first.returncode == 0


BIG_SQL = "SELECT i, md5(CAST(i AS VARCHAR)) AS h FROM range({n}) t(i)"


def test_killed_mid_build_leaves_nothing_half_written_and_the_next_run_recovers(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = make_project({
        "andon.yaml": "name: t\nthreads: 2\n",
        "pipelines/p/big.sql": BIG_SQL.format(n=1000),
        "pipelines/p/after.sql": "SELECT count(*) AS n FROM big",
    })
    # prod is protected (changed code goes through a branch environment): use dev
    assert cli("env", "create", "dev", "--empty", "-p", root)[0] == 0
    assert cli("run", "-p", root, "-q", "--env", "dev")[0] == 0
    before = published(cli, root, "dev")
    warehouse = root / ".andon/warehouse"
    (root / "pipelines/p/big.sql").write_text(BIG_SQL.format(n=500_000_000))
    proc = start_run(root, "--env", "dev")
    staging = warehouse / STAGING

    def writing() -> bool:
        parts = list(staging.glob("*/part-0.parquet"))
        return bool(parts) and parts[0].stat().st_size > 1_000_000

    try:
        wait_for(writing)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # the half-written file is in _staging only; nothing unsealed is visible
    assert list(staging.glob(f"*.{proc.pid}.big.*/part-0.parquet"))
    assert half_written(warehouse) == []
    assert published(cli, root, "dev") == before
    killed = run_info(cli, root)
    assert killed["status"] == "abandoned"  # its process is gone: reading runs closes it
    # the next run cleans its staging
    (root / "pipelines/p/big.sql").write_text(BIG_SQL.format(n=2000))
    code, out, err = cli("run", "-p", root, "-q", "--env", "dev")
    assert code == 0, out + err
    assert run_info(cli, root, str(killed["id"]))["status"] == "abandoned"
    assert "stopped before the run finished" in run_info(cli, root, str(killed["id"]))["error"]
    assert list(staging.iterdir()) == []
    assert half_written(warehouse) == []
    code, out, _ = cli("query", "SELECT n FROM after", "-p", root, "--env", "dev", "--format",
                       "json")
    assert json.loads(out) == [{"n": 2000}]


def test_killed_holder_of_a_lease_does_not_block_the_next_run(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = holding_project(make_project)
    (root / "hold").touch()
    proc = start_run(root)
    wait_for(lambda: (root / "started").exists())
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    (root / "hold").unlink()
    code, out, err = cli("run", "-p", root, "-q")
    assert code == 0, out + err
    assert run_info(cli, root, "1")["status"] == "abandoned"
    assert run_info(cli, root, "2")["status"] == "succeeded"
    assert half_written(root / ".andon/warehouse") == []


OPEN_STORE = """
import sys, time
from andon.store import open_store
start = float(sys.argv[2])
while time.time() < start:
    pass
store = open_store(sys.argv[1])
print(len(store.runs()))
"""


def test_processes_opening_a_fresh_store_at_once_all_succeed(store_url: str) -> None:
    """Two runs started together on a new project both create (migrate) the store."""
    start = time.time() + 2.0
    procs = [
        subprocess.Popen([sys.executable, "-c", OPEN_STORE, store_url, str(start)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "0"
    from andon.store import open_store
    from andon.store.migrations import LATEST

    store = open_store(store_url)
    with store.engine.connect() as conn:
        from andon.store.migrations import current_version

        assert current_version(conn) == LATEST
    store.close()
