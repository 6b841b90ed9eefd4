"""Check history in the store: results, profiles, the SPC baseline and acknowledgements.

Every check result is kept with its numeric metric and the context hash of what it read, so a
result is reused while nothing it read changed, and history-based checks read their past here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from andon.store import schema as t
from andon.store.clock import utc


@dataclass(frozen=True)
class NewCheckResult:
    """A check result to record: the outcome of one check on one artifact, and the hash of
    the other artifacts it read (``context``)."""

    step: str
    check_name: str
    check_hash: str
    check_type: str
    severity: str
    status: str  # passed|failed|recorded|error
    metric: float | None
    fingerprint: str
    context: str
    failing: int | None = None
    threshold: Mapping[str, Any] | None = None
    message: str = ""
    sample: Sequence[Mapping[str, Any]] = ()
    spc: Mapping[str, Any] | None = None

    @property
    def incident(self) -> bool:
        """SPC found the metric out of control: left out of the baseline unless acknowledged."""
        return bool(self.spc and self.spc.get("violations"))


@dataclass(frozen=True)
class CheckResultRecord:
    """One recorded check result."""

    id: int
    run_id: int | None
    environment: str | None
    step: str
    check_name: str
    check_hash: str
    check_type: str
    severity: str
    status: str
    metric: float | None
    failing: int | None
    threshold: dict[str, Any] | None
    message: str | None
    sample: tuple[dict[str, Any], ...]
    spc: dict[str, Any] | None
    fingerprint: str
    context: str
    at: datetime
    incident: bool
    acknowledged: bool
    ack_by: str | None
    ack_note: str | None

    def as_dict(self) -> dict[str, Any]:
        """The row as the store holds it (time as epoch seconds)."""
        return {"id": self.id, "run_id": self.run_id, "environment": self.environment,
                "step": self.step, "check_name": self.check_name,
                "check_hash": self.check_hash, "check_type": self.check_type,
                "severity": self.severity, "status": self.status, "metric": self.metric,
                "failing": self.failing, "threshold": self.threshold, "message": self.message,
                "sample": list(self.sample), "spc": self.spc, "fingerprint": self.fingerprint,
                "context": self.context, "at": self.at.timestamp(), "incident": self.incident,
                "acknowledged": self.acknowledged, "ack_by": self.ack_by,
                "ack_note": self.ack_note}


@dataclass(frozen=True)
class ProfileRecord:
    """The profile of one artifact: row count and per-column statistics."""

    fingerprint: str
    step: str
    run_id: int | None
    at: datetime
    rows: int
    profile: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BaselinePoint:
    """One past metric of a check usable as an SPC baseline."""

    at: datetime
    metric: float


def _result(r: Any) -> CheckResultRecord:
    return CheckResultRecord(
        id=int(r.id), run_id=r.run_id, environment=r.environment, step=r.step,
        check_name=r.check_name, check_hash=r.check_hash, check_type=r.check_type,
        severity=r.severity, status=r.status,
        metric=float(r.metric) if r.metric is not None else None,
        failing=int(r.failing) if r.failing is not None else None,
        threshold=dict(r.threshold) if r.threshold is not None else None, message=r.message,
        sample=tuple(dict(s) for s in r.sample or ()),
        spc=dict(r.spc) if r.spc is not None else None, fingerprint=r.fingerprint,
        context=r.context, at=utc(r.at), incident=bool(r.incident),
        acknowledged=bool(r.acknowledged), ack_by=r.ack_by, ack_note=r.ack_note)


def _profile(r: Any) -> ProfileRecord:
    return ProfileRecord(r.fingerprint, r.step, r.run_id, utc(r.at), int(r.rows),
                         dict(r.profile or {}))


class CheckRepository:
    """Reads and writes of check results and profiles."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # results ------------------------------------------------------------------------------

    def add(self, results: Sequence[NewCheckResult], *, run_id: int | None,
            environment: str | None) -> None:
        """Record results of one run (or test, or promotion) in one transaction."""
        if not results:
            return
        now = time.time()
        rows = [{
            "run_id": run_id, "environment": environment, "step": r.step,
            "check_name": r.check_name, "check_hash": r.check_hash, "check_type": r.check_type,
            "severity": r.severity, "status": r.status, "metric": r.metric,
            "failing": r.failing, "threshold": dict(r.threshold or {}), "message": r.message,
            "sample": [dict(s) for s in r.sample], "spc": dict(r.spc) if r.spc else None,
            "fingerprint": r.fingerprint, "context": r.context, "at": now,
            "incident": r.incident, "acknowledged": False,
        } for r in results]
        with self.engine.begin() as conn:
            conn.execute(insert(t.check_results), rows)

    def latest(self, fingerprint: str, keys: Iterable[tuple[str, str]]
               ) -> dict[tuple[str, str], CheckResultRecord]:
        """The latest result for each (check hash, context) on one artifact, in one query."""
        wanted = set(keys)
        if not wanted:
            return {}
        c = t.check_results.c
        q = (select(t.check_results)
             .where(c.fingerprint == fingerprint, c.check_hash.in_(sorted({h for h, _ in wanted})))
             .order_by(c.id))
        out: dict[tuple[str, str], CheckResultRecord] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(q):
                if (r.check_hash, r.context) in wanted:
                    out[(r.check_hash, r.context)] = _result(r)  # ordered by id: latest wins
        return out

    def latest_by_artifact(self, fingerprints: Iterable[str]
                           ) -> dict[str, list[CheckResultRecord]]:
        """Artifact fingerprint → the latest result of each check judged on it, by name."""
        fps = sorted(set(fingerprints))
        c = t.check_results.c
        latest: dict[tuple[str, str], CheckResultRecord] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(fps), 500):
                q = (select(t.check_results).where(c.fingerprint.in_(fps[i:i + 500]))
                     .order_by(c.id))
                for r in conn.execute(q):
                    latest[(r.fingerprint, r.check_name)] = _result(r)  # the latest wins
        out: dict[str, list[CheckResultRecord]] = {}
        for (fp, _name), record in sorted(latest.items()):
            out.setdefault(fp, []).append(record)
        return out

    def series(self, name: str, *, environment: str | None = None,
               limit: int = 200) -> list[CheckResultRecord]:
        """A check's results, oldest first. The same verdict on the same artifact, repeated
        by re-tests, shows once (its latest)."""
        c = t.check_results.c
        q = select(t.check_results).where(c.check_name == name)
        if environment:
            q = q.where(c.environment == environment)
        q = q.order_by(c.id.desc()).limit(limit * 4)
        with self.engine.connect() as conn:
            rows = [_result(r) for r in conn.execute(q)]
        seen: set[tuple[Any, ...]] = set()
        out: list[CheckResultRecord] = []
        for r in rows:  # newest first
            key = (r.environment, r.fingerprint, r.check_hash, r.status, r.metric)
            if key not in seen:
                seen.add(key)
                out.append(r)
        return list(reversed(out[:limit]))

    def baseline(self, name: str, environment: str | None, limit: int) -> list[BaselinePoint]:
        """Past metrics usable as an SPC baseline, oldest first: one point per artifact (a
        re-test does not weigh twice), incidents left out unless a user acknowledged them as
        expected, results of checks that could not run left out."""
        latest: dict[str, CheckResultRecord] = {}
        for r in self.series(name, environment=environment, limit=limit * 3):
            latest.pop(r.fingerprint, None)
            latest[r.fingerprint] = r
        return [BaselinePoint(r.at, r.metric) for r in latest.values()
                if r.metric is not None and (not r.incident or r.acknowledged)
                and r.status != "error"][-limit:]

    def names(self) -> list[str]:
        """Every check name with a recorded result."""
        with self.engine.connect() as conn:
            return sorted(str(r[0]) for r in conn.execute(
                select(t.check_results.c.check_name).distinct()))

    def of_run(self, run_id: int) -> list[CheckResultRecord]:
        c = t.check_results.c
        q = select(t.check_results).where(c.run_id == run_id).order_by(c.id)
        with self.engine.connect() as conn:
            return [_result(r) for r in conn.execute(q)]

    def acknowledge(self, result_id: int, *, who: str, note: str) -> CheckResultRecord | None:
        """Mark a result as expected (it joins the SPC baseline); None: no such result."""
        c = t.check_results.c
        with self.engine.begin() as conn:
            done = conn.execute(update(t.check_results).where(c.id == result_id)
                                .values(acknowledged=True, ack_by=who, ack_note=note)).rowcount
            if not done:
                return None
            return _result(conn.execute(select(t.check_results).where(c.id == result_id))
                           .one())

    # profiles -----------------------------------------------------------------------------

    def save_profile(self, fingerprint: str, step: str, run_id: int | None, rows: int,
                     profile: Mapping[str, Any]) -> None:
        """Keep the profile of an artifact; the first one recorded stays (an artifact never
        changes, so neither does its profile)."""
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
        add = dialect.insert(t.profiles).values(
            fingerprint=fingerprint, step=step, run_id=run_id, at=time.time(), rows=rows,
            profile=dict(profile)).on_conflict_do_nothing(index_elements=["fingerprint"])
        with self.engine.begin() as conn:
            conn.execute(add)

    def profile(self, fingerprint: str) -> ProfileRecord | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(t.profiles).where(
                t.profiles.c.fingerprint == fingerprint)).first()
        return _profile(r) if r else None

    def profiles(self, step: str, limit: int = 50) -> list[ProfileRecord]:
        """The profiles of a table's last ``limit`` artifacts, oldest first."""
        p = t.profiles.c
        q = select(t.profiles).where(p.step == step).order_by(p.at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return list(reversed([_profile(r) for r in conn.execute(q)]))
