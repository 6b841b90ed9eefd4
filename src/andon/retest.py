"""``andon test``: run every check against an environment's current artifacts, no rebuild."""

from __future__ import annotations

from collections.abc import Sequence

from andon.checks import history
from andon.checks.model import CheckResult
from andon.checks.run import Audit, evaluate, ready
from andon.engines.duckdb import DuckDBEngine
from andon.project import Project
from andon.published import env_tables
from andon.runner import artifact_lookups, manifest_of
from andon.secrets import stored_values
from andon.warehouse import Manifest, Warehouse


def test_environment(project: Project, environment: str | None = None,
                     selection: Sequence[str] = ()) -> list[CheckResult]:
    """Evaluate the checks of the selected tables (all by default); results join the history."""
    environment = environment or project.config.default_environment
    published = env_tables(project, environment)
    manifests = {name: manifest_of(row) for name, row in published.items()}
    chosen = set(project.dag.select(selection)) if selection else set(manifests)
    warehouse = Warehouse(project.warehouse)
    for name in sorted(chosen & set(manifests)):  # a changed file fails the test, unread
        warehouse.verify(manifests[name], full=True)
    store = project.store
    env = store.environment(environment)
    parent = store.commit(env["commit_id"]) if env and env["commit_id"] else None
    before = store.commit_steps(parent["parent_id"]) if parent else {}
    prev_rows = store.artifacts(before.values())
    previous: dict[str, Manifest | None] = {}
    for name, fp in before.items():
        if name in manifests and fp != manifests[name].fingerprint and fp in prev_rows:
            previous[name] = manifest_of(prev_rows[fp])

    manifest_at, in_env = artifact_lookups(store)
    engine = DuckDBEngine(threads=project.config.threads,
                          memory_limit=project.config.memory_limit)
    audit = Audit(store=store, engine=engine, warehouse=warehouse,
                  environment=environment, run_id=None, manifests=manifests, previous=previous,
                  pii=project.pii_of, other_env_manifest=in_env, baseline_manifest=manifest_at,
                  force=True, secrets=stored_values(store, project.root))
    results: list[CheckResult] = []
    try:
        for table in project.dag.order:
            if table not in chosen or table not in manifests:
                continue
            checks = [c for c in project.checks_of(table) if ready(audit, c)]
            if not checks:
                continue
            outcomes = evaluate(audit, table, checks, with_profile=False)
            history.record(store, [(r, ctx) for r, ctx, _ in outcomes], run_id=None,
                           environment=environment)
            results += [r for r, _, _ in outcomes]
    finally:
        engine.close()
    return results
