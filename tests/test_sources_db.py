"""Database sources (kind: database): SQLite, PostgreSQL and MariaDB read by DuckDB's
scanner, incremental by a cursor column, each pull landed as a snapshot file."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import andon
from andon.errors import AndonError
from andon.secrets import set_secret
from andon.sources.pull import pull
from tests.conftest import IN_CI, Cli, ProjectFactory, unprotect

PIPE = {"pipelines/p/total.sql": "SELECT count(*) AS n, sum(amount) AS s FROM orders\n"}


def _yaml(source: str) -> str:
    return "name: t\nsources:\n  orders:\n" + "".join(
        f"    {line}\n" for line in source.strip().splitlines())


def _sqlite(root: Path, rows: list[tuple[int, float]], *, fresh: bool = False) -> None:
    con = sqlite3.connect(root / "shop.db")
    if fresh:
        con.execute("CREATE TABLE orders (id INTEGER, amount REAL, note TEXT)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(i, a, f"n{i}") for i, a in rows])
    con.commit()
    con.close()


def _total(root: Path) -> tuple[int, float]:
    _, rows = andon.query(andon.Project.load(root), "SELECT n, s FROM total")
    return rows[0][0], rows[0][1]


def test_sqlite_incremental_pulls_only_rows_past_the_cursor(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({**PIPE, "andon.yaml": _yaml("""
kind: database
url: sqlite:///shop.db
table: orders
cursor: id
columns: {id: {type: bigint, required: true}, amount: double}
""")})
    _sqlite(root, [(1, 1.0), (2, 2.0)], fresh=True)
    code, out, err = cli("sources", "pull", "-p", root, "--format", "json")
    assert code == 0, err
    assert '"rows": 2' in out and '"cursor": 2' in out
    assert cli("run", "-p", root, "-q")[0] == 0
    assert _total(root) == (2, 3.0)
    # nothing new: no snapshot lands, the cursor stays
    again = pull(andon.Project.load(root), "orders")
    assert (again["landed"], again["rows"], again["cursor"]) == (False, 0, 2)
    _sqlite(root, [(3, 4.0)])
    third = pull(andon.Project.load(root), "orders")
    assert (third["landed"], third["rows"], third["cursor"]) == (True, 1, 3)
    assert cli("run", "-p", root, "-q")[0] == 0
    assert _total(root) == (3, 7.0)
    # every pull is a landed snapshot file with its hash: replayable
    code, out, _ = cli("landing", "list", "orders", "-p", root, "--format", "json")
    assert out.count('"status": "active"') == 2
    # the cursor is per source, not per environment: dev reads the same snapshots
    assert cli("env", "create", "dev", "-p", root)[0] == 0
    assert cli("run", "-p", root, "-q", "--env", "dev")[0] == 0
    _, rows = andon.query(andon.Project.load(root), "SELECT n FROM total", environment="dev")
    assert rows == [(3,)]


def test_full_snapshot_supersedes_the_previous_one(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({**PIPE, "andon.yaml": _yaml("""
kind: database
url: sqlite:///shop.db
query: SELECT id, amount FROM orders WHERE amount > 0
columns: {id: bigint, amount: double}
""")})
    _sqlite(root, [(1, 1.0), (2, -5.0)], fresh=True)
    assert pull(andon.Project.load(root), "orders")["rows"] == 1
    _sqlite(root, [(3, 10.0)])
    assert pull(andon.Project.load(root), "orders")["rows"] == 2
    # the same table again: the same bytes, nothing new lands
    assert pull(andon.Project.load(root), "orders")["landed"] is False
    assert cli("run", "-p", root, "-q")[0] == 0
    assert _total(root) == (2, 11.0)  # the latest snapshot only, not 1 + 2 rows


def test_schema_change_of_a_table_is_recorded_with_its_snapshot(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({**PIPE, "andon.yaml": _yaml("""
kind: database
url: sqlite:///shop.db
table: orders
cursor: id
evolve: add_columns
columns: {id: bigint, amount: double}
""")})
    _sqlite(root, [(1, 1.0)], fresh=True)
    first = pull(andon.Project.load(root), "orders")
    code, out, _ = cli("sources", "history", "orders", "-p", root, "--format", "json")
    assert code == 0
    assert '"change": "added"' in out and '"column": "note"' in out
    assert first["sha256"] in out
    assert cli("run", "-p", root, "-q")[0] == 0
    _, rows = andon.query(andon.Project.load(root), "SELECT id, note FROM orders")
    assert rows == [(1, "n1")]
    # a full pull superseding the snapshot that brought the column keeps it
    full = unprotect(root) / "andon.yaml"
    full.write_text(full.read_text().replace("    cursor: id\n", ""))
    _sqlite(root, [(2, 2.0)])
    assert pull(andon.Project.load(root), "orders")["rows"] == 2
    assert cli("run", "-p", root, "-q")[0] == 0
    _, rows = andon.query(andon.Project.load(root), "SELECT id, note FROM orders ORDER BY id")
    assert rows == [(1, "n1"), (2, "n2")]


def test_a_missing_sqlite_file_and_a_password_in_the_url_are_refused(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({"andon.yaml": _yaml("""
kind: database
url: sqlite:///nowhere.db
table: orders
columns: {id: bigint}
""")})
    code, _, err = cli("sources", "pull", "-p", root)
    assert code != 0 and "nowhere.db" in err and "does not exist" in err
    assert not (root / ".andon/landing/orders").exists()
    bad = make_project({"andon.yaml": _yaml("""
