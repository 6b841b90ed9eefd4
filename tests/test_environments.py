"""Environments: create (from ENV, ENV@TIME, ENV@COMMIT, a git branch), list, log, delete,
reset; branch runs reuse what they did not change; git state of runs; the time machine;
``andon env diff``; invalid names."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import andon
from tests.conftest import Cli, ProjectFactory
from tests.envkit import (
    SMALL,
    STEPS,
    actions,
    artifact_count,
    edit,
    head,
    iso,
    rows,
    run_json,
    steps_of,
    warehouse_files,
)


@pytest.fixture
def small(make_project: ProjectFactory, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The small project, run once into prod, as user alice."""
    monkeypatch.setenv("ANDON_USER", "alice")
    root = make_project(SMALL)
    assert cli("run", "-p", root, "-q")[0] == 0
    return root


def env_list(cli: Cli, root: Path) -> dict[str, dict[str, Any]]:
    code, out, err = cli("env", "list", "-p", root, "--format", "json")
    assert code == 0, err
    return {e["name"]: e for e in json.loads(out)}


def env_log(cli: Cli, root: Path, env: str) -> list[dict[str, Any]]:
    code, out, err = cli("env", "log", env, "-p", root, "--format", "json")
    assert code == 0, err
    return list(json.loads(out))


# create -----------------------------------------------------------------------------------


def test_create_copies_a_pointer_not_data(small: Path, cli: Cli) -> None:
    files, artifacts = warehouse_files(small), artifact_count(small)
    code, out, _ = cli("env", "create", "dev", "-p", small)
    assert code == 0 and "created environment dev" in out
    # nothing was written to the warehouse, no artifact recorded: dev is a second pointer
    assert warehouse_files(small) == files
    assert artifact_count(small) == artifacts
    assert head(small, "dev") == head(small, "prod")
    assert steps_of(small, "dev") == steps_of(small, "prod")
    assert set(steps_of(small, "dev")) == STEPS
    # and it reads the same tables
    assert rows(cli, small, "SELECT count(*) AS n FROM big", "--env", "dev") == [{"n": 2}]


def test_create_twice_and_from_unknown_environment_are_refused(small: Path, cli: Cli) -> None:
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    code, _, err = cli("env", "create", "dev", "-p", small)
    assert code != 0 and "exists already" in err
    code, _, err = cli("env", "create", "dev2", "--from", "prdo", "-p", small)
    assert code != 0 and "no environment named 'prdo'" in err and "did you mean 'prod'" in err
    assert "dev2" not in env_list(cli, small)


def test_create_from_a_time_or_a_commit(small: Path, cli: Cli) -> None:
    first = head(small)
    time.sleep(0.05)
    between = iso(time.time())
    time.sleep(0.05)
    # prod moves: same code, other parameters (a protected environment allows it)
    assert cli("run", "-p", small, "-q", "--param", "threshold=3")[0] == 0
    second = head(small)
    assert second != first

    assert cli("env", "create", "then", "--from", f"prod@{between}", "-p", small)[0] == 0
    assert head(small, "then") == first
    assert cli("env", "create", "bycommit", "--from", f"prod@{first[:8]}", "-p", small)[0] == 0
    assert head(small, "bycommit") == first
    assert cli("env", "create", "now", "--from", "prod", "-p", small)[0] == 0
    assert head(small, "now") == second
    # the old pointer reads the old data
    assert rows(cli, small, "SELECT count(*) AS n FROM big", "--env", "then") == [{"n": 2}]
    assert rows(cli, small, "SELECT count(*) AS n FROM big", "--env", "now") == [{"n": 1}]

    code, _, err = cli("env", "create", "x", "--from", "prod@2001-01-01", "-p", small)
    assert code != 0 and "did not exist yet" in err and "history starts at" in err
    code, _, err = cli("env", "create", "x", "--from", "prod@yesterday", "-p", small)
    assert code != 0 and "'yesterday' is not a time" in err
    assert "x" not in env_list(cli, small)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                               "HOME": str(root), "PATH": "/usr/bin:/bin:/usr/local/bin"})
    return done.stdout.strip()


