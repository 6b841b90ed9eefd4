"""Models: the registry (``andon models …``) and online prediction.

``POST /api/models/{name}/predict`` validates the rows against the model's signature (422
naming the field) and answers with the version that predicted. The model is the one the
environment publishes (default), or ``?version=`` / ``?alias=``; loaded models are kept
per artifact, so a request costs one small store read and the prediction."""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from andon.errors import AndonError
from andon.server.api import Caller
from andon.server.jsonable import JSON
from andon.server.names import checked
from andon.server.state import state_of

router = APIRouter(tags=["models"])
log = logging.getLogger("andon.models")


class PredictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Any]]
    ids: list[str | int | None] | None = None  # one per row: logged, to join labels later


class AliasBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None
    note: str | None = None


_LOCK = threading.Lock()


def _cache(request: Request) -> dict[tuple[str, ...], Any]:
    state = request.app.state
    with _LOCK:
        if not hasattr(state, "andon_models"):
            state.andon_models = {}
    cache: dict[tuple[str, ...], Any] = state.andon_models
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
    return _load_once(_cache(request), caller.project, name, found)


def _load_once(cache: dict[tuple[str, ...], Any], project: Any, name: str, found: Any) -> Any:
    """The loaded model of ``found``, kept per artifact and loaded once: requests that
    arrive while it loads (the server's preload, or another request) wait for that load
    instead of loading the same file again each."""
    from andon.models import artifact
    from andon.warehouse import Warehouse

    key = (name, found.fingerprint)
    model = cache.get(key)
    if model is not None:
        return model
    with _LOCK:
        loading = cache.setdefault(("loading", *key), threading.Lock())
    with loading:
        model = cache.get(key)
        if model is None:
            warehouse = Warehouse(project.warehouse)
            manifest = warehouse.read_manifest(name, found.fingerprint)
            if manifest is None:
                raise AndonError(f"the artifact of model {name!r} version {found.version} is "
                                 "no longer in the warehouse", kind="not_found",
                                 hint=f"rebuild it: andon run {name}")
            model = cache[key] = artifact.load(warehouse, manifest, found.version)
    return model


def _predlog(request: Request, caller: Caller) -> Any:
    """The server's prediction log (``andon.models.predlog``), started once; None when
    ``ANDON_PREDICTION_LOG=off``."""
    state = request.app.state
    found = getattr(state, "andon_predlog", False)
    if found is False:
        with _LOCK:
            found = getattr(state, "andon_predlog", False)
            if found is False:
                from andon.models.predlog import PredictionLog

                found = state.andon_predlog = PredictionLog.of(caller.project)
    return found


def _log(request: Request, caller: Caller, env: str | None, name: str, model: Any,
         rows: list[dict[str, Any]], predictions: list[Any], body: PredictBody,
         keys: list[str] | None, *, fallback: str | None = None,
         shadow: tuple[str, Any, list[Any]] | None = None) -> None:
    """Leave the answer for the prediction log's writer (a list append)."""
    from datetime import UTC, datetime

    from andon.models.predlog import Served

    plog = _predlog(request, caller)
    if plog is None:
        return
    plog.record(Served(
        at=datetime.now(UTC), environment=env or caller.project.config.default_environment,
        model=model, name=name, rows=rows, predictions=predictions, ids=body.ids,
        keys=[{k: r.get(k) for k in keys} for r in body.rows] if keys else None,
        fallback=fallback, shadow=shadow))


def _ids(body: PredictBody) -> None:
    from andon.models.artifact import RequestInvalid

    if body.ids is not None and len(body.ids) != len(body.rows):
        raise RequestInvalid(f"ids has {len(body.ids)} values for {len(body.rows)} rows",
                             field="ids", hint="send one id per row (or none)")


def _shadow(request: Request, caller: Caller, name: str, alias: str, served: int | None,
            rows: list[dict[str, Any]], predictions: list[Any]
            ) -> tuple[str, Any, list[Any]]:
    """Predict with the version holding ``alias`` too; count and log how often it agrees
    (its predictions are never returned)."""
    from andon.models.registry import resolve

    found = resolve(caller.project, name, alias=alias)
    model = _loaded(request, caller, name, found)
    theirs = model.predict_rows(rows)
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
    return alias, model, theirs


