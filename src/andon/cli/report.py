"""``andon report``: DataOps analytics over a window, as one Rich table per section or as the
report's records in JSON."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from andon.cli.app import ProjectOpt, _dumps, _escape, _problems, _reader, app, console

if TYPE_CHECKING:
    from andon.analytics import Durations, Report

SHOWN = 20  # rows of a long section in the table; JSON has them all


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


@app.command()
def report(
    since: Annotated[str, typer.Option(help="window: 30d, 12h, 2w, or an ISO date")] = "30d",
    env: Annotated[str | None, typer.Option(
        "--env", "-e", help="only this environment's runs and checks, and promotions into it "
                            "(default: every environment; promotions into prod)")] = None,
    project: ProjectOpt = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="output format")]
    = ReportFormat.table,
) -> None:
    """DataOps analytics: runs and failure rates per pipeline, step and source; checks per
    day; check coverage; promotions, lead time, change-failure rate, time to restore; SLAs."""
    session = _reader(project)
    result = session.report(since, env)
    if fmt is ReportFormat.json:
        sys.stdout.write(_dumps({**result.to_dict(), **_problems(session.project)}) + "\n")
        return
    _print(result)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def duration(seconds: float | None) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``, ``12.3s``; ``-`` for none."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
           more: int = 0) -> None:
    if not rows:
        console.print(f"[bold]{_escape(title)}[/]: [dim]none[/]")
        return
    table = Table(title=title, header_style="bold", title_justify="left")
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*("-" if v is None else _escape(str(v)) for v in row))
    if more:
        table.caption = f"{more} more in --format json"
    console.print(table)


def _durations(d: Durations) -> list[str]:
    return [duration(d.mean_seconds), duration(d.median_seconds), duration(d.max_seconds)]


def _print(r: Report) -> None:
    w = r.window
    scope = f"environment {w.environment}" if w.environment else "all environments"
    console.print(f"[bold]andon report[/] {w.since:%Y-%m-%d %H:%M} to {w.until:%Y-%m-%d %H:%M}"
                  f" UTC, {_escape(scope)}; promotions into {_escape(w.target)}")
    for note in r.notes:
        console.print(f"[yellow]{_escape(note)}[/]")
    if r.empty:
        return
    t = r.runs
    _table("runs", ["runs", "succeeded", "failed", "cancelled", "other", "failure rate"],
           [[t.runs, t.succeeded, t.failed, t.cancelled, t.other, _pct(t.failure_rate)]])
    days = r.runs_per_day[-SHOWN:]
    _table("runs per day", ["day", "runs", "failed"],
           [[d.day, d.runs, d.failed] for d in days], len(r.runs_per_day) - len(days))
    _table("pipelines", ["pipeline", "runs", "failed", "failure rate"],
           [[p.pipeline, p.runs, p.failed, _pct(p.failure_rate)] for p in r.pipelines])
    worst = sorted(r.steps, key=lambda s: (-s.failed, s.step))[:SHOWN]
    _table("steps (most failures first)",
           ["step", "pipeline", "runs", "built", "reused", "failed", "failure rate",
            "mean build"],
           [[s.step, s.pipeline, s.runs, s.built, s.reused, s.failed, _pct(s.failure_rate),
             duration(s.mean_seconds)] for s in worst], len(r.steps) - len(worst))
    _table("sources (data providers)",
           ["source", "loads", "failed", "failure rate", "rows", "rejected rows",
            "reject rate", "files landed", "withdrawn"],
           [[s.source, s.loads, s.failed, _pct(s.failure_rate), s.rows, s.rejected_rows,
             _pct(s.reject_rate), s.files, s.withdrawn] for s in r.sources])
    checks = r.checks_per_day[-SHOWN:]
    _table("checks per day", ["day", "run", "passed", "failed", "errored", "recorded"],
           [[c.day, c.run, c.passed, c.failed, c.errored, c.recorded] for c in checks],
           len(r.checks_per_day) - len(checks))
    if r.coverage is not None:
        c = r.coverage
        _table(f"check coverage ({c.environment})",
               ["tables checked", "columns checked", "tables without checks"],
               [[f"{c.tables_checked}/{c.tables} ({_pct(c.table_share)})",
                 f"{c.columns_checked}/{c.columns} ({_pct(c.column_share)})",
                 ", ".join(c.unchecked_tables) or "-"]])
    _table("promotions per week", ["week of", "promoted", "refused", "other"],
           [[p.week, p.promoted, p.refused, p.other] for p in r.promotions_per_week])
    cf, rs = r.change_failures, r.restores
    _table("delivery", ["figure", "count", "value", "mean", "median", "max"], [
        ["lead time (branch to promotion)", r.lead_time.count, "-", *_durations(r.lead_time)],
        [f"change-failure rate ({cf.target})", f"{cf.failed}/{cf.promotions}", _pct(cf.rate),
         "-", "-", "-"],
        ["time to restore", f"{rs.restored}/{rs.incidents} restored",
         f"{rs.open} open", *_durations(rs.time_to_restore)],
    ])
    if r.slas is not None:
        _table("SLA adherence", ["table", "environment", "rule", "breaches", "days",
                                 "adherence"],
               [[s.table, s.environment, s.rule, s.breaches, s.days, _pct(s.adherence)]
                for s in r.slas])
