"""Severities as a user sees them: error stops the line, warn alerts, info records; PII masked
in samples; ``andon test``, ``checks list|history``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Cli, ProjectFactory

CONFIG = """\
name: t
sources:
  customers:
    path: incoming/*.csv
    columns:
      id: {type: integer, required: true}
      email: {type: string, pii: true}
      age: integer
"""


def customers(make_project: ProjectFactory, checks: str, pii: str = "") -> Path:
    root = make_project({
        "andon.yaml": CONFIG,
        "pipelines/p/clean.sql": f"/* ---\n{pii}checks:\n{checks}--- */\n"
                                 "SELECT id, email, age, 'x' || id AS nick FROM customers\n",
        "pipelines/p/report.sql": "SELECT count(*) AS n FROM clean\n",
    })
    (root / "incoming").mkdir()
    (root / "incoming/a.csv").write_text("id,email,age\n1,a@x.com,30\n2,b@x.com,40\n")
    return root


def run_json(cli: Cli, root: Path) -> tuple[int, dict[str, Any], str]:
    code, out, err = cli("run", "-p", root, "--format", "json")
    return code, json.loads(out), err


def published(cli: Cli, root: Path) -> dict[str, str]:
    code, out, err = cli("tables", "-p", root, "--format", "json")
    assert code == 0, err
    return {r["table"]: r["fingerprint"] for r in json.loads(out)}


def latest(cli: Cli, root: Path) -> dict[str, Any]:
    code, out, err = cli("runs", "show", "latest", "-p", root, "--format", "json")
    assert code == 0, err
    return dict(json.loads(out))


def test_error_stops_the_line_and_masks_pii(make_project: ProjectFactory, cli: Cli) -> None:
    root = customers(make_project, "  - {type: between, column: age, min: 0, max: 120}\n",
                     pii="pii: [nick]\n")
    code, _, err = run_json(cli, root)
    assert code == 0, err
    before = published(cli, root)
    # a new file with two impossible ages arrives
    (root / "incoming/b.csv").write_text("id,email,age\n3,c@x.com,150\n4,d@x.com,-5\n"
                                         "5,e@x.com,50\n")
    assert cli("run", "-p", root)[0] == 1
    run = latest(cli, root)
    actions = {s["name"]: s["action"] for s in run["steps"]}
    assert run["status"] == "failed"
    assert actions == {"customers": "built", "clean": "failed", "report": "skipped"}
    clean = next(s for s in run["steps"] if s["name"] == "clean")
    assert "clean.between.age" in clean["error"]
    assert "2 failing rows of 5" in clean["error"]
    assert "age=150" in clean["error"] and "age=-5" in clean["error"]
    assert "a@x.com" not in clean["error"] and "c@x.com" not in clean["error"]
    assert "email=***" in clean["error"] and "nick=***" in clean["error"]
    assert published(cli, root) == before  # prod still shows the old fingerprints
    # the JSON of a run carries the same, masked
    code, result, err = run_json(cli, root)
    assert code == 1
    check = next(c for c in result["checks"] if c["name"] == "clean.between.age")
    assert check["status"] == "failed" and check["failing"] == 2
    assert {r["age"] for r in check["sample"]} == {150, -5}
    assert {r["email"] for r in check["sample"]} == {"***"}
    assert {r["nick"] for r in check["sample"]} == {"***"}
    assert {r["id"] for r in check["sample"]} == {3, 4}


def test_warn_alerts_and_info_records(make_project: ProjectFactory, cli: Cli) -> None:
    root = customers(make_project,
                     "  - {type: between, column: age, max: 35, severity: warn}\n"
                     "  - {type: row_count, min: 10, severity: info}\n"
                     "  - {type: not_null, column: email, severity: info}\n")
    code, result, err = run_json(cli, root)
    assert code == 0, err
    got = {c["name"]: (c["severity"], c["status"]) for c in result["checks"]}
    assert got == {"clean.between.age": ("warn", "failed"),
                   "clean.row_count": ("info", "recorded"),
                   "clean.not_null.email": ("info", "passed")}
    assert set(published(cli, root)) == {"customers", "clean", "report"}
    assert result["status"] == "succeeded"
    # a plain run prints the warning, and succeeds
    (root / "incoming/b.csv").write_text("id,email,age\n3,c@x.com,50\n")
    code, out, err = cli("run", "-p", root)
    assert code == 0
    assert "[warn] clean.between.age: 2 failing rows of 3" in out + err


def test_andon_test_lists_each_check(make_project: ProjectFactory, cli: Cli) -> None:
    root = customers(make_project, "  - {type: row_count, min: 1}\n"
                                   "  - {type: between, column: age, max: 35, severity: warn}\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    code, out, err = cli("test", "-p", root, "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["name"], r["table"], r["severity"], r["status"], r["metric"]) for r in rows] == [
        ("clean.row_count", "clean", "error", "passed", 2.0),
        ("clean.between.age", "clean", "warn", "failed", 1.0),
    ]
    # a check added later is judged against what prod holds now, without a rebuild;
    # an error failure makes `andon test` exit 1
    (root / "checks").mkdir()
    (root / "checks/more.yaml").write_text("clean:\n  - {type: row_count, min: 3, "
                                           "name: at_least_3}\n")
    code, out, err = cli("test", "-p", root, "--format", "json")
    assert code == 1
    assert {r["name"]: r["status"] for r in json.loads(out)} == {
        "clean.row_count": "passed", "clean.between.age": "failed", "at_least_3": "failed"}
    code, out, err = cli("test", "-p", root)
    assert code == 1 and "3 checks: 1 passed, 1 warn failed, 1 error-severity failed" in out


def test_checks_list_names_where_each_is_declared(make_project: ProjectFactory,
                                                  cli: Cli) -> None:
    root = customers(make_project, "  - {type: row_count, min: 1}\n")
    (root / "checks").mkdir()
    (root / "checks/c.yaml").write_text("report:\n  - {type: row_count, min: 1, name: r1}\n")
    code, out, err = cli("checks", "list", "-p", root, "--format", "json")
    assert code == 0, err
    got = {r["name"]: (r["table"], r["type"], r["where"]) for r in json.loads(out)}
    assert got == {"clean.row_count": ("clean", "row_count", "pipelines/p/clean.sql:3"),
                   "r1": ("report", "row_count", "checks/c.yaml:2")}


def test_checks_history(make_project: ProjectFactory, cli: Cli) -> None:
    root = customers(make_project, "  - {type: row_count, min: 1}\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    (root / "incoming/b.csv").write_text("id,email,age\n3,c@x.com,50\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    code, out, err = cli("checks", "history", "clean.row_count", "-p", root, "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["metric"], r["status"], r["environment"]) for r in rows] == [
        (2.0, "passed", "prod"), (3.0, "passed", "prod")]
    assert [r["run"] for r in rows] == [1, 2]
    code, out, err = cli("checks", "history", "clean.row_cuont", "-p", root)
    assert code != 0 and "did you mean 'clean.row_count'" in err


def test_checks_history_shows_step_artifact_threshold(make_project: ProjectFactory,
                                                      cli: Cli) -> None:
    root = customers(make_project, "  - {type: row_count, min: 1}\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    fingerprint = published(cli, root)["clean"]
    _code, out, _err = cli("checks", "history", "clean.row_count", "-p", root, "--format", "json")
    row = json.loads(out)[0]
    assert row["step"] == "clean" and row["threshold"] == {"min": 1.0}
    assert row["artifact"].startswith(fingerprint)
