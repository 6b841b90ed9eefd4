"""The PostgreSQL engine (``engine: postgresql``): the engine interface's behaviour on a real
server, the flights example and a fixture project run there with results equal to DuckDB's
row for row, environments as schemas of views switched by promotion, gc of artifact tables,
and plan-time refusal of SQL PostgreSQL cannot run. Needs ANDON_TEST_POSTGRES_URL (skipped
without it, required under CI); everything lives in a database of this module, dropped at
the end."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlglot import exp

from andon.engines import InvalidInput, UnknownObject, create
from andon.engines.postgresql import PostgresEngine, check_sql, to_postgres
from andon.environments import env_tables
from andon.project import Project
from tests.apikit import served
from tests.conftest import IN_CI, ProjectFactory, unprotect
from tests.enginekit import build_flights_pair, cli, make, prod_tables, sorted_rows, with_settings

pytestmark = pytest.mark.postgres
PREFIX = "pge"  # schemas of this module: pge_<case>, pge_<case>_<environment>


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A database of this module's own, dropped at the end."""
    base = os.environ.get("ANDON_TEST_POSTGRES_URL")
    if not base:
        if IN_CI:
            pytest.fail("ANDON_TEST_POSTGRES_URL is not set, and CI requires PostgreSQL tests")
        pytest.skip("set ANDON_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1/postgres)")
    name = f"andon_pge_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as e:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {base} is not reachable: {e}")
        pytest.skip(f"PostgreSQL at {base} is not reachable: {e}")
    yield f"{base.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def on_postgres(root: Path, url: str, schema: str, *, secret: str | None = None) -> Path:
    """``engine: postgresql`` with the URL in andon.yaml, or in an andon secret."""
    where = f"url_secret: {secret}" if secret else f"url: {url}"
    return with_settings(root, f"engine: postgresql\nengine_options:\n  {where}\n"
                               f"  schema: {schema}")


# comparing results ---------------------------------------------------------------------------


def view_columns(url: str, view: str) -> list[str]:
    """The columns of a view (``"schema"."name"``), in order."""
    return [r[0] for r in query(url, f"SELECT attname FROM pg_attribute WHERE attrelid = "
                                     f"'{view}'::regclass AND attnum > 0 ORDER BY attnum")]


def equal_to_duckdb(url: str, duck: Path, schema: str, tmp: Path) -> None:
    """Every table of prod built by DuckDB equals the view of PostgreSQL's prod: same
    columns, same rows."""
    expected = prod_tables(duck)
    assert set(expected) == {r[0] for r in query(
        url, f"SELECT viewname FROM pg_views WHERE schemaname = '{schema}'")}
    for name, table in expected.items():
        view = f'"{schema}"."{name}"'
        assert view_columns(url, view) == table.column_names, name
        assert query(url, f"SELECT count(*) FROM {view}")[0][0] == table.num_rows, name
        assert differing_rows(url, table, view, tmp) == (0, 0), name


# the engine interface ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[PostgresEngine]:
    e = create("postgresql", url=pg_url, schema=f"{PREFIX}_unit")
    assert isinstance(e, PostgresEngine)
    yield e
    e.close()


def test_errors_come_out_as_the_interfaces_kinds(engine: PostgresEngine) -> None:
    with pytest.raises(InvalidInput):
        engine.cursor().execute("SELEC 1")
    with pytest.raises(UnknownObject):
        engine.cursor().execute("SELECT * FROM no_such_table")
    with pytest.raises(UnknownObject):
        engine.cursor().execute("SELECT no_such_column FROM (SELECT 1 AS a) AS t")
    with pytest.raises(InvalidInput):
        engine.cursor().execute("SELECT CAST('x' AS INTEGER)")


