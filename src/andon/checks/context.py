"""What a check type sees while it runs: the ``Audit`` (the candidate's artifacts and the
environment's history) and one table's ``Evaluation`` (session, scan source, row count), with
the helpers every type uses to build its ``CheckResult``. Queries are sqlglot expressions the
session renders in its engine's dialect."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from andon.checks import history
from andon.checks.model import Check, CheckResult
from andon.checks.spc import judge as spc_judge
from andon.engines.base import Engine, EngineError, Session
from andon.masking import mask_rows, mask_text
from andon.secrets import redact_all
from andon.store import Store
from andon.warehouse import Manifest, Warehouse

if TYPE_CHECKING:
    from sqlglot import exp

SAMPLE_SIZE = 5

# Queries run per table, for tests and benchmarks: "scan" (the single aggregate scan of the
# column checks and the profile) and "sample" (failing rows, only when a check fails).
QUERIES: Counter[tuple[str, str]] = Counter()
_QUERIES_LOCK = threading.Lock()


def count_query(table: str, what: str) -> None:
    with _QUERIES_LOCK:
        QUERIES[(table, what)] += 1


@dataclass
class Audit:
    """Everything checks may read: the candidate's artifacts and the environment's history."""

    store: Store
    engine: Engine
    warehouse: Warehouse
    environment: str
    run_id: int | None
    manifests: Mapping[str, Manifest]  # table → artifact being checked (the candidate)
    previous: Mapping[str, Manifest | None] = field(default_factory=dict)
    pii: Callable[[str], set[str]] = lambda _t: set()  # a table's PII columns (masked)
    other_env_manifest: Callable[[str, str], Manifest | None] = lambda _t, _e: None
    baseline_manifest: Callable[[str, str], Manifest | None] = lambda _t, _c: None
    force: bool = False
    secrets: Callable[[], list[str]] = lambda: []  # values never shown nor stored

    def files(self, table: str, manifest: Manifest | None = None) -> list[str]:
        m = manifest or self.manifests[table]
        return [str(self.warehouse.path(f)) for f in m.files]

    def source(self, table: str, manifest: Manifest | None = None) -> exp.Expression:
        """The engine's scan of a table's artifact (the candidate, or ``manifest``)."""
        return self.engine.scan(self.files(table, manifest))


@dataclass
class Evaluation:
    """One table's checks being evaluated: ``src`` is its scan, ``total`` its row count."""

    audit: Audit
    manifest: Manifest
    cur: Session
    src: exp.Expression
    total: int = 0

    def result(self, c: Check, ok: bool | None, metric: float | None,
               threshold: dict[str, Any], message: str, failing: int | None = None,
               sample: Sequence[dict[str, Any]] = (), status: str | None = None,
               shown: Sequence[Any] = ()) -> CheckResult:
        """A result; ``ok`` sets the status by severity (``status`` overrides it).
        ``shown``: values of the check's columns that ``message`` quotes."""
        if status is None:
            status = "passed" if ok else ("failed" if c.severity != "info" else "recorded")
        if sample or status != "passed":  # what a failure shows: no secret nor PII in it
            secrets = self.audit.secrets()
            masked = self.audit.pii(c.table)
            quoted = shown if masked & set(c.columns) else ()
            message = mask_text(redact_all(message, secrets), quoted)
            sample = mask_rows([redact_all(r, secrets) for r in sample], masked)
        return CheckResult(
            name=c.name, table=c.table, type=c.type, severity=c.severity, status=status,
            metric=None if metric is None or (isinstance(metric, float) and math.isnan(metric))
            else float(metric),
            threshold=threshold, message=message, failing=failing, sample=tuple(sample),
            fingerprint=self.manifest.fingerprint, check_hash=c.check_hash,
        )

    def error(self, c: Check, message: str) -> CheckResult:
        return self.result(c, None, None, {}, message, status="error")

    def sample(self, c: Check, query: exp.Expression) -> list[dict[str, Any]]:
        """Up to ``SAMPLE_SIZE`` failing rows of ``query``, the check's columns first, PII
        masked."""
        from sqlglot import exp

        count_query(c.table, "sample")
        if isinstance(query, exp.Select) and not query.args.get("limit"):
            query = query.limit(SAMPLE_SIZE)  # the engine stops at the rows shown
        try:
            res = self.cur.execute(query)
            cols = res.columns
            rows = [dict(zip(cols, r, strict=False)) for r in res.fetchmany(SAMPLE_SIZE)]
        except EngineError:
            return []
        # the columns the check is about come first, so a short display shows them
        rows = [{**{k: r[k] for k in c.columns if k in r}, **r} for r in rows]
        return self.mask(c, rows)

    def mask(self, c: Check, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows as JSON values, the table's PII columns (declared, flowed, detected)
        masked."""
        return mask_rows([{k: jsonable(v) for k, v in r.items()} for r in rows],
                         self.audit.pii(c.table))

    def with_spc(self, c: Check, r: CheckResult) -> CheckResult:
        """Judge the result's metric by statistical process control, when the check asks."""
        spc = c.spc
        if spc is None or r.metric is None:
            return r
        past = history.baseline(self.audit.store, c.name, self.audit.environment, spc.window)
        outcome = spc_judge(spc, past, r.metric, time.time())
        judged = outcome.to_dict()
        if not outcome.judged:
            note = (f"; SPC: {outcome.history} of {spc.min_history} results needed before "
                    "judging (recorded)")
            return replace(r, message=r.message + note, spc=judged)
        limits = f"limits {fmt(outcome.lower)}..{fmt(outcome.upper)}"
        if outcome.violations:
            status = "failed" if c.severity != "info" else "recorded"
            return replace(r, status=status, spc=judged, message=f"{r.message}; SPC: "
                           f"{', '.join(outcome.violations)} ({limits})")
        return replace(r, spc=judged, message=f"{r.message}; SPC in control ({limits})")


def replace(r: CheckResult, **kw: Any) -> CheckResult:
    return CheckResult(**{**r.__dict__, **kw})


def jsonable(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)


def fmt(v: float | None) -> str:
    if v is None:
        return "null"
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"
