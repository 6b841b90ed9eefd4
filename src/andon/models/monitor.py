"""Watching a model once it serves, recorded as check results on the model (so check
history, SPC, alerts and the UI see them):

- drift: each numeric input feature, and the model's predictions, on the rows it now scores
  (a table the environment publishes) against its training data (the rows held out when it
  was trained): PSI over the training deciles (the feature store's ``psi``) and the
  Kolmogorov-Smirnov statistic; failed (severity warn) above PSI 0.2;
- performance once labels arrive: a labels table joined later by key to the scored rows
  (predictions with their model version), per period: accuracy and ROC AUC for a classifier,
  RMSE and MAE for a regressor, one result per period and version.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError, NotFound, did_you_mean

if TYPE_CHECKING:
    import pandas as pd

    from andon.engines.base import Session
    from andon.models.artifact import LoadedModel
    from andon.project import Project
    from andon.store.checks import NewCheckResult

PERIODS = ("day", "week", "month", "quarter", "year")


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _published(project: Project, environment: str | None, table: str) -> dict[str, Any]:
    from andon.published import env_tables

    tables = env_tables(project, environment)
    if table not in tables:
        raise NotFound(f"environment {environment or project.config.default_environment!r} "
                       f"publishes no table {table!r}",
                       hint=did_you_mean(table, tables) or f"build it: andon run +{table}")
    return tables[table]


def _files(project: Project, art: dict[str, Any]) -> list[str]:
    from andon.warehouse import Warehouse

    wh = Warehouse(project.warehouse)
    return [str(wh.path(f)) for f in art["files"]]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _values(session: Session, sql: str) -> Any:
    import numpy as np

    rows = session.execute(f"SELECT x FROM ({sql}) WHERE x IS NOT NULL").arrow()
    return np.asarray(rows.column("x").to_numpy(zero_copy_only=False), dtype="float64")


def _result(name: str, check: str, kind: str, status: str, metric: float | None,
            fingerprint: str, context: str, threshold: dict[str, Any] | None, message: str,
            severity: str = "warn") -> NewCheckResult:
    from andon.store.checks import NewCheckResult

    return NewCheckResult(step=name, check_name=check, check_hash=_hash(kind, check),
                          check_type=kind, severity=severity, status=status,
                          metric=None if metric is None else round(metric, 6),
                          fingerprint=fingerprint, context=context, threshold=threshold,
                          message=message)


def drift(project: Project, name: str, table: str | None = None, *, served: bool = False,
          environment: str | None = None, version: int | None = None,
          alias: str | None = None, record: bool = True) -> list[NewCheckResult]:
    """Drift of the model's inputs and predictions on ``table`` (or, ``served``, on the
    inputs the server answered, from its prediction log) against its training rows.
    The table has the model's features (it is scored here) or its ``prediction`` /
    ``probability`` columns (rows scored earlier); features it lacks are skipped."""
    from andon.models import registry
    from andon.models.artifact import model_info
    from andon.warehouse import Warehouse

    if (table is None) == (not served):
        raise AndonError("compare the model with a TABLE or with what it served, not both",
                         hint="andon models drift NAME TABLE, or andon models drift NAME "
                         "--served")
    model = registry.load(project, name, environment=environment, version=version,
                          alias=alias)
    wh = Warehouse(project.warehouse)
    manifest = wh.read_manifest(name, model.fingerprint)
    assert manifest is not None  # load() read it
    holdout = wh.artifact_file(name, model.fingerprint, str(model_info(manifest)["holdout"]))
    with tempfile.TemporaryDirectory(prefix="andon-drift-") as tmp:
        if served:
            files = _served_inputs(project, model, Path(tmp))
            columns, fingerprint, what = _columns(files[0]), "", "served"
        else:
            assert table is not None
            art = _published(project, environment, table)
            columns = [c for c, _ in art["schema"]]
            files, fingerprint, what = _files(project, art), str(art["fingerprint"]), table
        out = drift_of(model, str(holdout), files, columns, what, fingerprint or
                       model.fingerprint, threads=project.config.threads,
                       memory_limit=project.config.memory_limit)
    if record:
        project.store.checks.add(out, run_id=None, environment=environment
                                 or project.config.default_environment)
    return out


def _columns(path: str) -> list[str]:
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def _served_inputs(project: Project, model: LoadedModel, tmp: Path) -> list[str]:
    """The inputs (and predictions) the server answered with ``model``, from the prediction
    log, as one Parquet file of the model's columns."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from andon.models import predlog

    log = predlog.read(project, model.name)
    log = log.filter(pc.equal(log.column("fingerprint"), model.fingerprint))
    if log.num_rows == 0:
        raise AndonError(f"the prediction log has no answer of model {model.name!r} version "
                         f"{model.version}", hint="choose the version it served: --version N")
    columns = {f: log.column(predlog.INPUT + f) for f in model.features
               if predlog.INPUT + f in log.column_names}
    columns.update({c: log.column(c) for c in ("prediction", "probability")
                    if log.column(c).null_count < log.num_rows})
    path = tmp / "served.parquet"
    pq.write_table(pa.table(columns), path)
    return [str(path)]


