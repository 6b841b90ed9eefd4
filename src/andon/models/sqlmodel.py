"""In-engine models: linear and logistic regression fitted and scored inside the SQL engine,
where the data lives (seed 004's MADlib idea), as an alternative to pulling the training
table into Python.

``@andon.models.sqlmodel.linear(label=..., features=[...])`` and ``logistic(...)`` mark a
function as a model step whose training is a few aggregate queries over the training
table's artifact: ordinary least squares from one pass (``XᵀX`` and ``Xᵀy``, a (k+1)² system
solved in Python), logistic regression by Newton's method (IRLS), one pass per iteration,
with the same L2 penalty as scikit-learn's ``LogisticRegression(C=...)``. The held-out rows
are chosen in SQL by a hash of each row and the seed, and the metrics are computed in SQL
on them. The fitted coefficients are stored as the scikit-learn estimator they define
(``LinearRegression`` / ``LogisticRegression``, saved with skops), so the registry, the gates,
HTTP serving and ``@andon.models.scoring`` treat the model like any other.

``@andon.models.sqlmodel.scoring()`` scores a table inside the engine: one ``SELECT`` adding
``prediction`` (and ``probability``), ``model_version`` and ``model_fingerprint`` to every row
of its table, with the same columns ``LoadedModel.score`` adds, for any linear or logistic
model (in-engine or trained with scikit-learn).
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from andon.engines.sql import ident_sql, literal_sql, parse, render
from andon.errors import StepError
from andon.models import artifact
from andon.models.artifact import HOLDOUT_FILE, META, MODEL_FILE
from andon.models.spec import _mark

if TYPE_CHECKING:
    import numpy as np

    from andon.build import BuildContext, Built
    from andon.engines.base import Engine
    from andon.plan import PlannedStep
    from andon.steps import Step
    from andon.warehouse import Manifest

F = TypeVar("F", bound=Callable[..., Any])
Algorithm = Literal["linear", "logistic"]

_BUCKETS = 1_000_000  # the holdout split's resolution (a share of rows to 1e-6)
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL", "BOOLEAN", "DECIMAL", "INT")


@dataclass(frozen=True)
class SqlModelSpec:
    """What an in-engine model step declares."""

    algorithm: Algorithm
    label: str
    features: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    validation: float = 0.2
    seed: int = 0
    c: float = 1.0  # logistic: inverse L2 strength, as scikit-learn's C
    max_iter: int = 50
    tol: float = 1e-8


def _decorator(algorithm: Algorithm) -> Callable[..., Callable[[F], F]]:
    def decorator(*, label: str, features: list[str] | None = None,
                  exclude: list[str] | None = None, validation: float = 0.2, seed: int = 0,
                  c: float = 1.0, max_iter: int = 50, name: str | None = None,
                  zone: str | None = None, owner: str | None = None,
                  tags: list[str] | None = None, description: str | None = None
                  ) -> Callable[[F], F]:
        if not 0 < validation < 1:
            raise ValueError("validation is the share of rows held out: between 0 and 1")
        if c <= 0:
            raise ValueError("c is the inverse of the L2 penalty: above 0")
        spec = SqlModelSpec(algorithm, label, tuple(features or ()), tuple(exclude or ()),
                            validation, seed, c, max_iter)

        def mark(func: F) -> F:
            func.__andon_model__ = spec  # type: ignore[attr-defined]
            return _mark(func, "sqlmodel", name, zone, owner, tags, description)

        return mark

    return decorator


linear = _decorator("linear")
linear.__doc__ = """Mark a function as an in-engine linear regression (ordinary least squares)
of ``label`` on ``features`` (default: every numeric column but the label and ``exclude``).
Its one parameter names the training table; its body is not called: the engine fits it."""
logistic = _decorator("logistic")
logistic.__doc__ = """Mark a function as an in-engine logistic regression of a two-valued
``label`` on ``features``, with scikit-learn's L2 penalty (``c`` as its ``C``). Its one
parameter names the training table; its body is not called: the engine fits it."""


def scoring(*, name: str | None = None, zone: str | None = None, owner: str | None = None,
            tags: list[str] | None = None, description: str | None = None,
            ) -> Callable[[F], F]:
    """Mark a function as an in-engine scoring step: its parameters name one model step (a
    linear or logistic model) and one table; the engine adds the model's ``prediction``
    (``probability`` too for a classifier), ``model_version`` and ``model_fingerprint`` to
    every row of the table. The function's body is not called."""

    def mark(func: F) -> F:
        return _mark(func, "sqlscore", name, zone, owner, tags, description)

    return mark


