"""The ``andon`` command: a thin shell over the service layer (Typer + Rich). Each command
module registers its verbs on the app of ``andon.cli.app``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from andon.cli import (  # noqa: F401  (they register their verbs)
    catalog,
    commands,
    env,
    features,
    landing,
    models,
    report,
    schedule,
    server,
    sources,
)
from andon.cli.app import _dumps, _escape, app, err_console
from andon.errors import AndonError


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (tests call this in-process).

    With ``--format json`` an error is JSON on stdout, ``{"error": {"kind", "message", "file",
    "line", "hint", …}}``; otherwise message and hint go to stderr."""
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        result = app(args=args, standalone_mode=False, prog_name="andon")
        return result if isinstance(result, int) else 0
    except AndonError as e:
        if _wants_json(args):
            sys.stdout.write(_dumps(e.to_dict()) + "\n")
        else:
            err_console.print(f"[bold red]error:[/] {_escape(e.render())}")
        return e.exit_code
    except typer.Exit as e:
        return int(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted; nothing published was changed[/]")
        return 130
    except typer.Abort:
        return 130
    except _usage_errors() as e:
        if _wants_json(args):
            usage = AndonError(e.format_message(),  # type: ignore[attr-defined]
                               hint="see: andon --help, or andon COMMAND --help")
            sys.stdout.write(_dumps(usage.to_dict()) + "\n")
        else:
            e.show()  # type: ignore[attr-defined]
        return int(e.exit_code)  # type: ignore[attr-defined]


def _wants_json(args: Sequence[str]) -> bool:
    """Whether the command line asks for ``--format json`` (read before parsing, so that
    errors raised while parsing are JSON too)."""
    for i, a in enumerate(args):
        if a == "--":
            return False
        if a in ("--format", "-f") and i + 1 < len(args) and args[i + 1] == "json":
            return True
        if a in ("--format=json", "-fjson"):
            return True
    return False


def _usage_errors() -> tuple[type[Exception], ...]:
    """Usage errors: typer vendors click in new releases and depends on it in older ones."""
    found: list[type[Exception]] = []
    try:
        from typer._click import exceptions as vendored

        found.append(vendored.ClickException)
    except ImportError:
        pass
    try:
        import click

        found.append(click.exceptions.ClickException)
    except ImportError:
        pass
    return tuple(found)


def main() -> None:
    sys.exit(run_cli())


def _plain_help(group: typer.Typer) -> None:
    """Help and usage errors as plain text (as git prints them): Rich's panels take longer to
    import and lay out than the rest of a command's start-up."""
    group.rich_markup_mode = None
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _plain_help(sub.typer_instance)


_plain_help(app)
