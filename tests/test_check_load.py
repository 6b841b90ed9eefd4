"""Bad check declarations fail before any work, with the file, the line and a hint; nothing
stored changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli, ProjectFactory

DATA = "SELECT * FROM (VALUES (1, 'a', 2.5), (2, 'b', NULL)) AS v(id, code, amount)\n"


def step_with(make_project: ProjectFactory, checks: str,
              extra: dict[str, str] | None = None) -> Path:
    text = f"/* ---\ndescription: fixture\nchecks:\n{checks}--- */\n{DATA}"
    return make_project({"andon.yaml": "name: t\n", "pipelines/p/a.sql": text,
                         "pipelines/p/b.sql": "SELECT * FROM a\n", **(extra or {})})


def assert_nothing_stored(cli: Cli, root: Path) -> None:
    _code, out, _err = cli("runs", "-p", root, "--format", "json")
    runs = json.loads(out) if out.strip().startswith("[") else []
    assert all(r["built"] == 0 and r["commit"] is None for r in runs), runs
    code, out, _err = cli("tables", "-p", root)
    assert code != 0 and out == ""  # no environment (or the project does not even load)
    warehouse = root / ".andon" / "warehouse"
    assert not warehouse.exists() or not any(p.is_file() for p in warehouse.rglob("*"))


def fails(cli: Cli, root: Path, *cmd: str) -> str:
    code, out, err = cli(*(cmd or ("plan",)), "-p", root)
    assert code != 0, out
    return out + err


def test_missing_column_fails_at_plan_time_with_did_you_mean(make_project: ProjectFactory,
                                                             cli: Cli) -> None:
    root = step_with(make_project, "  - {type: not_null, column: id}\n"
                                   "  - {type: not_null, column: amonut}\n")
    msg = fails(cli, root)
    assert "a.sql:5" in msg  # the line of the check in the header
    assert "has no column 'amonut'" in msg and "did you mean 'amount'" in msg
    # andon run stops before building anything
    msg = fails(cli, root, "run")
    assert "amonut" in msg
    assert_nothing_stored(cli, root)


def test_regex_on_a_non_text_column(make_project: ProjectFactory, cli: Cli) -> None:
    root = step_with(make_project, "  - {type: regex, column: amount, pattern: integer}\n")
    msg = fails(cli, root)
    assert "a.sql:4" in msg and "needs a text column" in msg and "a.amount is DECIMAL" in msg
    fails(cli, root, "run")
    assert_nothing_stored(cli, root)


@pytest.mark.parametrize(("check", "expected"), [
    ("{type: not_null, column: id, max_failing_pct: 150}", "less than or equal to 100"),
    ("{type: between, column: amount, min: 5, max: 1}", "min (5.0) is greater than max (1.0)"),
    ("{type: not_null, column: id, max_failing: -1}", "greater than or equal to 0"),
    ("{type: not_null, column: id, severity: fatal}", "severity"),
    ("{type: freshness, column: id, max_age: soon}", "bad duration 'soon'"),
    ("{type: regex, column: code, pattern: us_zip6}", "unknown pattern name 'us_zip6'"),
    ("{type: regex, column: code, pattern: '[a-'}", "invalid regular expression"),
    ("{type: not_nul, column: id}", "did you mean 'not_null'"),
    ("{type: accepted_values, column: code}", "needs 'values'"),
    ("{type: unique}", "needs 'column' or 'columns'"),
    ("{type: not_null, colum: id}", "colum"),
])
def test_invalid_check_declarations(make_project: ProjectFactory, cli: Cli, check: str,
                                    expected: str) -> None:
    root = step_with(make_project, "  - {type: row_count, min: 1}\n  - " + check + "\n")
    msg = fails(cli, root)
    assert expected in msg
    assert "a.sql:5" in msg
    fails(cli, root, "run")
    assert_nothing_stored(cli, root)


def test_custom_sql_syntax_error_names_file_and_line(make_project: ProjectFactory,
                                                      cli: Cli) -> None:
    root = step_with(make_project, "  - {type: row_count, min: 1}\n", extra={
        "checks/bad.sql": "/* ---\ntable: a\n--- */\nSELECT *\nFROM {{ table }}\n"
                          "WHERE id = = 3\n",
        "checks/more.yaml": "a:\n  - type: sql\n    sql: SELECT * FROM {{ table }} WHERE\n",
    })
    msg = fails(cli, root)
    assert "bad.sql:6" in msg and "SQL syntax error" in msg
    (root / "checks/bad.sql").unlink()
    msg = fails(cli, root)
    assert "more.yaml:3" in msg and "SQL syntax error" in msg
    assert_nothing_stored(cli, root)


def test_expression_syntax_error(make_project: ProjectFactory, cli: Cli) -> None:
    root = step_with(make_project, "  - {type: expression, expr: 'id >'}\n")
    msg = fails(cli, root)
    assert "a.sql:4" in msg and "SQL syntax error" in msg


def test_two_checks_with_the_same_name(make_project: ProjectFactory, cli: Cli) -> None:
    root = step_with(make_project, "  - {type: not_null, column: id, name: ids}\n", extra={
        "checks/a.yaml": "a:\n  - {type: unique, column: id}\n  - {type: row_count, name: ids}\n",
    })
    msg = fails(cli, root)
    assert "two checks are named 'ids'" in msg and "a.yaml:3" in msg and "a.sql:4" in msg
    # default names collide too: the same type on the same column twice
    root = step_with(make_project, "  - {type: not_null, column: id}\n"
                                   "  - {type: not_null, column: id, severity: warn}\n")
    assert "two checks are named 'a.not_null.id'" in fails(cli, root)


def test_check_on_unknown_table_and_relationship_target(make_project: ProjectFactory,
                                                        cli: Cli) -> None:
    root = step_with(make_project, "  - {type: row_count, min: 1}\n", extra={
        "checks/x.yaml": "aa:\n  - {type: row_count, min: 1}\n"})
    msg = fails(cli, root)
    assert "unknown table 'aa'" in msg and "x.yaml:2" in msg
    root = step_with(make_project, "  - {type: relationship, column: id, to: b.idd}\n")
    msg = fails(cli, root)
    assert "b.idd" in msg and "did you mean 'id'" in msg


def test_sql_check_file_needs_its_table(make_project: ProjectFactory, cli: Cli) -> None:
    root = step_with(make_project, "  - {type: row_count, min: 1}\n", extra={
        "checks/orphan.sql": "SELECT * FROM {{ table }} WHERE id IS NULL\n"})
    msg = fails(cli, root)
    assert "orphan.sql:1" in msg and "header naming its table" in msg


def test_empty_value_in_a_check_is_reported_not_a_crash(make_project: ProjectFactory,
                                                        cli: Cli) -> None:
    root = step_with(make_project, "  - {type: between, column: amount, min: 0, max: }\n")
    code, _out, err = cli("plan", "-p", root)
    assert code == 0, err  # max: (null) means no upper bound


def test_python_check_file_errors(make_project: ProjectFactory, cli: Cli) -> None:
    root = step_with(make_project, "  - {type: row_count, min: 1}\n", extra={
        "checks/bad.py": "import andon\n\n@andon.checks.check(table='a')\ndef f(df)\n"
                         "    return True\n"})
    msg = fails(cli, root)
    assert "bad.py:4" in msg and "syntax error" in msg
    (root / "checks/bad.py").write_text("import andon\n\n@andon.checks.check(table='zz')\n"
                                        "def f(df):\n    return True\n")
    msg = fails(cli, root)
    assert "unknown table 'zz'" in msg and "bad.py:3" in msg
