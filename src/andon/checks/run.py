"""Evaluate checks on artifacts: one scan per table for column checks and the profile, own
queries for relationships, balances and custom SQL, history for drift and SPC."""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
import typing
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import duckdb
import pyarrow as pa

from andon.checks import history, profile
from andon.checks.load import validate_columns
from andon.checks.model import Check, CheckResult
from andon.checks.spc import judge as spc_judge
from andon.checks.types import (
    CHECK_TYPES,
    aggregate,
    is_numeric,
    judge_failing,
    judge_range,
    lit,
    num,
    parse_age,
    predicate,
    q,
)
from andon.engines.duckdb import DuckDBEngine, scan_sql
from andon.errors import AndonError
from andon.store import Store
from andon.warehouse import Manifest, Warehouse

SAMPLE_SIZE = 5

# Queries run per table, for tests and benchmarks: "scan" (the single aggregate scan of the
# column checks and the profile) and "sample" (failing rows, only when a check fails).
QUERIES: Counter[tuple[str, str]] = Counter()
_QUERIES_LOCK = threading.Lock()


def _count(table: str, what: str) -> None:
    with _QUERIES_LOCK:
        QUERIES[(table, what)] += 1


@dataclass
class Audit:
    """Everything checks may read: the candidate's artifacts and the environment's history."""

    store: Store
    engine: DuckDBEngine
    warehouse: Warehouse
    environment: str
    run_id: int | None
    manifests: Mapping[str, Manifest]  # table → artifact being checked (the candidate)
    previous: Mapping[str, Manifest | None] = field(default_factory=dict)
    pii: Callable[[str], set[str]] = lambda _t: set()
    other_env_manifest: Callable[[str, str], Manifest | None] = lambda _t, _e: None
    baseline_manifest: Callable[[str, str], Manifest | None] = lambda _t, _c: None
    force: bool = False

    def files(self, table: str, manifest: Manifest | None = None) -> list[str]:
        m = manifest or self.manifests[table]
        return [str(self.warehouse.path(f)) for f in m.files]

    def source(self, table: str, manifest: Manifest | None = None) -> str:
        return scan_sql(self.files(table, manifest))


Outcome = tuple[CheckResult, str, bool]  # result, context, freshly evaluated

_REF_RE = re.compile(r"\{\{\s*ref\(\s*(['\"])([A-Za-z0-9_]+)\1\s*\)\s*\}\}")
_TABLE_RE = re.compile(r"\{\{\s*table\s*\}\}")


def others(c: Check) -> list[str]:
    """The tables besides its own that a check reads."""
    if c.spec.to:
        return [c.spec.to.split(".", 1)[0]]
    if c.spec.other:
        return [c.spec.other]
    if c.spec.sql:
        return sorted({m.group(2) for m in _REF_RE.finditer(c.spec.sql)} - {c.table})
    return []


def context_of(audit: Audit, c: Check) -> str:
    """What besides the artifact a check's result depends on."""
    parts: list[str] = []
    kind = CHECK_TYPES[c.type].kind
    for other in others(c):
        if c.spec.other_env:
            om = audit.other_env_manifest(other, c.spec.other_env)
            parts.append(f"{c.spec.other_env}:{om.fingerprint if om else '-'}")
        else:
            om = audit.manifests.get(other)
            parts.append(om.fingerprint if om else "-")
    if kind == "history" or c.spec.spc is not None:
        prev = audit.previous.get(c.table)
        parts.append(prev.fingerprint if prev else "-")
        if c.spec.baseline:
            parts.append(c.spec.baseline)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def bind_sql(audit: Audit, c: Check, cur: duckdb.DuckDBPyConnection) -> str:
    """A custom SQL check's query, with ``{{ table }}`` and ``{{ ref('x') }}`` bound to
    temporary views of the artifacts on this cursor (never pasted as text)."""
    assert c.spec.sql

    def view(name: str) -> str:
        if name not in audit.manifests:
            raise AndonError(f"ref('{name}'): {name} is not built",
                             hint="build it first, or drop the ref from the check")
        files = audit.files(name)
        rel = cur.read_parquet(files, union_by_name=len(files) > 1)
        alias = f"__andon_{name}"
        rel.create_view(alias, replace=True)
        return q(alias)

    sql = _TABLE_RE.sub(lambda _m: view(c.table), c.spec.sql)
    return _REF_RE.sub(lambda m: view(m.group(2)), sql)


