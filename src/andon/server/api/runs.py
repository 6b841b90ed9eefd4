"""Runs: the list (newest first, paginated, filtered by environment and status), one run in
the shape of ``andon runs show --format json``, its check results, starting, cancelling and
following a run (server-sent events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from andon.errors import AndonError, did_you_mean
from andon.server.api import Caller, load
from andon.server.bodies import RunRequest
from andon.server.jsonable import dumps
from andon.server.live import LiveRun
from andon.server.names import checked
from andon.server.state import state_of
from andon.service import Session

router = APIRouter(tags=["runs"])

STATUSES = ("running", "succeeded", "failed", "cancelled", "abandoned")
POLL = 0.5  # seconds between looks at the store, for a run this process did not start
KEEP_ALIVE = 15.0  # seconds of silence after which a comment keeps proxies from hanging up


@router.get("/runs")
def list_runs(caller: Caller, environment: str | None = None, status: str | None = None,
              limit: int = Query(50, ge=1, le=500),
              before: int | None = Query(None, description="run id: the page after it")
              ) -> dict[str, Any]:
    """Runs, newest first; ``next`` is the URL of the following page (null at the end)."""
    env = checked(environment, "environment") if environment else None
    if status is not None and status not in STATUSES:
        raise AndonError(f"unknown run status {status!r}",
                         hint=did_you_mean(status, STATUSES) or f"statuses: {', '.join(STATUSES)}")
    runs = caller.runs(env, limit, status=status, before=before)
    following = None
    if len(runs) == limit:
        query = {k: v for k, v in (("environment", env), ("status", status)) if v}
        following = "/api/runs?" + urlencode({**query, "limit": limit, "before": runs[-1].id})
    return {"runs": [r.to_dict() for r in runs], "next": following}


@router.get("/runs/{run_ref}")
def run_details(caller: Caller, run_ref: str) -> dict[str, Any]:
    """One run: status, steps, timings, errors (a run id or ``latest``)."""
    return caller.run_details(checked(run_ref, "run")).to_dict()


@router.get("/runs/{run_id}/checks")
def run_checks(caller: Caller, run_id: int) -> dict[str, Any]:
    """The check results a run recorded."""
    caller.run_details(run_id)  # NotFound for an unknown run
    rows = [r.as_dict() for r in caller.project.store.checks.of_run(run_id)]
    return {"run": run_id, "checks": rows}


@router.post("/runs", status_code=202)
def start_run(caller: Caller, request: Request, body: RunRequest) -> dict[str, Any]:
    """Start a run (as ``andon run``) in a worker thread; answers once it has an id, with
    the URL of its events. A role that may not run there, a busy environment or bad
    parameters are answered at once (403, 409, 400)."""
    env = checked(body.environment, "environment") if body.environment else None
    current = load(caller, params=body.params, environment=env, param_sets=body.param_sets)
    selection = list(body.selection)

    def work(listener: LiveRun) -> None:
        current.run(env, selection, listener=listener)

    run_id, _ = state_of(request).runs.start(work, cleanup=[current.project.close])
    return {"id": run_id, "status": "running",
            "environment": env or current.project.config.default_environment,
            "url": f"/api/runs/{run_id}", "events": f"/api/runs/{run_id}/events"}


@router.post("/runs/{run_ref}/cancel", status_code=202)
def cancel_run(caller: Caller, run_ref: str) -> dict[str, Any]:
    """Ask a running run to stop (it records itself as cancelled within seconds; follow its
    events to see it end). A run that already ended is a conflict (409)."""
    run = caller.cancel_run(checked(run_ref, "run"))
    return {"id": run["id"], "environment": run["environment"], "status": run["status"],
            "cancel_requested": True, "events": f"/api/runs/{run['id']}/events"}


def _sse(index: int, kind: str, data: Any) -> str:
    return f"id: {index}\nevent: {kind}\ndata: {dumps(data)}\n\n"


@router.get("/runs/{run_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
def run_events(caller: Caller, request: Request, run_id: int,
               last_event_id: int | None = Header(None)) -> StreamingResponse:
    """The run's progress as server-sent events: ``run_started`` (the plan),
    ``step_started``, ``step_finished`` and, last, ``run_finished`` (the result). A client
    that reconnects with ``Last-Event-ID`` resumes after that event."""
    details = caller.run_details(run_id).to_dict()  # NotFound before any stream starts
    live = state_of(request).runs.get(run_id)
    start = 0 if last_event_id is None else last_event_id + 1
    stream = _follow_live(live, start) if live is not None else _follow_store(
        caller, run_id, details, start)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _follow_live(live: LiveRun, index: int) -> AsyncIterator[str]:
    quiet = 0.0
    while True:
        events, done = live.since(index)
        for kind, data in events:
            yield _sse(index, kind, data)
            index += 1
        if done and not events:
            return
        if events:
            quiet = 0.0
            continue
        await asyncio.sleep(0.05)
        quiet += 0.05
        if quiet >= KEEP_ALIVE:
            quiet = 0.0
            yield ": keep-alive\n\n"


async def _follow_store(caller: Session, run_id: int, details: dict[str, Any], index: int
                        ) -> AsyncIterator[str]:
    """A run this process did not start (the CLI's, another server's, or one finished
    before): its steps as the store records them, then its details."""
    sent = 0
    quiet = 0.0
    while True:
        steps = details["steps"]
        for step in steps[sent:]:
            if sent >= index:
                yield _sse(sent, "step_finished", {"run": run_id, **step})
            sent += 1
        if details["status"] != "running":
            yield _sse(max(sent, index), "run_finished", details)
            return
        await asyncio.sleep(POLL)
        quiet += POLL
        if quiet >= KEEP_ALIVE:
            quiet = 0.0
            yield ": keep-alive\n\n"
        details = (await run_in_threadpool(caller.run_details, run_id)).to_dict()
