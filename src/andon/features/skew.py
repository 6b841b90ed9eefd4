"""Training-serving skew: a sample of the vectors the online store serves is logged, off the
request's path, and later compared with the offline (point-in-time) values of the same keys
at the same times. The comparison is recorded as a check result with history.

The log: JSON lines under ``.andon/features/ENV/served/``, one file per reader process, at
most ``ROWS_PER_FILE`` lines per file and ``MAX_FILES`` files (the oldest are deleted). A
read that is sampled costs one ``random()`` and one ``put_nowait`` of references; when the
writer falls behind, records are dropped (and counted), never waited for.
"""

from __future__ import annotations

import json
import math
import os
import queue
import random
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from andon.features.catalog import Definitions, Feature, FeatureView
from andon.features.training import lit, q

if TYPE_CHECKING:
    from andon.engines.base import Session
    from andon.store.checks import NewCheckResult

FOLDER = "served"
ROWS_PER_FILE = 50_000
MAX_FILES = 20
QUEUE_SIZE = 10_000  # logged requests waiting for the writer; beyond it they are dropped
ENTITIES_PER_REQUEST = 100  # of a sampled request, the first ones are logged
COMPARED = 20_000  # the newest logged values a skew check compares
_STOP = object()


def served_dir(state_dir: Path) -> Path:
    return state_dir / FOLDER


class ServedLog:
    """Logs a sample of served vectors from a background thread."""

    def __init__(self, folder: Path, rate: float) -> None:
        self.folder = folder
        self.rate = rate
        self.dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def sampled(self) -> bool:
        return self.rate > 0 and (self.rate >= 1 or random.random() < self.rate)

    def offer(self, at: float, entities: Sequence[Mapping[str, Any]],
              views: Sequence[FeatureView], values: Sequence[Sequence[Any]],
              statuses: Sequence[Sequence[str]]) -> None:
        """Queue one served request: its entities and, per view read, the values served
        (None: missing or expired) and their status. Only references are queued."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._write, daemon=True,
                                                    name="andon-served-log")
                    self._thread.start()
        try:
            self._queue.put_nowait((at, entities, views, values, statuses))
        except queue.Full:
            self.dropped += 1

    def _write(self) -> None:
        out: IO[str] | None = None
        lines = 0
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                if out is None or lines >= ROWS_PER_FILE:
                    if out is not None:
                        out.close()
                    out, lines = self._open(), 0
                lines += _write_request(out, *item)
                if self._queue.empty():
                    out.flush()  # readers of the log see what was served so far
        except OSError:
            self.dropped += 1  # a full disk must not break serving: the log is a sample
        finally:
            if out is not None:
                out.close()

    def _open(self) -> IO[str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        files = sorted(self.folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        for old in files[:max(0, len(files) - MAX_FILES + 1)]:
            old.unlink(missing_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        return (self.folder / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl").open(
            "a", encoding="utf-8")

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None


def _write_request(out: IO[str], at: float, entities: Sequence[Mapping[str, Any]],
                   views: Sequence[FeatureView], values: Sequence[Sequence[Any]],
                   statuses: Sequence[Sequence[str]]) -> int:
    when = datetime.fromtimestamp(at, UTC).replace(tzinfo=None).isoformat()
    n = 0
    for i, entity in enumerate(entities[:ENTITIES_PER_REQUEST]):
        for j, view in enumerate(views):
            found = values[j][i]
            out.write(json.dumps({
                "at": when, "view": view.name,
                "keys": {k: entity.get(k) for k in view.join_keys}, "status": statuses[j][i],
                "values": {f.name: None if found is None else found.get(f.name)
                           for f in view.features}}, default=str) + "\n")
            n += 1
    return n


def read_served(folder: Path, limit: int = COMPARED) -> list[dict[str, Any]]:
    """The newest ``limit`` logged values, oldest first (a line cut short is skipped)."""
    if not folder.is_dir():
        return []
    records: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True):
        with path.open(encoding="utf-8") as f:
            lines = f.readlines()
        for line in reversed(lines):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
            if len(records) >= limit:
                return records[::-1]
    return records[::-1]


@dataclass(frozen=True)
class Mismatch:
    feature: str
    keys: dict[str, Any]
    at: str
    served: Any
    offline: Any
    kind: str  # "value" or "type"

    def describe(self) -> str:
        keys = ", ".join(f"{k}={v!r}" for k, v in self.keys.items())
        if self.kind == "type":
            return (f"{self.feature} for {keys} at {self.at}: served a "
                    f"{type(self.served).__name__} ({self.served!r}), declared "
                    f"{self.offline}")
        return (f"{self.feature} for {keys} at {self.at}: served {self.served!r}, offline "
                f"{self.offline!r}")


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,), "integer": (int,), "double": (int, float), "string": (str,),
    "date": (str,), "timestamp": (str,)}


def _type_ok(feature: Feature, value: Any) -> bool:
    if value is None:
        return True
    if feature.type != "boolean" and isinstance(value, bool):
        return False
    return isinstance(value, _PY_TYPES[feature.type])


def _same(served: Any, offline: Any) -> bool:
    if served is None or offline is None:
        return served is None and offline is None
    if isinstance(offline, float) or isinstance(served, float):
        try:
            return math.isclose(float(served), float(offline), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    if isinstance(offline, bool) or isinstance(served, bool):
        return served is offline
    if isinstance(offline, int) and isinstance(served, int):
        return served == offline
    return str(served) == str(offline)


def compare_view(session: Session, defs: Definitions, view: FeatureView,
                 records: Sequence[Mapping[str, Any]], schema: Mapping[str, str],
                 scratch: Path) -> tuple[int, list[Mismatch]]:
    """Offline values of ``records`` (logged reads of ``view``) as of their times, compared
    with what was served: (values compared, the ones that differ)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from andon.features import training as t

    columns: dict[str, list[Any]] = {
        k: ["" if r["keys"].get(k) is None else str(r["keys"][k]) for r in records]
        for k in view.join_keys}
    nulls = {k: [r["keys"].get(k) is None for r in records] for k in view.join_keys}
    columns["__at"] = [r["at"] for r in records]
    scratch.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({**columns, **{f"__null_{i}": nulls[k]
                                           for i, k in enumerate(view.join_keys)}}), scratch)
    try:
        keys = [f"CASE WHEN __null_{i} THEN NULL ELSE TRY_CAST({q(k)} AS {schema[k]}) END "
                f"AS {q(k)}" for i, k in enumerate(view.join_keys)]
        entity_sql = (f"(SELECT {', '.join(keys)}, CAST(__at AS TIMESTAMP) AS __served_at "
                      f"FROM read_parquet({lit(str(scratch))}))")
        entity_schema = t.describe(session, entity_sql)
        wanted: list[Feature] = list(view.features)
        sql = t.query(defs, wanted, entity_sql, entity_schema, "__served_at",
                      {view.table: schema})
        table = session.execute(sql).arrow()
        offline = {f.name: table.column(f.name).to_pylist() for f in wanted}
    finally:
        scratch.unlink(missing_ok=True)
    compared = 0
    found: list[Mismatch] = []
    for i, record in enumerate(records):
        served = record.get("values") or {}
        for f in wanted:
            if f.name not in served:
                continue
            compared += 1
            value, expected = served[f.name], offline[f.name][i]
            if not _type_ok(f, value):
                found.append(Mismatch(f.name, dict(record["keys"]), record["at"], value,
                                      f.type, "type"))
            elif not _same(value, expected):
                found.append(Mismatch(f.name, dict(record["keys"]), record["at"], value,
                                      expected, "value"))
    return compared, found