@router.get("/models/{name}/shadow/{alias}")
def shadow_stats(request: Request, caller: Caller, name: str, alias: str) -> dict[str, Any]:
    """How often the shadow version (``alias``) agreed with the one served: every
    comparison in the prediction log (or, with the log off, since the server started)."""
    name = checked(name, "model")
    plog = _predlog(request, caller)
    if plog is not None:
        from andon.models.predlog import shadow_comparisons

        plog.flush()
        return {"model": name, "alias": alias,
                "comparisons": shadow_comparisons(caller.project, name, alias)}
    cache = _cache(request)
    with _LOCK:
        stats = dict(cache.get((name, f"shadow:{alias}"), {}))
    return {"model": name, "alias": alias, "comparisons": [
        {**s, "agreement": s["agreed"] / s["rows"] if s["rows"] else None}
        for s in stats.values()]}


def _spec(caller: Caller, name: str) -> Any:
    """The model step's declaration in the project the server loaded (its fallback)."""
    step = caller.project.dag.steps.get(name)
    return getattr(step.function, "__andon_model__", None) if step is not None else None


def _online(request: Request, caller: Caller, env: str | None) -> Any:
    """The online-store reader of ``env``, opened once per server."""
    from andon.features import Online

    cache = _cache(request)
    key = ("online", env or "")
    reader = cache.get(key)
    if reader is None:
        with _LOCK:
            reader = cache.get(key)
            if reader is None:
                reader = cache[key] = Online(caller.project, env)
    return reader


def _with_features(request: Request, caller: Caller, env: str | None, refs: list[str],
                   rows: list[dict[str, Any]], inputs: set[str]) -> list[dict[str, Any]]:
    """Request rows merged with the online features of their entities (a request field
    wins over a looked-up value); join keys the model does not take are dropped."""
    from andon.features import training as t
    from andon.models.artifact import RequestInvalid

    reader = _online(request, caller, env)
    cache = _cache(request)
    keys = cache.get(("keys", env or "", *refs))
    if keys is None:
        views, _, _ = t.views_of(reader.defs, reader.defs.resolve(refs))
        keys = cache[("keys", env or "", *refs)] = list(
            dict.fromkeys(k for v in views for k in v.join_keys))
    entities = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RequestInvalid(f"rows[{i}] is not an object", field=f"rows[{i}]")
        missing = [k for k in keys if k not in row]
        if missing:
            raise RequestInvalid(f"rows[{i}]: entity key {missing[0]!r} is missing",
                                 field=f"rows[{i}].{missing[0]}",
                                 hint="the model's online features are looked up by: "
                                 + ", ".join(keys))
        entities.append({k: row[k] for k in keys})
    found = reader.get(refs, entities)
    drop = [k for k in keys if k not in inputs]
    merged = []
    for row, got in zip(rows, found, strict=True):
        m = {**got["features"], **row}
        for k in drop:
            m.pop(k, None)
        merged.append(m)
    return merged


def _fallback(request: Request, caller: Caller, name: str, found: Any, rows: list[Any],
              error: Exception) -> dict[str, Any]:
    """The declared fallback's answer when the model failed to load or predict: the
    previous version that loads, or the rule (a function of a request row)."""
    from andon.models import artifact

    spec = _spec(caller, name)
    rule = getattr(spec, "fallback", None)
    reason = error.message if isinstance(error, AndonError) else \
        f"{type(error).__name__}: {error}"
    log.error("model %s version %s failed (%s); fallback: %s", name, found.version, reason,
              rule if isinstance(rule, str) else getattr(rule, "__name__", None))
    if rule is None:
        raise error
    if rule == "previous":
        older = [v for v in caller.project.store.models.versions(name)
                 if v.version < found.version]
        for v in older:
            try:
                previous = _loaded(request, caller, name, v)
                predictions = previous.predict_rows(rows)
            except artifact.RequestInvalid:
                raise
            except Exception as e:  # try the one before it
                log.error("fallback version %s of %s failed too: %s", v.version, name, e)
                continue
            return {"model": name, "version": v.version, "fingerprint": v.fingerprint,
                    "predictions": predictions,
                    "fallback": {"reason": reason, "used": f"version {v.version}"}}
        raise AndonError(f"model {name!r} version {found.version} failed ({reason}) and no "
                         "earlier version could answer", kind="failed",
                         hint=f"rebuild it: andon run {name}")
    try:
        predictions = [rule(dict(r)) for r in rows]
    except Exception as e:
        raise AndonError(f"model {name!r} failed ({reason}) and its fallback rule raised "
                         f"{type(e).__name__}: {e}", kind="failed") from None
    return {"model": name, "version": None, "fingerprint": None, "predictions": predictions,
            "fallback": {"reason": reason, "used": f"rule {getattr(rule, '__name__', '')}"}}


