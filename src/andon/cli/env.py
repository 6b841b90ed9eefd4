"""CLI verbs of the innovation pipeline: env, promote, users, secrets, gc."""

from __future__ import annotations

import getpass
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from andon.cli.app import (
    EnvOpt,
    Format,
    FormatOpt,
    ProjectOpt,
    _emit,
    _emit_obj,
    _reader,
    _session,
    app,
    console,
)
from andon.errors import AndonError

env_app = typer.Typer(help="Environments: create, list, log, diff, reset, delete.",
                      no_args_is_help=True)
users_app = typer.Typer(help="Users and roles (admin, operator, developer, viewer).",
                        no_args_is_help=True)
secrets_app = typer.Typer(help="Encrypted secrets, used as {{ secret('name') }}.",
                          no_args_is_help=True)
app.add_typer(env_app, name="env")
app.add_typer(users_app, name="users")
app.add_typer(secrets_app, name="secrets")


def _git_branch(root: Path) -> str:
    """The branch checked out in the project's git repository (not the shell's folder)."""
    try:
        done = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=root,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        raise AndonError("git is not available", hint="give the environment a NAME") from None
    if done.returncode != 0 or done.stdout.strip() in ("", "HEAD"):
        raise AndonError("not on a git branch", hint="run inside a git checkout of a branch, "
                                                     "or give the environment a NAME")
    return done.stdout.strip()


@env_app.command("create")
def env_create(
    name: Annotated[str | None, typer.Argument(help="new environment name")] = None,
    source: Annotated[str | None, typer.Option(
        "--from", help="ENV, ENV@TIME or ENV@COMMIT to start from (default: prod)")] = None,
    git: Annotated[bool, typer.Option("--git", help="name it after the git branch")] = False,
    empty: Annotated[bool, typer.Option(help="start with no tables")] = False,
    project: ProjectOpt = None,
) -> None:
    """Create an environment: a copy of a pointer, instant whatever the data size."""
    session = _session(project)
    if git:
        from andon import environments

        name = environments.git_branch_name(_git_branch(session.project.root))
    if not name:
        raise AndonError("give the environment a NAME, or --git")
    src = None if empty else (source or session.project.config.default_environment)
    env = session.env_create(name, source, empty=empty)
    console.print(f"created environment [bold]{name}[/] at commit {env['commit_id']}"
                  + (f" (from {src})" if src else ""))


@env_app.command("list")
def env_list(project: ProjectOpt = None, fmt: FormatOpt = Format.table) -> None:
    """Environments with their head commit, base, owner, protection and last run."""
    session = _reader(project)
    _emit(session.env_list(), fmt, title="environments", read=session.project)


@env_app.command("log")
def env_log(name: Annotated[str, typer.Argument()], project: ProjectOpt = None,
            fmt: FormatOpt = Format.table) -> None:
    """Every move of an environment: when, who, why, from → to."""
    session = _reader(project)
    _emit(session.env_log(name), fmt, title=f"log of {name}", read=session.project)


@env_app.command("delete")
def env_delete(name: Annotated[str, typer.Argument()], project: ProjectOpt = None) -> None:
    """Delete an environment (refused for protected ones). Its artifacts stay until gc."""
    _session(project).env_delete(name)
    console.print(f"deleted environment {name}")


@env_app.command("reset")
def env_reset(
    name: Annotated[str, typer.Argument()],
    to: Annotated[str, typer.Option("--to", help="COMMIT or TIME to point at")],
    project: ProjectOpt = None,
) -> None:
    """Point an environment at an earlier commit or time (rollback); recorded in its log."""
    commit = _session(project).env_reset(name, to)
    console.print(f"{name} now points at commit {commit}")


