"""Column lineage: each output column's input columns and transformation kinds, traced by
sqlglot over the real schemas of the inputs, stored per fingerprint, walked up and down by
``andon lineage TABLE.COLUMN``, and the impact of a change before it runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import andon
from andon.lineage import ALL, Edge, StepLineage, for_environment
from andon.runner import plan
from tests.conftest import Cli, ProjectFactory

PROJECT = {
    "andon.yaml": """
        name: lin
        environments:
          prod: {protected: false}
    """,
    # a table function is no andon table: t is a root with no column edges
    "pipelines/p/t.sql": "SELECT range AS id, range % 3 AS grp, range * 2 AS amount "
                         "FROM range(10)",
    "pipelines/p/everything.sql": "SELECT * FROM t",
    "pipelines/p/agg.sql": "SELECT grp AS g, sum(amount) AS total FROM t WHERE id > 2 "
                           "GROUP BY grp ORDER BY g",
    "pipelines/p/joined.sql": """
        WITH x AS (SELECT id, amount FROM everything)
        SELECT x.id, x.amount * 2 AS dbl, agg.total,
               CASE WHEN agg.total > 10 THEN 'big' ELSE 'small' END AS size
        FROM x JOIN agg ON x.id = agg.g
    """,
    # DuckDB picks the columns by a regular expression: sqlglot cannot say which
    "pipelines/p/pivoted.sql": "SELECT COLUMNS('am.*') FROM t",
    "pipelines/p/steps.py": """
        import andon
        import pyarrow.compute as pc


        @andon.step(lineage={"id": ["t.id"], "half": ["t.amount"]})
        def declared(t):
            return t.select(["id"]).append_column("half", pc.divide(t["amount"], 2))


        @andon.step
        def undeclared(t):
            return t
    """,
}


@pytest.fixture
def root(make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ANDON_USER", "alice")
    root = make_project(PROJECT)
    result = andon.Session(andon.Project.load(root), "alice").run()
    assert result.ok, result.error
    return root


def edges(lin: StepLineage) -> set[tuple[str, str, str, str]]:
    return {(e.output, e.table, e.column, e.kind) for e in lin.edges}


def test_select_star_expands_over_the_real_schema(root: Path) -> None:
    graph = for_environment(andon.Project.load(root))
    lin = graph.steps["everything"]
    assert lin.level == "column" and lin.columns == ("id", "grp", "amount")
    assert edges(lin) == {(c, "t", c, "identity") for c in ("id", "grp", "amount")}
    assert graph.steps["t"].edges == ()  # range(10) is not an andon table


def test_aggregation_filter_group_by_sort_and_a_renamed_column(root: Path) -> None:
    lin = for_environment(andon.Project.load(root)).steps["agg"]
    assert lin.columns == ("g", "total")
    assert edges(lin) == {
        ("g", "t", "grp", "identity"),  # renamed: g comes from grp as it is
        ("total", "t", "amount", "aggregation"),
        (ALL, "t", "id", "filter"),
        (ALL, "t", "grp", "group_by"),
        (ALL, "t", "grp", "sort"),  # ORDER BY the output g, that is grp
    }


def test_cte_join_transformation_and_conditional(root: Path) -> None:
    lin = for_environment(andon.Project.load(root)).steps["joined"]
    assert lin.columns == ("id", "dbl", "total", "size")
    got = edges(lin)
    assert ("id", "everything", "id", "identity") in got  # through the CTE x
    assert ("dbl", "everything", "amount", "transformation") in got
    assert ("total", "agg", "total", "identity") in got
    assert ("size", "agg", "total", "conditional") in got
    assert {(ALL, "everything", "id", "join"), (ALL, "agg", "g", "join")} <= got


def test_untraceable_sql_falls_back_to_table_level_with_a_note(root: Path) -> None:
    lin = for_environment(andon.Project.load(root)).steps["pivoted"]
    assert lin.level == "table"
    assert "could not be traced" in lin.note and "table level" in lin.note
    assert lin.edges == (Edge(ALL, "t", ALL, "table"),)


def test_python_steps_declare_their_lineage_or_stay_at_table_level(root: Path) -> None:
    graph = for_environment(andon.Project.load(root))
    declared = graph.steps["declared"]
    assert declared.level == "column"
    assert edges(declared) == {("id", "t", "id", "transformation"),
                               ("half", "t", "amount", "transformation")}
    undeclared = graph.steps["undeclared"]
    assert undeclared.level == "table" and "declare `lineage`" in undeclared.note
    assert undeclared.columns == ("id", "grp", "amount")  # from its artifact's schema


def test_a_run_stores_the_lineage_of_each_fingerprint(root: Path) -> None:
    project = andon.Project.load(root)
    env = project.store.environment("prod")
    assert env is not None
    fps = project.store.commit_steps(env["commit_id"])
    stored = {fp: StepLineage.from_dict(r)
              for fp, r in project.store.lineage.rows(fps.values()).items()}
    assert set(stored) == set(fps.values())  # every step of the run, once
    agg = stored[fps["agg"]]
    assert agg.step == "agg" and ("total", "t", "amount", "aggregation") in edges(agg)
    assert project.store.lineage.put(list(stored.values())) == 0  # written once


def test_upstream_and_downstream_walk_across_steps(root: Path) -> None:
    graph = for_environment(andon.Project.load(root))
    up = {(e["table"], e["column"], e["kind"]) for e in graph.upstream("joined", "total")}
    assert ("agg", "total", "identity") in up
    assert ("t", "amount", "aggregation") in up  # two steps up
    down = {(e["table"], e["column"]) for e in graph.downstream("t", "amount")}
    assert {("agg", "total"), ("everything", "amount"), ("joined", "dbl"),
            ("joined", "total"), ("joined", "size"), ("declared", "half")} <= down
    assert ("joined", "id") not in down  # amount decides no row of joined


def test_cli_column_lineage_text_and_json(root: Path, cli: Cli) -> None:
    code, out, err = cli("lineage", "joined.dbl", "--upstream", "-p", root)
    assert code == 0, err
    assert "everything.amount" in out and "transformation" in out
    assert "t.amount" in out and "downstream" not in out
    code, out, err = cli("lineage", "t.amount", "--downstream", "-p", root, "--format", "json")
    assert code == 0, err
    info = json.loads(out)
    assert info["table"] == "t" and info["column"] == "amount" and "upstream" not in info
    assert {"table": "agg", "column": "total", "kind": "aggregation", "from": "t",
            "depth": 1} in info["downstream"]
    code, out, err = cli("lineage", "pivoted.x", "-p", root)
    assert code == 0, err
    assert "could not be traced" in out  # the note, and the table-level edges
    code, out, err = cli("lineage", "t", "-p", root)  # a table alone: as before
    assert code == 0 and "feeds" in out and "agg" in out


def test_cli_refuses_unknown_columns_and_tables(root: Path, cli: Cli) -> None:
    code, _, err = cli("lineage", "agg.totl", "-p", root)
    assert code != 0 and "agg has no column 'totl'" in err and "total" in err
    code, _, err = cli("lineage", "nope.x", "-p", root)
    assert code != 0 and "no step named 'nope'" in err


def test_impact_lists_the_downstream_columns_a_change_touches(root: Path, cli: Cli) -> None:
    (root / "pipelines/p/agg.sql").write_text(
        "SELECT grp AS g, sum(amount) + 1 AS total FROM t WHERE id > 2 GROUP BY grp")
    project = andon.Project.load(root)
    from andon.lineage import impact

    changed = impact(project, plan(project, "prod", ()))
    assert [c["step"] for c in changed] == ["agg"]
    touched = {(d["table"], d["column"]) for d in changed[0]["downstream"]}
    assert touched == {("joined", "total"), ("joined", "size"), ("joined", "id"),
                       ("joined", "dbl")}  # total directly; every column by the join on g
    code, out, err = cli("lineage", "--impact", "-p", root, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["changed"] == changed
    code, out, err = cli("lineage", "--impact", "-p", root)
    assert code == 0 and "agg changes" in out and "joined.total" in out


def test_flights_columns_trace_back_to_the_landed_files(flights: Path, cli: Cli,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANDON_USER", "alice")
    code, _, err = cli("run", "-p", flights)
    assert code == 0, err
    code, out, err = cli("lineage", "daily_carrier_kpis.mean_dep_delay", "--upstream",
                         "-p", flights, "--format", "json")
    assert code == 0, err
    up = {(e["table"], e["column"], e["kind"]) for e in json.loads(out)["upstream"]}
    assert ("flights_enriched", "dep_delay", "aggregation") in up
    assert ("flights", "dep_delay", "identity") in up
    assert ("raw_flights", "dep_delay", "identity") in up  # the source's column
    graph = for_environment(andon.Project.load(flights))
    project = andon.Project.load(flights)
    sql = [n for n, st in project.dag.steps.items() if st.kind == "sql"]
    assert len(sql) >= 7  # every SQL step of the example is traced to its columns
    assert all(graph.steps[n].level == "column" for n in sql), {
        n: graph.steps[n].note for n in sql if graph.steps[n].note}


def test_the_store_keeps_each_fingerprint_once(store_url: str) -> None:
    from andon.store import open_store

    store = open_store(store_url)
    lin = StepLineage("agg", "column", ("g", "total"),
                      (Edge("g", "t", "grp", "identity"), Edge(ALL, "t", "id", "filter")),
                      fingerprint="f" * 32)
    table = StepLineage("odd", "table", (), (Edge(ALL, "t", ALL, "table"),), "a note",
                        "e" * 32)
    assert store.lineage.put([lin, table]) == 2
    assert store.lineage.put([lin]) == 0
    got = {fp: StepLineage.from_dict(r)
           for fp, r in store.lineage.rows(["f" * 32, "e" * 32, "0" * 32]).items()}
    assert got == {"f" * 32: lin, "e" * 32: table}
    assert store.reader().column_lineage(["f" * 32])["f" * 32]["edges"][1] == {
        "output": ALL, "table": "t", "column": "id", "kind": "filter"}
    store.close()


def test_a_wrong_python_declaration_is_said_in_the_note(make_project: ProjectFactory,
                                                        cli: Cli) -> None:
    root = make_project({**PROJECT, "pipelines/p/steps.py": """
        import andon


        @andon.step(lineage={"id": ["orders.id"]})
        def declared(t):
            return t
    """})
    assert andon.Session(andon.Project.load(root), "alice").run().ok  # never a failed run
    lin = for_environment(andon.Project.load(root)).steps["declared"]
    assert lin.level == "table"
    assert "lineage of 'id' names 'orders.id'" in lin.note and "t.COLUMN" in lin.note
    assert for_environment(andon.Project.load(root)).steps["agg"].level == "column"
    code, out, _ = cli("lineage", "declared.id", "-p", root)
    assert code == 0 and "orders.id" in out