def test_create_named_after_the_git_branch_of_the_project(
    small: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (small / ".gitignore").write_text(".andon/\n")
    git(small, "init", "-q", "-b", "feature/new-kpi")
    git(small, "add", ".")
    git(small, "commit", "-q", "-m", "init")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the project's branch counts, not the shell's folder
    code, _out, err = cli("env", "create", "--git", "-p", small)
    assert code == 0, err
    assert "feature-new-kpi" in env_list(cli, small)
    assert head(small, "feature-new-kpi") == head(small)

    git(small, "checkout", "-q", "--detach")
    code, _, err = cli("env", "create", "--git", "-p", small)
    assert code != 0 and "not on a git branch" in err


def test_runs_record_the_git_commit_and_whether_the_tree_was_dirty(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = make_project({**SMALL, ".gitignore": ".andon/\n"})
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "init")
    sha = git(root, "rev-parse", "HEAD")
    assert cli("run", "-p", root, "-q")[0] == 0
    run = json.loads(cli("runs", "show", "latest", "-p", root, "--format", "json")[1])
    assert run["git_sha"] == sha and run["git_dirty"] is False
    assert cli("env", "create", "dev", "-p", root)[0] == 0
    edit(root, "big", ">=", ">")
    assert cli("run", "-p", root, "-q", "--env", "dev")[0] == 0
    run = json.loads(cli("runs", "show", "latest", "-p", root, "--format", "json")[1])
    assert run["git_sha"] == sha and run["git_dirty"] is True
    with andon.Project.load(root).store.engine.connect() as conn:
        from sqlalchemy import select

        from andon.store import schema as t

        commit = conn.execute(select(t.commits.c.git_sha).where(
            t.commits.c.id == head(root, "dev"))).scalar_one()
    assert commit == sha


# list, log, delete, reset -----------------------------------------------------------------


def test_list_and_log_show_every_move_with_who_why_from_and_to(
    small: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    prod = head(small)
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    monkeypatch.setenv("ANDON_USER", "bob")
    edit(small, "big", ">=", ">")
    code, result = run_json(cli, small, "--env", "dev")
    assert code == 0
    moved = head(small, "dev")
    assert moved != prod
    monkeypatch.setenv("ANDON_USER", "carol")
    assert cli("env", "reset", "dev", "--to", prod, "-p", small)[0] == 0

    log = env_log(cli, small, "dev")  # newest first
    assert [(e["who"], e["from"], e["to"]) for e in log] == [
        ("carol", moved, prod), ("bob", prod, moved), ("alice", None, prod)]
    assert log[2]["why"] == "created from prod"
    assert log[1]["why"] == f"run {result['id']}" and log[1]["run"] == result["id"]
    assert log[0]["why"] == f"reset to {prod}"

    envs = env_list(cli, small)
    assert set(envs) == {"dev", "prod"}
    assert envs["dev"]["base"] == "prod" and envs["dev"]["owner"] == "alice"
    assert envs["dev"]["protected"] is False and envs["prod"]["protected"] is True
    assert envs["dev"]["commit"] == prod
    assert envs["dev"]["last_run"] == f"{result['id']} succeeded"

    code, _, err = cli("env", "log", "dve", "-p", small)
    assert code != 0 and "did you mean 'dev'" in err


def test_delete_removes_the_pointer_but_not_its_history_and_refuses_protected(
    small: Path, cli: Cli
) -> None:
    files = warehouse_files(small)
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    code, out, _ = cli("env", "delete", "dev", "-p", small)
    assert code == 0 and "deleted environment dev" in out
    assert "dev" not in env_list(cli, small)
    assert env_log(cli, small, "dev")[0]["why"] == "deleted"
    assert warehouse_files(small) == files  # artifacts stay until gc

    prod = head(small)
    code, _, err = cli("env", "delete", "prod", "-p", small)
    assert code != 0 and "protected" in err
    assert head(small) == prod
    # an environment protected in andon.yaml
    with (small / "andon.yaml").open("a") as f:
        f.write("environments:\n  staging: {protected: true}\n")
    assert cli("env", "create", "staging", "-p", small)[0] == 0
    code, _, err = cli("env", "delete", "staging", "-p", small)
    assert code != 0 and "protected" in err
    assert "staging" in env_list(cli, small)
    code, _, err = cli("env", "delete", "nope", "-p", small)
    assert code != 0 and "no environment named 'nope'" in err


def test_reset_rolls_back_to_a_commit_or_a_time_and_is_logged(small: Path, cli: Cli) -> None:
    first = head(small)
    time.sleep(0.05)
    between = iso(time.time())
    time.sleep(0.05)
    assert cli("run", "-p", small, "-q", "--param", "threshold=3")[0] == 0
    second = head(small)
    assert rows(cli, small, "SELECT count(*) AS n FROM big") == [{"n": 1}]

    code, _out, err = cli("env", "reset", "prod", "--to", between, "-p", small)
    assert code == 0, err
    assert head(small) == first
    assert rows(cli, small, "SELECT count(*) AS n FROM big") == [{"n": 2}]
    code, _, err = cli("env", "reset", "prod", "--to", second[:10], "-p", small)
    assert code == 0, err
    assert head(small) == second
    log = env_log(cli, small, "prod")
    assert [e["why"] for e in log[:2]] == [f"reset to {second[:10]}", f"reset to {between}"]
    assert (log[1]["from"], log[1]["to"]) == (second, first)

    code, _, err = cli("env", "reset", "prod", "--to", "1999-01-01", "-p", small)
    assert code != 0 and "did not exist yet" in err
    assert head(small) == second


def test_a_protected_environment_resets_only_to_its_own_commits(small: Path, cli: Cli) -> None:
    prod = head(small)
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    edit(small, "big", ">=", ">")
    assert cli("run", "-p", small, "-q", "--env", "dev")[0] == 0
    dev = head(small, "dev")
    # dev's commit never went through a promotion: prod must not jump to it
    code, _, err = cli("env", "reset", "prod", "--to", dev, "-p", small)
    assert code != 0 and "protected" in err and "andon promote" in err
    assert head(small) == prod
    # an unprotected environment may point anywhere
    assert cli("env", "reset", "dev", "--to", prod, "-p", small)[0] == 0
    assert head(small, "dev") == prod


# branch runs ------------------------------------------------------------------------------


def test_branch_run_builds_only_changed_steps_and_shares_the_rest(
    small: Path, cli: Cli
) -> None:
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    prod = steps_of(small)
    files, artifacts = warehouse_files(small), artifact_count(small)
    edit(small, "big", ">=", ">")
    code, result = run_json(cli, small, "--env", "dev")
    assert code == 0
    assert actions(result) == {"codes": "reused", "facts": "reused", "big": "built"}
    dev = steps_of(small, "dev")
    assert {s for s in STEPS if dev[s] != prod[s]} == {"big"}
    # one new artifact, written under its own folder; nothing copied for the rest
    assert artifact_count(small) == artifacts + 1
    new = warehouse_files(small) - files
    assert new and all(f.startswith(f"big/{dev['big']}/") for f in new)
    assert files <= warehouse_files(small)
    assert steps_of(small) == prod  # prod did not move


# time machine -----------------------------------------------------------------------------


def test_query_as_of_a_time_or_a_commit_reads_old_data(small: Path, cli: Cli) -> None:
    first = head(small)
    time.sleep(0.05)
    between = iso(time.time())
    time.sleep(0.05)
    assert cli("run", "-p", small, "-q", "--param", "threshold=3")[0] == 0
    sql = "SELECT count(*) AS n FROM big"
    assert rows(cli, small, sql) == [{"n": 1}]
    assert rows(cli, small, sql, "--as-of", between) == [{"n": 2}]
    assert rows(cli, small, sql, "--commit", first) == [{"n": 2}]
    assert rows(cli, small, sql, "--as-of", iso(time.time())) == [{"n": 1}]
    code, _, err = cli("query", sql, "-p", small, "--as-of", "2001-01-01T00:00")
    assert code != 0 and "did not exist yet" in err
    code, _, err = cli("query", sql, "-p", small, "--commit", "ffffff")
    assert code != 0 and "no commit 'ffffff'" in err


# names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bad name", "_dev", ".hidden", "a..b", "dev.", "prod@1",
                                  "a/b", "é",
                                  "x" * 64])
