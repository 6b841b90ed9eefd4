"""The two endpoints an application calls once per decision: online feature values (``POST
/api/features/online``) and predictions (``POST /api/models/{name}/predict``), answered by
their endpoint functions without FastAPI's route matching and dependency solving, which
cost more than the feature read or the prediction.

Only a request FastAPI would take as it is goes this way: a JSON body its pydantic model
accepts, plain query values. Anything else (a body to refuse, a query value to convert, a
mounted ``root_path``) goes on to FastAPI with its body replayed, which answers it as every
other request: same validation, same error shape, and the OpenAPI description is FastAPI's
routes' as before."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from andon.errors import AndonError
from andon.server.api import features, models
from andon.server.auth import caller
from andon.server.failures import error_response

FEATURES = "/api/features/online"
MODELS, PREDICT = "/api/models/", "/predict"
_VERSION = re.compile(r"[0-9]{1,18}")  # what pydantic reads as that int, and nothing else
_ANY = TypeAdapter(Any)  # how FastAPI writes a non-Response result of ``-> Any``

Answer = Callable[[Request, Any], Awaitable[Response | None]]


class HotPaths:
    """ASGI middleware: the hot endpoints' valid requests answered directly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = _route(scope)
        if answer is None:
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        if body is None:  # the client left before sending its body
            return
        parsed = _json(scope, body)
        response = None
        if parsed is not None:
            request = Request(scope, _replay(body, receive))
            try:
                response = await answer(request, parsed)
            except AndonError as e:  # as the API's exception handler answers it
                response = error_response(e)
        if response is None:
            await self.app(scope, _replay(body, receive), send)
        else:
            await response(scope, receive, send)


def _route(scope: Scope) -> Answer | None:
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if path == FEATURES:
        return _features
    if path.startswith(MODELS) and path.endswith(PREDICT) and \
            "/" not in path[len(MODELS):-len(PREDICT)] and len(path) > len(MODELS + PREDICT):
        return _predict
    return None


async def _features(request: Request, parsed: Any) -> Response | None:
    try:
        body = features.OnlineRequest.model_validate(parsed)
    except ValidationError:
        return None
    return await features.online(await caller(request), body)


async def _predict(request: Request, parsed: Any) -> Response | None:
    query = request.query_params
    version = query.get("version")
    if version is not None and not _VERSION.fullmatch(version):
        return None
    try:
        body = models.PredictBody.model_validate(parsed)
    except ValidationError:
        return None
    name = str(request.scope["path"])[len(MODELS):-len(PREDICT)]
    result = await models.predict(request, await caller(request), name, body,
                                  environment=query.get("environment"),
                                  version=None if version is None else int(version),
                                  alias=query.get("alias"), shadow=query.get("shadow"))
    if isinstance(result, Response):
        return result
    return Response(_ANY.dump_json(result), media_type="application/json")


async def _body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _json(scope: Scope, body: bytes) -> Any:
    """The body as FastAPI reads a JSON body (None: let FastAPI judge it)."""
    kind = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    if kind.split(b";", 1)[0].strip().lower() != b"application/json":
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` with the body read here given again first."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


__all__ = ["HotPaths"]