# training ---------------------------------------------------------------------------------


def _fail(step: Step, message: str, hint: str) -> StepError:
    return StepError(message, file=step.file, line=step.line, step=step.name, hint=hint)


def _q(name: str) -> str:
    return ident_sql(name)


class _Sql:
    """Queries over one artifact, written in DuckDB's dialect (as users' SQL steps are) and
    run in the engine's."""

    def __init__(self, engine: Engine, files: Sequence[str]) -> None:
        self.engine = engine
        self.source = render(engine.scan(files), "duckdb")

    def text(self, sql: str) -> str:
        return render(parse(sql, "duckdb"), self.engine.dialect)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.engine.cursor().execute(self.text(sql)).fetchall()


def _split_predicate(spec: SqlModelSpec, columns: Sequence[str], *, holdout: bool) -> str:
    """Rows held out (or kept for training): a hash of the row's values and the seed, so the
    split is the same on every engine run and independent of file order."""
    values = ", ".join([*(_q(c) for c in columns), literal_sql(spec.seed)])
    cut = round(spec.validation * _BUCKETS)
    op = "<" if holdout else ">="
    return f"(hash({values}) % {_BUCKETS}) {op} {cut}"


def _numeric(kind: str) -> bool:
    head = kind.upper().split("(")[0].strip()
    return head in _NUMERIC


def _features(step: Step, spec: SqlModelSpec, schema: dict[str, str], parent: str
              ) -> list[str]:
    from andon.errors import did_you_mean

    for col in (spec.label, *spec.features, *spec.exclude):
        if col not in schema:
            raise _fail(step, f"the training table {parent!r} has no column {col!r}",
                        did_you_mean(col, list(schema)) or f"columns: {', '.join(schema)}")
    if spec.features:
        bad = [f for f in spec.features if not _numeric(schema[f])]
        if bad:
            raise _fail(step, f"feature {bad[0]!r} of {parent!r} is {schema[bad[0]]}: an "
                        f"in-engine {spec.algorithm} model takes numeric features",
                        "encode it in a step before (CASE WHEN, one column per category), "
                        "or train with @andon.models.model")
        return list(spec.features)
    features = [c for c, kind in schema.items()
                if c != spec.label and c not in spec.exclude and _numeric(kind)]
    if not features:
        raise _fail(step, f"the training table {parent!r} has no numeric feature column",
                    "declare features=[...] or add numeric columns to the training table")
    return features


def _design(spec: SqlModelSpec, features: Sequence[str], y: str, columns: Sequence[str],
            source: str) -> str:
    """The training rows as doubles: x0..xk-1 and y, rows with a null left out."""
    xs = ", ".join(f"CAST({_q(f)} AS DOUBLE) AS x{i}" for i, f in enumerate(features))
    complete = " AND ".join(f"{_q(c)} IS NOT NULL" for c in (*features, spec.label))
    return (f"SELECT {xs}, {y} AS y FROM {source} "
            f"WHERE {complete} AND {_split_predicate(spec, columns, holdout=False)}")


def _linear_form(beta: Sequence[float] | np.ndarray, k: int) -> str:
    """b0 + b1*x0 + ... over the design's columns."""
    terms = [literal_sql(float(beta[0]))]
    terms += [f"{literal_sql(float(beta[i + 1]))} * x{i}" for i in range(k)]
    return " + ".join(terms)