def drift_of(model: LoadedModel, holdout: str, files: list[str], columns: list[str],
             table: str, fingerprint: str, *, threads: int = 1,
             memory_limit: str | None = None) -> list[NewCheckResult]:
    """Drift checks of ``model`` on the rows of ``files`` (named ``table`` in messages)
    against ``holdout``: one per numeric feature the rows have, and one of predictions."""
    import pyarrow as pa
    from scipy.stats import ks_2samp  # type: ignore[import-untyped]

    from andon.engines import create
    from andon.features.health import PSI_WARN, psi

    name = model.name
    engine = create(threads=threads, memory_limit=memory_limit)
    out: list[NewCheckResult] = []
    threshold = {"max_psi": PSI_WARN}
    try:
        with tempfile.TemporaryDirectory(prefix="andon-drift-") as tmp:
            expected = engine.read_arrow([holdout])
            actual_pred = _predictions(engine, model, files, columns)
            if actual_pred is None:
                raise AndonError(f"table {table!r} has neither the features of model {name!r} "
                                 "nor a prediction column", hint="features: "
                                 + ", ".join(model.features))
            column, actual_values = actual_pred
            scored = model.score(expected)
            engine.write_arrow(pa.table({"x": scored.column(column).cast(pa.float64())}),
                               Path(tmp) / "expected_pred.parquet")
            engine.write_arrow(pa.table({"x": pa.array(actual_values, pa.float64())}),
                               Path(tmp) / "actual_pred.parquet")
            session = engine.session({"_holdout": [holdout], "_rows": files,
                                      "_expected_pred": [str(Path(tmp) / "expected_pred.parquet")],
                                      "_actual_pred": [str(Path(tmp) / "actual_pred.parquet")]})
            try:
                pairs = [(f, f"SELECT CAST({_quoted(f)} AS DOUBLE) AS x FROM _holdout",
                          f"SELECT CAST({_quoted(f)} AS DOUBLE) AS x FROM _rows")
                         for f, kind in model.inputs if kind != "string" and f in columns]
                pairs.append((f"prediction.{column}", "SELECT x FROM _expected_pred",
                              "SELECT x FROM _actual_pred"))
                for what, trained, now in pairs:
                    value = psi(session, trained, now)
                    if value is None:
                        continue
                    ks = ks_2samp(_values(session, trained), _values(session, now))
                    kind = "prediction_drift" if what.startswith("prediction.") \
                        else "feature_drift"
                    out.append(_result(
                        name, f"models.drift.{name}.{what}", f"model_{kind}",
                        "failed" if value > PSI_WARN else "passed", value,
                        fingerprint, f"{table}@v{model.version}", threshold,
                        f"{what} of model {name!r} (version {model.version}), training rows "
                        f"vs {table!r}: PSI {value:.3f}, KS {float(ks.statistic):.3f} "
                        f"(p={float(ks.pvalue):.2g})"))
            finally:
                session.close()
    finally:
        engine.close()
    return out


