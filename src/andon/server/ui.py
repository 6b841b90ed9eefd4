"""The web UI: server-rendered pages (Jinja2, htmx for partial updates, uPlot for dense
charts, all vendored: it works offline) over the same endpoint functions as the JSON API,
so every page shows what its JSON twin under ``/api/`` answers, with the same errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from andon.access import NotAuthenticated
from andon.errors import AndonError
from andon.server import catalog_ui, graph, signin
from andon.server.api import checks as checks_api
from andon.server.api import environments as environments_api
from andon.server.api import runs as runs_api
from andon.server.api import tables as tables_api
from andon.server.auth import session
from andon.server.bodies import Ack, Promote, RunRequest
from andon.server.failures import error_response, http_error
from andon.server.names import checked
from andon.server.templating import templates
from andon.server.trends import bars, row_history, schema_changes, sparkline
from andon.service import Session

HERE = Path(__file__).parent
PAGE = 50  # rows of a list page
MAX_GRAPH = 300  # steps drawn at once on the pipeline page; more needs a selection
TREND = 20  # builds in a table's sparkline

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["pipeline"])  # the pipeline page's JSON twin (the API has no such page)


def mount_ui(app: FastAPI) -> None:
    """Serve the UI's pages, its sign-in and its vendored assets from ``app`` (made by
    ``build``); a path outside the API that names nothing is an HTML page, not JSON."""
    app.include_router(router)
    app.include_router(signin.router)
    app.include_router(api, prefix="/api")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(StarletteHTTPException, _http_error_page)


async def _http_error_page(request: Request, e: Exception) -> Response:
    """``http_error``'s JSON under /api/ and for the assets, else a page."""
    answer = await http_error(request, e)
    path = request.url.path
    if path == "/api" or path.startswith(("/api/", "/openapi", "/static/")):
        return answer
    error = json.loads(bytes(answer.body))["error"]
    template = "not_found.html" if answer.status_code == 404 else "error.html"
    return templates.TemplateResponse(request, template, {"error": error, "path": path},
                                      status_code=answer.status_code)


# rendering ----------------------------------------------------------------------------------


def _error(request: Request, e: AndonError, template: str = "error.html") -> Response:
    status = error_response(e).status_code
    return templates.TemplateResponse(request, template, {"error": e.fields()},
                                      status_code=status)


def _page(request: Request, template: str, build: Callable[[Session], dict[str, Any]]
          ) -> Response:
    """``template`` filled by ``build(caller)``; an error renders as a page with the JSON
    error's message and hint and its HTTP status."""
    try:
        caller = session(request)
        context = build(caller)
    except NotAuthenticated as e:  # a browser without a (valid) session: sign in first
        return signin.signin_page(request, error=e, status=401, next_url=_here(request))
    except AndonError as e:
        return _error(request, e)
    return templates.TemplateResponse(request, template, {"user": caller.user, **context})


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def _act(request: Request, template: str,
               build: Callable[[Session, dict[str, str]], dict[str, Any]]) -> Response:
    """A POST from the UI's htmx forms: refused unless htmx sent it (a page elsewhere cannot
    set that header, so it cannot act in the user's name); its partial or its error."""
    if request.headers.get("hx-request") != "true":
        refused = AndonError("the UI's actions are sent by its own pages (header HX-Request)",
                             kind="forbidden",
                             hint="use the page's button, or the JSON API with a token")
        return _error(request, refused)
    form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
    try:
        caller = session(request)
        context = await run_in_threadpool(build, caller, form)
    except AndonError as e:
        return _error(request, e, "error_box.html")
    response = templates.TemplateResponse(request, template, context)
    if "redirect" in context:
        response.headers["HX-Redirect"] = context["redirect"]
    return response


def _env(value: str | None) -> str | None:
    return checked(value, "environment") if value else None


