"""The service layer: one Session per acting user; the CLI and the Python API enforce the same
roles through it, and record the user they were given."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC

import pytest

import andon
from andon.access import AccessDenied
from tests.conftest import Cli, ProjectFactory
from tests.envkit import SMALL, edit, head, steps_of

CHECK = "facts.code_known"  # a check of facts, with results in prod after the first run


@pytest.fixture
def team(make_project: ProjectFactory, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[andon.Project]:
    """The small project run into prod by alice (admin), with a dev environment of hers, a
    secret of dev, and bob (developer), olga (operator) and vic (viewer)."""
    monkeypatch.delenv("ANDON_SECRETS_KEY", raising=False)
    monkeypatch.setenv("ANDON_USER", "mallory")  # core must not read it: nobody is mallory
    project = andon.Project.load(make_project(SMALL))
    alice = andon.Session(project, "alice")
    assert alice.run().ok
    alice.users_add("alice", "admin")
    for name, role in [("bob", "developer"), ("olga", "operator"), ("vic", "viewer")]:
        alice.users_add(name, role)
    alice.env_create("dev")
    alice.secrets_set("api_token", "s3cr3t-value", "dev")
    yield project
    project.close()


def refused(call: object, *args: object, **kwargs: object) -> AccessDenied:
    assert callable(call)
    with pytest.raises(AccessDenied) as info:
        call(*args, **kwargs)
    assert info.value.kind == "forbidden"
    return info.value


def state(project: andon.Project) -> tuple[object, ...]:
    """Everything the refused verbs could have changed."""
    s = andon.Session(project, "vic")
    return (s.env_list(), s.secrets_list(), s.checks_history(CHECK), s.users_list(),
            steps_of(project.root, "prod"), len(s.runs()),
            sorted(p.name for p in (project.root / ".andon" / "warehouse").rglob("*")))


def test_a_viewer_changes_nothing_through_the_python_api(team: andon.Project) -> None:
    before = state(team)
    vic = andon.Session(team, "vic")
    assert vic.role == "viewer"
    prod = head(team.root)
    e = refused(vic.env_create, "mine")
    assert "user 'vic' (role viewer) may not create environment 'mine'" in e.message
    assert "andon users add vic --role" in e.hint
    refused(vic.env_reset, "dev", prod)
    refused(vic.env_delete, "dev")
    refused(vic.secrets_set, "api_token", "forged", "dev")
    refused(vic.secrets_rm, "api_token", "dev")
    refused(vic.gc)
    e = refused(vic.checks_ack, CHECK)
    assert f"may not acknowledge results of check {CHECK!r} in environment 'prod'" in e.message
    refused(vic.promote, "dev")
    refused(vic.run, "dev")
    refused(vic.run)
    refused(vic.users_add, "vic", "admin")
    refused(vic.users_rm, "bob")
    assert state(team) == before
    # reads and dry runs need no role
    assert [t.table for t in vic.tables()] == ["big", "codes", "facts"]
    assert vic.query("SELECT count(*) FROM facts")[1] == [(3,)]
    assert vic.promote("dev", dry_run=True).status == "dry-run"
    assert vic.gc(dry_run=True).dry_run
    assert state(team) == before


def test_a_developer_works_in_branches_but_not_in_or_into_protected_ones(
    team: andon.Project,
) -> None:
    bob = andon.Session(team, "bob")
    prod = head(team.root)
    bob.env_create("bob-dev")
    edit(team.root, "big", ">=", ">")
    assert bob.run("bob-dev").ok
    assert head(team.root, "bob-dev") != prod

    e = refused(bob.run)
    assert "'bob' (role developer) may not run in protected environment 'prod'" in e.message
    e = refused(bob.promote, "bob-dev")
    assert "may not promote into protected environment 'prod'" in e.message
    refused(bob.env_reset, "prod", prod)
    # his own branches only: dev is alice's
    e = refused(bob.env_delete, "dev")
    assert "it belongs to 'alice'" in e.message
    refused(bob.env_reset, "dev", prod)
    refused(bob.gc)
    refused(bob.checks_ack, CHECK)  # a prod result: it moves prod's baseline
    refused(bob.secrets_set, "api_token", "everywhere")  # every environment reads it
    assert head(team.root) == prod

    bob.secrets_set("bob_token", "b0b-value", "bob-dev")
    assert bob.env_reset("bob-dev", prod) == prod
    bob.env_delete("bob-dev")
    assert "bob-dev" not in {e["name"] for e in bob.env_list()}

    # an operator acts on protected environments
    olga = andon.Session(team, "olga")
    alice_dev = olga.run("dev")
    assert alice_dev.ok
    promotion = olga.promote("dev")
    assert promotion.status == "promoted" and head(team.root) == promotion.candidate_commit
    assert olga.checks_ack(CHECK, note="expected")["acknowledged"]
    olga.gc()


def test_the_session_records_the_user_it_was_given(team: andon.Project) -> None:
    olga = andon.Session(team, "olga")
    edit(team.root, "big", ">=", ">")
    result = olga.run("dev")
    details = olga.run_details(result.run_id)
    assert details.user == "olga" and details.environment == "dev"
    assert olga.runs()[0].user == "olga"
    assert olga.env_log("dev")[0]["who"] == "olga"
    promotion = olga.promote("dev")
    assert olga.env_log("prod")[0] == {**olga.env_log("prod")[0], "who": "olga",
                                       "why": f"promotion {promotion.id} of dev"}
    # ANDON_USER (mallory) was set all along: only the edge reads it
    assert "mallory" not in json.dumps([olga.env_log("prod"), olga.env_log("dev"),
                                       [r.to_dict() for r in olga.runs()]])


def test_typed_records_have_utc_times_and_print_as_the_cli_does(
    team: andon.Project, cli: Cli
) -> None:
    s = andon.Session(team, "vic")
    run = s.runs()[0]
    assert run.started_at.tzinfo is UTC and run.status == "succeeded"
    details = s.run_details("latest")
    assert details.ended_at is not None and details.ended_at >= details.started_at
    assert {st.name for st in details.steps} == {"codes", "facts", "big"}
    table = s.tables()[0]
    assert table.built_at.tzinfo is UTC and len(table.fingerprint) > 12  # the whole one

    def cli_json(*args: str) -> object:
        code, out, err = cli(*args, "-p", team.root, "--format", "json")
        assert code == 0, err
        return json.loads(out)

    assert cli_json("tables") == [t.to_dict() for t in s.tables()]
    assert cli_json("runs", "show", str(details.id)) == json.loads(
        json.dumps(s.run_details(details.id).to_dict()))
    listed = cli_json("runs")
    assert isinstance(listed, list)
    assert [{**r, "seconds": None} for r in listed] == [
        {**r.to_dict(), "seconds": None} for r in s.runs()]


def test_through_the_cli_a_viewer_can_neither_collect_garbage_nor_ack_checks(
    team: andon.Project, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = team.root
    history = json.loads(cli("checks", "history", CHECK, "-p", root, "--format", "json")[1])
    monkeypatch.setenv("ANDON_USER", "vic")
    code, out, err = cli("gc", "-p", root)
    assert code != 0 and "user 'vic' (role viewer) may not delete artifacts (gc)" in err, out
    code, out, err = cli("gc", "--dry-run", "-p", root, "--format", "json")  # only reports
    assert code == 0, err
    would = json.loads(out)
    code, _, err = cli("checks", "ack", CHECK, "--note", "fine", "-p", root)
    assert code != 0 and "may not acknowledge" in err
    assert json.loads(cli("checks", "history", CHECK, "-p", root, "--format", "json")[1]) \
        == history
    assert json.loads(cli("gc", "--dry-run", "-p", root, "--format", "json")[1]) == would

    monkeypatch.setenv("ANDON_USER", "olga")  # an operator may do both
    code, out, err = cli("checks", "ack", CHECK, "--note", "fine", "-p", root)
    assert code == 0 and "acknowledged result" in out, err
    code, out, err = cli("gc", "-p", root)
    assert code == 0 and "deleted" in out, err
