"""The read-only face of the store: what commands that only look (``runs``, ``env log``,
``tables``, ``checks history``…) are given. ``Store`` satisfies ``StoreReader``;
``Store.reader()`` wraps a store in ``ReadOnlyStore``, which has the read methods and nothing
else, and ``andon.store.open_reader`` opens one without creating or migrating anything.

Reading runs may close runs whose process is gone (``Store.close_dead_runs``): that is
housekeeping of the store, not a change a command asked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from andon.store import Store
    from andon.store.checks import (
        BaselinePoint,
        CheckRepository,
        CheckResultRecord,
        ProfileRecord,
    )
    from andon.store.environments import (
        CommitRecord,
        EnvironmentRecord,
        EnvironmentRepository,
        RefLogEntry,
    )

Row = dict[str, Any]


class EnvironmentReader(Protocol):
    """The reads of ``EnvironmentRepository``."""

    def get(self, name: str) -> EnvironmentRecord | None: ...
    def all(self) -> list[EnvironmentRecord]: ...
    def commit(self, commit_id: str) -> CommitRecord | None: ...
    def commit_steps(self, commit_id: str | None) -> dict[str, str]: ...
    def commits_with_prefix(self, prefix: str, limit: int = 2) -> list[str]: ...
    def parents(self, commit_id: str) -> list[str]: ...
    def log(self, environment: str) -> list[RefLogEntry]: ...
    def last_move_before(self, environment: str, when: float, *,
                         inclusive: bool = True) -> RefLogEntry | None: ...
    def first_move(self, environment: str) -> RefLogEntry | None: ...


class CheckReader(Protocol):
    """The reads of ``CheckRepository``: check history and profiles."""

    def latest(self, fingerprint: str, keys: Iterable[tuple[str, str]]
               ) -> dict[tuple[str, str], CheckResultRecord]: ...
    def latest_by_artifact(self, fingerprints: Iterable[str]
                           ) -> dict[str, list[CheckResultRecord]]: ...
    def series(self, name: str, *, environment: str | None = None,
               limit: int = 200) -> list[CheckResultRecord]: ...
    def baseline(self, name: str, environment: str | None,
                 limit: int) -> list[BaselinePoint]: ...
    def names(self) -> list[str]: ...
    def of_run(self, run_id: int) -> list[CheckResultRecord]: ...
    def profile(self, fingerprint: str) -> ProfileRecord | None: ...
    def profiles(self, step: str, limit: int = 50) -> list[ProfileRecord]: ...


class StoreReader(Protocol):
    @property
    def envs(self) -> EnvironmentReader: ...
    @property
    def checks(self) -> CheckReader: ...
    def runs(self, environment: str | None = None, limit: int = 20, *,
             status: str | None = None, before: int | None = None) -> list[Row]: ...
    def run(self, run_id: int) -> Row | None: ...
    def latest_run_id(self, environment: str | None = None) -> int | None: ...
    def step_runs(self, run_id: int) -> list[Row]: ...
    def logs(self, run_id: int) -> list[Row]: ...
    def artifacts(self, fingerprints: Iterable[str]) -> dict[str, Row]: ...
    def artifact(self, fingerprint: str) -> Row | None: ...
    def latest_artifact(self, step: str, code_hash: str) -> Row | None: ...
    def environment(self, name: str) -> Row | None: ...
    def environments(self) -> list[Row]: ...
    def commit_steps(self, commit_id: str | None) -> dict[str, str]: ...
    def commit(self, commit_id: str) -> Row | None: ...
    def ref_log(self, environment: str) -> list[Row]: ...
    def landed_files(self, source: str) -> list[Row]: ...
    def landed_file(self, source: str, sha256: str) -> Row | None: ...
    def rejects(self, *, parts: Iterable[str] | None = None, source: str | None = None,
                limit: int = 1000) -> list[Row]: ...
    def has_rejects_for(self, part: str) -> bool: ...
    def column_lineage(self, fingerprints: Iterable[str]) -> dict[str, Row]: ...


class ReadOnlyEnvironments:
    """Environments, commits and the ref log, read only."""

    def __init__(self, repo: EnvironmentRepository) -> None:
        self._repo = repo

    def get(self, name: str) -> EnvironmentRecord | None:
        return self._repo.get(name)

    def all(self) -> list[EnvironmentRecord]:
        return self._repo.all()

    def commit(self, commit_id: str) -> CommitRecord | None:
        return self._repo.commit(commit_id)

    def commit_steps(self, commit_id: str | None) -> dict[str, str]:
        return self._repo.commit_steps(commit_id)

    def commits_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        return self._repo.commits_with_prefix(prefix, limit)

    def parents(self, commit_id: str) -> list[str]:
        return self._repo.parents(commit_id)

    def log(self, environment: str) -> list[RefLogEntry]:
        return self._repo.log(environment)

    def last_move_before(self, environment: str, when: float, *,
                         inclusive: bool = True) -> RefLogEntry | None:
        return self._repo.last_move_before(environment, when, inclusive=inclusive)

    def first_move(self, environment: str) -> RefLogEntry | None:
        return self._repo.first_move(environment)


class ReadOnlyChecks:
    """Check history and profiles, read only."""

    def __init__(self, repo: CheckRepository) -> None:
        self._repo = repo

    def latest(self, fingerprint: str, keys: Iterable[tuple[str, str]]
               ) -> dict[tuple[str, str], CheckResultRecord]:
        return self._repo.latest(fingerprint, keys)

    def latest_by_artifact(self, fingerprints: Iterable[str]
                           ) -> dict[str, list[CheckResultRecord]]:
        return self._repo.latest_by_artifact(fingerprints)

    def series(self, name: str, *, environment: str | None = None,
               limit: int = 200) -> list[CheckResultRecord]:
        return self._repo.series(name, environment=environment, limit=limit)

    def baseline(self, name: str, environment: str | None, limit: int) -> list[BaselinePoint]:
        return self._repo.baseline(name, environment, limit)

    def names(self) -> list[str]:
        return self._repo.names()

    def of_run(self, run_id: int) -> list[CheckResultRecord]:
        return self._repo.of_run(run_id)

    def profile(self, fingerprint: str) -> ProfileRecord | None:
        return self._repo.profile(fingerprint)

    def profiles(self, step: str, limit: int = 50) -> list[ProfileRecord]:
        return self._repo.profiles(step, limit)


class ReadOnlyStore:
    """A store with its read methods only (see ``StoreReader``)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._envs = ReadOnlyEnvironments(store.envs)
        self._checks = ReadOnlyChecks(store.checks)

    @property
    def envs(self) -> ReadOnlyEnvironments:
        return self._envs

    @property
    def checks(self) -> ReadOnlyChecks:
        return self._checks

    def column_lineage(self, fingerprints: Iterable[str]) -> dict[str, Row]:
        return self._store.lineage.rows(fingerprints)

    def runs(self, environment: str | None = None, limit: int = 20, *,
             status: str | None = None, before: int | None = None) -> list[Row]:
        return self._store.runs(environment, limit, status=status, before=before)

    def run(self, run_id: int) -> Row | None:
        return self._store.run(run_id)

    def latest_run_id(self, environment: str | None = None) -> int | None:
        return self._store.latest_run_id(environment)

    def step_runs(self, run_id: int) -> list[Row]:
        return self._store.step_runs(run_id)

    def logs(self, run_id: int) -> list[Row]:
        return self._store.logs(run_id)

    def artifacts(self, fingerprints: Iterable[str]) -> dict[str, Row]:
        return self._store.artifacts(fingerprints)

    def artifact(self, fingerprint: str) -> Row | None:
        return self._store.artifact(fingerprint)

    def latest_artifact(self, step: str, code_hash: str) -> Row | None:
        return self._store.latest_artifact(step, code_hash)

    def environment(self, name: str) -> Row | None:
        return self._store.environment(name)

    def environments(self) -> list[Row]:
        return self._store.environments()

    def commit_steps(self, commit_id: str | None) -> dict[str, str]:
        return self._store.commit_steps(commit_id)

    def commit(self, commit_id: str) -> Row | None:
        return self._store.commit(commit_id)

    def ref_log(self, environment: str) -> list[Row]:
        return self._store.ref_log(environment)

    def landed_files(self, source: str) -> list[Row]:
        return self._store.landed_files(source)

    def landed_file(self, source: str, sha256: str) -> Row | None:
        return self._store.landed_file(source, sha256)

    def rejects(self, *, parts: Iterable[str] | None = None, source: str | None = None,
                limit: int = 1000) -> list[Row]:
        return self._store.rejects(parts=parts, source=source, limit=limit)

    def has_rejects_for(self, part: str) -> bool:
        return self._store.has_rejects_for(part)
