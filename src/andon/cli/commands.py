"""CLI verbs of the value pipeline: init, run, plan, demo, runs, tables, show, query,
lineage, rejects, test, profile and checks."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from andon.cli.app import (
    EnvOpt,
    Format,
    FormatOpt,
    ParamOpt,
    ProjectOpt,
    SetsOpt,
    _emit,
    _emit_obj,
    _reader,
    _session,
    app,
    checks_app,
    console,
    err_console,
    runs_app,
)
from andon.errors import AndonError
from andon.service import Session, local_user

# project ----------------------------------------------------------------------------------


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="folder to create")],
    example: Annotated[str | None, typer.Option(help="create an example: flights")] = None,
) -> None:
    """Create a project (empty, or an example with its data)."""
    from andon.examples import init_project

    root = init_project(directory, example)
    console.print(f"[green]created[/] {root}")
    if example == "flights":
        console.print(
            "six months of flights wait in incoming/flights; six more in arrivals/.\n"
            f"next: cd {directory} && andon run"
        )


@app.command()
def run(
    selection: Annotated[list[str] | None, typer.Argument(
        help="steps: NAME, +NAME (with ancestors), NAME+ (with descendants), tag:T")] = None,
    project: ProjectOpt = None,
    env: EnvOpt = None,
    param: ParamOpt = None,
    params: SetsOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan only")] = False,
    wait: Annotated[float, typer.Option(help="seconds to wait for a busy environment")] = 0.0,
    start: Annotated[str | None, typer.Option(
        help="backfill: recompute incremental steps from this date/time (with --end)")] = None,
    end: Annotated[str | None, typer.Option(help="backfill: up to this date/time (excluded)")]
    = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    no_pull: Annotated[bool, typer.Option(
        "--no-pull", help="do not pull database and HTTP sources first; ingest only what "
                          "earlier pulls landed")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Pull database and HTTP sources, build what changed, check it, and publish to the
    environment."""
    session = _session(project, param, env, params)
    if dry_run:
        _show_plan(session, env, selection or [], fmt)
        return
    from andon.progress import RunDisplay

    quiet = quiet or fmt is not Format.table
    display = RunDisplay(err_console if quiet else console, quiet=quiet)
    if (start is None) != (end is None):
        raise AndonError("a backfill needs both --start and --end",
                         hint="e.g. andon run flights+ --start 2013-03-01 --end 2013-04-01")
    window = (start, end) if start is not None and end is not None else None

    def pulled(row: dict[str, Any]) -> None:
        if not quiet:
            what = f"{row['rows']} new row(s), landed" if row["landed"] else "nothing new"
            console.print(f"pulled {row['source']}: {what} (read by {row['reader']})")

    result = session.run(env, selection or [], listener=display, wait_for_lease=wait,
                         backfill=window, pull=not no_pull, on_pull=pulled)
    if fmt is not Format.table:
        _emit_obj(result.to_dict(), fmt)
    if result.status == "cancelled":
        # the run is recorded and the lease released; a Python step still sleeping in a
        # worker thread cannot be interrupted, so leave without waiting for it
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    raise typer.Exit(0 if result.ok else (130 if result.status == "cancelled" else 1))


def _show_plan(session: Session, env: str | None, selection: Sequence[str], fmt: Format
               ) -> None:
    from andon.sources.pull import pulls_planned
    from andon.stages import explain

    p = session.plan(env, selection)
    pulls = pulls_planned(session.project, selection)
    if fmt is Format.json:
        _emit_obj({**p.to_dict(), "pulls": pulls}, fmt)
        return
    rows = explain(p.stages())
    if fmt is Format.csv:
        _emit(rows, fmt)
        return
    _emit(rows, fmt, title=f"plan for {p.environment}")
    if pulls:
        console.print(f"andon run pulls first (not done here): {', '.join(pulls)}; their "
                      "new rows land then, after this plan")
    console.print(f"{p.summary()} (dry run: nothing was changed)")


