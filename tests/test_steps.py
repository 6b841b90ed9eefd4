"""SQL steps: parse errors with file/line/column and a caret, one SELECT, references, Jinja."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from andon.errors import AndonError, ConfigError, DagError, SqlError
from andon.project import Project

YAML = """
name: shop
params:
  min_amount: 10
sources:
  raw_orders:
    path: incoming/*.csv
    columns:
      id: {type: integer, required: true}
      amount: double
      country: string
"""
ORDERS = "id,amount,country\n1,5.0,FR\n2,15.5,DE\n3,40.0,FR\n"


def project_with(make_project, sql: str, extra: dict[str, str] | None = None) -> Path:
    return make_project({
        "andon.yaml": YAML,
        "incoming/orders.csv": ORDERS,
        "pipelines/shop/big_orders.sql": sql,
        **(extra or {}),
    })


def load_error(root: Path) -> AndonError:
    with pytest.raises(AndonError) as info:
        Project.load(root)
    return info.value


def test_sql_step_runs_and_its_refs_are_its_parents(make_project, cli) -> None:
    root = project_with(make_project, "SELECT id, amount FROM raw_orders WHERE amount > 10\n")
    step = Project.load(root).dag.steps["big_orders"]
    assert step.kind == "sql"
    assert step.parents == ("raw_orders",)
    assert cli("run", "-p", root, "-q")[0] == 0
    out = cli("query", "SELECT id FROM big_orders ORDER BY id", "-p", root, "-f", "json")[1]
    assert json.loads(out) == [{"id": 2}, {"id": 3}]


def test_syntax_error_has_file_line_column_and_caret(make_project, cli) -> None:
    root = project_with(make_project, """
        /* ---
        description: big ones
        --- */
        SELECT id,
               amount
        FROM raw_orders
        WHERE amount >
        """)
    e = load_error(root)
    assert isinstance(e, SqlError)
    assert e.file == str(root / "pipelines/shop/big_orders.sql")
    assert e.step == "big_orders"
    assert e.line == 7  # true to the file, header included
    assert e.column is not None
    lines = e.detail.splitlines()
    caret = next(i for i, ln in enumerate(lines) if ln.rstrip().endswith("^"))
    assert lines[caret - 1].lstrip().startswith("7 | WHERE amount >")
    # the caret sits under the character the column names: the dangling '>'
    assert lines[caret - 1][lines[caret].index("^")] == ">"
    assert e.column == lines[caret - 1].split("| ", 1)[1].index(">") + 1
    code, _, err = cli("run", "-p", root, "-q")
    assert code != 0
    assert "big_orders.sql:7" in err
    assert "^" in err
    assert not (root / ".andon").exists()


def test_syntax_error_message_is_in_sql_terms(make_project) -> None:
    e = load_error(project_with(make_project, "SELECT id FROM raw_orders WHERE amount = \n"))
    assert "sqlglot" not in e.message
    assert "<class" not in e.message


def test_unclosed_quote_is_a_sql_error_with_a_hint(make_project) -> None:
    e = load_error(project_with(make_project, "SELECT 'oops FROM raw_orders\n"))
    assert isinstance(e, SqlError)
    assert e.step == "big_orders"
    assert "quote" in e.hint


def test_two_statements_are_refused_pointing_at_the_second(make_project) -> None:
    e = load_error(project_with(make_project, "SELECT id FROM raw_orders;\n\nSELECT 1 AS x;\n"))
    assert isinstance(e, SqlError)
    assert "exactly one SELECT; found 2 statements" in e.message
    assert e.line == 3


def test_a_trailing_semicolon_is_fine(make_project) -> None:
    root = project_with(make_project, "SELECT id FROM raw_orders;\n")
    assert Project.load(root).dag.steps["big_orders"].parents == ("raw_orders",)


def test_insert_is_refused(make_project) -> None:
    e = load_error(
        project_with(make_project, "-- add one\nINSERT INTO raw_orders VALUES (9, 1, 'x')\n")
    )
    assert isinstance(e, SqlError)
    assert "found INSERT" in e.message
    assert e.line == 2
    assert "materialises" in e.hint


def test_empty_sql_file(make_project) -> None:
    e = load_error(project_with(make_project, "-- to do\n"))
    assert isinstance(e, SqlError)
    assert "empty" in e.message
    assert "SELECT" in e.hint


def test_unknown_table_suggests_a_known_one(make_project, cli) -> None:
    root = project_with(make_project, "SELECT id\nFROM raw_ordres\n")
    e = load_error(root)
    assert isinstance(e, DagError)
    assert "unknown table 'raw_ordres'" in e.message
    assert "did you mean 'raw_orders'" in e.hint
    assert (e.line, e.column) == (2, 15)
    assert e.step == "big_orders"
    code, _, err = cli("plan", "-p", root)
    assert code != 0 and "did you mean 'raw_orders'" in err


def test_unknown_table_differing_only_in_case_suggests_it(make_project) -> None:
    e = load_error(project_with(make_project, "SELECT id FROM RAW_ORDERS\n"))
    assert "did you mean 'raw_orders'" in e.hint


def test_schema_qualified_table_is_refused(make_project) -> None:
    e = load_error(project_with(make_project, "SELECT id\nFROM main.raw_orders\n"))
    assert isinstance(e, SqlError)
    assert "qualified with a schema" in e.message
    assert e.line == 2
    assert "bare step name" in e.hint


def test_cte_names_are_not_dependencies(make_project, cli) -> None:
    root = project_with(make_project, """
        WITH fr AS (SELECT * FROM raw_orders WHERE country = 'FR'),
             big AS (SELECT * FROM fr WHERE amount > 10)
        SELECT id FROM big
        """)
    assert Project.load(root).dag.steps["big_orders"].parents == ("raw_orders",)
    assert cli("run", "-p", root, "-q")[0] == 0
    out = cli("query", "SELECT id FROM big_orders", "-p", root, "-f", "json")[1]
    assert json.loads(out) == [{"id": 3}]


def test_table_functions_and_subqueries(make_project) -> None:
    root = project_with(make_project, """
        SELECT o.id FROM (SELECT * FROM raw_orders) AS o
        JOIN (SELECT 1 AS id UNION ALL SELECT 2) AS k USING (id)
        """)
    assert Project.load(root).dag.steps["big_orders"].parents == ("raw_orders",)


def test_jinja_params_are_rendered(make_project, cli) -> None:
    root = project_with(
        make_project, "SELECT id FROM raw_orders WHERE amount > {{ min_amount }} ORDER BY id\n"
    )
    assert "amount > 10" in Project.load(root).dag.steps["big_orders"].sql
    assert cli("run", "-p", root, "-q")[0] == 0
    out = cli("query", "SELECT id FROM big_orders ORDER BY id", "-p", root, "-f", "json")[1]
    assert json.loads(out) == [{"id": 2}, {"id": 3}]
    # --param overrides andon.yaml
    assert cli("run", "-p", root, "-q", "--param", "min_amount=20")[0] == 0
    out = cli("query", "SELECT id FROM big_orders", "-p", root, "-f", "json")[1]
    assert json.loads(out) == [{"id": 3}]


def test_params_namespace_works_too(make_project) -> None:
    root = project_with(make_project,
                        "SELECT id FROM raw_orders WHERE amount > {{ params.min_amount }}\n")
    assert "amount > 10" in Project.load(root).dag.steps["big_orders"].sql


def test_unknown_param_names_line_and_suggests(make_project, cli) -> None:
    root = project_with(make_project,
                        "SELECT id\nFROM raw_orders\nWHERE amount > {{ min_amout }}\n")
    e = load_error(root)
    assert isinstance(e, ConfigError)
    assert "unknown parameter 'min_amout'" in e.message
    assert "did you mean 'min_amount'" in e.hint
    assert e.line == 3
    assert e.step == "big_orders"
    code, _, err = cli("run", "-p", root, "-q")
    assert code != 0 and "min_amount" in err


def test_unknown_param_in_params_namespace(make_project) -> None:
    sql = "SELECT id FROM raw_orders WHERE amount > {{ params.min_amout }}\n"
    e = load_error(project_with(make_project, sql))
    assert "did you mean 'min_amount'" in e.hint


def test_unknown_param_without_close_match_says_where_to_define_it(make_project) -> None:
    e = load_error(project_with(make_project, "SELECT {{ zzz }} AS x FROM raw_orders\n"))
    assert "params:" in e.hint and "--param" in e.hint


def test_jinja_syntax_error(make_project) -> None:
    e = load_error(project_with(make_project, "SELECT id\nFROM raw_orders\nLIMIT {{ 3\n"))
    assert isinstance(e, ConfigError)
    assert "template syntax error" in e.message
    assert e.file is not None and e.file.endswith("big_orders.sql")


def test_syntax_error_names_the_token_and_points_at_its_start(make_project, cli) -> None:
    root = make_project({"andon.yaml": "name: t\n",
                         "pipelines/p/s.sql": "SELECT a,\n  b FROM\nWHERE x = 1\n"})
    code, _, err = cli("plan", "-p", root)
    assert code == 1
    assert "s.sql:3:1" in err and "got 'WHERE'" in err and "<Token" not in err
    caret = next(ln for ln in err.splitlines() if ln.strip().endswith("^"))
    source = next(ln for ln in err.splitlines() if ln.strip().startswith("3 |"))
    assert caret.index("^") == source.index("WHERE")
