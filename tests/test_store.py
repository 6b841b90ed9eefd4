"""The metadata store, on SQLite and on PostgreSQL: migrations, runs, artifacts, commits,
environments, the ref log, compare-and-swap, leases, landed files and rejects."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

import pytest
from sqlalchemy import Table, func, select, update

from andon import environments
from andon.errors import EnvironmentNotFound, LeaseError, StoreError
from andon.store import Store, StoreReader, open_store
from andon.store import schema as t
from andon.store.migrations import LATEST, current_version
from andon.store.reader import ReadOnlyStore
from tests.conftest import Cli, ProjectFactory


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def count(store: Store, table: Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def new_run(store: Store, env: str = "prod") -> int:
    return store.begin_run(env, user="ann", git_sha="abc", git_dirty=False,
                           selection=["a+"], params={"k": 1}, base_commit=None)


def test_a_fresh_store_is_at_the_latest_schema_version(store: Store, store_url: str) -> None:
    with store.engine.connect() as conn:
        assert current_version(conn) == LATEST
    again = open_store(store_url)  # opening again migrates nothing and loses nothing
    run_id = new_run(again)
    again.close()
    reopened = open_store(store_url)
    assert reopened.run(run_id) is not None
    reopened.close()


def test_a_store_from_a_newer_andon_is_refused(store: Store, store_url: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(t.meta).where(t.meta.c.key == "schema_version")
                     .values(value=str(LATEST + 1)))
    store.close()
    with pytest.raises(StoreError) as e:
        open_store(store_url)
    assert f"schema version {LATEST + 1}, newer than this andon ({LATEST})" in e.value.message
    assert "upgrade andon" in e.value.hint


def test_an_unreachable_store_is_a_store_error() -> None:
    with pytest.raises(StoreError) as e:
        open_store("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "cannot open the store" in e.value.message
    assert "secret" not in e.value.render()  # the password is masked


def test_runs_step_runs_and_logs(store: Store) -> None:
    first = new_run(store)
    second = new_run(store, "dev")
    assert second > first
    assert store.latest_run_id() == second and store.latest_run_id("prod") == first
    run = store.run(first)
    assert run is not None
    assert (run["status"], run["user"], run["selection"], run["params"]) == (
        "running", "ann", ["a+"], {"k": 1})
    store.record(
        step_runs=[{"run_id": first, "step": "a", "action": "built", "fingerprint": "f1",
                    "rows": 10, "rejects": 2, "seconds": 0.5, "started_at": time.time(),
                    "error": None},
                   {"run_id": first, "step": "b", "action": "failed", "fingerprint": "f2",
                    "rows": None, "rejects": 0, "seconds": 0.1, "started_at": time.time(),
                    "error": "boom"}],
        logs=[{"run_id": first, "step": "a", "at": time.time(), "level": "info",
               "message": "hello"}],
    )
    store.finish_run(first, "failed", error="boom", summary={"counts": {"built": 1}})
    assert [(s["step"], s["action"], s["rows"], s["rejects"]) for s in store.step_runs(first)] \
        == [("a", "built", 10, 2), ("b", "failed", None, 0)]
    assert [lg["message"] for lg in store.logs(first)] == ["hello"]
    done = store.run(first)
    assert done is not None and done["status"] == "failed" and done["ended_at"] >= \
        done["started_at"] and done["summary"] == {"counts": {"built": 1}}
    assert [r["id"] for r in store.runs()] == [second, first]
    assert [r["id"] for r in store.runs("dev")] == [second]
    store.mark_abandoned(first, "late")  # only a running run can be abandoned
    assert store.run(first)["status"] == "failed"  # type: ignore[index]
    store.mark_abandoned(second, "the process died")
    assert store.run(second)["status"] == "abandoned"  # type: ignore[index]


def artifact(fp: str, step: str = "a", created: float | None = None) -> Any:
    return {"fingerprint": fp, "step": step, "code_hash": "c1", "path": f"{step}/{fp}",
            "rows": 3, "bytes": 100, "schema": [["x", "BIGINT"]],
            "files": [f"{step}/{fp}/part-0.parquet"], "meta": {"rejects": 1},
            "created_at": created or time.time(), "run_id": 1}


def test_artifacts_are_recorded_once(store: Store) -> None:
    store.record(artifacts=[artifact("f1", created=1.0), artifact("f2", created=2.0)])
    store.record(artifacts=[artifact("f1", created=3.0), artifact("f3", "b")])  # f1 again
    assert count(store, t.artifacts) == 3
    got = store.artifacts(["f1", "f2", "nope"])
    assert set(got) == {"f1", "f2"}
    assert got["f1"]["created_at"] == 1.0 and got["f1"]["schema"] == [["x", "BIGINT"]]
    assert got["f1"]["files"] == ["a/f1/part-0.parquet"] and got["f1"]["meta"] == {"rejects": 1}
    assert store.artifact("f3")["step"] == "b"  # type: ignore[index]
    assert store.latest_artifact("a", "c1")["fingerprint"] == "f2"  # type: ignore[index]
    assert store.latest_artifact("a", "other") is None
    many = [f"g{i}" for i in range(1200)]  # more than one IN (...) chunk
    store.record(artifacts=[artifact(fp) for fp in many])
    assert len(store.artifacts(many)) == 1200


def publish(store: Store, env: str, expected: str | None, steps: dict[str, str],
            run_id: int | None = None) -> str:
    return store.publish(env, expected_commit=expected, steps=steps, author="ann", git_sha=None,
                         params={"p": 1}, message="m", run_id=run_id)


def test_publish_commits_and_moves_the_environment(store: Store) -> None:
    c1 = publish(store, "prod", None, {"a": "f1", "b": "f2"}, run_id=7)
    env = store.environment("prod")
    assert env is not None and env["commit_id"] == c1 and env["version"] == 1
    assert store.commit_steps(c1) == {"a": "f1", "b": "f2"}
    assert store.commit(c1)["parent_id"] is None  # type: ignore[index]
    c2 = publish(store, "prod", c1, {"a": "f1", "b": "f3"})
    env = store.environment("prod")
    assert env is not None and env["commit_id"] == c2 and env["version"] == 2
    assert store.commit(c2)["parent_id"] == c1  # type: ignore[index]
    assert store.commit_steps(c2) == {"a": "f1", "b": "f3"}
    assert store.commit_steps(None) == {}
    log = store.ref_log("prod")
    assert [(r["from_commit"], r["to_commit"]) for r in log] == [(c1, c2), (None, c1)]
    assert log[1]["run_id"] == 7 and log[0]["who"] == "ann"
    c3 = publish(store, "dev", None, {"a": "f1"})
    assert [e["name"] for e in store.environments()] == ["dev", "prod"]
    assert store.environment("dev")["commit_id"] == c3  # type: ignore[index]
    assert store.ref_log("dev")[0]["to_commit"] == c3


def test_publish_with_a_stale_commit_changes_nothing(store: Store) -> None:
    c1 = publish(store, "prod", None, {"a": "f1"})
    c2 = publish(store, "prod", c1, {"a": "f2"})
    tables = (t.commits, t.commit_steps, t.environments, t.ref_log)
    before = [count(store, x) for x in tables]
    env_before = store.environment("prod")
    with pytest.raises(LeaseError) as e:
        publish(store, "prod", c1, {"a": "f3"})  # read c1, but prod moved to c2
    assert "moved meanwhile" in e.value.message
    with pytest.raises(LeaseError):
        publish(store, "prod", None, {"a": "f3"})  # believes prod does not exist yet
    assert [count(store, x) for x in tables] == before
    assert store.environment("prod") == env_before
    assert store.environment("prod")["commit_id"] == c2  # type: ignore[index]


def race(*moves: Callable[[], object]) -> list[BaseException | None]:
    """Start the moves together, each in its own thread; what each raised (None: it won)."""
    start = threading.Barrier(len(moves))
    out: list[BaseException | None] = [None] * len(moves)

    def go(i: int) -> None:
        start.wait()
        try:
            moves[i]()
        except BaseException as e:
            out[i] = e

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(moves))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return out


def test_two_concurrent_moves_one_wins_the_other_is_a_conflict(store: Store) -> None:
    c1 = publish(store, "prod", None, {"a": "f1"})
    c2 = publish(store, "dev", None, {"a": "f2"})
    c3 = publish(store, "qa", None, {"a": "f3"})
    outcomes = race(
        lambda: store.envs.move("prod", expected=c1, to_commit=c2, who="ann", why="reset"),
        lambda: store.envs.move("prod", expected=c1, to_commit=c3, who="bob", why="reset"))
    assert sum(o is None for o in outcomes) == 1
    lost = next(o for o in outcomes if o is not None)
    assert isinstance(lost, LeaseError) and lost.kind == "conflict"
    assert "moved meanwhile; nothing changed" in lost.message and "env log prod" in lost.hint
    winner = c2 if outcomes[0] is None else c3
    assert store.envs.get("prod").commit_id == winner  # type: ignore[union-attr]
    moves = store.envs.log("prod")
    assert [(m.from_commit, m.to_commit) for m in moves] == [(c1, winner), (None, c1)]


def test_a_publish_and_a_reset_race_through_the_same_compare_and_swap(store: Store) -> None:
    c1 = publish(store, "prod", None, {"a": "f1"})
    c0 = publish(store, "prod", c1, {"a": "f0"})
    outcomes = race(lambda: publish(store, "prod", c0, {"a": "f2"}),
                    lambda: store.envs.move("prod", expected=c0, to_commit=c1, who="ann",
                                            why="reset to " + c1))
    assert sorted(type(o).__name__ for o in outcomes) == ["LeaseError", "NoneType"]
    assert all(o is None or getattr(o, "kind", None) == "conflict" for o in outcomes)
    head = store.envs.get("prod")
    assert head is not None and head.version == 3
    assert store.envs.log("prod")[0].from_commit == c0
    assert head.commit_id == store.envs.log("prod")[0].to_commit


def test_records_are_frozen_with_utc_times_and_convert_to_the_rows_of_before(
        store: Store) -> None:
    c1 = publish(store, "prod", None, {"a": "f1"}, run_id=3)
    env = store.envs.get("prod")
    commit = store.envs.commit(c1)
    entry = store.envs.log("prod")[0]
    store.users.put("ann", "admin")
    store.secrets.put("token", "*", "ciphertext", who="ann")
    pid = store.promotions.start(source="dev", target="prod", status="running", who="ann")
    records = [env, commit, entry, store.users.all()[0], store.secrets.all()[0],
               store.promotions.latest()[0]]
    for record in records:
        assert dataclasses.is_dataclass(record)
        first = dataclasses.fields(record)[0].name  # type: ignore[arg-type]
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, first, "changed")
    assert env is not None and commit is not None
    for when in (env.created_at, env.updated_at, commit.created_at, entry.at,
                 records[3].created_at, records[4].updated_at,  # type: ignore[union-attr]
                 records[5].at):  # type: ignore[union-attr]
        assert when.tzinfo is UTC and abs(time.time() - when.timestamp()) < 60
    assert env.as_dict() == store.environment("prod")
    assert set(env.as_dict()) == {c.name for c in t.environments.columns}
    assert commit.as_dict() == store.commit(c1) and commit.run_id == 3
    assert set(commit.as_dict()) == {c.name for c in t.commits.columns}
    assert entry.as_dict() == store.ref_log("prod")[0]
    assert set(entry.as_dict()) == {c.name for c in t.ref_log.columns}
    assert set(records[5].as_dict()) == {c.name for c in t.promotions.columns}
    assert records[5].as_dict()["id"] == pid  # type: ignore[union-attr]


WRITES = {"begin_run", "finish_run", "record", "close_dead_runs", "mark_abandoned", "publish",
          "acquire_lease", "heartbeat", "release_lease", "add_landed_file", "add_landed_files",
          "withdraw_landed_file", "add_rejects", "delete_artifacts", "move", "create", "delete",
          "users", "secrets", "promotions", "engine", "close", "add", "acknowledge",
          "save_profile"}


def test_the_reader_has_the_read_methods_and_no_write_method(store: Store) -> None:
    reader = store.reader()
    public = {n for n in dir(reader) if not n.startswith("_")}
    protocol = {n for n in vars(StoreReader) if not n.startswith("_")}
    assert public == protocol
    assert not public & WRITES
    assert WRITES - {"move", "create", "delete", "add", "acknowledge", "save_profile"
                     } <= {n for n in dir(store)}  # real writers
    assert isinstance(reader, ReadOnlyStore)
    # its environments and check history are read-only views of the repositories
    for view, repo in ((reader.envs, store.envs), (reader.checks, store.checks)):
        reads = {n for n in dir(view) if not n.startswith("_")}
        assert reads and not reads & WRITES
        assert {"move", "publish", "add", "acknowledge"} & {n for n in dir(repo)}


def test_read_only_commands_work_on_a_reader(store: Store) -> None:
    c1 = publish(store, "prod", None, {"a": "f1"})
    environments.create(store, "dev", source="prod", who="bob")
    reader = store.reader()
    log = environments.log(reader, "dev")
    assert [(m["from"], m["to"], m["who"], m["why"]) for m in log] == [
        (None, c1, "bob", "created from prod")]
    assert environments.log(reader, "dev") == environments.log(store, "dev")
    listed = environments.listing(reader, lambda name: name == "prod")
    assert [(e["name"], e["commit"], e["base"], e["protected"]) for e in listed] == [
        ("dev", c1, "prod", False), ("prod", c1, None, True)]
    assert environments.require(reader, "dev")["commit_id"] == c1
    with pytest.raises(EnvironmentNotFound):
        environments.log(reader, "nope")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leases(store: Store) -> None:
    r1, r2 = new_run(store), new_run(store)
    store.acquire_lease("prod", r1)
    with pytest.raises(LeaseError) as e:
        store.acquire_lease("prod", r2)
    assert f"environment 'prod' is being changed by run {r1}" in e.value.message
    assert "--wait" in e.value.hint
    store.acquire_lease("dev", r2)  # another environment is free
    store.heartbeat("prod", r1)
    store.release_lease("prod", r2)  # not the holder: nothing happens
    with pytest.raises(LeaseError):
        store.acquire_lease("prod", r2)
    store.release_lease("prod", r1)
    store.acquire_lease("prod", r2)
    assert count(store, t.leases) == 2


def test_a_lease_of_a_dead_process_is_taken_over(store: Store) -> None:
    r1, r2 = new_run(store), new_run(store)
    store.acquire_lease("prod", r1)
    with store.engine.begin() as conn:  # as if a process that died had taken it
        conn.execute(update(t.leases).values(pid=dead_pid()))
    store.acquire_lease("prod", r2)
    run = store.run(r1)
    assert run is not None and run["status"] == "abandoned"
    assert "stopped before the run finished" in run["error"]
    with pytest.raises(LeaseError) as e:
        store.acquire_lease("prod", new_run(store))
    assert f"run {r2}" in e.value.message


def test_a_lease_without_heartbeat_goes_stale(store: Store) -> None:
    r1, r2 = new_run(store), new_run(store)
    store.acquire_lease("prod", r1)
    with store.engine.begin() as conn:  # another host, silent for ten minutes
        conn.execute(update(t.leases).values(host="elsewhere", heartbeat_at=time.time() - 600))
    with pytest.raises(LeaseError):
        store.acquire_lease("prod", r2, stale_after=3600)
    store.acquire_lease("prod", r2, stale_after=300)
    assert store.run(r1)["status"] == "abandoned"  # type: ignore[index]


def landed(sha: str, source: str = "orders") -> Any:
    return {"source": source, "sha256": sha, "original_path": f"/in/{sha}.csv",
            "landed_path": f"{source}/x-{sha}/{sha}.csv", "bytes": 5,
            "arrived_at": time.time(), "run_id": 1}


def test_landed_files_are_unique_per_source_and_bytes(store: Store) -> None:
    assert store.add_landed_file(landed("s1"))
    assert store.add_landed_file(landed("s2"))
    assert not store.add_landed_file(landed("s1"))  # the same bytes again
    assert store.add_landed_file(landed("s1", "other"))  # another source may have them
    assert [r["sha256"] for r in store.landed_files("orders")] == ["s1", "s2"]
    assert store.landed_file("orders", "s2")["original_path"] == "/in/s2.csv"  # type: ignore
    assert store.landed_file("orders", "nope") is None


def test_rejects(store: Store) -> None:
    rows: list[dict[str, Any]] = [
        {"part": "p1", "source": "orders", "file": "a.csv", "line": i, "column_name": "x",
         "reason": f"bad {i}", "raw": "1,x"} for i in (3, 5)]
    rows.append({"part": "p2", "source": "other", "file": "b.csv", "line": None,
                 "column_name": None, "reason": "r", "raw": None})
    store.add_rejects(rows)
    store.add_rejects([])
    assert [r["line"] for r in store.rejects(source="orders")] == [3, 5]
    assert [r["file"] for r in store.rejects(parts=["p2"])] == ["b.csv"]
    assert len(store.rejects(limit=2)) == 2
    assert store.has_rejects_for("p1") and not store.has_rejects_for("p3")


def test_a_project_runs_end_to_end_on_postgresql(
    postgres_url: str, make_project: ProjectFactory, cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANDON_STORE_URL", postgres_url)
    root = make_project({
        "andon.yaml": """\
            name: t
            sources:
              orders:
                path: incoming/*.csv
                columns: {id: {type: integer, required: true}, amount: double}
                max_reject_pct: 50  # the planted reject is one row in three
        """,
        "pipelines/p/total.sql": "SELECT sum(amount) AS total, count(*) AS n FROM orders",
    })
    (root / "incoming").mkdir()
    (root / "incoming/a.csv").write_text("id,amount\n1,1.5\n2,x\n3,2.5\n")
    code, out, err = cli("run", "-p", root, "-q")
    assert code == 0, out + err
    (root / "incoming/b.csv").write_text("id,amount\n4,6\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    code, out, _ = cli("query", "SELECT total, n FROM total", "-p", root, "--format", "json")
    assert json.loads(out) == [{"total": 10.0, "n": 3}]
    code, out, _ = cli("rejects", "orders", "-p", root, "--format", "json")
    assert [(r["file"], r["line"]) for r in json.loads(out)] == [("a.csv", 3)]
    assert not (root / ".andon/andon.db").exists()  # the metadata went to PostgreSQL
    pg = open_store(postgres_url)
    try:
        assert [r["status"] for r in pg.runs()] == ["succeeded", "succeeded"]
        assert len(pg.landed_files("orders")) == 2
        assert [r["run_id"] for r in pg.ref_log("prod")] == [2, 1]
    finally:
        pg.close()
