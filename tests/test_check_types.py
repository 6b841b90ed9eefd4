"""Every check type in the catalog passes when it should and fails when it should, on small
fixture tables built from VALUES or CSV sources."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from andon.checks.registry import BUILTIN as CHECK_TYPES
from tests.conftest import Cli, ProjectFactory

# five rows with one planted fault per column
PEOPLE = """\
SELECT * FROM (VALUES
  (1, 'a', 'EWR', 1.0::DOUBLE, '12345', '(212) 555-1234', 'ann@example.com', '2024-01-31',
   TIMESTAMP '2024-01-01 10:00', TIMESTAMP '2024-01-01 12:00'),
  (2, 'a', 'JFK', 2.0, '54321', '212-555-1234', 'bo.b@example.org', '2024-02-29',
   TIMESTAMP '2024-01-02 10:00', TIMESTAMP '2024-01-02 11:00'),
  (3, 'b', 'LGA', 3.0, '1234', '+1 212 555 1234', 'bad@', '2024-13-01',
   TIMESTAMP '2024-01-03 10:00', TIMESTAMP '2024-01-03 09:00'),
  (4, 'b', 'JFK', 4.0, '00000', '555-1234', 'cy@example.io', '2024-12-01',
   TIMESTAMP '2024-01-04 10:00', TIMESTAMP '2999-01-01 00:00'),
  (5, 'c', NULL, 100.0, NULL, '2125551234', NULL, NULL,
   TIMESTAMP '2024-01-05 10:00', NULL)
) AS v(id, grp, origin, amount, zip, phone, email, day, start_at, end_at)
"""


def project(make_project: ProjectFactory, checks: str, sql: str = PEOPLE,
            extra: dict[str, str] | None = None, config: str = "name: t\n") -> Path:
    header = "/* ---\nchecks:\n" + textwrap.indent(textwrap.dedent(checks).strip("\n"),
                                                    "  ") + "\n--- */\n"
    files = {"andon.yaml": config, "pipelines/p/people.sql": header + sql}
    return make_project({**files, **(extra or {})})


def run(cli: Cli, root: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = cli("run", "-p", root, "--format", "json", *args)
    assert out.strip(), err
    return code, json.loads(out), err


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in result["checks"]}


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["checks"]}


W = "severity: warn"

ROW_AND_AGG_CHECKS = f"""
- {{name: nn_ok, type: not_null, column: id, {W}}}
- {{name: nn_bad, type: not_null, column: origin, {W}}}
- {{name: nn_allowed, type: not_null, column: origin, max_failing: 1, {W}}}
- {{name: uq_ok, type: unique, column: id, {W}}}
- {{name: uq_bad, type: unique, column: grp, {W}}}
- {{name: uq_multi_ok, type: unique, columns: [grp, origin], {W}}}
- {{name: uq_multi_bad, type: unique, columns: [grp], {W}}}
- {{name: av_ok, type: accepted_values, column: origin, values: [EWR, JFK, LGA], {W}}}
- {{name: av_bad, type: accepted_values, column: origin, values: [EWR, JFK], {W}}}
- {{name: rv_ok, type: rejected_values, column: grp, values: [z, ''], {W}}}
- {{name: rv_bad, type: rejected_values, column: grp, values: [c], {W}}}
- {{name: bt_ok, type: between, column: amount, min: 0, max: 100, {W}}}
- {{name: bt_bad, type: between, column: amount, min: 0, max: 10, {W}}}
- {{name: bt_pct_ok, type: between, column: amount, max: 10, max_failing_pct: 20, {W}}}
- {{name: bt_pct_bad, type: between, column: amount, max: 10, max_failing_pct: 10, {W}}}
- {{name: zip_bad, type: regex, column: zip, pattern: us_zip5, {W}}}
- {{name: zip_allowed, type: regex, column: zip, pattern: us_zip5, max_failing: 1, {W}}}
- {{name: phone_bad, type: regex, column: phone, pattern: us_phone, {W}}}
- {{name: email_bad, type: regex, column: email, pattern: email, {W}}}
- {{name: date_bad, type: regex, column: day, pattern: iso_date, {W}}}
- {{name: raw_ok, type: regex, column: grp, pattern: '[a-c]', {W}}}
- {{name: raw_bad, type: regex, column: grp, pattern: '[ab]', {W}}}
- {{name: len_ok, type: length_between, column: zip, min: 4, max: 5, {W}}}
- {{name: len_bad, type: length_between, column: zip, min: 5, max: 5, {W}}}
- {{name: expr_ok, type: expression, expr: 'id > 0', {W}}}
- {{name: expr_bad, type: expression, expr: 'amount < 50', {W}}}
- {{name: to_ok, type: temporal_order, start: start_at, end: end_at, max_failing: 1, {W}}}
- {{name: to_bad, type: temporal_order, start: start_at, end: end_at, {W}}}
- {{name: to_future, type: temporal_order, start: start_at, end: end_at, allow_future: false,
   max_failing: 1, {W}}}
