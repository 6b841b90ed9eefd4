"""Incremental steps by time range: a build recomputes every output interval that new (or
removed) input rows touch, so the result is exactly a full rebuild."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import andon
from tests.conftest import Cli, ProjectFactory

YAML = """
name: events
sources:
  raw_events:
    path: incoming/*.csv
    columns:
      day: {type: date, required: true}
      kind: {type: string, required: true}
      value: integer
  raw_kinds:
    path: reference/kinds.csv
    columns:
      kind: {type: string, required: true}
      label: string
"""
KINDS = "kind,label\na,alpha\nb,beta\n"

# a monthly aggregate, as in the issue: no grain, each month value is its own interval
MONTHLY = """
/* ---
materialized: incremental
time_column: month
--- */
SELECT CAST(date_trunc('month', day) AS DATE) AS month, kind,
       count(DISTINCT day) AS days, count(*) AS n, sum(value) AS total
FROM raw_events
GROUP BY ALL
"""
# a rolling window: a day's row depends on the two days before it
ROLLING = """
/* ---
materialized: incremental
time_column: day
grain: day
lookback: 2
--- */
WITH d AS (SELECT day, sum(value) AS total, count(*) AS n FROM raw_events GROUP BY day)
SELECT day, total, n,
       sum(total) OVER (ORDER BY day RANGE BETWEEN INTERVAL 2 DAY PRECEDING AND CURRENT ROW)
           AS total_3d
FROM d
"""
# a join with reference data, and a HAVING that a day's new rows alone may not pass
BUSY = """
/* ---
materialized: incremental
time_column: day
--- */
SELECT e.day, k.label, count(*) AS n
FROM raw_events AS e JOIN raw_kinds AS k ON k.kind = e.kind
GROUP BY ALL
HAVING count(*) >= 2
"""
# incremental on top of incremental: months of the rolling days
ROLLUP = """
/* ---
materialized: incremental
time_column: month
grain: month
--- */
SELECT date_trunc('month', day) AS month, sum(total_3d) AS total_3d, max(n) AS max_n
FROM rolling
GROUP BY ALL
"""
STEPS = {"monthly": MONTHLY, "rolling": ROLLING, "busy": BUSY, "rollup": ROLLUP}


def write_project(root: Path) -> Path:
    files = {"andon.yaml": YAML, "reference/kinds.csv": KINDS}
    files |= {f"pipelines/events/{name}.sql": sql for name, sql in STEPS.items()}
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    (root / "incoming").mkdir(exist_ok=True)
    return root


Row = tuple[dt.date, str, int]


def deliver(root: Path, name: str, rows: list[Row], stamp: int) -> None:
    path = root / "incoming" / f"{name}.csv"
    path.write_text("day,kind,value\n" + "".join(f"{d},{k},{v}\n" for d, k, v in rows))
    os.utime(path, ns=(stamp, stamp))  # a re-sent file is seen as new even within a tick


def table(root: Path, name: str) -> list[tuple[object, ...]]:
    project = andon.Project.load(root)
    return sorted(andon.query(project, f"SELECT * FROM {name}")[1], key=repr)


def rebuilt(root: Path, name: str) -> list[tuple[object, ...]]:
    """The step's query over all of today's inputs: a full rebuild."""
    sql = STEPS[name].split("--- */", 1)[1]
    if name == "rollup":
        sql = sql.replace("FROM rolling", f"FROM ({STEPS['rolling'].split('--- */', 1)[1]})")
    project = andon.Project.load(root)
    return sorted(andon.query(project, sql)[1], key=repr)


def run(root: Path) -> None:
    result = andon.run(andon.Project.load(root))
    assert result.ok, [s.error for s in result.steps if s.error]


def test_a_month_arriving_in_two_halves_counts_every_day(make_project: ProjectFactory) -> None:
    root = write_project(make_project({}))
    january = [dt.date(2013, 1, d) for d in range(1, 32)]
    deliver(root, "first_half", [(d, "a", 1) for d in january[:15]], 1)
    run(root)
    assert [r[2] for r in table(root, "monthly")] == [15]
    deliver(root, "second_half", [(d, "a", 1) for d in january[15:]], 2)
    run(root)
    month = table(root, "monthly")
    assert month == [(dt.date(2013, 1, 1), "a", 31, 31, 31)]
    assert month == rebuilt(root, "monthly")


def test_untouched_intervals_keep_their_files(make_project: ProjectFactory) -> None:
    root = write_project(make_project({}))
    deliver(root, "jan", [(dt.date(2013, 1, d), "a", d) for d in range(1, 29)], 1)
    run(root)
    first = andon.show(andon.Project.load(root), "rollup")
    deliver(root, "mar", [(dt.date(2013, 3, d), "a", d) for d in range(1, 29)], 2)
    run(root)
    after = andon.show(andon.Project.load(root), "rollup")
    assert after["files"] == first["files"] + 1  # January's file is shared, March is added
    assert table(root, "rollup") == rebuilt(root, "rollup")


DAYS = st.integers(min_value=0, max_value=75).map(lambda n: dt.date(2024, 1, 20)
                                                  + dt.timedelta(days=n))
ROWS = st.lists(st.tuples(DAYS, st.sampled_from(["a", "b", "c"]),
                          st.integers(min_value=-5, max_value=9)), min_size=1, max_size=24)


@settings(max_examples=8, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=ROWS, data=st.data())
def test_any_split_into_batches_equals_a_full_rebuild(rows: list[Row], data: st.DataObject
                                                      ) -> None:
    batches = data.draw(st.integers(min_value=1, max_value=4), label="batches")
    where = data.draw(st.lists(st.integers(0, batches - 1), min_size=len(rows),
                               max_size=len(rows)), label="batch of each row")
    # a batch is a new file, or re-sends an earlier batch's file name with other rows
    names = [data.draw(st.integers(0, i), label=f"file name of batch {i}")
             for i in range(batches)]
    with tempfile.TemporaryDirectory() as tmp:
        root = write_project(Path(tmp))
        for i in range(batches):
            batch = [r for r, b in zip(rows, where, strict=True) if b == i]
            deliver(root, f"batch{names[i]}", batch, i + 1)
            run(root)
            for name in STEPS:
                assert table(root, name) == rebuilt(root, name), (name, i)


def test_invalid_incremental_config_fails_at_plan_time(make_project: ProjectFactory,
                                                       cli: Cli) -> None:
    root = write_project(make_project({}))
    deliver(root, "jan", [(dt.date(2013, 1, 1), "a", 1)], 1)
    step = root / "pipelines/events/monthly.sql"
    step.write_text(MONTHLY.lstrip().replace("time_column: month",
                                             "time_column: month\ngrain: fortnight"))
    code, _, err = cli("plan", "-p", root)
    assert code == 1
    assert "monthly.sql" in err and "unknown grain 'fortnight'" in err and "month" in err

    step.write_text(MONTHLY.lstrip().replace("time_column: month", "time_column: moth"))
    code, _, err = cli("plan", "-p", root)
    assert code == 1
    assert "monthly.sql:3" in err and "time_column 'moth' is not a column" in err
    assert "hint: did you mean 'month'?" in err

    step.write_text(MONTHLY.lstrip().replace("time_column: month", "time_column: n\ngrain: month"))
    code, _, err = cli("plan", "-p", root)
    assert code == 1
    assert "monthly.sql:4" in err and "time_column 'n' is BIGINT" in err and "hint:" in err

    step.write_text(MONTHLY.lstrip().replace("time_column: month",
                                             "time_column: month\nlookback: 2"))
    code, _, err = cli("plan", "-p", root)
    assert code == 1 and "declare a grain" in err