def _pages(total: int, page: int) -> dict[str, int]:
    last = max((total + PAGE - 1) // PAGE, 1)
    return {"page": min(page, last), "last": last, "total": total}


# overview and pipeline ----------------------------------------------------------------------


@router.get("/")
def overview(request: Request, environment: str | None = None,
             page: int = Query(1, ge=1)) -> Response:
    def build(caller: Session) -> dict[str, Any]:
        listing = tables_api.list_tables(caller, _env(environment))
        env = listing["environment"]
        paging = _pages(len(listing["tables"]), page)
        start = (paging["page"] - 1) * PAGE
        rows = listing["tables"][start:start + PAGE]
        names = [r["table"] for r in rows]
        trends = row_history(caller.project.store, env, names, TREND)
        changed = schema_changes(caller.project.store, names, TREND)
        for row in rows:
            row["schema_changes"] = changed.get(row["table"], 0)
            counts = [float(n) for _, _, n in trends.get(row["table"], [])]
            row["trend"] = sparkline(counts)
            row["builds"] = len(counts)
        query = {"environment": env} if environment else {}
        return {"title": "Overview", "environment": env, "tables": rows, "paging": paging,
                "query": urlencode(query), "twin": "/api/tables?" + urlencode(query)}

    return _page(request, "overview.html", build)


def pipeline_graph(caller: Session, environment: str | None, selection: str | None
                   ) -> dict[str, Any]:
    """The steps (a selection, capped), their layout and their status in the latest run."""
    dag = caller.project.dag
    chosen = dag.select(selection.split()) if selection else dag.order
    shown = [n for n in dag.order if n in set(chosen)][:MAX_GRAPH]
    parents = {n: [p for p in dag.steps[n].parents if p in set(shown)] for n in shown}
    runs = caller.runs(environment, 1)
    latest = caller.run_details(runs[0].id).to_dict() if runs else None
    status = {s["name"]: s["action"] for s in latest["steps"]} if latest else {}
    placed = graph.layout(parents)
    return {"environment": environment or caller.project.config.default_environment,
            "run": latest and {k: latest[k] for k in ("id", "status", "started_at")},
            "steps": len(chosen), "shown": len(shown),
            "nodes": [{"name": n.name, "layer": n.layer, "x": n.x, "y": n.y,
                       "kind": dag.steps[n.name].kind,
                       "status": status.get(n.name, "not run")} for n in placed.nodes],
            "edges": [{"parent": e.parent, "child": e.child, "path": e.path}
                      for e in placed.edges],
            "width": placed.width, "height": placed.height}


@api.get("/pipeline")
def pipeline_json(request: Request, environment: str | None = None,
                  select: str | None = Query(None, description="selectors, space-separated")
                  ) -> dict[str, Any]:
    """The DAG of steps (at most 300 at once: narrow it with ``select``) laid out in layers,
    with each step's action in the environment's latest run."""
    return pipeline_graph(session(request), _env(environment), select)


@router.get("/pipeline")
def pipeline(request: Request, environment: str | None = None,
             select: str | None = None) -> Response:
    def build(caller: Session) -> dict[str, Any]:
        context = pipeline_graph(caller, _env(environment), select)
        query = {k: v for k, v in (("environment", environment), ("select", select)) if v}
        return {**context, "title": "Pipeline", "select": select or "",
                "twin": "/api/pipeline?" + urlencode(query)}

    return _page(request, "pipeline.html", build)


# runs ---------------------------------------------------------------------------------------


@router.get("/runs")
def runs(request: Request, environment: str | None = None, status: str | None = None,
         before: int | None = None) -> Response:
    def build(caller: Session) -> dict[str, Any]:
        listing = runs_api.list_runs(caller, _env(environment), status or None, PAGE, before)
        query = {k: v for k, v in (("environment", environment), ("status", status)) if v}
        following = listing["next"] and listing["next"].replace("/api/runs?", "/runs?", 1)
        return {"title": "Runs", "runs": listing["runs"], "next": following,
                "environment": environment or "", "status": status or "",
                "statuses": runs_api.STATUSES,
                "environments": [e["name"] for e in caller.env_list()],
                "twin": "/api/runs?" + urlencode(query)}

    return _page(request, "runs.html", build)


def run_context(caller: Session, run_id: int) -> dict[str, Any]:
    """A run's details, its steps on a time line and the check results it recorded."""
    details = caller.run_details(run_id).to_dict()
    starts = {r["step"]: r["started_at"]
              for r in caller.project.store.step_runs(details["id"])}
    origin = min((v for v in starts.values() if v), default=None)
    span = max((((starts.get(st["name"]) or origin or 0.0) - (origin or 0.0))
                + (st["seconds"] or 0.0) for st in details["steps"]), default=0.0) or 1.0
    for st in details["steps"]:
        offset = (starts.get(st["name"]) or origin or 0.0) - (origin or 0.0)
        st["left"] = round(100 * offset / span, 2)
        st["width"] = max(round(100 * (st["seconds"] or 0.0) / span, 2), 0.3)
    results = runs_api.run_checks(caller, details["id"])["checks"]
    for r in results:
        r["sample_rows"] = _sample(r.get("sample"))
    return {"run": details, "checks": results, "span": round(span, 2)}


def _sample(value: Any) -> list[dict[str, Any]]:
    """The failing rows a check kept (stored as JSON text or a list)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


@router.get("/runs/{run_ref}")
def run_page(request: Request, run_ref: str) -> Response:
    def build(caller: Session) -> dict[str, Any]:
        context = run_context(caller, caller.run_details(checked(run_ref, "run")).id)
        rid = context["run"]["id"]
        return {**context, "title": f"Run {rid}", "twin": f"/api/runs/{rid}"}

    return _page(request, "run.html", build)


@router.get("/runs/{run_id}/live")
def run_live(request: Request, run_id: int) -> Response:
    """The part of the run page that changes while it runs (htmx polls it)."""
    return _page(request, "run_live.html", lambda caller: run_context(caller, run_id))


def _start(request: Request) -> Callable[[Session, dict[str, str]], dict[str, Any]]:
    def build(caller: Session, form: dict[str, str]) -> dict[str, Any]:
        body = RunRequest(environment=form.get("environment") or None,
                          selection=form.get("selection", "").split())
        started = runs_api.start_run(caller, request, body)
        return {"redirect": f"/runs/{started['id']}", "started": started}
    return build


@router.post("/runs")
async def start_run(request: Request) -> Response:
    return await _act(request, "started.html", _start(request))


@router.post("/runs/{run_id}/cancel")
async def cancel_run(request: Request, run_id: int) -> Response:
    def build(caller: Session, _form: dict[str, str]) -> dict[str, Any]:
        runs_api.cancel_run(caller, str(run_id))
        return run_context(caller, run_id)

    return await _act(request, "run_live.html", build)


# tables and checks --------------------------------------------------------------------------


@router.get("/search")
def search(request: Request, q: str = "", environment: str | None = None) -> Response:
    """The catalog's search page (the header's search box)."""
    return _page(request, "search.html",
                 lambda caller: catalog_ui.search_context(caller, q, environment))


@router.get("/tables/{table}")
def table(request: Request, table: str, environment: str | None = None) -> Response:
    def build(caller: Session) -> dict[str, Any]:
        env = _env(environment)
        page = tables_api.table_page(caller, request, table, env, rows=10, profile=True)
        for column in page.get("profile", {}).get("columns", {}).values():
            column["bars"] = bars(column.get("top_values") or [])
        history = row_history(caller.project.store,
                              env or caller.project.config.default_environment,
                              [page["table"]], 500).get(page["table"], [])
        checks = [c for c in caller.checks_list() if c["table"] == page["table"]]
        query = urlencode({"environment": env} if env else {})
        return {"title": page["table"], "t": page, "declared": checks, "query": query,
                **catalog_ui.table_catalog(caller, page["table"], env),
                "box_w": catalog_ui.BOX_W, "row_h": catalog_ui.ROW_H,
                "history": {"runs": [h[0] for h in history], "at": [h[1] for h in history],
                            "rows": [h[2] for h in history]},
                "twin": f"/api/tables/{page['table']}" + (f"?{query}" if query else "")}

    return _page(request, "table.html", build)


@router.get("/checks")
def checks(request: Request, page: int = Query(1, ge=1)) -> Response:
    def build(caller: Session) -> dict[str, Any]:
        every = checks_api.list_checks(caller)["checks"]
        paging = _pages(len(every), page)
        start = (paging["page"] - 1) * PAGE
        return {"title": "Checks", "checks": every[start:start + PAGE], "paging": paging,
                "query": "", "twin": "/api/checks"}

    return _page(request, "checks.html", build)


def check_context(caller: Session, name: str, environment: str | None) -> dict[str, Any]:
    """A check's history as chart series: metric, SPC mean and limits, incidents."""
    history = checks_api.check_history(caller, name, environment, 500)["results"]
    series: dict[str, list[Any]] = {k: [] for k in
                                    ("x", "metric", "mean", "lower", "upper", "incident")}
    for i, r in enumerate(history):
        spc = r.get("spc") or {}
        series["x"].append(i + 1)
        series["metric"].append(r["metric"])
        for k in ("mean", "lower", "upper"):
            series[k].append(spc.get(k) if spc.get("judged") else None)
        series["incident"].append(r["metric"] if r["incident"] else None)
    declared = next((c for c in caller.checks_list() if c["name"] == name), None)
    return {"name": name, "results": list(reversed(history)), "series": series,
            "declared": declared, "environment": environment or ""}


