"""The Spark engine (``engine: spark``): a differential corpus (the flights example with an
incremental second month, and a fixture project of SQL constructs) built on DuckDB and on
Spark local mode, compared row for row with the same check verdicts; the engine interface's
behaviour; and plan-time refusal of SQL Spark cannot run. One SparkSession (one JVM) serves
the whole module. Needs PySpark and Java 17+ (skipped without them, required under CI)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlglot import exp

from andon.engines import InvalidInput, UnknownObject, create
from andon.engines.spark_sql import check_sql, to_spark
from andon.environments import env_tables
from andon.project import Project
from tests.conftest import IN_CI
from tests.enginekit import build_flights_pair, cli, make, prod_tables, rows_of, with_settings

SETTINGS = "\nengine: spark\nengine_options:\n  master: local[2]\n"


def _java_ok() -> bool:
    try:
        return subprocess.run(["java", "-version"], capture_output=True, timeout=60
                              ).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module", autouse=True)
def spark_available() -> None:
    missing = ("pyspark is not installed (pip install 'andon[spark]')"
               if importlib.util.find_spec("pyspark") is None
               else None if _java_ok() else "Java 17+ is not installed (Spark needs it)")
    if missing:
        if IN_CI:
            pytest.fail(f"{missing}, and CI requires the Spark engine's tests")
        pytest.skip(missing)


def on_spark(root: Path) -> Path:
    return with_settings(root, SETTINGS)


def on_spark_unprofiled(root: Path) -> Path:
    """Spark without profiles: each costs Spark jobs of its own, and the fixture project
    compares profiles between the engines already."""
    return with_settings(root, SETTINGS + "profile: none\n")


# comparing results ---------------------------------------------------------------------------


# Spark's AVG of a DECIMAL keeps 4 more digits and rounds half up, DuckDB's is a DOUBLE:
# ``round(avg(CASE ... THEN 1.0 ...), 4)`` may differ by one unit in the 4th place
TOLERANCE = 1.5e-4


def same_rows(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> bool:
    if len(got) != len(want):
        return False
    for a, b in zip(got, want, strict=True):
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=TOLERANCE):
                    return False
            elif x != y:
                return False
    return True


def verdicts(root: Path) -> dict[tuple[int, str], tuple[str, int | None]]:
    """Every run's check results: (run, check) → (status, failing rows)."""
    store = Project.load(root).reader
    out = {}
    for run in store.runs(limit=10):
        for r in store.checks.of_run(run["id"]):
            out[(int(run["id"]), r.check_name)] = (r.status, r.failing)
    return out


def assert_same(duck: Path, spark: Path) -> None:
    expected, got = prod_tables(duck), prod_tables(spark)
    assert set(got) == set(expected)
    for name, table in expected.items():
        assert got[name].column_names == table.column_names, name
        assert got[name].num_rows == table.num_rows, name
        mine, theirs = rows_of(got[name]), rows_of(table)
        assert same_rows(mine, theirs), (name, [(a, b) for a, b in zip(mine, theirs,
                                                                      strict=True) if a != b][:3])
    assert verdicts(spark) == verdicts(duck)


