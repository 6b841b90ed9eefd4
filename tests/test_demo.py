"""`andon demo`: the flights example played month by month, every check of it running."""

from __future__ import annotations

import re
from pathlib import Path

from andon.checks.model import CheckResult
from andon.examples import checks_line
from tests.examplekit import assert_every_check_ran, errored_in_store

SUMMARY = re.compile(r"checks: (\d+) passed( · \d+ \w+ (failed|recorded))* · (\d+) errored")


def result(status: str, severity: str, *, reused: bool = False) -> CheckResult:
    return CheckResult(name=f"t.{status}.{severity}", table="t", type="row_count",
                       severity=severity, status=status, metric=1.0, threshold={},
                       message="", reused=reused)


def test_checks_line_counts_each_status_by_severity() -> None:
    results = [result("passed", "error"), result("passed", "warn", reused=True),
               result("failed", "warn"), result("failed", "warn"), result("recorded", "info"),
               result("failed", "error")]
    assert checks_line(results) == ("2 passed · 1 error failed · 2 warn failed · "
                                    "1 info recorded · 0 errored (1 reused)")


def test_checks_line_never_hides_a_check_that_could_not_run() -> None:
    line = checks_line([result("passed", "error"), result("error", "warn"),
                        result("error", "error"), result("error", "warn")])
    assert line == "1 passed · 3 errored (1 error, 2 warn)"
    assert "failed" not in line  # not counted as a failure of the data


def test_demo_stops_the_line_on_the_broken_month_and_every_check_runs(
        tmp_path: Path, cli) -> None:
    root = tmp_path / "demo"
    code, out, err = cli("demo", root)
    assert code == 0, out[-3000:] + err[-3000:]
    batches = [ln for ln in out.splitlines() if ln.startswith("batch ")]
    assert len(batches) == 8
    broken = next(ln for ln in batches if "(broken)" in ln)
    assert " failed " in broken and "1 error failed" in broken
    assert "flights.accepted_values.origin" in out
    for line in batches:
        counted = SUMMARY.search(line)
        assert counted, line
        assert counted.group(4) == "0", line
    assert all(" ok " in ln for ln in batches if ln is not broken)
    assert "published 336,776 flights to prod" in out
    assert errored_in_store(root) == []
    assert_every_check_ran(root, lambda args: cli(*args, "-p", root))
