"""Fingerprints: formatting and comments do not count, code and parameters do, and only the
changed step and what reads from it rebuild."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from andon.project import Project
from tests.conftest import unprotect

ENRICHED = "pipelines/flights/exploitation/flights_enriched.sql"


def plan_actions(cli, root: Path, *args: str) -> dict[str, str]:
    code, out, err = cli("plan", "-p", root, "--format", "json", *args)
    assert code == 0, err
    return {s["name"]: s["action"] for s in json.loads(out)["steps"]}


def last_run_actions(cli, root: Path) -> dict[str, str]:
    code, out, err = cli("runs", "show", "latest", "-p", root, "--format", "json")
    assert code == 0, err
    run = json.loads(out)
    assert run["status"] == "succeeded"
    return {s["name"]: s["action"] for s in run["steps"]}


def built(actions: dict[str, str]) -> set[str]:
    return {n for n, a in actions.items() if a in ("build", "built")}


def edit(path: Path, *pairs: tuple[str, str]) -> None:
    """Replace text in a file; each replaced text must be there."""
    text = path.read_text()
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)


def code_hashes(root: Path, params: dict[str, object] | None = None) -> dict[str, str]:
    return {n: s.code_hash for n, s in Project.load(root, params=params).dag.steps.items()}


@pytest.fixture
def ran_flights(flights: Path, cli) -> Path:
    unprotect(flights)  # these tests change code and re-run in place
    code, _, err = cli("run", "-p", flights, "-q")
    assert code == 0, err
    return flights


def test_reformatting_sql_and_editing_comments_reuses_everything(ran_flights: Path, cli) -> None:
    root = ran_flights
    before = code_hashes(root)
    path = root / ENRICHED
    text = path.read_text()
    header_end = text.index("--- */") + len("--- */")
    header, body = text[:header_end], text[header_end:]
    assert "and the plane that flew it" in header
    header = header.replace("and the plane that flew it", "and the aircraft that flew it")
    body = "\n-- which plane and which weather\n" + body.replace("\n    ", "\n\t\t").replace(
        "SELECT", "select").replace("FROM", "from /* the typed flights */").replace(
        "LEFT JOIN", "left   join") + "\n\n-- end\n"
    path.write_text(header + body)
    assert code_hashes(root) == before
    assert set(plan_actions(cli, root).values()) == {"reuse"}
    assert cli("run", "-p", root, "-q")[0] == 0
    assert set(last_run_actions(cli, root).values()) == {"reused"}


def test_changing_code_rebuilds_the_step_and_its_descendants_only(ran_flights: Path, cli) -> None:
    root = ran_flights
    edit(root / ENRICHED,
         ("    p.year_built\n", "    p.year_built,\n    p.seats * 2 AS double_seats\n"))
    assert built(plan_actions(cli, root)) == {"flights_enriched", "daily_carrier_kpis"}
    assert cli("run", "-p", root, "-q")[0] == 0
    actions = last_run_actions(cli, root)
    assert built(actions) == {"flights_enriched", "daily_carrier_kpis"}
    assert {a for n, a in actions.items() if n not in built(actions)} == {"reused"}
    code, out, _ = cli("query", "SELECT max(double_seats) AS m FROM flights_enriched", "-p", root,
                       "--format", "json")
    assert code == 0
    assert json.loads(out)[0]["m"] > 0


def test_changing_the_case_of_an_alias_changes_the_fingerprint(ran_flights: Path, cli) -> None:
    # DuckDB keeps the case of an alias: the output column is renamed
    root = ran_flights
    # (the step's not_null check follows the rename: a check on a missing column fails at plan)
    edit(root / "pipelines/flights/formatted/airlines.sql", ("AS name", "AS Name"),
         ("column: name}", "column: Name}"))
    assert built(plan_actions(cli, root)) == {"airlines", "daily_carrier_kpis"}
    assert cli("run", "-p", root, "-q")[0] == 0
    code, out, _ = cli("show", "airlines", "-p", root, "--format", "json")
    assert code == 0
    assert [c["name"] for c in json.loads(out)["schema"]] == ["carrier", "Name"]


def test_changing_a_param_rebuilds_the_steps_that_use_it(ran_flights: Path, cli) -> None:
    root = ran_flights
    assert built(plan_actions(cli, root, "--param", "on_time_minutes=5")) == {"daily_carrier_kpis"}
    code, out, _ = cli("query", "SELECT sum(on_time_share) AS s FROM daily_carrier_kpis", "-p",
                       root, "--format", "json")
    assert code == 0
    before = json.loads(out)[0]["s"]
    edit(root / "andon.yaml", ("on_time_minutes: 15", "on_time_minutes: 5"))
    assert cli("run", "-p", root, "-q")[0] == 0
    assert built(last_run_actions(cli, root)) == {"daily_carrier_kpis"}
    out = cli("query", "SELECT sum(on_time_share) AS s FROM daily_carrier_kpis", "-p", root,
              "--format", "json")[1]
    assert json.loads(out)[0]["s"] < before


def test_header_description_and_owner_do_not_count_but_materialization_does(flights: Path) -> None:
    before = code_hashes(flights)
    path = flights / ENRICHED
    text = path.read_text()
    edit(path, ("owner: analytics@example.com", "owner: someone@else.org"),
         ("tags: [daily]", "tags: [daily, weather]"))
    assert code_hashes(flights) == before
    path.write_text(text)
    edit(path, ("materialized: incremental\ntime_column: sched_dep_at\ngrain: day\n", ""))
    after = code_hashes(flights)
    assert after["flights_enriched"] != before["flights_enriched"]
    assert {n for n in after if after[n] != before[n]} == {"flights_enriched"}


def test_source_descriptions_do_not_count_but_types_do(flights: Path) -> None:
    before = code_hashes(flights)
    yaml_path = flights / "andon.yaml"
    original = yaml_path.read_text()
    carrier = "      carrier: {type: string, required: true}\n      name: string\n"
    edit(yaml_path,
         ("description: Carrier codes and names.", "description: Carrier codes, names."),
         ("  raw_airlines:\n", "  raw_airlines:\n    owner: ref@x.org\n"),
         (carrier, carrier.replace("required: true", "required: true, description: IATA")))
    assert code_hashes(flights) == before
    yaml_path.write_text(original)
    edit(yaml_path, (carrier, carrier.replace("required: true", "required: false")))
    after = code_hashes(flights)
    assert {n for n in after if after[n] != before[n]} == {"raw_airlines"}


# Python steps ------------------------------------------------------------------------------

PY_YAML = """
name: py
params:
  factor: 3
