"""DataOps analytics: how the line performs over a window of time (runs and failure rates per
pipeline, step and source; checks per day; check coverage; promotions, lead time,
change-failure rate, time to restore; SLA adherence). ``andon report``, the API's analytics
endpoints and the UI's analytics pages all show the ``Report`` built here."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from andon.errors import AndonError, NotFound, StoreError, did_you_mean

if TYPE_CHECKING:
    from andon.project import Project
    from andon.store.analytics import AnalyticsRepository

DEFAULT_SINCE = "30d"
_AGO = re.compile(r"^\s*(\d+)\s*([hdw])\s*$")
_UNIT = {"h": 3600, "d": 86400, "w": 7 * 86400}
OTHER = "(not in the project)"  # steps that ran in the window and are gone from the project


def parse_since(text: str, now: datetime) -> datetime:
    """The start of a window: ``30d``, ``12h``, ``2w`` before ``now``, or an ISO date or
    time (UTC unless it names its offset)."""
    m = _AGO.match(text)
    if m:
        amount = int(m.group(1))
        if amount == 0:
            raise AndonError(f"--since {text!r} is an empty window",
                             hint="give a positive duration, e.g. --since 30d")
        return now - timedelta(seconds=amount * _UNIT[m.group(2)])
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise AndonError(f"--since {text!r} is neither a duration nor a date",
                         hint="use a duration like 30d, 12h or 2w, or an ISO date like "
                              "2026-01-31 (or 2026-01-31T08:00)") from None
    since = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if since >= now:
        raise AndonError(f"--since {text!r} is not in the past",
                         hint="give a date before now, or a duration like 30d")
    return since.astimezone(UTC)


def _rate(part: int, whole: int) -> float | None:
    """``part / whole``; None when there is nothing to divide (no runs is not 0% failing)."""
    return part / whole if whole else None


def _day(seconds: float) -> date:
    return datetime.fromtimestamp(seconds, UTC).date()


@dataclass(frozen=True)
class Figures:
    """What every record of the report shares: ``to_dict()`` with dates as ISO text."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, Figures):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Window(Figures):
    since: datetime
    until: datetime
    environment: str | None  # runs and checks of this environment only (None: all)
    target: str  # the environment promotions go to (DORA figures)


@dataclass(frozen=True)
class RunTotals(Figures):
    runs: int
    succeeded: int
    failed: int
    cancelled: int
    other: int  # running, abandoned
    failure_rate: float | None  # failed / (succeeded + failed)


@dataclass(frozen=True)
class RunDay(Figures):
    day: date
    runs: int
    failed: int


@dataclass(frozen=True)
class PipelineFigures(Figures):
    pipeline: str  # "pipeline/zone", the folder of its steps
    runs: int  # runs that ran a step of it
    failed: int  # of them, runs where one of its steps failed
    failure_rate: float | None


@dataclass(frozen=True)
class StepFigures(Figures):
    step: str
    pipeline: str
    runs: int
    built: int
    reused: int
    failed: int
    failure_rate: float | None  # failed / (built + failed)
    mean_seconds: float | None  # of its builds


@dataclass(frozen=True)
class SourceFigures(Figures):
    """A data provider's record: failed loads, rejected rows, files delivered."""

    source: str
    loads: int  # runs that read new data from it (built) or failed to
    failed: int
    failure_rate: float | None
    rows: int  # accepted
    rejected_rows: int
    reject_rate: float | None  # rejected / (accepted + rejected)
    files: int  # landed in the window
    withdrawn: int  # of those, withdrawn since by an operator


@dataclass(frozen=True)
class CheckDay(Figures):
    day: date
    run: int
    passed: int
    failed: int
    errored: int  # the check itself could not run
    recorded: int  # info checks: measured, never failing


@dataclass(frozen=True)
class Coverage(Figures):
    environment: str
    tables: int
    tables_checked: int
    columns: int
    columns_checked: int
    table_share: float | None
    column_share: float | None
    unchecked_tables: tuple[str, ...]


@dataclass(frozen=True)
class PromotionWeek(Figures):
    week: date  # its Monday
    promoted: int
    refused: int  # refused by a failing check, or a conflict
    other: int


@dataclass(frozen=True)
class Durations(Figures):
    count: int
    mean_seconds: float | None
    median_seconds: float | None
    max_seconds: float | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Durations:
        if not seconds:
            return cls(0, None, None, None)
        return cls(len(seconds), statistics.fmean(seconds), statistics.median(seconds),
                   max(seconds))


@dataclass(frozen=True)
class ChangeFailures(Figures):
    target: str
    promotions: int
    failed: int  # followed by a failed run of the target before the next promotion
    rate: float | None