def test_an_interrupted_query_is_interrupted(engine: PostgresEngine) -> None:
    from andon.engines import Interrupted

    session = engine.session()
    caught: list[BaseException] = []

    def long_query() -> None:
        try:
            session.execute("SELECT pg_sleep(30)")
        except BaseException as e:
            caught.append(e)

    t = threading.Thread(target=long_query)
    t.start()
    time.sleep(0.5)
    engine.interrupt()
    t.join(10)
    assert not t.is_alive() and isinstance(caught[0], Interrupted)


def test_materialize_schema_and_read_arrow_round_trip(engine: PostgresEngine,
                                                       tmp_path: Path) -> None:
    arrow = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", None, ""],
                      "at": pa.array([dt.datetime(2024, 1, 1, 12), None,
                                      dt.datetime(2024, 3, 1)], pa.timestamp("us")),
                      "x": [1.5, None, -2.0], "ok": [True, False, None]})
    src = tmp_path / "src.pgtable"
    assert engine.write_arrow(arrow, src) == 3
    out = tmp_path / "out.pgtable"
    q = exp.select("*").from_(engine.scan([src])).where(exp.column("id").neq(2))
    assert engine.materialize(q, out) == 2
    assert engine.schema([out]) == (("id", "BIGINT"), ("name", "VARCHAR"),
                                    ("at", "TIMESTAMP"), ("x", "DOUBLE"), ("ok", "BOOLEAN"))
    back = engine.read_arrow([out])
    assert back.column("name").to_pylist() == ["a", ""]  # "" stays text, NULL stays NULL
    assert back.column("ok").to_pylist() == [True, None]
    assert engine.describe(exp.select(exp.alias_(exp.column("id") * 2, "twice")).from_(
        engine.scan([out]))) == (("twice", "BIGINT"),)
    # a Parquet artifact (a landed source) is loaded into a table once, then read from it
    parquet = tmp_path / "part.parquet"
    pq.write_table(arrow, parquet)
    first = engine.table_of(parquet)
    assert first == engine.table_of(parquet) and first.split(".")[1].startswith("p_")
    assert engine.cursor().execute(exp.select(exp.Count(this=exp.Star())).from_(
        engine.scan([parquet, src]))).fetchone() == (6,)


def test_a_profile_samples_a_large_table_spread_through_it(engine: PostgresEngine,
                                                           tmp_path: Path) -> None:
    from andon.checks.profile import SAMPLE_ROWS, sampled_scan

    n = SAMPLE_ROWS * 3
    big = tmp_path / "big.pgtable"
    engine.write_arrow(pa.table({"id": pa.array(range(n), pa.int64())}), big)
    ids = exp.column("id")
    count, low, high = engine.cursor().execute(exp.select(
        exp.Count(this=exp.Star()), exp.Min(this=ids), exp.Max(this=ids.copy())).from_(
        sampled_scan(engine, [str(big)]))).fetchone() or (0, 0, 0)
    assert count == SAMPLE_ROWS and low == 0 and high > n * 0.9


def test_duckdb_sql_is_transpiled_and_what_cannot_be_is_named() -> None:
    pg = to_postgres("SELECT a // 2 AS h, make_date(y, m, d) AS day, regexp_full_match(s, "
                     "'[A-Z]+') AS up, count(*) AS n FROM t GROUP BY ALL")
    assert "DIV(" in pg and "MAKE_DATE(" in pg and "~" in pg and "GROUP BY 1, 2, 3" in pg
    assert check_sql("SELECT a, b FROM t QUALIFY row_number() OVER () = 1") is None
    found = check_sql("SELECT * EXCLUDE (a) FROM t")
    assert found is not None and "EXCLUDE" in found[0]
    with pytest.raises(InvalidInput, match="EXCLUDE"):
        to_postgres("SELECT * EXCLUDE (a) FROM t")
    # what andon's profiles ask: exact distinct counts, DOUBLE averages, named subqueries
    pg = to_postgres("SELECT approx_count_distinct(a), avg(b), stddev_samp(b) OVER () "
                     "FROM (SELECT 1 AS a, 2 AS b)")
    assert "COUNT(DISTINCT a)" in pg and "CAST(AVG(b) AS DOUBLE PRECISION)" in pg
    assert "CAST(STDDEV_SAMP(b) OVER () AS DOUBLE PRECISION)" in pg and ") AS _andon_" in pg
    built = exp.select(exp.func("quantile_cont", exp.column("b"), exp.Array(
        expressions=[exp.Literal.number(0.5)]))).from_("t")  # a call built by name
    assert "PERCENTILE_CONT(ARRAY[0.5]) WITHIN GROUP (ORDER BY b)" in to_postgres(built)