def ready(audit: Audit, c: Check) -> bool:
    """All tables the check reads are available."""
    return c.table in audit.manifests and (
        c.spec.other_env is not None or all(o in audit.manifests for o in others(c)))


def evaluate(audit: Audit, table: str, checks: Sequence[Check], *,
             with_profile: bool = True, fresh: bool = False) -> list[Outcome]:
    """Run the checks of one table; cached results are reused unless ``audit.force``."""
    manifest = audit.manifests[table]
    out: list[Outcome] = []
    todo: list[tuple[Check, str]] = []
    contexts = [(c, context_of(audit, c)) for c in checks]
    found = {} if audit.force or fresh else history.find_all(
        audit.store, manifest.fingerprint, [(c.check_hash, ctx) for c, ctx in contexts])
    for c, ctx in contexts:
        cached = found.get((c.check_hash, ctx))
        # freshness depends on the clock, and a check that could not run deserves a retry
        if cached is not None and c.type != "freshness" and cached["status"] != "error":
            out.append((_replace(_from_row(cached), reused=True), ctx, False))
        else:
            todo.append((c, ctx))
    # a just-built artifact has no profile yet: no need to ask the store
    need_profile = with_profile and (
        fresh or history.profile_of(audit.store, manifest.fingerprint) is None)
    if not todo and not need_profile:
        return out
    schema = dict(manifest.schema)
    valid: list[tuple[Check, str]] = []
    for c, ctx in todo:
        try:
            other = c.spec.to.split(".", 1)[0] if c.spec.to else None
            other_schema = dict(audit.manifests[other].schema) if other and \
                other in audit.manifests else None
            if c.type != "python":
                validate_columns(c, schema, other_schema)
            valid.append((c, ctx))
        except AndonError as e:
            out.append((_error(c, manifest, e.message), ctx, True))
    _evaluate_todo(audit, table, manifest, valid, audit.engine.cursor(), need_profile, out)
    return out


def _evaluate_todo(audit: Audit, table: str, manifest: Manifest, valid: list[tuple[Check, str]],
                   cur: duckdb.DuckDBPyConnection, need_profile: bool, out: list[Outcome]
                   ) -> None:
    src = audit.source(table)
    scanned = [(c, ctx) for c, ctx in valid if CHECK_TYPES[c.type].kind in ("row", "agg",
                                                                              "unique")]
    values, total, scan_errors = _one_scan(cur, src, scanned, manifest, need_profile, table,
                                           audit.files(table))
    if need_profile:
        try:
            sample = profile.sample_stats(cur, audit.files(table), manifest.schema)
        except duckdb.Error:
            sample = {}
        prof = profile.assemble(manifest.schema, values, sample)
        history.save_profile(audit.store, manifest.fingerprint, table, audit.run_id,
                             manifest.rows, prof)
    for i, (c, ctx) in enumerate(scanned):
        if c.name in scan_errors:
            out.append((_error(c, manifest, scan_errors[c.name]), ctx, True))
            continue
        out.append((_judge_scanned(audit, c, manifest, values.get(f"c{i}"), total, cur, src),
                    ctx, True))
    for c, ctx in valid:
        kind = CHECK_TYPES[c.type].kind
        if kind in ("row", "agg", "unique"):
            continue
        try:
            result = _other_kinds(audit, c, manifest, cur, src, total)
        except (duckdb.Error, AndonError, ValueError) as e:
            msg = e.message if isinstance(e, AndonError) else str(e).splitlines()[0]
            result = _error(c, manifest, msg)
        out.append((result, ctx, True))


