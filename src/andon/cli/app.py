"""What every command module of the CLI shares: the app and its groups, common options, the
session of the user at the keyboard, and output as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from andon.service import Session, local_user

if TYPE_CHECKING:  # the rest is imported by the commands that use it: start-up stays cheap
    from andon.project import Project

app = typer.Typer(
    name="andon",
    help="andon: tested data pipelines. A failing check stops the line.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="List runs, or show one.", invoke_without_command=True)
app.add_typer(runs_app, name="runs")
checks_app = typer.Typer(help="Data checks: list, history, acknowledge, suggest.",
                         no_args_is_help=True)
app.add_typer(checks_app, name="checks")

def _console(stderr: bool = False) -> Console:
    # piped output keeps values whole (`andon tables | grep` must find names)
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, soft_wrap=True, width=None if stream.isatty() else 200)


console = _console()
err_console = _console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


ProjectOpt = Annotated[
    Path | None, typer.Option("--project", "-p", help="project folder (default: search upwards)")
]
EnvOpt = Annotated[str | None, typer.Option("--env", "-e", help="environment (default: prod)")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="output format")]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", help="override a parameter: NAME=VALUE")
]
SetsOpt = Annotated[
    list[str] | None, typer.Option("--params", help="apply a named parameter set")
]


def _params(values: Sequence[str] | None) -> dict[str, Any]:
    from andon.params import parse_cli

    return parse_cli(values or [])


def _load(project: Path | None, params: Sequence[str] | None = None, env: str | None = None,
          sets: Sequence[str] | None = None) -> Project:
    from andon.project import Project

    return Project.load(project, params=_params(params), environment=env,
                        param_sets=tuple(sets or ()))


def _reader(project: Path | None) -> Session:
    """A session for a command that only reads: a file with a problem is left out and
    reported as a warning on stderr (and under "problems" in JSON) instead of failing."""
    from andon.project import Project

    proj = Project.load(project, tolerant=True)
    for p in proj.problems:
        err_console.print(f"[yellow]warning:[/] {_escape(p.render())}")
    return Session(proj, local_user())


def _session(project: Path | None, params: Sequence[str] | None = None, env: str | None = None,
             sets: Sequence[str] | None = None) -> Session:
    """The project, acted on by the user at this keyboard (``ANDON_USER`` or the login)."""
    return Session(_load(project, params, env, sets), local_user())


def _dumps(obj: Any) -> str:
    from andon.jsontext import dumps

    return dumps(obj, indent=2)


def _emit(rows: list[dict[str, Any]], fmt: Format, title: str | None = None,
          read: Project | None = None) -> None:
    """Rows as a table, CSV or JSON. JSON is a list of rows, or ``{"rows": …, "problems": …}``
    when files of the project ``read`` have problems."""
    if fmt is Format.json:
        problems = _problems(read)
        sys.stdout.write(_dumps({"rows": rows, **problems} if problems else rows) + "\n")
        return
    columns = list(rows[0]) if rows else []
    if fmt is Format.csv:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r[c] is None else r[c] for c in columns])
        sys.stdout.write(buf.getvalue())
        return
    if not rows:
        console.print(f"[dim]no {title or 'rows'}[/]")
        return
    table = Table(title=title, header_style="bold")
    for c in columns:
        table.add_column(str(c), overflow="fold")
    for r in rows:
        table.add_row(*("" if r[c] is None else str(r[c]) for c in columns))
    console.print(table)


def _emit_obj(obj: dict[str, Any], fmt: Format, read: Project | None = None) -> None:
    if fmt is Format.csv:
        _emit(obj.get("steps", []), fmt)
    else:
        sys.stdout.write(_dumps({**obj, **_problems(read)}) + "\n")


def _problems(read: Project | None) -> dict[str, Any]:
    if read is None or not read.problems:
        return {}
    return {"problems": [p.fields() for p in read.problems]}


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
