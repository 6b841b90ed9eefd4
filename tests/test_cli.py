"""The CLI contract tooling relies on: JSON shapes, exit codes, csv, and the inspect verbs."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from andon.cli import run_cli


@pytest.fixture(scope="module")
def ran(flights_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The flights example after one successful run; tests here only read it."""
    root = tmp_path_factory.mktemp("cli") / "flights"
    shutil.copytree(flights_template, root)
    assert run_cli(["run", "-p", str(root), "-q"]) == 0
    return root


def as_json(cli, *args: str | Path) -> object:
    code, out, err = cli(*args)
    assert code == 0, err
    return json.loads(out)


def test_query_json_is_an_array_of_row_objects(ran: Path, cli) -> None:
    rows = as_json(cli, "query",
                   "SELECT carrier, count(*) AS n FROM flights WHERE carrier IN ('AA', 'UA') "
                   "GROUP BY carrier ORDER BY carrier",
                   "--env", "prod", "--format", "json", "-p", ran)
    assert isinstance(rows, list)
    assert [r["carrier"] for r in rows] == ["AA", "UA"]
    assert all(set(r) == {"carrier", "n"} and isinstance(r["n"], int) and r["n"] > 0
               for r in rows)


def test_query_json_renders_dates_and_nulls(ran: Path, cli) -> None:
    rows = as_json(cli, "query",
                   "SELECT min(flight_date) AS d, NULL AS nothing, 1.5 AS x FROM flights",
                   "--format", "json", "-p", ran)
    assert rows == [{"d": "2013-01-01", "nothing": None, "x": 1.5}]


def test_query_csv(ran: Path, cli) -> None:
    code, out, _ = cli("query", "SELECT carrier, name FROM airlines ORDER BY carrier LIMIT 2",
                       "--format", "csv", "-p", ran)
    assert code == 0
    parsed = list(csv.reader(io.StringIO(out)))
    assert parsed[0] == ["carrier", "name"]
    assert parsed[1][0] == "9E" and len(parsed) == 3


def test_query_errors(ran: Path, cli) -> None:
    code, _, err = cli("query", "SELECT * FROM no_such_table", "-p", ran)
    assert code != 0 and "no_such_table" in err
    code, _, err = cli("query", "SELECT 1", "--env", "prdo", "-p", ran)
    assert code != 0
    assert "no environment named 'prdo'" in err
    assert "did you mean 'prod'" in err


def test_runs_show_latest_json(ran: Path, cli) -> None:
    run = as_json(cli, "runs", "show", "latest", "-p", ran, "--format", "json")
    assert isinstance(run, dict)
    assert isinstance(run["id"], int)
    assert run["status"] == "succeeded"
    assert run["environment"] == "prod"
    assert {s["name"] for s in run["steps"]} == {
        "raw_flights", "raw_airlines", "raw_airports", "raw_planes", "raw_weather", "flights",
        "airlines", "airports", "planes", "weather", "flights_enriched", "daily_carrier_kpis"}
    assert all(s["action"] in ("built", "reused", "failed", "skipped") for s in run["steps"])
    assert {s["action"] for s in run["steps"]} == {"built"}


def test_runs_list(ran: Path, cli) -> None:
    runs = as_json(cli, "runs", "-p", ran, "--format", "json")
    assert isinstance(runs, list) and len(runs) >= 1
    assert runs[0]["status"] == "succeeded" and runs[0]["environment"] == "prod"


def test_human_tables_keep_values_whole_when_piped(ran: Path, cli) -> None:
    code, out, _ = cli("runs", "-p", ran)
    assert code == 0 and "succeeded" in out
    code, out, _ = cli("tables", "-p", ran)
    assert code == 0
    for name in ("daily_carrier_kpis", "flights_enriched", "airlines"):
        assert name in out, name


def test_runs_show_unknown(ran: Path, cli) -> None:
    code, _, err = cli("runs", "show", "99999", "-p", ran)
    assert code != 0 and "99999" in err


