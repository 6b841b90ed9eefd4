"""The UI's Jinja2 templates and the filters and globals its pages use; every page sees
who is signed in (``signed_in``: the request carries the UI's session cookie)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.requests import Request

from andon.server import graph
from andon.server.jsonable import dumps

COOKIE = "andon_session"  # the UI's session (andon.server.signin)


def _json_script(value: Any) -> Markup:
    """``value`` as JSON safe inside a ``<script type="application/json">`` element."""
    text = dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # escaped above for the script context


def _session_of(request: Request) -> dict[str, Any]:
    return {"signed_in": COOKIE in request.cookies}


templates = Jinja2Templates(directory=Path(__file__).parent / "templates",
                            context_processors=[_session_of])
templates.env.filters["json_script"] = _json_script
templates.env.globals["node_w"] = graph.NODE_W
templates.env.globals["node_h"] = graph.NODE_H

__all__ = ["COOKIE", "templates"]
