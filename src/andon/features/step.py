"""A training set as a step of a pipeline (the ``training_set`` step kind): a ``*.trainset``
file (YAML) in a pipeline folder names a feature service (or features), a table of entity
rows and its timestamp column. Its artifact is the point-in-time training set, sealed,
versioned, checked and published like any table.

    # pipelines/flights/delay_features.trainset
    features: departure_delay
    entities: flights
    timestamp: time_hour

Its parents are the entity table and the tables of the feature views it reads; its code is
the file plus the definitions of the features it uses (their views' keys, timestamps, TTL,
expressions, and the source of on-demand functions), so editing a feature rebuilds it and an
unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError, ConfigError, StepError, did_you_mean
from andon.features.catalog import Definitions, Feature, OnDemand, load_folder

if TYPE_CHECKING:
    from andon.build import BuildContext, Built
    from andon.parsecache import ParseCache
    from andon.plan import PlannedStep
    from andon.steps import Step

SUFFIX = ".trainset"
KEYS = {"features", "entities", "timestamp", "description", "owner", "tags", "zone"}
CONFIG_FILE = "andon.yaml"


def _root(path: Path) -> Path:
    for folder in path.resolve().parents:
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ConfigError("a training set step must be inside a project", file=path,
                      hint=f"no {CONFIG_FILE} above it")


def _spec(path: Path) -> tuple[dict[str, Any], Any]:
    from andon.yamlfile import load_yaml

    doc = load_yaml(path)
    data = doc.data
    if not isinstance(data, dict):
        raise ConfigError("a training set step is a YAML mapping", file=path, line=1,
                          hint="write features: SERVICE, entities: TABLE, timestamp: COLUMN")
    for key in data:
        if key not in KEYS:
            raise ConfigError(f"unknown key {key!r} in a training set step", file=path,
                              line=doc.line_of((key,)),
                              hint=did_you_mean(key, KEYS) or "allowed: " + ", ".join(sorted(KEYS)))
    for key in ("features", "entities"):
        if not data.get(key):
            raise ConfigError(f"a training set step needs {key}:", file=path, line=1,
                              hint="write features: SERVICE, entities: TABLE, timestamp: COLUMN")
    return data, doc


def _features(data: Mapping[str, Any]) -> list[str]:
    value = data["features"]
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _definition_text(defs: Definitions, wanted: list[Feature | OnDemand]) -> str:
    """What the training set depends on in the definitions (its part of the fingerprint)."""
    from andon.features.training import views_of

    views, stored, on_demand = views_of(defs, wanted)
    parts: list[Any] = []
    for view in views:
        parts.append([view.name, view.fingerprint(),
                      view.ttl.total_seconds() if view.ttl else None,
                      [f.name for f in stored if f.view == view.name]])
    for od in on_demand:
        try:
            source = inspect.getsource(od.function)
        except (OSError, TypeError):
            source = repr(od.function)
        parts.append([od.name, od.type, list(od.inputs), source])
    return json.dumps(parts, default=str)


def load_training_set(path: Path, pipeline: str, params: Mapping[str, Any],
                      cache: ParseCache | None = None) -> list[Step]:
    """The step of a ``*.trainset`` file (the ``training_set`` step kind's loader)."""
    from pydantic import ValidationError

    from andon.config import StepConfig
    from andon.features.training import views_of
    from andon.steps import Step, TableRef

    data, doc = _spec(path)
    defs = load_folder(_root(path))
    refs = _features(data)
    try:
        wanted = defs.resolve(refs)
    except AndonError as e:  # name this file: it is where the unknown feature is asked for
        raise type(e)(e.message, file=path, line=doc.line_of(("features",)),
                      hint=e.hint) from None
    views, _, _ = views_of(defs, wanted)
    entities = str(data["entities"])
    line = doc.line_of(("entities",)) or 1
    tables = [TableRef(entities, line, None)]
    tables += [TableRef(v.table, doc.line_of(("features",)), None) for v in views
               if v.table != entities]
    try:
        config = StepConfig.model_validate({k: data[k] for k in ("description", "owner", "tags",
                                                                  "zone") if k in data})
    except ValidationError as e:
        raise ConfigError(f"invalid training set step: {e.errors()[0]['msg']}", file=path,
                          line=1) from None
    spec = {"features": refs, "entities": entities,
            "timestamp": str(data.get("timestamp") or "event_timestamp")}
    code = json.dumps(spec, sort_keys=True) + "\n" + _definition_text(defs, wanted)
    return [Step(name=path.stem, kind="training_set", pipeline=pipeline, file=path,
                 config=config, code=code, refs=tuple(tables), line=1)]


def build_training_set(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    """The point-in-time training set of the step's entity table, sealed as its artifact."""
    from andon.build import Built, _seal
    from andon.engines.base import EngineError
    from andon.features import training as t

    spec = json.loads(step.code.split("\n", 1)[0])
    defs = load_folder(ctx.project.root)
    wanted = defs.resolve(spec["features"])
    files = {p: [str(ctx.warehouse.path(f)) for f in ctx.artifacts[ctx.fps[p]].files]
             for p in ps.parents}
    schemas = {p: dict(ctx.artifacts[ctx.fps[p]].schema) for p in ps.parents}
    session = ctx.engine.session(files)
    try:
        with ctx.warehouse.staging(ps.name) as staging:
            try:
                rows, nulls = t.run(session, defs, wanted, t.q(spec["entities"]),
                                    spec["timestamp"], schemas, staging / "part-0.parquet")
            except ConfigError as e:
                raise StepError(e.message, file=step.file, step=step.name, hint=e.hint) from None
            except EngineError as e:
                raise StepError(f"the training set query failed: {e.first_line}",
                                file=step.file, step=step.name,
                                hint="check the features' expressions and types "
                                     "(andon features show VIEW)") from None
            assert isinstance(rows, int)
            manifest = _seal(ctx, ps, staging, [], rows, {"training_set": {
                "features": [f.name for f in wanted], "null_key_rows": nulls,
                "definitions": hashlib.sha256(step.code.encode()).hexdigest()[:16]}})
    finally:
        session.close()
    return Built(manifest)
