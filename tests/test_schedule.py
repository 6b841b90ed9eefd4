"""Schedules and sensors: cron ticks across DST, catch-up, restarts, two schedulers on one
PostgreSQL store, file arrivals on the flights example, and scheduled runs that publish."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import andon
from andon.errors import ConfigError
from andon.project import Project
from andon.schedule import Scheduler
from andon.schedule.cron import due
from andon.store.schedules import ScheduleRepository
from tests.conftest import Cli, ProjectFactory

PARIS = ZoneInfo("Europe/Paris")


def orders_project(schedules: str = "", sensors: str = "") -> dict[str, str]:
    """A small project: a CSV source, a SQL step with a parameter, a named parameter set."""
    return {
        "andon.yaml": f"""
            name: orders
            params:
              min_amount: 0
            param_sets:
              big: {{min_amount: 10}}
            environments:
              prod: {{protected: false}}
            sources:
              orders:
                path: incoming/*.csv
                columns: {{id: integer, amount: double}}
            {schedules}
            {sensors}
        """,
        "incoming/a.csv": "id,amount\n1,5\n2,20\n3,30\n",
        "pipelines/p/totals.sql": """
            SELECT count(*) AS n, sum(amount) AS total FROM orders
            WHERE amount >= {{ min_amount }}
        """,
    }


def schedule_yaml(cron: str, extra: str = "", timezone: str = "Europe/Paris") -> str:
    # indented to sit inside orders_project's dedented andon.yaml
    return (f"schedules:\n              nightly:\n                cron: \"{cron}\"\n"
            f"                timezone: {timezone}\n" + extra)


@pytest.fixture
def scheduled(make_project: ProjectFactory) -> Iterator[tuple[Path, list[Scheduler]]]:
    """A project root and a list of the schedulers a test made (closed at the end)."""
    made: list[Scheduler] = []
    root = make_project(orders_project(schedule_yaml("30 2 * * *")))
    yield root, made
    for s in made:
        s.close()


def scheduler(root: Path, made: list[Scheduler], **kw: Any) -> Scheduler:
    s = Scheduler(Project.load(root), background=kw.pop("background", False), **kw)
    made.append(s)
    return s


def keys(reports: list[Any]) -> list[str]:
    return [row["run_key"] for r in reports for row in r.queued]


def walk(s: Scheduler, start: datetime, end: datetime, step: timedelta) -> list[Any]:
    """Evaluate every ``step`` from ``start`` to ``end`` (a fake clock: nothing sleeps)."""
    out, at = [], start
    while at <= end:
        out.append(s.tick(at))
        at += step
    return out


# cron across DST ------------------------------------------------------------------------------


def test_daily_0230_fires_once_on_the_day_summer_time_starts(
        scheduled: tuple[Path, list[Scheduler]]) -> None:
    root, made = scheduled
    s = scheduler(root, made)
    reports = walk(s, datetime(2026, 3, 28, 12, tzinfo=PARIS),
                   datetime(2026, 3, 30, 12, tzinfo=PARIS), timedelta(minutes=10))
    # 02:30 does not exist on 29 March in Paris: the tick fires at the next valid instant,
    # 03:00 CEST (01:00 UTC), once; the next day is back at 02:30 CEST
    assert keys(reports) == ["nightly@2026-03-29T01:00:00Z", "nightly@2026-03-30T00:30:00Z"]


def test_daily_0230_fires_once_on_the_day_summer_time_ends(
        scheduled: tuple[Path, list[Scheduler]]) -> None:
    root, made = scheduled
    s = scheduler(root, made)
    reports = walk(s, datetime(2026, 10, 24, 12, tzinfo=PARIS),
                   datetime(2026, 10, 26, 12, tzinfo=PARIS), timedelta(minutes=10))
    # 02:30 happens twice on 25 October (CEST, then CET): the schedule fires at the first
    assert keys(reports) == ["nightly@2026-10-25T00:30:00Z", "nightly@2026-10-26T01:30:00Z"]


def test_an_hourly_schedule_fires_in_each_real_hour_across_both_transitions() -> None:
    def count(day: datetime) -> int:
        start, end = day.timestamp(), (day + timedelta(days=1)).timestamp()  # wall-clock day
        return len(due("0 * * * *", "Europe/Paris", start - 1, end - 1, keep=100).ticks)

    assert count(datetime(2026, 3, 29, tzinfo=PARIS)) == 23  # the day is 23 hours long
    assert count(datetime(2026, 10, 25, tzinfo=PARIS)) == 25  # and this one 25
    assert count(datetime(2026, 6, 1, tzinfo=PARIS)) == 24


# bad definitions --------------------------------------------------------------------------------


def test_an_invalid_cron_expression_is_an_error_naming_file_and_line(
        make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project(orders_project(schedule_yaml("61 2 * * *")))
    line = next(i for i, text in enumerate((root / "andon.yaml").read_text().splitlines(), 1)
                if "cron:" in text)
    code, _, err = cli("plan", "-p", root)
    assert code != 0
    assert f"andon.yaml:{line}" in err and "bad cron expression '61 2 * * *'" in err, err
    assert "Bad minute" in err


def test_an_unknown_time_zone_suggests_the_right_one(make_project: ProjectFactory) -> None:
    root = make_project(orders_project(schedule_yaml("30 2 * * *", timezone="Europe/Pariss")))
    with pytest.raises(ConfigError) as e:
        Project.load(root)
    assert "unknown time zone 'Europe/Pariss'" in e.value.message
    assert "Europe/Paris" in e.value.message and e.value.line is not None


@pytest.mark.parametrize(("extra", "message", "key"), [
    ("                params: huge\n", "unknown parameter set 'huge'", "params:"),
    ("                select: [total]\n", "total", "select:"),
    ("                environment: 'bad name'\n", "invalid environment name", "environment:"),
])
def test_a_schedule_that_cannot_run_is_refused_with_its_line(
        make_project: ProjectFactory, extra: str, message: str, key: str) -> None:
    root = make_project(orders_project(schedule_yaml("30 2 * * *", extra)))
    line = next(i for i, text in enumerate((root / "andon.yaml").read_text().splitlines(), 1)
                if text.strip() == extra.strip())
    with pytest.raises(ConfigError) as e:
        Scheduler(Project.load(root))
    assert message in e.value.message and e.value.line == line, e.value.render()


def test_a_sensor_on_a_source_whose_folder_is_missing_is_an_error(
        make_project: ProjectFactory, cli: Cli) -> None:
    files = orders_project(sensors="sensors:\n              arrivals: {source: orders}\n")
    root = make_project(files)
    shutil.rmtree(root / "incoming")
    code, _, err = cli("scheduler", "--once", "-p", root)
    assert code != 0
    assert "sensor 'arrivals': source 'orders': folder 'incoming' does not exist" in err, err
    line = next(i for i, text in enumerate((root / "andon.yaml").read_text().splitlines(), 1)
                if "arrivals:" in text)
    assert f"andon.yaml:{line}" in err
    assert not (root / ".andon" / "warehouse").exists() or not any(
        (root / ".andon" / "warehouse").iterdir())


# catch-up, cron changes, restarts -------------------------------------------------------------


@pytest.mark.parametrize(("extra", "expected"), [
    ("", ["05:00"]),  # off (the default): only the latest missed tick runs
    ("                catch_up: true\n", ["03:00", "04:00", "05:00"]),  # on: capped at 3
    ("                catch_up: true\n                max_catch_up: 10\n",
     ["01:00", "02:00", "03:00", "04:00", "05:00"]),
])
def test_catch_up_is_off_by_default_and_capped_when_on(
        make_project: ProjectFactory, extra: str, expected: list[str]) -> None:
    root = make_project(orders_project(schedule_yaml("0 * * * *", extra, timezone="UTC")))
    s = Scheduler(Project.load(root), background=False)
    try:
        s.tick(datetime(2026, 5, 1, 0, 30, tzinfo=UTC))  # first sight: counts from now
        report = s.tick(datetime(2026, 5, 1, 5, 30, tzinfo=UTC))  # five ticks were missed
    finally:
        s.close()
    assert [k.split("T")[1][:5] for k in keys([report])] == expected
    assert report.skipped == (() if len(expected) == 5 else ("nightly",))


def test_a_restart_neither_loses_nor_repeats_a_tick(
        scheduled: tuple[Path, list[Scheduler]]) -> None:
    root, made = scheduled
    first = scheduler(root, made)
    first.tick(datetime(2026, 6, 1, 12, tzinfo=PARIS))
    fired = first.tick(datetime(2026, 6, 2, 2, 31, tzinfo=PARIS))
    assert keys([fired]) == ["nightly@2026-06-02T00:30:00Z"]
    first.close()  # the process stops before running the queued tick

    again = scheduler(root, made)
    # the same moment evaluated again decides nothing new: the tick is in the store
    assert again.tick(datetime(2026, 6, 2, 2, 31, tzinfo=PARIS)).queued == ()
    # the queued tick is not lost: the new scheduler runs it
    done = again.run_queued()
    assert [(t["run_key"], t["status"]) for t in done] == [
        ("nightly@2026-06-02T00:30:00Z", "succeeded")]
    again.close()

    # down across the next tick: it fires when a scheduler comes back, once
    third = scheduler(root, made)
    late = third.tick(datetime(2026, 6, 3, 9, 0, tzinfo=PARIS))
    assert keys([late]) == ["nightly@2026-06-03T00:30:00Z"]
    assert third.tick(datetime(2026, 6, 3, 9, 1, tzinfo=PARIS)).queued == ()
    ticks = ScheduleRepository(third.project.store.engine).ticks("nightly")
    assert sorted(t["run_key"] for t in ticks) == [
        "nightly@2026-06-02T00:30:00Z", "nightly@2026-06-03T00:30:00Z"]


def test_a_tick_taken_by_a_scheduler_that_died_is_not_started_again(
        scheduled: tuple[Path, list[Scheduler]]) -> None:
    root, made = scheduled
    first = scheduler(root, made)
    first.tick(datetime(2026, 6, 1, 12, tzinfo=PARIS))
    first.tick(datetime(2026, 6, 2, 3, 0, tzinfo=PARIS))
    repo = ScheduleRepository(first.project.store.engine)
    taken = repo.claim_next("prod", first.claimer)  # taken, then the process dies
    assert taken is not None
    first.close()
    second = scheduler(root, made)
    second.tick(datetime(2026, 6, 2, 3, 1, tzinfo=PARIS))
    assert second.run_queued() == []
    (tick,) = repo.ticks("nightly")
    assert tick["status"] == "abandoned" and "scheduler stopped" in tick["error"]
    assert andon.Session(second.project, "x").runs() == []


def test_a_cron_change_counts_from_now(scheduled: tuple[Path, list[Scheduler]]) -> None:
    root, made = scheduled
    s = scheduler(root, made)
    s.tick(datetime(2026, 6, 1, 12, tzinfo=PARIS))
    config = root / "andon.yaml"
    config.write_text(config.read_text().replace("30 2 * * *", "0 * * * *"))
    changed = scheduler(root, made)
    # hourly ticks since the old evaluation are not run: the new timing starts now
    assert changed.tick(datetime(2026, 6, 1, 18, 30, tzinfo=PARIS)).queued == ()
    assert keys([changed.tick(datetime(2026, 6, 1, 19, 0, tzinfo=PARIS))]) == [
        "nightly@2026-06-01T17:00:00Z"]


# runs ------------------------------------------------------------------------------------------


def test_a_scheduled_run_builds_and_publishes_with_its_parameter_set(
        make_project: ProjectFactory, cli: Cli) -> None:
    big = "                params: big\n"
    root = make_project(orders_project(schedule_yaml("30 2 * * *", big)))
    s = Scheduler(Project.load(root), background=True)
    try:
        s.tick(datetime(2026, 6, 1, 12, tzinfo=PARIS))
        report = s.tick(datetime(2026, 6, 2, 2, 30, tzinfo=PARIS))  # exactly at the tick
        assert keys([report]) == ["nightly@2026-06-02T00:30:00Z"]
        assert s.wait(timeout=300)  # the worker thread runs it
    finally:
        s.close()
    project = Project.load(root)
    (tick,) = ScheduleRepository(project.store.engine).ticks("nightly")
    assert tick["status"] == "succeeded" and tick["run_id"] is not None
    run = andon.Session(project, "x").run_details(tick["run_id"])
    assert run.user == "scheduler" and run.status == "succeeded"
    # published in prod, with the set's min_amount (10): rows 2 and 3 only
    assert andon.query(project, "SELECT n, total FROM totals")[1] == [(2, 50.0)]
    code, out, _ = cli("schedules", "list", "-p", root, "--format", "json")
    assert code == 0
    (row,) = json.loads(out)
    assert (row["name"], row["last_status"], row["last_run"]) == (
        "nightly", "succeeded", tick["run_id"])
    assert row["next_tick"].endswith("T02:30+02:00") or row["next_tick"].endswith(
        "T02:30+01:00")


def test_runs_of_one_environment_never_overlap(make_project: ProjectFactory) -> None:
    catch_up = "                catch_up: true\n"
    root = make_project(orders_project(schedule_yaml("0 * * * *", catch_up, timezone="UTC")))
    s = Scheduler(Project.load(root), background=True)
    try:
        s.tick(datetime(2026, 5, 1, 0, 30, tzinfo=UTC))
        assert len(s.tick(datetime(2026, 5, 1, 3, 30, tzinfo=UTC)).queued) == 3
        assert s.wait(timeout=300)
    finally:
        s.close()
    project = Project.load(root)
    runs = sorted(project.store.runs(limit=10), key=lambda r: r["started_at"])
    assert [r["status"] for r in runs] == ["succeeded"] * 3
    for before, after in itertools.pairwise(runs):
        assert before["ended_at"] <= after["started_at"]  # one after the other, in tick order


# two schedulers on one PostgreSQL store --------------------------------------------------------


@pytest.mark.postgres
def test_two_schedulers_on_one_postgres_store_start_each_tick_once(
        make_project: ProjectFactory, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANDON_STORE_URL", postgres_url)
    root = make_project(orders_project(schedule_yaml("*/10 * * * *", timezone="UTC")))
    a = Scheduler(Project.load(root), background=False)
    b = Scheduler(Project.load(root), background=False)
    assert a.project.store is not b.project.store  # two engines, as two servers have
    try:
        start = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
        a.tick(start)
        decided: list[str] = []
        for i in range(1, 7):
            at = start + timedelta(minutes=10 * i)
            barrier = threading.Barrier(2)

            def race(s: Scheduler, when: datetime = at, gate: threading.Barrier = barrier
                     ) -> None:
                gate.wait()
                decided.extend(row["run_key"] for row in s.tick(when).queued)

            threads = [threading.Thread(target=race, args=(s,)) for s in (a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert sorted(decided) == [f"nightly@2026-05-01T00:{m}0:00Z" for m in range(1, 6)] + [
            "nightly@2026-05-01T01:00:00Z"]
        # both drain the queue at once: every tick runs once, by one of them
        done: list[dict[str, Any]] = []
        workers = [threading.Thread(target=lambda s=s: done.extend(s.run_queued()))
                   for s in (a, b)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        a.close()
        b.close()
    assert sorted(t["run_key"] for t in done) == sorted(decided)
    assert {t["status"] for t in done} == {"succeeded"}
    runs = Project.load(root).store.runs(limit=50)
    assert len(runs) == 6 and sorted(r["id"] for r in runs) == sorted(t["run_id"] for t in done)


# sensors on the flights example ----------------------------------------------------------------


def add_sensor(root: Path) -> None:
    with (root / "andon.yaml").open("a") as f:
        f.write("\nsensors:\n  new_flights:\n    source: raw_flights\n")


def test_a_new_flights_file_starts_a_run_of_the_sources_descendants(
        flights: Path, cli: Cli) -> None:
    add_sensor(flights)
    code, _, err = cli("run", "-p", flights, "-q")
    assert code == 0, err
    project = Project.load(flights)
    s = Scheduler(project, background=False)
    try:
        assert s.tick().queued == ()  # the six months already there are not arrivals
        assert s.tick().queued == ()
        arrived = flights / "incoming" / "flights" / "flights_2013_07.csv"
        shutil.copy(flights / "arrivals" / "flights_2013_07.csv", arrived)
        past = time.time() - 60  # a file finished writing a minute ago
        os.utime(arrived, (past, past))
        (tick,) = s.tick().queued
        assert tick["files"] == ["incoming/flights/flights_2013_07.csv"]
        assert tick["cursor"]["incoming/flights/flights_2013_07.csv"][0] == arrived.stat().st_size
        assert len(tick["cursor"]) == 7  # the cursor (files seen) is saved with the tick
        assert s.tick().queued == ()  # seen: not new again
        (done,) = s.run_queued()
    finally:
        s.close()
    assert done["status"] == "succeeded", done["error"]
    details = andon.Session(Project.load(flights), "x").run_details(done["run_id"])
    steps = {st.name: st.action for st in details.steps}
    descendants = {"raw_flights", *Project.load(flights).dag.descendants("raw_flights")}
    assert set(steps) == descendants  # the source and what depends on it, nothing else
    assert steps["raw_flights"] == "built"
    months = andon.query(Project.load(flights),
                         "SELECT count(DISTINCT month) FROM raw_flights")[1][0][0]
    assert months == 7
    code, out, _ = cli("schedules", "ticks", "new_flights", "-p", flights, "--format", "json")
    assert code == 0 and json.loads(out)[0]["files"] == ["incoming/flights/flights_2013_07.csv"]


def test_a_file_still_being_written_waits_for_the_next_evaluation(
        make_project: ProjectFactory) -> None:
    root = make_project(orders_project(
        sensors="sensors:\n              arrivals: {source: orders, settle_seconds: 3600}\n"))
    s = Scheduler(Project.load(root), background=False)
    try:
        s.tick()
        (root / "incoming" / "b.csv").write_text("id,amount\n4,40\n")
        assert s.tick().queued == ()  # written just now: maybe not finished
        past = time.time() - 7200
        os.utime(root / "incoming" / "b.csv", (past, past))
        (tick,) = s.tick().queued
        assert tick["files"] == ["incoming/b.csv"]
    finally:
        s.close()


def test_andon_scheduler_once_runs_what_is_due(make_project: ProjectFactory, cli: Cli) -> None:
    root = make_project(orders_project(
        sensors="sensors:\n              arrivals: {source: orders, settle_seconds: 0}\n"))
    code, _, err = cli("scheduler", "--once", "-p", root)
    assert code == 0, err
    (root / "incoming" / "b.csv").write_text("id,amount\n4,40\n")
    code, out, err = cli("scheduler", "--once", "-p", root)
    assert code == 0, err
    assert "succeeded" in out
    assert andon.query(Project.load(root), "SELECT n FROM totals")[1] == [(4,)]


def test_every_key_of_a_schedule_a_sensor_and_an_sla_is_documented() -> None:
    from andon.schedule.model import ScheduleConfig, SensorConfig, SlaConfig

    text = (Path(__file__).resolve().parents[1] / "docs" / "schedules.md").read_text()
    for model in (ScheduleConfig, SensorConfig, SlaConfig):
        for key in model.model_fields:
            assert f"{key}:" in text or f"`{key}`" in text, f"docs/schedules.md: {key}"


def test_the_loop_starts_a_run_when_a_file_arrives_and_stops_cleanly(
        make_project: ProjectFactory) -> None:
    root = make_project(orders_project(
        sensors="sensors:\n              arrivals: {source: orders, settle_seconds: 0}\n"))
    messages: list[str] = []
    s = Scheduler(Project.load(root), log=messages.append)
    loop = threading.Thread(target=s.run_forever, kwargs={"interval": 0.05})
    loop.start()
    try:
        repo = ScheduleRepository(s.project.store.engine)
        deadline = time.monotonic() + 120
        while not repo.states() and time.monotonic() < deadline:
            time.sleep(0.05)  # the first evaluation records the files already there
        (root / "incoming" / "b.csv").write_text("id,amount\n4,40\n")
        while time.monotonic() < deadline:
            ticks = repo.ticks("arrivals")
            if ticks and ticks[0]["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.05)
    finally:
        s.stop()
        loop.join(timeout=120)
        s.close()
    assert not loop.is_alive()
    (tick,) = repo.ticks("arrivals")
    assert tick["status"] == "succeeded", tick["error"]
    assert any(m.startswith("queued sensor arrivals") for m in messages), messages
    assert andon.query(Project.load(root), "SELECT n FROM totals")[1] == [(4,)]


def test_ctrl_c_stops_andon_scheduler(make_project: ProjectFactory) -> None:
    import signal
    import subprocess
    import sys

    root = make_project(orders_project(schedule_yaml("30 2 * * *")))
    proc = subprocess.Popen([sys.executable, "-m", "andon", "scheduler", "-p", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the loop has started
        assert "scheduler for orders: 1 schedule(s)" in first, first
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "scheduler stopped" in err


def test_a_run_queued_by_key_is_queued_once_and_runs(make_project: ProjectFactory) -> None:
    root = make_project(orders_project())
    s = Scheduler(Project.load(root), background=False)
    try:
        first = s.enqueue("prod", ["+totals"], params="big", key="backfill-2026-06")
        assert first is not None and first["run_key"] == "manual:backfill-2026-06"
        assert s.enqueue("prod", ["+totals"], params="big", key="backfill-2026-06") is None
        with pytest.raises(ConfigError, match="unknown parameter set 'huge'"):
            s.enqueue("prod", params="huge")
        (done,) = s.run_queued()
    finally:
        s.close()
    assert done["status"] == "succeeded", done["error"]
    assert andon.query(Project.load(root), "SELECT n FROM totals")[1] == [(2,)]


def test_andon_server_is_one_process_with_api_ui_and_scheduler(
        make_project: ProjectFactory) -> None:
    """`andon server` serves the API and runs the sensors: a file that arrives is built and
    shows in the API's runs list, with no `andon scheduler` beside it."""
    import socket
    import subprocess
    import sys

    import httpx

    root = make_project(orders_project(
        sensors="sensors:\n              arrivals: {source: orders, settle_seconds: 0}\n"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "andon", "server", "-p", str(root),
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/api/runs", timeout=5).status_code in (200, 404):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "andon server did not start"
            time.sleep(0.2)
        time.sleep(1.5)  # the sensor's first look: files already there count as seen
        (root / "incoming" / "b.csv").write_text("id,amount\n4,40\n")
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline + 60:
            body = httpx.get(f"{base}/api/runs", timeout=5).json()
            runs = [r for r in body.get("runs", []) if r.get("status") == "succeeded"]
            if runs:
                break
            time.sleep(0.3)
        assert runs, body
        assert httpx.get(f"{base}/", timeout=5).status_code == 200  # the UI, same process
    finally:
        proc.terminate()
        proc.wait(30)
