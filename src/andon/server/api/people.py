"""Users, API tokens and secrets (names only: a secret's value never leaves the store)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from andon.server.api import Caller
from andon.server.bodies import TokenCreate
from andon.server.names import checked

router = APIRouter(tags=["people"])


@router.get("/me")
def me(caller: Caller) -> dict[str, Any]:
    """Who the request acts as, and with which role."""
    return {"user": caller.user, "role": caller.role}


@router.get("/users")
def list_users(caller: Caller) -> dict[str, Any]:
    return {"users": caller.users_list()}


@router.get("/tokens")
def list_tokens(caller: Caller) -> dict[str, Any]:
    """Name, user, role, creation, expiry and last use of each token (never the token)."""
    return {"tokens": caller.tokens_list()}


@router.post("/tokens", status_code=201)
def create_token(caller: Caller, body: TokenCreate) -> dict[str, Any]:
    """A new token (admins only). The answer holds it: the only time it is shown."""
    token = caller.tokens_create(body.name, body.role, user=body.user, expires=body.expires)
    return {"name": body.name, "user": body.user or body.name, "role": body.role,
            "token": token}


@router.delete("/tokens/{name}")
def revoke_token(caller: Caller, name: str) -> dict[str, Any]:
    caller.tokens_revoke(checked(name, "token"))
    return {"revoked": name}


@router.get("/secrets")
def list_secrets(caller: Caller) -> dict[str, Any]:
    """Secret names, their environment, when and by whom they were set."""
    return {"secrets": [{k: v for k, v in s.items() if k != "ciphertext"}
                        for s in caller.secrets_list()]}