def _one_scan(cur: duckdb.DuckDBPyConnection, src: str, scanned: list[tuple[Check, str]],
              manifest: Manifest, need_profile: bool, table: str, files: list[str]
              ) -> tuple[dict[str, Any], int, dict[str, str]]:
    exprs: list[tuple[str, str]] = [("c__total", "count(*)")]
    for i, (c, _) in enumerate(scanned):
        kind = CHECK_TYPES[c.type].kind
        sql = (f"count(*) FILTER (WHERE {predicate(c, manifest.schema)})" if kind == "row"
               else aggregate(c))
        exprs.append((f"c{i}", sql))
    known: dict[str, Any] = {}
    if need_profile:
        known = profile.footer_stats(files, manifest.schema)
        exprs += profile.profile_exprs(manifest.schema, known)
    errors: dict[str, str] = {}
    try:
        values = _select(cur, src, exprs, table)
    except duckdb.Error:
        # attribute the failure: evaluate each check alone, keep the ones that work
        values = {}
        base = [e for e in exprs if not e[0].startswith("c") or e[0] == "c__total"]
        try:
            values.update(_select(cur, src, base, table))
        except duckdb.Error:
            values.update(_select(cur, src, [("c__total", "count(*)")], table))
        for i, (c, _) in enumerate(scanned):
            try:
                values.update(_select(cur, src, [exprs[i + 1]], table))
            except duckdb.Error as e:
                errors[c.name] = f"the check could not run: {str(e).splitlines()[0]}"
    for key, value in known.items():
        values.setdefault(key, value)
    return values, int(values.get("c__total") or 0), errors


def _select(cur: duckdb.DuckDBPyConnection, src: str, exprs: list[tuple[str, str]],
            table: str) -> dict[str, Any]:
    _count(table, "scan")
    sql = "SELECT " + ", ".join(f"{e} AS {q(a)}" for a, e in exprs) + f" FROM {src}"
    res = cur.execute(sql)
    row = res.fetchone()
    cols = [d[0] for d in res.description or []]
    return dict(zip(cols, row or (), strict=False))


def _base(c: Check, manifest: Manifest, status: str, metric: float | None,
          threshold: dict[str, Any], message: str, failing: int | None = None,
          sample: Sequence[dict[str, Any]] = (), spc: dict[str, Any] | None = None
          ) -> CheckResult:
    return CheckResult(
        name=c.name, table=c.table, type=c.type, severity=c.severity, status=status,
        metric=None if metric is None or (isinstance(metric, float) and math.isnan(metric))
        else float(metric),
        threshold=threshold, message=message, failing=failing, sample=tuple(sample),
        fingerprint=manifest.fingerprint, check_hash=c.check_hash, spc=spc,
    )


def _error(c: Check, manifest: Manifest, message: str) -> CheckResult:
    return _base(c, manifest, "error", None, {}, message)


def _sample(audit: Audit, c: Check, cur: duckdb.DuckDBPyConnection, sql: str
            ) -> list[dict[str, Any]]:
    _count(c.table, "sample")
    try:
        res = cur.execute(sql)
        cols = [d[0] for d in res.description or []]
        rows = [dict(zip(cols, r, strict=False)) for r in res.fetchmany(SAMPLE_SIZE)]
    except duckdb.Error:
        return []
    # the columns the check is about come first, so a short display shows them
    first = [x for x in (*c.columns, c.spec.start, c.spec.end) if x]
    rows = [{**{k: r[k] for k in first if k in r}, **r} for r in rows]
    masked = audit.pii(c.table)
    return [{k: ("***" if k in masked and v is not None else _jsonable(v)) for k, v in r.items()}
            for r in rows]


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)


def _status(ok: bool, c: Check) -> str:
    if ok:
        return "passed"
    return "failed" if c.severity != "info" else "recorded"


