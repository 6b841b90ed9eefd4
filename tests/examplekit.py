"""What the example's tests assert about its checks: none of them is in status ``error``
(a check that could not run is a defect of the example, whatever its severity)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

Andon = Callable[[Sequence[str]], tuple[int, str, str]]


def errored_in_store(root: Path) -> list[str]:
    """Every check result of every run recorded in the project's store with status error."""
    with sqlite3.connect(root / ".andon" / "andon.db") as db:
        rows = db.execute("SELECT step, check_name, message FROM check_results "
                          "WHERE status = 'error' ORDER BY id").fetchall()
    return [f"{step}: {name}: {message}" for step, name, message in rows]


def errored_now(andon: Andon) -> list[str]:
    """Every check of the project run again on prod's tables (``andon test --format json``)
    that could not run."""
    code, out, err = andon(["test", "--format", "json"])
    assert out.strip(), f"andon test printed nothing (exit {code}): {err}"
    return [f"{r['table']}: {r['name']}: {r['message']}" for r in json.loads(out)
            if r["status"] == "error"]


def assert_every_check_ran(root: Path, andon: Andon) -> None:
    errored = errored_in_store(root) + errored_now(andon)
    assert not errored, "checks of the example could not run:\n" + "\n".join(errored)