def test_invalid_environment_names_are_refused(small: Path, cli: Cli, name: str) -> None:
    code, _, err = cli("env", "create", name, "-p", small)
    assert code != 0 and "invalid environment name" in err
    code, _, err = cli("run", "-p", small, "--env", name, "-q")
    assert code != 0 and "invalid environment name" in err
    assert set(env_list(cli, small)) == {"prod"}


@pytest.mark.parametrize("name", ["dev", "feature-kpis", "v1.2", "a_b", "x" * 63])
def test_valid_environment_names(small: Path, cli: Cli, name: str) -> None:
    assert cli("env", "create", name, "-p", small)[0] == 0
    assert name in env_list(cli, small)


# diff -------------------------------------------------------------------------------------


def diff_json(cli: Cli, root: Path, a: str, b: str) -> dict[str, Any]:
    code, out, err = cli("env", "diff", a, b, "-p", root, "--format", "json")
    assert code == 0, err
    return dict(json.loads(out))


def test_diff_same_code_and_data_with_rows_by_primary_key(small: Path, cli: Cli) -> None:
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    same = diff_json(cli, small, "prod", "dev")
    assert same["counts"] == {"same": 3}
    # facts: one row changed (id 1), one removed (id 3), one added (id 4); big follows it
    edit(small, "facts", "(1, 'A', 10), (2, 'B', 20), (3, 'A', 30)",
         "(1, 'A', 11), (2, 'B', 20), (4, 'B', 40)")
    assert cli("run", "-p", small, "-q", "--env", "dev")[0] == 0
    d = diff_json(cli, small, "prod", "dev")
    by = {s["step"]: s for s in d["steps"]}
    assert by["codes"]["change"] == "same"
    assert by["facts"]["change"] == "code"
    assert by["big"]["change"] == "data"  # same code, other input
    assert d["counts"] == {"same": 1, "code": 1, "data": 1}
    facts = by["facts"]
    assert facts["rows"] == {"prod": 3, "dev": 3}
    assert facts["schema"] == {"added": [], "removed": [], "retyped": {}}
    data = facts["data"]
    assert data["by"] == "primary key" and data["key"] == ["id"]
    assert (data["added"], data["removed"], data["changed"]) == (1, 1, 1)
    assert data["sample_added"] == [{"id": 4, "code": "B", "amount": 40}]
    assert data["sample_removed"] == [{"id": 3, "code": "A", "amount": 30}]
    assert data["sample_changed"] == [{"id": 1, "code_before": "A", "code_after": "A",
                                       "amount_before": 10, "amount_after": 11}]
    # big has no primary key: whole rows
    big = by["big"]
    assert big["rows"] == {"prod": 2, "dev": 2}
    assert big["data"]["added"] == 1 and big["data"]["removed"] == 1
    assert big["data"]["sample_added"] == [{"id": 4, "code": "B", "amount": 40}]
    assert "changed" not in big["data"]

    code, out, _ = cli("env", "diff", "prod", "dev", "-p", small)
    assert code == 0
    line = next(x for x in out.splitlines() if "facts" in x)
    assert "code" in line


