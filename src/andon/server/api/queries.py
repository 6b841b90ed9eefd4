"""Reading by SQL and planning: ``andon query`` (one SELECT over the environment's tables,
with the engine confined to their files) and ``andon plan`` (a dry run)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from andon.server.api import Caller, load
from andon.server.bodies import Query, RunRequest
from andon.server.names import checked

router = APIRouter(tags=["queries"])


@router.post("/query")
def query(caller: Caller, body: Query) -> dict[str, Any]:
    """Rows of one read-only SELECT. It reads only the environment's tables: files and
    URLs outside them are refused by the engine."""
    env = checked(body.environment, "environment") if body.environment else None
    columns, rows = caller.query(body.sql, env, limit=body.limit, as_of=body.as_of,
                                 commit=body.commit)
    return {"columns": columns, "rows": [list(r) for r in rows]}


@router.post("/plans")
def plan(caller: Caller, body: RunRequest) -> dict[str, Any]:
    """What a run would do, step by step, without doing anything."""
    env = checked(body.environment, "environment") if body.environment else None
    current = load(caller, params=body.params, environment=env, param_sets=body.param_sets)
    try:
        return current.plan(env, body.selection).to_dict()
    finally:
        current.project.close()
