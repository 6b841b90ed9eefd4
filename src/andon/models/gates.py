"""Gates: check types on model steps, run with the other checks (history, SPC, severities).

``model_metric`` judges one metric of the held-out evaluation against bounds;
``beats_champion`` scores the model holding an alias (``champion``) on the candidate's own
holdout and passes when the candidate is better by at least ``by``; the monitors
``model_drift`` (PSI of inputs and predictions on a table against the training rows) and
``model_performance`` (a metric once labels are joined to scored rows) read other tables.
Declared in ``checks/*.yaml`` under the model step's name, like any check; an
error-severity gate that fails stops the line: the model is not published."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from andon.checks.kinds.base import CheckType
from andon.checks.model import Check, CheckResult, WithRange, WithSpc
from andon.checks.types import judge_range
from andon.errors import AndonError

if TYPE_CHECKING:
    from andon.checks.context import Audit, Evaluation
    from andon.models.artifact import LoadedModel


def _info(ev: Evaluation, c: Check) -> dict[str, Any] | CheckResult:
    """The model's manifest entry, or the error that the checked step is no model."""
    from andon.models.artifact import META

    info = ev.manifest.meta.get(META)
    if not isinstance(info, dict):
        return ev.error(c, f"{c.table!r} is not a model step: {c.type} checks apply to "
                        "steps marked @andon.models.model")
    return info


def _metrics(ev: Evaluation, c: Check) -> dict[str, float] | CheckResult:
    info = _info(ev, c)
    if isinstance(info, CheckResult):
        return info
    return {str(k): float(v) for k, v in info["metrics"].items()}


def _missing(ev: Evaluation, c: Check, metric: str, known: Mapping[str, float]) -> CheckResult:
    return ev.error(c, f"model {c.table!r} has no metric {metric!r}; its metrics: "
                    f"{', '.join(sorted(known))}")


class ModelMetricSpec(WithRange):
    type: Literal["model_metric"]
    metric: str


class ModelMetric(CheckType[ModelMetricSpec]):
    name = "model_metric"
    spec = ModelMetricSpec
    family = "meta"
    doc = ("A model step's metric on its held-out validation rows is within [min, max] "
           "(accuracy, f1, roc_auc, log_loss for classifiers; rmse, mae, r2 for regressors).")
    example = "{type: model_metric, metric: roc_auc, min: 0.65}"

    def default_name(self, table: str, spec: ModelMetricSpec) -> str:
        return f"{table}.model_metric.{spec.metric}"

    def validate(self, c: Check, schema: Mapping[str, str],
                 other_schema: Mapping[str, str] | None = None) -> None:
        """Metrics are known once the model is trained: judged when it runs."""

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        spec = self.of(c)
        metrics = _metrics(ev, c)
        if isinstance(metrics, CheckResult):
            return metrics
        if spec.metric not in metrics:
            return _missing(ev, c, spec.metric, metrics)
        value = metrics[spec.metric]
        ok, threshold = judge_range(spec, value)
        return ev.with_spc(c, ev.result(c, ok, value, threshold,
                                        f"{spec.metric} = {value:.4g} on the holdout"))


class BeatsChampionSpec(WithSpc):
    type: Literal["beats_champion"]
    metric: str
    by: float = 0.0
    alias: str = "champion"