def _cross_products(k: int, weight: str) -> list[str]:
    """sum(w·xi·xj) for i <= j over 1, x0..xk-1 (index 0 is the intercept's column of 1)."""
    cols = ["1.0", *(f"x{i}" for i in range(k))]
    return [f"sum({weight} * {cols[i]} * {cols[j]})"
            for i in range(k + 1) for j in range(i, k + 1)]


def _symmetric(values: Sequence[float], k: int) -> np.ndarray:
    import numpy as np

    m = np.zeros((k + 1, k + 1))
    it = iter(values)
    for i in range(k + 1):
        for j in range(i, k + 1):
            m[i, j] = m[j, i] = next(it)
    return m


def fit_linear(sql: _Sql, design: str, k: int) -> tuple[np.ndarray, int]:
    """Ordinary least squares: one aggregate pass, then the normal equations."""
    import numpy as np

    cols = ["1.0", *(f"x{i}" for i in range(k))]
    aggs = ["count(*)", *_cross_products(k, "1.0"), *(f"sum({c} * y)" for c in cols)]
    row = sql.rows(f"SELECT {', '.join(aggs)} FROM ({design}) AS d")[0]
    n = int(row[0])
    size = (k + 1) * (k + 2) // 2
    xtx = _symmetric([float(v or 0.0) for v in row[1:1 + size]], k)
    xty = np.array([float(v or 0.0) for v in row[1 + size:]])
    beta = np.linalg.lstsq(xtx, xty, rcond=None)[0]
    return beta, n


def fit_logistic(sql: _Sql, design: str, k: int, c: float, max_iter: int, tol: float
                 ) -> tuple[np.ndarray, int, int]:
    """Newton's method on scikit-learn's objective (L2 on the coefficients, not on the
    intercept): each iteration is one aggregate pass computing the gradient and Hessian."""
    import numpy as np

    beta = np.zeros(k + 1)
    penalty = np.eye(k + 1) / c
    penalty[0, 0] = 0.0
    cols = ["1.0", *(f"x{i}" for i in range(k))]
    size = (k + 1) * (k + 2) // 2
    n = 0
    for iteration in range(1, max_iter + 1):
        p = f"(1.0 / (1.0 + exp(-({_linear_form(beta, k)}))))"
        aggs = ["count(*)", *_cross_products(k, "(p * (1.0 - p))"),
                *(f"sum({col} * (y - p))" for col in cols)]
        row = sql.rows(f"SELECT {', '.join(aggs)} FROM (SELECT *, {p} AS p "
                       f"FROM ({design}) AS d) AS s")[0]
        n = int(row[0])
        hessian = _symmetric([float(v or 0.0) for v in row[1:1 + size]], k) + penalty
        gradient = np.array([float(v or 0.0) for v in row[1 + size:]]) - penalty @ beta
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        beta = beta + step
        if float(np.max(np.abs(step))) <= tol * max(1.0, float(np.max(np.abs(beta)))):
            return beta, n, iteration
    return beta, n, max_iter


def _score_sql(beta: Sequence[float] | np.ndarray, features: Sequence[str],
               algorithm: Algorithm) -> str:
    """The model's output over the table's own columns: the prediction of a linear model,
    the probability of the positive class of a logistic one."""
    terms = [literal_sql(float(beta[0]))]
    terms += [f"{literal_sql(float(b))} * CAST({_q(f)} AS DOUBLE)"
              for f, b in zip(features, beta[1:], strict=True)]
    z = " + ".join(terms)
    return f"({z})" if algorithm == "linear" else f"(1.0 / (1.0 + exp(-({z}))))"


