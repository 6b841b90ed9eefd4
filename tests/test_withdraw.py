"""Withdrawing a landed file: the line stopped by a bad file restarts without touching .andon/.

Deleting a file from the source's folder does not take its data out (the landed copy is what
the source reads); ``andon landing withdraw`` does, and keeps the file for audit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, ProjectFactory

YAML = """\
name: t
sources:
  orders:
    path: incoming/*.csv
    columns:
      id: {type: integer, required: true}
      name: string
    checks:
      - {type: unique, columns: [id]}
"""


def project(make_project: ProjectFactory) -> Path:
    root = make_project({"andon.yaml": YAML,
                         "pipelines/p/names.sql": "SELECT id, name FROM orders"})
    (root / "incoming").mkdir()
    return root


def landing(cli: Cli, root: Path, *args: str) -> Any:
    code, out, err = cli("landing", "list", *args, "-p", root, "--format", "json")
    assert code == 0, err
    return {r["file"]: r for r in json.loads(out)}


def ids(cli: Cli, root: Path) -> list[int]:
    code, out, err = cli("query", "SELECT id FROM names ORDER BY id", "-p", root, "--format",
                         "json")
    assert code == 0, err
    return [r["id"] for r in json.loads(out)]


def plan_of(cli: Cli, root: Path) -> dict[str, str]:
    code, out, err = cli("plan", "-p", root, "--format", "json")
    assert code == 0, err
    return {s["name"]: s["action"] for s in json.loads(out)["steps"]}


def fingerprint(cli: Cli, root: Path, step: str) -> str:
    """The step's fingerprint in the plan of the next run."""
    code, out, err = cli("plan", "-p", root, "--format", "json")
    assert code == 0, err
    return str(next(s["fingerprint"] for s in json.loads(out)["steps"] if s["name"] == step))


def test_a_withdrawn_file_restarts_the_line_and_stays_for_audit(
    make_project: ProjectFactory, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(make_project)
    (root / "incoming/a.csv").write_text("id,name\n1,a\n2,b\n3,c\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    before = fingerprint(cli, root, "orders")
    # a few rows sent twice: the unique check stops the line
    (root / "incoming/b.csv").write_text("id,name\n2,b\n3,c\n")
    code, out, err = cli("run", "-p", root, "-q")
    assert code == 1 and "unique" in out + err
    assert ids(cli, root) == [1, 2, 3]
    assert fingerprint(cli, root, "orders") != before
    # deleting the file from the folder does not withdraw it: the landed copy still feeds
    (root / "incoming/b.csv").unlink()
    assert cli("run", "-p", root, "-q")[0] == 1
    listed = landing(cli, root, "orders")
    assert listed["b.csv"]["status"] == "active" and listed["b.csv"]["in_folder"] is False
    assert (listed["b.csv"]["rows"], listed["b.csv"]["rejects"]) == (2, 0)
    assert listed["a.csv"]["status"] == "active" and listed["a.csv"]["in_folder"] is True
    assert len(listed["b.csv"]["sha256"]) == 64 and listed["b.csv"]["bytes"] == 16

    # once a team has users, only an operator or an admin may withdraw (prod is protected)
    monkeypatch.setenv("ANDON_USER", "alice")
    assert cli("users", "add", "alice", "--role", "admin", "-p", root)[0] == 0
    assert cli("users", "add", "dave", "--role", "developer", "-p", root)[0] == 0
    monkeypatch.setenv("ANDON_USER", "dave")
    code, out, err = cli("landing", "withdraw", "orders", "b.csv", "--reason", "sent twice",
                         "-p", root)
    assert code == 1 and "'dave' (role developer) may not withdraw" in err
    assert "operator" in err
    assert landing(cli, root, "orders")["b.csv"]["status"] == "active"

    monkeypatch.setenv("ANDON_USER", "alice")
    code, out, err = cli("landing", "withdraw", "orders", "b.csv", "-p", root, "--reason",
                         "rows 2 and 3 sent twice")
    assert code == 0, err
    assert "withdrew b.csv" in out
    gone = landing(cli, root, "orders")["b.csv"]
    assert gone["status"] == "withdrawn"
    assert gone["withdrawn_by"] == "alice" and gone["reason"] == "rows 2 and 3 sent twice"
    assert gone["withdrawn_at"] is not None
    # kept in the landing zone, as received
    kept = root / ".andon/landing" / gone["landed_path"]
    assert kept.read_text() == "id,name\n2,b\n3,c\n"

    # the source's fingerprint changed back to the one without the file: the line restarts
    # on the artifact built before the file came (nothing is rebuilt)
    assert plan_of(cli, root) == {"orders": "reuse", "names": "reuse"}
    assert fingerprint(cli, root, "orders") == before
    code, out, err = cli("run", "-p", root, "-q")
    assert code == 0, out + err
    assert ids(cli, root) == [1, 2, 3]

    # the same bytes sent again stay withdrawn; withdrawing twice says who did it
    (root / "incoming/b.csv").write_text("id,name\n2,b\n3,c\n")
    assert plan_of(cli, root) == {"orders": "reuse", "names": "reuse"}
    assert landing(cli, root, "orders")["b.csv"]["status"] == "withdrawn"
    code, _, err = cli("landing", "withdraw", "orders", "b.csv", "--reason", "again", "-p", root)
    assert code == 1 and "withdrawn already by alice" in err
    # new data keeps flowing
    (root / "incoming/c.csv").write_text("id,name\n4,d\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    assert ids(cli, root) == [1, 2, 3, 4]


def test_withdrawing_a_latin1_file_that_stopped_the_line(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = project(make_project)
    (root / "incoming/a.csv").write_text("id,name\n1,a\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    # an export in latin-1: its accented rows are rejected, too many for the line to go on
    (root / "incoming/b.csv").write_bytes("id,name\n2,Müller\n3,Zoë\n".encode("latin-1"))
    code, out, err = cli("run", "-p", root, "-q")
    assert code == 1 and "b.csv, step 'orders': 2 of 2 rows rejected" in out + err
    code, out, err = cli("landing", "withdraw", "orders", "b.csv", "--reason", "latin-1",
                         "-p", root)
    assert code == 0, err
    assert cli("run", "-p", root, "-q")[0] == 0
    assert ids(cli, root) == [1]


def test_a_name_sent_twice_is_withdrawn_by_sha256(make_project: ProjectFactory, cli: Cli) -> None:
    root = project(make_project)
    (root / "incoming/a.csv").write_text("id,name\n1,a\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    (root / "incoming/a.csv").write_text("id,name\n1,a\n1,a\n")  # a bad re-send
    assert cli("run", "-p", root, "-q")[0] == 1
    listed = json.loads(cli("landing", "list", "orders", "-p", root, "--format", "json")[1])
    assert [r["status"] for r in listed] == ["superseded", "active"]
    code, _, err = cli("landing", "withdraw", "orders", "a.csv", "--reason", "x", "-p", root)
    assert code == 1 and "2 arrivals of 'a.csv'" in err and "sha256" in err
    bad = listed[1]["sha256"]
    code, _, err = cli("landing", "withdraw", "orders", bad[:10], "--reason", "bad re-send",
                       "-p", root)
    assert code == 0, err
    # as if it had never arrived: the earlier arrival is read again
    after = json.loads(cli("landing", "list", "orders", "-p", root, "--format", "json")[1])
    assert [r["status"] for r in after] == ["active", "withdrawn"]
    assert cli("run", "-p", root, "-q")[0] == 0
    assert ids(cli, root) == [1]


def test_withdraw_names_unknown_sources_and_files(make_project: ProjectFactory, cli: Cli) -> None:
    root = project(make_project)
    (root / "incoming/a.csv").write_text("id,name\n1,a\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    code, _, err = cli("landing", "withdraw", "order", "a.csv", "--reason", "x", "-p", root)
    assert code == 1 and "no source named 'order'" in err and "did you mean 'orders'" in err
    code, _, err = cli("landing", "withdraw", "orders", "A.csv", "--reason", "x", "-p", root)
    assert code == 1 and "no landed file 'A.csv'" in err and "'a.csv'" in err
    code, _, err = cli("landing", "withdraw", "orders", "a.csv", "--reason", " ", "-p", root)
    assert code == 1 and "--reason" in err


def test_landed_files_are_listed_after_their_folder_is_gone(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = project(make_project)
    (root / "incoming/a.csv").write_text("id,name\n1,a\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    (root / "incoming/a.csv").unlink()
    (root / "incoming").rmdir()
    listed = landing(cli, root)
    assert listed["a.csv"]["status"] == "active" and listed["a.csv"]["in_folder"] is False
    assert listed["a.csv"]["source"] == "orders"
    code, out, _ = cli("landing", "list", "-p", root)
    assert code == 0 and "a.csv" in out and "active" in out


def test_a_store_of_the_previous_version_gains_withdrawal_columns(tmp_path: Path) -> None:
    from sqlalchemy import text

    from andon.store import open_store
    from andon.store.migrations import LATEST

    url = f"sqlite:///{tmp_path / 'andon.db'}"
    store = open_store(url)
    with store.engine.begin() as conn:  # as andon wrote it before landed files could go
        for column in ("withdrawn_at", "withdrawn_by", "withdrawn_reason"):
            conn.execute(text(f"ALTER TABLE landed_files DROP COLUMN {column}"))
        conn.execute(text("UPDATE andon_meta SET value = '4' WHERE key = 'schema_version'"))
        conn.execute(text(
            "INSERT INTO landed_files (source, sha256, original_path, landed_path, bytes, "
            "arrived_at) VALUES ('orders', 'ab', 'incoming/a.csv', 'orders/x/a.csv', 3, 1.0)"))
    store.close()
    store = open_store(url)
    with store.engine.connect() as conn:
        version = conn.execute(text("SELECT value FROM andon_meta")).scalar()
    assert int(str(version)) == LATEST
    (row,) = store.landed_files("orders")
    assert row["withdrawn_at"] is None
    assert store.withdraw_landed_file("orders", "ab", who="alice", why="test")
    assert not store.withdraw_landed_file("orders", "ab", who="alice", why="twice")
    assert store.landed_files("orders")[0]["withdrawn_by"] == "alice"
    store.close()


def test_withdrawing_a_published_file_rebuilds_the_source_without_it(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = project(make_project)
    for i, name in enumerate(("a", "b", "c"), start=1):
        (root / f"incoming/{name}.csv").write_text(f"id,name\n{i},{name}\n")
        assert cli("run", "-p", root, "-q")[0] == 0
    code, _, err = cli("landing", "withdraw", "orders", "b.csv", "--reason", "test data",
                       "-p", root)
    assert code == 0, err
    code, out, err = cli("plan", "-p", root, "--format", "json")
    orders = next(s for s in json.loads(out)["steps"] if s["name"] == "orders")
    assert (orders["action"], orders["reason"]) == ("build", "landed files changed")
    assert cli("run", "-p", root, "-q")[0] == 0
    assert ids(cli, root) == [1, 3]
    code, out, _ = cli("landing", "list", "orders", "-p", root)
    assert "by " in out and "test data" in out  # who, when and why, in the table too