@app.command()
def plan(
    selection: Annotated[list[str] | None, typer.Argument(help="steps to plan")] = None,
    project: ProjectOpt = None,
    env: EnvOpt = None,
    param: ParamOpt = None,
    params: SetsOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Show what a run would do, without doing anything."""
    _show_plan(_session(project, param, env, params), env, selection or [], fmt)


@app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="folder for the demo project")] = Path(
        "andon-flights-demo"),
) -> None:
    """Create the flights example, then land its months batch by batch, running after each."""
    from andon import published
    from andon.examples import (
        BROKEN_MONTH,
        break_file,
        checks_line,
        deliver,
        init_project,
        pending_arrivals,
    )
    from andon.progress import RunDisplay
    from andon.project import Project

    t0 = time.perf_counter()
    root = init_project(directory, "flights")
    console.print(f"[bold]andon demo[/]: the flights example in {root}")
    proj = Project.load(root)
    session = Session(proj, local_user())
    arrivals = pending_arrivals(root)
    broken = next(f for f in arrivals if f.name == BROKEN_MONTH)
    correction = break_file(root, broken)
    batches: list[tuple[str, Path | None]] = [("months 1-6", None)]
    for f in arrivals:
        batches.append((f.name + (" (broken)" if f == broken else ""), f))
        if f == broken:
            batches.append((f.name + " (re-sent)", correction))
    for i, (label, file) in enumerate(batches):
        if file is not None:
            deliver(root, file)
        result = session.run(listener=RunDisplay(console, quiet=True))
        c = result.counts()
        landed = sum(s.landed for s in result.steps)
        status = "[green]ok[/]" if result.ok else f"[red]{result.status}[/]"
        console.print(
            f"batch {i + 1:>2}/{len(batches)} {label:<30} {status} landed {landed}, "
            f"built {c.get('built', 0)}, reused {c.get('reused', 0)}, "
            f"checks: {checks_line(result.checks)} in {result.seconds:.2f}s",
            soft_wrap=True,
        )
        if not result.ok:  # the display printed what failed
            console.print("[yellow]the line stopped: prod still shows the data before this "
                          "batch. The sender re-sends a corrected file…[/]")
    cols, rows = published.query(
        proj,
        "SELECT airline, sum(flights) AS flights, round(avg(on_time_share), 3) AS on_time "
        "FROM daily_carrier_kpis GROUP BY airline ORDER BY flights DESC LIMIT 5",
    )
    _emit([dict(zip(cols, r, strict=True)) for r in rows], Format.table,
          title="top carriers of 2013 (prod)")
    total = published.query(proj, "SELECT count(*) FROM flights")[1][0][0]
    console.print(
        f"published {total:,} flights to prod in {time.perf_counter() - t0:.1f}s.\n"
        f"try: cd {directory} && andon tables && andon show daily_carrier_kpis && andon runs"
    )
    proj.close()


# inspect ----------------------------------------------------------------------------------


@runs_app.callback()
def runs(
    ctx: typer.Context,
    project: ProjectOpt = None,
    env: EnvOpt = None,
    limit: Annotated[int, typer.Option(help="how many")] = 20,
    fmt: FormatOpt = Format.table,
) -> None:
    """List recent runs."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"project": project}
        return
    session = _reader(project)
    _emit([r.to_dict() for r in session.runs(env, limit)], fmt, title="runs",
          read=session.project)


@runs_app.command("show")
def runs_show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="run id or 'latest'")],
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Show one run: status, steps, timings, errors."""
    project = project or (ctx.obj or {}).get("project")
    session = _reader(project)
    details = session.run_details(run_id).to_dict()
    if fmt is not Format.table:
        _emit_obj(details, fmt, read=session.project)
        return
    head = {k: v for k, v in details.items() if k != "steps"}
    for k, v in head.items():
        if v not in (None, "", [], {}):
            console.print(f"[bold]{k}[/]: {v}")
    _emit([{k: v for k, v in s.items() if k != "fingerprint"} for s in details["steps"]],
          fmt, title="steps")


@runs_app.command("cancel")
def runs_cancel(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="run id or 'latest'")],
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Stop a running run (from any process): it ends as cancelled, nothing published."""
    project = project or (ctx.obj or {}).get("project")
    run = _session(project).cancel_run(run_id)
    if fmt is not Format.table:
        _emit_obj({"id": run["id"], "environment": run["environment"],
                   "status": run["status"], "cancel_requested_by": run["cancel_requested_by"]},
                  fmt)
        return
    console.print(f"cancel requested for run {run['id']} in {run['environment']}: it stops "
                  "within seconds, and its environment is not changed")


