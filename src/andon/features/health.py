"""Monitoring of features, recorded as check results (so check history, SPC and alerts see
them): the freshness of each materialised view, and the drift (PSI) between a training set
and the values the online store serves."""

from __future__ import annotations

import calendar
import hashlib
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from andon.features.catalog import Definitions
from andon.features.training import lit, q

if TYPE_CHECKING:
    from andon.engines.base import Session
    from andon.store.checks import NewCheckResult

PSI_WARN = 0.2  # the usual reading: < 0.1 stable, 0.1-0.2 moderate, > 0.2 significant shift
BINS = 10


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def freshness(defs: Definitions, state_dir: Path, now: float | None = None
              ) -> list[NewCheckResult]:
    """Per materialised view with a TTL: hours since its newest event; failed past the TTL."""
    from andon.store.checks import NewCheckResult

    now = time.time() if now is None else now
    out: list[NewCheckResult] = []
    for view in defs.views.values():
        meta_path = state_dir / f"{view.name}.json"
        if view.timestamp is None or not meta_path.exists():
            continue
        meta = json.loads(meta_path.read_text())
        latest = meta.get("latest_event")
        if latest is None:
            continue
        age_h = (now - calendar.timegm(time.strptime(latest, "%Y-%m-%dT%H:%M:%SZ"))) / 3600
        limit_h = view.ttl.total_seconds() / 3600 if view.ttl else None
        status = "recorded" if limit_h is None else ("failed" if age_h > limit_h else "passed")
        out.append(NewCheckResult(
            step=view.table, check_name=f"features.freshness.{view.name}",
            check_hash=_hash("freshness", view.fingerprint(), limit_h),
            check_type="feature_freshness", severity="warn", status=status,
            metric=round(age_h, 3), fingerprint=str(meta.get("artifact", "")), context="",
            threshold={"max_hours": limit_h} if limit_h is not None else None,
            message=f"newest value of view {view.name!r} is {age_h:,.1f} h old"
                    + (f" (TTL {limit_h:g} h)" if limit_h is not None else "")))
    return out


def psi(session: Session, expected_sql: str, actual_sql: str) -> float | None:
    """Population stability index of two numeric columns (``SELECT x``), over ten bins cut
    at the expected values' deciles; None when either side has no values."""
    cuts_row = session.execute(
        f"SELECT quantile_cont(x, [{', '.join(str(i / BINS) for i in range(1, BINS))}]) "
        f"FROM ({expected_sql}) WHERE x IS NOT NULL").fetchone()
    if cuts_row is None or cuts_row[0] is None:
        return None
    cuts = sorted(set(float(c) for c in cuts_row[0]))
    case = "CASE " + " ".join(f"WHEN x <= {c!r} THEN {i}" for i, c in enumerate(cuts)) \
        + f" ELSE {len(cuts)} END"

    def shares(sql: str) -> dict[int, float]:
        rows = session.execute(f"SELECT {case} AS b, count(*) FROM ({sql}) WHERE x IS NOT "
                               f"NULL GROUP BY b").fetchall()
        total = sum(int(r[1]) for r in rows)
        return {int(r[0]): int(r[1]) / total for r in rows} if total else {}

    e, a = shares(expected_sql), shares(actual_sql)
    if not e or not a:
        return None
    eps = 1e-4
    return sum((a.get(b, 0) - e.get(b, 0)) * math.log(max(a.get(b, 0), eps)
                                                        / max(e.get(b, 0), eps))
               for b in range(len(cuts) + 1))


def drift(session: Session, defs: Definitions, training: Path, state_dir: Path,
          views: Sequence[str] | None = None) -> list[NewCheckResult]:
    """PSI of each numeric feature of ``training`` (a training set file) against the values
    last materialised for serving; warn above 0.2."""
    from andon.features.training import scan
    from andon.store.checks import NewCheckResult

    source = scan(training)
    columns = {str(r[0]) for r in session.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    out: list[NewCheckResult] = []
    for view in defs.views.values():
        snapshot = state_dir / f"{view.name}.parquet"
        if (views and view.name not in views) or not snapshot.exists():
            continue
        meta = json.loads((state_dir / f"{view.name}.json").read_text())
        for f in view.features:
            if f.name not in columns or f.type not in ("integer", "double"):
                continue
            served = (f"SELECT CAST(json_extract(value, {lit('$.' + f.name)}) AS DOUBLE) AS x "
                      f"FROM read_parquet({lit(str(snapshot))})")
            trained = f"SELECT CAST({q(f.name)} AS DOUBLE) AS x FROM {source}"
            value = psi(session, trained, served)
            if value is None:
                continue
            status = "failed" if value > PSI_WARN else "passed"
            out.append(NewCheckResult(
                step=view.table, check_name=f"features.drift.{view.name}.{f.name}",
                check_hash=_hash("drift", view.fingerprint(), f.name),
                check_type="feature_drift", severity="warn", status=status,
                metric=round(value, 6), fingerprint=str(meta.get("artifact", "")),
                context=_hash(str(training)), threshold={"max_psi": PSI_WARN},
                message=f"PSI of {view.name}.{f.name}, training set vs served: {value:.3f}"))
    return out