def test_diff_by_a_key_given_on_the_command_line(small: Path, cli: Cli) -> None:
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    edit(small, "facts", "(1, 'A', 10), (2, 'B', 20), (3, 'A', 30)",
         "(1, 'A', 10), (2, 'B', 21), (3, 'A', 30), (3, 'A', 30)")
    assert cli("run", "-p", small, "-q", "--env", "dev")[0] == 0
    # big declares no primary key: whole rows compared as multisets (a duplicate counts)
    big = next(s for s in diff_json(cli, small, "prod", "dev")["steps"] if s["step"] == "big")
    assert big["data"]["by"].startswith("whole rows") and "--key" in big["data"]["by"]
    assert (big["data"]["added"], big["data"]["removed"]) == (2, 1)
    assert {"id": 3, "code": "A", "amount": 30} in big["data"]["sample_added"]

    code, out, err = cli("env", "diff", "prod", "dev", "--key", "id", "-p", small,
                         "--format", "json")
    assert code == 0, err
    big = next(s for s in json.loads(out)["steps"] if s["step"] == "big")
    assert big["data"]["by"] == "primary key" and big["data"]["key"] == ["id"]
    # by key, the duplicated row of id 3 matches id 3: only id 2 changed
    assert (big["data"]["added"], big["data"]["removed"], big["data"]["changed"]) == (0, 0, 1)
    assert big["data"]["sample_changed"][0]["amount_after"] == 21

    code, out, err = cli("env", "diff", "prod", "dev", "--key", "id,code", "-p", small)
    assert code == 0, err
    assert "big" in out

    code, _, err = cli("env", "diff", "prod", "dev", "--key", "idd", "-p", small)
    assert code != 0 and "no table has a column 'idd'" in err and "did you mean 'id'" in err


def test_diff_shows_schema_changes_and_retyped_keys_compare(small: Path, cli: Cli) -> None:
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    # name becomes an integer, a column is added
    edit(small, "codes", "('A', 'alpha'), ('B', 'beta'), ('C', 'gamma')) t(code, name)",
         "('A', 1, true), ('B', 2, true), ('C', 3, false)) t(code, name, active)")
    assert cli("run", "-p", small, "-q", "--env", "dev")[0] == 0
    d = diff_json(cli, small, "prod", "dev")
    codes = next(s for s in d["steps"] if s["step"] == "codes")
    assert codes["schema"]["added"] == ["active"]
    assert codes["schema"]["removed"] == []
    assert codes["schema"]["retyped"] == {"name": ["VARCHAR", "INTEGER"]}
    # every code's name changed ('alpha' → '1'); comparing must not fail on the types
    assert (codes["data"]["added"], codes["data"]["removed"], codes["data"]["changed"]) == \
        (0, 0, 3)
    assert {"code": "A", "name_before": "alpha", "name_after": 1} in \
        codes["data"]["sample_changed"]


def test_diff_steps_only_in_one_environment_and_unknown_environment(
    small: Path, cli: Cli
) -> None:
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    (small / "pipelines/p/extra.sql").write_text("SELECT 1 AS one")
    assert cli("run", "-p", small, "-q", "--env", "dev")[0] == 0
    d = diff_json(cli, small, "prod", "dev")
    extra = next(s for s in d["steps"] if s["step"] == "extra")
    assert extra["change"] == "only in dev" and extra["rows"] == {"prod": None, "dev": 1}
    code, _, err = cli("env", "diff", "prod", "dve", "-p", small)
    assert code != 0 and "did you mean 'dev'" in err