def _predictions(engine: Any, model: Any, files: list[str], columns: list[str]
                 ) -> tuple[str, Any] | None:
    """The column compared (``probability`` of a binary classifier, else ``prediction``)
    and its values on the table's rows: scored now, or as the table holds them."""
    binary = model.task == "classification" and len(
        getattr(model.estimator, "classes_", [])) == 2 and hasattr(model.estimator,
                                                                   "predict_proba")
    column = "probability" if binary else "prediction"
    if all(f in columns for f in model.features):
        scored = model.score(engine.read_arrow(files).select(model.features))
        return column, scored.column(column).to_numpy(zero_copy_only=False)
    if column in columns:
        return column, engine.read_arrow(files).column(column).to_numpy(zero_copy_only=False)
    return None


def performance(project: Project, name: str, scored: str | None, labels: str, *, key: str,
                time: str | None = None, label: str | None = None, period: str = "month",
                served: bool = False, environment: str | None = None, record: bool = True
                ) -> list[NewCheckResult]:
    """The model's performance once labels arrive: ``labels`` (a table of ``key`` and
    ``label``, default the model's label) joined by ``key`` to ``scored`` (rows with
    ``prediction``, ``model_version`` and ``time``) or, ``served``, to the server's
    prediction log (the request's ``ids`` against ``key``, by the time served), per
    ``period`` and per version. Rows whose label is still null are left out."""
    from andon.models import registry

    if (scored is None) == (not served):
        raise AndonError("join the labels to a SCORED table or to what the server served, "
                         "not both", hint="--scored TABLE --time COLUMN, or --served")
    if not served and time is None:
        raise AndonError("a scored table needs its time column", hint="--time COLUMN")
    known = registry.resolve(project, name, environment=environment)
    label = label or str(known.info.get("label"))
    l_art = _published(project, environment, labels)
    l_cols = [c for c, _ in l_art["schema"]]
    with tempfile.TemporaryDirectory(prefix="andon-performance-") as tmp:
        if served:
            time = "served_at"
            s_files = [_served_predictions(project, name, key, Path(tmp))]
            s_cols, scored = _columns(s_files[0]), "served"
        else:
            assert scored is not None
            s_art = _published(project, environment, scored)
            s_cols, s_files = [c for c, _ in s_art["schema"]], _files(project, s_art)
        assert time is not None
        out = performance_of(name, str(known.info.get("task")), scored, s_cols, s_files,
                             labels, l_cols, _files(project, l_art), str(l_art["fingerprint"]),
                             key=key, time=time, label=label, period=period, text_key=served,
                             threads=project.config.threads,
                             memory_limit=project.config.memory_limit)
    if record:
        project.store.checks.add(out, run_id=None, environment=environment
                                 or project.config.default_environment)
    return out