kind: database
url: postgresql://app:hunter2@db.example/shop
table: orders
columns: {id: bigint}
""")})
    code, _, err = cli("run", "-p", bad, "-q")
    assert code != 0 and "password" in err and "password_secret" in err


# PostgreSQL and MariaDB -------------------------------------------------------------------

PG_URL = os.environ.get("ANDON_TEST_POSTGRES_URL")
MYSQL_URL = os.environ.get("ANDON_TEST_MYSQL_URL")


def _need(url: str | None, var: str) -> str:
    if url:
        return url
    if IN_CI:
        pytest.fail(f"{var} is not set, and CI requires the database source tests")
    pytest.skip(f"set {var} to test database sources against it")


@pytest.fixture(scope="module")
def pg_table() -> Iterator[tuple[str, str]]:
    """A schema of this module's own holding ``orders`` (5 rows), dropped afterwards."""
    url = _need(PG_URL, "ANDON_TEST_POSTGRES_URL")
    import psycopg

    schema = f"andon_src_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.orders AS SELECT g AS id, g * 1.5::float8 AS "
                     "amount, now() AS at FROM generate_series(1, 5) g")
    yield url, schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_postgres_table_incremental_and_query(
        make_project: ProjectFactory, cli: Cli, pg_table: tuple[str, str]) -> None:
    url, schema = pg_table
    root = make_project({**PIPE, "andon.yaml": _yaml(f"""
kind: database
url: {url}
table: {schema}.orders
cursor: id
columns: {{id: bigint, amount: double}}
""")})
    first = pull(andon.Project.load(root), "orders")
    assert (first["rows"], first["cursor"]) == (5, 5)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {schema}.orders VALUES (6, 100, now())")
    assert pull(andon.Project.load(root), "orders")["rows"] == 1
    assert cli("run", "-p", root, "-q")[0] == 0
    assert _total(root) == (6, 1.5 * 15 + 100)
    query = make_project({**PIPE, "andon.yaml": _yaml(f"""
kind: database
url: {url}
query: SELECT id, amount FROM {schema}.orders WHERE id % 2 = 0
columns: {{id: bigint, amount: double}}
""")})
    assert pull(andon.Project.load(query), "orders")["rows"] == 3


