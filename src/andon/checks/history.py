"""Check results and profiles of the checks engine, kept in the store (``store.checks``).

The checks engine speaks ``CheckResult``; the store speaks its own records. This module is
the translation between them, and nothing else: the queries live in ``andon.store.checks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from andon.checks.model import CheckResult
from andon.errors import NotFound, did_you_mean
from andon.store import Row, Store
from andon.store.checks import CheckResultRecord, NewCheckResult, ProfileRecord


def record(store: Store, results: Sequence[tuple[CheckResult, str]], *, run_id: int | None,
           environment: str | None) -> None:
    """Store results; each comes with the context hash of what it read."""
    store.checks.add([NewCheckResult(
        step=r.table, check_name=r.name, check_hash=r.check_hash, check_type=r.type,
        severity=r.severity, status=r.status, metric=r.metric, fingerprint=r.fingerprint,
        context=context, failing=r.failing, threshold=r.threshold, message=r.message,
        sample=r.sample, spc=r.spc) for r, context in results],
        run_id=run_id, environment=environment)


def find_all(store: Store, fingerprint: str, keys: list[tuple[str, str]]
             ) -> dict[tuple[str, str], Row]:
    """The latest result for each (check hash, context) on one artifact, as store rows."""
    return {k: r.as_dict() for k, r in store.checks.latest(fingerprint, keys).items()}


def series(store: Store, name: str, *, environment: str | None = None,
           limit: int = 200) -> list[CheckResultRecord]:
    """A check's results, oldest first (see ``CheckRepository.series``)."""
    return store.checks.series(name, environment=environment, limit=limit)


def baseline(store: Store, name: str, environment: str | None, limit: int
             ) -> list[tuple[float, float]]:
    """(epoch seconds, metric) of the past results usable as an SPC baseline."""
    return [(p.at.timestamp(), p.metric)
            for p in store.checks.baseline(name, environment, limit)]


def acknowledge(store: Store, name: str, *, result_id: int | None, who: str,
                note: str) -> CheckResultRecord:
    """Mark a result (the latest of ``name`` by default) as expected: it joins the baseline."""
    rows = store.checks.series(name, limit=1000)
    if not rows:
        hint = did_you_mean(name, store.checks.names())
        raise NotFound(f"no results for check {name!r}", hint=hint or "run the checks first")
    target = rows[-1] if result_id is None else next((r for r in rows if r.id == result_id),
                                                      None)
    done = store.checks.acknowledge(target.id, who=who, note=note) if target else None
    if done is None:
        raise NotFound(f"check {name!r} has no result {result_id}",
                       hint="see the ids with: andon checks history NAME")
    return done


def save_profile(store: Store, fingerprint: str, step: str, run_id: int | None, rows: int,
                 profile: dict[str, Any]) -> None:
    store.checks.save_profile(fingerprint, step, run_id, rows, profile)


def profile_of(store: Store, fingerprint: str) -> ProfileRecord | None:
    return store.checks.profile(fingerprint)


def profiles(store: Store, step: str, limit: int = 50) -> list[ProfileRecord]:
    return store.checks.profiles(step, limit)
