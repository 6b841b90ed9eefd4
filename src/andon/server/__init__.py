"""The andon server: an HTTP API (FastAPI) over the service layer, for the web UI, the
scheduler and other programs. ``andon server`` serves it; it needs ``andon[server]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from andon.errors import AndonError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from andon.project import Project

INSTALL_HINT = "install the server extra: pip install 'andon[server]'"


def require_extra() -> None:
    """Raise a clear error when FastAPI or uvicorn is missing (they are optional)."""
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "jinja2", "itsdangerous")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise AndonError(f"the andon server needs {' and '.join(missing)}, not installed",
                         hint=INSTALL_HINT)


def create_app(project: Project, *, host: str = "127.0.0.1") -> FastAPI:
    """The HTTP API of ``project`` as served on ``host`` (on a loopback address with no
    users configured, requests without a token act as the local user, an admin)."""
    require_extra()
    from andon.server.app import build

    return build(project, host=host)


__all__ = ["INSTALL_HINT", "create_app", "require_extra"]
