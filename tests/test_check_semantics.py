"""Check semantics as the docs state them: null means SQL NULL, booleans drift, between takes
dates and strings, freshness follows the clock, "now" is UTC, regexes are RE2's, numpy results
count, and what the docs say fails at plan time does."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import Cli, ProjectFactory
from tests.test_check_types import W, by_name, project, run, statuses


def plan_fails(cli: Cli, root: Path) -> str:
    code, out, err = cli("plan", "-p", root)
    assert code != 0, out
    return out + err


def test_null_in_values_means_sql_null(make_project: ProjectFactory, cli: Cli) -> None:
    sql = "SELECT * FROM (VALUES (1, 'EWR'), (2, NULL), (3, 'None')) AS v(id, origin)\n"
    root = project(make_project, f"""
        - {{name: no_nulls, type: rejected_values, column: origin, values: [null], {W}}}
        - {{name: no_x_or_null, type: rejected_values, column: origin, values: [x, null], {W}}}
        - {{name: known, type: accepted_values, column: origin, values: [EWR, null], {W}}}
        """, sql=sql)
    code, result, err = run(cli, root)
    assert code == 0, err
    checks = by_name(result)
    assert checks["no_nulls"]["failing"] == 1
    assert [r["id"] for r in checks["no_nulls"]["sample"]] == [2]
    assert checks["no_x_or_null"]["failing"] == 1
    # the string 'None' is a value like any other: not in the list
    assert checks["known"]["failing"] == 1
    assert [r["id"] for r in checks["known"]["sample"]] == [3]


def test_distribution_drift_on_a_boolean_column(make_project: ProjectFactory, cli: Cli) -> None:
    half = "SELECT i AS id, i % 2 = 0 AS cancelled FROM range(60) t(i)\n"
    rare = "SELECT i AS id, i = 0 AS cancelled FROM range(60) t(i)\n"  # 1.7% true
    check = f"- {{name: drift, type: distribution_drift, column: cancelled, {W}}}"
    root = project(make_project, check, sql=half)
    assert run(cli, root)[0] == 0
    assert cli("env", "create", "dev", "-p", root)[0] == 0  # prod is protected: change in dev
    (root / "pipelines/p/people.sql").write_text(
        (root / "pipelines/p/people.sql").read_text().replace(half, rare))
    code, result, err = run(cli, root, "--env", "dev")
    assert code == 0, err
    drift = by_name(result)["drift"]
    assert drift["status"] == "failed" and drift["metric"] > 1.0, drift


def test_between_on_timestamps_dates_and_text(make_project: ProjectFactory, cli: Cli) -> None:
    root = project(make_project, f"""
        - {{name: ts, type: between, column: start_at, min: 2024-01-02,
            max: '2024-01-04 12:00', {W}}}
        - {{name: ts_ok, type: between, column: start_at, min: 2023-12-31, {W}}}
        - {{name: txt, type: between, column: grp, min: a, max: b, {W}}}
        """)
    code, result, err = run(cli, root)
    assert code == 0, err
    checks = by_name(result)
    assert [r["id"] for r in checks["ts"]["sample"]] == [1, 5]
    assert checks["ts_ok"]["status"] == "passed"
    assert [r["id"] for r in checks["txt"]["sample"]] == [5]


def test_between_bounds_of_the_wrong_type_fail_at_plan_time(make_project: ProjectFactory,
                                                            cli: Cli) -> None:
    for check, said in [
        ("{type: between, column: amount, min: 2024-01-01}",
         "bounds of a DOUBLE column are numbers"),
        ("{type: between, column: start_at, min: 5}", "are dates or timestamps"),
        ("{type: between, column: start_at, min: yesterday}", "yesterday"),
        ("{type: between, column: grp, max: 10}", "are strings"),
    ]:
        root = project(make_project, f"- {check}")
        msg = plan_fails(cli, root)
        assert "people.sql:3" in msg and said in msg, msg


def test_values_of_the_wrong_type_fail_at_plan_time(make_project: ProjectFactory,
                                                    cli: Cli) -> None:
    root = project(make_project, "- {type: accepted_values, column: id, values: [1, two]}")
    msg = plan_fails(cli, root)
    assert "value 'two' does not fit people.id (INTEGER)" in msg
    root = project(make_project, "- {type: accepted_values, column: grp, values: [a, yes]}")
    assert "True is not text: quote it" in plan_fails(cli, root)


def test_freshness_needs_a_temporal_column(make_project: ProjectFactory, cli: Cli) -> None:
    root = project(make_project, "- {type: freshness, column: day, max_age: 2d}")
    msg = plan_fails(cli, root)
    assert "needs a temporal column; people.day is VARCHAR" in msg and "people.sql:3" in msg


def test_freshness_is_judged_on_every_run(make_project: ProjectFactory, cli: Cli) -> None:
    sql = "SELECT now()::TIMESTAMP - INTERVAL 1 HOUR AS at\n"
    root = project(make_project,
                   f"- {{name: fresh, type: freshness, column: at, max_age: 2h, {W}}}", sql=sql)
    first = by_name(run(cli, root)[1])["fresh"]
    second = by_name(run(cli, root)[1])["fresh"]  # nothing rebuilt, but the clock moved
    assert not second["reused"]
    assert second["metric"] > first["metric"]


def test_temporal_order_reads_naive_timestamps_as_utc(make_project: ProjectFactory,
                                                      tmp_path: Path) -> None:
    # ends three hours ahead of UTC: in the future, even where the clock reads UTC+9
    sql = ("SELECT TIMESTAMP '2024-01-01' AS start_at, "
           "(now() AT TIME ZONE 'UTC') + INTERVAL 3 HOUR AS end_at\n")
    root = project(make_project, "- {name: order, type: temporal_order, start: start_at, "
                                 f"end: end_at, allow_future: false, {W}}}", sql=sql)
    env = {**os.environ, "TZ": "Asia/Tokyo"}
    done = subprocess.run([sys.executable, "-m", "andon", "run", "-p", str(root), "--format",
                           "json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert statuses(json.loads(done.stdout)) == {"order": "failed"}


def test_regexes_are_validated_by_the_engine(make_project: ProjectFactory, cli: Cli) -> None:
    # Python's re accepts a lookahead; RE2, which runs the check, does not
    root = project(make_project, "- {type: regex, column: grp, pattern: '(?=a)a'}")
    msg = plan_fails(cli, root)
    assert "invalid regular expression" in msg and "people.sql:3" in msg and "RE2" in msg


def test_unique_sample_leaves_out_nulls(make_project: ProjectFactory, cli: Cli) -> None:
    sql = "SELECT * FROM (VALUES (1, NULL), (2, NULL), (3, 'a'), (4, 'a')) AS v(id, code)\n"
    root = project(make_project, f"- {{name: uq, type: unique, column: code, {W}}}", sql=sql)
    uq = by_name(run(cli, root)[1])["uq"]
    assert uq["metric"] == 1
    assert uq["sample"] == [{"code": "a", "duplicates": 2}]


NUMPY_CHECKS = """
import andon
import pandas as pd