def test_a_missing_url_or_an_unknown_option_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="engine_options"):
        create("postgresql")
    with pytest.raises(InvalidInput, match="did you mean 'schema'"):
        create("postgresql", url="postgresql://x@127.0.0.1/x", shema="a")


# a fixture project ---------------------------------------------------------------------------

FILES = {
    "andon.yaml": """
        name: pgfix
        retention: 0s
        sources:
          orders:
            path: incoming/orders*.csv
            columns:
              id: {type: integer, required: true}
              customer: string
              amount: double
              placed: timestamp
    """,
    "incoming/orders1.csv": """
        id,customer,amount,placed
        1,ann,10.5,2024-01-01 10:00:00
        2,bob,,2024-01-02 11:30:00
        3,"o'neil",7.25,2024-01-02 12:00:00
        4,ann,3,2024-02-01 09:00:00
    """,
    "pipelines/p/by_customer.sql": """
        /* ---
        checks:
          - {type: not_null, column: customer}
          - {type: unique, columns: [customer]}
          - {type: between, column: total, min: 0, max: 1000}
          - {type: regex, column: customer, pattern: "[a-z' ]+"}
        --- */
        SELECT customer, count(*) AS orders, coalesce(sum(amount), 0) AS total,
               min(placed) AS first_at, strftime(max(placed), '%Y-%m') AS last_month
        FROM orders
        GROUP BY ALL
    """,
    "pipelines/p/scored.py": """
        import pyarrow as pa
        import andon

        @andon.step
        def scored(by_customer: pa.Table) -> pa.Table:
            totals = by_customer.column("total").to_pylist()
            return by_customer.append_column("big", pa.array([t > 5 for t in totals]))
    """,
}


