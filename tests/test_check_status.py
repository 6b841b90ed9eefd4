"""A check that could not run (status ``error``) is a defect of the pipeline: shown apart from
failures, counted by severity, alerted, and judged like a failure of its severity. A result
reused from an earlier run on the same artifact is shown as reused, not as news."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from tests.conftest import Cli, ProjectFactory

STEP = """\
/* ---
checks:
  - {type: row_count, min: 1}
  - {type: between, column: amount, max: 5, severity: warn}
--- */
SELECT i AS id, i * 2 AS amount FROM range(5) t(i)
"""
BROKEN_CHECK = """\
import andon


@andon.checks.check(table="orders", severity="{severity}")
def broken(df):
    raise RuntimeError("the lookup service is down")
"""


def shop(make_project: ProjectFactory, severity: str, out_file: Path) -> Path:
    command = shlex.join([sys.executable, "-c",
                          f"import sys; open({str(out_file)!r}, 'w').write(sys.stdin.read())"])
    return make_project({
        "andon.yaml": "name: shop\nalerts: " + json.dumps([{"type": "command",
                                                           "command": command}]) + "\n",
        "pipelines/shop/orders.sql": STEP,
        "checks/broken.py": BROKEN_CHECK.format(severity=severity),
    })


def run_json(cli: Cli, root: Path) -> tuple[int, dict[str, Any]]:
    code, out, err = cli("run", "-p", root, "--format", "json")
    assert out.strip(), err
    return code, json.loads(out)


def test_a_warn_check_that_cannot_run_warns_and_alerts(make_project: ProjectFactory, cli: Cli,
                                                        tmp_path: Path) -> None:
    alert = tmp_path / "alert.json"
    root = shop(make_project, "warn", alert)
    code, out, err = cli("run", "-p", root)
    assert code == 0, out + err
    assert "checks: 1 passed, 1 warn failed, 1 warn errored" in out + err
    assert "[warn] broken could not run: the check raised RuntimeError" in out + err
    message = json.loads(alert.read_text())
    head = message["text"].splitlines()[0]
    assert "0 error, 1 warning check(s) failed; 1 check(s) could not run" in head
    assert "broken could not run" in message["text"]
    # `andon test` counts it the same way
    code, out, err = cli("test", "-p", root)
    assert code == 0, out + err
    assert "3 checks: 1 passed, 1 warn failed, 1 warn errored" in out


def test_an_error_check_that_cannot_run_rejects_the_artifact(make_project: ProjectFactory,
                                                              cli: Cli, tmp_path: Path) -> None:
    root = shop(make_project, "error", tmp_path / "alert.json")
    code, result = run_json(cli, root)
    assert code == 1
    assert result["status"] == "failed"
    assert {s["name"]: s["action"] for s in result["steps"]} == {"orders": "failed"}
    code, out, err = cli("run", "-p", root)
    assert code == 1
    assert "1 error-severity errored" in out + err
    assert "check 'broken' (python) could not run on orders" in out + err
    code, out, err = cli("tables", "-p", root, "--format", "json")
    assert "orders" not in out  # nothing was published


def test_a_no_op_rerun_shows_reused_results_as_reused(make_project: ProjectFactory, cli: Cli,
                                                      tmp_path: Path) -> None:
    alert = tmp_path / "alert.json"
    command = shlex.join([sys.executable, "-c",
                          f"import sys; open({str(alert)!r}, 'a').write('x')"])
    root = make_project({
        "andon.yaml": "name: shop\nalerts: " + json.dumps([{"type": "command",
                                                           "command": command}]) + "\n",
        "pipelines/shop/orders.sql": STEP,
    })
    code, out, err = cli("run", "-p", root)
    assert code == 0 and "checks: 1 passed, 1 warn failed" in out + err
    assert alert.read_text() == "x"
    code, out, err = cli("run", "-p", root)
    assert code == 0
    assert "checks: 2 reused (1 warn failed)" in out + err
    assert "[warn] orders.between.amount (reused from an earlier run)" in out + err
    assert alert.read_text() == "x"  # no second alert
    code, result = run_json(cli, root)
    assert [c["reused"] for c in result["checks"]] == [True, True]
