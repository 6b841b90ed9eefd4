"""The FastAPI application: the API's routers, the web UI, the error handlers
(``andon.server.failures``) and the state every request shares (``andon.server.state``)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from andon.errors import AndonError
from andon.project import Project
from andon.server.failures import (
    andon_error,
    error_response,
    http_error,
    malformed,
    unexpected,
)
from andon.server.jsonable import JSON
from andon.server.state import READS, ServerState, state_of


def build(project: Project, *, host: str) -> FastAPI:
    from andon.server.api import (
        catalog,
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
    app.add_exception_handler(AndonError, andon_error)
    app.add_exception_handler(RequestValidationError, malformed)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
    for module in (tables, runs, environments, checks, queries, people, features, models,
                   catalog):
        app.include_router(module.router, prefix="/api")
    from andon.server.ui import mount_ui

    mount_ui(app)  # the web UI: its pages and vendored assets
    app.add_middleware(ForgetOnChange, state=app.state.andon)
    from andon.server.hot import HotPaths

    app.add_middleware(HotPaths)  # outermost: feature reads and predictions, direct
    # the published models load in a background thread once the server starts: the imports
    # of scikit-learn and skops and the model files never delay it listening
    app.router.on_startup.append(lambda: models.preload(app))
    return app


class ForgetOnChange:
    """Forget the recent answers when a request that may change something (any method but
    GET, HEAD, OPTIONS) answers, before its client can ask again."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS or _predicts(scope):
            await self.app(scope, receive, send)
            return

        async def forgetting(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.state.recent.clear()
            await send(message)

        await self.app(scope, receive, forgetting)


def _predicts(scope: Scope) -> bool:
    """A prediction (POST …/models/NAME/predict) or an online feature read (POST
    /api/features/online) reads and changes nothing stored."""
    path = str(scope.get("path", ""))
    return path == "/api/features/online" or (path.startswith("/api/models/")
                                              and path.endswith("/predict"))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("andon")
    except PackageNotFoundError:
        return "0"


__all__ = ["ServerState", "build", "error_response", "http_error", "state_of"]