def test_plan_json_lists_steps_with_actions(ran: Path, cli) -> None:
    plan = as_json(cli, "plan", "-p", ran, "--format", "json")
    assert isinstance(plan, dict)
    assert plan["environment"] == "prod"
    assert len(plan["steps"]) == 12
    assert {s["action"] for s in plan["steps"]} == {"reuse"}
    assert all({"name", "action", "fingerprint", "parents"} <= set(s) for s in plan["steps"])
    plan = as_json(cli, "plan", "tag:kpi", "-p", ran, "--format", "json")
    assert [s["name"] for s in plan["steps"]] == ["daily_carrier_kpis"]


def test_plan_on_a_fresh_project_builds_everything(flights: Path, cli) -> None:
    plan = as_json(cli, "plan", "-p", flights, "--format", "json")
    assert {s["action"] for s in plan["steps"]} == {"build"}
    # a plan changes nothing: still no environment
    code, _, err = cli("tables", "-p", flights)
    assert code != 0 and "andon run" in err


def test_tables(ran: Path, cli) -> None:
    tables = as_json(cli, "tables", "-p", ran, "--format", "json")
    assert isinstance(tables, list)
    by_name = {t["table"]: t for t in tables}
    assert len(by_name) == 12
    assert by_name["airlines"]["rows"] == 16
    assert by_name["flights"]["zone"] == "formatted"
    code, out, _ = cli("tables", "-p", ran, "--format", "csv")
    assert code == 0
    assert out.splitlines()[0].split(",")[0] == "table"
    assert len(out.splitlines()) == 13


def test_show_table(ran: Path, cli) -> None:
    info = as_json(cli, "show", "flights", "-p", ran, "--format", "json")
    assert isinstance(info, dict)
    assert info["table"] == "flights"
    assert info["parents"] == ["raw_flights"]
    assert info["children"] == ["flights_enriched"]
    schema = {c["name"]: c["type"] for c in info["schema"]}
    assert schema["flight_date"] == "DATE" and schema["cancelled"] == "BOOLEAN"
    assert info["rows"] > 160_000
    code, out, _ = cli("show", "flights", "-p", ran)
    assert code == 0
    assert "parents: raw_flights" in out and "children: flights_enriched" in out


def test_show_unknown_table_suggests(ran: Path, cli) -> None:
    code, _, err = cli("show", "flihgts", "-p", ran)
    assert code != 0
    assert "no table named 'flihgts'" in err
    assert "did you mean 'flights'" in err


def test_lineage_json(ran: Path, cli) -> None:
    info = as_json(cli, "lineage", "flights_enriched", "-p", ran, "--format", "json")
    assert isinstance(info, dict)
    assert info["table"] == "flights_enriched"
    assert {u["name"] for u in info["upstream"]} == {"flights", "weather", "planes"}
    flights = next(u for u in info["upstream"] if u["name"] == "flights")
    assert [p["name"] for p in flights["parents"]] == ["raw_flights"]
    assert [d["name"] for d in info["downstream"]] == ["daily_carrier_kpis"]
    code, out, _ = cli("lineage", "flights_enriched", "-p", ran)
    assert code == 0 and "daily_carrier_kpis" in out


def test_help_lists_every_verb(cli) -> None:
    code, out, _ = cli("--help")
    assert code == 0
    for verb in ("init", "run", "plan", "demo", "tables", "show", "query", "lineage", "rejects",
                 "runs"):
        assert f" {verb} " in out, verb


def test_unknown_verb_and_bad_option_are_usage_errors(cli) -> None:
    code, _, err = cli("frobnicate")
    assert code == 2
    assert "No such command" in err
    code, _, err = cli("query", "SELECT 1", "--format", "xml")
    assert code == 2
    assert "xml" in err


