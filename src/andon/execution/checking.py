"""The check stage: evaluate the checks of artifacts, one table at a time. A run checks each
artifact as it is built; promotion checks a candidate and ``andon test`` an environment,
both through ``check_artifacts``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.checks.model import Check, CheckResult
from andon.checks.run import Audit, Outcome, evaluate, ready
from andon.checks.summary import tally
from andon.errors import AndonError, StepError
from andon.execution.artifacts import artifact_lookups, manifest_of
from andon.execution.cancel import CancelToken
from andon.secrets import get_secret, stored_values
from andon.warehouse import Manifest, Warehouse

if TYPE_CHECKING:
    from andon.engines import Engine
    from andon.project import Project
    from andon.store import Row

log = logging.getLogger("andon.checks")


class CheckFailed(StepError):
    """An error-severity check failed: the artifact is rejected and the line stops."""


def check_failure(failed: list[CheckResult]) -> CheckFailed:
    first = failed[0]
    lines = []
    for r in failed:
        verb = "could not run" if r.status == "error" else "failed"
        lines.append(f"check {r.name!r} ({r.type}) {verb} on {r.table}: {r.message}")
        for row in r.sample[:3]:
            lines.append("    e.g. " + ", ".join(f"{k}={v}" for k, v in list(row.items())[:8]))
    return CheckFailed(
        f"{tally(failed)}: " + ", ".join(r.name for r in failed),
        step=first.table,
        detail="\n".join(lines),
        hint="the artifact was rejected and nothing downstream was published; fix the data "
             "or the step, or lower the check's severity",
    )


def engine_options(project: Project) -> dict[str, Any]:
    """``engine_options`` of andon.yaml, each ``<name>_secret: SECRET`` given to the engine
    as ``<name>``: the secret's value for the project's environment."""
    out: dict[str, Any] = {}
    for key, value in project.config.engine_options.items():
        if key.endswith("_secret") and isinstance(value, str):
            out[key.removesuffix("_secret")] = get_secret(project.store, project.root, value,
                                                          project.environment)
        else:
            out[key] = value
    return out


def open_engine(project: Project, warehouse: Warehouse) -> Engine:
    """The engine steps and checks run on: it reads only the warehouse's artifacts."""
    from andon.engines import create

    config = project.config
    if config.engine != "duckdb":
        return create(config.engine, warehouse=warehouse, threads=config.threads,
                      **engine_options(project))
    return create(threads=config.threads, memory_limit=config.memory_limit,
                  allowed=[warehouse.root])


def reading_engine(project: Project, warehouse: Warehouse, artifacts: Iterable[Row],
                   files: Iterable[Path]) -> Engine:
    """An engine that reads stored ``artifacts`` (``andon show``, ``query``, ``profile``):
    DuckDB confined to their ``files`` when they are all Parquet, whichever engine built
    them; else the project's engine, whose database holds what their files stand for."""
    from andon.engines import create

    if all((a.get("format") or "parquet") == "parquet" for a in artifacts):
        return create(threads=project.config.threads, allowed=list(files))
    return open_engine(project, warehouse)


def show_environment(project: Project, environment: str) -> None:
    """After the store moved ``environment``: the engine shows it as it now is to readers
    of its own database (PostgreSQL: a schema of views, switched in one transaction)."""
    store = project.store
    env = store.environment(environment)
    steps = store.commit_steps(env["commit_id"]) if env and env["commit_id"] else {}
    rows = store.artifacts(steps.values())  # one query, whatever the number of tables
    tables = {table: manifest_of(rows[fp]).location for table, fp in steps.items()
              if fp in rows}
    from andon.engines import EngineError

    engine = open_engine(project, Warehouse(project.warehouse))
    try:
        engine.publish(environment, tables)
    except EngineError as e:
        raise AndonError(
            f"environment {environment!r} moved, but the engine could not show it to its "
            f"readers: {e.first_line}",
            hint="fix the engine's database, then run again (nothing to build): its tables "
                 "are shown again whole") from e
    finally:
        engine.close()


