"""Who a request acts as: the user and role of its API token (``Authorization: Bearer``),
or, on a loopback address while no users are configured, the local user (an admin, as in
the CLI). Anything else is refused with 401 before an endpoint runs."""

from __future__ import annotations

from fastapi import Request

from andon.access import NotAuthenticated
from andon.server.app import state_of
from andon.service import Session, local_user

HOW = ("send the header 'Authorization: Bearer TOKEN'; an admin creates a token with "
       "andon tokens create NAME --role ROLE")


def session(request: Request) -> Session:
    """The ``andon.Session`` of the request's caller (a FastAPI dependency)."""
    state = state_of(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticated("malformed Authorization header", hint=HOW)
        return Session.for_token(state.project, token.strip())
    if state.local_admin():
        return Session(state.project, local_user())
    where = ("users are configured" if state.loopback
             else f"the server listens on {state.host}, not only on this machine")
    raise NotAuthenticated(f"this request needs an API token: {where}", hint=HOW)
