"""The feature store over HTTP: the project's features (``andon features list``) and online
values of entities (``andon features get``), read from a store kept open between requests."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from andon.server.api import Caller
from andon.server.jsonable import JSON

if TYPE_CHECKING:
    from andon.features import Online

router = APIRouter(tags=["features"])
_readers: dict[tuple[str, str, float], Online] = {}
_lock = threading.Lock()


class OnlineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    features: str | list[str] = Field(description="a feature service, or feature references")
    entities: list[dict[str, Any]] = Field(description="join keys of each entity",
                                           min_length=1, max_length=10_000)
    environment: str | None = None


def _key(root: Path, environment: str | None) -> tuple[str, str, float]:
    from andon.features.catalog import FOLDER

    folder = root / FOLDER
    stamp = max((p.stat().st_mtime for p in folder.iterdir()), default=0.0) \
        if folder.is_dir() else 0.0
    return (str(root), environment or "", stamp)


def _reader(root: Path, environment: str | None) -> Online:
    """One open reader per project, environment and version of the definitions (an edit of
    ``features/`` is seen by the next request)."""
    from andon.features import Online

    key = _key(root, environment)
    with _lock:
        reader = _readers.get(key)
        if reader is None:
            for old in [k for k in _readers if k[:2] == key[:2]]:
                _readers.pop(old).close()
            reader = _readers[key] = Online(root, environment)
        return reader


@router.get("/features")
def list_features(caller: Caller, search: str | None = None) -> dict[str, Any]:
    """Features, on-demand features and feature services, with owner and description."""
    from andon import features

    return {"features": features.list_features(caller.project, search)}


@router.post("/features/online", response_model=None)
async def online(caller: Caller, body: OnlineRequest) -> JSON:
    """Online values of entities across views in one call: per entity its features (null
    when missing or past the view's TTL) and each view's status. A read of the embedded
    SQLite store runs on the event loop (a fraction of a millisecond); a read of a remote
    store (Redis) runs on a worker thread, so a slow network never stalls other requests."""
    root = caller.project.root
    reader = _readers.get(_key(root, body.environment))
    if reader is None:  # opening one loads definitions and connects: off the event loop
        reader = await run_in_threadpool(_reader, root, body.environment)
    if reader.local:
        results = reader.get(body.features, body.entities)
    else:
        results = await run_in_threadpool(reader.get, body.features, body.entities)
    return JSON({"results": results})  # already JSON-ready: no generic encoding pass
