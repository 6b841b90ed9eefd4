"""Column lineage per step fingerprint (computed by ``andon.lineage``): one row per step
version, written once (a fingerprint's lineage never changes) and read by ``andon lineage``."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from andon.store import schema as t

if TYPE_CHECKING:
    from andon.lineage import StepLineage

Row = dict[str, Any]
_CHUNK = 500  # fingerprints per IN (...): well under every driver's parameter limit


class LineageRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def rows(self, fingerprints: Iterable[str]) -> dict[str, Row]:
        """The stored lineage of these fingerprints (those not computed yet are absent)."""
        wanted = sorted(set(fingerprints))
        out: dict[str, Row] = {}
        c = t.column_lineage.c
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), _CHUNK):
                q = select(t.column_lineage).where(c.fingerprint.in_(wanted[i:i + _CHUNK]))
                for r in conn.execute(q).mappings():
                    out[r["fingerprint"]] = {
                        "fingerprint": r["fingerprint"], "step": r["step"], "level": r["level"],
                        "columns": list(r["columns"]), "note": r["note"] or "",
                        "edges": [{"output": e[0], "table": e[1], "column": e[2], "kind": e[3],
                                   **({"masking": True} if len(e) > 4 and e[4] else {})}
                                  for e in r["edges"]]}
        return out

    def put(self, lineages: Sequence[StepLineage]) -> int:
        """Store each step version's lineage once; another run that stored it first wins
        (the same fingerprint traces the same). Returns how many were added."""
        now = time.time()
        fresh = {x.fingerprint: x for x in lineages if x.fingerprint}
        with self.engine.connect() as conn:
            for i in range(0, len(fresh), _CHUNK):
                part = list(fresh)[i:i + _CHUNK]
                for fp in conn.execute(select(t.column_lineage.c.fingerprint).where(
                        t.column_lineage.c.fingerprint.in_(part))).scalars():
                    fresh.pop(fp, None)
        rows = [{"fingerprint": x.fingerprint, "step": x.step, "level": x.level,
                 "columns": list(x.columns), "note": x.note or None, "created_at": now,
                 "edges": [[e.output, e.table, e.column, e.kind,
                            *([True] if e.masking else [])] for e in x.edges]}
                for x in fresh.values()]
        if not rows:
            return 0
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(t.column_lineage), rows)
            return len(rows)
        except IntegrityError:  # a concurrent run stored some of them: one at a time
            added = 0
            for row in rows:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(insert(t.column_lineage).values(**row))
                    added += 1
                except IntegrityError:
                    continue
            return added