class BeatsChampion(CheckType[BeatsChampionSpec]):
    name = "beats_champion"
    spec = BeatsChampionSpec
    family = "meta"
    doc = ("The model beats the version holding ``alias`` (default champion) on the same "
           "holdout (the candidate's held-out rows) by at least ``by`` in ``metric`` (lower "
           "is better for log_loss, rmse and mae). Passes when there is no champion yet.")
    example = "{type: beats_champion, metric: roc_auc, by: 0.0}"
    reuse = True

    def default_name(self, table: str, spec: BeatsChampionSpec) -> str:
        return f"{table}.beats_{spec.alias}.{spec.metric}"

    def validate(self, c: Check, schema: Mapping[str, str],
                 other_schema: Mapping[str, str] | None = None) -> None:
        """The champion is looked up when the check runs."""

    def context(self, audit: Audit, c: Check) -> str:
        """The result depends on which version holds the alias."""
        version = audit.store.models.aliases(c.table).get(self.of(c).alias)
        return hashlib.sha256(f"{self.of(c).alias}={version}".encode()).hexdigest()[:16]

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        from andon.models import artifact
        from andon.models.train import LOSSES, evaluate

        spec = self.of(c)
        metrics = _metrics(ev, c)
        if isinstance(metrics, CheckResult):
            return metrics
        if spec.metric not in metrics:
            return _missing(ev, c, spec.metric, metrics)
        store, warehouse = ev.audit.store, ev.audit.warehouse
        version = store.models.aliases(c.table).get(spec.alias)
        threshold = {"by": spec.by, "alias": spec.alias}
        if version is None:
            return ev.result(c, True, None, threshold, f"no {spec.alias} yet: nothing to beat")
        champion = store.models.get(c.table, version)
        assert champion is not None
        if champion.fingerprint == ev.manifest.fingerprint:
            return ev.result(c, True, 0.0, threshold,
                             f"this model is the {spec.alias} (version {version})")
        manifest = warehouse.read_manifest(c.table, champion.fingerprint)
        if manifest is None:
            return ev.error(c, f"the {spec.alias}'s artifact (version {version}) is no "
                            "longer in the warehouse")
        try:
            model = artifact.load(warehouse, manifest, version)
            info = artifact.model_info(ev.manifest)
            import pandas as pd

            holdout = pd.read_parquet(warehouse.artifact_file(
                c.table, ev.manifest.fingerprint, str(info["holdout"])))
            missing = [f for f in model.features if f not in holdout.columns]
            if missing:
                return ev.error(c, f"the {spec.alias} (version {version}) needs column "
                                f"{missing[0]!r}, which the candidate's holdout lacks")
            theirs = evaluate(model.estimator, holdout[model.features], holdout[info["label"]])
        except AndonError as e:
            return ev.error(c, e.message)
        if spec.metric not in theirs:
            return _missing(ev, c, spec.metric, theirs)
        mine = metrics[spec.metric]
        delta = mine - theirs[spec.metric]
        if spec.metric in LOSSES:
            delta = -delta
        ok = delta >= spec.by
        result = ev.result(c, ok, delta, threshold,
                           f"{spec.metric} {mine:.4g} vs the {spec.alias}'s (version {version}) "
                           f"{theirs[spec.metric]:.4g} on the same holdout: "
                           f"{'better' if delta >= 0 else 'worse'} by {abs(delta):.4g}")
        return ev.with_spc(c, result)


def _candidate(ev: Evaluation, c: Check) -> tuple[LoadedModel, str] | CheckResult:
    """The model being checked, loaded, and its holdout file."""
    from andon.models import artifact

    info = _info(ev, c)
    if isinstance(info, CheckResult):
        return info
    found = ev.audit.store.models.by_fingerprint(c.table, ev.manifest.fingerprint)
    try:
        model = artifact.load(ev.audit.warehouse, ev.manifest,
                              found.version if found else None)
    except AndonError as e:
        return ev.error(c, e.message)
    holdout = ev.audit.warehouse.artifact_file(c.table, ev.manifest.fingerprint,
                                               str(info["holdout"]))
    return model, str(holdout)


def _schema(ev: Evaluation, table: str) -> list[str]:
    return [col for col, _ in ev.audit.manifests[table].schema]


class ModelDriftSpec(WithSpc):
    type: Literal["model_drift"]
    table: str
    max_psi: float = Field(default=0.2, gt=0)
    features: list[str] | None = None


