"""The one JSON error shape of the API: ``AndonError.to_dict()`` whatever raised it, with
the HTTP status of its kind (invalid 400, not_found 404, conflict 409, forbidden 403, failed
500; a missing or bad token 401, a malformed body 422)."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from andon.access import NotAuthenticated
from andon.errors import AndonError, Kind
from andon.server.jsonable import JSON
from andon.server.names import InvalidName

log = logging.getLogger("andon.server")

STATUS: dict[Kind, int] = {"invalid": 400, "not_found": 404, "conflict": 409,
                           "forbidden": 403, "failed": 500}
_KIND_OF_STATUS: dict[int, Kind] = {400: "invalid", 404: "not_found", 405: "invalid",
                                    409: "conflict", 403: "forbidden"}
def error_response(e: AndonError) -> Response:
    if isinstance(e, NotAuthenticated):
        return JSON(e.to_dict(), status_code=401, headers={"WWW-Authenticate": "Bearer"})
    status = 400 if isinstance(e, InvalidName) else STATUS.get(e.kind, 400)
    return JSON(e.to_dict(), status_code=status)


async def andon_error(_request: Request, e: Exception) -> Response:
    assert isinstance(e, AndonError)
    return error_response(e)


async def malformed(_request: Request, e: Exception) -> Response:
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


async def unexpected(_request: Request, e: Exception) -> Response:
    log.exception("unexpected error in the API", exc_info=e)
    error = AndonError(f"internal error: {type(e).__name__}: {e}", kind="failed",
                       hint="this is a bug in andon; the server log has the traceback")
    return JSON(error.to_dict(), status_code=500)


__all__ = ["STATUS", "andon_error", "error_response", "http_error", "malformed", "unexpected"]
