"""Terminal display of a run: a live table of steps (Rich), or plain lines when not a TTY."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from andon.events import RunResult, StepResult

STYLE = {
    "built": "green",
    "reused": "cyan",
    "failed": "bold red",
    "skipped": "yellow",
    "cancelled": "yellow",
    "building": "magenta",
    "waiting": "dim",
}
MAX_ROWS = 25


class RunDisplay:
    """A Listener that draws the run as it goes."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.live: Live | None = None
        self.state: dict[str, tuple[str, str]] = {}
        self.started: dict[str, float] = {}
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console,
        )
        self.task: Any = None
        self.run_id = 0

    def run_started(self, run_id: int, plan: Any) -> None:
        self.run_id = run_id
        for s in plan.steps:
            self.state[s.name] = ("waiting", s.reason)
        counts = plan.counts()
        if self.quiet:
            return
        self.console.print(
            f"[bold]run {run_id}[/] in [bold]{plan.environment}[/]: "
            f"{counts['build']} to build, {counts['reuse']} to reuse"
        )
        self.task = self.progress.add_task("steps", total=len(plan.steps))
        if self.console.is_terminal:
            self.live = Live(self._render(), console=self.console, refresh_per_second=8,
                             transient=True)
            self.live.start()

    def step_started(self, name: str, action: str) -> None:
        self.state[name] = ("building", self.state.get(name, ("", ""))[1])
        self.started[name] = time.perf_counter()
        self._refresh()

    def step_finished(self, result: StepResult) -> None:
        self.state[result.name] = (result.action, _detail(result))
        if self.task is not None:
            self.progress.advance(self.task)
        if self.live is None and not self.quiet and result.action != "reused":
            self.console.print(_line(result))
        self._refresh()

    def run_finished(self, result: RunResult) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self.quiet:
            if not result.ok:  # quiet means no progress, never a silent failure
                print_summary(self.console, result)
            return
        if self.console.is_terminal:
            self.console.print(self._table(final=True))
        print_summary(self.console, result)

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def _render(self) -> Group:
        return Group(self._table(final=False), self.progress)

    def _table(self, *, final: bool) -> Table:
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        table.add_column("step")
        table.add_column("state")
        table.add_column("detail", overflow="fold")
        names = list(self.state)
        if len(names) > MAX_ROWS:
            # big DAGs: show what is interesting, not a thousand reused rows
            names = [n for n in names if self.state[n][0] in ("building", "failed", "built")]
            names = names[-MAX_ROWS:]
        for name in names:
            state, detail = self.state[name]
            if state == "building":
                detail = f"{time.perf_counter() - self.started.get(name, time.perf_counter()):.1f}s"
            table.add_row(name, Text(state, style=STYLE.get(state, "")), detail)
        return table


def _detail(r: StepResult) -> str:
    parts = []
    if r.rows is not None:
        parts.append(f"{r.rows:,} rows")
    if r.landed:
        parts.append(f"{r.landed} file{'s' if r.landed != 1 else ''} landed")
    if r.rejects:
        parts.append(f"{r.rejects:,} rejected")
    if r.action == "built":
        parts.append(f"{r.seconds:.2f}s")
    if r.reason and r.action in ("built", "skipped"):
        parts.append(r.reason)
    if r.error is not None:
        parts.append(r.error.message)
    return ", ".join(parts)


def _line(r: StepResult) -> str:
    return f"  [{STYLE.get(r.action, '')}]{r.action:<9}[/] {r.name}  {_detail(r)}"


def print_checks(console: Console, result: RunResult) -> None:
    if not result.checks:
        return
    from andon.checks.summary import tally  # only when there are checks: start-up stays light

    console.print("checks: " + tally(result.checks))
    for c in result.checks:
        if c.status == "error" or (c.status == "failed" and c.severity != "info"):
            style = {"error": "red", "warn": "yellow"}.get(c.severity, "")
            what = " could not run" if c.status == "error" else ""
            if c.reused:  # judged by an earlier run on the same artifact: not news
                what, style = f"{what} (reused from an earlier run)", "dim"
            console.print(Text(f"  [{c.severity}] {c.name}{what}: {c.message}", style=style))


def print_summary(console: Console, result: RunResult) -> None:
    print_checks(console, result)
    counts = result.counts()
    text = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    rejects = sum(s.rejects for s in result.steps if s.action == "built")
    if result.ok:
        moved = (
            f"{result.environment} → commit {result.commit_id}"
            if result.commit_id != result.previous_commit
            else f"{result.environment} unchanged (nothing new)"
        )
        console.print(f"[green]✔ run {result.run_id} succeeded[/] in {result.seconds:.2f}s: "
                      f"{text}; {moved}")
        if rejects:
            console.print(f"[yellow]  {rejects:,} rows rejected[/]: see `andon rejects SOURCE`")
        return
    console.print(f"[bold red]✘ run {result.run_id} {result.status}[/] in {result.seconds:.2f}s: "
                  f"{text}; {result.environment} was not changed")
    if result.status == "cancelled" and result.error is not None:  # who or what stopped it
        console.print(Text(result.error.render(), style="yellow"))
    for s in result.steps:
        if s.action == "failed" and s.error is not None:
            console.print(Text(s.error.render(), style="red"))
