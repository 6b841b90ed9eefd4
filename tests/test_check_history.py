"""What ``andon checks history`` and ``andon checks suggest`` show is what happened: one
environment, each verdict on an artifact once; no suggestion a table could never meet."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import Cli, ProjectFactory


def counted(make_project: ProjectFactory) -> Path:
    return make_project({
        "andon.yaml": "name: t\nparams:\n  n: 3\n",
        "pipelines/p/a.sql": "/* ---\nchecks:\n  - {type: row_count, min: 1, name: rc}\n--- */\n"
                             "SELECT i AS id, i % 3 AS flights FROM range({{ n }}) t(i)\n",
    })


def test_history_shows_one_environment_and_each_verdict_once(make_project: ProjectFactory,
                                                              cli: Cli) -> None:
    root = counted(make_project)
    assert cli("run", "-p", root, "-q")[0] == 0
    assert cli("env", "create", "dev", "-p", root)[0] == 0
    assert cli("run", "-p", root, "-q", "--env", "dev", "--param", "n=5")[0] == 0
    for env in ("prod", "prod", "dev"):  # re-tests of the same artifacts
        assert cli("test", "-p", root, "--env", env)[0] == 0
    for args in ((), ("--env", "prod")):
        code, out, err = cli("checks", "history", "rc", "-p", root, "--format", "json", *args)
        assert code == 0, err
        rows = json.loads(out)
        assert [(r["environment"], r["metric"]) for r in rows] == [("prod", 3.0)], rows
    code, out, err = cli("checks", "history", "rc", "-p", root, "--format", "json",
                         "--env", "dev")
    assert [(r["environment"], r["metric"]) for r in json.loads(out)] == [("dev", 5.0)]


def test_suggested_minimums_of_counts_are_not_negative(make_project: ProjectFactory,
                                                       cli: Cli) -> None:
    root = counted(make_project)
    assert cli("run", "-p", root, "-q", "--param", "n=30")[0] == 0
    code, out, err = cli("checks", "suggest", "a", "-p", root)
    assert code == 0, err
    between = {c["column"]: c for c in yaml.safe_load(out)["a"] if c["type"] == "between"}
    assert between["flights"]["min"] == 0 and between["flights"]["max"] >= 2
    assert between["id"]["min"] == 0
