"""Models: the registry (``andon models …``) and online prediction.

``POST /api/models/{name}/predict`` validates the rows against the model's signature (422
naming the field) and answers with the version that predicted. The model is the one the
environment publishes (default), or ``?version=`` / ``?alias=``; loaded models are kept
per artifact, so a request costs one small store read and the prediction."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from andon.errors import AndonError
from andon.server.api import Caller
from andon.server.jsonable import JSON
from andon.server.names import checked

router = APIRouter(tags=["models"])


class PredictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Any]]


class AliasBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None
    note: str | None = None


_LOCK = threading.Lock()


def _cache(request: Request) -> dict[tuple[str, str], Any]:
    state = request.app.state
    with _LOCK:
        if not hasattr(state, "andon_models"):
            state.andon_models = {}
    cache: dict[tuple[str, str], Any] = state.andon_models
    return cache


@router.get("/models")
def list_models(caller: Caller, environment: str | None = None) -> dict[str, Any]:
    """The models the environment publishes: version, aliases, metrics."""
    env = checked(environment, "environment") if environment else None
    return {"models": caller.models_list(env)}


@router.get("/models/{name}")
def show_model(caller: Caller, name: str, environment: str | None = None,
               version: int | None = None, alias: str | None = None) -> dict[str, Any]:
    """A version with its signature, metrics, lineage, every version and alias history."""
    env = checked(environment, "environment") if environment else None
    return caller.models_show(checked(name, "model"), env, version=version, alias=alias)


@router.get("/models/{name}/diff")
def diff_models(caller: Caller, name: str, a: int, b: int) -> dict[str, Any]:
    """Two versions side by side."""
    return caller.models_diff(checked(name, "model"), a, b)


@router.put("/models/{name}/aliases/{alias}")
def move_alias(caller: Caller, name: str, alias: str, body: AliasBody) -> dict[str, Any]:
    """Point an alias at a version (null: remove it); kept in the alias history."""
    return caller.models_alias(checked(name, "model"), alias, body.version, note=body.note)


@router.post("/models/{name}/predict")
def predict(request: Request, caller: Caller, name: str, body: PredictBody,
            environment: str | None = None, version: int | None = None,
            alias: str | None = None) -> Any:
    """Predictions for ``rows`` (objects of the model's input fields), with its version."""
    from andon.models import artifact
    from andon.models.registry import resolve
    from andon.warehouse import Warehouse

    project = caller.project
    env = checked(environment, "environment") if environment else None
    cache = _cache(request)
    key: tuple[str, str] | None = None
    if version is None and alias is None:  # the environment's: fixed for its head commit
        head = project.store.environment(env or project.environment
                                         or project.config.default_environment)
        key = (name, f"commit:{head['commit_id']}") if head else None
    found = cache.get(key) if key else None
    if found is None:
        found = resolve(project, checked(name, "model"), environment=env, version=version,
                        alias=alias)
        if key:
            cache[key] = found
    model = cache.get((name, found.fingerprint))
    if model is None:
        warehouse = Warehouse(project.warehouse)
        manifest = warehouse.read_manifest(name, found.fingerprint)
        if manifest is None:
            raise AndonError(f"the artifact of model {name!r} version {found.version} is no "
                             "longer in the warehouse", kind="not_found",
                             hint=f"rebuild it: andon run {name}")
        model = artifact.load(warehouse, manifest, found.version)
        cache[(name, found.fingerprint)] = model
    try:
        predictions = model.predict_rows(body.rows)
    except artifact.RequestInvalid as e:
        return JSON({"error": {**e.to_dict()["error"], "field": e.field}}, status_code=422)
    return {"model": name, "version": found.version, "fingerprint": found.fingerprint,
            "predictions": predictions}
