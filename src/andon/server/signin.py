"""Signing in to the web UI: a browser sends no ``Authorization`` header, so a user pastes
an API token once and the server answers with a session cookie. The cookie holds the token's
sha256 (never the token), signed with the server's key and dated; it is HttpOnly,
SameSite=Strict, Secure over https, and ends with the session or the token, whichever
comes first. Revoking the token ends every session signed in with it.

The key is ``ANDON_SESSION_KEY`` or ``.andon/session.key`` (created with mode 0600 on first
use); servers sharing a store behind one address share it through the variable."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.responses import RedirectResponse, Response

from andon.access import NotAuthenticated
from andon.errors import AndonError
from andon.server.state import ServerState, state_of
from andon.server.templating import COOKIE, templates
from andon.store.tokens import TokenRecord, digest

KEY_ENV = "ANDON_SESSION_KEY"
SESSION_SECONDS = 12 * 3600  # a sign-in lasts a working day at most
SALT = "andon.ui.session"
AGAIN = "sign in again with an API token at /signin"

router = APIRouter(include_in_schema=False)


# the cookie ---------------------------------------------------------------------------------


def key_file(root: Path) -> Path:
    return root / ".andon" / "session.key"


@lru_cache(maxsize=8)
def _serializer(root: Path, from_env: str | None) -> URLSafeTimedSerializer:
    if from_env:
        return URLSafeTimedSerializer(from_env, salt=SALT)
    path = key_file(root)
    if not path.exists():
        _create_key(path)
    return URLSafeTimedSerializer(path.read_text().strip(), salt=SALT)


def serializer(state: ServerState) -> URLSafeTimedSerializer:
    """The signer of the server's session cookies (its key is created on first use)."""
    return _serializer(state.project.root, os.environ.get(KEY_ENV))


def _create_key(path: Path) -> None:
    """Write a new key with mode 0600, atomically: a server creating it at the same time
    either wins or reads the winner's key, never a half-written or a second key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another server created it first
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def token_hash_of(state: ServerState, cookie: str) -> str:
    """The token hash a session cookie holds; ``NotAuthenticated`` when the cookie is
    forged, from another server's key, or older than a session lasts."""
    try:
        value = serializer(state).loads(cookie, max_age=SESSION_SECONDS)
    except SignatureExpired:
        raise NotAuthenticated("your UI session expired", hint=AGAIN) from None
    except BadSignature:
        raise NotAuthenticated("the UI session cookie is not valid on this server",
                               hint=AGAIN) from None
    if not isinstance(value, dict) or not isinstance(value.get("t"), str):
        raise NotAuthenticated("the UI session cookie is not valid on this server", hint=AGAIN)
    return str(value["t"])


def start_session(response: Response, request: Request, token_hash: str,
                  found: TokenRecord) -> None:
    """Set the session cookie of the (valid) token ``found`` on ``response``."""
    seconds = SESSION_SECONDS
    if found.expires_at is not None:
        seconds = min(seconds, int(found.expires_at.timestamp() - time.time()))
    value = serializer(state_of(request)).dumps({"t": token_hash})
    response.set_cookie(COOKIE, value, max_age=seconds, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def end_session(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


# the pages ----------------------------------------------------------------------------------


def _next(value: str | None) -> str:
    """Where to go after signing in: a path of this server, never another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def signin_page(request: Request, *, error: AndonError | None = None, status: int = 200,
                next_url: str | None = None) -> Response:
    """The sign-in form (with ``error`` above it when there is one)."""
    context: dict[str, Any] = {"title": "Sign in", "next": _next(next_url),
                               "error": error.fields() if error else None,
                               "loopback": state_of(request).loopback}
    return templates.TemplateResponse(request, "signin.html", context, status_code=status)


@router.get("/signin")
def signin_form(request: Request, next: str | None = None) -> Response:
    return signin_page(request, next_url=next)


def _same_origin(request: Request) -> bool:
    """A browser names the site a form was sent from: refuse forms of other sites."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or one that does not say: no cookie is at stake
        return True
    return origin == f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
    next_url = form.get("next")
    if not _same_origin(request):
        refused = AndonError("sign-in refused: the form was sent from another site",
                             kind="forbidden", hint="sign in from this server's /signin page")
        return signin_page(request, error=refused, status=403, next_url=next_url)
    token = form.get("token", "").strip()
    if not token:
        missing = NotAuthenticated("paste an API token to sign in",
                                   hint="an admin creates one: andon tokens create NAME "
                                        "--role ROLE")
        return signin_page(request, error=missing, status=401, next_url=next_url)
    store = state_of(request).project.store
    found = await run_in_threadpool(store.tokens.find, token)
    if found is None or found.expired():
        why = "unknown API token" if found is None else f"API token {found.name!r} expired"
        refused = NotAuthenticated(f"sign-in refused: {why}",
                                   hint="check the token, or ask an admin for one: andon "
                                        "tokens create NAME --role ROLE")
        return signin_page(request, error=refused, status=401, next_url=next_url)
    response = RedirectResponse(_next(next_url), status_code=303)
    start_session(response, request, digest(token), found)
    return response


@router.post("/signout")
def signout(request: Request) -> Response:
    response = RedirectResponse("/signin", status_code=303)
    end_session(response, request)
    return response


__all__ = ["KEY_ENV", "SESSION_SECONDS", "router", "signin_page", "token_hash_of"]
