"""Evaluate checks on artifacts: one scan per table for the row and aggregate checks and the
profile; every other check type runs on its own (``CheckType.run``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from andon.checks import history, profile
from andon.checks.context import QUERIES, Audit, Evaluation, count_query, replace
from andon.checks.load import validate_columns
from andon.checks.model import Check, CheckResult
from andon.engines.base import EngineError, Session
from andon.errors import AndonError
from andon.secrets import redact_all
from andon.warehouse import Manifest

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = ["QUERIES", "Audit", "Outcome", "evaluate", "ready"]

Outcome = tuple[CheckResult, str, bool]  # result, context, freshly evaluated


def ready(audit: Audit, c: Check) -> bool:
    """All tables the check reads are available."""
    return c.kind.ready(audit, c)


def evaluate(audit: Audit, table: str, checks: Sequence[Check], *,
             with_profile: bool = True, fresh: bool = False) -> list[Outcome]:
    """Run the checks of one table; cached results are reused unless ``audit.force``."""
    manifest = audit.manifests[table]
    out: list[Outcome] = []
    todo: list[tuple[Check, str]] = []
    contexts = [(c, c.kind.context(audit, c)) for c in checks]
    found = {} if audit.force or fresh else history.find_all(
        audit.store, manifest.fingerprint, [(c.check_hash, ctx) for c, ctx in contexts])
    for c, ctx in contexts:
        cached = found.get((c.check_hash, ctx))
        # freshness depends on the clock, and a check that could not run deserves a retry
        if cached is not None and c.kind.reuse and cached["status"] != "error":
            out.append((replace(_from_row(cached), reused=True), ctx, False))
        else:
            todo.append((c, ctx))
    # a just-built artifact has no profile yet: no need to ask the store
    need_profile = with_profile and (
        fresh or history.profile_of(audit.store, manifest.fingerprint) is None)
    if not todo and not need_profile:
        return out
    schema = dict(manifest.schema)
    ev = Evaluation(audit, manifest, audit.engine.cursor(), audit.source(table))
    valid: list[tuple[Check, str]] = []
    for c, ctx in todo:
        try:
            other = audit.manifests.get(c.target) if c.target else None
            validate_columns(c, schema, dict(other.schema) if other else None)
            valid.append((c, ctx))
        except AndonError as e:
            out.append((ev.error(c, e.message), ctx, True))
    _evaluate_todo(ev, table, valid, need_profile, out)
    return out


def _evaluate_todo(ev: Evaluation, table: str, valid: list[tuple[Check, str]],
                   need_profile: bool, out: list[Outcome]) -> None:
    audit, manifest, cur = ev.audit, ev.manifest, ev.cur
    scanned = [(c, ctx) for c, ctx in valid if c.kind.scanned]
    values, ev.total, scan_errors = _one_scan(cur, ev.src, scanned, manifest, need_profile,
                                              table, audit.files(table))
    if need_profile:
        try:
            sample = profile.sample_stats(cur, profile.sampled_scan(audit.engine,
                                                                    audit.files(table)),
                                          manifest.schema)
        except EngineError:
            sample = {}
        prof = redact_all(profile.assemble(manifest.schema, values, sample), audit.secrets())
        history.save_profile(audit.store, manifest.fingerprint, table, audit.run_id,
                             manifest.rows, prof)
    for i, (c, ctx) in enumerate(scanned):
        if c.name in scan_errors:
            out.append((ev.error(c, scan_errors[c.name]), ctx, True))
            continue
        out.append((c.kind.judge(ev, c, values.get(f"c{i}")), ctx, True))
    for c, ctx in valid:
        if c.kind.scanned:
            continue
        try:
            result = c.kind.run(ev, c)
        except (EngineError, AndonError, ValueError) as e:
            msg = e.message if isinstance(e, AndonError) else str(e).splitlines()[0]
            result = ev.error(c, msg)
        out.append((result, ctx, True))


def _one_scan(cur: Session, src: exp.Expression, scanned: list[tuple[Check, str]],
              manifest: Manifest, need_profile: bool, table: str, files: list[str]
              ) -> tuple[dict[str, Any], int, dict[str, str]]:
    from sqlglot import exp

    total = ("c__total", exp.Count(this=exp.Star()))
    exprs: list[tuple[str, exp.Expression]] = [total]
    checks: dict[str, tuple[str, exp.Expression]] = {}  # check name -> its aggregate
    errors: dict[str, str] = {}
    for i, (c, _) in enumerate(scanned):
        try:
            checks[c.name] = (f"c{i}", c.kind.compile(c, manifest.schema))
        except AndonError as e:  # a third-party predicate that does not parse
            errors[c.name] = e.message
    exprs += checks.values()
    known: dict[str, Any] = {}
    if need_profile:
        known = profile.footer_stats(files, manifest.schema)
        exprs += profile.profile_exprs(manifest.schema, known)
    try:
        values = _select(cur, src, exprs, table)
    except EngineError:
        # attribute the failure: evaluate each check alone, keep the ones that work
        values = {}
        base = [e for e in exprs if not e[0].startswith("c") or e[0] == "c__total"]
        try:
            values.update(_select(cur, src, base, table))
        except EngineError:
            values.update(_select(cur, src, [total], table))
        for name, one in checks.items():
            try:
                values.update(_select(cur, src, [one], table))
            except EngineError as e:
                errors[name] = f"the check could not run: {e.first_line}"
    for key, value in known.items():
        values.setdefault(key, value)
    return values, int(values.get("c__total") or 0), errors


def _select(cur: Session, src: exp.Expression, exprs: Sequence[tuple[str, exp.Expression]],
            table: str) -> dict[str, Any]:
    """One scan of the table computing every aggregate, each named by its alias."""
    from sqlglot import exp

    from andon.engines.sql import ident

    count_query(table, "scan")
    # built in place (copy=False: a wide table has thousands of aggregates); the scan is shared
    query = exp.select(*(exp.alias_(e, ident(a), copy=False) for a, e in exprs), copy=False) \
        .from_(src, copy=False)
    res = cur.execute(query)
    row = res.fetchone()
    return dict(zip(res.columns, row or (), strict=False))


def _from_row(r: dict[str, Any]) -> CheckResult:
    return CheckResult(
        name=r["check_name"], table=r["step"], type=r["check_type"], severity=r["severity"],
        status=r["status"], metric=r["metric"], threshold=r["threshold"] or {},
        message=r["message"] or "", failing=r["failing"], sample=tuple(r["sample"] or ()),
        fingerprint=r["fingerprint"], check_hash=r["check_hash"], spc=r["spc"],
    )
