"""A small project for environment, promotion, parameter, secret and gc tests, and helpers
that read what an environment points at straight from the store."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import andon
from andon.store import schema as t
from tests.conftest import Cli

# codes and facts are independent; facts checks that its codes exist in codes (a check that
# reads another table, so a candidate can fail it although each branch passed it)
SMALL = {
    "andon.yaml": """
        name: small
        params:
          threshold: {type: integer, default: 2, min: 0, max: 10, description: smallest id kept}
    """,
    "pipelines/p/codes.sql": """
        /* ---
        primary_key: [code]
        --- */
        SELECT * FROM (VALUES ('A', 'alpha'), ('B', 'beta'), ('C', 'gamma')) t(code, name)
    """,
    "pipelines/p/facts.sql": """
        /* ---
        primary_key: [id]
        checks:
          - {type: relationship, name: facts.code_known, column: code, to: codes.code}
        --- */
        SELECT * FROM (VALUES (1, 'A', 10), (2, 'B', 20), (3, 'A', 30)) t(id, code, amount)
    """,
    "pipelines/p/big.sql": """
        SELECT * FROM facts WHERE id >= {{ threshold }}
    """,
}

STEPS = {"codes", "facts", "big"}


def step_file(root: Path, step: str) -> Path:
    return root / "pipelines" / "p" / f"{step}.sql"


def edit(root: Path, step: str, old: str, new: str) -> None:
    path = step_file(root, step)
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def head(root: Path, env: str = "prod") -> str:
    """The commit ``env`` points at (it must exist)."""
    with _store(root) as store:
        row = store.environment(env)
    assert row is not None and row["commit_id"], f"no environment {env}"
    return str(row["commit_id"])


class _store:
    def __init__(self, root: Path) -> None:
        self.project = andon.Project.load(root)

    def __enter__(self) -> Any:
        return self.project.store

    def __exit__(self, *exc: object) -> None:
        self.project.close()


def steps_of(root: Path, env: str = "prod") -> dict[str, str]:
    """Step → fingerprint of what ``env`` points at."""
    with _store(root) as store:
        row = store.environment(env)
        return store.commit_steps(row["commit_id"]) if row else {}


def count(root: Path, table: Any) -> int:
    from sqlalchemy import func, select

    with _store(root) as store, store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def artifact_count(root: Path) -> int:
    return count(root, t.artifacts)


def warehouse_files(root: Path) -> set[str]:
    wh = root / ".andon" / "warehouse"
    return {str(p.relative_to(wh)) for p in wh.rglob("*") if p.is_file()}


def run_json(cli: Cli, root: Path, *args: str | Path) -> tuple[int, dict[str, Any]]:
    code, out, err = cli("run", "-p", root, "--format", "json", *args)
    assert out.strip(), err
    return code, json.loads(out)


def actions(result: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["action"] for s in result["steps"]}


def rows(cli: Cli, root: Path, sql: str, *args: str | Path) -> list[dict[str, Any]]:
    code, out, err = cli("query", sql, "-p", root, "--format", "json", *args)
    assert code == 0, err
    return list(json.loads(out))


def iso(ts: float) -> str:
    """A local ISO time with microseconds, as a user would type it (more precisely)."""
    return datetime.fromtimestamp(ts).isoformat()
