"""Helpers of the executor and per-step environment tests: fixture projects in a folder of
the caller's choosing (module-scoped fixtures cannot use ``make_project``)."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write(root: Path, files: dict[str, str]) -> Path:
    """Write ``{"andon.yaml": "...", "pipelines/p/a.sql": "..."}`` under ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root
