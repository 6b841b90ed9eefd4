"""Model steps: training into a skops artifact (reused, retrained on change), the registry
(versions, aliases with history, diff), gates that stop the line, batch scoring, and
prediction over real HTTP with requests validated against the signature."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from andon.errors import AndonError
from andon.events import RunResult
from andon.models import ModelLoadError, load
from andon.project import Project
from andon.service import Session
from andon.warehouse import Warehouse
from tests.apikit import error_of, served
from tests.conftest import unprotect

YAML = """
name: models
sources:
  raw:
    path: in/*.csv
    columns:
      id: {type: integer, required: true}
      x1: double
      x2: double
      cat: string
      label: integer
"""

MODEL = """
import andon.models
import pandas as pd
from sklearn.linear_model import LogisticRegression


@andon.models.model(label="label", features=["x1", "x2"], validation=0.25, seed=1)
def clf(raw: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression(C={c})
"""

SCORE = """
import andon.models
import pyarrow as pa


@andon.models.scoring()
def scored(clf: andon.models.LoadedModel, raw: pa.Table) -> pa.Table:
    return clf.score(raw)
"""


def data(rows: int = 400, *, label: bool = True) -> str:
    """A separable-with-noise problem: label = x1 + x2 > 1, one row in 17 flipped."""
    lines = ["id,x1,x2,cat,label"]
    for i in range(rows):
        x1, x2 = (i * 37 % 100) / 100, (i * 53 % 100) / 100
        y = int(x1 + x2 > 1.0) ^ (i % 17 == 0)
        lines.append(f"{i},{x1},{x2},{'abc'[i % 3]},{y if label else ''}")
    return "\n".join(lines) + "\n"


def make(make_project: Any, *, c: float = 1.0, extra: dict[str, str] | None = None,
         label: bool = True) -> Path:
    return unprotect(make_project({
        "andon.yaml": YAML, "in/data.csv": data(label=label),
        "pipelines/p/clf.py": MODEL.format(c=c), **(extra or {})}))


def run(root: Path) -> RunResult:
    result = Session(Project.load(root), "tester").run("prod")
    return result


def action(result: RunResult, step: str) -> str:
    return next(s.action for s in result.steps if s.name == step)


def test_training_seals_a_skops_model_with_signature_metrics_and_lineage(make_project) -> None:
    root = make(make_project)
    result = run(root)
    assert result.ok, result.error
    project = Project.load(root)
    versions = project.store.models.versions("clf")
    assert [v.version for v in versions] == [1]
    v1 = versions[0]
    manifest = Warehouse(project.warehouse).read_manifest("clf", v1.fingerprint)
    assert manifest is not None
    info = manifest.meta["model"]
    folder = Warehouse(project.warehouse).artifact_dir("clf", v1.fingerprint)
    assert (folder / "model.skops").is_file() and info["file"] == "model.skops"
    assert info["signature"] == {"inputs": [["x1", "double"], ["x2", "double"]],
                                 "output": ["label", "integer"]}
    assert info["estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert info["params"]["C"] == 1.0
    assert info["lineage"]["inputs"] == {"raw": project.store.commit_steps(
        project.store.environment("prod")["commit_id"])["raw"]}
    assert v1.metrics["rows_validation"] == 100 and v1.metrics["rows_train"] == 300
    assert 0.8 < v1.metrics["accuracy"] <= 1 and 0.8 < v1.metrics["roc_auc"] <= 1
    # the artifact's table is the evaluation: one row, readable like any table
    cols, rows = Session(project, "t").query("SELECT accuracy, rows_validation FROM clf", "prod")
    assert cols == ["accuracy", "rows_validation"] and rows == [(v1.metrics["accuracy"], 100)]
    # the file is skops, not pickle: skops reads it with the trusted types only
    import skops.io as sio

    assert sio.get_untrusted_types(file=folder / "model.skops") == []
    model = load(project, "clf")
    assert model.version == 1 and model.predict_rows([{"x1": 0.9, "x2": 0.9}]) == [1]
    assert model.plain is not None  # one row: a NumPy row, the same answers as a DataFrame
    many = [{"x1": i / 40, "x2": (i * 7 % 40) / 40} for i in range(40)]
    assert model.predict_rows(many) == list(model.estimator.predict(model.frame(many)))


def test_unchanged_code_and_data_reuse_the_model_a_change_retrains(make_project) -> None:
    root = make(make_project)
    assert action(run(root), "clf") == "built"
    again = run(root)
    assert again.ok and action(again, "clf") == "reused"
    assert [v.version for v in Project.load(root).store.models.versions("clf")] == [1]
    (root / "pipelines/p/clf.py").write_text(MODEL.format(c=0.05))
    changed = run(root)
    assert changed.ok and action(changed, "clf") == "built"
    project = Project.load(root)
    assert [v.version for v in project.store.models.versions("clf")] == [2, 1]
    assert load(project, "clf").version == 2  # prod publishes the new one
    diff = Session(project, "t").models_diff("clf", 1, 2)
    c_row = next(r for r in diff["rows"] if r["name"] == "C")
    assert (c_row["a"], c_row["b"], c_row["changed"]) == (1.0, 0.05, True)
    assert next(r for r in diff["rows"] if r["name"] == "raw")["changed"] is False


def test_aliases_move_with_history(make_project, cli) -> None:
    root = make(make_project)
    run(root)
    (root / "pipelines/p/clf.py").write_text(MODEL.format(c=0.05))
    run(root)
    session = Session(Project.load(root), "alice")
    session.models_alias("clf", "champion", 1, note="first")
    session.models_alias("clf", "challenger", 2)
    session.models_alias("clf", "champion", 2, note="better")
    shown = session.models_show("clf", alias="champion")
    assert shown["version"] == 2
    assert shown["aliases"] == {"champion": 2, "challenger": 2}
    assert [(m["alias"], m["version"], m["set_by"], m["note"]) for m in
            shown["alias_history"]] == [("champion", 1, "alice", "first"),
                                        ("challenger", 2, "alice", None),
                                        ("champion", 2, "alice", "better")]
    code, out, err = cli("models", "alias", "clf", "challenger", "--remove", "-p", root)
    assert code == 0, err
    code, out, err = cli("models", "list", "-p", root, "--format", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert [(m["name"], m["version"], m["aliases"]) for m in listed] == [
        ("clf", 2, ["champion"])]
    code, out, err = cli("models", "show", "clf", "--version", "3", "-p", root)
    assert code != 0 and "no version 3" in err
    with pytest.raises(AndonError, match="did you mean"):
        session.models_show("clff")


def test_a_failing_gate_stops_the_line(make_project) -> None:
    gates = {"checks/models.yaml": """
        clf:
          - {type: model_metric, metric: accuracy, min: 0.5}
          - {type: beats_champion, metric: roc_auc, by: 0.0}
    """}
    root = make(make_project, extra=gates)
    first = run(root)
    assert first.ok, first.error
    messages = {c.name: c.message for c in first.checks}
    assert messages["clf.beats_champion.roc_auc"] == "no champion yet: nothing to beat"
    Session(Project.load(root), "t").models_alias("clf", "champion", 1)
    # a much weaker model (heavily regularised): trained, sealed, judged, not published
    (root / "pipelines/p/clf.py").write_text(MODEL.format(c=1e-6).replace(
        'features=["x1", "x2"]', 'features=["x1"]'))
    second = run(root)
    assert not second.ok
    gate = next(c for c in second.checks if c.name == "clf.beats_champion.roc_auc")
    assert gate.status == "failed" and gate.metric is not None and gate.metric < 0
    assert "on the same holdout" in gate.message
    project = Project.load(root)
    assert load(project, "clf").version == 1  # prod still serves the champion
    assert {v.version for v in project.store.models.versions("clf")} == {1, 2}


def test_a_missing_gate_metric_is_an_error_naming_the_metrics(make_project) -> None:
    root = make(make_project, extra={"checks/models.yaml": """
        clf:
          - {type: model_metric, metric: rmse, max: 1}
    """})
    result = run(root)
    assert not result.ok
    gate = next(c for c in result.checks if c.table == "clf")
    assert gate.status == "error" and "no metric 'rmse'" in gate.message
    assert "accuracy" in gate.message


def test_a_label_column_full_of_nulls_is_a_clear_error(make_project) -> None:
    root = make(make_project, label=False)
    result = run(root)
    assert not result.ok
    error = next(s.error for s in result.steps if s.name == "clf")
    assert error is not None
    assert "label column 'label' of 'raw' is null in all 400 rows" in error.message
    assert error.file is not None and error.file.endswith("clf.py")
    assert Project.load(root).store.models.versions("clf") == []


def test_a_model_file_that_fails_to_load_is_a_clear_error(make_project) -> None:
    root = make(make_project)
    run(root)
    project = Project.load(root)
    fp = project.store.models.versions("clf")[0].fingerprint
    path = Warehouse(project.warehouse).artifact_dir("clf", fp) / "model.skops"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelLoadError) as info:
        load(project, "clf")
    assert "is not the one andon sealed" in info.value.message
    assert "rebuild it" in info.value.hint


def test_batch_scoring_adds_prediction_and_version_per_row(make_project) -> None:
    root = make(make_project, extra={"pipelines/p/scored.py": SCORE})
    result = run(root)
    assert result.ok, result.error
    out = Session(Project.load(root), "t").query(
        "SELECT count(*) AS n, min(model_version) AS lo, max(model_version) AS hi, "
        "avg(CAST(prediction = label AS INTEGER)) AS hit FROM scored", "prod")
    row = dict(zip(out[0], out[1][0], strict=True))
    assert row["n"] == 400 and row["lo"] == row["hi"] == 1 and row["hit"] > 0.8


def test_predict_over_http_with_signature_validation(make_project) -> None:
    root = make(make_project)
    run(root)
    with served(Project.load(root)) as client:
        ok = client.post("/api/models/clf/predict",
                         json={"rows": [{"x1": 0.9, "x2": 0.95}, {"x1": 0.1, "x2": 0.0}]})
        assert ok.status_code == 200, ok.text
        assert ok.json()["predictions"] == [1, 0] and ok.json()["version"] == 1
        missing = client.post("/api/models/clf/predict", json={"rows": [{"x1": 0.9}]})
        error = error_of(missing, 422)
        assert error["field"] == "rows[0].x2" and "'x2' is missing" in error["message"]
        mistyped = client.post("/api/models/clf/predict",
                               json={"rows": [{"x1": 0.9, "x2": "high"}]})
        assert error_of(mistyped, 422)["field"] == "rows[0].x2"
        assert "must be double" in error_of(mistyped, 422)["message"]
        unknown = client.post("/api/models/nope/predict", json={"rows": [{"x1": 1}]})
        assert error_of(unknown, 404)["message"] == "no model named 'nope'"
        listed = client.get("/api/models").json()["models"]
        assert [m["name"] for m in listed] == ["clf"]


def test_promotion_carries_the_model_and_runs_its_gates(make_project) -> None:
    root = make(make_project, extra={"checks/models.yaml": """
        clf:
          - {type: model_metric, metric: accuracy, min: 0.5}
    """})
    run(root)
    session = Session(Project.load(root), "tester")
    session.env_create("dev", "prod")
    (root / "pipelines/p/clf.py").write_text(MODEL.format(c=0.05))
    session = Session(Project.load(root), "tester")
    assert session.run("dev").ok
    assert [m["version"] for m in session.models_list("dev")] == [2]
    assert [m["version"] for m in session.models_list("prod")] == [1]
    promotion = session.promote("dev", "prod")
    assert promotion.status == "promoted", promotion
    assert [m["version"] for m in session.models_list("prod")] == [2]
    assert load(Project.load(root), "clf", environment="prod").version == 2


def test_the_registry_numbers_versions_and_keeps_alias_history_on_each_store(
        store_url: str) -> None:
    from andon.store import open_store

    store = open_store(store_url)
    try:
        repo = store.models
        a = repo.register("m", "fp-a", run_id=None, environment="prod",
                          metrics={"accuracy": 0.8}, info={"params": {"C": 1}})
        b = repo.register("m", "fp-b", run_id=None, environment="dev", metrics={}, info={})
        assert (a.version, b.version) == (1, 2)
        assert repo.register("m", "fp-a", run_id=None, environment="dev", metrics={},
                             info={}).version == 1  # the same artifact keeps its version
        repo.move_alias("m", "champion", 1, who="alice")
        repo.move_alias("m", "champion", 2, who="bob", note="better")
        repo.move_alias("m", "challenger", 1, who="bob")
        repo.move_alias("m", "challenger", None, who="bob")
        assert repo.aliases("m") == {"champion": 2}
        assert [(m.alias, m.version, m.set_by) for m in repo.alias_history("m", "champion")] \
            == [("champion", 1, "alice"), ("champion", 2, "bob")]
        repo.set_tags("m", 1, {"reviewed": "yes"})
        assert repo.get("m", 1) is not None and repo.get("m", 1).tags == {"reviewed": "yes"}
        assert repo.get("m", 1).metrics == {"accuracy": 0.8}  # type: ignore[union-attr]
    finally:
        store.engine.dispose()


def test_shadow_mode_compares_a_challenger_without_returning_it(make_project) -> None:
    root = make(make_project)
    run(root)
    (root / "pipelines/p/clf.py").write_text(MODEL.format(c=1e-6))
    run(root)
    session = Session(Project.load(root), "t")
    session.models_alias("clf", "challenger", 2)
    rows = [{"x1": 0.9, "x2": 0.95}, {"x1": 0.1, "x2": 0.0}, {"x1": 0.6, "x2": 0.6}]
    with served(Project.load(root)) as client:
        answer = client.post("/api/models/clf/predict?version=1&shadow=challenger",
                             json={"rows": rows})
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == 1 and set(answer.json()) == {
            "model", "version", "fingerprint", "predictions"}
        stats = client.get("/api/models/clf/shadow/challenger").json()["comparisons"]
    assert len(stats) == 1 and stats[0]["version"] == 1 and stats[0]["shadow_version"] == 2
    assert stats[0]["rows"] == 3 and stats[0]["requests"] == 1
    theirs = load(Project.load(root), "clf", version=2).predict_rows(rows)
    agreed = sum(a == b for a, b in zip(answer.json()["predictions"], theirs, strict=True))
    assert stats[0]["agreed"] == agreed


def test_an_alias_moved_through_the_server_is_served_at_once(make_project) -> None:
    root = make(make_project)
    run(root)
    (root / "pipelines/p/clf.py").write_text(MODEL.format(c=1e-6))
    run(root)
    Session(Project.load(root), "t").models_alias("clf", "champion", 1)
    rows = {"rows": [{"x1": 0.9, "x2": 0.95}]}
    with served(Project.load(root)) as client:
        for _ in range(3):  # the second and third are answered from what the first kept
            answer = client.post("/api/models/clf/predict?alias=champion", json=rows)
            assert answer.json()["version"] == 1
        moved = client.put("/api/models/clf/aliases/champion", json={"version": 2})
        assert moved.status_code == 200, moved.text
        answer = client.post("/api/models/clf/predict?alias=champion", json=rows)
        assert answer.json()["version"] == 2
        bad = client.post("/api/models/clf/predict?alias=champion",
                          json={"rows": [{"x1": 0.9, "x2": None, "x3": 1.0}]})
        assert error_of(bad, 422)["field"] == "rows[0].x3"


MODEL_WITH = """
import andon.models
import pandas as pd
from sklearn.linear_model import LogisticRegression


def always_one(row: dict) -> int:
    return 1


@andon.models.model(label="label", features=["x1", "x2"], {args})
def clf(raw: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression(C={c})
"""


def break_model_file(root: Path, version: int) -> None:
    project = Project.load(root)
    found = project.store.models.get("clf", version)
    assert found is not None
    path = Warehouse(project.warehouse).artifact_dir("clf", found.fingerprint) / "model.skops"
    path.write_bytes(path.read_bytes()[:100])


def test_cross_validation_records_mean_and_std_over_the_folds(make_project) -> None:
    root = make(make_project, extra={"pipelines/p/clf.py": MODEL_WITH.format(
        args="cv=4, seed=3", c=1.0)})
    result = run(root)
    assert result.ok, result.error
    version = Project.load(root).store.models.versions("clf")[0]
    metrics = version.metrics
    assert metrics["folds"] == 4 and metrics["rows_train"] == 400
    assert 0.8 < metrics["accuracy"] < 1 and 0 < metrics["accuracy_std"] < 0.1
    assert {"roc_auc", "roc_auc_std", "f1", "log_loss_std"} <= set(metrics)
    assert version.info["validation"] == {"cv": 4, "seed": 3, "label_nulls": 0}
    with pytest.raises(ValueError, match="number of folds"):
        import andon.models

        andon.models.model(label="label", cv=1)


def test_a_fallback_answers_when_the_model_fails_and_says_so(make_project) -> None:
    root = make(make_project, extra={"pipelines/p/clf.py": MODEL_WITH.format(
        args='fallback="previous"', c=1.0)})
    run(root)
    (root / "pipelines/p/clf.py").write_text(MODEL_WITH.format(args='fallback="previous"',
                                                               c=0.5))
    run(root)
    break_model_file(root, 2)
    rows = [{"x1": 0.9, "x2": 0.95}, {"x1": 0.1, "x2": 0.0}]
    with served(Project.load(root)) as client:
        answer = client.post("/api/models/clf/predict", json={"rows": rows})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["version"] == 1 and body["predictions"] == [1, 0]
        assert body["fallback"]["used"] == "version 1"
        assert "is not the one andon sealed" in body["fallback"]["reason"]
        bad = client.post("/api/models/clf/predict", json={"rows": [{"x1": "a", "x2": 1}]})
        assert error_of(bad, 422)["field"] == "rows[0].x1"  # validated by the fallback too

    # a rule instead: it answers, and without a fallback the failure is an error
    (root / "pipelines/p/clf.py").write_text(MODEL_WITH.format(args="fallback=always_one",
                                                               c=0.25))
    run(root)
    break_model_file(root, 3)
    with served(Project.load(root)) as client:
        body = client.post("/api/models/clf/predict", json={"rows": rows}).json()
        assert body["predictions"] == [1, 1] and body["version"] is None
        assert body["fallback"]["used"] == "rule always_one"
        (root / "pipelines/p/clf.py").write_text(MODEL_WITH.format(args="seed=0", c=0.25))
    with served(Project.load(root)) as client:
        failed = client.post("/api/models/clf/predict?version=3", json={"rows": rows})
        assert failed.status_code >= 500 or failed.status_code == 409, failed.text
        assert "is not the one andon sealed" in failed.text


LABELS = """
SELECT id, {label} AS label, DATE '2026-01-01' + CAST(id % 59 AS INTEGER) AS scored_on
FROM raw
"""


def test_performance_joins_labels_by_key_per_period_and_refuses_null_labels(
        make_project) -> None:
    from andon.models import monitor

    root = make(make_project, extra={
        "pipelines/p/scored.py": SCORE,
        "pipelines/p/scored_rows.sql": "SELECT s.*, l.scored_on FROM scored s "
                                       "JOIN labels l USING (id)",
        "pipelines/p/labels.sql": LABELS.format(label="label"),
        "pipelines/p/no_labels.sql": LABELS.format(label="CAST(NULL AS INTEGER)")})
    assert run(root).ok
    project = Project.load(root)
    results = monitor.performance(project, "clf", "scored_rows", "labels", key="id",
                                  time="scored_on", period="month")
    accuracy = {r.context: r.metric for r in results if r.check_name.endswith(".accuracy")}
    assert set(accuracy) == {"2026-01-01@v1", "2026-02-01@v1"}
    assert all(0.8 < (v or 0) <= 1 for v in accuracy.values())
    assert len(project.store.checks.series("models.performance.clf.roc_auc",
                                           environment="prod")) == 2
    with pytest.raises(AndonError, match="null in all 400 rows matched"):
        monitor.performance(project, "clf", "scored_rows", "no_labels", key="id",
                            time="scored_on")
    with pytest.raises(AndonError, match="has no column 'idd'") as info:
        monitor.performance(project, "clf", "scored_rows", "labels", key="idd",
                            time="scored_on")
    assert "id" in info.value.hint
    with pytest.raises(AndonError, match="unknown period"):
        monitor.performance(project, "clf", "scored_rows", "labels", key="id",
                            time="scored_on", period="mnth")
    drift = monitor.drift(project, "clf", "raw")  # the same distribution: no drift
    assert {r.check_name for r in drift} == {"models.drift.clf.x1", "models.drift.clf.x2",
                                             "models.drift.clf.prediction.probability"}
    assert all(r.status == "passed" for r in drift)


def add_delay_model(root: Path) -> None:
    """The example's delay classifier, added as docs/models.md tells: extras/models/ holds
    the training set, the model step and its gates."""
    import shutil

    extras = root / "extras" / "models"
    target = root / "pipelines" / "flights" / "models"
    target.mkdir(parents=True)
    for path in extras.iterdir():
        if path.name != "models.yaml":
            shutil.copyfile(path, target / path.name)
    (root / "checks").mkdir(exist_ok=True)
    shutil.copyfile(extras / "models.yaml", root / "checks" / "models.yaml")


@pytest.mark.slow
def test_the_flights_delay_classifier_from_training_to_drift(flights: Path, cli) -> None:
    """Issue 10 item 7 on the real example: trained on the feature service departure_delay
    (a point-in-time training set of every departed flight before the last month: about
    110,000 rows, 40,000 sampled to fit), published behind its gates and made champion,
    served with its online features, the last month scored in batch, drift detected on that
    summer month and performance measured per week once labels are joined by flight_id."""
    import andon.features
    from andon.models import monitor
    from tests.examplekit import assert_every_check_ran

    add_delay_model(flights)
    result = run(flights)
    assert result.ok, result.error
    gates = {c.name: c for c in result.checks if c.table == "delay_model"}
    assert set(gates) == {"delay_model.roc_auc", "delay_model.beats_champion"}
    assert all(g.status == "passed" for g in gates.values())
    assert gates["delay_model.roc_auc"].metric is not None
    assert gates["delay_model.roc_auc"].metric > 0.6
    session = Session(Project.load(flights), "tester")
    session.models_alias("delay_model", "champion", 1, note="first version")
    project = Project.load(flights)
    model = load(project, "delay_model", alias="champion")
    assert model.features == ["sched_hour_utc", "weekday", "month", "distance", "temp",
                              "wind_speed", "visib", "precip", "on_time_rate_30d", "seats",
                              "plane_age_years"]
    shown = session.models_show("delay_model")
    assert shown["info"]["lineage"]["inputs"].keys() == {"delay_history"}
    assert shown["info"]["online"] == ["departure_delay"]

    # served: the request names the entities, the server looks up their features
    andon.features.materialize(project=project, environment="prod")
    request = {"origin": "JFK", "carrier": "AA", "tailnum": "N3DUAA", "sched_hour_utc": 22,
               "weekday": 5, "month": 6, "distance": 1089.0}
    online = andon.features.online("departure_delay", [
        {"origin": "JFK", "carrier": "AA", "tailnum": "N3DUAA"}], project=project)[0]
    assert online["status"]["weather_hourly"] in ("present", "expired")
    merged = {**online["features"], **{k: v for k, v in request.items()
                                       if k not in ("origin", "carrier", "tailnum")}}
    with served(Project.load(flights)) as client:
        answer = client.post("/api/models/delay_model/predict", json={"rows": [request]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == 1
        assert answer.json()["predictions"] == model.predict_rows([merged])
        no_key = client.post("/api/models/delay_model/predict", json={"rows": [
            {k: v for k, v in request.items() if k != "tailnum"}]})
        assert error_of(no_key, 422)["field"] == "rows[0].tailnum"

    # the last month scored in batch, with the model version on every row
    out = session.query("SELECT count(*), min(model_version), max(model_version), "
                        "count(probability) FROM delay_scored", "prod")[1][0]
    month = session.query("SELECT count(*) FROM delay_latest_month", "prod")[1][0][0]
    assert out == (month, 1, 1, month) and month > 20_000

    # drift: June's weather is not the winter and spring it learnt from
    drift = {r.check_name.rsplit(".", 1)[-1] if "prediction" not in r.check_name else
             "prediction": r for r in monitor.drift(project, "delay_model",
                                                     "delay_latest_month")}
    assert drift["temp"].status == "failed" and drift["temp"].metric > 0.2  # type: ignore
    assert drift["distance"].status == "passed"
    assert "KS" in drift["temp"].message and drift["prediction"].metric is not None
    history = project.store.checks.series("models.drift.delay_model.temp",
                                          environment="prod")
    assert len(history) == 1

    # performance once the labels arrive, joined by flight_id, per week
    perf = monitor.performance(project, "delay_model", "delay_scored", "delay_latest_month",
                               key="flight_id", time="event_timestamp", period="week")
    accuracy = [r for r in perf if r.check_name.endswith(".accuracy")]
    assert sum(0.6 < (r.metric or 0) < 1 for r in accuracy) >= 4  # the full weeks
    assert any(r.check_name.endswith(".roc_auc") for r in perf)
    code, text, _ = cli("models", "drift", "delay_model", "delay_latest_month", "-p", flights)
    assert code == 0 and "models.drift.delay_model.temp" in text
    assert_every_check_ran(flights, lambda args: cli(*args, "-p", flights))


def wait_for_log(project: Project, name: str, rows: int) -> None:
    """Until the server's writer has put ``rows`` answers of ``name`` in the log."""
    import time

    from andon.models import predlog

    deadline = time.monotonic() + 30
    while True:
        found = predlog.files(project, name)
        if found and predlog.read(project, name).num_rows >= rows:
            return
        assert time.monotonic() < deadline, "the prediction log was not written"
        time.sleep(0.05)


def test_served_predictions_are_logged_for_performance_drift_and_shadow(
        make_project, monkeypatch, cli) -> None:
    from andon.models import monitor, predlog

    monkeypatch.setenv("ANDON_PREDICTION_LOG_FLUSH", "0.05")
    root = make(make_project)
    run(root)
    (root / "pipelines/p/clf.py").write_text(MODEL.format(c=1e-6))
    run(root)
    project = Project.load(root)
    Session(project, "t").models_alias("clf", "challenger", 2)
    Session(project, "t").models_alias("clf", "champion", 1)
    raw = [line.split(",") for line in data().splitlines()[1:]]
    rows = [{"x1": float(r[1]), "x2": float(r[2])} for r in raw]
    ids = [int(r[0]) for r in raw]
    with served(project) as client:
        for start in range(0, 300, 50):  # answered on the event loop after the first
            answer = client.post("/api/models/clf/predict?alias=champion", json={
                "rows": rows[start:start + 50], "ids": ids[start:start + 50]})
            assert answer.status_code == 200, answer.text
        shadowed = client.post("/api/models/clf/predict?version=1&shadow=challenger",
                               json={"rows": rows[:10]})
        assert shadowed.status_code == 200, shadowed.text
        bad = client.post("/api/models/clf/predict", json={"rows": rows[:2], "ids": [1]})
        assert error_of(bad, 422)["field"] == "ids"
        wait_for_log(project, "clf", 310)
    log = predlog.read(project, "clf").to_pandas()
    assert len(log) == 310 and set(log["version"]) == {1}
    assert {"input.x1", "input.x2", "probability", "served_at", "id"} <= set(log.columns)
    logged = log[log["id"].notna()].sort_values("id", key=lambda c: c.astype(int))
    assert list(logged["id"].astype(int)) == ids[:300]
    assert logged["probability"].between(0, 1).all()
    assert list(logged["input.x1"]) == [r["x1"] for r in rows[:300]]
    # labels arrive later (the raw table's): joined by key to what was served
    results = monitor.performance(project, "clf", None, "raw", key="id", served=True,
                                  period="day")
    accuracy = [r for r in results if r.check_name == "models.performance.clf.accuracy"]
    assert len(accuracy) == 1 and accuracy[0].context.endswith("@v1")
    truth = {int(r[0]): int(r[4]) for r in raw}
    expected = sum(int(p == truth[int(i)]) for i, p in zip(
        logged["id"], logged["prediction"], strict=True)) / 300
    assert accuracy[0].metric == pytest.approx(expected, abs=1e-6)
    # what was served drifts from nothing: the same distribution as training
    drift = monitor.drift(project, "clf", served=True, alias="champion")
    assert {r.check_name for r in drift} == {"models.drift.clf.x1", "models.drift.clf.x2",
                                             "models.drift.clf.prediction.probability"}
    assert all(r.context == "served@v1" for r in drift)
    # shadow comparisons are in the log: a new server still knows them
    with served(Project.load(root)) as client:
        stats = client.get("/api/models/clf/shadow/challenger").json()["comparisons"]
    theirs = load(project, "clf", version=2).predict_rows(rows[:10])
    agreed = sum(a == b for a, b in zip(shadowed.json()["predictions"], theirs, strict=True))
    assert stats == [{"version": 1, "shadow_version": 2, "requests": 1, "rows": 10,
                      "agreed": agreed, "agreement": agreed / 10}]
    with pytest.raises(AndonError, match="not both"):
        monitor.drift(project, "clf", "raw", served=True)
    code, out, err = cli("models", "performance", "clf", "--served", "--labels", "raw",
                         "--key", "id", "--period", "day", "-p", root, "--format", "json")
    assert code == 0, err
    assert {r["check"] for r in json.loads(out)} == {"models.performance.clf.accuracy",
                                                    "models.performance.clf.roc_auc"}
    code, out, err = cli("models", "drift", "clf", "--served", "--version", "2", "-p", root)
    assert code != 0 and "no answer of model 'clf' version 2" in err


def test_the_prediction_log_samples_and_bounds_its_buffer(tmp_path) -> None:
    from datetime import UTC, datetime

    from andon.models.predlog import PredictionLog, Served

    def one() -> Served:
        return Served(at=datetime.now(UTC), environment="prod", model=None, name="m",
                      rows=[{"x": 1.0}], predictions=[1], ids=None, keys=None,
                      fallback="rule r")

    none = PredictionLog(tmp_path / "a", sample=0.0, flush_seconds=3600)
    for _ in range(100):
        none.record(one())
    assert none.flush() == []
    small = PredictionLog(tmp_path / "b", flush_seconds=3600, rows=2)
    for _ in range(100):
        small.record(one())
    small.close()
    import pyarrow.parquet as pq

    written = sum(pq.read_table(p).num_rows for p in (tmp_path / "b").rglob("*.parquet"))
    assert written + small.dropped == 100 and written >= 40  # at most 20 batches wait
    table = pq.read_table(next((tmp_path / "b").rglob("*.parquet")))
    assert table.column("fallback").to_pylist()[0] == "rule r"
    assert table.column("version").null_count == table.num_rows


def test_drift_and_performance_declared_as_gates_run_with_the_checks(make_project) -> None:
    root = make(make_project, extra={
        "pipelines/p/scored.py": SCORE,
        "pipelines/p/scored_rows.sql": "SELECT s.*, l.scored_on FROM scored s "
                                       "JOIN labels l USING (id)",
        "pipelines/p/labels.sql": LABELS.format(label="label"),
        "pipelines/p/shifted.sql": "SELECT id, x1 * 0.3 + 0.7 AS x1, x2 FROM raw",
        "checks/monitors.yaml": """
            clf:
              - {type: model_drift, table: raw}
              - {type: model_drift, table: shifted, max_psi: 0.2, severity: warn}
              - {type: model_drift, table: raw, features: [x3], name: clf.bad_feature,
                 severity: warn}
              - {type: model_performance, metric: accuracy, min: 0.8, scored: scored_rows,
                 labels: labels, key: id, time: scored_on, period: month}
              - {type: model_performance, metric: rmse, max: 1, scored: scored_rows,
                 labels: labels, key: id, time: scored_on, name: clf.no_rmse, severity: warn}
        """})
    result = run(root)
    assert result.ok, result.error
    checks = {c.name: c for c in result.checks}
    same = checks["clf.model_drift.raw"]
    assert same.status == "passed" and same.metric is not None and same.metric < 0.2
    shifted = checks["clf.model_drift.shifted"]
    assert shifted.status == "failed" and shifted.metric is not None and shifted.metric > 0.2
    assert "above 0.2: prediction.probability, x1" in shifted.message
    assert checks["clf.bad_feature"].status == "error"
    assert "no feature 'x3'; its features: x1, x2" in checks["clf.bad_feature"].message
    accuracy = checks["clf.model_performance.accuracy"]
    assert accuracy.status == "passed" and 0.8 < (accuracy.metric or 0) <= 1
    assert "2026-02-01" in accuracy.message  # the latest month with labels
    assert checks["clf.no_rmse"].status == "error"
    assert "its metrics: accuracy, roc_auc" in checks["clf.no_rmse"].message
    project = Project.load(root)
    assert len(project.store.checks.series("clf.model_drift.shifted",
                                           environment="prod")) == 1


LOG_YAML = """name: logged
models:
  prediction_log:
    folder: logs/answers
    sample: 0.5
    flush_seconds: 2
    max_rows: 5
    keep: 2d
"""


def test_the_prediction_log_is_set_in_andon_yaml_and_the_environment_overrides(
        make_project, monkeypatch) -> None:
    from andon.errors import ConfigError
    from andon.models.predlog import PredictionLog

    for name in ("", "_SAMPLE", "_FLUSH", "_ROWS"):
        monkeypatch.delenv(f"ANDON_PREDICTION_LOG{name}", raising=False)
    root = make_project({"andon.yaml": LOG_YAML})
    plog = PredictionLog.of(Project.load(root))
    assert plog is not None
    assert (plog.folder, plog.sample, plog.flush_seconds, plog.max_rows) == (
        root / "logs/answers", 0.5, 2.0, 5)
    plog.close()
    monkeypatch.setenv("ANDON_PREDICTION_LOG_SAMPLE", "1")  # one server's override
    plog = PredictionLog.of(Project.load(root))
    assert plog is not None and plog.sample == 1.0 and plog.max_rows == 5
    plog.close()
    off = make_project({"andon.yaml": "name: quiet\nmodels: {prediction_log: {enabled: false}}\n"})
    assert PredictionLog.of(Project.load(off)) is None
    typo = make_project({"andon.yaml": "name: t\nmodels:\n  prediction_log:\n    sampel: 1\n"})
    with pytest.raises(ConfigError) as e:
        Project.load(typo)
    assert e.value.line == 4 and "did you mean 'sample'" in (e.value.hint or "")
    wrong = make_project({"andon.yaml": "name: t\nmodels: {prediction_log: {sample: 2}}\n"})
    with pytest.raises(ConfigError, match="sample"):
        Project.load(wrong)


def test_gc_deletes_prediction_log_hours_older_than_keep(make_project, cli,
                                                         monkeypatch) -> None:
    from datetime import UTC, datetime, timedelta

    from andon.models.predlog import Served, write

    monkeypatch.delenv("ANDON_PREDICTION_LOG", raising=False)
    root = make_project({"andon.yaml": LOG_YAML})
    folder = root / "logs/answers"
    now = datetime.now(UTC)

    def answer(at: datetime) -> Served:
        return Served(at=at, environment="prod", model=None, name="m", rows=[{"x": 1.0}],
                      predictions=[1], ids=["a"], keys=None, fallback="rule r")

    write(folder, [answer(now - timedelta(days=5)), answer(now - timedelta(days=3))])
    write(folder, [answer(now - timedelta(hours=1)), answer(now)])
    old = {p.relative_to(folder).parent for p in folder.rglob("*.parquet")
           if datetime.strptime(p.parent.parent.name[5:], "%Y-%m-%d").replace(tzinfo=UTC)
           < now - timedelta(days=2, hours=1)}
    assert len(old) == 2
    code, out, err = cli("gc", "--dry-run", "-p", root, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["expired_prediction_hours"] == 2
    assert len(list(folder.rglob("*.parquet"))) == 4  # a dry run deletes nothing
    code, out, err = cli("gc", "-p", root, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["expired_prediction_hours"] == 2 and report["deleted_files"] >= 2
    left = {p.relative_to(folder).parent for p in folder.rglob("*.parquet")}
    assert len(left) >= 1 and not left & old
    bad = make_project({"andon.yaml": "name: b\nmodels: {prediction_log: {keep: forever}}\n"})
    code, out, err = cli("gc", "-p", bad)
    assert code != 0 and "prediction_log: keep: bad duration 'forever'" in err


def test_the_server_preloads_models_only_once_it_starts(make_project) -> None:
    import threading
    import time

    import uvicorn

    from andon.server import create_app

    app = create_app(Project.load(make_project({"andon.yaml": "name: s\n"})), host="127.0.0.1")
    assert not hasattr(app.state, "andon_models")  # building the app loads nothing
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        assert hasattr(app.state, "andon_models")  # the startup began the preload
    finally:
        server.should_exit = True
        thread.join(30)
