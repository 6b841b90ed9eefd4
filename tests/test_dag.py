"""The DAG: cycles, self references, duplicate names, and selecting steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from andon.errors import AndonError, DagError
from andon.project import Project


def load_error(root: Path) -> AndonError:
    with pytest.raises(AndonError) as info:
        Project.load(root)
    return info.value


def test_cycle_is_reported_with_members_in_data_flow_order(make_project, cli) -> None:
    # a feeds b, b feeds c, c feeds a
    root = make_project({
        "andon.yaml": "name: x\n",
        "pipelines/p/a.sql": "SELECT *\nFROM c\n",
        "pipelines/p/b.sql": "SELECT * FROM a\n",
        "pipelines/p/c.sql": "SELECT * FROM b\n",
    })
    e = load_error(root)
    assert isinstance(e, DagError)
    assert "cycle in the DAG: a → b → c → a" in e.message
    # it points at the reference that closes the cycle: a reading c
    assert e.file == str(root / "pipelines/p/a.sql")
    assert e.line == 2
    assert e.step == "a"
    code, _, err = cli("run", "-p", root, "-q")
    assert code != 0
    assert "a → b → c → a" in err
    assert not (root / ".andon").exists()


def test_cycle_report_is_stable_whatever_the_file_order(make_project) -> None:
    root = make_project({
        "andon.yaml": "name: x\n",
        "pipelines/p/m.sql": "SELECT * FROM z\n",
        "pipelines/p/z.sql": "SELECT * FROM m\n",
        "pipelines/p/free.sql": "SELECT 1 AS one\n",
    })
    e = load_error(root)
    assert "cycle in the DAG: m → z → m" in e.message


def test_self_reference(make_project) -> None:
    root = make_project({
        "andon.yaml": "name: x\n",
        "pipelines/p/a.sql": "SELECT 1 AS n\nUNION ALL SELECT * FROM a\n",
    })
    e = load_error(root)
    assert isinstance(e, DagError)
    assert "reads from itself" in e.message
    assert (e.line, e.step) == (2, "a")
    assert "incremental" in e.hint


def test_duplicate_step_names_in_two_pipelines(make_project, cli) -> None:
    root = make_project({
        "andon.yaml": "name: x\n",
        "pipelines/one/orders.sql": "SELECT 1 AS n\n",
        "pipelines/two/orders.sql": "SELECT 2 AS n\n",
    })
    e = load_error(root)
    assert isinstance(e, DagError)
    assert "two steps are named 'orders'" in e.message
    assert "one/orders.sql" in e.message and "two/orders.sql" in e.message
    assert "rename" in e.hint
    assert cli("plan", "-p", root)[0] != 0


def test_python_step_and_sql_step_with_the_same_name(make_project) -> None:
    root = make_project({
        "andon.yaml": "name: x\n",
        "pipelines/p/orders.sql": "SELECT 1 AS n\n",
        "pipelines/p/more.py": "import andon\n\n\n@andon.step\ndef orders():\n    return None\n",
    })
    assert "two steps are named 'orders'" in load_error(root).message


def test_step_named_like_a_source(make_project) -> None:
    root = make_project({
        "andon.yaml": "name: x\nsources:\n  raw:\n    path: in/*.csv\n    columns: {a: int}\n",
        "pipelines/p/raw.sql": "SELECT 1 AS n\n",
    })
    assert "two steps are named 'raw'" in load_error(root).message


def test_order_puts_parents_first(flights: Path) -> None:
    order = Project.load(flights).dag.order
    for name, step in Project.load(flights).dag.steps.items():
        for parent in step.parents:
            assert order.index(parent) < order.index(name)


# selections on the flights example -----------------------------------------------------------


@pytest.fixture
def flights_dag(flights: Path):  # type: ignore[no-untyped-def]
    return Project.load(flights).dag


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("flights", {"flights"}),
        ("flights+", {"flights", "flights_enriched", "daily_carrier_kpis"}),
        ("+flights", {"raw_flights", "flights"}),
        ("+flights+", {"raw_flights", "flights", "flights_enriched", "daily_carrier_kpis"}),
        ("+daily_carrier_kpis", {
            "daily_carrier_kpis", "flights_enriched", "flights", "raw_flights", "airlines",
            "raw_airlines", "weather", "raw_weather", "planes", "raw_planes",
        }),
        ("tag:daily", {"flights", "flights_enriched", "daily_carrier_kpis"}),
        ("tag:kpi", {"daily_carrier_kpis"}),
        ("zone:formatted", {"flights", "airlines", "airports", "planes", "weather"}),
        ("zone:exploitation", {"flights_enriched", "daily_carrier_kpis"}),
        ("zone:landing", {"raw_flights", "raw_airlines", "raw_airports", "raw_planes",
                          "raw_weather"}),
        ("airlines,airports", {"airlines", "airports"}),
        ("airlines, airports,", {"airlines", "airports"}),
        ("airports,tag:kpi", {"airports", "daily_carrier_kpis"}),
        ("pipeline:sources", {"raw_flights", "raw_airlines", "raw_airports", "raw_planes",
                              "raw_weather"}),
    ],
)
def test_selection(flights_dag, selector: str, expected: set[str]) -> None:  # type: ignore[no-untyped-def]
    chosen = flights_dag.select([selector])
    assert set(chosen) == expected
    # DAG order
    assert list(chosen) == [n for n in flights_dag.order if n in expected]


def test_no_selection_is_everything(flights_dag) -> None:  # type: ignore[no-untyped-def]
    assert flights_dag.select([]) == flights_dag.order
    assert len(flights_dag.order) == 12


def test_several_selectors_are_a_union(flights_dag) -> None:  # type: ignore[no-untyped-def]
    assert set(flights_dag.select(["airlines", "+planes"])) == {"airlines", "planes", "raw_planes"}


@pytest.mark.parametrize(
    ("selector", "message", "hint"),
    [
        ("flihgts", "no step named 'flihgts'", "did you mean 'flights'"),
        ("+flights_enriched_x+", "no step named 'flights_enriched_x'", "flights_enriched"),
        ("FLIGHTS", "no step named 'FLIGHTS'", "did you mean 'flights'"),
        ("tag:dayly", "no step has 'tag:dayly'", "did you mean 'daily'"),
        ("zone:formated", "no step has 'zone:formated'", "did you mean 'formatted'"),
        ("tags:daily", "unknown selector 'tags:daily'", "did you mean 'tag'"),
        ("nothing_like_it", "no step named 'nothing_like_it'", "andon plan"),
        (",", "empty selection", "tag:"),
    ],
)
def test_unknown_selection(flights_dag, selector: str, message: str, hint: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DagError) as info:
        flights_dag.select([selector])
    assert message in info.value.message
    assert hint in info.value.hint


def test_unknown_selection_on_the_cli_changes_nothing(flights: Path, cli) -> None:
    code, _, err = cli("run", "flihgts", "-p", flights, "-q")
    assert code != 0
    assert "did you mean 'flights'" in err
    code, out, _ = cli("runs", "-p", flights, "--format", "json")
    assert all(r["status"] != "succeeded" for r in json.loads(out))


def test_run_with_a_selection_builds_only_it(flights: Path, cli) -> None:
    code, _, err = cli("run", "+airlines", "-p", flights, "-q")
    assert code == 0, err
    run = json.loads(cli("runs", "show", "latest", "-p", flights, "--format", "json")[1])
    assert {s["name"] for s in run["steps"]} == {"raw_airlines", "airlines"}
    code, out, _ = cli("tables", "-p", flights, "--format", "json")
    assert {t["table"] for t in json.loads(out)} == {"raw_airlines", "airlines"}