@router.post("/models/{name}/predict")
async def predict(request: Request, caller: Caller, name: str, body: PredictBody,
                  environment: str | None = None, version: int | None = None,
                  alias: str | None = None, shadow: str | None = None) -> Any:
    """Predictions for ``rows`` (objects of the model's input fields, or of the entity keys
    of its online features), with the version that answered. ``shadow``: an alias (e.g.
    challenger) whose version also predicts, compared and logged, never returned. When the
    model fails to load or predict, its declared fallback answers and says so.

    Which version answers is kept for a second (``andon.server.recent``; moving an alias
    through this server forgets it at once); a loaded model is kept per artifact. A request
    for a version known and loaded, without shadow and with its online features (if any) in
    a local SQLite online store, is answered on the event loop: no store read, no thread
    hop."""
    from andon.models.artifact import RequestInvalid

    name = checked(name, "model")
    env = checked(environment, "environment") if environment else None
    hit, found = state_of(request).recent.peek(("model", name, env, version, alias))
    cache = _cache(request)
    model = cache.get((name, found.fingerprint)) if hit else None
    refs = found.info.get("online") if hit else None
    if refs and (("online", env or "") not in cache or not str(
            caller.project.config.online_store).startswith("sqlite:")):
        model = None  # a first reader is opened, a networked store read, in the thread pool
    if model is not None and shadow is None:
        try:
            _ids(body)
            rows = body.rows
            if refs:  # a local SQLite file: read in a fraction of a millisecond
                rows = _with_features(request, caller, env, refs, rows,
                                      {f for f, _ in found.info["signature"]["inputs"]})
            predictions = model.predict_rows(rows)
        except RequestInvalid as e:
            return _invalid(e)
        except Exception:  # answered below, by the fallback
            pass
        else:
            _log(request, caller, env, name, model, rows, predictions, body,
                 cache.get(("keys", env or "", *refs)) if refs else None)
            return JSON({"model": name, "version": found.version,
                         "fingerprint": found.fingerprint, "predictions": predictions})
    return await run_in_threadpool(_predict, request, caller, name, body, env, version,
                                   alias, shadow)


def _invalid(e: Any) -> JSON:
    return JSON({"error": {**e.to_dict()["error"], "field": e.field}}, status_code=422)


def _predict(request: Request, caller: Caller, name: str, body: PredictBody,
             env: str | None, version: int | None, alias: str | None, shadow: str | None
             ) -> Any:
    from andon.models import artifact
    from andon.models.registry import resolve

    found = state_of(request).recent.get(
        ("model", name, env, version, alias),
        lambda: resolve(caller.project, name, environment=env, version=version, alias=alias))
    rows = body.rows
    refs = found.info.get("online") or []
    keys = None
    try:
        _ids(body)
        if refs:
            rows = _with_features(request, caller, env, refs, rows,
                                  {f for f, _ in found.info["signature"]["inputs"]})
            keys = _cache(request).get(("keys", env or "", *refs))
        try:
            model = _loaded(request, caller, name, found)
            predictions = model.predict_rows(rows)
        except artifact.RequestInvalid:
            raise
        except Exception as e:  # the declared fallback answers
            answer = _fallback(request, caller, name, found, rows, e)
            used = _cache(request).get((name, answer["fingerprint"]))
            _log(request, caller, env, name, used if answer["version"] else None, rows,
                 answer["predictions"], body, keys, fallback=answer["fallback"]["used"])
            return answer
    except artifact.RequestInvalid as e:
        return _invalid(e)
    compared = None
    if shadow is not None:
        try:
            compared = _shadow(request, caller, name, shadow, found.version, rows, predictions)
        except AndonError as e:  # the shadow never fails the request it watches
            log.warning("shadow %s (%s) failed: %s", name, shadow, e.message)
    _log(request, caller, env, name, model, rows, predictions, body, keys, shadow=compared)
    return {"model": name, "version": found.version, "fingerprint": found.fingerprint,
            "predictions": predictions}


def preload(app: FastAPI) -> None:
    """Load the models the server's environment publishes in the background, so that the
    first request does not wait for scikit-learn's import and the model file."""
    state = app.state.andon

    with _LOCK:
        if not hasattr(app.state, "andon_models"):
            app.state.andon_models = {}
    cache = app.state.andon_models

    def load_all() -> None:
        from andon.models.registry import published, resolve

        project = state.project
        try:
            for name in published(project):
                _load_once(cache, project, name, resolve(project, name))
        except Exception as e:  # a request loads it (or says why) later
            log.info("preloading models: %s", e)

    threading.Thread(target=load_all, name="andon-preload-models", daemon=True).start()

    def write_log() -> None:  # what the prediction log holds, when the server stops
        plog = getattr(app.state, "andon_predlog", None)
        if plog is not None:
            plog.close()

    app.router.on_shutdown.append(write_log)
