"""Checks: the project's checks, one check's history (with its control limits), and
acknowledging a result (``andon checks …``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from andon.server.api import Caller
from andon.server.bodies import Ack
from andon.server.names import checked

router = APIRouter(tags=["checks"])


@router.get("/checks")
def list_checks(caller: Caller) -> dict[str, Any]:
    """Every check of the project: table, type, severity, where it is declared."""
    return {"checks": caller.checks_list()}


@router.get("/checks/{name}/history")
def check_history(caller: Caller, name: str, environment: str | None = None,
                  limit: int = Query(30, ge=1, le=1000)) -> dict[str, Any]:
    """The check's results over time, oldest first, with SPC limits where it has them."""
    env = checked(environment, "environment") if environment else None
    return {"check": name,
            "results": caller.checks_history(checked(name, "check"), env, limit)}


@router.post("/checks/{name}/ack")
def acknowledge(caller: Caller, name: str, body: Ack) -> dict[str, Any]:
    """Mark a result (default: the latest) as expected: it joins the SPC baseline."""
    row = caller.checks_ack(checked(name, "check"), body.result_id, body.note)
    keep = ("id", "check_name", "environment", "status", "metric", "acknowledged", "ack_by",
            "ack_note")
    return {k: row.get(k) for k in keep}
