"""Cancelling a run: from another thread through its ``CancelToken``, from another process
through the store (``andon runs cancel``). The SQL in flight stops, the run ends
``cancelled``, nothing is published, and the next run works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import andon
from andon.errors import Conflict, NotFound
from andon.events import NullListener, RunResult
from andon.execution.cancel import CancelToken, RunCancelled
from andon.store import open_store
from andon.store.migrations import _run_cancel_flag
from tests.conftest import Cli, ProjectFactory
from tests.test_concurrency import wait_for

# a cross join of 10^12 rows: DuckDB needs far longer than any wait below to finish it
SLOW_SQL = ("SELECT sum(a.range * b.range) AS s, max(after.n) AS n FROM range(1000000) a "
            "CROSS JOIN range(1000000) b CROSS JOIN after")
FAST_SQL = "SELECT 0 AS s, n FROM after"

PROJECT = {
    "andon.yaml": """
        name: cancelling
        environments:
          prod: {protected: false}
    """,
    "pipelines/p/base.sql": "SELECT 1 AS x",
    "pipelines/p/after.sql": "SELECT count(*) AS n FROM base",
    "pipelines/p/slow.sql": FAST_SQL,
}


@pytest.fixture
def root(make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project, run once: prod points at a commit the cancelled runs must not move."""
    monkeypatch.setenv("ANDON_USER", "alice")
    root = make_project(PROJECT)
    result = andon.Session(andon.Project.load(root), "alice").run()
    assert result.ok and result.commit_id
    (root / "pipelines/p/slow.sql").write_text(SLOW_SQL)
    return root


def prod_commit(root: Path) -> str | None:
    env = andon.Project.load(root).store.environment("prod")
    return env["commit_id"] if env else None


