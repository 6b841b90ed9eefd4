"""One broken file does not stop reading: reads warn and keep working, builds refuse with
every problem listed, and with ``--format json`` every error has one JSON shape."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

import andon
from andon.errors import ProjectInvalid, SqlError
from tests.conftest import Cli, ProjectFactory

PROJECT = {
    "andon.yaml": "name: reads\n",
    "pipelines/p/codes.sql": """
        /* ---
        checks:
          - {type: not_null, name: codes.code_set, column: code}
        --- */
        SELECT * FROM (VALUES ('A', 1), ('B', 2)) t(code, n)
    """,
    "pipelines/p/totals.sql": "SELECT sum(n) AS n FROM codes\n",
    "pipelines/p/extra.sql": "SELECT 1 AS x\n",
    "pipelines/p/on_extra.sql": "SELECT x FROM extra\n",
}


@pytest.fixture
def built(make_project: ProjectFactory, cli: Cli) -> Path:
    root = make_project(PROJECT)
    code, out, err = cli("run", "-p", root, "-q")
    assert code == 0, out + err
    return root


def break_file(root: Path, step: str, text: str = "SELECT x FROM (\n") -> Path:
    path = root / "pipelines" / "p" / f"{step}.sql"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def as_json(out: str) -> Any:
    return json.loads(out)


def test_reading_commands_keep_working_and_warn(built: Path, cli: Cli) -> None:
    break_file(built, "extra")
    code, out, err = cli("tables", "-p", built)
    assert code == 0, err
    assert "totals" in out
    assert "warning:" in err and "extra.sql" in err

    code, out, err = cli("query", "SELECT n FROM totals", "-p", built, "--format", "json")
    assert code == 0, err
    doc = as_json(out)
    assert doc["rows"] == [{"n": 3}]
    [problem] = doc["problems"]
    assert problem["kind"] == "invalid" and problem["file"].endswith("extra.sql")
    assert problem["line"] == 1 and problem["message"]

    for args in (["runs"], ["runs", "show", "latest"], ["show", "codes"],
                 ["lineage", "totals"], ["env", "list"], ["env", "log", "prod"],
                 ["checks", "history", "codes.code_set"], ["env", "diff", "prod", "prod"]):
        code, out, err = cli(*args, "-p", built, "--format", "json")
        assert code == 0, (args, out, err)
        assert as_json(out)["problems"][0]["file"].endswith("extra.sql"), args
        assert "extra.sql" in err, args


def test_without_problems_json_stays_a_list(built: Path, cli: Cli) -> None:
    code, out, err = cli("tables", "-p", built, "--format", "json")
    assert code == 0 and err == ""
    assert isinstance(as_json(out), list)


def test_building_commands_refuse_with_every_problem(built: Path, cli: Cli) -> None:
    break_file(built, "extra")
    break_file(built, "totals", "SELECT sum(n AS n FROM codes\n")
    for args in (["run"], ["plan"], ["test"], ["promote", "prod", "--to", "prod"]):
        code, _out, err = cli(*args, "-p", built)
        assert code != 0, args
        assert "2 problems in the project" in err, (args, err)
        assert "extra.sql:1" in err and "totals.sql:1" in err, (args, err)
    with pytest.raises(ProjectInvalid) as caught:
        andon.Project.load(built)
    assert {Path(str(p.file)).name for p in caught.value.problems} == {"extra.sql",
                                                                       "totals.sql"}


def test_one_problem_is_raised_as_itself(built: Path) -> None:
    break_file(built, "extra")
    with pytest.raises(SqlError) as caught:
        andon.Project.load(built)
    assert caught.value.line == 1
    project = andon.Project.load(built, tolerant=True)
    # the broken step and the step reading it are left out; the rest is whole
    assert set(project.dag.steps) == {"codes", "totals"}
    assert [Path(str(p.file)).name for p in project.problems] == ["extra.sql"]
    with pytest.raises(SqlError):
        andon.run(project)
    project.close()


def test_a_step_reading_an_unknown_table_is_left_out_with_its_problem(
    built: Path, cli: Cli
) -> None:
    break_file(built, "on_extra", "SELECT x FROM extraa\n")
    code, out, err = cli("lineage", "codes", "-p", built, "--format", "json")
    assert code == 0, err
    [problem] = as_json(out)["problems"]
    assert "unknown table 'extraa'" in problem["message"]
    assert problem["hint"].startswith("did you mean 'extra'")


def errors_of(cli: Cli, *args: str | Path) -> dict[str, Any]:
    code, out, err = cli(*args, "--format", "json")
    assert code != 0, (args, out, err)
    doc = as_json(out)
    assert set(doc) == {"error"}, args
    error = doc["error"]
    assert {"kind", "message", "file", "line", "hint"} <= set(error), args
    assert error["kind"] in {"invalid", "not_found", "conflict", "forbidden", "failed"}
    return dict(error)


def test_json_errors_have_one_shape_and_a_kind(built: Path, cli: Cli) -> None:
    assert errors_of(cli, "show", "nope", "-p", built)["kind"] == "not_found"
    assert errors_of(cli, "tables", "--env", "nope", "-p", built)["kind"] == "not_found"
    assert errors_of(cli, "query", "SELECT * FROM nope", "-p", built)["kind"] == "invalid"
    assert errors_of(cli, "runs", "show", "999", "-p", built)["kind"] == "not_found"
    assert errors_of(cli, "promote", "prod", "--to", "prod", "-p", built)["kind"] == "conflict"
    assert errors_of(cli, "env", "diff", "prod", "nope", "-p", built)["kind"] == "not_found"
    assert errors_of(cli, "tables", "--no-such-option", "-p", built)["kind"] == "invalid"
    elsewhere = built.parent / "not-a-project"
    elsewhere.mkdir()
    assert errors_of(cli, "tables", "-p", elsewhere)["kind"] == "invalid"

    break_file(built, "extra")
    error = errors_of(cli, "run", "-p", built)
    assert error["kind"] == "invalid" and error["file"].endswith("extra.sql")
    assert error["line"] == 1


def test_refusals_and_failed_runs_in_json(built: Path, cli: Cli) -> None:
    break_file(built, "codes", """
        /* ---
        checks:
          - {type: not_null, name: codes.code_set, column: code}
        --- */
        SELECT * FROM (VALUES ('A', 1), (NULL, 2)) t(code, n)
    """)
    error = errors_of(cli, "run", "-p", built)
    assert error["kind"] == "forbidden" and "protected" in error["message"]
    assert cli("env", "create", "dev", "-p", built)[0] == 0
    # a run that ran and failed reports itself (exit 1), it is not an error
    code, out, err = cli("run", "--env", "dev", "-p", built, "--format", "json")
    assert code == 1, out + err
    assert as_json(out)["status"] == "failed"


def test_human_errors_stay_message_and_hint(built: Path, cli: Cli) -> None:
    code, out, err = cli("show", "codez", "-p", built)
    assert code != 0 and out == ""
    assert "error:" in err and "no table named 'codez'" in err
    assert "hint: did you mean 'codes'?" in err
