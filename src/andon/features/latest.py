"""Materialisation: the latest value per entity of a feature view into the online store,
incrementally. A snapshot of what was last written (under ``.andon/features/ENV/``) lets the
engine find the entities whose values changed; only those are written."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from andon.features.catalog import FeatureView
from andon.features.stores import SEP, OnlineStore
from andon.features.training import lit, q, utc

if TYPE_CHECKING:
    from andon.engines.base import Session


@dataclass(frozen=True)
class Materialized:
    view: str
    environment: str
    entities: int  # entities in the view now
    written: int  # entities whose values changed (written to the online store)
    deleted: int
    seconds: float
    latest_event: str | None  # newest event timestamp of the view (its freshness)


def latest_sql(view: FeatureView, schema: Mapping[str, str]) -> str:
    """One row per entity: its key and latest values as JSON (``__ts``: epoch seconds UTC
    when the value became known)."""
    keys = [q(k) for k in view.join_keys]
    key = f"concat_ws(chr({ord(SEP)}), {', '.join(f'CAST({k} AS VARCHAR)' for k in keys)})"
    inner = list(keys)
    fields = []
    order = ""
    if view.timestamp:
        known = utc(q(view.timestamp), schema[view.timestamp])
        if view.available_after.total_seconds():
            known += f" + INTERVAL '{int(view.available_after.total_seconds())} seconds'"
        inner.append(f"epoch({known}) AS __ts")
        fields.append('"__ts" := __ts')
        order = f"ORDER BY {q(view.timestamp)} DESC NULLS LAST"
        if view.created:
            order += f", {q(view.created)} DESC NULLS LAST"
    inner += [f"CAST({f.expr} AS {f.sql_type}) AS __f{j}" for j, f in enumerate(view.features)]
    fields += [f"{q(f.name)} := __f{j}" for j, f in enumerate(view.features)]
    not_null = " AND ".join(f"{k} IS NOT NULL" for k in keys)
    ts = "__ts" if view.timestamp else "CAST(NULL AS DOUBLE)"
    # features first (a window feature sees every row), then the latest row per entity;
    # ``__ts`` also as a column: the view's freshness without parsing the JSON again
    return (f"SELECT {key} AS entity_key, CAST(to_json(struct_pack({', '.join(fields)})) AS "
            f"VARCHAR) AS value, {ts} AS __ts FROM (SELECT {', '.join(inner)} FROM "
            f"{q(view.table)} QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)} "
            f"{order}) = 1) WHERE {not_null}")


def materialize_view(session: Session, store: OnlineStore, view: FeatureView,
                     schema: Mapping[str, str], environment: str, state_dir: Path,
                     artifact: str) -> Materialized:
    started = time.perf_counter()
    state_dir.mkdir(parents=True, exist_ok=True)
    fp = view.fingerprint()
    meta_path = state_dir / f"{view.name}.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    snapshot = state_dir / f"{view.name}.parquet"
    if meta.get("artifact") == artifact and meta.get("definition") == fp and snapshot.exists():
        return Materialized(view.name, environment, int(meta["entities"]), 0, 0,
                            time.perf_counter() - started, meta.get("latest_event"))
    nxt = state_dir / f".{view.name}.next.parquet"
    try:
        session.execute(f"COPY ({latest_sql(view, schema)}) TO {lit(str(nxt))} "
                        "(FORMAT parquet)")
        new = f"read_parquet({lit(str(nxt))})"
        pair = "SELECT entity_key, value FROM"
        if snapshot.exists():
            old = f"read_parquet({lit(str(snapshot))})"
            same_definition = meta.get("definition") == fp
            changed_sql = (f"{pair} {new} EXCEPT {pair} {old}" if same_definition
                           else f"{pair} {new}")
            deleted = [r[0] for r in session.execute(
                f"SELECT o.entity_key FROM {old} AS o ANTI JOIN {new} AS n "
                f"ON o.entity_key = n.entity_key").fetchall()]
        else:
            changed_sql = f"{pair} {new}"
            deleted = []
        # in key order: the store's index is written in order (no page splits)
        table = session.execute(f"{changed_sql} ORDER BY entity_key").arrow()
        changed = list(zip(table.column(0).to_pylist(), table.column(1).to_pylist(),
                           strict=True))
        del table
        row = session.execute(f"SELECT count(*), max(__ts) FROM {new}").fetchone()
        entities = int(row[0]) if row else 0
        latest = None
        if row and row[1] is not None:
            latest = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(row[1])))
        store.write(environment, view.name, changed, deleted)
        os.replace(nxt, snapshot)
    finally:
        nxt.unlink(missing_ok=True)
    meta = {"artifact": artifact, "definition": fp, "entities": entities,
            "latest_event": latest,
            "materialized_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    meta_path.write_text(json.dumps(meta))
    return Materialized(view.name, environment, entities, len(changed), len(deleted),
                        time.perf_counter() - started, latest)
