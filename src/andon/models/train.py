"""Building model steps (train on the training table, evaluate on the held-out rows, save the
model with skops) and scoring steps (a model and tables in, a scored table out).

A model artifact's table is its evaluation: one row of metrics (what checks and gates read,
like any table's); the folder also holds the model file and the held-out rows (the holdout a
challenger and the champion are compared on), each recorded with its sha256 in the manifest.
"""

from __future__ import annotations

import inspect
import platform
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError, StepError
from andon.models import artifact
from andon.models.artifact import HOLDOUT_FILE, META, MODEL_FILE, signature_type
from andon.models.spec import ModelSpec
from andon.warehouse import Manifest

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from andon.build import BuildContext, Built
    from andon.plan import PlannedStep
    from andon.steps import Step

LOSSES = ("log_loss", "rmse", "mae")  # metrics where lower is better


def _input(ctx: BuildContext, parent: str) -> Manifest:
    return ctx.artifacts[ctx.fps[parent]]


def _read(ctx: BuildContext, parent: str) -> pa.Table:
    files = [str(ctx.warehouse.path(f)) for f in _input(ctx, parent).files]
    return ctx.engine.read_arrow(files)


def _fail(step: Step, message: str, hint: str) -> StepError:
    return StepError(message, file=step.file, line=step.line, step=step.name, hint=hint)


