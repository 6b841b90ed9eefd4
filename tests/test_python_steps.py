"""Python steps: ``@andon.step`` functions whose parameter names are their input tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from andon.errors import AndonError, ConfigError
from andon.project import Project
from tests.conftest import unprotect

YAML = """
name: py
params:
  factor: 10
sources:
  raw:
    path: in/*.csv
    columns:
      id: {type: integer, required: true}
      v: double
      cat: string
"""
DATA = "id,v,cat\n1,1.5,a\n2,2.5,b\n3,,a\n"


def make(make_project, steps: str, extra: dict[str, str] | None = None) -> Path:
    return make_project({
        "andon.yaml": YAML,
        "in/data.csv": DATA,
        "pipelines/p/steps.py": steps,
        **(extra or {}),
    })


def rows(cli, root: Path, sql: str) -> list[dict[str, object]]:
    code, out, err = cli("query", sql, "-p", root, "--format", "json")
    assert code == 0, err
    result: list[dict[str, object]] = json.loads(out)
    return result


def latest(cli, root: Path) -> dict[str, object]:
    code, out, err = cli("runs", "show", "latest", "-p", root, "--format", "json")
    assert code == 0, err
    run: dict[str, object] = json.loads(out)
    return run


def load_error(root: Path) -> AndonError:
    with pytest.raises(AndonError) as info:
        Project.load(root)
    return info.value


def test_parameter_names_are_inputs(make_project) -> None:
    root = make(make_project, """
        import andon

        @andon.step
        def first(raw):
            return raw

        @andon.step(name="second_step", tags=["t"], zone="exploitation", owner="me")
        def second(first, raw, params, context):
            '''Joins things.'''
            return first
        """)
    steps = Project.load(root).dag.steps
    assert steps["first"].kind == "python"
    assert steps["first"].parents == ("raw",)
    second = steps["second_step"]
    assert second.parents == ("first", "raw")  # params and context are not tables
    assert second.config.tags == ["t"]
    assert second.zone == "exploitation"
    assert second.config.owner == "me"
    assert second.config.description == "Joins things."
    assert second.file == root / "pipelines/p/steps.py"


def test_pyarrow_pandas_and_polars_in_and_out(make_project, cli) -> None:
    root = make(make_project, """
        import andon
        import pandas as pd
        import polars as pl
        import pyarrow as pa
        import pyarrow.compute as pc


        @andon.step
        def arrow_step(raw):
            assert isinstance(raw, pa.Table), type(raw)
            return raw.append_column("v2", pc.multiply(raw["v"], 2))


        @andon.step
        def pandas_step(arrow_step: pd.DataFrame, params) -> pd.DataFrame:
            assert isinstance(arrow_step, pd.DataFrame), type(arrow_step)
            out = arrow_step[["id", "v2"]].copy()
            out["v10"] = out["v2"] * params["factor"]
            return out


        @andon.step
        def polars_step(pandas_step: pl.DataFrame) -> pl.DataFrame:
            assert isinstance(pandas_step, pl.DataFrame), type(pandas_step)
            return pandas_step.filter(pl.col("v10").is_not_null()).select(
                pl.col("id"), pl.col("v10").sum().over(pl.lit(1)).alias("total"))
        """, {"pipelines/p/report.sql": "SELECT max(total) AS total FROM polars_step\n"})
    code, _, err = cli("run", "-p", root, "-q")
    assert code == 0, err
    assert rows(cli, root, "SELECT id, v2 FROM arrow_step ORDER BY id") == [
        {"id": 1, "v2": 3.0}, {"id": 2, "v2": 5.0}, {"id": 3, "v2": None}]
    assert rows(cli, root, "SELECT id, v10 FROM pandas_step ORDER BY id") == [
        {"id": 1, "v10": 30.0}, {"id": 2, "v10": 50.0}, {"id": 3, "v10": None}]
    assert rows(cli, root, "SELECT total FROM report") == [{"total": 80.0}]


def test_params_argument_gets_cli_overrides(make_project, cli) -> None:
    root = make(make_project, """
        import andon
        import pyarrow as pa

        @andon.step
        def settings(params):
            return pa.table({"factor": [params["factor"]]})
        """)
    assert cli("run", "-p", root, "-q", "--param", "factor=7")[0] == 0
    assert rows(cli, root, "SELECT factor FROM settings") == [{"factor": 7}]


FAILING = """
import andon
import pyarrow as pa


@andon.step
def good(raw):
    return raw


def helper(table):
    return table.column("no_such_column")


@andon.step
def bad(good):
    helper(good)
    return good


@andon.step
def after_bad(bad):
    return bad
"""


def test_step_that_raises_fails_the_run_shows_user_traceback_and_changes_nothing(
    make_project, cli
) -> None:
    root = unprotect(make(make_project, FAILING.replace("helper(good)", "good")))
    assert cli("run", "-p", root, "-q")[0] == 0
    before = rows(cli, root, "SELECT count(*) AS n FROM good")
    (root / "in/more.csv").write_text("id,v,cat\n4,4.5,c\n")
    (root / "pipelines/p/steps.py").write_text(FAILING)

    code, out, err = cli("run", "-p", root)
    assert code == 1
    text = out + err
    steps_py = str(root / "pipelines/p/steps.py")
    assert steps_py in text
    assert 'line 12, in helper' in text.replace('"', "")  # the user's frame, by line
    assert "line 17, in bad" in text.replace('"', "")
    assert "no_such_column" in text
    assert "andon/build.py" not in text and "andon/runner.py" not in text

    run = latest(cli, root)
    assert run["status"] == "failed"
    actions = {s["name"]: s["action"] for s in run["steps"]}  # type: ignore[attr-defined]
    assert actions["bad"] == "failed"
    assert actions["after_bad"] == "skipped"
    assert actions["raw"] == "built" and actions["good"] == "built"
    failed = next(s for s in run["steps"] if s["name"] == "bad")  # type: ignore[attr-defined]
    assert "no_such_column" in failed["error"]
    # prod still has the old data: the new file is not published
    assert rows(cli, root, "SELECT count(*) AS n FROM good") == before
    assert rows(cli, root, "SELECT count(*) AS n FROM raw") == [{"n": 3}]


def test_returning_the_wrong_type_is_a_clear_error(make_project, cli) -> None:
    root = make(make_project, """
        import andon

        @andon.step
        def listy(raw):
            return [1, 2, 3]
        """)
    code, out, err = cli("run", "-p", root)
    assert code == 1
    text = out + err
    assert "returned list" in text
    assert "pyarrow.Table" in text and "pandas.DataFrame" in text
    assert "steps.py" in text
    run = latest(cli, root)
    assert run["status"] == "failed"


def test_import_error_in_step_file_is_config_error_with_line(make_project, cli) -> None:
    root = make(make_project, "import andon\n\nimport no_such_package_xyz\n")
    e = load_error(root)
    assert isinstance(e, ConfigError)
    assert e.file == str(root / "pipelines/p/steps.py")
    assert e.line == 3
    assert "no_such_package_xyz" in e.message
    code, _, err = cli("run", "-p", root, "-q")
    assert code != 0
    assert "steps.py:3" in err
    assert not (root / ".andon").exists()


def test_error_raised_while_importing_names_its_line(make_project) -> None:
    root = make(make_project, "import andon\n\nX = 1\nY = X / 0\n")
    e = load_error(root)
    assert e.line == 4
    assert "ZeroDivisionError" in e.message


def test_syntax_error_in_step_file(make_project) -> None:
    root = make(make_project, "import andon\n\n@andon.step\ndef f(raw)\n    return raw\n")
    e = load_error(root)
    assert isinstance(e, ConfigError)
    assert "syntax error" in e.message
    assert e.line == 4


def test_step_reading_an_unknown_table_suggests_one(make_project) -> None:
    root = make(make_project, "import andon\n\n@andon.step\ndef f(rwa):\n    return rwa\n")
    e = load_error(root)
    assert "unknown table 'rwa'" in e.message
    assert "did you mean 'raw'" in e.hint
    assert e.line == 3


def test_step_name_must_be_an_identifier(make_project) -> None:
    root = make(make_project,
                "import andon\n\n@andon.step(name='my-step')\ndef f(raw):\n    return raw\n")
    e = load_error(root)
    assert "'my-step' is not a SQL identifier" in e.message
    assert e.line == 3


def test_varargs_cannot_be_inputs(make_project) -> None:
    root = make(make_project, "import andon\n\n@andon.step\ndef f(raw, *more):\n    return raw\n")
    e = load_error(root)
    assert "'more'" in e.message
    assert e.step == "f"


def test_invalid_decorator_arguments(make_project) -> None:
    root = make(make_project, "import andon\n\n@andon.step(materialized='incremental')\n"
                              "def f(raw):\n    return raw\n")
    e = load_error(root)
    assert isinstance(e, ConfigError)
    assert "time_column" in e.message
    assert e.step == "f"


def test_helper_modules_and_undecorated_functions_are_not_steps(make_project) -> None:
    root = make(make_project, "import andon\n\ndef helper(raw):\n    return raw\n",
                {"pipelines/p/_private.py": "raise RuntimeError('never imported')\n"})
    assert set(Project.load(root).dag.steps) == {"raw"}


def test_a_step_can_ask_which_environment_and_run_it_is_in(make_project, cli) -> None:
    root = make_project({
        "andon.yaml": "name: ctx\n",
        "pipelines/p/whereabouts.py": (
            "import andon\nimport pyarrow as pa\n\n\n@andon.step\n"
            "def whereabouts(context) -> pa.Table:\n"
            "    return pa.table({'env': [context['environment']], "
            "'run': [context['run_id']]})\n"),
    })
    assert cli("env", "create", "dev", "--empty", "-p", root)[0] == 0
    assert cli("run", "-p", root, "--env", "dev", "-q")[0] == 0
    out = cli("query", "SELECT env, run FROM whereabouts", "-p", root, "--env", "dev",
              "--format", "json")[1]
    assert json.loads(out) == [{"env": "dev", "run": 1}]
