"""Tables an environment publishes: the list with each table's health, and one table's page
(schema, sample rows, profile, lineage up and down, owner, latest check results)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from andon.server.api import Caller
from andon.server.jsonable import dumps
from andon.server.names import checked
from andon.server.state import state_of
from andon.service import Session
from andon.store import Store

router = APIRouter(tags=["tables"])

_FAILING = ("failed", "error")


_SHOWN = ("id", "fingerprint", "check_name", "severity", "status", "metric", "message", "at",
          "acknowledged")


def latest_checks(store: Store, fingerprints: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Artifact fingerprint → the latest result of each check judged on it."""
    out: dict[str, list[dict[str, Any]]] = {}
    for fp, records in store.checks.latest_by_artifact(fingerprints).items():
        out[fp] = [{k: v for k, v in r.as_dict().items() if k in _SHOWN} for r in records]
    return out


def health(results: list[dict[str, Any]]) -> dict[str, Any]:
    """``failing`` (an error check fails), ``warning`` (a warn check fails), ``ok`` or
    ``unchecked``, with the count of results per status."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    failing = [r for r in results if r["status"] in _FAILING and not r["acknowledged"]]
    if any(r["severity"] == "error" or r["status"] == "error" for r in failing):
        state = "failing"
    elif any(r["severity"] == "warn" for r in failing):
        state = "warning"
    else:
        state = "ok" if results else "unchecked"
    return {"state": state, "checks": counts}


@router.get("/tables")
def list_tables(caller: Caller, environment: str | None = None) -> dict[str, Any]:
    """Every table of the environment (default: prod) with its artifact and health."""
    env = checked(environment, "environment") if environment else None
    infos = caller.tables(env)
    results = latest_checks(caller.project.store, [i.fingerprint for i in infos])
    now = time.time()
    rows = []
    for info in infos:
        row = info.to_dict()
        row["age_seconds"] = round(now - info.built_at.timestamp(), 1)
        row["health"] = health(results.get(info.fingerprint, []))
        rows.append(row)
    return {"environment": env or caller.project.config.default_environment, "tables": rows}


@router.get("/tables/{table}", response_model=None)
async def table_json(caller: Caller, request: Request, table: str,
                     environment: str | None = None, rows: int = Query(10, ge=0, le=1000),
                     profile: bool = Query(True, description="include the column profile")
                     ) -> Response:
    """One table: what ``andon show``, ``andon profile`` and ``andon lineage`` print, with
    the latest result of each check on its artifact."""
    # the most read page: its JSON is kept for a second, and served from the event loop
    recent = state_of(request).recent
    key = ("table page", table, environment, rows, profile)
    hit, body = recent.peek(key)
    if not hit:
        page = await run_in_threadpool(table_page, caller, request, table, environment,
                                       rows=rows, profile=profile)
        body = dumps(page).encode()
        recent.put(key, body)
    return Response(body, media_type="application/json")


def table_page(caller: Session, request: Request, table: str, environment: str | None = None,
               *, rows: int = 10, profile: bool = True) -> dict[str, Any]:
    """The table page (``/api/tables/{table}``) as a dict, for the UI and the API."""
    name = checked(table, "table")
    env = checked(environment, "environment") if environment else None
    # a commit never changes: it fixes the table's artifact, so it keys the page
    head = caller.project.store.environment(env or caller.project.config.default_environment)
    pages = state_of(request).pages
    key = (name, env, head["commit_id"] if head else None, rows, profile)
    page = pages.get(key) if head and head["commit_id"] else None
    if page is None:
        page = caller.show(name, env, rows=rows)  # NotFound (did you mean…) when not there
        lineage = caller.lineage(name)
        page["upstream"], page["downstream"] = lineage["upstream"], lineage["downstream"]
        page["owners"] = [page["owner"]] if page.get("owner") else []
        if profile:
            prof = caller.profile(name, env)
            page["profile"] = {k: v for k, v in prof.items()
                               if k not in ("table", "fingerprint")}
        pages.put(key, page)
    checks = latest_checks(caller.project.store, [page["fingerprint"]])
    results = checks.get(page["fingerprint"], [])
    return {**page, "checks": results, "health": health(results)}


@router.get("/tables/{table}/lineage")
def table_lineage(caller: Caller, table: str) -> dict[str, Any]:
    """Where the table comes from and what depends on it (``andon lineage``)."""
    return caller.lineage(checked(table, "table"))


@router.get("/tables/{table}/profile")
def table_profile(caller: Caller, table: str, environment: str | None = None
                  ) -> dict[str, Any]:
    """Per column: type, nulls, distinct, range, mean, quantiles, top values."""
    env = checked(environment, "environment") if environment else None
    return caller.profile(checked(table, "table"), env)