def make_audit(project: Project, engine: Engine, warehouse: Warehouse, environment: str,
               manifests: Mapping[str, Manifest], *, previous: Mapping[str, Manifest | None],
               run_id: int | None = None, force: bool = False) -> Audit:
    """What checks read: ``manifests`` (the artifacts checked) and ``previous`` (each table's
    artifact before, for history checks)."""
    from andon.catalog import AuditPii

    store = project.store
    at_commit, in_env = artifact_lookups(store)
    audit = Audit(store=store, engine=engine, warehouse=warehouse, environment=environment,
                  run_id=run_id, manifests=dict(manifests), previous=dict(previous),
                  other_env_manifest=in_env, baseline_manifest=at_commit,
                  force=force, secrets=stored_values(store, project.root))
    audit.pii = AuditPii(project, audit)  # declared, flowed and detected PII columns
    return audit


class Checker:
    """Evaluates checks against one audit and keeps every outcome; thread-safe, so a run
    checks artifacts from its worker threads as they are built."""

    def __init__(self, audit: Audit) -> None:
        self.audit = audit
        self.lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self._unrecorded: list[tuple[CheckResult, str]] = []

    def add_manifest(self, table: str, manifest: Manifest) -> None:
        with self.lock:
            self.audit.manifests = {**self.audit.manifests, table: manifest}

    def classify(self, table: str) -> None:
        """Find the PII columns of the table's artifact now (classified once, stored per
        fingerprint): its check samples, its alerts and later look-ups mask them. A
        failure here is only logged: the checks' samples ask again, and fail closed."""
        try:
            self.audit.pii(table)
        except Exception as e:
            log.warning("PII classification of %s failed: %s: %s", table, type(e).__name__, e)

    def ready(self, check: Check) -> bool:
        return ready(self.audit, check)

    def evaluate(self, table: str, checks: list[Check], *, profile: bool = False,
                 fresh: bool = False) -> list[CheckResult]:
        outcomes = evaluate(self.audit, table, checks, with_profile=profile, fresh=fresh)
        with self.lock:
            self.outcomes.extend(outcomes)
            self._unrecorded.extend((r, ctx) for r, ctx, new in outcomes if new)
        return [r for r, _, _ in outcomes]

    def discard_unrecorded(self, which: Callable[[CheckResult], bool]) -> None:
        """Keep the results ``which`` selects out of the check history."""
        with self.lock:
            self._unrecorded = [(r, ctx) for r, ctx in self._unrecorded if not which(r)]

    def unrecorded(self) -> list[tuple[CheckResult, str]]:
        """The fresh results not yet taken for the check history."""
        with self.lock:
            out, self._unrecorded = self._unrecorded, []
        return out

    @property
    def results(self) -> list[CheckResult]:
        with self.lock:
            return [r for r, _, _ in self.outcomes]

    def fresh_results(self) -> list[CheckResult]:
        with self.lock:
            return [r for r, _, new in self.outcomes if new]


def check_artifacts(project: Project, environment: str, manifests: Mapping[str, Manifest], *,
                    previous: Mapping[str, Manifest | None], tables: Iterable[str] | None = None,
                    force: bool = False, record: bool = True,
                    token: CancelToken | None = None) -> dict[str, list[CheckResult]]:
    """Every ready check of ``tables`` (default: every table of ``manifests``) on exactly these
    artifacts, in DAG order; results by table. ``force`` evaluates again what the history
    already judged; ``record`` adds fresh results to the check history of ``environment``."""
    from andon.checks import history

    wanted = set(manifests) if tables is None else set(tables) & set(manifests)
    warehouse = Warehouse(project.warehouse)
    engine = open_engine(project, warehouse)
    token = token or CancelToken()
    stop_interrupting = token.on_cancel(engine.interrupt)
    checker = Checker(make_audit(project, engine, warehouse, environment, manifests,
                                 previous=previous, force=force))
    out: dict[str, list[CheckResult]] = {}
    try:
        for table in project.dag.order:
            if table not in wanted:
                continue
            token.raise_if_cancelled()
            checks = [c for c in project.checks_of(table) if checker.ready(c)]
            if not checks:
                continue
            out[table] = checker.evaluate(table, checks)
            if record:
                history.record(project.store, checker.unrecorded(), run_id=None,
                               environment=environment)
    finally:
        stop_interrupting()
        engine.close()
    token.raise_if_cancelled()
    return out


def flatten(by_table: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    return [r for results in by_table.values() for r in results]


def evaluation_failed(table: str, e: Exception) -> AndonError:
    """The engine failed under the checks: reported on the step, nothing published."""
    return StepError(f"checks could not run: {type(e).__name__}: {e}", step=table)
