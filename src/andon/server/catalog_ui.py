"""The catalog in the web UI: the search page (the header's search box leads there) and
what a table's page shows of the catalog (layer, alignment, steward, column lineage)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from andon.server.lineage_view import BOX_W, ROW_H, view
from andon.service import Session


def search_context(caller: Session, q: str, environment: str | None) -> dict[str, Any]:
    """The search page (``/search?q=``): hits best first, with its JSON twin."""
    hits = caller.catalog_search(q, environment or None, 50) if q.strip() else []
    query = urlencode({"q": q, **({"environment": environment} if environment else {})})
    return {"title": f"Search: {q}" if q else "Search", "q": q, "hits": hits,
            "twin": f"/api/catalog/search?{query}" if q.strip() else None}


def table_catalog(caller: Session, table: str, environment: str | None) -> dict[str, Any]:
    """The catalog's part of a table page: its description and its column lineage view."""
    from andon import catalog

    cat = catalog.load(caller.project, caller._env(environment))
    info = catalog.describe(caller.project, table, catalog=cat)
    lin = cat.graph.steps.get(table)
    return {"info": info, "lineage": {
        "table": table, "view": view(cat.graph, table),
        "note": lin.note if lin is not None else "",
        "masked": {name: sorted(cat.masked(name)) for name in cat.tags}}}


__all__ = ["BOX_W", "ROW_H", "search_context", "table_catalog"]