@router.get("/checks/{name}")
def check(request: Request, name: str, environment: str | None = None) -> Response:
    def build(caller: Session) -> dict[str, Any]:
        context = check_context(caller, checked(name, "check"), _env(environment))
        query = urlencode({"environment": environment} if environment else {})
        return {**context, "title": name,
                "twin": f"/api/checks/{name}/history" + (f"?{query}" if query else "")}

    return _page(request, "check.html", build)


@router.post("/checks/{name}/ack")
async def ack(request: Request, name: str) -> Response:
    def build(caller: Session, form: dict[str, str]) -> dict[str, Any]:
        result = int(form["result_id"]) if form.get("result_id", "").isdigit() else None
        row = checks_api.acknowledge(caller, name, Ack(result_id=result,
                                                       note=form.get("note", "")))
        return {"acked": row}

    return await _act(request, "acked.html", build)


# environments -------------------------------------------------------------------------------


@router.get("/environments")
def environments(request: Request, a: str | None = None, b: str | None = None) -> Response:
    def build(caller: Session) -> dict[str, Any]:
        envs = environments_api.list_environments(caller)["environments"]
        diff = environments_api.environment_diff(caller, _env(a) or "", _env(b) or "",
                                                 data=True) if a and b else None
        twin = f"/api/environments/{a}/diff/{b}" if diff else "/api/environments"
        return {"title": "Environments", "environments": envs, "a": a or "", "b": b or "",
                "diff": diff, "twin": twin}

    return _page(request, "environments.html", build)


