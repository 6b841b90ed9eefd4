"""The CLI reference is generated from the commands: it must match them."""

from __future__ import annotations

from pathlib import Path

from andon.cli.docs import reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_cli_reference_is_current() -> None:
    assert DOC.read_text() == reference() + "\n", (
        "docs/cli.md is stale: python -m andon.cli.docs > docs/cli.md")


def test_every_verb_is_documented() -> None:
    text = DOC.read_text()
    for verb in ("init", "run", "plan", "demo", "runs show", "tables", "show", "query",
                 "lineage", "rejects", "test", "profile", "checks history", "checks ack",
                 "checks suggest", "env create", "env diff", "env reset", "promote",
                 "secrets set", "users add", "gc"):
        assert f"## `andon {verb}`" in text, verb
