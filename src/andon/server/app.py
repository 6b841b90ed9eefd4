"""The FastAPI application: its state, the one JSON error shape, and the API's routers.

Errors are ``AndonError.to_dict()`` whatever raised them: the kinds invalid, not_found,
conflict, forbidden and failed are HTTP 400, 404, 409, 403 and 500; a missing or bad token
is 401 and a malformed body 422, in the same shape."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from andon.access import NotAuthenticated
from andon.errors import AndonError, Kind
from andon.project import Project
from andon.server.cache import ArtifactPages
from andon.server.jsonable import JSON
from andon.server.live import LiveRuns
from andon.server.names import InvalidName
from andon.server.recent import Recent

log = logging.getLogger("andon.server")

STATUS: dict[Kind, int] = {"invalid": 400, "not_found": 404, "conflict": 409,
                           "forbidden": 403, "failed": 500}
_KIND_OF_STATUS: dict[int, Kind] = {400: "invalid", 404: "not_found", 405: "invalid",
                                    409: "conflict", 403: "forbidden"}
LOOPBACK = ("127.0.0.1", "::1", "localhost")
READS = ("GET", "HEAD", "OPTIONS")


class ServerState:
    """What every request shares: the project (read once, tolerant of broken files, as the
    CLI's reading commands), the address served, the runs this process started, and answers
    reused for a second (``recent``: forgotten whenever a request may have changed something)."""

    def __init__(self, project: Project, host: str) -> None:
        self.project = project
        self.host = host
        self.loopback = host in LOOPBACK or host.startswith("127.")
        self.runs = LiveRuns()
        self.pages = ArtifactPages()
        self.recent = Recent()

    def local_admin(self) -> bool:
        """Whether a request without a token acts as the local user: only on a loopback
        address while no users are configured (then, as in the CLI, that user is admin)."""
        return self.loopback and not self.project.store.users.any()


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.andon
    return state


def error_response(e: AndonError) -> Response:
    if isinstance(e, NotAuthenticated):
        return JSON(e.to_dict(), status_code=401, headers={"WWW-Authenticate": "Bearer"})
    status = 400 if isinstance(e, InvalidName) else STATUS.get(e.kind, 400)
    return JSON(e.to_dict(), status_code=status)


async def _andon_error(_request: Request, e: Exception) -> Response:
    assert isinstance(e, AndonError)
    return error_response(e)


async def _malformed(_request: Request, e: Exception) -> Response:
    assert isinstance(e, RequestValidationError)
    problems = []
    for err in e.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    error = AndonError("the request is malformed: " + "; ".join(problems),
                       hint="send a JSON body with the fields described at /openapi.json "
                            "(unknown fields are refused)")
    return JSON(error.to_dict(), status_code=422)


async def http_error(request: Request, e: Exception) -> Response:
    assert isinstance(e, StarletteHTTPException)
    kind = _KIND_OF_STATUS.get(e.status_code, "invalid")
    if e.status_code == 404 and ".." in request.url.path.split("/"):
        refused = InvalidName(f"path traversal refused: {request.url.path}",
                              hint="names in URLs are plain names, never paths")
        return JSON(refused.to_dict(), status_code=400)
    if e.status_code == 404:
        message = f"no such API endpoint: {request.method} {request.url.path}"
        hint = "see the endpoints at /openapi.json"
    elif e.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
        hint = "see the endpoints at /openapi.json"
    else:
        message, hint = str(e.detail), ""
    return JSON(AndonError(message, hint=hint, kind=kind).to_dict(), status_code=e.status_code,
                headers=e.headers)


async def _unexpected(_request: Request, e: Exception) -> Response:
    log.exception("unexpected error in the API", exc_info=e)
    error = AndonError(f"internal error: {type(e).__name__}: {e}", kind="failed",
                       hint="this is a bug in andon; the server log has the traceback")
    return JSON(error.to_dict(), status_code=500)


def build(project: Project, *, host: str) -> FastAPI:
    from andon.server.api import (
        checks,
        environments,
        features,
        models,
        people,
        queries,
        runs,
        tables,
    )

    app = FastAPI(title="andon", version=_version(), default_response_class=JSON,
                  description="The andon HTTP API: the verbs of the CLI, with the same names, "
                              "permissions and errors. Authenticate with "
                              "`Authorization: Bearer TOKEN` (andon tokens create).")
    app.state.andon = ServerState(project, host)
    app.add_exception_handler(AndonError, _andon_error)
    app.add_exception_handler(RequestValidationError, _malformed)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, _unexpected)
    for module in (tables, runs, environments, checks, queries, people, features, models):
        app.include_router(module.router, prefix="/api")
    from andon.server.ui import mount_ui

    mount_ui(app)  # the web UI: its pages and vendored assets
    app.add_middleware(ForgetOnChange, state=app.state.andon)
    return app


class ForgetOnChange:
    """Forget the recent answers when a request that may change something (any method but
    GET, HEAD, OPTIONS) answers, before its client can ask again."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return

        async def forgetting(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.state.recent.clear()
            await send(message)

        await self.app(scope, receive, forgetting)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("andon")
    except PackageNotFoundError:
        return "0"


__all__ = ["ServerState", "build", "error_response", "http_error", "state_of"]
