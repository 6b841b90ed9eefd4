"""Models: the registry (``andon models …``) and online prediction.

``POST /api/models/{name}/predict`` validates the rows against the model's signature (422
naming the field) and answers with the version that predicted. The model is the one the
environment publishes (default), or ``?version=`` / ``?alias=``; loaded models are kept
per artifact, so a request costs one small store read and the prediction."""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from andon.errors import AndonError
from andon.server.api import Caller
from andon.server.jsonable import JSON
from andon.server.names import checked

router = APIRouter(tags=["models"])
log = logging.getLogger("andon.models")


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


def _loaded(request: Request, caller: Caller, name: str, found: Any) -> Any:
    from andon.models import artifact
    from andon.warehouse import Warehouse

    cache = _cache(request)
    model = cache.get((name, found.fingerprint))
    if model is None:
        warehouse = Warehouse(caller.project.warehouse)
        manifest = warehouse.read_manifest(name, found.fingerprint)
        if manifest is None:
            raise AndonError(f"the artifact of model {name!r} version {found.version} is no "
                             "longer in the warehouse", kind="not_found",
                             hint=f"rebuild it: andon run {name}")
        model = artifact.load(warehouse, manifest, found.version)
        cache[(name, found.fingerprint)] = model
    return model


def _shadow(request: Request, caller: Caller, name: str, alias: str, served: int | None,
            rows: list[dict[str, Any]], predictions: list[Any]) -> None:
    """Predict with the version holding ``alias`` too; count and log how often it agrees
    (its predictions are never returned)."""
    from andon.models.registry import resolve

    found = resolve(caller.project, name, alias=alias)
    theirs = _loaded(request, caller, name, found).predict_rows(rows)
    agree = sum(a == b for a, b in zip(predictions, theirs, strict=True))
    cache = _cache(request)
    with _LOCK:
        stats = cache.setdefault((name, f"shadow:{alias}"), {})
        key = f"{served}-vs-{found.version}"
        s = stats.setdefault(key, {"version": served, "shadow_version": found.version,
                                   "requests": 0, "rows": 0, "agreed": 0})
        s["requests"] += 1
        s["rows"] += len(rows)
        s["agreed"] += agree
    log.info("shadow %s: version %s vs %s (%s) agreed on %d of %d rows", name, served,
             found.version, alias, agree, len(rows))


@router.get("/models/{name}/shadow/{alias}")
def shadow_stats(request: Request, name: str, alias: str) -> dict[str, Any]:
    """How often the shadow version (``alias``) agreed with the one served, since the
    server started."""
    cache = _cache(request)
    with _LOCK:
        stats = dict(cache.get((name, f"shadow:{alias}"), {}))
    return {"model": name, "alias": alias, "comparisons": [
        {**s, "agreement": s["agreed"] / s["rows"] if s["rows"] else None}
        for s in stats.values()]}


@router.post("/models/{name}/predict")
def predict(request: Request, caller: Caller, name: str, body: PredictBody,
            environment: str | None = None, version: int | None = None,
            alias: str | None = None, shadow: str | None = None) -> Any:
    """Predictions for ``rows`` (objects of the model's input fields), with its version.
    ``shadow``: an alias (e.g. challenger) whose version also predicts, compared and logged,
    never returned."""
    from andon.models import artifact
    from andon.models.registry import resolve

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
    model = _loaded(request, caller, name, found)
    try:
        predictions = model.predict_rows(body.rows)
    except artifact.RequestInvalid as e:
        return JSON({"error": {**e.to_dict()["error"], "field": e.field}}, status_code=422)
    if shadow is not None:
        try:
            _shadow(request, caller, name, shadow, found.version, body.rows, predictions)
        except AndonError as e:  # the shadow never fails the request it watches
            log.warning("shadow %s (%s) failed: %s", name, shadow, e.message)
    return {"model": name, "version": found.version, "fingerprint": found.fingerprint,
            "predictions": predictions}
