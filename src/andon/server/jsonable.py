"""JSON responses as the CLI writes ``--format json``: datetimes in ISO form, decimals as
numbers, bytes in hex, NaN and infinities as null."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from andon.jsontext import dumps, finite

__all__ = ["JSON", "dumps", "finite"]


class JSON(JSONResponse):
    """The response class of every API endpoint."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()
