"""Database sources (kind: database): SQLite, PostgreSQL and MariaDB, incremental by a cursor
column, each pull landed as a snapshot file. The suite reads with the databases' Python
drivers (andon.engines.dbread); the tests marked ``scanner`` read with DuckDB's scanner
extensions (pip install 'andon[databases]'), and compare both readers' snapshots."""

from __future__ import annotations

import datetime
import os
import sqlite3
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import andon
from andon.errors import AndonError
from andon.secrets import set_secret
from andon.sources.pull import pull
from tests.conftest import IN_CI, Cli, ProjectFactory, unprotect

PIPE = {"pipelines/p/total.sql": "SELECT count(*) AS n, sum(amount) AS s FROM orders\n"}
# the readers each database test runs with: the driver always, the scanner when marked
READERS = ["driver", pytest.param("scanner", marks=pytest.mark.scanner)]


def use_reader(reader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read with ``reader``; the scanner must load (it fails under CI, skips elsewhere)."""
    if reader == "scanner":
        import duckdb

        from andon.engines.dbscan import _load_local

        con = duckdb.connect()
        why = [_load_local(con, e, f"{e}_scanner") for e in ("postgres", "mysql", "sqlite")]
        con.close()
        missing = [w for w in why if w is not None]
        if missing:
            msg = f"DuckDB's scanner extensions do not load{missing[0]}: " \
                  "pip install 'andon[databases]'"
            if IN_CI:
                pytest.fail(msg)
            pytest.skip(msg)
    monkeypatch.setenv("ANDON_DB_READER", reader)


@pytest.fixture(autouse=True)
def _driver_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANDON_DB_READER", "driver")


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


@pytest.mark.parametrize("reader", READERS)
def test_sqlite_incremental_pulls_only_rows_past_the_cursor(
        make_project: ProjectFactory, cli: Cli, reader: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    use_reader(reader, monkeypatch)
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
    used = "duckdb sqlite scanner" if reader == "scanner" else "sqlite3"
    assert f'"reader": "{used}"' in out  # which path read it
    assert cli("run", "-p", root, "-q", "--no-pull")[0] == 0
    assert _total(root) == (2, 3.0)
    # nothing new: no snapshot lands, the cursor stays
    again = pull(andon.Project.load(root), "orders")
    assert (again["landed"], again["rows"], again["cursor"]) == (False, 0, 2)
    _sqlite(root, [(3, 4.0)])
    third = pull(andon.Project.load(root), "orders")
    assert (third["landed"], third["rows"], third["cursor"]) == (True, 1, 3)
    assert cli("run", "-p", root, "-q", "--no-pull")[0] == 0
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


@pytest.mark.parametrize("reader", READERS)
def test_postgres_table_incremental_and_query(
        make_project: ProjectFactory, cli: Cli, pg_table: tuple[str, str], reader: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    use_reader(reader, monkeypatch)
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
        conn.execute(f"INSERT INTO {schema}.orders VALUES (1000, 100, now())")
    assert pull(andon.Project.load(root), "orders")["rows"] == 1
    assert cli("run", "-p", root, "-q", "--no-pull")[0] == 0
    assert _total(root) == (6, 1.5 * 15 + 100)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {schema}.orders WHERE id = 1000")
    query = make_project({**PIPE, "andon.yaml": _yaml(f"""
kind: database
url: {url}
query: SELECT id, amount FROM {schema}.orders WHERE id % 2 = 0
columns: {{id: bigint, amount: double}}
""")})
    assert pull(andon.Project.load(query), "orders")["rows"] == 2  # ids 2 and 4


@pytest.mark.parametrize("reader", READERS)
def test_postgres_down_is_a_clear_error_and_changes_nothing(
        make_project: ProjectFactory, cli: Cli, reader: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    use_reader(reader, monkeypatch)
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
    # andon run pulls first: the run fails on it, before building anything
    code, _, err = cli("run", "-p", root, "-q")
    assert code != 0 and "cannot connect to the database" in err
    assert store.landed_files("orders") == []


@pytest.fixture(scope="module")
def mysql_table() -> Iterator[str]:
    url = _need(MYSQL_URL, "ANDON_TEST_MYSQL_URL")
    table = f"andon_src_{uuid.uuid4().hex[:8]}"
    _mysql(url, f"CREATE TABLE {table} (id BIGINT, amount DOUBLE)",
           f"INSERT INTO {table} VALUES (1, 2.5), (2, 3.5)")
    yield table
    _mysql(url, f"DROP TABLE {table}")


def _mysql(url: str, *statements: str) -> None:
    from urllib.parse import urlsplit

    import pymysql

    parts = urlsplit(url)
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                           user=parts.username or "", database=parts.path.lstrip("/"),
                           autocommit=True)
    with conn, conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)


@pytest.mark.parametrize("reader", READERS)
def test_mariadb_table_and_a_wrong_password(
        make_project: ProjectFactory, cli: Cli, mysql_table: str, reader: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    use_reader(reader, monkeypatch)
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


# the types of a snapshot: the driver's are the scanner's -----------------------------------

TS = datetime.datetime(2024, 1, 2, 3, 4, 5, 123456)
TZ = datetime.datetime(2024, 1, 2, 1, 4, 5, tzinfo=datetime.UTC)  # written as 03:04:05+02
EXPECTED = {  # kind: (DDL, the row with values, the snapshot's DuckDB types, its values)
    "postgres": (
        "CREATE TABLE {t} (id int8, i2 int2, i4 int4, d numeric(10,2), n numeric, f float8, "
        "s text, c char(3), b boolean, dt date, ts timestamp, tz timestamptz)",
        "INSERT INTO {t} VALUES (1, 2, 3, 12.34, 0.5, 2.5, 'héllo', 'ab', true, "
        "'2024-01-02', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05+02'), (2, NULL, "
        "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        ["BIGINT", "SMALLINT", "INTEGER", "DECIMAL(10,2)", "DOUBLE", "DOUBLE", "VARCHAR",
         "VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"],
        (1, 2, 3, Decimal("12.34"), 0.5, 2.5, "héllo", "ab", True,
         datetime.date(2024, 1, 2), TS, TZ)),
    "mysql": (
        "CREATE TABLE {t} (id bigint, i int, u int unsigned, d decimal(10,2), f double, "
        "s varchar(20), b tinyint(1), dt date, ts datetime(6), tz timestamp(6) NULL)",
        "INSERT INTO {t} VALUES (1, -2, 3, 12.34, 2.5, 'héllo', 1, '2024-01-02', "
        "'2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123456'), (2, NULL, NULL, NULL, "
        "NULL, NULL, NULL, NULL, NULL, NULL)",
        ["BIGINT", "INTEGER", "UINTEGER", "DECIMAL(10,2)", "DOUBLE", "VARCHAR", "BOOLEAN",
         "DATE", "TIMESTAMP", "TIMESTAMP"],
        (1, -2, 3, Decimal("12.34"), 2.5, "héllo", True, datetime.date(2024, 1, 2), TS, TS)),
    "sqlite": (
        "CREATE TABLE {t} (id INTEGER, d NUMERIC, f REAL, s TEXT, b BOOLEAN, dt DATE, "
        "ts TIMESTAMP)",
        "INSERT INTO {t} VALUES (1, 12.5, 2.5, 'héllo', 1, '2024-01-02', "
        "'2024-01-02 03:04:05.123456'), (2, NULL, NULL, NULL, NULL, NULL, NULL)",
        ["BIGINT", "DOUBLE", "DOUBLE", "VARCHAR", "BIGINT", "DATE", "TIMESTAMP"],
        (1, 12.5, 2.5, "héllo", 1, datetime.date(2024, 1, 2), TS)),
}


@pytest.fixture(scope="module", params=["postgres", "mysql", "sqlite"])
def typed_table(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[str, str, str]]:
    """(kind, url, table) of a table holding every type of EXPECTED[kind]."""
    kind: str = request.param
    create, insert, _, _ = EXPECTED[kind]
    name = f"andon_types_{uuid.uuid4().hex[:8]}"
    if kind == "sqlite":
        path = tmp_path_factory.mktemp("types") / "types.db"
        con = sqlite3.connect(path)
        con.execute(create.format(t=name))
        con.execute(insert.format(t=name))
        con.commit()
        con.close()
        yield kind, f"sqlite:///{path}", name
    elif kind == "postgres":
        url = _need(PG_URL, "ANDON_TEST_POSTGRES_URL")
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(create.format(t=name))
            conn.execute(insert.format(t=name))
        yield kind, url, name
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {name}")
    else:
        url = _need(MYSQL_URL, "ANDON_TEST_MYSQL_URL")
        _mysql(url, create.format(t=name), insert.format(t=name))
        yield kind, url, name
        _mysql(url, f"DROP TABLE {name}")


def _snapshot(url: str, table: str, reader: str, out: Path) -> tuple[list[str], list[Any]]:
    from andon.engines.dbscan import copy_to_parquet

    copied = copy_to_parquet(url, out, source="types", table=table, cursor="id",
                             reader=reader)
    assert copied.rows == 2 and copied.cursor == 2
    return _snapshot_of(url, table, out)


def _snapshot_of(url: str, table: str, out: Path) -> tuple[list[str], list[Any]]:
    import duckdb

    if not out.exists():
        from andon.engines.dbscan import copy_to_parquet

        copy_to_parquet(url, out, source="types", table=table, reader="driver")
    con = duckdb.connect()
    types = [r[1] for r in con.execute(f"DESCRIBE SELECT * FROM '{out}'").fetchall()]
    rows = con.execute(f"SELECT * FROM '{out}' ORDER BY id").fetchall()
    con.close()
    return types, rows


def test_the_driver_reads_the_scanners_types(typed_table: tuple[str, str, str],
                                             tmp_path: Path) -> None:
    kind, url, table = typed_table
    _, _, types, values = EXPECTED[kind]
    got_types, rows = _snapshot(url, table, "driver", tmp_path / "d.parquet")
    assert got_types == types
    assert rows[0] == values
    assert rows[1] == (2,) + (None,) * (len(types) - 1)  # nulls stay nulls


@pytest.mark.scanner
def test_driver_and_scanner_write_the_same_snapshot(
        typed_table: tuple[str, str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    use_reader("scanner", monkeypatch)
    _, url, table = typed_table
    assert _snapshot(url, table, "scanner", tmp_path / "s.parquet") == \
        _snapshot(url, table, "driver", tmp_path / "d.parquet")


def test_the_driver_streams_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    """Never the whole table in memory: the rows come BATCH at a time."""
    from andon.engines import dbread

    db = tmp_path / "big.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER, s TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"s{i}") for i in range(25)])
    con.commit()
    con.close()
    monkeypatch.setattr(dbread, "BATCH", 10)
    rows = dbread.read("sqlite", "", str(db), "SELECT * FROM t ORDER BY id", None)
    sizes = [b.num_rows for b in rows.batches]
    assert sizes == [10, 10, 5]


# andon run pulls first ---------------------------------------------------------------------

def test_run_pulls_new_rows_first_and_plan_only_says_so(
        make_project: ProjectFactory, cli: Cli, pg_table: tuple[str, str]) -> None:
    url, schema = pg_table
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.live AS SELECT * FROM {schema}.orders "
                     "WHERE id <= 5")
    root = make_project({**PIPE, "andon.yaml": _yaml(f"""
kind: database
url: {url}
table: {schema}.live
cursor: id
columns: {{id: bigint, amount: double}}
""")})
    code, out, err = cli("run", "-p", root)
    assert code == 0, err
    assert "pulled orders: 5 new row(s), landed (read by psycopg)" in out
    assert _total(root) == (5, 1.5 * 15)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {schema}.live VALUES (6, 10, now()), (7, 20, now())")
    # plan and a dry run say a pull would happen, and pull nothing
    code, out, _ = cli("plan", "-p", root)
    assert code == 0 and "andon run pulls first (not done here): orders" in out
    code, out, _ = cli("run", "-p", root, "--dry-run", "--format", "json")
    assert code == 0 and '"pulls": [' in out
    from andon.store.sources import SourceRepository

    assert len(SourceRepository(andon.Project.load(root).store.engine).pulls("orders")) == 1
    assert cli("run", "-p", root, "-q", "--no-pull")[0] == 0
    assert _total(root) == (5, 1.5 * 15)  # not pulled: the new rows are not there yet
    # a scheduled run (the Python API, as the scheduler's) ingests the new rows by itself
    result = andon.run(andon.Project.load(root))
    assert result.ok
    assert _total(root) == (7, 1.5 * 15 + 30)


def test_postgres_types_outside_csv_stream_through_a_server_side_cursor(
        pg_table: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bytea and arrays do not go through COPY's CSV: a server-side cursor, BATCH rows at a
    time, reads them into the scanner's BLOB and INTEGER[]."""
    import psycopg

    from andon.engines import dbread

    url, schema = pg_table
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.blobs AS SELECT g AS id, int4send(g) AS b, "
                     "ARRAY[g, g + 1] AS a FROM generate_series(1, 25) g")
    monkeypatch.setattr(dbread, "BATCH", 10)
    rows = dbread.read("postgres", url, "", f"SELECT * FROM {schema}.blobs ORDER BY id", None)
    assert [b.num_rows for b in rows.batches] == [10, 10, 5]
    types, got = _snapshot_of(url, f"{schema}.blobs", tmp_path / "b.parquet")
    assert types == ["INTEGER", "BLOB", "INTEGER[]"]
    assert got[0] == (1, b"\x00\x00\x00\x01", [1, 2])
