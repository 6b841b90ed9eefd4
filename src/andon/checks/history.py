"""Check results and profiles in the store: record, find, read series, acknowledge."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update

from andon.checks.model import CheckResult
from andon.errors import NotFound, did_you_mean
from andon.store import Row, Store
from andon.store import schema as t


def record(store: Store, results: Sequence[tuple[CheckResult, str]], *, run_id: int | None,
           environment: str | None) -> None:
    """Store results; each comes with the context hash of what it read."""
    if not results:
        return
    now = time.time()
    rows = [{
        "run_id": run_id, "environment": environment, "step": r.table, "check_name": r.name,
        "check_hash": r.check_hash, "check_type": r.type, "severity": r.severity,
        "status": r.status, "metric": r.metric, "failing": r.failing,
        "threshold": r.threshold, "message": r.message, "sample": list(r.sample),
        "spc": r.spc, "fingerprint": r.fingerprint, "context": context, "at": now,
        "incident": bool(r.spc and r.spc.get("violations")), "acknowledged": False,
    } for r, context in results]
    with store.engine.begin() as conn:
        conn.execute(insert(t.check_results), rows)


def find(store: Store, check_hash: str, fingerprint: str, context: str) -> Row | None:
    q = (select(t.check_results)
         .where(t.check_results.c.check_hash == check_hash,
                t.check_results.c.fingerprint == fingerprint,
                t.check_results.c.context == context)
         .order_by(t.check_results.c.id.desc()).limit(1))
    with store.engine.connect() as conn:
        r = conn.execute(q).first()
        return dict(r._mapping) if r else None


def find_all(store: Store, fingerprint: str, keys: list[tuple[str, str]]
             ) -> dict[tuple[str, str], Row]:
    """The latest result for each (check hash, context) on one artifact, in one query."""
    if not keys:
        return {}
    hashes = sorted({h for h, _ in keys})
    q = (select(t.check_results)
         .where(t.check_results.c.fingerprint == fingerprint,
                t.check_results.c.check_hash.in_(hashes))
         .order_by(t.check_results.c.id))
    wanted = set(keys)
    out: dict[tuple[str, str], Row] = {}
    with store.engine.connect() as conn:
        for r in conn.execute(q):
            key = (r.check_hash, r.context)
            if key in wanted:
                out[key] = dict(r._mapping)  # ordered by id: the latest wins
    return out


def series(store: Store, name: str, *, environment: str | None = None,
           limit: int = 200) -> list[Row]:
    """A check's results, oldest first. The same verdict on the same artifact, repeated by
    re-tests, shows once (its latest)."""
    q = (select(t.check_results).where(t.check_results.c.check_name == name)
         .order_by(t.check_results.c.id.desc()).limit(limit * 4))
    if environment:
        q = q.where(t.check_results.c.environment == environment)
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    seen: set[tuple[Any, ...]] = set()
    out: list[Row] = []
    for r in rows:  # newest first
        key = (r["environment"], r["fingerprint"], r["check_hash"], r["status"], r["metric"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return list(reversed(out[:limit]))


def baseline(store: Store, name: str, environment: str | None, limit: int) -> list[tuple[float,
                                                                                          float]]:
    """(time, metric) of past results usable as an SPC baseline: incidents are left out
    unless a user acknowledged them as expected."""
    rows = series(store, name, environment=environment, limit=limit * 3)
    latest: dict[str, Row] = {}  # one point per artifact: re-tests do not weigh twice
    for r in rows:
        latest.pop(r["fingerprint"], None)
        latest[r["fingerprint"]] = r
    return [(r["at"], float(r["metric"])) for r in latest.values()
            if r["metric"] is not None and (not r["incident"] or r["acknowledged"])
            and r["status"] != "error"][-limit:]


def check_names(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(t.check_results.c.check_name).distinct())]


def acknowledge(store: Store, name: str, *, result_id: int | None, who: str,
                note: str) -> Row:
    """Mark a result (the latest of ``name`` by default) as expected: it joins the baseline."""
    rows = series(store, name, limit=1000)
    if not rows:
        hint = did_you_mean(name, check_names(store))
        raise NotFound(f"no results for check {name!r}", hint=hint or "run the checks first")
    target = rows[-1] if result_id is None else next((r for r in rows if r["id"] == result_id),
                                                      None)
    if target is None:
        raise NotFound(f"check {name!r} has no result {result_id}",
                       hint="see the ids with: andon checks history NAME")
    with store.engine.begin() as conn:
        conn.execute(update(t.check_results).where(t.check_results.c.id == target["id"])
                     .values(acknowledged=True, ack_by=who, ack_note=note))
    target.update(acknowledged=True, ack_by=who, ack_note=note)
    return target


def run_results(store: Store, run_id: int) -> list[Row]:
    q = select(t.check_results).where(t.check_results.c.run_id == run_id).order_by(
        t.check_results.c.id)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def save_profile(store: Store, fingerprint: str, step: str, run_id: int | None, rows: int,
                 profile: dict[str, Any]) -> None:
    with store.engine.begin() as conn:
        exists = conn.execute(select(t.profiles.c.fingerprint).where(
            t.profiles.c.fingerprint == fingerprint)).first()
        if exists is None:
            conn.execute(insert(t.profiles).values(fingerprint=fingerprint, step=step,
                                                   run_id=run_id, at=time.time(), rows=rows,
                                                   profile=profile))


def profile_of(store: Store, fingerprint: str) -> Row | None:
    with store.engine.connect() as conn:
        r = conn.execute(select(t.profiles).where(t.profiles.c.fingerprint == fingerprint)).first()
        return dict(r._mapping) if r else None


def profiles(store: Store, step: str, limit: int = 50) -> list[Row]:
    q = select(t.profiles).where(t.profiles.c.step == step).order_by(
        t.profiles.c.at.desc()).limit(limit)
    with store.engine.connect() as conn:
        return list(reversed([dict(r._mapping) for r in conn.execute(q)]))