@env_app.command("diff")
def env_diff(
    a: Annotated[str, typer.Argument(help="environment")],
    b: Annotated[str, typer.Argument(help="environment")],
    project: ProjectOpt = None,
    data: Annotated[bool, typer.Option(help="compare rows of changed steps")] = True,
    key: Annotated[str | None, typer.Option(
        help="compare rows by these columns, e.g. id or carrier,flight_date (default: each "
             "step's primary_key; without one, whole rows)")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """What differs between two environments, step by step, down to rows: added, removed
    and (by key) changed."""
    session = _reader(project)
    columns = [c.strip() for c in (key or "").split(",") if c.strip()]
    result = session.env_diff(a, b, data=data, key=columns)
    if fmt is not Format.table:
        _emit_obj(result, fmt, read=session.project)
        return
    rows = []
    for s in result["steps"]:
        d = s.get("data") or {}
        sc = s.get("schema") or {}
        schema = ", ".join([f"+{c}" for c in sc.get("added", [])]
                           + [f"-{c}" for c in sc.get("removed", [])]
                           + [f"{c}: {v[0]}→{v[1]}" for c, v in sc.get("retyped", {}).items()])
        rows_ = s.get("rows") or {}
        rows.append({"step": s["step"], "change": s["change"],
                     f"rows {a}": rows_.get(a), f"rows {b}": rows_.get(b), "schema": schema,
                     "added": d.get("added"), "removed": d.get("removed"),
                     "changed": d.get("changed")})
    _emit(rows, fmt, title=f"{a} → {b}")


@app.command()
def promote(
    source: Annotated[str, typer.Argument(help="environment to promote")],
    to: Annotated[str, typer.Option("--to", help="target environment")] = "prod",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check, do not move")] = False,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Move TARGET to its head plus SOURCE's changes, after every check passes on exactly
    that candidate. Nothing is rebuilt."""
    result = _session(project, env=to).promote(source, to, dry_run=dry_run)
    if fmt is not Format.table:
        _emit_obj(result.to_dict(), fmt)
        return
    from andon.checks.summary import tally

    if dry_run:
        from andon.stages import explain

        _emit(explain(result.stages), fmt, title=f"promotion of {source} → {to}")
    verb = "would promote" if dry_run else "promoted"
    console.print(f"[green]✔ {verb}[/] {source} → {to}: {len(result.changed)} changed step(s)"
                  f" ({', '.join(sorted(result.changed)) or 'none'}), "
                  f"checks: {tally(result.checks)}"
                  + ("" if dry_run else f"; {to} → commit {result.candidate_commit}")
                  + f" in {result.seconds:.2f}s")


@users_app.command("add")
def users_add(name: Annotated[str, typer.Argument()],
              role: Annotated[str, typer.Option(help="admin|operator|developer|viewer")],
              project: ProjectOpt = None) -> None:
    """Add a user (or change their role). The first user must be an admin."""
    _session(project).users_add(name, role)
    console.print(f"{name}: {role}")


@users_app.command("list")
def users_list(project: ProjectOpt = None, fmt: FormatOpt = Format.table) -> None:
    """Users and their roles (none: the local user is an admin)."""
    _emit(_session(project).users_list(), fmt, title="users")


@users_app.command("rm")
def users_rm(name: Annotated[str, typer.Argument()], project: ProjectOpt = None) -> None:
    """Remove a user."""
    _session(project).users_rm(name)
    console.print(f"removed {name}")


@secrets_app.command("set")
def secrets_set(
    name: Annotated[str, typer.Argument()],
    env: EnvOpt = None,
    value_stdin: Annotated[bool, typer.Option("--stdin", help="read the value from stdin")]
    = False,
    project: ProjectOpt = None,
) -> None:
    """Store a secret, encrypted (asks for the value; never echoed)."""
    session = _session(project)
    session.authorize_secret(name, env)
    if value_stdin or not sys.stdin.isatty():
        value = sys.stdin.read().rstrip("\n")
    else:
        value = getpass.getpass(f"value of {name}: ")
    session.secrets_set(name, value, env)
    console.print(f"stored secret {name} for {env or 'every environment'}")


@secrets_app.command("list")
def secrets_list(project: ProjectOpt = None, fmt: FormatOpt = Format.table) -> None:
    """Secret names and environments (never values)."""
    _emit(_session(project).secrets_list(), fmt, title="secrets")


@secrets_app.command("rm")
def secrets_rm(name: Annotated[str, typer.Argument()], env: EnvOpt = None,
               project: ProjectOpt = None) -> None:
    """Remove a secret."""
    _session(project).secrets_rm(name, env)
    console.print(f"removed secret {name}")


@app.command()
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only report")] = False,
    project: ProjectOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Delete artifacts no environment, recent ref-log entry or running build refers to."""
    report = _session(project).gc(dry_run=dry_run)
    if fmt is not Format.table:
        _emit_obj(report.to_dict(), fmt)
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(f"{verb} {len(report.artifacts)} artifact(s), {report.files} file(s), "
                  f"{report.bytes / 1e6:.1f} MB; kept {report.kept_artifacts}")


