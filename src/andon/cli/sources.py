"""CLI verbs of sources: pull a database or HTTP source, show a source's schema history."""

from __future__ import annotations

from typing import Annotated

import typer

from andon.cli.app import EnvOpt, Format, FormatOpt, ProjectOpt, _emit, _load, app

sources_app = typer.Typer(help="Sources: pull database and HTTP sources, schema history.",
                          no_args_is_help=True)
app.add_typer(sources_app, name="sources")


@sources_app.command("pull")
def sources_pull(
    names: Annotated[list[str] | None, typer.Argument(
        help="sources to pull (default: every database and HTTP source)")] = None,
    project: ProjectOpt = None,
    env: EnvOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Pull database and HTTP sources now: each pull lands a snapshot file (hashed, kept in
    the landing zone) of what is new; the next run ingests it."""
    from andon import access
    from andon.service import local_user
    from andon.sources.pull import pull, pulled_sources

    proj = _load(project, env=env)
    user = local_user()
    chosen = list(names or pulled_sources(proj))
    access.require(proj.store, user, "run", f"pull source(s) {', '.join(chosen)}")
    rows = [pull(proj, name, user=user) for name in chosen]
    _emit([{**r, "sha256": (r["sha256"] or "")[:12]} if fmt is Format.table else r
           for r in rows], fmt, title="pulls")


@sources_app.command("history")
def sources_history(
    name: Annotated[str, typer.Argument(help="source name")],
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """The schema changes of a source, each with the file that brought it (added, removed,
    restored, widened, rescued)."""
    from andon.landed import source_step
    from andon.sources.evolution import history

    proj = _load(project)
    source_step(proj, name)  # a clear error for an unknown name
    rows = history(proj.store, name)
    if fmt is Format.table:
        rows = [{**r, "sha256": r["sha256"][:12]} for r in rows]
    _emit(rows, fmt, title=f"schema history of {name}")