- {{name: rc_ok, type: row_count, min: 5, max: 5, {W}}}
- {{name: rc_bad, type: row_count, min: 6, {W}}}
- {{name: mean_ok, type: mean_between, column: amount, min: 22, max: 22, {W}}}
- {{name: mean_bad, type: mean_between, column: amount, max: 10, {W}}}
- {{name: median_ok, type: median_between, column: amount, min: 3, max: 3, {W}}}
- {{name: median_bad, type: median_between, column: amount, min: 4, {W}}}
- {{name: sd_ok, type: stddev_between, column: amount, min: 43, max: 44, {W}}}
- {{name: sd_bad, type: stddev_between, column: amount, max: 10, {W}}}
- {{name: sum_ok, type: sum_between, column: amount, min: 110, max: 110, {W}}}
- {{name: sum_bad, type: sum_between, column: amount, min: 111, {W}}}
- {{name: q_ok, type: quantile_between, column: amount, q: 0.5, min: 3, max: 3, {W}}}
- {{name: q_bad, type: quantile_between, column: amount, q: 1, max: 99, {W}}}
- {{name: dc_ok, type: distinct_count_between, column: grp, min: 3, max: 3, {W}}}
- {{name: dc_bad, type: distinct_count_between, column: grp, min: 4, {W}}}
- {{name: ns_ok, type: null_share_max, column: origin, max: 0.2, {W}}}
- {{name: ns_bad, type: null_share_max, column: origin, max: 0.1, {W}}}
- {{name: schema_ok, type: schema, expected: {{id: INTEGER, amount: DOUBLE}}, {W}}}
- {{name: schema_bad, type: schema, expected: {{id: VARCHAR, nope: INTEGER}}, {W}}}
- {{name: type_ok, type: type, column: grp, expected: {{type: varchar}}, {W}}}
- {{name: type_bad, type: type, column: id, expected: {{type: BIGINT}}, {W}}}
"""


def test_row_and_aggregate_checks_pass_and_fail(make_project: ProjectFactory, cli: Cli) -> None:
    root = project(make_project, ROW_AND_AGG_CHECKS)
    code, result, err = run(cli, root)
    assert code == 0, err  # all warn: the run succeeds
    got = statuses(result)
    expected = {name.split(",")[0].split(":")[1].strip(): None
                for name in ROW_AND_AGG_CHECKS.split("{name")[1:]}
    assert set(got) == set(expected)
    failing = {n for n, s in got.items() if s != "passed"}
    assert failing == {n for n in got if n.endswith("_bad") or n == "to_future"}, got
    assert {got[n] for n in failing} == {"failed"}
    checks = by_name(result)
    # counts of failing rows, one planted fault each
    assert checks["nn_bad"]["failing"] == 1 and checks["nn_bad"]["metric"] == 1
    assert checks["uq_bad"]["metric"] == 2  # a, b duplicated once each
    assert checks["uq_multi_bad"]["metric"] == 2
    assert checks["av_bad"]["failing"] == 1  # LGA; NULL is not judged
    assert checks["zip_bad"]["failing"] == 1  # 1234; NULL is not judged
    assert checks["phone_bad"]["failing"] == 1  # 555-1234
    assert checks["email_bad"]["failing"] == 1  # bad@
    assert checks["date_bad"]["failing"] == 1  # month 13
    assert checks["raw_bad"]["failing"] == 1
    assert checks["to_bad"]["failing"] == 1  # id 3 ends before it starts; NULL end not judged
    assert checks["to_future"]["failing"] == 2  # and id 4 ends in 2999
    assert checks["bt_pct_bad"]["threshold"] == {"max_failing_pct": 10}
    assert checks["mean_bad"]["metric"] == 22
    assert checks["median_ok"]["metric"] == 3
    assert checks["sum_bad"]["metric"] == 110
    assert checks["q_bad"]["metric"] == 100
    assert checks["dc_bad"]["metric"] == 3
    assert checks["ns_bad"]["metric"] == pytest.approx(0.2)
    assert checks["rc_bad"]["metric"] == 5
    assert "nope missing" in checks["schema_bad"]["message"]
    assert "id is INTEGER, expected VARCHAR" in checks["schema_bad"]["message"]
    assert checks["type_bad"]["message"] == "id is INTEGER, expected BIGINT"
    # samples show the failing rows only
    assert [r["id"] for r in checks["zip_bad"]["sample"]] == [3]
    assert [r["id"] for r in checks["to_future"]["sample"]] == [3, 4]
    assert checks["nn_ok"]["sample"] == []


def test_freshness_on_timestamps_and_dates(make_project: ProjectFactory, cli: Cli) -> None:
    sql = ("SELECT now()::TIMESTAMP - INTERVAL 1 HOUR AS at, current_date - 3 AS day\n"
           "UNION ALL SELECT TIMESTAMP '2020-01-01', DATE '2020-01-01'\n")
    root = project(make_project, f"""
        - {{name: fresh_ok, type: freshness, column: at, max_age: 2h, {W}}}
        - {{name: fresh_bad, type: freshness, column: at, max_age: 30m, {W}}}
        - {{name: day_ok, type: freshness, column: day, max_age: 4d, {W}}}
        - {{name: day_bad, type: freshness, column: day, max_age: 2d, {W}}}
        """, sql=sql)
    code, result, err = run(cli, root)
    assert code == 0, err
    assert statuses(result) == {"fresh_ok": "passed", "fresh_bad": "failed",
                                "day_ok": "passed", "day_bad": "failed"}
    age = by_name(result)["fresh_bad"]["metric"]
    assert 3500 < age < 3700  # seconds since the newest timestamp
    assert by_name(result)["day_bad"]["metric"] == 3 * 86400


def step_sql(rows: list[tuple[int, str, float]]) -> str:
    values = ", ".join(f"({i}, '{c}', {x}::DOUBLE)" for i, c, x in rows)
    return f"SELECT * FROM (VALUES {values}) AS v(id, cat, x)\n"


HISTORY_CHECKS = f"""
- {{name: drift_schema, type: schema_drift, {W}}}
- {{name: drift_schema_allowed, type: schema_drift, max_failing: 1, {W}}}
- {{name: volume, type: volume_change, max_change_pct: 50, {W}}}
- {{name: added, type: rows_added, min: 1, max: 25, {W}}}
- {{name: psi_cat, type: distribution_drift, column: cat, {W}}}
- {{name: psi_num, type: distribution_drift, column: x, bins: 4, {W}}}
- {{name: ks_num, type: distribution_drift, column: x, method: ks, bins: 4, {W}}}
"""


def test_history_checks_compare_with_the_previous_artifact(make_project: ProjectFactory,
                                                          cli: Cli) -> None:
    first = [(i, "a" if i % 2 else "b", float(i)) for i in range(1, 21)]
    root = project(make_project, HISTORY_CHECKS, sql=step_sql(first))
    step = root / "pipelines/p/people.sql"
    code, result, err = run(cli, root)
    assert code == 0, err
    assert cli("env", "create", "dev", "-p", root)[0] == 0  # prod is protected: change in dev
    checks = by_name(result)
    # nothing to compare with yet: recorded as passed, said so
    assert {c["status"] for c in checks.values()} == {"passed"}
    assert "no baseline" in checks["psi_cat"]["message"]
    assert "no previous artifact" in checks["volume"]["message"]
    assert checks["added"]["metric"] == 20 and checks["added"]["status"] == "passed"

    # same distribution, a few more rows: nothing drifts
    similar = [*first, (21, "a", 21.0), (22, "b", 22.0)]
    step.write_text(step.read_text().split("--- */\n")[0] + "--- */\n" + step_sql(similar))
    code, result, err = run(cli, root, "--env", "dev")
    assert code == 0, err
    assert statuses(result) == dict.fromkeys(statuses(result), "passed"), result["checks"]
    assert by_name(result)["added"]["metric"] == 2
    assert by_name(result)["volume"]["metric"] == pytest.approx(10.0)

    # shifted: all 'c', values ten times larger, twice the rows, one more column
    shifted = [(i, "c", float(i) * 10 + 500) for i in range(1, 45)]
    body = step_sql(shifted).replace("SELECT *", "SELECT *, 1 AS extra")
    step.write_text(step.read_text().split("--- */\n")[0] + "--- */\n" + body)
    code, result, err = run(cli, root, "--env", "dev")
    assert code == 0, err
    checks = by_name(result)
    assert statuses(result) == {
        "drift_schema": "failed", "drift_schema_allowed": "passed", "volume": "failed",
        "added": "passed", "psi_cat": "failed", "psi_num": "failed", "ks_num": "failed",
    }
    assert checks["drift_schema"]["message"] == "+extra"
    assert checks["volume"]["metric"] == pytest.approx(100.0)
    assert checks["ks_num"]["metric"] == pytest.approx(1.0)
    assert checks["ks_num"]["threshold"]["method"] == "ks"
    assert checks["psi_cat"]["metric"] > 1

    # 30 rows added at once: outside rows_added [1, 25]
    step.write_text(step.read_text().split("--- */\n")[0] + "--- */\n"
                    + step_sql([(i, "c", 1.0) for i in range(1, 75)]))
    code, result, err = run(cli, root, "--env", "dev")
    assert by_name(result)["added"]["status"] == "failed"
    assert by_name(result)["added"]["metric"] == 30


def two_tables(make_project: ProjectFactory, checks: str, extra: dict[str, str] | None = None
               ) -> Path:
    planes = "SELECT * FROM (VALUES ('N1'), ('N2'), ('N3')) AS v(tailnum)\n"
    flights = ("SELECT * FROM (VALUES (1, 'N1'), (2, 'N2'), (3, 'N9'), (4, NULL), (5, 'N1'))"
               " AS v(id, tailnum)\n")
    header = "/* ---\nchecks:\n" + textwrap.indent(textwrap.dedent(checks).strip("\n"),
                                                    "  ") + "\n--- */\n"
    return make_project({"andon.yaml": "name: t\n", "pipelines/p/planes.sql": planes,
                         "pipelines/p/flights.sql": header + flights, **(extra or {})})


def test_relationship_with_an_allowed_share(make_project: ProjectFactory, cli: Cli) -> None:
    root = two_tables(make_project, f"""
        - {{name: rel_bad, type: relationship, column: tailnum, to: planes.tailnum, {W}}}
        - {{name: rel_share_ok, type: relationship, column: tailnum, to: planes.tailnum,
            max_failing_pct: 25, {W}}}
        - {{name: rel_share_bad, type: relationship, column: tailnum, to: planes.tailnum,
            max_failing_pct: 20, {W}}}
        """)
    code, result, err = run(cli, root)
    assert code == 0, err
    assert statuses(result) == {"rel_bad": "failed", "rel_share_ok": "passed",
                                "rel_share_bad": "failed"}
    bad = by_name(result)["rel_bad"]
    assert bad["failing"] == 1  # N9; NULL is not judged; 1 of 4 values = 25%
    assert "1 of 4 values (25.00%) not found in planes.tailnum" in bad["message"]
    assert bad["sample"] == [{"id": 3, "tailnum": "N9"}]


def test_custom_sql_checks_in_headers_and_files(make_project: ProjectFactory, cli: Cli) -> None:
    root = two_tables(make_project, f"""
        - name: sql_bad
          type: sql
          {W}
          sql: SELECT * FROM {{{{ table }}}} WHERE tailnum = 'N9'
        - name: sql_ok
          type: sql
          {W}
          sql: SELECT * FROM {{{{ table }}}} WHERE id > 100
        - name: sql_allowed
          type: sql
          {W}
          max_failing: 2
          sql: SELECT tailnum FROM {{{{ table }}}} GROUP BY 1 HAVING count(*) > 1
        """, extra={
        "checks/orphans.sql": """
            /* ---
            table: flights
            severity: warn
            description: flights whose plane is unknown
            --- */
            SELECT f.* FROM {{ table }} AS f
            WHERE f.tailnum NOT IN (SELECT tailnum FROM {{ ref('planes') }})
            """,
        "checks/no_dupes.sql": """
            /* ---
            table: planes
            --- */
            SELECT tailnum FROM {{ table }} GROUP BY 1 HAVING count(*) > 1
            """,
    })
    code, result, err = run(cli, root)
    assert code == 0, err
    assert statuses(result) == {"sql_bad": "failed", "sql_ok": "passed", "sql_allowed": "passed",
                                "orphans": "failed", "no_dupes": "passed"}
    assert by_name(result)["sql_bad"]["sample"] == [{"id": 3, "tailnum": "N9"}]
    assert by_name(result)["orphans"]["failing"] == 1
    assert by_name(result)["no_dupes"]["severity"] == "error"


SOURCE_CONFIG = """\
name: t
sources:
  orders:
    path: incoming/*.csv
    max_reject_pct: 50                  # one planted reject in four rows
    columns:
      id: {type: integer, required: true}
      amount: double
  lines:
    path: incoming/*.csv
    columns:
      id: string
      amount: string
"""


def test_balance_with_rejects(make_project: ProjectFactory, cli: Cli) -> None:
    # 'lines' reads every landed line as text; 'orders' rejects the unparsable one
    root = make_project({
        "andon.yaml": SOURCE_CONFIG + f"""\
    checks:
      - {{name: landed_eq_accepted_plus_rejects, type: balance, other: orders,
         plus_rejects: true}}
      - {{name: landed_eq_accepted, type: balance, other: orders, {W}}}
      - {{name: amount_sum, type: balance, expr: 'sum(amount::DOUBLE) - 30', other: orders,
         other_expr: 'sum(amount) + 2', {W}}}
      - {{name: amount_sum_tolerated, type: balance, expr: 'sum(amount::DOUBLE) - 30',
         other: orders, other_expr: 'sum(amount) + 2', tolerance: 2, {W}}}
""",
        "pipelines/p/total.sql": "SELECT sum(amount) AS amount FROM orders\n",
    })
    (root / "incoming").mkdir()
    (root / "incoming/a.csv").write_text("id,amount\n1,10\n2,20\nx,30\n3,\n")
    code, result, err = run(cli, root)
    assert code == 0, err
    assert statuses(result) == {"landed_eq_accepted_plus_rejects": "passed",
                                "landed_eq_accepted": "failed", "amount_sum": "failed",
                                "amount_sum_tolerated": "passed"}
    checks = by_name(result)
    assert checks["landed_eq_accepted"]["metric"] == 1
    assert "4 vs orders: 3" in checks["landed_eq_accepted"]["message"]
    assert checks["amount_sum"]["metric"] == pytest.approx(-2)  # 60 - 30 vs 30 + 2


def test_balance_against_another_environment(make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project({
        "andon.yaml": "name: t\n",
        "pipelines/p/a.sql": f"""
            /* ---
            checks:
              - {{name: same_as_prod, type: balance, other: a, other_env: prod, {W}}}
              - {{name: near_prod, type: balance, other: a, other_env: prod, tolerance: 1,
                 {W}}}
            --- */
            SELECT * FROM range(3)
            """,
    })
    code, result, err = run(cli, root)
    assert code == 0, err
    checks = by_name(result)
    assert checks["same_as_prod"]["status"] == "error"  # prod has nothing yet
    assert "not built in environment prod" in checks["same_as_prod"]["message"]
    step = root / "pipelines/p/a.sql"
    step.write_text(step.read_text().replace("range(3)", "range(4)"))
    assert cli("env", "create", "dev", "-p", root)[0] == 0
    code, result, err = run(cli, root, "--env", "dev")
    assert code == 0, err
    assert statuses(result) == {"same_as_prod": "failed", "near_prod": "passed"}
    assert "a: 4 vs a@prod: 3" in by_name(result)["same_as_prod"]["message"]


PY_CHECKS = """
import andon
import pandas as pd
import polars as pl
import pyarrow as pa


