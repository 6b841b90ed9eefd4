"""CLI verbs of the feature store: list and show definitions, build a training set,
materialise to the online store, read online values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from andon.cli.app import EnvOpt, Format, FormatOpt, ProjectOpt, _dumps, _emit, _load, app, console
from andon.errors import ConfigError

features_app = typer.Typer(help="Feature store: definitions, training sets, online values.",
                           no_args_is_help=True)
app.add_typer(features_app, name="features")


@features_app.command("list")
def features_list(
    search: Annotated[str | None, typer.Argument(help="keep features whose name, view, "
                                                 "description or tags contain this")] = None,
    project: ProjectOpt = None,
    env: EnvOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Features, on-demand features and feature services of the project (features/*.yaml)."""
    from andon import features

    _emit(features.list_features(_load(project, env=env), search, env), fmt, title="features")


@features_app.command("show")
def features_show(
    name: Annotated[str, typer.Argument(help="a feature view, feature service or feature")],
    project: ProjectOpt = None,
    env: EnvOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """A feature view (table, keys, timestamp, TTL, features), service or feature."""
    from andon import features

    found = features.show(name, _load(project, env=env), env)
    if fmt is Format.json:
        print(_dumps(found))
        return
    listed = found.pop("features", None)
    _emit([{"field": k, "value": "" if v is None else str(v)} for k, v in found.items()], fmt,
          title=name)
    if listed:
        rows = listed if isinstance(listed[0], dict) else [{"feature": f} for f in listed]
        _emit(rows, fmt, title="features")


@features_app.command("training-set")
def features_training_set(
    service: Annotated[str, typer.Argument(help="feature service (or one feature reference)")],
    entities: Annotated[str, typer.Option("--entities", help="entity rows: a .parquet or .csv "
                                                             "file, or a table")],
    output: Annotated[Path, typer.Option("--output", "-o", help="a .parquet or .csv file")],
    timestamp: Annotated[str, typer.Option("--timestamp", help="the entity rows' time column")]
    = "event_timestamp",
    project: ProjectOpt = None,
    env: EnvOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Point-in-time correct features for every entity row, in input order: each the latest
    value known at the row's timestamp (never a later one), null past the view's TTL."""
    from andon import features
    from andon.features.training import TrainingSet

    result = features.training_set(service, entities, output, timestamp=timestamp,
                                   project=_load(project, env=env), environment=env)
    assert isinstance(result, TrainingSet)
    row = {"output": result.output, "rows": result.rows, "null_key_rows": result.null_key_rows,
           "features": ", ".join(result.features)}
    if fmt is not Format.table:
        _emit([row], fmt)
        return
    console.print(f"wrote {result.rows:,} rows with {len(result.features)} features to "
                  f"{result.output}")
    if result.null_key_rows:
        console.print(f"{result.null_key_rows:,} entity rows have a null key or timestamp: "
                      "kept, with null features")


@features_app.command("materialize")
def features_materialize(
    views: Annotated[list[str] | None, typer.Argument(help="feature views (default: all)")]
    = None,
    project: ProjectOpt = None,
    env: EnvOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Write each view's latest value per entity to the online store (only entities whose
    values changed since the last time)."""
    from andon.service import Session, local_user

    done = Session(_load(project, env=env), local_user()).features_materialize(views, env)
    _emit([{**m, "latest_event": m["latest_event"] or "", "seconds": round(m["seconds"], 3)}
           for m in done], fmt, title="materialized")


@features_app.command("get")
def features_get(
    service: Annotated[str, typer.Argument(help="feature service (or one feature reference)")],
    entity: Annotated[list[str], typer.Option("--entity", help="one entity as JSON, e.g. "
                                              "'{\"origin\": \"JFK\"}' (repeatable)")],
    project: ProjectOpt = None,
    env: EnvOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Online values of entities: one row per entity, with each view's status (present,
    missing, expired past its TTL)."""
    from andon import features

    parsed: list[dict[str, Any]] = []
    for i, text in enumerate(entity):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"--entity {i + 1} is not JSON: {e}",
                              hint='write --entity \'{"key": "value"}\'') from e
        if not isinstance(value, dict):
            raise ConfigError(f"--entity {i + 1} must be a JSON object of join keys")
        parsed.append(value)
    found = features.online(service, parsed, project=_load(project, env=env),
                            environment=env)
    if fmt is Format.json:
        print(_dumps([{"entity": e, **r} for e, r in zip(parsed, found, strict=True)]))
        return
    _emit([{**e, **r["features"], "status": ", ".join(f"{v}: {s}" for v, s in
                                                      r["status"].items())}
           for e, r in zip(parsed, found, strict=True)], fmt, title=service)


@features_app.command("monitor")
def features_monitor(
    training_set: Annotated[Path | None, typer.Option(
        "--training-set", help="a training set file: record drift (PSI) against served values")]
    = None,
    project: ProjectOpt = None,
    env: EnvOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Record feature checks in the check history: each materialised view's freshness
    (failed past its TTL), training-serving skew of the reads logged (served values vs
    offline values for the same keys and times) and, with --training-set, drift between
    training and serving."""
    from andon.service import Session, local_user

    rows = Session(_load(project, env=env), local_user()).features_monitor(
        str(training_set) if training_set else None, env)
    _emit(rows, fmt, title="feature checks")
