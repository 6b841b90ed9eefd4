"""Every check of the flights example runs: none is in status ``error`` (could not run), and
the custom SQL metric under SPC records its value."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli


def test_every_check_of_the_example_runs(flights: Path, cli: Cli) -> None:
    code, out, err = cli("run", "-p", flights, "--format", "json")
    assert code == 0, err
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    errored = {n: c["message"] for n, c in checks.items() if c["status"] == "error"}
    assert errored == {}
    per_month = checks["flights.rows_per_month"]
    assert per_month["metric"] is not None and per_month["metric"] > 20_000
    assert "SPC" in per_month["message"]