def build_model(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    artifact.require_models()

    spec: ModelSpec | None = getattr(step.function, "__andon_model__", None)
    assert step.function is not None and spec is not None
    if len(ps.parents) != 1:
        raise _fail(step, f"a model step trains on one table; {step.name!r} names "
                    f"{len(ps.parents)}: {', '.join(ps.parents) or 'none'}",
                    "give the function one parameter: the step or table it trains on "
                    "(join tables in a step before it)")
    parent = ps.parents[0]
    table = _read(ctx, parent)
    features = _features(step, spec, table, parent)
    train, holdout, dropped = _split(step, spec, table, parent)
    estimator = _train(step, spec, train, features)
    if spec.cv:
        metrics = cross_validate(step, spec, estimator, train, features)
        metrics.update(rows_train=float(len(train)), folds=float(spec.cv))
    else:
        metrics = evaluate(estimator, holdout[features], holdout[spec.label])
        metrics.update(rows_train=float(len(train)), rows_validation=float(len(holdout)))
    inputs = tuple((f, signature_type(table.schema.field(f).type)) for f in features)
    run = ctx.store.run(ctx.run_id) if ctx.run_id else None
    import sklearn

    info: dict[str, Any] = {
        "name": step.name, "file": MODEL_FILE, "holdout": HOLDOUT_FILE, "label": spec.label,
        "task": _task(estimator),
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "signature": {"inputs": [list(i) for i in inputs],
                      "output": [spec.label, signature_type(table.schema.field(spec.label).type)]},
        "metrics": metrics, "params": {**_estimator_params(estimator), **spec.params},
        "validation": ({"cv": spec.cv, "seed": spec.seed, "label_nulls": dropped} if spec.cv
                       else {"share": spec.validation, "seed": spec.seed,
                             "label_nulls": dropped}),
        "online": list(spec.online),
        "lineage": {"inputs": {parent: ctx.fps[parent]}, "git_sha": run and run.get("git_sha")},
        "libraries": [f"scikit-learn=={sklearn.__version__}",
                      f"python=={platform.python_version()}"],
    }
    import pyarrow as pa

    def write_holdout(path: Path) -> None:
        ctx.engine.write_arrow(pa.Table.from_pandas(holdout, preserve_index=False), path)

    return seal_model(ctx, step, ps, parent, estimator, info, metrics, write_holdout)


def seal_model(ctx: BuildContext, step: Step, ps: PlannedStep, parent: str, estimator: Any,
               info: dict[str, Any], metrics: dict[str, float],
               write_holdout: Callable[[Path], None]) -> Built:
    """Seal a model artifact (the model in skops, its holdout, one row of metrics as its
    table; ``info`` in the manifest) and register its version: every model kind ends here."""
    import pyarrow as pa

    from andon.build import Built

    with ctx.warehouse.staging(ps.name) as staging:
        info["trusted"] = artifact.save(estimator, staging / MODEL_FILE)
        info["sha256"] = artifact.file_digest(staging / MODEL_FILE)
        write_holdout(staging / HOLDOUT_FILE)
        info["holdout_sha256"] = artifact.file_digest(staging / HOLDOUT_FILE)
        out = staging / "evaluation.parquet"
        rows = ctx.engine.write_arrow(pa.Table.from_pylist([{"model": step.name, **metrics}]),
                                      out)
        final = ctx.warehouse.artifact_dir(ps.name, ps.fingerprint)
        manifest = ctx.warehouse.seal(staging, Manifest(
            fingerprint=ps.fingerprint, step=ps.name, code_hash=ps.code_hash,
            files=(ctx.warehouse.rel(final / out.name),), rows=rows,
            bytes=sum(p.stat().st_size for p in staging.iterdir()),
            schema=ctx.engine.schema([out]),
            meta={META: info, "parents": {parent: ctx.fps[parent]}}))
    ctx.store.models.register(step.name, ps.fingerprint, run_id=ctx.run_id or None,
                              environment=ctx.environment, metrics=metrics,
                              info={k: v for k, v in info.items() if k != "metrics"})
    return Built(manifest)


def _features(step: Step, spec: ModelSpec, table: pa.Table, parent: str) -> list[str]:
    columns = table.column_names
    for col in (spec.label, *spec.features, *spec.exclude):
        if col not in columns:
            from andon.errors import did_you_mean

            raise _fail(step, f"the training table {parent!r} has no column {col!r}",
                        did_you_mean(col, columns) or f"columns: {', '.join(columns)}")
    features = list(spec.features) or [c for c in columns
                                       if c != spec.label and c not in spec.exclude]
    if not features:
        raise _fail(step, f"model {step.name!r} has no feature column",
                    "declare features=[...] or add columns to the training table")
    return features


def _split(step: Step, spec: ModelSpec, table: pa.Table, parent: str
           ) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    frame = table.to_pandas()  # every column: the holdout serves any later model too
    labelled = frame[frame[spec.label].notna()]
    dropped = len(frame) - len(labelled)
    if labelled.empty:
        raise _fail(step, f"the label column {spec.label!r} of {parent!r} is null in all "
                    f"{len(frame):,} rows: nothing to train on",
                    "fix the step that computes the label, or declare another label=")
    if len(labelled) < 10:
        raise _fail(step, f"the training table {parent!r} has {len(labelled)} labelled rows; "
                    "a model needs 10 at least (some to train, some to validate)",
                    "train on more rows")
    if spec.cv:  # every labelled row trains; the folds validate (and the holdout is all)
        if len(labelled) < 2 * spec.cv:
            raise _fail(step, f"{len(labelled)} labelled rows are too few for {spec.cv} folds",
                        "declare fewer folds (cv=) or train on more rows")
        labelled = labelled.reset_index(drop=True)
        return labelled, labelled, dropped
    holdout = labelled.sample(frac=spec.validation, random_state=spec.seed)
    train = labelled.drop(index=holdout.index)
    return train.reset_index(drop=True), holdout.reset_index(drop=True), dropped


def _train(step: Step, spec: ModelSpec, train: pd.DataFrame, features: list[str]) -> Any:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    assert step.function is not None
    try:
        estimator = step.function(train)
        if estimator is None or not hasattr(estimator, "predict"):
            raise _fail(step, f"the model step returned {type(estimator).__name__}, not an "
                        "estimator", "return a scikit-learn estimator (fitted or not)")
        try:
            check_is_fitted(estimator)
        except NotFittedError:
            estimator.fit(train[features], train[spec.label])
    except AndonError:
        raise
    except Exception as e:
        from andon.build import _user_line, _user_traceback

        raise StepError(f"training raised {type(e).__name__}: {e}", file=step.file,
                        line=_user_line(e, step.file), step=step.name,
                        detail=_user_traceback(e),
                        hint="fix the function; the environment was not changed") from None
    return estimator


def cross_validate(step: Step, spec: ModelSpec, estimator: Any, rows: pd.DataFrame,
                   features: list[str]) -> dict[str, float]:
    """Metrics over ``spec.cv`` folds (stratified for a classifier): for each metric its mean
    and ``<metric>_std``, each fold fitted on a fresh copy of the estimator's settings."""
    import numpy as np
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold

    assert spec.cv is not None
    x, y = rows[features], rows[spec.label]
    folds = (StratifiedKFold if _task(estimator) == "classification" and
             int(y.value_counts().min()) >= spec.cv else KFold)(
        n_splits=spec.cv, shuffle=True, random_state=spec.seed)
    per_fold: list[dict[str, float]] = []
    try:
        for fit_idx, val_idx in folds.split(x, y):
            fold = clone(estimator).fit(x.iloc[fit_idx], y.iloc[fit_idx])
            per_fold.append(evaluate(fold, x.iloc[val_idx], y.iloc[val_idx]))
    except Exception as e:
        raise _fail(step, f"cross-validation ({spec.cv} folds) raised {type(e).__name__}: {e}",
                    "each fold refits a copy of the returned estimator on features → label; "
                    "make it fit there, or use a validation split instead of cv=") from None
    names = [k for k in per_fold[0] if all(k in f for f in per_fold)]
    out: dict[str, float] = {}
    for k in names:
        values = np.array([f[k] for f in per_fold])
        out[k] = float(values.mean())
        out[f"{k}_std"] = float(values.std())
    return out


def _task(estimator: Any) -> str:
    from sklearn.base import is_classifier

    return "classification" if is_classifier(estimator) else "regression"


def _estimator_params(estimator: Any) -> dict[str, Any]:
    get = getattr(estimator, "get_params", None)
    if get is None:
        return {}
    return {k: v if isinstance(v, bool | int | float | str) or v is None else repr(v)
            for k, v in get(deep=False).items()}


def evaluate(estimator: Any, x: pd.DataFrame, y: pd.Series[Any]) -> dict[str, float]:
    """The model's metrics on labelled rows: accuracy, f1 (binary), roc_auc and log_loss
    (binary, with probabilities) for a classifier; rmse, mae and r2 for a regressor."""
    from sklearn import metrics as m

    predicted = estimator.predict(x)
    if _task(estimator) == "classification":
        out = {"accuracy": float(m.accuracy_score(y, predicted))}
        classes = list(getattr(estimator, "classes_", []))
        if len(classes) == 2:
            out["f1"] = float(m.f1_score(y, predicted, pos_label=classes[1]))
            if hasattr(estimator, "predict_proba") and y.nunique() == 2:
                proba = estimator.predict_proba(x)[:, 1]
                out["roc_auc"] = float(m.roc_auc_score(y, proba))
                out["log_loss"] = float(m.log_loss(y, proba, labels=classes))
        return out
    return {"rmse": float(m.root_mean_squared_error(y, predicted)),
            "mae": float(m.mean_absolute_error(y, predicted)),
            "r2": float(m.r2_score(y, predicted))}


# scoring steps ----------------------------------------------------------------------------


def build_score(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    from andon.build import _convert_out, seal_table

    assert step.function is not None
    func = step.function
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {}
    kwargs: dict[str, Any] = {}
    for name in inspect.signature(func).parameters:
        if name == "params":
            kwargs[name] = dict(ctx.project.params)
            continue
        manifest = _input(ctx, name)
        if META in manifest.meta:
            version = ctx.store.models.by_fingerprint(name, manifest.fingerprint)
            kwargs[name] = artifact.load(ctx.warehouse, manifest,
                                         version.version if version else None)
            continue
        table = _read(ctx, name)
        text = repr(hints.get(name, ""))
        kwargs[name] = table.to_pandas() if "pandas" in text else table
    try:
        result = func(**kwargs)
    except AndonError as e:
        e.step = e.step or step.name
        raise
    except Exception as e:
        from andon.build import _user_line, _user_traceback

        raise StepError(f"the scoring step raised {type(e).__name__}: {e}", file=step.file,
                        line=_user_line(e, step.file), step=step.name,
                        detail=_user_traceback(e),
                        hint="fix the function; the environment was not changed") from None
    return seal_table(ctx, ps, _convert_out(result, step))
