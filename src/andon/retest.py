"""``andon test``: run every check against an environment's current artifacts, no rebuild."""

from __future__ import annotations

from collections.abc import Sequence

from andon.checks.model import CheckResult
from andon.execution.artifacts import manifest_of
from andon.execution.checking import check_artifacts, flatten
from andon.project import Project
from andon.published import env_tables
from andon.warehouse import Manifest, Warehouse


def test_environment(project: Project, environment: str | None = None,
                     selection: Sequence[str] = ()) -> list[CheckResult]:
    """Evaluate the checks of the selected tables (all by default) again, whatever the history
    holds; results join the history."""
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
    return flatten(check_artifacts(project, environment, manifests, previous=previous,
                                   tables=chosen, force=True))