def test_init_empty_project(tmp_path: Path, cli) -> None:
    target = tmp_path / "my-proj"
    code, _, err = cli("init", target)
    assert code == 0, err
    assert (target / "andon.yaml").read_text().startswith("name: my_proj\n")
    assert (target / "pipelines" / "main").is_dir()
    code, out, err = cli("plan", "-p", target, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["steps"] == []


def test_init_example_flights_runs(tmp_path: Path, cli) -> None:
    target = tmp_path / "fl"
    code, _, err = cli("init", target, "--example", "flights")
    assert code == 0, err
    assert len(list((target / "incoming" / "flights").glob("*.csv"))) == 6
    assert len(list((target / "arrivals").glob("*.csv"))) == 6
    assert (target / "pipelines/flights/formatted/flights.sql").is_file()
    plan = as_json(cli, "plan", "-p", target, "--format", "json")
    assert len(plan["steps"]) == 12


def test_init_refuses_a_non_empty_folder(tmp_path: Path, cli) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    code, _, err = cli("init", target)
    assert code != 0
    assert "not empty" in err
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]
    code, _, err = cli("init", target, "--example", "flights")
    assert code != 0
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_init_refuses_an_existing_project(ran: Path, cli) -> None:
    before = (ran / "andon.yaml").read_text()
    code, _, err = cli("init", ran)
    assert code != 0
    assert "already holds a project" in err
    assert (ran / "andon.yaml").read_text() == before


def test_init_unknown_example(tmp_path: Path, cli) -> None:
    code, _, err = cli("init", tmp_path / "x", "--example", "flight")
    assert code != 0
    assert "unknown example 'flight'" in err
    assert not (tmp_path / "x").exists()


def test_failed_run_exit_code_and_status(make_project, cli) -> None:
    root = make_project({
        "andon.yaml": "name: x\n",
        "pipelines/p/ok.sql": "SELECT 1 AS n\n",
        "pipelines/p/boom.sql": "SELECT CAST('abc' AS INTEGER) AS n FROM ok\n",
        "pipelines/p/later.sql": "SELECT n FROM boom\n",
    })
    code, _, err = cli("run", "-p", root, "-q")
    assert code == 1
    assert "boom" in err
    run = as_json(cli, "runs", "show", "latest", "-p", root, "--format", "json")
    assert run["status"] == "failed"
    actions = {s["name"]: s["action"] for s in run["steps"]}
    assert actions == {"ok": "built", "boom": "failed", "later": "skipped"}
    # nothing was published
    code, _, err = cli("query", "SELECT * FROM ok", "-p", root)
    assert code != 0


def test_run_format_json(make_project, cli) -> None:
    root = make_project({"andon.yaml": "name: x\n", "pipelines/p/ok.sql": "SELECT 1 AS n\n"})
    result = as_json(cli, "run", "-p", root, "--format", "json")
    assert result["status"] == "succeeded"
    assert [(s["name"], s["action"]) for s in result["steps"]] == [("ok", "built")]


def test_bad_param_syntax(make_project, cli) -> None:
    root = make_project({"andon.yaml": "name: x\n"})
    code, _, err = cli("plan", "-p", root, "--param", "novalue")
    assert code != 0
    assert "NAME=VALUE" in err


def test_plan_after_a_rejected_build_says_it_checks_again(make_project, cli) -> None:
    root = make_project({
        "andon.yaml": "name: x\n",
        "pipelines/p/codes.sql": """
            /* ---
            checks:
              - {type: not_null, name: codes.code_set, column: code}
            --- */
            SELECT * FROM (VALUES ('A'), (NULL)) t(code)
        """,
        "pipelines/p/later.sql": "SELECT code FROM codes\n",
    })
    code, _, err = cli("run", "-p", root, "-q")
    assert code == 1 and "codes.code_set" in err
    plan = as_json(cli, "plan", "-p", root, "--format", "json")
    steps = {s["name"]: s for s in plan["steps"]}
    assert steps["codes"]["action"] == "check"
    assert "rejected by its checks" in steps["codes"]["reason"]
    assert "not rebuilt" in steps["codes"]["reason"]
    assert steps["later"]["action"] == "build"
    assert plan["counts"]["reuse"] == 0
    code, out, _ = cli("plan", "-p", root)
    assert code == 0
    assert "0 to reuse, 1 rejected before to check again" in out
    # and that is what the run does: the same artifact, checked again, rejected again
    code, out, _ = cli("run", "-p", root, "--format", "json")
    assert code == 1
    result = json.loads(out)
    [codes] = [s for s in result["steps"] if s["name"] == "codes"]
    assert codes["action"] == "failed"
    assert codes["fingerprint"] == steps["codes"]["fingerprint"]
    assert [c["status"] for c in result["checks"] if c["name"] == "codes.code_set"] == ["failed"]
