"""``andon scheduler`` (the loop in the foreground) and ``andon schedules list|ticks``."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from andon.cli.app import Format, FormatOpt, ProjectOpt, _emit, _escape, app, console, err_console

schedules_app = typer.Typer(help="Schedules and sensors: next ticks, past ticks and their runs.",
                            no_args_is_help=True)
app.add_typer(schedules_app, name="schedules")


@schedules_app.command("list")
def schedules_list(project: ProjectOpt = None, fmt: FormatOpt = Format.table) -> None:
    """Each schedule's next tick and each sensor's path, with the last run and its status."""
    from andon.project import Project
    from andon.schedule.listing import listing
    from andon.schedule.scheduler import check

    proj = Project.load(project, tolerant=True)
    check(proj)
    rows = listing(proj, time.time())
    if fmt is Format.table:
        rows = [{k: v for k, v in r.items() if k not in ("next_tick_utc", "timezone",
                                                           "files_seen")} for r in rows]
    _emit(rows, fmt, title="schedules and sensors", read=proj)


@schedules_app.command("ticks")
def schedules_ticks(
    name: Annotated[str | None, typer.Argument(help="a schedule or sensor (default: all)")]
    = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Past ticks: when, which run they started and how it ended."""
    from andon.project import Project
    from andon.store.clock import utc_or_none
    from andon.store.schedules import ScheduleRepository

    proj = Project.load(project, tolerant=True)
    ticks = ScheduleRepository(proj.store.engine).ticks(name, limit=limit)
    rows = [{"run_key": t["run_key"], "kind": t["kind"], "name": t["name"],
             "scheduled_at": utc_or_none(t["scheduled_at"]), "environment": t["environment"],
             "status": t["run_status"] or t["status"], "run": t["run_id"],
             **({"files": t["files"], "error": t["error"]} if fmt is not Format.table
                else {})}
            for t in ticks]
    _emit(rows, fmt, title="ticks", read=proj)


@app.command()
def scheduler(
    project: ProjectOpt = None,
    once: Annotated[bool, typer.Option("--once", help="evaluate once, run what is due, "
                                       "and exit (for a system cron)")] = False,
    interval: Annotated[float, typer.Option(help="seconds between evaluations", min=0.1)]
    = 1.0,
) -> None:
    """Run the schedules and sensors of andon.yaml in the foreground (Ctrl-C stops)."""
    from andon.project import Project
    from andon.schedule.scheduler import Scheduler

    def log(message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {_escape(message)}")

    proj = Project.load(project, tolerant=True)
    sched = Scheduler(proj, background=not once, log=log)
    if once:
        report = sched.tick()
        for err in report.errors:
            err_console.print(f"[bold red]error:[/] {_escape(err.render())}")
        done = sched.run_queued()
        sched.close()
        raise typer.Exit(1 if report.errors or any(t["status"] != "succeeded" for t in done)
                         else 0)
    try:
        log(f"scheduler for {proj.name}: {len(proj.config.schedules)} schedule(s), "
            f"{len(proj.config.sensors)} sensor(s); Ctrl-C stops")
        sched.run_forever(interval)
    except KeyboardInterrupt:
        sched.stop()
        running = sched.running
        if running:
            err_console.print(f"stopping: waiting for {len(running)} run(s) to end "
                              "(Ctrl-C again leaves them; they show as abandoned)")
            try:
                sched.wait()
            except KeyboardInterrupt:
                raise typer.Exit(130) from None
        sched.close()
        err_console.print("scheduler stopped")


@app.command()
def sla(
    project: ProjectOpt = None,
    breaches: Annotated[bool, typer.Option("--breaches", help="list recorded breaches "
                                           "instead, newest first")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Each table's SLA (sla: in andon.yaml): on time or late, and its last refresh."""
    from andon.project import Project
    from andon.schedule import sla as slas
    from andon.schedule.scheduler import check
    from andon.store.clock import utc_or_none

    proj = Project.load(project, tolerant=True)
    check(proj)
    if breaches:
        rows = [{"table": b["table_name"], "environment": b["environment"], "rule": b["rule"],
                 "detected_at": utc_or_none(b["detected_at"]), "message": b["message"],
                 "alert_errors": b["alert_errors"]} for b in slas.breaches(proj)]
        _emit(rows, fmt, title="SLA breaches", read=proj)
        return
    statuses = slas.evaluate(proj, time.time())
    _emit([s.to_dict() for s in statuses], fmt, title="SLAs", read=proj)
    raise typer.Exit(1 if any(s.late for s in statuses) else 0)