def _judge_scanned(audit: Audit, c: Check, manifest: Manifest, value: Any, total: int,
                   cur: duckdb.DuckDBPyConnection, src: str) -> CheckResult:
    kind = CHECK_TYPES[c.type].kind
    if kind in ("row", "unique"):
        failing = int(value or 0)
        ok, threshold = judge_failing(c.spec, failing, total)
        sample: list[dict[str, Any]] = []
        if failing and not ok:
            if kind == "row":
                sample = _sample(audit, c, cur, f"SELECT * FROM {src} WHERE "
                                                f"{predicate(c, manifest.schema)}")
            else:
                cols = ", ".join(q(x) for x in c.columns)
                # one column: nulls are not counted as duplicates, so not shown either
                where = f" WHERE {q(c.columns[0])} IS NOT NULL" if len(c.columns) == 1 else ""
                sample = _sample(audit, c, cur, f"SELECT {cols}, count(*) AS duplicates FROM "
                                                f"{src}{where} GROUP BY ALL HAVING count(*) > 1")
        pct = 100.0 * failing / total if total else 0.0
        what = "duplicate rows" if kind == "unique" else "failing rows"
        msg = f"{failing:,} {what} of {total:,} ({pct:.2f}%)"
        return _with_spc(audit, c, manifest, _base(c, manifest, _status(ok, c), failing,
                                                   threshold, msg, failing, sample))
    # aggregates
    if c.type == "freshness":
        newest = value
        if newest is None:
            return _base(c, manifest, _status(False, c), None,
                         {"max_age": c.spec.max_age}, "no timestamps: the table is empty")
        age = _age_seconds(newest)
        limit = parse_age(c.spec.max_age or "0s")
        ok = age <= limit
        return _with_spc(audit, c, manifest, _base(
            c, manifest, _status(ok, c), age, {"max_age": c.spec.max_age},
            f"newest {newest} is {age / 3600:.1f}h old"))
    metric = None if value is None else float(value)
    ok, threshold = judge_range(c.spec, metric)
    msg = f"{c.type.removesuffix('_between').removesuffix('_max')} = {_fmt(metric)}"
    return _with_spc(audit, c, manifest, _base(c, manifest, _status(ok, c), metric, threshold,
                                               msg))


def _age_seconds(newest: Any) -> float:
    from datetime import date, datetime

    if isinstance(newest, datetime):
        now = datetime.now(newest.tzinfo) if newest.tzinfo else datetime.now(UTC)\
            .replace(tzinfo=None)
        return (now - newest).total_seconds()
    if isinstance(newest, date):
        return (datetime.now(UTC).date() - newest).days * 86400.0
    return time.time() - float(newest)


def _fmt(v: float | None) -> str:
    if v is None:
        return "null"
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.4g}" if abs(v) < 1e6 else f"{v:,.0f}"


def _with_spc(audit: Audit, c: Check, manifest: Manifest, r: CheckResult) -> CheckResult:
    if c.spec.spc is None or r.metric is None:
        return r
    past = history.baseline(audit.store, c.name, audit.environment, c.spec.spc.window)
    outcome = spc_judge(c.spec.spc, past, r.metric, time.time())
    spc = outcome.to_dict()
    if not outcome.judged:
        note = (f"; SPC: {outcome.history} of {c.spec.spc.min_history} results needed before "
                "judging (recorded)")
        return _replace(r, message=r.message + note, spc=spc)
    limits = f"limits {_fmt(outcome.lower)}..{_fmt(outcome.upper)}"
    if outcome.violations:
        status = "failed" if c.severity != "info" else "recorded"
        return _replace(r, status=status, spc=spc,
                        message=f"{r.message}; SPC: {', '.join(outcome.violations)} ({limits})")
    return _replace(r, spc=spc, message=f"{r.message}; SPC in control ({limits})")


def _replace(r: CheckResult, **kw: Any) -> CheckResult:
    return CheckResult(**{**r.__dict__, **kw})