def test_postgres_down_is_a_clear_error_and_changes_nothing(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({"andon.yaml": _yaml("""
kind: database
url: postgresql://postgres@127.0.0.1:1/postgres
table: orders
cursor: id
columns: {id: bigint}
""")})
    code, _, err = cli("sources", "pull", "orders", "-p", root)
    assert code != 0
    assert "cannot connect to the database" in err and "nothing was pulled" in err
    store = andon.Project.load(root).store
    assert store.landed_files("orders") == []
    from andon.store.sources import SourceRepository

    assert SourceRepository(store.engine).pulls("orders") == []


@pytest.fixture(scope="module")
def mysql_table() -> Iterator[str]:
    url = _need(MYSQL_URL, "ANDON_TEST_MYSQL_URL")
    import duckdb

    from andon.engines.dbscan import _attach_target, _load

    con = duckdb.connect()
    _load(con, "mysql", "mysql_scanner", "setup")
    con.execute(f"ATTACH '{_attach_target(url, 'mysql', None, Path())}' AS m (TYPE mysql)")
    table = f"andon_src_{uuid.uuid4().hex[:8]}"
    con.execute(f"CREATE TABLE m.{table} (id BIGINT, amount DOUBLE)")
    con.execute(f"INSERT INTO m.{table} VALUES (1, 2.5), (2, 3.5)")
    yield table
    con.execute(f"DROP TABLE m.{table}")
    con.close()


def test_mariadb_table_and_a_wrong_password(
        make_project: ProjectFactory, cli: Cli, mysql_table: str) -> None:
    url = _need(MYSQL_URL, "ANDON_TEST_MYSQL_URL")
    root = make_project({**PIPE, "andon.yaml": _yaml(f"""
kind: database
url: {url}
table: {mysql_table}
cursor: id
columns: {{id: bigint, amount: double}}
""")})
    assert pull(andon.Project.load(root), "orders")["rows"] == 2
    assert cli("run", "-p", root, "-q")[0] == 0
    assert _total(root) == (2, 6.0)
    wrong = make_project({"andon.yaml": _yaml(f"""
kind: database
url: {url}
table: {mysql_table}
password_secret: shop_password
columns: {{id: bigint}}
""")})
    project = andon.Project.load(wrong)
    set_secret(project.store, wrong, "shop_password", "not-the-password", who="test")
    with pytest.raises(AndonError) as e:
        pull(project, "orders")
    assert "cannot connect to the database" in e.value.message
    assert "not-the-password" not in e.value.render()
    assert project.store.landed_files("orders") == []


def test_gc_expires_superseded_snapshots_of_the_temporal_zone(
        make_project: ProjectFactory, cli: Cli) -> None:
    import time

    from andon.gc import collect

    root = make_project({**PIPE, "andon.yaml": _yaml("""
kind: database
url: sqlite:///shop.db
table: orders
keep_snapshots: 1h
columns: {id: bigint, amount: double}
""")})
    _sqlite(root, [(1, 1.0)], fresh=True)
    first = pull(andon.Project.load(root), "orders")
    _sqlite(root, [(2, 2.0)])
    second = pull(andon.Project.load(root), "orders")
    assert cli("run", "-p", root, "-q")[0] == 0
    project = andon.Project.load(root)
    assert collect(project, now=time.time()).snapshots == 0  # not an hour old yet
    report = collect(project, now=time.time() + 7200)
    assert report.snapshots == 1  # the superseded one; the one the source reads stays
    rows = {r["sha256"]: r for r in project.store.landed_files("orders")}
    assert rows[first["sha256"]]["withdrawn_by"] == "andon gc"
    assert not (root / ".andon/landing" / rows[first["sha256"]]["landed_path"]).exists()
    assert (root / ".andon/landing" / rows[second["sha256"]]["landed_path"]).exists()
    assert cli("run", "-p", root, "-q")[0] == 0
    assert _total(root) == (2, 3.0)
