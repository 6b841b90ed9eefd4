"""CLI verbs of the catalog: what a table is (layer, alignment, owner, steward, column tags
and where they come from), and search over tables, columns, descriptions, tags and owners."""

from __future__ import annotations

from typing import Annotated

import typer

from andon.cli.app import EnvOpt, Format, FormatOpt, ProjectOpt, _dumps, _emit, app, console

catalog_app = typer.Typer(help="The catalog: describe a table, search tables and columns.",
                          no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("show")
def catalog_show(
    table: Annotated[str, typer.Argument(help="table name")],
    project: ProjectOpt = None,
    env: EnvOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """A table's layer (bronze, silver, gold), alignment (source-aligned, aggregate,
    consumer-aligned), owner and steward, and its columns with their tags: declared,
    detected (PII, with a confidence) or flowing from upstream columns."""
    from andon.cli.app import _reader

    info = _reader(project).catalog_show(table, env)
    if fmt is Format.json:
        print(_dumps(info))
        return
    if fmt is Format.csv:
        _emit([_column_row(c) for c in info["columns"]], fmt)
        return
    alignment = info["alignment"] + ("" if info["alignment_declared"] else " (inferred)")
    console.print(f"[bold]{info['table']}[/] in {info['environment']}: layer "
                  f"{info['layer']} (zone {info['zone']}), {alignment}")
    if info["description"]:
        console.print(info["description"])
    console.print(f"owner: {info['owner'] or '-'}   steward: {info['steward'] or '-'}   "
                  f"tags: {', '.join(info['tags']) or '-'}")
    console.print(f"upstream: {', '.join(info['upstream']) or '-'}   "
                  f"downstream: {', '.join(info['downstream']) or '-'}")
    if info["lineage"]["note"]:
        console.print(f"[yellow]lineage:[/] {info['lineage']['note']}")
    _emit([_column_row(c) for c in info["columns"]], fmt, title="columns")


def _column_row(c: dict[str, object]) -> dict[str, object]:
    tags = c["tags"] if isinstance(c["tags"], list) else []
    sources = c["from"] if isinstance(c["from"], list) else []
    return {"column": c["name"], "type": c["type"],
            "tags": ", ".join(_tag_text(t) for t in tags),
            "masked": "yes" if c["masked"] else "",
            "from": ", ".join(f"{s['table']}.{s['column']} ({s['kind']}"
                              + (", masked)" if s["masking"] else ")") for s in sources)}


def _tag_text(t: dict[str, object]) -> str:
    if t["origin"] == "detected":
        return f"{t['tag']} (detected, {float(str(t['confidence'])):.0%})"
    if t["origin"] == "flowed":
        return f"{t['tag']} (from {t['from']})"
    return str(t["tag"])


@catalog_app.command("search")
def catalog_search(
    text: Annotated[str, typer.Argument(help="words to find (each also as a prefix)")],
    project: ProjectOpt = None,
    env: EnvOpt = None,
    limit: Annotated[int, typer.Option(help="at most this many hits", min=1)] = 20,
    fmt: FormatOpt = Format.table,
) -> None:
    """Tables and columns whose names, descriptions, tags, owners, layer or alignment match
    every word, best first (SQLite FTS5, or PostgreSQL full-text search in a team store)."""
    from andon.cli.app import _reader

    hits = _reader(project).catalog_search(text, env, limit)
    _emit([{"name": h["name"], "kind": h["kind"], "rank": h["rank"], "text": h["text"]}
           for h in hits], fmt, title=f"catalog hits for {text!r}")
