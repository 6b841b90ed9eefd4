"""The catalog: a table's categories and column tags, and search (``andon catalog``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from andon.server.api import Caller
from andon.server.names import checked

router = APIRouter(tags=["catalog"])


@router.get("/catalog/search")
def search(caller: Caller, q: str = Query(..., min_length=1, max_length=500,
                                          description="words to find (each also a prefix)"),
           environment: str | None = None, limit: int = Query(20, ge=1, le=200)
           ) -> dict[str, Any]:
    """Tables and columns matching every word: names, descriptions, tags, owners, layer,
    alignment; best first."""
    env = checked(environment, "environment") if environment else None
    return {"query": q, "hits": caller.catalog_search(q, env, limit)}


@router.get("/catalog/tables/{table}")
def table(caller: Caller, table: str, environment: str | None = None) -> dict[str, Any]:
    """Layer, alignment, owner, steward; columns with their tags and where they come from."""
    env = checked(environment, "environment") if environment else None
    return caller.catalog_show(checked(table, "table"), env)