@andon.checks.check(table="people", severity="warn")
def all_positive(df: pd.DataFrame):
    return (df["amount"] > 0).all()


@andon.checks.check(table="people", severity="warn")
def big_count(df: pd.DataFrame):
    return (df["amount"] > 3).sum()


@andon.checks.check(table="people", severity="warn")
def total(df: pd.DataFrame):
    return df["amount"].min() - 1.0
"""


def test_python_checks_may_return_numpy_scalars(make_project: ProjectFactory, cli: Cli) -> None:
    root = project(make_project, f"- {{name: rc, type: row_count, min: 1, {W}}}",
                   extra={"checks/np.py": NUMPY_CHECKS})
    code, result, err = run(cli, root)
    assert code == 0, err
    assert statuses(result) == {"rc": "passed", "all_positive": "passed",
                                "big_count": "failed", "total": "passed"}
    assert by_name(result)["big_count"]["failing"] == 2


def test_a_bad_severity_in_a_python_check_names_file_and_line(make_project: ProjectFactory,
                                                              cli: Cli) -> None:
    bad = ("import andon\n\n\n@andon.checks.check(table='people', severity='fatal')\n"
           "def c(df):\n    return True\n")
    root = project(make_project, "- {type: row_count, min: 1}", extra={"checks/bad.py": bad})
    msg = plan_fails(cli, root)
    assert "bad.py:4" in msg and "severity" in msg and "Traceback" not in msg


def test_thresholds(make_project: ProjectFactory, cli: Cli) -> None:
    root = project(make_project, "- {type: length_between, column: zip, min: 1.5}")
    assert "whole number" in plan_fails(cli, root)
    root = project(make_project, "- {type: row_count, min: lots}")
    assert "min must be a number" in plan_fails(cli, root)
    # a percentage is written with or without its sign
    root = project(make_project, f"""
        - {{name: pct, type: not_null, column: origin, max_failing_pct: '20%', {W}}}
        - {{name: plain, type: not_null, column: origin, max_failing_pct: '20', {W}}}
        """)
    code, result, err = run(cli, root)
    assert code == 0, err
    assert {c["name"]: c["threshold"] for c in result["checks"]} == {
        "pct": {"max_failing_pct": 20.0}, "plain": {"max_failing_pct": 20.0}}


def test_unknown_columns_in_expr_and_sql_fail_at_plan_time(make_project: ProjectFactory,
                                                           cli: Cli) -> None:
    root = project(make_project, "- {type: expression, expr: 'amout > 0'}")
    msg = plan_fails(cli, root)
    assert "people.sql:3" in msg and '"amout" not found' in msg and "amount" in msg
    root = project(make_project, "- {type: row_count, min: 1}", extra={
        "checks/late.sql": "/* ---\ntable: people\n--- */\n"
                           "SELECT * FROM {{ table }} WHERE dep_delay > 10\n"})
    msg = plan_fails(cli, root)
    assert "late.sql:1" in msg and '"dep_delay" not found' in msg


def _strict(text: str) -> Any:
    def refuse(token: str) -> None:
        raise AssertionError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_output_has_no_nan(make_project: ProjectFactory, cli: Cli) -> None:
    sql = "SELECT 1 AS id, 'nan'::DOUBLE AS x, 'inf'::DOUBLE AS y\n"
    root = project(make_project, f"- {{name: small, type: between, column: id, max: 0, {W}}}",
                   sql=sql)
    assert run(cli, root)[0] == 0
    code, out, err = cli("query", "SELECT x, y FROM people", "-p", root, "--format", "json")
    assert code == 0, err
    assert _strict(out) == [{"x": None, "y": None}]
    code, out, err = cli("test", "-p", root, "--format", "json")
    assert _strict(out)[0]["sample"] == [{"id": 1, "x": None, "y": None}]
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in _strict(out)[0].values())
