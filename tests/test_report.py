"""``andon report``: DataOps analytics equal what happened to the flights example (a run, a
branch with a change, a promotion, a failing check in prod and its fix), on SQLite and on
PostgreSQL; bad input and an empty store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import andon
from andon.analytics import report
from andon.cli.report import duration
from tests.conftest import Cli, ProjectFactory

FAILING_CHECK = "      - {type: between, column: alt, min: 0, max: 10}\n"
ANCHOR = "      - {type: row_count, min: 1000}\n  raw_planes:"


@dataclass(frozen=True)
class Story:
    """What the scenario did, read back from the store with plain SQL."""

    runs: list[dict[str, Any]]  # id, environment, status, ended_at; oldest first
    promoted_at: float
    dev_created_at: float
    checks: dict[str, int]  # status → results
    during_failure: dict[str, Any]  # the report (JSON) while the failing check is in place


def _sql(root: Path, sql: str) -> list[dict[str, Any]]:
    project = andon.Project.load(root)
    try:
        with project.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql))]
    finally:
        project.close()


def _report(cli: Cli, root: Path, *args: str) -> dict[str, Any]:
    code, out, err = cli("report", "-p", root, "--format", "json", *args)
    assert code == 0, err
    parsed: dict[str, Any] = json.loads(out)
    return parsed


def live_the_story(cli: Cli, root: Path) -> Story:
    """Run prod; branch dev, change a step there, run it and promote it; add an
    error-severity check that fails in prod and run; remove it and run again."""
    assert cli("run", "-p", root, "-q")[0] == 0
    assert cli("env", "create", "dev", "-p", root)[0] == 0
    kpis = root / "pipelines" / "flights" / "exploitation" / "daily_carrier_kpis.sql"
    kpis.write_text(kpis.read_text().replace("round(avg(f.dep_delay), 2)",
                                             "round(avg(f.dep_delay), 3)"))
    assert cli("run", "-p", root, "-q", "--env", "dev")[0] == 0
    assert cli("promote", "dev", "-p", root)[0] == 0
    config = root / "andon.yaml"
    good = config.read_text()
    assert good.count(ANCHOR) == 1
    config.write_text(good.replace(ANCHOR, ANCHOR.replace("\n  raw_planes:", "\n")
                                   + FAILING_CHECK + "  raw_planes:"))
    code, _out, err = cli("run", "-p", root, "-q")
    assert code != 0 and "raw_airports.between.alt" in err
    during = _report(cli, root)
    config.write_text(good)
    assert cli("run", "-p", root, "-q")[0] == 0
    runs = _sql(root, "SELECT id, environment, status, ended_at FROM runs ORDER BY id")
    (promotion,) = _sql(root, "SELECT at FROM promotions WHERE status = 'promoted'")
    (dev,) = _sql(root, "SELECT created_at FROM environments WHERE name = 'dev'")
    checks = {r["status"]: int(r["n"]) for r in _sql(
        root, "SELECT status, count(*) AS n FROM check_results GROUP BY status")}
    return Story(runs, float(promotion["at"]), float(dev["created_at"]), checks, during)


def assert_figures_match(cli: Cli, root: Path, story: Story) -> dict[str, Any]:
    assert [(r["environment"], r["status"]) for r in story.runs] == [
        ("prod", "succeeded"), ("dev", "succeeded"), ("prod", "failed"), ("prod", "succeeded")]
    r = _report(cli, root)
    assert r["notes"] == ["no SLAs in andon.yaml (sla:): SLA adherence is left out"]
    assert r["slas"] is None
    assert r["runs"] == {"runs": 4, "succeeded": 3, "failed": 1, "cancelled": 0, "other": 0,
                         "failure_rate": 0.25}
    assert sum(d["runs"] for d in r["runs_per_day"]) == 4
    assert sum(d["failed"] for d in r["runs_per_day"]) == 1

    pipelines = {p["pipeline"]: p for p in r["pipelines"]}
    assert pipelines["sources/landing"]["failed"] == 1  # raw_airports failed its check
    assert pipelines["flights/exploitation"]["failed"] == 0
    assert pipelines["flights/exploitation"]["runs"] == 4
    steps = {s["step"]: s for s in r["steps"]}
    assert (steps["raw_airports"]["built"], steps["raw_airports"]["failed"]) == (1, 1)
    assert steps["raw_airports"]["failure_rate"] == 0.5
    assert steps["daily_carrier_kpis"]["built"] == 2  # prod's first run, then dev's change
    sources = {s["source"]: s for s in r["sources"]}
    assert sources["raw_airports"]["failed"] == 1 and sources["raw_airports"]["loads"] == 2
    assert sources["raw_airports"]["failure_rate"] == 0.5
    delivered = len(list((root / "incoming" / "flights").glob("*.csv")))
    assert sources["raw_flights"]["files"] == delivered and sources["raw_flights"]["failed"] == 0
    assert sources["raw_flights"]["rows"] == 166158
    assert sources["raw_flights"]["rejected_rows"] == 0

    assert sum(d["run"] for d in r["checks_per_day"]) == sum(story.checks.values())
    assert sum(d["failed"] for d in r["checks_per_day"]) == story.checks["failed"]
    assert sum(d["errored"] for d in r["checks_per_day"]) == story.checks.get("error", 0)

    # one promotion, 0 < lead time = branch creation → promotion; prod then failed: 1/1
    lead = story.promoted_at - story.dev_created_at
    assert lead > 0
    assert r["lead_time"]["count"] == 1
    assert r["lead_time"]["mean_seconds"] == pytest.approx(lead)
    assert r["change_failures"] == {"target": "prod", "promotions": 1, "failed": 1,
                                    "rate": 1.0}
    assert sum(w["promoted"] for w in r["promotions_per_week"]) == 1
    failed, fixed = story.runs[2], story.runs[3]
    restore = float(fixed["ended_at"]) - float(failed["ended_at"])
    assert restore > 0
    assert {k: r["restores"][k] for k in ("incidents", "restored", "open")} == {
        "incidents": 1, "restored": 1, "open": 0}
    assert r["restores"]["time_to_restore"]["mean_seconds"] == pytest.approx(restore)

    # coverage of prod: every table has a check; the failing check covered one more column
    tables = json.loads(cli("tables", "-p", root, "--format", "json")[1])
    cov = r["coverage"]
    assert cov["tables"] == len(tables) == cov["tables_checked"]
    assert cov["columns"] == sum(t["columns"] for t in tables)
    assert 0 < cov["columns_checked"] < cov["columns"]
    assert story.during_failure["coverage"]["columns_checked"] == cov["columns_checked"] + 1

    # one environment: dev ran once and took no promotion
    dev = _report(cli, root, "--env", "dev")
    assert dev["runs"]["runs"] == 1 and dev["runs"]["failure_rate"] == 0.0
    assert dev["lead_time"]["count"] == 0 and dev["change_failures"]["rate"] is None
    prod = _report(cli, root, "--env", "prod")
    assert prod["runs"]["failed"] == 1 and prod["runs"]["runs"] == 3
    assert prod["change_failures"] == r["change_failures"]
    code, _out, err = cli("report", "-p", root, "--env", "dve")
    assert code != 0 and "no environment named 'dve'" in err and "dev" in err
    return r


def test_the_report_equals_what_happened(flights: Path, cli: Cli) -> None:
    story = live_the_story(cli, flights)
    figures = assert_figures_match(cli, flights, story)
    # the table shows the same figures as the JSON
    code, out, err = cli("report", "-p", flights)
    assert code == 0, err
    assert "25.0%" in out  # runs' failure rate
    assert "1/1" in out and "100.0%" in out  # change-failure rate
    assert duration(figures["lead_time"]["mean_seconds"]) in out
    assert duration(figures["restores"]["time_to_restore"]["mean_seconds"]) in out
    cov = figures["coverage"]
    assert f"{cov['columns_checked']}/{cov['columns']}" in out
    for section in ("runs per day", "pipelines", "steps", "sources", "checks per day",
                    "check coverage (prod)", "promotions per week", "delivery"):
        assert section in out
    # the Python API gives the same records
    session = andon.Session(andon.Project.load(flights), user="viewer-at-keyboard")
    assert session.report("30d").runs.failure_rate == 0.25


@pytest.mark.postgres
def test_the_report_on_postgresql(flights: Path, cli: Cli, postgres_url: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANDON_STORE_URL", postgres_url)
    story = live_the_story(cli, flights)
    assert_figures_match(cli, flights, story)


def test_a_window_leaves_out_what_happened_before(flights: Path, cli: Cli) -> None:
    assert cli("run", "-p", flights, "-q")[0] == 0
    later = datetime.now(UTC) + timedelta(days=3)
    project = andon.Project.load(flights)
    old = report(project, "2d", now=later.timestamp())
    assert old.runs.runs == 0 and old.runs.failure_rate is None and old.empty
    assert old.notes[0].startswith("nothing yet: no runs, checks or promotions since")
    assert report(project, "4d", now=later.timestamp()).runs.runs == 1
    since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    assert report(project, since).runs.runs == 1


def test_an_empty_store_is_a_report_of_nothing_yet(flights: Path, cli: Cli) -> None:
    code, out, err = cli("report", "-p", flights)
    assert code == 0, err
    assert "nothing has run" in out
    parsed = _report(cli, flights)
    assert parsed["runs"]["runs"] == 0 and parsed["runs"]["failure_rate"] is None
    assert parsed["change_failures"]["rate"] is None and parsed["coverage"] is None
    assert not (flights / ".andon" / "andon.db").exists()  # reading created no store


@pytest.mark.parametrize("since", ["3x", "30", "d30", "2026-13-01", "soon"])
def test_a_malformed_since_names_the_flag_and_the_forms(flights: Path, cli: Cli,
                                                        since: str) -> None:
    code, out, err = cli("report", "-p", flights, "--since", since)
    assert code != 0 and not out
    assert "--since" in err and "30d, 12h or 2w" in err and "ISO date" in err
    code, out, _ = cli("report", "-p", flights, "--since", since, "--format", "json")
    error = json.loads(out)["error"]
    assert code != 0 and "--since" in error["message"] and "2026-01-31" in error["hint"]


def test_a_since_in_the_future_or_of_zero_is_refused(flights: Path, cli: Cli) -> None:
    code, _, err = cli("report", "-p", flights, "--since", "2999-01-01")
    assert code != 0 and "not in the past" in err
    code, _, err = cli("report", "-p", flights, "--since", "0d")
    assert code != 0 and "empty window" in err


def test_sla_adherence_counts_days_late(make_project: ProjectFactory, cli: Cli) -> None:
    from andon.schedule.scheduler import Scheduler

    root = make_project({
        "andon.yaml": """
            name: orders
            environments:
              prod: {protected: false}
            sources:
              orders:
                path: incoming/*.csv
                columns: {id: integer, amount: double}
            sla:
              totals: {fresh_by: "06:00", timezone: UTC}
        """,
        "incoming/a.csv": "id,amount\n1,5\n",
        "pipelines/p/totals.sql": "SELECT count(*) AS n FROM orders",
    })
    assert cli("run", "-p", root, "-q")[0] == 0
    (run,) = _sql(root, "SELECT ended_at FROM runs")
    day = datetime.fromtimestamp(float(run["ended_at"]), UTC).replace(
        hour=7, minute=0, second=0, microsecond=0)
    scheduler = Scheduler(andon.Project.load(root), background=False)
    try:  # not refreshed on the next two days
        assert len(scheduler.tick(day + timedelta(days=1)).breaches) == 1
        assert len(scheduler.tick(day + timedelta(days=2)).breaches) == 1
    finally:
        scheduler.close()
    now = (day + timedelta(days=2, hours=1)).timestamp()
    (sla,) = report(andon.Project.load(root), "30d", now=now).slas or ()
    assert (sla.table, sla.rule, sla.breaches, sla.days) == ("totals", "fresh_by", 2, 3)
    assert sla.adherence == pytest.approx(1 / 3)
    assert report(andon.Project.load(root), "30d", "prod", now=now).slas == (sla,)