def _served_predictions(project: Project, name: str, key: str, tmp: Path) -> str:
    """The prediction log's answers that carry an id, as a scored table: ``key`` (the id),
    ``served_at``, ``prediction``, ``probability`` and ``model_version``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from andon.models import predlog

    log = predlog.read(project, name)
    log = log.filter(pc.is_valid(log.column("id")))
    if log.num_rows == 0:
        raise AndonError(f"no answer of model {name!r} in the prediction log has an id to "
                         "join labels by", hint='send "ids": [one per row] with the rows')
    path = tmp / "served.parquet"
    pq.write_table(pa.table({key: log.column("id"), "served_at": log.column("served_at"),
                             "prediction": log.column("prediction"),
                             "probability": log.column("probability"),
                             "model_version": log.column("version")}), path)
    return str(path)


def performance_of(name: str, task: str, scored: str, s_cols: list[str], s_files: list[str],
                   labels: str, l_cols: list[str], l_files: list[str], fingerprint: str, *,
                   key: str, time: str, label: str, period: str = "month",
                   text_key: bool = False, threads: int = 1, memory_limit: str | None = None
                   ) -> list[NewCheckResult]:
    """Per period of ``time`` and version, the metrics of the scored rows joined by ``key``
    to their labels (``text_key``: compared as text, as the prediction log keeps ids)."""
    from andon.engines import EngineError, create

    if period not in PERIODS:
        raise AndonError(f"unknown period {period!r}", hint=did_you_mean(period, PERIODS)
                         or f"periods: {', '.join(PERIODS)}")
    for table, cols, need in ((scored, s_cols, [key, time, "prediction", "model_version"]),
                              (labels, l_cols, [key, label])):
        for col in need:
            if col not in cols:
                raise AndonError(f"table {table!r} has no column {col!r}",
                                 hint=did_you_mean(col, cols) or f"columns: {', '.join(cols)}")
    proba = "s.probability" if "probability" in s_cols else "NULL"
    left, right = f"s.{_quoted(key)}", f"l.{_quoted(key)}"
    if text_key:
        left, right = f"CAST({left} AS VARCHAR)", f"CAST({right} AS VARCHAR)"
    sql = (f"SELECT CAST(date_trunc('{period}', s.{_quoted(time)}) AS DATE) AS period, "
           f"s.model_version AS version, s.prediction AS prediction, {proba} AS probability, "
           f"l.{_quoted(label)} AS label FROM _scored s JOIN _labels l ON {left} = {right}")
    engine = create(threads=threads, memory_limit=memory_limit)
    try:
        session = engine.session({"_scored": s_files, "_labels": l_files})
        try:
            frame = session.execute(sql).arrow().to_pandas()
        except EngineError as e:
            raise AndonError(f"joining {labels!r} to {scored!r} by {key!r} failed: "
                             f"{e.first_line}", hint="the key columns must have one type") from e
        finally:
            session.close()
    finally:
        engine.close()
    if frame.empty:
        raise AndonError(f"no row of {labels!r} matches a row of {scored!r} by {key!r}",
                         hint="check the key column and that the labels are of scored rows")
    arrived = frame[frame["label"].notna()]
    if arrived.empty:
        raise AndonError(f"the label column {label!r} of {labels!r} is null in all "
                         f"{len(frame):,} rows matched: no label has arrived yet",
                         hint="run this once labels are in the table")
    return [r for (period_value, version), group in arrived.groupby(["period", "version"],
                                                                     dropna=False)
            for r in _period_results(name, task, label, labels, fingerprint, period_value,
                                     version, group)]


def _period_results(name: str, task: str, label: str, labels: str, fingerprint: str,
                    period: Any, version: Any, rows: pd.DataFrame) -> list[NewCheckResult]:
    """Accuracy (and ROC AUC with probabilities of two classes) or RMSE and MAE."""
    from sklearn import metrics as m

    when = str(period)[:10]
    y, predicted = rows["label"], rows["prediction"]
    values: dict[str, float] = {}
    if task == "classification":
        values["accuracy"] = float(m.accuracy_score(y.astype(predicted.dtype), predicted))
        if rows["probability"].notna().all() and y.nunique() == 2:
            values["roc_auc"] = float(m.roc_auc_score(y, rows["probability"]))
    else:
        values["rmse"] = float(m.root_mean_squared_error(y, predicted))
        values["mae"] = float(m.mean_absolute_error(y, predicted))
    return [_result(name, f"models.performance.{name}.{metric}", "model_performance",
                    "recorded", value, fingerprint, f"{when}@v{version}", None,
                    f"{metric} {value:.4g} of model {name!r} version {version} on "
                    f"{len(rows):,} labelled rows of the period from {when} "
                    f"({labels}.{label})", severity="info")
            for metric, value in values.items()]