def _metrics(sql: _Sql, spec: SqlModelSpec, holdout: str, score: str, y: str
             ) -> dict[str, float]:
    """The model's metrics on the held-out rows, computed in the engine."""
    rows = f"SELECT {score} AS s, {y} AS y FROM ({holdout}) AS h WHERE {score} IS NOT NULL"
    if spec.algorithm == "linear":
        rmse, mae, var, n = sql.rows(
            f"SELECT sqrt(avg((y - s) * (y - s))), avg(abs(y - s)), var_pop(y), count(*) "
            f"FROM ({rows}) AS r")[0]
        if not n:
            return {}
        return {"rmse": float(rmse), "mae": float(mae),
                "r2": 1.0 - float(rmse) ** 2 / float(var) if var else 0.0}
    eps = 1e-15
    acc, tp, fp, fn, loss, n = sql.rows(
        f"SELECT avg(CASE WHEN (s > 0.5) = (y = 1.0) THEN 1.0 ELSE 0.0 END), "
        f"sum(CASE WHEN s > 0.5 AND y = 1.0 THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN s > 0.5 AND y = 0.0 THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN s <= 0.5 AND y = 1.0 THEN 1 ELSE 0 END), "
        f"-avg(y * ln(greatest(least(s, {1 - eps}), {eps})) "
        f"+ (1.0 - y) * ln(greatest(least(1.0 - s, {1 - eps}), {eps}))), count(*) "
        f"FROM ({rows}) AS r")[0]
    if not n:
        return {}
    out = {"accuracy": float(acc), "log_loss": float(loss)}
    out["f1"] = 2.0 * tp / (2.0 * tp + fp + fn) if (tp + fp + fn) else 0.0
    # ROC AUC from the ranks of the scores (Mann-Whitney U), ties at their average rank
    auc = sql.rows(
        f"SELECT (sum(CASE WHEN y = 1.0 THEN r END) - npos * (npos + 1) / 2.0) "
        f"/ (npos * nneg) FROM (SELECT y, avg(rn) OVER (PARTITION BY s) AS r, "
        f"sum(y) OVER () AS npos, sum(1.0 - y) OVER () AS nneg FROM "
        f"(SELECT s, y, row_number() OVER (ORDER BY s) AS rn FROM ({rows}) AS a) AS b) AS c "
        f"GROUP BY npos, nneg")
    if auc and auc[0][0] is not None and math.isfinite(float(auc[0][0])):
        out["roc_auc"] = float(auc[0][0])
    return out


def _estimator(spec: SqlModelSpec, beta: np.ndarray, features: Sequence[str],
               classes: Sequence[Any], iterations: int) -> Any:
    """The scikit-learn estimator the coefficients define (serving, gates and scoring load
    it like any model's)."""
    import numpy as np
    from sklearn.linear_model import LinearRegression, LogisticRegression

    names = np.array(list(features), dtype=object)
    if spec.algorithm == "linear":
        est: Any = LinearRegression()
        est.coef_ = np.asarray(beta[1:], dtype="float64")
        est.intercept_ = float(beta[0])
    else:
        est = LogisticRegression(C=spec.c)
        est.coef_ = np.asarray(beta[1:], dtype="float64").reshape(1, -1)
        est.intercept_ = np.array([float(beta[0])])
        est.classes_ = np.array(list(classes))
        est.n_iter_ = np.array([iterations], dtype="int32")
    est.n_features_in_ = len(features)
    est.feature_names_in_ = names
    return est


def _classes(step: Step, sql: _Sql, spec: SqlModelSpec, parent: str) -> list[Any]:
    found = sql.rows(f"SELECT DISTINCT {_q(spec.label)} FROM {sql.source} "
                     f"WHERE {_q(spec.label)} IS NOT NULL ORDER BY 1 LIMIT 3")
    values = [r[0] for r in found]
    if len(values) != 2:
        raise _fail(step, f"the label {spec.label!r} of {parent!r} has "
                    f"{'more than 2' if len(values) > 2 else len(values)} distinct value(s); "
                    "a logistic model needs exactly 2",
                    "compute a two-valued label in a step before (e.g. delay > 15), or "
                    "use linear(...) for a numeric target")
    return values