class ModelDrift(CheckType[ModelDriftSpec]):
    name = "model_drift"
    spec = ModelDriftSpec
    family = "query"
    doc = ("The model's inputs and predictions on ``table`` (rows it scores, or scored) do "
           "not drift from its training rows: the largest PSI over ten bins at the training "
           "deciles, of each numeric feature (or only ``features``) and of the predictions, "
           "is at most ``max_psi``. The metric is that PSI; the message names what drifted.")
    example = "{type: model_drift, table: delay_latest_month, max_psi: 0.2, severity: warn}"

    def default_name(self, table: str, spec: ModelDriftSpec) -> str:
        return f"{table}.model_drift.{spec.table}"

    def reads(self, spec: ModelDriftSpec, table: str) -> list[str]:
        return [spec.table]

    def validate(self, c: Check, schema: Mapping[str, str],
                 other_schema: Mapping[str, str] | None = None) -> None:
        """The model's features are known once it is trained: judged when it runs."""

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        from andon.models.monitor import drift_of

        spec = self.of(c)
        loaded = _candidate(ev, c)
        if isinstance(loaded, CheckResult):
            return loaded
        model, holdout = loaded
        unknown = [f for f in spec.features or [] if f not in model.features]
        if unknown:
            return ev.error(c, f"model {c.table!r} has no feature {unknown[0]!r}; its "
                            f"features: {', '.join(model.features)}")
        try:
            results = drift_of(model, holdout, ev.audit.files(spec.table),
                               _schema(ev, spec.table), spec.table, ev.manifest.fingerprint)
        except AndonError as e:
            return ev.error(c, e.message)
        prefix = f"models.drift.{c.table}."
        psi = {r.check_name.removeprefix(prefix): float(r.metric or 0.0) for r in results
               if spec.features is None or r.check_name.removeprefix(prefix) in spec.features
               or r.check_name.startswith(prefix + "prediction.")}
        if not psi:
            return ev.error(c, f"{spec.table!r} has no numeric feature of model {c.table!r}")
        worst = max(psi, key=lambda k: psi[k])
        drifted = sorted(k for k, v in psi.items() if v > spec.max_psi)
        message = (f"PSI on {spec.table!r} vs the training rows: largest {psi[worst]:.3f} "
                   f"({worst}); " + (f"above {spec.max_psi:g}: {', '.join(drifted)}" if drifted
                                     else f"all {len(psi)} at most {spec.max_psi:g}"))
        return ev.with_spc(c, ev.result(c, not drifted, psi[worst],
                                        {"max_psi": spec.max_psi}, message))


class ModelPerformanceSpec(WithRange):
    type: Literal["model_performance"]
    metric: str
    scored: str
    labels: str
    key: str
    time: str
    label: str | None = None
    period: str = "month"


class ModelPerformance(CheckType[ModelPerformanceSpec]):
    name = "model_performance"
    spec = ModelPerformanceSpec
    family = "query"
    doc = ("Once labels arrive: ``labels`` joined by ``key`` to the ``scored`` rows (with "
           "``prediction``, ``model_version`` and ``time``), the model's ``metric`` "
           "(accuracy, roc_auc; rmse, mae) in the latest ``period`` that has labels is "
           "within [min, max].")
    example = ("{type: model_performance, metric: accuracy, min: 0.6, scored: delay_scored, "
               "labels: delay_latest_month, key: flight_id, time: event_timestamp, "
               "period: week}")

    def default_name(self, table: str, spec: ModelPerformanceSpec) -> str:
        return f"{table}.model_performance.{spec.metric}"

    def reads(self, spec: ModelPerformanceSpec, table: str) -> list[str]:
        return [spec.scored, spec.labels]

    def validate(self, c: Check, schema: Mapping[str, str],
                 other_schema: Mapping[str, str] | None = None) -> None:
        """The columns of the scored and label tables are checked when it runs."""

    def run(self, ev: Evaluation, c: Check) -> CheckResult:
        from andon.models.monitor import performance_of

        spec = self.of(c)
        info = _info(ev, c)
        if isinstance(info, CheckResult):
            return info
        labels = ev.audit.manifests[spec.labels]
        try:
            results = performance_of(
                c.table, str(info.get("task")), spec.scored, _schema(ev, spec.scored),
                ev.audit.files(spec.scored), spec.labels, _schema(ev, spec.labels),
                ev.audit.files(spec.labels), labels.fingerprint, key=spec.key, time=spec.time,
                label=spec.label or str(info.get("label")), period=spec.period)
        except AndonError as e:
            return ev.error(c, e.message)
        mine = [r for r in results if r.check_name.endswith(f".{spec.metric}")]
        if not mine:
            known = sorted({r.check_name.rsplit(".", 1)[1] for r in results})
            return ev.error(c, f"no metric {spec.metric!r} of model {c.table!r} on "
                            f"{spec.scored!r}; its metrics: {', '.join(known)}")
        latest = max(mine, key=lambda r: r.context)  # PERIOD@vVERSION: the newest period
        value = float(latest.metric or 0.0)
        ok, threshold = judge_range(spec, value)
        return ev.with_spc(c, ev.result(c, ok, value, threshold, latest.message))


GATES = (ModelMetric(), BeatsChampion(), ModelDrift(), ModelPerformance())
