"""Promotion (no rebuild, dry runs, conflicts, checks on the candidate, stale branches, leases,
the promotions record), protected environments and roles."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import andon
from andon.errors import LeaseError
from andon.promote import promote, promotions
from andon.store import schema as t
from tests.conftest import Cli, ProjectFactory
from tests.envkit import (
    SMALL,
    actions,
    artifact_count,
    count,
    edit,
    head,
    rows,
    run_json,
    steps_of,
    warehouse_files,
)

FACTS = "(1, 'A', 10), (2, 'B', 20), (3, 'A', 30)"
CODES = "('A', 'alpha'), ('B', 'beta'), ('C', 'gamma')"


@pytest.fixture
def small(make_project: ProjectFactory, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ANDON_USER", "alice")
    root = make_project(SMALL)
    assert cli("run", "-p", root, "-q")[0] == 0
    return root


def branch(cli: Cli, root: Path, env: str, step: str, old: str, new: str) -> None:
    """Create ``env`` from prod with one step edited, run it, and put the file back."""
    assert cli("env", "create", env, "-p", root)[0] == 0
    edit(root, step, old, new)
    code, out, err = cli("run", "-p", root, "-q", "--env", env)
    assert code == 0, out + err
    edit(root, step, new, old)


def last_promotion(root: Path) -> dict[str, Any]:
    project = andon.Project.load(root)
    try:
        return promotions(project.store, limit=1)[0]
    finally:
        project.close()


def test_promotion_points_the_target_at_the_branch_artifacts_without_rebuilding(
    small: Path, cli: Cli
) -> None:
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    edit(small, "facts", FACTS, "(1, 'A', 10), (2, 'B', 25), (3, 'A', 30)")
    assert cli("run", "-p", small, "-q", "--env", "dev")[0] == 0
    before = head(small)
    dev = steps_of(small, "dev")
    assert dev != steps_of(small)
    artifacts, files = artifact_count(small), warehouse_files(small)

    code, out, err = cli("promote", "dev", "--dry-run", "-p", small, "--format", "json")
    assert code == 0, err
    dry = json.loads(out)
    assert dry["status"] == "dry-run" and dry["commit"] is None and dry["id"] is None
    assert dry["changed"] == ["big", "facts"]
    assert head(small) == before

    code, out, err = cli("promote", "dev", "-p", small, "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "promoted" and result["target"] == "prod"
    assert result["changed"] == ["big", "facts"]
    assert head(small) == result["commit"] != before
    # exactly the artifacts the branch built: same fingerprints, nothing new built or written
    assert steps_of(small) == dev
    assert artifact_count(small) == artifacts
    assert warehouse_files(small) == files
    assert rows(cli, small, "SELECT amount FROM facts WHERE id = 2") == [{"amount": 25}]

    record = last_promotion(small)
    assert record["status"] == "promoted" and record["who"] == "alice"
    assert record["candidate_commit"] == head(small)
    assert record["source_commit"] == head(small, "dev")
    assert record["target_commit"] == before
    assert record["checks"]["passed"] >= 1 and record["checks"]["failed"] == []
    assert record["at"] > 0
    log = json.loads(cli("env", "log", "prod", "-p", small, "--format", "json")[1])
    assert log[0]["why"] == f"promotion {record['id']} of dev"
    assert (log[0]["from"], log[0]["to"]) == (before, head(small))

    # prod now runs the promoted code: nothing to build, nothing refused
    code, res = run_json(cli, small)
    assert code == 0 and set(actions(res).values()) == {"reused"}
    assert head(small) == result["commit"]


def test_a_dry_run_writes_nothing_and_takes_no_number(small: Path, cli: Cli) -> None:
    branch(cli, small, "dev", "facts", FACTS, "(1, 'A', 10), (2, 'B', 25), (3, 'A', 30)")
    history = json.loads(cli("checks", "history", "facts.code_known", "-p", small,
                             "--format", "json")[1])
    for _ in range(2):
        code, out, err = cli("promote", "dev", "--dry-run", "-p", small, "--format", "json")
        assert code == 0, err
        assert json.loads(out)["status"] == "dry-run"
    project = andon.Project.load(small)
    try:
        assert promotions(project.store) == []
    finally:
        project.close()
    assert json.loads(cli("checks", "history", "facts.code_known", "-p", small,
                          "--format", "json")[1]) == history

    assert cli("promote", "dev", "-p", small)[0] == 0
    assert last_promotion(small)["id"] == 1
    log = json.loads(cli("env", "log", "prod", "-p", small, "--format", "json")[1])
    assert log[0]["why"] == "promotion 1 of dev"


def test_promotion_keeps_what_the_target_changed_meanwhile(small: Path, cli: Cli) -> None:
    branch(cli, small, "hotfix", "codes", CODES, "('A', 'alpha'), ('B', 'beta'), "
                                                "('C', 'gamma'), ('D', 'delta')")
    branch(cli, small, "dev", "facts", FACTS, "(1, 'A', 10), (2, 'B', 25), (3, 'A', 30)")
    assert cli("promote", "hotfix", "-p", small)[0] == 0
    hotfix_codes = steps_of(small)["codes"]
    code, _out, err = cli("promote", "dev", "-p", small)
    assert code == 0, err
    prod = steps_of(small)
    assert prod["codes"] == hotfix_codes
    assert prod["facts"] == steps_of(small, "dev")["facts"]


def test_a_conflict_is_named_and_changes_nothing(small: Path, cli: Cli) -> None:
    branch(cli, small, "hotfix", "codes", CODES, "('A', 'alpha'), ('B', 'beta')")
    branch(cli, small, "dev", "codes", CODES, "('A', 'ALPHA'), ('B', 'beta'), ('C', 'gamma')")
    assert cli("promote", "hotfix", "-p", small)[0] == 0
    before = head(small)
    code, _out, err = cli("promote", "dev", "-p", small)
    assert code != 0
    assert "conflict: codes changed in both 'dev' and 'prod'" in err
    assert "nothing was changed" in err
    assert head(small) == before
    record = last_promotion(small)
    assert record["status"] == "conflict" and record["message"] == "codes"


def test_a_failing_error_check_on_the_candidate_refuses(small: Path, cli: Cli) -> None:
    # hotfix drops code C; dev starts using C. Each passes its own checks, but together
    # facts.code_known fails: only the candidate shows it.
    branch(cli, small, "hotfix", "codes", CODES, "('A', 'alpha'), ('B', 'beta')")
    branch(cli, small, "dev", "facts", FACTS, "(1, 'A', 10), (2, 'C', 20), (3, 'A', 30)")
    assert cli("promote", "hotfix", "-p", small)[0] == 0
    before, prod_steps = head(small), steps_of(small)
    code, _, err = cli("promote", "dev", "--dry-run", "-p", small)
    assert code != 0 and "facts.code_known" in err
    code, _out, err = cli("promote", "dev", "-p", small)
    assert code != 0
    assert "1 error check(s) failed on the candidate" in err and "facts.code_known" in err
    assert "'prod' was not changed" in err
    assert head(small) == before and steps_of(small) == prod_steps
    record = last_promotion(small)
    assert record["status"] == "refused"
    assert record["checks"]["failed"] == ["facts.code_known"]
    assert record["candidate_commit"] is None


def test_a_candidate_with_a_step_built_on_other_inputs_is_refused(
    small: Path, cli: Cli
) -> None:
    # hotfix rebuilds only facts: its big was built on the facts prod has now, so the
    # candidate (new facts, old big) would publish a big that does not follow from its input
    assert cli("env", "create", "hotfix", "-p", small)[0] == 0
    edit(small, "facts", FACTS, "(1, 'A', 10), (2, 'B', 25), (3, 'A', 30)")
    assert cli("run", "facts", "-p", small, "-q", "--env", "hotfix")[0] == 0
    before = head(small)
    code, _, err = cli("promote", "hotfix", "-p", small)
    assert code != 0 and "big in the candidate were built on inputs" in err
    assert "andon run --env hotfix" in err
    assert head(small) == before
    assert last_promotion(small)["status"] == "refused"
    # rebuilding the branch fixes it
    assert cli("run", "-p", small, "-q", "--env", "hotfix")[0] == 0
    assert cli("promote", "hotfix", "-p", small)[0] == 0
    assert steps_of(small) == steps_of(small, "hotfix")


def test_promoting_into_a_missing_environment_or_into_itself(small: Path, cli: Cli) -> None:
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    n = count(small, t.promotions)
    code, _, err = cli("promote", "dev", "--to", "staging", "-p", small)
    assert code != 0 and "no environment named 'staging'" in err
    code, _, err = cli("promote", "dve", "-p", small)
    assert code != 0 and "did you mean 'dev'" in err
    code, _, err = cli("promote", "prod", "--to", "prod", "-p", small)
    assert code != 0 and "into itself" in err
    assert count(small, t.promotions) == n


def test_two_promotions_at_once_the_second_fails_on_the_lease(
    small: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    branch(cli, small, "dev", "facts", FACTS, "(1, 'A', 10), (2, 'B', 25), (3, 'A', 30)")
    assert cli("env", "create", "dev2", "--from", "dev", "-p", small)[0] == 0
    import andon.promote as promote_mod

    real_check = promote_mod._check
    inside, go_on = threading.Event(), threading.Event()

    def slow_check(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        assert go_on.wait(30)
        return real_check(*args, **kwargs)

    monkeypatch.setattr(promote_mod, "_check", slow_check)
    first: dict[str, Any] = {}

    def run_first() -> None:
        try:
            first["result"] = promote(andon.Project.load(small), "dev", "prod", user="alice")
        except Exception as e:  # pragma: no cover - reported below
            first["error"] = e

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert inside.wait(30)
        before = head(small)
        with pytest.raises(LeaseError, match="'prod' is being changed by promotion"):
            promote(andon.Project.load(small), "dev2", "prod", user="alice")
        assert head(small) == before
    finally:
        go_on.set()
        thread.join(30)
    assert "error" not in first, first.get("error")
    assert head(small) == first["result"].candidate_commit
    statuses = [p["status"] for p in promotions(andon.Project.load(small).store)]
    assert statuses[:2] == ["failed", "promoted"]  # newest first
    # the lease is free again
    assert cli("promote", "dev2", "-p", small)[0] == 0


# protection -------------------------------------------------------------------------------


def test_changed_code_in_prod_is_refused_with_a_hint_to_promote(small: Path, cli: Cli) -> None:
    before = head(small)
    runs = count(small, t.runs)
    edit(small, "big", ">=", ">")
    code, _out, err = cli("run", "-p", small, "-q")
    assert code != 0
    assert "protected" in err and "big" in err and "andon promote dev --to prod" in err
    assert head(small) == before
    assert count(small, t.runs) == runs + 1  # the refused run is recorded, as failed
    latest = json.loads(cli("runs", "show", "latest", "-p", small, "--format", "json")[1])
    assert latest["status"] == "failed" and "protected" in latest["error"]


def test_prod_runs_its_code_with_other_parameters(small: Path, cli: Cli) -> None:
    before = steps_of(small)
    code, res = run_json(cli, small, "--param", "threshold=1")
    assert code == 0
    assert actions(res) == {"codes": "reused", "facts": "reused", "big": "built"}
    after = steps_of(small)
    assert after["big"] != before["big"] and after["facts"] == before["facts"]
    assert rows(cli, small, "SELECT count(*) AS n FROM big") == [{"n": 3}]


def test_an_unprotected_prod_takes_code_directly(small: Path, cli: Cli) -> None:
    with (small / "andon.yaml").open("a") as f:
        f.write("environments:\n  prod: {protected: false}\n  qa: {protected: true}\n")
    edit(small, "big", ">=", ">")
    assert cli("run", "-p", small, "-q")[0] == 0
    # qa is protected by configuration: its first run creates it, the next change is refused
    assert cli("run", "-p", small, "-q", "--env", "qa")[0] == 0
    edit(small, "big", ">", ">=")
    code, _, err = cli("run", "-p", small, "-q", "--env", "qa")
    assert code != 0 and "'qa' is protected" in err


# roles ------------------------------------------------------------------------------------


def as_user(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("ANDON_USER", name)


def test_roles_once_users_exist(small: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    # the first user must be an admin: anything else locks user management for good
    code, _, err = cli("users", "add", "alice", "--role", "developer", "-p", small)
    assert code != 0 and "first user must be an admin" in err
    code, _, err = cli("users", "add", "bob", "--role", "operator", "-p", small)
    assert code != 0 and "first user must be an admin" in err
    assert cli("users", "add", "alice", "--role", "admin", "-p", small)[0] == 0
    for name, role in [("bob", "developer"), ("olga", "operator"), ("vic", "viewer")]:
        assert cli("users", "add", name, "--role", role, "-p", small)[0] == 0
    code, _, err = cli("users", "add", "zed", "--role", "boss", "-p", small)
    assert code != 0 and "unknown role 'boss'" in err
    branch(cli, small, "dev", "facts", FACTS, "(1, 'A', 10), (2, 'B', 25), (3, 'A', 30)")

    as_user(monkeypatch, "bob")  # developer: branches yes, prod no
    prod = head(small)
    code, _, err = cli("run", "-p", small, "-q")
    assert code != 0 and "user 'bob' (role developer) may not run in protected" in err
    code, _, err = cli("env", "reset", "prod", "--to", prod, "-p", small)
    assert code != 0 and "may not" in err
    assert cli("run", "-p", small, "-q", "--env", "dev")[0] == 0
    code, _, err = cli("users", "add", "bob", "--role", "admin", "-p", small)
    assert code != 0 and "may not manage users" in err

    as_user(monkeypatch, "vic")  # viewer: changes nothing
    code, _, err = cli("promote", "dev", "-p", small)
    assert code != 0 and "user 'vic' (role viewer) may not promote" in err
    code, _, err = cli("run", "-p", small, "-q", "--env", "dev")
    assert code != 0 and "may not run" in err
    code, _, err = cli("env", "create", "mine", "-p", small)
    assert code != 0 and "may not create environment" in err
    code, _, err = cli("env", "delete", "dev", "-p", small)
    assert code != 0 and "may not delete environment" in err
    assert head(small) == prod
    assert rows(cli, small, "SELECT count(*) AS n FROM facts") == [{"n": 3}]  # may read

    as_user(monkeypatch, "nobody")
    code, _, err = cli("run", "-p", small, "-q", "--env", "dev")
    assert code != 0 and "'nobody' (not a configured user)" in err

    as_user(monkeypatch, "olga")  # operator: runs in prod
    code, _, err = cli("run", "-p", small, "-q", "--param", "threshold=1")
    assert code == 0, err
    assert head(small) != prod
    # only those who may run in a protected environment promote into it
    as_user(monkeypatch, "bob")
    code, _, err = cli("promote", "dev", "-p", small)
    assert code != 0 and "'bob' (role developer) may not promote into protected" in err
    code, out, err = cli("promote", "dev", "--dry-run", "-p", small)  # a dry run changes nothing
    assert code == 0 and "would promote" in out, err
    as_user(monkeypatch, "olga")
    assert cli("promote", "dev", "-p", small)[0] == 0


def test_the_last_admin_cannot_be_demoted_or_removed(
    small: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("users", "add", "alice", "--role", "admin", "-p", small)[0] == 0
    assert cli("users", "add", "bob", "--role", "developer", "-p", small)[0] == 0
    code, _, err = cli("users", "add", "alice", "--role", "developer", "-p", small)
    assert code != 0 and "last admin" in err
    code, _, err = cli("users", "rm", "alice", "-p", small)
    assert code != 0 and "last admin" in err
    assert cli("users", "add", "bob", "--role", "admin", "-p", small)[0] == 0
    assert cli("users", "rm", "alice", "-p", small)[0] == 0
    listed = json.loads(cli("users", "list", "-p", small, "--format", "json")[1])
    assert listed == [{"name": "bob", "role": "admin"}]
    as_user(monkeypatch, "bob")
    code, _, err = cli("users", "rm", "ghost", "-p", small)
    assert code != 0 and "no user named 'ghost'" in err


def test_promotions_record_failures(small: Path, cli: Cli) -> None:
    """A promotion that fails for another reason (here: the lease) is recorded as failed."""
    branch(cli, small, "dev", "facts", FACTS, "(1, 'A', 10), (2, 'B', 25), (3, 'A', 30)")
    project = andon.Project.load(small)
    holder = project.store.acquire_lease("prod", None, what="promotion 99 of x")
    try:
        code, _, err = cli("promote", "dev", "-p", small)
        assert code != 0 and "being changed by promotion 99 of x" in err
    finally:
        project.store.release_lease("prod", None, holder=holder)
    record = last_promotion(small)
    assert record["status"] == "failed" and "promotion 99" in record["message"]
    with project.store.engine.connect() as conn:
        assert conn.execute(select(t.leases)).first() is None
    project.close()