@dataclass(frozen=True)
class Restores(Figures):
    """Failures that broke an environment (a failed run after a good one) and how long until
    its next successful run."""

    incidents: int
    restored: int
    open: int
    time_to_restore: Durations


@dataclass(frozen=True)
class SlaFigures(Figures):
    table: str
    environment: str
    rule: str  # fresh_by|max_age
    breaches: int
    days: int  # UTC days of the window the table had runs to be judged on
    adherence: float | None  # fresh_by: share of those days on time


@dataclass(frozen=True)
class Report(Figures):
    window: Window
    runs: RunTotals
    runs_per_day: tuple[RunDay, ...]
    pipelines: tuple[PipelineFigures, ...]
    steps: tuple[StepFigures, ...]
    sources: tuple[SourceFigures, ...]
    checks_per_day: tuple[CheckDay, ...]
    coverage: Coverage | None  # None: the environment has no tables yet
    promotions_per_week: tuple[PromotionWeek, ...]
    lead_time: Durations  # from a branch's creation (or last promotion) to its promotion
    change_failures: ChangeFailures
    restores: Restores
    slas: tuple[SlaFigures, ...] | None  # None: the project has no SLAs
    notes: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """Nothing happened in the window: no runs, checks or promotions."""
        return (self.runs.runs == 0 and not self.checks_per_day
                and not self.promotions_per_week)


def report(project: Project, since: str | None = None, environment: str | None = None, *,
           now: float | None = None) -> Report:
    """The report over ``since`` (default 30 days) up to ``now``; ``environment`` limits runs
    and checks to it and is the target of promotions (default: the default environment)."""
    now_dt = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    start = parse_since(since or DEFAULT_SINCE, now_dt)
    target = environment or project.config.default_environment
    window = Window(start, now_dt, environment, target)
    repo = _repository(project)
    if repo is None:
        return _empty(project, window, "there is no store yet: nothing has run")
    if environment is not None:
        known = repo.environment_names()
        if environment not in known:
            raise NotFound(f"no environment named {environment!r} (--env)",
                           hint=did_you_mean(environment, known)
                           or f"environments: {', '.join(known) or 'none yet'}")
    return _build(project, repo, window)


def _repository(project: Project) -> AnalyticsRepository | None:
    from andon.store.analytics import AnalyticsRepository

    try:
        project.reader  # noqa: B018  (opens without creating: a missing store raises)
    except StoreError:
        return None
    return AnalyticsRepository(project.store.engine)


def _empty(project: Project, window: Window, note: str) -> Report:
    return Report(window, RunTotals(0, 0, 0, 0, 0, None), (), (), (), (), (), None, (),
                  Durations.of(()), ChangeFailures(window.target, 0, 0, None),
                  Restores(0, 0, 0, Durations.of(())), _no_slas(project), (note,))


def _no_slas(project: Project) -> tuple[SlaFigures, ...] | None:
    return () if project.config.sla else None


def _build(project: Project, repo: AnalyticsRepository, window: Window) -> Report:
    span = (window.since.timestamp(), window.until.timestamp())
    env = window.environment
    notes: list[str] = []
    pipeline_of = {name: f"{step.pipeline}/{step.zone}"
                   for name, step in project.dag.steps.items()}

    totals = repo.run_totals(span, env)
    ok, bad = totals.get("succeeded", 0), totals.get("failed", 0)
    cancelled = totals.get("cancelled", 0)
    count = sum(totals.values())
    runs = RunTotals(count, ok, bad, cancelled, count - ok - bad - cancelled,
                     _rate(bad, ok + bad))
    per_day = tuple(RunDay(_day(d), n, f) for d, n, f in repo.runs_per_day(span, env))
    pipelines = tuple(PipelineFigures(g, n, f, _rate(f, n))
                      for g, n, f in repo.runs_per_group(span, env, pipeline_of, OTHER))
    step_rows = repo.steps(span, env)
    steps = tuple(StepFigures(r["step"], pipeline_of.get(r["step"], OTHER), r["runs"],
                              r["built"], r["reused"], r["failed"],
                              _rate(r["failed"], r["built"] + r["failed"]), r["mean_seconds"])
                  for r in step_rows)
    sources = _sources(project, repo, span, {r["step"]: r for r in step_rows})
    checks = tuple(CheckDay(_day(d), sum(s.values()), s.get("passed", 0), s.get("failed", 0),
                            s.get("error", 0), s.get("recorded", 0))
                   for d, s in repo.checks_per_day(span, env))
    coverage = _coverage(project, repo, env or window.target)
    if coverage is None:
        notes.append(f"environment {env or window.target!r} has no tables yet: no coverage")
    weeks = tuple(PromotionWeek(_day(w), s.get("promoted", 0),
                                s.get("refused", 0) + s.get("conflict", 0),
                                sum(s.values()) - s.get("promoted", 0) - s.get("refused", 0)
                                - s.get("conflict", 0))
                  for w, s in repo.promotions_per_week(span, window.target))
    lead, changes = _promotions(repo, span, window.target)
    restores = _restores(repo, span, env)
    slas = _slas(project, repo, span, env)
    if slas is None:
        notes.append("no SLAs in andon.yaml (sla:): SLA adherence is left out")
    if runs.runs == 0 and not checks and not weeks:
        notes.insert(0, f"nothing yet: no runs, checks or promotions since "
                        f"{window.since:%Y-%m-%d %H:%M} UTC")
    return Report(window, runs, per_day, pipelines, steps, sources, checks, coverage, weeks,
                  lead, changes, restores, slas, tuple(notes))