@pytest.fixture(scope="module")
def fixture_pair(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The fixture project built on DuckDB and on PostgreSQL; a run profiles only the tables
    with checks (``andon profile`` computes the others' profiles when asked)."""
    base = tmp_path_factory.mktemp("pgfix")
    duck = with_settings(make(base, FILES), "profile: checked")
    pg = on_postgres(with_settings(make(base, FILES), "profile: checked"), pg_url,
                     f"{PREFIX}_fix")
    for root in (duck, pg):
        assert cli("run", "--project", root) == 0
    return duck, pg


def test_a_fixture_project_equals_duckdb(pg_url: str, fixture_pair: tuple[Path, Path],
                                         tmp_path: Path) -> None:
    duck, pg = fixture_pair
    equal_to_duckdb(pg_url, duck, f"{PREFIX}_fix_prod", tmp_path)
    # the manifests record the tables' rows and DuckDB-spelled schema
    row = env_tables(Project.load(pg), "prod")["by_customer"]
    assert row["format"] == "pgtable" and row["rows"] == 3
    assert [c for c, _ in row["schema"]] == ["customer", "orders", "total", "first_at",
                                             "last_month"]


def andon_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Any:
    """What ``andon ARGS --format json`` prints, parsed (the command must succeed)."""
    capsys.readouterr()
    code = cli(*args, "--format", "json")
    out = capsys.readouterr()
    assert code == 0, (out.err, out.out)
    return json.loads(out.out)


JOINED = ("SELECT o.customer, count(*) AS n, bool_or(s.big) AS big, avg(o.amount) AS mean "
          "FROM orders AS o JOIN scored AS s USING (customer) GROUP BY ALL")


def test_show_query_profile_and_suggest_read_the_engines_tables(
        fixture_pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    duck, pg = fixture_pair
    out: dict[str, dict[str, Any]] = {}
    for name, root in (("duck", duck), ("pg", pg)):
        at = ("--project", root)
        show = andon_json(capsys, "show", "by_customer", *at)
        rows = andon_json(capsys, "query", JOINED, *at)  # a source's Parquet and a table
        # scored has no checks: profiled now, on the engine of the project
        profile = andon_json(capsys, "profile", "scored", *at)
        assert cli("checks", "suggest", "scored", *at) == 0
        out[name] = {"show": show, "rows": sorted_rows([list(r.values()) for r in rows]),
                     "sample": sorted_rows([list(r.values()) for r in show["sample"]]),
                     "profile": profile, "suggested": capsys.readouterr().out}
    duck_out, pg_out = out["duck"], out["pg"]
    assert pg_out["rows"] == duck_out["rows"] and len(pg_out["rows"]) == 3
    assert pg_out["sample"] == duck_out["sample"] and len(pg_out["sample"]) == 3
    for key in ("rows", "schema"):
        assert pg_out["show"][key] == duck_out["show"][key]
    profiles = [{c["column"]: c for c in o["profile"]["columns"]} for o in (pg_out, duck_out)]
    assert pg_out["profile"]["rows"] == 3 and list(profiles[0]) == list(profiles[1])
    for column, mine in profiles[0].items():
        theirs = profiles[1][column]
        for key in ("type", "count", "nulls", "distinct", "min", "max", "pattern", "len_max"):
            assert mine.get(key) == theirs.get(key), (column, key, mine, theirs)
        # values as text: PostgreSQL writes the double 0.0 as '0'
        as_value = float if mine["type"] == "DOUBLE" else str
        assert [[as_value(v), n] for v, n in mine.get("top_values", [])] == \
            [[as_value(v), n] for v, n in theirs.get("top_values", [])], column
        for key in ("mean", "stddev"):
            assert (mine.get(key) is None) == (theirs.get(key) is None), (column, key)
            if theirs.get(key) is not None:
                assert mine[key] == pytest.approx(theirs[key]), (column, key)
    assert "accepted_values" in pg_out["suggested"]
    # the same, but that DuckDB's Parquet footers give a zero minimum as -0.0
    assert pg_out["suggested"] == duck_out["suggested"].replace("-0.0", "0.0")
    # the server's table page reads through the same functions
    with served(Project.load(pg)) as api:
        page = api.get("/api/tables/scored", params={"rows": 2}).json()
    assert page["rows"] == 3 and len(page["sample"]) == 2
    assert page["profile"]["rows"] == 3
    # a query naming no table of the environment says which there are
    capsys.readouterr()
    assert cli("query", "SELECT * FROM scord", "--project", pg) != 0
    assert "scored" in capsys.readouterr().err


def test_an_unreachable_database_is_a_clear_error(
        fixture_pair: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(fixture_pair[1], moved)
    settings = moved / "andon.yaml"
    settings.write_text(re.sub(r"url: .*", "url: postgresql://andon@127.0.0.1:1/nodb",
                               settings.read_text()))
    for args in (("show", "scored"), ("query", "SELECT * FROM scored"),
                 ("checks", "suggest", "scored")):
        capsys.readouterr()
        assert cli(*args, "--project", moved) == 1
        err = capsys.readouterr().err
        assert "cannot connect to PostgreSQL" in err and "Traceback" not in err, err


def test_gc_drops_the_tables_nothing_refers_to(pg_url: str, monkeypatch: pytest.MonkeyPatch,
                                              make_project: ProjectFactory) -> None:
    pg = on_postgres(unprotect(make_project(FILES)), pg_url, f"{PREFIX}_gc",
                     secret="warehouse_db")
    monkeypatch.setattr("sys.stdin", io.StringIO(pg_url))
    assert cli("secrets", "set", "warehouse_db", "--stdin", "--project", pg) == 0
    assert cli("run", "--project", pg) == 0
    old = {r[0] for r in query(pg_url, f"SELECT tablename FROM pg_tables WHERE schemaname = "
                                       f"'{PREFIX}_gc' AND tablename LIKE 'a\\_%'")}
    assert old, "artifact tables are named a_<fingerprint>_<part>"
    # a changed step: its old table is referenced by nothing once gc's retention is over
    step = pg / "pipelines/p/by_customer.sql"
    step.write_text(step.read_text().replace("count(*) AS orders", "count(id) AS orders"))
    assert cli("run", "--project", pg) == 0
    time.sleep(1.1)
    assert cli("gc", "--project", pg) == 0
    now = {r[0] for r in query(pg_url, f"SELECT tablename FROM pg_tables WHERE schemaname = "
                                       f"'{PREFIX}_gc'")}
    assert old - now, "gc dropped the artifact tables nothing refers to"
    view = f'"{PREFIX}_gc_prod"."scored"'
    assert query(pg_url, f"SELECT count(*) FROM {view}") == [(3,)]  # live views still read
    assert view_columns(pg_url, view)[-1] == "big"


def test_sql_postgresql_cannot_run_fails_at_plan_time(pg_url: str, make_project: ProjectFactory,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    files = {**FILES, "pipelines/p/by_customer.sql": "SELECT 1 AS one\n",
             "pipelines/p/scored.py": "",
             "pipelines/p/wide.sql": "SELECT *\n    EXCLUDE (amount)\nFROM orders\n"}
    root = on_postgres(make_project(files), pg_url, f"{PREFIX}_bad")
    capsys.readouterr()
    assert cli("run", "--project", root) != 0
    err = capsys.readouterr().err
    assert "wide.sql" in err and ":2" in err and "EXCLUDE" in err and "postgresql" in err
    built = query(pg_url, f"SELECT count(*) FROM pg_tables WHERE schemaname = '{PREFIX}_bad'")
    assert built == [(0,)]  # refused before any work


# the flights example -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flights_pair(pg_url: str, tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[Path, Path]:
    """The flights example run on DuckDB and on PostgreSQL, with a second month arriving
    (incremental steps build on their previous artifacts)."""
    return build_flights_pair(tmp_path_factory.mktemp("pgflights"),
                              lambda root: on_postgres(root, pg_url, f"{PREFIX}_flights"))


def differing_rows(url: str, expected: pa.Table, view: str, tmp: Path) -> tuple[int, int]:
    """Rows of ``expected`` missing from the view and rows of the view not expected,
    compared in PostgreSQL (EXCEPT ALL both ways; doubles to 6 decimals)."""
    loader = PostgresEngine(url=url, schema=f"{PREFIX}_expected")
    try:
        pointer = tmp / f"{uuid.uuid4().hex}.pgtable"
        loader.write_arrow(expected, pointer)
        mine = loader.table_of(pointer)
    finally:
        loader.close()
    cols = ", ".join(f'round(CAST("{f.name}" AS numeric), 6)'
                     if pa.types.is_floating(f.type) else f'"{f.name}"' for f in expected.schema)
    a = f"SELECT {cols} FROM {mine}"
    b = f"SELECT {cols} FROM {view}"
    missing = query(url, f"SELECT count(*) FROM ({a} EXCEPT ALL {b}) AS d")[0][0]
    extra = query(url, f"SELECT count(*) FROM ({b} EXCEPT ALL {a}) AS d")[0][0]
    return int(missing), int(extra)


def test_the_flights_example_equals_duckdb_row_for_row(
        pg_url: str, flights_pair: tuple[Path, Path], tmp_path: Path) -> None:
    duck, pg = flights_pair
    equal_to_duckdb(pg_url, duck, f"{PREFIX}_flights_prod", tmp_path)
    kpis = env_tables(Project.load(pg), "prod")["flights"]
    assert kpis["meta"].get("incremental_from"), "the second run built incrementally"


def test_promotion_switches_the_views_in_one_transaction(
        pg_url: str, flights_pair: tuple[Path, Path]) -> None:
    _, pg = flights_pair
    prod, dev = f"{PREFIX}_flights_prod", f"{PREFIX}_flights_dev"
    assert cli("env", "create", "dev", "--project", pg) == 0
    step = pg / "pipelines/flights/exploitation/daily_carrier_kpis.sql"
    step.write_text(step.read_text().rstrip().rstrip(";") + "\n")  # same rows, new code
    kpis = step.read_text()
    step.write_text(kpis.replace("SELECT", "SELECT 1 AS version,", 1))
    assert cli("run", "--env", "dev", "--project", pg) == 0
    kpis_of = {e: f'"{e}"."daily_carrier_kpis"' for e in (prod, dev)}
    assert view_columns(pg_url, kpis_of[dev])[0] == "version"
    assert view_columns(pg_url, kpis_of[prod])[0] != "version"
    # a reader inside a transaction holds the views: the switch waits for it, and the
    # reader sees the old set whole until it ends; then the new set, whole
    reader = psycopg.connect(pg_url)
    try:
        reader.execute(f'SELECT count(*) FROM "{prod}"."daily_carrier_kpis"')
        reader.execute(f'SELECT count(*) FROM "{prod}"."flights"')
        done: list[int] = []
        t = threading.Thread(target=lambda: done.append(
            cli("promote", "dev", "--to", "prod", "--project", pg)))
        t.start()
        time.sleep(1.0)
        assert not done, "the switch waits for readers of the old views"
        cur = reader.execute(f'SELECT * FROM "{prod}"."daily_carrier_kpis" LIMIT 1')
        assert next(d.name for d in cur.description or []) != "version"
        reader.commit()
        t.join(60)
        assert done == [0]
    finally:
        reader.close()
    assert view_columns(pg_url, kpis_of[prod])[0] == "version"
    step.write_text(kpis)


def schemas(url: str, like: str) -> set[str]:
    return {r[0] for r in query(url, f"SELECT nspname FROM pg_namespace WHERE nspname "
                                     f"LIKE '{like}'")}


def test_env_create_reset_and_delete_switch_the_views(
        pg_url: str, flights_pair: tuple[Path, Path]) -> None:
    _, pg = flights_pair
    prod, qa = f"{PREFIX}_flights_prod", f"{PREFIX}_flights_qa"

    def count(schema: str) -> int:
        return int(query(pg_url, f'SELECT count(*) FROM "{schema}"."flights"')[0][0])

    assert cli("env", "create", "qa", "--project", pg) == 0
    views = "SELECT viewname FROM pg_views WHERE schemaname = '{}' ORDER BY 1"
    assert query(pg_url, views.format(qa)) == query(pg_url, views.format(prod))
    assert count(qa) == count(prod)
    # back to the first run's commit (January only): the views show it at once
    first = Project.load(pg).reader.envs.first_move("prod")
    assert first is not None and first.to_commit is not None
    assert cli("env", "reset", "qa", "--to", first.to_commit, "--project", pg) == 0
    january = env_tables(Project.load(pg), commit=first.to_commit)["flights"]["rows"]
    assert count(qa) == january < count(prod)
    # andon env diff reads both environments' tables in PostgreSQL
    from andon.diff import diff

    compared = {s["step"]: s for s in diff(Project.load(pg), "qa", "prod")["steps"]}
    assert compared["flights"]["change"] == "data"
    assert compared["flights"]["rows"] == {"qa": january, "prod": count(prod)}
    assert compared["flights"]["data"]
    assert cli("env", "delete", "qa", "--project", pg) == 0
    assert schemas(pg_url, qa) == set(), "a deleted environment's schema is dropped"
    assert cli("env", "create", "blank", "--empty", "--project", pg) == 0
    assert schemas(pg_url, f"{PREFIX}_flights_blank") == set(), "no tables: no schema"
    assert count(prod) > january  # prod untouched
