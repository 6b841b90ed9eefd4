"""Who a request acts as: the user and role of its API token (``Authorization: Bearer``, or
the UI's session cookie, which stands for a token), or, on a loopback address while no users
are configured, the local user (an admin, as in the CLI). Anything else is refused with 401
before an endpoint runs.

Who a token is and whether users exist are remembered (``andon.server.callers``): on a SQLite
store while nothing was committed to it since (a token revoked, or the first user added,
anywhere, counts from the next request); on PostgreSQL for a second at most (forgotten at
once by a change made through this server; while no users exist it is asked every time, so
the first user added closes the open door at once)."""

from __future__ import annotations

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from andon.access import AccessDenied, NotAuthenticated
from andon.server.recent import Uncached
from andon.server.signin import AGAIN, token_hash_of
from andon.server.state import ServerState, state_of
from andon.server.templating import COOKIE
from andon.service import Session
from andon.store.tokens import digest

HOW = ("send the header 'Authorization: Bearer TOKEN' (in a browser: sign in at /signin); "
       "an admin creates a token with andon tokens create NAME --role ROLE")
_READS = ("GET", "HEAD", "OPTIONS")


def session(request: Request, *, io: bool = True) -> Session:
    """The ``andon.Session`` of the request's caller. With ``io=False`` it raises
    ``Uncached`` rather than read the store (for the event loop)."""
    state = state_of(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("malformed Authorization header", hint=HOW)
        return _of_token(state, digest(token.strip()), io=io, hint=HOW)
    cookie = request.cookies.get(COOKIE)
    if cookie is not None:
        if request.method not in _READS and request.headers.get("hx-request") != "true":
            # a custom header cannot be sent by another site without the server's consent
            raise AccessDenied("a UI session acts only through the UI's own pages "
                               "(header HX-Request)",
                               hint="use the page's button, or the JSON API with a token")
        return _of_token(state, token_hash_of(state, cookie), io=io, hint=AGAIN)
    if _local_admin(state, io=io):
        return Session(state.project, state.callers.local_user)
    where = ("users are configured" if state.loopback
             else f"the server listens on {state.host}, not only on this machine")
    raise NotAuthenticated(f"this request needs an API token: {where}", hint=HOW)


def _local_admin(state: ServerState, *, io: bool) -> bool:
    """``state.local_admin()``, as the store is now: adding the first user closes the open
    door for the next request."""
    return state.loopback and not state.callers.users_exist(io=io)


def _of_token(state: ServerState, token_hash: str, *, io: bool, hint: str) -> Session:
    found = state.callers.token(token_hash, io=io)
    if found is None:
        raise NotAuthenticated("unknown API token (revoked, or never created)",
                               hint="check the token, or ask an admin for one; " + hint)
    if found.expired():
        raise NotAuthenticated(f"API token {found.name!r} expired at "
                               f"{found.expires_at:%Y-%m-%d %H:%M} UTC",
                               hint="ask an admin for a new one: andon tokens create")
    return Session(state.project, found.user, role=found.role)


async def caller(request: Request) -> Session:
    """``session`` as a dependency of async endpoints: answered on the event loop when
    the store need not be read, else in the thread pool."""
    try:
        return session(request, io=False)
    except Uncached:
        return await run_in_threadpool(session, request)


__all__ = ["HOW", "caller", "session"]