def _other_kinds(audit: Audit, c: Check, manifest: Manifest, cur: duckdb.DuckDBPyConnection,
                 src: str, total: int) -> CheckResult:
    s = c.spec
    if c.type == "relationship":
        assert s.to and s.column
        other, ocol = s.to.split(".", 1)
        osrc = audit.source(other)
        col = q(s.column)
        anti = (f"FROM {src} AS c WHERE c.{col} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {osrc} AS p WHERE p.{q(ocol)} = c.{col})")
        unmatched = f"SELECT * {anti}"  # whole rows only for the sample
        # counting reads the key column alone; its non-null count comes from the footers
        names = [n for n, _ in manifest.schema]
        stats = profile.footer_stats(audit.files(c.table), manifest.schema)
        known = stats.get(f"p{names.index(s.column)}_nonnull") if s.column in names else None
        if known is not None:
            row = cur.execute(f"SELECT count(*), {int(known)} FROM (SELECT c.{col} {anti})"
                              ).fetchone()
        else:
            row = cur.execute(f"SELECT count(*), (SELECT count({col}) FROM {src}) FROM "
                              f"(SELECT c.{col} {anti})").fetchone()
        failing, nonnull = (int(row[0]), int(row[1])) if row else (0, 0)
        ok, threshold = judge_failing(s, failing, nonnull)
        sample = _sample(audit, c, cur, unmatched) if failing and not ok else []
        pct = 100.0 * failing / nonnull if nonnull else 0.0
        return _with_spc(audit, c, manifest, _base(
            c, manifest, _status(ok, c), failing, threshold,
            f"{failing:,} of {nonnull:,} values ({pct:.2f}%) not found in {s.to}",
            failing, sample))
    if c.type == "sql":
        sql = bind_sql(audit, c, cur)
        if s.metric:  # the query returns one number, judged against min/max
            value = cur.execute(sql).fetchone()
            metric = None if not value or value[0] is None else float(value[0])
            ok, threshold = judge_range(s, metric)
            return _with_spc(audit, c, manifest, _base(
                c, manifest, _status(ok, c), metric, threshold, f"metric = {_fmt(metric)}"))
        row = cur.execute(f"SELECT count(*) FROM ({sql})").fetchone()
        failing = int(row[0]) if row else 0
        ok, threshold = judge_failing(s, failing, total)
        sample = _sample(audit, c, cur, sql) if failing and not ok else []
        return _with_spc(audit, c, manifest, _base(
            c, manifest, _status(ok, c), failing, threshold,
            f"{failing:,} failing rows", failing, sample))
    if c.type == "balance":
        assert s.other
        expr = s.expr or "count(*)"
        mine = cur.execute(f"SELECT {expr} FROM {src}").fetchone()
        om = (audit.other_env_manifest(s.other, s.other_env) if s.other_env
              else audit.manifests.get(s.other))
        if om is None:
            raise AndonError(f"{s.other} is not built in environment "
                             f"{s.other_env or audit.environment}")
        theirs = cur.execute(f"SELECT {s.other_expr or expr} FROM "
                             f"{audit.source(s.other, om)}").fetchone()
        a = float(mine[0] or 0) if mine else 0.0
        b = float(theirs[0] or 0) if theirs else 0.0
        if s.plus_rejects:
            b += float(om.meta.get("rejects", 0))
        diff = a - b
        ok = abs(diff) <= s.tolerance
        where = f"{s.other}" + (f"@{s.other_env}" if s.other_env else "")
        extra = " + its rejects" if s.plus_rejects else ""
        return _with_spc(audit, c, manifest, _base(
            c, manifest, _status(ok, c), diff, {"tolerance": s.tolerance},
            f"{c.table}: {_fmt(a)} vs {where}{extra}: {_fmt(b)} (difference {_fmt(diff)})"))
    if c.type == "schema":
        have = dict(manifest.schema)
        problems = []
        for col, typ in (s.expected or {}).items():
            if col not in have:
                problems.append(f"{col} missing")
            elif have[col].upper() != typ.upper():
                problems.append(f"{col} is {have[col]}, expected {typ.upper()}")
        return _base(c, manifest, _status(not problems, c), len(problems), {"max": 0},
                     "; ".join(problems) or "schema as expected")
    if c.type == "type":
        assert s.column and s.expected
        want = str(s.expected.get("type", "")).upper()
        have_t = dict(manifest.schema).get(s.column, "")
        ok = have_t.upper() == want
        return _base(c, manifest, _status(ok, c), 0 if ok else 1, {"type": want},
                     f"{s.column} is {have_t}" + ("" if ok else f", expected {want}"))
    prev = audit.previous.get(c.table)
    if c.type == "schema_drift":
        if prev is None:
            return _base(c, manifest, "passed", 0, {}, "no previous artifact to compare with")
        old, new = dict(prev.schema), dict(manifest.schema)
        changes = [f"+{k}" for k in new if k not in old] + [f"-{k}" for k in old if k not in new]
        changes += [f"{k}: {old[k]} → {new[k]}" for k in new if k in old and old[k] != new[k]]
        ok, threshold = judge_failing(s, len(changes), max(1, len(new)))
        return _with_spc(audit, c, manifest, _base(
            c, manifest, _status(ok, c), len(changes), threshold,
            ", ".join(changes) or "no schema change"))
    if c.type == "volume_change":
        if prev is None:
            return _base(c, manifest, "passed", None, {"max_change_pct": s.max_change_pct},
                         "no previous artifact to compare with")
        change = 100.0 * (manifest.rows - prev.rows) / prev.rows if prev.rows else (
            0.0 if manifest.rows == 0 else 100.0)
        ok = abs(change) <= (s.max_change_pct or 0)
        return _with_spc(audit, c, manifest, _base(
            c, manifest, _status(ok, c), change, {"max_change_pct": s.max_change_pct},
            f"{prev.rows:,} → {manifest.rows:,} rows ({change:+.1f}%)"))
    if c.type == "rows_added":
        added = manifest.meta.get("new_rows")
        if added is None:
            added = manifest.rows - (prev.rows if prev else 0)
        ok, threshold = judge_range(s, float(added))
        return _with_spc(audit, c, manifest, _base(c, manifest, _status(ok, c), float(added),
                                                   threshold, f"{int(added):,} rows added"))
    if c.type == "distribution_drift":
        return _drift(audit, c, manifest, cur, src)
    if c.type == "python":
        return _python(audit, c, manifest, cur, src, total)
    raise ValueError(f"no evaluator for check type {c.type!r}")


