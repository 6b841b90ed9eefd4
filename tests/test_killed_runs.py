"""A run whose process died is closed as soon as anyone looks at runs or takes a lease: it
does not show ``running`` (its seconds counting) until the next run of its environment."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path
from typing import Any

from sqlalchemy import update

from andon.store import open_store
from andon.store import schema as t
from tests.conftest import Cli, ProjectFactory
from tests.test_concurrency import holding_project, run_info, start_run, wait_for


def runs(cli: Cli, root: Path, *args: str) -> Any:
    code, out, err = cli("runs", "-p", root, "--format", "json", *args)
    assert code == 0, err
    return {r["id"]: r for r in json.loads(out)}


def test_a_run_killed_with_sigkill_is_closed_when_runs_are_read(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = holding_project(make_project)
    (root / "hold").touch()
    proc = start_run(root)
    try:
        wait_for(lambda: (root / "started").exists())
        assert runs(cli, root)[1]["status"] == "running"  # alive: left alone
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        (root / "hold").unlink()
    killed = runs(cli, root)[1]
    assert killed["status"] == "abandoned"
    details = run_info(cli, root, "1")
    assert f"process {proc.pid} on {socket.gethostname()} is gone" in details["error"]
    assert details["ended_at"] is not None
    # its seconds stopped counting at its last sign of life
    time.sleep(1.1)
    assert runs(cli, root)[1]["seconds"] == killed["seconds"]
    # its lease was released with it: the next run neither waits nor reclaims
    code, out, err = cli("run", "-p", root, "-q")
    assert code == 0, out + err
    assert run_info(cli, root, "2")["status"] == "succeeded"


def test_a_run_of_another_machine_is_closed_when_its_lease_goes_stale(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'andon.db'}")
    ids = [store.begin_run(env, user="u", git_sha=None, git_dirty=None, selection=[],
                           params={}, base_commit=None) for env in ("prod", "dev")]
    for env, run_id in zip(("prod", "dev"), ids, strict=True):
        store.acquire_lease(env, run_id)
    beat = time.time() - 600  # prod's holder has been silent for ten minutes; dev's beats
    with store.engine.begin() as conn:
        conn.execute(update(t.runs).values(host="elsewhere", pid=1, started_at=beat - 60))
        conn.execute(update(t.leases).where(t.leases.c.environment == "prod")
                     .values(host="elsewhere", pid=1, heartbeat_at=beat))
    by_id = {r["id"]: r for r in store.runs()}
    assert by_id[ids[0]]["status"] == "abandoned"
    assert by_id[ids[0]]["ended_at"] == beat
    assert "no heartbeat from process 1 on elsewhere since" in by_id[ids[0]]["error"]
    assert by_id[ids[1]]["status"] == "running"
    # prod can be taken at once; dev is still held
    store.acquire_lease("prod", None, what="promotion 1")
    store.close()
