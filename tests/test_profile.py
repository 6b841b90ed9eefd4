"""Profiles and the single scan: column checks and the profile of a table are one aggregate
query; failing rows are sampled only when a check fails; ``andon checks suggest`` round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from andon.checks import run as checks_run
from tests.conftest import Cli, ProjectFactory

DATA = """\
SELECT * FROM (VALUES
  (1, 'N101AA', 'EWR', 10.0::DOUBLE, DATE '2024-01-01'),
  (2, 'N202BB', 'JFK', 20.0, DATE '2024-01-02'),
  (3, 'N303CC', 'JFK', 30.0, DATE '2024-01-03'),
  (4, 'N404DD', 'LGA', 40.0, NULL),
  (5, NULL, 'JFK', NULL, DATE '2024-01-05')
) AS v(id, tail, origin, delay, day)
"""

CHECKS = """\
  - {type: not_null, column: id}
  - {type: unique, column: id}
  - {type: unique, columns: [origin, day]}
  - {type: accepted_values, column: origin, values: [EWR, JFK, LGA]}
  - {type: regex, column: tail, pattern: '[A-Z0-9]+'}
  - {type: between, column: delay, min: 0, max: 100}
  - {type: mean_between, column: delay, min: 0, max: 100}
  - {type: null_share_max, column: tail, max: 0.5}
  - {type: row_count, min: 1}
  - {type: expression, expr: 'id < 10'}
"""


def project(make_project: ProjectFactory, checks: str = CHECKS) -> Path:
    return make_project({"andon.yaml": "name: t\n",
                         "pipelines/p/f.sql": f"/* ---\nchecks:\n{checks}--- */\n{DATA}"})


def test_column_checks_and_profile_are_one_scan(make_project: ProjectFactory,
                                                cli: Cli) -> None:
    root = project(make_project)
    checks_run.QUERIES.clear()
    code, out, err = cli("run", "-p", root, "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert len(result["checks"]) == 10
    assert {c["status"] for c in result["checks"]} == {"passed"}
    assert checks_run.QUERIES[("f", "scan")] == 1  # ten checks + the profile
    assert checks_run.QUERIES[("f", "sample")] == 0  # nothing failed: no samples
    # the profile was computed in that scan: `andon profile` needs no new scan
    checks_run.QUERIES.clear()
    assert cli("profile", "f", "-p", root, "--format", "json")[0] == 0
    assert checks_run.QUERIES[("f", "scan")] == 0


def test_failing_rows_sampled_only_for_failing_checks(make_project: ProjectFactory,
                                                      cli: Cli) -> None:
    root = project(make_project, CHECKS
                   .replace("mean_between, column: delay, min: 0, max: 100}",
                            "mean_between, column: delay, max: 20, severity: warn}")
                   .replace("delay, min: 0, max: 100}", "delay, max: 25, severity: warn}"))
    checks_run.QUERIES.clear()
    code, out, err = cli("run", "-p", root, "--format", "json")
    assert code == 0, err
    failed = {c["name"] for c in json.loads(out)["checks"] if c["status"] != "passed"}
    assert failed == {"f.between.delay", "f.mean_between.delay"}
    assert checks_run.QUERIES[("f", "scan")] == 1
    assert checks_run.QUERIES[("f", "sample")] == 1  # only the row check has rows to show


def test_a_broken_check_is_reported_and_the_others_still_run(make_project: ProjectFactory,
                                                             cli: Cli) -> None:
    # it binds (plan time), but the data breaks it: 'N101AA' is no integer
    root = project(make_project, CHECKS + "  - {type: expression, expr: 'tail::INTEGER > 1', "
                                          "severity: warn, name: broken}\n")
    code, out, err = cli("run", "-p", root, "--format", "json")
    assert code == 0, err
    got = {c["name"]: c for c in json.loads(out)["checks"]}
    assert got["f.expression"]["status"] == "passed"
    broken = [c for c in got.values() if c["status"] == "error"]
    assert len(broken) == 1 and "N101AA" in broken[0]["message"]


def test_profile_json(make_project: ProjectFactory, cli: Cli) -> None:
    root = project(make_project, "  - {type: row_count, min: 1}\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    code, out, err = cli("profile", "f", "-p", root, "--format", "json")
    assert code == 0, err
    prof = json.loads(out)
    assert prof["rows"] == 5 and prof["table"] == "f" and len(prof["fingerprint"]) == 32
    cols = {c["column"]: c for c in prof["columns"]}
    assert list(cols) == ["id", "tail", "origin", "delay", "day"]
    delay = cols["delay"]
    assert (delay["type"], delay["count"], delay["nulls"], delay["distinct"]) == (
        "DOUBLE", 4, 1, 4)
    assert (delay["min"], delay["max"], delay["mean"]) == (10.0, 40.0, 25.0)
    assert delay["stddev"] == pytest.approx(12.9099, abs=1e-3)
    assert set(delay["quantiles"]) == {"0.05", "0.25", "0.5", "0.75", "0.95"}
    assert delay["quantiles"]["0.05"] <= delay["quantiles"]["0.5"] <= delay["quantiles"]["0.95"]
    origin = cols["origin"]
    assert origin["top_values"][0] == ["JFK", 3]
    assert (origin["len_min"], origin["len_max"]) == (3, 3)
    assert origin["pattern"] == "A{3}" and origin["pattern_share"] == 1
    tail = cols["tail"]
    assert tail["pattern"] == "A9{3}A{2}" and tail["nulls"] == 1
    assert (tail["min"], tail["max"]) == ("N101AA", "N404DD")
    assert cols["day"]["min"] == "2024-01-01" and cols["day"]["nulls"] == 1
    code, out, err = cli("profile", "ff", "-p", root)
    assert code != 0 and "did you mean 'f'" in err


def test_suggested_checks_load_and_pass_on_the_same_data(make_project: ProjectFactory,
                                                         cli: Cli) -> None:
    root = project(make_project, "  - {type: row_count, min: 1}\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    target = root / "checks" / "f.yaml"
    code, out, err = cli("checks", "suggest", "f", "-p", root, "--write", target)
    assert code == 0, err
    text = target.read_text()
    for expected in ("type: schema", "type: not_null", "column: id", "type: unique",
                     "type: accepted_values", "type: between", "type: null_share_max",
                     "type: row_count"):
        assert expected in text, text
    code, out, err = cli("checks", "list", "-p", root, "--format", "json")
    assert code == 0, err
    assert len([r for r in json.loads(out) if r["where"].startswith("checks/f.yaml")]) >= 8
    code, out, err = cli("test", "-p", root, "--format", "json")
    assert code == 0, err
    results = json.loads(out)
    assert {r["status"] for r in results} == {"passed"}, [
        (r["name"], r["message"]) for r in results if r["status"] != "passed"]
    # writing over an existing file is refused
    code, out, err = cli("checks", "suggest", "f", "-p", root, "--write", target)
    assert code != 0 and "exists" in err