def skew(session: Session, defs: Definitions, state_dir: Path,
         schemas: Mapping[str, Mapping[str, str]], fingerprints: Mapping[str, str]
         ) -> list[NewCheckResult]:
    """One check result per view with logged reads: the share of served values that differ
    from the offline values for the same keys and times; failed above
    ``serving.skew_max_share``."""
    from andon.features.health import _hash
    from andon.store.checks import NewCheckResult

    records = read_served(served_dir(state_dir))
    by_view: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_view.setdefault(str(r.get("view")), []).append(r)
    limit = defs.serving.skew_max_share
    out: list[NewCheckResult] = []
    for view in defs.views.values():
        mine = by_view.get(view.name)
        if not mine or view.table not in schemas:
            continue
        compared, found = compare_view(session, defs, view, mine, schemas[view.table],
                                       state_dir / f".{view.name}.skew.parquet")
        if not compared:
            continue
        share = len(found) / compared
        status = "failed" if share > limit else "passed"
        message = (f"{len(found)} of {compared} served values of view {view.name!r} differ "
                   f"from the offline values for the same keys and times")
        if found:
            features = sorted({m.feature for m in found})
            message += f" (features: {', '.join(features)}); first: {found[0].describe()}"
        out.append(NewCheckResult(
            step=view.table, check_name=f"features.skew.{view.name}",
            check_hash=_hash("skew", view.fingerprint(), limit),
            check_type="feature_skew", severity="warn", status=status,
            metric=round(share, 6), fingerprint=fingerprints.get(view.table, ""),
            context=_hash(mine[0]["at"], mine[-1]["at"], len(mine)), failing=len(found),
            threshold={"max_share": limit}, message=message,
            sample=json.loads(json.dumps(
                [{"feature": m.feature, "keys": m.keys, "at": m.at, "served": m.served,
                  "offline": m.offline, "kind": m.kind} for m in found[:10]], default=str))))
    return out
