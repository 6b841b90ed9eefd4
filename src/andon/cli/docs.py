"""The CLI reference (docs/cli.md), generated from the commands themselves so it cannot drift:
``python -m andon.cli.docs > docs/cli.md``; a test checks the file is current."""

from __future__ import annotations

from typing import Any

import typer

from andon.cli.app import app


def _commands(group: Any, prefix: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name, cmd in group.commands.items():
        full = f"{prefix} {name}"
        if getattr(cmd, "commands", None):
            if cmd.callback is not None and any(p.param_type_name == "option"
                                                for p in cmd.params):
                out.append((full, cmd))
            out += _commands(cmd, full)
        else:
            out.append((full, cmd))
    return out


def reference() -> str:
    root = typer.main.get_command(app)
    lines = ["# Command reference", "",
             "<!-- generated: python -m andon.cli.docs > docs/cli.md -->", ""]
    for name, cmd in _commands(root, "andon"):
        args = [p for p in cmd.params if p.param_type_name == "argument"]
        usage = " ".join([name, *(f"[{p.name.upper()}]" if not p.required
                                  else p.name.upper() for p in args)])
        lines += [f"## `{name}`", "", (cmd.help or "").strip().replace("\n", " "), "",
                  f"    {usage} [OPTIONS]", ""]
        rows = []
        for p in cmd.params:
            if p.param_type_name == "argument":
                rows.append((p.name.upper(), getattr(p, "help", "") or ""))
            elif p.param_type_name == "option" and p.name != "help":
                opts = ", ".join(f"`{o}`" for o in p.opts)
                default = p.default if p.default not in (None, False, (), []) else ""
                text = getattr(p, "help", "") or ""
                if default != "":
                    text += f" (default: {getattr(default, 'value', default)})"
                rows.append((opts, text.strip()))
        if rows:
            lines += ["| argument or option | meaning |", "| --- | --- |"]
            lines += [f"| {a} | {b.replace('|', '/')} |" for a, b in rows]
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference())
