"""Environments: list, create, log, diff, promote, reset, delete (``andon env …`` and
``andon promote``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from andon.server.api import Caller, fresh
from andon.server.bodies import EnvCreate, Promote, Reset
from andon.server.names import checked

router = APIRouter(tags=["environments"])


def _name(value: str) -> str:
    return checked(value, "environment")


@router.get("/environments")
def list_environments(caller: Caller) -> dict[str, Any]:
    """Environments with their head commit, base, owner, protection and last run."""
    return {"environments": caller.env_list()}


@router.post("/environments", status_code=201)
def create_environment(caller: Caller, body: EnvCreate) -> dict[str, Any]:
    """A new environment pointing where ``source`` (default: prod) points: O(1)."""
    source = body.source
    if source is not None:  # ENV, ENV@TIME or ENV@COMMIT
        _name(source.partition("@")[0])
    with fresh(caller) as current:
        return current.env_create(_name(body.name), source, empty=body.empty)


@router.get("/environments/{name}/log")
def environment_log(caller: Caller, name: str) -> dict[str, Any]:
    """Every move of the environment: when, who, why, from → to."""
    return {"environment": name, "log": caller.env_log(_name(name))}


@router.get("/environments/{a}/diff/{b}")
def environment_diff(caller: Caller, a: str, b: str, data: bool = True,
                     key: Annotated[list[str] | None, Query(
                         description="compare rows by these columns")] = None
                     ) -> dict[str, Any]:
    """What differs between two environments, step by step, down to rows."""
    return caller.env_diff(_name(a), _name(b), data=data, key=key or ())


@router.post("/environments/{name}/promote")
def promote(caller: Caller, name: str, body: Promote) -> dict[str, Any]:
    """Move ``target`` (default prod) to its head plus this environment's changes once
    every check passes on that candidate; refused (409) when one fails or steps conflict."""
    with fresh(caller) as current:
        return current.promote(_name(name), _name(body.target), dry_run=body.dry_run).to_dict()


@router.post("/environments/{name}/reset")
def reset(caller: Caller, name: str, body: Reset) -> dict[str, Any]:
    """Point the environment at an earlier commit or time (a rollback, in its log)."""
    with fresh(caller) as current:
        return {"environment": name, "commit": current.env_reset(_name(name), body.to)}


@router.delete("/environments/{name}")
def delete_environment(caller: Caller, name: str) -> dict[str, Any]:
    """Delete an unprotected environment (its artifacts stay until gc)."""
    with fresh(caller) as current:
        current.env_delete(_name(name))
    return {"deleted": name}
