"""Statistical process control: the Western Electric rules on synthetic series, min_history,
day-of-week seasonality; incidents leave the baseline until acknowledged."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from andon.checks.model import SpcSpec
from andon.checks.spc import judge
from tests.conftest import Cli, ProjectFactory

DAY = 86400.0
# a stable baseline: mean 10, sample sd 1 (alternating 9 and 11 has sd ~1.03)
BASE = [9.0, 11.0] * 10


def series(values: list[float], start: float = 1_700_000_000.0) -> list[tuple[float, float]]:
    return [(start + i * DAY, v) for i, v in enumerate(values)]


def rules(*names: str) -> SpcSpec:
    return SpcSpec(rules=list(names), min_history=8, window=30)  # type: ignore[arg-type]


def test_in_control() -> None:
    out = judge(SpcSpec(), series(BASE), 10.5, 0)
    assert out.judged and out.violations == ()
    assert out.mean == pytest.approx(10.0)
    assert out.lower == pytest.approx(10 - 3 * out.sigma) and out.sigma == pytest.approx(1.026,
                                                                                       abs=1e-3)


def test_one_point_beyond_3_sigma() -> None:
    assert judge(rules("1_beyond_3s"), series(BASE), 13.3, 0).violations == (
        "one point beyond 3.0σ",)
    assert judge(rules("1_beyond_3s"), series(BASE), 6.7, 0).violations != ()
    assert judge(rules("1_beyond_3s"), series(BASE), 12.9, 0).violations == ()


def test_two_of_three_beyond_2_sigma_on_one_side() -> None:
    spec = rules("2_of_3_beyond_2s")
    assert judge(spec, series([*BASE, 12.8]), 12.9, 0).violations == (
        "2 of 3 points beyond 2σ on one side",)  # 2 of the last 2
    assert judge(spec, series([*BASE, 12.8, 10.0]), 12.9, 0).violations != ()  # 2 of 3
    assert judge(spec, series([*BASE, 12.8, 10.0, 10.0]), 12.9, 0).violations == ()  # 1 of 3
    assert judge(spec, series([*BASE, 7.2]), 12.9, 0).violations == ()  # opposite sides
    assert judge(spec, series([*BASE, 12.8]), 10.0, 0).violations == ()  # newest inside


def test_four_of_five_beyond_1_sigma() -> None:
    spec = rules("4_of_5_beyond_1s")
    above = [11.6, 11.7, 10.0, 11.8]
    assert judge(spec, series([*BASE, *above]), 11.6, 0).violations == (
        "4 of 5 points beyond 1σ on one side",)
    assert judge(spec, series([*BASE, 11.6, 10.0, 10.0, 11.8]), 11.6, 0).violations == ()


def test_eight_in_a_row_on_one_side() -> None:
    spec = rules("8_one_side")
    low = [9.8] * 7
    base = [9.0, 11.0] * 4 + [10.0] * 12  # mean ~10
    assert judge(spec, series([*base, *low]), 9.9, 0).violations == (
        "8 points in a row on one side of the mean",)
    assert judge(spec, series([*base, *low[:6]]), 9.9, 0).violations == ()
    assert judge(spec, series([*base, *low]), 10.2, 0).violations == ()


def test_min_history() -> None:
    out = judge(SpcSpec(min_history=8), series(BASE[:7]), 1000.0, 0)
    assert not out.judged and out.violations == () and out.history == 7
    assert judge(SpcSpec(min_history=8), series(BASE[:8]), 1000.0, 0).judged


def test_window_keeps_the_latest_results() -> None:
    old = [100.0, 101.0] * 10
    out = judge(SpcSpec(window=10), series([*old, *BASE[:10]]), 10.0, 0)
    assert out.mean == pytest.approx(10.0) and out.violations == ()


def test_day_of_week_seasonality() -> None:
    # Mondays are busy (100 ± 1), other days quiet (10 ± 1)
    start = datetime(2024, 1, 1).timestamp()  # a Monday
    values = [(100.0 if i % 7 == 0 else 10.0) + (1 if (i // 7) % 2 else -1) for i in range(70)]
    hist = series(values, start)
    monday = (datetime(2024, 1, 1) + timedelta(days=70)).timestamp()
    tuesday = monday + DAY
    spec = SpcSpec(seasonality="day_of_week", min_history=5)
    assert judge(spec, hist, 100.0, monday).violations == ()
    assert judge(spec, hist, 100.0, tuesday).violations != ()
    assert judge(spec, hist, 10.0, monday).violations != ()
    # without seasonality a quiet Monday goes unnoticed among mostly quiet days
    assert judge(SpcSpec(min_history=5), hist, 10.0, monday).violations == ()
    # not enough Mondays yet: recorded, not judged
    assert not judge(SpcSpec(seasonality="day_of_week", min_history=11), hist, 100.0,
                     monday).judged


def test_constant_history() -> None:
    flat = [5.0] * 10
    assert judge(SpcSpec(), series(flat), 5.0, 0).violations == ()
    assert judge(SpcSpec(), series(flat), 6.0, 0).violations != ()


# --- in a project: incidents leave the baseline, ack brings them back --------------------

CONFIG = """\
name: t
sources:
  events:
    path: incoming/*.csv
    columns:
      id: {type: integer, required: true}
    checks:
      - type: rows_added
        name: batch_size
        severity: warn
        spc: {window: 20, min_history: 4, k: 3}
"""


def deliver(root: Path, n: int, rows: int) -> None:
    start = sum(1 for _ in (root / "incoming").glob("*.csv")) * 1000
    body = "".join(f"{start + i}\n" for i in range(rows))
    (root / f"incoming/b{n:02d}.csv").write_text("id\n" + body)


def batch(cli: Cli, root: Path, n: int, rows: int) -> dict:
    deliver(root, n, rows)
    code, out, err = cli("run", "-p", root, "--format", "json")
    assert code == 0, err
    return next(c for c in json.loads(out)["checks"] if c["name"] == "batch_size")


def history(cli: Cli, root: Path) -> list[dict]:
    code, out, err = cli("checks", "history", "batch_size", "-p", root, "--format", "json")
    assert code == 0, err
    return list(json.loads(out))


def test_incidents_leave_the_baseline_and_ack_returns_them(make_project: ProjectFactory,
                                                           cli: Cli) -> None:
    root = make_project({"andon.yaml": CONFIG})
    (root / "incoming").mkdir()
    first = batch(cli, root, 0, 10)
    assert first["status"] == "passed"
    assert "SPC: 0 of 4 results needed before judging (recorded)" in first["message"]
    assert first["spc"]["judged"] is False
    for n, rows in enumerate([11, 10, 11], start=1):
        assert batch(cli, root, n, rows)["status"] == "passed"
    judged = batch(cli, root, 4, 10)
    assert judged["spc"]["judged"] is True and "in control" in judged["message"]
    assert judged["spc"]["mean"] == pytest.approx(10.5)
    spike = batch(cli, root, 5, 100)
    assert spike["status"] == "failed" and spike["metric"] == 100
    assert "one point beyond 3.0σ" in spike["message"]
    assert history(cli, root)[-1]["incident"] is True
    # the spike is not part of the next baseline
    after = batch(cli, root, 6, 10)
    assert after["status"] == "passed"
    assert after["spc"]["mean"] == pytest.approx(10.4) and after["spc"]["history"] == 5
    # acknowledging it as expected puts it back
    spike_id = history(cli, root)[-2]["id"]
    code, _out, err = cli("checks", "ack", "batch_size", "--id", str(spike_id), "--note",
                         "promo day", "-p", root)
    assert code == 0, err
    assert next(r for r in history(cli, root) if r["id"] == spike_id)["acknowledged"] is True
    later = batch(cli, root, 7, 10)
    assert later["spc"]["history"] == 7
    assert later["spc"]["mean"] == pytest.approx((10 + 11 + 10 + 11 + 10 + 100 + 10) / 7)
    code, _out, err = cli("checks", "ack", "batch_sise", "-p", root)
    assert code != 0 and "did you mean 'batch_size'" in err