@router.post("/environments/{name}/promote")
async def promote(request: Request, name: str) -> Response:
    def build(caller: Session, form: dict[str, str]) -> dict[str, Any]:
        dry = form.get("dry_run", "true") != "false"
        body = Promote(target=form.get("target") or "prod", dry_run=dry)
        return {"promotion": environments_api.promote(caller, name, body)}

    return await _act(request, "promotion.html", build)


# analytics ----------------------------------------------------------------------------------


def _daily(rows: Sequence[dict[str, Any]], key: str, names: Sequence[str],
           window: dict[str, Any]) -> dict[str, Any]:
    """Rows of one day each as chart series over the report's window: x in seconds since
    the epoch."""
    from datetime import UTC, date, datetime

    x = [datetime.combine(date.fromisoformat(r[key]), datetime.min.time(), UTC).timestamp()
         for r in rows]
    return {"x": x, "series": [{"label": n, "values": [r[n] for r in rows]} for n in names],
            "from": datetime.fromisoformat(window["since"]).timestamp(),
            "to": datetime.fromisoformat(window["until"]).timestamp()}


@api.get("/report")
def report_json(request: Request, since: str | None = Query(None, description="30d, 12h, 2w "
                                                                  "or an ISO date"),
                environment: str | None = None) -> dict[str, Any]:
    """DataOps analytics (``andon report --format json``): runs and failure rates per
    pipeline, step and source, checks per day, coverage, promotions, lead time,
    change-failure rate, time to restore, SLA adherence."""
    return session(request).report(since, _env(environment)).to_dict()


@router.get("/analytics")
def analytics(request: Request, since: str | None = None,
              environment: str | None = None) -> Response:
    def build(caller: Session) -> dict[str, Any]:
        figures = caller.report(since or None, _env(environment)).to_dict()
        worst = sorted(figures["steps"], key=lambda s: (-s["failed"], -s["runs"], s["step"]))
        query = {k: v for k, v in (("since", since), ("environment", environment)) if v}
        return {"title": "Analytics", "r": figures, "steps": worst[:PAGE],
                "since": since or "", "environment": environment or "",
                "environments": [e["name"] for e in caller.env_list()],
                "runs_chart": _daily(figures["runs_per_day"], "day", ("runs", "failed"),
                                     figures["window"]),
                "checks_chart": _daily(figures["checks_per_day"], "day",
                                       ("passed", "failed", "errored"), figures["window"]),
                "twin": "/api/report" + (f"?{urlencode(query)}" if query else "")}

    return _page(request, "analytics.html", build)


__all__ = ["mount_ui", "pipeline_graph", "router"]