def _drift(audit: Audit, c: Check, manifest: Manifest, cur: duckdb.DuckDBPyConnection,
           src: str) -> CheckResult:
    s = c.spec
    assert s.column
    base = (audit.baseline_manifest(c.table, s.baseline) if s.baseline
            else audit.previous.get(c.table))
    method = s.method or "psi"
    hi = num(s.max)
    limit = hi if hi is not None else (0.25 if method == "psi" else 0.2)
    if base is None:
        return _base(c, manifest, "passed", None, {"max": limit},
                     "no baseline artifact to compare with (recorded)")
    bsrc = audit.source(c.table, base)
    col = q(s.column)
    numeric = is_numeric(dict(manifest.schema).get(s.column, ""))
    if numeric:
        qs = ", ".join(str(i / s.bins) for i in range(1, s.bins))
        edges_row = cur.execute(f"SELECT quantile_cont({col}, [{qs}]) FROM {bsrc}").fetchone()
        edges = sorted(set(edges_row[0] or [])) if edges_row else []

        def hist(source: str) -> list[float]:
            cases = " ".join(f"WHEN {col} <= {lit(e)} THEN {i}" for i, e in enumerate(edges))
            rows = cur.execute(
                f"SELECT CASE {cases} ELSE {len(edges)} END AS b, count(*) FROM {source} "
                f"WHERE {col} IS NOT NULL GROUP BY b").fetchall() if edges else \
                cur.execute(f"SELECT 0, count({col}) FROM {source}").fetchall()
            counts = dict(rows)
            n = sum(counts.values()) or 1
            return [counts.get(i, 0) / n for i in range(len(edges) + 1)]

        p, qv = hist(src), hist(bsrc)
    else:
        # categories (text, booleans, dates...) are compared by their text on both sides
        text = f"CAST({col} AS VARCHAR)"
        top = [str(r[0]) for r in cur.execute(
            f"SELECT {text} FROM {bsrc} WHERE {col} IS NOT NULL GROUP BY 1 "
            f"ORDER BY count(*) DESC LIMIT 50").fetchall()]

        def dist(source: str) -> list[float]:
            rows = dict(cur.execute(
                f"SELECT CASE WHEN {text} IN ({', '.join(lit(v) for v in top) or 'NULL'}) "
                f"THEN {text} ELSE '__other__' END AS k, count(*) "
                f"FROM {source} WHERE {col} IS NOT NULL GROUP BY k").fetchall())
            n = sum(rows.values()) or 1
            return [rows.get(k, 0) / n for k in top] + [rows.get("__other__", 0) / n]

        p, qv = dist(src), dist(bsrc)
        if method == "ks":
            method = "psi"  # KS needs an order: categories use PSI
    if method == "ks":
        metric = _ks(cur, col, src, bsrc)
    else:
        eps = 1e-4
        metric = sum((a - b) * math.log((a + eps) / (b + eps)) for a, b in zip(p, qv,
                                                                               strict=True))
    ok = metric <= limit
    return _with_spc(audit, c, manifest, _base(
        c, manifest, _status(ok, c), metric, {"max": limit, "method": method},
        f"{method.upper()} = {metric:.4f} vs {base.fingerprint[:12]}"))


