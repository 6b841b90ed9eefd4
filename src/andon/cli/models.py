"""CLI verbs of the model registry: list the models an environment publishes, show a
version with its history, diff two versions, move aliases and tag versions."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from andon.cli.app import EnvOpt, Format, FormatOpt, ProjectOpt, _dumps, _emit, _session, app

models_app = typer.Typer(help="Model registry: versions, aliases, metrics and lineage.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


def _metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if not k.startswith("rows_"))


@models_app.command("list")
def models_list(project: ProjectOpt = None, env: EnvOpt = None,
                fmt: FormatOpt = Format.table) -> None:
    """The models the environment publishes: version, aliases, metrics."""
    rows = _session(project, env=env).models_list(env)
    if fmt is not Format.table:
        _emit(rows, fmt)
        return
    _emit([{"model": r["name"], "version": r["version"], "aliases": ", ".join(r["aliases"]),
            "metrics": _metrics(r["metrics"]), "fingerprint": r["fingerprint"][:12]}
           for r in rows], fmt, title="models")


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="a model step")],
    version: Annotated[int | None, typer.Option("--version", help="a version number")] = None,
    alias: Annotated[str | None, typer.Option("--alias", help="e.g. champion")] = None,
    project: ProjectOpt = None, env: EnvOpt = None, fmt: FormatOpt = Format.table,
) -> None:
    """A version (default: the environment's): metrics, signature, parameters, lineage,
    every version and the history of the aliases."""
    found = _session(project, env=env).models_show(name, env, version=version, alias=alias)
    if fmt is Format.json:
        print(_dumps(found))
        return
    info = found["info"]
    facts = {"model": name, "version": found["version"], "fingerprint": found["fingerprint"],
             "estimator": info.get("estimator"), "metrics": _metrics(found["metrics"]),
             "inputs": ", ".join(f"{a} ({b})" for a, b in info["signature"]["inputs"]),
             "output": " ".join(info["signature"]["output"]),
             "trained on": json.dumps(info["lineage"]["inputs"]),
             "git sha": info["lineage"].get("git_sha"), "tags": json.dumps(found["tags"]),
             "aliases": json.dumps(found["aliases"])}
    _emit([{"field": k, "value": "" if v is None else str(v)} for k, v in facts.items()], fmt,
          title=name)
    _emit([{"version": v["version"], "metrics": _metrics(v["metrics"]),
            "fingerprint": v["fingerprint"][:12]} for v in found["versions"]], fmt,
          title="versions")
    if found["alias_history"]:
        _emit([{"alias": m["alias"], "version": m["version"], "by": m["set_by"],
                "note": m["note"] or ""} for m in found["alias_history"]], fmt,
              title="alias history")


@models_app.command("diff")
def models_diff(
    name: Annotated[str, typer.Argument(help="a model step")],
    a: Annotated[int, typer.Argument(help="a version")],
    b: Annotated[int, typer.Argument(help="another version")],
    project: ProjectOpt = None, fmt: FormatOpt = Format.table,
) -> None:
    """Two versions side by side: metrics, parameters, lineage (changed rows marked)."""
    found = _session(project).models_diff(name, a, b)
    if fmt is Format.json:
        print(_dumps(found))
        return
    _emit([{"": "*" if r["changed"] else "", "kind": r["kind"], "name": r["name"],
            f"v{a}": "" if r["a"] is None else str(r["a"]),
            f"v{b}": "" if r["b"] is None else str(r["b"])} for r in found["rows"]], fmt,
          title=f"{name}: v{a} vs v{b}")


@models_app.command("alias")
def models_alias(
    name: Annotated[str, typer.Argument(help="a model step")],
    alias: Annotated[str, typer.Argument(help="e.g. champion, challenger")],
    version: Annotated[int | None, typer.Argument(help="the version (omit with --remove)")]
    = None,
    remove: Annotated[bool, typer.Option("--remove", help="remove the alias")] = False,
    note: Annotated[str | None, typer.Option("--note", help="why, kept in the history")] = None,
    project: ProjectOpt = None, fmt: FormatOpt = Format.table,
) -> None:
    """Point an alias at a version (its history is kept)."""
    if (version is None) != remove:
        raise typer.BadParameter("give a VERSION, or --remove to remove the alias")
    _emit([_session(project).models_alias(name, alias, version, note=note)], fmt)


@models_app.command("tag")
def models_tag(
    name: Annotated[str, typer.Argument(help="a model step")],
    version: Annotated[int, typer.Argument(help="the version")],
    tags: Annotated[list[str], typer.Argument(help="key=value (key= removes it)")],
    project: ProjectOpt = None, fmt: FormatOpt = Format.table,
) -> None:
    """Tag a version."""
    pairs = {t.partition("=")[0]: t.partition("=")[2] for t in tags}
    _emit([_session(project).models_tag(name, version, pairs)], fmt)


def _checks(results: list[Any], fmt: Format, title: str) -> None:
    _emit([{"check": r.check_name, "status": r.status, "metric": r.metric,
            "message": r.message} for r in results], fmt, title=title)


@models_app.command("drift")
def models_drift(
    name: Annotated[str, typer.Argument(help="a model step")],
    table: Annotated[str | None, typer.Argument(help="a table of rows it scores (or scored)")]
    = None,
    served: Annotated[bool, typer.Option("--served", help="compare what the server answered "
                                         "(its prediction log) instead of a table")] = False,
    version: Annotated[int | None, typer.Option("--version", help="a version number")] = None,
    alias: Annotated[str | None, typer.Option("--alias", help="e.g. champion")] = None,
    project: ProjectOpt = None, env: EnvOpt = None, fmt: FormatOpt = Format.table,
) -> None:
    """Drift of the model's input features and predictions on TABLE (or on the inputs it
    was served, --served) against its training rows (PSI and KS), recorded as checks of the
    model (failed above PSI 0.2)."""
    from andon.models import monitor

    session = _session(project, env=env)
    _checks(monitor.drift(session.project, name, table, served=served, environment=env,
                          version=version, alias=alias), fmt,
            f"drift of {name} on {table or 'what it served'}")


@models_app.command("performance")
def models_performance(
    name: Annotated[str, typer.Argument(help="a model step")],
    labels: Annotated[str, typer.Option("--labels", help="a table of labels that arrived")],
    key: Annotated[str, typer.Option("--key", help="the column joining them (with --served: "
                                     "the labels' column of the ids sent with the rows)")],
    scored: Annotated[str | None, typer.Option("--scored", help="a table of scored rows "
                                               "(with prediction and model_version)")] = None,
    time: Annotated[str | None, typer.Option("--time", help="the scored rows' time column")]
    = None,
    served: Annotated[bool, typer.Option("--served", help="join the labels to what the "
                                         "server answered (its prediction log)")] = False,
    label: Annotated[str | None, typer.Option("--label", help="the label column (default: "
                                              "the model's)")] = None,
    period: Annotated[str, typer.Option("--period", help="day, week, month, quarter, year")]
    = "month",
    project: ProjectOpt = None, env: EnvOpt = None, fmt: FormatOpt = Format.table,
) -> None:
    """The model's performance once labels arrive: LABELS joined by KEY to the SCORED rows
    (or to the predictions the server answered, --served), per period and version
    (accuracy, ROC AUC or RMSE, MAE), recorded as checks."""
    from andon.models import monitor

    session = _session(project, env=env)
    _checks(monitor.performance(session.project, name, scored, labels, key=key, time=time,
                                label=label, period=period, served=served, environment=env),
            fmt,
            f"performance of {name}")