def _sources(project: Project, repo: AnalyticsRepository, span: tuple[float, float],
             by_step: dict[str, dict[str, Any]]) -> tuple[SourceFigures, ...]:
    names = sorted(n for n, s in project.dag.steps.items() if s.source is not None)
    landed = repo.landed(span, names)
    out = []
    for name in names:
        r = by_step.get(name, {})
        built, failed = r.get("built", 0), r.get("failed", 0)
        rows, rejected = r.get("rows", 0), r.get("rejects", 0)
        files, _bytes, withdrawn = landed.get(name, (0, 0, 0))
        out.append(SourceFigures(name, built + failed, failed, _rate(failed, built + failed),
                                 rows, rejected, _rate(rejected, rows + rejected), files,
                                 withdrawn))
    return tuple(out)


def _coverage(project: Project, repo: AnalyticsRepository, environment: str
              ) -> Coverage | None:
    schemas = repo.head_schemas(environment)
    if not schemas:
        return None
    checked: dict[str, set[str]] = {}
    for check in project.checks:
        checked.setdefault(check.table, set()).update(check.columns)
    tables = sorted(schemas)
    with_checks = [tb for tb in tables if tb in checked]
    columns = sum(len(cols) for cols in schemas.values())
    columns_checked = sum(len(set(cols) & checked.get(tb, set()))
                          for tb, cols in schemas.items())
    return Coverage(environment, len(tables), len(with_checks), columns, columns_checked,
                    _rate(len(with_checks), len(tables)), _rate(columns_checked, columns),
                    tuple(tb for tb in tables if tb not in checked))


def _promotions(repo: AnalyticsRepository, span: tuple[float, float], target: str
                ) -> tuple[Durations, ChangeFailures]:
    promoted = repo.promotions(span, target)
    starts = repo.branch_starts(sorted({p["source"] for p in promoted}))
    leads = []
    for p in promoted:
        created, first_logged = starts.get(p["source"], (None, None))
        # a branch deleted and made again since: its creation is after this promotion
        begun = created if created is not None and created <= p["at"] else first_logged
        candidates = [at for at in (begun, p["previous"]) if at is not None and at <= p["at"]]
        if candidates:
            leads.append(p["at"] - max(candidates))
    failed = sum(1 for p in promoted if p["failed_at"] is not None)
    return (Durations.of(leads),
            ChangeFailures(target, len(promoted), failed, _rate(failed, len(promoted))))


def _restores(repo: AnalyticsRepository, span: tuple[float, float], environment: str | None
              ) -> Restores:
    found = repo.restores(span, environment)
    times = [back - at for _env, at, back in found if back is not None]
    return Restores(len(found), len(times), len(found) - len(times), Durations.of(times))


def _slas(project: Project, repo: AnalyticsRepository, span: tuple[float, float],
          environment: str | None) -> tuple[SlaFigures, ...] | None:
    if not project.config.sla:
        return None
    breaches = repo.sla_breaches(span)
    out = []
    for table, sla in sorted(project.config.sla.items()):
        env = sla.environment or project.config.default_environment
        if environment is not None and env != environment:
            continue
        first = repo.first_run_at(env)
        # the UTC days from the first one with a run (or the window's start) to today
        days = 0 if first is None else (_day(span[1]) - _day(max(span[0], first))).days + 1
        rule = "fresh_by" if sla.fresh_by else "max_age"
        n = breaches.get((table, env), 0)
        adherence = (max(0.0, 1 - n / days) if days else None) if rule == "fresh_by" else None
        out.append(SlaFigures(table, env, rule, n, days, adherence))
    return tuple(out)


__all__ = ["DEFAULT_SINCE", "Report", "parse_since", "report"]
