"""CLI verbs of the landing zone: list landed files, withdraw one."""

from __future__ import annotations

from typing import Annotated

import typer

from andon.cli.app import EnvOpt, Format, FormatOpt, ProjectOpt, _dumps, _emit, _load, app, console

landing_app = typer.Typer(help="Landed files: list them, withdraw one.", no_args_is_help=True)
app.add_typer(landing_app, name="landing")

BRIEF = ("file", "arrived_at", "sha256", "bytes", "rows", "rejects", "in_folder", "status")


@landing_app.command("list")
def landing_list(
    source: Annotated[str | None, typer.Argument(help="source name (default: every source)")]
    = None,
    project: ProjectOpt = None,
    env: EnvOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Landed files: arrival, sha256, size, rows, rejects, whether still in the folder, status
    (active, superseded, withdrawn, other path)."""
    from andon.service import Session, local_user  # imported when used: --help stays fast

    rows = Session(_load(project, env=env), local_user()).landing_list(source)
    if fmt is not Format.table:
        _emit(rows, fmt)
        return
    any_withdrawn = any(r["status"] == "withdrawn" for r in rows)
    shown = [({"source": r["source"]} if source is None else {})
             | {**{k: r[k] for k in BRIEF}, "sha256": r["sha256"][:12]}
             | ({"withdrawn": f"by {r['withdrawn_by']} at {r['withdrawn_at']}: {r['reason']}"
                 if r["status"] == "withdrawn" else ""} if any_withdrawn else {})
             for r in rows]
    _emit(shown, fmt, title=f"landed files of {source}" if source else "landed files")


@landing_app.command("withdraw")
def landing_withdraw(
    source: Annotated[str, typer.Argument(help="source name")],
    file: Annotated[str, typer.Argument(help="file name as sent, or its sha256 (8+ chars)")],
    reason: Annotated[str, typer.Option("--reason", help="why (kept for audit)")],
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Take a landed file out of its source: it stays in the landing zone, marked with who,
    when and why, and the next run rebuilds the source without it."""
    from andon.service import Session, local_user

    row = Session(_load(project), local_user()).landing_withdraw(source, file, reason=reason)
    if fmt is Format.json:
        print(_dumps(row))
        return
    if fmt is Format.csv:
        _emit([row], fmt)
        return
    console.print(f"withdrew {row['file']} ({row['sha256'][:12]}) from source {source}; "
                  f"the next run rebuilds it without the file")
