"""Runs: write–audit–publish, reuse, incremental steps, selection, dry runs, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import andon
from andon.examples import deliver, pending_arrivals
from tests.conftest import Cli, ProjectFactory, unprotect


def latest(cli: Cli, root: Path) -> dict:
    return json.loads(cli("runs", "show", "latest", "-p", root, "--format", "json")[1])


def published(cli: Cli, root: Path, env: str = "prod") -> dict[str, str]:
    rows = json.loads(cli("tables", "-p", root, "--env", env, "--format", "json")[1])
    return {r["table"]: r["fingerprint"] for r in rows}


def test_incremental_steps_append_and_match_a_full_rebuild(flights: Path, cli: Cli) -> None:
    assert cli("run", "-p", flights, "-q")[0] == 0
    first = andon.show(andon.Project.load(flights), "daily_carrier_kpis")
    for file in pending_arrivals(flights)[:2]:
        deliver(flights, file)
        assert cli("run", "-p", flights, "-q")[0] == 0
    project = andon.Project.load(flights)
    after = andon.show(project, "daily_carrier_kpis")
    # each batch appended one new file; the first artifact's file is shared, not rewritten
    assert after["files"] == first["files"] + 2
    # the incrementally built KPIs equal a full recomputation over all eight months
    sql = (Path(flights) / "pipelines/flights/exploitation/daily_carrier_kpis.sql").read_text()
    body = sql.split("--- */", 1)[1].replace("{{ on_time_minutes }}", "15")
    diff = andon.query(project, f"""
        SELECT count(*) FROM (
            (SELECT * FROM daily_carrier_kpis EXCEPT ALL ({body}))
            UNION ALL
            (({body}) EXCEPT ALL SELECT * FROM daily_carrier_kpis))""")[1][0][0]
    assert diff == 0
    months = andon.query(project, "SELECT count(DISTINCT month(flight_date)) FROM "
                                  "daily_carrier_kpis")[1][0][0]
    assert months == 8


def test_failed_run_leaves_environment_unchanged_and_rerun_reuses_sealed_work(
    flights: Path, cli: Cli
) -> None:
    unprotect(flights)  # the broken step goes straight to prod: the run itself must stop it
    assert cli("run", "-p", flights, "-q")[0] == 0
    before = published(cli, flights)
    kpis = flights / "pipelines/flights/exploitation/daily_carrier_kpis.sql"
    good = kpis.read_text()
    kpis.write_text(good.replace("count(*) AS flights", "count(no_such_column) AS flights"))
    deliver(flights, pending_arrivals(flights)[0])
    code, out, err = cli("run", "-p", flights, "-q")
    assert code == 1
    assert "no_such_column" in out + err and "daily_carrier_kpis" in out + err
    assert published(cli, flights) == before  # prod still points at the old commit
    run = latest(cli, flights)
    assert run["status"] == "failed"
    actions = {s["name"]: s["action"] for s in run["steps"]}
    assert actions["daily_carrier_kpis"] == "failed"
    assert actions["flights_enriched"] == "built"
    # fix the step: the work sealed by the failed run is reused, only the fixed step builds
    kpis.write_text(good)
    assert cli("run", "-p", flights, "-q")[0] == 0
    actions = {s["name"]: s["action"] for s in latest(cli, flights)["steps"]}
    assert actions["flights_enriched"] == "reused"
    assert actions["raw_flights"] == "reused"
    assert actions["daily_carrier_kpis"] == "built"


def test_dry_run_changes_nothing(flights: Path, cli: Cli) -> None:
    code, out, _ = cli("run", "-p", flights, "--dry-run", "--format", "json")
    assert code == 0
    plan = json.loads(out)
    assert {s["action"] for s in plan["steps"]} == {"build"}
    raw = next(s for s in plan["steps"] if s["name"] == "raw_flights")
    assert len(raw["new_files"]) == 6
    assert not (flights / ".andon" / "landing").exists()
    code, _, err = cli("runs", "-p", flights)
    assert code == 0 and "no runs" in _ + err


def test_selection_builds_only_what_is_asked(flights: Path, cli: Cli) -> None:
    unprotect(flights)  # prod grows step by step here; protected, new steps need a promotion
    code, _, err = cli("run", "flights", "-p", flights, "-q")
    assert code == 1
    assert "needs 'raw_flights'" in err and "+flights" in err
    assert cli("run", "+flights", "-p", flights, "-q")[0] == 0
    assert set(published(cli, flights)) == {"raw_flights", "flights"}
    assert cli("run", "tag:kpi", "-p", flights, "-q")[0] == 1  # its parents are not built yet
    assert cli("run", "+tag:kpi", "-p", flights, "-q")[0] == 1  # unknown step named "tag:kpi"
    assert cli("run", "+daily_carrier_kpis", "-p", flights, "-q")[0] == 0
    assert "daily_carrier_kpis" in published(cli, flights)


def test_environments_are_independent_pointers(flights: Path, cli: Cli) -> None:
    assert cli("run", "-p", flights, "-q")[0] == 0
    assert cli("env", "create", "dev", "-p", flights)[0] == 0
    assert cli("run", "-p", flights, "--env", "dev", "-q")[0] == 0
    # dev reuses every artifact prod built: same fingerprints, nothing rebuilt
    assert published(cli, flights, "dev") == published(cli, flights)
    assert {s["action"] for s in latest(cli, flights)["steps"]} == {"reused"}
    code, _, err = cli("tables", "-p", flights, "--env", "dve")
    assert code == 1 and "did you mean 'dev'" in err


SLOW_PROJECT = {
    "andon.yaml": "name: slow\n",
    "pipelines/p/base.sql": "SELECT 1 AS x",
    "pipelines/p/slow.py": """
        import time
        import andon
        import pyarrow as pa

        @andon.step
        def slow(base: pa.Table) -> pa.Table:
            time.sleep(60)
            return base
    """,
}


def test_ctrl_c_stops_cleanly_and_leaves_the_environment(make_project: ProjectFactory) -> None:
    root = make_project(SLOW_PROJECT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "andon", "run", "-p", str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    project = andon.Project.load(root)
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until the slow step is building
        runs = project.store.runs()
        if runs and any(s["step"] == "base" for s in project.store.step_runs(runs[0]["id"])):
            break
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert project.store.environment("prod") is None  # never published
    assert project.store.runs()[0]["status"] == "cancelled"
    assert project.store.environment("prod") is None
    # the lease was released: the next run may start at once
    project.store.acquire_lease("prod", 999)
    project.store.release_lease("prod", 999)


def test_backfill_recomputes_only_the_interval_of_incremental_steps(flights: Path,
                                                                    cli: Cli) -> None:
    assert cli("run", "-p", flights, "-q")[0] == 0
    # a sender corrects March: its file is re-sent with one flight fewer
    march = flights / "incoming/flights/flights_2013_03.csv"
    lines = march.read_text().splitlines(keepends=True)
    march.write_text("".join(lines[:-1]))
    march_sql = "SELECT count(*) FROM flights WHERE month(flight_date) = 3"
    project = andon.Project.load(flights)
    before = andon.query(project, march_sql)[1][0][0]
    kpis_sql = "SELECT sum(flights) FROM daily_carrier_kpis WHERE month(flight_date) = 3"
    # incremental steps recompute the day the removed row touches: a plain run is exact
    code, _, err = cli("run", "-p", flights, "-q")
    assert code == 0, err
    project = andon.Project.load(flights)
    assert andon.query(project, march_sql)[1][0][0] == before - 1
    assert andon.query(project, kpis_sql)[1][0][0] == before - 1
    # a backfill recomputes March, and only March, down the line, to the same data
    code, _, err = cli("run", "+flights+", "--start", "2013-03-01", "--end", "2013-04-01",
                       "-p", flights, "-q")
    assert code == 0, err
    project = andon.Project.load(flights)
    assert andon.query(project, march_sql)[1][0][0] == before - 1
    assert andon.query(project, kpis_sql)[1][0][0] == before - 1
    others = andon.query(project, "SELECT count(*) FROM flights WHERE month(flight_date) <> 3"
                         )[1][0][0]
    assert others == andon.query(project, "SELECT count(*) FROM raw_flights WHERE month <> 3"
                                 )[1][0][0]
    code, _, err = cli("run", "--start", "2013-04-01", "--end", "2013-03-01", "-p", flights)
    assert code == 1 and "not before end" in err
