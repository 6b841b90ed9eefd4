"""CLI verbs of the server: ``andon server`` (the HTTP API, with uvicorn) and ``andon tokens``
(the API tokens it accepts)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from andon.cli.app import (
    Format,
    FormatOpt,
    ProjectOpt,
    _emit,
    _escape,
    _reader,
    _session,
    app,
    console,
    err_console,
)

if TYPE_CHECKING:
    from andon.schedule.scheduler import Scheduler

tokens_app = typer.Typer(help="API tokens for the server: create (shown once), list, revoke.",
                         no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


@app.command()
def server(
    project: ProjectOpt = None,
    host: Annotated[str, typer.Option(
        help="address to listen on; any other than 127.0.0.1 requires a token on every "
             "request")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8765,
    scheduler: Annotated[bool, typer.Option(
        "--scheduler/--no-scheduler",
        help="run the schedules and sensors of andon.yaml in this process too (off: run "
             "`andon scheduler` elsewhere)")] = True,
    access_log: Annotated[bool, typer.Option(
        "--access-log/--no-access-log",
        help="log a line per request (off by default: errors are logged either way, and "
             "a request costs less without it)")] = False,
) -> None:
    """Serve the project's HTTP API (OpenAPI at /openapi.json) and web UI, and run its
    schedules and sensors. Needs andon[server]."""
    from andon.server import require_extra

    require_extra()
    import uvicorn

    from andon.server import create_app

    session = _reader(project)
    store = session.project.store
    api = create_app(session.project, host=host)
    if api.state.andon.local_admin():
        err_console.print(f"[yellow]no users are configured: requests without a token act as "
                          f"{_escape(session.user)} (admin); serve on 127.0.0.1 only[/]")
    elif not store.tokens.all():
        err_console.print("[yellow]every request needs a token and none exists yet: "
                          "andon tokens create NAME --role ROLE[/]")
    console.print(f"andon server for {session.project.root}: http://{host}:{port}/ "
                  f"(API: http://{host}:{port}/api, OpenAPI: /openapi.json)")
    sched = _start_scheduler(session.project.root) if scheduler else None
    try:
        # uvicorn picks httptools and uvloop, which the server extra installs
        uvicorn.run(api, host=host, port=port, log_level="info", access_log=access_log)
    finally:
        if sched is not None:
            sched.stop()  # runs under way go on to their end in their threads
            sched.close()


def _start_scheduler(root: Path) -> Scheduler:
    """The project's scheduler in a background thread of the server (it reads andon.yaml
    again when it changes, so schedules added later run without a restart)."""
    import threading

    from andon.project import Project
    from andon.schedule.scheduler import Scheduler

    proj = Project.load(root, tolerant=True)

    def log(message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')} scheduler:[/] {_escape(message)}")

    sched = Scheduler(proj, log=log)
    threading.Thread(target=sched.run_forever, name="andon-scheduler", daemon=True).start()
    log(f"{len(proj.config.schedules)} schedule(s), {len(proj.config.sensors)} sensor(s)")
    return sched


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="token name, e.g. ci-bot")],
    role: Annotated[str, typer.Option(help="admin, operator, developer or viewer")],
    user: Annotated[str | None, typer.Option(
        help="the user it acts as (default: the token's name)")] = None,
    expires: Annotated[str | None, typer.Option(
        help="valid for this long, e.g. 30d or 12h (default: until revoked)")] = None,
    project: ProjectOpt = None,
) -> None:
    """Create an API token and print it: it is shown this once, the store keeps its hash."""
    token = _session(project).tokens_create(name, role, user=user, expires=expires)
    err_console.print(f"token {_escape(name)} ({role}, acting as {_escape(user or name)}): "
                      "copy it now, it is not shown again")
    typer.echo(token)


@tokens_app.command("list")
def tokens_list(project: ProjectOpt = None, fmt: FormatOpt = Format.table) -> None:
    """Tokens: name, user, role, created, expires, last used (never the token)."""
    session = _reader(project)

    def when(ts: float | None) -> str | None:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(ts)) if ts else None

    now = time.time()
    rows = [{**tok, "created_at": when(tok["created_at"]), "expires_at": when(tok["expires_at"]),
             "last_used_at": when(tok["last_used_at"]),
             "expired": tok["expires_at"] is not None and tok["expires_at"] <= now}
            for tok in session.tokens_list()]
    _emit(rows, fmt, title="tokens", read=session.project)


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument(help="token name")],
                  project: ProjectOpt = None) -> None:
    """Revoke a token: requests with it are refused from now on."""
    _session(project).tokens_revoke(name)
    console.print(f"revoked token {name}")