sources:
  raw:
    path: in/*.csv
    columns:
      id: {type: integer, required: true}
      v: double
"""

PY_STEPS = '''
"""Two steps in one file."""
import andon
import pyarrow.compute as pc


def _double(t):
    return t.append_column("v2", pc.multiply(t["v"], 2))


@andon.step
def doubled(raw):
    """Each row with v doubled."""
    return _double(raw)  # reuse the helper


@andon.step(tags=["scaled"])
def scaled(raw, params):
    return raw.append_column("v3", pc.multiply(raw["v"], params["factor"]))
'''


@pytest.fixture
def py_project(make_project, cli) -> Path:
    root = make_project({
        "andon.yaml": PY_YAML,
        "in/a.csv": "id,v\n1,1.5\n2,2.5\n",
        "pipelines/p/steps.py": PY_STEPS,
        "pipelines/p/total.sql": "SELECT sum(v2) AS total FROM doubled\n",
    })
    unprotect(root)
    code, _, err = cli("run", "-p", root, "-q")
    assert code == 0, err
    return root


def test_python_docstrings_and_comments_do_not_count(py_project: Path, cli) -> None:
    path = py_project / "pipelines/p/steps.py"
    edit(path, ('"""Each row with v doubled."""', '"""Each row, v times two."""'),
         ("# reuse the helper", "# the helper does it"),
         ("def _double(t):", "def _double(t):\n    # comment\n"),
         ("import andon\n", "import andon  # the decorator\n\n\n"))
    assert set(plan_actions(cli, py_project).values()) == {"reuse"}


def test_python_code_change_rebuilds_only_that_step(py_project: Path, cli) -> None:
    edit(py_project / "pipelines/p/steps.py", ('"v3"', '"v_scaled"'))
    assert built(plan_actions(cli, py_project)) == {"scaled"}


def test_python_helper_change_rebuilds_the_steps_of_the_file(py_project: Path, cli) -> None:
    edit(py_project / "pipelines/p/steps.py", ('pc.multiply(t["v"], 2)', 'pc.multiply(t["v"], 4)'))
    assert built(plan_actions(cli, py_project)) >= {"doubled", "total"}
    assert cli("run", "-p", py_project, "-q")[0] == 0
    out = cli("query", "SELECT total FROM total", "-p", py_project, "--format", "json")[1]
    assert json.loads(out) == [{"total": 16.0}]


def test_python_step_with_params_rebuilds_when_a_param_changes(py_project: Path, cli) -> None:
    assert built(plan_actions(cli, py_project, "--param", "factor=4")) == {"scaled"}
    assert cli("run", "-p", py_project, "-q", "--param", "factor=4")[0] == 0
    out = cli("query", "SELECT v3 FROM scaled ORDER BY id", "-p", py_project, "--format", "json")[1]
    assert json.loads(out) == [{"v3": 6.0}, {"v3": 10.0}]
