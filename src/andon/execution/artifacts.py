"""Artifacts between the store and the warehouse: a stored row as a ``Manifest``, a manifest
as the row to store, and the lookups of artifacts in other commits and environments."""

from __future__ import annotations

import time
from collections.abc import Callable

from andon.store import Row, Store
from andon.warehouse import Manifest, Warehouse


def manifest_of(row: Row) -> Manifest:
    return Manifest(
        fingerprint=row["fingerprint"],
        step=row["step"],
        code_hash=row["code_hash"],
        files=tuple(row["files"]),
        rows=int(row["rows"]),
        bytes=int(row["bytes"]),
        schema=tuple((str(a), str(b)) for a, b in row["schema"]),
        meta=dict(row.get("meta") or {}),
        format=str(row.get("format") or "parquet"),  # rows stored before formats: Parquet
    )


def artifact_lookups(store: Store) -> tuple[
        Callable[[str, str | None], Manifest | None], Callable[[str, str], Manifest | None]]:
    """Checks that read other commits or environments: a table's artifact at a commit, and
    in an environment now."""

    def at_commit(table: str, commit_id: str | None) -> Manifest | None:
        fp = store.commit_steps(commit_id).get(table)
        row = store.artifact(fp) if fp else None
        return manifest_of(row) if row else None

    def in_env(table: str, environment: str) -> Manifest | None:
        env = store.environment(environment)
        return at_commit(table, env["commit_id"]) if env else None

    return at_commit, in_env


def artifact_row(m: Manifest, run_id: int | None, warehouse: Warehouse) -> Row:
    return {
        "fingerprint": m.fingerprint,
        "step": m.step,
        "code_hash": m.code_hash,
        "path": warehouse.rel(warehouse.artifact_dir(m.step, m.fingerprint)),
        "rows": m.rows,
        "bytes": m.bytes,
        "schema": [list(c) for c in m.schema],
        "files": list(m.files),
        "meta": m.meta,
        "created_at": time.time(),
        "run_id": run_id,
        "format": m.format,
    }