def build_sql_model(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    artifact.require_models()


    spec: SqlModelSpec | None = getattr(step.function, "__andon_model__", None)
    assert spec is not None
    if len(ps.parents) != 1:
        raise _fail(step, f"a model step trains on one table; {step.name!r} names "
                    f"{len(ps.parents)}: {', '.join(ps.parents) or 'none'}",
                    "give the function one parameter: the step or table it trains on")
    parent = ps.parents[0]
    source = ctx.artifacts[ctx.fps[parent]]
    files = [str(ctx.warehouse.path(f)) for f in source.files]
    sql = _Sql(ctx.engine, files)
    schema = dict(ctx.engine.schema(files))
    features = _features(step, spec, schema, parent)
    columns = list(schema)
    label = _q(spec.label)
    classes: list[Any] = []
    if spec.algorithm == "logistic":
        classes = _classes(step, sql, spec, parent)
        y = f"CASE WHEN {label} = {literal_sql(classes[1])} THEN 1.0 ELSE 0.0 END"
    else:
        if not _numeric(schema[spec.label]):
            raise _fail(step, f"the label {spec.label!r} of {parent!r} is "
                        f"{schema[spec.label]}: a linear model predicts a number",
                        "use logistic(...) for a two-valued label")
        y = f"CAST({label} AS DOUBLE)"
    total, labelled = sql.rows(f"SELECT count(*), count({label}) FROM {sql.source}")[0]
    if not labelled:
        raise _fail(step, f"the label column {spec.label!r} of {parent!r} is null in all "
                    f"{total:,} rows: nothing to train on",
                    "fix the step that computes the label, or declare another label=")
    design = _design(spec, features, y, columns, sql.source)
    k = len(features)
    iterations = 1
    if spec.algorithm == "linear":
        beta, n = fit_linear(sql, design, k)
    else:
        beta, n, iterations = fit_logistic(sql, design, k, spec.c, spec.max_iter, spec.tol)
    if n <= k:
        raise _fail(step, f"{n} complete training rows for {k} features in {parent!r}: too "
                    "few to fit", "train on more rows, or with fewer features")
    holdout = (f"SELECT * FROM {sql.source} WHERE {label} IS NOT NULL AND "
               f"{_split_predicate(spec, columns, holdout=True)}")
    score = _score_sql(beta, features, spec.algorithm)
    metrics = _metrics(sql, spec, holdout, score, y)
    (n_holdout,) = sql.rows(f"SELECT count(*) FROM ({holdout}) AS h")[0]
    metrics.update(rows_train=float(n), rows_validation=float(n_holdout))
    estimator = _estimator(spec, beta, features, classes, iterations)
    inputs = [[f, artifact.signature_type(_arrow_type(schema[f]))] for f in features]
    run = ctx.store.run(ctx.run_id) if ctx.run_id else None
    import sklearn

    info: dict[str, Any] = {
        "name": step.name, "file": MODEL_FILE, "holdout": HOLDOUT_FILE, "label": spec.label,
        "task": "regression" if spec.algorithm == "linear" else "classification",
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "in_engine": {"algorithm": spec.algorithm, "engine": ctx.engine.name,
                      "iterations": iterations,
                      "coefficients": dict(zip(["intercept", *features],
                                               [float(b) for b in beta], strict=True))},
        "signature": {"inputs": inputs,
                      "output": [spec.label,
                                 artifact.signature_type(_arrow_type(schema[spec.label]))]},
        "metrics": metrics,
        "params": {"algorithm": spec.algorithm, "c": spec.c, "max_iter": spec.max_iter},
        "validation": {"share": spec.validation, "seed": spec.seed,
                       "label_nulls": int(total - labelled)},
        "lineage": {"inputs": {parent: ctx.fps[parent]}, "git_sha": run and run.get("git_sha")},
        "libraries": [f"scikit-learn=={sklearn.__version__}",
                      f"python=={platform.python_version()}"],
    }
    from andon.models.train import seal_model

    def write_holdout(path: Path) -> None:  # the held-out rows never leave the engine
        ctx.engine.materialize(sql.text(holdout), path)

    return seal_model(ctx, step, ps, parent, estimator, info, metrics, write_holdout)


def _arrow_type(kind: str) -> Any:
    import pyarrow as pa

    head = kind.upper().split("(")[0].strip()
    if head == "BOOLEAN":
        return pa.bool_()
    if head in ("FLOAT", "DOUBLE", "REAL", "DECIMAL"):
        return pa.float64()
    if _numeric(kind):
        return pa.int64()
    return pa.string()


# scoring ----------------------------------------------------------------------------------


def build_sql_score(ctx: BuildContext, step: Step, ps: PlannedStep) -> Built:
    from andon.build import Built, _seal

    models = [p for p in ps.parents if META in ctx.artifacts[ctx.fps[p]].meta]
    tables = [p for p in ps.parents if p not in models]
    if len(models) != 1 or len(tables) != 1:
        raise _fail(step, f"an in-engine scoring step names one model and one table; "
                    f"{step.name!r} names {len(models)} model(s) and {len(tables)} table(s)",
                    "give the function two parameters: the model step and the table")
    manifest: Manifest = ctx.artifacts[ctx.fps[models[0]]]
    version = ctx.store.models.by_fingerprint(models[0], manifest.fingerprint)
    loaded = artifact.load(ctx.warehouse, manifest, version.version if version else None)
    beta, algorithm = _coefficients(step, loaded)
    files = [str(ctx.warehouse.path(f)) for f in ctx.artifacts[ctx.fps[tables[0]]].files]
    sql = _Sql(ctx.engine, files)
    schema = dict(ctx.engine.schema(files))
    missing = [f for f in loaded.features if f not in schema]
    if missing:
        from andon.errors import did_you_mean

        raise _fail(step, f"the table {tables[0]!r} has no column {missing[0]!r} that model "
                    f"{loaded.name!r} needs",
                    did_you_mean(missing[0], list(schema)) or
                    f"model {loaded.name!r} needs: {', '.join(loaded.features)}")
    score = _score_sql(beta, loaded.features, algorithm)
    if algorithm == "linear":
        added = f"{score} AS prediction"
    else:
        low, high = (literal_sql(_plain(c)) for c in loaded.estimator.classes_)
        added = (f"CASE WHEN {score} IS NULL THEN NULL WHEN {score} > 0.5 THEN {high} "
                 f"ELSE {low} END AS prediction, {score} AS probability")
    query = (f"SELECT *, {added}, CAST({literal_sql(loaded.version)} AS BIGINT) AS "
             f"model_version, {literal_sql(loaded.fingerprint)} AS model_fingerprint "
             f"FROM {sql.source}")
    with ctx.warehouse.staging(ps.name) as staging:
        rows = ctx.engine.materialize(sql.text(query), staging / "part-0.parquet")
        sealed = _seal(ctx, ps, staging, [], rows,
                       {"scored_by": {"model": loaded.name, "version": loaded.version,
                                      "fingerprint": loaded.fingerprint}})
    return Built(sealed)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _coefficients(step: Step, model: artifact.LoadedModel) -> tuple[list[float], Algorithm]:
    """The intercept and coefficients of a linear or binary logistic scikit-learn model."""
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    est = model.estimator
    if isinstance(est, LinearRegression | Ridge):
        return [float(est.intercept_), *(float(c) for c in est.coef_)], "linear"
    if isinstance(est, LogisticRegression) and len(est.classes_) == 2:
        return ([float(est.intercept_[0]), *(float(c) for c in est.coef_[0])], "logistic")
    raise _fail(step, f"model {model.name!r} is a {type(est).__name__}: the engine scores "
                "linear and binary logistic models only",
                "score it with @andon.models.scoring (in Python) instead")