# the differential corpus ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def flights_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The flights example on DuckDB and on Spark: January, then July arriving (the
    incremental steps build on their previous artifacts)."""
    return build_flights_pair(tmp_path_factory.mktemp("sparkflights"), on_spark_unprofiled)


def test_the_flights_example_equals_duckdb_row_for_row(flights_pair: tuple[Path, Path]
                                                       ) -> None:
    duck, spark = flights_pair
    assert_same(duck, spark)
    row = env_tables(Project.load(spark), "prod")["flights"]
    assert row["meta"].get("incremental_from"), "the second run built incrementally"
    assert row["format"] == "parquet"


FILES = {
    "andon.yaml": """
        name: sparkfix
        sources:
          orders:
            path: incoming/orders*.csv
            columns:
              id: {type: integer, required: true}
              customer: string
              amount: double
              placed: timestamp
              day: date
    """,
    "incoming/orders1.csv": """
        id,customer,amount,placed,day
        1,ann,10.5,2024-01-01 10:00:00,2024-01-01
        2,bob,,2024-01-02 11:30:00,2024-01-02
        3,"o'neil",7.25,2024-01-02 12:00:00,2024-01-02
        4,ann,3,2024-02-01 09:00:00,2024-02-01
        5,cy,-1,2024-02-03 23:59:59,2024-02-03
    """,
    "pipelines/p/by_customer.sql": """
        /* ---
        checks:
          - {type: not_null, column: customer}
          - {type: unique, columns: [customer]}
          - {type: between, column: total, min: 0, max: 1000, severity: warn}
          - {type: regex, column: customer, pattern: "[a-z' ]+"}
          - {type: accepted_values, column: customer, values: [ann, bob, cy], severity: warn}
        --- */
        SELECT customer, count(*) AS orders, coalesce(sum(amount), 0) AS total,
               count(*) FILTER (WHERE amount > 5) AS big,
               min(placed) AS first_at, strftime(max(placed), '%Y-%m') AS last_month,
               list_value(min(id), max(id)) AS ids
        FROM orders
        GROUP BY ALL
    """,
    "pipelines/p/ranked.sql": """
        /* ---
        checks:
          - {type: unique, columns: [customer, month]}
          - {type: expression, expr: "amount_rank >= 1"}
        --- */
        SELECT customer, date_trunc('month', day) AS month, amount,
               row_number() OVER (PARTITION BY customer ORDER BY amount DESC NULLS LAST)
                   AS amount_rank,
               upper(left(customer, 1)) || lower(substr(customer, 2)) AS proper,
               id // 2 AS half, round(amount / 3, 2) AS third,
               CASE WHEN regexp_full_match(customer, '[a-z]+') THEN 'plain' ELSE 'odd' END
                   AS kind,
               placed + INTERVAL 1 HOUR AS later,
               make_date(2024, 1, id) AS made,
               coalesce(amount, 0)::INTEGER AS whole
        FROM orders
        QUALIFY row_number() OVER (PARTITION BY customer, date_trunc('month', day)
                                   ORDER BY id) = 1
    """,
    "pipelines/p/joined.sql": """
        SELECT r.customer, r.month, b.total, b.orders
        FROM ranked AS r
        JOIN by_customer AS b USING (customer)
        WHERE r.amount IS NOT NULL OR b.orders > 1
    """,
}


def test_a_fixture_project_equals_duckdb(tmp_path: Path) -> None:
    duck = make(tmp_path, FILES)
    spark = on_spark(make(tmp_path, FILES))
    assert cli("run", "--project", duck) == 0
    assert cli("run", "--project", spark) == 0
    assert_same(duck, spark)
    for table in ("by_customer", "ranked"):
        profiles = [Project.load(root).reader.checks.profile(
            env_tables(Project.load(root), "prod")[table]["fingerprint"])
            for root in (duck, spark)]
        assert profiles[0] is not None and profiles[1] is not None
        assert profiles[1].rows == profiles[0].rows, table
        assert set(profiles[1].profile) == set(profiles[0].profile), table
    assert prod_tables(spark)["by_customer"].column("ids").to_pylist()[0] in ([1, 4], [2, 2],
                                                                        [3, 3], [5, 5])


# plan time: what Spark cannot run is refused before any work ---------------------------------


def test_what_cannot_be_transpiled_is_named_with_its_word() -> None:
    assert check_sql("SELECT a, list_value(a) FROM t") is None
    construct, word = check_sql("SELECT a,\n  epoch_ns(b) AS n FROM t") or ("", "")
    assert "epoch_ns" in construct and word.lower() == "epoch_ns"
    assert check_sql("SELECT timezone('UTC', b) FROM t") is not None
    assert "RLIKE" in to_spark("SELECT regexp_full_match(a, 'x') FROM t")


def test_sql_spark_cannot_run_fails_at_plan_time(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    files = {**FILES, "pipelines/p/odd.sql": "SELECT id,\n    epoch_ns(placed) AS ns\n"
                                             "FROM orders\n"}
    root = on_spark(make(tmp_path, files))
    capsys.readouterr()
    assert cli("plan", "--project", root) != 0
    err = capsys.readouterr().err
    assert "odd.sql" in err and ":2" in err and "epoch_ns" in err and "spark" in err
    assert cli("run", "--project", root) != 0
    warehouse = root / ".andon/warehouse"
    assert not list(warehouse.rglob("manifest.json")) if warehouse.exists() else True


# the engine interface --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    e = create("spark", master="local[2]")
    yield e
    e.close()


def test_errors_come_out_as_the_interfaces_kinds(engine: Any) -> None:
    with pytest.raises(InvalidInput):
        engine.cursor().execute("SELEC 1")
    with pytest.raises(UnknownObject):
        engine.cursor().execute("SELECT * FROM no_such_table").fetchall()
    with pytest.raises(UnknownObject):
        engine.cursor().execute("SELECT no_such_column FROM (SELECT 1 AS a) AS t")
    with pytest.raises(InvalidInput):
        engine.cursor().execute("SELECT CAST('x' AS INTEGER)").fetchall()


def test_materialize_schema_and_read_arrow_round_trip(engine: Any, tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"a": [1, 2, 3], "b": ["x", None, "z"],
                             "t": [dt.datetime(2024, 1, 1, 10)] * 3}), src)
    out = tmp_path / "part-0.parquet"
    query = exp.select("a", "b", "t").from_(engine.scan([src])).where("a > 1")
    assert engine.materialize(query, out) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "part-0.parquet"]
    assert engine.schema([out]) == (("a", "BIGINT"), ("b", "VARCHAR"), ("t", "TIMESTAMP"))
    assert engine.read_arrow([out]).column("a").to_pylist() == [2, 3]
    empty = tmp_path / "empty.parquet"
    assert engine.materialize(exp.select("a").from_(engine.scan([src])).where("a > 9"),
                              empty) == 0
    assert pq.read_schema(empty).names == ["a"]
    assert engine.describe(query) == (("a", "BIGINT"), ("b", "VARCHAR"), ("t", "TIMESTAMP"))
    sample = engine.scan_rows([src], [(str(src), 1, 2)])
    rows = engine.cursor().execute(exp.select("a").from_(sample)).fetchall()
    assert sorted(rows) == [(2,), (3,)]


def test_an_unknown_option_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="did you mean 'master'"):
        create("spark", mastr="local[1]")
    with pytest.raises(InvalidInput, match="conf"):
        create("spark", conf="spark.executor.memory=1g")


def test_a_result_of_several_tasks_becomes_one_file(engine: Any, tmp_path: Path) -> None:
    engine.spark.range(0, 3000, 1, 3).selectExpr(
        "id", "CAST(id AS STRING) AS s", "CAST(NULL AS DOUBLE) AS d",
        "array(id, id + 1) AS l").createOrReplaceTempView("_test_three_tasks")
    out = tmp_path / "part-0.parquet"
    assert engine.materialize("SELECT * FROM _test_three_tasks WHERE id % 2 = 0", out) == 1500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-0.parquet"]
    assert pq.ParquetFile(out).metadata.num_row_groups >= 2  # the tasks' parts, joined
    assert engine.schema([out]) == (("id", "BIGINT"), ("s", "VARCHAR"), ("d", "DOUBLE"),
                                    ("l", "BIGINT[]"))
    table = engine.read_arrow([out])
    assert sorted(table.column("id").to_pylist()) == list(range(0, 3000, 2))
    assert table.column("l").to_pylist()[0][1] == table.column("id").to_pylist()[0] + 1
    count = engine.cursor().execute(exp.select("count(*)").from_(engine.scan([out])))
    assert count.fetchall() == [(1500,)]