@app.command()
def tables(project: ProjectOpt = None, env: EnvOpt = None, fmt: FormatOpt = Format.table) -> None:
    """List the tables an environment publishes."""
    session = _reader(project)
    _emit([t.to_dict() for t in session.tables(env)], fmt, title="tables", read=session.project)


@app.command()
def show(
    table: Annotated[str, typer.Argument(help="table name")],
    project: ProjectOpt = None,
    env: EnvOpt = None,
    rows: Annotated[int, typer.Option(help="sample rows")] = 5,
    fmt: FormatOpt = Format.table,
) -> None:
    """Show a table: schema, rows, artifact, fingerprint, parents and children."""
    session = _reader(project)
    info = session.show(table, env, rows=rows)
    if fmt is not Format.table:
        _emit_obj(info, fmt, read=session.project)
        return
    for k in ("table", "environment", "kind", "zone", "file", "description", "owner", "tags",
              "materialized", "rows", "bytes", "rejects", "fingerprint", "artifact",
              "built_by_run", "parents", "children"):
        v = info[k]
        if v not in (None, "", []):
            console.print(f"[bold]{k}[/]: {', '.join(v) if isinstance(v, list) else v}")
    sample = info["sample"]
    grid = Table(title="schema and sample rows", header_style="bold")
    grid.add_column("column")
    grid.add_column("type")
    for i in range(len(sample)):
        grid.add_column(f"row {i + 1}", overflow="fold")
    for col in info["schema"]:
        values = ["" if r[col["name"]] is None else str(r[col["name"]]) for r in sample]
        grid.add_row(col["name"], col["type"], *values)
    console.print(grid)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="a SELECT over the environment's tables")],
    project: ProjectOpt = None,
    env: EnvOpt = None,
    limit: Annotated[int | None, typer.Option(help="at most this many rows")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="read the environment as it "
                                              "was at this time (e.g. 2026-11-01T12:00)")] = None,
    commit: Annotated[str | None, typer.Option(help="read this commit")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Query an environment's tables with one read-only SELECT (DuckDB)."""
    session = _reader(project)
    cols, rows = session.query(sql, env, limit=limit, as_of=as_of, commit=commit)
    _emit([dict(zip(cols, r, strict=True)) for r in rows], fmt, read=session.project)


@app.command()
def lineage(
    table: Annotated[str | None, typer.Argument(
        help="table name, or TABLE.COLUMN for column lineage")] = None,
    project: ProjectOpt = None,
    env: EnvOpt = None,
    upstream: Annotated[bool, typer.Option("--upstream", help="TABLE.COLUMN: only where "
                                           "it comes from")] = False,
    downstream: Annotated[bool, typer.Option("--downstream", help="TABLE.COLUMN: only "
                                             "where it goes")] = False,
    impact: Annotated[bool, typer.Option("--impact", help="the downstream columns the "
                                         "steps a run would change touch")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Show where a table (or a column: TABLE.COLUMN) comes from and what depends on it;
    --impact lists the columns a change reaches before it runs."""
    if impact:
        _lineage_impact(project, env, fmt)
        return
    if table is None:
        raise typer.BadParameter("name a table or TABLE.COLUMN (or give --impact)")
    if "." in table:
        _column_lineage(table, project, env, upstream, downstream, fmt)
        return
    session = _reader(project)
    info = session.lineage(table)
    if fmt is not Format.table:
        _emit_obj(info, fmt, read=session.project)
        return
    from rich.tree import Tree

    up = Tree(f"[bold]{table}[/] reads from")
    down = Tree(f"[bold]{table}[/] feeds")

    def add(node: Tree, items: list[dict[str, Any]], key: str) -> None:
        for it in items:
            add(node.add(f"{it['name']} [dim]({it['zone']})[/]"), it[key], key)

    add(up, info["upstream"], "parents")
    add(down, info["downstream"], "children")
    console.print(up)
    console.print(down)


def _column_lineage(ref: str, project: Path | None, env: str | None, upstream: bool,
                    downstream: bool, fmt: Format) -> None:
    from andon.lineage import column_lineage

    session = _reader(project)
    both = upstream == downstream
    info = column_lineage(session.project, ref, upstream=upstream or both,
                          downstream=downstream or both, environment=env)
    if fmt is not Format.table:
        _emit_obj(info, fmt, read=session.project)
        return
    if info["note"]:
        console.print(f"[yellow]{info['note']}[/]")
    for key, arrow, side in (("upstream", "<-", "via"), ("downstream", "->", "from")):
        if key not in info:
            continue
        console.print(f"[bold]{ref}[/] {key}:" + ("" if info[key] else " nothing"))
        for e in info[key]:
            console.print(f"  {'  ' * (e['depth'] - 1)}{arrow} {e['table']}.{e['column']} "
                          f"[dim]({e['kind']}, {side} {e[side]})[/]")


def _lineage_impact(project: Path | None, env: str | None, fmt: Format) -> None:
    from andon.lineage import impact

    session = _reader(project)
    plan = session.plan(env)
    changed = impact(session.project, plan)
    if fmt is not Format.table:
        _emit_obj({"environment": plan.environment, "changed": changed}, fmt,
                  read=session.project)
        return
    if not changed:
        console.print(f"no step changes its code in {plan.environment}")
    for c in changed:
        console.print(f"[bold]{c['step']}[/] changes; it reaches "
                      f"{len(c['downstream'])} downstream column(s)")
        for d in c["downstream"]:
            console.print(f"  {d['table']}.{d['column']} [dim]({d['kind']})[/]")


@app.command()
def rejects(
    source: Annotated[str, typer.Argument(help="source name")],
    project: ProjectOpt = None,
    limit: Annotated[int, typer.Option(help="how many")] = 100,
    fmt: FormatOpt = Format.table,
) -> None:
    """Rows of a source that did not parse: file, line and reason."""
    session = _reader(project)
    _emit(session.rejects(source, limit), fmt, title=f"rejects of {source}",
          read=session.project)


# checks -----------------------------------------------------------------------------------


@app.command("test")
def test_cmd(
    selection: Annotated[list[str] | None, typer.Argument(help="tables to test")] = None,
    project: ProjectOpt = None,
    env: EnvOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Run every check against an environment's current tables, without rebuilding."""
    results = _session(project).test(env, selection or [])
    rows = [{"name": r.name, "table": r.table, "severity": r.severity, "status": r.status,
             "metric": r.metric, "message": r.message} for r in results]
    if fmt is Format.json:
        _emit([r.to_dict() for r in results], fmt)
    else:
        _emit(rows, fmt, title="checks")
    if fmt is Format.table:
        from andon.checks.summary import tally

        console.print(f"{len(results)} checks: {tally(results)}")
    raise typer.Exit(1 if any(r.stops_the_line for r in results) else 0)


@app.command()
def profile(
    table: Annotated[str, typer.Argument(help="table name")],
    project: ProjectOpt = None,
    env: EnvOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Profile a table: per column type, nulls, distinct, range, mean, quantiles, top values."""
    prof = _session(project).profile(table, env)
    if fmt is not Format.table:
        rows = [{"column": c, **p} for c, p in prof["columns"].items()]
        _emit_obj({**prof, "columns": rows} if fmt is Format.json else {"steps": rows}, fmt)
        return
    console.print(f"[bold]{table}[/]: {prof['rows']:,} rows, artifact {prof['fingerprint'][:12]}")
    rows = []
    for c, p in prof["columns"].items():
        top = ", ".join(f"{v} ({n})" for v, n in (p.get("top_values") or [])[:3])
        rows.append({"column": c, "type": p["type"], "nulls": p["nulls"],
                     "distinct": p.get("distinct"), "min": p.get("min"), "max": p.get("max"),
                     "mean": None if p.get("mean") is None else round(p["mean"], 3),
                     "pattern": p.get("pattern"), "top": top})
    _emit(rows, fmt, title="profile")


@checks_app.command("list")
def checks_list(project: ProjectOpt = None, fmt: FormatOpt = Format.table) -> None:
    """List the project's checks."""
    session = _reader(project)
    _emit(session.checks_list(), fmt, title="checks", read=session.project)


@checks_app.command("history")
def checks_history(
    name: Annotated[str, typer.Argument(help="check name")],
    project: ProjectOpt = None,
    env: EnvOpt = None,
    limit: Annotated[int, typer.Option(help="how many results")] = 30,
    fmt: FormatOpt = Format.table,
) -> None:
    """A check's results over time, as a chart with its control limits."""
    session = _reader(project)
    rows = session.checks_history(name, env, limit)
    if fmt is not Format.table:
        _emit(rows, fmt, read=session.project)
        return
    console.print(history_chart(name, rows))


def history_chart(name: str, rows: list[dict[str, Any]]) -> Table:
    """One line per result: its metric as a dot between the control limits (when known)."""
    spc = next((r["spc"] for r in reversed(rows) if r.get("spc") and r["spc"].get("judged")),
               None)
    values = [r["metric"] for r in rows if r["metric"] is not None]
    lo_hi = values + ([spc["lower"], spc["upper"]] if spc else [])
    lo, hi = (min(lo_hi), max(lo_hi)) if lo_hi else (0.0, 1.0)
    width = 40
    span = (hi - lo) or 1.0

    def pos(v: float) -> int:
        return max(0, min(width - 1, round((v - lo) / span * (width - 1))))

    def num(v: float) -> str:
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.4g}"

    title = f"{name}: {len(rows)} results"
    if spc:
        title += (f"  (control limits {num(spc['lower'])} .. {num(spc['upper'])}, "
                  f"mean {num(spc['mean'])})")
    table = Table(title=title, header_style="bold")
    for col in ("id", "at", "status", "metric", "chart"):
        table.add_column(col)
    for r in rows:
        cells = [" "] * width
        if spc:
            cells[pos(spc["lower"])] = "["
            cells[pos(spc["upper"])] = "]"
            cells[pos(spc["mean"])] = "|"
        style = {"passed": "green", "failed": "red", "error": "red"}.get(r["status"], "yellow")
        if r["metric"] is not None:
            cells[pos(r["metric"])] = "●"
        mark = " (ack)" if r["acknowledged"] else (" (incident)" if r["incident"] else "")
        table.add_row(str(r["id"]), str(r["at"]), f"[{style}]{r['status']}{mark}[/]",
                      "" if r["metric"] is None else num(r["metric"]), "".join(cells))
    return table


@checks_app.command("ack")
def checks_ack(
    name: Annotated[str, typer.Argument(help="check name")],
    result_id: Annotated[int | None, typer.Option("--id", help="result id (default latest)")]
    = None,
    note: Annotated[str, typer.Option(help="why this result is expected")] = "",
    project: ProjectOpt = None,
) -> None:
    """Mark a result as expected: it joins the SPC baseline instead of counting as incident."""
    row = _session(project).checks_ack(name, result_id, note)
    console.print(f"acknowledged result {row['id']} of {name} (metric {row['metric']})")


@checks_app.command("suggest")
def checks_suggest(
    table: Annotated[str, typer.Argument(help="table name")],
    project: ProjectOpt = None,
    env: EnvOpt = None,
    write: Annotated[Path | None, typer.Option(help="write the YAML to this file")] = None,
) -> None:
    """Propose checks from a table's profile and history, as YAML to edit and keep."""
    text = _session(project).checks_suggest(table, env)
    if write is None:
        sys.stdout.write(text)
        return
    if write.exists():
        raise AndonError(f"{write} exists", hint="choose a new file; nothing was changed")
    write.parent.mkdir(parents=True, exist_ok=True)
    write.write_text(text)
    console.print(f"wrote {write}")


