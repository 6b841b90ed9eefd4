"""A plan is stages: land, build, check for each step, then publish. ``--dry-run`` explains
them (table or JSON), the runner walks them, promotion shows its check stage, and ``andon
test`` shares the check stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import andon
from andon.examples import deliver, pending_arrivals
from andon.stages import BuildStage, CheckStage, LandStage, PublishStage
from tests.conftest import Cli, ProjectFactory
from tests.envkit import SMALL, edit

FACTS = "(1, 'A', 10), (2, 'B', 20), (3, 'A', 30)"


def dry_run(cli: Cli, root: Path, *args: str) -> dict[str, Any]:
    code, out, err = cli("run", "-p", root, "--dry-run", "--format", "json", *args)
    assert code == 0, err
    plan: dict[str, Any] = json.loads(out)
    return plan


def stages_of(plan: dict[str, Any], step: str) -> dict[str, dict[str, Any]]:
    return {s["stage"]: s for s in plan["stages"] if s.get("step") == step}


def test_a_dry_run_of_the_flights_example_lists_its_stages(flights: Path, cli: Cli) -> None:
    plan = dry_run(cli, flights)
    kinds = [s["stage"] for s in plan["stages"]]
    assert kinds[-1] == "publish" and kinds.count("publish") == 1
    raw = stages_of(plan, "raw_flights")
    assert list(raw) == ["land", "build", "check"]  # in the order the runner walks them
    assert len(raw["land"]["files"]) == 6
    assert all(f.endswith(".csv") and "flights_2013_0" in f for f in raw["land"]["files"])
    assert raw["build"]["action"] == "build" and raw["build"]["reason"] == "6 new files"
    # a step of SQL has no land stage; its check stage lists every check, all fresh
    flights_stages = stages_of(plan, "flights")
    assert list(flights_stages) == ["build", "check"]
    project = andon.Project.load(flights)
    planned = flights_stages["check"]["checks"]
    assert [c["name"] for c in planned] == [c.name for c in project.checks_of("flights")]
    assert {c["run"] for c in planned} == {"fresh"}
    assert {c["severity"] for c in planned} == {"error", "warn"}
    publish = plan["publish"]
    assert publish["action"] == "commit" and publish["base_commit"] is None
    assert publish["reason"].startswith("first commit of prod")
    assert set(publish["changed"]) == {s["name"] for s in plan["steps"]}
    # the table says the same; nothing was done
    code, out, _ = cli("run", "-p", flights, "--dry-run")
    assert code == 0
    for words in ("land", "6 new files: flights_2013_01.csv", "check", "12 to run",
                  "not_null.flight_id (error)", "publish", "first commit of prod"):
        assert words in out, words
    assert not (flights / ".andon" / "landing").exists()
    assert project.store.runs() == []


def test_the_plan_says_which_check_results_a_run_reuses(flights: Path, cli: Cli) -> None:
    session = andon.Session(andon.Project.load(flights), "alice")
    assert session.run().ok
    plan = dry_run(cli, flights)
    assert {s["action"] for s in plan["stages"] if s["stage"] == "build"} == {"reuse"}
    assert {s["action"] for s in plan["stages"] if s["stage"] == "land"} == {"none"}
    assert plan["publish"]["action"] == "none" and "nothing new" in plan["publish"]["reason"]
    project = andon.Project.load(flights)
    reusable = {c.name: c.kind.reuse for c in project.checks}
    for stage in (s for s in plan["stages"] if s["stage"] == "check"):
        for c in stage["checks"]:
            assert c["run"] == ("reused" if reusable[c["name"]] else "fresh"), c
    # a new month arrives: it lands, the steps reading it build, their checks run fresh
    deliver(flights, pending_arrivals(flights)[0])
    project = andon.Project.load(flights)
    staged = andon.plan(project)
    by_step = {(s.step, s.kind): s for s in staged.stages() if not isinstance(s, PublishStage)}
    land = by_step[("raw_flights", "land")]
    assert isinstance(land, LandStage) and len(land.files) == 1
    build = by_step[("raw_flights", "build")]
    assert isinstance(build, BuildStage) and build.action == "build"
    assert by_step[("raw_airlines", "build")].action == "reuse"
    checks = by_step[("flights", "check")]
    assert isinstance(checks, CheckStage) and {c.run for c in checks.checks} == {"fresh"}
    assert staged.publish.action == "commit"
    assert {"raw_flights", "flights", "daily_carrier_kpis"} <= set(staged.publish.changed)
    assert "raw_airlines" not in staged.publish.changed
    # the run does what the plan said: each check result reused exactly when planned
    planned = {c.name: c.run for s in staged.steps for c in s.checks}
    result = andon.Session(project, "alice").run()
    assert result.ok, result.error
    assert {r.name: "reused" if r.reused else "fresh" for r in result.checks} == planned
    json.dumps(staged.to_dict())  # a plain structure, for the UI


def test_andon_test_shares_the_check_stage_and_agrees_with_the_run(flights: Path,
                                                                    cli: Cli) -> None:
    result = andon.Session(andon.Project.load(flights), "alice").run()
    assert result.ok
    code, out, err = cli("test", "-p", flights, "--format", "json")
    assert code == 0, err
    tested = json.loads(out)
    assert {r["name"]: r["status"] for r in tested} == {r.name: r.status for r in result.checks}
    code, out, _ = cli("test", "flights", "-p", flights, "--format", "json")
    assert code == 0 and {r["table"] for r in json.loads(out)} == {"flights"}


def test_a_protected_environment_plans_a_refused_publish(flights: Path, cli: Cli) -> None:
    assert cli("run", "-p", flights, "-q")[0] == 0
    kpis = flights / "pipelines/flights/exploitation/daily_carrier_kpis.sql"
    kpis.write_text(kpis.read_text().replace("count(*) AS flights", "count(1) AS flights"))
    plan = dry_run(cli, flights)
    assert plan["publish"]["action"] == "refused"
    assert "protected" in plan["publish"]["reason"]
    assert "daily_carrier_kpis" in plan["publish"]["reason"]
    code, _, err = cli("run", "-p", flights, "-q")
    assert code == 1 and "protected" in err and "nothing was run" in err


@pytest.fixture
def small(make_project: ProjectFactory, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ANDON_USER", "alice")
    root = make_project(SMALL)
    assert cli("run", "-p", root, "-q")[0] == 0
    return root


def test_promote_dry_run_shows_the_check_stage_of_the_candidate(small: Path, cli: Cli) -> None:
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    edit(small, "facts", FACTS, "(1, 'A', 10), (2, 'B', 25), (3, 'A', 30)")
    assert cli("run", "-p", small, "-q", "--env", "dev")[0] == 0
    code, out, err = cli("promote", "dev", "--dry-run", "-p", small, "--format", "json")
    assert code == 0, err
    dry = json.loads(out)
    stages = {(s["stage"], s.get("step")): s for s in dry["stages"]}
    assert stages[("build", "facts")]["action"] == "reuse"  # dev's artifact, not rebuilt
    assert stages[("build", "codes")]["action"] == "keep"
    checked = stages[("check", "facts")]["checks"]
    assert [(c["name"], c["status"]) for c in checked] == [("facts.code_known", "passed")]
    publish = stages[("publish", None)]
    assert publish["action"] == "commit" and set(publish["changed"]) == {"facts", "big"}
    assert publish["commit"] is None  # a dry run makes none
    code, out, _ = cli("promote", "dev", "--dry-run", "-p", small)
    assert code == 0
    assert "check" in out and "code_known (passed)" in out and "would promote" in out
    # the real promotion records the commit it made in its publish stage
    session = andon.Session(andon.Project.load(small), "alice")
    done = session.promote("dev", "prod")
    last = done.stages[-1]
    assert isinstance(last, PublishStage) and last.commit == done.candidate_commit is not None