def _ks(cur: duckdb.DuckDBPyConnection, col: str, src: str, bsrc: str) -> float:
    """The two-sample Kolmogorov–Smirnov statistic: the largest gap between the empirical
    distribution functions of the candidate and the baseline, computed exactly in one query."""
    row = cur.execute(f"""
        WITH u AS (
            SELECT {col} AS v, 1 AS a, 0 AS b FROM {src} WHERE {col} IS NOT NULL
            UNION ALL
            SELECT {col}, 0, 1 FROM {bsrc} WHERE {col} IS NOT NULL),
        n AS (SELECT sum(a) AS na, sum(b) AS nb FROM u),
        g AS (SELECT v, sum(a) AS a, sum(b) AS b FROM u GROUP BY v),
        f AS (SELECT sum(a) OVER (ORDER BY v) AS ca, sum(b) OVER (ORDER BY v) AS cb FROM g)
        SELECT (SELECT na FROM n), (SELECT nb FROM n),
               max(abs(ca / (SELECT na FROM n) - cb / (SELECT nb FROM n))) FROM f
    """).fetchone()
    na, nb, gap = (row or (0, 0, None))
    if not na or not nb:
        return 0.0 if not na and not nb else 1.0
    return float(gap or 0.0)


def _python(audit: Audit, c: Check, manifest: Manifest, cur: duckdb.DuckDBPyConnection,
            src: str, total: int) -> CheckResult:
    func = c.function
    assert func is not None
    table = cur.sql(f"SELECT * FROM {src}").to_arrow_table()
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {}
    params = list(__import__("inspect").signature(func).parameters)
    arg: Any = table
    if params:
        ann = hints.get(params[0], "")
        text = ann if isinstance(ann, str) else repr(ann)
        if "pandas" in text:
            arg = table.to_pandas()
        elif "polars" in text:
            import polars as pl

            arg = pl.from_arrow(table)
    try:
        out = func(arg) if params else func()
    except Exception as e:
        return _error(c, manifest, f"the check raised {type(e).__name__}: {e}")
    if getattr(out, "ndim", None) == 0 and hasattr(out, "item"):
        out = out.item()  # a numpy scalar (df["x"].sum(), (df["x"] > 0).all()) as Python's
    if isinstance(out, bool):
        return _base(c, manifest, _status(out, c), 0 if out else 1, {}, "passed" if out
                     else "returned False")
    if isinstance(out, int | float):
        ok, threshold = judge_failing(c.spec, int(out), total)
        return _base(c, manifest, _status(ok, c), float(out), threshold,
                     f"{int(out):,} failing rows", int(out))
    if isinstance(out, pa.Table) or type(out).__module__.split(".")[0] in ("pandas", "polars"):
        failing_tbl = out if isinstance(out, pa.Table) else (
            pa.Table.from_pandas(out, preserve_index=False)
            if type(out).__module__.startswith("pandas") else out.to_arrow())
        n = int(failing_tbl.num_rows)
        ok, threshold = judge_failing(c.spec, n, total)
        masked = audit.pii(c.table)
        sample = [{k: ("***" if k in masked else _jsonable(v)) for k, v in r.items()}
                  for r in failing_tbl.slice(0, SAMPLE_SIZE).to_pylist()]
        return _base(c, manifest, _status(ok, c), float(n), threshold,
                     f"{n:,} failing rows", n, sample)
    return _error(c, manifest, f"the check returned {type(out).__name__}; return a bool, a "
                               "number of failing rows or a table of failing rows")


def _from_row(r: dict[str, Any]) -> CheckResult:
    return CheckResult(
        name=r["check_name"], table=r["step"], type=r["check_type"], severity=r["severity"],
        status=r["status"], metric=r["metric"], threshold=r["threshold"] or {},
        message=r["message"] or "", failing=r["failing"], sample=tuple(r["sample"] or ()),
        fingerprint=r["fingerprint"], check_hash=r["check_hash"], spc=r["spc"],
    )
