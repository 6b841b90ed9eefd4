"""SLAs of tables: fresh_by and max_age, one alert per breach through the alert channels
(a command channel that appends each message to a file), bad definitions named by line."""

from __future__ import annotations

import json
import shlex
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from andon.errors import ConfigError
from andon.project import Project
from andon.schedule import Scheduler
from andon.schedule.sla import evaluate
from tests.conftest import Cli, ProjectFactory

PARIS = ZoneInfo("Europe/Paris")


def sla_project(make_project: ProjectFactory, tmp_path: Path, sla: str) -> tuple[Path, Path]:
    """The orders project with ``sla`` and a command alert channel writing to a file."""
    alerts = tmp_path / "alerts.jsonl"
    script = f"import sys; open({str(alerts)!r}, 'a').write(sys.stdin.read() + chr(10))"
    command = shlex.join([sys.executable, "-c", script])
    root = make_project({
        "andon.yaml": f"""
            name: orders
            environments:
              prod: {{protected: false}}
            sources:
              orders:
                path: incoming/*.csv
                owner: ops@example.com
                columns: {{id: integer, amount: double}}
            alerts:
              - type: command
                command: {json.dumps(command)}
            sla:
            {sla}
        """,
        "incoming/a.csv": "id,amount\n1,5\n",
        "pipelines/p/totals.sql": "SELECT count(*) AS n FROM orders",
    })
    return root, alerts


def sent(alerts: Path) -> list[dict[str, object]]:
    if not alerts.exists():
        return []
    return [json.loads(line) for line in alerts.read_text().splitlines() if line.strip()]


def refreshed_at(root: Path) -> float:
    runs = Project.load(root).store.runs(limit=1)
    assert runs and runs[0]["status"] == "succeeded"
    return float(runs[0]["ended_at"])


def test_a_table_not_fresh_by_its_time_alerts_once_per_day(
        make_project: ProjectFactory, tmp_path: Path, cli: Cli) -> None:
    root, alerts = sla_project(make_project, tmp_path,
                               "  totals: {fresh_by: 06:00, timezone: Europe/Paris}")
    assert cli("run", "-p", root, "-q")[0] == 0
    done = refreshed_at(root)
    s = Scheduler(Project.load(root), background=False)
    try:
        assert s.tick(done + 60).breaches == ()  # refreshed today: on time
        next_day = (datetime.fromtimestamp(done, PARIS) + timedelta(days=1)).replace(
            hour=7, minute=0, second=0, microsecond=0)
        (breach,) = s.tick(next_day).breaches
        assert breach["table_name"] == "totals" and breach["rule"] == "fresh_by"
        assert f"was not refreshed on {next_day.date().isoformat()} by 06:00" in str(
            breach["message"])
        # seen again (and by a second scheduler on the same store): no second alert
        assert s.tick(next_day + timedelta(minutes=5)).breaches == ()
        other = Scheduler(Project.load(root), background=False)
        assert other.tick(next_day + timedelta(minutes=6)).breaches == ()
        other.close()
        assert len(sent(alerts)) == 1
        # the day after is a new breach
        assert len(s.tick(next_day + timedelta(days=1)).breaches) == 1
    finally:
        s.close()
    messages = sent(alerts)
    assert len(messages) == 2
    assert str(messages[0]["text"]).startswith("andon orders: SLA breach: totals in prod")
    code, out, _ = cli("sla", "-p", root, "--breaches", "--format", "json")
    assert code == 0 and [b["table"] for b in json.loads(out)] == ["totals", "totals"]


def test_max_age_alerts_once_per_stale_refresh(
        make_project: ProjectFactory, tmp_path: Path, cli: Cli) -> None:
    root, alerts = sla_project(make_project, tmp_path, "  orders: {max_age: 26h}")
    assert cli("run", "-p", root, "-q")[0] == 0
    done = refreshed_at(root)
    s = Scheduler(Project.load(root), background=False)
    try:
        assert s.tick(done + 25 * 3600).breaches == ()
        (breach,) = s.tick(done + 27 * 3600).breaches
        assert "orders in prod is older than 26h" in str(breach["message"])
        assert s.tick(done + 28 * 3600).breaches == ()  # the same breach: alerted once
    finally:
        s.close()
    (message,) = sent(alerts)
    assert message["steps"] == [{"step": "orders", "owner": "ops@example.com", "checks": []}]
    statuses = evaluate(Project.load(root), done + 60)
    assert [(st.table, st.late) for st in statuses] == [("orders", False)]


def test_a_table_never_refreshed_is_late(make_project: ProjectFactory, tmp_path: Path,
                                         cli: Cli) -> None:
    root, alerts = sla_project(make_project, tmp_path, "  totals: {max_age: 1h}")
    code, out, _ = cli("sla", "-p", root, "--format", "json")
    assert code == 1  # a late table makes `andon sla` fail, for monitoring scripts
    (row,) = json.loads(out)
    assert row["status"] == "late" and "never refreshed" in row["message"]
    assert sent(alerts) == []  # listing does not alert: the scheduler does


@pytest.mark.parametrize(("sla", "message"), [
    ("  totals: {fresh_by: '25:00'}", "bad time of day '25:00'"),
    ("  totals: {max_age: soon}", "bad duration 'soon'"),
    ("  totals: {timezone: Europe/Paris}", "an SLA needs fresh_by"),
    ("  totls: {max_age: 2h}", "SLA on unknown table 'totls'"),
])
def test_a_bad_sla_is_an_error_naming_its_line(
        make_project: ProjectFactory, tmp_path: Path, sla: str, message: str) -> None:
    root, _ = sla_project(make_project, tmp_path, sla)
    line = next(i for i, text in enumerate((root / "andon.yaml").read_text().splitlines(), 1)
                if text.strip() == sla.strip())
    with pytest.raises(ConfigError) as e:
        Scheduler(Project.load(root))
    assert message in e.value.message and e.value.line == line, e.value.render()
    if "totls" in sla:
        assert "did you mean 'totals'" in e.value.hint