@andon.checks.check(table="people", severity="warn")
def amounts_positive(df: pd.DataFrame) -> bool:
    return bool((df["amount"] > 0).all())


@andon.checks.check(table="people", severity="warn")
def amounts_small(df: pd.DataFrame) -> bool:
    return bool((df["amount"] < 50).all())


@andon.checks.check(table="people", severity="warn", name="count_big")
def big(df: pl.DataFrame) -> int:
    return df.filter(pl.col("amount") > 3).height


@andon.checks.check(table="people", severity="warn")
def big_rows(table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas()
    return df[df["amount"] > 3][["id", "amount"]]


@andon.checks.check(table="people", severity="warn")
def none_huge(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["amount"] > 1000]


@andon.checks.check(table="people", severity="warn")
def raises(df: pd.DataFrame) -> bool:
    return df["no_such_column"].all()
"""


def test_python_checks(make_project: ProjectFactory, cli: Cli) -> None:
    root = project(make_project, f"- {{name: rc, type: row_count, min: 1, {W}}}",
                   extra={"checks/people_checks.py": PY_CHECKS})
    code, result, err = run(cli, root)
    assert code == 0, err
    assert statuses(result) == {"rc": "passed", "amounts_positive": "passed",
                                "amounts_small": "failed", "count_big": "failed",
                                "big_rows": "failed", "none_huge": "passed", "raises": "error"}
    checks = by_name(result)
    assert checks["count_big"]["failing"] == 2
    assert checks["big_rows"]["failing"] == 2
    assert checks["big_rows"]["sample"] == [{"id": 4, "amount": 4.0}, {"id": 5, "amount": 100.0}]
    assert "KeyError" in checks["raises"]["message"]
    assert {c["type"] for c in result["checks"] if c["name"] != "rc"} == {"python"}


def test_every_catalog_type_is_exercised_here() -> None:
    text = Path(__file__).read_text()
    missing = [t for t in CHECK_TYPES if t != "python" and f"type: {t}," not in text
               and f"type: {t}\n" not in text]
    assert missing == []


def test_every_check_type_is_documented() -> None:
    from andon.checks.docs import render_docs

    doc = (Path(__file__).resolve().parents[1] / "docs" / "checks.md").read_text()
    headings = [line[3:].strip() for line in doc.splitlines() if line.startswith("## ")]
    assert sorted(headings) == sorted(CHECK_TYPES)
    for t in CHECK_TYPES.values():
        section = doc.split(f"## {t.name}\n", 1)[1].split("\n## ", 1)[0]
        assert t.doc in section and t.example.strip().splitlines()[-1] in section
    assert doc == render_docs(), "regenerate: python -m andon.checks.docs > docs/checks.md"


def test_documented_examples_are_valid_checks(tmp_path: Path) -> None:
    from andon.checks.load import _spec
    from andon.yamlfile import parse_yaml

    for t in CHECK_TYPES.values():
        if t.family == "python":
            continue
        spec = _spec(parse_yaml(t.example, tmp_path / "example.yaml"), "docs")
        assert spec.type == t.name
