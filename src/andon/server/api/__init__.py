"""The JSON API, one module per concept; each endpoint calls one verb of ``andon.Session``.

Reads use the project the server loaded (a file with a problem is left out, as in the CLI's
reading commands); verbs that build or move something load the project afresh, strictly, so
they see the files as they are now."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends

from andon.server.auth import caller
from andon.service import Session

Caller = Annotated[Session, Depends(caller)]  # async: no thread hop when cached


def load(caller: Session, *, params: Mapping[str, Any] | None = None,
         environment: str | None = None, param_sets: Sequence[str] = ()) -> Session:
    """The caller's session on the project loaded now (close its ``project`` when done)."""
    from andon.project import Project

    project = Project.load(caller.project.root, params=dict(params or {}),
                           environment=environment, param_sets=tuple(param_sets))
    return Session(project, caller.user, role=caller.role)


@contextmanager
def fresh(caller: Session) -> Iterator[Session]:
    """``load`` for the length of a ``with`` block."""
    current = load(caller)
    try:
        yield current
    finally:
        current.project.close()
