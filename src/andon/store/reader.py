"""The read-only face of the store: what commands that only look (``runs``, ``env log``,
``tables``…) are given. ``Store`` satisfies ``StoreReader``; ``Store.reader()`` wraps a store
in ``ReadOnlyStore``, which has the read methods and nothing else.

Reading runs may close runs whose process is gone (``Store.close_dead_runs``): that is
housekeeping of the store, not a change a command asked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from andon.store import Store

Row = dict[str, Any]


class StoreReader(Protocol):
    def runs(self, environment: str | None = None, limit: int = 20) -> list[Row]: ...
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


class ReadOnlyStore:
    """A store with its read methods only (see ``StoreReader``)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def runs(self, environment: str | None = None, limit: int = 20) -> list[Row]:
        return self._store.runs(environment, limit)

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