class Started(NullListener):
    """Tells when a step starts building."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.event = threading.Event()

    def step_started(self, name: str, action: str) -> None:
        if name == self.step:
            self.event.set()


def run_in_thread(root: Path, token: CancelToken | None, listener: Started,
                  wait_for_lease: float = 0.0) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def go() -> None:
        try:
            out["result"] = andon.Session(andon.Project.load(root), "alice").run(
                listener=listener, cancel=token, wait_for_lease=wait_for_lease)
        except Exception as e:  # reported by the test
            out["error"] = e

    thread = threading.Thread(target=go)
    thread.start()
    return thread, out


def assert_next_run_works(root: Path, before: str | None) -> None:
    (root / "pipelines/p/slow.sql").write_text(FAST_SQL.replace("0 AS s", "1 AS s"))
    result = andon.Session(andon.Project.load(root), "alice").run()
    assert result.ok, result.error
    assert result.commit_id not in (None, before)
    actions = {s.name: s.action for s in result.steps}
    assert actions == {"base": "reused", "after": "reused", "slow": "built"}


def test_a_token_stops_the_sql_in_flight_and_nothing_is_published(root: Path) -> None:
    before = prod_commit(root)
    token, started = CancelToken(), Started("slow")
    thread, out = run_in_thread(root, token, started)
    assert started.event.wait(60), out
    time.sleep(1.0)  # the cross join is under way
    token.cancel("asked by the test")
    thread.join(60)
    assert not thread.is_alive(), "the cross join was not interrupted"
    result: RunResult = out["result"]
    assert result.status == "cancelled" and result.commit_id is None
    assert {s.name: s.action for s in result.steps} == {"base": "reused", "after": "reused",
                                                        "slow": "cancelled"}
    assert result.error is not None and "asked by the test" in result.error.message
    project = andon.Project.load(root)
    recorded = project.store.run(result.run_id)
    assert recorded is not None and recorded["status"] == "cancelled"
    assert "not changed" in recorded["error"]
    assert prod_commit(root) == before
    assert project.store.lease_holders() == []
    assert_next_run_works(root, before)


def test_cancel_from_another_process_through_the_store(root: Path, cli: Cli) -> None:
    before = prod_commit(root)
    proc = subprocess.Popen(
        [sys.executable, "-m", "andon", "run", "-p", str(root), "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        store = andon.Project.load(root).store

        def running() -> bool:
            runs = store.runs(limit=1)
            return bool(runs) and runs[0]["id"] == 2 and bool(store.lease_holders())

        wait_for(running)
        time.sleep(3.0)  # planned, and most likely in the cross join (else it never starts)
        code, out, err = cli("runs", "cancel", "2", "-p", root, "--format", "json")
        assert code == 0, err
        assert json.loads(out)["cancel_requested_by"] == "alice"
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    result = json.loads(stdout)
    assert result["status"] == "cancelled" and result["commit"] is None
    assert "cancelled (by alice)" in result["error"]
    assert {s["name"]: s["action"] for s in result["steps"]}["slow"] in ("cancelled",
                                                                        "skipped")
    details = json.loads(cli("runs", "show", "2", "-p", root, "--format", "json")[1])
    assert details["status"] == "cancelled"
    assert prod_commit(root) == before
    # a run that ended cannot be cancelled again; nor can a run that never was
    session = andon.Session(andon.Project.load(root), "alice")
    with pytest.raises(Conflict, match="already ended"):
        session.cancel_run(2)
    with pytest.raises(NotFound):
        session.cancel_run(99)
    code, _, err = cli("runs", "cancel", "latest", "-p", root)
    assert code == 1 and "already ended (cancelled)" in err
    assert_next_run_works(root, before)


def test_cancel_is_authorised_as_running_is(root: Path) -> None:
    from andon.access import AccessDenied

    project = andon.Project.load(root)
    admin = andon.Session(project, "alice")
    admin.users_add("alice", "admin")
    admin.users_add("victor", "viewer")
    admin.users_add("dave", "developer")
    with pytest.raises(AccessDenied, match="may not cancel run 1"):
        andon.Session(project, "victor").cancel_run(1)
    # a developer may run in prod here (unprotected): the check passes, the run is over
    with pytest.raises(Conflict, match="already ended"):
        andon.Session(project, "dave").cancel_run("latest")


def test_a_cancel_while_waiting_for_the_lease_ends_the_wait(root: Path) -> None:
    project = andon.Project.load(root)
    project.store.acquire_lease("prod", None, what="someone else")
    token = CancelToken()
    started = Started("never")
    thread, out = run_in_thread(root, token, started, wait_for_lease=600)
    # the run is waiting for the lease: recorded as running, no step started
    store = project.store
    wait_for(lambda: bool(store.runs(limit=1)) and store.runs(limit=1)[0]["id"] == 2)
    token.cancel("no longer needed")
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(out.get("error"), RunCancelled)
    assert store.run(2) is not None and store.run(2)["status"] == "cancelled"  # type: ignore[index]


def test_the_token_is_thread_safe_and_keeps_the_first_reason() -> None:
    token = CancelToken()
    calls: list[str] = []
    token.on_cancel(lambda: calls.append("interrupt"))
    removed = token.on_cancel(lambda: calls.append("removed"))
    removed()
    token.raise_if_cancelled()  # not cancelled: nothing happens
    threads = [threading.Thread(target=token.cancel, args=(f"reason {i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert token.cancelled and token.reason is not None and token.reason.startswith("reason ")
    assert calls == ["interrupt"]  # once, whoever cancelled first
    late: list[str] = []
    token.on_cancel(lambda: late.append("at once"))
    assert late == ["at once"]
    with pytest.raises(RunCancelled, match=token.reason):
        token.raise_if_cancelled()


def test_the_cancel_flag_migration_is_idempotent(store_url: str) -> None:
    store = open_store(store_url)
    with store.engine.begin() as conn:
        _run_cancel_flag(conn)  # the columns are there already: nothing to do
    run_id = store.begin_run("prod", user="u", git_sha=None, git_dirty=None, selection=[],
                             params={}, base_commit=None)
    assert store.cancel_requested(run_id) is None
    store.request_cancel(run_id, who="bob")
    assert store.cancel_requested(run_id) == "bob"
    store.request_cancel(run_id, who="carol")  # asked twice: the first request stands
    assert store.cancel_requested(run_id) == "bob"
    store.finish_run(run_id, "cancelled")
    with pytest.raises(Conflict, match="already ended"):
        store.request_cancel(run_id, who="bob")
    with pytest.raises(NotFound):
        store.request_cancel(run_id + 1, who="bob")
    store.close()
