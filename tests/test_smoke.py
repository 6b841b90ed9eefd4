"""The flights example end to end: first run, re-run, a new month."""

from __future__ import annotations

import json
from pathlib import Path

from andon.examples import deliver, pending_arrivals
from tests.examplekit import assert_every_check_ran


def test_flights_first_run_publishes_six_months_every_table_tested(flights: Path, cli) -> None:
    code, out, err = cli("run", "-p", flights, "-q")
    assert code == 0, err
    sql = "SELECT count(*) AS n, max(month(flight_date)) AS last FROM flights"
    code, out, _ = cli("query", sql, "-p", flights, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert rows[0]["last"] == 6
    assert rows[0]["n"] > 160_000
    assert_every_check_ran(flights, lambda args: cli(*args, "-p", flights))

    # every published table is tested, at every severity, SPC included
    tables = {t["table"] for t in json.loads(cli("tables", "-p", flights, "--format", "json")[1])}
    checks = json.loads(cli("checks", "list", "-p", flights, "--format", "json")[1])
    assert len(tables) == 12
    assert tables == {c["table"] for c in checks}
    assert {c["severity"] for c in checks} == {"error", "warn", "info"}
    assert any(c["name"] == "flights.rows_per_month" and c["spc"] for c in checks)


def test_rerun_builds_nothing_and_new_month_builds_only_its_descendants(flights: Path, cli) -> None:
    assert cli("run", "-p", flights, "-q")[0] == 0
    assert cli("run", "-p", flights, "-q")[0] == 0
    run = json.loads(cli("runs", "show", "latest", "-p", flights, "--format", "json")[1])
    assert run["status"] == "succeeded"
    assert {s["action"] for s in run["steps"]} == {"reused"}

    deliver(flights, pending_arrivals(flights)[0])
    assert cli("run", "-p", flights, "-q")[0] == 0
    run = json.loads(cli("runs", "show", "latest", "-p", flights, "--format", "json")[1])
    built = {s["name"] for s in run["steps"] if s["action"] == "built"}
    assert built == {"raw_flights", "flights", "flights_enriched", "daily_carrier_kpis"}
    assert_every_check_ran(flights, lambda args: cli(*args, "-p", flights))
